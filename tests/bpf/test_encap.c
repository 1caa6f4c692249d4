// SPDX-License-Identifier: MIT
/* Routed backends (issue 12), through the real XDP program, the kernel's FIB
 * and BPF_PROG_TEST_RUN: a request for a container on a VXLAN or IPIP backend
 * leaves wrapped in outer headers for the next hop the FIB gives.
 *
 * The world: the fixture's (tests/lib/fixture.h), its backend 2 turned into
 * a routed backend two hops away: tx0 holds 10.99.0.1/24 and fd99::1/64 (the
 * --encap-source addresses), the next hop 10.99.0.2 / fd99::2 is a permanent
 * neighbour (NEXT_HOP_MAC), and 10.200.0.0/16 and fd00:200::/32 are routed
 * through it. Forwarding is on (the FIB lookup is a forwarding lookup from
 * the ingress, lo).
 *
 * Every combination of mode (VXLAN, IPIP) x outer family x inner family, with
 * ingress tagging, IPv4 options and IPv6 extension headers on the inner
 * packet, is checked byte for byte against a frame built here from scratch:
 * the inner packet by pktgen (stamped as the program must stamp it), the outer
 * headers by hand, their checksums summed over the bytes (RFC 1071) by this
 * file, never by the program's incremental arithmetic. Then the edges: the
 * MTU boundary (one byte under, exactly at, one over: TOO_BIG to the slow
 * path), no route and no neighbour (to the slow path, untouched but for the
 * status byte), no --encap-source for the family, and an IPv4 request without
 * a UDP checksum for VXLAN over IPv6 (the slow path). */
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

#include "control/protocol.h"
#include "dataplane/dataplane.h"
#include "fixture.h"
#include "pktgen.h"
#include "tether/hash.h"
#include "tether_xdp.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SLOT (FIXTURE_F1_FIRST_SLOT + 2) /* on backend 2 */
#define VNI 0x123456
#define BACKEND4 "10.200.0.5"
#define BACKEND6 "fd00:200::5"
#define SOURCE4 "10.99.0.1"
#define SOURCE6 "fd99::1"
#define MTU 1280 /* IPv6's minimum: the interface keeps its IPv6 addresses */
#define MTU_TEXT "1280"

static const __u8 NEXT_HOP_MAC[6] = { 0x02, 0x00, 0x00, 0x00, 0x99, 0x02 };
static const __u8 INNER_MAC[6] = { 0x02, 0x54, 0x45, 0x12, 0x34, 0x56 };
static __u8 tx0_mac[6];
static __u32 tx0_ifindex;

static void sh(const char *command)
{
	if (system(command))
		fail_msg("'%s' failed", command);
}

/* ---- checksums, from the bytes ------------------------------------------- */

static __u32 sum_bytes(__u32 sum, const __u8 *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (__u32)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (__u32)p[len - 1] << 8;
	return sum;
}

static __u16 fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

static void put16(__u8 *p, __u16 v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)v;
}

/* ---- the world ------------------------------------------------------------ */

static void routed_world(struct fixture *fx, int encap, int outer_family)
{
	struct backend_record record;
	struct encap_config sources = {};
	__u8 addr[16];

	sh("sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1");
	sh("ip addr replace 10.99.0.1/24 dev tx0 && ip -6 addr replace fd99::1/64 dev tx0 nodad");
	sh("ip neigh replace 10.99.0.2 lladdr 02:00:00:00:99:02 dev tx0 nud permanent");
	sh("ip -6 neigh replace fd99::2 lladdr 02:00:00:00:99:02 dev tx0 nud permanent");
	sh("ip route replace 10.200.0.0/16 via 10.99.0.2 dev tx0");
	sh("ip -6 route replace fd00:200::/32 via fd99::2 dev tx0");
	inet_pton(AF_INET, SOURCE4, &sources.source4);
	inet_pton(AF_INET6, SOURCE6, sources.source6);
	assert_int_equal(encap_config_set(&fx->dp, &sources), 0);

	assert_int_equal(backend_get(&fx->dp, FIXTURE_BACKEND_REMOTE, &record), 0);
	if (outer_family == 4)
		pkt_v4mapped(addr, BACKEND4);
	else
		pkt_addr6(addr, BACKEND6);
	memcpy(record.addr, addr, 16);
	record.encap = (__u8)encap;
	record.ifindex = 0;
	memcpy(record.mac, INNER_MAC, 6);
	memset(record.src_mac, 0, 6);
	backend_set_vni(&record, encap == BACKEND_VXLAN ? VNI : 0);
	assert_int_equal(backend_set(&fx->dp, FIXTURE_BACKEND_REMOTE, &record), 0);
}

/* ---- the frame the next hop must receive ------------------------------------ */

enum shape { PLAIN, TAGGED, QINQ, OPTIONS };

static void request_spec(struct pkt_spec *s, int family, enum shape shape, struct fixture *fx)
{
	pkt_spec_default(s, family);
	s->tos = 0xb8; /* DSCP EF: carried to the outer header */
	s->payload_len = 37;
	s->payload_seed = 0x5a;
	s->hdr.request_id = 0xfeedface12345678ULL;
	s->hdr.flags = TETHER_F_TOKEN;
	memcpy(s->hdr.token, &fx->tokens[SLOT], 16);
	if (shape == TAGGED) {
		s->vlan_count = 1;
		s->vlan_tci[0] = 0xa064;
	} else if (shape == QINQ) {
		s->vlan_count = 2;
		s->qinq = 1;
		s->vlan_tci[0] = 0x0064;
		s->vlan_tci[1] = 0x00c8;
	} else if (shape == OPTIONS && family == 4) {
		s->ipv4_options_len = 12;
	} else if (shape == OPTIONS) {
		s->ipv6_ext_count = 2;
		s->ipv6_ext[0] = (struct pkt_ipv6_ext){ .type = 0, .len = 0 };
		s->ipv6_ext[1] = (struct pkt_ipv6_ext){ .type = 60, .len = 1 };
	}
}

/* The request's IP packet as the backend must get it: stamped, untagged. */
static size_t inner_packet(const struct pkt_spec *in, struct fixture *fx, __u8 *out, size_t cap)
{
	__u8 frame[HARNESS_FRAME_MAX];
	struct pkt_spec s = *in;

	s.vlan_count = 0;
	s.qinq = 0;
	memset(s.vlan_tpid, 0, sizeof(s.vlan_tpid));
	s.hdr.flags |= TETHER_F_STAMPED;
	memcpy(s.hdr.token, &fx->tokens[SLOT], 16);

	size_t len = pkt_build(&s, frame, sizeof(frame));

	assert_true(len > 14 && len - 14 <= cap);
	memcpy(out, frame + 14, len - 14);
	return len - 14;
}

/* What the outer headers' entropy comes from: the key, else the flow. */
static __u64 request_hash(const struct pkt_spec *s)
{
	if (s->hdr.flags & TETHER_F_KEY)
		return tether_spread_key(s->hdr.function_id, s->hdr.routing_key);
	return fixture_flow_spread(s->family, s->src_port);
}

/* Outer Ethernet, outer IP, [UDP, VXLAN, inner Ethernet], the inner packet. */
static size_t expected_frame(const struct pkt_spec *s, struct fixture *fx, int encap,
			     int outer_family, __u8 *out)
{
	__u8 inner[HARNESS_FRAME_MAX];
	size_t inner_len = inner_packet(s, fx, inner, sizeof(inner));
	__u64 hash = request_hash(s);
	__u16 sport = 0xc000 | (__u16)((hash >> 48) & 0x3fff);
	__u32 flow_label = (__u32)(hash >> 12) & 0xfffff;
	int vxlan = encap == BACKEND_VXLAN;
	size_t tunnel = vxlan ? 8 + 8 + 14 : 0;
	size_t payload = tunnel + inner_len;
	size_t ip_len = outer_family == 4 ? 20 : 40;
	__u8 proto = vxlan ? 17 : s->family == 4 ? 4 : 41;
	__u8 *p = out;

	memcpy(p, NEXT_HOP_MAC, 6);
	memcpy(p + 6, tx0_mac, 6);
	put16(p + 12, outer_family == 4 ? 0x0800 : 0x86dd);
	p += 14;

	__u8 *ip = p;

	memset(ip, 0, ip_len);
	if (outer_family == 4) {
		ip[0] = 0x45;
		ip[1] = s->tos;
		put16(ip + 2, (__u16)(20 + payload));
		put16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = proto;
		inet_pton(AF_INET, SOURCE4, ip + 12);
		inet_pton(AF_INET, BACKEND4, ip + 16);
		put16(ip + 10, (__u16)~fold(sum_bytes(0, ip, 20)));
	} else {
		__u32 first = 6u << 28 | (__u32)s->tos << 20 | flow_label;

		ip[0] = (__u8)(first >> 24);
		ip[1] = (__u8)(first >> 16);
		ip[2] = (__u8)(first >> 8);
		ip[3] = (__u8)first;
		put16(ip + 4, (__u16)payload);
		ip[6] = proto;
		ip[7] = 64;
		inet_pton(AF_INET6, SOURCE6, ip + 8);
		inet_pton(AF_INET6, BACKEND6, ip + 24);
	}
	p += ip_len;

	__u8 *udp = p;

	if (vxlan) {
		put16(udp, sport);
		put16(udp + 2, 4789);
		put16(udp + 4, (__u16)payload);
		put16(udp + 6, 0);
		memset(udp + 8, 0, 8);
		udp[8] = 0x08;
		udp[12] = (VNI >> 16) & 0xff;
		udp[13] = (VNI >> 8) & 0xff;
		udp[14] = VNI & 0xff;
		memcpy(udp + 16, INNER_MAC, 6);
		memcpy(udp + 22, tx0_mac, 6);
		put16(udp + 28, s->family == 4 ? 0x0800 : 0x86dd);
		p += tunnel;
	}
	memcpy(p, inner, inner_len);
	p += inner_len;
	if (vxlan && outer_family == 6) {
		/* RFC 8200 pseudo header, then the whole UDP datagram. */
		__u32 sum = sum_bytes(0, ip + 8, 32);
		__u16 check;

		sum += (__u32)payload + 17;
		sum = sum_bytes(sum, udp, payload);
		check = (__u16)~fold(sum);
		put16(udp + 6, check ? check : 0xffff);
	}
	return (size_t)(p - out);
}

/* ---- running ---------------------------------------------------------------- */

static __u8 frame_in[HARNESS_FRAME_MAX], frame_want[HARNESS_FRAME_MAX];
static struct xdp_result result;

static void run_frame_and_check(struct fixture *fx, const char *name, const __u8 *frame,
				size_t len, int verdict, const struct tether_stats *counters,
				const __u8 *want, size_t want_len)
{
	struct tether_stats delta;
	char diff[512];

	fixture_run(fx, frame, len, &result, &delta);
	if (result.verdict != verdict)
		fail_msg("[%s] verdict %s, want %s", name, xdp_verdict_name(result.verdict),
			 xdp_verdict_name(verdict));
	if (stats_diff(&delta, counters, diff, sizeof(diff)))
		fail_msg("[%s] counter deltas wrong:%s", name, diff);
	if (want)
		fixture_expect_output(name, "the frame out", &result, want, want_len);
}

static void run_and_check(struct fixture *fx, const char *name, const struct pkt_spec *s,
			  int verdict, const struct tether_stats *counters, const __u8 *want,
			  size_t want_len)
{
	size_t len = pkt_build(s, frame_in, sizeof(frame_in));

	assert_true(len > 0);
	run_frame_and_check(fx, name, frame_in, len, verdict, counters, want, want_len);
}

/* The request as the slow path must get it: unstamped, the reason in its
 * status byte (pktgen fixes the UDP checksum). */
static size_t slow_path_frame(const struct pkt_spec *s, __u8 status, __u8 *out)
{
	struct pkt_spec want = *s;

	want.hdr.status = status;
	return pkt_build(&want, out, HARNESS_FRAME_MAX);
}

struct encap_case {
	int encap, outer, inner;
	enum shape shape;
	char label[96];
};

static const char *const shape_names[] = {
	[PLAIN] = "plain", [TAGGED] = "802.1Q in", [QINQ] = "QinQ in",
	[OPTIONS] = "IPv4 options / IPv6 extension headers",
};

#define MODES 2
#define FAMILIES 2
#define SHAPES 4
static struct encap_case cases[MODES * FAMILIES * FAMILIES * SHAPES];

struct encap_test {
	struct fixture fx;
	const struct encap_case *c; /* NULL for the edges */
};

static void run_case(void **state)
{
	struct encap_test *t = *state;
	const struct encap_case *c = t->c;
	struct pkt_spec s;
	struct tether_stats counters = { .token_hit = 1 };

	routed_world(&t->fx, c->encap, c->outer);
	if (c->encap == BACKEND_VXLAN)
		counters.encap_vxlan = 1;
	else
		counters.encap_ipip = 1;
	request_spec(&s, c->inner, c->shape, &t->fx);

	size_t len = expected_frame(&s, &t->fx, c->encap, c->outer, frame_want);

	run_and_check(&t->fx, c->label, &s, XDP_REDIRECT, &counters, frame_want, len);

	/* The container counted the frame as it left. */
	struct container_counters stats;

	assert_int_equal(container_stats_read(&t->fx.dp, SLOT, &stats), 0);
	assert_int_equal(stats.packets, 1);
	assert_int_equal(stats.bytes, len);

	/* The FIB's answer was kept for the next packets (on the CPU it ran). */
	int cpus = libbpf_num_possible_cpus();
	struct nexthop_entry entries[cpus];
	__u32 id = FIXTURE_BACKEND_REMOTE;
	int kept = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(t->fx.dp.skel->maps.nexthop_cache), &id,
					     entries), 0);
	for (int cpu = 0; cpu < cpus; cpu++)
		if (entries[cpu].expires_ns && entries[cpu].ifindex == tx0_ifindex &&
		    entries[cpu].mtu == 1500 && !memcmp(entries[cpu].dmac, NEXT_HOP_MAC, 6))
			kept++;
	if (kept != 1)
		fail_msg("[%s] the next hop was kept on %d CPUs, want 1", c->label, kept);
}

/* ---- the edges --------------------------------------------------------------- */

/* The outer packet exactly at the egress interface's MTU leaves; one byte
 * over goes to the slow path with TOO_BIG, untouched but for its status. */
static void mtu_boundary(struct fixture *fx, int encap, int outer)
{
	char name[96];
	struct pkt_spec s;

	routed_world(fx, encap, outer);
	sh("ip link set tx0 mtu " MTU_TEXT);
	for (int over = -1; over <= 1; over++) {
		request_spec(&s, 4, PLAIN, fx);
		/* Outer IP length = outer header + tunnel + inner packet. */
		size_t fixed = (outer == 4 ? 20 : 40) + (encap == BACKEND_VXLAN ? 30 : 0) + 20 + 8 +
			       TETHER_HDR_LEN;

		s.payload_len = (size_t)(MTU + over) - fixed;
		snprintf(name, sizeof(name), "%s over IPv%d, MTU %+d", proto_encap_name(encap), outer,
			 over);
		if (over <= 0) {
			struct tether_stats counters = { .token_hit = 1 };
			size_t len = expected_frame(&s, fx, encap, outer, frame_want);

			if (encap == BACKEND_VXLAN)
				counters.encap_vxlan = 1;
			else
				counters.encap_ipip = 1;
			assert_int_equal(len, 14 + MTU + over);
			run_and_check(fx, name, &s, XDP_REDIRECT, &counters, frame_want, len);
		} else {
			struct tether_stats counters = { .token_hit = 1, .too_big = 1 };
			size_t len = slow_path_frame(&s, TETHER_STATUS_TOO_BIG, frame_want);

			run_and_check(fx, name, &s, XDP_PASS, &counters, frame_want, len);
		}
	}
}

static void test_mtu_vxlan4(void **state)
{
	mtu_boundary(&((struct encap_test *)*state)->fx, BACKEND_VXLAN, 4);
}

static void test_mtu_ipip6(void **state)
{
	mtu_boundary(&((struct encap_test *)*state)->fx, BACKEND_IPIP, 6);
}

/* ---- the outer headers' entropy ------------------------------------------------ */

/* The VXLAN source port and IPv6 flow label of the outer headers the request
 * leaves with (VXLAN over IPv6 carries both). */
static void outer_entropy(struct fixture *fx, const struct pkt_spec *s, __u32 *sport,
			  __u32 *label)
{
	size_t len = pkt_build(s, frame_in, sizeof(frame_in));

	struct tether_stats delta;

	fixture_run(fx, frame_in, len, &result, &delta);
	if (result.verdict != XDP_REDIRECT || result.len < 14 + 40 + 8)
		fail_msg("a routed request: verdict %s, %u bytes out",
			 xdp_verdict_name(result.verdict), result.len);
	const __u8 *ip6 = result.frame + 14, *udp = ip6 + 40;

	*label = ((__u32)ip6[1] & 0x0f) << 16 | (__u32)ip6[2] << 8 | ip6[3];
	*sport = (__u32)udp[0] << 8 | udp[1];
}

static int distinct(const __u32 *values, int n)
{
	int count = 0;

	for (int i = 0; i < n; i++) {
		int seen = 0;

		for (int j = 0; j < i && !seen; j++)
			seen = values[j] == values[i];
		count += !seen;
	}
	return count;
}

/* ECMP in the fabric spreads what the outer headers tell apart: flows
 * (source ports) get different source ports and labels, and so do keys,
 * while one key keeps one path from any source port. A keyed request's
 * headers byte-exact too (run_case has flows only). */
static void test_entropy(void **state)
{
	struct fixture *fx = &((struct encap_test *)*state)->fx;
	enum { N = 64 };
	__u32 sports[N], labels[N];
	struct pkt_spec s;

	routed_world(fx, BACKEND_VXLAN, 6);
	for (int i = 0; i < N; i++) {
		request_spec(&s, 4, PLAIN, fx);
		s.src_port = (__u16)(20000 + i);
		outer_entropy(fx, &s, &sports[i], &labels[i]);
		assert_true(sports[i] >= 0xc000);
	}
	/* 14 bits of port: a few collisions among 64 at most, by chance. */
	if (distinct(sports, N) < 60 || distinct(labels, N) < 62)
		fail_msg("64 flows: %d distinct source ports, %d distinct labels",
			 distinct(sports, N), distinct(labels, N));

	for (int i = 0; i < N; i++) {
		request_spec(&s, 4, PLAIN, fx);
		s.hdr.flags |= TETHER_F_KEY;
		s.hdr.routing_key = 7000 + (__u64)i;
		outer_entropy(fx, &s, &sports[i], &labels[i]);
	}
	if (distinct(sports, N) < 60 || distinct(labels, N) < 62)
		fail_msg("64 keys: %d distinct source ports, %d distinct labels",
			 distinct(sports, N), distinct(labels, N));

	for (int i = 0; i < 8; i++) {
		request_spec(&s, 4, PLAIN, fx);
		s.hdr.flags |= TETHER_F_KEY;
		s.hdr.routing_key = 7000;
		s.src_port = (__u16)(30000 + 1111 * i);
		outer_entropy(fx, &s, &sports[i], &labels[i]);
	}
	if (distinct(sports, 8) != 1 || distinct(labels, 8) != 1)
		fail_msg("key 7000 from 8 source ports: %d source ports, %d labels (want 1 and 1)",
			 distinct(sports, 8), distinct(labels, 8));

	struct tether_stats counters = { .token_hit = 1, .encap_vxlan = 1 };
	size_t len = expected_frame(&s, fx, BACKEND_VXLAN, 6, frame_want);

	run_and_check(fx, "VXLAN over IPv6, a keyed request", &s, XDP_REDIRECT, &counters,
		      frame_want, len);
}

/* No route, and a route whose next hop has no neighbour entry: the request
 * goes to the slow path unstamped (NO_CAPACITY: it picks the same container
 * and sends through the kernel, which resolves the neighbour or answers). */
static void test_fib_failures(void **state)
{
	struct fixture *fx = &((struct encap_test *)*state)->fx;
	struct pkt_spec s;
	struct tether_stats no_route = { .token_hit = 1, .no_route = 1, .fib_no_route = 1 };
	struct tether_stats no_neigh = { .token_hit = 1, .fib_no_neigh = 1 };
	size_t len;

	routed_world(fx, BACKEND_VXLAN, 4);
	request_spec(&s, 4, TAGGED, fx);
	sh("ip route del 10.200.0.0/16");
	len = slow_path_frame(&s, TETHER_STATUS_NO_CAPACITY, frame_want);
	run_and_check(fx, "no route", &s, XDP_PASS, &no_route, frame_want, len);

	sh("ip route add unreachable 10.200.0.0/16");
	run_and_check(fx, "unreachable", &s, XDP_PASS, &no_route, frame_want, len);

	sh("ip route replace 10.200.0.0/16 via 10.99.0.3 dev tx0");
	run_and_check(fx, "no neighbour", &s, XDP_PASS, &no_neigh, frame_want, len);

	/* A route change is followed by the next packet. */
	sh("ip neigh replace 10.99.0.3 lladdr 02:00:00:00:99:02 dev tx0 nud permanent");
	struct tether_stats sent = { .token_hit = 1, .encap_vxlan = 1 };

	len = expected_frame(&s, fx, BACKEND_VXLAN, 4, frame_want);
	run_and_check(fx, "neighbour known", &s, XDP_REDIRECT, &sent, frame_want, len);
}

/* A routed backend of a family without an --encap-source: dropped and
 * counted (tetherd refuses to add one; this is the fault's counter). */
static void test_no_source(void **state)
{
	struct fixture *fx = &((struct encap_test *)*state)->fx;
	struct encap_config none = {};
	struct pkt_spec s;
	struct tether_stats failed = { .token_hit = 1, .encap_failed = 1 };

	routed_world(fx, BACKEND_IPIP, 6);
	assert_int_equal(encap_config_set(&fx->dp, &none), 0);
	request_spec(&s, 6, PLAIN, fx);
	run_and_check(fx, "no source", &s, XDP_DROP, &failed, NULL, 0);
}

/* VXLAN over IPv6 needs the outer UDP checksum; an IPv4 request without one
 * of its own gives no cheap sum: the slow path sends it. */
static void test_ipv4_without_checksum_over_ipv6(void **state)
{
	struct fixture *fx = &((struct encap_test *)*state)->fx;
	struct pkt_spec s;
	struct tether_stats slow = { .token_hit = 1, .encap_slow = 1 };

	routed_world(fx, BACKEND_VXLAN, 6);
	request_spec(&s, 4, PLAIN, fx);
	s.udp_csum_zero = 1;

	size_t len = slow_path_frame(&s, TETHER_STATUS_NO_CAPACITY, frame_want);

	run_and_check(fx, "IPv4 without UDP checksum, VXLAN over IPv6", &s, XDP_PASS, &slow,
		      frame_want, len);

	/* Over IPv4 the outer checksum is 0: it goes out at once. */
	struct tether_stats sent = { .token_hit = 1, .encap_vxlan = 1 };

	routed_world(fx, BACKEND_VXLAN, 4);
	len = expected_frame(&s, fx, BACKEND_VXLAN, 4, frame_want);
	run_and_check(fx, "IPv4 without UDP checksum, VXLAN over IPv4", &s, XDP_REDIRECT, &sent,
		      frame_want, len);
}

/* The frame's IP packet made longer than its UDP datagram by the Ethernet
 * trailer's bytes (RFC 768 allows it; the UDP checksum does not cover them). */
static void trailer_into_ip_packet(const struct pkt_spec *s, __u8 *frame)
{
	__u8 *ip = frame + 14;

	if (s->family == 4) {
		put16(ip + 2, (__u16)(((ip[2] << 8) | ip[3]) + s->trailer_len));
		put16(ip + 10, 0);
		put16(ip + 10, (__u16)~fold(sum_bytes(0, ip, (ip[0] & 0x0f) * 4)));
	} else {
		put16(ip + 4, (__u16)(((ip[4] << 8) | ip[5]) + s->trailer_len));
	}
}

/* Bytes after the UDP datagram inside the IP packet are outside the request's
 * own checksum, so it gives no sum of the packet VXLAN over IPv6 carries: the
 * slow path sends it (the outer checksum would be wrong, and the VM's vxlan
 * device would drop the frame without a word). Over IPv4, and for IPIP, no
 * outer checksum covers them: they go out at once. */
static void test_bytes_after_the_datagram(void **state)
{
	struct fixture *fx = &((struct encap_test *)*state)->fx;
	struct tether_stats slow = { .token_hit = 1, .encap_slow = 1 };
	struct tether_stats vxlan = { .token_hit = 1, .encap_vxlan = 1 };
	struct tether_stats ipip = { .token_hit = 1, .encap_ipip = 1 };

	for (int family = 4; family <= 6; family += 2) {
		struct pkt_spec s;
		char name[96];

		request_spec(&s, family, PLAIN, fx);
		s.trailer_len = 6;

		size_t len = pkt_build(&s, frame_in, sizeof(frame_in));
		size_t want_len = slow_path_frame(&s, TETHER_STATUS_NO_CAPACITY, frame_want);

		assert_true(len > 0 && want_len == len);
		trailer_into_ip_packet(&s, frame_in);
		trailer_into_ip_packet(&s, frame_want);

		const struct {
			int encap, outer, verdict;
			const struct tether_stats *counters;
		} routes[] = {
			{ BACKEND_VXLAN, 6, XDP_PASS, &slow },
			{ BACKEND_VXLAN, 4, XDP_REDIRECT, &vxlan },
			{ BACKEND_IPIP, 6, XDP_REDIRECT, &ipip },
		};

		for (size_t r = 0; r < ARRAY_SIZE(routes); r++) {
			routed_world(fx, routes[r].encap, routes[r].outer);
			snprintf(name, sizeof(name), "IPv%d, 6 bytes after the datagram, %s over IPv%d",
				 family, proto_encap_name(routes[r].encap), routes[r].outer);
			/* The slow path's frame is checked; an encapsulated one's
			 * outer headers are the cases' above. */
			run_frame_and_check(fx, name, frame_in, len, routes[r].verdict,
					    routes[r].counters,
					    routes[r].verdict == XDP_PASS ? frame_want : NULL,
					    want_len);
		}
	}
}

/* ---- cmocka --------------------------------------------------------------- */

static int setup(void **state)
{
	struct encap_test *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->c = *state;
	fixture_setup(&t->fx);
	*state = t;
	return 0;
}

/* Each test makes the routes and addresses it needs on tx0 anew. */
static int teardown(void **state)
{
	struct encap_test *t = *state;

	fixture_teardown(&t->fx);
	free(t);
	if (system("ip link set tx0 mtu 1500 && ip addr flush dev tx0 && ip -6 addr flush dev tx0 && "
		   "ip neigh flush dev tx0 && ip -6 neigh flush dev tx0 && "
		   "ip route flush 10.200.0.0/16 2>/dev/null; ip -6 route flush fd00:200::/32 "
		   "2>/dev/null; true"))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct CMUnitTest tests[ARRAY_SIZE(cases) + 8];
	size_t n = 0;

	for (int m = 0; m < MODES; m++)
		for (int o = 0; o < FAMILIES; o++)
			for (int i = 0; i < FAMILIES; i++)
				for (int sh_ = 0; sh_ < SHAPES; sh_++) {
					struct encap_case *c = &cases[n];

					c->encap = m ? BACKEND_IPIP : BACKEND_VXLAN;
					c->outer = o ? 6 : 4;
					c->inner = i ? 6 : 4;
					c->shape = (enum shape)sh_;
					snprintf(c->label, sizeof(c->label), "%s | IPv%d in IPv%d | %s",
						 proto_encap_name(c->encap), c->inner, c->outer,
						 shape_names[sh_]);
					tests[n] = (struct CMUnitTest){ c->label, run_case, setup,
									teardown, c };
					n++;
				}
	tests[n++] = (struct CMUnitTest){ "MTU boundary, VXLAN over IPv4", test_mtu_vxlan4, setup,
					  teardown, NULL };
	tests[n++] = (struct CMUnitTest){ "MTU boundary, IPIP over IPv6", test_mtu_ipip6, setup,
					  teardown, NULL };
	tests[n++] = (struct CMUnitTest){ "outer entropy from the flow, or the key", test_entropy,
					  setup, teardown, NULL };
	tests[n++] = (struct CMUnitTest){ "FIB failures go to the slow path", test_fib_failures,
					  setup, teardown, NULL };
	tests[n++] = (struct CMUnitTest){ "no encap source: dropped, counted", test_no_source,
					  setup, teardown, NULL };
	tests[n++] = (struct CMUnitTest){ "IPv4 without a UDP checksum",
					  test_ipv4_without_checksum_over_ipv6, setup, teardown,
					  NULL };
	tests[n++] = (struct CMUnitTest){ "bytes after the UDP datagram",
					  test_bytes_after_the_datagram, setup, teardown, NULL };
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);

	fixture_enter_netns();
	tx0_ifindex = harness_ifindex("tx0");
	if (interface_mac("tx0", tx0_mac)) {
		fprintf(stderr, "test_encap: cannot read the MAC of tx0\n");
		return 1;
	}
	return _cmocka_run_group_tests("test_encap", tests, n, NULL, NULL);
}
