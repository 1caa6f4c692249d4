// SPDX-License-Identifier: MIT
/* AnchorHash, Algorithm 3 of the paper, with its names in comments. */
#include <errno.h>
#include <stdlib.h>

#include <tether/hash.h>

#include "anchorhash.h"

#define ANCHOR_SEED 0x2545f4914f6cdd1dULL

/* h_b(k): the key's hash for removed bucket b, independent across b. */
static __u64 rehash(__u64 key_hash, __u32 bucket)
{
	return tether_mix64(key_hash ^ tether_mix64(bucket ^ ANCHOR_SEED));
}

int anchorhash_init(struct anchorhash *ah, __u32 capacity, __u32 working)
{
	if (working == 0 || working > capacity)
		return -EINVAL;
	*ah = (struct anchorhash){ .capacity = capacity, .working = working };
	ah->removed_at = calloc(capacity, sizeof(__u32));
	ah->next = malloc(capacity * sizeof(__u32));
	ah->location = malloc(capacity * sizeof(__u32));
	ah->order = malloc(capacity * sizeof(__u32));
	ah->stack = malloc(capacity * sizeof(__u32));
	if (!ah->removed_at || !ah->next || !ah->location || !ah->order || !ah->stack) {
		anchorhash_free(ah);
		return -ENOMEM;
	}
	for (__u32 b = 0; b < capacity; b++)
		ah->next[b] = ah->location[b] = ah->order[b] = b;
	for (__u32 b = capacity; b-- > working;) {
		ah->stack[ah->stacked++] = b;
		ah->removed_at[b] = b;
	}
	return 0;
}

void anchorhash_free(struct anchorhash *ah)
{
	free(ah->removed_at);
	free(ah->next);
	free(ah->location);
	free(ah->order);
	free(ah->stack);
	*ah = (struct anchorhash){ 0 };
}

/* GETBUCKET */
__u32 anchorhash_lookup(const struct anchorhash *ah, __u64 key_hash)
{
	__u32 b = key_hash % ah->capacity;

	while (ah->removed_at[b] > 0) { /* b is removed */
		__u32 h = rehash(key_hash, b) % ah->removed_at[b];

		while (ah->removed_at[h] >= ah->removed_at[b]) /* h removed before b */
			h = ah->next[h];
		b = h;
	}
	return b;
}

/* REMOVEBUCKET */
int anchorhash_remove(struct anchorhash *ah, __u32 bucket)
{
	if (bucket >= ah->capacity || ah->removed_at[bucket] > 0 || ah->working <= 1)
		return -EINVAL;
	ah->stack[ah->stacked++] = bucket;
	ah->working--;
	ah->removed_at[bucket] = ah->working;
	__u32 last = ah->order[ah->working];

	ah->order[ah->location[bucket]] = last;
	ah->next[bucket] = last;
	ah->location[last] = ah->location[bucket];
	return 0;
}

/* ADDBUCKET */
int anchorhash_add(struct anchorhash *ah)
{
	if (ah->stacked == 0)
		return -ENOSPC;
	__u32 b = ah->stack[--ah->stacked];

	ah->removed_at[b] = 0;
	ah->location[ah->order[ah->working]] = ah->working;
	ah->order[ah->location[b]] = b;
	ah->next[b] = b;
	ah->working++;
	return b;
}
