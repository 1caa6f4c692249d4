// SPDX-License-Identifier: MIT
/* The keys and records of a fleet's store (user/tetherd/store_records.h):
 * every key kind built and read back, every record encoded and decoded to
 * the same fields, the exact text of one of each (docs/store.md shows them),
 * every field of a bad record refused with a reason that names it, keys of
 * no known kind or with bad names refused, and deadlines carried across
 * clocks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <endian.h>

#include "core/core.h"
#include "store_records.h"
#include "tether/wire.h"

#define PREFIX "/tether/edge-1/"

static void test_prefix(void **state)
{
	char prefix[64];

	(void)state;
	assert_int_equal(store_prefix("edge-1", prefix, sizeof(prefix)), 0);
	assert_string_equal(prefix, PREFIX);
	assert_int_equal(store_prefix("", prefix, sizeof(prefix)), -EINVAL);
	assert_int_equal(store_prefix("a/b", prefix, sizeof(prefix)), -EINVAL);
	assert_int_equal(store_prefix("0123456789012345678901234567890123", prefix,
				      sizeof(prefix)),
			 -EINVAL);
}

static void expect_key(const char *key, enum store_kind kind, const char *name,
		       const char *container, __u32 number)
{
	struct store_key parsed;

	assert_true(store_key_parse(PREFIX, key, strlen(key), &parsed));
	assert_int_equal(parsed.kind, kind);
	assert_string_equal(parsed.name, name);
	assert_string_equal(parsed.container, container);
	assert_int_equal(parsed.number, number);
}

static void test_keys_round_trip(void **state)
{
	char key[STORE_KEY_MAX];

	(void)state;
	store_key_backend(PREFIX, "vm1", key);
	assert_string_equal(key, PREFIX "backends/vm1");
	expect_key(key, STORE_BACKEND, "vm1", "", 0);
	store_key_backend_id(PREFIX, 4095, key);
	expect_key(key, STORE_BACKEND_ID, "", "", 4095);
	store_key_alive(PREFIX, "vm-2.a", key);
	expect_key(key, STORE_ALIVE, "vm-2.a", "", 0);
	store_key_container(PREFIX, 1048575, key);
	assert_string_equal(key, PREFIX "containers/1048575");
	expect_key(key, STORE_CONTAINER, "", "", 1048575);
	store_key_name(PREFIX, "vm1", "c_7", key);
	expect_key(key, STORE_NAME, "vm1", "c_7", 0);
	store_key_router(PREFIX, "r3", key);
	expect_key(key, STORE_ROUTER, "r3", "", 0);
	store_key_state(PREFIX, key);
	expect_key(key, STORE_STATE, "", "", 0);
	struct store_key parsed;

	store_key_capacity(PREFIX, 18446744073709551615ull, key);
	assert_true(store_key_parse(PREFIX, key, strlen(key), &parsed));
	assert_int_equal(parsed.kind, STORE_CAPACITY);
	assert_true(parsed.function_id == 18446744073709551615ull);
	store_key_names_of(PREFIX, "vm1", key);
	assert_string_equal(key, PREFIX "names/vm1/");
}

static void test_bad_keys(void **state)
{
	static const char *const bad[] = {
		PREFIX "containers/1048576", /* past the last slot */
		PREFIX "containers/007",     /* leading zero */
		PREFIX "containers/-1",
		PREFIX "containers/",
		PREFIX "backend_ids/0", /* id 0 names no backend */
		PREFIX "backend_ids/4096",
		PREFIX "backends/a b",
		PREFIX "backends/0123456789012345678901234567890123",
		PREFIX "names/vm1",
		PREFIX "names/vm1/",
		PREFIX "other/x",
		PREFIX "states",
		PREFIX "capacity/0",
		PREFIX "capacity/18446744073709551616",
		PREFIX "capacity/07",
		"/tether/other/backends/vm1",
	};
	struct store_key parsed;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (store_key_parse(PREFIX, bad[i], strlen(bad[i]), &parsed))
			fail_msg("key '%s' was read as kind %d", bad[i], parsed.kind);
}

/* Every byte set, padding included: the decoders memset what they fill, and
 * the tests compare whole structs. */
static struct store_backend sample_backend(void)
{
	struct store_backend b;
	const __u8 mac[6] = { 0x02, 0, 0, 0, 0x01, 0xab };

	memset(&b, 0, sizeof(b));
	b.id = 17;
	memcpy(b.mac, mac, 6);
	snprintf(b.iface, sizeof(b.iface), "fab0");
	b.vlan = 100;
	b.heartbeat_ms = 3000;
	b.state = BACKEND_DRAINING;
	b.drain_deadline_unix_ms = 1796000000123ull;
	assert_int_equal(addr_parse("203.0.113.2", b.addr), 0);
	return b;
}

static void test_backend_round_trip(void **state)
{
	struct store_backend b = sample_backend(), back;
	char value[STORE_VALUE_MAX], why[256] = "";

	(void)state;
	store_backend_encode(&b, value);
	assert_string_equal(value, "id=17 addr=203.0.113.2 mac=02:00:00:00:01:ab iface=fab0 "
				   "vlan=100 heartbeat_ms=3000 state=draining "
				   "drain_deadline_unix_ms=1796000000123");
	assert_int_equal(store_backend_decode(value, strlen(value), &back, why, sizeof(why)), 0);
	assert_memory_equal(&b, &back, sizeof(b));
}

/* A routed backend: encap and vni written, iface empty (any) left out; an
 * L2 record (above) carries neither, as before. */
static void test_routed_backend_round_trip(void **state)
{
	struct store_backend b = sample_backend(), back;
	char value[STORE_VALUE_MAX], why[256] = "";

	(void)state;
	memset(b.iface, 0, sizeof(b.iface));
	b.vlan = 0;
	b.encap = BACKEND_VXLAN;
	b.vni = 4242;
	store_backend_encode(&b, value);
	assert_string_equal(value, "id=17 addr=203.0.113.2 mac=02:00:00:00:01:ab vlan=0 "
				   "encap=vxlan vni=4242 heartbeat_ms=3000 state=draining "
				   "drain_deadline_unix_ms=1796000000123");
	assert_int_equal(store_backend_decode(value, strlen(value), &back, why, sizeof(why)), 0);
	assert_memory_equal(&b, &back, sizeof(b));
	/* An L2 record still needs its interface. */
	const char *l2 = "id=17 addr=203.0.113.2 mac=02:00:00:00:01:ab vlan=0 heartbeat_ms=3000 "
			 "state=up drain_deadline_unix_ms=0";

	assert_int_not_equal(store_backend_decode(l2, strlen(l2), &back, why, sizeof(why)), 0);
}

static struct store_container sample_container(void)
{
	struct store_container c;

	memset(&c, 0, sizeof(c));
	c.function_id = 0x100;
	snprintf(c.backend, sizeof(c.backend), "vm1");
	c.backend_revision = 42;
	snprintf(c.name, sizeof(c.name), "a");
	c.state = CONTAINER_WARM;
	c.secret = htobe64(0x3c7bc9066b46f8f5ull);
	return c;
}

static void test_container_round_trip(void **state)
{
	struct store_container c = sample_container(), back;
	char value[STORE_VALUE_MAX], why[256] = "";

	(void)state;
	store_container_encode(&c, value);
	assert_string_equal(value, "function=256 backend=vm1 backend_revision=42 name=a state=warm "
				   "secret=3c7bc9066b46f8f5 drain_deadline_unix_ms=0");
	assert_int_equal(store_container_decode(value, strlen(value), &back, why, sizeof(why)), 0);
	assert_memory_equal(&c, &back, sizeof(c));
	/* secret= is the token's last 8 bytes as they lie on the wire. */
	struct tether_token token = { .secret = c.secret };
	char hex[17];

	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", ((__u8 *)&token.secret)[i]);
	assert_non_null(strstr(value, hex));
	c.name[0] = '\0';
	c.state = CONTAINER_STARTING;
	store_container_encode(&c, value);
	assert_null(strstr(value, "name="));
	assert_int_equal(store_container_decode(value, strlen(value), &back, why, sizeof(why)), 0);
	assert_memory_equal(&c, &back, sizeof(c));
}

/* A container's own limit is written only when set (earlier routers read
 * the rest as before); functions/F holds a function's settings. */
static void test_limits_round_trip(void **state)
{
	struct store_container c = sample_container(), back;
	struct store_function f = { .concurrency = 3 }, f_back;
	char value[STORE_VALUE_MAX], key[STORE_KEY_MAX], why[256] = "";
	struct store_key parsed;

	(void)state;
	c.concurrency = 2;
	store_container_encode(&c, value);
	assert_non_null(strstr(value, " concurrency=2"));
	assert_int_equal(store_container_decode(value, strlen(value), &back, why, sizeof(why)), 0);
	assert_memory_equal(&c, &back, sizeof(c));
	store_function_encode(&f, value);
	assert_string_equal(value, "concurrency=3");
	assert_int_equal(store_function_decode(value, strlen(value), &f_back, why, sizeof(why)), 0);
	assert_int_equal(f_back.concurrency, 3);
	assert_int_equal(store_function_decode("concurrency=x", 13, &f_back, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(store_function_decode("limit=1", 7, &f_back, why, sizeof(why)), -EINVAL);
	store_key_function("/tether/edge/", 0x2a, key);
	assert_string_equal(key, "/tether/edge/functions/42");
	assert_true(store_key_parse("/tether/edge/", key, strlen(key), &parsed));
	assert_int_equal(parsed.kind, STORE_FUNCTION);
	assert_int_equal(parsed.function_id, 42);
	assert_false(store_key_parse("/tether/edge/", "/tether/edge/functions/0", 24, &parsed));
}

/* Each bad record is refused, and the reason names what is wrong. */
static void test_bad_records(void **state)
{
	static const struct {
		bool container;
		const char *value, *reason;
	} bad[] = {
		{ false, "id=0 addr=10.0.0.1 mac=02:00:00:00:00:01 iface=e heartbeat_ms=1 state=up "
			 "drain_deadline_unix_ms=0", "backend id 0" },
		{ false, "id=1 addr=10.0.0.1 mac=02:00:00:00:00:01 iface=e heartbeat_ms=1 state=gone "
			 "drain_deadline_unix_ms=0", "state 'gone'" },
		{ false, "id=1 addr=nowhere mac=02:00:00:00:00:01 iface=e heartbeat_ms=1 state=up "
			 "drain_deadline_unix_ms=0", "addr" },
		{ false, "id=1 addr=10.0.0.1 mac=02:00:00:00:00:01 iface=e heartbeat_ms=1 state=up",
		  "drain_deadline_unix_ms" },
		{ false, "id=1 addr=10.0.0.1 mac=02:00:00:00:00:01 iface=e heartbeat_ms=1 state=up "
			 "drain_deadline_unix_ms=0 extra=1", "extra" },
		{ true, "function=0 backend=vm1 backend_revision=1 state=warm secret=0000000000000001 "
			"drain_deadline_unix_ms=0", "function" },
		{ true, "function=1 backend=vm1 backend_revision=1 state=warm secret=0000000000000000 "
			"drain_deadline_unix_ms=0", "secret" },
		{ true, "function=1 backend=vm1 backend_revision=1 state=warm secret=00000000000000GG "
			"drain_deadline_unix_ms=0", "secret" },
		{ true, "function=1 backend=vm1 backend_revision=1 state=warm "
			"drain_deadline_unix_ms=0", "secret" },
		{ true, "function=1 backend=vm1 backend_revision=1 state=free secret=0000000000000001 "
			"drain_deadline_unix_ms=0", "state 'free'" },
		{ true, "function=1 backend=vm1 backend_revision=1 state=warm secret=0000000000000001 "
			"drain_deadline_unix_ms=0 backend=vm2", "backend" },
		{ true, "", "" },
		{ true, "not a record", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char why[256] = "";
		int err;

		if (bad[i].container) {
			struct store_container c;

			err = store_container_decode(bad[i].value, strlen(bad[i].value), &c, why,
						     sizeof(why));
		} else {
			struct store_backend b;

			err = store_backend_decode(bad[i].value, strlen(bad[i].value), &b, why,
						   sizeof(why));
		}
		if (err != -EINVAL)
			fail_msg("record '%s' was accepted", bad[i].value);
		if (!why[0] || !strstr(why, bad[i].reason))
			fail_msg("record '%s': reason '%s' does not name '%s'", bad[i].value, why,
				 bad[i].reason);
	}
}

static void test_router_round_trip(void **state)
{
	struct store_router r, back;

	memset(&r, 0, sizeof(r));
	r.applied_revision = 991;
	r.updated_unix_ms = 1796000000000ull;
	snprintf(r.store_endpoint, sizeof(r.store_endpoint), "http://127.0.0.1:2379");
	char value[STORE_VALUE_MAX], why[256] = "";

	(void)state;
	store_router_encode(&r, value);
	assert_int_equal(store_router_decode(value, strlen(value), &back, why, sizeof(why)), 0);
	assert_memory_equal(&r, &back, sizeof(r));
}

static void test_policy_round_trip(void **state)
{
	struct allowed_functions a, back;
	char value[STORE_VALUE_MAX], why[256] = "";

	(void)state;
	memset(&a, 0, sizeof(a));
	a.count = 2;
	a.ranges[0] = (struct function_range){ 7, 7 };
	a.ranges[1] = (struct function_range){ 256, 511 };
	store_policy_encode(&a, value);
	assert_string_equal(value, "functions=7,256-511");
	assert_int_equal(store_policy_decode(value, strlen(value), &back, why, sizeof(why)), 0);
	assert_memory_equal(&a, &back, sizeof(a));
	a.count = 0;
	store_policy_encode(&a, value);
	assert_string_equal(value, "functions=none");
	assert_int_equal(store_policy_decode(value, strlen(value), &back, why, sizeof(why)), 0);
	assert_int_equal(back.count, 0);
	assert_int_equal(store_policy_decode("functions=any", 13, &back, why, sizeof(why)), -EINVAL);
	assert_int_equal(store_policy_decode("functions=0", 11, &back, why, sizeof(why)), -EINVAL);
}

static void test_deadlines_cross_clocks(void **state)
{
	__u64 mono = 5000000000000ull, unix_ms = 1796000000000ull;

	(void)state;
	assert_int_equal(store_deadline_to_monotonic(0, mono, unix_ms), 0);
	assert_int_equal(store_deadline_to_monotonic(unix_ms + 1500, mono, unix_ms),
			 mono + 1500000000ull);
	assert_true(store_deadline_to_monotonic(unix_ms - 10, mono, unix_ms) < mono);
	assert_int_equal(store_deadline_from_monotonic(mono + 1500000000ull, mono, unix_ms),
			 unix_ms + 1500);
	assert_int_equal(store_deadline_from_monotonic(0, mono, unix_ms), 0);
	assert_int_equal(store_generation(0x100000007ll), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_keys_round_trip),
		cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_backend_round_trip),
		cmocka_unit_test(test_routed_backend_round_trip),
		cmocka_unit_test(test_container_round_trip),
		cmocka_unit_test(test_limits_round_trip),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_router_round_trip),
		cmocka_unit_test(test_policy_round_trip),
		cmocka_unit_test(test_deadlines_cross_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
