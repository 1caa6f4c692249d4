// SPDX-License-Identifier: MIT
/* Unit tests of the DxHash pool table: the probe sequence (uniform,
 * independent steps, nested across capacities), determinism (input order,
 * history), minimal disruption (a member leaving moves exactly its keys, one
 * joining takes keys only for itself, also through fallbacks), balance, the
 * probe bound and its fallback, the store's bucket rule, rejected input.
 * Pools and keys come from a seeded PRNG, so every run tests the same. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dataplane/dxhash.h"

/* splitmix64 */
static __u64 next_random(__u64 *state)
{
	__u64 z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A built table with the members it was built from. */
struct pool {
	struct dxhash_member *members;
	size_t n;
	__u32 levels;
	__u32 *table;
};

static size_t table_bytes(__u32 levels)
{
	return DXHASH_TABLE_ENTRIES(levels) * sizeof(__u32);
}

static void pool_build(struct pool *pool, __u32 levels)
{
	free(pool->table);
	pool->levels = levels;
	pool->table = malloc(table_bytes(levels));
	assert_non_null(pool->table);
	assert_int_equal(dxhash_build(pool->members, pool->n, pool->table, levels), 0);
}

static void pool_build_fitted(struct pool *pool)
{
	int levels = dxhash_levels(pool->members, pool->n);

	assert_true(levels >= 0);
	pool_build(pool, levels);
}

/* n members with buckets 0..n-1 (a pool grown from empty with the
 * lowest-free rule); member i has slot 1000 + i. */
static struct pool dense_pool(size_t n)
{
	struct pool pool = { .members = calloc(n + 1, sizeof(*pool.members)), .n = n };

	assert_non_null(pool.members);
	for (size_t i = 0; i < n; i++)
		pool.members[i] = (struct dxhash_member){ .bucket = i, .slot = 1000 + i };
	pool_build_fitted(&pool);
	return pool;
}

/* n members on distinct random buckets below 'below' (a pool that shrank). */
static struct pool sparse_pool(size_t n, __u32 below, __u64 *rng)
{
	struct pool pool = { .members = calloc(n + 1, sizeof(*pool.members)), .n = n };
	__u8 *taken = calloc(below, 1);

	assert_true(pool.members && taken && n <= below);
	for (size_t i = 0; i < n; i++) {
		__u32 bucket;

		do
			bucket = next_random(rng) % below;
		while (taken[bucket]);
		taken[bucket] = 1;
		pool.members[i] = (struct dxhash_member){ .bucket = bucket, .slot = 1000 + i };
	}
	free(taken);
	pool_build_fitted(&pool);
	return pool;
}

static void pool_free(struct pool *pool)
{
	free(pool->members);
	free(pool->table);
}

/* The slot of every key, keys from a fixed seed. */
static __u32 *place_keys(const struct pool *pool, size_t keys, __u64 seed)
{
	__u32 *slots = malloc(keys * sizeof(*slots));

	assert_non_null(slots);
	for (size_t k = 0; k < keys; k++)
		slots[k] = dxhash_lookup(pool->table, next_random(&seed), NULL);
	return slots;
}

/* ---- the probe sequence ---- */

/* Each step is uniform over the table's buckets, and two steps of one walk
 * are independent (pairs uniform too). */
static void test_walk_uniform_and_independent(void **state)
{
	static const __u32 levels[] = { 1, 2, 4, 6 };
	__u64 rng = 1;

	(void)state;
	for (size_t l = 0; l < ARRAY_SIZE(levels); l++) {
		__u32 capacity = 1u << levels[l];
		__u32 *single = calloc(capacity, sizeof(*single));
		__u32 *pairs = calloc((size_t)capacity * capacity, sizeof(*pairs));
		size_t walks = 10000 * capacity;

		assert_true(single && pairs);
		for (size_t w = 0; w < walks; w++) {
			__u64 key = next_random(&rng), steps = 0;
			__u32 first = dxhash_walk_next(key, levels[l], &steps);
			__u32 previous = first;

			assert_true(first < capacity);
			single[first]++;
			for (int i = 1; i < DXHASH_WALK_MAX; i++) {
				__u32 bucket = dxhash_walk_next(key, levels[l], &steps);

				assert_true(bucket < capacity);
				single[bucket]++;
				if (i == 1 || i == 14)
					pairs[previous * capacity + bucket]++;
				previous = bucket;
			}
		}
		/* Counts within 5 standard deviations of the mean. */
		double mean = (double)walks * DXHASH_WALK_MAX / capacity;

		for (__u32 b = 0; b < capacity; b++)
			assert_true(fabs(single[b] - mean) < 5 * sqrt(mean));
		double pair_mean = 2.0 * walks / ((double)capacity * capacity);

		for (__u32 p = 0; p < capacity * capacity; p++)
			assert_true(fabs(pairs[p] - pair_mean) < 5 * sqrt(pair_mean));
		free(single);
		free(pairs);
	}
}

/* A large table: every level gets its share (half the steps land in the
 * upper half, a quarter in the next, ...). */
static void test_walk_levels_share(void **state)
{
	__u32 per_level[DXHASH_MAX_LEVELS + 1] = { 0 };
	__u64 rng = 2;
	size_t steps_taken = 0;

	(void)state;
	for (int w = 0; w < 200000; w++) {
		__u64 key = next_random(&rng), steps = 0;

		for (int i = 0; i < DXHASH_WALK_MAX; i++) {
			__u32 bucket = dxhash_walk_next(key, DXHASH_MAX_LEVELS, &steps);
			int level = 0;

			while (bucket >> level)
				level++;
			per_level[level]++;
			steps_taken++;
		}
	}
	for (int level = 1; level <= DXHASH_MAX_LEVELS; level++) {
		double expected = steps_taken * (double)(1u << (level - 1)) / DXHASH_MAX_BUCKETS;

		assert_true(fabs(per_level[level] - expected) < 5 * sqrt(expected) + 1);
	}
}

/* The steps a larger table's walk takes below 2^L are, in order, the walk of
 * the table of 2^L: the property that keeps keys in place when the table
 * grows or shrinks. */
static void test_walk_nested(void **state)
{
	__u64 rng = 3;

	(void)state;
	for (__u32 small = 0; small < DXHASH_MAX_LEVELS; small++) {
		for (__u32 large = small + 1; large <= DXHASH_MAX_LEVELS; large += 3) {
			for (int k = 0; k < 2000; k++) {
				__u64 key = next_random(&rng), small_steps = 0, large_steps = 0;
				__u32 expected[DXHASH_WALK_MAX];

				for (int i = 0; i < DXHASH_WALK_MAX; i++)
					expected[i] = dxhash_walk_next(key, small, &small_steps);
				int matched = 0;

				for (int i = 0; i < DXHASH_WALK_MAX; i++) {
					__u32 bucket = dxhash_walk_next(key, large, &large_steps);

					if (bucket < 1u << small)
						assert_int_equal(bucket, expected[matched++]);
				}
			}
		}
	}
}

/* ---- determinism ---- */

static void test_levels(void **state)
{
	struct dxhash_member members[3] = { { 0, 1 }, { 5, 2 }, { 3, 3 } };

	(void)state;
	assert_int_equal(dxhash_levels(members, 1), 0);
	assert_int_equal(dxhash_levels(members, 3), 3);
	members[1].bucket = 8;
	assert_int_equal(dxhash_levels(members, 3), 4);
	members[1].bucket = DXHASH_MAX_BUCKETS - 1;
	assert_int_equal(dxhash_levels(members, 3), DXHASH_MAX_LEVELS);
	members[1].bucket = DXHASH_MAX_BUCKETS;
	assert_int_equal(dxhash_levels(members, 3), -EINVAL);
	assert_int_equal(dxhash_levels(members, 0), -EINVAL);
}

static void shuffle(struct dxhash_member *members, size_t n, __u64 *rng)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = next_random(rng) % i;
		struct dxhash_member tmp = members[i - 1];

		members[i - 1] = members[j];
		members[j] = tmp;
	}
}

static void test_order_does_not_matter(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 10, 100, 1000, 5000 };
	__u64 rng = 4;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct pool pool = sparse_pool(sizes[i], 3 * sizes[i], &rng);
		size_t bytes = table_bytes(pool.levels);
		__u32 *again = malloc(bytes);

		assert_non_null(again);
		for (int round = 0; round < 3; round++) {
			shuffle(pool.members, pool.n, &rng);
			assert_int_equal(dxhash_build(pool.members, pool.n, again, pool.levels), 0);
			assert_memory_equal(again, pool.table, bytes);
		}
		free(again);
		pool_free(&pool);
	}
}

/* A store's history: containers becoming warm (buckets by the lowest-free
 * rule) and leaving at random. A router that lived through it (rebuilding at every
 * change) and one that syncs at the end from the store's (bucket, slot) pairs
 * build the same table; so does one that sees the pairs in another order. */
static void test_history_does_not_matter(void **state)
{
	enum { HELD_MAX = 600 };
	struct dxhash_member held[HELD_MAX];
	__u32 buckets[HELD_MAX];
	size_t n = 0;
	__u32 next_slot = 0;
	__u64 rng = 5;
	struct pool lived = { 0 };

	(void)state;
	for (int event = 0; event < 3000; event++) {
		int add = n < 2 || (n < HELD_MAX && next_random(&rng) % 100 < 55);

		if (add) {
			for (size_t i = 0; i < n; i++)
				buckets[i] = held[i].bucket;
			int bucket = dxhash_lowest_free_bucket(buckets, n);

			assert_true(bucket >= 0);
			held[n++] = (struct dxhash_member){ .bucket = bucket, .slot = next_slot++ };
		} else {
			size_t gone = next_random(&rng) % n;

			held[gone] = held[--n];
		}
		lived.members = held;
		lived.n = n;
		pool_build_fitted(&lived);
	}
	struct dxhash_member synced[HELD_MAX];

	memcpy(synced, held, n * sizeof(*held));
	shuffle(synced, n, &rng);
	struct pool fresh = { .members = synced, .n = n };

	pool_build_fitted(&fresh);
	assert_int_equal(fresh.levels, lived.levels);
	assert_memory_equal(fresh.table, lived.table, table_bytes(lived.levels));
	free(fresh.table);
	free(lived.table);
}

/* ---- contents ---- */

/* The header holds the levels, warm buckets name their container, other
 * buckets DXHASH_NONE, and every fallback cell names a warm container. */
static void assert_table_sound(const struct pool *pool)
{
	const __u32 *table = pool->table;
	__u32 capacity = 1u << pool->levels;
	__u8 *is_member_slot = calloc(1000 + pool->n, 1);
	__u32 warm = 0;

	assert_non_null(is_member_slot);
	assert_int_equal(table[DXHASH_LEVELS_INDEX], pool->levels);
	for (size_t i = 0; i < pool->n; i++) {
		assert_int_equal(table[DXHASH_BUCKET_INDEX(pool->members[i].bucket)],
				 pool->members[i].slot);
		is_member_slot[pool->members[i].slot] = 1;
	}
	for (__u32 b = 0; b < capacity; b++)
		warm += table[DXHASH_BUCKET_INDEX(b)] != DXHASH_NONE;
	assert_int_equal(warm, pool->n);
	for (__u32 c = 0; c < DXHASH_CELLS(pool->levels); c++) {
		__u32 slot = table[DXHASH_CELL_INDEX(pool->levels, c)];

		assert_true(slot >= 1000 && slot < 1000 + pool->n && is_member_slot[slot]);
	}
	free(is_member_slot);
}

static void test_table_sound(void **state)
{
	static const size_t sizes[] = { 1, 2, 5, 100, 1000 };
	__u64 rng = 6;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct pool dense = dense_pool(sizes[i]);
		struct pool sparse = sparse_pool(sizes[i], 16 * sizes[i] + 7, &rng);

		assert_table_sound(&dense);
		assert_table_sound(&sparse);
		pool_free(&dense);
		pool_free(&sparse);
	}
	/* One warm bucket, the highest of all: every other bucket falls back to it. */
	struct pool lone = { .members = calloc(1, sizeof(struct dxhash_member)), .n = 1 };

	lone.members[0] = (struct dxhash_member){ .bucket = DXHASH_MAX_BUCKETS - 1, .slot = 1000 };
	pool_build_fitted(&lone);
	assert_int_equal(lone.levels, DXHASH_MAX_LEVELS);
	assert_table_sound(&lone);
	pool_free(&lone);
}

/* ---- minimal disruption ----
 *
 * With the table's levels unchanged, a member leaving moves exactly the keys
 * it had (to others), and a member joining takes keys only for itself,
 * including keys placed by fallbacks: no key moves between two members that
 * stay. */

#define KEYS 200000

static void assert_only_moved(const __u32 *before, const __u32 *after, __u32 gone,
			      __u32 joined, double *moved_share)
{
	size_t moved = 0;

	for (size_t k = 0; k < KEYS; k++) {
		if (before[k] == after[k]) {
			assert_int_not_equal(after[k], gone);
			continue;
		}
		moved++;
		assert_true(before[k] == gone || after[k] == joined);
	}
	if (moved_share)
		*moved_share = (double)moved / KEYS;
}

static void remove_member(struct pool *pool, size_t index)
{
	pool->members[index] = pool->members[--pool->n];
}

/* Removes a random member other than the one holding the highest bucket (so
 * the levels stay), then adds it back. */
static void check_leave_and_join(struct pool *pool, __u64 *rng)
{
	size_t highest = 0;

	for (size_t i = 1; i < pool->n; i++)
		if (pool->members[i].bucket > pool->members[highest].bucket)
			highest = i;
	size_t gone;

	do
		gone = next_random(rng) % pool->n;
	while (gone == highest);
	struct dxhash_member member = pool->members[gone];
	__u32 levels = pool->levels;
	__u32 *before = place_keys(pool, KEYS, 77);
	size_t had = 0;

	for (size_t k = 0; k < KEYS; k++)
		had += before[k] == member.slot;
	remove_member(pool, gone);
	pool_build(pool, levels);
	assert_int_equal(dxhash_levels(pool->members, pool->n), (int)levels);
	__u32 *after = place_keys(pool, KEYS, 77);
	double moved;

	assert_only_moved(before, after, member.slot, DXHASH_NONE, &moved);
	assert_int_equal((size_t)(moved * KEYS + 0.5), had);

	/* Back: exactly the keys it had come back to it. */
	pool->members[pool->n++] = member;
	pool_build(pool, levels);
	__u32 *again = place_keys(pool, KEYS, 77);

	assert_only_moved(after, again, DXHASH_NONE, member.slot, NULL);
	assert_memory_equal(again, before, KEYS * sizeof(*before));
	free(before);
	free(after);
	free(again);
}

static void test_disruption_dense(void **state)
{
	static const size_t sizes[] = { 2, 3, 10, 100, 1000, 10000 };
	__u64 rng = 7;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct pool pool = dense_pool(sizes[i]);

		for (int trial = 0; trial < 3; trial++)
			check_leave_and_join(&pool, &rng);
		pool_free(&pool);
	}
}

/* Sparse pools: many keys miss all their probes and take fallbacks, which
 * must be as consistent as the walk. */
static void test_disruption_sparse(void **state)
{
	static const size_t sizes[] = { 2, 5, 20, 300 };
	__u64 rng = 8;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct pool pool = sparse_pool(sizes[i], 30 * sizes[i], &rng);

		for (int trial = 0; trial < 3; trial++)
			check_leave_and_join(&pool, &rng);
		pool_free(&pool);
	}
}

/* A container that replaces one just gone takes its bucket (lowest free) and
 * so exactly its keys: after leave + join cycles the keys that moved are
 * exactly those of the containers that left. */
static void test_churn_moves_the_minimum(void **state)
{
	struct pool pool = dense_pool(1000);
	__u64 rng = 9;
	__u32 *start = place_keys(&pool, KEYS, 99);
	__u32 *buckets = malloc(pool.n * sizeof(*buckets));
	__u8 *left = calloc(2000 + 100, 1);

	(void)state;
	assert_true(buckets && left);
	for (int cycle = 0; cycle < 10; cycle++) {
		size_t gone = next_random(&rng) % pool.n;

		left[pool.members[gone].slot] = 1;
		remove_member(&pool, gone);
		for (size_t i = 0; i < pool.n; i++)
			buckets[i] = pool.members[i].bucket;
		int bucket = dxhash_lowest_free_bucket(buckets, pool.n);

		assert_true(bucket >= 0);
		pool.members[pool.n++] = (struct dxhash_member){ .bucket = bucket,
								 .slot = 2000 + cycle };
	}
	pool_build_fitted(&pool);
	__u32 *end = place_keys(&pool, KEYS, 99);

	for (size_t k = 0; k < KEYS; k++)
		assert_int_equal(start[k] != end[k], left[start[k]]);
	free(start);
	free(end);
	free(buckets);
	free(left);
	pool_free(&pool);
}

/* When the table grows or shrinks (the highest warm bucket crosses a power
 * of two), keys found within the probes in both tables stay; only keys that
 * needed a fallback in one of them may move elsewhere. Measured: 1024 -> 1025
 * members moves the new member's 1/1025 and about 0.4% more. */
static void test_disruption_across_capacities(void **state)
{
	static const size_t sizes[] = { 4, 64, 1024 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct pool pool = dense_pool(sizes[i]);
		__u32 *before = place_keys(&pool, KEYS, 11);

		pool.members[pool.n++] = (struct dxhash_member){ .bucket = sizes[i], .slot = 999 };
		pool_build_fitted(&pool);
		assert_int_equal(pool.levels, dxhash_levels(pool.members, pool.n));
		__u32 *after = place_keys(&pool, KEYS, 11);
		size_t extra = 0;

		for (size_t k = 0; k < KEYS; k++)
			extra += before[k] != after[k] && after[k] != 999;
		print_message("grow %zu -> %zu members: extra moved %.3f%%\n", sizes[i],
			      sizes[i] + 1, 100.0 * extra / KEYS);
		/* Bound: twice the chance that 8 probes all miss in the larger table,
		 * which is at least half warm. */
		assert_true((double)extra / KEYS < 2.0 / 256 + 0.002);

		/* And back: the same keys return. */
		pool.n--;
		pool_build_fitted(&pool);
		__u32 *back = place_keys(&pool, KEYS, 11);

		assert_memory_equal(back, before, KEYS * sizeof(*before));
		free(back);
		free(before);
		free(after);
		pool_free(&pool);
	}
}

/* ---- balance ---- */

/* The exact share of keys each member gets, assuming ideal hashing: a walk's
 * steps are uniform and independent, so a member gets 1/n of the keys found
 * within the probes, plus its cells' part of the rest. */
static void exact_shares(const struct pool *pool, double *max_over_mean, double *fallback_share)
{
	__u32 capacity = 1u << pool->levels, cells = DXHASH_CELLS(pool->levels);
	double missed = pow(1.0 - (double)pool->n / capacity, DXHASH_PROBES);
	double *share = calloc(1000 + pool->n, sizeof(*share));
	double max = 0;

	assert_non_null(share);
	for (size_t i = 0; i < pool->n; i++)
		share[pool->members[i].slot] = (1.0 - missed) / pool->n;
	for (__u32 c = 0; c < cells; c++)
		share[pool->table[DXHASH_CELL_INDEX(pool->levels, c)]] += missed / cells;
	for (size_t i = 0; i < pool->n; i++)
		if (share[pool->members[i].slot] > max)
			max = share[pool->members[i].slot];
	*max_over_mean = max * pool->n;
	*fallback_share = missed;
	free(share);
}

static void test_balance_exact(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 10, 100, 1000, 1025, 10000, 65536 };
	__u64 rng = 10;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct pool pool = dense_pool(sizes[i]);
		double max_over_mean, fallback;

		exact_shares(&pool, &max_over_mean, &fallback);
		print_message("%zu members: max/mean %.4f, fallback share %.5f\n", sizes[i],
			      max_over_mean, fallback);
		/* Pools grown from empty are more than half warm: the busiest member
		 * gets at most 3% more than the mean (1.6% at 1025 members, the
		 * emptiest such table: 2^-8 of the keys use fallbacks). */
		assert_true(max_over_mean <= 1.03);
		pool_free(&pool);
	}
	/* A pool shrunk to a sixteenth of its table: most keys use fallbacks;
	 * the busiest member still within 15% of the mean (about 11%). */
	for (int trial = 0; trial < 5; trial++) {
		struct pool pool = sparse_pool(64, 1024, &rng);
		double max_over_mean, fallback;

		exact_shares(&pool, &max_over_mean, &fallback);
		print_message("64 warm of 1024 buckets: max/mean %.3f, fallback share %.3f\n",
			      max_over_mean, fallback);
		assert_true(max_over_mean <= 1.15);
		pool_free(&pool);
	}
}

/* The real hash: a million keys on 100 members. */
static void test_balance_measured(void **state)
{
	struct pool pool = dense_pool(100);
	__u32 *slots = place_keys(&pool, 1000000, 12);
	__u32 counts[100] = { 0 };

	(void)state;
	for (size_t k = 0; k < 1000000; k++) {
		assert_true(slots[k] >= 1000 && slots[k] < 1100);
		counts[slots[k] - 1000]++;
	}
	/* 10,000 keys each on average: 5 standard deviations is 5%. */
	for (int i = 0; i < 100; i++)
		assert_true(fabs(counts[i] - 10000.0) < 500);
	free(slots);
	pool_free(&pool);
}

/* ---- the probe bound and the fallback ---- */

static void test_probe_bound(void **state)
{
	struct pool pool = { .members = calloc(3, sizeof(struct dxhash_member)), .n = 3 };
	__u64 rng = 13;
	size_t fell_back = 0, seen[3] = { 0 };

	(void)state;
	/* Three warm buckets in a table of 65,536: nearly every key misses its
	 * probes and takes its fallback cell. */
	pool.members[0] = (struct dxhash_member){ 7, 1000 };
	pool.members[1] = (struct dxhash_member){ 40000, 1001 };
	pool.members[2] = (struct dxhash_member){ DXHASH_MAX_BUCKETS - 1, 1002 };
	pool_build_fitted(&pool);
	for (int k = 0; k < 300000; k++) {
		__u32 probes = 0;
		__u32 slot = dxhash_lookup(pool.table, next_random(&rng), &probes);

		assert_true(probes >= 1 && probes <= DXHASH_PROBES + 1);
		assert_true(slot >= 1000 && slot <= 1002);
		seen[slot - 1000]++;
		fell_back += probes == DXHASH_PROBES + 1;
	}
	assert_true(fell_back > 299000);
	/* Fallbacks spread over the warm members (a third each, within 5%). */
	for (int i = 0; i < 3; i++)
		assert_true(fabs(seen[i] - 100000.0) < 5000);
	pool_free(&pool);

	/* A full table: one probe always. */
	struct pool full = dense_pool(256);

	for (int k = 0; k < 10000; k++) {
		__u32 probes = 0;

		dxhash_lookup(full.table, next_random(&rng), &probes);
		assert_int_equal(probes, 1);
	}
	pool_free(&full);
}

/* ---- the store's bucket rule ---- */

static void test_lowest_free_bucket(void **state)
{
	__u32 held[] = { 3, 0, 1, 5, 1 };
	__u32 *all = malloc(DXHASH_MAX_BUCKETS * sizeof(*all));

	(void)state;
	assert_non_null(all);
	assert_int_equal(dxhash_lowest_free_bucket(NULL, 0), 0);
	assert_int_equal(dxhash_lowest_free_bucket(held, 1), 0);
	assert_int_equal(dxhash_lowest_free_bucket(held, 2), 1);
	assert_int_equal(dxhash_lowest_free_bucket(held, 3), 2);
	assert_int_equal(dxhash_lowest_free_bucket(held, 5), 2);
	for (__u32 i = 0; i < DXHASH_MAX_BUCKETS; i++)
		all[i] = DXHASH_MAX_BUCKETS - 1 - i;
	assert_int_equal(dxhash_lowest_free_bucket(all, DXHASH_MAX_BUCKETS), -ENOSPC);
	/* All but 0; all but the highest. */
	assert_int_equal(dxhash_lowest_free_bucket(all, DXHASH_MAX_BUCKETS - 1), 0);
	assert_int_equal(dxhash_lowest_free_bucket(all + 1, DXHASH_MAX_BUCKETS - 1),
			 DXHASH_MAX_BUCKETS - 1);
	free(all);
}

static void test_compaction_move(void **state)
{
	__u32 dense[] = { 0, 1, 2, 3 }, gap[] = { 0, 5, 2 }, lone[] = { 1 }, top[] = { 7, 0 };
	__u32 from = 99, to = 99;

	(void)state;
	assert_int_equal(dxhash_compaction_move(NULL, 0, DXHASH_NONE, &from, &to), 0);
	assert_int_equal(dxhash_compaction_move(dense, 4, DXHASH_NONE, &from, &to), 0);
	assert_int_equal(dxhash_compaction_move(lone, 1, 0, &from, &to), 0); /* 1 < 2 */
	assert_int_equal(dxhash_compaction_move(gap, 3, 1, &from, &to), 0);  /* 5 < 6 */
	assert_int_equal(from, 99);
	/* 5 >= 4: the highest moves to the lowest free bucket, */
	assert_int_equal(dxhash_compaction_move(gap, 2, DXHASH_NONE, &from, &to), 1);
	assert_int_equal(from, 5);
	assert_int_equal(to, 1);
	/* or to the freed one, when it is free and lower, */
	assert_int_equal(dxhash_compaction_move(gap, 2, 3, &from, &to), 1);
	assert_int_equal(from, 5);
	assert_int_equal(to, 3);
	/* but not when it is held or higher. */
	assert_int_equal(dxhash_compaction_move(top, 2, 0, &from, &to), 1);
	assert_int_equal(to, 1);
	assert_int_equal(dxhash_compaction_move(top, 2, 9, &from, &to), 1);
	assert_int_equal(from, 7);
	assert_int_equal(to, 1);
}

/* A pool shrinking from 1000 warm containers to 10, the store compacting
 * after each departure: at most two moves each, the table stays at least a
 * quarter warm, and the keys that move were on the departed container or on
 * a moved one, or go to a moved one: no key moves between two containers
 * that kept their buckets. */
static void test_compaction_keeps_tables_dense(void **state)
{
	struct pool pool = dense_pool(1000);
	__u32 *buckets = malloc(1000 * sizeof(*buckets));
	__u8 *moved_slot = calloc(2000, 1);
	__u64 rng = 15;
	size_t keys = 20000, extra_total = 0;

	(void)state;
	assert_true(buckets && moved_slot);
	__u32 *before = place_keys(&pool, keys, 5);

	while (pool.n > 10) {
		size_t gone = next_random(&rng) % pool.n;
		int moves = 0;
		__u32 from, to;

		__u32 freed = pool.members[gone].bucket;

		memset(moved_slot, 0, 2000);
		moved_slot[pool.members[gone].slot] = 1;
		remove_member(&pool, gone);
		for (;;) {
			for (size_t i = 0; i < pool.n; i++)
				buckets[i] = pool.members[i].bucket;
			int move = dxhash_compaction_move(buckets, pool.n, freed, &from, &to);

			assert_true(move >= 0);
			if (!move)
				break;
			moves++;
			freed = DXHASH_NONE;
			for (size_t i = 0; i < pool.n; i++)
				if (pool.members[i].bucket == from) {
					pool.members[i].bucket = to;
					moved_slot[pool.members[i].slot] = 1;
				}
		}
		assert_true(moves <= 2);
		__u32 levels = pool.levels;

		pool_build_fitted(&pool);
		assert_true((1u << pool.levels) <= 4 * pool.n);
		__u32 *after = malloc(keys * sizeof(*after));
		__u64 seed = 5;

		assert_non_null(after);
		for (size_t k = 0; k < keys; k++)
			after[k] = dxhash_lookup(pool.table, next_random(&seed), NULL);
		size_t extra = 0;

		for (size_t k = 0; k < keys; k++)
			extra += before[k] != after[k] && !moved_slot[before[k]] &&
				 !moved_slot[after[k]];
		/* With the table's size unchanged, nothing else; when it halves,
		 * keys that took fallback cells move too (a table a quarter warm
		 * sends (3/4)^8 = 10% of keys to cells). */
		if (pool.levels == levels)
			assert_int_equal(extra, 0);
		extra_total += extra;
		free(before);
		before = after;
	}
	print_message("shrink 1000 -> 10: keys moved apart from the departed and moved "
		      "containers' (when the table halved): %.2f%% in all\n",
		      100.0 * extra_total / keys);
	free(before);
	free(buckets);
	free(moved_slot);
	pool_free(&pool);
}

/* ---- rejected input ---- */

static int build_into_canary(const struct dxhash_member *members, size_t n, __u32 levels)
{
	__u32 table[DXHASH_TABLE_ENTRIES(4)], canary[DXHASH_TABLE_ENTRIES(4)];
	int err;

	memset(canary, 0xa5, sizeof(canary));
	memcpy(table, canary, sizeof(table));
	assert_true(levels > DXHASH_MAX_LEVELS || levels <= 4);
	err = dxhash_build(members, n, table, levels);
	if (err)
		assert_memory_equal(table, canary, sizeof(table));
	return err;
}

static void test_errors(void **state)
{
	struct dxhash_member members[4] = { { 0, 10 }, { 3, 11 }, { 3, 12 }, { 9, 13 } };

	(void)state;
	assert_int_equal(build_into_canary(members, 0, 2), -EINVAL);
	assert_int_equal(build_into_canary(NULL, 0, 2), -EINVAL);
	/* Two members on one bucket. */
	assert_int_equal(build_into_canary(members, 3, 2), -EINVAL);
	/* A bucket beyond the table. */
	members[2].bucket = 2;
	assert_int_equal(build_into_canary(members, 4, 3), -EINVAL);
	assert_int_equal(build_into_canary(members, 2, 1), -EINVAL);
	assert_int_equal(build_into_canary(members, 1, DXHASH_MAX_LEVELS + 1), -EINVAL);
	/* The slot that means "no container". */
	members[0].slot = DXHASH_NONE;
	assert_int_equal(build_into_canary(members, 1, 0), -EINVAL);
	members[0].slot = 10;
	/* Valid now. */
	assert_int_equal(build_into_canary(members, 4, 4), 0);
	assert_int_equal(build_into_canary(members, 3, 2), 0);
	assert_int_equal(build_into_canary(members, 1, 0), 0);
}

static void test_digest(void **state)
{
	struct dxhash_member members[64], reversed[64];

	(void)state;
	for (__u32 i = 0; i < 64; i++) {
		members[i] = (struct dxhash_member){ .bucket = i * 3, .slot = 500 + i * 7 };
		reversed[63 - i] = members[i];
	}
	__u64 digest = dxhash_digest(members, 64);

	assert_int_equal(dxhash_digest(reversed, 64), digest);
	assert_int_not_equal(dxhash_digest(members, 63), digest);
	for (__u32 i = 0; i < 64; i += 9) {
		struct dxhash_member saved = members[i];

		members[i].slot++;
		assert_int_not_equal(dxhash_digest(members, 64), digest);
		members[i] = saved;
		members[i].bucket++;
		assert_int_not_equal(dxhash_digest(members, 64), digest);
		members[i] = saved;
	}
	/* Two members trading buckets make another table. */
	__u32 bucket = members[0].bucket;

	members[0].bucket = members[1].bucket;
	members[1].bucket = bucket;
	assert_int_not_equal(dxhash_digest(members, 64), digest);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_uniform_and_independent),
		cmocka_unit_test(test_walk_levels_share),
		cmocka_unit_test(test_walk_nested),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_order_does_not_matter),
		cmocka_unit_test(test_history_does_not_matter),
		cmocka_unit_test(test_table_sound),
		cmocka_unit_test(test_disruption_dense),
		cmocka_unit_test(test_disruption_sparse),
		cmocka_unit_test(test_churn_moves_the_minimum),
		cmocka_unit_test(test_disruption_across_capacities),
		cmocka_unit_test(test_balance_exact),
		cmocka_unit_test(test_balance_measured),
		cmocka_unit_test(test_probe_bound),
		cmocka_unit_test(test_lowest_free_bucket),
		cmocka_unit_test(test_compaction_move),
		cmocka_unit_test(test_compaction_keeps_tables_dense),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_digest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
