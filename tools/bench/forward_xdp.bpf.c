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
 * the MACs, redirect. No validation, no stamping, no counters.
 * fwd_bare_vxlan and fwd_bare_ipip are the same for routed backends
 * (tools/bench_forward_encap.sh): the lookup gives precomputed outer headers
 * (struct fwd_encap_route), pushed in front of the request's IP packet with
 * its lengths added in; no FIB lookup, no hash, no checksum but the outer
 * IPv4 header's.
 *
 * fwd_transit is the transit namespace's XDP switch/router of
 * tools/bench_forward_encap.sh (struct fwd_transit_config). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "forward.h"
#include "words.h" /* bpf/ */

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
	copy_words(data, frame->bytes, FWD_FRAME_LEN);
	return XDP_TX;
}

/* The bare forwarders' parse: a request is Ethernet, IPv4 without options,
 * UDP and a Tether header. Its IPv4 header and its token's slot; NULL when
 * the frame is not one. */
static __always_inline struct iphdr *request_slot(void *data, void *data_end, __u32 *slot)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return NULL;
	struct udphdr *udp = (void *)(ip + 1);
	struct tether_hdr *hdr = (void *)(udp + 1);

	if ((void *)(hdr + 1) > data_end || hdr->magic != bpf_htons(TETHER_MAGIC))
		return NULL;
	*slot = bpf_ntohl(hdr->container_token.slot);
	return ip;
}

SEC("xdp")
int fwd_bare(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 slot;

	if (!request_slot(data, data_end, &slot))
		return XDP_PASS;
	struct fwd_route *route = bpf_map_lookup_elem(&fwd_routes, &slot);

	if (!route || !route->ifindex)
		return XDP_DROP;
	put_mac(eth->h_dest, route->dst_mac);
	put_mac(eth->h_source, route->src_mac);
	return bpf_redirect_map(&fwd_ports, route->ifindex, XDP_DROP);
}

/* ------------------------------------------------ encapsulating, bare */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FWD_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct fwd_encap_route);
} fwd_encap_routes SEC(".maps");

#define FWD_VXLAN_LEN (8 + 8 + ETH_HLEN) /* UDP, VXLAN, inner Ethernet */

/* len bytes (even) of precomputed headers into the frame, 8 at a time while
 * they last (unaligned packet access is allowed where the kernel has
 * efficient unaligned access, as on x86). */
static __always_inline void copy_outer(void *to, const void *from, const int len)
{
	int i = 0;

#pragma unroll
	for (; i + 8 <= len; i += 8)
		*(__u64 *)(to + i) = *(const __u64 *)(from + i);
#pragma unroll
	for (; i < len; i += 2)
		*(__u16 *)(to + i) = *(const __u16 *)(from + i);
}

/* The request's Ethernet header becomes the route's outer headers, the
 * lengths added in: the outer IPv4 header's total length and its checksum
 * (precomputed with a length of 0: RFC 1624's update), IPv6's payload
 * length, VXLAN's UDP length. */
static __always_inline int push_outer(struct xdp_md *ctx, const struct fwd_encap_route *route,
				      __u16 inner_len, const int v6, const int vxlan)
{
	const int ip_len = v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	const int added = ip_len + (vxlan ? FWD_VXLAN_LEN : 0);
	__u16 payload = inner_len + (vxlan ? FWD_VXLAN_LEN : 0);

	if (bpf_xdp_adjust_head(ctx, -added))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN + added > data_end)
		return XDP_DROP;
	copy_outer(data, route->outer, ETH_HLEN + added);
	if (v6) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		ip6->payload_len = bpf_htons(payload);
	} else {
		struct iphdr *ip = data + ETH_HLEN;

		ip->tot_len = bpf_htons(sizeof(*ip) + payload);
		__u32 sum = (__u16)~ip->check + (__u32)ip->tot_len;

		ip->check = ~((sum & 0xffff) + (sum >> 16));
	}
	if (vxlan) {
		struct udphdr *udp = data + ETH_HLEN + ip_len;

		udp->len = bpf_htons(payload);
	}
	return bpf_redirect_map(&fwd_ports, route->ifindex, XDP_DROP);
}

static __always_inline int bare_encap(struct xdp_md *ctx, const int vxlan)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 slot;
	struct iphdr *ip = request_slot(data, data_end, &slot);

	if (!ip)
		return XDP_PASS;
	struct fwd_encap_route *route = bpf_map_lookup_elem(&fwd_encap_routes, &slot);

	if (!route || !route->ifindex)
		return XDP_DROP;
	__u16 inner_len = bpf_ntohs(ip->tot_len);

	if (route->outer_v6)
		return push_outer(ctx, route, inner_len, 1, vxlan);
	return push_outer(ctx, route, inner_len, 0, vxlan);
}

SEC("xdp")
int fwd_bare_vxlan(struct xdp_md *ctx)
{
	return bare_encap(ctx, 1);
}

SEC("xdp")
int fwd_bare_ipip(struct xdp_md *ctx)
{
	return bare_encap(ctx, 0);
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
	put_mac(eth->h_dest, route->dst_mac);
	put_mac(eth->h_source, route->src_mac);
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

/* ------------------------------------------------------------ transit */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_transit_config);
} fwd_transit_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * FWD_MAX_BACKENDS);
	__type(key, struct fwd_addr);
	__type(value, struct fwd_route);
} fwd_transit_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FWD_MAX_BACKENDS);
	__type(key, struct fwd_mac);
	__type(value, struct fwd_route);
} fwd_transit_ports SEC(".maps");

/* The transit: frames to its own MAC routed by their IP destination (MACs
 * rewritten), others switched by their destination MAC; redirected to the
 * port (bpf_redirect: ifindexes of the transit's namespace, where this runs).
 * Neither TTL nor checksum is touched, and what it has no entry for passes
 * to the transit namespace's stack. */
SEC("xdp")
int fwd_transit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0;
	struct fwd_transit_config *config = bpf_map_lookup_elem(&fwd_transit_config, &zero);
	struct fwd_route *hop;

	if ((void *)(eth + 1) > data_end || !config)
		return XDP_DROP;
	if (*(__u32 *)eth->h_dest == *(__u32 *)config->mac &&
	    *(__u16 *)&eth->h_dest[4] == *(__u16 *)&config->mac[4]) {
		struct fwd_addr dest __attribute__((aligned(8))) = {}; /* copied as words */

		if (eth->h_proto == bpf_htons(ETH_P_IP)) {
			struct iphdr *ip = (void *)(eth + 1);

			if ((void *)(ip + 1) > data_end)
				return XDP_PASS;
			dest.addr[10] = dest.addr[11] = 0xff;
			__builtin_memcpy(&dest.addr[12], &ip->daddr, 4);
		} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
			struct ipv6hdr *ip6 = (void *)(eth + 1);

			if ((void *)(ip6 + 1) > data_end)
				return XDP_PASS;
			copy_words(dest.addr, &ip6->daddr, 16);
		} else {
			return XDP_PASS;
		}
		hop = bpf_map_lookup_elem(&fwd_transit_routes, &dest);
		if (!hop)
			return XDP_PASS;
		put_mac(eth->h_dest, hop->dst_mac);
		put_mac(eth->h_source, hop->src_mac);
	} else {
		struct fwd_mac mac __attribute__((aligned(8))) = {}; /* put_mac's words */

		put_mac(mac.mac, eth->h_dest);
		hop = bpf_map_lookup_elem(&fwd_transit_ports, &mac);
		if (!hop)
			return XDP_PASS;
	}
	return bpf_redirect(hop->ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
