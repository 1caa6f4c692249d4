/* SPDX-License-Identifier: MIT */
/* Parsing a frame down to the Tether header: Ethernet, up to two VLAN tags,
 * IPv4 with options or IPv6 with a bounded chain of extension headers, UDP.
 * Every read is bounds-checked; what cannot be read is reported, not guessed. */
#ifndef TETHER_BPF_PARSE_H
#define TETHER_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "tether/wire.h"
#include "tether/maps.h"
#include "maps.h"

#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT_HDRS 4

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

enum parse_result {
	PARSE_REQUEST,     /* a valid Tether request for a service address */
	PARSE_NOT_SERVICE, /* anything else: to the host stack */
	PARSE_MALFORMED,   /* for a service address, but not a valid request */
	PARSE_FRAGMENT,    /* an IP fragment for a service address */
	PARSE_DONE,        /* a DONE datagram for the completion address */
	PARSE_ALIVE,       /* an ALIVE datagram for the completion address */
	PARSE_COMPLETION_BAD, /* for the completion address, neither */
};

struct request {
	struct ethhdr *eth;
	void *l3;                    /* the IPv4 or IPv6 header */
	struct udphdr *udp;
	struct tether_hdr *hdr;
	struct service_key flow_src; /* source address and port */
	struct service_key service;  /* destination address and port */
	__be16 l3_proto;             /* the EtherType after the VLAN tags */
	__u8 vlan_count;             /* VLAN tags in front of it: 0..MAX_VLAN_TAGS */
	__u8 is_ipv4;
	__u64 done_received;         /* PARSE_DONE: the container's received count */
};

struct vlan_tag {
	__be16 tci;
	__be16 encapsulated_proto;
};

static __always_inline int is_vlan_proto(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* Two 16-byte addresses, compared as two 8-byte words. Not memcpy from the
 * byte arrays: clang's BPF target copies those a byte at a time (16 loads,
 * shifts and ors an address, measured at 3-4 ns a routed request). The
 * callers' arrays are 8-byte aligned (a map value's or struct request's,
 * at offsets 8 and 32); the verifier refuses a misaligned stack read, so a
 * caller that breaks this fails at load. */
static __always_inline int same_address(const __u8 a[16], const __u8 b[16])
{
	const __u64 *a_words = (const __u64 *)a;
	const __u64 *b_words = (const __u64 *)b;

	return a_words[0] == b_words[0] && a_words[1] == b_words[1];
}

static __always_inline void set_v4mapped(__u8 addr[16], __be32 ipv4)
{
	__builtin_memset(addr, 0, 10);
	addr[10] = 0xff;
	addr[11] = 0xff;
	__builtin_memcpy(&addr[12], &ipv4, 4);
}

static __always_inline int is_v4mapped(const __u8 addr[16])
{
	const __u32 *words = (const __u32 *)addr;

	return words[0] == 0 && words[1] == 0 && words[2] == bpf_htonl(0x0000ffff);
}

static __always_inline int is_service_address(struct request *req)
{
	struct service_key address_only = req->service;

	address_only.port = 0;
	return bpf_map_lookup_elem(&services, &address_only) != NULL;
}

/* The IP layer could be read but what follows could not: a service address
 * makes it ours (malformed or fragment), any other address the stack's. */
static __always_inline enum parse_result judged_by_address(struct request *req,
							    enum parse_result ours)
{
	return is_service_address(req) ? ours : PARSE_NOT_SERVICE;
}

/* Returns the L4 protocol and moves *cursor past the IPv4 header. */
static __always_inline int parse_ipv4(struct request *req, void **cursor, void *data_end,
				      void **l3_end, enum parse_result *early)
{
	struct iphdr *ip = *cursor;

	if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5) {
		*early = PARSE_MALFORMED;
		return -1;
	}
	req->is_ipv4 = 1;
	set_v4mapped(req->flow_src.addr, ip->saddr);
	set_v4mapped(req->service.addr, ip->daddr);

	__u32 header_len = ip->ihl * 4;
	__u32 total_len = bpf_ntohs(ip->tot_len);

	if (total_len < header_len || (void *)ip + total_len > data_end ||
	    (void *)ip + header_len > data_end) {
		*early = judged_by_address(req, PARSE_MALFORMED);
		return -1;
	}
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		*early = judged_by_address(req, PARSE_FRAGMENT);
		return -1;
	}
	*cursor = (void *)ip + header_len;
	*l3_end = (void *)ip + total_len;
	return ip->protocol;
}

struct ipv6_ext {
	__u8 next_header;
	__u8 length; /* in 8-byte units, not counting the first 8 bytes */
};

/* Returns the L4 protocol and moves *cursor past the extension headers. */
static __always_inline int parse_ipv6(struct request *req, void **cursor, void *data_end,
				      void **l3_end, enum parse_result *early)
{
	struct ipv6hdr *ip6 = *cursor;

	if ((void *)(ip6 + 1) > data_end || ip6->version != 6) {
		*early = PARSE_MALFORMED;
		return -1;
	}
	req->is_ipv4 = 0;
	__builtin_memcpy(req->flow_src.addr, &ip6->saddr, 16);
	__builtin_memcpy(req->service.addr, &ip6->daddr, 16);
	/* IPv4 services are keyed ::ffff:a.b.c.d; an IPv6 packet to that
	 * address is not for them. */
	if (is_v4mapped(req->service.addr)) {
		*early = PARSE_NOT_SERVICE;
		return -1;
	}

	void *payload_end = (void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len);

	if (payload_end > data_end) {
		*early = judged_by_address(req, PARSE_MALFORMED);
		return -1;
	}
	void *pos = ip6 + 1;
	__u8 next_header = ip6->nexthdr;

#pragma unroll
	for (int i = 0; i < MAX_IPV6_EXT_HDRS; i++) {
		if (next_header == IPPROTO_FRAGMENT) {
			*early = judged_by_address(req, PARSE_FRAGMENT);
			return -1;
		}
		if (next_header != IPPROTO_HOPOPTS && next_header != IPPROTO_ROUTING &&
		    next_header != IPPROTO_DSTOPTS)
			break;
		struct ipv6_ext *ext = pos;

		if ((void *)(ext + 1) > data_end) {
			*early = judged_by_address(req, PARSE_MALFORMED);
			return -1;
		}
		next_header = ext->next_header;
		pos += (ext->length + 1) * 8;
	}
	if (next_header == IPPROTO_FRAGMENT) {
		*early = judged_by_address(req, PARSE_FRAGMENT);
		return -1;
	}
	if (next_header == IPPROTO_HOPOPTS || next_header == IPPROTO_ROUTING ||
	    next_header == IPPROTO_DSTOPTS) {
		/* A longer chain than we walk: ours is malformed, others' pass. */
		*early = judged_by_address(req, PARSE_MALFORMED);
		return -1;
	}
	*cursor = pos;
	*l3_end = payload_end;
	return next_header;
}

static __always_inline int tether_hdr_valid(const struct tether_hdr *hdr)
{
	return hdr->magic == bpf_htons(TETHER_MAGIC) && hdr->version == TETHER_VERSION &&
	       !(hdr->flags & ~TETHER_F_CLIENT_MASK) && hdr->status == 0 &&
	       hdr->reserved[0] == 0 && hdr->reserved[1] == 0 && hdr->reserved[2] == 0 &&
	       hdr->function_id != 0;
}

/* A datagram for the router's completion address: DONE (with its received
 * count after the header) or ALIVE, from a backend. req->hdr is set for
 * both; req->done_received points at the received count of a DONE. */
static __always_inline enum parse_result parse_completion(struct request *req,
							  struct tether_hdr *hdr, __u32 udp_len,
							  void *data_end, void *l3_end)
{
	struct udphdr *udp = req->udp;

	if ((void *)(hdr + 1) > data_end || udp_len < sizeof(*udp) + sizeof(*hdr) ||
	    (void *)udp + udp_len > l3_end)
		return PARSE_COMPLETION_BAD;
	if (hdr->magic != bpf_htons(TETHER_MAGIC) || hdr->version != TETHER_VERSION ||
	    hdr->reserved[0] || hdr->reserved[1] || hdr->reserved[2] || hdr->function_id == 0)
		return PARSE_COMPLETION_BAD;
	req->hdr = hdr;
	if (hdr->flags == TETHER_F_ALIVE_MASK)
		return PARSE_ALIVE;
	if (hdr->flags != TETHER_F_DONE_MASK)
		return PARSE_COMPLETION_BAD;
	__be64 *received = (void *)(hdr + 1);

	if ((void *)(received + 1) > data_end ||
	    udp_len < sizeof(*udp) + sizeof(*hdr) + TETHER_DONE_PAYLOAD_LEN)
		return PARSE_COMPLETION_BAD;
	req->done_received = bpf_be64_to_cpu(*received);
	return PARSE_DONE;
}

static __always_inline enum parse_result parse_request(struct xdp_md *ctx, struct request *req)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	req->eth = eth;

	void *cursor = eth + 1;
	__be16 proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		if (!is_vlan_proto(proto))
			break;
		struct vlan_tag *tag = cursor;

		if ((void *)(tag + 1) > data_end)
			return PARSE_MALFORMED;
		proto = tag->encapsulated_proto;
		cursor = tag + 1;
		req->vlan_count++;
	}
	req->l3_proto = proto;
	req->l3 = cursor;

	enum parse_result early = PARSE_NOT_SERVICE;
	void *l3_end = data_end;
	int l4_proto;

	if (proto == bpf_htons(ETH_P_IP))
		l4_proto = parse_ipv4(req, &cursor, data_end, &l3_end, &early);
	else if (proto == bpf_htons(ETH_P_IPV6))
		l4_proto = parse_ipv6(req, &cursor, data_end, &l3_end, &early);
	else
		return PARSE_NOT_SERVICE; /* ARP, a third VLAN tag, anything else */
	if (l4_proto < 0)
		return early;
	if (l4_proto != IPPROTO_UDP)
		return PARSE_NOT_SERVICE;

	struct udphdr *udp = cursor;

	/* Within the IP packet, not just the frame: Ethernet padding is no
	 * UDP header. */
	if ((void *)(udp + 1) > data_end || (void *)(udp + 1) > l3_end)
		return judged_by_address(req, PARSE_MALFORMED);
	req->udp = udp;
	req->flow_src.port = udp->source;
	req->service.port = udp->dest;
	/* Port 0 keys the address-only entries: never a service. */
	struct service_info *info;

	if (udp->dest == 0 || !(info = bpf_map_lookup_elem(&services, &req->service)))
		return PARSE_NOT_SERVICE;

	struct tether_hdr *hdr = (void *)(udp + 1);
	__u32 udp_len = bpf_ntohs(udp->len);

	if (info->kind == SERVICE_COMPLETION)
		return parse_completion(req, hdr, udp_len, data_end, l3_end);
	if ((void *)(hdr + 1) > data_end || udp_len < sizeof(*udp) + sizeof(*hdr) ||
	    (void *)udp + udp_len > l3_end)
		return PARSE_MALFORMED;
	if (!tether_hdr_valid(hdr))
		return PARSE_MALFORMED;
	req->hdr = hdr;
	return PARSE_REQUEST;
}

#endif
