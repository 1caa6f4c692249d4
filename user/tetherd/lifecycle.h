/* SPDX-License-Identifier: MIT */
/* The controller's state and every change to it: backends (up -> draining ->
 * down), containers (starting -> warm -> draining -> gone) and the pools of
 * warm containers per function. This is the one interface through which the
 * state changes -- the control socket drives it today, a fleet store later --
 * and it keeps the data plane's maps true: each call writes the maps before it
 * changes its own view, so a call that fails changes nothing.
 *
 * Time comes from an injected clock (CLOCK_MONOTONIC ns in tetherd, a fake in
 * tests); deadlines and heartbeat expiries are absolute times on it. */
#ifndef TETHER_LIFECYCLE_H
#define TETHER_LIFECYCLE_H

#include <stdbool.h>
#include <glib.h>

#include "dataplane/dataplane.h"
#include "control/protocol.h"

struct lifecycle_observer {
	/* One "event=TYPE key=value ..." line per lifecycle event. */
	void (*event)(void *ctx, const char *line);
	/* A container turned warm: the slow path may hand it held requests. */
	void (*container_warm)(void *ctx, __u32 slot, __u64 function_id);
	void *ctx;
};

struct lifecycle_config {
	__u32 heartbeat_ms; /* default for backends that do not say */
	__u32 drain_ms;     /* default drain deadline */
	/* Container slots new containers may take: 0..max_containers-1; 0 (or
	 * more than TETHER_MAX_CONTAINERS) means all of them. Tests use a small
	 * limit to reach "full" quickly; the maps keep their size. */
	__u32 max_containers;
	__u64 (*now_ns)(void *ctx);
	void *clock_ctx;
	struct lifecycle_observer observer;
};

struct backend {
	bool in_use;
	__u32 id;
	struct backend_record record; /* as in the backends map */
	struct backend_meta meta;     /* as in the backend_meta map */
	__u32 containers;             /* live containers on it */
};

struct function {
	__u64 function_id;
	GHashTable *slots; /* live containers of the function (slot set) */
	bool pool_dirty;   /* the warm set changed: rebuild its table */
	__u32 pool_size;   /* members of the table in the data plane */
	/* An fd of that table, for the slow path's picks (opening it by id
	 * needs CAP_SYS_ADMIN, which tetherd drops); -1: no pool, or past
	 * max_kept_tables. */
	int table_fd;
};

struct lifecycle {
	struct dataplane *dp;
	struct lifecycle_config config;
	struct backend backends[TETHER_MAX_BACKENDS];
	struct container_record *containers; /* mirror of the containers map */
	GHashTable *functions;       /* function_id -> struct function */
	GHashTable *backend_names;   /* name -> struct backend */
	GHashTable *container_names; /* "backend_id/name" -> slot + 1 */
	__u32 next_slot;             /* where the search for a free slot starts */
	__u32 kept_tables;           /* functions with a table_fd */
	__u32 max_kept_tables;       /* half of RLIMIT_NOFILE at init */
	char error[256];             /* why the last call failed */
};

int lifecycle_init(struct lifecycle *lc, struct dataplane *dp,
		   const struct lifecycle_config *config);
void lifecycle_free(struct lifecycle *lc);

/* Rebuilds the view from the maps a previous tetherd left pinned, and every
 * pool from the containers' states (a crash in the middle of a swap leaves
 * no stale table). */
int lifecycle_adopt(struct lifecycle *lc);

/* The message of the last failed call, for "error CODE: message". */
const char *lifecycle_error(const struct lifecycle *lc);
__u64 lifecycle_now(const struct lifecycle *lc);

/* vlan: the backend's 802.1Q VLAN id (1..TETHER_VLAN_MAX), 0 for untagged. */
enum proto_error lc_backend_add(struct lifecycle *lc, const char *name, const __u8 addr[16],
				const __u8 mac[6], const char *iface, __u16 vlan,
				__u32 heartbeat_ms, __u32 *id);
enum proto_error lc_backend_heartbeat(struct lifecycle *lc, const char *name);
enum proto_error lc_backend_drain(struct lifecycle *lc, const char *name, __u32 deadline_ms);
enum proto_error lc_backend_del(struct lifecycle *lc, const char *name);
struct backend *lc_backend_find(struct lifecycle *lc, const char *name);

enum proto_error lc_container_add(struct lifecycle *lc, __u64 function_id,
				  const char *backend_name, const char *name,
				  enum container_state state, __u32 *slot,
				  struct tether_token *token);
enum proto_error lc_container_up(struct lifecycle *lc, __u32 slot);
enum proto_error lc_container_drain(struct lifecycle *lc, __u32 slot, __u32 deadline_ms);
enum proto_error lc_container_idle(struct lifecycle *lc, __u32 slot);
enum proto_error lc_container_del(struct lifecycle *lc, __u32 slot);
/* The live container at slot, or NULL (with lc->error set). */
const struct container_record *lc_container(struct lifecycle *lc, __u32 slot);
const char *lc_container_name(struct lifecycle *lc, __u32 slot, char *buf, size_t size);
struct function *lc_function(struct lifecycle *lc, __u64 function_id);

/* Deadlines and heartbeats: backends past their heartbeat expiry go down,
 * draining containers past their deadline are gone. Call it often. */
void lifecycle_tick(struct lifecycle *lc);

/* Rebuilds and swaps in the table of every function whose warm set changed.
 * The daemon calls it after each batch of requests, before answering them,
 * so "ok" means the routing already follows the change. */
int lifecycle_flush_pools(struct lifecycle *lc);

/* A container takes new keys and flows: warm on a backend that is up. */
bool lc_container_in_pool(const struct lifecycle *lc, const struct container_record *record);

const char *container_state_name(enum container_state state);
const char *backend_state_name(enum backend_state state);

#endif
