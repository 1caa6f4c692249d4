// SPDX-License-Identifier: MIT
/* The control protocol's syntax (docs/protocol.md). Parsing checks every byte
 * before it splits anything, so the splitter and the getters only ever see
 * printable ASCII; messages quote the offending word with any unprintable byte
 * shown as '?', since they end up on an operator's terminal. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "tether/maps.h"

#define EXPECTED_SHAPE "expected VERB NOUN key=value ..."

/* ---- Error codes ------------------------------------------------------ */

static const struct {
	const char *code;
	const char *meaning; /* from the spec's table, for an empty message */
} errors[] = {
	[PROTO_OK] = { "ok", "no error" },
	[PROTO_BAD_REQUEST] = { "bad_request", "not a request" },
	[PROTO_UNKNOWN_VERB] = { "unknown_verb", "the verb and noun together name no request" },
	[PROTO_MISSING_ARGUMENT] = { "missing_argument", "a required argument is absent" },
	[PROTO_BAD_ARGUMENT] = { "bad_argument", "a value does not parse or is out of range" },
	[PROTO_NOT_FOUND] = { "not_found", "no such backend, container or function" },
	[PROTO_EXISTS] = { "exists", "it exists already" },
	[PROTO_INVALID_TRANSITION] = { "invalid_transition",
				       "the lifecycle does not allow that change" },
	[PROTO_FULL] = { "full", "no free backend id or container slot" },
	[PROTO_UNAUTHORIZED] = { "unauthorized", "not authorized" },
	[PROTO_INTERNAL] = { "internal", "internal error" },
	[PROTO_UNAVAILABLE] = { "unavailable", "the fleet's store is unreachable; nothing changed" },
	[PROTO_OVERLOADED] = { "overloaded", "too many changes on this connection; nothing changed" },
};

#define ERROR_COUNT (sizeof(errors) / sizeof(errors[0]))

static enum proto_error known_error(enum proto_error e)
{
	return (unsigned int)e < ERROR_COUNT ? e : PROTO_INTERNAL;
}

const char *proto_error_code(enum proto_error e)
{
	return errors[known_error(e)].code;
}

/* The error named by code[0..len-1]; PROTO_OK when none is (and for "ok",
 * which is no error code). */
static enum proto_error error_from_code(const char *code, size_t len)
{
	for (unsigned int e = PROTO_OK + 1; e < ERROR_COUNT; e++)
		if (strlen(errors[e].code) == len && !memcmp(errors[e].code, code, len))
			return e;
	return PROTO_OK;
}

/* ---- Messages --------------------------------------------------------- */

static void say(char *message, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *message, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!message || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(message, size, fmt, ap);
	va_end(ap);
}

/* Appends to a message that say() began, within the same size. */
static void say_more(char *message, size_t size, const char *text)
{
	if (!message || !size)
		return;
	size_t used = strnlen(message, size);

	if (used < size)
		snprintf(message + used, size - used, "%s", text);
}

/* Printable ASCII but space; false for every byte of a UTF-8 sequence. */
static int is_printable(char c)
{
	return c > 0x20 && c < 0x7f;
}

/* A word as messages quote it: unprintable bytes as '?', cut after 48
 * characters, so a 1000-byte word does not bury the rest of the sentence. */
struct shown {
	char text[56];
};

static struct shown show(const char *word, size_t len)
{
	struct shown s;
	size_t n = len > 48 ? 48 : len;

	for (size_t i = 0; i < n; i++)
		s.text[i] = is_printable(word[i]) ? word[i] : '?';
	strcpy(s.text + n, len > n ? "..." : "");
	return s;
}

/* ---- Character classes ------------------------------------------------ */

static int is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static int is_key_char(char c)
{
	return is_lower(c) || c == '_';
}

static int is_name_char(char c)
{
	return is_lower(c) || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == '-';
}

static int is_value_char(char c)
{
	return is_printable(c) && c != '=';
}

static int all_of(const char *s, size_t len, int (*ok)(char))
{
	for (size_t i = 0; i < len; i++)
		if (!ok(s[i]))
			return 0;
	return 1;
}

static int is_word_of(const char *s, int (*ok)(char))
{
	return *s && all_of(s, strlen(s), ok);
}

int proto_value_valid(const char *value)
{
	return value && is_word_of(value, is_value_char);
}

/* 0-9 for a decimal digit, -1 otherwise. */
static int decimal_value(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : -1;
}

/* 0-15 for a hex digit, -1 otherwise. */
static int hex_value(char c, int lowercase_only)
{
	if (decimal_value(c) >= 0)
		return decimal_value(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (!lowercase_only && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ---- Parsing lines ---------------------------------------------------- */

enum line_kind { LINE_REQUEST, LINE_RECORD };

/* Length of the line without its "\n" or "\r\n". A "\r" with no "\n" after it
 * stays, and is rejected as a control character. */
static size_t strip_newline(const char *line, size_t len)
{
	if (len && line[len - 1] == '\n') {
		len--;
		if (len && line[len - 1] == '\r')
			len--;
	}
	return len;
}

/* The word of line[0..len-1] that holds byte pos, and its 1-based number. */
static int word_at(const char *line, size_t pos, size_t len, size_t *start, size_t *end)
{
	int number = 0;

	for (size_t i = 0; i <= pos; i++)
		if (line[i] != ' ' && (i == 0 || line[i - 1] == ' '))
			number++;
	*start = pos;
	while (*start && line[*start - 1] != ' ')
		(*start)--;
	*end = pos;
	while (*end < len && line[*end] != ' ')
		(*end)++;
	return number;
}

static enum proto_error bad_byte(const char *line, size_t pos, size_t len, char *message,
				 size_t size)
{
	unsigned char c = (unsigned char)line[pos];
	size_t start, end;
	int number = word_at(line, pos, len, &start, &end);
	struct shown word = show(line + start, end - start);

	if (c == '\n')
		say(message, size, "line break at column %zu in word %d '%s': send one request per line",
		    pos + 1, number, word.text);
	else if (c == 0)
		say(message, size, "NUL byte at column %zu in word %d '%s'", pos + 1, number,
		    word.text);
	else if (c >= 0x80)
		say(message, size, "non-ASCII byte 0x%02x at column %zu in word %d '%s'", c, pos + 1,
		    number, word.text);
	else
		say(message, size, "control character 0x%02x at column %zu in word %d '%s'", c,
		    pos + 1, number, word.text);
	return PROTO_BAD_REQUEST;
}

/* Every byte must be a space or printable ASCII. */
static enum proto_error check_bytes(const char *line, size_t len, char *message, size_t size)
{
	for (size_t i = 0; i < len; i++)
		if (line[i] != ' ' && !is_printable(line[i]))
			return bad_byte(line, i, len, message, size);
	return PROTO_OK;
}

/* The next space-separated word of *cursor, NUL-terminated in place, or NULL
 * at the end. */
static char *next_word(char **cursor)
{
	char *p = *cursor;

	while (*p == ' ')
		p++;
	if (!*p)
		return NULL;

	char *word = p;

	while (*p && *p != ' ')
		p++;
	if (*p)
		*p++ = '\0';
	*cursor = p;
	return word;
}

static enum proto_error check_verb_or_noun(const char *word, int number, char *message,
					   size_t size)
{
	if (is_word_of(word, is_lower))
		return PROTO_OK;
	say(message, size, "word %d '%s' is not a %s (lowercase letters a-z only); " EXPECTED_SHAPE,
	    number, show(word, strlen(word)).text, number == 1 ? "verb" : "noun");
	return PROTO_BAD_REQUEST;
}

static enum proto_error add_argument(struct proto_request *req, char *word, int number,
				     char *message, size_t size)
{
	struct shown shown = show(word, strlen(word));
	char *equals = strchr(word, '=');

	if (req->arg_count == PROTO_MAX_ARGS) {
		say(message, size, "too many arguments: word %d '%s' would be argument %d, at most %d are allowed",
		    number, shown.text, PROTO_MAX_ARGS + 1, PROTO_MAX_ARGS);
		return PROTO_BAD_REQUEST;
	}
	if (!equals) {
		say(message, size, "word %d '%s' is not key=value", number, shown.text);
		return PROTO_BAD_REQUEST;
	}
	*equals = '\0';
	const char *key = word, *value = equals + 1;

	if (!*key) {
		say(message, size, "word %d '%s' has no key before '='", number, shown.text);
	} else if (!is_word_of(key, is_key_char)) {
		say(message, size, "word %d '%s': key '%s' may only hold lowercase letters and '_'",
		    number, shown.text, show(key, strlen(key)).text);
	} else if (!*value) {
		say(message, size, "word %d '%s': the value of '%s' is empty", number, shown.text,
		    key);
	} else if (strchr(value, '=')) {
		say(message, size, "word %d '%s': the value of '%s' contains '='", number,
		    shown.text, key);
	} else {
		req->args[req->arg_count++] = (struct proto_arg){ key, value };
		return PROTO_OK;
	}
	return PROTO_BAD_REQUEST;
}

/* Splits req->buffer (printable ASCII and spaces only) into words. */
static enum proto_error split_words(struct proto_request *req, enum line_kind kind, char *message,
				    size_t size)
{
	char *cursor = req->buffer, *word;
	int number = 0;
	enum proto_error err = PROTO_OK;

	while (!err && (word = next_word(&cursor))) {
		number++;
		if (kind == LINE_REQUEST && number <= 2) {
			err = check_verb_or_noun(word, number, message, size);
			*(number == 1 ? &req->verb : &req->noun) = word;
		} else {
			err = add_argument(req, word, number, message, size);
		}
	}
	if (err)
		return err;
	if (number == 0) {
		say(message, size, "empty %s; %s", kind == LINE_REQUEST ? "request" : "record",
		    kind == LINE_REQUEST ? EXPECTED_SHAPE : "expected key=value ...");
		return PROTO_BAD_REQUEST;
	}
	if (kind == LINE_REQUEST && number == 1) {
		say(message, size, "only a verb '%s'; " EXPECTED_SHAPE, req->verb);
		return PROTO_BAD_REQUEST;
	}
	return PROTO_OK;
}

static enum proto_error parse(const char *line, size_t len, enum line_kind kind,
			      struct proto_request *req, char *message, size_t size)
{
	size_t content = strip_newline(line, len);
	/* The limit counts the newline; a line given without one needs room for it. */
	size_t counted = content < len ? len : len + 1;
	enum proto_error err;

	req->verb = req->noun = NULL;
	req->arg_count = 0;
	req->buffer[0] = '\0';
	if (counted > PROTO_LINE_MAX) {
		say(message, size, "line too long: %zu bytes, at most %d including the newline",
		    counted, PROTO_LINE_MAX);
		return PROTO_BAD_REQUEST;
	}
	err = check_bytes(line, content, message, size);
	if (err)
		return err;
	memcpy(req->buffer, line, content);
	req->buffer[content] = '\0';
	err = split_words(req, kind, message, size);
	if (err) {
		req->verb = req->noun = NULL;
		req->arg_count = 0;
	}
	return err;
}

enum proto_error proto_parse_line(const char *line, size_t len, struct proto_request *req,
				  char *message, size_t message_size)
{
	return parse(line, len, LINE_REQUEST, req, message, message_size);
}

enum proto_error proto_parse_record(const char *line, size_t len, struct proto_request *record,
				    char *message, size_t message_size)
{
	return parse(line, len, LINE_RECORD, record, message, message_size);
}

/* Copies text as printable ASCII, so a hostile or broken server cannot send
 * escape sequences to the operator's terminal. */
static void copy_printable(char *out, size_t size, const char *text, size_t len)
{
	if (!out || !size)
		return;
	if (len > size - 1)
		len = size - 1;
	for (size_t i = 0; i < len; i++)
		out[i] = is_printable(text[i]) ? text[i] : ' ';
	out[len] = '\0';
}

int proto_parse_status(const char *line, size_t len, enum proto_error *error, char *message,
		       size_t message_size)
{
	static const char prefix[] = "error ";
	size_t content = strip_newline(line, len);

	if (content == 2 && !memcmp(line, "ok", 2))
		return 0;
	if (content < sizeof(prefix) - 1 || memcmp(line, prefix, sizeof(prefix) - 1))
		return -1;

	const char *code = line + sizeof(prefix) - 1, *end = line + content;
	const char *colon = code;

	while (colon < end && is_key_char(*colon))
		colon++;
	if (end - colon < 2 || colon[0] != ':' || colon[1] != ' ')
		return -1;

	enum proto_error e = error_from_code(code, colon - code);

	if (e == PROTO_OK)
		return -1;
	if (error)
		*error = e;
	copy_printable(message, message_size, colon + 2, end - (colon + 2));
	return 1;
}

/* ---- Arguments -------------------------------------------------------- */

const char *proto_get(const struct proto_request *req, const char *key)
{
	for (int i = 0; i < req->arg_count; i++)
		if (!strcmp(req->args[i].key, key))
			return req->args[i].value;
	return NULL;
}

static int is_listed(const char *const *list, const char *key)
{
	for (; *list; list++)
		if (!strcmp(*list, key))
			return 1;
	return 0;
}

/* "'add backend'" for a request, "the record" for a record. */
struct context {
	char text[PROTO_LINE_MAX + 4];
};

static struct context context_of(const struct proto_request *req)
{
	struct context c;

	if (req->verb)
		snprintf(c.text, sizeof(c.text), "'%s %s'", req->verb, req->noun);
	else
		snprintf(c.text, sizeof(c.text), "the record");
	return c;
}

static enum proto_error unknown_key(const struct proto_request *req, const char *key,
				    const char *const *allowed, char *message, size_t size)
{
	struct context context = context_of(req);

	if (!*allowed) {
		say(message, size, "unknown argument '%s': %s takes no arguments", key,
		    context.text);
		return PROTO_BAD_ARGUMENT;
	}
	say(message, size, "unknown argument '%s' for %s; expected one of:", key, context.text);
	for (; *allowed; allowed++) {
		say_more(message, size, " ");
		say_more(message, size, *allowed);
	}
	return PROTO_BAD_ARGUMENT;
}

enum proto_error proto_check_keys(const struct proto_request *req, const char *const *allowed,
				  char *message, size_t message_size)
{
	for (int i = 0; i < req->arg_count; i++) {
		const char *key = req->args[i].key;

		if (!is_listed(allowed, key))
			return unknown_key(req, key, allowed, message, message_size);
		for (int j = 0; j < i; j++) {
			if (!strcmp(req->args[j].key, key)) {
				say(message, message_size, "argument '%s' given twice for %s", key,
				    context_of(req).text);
				return PROTO_BAD_ARGUMENT;
			}
		}
	}
	return PROTO_OK;
}

/* One value type: what the operator is told it should look like, and its
 * parser (0 or -1). */
struct value_type {
	const char *expected;
	int (*parse)(const char *text, void *out);
};

/* Finds key and parses its value as type. */
static enum proto_error get_typed(const struct proto_request *req, const char *key, int required,
				  const struct value_type *type, void *out, char *message,
				  size_t size)
{
	const char *value = proto_get(req, key);

	if (!value && !required)
		return PROTO_OK;
	if (!value) {
		say(message, size, "missing argument '%s' for %s: expected %s", key,
		    context_of(req).text, type->expected);
		return PROTO_MISSING_ARGUMENT;
	}
	if (type->parse(value, out)) {
		say(message, size, "bad value '%s' for '%s': expected %s",
		    show(value, strlen(value)).text, key, type->expected);
		return PROTO_BAD_ARGUMENT;
	}
	return PROTO_OK;
}

static int parse_u64(const char *text, void *out)
{
	const char *p = text;
	int base = 10;
	__u64 value = 0;

	if (p[0] == '0' && p[1] == 'x') {
		base = 16;
		p += 2;
	}
	if (!*p)
		return -1;
	for (; *p; p++) {
		int digit = base == 16 ? hex_value(*p, 0) : decimal_value(*p);

		if (digit < 0 || value > (UINT64_MAX - digit) / base)
			return -1;
		value = value * base + digit;
	}
	*(__u64 *)out = value;
	return 0;
}

static int parse_u32(const char *text, void *out)
{
	__u64 value;

	if (parse_u64(text, &value) || value > UINT32_MAX)
		return -1;
	*(__u32 *)out = value;
	return 0;
}

static int parse_function(const char *text, void *out)
{
	__u64 value;

	if (parse_u64(text, &value) || value == 0)
		return -1;
	*(__u64 *)out = value;
	return 0;
}

static int parse_vlan(const char *text, void *out)
{
	__u64 value;

	if (parse_u64(text, &value) || value > TETHER_VLAN_MAX)
		return -1;
	*(__u16 *)out = (__u16)value;
	return 0;
}

static int parse_vni(const char *text, void *out)
{
	__u64 value;

	if (parse_u64(text, &value) || value > TETHER_VNI_MAX)
		return -1;
	*(__u32 *)out = (__u32)value;
	return 0;
}

static int parse_encap(const char *text, void *out)
{
	int encap = proto_encap_from_name(text);

	if (encap < 0)
		return -1;
	*(__u8 *)out = (__u8)encap;
	return 0;
}

static int parse_name(const char *text, void *out)
{
	if (strlen(text) > PROTO_NAME_MAX || !is_word_of(text, is_name_char))
		return -1;
	*(const char **)out = text;
	return 0;
}

static int parse_mac(const char *text, void *out)
{
	__u8 mac[6];

	if (strlen(text) != 17)
		return -1;
	for (int i = 0; i < 6; i++) {
		const char *p = text + 3 * i;
		int high = hex_value(p[0], 0), low = hex_value(p[1], 0);

		if (high < 0 || low < 0 || (i < 5 && p[2] != ':'))
			return -1;
		mac[i] = high << 4 | low;
	}
	memcpy(out, mac, sizeof(mac));
	return 0;
}

static int parse_addr(const char *text, void *out)
{
	static const __u8 v4mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };
	__u8 addr[16];

	if (inet_pton(AF_INET, text, addr + 12) == 1)
		memcpy(addr, v4mapped_prefix, sizeof(v4mapped_prefix));
	else if (inet_pton(AF_INET6, text, addr) != 1)
		return -1;
	memcpy(out, addr, sizeof(addr));
	return 0;
}

static int parse_token(const char *text, void *out)
{
	__u8 token[16];

	if (strlen(text) != 2 * sizeof(token))
		return -1;
	for (size_t i = 0; i < sizeof(token); i++) {
		int high = hex_value(text[2 * i], 1), low = hex_value(text[2 * i + 1], 1);

		if (high < 0 || low < 0)
			return -1;
		token[i] = high << 4 | low;
	}
	memcpy(out, token, sizeof(token));
	return 0;
}

/* "7,9,0x100-0x1ff" (ids and inclusive ranges, each nonzero, first <= last),
 * or "any": a struct proto_functions. */
static int parse_functions(const char *text, void *out)
{
	struct proto_functions set = { 0 };
	char copy[PROTO_LINE_MAX];

	if (!strcmp(text, "any")) {
		set.any = true;
		*(struct proto_functions *)out = set;
		return 0;
	}
	if (strlen(text) >= sizeof(copy))
		return -1;
	snprintf(copy, sizeof(copy), "%s", text);
	for (char *item = copy, *next; item; item = next) {
		struct function_range *range;
		char *dash;

		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		if (set.allowed.count == TETHER_ALLOWED_RANGES)
			return -1;
		range = &set.allowed.ranges[set.allowed.count++];
		dash = strchr(item, '-');
		if (dash)
			*dash = '\0';
		if (parse_function(item, &range->first) ||
		    parse_function(dash ? dash + 1 : item, &range->last) ||
		    range->first > range->last)
			return -1;
	}
	*(struct proto_functions *)out = set;
	return 0;
}

static const struct value_type type_u64 = {
	"a number from 0 to 18446744073709551615, decimal or 0x hex", parse_u64
};
static const struct value_type type_u32 = {
	"a number from 0 to 4294967295, decimal or 0x hex", parse_u32
};
static const struct value_type type_function = {
	"a nonzero 64-bit function id, decimal or 0x hex", parse_function
};
static const struct value_type type_vlan = {
	"a VLAN id from 1 to 4094, or 0 for untagged", parse_vlan
};
static const struct value_type type_vni = {
	"a VXLAN network identifier from 0 to 16777215", parse_vni
};
static const struct value_type type_encap = {
	"l2, vxlan or ipip", parse_encap
};
static const struct value_type type_name = {
	"a name of 1 to 31 letters, digits, '.', '_' or '-'", parse_name
};
static const struct value_type type_mac = {
	"a MAC address like 02:00:00:00:01:01", parse_mac
};
static const struct value_type type_addr = {
	"an IPv4 or IPv6 address like 10.1.0.2 or 2001:db8::1", parse_addr
};
static const struct value_type type_functions = {
	"function ids and ranges like 7,9,0x100-0x1ff (at most 16), or any", parse_functions
};
static const struct value_type type_token = {
	"a token of 32 lowercase hex digits", parse_token
};

enum proto_error proto_get_u64(const struct proto_request *req, const char *key, int required,
			       __u64 *out, char *message, size_t message_size)
{
	return get_typed(req, key, required, &type_u64, out, message, message_size);
}

enum proto_error proto_get_u32(const struct proto_request *req, const char *key, int required,
			       __u32 *out, char *message, size_t message_size)
{
	return get_typed(req, key, required, &type_u32, out, message, message_size);
}

enum proto_error proto_get_function(const struct proto_request *req, const char *key,
				    int required, __u64 *out, char *message,
				    size_t message_size)
{
	return get_typed(req, key, required, &type_function, out, message, message_size);
}

enum proto_error proto_get_functions(const struct proto_request *req, const char *key,
				     int required, struct proto_functions *out, char *message,
				     size_t message_size)
{
	return get_typed(req, key, required, &type_functions, out, message, message_size);
}

bool proto_functions_allow(const struct allowed_functions *allowed, __u64 function_id)
{
	for (__u32 i = 0; i < allowed->count && i < TETHER_ALLOWED_RANGES; i++)
		if (function_id >= allowed->ranges[i].first && function_id <= allowed->ranges[i].last)
			return true;
	return false;
}

void proto_functions_format(const struct allowed_functions *allowed, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (__u32 i = 0; i < allowed->count && i < TETHER_ALLOWED_RANGES && used < size; i++) {
		const struct function_range *r = &allowed->ranges[i];
		int n = r->first == r->last
				? snprintf(out + used, size - used, "%s%llu", i ? "," : "",
					   (unsigned long long)r->first)
				: snprintf(out + used, size - used, "%s%llu-%llu", i ? "," : "",
					   (unsigned long long)r->first, (unsigned long long)r->last);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (!allowed->count)
		snprintf(out, size, "none");
}

enum proto_error proto_get_vlan(const struct proto_request *req, const char *key, int required,
				__u16 *out, char *message, size_t message_size)
{
	return get_typed(req, key, required, &type_vlan, out, message, message_size);
}

enum proto_error proto_get_vni(const struct proto_request *req, const char *key, int required,
			       __u32 *out, char *message, size_t message_size)
{
	return get_typed(req, key, required, &type_vni, out, message, message_size);
}

enum proto_error proto_get_encap(const struct proto_request *req, const char *key, int required,
				 __u8 *out, char *message, size_t message_size)
{
	return get_typed(req, key, required, &type_encap, out, message, message_size);
}

static const char *const encap_names[] = {
	[BACKEND_L2] = "l2", [BACKEND_VXLAN] = "vxlan", [BACKEND_IPIP] = "ipip",
};

const char *proto_encap_name(unsigned encap)
{
	return encap < sizeof(encap_names) / sizeof(encap_names[0]) ? encap_names[encap] : "unknown";
}

int proto_encap_from_name(const char *name)
{
	for (unsigned i = 0; i < sizeof(encap_names) / sizeof(encap_names[0]); i++)
		if (!strcmp(name, encap_names[i]))
			return (int)i;
	return -1;
}

enum proto_error proto_get_name(const struct proto_request *req, const char *key, int required,
				const char **out, char *message, size_t message_size)
{
	return get_typed(req, key, required, &type_name, out, message, message_size);
}

enum proto_error proto_get_mac(const struct proto_request *req, const char *key, int required,
			       __u8 out[6], char *message, size_t message_size)
{
	return get_typed(req, key, required, &type_mac, out, message, message_size);
}

enum proto_error proto_get_addr(const struct proto_request *req, const char *key, int required,
				__u8 out[16], char *message, size_t message_size)
{
	return get_typed(req, key, required, &type_addr, out, message, message_size);
}

enum proto_error proto_get_token(const struct proto_request *req, const char *key, int required,
				 __u8 out[16], char *message, size_t message_size)
{
	return get_typed(req, key, required, &type_token, out, message, message_size);
}

/* ---- Writer ----------------------------------------------------------- */

void proto_writer_init(struct proto_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void proto_writer_free(struct proto_writer *w)
{
	free(w->data);
	proto_writer_init(w);
}

void proto_writer_reset(struct proto_writer *w)
{
	w->len = 0;
	w->failed = 0;
	w->in_record = 0;
	if (w->data)
		w->data[0] = '\0';
}

/* Room for extra more bytes and the NUL; 0 once the writer has failed. */
static int reserve(struct proto_writer *w, size_t extra)
{
	if (w->failed)
		return 0;
	if (w->len + extra < w->cap)
		return 1;

	size_t cap = w->cap ? w->cap : 256;

	while (cap <= w->len + extra)
		cap *= 2;

	char *data = realloc(w->data, cap);

	if (!data) {
		w->failed = 1;
		return 0;
	}
	w->data = data;
	w->cap = cap;
	return 1;
}

static void append(struct proto_writer *w, const char *text, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->data + w->len, text, n);
	w->len += n;
	w->data[w->len] = '\0';
}

static void append_string(struct proto_writer *w, const char *text)
{
	append(w, text, strlen(text));
}

/* A whole line (ok, error, the end) may not start inside a record. */
static int line_may_start(struct proto_writer *w)
{
	if (w->in_record)
		w->failed = 1;
	return !w->failed;
}

void proto_write_ok(struct proto_writer *w)
{
	if (line_may_start(w))
		append_string(w, "ok\n");
}

void proto_write_end(struct proto_writer *w)
{
	if (line_may_start(w))
		append_string(w, "\n");
}

/* Spaces for unprintable bytes, no trailing spaces. */
static void clean_message(char *text)
{
	size_t len = strlen(text);

	for (size_t i = 0; i < len; i++)
		if (!is_printable(text[i]))
			text[i] = ' ';
	while (len && text[len - 1] == ' ')
		text[--len] = '\0';
}

void proto_write_error(struct proto_writer *w, enum proto_error e, const char *fmt, ...)
{
	char text[PROTO_LINE_MAX], line[PROTO_LINE_MAX];
	va_list ap;

	if (!line_may_start(w))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	clean_message(text);
	e = known_error(e);
	if (e == PROTO_OK) /* "error ok:" would be no status line at all */
		e = PROTO_INTERNAL;

	/* Cut to PROTO_LINE_MAX - 1 bytes, leaving room for the newline. */
	int n = snprintf(line, PROTO_LINE_MAX, "error %s: %s", errors[e].code,
			 *text ? text : errors[e].meaning);

	if (n > PROTO_LINE_MAX - 1)
		n = PROTO_LINE_MAX - 1;
	append(w, line, n);
	append_string(w, "\n");
}

void proto_record_begin(struct proto_writer *w)
{
	if (!line_may_start(w))
		return;
	w->in_record = 1;
	w->record_start = w->len;
	w->record_fields = 0;
}

void proto_request_begin(struct proto_writer *w, const char *verb, const char *noun)
{
	proto_record_begin(w);
	if (!is_word_of(verb, is_lower) || !is_word_of(noun, is_lower)) {
		w->failed = 1;
		return;
	}
	append_string(w, verb);
	append_string(w, " ");
	append_string(w, noun);
}

/* Writes " key=" (no space first in a line); the caller writes the value. */
static int begin_field(struct proto_writer *w, const char *key)
{
	if (!w->in_record || !is_word_of(key, is_key_char))
		w->failed = 1;
	if (w->failed)
		return 0;
	if (w->len > w->record_start)
		append_string(w, " ");
	append_string(w, key);
	append_string(w, "=");
	w->record_fields++;
	return !w->failed;
}

void proto_record_str(struct proto_writer *w, const char *key, const char *value)
{
	if (!begin_field(w, key))
		return;
	if (!value || !*value) {
		append_string(w, "_");
		return;
	}
	for (const char *p = value; *p; p++) {
		char c = is_value_char(*p) ? *p : '_';

		append(w, &c, 1);
	}
}

void proto_record_u64(struct proto_writer *w, const char *key, __u64 value)
{
	char text[24];

	snprintf(text, sizeof(text), "%llu", (unsigned long long)value);
	proto_record_str(w, key, text);
}

void proto_record_hex(struct proto_writer *w, const char *key, const __u8 *bytes, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	if (!begin_field(w, key))
		return;
	if (!n)
		append_string(w, "_");
	for (size_t i = 0; i < n; i++) {
		char pair[2] = { digits[bytes[i] >> 4], digits[bytes[i] & 0xf] };

		append(w, pair, 2);
	}
}

void proto_record_end(struct proto_writer *w)
{
	if (!w->in_record)
		w->failed = 1;
	w->in_record = 0;
	if (w->failed || w->len == w->record_start)
		return;
	/* The other side parses with the same limits, so a record beyond them
	 * would reach it as an error: fail here, where the bug is. */
	if (w->record_fields > PROTO_MAX_ARGS || w->len - w->record_start + 1 > PROTO_LINE_MAX) {
		w->failed = 1;
		return;
	}
	append_string(w, "\n");
}
