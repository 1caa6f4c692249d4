/* SPDX-License-Identifier: MIT */
/* What "drain ... --wait" tells the operator while it waits: packets per
 * second from the container's counter, affinities and containers left, time
 * to the deadline. Pure: samples and times come from the caller. */
#ifndef TETHER_CTL_PROGRESS_H
#define TETHER_CTL_PROGRESS_H

#include <glib.h>
#include <linux/types.h>
#include <stddef.h>

#include "control/protocol.h"

#define CTL_PROGRESS_SAMPLES 16 /* 4 s of samples at 250 ms */

/* The last samples of a container's packet counter, for the rate over the
 * last second. */
struct ctl_progress {
	struct {
		__u64 at_ms, packets;
	} samples[CTL_PROGRESS_SAMPLES];
	unsigned int added;
};

void ctl_progress_add(struct ctl_progress *p, __u64 at_ms, __u64 packets);

/* Packets per second, from the newest sample and the one closest to a
 * second before it; -1 while there is no earlier sample. */
long long ctl_progress_rate(const struct ctl_progress *p);

/* The drain deadline the records tell, in ms from when they were sent: the
 * largest deadline_in_ms of a draining container; -1 when none tells one. */
long long ctl_progress_deadline_in(const struct proto_request *records, size_t count);

/* "container 17 draining: 42 packets in the last second, 3 affinities left,
 * deadline in 8.1 s"; each part only when known (rate or deadline_in_ms -1,
 * no affinities= in the record). No newline. */
void ctl_progress_container(GString *out, const char *handle, const struct proto_request *record,
			    long long rate, long long deadline_in_ms);

/* "backend vm1 draining: 3 containers left (2 draining, 1 starting), deadline
 * in 8.1 s" from its containers' records. No newline. */
void ctl_progress_backend(GString *out, const char *name, const struct proto_request *containers,
			  size_t count, long long deadline_in_ms);

#endif
