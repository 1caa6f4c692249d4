// SPDX-License-Identifier: MIT
/* Consistent hashing for pools, measured in one run: today's Maglev table
 * (maglev_build at maglev_table_size) against the DxHash table
 * (user/lib/dataplane/dxhash.c), and AnchorHash (tools/bench/anchorhash.c, in userspace
 * only), for pools of 10, 100, 1,000 and 10,000 containers:
 *  - disruption: the share of keys that move when one container leaves, when
 *    one joins, over 10 leave + join cycles, and when the pool crosses a
 *    power of two; each against the least that must move;
 *  - balance of a million keys (busiest / mean, standard deviation) and the
 *    table's own (the busiest member's expected share / the mean);
 *  - build time and table memory;
 *  - lookup cost in userspace and in BPF (tools/bench/hash_lookup.bpf.c
 *    through BPF_PROG_TEST_RUN, one key or a new key every run, median of
 *    runs), with the same run's floor (key, hash and outer-map lookup);
 *  - how far two AnchorHash instances with the same working set, reached
 *    by removals in two orders, place keys apart.
 * The BPF answers are checked against userspace's for sampled keys.
 *
 *   bench_hash [--quick] [--json FILE]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench/anchorhash.h"
#include "bench/hash_lookup.h"
#include "dataplane/dxhash.h"
#include "hash_lookup.skel.h"
#include "dataplane/maglev.h"
#include "tether/hash.h"
#include "tether/maps.h"

#define FUNCTION_ID 4242
#define CHURN_CYCLES 10

struct scale {
	size_t keys;          /* keys placed for disruption and balance */
	int trials_small;     /* disruption trials for pools up to 100 */
	int trials_large;
	__u32 lookups;        /* userspace lookups per measurement */
	__u32 repeat, runs;   /* BPF_PROG_TEST_RUN */
	const size_t *pools;  /* pool sizes, ending with 0 */
	size_t shrink_from, shrink_to;
};

static const size_t full_pools[] = { 10, 100, 1000, 10000, 0 };
static const size_t quick_pools[] = { 10, 100, 1000, 0 };
static struct scale scale = { 1000000, 5, 3, 5000000, 1000000, 5, full_pools, 1000, 100 };
static const struct scale quick_scale = { 100000, 1, 1, 500000, 100000, 3, quick_pools, 200, 20 };

static FILE *json;

static void fail(const char *what, int err)
{
	fprintf(stderr, "bench_hash: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void *must_alloc(size_t bytes)
{
	void *p = calloc(1, bytes ? bytes : 1);

	if (!p)
		fail("memory", ENOMEM);
	return p;
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static __u64 rng_state = 0x5eed0010ull;

static __u64 next_random(void)
{
	rng_state += 0x9e3779b97f4a7c15ull;
	return tether_mix64(rng_state);
}

static __u64 key_hash(__u64 key)
{
	return tether_hash_key(FUNCTION_ID, key);
}

/* --- pools and the two placements --- */

/* A container as the store would know it: an identity (Maglev's input), a
 * bucket given by the lowest-free rule (DxHash's input), a slot. */
struct container {
	__u64 id;
	__u32 bucket;
	__u32 slot;
};

struct pool {
	struct container *c;
	size_t n, cap;
	__u32 next_slot;
};

static struct pool pool_new(size_t n)
{
	struct pool pool = { .c = must_alloc((n + CHURN_CYCLES + 2) * sizeof(struct container)),
			     .cap = n + CHURN_CYCLES + 2 };

	for (size_t i = 0; i < n; i++)
		pool.c[pool.n++] = (struct container){ next_random(), i, pool.next_slot++ };
	return pool;
}

static void pool_leave(struct pool *pool, size_t index)
{
	pool->c[index] = pool->c[--pool->n];
}

static void pool_join(struct pool *pool)
{
	__u32 *held = must_alloc(pool->n * sizeof(*held));

	for (size_t i = 0; i < pool->n; i++)
		held[i] = pool->c[i].bucket;
	int bucket = dxhash_lowest_free_bucket(held, pool->n);

	free(held);
	if (bucket < 0 || pool->n == pool->cap)
		fail("pool_join", bucket < 0 ? bucket : ENOSPC);
	pool->c[pool->n++] = (struct container){ next_random(), bucket, pool->next_slot++ };
}

enum kind { MAGLEV, DXHASH, ANCHOR };

static const char *const algorithm_names[] = { "maglev", "dxhash", "anchor" };

/* AnchorHash's capacity: room for the pool to double. */
#define ANCHOR_CAPACITY_FACTOR 2

/* A built table of any kind, as userspace looks it up. */
struct table {
	enum kind kind;
	__u32 *entries; /* Maglev, DxHash */
	__u32 size;     /* Maglev: M; DxHash: entries in the array */
	__u32 levels;   /* DxHash */
	struct anchorhash *ah; /* AnchorHash, with the slot of each bucket */
	__u32 *slot_of;
};

static struct table build_maglev(const struct pool *pool)
{
	struct maglev_member *members = must_alloc(pool->n * sizeof(*members));
	struct table t = { .kind = MAGLEV, .size = maglev_table_size(pool->n) };

	for (size_t i = 0; i < pool->n; i++)
		members[i] = (struct maglev_member){ pool->c[i].id, pool->c[i].slot };
	t.entries = must_alloc((size_t)t.size * sizeof(__u32));
	int err = maglev_build(members, pool->n, t.entries, t.size);

	if (err)
		fail("maglev_build", err);
	free(members);
	return t;
}

static struct dxhash_member *dx_members(const struct pool *pool)
{
	struct dxhash_member *members = must_alloc(pool->n * sizeof(*members));

	for (size_t i = 0; i < pool->n; i++)
		members[i] = (struct dxhash_member){ pool->c[i].bucket, pool->c[i].slot };
	return members;
}

static struct table build_dxhash(const struct pool *pool)
{
	struct dxhash_member *members = dx_members(pool);
	int levels = dxhash_levels(members, pool->n);
	struct table t = { .kind = DXHASH };

	if (levels < 0)
		fail("dxhash_levels", levels);
	t.levels = levels;
	t.size = DXHASH_TABLE_ENTRIES(levels);
	t.entries = must_alloc((size_t)t.size * sizeof(__u32));
	int err = dxhash_build(members, pool->n, t.entries, levels);

	if (err)
		fail("dxhash_build", err);
	free(members);
	return t;
}

/* From a pool grown from empty (buckets 0..n-1), as AnchorHash starts: a
 * changed pool can only be reached by replaying its history (anchor_*). */
static struct table build_anchor(const struct pool *pool)
{
	__u32 capacity = ANCHOR_CAPACITY_FACTOR * pool->n;
	struct table t = { .kind = ANCHOR, .ah = must_alloc(sizeof(struct anchorhash)),
			   .slot_of = must_alloc(capacity * sizeof(__u32)) };
	int err = anchorhash_init(t.ah, capacity, pool->n);

	if (err)
		fail("anchorhash_init", err);
	for (size_t i = 0; i < pool->n; i++) {
		if (pool->c[i].bucket >= pool->n)
			fail("AnchorHash from a pool that changed", EINVAL);
		t.slot_of[pool->c[i].bucket] = pool->c[i].slot;
	}
	return t;
}

static struct table build(enum kind kind, const struct pool *pool)
{
	return kind == DXHASH ? build_dxhash(pool)
	       : kind == ANCHOR ? build_anchor(pool) : build_maglev(pool);
}

static void table_free(struct table *t)
{
	free(t->entries);
	if (t->ah)
		anchorhash_free(t->ah);
	free(t->ah);
	free(t->slot_of);
}

/* Kept out of line so a loop of hot lookups cannot be folded into one. */
static __attribute__((noinline)) __u32 maglev_lookup(const __u32 *table, __u32 size, __u64 hash)
{
	return table[hash % size];
}

static __u32 lookup(const struct table *t, __u64 hash)
{
	switch (t->kind) {
	case DXHASH: return dxhash_lookup(t->entries, hash, NULL);
	case ANCHOR: return t->slot_of[anchorhash_lookup(t->ah, hash)];
	default: return maglev_lookup(t->entries, t->size, hash);
	}
}

/* Bytes of the table: as a BPF array of __u32, today's Maglev array has the
 * size in entry 0 and a digest after the slots, and DxHash's would carry the
 * digest too; AnchorHash's five arrays and the slot of each bucket. */
static size_t table_bytes(const struct table *t)
{
	switch (t->kind) {
	case DXHASH: return ((size_t)t->size + 2) * 4;
	case ANCHOR: return (size_t)t->ah->capacity * 6 * 4;
	default: return (size_t)TETHER_POOL_TABLE_ENTRIES(t->size) * 4;
	}
}

/* --- disruption --- */

/* The slot of every key for the pool as it is. AnchorHash's state is its
 * history: 'anchor' (driven through the pool's events) stands for it. */
static void place(enum kind kind, const struct pool *pool, const struct table *anchor,
		  __u32 *slots)
{
	struct table t = kind == ANCHOR ? *anchor : build(kind, pool);

	for (size_t k = 0; k < scale.keys; k++)
		slots[k] = lookup(&t, key_hash(k));
	if (kind != ANCHOR)
		table_free(&t);
}

/* The pool's events applied to an AnchorHash instance (no-ops for others):
 * a join takes the bucket AnchorHash gives back, the last one removed. */
static void anchor_leave(struct table *anchor, const struct container *c)
{
	if (anchor->ah && anchorhash_remove(anchor->ah, c->bucket))
		fail("anchorhash_remove", EINVAL);
}

static void anchor_join(struct table *anchor, struct container *c)
{
	if (!anchor->ah)
		return;
	int bucket = anchorhash_add(anchor->ah);

	if (bucket < 0)
		fail("anchorhash_add", bucket);
	c->bucket = bucket;
	anchor->slot_of[bucket] = c->slot;
}

static double share_moved(const __u32 *a, const __u32 *b)
{
	size_t moved = 0;

	for (size_t k = 0; k < scale.keys; k++)
		moved += a[k] != b[k];
	return (double)moved / scale.keys;
}

static double share_on(const __u32 *slots, __u32 slot)
{
	size_t on = 0;

	for (size_t k = 0; k < scale.keys; k++)
		on += slots[k] == slot;
	return (double)on / scale.keys;
}

struct disruption {
	double leave, leave_min, join, join_min;
	double churn_steps, churn_steps_min; /* summed over the cycles' steps */
	double churn_end, churn_end_min;     /* first placement against the last */
};

/* One trial: a random container leaves, one joins; then 10 cycles of both. */
static void disruption_trial(enum kind kind, size_t n, struct disruption *d)
{
	struct pool pool = pool_new(n);
	struct table anchor = kind == ANCHOR ? build_anchor(&pool) : (struct table){ 0 };
	__u32 *start = must_alloc(scale.keys * sizeof(__u32));
	__u32 *before = must_alloc(scale.keys * sizeof(__u32));
	__u32 *after = must_alloc(scale.keys * sizeof(__u32));
	__u8 *left = must_alloc(n + 4 * CHURN_CYCLES + 4);

	place(kind, &pool, &anchor, start);
	memcpy(before, start, scale.keys * sizeof(__u32));
	for (int cycle = 0; cycle < CHURN_CYCLES; cycle++) {
		size_t gone = next_random() % pool.n;
		__u32 gone_slot = pool.c[gone].slot;

		left[gone_slot] = 1;
		anchor_leave(&anchor, &pool.c[gone]);
		pool_leave(&pool, gone);
		place(kind, &pool, &anchor, after);
		double moved = share_moved(before, after), least = share_on(before, gone_slot);

		if (cycle == 0) {
			d->leave += moved;
			d->leave_min += least;
		}
		d->churn_steps += moved;
		d->churn_steps_min += least;
		memcpy(before, after, scale.keys * sizeof(__u32));

		pool_join(&pool);
		anchor_join(&anchor, &pool.c[pool.n - 1]);
		place(kind, &pool, &anchor, after);
		moved = share_moved(before, after);
		least = share_on(after, pool.c[pool.n - 1].slot);
		if (cycle == 0) {
			d->join += moved;
			d->join_min += least;
		}
		d->churn_steps += moved;
		d->churn_steps_min += least;
		memcpy(before, after, scale.keys * sizeof(__u32));
	}
	/* At least the keys of the containers that left moved. */
	size_t must = 0;

	for (size_t k = 0; k < scale.keys; k++)
		must += left[start[k]];
	d->churn_end += share_moved(start, before);
	d->churn_end_min += (double)must / scale.keys;
	free(start);
	free(before);
	free(after);
	free(left);
	free(pool.c);
	table_free(&anchor);
}

static void json_sep(int *first)
{
	if (json && !*first)
		fprintf(json, ", ");
	*first = 0;
}

static void bench_disruption(void)
{
	int first = 1;

	printf("\nDisruption: %% of %zu keys moved (the least that must move in brackets)\n",
	       scale.keys);
	printf("%-7s %6s  %-17s %-17s %-19s %-19s\n", "", "pool", "1 leaves", "1 joins",
	       "10 cycles (steps)", "10 cycles (end)");
	if (json)
		fprintf(json, "\"disruption\": [");
	for (const size_t *n = scale.pools; *n; n++) {
		int trials = *n <= 100 ? scale.trials_small : scale.trials_large;

		for (int dx = MAGLEV; dx <= ANCHOR; dx++) {
			struct disruption d = { 0 };

			for (int t = 0; t < trials; t++)
				disruption_trial(dx, *n, &d);
			double *fields = &d.leave;

			for (int f = 0; f < 8; f++)
				fields[f] *= 100.0 / trials;
			printf("%-7s %6zu  %6.3f [%6.3f]  %6.3f [%6.3f]  %7.3f [%7.3f]  %7.3f [%7.3f]\n",
			       algorithm_names[dx], *n, d.leave, d.leave_min, d.join, d.join_min,
			       d.churn_steps, d.churn_steps_min, d.churn_end, d.churn_end_min);
			json_sep(&first);
			if (json)
				fprintf(json,
					"{\"algorithm\": \"%s\", \"pool\": %zu, \"trials\": %d, "
					"\"leave_pct\": %.4f, \"leave_min_pct\": %.4f, "
					"\"join_pct\": %.4f, \"join_min_pct\": %.4f, "
					"\"churn_steps_pct\": %.4f, \"churn_steps_min_pct\": %.4f, "
					"\"churn_end_pct\": %.4f, \"churn_end_min_pct\": %.4f}",
					algorithm_names[dx], *n, trials, d.leave, d.leave_min, d.join,
					d.join_min, d.churn_steps, d.churn_steps_min, d.churn_end,
					d.churn_end_min);
		}
	}
	if (json)
		fprintf(json, "], ");
}

/* A pool of 2^k containers gains one, and loses it again: Maglev's size
 * follows the pool's power-of-two band, DxHash's capacity its highest bucket. */
static void bench_crossing(void)
{
	const size_t n = 1024;
	int first = 1;

	printf("\nCrossing a power of two: %% of keys moved (least in brackets)\n");
	if (json)
		fprintf(json, "\"crossing\": [");
	for (int dx = 0; dx <= 1; dx++) {
		struct pool pool = pool_new(n);
		__u32 *before = must_alloc(scale.keys * sizeof(__u32));
		__u32 *grown = must_alloc(scale.keys * sizeof(__u32));
		__u32 *back = must_alloc(scale.keys * sizeof(__u32));

		place(dx, &pool, NULL, before);
		pool_join(&pool);
		place(dx, &pool, NULL, grown);
		double join = 100 * share_moved(before, grown);
		double join_min = 100 * share_on(grown, pool.c[n].slot);

		pool_leave(&pool, n);
		place(dx, &pool, NULL, back);
		double leave = 100 * share_moved(grown, back);

		printf("%-7s %zu -> %zu: %7.3f [%6.3f]   %zu -> %zu: %7.3f [%6.3f]\n",
		       algorithm_names[dx], n, n + 1, join, join_min, n + 1, n, leave, join_min);
		json_sep(&first);
		if (json)
			fprintf(json,
				"{\"algorithm\": \"%s\", \"from\": %zu, \"join_pct\": %.4f, "
				"\"leave_pct\": %.4f, \"min_pct\": %.4f}",
				algorithm_names[dx], n, join, leave, join_min);
		free(before);
		free(grown);
		free(back);
		free(pool.c);
	}
	if (json)
		fprintf(json, "], ");
}

/* --- AnchorHash's history --- */

/* Two routers' AnchorHash instances reach the same working set by removing
 * the same 10 containers in two orders (they saw the events in another order,
 * or one synced later): the share of keys they place apart. Maglev's and
 * DxHash's tables are functions of the set, so theirs is 0. */
static void bench_anchor_history(void)
{
	int first = 1;

	printf("\nAnchorHash: the same working set after the same 10 removals in two orders: "
	       "%% of keys placed apart\n");
	if (json)
		fprintf(json, "\"anchor_history\": [");
	for (const size_t *n = scale.pools; *n; n++) {
		struct pool pool = pool_new(*n);
		struct table one = build_anchor(&pool), other = build_anchor(&pool);
		__u32 gone[CHURN_CYCLES];
		size_t removals = *n - 1 < CHURN_CYCLES ? *n - 1 : CHURN_CYCLES;

		for (size_t i = 0; i < removals; i++) {
			size_t index = next_random() % pool.n;

			gone[i] = pool.c[index].bucket;
			pool_leave(&pool, index);
		}
		for (size_t i = 0; i < removals; i++)
			if (anchorhash_remove(one.ah, gone[i]) ||
			    anchorhash_remove(other.ah, gone[removals - 1 - i]))
				fail("anchorhash_remove", EINVAL);
		size_t apart = 0;

		for (size_t k = 0; k < scale.keys; k++)
			apart += lookup(&one, key_hash(k)) != lookup(&other, key_hash(k));
		double pct = 100.0 * apart / scale.keys;

		printf("  pool %6zu: %6.3f%% (the removed held %.3f%%)\n", *n, pct,
		       100.0 * removals / *n);
		json_sep(&first);
		if (json)
			fprintf(json, "{\"pool\": %zu, \"removed\": %zu, \"apart_pct\": %.4f}", *n,
				removals, pct);
		table_free(&one);
		table_free(&other);
		free(pool.c);
	}
	if (json)
		fprintf(json, "], ");
}

/* --- a pool shrinking --- */

/* Final pools of the DxHash shrinks (without, with compaction), for the BPF
 * section to time their tables. */
static struct pool shrunk[2];

/* The store's rule (dxhash_compaction_move) after a container left. */
static void compact(struct pool *pool, __u32 freed)
{
	__u32 *held = must_alloc(pool->n * sizeof(*held));
	__u32 from, to;

	for (;;) {
		for (size_t i = 0; i < pool->n; i++)
			held[i] = pool->c[i].bucket;
		int move = dxhash_compaction_move(held, pool->n, freed, &from, &to);

		if (move < 0)
			fail("dxhash_compaction_move", move);
		if (!move)
			break;
		for (size_t i = 0; i < pool->n; i++)
			if (pool->c[i].bucket == from)
				pool->c[i].bucket = to;
		freed = DXHASH_NONE;
	}
	free(held);
}

static double dx_expected_probes(double warm_share)
{
	double missed = pow(1 - warm_share, DXHASH_PROBES);

	return (1 - missed) / warm_share + missed;
}

/* scale.shrink_from warm containers leave one by one, in the same order for
 * every policy, down to scale.shrink_to: each step's keys moved against the
 * departed container's share, summed. Full runs place 100,000 keys a step. */
static void bench_shrink(void)
{
	static const char *const policies[] = { "maglev", "dxhash, no compaction",
						"dxhash, compaction" };
	int first = 1;

	size_t keys = scale.keys;

	scale.keys = keys < 100000 ? keys : 100000;
	printf("\nA pool shrinking from %zu to %zu, one container at a time: %% of %zu keys moved, "
	       "summed over the steps\n", scale.shrink_from, scale.shrink_to, scale.keys);
	printf("%-22s %9s %9s %6s %9s %7s %9s %7s\n", "", "moved", "least", "ratio", "buckets",
	       "warm", "fallback", "probes");
	if (json)
		fprintf(json, "\"shrink\": [");
	for (int policy = 0; policy < 3; policy++) {
		int dx = policy > 0;
		__u64 saved_rng = rng_state;
		struct pool pool = pool_new(scale.shrink_from);
		__u32 *before = must_alloc(scale.keys * sizeof(__u32));
		__u32 *after = must_alloc(scale.keys * sizeof(__u32));
		double moved = 0, least = 0;

		place(dx, &pool, NULL, before);
		while (pool.n > scale.shrink_to) {
			size_t gone = next_random() % pool.n;
			__u32 slot = pool.c[gone].slot, freed = pool.c[gone].bucket;

			pool_leave(&pool, gone);
			if (policy == 2)
				compact(&pool, freed);
			place(dx, &pool, NULL, after);
			moved += 100 * share_moved(before, after);
			least += 100 * share_on(before, slot);
			memcpy(before, after, scale.keys * sizeof(__u32));
		}
		rng_state = saved_rng; /* every policy sees the same departures */
		char buckets[16] = "-", warm[16] = "-", fallback[16] = "-", probes[16] = "-";

		if (dx) {
			struct dxhash_member *members = dx_members(&pool);
			__u32 capacity = 1u << dxhash_levels(members, pool.n);
			double share = (double)pool.n / capacity;

			snprintf(buckets, sizeof(buckets), "%u", capacity);
			snprintf(warm, sizeof(warm), "%.2f", share);
			snprintf(fallback, sizeof(fallback), "%.1f%%",
				 100 * pow(1 - share, DXHASH_PROBES));
			snprintf(probes, sizeof(probes), "%.2f", dx_expected_probes(share));
			free(members);
		}
		printf("%-22s %9.2f %9.2f %6.2f %9s %7s %9s %7s\n", policies[policy], moved, least,
		       moved / least, buckets, warm, fallback, probes);
		json_sep(&first);
		if (json)
			fprintf(json,
				"{\"policy\": \"%s\", \"from\": %zu, \"to\": %zu, \"moved_pct\": %.3f, "
				"\"least_pct\": %.3f}",
				policies[policy], scale.shrink_from, scale.shrink_to, moved, least);
		free(before);
		free(after);
		if (dx)
			shrunk[policy - 1] = pool;
		else
			free(pool.c);
	}
	next_random(); /* on from the shrinks' shared sequence */
	scale.keys = keys;
	if (json)
		fprintf(json, "], ");
}

/* --- balance, build, memory, userspace lookups --- */

/* A pool of n warm containers on distinct random buckets below 'below': a
 * pool that shrank (or has many containers starting or draining). */
static struct pool sparse_pool(size_t n, __u32 below)
{
	struct pool pool = { .c = must_alloc(n * sizeof(struct container)), .cap = n };
	__u8 *taken = must_alloc(below);

	for (size_t i = 0; i < n; i++) {
		__u32 bucket;

		do
			bucket = next_random() % below;
		while (taken[bucket]);
		taken[bucket] = 1;
		pool.c[pool.n++] = (struct container){ next_random(), bucket, pool.next_slot++ };
	}
	free(taken);
	return pool;
}

struct sparse_shape {
	size_t n;
	__u32 below;
	const char *shape;
};

/* The busiest member's expected share over the mean, from the table alone. */
static double table_max_over_mean(const struct table *t, size_t n)
{
	double *share = must_alloc(n * sizeof(double)), max = 0;

	if (t->kind == ANCHOR) {
		free(share);
		return NAN; /* no table: every key is uniform over the working set */
	}
	if (t->kind == MAGLEV) {
		for (__u32 e = 0; e < t->size; e++)
			share[t->entries[e]] += 1.0 / t->size;
	} else {
		/* Steps are uniform and independent: 1/n of the keys found within
		 * the probes each, and each cell's part of the rest. */
		__u32 capacity = 1u << t->levels, cells = DXHASH_CELLS(t->levels);
		double missed = pow(1.0 - (double)n / capacity, DXHASH_PROBES);

		for (size_t i = 0; i < n; i++)
			share[i] = (1 - missed) / n;
		for (__u32 c = 0; c < cells; c++)
			share[t->entries[DXHASH_CELL_INDEX(t->levels, c)]] += missed / cells;
	}
	for (size_t i = 0; i < n; i++)
		if (share[i] > max)
			max = share[i];
	free(share);
	return max * n;
}

static double median(double *values, int count)
{
	for (int i = 1; i < count; i++)
		for (int j = i; j > 0 && values[j] < values[j - 1]; j--) {
			double tmp = values[j];

			values[j] = values[j - 1];
			values[j - 1] = tmp;
		}
	return values[count / 2];
}

/* Median build time, ms, over enough builds to take ~0.3 s (at least 3). */
static double build_ms(enum kind kind, const struct pool *pool)
{
	double times[64];
	int count = 0;
	__u64 spent = 0;

	while (count < 64 && (count < 3 || spent < 300000000ull)) {
		__u64 start = now_ns();
		struct table t = build(kind, pool);
		__u64 took = now_ns() - start;

		table_free(&t);
		times[count++] = took / 1e6;
		spent += took;
	}
	return median(times, count);
}

static volatile __u32 sink;

/* ns per lookup: the same key every time, or a new key every time. */
static double lookup_ns(const struct table *t, int varied)
{
	double times[5];
	__u64 hot = key_hash(12345);

	for (int run = 0; run < 5; run++) {
		__u32 acc = 0;
		__u64 start = now_ns();

		for (__u32 i = 0; i < scale.lookups; i++)
			acc += lookup(t, varied ? key_hash(i) : hot);
		times[run] = (double)(now_ns() - start) / scale.lookups;
		sink = acc;
	}
	return median(times, 5);
}

/* The same key hashing, without a table: what lookup_ns() spends apart. */
static double hash_only_ns(void)
{
	double times[5];

	for (int run = 0; run < 5; run++) {
		__u64 acc = 0;
		__u64 start = now_ns();

		for (__u32 i = 0; i < scale.lookups; i++)
			acc += key_hash(i);
		times[run] = (double)(now_ns() - start) / scale.lookups;
		sink = (__u32)acc;
	}
	return median(times, 5);
}

static void print_pool_row(const char *algorithm, const char *shape, size_t n, __u32 buckets,
			   const struct pool *pool, enum kind kind, int *first)
{
	struct table t = build(kind, pool);
	__u32 *counts = must_alloc(pool->n * sizeof(__u32));
	size_t keys = 1000000;

	/* Slots are 0..n-1 in every pool here. */
	for (size_t k = 0; k < keys; k++)
		counts[lookup(&t, key_hash(k))]++;
	double mean = (double)keys / pool->n, max = 0, var = 0;

	for (size_t i = 0; i < pool->n; i++) {
		if (counts[i] > max)
			max = counts[i];
		var += (counts[i] - mean) * (counts[i] - mean);
	}
	double stddev_pct = 100 * sqrt(var / pool->n) / mean;
	double expected = table_max_over_mean(&t, pool->n);
	double ms = build_ms(kind, pool);
	double hot = lookup_ns(&t, 0), varied = lookup_ns(&t, 1);
	double kib = table_bytes(&t) / 1024.0;

	char expected_text[16] = "-";

	if (!isnan(expected))
		snprintf(expected_text, sizeof(expected_text), "%.4f", expected);
	printf("%-7s %-22s %6zu %7.3f %7.2f %8s %10.3f %10.1f %6.1f %6.1f\n", algorithm, shape,
	       n, max / mean, stddev_pct, expected_text, ms, kib, hot, varied);
	json_sep(first);
	if (json)
		fprintf(json,
			"{\"algorithm\": \"%s\", \"shape\": \"%s\", \"pool\": %zu, "
			"\"buckets\": %u, \"keys_max_over_mean\": %.4f, \"keys_stddev_pct\": %.3f, "
			"\"table_max_over_mean\": %.5f, \"build_ms\": %.4f, \"table_kib\": %.2f, "
			"\"lookup_hot_ns\": %.2f, \"lookup_varied_ns\": %.2f}",
			algorithm, shape, n, buckets, max / mean, stddev_pct,
			isnan(expected) ? 1.0 : expected, ms, kib, hot, varied);
	free(counts);
	table_free(&t);
}

static void bench_pools(void)
{
	int first = 1;

	printf("\nBalance of 1,000,000 keys, the table's own balance, build, memory, userspace "
	       "lookup\n");
	printf("%-7s %-22s %6s %7s %7s %8s %10s %10s %6s %6s\n", "", "pool", "size", "max/avg",
	       "sd %", "table", "build ms", "KiB", "hot ns", "var ns");
	if (json)
		fprintf(json, "\"pools\": [");
	for (const size_t *n = scale.pools; *n; n++) {
		struct pool pool = pool_new(*n);

		for (int kind = MAGLEV; kind <= ANCHOR; kind++)
			print_pool_row(algorithm_names[kind], "grown from empty", *n, *n, &pool, kind,
				       &first);
		free(pool.c);
	}
	/* DxHash's harder shapes: a sixteenth of the table warm, and nearly none
	 * (the costliest builds; --quick builds smaller ones). */
	static const struct sparse_shape full[] = {
		{ 1000, 16384, "1/16 warm (shrunk)" },
		{ 1000, 65536, "1/64 warm (shrunk)" },
		{ 3, 65536, "3 warm of 65,536" },
		{ 0, 0, NULL },
	}, quick[] = {
		{ 100, 1600, "1/16 warm (shrunk)" },
		{ 3, 4096, "3 warm of 4,096" },
		{ 0, 0, NULL },
	};
	const struct sparse_shape *sparse = scale.keys == quick_scale.keys ? quick : full;

	for (size_t i = 0; sparse[i].n; i++) {
		struct pool pool = sparse_pool(sparse[i].n, sparse[i].below);

		print_pool_row("dxhash", sparse[i].shape, sparse[i].n, sparse[i].below, &pool, DXHASH,
			       &first);
		free(pool.c);
	}
	printf("(key hashing alone: %.1f ns)\n", hash_only_ns());
	if (json)
		fprintf(json, "], ");
}

/* --- BPF --- */

struct bpf_bench {
	struct hash_lookup *skel;
	__u64 next_id;
};

/* An inner array holding the table as the data plane would, put in
 * hl_tables under a new id. Returns the id. */
static __u64 load_table(struct bpf_bench *b, const struct table *t, __u64 *memlock)
{
	__u32 entries = t->kind == DXHASH ? t->size : TETHER_POOL_TABLE_ENTRIES(t->size);
	__u32 *values = must_alloc((size_t)entries * sizeof(__u32));
	__u32 *keys = must_alloc((size_t)entries * sizeof(__u32));
	LIBBPF_OPTS(bpf_map_create_opts, create, .map_flags = BPF_F_INNER_MAP);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "hl_table", 4, 4, entries, &create);

	if (fd < 0)
		fail("creating a table map", errno);
	if (t->kind == DXHASH) {
		memcpy(values, t->entries, (size_t)entries * sizeof(__u32));
	} else {
		values[TETHER_POOL_SIZE_INDEX] = t->size;
		memcpy(&values[1], t->entries, (size_t)t->size * sizeof(__u32));
	}
	for (__u32 i = 0; i < entries; i++)
		keys[i] = i;
	__u32 count = entries;

	if (bpf_map_update_batch(fd, keys, values, &count, NULL))
		fail("filling a table map", errno);
	__u64 id = b->next_id++;

	if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.hl_tables), &id, &fd, BPF_ANY))
		fail("hl_tables", errno);
	if (memlock) {
		char path[64], line[256];

		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
		FILE *info = fopen(path, "r");

		*memlock = 0;
		while (info && fgets(line, sizeof(line), info))
			if (sscanf(line, "memlock: %llu", (unsigned long long *)memlock) == 1)
				break;
		if (info)
			fclose(info);
	}
	close(fd);
	free(values);
	free(keys);
	return id;
}

static void set_config(struct bpf_bench *b, __u64 table_id, __u64 key, int vary)
{
	struct hl_config config = { .table_id = table_id, .key = key, .vary = vary };
	__u32 zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.hl_config), &zero, &config, BPF_ANY))
		fail("hl_config", errno);
}

static void run(int prog_fd, __u32 repeat, __u32 *duration)
{
	__u8 frame[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame),
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(prog_fd, &opts))
		fail("BPF_PROG_TEST_RUN", errno);
	if (opts.retval != XDP_PASS)
		fail("unexpected XDP verdict", EINVAL);
	if (duration)
		*duration = opts.duration;
}

static struct hl_result read_result(struct bpf_bench *b, int reset)
{
	struct hl_result result;
	__u32 zero = 0;
	int fd = bpf_map__fd(b->skel->maps.hl_result);

	if (bpf_map_lookup_elem(fd, &zero, &result))
		fail("hl_result", errno);
	if (reset) {
		struct hl_result empty = { 0 };

		bpf_map_update_elem(fd, &zero, &empty, BPF_ANY);
	}
	return result;
}

/* The program's answers are userspace's, for keys of both kinds of run. */
static void check_agreement(struct bpf_bench *b, int prog_fd, __u64 id, const struct table *t)
{
	for (__u64 key = 1; key <= 300; key++) {
		set_config(b, id, key * 0x9e3779b97f4a7c15ull, 0);
		run(prog_fd, 1, NULL);
		struct hl_result got = read_result(b, 1);
		__u32 want = lookup(t, tether_hash_key(id, key * 0x9e3779b97f4a7c15ull));

		if (got.slot != want) {
			fprintf(stderr, "bench_hash: BPF answered slot %u for key %llu of table %llu, "
					"userspace %u\n",
				got.slot, (unsigned long long)key, (unsigned long long)id, want);
			exit(1);
		}
	}
}

/* Median ns per run of the program over scale.runs runs; the program must
 * have looked up a table every time. */
static double time_prog(struct bpf_bench *b, int prog_fd, __u64 id, int vary)
{
	double times[16];

	set_config(b, id, 0x1234567, vary);
	read_result(b, 1);
	for (__u32 r = 0; r < scale.runs; r++) {
		__u32 duration;

		run(prog_fd, scale.repeat, &duration);
		times[r] = duration;
	}
	struct hl_result result = read_result(b, 1);

	if (result.runs != scale.repeat * scale.runs || result.slot == HL_NO_SLOT)
		fail("a timed run did not look up its table", EINVAL);
	return median(times, scale.runs);
}

struct bpf_row {
	const char *name;
	size_t n;
	__u64 maglev_id, dx_id;
};

static void bench_bpf(void)
{
	struct bpf_bench b = { .next_id = 1 };
	struct bpf_row rows[8];
	int count = 0, first = 1;

	b.skel = hash_lookup__open_and_load();
	if (!b.skel)
		fail("loading tools/bench/hash_lookup.bpf.c (verifier log above)", errno);
	int floor_fd = bpf_program__fd(b.skel->progs.hl_floor);
	int maglev_fd = bpf_program__fd(b.skel->progs.hl_maglev);
	int dx_fd = bpf_program__fd(b.skel->progs.hl_dxhash);

	struct bpf_prog_info maglev_info = { 0 }, dx_info = { 0 };
	__u32 info_len = sizeof(maglev_info);

	if (bpf_obj_get_info_by_fd(maglev_fd, &maglev_info, &info_len) ||
	    (info_len = sizeof(dx_info), bpf_obj_get_info_by_fd(dx_fd, &dx_info, &info_len)))
		fail("bpf_obj_get_info_by_fd", errno);
	printf("\nVerifier: hl_maglev %u instructions (%u processed), hl_dxhash %u (%u processed)\n",
	       maglev_info.xlated_prog_len / 8, maglev_info.verified_insns,
	       dx_info.xlated_prog_len / 8, dx_info.verified_insns);
	printf("\nBPF_PROG_TEST_RUN, ns per run (median of %u runs of %u); the floor is the "
	       "same program without the table lookup\n", scale.runs, scale.repeat);
	printf("%-28s %6s %12s %12s %12s %12s %9s %9s\n", "pool", "size", "maglev hot",
	       "dxhash hot", "maglev var", "dxhash var", "mag KiB", "dx KiB");
	if (json)
		fprintf(json, "\"bpf\": {\"repeat\": %u, \"runs\": %u, \"maglev_insns\": %u, "
			      "\"maglev_verified_insns\": %u, \"dxhash_insns\": %u, "
			      "\"dxhash_verified_insns\": %u, \"rows\": [",
			scale.repeat, scale.runs, maglev_info.xlated_prog_len / 8,
			maglev_info.verified_insns, dx_info.xlated_prog_len / 8, dx_info.verified_insns);
	for (const size_t *n = scale.pools; *n; n++) {
		struct pool pool = pool_new(*n);
		struct table maglev = build_maglev(&pool), dx = build_dxhash(&pool);
		struct bpf_row *row = &rows[count++];
		__u64 maglev_mem, dx_mem;

		row->name = "grown from empty";
		row->n = *n;
		row->maglev_id = load_table(&b, &maglev, &maglev_mem);
		row->dx_id = load_table(&b, &dx, &dx_mem);
		check_agreement(&b, maglev_fd, row->maglev_id, &maglev);
		check_agreement(&b, dx_fd, row->dx_id, &dx);
		double mh = time_prog(&b, maglev_fd, row->maglev_id, 0);
		double dh = time_prog(&b, dx_fd, row->dx_id, 0);
		double mv = time_prog(&b, maglev_fd, row->maglev_id, 1);
		double dv = time_prog(&b, dx_fd, row->dx_id, 1);

		printf("%-28s %6zu %12.1f %12.1f %12.1f %12.1f %9.1f %9.1f\n", row->name, *n, mh,
		       dh, mv, dv, maglev_mem / 1024.0, dx_mem / 1024.0);
		json_sep(&first);
		if (json)
			fprintf(json,
				"{\"pool\": %zu, \"shape\": \"%s\", \"maglev_hot_ns\": %.1f, "
				"\"dxhash_hot_ns\": %.1f, \"maglev_varied_ns\": %.1f, "
				"\"dxhash_varied_ns\": %.1f, \"maglev_memlock\": %llu, "
				"\"dxhash_memlock\": %llu}",
				*n, row->name, mh, dh, mv, dv, (unsigned long long)maglev_mem,
				(unsigned long long)dx_mem);
		free(maglev.entries);
		free(dx.entries);
		free(pool.c);
	}
	/* DxHash at its costliest: most keys walk all probes, then a cell. */
	static const struct sparse_shape full[] = {
		{ 1000, 16384, "dxhash, 1/16 warm" },
		{ 3, 65536, "dxhash, 3 warm of 65,536" },
		{ 0, 0, NULL },
	}, quick[] = {
		{ 100, 1600, "dxhash, 1/16 warm" },
		{ 3, 4096, "dxhash, 3 warm of 4,096" },
		{ 0, 0, NULL },
	};
	const struct sparse_shape *sparse = scale.keys == quick_scale.keys ? quick : full;

	for (size_t i = 0; sparse[i].n; i++) {
		struct pool pool = sparse_pool(sparse[i].n, sparse[i].below);
		struct table dx = build_dxhash(&pool);
		__u64 id = load_table(&b, &dx, NULL);

		check_agreement(&b, dx_fd, id, &dx);
		double dh = time_prog(&b, dx_fd, id, 0), dv = time_prog(&b, dx_fd, id, 1);

		printf("%-28s %6zu %12s %12.1f %12s %12.1f\n", sparse[i].shape, sparse[i].n, "",
		       dh, "", dv);
		json_sep(&first);
		if (json)
			fprintf(json, "{\"pool\": %zu, \"shape\": \"%s\", \"dxhash_hot_ns\": %.1f, "
				      "\"dxhash_varied_ns\": %.1f}",
				sparse[i].n, sparse[i].shape, dh, dv);
		free(dx.entries);
		free(pool.c);
	}
	for (int i = 0; i < 2; i++) {
		if (!shrunk[i].c)
			continue;
		struct table dx = build_dxhash(&shrunk[i]);
		__u64 id = load_table(&b, &dx, NULL);
		const char *shape = i ? "dxhash, shrunk, compaction" : "dxhash, shrunk, none";

		check_agreement(&b, dx_fd, id, &dx);
		double dh = time_prog(&b, dx_fd, id, 0), dv = time_prog(&b, dx_fd, id, 1);

		printf("%-28s %6zu %12s %12.1f %12s %12.1f\n", shape, shrunk[i].n, "", dh, "", dv);
		json_sep(&first);
		if (json)
			fprintf(json, "{\"pool\": %zu, \"shape\": \"%s\", \"dxhash_hot_ns\": %.1f, "
				      "\"dxhash_varied_ns\": %.1f}",
				shrunk[i].n, shape, dh, dv);
		free(dx.entries);
		free(shrunk[i].c);
	}
	double fh = time_prog(&b, floor_fd, rows[0].maglev_id, 0);
	double fv = time_prog(&b, floor_fd, rows[0].maglev_id, 1);

	printf("%-28s %6s %12.1f %12s %12.1f\n", "floor (no table lookup)", "", fh, "", fv);
	if (json)
		fprintf(json, "], \"floor_hot_ns\": %.1f, \"floor_varied_ns\": %.1f}", fh, fv);
	hash_lookup__destroy(b.skel);
}

int main(int argc, char **argv)
{
	const char *json_path = NULL;
	int option;
	static const struct option options[] = { { "quick", no_argument, 0, 'q' },
						 { "json", required_argument, 0, 'j' },
						 { 0, 0, 0, 0 } };

	while ((option = getopt_long(argc, argv, "qj:", options, NULL)) != -1) {
		if (option == 'q')
			scale = quick_scale;
		else if (option == 'j')
			json_path = optarg;
		else
			return 2;
	}
	if (json_path && !(json = fopen(json_path, "w")))
		fail(json_path, errno);
	if (json)
		fprintf(json, "{\"keys\": %zu, \"probes\": %d, \"cells_per_bucket\": %d, ",
			scale.keys, DXHASH_PROBES, DXHASH_CELLS_PER_BUCKET);
	bench_pools();
	bench_disruption();
	bench_crossing();
	bench_anchor_history();
	bench_shrink();
	bench_bpf();
	if (json) {
		fprintf(json, "}\n");
		fclose(json);
	}
	return 0;
}
