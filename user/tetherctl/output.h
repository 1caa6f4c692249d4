/* SPDX-License-Identifier: MIT */
/* How tetherctl prints tetherd's answers: tables for people, JSON for
 * programs. Pure: everything is appended to a GString. */
#ifndef TETHER_CTL_OUTPUT_H
#define TETHER_CTL_OUTPUT_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "command_table.h"
#include "control/protocol.h"

/* Aligned tables: the columns are the first record's keys in its order, the
 * header is those keys in upper case, columns are two spaces apart and no
 * line has trailing spaces. A record with another set of keys starts a new
 * table after an empty line ("show function": the function, then its
 * containers; "stats": the data plane's counters, then the slow path's). No
 * records print nothing. */
void ctl_output_table(GString *out, const struct proto_request *records, size_t count);

/* One line of JSON: an array of objects, or with CTL_SHAPE_SINGLE an object
 * for one record and {"ok":true} for none. */
void ctl_output_json(GString *out, const struct proto_request *records, size_t count,
		     enum ctl_shape shape);

/* One event of "watch": "2024-11-27 03:10:05.123 container_up container=17
 * function=42 backend=vm1" (local time of when), or with json its object. */
void ctl_output_event(GString *out, const struct proto_request *event,
		      const struct timespec *when, bool json);

#endif
