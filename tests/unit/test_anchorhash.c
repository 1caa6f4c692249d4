// SPDX-License-Identifier: MIT
/* Unit tests of the AnchorHash comparison implementation: minimal disruption
 * on removals and additions, balance, LIFO additions, and the property that
 * rules it out for a fleet (docs/consistent-hashing.md): the same working set
 * reached through different histories places keys differently. */
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

#include <tether/hash.h>

#include "bench/anchorhash.h"

#define KEYS 200000

static __u64 key_hash(size_t k)
{
	return tether_mix64(k * 0x9e3779b97f4a7c15ULL + 1);
}

static __u32 *place(const struct anchorhash *ah)
{
	__u32 *buckets = malloc(KEYS * sizeof(*buckets));

	assert_non_null(buckets);
	for (size_t k = 0; k < KEYS; k++) {
		buckets[k] = anchorhash_lookup(ah, key_hash(k));
		assert_true(buckets[k] < ah->capacity);
		assert_int_equal(ah->removed_at[buckets[k]], 0);
	}
	return buckets;
}

static void test_minimal_disruption(void **state)
{
	struct anchorhash ah;
	__u64 rng = 1;

	(void)state;
	assert_int_equal(anchorhash_init(&ah, 2000, 1000), 0);
	__u32 *before = place(&ah);

	for (int round = 0; round < 30; round++) {
		__u32 gone;

		do
			gone = (rng = tether_mix64(rng + round)) % ah.capacity;
		while (ah.removed_at[gone] > 0);
		assert_int_equal(anchorhash_remove(&ah, gone), 0);
		__u32 *after = place(&ah);

		for (size_t k = 0; k < KEYS; k++)
			assert_true(before[k] == after[k] ? after[k] != gone : before[k] == gone);
		free(before);
		before = after;
		if (round % 3 == 2) {
			int added = anchorhash_add(&ah);

			assert_true(added >= 0);
			assert_int_equal(added, gone); /* the last removed comes back */
			after = place(&ah);
			for (size_t k = 0; k < KEYS; k++)
				assert_true(before[k] == after[k] || after[k] == (__u32)added);
			free(before);
			before = after;
		}
	}
	free(before);
	anchorhash_free(&ah);
}

static void test_balance(void **state)
{
	struct anchorhash ah;
	__u32 counts[100] = { 0 };

	(void)state;
	assert_int_equal(anchorhash_init(&ah, 400, 150), 0);
	for (__u32 b = 0; b < 50; b++)
		assert_int_equal(anchorhash_remove(&ah, b * 3), 0);
	for (size_t k = 0; k < 1000000; k++) {
		__u32 b = anchorhash_lookup(&ah, key_hash(k));
		__u32 index = 0;

		for (__u32 i = 0; i < b; i++)
			index += ah.removed_at[i] == 0;
		counts[index]++;
	}
	/* 10,000 keys each on average: 5 standard deviations is 5%. */
	for (int i = 0; i < 100; i++)
		assert_true(fabs(counts[i] - 10000.0) < 500);
	anchorhash_free(&ah);
}

/* Two routers reach the working set {all but buckets 10 and 20} by removing
 * them in the two orders: they place keys differently. (Maglev and DxHash
 * tables are functions of the set.) */
static void test_history_matters(void **state)
{
	struct anchorhash first, second;

	(void)state;
	assert_int_equal(anchorhash_init(&first, 64, 64), 0);
	assert_int_equal(anchorhash_init(&second, 64, 64), 0);
	assert_int_equal(anchorhash_remove(&first, 10), 0);
	assert_int_equal(anchorhash_remove(&first, 20), 0);
	assert_int_equal(anchorhash_remove(&second, 20), 0);
	assert_int_equal(anchorhash_remove(&second, 10), 0);
	size_t differ = 0;

	for (size_t k = 0; k < KEYS; k++)
		differ += anchorhash_lookup(&first, key_hash(k)) != anchorhash_lookup(&second, key_hash(k));
	print_message("same working set, removals in the other order: %.2f%% of keys differ\n",
		      100.0 * differ / KEYS);
	assert_true(differ > 0);
	anchorhash_free(&first);
	anchorhash_free(&second);
}

static void test_errors(void **state)
{
	struct anchorhash ah;

	(void)state;
	assert_int_equal(anchorhash_init(&ah, 4, 0), -EINVAL);
	assert_int_equal(anchorhash_init(&ah, 4, 5), -EINVAL);
	assert_int_equal(anchorhash_init(&ah, 4, 2), 0);
	assert_int_equal(anchorhash_remove(&ah, 3), -EINVAL); /* not working */
	assert_int_equal(anchorhash_remove(&ah, 4), -EINVAL); /* beyond */
	assert_int_equal(anchorhash_remove(&ah, 1), 0);
	assert_int_equal(anchorhash_remove(&ah, 0), -EINVAL); /* the last one */
	assert_int_equal(anchorhash_add(&ah), 1);
	assert_int_equal(anchorhash_add(&ah), 2);
	assert_int_equal(anchorhash_add(&ah), 3);
	assert_int_equal(anchorhash_add(&ah), -ENOSPC);
	anchorhash_free(&ah);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_disruption),
		cmocka_unit_test(test_balance),
		cmocka_unit_test(test_history_matters),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
