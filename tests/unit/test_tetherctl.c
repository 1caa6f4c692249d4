// SPDX-License-Identifier: MIT
/* Unit tests of tetherctl: every command's translation from argv to a
 * request line and its usage errors, durations, tables, JSON and its
 * escaping, watch lines, drain progress; then the whole program (ctl_run)
 * against a fake tetherd on a Unix socket in a fresh /tmp directory: records,
 * an error answer, answers that arrive a byte at a time, a refused
 * connection, a broken answer, watch, and the --wait loop. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "args.h"
#include "complete.h"
#include "help.h"
#include "control/json.h"
#include "output.h"
#include "progress.h"
#include "values.h"

#include "client.h"
#include "run.h"
#include "trace.h"
#include "wait.h"
#include "watch.h"
#include "tether_version.h"

/* ---- Helpers ------------------------------------------------------------ */

/* "backend list" -> { "tetherctl", "backend", "list", NULL } */
static char **split_command(const char *command, int *argc)
{
	g_autofree char *line = g_strconcat("tetherctl", *command ? " " : "", command, NULL);
	char **argv = g_strsplit(line, " ", -1);

	*argc = (int)g_strv_length(argv);
	return argv;
}

/* The invocation points into its argv (socket path, group), so the last
 * one stays alive until the next parse. */
static char **parsed_argv;

/* Parses command; returns what ctl_parse_args returned. */
static int parse(const char *command, const char *env_socket, struct ctl_invocation *inv,
		 char *message, size_t size)
{
	int argc;

	g_strfreev(parsed_argv);
	parsed_argv = split_command(command, &argc);
	return ctl_parse_args(argc, parsed_argv, env_socket, inv, message, size);
}

static void assert_request(const char *command, const char *expected)
{
	struct ctl_invocation inv;
	char message[512] = "";

	if (parse(command, NULL, &inv, message, sizeof(message)))
		fail_msg("'%s' was refused: %s", command, message);
	assert_false(inv.help);
	assert_string_equal(inv.request, expected);
}

static void assert_usage_error(const char *command, const char *expected_part)
{
	struct ctl_invocation inv;
	char message[512] = "";

	if (!parse(command, NULL, &inv, message, sizeof(message)))
		fail_msg("'%s' was accepted as '%s'", command, inv.request);
	if (!strstr(message, expected_part))
		fail_msg("'%s': message '%s' lacks '%s'", command, message, expected_part);
}

/* Parses sample record lines into records. A parsed record points into
 * itself, so it is parsed where it will stay, never returned by value. */
static void parse_samples(struct proto_request *records, const char *const *lines, size_t n)
{
	char message[256];

	for (size_t i = 0; i < n; i++)
		if (proto_parse_record(lines[i], strlen(lines[i]), &records[i], message,
				       sizeof(message)))
			fail_msg("bad sample record '%s': %s", lines[i], message);
}

/* struct proto_request name[] = the records of the lines given. */
#define SAMPLES(name, ...)                                                          \
	static const char *const name##_lines[] = { __VA_ARGS__ };                  \
	struct proto_request name[G_N_ELEMENTS(name##_lines)];                      \
	parse_samples(name, name##_lines, G_N_ELEMENTS(name##_lines))

/* ---- Argument translation ---------------------------------------------- */

static void test_backend_commands(void **state)
{
	(void)state;
	assert_request("backend add vm1 --addr 10.1.0.2 --mac 02:00:00:00:01:01 --iface tv-vm1",
		       "add backend name=vm1 addr=10.1.0.2 mac=02:00:00:00:01:01 iface=tv-vm1\n");
	/* Keys go in the spec's order, whatever the order typed. */
	assert_request("backend add --iface=tv-vm1 --heartbeat-ms 3s --mac 02:AA:00:00:01:01 vm1 --addr 2001:db8::1",
		       "add backend name=vm1 addr=2001:db8::1 mac=02:AA:00:00:01:01 iface=tv-vm1 heartbeat_ms=3000\n");
	assert_request("backend add vm1 --addr 10.1.0.2 --mac 02:00:00:00:01:01 --iface tv-vm1 --heartbeat-ms 1500",
		       "add backend name=vm1 addr=10.1.0.2 mac=02:00:00:00:01:01 iface=tv-vm1 heartbeat_ms=1500\n");
	assert_request("backend add vm1 --vlan 100 --addr 10.1.0.2 --mac 02:00:00:00:01:01 --iface tv-vm1",
		       "add backend name=vm1 addr=10.1.0.2 mac=02:00:00:00:01:01 iface=tv-vm1 vlan=100\n");
	assert_request("backend add vm1 --addr 10.1.0.2 --mac 02:00:00:00:01:01 --iface tv-vm1 --vlan=4094 --heartbeat-ms 2s",
		       "add backend name=vm1 addr=10.1.0.2 mac=02:00:00:00:01:01 iface=tv-vm1 heartbeat_ms=2000 vlan=4094\n");
	/* Routed: the address is enough. */
	assert_request("backend add vm4 --addr 10.200.0.5 --encap vxlan --vni 0x123456",
		       "add backend name=vm4 addr=10.200.0.5 encap=vxlan vni=0x123456\n");
	assert_request("backend add vm5 --encap ipip --addr fd00:200::5 --iface eth1",
		       "add backend name=vm5 addr=fd00:200::5 encap=ipip iface=eth1\n");
	assert_request("backend del vm1", "del backend name=vm1\n");
	assert_request("backend heartbeat vm_1.a-b", "heartbeat backend name=vm_1.a-b\n");
	assert_request("backend drain vm1", "drain backend name=vm1\n");
	assert_request("backend drain vm1 --deadline 30s", "drain backend name=vm1 deadline_ms=30000\n");
	assert_request("backend list", "list backend\n");
	/* "--" lets a name begin with '-'. */
	assert_request("backend del -- -odd", "del backend name=-odd\n");
}

static void test_container_commands(void **state)
{
	(void)state;
	assert_request("container add --function 42 --backend vm1",
		       "add container function=42 backend=vm1\n");
	assert_request("container add --warm --name web-1 --backend vm1 --function 0x2A",
		       "add container function=0x2A backend=vm1 name=web-1 state=warm\n");
	assert_request("container up 17", "up container container=17\n");
	assert_request("container idle 17", "idle container container=17\n");
	assert_request("container del 0", "del container container=0\n");
	assert_request("container show 4294967295", "show container container=4294967295\n");
	assert_request("container drain 17", "drain container container=17\n");
	assert_request("container drain 17 --deadline 500ms",
		       "drain container container=17 deadline_ms=500\n");
	assert_request("container list", "list container\n");
	assert_request("container list --backend vm1", "list container backend=vm1\n");
	assert_request("container list --backend vm1 --function 18446744073709551615",
		       "list container function=18446744073709551615 backend=vm1\n");
}

static void test_other_commands(void **state)
{
	(void)state;
	assert_request("function list", "list function\n");
	assert_request("function show 42", "show function function=42\n");
	assert_request("affinity show --function 42 --key 7", "show affinity function=42 key=7\n");
	assert_request("affinity show --key 0xff --function 42",
		       "show affinity function=42 key=0xff\n");
	assert_request("affinity flush --function 42", "flush affinity function=42\n");
	assert_request("affinity flush --function 42 --key 0", "flush affinity function=42 key=0\n");
	assert_request("stats", "show stats\n");
	assert_request("fleet status", "show fleet\n");
	assert_request("backend set vm3 --functions 7,9,0x100-0x1ff",
		       "set backend name=vm3 functions=7,9,0x100-0x1ff\n");
	assert_request("backend set vm3 --functions any", "set backend name=vm3 functions=any\n");
	assert_request("watch", "watch event\n");
	assert_request("trace", "watch trace\n");
	assert_request("trace --function 0x2a --key 7 --container 12 --count 5",
		       "watch trace function=0x2a key=7 container=12\n");
	assert_request("unload", "unload tetherd\n");
	assert_request("drain container 17", "drain container container=17\n");
	assert_request("drain backend vm1 --deadline 2m", "drain backend name=vm1 deadline_ms=120000\n");
}

static void test_wait_and_targets(void **state)
{
	struct ctl_invocation inv;
	char message[256];

	(void)state;
	assert_int_equal(parse("drain container 17 --deadline 2m --wait", NULL, &inv, message,
			       sizeof(message)), 0);
	assert_string_equal(inv.request, "drain container container=17 deadline_ms=120000\n");
	assert_true(inv.wait);
	assert_string_equal(inv.target, "17");
	assert_int_equal(inv.deadline_ms, 120000);
	assert_int_equal(inv.command->wait, CTL_WAIT_CONTAINER);

	assert_int_equal(parse("backend drain vm1 --wait", NULL, &inv, message, sizeof(message)), 0);
	assert_string_equal(inv.request, "drain backend name=vm1\n");
	assert_true(inv.wait);
	assert_string_equal(inv.target, "vm1");
	assert_int_equal(inv.deadline_ms, 0);
	assert_int_equal(inv.command->wait, CTL_WAIT_BACKEND);

	assert_int_equal(parse("container drain 9", NULL, &inv, message, sizeof(message)), 0);
	assert_false(inv.wait);
}

static void test_global_options(void **state)
{
	struct ctl_invocation inv;
	char message[256];

	(void)state;
	assert_int_equal(parse("backend list", NULL, &inv, message, sizeof(message)), 0);
	assert_string_equal(inv.socket_path, "/run/tether/tetherd.sock");
	assert_false(inv.json);
	assert_int_equal(parse("backend list", "", &inv, message, sizeof(message)), 0);
	assert_string_equal(inv.socket_path, "/run/tether/tetherd.sock");
	assert_int_equal(parse("backend list", "/tmp/env.sock", &inv, message, sizeof(message)), 0);
	assert_string_equal(inv.socket_path, "/tmp/env.sock");
	assert_int_equal(parse("--socket /tmp/a.sock --json backend list", "/tmp/env.sock", &inv,
			       message, sizeof(message)), 0);
	assert_string_equal(inv.socket_path, "/tmp/a.sock");
	assert_true(inv.json);
	/* Also after the command words, and as --socket=PATH. */
	assert_int_equal(parse("backend list --json --socket=/tmp/b.sock", NULL, &inv, message,
			       sizeof(message)), 0);
	assert_string_equal(inv.socket_path, "/tmp/b.sock");
	assert_true(inv.json);
	assert_string_equal(inv.request, "list backend\n");
}

static void test_help_requests(void **state)
{
	struct ctl_invocation inv;
	char message[256];

	(void)state;
	assert_int_equal(parse("--help", NULL, &inv, message, sizeof(message)), 0);
	assert_true(inv.help);
	assert_null(inv.command);
	assert_null(inv.group);
	assert_int_equal(parse("backend --help", NULL, &inv, message, sizeof(message)), 0);
	assert_true(inv.help);
	assert_null(inv.command);
	assert_string_equal(inv.group, "backend");
	/* --help wins over the errors on the rest of the line. */
	assert_int_equal(parse("backend add -h --mac nonsense", NULL, &inv, message,
			       sizeof(message)), 0);
	assert_true(inv.help);
	assert_ptr_equal(inv.command, ctl_command_find("backend", "add"));
	assert_int_equal(parse("stats --help", NULL, &inv, message, sizeof(message)), 0);
	assert_true(inv.help);
	assert_ptr_equal(inv.command, ctl_command_find("stats", NULL));
}

static void test_every_command_has_help(void **state)
{
	g_autoptr(GString) all = g_string_new(NULL);
	struct ctl_invocation everything = { 0 };

	(void)state;
	ctl_help(all, &everything);
	for (size_t i = 0; i < ctl_command_count; i++) {
		const struct ctl_command *command = &ctl_commands[i];
		g_autoptr(GString) synopsis = g_string_new(NULL);
		g_autoptr(GString) help = g_string_new(NULL);
		struct ctl_invocation one = { .command = command, .help = true };

		ctl_synopsis(synopsis, command);
		assert_non_null(strstr(all->str, synopsis->str));
		ctl_help(help, &one);
		assert_non_null(strstr(help->str, synopsis->str));
		assert_non_null(strstr(help->str, "Request: "));
	}
}

static void test_help_text(void **state)
{
	g_autoptr(GString) help = g_string_new(NULL);
	struct ctl_invocation inv = { .command = ctl_command_find("container", "add") };

	(void)state;
	ctl_help(help, &inv);
	assert_string_equal(help->str,
			    "usage: tetherctl [--socket PATH] [--json] container add --function F --backend B [--name N] [--warm]\n"
			    "\n"
			    "add a container; prints its handle and token.\n"
			    "\n"
			    "  --function F  a function id, decimal or 0x hex\n"
			    "  --backend B   the backend it runs on\n"
			    "  --name N      a name, unique on its backend\n"
			    "  --warm        ready at once (default: starting)\n"
			    "\n"
			    "Request: add container function= backend= [name=] [state=warm]\n");
}

static void test_command_errors(void **state)
{
	struct ctl_invocation inv;
	char message[256];

	(void)state;
	assert_usage_error("", "no command given");
	assert_usage_error("frobnicate", "unknown command 'frobnicate'");
	assert_usage_error("backend", "'backend' needs one of: add, set, del, drain, heartbeat, list");
	assert_usage_error("backend frob", "unknown command 'backend frob'");
	assert_usage_error("drain", "'drain' needs one of: container, backend");
	assert_usage_error("--bogus backend list", "unknown option '--bogus'");
	assert_usage_error("backend list --all", "unknown option '--all': 'backend list' takes no options");
	assert_usage_error("container up 17 --wait", "unknown option '--wait': 'container up' takes no options");
	assert_usage_error("backend list extra", "unexpected argument 'extra' for 'backend list'");
	assert_usage_error("container up 1 2", "unexpected argument '2'");
	assert_usage_error("backend add --addr 10.1.0.2 --mac 02:00:00:00:01:01 --iface e0",
			   "missing NAME for 'backend add'");
	assert_usage_error("backend add vm1 --mac 02:00:00:00:01:01 --iface e0",
			   "missing --addr ADDR for 'backend add'");
	assert_usage_error("container add --backend vm1", "missing --function F");
	assert_usage_error("affinity show --function 1", "missing --key K");
	assert_usage_error("backend add vm1 --addr", "option --addr needs a value (ADDR)");
	assert_usage_error("container list --backend a --backend b", "option --backend given twice");
	assert_usage_error("container add --function 1 --backend b --warm=yes",
			   "option --warm takes no value");
	assert_usage_error("--socket", "option --socket needs a value (PATH)");
	assert_usage_error("--socket= stats", "--socket needs a path");

	/* The usage error still names the command, for the usage line. */
	assert_int_equal(parse("backend add vm1", NULL, &inv, message, sizeof(message)), -1);
	assert_ptr_equal(inv.command, ctl_command_find("backend", "add"));
}

static void test_value_errors(void **state)
{
	(void)state;
	const char *add = "backend add vm1 --addr 10.1.0.2 --mac 02:00:00:00:01:01 --iface";
	g_autofree char *bad_iface_colon = g_strdup_printf("%s eth0:1", add);
	g_autofree char *bad_iface_long = g_strdup_printf("%s abcdefghijklmnop", add);
	g_autofree char *bad_iface_equals = g_strdup_printf("%s a=b", add);

	assert_usage_error("backend del vm/1", "bad value 'vm/1' for 'NAME': expected a name");
	assert_usage_error("backend del abcdefghijabcdefghijabcdefghij012",
			   "expected a name of 1 to 31");
	assert_usage_error("backend add vm1 --addr 10.1.0.300 --mac 02:00:00:00:01:01 --iface e0",
			   "bad value '10.1.0.300' for '--addr': expected an IPv4 or IPv6 address");
	assert_usage_error("backend add vm1 --addr 10.1.0.3 --mac 02:00:00:00:01 --iface e0",
			   "bad value '02:00:00:00:01' for '--mac': expected a MAC address");
	assert_usage_error("backend add vm1 --addr 10.1.0.3 --mac 02-00-00-00-01-01 --iface e0",
			   "for '--mac'");
	assert_usage_error("backend add vm1 --addr 10.1.0.3 --encap gre",
			   "bad value 'gre' for '--encap': expected l2, vxlan or ipip");
	assert_usage_error("backend add vm1 --addr 10.1.0.3 --encap vxlan --vni 16777216",
			   "for '--vni': expected a VXLAN network identifier");
	assert_usage_error(bad_iface_colon, "bad value 'eth0:1' for '--iface': expected an interface name");
	assert_usage_error(bad_iface_long, "of 1 to 15 characters");
	assert_usage_error(bad_iface_equals,
			   "bad value 'a=b' for '--iface': a value must be non-empty, without spaces, '='");
	assert_usage_error("container add --function 0 --backend vm1",
			   "bad value '0' for '--function': expected a nonzero 64-bit function id");
	assert_usage_error("container add --function 18446744073709551616 --backend vm1",
			   "for '--function'");
	assert_usage_error("function show -- -1", "bad value '-1' for 'F'");
	assert_usage_error("container up x", "bad value 'x' for 'HANDLE'");
	assert_usage_error("container show 4294967296", "bad value '4294967296' for 'HANDLE'");
	assert_usage_error("affinity show --function 1 --key k1", "bad value 'k1' for '--key'");
	assert_usage_error("container drain 1 --deadline 1.5s",
			   "bad duration '1.5s' for '--deadline'");
	assert_usage_error("container drain 1 --deadline 10x", "bad duration '10x'");
	assert_usage_error("container drain 1 --deadline 0s", "--deadline must be at least 1ms");
	assert_usage_error("container drain 1 --deadline 4294968s", "--deadline '4294968s' is too long");
	assert_usage_error("backend add vm1 --addr 10.1.0.3 --mac 02:00:00:00:01:01 --iface e0 --heartbeat-ms 0",
			   "--heartbeat-ms must be at least 1ms");
	assert_usage_error("backend add vm1 --addr 10.1.0.3 --mac 02:00:00:00:01:01 --iface e0 --vlan 4095",
			   "bad value '4095' for '--vlan': expected a VLAN id from 1 to 4094, or 0 for untagged");
	assert_usage_error("backend add vm1 --addr 10.1.0.3 --mac 02:00:00:00:01:01 --iface e0 --vlan -3",
			   "bad value '-3' for '--vlan'");
	assert_usage_error("backend add vm1 --addr 10.1.0.3 --mac 02:00:00:00:01:01 --iface e0 --vlan",
			   "option --vlan needs a value (N)");
	assert_usage_error("container add --function 1 --backend vm1 --name=",
			   "bad value '' for '--name': a value must be non-empty");
}

/* Values with bytes a split on spaces cannot make. */
static void test_values_that_are_not_protocol_words(void **state)
{
	char *with_space[] = { "tetherctl", "backend", "del", "vm 1", NULL };
	char *with_newline[] = { "tetherctl", "container", "list", "--backend", "vm1\nlist", NULL };
	char *with_escape[] = { "tetherctl", "backend", "add", "vm1", "--addr", "10.1.0.2",
				"--mac", "02:00:00:00:01:01", "--iface", "e\033[2J", NULL };
	char long_path[200];
	char *with_long_socket[] = { "tetherctl", "--socket", long_path, "stats", NULL };
	struct ctl_invocation inv;
	char message[256];

	(void)state;
	assert_int_equal(ctl_parse_args(4, with_space, NULL, &inv, message, sizeof(message)), -1);
	assert_string_equal(message, "bad value 'vm 1' for 'NAME': a value must be non-empty, without spaces, '=' or control characters");
	assert_int_equal(ctl_parse_args(5, with_newline, NULL, &inv, message, sizeof(message)), -1);
	assert_string_equal(message, "bad value 'vm1?list' for '--backend': a value must be non-empty, without spaces, '=' or control characters");
	assert_int_equal(ctl_parse_args(10, with_escape, NULL, &inv, message, sizeof(message)), -1);
	assert_non_null(strstr(message, "'e?[2J'"));

	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(ctl_parse_args(4, with_long_socket, NULL, &inv, message, sizeof(message)),
			 -1);
	assert_non_null(strstr(message, "is too long: at most 107 bytes"));
}

/* ---- Durations ---------------------------------------------------------- */

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		int ok;
		__u64 ms;
	} cases[] = {
		{ "30s", 1, 30000 },   { "500ms", 1, 500 },      { "2m", 1, 120000 },
		{ "1500", 1, 1500 },   { "1h", 1, 3600000 },     { "0", 1, 0 },
		{ "007s", 1, 7000 },   { "", 0, 0 },             { "s", 0, 0 },
		{ "1.5s", 0, 0 },      { "-1", 0, 0 },           { "+1", 0, 0 },
		{ "10 s", 0, 0 },      { "10S", 0, 0 },          { "10sec", 0, 0 },
		{ "1d", 0, 0 },        { "5ms5", 0, 0 },         { " 5", 0, 0 },
		{ "18446744073709551615", 1, 18446744073709551615ull },
		{ "18446744073709551616", 0, 0 },                { "18446744073709551615s", 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		__u64 ms = 12345;
		int err = ctl_parse_duration(cases[i].text, &ms);

		if (cases[i].ok != !err)
			fail_msg("duration '%s': expected %s", cases[i].text,
				 cases[i].ok ? "accepted" : "refused");
		if (cases[i].ok)
			assert_int_equal(ms, cases[i].ms);
	}
}

/* ---- Output ------------------------------------------------------------- */

static void test_table(void **state)
{
	g_autoptr(GString) out = g_string_new(NULL);

	(void)state;
	SAMPLES(records, "backend=vm1 id=1 state=up containers=3",
		"backend=vm-two id=12 state=draining containers=0",
		/* Same keys in another order: the first record's order rules. */
		"id=3 backend=c state=down containers=100");
	ctl_output_table(out, records, 3);
	assert_string_equal(out->str, "BACKEND  ID  STATE     CONTAINERS\n"
				      "vm1      1   up        3\n"
				      "vm-two   12  draining  0\n"
				      "c        3   down      100\n");
}

static void test_table_groups_and_empty(void **state)
{
	g_autoptr(GString) out = g_string_new(NULL);

	(void)state;
	SAMPLES(records, "function=42 warm=1 starting=0", "container=17 state=warm",
		"container=18 state=draining", "part=slowpath held=12345678901");
	ctl_output_table(out, records, 0);
	assert_string_equal(out->str, "");
	ctl_output_table(out, records, 4);
	assert_string_equal(out->str, "FUNCTION  WARM  STARTING\n"
				      "42        1     0\n"
				      "\n"
				      "CONTAINER  STATE\n"
				      "17         warm\n"
				      "18         draining\n"
				      "\n"
				      "PART      HELD\n"
				      "slowpath  12345678901\n");
}

static void test_json_output(void **state)
{
	g_autoptr(GString) out = g_string_new(NULL);

	(void)state;
	SAMPLES(records,
		"backend=vm1 id=1 expires_in_ms=18446744073709551615 mac=02:00:00:00:01:01",
		"backend=007 id=0 expires_in_ms=9007199254740991 mac=x\"y\\z");
	ctl_output_json(out, records, 2, CTL_SHAPE_LIST);
	assert_string_equal(out->str,
			    "[{\"backend\":\"vm1\",\"id\":1,\"expires_in_ms\":\"18446744073709551615\",\"mac\":\"02:00:00:00:01:01\"},"
			    "{\"backend\":\"007\",\"id\":0,\"expires_in_ms\":9007199254740991,\"mac\":\"x\\\"y\\\\z\"}]\n");

	g_string_truncate(out, 0);
	ctl_output_json(out, records, 1, CTL_SHAPE_LIST);
	assert_string_equal(out->str,
			    "[{\"backend\":\"vm1\",\"id\":1,\"expires_in_ms\":\"18446744073709551615\",\"mac\":\"02:00:00:00:01:01\"}]\n");
	g_string_truncate(out, 0);
	ctl_output_json(out, records, 0, CTL_SHAPE_LIST);
	assert_string_equal(out->str, "[]\n");

	g_string_truncate(out, 0);
	ctl_output_json(out, records, 1, CTL_SHAPE_SINGLE);
	assert_string_equal(out->str,
			    "{\"backend\":\"vm1\",\"id\":1,\"expires_in_ms\":\"18446744073709551615\",\"mac\":\"02:00:00:00:01:01\"}\n");
	g_string_truncate(out, 0);
	ctl_output_json(out, records, 0, CTL_SHAPE_SINGLE);
	assert_string_equal(out->str, "{\"ok\":true}\n");
	g_string_truncate(out, 0);
	ctl_output_json(out, records, 2, CTL_SHAPE_SINGLE);
	assert_true(out->str[0] == '[');
}

/* One string value as ctl_json_append writes it (in an array: json-glib
 * builds arrays and objects only), the brackets taken off. */
static char *json_of_string(const char *text)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	GString *out = g_string_new(NULL);

	json_builder_begin_array(b);
	ctl_json_add_string(b, text);
	json_builder_end_array(b);
	ctl_json_append(out, b);
	assert_true(out->len >= 2 && out->str[0] == '[' && out->str[out->len - 1] == ']');
	g_string_truncate(out, out->len - 1);
	g_string_erase(out, 0, 1);
	return g_string_free(out, FALSE);
}

#define EXPECT_JSON_STRING(text, json)                          \
	do {                                                    \
		g_autofree char *got = json_of_string(text);    \
		assert_string_equal(got, json);                 \
	} while (0)

static void test_json_escaping(void **state)
{
	(void)state;
	EXPECT_JSON_STRING("plain", "\"plain\"");
	EXPECT_JSON_STRING("q\"b\\s/", "\"q\\\"b\\\\s/\"");
	/* json-glib's escapes; 0x1f too, which json-glib 1.6 leaves raw. */
	EXPECT_JSON_STRING("\n\r\t\b\f\x01\x1f\x7f", "\"\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\"");
	/* UTF-8 as it is; what is not UTF-8 taken as Latin-1. */
	EXPECT_JSON_STRING("caf\xc3\xa9", "\"caf\xc3\xa9\"");
	EXPECT_JSON_STRING("caf\xe9", "\"caf\xc3\xa9\"");
	EXPECT_JSON_STRING("", "\"\"");
}

/* Every byte but NUL, in a string that is not UTF-8: the output is JSON a
 * parser takes, giving back each byte as the code point of its value. */
static void test_json_every_byte(void **state)
{
	char text[256], *json;
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;

	(void)state;
	for (int i = 1; i < 256; i++)
		text[i - 1] = (char)i;
	text[255] = '\0';
	json = json_of_string(text);
	for (const char *p = json; *p; p++)
		assert_true((unsigned char)*p >= 0x20); /* no raw control character */
	assert_true(json_parser_load_from_data(parser, json, -1, &error));
	const char *back = json_node_get_string(json_parser_get_root(parser));
	const char *p = back;

	for (gunichar c = 1; c < 256; c++, p = g_utf8_next_char(p))
		assert_int_equal(g_utf8_get_char(p), c);
	assert_int_equal(*p, '\0');
	g_free(json);
}

static void test_json_numbers(void **state)
{
	(void)state;
	assert_true(ctl_json_is_number("0"));
	assert_true(ctl_json_is_number("42"));
	assert_true(ctl_json_is_number("9007199254740991"));  /* 2^53 - 1 */
	assert_false(ctl_json_is_number("9007199254740992")); /* 2^53 */
	assert_false(ctl_json_is_number("99999999999999999"));
	assert_false(ctl_json_is_number("18446744073709551615"));
	assert_false(ctl_json_is_number("007"));
	assert_false(ctl_json_is_number("00"));
	assert_false(ctl_json_is_number(""));
	assert_false(ctl_json_is_number("-1"));
	assert_false(ctl_json_is_number("1e3"));
	assert_false(ctl_json_is_number("0x10"));
	assert_false(ctl_json_is_number("1.5"));
}

static void test_event_lines(void **state)
{
	struct timespec when = { .tv_sec = 1700000000, .tv_nsec = 123456789 };
	g_autoptr(GString) out = g_string_new(NULL);

	(void)state;
	SAMPLES(events, "event=container_up container=17 function=42 backend=vm1",
		"note=\"x\"");
	const struct proto_request *event = &events[0], *other = &events[1];
	setenv("TZ", "UTC", 1);
	tzset();
	ctl_output_event(out, event, &when, false);
	assert_string_equal(out->str,
			    "2023-11-14 22:13:20.123 container_up container=17 function=42 backend=vm1\n");
	g_string_truncate(out, 0);
	ctl_output_event(out, event, &when, true);
	assert_string_equal(out->str,
			    "{\"event\":\"container_up\",\"container\":17,\"function\":42,\"backend\":\"vm1\"}\n");
	g_string_truncate(out, 0);
	ctl_output_event(out, other, &when, false);
	assert_string_equal(out->str, "2023-11-14 22:13:20.123 note=\"x\"\n");
}

static void test_trace_args_and_lines(void **state)
{
	struct ctl_invocation inv;
	char message[512];
	g_autoptr(GString) out = g_string_new(NULL);

	(void)state;
	assert_int_equal(parse("trace --count 3", NULL, &inv, message, sizeof(message)), 0);
	assert_int_equal(inv.count, 3);
	assert_int_equal(parse("trace", NULL, &inv, message, sizeof(message)), 0);
	assert_int_equal(inv.count, 0);
	assert_usage_error("trace --count 0", "--count 0 would print nothing");
	assert_usage_error("trace --count many", "--count");
	assert_usage_error("trace --function 0", "--function");
	assert_usage_error("trace --container -1", "--container");
	assert_usage_error("trace --colour red", "--colour");

	SAMPLES(records, "trace=forward reason=token_miss,key_new time_us=1700000000123456 cpu=1 "
			 "function=42 key=7 container=12 generation=3 backend=vm1",
		"trace=malformed reason=malformed check=magic time_us=1700000000000001 cpu=0");
	setenv("TZ", "UTC", 1);
	tzset();
	ctl_trace_line(out, &records[0]);
	assert_string_equal(out->str, "22:13:20.123456 forward token_miss,key_new cpu=1 function=42 "
				      "key=7 container=12 generation=3 backend=vm1\n");
	g_string_truncate(out, 0);
	ctl_trace_line(out, &records[1]);
	assert_string_equal(out->str,
			    "22:13:20.000001 malformed malformed check=magic cpu=0\n");
}

/* ---- Drain progress ----------------------------------------------------- */

static void test_progress_rate(void **state)
{
	struct ctl_progress p = { 0 };

	(void)state;
	assert_int_equal(ctl_progress_rate(&p), -1);
	ctl_progress_add(&p, 1000, 100);
	assert_int_equal(ctl_progress_rate(&p), -1);
	ctl_progress_add(&p, 1250, 110);
	assert_int_equal(ctl_progress_rate(&p), 40); /* 10 in 250 ms */
	ctl_progress_add(&p, 1500, 120);
	ctl_progress_add(&p, 1750, 130);
	ctl_progress_add(&p, 2000, 142);
	assert_int_equal(ctl_progress_rate(&p), 42); /* since the sample at 1000 */
	for (int i = 1; i <= 40; i++)
		ctl_progress_add(&p, 2000 + 250 * i, 142 + 5 * i);
	assert_int_equal(ctl_progress_rate(&p), 20);
	/* A counter that went back counts from zero. */
	ctl_progress_add(&p, 12250, 3);
	assert_true(ctl_progress_rate(&p) >= 0);
}

static void test_progress_lines(void **state)
{
	g_autoptr(GString) out = g_string_new(NULL);

	(void)state;
	SAMPLES(singles,
		"container=17 function=42 backend=vm1 state=draining name=_ deadline_in_ms=8100 token=00 packets=9 bytes=1 affinities=3",
		"container=17 state=draining affinities=1", "container=17");
	SAMPLES(containers, "container=1 state=draining deadline_in_ms=5000",
		"container=2 state=starting deadline_in_ms=0",
		"container=3 state=draining deadline_in_ms=5200",
		"container=4 state=draining deadline_in_ms=18446744073709551615");
	const struct proto_request *draining = &singles[0], *one = &singles[1], *bare = &singles[2];

	ctl_progress_container(out, "17", draining, 42, 8100);
	assert_string_equal(out->str,
			    "container 17 draining: 42 packets in the last second, 3 affinities left, deadline in 8.1 s");
	g_string_truncate(out, 0);
	ctl_progress_container(out, "17", one, 1, -1);
	assert_string_equal(out->str,
			    "container 17 draining: 1 packet in the last second, 1 affinity left");
	g_string_truncate(out, 0);
	ctl_progress_container(out, "17", bare, -1, 950);
	assert_string_equal(out->str, "container 17 present: deadline in 0.9 s");

	g_string_truncate(out, 0);
	ctl_progress_backend(out, "vm1", containers, 3, 4999);
	assert_string_equal(out->str,
			    "backend vm1 draining: 3 containers left (2 draining, 1 starting), deadline in 4.9 s");
	g_string_truncate(out, 0);
	ctl_progress_backend(out, "vm1", containers, 1, -1);
	assert_string_equal(out->str, "backend vm1 draining: 1 container left (1 draining)");

	assert_int_equal(ctl_progress_deadline_in(draining, 1), 8100);
	assert_int_equal(ctl_progress_deadline_in(containers, 4), 5200);
	assert_int_equal(ctl_progress_deadline_in(&containers[1], 1), -1);
	assert_int_equal(ctl_progress_deadline_in(&containers[3], 1), -1);
}

/* ---- A fake tetherd ----------------------------------------------------- */

/* Answers each connection's first line with the next reply (the last one
 * over and over once they run out), then closes it; records what it got. */
struct fake_tetherd {
	char dir[64];
	char path[108];
	int listen_fd;
	pthread_t thread;
	const char *const *replies;
	size_t reply_count;
	bool byte_at_a_time; /* send answers one byte per write */
	bool stop;
	GPtrArray *requests;
};

static void send_reply(int fd, const char *reply, bool byte_at_a_time)
{
	size_t len = strlen(reply);

	for (size_t sent = 0; sent < len;) {
		size_t chunk = byte_at_a_time ? 1 : len - sent;
		ssize_t n = send(fd, reply + sent, chunk, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		sent += n;
		if (byte_at_a_time)
			usleep(200);
	}
}

static char *read_request(int fd)
{
	GString *line = g_string_new(NULL);
	char c;

	while (read(fd, &c, 1) == 1) {
		g_string_append_c(line, c);
		if (c == '\n')
			break;
	}
	return g_string_free(line, FALSE);
}

static void *fake_tetherd_run(void *arg)
{
	struct fake_tetherd *f = arg;

	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd = { .fd = f->listen_fd, .events = POLLIN };

		if (poll(&pfd, 1, 20) <= 0)
			continue;

		int fd = accept(f->listen_fd, NULL, NULL);

		if (fd < 0)
			continue;

		size_t n = f->requests->len;
		const char *reply = f->replies[MIN(n, f->reply_count - 1)];

		g_ptr_array_add(f->requests, read_request(fd));
		send_reply(fd, reply, f->byte_at_a_time);
		close(fd);
	}
	return NULL;
}

static void fake_tetherd_start(struct fake_tetherd *f, const char *const *replies, size_t count)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	f->replies = replies;
	f->reply_count = count;
	f->stop = false;
	f->requests = g_ptr_array_new_with_free_func(g_free);
	strcpy(f->dir, "/tmp/tetherctl-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/tetherd.sock", f->dir);
	strcpy(addr.sun_path, f->path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(f->listen_fd, 8), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_tetherd_run, f), 0);
}

static void fake_tetherd_stop(struct fake_tetherd *f)
{
	__atomic_store_n(&f->stop, true, __ATOMIC_RELEASE);
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	unlink(f->path);
	rmdir(f->dir);
}

static void fake_tetherd_free(struct fake_tetherd *f)
{
	g_ptr_array_free(f->requests, TRUE);
}

/* Runs tetherctl with --socket at the fake; its output in *out and *err. */
struct run_result {
	int status;
	char *out, *err;
};

static struct run_result run_tetherctl(const char *socket_path, const char *command)
{
	g_autofree char *line = g_strdup_printf("--socket %s %s", socket_path, command);
	struct run_result r;
	size_t out_len, err_len;
	int argc;
	char **argv = split_command(line, &argc);
	FILE *out = open_memstream(&r.out, &out_len);
	FILE *err = open_memstream(&r.err, &err_len);

	assert_non_null(out);
	assert_non_null(err);
	r.status = ctl_run(argc, argv, NULL, out, err);
	fclose(out);
	fclose(err);
	g_strfreev(argv);
	return r;
}

/* text holds prefix followed by "N.N s" with N.N in [low, high]. */
static void assert_seconds_in(const char *text, const char *prefix, double low, double high)
{
	const char *at = strstr(text, prefix);
	double seconds;

	if (!at)
		fail_msg("'%s' lacks '%s'", text, prefix);
	assert_int_equal(sscanf(at + strlen(prefix), "%lf s", &seconds), 1);
	if (seconds < low || seconds > high)
		fail_msg("%.1f s is not within [%.1f, %.1f] in '%s'", seconds, low, high, text);
}

static void run_result_free(struct run_result *r)
{
	free(r->out);
	free(r->err);
}

static void write_text(int fd, const char *text)
{
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

/* ctl_read_answer over a socketpair: lines split across writes, and the
 * timeout when the rest never comes. */
static void test_read_answer_in_pieces(void **state)
{
	int fds[2];
	struct ctl_conn conn = { .path = "socketpair" };
	struct ctl_answer answer;
	char message[256];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	conn.fd = fds[0];
	ctl_answer_init(&answer);
	write_text(fds[1], "o");
	write_text(fds[1], "k\ncontainer=1");
	write_text(fds[1], "7 state=warm\nflushed=3\n");
	write_text(fds[1], "\nleft over");
	assert_int_equal(ctl_read_answer(&conn, ctl_now_ms() + 1000, &answer, message,
					 sizeof(message)), 0);
	assert_true(answer.ok);
	assert_int_equal(answer.count, 2);
	assert_string_equal(proto_get(&answer.records[0], "container"), "17");
	assert_string_equal(proto_get(&answer.records[0], "state"), "warm");
	assert_string_equal(proto_get(&answer.records[1], "flushed"), "3");
	ctl_answer_free(&answer);

	/* "left over" has no newline yet, and nothing more comes. */
	__u64 started = ctl_now_ms();

	ctl_answer_init(&answer);
	assert_int_equal(ctl_read_answer(&conn, started + 100, &answer, message, sizeof(message)),
			 -1);
	assert_true(ctl_now_ms() - started >= 100);
	assert_string_equal(message, "no answer from tetherd on socketpair within 10 s");
	ctl_answer_free(&answer);
	close(fds[0]);
	close(fds[1]);
}

static void test_ok_with_records(void **state)
{
	static const char *const replies[] = {
		"ok\nbackend=vm1 id=1 state=up containers=3\nbackend=vm2 id=2 state=down containers=0\n\n",
	};
	struct fake_tetherd f = {};

	(void)state;
	fake_tetherd_start(&f, replies, 1);
	struct run_result table = run_tetherctl(f.path, "backend list");
	struct run_result json = run_tetherctl(f.path, "--json backend list");

	fake_tetherd_stop(&f);
	assert_int_equal(table.status, 0);
	assert_string_equal(table.out, "BACKEND  ID  STATE  CONTAINERS\n"
				       "vm1      1   up     3\n"
				       "vm2      2   down   0\n");
	assert_string_equal(table.err, "");
	assert_int_equal(json.status, 0);
	assert_string_equal(json.out,
			    "[{\"backend\":\"vm1\",\"id\":1,\"state\":\"up\",\"containers\":3},"
			    "{\"backend\":\"vm2\",\"id\":2,\"state\":\"down\",\"containers\":0}]\n");
	assert_int_equal(f.requests->len, 2);
	assert_string_equal(g_ptr_array_index(f.requests, 0), "list backend\n");
	run_result_free(&table);
	run_result_free(&json);
	fake_tetherd_free(&f);
}

static void test_bare_ok(void **state)
{
	static const char *const replies[] = { "ok\n\n" };
	struct fake_tetherd f = {};

	(void)state;
	fake_tetherd_start(&f, replies, 1);
	struct run_result table = run_tetherctl(f.path, "container up 17");
	struct run_result json = run_tetherctl(f.path, "container up 17 --json");

	fake_tetherd_stop(&f);
	assert_int_equal(table.status, 0);
	assert_string_equal(table.out, "");
	assert_int_equal(json.status, 0);
	assert_string_equal(json.out, "{\"ok\":true}\n");
	assert_string_equal(g_ptr_array_index(f.requests, 0), "up container container=17\n");
	run_result_free(&table);
	run_result_free(&json);
	fake_tetherd_free(&f);
}

static void test_error_answer(void **state)
{
	static const char *const replies[] = { "error not_found: no backend 'vm9'\n\n" };
	struct fake_tetherd f = {};

	(void)state;
	fake_tetherd_start(&f, replies, 1);
	struct run_result r = run_tetherctl(f.path, "backend del vm9");

	fake_tetherd_stop(&f);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "tetherctl: not_found: no backend 'vm9'\n");
	run_result_free(&r);
	fake_tetherd_free(&f);
}

static void test_answer_a_byte_at_a_time(void **state)
{
	static const char *const replies[] = {
		"ok\ncontainer=17 token=00112233445566778899aabbccddeeff state=warm\n\n",
	};
	struct fake_tetherd f = { .byte_at_a_time = true };

	(void)state;
	fake_tetherd_start(&f, replies, 1);
	struct run_result r = run_tetherctl(f.path, "--json container add --function 7 --backend vm1 --warm");

	fake_tetherd_stop(&f);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out,
			    "{\"container\":17,\"token\":\"00112233445566778899aabbccddeeff\",\"state\":\"warm\"}\n");
	assert_string_equal(g_ptr_array_index(f.requests, 0),
			    "add container function=7 backend=vm1 state=warm\n");
	run_result_free(&r);
	fake_tetherd_free(&f);
}

static void test_broken_answers(void **state)
{
	g_autofree char *long_value = g_strnfill(PROTO_LINE_MAX, 'x');
	g_autofree char *long_line = g_strdup_printf("ok\nk=%s\n\n", long_value);
	const char *const replies[] = {
		"hello\n\n",
		"ok\nnot a record\n\n",
		"ok\nbackend=vm1\n", /* closed before the empty line */
		long_line,
	};
	struct fake_tetherd f = {};

	(void)state;
	fake_tetherd_start(&f, replies, 4);
	struct run_result garbage = run_tetherctl(f.path, "backend list");
	struct run_result bad_record = run_tetherctl(f.path, "backend list");
	struct run_result cut = run_tetherctl(f.path, "backend list");
	struct run_result too_long = run_tetherctl(f.path, "backend list");

	fake_tetherd_stop(&f);
	assert_int_equal(garbage.status, 1);
	assert_string_equal(garbage.err,
			    "tetherctl: tetherd sent 'hello' where tetherctl expected 'ok' or 'error CODE: message'\n");
	assert_int_equal(bad_record.status, 1);
	assert_string_equal(bad_record.err,
			    "tetherctl: tetherd sent a record tetherctl cannot read: word 1 'not' is not key=value\n");
	assert_int_equal(cut.status, 1);
	assert_string_equal(cut.err,
			    "tetherctl: tetherd closed the connection before the end of its answer\n");
	assert_string_equal(cut.out, "");
	assert_int_equal(too_long.status, 1);
	assert_string_equal(too_long.err, "tetherctl: tetherd sent a line longer than 1024 bytes\n");
	run_result_free(&garbage);
	run_result_free(&bad_record);
	run_result_free(&cut);
	run_result_free(&too_long);
	fake_tetherd_free(&f);
}

static void test_cannot_connect(void **state)
{
	char dir[] = "/tmp/tetherctl-test-XXXXXX";
	g_autofree char *path = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = g_strdup_printf("%s/none.sock", dir);

	struct run_result r = run_tetherctl(path, "stats");
	g_autofree char *expected = g_strdup_printf(
		"tetherctl: cannot connect to %s: No such file or directory (is tetherd running? --socket or TETHER_SOCKET select another)\n",
		path);

	rmdir(dir);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.err, expected);
	run_result_free(&r);
}

static void test_usage_error_exit_status(void **state)
{
	struct run_result r = run_tetherctl("/nonexistent/tetherd.sock", "backend del vm/1");

	(void)state;
	assert_int_equal(r.status, 2);
	assert_string_equal(r.err,
			    "tetherctl: bad value 'vm/1' for 'NAME': expected a name of 1 to 31 letters, digits, '.', '_' or '-'\n"
			    "usage: tetherctl [--socket PATH] [--json] backend del NAME\n");
	assert_string_equal(r.out, "");
	run_result_free(&r);

	r = run_tetherctl("/nonexistent/tetherd.sock", "backend --help");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "backend add|set|del|drain|heartbeat|list [ARGS]"));
	run_result_free(&r);
}

/* What `tetherctl __complete WORDS` prints for the words of command (split at
 * spaces; a trailing space starts a new, empty word). */
static char *completions(const char *command)
{
	g_auto(GStrv) words = g_strsplit(command, " ", -1);
	GString *out = g_string_new(NULL);

	ctl_complete(out, (int)g_strv_length(words), words);
	return g_string_free(out, FALSE);
}

static void assert_completions(const char *command, const char *expected)
{
	g_autofree char *got = completions(command);

	if (strcmp(got, expected))
		fail_msg("completing '%s': expected '%s', got '%s'", command, expected, got);
}

/* Completion reads the table: every command's words complete, and a
 * command's options, the global ones, and nothing where a value is due. */
static void test_completion(void **state)
{
	(void)state;
	assert_completions("back", "backend\n");
	assert_completions("", "backend\ncontainer\nfunction\naffinity\ndrain\nfleet\nstats\nwatch\n"
			       "trace\nunload\n");
	assert_completions("trace --", "--function\n--key\n--container\n--count\n--socket\n--json\n"
				       "--help\n");
	assert_completions("trace --count ", "");
	assert_completions("backend ", "add\nset\ndel\ndrain\nheartbeat\nlist\n");
	assert_completions("backend d", "del\ndrain\n");
	assert_completions("-", "--socket\n--json\n--help\n--version\n");
	assert_completions("--socket /run/x.sock co", "container\n");
	assert_completions("--json backend add vm1 --",
			   "--addr\n--encap\n--mac\n--iface\n--vni\n--heartbeat-ms\n"
			   "--vlan\n--functions\n--socket\n--help\n");
	assert_completions("backend add vm1 --addr 10.0.0.1 --m", "--mac\n");
	assert_completions("container drain --w", "--wait\n");
	/* Values: nothing to offer (the shell completes --socket's as a file). */
	assert_completions("backend add vm1 --addr ", "");
	assert_completions("--socket ", "");
	assert_completions("backend del ", "");
	assert_completions("frobnicate ", "");
	assert_completions("backend frob ", "");
	assert_completions("stats ", "");

	/* Every command of the table, by its words. */
	for (size_t i = 0; i < ctl_command_count; i++) {
		const struct ctl_command *c = &ctl_commands[i];
		g_autofree char *first = completions(c->words[0]);
		g_autofree char *line = g_strdup_printf("%s\n", c->words[0]);

		assert_non_null(strstr(first, line));
		if (c->words[1]) {
			g_autofree char *typed = g_strdup_printf("%s ", c->words[0]);
			g_autofree char *second = completions(typed);
			g_autofree char *word = g_strdup_printf("%s\n", c->words[1]);

			assert_non_null(strstr(second, word));
		}
	}

	/* Through ctl_run, as the shell calls it: never a request, never an error. */
	char *const argv[] = { "tetherctl", "__complete", "container", "s", NULL };
	struct run_result r;
	size_t out_len, err_len;
	FILE *out = open_memstream(&r.out, &out_len), *err = open_memstream(&r.err, &err_len);

	assert_int_equal(ctl_run(4, argv, "/nonexistent/tetherd.sock", out, err), 0);
	fclose(out);
	fclose(err);
	assert_string_equal(r.out, "show\n");
	assert_string_equal(r.err, "");
	run_result_free(&r);
}

/* --version prints "tetherctl VERSION", sends nothing, exits 0; it comes
 * before the command, as the other global options do. */
static void test_version(void **state)
{
	struct ctl_invocation inv;
	char message[256] = "";
	struct run_result r = run_tetherctl("/nonexistent/tetherd.sock", "--version");

	(void)state;
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "tetherctl " TETHER_RELEASE_VERSION "\n");
	assert_string_equal(r.err, "");
	run_result_free(&r);

	assert_int_equal(parse("--version", NULL, &inv, message, sizeof(message)), 0);
	assert_true(inv.version);
	assert_null(inv.command);
	assert_int_equal(parse("--json --version", NULL, &inv, message, sizeof(message)), 0);
	assert_true(inv.version);
	/* After the command it is no option of the command's. */
	assert_int_equal(parse("backend list --version", NULL, &inv, message, sizeof(message)), -1);
	assert_non_null(strstr(message, "unknown option '--version'"));
}

static void test_watch(void **state)
{
	static const char *const replies[] = {
		"ok\nevent=backend_up backend=vm1\nnot an event\nevent=capacity_needed function=42 waiting=3\n",
	};
	struct fake_tetherd f = {};

	(void)state;
	fake_tetherd_start(&f, replies, 1);
	struct run_result r = run_tetherctl(f.path, "--json watch");

	fake_tetherd_stop(&f);
	/* The stream ends only when tetherd closes it: a failure. */
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "{\"event\":\"backend_up\",\"backend\":\"vm1\"}\n"
				   "{\"event\":\"capacity_needed\",\"function\":42,\"waiting\":3}\n");
	assert_non_null(strstr(r.err, "skipping an event tetherctl cannot read"));
	assert_non_null(strstr(r.err, "tetherctl: tetherd closed the connection\n"));
	assert_string_equal(g_ptr_array_index(f.requests, 0), "watch event\n");
	run_result_free(&r);
	fake_tetherd_free(&f);
}

static void test_wait_until_gone(void **state)
{
	static const char *const replies[] = {
		"ok\n\n",
		"ok\ncontainer=17 state=draining deadline_in_ms=9000 packets=100 affinities=3\n\n",
		"ok\ncontainer=17 state=draining deadline_in_ms=8750 packets=150 affinities=1\n\n",
		"error not_found: no container 17\n\n",
	};
	struct fake_tetherd f = {};

	(void)state;
	fake_tetherd_start(&f, replies, 4);
	struct run_result r = run_tetherctl(f.path, "drain container 17 --wait");

	fake_tetherd_stop(&f);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "");
	assert_int_equal(f.requests->len, 4);
	assert_string_equal(g_ptr_array_index(f.requests, 0), "drain container container=17\n");
	for (guint i = 1; i < 4; i++)
		assert_string_equal(g_ptr_array_index(f.requests, i),
				    "show container container=17\n");
	/* The first progress line comes at once; the next a second later. */
	assert_seconds_in(r.err, "container 17 draining: 3 affinities left, deadline in ", 8.5, 9.0);
	assert_non_null(strstr(r.err, "container 17 is gone: the drain is over\n"));
	run_result_free(&r);
	fake_tetherd_free(&f);
}

/* --deadline counts from the drain request when tetherd tells no deadline. */
static void test_wait_deadline_passes(void **state)
{
	static const char *const replies[] = {
		"ok\n\n",
		"ok\ncontainer=17 state=draining packets=5 affinities=2\n\n",
	};
	struct fake_tetherd f = {};

	(void)state;
	fake_tetherd_start(&f, replies, 2);
	__u64 started = ctl_now_ms();
	struct run_result r = run_tetherctl(f.path, "container drain 17 --deadline 300ms --wait");
	__u64 took = ctl_now_ms() - started;

	fake_tetherd_stop(&f);
	assert_int_equal(r.status, 1);
	assert_true(took >= 300 && took < 2000);
	assert_string_equal(g_ptr_array_index(f.requests, 0),
			    "drain container container=17 deadline_ms=300\n");
	assert_non_null(strstr(r.err, "tetherctl: the deadline passed with work left: container 17 draining: 0 packets in the last second, 2 affinities left, deadline in 0.0 s\n"));
	run_result_free(&r);
	fake_tetherd_free(&f);
}

/* The deadline tetherd tells wins: here it has passed at the second poll. */
static void test_wait_deadline_told_by_tetherd(void **state)
{
	static const char *const replies[] = {
		"ok\n\n",
		"ok\ncontainer=17 state=draining deadline_in_ms=60000 packets=5 affinities=2\n\n",
		"ok\ncontainer=17 state=draining deadline_in_ms=0 packets=5 affinities=2\n\n",
		/* still there after the grace that tetherd's tick needs */
		"ok\ncontainer=17 state=draining deadline_in_ms=0 packets=5 affinities=2\n\n",
	};
	struct fake_tetherd f = {};

	(void)state;
	fake_tetherd_start(&f, replies, 4);
	struct run_result r = run_tetherctl(f.path, "drain container 17 --wait");

	fake_tetherd_stop(&f);
	assert_int_equal(r.status, 1);
	/* polls at the deadline, a period on, and at the end of the grace */
	assert_int_equal(f.requests->len, 5);
	assert_seconds_in(r.err, "container 17 draining: 2 affinities left, deadline in ", 59.5, 60.0);
	assert_non_null(strstr(r.err, "tetherctl: the deadline passed with work left: container 17 draining: "));
	assert_non_null(strstr(r.err, "2 affinities left, deadline in 0.0 s\n"));
	run_result_free(&r);
	fake_tetherd_free(&f);
}

static void test_wait_for_backend(void **state)
{
	static const char *const replies[] = {
		"ok\n\n",
		"ok\ncontainer=1 state=draining deadline_in_ms=4000\ncontainer=2 state=starting deadline_in_ms=0\n\n",
		"ok\n\n",
	};
	struct fake_tetherd f = {};

	(void)state;
	fake_tetherd_start(&f, replies, 3);
	struct run_result r = run_tetherctl(f.path, "drain backend vm1 --wait --deadline 5s");

	fake_tetherd_stop(&f);
	assert_int_equal(r.status, 0);
	assert_int_equal(f.requests->len, 3);
	assert_string_equal(g_ptr_array_index(f.requests, 0),
			    "drain backend name=vm1 deadline_ms=5000\n");
	assert_string_equal(g_ptr_array_index(f.requests, 1), "list container backend=vm1\n");
	assert_seconds_in(r.err, "backend vm1 draining: 2 containers left (1 draining, 1 starting), deadline in ",
			  3.5, 4.0);
	assert_non_null(strstr(r.err, "backend vm1 has no container left: the drain is over\n"));
	run_result_free(&r);
	fake_tetherd_free(&f);
}

static void test_wait_refused_drain(void **state)
{
	static const char *const replies[] = {
		"error invalid_transition: container 17 is gone\n\n",
	};
	struct fake_tetherd f = {};

	(void)state;
	fake_tetherd_start(&f, replies, 1);
	struct run_result r = run_tetherctl(f.path, "drain container 17 --wait");

	fake_tetherd_stop(&f);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.err, "tetherctl: invalid_transition: container 17 is gone\n");
	/* No polling after a refused drain. */
	assert_int_equal(f.requests->len, 1);
	run_result_free(&r);
	fake_tetherd_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_commands),
		cmocka_unit_test(test_container_commands),
		cmocka_unit_test(test_other_commands),
		cmocka_unit_test(test_wait_and_targets),
		cmocka_unit_test(test_global_options),
		cmocka_unit_test(test_help_requests),
		cmocka_unit_test(test_every_command_has_help),
		cmocka_unit_test(test_help_text),
		cmocka_unit_test(test_command_errors),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_values_that_are_not_protocol_words),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_table_groups_and_empty),
		cmocka_unit_test(test_json_output),
		cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_json_every_byte),
		cmocka_unit_test(test_json_numbers),
		cmocka_unit_test(test_event_lines),
		cmocka_unit_test(test_progress_rate),
		cmocka_unit_test(test_progress_lines),
		cmocka_unit_test(test_read_answer_in_pieces),
		cmocka_unit_test(test_ok_with_records),
		cmocka_unit_test(test_bare_ok),
		cmocka_unit_test(test_error_answer),
		cmocka_unit_test(test_answer_a_byte_at_a_time),
		cmocka_unit_test(test_broken_answers),
		cmocka_unit_test(test_cannot_connect),
		cmocka_unit_test(test_usage_error_exit_status),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_completion),
		cmocka_unit_test(test_trace_args_and_lines),
		cmocka_unit_test(test_watch),
		cmocka_unit_test(test_wait_until_gone),
		cmocka_unit_test(test_wait_deadline_passes),
		cmocka_unit_test(test_wait_deadline_told_by_tetherd),
		cmocka_unit_test(test_wait_for_backend),
		cmocka_unit_test(test_wait_refused_drain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
