// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Tether's XDP program: the one entry point. Parse the frame, route the
 * request (bpf/routing.h), stamp and forward it (bpf/forward.h); everything
 * not for a service address goes to the host stack untouched. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "counters.h"
#include "forward.h"
#include "maps.h"
#include "parse.h"
#include "routing.h"

SEC("xdp")
int tether_route(struct xdp_md *ctx)
{
	struct tether_stats *stats = stats_for_this_cpu();
	struct request req = {};

	switch (parse_request(ctx, &req)) {
	case PARSE_NOT_SERVICE:
		count(stats, pass);
		return XDP_PASS;
	case PARSE_MALFORMED:
		count(stats, malformed);
		return XDP_DROP;
	case PARSE_FRAGMENT:
		count(stats, fragment);
		return XDP_DROP;
	case PARSE_REQUEST:
		break;
	}

	struct choice chosen = {};

	switch (route_request(&req, stats, &chosen)) {
	case ROUTE_FORWARD:
		stamp_token(&req, &chosen);
		return send_to_backend(ctx, &req, &chosen, stats);
	case ROUTE_NO_CAPACITY:
		return hand_to_slow_path(&req, TETHER_STATUS_NO_CAPACITY);
	case ROUTE_STRICT_GONE:
		return hand_to_slow_path(&req, TETHER_STATUS_CONTAINER_GONE);
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
