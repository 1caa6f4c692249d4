/* SPDX-License-Identifier: MIT */
/* What a fleet keeps in its store (docs/store.md): the keys under the fleet's
 * prefix and their values, one control-protocol record each ("k=v k=v", as
 * tetherctl prints them, so `etcdctl get --prefix /tether/NAME/` reads like
 * `tetherctl backend list`). Encoding and decoding only, no I/O: fleet.c does
 * the talking. Decoding checks every field; a record that does not decode is
 * reported, never half-applied. */
#ifndef TETHER_STORE_RECORDS_H
#define TETHER_STORE_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "tether/maps.h"

#define STORE_PREFIX_ROOT "/tether/"
#define STORE_KEY_MAX 160
#define STORE_VALUE_MAX 512

/* The kinds of key under a fleet's prefix. */
enum store_kind {
	STORE_UNKNOWN,
	STORE_BACKEND,    /* backends/NAME */
	STORE_BACKEND_ID, /* backend_ids/ID: which backend holds the id */
	STORE_ALIVE,      /* alive/NAME: on a lease the backend's heartbeats renew */
	STORE_CONTAINER,  /* containers/SLOT */
	STORE_NAME,       /* names/BACKEND/NAME: which slot holds the name */
	STORE_ROUTER,     /* routers/NAME: on the router's lease */
	STORE_STATE,      /* state: put by every change, so its mod revision is the state's */
	STORE_CAPACITY,   /* capacity/FUNCTION: a router's slow path waits for capacity */
	STORE_POLICY,     /* policies/NAME: the functions backend NAME may hold */
	STORE_FUNCTION,   /* functions/FUNCTION: the function's settings (concurrency) */
};

struct store_key {
	enum store_kind kind;
	char name[TETHER_NAME_MAX];    /* backend, alive, router; the backend of a name */
	char container[TETHER_NAME_MAX]; /* names/: the container's name */
	__u32 number;                  /* backend id, container slot */
	__u64 function_id;             /* capacity/, functions/ */
};

/* [A-Za-z0-9._-]{1,31}: fleets, routers, backends, containers. */
bool store_name_valid(const char *name);

/* "/tether/FLEET/"; FLEET is [A-Za-z0-9._-]{1,31}. 0 or -EINVAL. */
int store_prefix(const char *fleet, char *out, size_t size);

/* The key of each kind under prefix. */
void store_key_backend(const char *prefix, const char *name, char out[STORE_KEY_MAX]);
void store_key_backend_id(const char *prefix, __u32 id, char out[STORE_KEY_MAX]);
void store_key_alive(const char *prefix, const char *name, char out[STORE_KEY_MAX]);
void store_key_container(const char *prefix, __u32 slot, char out[STORE_KEY_MAX]);
void store_key_name(const char *prefix, const char *backend, const char *name,
		    char out[STORE_KEY_MAX]);
/* names/BACKEND/: every name of a backend's containers. */
void store_key_names_of(const char *prefix, const char *backend, char out[STORE_KEY_MAX]);
void store_key_router(const char *prefix, const char *name, char out[STORE_KEY_MAX]);
void store_key_state(const char *prefix, char out[STORE_KEY_MAX]);
void store_key_capacity(const char *prefix, __u64 function_id, char out[STORE_KEY_MAX]);
void store_key_policy(const char *prefix, const char *name, char out[STORE_KEY_MAX]);
void store_key_function(const char *prefix, __u64 function_id, char out[STORE_KEY_MAX]);

/* Which key key is (key_len bytes; it starts with prefix). false for a key of
 * no known kind or with a bad name or number. */
bool store_key_parse(const char *prefix, const char *key, size_t key_len, struct store_key *out);

/* Deadlines cross hosts as wall-clock ms (CLOCK_REALTIME); each router turns
 * them into its own CLOCK_MONOTONIC ns, so they agree as far as the routers'
 * clocks do (NTP). 0 stays 0. */
__u64 store_deadline_to_monotonic(__u64 unix_ms, __u64 now_monotonic_ns, __u64 now_unix_ms);
__u64 store_deadline_from_monotonic(__u64 monotonic_ns, __u64 now_monotonic_ns,
				    __u64 now_unix_ms);
__u64 store_unix_ms(void);

struct store_backend {
	__u32 id;
	__u8 addr[16];
	__u8 mac[6];
	char iface[16];                 /* routed: "" for any */
	__u16 vlan;                     /* 0: untagged */
	__u8 encap;                     /* enum backend_encap; absent: l2 */
	__u32 vni;                      /* vxlan */
	__u32 heartbeat_ms;
	enum backend_state state;       /* up or draining (down: its alive key is gone) */
	__u64 drain_deadline_unix_ms;   /* when draining */
};

struct store_container {
	__u64 function_id;
	char backend[TETHER_NAME_MAX];
	__u64 backend_revision; /* the create revision of backends/NAME it was added to */
	char name[TETHER_NAME_MAX];
	enum container_state state; /* starting, warm or draining */
	__u64 secret;               /* nonzero; the token's last 8 bytes */
	__u64 drain_deadline_unix_ms;
	__u32 concurrency; /* the container's own limit (its agent's); 0: none, not written */
};

/* functions/F: a function's settings, applied by every router. */
struct store_function {
	__u32 concurrency; /* requests in flight per container; 0: no limit */
};
void store_function_encode(const struct store_function *function, char out[STORE_VALUE_MAX]);
int store_function_decode(const char *value, size_t value_len, struct store_function *out,
			  char *why, size_t why_size);

/* Each encoder writes a NUL-terminated record; each decoder reads value_len
 * bytes and returns 0, or -EINVAL with the reason in why. */
void store_backend_encode(const struct store_backend *backend, char out[STORE_VALUE_MAX]);
int store_backend_decode(const char *value, size_t value_len, struct store_backend *out,
			 char *why, size_t why_size);
void store_container_encode(const struct store_container *container, char out[STORE_VALUE_MAX]);
int store_container_decode(const char *value, size_t value_len, struct store_container *out,
			   char *why, size_t why_size);

/* names/..., backend_ids/...: "container=SLOT", "backend=NAME". */
void store_name_encode(__u32 slot, char out[STORE_VALUE_MAX]);
void store_backend_id_encode(const char *backend, char out[STORE_VALUE_MAX]);

/* policies/NAME: "functions=7,9,256-511" (no key: any). */
void store_policy_encode(const struct allowed_functions *allowed, char out[STORE_VALUE_MAX]);
int store_policy_decode(const char *value, size_t value_len, struct allowed_functions *out,
			char *why, size_t why_size);

/* routers/NAME: what the router has applied, for `tetherctl fleet status`. */
struct store_router {
	__u64 applied_revision;
	__u64 updated_unix_ms;
	char store_endpoint[128]; /* where its watch runs; "-" while it reconnects */
};
void store_router_encode(const struct store_router *router, char out[STORE_VALUE_MAX]);
int store_router_decode(const char *value, size_t value_len, struct store_router *out,
			char *why, size_t why_size);

/* A container's generation: the low 32 bits of the create revision of its
 * key, which the store makes unique, so every router derives the same one. */
static inline __u32 store_generation(__s64 create_revision)
{
	return (__u32)create_revision;
}

#endif
