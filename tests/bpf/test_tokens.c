// SPDX-License-Identifier: MIT
/* Tokens, container and backend lifecycle, and STRICT, through the real XDP
 * program (BPF_PROG_TEST_RUN) in the fixture's world (tests/lib/fixture.h):
 *
 *   - a token names one live container of the request's function, or nothing:
 *     foreign tokens, wrong secrets and generations, slots out of range, free,
 *     removed and reused slots, starting containers all miss;
 *   - a miss falls back to the key or flow rule (exactly the pick the Maglev
 *     table and the probing rule give, computed here from the maps), or with
 *     STRICT goes to the slow path with status CONTAINER_GONE;
 *   - draining containers keep tokens and affinities until their deadline and
 *     never get new keys or flows, even while still in the pool table;
 *   - a backend that missed its heartbeats, or is down, loses every container
 *     at once, without a pool rebuild; a draining backend keeps what it has;
 *   - no token ever routes a request to a container of another function.
 *
 * Forwarded frames are compared whole with the expected output (Ethernet
 * rewritten, token stamped, STAMPED set, checksums right); slow-path frames
 * with the input plus the status byte. Every case checks the whole counter
 * delta. Failure messages name the case. */
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

#define NS_PER_S 1000000000ULL
#define F1 FIXTURE_F1
#define F2 FIXTURE_F2
#define B_LOCAL FIXTURE_BACKEND_LOCAL
#define B_REMOTE FIXTURE_BACKEND_REMOTE
#define POOL_CAP 4096

static __u8 in[PKT_MAX_FRAME];
static size_t in_len;
static struct xdp_result res;
/* Every request gets its own source port and key unless a case says. */
static __u16 next_port = 41000;
static __u64 next_key = 1000000;

/* ---- counters --------------------------------------------------------------- */

static void expect_stats(const char *name, const struct tether_stats *got,
			 const struct tether_stats *want)
{
	char diff[1024];

	CHECK(stats_diff(got, want, diff, sizeof(diff)) == 0, name, "counter deltas differ:%s",
	      diff);
}

/* The delta must be base + more (base: the token counters of a miss). */
static void expect_stats_plus(const char *name, const struct tether_stats *got,
			      struct tether_stats base, struct tether_stats more)
{
	__u64 *b = (__u64 *)&base;
	const __u64 *m = (const __u64 *)&more;

	for (size_t i = 0; i < sizeof(base) / sizeof(__u64); i++)
		b[i] += m[i];
	expect_stats(name, got, &base);
}

/* ---- requests --------------------------------------------------------------- */

struct req {
	int family;
	__u64 function_id;
	__u8 flags;
	__u64 key;
	struct tether_token token;
	__u16 src_port; /* 0: a fresh one */
	int udp_csum_zero;
};

static struct req request(int family, __u64 function_id, __u8 flags)
{
	return (struct req){ .family = family, .function_id = function_id, .flags = flags };
}

static struct req token_request(int family, __u64 function_id, __u8 flags,
				const struct tether_token *token)
{
	struct req r = request(family, function_id, flags | TETHER_F_TOKEN);

	r.token = *token;
	return r;
}

static struct tether_token make_token(__u32 slot, __u32 generation, __u64 secret)
{
	return (struct tether_token){ .slot = htonl(slot), .generation = htonl(generation),
				      .secret = secret };
}

/* Builds and runs r (filling in a fresh port); the input stays in in/in_len. */
static void send_req(struct fixture *fx, const char *name, struct req *r,
		     struct tether_stats *delta)
{
	struct pkt_spec s;

	if (!r->src_port)
		r->src_port = next_port++;
	pkt_spec_default(&s, r->family);
	s.src_port = r->src_port;
	s.udp_csum_zero = r->udp_csum_zero;
	s.hdr.function_id = r->function_id;
	s.hdr.flags = r->flags;
	s.hdr.routing_key = r->key;
	s.hdr.request_id = 0x1122334455667788ULL;
	memcpy(s.hdr.token, &r->token, sizeof(r->token));
	in_len = pkt_build(&s, in, PKT_MAX_FRAME);
	CHECK(in_len > 0, name, "pkt_build failed");
	fixture_run(fx, in, in_len, &res, delta);
}

/* ---- the model of a pool pick ---------------------------------------------- */

/* The table entry a hash falls on first (-1: no pool). */
static long primary_slot(struct fixture *fx, __u64 function_id, __u64 hash)
{
	static __u32 table[POOL_CAP];
	__u32 size = 0;

	if (pool_read(&fx->dp, function_id, table, POOL_CAP, &size) || size == 0 || size > POOL_CAP)
		return -1;
	return table[tether_pool_index(hash, size) - 1];
}

static long model_key(struct fixture *fx, __u64 function_id, __u64 key)
{
	return fixture_model_pick(fx, function_id, tether_hash_key(function_id, key));
}

/* A key no request has used whose pick is want_slot. */
static __u64 key_picking(struct fixture *fx, __u64 function_id, long want_slot)
{
	for (int tries = 0; tries < 100000; tries++) {
		__u64 key = next_key++;

		if (model_key(fx, function_id, key) == want_slot)
			return key;
	}
	fail_msg("no key picks slot %ld", want_slot);
	return 0;
}

/* A fresh key whose first table entry is slot (so its pick must probe when
 * slot cannot take work). */
static __u64 key_landing_on(struct fixture *fx, __u64 function_id, long slot)
{
	for (int tries = 0; tries < 100000; tries++) {
		__u64 key = next_key++;

		if (primary_slot(fx, function_id, tether_hash_key(function_id, key)) == slot)
			return key;
	}
	fail_msg("no key lands on slot %ld", slot);
	return 0;
}

static int affinity_get(struct fixture *fx, __u64 function_id, __u64 key,
			struct affinity_value *value)
{
	struct affinity_key k = { .function_id = function_id, .routing_key = key };

	return bpf_map_lookup_elem(bpf_map__fd(fx->dp.skel->maps.affinity), &k, value) ? -errno
										       : 0;
}

/* ---- outcomes --------------------------------------------------------------- */

/* Forwarded to want_slot (-1: to any container of function_id): the verdict
 * of its backend, and exactly the input with Ethernet addresses rewritten,
 * the slot's token stamped, STAMPED set and the UDP checksum right. Returns
 * the slot. */
static long expect_forwarded(struct fixture *fx, const char *name, __u64 function_id,
			     long want_slot)
{
	static __u8 want[PKT_MAX_FRAME];
	struct container_record c;
	struct backend_record b;
	struct tether_token token;
	struct pkt_view v;

	CHECK(res.verdict == XDP_TX || res.verdict == XDP_REDIRECT, name,
	      "verdict %s, want the request forwarded%s", xdp_verdict_name(res.verdict),
	      want_slot >= 0 ? "" : " (the model finds no capacity)");
	long slot = fixture_stamped_slot(&res);

	CHECK(slot >= 0, name, "forwarded but not stamped");
	if (want_slot >= 0)
		CHECK(slot == want_slot, name, "forwarded to slot %ld, want slot %ld", slot,
		      want_slot);
	CHECK(container_get(&fx->dp, (__u32)slot, &c) == 0, name,
	      "forwarded to slot %ld, which holds no container", slot);
	CHECK(c.function_id == function_id, name,
	      "forwarded to slot %ld of function %#llx; the request is for %#llx", slot,
	      (unsigned long long)c.function_id, (unsigned long long)function_id);
	CHECK(backend_get(&fx->dp, c.backend_id, &b) == 0, name, "backend %u missing",
	      c.backend_id);
	int verdict = b.ifindex == fx->lo_ifindex ? XDP_TX : XDP_REDIRECT;

	CHECK(res.verdict == verdict, name, "verdict %s for slot %ld on backend %u, want %s",
	      xdp_verdict_name(res.verdict), slot, c.backend_id, xdp_verdict_name(verdict));

	memcpy(want, in, in_len);
	CHECK(pkt_parse(want, in_len, &v) == 0 && v.tether_off >= 0, name, "input does not parse");
	memcpy(want, b.mac, 6);
	memcpy(want + 6, b.src_mac, 6);
	want[v.tether_off + offsetof(struct tether_hdr, flags)] |= TETHER_F_STAMPED;
	container_token((__u32)slot, &c, &token);
	memcpy(want + v.tether_off + offsetof(struct tether_hdr, container_token), &token,
	       sizeof(token));
	CHECK(pkt_fix_csums(want, in_len) == 0, name, "cannot fix the expected frame's checksums");
	fixture_expect_output(name, "forwarded frame", &res, want, in_len);
	CHECK(pkt_udp_csum_valid(res.frame, res.len), name, "UDP checksum of the output is wrong");
	return slot;
}

/* Up the host stack to the slow path: the input with the status byte set and
 * the UDP checksum fixed (an IPv4 checksum of 0 stays 0), nothing stamped. */
static void expect_slow_path(const char *name, __u8 status)
{
	static __u8 want[PKT_MAX_FRAME];
	struct pkt_tether hdr;
	struct pkt_view v;

	CHECK(res.verdict == XDP_PASS, name, "verdict %s, want XDP_PASS to the slow path",
	      xdp_verdict_name(res.verdict));
	CHECK(pkt_tether_read(res.frame, res.len, &hdr) == 0, name, "output has no Tether header");
	CHECK(hdr.status == status, name, "status %u, want %u", hdr.status, status);
	CHECK(!(hdr.flags & TETHER_F_STAMPED), name, "slow-path frame was stamped");
	memcpy(want, in, in_len);
	CHECK(pkt_parse(want, in_len, &v) == 0 && v.tether_off >= 0, name, "input does not parse");
	want[v.tether_off + offsetof(struct tether_hdr, status)] = status;
	CHECK(pkt_fix_csums(want, in_len) == 0, name, "cannot fix the expected frame's checksums");
	fixture_expect_output(name, "slow-path frame", &res, want, in_len);
	CHECK(pkt_udp_csum_valid(res.frame, res.len), name, "UDP checksum of the output is wrong");
}

/* ---- composite expectations -------------------------------------------------- */

/* A request without TOKEN (or after a token missed, base holding the token
 * counters) that must take the flow rule: the model's pick, or the slow path
 * with NO_CAPACITY. Returns the slot or -1. */
static long expect_flow(struct fixture *fx, const char *name, struct req *r,
			struct tether_stats base)
{
	struct tether_stats delta;

	send_req(fx, name, r, &delta);
	long want = fixture_model_pick(fx, r->function_id, fixture_flow_hash(r->family, r->src_port));

	if (want < 0) {
		expect_stats_plus(name, &delta, base, (struct tether_stats){ .no_capacity = 1 });
		expect_slow_path(name, TETHER_STATUS_NO_CAPACITY);
		return -1;
	}
	expect_stats_plus(name, &delta, base, (struct tether_stats){ .flow_pick = 1 });
	return expect_forwarded(fx, name, r->function_id, want);
}

/* A request with KEY for a key that has no usable entry: the model's pick,
 * learned (key_new, or key_rehomed when an entry existed), or NO_CAPACITY. */
static long expect_key_placed(struct fixture *fx, const char *name, struct req *r,
			      struct tether_stats base, int had_entry)
{
	struct tether_stats delta;
	struct affinity_value value;

	send_req(fx, name, r, &delta);
	long want = model_key(fx, r->function_id, r->key);

	if (want < 0) {
		expect_stats_plus(name, &delta, base, (struct tether_stats){ .no_capacity = 1 });
		expect_slow_path(name, TETHER_STATUS_NO_CAPACITY);
		return -1;
	}
	struct tether_stats placed = { 0 };

	if (had_entry)
		placed.key_rehomed = 1;
	else
		placed.key_new = 1;
	expect_stats_plus(name, &delta, base, placed);
	long slot = expect_forwarded(fx, name, r->function_id, want);
	struct container_record c;

	assert_int_equal(container_get(&fx->dp, (__u32)slot, &c), 0);
	CHECK(affinity_get(fx, r->function_id, r->key, &value) == 0, name, "nothing learned");
	CHECK(value.slot == slot && value.generation == c.generation, name,
	      "learned slot %u generation %u, want slot %ld generation %u", value.slot,
	      value.generation, slot, c.generation);
	return slot;
}

/* KEY for a key whose entry names a container that takes the request. */
static void expect_key_hit(struct fixture *fx, const char *name, struct req *r, long slot)
{
	struct tether_stats delta;

	send_req(fx, name, r, &delta);
	expect_stats(name, &delta, &(struct tether_stats){ .key_hit = 1 });
	expect_forwarded(fx, name, r->function_id, slot);
}

/* A learned key to a slot: KEY request for a key the model sends there. */
static __u64 learn_key(struct fixture *fx, const char *name, __u64 function_id, long slot)
{
	struct req r = request(4, function_id, TETHER_F_KEY);

	r.key = key_picking(fx, function_id, slot);
	CHECK(expect_key_placed(fx, name, &r, (struct tether_stats){ 0 }, 0) == slot, name,
	      "key not learned on slot %ld", slot);
	return r.key;
}

static void expect_token_hit(struct fixture *fx, const char *name, struct req *r, long slot)
{
	struct tether_stats delta;

	send_req(fx, name, r, &delta);
	expect_stats(name, &delta, &(struct tether_stats){ .token_hit = 1 });
	expect_forwarded(fx, name, r->function_id, slot);
}

/* A token that must not route (base: { .token_miss = 1 } or
 * { .token_foreign = 1 }), for IPv4 and IPv6:
 *   TOKEN             -> the flow rule, exactly the model's pick;
 *   TOKEN|KEY         -> the key rule, learned;
 *   TOKEN|STRICT      -> slow path CONTAINER_GONE, strict_gone;
 *   TOKEN|KEY|STRICT  -> the same, and nothing learned.
 * A pick may land on the token's own slot only where the model says so (a
 * warm container of the function whose token was forged). */
static void expect_token_misses(struct fixture *fx, const char *what, __u64 function_id,
				const struct tether_token *token, struct tether_stats base)
{
	char name[256];
	struct tether_stats delta;
	struct affinity_value value;

	for (int family = 4; family <= 6; family += 2) {
		struct req r = token_request(family, function_id, 0, token);

		snprintf(name, sizeof(name), "%s, IPv%d, TOKEN", what, family);
		expect_flow(fx, name, &r, base);

		r = token_request(family, function_id, TETHER_F_KEY, token);
		r.key = next_key++;
		snprintf(name, sizeof(name), "%s, IPv%d, TOKEN|KEY", what, family);
		expect_key_placed(fx, name, &r, base, 0);

		r = token_request(family, function_id, TETHER_F_STRICT, token);
		snprintf(name, sizeof(name), "%s, IPv%d, TOKEN|STRICT", what, family);
		send_req(fx, name, &r, &delta);
		expect_stats_plus(name, &delta, base, (struct tether_stats){ .strict_gone = 1 });
		expect_slow_path(name, TETHER_STATUS_CONTAINER_GONE);

		r = token_request(family, function_id, TETHER_F_KEY | TETHER_F_STRICT, token);
		r.key = next_key++;
		r.udp_csum_zero = family == 4;
		snprintf(name, sizeof(name), "%s, IPv%d, TOKEN|KEY|STRICT%s", what, family,
			 family == 4 ? ", no UDP checksum" : "");
		send_req(fx, name, &r, &delta);
		expect_stats_plus(name, &delta, base, (struct tether_stats){ .strict_gone = 1 });
		expect_slow_path(name, TETHER_STATUS_CONTAINER_GONE);
		CHECK(affinity_get(fx, function_id, r.key, &value) == -ENOENT, name,
		      "a STRICT answer learned an affinity (slot %u)", value.slot);
	}
}

static const struct tether_stats MISS = { .token_miss = 1 };
static const struct tether_stats FOREIGN = { .token_foreign = 1 };

static void set_backend(struct fixture *fx, __u32 id, __u32 state, __u64 heartbeat_expiry_ns)
{
	struct backend_record b;

	assert_int_equal(backend_get(&fx->dp, id, &b), 0);
	b.state = state;
	b.heartbeat_expiry_ns = heartbeat_expiry_ns;
	assert_int_equal(backend_set(&fx->dp, id, &b), 0);
}

static __u64 seconds_ago(unsigned s)
{
	__u64 now = monotonic_ns();

	return now > s * NS_PER_S ? now - s * NS_PER_S : 1;
}

/* ---- foreign tokens ------------------------------------------------------- */

static void test_foreign_token_never_routes_and_falls_back(void **state)
{
	struct fixture *fx = *state;
	char what[128];

	/* F2's tokens in F1 requests, and F1's in F2 requests. */
	for (__u32 slot = FIXTURE_F2_FIRST_SLOT; slot < FIXTURE_F2_FIRST_SLOT + FIXTURE_F2_CONTAINERS;
	     slot++) {
		snprintf(what, sizeof(what), "F2 slot %u token in an F1 request", slot);
		expect_token_misses(fx, what, F1, &fx->tokens[slot], FOREIGN);
	}
	for (__u32 slot = FIXTURE_F1_FIRST_SLOT; slot < FIXTURE_F1_FIRST_SLOT + FIXTURE_F1_CONTAINERS;
	     slot++) {
		snprintf(what, sizeof(what), "F1 slot %u token in an F2 request", slot);
		expect_token_misses(fx, what, F2, &fx->tokens[slot], FOREIGN);
	}
	/* ... and in a request for a function with no pool: no capacity. */
	snprintf(what, sizeof(what), "F1 slot 10 token in a request for a function without pool");
	expect_token_misses(fx, what, FIXTURE_F_EMPTY, &fx->tokens[10], FOREIGN);

	/* The foreign token did not move an existing affinity either. */
	__u64 key = learn_key(fx, "foreign token: learn a key on slot 12", F1, 12);
	struct req r = token_request(4, F1, TETHER_F_KEY, &fx->tokens[20]);
	struct tether_stats delta;

	r.key = key;
	send_req(fx, "F2 token with a learned F1 key", &r, &delta);
	expect_stats("F2 token with a learned F1 key", &delta,
		     &(struct tether_stats){ .token_foreign = 1, .key_hit = 1 });
	expect_forwarded(fx, "F2 token with a learned F1 key", F1, 12);
}

/* ---- forged and stale tokens ------------------------------------------------ */

static void test_token_with_wrong_secret_misses(void **state)
{
	struct fixture *fx = *state;
	static const int bits[] = { 0, 1, 7, 8, 31, 32, 55, 62, 63 };
	char what[128];

	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		struct tether_token t = fx->tokens[12];

		t.secret ^= 1ULL << bits[i];
		snprintf(what, sizeof(what), "slot 12 token with secret bit %d flipped", bits[i]);
		expect_token_misses(fx, what, F1, &t, MISS);
	}
	struct tether_token t = fx->tokens[12];

	t.secret = 0;
	expect_token_misses(fx, "slot 12 token with secret 0", F1, &t, MISS);
	t.secret = ~fx->tokens[12].secret;
	expect_token_misses(fx, "slot 12 token with every secret bit flipped", F1, &t, MISS);
	t.secret = fx->tokens[13].secret;
	expect_token_misses(fx, "slot 12 token with slot 13's secret", F1, &t, MISS);

	/* Control: the real token hits. */
	struct req r = token_request(4, F1, 0, &fx->tokens[12]);

	expect_token_hit(fx, "slot 12's real token", &r, 12);
}

static void test_token_with_wrong_generation_misses(void **state)
{
	struct fixture *fx = *state;
	__u32 generation = ntohl(fx->tokens[11].generation);
	const __u32 wrong[] = { generation + 1, generation - 1, generation + 0x10000,
				generation ^ 0x80000000u, 0xffffffffu };
	char what[128];

	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		struct tether_token t = make_token(11, wrong[i], fx->tokens[11].secret);

		snprintf(what, sizeof(what), "slot 11 token with generation %u (is %u)", wrong[i],
			 generation);
		expect_token_misses(fx, what, F1, &t, MISS);
	}
	struct req r = token_request(6, F1, 0, &fx->tokens[11]);

	expect_token_hit(fx, "slot 11's real token", &r, 11);
}

static void test_token_with_slot_out_of_range_misses(void **state)
{
	struct fixture *fx = *state;
	const __u32 slots[] = { TETHER_MAX_CONTAINERS, TETHER_MAX_CONTAINERS + 1,
				TETHER_MAX_CONTAINERS + 10, 0x7fffffffu, 0x80000000u,
				0xffffffffu };
	char what[128];

	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		struct tether_token t = fx->tokens[10];

		t.slot = htonl(slots[i]);
		snprintf(what, sizeof(what), "slot 10 token moved to slot %#x", slots[i]);
		expect_token_misses(fx, what, F1, &t, MISS);
	}
	/* Another slot of the same function with slot 10's generation and secret. */
	struct tether_token t = fx->tokens[10];

	t.slot = htonl(11);
	expect_token_misses(fx, "slot 10 token moved to slot 11", F1, &t, MISS);
}

static void test_token_of_free_slot_misses(void **state)
{
	struct fixture *fx = *state;
	/* Slot 5 was never used: its record is all zeros, so a token of zeros
	 * matches its generation and secret; only its state can refuse it. */
	const struct {
		const char *what;
		__u32 slot, generation;
		__u64 secret;
	} cases[] = {
		{ "never-used slot 5, generation 0, secret 0", 5, 0, 0 },
		{ "never-used slot 5, generation 1, secret 0", 5, 1, 0 },
		{ "never-used slot 5 with slot 10's secret", 5, 0, fx->tokens[10].secret },
		{ "never-used slot 0, all zeros", 0, 0, 0 },
		{ "last slot, all zeros", TETHER_MAX_CONTAINERS - 1, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tether_token t = make_token(cases[i].slot, cases[i].generation,
						   cases[i].secret);

		expect_token_misses(fx, cases[i].what, F1, &t, MISS);
	}
}

/* ---- removed and reused containers ------------------------------------------ */

static void test_token_of_removed_container_misses(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats delta;
	__u64 key = learn_key(fx, "removed: learn a key on slot 11", F1, 11);
	__u32 generation = ntohl(fx->tokens[11].generation);

	/* Removed, and the pool not rebuilt yet: the table still names slot 11. */
	assert_int_equal(container_remove(&fx->dp, 11), 0);
	expect_token_misses(fx, "removed slot 11's token", F1, &fx->tokens[11], MISS);
	struct tether_token cleared = make_token(11, generation, 0);

	expect_token_misses(fx, "removed slot 11, its generation and the cleared secret 0", F1,
			    &cleared, MISS);

	/* Its affinity: STRICT answers CONTAINER_GONE; without, it re-homes. */
	struct req r = request(4, F1, TETHER_F_KEY | TETHER_F_STRICT);

	r.key = key;
	send_req(fx, "key of removed slot 11, STRICT", &r, &delta);
	expect_stats("key of removed slot 11, STRICT", &delta,
		     &(struct tether_stats){ .strict_gone = 1 });
	expect_slow_path("key of removed slot 11, STRICT", TETHER_STATUS_CONTAINER_GONE);
	r.flags = TETHER_F_KEY;
	long slot = expect_key_placed(fx, "key of removed slot 11", &r, (struct tether_stats){ 0 }, 1);

	CHECK(slot != 11, "key of removed slot 11", "re-homed onto the removed slot");
	expect_key_hit(fx, "key of removed slot 11, after re-homing", &r, slot);

	/* A container marked gone but not yet removed: the same. */
	assert_int_equal(container_set_state(&fx->dp, 13, CONTAINER_GONE, 0), 0);
	expect_token_misses(fx, "gone (not removed) slot 13's token", F1, &fx->tokens[13], MISS);
}

static void test_reused_slot_old_token_misses_new_token_hits(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats delta;
	struct tether_token old_token = fx->tokens[11], new_token, f2_token;
	__u64 key = learn_key(fx, "reuse: learn a key on slot 11", F1, 11);

	struct container_counters counted;

	/* The slot gets a new container of the same function, whose counters
	 * start at zero: the old container's requests are not its. */
	assert_int_equal(container_stats_read(&fx->dp, 11, &counted), 0);
	CHECK(counted.packets > 0, "reuse", "slot 11 counted no packet before its reuse");
	assert_int_equal(container_remove(&fx->dp, 11), 0);
	assert_int_equal(container_stats_read(&fx->dp, 11, &counted), 0);
	CHECK(counted.packets > 0, "reuse", "removing the container cleared its counters");
	assert_int_equal(container_install(&fx->dp, 11, F1, B_LOCAL, CONTAINER_WARM, &new_token), 0);
	assert_int_equal(container_stats_read(&fx->dp, 11, &counted), 0);
	CHECK(counted.packets == 0 && counted.bytes == 0, "reuse",
	      "the new container of slot 11 starts with %llu packets, %llu bytes",
	      (unsigned long long)counted.packets, (unsigned long long)counted.bytes);
	fixture_rebuild_pool(fx, F1);
	CHECK(ntohl(new_token.generation) == ntohl(old_token.generation) + 1, "reuse",
	      "new generation %u after %u", ntohl(new_token.generation),
	      ntohl(old_token.generation));
	expect_token_misses(fx, "reused slot 11, the old container's token", F1, &old_token, MISS);
	for (int family = 4; family <= 6; family += 2) {
		struct req r = token_request(family, F1, TETHER_F_STRICT, &new_token);

		expect_token_hit(fx, "reused slot 11, the new container's token", &r, 11);
	}

	/* The old affinity names the old generation: gone, then re-homed. */
	struct req r = request(4, F1, TETHER_F_KEY | TETHER_F_STRICT);

	r.key = key;
	send_req(fx, "old key of reused slot 11, STRICT", &r, &delta);
	expect_stats("old key of reused slot 11, STRICT", &delta,
		     &(struct tether_stats){ .strict_gone = 1 });
	expect_slow_path("old key of reused slot 11, STRICT", TETHER_STATUS_CONTAINER_GONE);
	r.flags = TETHER_F_KEY;
	long slot = expect_key_placed(fx, "old key of reused slot 11", &r, (struct tether_stats){ 0 }, 1);

	expect_key_hit(fx, "old key of reused slot 11, re-homed", &r, slot);

	/* The slot reused again, by a container of another function. */
	assert_int_equal(container_remove(&fx->dp, 11), 0);
	assert_int_equal(container_install(&fx->dp, 11, F2, B_LOCAL, CONTAINER_WARM, &f2_token), 0);
	fixture_rebuild_pool(fx, F1);
	expect_token_misses(fx, "slot 11 now F2, the first F1 container's token", F1, &old_token,
			    MISS);
	expect_token_misses(fx, "slot 11 now F2, the second F1 container's token", F1, &new_token,
			    MISS);
	expect_token_misses(fx, "slot 11 now F2, its F2 token in an F1 request", F1, &f2_token,
			    FOREIGN);
	r = token_request(4, F2, 0, &f2_token);
	expect_token_hit(fx, "slot 11 now F2, its token in an F2 request", &r, 11);
}

/* ---- draining containers ---------------------------------------------------- */

/* Many new keys and flows of F1: each goes where the model says, never to
 * avoid_slot. Returns how many of the keys' first table entries were
 * avoid_slot (they had to probe). */
static int expect_new_work_avoids(struct fixture *fx, const char *what, long avoid_slot,
				  int keys, int flows)
{
	char name[192];
	int probed = 0;

	for (int i = 0; i < keys; i++) {
		struct req r = request(i & 1 ? 6 : 4, F1, TETHER_F_KEY);

		r.key = next_key++;
		if (primary_slot(fx, F1, tether_hash_key(F1, r.key)) == avoid_slot)
			probed++;
		snprintf(name, sizeof(name), "%s, new key %llu", what, (unsigned long long)r.key);
		long slot = expect_key_placed(fx, name, &r, (struct tether_stats){ 0 }, 0);

		CHECK(slot != avoid_slot, name, "a new key was placed on slot %ld", avoid_slot);
	}
	for (int i = 0; i < flows; i++) {
		struct req r = request(i & 1 ? 6 : 4, F1, 0);

		snprintf(name, sizeof(name), "%s, new flow %d", what, i);
		long slot = expect_flow(fx, name, &r, (struct tether_stats){ 0 });

		CHECK(slot != avoid_slot, name, "a new flow was sent to slot %ld", avoid_slot);
	}
	return probed;
}

/* Keys whose first table entry is the slot: each must probe past it. */
static void expect_probing_skips(struct fixture *fx, const char *what, __u64 function_id,
				 long slot, int count)
{
	char name[192];

	for (int i = 0; i < count; i++) {
		struct req r = request(i & 1 ? 6 : 4, function_id, TETHER_F_KEY);

		r.key = key_landing_on(fx, function_id, slot);
		snprintf(name, sizeof(name), "%s, key %llu whose first entry is slot %ld", what,
			 (unsigned long long)r.key, slot);
		long got = expect_key_placed(fx, name, &r, (struct tether_stats){ 0 }, 0);

		CHECK(got != slot, name, "placed on slot %ld, which takes no new work", slot);
	}
}

static int pool_contains(struct fixture *fx, __u64 function_id, __u32 slot)
{
	static __u32 table[POOL_CAP];
	__u32 size = 0;

	assert_int_equal(pool_read(&fx->dp, function_id, table, POOL_CAP, &size), 0);
	for (__u32 i = 0; i < size && i < POOL_CAP; i++)
		if (table[i] == slot)
			return 1;
	return 0;
}

static void install_pool(struct fixture *fx, __u64 function_id, __u32 first, __u32 count)
{
	struct maglev_member members[16];

	for (__u32 i = 0; i < count; i++)
		members[i] = (struct maglev_member){ .id = first + i, .slot = first + i };
	assert_int_equal(pool_replace(&fx->dp, function_id, members, count), 0);
}

static void test_draining_before_deadline_keeps_tokens_and_affinities(void **state)
{
	struct fixture *fx = *state;
	__u64 key = learn_key(fx, "draining: learn a key on slot 10", F1, 10);
	/* A second key moved to slot 10 by its token (rule 1: TOKEN|KEY). */
	struct req moved = token_request(4, F1, TETHER_F_KEY, &fx->tokens[10]);

	moved.key = key_picking(fx, F1, 12);
	expect_token_hit(fx, "draining: token of slot 10 moves a key from slot 12", &moved, 10);
	struct affinity_value value;

	CHECK(affinity_get(fx, F1, moved.key, &value) == 0 && value.slot == 10, "draining",
	      "TOKEN|KEY did not move the key's affinity to slot 10");

	assert_int_equal(container_set_state(&fx->dp, 10, CONTAINER_DRAINING,
					     monotonic_ns() + 10 * NS_PER_S), 0);
	for (int family = 4; family <= 6; family += 2) {
		struct req r = token_request(family, F1, 0, &fx->tokens[10]);

		expect_token_hit(fx, "draining slot 10 before its deadline, TOKEN", &r, 10);
		r = token_request(family, F1, TETHER_F_STRICT, &fx->tokens[10]);
		expect_token_hit(fx, "draining slot 10 before its deadline, TOKEN|STRICT", &r, 10);
		r = request(family, F1, TETHER_F_KEY);
		r.key = key;
		expect_key_hit(fx, "draining slot 10 before its deadline, its key", &r, 10);
		r.flags |= TETHER_F_STRICT;
		expect_key_hit(fx, "draining slot 10 before its deadline, its key, STRICT", &r, 10);
		r = request(family, F1, TETHER_F_KEY);
		r.key = moved.key;
		expect_key_hit(fx, "draining slot 10 before its deadline, the moved key", &r, 10);
	}

	/* New keys and flows never go there: the table still names it ... */
	CHECK(pool_contains(fx, F1, 10), "draining", "the pool lost slot 10 without a rebuild");
	int probed = expect_new_work_avoids(fx, "draining slot 10 still in the table", 10, 200, 100);

	CHECK(probed > 0, "draining", "no new key landed on slot 10 first: probing untested");
	expect_probing_skips(fx, "draining slot 10 still in the table", F1, 10, 40);

	/* ... after the controller rebuilt the pool without it ... */
	fixture_rebuild_pool(fx, F1);
	CHECK(!pool_contains(fx, F1, 10), "draining", "the rebuilt pool still names slot 10");
	expect_new_work_avoids(fx, "draining slot 10, pool rebuilt without it", 10, 100, 50);

	/* ... and in a table built with it on purpose. */
	install_pool(fx, F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS);
	CHECK(pool_contains(fx, F1, 10), "draining", "the pool built with slot 10 lacks it");
	expect_probing_skips(fx, "draining slot 10 in a table built with it", F1, 10, 60);

	/* All along, its token and key still hit. */
	struct req r = token_request(6, F1, 0, &fx->tokens[10]);

	expect_token_hit(fx, "draining slot 10 before its deadline, TOKEN, at the end", &r, 10);
	r = request(4, F1, TETHER_F_KEY);
	r.key = key;
	expect_key_hit(fx, "draining slot 10 before its deadline, its key, at the end", &r, 10);
}

static void test_draining_past_deadline_is_gone(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats delta;
	__u64 key = learn_key(fx, "drained: learn a key on slot 10", F1, 10);
	__u64 key_strict_first = learn_key(fx, "drained: learn a second key on slot 10", F1, 10);

	assert_int_equal(container_set_state(&fx->dp, 10, CONTAINER_DRAINING, seconds_ago(1)), 0);

	expect_token_misses(fx, "draining slot 10 past its deadline, its token", F1,
			    &fx->tokens[10], MISS);

	/* Its affinities: STRICT answers CONTAINER_GONE and keeps the entry; */
	for (int family = 4; family <= 6; family += 2) {
		struct req r = request(family, F1, TETHER_F_KEY | TETHER_F_STRICT);
		struct affinity_value value;

		r.key = key_strict_first;
		send_req(fx, "key of drained slot 10, STRICT", &r, &delta);
		expect_stats("key of drained slot 10, STRICT", &delta,
			     &(struct tether_stats){ .strict_gone = 1 });
		expect_slow_path("key of drained slot 10, STRICT", TETHER_STATUS_CONTAINER_GONE);
		CHECK(affinity_get(fx, F1, r.key, &value) == 0 && value.slot == 10,
		      "key of drained slot 10, STRICT", "the entry changed");
	}
	/* without STRICT they re-home, and stay where they went. */
	__u64 keys[] = { key, key_strict_first };

	for (size_t i = 0; i < 2; i++) {
		struct req r = request(4, F1, TETHER_F_KEY);

		r.key = keys[i];
		long slot = expect_key_placed(fx, "key of drained slot 10", &r,
					      (struct tether_stats){ 0 }, 1);

		CHECK(slot != 10, "key of drained slot 10", "re-homed onto the drained slot");
		r.family = 6;
		expect_key_hit(fx, "key of drained slot 10, after re-homing", &r, slot);
	}
	expect_new_work_avoids(fx, "drained slot 10 still in the table", 10, 100, 50);
	expect_probing_skips(fx, "drained slot 10 still in the table", F1, 10, 20);
}

static void test_starting_container_gets_nothing(void **state)
{
	struct fixture *fx = *state;
	struct tether_token token;

	assert_int_equal(container_install(&fx->dp, 14, F1, B_LOCAL, CONTAINER_STARTING, &token), 0);
	expect_token_misses(fx, "starting slot 14's token", F1, &token, MISS);

	/* Even named by the table, it gets no new key. */
	install_pool(fx, F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS + 1);
	CHECK(pool_contains(fx, F1, 14), "starting", "the pool built with slot 14 lacks it");
	expect_probing_skips(fx, "starting slot 14 in the table", F1, 14, 30);
	expect_new_work_avoids(fx, "starting slot 14 in the table", 14, 60, 30);

	/* Control: warm, the same token hits. */
	assert_int_equal(container_set_state(&fx->dp, 14, CONTAINER_WARM, 0), 0);
	struct req r = token_request(4, F1, 0, &token);

	expect_token_hit(fx, "slot 14 warm now, its token", &r, 14);
}

/* ---- backends --------------------------------------------------------------- */

/* New keys and flows of F1 land on backend 2 (or go to the slow path when
 * all probed entries are on backend 1); F2, all on backend 1, has no
 * capacity. Returns how many F1 keys went to the slow path. */
static int expect_new_work_off_backend_1(struct fixture *fx, const char *what)
{
	char name[192];
	int slow = 0;

	for (int i = 0; i < 120; i++) {
		struct req r = request(i & 1 ? 6 : 4, F1, TETHER_F_KEY);

		r.key = next_key++;
		snprintf(name, sizeof(name), "%s, new F1 key %llu", what, (unsigned long long)r.key);
		long slot = expect_key_placed(fx, name, &r, (struct tether_stats){ 0 }, 0);

		if (slot < 0)
			slow++;
		else
			CHECK(fixture_backend_of((__u32)slot) == B_REMOTE, name,
			      "new key placed on slot %ld of backend 1", slot);
	}
	for (int i = 0; i < 60; i++) {
		struct req r = request(i & 1 ? 6 : 4, F1, 0);

		snprintf(name, sizeof(name), "%s, new F1 flow %d", what, i);
		long slot = expect_flow(fx, name, &r, (struct tether_stats){ 0 });

		CHECK(slot < 0 || fixture_backend_of((__u32)slot) == B_REMOTE, name,
		      "new flow sent to slot %ld of backend 1", slot);
	}
	for (int i = 0; i < 20; i++) {
		struct req r = request(i & 1 ? 6 : 4, F2, i < 10 ? TETHER_F_KEY : 0);

		r.key = next_key++;
		snprintf(name, sizeof(name), "%s, new F2 %s %d", what, i < 10 ? "key" : "flow", i);
		long slot = i < 10 ? expect_key_placed(fx, name, &r, (struct tether_stats){ 0 }, 0)
				   : expect_flow(fx, name, &r, (struct tether_stats){ 0 });

		CHECK(slot < 0, name, "F2 request placed on slot %ld of backend 1", slot);
	}
	/* Keys whose first entry is on backend 1 probe to backend 2. */
	expect_probing_skips(fx, what, F1, 10, 15);
	expect_probing_skips(fx, what, F1, 11, 15);
	return slow;
}

static void test_backend_missing_heartbeats_loses_everything_at_once(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats delta;
	__u64 key10 = learn_key(fx, "heartbeat: learn a key on slot 10", F1, 10);
	__u64 key12 = learn_key(fx, "heartbeat: learn a key on slot 12", F1, 12);
	__u64 key20 = learn_key(fx, "heartbeat: learn an F2 key on slot 20", F2, 20);

	/* A heartbeat deadline in the future changes nothing. */
	set_backend(fx, B_LOCAL, BACKEND_UP, monotonic_ns() + 30 * NS_PER_S);
	struct req r = token_request(4, F1, 0, &fx->tokens[10]);

	expect_token_hit(fx, "backend 1 heartbeat due later, slot 10 token", &r, 10);
	r = request(4, F1, TETHER_F_KEY);
	r.key = key10;
	expect_key_hit(fx, "backend 1 heartbeat due later, slot 10 key", &r, 10);

	/* Missed: no pool rebuild, no container change. */
	set_backend(fx, B_LOCAL, BACKEND_UP, seconds_ago(1));
	expect_token_misses(fx, "backend 1 missed heartbeats, slot 10 token", F1, &fx->tokens[10],
			    MISS);
	expect_token_misses(fx, "backend 1 missed heartbeats, slot 11 token", F1, &fx->tokens[11],
			    MISS);
	expect_token_misses(fx, "backend 1 missed heartbeats, F2 slot 20 token", F2,
			    &fx->tokens[20], MISS);
	expect_token_misses(fx, "backend 1 missed heartbeats, F2 slot 21 token", F2,
			    &fx->tokens[21], MISS);
	r = token_request(4, F1, TETHER_F_STRICT, &fx->tokens[12]);
	expect_token_hit(fx, "backend 1 missed heartbeats, backend 2's slot 12 token", &r, 12);

	r = request(4, F1, TETHER_F_KEY | TETHER_F_STRICT);
	r.key = key10;
	send_req(fx, "backend 1 missed heartbeats, slot 10 key, STRICT", &r, &delta);
	expect_stats("backend 1 missed heartbeats, slot 10 key, STRICT", &delta,
		     &(struct tether_stats){ .strict_gone = 1 });
	expect_slow_path("backend 1 missed heartbeats, slot 10 key, STRICT",
			 TETHER_STATUS_CONTAINER_GONE);
	r.flags = TETHER_F_KEY;
	long slot = expect_key_placed(fx, "backend 1 missed heartbeats, slot 10 key", &r,
				      (struct tether_stats){ 0 }, 1);
	CHECK(slot < 0 || fixture_backend_of((__u32)slot) == B_REMOTE,
	      "backend 1 missed heartbeats, slot 10 key", "re-homed to slot %ld", slot);
	r.key = key12;
	expect_key_hit(fx, "backend 1 missed heartbeats, slot 12 key", &r, 12);
	r = request(4, F2, TETHER_F_KEY);
	r.key = key20;
	send_req(fx, "backend 1 missed heartbeats, F2 key of slot 20", &r, &delta);
	expect_stats("backend 1 missed heartbeats, F2 key of slot 20", &delta,
		     &(struct tether_stats){ .no_capacity = 1 });
	expect_slow_path("backend 1 missed heartbeats, F2 key of slot 20",
			 TETHER_STATUS_NO_CAPACITY);

	CHECK(pool_contains(fx, F1, 10) && pool_contains(fx, F1, 11), "heartbeat",
	      "the pool changed without a rebuild");
	expect_new_work_off_backend_1(fx, "backend 1 missed heartbeats");

	/* A heartbeat brings it back, at once. */
	set_backend(fx, B_LOCAL, BACKEND_UP, monotonic_ns() + 30 * NS_PER_S);
	r = token_request(4, F1, 0, &fx->tokens[10]);
	expect_token_hit(fx, "backend 1 heartbeat again, slot 10 token", &r, 10);
}

static void test_draining_backend_keeps_tokens_and_affinities(void **state)
{
	struct fixture *fx = *state;
	__u64 key10 = learn_key(fx, "backend draining: learn a key on slot 10", F1, 10);
	__u64 key21 = learn_key(fx, "backend draining: learn an F2 key on slot 21", F2, 21);

	set_backend(fx, B_LOCAL, BACKEND_DRAINING, 0);
	for (__u32 slot = 10; slot <= 11; slot++) {
		struct req r = token_request(slot & 1 ? 6 : 4, F1, TETHER_F_STRICT, &fx->tokens[slot]);

		expect_token_hit(fx, "backend 1 draining, F1 token", &r, slot);
	}
	for (__u32 slot = 20; slot <= 21; slot++) {
		struct req r = token_request(4, F2, 0, &fx->tokens[slot]);

		expect_token_hit(fx, "backend 1 draining, F2 token", &r, slot);
	}
	struct req r = request(4, F1, TETHER_F_KEY | TETHER_F_STRICT);

	r.key = key10;
	expect_key_hit(fx, "backend 1 draining, slot 10 key, STRICT", &r, 10);
	r.flags = TETHER_F_KEY;
	expect_key_hit(fx, "backend 1 draining, slot 10 key", &r, 10);
	r = request(6, F2, TETHER_F_KEY);
	r.key = key21;
	expect_key_hit(fx, "backend 1 draining, F2 slot 21 key", &r, 21);

	expect_new_work_off_backend_1(fx, "backend 1 draining");

	/* But a draining backend past its heartbeat deadline is down. */
	set_backend(fx, B_LOCAL, BACKEND_DRAINING, seconds_ago(1));
	expect_token_misses(fx, "backend 1 draining and missed heartbeats, slot 10 token", F1,
			    &fx->tokens[10], MISS);
}

static void test_down_backend_gets_nothing(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats delta;
	__u64 key11 = learn_key(fx, "backend down: learn a key on slot 11", F1, 11);

	set_backend(fx, B_LOCAL, BACKEND_DOWN, 0);
	for (__u32 slot = 10; slot <= 11; slot++) {
		char what[96];

		snprintf(what, sizeof(what), "backend 1 down, slot %u token", slot);
		expect_token_misses(fx, what, F1, &fx->tokens[slot], MISS);
	}
	expect_token_misses(fx, "backend 1 down, F2 slot 20 token", F2, &fx->tokens[20], MISS);

	struct req r = request(4, F1, TETHER_F_KEY | TETHER_F_STRICT);

	r.key = key11;
	send_req(fx, "backend 1 down, slot 11 key, STRICT", &r, &delta);
	expect_stats("backend 1 down, slot 11 key, STRICT", &delta,
		     &(struct tether_stats){ .strict_gone = 1 });
	expect_slow_path("backend 1 down, slot 11 key, STRICT", TETHER_STATUS_CONTAINER_GONE);
	r.flags = TETHER_F_KEY;
	long slot = expect_key_placed(fx, "backend 1 down, slot 11 key", &r,
				      (struct tether_stats){ 0 }, 1);

	CHECK(slot < 0 || fixture_backend_of((__u32)slot) == B_REMOTE, "backend 1 down, slot 11 key",
	      "re-homed to slot %ld of backend 1", slot);
	expect_new_work_off_backend_1(fx, "backend 1 down");
}

/* ---- STRICT ----------------------------------------------------------------- */

static void test_strict_outcomes(void **state)
{
	struct fixture *fx = *state;
	struct tether_stats delta;
	struct affinity_value value;
	const char *name;

	for (int family = 4; family <= 6; family += 2) {
		/* Token hit: forwarded. */
		struct req r = token_request(family, F1, TETHER_F_STRICT, &fx->tokens[13]);

		expect_token_hit(fx, "STRICT, token hit", &r, 13);

		/* Token hit with KEY: forwarded, the key moves there. */
		r = token_request(family, F1, TETHER_F_STRICT | TETHER_F_KEY, &fx->tokens[13]);
		r.key = key_picking(fx, F1, 11);
		expect_token_hit(fx, "STRICT, token hit with a new key", &r, 13);
		CHECK(affinity_get(fx, F1, r.key, &value) == 0 && value.slot == 13,
		      "STRICT, token hit with a new key", "the key was not learned on slot 13");

		/* Token miss: CONTAINER_GONE. */
		struct tether_token bad = fx->tokens[13];

		bad.secret ^= 1ULL << 40;
		r = token_request(family, F1, TETHER_F_STRICT, &bad);
		name = "STRICT, token miss";
		send_req(fx, name, &r, &delta);
		expect_stats(name, &delta, &(struct tether_stats){ .token_miss = 1, .strict_gone = 1 });
		expect_slow_path(name, TETHER_STATUS_CONTAINER_GONE);

		/* Token miss with a key that would hit: still CONTAINER_GONE. */
		__u64 key = learn_key(fx, "STRICT: learn a key on slot 12", F1, 12);

		r = token_request(family, F1, TETHER_F_STRICT | TETHER_F_KEY, &bad);
		r.key = key;
		name = "STRICT, token miss, key would hit";
		send_req(fx, name, &r, &delta);
		expect_stats(name, &delta, &(struct tether_stats){ .token_miss = 1, .strict_gone = 1 });
		expect_slow_path(name, TETHER_STATUS_CONTAINER_GONE);

		/* Key hit: forwarded. */
		r = request(family, F1, TETHER_F_STRICT | TETHER_F_KEY);
		r.key = key;
		expect_key_hit(fx, "STRICT, key hit", &r, 12);

		/* Key new: STRICT changes nothing without an entry. */
		r = request(family, F1, TETHER_F_STRICT | TETHER_F_KEY);
		r.key = next_key++;
		expect_key_placed(fx, "STRICT, new key", &r, (struct tether_stats){ 0 }, 0);

		/* Neither token nor key: the flow rule. */
		r = request(family, F1, TETHER_F_STRICT);
		expect_flow(fx, "STRICT, no TOKEN or KEY", &r, (struct tether_stats){ 0 });

		/* New key of a function without capacity: NO_CAPACITY. */
		r = request(family, FIXTURE_F_EMPTY, TETHER_F_STRICT | TETHER_F_KEY);
		r.key = next_key++;
		name = "STRICT, new key, no capacity";
		send_req(fx, name, &r, &delta);
		expect_stats(name, &delta, &(struct tether_stats){ .no_capacity = 1 });
		expect_slow_path(name, TETHER_STATUS_NO_CAPACITY);
	}

	/* Key entry whose container is gone: CONTAINER_GONE, entry kept. */
	__u64 key = learn_key(fx, "STRICT: learn a key on slot 11", F1, 11);

	assert_int_equal(container_remove(&fx->dp, 11), 0);
	fixture_rebuild_pool(fx, F1);
	for (int family = 4; family <= 6; family += 2) {
		struct req r = request(family, F1, TETHER_F_STRICT | TETHER_F_KEY);

		r.key = key;
		name = "STRICT, key entry gone";
		send_req(fx, name, &r, &delta);
		expect_stats(name, &delta, &(struct tether_stats){ .strict_gone = 1 });
		expect_slow_path(name, TETHER_STATUS_CONTAINER_GONE);
		CHECK(affinity_get(fx, F1, key, &value) == 0 && value.slot == 11, name,
		      "the entry changed");
	}
}

/* ---- no token crosses functions --------------------------------------------- */

static __u64 function_of(struct fixture *fx, __u32 slot)
{
	struct container_record c;

	return container_get(&fx->dp, slot, &c) ? 0 : c.function_id;
}

/* One token in one request: a genuine token of the request's function hits
 * its own slot; anything else misses (foreign when genuine but of another
 * function) and, when forwarded, reaches only a container of the request's
 * function. */
static void check_one_token(struct fixture *fx, const struct tether_token *t, int genuine,
			    __u64 function_id, __u8 flags, int family)
{
	__u32 slot = ntohl(t->slot);
	struct req r = token_request(family, function_id, flags, t);
	struct tether_stats delta;
	char name[192];

	r.key = next_key++;
	snprintf(name, sizeof(name), "%s token of slot %u, request for %#llx, flags %#x, IPv%d",
		 genuine ? "genuine" : "forged", slot, (unsigned long long)function_id, r.flags,
		 family);
	send_req(fx, name, &r, &delta);

	if (genuine && function_of(fx, slot) == function_id) {
		expect_stats(name, &delta, &(struct tether_stats){ .token_hit = 1 });
		expect_forwarded(fx, name, function_id, slot);
		return;
	}
	CHECK(genuine ? delta.token_foreign == 1 && delta.token_miss == 0
		      : delta.token_miss == 1 && delta.token_foreign == 0,
	      name, "token_miss %+lld token_foreign %+lld", (long long)delta.token_miss,
	      (long long)delta.token_foreign);
	CHECK(delta.token_hit == 0, name, "counted a token hit");
	if (r.flags & TETHER_F_STRICT) {
		expect_slow_path(name, TETHER_STATUS_CONTAINER_GONE);
	} else if (res.verdict == XDP_PASS) {
		CHECK(function_id == FIXTURE_F_EMPTY, name, "slow path for a function with capacity");
		expect_slow_path(name, TETHER_STATUS_NO_CAPACITY);
	} else {
		/* Forwarded: the chosen slot's function is the request's. */
		expect_forwarded(fx, name, function_id, -1);
	}
}

static void test_no_token_routes_to_another_function(void **state)
{
	struct fixture *fx = *state;
	const __u64 functions[] = { F1, F2, FIXTURE_F_EMPTY };
	const __u8 flag_sets[] = { 0, TETHER_F_KEY, TETHER_F_STRICT,
				   TETHER_F_KEY | TETHER_F_STRICT };
	__u32 slots[FIXTURE_F1_CONTAINERS + FIXTURE_F2_CONTAINERS];
	size_t n_slots = 0, checked = 0;

	for (__u32 s = 0; s < FIXTURE_F1_CONTAINERS; s++)
		slots[n_slots++] = FIXTURE_F1_FIRST_SLOT + s;
	for (__u32 s = 0; s < FIXTURE_F2_CONTAINERS; s++)
		slots[n_slots++] = FIXTURE_F2_FIRST_SLOT + s;

	/* Every slot's generation and secret under every slot number: the real
	 * tokens (a == b) and every forged mix (a != b), for every function
	 * and flag set. */
	for (size_t a = 0; a < n_slots; a++) {
		for (size_t b = 0; b < n_slots; b++) {
			struct tether_token t = fx->tokens[slots[b]];

			t.slot = htonl(slots[a]);
			for (size_t f = 0; f < 3; f++) {
				for (size_t fl = 0; fl < 4; fl++) {
					int family = (a + b + f + fl) & 1 ? 6 : 4;

					check_one_token(fx, &t, a == b, functions[f], flag_sets[fl],
							family);
					checked++;
				}
			}
		}
	}
	CHECK(checked == n_slots * n_slots * 3 * 4, "no token crosses functions",
	      "checked %zu requests", checked);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_cmocka_setup, fixture_cmocka_teardown)
		T(test_foreign_token_never_routes_and_falls_back),
		T(test_token_with_wrong_secret_misses),
		T(test_token_with_wrong_generation_misses),
		T(test_token_with_slot_out_of_range_misses),
		T(test_token_of_free_slot_misses),
		T(test_token_of_removed_container_misses),
		T(test_reused_slot_old_token_misses_new_token_hits),
		T(test_draining_before_deadline_keeps_tokens_and_affinities),
		T(test_draining_past_deadline_is_gone),
		T(test_starting_container_gets_nothing),
		T(test_backend_missing_heartbeats_loses_everything_at_once),
		T(test_draining_backend_keeps_tokens_and_affinities),
		T(test_down_backend_gets_nothing),
		T(test_strict_outcomes),
		T(test_no_token_routes_to_another_function),
#undef T
	};

	fixture_enter_netns();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
