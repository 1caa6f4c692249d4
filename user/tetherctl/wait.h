/* SPDX-License-Identifier: MIT */
/* "drain ... --wait": after tetherd took the drain, poll until it is over,
 * with a progress line on stderr every second. */
#ifndef TETHERCTL_WAIT_H
#define TETHERCTL_WAIT_H

#include <linux/types.h>
#include <stdio.h>

#include "args.h"

#define CTL_WAIT_POLL_MS 250
#define CTL_WAIT_REPORT_MS 1000
/* tetherd removes a container at its deadline on its next tick (50 ms): a
 * container still listed this long after the deadline is overdue. */
#define CTL_WAIT_GRACE_MS 500

/* Polls "show container container=H" (over when tetherd answers not_found)
 * or "list container backend=B" (over when none is left) every
 * CTL_WAIT_POLL_MS. requested_at_ms is when the drain request went out
 * (ctl_now_ms()), which --deadline counts from; a deadline tetherd reports
 * takes its place. Returns CTL_EXIT_OK when the drain is over,
 * CTL_EXIT_FAILED when the deadline passed with work left or tetherd could
 * not be asked. */
int ctl_wait_drain(const struct ctl_invocation *inv, __u64 requested_at_ms, FILE *err);

#endif
