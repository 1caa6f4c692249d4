/* SPDX-License-Identifier: MIT */
/* Builds the DxHash table of a pool (include/tether/dxhash.h has the probe
 * sequence and the layout; docs/consistent-hashing.md the argument).
 *
 * Each warm container holds a bucket in [0, DXHASH_MAX_BUCKETS), unique within
 * its function, that the store gives when the container becomes warm
 * (dxhash_lowest_free_bucket) and takes back when it stops being warm, moving
 * at most two others to keep the table dense (dxhash_compaction_move). The
 * table is a function of the warm containers' (bucket, slot) pairs alone:
 * every router of a fleet that reads the same pairs builds the same table,
 * whatever it lived through. */
#ifndef TETHER_DXHASH_BUILD_H
#define TETHER_DXHASH_BUILD_H

#include <stddef.h>

#include <tether/dxhash.h>

struct dxhash_member {
	__u32 bucket; /* given by the store when the container became warm */
	__u32 slot;   /* the value lookups return for this member */
};

/* Levels of the table for these members: the smallest L with 2^L > every
 * bucket (a table of 2^L buckets). -EINVAL when n == 0 or a bucket is out of
 * range. Any larger L up to DXHASH_MAX_LEVELS gives the same placement for
 * keys found within DXHASH_PROBES steps; this one probes least. */
int dxhash_levels(const struct dxhash_member *members, size_t n);

/* Fills table[0 .. DXHASH_TABLE_ENTRIES(levels) - 1] in the layout of
 * include/tether/dxhash.h. Deterministic: the same members, in any order,
 * give the same table. Returns 0, or -EINVAL (n == 0, levels out of range, a
 * bucket >= 2^levels, two members with one bucket, a slot of DXHASH_NONE),
 * -ENOMEM; the table is left untouched on error. */
int dxhash_build(const struct dxhash_member *members, size_t n, __u32 *table, __u32 levels);

/* The slot for a key's hash, as the XDP program finds it: the first warm
 * bucket of the key's sequence within DXHASH_PROBES steps, else the key's
 * fallback cell. *probes (may be NULL): buckets read, plus one for the cell. */
__u32 dxhash_lookup(const __u32 *table, __u64 key_hash, __u32 *probes);

/* For the store, when a container of a function becomes warm: the lowest
 * bucket none of held[0..n-1] (the buckets of the function's other warm
 * containers) has. -ENOSPC when all DXHASH_MAX_BUCKETS are held. A container
 * holds its bucket while it is warm (only warm containers take new keys), and
 * one that replaces a container just gone takes its bucket, so exactly its
 * keys; the lowest keeps the table dense, so lookups probe little. */
int dxhash_lowest_free_bucket(const __u32 *held, size_t n);

/* For the store, after a container of a function stopped being warm: 1 when
 * the warm containers' buckets held[0..n-1] leave the table sparse (the
 * highest bucket is at least twice their number), with the move that
 * compacts it: the container holding *from (the highest) is to take *to.
 * *to is 'freed' (the bucket of the container that left) when that is free
 * and lower, else the lowest free bucket. The store applies the move in the
 * same transaction and asks again with freed = DXHASH_NONE (a second move is
 * rarely needed). The table then stays more than a quarter warm: few probes,
 * fallbacks for under 10% of keys, cheap builds. Into the freed bucket, the
 * moved container takes exactly the keys that had to move anyway, and only
 * its own old keys move besides: once per departure, and only while a pool
 * shrinks below half its highest bucket. */
int dxhash_compaction_move(const __u32 *held, size_t n, __u32 freed, __u32 *from, __u32 *to);

/* A digest of the table's inputs (buckets, slots, their number, the version
 * of the placement), whatever their order; as maglev_digest(). */
__u64 dxhash_digest(const struct dxhash_member *members, size_t n);

#endif
