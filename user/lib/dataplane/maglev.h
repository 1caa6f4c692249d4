/* SPDX-License-Identifier: MIT */
/* Maglev consistent hashing (Eisenbud et al., NSDI 2016): builds the lookup
 * table of a pool, in which every member owns an almost equal number of
 * entries and a change of membership moves few entries. The table depends only
 * on its size and the set of members, so every router builds the same one. */
#ifndef TETHER_MAGLEV_H
#define TETHER_MAGLEV_H

#include <linux/types.h>
#include <stddef.h>

/* Table entries per member of the size band (below), chosen by measurement
 * (tests/unit/test_maglev.c): owners' counts differ by at most one, so the
 * busiest member holds at most 1 + n / M <= 1.016 times the mean share.
 * Removing one of N members moves its own 1/N of the table and, on average,
 * a few percent more (measured at factor 100: at most 2.5% for N <= 30, 1.6% at
 * N = 100, 0.6% at 1000, 0.08% at 10000; between factor 64 and 128 here). */
#define MAGLEV_SIZE_FACTOR 64
/* Largest pool maglev_table_size() sizes; its table stays below 2^24 entries. */
#define MAGLEV_MAX_MEMBERS 65536

/* Seeds of the two hashes of a member's id, tether_mix64(id ^ seed): where its
 * permutation starts and how far it steps. Part of the placement: routers
 * with different seeds build different tables for the same pool. */
#define MAGLEV_SEED_OFFSET 0x9e3779b97f4a7c15ULL
#define MAGLEV_SEED_SKIP 0xc2b2ae3d27d4eb4fULL

struct maglev_member {
	__u64 id;   /* stable identity of the container, the same on every host */
	__u32 slot; /* the value written into the table for this member */
};

/* Table size for a pool of n members: the smallest prime >=
 * MAGLEV_SIZE_FACTOR * the band of n, the smallest power of two >= n.
 * n == 0 or n > MAGLEV_MAX_MEMBERS -> 0, which maglev_build() rejects.
 * Disruption is low only between tables of the same size: another size moves
 * nearly every entry. Sizing by band keeps the size while members come and go
 * within a band (up to twice the memory of sizing by n), and the size still
 * depends on n alone, so every router of a fleet picks the same one. */
__u32 maglev_table_size(size_t n);

/* Fills table[0..size-1] with member slots. Deterministic: the same set of
 * members gives the same table whatever their order in the array. Returns 0,
 * or -EINVAL (n == 0, size not prime or size < n, duplicate ids), -ENOMEM; the
 * table is left untouched on error. */
int maglev_build(const struct maglev_member *members, size_t n, __u32 *table,
		 __u32 size);

/* A digest of everything maglev_build()'s table depends on (the members' ids
 * and slots, their number, the algorithm's version), whatever their order:
 * a restarted tetherd keeps a pinned table whose digest matches instead of
 * rebuilding it. */
__u64 maglev_digest(const struct maglev_member *members, size_t n);

#endif
