/* SPDX-License-Identifier: MIT */
/* Per-CPU decision counters: one named field of struct tether_stats each. */
#ifndef TETHER_BPF_COUNTERS_H
#define TETHER_BPF_COUNTERS_H

#include "maps.h"

static __always_inline struct tether_stats *stats_for_this_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

/* Per-CPU, so no atomics; stats is never NULL for index 0 of a
 * one-entry array, but the verifier wants the check. */
#define count(stats, field)                 \
	do {                                \
		if (stats)                  \
			(stats)->field++;   \
	} while (0)

/* The slot's counters on this CPU, read now and counted later (issue 15): with
 * a million containers the counters are a cache miss of their own, and
 * nothing waits for this read, so the miss overlaps the reads that follow
 * (the container's record or word, its backend, an affinity update) instead
 * of coming after them in count_container. Writes nothing. */
static __always_inline void prefetch_container_counters(__u32 slot)
{
	__u32 index = bpf_get_smp_processor_id() * TETHER_MAX_CONTAINERS + slot;
	struct container_counters *counters = bpf_map_lookup_elem(&container_stats, &index);

	if (counters)
		(void)*(volatile __u64 *)&counters->packets;
}

static __always_inline void count_container(__u32 slot, __u64 bytes)
{
	__u32 index = bpf_get_smp_processor_id() * TETHER_MAX_CONTAINERS + slot;
	struct container_counters *counters = bpf_map_lookup_elem(&container_stats, &index);

	if (counters) {
		counters->packets++;
		counters->bytes += bytes;
	}
}

#endif
