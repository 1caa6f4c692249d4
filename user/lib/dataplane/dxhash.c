// SPDX-License-Identifier: MIT
/* DxHash table builder. A warm bucket's entry names its container. Each
 * fallback cell names the first warm bucket of the cell's own walk (as a key
 * with the cell's pseudo-key would find it), so the fallback is consistent as
 * the walk is: removing a member changes only cells that named it, adding one
 * changes cells only to it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dxhash.h"

/* Seeds of a cell's pseudo-keys; part of the placement. */
#define DXHASH_SEED_FALLBACK 0xc2b2ae3d27d4eb4fULL
#define DXHASH_SEED_RENDEZVOUS 0x165667b19e3779f9ULL
/* A cell walks this many segments of DXHASH_WALK_MAX steps (one pseudo-key
 * each, as a walk counts to 15 per level) before it settles by rendezvous
 * hashing over the warm buckets: with a table a quarter warm, 60 steps all
 * miss with probability 3e-8, and with very few warm buckets rendezvous
 * costs little. Both rules are consistent, so their chain is. */
#define DXHASH_FALLBACK_SEGMENTS 4

/* Bump when the placement changes (seeds, sequence, probes, fallback rule). */
#define DXHASH_ALGORITHM_VERSION 1

int dxhash_levels(const struct dxhash_member *members, size_t n)
{
	__u32 highest = 0;
	int levels = 0;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (members[i].bucket >= DXHASH_MAX_BUCKETS)
			return -EINVAL;
		if (members[i].bucket > highest)
			highest = members[i].bucket;
	}
	while ((1u << levels) <= highest)
		levels++;
	return levels;
}

static __u32 bucket_slot(const __u32 *table, __u32 bucket)
{
	return table[DXHASH_BUCKET_INDEX(bucket)];
}

/* Highest random weight over the warm buckets, listed in bucket order (ties,
 * 2^-64 rare, go to the lower bucket on every router). */
static __u32 rendezvous(const __u32 *warm, size_t n, __u64 pseudo_key)
{
	__u32 best = warm[0];
	__u64 best_weight = 0;

	for (size_t i = 0; i < n; i++) {
		__u64 weight = tether_mix64(pseudo_key ^ (warm[i] * DXHASH_SEED_RENDEZVOUS));

		if (i == 0 || weight > best_weight) {
			best = warm[i];
			best_weight = weight;
		}
	}
	return best;
}

static __u32 cell_bucket(const __u32 *table, __u32 levels, const __u32 *warm, size_t n,
			 __u32 cell)
{
	for (__u64 segment = 0; segment < DXHASH_FALLBACK_SEGMENTS; segment++) {
		__u64 pseudo_key = tether_mix64((segment << 32 | cell) ^ DXHASH_SEED_FALLBACK);
		__u64 steps = 0;

		for (int i = 0; i < DXHASH_WALK_MAX; i++) {
			__u32 bucket = dxhash_walk_next(pseudo_key, levels, &steps);

			if (bucket_slot(table, bucket) != DXHASH_NONE)
				return bucket;
		}
	}
	return rendezvous(warm, n, tether_mix64(cell ^ DXHASH_SEED_RENDEZVOUS));
}

static int check_members(const struct dxhash_member *members, size_t n, __u32 levels,
			 __u8 *seen)
{
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		__u32 bucket = members[i].bucket;

		if (bucket >= 1u << levels || members[i].slot == DXHASH_NONE || seen[bucket])
			return -EINVAL;
		seen[bucket] = 1;
	}
	return 0;
}

int dxhash_build(const struct dxhash_member *members, size_t n, __u32 *table, __u32 levels)
{
	if (levels > DXHASH_MAX_LEVELS)
		return -EINVAL;

	__u32 capacity = 1u << levels, entries = DXHASH_TABLE_ENTRIES(levels);
	__u8 *seen = calloc(capacity, 1);
	__u32 *built = malloc((size_t)entries * sizeof(*built));
	__u32 *warm = malloc((n ? n : 1) * sizeof(*warm));
	size_t count = 0;
	int err = -ENOMEM;

	if (!seen || !built || !warm)
		goto out;
	err = check_members(members, n, levels, seen);
	if (err)
		goto out;
	/* Built aside, then copied: the caller's table stays as it was on error. */
	built[DXHASH_LEVELS_INDEX] = levels;
	for (__u32 b = 0; b < capacity; b++)
		built[DXHASH_BUCKET_INDEX(b)] = DXHASH_NONE;
	for (size_t i = 0; i < n; i++)
		built[DXHASH_BUCKET_INDEX(members[i].bucket)] = members[i].slot;
	for (__u32 b = 0; b < capacity; b++)
		if (bucket_slot(built, b) != DXHASH_NONE)
			warm[count++] = b;
	for (__u32 c = 0; c < DXHASH_CELLS(levels); c++)
		built[DXHASH_CELL_INDEX(levels, c)] =
			bucket_slot(built, cell_bucket(built, levels, warm, count, c));
	memcpy(table, built, (size_t)entries * sizeof(*built));
out:
	free(warm);
	free(built);
	free(seen);
	return err;
}

__u32 dxhash_lookup(const __u32 *table, __u64 key_hash, __u32 *probes)
{
	__u32 levels = table[DXHASH_LEVELS_INDEX];
	__u64 steps = 0;

	for (__u32 probe = 1; probe <= DXHASH_PROBES; probe++) {
		__u32 slot = bucket_slot(table, dxhash_walk_next(key_hash, levels, &steps));

		if (slot != DXHASH_NONE) {
			if (probes)
				*probes = probe;
			return slot;
		}
	}
	if (probes)
		*probes = DXHASH_PROBES + 1;
	return table[DXHASH_CELL_INDEX(levels, dxhash_fallback_cell(key_hash, levels))];
}

static int compare_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return (x > y) - (x < y);
}

/* A sorted copy of held[], or NULL. */
static __u32 *sorted_buckets(const __u32 *held, size_t n)
{
	__u32 *sorted = malloc((n ? n : 1) * sizeof(*sorted));

	if (!sorted)
		return NULL;
	if (n)
		memcpy(sorted, held, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), compare_u32);
	return sorted;
}

static __u32 lowest_free(const __u32 *sorted, size_t n)
{
	__u32 candidate = 0;

	for (size_t i = 0; i < n && sorted[i] <= candidate; i++)
		if (sorted[i] == candidate)
			candidate++;
	return candidate;
}

int dxhash_lowest_free_bucket(const __u32 *held, size_t n)
{
	__u32 *sorted = sorted_buckets(held, n);

	if (!sorted)
		return -ENOMEM;
	__u32 bucket = lowest_free(sorted, n);

	free(sorted);
	return bucket < DXHASH_MAX_BUCKETS ? (int)bucket : -ENOSPC;
}

static int is_held(const __u32 *sorted, size_t n, __u32 bucket)
{
	return bsearch(&bucket, sorted, n, sizeof(*sorted), compare_u32) != NULL;
}

int dxhash_compaction_move(const __u32 *held, size_t n, __u32 freed, __u32 *from, __u32 *to)
{
	if (n == 0)
		return 0;
	__u32 *sorted = sorted_buckets(held, n);

	if (!sorted)
		return -ENOMEM;
	__u32 highest = sorted[n - 1];
	int move = highest >= 2 * n;

	if (move) {
		*from = highest;
		/* Either is below highest: fewer than highest buckets are held. */
		*to = freed < highest && !is_held(sorted, n, freed) ? freed : lowest_free(sorted, n);
	}
	free(sorted);
	return move;
}

__u64 dxhash_digest(const struct dxhash_member *members, size_t n)
{
	/* An order-independent sum, as maglev_digest() (tetherd's own members). */
	__u64 sum = tether_mix64(((__u64)DXHASH_ALGORITHM_VERSION << 32) ^ n ^ DXHASH_SEED_FALLBACK);

	for (size_t i = 0; i < n; i++)
		sum += tether_mix64(((__u64)members[i].bucket << 32 | members[i].slot) ^
				    DXHASH_SEED_STEP);
	return sum;
}
