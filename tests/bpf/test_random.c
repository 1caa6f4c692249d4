// SPDX-License-Identifier: MIT
/* A seeded, reproducible randomised run of the real XDP program: more than a
 * hundred thousand frames through BPF_PROG_TEST_RUN against the fixture's
 * world (tests/lib/fixture.h), which is itself changed between batches.
 *
 * Traffic, per frame one of:
 *   (a) valid requests: IPv4/IPv6, 0-2 VLAN tags (802.1Q or QinQ), IPv4
 *       options or IPv6 extension headers, Ethernet padding, flags among
 *       KEY/TOKEN/STRICT, function F1, F2, FIXTURE_F_EMPTY or random, keys
 *       from a small and a large set, tokens valid for the function, of
 *       another function, of removed containers, random, bit-flipped, zero;
 *   (b) a valid request mutated: bits flipped, bytes overwritten, truncated,
 *       extended, a Tether field or a length field rewritten;
 *   (c) random bytes (14..300) behind a plausible EtherType;
 *   (d) other traffic: ARP, TCP, ICMP, other ports and addresses, fragments,
 *       a third VLAN tag, an over-long IPv6 chain, broken Tether headers.
 * Between batches (about every 5,000 frames) the world changes: containers
 * drain (deadline past or future), go, are removed and reinstalled (new
 * token; the old one is remembered as gone), warm up; backends miss their
 * heartbeats and recover, drain, go down, move onto a VLAN or off it; an
 * egress interface disappears from
 * tx_ports and comes back; pools are rebuilt (or left stale, as when the
 * controller lags). The test keeps its own model of containers, backends,
 * pools, tx_ports and the affinities learned, and checks it against the maps.
 *
 * For every frame it checks the invariants below. A reference classifier
 * (written from DESIGN.md and the documented bounds of bpf/parse.h, sharing
 * no code with the program) says what each frame is: not for a service,
 * malformed, a fragment, or a request; for the few corners the spec leaves
 * open (an IP header that cannot be read, an IPv6 extension header running
 * past the packet) it accepts either outcome and counts them. For every
 * request, a model of the routing rules predicts the exact decision: token,
 * affinity, pool pick with its probes, slot, verdict, counters.
 *   1. BPF_PROG_TEST_RUN succeeds; the verdict is PASS, DROP, TX or REDIRECT.
 *   2. TX/REDIRECT only for a request to a service address; the output is
 *      stamped with the token of a container of the request's function that
 *      accepts work now, on a backend that takes work; checksum valid; the
 *      backend's MACs and VLAN tagging (the client's tags gone, the
 *      backend's one 802.1Q tag, PCP 0, when it has a VLAN); TX iff the
 *      backend is on the ingress interface; from the L3 header on, no other
 *      byte changed.
 *   3. A TOKEN request with a valid token of an accepting container of its
 *      function goes to exactly that container.
 *   4. A request passed to the slow path carries status NO_CAPACITY or
 *      CONTAINER_GONE and a valid checksum; anything else passed is unchanged.
 *   5. Exactly one decision counter per frame (a token that wins is itself
 *      the decision), token counters only for TOKEN requests, and the verdict
 *      agrees with the counter.
 * At the end: per-container packet and byte counters and the whole affinity
 * map agree with the model, and every decision counter was exercised (but
 * retag_failed: BPF_PROG_TEST_RUN always leaves the headroom a tag needs, so
 * it must stay 0; shed and shed_dropped: the world sets no budget for
 * the slow path, whose admission depends on the clock and is tested in
 * test_admission; and the counters of concurrency limits, completions and
 * liveness, which this world never sets up: tests/bpf/test_load.c), frames
 * forwarded to backends with and without a VLAN.
 *
 * Environment: TETHER_TEST_SEED (default below), TETHER_TEST_PACKETS (default
 * 200000), TETHER_TEST_REPORTS (failing frames reported in full, default 3;
 * the first frame failing each kind of check is always reported), and
 * TETHER_TEST_VERBOSE (print each change of the world). A failure prints the
 * seed, the frame's index and description, the reference's verdict, expected
 * and got, hexdumps and the world; the run goes on and ends with a count of
 * failing frames per kind of check. Everything but the containers' random
 * secrets follows from the seed, so the same seed replays the same frames and
 * decisions (TETHER_TEST_PACKETS=index+1 stops right after a failing frame). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "fixture.h"
#include "tether/hash.h"
#include "tether_xdp.skel.h"

#define DEFAULT_SEED 0x7e7e7e5eed5eedULL
#define DEFAULT_PACKETS 200000
#define BATCH_MIN 4000
#define BATCH_SPREAD 2001

#define VIP_PORT PKT_TEST_VIP_PORT
#define NSLOTS 40 /* model covers slots 0..NSLOTS-1; only the ones below are used */
#define EXTRA_FIRST_SLOT 30 /* token-only containers: in no pool */
#define BACKEND_THIRD 3 /* added by this test, on tx1 */
#define NBACKENDS 4     /* ids 1..3 */
#define GONE_TOKENS 64
#define SMALL_KEYS 16
#define LARGE_KEY_SPACE (1u << 20)
#define POOL_CAP 4096
#define FRAME_CAP HARNESS_FRAME_MAX
#define MAX_EXT_WALKED 4 /* bpf/parse.h: the IPv6 chain the router walks */

#define ETH_P_IPV4_ 0x0800
#define ETH_P_IPV6_ 0x86dd
#define ETH_P_ARP_ 0x0806
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88a8

/* ---- PRNG: splitmix64 -------------------------------------------------------- */

static __u64 rng_state;

static __u64 next64(void)
{
	__u64 z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static __u32 below(__u32 n)
{
	return n ? (__u32)(next64() % n) : 0;
}

static int percent(unsigned p)
{
	return below(100) < p;
}

static void fill_random(__u8 *p, size_t n)
{
	while (n) {
		__u64 r = next64();
		size_t k = n < 8 ? n : 8;

		memcpy(p, &r, k);
		p += k;
		n -= k;
	}
}

/* ---- bytes ------------------------------------------------------------------- */


static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = (__u8)v;
}

static void put32(__u8 *p, __u32 v)
{
	put16(p, v >> 16);
	put16(p + 2, (__u16)v);
}

/* ---- counters ------------------------------------------------------------------ */

enum ctr {
	C_TOKEN_HIT,
	C_TOKEN_MISS,
	C_TOKEN_FOREIGN,
	C_KEY_HIT,
	C_KEY_NEW,
	C_KEY_REHOMED,
	C_FLOW_PICK,
	C_NO_CAPACITY,
	C_STRICT_GONE,
	C_MALFORMED,
	C_FRAGMENT,
	C_PASS,
	C_NO_ROUTE,
	C_RETAG_FAILED,
	C_SHED,
	C_SHED_DROPPED,
	C_TOKEN_OVERFLOW,
	C_KEY_OVERFLOW,
	C_FULL,
	C_DONE,
	C_DONE_STALE,
	C_DONE_FORGED,
	C_LOST_FIXED,
	C_ALIVE,
	C_ALIVE_REPLAYED,
	C_ALIVE_FORGED,
	C_COMPLETION_BAD,
	C_ENCAP_VXLAN,
	C_ENCAP_IPIP,
	C_FIB_NO_ROUTE,
	C_FIB_NO_NEIGH,
	C_TOO_BIG,
	C_ENCAP_SLOW,
	C_ENCAP_FAILED,
	C_COUNT
};

#define FIRST_DECISION C_KEY_HIT
#define CTR_AT(name, index) \
	_Static_assert(offsetof(struct tether_stats, name) == (index) * sizeof(__u64), #name)
CTR_AT(token_hit, C_TOKEN_HIT);
CTR_AT(token_miss, C_TOKEN_MISS);
CTR_AT(token_foreign, C_TOKEN_FOREIGN);
CTR_AT(key_hit, C_KEY_HIT);
CTR_AT(key_new, C_KEY_NEW);
CTR_AT(key_rehomed, C_KEY_REHOMED);
CTR_AT(flow_pick, C_FLOW_PICK);
CTR_AT(no_capacity, C_NO_CAPACITY);
CTR_AT(strict_gone, C_STRICT_GONE);
CTR_AT(malformed, C_MALFORMED);
CTR_AT(fragment, C_FRAGMENT);
CTR_AT(pass, C_PASS);
CTR_AT(no_route, C_NO_ROUTE);
CTR_AT(retag_failed, C_RETAG_FAILED);
CTR_AT(shed, C_SHED);
CTR_AT(shed_dropped, C_SHED_DROPPED);
CTR_AT(token_overflow, C_TOKEN_OVERFLOW);
CTR_AT(key_overflow, C_KEY_OVERFLOW);
CTR_AT(full, C_FULL);
CTR_AT(done, C_DONE);
CTR_AT(done_stale, C_DONE_STALE);
CTR_AT(done_forged, C_DONE_FORGED);
CTR_AT(lost_fixed, C_LOST_FIXED);
CTR_AT(alive, C_ALIVE);
CTR_AT(alive_replayed, C_ALIVE_REPLAYED);
CTR_AT(alive_forged, C_ALIVE_FORGED);
CTR_AT(completion_bad, C_COMPLETION_BAD);
CTR_AT(encap_vxlan, C_ENCAP_VXLAN);
CTR_AT(encap_ipip, C_ENCAP_IPIP);
CTR_AT(fib_no_route, C_FIB_NO_ROUTE);
CTR_AT(fib_no_neigh, C_FIB_NO_NEIGH);
CTR_AT(too_big, C_TOO_BIG);
CTR_AT(encap_slow, C_ENCAP_SLOW);
CTR_AT(encap_failed, C_ENCAP_FAILED);
_Static_assert(sizeof(struct tether_stats) == C_COUNT * sizeof(__u64), "every counter known");

static const char *const ctr_name[C_COUNT] = {
	"token_hit", "token_miss",  "token_foreign", "key_hit",   "key_new",
	"key_rehomed", "flow_pick", "no_capacity",   "strict_gone", "malformed",
	"fragment",  "pass",        "no_route",    "retag_failed", "shed", "shed_dropped",
	"token_overflow", "key_overflow", "full", "done", "done_stale", "done_forged",
	"lost_fixed", "alive", "alive_replayed", "alive_forged", "completion_bad",
	"encap_vxlan", "encap_ipip", "fib_no_route", "fib_no_neigh", "too_big", "encap_slow", "encap_failed",
};

static __u64 ctr_of(const struct tether_stats *s, int i)
{
	return ((const __u64 *)s)[i];
}

/* ---- the model ----------------------------------------------------------------- */

struct mslot {
	int live; /* installed: state != CONTAINER_FREE */
	__u32 state;
	__u64 function_id;
	__u32 backend;
	__u32 generation; /* stays when removed, as the library keeps it */
	__u64 secret;
	__u64 deadline;
	__u8 token[16]; /* wire bytes */
	__u64 fwd_packets, fwd_bytes; /* forwarded to the slot's container (zeroed on install) */
};

struct mbackend {
	__u32 state; /* BACKEND_FREE: deleted (backend_del); ifindex and MACs kept to re-add */
	__u64 expiry;
	__u32 ifindex;
	__u8 mac[6], src_mac[6];
	__u16 vlan; /* 0: untagged */
};

struct mpool {
	__u64 function_id;
	__u32 first, count; /* the fixture's slot range of the function */
	__u32 members;      /* bit per slot offset: warm at the last rebuild */
	__u32 size;         /* 0: no pool */
	__u32 table[POOL_CAP];
};

struct aff {
	__u64 function_id, routing_key;
	__u32 slot, generation;
	int used;
};

static const __u32 model_slots[] = { 10, 11, 12, 13, 20, 21, 30, 31, 32, 33 };
#define NMODEL (sizeof(model_slots) / sizeof(model_slots[0]))

static struct fixture fx;
static struct mslot slots[NSLOTS];
static struct mbackend backends[NBACKENDS];
static __u32 ifindexes[3]; /* lo, tx0, tx1 */
static int port_present[3];
static struct mpool pools[2];
static __u8 gone_tokens[GONE_TOKENS][16];
static unsigned gone_count, gone_next;
static struct aff *aff_table;
static size_t aff_cap, aff_count;
static __u8 vip4[16], vip6[16], vip4_mapped[16]; /* vip4: the first 4 bytes */

static __u64 seed;
static long packets_total;
static long max_reports; /* frames reported in full, beyond the first of each kind */
#define MAX_FAILING_FRAMES 10000 /* then the run stops */

static const char *fname(__u64 f)
{
	static char buf[4][24];
	static int i;

	if (f == FIXTURE_F1)
		return "F1";
	if (f == FIXTURE_F2)
		return "F2";
	if (f == FIXTURE_F_EMPTY)
		return "F_EMPTY";
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "0x%llx", (unsigned long long)f);
	return buf[i];
}

static const char *cstate_name(__u32 s)
{
	static const char *const names[] = { "free", "starting", "warm", "draining", "gone" };

	return s < 5 ? names[s] : "?";
}

static const char *bstate_name(__u32 s)
{
	static const char *const names[] = { "free", "up", "draining", "down" };

	return s < 4 ? names[s] : "?";
}

static void die(const char *what, int err)
{
	fprintf(stderr, "test_random: seed=0x%llx: %s failed: %d (%s)\n",
		(unsigned long long)seed, what, err, strerror(err < 0 ? -err : err));
	fail_msg("%s failed: %d", what, err);
}

static int port_index(__u32 ifindex)
{
	for (int i = 0; i < 3; i++)
		if (ifindexes[i] == ifindex)
			return i;
	return -1;
}

static int port_up(__u32 ifindex)
{
	int i = port_index(ifindex);

	return i >= 0 && port_present[i];
}

/* Far from now either way, so the coarse clock in BPF cannot disagree. */
static __u64 time_past(void)
{
	return percent(50) ? 1 : monotonic_ns() - 1000000000ull;
}

static __u64 time_future(void)
{
	return monotonic_ns() + 3600ull * 1000000000ull;
}

/* ---- affinity model ------------------------------------------------------------- */

static size_t aff_slot_of(__u64 f, __u64 key)
{
	return (size_t)tether_mix64(key ^ tether_mix64(f ^ 0x5bd1e995)) & (aff_cap - 1);
}

static struct aff *aff_find(__u64 f, __u64 key)
{
	for (size_t i = aff_slot_of(f, key);; i = (i + 1) & (aff_cap - 1)) {
		struct aff *a = &aff_table[i];

		if (!a->used)
			return NULL;
		if (a->function_id == f && a->routing_key == key)
			return a;
	}
}

static void aff_set(__u64 f, __u64 key, __u32 slot, __u32 generation)
{
	struct aff *a = aff_find(f, key);

	if (!a) {
		if ((aff_count + 1) * 2 > aff_cap)
			fail_msg("affinity model full");
		size_t i = aff_slot_of(f, key);

		while (aff_table[i].used)
			i = (i + 1) & (aff_cap - 1);
		a = &aff_table[i];
		a->used = 1;
		a->function_id = f;
		a->routing_key = key;
		aff_count++;
	}
	a->slot = slot;
	a->generation = generation;
}

/* ---- world: changes made through the library, mirrored in the model ---------------- */

static __u64 range_function(__u32 slot)
{
	if (slot >= FIXTURE_F1_FIRST_SLOT && slot < FIXTURE_F1_FIRST_SLOT + FIXTURE_F1_CONTAINERS)
		return FIXTURE_F1;
	if (slot >= FIXTURE_F2_FIRST_SLOT && slot < FIXTURE_F2_FIRST_SLOT + FIXTURE_F2_CONTAINERS)
		return FIXTURE_F2;
	return 0;
}

static void slot_from_token(__u32 slot, const struct tether_token *t)
{
	struct mslot *m = &slots[slot];

	if (ntohl(t->slot) != slot || ntohl(t->generation) != m->generation + 1 || !t->secret)
		fail_msg("container_install(%u) minted token slot %u generation %u (model %u+1)",
			 slot, ntohl(t->slot), ntohl(t->generation), m->generation);
	m->generation = ntohl(t->generation);
	m->secret = t->secret;
	memcpy(m->token, t, 16);
}

static void slot_install(__u32 slot, __u64 f, __u32 backend, __u32 state)
{
	struct tether_token t;
	int err = container_install(&fx.dp, slot, f, backend, state, &t);

	if (err)
		die("container_install", err);
	slot_from_token(slot, &t);
	/* A new container's counters start at zero. */
	slots[slot].fwd_packets = slots[slot].fwd_bytes = 0;
	slots[slot].live = 1;
	slots[slot].state = state;
	slots[slot].function_id = f;
	slots[slot].backend = backend;
	slots[slot].deadline = 0;
}

static void slot_remove(__u32 slot)
{
	int err = container_remove(&fx.dp, slot);

	if (err)
		die("container_remove", err);
	memcpy(gone_tokens[gone_next], slots[slot].token, 16);
	gone_next = (gone_next + 1) % GONE_TOKENS;
	if (gone_count < GONE_TOKENS)
		gone_count++;
	slots[slot].live = 0;
	slots[slot].state = CONTAINER_FREE;
	slots[slot].secret = 0;
	slots[slot].function_id = 0;
	slots[slot].backend = 0;
	slots[slot].deadline = 0;
}

static void slot_set_state(__u32 slot, __u32 state, __u64 deadline)
{
	int err = container_set_state(&fx.dp, slot, state, deadline);

	if (err)
		die("container_set_state", err);
	slots[slot].state = state;
	slots[slot].deadline = state == CONTAINER_DRAINING ? deadline : 0;
}

static void backend_write(__u32 id)
{
	struct mbackend *b = &backends[id];
	struct backend_record r = {
		.heartbeat_expiry_ns = b->expiry, .state = b->state, .ifindex = b->ifindex,
		.vlan = b->vlan,
	};
	int err;

	if (b->state == BACKEND_FREE) {
		b->expiry = 0;
		if ((err = backend_del(&fx.dp, id)))
			die("backend_del", err);
		return;
	}
	memcpy(r.mac, b->mac, 6);
	if ((err = backend_set(&fx.dp, id, &r)))
		die("backend_set", err);
	port_present[port_index(b->ifindex)] = 1; /* backend_set adds the port */
	if ((err = backend_get(&fx.dp, id, &r)))
		die("backend_get", err);
	memcpy(b->src_mac, r.src_mac, 6);
}

static void port_set(int i, int present)
{
	int fd = bpf_map__fd(fx.dp.skel->maps.tx_ports);
	__u32 ifindex = ifindexes[i];

	if (present) {
		struct bpf_devmap_val v = { .ifindex = ifindex };

		if (bpf_map_update_elem(fd, &ifindex, &v, BPF_ANY))
			die("tx_ports update", -errno);
	} else if (bpf_map_delete_elem(fd, &ifindex) && errno != ENOENT) {
		die("tx_ports delete", -errno);
	}
	port_present[i] = present;
}

static void pool_refresh(struct mpool *p)
{
	__u32 size = 0;
	int err = pool_read(&fx.dp, p->function_id, p->table, POOL_CAP, &size);

	if (err == -ENOENT) {
		p->size = 0;
		if (p->members)
			fail_msg("pool of %s missing, model has members 0x%x", fname(p->function_id),
				 p->members);
		return;
	}
	if (err)
		die("pool_read", err);
	if (size == 0 || size > POOL_CAP)
		fail_msg("pool of %s has size %u", fname(p->function_id), size);
	p->size = size;

	__u32 seen = 0;

	for (__u32 i = 0; i < size; i++) {
		__u32 s = p->table[i];

		if (s < p->first || s >= p->first + p->count)
			fail_msg("pool of %s names slot %u outside its range", fname(p->function_id), s);
		seen |= 1u << (s - p->first);
	}
	if (seen != p->members)
		fail_msg("pool of %s holds slots 0x%x, model 0x%x", fname(p->function_id), seen,
			 p->members);
}

static void pool_rebuild(struct mpool *p)
{
	p->members = 0;
	for (__u32 i = 0; i < p->count; i++) {
		const struct mslot *m = &slots[p->first + i];

		if (m->live && m->state == CONTAINER_WARM)
			p->members |= 1u << i;
	}
	fixture_rebuild_pool(&fx, p->function_id);
	pool_refresh(p);
}

static struct mpool *pool_of(__u64 f)
{
	for (int i = 0; i < 2; i++)
		if (pools[i].function_id == f)
			return &pools[i];
	return NULL;
}

/* The maps say what the model says. */
static void verify_world(void)
{
	for (size_t i = 0; i < NMODEL; i++) {
		__u32 slot = model_slots[i];
		const struct mslot *m = &slots[slot];
		struct container_record r;
		int err = container_get(&fx.dp, slot, &r);

		if (!m->live) {
			if (err != -ENOENT || r.generation != m->generation || r.secret)
				fail_msg("slot %u: model free gen %u, map err %d gen %u state %u", slot,
					 m->generation, err, r.generation, r.state);
			continue;
		}
		if (err || r.state != m->state || r.function_id != m->function_id ||
		    r.backend_id != m->backend || r.generation != m->generation ||
		    r.secret != m->secret || r.drain_deadline_ns != m->deadline)
			fail_msg("slot %u: model %s %s backend %u gen %u, map err %d %s %s backend %u gen %u",
				 slot, cstate_name(m->state), fname(m->function_id), m->backend,
				 m->generation, err, cstate_name(r.state), fname(r.function_id),
				 r.backend_id, r.generation);
	}
	for (__u32 id = 1; id < NBACKENDS; id++) {
		const struct mbackend *b = &backends[id];
		struct backend_record r;
		int err = backend_get(&fx.dp, id, &r);

		if (b->state == BACKEND_FREE) {
			if (err != -ENOENT)
				fail_msg("backend %u: deleted in the model, backend_get says %d", id, err);
			continue;
		}
		if (err || r.state != b->state || r.heartbeat_expiry_ns != b->expiry ||
		    r.ifindex != b->ifindex || memcmp(r.mac, b->mac, 6) ||
		    memcmp(r.src_mac, b->src_mac, 6) || r.vlan != b->vlan)
			fail_msg("backend %u differs from the model (err %d)", id, err);
	}
	for (int i = 0; i < 3; i++) {
		struct bpf_devmap_val v;
		int present = bpf_map_lookup_elem(bpf_map__fd(fx.dp.skel->maps.tx_ports),
						  &ifindexes[i], &v) == 0;

		if (present != port_present[i])
			fail_msg("tx_ports entry of ifindex %u: map %d, model %d", ifindexes[i],
				 present, port_present[i]);
	}
	for (int i = 0; i < 2; i++)
		pool_refresh(&pools[i]);
}

static void world_init(void)
{
	fixture_setup(&fx);
	ifindexes[0] = fx.lo_ifindex;
	ifindexes[1] = fx.tx0_ifindex;
	ifindexes[2] = harness_ifindex("tx1");

	for (__u32 id = 1; id < NBACKENDS; id++) {
		struct mbackend *b = &backends[id];

		if (id == BACKEND_THIRD) {
			static const __u8 third_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x03, 0x03 };

			b->state = BACKEND_UP;
			b->ifindex = ifindexes[2];
			memcpy(b->mac, third_mac, 6);
			backend_write(id);
			continue;
		}
		struct backend_record r;
		int err = backend_get(&fx.dp, id, &r);

		if (err)
			die("backend_get", err);
		b->state = r.state;
		b->expiry = r.heartbeat_expiry_ns;
		b->ifindex = r.ifindex;
		memcpy(b->mac, r.mac, 6);
		memcpy(b->src_mac, r.src_mac, 6);
		b->vlan = r.vlan;
		port_present[port_index(r.ifindex)] = 1;
	}
	for (size_t i = 0; i < NMODEL; i++) {
		__u32 slot = model_slots[i];
		struct mslot *m = &slots[slot];
		struct container_record r;

		if (slot >= EXTRA_FIRST_SLOT)
			continue;
		int err = container_get(&fx.dp, slot, &r);

		if (err)
			die("container_get", err);
		m->live = 1;
		m->state = r.state;
		m->function_id = r.function_id;
		m->backend = r.backend_id;
		m->generation = r.generation;
		m->secret = r.secret;
		container_token(slot, &r, (struct tether_token *)m->token);
		if (memcmp(m->token, &fx.tokens[slot], 16))
			fail_msg("fixture token of slot %u differs from the map", slot);
	}
	/* Token-only containers: reachable by token (and the affinities a token
	 * moves), never by a pool. */
	slot_install(30, FIXTURE_F1, BACKEND_THIRD, CONTAINER_WARM);
	slot_install(31, FIXTURE_F2, BACKEND_THIRD, CONTAINER_WARM);
	slot_install(32, FIXTURE_F1, FIXTURE_BACKEND_REMOTE, CONTAINER_WARM);
	slot_install(33, FIXTURE_F2, FIXTURE_BACKEND_LOCAL, CONTAINER_DRAINING);
	slot_set_state(33, CONTAINER_DRAINING, time_future());

	pools[0].function_id = FIXTURE_F1;
	pools[0].first = FIXTURE_F1_FIRST_SLOT;
	pools[0].count = FIXTURE_F1_CONTAINERS;
	pools[1].function_id = FIXTURE_F2;
	pools[1].first = FIXTURE_F2_FIRST_SLOT;
	pools[1].count = FIXTURE_F2_CONTAINERS;
	for (int i = 0; i < 2; i++)
		pool_rebuild(&pools[i]);
	verify_world();
}

static __u32 random_live_slot(void)
{
	__u32 list[NMODEL];
	__u32 n = 0;

	for (size_t i = 0; i < NMODEL; i++)
		if (slots[model_slots[i]].live)
			list[n++] = model_slots[i];
	return n ? list[below(n)] : 0;
}

static __u64 install_function(__u32 slot)
{
	__u64 home = range_function(slot);

	if (!home || percent(15)) /* sometimes a container of the other function */
		return percent(50) ? FIXTURE_F1 : FIXTURE_F2;
	return home;
}

/* Everything up and warm again, so later batches route rather than starve. */
static void heal(char *log, size_t cap)
{
	for (__u32 id = 1; id < NBACKENDS; id++) {
		backends[id].state = BACKEND_UP;
		backends[id].expiry = percent(50) ? 0 : time_future();
		backend_write(id);
	}
	for (int i = 0; i < 3; i++)
		port_set(i, 1);
	for (size_t i = 0; i < NMODEL; i++) {
		__u32 slot = model_slots[i];

		if (!range_function(slot))
			continue;
		if (!slots[slot].live)
			slot_install(slot, range_function(slot), 1 + below(3), CONTAINER_WARM);
		else if (slots[slot].state != CONTAINER_WARM)
			slot_set_state(slot, CONTAINER_WARM, 0);
	}
	snprintf(log + strlen(log), cap - strlen(log), " heal");
}

static void mutate_world(char *log, size_t cap)
{
	int ops = 1 + below(4);

	log[0] = 0;
	if (percent(20)) {
		heal(log, cap);
		ops = below(2);
	}
	for (int op = 0; op < ops; op++) {
		size_t used = strlen(log);
		char *at = log + used;
		size_t room = cap - used;
		__u32 slot = random_live_slot();
		__u32 id = 1 + below(NBACKENDS - 1);

		switch (below(10)) {
		case 0:
		case 1: /* drain */
			if (!slot)
				break;
			{
				int past = percent(35);

				slot_set_state(slot, CONTAINER_DRAINING, past ? time_past() : time_future());
				snprintf(at, room, " drain(%u,%s)", slot, past ? "past" : "future");
			}
			break;
		case 2: /* gone */
			if (!slot)
				break;
			slot_set_state(slot, CONTAINER_GONE, 0);
			snprintf(at, room, " gone(%u)", slot);
			break;
		case 3:
		case 4: { /* remove and reinstall (or leave free) */
			__u32 s = model_slots[below(NMODEL)];

			if (slots[s].live)
				slot_remove(s);
			if (percent(80)) {
				__u64 f = install_function(s);
				__u32 b = 1 + below(NBACKENDS - 1);
				__u32 st = percent(80) ? CONTAINER_WARM : CONTAINER_STARTING;

				slot_install(s, f, b, st);
				snprintf(at, room, " reinstall(%u,%s,b%u,%s)", s, fname(f), b,
					 cstate_name(st));
			} else {
				snprintf(at, room, " remove(%u)", s);
			}
			break;
		}
		case 5: { /* warm up */
			__u32 s = model_slots[below(NMODEL)];

			if (slots[s].live && slots[s].state != CONTAINER_WARM) {
				slot_set_state(s, CONTAINER_WARM, 0);
				snprintf(at, room, " warm(%u)", s);
			}
			break;
		}
		case 6: { /* heartbeat expiry into the past, and back */
			__u32 expired = 0;

			for (__u32 b = 1; b < NBACKENDS; b++)
				if (backends[b].expiry && backends[b].expiry < monotonic_ns())
					expired = b;
			if (expired && percent(60)) {
				backends[expired].expiry = percent(50) ? 0 : time_future();
				backend_write(expired);
				snprintf(at, room, " heartbeat-back(b%u)", expired);
			} else {
				backends[id].expiry = time_past();
				backend_write(id);
				snprintf(at, room, " heartbeat-missed(b%u)", id);
			}
			break;
		}
		case 7: { /* backend state, or deleted; its VLAN, or none */
			static const __u32 states[] = { BACKEND_UP, BACKEND_UP, BACKEND_DRAINING,
							BACKEND_DOWN, BACKEND_FREE };

			backends[id].state = states[below(5)];
			backends[id].vlan = percent(50) ? 0 : (__u16)(1 + below(TETHER_VLAN_MAX));
			backend_write(id);
			snprintf(at, room, " backend(b%u,%s,vlan %u)", id, bstate_name(backends[id].state),
				 backends[id].vlan);
			break;
		}
		case 8:
		case 9: { /* an egress interface leaves tx_ports, or comes back */
			int i = (int)below(3);

			port_set(i, !port_present[i]);
			snprintf(at, room, " tx_port(%s,%s)", i == 0 ? "lo" : i == 1 ? "tx0" : "tx1",
				 port_present[i] ? "back" : "removed");
			break;
		}
		}
	}
	for (int i = 0; i < 2; i++) {
		if (percent(75)) {
			pool_rebuild(&pools[i]);
		} else {
			size_t used = strlen(log);

			snprintf(log + used, cap - used, " stale-pool(%s)", fname(pools[i].function_id));
		}
	}
	verify_world();
}

/* ---- frames ------------------------------------------------------------------- */

enum result_bits { R_NS = 1, R_MAL = 2, R_FRAG = 4, R_REQ = 8 };

struct pkt {
	long index;
	char cls; /* 'a' request, 'b' mutated, 'c' random, 'd' other */
	__u32 len;
	__u32 ingress;
	unsigned declared; /* the result by construction (a, d); 0 when unknown */
	char desc[768];
	__u8 in[FRAME_CAP]; /* last: the rest is cleared per frame */
};

static struct pkt P;
static __u8 build_buf[PKT_MAX_FRAME];

static void descf(struct pkt *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void descf(struct pkt *p, const char *fmt, ...)
{
	size_t n = strlen(p->desc);
	va_list ap;

	if (n >= sizeof(p->desc) - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(p->desc + n, sizeof(p->desc) - n, fmt, ap);
	va_end(ap);
}

static void set_frame(struct pkt *p, const __u8 *frame, size_t len)
{
	if (len == 0 || len > sizeof(p->in))
		fail_msg("generator: frame of %zu bytes (%s)", len, p->desc);
	memcpy(p->in, frame, len);
	p->len = (__u32)len;
}

static const __u64 small_keys[SMALL_KEYS] = {
	0, 1, 2, 3, 7, 42, 0x100, 0x1001, 0xdeadbeef, 0xffffffff, 1ull << 32, 1ull << 63,
	~0ull, 0x0123456789abcdefULL, 0x5445544554455445ULL, 0xfedcba9876543210ULL,
};

static __u64 pick_function(struct pkt *p)
{
	unsigned r = below(100);
	__u64 f;

	if (r < 45)
		f = FIXTURE_F1;
	else if (r < 75)
		f = FIXTURE_F2;
	else if (r < 87)
		f = FIXTURE_F_EMPTY;
	else
		do
			f = percent(50) ? next64() & 0xffff : next64();
		while (f == 0 || f == FIXTURE_F1 || f == FIXTURE_F2);
	descf(p, " F=%s", fname(f));
	return f;
}

static __u64 pick_key(struct pkt *p)
{
	if (percent(50)) {
		__u32 i = below(SMALL_KEYS);

		descf(p, " key=small[%u]", i);
		return small_keys[i];
	}
	__u32 i = below(LARGE_KEY_SPACE);

	descf(p, " key=large[%u]", i);
	return tether_mix64(i + 0x51515151ull);
}

static __u32 live_slots(__u64 f, int same, __u32 *out)
{
	__u32 n = 0;

	for (size_t i = 0; i < NMODEL; i++) {
		const struct mslot *m = &slots[model_slots[i]];

		if (m->live && (m->function_id == f) == !!same)
			out[n++] = model_slots[i];
	}
	return n;
}

static void describe_slot(struct pkt *p, const char *kind, __u32 s)
{
	const struct mslot *m = &slots[s];

	descf(p, " token=%s(slot %u gen %u %s %s b%u)", kind, s, m->generation,
	      fname(m->function_id), cstate_name(m->state), m->backend);
}

static void pick_token(struct pkt *p, __u64 f, __u8 tok[16])
{
	__u32 list[NMODEL], n;
	unsigned r = below(100);

	if (r < 40) {
		if ((n = live_slots(f, 1, list))) {
			__u32 s = list[below(n)];

			memcpy(tok, slots[s].token, 16);
			describe_slot(p, "valid", s);
			return;
		}
		r = 40;
	}
	if (r < 50) {
		if ((n = live_slots(f, 0, list))) {
			__u32 s = list[below(n)];

			memcpy(tok, slots[s].token, 16);
			describe_slot(p, "other-function", s);
			return;
		}
		r = 50;
	}
	if (r < 62) {
		if (gone_count) {
			__u32 i = below(gone_count);

			memcpy(tok, gone_tokens[i], 16);
			descf(p, " token=gone(slot %u gen %u)", pkt_get32(tok), pkt_get32(tok + 4));
			return;
		}
		r = 62;
	}
	if (r < 77) {
		if ((n = live_slots(f, 1, list)) || (n = live_slots(f, 0, list))) {
			__u32 s = list[below(n)], bits = 1 + below(3);

			memcpy(tok, slots[s].token, 16);
			describe_slot(p, "flipped", s);
			for (__u32 i = 0; i < bits; i++) {
				__u32 bit = below(128);

				tok[bit / 8] ^= (__u8)(1u << (bit % 8));
				descf(p, "^bit%u", bit);
			}
			return;
		}
		r = 77;
	}
	if (r < 85) {
		__u32 s = model_slots[below(NMODEL)];

		put32(tok, s);
		put32(tok + 4, below(6));
		fill_random(tok + 8, 8);
		descf(p, " token=guess(slot %u gen %u)", s, pkt_get32(tok + 4));
		return;
	}
	if (r < 93) {
		fill_random(tok, 16);
		descf(p, " token=random");
		return;
	}
	memset(tok, 0, 16);
	descf(p, " token=zero");
}

static void random_client(struct pkt_spec *s, int family)
{
	if (family == 4) {
		pkt_addr4(s->src_addr, PKT_TEST_CLIENT4);
		s->src_addr[3] = (__u8)(10 + below(8));
	} else {
		pkt_addr6(s->src_addr, PKT_TEST_CLIENT6);
		s->src_addr[15] = (__u8)(0x10 + below(8));
	}
	s->src_port = percent(70) ? (__u16)(PKT_TEST_CLIENT_PORT + below(16)) : (__u16)below(65536);
}

/* A spec for family with random L2/L3 shape; destination the VIP service. */
static void random_shape(struct pkt *p, struct pkt_spec *s, int family, int max_ext)
{
	pkt_spec_default(s, family);
	s->src_mac[5] = (__u8)below(256);
	unsigned r = below(100);

	s->vlan_count = r < 60 ? 0 : r < 85 ? 1 : 2;
	s->qinq = s->vlan_count == 2 && percent(50);
	if (s->vlan_count == 1 && percent(30))
		s->vlan_tpid[0] = ETH_P_8021AD_; /* one 802.1ad tag */
	s->vlan_tci[0] = (__u16)below(65536);
	s->vlan_tci[1] = (__u16)below(65536);
	s->tos = (__u8)below(256);
	s->ttl = (__u8)(1 + below(255));
	s->ip_id = (__u16)below(65536);
	random_client(s, family);
	if (family == 4) {
		if (percent(30)) {
			s->ipv4_options_len = 4 * (int)below(11);
			s->ipv4_options_fill = (int)below(3);
		}
		s->ipv4_frag = percent(80) ? 0x4000 : 0;
		s->udp_csum_zero = percent(15);
	} else {
		s->ipv6_flow_label = below(1u << 20);
		if (percent(40)) {
			static const __u8 types[] = { 0, 43, 60 };

			s->ipv6_ext_count = 1 + (int)below((__u32)max_ext);
			for (int i = 0; i < s->ipv6_ext_count; i++) {
				s->ipv6_ext[i].type = types[below(3)];
				s->ipv6_ext[i].len = (__u8)below(4);
			}
		}
	}
	s->payload_len = percent(25) ? 0 : below(200);
	s->payload_seed = (__u8)below(256);
	s->trailer_len = percent(10) ? 1 + below(20) : 0;
	descf(p, " v%d", family);
	if (s->vlan_count)
		descf(p, " vlan=%d%s", s->vlan_count,
		      s->qinq ? "(qinq)" : s->vlan_tpid[0] == ETH_P_8021AD_ ? "(802.1ad)" : "");
	if (s->ipv4_options_len)
		descf(p, " ipopt=%d", s->ipv4_options_len);
	if (s->ipv6_ext_count)
		descf(p, " ext=%d", s->ipv6_ext_count);
	if (s->udp_csum_zero)
		descf(p, " csum0");
	if (s->trailer_len)
		descf(p, " trailer=%zu", s->trailer_len);
}

static void random_request_header(struct pkt *p, struct pkt_spec *s)
{
	__u8 flags = 0;

	if (percent(50))
		flags |= TETHER_F_KEY;
	if (percent(45))
		flags |= TETHER_F_TOKEN;
	if (percent(30))
		flags |= TETHER_F_STRICT;
	s->hdr.flags = flags;
	descf(p, " flags=%s%s%s%s", flags & TETHER_F_KEY ? "K" : "", flags & TETHER_F_TOKEN ? "T" : "",
	      flags & TETHER_F_STRICT ? "S" : "", flags ? "" : "-");
	s->hdr.function_id = pick_function(p);
	s->hdr.routing_key = flags & TETHER_F_KEY || percent(30) ? pick_key(p) : 0;
	if (flags & TETHER_F_TOKEN || percent(40))
		pick_token(p, s->hdr.function_id, s->hdr.token);
	s->hdr.request_id = next64();
}

static void build(struct pkt *p, const struct pkt_spec *s)
{
	size_t len = pkt_build(s, build_buf, sizeof(build_buf));

	if (!len)
		fail_msg("generator: pkt_build refused (%s)", p->desc);
	set_frame(p, build_buf, len);
}

static void gen_request(struct pkt *p)
{
	struct pkt_spec s;

	random_shape(p, &s, percent(50) ? 4 : 6, MAX_EXT_WALKED);
	random_request_header(p, &s);
	build(p, &s);
	p->declared = R_REQ;
}

static size_t biased_pos(const struct pkt *p, size_t head)
{
	if (head > p->len)
		head = p->len;
	return percent(75) && head ? below((__u32)head) : below(p->len);
}

static void gen_mutated(struct pkt *p)
{
	gen_request(p);
	p->declared = 0;

	struct pkt_view v;
	int ops = 1 + (int)below(3);

	pkt_parse(p->in, p->len, &v);
	size_t head = v.tether_off >= 0 ? (size_t)v.tether_off + TETHER_HDR_LEN : p->len;

	descf(p, " |");
	for (int op = 0; op < ops; op++) {
		switch (below(7)) {
		case 0: { /* flip bits */
			int n = 1 + (int)below(4);

			for (int i = 0; i < n; i++) {
				size_t at = biased_pos(p, head);
				__u32 bit = below(8);

				p->in[at] ^= (__u8)(1u << bit);
				descf(p, " flip@%zu.%u", at, bit);
			}
			break;
		}
		case 1: { /* overwrite bytes */
			int n = 1 + (int)below(8);

			for (int i = 0; i < n; i++) {
				size_t at = biased_pos(p, head);

				p->in[at] = (__u8)next64();
				descf(p, " set@%zu=%02x", at, p->in[at]);
			}
			break;
		}
		case 2: /* truncate */
			if (p->len > 14) {
				p->len = 14 + below(p->len - 14);
				descf(p, " trunc->%u", p->len);
			}
			break;
		case 3: { /* extend */
			__u32 add = 1 + below(64);

			if (p->len + add <= sizeof(p->in)) {
				fill_random(p->in + p->len, add);
				p->len += add;
				descf(p, " extend+%u", add);
			}
			break;
		}
		case 4: /* a Tether header field */
			if (v.tether_off >= 0 && (size_t)v.tether_off + TETHER_HDR_LEN <= p->len) {
				static const __u8 fields[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 15 };
				__u32 at = (__u32)v.tether_off + fields[below(sizeof(fields))];

				p->in[at] = percent(50) ? (__u8)next64() : (__u8)(p->in[at] ^ (1u << below(8)));
				descf(p, " hdr@%u=%02x", at, p->in[at]);
			}
			break;
		case 5: { /* a length field */
			int at = -1;

			if (v.family == 4 && percent(50))
				at = v.l3_off + 2;
			else if (v.family == 6 && percent(50))
				at = v.l3_off + 4;
			else if (v.l4_off >= 0)
				at = v.l4_off + 4;
			if (at >= 0 && (__u32)at + 2 <= p->len) {
				__u16 old = pkt_get16(p->in + at), val;

				val = percent(50) ? (__u16)(old + (int)below(17) - 8) : (__u16)below(65536);
				put16(p->in + at, val);
				descf(p, " len@%d=%u(was %u)", at, val, old);
			}
			break;
		}
		case 6: { /* an address or a port */
			int at = -1;

			if (v.family == 4)
				at = v.l3_off + 12 + (int)below(8);
			else if (v.family == 6)
				at = v.l3_off + 8 + (int)below(32);
			if (percent(40) && v.l4_off >= 0)
				at = v.l4_off + (int)below(4);
			if (at >= 0 && (__u32)at < p->len) {
				p->in[at] ^= (__u8)(1u << below(8));
				descf(p, " addr/port@%d", at);
			}
			break;
		}
		}
	}
}

static void gen_random(struct pkt *p)
{
	static const __u16 types[] = { ETH_P_IPV4_, ETH_P_IPV4_, ETH_P_IPV4_, ETH_P_IPV6_,
				       ETH_P_IPV6_, ETH_P_IPV6_, ETH_P_8021Q_, ETH_P_8021AD_,
				       ETH_P_ARP_, 0 };
	__u8 frame[320];
	__u32 len = 14 + below(287);
	__u16 type = types[below(sizeof(types) / sizeof(types[0]))];

	fill_random(frame, len);
	if (!type)
		type = (__u16)next64();
	put16(frame + 12, type);
	descf(p, " random len=%u type=0x%04x", len, type);
	size_t l3 = 14;

	if ((type == ETH_P_8021Q_ || type == ETH_P_8021AD_) && len >= 18) {
		static const __u16 inner[] = { ETH_P_IPV4_, ETH_P_IPV6_, ETH_P_8021Q_ };
		__u16 t = inner[below(3)];

		put16(frame + 16, t);
		l3 = 18;
		if (t == ETH_P_8021Q_ && len >= 22) {
			put16(frame + 20, percent(50) ? ETH_P_IPV4_ : ETH_P_IPV6_);
			l3 = 22;
		}
		type = pkt_get16(frame + l3 - 2);
	}
	/* Half of them get a plausible IP header start: version, IHL, and
	 * sometimes the VIP, UDP and the service port. */
	if (percent(50) && (type == ETH_P_IPV4_ || type == ETH_P_IPV6_)) {
		int v4 = type == ETH_P_IPV4_;
		size_t need = v4 ? 20 : 40;

		if (l3 + need <= len) {
			__u8 *ip = frame + l3;

			descf(p, " plausible-ip");
			if (v4) {
				ip[0] = (__u8)(0x40 | (percent(70) ? 5 : 5 + below(11)));
				if (percent(50)) {
					put16(ip + 2, (__u16)(len - l3 - below(8)));
					ip[6] &= 0x40;
					ip[7] = 0;
				}
			} else {
				ip[0] = (__u8)(0x60 | (ip[0] & 0xf));
				if (percent(50))
					put16(ip + 4, (__u16)(len - l3 - 40 - below(8)));
			}
			if (percent(50)) {
				memcpy(v4 ? ip + 16 : ip + 24, v4 ? vip4 : vip6, v4 ? 4 : 16);
				descf(p, " dst=vip");
				if (percent(50)) {
					ip[v4 ? 9 : 6] = 17;
					size_t l4 = l3 + (v4 ? (size_t)(ip[0] & 0xf) * 4 : 40);

					if (l4 + 4 <= len)
						put16(frame + l4 + 2, VIP_PORT);
					if (l4 + 10 <= len && percent(50))
						put16(frame + l4 + 8, TETHER_MAGIC);
				}
			}
		}
	}
	set_frame(p, frame, len);
}

/* Insert a third tag behind the two a spec made. */
static void add_third_tag(struct pkt *p)
{
	if (p->len + 4 > sizeof(p->in))
		return;
	memmove(p->in + 24, p->in + 20, p->len - 20);
	put16(p->in + 20, ETH_P_8021Q_);
	put16(p->in + 22, (__u16)below(65536));
	p->len += 4;
}

static void gen_other(struct pkt *p)
{
	struct pkt_spec s;
	int family = percent(50) ? 4 : 6;
	__u32 which = below(24);

	random_shape(p, &s, family, MAX_EXT_WALKED);
	random_request_header(p, &s);
	p->declared = R_NS;
	switch (which) {
	case 0:
	case 1: {
		size_t len;

		if (family == 6) {
			pkt_addr4(s.dst_addr, PKT_TEST_VIP4);
			pkt_addr4(s.src_addr, PKT_TEST_CLIENT4);
		}
		len = pkt_build_arp(&s, build_buf, sizeof(build_buf));
		descf(p, " | ARP");
		set_frame(p, build_buf, len);
		return;
	}
	case 2:
	case 3:
		s.ip_proto = 6;
		s.dst_port = (__u16)below(65536);
		descf(p, " | TCP to the VIP");
		break;
	case 4:
	case 5:
		s.ip_proto = family == 4 ? 1 : 58;
		descf(p, " | ICMP to the VIP");
		break;
	case 6:
	case 7:
	case 8:
		do
			s.dst_port = (__u16)(1 + below(65535));
		while (s.dst_port == VIP_PORT);
		s.no_tether = percent(40);
		descf(p, " | UDP to VIP port %u%s", s.dst_port, s.no_tether ? " no-tether" : "");
		break;
	case 9:
	case 10:
		if (family == 4)
			pkt_addr4(s.dst_addr, percent(50) ? "198.51.100.2" : "203.0.113.1");
		else
			pkt_addr6(s.dst_addr, percent(50) ? "2001:db8:100::2" : "2001:db8:100::1:1");
		descf(p, " | UDP to another address");
		break;
	case 11:
	case 12:
	case 13: { /* fragments */
		int to_vip = percent(70);

		if (!to_vip) {
			if (family == 4)
				pkt_addr4(s.dst_addr, "198.51.100.2");
			else
				pkt_addr6(s.dst_addr, "2001:db8:100::2");
		}
		if (family == 4) {
			s.ipv4_frag = percent(50) ? 0x2000 : (__u16)((percent(50) ? 0x2000 : 0) |
								 (1 + below(0x1fff)));
		} else {
			int n = s.ipv6_ext_count > 3 ? 3 : s.ipv6_ext_count;
			int at = (int)below((__u32)n + 1);

			memmove(&s.ipv6_ext[at + 1], &s.ipv6_ext[at],
				(size_t)(n - at) * sizeof(s.ipv6_ext[0]));
			s.ipv6_ext[at] = (struct pkt_ipv6_ext){
				.type = 44,
				.frag = percent(50) ? 1 : (__u16)((1 + below(0x1fff)) << 3 | below(2)),
			};
			s.ipv6_ext_count = n + 1;
		}
		descf(p, " | fragment to %s", to_vip ? "the VIP" : "another address");
		p->declared = to_vip ? R_FRAG : R_NS;
		break;
	}
	case 14:
	case 15: /* a longer IPv6 chain than the router walks (bpf/parse.h) */
		if (family == 6) {
			static const __u8 types[] = { 0, 43, 60 };

			s.ipv6_ext_count = MAX_EXT_WALKED + 1 + (int)below(PKT_MAX_IPV6_EXT - MAX_EXT_WALKED);
			for (int i = 0; i < s.ipv6_ext_count; i++)
				s.ipv6_ext[i] = (struct pkt_ipv6_ext){ .type = types[below(3)],
								       .len = (__u8)below(2) };
			descf(p, " | IPv6 chain of %d", s.ipv6_ext_count);
			p->declared = R_MAL;
		} else {
			s.no_tether = 1;
			s.payload_len = below(TETHER_HDR_LEN);
			descf(p, " | short UDP payload %zu", s.payload_len);
			p->declared = R_MAL;
		}
		break;
	case 16:
	case 17:
		s.no_tether = 1;
		s.payload_len = below(TETHER_HDR_LEN);
		descf(p, " | short UDP payload %zu", s.payload_len);
		p->declared = R_MAL;
		break;
	case 18:
	case 19:
	case 20: { /* a broken Tether header */
		switch (below(7)) {
		case 0:
			s.hdr.flags |= (__u8)(TETHER_F_STAMPED << below(2));
			break;
		case 1:
			s.hdr.flags |= (__u8)(0x08 << below(3));
			break;
		case 2:
			s.hdr.status = (__u8)(1 + below(255));
			break;
		case 3:
			s.hdr.reserved[below(3)] = (__u8)(1 + below(255));
			break;
		case 4:
			s.hdr_raw = 1;
			s.hdr.magic = (__u16)(TETHER_MAGIC ^ (1 + below(65535)));
			s.hdr.version = TETHER_VERSION;
			break;
		case 5:
			s.hdr_raw = 1;
			s.hdr.magic = TETHER_MAGIC;
			s.hdr.version = (__u8)(TETHER_VERSION + 1 + below(255));
			break;
		case 6:
			s.hdr.function_id = 0;
			break;
		}
		descf(p, " | broken header flags=%02x status=%u res=%02x%02x%02x magic=%04x v=%u F=%llx",
		      s.hdr.flags, s.hdr.status, s.hdr.reserved[0], s.hdr.reserved[1],
		      s.hdr.reserved[2], s.hdr_raw ? s.hdr.magic : TETHER_MAGIC,
		      s.hdr_raw ? s.hdr.version : TETHER_VERSION,
		      (unsigned long long)s.hdr.function_id);
		p->declared = R_MAL;
		break;
	}
	case 21:
	case 22: /* a third VLAN tag: not parsed, the stack's */
		s.vlan_count = 2;
		build(p, &s);
		add_third_tag(p);
		descf(p, " | third VLAN tag");
		return;
	case 23: /* not the service: UDP port 0 of the VIP, or IPv6 to the
		  * v4-mapped form of the IPv4 VIP */
		if (family == 4) {
			s.dst_port = 0;
			descf(p, " | UDP to VIP port 0");
		} else {
			memcpy(s.dst_addr, vip4_mapped, 16);
			descf(p, " | IPv6 to ::ffff:" PKT_TEST_VIP4);
		}
		break;
	}
	build(p, &s);
}

/* ---- the reference classifier (DESIGN.md, bounds of bpf/parse.h) ---------------- */

struct req_info {
	int family;
	size_t l3, l4, tether;
	__u8 src[16], dst[16]; /* as the maps hold them: IPv4 v4-mapped */
	__u16 sport_raw, dport_raw; /* as on the wire */
	__u8 flags;
	__u64 function_id, routing_key;
	__u8 token[16];
};

struct cls {
	unsigned ok;      /* R_* the program may decide */
	const char *grey; /* a corner the spec leaves open: more than one accepted */
	const char *why;
	struct req_info req;
};

static void cls_set(struct cls *c, unsigned ok, const char *why)
{
	c->ok = ok;
	c->why = why;
}

static void cls_grey(struct cls *c, unsigned ok, const char *why)
{
	c->ok = ok;
	c->why = why;
	c->grey = why;
}

static void classify_udp(const __u8 *f, size_t l4, size_t l3_end, int svc_addr,
			 struct cls *c)
{
	if (l4 + 8 > l3_end) {
		/* Ethernet padding is no UDP header */
		cls_set(c, svc_addr ? R_MAL : R_NS,
			svc_addr ? "UDP header cut" : "not for a service address");
		return;
	}
	if (!svc_addr || pkt_get16(f + l4 + 2) != VIP_PORT) {
		cls_set(c, R_NS, "not for a service address and port");
		return;
	}
	size_t ulen = pkt_get16(f + l4 + 4);

	if (ulen < 8 + TETHER_HDR_LEN || l4 + ulen > l3_end) {
		cls_set(c, R_MAL, "UDP length");
		return;
	}
	const __u8 *h = f + l4 + 8;
	__u8 flags = h[3];

	if (pkt_get16(h) != TETHER_MAGIC || h[2] != TETHER_VERSION || (flags & ~TETHER_F_CLIENT_MASK) ||
	    h[4] || h[5] || h[6] || h[7] || !pkt_get64(h + 8)) {
		cls_set(c, R_MAL, "Tether header");
		return;
	}
	struct req_info *r = &c->req;

	r->l4 = l4;
	r->tether = l4 + 8;
	memcpy(&r->sport_raw, f + l4, 2);
	memcpy(&r->dport_raw, f + l4 + 2, 2);
	r->flags = flags;
	r->function_id = pkt_get64(h + 8);
	r->routing_key = pkt_get64(h + 16);
	memcpy(r->token, h + 24, 16);
	cls_set(c, R_REQ, "request");
}

static void classify4(const __u8 *f, size_t len, size_t l3, struct cls *c)
{
	if (l3 + 20 > len) {
		cls_grey(c, R_MAL | R_NS, "IPv4 header cut");
		return;
	}
	__u8 ihl = f[l3] & 0xf;

	if (f[l3] >> 4 != 4 || ihl < 5) {
		cls_grey(c, R_MAL | R_NS, "IPv4 version or IHL wrong");
		return;
	}
	int svc_addr = !memcmp(f + l3 + 16, vip4, 4);
	size_t hl = (size_t)ihl * 4, tot = pkt_get16(f + l3 + 2);

	if (tot < hl || l3 + tot > len || l3 + hl > len) {
		cls_set(c, svc_addr ? R_MAL : R_NS, "IPv4 lengths");
		return;
	}
	if (pkt_get16(f + l3 + 6) & 0x3fff) {
		cls_set(c, svc_addr ? R_FRAG : R_NS, "IPv4 fragment");
		return;
	}
	if (f[l3 + 9] != 17) {
		cls_set(c, R_NS, "not UDP");
		return;
	}
	c->req.family = 4;
	c->req.l3 = l3;
	pkt_map_addr(4, f + l3 + 12, c->req.src);
	pkt_map_addr(4, f + l3 + 16, c->req.dst);
	classify_udp(f, l3 + hl, l3 + tot, svc_addr, c);
}

static int is_ext(__u8 nh)
{
	return nh == 0 || nh == 43 || nh == 60;
}

static void classify6(const __u8 *f, size_t len, size_t l3, struct cls *c)
{
	if (l3 + 40 > len) {
		cls_grey(c, R_MAL | R_NS, "IPv6 header cut");
		return;
	}
	if (f[l3] >> 4 != 6) {
		cls_grey(c, R_MAL | R_NS, "IPv6 version wrong");
		return;
	}
	int svc_addr = !memcmp(f + l3 + 24, vip6, 16);
	size_t l3_end = l3 + 40 + pkt_get16(f + l3 + 4);

	if (l3_end > len) {
		cls_set(c, svc_addr ? R_MAL : R_NS, "IPv6 payload length");
		return;
	}
	__u8 nh = f[l3 + 6];
	size_t pos = l3 + 40;

	for (int i = 0; i < MAX_EXT_WALKED; i++) {
		if (nh == 44) {
			cls_set(c, svc_addr ? R_FRAG : R_NS, "IPv6 fragment");
			return;
		}
		if (!is_ext(nh))
			break;
		if (pos + 8 > l3_end || pos + ((size_t)f[pos + 1] + 1) * 8 > l3_end) {
			if (svc_addr)
				cls_grey(c, R_MAL | R_FRAG | R_NS,
					 "IPv6 extension header beyond the packet");
			else
				cls_set(c, R_NS, "not for a service address");
			return;
		}
		nh = f[pos];
		pos += ((size_t)f[pos + 1] + 1) * 8;
	}
	if (nh == 44) {
		cls_set(c, svc_addr ? R_FRAG : R_NS, "IPv6 fragment");
		return;
	}
	if (is_ext(nh)) {
		cls_set(c, svc_addr ? R_MAL : R_NS, "IPv6 chain longer than walked");
		return;
	}
	if (nh != 17) {
		cls_set(c, R_NS, "not UDP");
		return;
	}
	c->req.family = 6;
	c->req.l3 = l3;
	memcpy(c->req.src, f + l3 + 8, 16);
	memcpy(c->req.dst, f + l3 + 24, 16);
	classify_udp(f, pos, l3_end, svc_addr, c);
}

static void classify(const __u8 *f, size_t len, struct cls *c)
{
	memset(c, 0, sizeof(*c));
	if (len < 14) {
		cls_grey(c, R_MAL | R_NS, "shorter than Ethernet");
		return;
	}
	size_t off = 12;
	__u16 proto = pkt_get16(f + 12);

	for (int tags = 0; tags < 2 && (proto == ETH_P_8021Q_ || proto == ETH_P_8021AD_); tags++) {
		if (off + 6 > len) {
			cls_grey(c, R_MAL | R_NS, "VLAN tag cut");
			return;
		}
		off += 4;
		proto = pkt_get16(f + off);
	}
	if (proto == ETH_P_IPV4_)
		classify4(f, len, off + 2, c);
	else if (proto == ETH_P_IPV6_)
		classify6(f, len, off + 2, c);
	else
		cls_set(c, R_NS, "not IP");
}

/* Invariant 2's literal test: pktgen's parser sees a request to a service. */
static int pktgen_sees_request(const __u8 *f, size_t len)
{
	struct pkt_view v;
	struct pkt_tether h;

	if (pkt_parse(f, len, &v) || v.is_fragment || v.l4_proto != 17 || v.tether_off < 0 ||
	    pkt_tether_read(f, len, &h))
		return 0;
	if (v.family == 4 ? memcmp(f + v.l3_off + 16, vip4, 4) : memcmp(f + v.l3_off + 24, vip6, 16))
		return 0;
	return pkt_get16(f + v.l4_off + 2) == VIP_PORT && h.magic == TETHER_MAGIC &&
	       h.version == TETHER_VERSION && !(h.flags & ~TETHER_F_CLIENT_MASK) && !h.status &&
	       !h.reserved[0] && !h.reserved[1] && !h.reserved[2] && h.function_id;
}

static void result_names(unsigned r, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s%s%s", r & R_NS ? "NS " : "", r & R_MAL ? "MAL " : "",
		 r & R_FRAG ? "FRAG " : "", r & R_REQ ? "REQ " : "");
}

/* ---- the routing model (DESIGN.md, "Routing rules") ------------------------------- */

static int backend_accepts(__u32 id, __u64 now, int new_work)
{
	const struct mbackend *b;

	if (id == 0 || id >= NBACKENDS)
		return 0;
	b = &backends[id];
	if (b->expiry && now >= b->expiry)
		return 0;
	if (b->state == BACKEND_UP)
		return 1;
	return !new_work && b->state == BACKEND_DRAINING;
}

static int container_accepts(__u32 slot, __u32 generation, __u64 f, __u64 now, int new_work)
{
	const struct mslot *m;

	if (slot >= NSLOTS)
		return 0;
	m = &slots[slot];
	if (!m->live || m->generation != generation || m->function_id != f)
		return 0;
	if (!(m->state == CONTAINER_WARM ||
	      (!new_work && m->state == CONTAINER_DRAINING && now < m->deadline)))
		return 0;
	return backend_accepts(m->backend, now, new_work);
}

static int pool_pick(__u64 f, __u64 hash, __u64 now)
{
	const struct mpool *p = pool_of(f);

	if (!p || !p->size)
		return -1;
	__u32 index = tether_pool_index(hash, p->size);

	for (int probe = 0; probe < TETHER_POOL_PROBES; probe++) {
		__u32 s = p->table[index - 1];

		if (s < NSLOTS && container_accepts(s, slots[s].generation, f, now, 1))
			return (int)s;
		index = index >= p->size ? 1 : index + 1;
	}
	return -1;
}

struct expectation {
	int token_ctr; /* -1: none */
	int route;     /* C_TOKEN_HIT (the token won), C_KEY_*, C_FLOW_PICK, C_NO_CAPACITY,
			* C_STRICT_GONE */
	int slot;      /* -1: none */
	int no_route;
	int verdict;
	__u8 status;
	__u64 d[C_COUNT]; /* the counter delta one decision makes (invariant 5) */
};

static void oracle(const struct req_info *rq, __u32 ingress, __u64 now, struct expectation *e)
{
	__u64 f = rq->function_id;
	int slot = -1;

	memset(e, 0, sizeof(*e));
	e->token_ctr = -1;
	e->slot = -1;
	if (rq->flags & TETHER_F_TOKEN) {
		__u32 ts = pkt_get32(rq->token), tg = pkt_get32(rq->token + 4);
		__u64 secret;
		const struct mslot *m = ts < NSLOTS ? &slots[ts] : NULL;

		memcpy(&secret, rq->token + 8, 8);
		if (!m || !m->live || m->generation != tg || m->secret != secret)
			e->token_ctr = C_TOKEN_MISS;
		else if (m->function_id != f)
			e->token_ctr = C_TOKEN_FOREIGN;
		else if (!container_accepts(ts, tg, f, now, 0))
			e->token_ctr = C_TOKEN_MISS;
		else
			e->token_ctr = C_TOKEN_HIT, e->route = C_TOKEN_HIT, slot = (int)ts;
		if (slot < 0 && (rq->flags & TETHER_F_STRICT)) {
			e->route = C_STRICT_GONE;
			goto slow;
		}
	}
	if (slot < 0 && (rq->flags & TETHER_F_KEY)) {
		const struct aff *a = aff_find(f, rq->routing_key);

		if (a && container_accepts(a->slot, a->generation, f, now, 0)) {
			e->route = C_KEY_HIT;
			slot = (int)a->slot;
		} else if (a && (rq->flags & TETHER_F_STRICT)) {
			e->route = C_STRICT_GONE;
			goto slow;
		} else {
			slot = pool_pick(f, tether_hash_key(f, rq->routing_key), now);
			e->route = slot < 0 ? C_NO_CAPACITY : a ? C_KEY_REHOMED : C_KEY_NEW;
		}
	} else if (slot < 0) {
		slot = pool_pick(f, tether_hash_flow(rq->src, rq->dst, rq->sport_raw, rq->dport_raw),
				 now);
		e->route = slot < 0 ? C_NO_CAPACITY : C_FLOW_PICK;
	}
	if (slot < 0)
		goto slow;
	e->slot = slot;
	__u32 ifindex = backends[slots[slot].backend].ifindex;

	if (ifindex == ingress)
		e->verdict = XDP_TX;
	else if (port_up(ifindex))
		e->verdict = XDP_REDIRECT;
	else
		e->verdict = XDP_DROP, e->no_route = 1;
	/* no_route is a forwarding fault counted on top of the decision. */
	if (e->token_ctr >= 0)
		e->d[e->token_ctr] = 1;
	if (e->no_route)
		e->d[C_NO_ROUTE] = 1;
	if (e->route != C_TOKEN_HIT)
		e->d[e->route] = 1;
	return;
slow:
	e->verdict = XDP_PASS;
	e->status = e->route == C_NO_CAPACITY ? TETHER_STATUS_NO_CAPACITY
					      : TETHER_STATUS_CONTAINER_GONE;
	if (e->token_ctr >= 0)
		e->d[e->token_ctr] = 1;
	e->d[e->route] = 1;
}

/* ---- checking one frame ----------------------------------------------------------- */

static struct xdp_result R;
static struct tether_stats last_stats;
static char fail_buf[8192];
static size_t fail_len;
static int new_kind; /* this frame failed a check no frame failed before */
static long failed_packets;

struct kind_count {
	const char *kind;
	long count;
	long first_packet, last_packet;
};
static struct kind_count kinds[64];
static int nkinds;

struct totals {
	long verdicts[XDP_REDIRECT + 1];
	long counters[C_COUNT];
	long cls[4][4]; /* class a..d x NS, MAL, FRAG, REQ */
	long grey[16];
	const char *grey_name[16];
	long grey_decided[16][4]; /* what the program decided: NS, MAL, FRAG, REQ */
	int ngrey;
	long token_kinds_won;
	long forwarded_to_vlan[2]; /* forwarded to backends without / with a VLAN */
};
static struct totals T;

static void failf(const char *kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(const char *kind, const char *fmt, ...)
{
	va_list ap;
	int i;

	for (i = 0; i < nkinds; i++)
		if (!strcmp(kinds[i].kind, kind))
			break;
	if (i == nkinds && nkinds < 64) {
		kinds[nkinds].kind = kind;
		kinds[nkinds].first_packet = P.index;
		kinds[nkinds].last_packet = -1;
		nkinds++;
	}
	if (i < 64 && kinds[i].last_packet != P.index) { /* frames, not messages */
		if (!kinds[i].count)
			new_kind = 1;
		kinds[i].count++;
		kinds[i].last_packet = P.index;
	}
	if (fail_len >= sizeof(fail_buf) - 64)
		return;
	fail_len += (size_t)snprintf(fail_buf + fail_len, sizeof(fail_buf) - fail_len, "  [%s] ", kind);
	va_start(ap, fmt);
	fail_len += (size_t)vsnprintf(fail_buf + fail_len, sizeof(fail_buf) - fail_len, fmt, ap);
	va_end(ap);
	if (fail_len < sizeof(fail_buf) - 1)
		fail_buf[fail_len++] = '\n';
	fail_buf[fail_len] = 0;
}

static void delta_text(const __u64 *d, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = 0;
	for (int i = 0; i < C_COUNT; i++)
		if (d[i])
			n += (size_t)snprintf(buf + n, cap - n, "%s%s+%llu", n ? " " : "", ctr_name[i],
					      (unsigned long long)d[i]);
	if (!n)
		snprintf(buf, cap, "(none)");
}

static void report(const __u64 *d, const struct cls *c, const struct expectation *e)
{
	char text[256], ok[64];

	failed_packets++;
	if (failed_packets > max_reports && !new_kind)
		return;
	fprintf(stderr, "\n==== FAILURE seed=0x%llx packet=%ld class=%c ingress=%s len=%u\n",
		(unsigned long long)seed, P.index, P.cls,
		P.ingress == ifindexes[0] ? "lo" : P.ingress == ifindexes[1] ? "tx0" : "?", P.len);
	fprintf(stderr, "  frame:%s\n", P.desc);
	fprintf(stderr, "  reproduce: TETHER_TEST_SEED=0x%llx TETHER_TEST_PACKETS=%ld "
			"build/tests/bpf/test_random\n", (unsigned long long)seed, P.index + 1);
	result_names(c->ok, ok, sizeof(ok));
	fprintf(stderr, "  reference: %s(%s)%s\n", ok, c->why ? c->why : "", c->grey ? " [grey]" : "");
	delta_text(d, text, sizeof(text));
	fprintf(stderr, "  got: verdict %s, counters %s\n", xdp_verdict_name(R.verdict), text);
	if (e) {
		delta_text(e->d, text, sizeof(text));
		fprintf(stderr, "  expected: verdict %s, counters %s, slot %d%s\n", xdp_verdict_name(e->verdict),
			text, e->slot, e->status ? (e->status == 1 ? ", status NO_CAPACITY"
								   : ", status CONTAINER_GONE")
						 : "");
	}
	fputs(fail_buf, stderr);
	fprintf(stderr, "  input (%u bytes):\n", P.len);
	pkt_hexdump(stderr, P.in, P.len);
	fprintf(stderr, "  output (%u bytes), first difference at %ld:\n", R.len,
		pkt_first_diff(P.in, P.len, R.frame, R.len));
	pkt_hexdump(stderr, R.frame, R.len);
	fprintf(stderr, "  world: backends");
	for (__u32 id = 1; id < NBACKENDS; id++)
		fprintf(stderr, " b%u=%s%s@%u", id, bstate_name(backends[id].state),
			backends[id].expiry ? (backends[id].expiry < monotonic_ns() ? "(expired)" : "(hb)") : "",
			backends[id].ifindex);
	fprintf(stderr, "; ports lo=%d tx0=%d tx1=%d\n  slots", port_present[0], port_present[1],
		port_present[2]);
	for (size_t i = 0; i < NMODEL; i++) {
		const struct mslot *m = &slots[model_slots[i]];

		fprintf(stderr, " %u:%s/%s/b%u/g%u", model_slots[i], fname(m->function_id),
			cstate_name(m->state), m->backend, m->generation);
	}
	fprintf(stderr, "\n");
}

/* out_shift: where the output's L3 starts against the input's (a forwarded
 * frame's VLAN tags may have changed). */
static void check_csum(const struct req_info *rq, const char *kind, long out_shift)
{
	size_t at = rq->l4 + 6;
	__u16 in_ck = pkt_get16(P.in + at), out_ck = pkt_get16(R.frame + at + out_shift);

	if (rq->family == 4 && in_ck == 0) {
		if (out_ck != 0)
			failf(kind, "IPv4 UDP checksum 0 (none) became 0x%04x", out_ck);
		return;
	}
	if (!pkt_udp_csum_valid(P.in, P.len))
		return; /* a wrong checksum in stays wrong out; nothing to judge */
	if (out_ck == 0 || !pkt_udp_csum_valid(R.frame, R.len))
		failf(kind, "UDP checksum 0x%04x, want 0x%04x", out_ck,
		      pkt_udp_csum_compute(R.frame, R.len));
}

/* Bytes of the output outside the allowed ranges are those of want. */
static void check_unchanged(const char *kind, const __u8 *want, size_t want_len,
			    const size_t *ranges, int nranges)
{
	for (size_t i = 0; i < want_len && i < R.len; i++) {
		int allowed = 0;

		for (int r = 0; r < nranges; r++)
			if (i >= ranges[2 * r] && i < ranges[2 * r + 1])
				allowed = 1;
		if (!allowed && want[i] != R.frame[i]) {
			failf(kind, "byte %zu is 0x%02x, want 0x%02x", i, R.frame[i], want[i]);
			return;
		}
	}
}

/* How far the L3 header moves in a frame forwarded to backend b: the
 * client's tags out, the backend's one tag in when it has a VLAN. */
static long forward_shift(const struct req_info *rq, const struct mbackend *b)
{
	return (long)(14 + (b->vlan ? 4 : 0)) - (long)rq->l3;
}

/* The slot the output is stamped with, found by pktgen's parser wherever
 * the backend's tagging put the header; -1 when it is not stamped. */
static long output_stamped_slot(void)
{
	struct pkt_tether h;

	if (pkt_tether_read(R.frame, R.len, &h) || !(h.flags & TETHER_F_STAMPED))
		return -1;
	return pkt_get32(h.token);
}

/* Invariant 2 (and the MAC, action and byte checks) for a forwarded frame. */
static void check_forwarded(const struct req_info *rq, const struct aff *aff_before, __u64 now)
{
	size_t t = rq->tether;
	const __u8 *tok = R.frame + t + 24;
	__u32 slot = pkt_get32(tok), gen = pkt_get32(tok + 4);

	/* The backend is found through the token stamped: where the token
	 * lies depends on the backend's tagging, so look for it where each
	 * backend's tagging would put it. */
	long shift = 0;
	int located = 0;

	for (__u32 id = 1; id < NBACKENDS && !located; id++) {
		shift = forward_shift(rq, &backends[id]);
		if ((long)P.len + shift != (long)R.len)
			continue;
		__u32 s2 = pkt_get32(R.frame + t + shift + 24);

		located = s2 < NSLOTS && slots[s2].live && slots[s2].backend == id;
	}
	if (!located) {
		failf("fwd-length", "output %u bytes, input %u: no backend's tagging makes that length "
		      "with a container of that backend stamped", R.len, P.len);
		return;
	}
	t += shift;
	tok = R.frame + t + 24;
	slot = pkt_get32(tok);
	gen = pkt_get32(tok + 4);
	if (R.frame[t + 3] != (rq->flags | TETHER_F_STAMPED))
		failf("fwd-flags", "flags 0x%02x, want 0x%02x", R.frame[t + 3], rq->flags | TETHER_F_STAMPED);
	if (slot >= NSLOTS || !slots[slot].live || slots[slot].generation != gen) {
		failf("fwd-token", "stamped slot %u gen %u is no live container", slot, gen);
		return;
	}
	const struct mslot *m = &slots[slot];
	int had_token = (rq->flags & TETHER_F_TOKEN) && !memcmp(rq->token, m->token, 16);
	int had_aff = (rq->flags & TETHER_F_KEY) && aff_before && aff_before->slot == slot &&
		      aff_before->generation == m->generation;
	int existing = had_token || had_aff;
	const struct mbackend *b = &backends[m->backend];

	if (memcmp(tok, m->token, 16))
		failf("fwd-token", "stamped token is not slot %u's token", slot);
	if (m->function_id != rq->function_id)
		failf("fwd-function", "slot %u runs %s, request is for %s", slot, fname(m->function_id),
		      fname(rq->function_id));
	if (!(m->state == CONTAINER_WARM ||
	      (m->state == CONTAINER_DRAINING && now < m->deadline && existing)))
		failf("fwd-state", "slot %u is %s%s (token %d, affinity %d)", slot, cstate_name(m->state),
		      m->state == CONTAINER_DRAINING && now >= m->deadline ? " past its deadline" : "",
		      had_token, had_aff);
	if (b->expiry && now >= b->expiry)
		failf("fwd-backend", "backend %u missed its heartbeats", m->backend);
	if (!(b->state == BACKEND_UP || (b->state == BACKEND_DRAINING && existing)))
		failf("fwd-backend", "backend %u is %s (token %d, affinity %d)", m->backend,
		      bstate_name(b->state), had_token, had_aff);
	if (memcmp(R.frame, b->mac, 6) || memcmp(R.frame + 6, b->src_mac, 6))
		failf("fwd-mac", "Ethernet addresses are not backend %u's", m->backend);
	if (shift != forward_shift(rq, b))
		failf("fwd-vlan", "output %u bytes from %u: not backend %u's tagging (vlan %u)", R.len,
		      P.len, m->backend, b->vlan);
	if ((R.verdict == XDP_TX) != (b->ifindex == P.ingress))
		failf("fwd-action", "%s for backend %u on ifindex %u, ingress %u", xdp_verdict_name(R.verdict),
		      m->backend, b->ifindex, P.ingress);
	check_csum(rq, "fwd-csum", shift);

	/* Everything else is the input with the backend's L2 header: pktgen's
	 * rewrite, which knows nothing of the program, builds that. */
	static __u8 want[FRAME_CAP + 8];
	size_t want_len = pkt_rewrite_l2(P.in, P.len, b->mac, b->src_mac, b->vlan, want, sizeof(want));
	size_t l4 = rq->l4 + shift;
	size_t ranges[] = { t + 3, t + 4, t + 24, t + 40, l4 + 6, l4 + 8 };

	if (want_len != R.len)
		failf("fwd-vlan", "output %u bytes, pktgen's rewrite for backend %u %zu", R.len,
		      m->backend, want_len);
	check_unchanged("fwd-bytes", want, want_len, ranges, 3);
}

static void check_slow_path(const struct cls *c, const __u64 *d)
{
	struct req_info rq = c->req;
	struct pkt_view v;

	if (c->ok != R_REQ) { /* already a failure; locate the header for the rest */
		if (pkt_parse(P.in, P.len, &v) || v.tether_off < 0) {
			failf("slow-path", "passed to the slow path, but no Tether header");
			return;
		}
		rq.family = v.family;
		rq.l4 = (size_t)v.l4_off;
		rq.tether = (size_t)v.tether_off;
	}
	if (R.len != P.len) {
		failf("slow-length", "output %u bytes, input %u", R.len, P.len);
		return;
	}
	__u8 status = R.frame[rq.tether + 4];
	__u8 want = d[C_NO_CAPACITY] ? TETHER_STATUS_NO_CAPACITY : TETHER_STATUS_CONTAINER_GONE;

	if (status != want)
		failf("slow-status", "status %u, want %u", status, want);
	check_csum(&rq, "slow-csum", 0);

	size_t ranges[] = { rq.tether + 4, rq.tether + 5, rq.l4 + 6, rq.l4 + 8 };

	check_unchanged("slow-bytes", P.in, P.len, ranges, 2);
}

static void tally_grey(const char *name, unsigned observed)
{
	int i;

	for (i = 0; i < T.ngrey; i++)
		if (T.grey_name[i] == name)
			break;
	if (i == T.ngrey) {
		if (T.ngrey == 16)
			return;
		T.grey_name[T.ngrey++] = name;
	}
	T.grey[i]++;
	for (int r = 0; r < 4; r++)
		if (observed == (1u << r))
			T.grey_decided[i][r]++;
}

static void check_packet(void)
{
	struct tether_stats now_stats;
	struct cls c;
	struct expectation e;
	int have_e = 0;
	__u64 d[C_COUNT];
	int err;

	fail_len = 0;
	fail_buf[0] = 0;
	new_kind = 0;
	classify(P.in, P.len, &c);
	if (P.declared && c.ok != P.declared) {
		char a[64], b[64];

		result_names(P.declared, a, sizeof(a));
		result_names(c.ok, b, sizeof(b));
		failf("test-generator", "built as %sbut the reference says %s(%s)", a, b, c.why);
	}

	/* The model's view before this frame changes anything. */
	const struct aff *aff_before = NULL;
	struct aff aff_copy;
	__u64 now = monotonic_ns();

	if (c.ok == R_REQ && (c.req.flags & TETHER_F_KEY)) {
		const struct aff *a = aff_find(c.req.function_id, c.req.routing_key);

		if (a) {
			aff_copy = *a;
			aff_before = &aff_copy;
		}
	}
	if (c.ok == R_REQ) {
		oracle(&c.req, P.ingress, now, &e);
		have_e = 1;
	}

	/* 1. The run itself. */
	memset(&R, 0, sizeof(R));
	err = harness_run(&fx.dp, P.in, P.len, P.ingress, &R);
	if ((err = err ? err : stats_read(&fx.dp, &now_stats))) {
		failf("run", "BPF_PROG_TEST_RUN or stats_read failed: %d", err);
		memset(d, 0, sizeof(d));
		report(d, &c, have_e ? &e : NULL);
		return;
	}
	for (int i = 0; i < C_COUNT; i++) {
		d[i] = ctr_of(&now_stats, i) - ctr_of(&last_stats, i);
		T.counters[i] += (long)d[i];
	}
	last_stats = now_stats;
	if (R.verdict < XDP_DROP || R.verdict > XDP_REDIRECT)
		failf("verdict", "verdict %d (%s)", R.verdict, xdp_verdict_name(R.verdict));
	else
		T.verdicts[R.verdict]++;
	int forwarded = R.verdict == XDP_TX || R.verdict == XDP_REDIRECT;

	/* 5. Counters. */
	__u64 decisions = 0, tokens = 0;
	int decision = -1;

	for (int i = 0; i < C_COUNT; i++) {
		if (d[i] > 1)
			failf("counters-decisions", "%s moved by %llu", ctr_name[i], (unsigned long long)d[i]);
		if (i == C_NO_ROUTE)
			continue; /* a fault on top of a forwarding decision, checked below */
		if (i >= FIRST_DECISION && d[i]) {
			decisions += d[i];
			decision = i;
		} else if (i < FIRST_DECISION) {
			tokens += d[i];
		}
	}
	int token_won = d[C_TOKEN_HIT] == 1 && decisions == 0;

	if (!(decisions == 1 || token_won)) {
		char text[256];

		delta_text(d, text, sizeof(text));
		failf("counters-decisions", "%llu decision counters moved (%s), want exactly one",
		      (unsigned long long)decisions, text);
	}
	if (tokens > 1)
		failf("counters-token", "%llu token counters moved", (unsigned long long)tokens);
	if (tokens && !(c.ok == R_REQ && (c.req.flags & TETHER_F_TOKEN)))
		failf("counters-token", "a token counter moved, but the reference sees no TOKEN request");
	if (c.ok == R_REQ && (c.req.flags & TETHER_F_TOKEN) && tokens != 1)
		failf("counters-token", "TOKEN request, %llu token counters moved", (unsigned long long)tokens);
	if (decisions == 1) {
		int want_pass = decision == C_PASS || decision == C_NO_CAPACITY || decision == C_STRICT_GONE;
		int want_drop = decision == C_MALFORMED || decision == C_FRAGMENT;

		if (d[C_NO_ROUTE] && (want_pass || want_drop))
			failf("counters-verdict", "no_route with the non-forwarding decision %s",
			      ctr_name[decision]);
		if (want_pass ? R.verdict != XDP_PASS
			      : want_drop || d[C_NO_ROUTE] ? R.verdict != XDP_DROP : !forwarded)
			failf("counters-verdict", "counter %s%s with verdict %s", ctr_name[decision],
			      d[C_NO_ROUTE] ? " and no_route" : "", xdp_verdict_name(R.verdict));
	} else if (token_won && (d[C_NO_ROUTE] ? R.verdict != XDP_DROP : !forwarded)) {
		failf("counters-verdict", "token_hit%s with verdict %s",
		      d[C_NO_ROUTE] ? " and no_route" : "", xdp_verdict_name(R.verdict));
	}

	/* What the program decided, against the reference classifier. */
	unsigned observed = 0;

	if (d[C_PASS])
		observed |= R_NS;
	if (d[C_MALFORMED])
		observed |= R_MAL;
	if (d[C_FRAGMENT])
		observed |= R_FRAG;
	for (int i = 0; i < C_COUNT; i++)
		if (d[i] && (i < FIRST_DECISION || (i >= C_KEY_HIT && i <= C_STRICT_GONE) || i == C_NO_ROUTE))
			observed |= R_REQ;
	if (!(observed & c.ok) || (observed & (observed - 1)) || (observed & ~c.ok)) {
		char a[64], b[64];

		result_names(observed, a, sizeof(a));
		result_names(c.ok, b, sizeof(b));
		failf("classification", "program decided %s; reference: %s(%s)", a, b, c.why);
	}
	for (int r = 0; r < 4; r++)
		if (observed == (1u << r))
			T.cls[P.cls - 'a'][r]++;
	if (c.grey)
		tally_grey(c.grey, observed);

	/* 2. Forwarded frames. */
	if (forwarded) {
		if (!pktgen_sees_request(P.in, P.len))
			failf("fwd-not-request", "forwarded, but pktgen does not parse a request to a service");
		if (c.ok == R_REQ)
			check_forwarded(&c.req, aff_before, now);
	}
	/* 4. Passed frames. */
	if (R.verdict == XDP_PASS) {
		if (d[C_NO_CAPACITY] || d[C_STRICT_GONE]) {
			check_slow_path(&c, d);
		} else if (R.len != P.len || memcmp(R.frame, P.in, P.len)) {
			failf("pass-modified", "passed to the stack but changed (first difference at %ld)",
			      pkt_first_diff(P.in, P.len, R.frame, R.len));
		}
	}
	/* 3. A valid token of an accepting container of the function wins. */
	if (c.ok == R_REQ && (c.req.flags & TETHER_F_TOKEN)) {
		__u32 ts = pkt_get32(c.req.token);

		if (ts < NSLOTS && slots[ts].live && !memcmp(slots[ts].token, c.req.token, 16) &&
		    slots[ts].function_id == c.req.function_id &&
		    container_accepts(ts, slots[ts].generation, c.req.function_id, now, 0)) {
			T.token_kinds_won++;
			if (!(forwarded || d[C_NO_ROUTE]) || output_stamped_slot() != (long)ts)
				failf("token-wins", "valid token of slot %u (%s), got verdict %s slot %ld", ts,
				      cstate_name(slots[ts].state), xdp_verdict_name(R.verdict),
				      output_stamped_slot());
		}
	}
	/* The exact decision of the rules. */
	if (have_e) {
		if (memcmp(d, e.d, sizeof(d))) {
			char a[256], b[256];

			delta_text(e.d, a, sizeof(a));
			delta_text(d, b, sizeof(b));
			failf("model-counters", "want %s, got %s", a, b);
		}
		if (R.verdict != e.verdict)
			failf("model-verdict", "want %s, got %s", xdp_verdict_name(e.verdict),
			      xdp_verdict_name(R.verdict));
		if (e.slot >= 0 && output_stamped_slot() != e.slot)
			failf("model-slot", "want slot %d, stamped slot %ld", e.slot,
			      output_stamped_slot());
	}

	/* The model follows what the maps now hold: affinities learned, and the
	 * per-container counters (even when a check above failed, so one
	 * failure does not cascade). */
	if (d[C_KEY_NEW] || d[C_KEY_REHOMED] || d[C_TOKEN_HIT]) {
		struct pkt_tether h;

		if (pkt_tether_read(R.frame, R.len, &h) == 0 && (h.flags & TETHER_F_KEY) &&
		    (h.flags & TETHER_F_STAMPED))
			aff_set(h.function_id, h.routing_key, pkt_get32(h.token), pkt_get32(h.token + 4));
	}
	if (forwarded) {
		struct pkt_tether h;

		if (pkt_tether_read(R.frame, R.len, &h) == 0 && pkt_get32(h.token) < NSLOTS) {
			slots[pkt_get32(h.token)].fwd_packets++;
			slots[pkt_get32(h.token)].fwd_bytes += R.len; /* as it left */
			T.forwarded_to_vlan[backends[slots[pkt_get32(h.token)].backend].vlan ? 1 : 0]++;
		}
	}
	if (fail_len)
		report(d, &c, have_e ? &e : NULL);
}

/* ---- end of run ----------------------------------------------------------------- */

/* The whole affinity map against the model; returns the problems found. */
static int check_affinity_map(void)
{
	int fd = bpf_map__fd(fx.dp.skel->maps.affinity);
	struct affinity_key key, next;
	struct affinity_value value;
	size_t seen = 0;
	int first = 1, bad = 0;

	while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		first = 0;
		key = next;
		if (bpf_map_lookup_elem(fd, &key, &value))
			continue;
		seen++;
		const struct aff *a = aff_find(key.function_id, key.routing_key);

		if (!a || a->slot != value.slot || a->generation != value.generation) {
			if (bad++ < 5)
				fprintf(stderr, "affinity (%s, 0x%llx) -> slot %u gen %u; model %s%u gen %u\n",
					fname(key.function_id), (unsigned long long)key.routing_key,
					value.slot, value.generation, a ? "slot " : "none ",
					a ? a->slot : 0, a ? a->generation : 0);
		}
	}
	printf("affinity map: %zu entries, model %zu\n", seen, aff_count);
	if (bad || seen != aff_count) {
		fprintf(stderr, "test_random: affinity map differs from the model: %d wrong entries, "
				"%zu entries vs %zu\n", bad, seen, aff_count);
		return 1;
	}
	return 0;
}

/* Per-container packets and bytes against what the model saw forwarded. */
static int check_container_counters(void)
{
	int bad = 0;

	for (size_t i = 0; i < NMODEL; i++) {
		__u32 slot = model_slots[i];
		struct container_counters c;
		int err = container_stats_read(&fx.dp, slot, &c);

		if (err)
			die("container_stats_read", err);
		if (c.packets != slots[slot].fwd_packets || c.bytes != slots[slot].fwd_bytes) {
			fprintf(stderr, "test_random: container_stats of slot %u: %llu packets %llu bytes, "
					"model %llu %llu\n", slot, (unsigned long long)c.packets,
				(unsigned long long)c.bytes, (unsigned long long)slots[slot].fwd_packets,
				(unsigned long long)slots[slot].fwd_bytes);
			bad++;
		}
	}
	return bad;
}

static void print_totals(double seconds, long packets)
{
	static const char *const cls_name[4] = { "requests", "mutated", "random", "other" };

	printf("test_random: seed=0x%llx, %ld packets in %.1f s (%.0f per second)\n",
	       (unsigned long long)seed, packets, seconds, packets / (seconds > 0 ? seconds : 1));
	printf("verdicts:");
	for (int v = XDP_DROP; v <= XDP_REDIRECT; v++)
		printf(" %s=%ld", xdp_verdict_name(v), T.verdicts[v]);
	printf("\ncounters:");
	for (int i = 0; i < C_COUNT; i++)
		printf("%s %s=%ld", i == 7 ? "\n         " : "", ctr_name[i], T.counters[i]);
	printf("\nclasses (decided NS/MAL/FRAG/REQ):");
	for (int k = 0; k < 4; k++)
		printf(" %s=%ld/%ld/%ld/%ld", cls_name[k], T.cls[k][0], T.cls[k][1], T.cls[k][2],
		       T.cls[k][3]);
	printf("\nvalid tokens of accepting containers: %ld; affinities learned: %zu\n",
	       T.token_kinds_won, aff_count);
	printf("forwarded to backends without a VLAN: %ld, with one: %ld\n", T.forwarded_to_vlan[0],
	       T.forwarded_to_vlan[1]);
	if (T.ngrey) {
		printf("grey corners (more than one outcome accepted), decided NS/MAL/FRAG/REQ:\n");
		for (int i = 0; i < T.ngrey; i++)
			printf("  %-52s %6ld: %ld/%ld/%ld/%ld\n", T.grey_name[i], T.grey[i],
			       T.grey_decided[i][0], T.grey_decided[i][1], T.grey_decided[i][2],
			       T.grey_decided[i][3]);
	}
}

static __u64 env_u64(const char *name, __u64 fallback)
{
	const char *text = getenv(name);
	char *end;

	if (!text || !*text)
		return fallback;
	errno = 0;
	__u64 v = strtoull(text, &end, 0);

	if (errno || *end) {
		fprintf(stderr, "test_random: %s=%s is not a number\n", name, text);
		exit(2);
	}
	return v;
}

static void test_random_traffic(void **state)
{
	struct timespec t0, t1;
	char log[1024];
	long i, next_change;
	(void)state;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rng_state = seed;
	aff_cap = 1;
	while (aff_cap < 4 * (size_t)packets_total || aff_cap < (1u << 16))
		aff_cap <<= 1;
	aff_table = calloc(aff_cap, sizeof(*aff_table));
	assert_non_null(aff_table);

	world_init();
	if (stats_read(&fx.dp, &last_stats))
		fail_msg("stats_read");
	next_change = BATCH_MIN + below(BATCH_SPREAD);
	for (i = 0; i < packets_total; i++) {
		if (i == next_change) {
			mutate_world(log, sizeof(log));
			if (getenv("TETHER_TEST_VERBOSE"))
				printf("packet %ld: world:%s\n", i, log);
			next_change += BATCH_MIN + below(BATCH_SPREAD);
		}
		memset(&P, 0, offsetof(struct pkt, in));
		P.index = i;
		P.ingress = percent(90) ? ifindexes[0] : ifindexes[1];
		unsigned r = below(100);

		if (r < 45)
			P.cls = 'a', gen_request(&P);
		else if (r < 75)
			P.cls = 'b', gen_mutated(&P);
		else if (r < 87)
			P.cls = 'c', gen_random(&P);
		else
			P.cls = 'd', gen_other(&P);
		check_packet();
		if (failed_packets >= MAX_FAILING_FRAMES)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_totals((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, i);

	int problems = check_affinity_map() + check_container_counters();

	/* Coverage: the generator reaches every rule (a full-length run only;
	 * a short one replays a failure). */
	if (packets_total >= DEFAULT_PACKETS / 2) {
		for (int c = 0; c < C_COUNT; c++) {
			/* The world sets no budget for the slow path, no
			 * concurrency limit and no completion address:
			 * test_admission.c and test_load.c cover those. */
			if (!T.counters[c] && c != C_RETAG_FAILED && c != C_SHED &&
			    c != C_SHED_DROPPED && c < C_TOKEN_OVERFLOW) {
				fprintf(stderr, "test_random: counter %s was never exercised\n", ctr_name[c]);
				problems++;
			}
		}
		for (int v = 0; v < 2; v++) {
			if (!T.forwarded_to_vlan[v]) {
				fprintf(stderr, "test_random: nothing was forwarded to a backend %s a VLAN\n",
					v ? "with" : "without");
				problems++;
			}
		}
	}
	fixture_teardown(&fx);
	free(aff_table);
	if (failed_packets) {
		fprintf(stderr, "\ntest_random: seed=0x%llx: %ld failing frames%s\n",
			(unsigned long long)seed, failed_packets,
			failed_packets >= MAX_FAILING_FRAMES ? " (stopped early)" : "");
		for (int k = 0; k < nkinds; k++)
			fprintf(stderr, "  %-20s %7ld frames, first at packet %ld\n", kinds[k].kind,
				kinds[k].count, kinds[k].first_packet);
	}
	if (failed_packets || problems)
		fail_msg("seed 0x%llx: %ld failing frames, %d end-of-run problems",
			 (unsigned long long)seed, failed_packets, problems);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_traffic),
	};

	seed = env_u64("TETHER_TEST_SEED", DEFAULT_SEED);
	packets_total = (long)env_u64("TETHER_TEST_PACKETS", DEFAULT_PACKETS);
	max_reports = (long)env_u64("TETHER_TEST_REPORTS", 3);
	printf("test_random: seed=0x%llx packets=%ld (TETHER_TEST_SEED=0x%llx reproduces this run)\n",
	       (unsigned long long)seed, packets_total, (unsigned long long)seed);
	setvbuf(stdout, NULL, _IOLBF, 0); /* in order with the failures on stderr */
	pkt_addr4(vip4, PKT_TEST_VIP4); /* first 4 bytes */
	pkt_addr6(vip6, PKT_TEST_VIP6);
	pkt_v4mapped(vip4_mapped, PKT_TEST_VIP4);
	fixture_enter_netns();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
