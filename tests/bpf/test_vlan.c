// SPDX-License-Identifier: MIT
/* VLAN tagging on the way to a backend (issue 12), through the real XDP
 * program and BPF_PROG_TEST_RUN: a routed frame leaves with the backend's own
 * tagging, whatever tags the client's segment put on it -- no tag for a
 * backend without a VLAN, one 802.1Q tag (TPID 0x8100, PCP and DEI 0) with
 * the backend's VID for one on a trunk.
 *
 * Every combination of
 *   ingress tags   none | 802.1Q | 802.1ad | 802.1ad outer + 802.1Q inner |
 *                  802.1Q + 802.1Q (tags carry PCP and DEI bits)
 *   backend VLAN   none | 100 (the same VID as the client's outer tag, so an
 *                  in-place rewrite that forgot the PCP or the TPID shows)
 *   family         IPv4 | IPv6
 *   egress         XDP_REDIRECT (backend 2, on tx0) | XDP_TX (backend 1, on
 *                  lo, the ingress)
 * runs as its own cmocka test on a fresh fixture (tests/lib/fixture.h) and
 * sends two datagrams: a TOKEN of the backend's container (token_hit) and a
 * KEY whose affinity names it (key_hit, the case). For each, the
 * verdict, every counter's delta, the container's packet and byte counters
 * (the bytes that left), and every byte of the frame out are checked; the
 * expected frame is built from scratch by pktgen from the request's spec
 * with the backend's addresses and tagging (its checksums computed by
 * pktgen), never derived from the program's output.
 *
 * Then the edges: VID 4094 (all twelve bits), the slow path's frame keeps the
 * client's tags (the host stack needs them to find the VLAN interface), and
 * the data plane library refuses VID 4095 and above.
 *
 * Run one case or a group with a cmocka filter pattern as the first argument,
 * e.g. `test_vlan '*802.1ad*vlan 100*'`. */
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

#include "dataplane/dataplane.h"
#include "fixture.h"
#include "pktgen.h"
#include "tether_xdp.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TPID_8021Q 0x8100
#define TPID_8021AD 0x88a8
#define CLIENT_OUTER_TCI 0xa064 /* PCP 5, VID 100 */
#define CLIENT_INNER_TCI 0x30c8 /* PCP 1, DEI, VID 200 */
#define BACKEND_VID 100

enum ingress {
	IN_NONE,
	IN_Q,    /* one 802.1Q tag */
	IN_AD,   /* one 802.1ad tag */
	IN_AD_Q, /* 802.1ad outer, 802.1Q inner (QinQ) */
	IN_Q_Q,  /* two 802.1Q tags */
};

static const char *const ingress_names[] = {
	[IN_NONE] = "untagged", [IN_Q] = "802.1Q", [IN_AD] = "802.1ad",
	[IN_AD_Q] = "802.1ad+802.1Q", [IN_Q_Q] = "802.1Q+802.1Q",
};

struct vlan_case {
	int family;
	enum ingress ingress;
	__u16 backend_vid; /* 0: untagged */
	int verdict;       /* XDP_TX: backend 1 (lo); XDP_REDIRECT: backend 2 (tx0) */
	char label[128];
};

#define FAMILIES 2
#define INGRESSES 5
#define VIDS 2
#define EGRESSES 2
static struct vlan_case cases[FAMILIES * INGRESSES * VIDS * EGRESSES];

static __u8 lo_mac[6], tx0_mac[6];

/* ---- frames --------------------------------------------------------------- */

static void client_tags(struct pkt_spec *s, enum ingress in)
{
	static const struct {
		int count;
		__u16 tpid[2];
	} layouts[] = {
		[IN_NONE] = { 0, { 0, 0 } },
		[IN_Q] = { 1, { TPID_8021Q, 0 } },
		[IN_AD] = { 1, { TPID_8021AD, 0 } },
		[IN_AD_Q] = { 2, { TPID_8021AD, TPID_8021Q } },
		[IN_Q_Q] = { 2, { TPID_8021Q, TPID_8021Q } },
	};

	s->vlan_count = layouts[in].count;
	s->vlan_tpid[0] = layouts[in].tpid[0];
	s->vlan_tpid[1] = layouts[in].tpid[1];
	s->vlan_tci[0] = CLIENT_OUTER_TCI;
	s->vlan_tci[1] = CLIENT_INNER_TCI;
}

static void request_spec(struct pkt_spec *s, int family, enum ingress in)
{
	pkt_spec_default(s, family);
	client_tags(s, in);
	s->tos = 0xb8; /* DSCP EF: priority that crosses segments, untouched */
	s->payload_len = 37;
	s->payload_seed = 0x3c;
	s->hdr.request_id = 0xfeedface12345678ULL;
}

/* The frame the backend must receive for the request of spec `in`, built
 * from scratch: its own addresses and tagging, STAMPED, the token. */
static size_t expected_frame(const struct pkt_spec *in, const __u8 dst[6], const __u8 src[6],
			     __u16 vid, const struct tether_token *token, __u8 *out, size_t cap)
{
	struct pkt_spec s = *in;

	memcpy(s.dst_mac, dst, 6);
	memcpy(s.src_mac, src, 6);
	s.qinq = 0;
	memset(s.vlan_tpid, 0, sizeof(s.vlan_tpid));
	s.vlan_count = vid ? 1 : 0;
	s.vlan_tpid[0] = vid ? TPID_8021Q : 0;
	s.vlan_tci[0] = vid; /* PCP 0, DEI 0 */
	s.vlan_tci[1] = 0;
	s.hdr.flags |= TETHER_F_STAMPED;
	memcpy(s.hdr.token, token, 16);
	return pkt_build(&s, out, cap);
}

/* ---- one datagram ----------------------------------------------------------- */

struct expect {
	const char *step;
	int verdict;
	struct tether_stats counters; /* the delta: these +1, every other 0 */
	__u32 slot;
	const __u8 *frame; /* NULL: the verdict and counters only */
	size_t len;
};

static __u8 frame_in[HARNESS_FRAME_MAX], frame_want[HARNESS_FRAME_MAX];
static struct xdp_result result;

static void send_and_check(struct fixture *fx, const char *label, const struct pkt_spec *s,
			   const struct expect *e)
{
	struct container_counters before, after;
	struct tether_stats delta;
	char name[200], diff[512];
	size_t len = pkt_build(s, frame_in, sizeof(frame_in));

	snprintf(name, sizeof(name), "%s: %s", label, e->step);
	if (!len)
		fail_msg("[%s] pkt_build failed", name);
	assert_int_equal(container_stats_read(&fx->dp, e->slot, &before), 0);
	fixture_run(fx, frame_in, len, &result, &delta);
	assert_int_equal(container_stats_read(&fx->dp, e->slot, &after), 0);

	if (result.verdict != e->verdict)
		fail_msg("[%s] verdict %s, want %s", name, xdp_verdict_name(result.verdict),
			 xdp_verdict_name(e->verdict));
	if (stats_diff(&delta, &e->counters, diff, sizeof(diff)))
		fail_msg("[%s] counter deltas wrong:%s", name, diff);
	if (!e->frame)
		return;
	fixture_expect_output(name, "the frame out", &result, e->frame, e->len);

	/* Judged again by pktgen's own parser and checksum code. */
	struct pkt_view v;

	if (pkt_parse(result.frame, result.len, &v))
		fail_msg("[%s] the frame out does not parse", name);
	if (!pkt_udp_csum_valid(result.frame, result.len) ||
	    (v.family == 4 && !pkt_ipv4_csum_valid(result.frame, result.len)))
		fail_msg("[%s] a checksum of the frame out is wrong", name);

	int routed = e->verdict == XDP_TX || e->verdict == XDP_REDIRECT;

	if (after.packets - before.packets != (routed ? 1u : 0u) ||
	    after.bytes - before.bytes != (routed ? e->len : 0))
		fail_msg("[%s] slot %u counted %llu packets, %llu bytes; want %d, %zu", name, e->slot,
			 (unsigned long long)(after.packets - before.packets),
			 (unsigned long long)(after.bytes - before.bytes), routed,
			 routed ? e->len : (size_t)0);
}

/* ---- the matrix ------------------------------------------------------------- */

static void write_affinity(struct fixture *fx, __u64 key, __u32 slot)
{
	struct container_record record;
	struct affinity_key k = { .function_id = FIXTURE_F1, .routing_key = key };

	assert_int_equal(container_get(&fx->dp, slot, &record), 0);

	struct affinity_value v = { .slot = slot, .generation = record.generation };

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(fx->dp.skel->maps.affinity), &k, &v,
					     BPF_ANY), 0);
}

struct vlan_test {
	struct fixture fx;
	const struct vlan_case *c; /* NULL for the edges */
};

static void run_case(void **state)
{
	struct vlan_test *t = *state;
	struct fixture *fx = &t->fx;
	const struct vlan_case *c = t->c;
	int local = c->verdict == XDP_TX;
	__u32 backend = local ? FIXTURE_BACKEND_LOCAL : FIXTURE_BACKEND_REMOTE;
	__u32 slot = local ? FIXTURE_F1_FIRST_SLOT : FIXTURE_F1_FIRST_SLOT + 2;
	const __u8 *dst = local ? fixture_local_mac : fixture_remote_mac;
	const __u8 *src = local ? lo_mac : tx0_mac;
	struct pkt_spec s;
	struct expect e = { .verdict = c->verdict, .slot = slot, .frame = frame_want };

	assert_int_equal(fixture_backend_of(slot), backend);
	fixture_set_backend_vlan(fx, backend, c->backend_vid);

	/* A token of the backend's container. */
	request_spec(&s, c->family, c->ingress);
	s.hdr.flags = TETHER_F_TOKEN;
	memcpy(s.hdr.token, &fx->tokens[slot], 16);
	e.step = "token";
	e.counters = (struct tether_stats){ .token_hit = 1 };
	e.len = expected_frame(&s, dst, src, c->backend_vid, &fx->tokens[slot], frame_want,
			       sizeof(frame_want));
	assert_true(e.len > 0);
	send_and_check(fx, c->label, &s, &e);

	/* A key whose affinity names it: the key_hit. */
	request_spec(&s, c->family, c->ingress);
	s.hdr.flags = TETHER_F_KEY;
	s.hdr.routing_key = 0x1200 + (__u64)(c - cases);
	s.hdr.request_id++;
	write_affinity(fx, s.hdr.routing_key, slot);
	e.step = "key with an affinity";
	e.counters = (struct tether_stats){ .key_hit = 1 };
	e.len = expected_frame(&s, dst, src, c->backend_vid, &fx->tokens[slot], frame_want,
			       sizeof(frame_want));
	assert_true(e.len > 0);
	send_and_check(fx, c->label, &s, &e);
}

/* ---- the edges ---------------------------------------------------------------- */

/* VID 4094, the largest: all twelve bits, from two tags and from one. */
static void test_vid_4094(void **state)
{
	struct fixture *fx = &((struct vlan_test *)*state)->fx;
	__u32 slot = FIXTURE_F1_FIRST_SLOT + 3; /* backend 2, tx0 */
	struct pkt_spec s;
	struct expect e = { .verdict = XDP_REDIRECT, .slot = slot, .frame = frame_want,
			    .counters = { .token_hit = 1 } };

	fixture_set_backend_vlan(fx, FIXTURE_BACKEND_REMOTE, TETHER_VLAN_MAX);
	for (enum ingress in = IN_NONE; in <= IN_AD_Q; in++) {
		request_spec(&s, 4, in);
		s.vlan_tci[0] = 0xffff; /* PCP 7, DEI, VID 4095 in: all ones */
		s.hdr.flags = TETHER_F_TOKEN;
		memcpy(s.hdr.token, &fx->tokens[slot], 16);
		e.step = ingress_names[in];
		e.len = expected_frame(&s, fixture_remote_mac, tx0_mac, TETHER_VLAN_MAX,
				       &fx->tokens[slot], frame_want, sizeof(frame_want));
		send_and_check(fx, "VID 4094", &s, &e);
	}
}

/* No warm container: the request goes up the host stack as it came, its tags
 * included (the stack delivers it to the VLAN interface that holds the
 * router's address), whatever the backends' VLANs are. */
static void test_slow_path_keeps_client_tags(void **state)
{
	struct fixture *fx = &((struct vlan_test *)*state)->fx;
	struct pkt_spec s, want;

	fixture_set_backend_vlan(fx, FIXTURE_BACKEND_LOCAL, 7);
	fixture_set_backend_vlan(fx, FIXTURE_BACKEND_REMOTE, BACKEND_VID);
	for (enum ingress in = IN_NONE; in <= IN_Q_Q; in++) {
		request_spec(&s, 6, in);
		s.hdr.function_id = FIXTURE_F_EMPTY;
		want = s;
		want.hdr.status = TETHER_STATUS_NO_CAPACITY;

		struct expect e = { .step = ingress_names[in], .verdict = XDP_PASS,
				    .counters = { .no_capacity = 1 }, .slot = 0,
				    .frame = frame_want };

		e.len = pkt_build(&want, frame_want, sizeof(frame_want));
		send_and_check(fx, "slow path", &s, &e);
	}
}

/* 0 and 1..4094 are VLANs; 4095 and above are refused and change nothing. */
static void test_library_refuses_bad_vid(void **state)
{
	struct fixture *fx = &((struct vlan_test *)*state)->fx;
	struct backend_record record, now;

	assert_int_equal(backend_get(&fx->dp, FIXTURE_BACKEND_REMOTE, &record), 0);
	assert_int_equal(record.vlan, 0);
	for (unsigned vid = TETHER_VLAN_MAX + 1; vid <= 0xffff; vid += 0x1000 - 1) {
		record.vlan = (__u16)vid;
		assert_int_equal(backend_set(&fx->dp, FIXTURE_BACKEND_REMOTE, &record), -EINVAL);
		assert_int_equal(backend_get(&fx->dp, FIXTURE_BACKEND_REMOTE, &now), 0);
		assert_int_equal(now.vlan, 0);
	}
	record.vlan = TETHER_VLAN_MAX;
	assert_int_equal(backend_set(&fx->dp, FIXTURE_BACKEND_REMOTE, &record), 0);
	assert_int_equal(backend_get(&fx->dp, FIXTURE_BACKEND_REMOTE, &now), 0);
	assert_int_equal(now.vlan, TETHER_VLAN_MAX);
}

/* ---- cmocka --------------------------------------------------------------- */

static int setup(void **state)
{
	struct vlan_test *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->c = *state;
	fixture_setup(&t->fx);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct vlan_test *t = *state;

	fixture_teardown(&t->fx);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	static struct CMUnitTest tests[ARRAY_SIZE(cases) + 3];
	size_t n = 0;

	for (int f = 0; f < FAMILIES; f++)
		for (int in = 0; in < INGRESSES; in++)
			for (int v = 0; v < VIDS; v++)
				for (int eg = 0; eg < EGRESSES; eg++) {
					struct vlan_case *c = &cases[n];

					c->family = f ? 6 : 4;
					c->ingress = (enum ingress)in;
					c->backend_vid = v ? BACKEND_VID : 0;
					c->verdict = eg ? XDP_TX : XDP_REDIRECT;
					if (c->backend_vid)
						snprintf(c->label, sizeof(c->label),
							 "IPv%d | in: %s | backend vlan %u | %s",
							 c->family, ingress_names[in], c->backend_vid,
							 xdp_verdict_name(c->verdict));
					else
						snprintf(c->label, sizeof(c->label),
							 "IPv%d | in: %s | backend untagged | %s",
							 c->family, ingress_names[in],
							 xdp_verdict_name(c->verdict));
					tests[n] = (struct CMUnitTest){
						.name = c->label,
						.test_func = run_case,
						.setup_func = setup,
						.teardown_func = teardown,
						.initial_state = c,
					};
					n++;
				}
	tests[n++] = (struct CMUnitTest){ "VID 4094", test_vid_4094, setup, teardown, NULL };
	tests[n++] = (struct CMUnitTest){ "the slow path keeps the client's tags",
					  test_slow_path_keeps_client_tags, setup, teardown, NULL };
	tests[n++] = (struct CMUnitTest){ "the library refuses VID 4095 and above",
					  test_library_refuses_bad_vid, setup, teardown, NULL };
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);

	fixture_enter_netns();
	if (interface_mac("lo", lo_mac) || interface_mac("tx0", tx0_mac)) {
		fprintf(stderr, "test_vlan: cannot read the MACs of lo and tx0\n");
		return 1;
	}
	return _cmocka_run_group_tests("test_vlan", tests, n, NULL, NULL);
}
