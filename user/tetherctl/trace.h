/* SPDX-License-Identifier: MIT */
/* "tetherctl trace": the XDP program's decisions, one line per request (or
 * a JSON object per line with --json), from tetherd's "watch trace". */
#ifndef TETHERCTL_TRACE_H
#define TETHERCTL_TRACE_H

#include <stdio.h>

#include "args.h"

/* Sends inv's "watch trace" and prints each record as it comes, until
 * --count records (then CTL_EXIT_OK) or until tetherd refuses or ends the
 * stream (CTL_EXIT_FAILED). Lost records are told on err. */
int ctl_trace(const struct ctl_invocation *inv, FILE *out, FILE *err);

/* One record as a human line: local time, decision, reasons, then the
 * rest as tetherd sent it. */
void ctl_trace_line(GString *out, const struct proto_request *record);

#endif
