/* SPDX-License-Identifier: MIT */
/* The routing decision (DESIGN.md, "Routing rules"): token, then key affinity,
 * then flow hash, else the controller's slow path. Never a container of
 * another function: every path checks the record's function_id. */
#ifndef TETHER_BPF_ROUTING_H
#define TETHER_BPF_ROUTING_H

#include "tether/hash.h"
#include "counters.h"
#include "load.h"
#include "maps.h"
#include "parse.h"

enum route_verdict {
	ROUTE_FORWARD,     /* to the chosen container */
	ROUTE_NO_CAPACITY, /* slow path: no warm container of the function */
	ROUTE_STRICT_GONE, /* slow path: answer CONTAINER_GONE */
	ROUTE_FULL,        /* slow path: every container with work is at its limit
			    * (or STRICT's is): held until one has room */
};

/* Entries of a pool table walked past a full container, in the table's order
 * from the key's (or flow's) index: a stable sequence per key. Only walked
 * when the first choice is full. */
#define TETHER_OVERFLOW_PROBES 64

/* The container chosen: its slot, generation and secret (what the stamp
 * writes), its backend (id and record), its limit when chosen (0: no room
 * was reserved), and its record, which a key hit's fast way does not read
 * (NULL then: such a container is warm and has no limit). Whatever describes
 * the container chosen after the choice reads these, not the record (a record
 * read after it would also keep the verifier from pruning the fast way's
 * states against the record's: the program would pass its limit). */
struct choice {
	__u32 slot;
	__u32 generation;
	__u64 secret;
	__u32 backend_id;
	__u32 limit;
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
	out->generation = container->generation;
	out->secret = container->secret;
	out->backend_id = backend_id;
	out->limit = container->limit;
	out->container = container;
	out->backend = backend;
	return 1;
}

/* A key hit's fast way (issue 15): an entry the program learned holds its
 * container's secret and backend, and container_live holds the secret of the
 * slot's container while it is warm and has no limit. When they agree, the
 * slot holds the very container the entry was learned for (of the key's
 * function: checked then), and it takes work with no room to reserve: the
 * record is not read. Anything else (draining, a limit, another container in
 * the slot, an entry written without a secret) takes the record's way. */
static __always_inline int choose_known(const struct affinity_value *known, __u64 now,
					struct choice *out)
{
	__u32 slot = known->slot;
	__u64 secret = known->secret;

	prefetch_container_counters(slot);
	__u64 *live = bpf_map_lookup_elem(&container_live, &slot);

	if (!live || !secret || *live != secret)
		return 0;
	__u32 backend_id = known->backend_id;
	struct backend_record *backend = bpf_map_lookup_elem(&backends, &backend_id);

	if (!backend || !backend_takes_work(backend, now, 0))
		return 0;
	out->slot = slot;
	out->generation = known->generation;
	out->secret = secret;
	out->backend_id = backend_id;
	out->limit = 0;
	out->container = NULL;
	out->backend = backend;
	return 1;
}

/* Consistent hashing over the function's warm pool. A table names only warm
 * containers, but a backend can miss its heartbeats before tetherd rebuilds
 * the table: the next few entries are tried before giving up. *index gets the
 * entry of the container chosen, where an overflow walk goes on from. */
static __always_inline int pick_from_pool(__u64 function_id, __u64 hash, __u64 now,
					  struct choice *out, __u32 *at)
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
							  function_id, now, 1, out)) {
				*at = index;
				return 1;
			}
		}
		index = index >= table_size ? 1 : index + 1;
	}
	return 0;
}

struct overflow_walk {
	__u64 function_id;
	__u64 now;
	__u32 index; /* the next entry to look at */
	__u32 slot;  /* the container found, with room reserved */
	int found;
};

static long overflow_step(__u32 i, void *ctx)
{
	struct overflow_walk *walk = ctx;
	__u64 function_id = walk->function_id;
	void *table = bpf_map_lookup_elem(&pools, &function_id);
	__u32 size_index = TETHER_POOL_SIZE_INDEX;

	if (!table)
		return 1;
	__u32 *size = bpf_map_lookup_elem(table, &size_index);

	if (!size || *size == 0)
		return 1;
	__u32 index = walk->index;
	__u32 *slot = bpf_map_lookup_elem(table, &index);

	walk->index = index >= *size ? 1 : index + 1;
	if (!slot)
		return 0;
	__u32 found = *slot;
	struct container_record *container = bpf_map_lookup_elem(&containers, &found);
	struct choice candidate = {};

	if (!container || !choose_container(found, container, container->generation,
					    function_id, walk->now, 1, &candidate))
		return 0;
	if (!take_room(found, container))
		return 0;
	walk->slot = found;
	walk->found = 1;
	return 1;
}

/* The home container (at entry index) is full: the next containers of the
 * table, in its order, with room. Fills *out and reserves room. */
static __always_inline int overflow_from(__u64 function_id, __u32 index, __u64 now,
					 struct choice *out)
{
	struct overflow_walk walk = {
		.function_id = function_id,
		.now = now,
		.index = index,
	};

	bpf_loop(TETHER_OVERFLOW_PROBES, overflow_step, &walk, 0);
	if (!walk.found)
		return 0;
	__u32 slot = walk.slot;
	struct container_record *container = bpf_map_lookup_elem(&containers, &slot);

	if (container &&
	    choose_container(slot, container, container->generation, function_id, now, 1, out))
		return 1;
	return 0;
}

/* A new key's home or a flow's container: the pool's pick for hash, room
 * reserved (ROUTE_FORWARD) or full (ROUTE_FULL: *out and *at name it, for an
 * overflow walk from there). The table order: the hash's entry. */
static __always_inline enum route_verdict pick_home(__u64 function_id, __u64 hash, __u64 now,
						    struct choice *out, __u32 *at)
{
	if (!pick_from_pool(function_id, hash, now, out, at))
		return ROUTE_NO_CAPACITY;
	return take_room(out->slot, out->container) ? ROUTE_FORWARD : ROUTE_FULL;
}

#ifdef TETHER_PICK_P2C
/* Power of two choices, built for the bench only (tools/bench/bench_xdp.bpf.c
 * compiled with TETHER_PICK_P2C; README, "Benchmarks"): the hash's entry and
 * a second one from a rehash, the container with more room first, then the
 * other; both full: the table walk from the first. A container without a
 * limit has no count to compare: the first choice, as the table order. */
static __always_inline __s64 room_left(__u32 slot, const struct container_record *container)
{
	struct container_load *load = bpf_map_lookup_elem(&inflight, &slot);

	if (!load)
		return 0;
	return (__s64)container->limit - (__s64)(load->started - load_released(load));
}

static __always_inline enum route_verdict pick_home_p2c(__u64 function_id, __u64 hash,
							__u64 now, struct choice *out,
							__u32 *at)
{
	struct choice other = {};
	__u32 other_at = 0;

	if (!pick_from_pool(function_id, hash, now, out, at))
		return ROUTE_NO_CAPACITY;
	if (!out->container->limit)
		return ROUTE_FORWARD;
	if (!pick_from_pool(function_id, tether_hash_second(hash), now, &other,
			    &other_at) ||
	    other.slot == out->slot || !other.container->limit)
		return take_room(out->slot, out->container) ? ROUTE_FORWARD : ROUTE_FULL;
	if (room_left(other.slot, other.container) > room_left(out->slot, out->container)) {
		if (take_room(other.slot, other.container)) {
			*out = other;
			*at = other_at;
			return ROUTE_FORWARD;
		}
		return take_room(out->slot, out->container) ? ROUTE_FORWARD : ROUTE_FULL;
	}
	if (take_room(out->slot, out->container))
		return ROUTE_FORWARD;
	if (take_room(other.slot, other.container)) {
		*out = other;
		*at = other_at;
		return ROUTE_FORWARD;
	}
	return ROUTE_FULL;
}
#define pick_new_home pick_home_p2c
#else
#define pick_new_home pick_home
#endif

/* The pool's choice for hash, with room: the home entry's container if it has
 * room, else the next ones of the table with room (*overflowed set). */
static __always_inline enum route_verdict pick_with_room(__u64 function_id, __u64 hash,
							 __u64 now, struct choice *out,
							 int *overflowed)
{
	__u32 at = 0;

	if (!pick_from_pool(function_id, hash, now, out, &at))
		return ROUTE_NO_CAPACITY;
	if (take_room(out->slot, out->container))
		return ROUTE_FORWARD;
	*overflowed = 1;
	if (overflow_from(function_id, at, now, out))
		return ROUTE_FORWARD;
	return ROUTE_FULL;
}

static __always_inline void remember_affinity(const struct affinity_key *key,
					      const struct choice *chosen)
{
	struct affinity_value value = {
		.slot = chosen->slot,
		.generation = chosen->generation,
		.secret = chosen->secret,
		.backend_id = chosen->backend_id,
	};

	bpf_map_update_elem(&affinity, key, &value, BPF_ANY);
}

/* A token that wins moves the key's affinity to its container (rule 1). */
static __always_inline void move_affinity(const struct affinity_key *key,
					  const struct choice *chosen)
{
	struct affinity_value *known = bpf_map_lookup_elem(&affinity, key);

	if (known && known->slot == chosen->slot && known->generation == chosen->generation &&
	    known->secret == chosen->secret)
		return;
	remember_affinity(key, chosen);
}

enum token_result {
	TOKEN_MISS, /* no live container of the function: rule 2 or 3 */
	TOKEN_TAKEN, /* room reserved in the token's container */
	TOKEN_FULL,  /* the token's container is at its limit */
};

/* Rule 1. */
static __always_inline enum token_result route_by_token(const struct tether_hdr *hdr,
							__u64 function_id, __u64 now,
							struct tether_stats *stats,
							struct choice *out)
{
	__u32 slot = bpf_ntohl(hdr->container_token.slot);

	prefetch_container_counters(slot);
	struct container_record *container = bpf_map_lookup_elem(&containers, &slot);

	if (!container || container->state == CONTAINER_FREE ||
	    container->generation != bpf_ntohl(hdr->container_token.generation) ||
	    container->secret != hdr->container_token.secret) {
		count(stats, token_miss);
		return TOKEN_MISS;
	}
	if (container->function_id != function_id) {
		count(stats, token_foreign);
		return TOKEN_MISS;
	}
	if (!choose_container(slot, container, container->generation, function_id, now, 0, out)) {
		count(stats, token_miss);
		return TOKEN_MISS;
	}
	if (!take_room(slot, container))
		return TOKEN_FULL;
	count(stats, token_hit);
	return TOKEN_TAKEN;
}

/* Rule 2. A full container keeps its keys: the request goes to the next
 * containers with room in the key's sequence of the pool table, and the
 * affinity stays, so the next request goes home again once there is room. */
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
	int overflowed = 0;
	enum route_verdict verdict;

	if (known && choose_known(known, now, out)) {
		count(stats, key_hit);
		return ROUTE_FORWARD;
	}
	/* Past the hit: only a pick in the pool table needs the key's hash. */
	__u64 hash = tether_hash_key(function_id, key.routing_key);

	if (known) {
		__u32 slot = known->slot;
		struct container_record *container = bpf_map_lookup_elem(&containers, &slot);

		if (choose_container(slot, container, known->generation, function_id, now, 0, out)) {
			if (take_room(slot, out->container)) {
				count(stats, key_hit);
				return ROUTE_FORWARD;
			}
			if (hdr->flags & TETHER_F_STRICT) {
				count(stats, full);
				return ROUTE_FULL;
			}
			verdict = pick_with_room(function_id, hash, now, out, &overflowed);
			if (verdict == ROUTE_FORWARD) {
				count(stats, key_overflow);
				return ROUTE_FORWARD;
			}
			count(stats, full);
			return ROUTE_FULL;
		}
		if (hdr->flags & TETHER_F_STRICT) {
			count(stats, strict_gone);
			return ROUTE_STRICT_GONE;
		}
	}
	__u32 at = 0;

	verdict = pick_new_home(function_id, hash, now, out, &at);
	if (verdict == ROUTE_NO_CAPACITY) {
		count(stats, no_capacity);
		return ROUTE_NO_CAPACITY;
	}
	/* The key's home is learned whether or not it has room now. */
	prefetch_container_counters(out->slot);
	remember_affinity(&key, out);
	if (known)
		count(stats, key_rehomed);
	else
		count(stats, key_new);
	if (verdict == ROUTE_FORWARD)
		return ROUTE_FORWARD;
	if (overflow_from(function_id, at, now, out)) {
		count(stats, key_overflow);
		return ROUTE_FORWARD;
	}
	count(stats, full);
	return ROUTE_FULL;
}

/* Rule 3. */
static __always_inline enum route_verdict route_by_flow(const struct request *req,
							__u64 function_id, __u64 now,
							struct tether_stats *stats,
							struct choice *out)
{
	__u64 hash = tether_hash_flow(req->flow_src.addr, req->service.addr,
				      req->flow_src.port, req->service.port);
	__u32 at = 0;
	enum route_verdict verdict = pick_new_home(function_id, hash, now, out, &at);

	if (verdict == ROUTE_FULL && overflow_from(function_id, at, now, out))
		verdict = ROUTE_FORWARD;
	if (verdict == ROUTE_NO_CAPACITY)
		count(stats, no_capacity);
	else if (verdict == ROUTE_FULL)
		count(stats, full);
	else
		count(stats, flow_pick);
	return verdict;
}

/* now: the coarse clock, read once per request by the caller (the routed
 * path's next-hop cache reads the same). */
static __always_inline enum route_verdict route_request(const struct request *req, __u64 now,
							struct tether_stats *stats,
							struct choice *out)
{
	const struct tether_hdr *hdr = req->hdr;
	__u64 function_id = bpf_be64_to_cpu(hdr->function_id);

	if (hdr->flags & TETHER_F_TOKEN) {
		enum token_result token = route_by_token(hdr, function_id, now, stats, out);

		if (token == TOKEN_TAKEN) {
			if (hdr->flags & TETHER_F_KEY) {
				struct affinity_key key = {
					.function_id = function_id,
					.routing_key = bpf_be64_to_cpu(hdr->routing_key),
				};
				move_affinity(&key, out);
			}
			return ROUTE_FORWARD;
		}
		if (token == TOKEN_FULL) {
			if (hdr->flags & TETHER_F_STRICT) {
				count(stats, full);
				return ROUTE_FULL;
			}
			/* To a sibling; a key's affinity does not move. */
			count(stats, token_overflow);
		} else if (hdr->flags & TETHER_F_STRICT) {
			count(stats, strict_gone);
			return ROUTE_STRICT_GONE;
		}
	}
	if (hdr->flags & TETHER_F_KEY)
		return route_by_key(hdr, function_id, now, stats, out);
	return route_by_flow(req, function_id, now, stats, out);
}

#endif
