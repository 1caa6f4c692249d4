// SPDX-License-Identifier: MIT
/* /metrics on the real maps (user/tetherd/metrics.c, metrics_sweep.c): the
 * per-function counters of tetherd's exposition against a model of every
 * request the per-container counters were given, while the sweep runs a
 * slice at a time and the lifecycle changes between its slices, as it does
 * in tetherd's loop:
 *
 *   - containers added (their counters start at zero), deleted (their count
 *     moves to their function's retired count, the sweep gives back what it
 *     counted of them), slots reused by other functions, traffic on every
 *     live container, all between slices;
 *   - every function's counter never goes backwards from one scrape to the
 *     next, never counts more than the model, and once a sweep runs with
 *     nothing changing, equals the model exactly;
 *   - containers by state per function and in all equal the lifecycle's;
 *   - --metrics-functions bounds the series (the rest sum into "other"),
 *     and all series together still equal the model;
 *   - the affinity map's entries are counted.
 *
 * Traffic is written into container_stats directly (cpu * 1M + slot), as
 * the XDP program counts it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "metrics.h"
#include "tetherd.h"
#include "tether_xdp.skel.h"
#include "xdp_harness.h"

#define FUNCTIONS 40
#define CONTAINERS 3000 /* at a time, at most */
#define SLICE_NS 1      /* one slice per step: as many changes between slices as can be */

struct world {
	struct tetherd d;
	struct metrics *m;
	int cpus;
	/* the model */
	__u64 counted[FUNCTIONS + 1]; /* every request given to a function's containers */
	__u32 slots[CONTAINERS];      /* the live containers */
	__u64 function_of[CONTAINERS];
	size_t live;
	unsigned int seed;
	GHashTable *last; /* function label -> value at the last scrape */
};

static __u64 clock_ns(void *ctx)
{
	(void)ctx;
	return monotonic_ns();
}

static void on_event(void *ctx, const char *line)
{
	struct world *w = ctx;

	metrics_event(w->m, line);
}

static int setup(void **state)
{
	struct world *w = g_new0(struct world, 1);
	struct lifecycle_config config = {
		.heartbeat_ms = 3600000, .drain_ms = 1000, .now_ns = clock_ns,
		.observer = { .event = on_event, .ctx = w },
	};
	__u8 addr[16], mac[6] = { 2, 0, 0, 0, 0, 1 };
	__u32 id;

	*state = w;
	w->cpus = libbpf_num_possible_cpus();
	w->seed = 7;
	w->last = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	w->d.config.slowpath.queue_per_function = 256;
	w->d.config.slowpath.queue_total = 16384;
	if (dataplane_open(&w->d.dp, NULL) || lifecycle_init(&w->d.lc, &w->d.dp, &config))
		return -1;
	addr_parse("203.0.113.2", addr);
	return lc_backend_add(&w->d.lc, "vm1", addr, mac, "lo", 0, 0, &id) ? -1 : 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	metrics_free(w->m);
	lifecycle_free(&w->d.lc);
	dataplane_close(&w->d.dp);
	g_hash_table_destroy(w->last);
	g_free(w);
	return 0;
}

/* n requests to the container at slot, on one CPU. */
static void traffic(struct world *w, size_t i, __u64 n)
{
	int fd = bpf_map__fd(w->d.dp.skel->maps.container_stats);
	__u32 key = (__u32)(rand_r(&w->seed) % w->cpus) * TETHER_MAX_CONTAINERS + w->slots[i];
	struct container_counters c;

	assert_int_equal(bpf_map_lookup_elem(fd, &key, &c), 0);
	c.packets += n;
	c.bytes += n * 100;
	assert_int_equal(bpf_map_update_elem(fd, &key, &c, BPF_ANY), 0);
	w->counted[w->function_of[i]] += n;
}

static void add_container(struct world *w)
{
	__u64 function_id = 1 + rand_r(&w->seed) % FUNCTIONS;
	__u32 slot;

	if (w->live == CONTAINERS)
		return;
	/* Anywhere in the slot space: the sweep's slices meet them one by one,
	 * with changes in between. */
	w->d.lc.next_slot = rand_r(&w->seed) % TETHER_MAX_CONTAINERS;
	assert_int_equal(lc_container_add(&w->d.lc, function_id, "vm1", "",
					  rand_r(&w->seed) % 3 ? CONTAINER_WARM : CONTAINER_STARTING,
					  &slot, NULL),
			 PROTO_OK);
	w->slots[w->live] = slot;
	w->function_of[w->live++] = function_id;
}

static void del_container(struct world *w)
{
	if (!w->live)
		return;
	size_t i = rand_r(&w->seed) % w->live;

	assert_int_equal(lc_container_del(&w->d.lc, w->slots[i]), PROTO_OK);
	w->slots[i] = w->slots[--w->live];
	w->function_of[i] = w->function_of[w->live];
}

/* Some lifecycle and some traffic: what happens between two slices. */
static void churn(struct world *w, int changes)
{
	for (int k = 0; k < changes; k++) {
		int what = rand_r(&w->seed) % 10;

		if (what < 2)
			add_container(w);
		else if (what < 3)
			del_container(w);
		else if (w->live)
			traffic(w, rand_r(&w->seed) % w->live, 1 + rand_r(&w->seed) % 50);
	}
}

/* A whole sweep, with changes between its slices; then the exposition. */
static GString *scrape(struct world *w, int changes_per_slice)
{
	GString *out = g_string_new(NULL);
	char why[256];
	bool done = metrics_prepare(w->m, 0, SLICE_NS);

	while (!done) {
		churn(w, changes_per_slice);
		done = metrics_continue(w->m, SLICE_NS);
	}
	if (metrics_write(w->m, out, why, sizeof(why)))
		fail_msg("metrics_write: %s", why);
	/* Pool swaps wait for RCU: once a scrape, not once a change. */
	lifecycle_flush_pools(&w->d.lc);
	return out;
}

/* The samples of a family: label value of `label` -> value. */
static GHashTable *samples(const char *text, const char *family, const char *label)
{
	GHashTable *values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	char prefix[160];

	snprintf(prefix, sizeof(prefix), "%s{%s=\"", family, label);
	for (char **line = lines; *line; line++) {
		if (strncmp(*line, prefix, strlen(prefix)))
			continue;
		const char *value = *line + strlen(prefix);
		const char *end = strchr(value, '"');
		__u64 *number = g_new(__u64, 1);

		*number = strtoull(strrchr(*line, ' ') + 1, NULL, 10);
		g_hash_table_insert(values, g_strndup(value, end - value), number);
	}
	return values;
}

static __u64 sum_of(GHashTable *values)
{
	GHashTableIter iter;
	gpointer value;
	__u64 sum = 0;

	g_hash_table_iter_init(&iter, values);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		sum += *(__u64 *)value;
	return sum;
}

/* Every function's counter: never backwards, never more than the model;
 * with exact, equal to it. */
static void check_counters(struct world *w, const char *text, bool exact, int round)
{
	g_autoptr(GHashTable) forwarded =
		samples(text, "tether_function_forwarded_requests_total", "function");
	GHashTableIter iter;
	gpointer key, value;

	g_hash_table_iter_init(&iter, forwarded);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		__u64 now = *(__u64 *)value, *before = g_hash_table_lookup(w->last, key);

		if (before && now < *before)
			fail_msg("round %d: function %s's counter went from %llu to %llu", round,
				 (char *)key, (unsigned long long)*before, (unsigned long long)now);
		if (strcmp(key, "other")) {
			__u64 model = w->counted[strtoull(key, NULL, 10)];

			if (now > model || (exact && now != model))
				fail_msg("round %d: function %s counted %llu requests, the model %llu",
					 round, (char *)key, (unsigned long long)now,
					 (unsigned long long)model);
		}
		__u64 *copy = g_new(__u64, 1);

		*copy = now;
		g_hash_table_insert(w->last, g_strdup(key), copy);
	}
}

static void test_counters_through_churn(void **state)
{
	struct world *w = *state;
	struct metrics_config config = { .functions = FUNCTIONS };

	w->m = metrics_new(&w->d, &config);
	for (int i = 0; i < 500; i++)
		add_container(w);
	for (int round = 0; round < 5; round++) {
		GString *text = scrape(w, 4);

		check_counters(w, text->str, false, round);
		g_string_free(text, TRUE);
	}
	/* A sweep with nothing changing: exact. */
	GString *text = scrape(w, 0);

	check_counters(w, text->str, true, 99);
	/* Containers by state, per function and in all, as the lifecycle has them. */
	__u64 by_state[CONTAINER_GONE] = {}, warm[FUNCTIONS + 1] = {};
	char line[128];

	for (size_t i = 0; i < w->live; i++) {
		__u32 state = w->d.lc.containers[w->slots[i]].state;

		by_state[state]++;
		warm[w->function_of[i]] += state == CONTAINER_WARM;
	}
	for (int f = 1; f <= FUNCTIONS; f++) {
		snprintf(line, sizeof(line),
			 "\ntether_function_containers{function=\"%d\",state=\"warm\"} %llu\n", f,
			 (unsigned long long)warm[f]);
		if (!strstr(text->str, line))
			fail_msg("function %d: no line%s", f, line);
	}

	snprintf(line, sizeof(line), "\ntether_containers{state=\"warm\"} %llu\n",
		 (unsigned long long)by_state[CONTAINER_WARM]);
	assert_non_null(strstr(text->str, line));
	snprintf(line, sizeof(line), "\ntether_containers{state=\"starting\"} %llu\n",
		 (unsigned long long)by_state[CONTAINER_STARTING]);
	assert_non_null(strstr(text->str, line));
	snprintf(line, sizeof(line), "\ntether_map_entries{map=\"containers\"} %zu\n", w->live);
	assert_non_null(strstr(text->str, line));
	print_message("%zu containers live, %llu requests counted, %u functions\n", w->live,
		      (unsigned long long)sum_of(w->last), g_hash_table_size(w->last));
	g_string_free(text, TRUE);
}

static void test_bounded_series_add_up(void **state)
{
	struct world *w = *state;
	struct metrics_config config = { .functions = 5 };
	__u64 model = 0;

	w->m = metrics_new(&w->d, &config);
	for (int i = 0; i < 300; i++)
		add_container(w);
	for (int round = 0; round < 3; round++) {
		GString *text = scrape(w, 4);

		check_counters(w, text->str, false, round);
		g_autoptr(GHashTable) forwarded =
			samples(text->str, "tether_function_forwarded_requests_total", "function");

		assert_true(g_hash_table_size(forwarded) <= 6);
		assert_true(g_hash_table_contains(forwarded, "other"));
		g_string_free(text, TRUE);
	}
	/* With nothing changing, every series together: every request. (No
	 * function has lost its series here: 40 functions all have containers.) */
	GString *text = scrape(w, 0);
	g_autoptr(GHashTable) forwarded =
		samples(text->str, "tether_function_forwarded_requests_total", "function");

	for (int f = 1; f <= FUNCTIONS; f++)
		model += w->counted[f];
	assert_int_equal(sum_of(forwarded), model);
	assert_int_equal(g_hash_table_size(forwarded), 6);
	g_string_free(text, TRUE);
}

static void test_affinity_entries(void **state)
{
	struct world *w = *state;
	struct metrics_config config = { .functions = 10 };
	int fd = bpf_map__fd(w->d.dp.skel->maps.affinity);

	for (__u64 k = 0; k < 5000; k++) {
		struct affinity_key key = { 1 + k % 7, k };
		struct affinity_value value = { .slot = (__u32)k, .generation = 1 };

		assert_int_equal(bpf_map_update_elem(fd, &key, &value, BPF_ANY), 0);
	}
	w->m = metrics_new(&w->d, &config);
	GString *text = scrape(w, 0);

	assert_non_null(strstr(text->str, "\ntether_map_entries{map=\"affinity\"} 5000\n"));
	g_string_free(text, TRUE);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counters_through_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded_series_add_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_affinity_entries, setup, teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	harness_enter_private_netns();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
