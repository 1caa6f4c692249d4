// SPDX-License-Identifier: MIT
/* Unit tests of /metrics' parts that need no BPF (user/tetherd/):
 *   - exposition.c, the Prometheus text format: # HELP and # TYPE lines,
 *     samples with and without labels, label values escaped (backslash,
 *     quote, newline; bytes that are not UTF-8 replaced), HELP escaped,
 *     numbers, and every mistake refused (bad metric and label names,
 *     reserved "__" labels, a label twice, a counter without _total, a gauge
 *     with it, a family twice, a sample outside a family, no help);
 *   - function_series.c, bounded per-function series: at most the limit
 *     get their own, the rest sum into function="other"; 10,000 functions
 *     with a limit of 5 give 6 rows; who gets a place; the set is sticky;
 *     an idle function gives its place up only when another needs it; and
 *     through random lifecycles, every counter series only grows and all
 *     series together count every request;
 *   - martians.c against a fake /proc/sys: warns, fixes with --accept-local,
 *     once per interface;
 *   - the --metrics-listen address parser, and the options (command line
 *     and settings file). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <getopt.h>

#include "config.h"
#include "exposition.h"
#include "function_series.h"
#include "martians.h"
#include "metrics_http.h"

#define LABELS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* ---- the text format ---------------------------------------------------------- */

static void test_exposition_format(void **state)
{
	g_autoptr(GString) out = g_string_new(NULL);
	struct expo e;

	(void)state;
	expo_init(&e, out);
	expo_family(&e, "tether_things_total", EXPO_COUNTER, "Things, counted.\nTwo lines \\ here.");
	expo_sample_u64(&e, NULL, 18446744073709551615ull);
	expo_family(&e, "tether_level", EXPO_GAUGE, "A level.");
	expo_sample_u64(&e, LABELS("a", "1", "b_2", "x"), 7);
	expo_sample(&e, LABELS("a", "2"), 0.25);
	expo_sample(&e, LABELS("a", "3"), 1e300 * 1e300);
	expo_sample(&e, LABELS("a", "4"), 3.0);
	expo_family(&e, "ns:with_colon", EXPO_GAUGE, "Colons are allowed in metric names.");
	expo_sample(&e, NULL, -2);
	assert_false(e.failed);
	assert_string_equal(out->str,
			    "# HELP tether_things_total Things, counted.\\nTwo lines \\\\ here.\n"
			    "# TYPE tether_things_total counter\n"
			    "tether_things_total 18446744073709551615\n"
			    "# HELP tether_level A level.\n"
			    "# TYPE tether_level gauge\n"
			    "tether_level{a=\"1\",b_2=\"x\"} 7\n"
			    "tether_level{a=\"2\"} 0.25\n"
			    "tether_level{a=\"3\"} +Inf\n"
			    "tether_level{a=\"4\"} 3\n"
			    "# HELP ns:with_colon Colons are allowed in metric names.\n"
			    "# TYPE ns:with_colon gauge\n"
			    "ns:with_colon -2\n");
	expo_free(&e);
}

static void test_exposition_escaping(void **state)
{
	g_autoptr(GString) out = g_string_new(NULL);
	struct expo e;

	(void)state;
	expo_init(&e, out);
	expo_family(&e, "tether_names", EXPO_GAUGE, "Label values as they come.");
	expo_sample_u64(&e, LABELS("v", "back\\slash \"quoted\"\nnewline"), 1);
	expo_sample_u64(&e, LABELS("v", "caf\xc3\xa9"), 2);     /* UTF-8: as it is */
	expo_sample_u64(&e, LABELS("v", "bad\xff\xfe end"), 3); /* not UTF-8: replaced */
	expo_sample_u64(&e, LABELS("v", ""), 4);
	assert_false(e.failed);
	assert_string_equal(out->str,
			    "# HELP tether_names Label values as they come.\n"
			    "# TYPE tether_names gauge\n"
			    "tether_names{v=\"back\\\\slash \\\"quoted\\\"\\nnewline\"} 1\n"
			    "tether_names{v=\"caf\xc3\xa9\"} 2\n"
			    "tether_names{v=\"bad\xef\xbf\xbd\xef\xbf\xbd end\"} 3\n"
			    "tether_names{v=\"\"} 4\n");
	expo_free(&e);
}

/* Each mistake fails the writer, says why, and writes nothing more. */
static void expect_refused(void (*write)(struct expo *e), const char *why_contains)
{
	g_autoptr(GString) out = g_string_new(NULL);
	struct expo e;

	expo_init(&e, out);
	write(&e);
	assert_true(e.failed);
	if (!strstr(e.why, why_contains))
		fail_msg("'%s' does not say '%s'", e.why, why_contains);
	gsize len = out->len;

	expo_family(&e, "tether_after", EXPO_GAUGE, "After the mistake.");
	expo_sample_u64(&e, NULL, 1);
	assert_int_equal(out->len, len);
	expo_free(&e);
}

static void bad_metric_name(struct expo *e) { expo_family(e, "tether-x", EXPO_GAUGE, "h"); }
static void digit_first(struct expo *e) { expo_family(e, "9tether", EXPO_GAUGE, "h"); }
static void counter_no_total(struct expo *e) { expo_family(e, "tether_x", EXPO_COUNTER, "h"); }
static void gauge_total(struct expo *e) { expo_family(e, "tether_x_total", EXPO_GAUGE, "h"); }
static void no_help(struct expo *e) { expo_family(e, "tether_x", EXPO_GAUGE, ""); }
static void twice(struct expo *e)
{
	expo_family(e, "tether_x", EXPO_GAUGE, "h");
	expo_family(e, "tether_x", EXPO_GAUGE, "h");
}
static void orphan_sample(struct expo *e) { expo_sample_u64(e, NULL, 1); }
static void bad_label(struct expo *e)
{
	expo_family(e, "tether_x", EXPO_GAUGE, "h");
	expo_sample_u64(e, LABELS("a-b", "1"), 1);
}
static void reserved_label(struct expo *e)
{
	expo_family(e, "tether_x", EXPO_GAUGE, "h");
	expo_sample_u64(e, LABELS("__name__", "1"), 1);
}
static void label_twice(struct expo *e)
{
	expo_family(e, "tether_x", EXPO_GAUGE, "h");
	expo_sample_u64(e, LABELS("a", "1", "a", "2"), 1);
}
static void label_without_value(struct expo *e)
{
	expo_family(e, "tether_x", EXPO_GAUGE, "h");
	expo_sample_u64(e, (const char *const[]){ "a", NULL }, 1);
}

static void test_exposition_mistakes(void **state)
{
	(void)state;
	expect_refused(bad_metric_name, "not a metric name");
	expect_refused(digit_first, "not a metric name");
	expect_refused(counter_no_total, "does not end in _total");
	expect_refused(gauge_total, "ends in _total");
	expect_refused(no_help, "no help");
	expect_refused(twice, "written twice");
	expect_refused(orphan_sample, "before any family");
	expect_refused(bad_label, "not a label name");
	expect_refused(reserved_label, "not a label name");
	expect_refused(label_twice, "given twice");
	expect_refused(label_without_value, "has no value");
	assert_true(expo_metric_name_valid("a:b_c9"));
	assert_false(expo_metric_name_valid(""));
	assert_true(expo_label_name_valid("_x"));
	assert_false(expo_label_name_valid("x:y"));
	assert_false(expo_label_name_valid("__x"));
}

/* ---- bounded per-function series ----------------------------------------------- */

static const struct function_row *row_of(GArray *rows, __u64 function_id)
{
	for (guint i = 0; i < rows->len; i++)
		if (g_array_index(rows, struct function_row, i).function_id == function_id)
			return &g_array_index(rows, struct function_row, i);
	return NULL;
}

static struct function_input warm(__u64 id, __u32 n, __u64 packets)
{
	return (struct function_input){ .function_id = id, .warm = n, .packets = packets,
					.bytes = packets * 100 };
}

static void test_series_bounded(void **state)
{
	enum { FUNCTIONS = 10000, LIMIT = 5 };
	struct function_series *fs = function_series_new(LIMIT);
	struct function_input *inputs = calloc(FUNCTIONS, sizeof(*inputs));
	g_autoptr(GArray) rows = g_array_new(FALSE, FALSE, sizeof(struct function_row));
	__u64 warm_total = 0, packets_total = 0;

	(void)state;
	/* Function i has 1 + i % 7 warm containers: 7, 14, 21, ... have the most. */
	for (__u32 i = 0; i < FUNCTIONS; i++) {
		inputs[i] = warm(i + 1, 1 + (i + 1) % 7, i);
		warm_total += inputs[i].warm;
		packets_total += inputs[i].packets;
	}
	function_series_update(fs, inputs, FUNCTIONS, rows);
	assert_int_equal(rows->len, LIMIT + 1);
	assert_int_equal(function_series_labelled(fs), LIMIT);
	/* The most warm containers (7: functions 6, 13, 20, ...; smallest ids
	 * first), sorted by id, then "other". */
	static const __u64 chosen[LIMIT] = { 6, 13, 20, 27, 34 };

	for (int i = 0; i < LIMIT; i++)
		assert_int_equal(g_array_index(rows, struct function_row, i).function_id, chosen[i]);
	const struct function_row *other = &g_array_index(rows, struct function_row, LIMIT);
	__u64 warm_sum = other->warm, packets_sum = other->packets;

	assert_int_equal(other->function_id, FUNCTION_OTHER);
	for (int i = 0; i < LIMIT; i++) {
		warm_sum += g_array_index(rows, struct function_row, i).warm;
		packets_sum += g_array_index(rows, struct function_row, i).packets;
	}
	assert_int_equal(warm_sum, warm_total);
	assert_int_equal(packets_sum, packets_total);
	/* A limit of 0: everything in "other". */
	struct function_series *none = function_series_new(0);

	function_series_update(none, inputs, FUNCTIONS, rows);
	assert_int_equal(rows->len, 1);
	assert_int_equal(g_array_index(rows, struct function_row, 0).packets, packets_total);
	function_series_free(none);
	function_series_free(fs);
	free(inputs);
}

static void test_series_sticky(void **state)
{
	struct function_series *fs = function_series_new(2);
	g_autoptr(GArray) rows = g_array_new(FALSE, FALSE, sizeof(struct function_row));
	struct function_input in[4];

	(void)state;
	in[0] = warm(1, 1, 10);
	in[1] = warm(2, 1, 20);
	function_series_update(fs, in, 2, rows);
	assert_int_equal(rows->len, 3);
	assert_non_null(row_of(rows, 1));
	assert_non_null(row_of(rows, 2));
	/* Function 1 loses its containers: it keeps its place, and its count
	 * (its container's final one), while no other function needs it. */
	function_series_retire(fs, 1, 12, 1200);
	in[0] = (struct function_input){ .function_id = 1 };
	function_series_update(fs, in, 2, rows);
	assert_non_null(row_of(rows, 1));
	assert_int_equal(row_of(rows, 1)->warm, 0);
	assert_int_equal(row_of(rows, 1)->packets, 12);
	assert_int_equal(row_of(rows, 1)->bytes, 1200);
	function_series_free(fs);

	/* A bigger function arrives when the places are taken: "other". */
	fs = function_series_new(2);
	in[0] = warm(1, 1, 10);
	in[1] = warm(2, 1, 20);
	in[2] = warm(3, 50, 5);
	function_series_update(fs, in, 2, rows);
	function_series_update(fs, in, 3, rows);
	assert_null(row_of(rows, 3));
	assert_int_equal(row_of(rows, FUNCTION_OTHER)->warm, 50);
	assert_int_equal(row_of(rows, FUNCTION_OTHER)->packets, 5);
	/* Function 1 goes idle: its place goes to function 3 at once, whose
	 * series starts after what "other" counted of it (5), which "other"
	 * keeps; function 1's series ends. */
	function_series_retire(fs, 1, 12, 1200);
	in[0] = (struct function_input){ .function_id = 1 };
	in[2].packets = 7;
	function_series_update(fs, in, 3, rows);
	assert_int_equal(rows->len, 3);
	assert_null(row_of(rows, 1));
	assert_int_equal(row_of(rows, 3)->packets, 7 - 5);
	assert_int_equal(row_of(rows, FUNCTION_OTHER)->packets, 5);
	assert_int_equal(row_of(rows, FUNCTION_OTHER)->warm, 0);
	/* Function 2's containers all go while it has its place; a new function
	 * comes: function 2 is idle, so it gives its place up, and the new
	 * function's series counts all it forwarded (none of it was in
	 * "other"). */
	function_series_retire(fs, 2, 25, 2500);
	in[1] = (struct function_input){ .function_id = 2 };
	in[3] = warm(4, 1, 3);
	function_series_update(fs, &in[1], 3, rows);
	assert_null(row_of(rows, 2));
	assert_int_equal(row_of(rows, 4)->packets, 3);
	assert_int_equal(row_of(rows, FUNCTION_OTHER)->packets, 5);
	function_series_free(fs);
}

/* Random lifecycles: containers come and go (their counts retire), series
 * change hands; every counter series only grows, every update counts every
 * request of the functions with series now (and "other" what it had). */
static void test_series_counters_only_grow(void **state)
{
	enum { FUNCTIONS = 40, CONTAINERS = 200, ROUNDS = 3000, LIMIT = 6 };
	struct container {
		__u64 function_id;
		__u64 packets;
		bool live;
	} containers[CONTAINERS] = {};
	struct function_series *fs = function_series_new(LIMIT);
	g_autoptr(GArray) rows = g_array_new(FALSE, FALSE, sizeof(struct function_row));
	GHashTable *last = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	unsigned int seed = 1;

	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		/* Some lifecycle and some traffic. */
		for (int k = 0; k < 10; k++) {
			struct container *c = &containers[rand_r(&seed) % CONTAINERS];

			if (!c->live) {
				*c = (struct container){ .function_id = 1 + rand_r(&seed) % FUNCTIONS,
							 .live = true };
			} else if (rand_r(&seed) % 4 == 0) {
				function_series_retire(fs, c->function_id, c->packets, c->packets);
				c->live = false;
			} else {
				c->packets += rand_r(&seed) % 100;
			}
		}
		struct function_input in[FUNCTIONS + 1] = {};

		for (int f = 0; f < FUNCTIONS; f++)
			in[f].function_id = f + 1;
		for (int i = 0; i < CONTAINERS; i++)
			if (containers[i].live) {
				in[containers[i].function_id - 1].warm++;
				in[containers[i].function_id - 1].packets += containers[i].packets;
				in[containers[i].function_id - 1].bytes += containers[i].packets;
			}
		function_series_update(fs, in, FUNCTIONS, rows);
		assert_true(rows->len <= LIMIT + 1);
		for (guint i = 0; i < rows->len; i++) {
			const struct function_row *row = &g_array_index(rows, struct function_row, i);
			__u64 *before = g_hash_table_lookup(last, &row->function_id);

			if (before && row->packets < *before)
				fail_msg("round %d: function %llu's counter went from %llu to %llu", round,
					 (unsigned long long)row->function_id,
					 (unsigned long long)*before, (unsigned long long)row->packets);
			if (!before) {
				__u64 *key = g_new(__u64, 1);

				*key = row->function_id;
				before = g_new(__u64, 1);
				g_hash_table_insert(last, key, before);
			}
			*before = row->packets;
		}
		/* A function that lost its series and gets one again starts anew. */
		GHashTableIter iter;
		gpointer key;

		g_hash_table_iter_init(&iter, last);
		while (g_hash_table_iter_next(&iter, &key, NULL))
			if (!row_of(rows, *(__u64 *)key))
				g_hash_table_iter_remove(&iter);
	}
	g_hash_table_destroy(last);
	function_series_free(fs);
}

/* ---- accept_local ---------------------------------------------------------------- */

struct fake_sysctl {
	char root[64];
};

static void put(const struct fake_sysctl *f, const char *iface, const char *name, int value)
{
	char path[256];
	FILE *file;

	snprintf(path, sizeof(path), "%s/net/ipv4/conf/%s", f->root, iface);
	g_mkdir_with_parents(path, 0755);
	snprintf(path, sizeof(path), "%s/net/ipv4/conf/%s/%s", f->root, iface, name);
	file = fopen(path, "w");
	assert_non_null(file);
	fprintf(file, "%d\n", value);
	fclose(file);
}

static int get(const struct fake_sysctl *f, const char *iface, const char *name)
{
	char path[256];
	int value = -1;
	FILE *file;

	snprintf(path, sizeof(path), "%s/net/ipv4/conf/%s/%s", f->root, iface, name);
	file = fopen(path, "r");
	assert_non_null(file);
	assert_int_equal(fscanf(file, "%d", &value), 1);
	fclose(file);
	return value;
}

static void test_martians(void **state)
{
	struct fake_sysctl f;
	char command[128];

	(void)state;
	snprintf(f.root, sizeof(f.root), "/tmp/tether-test-sysctl.XXXXXX");
	assert_non_null(mkdtemp(f.root));
	put(&f, "all", "accept_local", 0);
	put(&f, "all", "rp_filter", 0);
	put(&f, "good", "accept_local", 1);
	put(&f, "good", "rp_filter", 2);
	put(&f, "bad", "accept_local", 0);
	put(&f, "bad", "rp_filter", 0);
	put(&f, "strict", "accept_local", 1);
	put(&f, "strict", "rp_filter", 1);

	/* Without --accept-local: warnings, once per interface, nothing set. */
	struct martians *warn = martians_new(false, f.root);

	assert_string_equal(martians_check(warn, "good", "vm1"), "");
	assert_non_null(strstr(martians_check(warn, "bad", "vm2"),
			       "backend vm2 is on bad, where replies the VM routes back"));
	assert_string_equal(martians_check(warn, "bad", "vm3"), ""); /* warned already */
	assert_non_null(strstr(martians_check(warn, "strict", "vm4"),
			       "net.ipv4.conf.strict.rp_filter is 1"));
	assert_string_equal(martians_check(warn, "strict", "vm4"), "");
	assert_int_equal(get(&f, "bad", "accept_local"), 0);
	assert_string_equal(martians_check(warn, "missing", "vm5"), ""); /* no such interface */
	martians_free(warn);

	/* With it: set, and said. */
	struct martians *fix = martians_new(true, f.root);

	assert_non_null(strstr(martians_check(fix, "bad", "vm2"),
			       "set net.ipv4.conf.bad.accept_local=1"));
	assert_int_equal(get(&f, "bad", "accept_local"), 1);
	assert_non_null(strstr(martians_check(fix, "strict", "vm4"),
			       "set net.ipv4.conf.strict.rp_filter=2 (it was 1)"));
	assert_int_equal(get(&f, "strict", "rp_filter"), 2);
	assert_string_equal(martians_check(fix, "bad", "vm2"), "");
	/* all.rp_filter 1 is the host's: not changed, said. */
	put(&f, "all", "rp_filter", 1);
	put(&f, "other", "accept_local", 0);
	put(&f, "other", "rp_filter", 0);
	const char *said = martians_check(fix, "other", "vm6");

	assert_non_null(strstr(said, "set net.ipv4.conf.other.accept_local=1"));
	assert_non_null(strstr(said, "net.ipv4.conf.all.rp_filter is 1"));
	assert_non_null(strstr(said, "net.ipv4.conf.all.rp_filter=2"));
	assert_int_equal(get(&f, "all", "rp_filter"), 1);
	martians_free(fix);
	snprintf(command, sizeof(command), "rm -rf %s", f.root);
	assert_int_equal(system(command), 0);
}

/* ---- the options --------------------------------------------------------------------- */

/* config_parse with the words given (after "tetherd"). */
static int parse(struct tetherd_config *config, const char *const words[])
{
	char *argv[32] = { "tetherd" };
	int argc = 1;

	for (; words[argc - 1]; argc++)
		argv[argc] = (char *)words[argc - 1];
	optind = 0; /* glibc: start over */
	return config_parse(config, argc, argv);
}

static void test_options(void **state)
{
	struct tetherd_config config;
	char path[] = "/tmp/tether-test-metrics-conf.XXXXXX";
	int fd;

	(void)state;
	assert_int_equal(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							       "198.51.100.1:7777", NULL }),
			 0);
	assert_string_equal(config.metrics.listen, "");
	assert_int_equal(config.metrics.functions, METRICS_DEFAULT_FUNCTIONS);
	assert_false(config.accept_local);
	assert_int_equal(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							       "198.51.100.1:7777", "--metrics-listen",
							       "[::1]:9417", "--metrics-functions",
							       "7", "--accept-local", NULL }),
			 0);
	assert_string_equal(config.metrics.listen, "[::1]:9417");
	assert_int_equal(config.metrics.functions, 7);
	assert_true(config.accept_local);
	/* Refused before anything is loaded. */
	assert_true(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							  "198.51.100.1:7777", "--metrics-listen",
							  "localhost:9417", NULL }) < 0);
	assert_true(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							  "198.51.100.1:7777", "--metrics-functions",
							  "many", NULL }) < 0);
	/* The settings file: the same names. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	dprintf(fd, "[tetherd]\niface = lo\nvip = 198.51.100.1:7777\n"
		    "metrics-listen = 127.0.0.1:9417\nmetrics-functions = 3\naccept-local = true\n");
	close(fd);
	assert_int_equal(parse(&config, (const char *const[]){ "--config", path, NULL }), 0);
	assert_string_equal(config.metrics.listen, "127.0.0.1:9417");
	assert_int_equal(config.metrics.functions, 3);
	assert_true(config.accept_local);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exposition_format),
		cmocka_unit_test(test_exposition_escaping),
		cmocka_unit_test(test_exposition_mistakes),
		cmocka_unit_test(test_series_bounded),
		cmocka_unit_test(test_series_sticky),
		cmocka_unit_test(test_series_counters_only_grow),
		cmocka_unit_test(test_martians),
		cmocka_unit_test(test_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
