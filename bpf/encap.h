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
 * valid IPv4 header sums to zero. An IPv4 request without a UDP checksum, or
 * an IP packet longer than its UDP datagram, has no such sum: to VXLAN over
 * IPv6 it goes to the slow path (encap_slow).
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
	__u32 inner_len;           /* the request's IP packet */
	__u32 payload_len;         /* what follows the outer IP header */
	__u32 outer_len;           /* the outer IP packet */
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
		return tether_spread_key(bpf_be64_to_cpu(hdr->function_id),
					 bpf_be64_to_cpu(hdr->routing_key));
	return tether_spread_flow(req->flow_src.addr, req->service.addr, req->flow_src.port,
				  req->service.port);
}

/* The request was reserved room (bpf/load.h take_room) but is not sent from
 * here: given back, as a reservation another CPU beat is. The choice's limit,
 * not the record's (a key hit's fast way leaves no record in the choice: its
 * container has no limit, so no room was taken). */
static __always_inline void give_back_room(const struct choice *chosen)
{
	__u32 slot = chosen->slot;

	if (!chosen->limit)
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

/* plan->sum: the one's complement sum of the request's IP packet, from its
 * checksums (see the top of this file); -1 when it cannot be had cheaply. */
static __always_inline int inner_sum(const struct request *req, void *data_end,
				     struct encap_plan *plan)
{
	struct udphdr *udp = req->udp;

	if ((void *)(udp + 1) > data_end || udp->check == 0)
		return -1; /* IPv4 without a UDP checksum (IPv6 always has one) */
	/* Bytes of the IP packet after the datagram are outside its checksum. */
	if ((long)udp - (long)req->l3 + bpf_ntohs(udp->len) != plan->inner_len)
		return -1;

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
		if ((void *)(ip6 + 1) == (void *)udp) {
			/* No extension header: the payload length is the
			 * datagram's (checked above) and cancels the pseudo
			 * header's, and the addresses cancel (below); left are
			 * the header's other words and minus the protocol. */
			__u16 *word = (void *)ip6;

			plan->sum = word[0] + word[1] + word[3] + (__u16)~bpf_htons(IPPROTO_UDP);
			return 0;
		}
		/* The header's addresses are the pseudo header's too: in the
		 * one's complement sum they cancel, so neither side adds them
		 * (the first 8 bytes alone: version, class, label, length, next
		 * header, hop limit). */
		sum = csum_add_words(0, ip6, offsetof(struct ipv6hdr, saddr) / 2);

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
	plan->sum = sum + (__u16)~csum_fold(pseudo);
	return 0;
}

enum encap_lookup {
	ENCAP_LOOKUP_OK,
	ENCAP_LOOKUP_NO_ROUTE,
	ENCAP_LOOKUP_NO_NEIGH,
	ENCAP_LOOKUP_TOO_BIG,
	ENCAP_LOOKUP_NO_SOURCE,
};

/* The FIB's question for the outer packet: the kernel's forwarding lookup
 * from the ingress interface (or, with the backend's --iface, an output
 * lookup confined to it), with the outer packet's length, so that its MTU
 * check is the egress MTU check. Returns the lookup's flags. */
static __always_inline __u32 fib_question(struct bpf_fib_lookup *fib, struct xdp_md *ctx,
					  const struct backend_record *backend,
					  const struct encap_config *config,
					  const struct encap_plan *plan, __u16 tot_len)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	if (plan->outer_v4) {
		fib->family = ENCAP_AF_INET;
		fib->tos = plan->tos;
		fib->ipv4_src = config->source4;
		__builtin_memcpy(&fib->ipv4_dst, &backend->addr[12], 4);
	} else {
		fib->family = ENCAP_AF_INET6;
		fib->flowinfo = plan->flow_label;
		__builtin_memcpy(fib->ipv6_src, config->source6, 16);
		__builtin_memcpy(fib->ipv6_dst, backend->addr, 16);
	}
	fib->tot_len = tot_len;
	fib->l4_protocol = plan->l4_proto;
	if (plan->vxlan) {
		fib->sport = plan->sport;
		fib->dport = bpf_htons(TETHER_VXLAN_PORT);
	}
	if (backend->ifindex) {
		fib->ifindex = backend->ifindex;
		return BPF_FIB_LOOKUP_OUTPUT;
	}
	fib->ifindex = ctx->ingress_ifindex;
	return 0;
}

/* *hop from the FIB: egress, MACs, MTU, and what the outer header needs
 * (source, the fixed words' checksum sum); kept for TETHER_NEXTHOP_TTL_NS
 * from now when the cache is on. A failure leaves it empty: never kept. */
static __always_inline enum encap_lookup fill_next_hop(struct xdp_md *ctx,
						       const struct backend_record *backend,
						       const struct encap_plan *plan,
						       struct nexthop_entry *hop, __u64 now)
{
	__u32 zero = 0;
	struct encap_config *config = bpf_map_lookup_elem(&encap_config, &zero);
	struct bpf_fib_lookup fib;

	hop->expires_ns = 0;
	if (!config)
		return ENCAP_LOOKUP_NO_SOURCE;
	if (plan->outer_v4 ? !config->source4
			   : !(*(__u64 *)config->source6 | *(__u64 *)&config->source6[8]))
		return ENCAP_LOOKUP_NO_SOURCE;

	__u32 flags = fib_question(&fib, ctx, backend, config, plan, plan->outer_len);
	long rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), flags);

	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return ENCAP_LOOKUP_NO_NEIGH;
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return ENCAP_LOOKUP_TOO_BIG;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return ENCAP_LOOKUP_NO_ROUTE; /* blackhole, unreachable, prohibit, not
					       * forwarded, forwarding off, an error */
	hop->ifindex = fib.ifindex;
	__builtin_memcpy(hop->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(hop->smac, fib.smac, ETH_ALEN);
	hop->mtu = 0xffff; /* this packet passed the lookup's own MTU check */
	__builtin_memcpy(hop->dest, backend->addr, 16);
	if (plan->outer_v4) {
		const __u16 *dest = (const __u16 *)&backend->addr[12];
		const __u16 *source = (const __u16 *)&config->source4;

		__builtin_memset(hop->source, 0, 16);
		__builtin_memcpy(hop->source, &config->source4, 4);
		/* Addresses and DF: the words of the outer IPv4 header that do
		 * not change from packet to packet of this backend. */
		hop->ip_sum = (__u32)dest[0] + dest[1] + source[0] + source[1] +
			      bpf_htons(ENCAP_IP_DF);
	} else {
		__builtin_memcpy(hop->source, config->source6, 16);
		/* The words of VXLAN's checksum that are this next hop's or
		 * constant: the pseudo header's addresses and protocol, the
		 * destination port, the VXLAN flags, the inner source MAC (IPIP
		 * over IPv6 has no checksum). */
		__u32 sum = csum_add_words(0, hop->source, 8);

		/* One address at a time: summed at once, the 16 words were
		 * all loaded first and spilled past the 512-byte stack. */
		barrier_var(sum);
		sum = csum_add_words(sum, hop->dest, 8);
		barrier_var(sum);
		hop->ip_sum = sum + csum_add_words(0, hop->smac, 3) + bpf_htons(IPPROTO_UDP) +
			      bpf_htons(TETHER_VXLAN_PORT) + bpf_htons(VXLAN_FLAG_VNI << 8);
	}
#ifndef TETHER_NEXTHOP_NO_CACHE
	/* Once per fill: the egress MTU, asked for with the largest length
	 * (the answer is FRAG_NEEDED with mtu_result); without it, sent
	 * but not kept. */
	flags = fib_question(&fib, ctx, backend, config, plan, 0xffff);
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), flags) == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		hop->mtu = fib.mtu_result;
		hop->expires_ns = now + TETHER_NEXTHOP_TTL_NS;
	}
#else
	(void)now;
#endif
	return ENCAP_LOOKUP_OK;
}

/* The outer IPv4 header: its checksum from the backend's sum of the fixed
 * words (the cache's) and the three that change per packet. */
static __always_inline void write_outer_ipv4(struct iphdr *ip, const struct encap_plan *plan,
					     const struct nexthop_entry *hop)
{
	__be16 first = bpf_htons(0x4500 | plan->tos);
	__be16 tot_len = bpf_htons(plan->outer_len);
	__be16 ttl_proto = bpf_htons(ENCAP_TTL << 8 | plan->l4_proto);
	__u32 sum = hop->ip_sum + first + tot_len + ttl_proto;

	*(__be16 *)ip = first;
	ip->tot_len = tot_len;
	ip->id = 0;
	ip->frag_off = bpf_htons(ENCAP_IP_DF);
	*(__be16 *)&ip->ttl = ttl_proto;
	ip->check = ~csum_fold(sum);
	__builtin_memcpy(&ip->saddr, hop->source, 4);
	__builtin_memcpy(&ip->daddr, &hop->dest[12], 4);
}

static __always_inline void write_outer_ipv6(struct ipv6hdr *ip6, const struct encap_plan *plan,
					     const struct nexthop_entry *hop)
{
	__u32 first = bpf_ntohl(plan->flow_label) & 0xfffff;

	first |= 6u << 28 | (__u32)plan->tos << 20;
	*(__be32 *)ip6 = bpf_htonl(first);
	ip6->payload_len = bpf_htons(plan->payload_len);
	ip6->nexthdr = plan->l4_proto;
	ip6->hop_limit = ENCAP_TTL;
	/* As four 8-byte words (the header's type would make them eight). */
	__u64 *addresses = (__u64 *)&ip6->saddr;
	const __u64 *source = (const __u64 *)hop->source;
	const __u64 *dest = (const __u64 *)hop->dest;

	addresses[0] = source[0];
	addresses[1] = source[1];
	addresses[2] = dest[0];
	addresses[3] = dest[1];
}

/* UDP, VXLAN and the inner Ethernet header, written as words; the UDP
 * checksum over IPv6 from the words written (not read back): the next hop's
 * sum of the fixed ones, the per-packet ones, and the inner packet's sum. */
static __always_inline void write_vxlan(struct vxlan_outer *out,
					const struct backend_record *backend,
					const struct encap_plan *plan,
					const struct nexthop_entry *hop, __be16 l3_proto)
{
	struct udphdr *udp = (struct udphdr *)out;
	__u32 *vxlan = (__u32 *)&out->vxlan;
	__u16 *inner = (__u16 *)&out->inner;
	/* The VNI's three bytes and the record's pad byte after them, which
	 * becomes the header's reserved zero (one misaligned load: x86-64 and
	 * arm64 take it at full speed, and the verifier allows it there). */
	__u32 vni = *(const __u32 *)backend->tunnel.vni & bpf_htonl(0xffffff00);
	const __u16 *mac = (const __u16 *)backend->mac;

	udp->source = plan->sport;
	udp->dest = bpf_htons(TETHER_VXLAN_PORT);
	udp->len = bpf_htons(plan->payload_len);
	udp->check = 0; /* over IPv4: none (RFC 7348) */
	vxlan[0] = bpf_htonl(VXLAN_FLAG_VNI << 24);
	vxlan[1] = vni;
	put_mac(inner, mac);
	put_mac(inner + 3, hop->smac);
	inner[6] = l3_proto;
	if (!plan->outer_v4) {
		/* The length twice: the pseudo header's and the UDP header's. */
		__u32 sum = plan->sum + hop->ip_sum + plan->sport + 2 * (__u32)udp->len +
			    (vni & 0xffff) + (vni >> 16) + mac[0] + mac[1] + mac[2] + l3_proto;
		__u16 check = ~csum_fold(sum);

		udp->check = check ? check : 0xffff;
	}
}

/* The frame's L2 header (Ethernet and the client's tags) becomes the outer
 * headers: one bpf_xdp_adjust_head, then every header written anew. Every
 * packet pointer of req is invalid afterwards. Returns 0, or -1 when the
 * frame could not be grown. */
static __always_inline int push_outer_headers(struct xdp_md *ctx, const struct request *req,
					      const struct backend_record *backend,
					      const struct encap_plan *plan,
					      const struct nexthop_entry *hop)
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

	if (data + sizeof(struct ethhdr) + sizeof(struct ipv6hdr) > data_end)
		return -1; /* room for either outer header: one check */
	put_mac(eth->h_dest, hop->dmac);
	put_mac(eth->h_source, hop->smac);
	if (plan->outer_v4) {
		eth->h_proto = bpf_htons(ETH_P_IP);
		write_outer_ipv4((void *)(eth + 1), plan, hop);
		next = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	} else {
		eth->h_proto = bpf_htons(ETH_P_IPV6);
		write_outer_ipv6((void *)(eth + 1), plan, hop);
		next = data + sizeof(struct ethhdr) + sizeof(struct ipv6hdr);
	}
	if (plan->vxlan) {
		struct vxlan_outer *v = next;

		if ((void *)(v + 1) > data_end)
			return -1;
		write_vxlan(v, backend, plan, hop, l3_proto);
	}
	return 0;
}

#ifndef TETHER_NEXTHOP_NO_CACHE
/* The next hop for the backend: the cache's entry while fresh and for this
 * address (a lookup, the coarse clock and a compare), else filled from the
 * FIB. NULL only for a backend id out of range. */
static __always_inline struct nexthop_entry *cached_next_hop(struct xdp_md *ctx,
							     const struct choice *chosen,
							     const struct encap_plan *plan, __u64 now,
							     enum encap_lookup *found)
{
	const struct backend_record *backend = chosen->backend;
	__u32 id = chosen->backend_id;
	struct nexthop_entry *hop = bpf_map_lookup_elem(&nexthop_cache, &id);

	if (!hop)
		return NULL;
	if (now < hop->expires_ns && same_address(hop->dest, backend->addr))
		*found = ENCAP_LOOKUP_OK;
	else
		*found = fill_next_hop(ctx, backend, plan, hop, now);
	return hop;
}
#endif

/* A routed backend's request: the next hop first (on failure the request,
 * untouched, goes to the slow path), then stamped, wrapped and sent. */
static __always_inline int send_routed(struct xdp_md *ctx, struct request *req,
				       const struct choice *chosen, __u64 now,
				       struct tether_stats *stats)
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
	if (plan.vxlan) {
		plan.l4_proto = IPPROTO_UDP;
		plan.payload_len = sizeof(struct vxlan_outer) + plan.inner_len;
	} else {
		plan.l4_proto = req->is_ipv4 ? IPPROTO_IPIP : IPPROTO_IPV6;
		plan.payload_len = plan.inner_len;
	}
	plan.outer_len = (plan.outer_v4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr)) +
			 plan.payload_len;
	/* The hash only where it goes into the outer header: VXLAN's source
	 * port, IPv6's flow label (IPIP over IPv4 has neither). */
	if (plan.vxlan || !plan.outer_v4) {
		__u64 hash = encap_hash(req);

		plan.flow_label = bpf_htonl((__u32)(hash >> 12) & 0xfffff);
		plan.sport = bpf_htons(VXLAN_SPORT_BASE | ((__u32)(hash >> 48) & VXLAN_SPORT_MASK));
	}

#ifdef TETHER_NEXTHOP_NO_CACHE
	/* Bench only: the FIB on every packet, the cache's yardstick (its
	 * entry only scratch, never read before it is filled). */
	__u32 id = chosen->backend_id;
	struct nexthop_entry *hop = bpf_map_lookup_elem(&nexthop_cache, &id);
	enum encap_lookup found = hop ? fill_next_hop(ctx, backend, &plan, hop, 0)
				      : ENCAP_LOOKUP_NO_SOURCE;
#else
	enum encap_lookup found = ENCAP_LOOKUP_NO_SOURCE;
	struct nexthop_entry *hop = cached_next_hop(ctx, chosen, &plan, now, &found);
#endif
	if (!hop) {
		give_back_room(chosen);
		count(stats, encap_failed);
		return XDP_DROP;
	}
	if (found == ENCAP_LOOKUP_OK && plan.outer_len > hop->mtu)
		found = ENCAP_LOOKUP_TOO_BIG;
	switch (found) {
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
	if (plan.vxlan && !plan.outer_v4 && inner_sum(req, data_end, &plan)) {
		give_back_room(chosen);
		count(stats, encap_slow);
		return hand_to_slow_path(ctx, req, TETHER_STATUS_NO_CAPACITY, stats);
	}
	stamp_token(req, chosen);

	__u32 egress = hop->ifindex;

	if (push_outer_headers(ctx, req, backend, &plan, hop)) {
		give_back_room(chosen);
		count(stats, encap_failed);
		return XDP_DROP;
	}
	if (plan.vxlan)
		count(stats, encap_vxlan);
	else
		count(stats, encap_ipip);
	count_container(chosen->slot, (long)ctx->data_end - (long)ctx->data);
	if (egress == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(egress, 0);
}

#endif
