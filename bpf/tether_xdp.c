// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Tether's XDP program: the one entry point. The decision itself reads top to
 * bottom in router.h -> parse.h, routing.h, forward.h; maps in maps.h. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "router.h"

SEC("xdp")
int tether_route(struct xdp_md *ctx)
{
	return route_frame(ctx);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
