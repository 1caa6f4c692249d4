// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

#define STATS_FIELDS (sizeof(struct tether_stats) / sizeof(__u64))

int stats_read(struct dataplane *dp, struct tether_stats *total)
{
	int cpus = libbpf_num_possible_cpus();
	__u32 zero = 0;
	struct tether_stats *per_cpu;

	if (cpus < 0)
		return cpus;
	per_cpu = calloc(cpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.stats), &zero, per_cpu)) {
		int err = -errno;

		free(per_cpu);
		return err;
	}
	__u64 sums[STATS_FIELDS] = {};

	for (int cpu = 0; cpu < cpus; cpu++) {
		const __u64 *fields = (const __u64 *)&per_cpu[cpu];

		for (size_t f = 0; f < STATS_FIELDS; f++)
			sums[f] += fields[f];
	}
	memcpy(total, sums, sizeof(*total));
	free(per_cpu);
	return 0;
}

int container_stats_read(struct dataplane *dp, __u32 slot, struct container_counters *total)
{
	int cpus = libbpf_num_possible_cpus();
	int fd = bpf_map__fd(dp->skel->maps.container_stats);

	if (cpus < 0)
		return cpus;
	if (slot >= TETHER_MAX_CONTAINERS)
		return -EINVAL;
	*total = (struct container_counters){};
	for (int cpu = 0; cpu < cpus; cpu++) {
		__u32 index = (__u32)cpu * TETHER_MAX_CONTAINERS + slot;
		struct container_counters counters;

		if (bpf_map_lookup_elem(fd, &index, &counters))
			return -errno;
		total->packets += counters.packets;
		total->bytes += counters.bytes;
	}
	return 0;
}
