// SPDX-License-Identifier: MIT
/* libFuzzer target: what a router makes of the keys and records it reads
 * from a fleet's store (user/tetherd/store_records.c), which other routers,
 * an operator's etcdctl or a damaged store may have written. The first byte
 * picks the reader, the rest is its input. A key that parses is in its one
 * canonical form (built again, it is the same bytes); a record that decodes
 * encodes to a record that decodes to the same encoding; a refusal says why. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_records.h"

#define PREFIX "/tether/fuzz/"

static void check_key(const char *key, size_t len)
{
	struct store_key parsed;
	char again[STORE_KEY_MAX] = "";

	if (!store_key_parse(PREFIX, key, len, &parsed))
		return;
	switch (parsed.kind) {
	case STORE_BACKEND:
		store_key_backend(PREFIX, parsed.name, again);
		break;
	case STORE_BACKEND_ID:
		store_key_backend_id(PREFIX, parsed.number, again);
		break;
	case STORE_ALIVE:
		store_key_alive(PREFIX, parsed.name, again);
		break;
	case STORE_CONTAINER:
		store_key_container(PREFIX, parsed.number, again);
		break;
	case STORE_NAME:
		store_key_name(PREFIX, parsed.name, parsed.container, again);
		break;
	case STORE_ROUTER:
		store_key_router(PREFIX, parsed.name, again);
		break;
	case STORE_STATE:
		store_key_state(PREFIX, again);
		break;
	case STORE_CAPACITY:
		store_key_capacity(PREFIX, parsed.function_id, again);
		break;
	case STORE_POLICY:
		store_key_policy(PREFIX, parsed.name, again);
		break;
	case STORE_FUNCTION:
		store_key_function(PREFIX, parsed.function_id, again);
		break;
	case STORE_UNKNOWN:
	default:
		abort(); /* parsed, but of no kind */
	}
	if (strlen(again) != len || memcmp(again, key, len))
		abort();
}

/* decode(value) -> encode -> decode -> encode: both encodings the same. */
#define CHECK_RECORD(type, decode, encode, value, len)                                     \
	do {                                                                                \
		struct type first, second;                                                  \
		char why[160] = "", one[STORE_VALUE_MAX], two[STORE_VALUE_MAX];             \
                                                                                            \
		memset(&first, 0, sizeof(first));                                           \
		memset(&second, 0, sizeof(second));                                         \
		if (decode(value, len, &first, why, sizeof(why))) {                         \
			if (why[0] == '\0' || strlen(why) >= sizeof(why))                   \
				abort(); /* refused without saying why */                   \
			break;                                                              \
		}                                                                           \
		encode(&first, one);                                                        \
		if (decode(one, strlen(one), &second, why, sizeof(why)))                    \
			abort(); /* its own encoding refused */                             \
		encode(&second, two);                                                       \
		if (strcmp(one, two))                                                       \
			abort();                                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *input = (const char *)data + 1;
	size_t len = size - 1;

	switch (data[0] % 6) {
	case 0:
		check_key(input, len);
		break;
	case 1:
		CHECK_RECORD(store_backend, store_backend_decode, store_backend_encode, input, len);
		break;
	case 2:
		CHECK_RECORD(store_container, store_container_decode, store_container_encode, input,
			     len);
		break;
	case 3:
		CHECK_RECORD(store_function, store_function_decode, store_function_encode, input,
			     len);
		break;
	case 4:
		CHECK_RECORD(allowed_functions, store_policy_decode, store_policy_encode, input, len);
		break;
	case 5:
		CHECK_RECORD(store_router, store_router_decode, store_router_encode, input, len);
		break;
	}
	return 0;
}
