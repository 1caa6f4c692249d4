/* SPDX-License-Identifier: MIT */
/* One IPv4 request from pktgen's test client to the test VIP through the
 * loaded program, and what came out of it (tests/bpf/test_lifecycle.c,
 * test_limits.c). */
#ifndef TETHER_TESTS_SEND_H
#define TETHER_TESTS_SEND_H

#include <stdbool.h>

#include "dataplane/dataplane.h"

struct sent {
	int verdict;
	bool stamped;
	__u32 slot, generation; /* of the stamped token */
	__u64 secret;
	__u8 status;
	__u8 dst_mac[6];
	struct tether_stats d; /* counter deltas */
};

/* token may be NULL; the frame is received on ifindex. Fails the cmocka test
 * when it cannot be built or run, or the output has no Tether header. */
void send_test_request(struct dataplane *dp, __u32 ifindex, __u64 function_id, __u8 flags,
		       __u64 key, const struct tether_token *token, __u16 src_port,
		       struct sent *out);

#endif
