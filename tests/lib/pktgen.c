// SPDX-License-Identifier: MIT
/* Packet builder and checker for the tests; see pktgen.h. Every multi-byte
 * field is written and read byte by byte in network order, so nothing here
 * depends on host byte order or on alignment. */
#include "pktgen.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

#define ETH_HLEN_ 14
#define VLAN_HLEN_ 4
#define IPV4_HLEN_ 20
#define IPV6_HLEN_ 40
#define UDP_HLEN_ 8
#define ARP_HLEN_ 8 /* fixed part; the addresses follow */
#define IPV4_MAX_OPTIONS 40

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_IPV6 0x86dd

#define PROTO_HOPOPTS 0
#define PROTO_UDP 17
#define PROTO_ROUTING 43
#define PROTO_FRAGMENT 44
#define PROTO_DSTOPTS 60

#define IPV4_MF_AND_OFFSET 0x3fff /* a fragment: MF set or an offset */
#define IPV4_OFFSET 0x1fff
#define IPV6_FRAG_OFFSET 0xfff8 /* offset << 3; bit 0 is M */
#define IPV6_FRAG_M 0x0001

#define TLV_PAD1 0
#define TLV_PADN 1
/* RFC 4727 experimental option: the top bits 00 tell a node that does not
 * know it to skip it, so long option areas stay acceptable to a real stack
 * (Linux rejects PadN runs longer than 7 bytes). */
#define TLV_EXPERIMENTAL 0x1e
#define ROUTING_TYPE_EXPERIMENTAL 253 /* RFC 4727; with Segments Left 0 it is ignored */

#define IPOPT_EOL_ 0
#define IPOPT_NOP_ 1
#define IPOPT_RR_ 7

#define TRAILER_BYTE 0xee

/* ---- byte order ---------------------------------------------------------- */

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put32(__u8 *p, __u32 v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static void put64(__u8 *p, __u64 v)
{
	put32(p, v >> 32);
	put32(p + 4, v);
}

__u16 pkt_get16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

__u32 pkt_get32(const __u8 *p)
{
	return (__u32)pkt_get16(p) << 16 | pkt_get16(p + 2);
}

__u64 pkt_get64(const __u8 *p)
{
	return (__u64)pkt_get32(p) << 32 | pkt_get32(p + 4);
}

/* ---- RFC 1071 checksum ---------------------------------------------------- */

/* Adds data as big-endian 16-bit words; an odd last byte is the high half
 * of a word padded with zero. Only the last chunk of a sum may be odd. The
 * 64-bit accumulator cannot overflow for anything a frame can hold. */
static __u64 csum_add(__u64 sum, const __u8 *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += pkt_get16(p + i);
	if (n & 1)
		sum += (__u16)(p[n - 1] << 8);
	return sum;
}

/* End-around carry until the sum fits 16 bits. */
static __u16 csum_fold(__u64 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* The IPv4 header checksum for a header whose checksum field is skipped. */
static __u16 ipv4_csum(const __u8 *ip, size_t hdr_len)
{
	__u64 sum = csum_add(0, ip, 10); /* up to the checksum field */

	sum = csum_add(sum, ip + 12, hdr_len - 12);
	return (__u16)~csum_fold(sum);
}

/* The UDP checksum: pseudo header (RFC 768 / RFC 8200 8.1), then the UDP
 * header without its checksum field, then the data. 0 is sent as 0xffff. */
static __u16 udp_csum(int family, const __u8 *src, const __u8 *dst, const __u8 *udp,
		      size_t udp_len)
{
	size_t addr_len = family == 4 ? 4 : 16;
	__u64 sum = 0;

	sum = csum_add(sum, src, addr_len);
	sum = csum_add(sum, dst, addr_len);
	sum += PROTO_UDP;                            /* zero byte(s), protocol */
	sum += (udp_len >> 16) + (udp_len & 0xffff); /* IPv6 has a 32-bit length */
	sum = csum_add(sum, udp, 6);                 /* ports and length */
	sum = csum_add(sum, udp + UDP_HLEN_, udp_len - UDP_HLEN_);

	__u16 check = (__u16)~csum_fold(sum);

	return check ? check : 0xffff;
}

/* ---- spec ----------------------------------------------------------------- */

static const __u8 client_mac[6] = PKT_TEST_CLIENT_MAC;
static const __u8 router_mac[6] = PKT_TEST_ROUTER_MAC;

void pkt_spec_default(struct pkt_spec *s, int family)
{
	memset(s, 0, sizeof(*s));
	s->family = family;
	memcpy(s->src_mac, client_mac, 6);
	memcpy(s->dst_mac, router_mac, 6);
	if (family == 4) {
		pkt_addr4(s->src_addr, PKT_TEST_CLIENT4);
		pkt_addr4(s->dst_addr, PKT_TEST_VIP4);
		s->ipv4_frag = 0x4000; /* DF, as Linux sends UDP */
	} else {
		pkt_addr6(s->src_addr, PKT_TEST_CLIENT6);
		pkt_addr6(s->dst_addr, PKT_TEST_VIP6);
	}
	s->ip_proto = PROTO_UDP;
	s->ttl = 64;
	s->ip_id = 0x1234;
	s->src_port = PKT_TEST_CLIENT_PORT;
	s->dst_port = PKT_TEST_VIP_PORT;
	s->hdr.magic = TETHER_MAGIC;
	s->hdr.version = TETHER_VERSION;
	s->hdr.function_id = PKT_TEST_FUNCTION_ID;
	s->hdr.request_id = 1;
	s->payload_len = PKT_TEST_PAYLOAD_LEN;
}

static __u8 spec_proto(const struct pkt_spec *s)
{
	return s->ip_proto ? s->ip_proto : PROTO_UDP;
}

static int ipv6_ext_known(__u8 type)
{
	return type == PROTO_HOPOPTS || type == PROTO_ROUTING || type == PROTO_FRAGMENT ||
	       type == PROTO_DSTOPTS;
}

static size_t ipv6_ext_size(const struct pkt_ipv6_ext *e)
{
	return e->type == PROTO_FRAGMENT ? 8 : ((size_t)e->len + 1) * 8;
}

static int spec_valid(const struct pkt_spec *s)
{
	int i;

	if (s->family != 4 && s->family != 6)
		return 0;
	if (s->vlan_count < 0 || s->vlan_count > PKT_MAX_VLAN)
		return 0;
	if (s->payload_len > 0xffff || s->trailer_len > 0xffff)
		return 0;
	if (s->family == 4)
		return s->ipv4_options_len >= 0 && s->ipv4_options_len <= IPV4_MAX_OPTIONS &&
		       s->ipv4_options_len % 4 == 0 && s->ipv4_options_fill >= PKT_IPOPT_NOP &&
		       s->ipv4_options_fill <= PKT_IPOPT_RR;
	if (s->ipv6_ext_count < 0 || s->ipv6_ext_count > PKT_MAX_IPV6_EXT)
		return 0;
	for (i = 0; i < s->ipv6_ext_count; i++)
		if (!ipv6_ext_known(s->ipv6_ext[i].type))
			return 0;
	return 1;
}

static size_t l2_len(const struct pkt_spec *s)
{
	return ETH_HLEN_ + (size_t)s->vlan_count * VLAN_HLEN_;
}

/* The IP header with IPv4 options or IPv6 extension headers. */
static size_t l3_hdr_len(const struct pkt_spec *s)
{
	size_t len;
	int i;

	if (s->family == 4)
		return IPV4_HLEN_ + (size_t)s->ipv4_options_len;
	len = IPV6_HLEN_;
	for (i = 0; i < s->ipv6_ext_count; i++)
		len += ipv6_ext_size(&s->ipv6_ext[i]);
	return len;
}

static size_t l4_len(const struct pkt_spec *s)
{
	if (spec_proto(s) != PROTO_UDP)
		return s->payload_len;
	return UDP_HLEN_ + (s->no_tether ? 0 : TETHER_HDR_LEN) + s->payload_len;
}

/* ---- builder -------------------------------------------------------------- */

static void fill_pattern(__u8 *p, size_t n, __u8 seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (__u8)(seed + i);
}

/* Ethernet header and VLAN tags; returns their length. */
static size_t put_eth(const struct pkt_spec *s, const __u8 dst[6], __u8 *p, __u16 ethertype)
{
	size_t off = 12;
	int i;

	memcpy(p, dst, 6);
	memcpy(p + 6, s->src_mac, 6);
	for (i = 0; i < s->vlan_count; i++) {
		int outer_qinq = s->qinq && s->vlan_count == 2 && i == 0;
		__u16 tpid = s->vlan_tpid[i] ? s->vlan_tpid[i]
				: outer_qinq ? ETHERTYPE_QINQ : ETHERTYPE_VLAN;

		put16(p + off, tpid);
		put16(p + off + 2, s->vlan_tci[i]);
		off += VLAN_HLEN_;
	}
	put16(p + off, ethertype);
	return off + 2;
}

static void put_ipv4_options(__u8 *p, int len, int fill)
{
	switch (fill) {
	case PKT_IPOPT_NOP:
		memset(p, IPOPT_NOP_, len);
		break;
	case PKT_IPOPT_EOL:
		memset(p, IPOPT_EOL_, len);
		break;
	case PKT_IPOPT_RR:
		/* type, length 3 + 4n, pointer 4 (first slot free), n empty
		 * slots, and one EOL to reach a multiple of 4. */
		memset(p, IPOPT_EOL_, len);
		p[0] = IPOPT_RR_;
		p[1] = (__u8)(len - 1);
		p[2] = 4;
		break;
	}
}

static size_t put_ipv4(const struct pkt_spec *s, __u8 *ip, size_t payload_len)
{
	size_t hdr_len = IPV4_HLEN_ + (size_t)s->ipv4_options_len;

	ip[0] = 0x40 | (__u8)(hdr_len / 4);
	ip[1] = s->tos;
	put16(ip + 2, (__u16)(hdr_len + payload_len));
	put16(ip + 4, s->ip_id);
	put16(ip + 6, s->ipv4_frag);
	ip[8] = s->ttl;
	ip[9] = spec_proto(s);
	memcpy(ip + 12, s->src_addr, 4);
	memcpy(ip + 16, s->dst_addr, 4);
	put_ipv4_options(ip + IPV4_HLEN_, s->ipv4_options_len, s->ipv4_options_fill);
	put16(ip + 10, ipv4_csum(ip, hdr_len));
	return hdr_len;
}

/* Fills an option area of hop-by-hop or destination options with options a
 * node skips: experimental options for bulk, Pad1/PadN for the rest. */
static void put_tlv_filler(__u8 *p, size_t n)
{
	while (n > 0) {
		if (n == 1) {
			p[0] = TLV_PAD1;
			return;
		}
		if (n <= 7) {
			p[0] = TLV_PADN;
			p[1] = (__u8)(n - 2);
			return;
		}
		size_t data = n - 2 > 255 ? 255 : n - 2;

		p[0] = TLV_EXPERIMENTAL;
		p[1] = (__u8)data;
		p += 2 + data;
		n -= 2 + data;
	}
}

/* One extension header announcing next; returns its size. The buffer is
 * zeroed, so only nonzero fields are written. */
static size_t put_ipv6_ext(const struct pkt_spec *s, const struct pkt_ipv6_ext *e, __u8 next,
			   __u8 *p)
{
	size_t size = ipv6_ext_size(e);

	p[0] = next;
	switch (e->type) {
	case PROTO_FRAGMENT:
		put16(p + 2, e->frag);
		put32(p + 4, s->ip_id);
		break;
	case PROTO_ROUTING:
		p[1] = e->len;
		p[2] = ROUTING_TYPE_EXPERIMENTAL;
		p[3] = 0; /* Segments Left: the destination field is final */
		break;
	default: /* hop-by-hop, destination options */
		p[1] = e->len;
		put_tlv_filler(p + 2, size - 2);
		break;
	}
	return size;
}

static size_t put_ipv6(const struct pkt_spec *s, __u8 *ip, size_t l4_length)
{
	size_t off = IPV6_HLEN_;
	int i;

	put32(ip, 6u << 28 | (__u32)s->tos << 20 | (s->ipv6_flow_label & 0xfffff));
	put16(ip + 4, (__u16)(l3_hdr_len(s) - IPV6_HLEN_ + l4_length));
	ip[6] = s->ipv6_ext_count ? s->ipv6_ext[0].type : spec_proto(s);
	ip[7] = s->ttl;
	memcpy(ip + 8, s->src_addr, 16);
	memcpy(ip + 24, s->dst_addr, 16);
	for (i = 0; i < s->ipv6_ext_count; i++) {
		__u8 next = i + 1 < s->ipv6_ext_count ? s->ipv6_ext[i + 1].type : spec_proto(s);

		off += put_ipv6_ext(s, &s->ipv6_ext[i], next, ip + off);
	}
	return off;
}

static void put_tether(const struct pkt_tether *h, int raw, __u8 *p)
{
	__u16 magic = h->magic || raw ? h->magic : TETHER_MAGIC;
	__u8 version = h->version || raw ? h->version : TETHER_VERSION;

	put16(p + offsetof(struct tether_hdr, magic), magic);
	p[offsetof(struct tether_hdr, version)] = version;
	p[offsetof(struct tether_hdr, flags)] = h->flags;
	p[offsetof(struct tether_hdr, status)] = h->status;
	memcpy(p + offsetof(struct tether_hdr, reserved), h->reserved, 3);
	put64(p + offsetof(struct tether_hdr, function_id), h->function_id);
	put64(p + offsetof(struct tether_hdr, routing_key), h->routing_key);
	memcpy(p + offsetof(struct tether_hdr, container_token), h->token, 16);
	put64(p + offsetof(struct tether_hdr, request_id), h->request_id);
}

/* UDP header, Tether header and payload; the checksum comes later, once the
 * addresses are in place. */
static void put_udp(const struct pkt_spec *s, __u8 *udp, size_t udp_len)
{
	__u8 *data = udp + UDP_HLEN_;

	put16(udp, s->src_port);
	put16(udp + 2, s->dst_port);
	put16(udp + 4, (__u16)udp_len);
	if (!s->no_tether) {
		put_tether(&s->hdr, s->hdr_raw, data);
		data += TETHER_HDR_LEN;
	}
	fill_pattern(data, s->payload_len, s->payload_seed);
}

static void set_udp_csum(const struct pkt_spec *s, __u8 *ip, __u8 *udp, size_t udp_len)
{
	const __u8 *src = s->family == 4 ? ip + 12 : ip + 8;
	const __u8 *dst = s->family == 4 ? ip + 16 : ip + 24;

	if (s->family == 4 && s->udp_csum_zero)
		return; /* the zeroed buffer already says "not used" */
	put16(udp + 6, udp_csum(s->family, src, dst, udp, udp_len));
}

size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap)
{
	if (!s || !buf || !spec_valid(s))
		return 0;

	size_t l2 = l2_len(s), l3 = l3_hdr_len(s), l4 = l4_len(s);
	size_t ip_len_field = s->family == 4 ? l3 + l4 : l3 - IPV6_HLEN_ + l4;
	size_t total = l2 + l3 + l4 + s->trailer_len;

	if (ip_len_field > 0xffff || total > cap)
		return 0;
	memset(buf, 0, total);

	__u8 *ip = buf + put_eth(s, s->dst_mac, buf,
				 s->family == 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6);
	__u8 *l4p = ip + (s->family == 4 ? put_ipv4(s, ip, l4) : put_ipv6(s, ip, l4));

	if (spec_proto(s) == PROTO_UDP) {
		put_udp(s, l4p, l4);
		set_udp_csum(s, ip, l4p, l4);
	} else {
		fill_pattern(l4p, l4, s->payload_seed);
	}
	memset(l4p + l4, TRAILER_BYTE, s->trailer_len);
	return total;
}

size_t pkt_build_arp(const struct pkt_spec *s, __u8 *buf, size_t cap)
{
	static const __u8 broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	if (!s || !buf || s->vlan_count < 0 || s->vlan_count > PKT_MAX_VLAN ||
	    s->trailer_len > 0xffff)
		return 0;

	size_t arp_len = ARP_HLEN_ + 2 * (6 + 4);
	size_t total = l2_len(s) + arp_len + s->trailer_len;

	if (total > cap)
		return 0;
	memset(buf, 0, total);

	__u8 *arp = buf + put_eth(s, broadcast, buf, ETHERTYPE_ARP);

	put16(arp, 1);                 /* hardware: Ethernet */
	put16(arp + 2, ETHERTYPE_IPV4); /* protocol: IPv4 */
	arp[4] = 6;
	arp[5] = 4;
	put16(arp + 6, 1); /* request */
	memcpy(arp + 8, s->src_mac, 6);
	memcpy(arp + 14, s->src_addr, 4);
	/* target hardware address stays zero: that is the question */
	memcpy(arp + 24, s->dst_addr, 4);
	memset(arp + arp_len, TRAILER_BYTE, s->trailer_len);
	return total;
}

/* ---- parser --------------------------------------------------------------- */

static void view_reset(struct pkt_view *v)
{
	memset(v, 0, sizeof(*v));
	v->l3_off = v->l3_len = v->l3_hdr_len = -1;
	v->l4_proto = v->l4_off = v->udp_len = -1;
	v->payload_off = v->payload_len = -1;
	v->tether_off = v->data_off = v->data_len = -1;
}

/* Does [off, off + n) lie within [0, end)? Written so nothing overflows. */
static int fits(size_t off, size_t n, size_t end)
{
	return off <= end && n <= end - off;
}

static int is_vlan_tpid(__u16 tpid)
{
	return tpid == ETHERTYPE_VLAN || tpid == ETHERTYPE_QINQ;
}

/* Ethernet and up to PKT_MAX_VLAN tags; a further tag is left as l3_proto. */
static int parse_eth(const __u8 *f, size_t len, struct pkt_view *v, size_t *off)
{
	if (!fits(0, ETH_HLEN_, len))
		return -1;
	*off = 12;
	v->l3_proto = pkt_get16(f + 12);
	while (is_vlan_tpid(v->l3_proto) && v->vlan_count < PKT_MAX_VLAN) {
		if (!fits(*off, VLAN_HLEN_ + 2, len))
			return -1;
		v->vlan_tpid[v->vlan_count] = v->l3_proto;
		v->vlan_tci[v->vlan_count] = pkt_get16(f + *off + 2);
		v->vlan_count++;
		*off += VLAN_HLEN_;
		v->l3_proto = pkt_get16(f + *off);
	}
	*off += 2;
	v->l3_off = (int)*off;
	return 0;
}

/* UDP within [l4_off, l3_end); other protocols are only located. */
static int parse_l4(const __u8 *f, size_t l4_off, size_t l3_end, struct pkt_view *v)
{
	v->l4_off = (int)l4_off;
	if (v->l4_proto != PROTO_UDP)
		return 0;
	if (!fits(l4_off, UDP_HLEN_, l3_end))
		return -1;

	size_t udp_len = pkt_get16(f + l4_off + 4);

	v->udp_len = (int)udp_len;
	if (udp_len < UDP_HLEN_)
		return -1;
	if (!fits(l4_off, udp_len, l3_end)) {
		if (!v->is_fragment)
			return -1;
		udp_len = l3_end - l4_off; /* a first fragment: what is here */
	}
	v->payload_off = (int)(l4_off + UDP_HLEN_);
	v->payload_len = (int)(udp_len - UDP_HLEN_);
	if (v->payload_len >= TETHER_HDR_LEN) {
		v->tether_off = v->payload_off;
		v->data_off = v->payload_off + TETHER_HDR_LEN;
		v->data_len = v->payload_len - TETHER_HDR_LEN;
	}
	return 0;
}

static int parse_ipv4(const __u8 *f, size_t len, struct pkt_view *v)
{
	size_t ip = (size_t)v->l3_off;

	if (!fits(ip, IPV4_HLEN_, len) || f[ip] >> 4 != 4)
		return -1;

	size_t hdr_len = (size_t)(f[ip] & 0xf) * 4;
	size_t total = pkt_get16(f + ip + 2);
	__u16 frag = pkt_get16(f + ip + 6);

	if (hdr_len < IPV4_HLEN_ || total < hdr_len || !fits(ip, total, len))
		return -1;
	v->family = 4;
	v->l3_len = (int)total;
	v->l3_hdr_len = (int)hdr_len;
	v->l4_proto = f[ip + 9];
	v->is_fragment = (frag & IPV4_MF_AND_OFFSET) != 0;
	if (frag & IPV4_OFFSET)
		return 0; /* not the first fragment: no L4 header here */
	return parse_l4(f, ip + hdr_len, ip + total, v);
}

/* Walks the extension headers; returns the offset after them, or 0 when the
 * chain does not fit (or, for a non-first fragment, *stop is set). */
static size_t parse_ipv6_ext(const __u8 *f, size_t pos, size_t end, struct pkt_view *v,
			     int *stop)
{
	__u8 next = f[v->l3_off + 6];

	while (ipv6_ext_known(next)) {
		if (v->ipv6_ext_count == PKT_PARSE_MAX_EXT || !fits(pos, 8, end))
			return 0;

		size_t size = next == PROTO_FRAGMENT ? 8 : ((size_t)f[pos + 1] + 1) * 8;

		if (!fits(pos, size, end))
			return 0;
		v->ipv6_ext_type[v->ipv6_ext_count] = next;
		v->ipv6_ext_off[v->ipv6_ext_count++] = (int)pos;
		if (next == PROTO_FRAGMENT) {
			v->is_fragment = 1;
			*stop = (pkt_get16(f + pos + 2) & IPV6_FRAG_OFFSET) != 0;
		}
		next = f[pos];
		pos += size;
		if (*stop)
			break;
	}
	v->l4_proto = next;
	return pos;
}

static int parse_ipv6(const __u8 *f, size_t len, struct pkt_view *v)
{
	size_t ip = (size_t)v->l3_off;

	if (!fits(ip, IPV6_HLEN_, len) || f[ip] >> 4 != 6)
		return -1;

	size_t total = IPV6_HLEN_ + (size_t)pkt_get16(f + ip + 4);
	int stop = 0;

	if (!fits(ip, total, len))
		return -1;
	v->family = 6;
	v->l3_len = (int)total;

	size_t l4 = parse_ipv6_ext(f, ip + IPV6_HLEN_, ip + total, v, &stop);

	if (!l4)
		return -1;
	v->l3_hdr_len = (int)(l4 - ip);
	if (stop)
		return 0; /* not the first fragment: no L4 header here */
	return parse_l4(f, l4, ip + total, v);
}

static int parse_arp(const __u8 *f, size_t len, struct pkt_view *v)
{
	size_t arp = (size_t)v->l3_off;

	if (!fits(arp, ARP_HLEN_, len))
		return -1;

	size_t body = 2 * ((size_t)f[arp + 4] + f[arp + 5]);

	if (!fits(arp + ARP_HLEN_, body, len))
		return -1;
	v->l3_len = (int)(ARP_HLEN_ + body);
	return 0;
}

int pkt_parse(const __u8 *frame, size_t len, struct pkt_view *v)
{
	size_t off;

	view_reset(v);
	if (!frame || parse_eth(frame, len, v, &off))
		return -1;
	switch (v->l3_proto) {
	case ETHERTYPE_IPV4:
		return parse_ipv4(frame, len, v);
	case ETHERTYPE_IPV6:
		return parse_ipv6(frame, len, v);
	case ETHERTYPE_ARP:
		return parse_arp(frame, len, v);
	default:
		return 0; /* something else (or a third VLAN tag): located only */
	}
}

/* ---- checkers ------------------------------------------------------------- */

/* Parses and locates a whole UDP datagram; 0 when there is none. */
static int locate_udp(const __u8 *frame, size_t len, struct pkt_view *v)
{
	if (pkt_parse(frame, len, v) || v->l4_proto != PROTO_UDP || v->l4_off < 0)
		return 0;
	return fits((size_t)v->l4_off, (size_t)v->udp_len, (size_t)(v->l3_off + v->l3_len));
}

static __u16 udp_csum_of(const __u8 *frame, const struct pkt_view *v)
{
	const __u8 *ip = frame + v->l3_off;
	const __u8 *src = v->family == 4 ? ip + 12 : ip + 8;
	const __u8 *dst = v->family == 4 ? ip + 16 : ip + 24;

	return udp_csum(v->family, src, dst, frame + v->l4_off, (size_t)v->udp_len);
}

int pkt_ipv4_csum_valid(const __u8 *frame, size_t len)
{
	struct pkt_view v;

	if (pkt_parse(frame, len, &v) || v.family != 4)
		return 0;

	const __u8 *ip = frame + v.l3_off;

	return pkt_get16(ip + 10) == ipv4_csum(ip, (size_t)v.l3_hdr_len);
}

__u16 pkt_udp_csum_compute(const __u8 *frame, size_t len)
{
	struct pkt_view v;

	return locate_udp(frame, len, &v) ? udp_csum_of(frame, &v) : 0;
}

int pkt_udp_csum_valid(const __u8 *frame, size_t len)
{
	struct pkt_view v;

	if (!locate_udp(frame, len, &v))
		return 0;

	__u16 field = pkt_get16(frame + v.l4_off + 6);

	if (field == 0)
		return v.family == 4; /* IPv4: "not used"; IPv6: never valid */
	return field == udp_csum_of(frame, &v);
}

int pkt_fix_csums(__u8 *frame, size_t len)
{
	struct pkt_view v;

	if (pkt_parse(frame, len, &v))
		return -1;
	if (v.family == 4) {
		__u8 *ip = frame + v.l3_off;

		put16(ip + 10, ipv4_csum(ip, (size_t)v.l3_hdr_len));
	}
	if (!locate_udp(frame, len, &v))
		return 0;

	__u8 *check = frame + v.l4_off + 6;

	if (v.family == 4 && pkt_get16(check) == 0)
		return 0;
	put16(check, udp_csum_of(frame, &v));
	return 0;
}

int pkt_tether_read(const __u8 *frame, size_t len, struct pkt_tether *out)
{
	struct pkt_view v;

	if (pkt_parse(frame, len, &v) || v.tether_off < 0)
		return -1;

	const __u8 *p = frame + v.tether_off;

	out->magic = pkt_get16(p + offsetof(struct tether_hdr, magic));
	out->version = p[offsetof(struct tether_hdr, version)];
	out->flags = p[offsetof(struct tether_hdr, flags)];
	out->status = p[offsetof(struct tether_hdr, status)];
	memcpy(out->reserved, p + offsetof(struct tether_hdr, reserved), 3);
	out->function_id = pkt_get64(p + offsetof(struct tether_hdr, function_id));
	out->routing_key = pkt_get64(p + offsetof(struct tether_hdr, routing_key));
	memcpy(out->token, p + offsetof(struct tether_hdr, container_token), 16);
	out->request_id = pkt_get64(p + offsetof(struct tether_hdr, request_id));
	return 0;
}

void pkt_token(__u8 out[16], __u32 slot, __u32 generation, __u64 secret)
{
	put32(out + offsetof(struct tether_token, slot), slot);
	put32(out + offsetof(struct tether_token, generation), generation);
	/* the secret is random bytes, copied as they lie in the map */
	memcpy(out + offsetof(struct tether_token, secret), &secret, sizeof(secret));
}

/* ---- addresses and diagnostics -------------------------------------------- */

int pkt_addr4(__u8 out[16], const char *dotted)
{
	memset(out, 0, 16);
	return inet_pton(AF_INET, dotted, out) == 1 ? 0 : -1;
}

int pkt_addr6(__u8 out[16], const char *text)
{
	memset(out, 0, 16);
	return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
}

int pkt_v4mapped(__u8 out[16], const char *dotted)
{
	__u8 v4[16];

	if (pkt_addr4(v4, dotted))
		return -1;
	pkt_map_addr(4, v4, out);
	return 0;
}

void pkt_map_addr(int family, const __u8 addr[16], __u8 out[16])
{
	__u8 tmp[16] = { 0 }; /* addr and out may be the same array */

	if (family == 4) {
		tmp[10] = 0xff;
		tmp[11] = 0xff;
		memcpy(tmp + 12, addr, 4);
	} else {
		memcpy(tmp, addr, 16);
	}
	memcpy(out, tmp, 16);
}

long pkt_first_diff(const __u8 *a, size_t a_len, const __u8 *b, size_t b_len)
{
	size_t n = a_len < b_len ? a_len : b_len;
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return (long)i;
	return a_len == b_len ? -1 : (long)n;
}

void pkt_hexdump(FILE *f, const __u8 *frame, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 16 == 0)
			fprintf(f, "%04zx:", i);
		fprintf(f, " %02x", frame[i]);
		if (i % 16 == 15 || i + 1 == len)
			fputc('\n', f);
	}
}

size_t pkt_rewrite_l2(const __u8 *frame, size_t len, const __u8 dst_mac[6],
		      const __u8 src_mac[6], __u16 vid, __u8 *out, size_t cap)
{
	struct pkt_view v;
	size_t l3_type_off, off = 12;

	view_reset(&v);
	if (parse_eth(frame, len, &v, &l3_type_off))
		return 0;
	l3_type_off -= 2; /* parse_eth leaves *off past the EtherType */

	size_t rest = len - l3_type_off; /* the EtherType and what follows */
	size_t total = 12 + (vid ? VLAN_HLEN_ : 0) + rest;

	if (total > cap)
		return 0;
	memcpy(out, dst_mac, 6);
	memcpy(out + 6, src_mac, 6);
	if (vid) {
		put16(out + off, ETHERTYPE_VLAN);
		put16(out + off + 2, vid);
		off += VLAN_HLEN_;
	}
	memcpy(out + off, frame + l3_type_off, rest);
	return total;
}
