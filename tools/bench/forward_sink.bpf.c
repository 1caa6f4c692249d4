// SPDX-License-Identifier: GPL-2.0 OR MIT
/* The forwarding benchmark's counting sink, one instance per backend veth
 * (backend is set before load). It reads the Tether header of every UDP
 * frame that carries one, judges whether the frame reached the right
 * container (see struct fwd_counts), counts, and drops, so the sink costs
 * little and is never the bottleneck; or, while fwd_sink_mode says so,
 * answers it with its container's DONE (XDP_TX back to the router). Anything
 * else (ARP, IPv6 ND) passes. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "forward.h"

const volatile __u32 backend = 0;
/* Where DONEs go (network order): the router's completion address, and this
 * backend's own address as their source. */
const volatile __u32 own_addr = 0;
const volatile __u32 completion_addr = 0;
const volatile __u16 completion_port = 0;

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
	__u8 mac[ETH_ALEN];

	if (!finished || !(hdr->flags & TETHER_F_STAMPED) || ip->ihl != 5 ||
	    (void *)(received + 1) > data_end)
		return XDP_DROP;
	/* One CPU runs the generator, the router and the sinks (see
	 * tools/bench_forward.sh): no atomics needed. */
	__u64 count = *finished + 1;

	*finished = count;

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
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

SEC("xdp")
int fwd_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP)
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
	if (mode && mode->done)
		return answer_done(eth, ip, udp, hdr, data_end);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
