// SPDX-License-Identifier: MIT
/* Unit tests of the control protocol library (docs/protocol.md): every
 * rejection with its code and a message naming the offending word, the line
 * and argument limits, the typed getters, the response writer and its
 * escaping, round trips from writer to parser, and a seeded fuzz loop that
 * checks the parser against an independent reading of the spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/protocol.h"

#define MESSAGE_SIZE 512

/* ---- Helpers ---------------------------------------------------------- */

static struct proto_request *parse_ok(const char *line)
{
	static struct proto_request req;
	char message[MESSAGE_SIZE] = "";
	enum proto_error err = proto_parse_line(line, strlen(line), &req, message, sizeof(message));

	if (err != PROTO_OK)
		fail_msg("'%s' rejected: %s", line, message);
	return &req;
}

/* The line is rejected as a bad request with a message containing needle. */
static void check_rejected_len(const char *line, size_t len, const char *needle)
{
	struct proto_request req;
	char message[MESSAGE_SIZE] = "";
	enum proto_error err = proto_parse_line(line, len, &req, message, sizeof(message));

	if (err != PROTO_BAD_REQUEST || !strstr(message, needle))
		fail_msg("'%.*s': got %s \"%s\", expected bad_request naming \"%s\"", (int)len, line,
			 proto_error_code(err), message, needle);
	assert_null(req.verb);
	assert_null(req.noun);
	assert_int_equal(req.arg_count, 0);
}

static void check_rejected(const char *line, const char *needle)
{
	check_rejected_len(line, strlen(line), needle);
}

static void check_message(const char *message, const char *needle)
{
	if (!strstr(message, needle))
		fail_msg("message \"%s\" does not contain \"%s\"", message, needle);
}

/* A line of exactly n bytes before its terminator: "set x v=aaa...". */
static char *line_of_length(size_t n, const char *terminator)
{
	char *line = malloc(n + strlen(terminator) + 1);

	assert_non_null(line);
	assert_true(n >= 9);
	memcpy(line, "set x v=", 8);
	memset(line + 8, 'a', n - 8);
	strcpy(line + n, terminator);
	return line;
}

/* ---- Error codes ------------------------------------------------------ */

static void test_error_codes(void **state)
{
	(void)state;
	assert_string_equal(proto_error_code(PROTO_OK), "ok");
	assert_string_equal(proto_error_code(PROTO_BAD_REQUEST), "bad_request");
	assert_string_equal(proto_error_code(PROTO_UNKNOWN_VERB), "unknown_verb");
	assert_string_equal(proto_error_code(PROTO_MISSING_ARGUMENT), "missing_argument");
	assert_string_equal(proto_error_code(PROTO_BAD_ARGUMENT), "bad_argument");
	assert_string_equal(proto_error_code(PROTO_NOT_FOUND), "not_found");
	assert_string_equal(proto_error_code(PROTO_EXISTS), "exists");
	assert_string_equal(proto_error_code(PROTO_INVALID_TRANSITION), "invalid_transition");
	assert_string_equal(proto_error_code(PROTO_FULL), "full");
	assert_string_equal(proto_error_code(PROTO_UNAUTHORIZED), "unauthorized");
	assert_string_equal(proto_error_code(PROTO_INTERNAL), "internal");
	assert_string_equal(proto_error_code(PROTO_UNAVAILABLE), "unavailable");
	assert_string_equal(proto_error_code(PROTO_OVERLOADED), "overloaded");
	assert_string_equal(proto_error_code((enum proto_error)99), "internal");
	assert_string_equal(proto_error_code((enum proto_error)-1), "internal");
}

/* ---- Parsing requests ------------------------------------------------- */

static void test_parse_request(void **state)
{
	(void)state;
	struct proto_request *req =
		parse_ok("add backend name=vm1 addr=10.1.0.2 mac=02:00:00:00:01:01 iface=tv-vm1\n");

	assert_string_equal(req->verb, "add");
	assert_string_equal(req->noun, "backend");
	assert_int_equal(req->arg_count, 4);
	assert_string_equal(req->args[0].key, "name");
	assert_string_equal(req->args[0].value, "vm1");
	assert_string_equal(req->args[3].key, "iface");
	assert_string_equal(req->args[3].value, "tv-vm1");
	assert_string_equal(proto_get(req, "addr"), "10.1.0.2");
	assert_string_equal(proto_get(req, "mac"), "02:00:00:00:01:01");
	assert_null(proto_get(req, "heartbeat_ms"));
	assert_null(proto_get(req, "nam"));

	req = parse_ok("list backend");
	assert_string_equal(req->verb, "list");
	assert_string_equal(req->noun, "backend");
	assert_int_equal(req->arg_count, 0);

	/* Values may hold any printable ASCII but space and '='. */
	req = parse_ok("set x v=!\"#$%&'()*+,-./:;<>?@[\\]^_`{|}~");
	assert_string_equal(req->args[0].value, "!\"#$%&'()*+,-./:;<>?@[\\]^_`{|}~");

	/* Duplicates are proto_check_keys()'s business; proto_get takes the first. */
	req = parse_ok("del backend name=a name=b");
	assert_int_equal(req->arg_count, 2);
	assert_string_equal(proto_get(req, "name"), "a");
}

static void test_parse_spaces_and_crlf(void **state)
{
	(void)state;
	struct proto_request *req = parse_ok("   heartbeat    backend  name=vm1     \r\n");

	assert_string_equal(req->verb, "heartbeat");
	assert_string_equal(req->noun, "backend");
	assert_int_equal(req->arg_count, 1);
	assert_string_equal(proto_get(req, "name"), "vm1");

	req = parse_ok("list container\n");
	assert_string_equal(req->noun, "container");

	/* The caller's line need not be NUL-terminated: only len bytes count. */
	const char line[] = { 'l', 'i', 's', 't', ' ', 'b', 'a', 'c', 'k', 'e', 'n', 'd', '\n',
			      'X', 'Y' };
	struct proto_request own;

	assert_int_equal(proto_parse_line(line, 13, &own, NULL, 0), PROTO_OK);
	assert_string_equal(own.noun, "backend");
}

static void test_parse_empty(void **state)
{
	(void)state;
	check_rejected("", "empty request");
	check_rejected("\n", "empty request");
	check_rejected("\r\n", "empty request");
	check_rejected("      \r\n", "expected VERB NOUN key=value");
}

static void test_parse_only_verb(void **state)
{
	(void)state;
	check_rejected("list\n", "only a verb 'list'; expected VERB NOUN key=value");
	check_rejected("  list  ", "only a verb 'list'");
}

static void test_parse_bad_verb_noun(void **state)
{
	(void)state;
	check_rejected("Add backend name=vm1", "word 1 'Add' is not a verb");
	check_rejected("add2 backend", "word 1 'add2' is not a verb");
	check_rejected("name=vm1 add backend", "word 1 'name=vm1' is not a verb");
	check_rejected("add Backend name=vm1", "word 2 'Backend' is not a noun");
	check_rejected("add back_end", "word 2 'back_end' is not a noun");
	check_rejected("add back-end", "word 2 'back-end' is not a noun");
	check_rejected("list name=vm1", "word 2 'name=vm1' is not a noun");
}

static void test_parse_bad_key_value(void **state)
{
	(void)state;
	check_rejected("add backend foo", "word 3 'foo' is not key=value");
	check_rejected("add backend name=vm1 foo", "word 4 'foo' is not key=value");
	check_rejected("add backend =vm1", "word 3 '=vm1' has no key before '='");
	check_rejected("add backend =", "word 3 '=' has no key");
	check_rejected("add backend Name=vm1", "key 'Name' may only hold lowercase letters and '_'");
	check_rejected("add backend heartbeat-ms=1", "key 'heartbeat-ms'");
	check_rejected("add backend name2=vm1", "word 3 'name2=vm1': key 'name2'");
	check_rejected("add backend name=", "word 3 'name=': the value of 'name' is empty");
	check_rejected("add backend name=a=b", "word 3 'name=a=b': the value of 'name' contains '='");
	check_rejected("add backend name==", "the value of 'name' contains '='");

	/* A long offending word is quoted, but cut short. */
	char line[200] = "add backend ";

	memset(line + strlen(line), 'x', 100);
	check_rejected(line, "word 3 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is not key=value");
}

static void test_parse_bad_bytes(void **state)
{
	(void)state;
	check_rejected("add backend name=v\tm1", "control character 0x09 at column 19 in word 3 'name=v?m1'");
	check_rejected("list\tbackend", "control character 0x09 at column 5 in word 1 'list?backend'");
	check_rejected("set x v=a\x01", "control character 0x01 at column 10 in word 3 'v=a?'");
	check_rejected("set x v=a\x7f", "control character 0x7f");
	check_rejected("set x v=\x1b[31m", "control character 0x1b");
	/* "\r" is tolerated only right before the final "\n". */
	check_rejected("list backend\r", "control character 0x0d at column 13 in word 2 'backend?'");
	check_rejected("list backend\r\r\n", "control character 0x0d at column 13");
	check_rejected("list\r backend\n", "control character 0x0d at column 5 in word 1 'list?'");
	check_rejected("list backend\nlist backend\n", "line break at column 13 in word 2 'backend?list'");
	check_rejected("list backend\n\n", "line break at column 13");
	check_rejected("add backend name=caf\xc3\xa9", "non-ASCII byte 0xc3 at column 21 in word 3 'name=caf?" "?'");
	check_rejected("\xff list backend", "non-ASCII byte 0xff at column 1 in word 1 '?'");

	static const char nul[] = "add backend name=v\0m1\n";

	check_rejected_len(nul, sizeof(nul) - 1, "NUL byte at column 19 in word 3 'name=v?m1'");
	check_rejected_len("\0", 1, "NUL byte at column 1");
}

static void test_parse_length_limit(void **state)
{
	(void)state;
	struct {
		size_t length;
		const char *terminator;
		int accepted;
	} cases[] = {
		{ 1023, "\n", 1 },   /* 1024 bytes with the newline */
		{ 1023, "", 1 },     /* counted as if it had one */
		{ 1022, "\r\n", 1 }, /* the "\r" counts too */
		{ 1024, "\n", 0 },
		{ 1024, "", 0 },
		{ 1023, "\r\n", 0 },
		{ 4000, "\n", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *line = line_of_length(cases[i].length, cases[i].terminator);
		struct proto_request req;
		char message[MESSAGE_SIZE] = "";
		enum proto_error err =
			proto_parse_line(line, strlen(line), &req, message, sizeof(message));

		if (cases[i].accepted) {
			assert_int_equal(err, PROTO_OK);
			assert_int_equal(strlen(req.args[0].value), cases[i].length - 8);
		} else {
			assert_int_equal(err, PROTO_BAD_REQUEST);
			check_message(message, "line too long");
			check_message(message, "at most 1024 including the newline");
		}
		free(line);
	}

	/* Spaces count like any byte. */
	char spaces[1100];

	memset(spaces, ' ', sizeof(spaces));
	memcpy(spaces, "list backend", 12);
	assert_int_equal(proto_parse_line(spaces, 1023, &(struct proto_request){ 0 }, NULL, 0),
			 PROTO_OK);
	check_rejected_len(spaces, 1024, "line too long: 1025 bytes");

	/* A huge length is refused before anything is copied. */
	char *huge = calloc(1, 1 << 20);

	assert_non_null(huge);
	check_rejected_len(huge, 1 << 20, "line too long");
	free(huge);
}

static void build_args(char *line, size_t size, const char *head, int n)
{
	snprintf(line, size, "%s", head);
	for (int i = 0; i < n; i++) {
		size_t used = strlen(line);

		snprintf(line + used, size - used, "%sk_%c=%d", *line ? " " : "", 'a' + i, i);
	}
}

static void test_parse_arg_limit(void **state)
{
	(void)state;
	char line[PROTO_LINE_MAX];
	struct proto_request req;

	build_args(line, sizeof(line), "set x", PROTO_MAX_ARGS);
	assert_int_equal(proto_parse_line(line, strlen(line), &req, NULL, 0), PROTO_OK);
	assert_int_equal(req.arg_count, PROTO_MAX_ARGS);
	assert_string_equal(req.args[15].key, "k_p");
	assert_string_equal(req.args[15].value, "15");

	build_args(line, sizeof(line), "set x", PROTO_MAX_ARGS + 1);
	check_rejected(line, "too many arguments: word 27 'k_y=24' would be argument 25, at most 24");

	char message[MESSAGE_SIZE] = "";

	build_args(line, sizeof(line), "", PROTO_MAX_ARGS);
	assert_int_equal(proto_parse_record(line, strlen(line), &req, NULL, 0), PROTO_OK);
	assert_int_equal(req.arg_count, PROTO_MAX_ARGS);
	build_args(line, sizeof(line), "", PROTO_MAX_ARGS + 1);
	assert_int_equal(proto_parse_record(line, strlen(line), &req, message, sizeof(message)),
			 PROTO_BAD_REQUEST);
	check_message(message, "word 25 'k_y=24' would be argument 25");
}

static void test_parse_no_message_buffer(void **state)
{
	(void)state;
	struct proto_request req;

	assert_int_equal(proto_parse_line("add backend foo", 15, &req, NULL, 0), PROTO_BAD_REQUEST);
	assert_int_equal(proto_parse_line("list", 4, &req, NULL, 0), PROTO_BAD_REQUEST);

	/* A tiny buffer gets a cut but terminated message. */
	char tiny[8];

	assert_int_equal(proto_parse_line("add backend foo", 15, &req, tiny, sizeof(tiny)),
			 PROTO_BAD_REQUEST);
	assert_string_equal(tiny, "word 3 ");
}

/* ---- Records and status lines ---------------------------------------- */

static void test_parse_record(void **state)
{
	(void)state;
	struct proto_request rec;
	char message[MESSAGE_SIZE] = "";
	const char *line = "backend=vm1 id=1 state=up addr=10.1.0.2 mac=02:00:00:00:01:01\n";

	assert_int_equal(proto_parse_record(line, strlen(line), &rec, message, sizeof(message)),
			 PROTO_OK);
	assert_null(rec.verb);
	assert_null(rec.noun);
	assert_int_equal(rec.arg_count, 5);
	assert_string_equal(proto_get(&rec, "state"), "up");

	line = "event=container_up container=3 function=42 backend=vm1";
	assert_int_equal(proto_parse_record(line, strlen(line), &rec, NULL, 0), PROTO_OK);
	assert_string_equal(proto_get(&rec, "event"), "container_up");

	line = "list backend";
	assert_int_equal(proto_parse_record(line, strlen(line), &rec, message, sizeof(message)),
			 PROTO_BAD_REQUEST);
	check_message(message, "word 1 'list' is not key=value");

	assert_int_equal(proto_parse_record("\n", 1, &rec, message, sizeof(message)),
			 PROTO_BAD_REQUEST);
	check_message(message, "empty record");
	assert_int_equal(rec.arg_count, 0);
}

static void check_status(const char *line, int expected, enum proto_error code,
			 const char *expected_message)
{
	enum proto_error err = PROTO_OK;
	char message[MESSAGE_SIZE] = "unchanged";
	int status = proto_parse_status(line, strlen(line), &err, message, sizeof(message));

	if (status != expected)
		fail_msg("'%s': status %d, expected %d", line, status, expected);
	if (status == 1) {
		assert_int_equal(err, code);
		assert_string_equal(message, expected_message);
	}
}

static void test_parse_status(void **state)
{
	(void)state;
	check_status("ok", 0, 0, NULL);
	check_status("ok\n", 0, 0, NULL);
	check_status("ok\r\n", 0, 0, NULL);
	check_status("error not_found: no backend 'vm9'\n", 1, PROTO_NOT_FOUND,
		     "no backend 'vm9'");
	check_status("error bad_request: word 3 'foo' is not key=value\r\n", 1,
		     PROTO_BAD_REQUEST, "word 3 'foo' is not key=value");
	check_status("error invalid_transition: x", 1, PROTO_INVALID_TRANSITION, "x");
	check_status("error internal: ", 1, PROTO_INTERNAL, "");
	check_status("error unavailable: etcd", 1, PROTO_UNAVAILABLE, "etcd");
	/* A message is made safe to print. */
	check_status("error internal: red \x1b[31m\xff!", 1, PROTO_INTERNAL, "red  [31m !");

	check_status("", -1, 0, NULL);
	check_status("\n", -1, 0, NULL);
	check_status("ok \n", -1, 0, NULL);
	check_status("OK", -1, 0, NULL);
	check_status("okay", -1, 0, NULL);
	check_status("error", -1, 0, NULL);
	check_status("error not_found", -1, 0, NULL);
	check_status("error not_found:", -1, 0, NULL);
	check_status("error not_found:x", -1, 0, NULL);
	check_status("error : x", -1, 0, NULL);
	check_status("error ok: x", -1, 0, NULL);
	check_status("error no_such_code: x", -1, 0, NULL);
	check_status("error  not_found: x", -1, 0, NULL);
	check_status("backend=vm1 id=1", -1, 0, NULL);

	/* Optional outputs, and a message cut to the buffer. */
	const char *line = "error full: no free slot";
	char small[5];

	assert_int_equal(proto_parse_status(line, strlen(line), NULL, NULL, 0), 1);
	assert_int_equal(proto_parse_status(line, strlen(line), NULL, small, sizeof(small)), 1);
	assert_string_equal(small, "no f");
}

/* ---- Getters ---------------------------------------------------------- */

/* A request "set x n=VALUE" (or, for an empty value, one built by hand:
 * the parser never lets an empty value through). */
static struct proto_request *request_with(const char *value)
{
	static struct proto_request req;
	char line[PROTO_LINE_MAX];

	if (!*value) {
		memset(&req, 0, sizeof(req));
		req.verb = "set";
		req.noun = "x";
		req.args[0] = (struct proto_arg){ "n", "" };
		req.arg_count = 1;
		return &req;
	}
	snprintf(line, sizeof(line), "set x n=%s", value);
	assert_int_equal(proto_parse_line(line, strlen(line), &req, NULL, 0), PROTO_OK);
	return &req;
}

static void check_u64(const char *value, int ok, __u64 expected)
{
	__u64 out = 12345;
	char message[MESSAGE_SIZE] = "";
	enum proto_error err = proto_get_u64(request_with(value), "n", 1, &out, message,
					     sizeof(message));

	if (ok) {
		if (err != PROTO_OK)
			fail_msg("'%s' rejected: %s", value, message);
		assert_int_equal(out, expected);
		return;
	}
	if (err != PROTO_BAD_ARGUMENT)
		fail_msg("'%s' accepted as %llu", value, (unsigned long long)out);
	assert_int_equal(out, 12345);
	check_message(message, "for 'n': expected a number from 0 to 18446744073709551615");
}

static void check_u32(const char *value, int ok, __u32 expected)
{
	__u32 out = 12345;
	char message[MESSAGE_SIZE] = "";
	enum proto_error err = proto_get_u32(request_with(value), "n", 1, &out, message,
					     sizeof(message));

	if (ok) {
		if (err != PROTO_OK)
			fail_msg("'%s' rejected: %s", value, message);
		assert_int_equal(out, expected);
		return;
	}
	if (err != PROTO_BAD_ARGUMENT)
		fail_msg("'%s' accepted as %u", value, out);
	assert_int_equal(out, 12345);
	check_message(message, "expected a number from 0 to 4294967295");
}

static void test_get_u64(void **state)
{
	(void)state;
	check_u64("0", 1, 0);
	check_u64("42", 1, 42);
	check_u64("007", 1, 7); /* decimal, not octal */
	check_u64("0x2a", 1, 42);
	check_u64("0x2A", 1, 42);
	check_u64("0x0", 1, 0);
	check_u64("0x00000000000000000001", 1, 1);
	check_u64("18446744073709551615", 1, UINT64_MAX);
	check_u64("0xffffffffffffffff", 1, UINT64_MAX);
	check_u64("18446744073709551616", 0, 0);
	check_u64("99999999999999999999", 0, 0);
	check_u64("0x10000000000000000", 0, 0);
	check_u64("+1", 0, 0);
	check_u64("-1", 0, 0);
	check_u64("", 0, 0);
	check_u64("0x", 0, 0);
	check_u64("0X2a", 0, 0);
	check_u64("x2a", 0, 0);
	check_u64("0x+1", 0, 0);
	check_u64("12a", 0, 0);
	check_u64("1e3", 0, 0);
	check_u64("0b101", 0, 0);

	char message[MESSAGE_SIZE] = "";

	proto_get_u64(request_with("-1"), "n", 1, &(__u64){ 0 }, message, sizeof(message));
	check_message(message, "bad value '-1' for 'n'");
}

static void test_get_u32(void **state)
{
	(void)state;
	check_u32("0", 1, 0);
	check_u32("4294967295", 1, UINT32_MAX);
	check_u32("0xffffffff", 1, UINT32_MAX);
	check_u32("4294967296", 0, 0);
	check_u32("0x100000000", 0, 0);
	check_u32("18446744073709551616", 0, 0);
	check_u32("-1", 0, 0);
	check_u32("+5", 0, 0);
	check_u32("", 0, 0);
}

static void test_get_function(void **state)
{
	(void)state;
	char message[MESSAGE_SIZE] = "";
	__u64 out = 0;

	assert_int_equal(proto_get_function(request_with("1"), "n", 1, &out, NULL, 0), PROTO_OK);
	assert_int_equal(out, 1);
	assert_int_equal(proto_get_function(request_with("0xffffffffffffffff"), "n", 1, &out, NULL,
					    0),
			 PROTO_OK);
	assert_int_equal(out, UINT64_MAX);

	static const char *const bad[] = { "0", "0x0", "00", "-1", "0x10000000000000000", "f" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = 7;
		assert_int_equal(proto_get_function(request_with(bad[i]), "n", 1, &out, message,
						    sizeof(message)),
				 PROTO_BAD_ARGUMENT);
		assert_int_equal(out, 7);
		check_message(message, "expected a nonzero 64-bit function id");
	}
}

static void test_get_missing_and_optional(void **state)
{
	(void)state;
	struct proto_request *req = parse_ok("drain backend");
	char message[MESSAGE_SIZE] = "";
	__u64 deadline = 5000;
	const char *name = "default";

	/* Optional and absent: PROTO_OK, the default stays. */
	assert_int_equal(proto_get_u64(req, "deadline_ms", 0, &deadline, NULL, 0), PROTO_OK);
	assert_int_equal(deadline, 5000);
	assert_int_equal(proto_get_name(req, "name", 0, &name, NULL, 0), PROTO_OK);
	assert_string_equal(name, "default");

	assert_int_equal(proto_get_name(req, "name", 1, &name, message, sizeof(message)),
			 PROTO_MISSING_ARGUMENT);
	check_message(message, "missing argument 'name' for 'drain backend': expected a name");

	__u8 bytes[16];
	__u32 u32;

	assert_int_equal(proto_get_u64(req, "deadline_ms", 1, &deadline, message, sizeof(message)),
			 PROTO_MISSING_ARGUMENT);
	check_message(message, "'deadline_ms'");
	assert_int_equal(proto_get_u32(req, "container", 1, &u32, message, sizeof(message)),
			 PROTO_MISSING_ARGUMENT);
	check_message(message, "'container'");
	assert_int_equal(proto_get_function(req, "function", 1, &deadline, message,
					    sizeof(message)),
			 PROTO_MISSING_ARGUMENT);
	check_message(message, "missing argument 'function'");
	assert_int_equal(proto_get_mac(req, "mac", 1, bytes, message, sizeof(message)),
			 PROTO_MISSING_ARGUMENT);
	check_message(message, "expected a MAC address");
	assert_int_equal(proto_get_addr(req, "addr", 1, bytes, message, sizeof(message)),
			 PROTO_MISSING_ARGUMENT);
	check_message(message, "expected an IPv4 or IPv6 address");
	assert_int_equal(proto_get_token(req, "token", 1, bytes, message, sizeof(message)),
			 PROTO_MISSING_ARGUMENT);
	check_message(message, "expected a token of 32 lowercase hex digits");

	/* In a record, the context is the record. */
	struct proto_request rec;

	assert_int_equal(proto_parse_record("id=1", 4, &rec, NULL, 0), PROTO_OK);
	assert_int_equal(proto_get_name(&rec, "backend", 1, &name, message, sizeof(message)),
			 PROTO_MISSING_ARGUMENT);
	check_message(message, "missing argument 'backend' for the record");
}

static void test_get_name(void **state)
{
	(void)state;
	static const char *const good[] = { "vm1", "a", "A.b_c-9", "...", "-",
					    "abcdefghijklmnopqrstuvwxyz01234" /* 31 */ };
	static const char *const bad[] = { "", "abcdefghijklmnopqrstuvwxyz012345" /* 32 */,
					   "vm/1", "vm:1", "vm,1", "vm@1", "vm+1", "vm~1" };
	char message[MESSAGE_SIZE] = "";
	const char *name;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(proto_get_name(request_with(good[i]), "n", 1, &name, NULL, 0),
				 PROTO_OK);
		assert_string_equal(name, good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		name = NULL;
		assert_int_equal(proto_get_name(request_with(bad[i]), "n", 1, &name, message,
						sizeof(message)),
				 PROTO_BAD_ARGUMENT);
		assert_null(name);
		check_message(message, "bad value '");
		check_message(message, bad[i]);
		check_message(message, "expected a name of 1 to 31 letters, digits, '.', '_' or '-'");
	}
}

static void test_get_mac(void **state)
{
	(void)state;
	static const __u8 expected[6] = { 0x02, 0x00, 0xab, 0xcd, 0xef, 0xff };
	static const char *const bad[] = {
		"02:00:ab:cd:ef",    "02:00:ab:cd:ef:ff:01", "2:0:ab:cd:ef:ff",   "02-00-ab-cd-ef-ff",
		"02:00:ab:cd:ef:fg", "0200abcdefff",         "02:00:ab:cd:ef:ff:", "02:00:ab:cd:eff:f",
		"02:00:ab:cd:ef:f",  "0x:00:ab:cd:ef:ff",    "",
	};
	char message[MESSAGE_SIZE] = "";
	__u8 mac[6];

	assert_int_equal(proto_get_mac(request_with("02:00:ab:cd:ef:ff"), "n", 1, mac, NULL, 0),
			 PROTO_OK);
	assert_memory_equal(mac, expected, 6);
	memset(mac, 0, sizeof(mac));
	assert_int_equal(proto_get_mac(request_with("02:00:AB:Cd:eF:FF"), "n", 1, mac, NULL, 0),
			 PROTO_OK);
	assert_memory_equal(mac, expected, 6);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(mac, 0x55, sizeof(mac));
		assert_int_equal(proto_get_mac(request_with(bad[i]), "n", 1, mac, message,
					       sizeof(message)),
				 PROTO_BAD_ARGUMENT);
		assert_memory_equal(mac, "\x55\x55\x55\x55\x55\x55", 6);
		check_message(message, bad[i]);
		check_message(message, "expected a MAC address like 02:00:00:00:01:01");
	}
}

/* Function lists: ids and ranges, or any; bad lists refused whole, the
 * output untouched; the set's membership and its text. */
static void test_get_functions(void **state)
{
	static const char *const bad[] = { "0", "7,0", "5-3", "a", "", "7,,9", ",7", "7,",
					   "7-", "-7", "1-2-3", "0x", "18446744073709551616",
					   "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "anything" };
	char message[MESSAGE_SIZE] = "", text[256];
	struct proto_functions set;

	(void)state;
	assert_int_equal(proto_get_functions(request_with("7,9,0x100-0x1ff"), "n", 1, &set, message,
					     sizeof(message)),
			 PROTO_OK);
	assert_false(set.any);
	assert_int_equal(set.allowed.count, 3);
	assert_true(proto_functions_allow(&set.allowed, 7));
	assert_true(proto_functions_allow(&set.allowed, 9));
	assert_false(proto_functions_allow(&set.allowed, 8));
	assert_true(proto_functions_allow(&set.allowed, 0x100));
	assert_true(proto_functions_allow(&set.allowed, 0x1ff));
	assert_false(proto_functions_allow(&set.allowed, 0x200));
	proto_functions_format(&set.allowed, text, sizeof(text));
	assert_string_equal(text, "7,9,256-511");
	assert_int_equal(proto_get_functions(request_with("any"), "n", 1, &set, message,
					     sizeof(message)),
			 PROTO_OK);
	assert_true(set.any);
	assert_int_equal(proto_get_functions(request_with("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"),
					     "n", 1, &set, message, sizeof(message)),
			 PROTO_OK);
	assert_int_equal(set.allowed.count, 16);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&set, 0x55, sizeof(set));
		if (proto_get_functions(request_with(bad[i]), "n", 1, &set, message,
					sizeof(message)) != PROTO_BAD_ARGUMENT)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(set.allowed.count, 0x55555555);
		check_message(message, "expected function ids and ranges");
	}
	struct allowed_functions none = { .count = 0 };

	proto_functions_format(&none, text, sizeof(text));
	assert_string_equal(text, "none");
	assert_false(proto_functions_allow(&none, 7));
}

static void test_get_vlan(void **state)
{
	static const struct {
		const char *text;
		__u16 vid;
	} good[] = { { "0", 0 }, { "1", 1 }, { "100", 100 }, { "0x64", 100 }, { "4094", 4094 },
		     { "04094", 4094 } };
	static const char *const bad[] = { "4095", "65535", "65536", "-1", "+5", "1e2",
					   "0x1000", "vlan100", "" };
	char message[MESSAGE_SIZE] = "";
	__u16 vid;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		vid = 5555;
		if (proto_get_vlan(request_with(good[i].text), "n", 1, &vid, message,
				   sizeof(message)))
			fail_msg("'%s' rejected: %s", good[i].text, message);
		assert_int_equal(vid, good[i].vid);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vid = 5555;
		assert_int_equal(proto_get_vlan(request_with(bad[i]), "n", 1, &vid, message,
						sizeof(message)),
				 PROTO_BAD_ARGUMENT);
		assert_int_equal(vid, 5555);
		check_message(message, "for 'n': expected a VLAN id from 1 to 4094, or 0 for untagged");
	}
	/* Absent and optional: untouched. */
	vid = 7;
	assert_int_equal(proto_get_vlan(request_with("1"), "other", 0, &vid, NULL, 0), PROTO_OK);
	assert_int_equal(vid, 7);
}

static void test_get_encap_and_vni(void **state)
{
	static const char *const modes[] = { "l2", "vxlan", "ipip" };
	static const char *const bad_modes[] = { "L2", "gre", "vxlan4", "" };
	static const char *const bad_vnis[] = { "16777216", "0x1000000", "-1", "" };
	char message[MESSAGE_SIZE] = "";
	__u32 vni = 5;
	__u8 encap;

	(void)state;
	for (unsigned i = 0; i < 3; i++) {
		encap = 99;
		assert_int_equal(proto_get_encap(request_with(modes[i]), "n", 1, &encap, message,
						 sizeof(message)), PROTO_OK);
		assert_int_equal(encap, i);
		assert_string_equal(proto_encap_name(i), modes[i]);
	}
	for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
		encap = 99;
		assert_int_equal(proto_get_encap(request_with(bad_modes[i]), "n", 1, &encap, message,
						 sizeof(message)), PROTO_BAD_ARGUMENT);
		assert_int_equal(encap, 99);
		check_message(message, "for 'n': expected l2, vxlan or ipip");
	}
	assert_int_equal(proto_get_vni(request_with("16777215"), "n", 1, &vni, message,
				       sizeof(message)), PROTO_OK);
	assert_int_equal(vni, 0xffffff);
	for (size_t i = 0; i < sizeof(bad_vnis) / sizeof(bad_vnis[0]); i++) {
		vni = 5;
		assert_int_equal(proto_get_vni(request_with(bad_vnis[i]), "n", 1, &vni, message,
					       sizeof(message)), PROTO_BAD_ARGUMENT);
		assert_int_equal(vni, 5);
	}
}

static void test_get_addr(void **state)
{
	(void)state;
	static const __u8 v4[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [13] = 1, [14] = 0,
				     [15] = 2 };
	static const __u8 v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	static const char *const bad[] = { "10.1.0",       "10.1.0.256",   "1.2.3.4.5",
					   "010.1.0.2",    "fe80::1%eth0", "2001:db8::g",
					   "2001:db8:::1", "host",         "10.1.0.2/24", "" };
	char message[MESSAGE_SIZE] = "";
	__u8 addr[16];

	assert_int_equal(proto_get_addr(request_with("10.1.0.2"), "n", 1, addr, NULL, 0), PROTO_OK);
	assert_memory_equal(addr, v4, 16);
	memset(addr, 0, sizeof(addr));
	assert_int_equal(proto_get_addr(request_with("::ffff:10.1.0.2"), "n", 1, addr, NULL, 0),
			 PROTO_OK);
	assert_memory_equal(addr, v4, 16);
	assert_int_equal(proto_get_addr(request_with("2001:db8::1"), "n", 1, addr, NULL, 0),
			 PROTO_OK);
	assert_memory_equal(addr, v6, 16);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(addr, 0x55, sizeof(addr));
		assert_int_equal(proto_get_addr(request_with(bad[i]), "n", 1, addr, message,
						sizeof(message)),
				 PROTO_BAD_ARGUMENT);
		assert_int_equal(addr[0], 0x55);
		assert_int_equal(addr[12], 0x55);
		check_message(message, bad[i]);
		check_message(message, "expected an IPv4 or IPv6 address");
	}
}

static void test_get_token(void **state)
{
	(void)state;
	static const __u8 expected[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
					   0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10 };
	static const char *const bad[] = {
		"0123456789ABCDEFfedcba9876543210",  /* uppercase: the spec says lowercase */
		"A123456789abcdeffedcba9876543210",  /* one, as a byte's high digit */
		"0A23456789abcdeffedcba9876543210",  /* one, as a low digit */
		"0123456789abcdeffedcba987654321",   /* 31 digits */
		"0123456789abcdeffedcba98765432100", /* 33 */
		"0123456789abcdeffedcba987654321g",
		"0x23456789abcdeffedcba9876543210",
		"",
	};
	char message[MESSAGE_SIZE] = "";
	__u8 token[16];

	assert_int_equal(proto_get_token(request_with("0123456789abcdeffedcba9876543210"), "n", 1,
					 token, NULL, 0),
			 PROTO_OK);
	assert_memory_equal(token, expected, 16);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(token, 0x55, sizeof(token));
		assert_int_equal(proto_get_token(request_with(bad[i]), "n", 1, token, message,
						 sizeof(message)),
				 PROTO_BAD_ARGUMENT);
		assert_int_equal(token[0], 0x55);
		check_message(message, bad[i]);
		check_message(message, "expected a token of 32 lowercase hex digits");
	}
}

static void test_check_keys(void **state)
{
	(void)state;
	static const char *const add_backend[] = { "name", "addr", "mac", "iface", "heartbeat_ms",
						   NULL };
	static const char *const none[] = { NULL };
	char message[MESSAGE_SIZE] = "";

	struct proto_request *full = parse_ok("add backend name=vm1 addr=10.1.0.2 "
					      "mac=02:00:00:00:01:01 iface=eth0 heartbeat_ms=1");

	assert_int_equal(proto_check_keys(full, add_backend, message, sizeof(message)), PROTO_OK);
	assert_int_equal(proto_check_keys(parse_ok("list backend"), none, NULL, 0), PROTO_OK);

	assert_int_equal(proto_check_keys(parse_ok("add backend name=vm1 bogus=1"), add_backend,
					  message, sizeof(message)),
			 PROTO_BAD_ARGUMENT);
	assert_string_equal(message, "unknown argument 'bogus' for 'add backend'; expected one of: "
				     "name addr mac iface heartbeat_ms");

	assert_int_equal(proto_check_keys(parse_ok("list backend state=up"), none, message,
					  sizeof(message)),
			 PROTO_BAD_ARGUMENT);
	assert_string_equal(message, "unknown argument 'state': 'list backend' takes no arguments");

	assert_int_equal(proto_check_keys(parse_ok("del backend name=a addr=::1 name=b"),
					  add_backend, message, sizeof(message)),
			 PROTO_BAD_ARGUMENT);
	assert_string_equal(message, "argument 'name' given twice for 'del backend'");

	/* The first problem in word order is the one reported. */
	assert_int_equal(proto_check_keys(parse_ok("add backend name=a name=b zzz=1"), add_backend,
					  message, sizeof(message)),
			 PROTO_BAD_ARGUMENT);
	check_message(message, "given twice");

	/* A long list is cut to the buffer, still terminated. */
	char small[40];

	assert_int_equal(proto_check_keys(parse_ok("add backend x=1"), add_backend, small,
					  sizeof(small)),
			 PROTO_BAD_ARGUMENT);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* ---- Writer ----------------------------------------------------------- */

static void test_writer_response(void **state)
{
	(void)state;
	static const __u8 token[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
					0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10 };
	struct proto_writer w;

	proto_writer_init(&w);
	proto_write_ok(&w);
	proto_record_begin(&w);
	proto_record_str(&w, "backend", "vm1");
	proto_record_u64(&w, "id", 1);
	proto_record_str(&w, "state", "up");
	proto_record_end(&w);
	proto_record_begin(&w);
	proto_record_u64(&w, "container", UINT64_MAX);
	proto_record_hex(&w, "token", token, sizeof(token));
	proto_record_end(&w);
	proto_write_end(&w);
	assert_false(w.failed);
	assert_string_equal(w.data, "ok\n"
				    "backend=vm1 id=1 state=up\n"
				    "container=18446744073709551615 token=0123456789abcdeffedcba9876543210\n"
				    "\n");
	assert_int_equal(w.len, strlen(w.data));

	/* A record with no field writes nothing: an empty line would end the response. */
	proto_writer_reset(&w);
	proto_write_ok(&w);
	proto_record_begin(&w);
	proto_record_end(&w);
	proto_write_end(&w);
	assert_false(w.failed);
	assert_string_equal(w.data, "ok\n\n");

	/* Growth well past the first allocation. */
	proto_writer_reset(&w);
	proto_write_ok(&w);
	for (int i = 0; i < 10000; i++) {
		proto_record_begin(&w);
		proto_record_u64(&w, "i", i);
		proto_record_end(&w);
	}
	proto_write_end(&w);
	assert_false(w.failed);
	assert_int_equal(w.len, strlen(w.data));
	assert_non_null(strstr(w.data, "\ni=9999\n\n"));
	proto_writer_free(&w);
	assert_null(w.data);
	assert_int_equal(w.len, 0);
}

static void check_error_line(enum proto_error e, const char *text, const char *expected)
{
	struct proto_writer w;

	proto_writer_init(&w);
	proto_write_error(&w, e, "%s", text);
	proto_write_end(&w);
	assert_false(w.failed);
	assert_string_equal(w.data, expected);
	proto_writer_free(&w);
}

static void test_writer_error(void **state)
{
	(void)state;
	struct proto_writer w;

	proto_writer_init(&w);
	proto_write_error(&w, PROTO_NOT_FOUND, "no backend '%s' (%d known)", "vm9", 3);
	proto_write_end(&w);
	assert_string_equal(w.data, "error not_found: no backend 'vm9' (3 known)\n\n");
	proto_writer_free(&w);

	check_error_line(PROTO_INTERNAL, "map update:\nNo such\tfile\x01!\n",
			 "error internal: map update: No such file !\n\n");
	check_error_line(PROTO_BAD_REQUEST, "caf\xc3\xa9 au lait", "error bad_request: caf   au lait\n\n");
	check_error_line(PROTO_FULL, "", "error full: no free backend id or container slot\n\n");
	check_error_line(PROTO_EXISTS, "\n\n", "error exists: it exists already\n\n");
	check_error_line((enum proto_error)99, "what", "error internal: what\n\n");
	check_error_line(PROTO_OK, "odd", "error internal: odd\n\n"); /* a caller's bug */

	/* A long message is cut so the line, newline included, fits a line. */
	char *long_text = malloc(3000);
	char message[MESSAGE_SIZE];
	enum proto_error err;

	assert_non_null(long_text);
	memset(long_text, 'x', 2999);
	long_text[2999] = '\0';
	proto_writer_init(&w);
	proto_write_error(&w, PROTO_BAD_ARGUMENT, "%s", long_text);
	assert_int_equal(w.len, PROTO_LINE_MAX);
	assert_int_equal(w.data[PROTO_LINE_MAX - 1], '\n');
	assert_int_equal(proto_parse_status(w.data, w.len, &err, message, sizeof(message)), 1);
	assert_int_equal(err, PROTO_BAD_ARGUMENT);
	proto_writer_free(&w);
	free(long_text);
}

static void test_writer_escaping(void **state)
{
	(void)state;
	struct proto_writer w;
	struct proto_request rec;

	proto_writer_init(&w);
	proto_record_begin(&w);
	proto_record_str(&w, "iface", "tv vm1=x\x01\x7f\xff\t");
	proto_record_str(&w, "empty", "");
	proto_record_str(&w, "null", NULL);
	proto_record_str(&w, "odd", "a:b/c@d,e!\"'");
	proto_record_hex(&w, "nothing", NULL, 0);
	proto_record_end(&w);
	assert_false(w.failed);
	assert_string_equal(w.data, "iface=tv_vm1_x____ empty=_ null=_ odd=a:b/c@d,e!\"' nothing=_\n");
	assert_int_equal(proto_parse_record(w.data, w.len, &rec, NULL, 0), PROTO_OK);
	assert_int_equal(rec.arg_count, 5);
	proto_writer_free(&w);

	assert_true(proto_value_valid("vm1"));
	assert_true(proto_value_valid("a:b/c@d,e!\"'~"));
	assert_false(proto_value_valid(""));
	assert_false(proto_value_valid(NULL));
	assert_false(proto_value_valid("a b"));
	assert_false(proto_value_valid("a=b"));
	assert_false(proto_value_valid("a\tb"));
	assert_false(proto_value_valid("a\x7f"));
	assert_false(proto_value_valid("caf\xc3\xa9"));
}

/* Writes one record of n fields "k_a=0 k_b=1 ..." and returns failed. */
static int write_fields(struct proto_writer *w, int n)
{
	char key[8];

	proto_writer_reset(w);
	proto_record_begin(w);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k_%c", 'a' + i);
		proto_record_u64(w, key, i);
	}
	proto_record_end(w);
	return w->failed;
}

static void test_writer_limits(void **state)
{
	(void)state;
	struct proto_writer w;

	proto_writer_init(&w);

	/* A record the other side could not parse is the writer's failure. */
	assert_false(write_fields(&w, PROTO_MAX_ARGS));
	assert_true(write_fields(&w, PROTO_MAX_ARGS + 1));

	char value[PROTO_LINE_MAX + 10];

	memset(value, 'v', sizeof(value));
	value[PROTO_LINE_MAX - 3] = '\0'; /* "v=" + 1021 + "\n" = 1024 */
	proto_writer_reset(&w);
	proto_record_begin(&w);
	proto_record_str(&w, "v", value);
	proto_record_end(&w);
	assert_false(w.failed);
	assert_int_equal(w.len, PROTO_LINE_MAX);

	value[PROTO_LINE_MAX - 3] = 'v';
	value[PROTO_LINE_MAX - 2] = '\0';
	proto_writer_reset(&w);
	proto_record_begin(&w);
	proto_record_str(&w, "v", value);
	proto_record_end(&w);
	assert_true(w.failed);

	/* Keys come from the code and must be valid. */
	static const char *const bad_keys[] = { "", "Key", "k-1", "k=", "k 1", "k1" };

	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
		proto_writer_reset(&w);
		proto_record_begin(&w);
		proto_record_str(&w, bad_keys[i], "v");
		proto_record_end(&w);
		assert_true(w.failed);
	}

	/* Misuse: a field outside a record, a line inside one, an unbalanced end. */
	proto_writer_reset(&w);
	proto_record_str(&w, "k", "v");
	assert_true(w.failed);
	proto_writer_reset(&w);
	proto_record_begin(&w);
	proto_write_ok(&w);
	assert_true(w.failed);
	proto_writer_reset(&w);
	proto_record_end(&w);
	assert_true(w.failed);

	/* Once failed, nothing more is written; reset starts over. */
	size_t len = w.len;

	proto_write_ok(&w);
	proto_write_error(&w, PROTO_FULL, "x");
	proto_write_end(&w);
	assert_int_equal(w.len, len);
	proto_writer_reset(&w);
	assert_false(w.failed);
	assert_int_equal(w.len, 0);
	proto_write_error(&w, PROTO_INTERNAL, "response too large");
	proto_write_end(&w);
	assert_string_equal(w.data, "error internal: response too large\n\n");
	proto_writer_free(&w);
}

static void test_request_builder(void **state)
{
	(void)state;
	struct proto_writer w;
	struct proto_request req;

	proto_writer_init(&w);
	proto_request_begin(&w, "add", "container");
	proto_record_u64(&w, "function", 42);
	proto_record_str(&w, "backend", "vm1");
	proto_record_end(&w);
	assert_false(w.failed);
	assert_string_equal(w.data, "add container function=42 backend=vm1\n");
	assert_int_equal(proto_parse_line(w.data, w.len, &req, NULL, 0), PROTO_OK);
	assert_string_equal(req.noun, "container");

	/* Without arguments the line is still written. */
	proto_writer_reset(&w);
	proto_request_begin(&w, "list", "backend");
	proto_record_end(&w);
	assert_string_equal(w.data, "list backend\n");

	/* Sixteen arguments, not counting verb and noun. */
	proto_writer_reset(&w);
	proto_request_begin(&w, "set", "x");
	for (int i = 0; i < PROTO_MAX_ARGS; i++)
		proto_record_u64(&w, "k", i);
	proto_record_end(&w);
	assert_false(w.failed);
	proto_writer_reset(&w);
	proto_request_begin(&w, "set", "x");
	for (int i = 0; i <= PROTO_MAX_ARGS; i++)
		proto_record_u64(&w, "k", i);
	proto_record_end(&w);
	assert_true(w.failed);

	static const char *const bad[][2] = { { "Add", "x" }, { "add", "" }, { "a_b", "x" },
					      { "add", "x y" } };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		proto_writer_reset(&w);
		proto_request_begin(&w, bad[i][0], bad[i][1]);
		proto_record_end(&w);
		assert_true(w.failed);
	}
	proto_writer_free(&w);
}

/* Writer to parser and back, through the typed getters. */
static void test_round_trip(void **state)
{
	(void)state;
	static const __u8 token[16] = { 0xde, 0xad, 0xbe, 0xef, [15] = 0x01 };
	struct proto_writer w;
	struct proto_request rec;
	char message[MESSAGE_SIZE] = "";
	__u64 function = 0, big = 0;
	__u32 id = 0;
	__u8 got_token[16], mac[6], addr[16];
	const char *name;

	proto_writer_init(&w);
	proto_record_begin(&w);
	proto_record_str(&w, "event", "container_added");
	proto_record_u64(&w, "function", 0xfeedfacecafebeefULL);
	proto_record_u64(&w, "big", UINT64_MAX);
	proto_record_u64(&w, "id", UINT32_MAX);
	proto_record_hex(&w, "token", token, sizeof(token));
	proto_record_str(&w, "mac", "02:00:00:00:01:01");
	proto_record_str(&w, "addr", "2001:db8::1");
	proto_record_str(&w, "backend", "vm-1.a_b");
	proto_record_end(&w);
	assert_false(w.failed);

	assert_int_equal(proto_parse_record(w.data, w.len, &rec, message, sizeof(message)),
			 PROTO_OK);
	assert_int_equal(rec.arg_count, 8);
	assert_string_equal(proto_get(&rec, "event"), "container_added");
	assert_int_equal(proto_get_function(&rec, "function", 1, &function, NULL, 0), PROTO_OK);
	assert_int_equal(function, 0xfeedfacecafebeefULL);
	assert_int_equal(proto_get_u64(&rec, "big", 1, &big, NULL, 0), PROTO_OK);
	assert_int_equal(big, UINT64_MAX);
	assert_int_equal(proto_get_u32(&rec, "id", 1, &id, NULL, 0), PROTO_OK);
	assert_int_equal(id, UINT32_MAX);
	assert_int_equal(proto_get_token(&rec, "token", 1, got_token, NULL, 0), PROTO_OK);
	assert_memory_equal(got_token, token, 16);
	assert_int_equal(proto_get_mac(&rec, "mac", 1, mac, NULL, 0), PROTO_OK);
	assert_memory_equal(mac, "\x02\x00\x00\x00\x01\x01", 6);
	assert_int_equal(proto_get_addr(&rec, "addr", 1, addr, NULL, 0), PROTO_OK);
	assert_int_equal(addr[0], 0x20);
	assert_int_equal(proto_get_name(&rec, "backend", 1, &name, NULL, 0), PROTO_OK);
	assert_string_equal(name, "vm-1.a_b");

	/* A whole response, line by line, as a client reads it. */
	proto_writer_reset(&w);
	proto_write_ok(&w);
	for (int i = 1; i <= 3; i++) {
		proto_record_begin(&w);
		proto_record_u64(&w, "container", i);
		proto_record_str(&w, "state", "warm");
		proto_record_end(&w);
	}
	proto_write_end(&w);

	const char *line = w.data;
	char *newline = strchr(line, '\n');
	int records = 0;

	assert_int_equal(proto_parse_status(line, newline + 1 - line, NULL, NULL, 0), 0);
	for (line = newline + 1; *line != '\n'; line = newline + 1) {
		newline = strchr(line, '\n');
		assert_int_equal(proto_parse_record(line, newline + 1 - line, &rec, NULL, 0),
				 PROTO_OK);
		assert_int_equal(proto_get_u32(&rec, "container", 1, &id, NULL, 0), PROTO_OK);
		assert_int_equal(id, ++records);
	}
	assert_int_equal(records, 3);
	assert_string_equal(line, "\n");
	proto_writer_free(&w);
}

/* ---- Fuzz ------------------------------------------------------------- */

#define FUZZ_ITERATIONS 200000
#define FUZZ_LINE_CAP 1200

/* splitmix64 */
static __u64 next_random(__u64 *state)
{
	__u64 z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t below(__u64 *state, size_t n)
{
	return next_random(state) % n;
}

/* The spec read again, independently of protocol.c: 1 when line is a valid
 * request (or record), with its words joined by single spaces in normalized. */
static int oracle(const char *line, size_t len, int record, char *normalized, size_t size)
{
	static const char lower[] = "abcdefghijklmnopqrstuvwxyz";
	static const char key_chars[] = "abcdefghijklmnopqrstuvwxyz_";
	size_t content = len;
	char copy[FUZZ_LINE_CAP + 1], *save, *word;
	int words = 0;

	if (content && line[content - 1] == '\n') {
		content--;
		if (content && line[content - 1] == '\r')
			content--;
	}
	if ((content == len ? len + 1 : len) > 1024 || content > FUZZ_LINE_CAP)
		return 0;
	for (size_t i = 0; i < content; i++) {
		unsigned char c = line[i];

		if (c != ' ' && (c < 0x21 || c > 0x7e))
			return 0;
	}
	memcpy(copy, line, content);
	copy[content] = '\0';
	normalized[0] = '\0';
	for (word = strtok_r(copy, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
		words++;
		if (!record && words <= 2) {
			if (strspn(word, lower) != strlen(word))
				return 0;
		} else {
			char *equals = strchr(word, '=');

			if (words - (record ? 0 : 2) > 24 || !equals || equals == word ||
			    !equals[1] || strchr(equals + 1, '=') ||
			    strspn(word, key_chars) != (size_t)(equals - word))
				return 0;
		}
		strncat(normalized, words > 1 ? " " : "", size - strlen(normalized) - 1);
		strncat(normalized, word, size - strlen(normalized) - 1);
	}
	strncat(normalized, "\n", size - strlen(normalized) - 1);
	return record ? words >= 1 : words >= 2;
}

static const char *const fuzz_verbs[] = { "add", "del", "list", "show", "drain", "up", "x" };
#define FUZZ_VERB_COUNT (sizeof(fuzz_verbs) / sizeof(fuzz_verbs[0]))
static const char *const fuzz_keys[] = { "name",      "addr",     "mac",       "iface",
					 "function",  "backend",  "container", "token",
					 "heartbeat_ms", "deadline_ms", "key", "n", "_", NULL };
#define FUZZ_KEY_COUNT (sizeof(fuzz_keys) / sizeof(fuzz_keys[0]) - 1)
static const char *const fuzz_values[] = {
	"0", "1", "42", "007", "0x2a", "0X2a", "0x", "-1", "+1", "18446744073709551615",
	"18446744073709551616", "4294967296", "0xffffffffffffffff", "vm1", "a.b_c-D",
	"abcdefghijklmnopqrstuvwxyz012345", "02:00:00:00:01:01", "02:00:00:00:01", "10.1.0.2",
	"2001:db8::1", "::ffff:1.2.3.4", "10.1.0.256", "0123456789abcdef0123456789abcdef",
	"0123456789ABCDEF0123456789abcdef", "warm", "x", "%s%n", ":::",
};
#define FUZZ_VALUE_COUNT (sizeof(fuzz_values) / sizeof(fuzz_values[0]))
static const char fuzz_interesting[] = { ' ', '=', '\0', '\r', '\n', '\t', 0x7f, (char)0x80,
					 (char)0xff, 'A', 'z', '_', '-', '0', ':' };

static void append_text(char *line, size_t *len, const char *text)
{
	size_t n = strlen(text);

	if (*len + n <= FUZZ_LINE_CAP) {
		memcpy(line + *len, text, n);
		*len += n;
	}
}

static void append_spaces(__u64 *state, char *line, size_t *len, size_t max)
{
	for (size_t n = below(state, max + 1); n; n--)
		append_text(line, len, " ");
}

static void random_word(__u64 *state, char *out, const char *alphabet, size_t max)
{
	size_t n = 1 + below(state, max), alphabet_len = strlen(alphabet);

	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[below(state, alphabet_len)];
	out[n] = '\0';
}

/* A line built word by word, mostly well formed. */
static size_t structured_line(__u64 *state, char *line)
{
	char word[64];
	size_t len = 0;
	int args = below(state, 20);

	append_spaces(state, line, &len, 2);
	if (below(state, 4)) { /* else a record */
		append_text(line, &len, fuzz_verbs[below(state, FUZZ_VERB_COUNT)]);
		append_spaces(state, line, &len, 1);
		append_text(line, &len, " ");
		random_word(state, word, "abcdefghijklmnopqrstuvwxyz", 10);
		append_text(line, &len, word);
	}
	for (int i = 0; i < args; i++) {
		append_text(line, &len, " ");
		append_spaces(state, line, &len, 1);
		if (below(state, 2))
			strcpy(word, fuzz_keys[below(state, FUZZ_KEY_COUNT)]);
		else
			random_word(state, word, "abcdefghijklmnopqrstuvwxyz_", 8);
		append_text(line, &len, word);
		append_text(line, &len, "=");
		if (below(state, 2))
			strcpy(word, fuzz_values[below(state, FUZZ_VALUE_COUNT)]);
		else
			random_word(state, word, "0123456789abcdefx:.-_/ABZ!~", 40);
		append_text(line, &len, word);
	}
	append_spaces(state, line, &len, 2);
	append_text(line, &len, (const char *[]){ "", "\n", "\r\n" }[below(state, 3)]);
	return len;
}

static void mutate(__u64 *state, char *line, size_t *len)
{
	size_t pos = *len ? below(state, *len) : 0;
	char byte = below(state, 3) ? fuzz_interesting[below(state, sizeof(fuzz_interesting))]
				    : (char)next_random(state);

	switch (below(state, 6)) {
	case 0: /* overwrite a byte */
		if (*len)
			line[pos] = byte;
		break;
	case 1: /* insert a byte */
		if (*len < FUZZ_LINE_CAP) {
			memmove(line + pos + 1, line + pos, *len - pos);
			line[pos] = byte;
			(*len)++;
		}
		break;
	case 2: /* delete a byte */
		if (*len) {
			memmove(line + pos, line + pos + 1, *len - pos - 1);
			(*len)--;
		}
		break;
	case 3: { /* duplicate a chunk */
		size_t n = below(state, 40);

		if (pos + n <= *len && *len + n <= FUZZ_LINE_CAP) {
			memmove(line + pos + n, line + pos, *len - pos);
			(*len) += n;
		}
		break;
	}
	case 4: /* grow to around the length limit */
		for (size_t target = 1015 + below(state, 16); *len < target;)
			line[(*len)++] = below(state, 2) ? ' ' : 'a';
		break;
	default: /* cut short */
		*len = pos;
		break;
	}
}

static size_t fuzz_line(__u64 *state, char *line)
{
	size_t len;

	if (below(state, 10) == 0) { /* raw bytes */
		len = below(state, FUZZ_LINE_CAP + 1);
		for (size_t i = 0; i < len; i++)
			line[i] = below(state, 2) ? "ab =_\n"[below(state, 6)]
						  : (char)next_random(state);
		return len;
	}
	len = structured_line(state, line);
	for (size_t n = below(state, 4) ? 0 : 1 + below(state, 4); n; n--)
		mutate(state, line, &len);
	return len;
}

/* Runs every getter and check over an accepted request: none may crash. */
static void exercise_getters(const struct proto_request *req)
{
	char message[MESSAGE_SIZE];
	__u64 u64;
	__u32 u32;
	__u8 bytes[16];
	const char *name;

	proto_check_keys(req, fuzz_keys, message, sizeof(message));
	for (int i = 0; i < req->arg_count; i++) {
		const char *key = req->args[i].key;

		proto_get_u64(req, key, 1, &u64, message, sizeof(message));
		proto_get_u32(req, key, 1, &u32, message, sizeof(message));
		proto_get_function(req, key, 1, &u64, message, sizeof(message));
		proto_get_name(req, key, 1, &name, message, sizeof(message));
		proto_get_mac(req, key, 1, bytes, message, sizeof(message));
		proto_get_addr(req, key, 1, bytes, message, sizeof(message));
		proto_get_token(req, key, 1, bytes, message, sizeof(message));
	}
}

/* Parses line both ways, compares with the oracle, and re-serialises what
 * was accepted. Returns 1 when it was accepted as a request. */
static int fuzz_check(const char *line, size_t len, struct proto_writer *w)
{
	static struct proto_request req;
	char message[MESSAGE_SIZE], expected[FUZZ_LINE_CAP + 2];
	int accepted = 0;

	for (int record = 0; record <= 1; record++) {
		enum proto_error err;

		message[0] = '\0';
		if (record)
			err = proto_parse_record(line, len, &req, message, sizeof(message));
		else
			err = proto_parse_line(line, len, &req, message, sizeof(message));
		int valid = oracle(line, len, record, expected, sizeof(expected));

		if ((err == PROTO_OK) != valid)
			fail_msg("'%.*s' (%zu bytes, %s): library says %s \"%s\", oracle %d", (int)len,
				 line, len, record ? "record" : "request", proto_error_code(err),
				 message, valid);
		if (err) {
			assert_int_equal(err, PROTO_BAD_REQUEST);
			assert_true(message[0] != '\0');
			continue;
		}

		proto_writer_reset(w);
		if (record)
			proto_record_begin(w);
		else
			proto_request_begin(w, req.verb, req.noun);
		for (int i = 0; i < req.arg_count; i++)
			proto_record_str(w, req.args[i].key, req.args[i].value);
		proto_record_end(w);
		assert_false(w->failed);
		assert_string_equal(w->data, expected);
		exercise_getters(&req);
		accepted += !record;
	}
	proto_parse_status(line, len, &(enum proto_error){ 0 }, message, sizeof(message));
	return accepted;
}

/* The writer's escaping as the test reads the header: '_' for bad bytes. */
static void escape_value(const char *value, char *out)
{
	if (!*value) {
		strcpy(out, "_");
		return;
	}
	for (; *value; value++) {
		unsigned char c = *value;

		*out++ = c > 0x20 && c < 0x7f && c != '=' ? c : '_';
	}
	*out = '\0';
}

/* Random byte strings through the writer always come back as a valid record,
 * escaped as documented. */
static void fuzz_writer(__u64 *state, struct proto_writer *w)
{
	static struct proto_request rec;
	char values[PROTO_MAX_ARGS][48], escaped[48];
	int fields = 1 + below(state, PROTO_MAX_ARGS);

	proto_writer_reset(w);
	proto_record_begin(w);
	for (int i = 0; i < fields; i++) {
		size_t n = below(state, 40);

		for (size_t j = 0; j < n; j++)
			values[i][j] = 1 + below(state, 255);
		values[i][n] = '\0';
		proto_record_str(w, fuzz_keys[i % FUZZ_KEY_COUNT], values[i]);
	}
	proto_record_end(w);
	assert_false(w->failed);
	assert_int_equal(proto_parse_record(w->data, w->len, &rec, NULL, 0), PROTO_OK);
	assert_int_equal(rec.arg_count, fields);
	for (int i = 0; i < fields; i++) {
		escape_value(values[i], escaped);
		assert_string_equal(rec.args[i].value, escaped);
	}
}

static void test_fuzz(void **state)
{
	(void)state;
	__u64 seed = 0x7e7e7e7e2024ULL;
	char line[FUZZ_LINE_CAP + 1];
	struct proto_writer w;
	int accepted = 0;

	proto_writer_init(&w);
	for (int i = 0; i < FUZZ_ITERATIONS; i++) {
		size_t len = fuzz_line(&seed, line);

		accepted += fuzz_check(line, len, &w);
		if (i % 4 == 0)
			fuzz_writer(&seed, &w);
	}
	proto_writer_free(&w);
	print_message("fuzz: %d lines, %d accepted as requests\n", FUZZ_ITERATIONS, accepted);
	/* Both outcomes must be well represented, or the loop tests little. */
	assert_true(accepted > FUZZ_ITERATIONS / 10);
	assert_true(accepted < FUZZ_ITERATIONS * 9 / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test(test_parse_request),
		cmocka_unit_test(test_parse_spaces_and_crlf),
		cmocka_unit_test(test_parse_empty),
		cmocka_unit_test(test_parse_only_verb),
		cmocka_unit_test(test_parse_bad_verb_noun),
		cmocka_unit_test(test_parse_bad_key_value),
		cmocka_unit_test(test_parse_bad_bytes),
		cmocka_unit_test(test_parse_length_limit),
		cmocka_unit_test(test_parse_arg_limit),
		cmocka_unit_test(test_parse_no_message_buffer),
		cmocka_unit_test(test_parse_record),
		cmocka_unit_test(test_parse_status),
		cmocka_unit_test(test_get_u64),
		cmocka_unit_test(test_get_u32),
		cmocka_unit_test(test_get_function),
		cmocka_unit_test(test_get_missing_and_optional),
		cmocka_unit_test(test_get_name),
		cmocka_unit_test(test_get_mac),
		cmocka_unit_test(test_get_vlan),
		cmocka_unit_test(test_get_encap_and_vni),
		cmocka_unit_test(test_get_functions),
		cmocka_unit_test(test_get_addr),
		cmocka_unit_test(test_get_token),
		cmocka_unit_test(test_check_keys),
		cmocka_unit_test(test_writer_response),
		cmocka_unit_test(test_writer_error),
		cmocka_unit_test(test_writer_escaping),
		cmocka_unit_test(test_writer_limits),
		cmocka_unit_test(test_request_builder),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
