// SPDX-License-Identifier: MIT
/* Concurrency limits, completions and liveness in the data plane (issue 11;
 * DESIGN.md "Concurrency and completions"; docs/protocol.md "Completions and
 * liveness"), through the real XDP program and BPF_PROG_TEST_RUN in the
 * fixture's world (tests/lib/fixture.h: F1 in slots 10..13, 10 and 11 on
 * backend 1 = lo, 12 and 13 on backend 2 = tx0):
 *
 *   - counting: a forward to a container with a limit reserves one in
 *     flight (inflight.started), none is read or written without a limit;
 *   - room on every path: TOKEN, KEY (affinity kept), flow, STRICT; nothing
 *     with room: the slow path with status OVERLOADED (counter `full`);
 *   - DONE: applied from the container's backend interface; bit flips,
 *     another function's token, a replay, the wrong interface (the client
 *     side) change nothing and are counted; lost requests found from the
 *     received count; a DONE or ALIVE flag in a client's request is malformed;
 *   - ALIVE: moves the deadline; forged the same ways, ignored and counted;
 *   - two CPUs forwarding at once never exceed a limit of 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "dataplane/dataplane.h"
#include "fixture.h"
#include "pktgen.h"
#include "tether/hash.h"
#include "tether/siphash.h"
#include "tether_xdp.skel.h"

#define COMPLETION_PORT 7700

static void add_completion(struct fixture *fx)
{
	__u8 addr[16];

	pkt_v4mapped(addr, PKT_TEST_VIP4);
	assert_int_equal(service_add_completion(&fx->dp, addr, COMPLETION_PORT), 0);
	pkt_addr6(addr, PKT_TEST_VIP6);
	assert_int_equal(service_add_completion(&fx->dp, addr, COMPLETION_PORT), 0);
}

static int setup(void **state)
{
	fixture_cmocka_setup(state);
	add_completion(*state);
	return 0;
}

static void set_limit(struct fixture *fx, __u64 function_id, __u32 first, __u32 n, __u32 limit)
{
	(void)function_id;
	for (__u32 slot = first; slot < first + n; slot++)
		assert_int_equal(container_set_limit(&fx->dp, slot, limit), 0);
}

static __u64 in_flight(struct fixture *fx, __u32 slot)
{
	struct container_load load;

	assert_int_equal(container_load_read(&fx->dp, slot, &load), 0);
	return container_load_in_flight(&load);
}

static size_t request(__u8 *buf, int family, __u8 flags, __u64 key, const struct tether_token *token,
		      __u16 src_port)
{
	struct pkt_spec s;

	pkt_spec_default(&s, family);
	s.hdr.flags = flags;
	s.hdr.routing_key = key;
	if (src_port)
		s.src_port = src_port;
	if (token)
		memcpy(s.hdr.token, token, 16);
	return pkt_build(&s, buf, HARNESS_FRAME_MAX);
}

/* A DONE for the container of token: finished and received cumulative;
 * from source4 (IPv4 dotted) when given, else the default source. */
static size_t done_frame_from(__u8 *buf, int family, __u64 function_id,
			      const struct tether_token *token, __u64 finished, __u64 received,
			      const char *source4)
{
	struct pkt_spec s;

	pkt_spec_default(&s, family);
	if (source4)
		assert_int_equal(pkt_addr4(s.src_addr, source4), 0);
	s.dst_port = COMPLETION_PORT;
	s.hdr.flags = TETHER_F_DONE | TETHER_F_STAMPED;
	s.hdr.function_id = function_id;
	s.hdr.routing_key = finished;
	s.hdr.request_id = 77;
	memcpy(s.hdr.token, token, 16);
	s.payload_len = 8;
	size_t len = pkt_build(&s, buf, HARNESS_FRAME_MAX);
	struct pkt_view v;

	assert_int_equal(pkt_parse(buf, len, &v), 0);
	__u64 be = htobe64(received);
	memcpy(buf + v.data_off, &be, 8);
	assert_int_equal(pkt_fix_csums(buf, len), 0);
	return len;
}

static size_t done_frame(__u8 *buf, int family, __u64 function_id, const struct tether_token *token,
			 __u64 finished, __u64 received)
{
	return done_frame_from(buf, family, function_id, token, finished, received, NULL);
}

static size_t alive_frame(__u8 *buf, int family, __u64 backend_id, __u64 seq, __u64 tag)
{
	struct pkt_spec s;

	pkt_spec_default(&s, family);
	s.dst_port = COMPLETION_PORT;
	s.hdr.flags = TETHER_F_ALIVE | TETHER_F_STAMPED;
	s.hdr.function_id = backend_id;
	s.hdr.routing_key = seq;
	s.payload_len = 0;
	__u64 be = htobe64(tag);
	memcpy(s.hdr.token + 8, &be, 8);
	return pkt_build(&s, buf, HARNESS_FRAME_MAX);
}

static void run_on(struct fixture *fx, const __u8 *frame, size_t len, __u32 ifindex,
		   struct xdp_result *result, struct tether_stats *delta)
{
	struct tether_stats before, after;

	assert_int_equal(stats_read(&fx->dp, &before), 0);
	assert_int_equal(harness_run(&fx->dp, frame, (__u32)len, ifindex, result), 0);
	assert_int_equal(stats_read(&fx->dp, &after), 0);
	stats_delta(&before, &after, delta);
}

static __u8 out_status(const struct xdp_result *result)
{
	struct pkt_tether hdr;

	assert_int_equal(pkt_tether_read(result->frame, result->len, &hdr), 0);
	return hdr.status;
}

/* ---- counting and room ---------------------------------------------------- */

static void test_no_limit_counts_nothing(void **state)
{
	struct fixture *fx = *state;
	__u8 frame[HARNESS_FRAME_MAX];
	struct xdp_result r;
	struct tether_stats d;

	for (int i = 0; i < 5; i++) {
		size_t len = request(frame, 4, TETHER_F_TOKEN, 0, &fx->tokens[10], 0);

		fixture_run(fx, frame, len, &r, &d);
		assert_int_equal(r.verdict, XDP_TX);
		assert_int_equal(d.token_hit, 1);
	}
	struct container_load load;

	assert_int_equal(container_load_read(&fx->dp, 10, &load), 0);
	assert_int_equal(load.started, 0);
	assert_int_equal(load.cancelled, 0);
}

static void test_token_counts_then_overflows(void **state)
{
	struct fixture *fx = *state;
	__u8 frame[HARNESS_FRAME_MAX];
	struct xdp_result r;
	struct tether_stats d;

	set_limit(fx, FIXTURE_F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS, 2);
	for (int i = 0; i < 2; i++) {
		size_t len = request(frame, 4, TETHER_F_TOKEN, 0, &fx->tokens[10], 0);

		fixture_run(fx, frame, len, &r, &d);
		assert_int_equal(r.verdict, XDP_TX);
		assert_int_equal(fixture_stamped_slot(&r), 10);
		assert_int_equal(d.token_hit, 1);
		assert_int_equal(in_flight(fx, 10), (__u64)i + 1);
	}
	/* Full: to a sibling by the flow, counted. */
	size_t len = request(frame, 6, TETHER_F_TOKEN, 0, &fx->tokens[10], 0);

	fixture_run(fx, frame, len, &r, &d);
	assert_true(r.verdict == XDP_TX || r.verdict == XDP_REDIRECT);
	long slot = fixture_stamped_slot(&r);

	assert_true(slot >= 11 && slot <= 13);
	assert_int_equal(d.token_overflow, 1);
	assert_int_equal(d.token_hit, 0);
	assert_int_equal(d.flow_pick, 1);
	assert_int_equal(in_flight(fx, 10), 2);
	assert_int_equal(in_flight(fx, (__u32)slot), 1);

	/* STRICT: the slow path holds it for that container. */
	len = request(frame, 4, TETHER_F_TOKEN | TETHER_F_STRICT, 0, &fx->tokens[10], 0);
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(r.verdict, XDP_PASS);
	assert_int_equal(out_status(&r), TETHER_STATUS_OVERLOADED);
	assert_int_equal(d.full, 1);
	assert_true(pkt_udp_csum_valid(r.frame, r.len));
	assert_int_equal(in_flight(fx, 10), 2);
}

static long affinity_slot(struct fixture *fx, __u64 key)
{
	struct affinity_key k = { FIXTURE_F1, key };
	struct affinity_value v;

	if (bpf_map_lookup_elem(bpf_map__fd(fx->dp.skel->maps.affinity), &k, &v))
		return -1;
	return v.slot;
}

static void test_key_overflows_and_comes_home(void **state)
{
	struct fixture *fx = *state;
	__u8 frame[HARNESS_FRAME_MAX], done[HARNESS_FRAME_MAX];
	struct xdp_result r;
	struct tether_stats d;
	const __u64 key = 4242;

	set_limit(fx, FIXTURE_F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS, 1);
	size_t len = request(frame, 4, TETHER_F_KEY, key, NULL, 0);

	fixture_run(fx, frame, len, &r, &d);
	long home = fixture_stamped_slot(&r);

	assert_int_equal(d.key_new, 1);
	assert_int_equal(home, fixture_model_pick(fx, FIXTURE_F1, tether_hash_key(FIXTURE_F1, key)));
	/* Home full: every other container once, in the key's table order,
	 * the affinity staying home. */
	int seen[32] = { 0 };

	seen[home] = 1;
	for (int i = 0; i < FIXTURE_F1_CONTAINERS - 1; i++) {
		fixture_run(fx, frame, len, &r, &d);
		long slot = fixture_stamped_slot(&r);

		assert_true(slot >= 10 && slot <= 13);
		assert_false(seen[slot]);
		seen[slot] = 1;
		assert_int_equal(d.key_overflow, 1);
		assert_int_equal(d.key_hit, 0);
		assert_int_equal(affinity_slot(fx, key), home);
	}
	/* Everything full: the slow path. */
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(r.verdict, XDP_PASS);
	assert_int_equal(out_status(&r), TETHER_STATUS_OVERLOADED);
	assert_int_equal(d.full, 1);
	/* STRICT with a full home: held for it. */
	size_t slen = request(done, 4, TETHER_F_KEY | TETHER_F_STRICT, key, NULL, 0);

	fixture_run(fx, done, slen, &r, &d);
	assert_int_equal(r.verdict, XDP_PASS);
	assert_int_equal(out_status(&r), TETHER_STATUS_OVERLOADED);
	assert_int_equal(d.full, 1);
	assert_int_equal(d.strict_gone, 0);

	/* Home finishes its request: the next one goes home again. */
	__u32 ifindex = fixture_backend_of((__u32)home) == FIXTURE_BACKEND_LOCAL ? fx->lo_ifindex
										  : fx->tx0_ifindex;
	size_t dlen = done_frame(done, 4, FIXTURE_F1, &fx->tokens[home], 1, 1);

	run_on(fx, done, dlen, ifindex, &r, &d);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(d.done, 1);
	assert_int_equal(in_flight(fx, (__u32)home), 0);
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(fixture_stamped_slot(&r), home);
	assert_int_equal(d.key_hit, 1);
}

static void test_flows_fill_every_container_then_slow_path(void **state)
{
	struct fixture *fx = *state;
	__u8 frame[HARNESS_FRAME_MAX];
	struct xdp_result r;
	struct tether_stats d;
	int seen[32] = { 0 };

	set_limit(fx, FIXTURE_F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS, 1);
	for (int i = 0; i < FIXTURE_F1_CONTAINERS; i++) {
		size_t len = request(frame, 4, 0, 0, NULL, (__u16)(40000 + i));

		fixture_run(fx, frame, len, &r, &d);
		long slot = fixture_stamped_slot(&r);

		assert_true(slot >= 10 && slot <= 13);
		assert_false(seen[slot]);
		seen[slot] = 1;
		assert_int_equal(d.flow_pick, 1);
	}
	size_t len = request(frame, 6, 0, 0, NULL, 41000);

	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(r.verdict, XDP_PASS);
	assert_int_equal(out_status(&r), TETHER_STATUS_OVERLOADED);
	assert_int_equal(d.full, 1);
	assert_int_equal(d.flow_pick, 0);
	/* The other function has no limit: untouched. */
	len = request(frame, 4, TETHER_F_TOKEN, 0, &fx->tokens[20], 0);
	frame[0] = frame[0]; /* (same function id in the frame: use F2's) */
	struct pkt_spec s;

	pkt_spec_default(&s, 4);
	s.hdr.function_id = FIXTURE_F2;
	s.hdr.flags = TETHER_F_TOKEN;
	memcpy(s.hdr.token, &fx->tokens[20], 16);
	len = pkt_build(&s, frame, sizeof(frame));
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(fixture_stamped_slot(&r), 20);
}

/* ---- completions ------------------------------------------------------- */

static void test_done_forgeries_change_nothing(void **state)
{
	struct fixture *fx = *state;
	__u8 frame[HARNESS_FRAME_MAX];
	struct xdp_result r;
	struct tether_stats d;

	set_limit(fx, FIXTURE_F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS, 1);
	size_t len = request(frame, 4, TETHER_F_TOKEN, 0, &fx->tokens[10], 0);

	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(in_flight(fx, 10), 1);

	for (int bit = 0; bit < 128; bit += 5) {
		struct tether_token forged = fx->tokens[10];

		((__u8 *)&forged)[bit / 8] ^= (__u8)(1u << (bit % 8));
		len = done_frame(frame, 4, FIXTURE_F1, &forged, 1, 1);
		fixture_run(fx, frame, len, &r, &d);
		assert_int_equal(r.verdict, XDP_DROP);
		assert_int_equal(d.done_forged, 1);
		assert_int_equal(d.done, 0);
		assert_int_equal(in_flight(fx, 10), 1);
	}
	/* Another function's token, with its function or with ours. */
	len = done_frame(frame, 4, FIXTURE_F1, &fx->tokens[20], 1, 1);
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.done_forged, 1);
	len = done_frame(frame, 6, FIXTURE_F2, &fx->tokens[10], 1, 1);
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.done_forged, 1);
	/* From the client's side (not the backend's interface). */
	len = done_frame(frame, 4, FIXTURE_F1, &fx->tokens[10], 1, 1);
	run_on(fx, frame, len, fx->tx0_ifindex, &r, &d);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(d.done_forged, 1);
	assert_int_equal(in_flight(fx, 10), 1);
	/* To the service address: a client's request may not carry DONE. */
	struct pkt_spec s;

	pkt_spec_default(&s, 4);
	s.hdr.flags = TETHER_F_DONE | TETHER_F_STAMPED;
	memcpy(s.hdr.token, &fx->tokens[10], 16);
	len = pkt_build(&s, frame, sizeof(frame));
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(d.malformed, 1);
	s.hdr.flags = TETHER_F_ALIVE;
	len = pkt_build(&s, frame, sizeof(frame));
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.malformed, 1);
	/* Neither DONE nor ALIVE to the completion address. */
	s.dst_port = COMPLETION_PORT;
	s.hdr.flags = TETHER_F_TOKEN;
	len = pkt_build(&s, frame, sizeof(frame));
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(d.completion_bad, 1);
	assert_int_equal(in_flight(fx, 10), 1);

	/* The real one, then its replay. */
	len = done_frame(frame, 4, FIXTURE_F1, &fx->tokens[10], 1, 1);
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.done, 1);
	assert_int_equal(in_flight(fx, 10), 0);
	len = request(frame, 4, TETHER_F_TOKEN, 0, &fx->tokens[10], 0);
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.token_hit, 1);
	len = done_frame(frame, 4, FIXTURE_F1, &fx->tokens[10], 1, 1);
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.done_stale, 1);
	assert_int_equal(d.done, 0);
	assert_int_equal(in_flight(fx, 10), 1);
}

static void test_lost_done_healed_by_next(void **state)
{
	struct fixture *fx = *state;
	__u8 frame[HARNESS_FRAME_MAX];
	struct xdp_result r;
	struct tether_stats d;

	set_limit(fx, FIXTURE_F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS, 3);
	size_t len = request(frame, 4, TETHER_F_TOKEN, 0, &fx->tokens[11], 0);

	for (int i = 0; i < 3; i++)
		fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(in_flight(fx, 11), 3);
	/* DONEs 1 and 2 lost; DONE 3 says 3 finished. */
	len = done_frame(frame, 4, FIXTURE_F1, &fx->tokens[11], 3, 3);
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.done, 1);
	assert_int_equal(in_flight(fx, 11), 0);
	/* Completions this router did not count (another router's, or from
	 * before the limit) make no room beyond what it forwarded. */
	len = done_frame(frame, 4, FIXTURE_F1, &fx->tokens[11], 1000, 1000);
	fixture_run(fx, frame, len, &r, &d);
	struct container_load load;

	assert_int_equal(container_load_read(&fx->dp, 11, &load), 0);
	assert_int_equal(load.done, 3);
	len = request(frame, 4, TETHER_F_TOKEN, 0, &fx->tokens[11], 0);
	for (int i = 0; i < 3; i++) {
		fixture_run(fx, frame, len, &r, &d);
		assert_int_equal(d.token_hit, 1);
	}
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.token_overflow, 1);
	assert_int_equal(in_flight(fx, 11), 3);
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

static void test_lost_request_found_by_received_count(void **state)
{
	struct fixture *fx = *state;
	__u8 frame[HARNESS_FRAME_MAX], done[HARNESS_FRAME_MAX];
	struct xdp_result r;
	struct tether_stats d;

	set_limit(fx, FIXTURE_F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS, 1);
	size_t len = request(frame, 4, TETHER_F_TOKEN | TETHER_F_STRICT, 0, &fx->tokens[10], 0);

	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.token_hit, 1);
	/* Never received: the container's refreshes say 0 received, 0 done. */
	size_t dlen = done_frame(done, 4, FIXTURE_F1, &fx->tokens[10], 0, 0);

	fixture_run(fx, done, dlen, &r, &d); /* the first reconcile marks */
	assert_int_equal(d.lost_fixed, 0);
	assert_int_equal(in_flight(fx, 10), 1);
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.full, 1);
	sleep_ms(TETHER_RECONCILE_NS / 1000000 + 10);
	fixture_run(fx, done, dlen, &r, &d);
	assert_int_equal(d.lost_fixed, 1);
	assert_int_equal(in_flight(fx, 10), 0);
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.token_hit, 1);
	/* A request received and running is not lost. */
	dlen = done_frame(done, 4, FIXTURE_F1, &fx->tokens[10], 0, 1);
	sleep_ms(TETHER_RECONCILE_NS / 1000000 + 10);
	fixture_run(fx, done, dlen, &r, &d);
	sleep_ms(TETHER_RECONCILE_NS / 1000000 + 10);
	fixture_run(fx, done, dlen, &r, &d);
	assert_int_equal(d.lost_fixed, 0);
	assert_int_equal(in_flight(fx, 10), 1);
}

/* ---- liveness --------------------------------------------------------- */

static const __u64 live_key[2] = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL };

static void test_alive_moves_deadline_and_forgeries_do_not(void **state)
{
	struct fixture *fx = *state;
	__u8 frame[HARNESS_FRAME_MAX];
	struct xdp_result r;
	struct tether_stats d;
	struct backend_record b;

	assert_int_equal(backend_get(&fx->dp, FIXTURE_BACKEND_LOCAL, &b), 0);
	b.heartbeat_expiry_ns = monotonic_ns() + 50000000ULL;
	assert_int_equal(backend_set(&fx->dp, FIXTURE_BACKEND_LOCAL, &b), 0);
	__u64 first_expiry = b.heartbeat_expiry_ns;

	/* No key yet: forged. */
	size_t len = alive_frame(frame, 4, 1, 1, tether_alive_tag(live_key, 1, 1));

	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(d.alive_forged, 1);
	assert_int_equal(liveness_set(&fx->dp, FIXTURE_BACKEND_LOCAL, live_key, 10000000000ULL), 0);

	struct { const char *what; __u64 id, seq, tag; int ifindex_remote; } forged[] = {
		{ "tag bit flipped", 1, 1, tether_alive_tag(live_key, 1, 1) ^ 4, 0 },
		{ "seq not tagged", 1, 2, tether_alive_tag(live_key, 1, 1), 0 },
		{ "another key", 1, 1, tether_alive_tag((const __u64[2]){ 1, 2 }, 1, 1), 0 },
		{ "another backend's id", 2, 1, tether_alive_tag(live_key, 1, 1), 0 },
		{ "id out of range", 1u << 20, 1, tether_alive_tag(live_key, 1u << 20, 1), 0 },
		{ "from another interface", 1, 1, tether_alive_tag(live_key, 1, 1), 1 },
	};
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		len = alive_frame(frame, 4, forged[i].id, forged[i].seq, forged[i].tag);
		run_on(fx, frame, len, forged[i].ifindex_remote ? fx->tx0_ifindex : fx->lo_ifindex,
		       &r, &d);
		if (d.alive_forged != 1)
			fail_msg("%s: alive_forged +%llu", forged[i].what,
				 (unsigned long long)d.alive_forged);
		assert_int_equal(backend_get(&fx->dp, 1, &b), 0);
		assert_int_equal(b.heartbeat_expiry_ns, first_expiry);
	}
	len = alive_frame(frame, 6, 1, 5, tether_alive_tag(live_key, 1, 5));
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.alive, 1);
	assert_int_equal(backend_get(&fx->dp, 1, &b), 0);
	assert_true(b.heartbeat_expiry_ns > first_expiry + 5000000000ULL);
	__u64 moved = b.heartbeat_expiry_ns;

	/* Replays, and older sequences, are ignored. */
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.alive_replayed, 1);
	len = alive_frame(frame, 4, 1, 4, tether_alive_tag(live_key, 1, 4));
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.alive_replayed, 1);
	assert_int_equal(backend_get(&fx->dp, 1, &b), 0);
	assert_int_equal(b.heartbeat_expiry_ns, moved);
	/* A backend without a deadline (a fleet's) keeps none. */
	b.heartbeat_expiry_ns = 0;
	assert_int_equal(backend_set(&fx->dp, 1, &b), 0);
	len = alive_frame(frame, 4, 1, 9, tether_alive_tag(live_key, 1, 9));
	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(d.alive, 1);
	assert_int_equal(backend_get(&fx->dp, 1, &b), 0);
	assert_int_equal(b.heartbeat_expiry_ns, 0);
}

/* A routed backend has no interface of its own: its agent's ALIVE comes
 * back by any route, and the tag alone decides. */
static void test_alive_from_routed_backend_on_any_interface(void **state)
{
	struct fixture *fx = *state;
	__u8 frame[HARNESS_FRAME_MAX];
	struct xdp_result r;
	struct tether_stats d;
	struct backend_record b;

	assert_int_equal(backend_get(&fx->dp, FIXTURE_BACKEND_LOCAL, &b), 0);
	b.encap = BACKEND_IPIP;
	b.ifindex = 0;
	b.heartbeat_expiry_ns = monotonic_ns() + 50000000ULL;
	assert_int_equal(backend_set(&fx->dp, FIXTURE_BACKEND_LOCAL, &b), 0);
	__u64 first_expiry = b.heartbeat_expiry_ns;

	assert_int_equal(liveness_set(&fx->dp, FIXTURE_BACKEND_LOCAL, live_key, 10000000000ULL), 0);
	size_t len = alive_frame(frame, 4, 1, 1, tether_alive_tag(live_key, 1, 1) ^ 4);

	run_on(fx, frame, len, fx->tx0_ifindex, &r, &d);
	assert_int_equal(d.alive_forged, 1);
	len = alive_frame(frame, 4, 1, 2, tether_alive_tag(live_key, 1, 2));
	run_on(fx, frame, len, fx->tx0_ifindex, &r, &d);
	assert_int_equal(d.alive, 1);
	len = alive_frame(frame, 6, 1, 3, tether_alive_tag(live_key, 1, 3));
	run_on(fx, frame, len, fx->lo_ifindex, &r, &d);
	assert_int_equal(d.alive, 1);
	assert_int_equal(backend_get(&fx->dp, FIXTURE_BACKEND_LOCAL, &b), 0);
	assert_true(b.heartbeat_expiry_ns > first_expiry + 5000000000ULL);
}

/* A routed backend's DONE comes back by whatever route leads here: its
 * source, the backend's own address, decides, not the interface. */
static void test_done_from_routed_backend_by_its_address(void **state)
{
	struct fixture *fx = *state;
	__u8 frame[HARNESS_FRAME_MAX];
	struct xdp_result r;
	struct tether_stats d;
	struct backend_record b;
	__u32 backend_id = fixture_backend_of(10);

	set_limit(fx, FIXTURE_F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS, 1);
	size_t len = request(frame, 4, TETHER_F_TOKEN, 0, &fx->tokens[10], 0);

	fixture_run(fx, frame, len, &r, &d);
	assert_int_equal(in_flight(fx, 10), 1);
	assert_int_equal(backend_get(&fx->dp, backend_id, &b), 0);
	b.encap = BACKEND_IPIP;
	b.ifindex = 0;
	assert_int_equal(pkt_v4mapped(b.addr, "198.51.100.7"), 0);
	assert_int_equal(backend_set(&fx->dp, backend_id, &b), 0);

	len = done_frame_from(frame, 4, FIXTURE_F1, &fx->tokens[10], 1, 1, "198.51.100.8");
	run_on(fx, frame, len, fx->tx0_ifindex, &r, &d);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(d.done_forged, 1);
	assert_int_equal(in_flight(fx, 10), 1);

	len = done_frame_from(frame, 4, FIXTURE_F1, &fx->tokens[10], 1, 1, "198.51.100.7");
	run_on(fx, frame, len, fx->tx0_ifindex, &r, &d);
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(d.done, 1);
	assert_int_equal(d.done_forged, 0);
	assert_int_equal(in_flight(fx, 10), 0);
}

/* ---- several CPUs ----------------------------------------------------- */

#define CPU_ROUNDS 20000

struct cpu_run {
	struct fixture *fx;
	int cpu;
	const __u8 *frame;
	size_t len;
	long forwarded, passed;
	pthread_barrier_t *start;
};

static void *run_on_cpu(void *arg)
{
	struct cpu_run *run = arg;
	cpu_set_t set;
	struct xdp_result r;

	CPU_ZERO(&set);
	CPU_SET(run->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	pthread_barrier_wait(run->start);
	for (int i = 0; i < CPU_ROUNDS; i++) {
		if (harness_run(&run->fx->dp, run->frame, (__u32)run->len, run->fx->lo_ifindex, &r))
			break;
		if (r.verdict == XDP_TX || r.verdict == XDP_REDIRECT)
			run->forwarded++;
		else
			run->passed++;
	}
	return NULL;
}

static void test_two_cpus_never_exceed_a_limit_of_one(void **state)
{
	struct fixture *fx = *state;
	__u8 frames[2][HARNESS_FRAME_MAX];
	size_t lens[2];
	pthread_t threads[2];
	pthread_barrier_t start;
	struct cpu_run runs[2];

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		fail_msg("this test needs two CPUs");
	set_limit(fx, FIXTURE_F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS, 1);
	/* STRICT on one container and a flow over the pool: with no DONE,
	 * exactly one request reaches each container, whoever wins. */
	lens[0] = request(frames[0], 4, TETHER_F_TOKEN | TETHER_F_STRICT, 0, &fx->tokens[10], 0);
	lens[1] = request(frames[1], 4, TETHER_F_KEY, 99, NULL, 0);
	for (int round = 0; round < 2; round++) {
		pthread_barrier_init(&start, NULL, 2);
		for (int i = 0; i < 2; i++) {
			runs[i] = (struct cpu_run){ .fx = fx, .cpu = i, .frame = frames[round],
						    .len = lens[round], .start = &start };
			pthread_create(&threads[i], NULL, run_on_cpu, &runs[i]);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(threads[i], NULL);
		pthread_barrier_destroy(&start);
		long forwarded = runs[0].forwarded + runs[1].forwarded;
		long total = forwarded + runs[0].passed + runs[1].passed;

		assert_int_equal(total, 2 * CPU_ROUNDS);
		/* Round 0: slot 10 only; round 1: the other three. */
		assert_int_equal(forwarded, round == 0 ? 1 : FIXTURE_F1_CONTAINERS - 1);
		for (__u32 slot = 10; slot < 14; slot++) {
			struct container_load load;

			assert_int_equal(container_load_read(&fx->dp, slot, &load), 0);
			assert_true(container_load_in_flight(&load) <= 1);
			assert_true(load.started - load.cancelled <= 1);
		}
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fixture_cmocka_teardown)
		T(test_no_limit_counts_nothing),
		T(test_token_counts_then_overflows),
		T(test_key_overflows_and_comes_home),
		T(test_flows_fill_every_container_then_slow_path),
		T(test_done_forgeries_change_nothing),
		T(test_lost_done_healed_by_next),
		T(test_lost_request_found_by_received_count),
		T(test_alive_moves_deadline_and_forgeries_do_not),
		T(test_alive_from_routed_backend_on_any_interface),
		T(test_done_from_routed_backend_by_its_address),
		T(test_two_cpus_never_exceed_a_limit_of_one),
#undef T
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	fixture_enter_netns();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
