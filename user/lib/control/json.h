/* SPDX-License-Identifier: MIT */
/* JSON for --json output (tetherctl, tether-invoke, udp_load): records as
 * objects. A value that is all digits
 * (no leading zero) and at most 2^53 - 1 is a JSON number, which every JSON
 * reader holds exactly; any other value, a 64-bit function id among them, is
 * a string. */
#ifndef TETHER_CONTROL_JSON_H
#define TETHER_CONTROL_JSON_H

#include <glib.h>
#include <stdbool.h>

#include "protocol.h"

#define CTL_JSON_MAX_SAFE 9007199254740991ull /* 2^53 - 1 */

/* text as a quoted JSON string: '"', '\\' and control characters escaped;
 * bytes outside ASCII as \u00XX, so the output is ASCII whatever the input. */
void ctl_json_string(GString *out, const char *text);

bool ctl_json_is_number(const char *text);

/* A number or a string, as above. */
void ctl_json_value(GString *out, const char *text);

/* {"key":value,...} in the record's order. */
void ctl_json_object(GString *out, const struct proto_request *record);

#endif
