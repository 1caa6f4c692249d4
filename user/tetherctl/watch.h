/* SPDX-License-Identifier: MIT */
/* "tetherctl watch": tetherd's events, one line each, until interrupted. */
#ifndef TETHERCTL_WATCH_H
#define TETHERCTL_WATCH_H

#include <stdio.h>

#include "args.h"

/* Sends inv's "watch event" and prints every event to out as it comes: a
 * timestamped line, or with --json an object per line. Returns only when
 * tetherd refuses or ends the stream, with CTL_EXIT_FAILED. */
int ctl_watch(const struct ctl_invocation *inv, FILE *out, FILE *err);

#endif
