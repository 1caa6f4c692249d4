/* SPDX-License-Identifier: MIT */
/* AnchorHash (Mendelson, Vargaftik, Barabash, Lorenz, Keslassy, Orda; IEEE/ACM
 * ToN 2021, arXiv 1812.09674), the minimal-memory form of the paper's
 * Algorithm 3. Here to be measured against Maglev and DxHash
 * (tools/bench_hash.c, docs/consistent-hashing.md), not used by the router.
 *
 * A fixed anchor of 'capacity' buckets, of which a working set takes keys.
 * Removing a bucket moves only its keys, adding one takes keys only for it,
 * and lookups take O((1 + ln(capacity / working))^2) steps on average. But
 * the structure records the order of removals (A[b] is the working-set size
 * when b was removed, and a bucket added back is the last one removed): two
 * routers with the same working set but different histories place keys
 * differently, and a router cannot build the structure from the set alone. */
#ifndef TETHER_ANCHORHASH_H
#define TETHER_ANCHORHASH_H

#include <linux/types.h>

struct anchorhash {
	__u32 capacity; /* a: buckets 0 .. a-1 */
	__u32 working;  /* N: buckets in the working set */
	__u32 *removed_at; /* A: 0 for a working bucket, else N just after its removal */
	__u32 *next;       /* K: where a removed bucket's keys look next */
	__u32 *location;   /* L: a bucket's place in 'order' */
	__u32 *order;      /* W: the working buckets first, then the removed */
	__u32 *stack;      /* R: removed buckets, the last removed on top */
	__u32 stacked;
};

/* Buckets 0 .. working-1 working, the rest removed from the highest down.
 * 0, or -EINVAL (working 0 or above capacity), -ENOMEM. */
int anchorhash_init(struct anchorhash *ah, __u32 capacity, __u32 working);
void anchorhash_free(struct anchorhash *ah);

/* The working bucket of a key's hash. */
__u32 anchorhash_lookup(const struct anchorhash *ah, __u64 key_hash);

/* Removes a working bucket: 0, or -EINVAL (not working, or the last one). */
int anchorhash_remove(struct anchorhash *ah, __u32 bucket);

/* Adds back the bucket removed last (the caller cannot choose it): the
 * bucket, or -ENOSPC when every bucket works. */
int anchorhash_add(struct anchorhash *ah);

#endif
