/* SPDX-License-Identifier: MIT */
/* Running the real XDP program in the real kernel with BPF_PROG_TEST_RUN,
 * inside a private network namespace the test process makes for itself (so
 * nothing it creates can leak or collide with other tests). */
#ifndef TETHER_XDP_HARNESS_H
#define TETHER_XDP_HARNESS_H

#include <linux/types.h>

#include "dataplane/dataplane.h"

#define HARNESS_FRAME_MAX 2048

/* unshare(CLONE_NEWNET), bring lo up, add a veth pair tx0/tx1 for
 * redirect targets. Exits the process with a clear message when it cannot
 * (not root, no BPF): a test never skips silently. */
void harness_enter_private_netns(void);
__u32 harness_ifindex(const char *name);

struct xdp_result {
	int verdict;
	__u8 frame[HARNESS_FRAME_MAX];
	__u32 len;
};

/* Runs one frame through the program as if received on ingress_ifindex. */
int harness_run(struct dataplane *dp, const __u8 *frame, __u32 len, __u32 ingress_ifindex,
		struct xdp_result *result);

/* after - before, field by field. */
void stats_delta(const struct tether_stats *before, const struct tether_stats *after,
		 struct tether_stats *delta);

/* "XDP_PASS" etc., for failure messages. */
const char *xdp_verdict_name(int verdict);

/* Describes in out every counter where got and want differ
 * (" malformed +1 (want +0)" ...); returns how many differ. */
int stats_diff(const struct tether_stats *got, const struct tether_stats *want, char *out,
	       size_t size);

/* Repeats frame `repeat` times in the kernel; returns the mean ns per run. */
int harness_time(struct dataplane *dp, const __u8 *frame, __u32 len, __u32 repeat,
		 __u32 *ns_per_run);

#endif
