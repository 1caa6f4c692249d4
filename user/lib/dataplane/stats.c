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

#define AFFINITY_BATCH 8192

int affinity_entries_read(struct dataplane *dp, __u64 *entries)
{
	int fd = bpf_map__fd(dp->skel->maps.affinity);
	struct affinity_key *keys = malloc(AFFINITY_BATCH * sizeof(*keys));
	struct affinity_value *values = malloc(AFFINITY_BATCH * sizeof(*values));
	struct affinity_key out_batch;
	void *in_batch = NULL;
	int err = 0;

	*entries = 0;
	if (!keys || !values) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 count = AFFINITY_BATCH;

		err = bpf_map_lookup_batch(fd, in_batch, &out_batch, keys, values, &count, NULL)
			      ? -errno
			      : 0;
		*entries += count;
		if (err == -ENOENT) { /* the end of the map */
			err = 0;
			break;
		}
		if (err)
			break;
		in_batch = &out_batch;
	}
out:
	free(keys);
	free(values);
	return err;
}
