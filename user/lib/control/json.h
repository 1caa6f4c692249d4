/* SPDX-License-Identifier: MIT */
/* JSON for --json output (tetherctl, tether-invoke, udp_load), built with
 * json-glib: the programs build their documents with a JsonBuilder, and these
 * add what is Tether's own.
 *
 * The numbers-or-strings rule of records: a value that is all digits (no
 * leading zero) and at most 2^53 - 1 is a JSON number, which every JSON
 * reader holds exactly; any other value, a 64-bit function id above 2^53
 * among them, is a string.
 *
 * Strings: JSON needs UTF-8; text that is not UTF-8 (a payload, say) is taken
 * byte for byte as Latin-1, each byte the code point of the same value (as
 * the \u00XX escapes of the hand-written writer gave). */
#ifndef TETHER_CONTROL_JSON_H
#define TETHER_CONTROL_JSON_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

#include "protocol.h"

#define CTL_JSON_MAX_SAFE 9007199254740991ull /* 2^53 - 1 */

bool ctl_json_is_number(const char *text);

/* A record's value: a number or a string, by the rule above. */
void ctl_json_add_value(JsonBuilder *b, const char *text);

/* A string value (made UTF-8 as above). */
void ctl_json_add_string(JsonBuilder *b, const char *text);

/* {"key":value,...} in the record's order. */
void ctl_json_add_record(JsonBuilder *b, const struct proto_request *record);

/* The builder's document, compact (no spaces, no newline), appended to out. */
void ctl_json_append(GString *out, JsonBuilder *b);

#endif
