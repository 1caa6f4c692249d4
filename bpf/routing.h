/* SPDX-License-Identifier: MIT */
/* The routing decision (DESIGN.md, "Routing rules"): token, then key affinity,
 * then flow hash, else the controller's slow path. Never a container of
 * another function: every path checks the record's function_id. */
#ifndef TETHER_BPF_ROUTING_H
#define TETHER_BPF_ROUTING_H

#include "tether/hash.h"
#include "counters.h"
#include "maps.h"
#include "parse.h"

enum route_verdict {
	ROUTE_FORWARD,     /* to the chosen container */
	ROUTE_NO_CAPACITY, /* slow path: no warm container of the function */
	ROUTE_STRICT_GONE, /* slow path: answer CONTAINER_GONE */
};

struct choice {
	__u32 slot;
	struct container_record *container;
	struct backend_record *backend;
};

static __always_inline int backend_takes_work(const struct backend_record *backend, __u64 now,
					      int new_work)
{
	if (backend->heartbeat_expiry_ns && now >= backend->heartbeat_expiry_ns)
		return 0;
	if (backend->state == BACKEND_UP)
		return 1;
	return !new_work && backend->state == BACKEND_DRAINING;
}

/* Warm containers take anything; draining ones keep their tokens and
 * affinities until the deadline but get no new keys or flows. */
static __always_inline int container_takes_work(const struct container_record *container,
						__u64 now, int new_work)
{
	if (container->state == CONTAINER_WARM)
		return 1;
	return !new_work && container->state == CONTAINER_DRAINING &&
	       now < container->drain_deadline_ns;
}

/* Fills *out when the container (found at slot) is of function_id and of
 * this generation, takes work, and sits on a backend that takes work. */
static __always_inline int choose_container(__u32 slot, struct container_record *container,
					    __u32 generation, __u64 function_id, __u64 now,
					    int new_work, struct choice *out)
{
	if (!container || container->generation != generation ||
	    container->function_id != function_id || !container_takes_work(container, now, new_work))
		return 0;

	__u32 backend_id = container->backend_id;
	struct backend_record *backend = bpf_map_lookup_elem(&backends, &backend_id);

	if (!backend || !backend_takes_work(backend, now, new_work))
		return 0;
	out->slot = slot;
	out->container = container;
	out->backend = backend;
	return 1;
}

/* Consistent hashing over the function's warm pool. A table names only warm
 * containers, but a backend can miss its heartbeats before tetherd rebuilds
 * the table: the next few entries are tried before giving up. */
static __always_inline int pick_from_pool(__u64 function_id, __u64 hash, __u64 now,
					  struct choice *out)
{
	void *table = bpf_map_lookup_elem(&pools, &function_id);

	if (!table)
		return 0;
	__u32 size_index = TETHER_POOL_SIZE_INDEX;
	__u32 *size = bpf_map_lookup_elem(table, &size_index);

	if (!size || *size == 0)
		return 0;
	__u32 table_size = *size;
	__u32 index = tether_pool_index(hash, table_size);

#pragma unroll
	for (int probe = 0; probe < TETHER_POOL_PROBES; probe++) {
		__u32 *slot = bpf_map_lookup_elem(table, &index);

		if (slot) {
			struct container_record *container =
				bpf_map_lookup_elem(&containers, slot);

			if (container && choose_container(*slot, container, container->generation,
							  function_id, now, 1, out))
				return 1;
		}
		index = index >= table_size ? 1 : index + 1;
	}
	return 0;
}

static __always_inline void remember_affinity(const struct affinity_key *key,
					      const struct choice *chosen)
{
	struct affinity_value value = {
		.slot = chosen->slot,
		.generation = chosen->container->generation,
	};

	bpf_map_update_elem(&affinity, key, &value, BPF_ANY);
}

/* A token that wins moves the key's affinity to its container (rule 1). */
static __always_inline void move_affinity(const struct affinity_key *key,
					  const struct choice *chosen)
{
	struct affinity_value *known = bpf_map_lookup_elem(&affinity, key);

	if (known && known->slot == chosen->slot &&
	    known->generation == chosen->container->generation)
		return;
	remember_affinity(key, chosen);
}

/* Rule 1. Returns 1 when the token's container takes the request. */
static __always_inline int route_by_token(const struct tether_hdr *hdr, __u64 function_id,
					  __u64 now, struct tether_stats *stats,
					  struct choice *out)
{
	__u32 slot = bpf_ntohl(hdr->container_token.slot);
	struct container_record *container = bpf_map_lookup_elem(&containers, &slot);

	if (!container || container->state == CONTAINER_FREE ||
	    container->generation != bpf_ntohl(hdr->container_token.generation) ||
	    container->secret != hdr->container_token.secret) {
		count(stats, token_miss);
		return 0;
	}
	if (container->function_id != function_id) {
		count(stats, token_foreign);
		return 0;
	}
	if (!choose_container(slot, container, container->generation, function_id, now, 0, out)) {
		count(stats, token_miss);
		return 0;
	}
	count(stats, token_hit);
	return 1;
}

/* Rule 2. */
static __always_inline enum route_verdict route_by_key(const struct tether_hdr *hdr,
						       __u64 function_id, __u64 now,
						       struct tether_stats *stats,
						       struct choice *out)
{
	struct affinity_key key = {
		.function_id = function_id,
		.routing_key = bpf_be64_to_cpu(hdr->routing_key),
	};
	struct affinity_value *known = bpf_map_lookup_elem(&affinity, &key);

	if (known) {
		__u32 slot = known->slot;
		struct container_record *container = bpf_map_lookup_elem(&containers, &slot);

		if (choose_container(slot, container, known->generation, function_id, now, 0, out)) {
			count(stats, key_hit);
			return ROUTE_FORWARD;
		}
		if (hdr->flags & TETHER_F_STRICT) {
			count(stats, strict_gone);
			return ROUTE_STRICT_GONE;
		}
	}
	if (!pick_from_pool(function_id, tether_hash_key(function_id, key.routing_key), now, out)) {
		count(stats, no_capacity);
		return ROUTE_NO_CAPACITY;
	}
	remember_affinity(&key, out);
	if (known)
		count(stats, key_rehomed);
	else
		count(stats, key_new);
	return ROUTE_FORWARD;
}

/* Rule 3. */
static __always_inline enum route_verdict route_by_flow(const struct request *req,
							__u64 function_id, __u64 now,
							struct tether_stats *stats,
							struct choice *out)
{
	__u64 hash = tether_hash_flow(req->flow_src.addr, req->service.addr,
				      req->flow_src.port, req->service.port);

	if (!pick_from_pool(function_id, hash, now, out)) {
		count(stats, no_capacity);
		return ROUTE_NO_CAPACITY;
	}
	count(stats, flow_pick);
	return ROUTE_FORWARD;
}

static __always_inline enum route_verdict route_request(const struct request *req,
							struct tether_stats *stats,
							struct choice *out)
{
	const struct tether_hdr *hdr = req->hdr;
	__u64 function_id = bpf_be64_to_cpu(hdr->function_id);
	__u64 now = bpf_ktime_get_coarse_ns();

	if (hdr->flags & TETHER_F_TOKEN) {
		if (route_by_token(hdr, function_id, now, stats, out)) {
			if (hdr->flags & TETHER_F_KEY) {
				struct affinity_key key = {
					.function_id = function_id,
					.routing_key = bpf_be64_to_cpu(hdr->routing_key),
				};
				move_affinity(&key, out);
			}
			return ROUTE_FORWARD;
		}
		if (hdr->flags & TETHER_F_STRICT) {
			count(stats, strict_gone);
			return ROUTE_STRICT_GONE;
		}
	}
	if (hdr->flags & TETHER_F_KEY)
		return route_by_key(hdr, function_id, now, stats, out);
	return route_by_flow(req, function_id, now, stats, out);
}

#endif
