// SPDX-License-Identifier: MIT
/* Tests of the fleet's store client (user/lib/store/) against a real etcd:
 * a three-member cluster of its own (tools/etcd-cluster.sh, in a directory of
 * its own, removed at the end, or by the script's guard if this test dies).
 * Without etcd installed the tests are skipped, except under CI=true, where
 * that fails. The JSON readers are also fed malformed answers directly. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <glib.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/etcd.h"
#include "etcd_internal.h"
#include "etcd_json.h"
#include "core/core.h"

#define MEMBERS 3

static struct {
	bool skip;
	char script[PATH_MAX + 32];
	char dir[128];
	char endpoints[512];
	char *endpoint[MEMBERS];
} cluster;

static int64_t now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

/* tools/etcd-cluster.sh, from the checkout the test runs in or was built in. */
static bool find_script(void)
{
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (realpath("tools/etcd-cluster.sh", cluster.script) && !access(cluster.script, X_OK))
		return true;
	if (len <= 0)
		return false;
	exe[len] = '\0';
	for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
		*slash = '\0';
		snprintf(cluster.script, sizeof(cluster.script), "%s/tools/etcd-cluster.sh", exe);
		if (!access(cluster.script, X_OK))
			return true;
	}
	return false;
}

static int run_script(const char *verb, int member)
{
	char command[PATH_MAX + 512];

	snprintf(command, sizeof(command), "'%s' %s '%s' %d", cluster.script, verb, cluster.dir,
		 member);
	return system(command);
}

static void kill_member(int member)
{
	assert_int_equal(run_script("kill", member), 0);
}

static void restart_member(int member)
{
	assert_int_equal(run_script("restart", member), 0);
}

/* SIGSTOP: its connections stay open, it answers nothing. */
static void freeze_member(int member)
{
	assert_int_equal(run_script("freeze", member), 0);
}

static void thaw_member(int member)
{
	assert_int_equal(run_script("thaw", member), 0);
}

static int cluster_setup(void **state)
{
	char command[PATH_MAX + 512];
	const char *ci = getenv("CI");

	(void)state;
	if (system("command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1")) {
		if (ci && !strcmp(ci, "true")) {
			fprintf(stderr, "CI=true: these tests need etcd (Debian etcd-server "
					"etcd-client; tools/install-deps.sh installs them)\n");
			return -1;
		}
		fprintf(stderr, "skipping: etcd is not installed (tools/install-deps.sh)\n");
		cluster.skip = true;
		return 0;
	}
	if (!find_script()) {
		fprintf(stderr, "tools/etcd-cluster.sh not found\n");
		return -1;
	}
	/* tmpfs when there is one: etcd's fsyncs are most of a write's time. */
	snprintf(cluster.dir, sizeof(cluster.dir), "%s/tether-etcd-test.XXXXXX",
		 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
	if (!mkdtemp(cluster.dir))
		return -1;
	/* Progress notifications twice a second, for the watch tests. */
	setenv("ETCD_CLUSTER_FLAGS", "--experimental-watch-progress-notify-interval=500ms", 1);
	snprintf(command, sizeof(command), "'%s' start '%s' %d --owner %d", cluster.script,
		 cluster.dir, MEMBERS, (int)getpid());
	FILE *out = popen(command, "r");

	if (!out)
		return -1;
	bool got = fgets(cluster.endpoints, sizeof(cluster.endpoints), out) != NULL;

	if (pclose(out) != 0 || !got) {
		fprintf(stderr, "could not start an etcd cluster in %s\n", cluster.dir);
		rmdir(cluster.dir);
		return -1;
	}
	cluster.endpoints[strcspn(cluster.endpoints, "\n")] = '\0';
	char **parts = g_strsplit(cluster.endpoints, ",", -1);

	for (int i = 0; i < MEMBERS; i++) {
		if (!parts[i])
			return -1;
		cluster.endpoint[i] = g_strdup(parts[i]);
	}
	g_strfreev(parts);
	return 0;
}

static int cluster_teardown(void **state)
{
	char command[PATH_MAX + 512];

	(void)state;
	for (int i = 0; i < MEMBERS; i++)
		g_free(cluster.endpoint[i]);
	if (cluster.skip || !cluster.dir[0])
		return 0;
	snprintf(command, sizeof(command), "'%s' stop '%s'", cluster.script, cluster.dir);
	return system(command) ? -1 : 0;
}

#define NEED_ETCD()                  \
	do {                         \
		if (cluster.skip)    \
			skip();      \
	} while (0)

/* A client on its own loop (for the _sync calls). */
static struct etcd_client *client_with(const char *endpoints, const struct etcd_options *options)
{
	char why[256] = "";
	struct etcd_client *client = etcd_client_new(NULL, endpoints, options, why, sizeof(why));

	if (!client)
		fail_msg("etcd_client_new(%s): %s", endpoints, why);
	return client;
}

static struct etcd_client *client_on(const char *endpoints, int timeout_ms)
{
	struct etcd_options options = { .timeout_ms = timeout_ms };

	return client_with(endpoints, &options);
}

#define CHECK_OK(status, error)                                                         \
	do {                                                                            \
		if ((status) != ETCD_OK)                                                \
			fail_msg("%s: %s", etcd_status_name(status), (error).message); \
	} while (0)

static void put(struct etcd_client *client, const char *key, const char *value,
		struct etcd_write_result *result)
{
	struct etcd_error error;

	CHECK_OK(etcd_put_sync(client, key, value, strlen(value), 0, result, &error), error);
}

/* Runs loop until done(ctx) or ms passed; whether done. */
static bool pump(struct loop *loop, int ms, bool (*done)(void *ctx), void *ctx)
{
	int64_t end = now_ms() + ms;

	while (!(done && done(ctx))) {
		if (now_ms() >= end)
			return false;
		loop_run_once(loop, 20);
	}
	return true;
}

/* --- Keys and values --------------------------------------------------------- */

static void test_put_range_delete(void **state)
{
	(void)state;
	NEED_ETCD();
	struct etcd_client *client = client_on(cluster.endpoints, 5000);
	struct etcd_write_result first, second, deleted;
	struct etcd_range_result *result;
	struct etcd_range range = { .key = "/t/kv/a" };
	struct etcd_error error;
	const char binary[] = { 'x', '\0', 'y', (char)0xff };

	put(client, "/t/kv/a", "one", &first);
	assert_true(first.header.revision > 0);
	assert_true(first.header.member_id != 0);
	CHECK_OK(etcd_put_sync(client, "/t/kv/b", binary, sizeof(binary), 0, NULL, &error), error);
	put(client, "/t/kv/a", "two", &second);
	assert_true(second.header.revision > first.header.revision);

	CHECK_OK(etcd_range_sync(client, &range, &result, &error), error);
	assert_int_equal(result->n_kvs, 1);
	assert_string_equal(result->kvs[0].key, "/t/kv/a");
	assert_string_equal(result->kvs[0].value, "two");
	assert_int_equal(result->kvs[0].version, 2);
	assert_int_equal(result->kvs[0].create_revision, first.header.revision);
	assert_int_equal(result->kvs[0].mod_revision, second.header.revision);
	etcd_range_result_free(result);

	/* As of the first put. */
	range.revision = first.header.revision;
	CHECK_OK(etcd_range_sync(client, &range, &result, &error), error);
	assert_string_equal(result->kvs[0].value, "one");
	etcd_range_result_free(result);

	/* The prefix, in key order, the binary value whole. */
	range = (struct etcd_range){ .key = "/t/kv/", .prefix = true };
	CHECK_OK(etcd_range_sync(client, &range, &result, &error), error);
	assert_int_equal(result->n_kvs, 2);
	assert_int_equal(result->count, 2);
	assert_string_equal(result->kvs[0].key, "/t/kv/a");
	assert_string_equal(result->kvs[1].key, "/t/kv/b");
	assert_int_equal(result->kvs[1].value_len, sizeof(binary));
	assert_memory_equal(result->kvs[1].value, binary, sizeof(binary));
	etcd_range_result_free(result);

	range.keys_only = true;
	range.limit = 1;
	CHECK_OK(etcd_range_sync(client, &range, &result, &error), error);
	assert_int_equal(result->n_kvs, 1);
	assert_true(result->more);
	assert_int_equal(result->count, 2);
	assert_int_equal(result->kvs[0].value_len, 0);
	etcd_range_result_free(result);

	range = (struct etcd_range){ .key = "/t/kv/", .prefix = true, .count_only = true };
	CHECK_OK(etcd_range_sync(client, &range, &result, &error), error);
	assert_int_equal(result->n_kvs, 0);
	assert_int_equal(result->count, 2);
	etcd_range_result_free(result);

	/* A revision not written yet is refused, clearly. */
	range = (struct etcd_range){ .key = "/t/kv/a", .revision = second.header.revision + 1000 };
	assert_int_equal(etcd_range_sync(client, &range, &result, &error), ETCD_REJECTED);
	assert_null(result);
	assert_non_null(strstr(error.message, "future revision"));

	CHECK_OK(etcd_delete_sync(client, "/t/kv/a", false, &deleted, &error), error);
	assert_int_equal(deleted.deleted, 1);
	range = (struct etcd_range){ .key = "/t/kv/a" };
	CHECK_OK(etcd_range_sync(client, &range, &result, &error), error);
	assert_int_equal(result->n_kvs, 0);
	assert_int_equal(result->count, 0);
	etcd_range_result_free(result);
	CHECK_OK(etcd_delete_sync(client, "/t/kv/", true, &deleted, &error), error);
	assert_int_equal(deleted.deleted, 1);
	etcd_client_free(client);
}

#define KEYS_IN_PAGES 10000

/* Pages of the 10,000 keys under /t/page/. */
struct pages {
	struct etcd_client *writer; /* writes while the pages are read */
	int pages, keys, biggest;
	int64_t first_revision;
	char last_key[64];
	bool done;
	struct etcd_error error;
	int64_t revision;
};

static void on_page(void *ctx, const struct etcd_range_result *page)
{
	struct pages *p = ctx;

	if (!p->pages++) {
		p->first_revision = page->header.revision;
		/* Written after the first page: not in the snapshot. */
		put(p->writer, "/t/page/zzz-late", "late", NULL);
		put(p->writer, "/t/page/00000", "changed", NULL);
	}
	p->biggest = MAX(p->biggest, (int)page->n_kvs);
	for (size_t i = 0; i < page->n_kvs; i++) {
		char expected[32];

		/* Strictly increasing keys: none twice, none skipped below. */
		assert_true(strcmp(page->kvs[i].key, p->last_key) > 0);
		snprintf(p->last_key, sizeof(p->last_key), "%s", page->kvs[i].key);
		snprintf(expected, sizeof(expected), "/t/page/%05d", p->keys);
		assert_string_equal(page->kvs[i].key, expected);
		snprintf(expected, sizeof(expected), "value-%d", p->keys);
		assert_string_equal(page->kvs[i].value, expected);
		p->keys++;
	}
}

static void on_pages_done(void *ctx, const struct etcd_error *error, int64_t revision)
{
	struct pages *p = ctx;

	p->done = true;
	p->revision = revision;
	if (error)
		p->error = *error;
}

static bool pages_done(void *ctx)
{
	return ((struct pages *)ctx)->done;
}

static void check_backlog(struct etcd_client *client, int64_t from, unsigned n);

static void test_paged_range(void **state)
{
	(void)state;
	NEED_ETCD();
	struct etcd_client *client = client_on(cluster.endpoints, 5000);
	enum { KEYS = KEYS_IN_PAGES, PER_TXN = 100 };
	struct etcd_op ops[PER_TXN];
	char keys[PER_TXN][32], values[PER_TXN][32];
	struct etcd_error error;
	struct etcd_write_result before;

	put(client, "/t/page-before", "x", &before);
	/* 100 puts a transaction (etcd takes up to 128). */
	for (int base = 0; base < KEYS; base += PER_TXN) {
		for (int i = 0; i < PER_TXN; i++) {
			snprintf(keys[i], sizeof(keys[i]), "/t/page/%05d", base + i);
			snprintf(values[i], sizeof(values[i]), "value-%d", base + i);
			ops[i] = (struct etcd_op){ .type = ETCD_OP_PUT, .key = keys[i],
						   .value = values[i],
						   .value_len = strlen(values[i]) };
		}
		struct etcd_txn txn = { .success = ops, .n_success = PER_TXN };
		struct etcd_txn_result *result;

		CHECK_OK(etcd_txn_sync(client, &txn, &result, &error), error);
		assert_int_equal(result->n_responses, PER_TXN);
		etcd_txn_result_free(result);
	}

	struct pages p = { .writer = client_on(cluster.endpoints, 5000) };
	struct etcd_range range = { .key = "/t/page/", .prefix = true, .limit = 1000 };
	int64_t started = now_ms();

	assert_non_null(etcd_range_pages(client, &range, on_page, on_pages_done, &p));
	assert_true(pump(etcd_client_loop(client), 20000, pages_done, &p));
	CHECK_OK(p.error.status, p.error);
	print_message("10,000 keys in %d pages in %" PRId64 " ms\n", p.pages, now_ms() - started);
	assert_int_equal(p.keys, KEYS);
	assert_int_equal(p.biggest, 1000);
	assert_in_range(p.pages, 10, 11);
	/* One snapshot, at the first page's revision. */
	assert_int_equal(p.revision, p.first_revision);
	check_backlog(client, before.header.revision + 1, KEYS + 2);

	struct etcd_write_result deleted;

	CHECK_OK(etcd_delete_sync(client, "/t/page/", true, &deleted, &error), error);
	assert_int_equal(deleted.deleted, KEYS + 1);
	etcd_client_free(p.writer);
	etcd_client_free(client);
}

static void test_call_cancel(void **state)
{
	(void)state;
	NEED_ETCD();
	struct etcd_client *client = client_on(cluster.endpoints, 5000);
	struct pages p = { 0 };
	struct etcd_range range = { .key = "/t/", .prefix = true };
	struct etcd_call *call = etcd_range_pages(client, &range, on_page, on_pages_done, &p);

	assert_non_null(call);
	etcd_call_cancel(call);
	assert_false(pump(etcd_client_loop(client), 300, pages_done, &p));
	assert_int_equal(p.pages, 0);
	/* A call still running when its client goes is freed with it. */
	assert_non_null(etcd_range_pages(client, &range, on_page, on_pages_done, &p));
	etcd_client_free(client);
	assert_false(p.done);
}

/* --- Transactions ------------------------------------------------------------ */

static void test_txn(void **state)
{
	(void)state;
	NEED_ETCD();
	struct etcd_client *client = client_on(cluster.endpoints, 5000);
	struct etcd_txn_result *result;
	struct etcd_error error;
	/* Create /t/txn/k only if it does not exist. */
	struct etcd_compare absent = { .key = "/t/txn/k", .target = ETCD_CMP_VERSION,
				       .op = ETCD_CMP_EQUAL, .number = 0 };
	struct etcd_op create[] = {
		{ .type = ETCD_OP_PUT, .key = "/t/txn/k", .value = "v1", .value_len = 2 },
		{ .type = ETCD_OP_PUT, .key = "/t/txn/other", .value = "o", .value_len = 1 },
	};
	struct etcd_op read[] = { { .type = ETCD_OP_RANGE, .key = "/t/txn/", .prefix = true } };
	struct etcd_txn txn = { &absent, 1, create, 2, read, 1 };

	CHECK_OK(etcd_txn_sync(client, &txn, &result, &error), error);
	assert_true(result->succeeded);
	assert_int_equal(result->n_responses, 2);
	assert_int_equal(result->responses[0].type, ETCD_OP_PUT);
	int64_t created = result->header.revision;

	assert_int_equal(result->responses[1].write.header.revision, created);
	etcd_txn_result_free(result);

	/* Again: the compare fails, the failure branch reads both keys. */
	assert_int_equal(etcd_txn_sync(client, &txn, &result, &error), ETCD_FAILED_COMPARE);
	assert_non_null(strstr(error.message, "compares did not hold"));
	assert_non_null(result);
	assert_false(result->succeeded);
	assert_int_equal(result->n_responses, 1);
	assert_int_equal(result->responses[0].type, ETCD_OP_RANGE);
	assert_int_equal(result->responses[0].range.n_kvs, 2);
	assert_string_equal(result->responses[0].range.kvs[0].key, "/t/txn/k");
	assert_int_equal(result->responses[0].range.kvs[0].create_revision, created);
	etcd_txn_result_free(result);

	/* Every kind of compare, all holding: value, mod and create revision. */
	struct etcd_compare all[] = {
		{ .key = "/t/txn/k", .target = ETCD_CMP_VALUE, .op = ETCD_CMP_EQUAL,
		  .value = "v1", .value_len = 2 },
		{ .key = "/t/txn/k", .target = ETCD_CMP_MOD_REVISION, .op = ETCD_CMP_EQUAL,
		  .number = created },
		{ .key = "/t/txn/k", .target = ETCD_CMP_CREATE_REVISION, .op = ETCD_CMP_LESS,
		  .number = created + 1 },
		{ .key = "/t/txn/k", .target = ETCD_CMP_VERSION, .op = ETCD_CMP_GREATER,
		  .number = 0 },
		{ .key = "/t/txn/k", .target = ETCD_CMP_VALUE, .op = ETCD_CMP_NOT_EQUAL,
		  .value = "v2", .value_len = 2 },
	};
	struct etcd_op update[] = {
		{ .type = ETCD_OP_PUT, .key = "/t/txn/k", .value = "v2", .value_len = 2 },
		{ .type = ETCD_OP_DELETE, .key = "/t/txn/other" },
		{ .type = ETCD_OP_RANGE, .key = "/t/txn/k" },
	};
	txn = (struct etcd_txn){ all, G_N_ELEMENTS(all), update, 3, NULL, 0 };
	CHECK_OK(etcd_txn_sync(client, &txn, &result, &error), error);
	assert_true(result->succeeded);
	assert_int_equal(result->responses[1].type, ETCD_OP_DELETE);
	assert_int_equal(result->responses[1].write.deleted, 1);
	assert_string_equal(result->responses[2].range.kvs[0].value, "v2");
	etcd_txn_result_free(result);

	/* The same compares fail now that the value is v2. */
	assert_int_equal(etcd_txn_sync(client, &txn, &result, &error), ETCD_FAILED_COMPARE);
	assert_int_equal(result->n_responses, 0);
	etcd_txn_result_free(result);

	/* A txn that cannot be sent: refused at once. */
	struct etcd_op nameless = { .type = ETCD_OP_PUT };

	txn = (struct etcd_txn){ NULL, 0, &nameless, 1, NULL, 0 };
	assert_null(etcd_txn(client, &txn, NULL, NULL));
	assert_int_equal(etcd_txn_sync(client, &txn, &result, &error), ETCD_REJECTED);
	CHECK_OK(etcd_delete_sync(client, "/t/txn/", true, NULL, &error), error);
	etcd_client_free(client);
}

/* Two clients on one loop, each adding one to a counter 1,000 times by
 * compare-and-swap on its mod revision. */
#define INCREMENTS 1000

struct racer {
	struct etcd_client *client;
	const char *name;
	int64_t seen_value, seen_mod; /* seen_mod 0: no counter yet */
	int64_t claimed[INCREMENTS];  /* the values its successful swaps wrote */
	int done, conflicts;
	bool failed;
	char value[32];
	struct etcd_error error;
};

static void swap(struct racer *r);

static void learn(struct racer *r, const struct etcd_range_result *range)
{
	r->seen_mod = 0;
	r->seen_value = 0;
	if (range->n_kvs) {
		r->seen_value = g_ascii_strtoll(range->kvs[0].value, NULL, 10);
		r->seen_mod = range->kvs[0].mod_revision;
	}
}

static void on_swapped(void *ctx, const struct etcd_error *error,
		       const struct etcd_txn_result *result)
{
	struct racer *r = ctx;

	if (error && error->status == ETCD_FAILED_COMPARE) {
		r->conflicts++;
		learn(r, &result->responses[0].range); /* the failure branch's read */
		swap(r);
		return;
	}
	if (error) {
		r->failed = true;
		r->error = *error;
		return;
	}
	r->claimed[r->done++] = r->seen_value + 1;
	r->seen_value++;
	r->seen_mod = result->header.revision;
	if (r->done < INCREMENTS)
		swap(r);
}

static void swap(struct racer *r)
{
	struct etcd_compare unchanged = {
		.key = "/t/cas/counter",
		.target = r->seen_mod ? ETCD_CMP_MOD_REVISION : ETCD_CMP_VERSION,
		.op = ETCD_CMP_EQUAL,
		.number = r->seen_mod,
	};

	snprintf(r->value, sizeof(r->value), "%" PRId64, r->seen_value + 1);
	struct etcd_op write = { .type = ETCD_OP_PUT, .key = "/t/cas/counter", .value = r->value,
				 .value_len = strlen(r->value) };
	struct etcd_op read = { .type = ETCD_OP_RANGE, .key = "/t/cas/counter" };
	struct etcd_txn txn = { &unchanged, 1, &write, 1, &read, 1 };

	assert_non_null(etcd_txn(r->client, &txn, on_swapped, r));
}

static bool racers_done(void *ctx)
{
	struct racer *r = ctx;

	return (r[0].done == INCREMENTS || r[0].failed) && (r[1].done == INCREMENTS || r[1].failed);
}

static int by_value(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void test_cas_race(void **state)
{
	(void)state;
	NEED_ETCD();
	struct loop *loop = loop_new();
	struct racer *r = g_new0(struct racer, 2);
	char why[256];
	/* Each on its own member first, so the swaps cross in the cluster. */
	char *orders[2] = {
		g_strdup_printf("%s,%s", cluster.endpoint[1], cluster.endpoint[2]),
		g_strdup_printf("%s,%s", cluster.endpoint[2], cluster.endpoint[1]),
	};
	int64_t started = now_ms();

	for (int i = 0; i < 2; i++) {
		r[i].name = i ? "B" : "A";
		r[i].client = etcd_client_new(loop, orders[i], NULL, why, sizeof(why));
		assert_non_null(r[i].client);
	}
	swap(&r[0]);
	swap(&r[1]);
	/* Seconds here; much longer under make test-sanitize, where every
	 * allocation unwinds its whole stack. */
	assert_true(pump(loop, 180000, racers_done, r));
	for (int i = 0; i < 2; i++)
		if (r[i].failed)
			fail_msg("racer %s: %s: %s", r[i].name, etcd_status_name(r[i].error.status),
				 r[i].error.message);
	print_message("2 x %d swaps in %" PRId64 " ms, %d + %d conflicts\n", INCREMENTS,
		      now_ms() - started, r[0].conflicts, r[1].conflicts);
	/* They did race. */
	assert_true(r[0].conflicts + r[1].conflicts > 0);

	/* No lost update: the counter is the sum; no duplicate: every value from
	 * 1 to 2,000 was claimed by exactly one swap. */
	struct etcd_client *reader = client_on(cluster.endpoints, 5000);
	struct etcd_range range = { .key = "/t/cas/counter" };
	struct etcd_range_result *result;
	struct etcd_error error;

	CHECK_OK(etcd_range_sync(reader, &range, &result, &error), error);
	assert_string_equal(result->kvs[0].value, "2000");
	assert_int_equal(result->kvs[0].version, 2 * INCREMENTS);
	etcd_range_result_free(result);
	int64_t *all = g_new(int64_t, 2 * INCREMENTS);

	memcpy(all, r[0].claimed, sizeof(r[0].claimed));
	memcpy(all + INCREMENTS, r[1].claimed, sizeof(r[1].claimed));
	qsort(all, 2 * INCREMENTS, sizeof(*all), by_value);
	for (int i = 0; i < 2 * INCREMENTS; i++)
		assert_int_equal(all[i], i + 1);
	g_free(all);
	CHECK_OK(etcd_delete_sync(reader, "/t/cas/", true, NULL, &error), error);
	etcd_client_free(reader);
	for (int i = 0; i < 2; i++) {
		etcd_client_free(r[i].client);
		g_free(orders[i]);
	}
	g_free(r);
	loop_free(loop);
}

/* --- Watches ------------------------------------------------------------------ */

struct seen_event {
	enum etcd_event_type type;
	char *key;
	char *value;
	int64_t mod_revision, create_revision, version;
};

struct watcher {
	GArray *events; /* of struct seen_event */
	int connected, lost, progress;
	int64_t progress_revision;
	char *endpoints[8]; /* of CONNECTED, in order */
	bool ended;
	struct etcd_error error;
	size_t want;    /* for until_events */
	bool cancel_in; /* cancel from the callback at the first event */
	bool cancelled;
	int after_cancel; /* callbacks after that: must be none */
	struct etcd_watch *watch;
};

static void on_watch(void *ctx, const struct etcd_error *error,
		     const struct etcd_watch_update *update)
{
	struct watcher *w = ctx;

	if (w->cancelled) {
		w->after_cancel++;
		return;
	}
	if (error) {
		w->ended = true;
		w->error = *error;
		return;
	}
	switch (update->news) {
	case ETCD_WATCH_CONNECTED:
		if (w->connected < 8)
			w->endpoints[w->connected] = g_strdup(update->endpoint);
		w->connected++;
		break;
	case ETCD_WATCH_LOST:
		assert_non_null(update->message);
		w->lost++;
		break;
	case ETCD_WATCH_PROGRESS:
		w->progress++;
		w->progress_revision = update->header.revision;
		break;
	case ETCD_WATCH_EVENTS:
		for (size_t i = 0; i < update->n_events; i++) {
			const struct etcd_event *e = &update->events[i];
			struct seen_event seen = {
				e->type, g_strdup(e->kv.key), g_strdup(e->kv.value),
				e->kv.mod_revision, e->kv.create_revision, e->kv.version,
			};

			g_array_append_val(w->events, seen);
		}
		if (w->cancel_in) {
			etcd_watch_cancel(w->watch);
			w->cancelled = true;
		}
		break;
	}
}

static void watcher_init(struct watcher *w)
{
	memset(w, 0, sizeof(*w));
	w->events = g_array_new(false, true, sizeof(struct seen_event));
}

static void watcher_clear(struct watcher *w)
{
	for (guint i = 0; i < w->events->len; i++) {
		g_free(g_array_index(w->events, struct seen_event, i).key);
		g_free(g_array_index(w->events, struct seen_event, i).value);
	}
	g_array_free(w->events, true);
	for (int i = 0; i < 8; i++)
		g_free(w->endpoints[i]);
}

static struct seen_event *seen(struct watcher *w, guint i)
{
	return &g_array_index(w->events, struct seen_event, i);
}

static bool until_events(void *ctx)
{
	struct watcher *w = ctx;

	return w->ended || w->events->len >= w->want;
}

static bool until_connected(void *ctx)
{
	return ((struct watcher *)ctx)->connected > 0;
}

static bool until_progress(void *ctx)
{
	return ((struct watcher *)ctx)->progress > 0;
}

static bool until_ended(void *ctx)
{
	return ((struct watcher *)ctx)->ended;
}

static void test_watch_in_order(void **state)
{
	(void)state;
	NEED_ETCD();
	struct etcd_client *client = client_on(cluster.endpoints, 5000);
	struct etcd_write_result before, result;
	struct etcd_error error;
	struct watcher w;

	watcher_init(&w);
	put(client, "/t/watch/before", "x", &before);
	put(client, "/t-not-under-the-prefix", "x", NULL);
	/* From the revision of the first put: history first, then news. */
	w.watch = etcd_watch_prefix(client, "/t/watch/", before.header.revision, on_watch, &w);
	assert_non_null(w.watch);
	put(client, "/t/watch/a", "1", NULL);
	put(client, "/t/watch/a", "2", NULL);
	struct etcd_op two[] = {
		{ .type = ETCD_OP_PUT, .key = "/t/watch/b", .value = "b", .value_len = 1 },
		{ .type = ETCD_OP_PUT, .key = "/t/watch/c", .value = "c", .value_len = 1 },
	};
	struct etcd_txn txn = { NULL, 0, two, 2, NULL, 0 };
	struct etcd_txn_result *txn_result;

	CHECK_OK(etcd_txn_sync(client, &txn, &txn_result, &error), error);
	int64_t txn_revision = txn_result->header.revision;

	etcd_txn_result_free(txn_result);
	CHECK_OK(etcd_delete_sync(client, "/t/watch/a", false, NULL, &error), error);
	CHECK_OK(etcd_delete_sync(client, "/t/watch/", true, &result, &error), error);
	static const struct {
		enum etcd_event_type type;
		const char *key, *value;
		int64_t version;
	} expected[] = {
		{ ETCD_EVENT_PUT, "/t/watch/before", "x", 1 },
		{ ETCD_EVENT_PUT, "/t/watch/a", "1", 1 },
		{ ETCD_EVENT_PUT, "/t/watch/a", "2", 2 },
		{ ETCD_EVENT_PUT, "/t/watch/b", "b", 1 },
		{ ETCD_EVENT_PUT, "/t/watch/c", "c", 1 },
		{ ETCD_EVENT_DELETE, "/t/watch/a", "", 0 },
		{ ETCD_EVENT_DELETE, "/t/watch/b", "", 0 },
		{ ETCD_EVENT_DELETE, "/t/watch/before", "", 0 },
	};
	/* The last delete took b, before and c: nine events, in revision order. */
	w.want = 9;
	assert_true(pump(etcd_client_loop(client), 5000, until_events, &w));
	assert_false(w.ended);
	assert_int_equal(w.connected, 1);
	assert_int_equal(w.events->len, 9);
	for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
		assert_int_equal(seen(&w, i)->type, expected[i].type);
		assert_string_equal(seen(&w, i)->key, expected[i].key);
		assert_string_equal(seen(&w, i)->value, expected[i].value);
		assert_int_equal(seen(&w, i)->version, expected[i].version);
		if (i)
			assert_true(seen(&w, i)->mod_revision >= seen(&w, i - 1)->mod_revision);
	}
	assert_int_equal(seen(&w, 0)->mod_revision, before.header.revision);
	assert_int_equal(seen(&w, 3)->mod_revision, txn_revision);
	assert_int_equal(seen(&w, 4)->mod_revision, txn_revision);
	assert_string_equal(seen(&w, 8)->key, "/t/watch/c");
	assert_int_equal(seen(&w, 8)->mod_revision, result.header.revision);
	assert_int_equal(etcd_watch_next_revision(w.watch), result.header.revision + 1);
	assert_non_null(etcd_watch_endpoint(w.watch));

	/* Quiet: progress notifications (500 ms here) move the resume point. */
	put(client, "/t-not-under-the-prefix", "y", &result);
	assert_true(pump(etcd_client_loop(client), 3000, until_progress, &w));
	assert_true(w.progress_revision >= result.header.revision);
	assert_int_equal(etcd_watch_next_revision(w.watch), w.progress_revision + 1);
	etcd_watch_cancel(w.watch);

	/* A watch cancelled from its own callback: no more callbacks, no leak. */
	struct watcher w2;

	watcher_init(&w2);
	w2.cancel_in = true;
	w2.watch = etcd_watch_prefix(client, "/t/watch/", 0, on_watch, &w2);
	assert_true(pump(etcd_client_loop(client), 3000, until_connected, &w2));
	put(client, "/t/watch/x", "1", NULL);
	put(client, "/t/watch/y", "1", NULL);
	pump(etcd_client_loop(client), 500, NULL, NULL);
	assert_true(w2.cancelled);
	assert_int_equal(w2.after_cancel, 0);
	CHECK_OK(etcd_delete_sync(client, "/t/watch/", true, NULL, &error), error);
	watcher_clear(&w2);
	watcher_clear(&w);
	etcd_client_free(client);
}

/* A watch from revision from catches up with the n events of /t/page/ since
 * (many messages of 100 events in each read): all of them, in order. */
static void check_backlog(struct etcd_client *client, int64_t from, unsigned n)
{
	struct watcher w;
	int64_t started = now_ms();

	watcher_init(&w);
	w.watch = etcd_watch_prefix(client, "/t/page/", from, on_watch, &w);
	w.want = n;
	assert_true(pump(etcd_client_loop(client), 20000, until_events, &w));
	print_message("a watch caught up with %u events in %" PRId64 " ms\n", n,
		      now_ms() - started);
	assert_int_equal(w.events->len, n);
	for (guint i = 1; i < n; i++)
		assert_true(seen(&w, i)->mod_revision >= seen(&w, i - 1)->mod_revision);
	assert_string_equal(seen(&w, 0)->key, "/t/page/00000");
	assert_string_equal(seen(&w, KEYS_IN_PAGES - 1)->key, "/t/page/09999");
	etcd_watch_cancel(w.watch);
	watcher_clear(&w);
}

/* A key written for sure: an outcome the writer cannot know (its member died
 * under it, an election) is read back before writing again. */
static void put_surely(struct etcd_client *client, const char *key, const char *value)
{
	int64_t end = now_ms() + 20000;

	while (now_ms() < end) {
		struct etcd_error error;
		enum etcd_status status =
			etcd_put_sync(client, key, value, strlen(value), 0, NULL, &error);

		if (status == ETCD_OK)
			return;
		if (status != ETCD_OUTCOME_UNKNOWN && status != ETCD_TIMEOUT &&
		    status != ETCD_UNAVAILABLE)
			fail_msg("put %s: %s: %s", key, etcd_status_name(status), error.message);
		print_message("put %s: %s (%s), again\n", key, etcd_status_name(status),
			      error.message);
		struct etcd_range range = { .key = key };
		struct etcd_range_result *result;

		if (etcd_range_sync(client, &range, &result, &error) == ETCD_OK && result->n_kvs &&
		    !strcmp(result->kvs[0].value, value)) {
			etcd_range_result_free(result);
			return;
		}
		etcd_range_result_free(result);
	}
	fail_msg("could not put %s in 20 s", key);
}

static int member_of(const char *endpoint)
{
	for (int i = 0; i < MEMBERS; i++)
		if (!strcmp(endpoint, cluster.endpoint[i]))
			return i;
	fail_msg("%s is no member's endpoint", endpoint);
	return -1;
}

static void test_watch_resumes_after_member_killed(void **state)
{
	(void)state;
	NEED_ETCD();
	enum { BEFORE = 50, AFTER = 50 };
	struct etcd_client *watching = client_on(cluster.endpoints, 5000);
	struct etcd_client *writer = client_on(cluster.endpoints, 5000);
	struct watcher w;
	char key[64], value[64];

	watcher_init(&w);
	w.watch = etcd_watch_prefix(watching, "/t/resume/", 0, on_watch, &w);
	assert_true(pump(etcd_client_loop(watching), 5000, until_connected, &w));
	int victim = member_of(etcd_watch_endpoint(w.watch));

	for (int i = 0; i < BEFORE + AFTER; i++) {
		if (i == BEFORE) {
			/* Some of the events still in flight to the watcher. */
			w.want = BEFORE / 2;
			assert_true(pump(etcd_client_loop(watching), 5000, until_events, &w));
			kill_member(victim);
		}
		snprintf(key, sizeof(key), "/t/resume/%03d", i);
		snprintf(value, sizeof(value), "v%d", i);
		put_surely(writer, key, value);
	}
	w.want = BEFORE + AFTER;
	pump(etcd_client_loop(watching), 15000, until_events, &w);
	assert_false(w.ended);
	print_message("member %d killed; the watch resumed on %s\n", victim,
		      w.connected > 1 ? w.endpoints[1] : "(nothing)");
	assert_int_equal(w.lost, 1);
	assert_int_equal(w.connected, 2);
	assert_int_not_equal(member_of(w.endpoints[1]), victim);
	/* Every put once, in order: none lost, none twice. */
	assert_int_equal(w.events->len, BEFORE + AFTER);
	for (int i = 0; i < BEFORE + AFTER; i++) {
		snprintf(key, sizeof(key), "/t/resume/%03d", i);
		assert_string_equal(seen(&w, (guint)i)->key, key);
		assert_int_equal(seen(&w, (guint)i)->type, ETCD_EVENT_PUT);
	}
	etcd_watch_cancel(w.watch);
	watcher_clear(&w);
	restart_member(victim);
	struct etcd_error error;

	CHECK_OK(etcd_delete_sync(writer, "/t/resume/", true, NULL, &error), error);
	etcd_client_free(writer);
	etcd_client_free(watching);
}

/* A member that hangs (SIGSTOP) closes nothing: the watch on it finds out by
 * its status checks and resumes elsewhere; a read sent to it first goes to
 * another member in time. */
static void test_frozen_member(void **state)
{
	(void)state;
	NEED_ETCD();
	struct etcd_options options = { .timeout_ms = 3000, .watch_check_ms = 1000 };
	struct etcd_client *watching = client_with(cluster.endpoints, &options);
	struct watcher w;
	char key[64];

	watcher_init(&w);
	w.watch = etcd_watch_prefix(watching, "/t/frozen/", 0, on_watch, &w);
	assert_true(pump(etcd_client_loop(watching), 5000, until_connected, &w));
	int victim = member_of(etcd_watch_endpoint(w.watch));
	int others[2] = { (victim + 1) % MEMBERS, (victim + 2) % MEMBERS };
	char *rest = g_strdup_printf("%s,%s", cluster.endpoint[others[0]],
				     cluster.endpoint[others[1]]);
	struct etcd_client *writer = client_on(rest, 5000);

	for (int i = 0; i < 20; i++) {
		if (i == 10) {
			w.want = 10;
			assert_true(pump(etcd_client_loop(watching), 5000, until_events, &w));
			freeze_member(victim);
		}
		snprintf(key, sizeof(key), "/t/frozen/%02d", i);
		put_surely(writer, key, "v");
	}
	int64_t frozen = now_ms();

	w.want = 20;
	pump(etcd_client_loop(watching), 15000, until_events, &w);
	print_message("member %d frozen; the watch went on from %s after %" PRId64 " ms\n", victim,
		      w.connected > 1 ? w.endpoints[1] : "(nowhere)", now_ms() - frozen);
	assert_false(w.ended);
	assert_int_equal(w.lost, 1);
	assert_int_equal(w.connected, 2);
	assert_int_not_equal(member_of(w.endpoints[1]), victim);
	assert_int_equal(w.events->len, 20);
	for (guint i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "/t/frozen/%02u", i);
		assert_string_equal(seen(&w, i)->key, key);
	}
	etcd_watch_cancel(w.watch);
	watcher_clear(&w);

	/* The frozen member first: a read's first attempt has half of the 3 s,
	 * then the next member answers. */
	char *frozen_first = g_strdup_printf("%s,%s", cluster.endpoint[victim], rest);
	struct etcd_client *reader = client_on(frozen_first, 3000);
	struct etcd_range range = { .key = "/t/frozen/", .prefix = true, .count_only = true };
	struct etcd_range_result *result;
	struct etcd_error error;
	int64_t started = now_ms();

	CHECK_OK(etcd_range_sync(reader, &range, &result, &error), error);
	assert_int_equal(result->count, 20);
	assert_in_range(now_ms() - started, 1000, 3000);
	etcd_range_result_free(result);
	thaw_member(victim);
	CHECK_OK(etcd_delete_sync(writer, "/t/frozen/", true, NULL, &error), error);
	etcd_client_free(reader);
	etcd_client_free(writer);
	etcd_client_free(watching);
	g_free(frozen_first);
	g_free(rest);
}

static void test_watch_compacted(void **state)
{
	(void)state;
	NEED_ETCD();
	struct etcd_client *client = client_on(cluster.endpoints, 5000);
	struct etcd_write_result old, last;
	struct etcd_error error;
	struct watcher w;

	put(client, "/t/compact/k", "old", &old);
	for (int i = 0; i < 5; i++)
		put(client, "/t/compact/k", "newer", &last);
	CHECK_OK(etcd_compact_sync(client, last.header.revision, true, &error), error);

	/* Reading as of a compacted revision: compacted. */
	struct etcd_range range = { .key = "/t/compact/k", .revision = old.header.revision };
	struct etcd_range_result *result;

	assert_int_equal(etcd_range_sync(client, &range, &result, &error), ETCD_COMPACTED);
	assert_null(result);
	assert_non_null(strstr(error.message, "compacted"));

	/* Watching from one: the watch ends with the compact revision to
	 * resync from. */
	watcher_init(&w);
	w.watch = etcd_watch_prefix(client, "/t/compact/", old.header.revision, on_watch, &w);
	assert_true(pump(etcd_client_loop(client), 5000, until_ended, &w));
	assert_int_equal(w.error.status, ETCD_COMPACTED);
	assert_int_equal(w.error.compact_revision, last.header.revision);
	assert_non_null(strstr(w.error.message, "read everything again"));
	assert_int_equal(w.events->len, 0);
	assert_null(etcd_watch_endpoint(w.watch));
	etcd_watch_cancel(w.watch); /* still the caller's to free */

	/* From the compact revision on, it works. */
	watcher_clear(&w);
	watcher_init(&w);
	w.watch = etcd_watch_prefix(client, "/t/compact/", last.header.revision, on_watch, &w);
	w.want = 1;
	assert_true(pump(etcd_client_loop(client), 5000, until_events, &w));
	assert_false(w.ended);
	assert_int_equal(seen(&w, 0)->mod_revision, last.header.revision);
	etcd_watch_cancel(w.watch);
	watcher_clear(&w);
	CHECK_OK(etcd_delete_sync(client, "/t/compact/", true, NULL, &error), error);
	etcd_client_free(client);
}

/* --- Leases ------------------------------------------------------------------- */

struct lease_watch {
	bool lost;
	struct etcd_error error;
};

static void on_lost(void *ctx, const struct etcd_error *error)
{
	struct lease_watch *l = ctx;

	l->lost = true;
	l->error = *error;
}

static bool until_lost(void *ctx)
{
	return ((struct lease_watch *)ctx)->lost;
}

static bool key_exists(struct etcd_client *client, const char *key)
{
	struct etcd_range range = { .key = key };
	struct etcd_range_result *result;
	struct etcd_error error;

	CHECK_OK(etcd_range_sync(client, &range, &result, &error), error);
	bool exists = result->n_kvs > 0;

	etcd_range_result_free(result);
	return exists;
}

static void test_lease_keepalive(void **state)
{
	(void)state;
	NEED_ETCD();
	struct etcd_client *client = client_on(cluster.endpoints, 5000);
	struct lease_watch l = { 0 };
	struct etcd_error error;
	int64_t id, ttl;

	/* etcd raises TTLs under its minimum (2 s with the default election
	 * timeout). */
	CHECK_OK(etcd_lease_grant_sync(client, 1, &id, &ttl, &error), error);
	assert_true(id != 0);
	assert_in_range(ttl, 1, 2);
	CHECK_OK(etcd_put_sync(client, "/t/lease/k", "v", 1, id, NULL, &error), error);
	struct etcd_keepalive *keepalive = etcd_keepalive_start(client, id, ttl, on_lost, &l);

	/* Twice the TTL: kept. */
	assert_false(pump(etcd_client_loop(client), (int)(2 * ttl * 1000), until_lost, &l));
	assert_true(key_exists(client, "/t/lease/k"));
	etcd_keepalive_stop(keepalive);

	/* No keepalive: gone within the TTL and etcd's expiry check (500 ms). */
	int64_t stopped = now_ms();

	while (key_exists(client, "/t/lease/k") && now_ms() - stopped < ttl * 1000 + 3000)
		pump(etcd_client_loop(client), 100, NULL, NULL);
	assert_false(key_exists(client, "/t/lease/k"));
	print_message("lease of %" PRId64 " s: the key went %" PRId64 " ms after the last "
		      "keepalive stopped\n",
		      ttl, now_ms() - stopped);

	/* A lease revoked under its keepalive: the keepalive reports it lost. */
	CHECK_OK(etcd_lease_grant_sync(client, 2, &id, &ttl, &error), error);
	keepalive = etcd_keepalive_start(client, id, ttl, on_lost, &l);
	assert_false(pump(etcd_client_loop(client), 300, until_lost, &l));
	CHECK_OK(etcd_lease_revoke_sync(client, id, &error), error);
	assert_true(pump(etcd_client_loop(client), (int)(ttl * 1000), until_lost, &l));
	assert_int_equal(l.error.status, ETCD_NOT_FOUND);
	char id_text[32];

	snprintf(id_text, sizeof(id_text), "%" PRId64, id);
	assert_non_null(strstr(l.error.message, id_text));
	etcd_keepalive_stop(keepalive);

	/* Revoked twice: not found. */
	assert_int_equal(etcd_lease_revoke_sync(client, id, &error), ETCD_NOT_FOUND);
	/* A keepalive left running is freed with its client. */
	CHECK_OK(etcd_lease_grant_sync(client, 2, &id, &ttl, &error), error);
	assert_non_null(etcd_keepalive_start(client, id, ttl, on_lost, &l));
	etcd_client_free(client);
}

/* --- Failover and failures ------------------------------------------------------ */

static void test_kv_failover_one_member_killed(void **state)
{
	(void)state;
	NEED_ETCD();
	/* The dead member first: every call starts there until one has moved on. */
	char *endpoints = g_strdup_printf("%s,%s,%s", cluster.endpoint[0], cluster.endpoint[1],
					  cluster.endpoint[2]);
	struct etcd_client *client = client_on(endpoints, 5000);
	struct etcd_error error;
	char key[32];

	kill_member(0);
	int64_t started = now_ms();

	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "/t/failover/%d", i);
		put_surely(client, key, "v");
		assert_true(key_exists(client, key));
	}
	print_message("20 puts and reads with member 0 dead: %" PRId64 " ms\n",
		      now_ms() - started);
	/* A fresh client on the same order fails over too. */
	struct etcd_client *fresh = client_on(endpoints, 5000);
	struct etcd_range range = { .key = "/t/failover/", .prefix = true, .count_only = true };
	struct etcd_range_result *result;

	CHECK_OK(etcd_range_sync(fresh, &range, &result, &error), error);
	assert_int_equal(result->count, 20);
	assert_int_not_equal(result->header.member_id, 0);
	etcd_range_result_free(result);
	/* Its status alone: unavailable, saying why. */
	struct etcd_member_status status;

	assert_int_equal(etcd_member_status_sync(fresh, 0, &status, &error), ETCD_UNAVAILABLE);
	assert_non_null(strstr(error.message, cluster.endpoint[0]));
	etcd_client_free(fresh);
	restart_member(0);
	CHECK_OK(etcd_delete_sync(client, "/t/failover/", true, NULL, &error), error);
	etcd_client_free(client);
	g_free(endpoints);
}

/* A port on 127.0.0.1 where nobody listens. */
static int closed_port(void)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&addr, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	close(fd);
	return ntohs(addr.sin_port);
}

static void test_all_endpoints_dead(void **state)
{
	(void)state;
	char *endpoints = g_strdup_printf("http://127.0.0.1:%d,http://127.0.0.1:%d",
					  closed_port(), closed_port());
	struct etcd_client *client = client_on(endpoints, 1500);
	struct etcd_range range = { .key = "/t/" };
	struct etcd_range_result *result;
	struct etcd_error error;
	int64_t started = now_ms();

	assert_int_equal(etcd_range_sync(client, &range, &result, &error), ETCD_UNAVAILABLE);
	int64_t took = now_ms() - started;

	print_message("unavailable after %" PRId64 " ms: %s\n", took, error.message);
	/* Within the deadline (a loaded machine may run the loop late). */
	assert_in_range(took, 200, 1500 + 1000);
	assert_non_null(strstr(error.message, "etcd unavailable"));
	assert_non_null(strstr(error.message, "1500 ms"));
	/* Both endpoints named, each with its failure. */
	char **parts = g_strsplit(endpoints, ",", 2);

	assert_non_null(strstr(error.message, parts[0]));
	assert_non_null(strstr(error.message, parts[1]));
	g_strfreev(parts);
	/* A write never sent: unavailable too, not "unknown". */
	assert_int_equal(etcd_put_sync(client, "/t/k", "v", 1, 0, NULL, &error), ETCD_UNAVAILABLE);
	etcd_client_free(client);
	g_free(endpoints);
}

/* Accepts connections (the kernel's backlog) and never answers. */
static int silent_listener(int *port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&addr, len), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	*port = ntohs(addr.sin_port);
	return fd;
}

static void test_silent_endpoint_times_out(void **state)
{
	(void)state;
	int port, fd = silent_listener(&port);
	char *endpoint = g_strdup_printf("http://127.0.0.1:%d", port);
	struct etcd_client *client = client_on(endpoint, 800);
	struct etcd_range range = { .key = "/t/" };
	struct etcd_range_result *result;
	struct etcd_error error;
	int64_t started = now_ms();

	assert_int_equal(etcd_range_sync(client, &range, &result, &error), ETCD_TIMEOUT);
	assert_in_range(now_ms() - started, 700, 800 + 1000);
	assert_non_null(strstr(error.message, "did not answer the range within 800 ms"));
	/* A write: whether it was applied is unknown, and said. */
	assert_int_equal(etcd_put_sync(client, "/t/k", "v", 1, 0, NULL, &error), ETCD_TIMEOUT);
	assert_non_null(strstr(error.message, "may or may not have been applied"));
	etcd_client_free(client);
	g_free(endpoint);
	close(fd);
}

/* A watch sent where nothing answers (a member cut off leaves its connections
 * open and quiet; here a listener that never speaks) goes to the next member
 * after the call's timeout, instead of waiting forever: a stream has no
 * curl timeout of its own. */
static void test_watch_silent_endpoint_moves_on(void **state)
{
	(void)state;
	NEED_ETCD();
	int port, fd = silent_listener(&port);
	char *endpoints = g_strdup_printf("http://127.0.0.1:%d,%s", port, cluster.endpoint[0]);
	struct etcd_client *watching = client_on(endpoints, 1000);
	struct etcd_client *writer = client_on(cluster.endpoints, 5000);
	struct etcd_error error;
	struct watcher w;
	int64_t started = now_ms();

	watcher_init(&w);
	w.watch = etcd_watch_prefix(watching, "/t/silent/", 0, on_watch, &w);
	assert_true(pump(etcd_client_loop(watching), 5000, until_connected, &w));
	print_message("the watch went on from %s after %" PRId64 " ms\n",
		      etcd_watch_endpoint(w.watch), now_ms() - started);
	assert_in_range(now_ms() - started, 900, 5000);
	assert_int_equal(member_of(etcd_watch_endpoint(w.watch)), 0);
	put_surely(writer, "/t/silent/a", "v");
	w.want = 1;
	assert_true(pump(etcd_client_loop(watching), 5000, until_events, &w));
	assert_string_equal(seen(&w, 0)->key, "/t/silent/a");
	etcd_watch_cancel(w.watch);
	watcher_clear(&w);
	CHECK_OK(etcd_delete_sync(writer, "/t/silent/", true, NULL, &error), error);
	etcd_client_free(writer);
	etcd_client_free(watching);
	g_free(endpoints);
	close(fd);
}

static void test_member_status(void **state)
{
	(void)state;
	NEED_ETCD();
	struct etcd_client *client = client_on(cluster.endpoints, 5000);
	struct etcd_member_status status[MEMBERS];
	struct etcd_error error;

	for (size_t i = 0; i < MEMBERS; i++) {
		CHECK_OK(etcd_member_status_sync(client, i, &status[i], &error), error);
		assert_string_equal(status[i].endpoint, cluster.endpoint[i]);
		assert_true(g_str_has_prefix(status[i].version, "3.4."));
		assert_true(status[i].header.revision > 0);
		assert_true(status[i].leader != 0);
		assert_true(status[i].raft_term > 0);
		assert_true(status[i].db_size > 0);
		for (size_t j = 0; j < i; j++) {
			assert_true(status[i].header.member_id != status[j].header.member_id);
			assert_true(status[i].leader == status[j].leader);
			assert_true(status[i].header.cluster_id == status[j].header.cluster_id);
		}
	}
	struct etcd_client *shared;
	struct loop *loop = loop_new();
	char why[128];

	/* Synchronous calls refuse a loop that is not the client's own. */
	shared = etcd_client_new(loop, cluster.endpoints, NULL, why, sizeof(why));
	assert_int_equal(etcd_member_status_sync(shared, 0, &status[0], &error), ETCD_REJECTED);
	assert_non_null(strstr(error.message, "loop of its own"));
	etcd_client_free(shared);
	loop_free(loop);
	etcd_client_free(client);
}

static void test_client_arguments(void **state)
{
	char why[256];

	(void)state;
	assert_null(etcd_client_new(NULL, "", NULL, why, sizeof(why)));
	assert_non_null(strstr(why, "no etcd endpoint"));
	assert_null(etcd_client_new(NULL, "127.0.0.1:2379", NULL, why, sizeof(why)));
	assert_non_null(strstr(why, "is not a URL like http://"));
	struct etcd_client *client =
		etcd_client_new(NULL, " http://a:2379/ ,http://b:2379", NULL, why, sizeof(why));

	assert_non_null(client);
	assert_int_equal(etcd_client_endpoint_count(client), 2);
	assert_string_equal(etcd_client_endpoint(client, 0), "http://a:2379");
	assert_string_equal(etcd_client_endpoint(client, 1), "http://b:2379");
	assert_null(etcd_client_endpoint(client, 2));
	etcd_client_free(client);
}

/* --- etcd's JSON, malformed ------------------------------------------------------ */

static JsonNode *parse(const char *text)
{
	char why[256];
	JsonNode *root = etcd_json_parse(text, strlen(text), why, sizeof(why));

	if (!root)
		fail_msg("%s: %s", text, why);
	return root;
}

/* The reader refuses text, saying expected. */
#define REFUSES(reader, result, text, expected)                                         \
	do {                                                                            \
		char why_[256] = "";                                                    \
		JsonNode *root_ = parse(text);                                          \
		if (reader(root_, result, why_, sizeof(why_)))                          \
			fail_msg("%s took %s", #reader, text);                          \
		if (!strstr(why_, expected))                                            \
			fail_msg("%s on %s: '%s' does not say '%s'", #reader, text, why_, \
				 expected);                                             \
		json_node_unref(root_);                                                 \
	} while (0)

static void test_json_malformed(void **state)
{
	struct etcd_range_result range;
	struct etcd_txn_result txn;
	struct etcd_write_result write;
	struct etcd_watch_message watch;
	struct etcd_member_status status;
	char why[256];

	(void)state;
	assert_null(etcd_json_parse("not json", 8, why, sizeof(why)));
	assert_non_null(strstr(why, "not JSON"));
	assert_null(etcd_json_parse("{\"kvs\": [", 9, why, sizeof(why)));
	assert_null(etcd_json_parse("[1, 2]", 6, why, sizeof(why)));
	assert_non_null(strstr(why, "not a JSON object"));
	assert_null(etcd_json_parse("", 0, why, sizeof(why)));

	REFUSES(etcd_json_read_range, &range, "{\"kvs\": [{\"key\": \"@@@\"}]}",
		"kvs[0].key is not base64");
	REFUSES(etcd_json_read_range, &range, "{\"kvs\": [{\"key\": \"YQ==\"}, {\"key\": \"YQ\"}]}",
		"kvs[1].key is not base64");
	REFUSES(etcd_json_read_range, &range, "{\"kvs\": \"many\"}", "kvs is not an array");
	REFUSES(etcd_json_read_range, &range, "{\"kvs\": [7]}", "kvs[0] is not an object");
	REFUSES(etcd_json_read_range, &range, "{\"header\": {\"revision\": \"12a\"}}",
		"header.revision is not a number");
	REFUSES(etcd_json_read_range, &range, "{\"header\": []}", "header is not an object");
	REFUSES(etcd_json_read_range, &range, "{\"count\": true}", "count is not a number");
	REFUSES(etcd_json_read_range, &range, "{\"more\": \"yes\"}", "more is not true or false");
	REFUSES(etcd_json_read_range, &range,
		"{\"kvs\": [{\"key\": \"YQ==\", \"mod_revision\": 1.5}]}",
		"kvs[0].mod_revision is not a number");
	REFUSES(etcd_json_read_write, &write, "{\"deleted\": {}}", "deleted is not a number");
	REFUSES(etcd_json_read_txn, &txn, "{\"succeeded\": 1}", "succeeded is not true or false");
	REFUSES(etcd_json_read_txn, &txn, "{\"responses\": [{\"response_foo\": {}}]}",
		"responses[0] is none of");
	REFUSES(etcd_json_read_txn, &txn,
		"{\"responses\": [{\"response_put\": {}}, {\"response_range\": {\"kvs\": "
		"[{\"value\": \"!\"}]}}]}",
		"responses[1].response_range.kvs[0].value is not base64");
	REFUSES(etcd_json_read_watch, &watch, "{\"foo\": 1}", "has neither result nor error");
	REFUSES(etcd_json_read_watch, &watch,
		"{\"result\": {\"events\": [{\"type\": \"EXPLODE\", \"kv\": "
		"{\"key\": \"YQ==\"}}]}}",
		"result.events[0].type is neither PUT nor DELETE");
	REFUSES(etcd_json_read_watch, &watch, "{\"result\": {\"events\": [{\"type\": \"PUT\"}]}}",
		"result.events[0].kv is missing");
	REFUSES(etcd_json_read_watch, &watch,
		"{\"result\": {\"compact_revision\": \"-\", \"canceled\": true}}",
		"result.compact_revision is not a number");
	REFUSES(etcd_json_read_status, &status, "{\"leader\": \"the tall one\"}",
		"leader is not a number");
	REFUSES(etcd_json_read_status, &status, "{\"errors\": [1]}", "errors holds something");

	int64_t id, ttl;
	JsonNode *root = parse("{\"error\": \"etcdserver: too many leases\"}");

	assert_false(etcd_json_read_lease(root, &id, &ttl, why, sizeof(why)));
	assert_non_null(strstr(why, "too many leases"));
	json_node_unref(root);

	/* And what etcd 3.4 does send, read right: ids above 2^63 included. */
	root = parse("{\"header\":{\"cluster_id\":\"13455796455940752355\",\"member_id\":"
		     "\"443629905751424238\",\"revision\":\"2\",\"raft_term\":\"2\"},\"kvs\":[{"
		     "\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
		     "\"version\":\"1\",\"value\":\"YmFy\"}],\"count\":\"1\"}");
	assert_true(etcd_json_read_range(root, &range, why, sizeof(why)));
	assert_true(range.header.cluster_id == 13455796455940752355ull);
	assert_int_equal(range.n_kvs, 1);
	assert_string_equal(range.kvs[0].key, "foo");
	assert_string_equal(range.kvs[0].value, "bar");
	etcd_range_result_clear(&range);
	json_node_unref(root);

	root = parse("{\"result\":{\"header\":{\"revision\":\"9\"},\"events\":[{\"type\":"
		     "\"DELETE\",\"kv\":{\"key\":\"YTE=\",\"mod_revision\":\"9\"}},{\"kv\":{"
		     "\"key\":\"YTI=\",\"value\":\"\",\"mod_revision\":\"9\"}}]}}");
	assert_true(etcd_json_read_watch(root, &watch, why, sizeof(why)));
	assert_int_equal(watch.n_events, 2);
	assert_int_equal(watch.events[0].type, ETCD_EVENT_DELETE);
	assert_int_equal(watch.events[1].type, ETCD_EVENT_PUT);
	assert_string_equal(watch.events[1].kv.key, "a2");
	etcd_watch_message_clear(&watch);
	json_node_unref(root);

	int code;
	char *message;

	root = parse("{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: no "
		     "leader\",\"code\":14}");
	assert_true(etcd_json_read_error(root, &code, &message));
	assert_int_equal(code, 14);
	assert_string_equal(message, "etcdserver: no leader");
	g_free(message);
	json_node_unref(root);
	root = parse("{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: "
		     "no leader\"}}");
	assert_true(etcd_json_read_error(root, &code, &message));
	assert_int_equal(code, 14);
	g_free(message);
	json_node_unref(root);
	root = parse("{\"hello\": \"world\"}");
	assert_false(etcd_json_read_error(root, &code, &message));
	json_node_unref(root);
}

static void test_error_verdicts(void **state)
{
	enum etcd_status status;

	(void)state;
	assert_int_equal(etcd_judge_grpc(14, "etcdserver: no leader", &status), ETCD_VERDICT_RETRY);
	assert_int_equal(etcd_judge_grpc(14, "etcdserver: request timed out", &status),
			 ETCD_VERDICT_RETRY_IF_READ);
	assert_int_equal(etcd_judge_grpc(14, "etcdserver: leader changed", &status),
			 ETCD_VERDICT_RETRY_IF_READ);
	assert_int_equal(etcd_judge_grpc(11, "etcdserver: mvcc: required revision has been "
					     "compacted", &status),
			 ETCD_VERDICT_FINAL);
	assert_int_equal(status, ETCD_COMPACTED);
	assert_int_equal(etcd_judge_grpc(5, "etcdserver: requested lease not found", &status),
			 ETCD_VERDICT_FINAL);
	assert_int_equal(status, ETCD_NOT_FOUND);
	assert_int_equal(etcd_judge_grpc(3, "etcdserver: too many operations in txn request",
					 &status),
			 ETCD_VERDICT_FINAL);
	assert_int_equal(status, ETCD_REJECTED);
	assert_string_equal(etcd_status_name(ETCD_OUTCOME_UNKNOWN), "outcome-unknown");
	assert_string_equal(etcd_status_name((enum etcd_status)99), "unknown-status");
}

static void test_prefix_end(void **state)
{
	size_t len;
	char *end;

	(void)state;
	end = etcd_prefix_end("/t/a", 4, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(end, "/t/b", 4);
	g_free(end);
	end = etcd_prefix_end("a\xff\xff", 3, &len);
	assert_int_equal(len, 1);
	assert_memory_equal(end, "b", 1);
	g_free(end);
	end = etcd_prefix_end("\xff", 1, &len);
	assert_int_equal(len, 1);
	assert_int_equal(end[0], '\0');
	g_free(end);
	end = etcd_prefix_end("", 0, &len);
	assert_int_equal(len, 1);
	assert_int_equal(end[0], '\0');
	g_free(end);
}

/* --- TLS --------------------------------------------------------------------- */

/* A one-member etcd of its own with TLS and client certificates required
 * (tools/etcd-cluster.sh --tls): a client without a certificate is refused,
 * one trusting another CA refuses etcd, one with the certificate works; the
 * files are read once (a reload that fails keeps them). */
static void test_tls_client_certificates(void **state)
{
	(void)state;
	NEED_ETCD();
	char endpoint[256] = "", why[512];
	struct etcd_error error;
	struct etcd_range_result *result;
	struct etcd_range range = { .key = "/t/tls/a" };
	g_autofree char *dir = g_strdup_printf("%s-tls", cluster.dir);
	g_autofree char *start = g_strdup_printf("'%s' start '%s' 1 --tls --owner %d",
						 cluster.script, dir, (int)getpid());
	FILE *out = popen(start, "r");

	assert_non_null(out);
	bool got = fgets(endpoint, sizeof(endpoint), out) != NULL;

	assert_int_equal(pclose(out), 0);
	assert_true(got);
	endpoint[strcspn(endpoint, "\n")] = '\0';
	assert_true(g_str_has_prefix(endpoint, "https://"));
	g_autofree char *ca = g_strdup_printf("%s/tls/ca.pem", dir);
	g_autofree char *cert = g_strdup_printf("%s/tls/client.pem", dir);
	g_autofree char *key = g_strdup_printf("%s/tls/client-key.pem", dir);
	g_autofree char *other_ca = g_strdup_printf("%s/other/other-ca.pem", dir);
	g_autofree char *tools = g_path_get_dirname(cluster.script);
	g_autofree char *command = g_strdup_printf("'%s/test-certs.sh' ca '%s/other' other-ca >/dev/null",
						   tools, dir);
	assert_int_equal(system(command), 0);

	/* One attempt each (the pause after it is longer than the deadline), so
	 * the message is that attempt's. The CA, no certificate: etcd refuses. */
	const struct etcd_options once = { .timeout_ms = 1500, .backoff_min_ms = 4000,
					   .backoff_max_ms = 4000 };
	struct etcd_client *client = client_with(endpoint, &once);

	assert_int_equal(etcd_client_set_tls(client, &(struct etcd_tls_files){ ca, NULL, NULL },
					     why, sizeof(why)),
			 0);
	assert_int_equal(etcd_range_sync(client, &range, &result, &error), ETCD_UNAVAILABLE);
	printf("#   no client certificate: %s\n", error.message);
	assert_int_not_equal(etcd_put_sync(client, "/t/tls/a", "x", 1, 0, NULL, &error), ETCD_OK);
	etcd_client_free(client);

	/* Another CA: the client refuses etcd's certificate. */
	client = client_with(endpoint, &once);
	assert_int_equal(etcd_client_set_tls(client, &(struct etcd_tls_files){ other_ca, cert, key },
					     why, sizeof(why)),
			 0);
	assert_int_equal(etcd_range_sync(client, &range, &result, &error), ETCD_UNAVAILABLE);
	printf("#   etcd's certificate from a CA the client does not trust: %s\n", error.message);
	assert_non_null(strstr(error.message, "certificate"));
	etcd_client_free(client);

	/* The certificate: writes and reads. A reload that fails keeps the files. */
	client = client_on(endpoint, 5000);
	assert_int_equal(etcd_client_set_tls(client, &(struct etcd_tls_files){ ca, cert, key }, why,
					     sizeof(why)),
			 0);
	put(client, "/t/tls/a", "over TLS", NULL);
	assert_int_equal(etcd_client_set_tls(client,
					     &(struct etcd_tls_files){ ca, cert, "/nonexistent.pem" },
					     why, sizeof(why)),
			 -1);
	printf("#   a reload with a missing key: %s\n", why);
	assert_int_equal(etcd_client_set_tls(client, &(struct etcd_tls_files){ ca, cert, NULL }, why,
					     sizeof(why)),
			 -1);
	CHECK_OK(etcd_range_sync(client, &range, &result, &error), error);
	assert_int_equal(result->n_kvs, 1);
	assert_string_equal(result->kvs[0].value, "over TLS");
	etcd_range_result_free(result);
	etcd_client_free(client);

	/* A key open to others is no key. */
	assert_int_equal(chmod(key, 0644), 0);
	client = client_on(endpoint, 1500);
	assert_int_equal(etcd_client_set_tls(client, &(struct etcd_tls_files){ ca, cert, key }, why,
					     sizeof(why)),
			 -1);
	assert_non_null(strstr(why, "open to others"));
	etcd_client_free(client);

	g_autofree char *stop = g_strdup_printf("'%s' stop '%s'", cluster.script, dir);

	assert_int_equal(system(stop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_malformed),
		cmocka_unit_test(test_error_verdicts),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_client_arguments),
		cmocka_unit_test(test_all_endpoints_dead),
		cmocka_unit_test(test_silent_endpoint_times_out),
		cmocka_unit_test(test_put_range_delete),
		cmocka_unit_test(test_paged_range),
		cmocka_unit_test(test_call_cancel),
		cmocka_unit_test(test_txn),
		cmocka_unit_test(test_cas_race),
		cmocka_unit_test(test_watch_in_order),
		cmocka_unit_test(test_member_status),
		cmocka_unit_test(test_lease_keepalive),
		cmocka_unit_test(test_watch_resumes_after_member_killed),
		cmocka_unit_test(test_kv_failover_one_member_killed),
		cmocka_unit_test(test_frozen_member),
		cmocka_unit_test(test_watch_silent_endpoint_moves_on),
		cmocka_unit_test(test_watch_compacted),
		cmocka_unit_test(test_tls_client_certificates),
	};

	return cmocka_run_group_tests(tests, cluster_setup, cluster_teardown);
}
