// SPDX-License-Identifier: GPL-2.0 OR MIT
/* The forwarding benchmark's traffic generator, its bare forwarder, a floor
 * (forwarding without routing), and the pass-through program that lets
 * frames into the stack for the baselines.
 *
 * fwd_generate runs under BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on
 * the generator's veth: each frame is written whole from the next entry of
 * the current population (the generator recycles its pages, and the router
 * downstream rewrites frames in place: MACs, token, checksums, or the IP
 * header under DNAT), then XDP_TX sends it out of that veth, into the router
 * namespace through the veth's peer.
 *
 * fwd_bare is the upper bound a forwarder can reach here: parse Ethernet,
 * IPv4 and UDP, check the magic, one array lookup on the token's slot, rewrite
 * the MACs, redirect. No validation, no stamping, no counters. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "forward.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_config);
} fwd_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FWD_MIXES * FWD_MAX_POPULATION);
	__type(key, __u32);
	__type(value, struct fwd_frame);
} fwd_frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_gen_state);
} fwd_gen_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FWD_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct fwd_route);
} fwd_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, FWD_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} fwd_ports SEC(".maps");

SEC("xdp")
int fwd_generate(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct fwd_config *config = bpf_map_lookup_elem(&fwd_config, &zero);
	struct fwd_gen_state *state = bpf_map_lookup_elem(&fwd_gen_state, &zero);

	if (!config || !state || !config->population || data + FWD_FRAME_LEN > data_end)
		return XDP_ABORTED;
	__u32 index = state->sequence;

	if (index >= config->population)
		index = 0;
	state->sequence = index + 1;
	state->sent++;
	index += config->base;

	struct fwd_frame *frame = bpf_map_lookup_elem(&fwd_frames, &index);

	if (!frame)
		return XDP_ABORTED;
	__builtin_memcpy(data, frame->bytes, FWD_FRAME_LEN);
	return XDP_TX;
}

SEC("xdp")
int fwd_bare(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	struct udphdr *udp = (void *)(ip + 1);
	struct tether_hdr *hdr = (void *)(udp + 1);

	if ((void *)(hdr + 1) > data_end || hdr->magic != bpf_htons(TETHER_MAGIC))
		return XDP_PASS;
	__u32 slot = bpf_ntohl(hdr->container_token.slot);
	struct fwd_route *route = bpf_map_lookup_elem(&fwd_routes, &slot);

	if (!route || !route->ifindex)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, route->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, route->src_mac, ETH_ALEN);
	return bpf_redirect_map(&fwd_ports, route->ifindex, XDP_DROP);
}

/* The floor: what every XDP row pays besides routing (the generator, the veth
 * hop, a redirect, the sinks): no parsing; frames go round robin to the
 * backends of slots 0..3 (one per backend), spread like the routed rows'. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fwd_floor_next SEC(".maps");

SEC("xdp")
int fwd_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0;
	__u32 *next = bpf_map_lookup_elem(&fwd_floor_next, &zero);

	if ((void *)(eth + 1) > data_end || !next)
		return XDP_DROP;
	__u32 slot = (*next)++ & 3;
	struct fwd_route *route = bpf_map_lookup_elem(&fwd_routes, &slot);

	if (!route || !route->ifindex)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, route->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, route->src_mac, ETH_ALEN);
	return bpf_redirect_map(&fwd_ports, route->ifindex, XDP_DROP);
}

/* The stack's way in for the nftables and userspace rows: redirected frames
 * reach a veth only when it has an XDP program (or GRO). */
SEC("xdp")
int fwd_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

/* The router's backend-facing veths in the bare forwarder's row with DONEs:
 * the completions are dropped unread (what their traffic alone costs). */
SEC("xdp")
int fwd_drop(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
