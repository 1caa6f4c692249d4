/* SPDX-License-Identifier: MIT */
/* One frame through Tether: parse, route (bpf/routing.h), stamp and forward
 * (bpf/forward.h, or bpf/encap.h for routed backends); everything not for
 * a service address goes to the host stack untouched; a running trace
 * records each decision (bpf/trace.h). The XDP entry point (tether_xdp.c)
 * and the benchmark's wrapper (tools/bench/) both call route_frame(). */
#ifndef TETHER_BPF_ROUTER_H
#define TETHER_BPF_ROUTER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "counters.h"
#include "encap.h"
#include "forward.h"
#include "load.h"
#include "maps.h"
#include "parse.h"
#include "routing.h"
#include "trace.h"

/* What the program does with a frame for a service or completion address. */
static __always_inline int act_on(struct xdp_md *ctx, enum parse_result parsed,
				  struct request *req, struct choice *chosen,
				  struct tether_stats *stats)
{
	switch (parsed) {
	case PARSE_NOT_SERVICE: /* handled by route_frame */
	case PARSE_MALFORMED:
		count(stats, malformed);
		return XDP_DROP;
	case PARSE_FRAGMENT:
		count(stats, fragment);
		return XDP_DROP;
	case PARSE_DONE:
		return take_done(ctx, req, stats);
	case PARSE_ALIVE:
		return take_alive(ctx, req, stats);
	case PARSE_COMPLETION_BAD:
		count(stats, completion_bad);
		return XDP_DROP;
	case PARSE_REQUEST:
		break;
	}

	__u64 now = bpf_ktime_get_coarse_ns();

	switch (route_request(req, now, stats, chosen)) {
	case ROUTE_FORWARD:
#ifndef TETHER_NO_ROUTED /* the bench's P2C build, under the verifier's limit */
		if (chosen->backend->encap != BACKEND_L2)
			return send_routed(ctx, req, chosen, now, stats);
#endif
		stamp_token(req, chosen);
		return send_to_backend(ctx, req, chosen, stats);
	case ROUTE_NO_CAPACITY:
		return hand_to_slow_path(ctx, req, TETHER_STATUS_NO_CAPACITY, stats);
	case ROUTE_STRICT_GONE:
		return hand_to_slow_path(ctx, req, TETHER_STATUS_CONTAINER_GONE, stats);
	case ROUTE_FULL:
		return hand_to_slow_path(ctx, req, TETHER_STATUS_OVERLOADED, stats);
	}
	return XDP_DROP;
}

static __always_inline int route_frame(struct xdp_md *ctx)
{
	struct tether_stats *stats = stats_for_this_cpu();
	struct request req = {};
	struct choice chosen = {};
	enum parse_result parsed = parse_request(ctx, &req);

	if (parsed == PARSE_NOT_SERVICE) {
		count(stats, pass);
		return XDP_PASS;
	}
	/* Both nothing but a lookup and a branch unless a trace runs. */
	trace_begin(ctx, parsed, &req, stats);
	int action = act_on(ctx, parsed, &req, &chosen, stats);

	trace_end(parsed, &chosen, action);
	return action;
}

#endif
