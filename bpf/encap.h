/* SPDX-License-Identifier: MIT */
/* Routed backends (DESIGN.md, "Forwarding"): the request, stamped as for L2,
 * is wrapped in an outer IP header -- VXLAN (outer IP, UDP 4789, VXLAN with
 * the backend's VNI, an inner Ethernet header) or IPIP (outer IP around the
 * request's IP packet) -- and leaves by the interface and next hop the
 * kernel's FIB gives for the backend's address (bpf_fib_lookup), kept per
 * CPU and backend for TETHER_NEXTHOP_TTL_NS (nexthop_cache: a lookup costs
 * more than the rest of the routed path), so a route or neighbour change is
 * followed within 50 ms, without a restart; failures are never kept.
 *
 * Outer family = the backend address's family. IPIP carries IPv4 in IPv4
 * (protocol 4, RFC 2003), IPv6 in IPv6 (41, RFC 2473), and also 4in6 and
 * 6in4 (RFC 2473, RFC 4213); VXLAN carries an Ethernet frame, so any.
 *
 * Checksums: the outer IPv4 header's is computed; VXLAN's outer UDP checksum
 * is 0 over IPv4 (RFC 7348) and computed over IPv6 (RFC 8200), without
 * reading the payload: the request's own, valid UDP checksum gives the sum of
 * its UDP datagram (the one's complement of its pseudo header's sum), and a
 * valid IPv4 header sums to zero. An IPv4 request without a UDP checksum has
 * no such sum: to VXLAN over IPv6 it goes to the slow path (encap_slow).
 *
 * Whatever the FIB cannot give a frame for goes up to the slow path before
 * the frame is touched (room given back): no route (fib_no_route, no_route),
 * a neighbour not resolved (fib_no_neigh: the slow path's send through the
 * kernel resolves it), a frame above the egress MTU once encapsulated
 * (too_big: answered TOO_BIG). The outer frame is never fragmented (DF). */
#ifndef TETHER_BPF_ENCAP_H
#define TETHER_BPF_ENCAP_H

#include "tether/hash.h"
#include "counters.h"
#include "forward.h"
#include "maps.h"
#include "parse.h"

#define ENCAP_AF_INET 2
#define ENCAP_AF_INET6 10
#define ENCAP_TTL 64
#define ENCAP_IP_DF 0x4000
#define VXLAN_FLAG_VNI 0x08
/* VXLAN's outer UDP source port: 49152-65535 from the hash (RFC 7348). */
#define VXLAN_SPORT_BASE 0xc000
#define VXLAN_SPORT_MASK 0x3fff
/* Extension headers of an IPv6 request summed for VXLAN over IPv6, in 8-byte
 * units: beyond them, the slow path. */
#define ENCAP_EXT_UNITS 64

struct vxlan_hdr {
	__u8 flags;
	__u8 reserved1[3];
	__u8 vni[3];
	__u8 reserved2;
};

/* What follows the outer IP header of a VXLAN frame. */
struct vxlan_outer {
	struct udphdr udp;
	struct vxlan_hdr vxlan;
	struct ethhdr inner;
} __attribute__((packed));

_Static_assert(sizeof(struct vxlan_outer) == 30, "UDP, VXLAN and inner Ethernet: 30 bytes");

/* The routed send, worked out before the frame is touched. */
struct encap_plan {
	struct bpf_fib_lookup fib; /* the egress ifindex, MACs */
	/* The outer addresses (the FIB's answer replaces its destination with
	 * the next hop's). IPv4: the first 4 bytes. */
	__u8 source[16];
	__u8 dest[16];
	__u32 inner_len;           /* the request's IP packet */
	__u32 payload_len;         /* what follows the outer IP header */
	__u32 sum;                 /* VXLAN over IPv6: the inner IP packet's sum */
	__be32 flow_label;         /* IPv6 outer: 20 bits from the hash */
	__be16 sport;              /* VXLAN */
	__u8 tos;                  /* the request's DSCP and ECN, carried outside */
	__u8 outer_v4;
	__u8 vxlan;
	__u8 l4_proto;             /* UDP, IPIP or IPv6 */
};

/* A key keeps its path through the fabric; other requests their flow's. */
static __always_inline __u64 encap_hash(const struct request *req)
{
	const struct tether_hdr *hdr = req->hdr;

	if (hdr->flags & TETHER_F_KEY)
		return tether_hash_key(bpf_be64_to_cpu(hdr->function_id),
				       bpf_be64_to_cpu(hdr->routing_key));
	return tether_hash_flow(req->flow_src.addr, req->service.addr, req->flow_src.port,
				req->service.port);
}

/* The request was reserved room (bpf/load.h take_room) but is not sent from
 * here: given back, as a reservation another CPU beat is. */
static __always_inline void give_back_room(const struct choice *chosen)
{
	__u32 slot = chosen->slot;

	if (!chosen->container->limit)
		return;
	struct container_load *load = bpf_map_lookup_elem(&inflight, &slot);

	if (load)
		__sync_fetch_and_add(&load->cancelled, 1);
}

/* The request's IP packet: its length and TOS; -1 if unreadable. */
static __always_inline int inner_packet(const struct request *req, void *data_end,
					struct encap_plan *plan)
{
	if (req->is_ipv4) {
		struct iphdr *ip = req->l3;

		if ((void *)(ip + 1) > data_end)
			return -1;
		plan->inner_len = bpf_ntohs(ip->tot_len);
		plan->tos = ip->tos;
	} else {
		struct ipv6hdr *ip6 = req->l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		plan->inner_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		plan->tos = ip6->priority << 4 | ip6->flow_lbl[0] >> 4;
	}
	return 0;
}

/* The one's complement sum of the request's IP packet, from its checksums
 * (see the top of this file); -1 when it cannot be had cheaply. */
static __always_inline int inner_sum(const struct request *req, void *data_end, __u32 *out)
{
	struct udphdr *udp = req->udp;

	if ((void *)(udp + 1) > data_end || udp->check == 0)
		return -1; /* IPv4 without a UDP checksum (IPv6 always has one) */

	/* The UDP datagram sums to the complement of its pseudo header. */
	__u32 pseudo = bpf_htons(IPPROTO_UDP) + udp->len;
	__u32 sum = 0;

	if (req->is_ipv4) {
		struct iphdr *ip = req->l3;

		if ((void *)(ip + 1) > data_end)
			return -1;
		pseudo = csum_add_words(pseudo, &ip->saddr, 4);
		/* The IPv4 header, options and all, sums to zero (0xffff). */
	} else {
		struct ipv6hdr *ip6 = req->l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		pseudo = csum_add_words(pseudo, &ip6->saddr, 16);
		sum = csum_add_words(0, ip6, sizeof(*ip6) / 2);

		/* Extension headers are outside the UDP checksum: summed. */
		void *pos = ip6 + 1;

		for (int i = 0; i < ENCAP_EXT_UNITS; i++) {
			if (pos >= (void *)udp)
				break;
			__u16 *unit = pos;

			if ((void *)(unit + 4) > data_end)
				return -1;
			sum += unit[0] + unit[1] + unit[2] + unit[3];
			pos += 8;
		}
		if (pos != (void *)udp)
			return -1;
	}
	*out = sum + (__u16)~csum_fold(pseudo);
	return 0;
}

enum encap_lookup {
	ENCAP_LOOKUP_OK,
	ENCAP_LOOKUP_NO_ROUTE,
	ENCAP_LOOKUP_NO_NEIGH,
	ENCAP_LOOKUP_TOO_BIG,
	ENCAP_LOOKUP_NO_SOURCE,
};

/* The outer header's addresses and the FIB's answer for them. The lookup
 * is the kernel's forwarding lookup from the ingress interface (or, with
 * the backend's --iface, an output lookup confined to it), with the outer
 * packet's length, so its MTU check is the egress MTU check. */
static __always_inline enum encap_lookup look_up_next_hop(struct xdp_md *ctx,
							   const struct backend_record *backend,
							   __u32 backend_id, struct encap_plan *plan)
{
	__u32 zero = 0;
	struct encap_config *config = bpf_map_lookup_elem(&encap_config, &zero);
	struct bpf_fib_lookup *fib = &plan->fib;
	__u32 flags = 0;

	if (!config)
		return ENCAP_LOOKUP_NO_SOURCE;
	if (plan->outer_v4) {
		if (!config->source4)
			return ENCAP_LOOKUP_NO_SOURCE;
		fib->family = ENCAP_AF_INET;
		fib->tos = plan->tos;
		fib->ipv4_src = config->source4;
		__builtin_memcpy(&fib->ipv4_dst, &backend->addr[12], 4);
		__builtin_memcpy(plan->source, &config->source4, 4);
		__builtin_memcpy(plan->dest, &backend->addr[12], 4);
		fib->tot_len = sizeof(struct iphdr) + plan->payload_len;
	} else {
		const __u64 *source = (const __u64 *)config->source6;

		if (!source[0] && !source[1])
			return ENCAP_LOOKUP_NO_SOURCE;
		fib->family = ENCAP_AF_INET6;
		fib->flowinfo = plan->flow_label;
		__builtin_memcpy(fib->ipv6_src, config->source6, 16);
		__builtin_memcpy(fib->ipv6_dst, backend->addr, 16);
		__builtin_memcpy(plan->source, config->source6, 16);
		__builtin_memcpy(plan->dest, backend->addr, 16);
		fib->tot_len = sizeof(struct ipv6hdr) + plan->payload_len;
	}
	fib->l4_protocol = plan->l4_proto;
	if (plan->vxlan) {
		fib->sport = plan->sport;
		fib->dport = bpf_htons(TETHER_VXLAN_PORT);
	}
	if (backend->ifindex) {
		fib->ifindex = backend->ifindex;
		flags = BPF_FIB_LOOKUP_OUTPUT;
	} else {
		fib->ifindex = ctx->ingress_ifindex;
	}

	/* The cache first: a hit within its time gives the egress, MACs and
	 * MTU of the last lookup for this backend address. */
	__u64 now = bpf_ktime_get_coarse_ns();
	struct nexthop_entry *cached = bpf_map_lookup_elem(&nexthop_cache, &backend_id);

	if (cached && now < cached->expires_ns && same_address(cached->dest, backend->addr)) {
		if (fib->tot_len > cached->mtu)
			return ENCAP_LOOKUP_TOO_BIG;
		fib->ifindex = cached->ifindex;
		__builtin_memcpy(fib->dmac, cached->dmac, ETH_ALEN);
		__builtin_memcpy(fib->smac, cached->smac, ETH_ALEN);
		return ENCAP_LOOKUP_OK;
	}

	struct bpf_fib_lookup probe = *fib;
	long rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), flags);

	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		/* Once per fill: the egress MTU, asked for with the largest
		 * length (the answer is FRAG_NEEDED with mtu_result). */
		probe.tot_len = 0xffff;
		if (cached &&
		    bpf_fib_lookup(ctx, &probe, sizeof(probe), flags) == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
			cached->expires_ns = now + TETHER_NEXTHOP_TTL_NS;
			__builtin_memcpy(cached->dest, backend->addr, 16);
			cached->ifindex = fib->ifindex;
			cached->mtu = probe.mtu_result;
			__builtin_memcpy(cached->dmac, fib->dmac, ETH_ALEN);
			__builtin_memcpy(cached->smac, fib->smac, ETH_ALEN);
		}
		return ENCAP_LOOKUP_OK;
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return ENCAP_LOOKUP_NO_NEIGH;
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return ENCAP_LOOKUP_TOO_BIG;
	return ENCAP_LOOKUP_NO_ROUTE; /* blackhole, unreachable, prohibit, not
				       * forwarded, forwarding off, an error */
}

static __always_inline void write_outer_ipv4(struct iphdr *ip, const struct encap_plan *plan)
{
	struct iphdr h = {
		.version = 4,
		.ihl = 5,
		.tos = plan->tos,
		.tot_len = bpf_htons(sizeof(h) + plan->payload_len),
		.frag_off = bpf_htons(ENCAP_IP_DF),
		.ttl = ENCAP_TTL,
		.protocol = plan->l4_proto,
	};

	__builtin_memcpy(&h.saddr, plan->source, 4);
	__builtin_memcpy(&h.daddr, plan->dest, 4);

	h.check = ~csum_fold(csum_add_words(0, &h, sizeof(h) / 2));
	__builtin_memcpy(ip, &h, sizeof(h));
}

static __always_inline void write_outer_ipv6(struct ipv6hdr *ip6, const struct encap_plan *plan)
{
	__u32 first = bpf_ntohl(plan->flow_label) & 0xfffff;

	first |= 6u << 28 | (__u32)plan->tos << 20;
	*(__be32 *)ip6 = bpf_htonl(first);
	ip6->payload_len = bpf_htons(plan->payload_len);
	ip6->nexthdr = plan->l4_proto;
	ip6->hop_limit = ENCAP_TTL;
	__builtin_memcpy(&ip6->saddr, plan->source, 16);
	__builtin_memcpy(&ip6->daddr, plan->dest, 16);
}

/* UDP, VXLAN and the inner Ethernet header; the UDP checksum over IPv6 from
 * the pseudo header, these 30 bytes and the inner packet's sum. */
static __always_inline void write_vxlan(struct vxlan_outer *out,
					const struct backend_record *backend,
					const struct encap_plan *plan, __be16 l3_proto)
{
	struct vxlan_outer v = {
		.udp.source = plan->sport,
		.udp.dest = bpf_htons(TETHER_VXLAN_PORT),
		.udp.len = bpf_htons(plan->payload_len),
		.vxlan.flags = VXLAN_FLAG_VNI,
		.inner.h_proto = l3_proto,
	};

	__builtin_memcpy(v.vxlan.vni, backend->tunnel.vni, 3);
	__builtin_memcpy(v.inner.h_dest, backend->mac, ETH_ALEN);
	__builtin_memcpy(v.inner.h_source, plan->fib.smac, ETH_ALEN);
	if (!plan->outer_v4) {
		__u32 sum = plan->sum + bpf_htons(IPPROTO_UDP) + v.udp.len;

		sum = csum_add_words(sum, plan->source, 8);
		sum = csum_add_words(sum, plan->dest, 8);
		sum = csum_add_words(sum, &v, sizeof(v) / 2);

		__u16 check = ~csum_fold(sum);

		v.udp.check = check ? check : 0xffff;
	}
	__builtin_memcpy(out, &v, sizeof(v));
}

/* The frame's L2 header (Ethernet and the client's tags) becomes the outer
 * headers: one bpf_xdp_adjust_head, then every header written anew. Every
 * packet pointer of req is invalid afterwards. Returns 0, or -1 when the
 * frame could not be grown. */
static __always_inline int push_outer_headers(struct xdp_md *ctx, const struct request *req,
					      const struct backend_record *backend,
					      const struct encap_plan *plan)
{
	int old_l2 = sizeof(struct ethhdr) + req->vlan_count * VLAN_HLEN;
	int outer_ip = plan->outer_v4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	int added = outer_ip + (plan->vxlan ? sizeof(struct vxlan_outer) : 0);
	__be16 l3_proto = req->l3_proto;

	if (bpf_xdp_adjust_head(ctx, old_l2 - (int)sizeof(struct ethhdr) - added))
		return -1;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *next;

	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, plan->fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, plan->fib.smac, ETH_ALEN);
	if (plan->outer_v4) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return -1;
		eth->h_proto = bpf_htons(ETH_P_IP);
		write_outer_ipv4(ip, plan);
		next = ip + 1;
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		eth->h_proto = bpf_htons(ETH_P_IPV6);
		write_outer_ipv6(ip6, plan);
		next = ip6 + 1;
	}
	if (plan->vxlan) {
		struct vxlan_outer *v = next;

		if ((void *)(v + 1) > data_end)
			return -1;
		write_vxlan(v, backend, plan, l3_proto);
	}
	return 0;
}

/* A routed backend's request: the next hop first (on failure the request,
 * untouched, goes to the slow path), then stamped, wrapped and sent. */
static __always_inline int send_routed(struct xdp_md *ctx, struct request *req,
				       const struct choice *chosen, struct tether_stats *stats)
{
	const struct backend_record *backend = chosen->backend;
	void *data_end = (void *)(long)ctx->data_end;
	struct encap_plan plan = {};

	plan.vxlan = backend->encap == BACKEND_VXLAN;
	plan.outer_v4 = is_v4mapped(backend->addr);
	if (inner_packet(req, data_end, &plan)) {
		give_back_room(chosen);
		count(stats, encap_failed);
		return XDP_DROP;
	}

	__u64 hash = encap_hash(req);

	plan.flow_label = bpf_htonl((__u32)(hash >> 12) & 0xfffff);
	if (plan.vxlan) {
		plan.sport = bpf_htons(VXLAN_SPORT_BASE | ((__u32)(hash >> 48) & VXLAN_SPORT_MASK));
		plan.l4_proto = IPPROTO_UDP;
		plan.payload_len = sizeof(struct vxlan_outer) + plan.inner_len;
	} else {
		plan.l4_proto = req->is_ipv4 ? IPPROTO_IPIP : IPPROTO_IPV6;
		plan.payload_len = plan.inner_len;
	}

	switch (look_up_next_hop(ctx, backend, chosen->container->backend_id, &plan)) {
	case ENCAP_LOOKUP_OK:
		break;
	case ENCAP_LOOKUP_NO_ROUTE:
		give_back_room(chosen);
		count(stats, no_route);
		count(stats, fib_no_route);
		return hand_to_slow_path(ctx, req, TETHER_STATUS_NO_CAPACITY, stats);
	case ENCAP_LOOKUP_NO_NEIGH:
		give_back_room(chosen);
		count(stats, fib_no_neigh);
		return hand_to_slow_path(ctx, req, TETHER_STATUS_NO_CAPACITY, stats);
	case ENCAP_LOOKUP_TOO_BIG:
		give_back_room(chosen);
		count(stats, too_big);
		return hand_to_slow_path(ctx, req, TETHER_STATUS_TOO_BIG, stats);
	case ENCAP_LOOKUP_NO_SOURCE:
	default:
		give_back_room(chosen);
		count(stats, encap_failed);
		return XDP_DROP;
	}

	/* The datagram's sum is the same before and after stamping: both
	 * checksums are valid for the same pseudo header. */
	if (plan.vxlan && !plan.outer_v4 && inner_sum(req, data_end, &plan.sum)) {
		give_back_room(chosen);
		count(stats, encap_slow);
		return hand_to_slow_path(ctx, req, TETHER_STATUS_NO_CAPACITY, stats);
	}
	stamp_token(req, chosen);
	if (push_outer_headers(ctx, req, backend, &plan)) {
		give_back_room(chosen);
		count(stats, encap_failed);
		return XDP_DROP;
	}
	if (plan.vxlan)
		count(stats, encap_vxlan);
	else
		count(stats, encap_ipip);
	count_container(chosen->slot, (long)ctx->data_end - (long)ctx->data);
	if (plan.fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(plan.fib.ifindex, 0);
}

#endif
