/* SPDX-License-Identifier: MIT */
/* What happens to a request: a routed one has the chosen container's token
 * stamped into the header (UDP checksum fixed incrementally), its Ethernet
 * addresses and VLAN tags rewritten for the backend, and leaves through the
 * backend's interface; one the program cannot route goes up to the slow path
 * within its budget (bpf/admission.h), else is answered OVERLOADED in place. */
#ifndef TETHER_BPF_FORWARD_H
#define TETHER_BPF_FORWARD_H

#include "admission.h"
#include "counters.h"
#include "maps.h"
#include "parse.h"
#include "routing.h"
#include "words.h"

/* RFC 1624: HC' = ~(~HC + ~m + m') over each changed 16-bit word. The sum
 * is byte-order neutral, so words are used as they lie in the packet. */
static __always_inline __u32 csum_word_change(__u32 sum, __u16 old_word, __u16 new_word)
{
	return sum + (__u16)~old_word + new_word;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* An IPv4 UDP checksum of 0 means "none" and stays 0; a computed 0 is sent
 * as 0xffff, which IPv6 needs and IPv4 accepts. */
static __always_inline void udp_csum_finish(struct request *req, __u32 sum)
{
	__u16 check = ~csum_fold(sum);

	req->udp->check = check ? check : 0xffff;
}

static __always_inline int udp_csum_in_use(const struct request *req)
{
	return !(req->is_ipv4 && req->udp->check == 0);
}

/* The 16-bit word holding version and flags (header offset 2). */
static __always_inline __u16 *version_flags_word(struct tether_hdr *hdr)
{
	return (__u16 *)&hdr->version;
}

/* The 16-bit word holding status and reserved[0] (header offset 4). */
static __always_inline __u16 *status_word(struct tether_hdr *hdr)
{
	return (__u16 *)&hdr->status;
}

static __always_inline void stamp_token(struct request *req, const struct choice *chosen)
{
	struct tether_hdr *hdr = req->hdr;
	struct tether_token token = {
		.slot = bpf_htonl(chosen->slot),
		.generation = bpf_htonl(chosen->generation),
		.secret = chosen->secret,
	};
	__u16 *old_token = (__u16 *)&hdr->container_token;
	__u16 *new_token = (__u16 *)&token;
	__u16 old_flags_word = *version_flags_word(hdr);
	__u32 sum = (__u16)~req->udp->check;

	hdr->flags |= TETHER_F_STAMPED;
	sum = csum_word_change(sum, old_flags_word, *version_flags_word(hdr));
#pragma unroll
	for (int i = 0; i < 8; i++)
		sum = csum_word_change(sum, old_token[i], new_token[i]);
	hdr->container_token = token;
	if (udp_csum_in_use(req))
		udp_csum_finish(req, sum);
}

#define VLAN_HLEN 4

static __always_inline void write_macs(struct ethhdr *eth, const struct backend_record *backend)
{
	put_mac(eth->h_dest, backend->mac);
	put_mac(eth->h_source, backend->src_mac);
}

/* The frame leaves with the backend's own tagging, whatever the client's
 * segment put on it: no tag for a backend without a VLAN, one 802.1Q tag
 * (TPID 0x8100) with the backend's VID for one on a trunk. The tag's PCP and
 * DEI are 0: the client's L2 priority belongs to the client's segment (the IP
 * header's DSCP carries priority end to end), and the slow path, which never
 * sees the client's tags, writes the same frame. Returns 0, or -1 when the
 * frame could not be resized (dropped and counted by the caller).
 *
 * The common case (no tag in, none wanted) only rewrites the addresses; one
 * tag in and one wanted rewrites the tag in place; otherwise one
 * bpf_xdp_adjust_head moves the start of the frame by the difference and the
 * whole Ethernet header is written anew (the bytes it now covers are the old
 * header's, so nothing is moved). Every packet pointer is invalid after the
 * adjust: req->udp and req->hdr must not be used again, and req->eth is
 * re-derived here. */
static __always_inline int retag_for_backend(struct xdp_md *ctx, struct request *req,
					     const struct backend_record *backend)
{
	__u16 vid = backend->vlan;
	int want = vid ? 1 : 0;
	int have = req->vlan_count;

	if (have == want) {
		struct ethhdr *eth = req->eth;

		write_macs(eth, backend);
		if (want) {
			void *data_end = (void *)(long)ctx->data_end;
			struct vlan_tag *tag = (void *)(eth + 1);

			if ((void *)(tag + 1) > data_end)
				return -1;
			eth->h_proto = bpf_htons(ETH_P_8021Q); /* an 802.1ad tag becomes 802.1Q */
			tag->tci = bpf_htons(vid);
		}
		return 0;
	}
	if (bpf_xdp_adjust_head(ctx, (have - want) * VLAN_HLEN))
		return -1;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	write_macs(eth, backend);
	if (want) {
		struct vlan_tag *tag = (void *)(eth + 1);

		if ((void *)(tag + 1) > data_end)
			return -1;
		eth->h_proto = bpf_htons(ETH_P_8021Q);
		tag->tci = bpf_htons(vid);
		tag->encapsulated_proto = req->l3_proto;
	} else {
		eth->h_proto = req->l3_proto;
	}
	req->eth = eth;
	return 0;
}

static __always_inline int send_to_backend(struct xdp_md *ctx, struct request *req,
					   const struct choice *chosen, struct tether_stats *stats)
{
	const struct backend_record *backend = chosen->backend;
	__u32 ifindex = backend->ifindex;

	if (retag_for_backend(ctx, req, backend)) {
		count(stats, retag_failed);
		return XDP_DROP;
	}

	int action = XDP_TX;

	if (ifindex != ctx->ingress_ifindex) {
		action = bpf_redirect_map(&tx_ports, ifindex, 0);
		if (action != XDP_REDIRECT) {
			count(stats, no_route);
			return XDP_DROP;
		}
	}
	/* The frame as it leaves: its tags may have changed its length. */
	count_container(chosen->slot, (long)ctx->data_end - (long)ctx->data);
	return action;
}

/* ---- answering in place ---------------------------------------------------- */

#define ANSWER_TTL 64

/* What follows the IP header in an answer: the UDP header and the Tether
 * header, nothing else. */
struct answer_l4 {
	struct udphdr udp;
	struct tether_hdr hdr;
};

_Static_assert(sizeof(struct answer_l4) == sizeof(struct udphdr) + TETHER_HDR_LEN,
	       "an answer's UDP datagram is its header and the Tether header");

/* RFC 1071 over `words` 16-bit words as they lie in memory (the sum is
 * byte-order neutral); words is a constant, so the loop unrolls. */
static __always_inline __u32 csum_add_words(__u32 sum, const void *data, int words)
{
	const __u16 *word = data;

#pragma unroll
	for (int i = 0; i < words; i++)
		sum += word[i];
	return sum;
}

/* The request becomes its own answer, in place, and never grows: the
 * Ethernet addresses, IP addresses and UDP ports swapped; the IP header
 * without options (IPv4: IHL 5) or extension headers (IPv6: the UDP header
 * follows at once), TTL or hop limit ANSWER_TTL, lengths for the UDP header
 * and the 48-byte Tether header; the Tether header echoed (function, key,
 * token, request_id, the client's flags) with REPLY and status; the payload
 * cut off with bpf_xdp_adjust_tail. VLAN tags, TOS or traffic class, flow
 * label, IPv4 identification and DF stay as they came: the answer leaves the
 * way the request arrived (XDP_TX). Both checksums are computed afresh (an
 * IPv4 request without a UDP checksum gets an answer with one). Returns 0,
 * or -1 when the frame could not be shortened (every packet pointer is
 * invalid afterwards either way). */
static __always_inline int answer_in_place(struct xdp_md *ctx, struct request *req, __u8 status)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = req->eth;
	struct answer_l4 l4 __attribute__((aligned(8))); /* copied as words */
	__u8 mac[8] __attribute__((aligned(8)));           /* put_mac's words */

	if ((void *)(eth + 1) > data_end || (void *)req->udp + sizeof(l4) > data_end)
		return -1;
	copy_words(&l4, req->udp, sizeof(l4));
	__be16 port = l4.udp.source;

	l4.udp.source = l4.udp.dest;
	l4.udp.dest = port;
	l4.udp.len = bpf_htons(sizeof(l4));
	l4.udp.check = 0;
	l4.hdr.flags |= TETHER_F_REPLY;
	l4.hdr.status = status;

	/* The pseudo header's protocol and length, as they lie in it. */
	__u32 sum = bpf_htons(IPPROTO_UDP) + bpf_htons(sizeof(l4));
	void *l4_at;

	if (req->is_ipv4) {
		struct iphdr *ip = req->l3;

		if ((void *)(ip + 1) > data_end)
			return -1;
		__be32 addr = ip->saddr;

		ip->saddr = ip->daddr;
		ip->daddr = addr;
		ip->ihl = 5;
		ip->tot_len = bpf_htons(sizeof(*ip) + sizeof(l4));
		ip->ttl = ANSWER_TTL;
		ip->check = 0;
		ip->check = ~csum_fold(csum_add_words(0, ip, sizeof(*ip) / 2));
		sum = csum_add_words(sum, &ip->saddr, 4);
		l4_at = ip + 1;
	} else {
		struct ipv6hdr *ip6 = req->l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		struct in6_addr addr = ip6->saddr;

		ip6->saddr = ip6->daddr;
		ip6->daddr = addr;
		ip6->payload_len = bpf_htons(sizeof(l4));
		ip6->nexthdr = IPPROTO_UDP;
		ip6->hop_limit = ANSWER_TTL;
		sum = csum_add_words(sum, &ip6->saddr, 16);
		l4_at = ip6 + 1;
	}
	__u16 check = ~csum_fold(csum_add_words(sum, &l4, sizeof(l4) / 2));

	l4.udp.check = check ? check : 0xffff;
	if (l4_at + sizeof(l4) > data_end)
		return -1;
	copy_words(l4_at, &l4, sizeof(l4));
	put_mac(mac, eth->h_dest);
	put_mac(eth->h_dest, eth->h_source);
	put_mac(eth->h_source, mac);

	/* Payload, options, extension headers and Ethernet padding: cut. */
	int delta = (int)((long)(l4_at + sizeof(l4)) - (long)data_end); /* <= 0 */

	if (delta && bpf_xdp_adjust_tail(ctx, delta))
		return -1;
	return 0;
}

/* Over budget: answered OVERLOADED here, within the cap on answers;
 * beyond it (or if the frame could not be shortened) dropped. Counted on
 * top of the routing decision (no_capacity or strict_gone). */
static __always_inline int shed(struct xdp_md *ctx, struct request *req,
				const struct admit_config *config, __u64 now,
				struct tether_stats *stats)
{
	if (!answer_allowed(config, now) ||
	    answer_in_place(ctx, req, TETHER_STATUS_OVERLOADED)) {
		count(stats, shed_dropped);
		return XDP_DROP;
	}
	count(stats, shed);
	return XDP_TX;
}

/* The request goes up the host stack to tetherd's socket on the service
 * address, carrying in its status byte why it could not be routed here
 * (NO_CAPACITY, CONTAINER_GONE for STRICT, or OVERLOADED: every container
 * of the function, or STRICT's own, at its limit), when the slow path's budget
 * admits it. Over budget it is shed, whatever the reason: the answer is
 * OVERLOADED either way ("try again later"), never a verdict reached on the
 * slow path's behalf; a STRICT client that retries within budget learns
 * CONTAINER_GONE from the slow path. */
static __always_inline int hand_to_slow_path(struct xdp_md *ctx, struct request *req, __u8 reason,
					     struct tether_stats *stats)
{
	const struct admit_config *config = admit_config_get();

	if (admission_limited(config)) {
		__u64 now = bpf_ktime_get_ns();

		if (!admit_to_slow_path(req, config, now))
			return shed(ctx, req, config, now, stats);
	}

	struct tether_hdr *hdr = req->hdr;
	__u16 old_word = *status_word(hdr);
	__u32 sum = (__u16)~req->udp->check;

	hdr->status = reason;
	sum = csum_word_change(sum, old_word, *status_word(hdr));
	if (udp_csum_in_use(req))
		udp_csum_finish(req, sum);
	return XDP_PASS;
}

#endif
