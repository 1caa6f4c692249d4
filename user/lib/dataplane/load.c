// SPDX-License-Identifier: MIT
/* Concurrency limits and liveness: the containers' limits (in their records),
 * the in-flight accounting (the inflight map, mmapped so that the slow path
 * reserves room with the same atomics as the XDP program), the backends'
 * liveness keys, and the completion address. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

int container_set_limit(struct dataplane *dp, __u32 slot, __u32 limit)
{
	struct container_record record, old;
	int err;

	if ((err = container_get(dp, slot, &record)))
		return err;
	if (record.limit == limit)
		return 0;
	old = record;
	record.limit = limit;
	return container_record_write(dp, slot, &old, &record);
}

int container_load_reset(struct dataplane *dp, __u32 slot)
{
	struct container_load zero = {};

	if (slot >= TETHER_MAX_CONTAINERS)
		return -EINVAL;
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.inflight), &slot, &zero, BPF_ANY))
		return -errno;
	return 0;
}

int container_load_read(struct dataplane *dp, __u32 slot, struct container_load *load)
{
	if (slot >= TETHER_MAX_CONTAINERS)
		return -EINVAL;
	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.inflight), &slot, load))
		return -errno;
	return 0;
}

__u64 container_load_in_flight(const struct container_load *load)
{
	__u64 released = load->cancelled + load->done + load->lost;

	return load->started > released ? load->started - released : 0;
}

static struct container_load *inflight_map(struct dataplane *dp)
{
	if (!dp->inflight)
		dp->inflight = dataplane_map_array(dp->skel->maps.inflight, &dp->inflight_size);
	return dp->inflight;
}

/* As take_room in bpf/load.h, on the same memory with the same atomics. */
int container_take_room(struct dataplane *dp, __u32 slot, __u32 limit)
{
	if (!limit)
		return 1;
	if (slot >= TETHER_MAX_CONTAINERS)
		return -EINVAL;
	struct container_load *loads = inflight_map(dp);

	if (!loads)
		return -errno;
	struct container_load *load = &loads[slot];
	__u64 released = __atomic_load_n(&load->cancelled, __ATOMIC_SEQ_CST) +
			 __atomic_load_n(&load->done, __ATOMIC_SEQ_CST) +
			 __atomic_load_n(&load->lost, __ATOMIC_SEQ_CST);

	if ((__s64)(__atomic_load_n(&load->started, __ATOMIC_SEQ_CST) - released) >=
	    (__s64)limit)
		return 0;
	__u64 before = __atomic_fetch_add(&load->started, 1, __ATOMIC_SEQ_CST);

	if ((__s64)(before - released) < (__s64)limit)
		return 1;
	__atomic_fetch_add(&load->cancelled, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* A reservation the slow path could not use (the send failed). */
void container_give_back(struct dataplane *dp, __u32 slot)
{
	struct container_load *loads = inflight_map(dp);

	if (loads && slot < TETHER_MAX_CONTAINERS)
		__atomic_fetch_add(&loads[slot].cancelled, 1, __ATOMIC_SEQ_CST);
}

void dataplane_unmap_inflight(struct dataplane *dp)
{
	if (dp->inflight)
		munmap(dp->inflight, dp->inflight_size);
	dp->inflight = NULL;
}

int liveness_set(struct dataplane *dp, __u32 backend_id, const __u64 key[2], __u64 window_ns)
{
	int fd = bpf_map__fd(dp->skel->maps.liveness);
	struct backend_liveness live;

	if (backend_id == 0 || backend_id >= TETHER_MAX_BACKENDS)
		return -EINVAL;
	if (bpf_map_lookup_elem(fd, &backend_id, &live))
		return -errno;
	if (!key || (!key[0] && !key[1])) {
		live = (struct backend_liveness){};
	} else if (live.key[0] != key[0] || live.key[1] != key[1]) {
		/* A new key starts a new sequence. */
		live = (struct backend_liveness){ .key = { key[0], key[1] } };
	}
	live.window_ns = window_ns;
	if (bpf_map_update_elem(fd, &backend_id, &live, BPF_ANY))
		return -errno;
	return 0;
}

int liveness_get(struct dataplane *dp, __u32 backend_id, struct backend_liveness *live)
{
	if (backend_id >= TETHER_MAX_BACKENDS)
		return -EINVAL;
	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.liveness), &backend_id, live))
		return -errno;
	return 0;
}

int function_settings_set(struct dataplane *dp, __u64 function_id,
			  const struct function_settings *settings)
{
	int fd = bpf_map__fd(dp->skel->maps.functions);

	if (!function_id)
		return -EINVAL;
	if (!settings || !settings->concurrency) {
		if (bpf_map_delete_elem(fd, &function_id) && errno != ENOENT)
			return -errno;
		return 0;
	}
	if (bpf_map_update_elem(fd, &function_id, settings, BPF_ANY))
		return -errno;
	return 0;
}
