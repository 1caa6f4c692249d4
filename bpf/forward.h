/* SPDX-License-Identifier: MIT */
/* What happens to a routed request: the chosen container's token is stamped
 * into the header (UDP checksum fixed incrementally), the Ethernet addresses
 * and VLAN tags are rewritten for the backend, and the frame leaves through
 * the backend's interface. */
#ifndef TETHER_BPF_FORWARD_H
#define TETHER_BPF_FORWARD_H

#include "counters.h"
#include "maps.h"
#include "parse.h"
#include "routing.h"

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
		.generation = bpf_htonl(chosen->container->generation),
		.secret = chosen->container->secret,
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
	__builtin_memcpy(eth->h_dest, backend->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, backend->src_mac, ETH_ALEN);
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
	count_container(chosen->slot, ctx->data_end - ctx->data);
	return action;
}

/* The request goes up the host stack to tetherd's socket on the service
 * address, carrying in its status byte why it could not be routed here. */
static __always_inline int hand_to_slow_path(struct request *req, __u8 reason)
{
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
