// SPDX-License-Identifier: GPL-2.0 OR MIT
/* The forwarding benchmark's counting sink, one instance per backend veth
 * (backend is set before load). It reads the Tether header of every UDP
 * frame that carries one, judges whether the frame reached the right
 * container (see struct fwd_counts), counts, and drops, so the sink costs
 * little and is never the bottleneck. Anything else (ARP, IPv6 ND) passes. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "forward.h"

const volatile __u32 backend = 0;

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

	__u32 key = backend;
	struct fwd_counts *counts = bpf_map_lookup_elem(&fwd_counts, &key);

	if (counts) {
		if (right_container(hdr))
			counts->right++;
		else
			counts->wrong++;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
