/* SPDX-License-Identifier: MIT */
/* Concurrency limits, completions and liveness in the data plane
 * (DESIGN.md, "Concurrency and completions"; docs/protocol.md, "Completions
 * and liveness"). A container whose record has a limit has its requests in
 * flight counted in the inflight map: room is reserved atomically before a
 * request is forwarded (correct with every CPU forwarding at once), DONE
 * datagrams from its backend raise its cumulative finished count, and ALIVE
 * datagrams move its backend's heartbeat deadline. */
#ifndef TETHER_BPF_LOAD_H
#define TETHER_BPF_LOAD_H

#include "tether/siphash.h"
#include "counters.h"
#include "maps.h"
#include "parse.h"

/* What a container has given back: read before the reservation, so that
 * every cancellation counted here belongs to a reservation already counted
 * in started (the estimate errs towards "full", never past the limit). */
static __always_inline __u64 load_released(const struct container_load *load)
{
	return load->cancelled + load->done + load->lost;
}

/* 1 when the container has room for one more request, which is then
 * reserved; always 1 for a container without a limit (nothing is read). */
static __always_inline int take_room(__u32 slot, const struct container_record *container)
{
	__u32 limit = container->limit;

	if (!limit)
		return 1;
	struct container_load *load = bpf_map_lookup_elem(&inflight, &slot);

	if (!load)
		return 0;
	__u64 released = load_released(load);

	if ((__s64)(load->started - released) >= (__s64)limit)
		return 0; /* full: nothing written */
	__u64 before = __sync_fetch_and_add(&load->started, 1);

	if ((__s64)(before - released) < (__s64)limit)
		return 1;
	__sync_fetch_and_add(&load->cancelled, 1); /* another CPU took the room */
	return 0;
}

/* Raises *field to value if it is lower; 1 when this call raised it. */
static __always_inline int raise_to(__u64 *field, __u64 value)
{
	__u64 seen = *field;

	if (value <= seen)
		return 0;
	return __sync_val_compare_and_swap(field, seen, value) == seen;
}

/* Where a backend's DONE may come from: an L2 backend's own interface; for a
 * routed one, which routes bring back by any interface, its own address (its
 * agent sends from it). */
static __always_inline int done_from_backend(const struct xdp_md *ctx, const struct request *req,
					     const struct backend_record *backend)
{
	if (backend->encap == BACKEND_L2)
		return backend->ifindex == ctx->ingress_ifindex;
	return same_address(req->flow_src.addr, backend->addr);
}

/* A DONE from a backend: the token must name a live container of the
 * function (as any token), from its backend (done_from_backend).
 * Then its cumulative finished count raises done, and at most once per
 * TETHER_RECONCILE_NS its received count finds requests lost on their way:
 * those forwarded before the previous reconcile (mark) and never received. */
static __always_inline int take_done(struct xdp_md *ctx, const struct request *req,
				     struct tether_stats *stats)
{
	const struct tether_hdr *hdr = req->hdr;
	__u32 slot = bpf_ntohl(hdr->container_token.slot);
	struct container_record *container = bpf_map_lookup_elem(&containers, &slot);

	if (!container || container->state == CONTAINER_FREE ||
	    container->generation != bpf_ntohl(hdr->container_token.generation) ||
	    container->secret != hdr->container_token.secret ||
	    container->function_id != bpf_be64_to_cpu(hdr->function_id)) {
		count(stats, done_forged);
		return XDP_DROP;
	}
	__u32 backend_id = container->backend_id;
	struct backend_record *backend = bpf_map_lookup_elem(&backends, &backend_id);
	struct container_load *load = bpf_map_lookup_elem(&inflight, &slot);

	if (!backend || !done_from_backend(ctx, req, backend) || !load) {
		count(stats, done_forged);
		return XDP_DROP;
	}
	/* Never more than this router forwarded: completions of requests it did
	 * not count (another router's, or sent before the limit was set) must
	 * not make room for more than the limit. */
	__u64 finished = bpf_be64_to_cpu(hdr->routing_key);
	__u64 started = load->started;
	__u64 forwarded = started - load->cancelled;

	if (finished > forwarded)
		finished = forwarded;
	if (raise_to(&load->done, finished))
		count(stats, done);
	else
		count(stats, done_stale);

	__u64 now = bpf_ktime_get_coarse_ns();
	__u64 mark_ns = load->mark_ns;

	if (now - mark_ns < TETHER_RECONCILE_NS ||
	    __sync_val_compare_and_swap(&load->mark_ns, mark_ns, now) != mark_ns)
		return XDP_DROP;
	/* This CPU reconciles; cancellations read now cover every reservation
	 * the mark counted that was given back (a reservation is given back
	 * within the same packet), so the bound errs low. */
	__u64 mark = load->mark, cancelled = load->cancelled;
	__u64 received = req->done_received;

	if (mark > cancelled + received) {
		__u64 bound = mark - cancelled - received, lost = load->lost;

		if (bound > lost && raise_to(&load->lost, bound) && stats)
			stats->lost_fixed += bound - lost;
	}
	load->mark = load->started;
	return XDP_DROP;
}

/* An ALIVE from a backend: the tag under the backend's liveness key, a
 * sequence number above every one accepted, the backend's own interface
 * (an L2 backend's; a routed one's may come in on any).
 * Moves the heartbeat deadline forward (never back); a backend tetherd has
 * taken down stays down until its agent's heartbeat reaches tetherd. */
static __always_inline int take_alive(struct xdp_md *ctx, const struct request *req,
				      struct tether_stats *stats)
{
	const struct tether_hdr *hdr = req->hdr;
	__u64 id = bpf_be64_to_cpu(hdr->function_id);
	__u64 seq = bpf_be64_to_cpu(hdr->routing_key);

	if (id >= TETHER_MAX_BACKENDS) {
		count(stats, alive_forged);
		return XDP_DROP;
	}
	__u32 backend_id = (__u32)id;
	struct backend_liveness *live = bpf_map_lookup_elem(&liveness, &backend_id);
	struct backend_record *backend = bpf_map_lookup_elem(&backends, &backend_id);

	/* A routed backend's datagrams come back by whatever route leads here:
	 * the tag, under a key only its agent holds, is what vouches for them. */
	if (!live || !backend || (!live->key[0] && !live->key[1]) ||
	    backend->state == BACKEND_FREE ||
	    (backend->encap == BACKEND_L2 && backend->ifindex != ctx->ingress_ifindex) ||
	    hdr->container_token.slot || hdr->container_token.generation ||
	    tether_alive_tag(live->key, id, seq) != bpf_be64_to_cpu(hdr->container_token.secret)) {
		count(stats, alive_forged);
		return XDP_DROP;
	}
	if (!raise_to(&live->last_seq, seq)) {
		count(stats, alive_replayed);
		return XDP_DROP;
	}
	__u64 expiry = backend->heartbeat_expiry_ns;

	/* 0: no deadline (a fleet's liveness is its store's). */
	if (expiry) {
		__u64 until = bpf_ktime_get_coarse_ns() + live->window_ns;

		if (until > expiry)
			raise_to(&backend->heartbeat_expiry_ns, until);
	}
	count(stats, alive);
	return XDP_DROP;
}

#endif
