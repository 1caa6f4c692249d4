// SPDX-License-Identifier: MIT
/* Maglev table builder. Every member walks its own permutation of the table
 * (offset, offset + skip, offset + 2 skip, ... mod M); in turn, each member
 * takes the first entry of its permutation that is still free, until the table
 * is full. M prime and 1 <= skip < M make every permutation visit all entries,
 * and the round robin makes owners' counts differ by at most one.
 *
 * The walks are computed as they go: memory stays at a few bytes per member
 * plus one bit per entry, however long the last members search for a free
 * entry. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <tether/hash.h>

#include "maglev.h"

/* A member's walk through its permutation. */
struct maglev_walk {
	__u32 next; /* the entry it wants next */
	__u32 skip;
};

static int is_prime(__u64 x)
{
	if (x < 2)
		return 0;
	if (x % 2 == 0)
		return x == 2;
	for (__u64 d = 3; d * d <= x; d += 2)
		if (x % d == 0)
			return 0;
	return 1;
}

__u32 maglev_table_size(size_t n)
{
	if (n == 0 || n > MAGLEV_MAX_MEMBERS)
		return 0;

	__u32 band = 1;

	while (band < n)
		band <<= 1;
	__u32 size = band * MAGLEV_SIZE_FACTOR;

	while (!is_prime(size))
		size++;
	return size;
}

static int compare_by_id(const void *a, const void *b)
{
	const struct maglev_member *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

/* A copy of the members sorted by id, so the input order does not matter. */
static struct maglev_member *sorted_copy(const struct maglev_member *members,
					 size_t n)
{
	struct maglev_member *sorted = malloc(n * sizeof(*sorted));

	if (!sorted)
		return NULL;
	memcpy(sorted, members, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), compare_by_id);
	return sorted;
}

static int has_duplicate_ids(const struct maglev_member *sorted, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (sorted[i].id == sorted[i - 1].id)
			return 1;
	return 0;
}

static struct maglev_walk start_walk(__u64 id, __u32 size)
{
	struct maglev_walk walk = {
		.next = tether_mix64(id ^ MAGLEV_SEED_OFFSET) % size,
		.skip = tether_mix64(id ^ MAGLEV_SEED_SKIP) % (size - 1) + 1,
	};

	return walk;
}

/* Returns the walk's next entry and steps on. A compare, not a modulo: the
 * division would cost more than everything else in the build. */
static __u32 step(struct maglev_walk *walk, __u32 size)
{
	__u32 entry = walk->next;
	__u64 next = (__u64)entry + walk->skip; /* may not fit in 32 bits */

	walk->next = next >= size ? next - size : next;
	return entry;
}

/* taken[] is a bitmap rather than a look at the table: it stays in cache
 * while the last members search long for a free entry. */
static int is_taken(const __u64 *taken, __u32 entry)
{
	return taken[entry / 64] >> (entry % 64) & 1;
}

static __u32 claim_next(struct maglev_walk *walk, __u64 *taken, __u32 size)
{
	__u32 entry;

	do
		entry = step(walk, size);
	while (is_taken(taken, entry));
	taken[entry / 64] |= 1ULL << (entry % 64);
	return entry;
}

/* Round robin over the members, in id order, until the table is full. */
static void populate(const struct maglev_member *sorted,
		     struct maglev_walk *walks, size_t n, __u64 *taken,
		     __u32 *table, __u32 size)
{
	__u32 filled = 0;

	for (;;) {
		for (size_t i = 0; i < n; i++) {
			table[claim_next(&walks[i], taken, size)] = sorted[i].slot;
			if (++filled == size)
				return;
		}
	}
}

int maglev_build(const struct maglev_member *members, size_t n, __u32 *table,
		 __u32 size)
{
	struct maglev_member *sorted;
	struct maglev_walk *walks;
	__u64 *taken;
	int err = 0;

	if (n == 0 || size < n || !is_prime(size))
		return -EINVAL;

	sorted = sorted_copy(members, n);
	walks = malloc(n * sizeof(*walks));
	taken = calloc(size / 64 + 1, sizeof(*taken));
	if (!sorted || !walks || !taken) {
		err = -ENOMEM;
		goto out;
	}
	if (has_duplicate_ids(sorted, n)) {
		err = -EINVAL;
		goto out;
	}

	for (size_t i = 0; i < n; i++)
		walks[i] = start_walk(sorted[i].id, size);
	populate(sorted, walks, n, taken, table, size);
out:
	free(taken);
	free(walks);
	free(sorted);
	return err;
}

/* Bump when the placement changes (seeds, size rule, fill order): tables built
 * by an older tetherd then no longer match and are rebuilt on adoption. */
#define MAGLEV_ALGORITHM_VERSION 1

__u64 maglev_digest(const struct maglev_member *members, size_t n)
{
	/* A sum of mixed members is order-independent; the members are tetherd's
	 * own, not an adversary's, so a set hash this simple is enough. */
	__u64 sum = tether_mix64(((__u64)MAGLEV_ALGORITHM_VERSION << 32) ^ n);

	for (size_t i = 0; i < n; i++)
		sum += tether_mix64(members[i].id ^ tether_mix64(members[i].slot ^ MAGLEV_SEED_SKIP));
	return sum;
}
