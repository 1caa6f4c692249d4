// SPDX-License-Identifier: MIT
/* Endpoints as operators write them (user/lib/core/addr.c): tetherd's --vip,
 * --completion, --tcp-listen and --metrics-listen and the agent's --vip and
 * tcp: endpoints all read "ADDR:PORT" through endpoint_parse. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

static void test_ipv4(void **state)
{
	struct sockaddr_storage address;
	__u8 addr[16];
	__u16 port = 0;

	(void)state;
	assert_int_equal(endpoint_parse("198.51.100.7:7777", addr, &port), 0);
	assert_int_equal(port, 7777);
	assert_true(addr_is_v4mapped(addr));
	assert_int_equal(endpoint_sockaddr(addr, port, &address), sizeof(struct sockaddr_in));

	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&address;

	assert_int_equal(v4->sin_family, AF_INET);
	assert_int_equal(ntohs(v4->sin_port), 7777);
	assert_int_equal(ntohl(v4->sin_addr.s_addr), 0xc6336407);
	assert_int_equal(endpoint_parse("0.0.0.0:1", addr, &port), 0);
	assert_int_equal(port, 1);
	assert_int_equal(endpoint_parse("127.0.0.1:65535", addr, &port), 0);
	assert_int_equal(port, 65535);
}

static void test_ipv6(void **state)
{
	static const __u8 expected[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7 };
	struct sockaddr_storage address;
	__u8 addr[16];
	__u16 port = 0;

	(void)state;
	assert_int_equal(endpoint_parse("[2001:db8::7]:9417", addr, &port), 0);
	assert_int_equal(port, 9417);
	assert_memory_equal(addr, expected, 16);
	assert_int_equal(endpoint_sockaddr(addr, port, &address), sizeof(struct sockaddr_in6));

	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&address;

	assert_int_equal(v6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(v6->sin6_port), 9417);
	assert_memory_equal(&v6->sin6_addr, expected, 16);
	assert_int_equal(endpoint_parse("[::]:80", addr, &port), 0);
	assert_false(addr_is_v4mapped(addr));
}

/* Refused whole, and what was given is left as it was. */
static void test_refused(void **state)
{
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:9x",
		"127.0.0.1: 80", "127.0.0.1:+80", "127.0.0.1:-1", "127.0.0.1:0x50",
		"127.0.0.1:99999999999999999999", "::1:9417", "2001:db8::1:7777",
		"[127.0.0.1]:9417", "[::1:9417", "[::1]9417", "[]:80", "[::1]:", "localhost:9417",
		":9417", "", " 127.0.0.1:80", "[2001:db8::1]:7777:",
		"[0000:0000:0000:0000:0000:0000:0000:0000:0000]:80",
	};
	__u8 addr[16];
	__u16 port;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(addr, 0xaa, sizeof(addr));
		port = 0xaaaa;
		if (endpoint_parse(bad[i], addr, &port) != -EINVAL)
			fail_msg("'%s' was taken as an endpoint", bad[i]);
		if (port != 0xaaaa)
			fail_msg("'%s', refused, changed the port to %u", bad[i], port);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
