// SPDX-License-Identifier: MIT
/* What the XDP program does with frames that are not clean requests, run in
 * the real kernel with BPF_PROG_TEST_RUN against the fixture's world:
 *
 *   - frames shorter than Ethernet are refused by the kernel (EINVAL);
 *   - every truncation of a valid request (IPv4/IPv6, 0/1/2 VLAN tags, with
 *     IPv4 options or IPv6 extension headers) is dropped as malformed;
 *   - requests with a bad Tether header field or lying lengths are dropped as
 *     malformed;
 *   - fragments to a service address are dropped as fragments, fragments to
 *     other addresses pass;
 *   - traffic that is not for a service (ARP, ICMP, TCP, other ports and
 *     addresses, a third VLAN tag, an over-long IPv6 chain) passes untouched;
 *   - neither is UDP to VIP:0 (the address-only services entry is keyed with
 *     port 0) nor IPv6 to the v4-mapped form of an IPv4 VIP;
 *   - a UDP header outside the IP packet (in Ethernet padding) is malformed;
 *   - the boundaries (40 bytes of IPv4 options, 4 IPv6 extension headers,
 *     Ethernet padding, 2 VLAN tags) still route normally.
 *
 * Every case checks the verdict, the whole counter delta (exactly one counter
 * moves), the output bytes, and that no affinity was learned. Failure
 * messages name the case. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "fixture.h"
#include "tether/hash.h"
#include "tether_xdp.skel.h"

#define CHECK(cond, name, fmt, ...)                                      \
	do {                                                             \
		if (!(cond))                                             \
			fail_msg("[%s] " fmt, (name), ##__VA_ARGS__);    \
	} while (0)

#define OTHER_ADDR4 "198.51.100.2"
#define OTHER_ADDR6 "2001:db8:100::2"
#define OTHER_PORT (PKT_TEST_VIP_PORT + 1)
#define ETH_LEN 14
/* bpf/parse.h MAX_IPV6_EXT_HDRS: the extension headers the program walks. */
#define MAX_IPV6_EXT_HDRS_TEST 4

static __u8 in[PKT_MAX_FRAME];
static struct xdp_result res;

/* ---- checks ---------------------------------------------------------------- */

static void expect_stats(const char *name, const struct tether_stats *got,
			 const struct tether_stats *want)
{
	char diff[1024];

	CHECK(stats_diff(got, want, diff, sizeof(diff)) == 0, name, "counter deltas differ:%s",
	      diff);
}

static void expect_verdict(const char *name, int want)
{
	CHECK(res.verdict == want, name, "verdict %s, want %s", xdp_verdict_name(res.verdict),
	      xdp_verdict_name(want));
}

static void expect_output(const char *name, const __u8 *want, size_t len)
{
	fixture_expect_output(name, "output", &res, want, len);
}

/* Not stamped by the program (a client may have set STAMPED itself: then the
 * output must still carry the client's own token). */
static void expect_not_stamped(const char *name, const __u8 *frame, size_t len)
{
	struct pkt_tether in_hdr, out_hdr;

	if (pkt_tether_read(frame, len, &in_hdr) || (in_hdr.flags & TETHER_F_STAMPED))
		return;
	CHECK(pkt_tether_read(res.frame, res.len, &out_hdr) || !(out_hdr.flags & TETHER_F_STAMPED),
	      name, "output was stamped with slot %ld", fixture_stamped_slot(&res));
}

static int affinity_fd(struct fixture *fx)
{
	return bpf_map__fd(fx->dp.skel->maps.affinity);
}

static unsigned affinity_count(struct fixture *fx)
{
	struct affinity_key key, next;
	const struct affinity_key *prev = NULL;
	unsigned n = 0;

	while (!bpf_map_get_next_key(affinity_fd(fx), prev, &next)) {
		n++;
		key = next;
		prev = &key;
	}
	return n;
}

static size_t build(const char *name, const struct pkt_spec *s, __u8 *buf)
{
	size_t n = pkt_build(s, buf, PKT_MAX_FRAME);

	CHECK(n > 0 && n <= HARNESS_FRAME_MAX, name, "pkt_build failed (%zu bytes)", n);
	return n;
}

static void run(struct fixture *fx, const __u8 *frame, size_t len, struct tether_stats *delta)
{
	fixture_run(fx, frame, len, &res, delta);
}

/* Dropped as malformed (or as a fragment): nothing else moves, nothing is
 * rewritten, nothing is learned. */
static void expect_dropped(struct fixture *fx, const char *name, const __u8 *frame, size_t len,
			   int as_fragment)
{
	struct tether_stats delta, want = { 0 };
	unsigned learned = affinity_count(fx);

	run(fx, frame, len, &delta);
	expect_verdict(name, XDP_DROP);
	if (as_fragment)
		want.fragment = 1;
	else
		want.malformed = 1;
	expect_stats(name, &delta, &want);
	expect_not_stamped(name, frame, len);
	expect_output(name, frame, len);
	CHECK(affinity_count(fx) == learned, name, "an affinity entry was learned");
}

/* To the host stack untouched: pass +1 and nothing else. */
static void expect_passed_untouched(struct fixture *fx, const char *name, const __u8 *frame,
				    size_t len)
{
	struct tether_stats delta;
	unsigned learned = affinity_count(fx);

	run(fx, frame, len, &delta);
	expect_verdict(name, XDP_PASS);
	expect_stats(name, &delta, &(struct tether_stats){ .pass = 1 });
	expect_output(name, frame, len);
	CHECK(affinity_count(fx) == learned, name, "an affinity entry was learned");
}

/* Forwarded to want_slot: the verdict that reaches its backend, and exactly
 * the input with Ethernet addresses and VLAN tags rewritten for the backend,
 * the token stamped, STAMPED set and the checksums right. */
static void expect_forwarded(struct fixture *fx, const char *name, const __u8 *frame, size_t len,
			     long want_slot)
{
	static __u8 want[PKT_MAX_FRAME];
	struct container_record c;
	struct backend_record b;
	struct pkt_view v;

	CHECK(want_slot >= 0, name, "the model finds no capacity; the fixture should have some");
	CHECK(container_get(&fx->dp, (__u32)want_slot, &c) == 0, name, "slot %ld has no container",
	      want_slot);
	CHECK(backend_get(&fx->dp, c.backend_id, &b) == 0, name, "backend %u missing", c.backend_id);
	expect_verdict(name, b.ifindex == fx->lo_ifindex ? XDP_TX : XDP_REDIRECT);
	CHECK(fixture_stamped_slot(&res) == want_slot, name, "stamped slot %ld, want %ld",
	      fixture_stamped_slot(&res), want_slot);
	CHECK(c.function_id == FIXTURE_F1, name, "slot %ld holds function %#llx, not F1", want_slot,
	      (unsigned long long)c.function_id);

	size_t want_len = pkt_rewrite_l2(frame, len, b.mac, b.src_mac, b.vlan, want, sizeof(want));

	CHECK(want_len > 0 && pkt_parse(want, want_len, &v) == 0 && v.tether_off >= 0, name,
	      "input does not parse");
	want[v.tether_off + offsetof(struct tether_hdr, flags)] |= TETHER_F_STAMPED;
	memcpy(want + v.tether_off + offsetof(struct tether_hdr, container_token),
	       &fx->tokens[want_slot], sizeof(struct tether_token));
	CHECK(pkt_fix_csums(want, want_len) == 0, name, "cannot fix the expected frame's checksums");
	expect_output(name, want, want_len);
	CHECK(pkt_udp_csum_valid(res.frame, res.len), name, "UDP checksum of the output is wrong");
	if (v.family == 4)
		CHECK(pkt_ipv4_csum_valid(res.frame, res.len), name, "IPv4 header checksum wrong");
}

/* ---- frames shorter than Ethernet ------------------------------------------ */

static void test_shorter_than_ethernet_refused(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats before, after, delta;
	struct pkt_spec s;
	char name[96];

	pkt_spec_default(&s, 4);
	build("short frames", &s, in);

	for (size_t len = 0; len < ETH_LEN; len++) {
		snprintf(name, sizeof(name), "IPv4 request cut to %zu bytes", len);
		assert_int_equal(stats_read(&fx->dp, &before), 0);
		int err = harness_run(&fx->dp, in, (__u32)len, fx->lo_ifindex, &res);

		assert_int_equal(stats_read(&fx->dp, &after), 0);
		CHECK(err == -EINVAL, name, "BPF_PROG_TEST_RUN returned %d, want -EINVAL (%d)", err,
		      -EINVAL);
		stats_delta(&before, &after, &delta);
		expect_stats(name, &delta, &(struct tether_stats){ 0 });
	}
	/* The boundary: 14 bytes are taken (and judged malformed). */
	CHECK(harness_run(&fx->dp, in, ETH_LEN, fx->lo_ifindex, &res) == 0, "14 bytes",
	      "BPF_PROG_TEST_RUN refused an Ethernet-sized frame");
}

/* ---- truncations ------------------------------------------------------------ */

struct shape {
	const char *name;
	int family;
	int vlans;
	int qinq;
	int v4_options;
	int v6_ext_count;
	__u8 v6_ext[4];
	size_t trailer;
};

static const struct shape shapes[] = {
	{ "IPv4", 4, 0, 0, 0, 0, { 0 }, 0 },
	{ "IPv4 1 VLAN", 4, 1, 0, 0, 0, { 0 }, 0 },
	{ "IPv4 2 VLAN (802.1Q)", 4, 2, 0, 0, 0, { 0 }, 0 },
	{ "IPv4 2 VLAN (802.1ad outer)", 4, 2, 1, 0, 0, { 0 }, 0 },
	{ "IPv4 40B options", 4, 0, 0, 40, 0, { 0 }, 0 },
	{ "IPv4 40B options 2 VLAN", 4, 2, 0, 40, 0, { 0 }, 0 },
	{ "IPv6", 6, 0, 0, 0, 0, { 0 }, 0 },
	{ "IPv6 1 VLAN", 6, 1, 0, 0, 0, { 0 }, 0 },
	{ "IPv6 2 VLAN (802.1Q)", 6, 2, 0, 0, 0, { 0 }, 0 },
	{ "IPv6 2 VLAN (802.1ad outer)", 6, 2, 1, 0, 0, { 0 }, 0 },
	{ "IPv6 hop-by-hop", 6, 0, 0, 0, 1, { 0 }, 0 },
	{ "IPv6 4 ext headers 1 VLAN", 6, 1, 0, 0, 4, { 0, 60, 43, 60 }, 0 },
};

static void spec_of_shape(const struct shape *sh, struct pkt_spec *s)
{
	pkt_spec_default(s, sh->family);
	s->vlan_count = sh->vlans;
	s->qinq = sh->qinq;
	for (int i = 0; i < sh->vlans; i++)
		s->vlan_tci[i] = (__u16)(100 + i);
	s->ipv4_options_len = sh->v4_options;
	s->ipv6_ext_count = sh->v6_ext_count;
	for (int i = 0; i < sh->v6_ext_count; i++)
		s->ipv6_ext[i] = (struct pkt_ipv6_ext){ .type = sh->v6_ext[i], .len = (__u8)(i & 1) };
	s->trailer_len = sh->trailer;
	s->hdr.flags = TETHER_F_KEY;
}

static size_t tether_end_of(const char *name, const __u8 *frame, size_t len)
{
	struct pkt_view v;

	CHECK(pkt_parse(frame, len, &v) == 0 && v.tether_off > 0, name, "request does not parse");
	return (size_t)v.tether_off + TETHER_HDR_LEN;
}

static void test_every_truncation_is_malformed(void **state)
{
	struct fixture *fx = *state;
	char name[128];

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct shape *sh = &shapes[i];
		struct pkt_spec s;
		struct tether_stats delta;

		spec_of_shape(sh, &s);
		s.hdr.routing_key = 1000 + i;
		size_t n = build(sh->name, &s, in);
		size_t tether_end = tether_end_of(sh->name, in, n);

		/* Control: the whole request routes (so the cuts are what fails). */
		snprintf(name, sizeof(name), "%s, whole request", sh->name);
		run(fx, in, n, &delta);
		expect_stats(name, &delta, &(struct tether_stats){ .key_new = 1 });
		expect_forwarded(fx, name, in, n,
				 fixture_model_pick(fx, FIXTURE_F1, tether_hash_key(FIXTURE_F1, 1000 + i)));

		/* Every cut from Ethernet up to the end of the Tether header and
		 * through the payload: the IP length fields stay as they were. */
		for (size_t len = ETH_LEN; len < n; len++) {
			snprintf(name, sizeof(name), "%s cut to %zu of %zu bytes (Tether header ends at %zu)",
				 sh->name, len, n, tether_end);
			expect_dropped(fx, name, in, len, 0);
		}
	}
}

/* ---- bad fields ------------------------------------------------------------- */

enum bad_kind {
	BAD_MAGIC,
	BAD_VERSION,
	BAD_FLAGS,
	BAD_STATUS,
	BAD_RESERVED, /* index: which byte */
	BAD_FUNCTION,
	BAD_UDP_LEN,      /* UDP length := value */
	BAD_UDP_LEN_OVER, /* UDP length := real + value */
	BAD_IP_LEN_OVER,  /* IP length field := real + value (past the frame) */
	BAD_IP_LEN_UNDER, /* IP length field := real - value (UDP sticks out) */
	BAD_IHL,          /* IPv4 only: IHL := value */
	BAD_IP_VERSION,   /* version nibble := value */
	BAD_V6_EXT_LEN,   /* IPv6 only: index extension headers, the first's length := value */
};

struct bad_case {
	const char *name;
	enum bad_kind kind;
	unsigned long value;
	int index;
	size_t trailer; /* Ethernet padding, so a lie can fit the frame */
	int family;     /* 0: both */
};

static const struct bad_case bad_cases[] = {
	{ "magic 0x0000", BAD_MAGIC, 0x0000, 0, 0, 0 },
	{ "magic 0x4554 (byte-swapped)", BAD_MAGIC, 0x4554, 0, 0, 0 },
	{ "magic 0x5446", BAD_MAGIC, 0x5446, 0, 0, 0 },
	{ "magic 0xffff", BAD_MAGIC, 0xffff, 0, 0, 0 },
	{ "version 0", BAD_VERSION, 0, 0, 0, 0 },
	{ "version 2", BAD_VERSION, 2, 0, 0, 0 },
	{ "version 0xff", BAD_VERSION, 0xff, 0, 0, 0 },
	{ "reserved flag 0x08", BAD_FLAGS, TETHER_F_KEY | 0x08, 0, 0, 0 },
	{ "reserved flag 0x10", BAD_FLAGS, TETHER_F_KEY | 0x10, 0, 0, 0 },
	{ "reserved flag 0x20", BAD_FLAGS, TETHER_F_KEY | 0x20, 0, 0, 0 },
	{ "STAMPED set by the client", BAD_FLAGS, TETHER_F_KEY | TETHER_F_STAMPED, 0, 0, 0 },
	{ "STAMPED|TOKEN set by the client", BAD_FLAGS, TETHER_F_TOKEN | TETHER_F_STAMPED, 0, 0, 0 },
	{ "REPLY set by the client", BAD_FLAGS, TETHER_F_KEY | TETHER_F_REPLY, 0, 0, 0 },
	{ "every flag bit", BAD_FLAGS, 0xff, 0, 0, 0 },
	{ "status 1 (NO_CAPACITY)", BAD_STATUS, 1, 0, 0, 0 },
	{ "status 2 (CONTAINER_GONE)", BAD_STATUS, 2, 0, 0, 0 },
	{ "status 3 (MALFORMED)", BAD_STATUS, 3, 0, 0, 0 },
	{ "status 4 (OVERLOADED)", BAD_STATUS, 4, 0, 0, 0 },
	{ "status 0xff", BAD_STATUS, 0xff, 0, 0, 0 },
	{ "reserved[0] = 1", BAD_RESERVED, 1, 0, 0, 0 },
	{ "reserved[1] = 1", BAD_RESERVED, 1, 1, 0, 0 },
	{ "reserved[2] = 1", BAD_RESERVED, 1, 2, 0, 0 },
	{ "reserved[0] = 0x80", BAD_RESERVED, 0x80, 0, 0, 0 },
	{ "reserved[2] = 0xff", BAD_RESERVED, 0xff, 2, 0, 0 },
	{ "function_id 0", BAD_FUNCTION, 0, 0, 0, 0 },
	{ "UDP length 8+48-1", BAD_UDP_LEN, 8 + TETHER_HDR_LEN - 1, 0, 0, 0 },
	{ "UDP length 8 (no payload)", BAD_UDP_LEN, 8, 0, 0, 0 },
	{ "UDP length 7 (below the UDP header)", BAD_UDP_LEN, 7, 0, 0, 0 },
	{ "UDP length 0", BAD_UDP_LEN, 0, 0, 0, 0 },
	{ "UDP length 1 past the IP payload", BAD_UDP_LEN_OVER, 1, 0, 0, 0 },
	{ "UDP length 1 past the IP payload, padding holds it", BAD_UDP_LEN_OVER, 1, 0, 16, 0 },
	{ "UDP length 16 past the IP payload, padding holds it", BAD_UDP_LEN_OVER, 16, 0, 16, 0 },
	{ "UDP length 0xffff", BAD_UDP_LEN, 0xffff, 0, 0, 0 },
	{ "IP length 1 past the frame", BAD_IP_LEN_OVER, 1, 0, 0, 0 },
	{ "IP length 100 past the frame", BAD_IP_LEN_OVER, 100, 0, 0, 0 },
	{ "IP length cut 1 below the UDP datagram", BAD_IP_LEN_UNDER, 1, 0, 0, 0 },
	{ "IP length cut into the Tether header", BAD_IP_LEN_UNDER, 40, 0, 0, 0 },
	{ "IPv4 IHL 4", BAD_IHL, 4, 0, 0, 4 },
	{ "IPv4 IHL 0", BAD_IHL, 0, 0, 0, 4 },
	{ "IPv4 total length below the header", BAD_IP_LEN_UNDER, 8 + TETHER_HDR_LEN + 16 + 1, 0,
	  0, 4 },
	{ "version 6 under EtherType IPv4", BAD_IP_VERSION, 6, 0, 0, 4 },
	{ "version 4 under EtherType IPv6", BAD_IP_VERSION, 4, 0, 0, 6 },
	{ "IPv6 hop-by-hop length past the packet, then UDP", BAD_V6_EXT_LEN, 255, 1, 0, 6 },
	{ "IPv6 hop-by-hop length past the packet, then another header", BAD_V6_EXT_LEN, 255, 2,
	  0, 6 },
};

static void put16(__u8 *p, unsigned v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)v;
}

static size_t build_bad(const char *name, const struct bad_case *c, int family, __u8 *buf)
{
	struct pkt_spec s;
	struct pkt_view v;

	pkt_spec_default(&s, family);
	s.hdr.flags = TETHER_F_KEY;
	s.hdr.routing_key = 77;
	s.trailer_len = c->trailer;
	switch (c->kind) {
	case BAD_MAGIC:
		s.hdr_raw = 1;
		s.hdr.magic = (__u16)c->value;
		break;
	case BAD_VERSION:
		s.hdr_raw = 1;
		s.hdr.version = (__u8)c->value;
		break;
	case BAD_FLAGS:
		s.hdr.flags = (__u8)c->value;
		break;
	case BAD_STATUS:
		s.hdr.status = (__u8)c->value;
		break;
	case BAD_RESERVED:
		s.hdr.reserved[c->index] = (__u8)c->value;
		break;
	case BAD_FUNCTION:
		s.hdr.function_id = c->value;
		break;
	case BAD_V6_EXT_LEN:
		s.ipv6_ext_count = c->index;
		s.ipv6_ext[0] = (struct pkt_ipv6_ext){ .type = 0 };
		s.ipv6_ext[1] = (struct pkt_ipv6_ext){ .type = 60 };
		break;
	default:
		break;
	}
	size_t n = build(name, &s, buf);

	CHECK(pkt_parse(buf, n, &v) == 0, name, "built request does not parse");
	__u8 *ip = buf + v.l3_off;
	__u8 *ip_len = family == 4 ? ip + 2 : ip + 4;
	__u8 *udp_len = buf + v.l4_off + 4;

	switch (c->kind) {
	case BAD_UDP_LEN:
		put16(udp_len, (unsigned)c->value);
		break;
	case BAD_UDP_LEN_OVER:
		put16(udp_len, pkt_get16(udp_len) + (unsigned)c->value);
		break;
	case BAD_IP_LEN_OVER:
		put16(ip_len, pkt_get16(ip_len) + (unsigned)c->value);
		break;
	case BAD_IP_LEN_UNDER:
		put16(ip_len, pkt_get16(ip_len) - (unsigned)c->value);
		break;
	case BAD_IHL:
		ip[0] = (__u8)((ip[0] & 0xf0) | c->value);
		break;
	case BAD_IP_VERSION:
		ip[0] = (__u8)((ip[0] & 0x0f) | c->value << 4);
		break;
	case BAD_V6_EXT_LEN:
		ip[40 + 1] = (__u8)c->value;
		break;
	default:
		break;
	}
	/* The header fields were built with right checksums; the lengths are
	 * lies on purpose and keep the checksums of the truth. */
	return n;
}

static void test_bad_fields_are_malformed(void **state)
{
	struct fixture *fx = *state;
	char name[160];

	for (int family = 4; family <= 6; family += 2) {
		for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
			const struct bad_case *c = &bad_cases[i];

			if (c->family && c->family != family)
				continue;
			snprintf(name, sizeof(name), "IPv%d, %s", family, c->name);
			size_t n = build_bad(name, c, family, in);

			expect_dropped(fx, name, in, n, 0);
		}
	}
	/* Nothing was learned from all of them; and the same request, well
	 * formed, is accepted and learned (the cases can fail). */
	CHECK(affinity_count(fx) == 0, "bad fields", "affinity entries were learned");
	struct pkt_spec s;
	struct tether_stats delta;

	pkt_spec_default(&s, 4);
	s.hdr.flags = TETHER_F_KEY;
	s.hdr.routing_key = 77;
	size_t n = build("control", &s, in);

	run(fx, in, n, &delta);
	expect_stats("control", &delta, &(struct tether_stats){ .key_new = 1 });
	CHECK(affinity_count(fx) == 1, "control", "the well-formed request learned nothing");
}

/* ---- fragments -------------------------------------------------------------- */

struct frag_case {
	const char *name;
	int family;
	__u16 v4_frag;
	int ext_count;
	struct pkt_ipv6_ext ext[5];
};

#define V6_FRAG(offset_units, more) { .type = 44, .frag = (__u16)((offset_units) << 3 | (more)) }

static const struct frag_case frag_cases[] = {
	{ "IPv4 MF, offset 0", 4, 0x2000, 0, { { 0 } } },
	{ "IPv4 offset 185, last fragment", 4, 185, 0, { { 0 } } },
	{ "IPv4 MF and offset 185", 4, 0x2000 | 185, 0, { { 0 } } },
	{ "IPv4 DF and offset 1", 4, 0x4000 | 1, 0, { { 0 } } },
	{ "IPv6 fragment header first, M", 6, 0, 1, { V6_FRAG(0, 1) } },
	{ "IPv6 fragment header first, offset 8, last", 6, 0, 1, { V6_FRAG(8, 0) } },
	{ "IPv6 fragment after hop-by-hop", 6, 0, 2, { { .type = 0 }, V6_FRAG(0, 1) } },
	{ "IPv6 fragment after hop-by-hop, offset 8", 6, 0, 2, { { .type = 0 }, V6_FRAG(8, 1) } },
	{ "IPv6 fragment 4th, after hop-by-hop, routing, dstopts", 6, 0, 4,
	  { { .type = 0 }, { .type = 43 }, { .type = 60, .len = 1 }, V6_FRAG(0, 1) } },
	{ "IPv6 fragment 5th, after 4 extension headers", 6, 0, 5,
	  { { .type = 0 }, { .type = 60 }, { .type = 43 }, { .type = 60 }, V6_FRAG(0, 1) } },
};

static void test_fragments(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		const char *name;
		int to_vip;
		__u16 port;
	} dests[] = {
		{ "to the VIP", 1, PKT_TEST_VIP_PORT },
		{ "to the VIP on another port", 1, OTHER_PORT },
		{ "to a non-service address", 0, PKT_TEST_VIP_PORT },
	};
	char name[192];

	for (size_t i = 0; i < sizeof(frag_cases) / sizeof(frag_cases[0]); i++) {
		const struct frag_case *c = &frag_cases[i];

		for (size_t d = 0; d < sizeof(dests) / sizeof(dests[0]); d++) {
			struct pkt_spec s;

			pkt_spec_default(&s, c->family);
			s.hdr.flags = TETHER_F_KEY;
			s.hdr.routing_key = 5;
			s.dst_port = dests[d].port;
			if (!dests[d].to_vip) {
				if (c->family == 4)
					pkt_addr4(s.dst_addr, OTHER_ADDR4);
				else
					pkt_addr6(s.dst_addr, OTHER_ADDR6);
			}
			if (c->family == 4)
				s.ipv4_frag = c->v4_frag;
			s.ipv6_ext_count = c->ext_count;
			memcpy(s.ipv6_ext, c->ext, sizeof(c->ext));
			snprintf(name, sizeof(name), "%s %s", c->name, dests[d].name);
			size_t n = build(name, &s, in);

			if (dests[d].to_vip)
				expect_dropped(fx, name, in, n, 1);
			else
				expect_passed_untouched(fx, name, in, n);
		}
	}
}

/* ---- pass-through ----------------------------------------------------------- */

/* Inserts a third 802.1Q tag inside a two-tag frame. */
static size_t add_third_vlan(__u8 *frame, size_t len)
{
	size_t at = 12 + 2 * 4;

	memmove(frame + at + 4, frame + at, len - at);
	frame[at] = 0x81;
	frame[at + 1] = 0x00;
	frame[at + 2] = 0x00;
	frame[at + 3] = 0x66;
	return len + 4;
}

static const struct pkt_ipv6_ext long_chain[] = {
	{ .type = 0 }, { .type = 60 }, { .type = 43 }, { .type = 60, .len = 1 }, { .type = 60 },
	{ .type = 60 }, { .type = 43, .len = 2 }, { .type = 60 },
};

static void test_not_for_a_service_passes_untouched(void **state)
{
	struct fixture *fx = *state;
	struct pkt_spec s;
	size_t n;
	char name[128];

	/* ARP for the VIP's address, with 0, 1 and 2 VLAN tags. */
	for (int vlans = 0; vlans <= 2; vlans++) {
		pkt_spec_default(&s, 4);
		pkt_addr4(s.dst_addr, PKT_TEST_VIP4);
		s.vlan_count = vlans;
		s.vlan_tci[0] = 7;
		s.vlan_tci[1] = 8;
		n = pkt_build_arp(&s, in, PKT_MAX_FRAME);
		snprintf(name, sizeof(name), "ARP who-has VIP, %d VLAN", vlans);
		CHECK(n > 0, name, "pkt_build_arp failed");
		expect_passed_untouched(fx, name, in, n);
	}

	for (int family = 4; family <= 6; family += 2) {
		static const struct {
			const char *name;
			__u8 proto4, proto6;
			int other_addr;
			__u16 port;
		} cases[] = {
			{ "ICMP/ICMPv6 to the VIP", 1, 58, 0, 0 },
			{ "TCP to the VIP", 6, 6, 0, 0 },
			{ "SCTP to the VIP", 132, 132, 0, 0 },
			{ "UDP to the VIP on another port", 17, 17, 0, OTHER_PORT },
			{ "UDP to another address on the service port", 17, 17, 1, 0 },
			{ "UDP to another address on another port", 17, 17, 1, OTHER_PORT },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			pkt_spec_default(&s, family);
			s.hdr.flags = TETHER_F_KEY;
			s.hdr.routing_key = 9;
			s.ip_proto = family == 4 ? cases[i].proto4 : cases[i].proto6;
			if (s.ip_proto != 17)
				s.payload_len = 64;
			if (cases[i].port)
				s.dst_port = cases[i].port;
			if (cases[i].other_addr) {
				if (family == 4)
					pkt_addr4(s.dst_addr, OTHER_ADDR4);
				else
					pkt_addr6(s.dst_addr, OTHER_ADDR6);
			}
			snprintf(name, sizeof(name), "IPv%d %s", family, cases[i].name);
			n = build(name, &s, in);
			expect_passed_untouched(fx, name, in, n);
		}

		/* A reply from the VIP back to the client (direct server
		 * return through this host): not a request for the service. */
		pkt_spec_default(&s, family);
		memcpy(s.src_addr, s.dst_addr, 16);
		if (family == 4)
			pkt_addr4(s.dst_addr, PKT_TEST_CLIENT4);
		else
			pkt_addr6(s.dst_addr, PKT_TEST_CLIENT6);
		s.src_port = PKT_TEST_VIP_PORT;
		s.dst_port = PKT_TEST_CLIENT_PORT;
		s.hdr.flags = TETHER_F_REPLY | TETHER_F_STAMPED | TETHER_F_TOKEN;
		snprintf(name, sizeof(name), "IPv%d reply from the VIP to the client", family);
		n = build(name, &s, in);
		expect_passed_untouched(fx, name, in, n);

		/* A valid request under a third VLAN tag. */
		pkt_spec_default(&s, family);
		s.vlan_count = 2;
		s.vlan_tci[0] = 10;
		s.vlan_tci[1] = 20;
		s.hdr.flags = TETHER_F_KEY;
		s.hdr.routing_key = 10;
		snprintf(name, sizeof(name), "IPv%d request under 3 VLAN tags", family);
		n = add_third_vlan(in, build(name, &s, in));
		expect_passed_untouched(fx, name, in, n);
	}

	/* A frame of an EtherType the program does not know (LLDP). */
	pkt_spec_default(&s, 4);
	n = build("LLDP EtherType", &s, in);
	put16(in + 12, 0x88cc);
	expect_passed_untouched(fx, "unknown EtherType 0x88cc", in, n);

	/* IPv6 chains longer than the walked bound to a non-service address. */
	for (int count = MAX_IPV6_EXT_HDRS_TEST + 1; count <= PKT_MAX_IPV6_EXT; count++) {
		pkt_spec_default(&s, 6);
		pkt_addr6(s.dst_addr, OTHER_ADDR6);
		s.ipv6_ext_count = count;
		memcpy(s.ipv6_ext, long_chain, sizeof(long_chain));
		snprintf(name, sizeof(name), "IPv6 chain of %d extension headers to another address",
			 count);
		n = build(name, &s, in);
		expect_passed_untouched(fx, name, in, n);
	}
}

/* Port 0 is no service port (service_add refuses it); the services map's
 * address-only entry, keyed with port 0, must not make VIP:0 one. */
static void test_udp_to_vip_port_zero_passes(void **state)
{
	struct fixture *fx = *state;
	char name[128];

	for (int family = 4; family <= 6; family += 2) {
		for (int tether = 1; tether >= 0; tether--) {
			struct pkt_spec s;

			pkt_spec_default(&s, family);
			s.dst_port = 0;
			s.no_tether = !tether;
			s.hdr.flags = TETHER_F_KEY;
			s.hdr.routing_key = 12;
			snprintf(name, sizeof(name), "IPv%d UDP to the VIP on port 0, %s", family,
				 tether ? "a valid Tether request" : "no Tether header");
			size_t n = build(name, &s, in);

			expect_passed_untouched(fx, name, in, n);
		}
	}
}

/* The maps hold IPv4 addresses v4-mapped (::ffff:a.b.c.d), but an IPv6
 * datagram to ::ffff:198.51.100.1 is not addressed to the IPv4 service
 * 198.51.100.1: the backend holds that VIP as IPv4 and the edge host's IPv6
 * stack never treats a mapped address as its own. Not for a service: passes. */
static void test_ipv6_to_v4mapped_vip_is_not_the_ipv4_service(void **state)
{
	struct fixture *fx = *state;
	char name[128];

	for (int tether = 1; tether >= 0; tether--) {
		struct pkt_spec s;

		pkt_spec_default(&s, 6);
		pkt_v4mapped(s.dst_addr, PKT_TEST_VIP4);
		s.no_tether = !tether;
		s.hdr.flags = TETHER_F_KEY;
		s.hdr.routing_key = 13;
		snprintf(name, sizeof(name), "IPv6 UDP to ::ffff:" PKT_TEST_VIP4 ":%u, %s",
			 PKT_TEST_VIP_PORT, tether ? "a valid Tether request" : "no Tether header");
		size_t n = build(name, &s, in);

		expect_passed_untouched(fx, name, in, n);
	}
}

/* A UDP packet to the VIP whose IP length ends before (or inside) the UDP
 * header: the header cannot be read from the packet, so it is malformed,
 * whatever bytes follow the packet in the frame (Ethernet padding). */
static void test_udp_header_outside_ip_packet_is_malformed(void **state)
{
	struct fixture *fx = *state;
	char name[160];

	for (int family = 4; family <= 6; family += 2) {
		for (int inside = 0; inside <= 4; inside += 4) {
			for (int padding = 1; padding >= 0; padding--) {
				struct pkt_spec s;
				struct pkt_view v;

				pkt_spec_default(&s, family);
				s.no_tether = 1;
				s.payload_len = 0;
				s.trailer_len = padding ? 16 : 0;
				snprintf(name, sizeof(name),
					 "IPv%d to the VIP, IP length ends %d bytes into the UDP header, %s",
					 family, inside,
					 padding ? "the header's bytes and padding follow" : "frame ends there");
				size_t n = build(name, &s, in);

				CHECK(pkt_parse(in, n, &v) == 0, name, "does not parse");
				__u8 *ip = in + v.l3_off;
				unsigned hdr_len = family == 4 ? 20 : 0; /* what the length field counts */

				if (family == 4)
					put16(ip + 2, hdr_len + (unsigned)inside);
				else
					put16(ip + 4, (unsigned)inside);
				if (!inside && padding)
					memset(in + v.l4_off, 0xee, 8); /* the "UDP header" is padding */
				if (!padding)
					n = (size_t)v.l4_off + (size_t)inside;
				expect_dropped(fx, name, in, n, 0);
			}
		}
	}
}

/* The same over-long chains to the VIP: ours, and not walkable: malformed. */
static void test_overlong_ipv6_chain_to_vip_is_malformed(void **state)
{
	struct fixture *fx = *state;
	char name[128];

	for (int count = MAX_IPV6_EXT_HDRS_TEST + 1; count <= PKT_MAX_IPV6_EXT; count++) {
		for (int other_port = 0; other_port <= 1; other_port++) {
			struct pkt_spec s;

			pkt_spec_default(&s, 6);
			s.ipv6_ext_count = count;
			memcpy(s.ipv6_ext, long_chain, sizeof(long_chain));
			s.hdr.flags = TETHER_F_KEY;
			s.hdr.routing_key = 11;
			if (other_port)
				s.dst_port = OTHER_PORT;
			snprintf(name, sizeof(name), "IPv6 chain of %d extension headers to the VIP%s",
				 count, other_port ? " on another port" : "");
			size_t n = build(name, &s, in);

			expect_dropped(fx, name, in, n, 0);
		}
	}
}

/* ---- the boundaries still route --------------------------------------------- */

static void test_boundaries_route_normally(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats delta;
	char name[128];
	__u64 key = 500;

	/* IPv4 with every option length up to the maximum 40 bytes, each fill. */
	static const char *fills[] = { "NOP", "EOL", "record route" };

	for (int fill = PKT_IPOPT_NOP; fill <= PKT_IPOPT_RR; fill++) {
		for (int opts = 4; opts <= 40; opts += 4) {
			struct pkt_spec s;

			pkt_spec_default(&s, 4);
			s.ipv4_options_len = opts;
			s.ipv4_options_fill = fill;
			s.hdr.flags = TETHER_F_KEY;
			s.hdr.routing_key = ++key;
			snprintf(name, sizeof(name), "IPv4 with %d bytes of %s options", opts, fills[fill]);
			size_t n = build(name, &s, in);

			run(fx, in, n, &delta);
			expect_stats(name, &delta, &(struct tether_stats){ .key_new = 1 });
			expect_forwarded(fx, name, in, n,
					 fixture_model_pick(fx, FIXTURE_F1, tether_hash_key(FIXTURE_F1, key)));
		}
	}

	/* The maximum 40 bytes of options, by flow. */
	for (int family = 4; family <= 6; family += 2) {
		struct pkt_spec s;

		pkt_spec_default(&s, family);
		if (family == 4)
			s.ipv4_options_len = 40;
		else
			s.ipv6_ext_count = MAX_IPV6_EXT_HDRS_TEST;
		memcpy(s.ipv6_ext, long_chain, sizeof(long_chain));
		for (__u16 port = 40000; port < 40008; port++) {
			s.src_port = port;
			snprintf(name, sizeof(name), "IPv%d with %s, flow from port %u", family,
				 family == 4 ? "40 bytes of options" : "4 extension headers", port);
			size_t n = build(name, &s, in);

			run(fx, in, n, &delta);
			expect_stats(name, &delta, &(struct tether_stats){ .flow_pick = 1 });
			expect_forwarded(fx, name, in, n,
					 fixture_model_pick(fx, FIXTURE_F1, fixture_flow_hash(family, port)));
		}
	}

	/* Every shape of the truncation test, whole and with Ethernet padding
	 * (0xee bytes after the IP packet), and IPv4 without a UDP checksum. */
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		for (int variant = 0; variant < 3; variant++) {
			struct pkt_spec s;

			if (variant == 2 && shapes[i].family != 4)
				continue;
			spec_of_shape(&shapes[i], &s);
			s.hdr.routing_key = ++key;
			if (variant == 1)
				s.trailer_len = 18;
			if (variant == 2)
				s.udp_csum_zero = 1;
			snprintf(name, sizeof(name), "%s%s", shapes[i].name,
				 variant == 1 ? " with Ethernet padding" :
				 variant == 2 ? " without UDP checksum" : "");
			size_t n = build(name, &s, in);

			run(fx, in, n, &delta);
			expect_stats(name, &delta, &(struct tether_stats){ .key_new = 1 });
			expect_forwarded(fx, name, in, n,
					 fixture_model_pick(fx, FIXTURE_F1, tether_hash_key(FIXTURE_F1, key)));
			if (variant == 2)
				CHECK(pkt_get16(res.frame + res.len - s.trailer_len - s.payload_len -
					    TETHER_HDR_LEN - 2) == 0,
				      name, "an IPv4 UDP checksum of 0 (not used) was filled in");
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_cmocka_setup, fixture_cmocka_teardown)
		T(test_shorter_than_ethernet_refused),
		T(test_every_truncation_is_malformed),
		T(test_bad_fields_are_malformed),
		T(test_fragments),
		T(test_not_for_a_service_passes_untouched),
		T(test_udp_to_vip_port_zero_passes),
		T(test_udp_header_outside_ip_packet_is_malformed),
		T(test_ipv6_to_v4mapped_vip_is_not_the_ipv4_service),
		T(test_overlong_ipv6_chain_to_vip_is_malformed),
		T(test_boundaries_route_normally),
	};

	fixture_enter_netns();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
