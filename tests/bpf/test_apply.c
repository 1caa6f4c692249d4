// SPDX-License-Identifier: MIT
/* A fleet store's records applied to the lifecycle (lc_backend_apply,
 * lc_container_apply, lifecycle.h), against the real kernel maps and the
 * real XDP program. Two "routers" (two unpinned dataplanes, each with its
 * own lifecycle) apply the same records, as two tetherds of a fleet mirror
 * one store:
 *   - the identity is the store's: the slot, generation and secret applied
 *     are what each router stamps, and a token of one is honoured by the
 *     other, byte for byte;
 *   - same warm set, same pool table, entry for entry, on both, whatever the
 *     order the records arrived in;
 *   - applying a record again changes nothing and emits nothing;
 *   - state changes through records emit the events requests would;
 *   - a record that names another container at a slot, or another backend at
 *     an id, replaces it; forgetting is idempotent;
 *   - a draining record past its deadline is not installed;
 *   - invalid records change nothing. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <glib.h>

#include "check.h"
#include "dataplane/dataplane.h"
#include "lifecycle.h"
#include "pktgen.h"
#include "send.h"
#include "tether_xdp.skel.h"
#include "xdp_harness.h"

#define F1 PKT_TEST_FUNCTION_ID
#define F2 0x2002ULL
#define MS 1000000ull

struct router {
	struct dataplane dp;
	bool dp_open;
	struct lifecycle lc;
	bool lc_init;
	__u64 now;
	GPtrArray *events;
};

struct world {
	struct router a, b;
	__u32 tx0, lo;
};

static __u64 router_clock(void *ctx)
{
	return ((struct router *)ctx)->now;
}

static void on_event(void *ctx, const char *line)
{
	g_ptr_array_add(((struct router *)ctx)->events, g_strdup(line));
}

static int router_open(struct router *r)
{
	struct lifecycle_config config = {
		.heartbeat_ms = 60000,
		.drain_ms = 30000,
		.now_ns = router_clock,
		.clock_ctx = r,
		.observer = { .event = on_event, .ctx = r },
	};
	__u8 vip[16];

	r->events = g_ptr_array_new_with_free_func(g_free);
	if (dataplane_open(&r->dp, NULL))
		return -1;
	r->dp_open = true;
	pkt_v4mapped(vip, PKT_TEST_VIP4);
	if (service_add(&r->dp, vip, PKT_TEST_VIP_PORT, 1))
		return -1;
	r->now = monotonic_ns();
	if (lifecycle_init(&r->lc, &r->dp, &config))
		return -1;
	r->lc_init = true;
	return 0;
}

static void router_close(struct router *r)
{
	if (r->lc_init)
		lifecycle_free(&r->lc);
	if (r->dp_open)
		dataplane_close(&r->dp);
	if (r->events)
		g_ptr_array_free(r->events, TRUE);
}

static int setup(void **state)
{
	struct world *w = g_new0(struct world, 1);

	*state = w;
	w->tx0 = harness_ifindex("tx0");
	w->lo = harness_ifindex("lo");
	if (router_open(&w->a) || router_open(&w->b)) {
		print_error("setup: a router's dataplane or lifecycle did not open\n");
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	router_close(&w->a);
	router_close(&w->b);
	check_strings_free();
	g_free(w);
	return 0;
}

/* ---- records ---------------------------------------------------------------- */

static struct lc_backend_spec backend_spec(const char *name, __u32 id, enum backend_state state)
{
	struct lc_backend_spec spec = {
		.id = id, .name = name, .iface = "tx0", .heartbeat_ms = 3000, .state = state,
	};
	const __u8 mac[6] = { 0x02, 0x00, 0x00, 0x00, (__u8)id, 0x01 };

	CHECK(addr_parse(S("10.9.0.%u", id & 0xff), spec.addr) == 0, "addr_parse");
	memcpy(spec.mac, mac, 6);
	return spec;
}

static struct lc_container_spec container_spec(__u32 slot, __u32 generation, __u64 function_id,
					       const char *backend, enum container_state state)
{
	return (struct lc_container_spec){
		.slot = slot,
		.generation = generation,
		.secret = 0x5ec0000000000000ull ^ ((__u64)slot << 20) ^ generation,
		.function_id = function_id,
		.backend = backend,
		.name = "",
		.state = state,
	};
}

static void apply_backend(struct router *r, const struct lc_backend_spec *spec)
{
	CHECK_PROTO(&r->lc, lc_backend_apply(&r->lc, spec), PROTO_OK, "applying backend '%s'",
		    spec->name);
}

static void apply_container(struct router *r, const struct lc_container_spec *spec)
{
	CHECK_PROTO(&r->lc, lc_container_apply(&r->lc, spec), PROTO_OK,
		    "applying container %u (generation %u)", spec->slot, spec->generation);
}

static void flush(struct router *r)
{
	CHECK(lifecycle_flush_pools(&r->lc) == 0, "flushing pools: %s", lifecycle_error(&r->lc));
}

static struct tether_token token_of(const struct lc_container_spec *spec)
{
	return (struct tether_token){
		.slot = htonl(spec->slot),
		.generation = htonl(spec->generation),
		.secret = spec->secret,
	};
}

/* The live table of function_id on r, whole. */
static GArray *pool_table(struct router *r, __u64 function_id)
{
	GArray *table = g_array_new(FALSE, TRUE, sizeof(__u32));
	__u32 size = 0;

	CHECK(pool_read(&r->dp, function_id, NULL, 0, &size) == 0,
	      "function 0x%llx has a pool", (unsigned long long)function_id);
	g_array_set_size(table, size);
	CHECK(pool_read(&r->dp, function_id, (__u32 *)table->data, size, &size) == 0,
	      "reading the pool of function 0x%llx", (unsigned long long)function_id);
	return table;
}

static bool has_event(struct router *r, const char *part)
{
	for (guint i = 0; i < r->events->len; i++)
		if (strstr(g_ptr_array_index(r->events, i), part))
			return true;
	return false;
}

/* ---- tests ------------------------------------------------------------------ */

/* The store's slot, generation and secret are what the router stamps, and
 * the other router honours that token: TOKEN + STRICT reaches it. */
static void test_identity_is_the_stores(void **state)
{
	struct world *w = *state;
	struct lc_backend_spec vm = backend_spec("vm7", 7, BACKEND_UP);
	struct lc_container_spec c = container_spec(41, 0x00c0ffee, F1, "vm7", CONTAINER_WARM);
	struct tether_token token = token_of(&c);
	struct sent out;

	apply_backend(&w->a, &vm);
	apply_backend(&w->b, &vm);
	apply_container(&w->a, &c);
	apply_container(&w->b, &c);
	flush(&w->a);
	flush(&w->b);

	send_test_request(&w->a.dp, w->lo, F1, 0, 0, NULL, 40000, &out);
	CHECK(out.stamped, "router a forwards a flow request");
	CHECK_EQ(out.slot, 41, "router a stamps the store's slot");
	CHECK_EQ(out.generation, 0x00c0ffee, "router a stamps the store's generation");
	CHECK_EQ(out.secret, c.secret, "router a stamps the store's secret");

	send_test_request(&w->b.dp, w->lo, F1, TETHER_F_TOKEN | TETHER_F_STRICT, 0, &token, 40001,
			  &out);
	CHECK_EQ(out.verdict, XDP_REDIRECT, "router b forwards router a's token");
	CHECK_EQ(out.d.token_hit, 1, "router b counts a token hit");
	CHECK_EQ(out.slot, 41, "router b sends the token to its container");

	token.secret ^= 1;
	send_test_request(&w->b.dp, w->lo, F1, TETHER_F_TOKEN | TETHER_F_STRICT, 0, &token, 40002,
			  &out);
	CHECK_EQ(out.verdict, XDP_PASS, "a token one bit off goes to the slow path (STRICT)");
	CHECK_EQ(out.d.token_miss, 1, "and is counted a token miss");
}

/* Same warm set, same table, whatever order the records came in. */
static void test_same_members_same_table(void **state)
{
	struct world *w = *state;
	const char *names[] = { "vm1", "vm2", "vm3" };
	struct lc_container_spec specs[24];
	size_t n = sizeof(specs) / sizeof(specs[0]);

	for (__u32 i = 0; i < 3; i++) {
		struct lc_backend_spec vm = backend_spec(names[i], 10 + i, BACKEND_UP);

		apply_backend(&w->a, &vm);
		apply_backend(&w->b, &vm);
	}
	for (size_t i = 0; i < n; i++)
		specs[i] = container_spec(100 + 7 * i, 1000 + i, F2, names[i % 3], CONTAINER_WARM);
	for (size_t i = 0; i < n; i++)
		apply_container(&w->a, &specs[i]);
	for (size_t i = n; i-- > 0;) /* the other order */
		apply_container(&w->b, &specs[i]);
	flush(&w->a);
	flush(&w->b);

	GArray *ta = pool_table(&w->a, F2), *tb = pool_table(&w->b, F2);

	CHECK_EQ(ta->len, tb->len, "table sizes of the two routers");
	CHECK(memcmp(ta->data, tb->data, ta->len * sizeof(__u32)) == 0,
	      "the two routers' tables of function 0x%llx differ", (unsigned long long)F2);
	g_array_free(ta, TRUE);
	g_array_free(tb, TRUE);
}

/* A record applied again: no event, no change. */
static void test_applying_twice_changes_nothing(void **state)
{
	struct world *w = *state;
	struct lc_backend_spec vm = backend_spec("vm1", 3, BACKEND_UP);
	struct lc_container_spec c = container_spec(5, 77, F1, "vm1", CONTAINER_STARTING);
	struct container_record before, after;

	apply_backend(&w->a, &vm);
	apply_container(&w->a, &c);
	guint events = w->a.events->len;

	CHECK(container_get(&w->a.dp, 5, &before) == 0, "slot 5 is installed");
	apply_backend(&w->a, &vm);
	apply_container(&w->a, &c);
	CHECK(container_get(&w->a.dp, 5, &after) == 0, "slot 5 is still installed");
	CHECK(memcmp(&before, &after, sizeof(before)) == 0, "slot 5 changed on a second apply");
	CHECK_EQ(w->a.events->len, events, "events emitted by a second apply");
	CHECK_EQ(w->a.lc.backends[3].containers, 1, "containers counted on vm1");
}

/* starting -> warm -> draining through records: the pool follows, the
 * events are the requests' ones. */
static void test_transitions_emit_events(void **state)
{
	struct world *w = *state;
	struct lc_backend_spec vm = backend_spec("vm1", 3, BACKEND_UP);
	struct lc_container_spec c = container_spec(9, 1, F1, "vm1", CONTAINER_STARTING);
	__u32 size;

	apply_backend(&w->a, &vm);
	apply_container(&w->a, &c);
	flush(&w->a);
	CHECK(has_event(&w->a, "event=container_added container=9"), "container_added emitted");
	CHECK(pool_read(&w->a.dp, F1, NULL, 0, &size) == -ENOENT, "no pool while starting");

	c.state = CONTAINER_WARM;
	apply_container(&w->a, &c);
	flush(&w->a);
	CHECK(has_event(&w->a, "event=container_up container=9"), "container_up emitted");
	CHECK(pool_read(&w->a.dp, F1, NULL, 0, &size) == 0, "a pool once warm");

	c.state = CONTAINER_DRAINING;
	c.drain_deadline_ns = w->a.now + 5000 * MS;
	apply_container(&w->a, &c);
	flush(&w->a);
	CHECK(has_event(&w->a, "event=container_draining container=9"),
	      "container_draining emitted");
	CHECK(pool_read(&w->a.dp, F1, NULL, 0, &size) == -ENOENT, "no pool while draining");
	CHECK_EQ(w->a.lc.containers[9].drain_deadline_ns, c.drain_deadline_ns,
		 "the record's deadline is the container's");
}

/* Another generation at a slot replaces the container there; another name at
 * a backend id replaces that backend; forgetting twice is no error. */
static void test_records_replace_what_they_contradict(void **state)
{
	struct world *w = *state;
	struct lc_backend_spec vm1 = backend_spec("vm1", 3, BACKEND_UP);
	struct lc_backend_spec other = backend_spec("vm9", 3, BACKEND_UP);
	struct lc_container_spec old = container_spec(12, 1, F1, "vm1", CONTAINER_WARM);
	struct lc_container_spec new = container_spec(12, 2, F1, "vm1", CONTAINER_WARM);
	struct container_record record;

	apply_backend(&w->a, &vm1);
	apply_container(&w->a, &old);
	apply_container(&w->a, &new);
	CHECK(has_event(&w->a, "event=container_gone container=12"),
	      "the old container at slot 12 is gone");
	CHECK(container_get(&w->a.dp, 12, &record) == 0, "slot 12 holds a container");
	CHECK_EQ(record.generation, 2, "slot 12's generation is the new record's");
	CHECK_EQ(record.secret, new.secret, "slot 12's secret is the new record's");

	apply_backend(&w->a, &other);
	CHECK(lc_backend_find(&w->a.lc, "vm1") == NULL, "vm1 is forgotten");
	CHECK(lc_backend_find(&w->a.lc, "vm9") != NULL, "vm9 holds id 3");
	CHECK(container_get(&w->a.dp, 12, &record) == -ENOENT,
	      "vm1's container went with vm1");

	CHECK_PROTO(&w->a.lc, lc_backend_forget(&w->a.lc, "vm9"), PROTO_OK, "forgetting vm9");
	CHECK_PROTO(&w->a.lc, lc_backend_forget(&w->a.lc, "vm9"), PROTO_OK,
		    "forgetting vm9 again");
	CHECK_PROTO(&w->a.lc, lc_container_forget(&w->a.lc, 12, "deleted"), PROTO_OK,
		    "forgetting a free slot");
}

/* A backend down in the store leaves every pool; up again, it is back. */
static void test_backend_state_from_the_store(void **state)
{
	struct world *w = *state;
	struct lc_backend_spec vm = backend_spec("vm1", 3, BACKEND_UP);
	struct lc_container_spec c = container_spec(4, 1, F1, "vm1", CONTAINER_WARM);
	__u32 size;

	apply_backend(&w->a, &vm);
	apply_container(&w->a, &c);
	flush(&w->a);
	CHECK_EQ(w->a.lc.backends[3].record.heartbeat_expiry_ns, 0,
		 "no local heartbeat deadline for a store's backend");
	vm.state = BACKEND_DOWN;
	apply_backend(&w->a, &vm);
	flush(&w->a);
	CHECK(has_event(&w->a, "event=backend_down backend=vm1"), "backend_down emitted");
	CHECK(pool_read(&w->a.dp, F1, NULL, 0, &size) == -ENOENT, "no pool with vm1 down");
	vm.state = BACKEND_UP;
	apply_backend(&w->a, &vm);
	flush(&w->a);
	CHECK(pool_read(&w->a.dp, F1, NULL, 0, &size) == 0, "the pool is back with vm1 up");
}

/* A backend draining in the store drains its containers until its deadline,
 * also those whose records still say warm or arrive later. */
static void test_draining_backend_drains_its_containers(void **state)
{
	struct world *w = *state;
	struct lc_backend_spec vm = backend_spec("vm1", 3, BACKEND_UP);
	struct lc_container_spec early = container_spec(20, 1, F1, "vm1", CONTAINER_WARM);
	struct lc_container_spec late = container_spec(21, 1, F1, "vm1", CONTAINER_WARM);

	apply_backend(&w->a, &vm);
	apply_container(&w->a, &early);
	vm.state = BACKEND_DRAINING;
	vm.drain_deadline_ns = w->a.now + 9000 * MS;
	apply_backend(&w->a, &vm);
	apply_container(&w->a, &late);
	apply_container(&w->a, &early); /* its record again, still warm */
	flush(&w->a);
	for (__u32 slot = 20; slot <= 21; slot++) {
		CHECK_EQ(w->a.lc.containers[slot].state, CONTAINER_DRAINING,
			 "container %u on the draining backend", slot);
		CHECK_EQ(w->a.lc.containers[slot].drain_deadline_ns, vm.drain_deadline_ns,
			 "container %u drains until the backend's deadline", slot);
	}
	__u32 size;

	CHECK(pool_read(&w->a.dp, F1, NULL, 0, &size) == -ENOENT, "no pool on a draining backend");
}

/* A draining record past its deadline is gone already; bad records change
 * nothing. */
static void test_expired_and_invalid_records(void **state)
{
	struct world *w = *state;
	struct lc_backend_spec vm = backend_spec("vm1", 3, BACKEND_UP);
	struct lc_container_spec c = container_spec(6, 1, F1, "vm1", CONTAINER_DRAINING);
	struct container_record record;

	apply_backend(&w->a, &vm);
	c.drain_deadline_ns = w->a.now - 1;
	apply_container(&w->a, &c);
	CHECK(container_get(&w->a.dp, 6, &record) == -ENOENT,
	      "a draining container past its deadline is not installed");

	struct lc_container_spec bad = container_spec(7, 1, F1, "vm1", CONTAINER_WARM);

	bad.secret = 0;
	CHECK_PROTO(&w->a.lc, lc_container_apply(&w->a.lc, &bad), PROTO_BAD_ARGUMENT,
		    "a record without a secret");
	bad = container_spec(7, 1, F1, "no-such-vm", CONTAINER_WARM);
	CHECK_PROTO(&w->a.lc, lc_container_apply(&w->a.lc, &bad), PROTO_NOT_FOUND,
		    "a record on a backend not known");
	CHECK(container_get(&w->a.dp, 7, &record) == -ENOENT, "slot 7 stays free");

	struct lc_backend_spec nowhere = backend_spec("vm2", 4, BACKEND_UP);

	nowhere.iface = "no-such-if0";
	CHECK_PROTO(&w->a.lc, lc_backend_apply(&w->a.lc, &nowhere), PROTO_BAD_ARGUMENT,
		    "a backend behind an interface this host lacks");
	CHECK(lc_backend_find(&w->a.lc, "vm2") == NULL, "vm2 is not added");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity_is_the_stores, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_members_same_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_applying_twice_changes_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_transitions_emit_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_replace_what_they_contradict, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_backend_state_from_the_store, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_draining_backend_drains_its_containers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expired_and_invalid_records, setup, teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	harness_enter_private_netns();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
