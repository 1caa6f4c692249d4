// SPDX-License-Identifier: MIT
/* libFuzzer target: the control protocol parser, as tetherd reads a request
 * line and tetherctl reads an answer. Every accepted request must write back
 * to the same words, and every getter must cope with every argument. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/protocol.h"

static void exercise_getters(const struct proto_request *req)
{
	char message[256];
	__u64 u64;
	__u32 u32;
	const char *name;
	__u8 bytes[16];

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
	static const char *const allowed[] = { "name", "addr", "function", NULL };

	proto_check_keys(req, allowed, message, sizeof(message));
}

/* An accepted request re-serialises to itself (modulo spacing). */
static void check_round_trip(const struct proto_request *req)
{
	struct proto_writer w;
	struct proto_request again;
	char message[256];

	proto_writer_init(&w);
	proto_request_begin(&w, req->verb, req->noun);
	for (int i = 0; i < req->arg_count; i++)
		proto_record_str(&w, req->args[i].key, req->args[i].value);
	proto_record_end(&w);
	if (w.failed || proto_parse_line(w.data, w.len, &again, message, sizeof(message)) ||
	    strcmp(again.verb, req->verb) || strcmp(again.noun, req->noun) ||
	    again.arg_count != req->arg_count)
		abort();
	for (int i = 0; i < req->arg_count; i++)
		if (strcmp(again.args[i].key, req->args[i].key) ||
		    strcmp(again.args[i].value, req->args[i].value))
			abort();
	proto_writer_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_request *req = malloc(sizeof(*req));
	char message[256];
	enum proto_error error;

	if (proto_parse_line((const char *)data, size, req, message, sizeof(message)) == PROTO_OK) {
		exercise_getters(req);
		check_round_trip(req);
	}
	if (proto_parse_record((const char *)data, size, req, message, sizeof(message)) ==
	    PROTO_OK)
		exercise_getters(req);
	proto_parse_status((const char *)data, size, &error, message, sizeof(message));
	free(req);
	return 0;
}
