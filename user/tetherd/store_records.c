// SPDX-License-Identifier: MIT
/* The keys and records of a fleet's store (store_records.h). */
#include "store_records.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/protocol.h"
#include "core/core.h"

/* ---- keys ------------------------------------------------------------------- */

static bool is_name(const char *text, size_t len)
{
	if (len == 0 || len >= TETHER_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool store_name_valid(const char *name)
{
	return is_name(name, strlen(name));
}

int store_prefix(const char *fleet, char *out, size_t size)
{
	if (!is_name(fleet, strlen(fleet)))
		return -EINVAL;
	return snprintf(out, size, STORE_PREFIX_ROOT "%s/", fleet) < (int)size ? 0 : -EINVAL;
}

void store_key_backend(const char *prefix, const char *name, char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%sbackends/%s", prefix, name);
}

void store_key_backend_id(const char *prefix, __u32 id, char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%sbackend_ids/%u", prefix, id);
}

void store_key_alive(const char *prefix, const char *name, char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%salive/%s", prefix, name);
}

void store_key_container(const char *prefix, __u32 slot, char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%scontainers/%u", prefix, slot);
}

void store_key_name(const char *prefix, const char *backend, const char *name,
		    char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%snames/%s/%s", prefix, backend, name);
}

void store_key_names_of(const char *prefix, const char *backend, char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%snames/%s/", prefix, backend);
}

void store_key_router(const char *prefix, const char *name, char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%srouters/%s", prefix, name);
}

void store_key_state(const char *prefix, char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%sstate", prefix);
}

void store_key_policy(const char *prefix, const char *name, char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%spolicies/%s", prefix, name);
}

void store_key_function(const char *prefix, __u64 function_id, char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%sfunctions/%llu", prefix, (unsigned long long)function_id);
}

void store_key_capacity(const char *prefix, __u64 function_id, char out[STORE_KEY_MAX])
{
	snprintf(out, STORE_KEY_MAX, "%scapacity/%llu", prefix, (unsigned long long)function_id);
}

/* A decimal below limit, no sign, no leading zero but "0" itself. */
static bool parse_number(const char *text, size_t len, __u32 limit, __u32 *out)
{
	__u64 value = 0;

	if (len == 0 || len > 10 || (len > 1 && text[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		value = value * 10 + (__u64)(text[i] - '0');
	}
	if (value >= limit)
		return false;
	*out = (__u32)value;
	return true;
}

/* A nonzero decimal function id, no leading zero. */
static bool parse_function(const char *text, size_t len, __u64 *out)
{
	__u64 value = 0;

	if (len == 0 || len > 20 || text[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		__u64 digit = (__u64)(text[i] - '0');

		if (text[i] < '0' || text[i] > '9' || value > (UINT64_MAX - digit) / 10)
			return false;
		value = value * 10 + digit;
	}
	*out = value;
	return true;
}

static bool copy_name(const char *text, size_t len, char out[TETHER_NAME_MAX])
{
	if (!is_name(text, len))
		return false;
	memcpy(out, text, len);
	out[len] = '\0';
	return true;
}

bool store_key_parse(const char *prefix, const char *key, size_t key_len, struct store_key *out)
{
	static const struct {
		const char *dir;
		enum store_kind kind;
	} dirs[] = {
		{ "backends/", STORE_BACKEND },	    { "backend_ids/", STORE_BACKEND_ID },
		{ "alive/", STORE_ALIVE },	    { "containers/", STORE_CONTAINER },
		{ "names/", STORE_NAME },	    { "routers/", STORE_ROUTER },
		{ "capacity/", STORE_CAPACITY },    { "policies/", STORE_POLICY },
		{ "functions/", STORE_FUNCTION },
	};
	size_t prefix_len = strlen(prefix);

	memset(out, 0, sizeof(*out));
	if (key_len < prefix_len || memcmp(key, prefix, prefix_len))
		return false;
	key += prefix_len;
	key_len -= prefix_len;
	if (key_len == 5 && !memcmp(key, "state", 5)) {
		out->kind = STORE_STATE;
		return true;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		size_t dir_len = strlen(dirs[i].dir);

		if (key_len <= dir_len || memcmp(key, dirs[i].dir, dir_len))
			continue;
		const char *rest = key + dir_len;
		size_t rest_len = key_len - dir_len;

		out->kind = dirs[i].kind;
		switch (out->kind) {
		case STORE_BACKEND_ID:
			return parse_number(rest, rest_len, TETHER_MAX_BACKENDS, &out->number) &&
			       out->number != 0;
		case STORE_CONTAINER:
			return parse_number(rest, rest_len, TETHER_MAX_CONTAINERS, &out->number);
		case STORE_CAPACITY:
		case STORE_FUNCTION:
			return parse_function(rest, rest_len, &out->function_id);
		case STORE_NAME: {
			const char *slash = memchr(rest, '/', rest_len);

			return slash && copy_name(rest, slash - rest, out->name) &&
			       copy_name(slash + 1, rest_len - (slash - rest) - 1, out->container);
		}
		default:
			return copy_name(rest, rest_len, out->name);
		}
	}
	out->kind = STORE_UNKNOWN;
	return false;
}

/* ---- deadlines -------------------------------------------------------------- */

__u64 store_unix_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (__u64)now.tv_sec * 1000 + (__u64)now.tv_nsec / 1000000;
}

__u64 store_deadline_to_monotonic(__u64 unix_ms, __u64 now_monotonic_ns, __u64 now_unix_ms)
{
	if (!unix_ms)
		return 0;
	if (unix_ms <= now_unix_ms)
		return now_monotonic_ns > 1 ? now_monotonic_ns - 1 : 1; /* passed already */
	return now_monotonic_ns + (unix_ms - now_unix_ms) * 1000000ull;
}

__u64 store_deadline_from_monotonic(__u64 monotonic_ns, __u64 now_monotonic_ns,
				    __u64 now_unix_ms)
{
	if (!monotonic_ns)
		return 0;
	if (monotonic_ns <= now_monotonic_ns)
		return now_unix_ms;
	return now_unix_ms + (monotonic_ns - now_monotonic_ns + 999999) / 1000000;
}

/* ---- records ---------------------------------------------------------------- */

/* The writer's record, without its newline, into out. */
static void finish(struct proto_writer *w, char out[STORE_VALUE_MAX])
{
	size_t len = w->failed ? 0 : w->len;

	if (len && w->data[len - 1] == '\n')
		len--;
	if (len >= STORE_VALUE_MAX)
		len = 0;
	memcpy(out, w->data ? w->data : "", len);
	out[len] = '\0';
	proto_writer_free(w);
}

static int parse(const char *value, size_t value_len, struct proto_request *record,
		 const char *const *keys, char *why, size_t why_size)
{
	if (proto_parse_record(value, value_len, record, why, why_size) ||
	    proto_check_keys(record, keys, why, why_size))
		return -EINVAL;
	return 0;
}

static const char *backend_state_word(enum backend_state state)
{
	return state == BACKEND_DRAINING ? "draining" : "up";
}

void store_backend_encode(const struct store_backend *backend, char out[STORE_VALUE_MAX])
{
	struct proto_writer w;
	char addr[64], mac[18];

	addr_format(backend->addr, addr, sizeof(addr));
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", backend->mac[0],
		 backend->mac[1], backend->mac[2], backend->mac[3], backend->mac[4],
		 backend->mac[5]);
	proto_writer_init(&w);
	proto_record_begin(&w);
	proto_record_u64(&w, "id", backend->id);
	proto_record_str(&w, "addr", addr);
	proto_record_str(&w, "mac", mac);
	if (backend->iface[0])
		proto_record_str(&w, "iface", backend->iface);
	proto_record_u64(&w, "vlan", backend->vlan);
	/* Routed backends only: the records of L2 ones read as before. */
	if (backend->encap != BACKEND_L2) {
		proto_record_str(&w, "encap", proto_encap_name(backend->encap));
		proto_record_u64(&w, "vni", backend->vni);
	}
	proto_record_u64(&w, "heartbeat_ms", backend->heartbeat_ms);
	proto_record_str(&w, "state", backend_state_word(backend->state));
	proto_record_u64(&w, "drain_deadline_unix_ms", backend->drain_deadline_unix_ms);
	proto_record_end(&w);
	finish(&w, out);
}

int store_backend_decode(const char *value, size_t value_len, struct store_backend *out,
			 char *why, size_t why_size)
{
	static const char *const keys[] = { "id", "addr", "mac", "iface", "vlan", "encap", "vni",
					    "heartbeat_ms", "state", "drain_deadline_unix_ms", NULL };
	struct proto_request record;
	const char *iface = "", *state;

	memset(out, 0, sizeof(*out));
	if (parse(value, value_len, &record, keys, why, why_size) ||
	    proto_get_encap(&record, "encap", 0, &out->encap, why, why_size))
		return -EINVAL;
	bool l2 = out->encap == BACKEND_L2;

	if (proto_get_u32(&record, "id", 1, &out->id, why, why_size) ||
	    proto_get_addr(&record, "addr", 1, out->addr, why, why_size) ||
	    proto_get_mac(&record, "mac", 1, out->mac, why, why_size) ||
	    proto_get_name(&record, "iface", l2, &iface, why, why_size) ||
	    proto_get_vlan(&record, "vlan", 0, &out->vlan, why, why_size) ||
	    proto_get_vni(&record, "vni", 0, &out->vni, why, why_size) ||
	    proto_get_u32(&record, "heartbeat_ms", 1, &out->heartbeat_ms, why, why_size) ||
	    proto_get_name(&record, "state", 1, &state, why, why_size) ||
	    proto_get_u64(&record, "drain_deadline_unix_ms", 1, &out->drain_deadline_unix_ms, why,
			  why_size))
		return -EINVAL;
	if (out->id == 0 || out->id >= TETHER_MAX_BACKENDS) {
		snprintf(why, why_size, "backend id %u is not 1-%u", out->id, TETHER_MAX_BACKENDS - 1);
		return -EINVAL;
	}
	if (strlen(iface) >= sizeof(out->iface)) {
		snprintf(why, why_size, "interface name '%s' is longer than 15", iface);
		return -EINVAL;
	}
	snprintf(out->iface, sizeof(out->iface), "%s", iface);
	if (!strcmp(state, "up"))
		out->state = BACKEND_UP;
	else if (!strcmp(state, "draining"))
		out->state = BACKEND_DRAINING;
	else {
		snprintf(why, why_size, "backend state '%s' is not up or draining", state);
		return -EINVAL;
	}
	return 0;
}

static const char *container_state_word(enum container_state state)
{
	return state == CONTAINER_WARM ? "warm" : state == CONTAINER_DRAINING ? "draining" : "starting";
}

void store_container_encode(const struct store_container *container, char out[STORE_VALUE_MAX])
{
	struct proto_writer w;
	__u8 secret[8];

	/* The bytes as the token carries them (the secret is never interpreted,
	 * only compared as it lies in the packet): the record's secret= is the
	 * last 16 hex digits of the container's token on every router. */
	memcpy(secret, &container->secret, sizeof(secret));
	proto_writer_init(&w);
	proto_record_begin(&w);
	proto_record_u64(&w, "function", container->function_id);
	proto_record_str(&w, "backend", container->backend);
	proto_record_u64(&w, "backend_revision", container->backend_revision);
	if (container->name[0])
		proto_record_str(&w, "name", container->name);
	proto_record_str(&w, "state", container_state_word(container->state));
	proto_record_hex(&w, "secret", secret, sizeof(secret));
	proto_record_u64(&w, "drain_deadline_unix_ms", container->drain_deadline_unix_ms);
	/* Only when set: routers of earlier versions read the rest as before. */
	if (container->concurrency)
		proto_record_u64(&w, "concurrency", container->concurrency);
	proto_record_end(&w);
	finish(&w, out);
}

static int parse_secret(const char *hex, __u64 *out, char *why, size_t why_size)
{
	__u8 bytes[8];
	__u64 secret;

	for (int i = 0; i < 16; i++) {
		int digit = hex[i] >= '0' && hex[i] <= '9' ? hex[i] - '0'
			    : hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 'a' + 10
							       : -1;

		if (digit < 0)
			goto bad;
		if (i % 2 == 0)
			bytes[i / 2] = (__u8)(digit << 4);
		else
			bytes[i / 2] |= (__u8)digit;
	}
	memcpy(&secret, bytes, sizeof(secret));
	if (hex[16] == '\0' && secret) {
		*out = secret;
		return 0;
	}
bad:
	snprintf(why, why_size, "secret '%s' is not 16 lowercase hex digits, nonzero", hex);
	return -EINVAL;
}

int store_container_decode(const char *value, size_t value_len, struct store_container *out,
			   char *why, size_t why_size)
{
	static const char *const keys[] = { "function", "backend", "backend_revision", "name",
					    "state", "secret", "drain_deadline_unix_ms",
					    "concurrency", NULL };
	struct proto_request record;
	const char *backend, *name = "", *state, *secret;

	memset(out, 0, sizeof(*out));
	if (parse(value, value_len, &record, keys, why, why_size) ||
	    proto_get_function(&record, "function", 1, &out->function_id, why, why_size) ||
	    proto_get_name(&record, "backend", 1, &backend, why, why_size) ||
	    proto_get_u64(&record, "backend_revision", 1, &out->backend_revision, why, why_size) ||
	    proto_get_name(&record, "name", 0, &name, why, why_size) ||
	    proto_get_name(&record, "state", 1, &state, why, why_size) ||
	    proto_get_u64(&record, "drain_deadline_unix_ms", 1, &out->drain_deadline_unix_ms, why,
			  why_size) ||
	    proto_get_u32(&record, "concurrency", 0, &out->concurrency, why, why_size))
		return -EINVAL;
	if (!(secret = proto_get(&record, "secret"))) {
		snprintf(why, why_size, "the record has no secret=");
		return -EINVAL;
	}
	if (parse_secret(secret, &out->secret, why, why_size))
		return -EINVAL;
	snprintf(out->backend, sizeof(out->backend), "%s", backend);
	snprintf(out->name, sizeof(out->name), "%s", name);
	if (!strcmp(state, "starting"))
		out->state = CONTAINER_STARTING;
	else if (!strcmp(state, "warm"))
		out->state = CONTAINER_WARM;
	else if (!strcmp(state, "draining"))
		out->state = CONTAINER_DRAINING;
	else {
		snprintf(why, why_size, "container state '%s' is not starting, warm or draining",
			 state);
		return -EINVAL;
	}
	return 0;
}

void store_function_encode(const struct store_function *function, char out[STORE_VALUE_MAX])
{
	struct proto_writer w;

	proto_writer_init(&w);
	proto_record_begin(&w);
	proto_record_u64(&w, "concurrency", function->concurrency);
	proto_record_end(&w);
	finish(&w, out);
}

int store_function_decode(const char *value, size_t value_len, struct store_function *out,
			  char *why, size_t why_size)
{
	static const char *const keys[] = { "concurrency", NULL };
	struct proto_request record;

	memset(out, 0, sizeof(*out));
	if (parse(value, value_len, &record, keys, why, why_size) ||
	    proto_get_u32(&record, "concurrency", 1, &out->concurrency, why, why_size))
		return -EINVAL;
	return 0;
}

void store_name_encode(__u32 slot, char out[STORE_VALUE_MAX])
{
	snprintf(out, STORE_VALUE_MAX, "container=%u", slot);
}

void store_backend_id_encode(const char *backend, char out[STORE_VALUE_MAX])
{
	snprintf(out, STORE_VALUE_MAX, "backend=%s", backend);
}

void store_policy_encode(const struct allowed_functions *allowed, char out[STORE_VALUE_MAX])
{
	char list[STORE_VALUE_MAX - 16];

	proto_functions_format(allowed, list, sizeof(list));
	snprintf(out, STORE_VALUE_MAX, "functions=%s", list);
}

int store_policy_decode(const char *value, size_t value_len, struct allowed_functions *out,
			char *why, size_t why_size)
{
	static const char *const keys[] = { "functions", NULL };
	struct proto_request record;
	struct proto_functions functions;

	memset(out, 0, sizeof(*out));
	if (parse(value, value_len, &record, keys, why, why_size))
		return -EINVAL;
	if (!strcmp(proto_get(&record, "functions") ?: "", "none"))
		return 0;
	if (proto_get_functions(&record, "functions", 1, &functions, why, why_size))
		return -EINVAL;
	if (functions.any) {
		snprintf(why, why_size, "a policy of any function is no key, not functions=any");
		return -EINVAL;
	}
	*out = functions.allowed;
	return 0;
}

void store_router_encode(const struct store_router *router, char out[STORE_VALUE_MAX])
{
	struct proto_writer w;

	proto_writer_init(&w);
	proto_record_begin(&w);
	proto_record_u64(&w, "applied_revision", router->applied_revision);
	proto_record_u64(&w, "updated_unix_ms", router->updated_unix_ms);
	proto_record_str(&w, "store", router->store_endpoint[0] ? router->store_endpoint : "-");
	proto_record_end(&w);
	finish(&w, out);
}

int store_router_decode(const char *value, size_t value_len, struct store_router *out,
			char *why, size_t why_size)
{
	static const char *const keys[] = { "applied_revision", "updated_unix_ms", "store", NULL };
	struct proto_request record;
	const char *endpoint;

	memset(out, 0, sizeof(*out));
	if (parse(value, value_len, &record, keys, why, why_size) ||
	    proto_get_u64(&record, "applied_revision", 1, &out->applied_revision, why, why_size) ||
	    proto_get_u64(&record, "updated_unix_ms", 1, &out->updated_unix_ms, why, why_size))
		return -EINVAL;
	endpoint = proto_get(&record, "store");
	snprintf(out->store_endpoint, sizeof(out->store_endpoint), "%s", endpoint ? endpoint : "-");
	return 0;
}
