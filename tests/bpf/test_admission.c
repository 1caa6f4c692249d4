// SPDX-License-Identifier: MIT
/* Admission to the slow path (issue 17), through the real XDP program and
 * BPF_PROG_TEST_RUN (tests/lib/fixture.h's world; FIXTURE_F_EMPTY and the
 * other functions named here have no container, so their requests are for
 * the slow path):
 *
 *   - an answer in place, byte for byte, for every combination of family,
 *     VLAN tags (none, 802.1Q, 802.1ad + 802.1Q, with PCP and DEI bits),
 *     IPv4 options (8 bytes of NOPs, a 40-byte Record Route) or IPv6
 *     extension headers (hop-by-hop + destination options, a routing header)
 *     and payload (none, 1000 bytes): addresses and ports swapped, REPLY and
 *     OVERLOADED, the header echoed, TTL 64, options, extension headers and
 *     payload cut, tags, TOS, flow label and IP id kept. The expected frame
 *     is built from scratch by pktgen (its own checksum code) from the
 *     request's spec; the answer is never longer than the request. Also:
 *     Ethernet padding cut, an IPv4 request without a UDP checksum, and a
 *     STRICT request whose container is gone (OVERLOADED over budget too);
 *   - within budget a request goes up exactly as before (XDP_PASS, the
 *     reason in the status byte), the burst first, then the shedding;
 *   - per function first: a flood of one function takes from the shared
 *     budget only what its own admits, so another function's first request
 *     still goes up; the shared budget caps a flood over many functions;
 *   - routed requests never meet a budget; no budget (the default, or rates
 *     of 0) sheds nothing; the cap on answers drops beyond it;
 *   - refill with the kernel's clock (CLOCK_MONOTONIC, as bpf_ktime_get_ns):
 *     sleeps of a few ms, every bound from clock readings around the runs,
 *     never a timing assumption;
 *   - several CPUs: one bucket for all of them (exhausted on CPU 0, shed on
 *     CPU 1), and two threads pinned to CPUs 0 and 1 hammering one bucket at
 *     once admit exactly its burst (each bucket: a function's, the shared
 *     one, the answers'), with every per-CPU counter matching what that
 *     CPU's thread saw.
 *
 * Run one test or a group with a cmocka filter pattern as the first
 * argument, e.g. `test_admission '*IPv6*'`. Needs two CPUs. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane/dataplane.h"
#include "fixture.h"
#include "pktgen.h"
#include "tether_xdp.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define HOUR_NS (3600 * NS_PER_S)
#define TPID_8021Q 0x8100
#define TPID_8021AD 0x88a8
#define OUTER_TCI 0xa064 /* PCP 5, VID 100 */
#define INNER_TCI 0x30c8 /* PCP 1, DEI, VID 200 */
#define REQUEST_TTL 57   /* not the answer's 64, so the rewrite shows */
#define ANSWER_TTL 64
#define F_FLOOD 999ULL   /* the flooded function: no container */
#define F_COLD 5ULL      /* the other function: its first request */

/* ---- the world ------------------------------------------------------------ */

static __u8 frame_in[HARNESS_FRAME_MAX], frame_want[HARNESS_FRAME_MAX];

static void set_limits(struct fixture *fx, __u32 function_rate, __u32 function_burst,
		       __u32 total_rate, __u32 total_burst, __u32 answer_rate, __u32 answer_burst)
{
	struct admission_limits limits = { function_rate, function_burst, total_rate,
					   total_burst,     answer_rate,    answer_burst };

	assert_int_equal(admission_set(&fx->dp, &limits), 0);
}

/* A bucket whose TAT is an hour ahead: over budget for any rate of at least
 * 1/s and a burst the hour does not cover. */
static void exhaust_function(struct fixture *fx, __u64 function_id)
{
	struct admit_bucket bucket = { .tat_ns = monotonic_ns() + HOUR_NS };

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(fx->dp.skel->maps.admit_functions),
					     &function_id, &bucket, BPF_ANY), 0);
}

static __u64 function_tat(struct fixture *fx, __u64 function_id)
{
	struct admit_bucket bucket;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(fx->dp.skel->maps.admit_functions),
					     &function_id, &bucket), 0);
	return bucket.tat_ns;
}

static void exhaust_shared(struct fixture *fx, __u32 index)
{
	struct admit_shared_bucket bucket = { .tat_ns = monotonic_ns() + HOUR_NS };

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(fx->dp.skel->maps.admit_buckets), &index,
					     &bucket, BPF_ANY), 0);
}

/* A request for the slow path: the function has no container. */
static void request_spec(struct pkt_spec *s, int family, __u64 function_id, __u64 request_id)
{
	pkt_spec_default(s, family);
	s->hdr.function_id = function_id;
	s->hdr.request_id = request_id;
	s->ttl = REQUEST_TTL;
	s->tos = 0xb8;
	s->ipv6_flow_label = 0x5a5a5;
	s->payload_seed = 0x41;
}

/* The answer to the request of spec `in`, from scratch: what the router must
 * send back. */
static size_t expected_answer(const struct pkt_spec *in, __u8 *out, size_t cap)
{
	struct pkt_spec s = *in;

	memcpy(s.src_mac, in->dst_mac, 6);
	memcpy(s.dst_mac, in->src_mac, 6);
	memcpy(s.src_addr, in->dst_addr, 16);
	memcpy(s.dst_addr, in->src_addr, 16);
	s.src_port = in->dst_port;
	s.dst_port = in->src_port;
	s.ttl = ANSWER_TTL;
	s.ipv4_options_len = 0;
	s.ipv6_ext_count = 0;
	s.udp_csum_zero = 0;
	s.payload_len = 0;
	s.trailer_len = 0;
	s.hdr.flags |= TETHER_F_REPLY;
	s.hdr.status = TETHER_STATUS_OVERLOADED;
	return pkt_build(&s, out, cap);
}

/* The request as it must go up: the reason in the status byte. */
static size_t expected_up(const struct pkt_spec *in, __u8 reason, __u8 *out, size_t cap)
{
	struct pkt_spec s = *in;

	s.hdr.status = reason;
	return pkt_build(&s, out, cap);
}

static size_t build(const struct pkt_spec *s)
{
	size_t len = pkt_build(s, frame_in, sizeof(frame_in));

	assert_true(len > 0);
	return len;
}

/* Sends the spec's frame; checks the verdict and every counter's delta. */
static void send_expect(struct fixture *fx, const char *what, const struct pkt_spec *s,
			int verdict, const struct tether_stats *counters, struct xdp_result *result)
{
	struct tether_stats delta;
	char diff[512];
	size_t len = build(s);

	fixture_run(fx, frame_in, len, result, &delta);
	if (result->verdict != verdict)
		fail_msg("[%s] verdict %s, want %s", what, xdp_verdict_name(result->verdict),
			 xdp_verdict_name(verdict));
	if (stats_diff(&delta, counters, diff, sizeof(diff)))
		fail_msg("[%s] counter deltas wrong:%s", what, diff);
}

/* The answer is the expected frame, byte for byte, judged again by pktgen's
 * own parser and checksums, and no longer than the request. */
static void check_answer(const char *what, const struct pkt_spec *request,
			 const struct xdp_result *result)
{
	size_t request_len = build(request);
	size_t len = expected_answer(request, frame_want, sizeof(frame_want));
	struct pkt_view v;
	struct pkt_tether hdr;

	assert_true(len > 0);
	fixture_expect_output(what, "the answer", result, frame_want, len);
	if (result->len > request_len)
		fail_msg("[%s] the answer (%u bytes) is longer than the request (%zu)", what,
			 result->len, request_len);
	if (pkt_parse(result->frame, result->len, &v) || v.data_len != 0)
		fail_msg("[%s] the answer does not parse as a bare Tether header", what);
	if (!pkt_udp_csum_valid(result->frame, result->len) ||
	    pkt_get16(result->frame + v.l4_off + 6) == 0 ||
	    (v.family == 4 && !pkt_ipv4_csum_valid(result->frame, result->len)))
		fail_msg("[%s] a checksum of the answer is wrong", what);
	assert_int_equal(pkt_tether_read(result->frame, result->len, &hdr), 0);
	if (hdr.status != TETHER_STATUS_OVERLOADED || !(hdr.flags & TETHER_F_REPLY) ||
	    hdr.request_id != request->hdr.request_id ||
	    hdr.function_id != request->hdr.function_id ||
	    hdr.routing_key != request->hdr.routing_key ||
	    memcmp(hdr.token, request->hdr.token, 16))
		fail_msg("[%s] the answer's header does not echo the request's", what);
}

/* ---- answers byte for byte ------------------------------------------------- */

enum tags { TAGS_NONE, TAGS_Q, TAGS_AD_Q, TAGS_COUNT };
enum extra { EXTRA_NONE, EXTRA_SHORT, EXTRA_LONG, EXTRA_COUNT };

static const char *const tag_names[] = { "untagged", "802.1Q", "802.1ad+802.1Q" };
static const char *const extra_names[2][EXTRA_COUNT] = {
	{ "no options", "8 bytes of NOP options", "a 40-byte Record Route option" },
	{ "no extension header", "hop-by-hop + destination options", "a routing header" },
};
static const size_t payloads[] = { 0, 1000 };
static const __u8 flag_sets[] = { 0, TETHER_F_KEY, TETHER_F_KEY | TETHER_F_STRICT };

struct answer_case {
	int family;
	enum tags tags;
	enum extra extra;
	size_t payload;
	__u8 flags;
	char label[160];
};

#define ANSWER_CASES (2 * TAGS_COUNT * EXTRA_COUNT * ARRAY_SIZE(payloads))
static struct answer_case answer_cases[ANSWER_CASES];

static void apply_tags(struct pkt_spec *s, enum tags tags)
{
	s->vlan_count = tags == TAGS_NONE ? 0 : tags == TAGS_Q ? 1 : 2;
	s->vlan_tpid[0] = tags == TAGS_AD_Q ? TPID_8021AD : TPID_8021Q;
	s->vlan_tpid[1] = TPID_8021Q;
	s->vlan_tci[0] = OUTER_TCI;
	s->vlan_tci[1] = INNER_TCI;
}

static void apply_extra(struct pkt_spec *s, enum extra extra)
{
	if (extra == EXTRA_NONE)
		return;
	if (s->family == 4) {
		s->ipv4_options_len = extra == EXTRA_SHORT ? 8 : 40;
		s->ipv4_options_fill = extra == EXTRA_SHORT ? PKT_IPOPT_NOP : PKT_IPOPT_RR;
		return;
	}
	if (extra == EXTRA_SHORT) {
		s->ipv6_ext_count = 2;
		s->ipv6_ext[0] = (struct pkt_ipv6_ext){ .type = 0, .len = 0 };
		s->ipv6_ext[1] = (struct pkt_ipv6_ext){ .type = 60, .len = 1 };
	} else {
		s->ipv6_ext_count = 1;
		s->ipv6_ext[0] = (struct pkt_ipv6_ext){ .type = 43, .len = 2 };
	}
}

/* A test's state: its own world, and its case (answer tests). */
struct admission_test {
	struct fixture fx; /* first: *state is also a struct fixture * */
	const struct answer_case *c;
};

static void run_answer_case(void **state)
{
	struct fixture *fx = *state;
	const struct answer_case *c = ((struct admission_test *)*state)->c;
	struct xdp_result result;
	struct pkt_spec s;
	struct tether_stats want = { .no_capacity = 1, .shed = 1 };

	set_limits(fx, 1, 1, 0, 0, 0, 0);
	exhaust_function(fx, FIXTURE_F_EMPTY);
	__u64 tat = function_tat(fx, FIXTURE_F_EMPTY);

	request_spec(&s, c->family, FIXTURE_F_EMPTY, 0xfeedface00000000ull + c->payload);
	apply_tags(&s, c->tags);
	apply_extra(&s, c->extra);
	s.payload_len = c->payload;
	s.hdr.flags = c->flags;
	s.hdr.routing_key = 0x0123456789abcdefull;
	for (int i = 0; i < 16; i++)
		s.hdr.token[i] = (__u8)(0xa0 + i); /* echoed, whatever it holds */
	send_expect(fx, c->label, &s, XDP_TX, &want, &result);
	check_answer(c->label, &s, &result);
	/* A refusal writes nothing. */
	assert_int_equal(function_tat(fx, FIXTURE_F_EMPTY), tat);
}

/* Ethernet padding after the IP packet is cut with the payload; an IPv4
 * request without a UDP checksum gets an answer with one. */
static void test_padding_and_no_checksum(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats want = { .no_capacity = 1, .shed = 1 };
	struct xdp_result result;
	struct pkt_spec s;

	set_limits(fx, 1, 1, 0, 0, 0, 0);
	exhaust_function(fx, FIXTURE_F_EMPTY);
	for (int family = 4; family <= 6; family += 2) {
		request_spec(&s, family, FIXTURE_F_EMPTY, 11);
		s.payload_len = 0;
		s.trailer_len = 18;
		send_expect(fx, "Ethernet padding", &s, XDP_TX, &want, &result);
		check_answer("Ethernet padding", &s, &result);
	}
	request_spec(&s, 4, FIXTURE_F_EMPTY, 12);
	s.udp_csum_zero = 1;
	send_expect(fx, "IPv4 without a UDP checksum", &s, XDP_TX, &want, &result);
	check_answer("IPv4 without a UDP checksum", &s, &result);
}

/* STRICT and the asked-for container is gone: within budget the slow path
 * answers CONTAINER_GONE (the request goes up with reason 2); over budget
 * the router answers OVERLOADED, as for any request it sheds. */
static void test_strict_gone_over_budget(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats want = { .token_miss = 1, .strict_gone = 1 };
	struct xdp_result result;
	struct pkt_spec s;

	set_limits(fx, 1000, 1, 0, 0, 0, 0);
	for (int family = 4; family <= 6; family += 2) {
		request_spec(&s, family, FIXTURE_F1, 20 + family);
		s.hdr.flags = TETHER_F_TOKEN | TETHER_F_STRICT;
		memcpy(s.hdr.token, &fx->tokens[FIXTURE_F1_FIRST_SLOT], 16);
		s.hdr.token[15] ^= 0xff; /* a wrong secret: that container is gone to us */

		want.shed = 0;
		/* A fresh bucket (a full one) for F1. */
		bpf_map_delete_elem(bpf_map__fd(fx->dp.skel->maps.admit_functions),
				    &(__u64){ FIXTURE_F1 });
		send_expect(fx, "STRICT gone, within budget", &s, XDP_PASS, &want, &result);
		size_t len = expected_up(&s, TETHER_STATUS_CONTAINER_GONE, frame_want,
					 sizeof(frame_want));
		fixture_expect_output("STRICT gone, within budget", "the frame up", &result,
				      frame_want, len);

		exhaust_function(fx, FIXTURE_F1);
		want.shed = 1;
		send_expect(fx, "STRICT gone, over budget", &s, XDP_TX, &want, &result);
		check_answer("STRICT gone, over budget", &s, &result);
	}
}

/* ---- budgets ---------------------------------------------------------------- */

/* Sends requests of function_id until one is shed (at most `most`); checks
 * each one admitted went up exactly as before admission existed. Returns how
 * many went up. */
static unsigned send_until_shed(struct fixture *fx, int family, __u64 function_id, unsigned most)
{
	struct xdp_result result;
	struct tether_stats delta;
	struct pkt_spec s;
	unsigned up = 0;

	for (unsigned i = 0; i < most; i++) {
		request_spec(&s, family, function_id, 1000 + i);
		size_t len = build(&s);

		fixture_run(fx, frame_in, len, &result, &delta);
		if (result.verdict == XDP_TX) {
			assert_int_equal(delta.shed, 1);
			check_answer("shed", &s, &result);
			return up;
		}
		if (result.verdict != XDP_PASS)
			fail_msg("request %u: verdict %s", i, xdp_verdict_name(result.verdict));
		assert_int_equal(delta.no_capacity, 1);
		assert_int_equal(delta.shed + delta.shed_dropped, 0);
		len = expected_up(&s, TETHER_STATUS_NO_CAPACITY, frame_want, sizeof(frame_want));
		fixture_expect_output("admitted", "the frame up", &result, frame_want, len);
		up++;
	}
	fail_msg("%u requests of function %llu went up, none shed", most,
		 (unsigned long long)function_id);
	return up;
}

/* Tokens a rate can have added over elapsed_ns (what a bound allows on top
 * of the burst when the machine stalled between two runs). */
static __u64 refill(__u64 elapsed_ns, __u32 rate)
{
	return elapsed_ns / (NS_PER_S / rate);
}

/* Within budget the burst goes up, then the function is shed. */
static void test_burst_then_shed(void **state)
{
	struct fixture *fx = *state;

	set_limits(fx, 1, 3, 0, 0, 0, 0);
	for (int family = 4; family <= 6; family += 2) {
		__u64 function_id = FIXTURE_F_EMPTY + (__u64)family;
		__u64 start = monotonic_ns();
		unsigned up = send_until_shed(fx, family, function_id, 50);
		__u64 took = monotonic_ns() - start;

		if (up < 3 || up > 3 + refill(took, 1))
			fail_msg("IPv%d: %u went up in %llu ns, want the burst of 3", family, up,
				 (unsigned long long)took);
	}
}

/* The case: function 999 is flooded, then function 5's first request
 * must still go up. The flood takes from the shared budget only the part
 * its own budget admits. */
static void test_per_function_first(void **state)
{
	struct fixture *fx = *state;
	struct xdp_result result;
	struct tether_stats delta;
	struct pkt_spec s;
	unsigned up = 0, shed = 0;

	set_limits(fx, 1, 5, 1, 10, 0, 0);
	__u64 start = monotonic_ns();

	request_spec(&s, 4, F_FLOOD, 1);
	size_t len = build(&s);

	for (int i = 0; i < 2000; i++) {
		fixture_run(fx, frame_in, len, &result, &delta);
		up += result.verdict == XDP_PASS;
		shed += result.verdict == XDP_TX;
		/* The answer overwrote the frame: build it again. */
		len = build(&s);
	}
	__u64 took = monotonic_ns() - start;

	assert_int_equal(up + shed, 2000);
	if (up < 5 || up > 5 + refill(took, 1))
		fail_msg("the flood: %u went up in %llu ns, want its burst of 5", up,
			 (unsigned long long)took);

	struct tether_stats want = { .no_capacity = 1 };

	request_spec(&s, 6, F_COLD, 2);
	send_expect(fx, "function 5's first request, after the flood", &s, XDP_PASS, &want,
		    &result);
}

/* Many functions, each within its own budget: the shared budget caps them
 * all (a flood of random function ids gets no more than it). */
static void test_shared_budget_caps_many_functions(void **state)
{
	struct fixture *fx = *state;
	struct xdp_result result;
	struct tether_stats delta;
	struct pkt_spec s;
	unsigned up = 0;

	set_limits(fx, 1, 2, 1, 5, 0, 0);
	__u64 start = monotonic_ns();

	for (int i = 0; i < 40; i++) {
		request_spec(&s, 4, 0x5000 + (__u64)i, (__u64)i);
		fixture_run(fx, frame_in, build(&s), &result, &delta);
		up += result.verdict == XDP_PASS;
		assert_int_equal(delta.no_capacity, 1);
		assert_int_equal(delta.shed, result.verdict == XDP_TX);
	}
	__u64 took = monotonic_ns() - start;

	if (up < 5 || up > 5 + refill(took, 1))
		fail_msg("40 functions: %u went up, want the shared burst of 5", up);
}

/* Routed requests never meet a budget, exhausted or not. */
static void test_routed_never_budgeted(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats want = { .token_hit = 1 };
	struct xdp_result result;
	struct pkt_spec s;

	set_limits(fx, 1, 1, 1, 1, 1, 1);
	exhaust_function(fx, FIXTURE_F1);
	exhaust_shared(fx, ADMIT_BUCKET_TOTAL);
	exhaust_shared(fx, ADMIT_BUCKET_ANSWERS);
	for (int family = 4; family <= 6; family += 2) {
		request_spec(&s, family, FIXTURE_F1, 30);
		s.hdr.flags = TETHER_F_TOKEN;
		memcpy(s.hdr.token, &fx->tokens[FIXTURE_F1_FIRST_SLOT], 16);
		send_expect(fx, "a token hit", &s, XDP_TX, &want, &result);
		assert_int_equal(fixture_stamped_slot(&result), FIXTURE_F1_FIRST_SLOT);
	}
}

/* No budget: nothing is shed, as before admission (a program without
 * tetherd's settings, or rates of 0). Bad settings are refused whole. */
static void test_no_budget_sheds_nothing(void **state)
{
	struct fixture *fx = *state;
	struct admission_limits got, bad;
	struct xdp_result result;
	struct tether_stats delta;
	struct pkt_spec s;

	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			set_limits(fx, 0, 0, 0, 0, 0, 7);
		request_spec(&s, 4, FIXTURE_F_EMPTY, 40);
		size_t len = build(&s);

		for (int i = 0; i < 3000; i++) {
			fixture_run(fx, frame_in, len, &result, &delta);
			if (result.verdict != XDP_PASS || delta.shed)
				fail_msg("request %d without a budget: %s, shed +%llu", i,
					 xdp_verdict_name(result.verdict),
					 (unsigned long long)delta.shed);
			len = build(&s);
		}
	}
	set_limits(fx, 10, 20, 30, 40, 50, 60);
	bad = (struct admission_limits){ 10, 0, 30, 40, 50, 60 }; /* a rate without a burst */
	assert_int_equal(admission_set(&fx->dp, &bad), -EINVAL);
	bad = (struct admission_limits){ 10, 20, TETHER_ADMIT_MAX_RATE + 1, 40, 50, 60 };
	assert_int_equal(admission_set(&fx->dp, &bad), -EINVAL);
	assert_int_equal(admission_get(&fx->dp, &got), 0);
	assert_int_equal(got.function_rate, 10);
	assert_int_equal(got.function_burst, 20);
	assert_int_equal(got.total_rate, 30);
	assert_int_equal(got.total_burst, 40);
	assert_int_equal(got.answer_rate, 50);
	assert_int_equal(got.answer_burst, 60);
}

/* Beyond the cap on answers, shed requests are dropped and counted. */
static void test_answer_cap(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats answered = { .no_capacity = 1, .shed = 1 };
	struct tether_stats dropped = { .no_capacity = 1, .shed_dropped = 1 };
	struct xdp_result result;
	struct pkt_spec s;

	set_limits(fx, 1, 1, 0, 0, 1, 2);
	exhaust_function(fx, FIXTURE_F_EMPTY);
	__u64 start = monotonic_ns();

	for (int i = 0; i < 2; i++) {
		request_spec(&s, 4, FIXTURE_F_EMPTY, 50 + (__u64)i);
		send_expect(fx, "within the cap", &s, XDP_TX, &answered, &result);
		check_answer("within the cap", &s, &result);
	}
	if (monotonic_ns() - start >= NS_PER_S)
		fail_msg("the machine stalled a second: cannot judge the cap");
	request_spec(&s, 6, FIXTURE_F_EMPTY, 52);
	send_expect(fx, "over the cap", &s, XDP_DROP, &dropped, &result);
	request_spec(&s, 4, FIXTURE_F_EMPTY, 53);
	send_expect(fx, "over the cap", &s, XDP_DROP, &dropped, &result);
}

/* ---- the kernel's clock ---------------------------------------------------- */

/* 1000/s, a burst of 4: exhausted, then sleeps of a few ms refill what
 * they are worth, never more than the burst. GCRA's bounds, from the
 * bucket's TAT (read from the map) and CLOCK_MONOTONIC read around the runs
 * (the kernel's bpf_ktime_get_ns): request k in a row is admitted only if
 * TAT + k * interval - t_k <= tolerance, and surely if that holds at the
 * earliest t_k; so after a sleep ending at `woke`, with the last run done by
 * `done`, between min(burst, (woke + tolerance - TAT) / interval + 1) and
 * min((done + tolerance - TAT) / interval + 1,
 *     burst + (done - woke) / interval) go up. */
static void test_refill_with_kernel_clock(void **state)
{
	struct fixture *fx = *state;
	const __u32 rate = 1000, burst = 4;
	const __u64 interval = NS_PER_S / rate, tolerance = (burst - 1) * interval;

	set_limits(fx, rate, burst, 0, 0, 0, 0);
	__u64 t0 = monotonic_ns();
	unsigned up = send_until_shed(fx, 4, FIXTURE_F_EMPTY, 100);
	__u64 t1 = monotonic_ns();

	if (up < burst || up > burst + refill(t1 - t0, rate))
		fail_msg("first burst: %u went up in %llu ns, want %u", up,
			 (unsigned long long)(t1 - t0), burst);
	/* The bucket's TAT is on the kernel's monotonic clock: the first
	 * admitted request set it to its time plus one interval, each next one
	 * moved it on by one. */
	__u64 tat = function_tat(fx, FIXTURE_F_EMPTY);

	if (tat < t0 + up * interval || tat > t1 + up * interval)
		fail_msg("TAT %llu outside [%llu, %llu]: not CLOCK_MONOTONIC", (unsigned long long)tat,
			 (unsigned long long)(t0 + up * interval),
			 (unsigned long long)(t1 + up * interval));

	/* 2.5 ms asleep refills about two requests' worth; 20 ms the burst. */
	static const unsigned sleeps_us[] = { 2500, 20000, 1500 };

	for (size_t round = 0; round < ARRAY_SIZE(sleeps_us); round++) {
		usleep(sleeps_us[round]);
		__u64 woke = monotonic_ns();

		up = send_until_shed(fx, round % 2 ? 6 : 4, FIXTURE_F_EMPTY, 100);
		__u64 done = monotonic_ns();
		__u64 least = woke + tolerance >= tat ? (woke + tolerance - tat) / interval + 1 : 0;
		__u64 most = (done + tolerance - tat) / interval + 1;

		if (least > burst)
			least = burst;
		if (most > burst + (done - woke) / interval)
			most = burst + (done - woke) / interval;
		fprintf(stderr, "[ clock ] %u us asleep: %u went up (bounds %llu..%llu)\n",
			sleeps_us[round], up, (unsigned long long)least, (unsigned long long)most);
		if (up < least || up > most)
			fail_msg("after %u us asleep: %u went up, want %llu..%llu", sleeps_us[round],
				 up, (unsigned long long)least, (unsigned long long)most);
		tat = function_tat(fx, FIXTURE_F_EMPTY);
	}
}

/* ---- several CPUs --------------------------------------------------------------- */

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fail_msg("cannot run on CPU %d: %s", cpu, strerror(errno));
}

static void unpin(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* The per-CPU counters as they are, CPU by CPU. */
static struct tether_stats *per_cpu_stats(struct fixture *fx)
{
	int cpus = libbpf_num_possible_cpus();
	struct tether_stats *values = calloc((size_t)cpus, sizeof(*values));
	__u32 zero = 0;

	assert_non_null(values);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(fx->dp.skel->maps.stats), &zero, values),
			 0);
	return values;
}

/* Exhausted on CPU 0, the function's bucket is exhausted on CPU 1: one
 * bucket for every CPU, and each CPU counts what it did. */
static void test_one_bucket_for_all_cpus(void **state)
{
	struct fixture *fx = *state;
	struct xdp_result result;
	struct tether_stats delta;
	struct pkt_spec s;

	set_limits(fx, 1, 3, 0, 0, 0, 0);
	struct tether_stats *before = per_cpu_stats(fx);
	__u64 start = monotonic_ns();

	pin_to_cpu(0);
	for (int i = 0; i < 3; i++) {
		request_spec(&s, 4, FIXTURE_F_EMPTY, 60 + (__u64)i);
		fixture_run(fx, frame_in, build(&s), &result, &delta);
		assert_int_equal(result.verdict, XDP_PASS);
	}
	pin_to_cpu(1);
	request_spec(&s, 6, FIXTURE_F_EMPTY, 63);
	fixture_run(fx, frame_in, build(&s), &result, &delta);
	unpin();
	if (monotonic_ns() - start >= NS_PER_S)
		fail_msg("the machine stalled a second: cannot judge the bucket");
	assert_int_equal(result.verdict, XDP_TX);
	check_answer("shed on CPU 1", &s, &result);

	struct tether_stats *after = per_cpu_stats(fx);

	assert_int_equal(after[0].no_capacity - before[0].no_capacity, 3);
	assert_int_equal(after[0].shed - before[0].shed, 0);
	assert_int_equal(after[1].no_capacity - before[1].no_capacity, 1);
	assert_int_equal(after[1].shed - before[1].shed, 1);
	free(before);
	free(after);
}

/* Two threads, pinned to CPUs 0 and 1, send as fast as they can for the
 * same bucket at the same time. */
struct hammer {
	struct fixture *fx;
	int cpu;
	unsigned runs;
	__u64 function_id;
	pthread_barrier_t *start;
	unsigned verdicts[XDP_REDIRECT + 1];
	int err;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	static __thread __u8 frame[256];
	struct xdp_result *result = malloc(sizeof(*result));
	struct pkt_spec s;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(h->cpu, &set);
	if (!result || pthread_setaffinity_np(pthread_self(), sizeof(set), &set)) {
		h->err = ENOMEM;
		pthread_barrier_wait(h->start);
		free(result);
		return NULL;
	}
	request_spec(&s, h->cpu ? 6 : 4, h->function_id, 70 + (__u64)h->cpu);
	size_t len = pkt_build(&s, frame, sizeof(frame));

	pthread_barrier_wait(h->start);
	for (unsigned i = 0; i < h->runs && !h->err; i++) {
		/* Every run sees the request anew (an answer is built in place). */
		pkt_build(&s, frame, sizeof(frame));
		h->err = -harness_run(&h->fx->dp, frame, (__u32)len, h->fx->lo_ifindex, result);
		if (!h->err && result->verdict >= 0 && result->verdict <= XDP_REDIRECT)
			h->verdicts[result->verdict]++;
	}
	free(result);
	return NULL;
}

/* verdict: what an admitted request gets (XDP_PASS, or XDP_TX when the
 * budget under test is the answers'); the rest get `other`. */
static void hammer_case(struct fixture *fx, const char *what, __u64 function_id, __u32 burst,
			int admitted_verdict, int other_verdict)
{
	const unsigned runs = 30000;
	pthread_barrier_t start;
	struct hammer h[2];
	pthread_t threads[2];

	struct tether_stats *before = per_cpu_stats(fx);

	pthread_barrier_init(&start, NULL, 3);
	for (int cpu = 0; cpu < 2; cpu++) {
		h[cpu] = (struct hammer){ .fx = fx, .cpu = cpu, .runs = runs,
					  .function_id = function_id, .start = &start };
		assert_int_equal(pthread_create(&threads[cpu], NULL, hammer_run, &h[cpu]), 0);
	}
	pthread_barrier_wait(&start);
	__u64 t0 = monotonic_ns();

	for (int cpu = 0; cpu < 2; cpu++)
		pthread_join(threads[cpu], NULL);
	__u64 took = monotonic_ns() - t0;

	pthread_barrier_destroy(&start);
	for (int cpu = 0; cpu < 2; cpu++)
		if (h[cpu].err)
			fail_msg("[%s] thread on CPU %d: %s", what, cpu, strerror(h[cpu].err));

	struct tether_stats *after = per_cpu_stats(fx);
	unsigned admitted = h[0].verdicts[admitted_verdict] + h[1].verdicts[admitted_verdict];

	fprintf(stderr, "[ %s ] %u + %u runs on CPUs 0 and 1 in %.0f ms: %u + %u admitted\n", what,
		runs, runs, took / 1e6, h[0].verdicts[admitted_verdict],
		h[1].verdicts[admitted_verdict]);
	for (int cpu = 0; cpu < 2; cpu++) {
		const struct tether_stats *b = &before[cpu], *a = &after[cpu];
		unsigned shed = other_verdict == XDP_DROP ? h[cpu].verdicts[XDP_TX]
							  : h[cpu].verdicts[other_verdict];
		unsigned dropped = h[cpu].verdicts[XDP_DROP];

		if (h[cpu].verdicts[admitted_verdict] + h[cpu].verdicts[other_verdict] != runs)
			fail_msg("[%s] CPU %d: verdicts other than %s and %s", what, cpu,
				 xdp_verdict_name(admitted_verdict), xdp_verdict_name(other_verdict));
		if (a->no_capacity - b->no_capacity != runs || a->shed - b->shed != shed ||
		    a->shed_dropped - b->shed_dropped != dropped)
			fail_msg("[%s] CPU %d counted no_capacity +%llu shed +%llu shed_dropped +%llu; "
				 "its thread saw %u runs, %u answered, %u dropped",
				 what, cpu, (unsigned long long)(a->no_capacity - b->no_capacity),
				 (unsigned long long)(a->shed - b->shed),
				 (unsigned long long)(a->shed_dropped - b->shed_dropped), runs, shed,
				 dropped);
	}
	if (admitted < burst || admitted > burst + refill(took, 1))
		fail_msg("[%s] %u admitted by two CPUs at once in %llu ns, want the burst of %u "
			 "(a lost update admits more)",
			 what, admitted, (unsigned long long)took, burst);
	if (!h[0].verdicts[other_verdict] || !h[1].verdicts[other_verdict])
		fail_msg("[%s] one CPU never met the exhausted bucket: no contention tested", what);
	free(before);
	free(after);
}

static void test_cpus_at_once_function_bucket(void **state)
{
	struct fixture *fx = *state;

	set_limits(fx, 1, 20000, 0, 0, 0, 0);
	hammer_case(fx, "a function's bucket", F_FLOOD, 20000, XDP_PASS, XDP_TX);
}

static void test_cpus_at_once_shared_bucket(void **state)
{
	struct fixture *fx = *state;

	set_limits(fx, 0, 0, 1, 20000, 0, 0);
	hammer_case(fx, "the shared bucket", F_FLOOD, 20000, XDP_PASS, XDP_TX);
}

static void test_cpus_at_once_answer_bucket(void **state)
{
	struct fixture *fx = *state;

	set_limits(fx, 1, 1, 0, 0, 1, 20000);
	exhaust_function(fx, F_FLOOD);
	hammer_case(fx, "the answers' bucket", F_FLOOD, 20000, XDP_TX, XDP_DROP);
}

/* ---- cmocka ------------------------------------------------------------------ */

static int setup(void **state)
{
	struct admission_test *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->c = *state;
	fixture_setup(&t->fx);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct admission_test *t = *state;

	unpin();
	fixture_teardown(&t->fx);
	free(t);
	return 0;
}

#define TEST(name, func) (struct CMUnitTest){ name, func, setup, teardown, NULL }

int main(int argc, char **argv)
{
	static struct CMUnitTest tests[ANSWER_CASES + 16];
	size_t n = 0;

	for (int f = 0; f < 2; f++)
		for (int t = 0; t < TAGS_COUNT; t++)
			for (int e = 0; e < EXTRA_COUNT; e++)
				for (size_t p = 0; p < ARRAY_SIZE(payloads); p++) {
					struct answer_case *c = &answer_cases[n];

					c->family = f ? 6 : 4;
					c->tags = (enum tags)t;
					c->extra = (enum extra)e;
					c->payload = payloads[p];
					c->flags = flag_sets[n % ARRAY_SIZE(flag_sets)];
					snprintf(c->label, sizeof(c->label),
						 "answer: IPv%d | %s | %s | payload %zu | flags 0x%02x",
						 c->family, tag_names[t], extra_names[f][e], c->payload,
						 c->flags);
					tests[n] = (struct CMUnitTest){ c->label, run_answer_case, setup,
									teardown, c };
					n++;
				}
	tests[n++] = TEST("answer: Ethernet padding, IPv4 without a UDP checksum",
			  test_padding_and_no_checksum);
	tests[n++] = TEST("answer: STRICT and gone, over budget: OVERLOADED",
			  test_strict_gone_over_budget);
	tests[n++] = TEST("budget: the burst goes up, then shedding", test_burst_then_shed);
	tests[n++] = TEST("budget: per function first (999 flooded, 5 still goes up)",
			  test_per_function_first);
	tests[n++] = TEST("budget: the shared budget caps many functions",
			  test_shared_budget_caps_many_functions);
	tests[n++] = TEST("budget: routed requests never meet one", test_routed_never_budgeted);
	tests[n++] = TEST("budget: none sheds nothing; bad settings refused",
			  test_no_budget_sheds_nothing);
	tests[n++] = TEST("budget: the cap on answers drops beyond it", test_answer_cap);
	tests[n++] = TEST("clock: refill with the kernel's clock", test_refill_with_kernel_clock);
	tests[n++] = TEST("cpus: one bucket for all CPUs, counted per CPU",
			  test_one_bucket_for_all_cpus);
	tests[n++] = TEST("cpus: two at once, a function's bucket",
			  test_cpus_at_once_function_bucket);
	tests[n++] = TEST("cpus: two at once, the shared bucket", test_cpus_at_once_shared_bucket);
	tests[n++] = TEST("cpus: two at once, the answers' bucket",
			  test_cpus_at_once_answer_bucket);
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		fprintf(stderr, "test_admission: needs at least two CPUs online (the per-CPU "
				"tests run on CPUs 0 and 1)\n");
		return 1;
	}
	fixture_enter_netns();
	return _cmocka_run_group_tests("test_admission", tests, n, NULL, NULL);
}
