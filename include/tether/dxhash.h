/* SPDX-License-Identifier: MIT */
/* The probe sequence and table layout of the DxHash pool table (see
 * docs/consistent-hashing.md), shared by the XDP side and the userspace
 * builder so that both walk the same buckets for a key.
 *
 * Every warm container of a function holds a bucket number in [0, 65536),
 * given by the store (user/lib/dataplane/dxhash.h has the rules). A key walks a
 * pseudo-random sequence of buckets and goes to the first one held by a
 * warm container (DxHash, Dong and Wang 2021). The sequence is "nested": its
 * buckets below 2^L are, in order, the whole sequence a table of 2^L buckets
 * walks. So the key's choice is the first warm bucket of one sequence over
 * all 65536 buckets, whatever the table's capacity: growing or shrinking the
 * table (a power of two above the highest warm bucket) moves no key that it
 * finds within DXHASH_PROBES steps, and removing or adding a container moves
 * only that container's keys. */
#ifndef TETHER_DXHASH_H
#define TETHER_DXHASH_H

#include <linux/types.h>

#include "tether/hash.h"

/* Buckets are 0 .. 2^DXHASH_MAX_LEVELS - 1: one per container of a pool of
 * up to 65,536 containers. */
#define DXHASH_MAX_LEVELS 16
#define DXHASH_MAX_BUCKETS (1u << DXHASH_MAX_LEVELS)

/* Buckets a lookup tries before it takes a fallback cell. With the table at
 * least half warm, a key is still unplaced after 8 probes with probability
 * <= 2^-8. At most DXHASH_WALK_MAX: a walk keeps its per-level step counts
 * in 4 bits each. */
#define DXHASH_PROBES 8
#define DXHASH_WALK_MAX 15

/* Fallback cells per bucket. A key whose probes all miss takes the cell its
 * hash names; each cell names a warm container (the first warm bucket of the
 * cell's own walk). More cells even out the fallback share when the table is
 * mostly not warm (a pool that shrank): members' shares of it differ by
 * about sqrt(warm share / cells per bucket). */
#define DXHASH_CELLS_PER_BUCKET 16

/* Mixed into the hashes; part of the placement, as MAGLEV_SEED_* are. */
#define DXHASH_SEED_STEP 0x9e3779b97f4a7c15ULL
#define DXHASH_SEED_CELL 0xd6e8feb86659fd93ULL

/* The table is one array of __u32 (a BPF array in the data plane):
 *   [0]                      levels L: the table has 2^L buckets
 *   [1 + b], b < 2^L         the slot of bucket b's warm container, or DXHASH_NONE
 *   [1 + 2^L + c], c < cells a fallback cell: a warm container's slot */
#define DXHASH_LEVELS_INDEX 0
#define DXHASH_NONE 0xffffffffu
#define DXHASH_BUCKET_INDEX(bucket) (1u + (bucket))
#define DXHASH_CELLS(levels) ((__u32)DXHASH_CELLS_PER_BUCKET << (levels))
#define DXHASH_CELL_INDEX(levels, cell) (1u + (1u << (levels)) + (cell))
#define DXHASH_TABLE_ENTRIES(levels) (1u + (1u << (levels)) + DXHASH_CELLS(levels))

/* The next bucket of a key's sequence in a table of 2^levels buckets.
 *
 * The sequence of a table of 2^L buckets (L >= 1) is that of 2^(L-1) buckets
 * with buckets of the upper half [2^(L-1), 2^L) mixed in: each step flips a
 * coin (one hash per level, counted per level); heads takes a uniform bucket
 * of the upper half, tails a step of the lower table, down to the table of
 * one bucket, whose sequence is 0, 0, 0, .... So every step is uniform over
 * [0, 2^L), steps are independent, and the steps below 2^(L-1) are exactly
 * the lower table's sequence. A step costs two hashes on average.
 *
 * *steps holds 4 bits per level: how many steps that level has taken. Start
 * it at 0; at most DXHASH_WALK_MAX calls per walk. */
static inline __u32 dxhash_walk_next(__u64 key_hash, __u32 levels, __u64 *steps)
{
	for (__u32 i = 0; i < DXHASH_MAX_LEVELS; i++) {
		if (i >= levels)
			break;
		__u32 level = levels - i;
		__u32 shift = 4 * (level - 1);
		__u64 count = (*steps >> shift) & 15;
		__u64 h;

		*steps += 1ULL << shift;
		h = tether_mix64(key_hash ^ ((((__u64)level << 32) | count) * DXHASH_SEED_STEP));
		if (h & 1) {
			__u32 half = 1u << (level - 1);

			return half | ((__u32)(h >> 1) & (half - 1));
		}
	}
	return 0;
}

/* The fallback cell of a key whose probes all missed: a hash of its own,
 * independent of the walk. */
static inline __u32 dxhash_fallback_cell(__u64 key_hash, __u32 levels)
{
	return (__u32)tether_mix64(key_hash ^ DXHASH_SEED_CELL) & (DXHASH_CELLS(levels) - 1);
}

#endif
