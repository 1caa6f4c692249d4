/* SPDX-License-Identifier: MIT */
/* What happens to a routed request: the chosen container's token is stamped
 * into the header (UDP checksum fixed incrementally), the Ethernet addresses
 * are rewritten, and the frame leaves through the backend's interface. */
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

static __always_inline int send_to_backend(struct xdp_md *ctx, struct request *req,
					   const struct choice *chosen, struct tether_stats *stats)
{
	const struct backend_record *backend = chosen->backend;
	__u32 ifindex = backend->ifindex;

	__builtin_memcpy(req->eth->h_dest, backend->mac, ETH_ALEN);
	__builtin_memcpy(req->eth->h_source, backend->src_mac, ETH_ALEN);

	int action = XDP_TX;

	if (ifindex != ctx->ingress_ifindex) {
		action = bpf_redirect_map(&tx_ports, ifindex, 0);
		if (action != XDP_REDIRECT) {
			count(stats, no_route);
			return XDP_DROP;
		}
	}
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
