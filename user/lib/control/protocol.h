/* SPDX-License-Identifier: MIT */
/* libtether-control: the control protocol of docs/protocol.md, without I/O:
 * parsing request lines and response records, typed access to their
 * arguments, and building responses (this header, protocol.c); records as
 * JSON for --json output (json.h). tetherd, tetherctl and tether-agent all use
 * it, so every side agrees on the syntax by construction; tether-invoke and
 * udp_load use its JSON.
 *
 * Every function that can fail takes a message buffer (may be NULL) and fills
 * it with one sentence for the operator that names the offending word or key;
 * tetherd sends it back as "error CODE: message". */
#ifndef TETHER_PROTOCOL_H
#define TETHER_PROTOCOL_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "tether/maps.h"

#define PROTO_LINE_MAX 1024 /* bytes of a line, including its newline */
#define PROTO_MAX_ARGS 24   /* key=value words of a request or record */
#define PROTO_NAME_MAX 31   /* characters of a name= or backend= value */

enum proto_error {
	PROTO_OK = 0,
	PROTO_BAD_REQUEST,
	PROTO_UNKNOWN_VERB,
	PROTO_MISSING_ARGUMENT,
	PROTO_BAD_ARGUMENT,
	PROTO_NOT_FOUND,
	PROTO_EXISTS,
	PROTO_INVALID_TRANSITION,
	PROTO_FULL,
	PROTO_UNAUTHORIZED,
	PROTO_INTERNAL,
	PROTO_UNAVAILABLE, /* a fleet's store could not be reached: nothing changed */
	PROTO_OVERLOADED,  /* the connection sends changes faster than it may: nothing changed */
};

/* "bad_request", "not_found", ... as on the wire; "ok" for PROTO_OK and
 * "internal" for a value outside the enum. */
const char *proto_error_code(enum proto_error e);

/* ---- Parsing ---------------------------------------------------------- */

struct proto_arg {
	const char *key;
	const char *value;
};

/* A parsed request or record. Every pointer points into buffer, so the struct
 * owns its strings and the caller's line may go away. */
struct proto_request {
	char buffer[PROTO_LINE_MAX]; /* private copy of the line, split in place */
	const char *verb, *noun;     /* NULL in a record */
	struct proto_arg args[PROTO_MAX_ARGS];
	int arg_count;
};

/* Parses one request line "VERB NOUN key=value ...", given with or without
 * its "\n" or "\r\n" (len bytes; it need not be NUL-terminated). The line,
 * counted with its newline (one byte added when it has none), is at most
 * PROTO_LINE_MAX bytes. Verb and noun are [a-z]+, keys [a-z_]+, values
 * non-empty printable ASCII without space or '='; words are separated by one
 * or more spaces, and spaces before and after them are ignored. Any other
 * byte (tab, NUL, a line break before the end, a bare "\r", non-ASCII) makes
 * the line a bad request.
 *
 * Duplicate and unknown keys are not checked here: the handler does, with
 * proto_check_keys(), which every handler must call.
 *
 * Returns PROTO_OK or PROTO_BAD_REQUEST with a message saying what is wrong and
 * where ("word 3 'foo' is not key=value"); on error req holds no words. */
enum proto_error proto_parse_line(const char *line, size_t len, struct proto_request *req,
				  char *message, size_t message_size);

/* A response record or event line: the same syntax, but every word is
 * key=value (at least one, at most PROTO_MAX_ARGS); verb and noun are NULL. */
enum proto_error proto_parse_record(const char *line, size_t len, struct proto_request *record,
				    char *message, size_t message_size);

/* The first answer line, with or without its "\n" or "\r\n": returns 0 for
 * "ok", 1 for "error CODE: message" with a known CODE (*error set, message
 * copied with control and non-ASCII bytes turned into spaces, so it is safe to
 * print), -1 for anything else. error and message may be NULL. */
int proto_parse_status(const char *line, size_t len, enum proto_error *error, char *message,
		       size_t message_size);

/* ---- Arguments -------------------------------------------------------- */

/* The value of key, or NULL. With duplicate keys, the first one's; handlers
 * reject duplicates first with proto_check_keys(). */
const char *proto_get(const struct proto_request *req, const char *key);

/* Rejects, with PROTO_BAD_ARGUMENT, a key not in allowed (a NULL-terminated
 * list) and a key given twice: "unknown argument 'x' for 'add backend'; expected
 * one of: name addr mac iface heartbeat_ms vlan". */
enum proto_error proto_check_keys(const struct proto_request *req, const char *const *allowed,
				  char *message, size_t message_size);

/* Typed getters. Each returns PROTO_OK (and sets *out), PROTO_OK leaving *out
 * untouched when the key is absent and not required (so set the default
 * first), PROTO_MISSING_ARGUMENT when it is absent and required, or
 * PROTO_BAD_ARGUMENT; both errors come with a message naming the key and what
 * a good value looks like. */

/* Decimal or "0x" hex (lowercase x; digits of either case); no sign, no
 * spaces, no overflow. Leading zeros are decimal, never octal. */
enum proto_error proto_get_u64(const struct proto_request *req, const char *key, int required,
			       __u64 *out, char *message, size_t message_size);
enum proto_error proto_get_u32(const struct proto_request *req, const char *key, int required,
			       __u32 *out, char *message, size_t message_size);
/* A function id: as proto_get_u64, but nonzero. */
enum proto_error proto_get_function(const struct proto_request *req, const char *key,
				    int required, __u64 *out, char *message,
				    size_t message_size);
/* An 802.1Q VLAN id, 1 to 4094, or 0 for none (untagged); as proto_get_u64
 * reads numbers. */
enum proto_error proto_get_vlan(const struct proto_request *req, const char *key, int required,
				__u16 *out, char *message, size_t message_size);
/* A VXLAN network identifier, 0 to TETHER_VNI_MAX. */
enum proto_error proto_get_vni(const struct proto_request *req, const char *key, int required,
			       __u32 *out, char *message, size_t message_size);
/* How a backend is reached: "l2", "vxlan" or "ipip" (enum backend_encap). */
enum proto_error proto_get_encap(const struct proto_request *req, const char *key, int required,
				 __u8 *out, char *message, size_t message_size);
const char *proto_encap_name(unsigned encap);
int proto_encap_from_name(const char *name); /* -1: none of them */
/* [A-Za-z0-9._-]{1,31}; *out points into req. */
enum proto_error proto_get_name(const struct proto_request *req, const char *key, int required,
				const char **out, char *message, size_t message_size);
/* aa:bb:cc:dd:ee:ff, two hex digits of either case per byte. */
enum proto_error proto_get_mac(const struct proto_request *req, const char *key, int required,
			       __u8 out[6], char *message, size_t message_size);
/* IPv4 (as the v4-mapped ::ffff:a.b.c.d) or IPv6, as inet_pton reads them. */
enum proto_error proto_get_addr(const struct proto_request *req, const char *key, int required,
				__u8 out[16], char *message, size_t message_size);
/* The functions a backend may hold (include/tether/maps.h): "7,9,0x100-0x1ff"
 * (ids and inclusive ranges, at most TETHER_ALLOWED_RANGES), or "any". */
struct proto_functions {
	bool any;
	struct allowed_functions allowed; /* when not any */
};
enum proto_error proto_get_functions(const struct proto_request *req, const char *key,
				     int required, struct proto_functions *out, char *message,
				     size_t message_size);
bool proto_functions_allow(const struct allowed_functions *allowed, __u64 function_id);
/* "7,9,256-511" (decimal), "none" for an empty set. */
void proto_functions_format(const struct allowed_functions *allowed, char *out, size_t size);

/* 32 lowercase hex digits, byte 0 first: the token as on the wire. */
enum proto_error proto_get_token(const struct proto_request *req, const char *key, int required,
				 __u8 out[16], char *message, size_t message_size);

/* ---- Building responses (and requests) -------------------------------- */

/* A growing, always NUL-terminated buffer of response lines. Allocation
 * failure, or a record the other side could not parse (more than
 * PROTO_MAX_ARGS fields, longer than PROTO_LINE_MAX, an invalid verb, noun or
 * key: all bugs in the caller), sets failed and makes later writes no-ops;
 * tetherd then resets the writer and answers "error internal". */
struct proto_writer {
	char *data;
	size_t len, cap;
	int failed;
	int in_record;       /* between *_begin and proto_record_end */
	size_t record_start; /* offset of the open line in data */
	int record_fields;   /* key=value fields in the open line */
};

void proto_writer_init(struct proto_writer *w);
void proto_writer_free(struct proto_writer *w);
/* Empties the buffer and clears failed: a failed request answers only its
 * error, whatever it had begun to write. */
void proto_writer_reset(struct proto_writer *w);

/* "ok\n" */
void proto_write_ok(struct proto_writer *w);
/* "error CODE: message\n". Control and non-ASCII bytes of the message become
 * spaces, trailing spaces go, an empty message becomes the code's meaning
 * from the spec, and the line (newline included) is cut to PROTO_LINE_MAX
 * bytes. PROTO_OK or an unknown e is written as internal. */
void proto_write_error(struct proto_writer *w, enum proto_error e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The empty line that ends a response. */
void proto_write_end(struct proto_writer *w);

/* One record line "k=v k=v\n". Values carry data, so they are made valid
 * rather than refused: every byte that is not printable ASCII, or is a space
 * or '=', becomes '_', and an empty (or NULL) value is written as "_". Keys
 * come from the code and must be [a-z_]+. A record with no field writes
 * nothing, since an empty line would end the response. */
void proto_record_begin(struct proto_writer *w);
void proto_record_str(struct proto_writer *w, const char *key, const char *value);
void proto_record_u64(struct proto_writer *w, const char *key, __u64 value); /* decimal */
/* n bytes as 2n lowercase hex digits (a token: proto_get_token reads it back). */
void proto_record_hex(struct proto_writer *w, const char *key, const __u8 *bytes, size_t n);
void proto_record_end(struct proto_writer *w);

/* A request line "verb noun k=v ...\n" for a client: begin it with this, add
 * arguments with proto_record_*, end it with proto_record_end. Values are made
 * valid as in records, so a client that must not alter user input checks it
 * first with proto_value_valid(). */
void proto_request_begin(struct proto_writer *w, const char *verb, const char *noun);

/* 1 when value is a valid value word: non-empty printable ASCII without
 * space or '='. */
int proto_value_valid(const char *value);

#endif
