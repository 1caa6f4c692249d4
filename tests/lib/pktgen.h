/* SPDX-License-Identifier: MIT */
/* Packet builder and checker for the tests: builds Ethernet frames carrying
 * Tether requests (or other traffic for pass-through tests) from a spec, and
 * parses and checks the frames the XDP program returns.
 *
 * The parser and the checksum code here are written from scratch (RFC 1071)
 * and share nothing with the XDP program, so they can judge its output.
 *
 * Typical use:
 *	struct pkt_spec s;
 *	static __u8 frame[PKT_MAX_FRAME]; (64 KiB: keep it off the stack)
 *	pkt_spec_default(&s, 6);
 *	s.hdr.flags = TETHER_F_KEY;
 *	s.hdr.routing_key = 42;
 *	size_t len = pkt_build(&s, frame, sizeof(frame));
 *	... BPF_PROG_TEST_RUN ...
 *	struct pkt_view v;
 *	assert(pkt_parse(out, out_len, &v) == 0 && pkt_udp_csum_valid(out, out_len));
 */
#ifndef TETHER_TESTS_PKTGEN_H
#define TETHER_TESTS_PKTGEN_H

#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>
#include "tether/wire.h"

/* Fixed test addresses (documentation ranges: they never leave the process
 * or the test's namespaces). pkt_spec_default() sends client -> VIP. */
#define PKT_TEST_CLIENT4 "192.0.2.10"
#define PKT_TEST_VIP4 "198.51.100.1"
#define PKT_TEST_CLIENT6 "2001:db8:2::10"
#define PKT_TEST_VIP6 "2001:db8:100::1"
#define PKT_TEST_CLIENT_PORT 40000
#define PKT_TEST_VIP_PORT 7777
#define PKT_TEST_FUNCTION_ID 0x1001ULL
#define PKT_TEST_PAYLOAD_LEN 16
/* Locally administered unicast MACs. */
#define PKT_TEST_CLIENT_MAC { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 }
#define PKT_TEST_ROUTER_MAC { 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe }

#define PKT_MAX_VLAN 2
#define PKT_MAX_IPV6_EXT 8   /* extension headers the builder writes */
#define PKT_PARSE_MAX_EXT 16 /* extension headers the parser walks */
#define PKT_MAX_FRAME (65536 + 256) /* any IP packet plus L2 headers */

/* Content of IPv4 options (ipv4_options_len bytes, a multiple of 4). */
enum pkt_ipv4_opt_fill {
	PKT_IPOPT_NOP = 0, /* all NOP (1) */
	PKT_IPOPT_EOL,     /* all End of Option List (0) */
	PKT_IPOPT_RR,      /* one empty Record Route option, then EOL */
};

/* One IPv6 extension header. */
struct pkt_ipv6_ext {
	__u8 type; /* 0 hop-by-hop, 43 routing, 60 destination options, 44 fragment */
	/* Hdr Ext Len for 0/43/60: size in 8-byte units beyond the first 8
	 * (0 = 8 bytes). Ignored for the fragment header, always 8 bytes. */
	__u8 len;
	/* Fragment header only: host-order "offset << 3 | M" (M = 1). */
	__u16 frag;
};

/* The Tether header in host order (wire.h has the wire form). */
struct pkt_tether {
	__u16 magic;   /* 0: TETHER_MAGIC unless pkt_spec.hdr_raw */
	__u8 version;  /* 0: TETHER_VERSION unless pkt_spec.hdr_raw */
	__u8 flags;    /* TETHER_F_* */
	__u8 status;
	__u8 reserved[3];
	__u64 function_id;
	__u64 routing_key;
	__u8 token[16]; /* wire bytes, see pkt_token() */
	__u64 request_id;
};

/* What pkt_build() writes. Start from pkt_spec_default(): every field is used
 * as given (a 0 TTL is sent as 0), except where a comment names a default. */
struct pkt_spec {
	int family; /* 4 or 6 */
	__u8 src_mac[6], dst_mac[6];

	int vlan_count;           /* 0, 1 or 2 */
	__u16 vlan_tci[PKT_MAX_VLAN]; /* outer first; VID in the low 12 bits, PCP/DEI as given */
	int qinq;                 /* two tags: outer TPID 0x88a8 (else 0x8100 for both) */
	/* A tag's TPID as given (a single 802.1ad tag: vlan_tpid[0] = 0x88a8);
	 * 0 leaves it to qinq. */
	__u16 vlan_tpid[PKT_MAX_VLAN];

	__u8 src_addr[16], dst_addr[16]; /* IPv4 in the first 4 bytes (pkt_addr4) */
	__u8 ip_proto; /* L4 protocol / last Next Header; 0 means UDP (17) */
	__u8 ttl;      /* TTL or hop limit */
	__u8 tos;      /* IPv4 TOS or IPv6 traffic class */
	__u16 ip_id;   /* IPv4 identification; IPv6 fragment header identification */

	/* IPv4 only */
	int ipv4_options_len; /* 0..40, a multiple of 4 */
	int ipv4_options_fill; /* enum pkt_ipv4_opt_fill */
	__u16 ipv4_frag; /* host-order frag_off: DF 0x4000, MF 0x2000, offset (8-byte units) */

	/* IPv6 only: the chain between the fixed header and L4, in this order
	 * (the builder does not enforce RFC 8200 ordering, tests may break it). */
	__u32 ipv6_flow_label; /* low 20 bits */
	int ipv6_ext_count;    /* 0..PKT_MAX_IPV6_EXT */
	struct pkt_ipv6_ext ipv6_ext[PKT_MAX_IPV6_EXT];

	/* UDP (ip_proto 17) */
	__u16 src_port, dst_port;
	int udp_csum_zero; /* IPv4 only: send checksum 0 ("not used") */
	int no_tether;     /* UDP payload is the payload alone, no Tether header */

	struct pkt_tether hdr;
	int hdr_raw; /* use hdr.magic and hdr.version literally, even when 0 */

	/* Bytes after the Tether header (or the whole UDP payload with no_tether,
	 * or the whole L4 payload when ip_proto is not UDP): byte i is
	 * (payload_seed + i) & 0xff. */
	size_t payload_len;
	__u8 payload_seed;

	/* Bytes after the IP packet, outside its length (Ethernet padding):
	 * all 0xee, so a reader that trusts the frame length notices. */
	size_t trailer_len;
};

/* A valid request from the test client to the test VIP (IPv4 or IPv6),
 * function PKT_TEST_FUNCTION_ID, no flags, PKT_TEST_PAYLOAD_LEN bytes of
 * payload, no VLAN, TTL 64, DF set for IPv4. */
void pkt_spec_default(struct pkt_spec *s, int family);

/* Writes the frame into buf; returns its length, or 0 when the spec is
 * invalid or cap is too small. Checksums are computed (IPv4 header, UDP). */
size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap);

/* An ARP request (who-has dst_addr tell src_addr) to the broadcast MAC, with
 * the spec's source MAC, VLAN tags and trailer; the IPv4 addresses are the
 * first 4 bytes of src_addr/dst_addr whatever the family. */
size_t pkt_build_arp(const struct pkt_spec *s, __u8 *buf, size_t cap);

/* Offsets into a frame, -1 when absent; lengths -1 when unknown. */
struct pkt_view {
	int vlan_count;
	__u16 vlan_tpid[PKT_MAX_VLAN], vlan_tci[PKT_MAX_VLAN]; /* host order */
	__u16 l3_proto; /* EtherType after the tags, host order */
	int family;     /* 4, 6, or 0 when not IP */
	int l3_off;     /* IP or ARP header */
	int l3_len;     /* the IP packet by its own length fields (no padding) */
	int l3_hdr_len; /* IPv4 header with options, or IPv6 header with extensions */
	int ipv6_ext_count;
	__u8 ipv6_ext_type[PKT_PARSE_MAX_EXT];
	int ipv6_ext_off[PKT_PARSE_MAX_EXT];
	int is_fragment; /* IPv4 MF/offset, or an IPv6 fragment header */
	int l4_proto;    /* -1 when not IP */
	int l4_off;      /* -1 when not IP or a non-first fragment */
	int udp_len;     /* from the UDP header */
	int payload_off; /* UDP payload */
	int payload_len;
	int tether_off;  /* when the UDP payload holds at least 48 bytes */
	int data_off;    /* after the Tether header */
	int data_len;
};

/* Parses a frame: Ethernet, up to 2 VLAN tags, IPv4/IPv6/ARP, UDP. Returns 0
 * when every length field fits in the frame, -1 when the frame is truncated
 * or inconsistent (v is then filled as far as parsing got). Never reads past
 * frame + len. Non-IP, non-UDP and fragments parse successfully; a first
 * fragment's UDP length is not checked against the packet. */
int pkt_parse(const __u8 *frame, size_t len, struct pkt_view *v);

/* 1 when the IPv4 header checksum is right; 0 otherwise or when not IPv4. */
int pkt_ipv4_csum_valid(const __u8 *frame, size_t len);

/* The UDP checksum the header should hold, computed from scratch over the
 * pseudo header and the UDP datagram (host order, never 0: a computed 0 is
 * 0xffff). 0 when the frame is not a parsable UDP packet. For IPv6 the pseudo
 * header uses the header's destination (routing headers are not followed). */
__u16 pkt_udp_csum_compute(const __u8 *frame, size_t len);

/* 1 when the UDP checksum field equals pkt_udp_csum_compute(), or is 0 in
 * IPv4 ("not used"). 0 otherwise: wrong, 0 in IPv6, or not UDP. To insist
 * that an IPv4 checksum is present, compare the field with the computed one. */
int pkt_udp_csum_valid(const __u8 *frame, size_t len);

/* Recomputes the IPv4 header checksum and the UDP checksum (an IPv4 UDP
 * checksum of 0 stays 0), e.g. after a test edited a frame to build the
 * expected output. Returns 0, or -1 when the frame does not parse. */
int pkt_fix_csums(__u8 *frame, size_t len);

/* The frame as it must leave for another L2 segment: destination and source
 * MAC replaced, every VLAN tag the frame had (up to PKT_MAX_VLAN) removed, and
 * one 802.1Q tag (TPID 0x8100, TCI = vid: PCP and DEI 0) put in front of the
 * L3 EtherType when vid is not 0; the rest of the frame (L3 on, padding
 * included) copied as it is. Written into out (which may not overlap frame);
 * returns its length, or 0 when the frame does not parse as Ethernet or out
 * is too small. */
size_t pkt_rewrite_l2(const __u8 *frame, size_t len, const __u8 dst_mac[6],
		      const __u8 src_mac[6], __u16 vid, __u8 *out, size_t cap);

/* Decodes the Tether header of a frame into host order. 0, or -1 when the
 * frame has none. */
int pkt_tether_read(const __u8 *frame, size_t len, struct pkt_tether *out);

/* The wire bytes of the router's token layout (wire.h struct tether_token):
 * slot and generation big-endian, secret copied as the maps hold it. */
void pkt_token(__u8 out[16], __u32 slot, __u32 generation, __u64 secret);

/* Big-endian fields of a frame. */
__u16 pkt_get16(const __u8 *p);
__u32 pkt_get32(const __u8 *p);
__u64 pkt_get64(const __u8 *p);

/* Address helpers: 0 on success, -1 when the text does not parse.
 * pkt_addr4 writes the 4 bytes at out[0..3] and zeroes the rest;
 * pkt_v4mapped writes ::ffff:a.b.c.d, the form the BPF maps use. */
int pkt_addr4(__u8 out[16], const char *dotted);
int pkt_addr6(__u8 out[16], const char *text);
int pkt_v4mapped(__u8 out[16], const char *dotted);
/* A spec address as the maps hold it: v4-mapped for family 4, as is for 6. */
void pkt_map_addr(int family, const __u8 addr[16], __u8 out[16]);

/* Diagnostics for failing tests. pkt_first_diff returns the first offset
 * where a and b differ (the shorter length when one is a prefix of the other),
 * or -1 when they are equal. */
long pkt_first_diff(const __u8 *a, size_t a_len, const __u8 *b, size_t b_len);
void pkt_hexdump(FILE *f, const __u8 *frame, size_t len);

#endif
