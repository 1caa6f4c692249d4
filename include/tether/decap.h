/* SPDX-License-Identifier: MIT */
/* The VM's IPIP decapsulator's counters (bpf/decap_ipip.c), one per CPU,
 * shared by the program and its loader (tether-agent) and tests. */
#ifndef TETHER_DECAP_H
#define TETHER_DECAP_H

#include <linux/types.h>

struct tether_decap_stats {
	__u64 decapsulated; /* outer header taken off, the inner packet passed up */
	__u64 truncated;    /* addressed to us, IPIP, but no whole inner header: dropped */
};

#endif
