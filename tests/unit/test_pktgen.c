// SPDX-License-Identifier: MIT
/* Self-test of the packet builder and checker (tests/lib/pktgen.c): frames
 * are built, parsed back and checked against expectations computed here, and
 * against reference frames made by an independent implementation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pktgen.h"

static __u8 frame[PKT_MAX_FRAME];

/* Reference frames built with Python's struct.pack and its own RFC 1071 sum
 * (test_vector_ipv4/ipv6 below give the specs they match). */
static const __u8 vector_ipv4[] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x81, 0x00, 0x00, 0x64, 0x08, 0x00, 0x46, 0x00, 0x00, 0x55, 0x12, 0x34,
	0x40, 0x00, 0x40, 0x11, 0x39, 0x23, 0xc0, 0x00, 0x02, 0x0a, 0xc6, 0x33,
	0x64, 0x01, 0x01, 0x01, 0x01, 0x01, 0x9c, 0x40, 0x1e, 0x61, 0x00, 0x3d,
	0xb5, 0x8b, 0x54, 0x45, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,
	0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
	0x77, 0x88, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9,
	0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe,
	0xf0, 0x0d, 0x30, 0x31, 0x32, 0x33, 0x34,
};
static const __u8 vector_ipv6[] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x86, 0xdd, 0x60, 0x01, 0x23, 0x45, 0x00, 0x4b, 0x00, 0x40, 0x20, 0x01,
	0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x3c, 0x00, 0x01, 0x04, 0x00, 0x00,
	0x00, 0x00, 0x11, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x40,
	0x1e, 0x61, 0x00, 0x3b, 0x59, 0x6d, 0x54, 0x45, 0x01, 0x05, 0x00, 0x00,
	0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x11, 0x22,
	0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5,
	0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xde, 0xad,
	0xbe, 0xef, 0xca, 0xfe, 0xf0, 0x0d, 0x40, 0x41, 0x42,
};

/* ---- helpers -------------------------------------------------------------- */

static size_t build(const struct pkt_spec *s)
{
	size_t len = pkt_build(s, frame, sizeof(frame));

	assert_true(len > 0);
	return len;
}

static size_t parse_ok(size_t len, struct pkt_view *v)
{
	assert_int_equal(pkt_parse(frame, len, v), 0);
	return len;
}

static __u16 rd16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

/* A second, deliberately plain checksum verifier: lay the pseudo header and
 * the UDP datagram (checksum field included) out in one buffer and check that
 * the one's complement sum of it all is 0xffff. */
static int naive_udp_sum_ok(const __u8 *f, const struct pkt_view *v)
{
	static __u8 buf[PKT_MAX_FRAME + 64];
	const __u8 *ip = f + v->l3_off;
	size_t n = 0, udp_len = (size_t)v->udp_len, i;
	uint32_t sum = 0;

	if (v->family == 4) {
		memcpy(buf, ip + 12, 8);
		buf[8] = 0;
		buf[9] = 17;
		buf[10] = udp_len >> 8;
		buf[11] = udp_len & 0xff;
		n = 12;
	} else {
		memcpy(buf, ip + 8, 32);
		memset(buf + 32, 0, 8);
		buf[34] = udp_len >> 8;
		buf[35] = udp_len & 0xff;
		buf[39] = 17;
		n = 40;
	}
	memcpy(buf + n, f + v->l4_off, udp_len);
	n += udp_len;
	buf[n] = 0;
	for (i = 0; i < n; i += 2)
		sum += (uint32_t)(buf[i] << 8 | buf[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static void assert_checksums_ok(size_t len)
{
	struct pkt_view v;

	parse_ok(len, &v);
	if (v.family == 4)
		assert_true(pkt_ipv4_csum_valid(frame, len));
	assert_true(pkt_udp_csum_valid(frame, len));
	assert_true(naive_udp_sum_ok(frame, &v));
	assert_int_equal(rd16(frame + v.l4_off + 6), pkt_udp_csum_compute(frame, len));
}

/* ---- reference frames ----------------------------------------------------- */

static void set_vector_tether(struct pkt_spec *s)
{
	int i;

	s->hdr.flags = TETHER_F_KEY | TETHER_F_STRICT;
	s->hdr.function_id = 0x0102030405060708ULL;
	s->hdr.routing_key = 0x1122334455667788ULL;
	for (i = 0; i < 16; i++)
		s->hdr.token[i] = (__u8)(0xa0 + i);
	s->hdr.request_id = 0xdeadbeefcafef00dULL;
}

static void test_vector_ipv4(void **state)
{
	struct pkt_spec s;

	(void)state;
	pkt_spec_default(&s, 4);
	s.vlan_count = 1;
	s.vlan_tci[0] = 100;
	s.ipv4_options_len = 4;
	s.ipv4_options_fill = PKT_IPOPT_NOP;
	set_vector_tether(&s);
	s.payload_len = 5; /* odd: the last byte is padded in the sum */
	s.payload_seed = 0x30;

	size_t len = build(&s);

	assert_int_equal(len, sizeof(vector_ipv4));
	assert_int_equal(pkt_first_diff(frame, len, vector_ipv4, sizeof(vector_ipv4)), -1);
	assert_checksums_ok(len);
}

static void test_vector_ipv6(void **state)
{
	struct pkt_spec s;

	(void)state;
	pkt_spec_default(&s, 6);
	s.ipv6_flow_label = 0x12345;
	s.ipv6_ext_count = 2;
	s.ipv6_ext[0] = (struct pkt_ipv6_ext){ .type = 0 };
	s.ipv6_ext[1] = (struct pkt_ipv6_ext){ .type = 60 };
	set_vector_tether(&s);
	s.payload_len = 3;
	s.payload_seed = 0x40;

	size_t len = build(&s);

	assert_int_equal(len, sizeof(vector_ipv6));
	assert_int_equal(pkt_first_diff(frame, len, vector_ipv6, sizeof(vector_ipv6)), -1);
	assert_checksums_ok(len);
}

/* The IPv4 header example from Wikipedia's "IPv4 header checksum": b861. */
static void test_vector_ipv4_header_csum(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 4);
	pkt_addr4(s.src_addr, "192.168.0.1");
	pkt_addr4(s.dst_addr, "192.168.0.199");
	s.ip_id = 0;
	s.ipv4_frag = 0x4000;
	s.ttl = 64;
	s.payload_len = 0x73 - 20 - 8 - TETHER_HDR_LEN;

	size_t len = parse_ok(build(&s), &v);

	assert_int_equal(rd16(frame + v.l3_off + 2), 0x73);
	assert_int_equal(rd16(frame + v.l3_off + 10), 0xb861);
	assert_true(pkt_ipv4_csum_valid(frame, len));
}

/* ---- defaults and layouts ------------------------------------------------- */

static void check_default(int family)
{
	struct pkt_spec s;
	struct pkt_view v;
	int l3_hdr = family == 4 ? 20 : 40;

	pkt_spec_default(&s, family);

	size_t len = parse_ok(build(&s), &v);
	int udp_len = 8 + TETHER_HDR_LEN + PKT_TEST_PAYLOAD_LEN;

	assert_int_equal(len, 14 + l3_hdr + udp_len);
	assert_int_equal(v.family, family);
	assert_int_equal(v.l3_proto, family == 4 ? 0x0800 : 0x86dd);
	assert_int_equal(v.vlan_count, 0);
	assert_int_equal(v.l3_off, 14);
	assert_int_equal(v.l3_hdr_len, l3_hdr);
	assert_int_equal(v.l3_len, l3_hdr + udp_len);
	assert_int_equal(v.l4_proto, 17);
	assert_int_equal(v.l4_off, 14 + l3_hdr);
	assert_int_equal(v.udp_len, udp_len);
	assert_int_equal(v.payload_off, v.l4_off + 8);
	assert_int_equal(v.tether_off, v.l4_off + 8);
	assert_int_equal(v.data_off, v.tether_off + TETHER_HDR_LEN);
	assert_int_equal(v.data_len, PKT_TEST_PAYLOAD_LEN);
	assert_false(v.is_fragment);
	assert_int_equal(rd16(frame + v.l4_off), PKT_TEST_CLIENT_PORT);
	assert_int_equal(rd16(frame + v.l4_off + 2), PKT_TEST_VIP_PORT);
	assert_int_not_equal(rd16(frame + v.l4_off + 6), 0);
	assert_checksums_ok(len);

	struct pkt_tether t;

	assert_int_equal(pkt_tether_read(frame, len, &t), 0);
	assert_int_equal(t.magic, TETHER_MAGIC);
	assert_int_equal(t.version, TETHER_VERSION);
	assert_int_equal(t.flags, 0);
	assert_int_equal(t.function_id, PKT_TEST_FUNCTION_ID);
}

static void test_default_ipv4(void **state)
{
	(void)state;
	check_default(4);
}

static void test_default_ipv6(void **state)
{
	(void)state;
	check_default(6);
}

static void test_default_addresses(void **state)
{
	struct pkt_spec s;
	__u8 want[16];

	(void)state;
	pkt_spec_default(&s, 4);
	pkt_addr4(want, PKT_TEST_VIP4);
	assert_memory_equal(s.dst_addr, want, 16);
	pkt_spec_default(&s, 6);
	pkt_addr6(want, PKT_TEST_VIP6);
	assert_memory_equal(s.dst_addr, want, 16);
}

static void test_vlans(void **state)
{
	static const int families[] = { 4, 6 };
	struct pkt_spec s;
	struct pkt_view v;
	int f, tags, qinq;

	(void)state;
	for (f = 0; f < 2; f++)
		for (tags = 0; tags <= 2; tags++)
			for (qinq = 0; qinq <= 1; qinq++) {
				pkt_spec_default(&s, families[f]);
				s.vlan_count = tags;
				s.vlan_tci[0] = 0x2000 | 10; /* PCP 1, VID 10 */
				s.vlan_tci[1] = 20;
				s.qinq = qinq;

				size_t len = parse_ok(build(&s), &v);

				assert_int_equal(v.vlan_count, tags);
				assert_int_equal(v.l3_off, 14 + 4 * tags);
				assert_int_equal(v.family, families[f]);
				if (tags >= 1) {
					__u16 outer = tags == 2 && qinq ? 0x88a8 : 0x8100;

					assert_int_equal(v.vlan_tpid[0], outer);
					assert_int_equal(v.vlan_tci[0], 0x2000 | 10);
				}
				if (tags == 2) {
					assert_int_equal(v.vlan_tpid[1], 0x8100);
					assert_int_equal(v.vlan_tci[1], 20);
				}
				assert_checksums_ok(len);
			}
}

/* vlan_tpid: a single 802.1ad tag, or any TPID as given. */
static void test_vlan_tpid(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 4);
	s.vlan_count = 1;
	s.vlan_tpid[0] = 0x88a8;
	s.vlan_tci[0] = 0xe005; /* PCP 7, VID 5 */
	size_t len = parse_ok(build(&s), &v);

	assert_int_equal(rd16(frame + 12), 0x88a8);
	assert_int_equal(rd16(frame + 14), 0xe005);
	assert_int_equal(rd16(frame + 16), 0x0800);
	assert_int_equal(v.vlan_count, 1);
	assert_int_equal(v.vlan_tpid[0], 0x88a8);
	assert_checksums_ok(len);

	/* Given TPIDs win over qinq. */
	s.vlan_count = 2;
	s.qinq = 1;
	s.vlan_tpid[0] = 0x8100;
	s.vlan_tpid[1] = 0x88a8;
	parse_ok(build(&s), &v);
	assert_int_equal(rd16(frame + 12), 0x8100);
	assert_int_equal(rd16(frame + 16), 0x88a8);
}

/* pkt_rewrite_l2: new addresses, the tags gone, the one tag wanted (its
 * bytes written out here by hand), the rest as it was. */
static void test_rewrite_l2(void **state)
{
	static const __u8 dst[6] = { 0x02, 0, 0, 0, 0xd5, 0x01 }, src[6] = { 0x02, 0, 0, 0, 0x5c, 0x02 };
	static __u8 out[PKT_MAX_FRAME];
	struct pkt_spec s;
	struct pkt_view in_view, out_view;

	(void)state;
	for (int family = 4; family <= 6; family += 2)
		for (int tags = 0; tags <= 2; tags++)
			for (int vid = 0; vid <= 4094; vid += 4094) {
				pkt_spec_default(&s, family);
				s.vlan_count = tags;
				s.qinq = 1;
				s.vlan_tci[0] = 0xa064;
				s.vlan_tci[1] = 0x10c8;
				s.trailer_len = 6;
				size_t len = parse_ok(build(&s), &in_view);
				size_t out_len = pkt_rewrite_l2(frame, len, dst, src, (__u16)vid, out,
								sizeof(out));
				size_t l3_out = vid ? 18 : 14;

				assert_int_equal(out_len, len - 4 * tags + (vid ? 4 : 0));
				assert_memory_equal(out, dst, 6);
				assert_memory_equal(out + 6, src, 6);
				if (vid) {
					assert_int_equal(rd16(out + 12), 0x8100);
					assert_int_equal(rd16(out + 14), vid);
				}
				assert_int_equal(rd16(out + l3_out - 2), family == 4 ? 0x0800 : 0x86dd);
				assert_memory_equal(out + l3_out, frame + in_view.l3_off,
						    len - (size_t)in_view.l3_off);
				assert_int_equal(pkt_parse(out, out_len, &out_view), 0);
				assert_int_equal(out_view.vlan_count, vid ? 1 : 0);
				assert_true(pkt_udp_csum_valid(out, out_len));
				/* Too small an output buffer: 0. */
				assert_int_equal(pkt_rewrite_l2(frame, len, dst, src, (__u16)vid, out,
								out_len - 1), 0);
			}
	/* Not even Ethernet: 0. */
	assert_int_equal(pkt_rewrite_l2(frame, 13, dst, src, 0, out, sizeof(out)), 0);
}

/* ---- IPv4 options, flags and protocols ------------------------------------ */

static void check_ipv4_option_bytes(const __u8 *opt, int len, int fill)
{
	int i;

	if (fill == PKT_IPOPT_RR) {
		assert_int_equal(opt[0], 7);
		assert_int_equal(opt[1], len - 1);
		assert_int_equal(opt[2], 4);
		for (i = 3; i < len; i++)
			assert_int_equal(opt[i], 0);
		return;
	}
	for (i = 0; i < len; i++)
		assert_int_equal(opt[i], fill == PKT_IPOPT_NOP ? 1 : 0);
}

static void test_ipv4_options(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;
	int len_opt, fill;

	(void)state;
	for (fill = PKT_IPOPT_NOP; fill <= PKT_IPOPT_RR; fill++)
		for (len_opt = 0; len_opt <= 40; len_opt += 4) {
			pkt_spec_default(&s, 4);
			s.vlan_count = 2;
			s.ipv4_options_len = len_opt;
			s.ipv4_options_fill = fill;

			size_t len = parse_ok(build(&s), &v);

			assert_int_equal(v.l3_hdr_len, 20 + len_opt);
			assert_int_equal(frame[v.l3_off] & 0xf, (20 + len_opt) / 4);
			assert_int_equal(v.l4_off, v.l3_off + 20 + len_opt);
			assert_int_equal(v.tether_off, v.l4_off + 8);
			if (len_opt)
				check_ipv4_option_bytes(frame + v.l3_off + 20, len_opt, fill);
			assert_checksums_ok(len);
		}
}

static void test_ipv4_header_fields(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 4);
	s.ttl = 1;
	s.tos = 0xb8;
	s.ip_id = 0xbeef;
	s.ipv4_frag = 0;

	size_t len = parse_ok(build(&s), &v);
	const __u8 *ip = frame + v.l3_off;

	assert_int_equal(ip[0], 0x45);
	assert_int_equal(ip[1], 0xb8);
	assert_int_equal(rd16(ip + 4), 0xbeef);
	assert_int_equal(rd16(ip + 6), 0);
	assert_int_equal(ip[8], 1);
	assert_int_equal(ip[9], 17);
	assert_true(pkt_ipv4_csum_valid(frame, len));
}

static void test_ipv4_fragments(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 4);
	s.ipv4_frag = 0x2000; /* MF, offset 0: the first fragment */
	parse_ok(build(&s), &v);
	assert_true(v.is_fragment);
	assert_int_equal(v.l4_off, v.l3_off + 20);
	assert_int_equal(v.tether_off, v.l4_off + 8);

	s.ipv4_frag = 0x4000; /* DF alone is no fragment */
	parse_ok(build(&s), &v);
	assert_false(v.is_fragment);

	s.ipv4_frag = 100; /* the last fragment, offset 800 */
	size_t len = parse_ok(build(&s), &v);

	assert_true(v.is_fragment);
	assert_int_equal(v.l4_proto, 17);
	assert_int_equal(v.l4_off, -1);
	assert_int_equal(v.tether_off, -1);
	assert_int_equal(rd16(frame + v.l3_off + 6), 100);
	assert_true(pkt_ipv4_csum_valid(frame, len));
	assert_false(pkt_udp_csum_valid(frame, len));
}

static void test_other_protocols(void **state)
{
	static const __u8 protos[] = { 6, 1, 58, 47, 132 };
	struct pkt_spec s;
	struct pkt_view v;
	unsigned int i;
	int family;

	(void)state;
	for (family = 4; family <= 6; family += 2)
		for (i = 0; i < sizeof(protos); i++) {
			pkt_spec_default(&s, family);
			s.ip_proto = protos[i];
			s.payload_len = 24;

			size_t len = parse_ok(build(&s), &v);

			assert_int_equal(v.l4_proto, protos[i]);
			assert_int_equal(v.l3_len, v.l3_hdr_len + 24);
			assert_int_equal(v.udp_len, -1);
			assert_int_equal(v.tether_off, -1);
			assert_int_equal(len, (size_t)v.l4_off + 24);
			assert_false(pkt_udp_csum_valid(frame, len));
			assert_int_equal(pkt_udp_csum_compute(frame, len), 0);
			if (family == 4)
				assert_true(pkt_ipv4_csum_valid(frame, len));
		}
}

/* ---- IPv6 extension headers ----------------------------------------------- */

/* Walks the TLV options of a hop-by-hop or destination options header and
 * checks that they end exactly at its end and are skippable or padding. */
static void check_tlv_area(const __u8 *ext)
{
	size_t size = ((size_t)ext[1] + 1) * 8, pos = 2;

	while (pos < size) {
		if (ext[pos] == 0) {
			pos++;
			continue;
		}
		assert_true(ext[pos] == 1 || (ext[pos] >> 6) == 0);
		assert_true(pos + 2 <= size);
		pos += 2 + ext[pos + 1];
	}
	assert_int_equal(pos, size);
}

static size_t ext_size(const struct pkt_ipv6_ext *e)
{
	return e->type == 44 ? 8 : ((size_t)e->len + 1) * 8;
}

static void check_ext_chain(const struct pkt_spec *s)
{
	struct pkt_view v;
	size_t len = parse_ok(build(s), &v);
	int off = v.l3_off + 40, i;

	assert_int_equal(v.ipv6_ext_count, s->ipv6_ext_count);
	assert_int_equal(frame[v.l3_off + 6], s->ipv6_ext_count ? s->ipv6_ext[0].type : 17);
	for (i = 0; i < s->ipv6_ext_count; i++) {
		const struct pkt_ipv6_ext *e = &s->ipv6_ext[i];
		__u8 next = i + 1 < s->ipv6_ext_count ? s->ipv6_ext[i + 1].type : 17;

		assert_int_equal(v.ipv6_ext_type[i], e->type);
		assert_int_equal(v.ipv6_ext_off[i], off);
		assert_int_equal(frame[off], next);
		if (e->type == 0 || e->type == 60)
			check_tlv_area(frame + off);
		if (e->type == 43)
			assert_int_equal(frame[off + 3], 0); /* Segments Left */
		off += (int)ext_size(e);
	}
	assert_int_equal(v.l3_hdr_len, off - v.l3_off);
	assert_int_equal(v.l4_off, off);
	assert_int_equal(v.l4_proto, 17);
	assert_int_equal(v.tether_off, off + 8);
	assert_int_equal(v.l3_len, (int)len - v.l3_off);
	assert_checksums_ok(len);
}

static void test_ipv6_ext_chains(void **state)
{
	static const __u8 types[] = { 0, 43, 60, 44 };
	struct pkt_spec s;
	int count, i;

	(void)state;
	for (count = 0; count <= PKT_MAX_IPV6_EXT; count++) {
		pkt_spec_default(&s, 6);
		s.vlan_count = count % 3;
		s.ipv6_ext_count = count;
		for (i = 0; i < count; i++) {
			s.ipv6_ext[i].type = types[(i + count) % 4];
			s.ipv6_ext[i].len = (__u8)(i % 3);
		}
		check_ext_chain(&s);
	}
}

static void test_ipv6_ext_long(void **state)
{
	static const __u8 types[] = { 0, 60, 43 };
	struct pkt_spec s;
	int len8, i;

	(void)state;
	for (i = 0; i < 3; i++)
		for (len8 = 0; len8 <= 255; len8 += 17) {
			pkt_spec_default(&s, 6);
			s.ipv6_ext_count = 1;
			s.ipv6_ext[0].type = types[i];
			s.ipv6_ext[0].len = (__u8)len8;
			check_ext_chain(&s);
		}
	pkt_spec_default(&s, 6);
	s.ipv6_ext_count = PKT_MAX_IPV6_EXT;
	for (i = 0; i < PKT_MAX_IPV6_EXT; i++)
		s.ipv6_ext[i] = (struct pkt_ipv6_ext){ .type = 60, .len = 255 };
	check_ext_chain(&s);
}

static void test_ipv6_fragment_header(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 6);
	s.ip_id = 0x4242;
	s.ipv6_ext_count = 2;
	s.ipv6_ext[0] = (struct pkt_ipv6_ext){ .type = 0 };
	s.ipv6_ext[1] = (struct pkt_ipv6_ext){ .type = 44, .frag = 1 }; /* M, offset 0 */

	size_t len = parse_ok(build(&s), &v);
	const __u8 *fh = frame + v.ipv6_ext_off[1];

	assert_true(v.is_fragment);
	assert_int_equal(rd16(fh + 2), 1);
	assert_int_equal(rd16(fh + 6), 0x4242);
	assert_int_equal(v.l4_off, v.ipv6_ext_off[1] + 8);
	assert_true(pkt_udp_csum_valid(frame, len));

	s.ipv6_ext[1].frag = 100 << 3; /* a later fragment: no UDP header */
	len = parse_ok(build(&s), &v);
	assert_true(v.is_fragment);
	assert_int_equal(v.l4_off, -1);
	assert_int_equal(v.l4_proto, 17);
	assert_false(pkt_udp_csum_valid(frame, len));
}

static void test_ipv6_header_fields(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 6);
	s.tos = 0xb8;
	s.ipv6_flow_label = 0xfffff;
	s.ttl = 255;
	parse_ok(build(&s), &v);

	const __u8 *ip = frame + v.l3_off;

	assert_int_equal(ip[0], 0x6b);
	assert_int_equal(ip[1], 0x8f);
	assert_int_equal(rd16(ip + 2), 0xffff);
	assert_int_equal(ip[7], 255);
}

/* ---- checksums ------------------------------------------------------------ */

static void check_flip_invalidates(int family)
{
	struct pkt_spec s;
	struct pkt_view v;

	pkt_spec_default(&s, family);
	s.vlan_count = 1;
	s.payload_len = 33;

	size_t len = parse_ok(build(&s), &v);
	int offs[] = {
		v.data_off, v.data_off + v.data_len - 1, v.tether_off + 24, v.l4_off,
		v.l4_off + 6, family == 4 ? v.l3_off + 12 : v.l3_off + 39,
	};
	unsigned int i;

	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		frame[offs[i]] ^= 0x01;
		assert_false(pkt_udp_csum_valid(frame, len));
		frame[offs[i]] ^= 0x01;
		assert_true(pkt_udp_csum_valid(frame, len));
	}
}

static void test_flip_payload_byte(void **state)
{
	(void)state;
	check_flip_invalidates(4);
	check_flip_invalidates(6);
}

static void test_ipv4_header_flip(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;
	int i;

	(void)state;
	pkt_spec_default(&s, 4);
	s.ipv4_options_len = 8;

	size_t len = parse_ok(build(&s), &v);

	for (i = 0; i < v.l3_hdr_len; i++) {
		if (i == 0 || i == 2 || i == 3)
			continue; /* would change the layout rather than the sum */
		frame[v.l3_off + i] ^= 0x10;
		assert_false(pkt_ipv4_csum_valid(frame, len));
		frame[v.l3_off + i] ^= 0x10;
	}
	assert_true(pkt_ipv4_csum_valid(frame, len));
}

static void test_ipv4_zero_udp_csum(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 4);
	s.udp_csum_zero = 1;

	size_t len = parse_ok(build(&s), &v);

	assert_int_equal(rd16(frame + v.l4_off + 6), 0);
	assert_true(pkt_udp_csum_valid(frame, len));
	assert_int_not_equal(pkt_udp_csum_compute(frame, len), 0);
	frame[v.data_off] ^= 0xff; /* no checksum: nothing to notice */
	assert_true(pkt_udp_csum_valid(frame, len));
	assert_int_equal(pkt_fix_csums(frame, len), 0);
	assert_int_equal(rd16(frame + v.l4_off + 6), 0); /* stays "not used" */
	assert_true(pkt_ipv4_csum_valid(frame, len));
}

static void test_ipv6_zero_udp_csum_invalid(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 6);
	s.udp_csum_zero = 1; /* IPv4 only: ignored */

	size_t len = parse_ok(build(&s), &v);

	assert_int_not_equal(rd16(frame + v.l4_off + 6), 0);
	frame[v.l4_off + 6] = 0;
	frame[v.l4_off + 7] = 0;
	assert_false(pkt_udp_csum_valid(frame, len));
}

/* The low 16 bits of request_id add straight into the sum: choosing them as
 * the checksum of the frame with request_id 0 makes the sum 0xffff, whose
 * complement 0 must be sent as 0xffff. */
static void check_csum_ffff(int family)
{
	struct pkt_spec s;
	struct pkt_view v;

	pkt_spec_default(&s, family);
	s.hdr.request_id = 0;

	size_t len = build(&s);

	s.hdr.request_id = pkt_udp_csum_compute(frame, len);
	len = parse_ok(build(&s), &v);
	assert_int_equal(rd16(frame + v.l4_off + 6), 0xffff);
	assert_int_equal(pkt_udp_csum_compute(frame, len), 0xffff);
	assert_true(pkt_udp_csum_valid(frame, len));
	assert_true(naive_udp_sum_ok(frame, &v));
	frame[v.l4_off + 6] = 0;
	frame[v.l4_off + 7] = 0;
	assert_int_equal(pkt_udp_csum_valid(frame, len), family == 4);
}

static void test_csum_zero_sent_as_ffff(void **state)
{
	(void)state;
	check_csum_ffff(4);
	check_csum_ffff(6);
}

/* Editing a frame and fixing its checksums gives the frame built directly. */
static void test_fix_csums(void **state)
{
	static __u8 edited[PKT_MAX_FRAME];
	struct pkt_spec s;
	struct pkt_view v;
	int family;

	(void)state;
	for (family = 4; family <= 6; family += 2) {
		pkt_spec_default(&s, family);
		s.hdr.flags = TETHER_F_TOKEN;

		size_t len = parse_ok(build(&s), &v);

		memcpy(edited, frame, len);
		pkt_token(edited + v.tether_off + 24, 7, 3, 0x0123456789abcdefULL);
		edited[v.tether_off + 3] |= TETHER_F_STAMPED;
		if (family == 4)
			edited[v.l3_off + 8]--; /* TTL: the IP checksum too */
		assert_false(pkt_udp_csum_valid(edited, len));
		assert_int_equal(pkt_fix_csums(edited, len), 0);

		pkt_token(s.hdr.token, 7, 3, 0x0123456789abcdefULL);
		s.hdr.flags |= TETHER_F_STAMPED;
		s.ttl--;
		assert_int_equal(build(&s), len);
		if (family == 6)
			frame[v.l3_off + 7]++; /* hop limit: left alone above */
		assert_int_equal(pkt_first_diff(edited, len, frame, len), -1);
	}
}

/* ---- Tether header -------------------------------------------------------- */

static void test_tether_fields(void **state)
{
	struct pkt_spec s;
	struct pkt_tether t;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 6);
	s.hdr.flags = TETHER_F_KEY | TETHER_F_TOKEN;
	s.hdr.status = 3;
	s.hdr.reserved[1] = 9;
	s.hdr.function_id = 0x8000000000000001ULL;
	s.hdr.routing_key = 0xfedcba9876543210ULL;
	s.hdr.request_id = 77;
	pkt_token(s.hdr.token, 0x00010203, 0x04050607, 0);

	size_t len = parse_ok(build(&s), &v);
	const __u8 *h = frame + v.tether_off;

	assert_int_equal(rd16(h), 0x5445);
	assert_int_equal(h[2], 1);
	assert_int_equal(h[3], 0x03);
	assert_int_equal(h[4], 3);
	assert_int_equal(h[6], 9);
	assert_int_equal(h[8], 0x80);
	assert_int_equal(h[15], 0x01);
	assert_int_equal(h[16], 0xfe);
	assert_int_equal(h[24], 0x00);
	assert_int_equal(h[27], 0x03);
	assert_int_equal(h[31], 0x07);
	assert_int_equal(h[47], 77);

	assert_int_equal(pkt_tether_read(frame, len, &t), 0);
	assert_int_equal(t.routing_key, s.hdr.routing_key);
	assert_int_equal(t.function_id, s.hdr.function_id);
	assert_int_equal(t.request_id, 77);
	assert_int_equal(t.status, 3);
	assert_memory_equal(t.token, s.hdr.token, 16);
	assert_memory_equal(t.reserved, s.hdr.reserved, 3);
}

static void test_tether_defaults_and_raw(void **state)
{
	struct pkt_spec s;
	struct pkt_tether t;

	(void)state;
	pkt_spec_default(&s, 4);
	s.hdr.magic = 0;
	s.hdr.version = 0;

	size_t len = build(&s);

	assert_int_equal(pkt_tether_read(frame, len, &t), 0);
	assert_int_equal(t.magic, TETHER_MAGIC);
	assert_int_equal(t.version, TETHER_VERSION);

	s.hdr_raw = 1;
	len = build(&s);
	assert_int_equal(pkt_tether_read(frame, len, &t), 0);
	assert_int_equal(t.magic, 0);
	assert_int_equal(t.version, 0);

	s.hdr.magic = 0x5446;
	s.hdr.version = 2;
	len = build(&s);
	assert_int_equal(pkt_tether_read(frame, len, &t), 0);
	assert_int_equal(t.magic, 0x5446);
	assert_int_equal(t.version, 2);
}

static void test_no_tether(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;
	struct pkt_tether t;

	(void)state;
	pkt_spec_default(&s, 4);
	s.no_tether = 1;
	s.payload_len = 20; /* shorter than a Tether header */

	size_t len = parse_ok(build(&s), &v);

	assert_int_equal(v.udp_len, 28);
	assert_int_equal(v.payload_len, 20);
	assert_int_equal(v.tether_off, -1);
	assert_int_equal(pkt_tether_read(frame, len, &t), -1);
	assert_int_equal(frame[v.payload_off], 0);
	assert_int_equal(frame[v.payload_off + 19], 19);
	assert_checksums_ok(len);

	s.payload_len = 0;
	len = parse_ok(build(&s), &v);
	assert_int_equal(v.udp_len, 8);
	assert_int_equal(v.payload_len, 0);
	assert_checksums_ok(len);
}

static void test_payload_pattern(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;
	int i;

	(void)state;
	pkt_spec_default(&s, 6);
	s.payload_len = 300;
	s.payload_seed = 0xf0;

	size_t len = parse_ok(build(&s), &v);

	assert_int_equal(v.data_len, 300);
	for (i = 0; i < 300; i++)
		assert_int_equal(frame[v.data_off + i], (0xf0 + i) & 0xff);
	assert_checksums_ok(len);
}

/* ---- trailer, ARP, helpers ------------------------------------------------ */

static void test_trailer(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 4);
	s.trailer_len = 10;

	size_t len = parse_ok(build(&s), &v);

	assert_int_equal(len, (size_t)(v.l3_off + v.l3_len) + 10);
	assert_int_equal(frame[len - 1], 0xee);
	assert_checksums_ok(len);
	/* Cutting into the trailer still leaves a whole IP packet. */
	assert_int_equal(pkt_parse(frame, len - 5, &v), 0);
}

static void test_arp(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;
	int tags;

	(void)state;
	for (tags = 0; tags <= 2; tags++) {
		pkt_spec_default(&s, 4);
		s.vlan_count = tags;
		s.qinq = 1;

		size_t len = pkt_build_arp(&s, frame, sizeof(frame));

		assert_int_equal(len, 14 + 4 * tags + 28);
		parse_ok(len, &v);
		assert_int_equal(v.l3_proto, 0x0806);
		assert_int_equal(v.family, 0);
		assert_int_equal(v.l3_off, 14 + 4 * tags);
		assert_int_equal(v.l3_len, 28);
		assert_int_equal(v.l4_off, -1);
		assert_int_equal(frame[0], 0xff);
		assert_int_equal(rd16(frame + v.l3_off + 6), 1);
		assert_memory_equal(frame + v.l3_off + 14, s.src_addr, 4);
		assert_memory_equal(frame + v.l3_off + 24, s.dst_addr, 4);
		assert_false(pkt_udp_csum_valid(frame, len));
		assert_false(pkt_ipv4_csum_valid(frame, len));
	}
}

static void test_addresses(void **state)
{
	static const __u8 mapped[16] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 1,
	};
	__u8 a[16], b[16];

	(void)state;
	assert_int_equal(pkt_v4mapped(a, "198.51.100.1"), 0);
	assert_memory_equal(a, mapped, 16);
	assert_int_equal(pkt_addr4(b, "198.51.100.1"), 0);
	assert_memory_equal(b, mapped + 12, 4);
	pkt_map_addr(4, b, b);
	assert_memory_equal(b, mapped, 16);
	assert_int_equal(pkt_addr6(a, "::ffff:198.51.100.1"), 0);
	assert_memory_equal(a, mapped, 16);
	pkt_map_addr(6, a, b);
	assert_memory_equal(a, b, 16);
	assert_int_equal(pkt_addr4(a, "198.51.100"), -1);
	assert_int_equal(pkt_addr6(a, "2001:db8::zz"), -1);
	assert_int_equal(pkt_v4mapped(a, "::1"), -1);
}

static void test_token(void **state)
{
	struct tether_token tok;
	__u8 wire[16];

	(void)state;
	pkt_token(wire, 0x01020304, 0x0a0b0c0d, 0x1122334455667788ULL);
	memcpy(&tok, wire, 16);
	assert_int_equal(wire[0], 0x01);
	assert_int_equal(wire[3], 0x04);
	assert_int_equal(wire[4], 0x0a);
	assert_int_equal(wire[7], 0x0d);
	assert_int_equal(tok.secret, 0x1122334455667788ULL); /* as the map holds it */
}

static void test_first_diff(void **state)
{
	static const __u8 a[] = { 1, 2, 3 }, b[] = { 1, 9, 3 };

	(void)state;
	assert_int_equal(pkt_first_diff(a, 3, a, 3), -1);
	assert_int_equal(pkt_first_diff(a, 3, b, 3), 1);
	assert_int_equal(pkt_first_diff(a, 3, a, 2), 2);
}

static void test_invalid_specs(void **state)
{
	struct pkt_spec s;

	(void)state;
	pkt_spec_default(&s, 5);
	assert_int_equal(pkt_build(&s, frame, sizeof(frame)), 0);

	pkt_spec_default(&s, 4);
	s.vlan_count = 3;
	assert_int_equal(pkt_build(&s, frame, sizeof(frame)), 0);

	pkt_spec_default(&s, 4);
	s.ipv4_options_len = 6;
	assert_int_equal(pkt_build(&s, frame, sizeof(frame)), 0);
	s.ipv4_options_len = 44;
	assert_int_equal(pkt_build(&s, frame, sizeof(frame)), 0);

	pkt_spec_default(&s, 6);
	s.ipv6_ext_count = 1;
	s.ipv6_ext[0].type = 17;
	assert_int_equal(pkt_build(&s, frame, sizeof(frame)), 0);
	s.ipv6_ext_count = PKT_MAX_IPV6_EXT + 1;
	assert_int_equal(pkt_build(&s, frame, sizeof(frame)), 0);

	pkt_spec_default(&s, 4);
	s.payload_len = 65535 - 20 - 8 - TETHER_HDR_LEN;
	assert_true(pkt_build(&s, frame, sizeof(frame)) > 0);
	s.payload_len++; /* IPv4 total length would not fit 16 bits */
	assert_int_equal(pkt_build(&s, frame, sizeof(frame)), 0);

	pkt_spec_default(&s, 6);
	size_t len = build(&s);

	assert_int_equal(pkt_build(&s, frame, len - 1), 0);
	assert_int_equal(pkt_build(&s, frame, len), len);
	assert_int_equal(pkt_build_arp(&s, frame, 41), 0);
}

/* ---- truncated and inconsistent frames ------------------------------------ */

/* Every proper prefix of a frame without trailer must fail to parse; each is
 * copied into a buffer of exactly its size so ASan sees any over-read. */
static void check_all_prefixes_fail(const __u8 *full, size_t len)
{
	size_t cut;

	for (cut = 0; cut < len; cut++) {
		__u8 *copy = malloc(cut ? cut : 1);
		struct pkt_view v;
		struct pkt_tether t;

		assert_non_null(copy);
		memcpy(copy, full, cut);
		assert_int_equal(pkt_parse(copy, cut, &v), -1);
		assert_false(pkt_udp_csum_valid(copy, cut));
		assert_false(pkt_ipv4_csum_valid(copy, cut));
		assert_int_equal(pkt_udp_csum_compute(copy, cut), 0);
		assert_int_equal(pkt_tether_read(copy, cut, &t), -1);
		assert_int_equal(pkt_fix_csums(copy, cut), -1);
		free(copy);
	}
}

static void test_truncated(void **state)
{
	struct pkt_spec s;
	size_t len;

	(void)state;
	pkt_spec_default(&s, 4);
	s.vlan_count = 2;
	s.ipv4_options_len = 12;
	check_all_prefixes_fail(frame, build(&s));

	pkt_spec_default(&s, 6);
	s.vlan_count = 1;
	s.ipv6_ext_count = 3;
	s.ipv6_ext[0] = (struct pkt_ipv6_ext){ .type = 0, .len = 1 };
	s.ipv6_ext[1] = (struct pkt_ipv6_ext){ .type = 43 };
	s.ipv6_ext[2] = (struct pkt_ipv6_ext){ .type = 44 };
	check_all_prefixes_fail(frame, build(&s));

	pkt_spec_default(&s, 4);
	s.ip_proto = 6;
	check_all_prefixes_fail(frame, build(&s));

	pkt_spec_default(&s, 4);
	s.vlan_count = 2;
	len = pkt_build_arp(&s, frame, sizeof(frame));
	check_all_prefixes_fail(frame, len);
}

static void test_inconsistent_ipv4(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;

	(void)state;
	pkt_spec_default(&s, 4);

	size_t len = parse_ok(build(&s), &v);
	__u8 *ip = frame + v.l3_off, *udp = frame + v.l4_off;

	ip[0] = 0x44; /* IHL 4 */
	assert_int_equal(pkt_parse(frame, len, &v), -1);
	ip[0] = 0x45;
	ip[3] = 19; /* total length shorter than the header */
	ip[2] = 0;
	assert_int_equal(pkt_parse(frame, len, &v), -1);
	len = build(&s);
	ip[3]++; /* total length one past the frame */
	assert_int_equal(pkt_parse(frame, len, &v), -1);
	len = build(&s);
	udp[5] = 7; /* UDP length below its header */
	udp[4] = 0;
	assert_int_equal(pkt_parse(frame, len, &v), -1);
	len = build(&s);
	udp[5]++; /* UDP length past the IP packet */
	assert_int_equal(pkt_parse(frame, len, &v), -1);
	len = build(&s);
	udp[5]--; /* shorter than the IP payload: allowed */
	assert_int_equal(pkt_parse(frame, len, &v), 0);
	assert_int_equal(v.payload_len, 8 + TETHER_HDR_LEN + PKT_TEST_PAYLOAD_LEN - 9);
	ip[0] = 0x65; /* version 6 under an IPv4 EtherType */
	assert_int_equal(pkt_parse(frame, len, &v), -1);
}

static void test_inconsistent_ipv6(void **state)
{
	struct pkt_spec s;
	struct pkt_view v;
	int i, n;

	(void)state;
	pkt_spec_default(&s, 6);
	s.ipv6_ext_count = 1;
	s.ipv6_ext[0] = (struct pkt_ipv6_ext){ .type = 60 };

	size_t len = parse_ok(build(&s), &v);
	__u8 *ext = frame + v.ipv6_ext_off[0];

	ext[1] = 200; /* extension header beyond the packet */
	assert_int_equal(pkt_parse(frame, len, &v), -1);

	len = build(&s);
	frame[v.l3_off + 5]++; /* payload length one past the frame */
	assert_int_equal(pkt_parse(frame, len, &v), -1);

	/* Chains of 8-byte destination options headers ending in No Next
	 * Header: 16 are walked, 17 are more than the parser walks. */
	pkt_spec_default(&s, 6);
	s.ip_proto = 59; /* No Next Header: room to write the chain into */
	s.payload_len = 17 * 8;
	for (n = 16; n <= 17; n++) {
		len = parse_ok(build(&s), &v);
		frame[v.l3_off + 6] = 60;
		for (i = 0; i < n; i++) {
			frame[v.l4_off + 8 * i] = i + 1 < n ? 60 : 59;
			frame[v.l4_off + 8 * i + 1] = 0; /* 8 bytes */
		}
		assert_int_equal(pkt_parse(frame, len, &v), n == 16 ? 0 : -1);
		assert_int_equal(v.ipv6_ext_count, 16);
	}
}

static void test_not_ip(void **state)
{
	static const __u8 three_tags[] = {
		2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2,
		0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2, 0x81, 0x00, 0, 3, 0x08, 0x00,
	};
	struct pkt_view v;

	(void)state;
	assert_int_equal(pkt_parse(three_tags, sizeof(three_tags), &v), 0);
	assert_int_equal(v.vlan_count, 2);
	assert_int_equal(v.l3_proto, 0x8100); /* the third tag is not walked */
	assert_int_equal(v.family, 0);
	assert_int_equal(v.l3_off, 22);
	assert_int_equal(pkt_parse(three_tags, 13, &v), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_ipv4),
		cmocka_unit_test(test_vector_ipv6),
		cmocka_unit_test(test_vector_ipv4_header_csum),
		cmocka_unit_test(test_default_ipv4),
		cmocka_unit_test(test_default_ipv6),
		cmocka_unit_test(test_default_addresses),
		cmocka_unit_test(test_vlans),
		cmocka_unit_test(test_vlan_tpid),
		cmocka_unit_test(test_rewrite_l2),
		cmocka_unit_test(test_ipv4_options),
		cmocka_unit_test(test_ipv4_header_fields),
		cmocka_unit_test(test_ipv4_fragments),
		cmocka_unit_test(test_other_protocols),
		cmocka_unit_test(test_ipv6_ext_chains),
		cmocka_unit_test(test_ipv6_ext_long),
		cmocka_unit_test(test_ipv6_fragment_header),
		cmocka_unit_test(test_ipv6_header_fields),
		cmocka_unit_test(test_flip_payload_byte),
		cmocka_unit_test(test_ipv4_header_flip),
		cmocka_unit_test(test_ipv4_zero_udp_csum),
		cmocka_unit_test(test_ipv6_zero_udp_csum_invalid),
		cmocka_unit_test(test_csum_zero_sent_as_ffff),
		cmocka_unit_test(test_fix_csums),
		cmocka_unit_test(test_tether_fields),
		cmocka_unit_test(test_tether_defaults_and_raw),
		cmocka_unit_test(test_no_tether),
		cmocka_unit_test(test_payload_pattern),
		cmocka_unit_test(test_trailer),
		cmocka_unit_test(test_arp),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_first_diff),
		cmocka_unit_test(test_invalid_specs),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_inconsistent_ipv4),
		cmocka_unit_test(test_inconsistent_ipv6),
		cmocka_unit_test(test_not_ip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
