// SPDX-License-Identifier: MIT
/* The VM's IPIP decapsulator (tether-agent --decap ipip, user/agent/decap_xdp.c)
 * for kernels without the ipip and ip6_tunnel modules: an XDP program on the
 * VM's interface that takes the outer IPv4 or IPv6 header off a packet
 * addressed to the agent's --addr whose payload is IPv4 (protocol 4) or IPv6
 * (protocol 41), any inner family in any outer family, as bpf/encap.h sends
 * them. The inner packet then goes up the VM's stack on the same interface,
 * behind the same Ethernet addresses, and reaches the container's socket.
 * Everything else passes untouched: other destinations, other protocols,
 * outer fragments (the kernel's, to reassemble) and frames too short to hold
 * an outer header. A packet that is ours but whose inner header is cut off or
 * of the wrong version is dropped and counted. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tether/decap.h"

/* The agent's address, set by the loader before the program is loaded: an
 * IPv4 one in the IPv4-mapped form (::ffff:a.b.c.d), as everywhere in Tether. */
const volatile __u8 decap_addr[16];

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tether_decap_stats);
} decap_stats SEC(".maps");

#define IP_FRAGMENTED 0x3fff /* MF or an offset: a fragment */

static __always_inline void count_truncated(void)
{
	__u32 zero = 0;
	struct tether_decap_stats *s = bpf_map_lookup_elem(&decap_stats, &zero);

	if (s)
		s->truncated++;
}

static __always_inline int agent_is_v4(void)
{
	for (int i = 0; i < 10; i++)
		if (decap_addr[i])
			return 0;
	return decap_addr[10] == 0xff && decap_addr[11] == 0xff;
}

static __always_inline int is_ours_v4(__be32 daddr)
{
	const __u8 *a = (const __u8 *)&daddr;

	return agent_is_v4() && decap_addr[12] == a[0] && decap_addr[13] == a[1] &&
	       decap_addr[14] == a[2] && decap_addr[15] == a[3];
}

/* An IPv4 agent's mapped form is no IPv6 destination. */
static __always_inline int is_ours_v6(const struct in6_addr *daddr)
{
	if (agent_is_v4())
		return 0;
	for (int i = 0; i < 16; i++)
		if (daddr->s6_addr[i] != decap_addr[i])
			return 0;
	return 1;
}

SEC("xdp")
int tether_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 outer_len;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5)
			return XDP_PASS;
		proto = ip->protocol;
		if ((proto != IPPROTO_IPIP && proto != IPPROTO_IPV6) || !is_ours_v4(ip->daddr))
			return XDP_PASS;
		if (ip->frag_off & bpf_htons(IP_FRAGMENTED))
			return XDP_PASS;
		outer_len = ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		proto = ip6->nexthdr; /* bpf/encap.h sends no extension headers */
		if ((proto != IPPROTO_IPIP && proto != IPPROTO_IPV6) || !is_ours_v6(&ip6->daddr))
			return XDP_PASS;
		outer_len = sizeof(*ip6);
	} else {
		return XDP_PASS;
	}

	/* Ours from here: an inner header that is not there is dropped. */
	__u8 *inner = (__u8 *)(eth + 1) + outer_len;
	__u32 need = proto == IPPROTO_IPIP ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);

	if (outer_len > 60 || (void *)(inner + need) > data_end ||
	    (*inner >> 4) != (proto == IPPROTO_IPIP ? 4 : 6)) {
		count_truncated();
		return XDP_DROP;
	}

	struct ethhdr copy = *eth;

	copy.h_proto = bpf_htons(proto == IPPROTO_IPIP ? ETH_P_IP : ETH_P_IPV6);
	if (bpf_xdp_adjust_head(ctx, (int)outer_len))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	*eth = copy;

	__u32 zero = 0;
	struct tether_decap_stats *s = bpf_map_lookup_elem(&decap_stats, &zero);

	if (s)
		s->decapsulated++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
