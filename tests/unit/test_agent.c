// SPDX-License-Identifier: MIT
/* Unit tests of tether-agent's pure parts (user/agent/): option parsing
 * (--tetherd lists included), the rotation between several tetherds, the
 * token check, the exact bytes of replies, the handlers' memory across
 * calls, the container channel's messages, and reading tetherd's events,
 * container and backend records. Then, when build/tether-agent exists and we
 * are root, the agent itself against fake tetherds (Unix sockets answering
 * canned lines) in a private network namespace: the requests it sends on
 * start-up, on capacity_needed and on SIGTERM, stamped requests served by
 * real container processes, taking over a backend that exists, replacing one
 * registered differently, and moving from one tetherd to the next when the
 * first dies, answers `unavailable` or falls silent. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <glib.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "frame.h"
#include "handlers.h"
#include "options.h"
#include "records.h"
#include "rotation.h"
#include "wire.h"
#include "tether_version.h"
#include "tether/siphash.h"

#define MESSAGE_SIZE 512

/* ---- Options ---------------------------------------------------------- */

/* Parses a NULL-terminated list of words after "tether-agent". */
static int parse_words(struct agent_options *o, char *message, const char *first, ...)
{
	char *argv[64] = { "tether-agent" };
	int argc = 1;
	va_list ap;

	va_start(ap, first);
	for (const char *word = first; word && argc < 63; word = va_arg(ap, const char *))
		argv[argc++] = (char *)word;
	va_end(ap);
	argv[argc] = NULL;
	message[0] = '\0';
	return agent_options_parse(argc, argv, o, message, MESSAGE_SIZE);
}

#define REQUIRED "--name", "vm1", "--addr", "10.0.0.2", "--mac", "02:AA:bb:00:00:01", \
		 "--router-iface", "veth-r1", "--vip", "10.9.9.9:7000"

static void check_refused(int result, const char *message, const char *needle)
{
	if (result != -1 || !strstr(message, needle))
		fail_msg("got %d \"%s\", expected -1 naming \"%s\"", result, message, needle);
}

static void test_options_full(void **state)
{
	struct agent_options o;
	char message[MESSAGE_SIZE];

	(void)state;
	assert_int_equal(parse_words(&o, message, REQUIRED, "--vip", "[2001:db8::1]:7001",
				     "--tetherd", "tcp:192.0.2.1:7070", "--secret-file", "/etc/s",
				     "--tcp-plain", "--function", "42:2", "--function", "0x2a0:0", "--handler",
				     "echo", "--cold-start-ms", "50", "--heartbeat-ms", "600",
				     "--drain-ms", "0", "--capacity", "--max-containers", "8",
				     "--vlan", "4094", NULL),
			 0);
	assert_string_equal(o.name, "vm1");
	assert_string_equal(o.addr, "10.0.0.2");
	assert_string_equal(o.mac, "02:aa:bb:00:00:01"); /* written back lowercase */
	assert_string_equal(o.router_iface, "veth-r1");
	assert_int_equal(o.vlan, 4094);
	assert_int_equal(o.vip_count, 2);
	assert_int_equal(o.vips[0].port, 7000);
	assert_int_equal(o.vips[0].addr[10], 0xff); /* v4-mapped */
	assert_int_equal(o.vips[0].addr[12], 10);
	assert_int_equal(o.vips[1].port, 7001);
	assert_int_equal(o.vips[1].addr[0], 0x20);
	assert_true(o.tetherds[0].tcp);
	assert_int_equal(o.tetherds[0].address.ss_family, AF_INET);
	assert_string_equal(o.tetherds[0].text, "tcp:192.0.2.1:7070");
	assert_string_equal(o.secret_file, "/etc/s");
	assert_int_equal(o.function_count, 2);
	assert_int_equal(o.functions[0].function_id, 42);
	assert_int_equal(o.functions[0].count, 2);
	assert_int_equal(o.functions[1].function_id, 0x2a0);
	assert_int_equal(o.functions[1].count, 0);
	assert_string_equal(o.handler, "echo");
	assert_int_equal(o.cold_start_ms, 50);
	assert_int_equal(o.heartbeat_ms, 600);
	assert_int_equal(o.drain_ms, 0);
	assert_int_equal(o.max_containers, 8);
	assert_true(o.capacity);
	assert_false(o.capacity_any);
	assert_true(agent_serves_on_demand(&o, 42));
	assert_true(agent_serves_on_demand(&o, 0x2a0));
	assert_false(agent_serves_on_demand(&o, 43));
}

static void test_options_defaults(void **state)
{
	struct agent_options o;
	char message[MESSAGE_SIZE];

	(void)state;
	assert_int_equal(parse_words(&o, message, REQUIRED, NULL), 0);
	assert_int_equal(o.tetherd_count, 1);
	assert_false(o.tetherds[0].tcp);
	assert_string_equal(o.tetherds[0].path, "/run/tether/tetherd.sock");
	assert_string_equal(o.tetherds[0].text, "unix:/run/tether/tetherd.sock");
	assert_string_equal(o.handler, "counter");
	assert_int_equal(o.cold_start_ms, 300);
	assert_int_equal(o.heartbeat_ms, 1000);
	assert_int_equal(o.function_count, 0);
	assert_int_equal(o.vlan, 0); /* untagged */
	assert_false(o.capacity);
	assert_false(agent_serves_on_demand(&o, 42));

	/* --capacity-any serves every function on demand. */
	assert_int_equal(parse_words(&o, message, REQUIRED, "--capacity-any", NULL), 0);
	assert_true(o.capacity);
	assert_true(agent_serves_on_demand(&o, 12345));

	assert_int_equal(parse_words(&o, message, "--help", NULL), 1);
	assert_non_null(strstr(agent_options_usage(), "--router-iface"));
	/* --version: main prints agent_version(); no other option is needed. */
	assert_int_equal(parse_words(&o, message, "--version", NULL), 2);
	assert_string_equal(agent_version(), "tether-agent " TETHER_RELEASE_VERSION "\n");
	assert_non_null(strstr(agent_options_usage(), "--version"));
	assert_non_null(strstr(agent_options_usage(), "counter, echo"));
}

static void test_options_refused(void **state)
{
	struct agent_options o;
	char m[MESSAGE_SIZE];

	(void)state;
	check_refused(parse_words(&o, m, "--addr", "10.0.0.2", NULL), m, "--name is required");
	check_refused(parse_words(&o, m, "--name", "vm1", "--mac", "02:00:00:00:00:01",
				  "--router-iface", "r1", "--vip", "10.9.9.9:1", NULL),
		      m, "--addr is required");
	check_refused(parse_words(&o, m, "--name", "vm1", "--addr", "10.0.0.2",
				  "--mac", "02:00:00:00:00:01", "--router-iface", "r1", NULL),
		      m, "--vip");
	check_refused(parse_words(&o, m, REQUIRED, "--name", "no/slash", NULL), m, "--name");
	check_refused(parse_words(&o, m, REQUIRED, "--addr", "10.0.0.256", NULL), m, "--addr");
	check_refused(parse_words(&o, m, REQUIRED, "--mac", "02:00:00:00:00", NULL), m, "--mac");
	check_refused(parse_words(&o, m, REQUIRED, "--mac", "02:00:00:00:00:0g", NULL), m,
		      "--mac");
	check_refused(parse_words(&o, m, REQUIRED, "--router-iface", "a-name-too-long-1", NULL),
		      m, "--router-iface");
	check_refused(parse_words(&o, m, REQUIRED, "--vip", "10.9.9.9", NULL), m, "--vip");
	check_refused(parse_words(&o, m, REQUIRED, "--vip", "10.9.9.9:0", NULL), m, "--vip");
	check_refused(parse_words(&o, m, REQUIRED, "--vip", "2001:db8::1:7000", NULL), m,
		      "[ADDR]:PORT");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "tcp:192.0.2.1:7070", "--tcp-plain",
				  NULL),
		      m, "needs --secret-file");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "relative/path", NULL), m,
		      "--tetherd");
	check_refused(parse_words(&o, m, REQUIRED, "--function", "0:1", NULL), m, "--function");
	check_refused(parse_words(&o, m, REQUIRED, "--function", "42", NULL), m, "--function");
	check_refused(parse_words(&o, m, REQUIRED, "--function", "42:-1", NULL), m,
		      "--function");
	check_refused(parse_words(&o, m, REQUIRED, "--function", "42:1", "--function", "42:2",
				  NULL),
		      m, "twice");
	check_refused(parse_words(&o, m, REQUIRED, "--handler", "nope", NULL), m,
		      "known: counter, echo");
	check_refused(parse_words(&o, m, REQUIRED, "--heartbeat-ms", "10", NULL), m,
		      "at least 30");
	check_refused(parse_words(&o, m, REQUIRED, "--drain-ms", "soon", NULL), m, "--drain-ms");
	check_refused(parse_words(&o, m, REQUIRED, "--vlan", "4095", NULL), m,
		      "--vlan '4095' is not a VLAN id: 1 to 4094, or 0 for untagged");
	check_refused(parse_words(&o, m, REQUIRED, "--vlan", "-1", NULL), m, "--vlan '-1'");
	check_refused(parse_words(&o, m, REQUIRED, "--vlan", "ten", NULL), m, "--vlan 'ten'");
	check_refused(parse_words(&o, m, REQUIRED, "--bogus", NULL), m, "unknown option '--bogus'");
	check_refused(parse_words(&o, m, REQUIRED, "--handler", NULL), m, "needs a value");
	check_refused(parse_words(&o, m, REQUIRED, "extra", NULL), m, "unexpected argument");
}

static void test_endpoints(void **state)
{
	struct agent_endpoint e;

	(void)state;
	assert_int_equal(agent_parse_endpoint("unix:/run/x.sock", &e), 0);
	assert_false(e.tcp);
	assert_string_equal(e.path, "/run/x.sock");
	assert_string_equal(e.text, "unix:/run/x.sock");
	assert_int_equal(agent_parse_endpoint("/run/y.sock", &e), 0);
	assert_string_equal(e.text, "unix:/run/y.sock");
	assert_int_equal(agent_parse_endpoint("tcp:[2001:db8::7]:7070", &e), 0);
	assert_true(e.tcp);
	assert_int_equal(e.address.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&e.address)->sin6_port), 7070);
	assert_int_equal(agent_parse_endpoint("tcp:host.example:7070", &e), -1);
	assert_int_equal(agent_parse_endpoint("tcp:192.0.2.1", &e), -1);
	assert_int_equal(agent_parse_endpoint("unix:", &e), -1);
}

/* --tetherd A,B,...: the list, in order; given twice, the last one counts. */
static void test_options_tetherd_list(void **state)
{
	struct agent_options o;
	char m[MESSAGE_SIZE];

	(void)state;
	assert_int_equal(parse_words(&o, m, REQUIRED, "--tetherd",
				     "tcp:10.0.0.1:7070,tcp:[2001:db8::2]:7070,unix:/run/t.sock,/run/u.sock",
				     "--secret-file", "/etc/s", "--tcp-plain", NULL),
			 0);
	assert_int_equal(o.tetherd_count, 4);
	assert_string_equal(o.tetherds[0].text, "tcp:10.0.0.1:7070");
	assert_int_equal(o.tetherds[0].address.ss_family, AF_INET);
	assert_string_equal(o.tetherds[1].text, "tcp:[2001:db8::2]:7070");
	assert_int_equal(o.tetherds[1].address.ss_family, AF_INET6);
	assert_false(o.tetherds[2].tcp);
	assert_string_equal(o.tetherds[2].path, "/run/t.sock");
	assert_string_equal(o.tetherds[3].text, "unix:/run/u.sock");

	/* One endpoint, as before; a later --tetherd replaces an earlier one. */
	assert_int_equal(parse_words(&o, m, REQUIRED, "--tetherd", "unix:/a,unix:/b", "--tetherd",
				     "/c", NULL),
			 0);
	assert_int_equal(o.tetherd_count, 1);
	assert_string_equal(o.tetherds[0].text, "unix:/c");

	/* Eight at most. */
	assert_int_equal(parse_words(&o, m, REQUIRED, "--tetherd", "/1,/2,/3,/4,/5,/6,/7,/8", NULL),
			 0);
	assert_int_equal(o.tetherd_count, AGENT_MAX_TETHERDS);
}

static void test_options_tetherd_list_refused(void **state)
{
	struct agent_options o;
	char m[MESSAGE_SIZE];

	(void)state;
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "unix:/a,,unix:/b", NULL), m,
		      "--tetherd 'unix:/a,,unix:/b' has an empty endpoint");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "unix:/a,", NULL), m,
		      "has an empty endpoint");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", ",unix:/a", NULL), m,
		      "has an empty endpoint");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "", NULL), m,
		      "--tetherd needs an endpoint");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "unix:/a, unix:/b", NULL), m,
		      "endpoint 2, ' unix:/b', is not unix:/path or tcp:ADDR:PORT");
	check_refused(parse_words(&o, m, REQUIRED, "--secret-file", "/s", "--tetherd",
				  "tcp:10.0.0.1:7070;tcp:10.0.0.2:7070", NULL),
		      m, "is not unix:/path or tcp:ADDR:PORT (several: comma-separated)");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "/a,tcp:10.0.0.1", NULL), m,
		      "endpoint 2, 'tcp:10.0.0.1', is not");
	/* The same endpoint twice, however written. */
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "unix:/a,/a", NULL), m,
		      "--tetherd 'unix:/a,/a' lists unix:/a twice");
	check_refused(parse_words(&o, m, REQUIRED, "--secret-file", "/s", "--tetherd",
				  "tcp:10.0.0.1:7070,tcp:10.0.0.2:7070,tcp:10.0.0.1:7070", NULL),
		      m, "lists tcp:10.0.0.1:7070 twice");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "/1,/2,/3,/4,/5,/6,/7,/8,/9", NULL),
		      m, "lists more than 8 endpoints");
	/* A tcp: endpoint anywhere in the list needs the secret. */
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "unix:/a,tcp:10.0.0.1:7070",
				  "--tcp-plain", NULL),
		      m, "--tetherd tcp:10.0.0.1:7070 needs --secret-file");
}

/* TLS to tcp: endpoints: --tls-ca (tetherd's CA) or --tcp-plain, asked for;
 * a client certificate makes the secret optional; the server's name is the
 * endpoint's address unless --tls-server-name. */
static void test_options_tls(void **state)
{
	struct agent_options o;
	char m[MESSAGE_SIZE];

	(void)state;
	assert_int_equal(parse_words(&o, m, REQUIRED, "--tetherd", "tcp:10.0.0.1:7070,tcp:[2001:db8::2]:7070",
				     "--tls-ca", "/etc/tether/ca.pem", "--tls-cert", "/etc/tether/vm1.pem",
				     "--tls-key", "/etc/tether/vm1-key.pem", NULL),
			 0);
	assert_string_equal(o.tls_ca, "/etc/tether/ca.pem");
	assert_string_equal(o.tls_cert, "/etc/tether/vm1.pem");
	assert_string_equal(o.tls_key, "/etc/tether/vm1-key.pem");
	assert_string_equal(o.secret_file, "");
	assert_string_equal(o.tls_server_name, "");
	assert_false(o.tcp_plain);
	assert_string_equal(o.tetherds[0].host, "10.0.0.1");
	assert_string_equal(o.tetherds[1].host, "2001:db8::2");
	/* Server TLS with a secret; a name for tetherd's certificate. */
	assert_int_equal(parse_words(&o, m, REQUIRED, "--tetherd", "tcp:10.0.0.1:7070", "--tls-ca",
				     "/ca.pem", "--secret-file", "/s", "--tls-server-name",
				     "router-1.example", NULL),
			 0);
	assert_string_equal(o.tls_server_name, "router-1.example");
	/* Plain, asked for. */
	assert_int_equal(parse_words(&o, m, REQUIRED, "--tetherd", "tcp:10.0.0.1:7070",
				     "--tcp-plain", "--secret-file", "/s", NULL),
			 0);
	assert_true(o.tcp_plain);

	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "tcp:10.0.0.1:7070",
				  "--secret-file", "/s", NULL),
		      m, "--tetherd tcp:10.0.0.1:7070 is TCP: give --tls-ca");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "tcp:10.0.0.1:7070", "--tcp-plain",
				  "--tls-ca", "/ca.pem", "--secret-file", "/s", NULL),
		      m, "--tcp-plain connects without TLS, but --tls-ca asks for TLS");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "tcp:10.0.0.1:7070", "--tls-ca",
				  "/ca.pem", NULL),
		      m, "needs --secret-file, or a client certificate");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "tcp:10.0.0.1:7070", "--tls-ca",
				  "/ca.pem", "--tls-cert", "/c.pem", NULL),
		      m, "--tls-cert and --tls-key go together");
	check_refused(parse_words(&o, m, REQUIRED, "--tls-ca", "/ca.pem", NULL), m,
		      "--tls-ca is for tcp: endpoints, and --tetherd lists none");
	check_refused(parse_words(&o, m, REQUIRED, "--tcp-plain", NULL), m,
		      "--tcp-plain is for tcp: endpoints");
	check_refused(parse_words(&o, m, REQUIRED, "--tetherd", "tcp:10.0.0.1:7070", "--tls-ca",
				  "/ca.pem", "--secret-file", "/s", "--tls-server-name", "a b", NULL),
		      m, "--tls-server-name 'a b' is not a DNS name");
	check_refused(parse_words(&o, m, REQUIRED, "--tls-ca", "", NULL), m,
		      "--tls-ca '' is not a file name");
}

/* ---- Several tetherds: the rotation policy ----------------------------- */

/* The next endpoint at once; the backoff only after a whole round failed,
 * doubling from round to round up to 5 s. */
static void test_rotation_rounds(void **state)
{
	struct rotation r;
	static const __u32 rounds[] = { 100, 200, 400, 800, 1600, 3200, 5000, 5000 };

	(void)state;
	rotation_init(&r, 3, LINK_BACKOFF_MAX_MS);
	assert_int_equal(r.current, 0);
	for (size_t round = 0; round < G_N_ELEMENTS(rounds); round++) {
		assert_int_equal(rotation_fail(&r), 0);
		assert_int_equal(r.current, 1);
		assert_int_equal(rotation_fail(&r), 0);
		assert_int_equal(r.current, 2);
		assert_int_equal(rotation_fail(&r), rounds[round]);
		assert_int_equal(r.current, 0);
	}

	/* A write answered ok: it works, the next failure moves on at once and
	 * the backoff starts over; a read or the auth answer proves nothing. */
	rotation_init(&r, 2, LINK_BACKOFF_MAX_MS);
	assert_int_equal(rotation_fail(&r), 0);
	assert_false(rotation_answer(&r, "auth agent", true, PROTO_OK));
	assert_false(rotation_answer(&r, "list container", true, PROTO_OK));
	assert_int_equal(rotation_fail(&r), 100);
	assert_int_equal(rotation_fail(&r), 0);
	assert_int_equal(rotation_fail(&r), 200);
	assert_false(rotation_answer(&r, "heartbeat backend", true, PROTO_OK));
	assert_int_equal(r.failures, 0);
	assert_int_equal(r.current, 0);
	assert_int_equal(rotation_fail(&r), 0);
	assert_int_equal(rotation_fail(&r), 100);

	/* One endpoint: every failure is a whole round, as a single link's backoff. */
	rotation_init(&r, 1, LINK_BACKOFF_MAX_MS);
	assert_int_equal(rotation_fail(&r), 100);
	assert_int_equal(rotation_fail(&r), 200);
	assert_int_equal(r.current, 0);
}

/* unavailable: the router is cut off from the store. About the backend
 * itself, one answer moves; otherwise the third in a row. Other errors are
 * no reason to move and break the row. */
static void test_rotation_unavailable(void **state)
{
	struct rotation r;

	(void)state;
	rotation_init(&r, 2, LINK_BACKOFF_MAX_MS);
	assert_true(rotation_answer(&r, "heartbeat backend", false, PROTO_UNAVAILABLE));
	rotation_init(&r, 2, LINK_BACKOFF_MAX_MS);
	assert_true(rotation_answer(&r, "add backend", false, PROTO_UNAVAILABLE));

	rotation_init(&r, 2, LINK_BACKOFF_MAX_MS);
	assert_false(rotation_answer(&r, "add container", false, PROTO_UNAVAILABLE));
	assert_false(rotation_answer(&r, "up container", false, PROTO_UNAVAILABLE));
	assert_false(rotation_answer(&r, "list container", true, PROTO_OK)); /* breaks the row */
	assert_false(rotation_answer(&r, "up container", false, PROTO_UNAVAILABLE));
	assert_false(rotation_answer(&r, "idle container", false, PROTO_NOT_FOUND));
	assert_false(rotation_answer(&r, "drain container", false, PROTO_UNAVAILABLE));
	assert_false(rotation_answer(&r, "del container", false, PROTO_UNAVAILABLE));
	assert_true(rotation_answer(&r, "add container", false, PROTO_UNAVAILABLE));

	/* A move starts the row over at the next endpoint. */
	assert_int_equal(rotation_fail(&r), 0);
	assert_false(rotation_answer(&r, "add container", false, PROTO_UNAVAILABLE));

	/* Refusals that are not about the store never move. */
	for (int i = 0; i < 5; i++)
		assert_false(rotation_answer(&r, "heartbeat backend", false, PROTO_NOT_FOUND));
	assert_false(rotation_answer(&r, "add backend", false, PROTO_EXISTS));

	assert_int_equal(rotation_patience_ms(1000), 500);
	assert_int_equal(rotation_patience_ms(3000), 1500);
}

/* The backoff stops growing at a sixth of the heartbeat time: a tetherd back
 * from a restart hears from the agent before the backend's deadline. */
static void test_rotation_backoff_follows_heartbeat(void **state)
{
	struct rotation r;

	(void)state;
	assert_int_equal(rotation_backoff_max_ms(1000), 166);
	assert_int_equal(rotation_backoff_max_ms(5000), 833);
	assert_int_equal(rotation_backoff_max_ms(300), LINK_BACKOFF_MIN_MS);
	assert_int_equal(rotation_backoff_max_ms(60000), LINK_BACKOFF_MAX_MS);

	rotation_init(&r, 1, rotation_backoff_max_ms(1000));
	assert_int_equal(rotation_fail(&r), 100);
	assert_int_equal(rotation_fail(&r), 166);
	assert_int_equal(rotation_fail(&r), 166);
	rotation_init(&r, 2, rotation_backoff_max_ms(5000));
	static const __u32 rounds[] = { 100, 200, 400, 800, 833, 833 };
	for (size_t round = 0; round < G_N_ELEMENTS(rounds); round++) {
		assert_int_equal(rotation_fail(&r), 0);
		assert_int_equal(rotation_fail(&r), rounds[round]);
	}
}

/* ---- The token check -------------------------------------------------- */

static const __u8 own_token[16] = { 0, 0, 0, 7, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef,
				    0x01, 0x02, 0x03, 0x04 };

/* A request as the router forwards it: stamped with token. */
static struct tether_hdr stamped_request(const __u8 token[16], __u8 client_flags)
{
	struct tether_hdr hdr = {
		.magic = htons(TETHER_MAGIC),
		.version = TETHER_VERSION,
		.flags = client_flags | TETHER_F_STAMPED,
		.function_id = htobe64(42),
		.routing_key = htobe64(1000),
		.request_id = htobe64(0x0102030405060708ull),
	};

	memcpy(&hdr.container_token, token, 16);
	return hdr;
}

static struct agent_slot own_container(void)
{
	struct agent_slot slot = { .slot = 7, .function_id = 42, .serving = true };

	memcpy(slot.token, own_token, 16);
	return slot;
}

static void test_token_own(void **state)
{
	struct tether_hdr hdr = stamped_request(own_token, TETHER_F_KEY), parsed;
	struct agent_slot own = own_container();

	(void)state;
	assert_int_equal(agent_request_check(&hdr, sizeof(hdr), &parsed), TETHER_STATUS_OK);
	assert_int_equal(agent_token_slot(&parsed), 7);
	assert_int_equal(agent_token_verdict(&parsed, &own), TETHER_STATUS_OK);
}

static void test_token_foreign_slot(void **state)
{
	__u8 token[16];
	struct tether_hdr hdr;
	struct agent_slot own = own_container();

	(void)state;
	memcpy(token, own_token, 16);
	token[3] = 8; /* slot 8: not one of ours, so the agent finds no candidate */
	hdr = stamped_request(token, 0);
	assert_int_equal(agent_token_slot(&hdr), 8);
	assert_int_equal(agent_token_verdict(&hdr, NULL), TETHER_STATUS_CONTAINER_GONE);
	/* Handed the wrong container anyway, the check still refuses. */
	assert_int_equal(agent_token_verdict(&hdr, &own), TETHER_STATUS_CONTAINER_GONE);
}

static void test_token_wrong_secret(void **state)
{
	struct agent_slot own = own_container();

	(void)state;
	/* Right slot, any other byte different: secret, then generation. */
	for (int byte = 4; byte < 16; byte++) {
		__u8 token[16];
		struct tether_hdr hdr;

		memcpy(token, own_token, 16);
		token[byte] ^= 0x80;
		hdr = stamped_request(token, TETHER_F_TOKEN);
		assert_int_equal(agent_token_slot(&hdr), 7);
		assert_int_equal(agent_token_verdict(&hdr, &own), TETHER_STATUS_CONTAINER_GONE);
	}
}

static void test_token_unstamped(void **state)
{
	struct tether_hdr hdr = stamped_request(own_token, TETHER_F_KEY), parsed;
	struct agent_slot own = own_container();

	(void)state;
	hdr.flags &= ~TETHER_F_STAMPED;
	assert_int_equal(agent_request_check(&hdr, sizeof(hdr), &parsed),
			 TETHER_STATUS_MALFORMED);
	assert_int_equal(agent_token_verdict(&hdr, &own), TETHER_STATUS_MALFORMED);
}

static void test_token_other_function_or_not_serving(void **state)
{
	struct tether_hdr hdr = stamped_request(own_token, 0);
	struct agent_slot own = own_container();

	(void)state;
	hdr.function_id = htobe64(43);
	assert_int_equal(agent_token_verdict(&hdr, &own), TETHER_STATUS_CONTAINER_GONE);
	hdr.function_id = htobe64(42);
	own.serving = false; /* gone, or its process died */
	assert_int_equal(agent_token_verdict(&hdr, &own), TETHER_STATUS_CONTAINER_GONE);
}

static void test_request_check(void **state)
{
	struct tether_hdr good = stamped_request(own_token, 0), hdr, parsed;
	__u8 datagram[64] = { 0 };

	(void)state;
	memcpy(datagram, &good, sizeof(good));
	assert_int_equal(agent_request_check(datagram, 64, &parsed), TETHER_STATUS_OK);
	assert_int_equal(agent_request_check(datagram, 47, &parsed), AGENT_IGNORE);

	hdr = good, hdr.magic = htons(0x4554);
	assert_int_equal(agent_request_check(&hdr, sizeof(hdr), &parsed), AGENT_IGNORE);
	hdr = good, hdr.version = 2;
	assert_int_equal(agent_request_check(&hdr, sizeof(hdr), &parsed), AGENT_IGNORE);
	hdr = good, hdr.flags |= TETHER_F_REPLY; /* never answer a reply */
	assert_int_equal(agent_request_check(&hdr, sizeof(hdr), &parsed), AGENT_IGNORE);

	hdr = good, hdr.flags |= 0x08;
	assert_int_equal(agent_request_check(&hdr, sizeof(hdr), &parsed),
			 TETHER_STATUS_MALFORMED);
	hdr = good, hdr.status = 1;
	assert_int_equal(agent_request_check(&hdr, sizeof(hdr), &parsed),
			 TETHER_STATUS_MALFORMED);
	hdr = good, hdr.reserved[2] = 1;
	assert_int_equal(agent_request_check(&hdr, sizeof(hdr), &parsed),
			 TETHER_STATUS_MALFORMED);
	hdr = good, hdr.function_id = 0;
	assert_int_equal(agent_request_check(&hdr, sizeof(hdr), &parsed),
			 TETHER_STATUS_MALFORMED);
}

/* ---- Replies ---------------------------------------------------------- */

static void test_reply_bytes(void **state)
{
	static const __u8 request_token[16] = { 0, 0, 0, 9, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8 };
	static const __u8 container_token[16] = { 0, 0, 0, 9, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8 };
	static const __u8 expected[] = {
		0x54, 0x45, 0x01, 0xc3, 0x00, 0x00, 0x00, 0x00, /* magic, version, flags, status */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, /* function 42 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, /* key 1000 */
		0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x01, /* the container's token */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* request id */
		'h', 'i',
	};
	struct tether_hdr request = stamped_request(request_token, TETHER_F_KEY | TETHER_F_TOKEN);
	__u8 out[128];

	(void)state;
	memset(out, 0xee, sizeof(out));
	assert_int_equal(agent_build_reply(&request, TETHER_STATUS_OK, container_token, "hi", 2,
					   out, sizeof(out)),
			 sizeof(expected));
	assert_memory_equal(out, expected, sizeof(expected));
	assert_int_equal(out[sizeof(expected)], 0xee); /* nothing written past it */
}

static void test_reply_error_keeps_header(void **state)
{
	struct tether_hdr request = stamped_request(own_token, TETHER_F_KEY);
	struct tether_hdr reply;
	__u8 out[64];

	(void)state;
	assert_int_equal(agent_build_reply(&request, TETHER_STATUS_CONTAINER_GONE, NULL, NULL, 0,
					   out, sizeof(out)),
			 TETHER_HDR_LEN);
	memcpy(&reply, out, sizeof(reply));
	assert_int_equal(reply.flags, TETHER_F_KEY | TETHER_F_STAMPED | TETHER_F_REPLY);
	assert_int_equal(reply.status, TETHER_STATUS_CONTAINER_GONE);
	assert_memory_equal(&reply.container_token, own_token, 16); /* as received */
	assert_int_equal(be64toh(reply.request_id), 0x0102030405060708ull);
	assert_int_equal(be64toh(reply.routing_key), 1000);

	/* Too small a buffer: nothing. */
	assert_int_equal(agent_build_reply(&request, TETHER_STATUS_OK, NULL, "x", 1, out, 48), 0);
}

/* ---- Handlers --------------------------------------------------------- */

static const char *call(const struct agent_handler *handler, struct agent_memory *memory,
			__u64 key, bool has_key, const char *payload)
{
	static char out[256];
	struct agent_call c = {
		.slot = 5,
		.name = "vm1-1",
		.function_id = 42,
		.routing_key = key,
		.has_key = has_key,
		.payload = payload,
		.length = payload ? strlen(payload) : 0,
		.pid = 4321,
	};
	size_t len = handler->run(memory, &c, out, sizeof(out) - 1);

	out[len] = '\0';
	return out;
}

static void test_counter_keeps_state(void **state)
{
	const struct agent_handler *counter = agent_handler_find("counter");
	struct agent_memory memory;

	(void)state;
	assert_non_null(counter);
	agent_memory_init(&memory);
	assert_string_equal(call(counter, &memory, 7, true, NULL),
			    "container=5 name=vm1-1 function=42 key=7 count=1 total=1 pid=4321");
	assert_string_equal(call(counter, &memory, 7, true, NULL),
			    "container=5 name=vm1-1 function=42 key=7 count=2 total=2 pid=4321");
	assert_string_equal(call(counter, &memory, 8, true, NULL),
			    "container=5 name=vm1-1 function=42 key=8 count=1 total=3 pid=4321");
	assert_string_equal(call(counter, &memory, 99, false, NULL),
			    "container=5 name=vm1-1 function=42 key=none count=1 total=4 pid=4321");
	assert_string_equal(call(counter, &memory, 7, true, NULL),
			    "container=5 name=vm1-1 function=42 key=7 count=3 total=5 pid=4321");
	agent_memory_free(&memory);

	/* A new container starts from nothing. */
	agent_memory_init(&memory);
	assert_string_equal(call(counter, &memory, 7, true, NULL),
			    "container=5 name=vm1-1 function=42 key=7 count=1 total=1 pid=4321");
	agent_memory_free(&memory);
}

static void test_other_handlers(void **state)
{
	struct agent_memory memory;

	(void)state;
	agent_memory_init(&memory);
	assert_string_equal(call(agent_handler_find("echo"), &memory, 0, false, "hello"), "hello");
	assert_string_equal(call(agent_handler_find("served-by"), &memory, 0, false, NULL),
			    "served-by=vm1-1 slot=5");
	assert_int_equal(memory.total, 2);
	assert_null(agent_handler_find("nope"));
	assert_string_equal(call(agent_handler_find("sleep"), &memory, 0, false, "ms=5"),
			    "served-by=vm1-1 slot=5 slept_ms=5");
	assert_string_equal(agent_handler_names(), "counter, echo, served-by, sleep");
	agent_memory_free(&memory);
}

/* ---- Concurrency limits, completions and liveness -------------------- */

static void test_function_concurrency_and_completions(void **state)
{
	struct agent_options o;
	char message[MESSAGE_SIZE];

	(void)state;
	assert_int_equal(parse_words(&o, message, REQUIRED, "--function", "42:2:1", "--function",
				     "7:3", "--completion", "10.0.0.1:7700,[2001:db8::1]:7700", NULL),
			 0);
	assert_int_equal(o.functions[0].function_id, 42);
	assert_int_equal(o.functions[0].count, 2);
	assert_int_equal(o.functions[0].concurrency, 1);
	assert_int_equal(o.functions[1].concurrency, 0);
	assert_int_equal(agent_function_concurrency(&o, 42), 1);
	assert_int_equal(agent_function_concurrency(&o, 7), 0);
	assert_int_equal(o.completion_count, 2);
	assert_int_equal(o.completions[0].port, 7700);
	assert_int_equal(o.completions[1].addr[0], 0x20);
	assert_string_equal(agent_function_handler(&o, 42), "counter");
	assert_int_equal(parse_words(&o, message, REQUIRED, "--function", "42:2:1:sleep", "--function",
				     "7:1:0:echo", NULL),
			 0);
	assert_string_equal(agent_function_handler(&o, 42), "sleep");
	assert_string_equal(agent_function_handler(&o, 7), "echo");
	assert_int_equal(o.functions[1].concurrency, 0);
	assert_int_equal(parse_words(&o, message, REQUIRED, "--function", "42:2:x", NULL), -1);
	assert_non_null(strstr(message, "F:COUNT[:CONCURRENCY[:HANDLER]]"));
	assert_int_equal(parse_words(&o, message, REQUIRED, "--function", "42:2:1:nope", NULL), -1);
	assert_int_equal(parse_words(&o, message, REQUIRED, "--completion", "10.0.0.1", NULL), -1);
	assert_non_null(strstr(message, "--completion"));
}

static void test_done_and_alive_datagrams(void **state)
{
	const __u8 token[16] = { 0, 0, 0, 9, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8 };
	const __u64 key[2] = { 0x1111, 0x2222 };
	__u8 out[64];
	struct tether_hdr hdr;
	__u64 received;

	(void)state;
	assert_int_equal(agent_build_done(token, 42, htobe64(77), TETHER_STATUS_OK, 5, 6, out,
					  sizeof(out)),
			 TETHER_HDR_LEN + TETHER_DONE_PAYLOAD_LEN);
	memcpy(&hdr, out, sizeof(hdr));
	assert_int_equal(ntohs(hdr.magic), TETHER_MAGIC);
	assert_int_equal(hdr.flags, TETHER_F_DONE | TETHER_F_STAMPED);
	assert_int_equal(be64toh(hdr.function_id), 42);
	assert_int_equal(be64toh(hdr.routing_key), 5);
	assert_int_equal(be64toh(hdr.request_id), 77);
	assert_memory_equal(&hdr.container_token, token, 16);
	memcpy(&received, out + TETHER_HDR_LEN, 8);
	assert_int_equal(be64toh(received), 6);
	assert_int_equal(agent_build_done(token, 42, 0, 0, 5, 6, out, 50), 0);

	assert_int_equal(agent_build_alive(3, 10, key, out, sizeof(out)), TETHER_HDR_LEN);
	memcpy(&hdr, out, sizeof(hdr));
	assert_int_equal(hdr.flags, TETHER_F_ALIVE | TETHER_F_STAMPED);
	assert_int_equal(be64toh(hdr.function_id), 3);
	assert_int_equal(be64toh(hdr.routing_key), 10);
	assert_int_equal(hdr.container_token.slot, 0);
	assert_int_equal(hdr.container_token.generation, 0);
	assert_int_equal(be64toh(hdr.container_token.secret), tether_alive_tag(key, 3, 10));
	assert_true(tether_alive_tag(key, 3, 10) != tether_alive_tag(key, 3, 11));
	assert_true(tether_alive_tag(key, 3, 10) != tether_alive_tag(key, 4, 10));
}

/* SipHash-2-4 of the 24-byte message 00..17 under the key 00..0f, as the
 * reference implementation reads bytes (little-endian words): the value an
 * independent byte-wise implementation gives, which also gives the paper's
 * vector for the 15-byte message 00..0e (a129ca6149be45e5). */
static void test_siphash_vector(void **state)
{
	__u64 key[2] = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };
	__u64 m0 = 0x0706050403020100ULL, m1 = 0x0f0e0d0c0b0a0908ULL,
	      m2 = 0x1716151413121110ULL;

	(void)state;
	assert_int_equal(tether_siphash3(key, m0, m1, m2), 0xb8ad50c6f649af94ULL);
}

/* ---- The container channel ------------------------------------------- */

static void test_frames(void **state)
{
	struct agent_frame frame = { .type = AGENT_FRAME_REQUEST, .slot = 3, .id = 99,
				     .function_id = 42, .routing_key = 7, .has_key = 1 };
	struct agent_frame decoded;
	static __u8 buffer[AGENT_FRAME_MAX];
	const void *payload;
	size_t len;

	(void)state;
	len = agent_frame_encode(&frame, "abc", 3, buffer, sizeof(buffer));
	assert_int_equal(len, sizeof(frame) + 3);
	assert_int_equal(agent_frame_decode(buffer, len, &decoded, &payload), 0);
	assert_int_equal(decoded.type, AGENT_FRAME_REQUEST);
	assert_int_equal(decoded.slot, 3);
	assert_int_equal(decoded.id, 99);
	assert_int_equal(decoded.routing_key, 7);
	assert_int_equal(decoded.length, 3);
	assert_memory_equal(payload, "abc", 3);

	assert_int_equal(agent_frame_decode(buffer, len - 1, &decoded, &payload), -1);
	assert_int_equal(agent_frame_decode(buffer, sizeof(frame) - 1, &decoded, &payload), -1);
	frame.type = 9;
	len = agent_frame_encode(&frame, NULL, 0, buffer, sizeof(buffer));
	assert_int_equal(agent_frame_decode(buffer, len, &decoded, &payload), -1);
	assert_int_equal(agent_frame_encode(&frame, buffer, AGENT_PAYLOAD_MAX + 1, buffer,
					    sizeof(buffer)),
			 0);
	assert_int_equal(agent_frame_encode(&frame, "abc", 3, buffer, sizeof(frame) + 2), 0);
}

/* ---- tetherd's events and records ------------------------------------ */

static void test_event_capacity_needed(void **state)
{
	struct agent_event event;
	char message[MESSAGE_SIZE];
	const char *line = "event=capacity_needed function=42 waiting=3\n";

	(void)state;
	assert_int_equal(agent_event_parse(line, strlen(line), &event, message, sizeof(message)),
			 0);
	assert_int_equal(event.type, AGENT_EVENT_CAPACITY_NEEDED);
	assert_int_equal(event.function_id, 42);
	assert_int_equal(event.waiting, 3);

	line = "event=capacity_needed function=0x2a";
	assert_int_equal(agent_event_parse(line, strlen(line), &event, message, sizeof(message)),
			 0);
	assert_int_equal(event.function_id, 42);
	assert_int_equal(event.waiting, 0);

	line = "event=capacity_needed waiting=3\n";
	assert_int_equal(agent_event_parse(line, strlen(line), &event, message, sizeof(message)),
			 -1);
	assert_non_null(strstr(message, "function"));
	line = "event=capacity_needed function=0 waiting=3\n";
	assert_int_equal(agent_event_parse(line, strlen(line), &event, message, sizeof(message)),
			 -1);
}

static void test_event_others(void **state)
{
	struct agent_event event;
	char message[MESSAGE_SIZE];
	const char *line = "event=container_draining container=12 function=42 backend=vm1\n";

	(void)state;
	assert_int_equal(agent_event_parse(line, strlen(line), &event, message, sizeof(message)),
			 0);
	assert_int_equal(event.type, AGENT_EVENT_CONTAINER_DRAINING);
	assert_int_equal(event.container, 12);
	assert_string_equal(event.backend, "vm1");

	line = "event=container_gone container=12 function=42 backend=vm1 reason=idle\n";
	assert_int_equal(agent_event_parse(line, strlen(line), &event, message, sizeof(message)),
			 0);
	assert_int_equal(event.type, AGENT_EVENT_CONTAINER_GONE);

	line = "event=backend_up backend=vm1 id=1\n";
	assert_int_equal(agent_event_parse(line, strlen(line), &event, message, sizeof(message)),
			 0);
	assert_int_equal(event.type, AGENT_EVENT_OTHER);

	line = "not an event\n";
	assert_int_equal(agent_event_parse(line, strlen(line), &event, message, sizeof(message)),
			 -1);
	line = "backend=vm1\n";
	assert_int_equal(agent_event_parse(line, strlen(line), &event, message, sizeof(message)),
			 -1);
}

static void test_container_record(void **state)
{
	struct proto_request record;
	struct agent_container_record parsed;
	char message[MESSAGE_SIZE];
	const char *line = "container=5 function=42 backend=vm1 state=draining name=vm1-1 "
			   "deadline_in_ms=2500 token=0000000500000001aabbccddeeff0011\n";

	(void)state;
	assert_int_equal(proto_parse_record(line, strlen(line), &record, message, sizeof(message)),
			 0);
	assert_int_equal(agent_container_record_parse(&record, &parsed, message, sizeof(message)),
			 0);
	assert_int_equal(parsed.slot, 5);
	assert_int_equal(parsed.state, CONTAINER_DRAINING);
	assert_int_equal(parsed.deadline_in_ms, 2500);
	assert_int_equal(parsed.token[3], 5);
	assert_int_equal(parsed.token[15], 0x11);

	line = "container=5 state=warm\n";
	assert_int_equal(proto_parse_record(line, strlen(line), &record, message, sizeof(message)),
			 0);
	assert_int_equal(agent_container_record_parse(&record, &parsed, message, sizeof(message)),
			 -1);
	assert_non_null(strstr(message, "token"));
}

static void check_backend_record_vlan(const char *line, const char *vlan, bool matches,
				      const char *needle)
{
	struct agent_options o;
	struct proto_request record;
	char message[MESSAGE_SIZE], difference[MESSAGE_SIZE] = "";

	assert_int_equal(parse_words(&o, message, REQUIRED, "--heartbeat-ms", "600", "--vlan", vlan,
				     NULL),
			 0);
	assert_int_equal(proto_parse_record(line, strlen(line), &record, message, sizeof(message)),
			 0);
	assert_int_equal(agent_backend_matches(&record, &o, difference, sizeof(difference)),
			 matches);
	if (needle && !strstr(difference, needle))
		fail_msg("difference \"%s\" does not name \"%s\"", difference, needle);
}

static void check_backend_record(const char *line, bool matches, const char *needle)
{
	check_backend_record_vlan(line, "0", matches, needle);
}

static void test_backend_record(void **state)
{
	(void)state;
	check_backend_record("backend=vm1 id=1 state=up addr=10.0.0.2 mac=02:aa:bb:00:00:01 "
			     "iface=veth-r1 heartbeat_ms=600 expires_in_ms=10 containers=0",
			     true, NULL);
	check_backend_record("backend=vm1 addr=10.0.0.3 mac=02:aa:bb:00:00:01 iface=veth-r1 "
			     "heartbeat_ms=600",
			     false, "addr is 10.0.0.3, this agent's is 10.0.0.2");
	check_backend_record("backend=vm1 addr=10.0.0.2 mac=02:aa:bb:00:00:02 iface=veth-r1 "
			     "heartbeat_ms=600",
			     false, "mac is 02:aa:bb:00:00:02");
	check_backend_record("backend=vm1 addr=10.0.0.2 mac=02:aa:bb:00:00:01 iface=veth-r2 "
			     "heartbeat_ms=600",
			     false, "iface is veth-r2");
	check_backend_record("backend=vm1 addr=10.0.0.2 mac=02:aa:bb:00:00:01 iface=veth-r1 "
			     "heartbeat_ms=3000",
			     false, "heartbeat_ms is 3000, this agent's is 600");
	check_backend_record("backend=vm1 addr=10.0.0.2", false, "mac is unset");
	/* VLANs: a record without vlan= (an older tetherd) is untagged. */
	check_backend_record("backend=vm1 addr=10.0.0.2 mac=02:aa:bb:00:00:01 iface=veth-r1 "
			     "vlan=0 heartbeat_ms=600",
			     true, NULL);
	check_backend_record("backend=vm1 addr=10.0.0.2 mac=02:aa:bb:00:00:01 iface=veth-r1 "
			     "vlan=100 heartbeat_ms=600",
			     false, "vlan is 100, this agent's is 0");
	check_backend_record_vlan("backend=vm1 addr=10.0.0.2 mac=02:aa:bb:00:00:01 iface=veth-r1 "
				  "vlan=100 heartbeat_ms=600",
				  "100", true, NULL);
	check_backend_record_vlan("backend=vm1 addr=10.0.0.2 mac=02:aa:bb:00:00:01 iface=veth-r1 "
				  "heartbeat_ms=600",
				  "100", false, "vlan is 0, this agent's is 100");
}

/* --decap: a routed backend needs no --mac or --router-iface; its record
 * matches on encap= and vni= (the router's interface is the FIB's). */
static void test_decap_options_and_record(void **state)
{
	struct agent_options o;
	struct proto_request record;
	char m[MESSAGE_SIZE], difference[MESSAGE_SIZE] = "";
	const char *same = "backend=vm7 id=3 state=up addr=10.200.0.5 mac=02:54:45:00:10:92 "
			   "iface=_ vlan=0 encap=vxlan vni=4242 heartbeat_ms=600";
	const char *other_vni = "backend=vm7 addr=10.200.0.5 mac=02:54:45:00:10:93 iface=_ "
				"encap=vxlan vni=4243 heartbeat_ms=600";
	const char *l2 = "backend=vm7 addr=10.200.0.5 mac=02:54:45:00:10:92 iface=eth1 "
			 "heartbeat_ms=600";

	(void)state;
	assert_int_equal(parse_words(&o, m, "--name", "vm7", "--addr", "10.200.0.5", "--vip",
				     "10.9.9.9:7000", "--decap", "vxlan", "--vni", "4242",
				     "--heartbeat-ms", "600", NULL),
			 0);
	assert_int_equal(o.decap, BACKEND_VXLAN);
	assert_int_equal(o.vni, 4242);
	assert_int_equal(proto_parse_record(same, strlen(same), &record, m, sizeof(m)), 0);
	assert_true(agent_backend_matches(&record, &o, difference, sizeof(difference)));
	assert_int_equal(proto_parse_record(other_vni, strlen(other_vni), &record, m, sizeof(m)),
			 0);
	assert_false(agent_backend_matches(&record, &o, difference, sizeof(difference)));
	assert_non_null(strstr(difference, "vni is 4243, this agent's is 4242"));
	assert_int_equal(proto_parse_record(l2, strlen(l2), &record, m, sizeof(m)), 0);
	assert_false(agent_backend_matches(&record, &o, difference, sizeof(difference)));
	assert_non_null(strstr(difference, "encap is l2, this agent's is vxlan"));

	check_refused(parse_words(&o, m, REQUIRED, "--decap", "gre", NULL), m,
		      "--decap 'gre' is not vxlan or ipip");
	check_refused(parse_words(&o, m, REQUIRED, "--decap", "ipip", "--vni", "5", NULL), m,
		      "--vni is for --decap vxlan");
	check_refused(parse_words(&o, m, REQUIRED, "--decap", "vxlan", "--vlan", "5", NULL), m,
		      "--vlan is for a VM on the router's segment");
	check_refused(parse_words(&o, m, "--name", "vm7", "--addr", "10.200.0.5", "--vip",
				  "10.9.9.9:7000", NULL),
		      m, "--mac is required");
}

/* ---- The agent against a fake tetherd --------------------------------- */

#define FAKE_MAX_CONNECTIONS 8
#define FAKE_FIRST_SLOT 10
#define TEST_VIP "10.9.9.9"
#define TEST_PORT 7000

struct fake_connection {
	int fd;
	GString *in;
	bool watching;
};

/* tetherd as the agent sees it: answers canned lines and records every
 * request of the control connection but heartbeats. */
struct fake {
	char dir[40], socket_path[64], log_path[64];
	int listen_fd;
	struct fake_connection connections[FAKE_MAX_CONNECTIONS];
	int connection_count;
	GPtrArray *requests; /* char *, in arrival order */
	int heartbeats;
	int next_slot;
	bool backend_exists;        /* add backend answers "exists" (till del backend) */
	const char *backend_record; /* what list backend answers */
	const char *list_records;   /* the records list container answers */
	const char *unavailable;    /* requests starting so are answered "error unavailable" */
	const char *mute;           /* requests starting so go unanswered (a wedged tetherd) */
	GArray *renewals;           /* __u64 ms, monotonic: heartbeats answered ok */
	pid_t agent;
};

/* The token the fake gives the container in slot. */
static void fake_token(__u32 slot, __u8 token[16])
{
	__u32 be_slot = htonl(slot), generation = htonl(1);
	__u64 secret = htobe64(0x1122334455660000ull | slot);

	memcpy(token, &be_slot, 4);
	memcpy(token + 4, &generation, 4);
	memcpy(token + 8, &secret, 8);
}

static __u64 monotonic_ms(void);

static void fake_answer(struct fake *f, struct fake_connection *conn, const char *line)
{
	char answer[512];

	if (f->mute && g_str_has_prefix(line, f->mute)) {
		return;
	} else if (f->unavailable && g_str_has_prefix(line, f->unavailable)) {
		snprintf(answer, sizeof(answer),
			 "error unavailable: the fleet's store cannot be reached (fake)\n\n");
	} else if (!strncmp(line, "watch event", 11)) {
		conn->watching = true;
		snprintf(answer, sizeof(answer), "ok\n");
	} else if (!strncmp(line, "add backend", 11) && f->backend_exists) {
		snprintf(answer, sizeof(answer), "error exists: a backend named 'vm1' exists already\n\n");
	} else if (!strncmp(line, "add backend", 11)) {
		snprintf(answer, sizeof(answer), "ok\nbackend=vm1 id=1 state=up\n\n");
	} else if (!strncmp(line, "del backend", 11)) {
		f->backend_exists = false;
		snprintf(answer, sizeof(answer), "ok\n\n");
	} else if (!strncmp(line, "list backend", 12)) {
		snprintf(answer, sizeof(answer), "ok\n%s\n",
			 f->backend_record ? f->backend_record : "");
	} else if (!strncmp(line, "list container", 14)) {
		snprintf(answer, sizeof(answer), "ok\n%s\n", f->list_records ? f->list_records : "");
	} else if (!strncmp(line, "add container", 13)) {
		__u8 token[16];
		char hex[33];
		int slot = f->next_slot++;

		fake_token(slot, token);
		for (int i = 0; i < 16; i++)
			sprintf(hex + 2 * i, "%02x", token[i]);
		snprintf(answer, sizeof(answer),
			 "ok\ncontainer=%d function=42 backend=vm1 state=starting name=x "
			 "deadline_in_ms=0 token=%s\n\n",
			 slot, hex);
	} else {
		snprintf(answer, sizeof(answer), "ok\n\n");
	}
	/* An agent that moved away closed the connection with requests unread:
	 * their answers go nowhere, as tetherd's would. */
	if (write(conn->fd, answer, strlen(answer)) < 0 && errno != EPIPE && errno != ECONNRESET)
		fail_msg("fake tetherd: write: %s", strerror(errno));
}

static void fake_line(struct fake *f, struct fake_connection *conn, const char *line)
{
	/* The watch connection's one request is checked by fake_watcher(). */
	if (!strncmp(line, "heartbeat backend", 17)) {
		__u64 now = monotonic_ms();

		f->heartbeats++;
		if (!(f->mute && g_str_has_prefix(line, f->mute)) &&
		    !(f->unavailable && g_str_has_prefix(line, f->unavailable)))
			g_array_append_val(f->renewals, now);
	}
	else if (strncmp(line, "watch event", 11))
		g_ptr_array_add(f->requests, g_strdup(line));
	fake_answer(f, conn, line);
}

static void fake_read(struct fake *f, struct fake_connection *conn)
{
	char buffer[4096], *newline;
	ssize_t got = read(conn->fd, buffer, sizeof(buffer));

	if (got <= 0) {
		close(conn->fd);
		conn->fd = -1;
		return;
	}
	g_string_append_len(conn->in, buffer, got);
	while ((newline = memchr(conn->in->str, '\n', conn->in->len))) {
		g_autofree char *line = g_strndup(conn->in->str, newline - conn->in->str);

		g_string_erase(conn->in, 0, newline - conn->in->str + 1);
		fake_line(f, conn, line);
	}
}

/* Serves connections for up to timeout_ms. */
static void fake_poll(struct fake *f, int timeout_ms)
{
	/* A closed listener (fd -1) is skipped by poll. */
	struct pollfd fds[FAKE_MAX_CONNECTIONS + 1] = { { .fd = f->listen_fd, .events = POLLIN } };

	for (int i = 0; i < f->connection_count; i++)
		fds[i + 1] = (struct pollfd){ .fd = f->connections[i].fd, .events = POLLIN };
	if (poll(fds, f->connection_count + 1, timeout_ms) <= 0)
		return;
	for (int i = 0; i < f->connection_count; i++)
		if (fds[i + 1].revents && f->connections[i].fd >= 0)
			fake_read(f, &f->connections[i]);
	if (fds[0].revents & POLLIN && f->connection_count < FAKE_MAX_CONNECTIONS) {
		struct fake_connection *conn = &f->connections[f->connection_count++];

		conn->fd = accept(f->listen_fd, NULL, NULL);
		conn->in = g_string_new(NULL);
		conn->watching = false;
	}
}

static int fake_count(struct fake *f, const char *prefix)
{
	int count = 0;

	for (guint i = 0; i < f->requests->len; i++)
		if (g_str_has_prefix(g_ptr_array_index(f->requests, i), prefix))
			count++;
	return count;
}

static __u64 monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

static void fake_dump(struct fake *f)
{
	g_autofree char *log = NULL;

	fprintf(stderr, "requests the fake tetherd got:\n");
	for (guint i = 0; i < f->requests->len; i++)
		fprintf(stderr, "  %s\n", (char *)g_ptr_array_index(f->requests, i));
	if (g_file_get_contents(f->log_path, &log, NULL, NULL))
		fprintf(stderr, "the agent's log:\n%s", log);
}

/* Serves until count requests start with prefix, or fails after timeout. */
static void fake_wait_for(struct fake *f, const char *prefix, int count, int timeout_ms)
{
	__u64 deadline = monotonic_ms() + timeout_ms;

	while (fake_count(f, prefix) < count) {
		if (monotonic_ms() > deadline) {
			fake_dump(f);
			fail_msg("no %d x '%s' from the agent within %d ms", count, prefix,
				 timeout_ms);
		}
		fake_poll(f, 20);
	}
}

static struct fake_connection *fake_watcher(struct fake *f)
{
	for (int i = 0; i < f->connection_count; i++)
		if (f->connections[i].watching && f->connections[i].fd >= 0)
			return &f->connections[i];
	return NULL;
}

static void fake_send_event(struct fake *f, const char *line)
{
	struct fake_connection *watcher = fake_watcher(f);

	assert_non_null(watcher);
	assert_int_equal(write(watcher->fd, line, strlen(line)), (ssize_t)strlen(line));
}

static bool agent_binary(char *path, size_t size)
{
	char self[512];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (len <= 0)
		return false;
	self[len] = '\0';
	/* build/tests/unit/test_agent -> build/tether-agent */
	snprintf(path, size, "%s/../../tether-agent", dirname(self));
	return access(path, X_OK) == 0;
}

/* In the child: a private network namespace with lo up, like a fresh VM. */
static void enter_private_netns(void)
{
	struct ifreq ifr = { 0 };
	int fd;

	if (unshare(CLONE_NEWNET))
		_exit(126);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr))
		_exit(126);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		_exit(126);
	close(fd);
}

static pid_t start_agent(struct fake *f, const char *binary, const char *extra)
{
	g_autofree char *command = g_strdup_printf(
		"%s --name vm1 --addr 10.0.0.2 --mac 02:00:00:00:00:01 --router-iface veth-r1 "
		"--vip " TEST_VIP ":%d --tetherd unix:%s --function 42:2 --cold-start-ms 50 "
		"--heartbeat-ms 300 --drain-ms 2000%s%s",
		binary, TEST_PORT, f->socket_path, extra[0] ? " " : "", extra);
	g_auto(GStrv) argv = g_strsplit(command, " ", -1);
	pid_t pid = fork();

	if (pid == 0) {
		int log = open(f->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		enter_private_netns();
		dup2(log, STDERR_FILENO);
		execv(binary, argv);
		_exit(127);
	}
	return pid;
}

static struct fake *fake_new(void)
{
	struct fake *f = g_new0(struct fake, 1);
	struct sockaddr_un address = { .sun_family = AF_UNIX };

	f->listen_fd = -1;
	f->requests = g_ptr_array_new_with_free_func(g_free);
	f->renewals = g_array_new(FALSE, FALSE, sizeof(__u64));
	f->next_slot = FAKE_FIRST_SLOT;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_agent.XXXXXX");
	if (!mkdtemp(f->dir))
		return f;
	snprintf(f->socket_path, sizeof(f->socket_path), "%s/tetherd.sock", f->dir);
	snprintf(f->log_path, sizeof(f->log_path), "%s/agent.log", f->dir);
	snprintf(address.sun_path, sizeof(address.sun_path), "%s", f->socket_path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->listen_fd >= 0 &&
	    (bind(f->listen_fd, (struct sockaddr *)&address, sizeof(address)) ||
	     listen(f->listen_fd, 8))) {
		close(f->listen_fd);
		f->listen_fd = -1;
	}
	return f;
}

/* tetherd killed: its connections and its listener close (its socket file
 * stays, so connecting is refused). */
static void fake_kill(struct fake *f)
{
	for (int i = 0; i < f->connection_count; i++)
		if (f->connections[i].fd >= 0) {
			close(f->connections[i].fd);
			f->connections[i].fd = -1;
		}
	if (f->listen_fd >= 0)
		close(f->listen_fd);
	f->listen_fd = -1;
}

static void fake_free(struct fake *f)
{
	if (f->agent > 0 && kill(f->agent, SIGKILL) == 0)
		waitpid(f->agent, NULL, 0);
	fake_kill(f);
	for (int i = 0; i < f->connection_count; i++)
		g_string_free(f->connections[i].in, TRUE);
	unlink(f->socket_path);
	unlink(f->log_path);
	rmdir(f->dir);
	g_ptr_array_free(f->requests, TRUE);
	g_array_free(f->renewals, TRUE);
	g_free(f);
}

static int fake_setup(void **state)
{
	struct fake *f = fake_new();

	*state = f;
	return f->listen_fd >= 0 ? 0 : -1;
}

static int fake_teardown(void **state)
{
	fake_free(*state);
	return 0;
}

/* Needs the built agent and root (namespaces). Outside CI a developer
 * without them gets a skip; in CI (CI=true) it fails loudly. */
static void start_or_skip(struct fake *f, const char *extra)
{
	char binary[600];

	if (!agent_binary(binary, sizeof(binary)) || geteuid() != 0) {
		const char *ci = getenv("CI");

		if (ci && !strcmp(ci, "true"))
			fail_msg("CI=true: these tests need root and build/tether-agent");
		fprintf(stderr, "skipping: needs root and build/tether-agent\n");
		skip();
	}
	f->agent = start_agent(f, binary, extra);
	assert_true(f->agent > 0);
}

/* One stamped request to the VIP from inside the agent's namespace; the
 * reply's bytes in reply, its length returned (-1: no reply). */
static ssize_t ask_agent(struct fake *f, __u32 slot, __u64 key, __u8 *reply, size_t size)
{
	char ns_path[64];
	int pipe_fds[2];
	ssize_t len = -1;

	snprintf(ns_path, sizeof(ns_path), "/proc/%d/ns/net", (int)f->agent);
	assert_int_equal(pipe(pipe_fds), 0);
	pid_t child = fork();

	if (child == 0) {
		__u8 token[16], answer[512];
		struct tether_hdr request;
		struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(TEST_PORT) };
		struct timeval timeout = { .tv_sec = 2 };
		int ns = open(ns_path, O_RDONLY), fd;
		ssize_t got;

		fake_token(slot, token);
		request = stamped_request(token, TETHER_F_KEY);
		request.routing_key = htobe64(key);
		inet_pton(AF_INET, TEST_VIP, &vip.sin_addr);
		if (ns < 0 || setns(ns, CLONE_NEWNET))
			_exit(1);
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
		sendto(fd, &request, sizeof(request), 0, (struct sockaddr *)&vip, sizeof(vip));
		got = recv(fd, answer, sizeof(answer), 0);
		if (got > 0 && write(pipe_fds[1], answer, got) != got)
			_exit(1);
		_exit(0);
	}
	close(pipe_fds[1]);
	for (__u64 deadline = monotonic_ms() + 3000; monotonic_ms() < deadline;) {
		struct pollfd pfd = { .fd = pipe_fds[0], .events = POLLIN };

		fake_poll(f, 0); /* tetherd keeps answering heartbeats meanwhile */
		if (poll(&pfd, 1, 20) > 0) {
			len = read(pipe_fds[0], reply, size);
			break;
		}
	}
	close(pipe_fds[0]);
	waitpid(child, NULL, 0);
	return len > 0 ? len : -1;
}

/* The reply to ask_agent(slot): flags, status, the token of slot (the
 * container's own on OK; the stamped one, as received, otherwise), payload. */
static void check_reply(const __u8 *reply, ssize_t len, __u32 slot, enum tether_status status,
			const char *payload_prefix)
{
	struct tether_hdr hdr;
	__u8 token[16];

	assert_true(len >= TETHER_HDR_LEN);
	memcpy(&hdr, reply, sizeof(hdr));
	fake_token(slot, token);
	assert_int_equal(hdr.flags, TETHER_F_KEY | TETHER_F_STAMPED | TETHER_F_REPLY);
	assert_int_equal(hdr.status, status);
	assert_memory_equal(&hdr.container_token, token, 16);
	assert_int_equal(be64toh(hdr.request_id), 0x0102030405060708ull);
	if (payload_prefix &&
	    strncmp((const char *)reply + TETHER_HDR_LEN, payload_prefix, strlen(payload_prefix)))
		fail_msg("payload '%.*s' does not start with '%s'", (int)(len - TETHER_HDR_LEN),
			 reply + TETHER_HDR_LEN, payload_prefix);
}

/* Sends SIGTERM and serves until the agent exits; its exit status. */
static int stop_agent(struct fake *f)
{
	int status;
	__u64 deadline = monotonic_ms() + 8000;

	assert_int_equal(kill(f->agent, SIGTERM), 0);
	while (waitpid(f->agent, &status, WNOHANG) == 0) {
		if (monotonic_ms() > deadline) {
			fake_dump(f);
			fail_msg("the agent did not exit within 8 s of SIGTERM");
		}
		fake_poll(f, 20);
	}
	f->agent = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int request_index(struct fake *f, const char *line)
{
	for (guint i = 0; i < f->requests->len; i++)
		if (g_str_has_prefix(g_ptr_array_index(f->requests, i), line))
			return (int)i;
	fake_dump(f);
	fail_msg("the agent never sent '%s'", line);
	return -1;
}

/* How many times the agent logged needle. */
static int log_count(struct fake *f, const char *needle)
{
	g_autofree char *log = NULL;
	int count = 0;

	if (!g_file_get_contents(f->log_path, &log, NULL, NULL))
		return 0;
	for (const char *at = log; (at = strstr(at, needle)); at += strlen(needle))
		count++;
	return count;
}

static void expect_log(struct fake *f, const char *needle, int count)
{
	int got = log_count(f, needle);

	if (got != count) {
		fake_dump(f);
		fail_msg("the agent logged '%s' %d times, not %d", needle, got, count);
	}
}

static void test_agent_lifecycle(void **state)
{
	struct fake *f = *state;
	__u8 reply[512];
	ssize_t len;

	start_or_skip(f, "--capacity");
	fake_wait_for(f, "up container", 2, 5000);

	/* Start-up: the backend, what tetherd knows, each container added starting
	 * (its process forked after), each one up once warm. */
	assert_string_equal(g_ptr_array_index(f->requests, 0),
			    "add backend name=vm1 addr=10.0.0.2 mac=02:00:00:00:00:01 iface=veth-r1 heartbeat_ms=300");
	int list = request_index(f, "list container backend=vm1");
	int add1 = request_index(f, "add container function=42 backend=vm1 name=vm1-1 state=starting");
	int add2 = request_index(f, "add container function=42 backend=vm1 name=vm1-2 state=starting");
	int up1 = request_index(f, "up container container=10");
	int up2 = request_index(f, "up container container=11");

	assert_true(list < add1 && add1 < add2 && add1 < up1 && add2 < up2);
	assert_non_null(fake_watcher(f));

	/* Heartbeats every heartbeat_ms / 3. */
	for (__u64 until = monotonic_ms() + 400; monotonic_ms() < until;)
		fake_poll(f, 20);
	assert_true(f->heartbeats >= 2);

	/* A stamped request runs in the container its token names and keeps its
	 * count; a wrong slot is CONTAINER_GONE. */
	len = ask_agent(f, 10, 7, reply, sizeof(reply));
	check_reply(reply, len, 10, TETHER_STATUS_OK, "container=10 name=vm1-1 function=42 key=7 count=1 total=1 pid=");
	len = ask_agent(f, 10, 7, reply, sizeof(reply));
	check_reply(reply, len, 10, TETHER_STATUS_OK, "container=10 name=vm1-1 function=42 key=7 count=2 total=2 pid=");
	len = ask_agent(f, 11, 7, reply, sizeof(reply));
	check_reply(reply, len, 11, TETHER_STATUS_OK, "container=11 name=vm1-2 function=42 key=7 count=1 total=1 pid=");
	len = ask_agent(f, 12, 7, reply, sizeof(reply));
	check_reply(reply, len, 12, TETHER_STATUS_CONTAINER_GONE, NULL);

	/* capacity_needed for a function it serves starts one more container;
	 * for another function, nothing. */
	fake_send_event(f, "event=capacity_needed function=43 waiting=1\n");
	fake_send_event(f, "event=capacity_needed function=42 waiting=2\n");
	fake_wait_for(f, "up container container=12", 1, 5000);
	assert_int_equal(fake_count(f, "add container function=42 backend=vm1 name=vm1-3"), 1);
	assert_int_equal(fake_count(f, "add container function=43"), 0);

	/* SIGTERM: each container drains, then reports idle; the backend goes
	 * last; exit 0. */
	assert_int_equal(stop_agent(f), 0);
	for (int slot = 10; slot <= 12; slot++) {
		char drain[64], idle[64];

		snprintf(drain, sizeof(drain), "drain container container=%d deadline_ms=", slot);
		snprintf(idle, sizeof(idle), "idle container container=%d", slot);
		assert_true(request_index(f, drain) < request_index(f, idle));
	}
	assert_string_equal(g_ptr_array_index(f->requests, f->requests->len - 1),
			    "del backend name=vm1");
	assert_int_equal(fake_count(f, "del backend"), 1);
}

/* One tetherd, which answers `unavailable` to up container for a while (its
 * fleet's store away): the agent asks again every 2 s, deletes nothing,
 * keeps heartbeating, does not give up, and the containers come up once the
 * store is back. */
static void test_agent_retries_unavailable(void **state)
{
	struct fake *f = *state;

	f->unavailable = "up container";
	start_or_skip(f, "");
	fake_wait_for(f, "up container", 2, 5000);
	fake_wait_for(f, "up container", 4, 5000); /* each one asked again */
	assert_int_equal(fake_count(f, "del "), 0);
	assert_int_equal(fake_count(f, "add container"), 2);
	assert_int_equal(waitpid(f->agent, NULL, WNOHANG), 0);
	assert_true(f->heartbeats >= 5);
	for (__u64 until = monotonic_ms() + 2000;
	     log_count(f, "refused up container: unavailable: the fleet's store cannot be reached") < 4;) {
		if (monotonic_ms() > until) {
			fake_dump(f);
			fail_msg("the agent did not log the 4 unavailable answers");
		}
		fake_poll(f, 20);
	}
	f->unavailable = NULL;
	for (__u64 until = monotonic_ms() + 5000; log_count(f, "warm, up at tetherd") < 2;) {
		if (monotonic_ms() > until) {
			fake_dump(f);
			fail_msg("the containers did not come up once tetherd answered ok");
		}
		fake_poll(f, 20);
	}
	assert_int_equal(fake_count(f, "del "), 0);
	assert_int_equal(stop_agent(f), 0);
}

#define EXISTING_BACKEND "backend=vm1 id=1 state=down addr=10.0.0.2 mac=02:00:00:00:00:01 " \
			 "iface=veth-r1 heartbeat_ms=300 expires_in_ms=0 containers=1\n"

static void test_agent_takes_over_existing_backend(void **state)
{
	struct fake *f = *state;

	/* An earlier agent left backend vm1 with container 3; tetherd kept it. */
	f->backend_exists = true;
	f->backend_record = EXISTING_BACKEND;
	f->list_records = "container=3 function=42 backend=vm1 state=warm name=vm1-1 "
			  "deadline_in_ms=0 token=00000003000000010102030405060708\n";
	start_or_skip(f, "");
	fake_wait_for(f, "up container", 2, 5000);
	int list = request_index(f, "list container backend=vm1");
	int stale = request_index(f, "del container container=3");
	int add = request_index(f, "add container function=42 backend=vm1 name=vm1-1");

	/* Registered as we would: taken over, with a heartbeat at once (it was
	 * down); the stale container goes before ours are added (it holds the
	 * name vm1-1). */
	assert_string_equal(g_ptr_array_index(f->requests, 1), "list backend");
	assert_int_equal(fake_count(f, "add backend"), 1);
	assert_true(list < stale && stale < add);
	assert_true(f->heartbeats >= 1);
	assert_int_equal(stop_agent(f), 0);
	assert_string_equal(g_ptr_array_index(f->requests, f->requests->len - 1),
			    "del backend name=vm1");
}

/* --vlan N registers the backend with vlan=N; an existing backend of another
 * VLAN (the VM moved onto a trunk) is replaced. */
static void test_agent_registers_vlan(void **state)
{
	struct fake *f = *state;

	f->backend_exists = true;
	f->backend_record = "backend=vm1 id=1 state=up addr=10.0.0.2 mac=02:00:00:00:00:01 "
			    "iface=veth-r1 vlan=0 heartbeat_ms=300\n";
	start_or_skip(f, "--vlan 100");
	fake_wait_for(f, "up container", 2, 5000);
	assert_string_equal(g_ptr_array_index(f->requests, 0),
			    "add backend name=vm1 addr=10.0.0.2 mac=02:00:00:00:00:01 iface=veth-r1 heartbeat_ms=300 vlan=100");
	assert_string_equal(g_ptr_array_index(f->requests, 1), "list backend");
	assert_string_equal(g_ptr_array_index(f->requests, 2), "del backend name=vm1");
	assert_string_equal(g_ptr_array_index(f->requests, 3),
			    "add backend name=vm1 addr=10.0.0.2 mac=02:00:00:00:00:01 iface=veth-r1 heartbeat_ms=300 vlan=100");
	assert_int_equal(stop_agent(f), 0);
}

static void test_agent_replaces_different_backend(void **state)
{
	struct fake *f = *state;

	/* Backend vm1 exists with another MAC (the VM came back on a new link). */
	f->backend_exists = true;
	f->backend_record = "backend=vm1 id=1 state=up addr=10.0.0.2 mac=02:00:00:00:00:09 "
			    "iface=veth-r1 heartbeat_ms=300\n";
	start_or_skip(f, "");
	fake_wait_for(f, "up container", 2, 5000);
	assert_string_equal(g_ptr_array_index(f->requests, 0),
			    "add backend name=vm1 addr=10.0.0.2 mac=02:00:00:00:00:01 iface=veth-r1 heartbeat_ms=300");
	assert_string_equal(g_ptr_array_index(f->requests, 1), "list backend");
	assert_string_equal(g_ptr_array_index(f->requests, 2), "del backend name=vm1");
	assert_string_equal(g_ptr_array_index(f->requests, 3),
			    "add backend name=vm1 addr=10.0.0.2 mac=02:00:00:00:00:01 iface=veth-r1 heartbeat_ms=300");
	assert_string_equal(g_ptr_array_index(f->requests, 4), "list container backend=vm1");
	assert_int_equal(stop_agent(f), 0);
}

/* ---- Several tetherds: the agent moves ----------------------------------- */

/* Two fake tetherds, A and B; the agent talks to A first
 * (--tetherd unix:A,unix:B) and logs to A's log. */
struct fake_pair {
	struct fake *a, *b;
};

static int pair_setup(void **state)
{
	struct fake_pair *p = g_new0(struct fake_pair, 1);

	p->a = fake_new();
	p->b = fake_new();
	*state = p;
	return p->a->listen_fd >= 0 && p->b->listen_fd >= 0 ? 0 : -1;
}

static int pair_teardown(void **state)
{
	struct fake_pair *p = *state;

	fake_free(p->a);
	p->b->agent = 0; /* the same agent: killed once */
	fake_free(p->b);
	g_free(p);
	return 0;
}

#define PAIR_HEARTBEAT_MS 600

static void pair_start(struct fake_pair *p)
{
	g_autofree char *extra = g_strdup_printf("--heartbeat-ms %d --tetherd unix:%s,unix:%s",
						 PAIR_HEARTBEAT_MS, p->a->socket_path,
						 p->b->socket_path);

	start_or_skip(p->a, extra);
	p->b->agent = p->a->agent;
	snprintf(p->b->log_path, sizeof(p->b->log_path), "%s", p->a->log_path);
}

/* Serves both until B has had count requests starting with prefix. */
static void pair_wait_for(struct fake_pair *p, const char *prefix, int count, int timeout_ms)
{
	__u64 deadline = monotonic_ms() + timeout_ms;

	while (fake_count(p->b, prefix) < count) {
		if (monotonic_ms() > deadline) {
			fprintf(stderr, "A: ");
			fake_dump(p->a);
			fprintf(stderr, "B: ");
			fake_dump(p->b);
			fail_msg("no %d x '%s' at B within %d ms", count, prefix, timeout_ms);
		}
		fake_poll(p->a, 0);
		fake_poll(p->b, 10);
	}
}

/* Serves both until B has renewed count heartbeats. */
static void pair_wait_renewals(struct fake_pair *p, guint count, int timeout_ms)
{
	__u64 deadline = monotonic_ms() + timeout_ms;

	while (p->b->renewals->len < count) {
		if (monotonic_ms() > deadline) {
			fake_dump(p->b);
			fail_msg("B renewed %u heartbeats, not %u, within %d ms", p->b->renewals->len,
				 count, timeout_ms);
		}
		fake_poll(p->a, 0);
		fake_poll(p->b, 10);
	}
}

/* The longest time without a renewed heartbeat, A's then B's. */
static __u64 longest_without_renewal(struct fake_pair *p)
{
	__u64 longest = 0, last = 0;

	for (int f = 0; f < 2; f++) {
		GArray *times = f ? p->b->renewals : p->a->renewals;

		for (guint i = 0; i < times->len; i++) {
			__u64 t = g_array_index(times, __u64, i);

			if (last && t - last > longest)
				longest = t - last;
			last = t;
		}
	}
	return longest;
}

/* The records of list container for what the agent registered at A: its two
 * warm containers in slots 10 and 11, with A's tokens. */
static char *registered_at_a(void)
{
	GString *records = g_string_new(NULL);

	for (__u32 slot = FAKE_FIRST_SLOT; slot < FAKE_FIRST_SLOT + 2; slot++) {
		__u8 token[16];

		fake_token(slot, token);
		g_string_append_printf(records,
				       "container=%u function=42 backend=vm1 state=warm name=vm1-%u "
				       "deadline_in_ms=0 token=",
				       slot, slot - FAKE_FIRST_SLOT + 1);
		for (int i = 0; i < 16; i++)
			g_string_append_printf(records, "%02x", token[i]);
		g_string_append(records, "\n");
	}
	return g_string_free(records, FALSE);
}

#define PAIR_BACKEND "backend=vm1 id=1 state=up addr=10.0.0.2 mac=02:00:00:00:00:01 " \
		     "iface=veth-r1 heartbeat_ms=600 expires_in_ms=500 containers=2\n"

/* tetherd A is killed (its connections and listener close). B is another
 * router of the same fleet: it has backend vm1 registered as the agent
 * registers it, and its two containers. The agent moves both links to B at
 * once, logs the move once, takes the backend over without changing
 * anything (no container added, deleted or brought up again), heartbeats
 * there with no gap as long as the heartbeat time, and serves as before. */
static void test_agent_moves_when_tetherd_dies(void **state)
{
	struct fake_pair *p = *state;
	g_autofree char *records = registered_at_a();
	g_autofree char *moved = g_strdup_printf("moving from unix:%s to unix:%s: ",
						 p->a->socket_path, p->b->socket_path);
	__u64 killed, longest;
	__u8 reply[512];
	ssize_t len;

	p->b->backend_exists = true;
	p->b->backend_record = PAIR_BACKEND;
	p->b->list_records = records;
	pair_start(p);
	fake_wait_for(p->a, "up container", 2, 5000);
	for (__u64 until = monotonic_ms() + 500; monotonic_ms() < until;)
		fake_poll(p->a, 20);
	assert_true(p->a->renewals->len >= 2);
	assert_int_equal(p->b->connection_count, 0);

	fake_kill(p->a);
	killed = monotonic_ms();
	pair_wait_renewals(p, 1, 5000);
	fprintf(stderr, "#   A killed: first heartbeat renewed at B after %llu ms\n",
		(unsigned long long)(g_array_index(p->b->renewals, __u64, 0) - killed));
	pair_wait_renewals(p, 4, 3000);
	longest = longest_without_renewal(p);
	fprintf(stderr, "#   longest time without a renewed heartbeat, A then B: %llu ms "
		"(heartbeat_ms %d)\n", (unsigned long long)longest, PAIR_HEARTBEAT_MS);
	assert_true(longest < PAIR_HEARTBEAT_MS);

	/* The take-over, and nothing else. */
	assert_string_equal(g_ptr_array_index(p->b->requests, 0),
			    "add backend name=vm1 addr=10.0.0.2 mac=02:00:00:00:00:01 iface=veth-r1 heartbeat_ms=600");
	assert_string_equal(g_ptr_array_index(p->b->requests, 1), "list backend");
	assert_string_equal(g_ptr_array_index(p->b->requests, 2), "list container backend=vm1");
	assert_int_equal(p->b->requests->len, 3);
	assert_non_null(fake_watcher(p->b));
	expect_log(p->a, moved, 1);
	expect_log(p->a, "moving from", 1);

	/* Its containers serve as before, with A's tokens. */
	len = ask_agent(p->b, 10, 7, reply, sizeof(reply));
	check_reply(reply, len, 10, TETHER_STATUS_OK, "container=10 name=vm1-1 function=42 key=7 count=1");
	assert_int_equal(p->b->requests->len, 3);

	/* It leaves through B. */
	assert_int_equal(stop_agent(p->b), 0);
	p->a->agent = 0;
	assert_string_equal(g_ptr_array_index(p->b->requests, p->b->requests->len - 1),
			    "del backend name=vm1");
}

/* Router A is cut off from the fleet's store: it answers reads and
 * registrations, but `unavailable` to heartbeats. The agent moves to B at the
 * first one, deletes nothing at A, and does not give up; at B (a router that
 * does not know the backend) it registers everything again. */
static void test_agent_moves_on_unavailable(void **state)
{
	struct fake_pair *p = *state;
	g_autofree char *moved = g_strdup_printf(
		"moving from unix:%s to unix:%s: heartbeat backend answered unavailable: "
		"the fleet's store cannot be reached",
		p->a->socket_path, p->b->socket_path);

	p->a->unavailable = "heartbeat backend";
	p->b->next_slot = 20;
	pair_start(p);
	pair_wait_for(p, "up container", 2, 5000);
	pair_wait_renewals(p, 2, 3000);
	expect_log(p->a, moved, 1);
	expect_log(p->a, "moving from", 1);
	assert_int_equal(p->a->heartbeats, 1);
	assert_int_equal(fake_count(p->a, "del "), 0);
	assert_int_equal(fake_count(p->b, "del "), 0);
	assert_int_equal(fake_count(p->b, "add backend"), 1);
	assert_int_equal(fake_count(p->b, "add container"), 2);
	assert_int_equal(waitpid(p->a->agent, NULL, WNOHANG), 0); /* still runs */
	assert_int_equal(stop_agent(p->b), 0);
	p->a->agent = 0;
}

/* Router A stops answering (a wedged tetherd, a host gone silent): a
 * heartbeat unanswered for half the heartbeat time moves the agent to B
 * before the backend's deadline. */
static void test_agent_moves_on_silence(void **state)
{
	struct fake_pair *p = *state;
	g_autofree char *records = registered_at_a();
	__u64 muted, longest;

	p->b->backend_exists = true;
	p->b->backend_record = PAIR_BACKEND;
	p->b->list_records = records;
	pair_start(p);
	fake_wait_for(p->a, "up container", 2, 5000);
	for (__u64 until = monotonic_ms() + 500; monotonic_ms() < until;)
		fake_poll(p->a, 20);
	p->a->mute = "heartbeat backend";
	muted = monotonic_ms();
	pair_wait_renewals(p, 1, 5000);
	fprintf(stderr, "#   A silent: first heartbeat renewed at B after %llu ms\n",
		(unsigned long long)(g_array_index(p->b->renewals, __u64, 0) - muted));
	longest = longest_without_renewal(p);
	fprintf(stderr, "#   longest time without a renewed heartbeat, A then B: %llu ms "
		"(heartbeat_ms %d; a fleet's lease lasts at least 2000)\n",
		(unsigned long long)longest, PAIR_HEARTBEAT_MS);
	assert_true(longest < 2000);
	expect_log(p->a, "heartbeat backend unanswered for", 1);
	expect_log(p->a, "moving from", 1);
	assert_int_equal(p->b->requests->len, 3); /* add backend, list backend, list container */
	assert_int_equal(stop_agent(p->b), 0);
	p->a->agent = 0;
}

/* Router A holds the registration (a fleet's router still reading its
 * store holds requests): add backend unanswered for half the heartbeat time
 * moves the agent to B. */
static void test_agent_moves_when_registration_held(void **state)
{
	struct fake_pair *p = *state;
	g_autofree char *moved = g_strdup_printf(
		"moving from unix:%s to unix:%s: add backend unanswered for ", p->a->socket_path,
		p->b->socket_path);

	p->a->mute = "add backend";
	pair_start(p);
	pair_wait_for(p, "up container", 2, 5000);
	pair_wait_renewals(p, 1, 3000);
	expect_log(p->a, moved, 1);
	expect_log(p->a, "moving from", 1);
	assert_int_equal(fake_count(p->a, "add backend"), 1);
	assert_int_equal(p->a->requests->len, 1);
	assert_int_equal(stop_agent(p->b), 0);
	p->a->agent = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_full),
		cmocka_unit_test(test_function_concurrency_and_completions),
		cmocka_unit_test(test_done_and_alive_datagrams),
		cmocka_unit_test(test_siphash_vector),
		cmocka_unit_test(test_options_defaults),
		cmocka_unit_test(test_options_refused),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_options_tetherd_list),
		cmocka_unit_test(test_options_tetherd_list_refused),
		cmocka_unit_test(test_options_tls),
		cmocka_unit_test(test_rotation_rounds),
		cmocka_unit_test(test_rotation_unavailable),
		cmocka_unit_test(test_rotation_backoff_follows_heartbeat),
		cmocka_unit_test(test_token_own),
		cmocka_unit_test(test_token_foreign_slot),
		cmocka_unit_test(test_token_wrong_secret),
		cmocka_unit_test(test_token_unstamped),
		cmocka_unit_test(test_token_other_function_or_not_serving),
		cmocka_unit_test(test_request_check),
		cmocka_unit_test(test_reply_bytes),
		cmocka_unit_test(test_reply_error_keeps_header),
		cmocka_unit_test(test_counter_keeps_state),
		cmocka_unit_test(test_other_handlers),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_event_capacity_needed),
		cmocka_unit_test(test_event_others),
		cmocka_unit_test(test_container_record),
		cmocka_unit_test(test_backend_record),
		cmocka_unit_test(test_decap_options_and_record),
		cmocka_unit_test_setup_teardown(test_agent_lifecycle, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_agent_retries_unavailable, fake_setup,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_agent_takes_over_existing_backend, fake_setup,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_agent_registers_vlan, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_agent_replaces_different_backend, fake_setup,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_agent_moves_when_tetherd_dies, pair_setup,
						pair_teardown),
		cmocka_unit_test_setup_teardown(test_agent_moves_on_unavailable, pair_setup,
						pair_teardown),
		cmocka_unit_test_setup_teardown(test_agent_moves_on_silence, pair_setup,
						pair_teardown),
		cmocka_unit_test_setup_teardown(test_agent_moves_when_registration_held, pair_setup,
						pair_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
