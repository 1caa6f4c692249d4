// SPDX-License-Identifier: GPL-2.0 OR MIT
/* The forwarding benchmark's counting sink, one instance per backend veth
 * (backend is set before load). It reads the Tether header of every UDP
 * frame that carries one, judges whether the frame reached the right
 * container (see struct fwd_counts), counts, and drops, so the sink costs
 * little and is never the bottleneck; or, while fwd_sink_mode says so,
 * answers it with its container's DONE (XDP_TX back to the router). Anything
 * else (ARP, IPv6 ND) passes.
 *
 * With decap set before load (tools/bench_forward_encap.sh), a request
 * routed to the backend is judged inside its outer headers: VXLAN (outer
 * IPv4 or IPv6, UDP to 4789, VXLAN, the inner Ethernet header) or IPIP
 * (outer IPv4 or IPv6, protocol 4, the request's IPv4 packet); a request
 * without them (L2) as before. No DONE is sent for a routed one. */
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

const volatile __u32 backend = 0;
/* Where DONEs go (network order): the router's completion address, and this
 * backend's own address as their source. */
const volatile __u32 own_addr = 0;
const volatile __u32 completion_addr = 0;
const volatile __u16 completion_port = 0;
/* 1: requests may come wrapped in VXLAN or IPIP (see the top). */
const volatile __u32 decap = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_sink_mode);
} fwd_sink_mode SEC(".maps");

/* Per container slot: requests finished (and received), cumulative, as an
 * agent counts them; a DONE carries both. Only moved while DONEs are on. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FWD_MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} fwd_finished SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FWD_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct fwd_expect);
} fwd_expect SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FWD_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct fwd_counts);
} fwd_counts SEC(".maps");

static __always_inline int right_container(const struct tether_hdr *hdr)
{
	if (!(hdr->flags & (TETHER_F_STAMPED | TETHER_F_TOKEN)))
		return 0;
	__u32 slot = bpf_ntohl(hdr->container_token.slot);
	__u32 expected = (__u32)bpf_be64_to_cpu(hdr->request_id);

	if (slot != expected)
		return 0;
	struct fwd_expect *want = bpf_map_lookup_elem(&fwd_expect, &slot);

	return want && want->valid && want->backend == backend &&
	       want->token.generation == hdr->container_token.generation &&
	       want->token.secret == hdr->container_token.secret;
}

/* The request becomes its container's DONE in place, back out of the
 * interface it came in on: to the router that sent it, on the backend's
 * link, which is what the router checks. */
static __always_inline int answer_done(struct ethhdr *eth,
				       struct iphdr *ip, struct udphdr *udp,
				       struct tether_hdr *hdr, void *data_end)
{
	__u32 slot = bpf_ntohl(hdr->container_token.slot);
	__u64 *finished = bpf_map_lookup_elem(&fwd_finished, &slot);
	__be64 *received = (void *)(hdr + 1);
	__u8 mac[8] __attribute__((aligned(8))); /* put_mac's words */

	if (!finished || !(hdr->flags & TETHER_F_STAMPED) || ip->ihl != 5 ||
	    (void *)(received + 1) > data_end)
		return XDP_DROP;
	/* One CPU runs the generator, the router and the sinks (see
	 * tools/bench_forward.sh): no atomics needed. */
	__u64 count = *finished + 1;

	*finished = count;

	put_mac(mac, eth->h_dest);
	put_mac(eth->h_dest, eth->h_source);
	put_mac(eth->h_source, mac);
	ip->tot_len = bpf_htons(FWD_DONE_FRAME_LEN - 14);
	ip->saddr = own_addr;
	ip->daddr = completion_addr;
	ip->ttl = 64;
	ip->check = 0;
	__u32 sum = 0;
	__u16 *word = (__u16 *)ip;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += word[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = ~sum & 0xffff;
	udp->dest = bpf_htons(completion_port);
	udp->len = bpf_htons(8 + TETHER_HDR_LEN + TETHER_DONE_PAYLOAD_LEN);
	udp->check = 0; /* IPv4: not used */
	hdr->flags = TETHER_F_DONE_MASK;
	hdr->status = TETHER_STATUS_OK;
	hdr->routing_key = bpf_cpu_to_be64(count);
	*received = bpf_cpu_to_be64(count);
	/* The frame keeps its length: the bytes past the IP packet are
	 * Ethernet padding to the router. Not shortened with
	 * bpf_xdp_adjust_tail: the page goes back to the generator's pool
	 * (BPF_F_TEST_XDP_LIVE_FRAMES), which would send the next request
	 * from it at the DONE's length. */
	return XDP_TX;
}

#define FWD_VXLAN_PORT 4789

/* The request's IPv4 header behind a routed frame's outer headers, or the
 * frame's own (L2); NULL for what is neither. */
static __always_inline struct iphdr *unwrap(struct ethhdr *eth, void *data_end)
{
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		if (ip->protocol == IPPROTO_IPIP)
			return (void *)ip + ip->ihl * 4;
		udp = (void *)ip + ip->ihl * 4;
		if (ip->protocol != IPPROTO_UDP || (void *)(udp + 1) > data_end ||
		    udp->dest != bpf_htons(FWD_VXLAN_PORT))
			return ip; /* the request itself (or not UDP: passes) */
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return NULL;
		if (ip6->nexthdr == IPPROTO_IPIP)
			return (void *)(ip6 + 1);
		udp = (void *)(ip6 + 1);
		if (ip6->nexthdr != IPPROTO_UDP || (void *)(udp + 1) > data_end ||
		    udp->dest != bpf_htons(FWD_VXLAN_PORT))
			return NULL;
	} else {
		return NULL;
	}
	/* UDP, VXLAN (8 bytes), the inner Ethernet header. */
	struct ethhdr *inner = (void *)(udp + 1) + 8;

	if ((void *)(inner + 1) > data_end || inner->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	return (void *)(inner + 1);
}

SEC("xdp")
int fwd_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if (decap) {
		if ((void *)(eth + 1) > data_end)
			return XDP_PASS;
		ip = unwrap(eth, data_end);
		if (!ip)
			return XDP_PASS;
	} else if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		return XDP_PASS;
	}
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	struct tether_hdr *hdr = (void *)(udp + 1);

	if ((void *)(hdr + 1) > data_end || hdr->magic != bpf_htons(TETHER_MAGIC))
		return XDP_PASS;

	__u32 key = backend, zero = 0;
	struct fwd_counts *counts = bpf_map_lookup_elem(&fwd_counts, &key);
	struct fwd_sink_mode *mode = bpf_map_lookup_elem(&fwd_sink_mode, &zero);

	if (counts) {
		if (right_container(hdr))
			counts->right++;
		else
			counts->wrong++;
	}
	if (mode && mode->done && (void *)ip == (void *)(eth + 1))
		return answer_done(eth, ip, udp, hdr, data_end);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
