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
	/* How long past its heartbeat deadline the data plane keeps routing to
	 * a backend whose deadline only tetherd moves (no ALIVE key), in case no
	 * tetherd runs then to see its heartbeats: a restart, an upgrade. A
	 * running tetherd marks it down at the deadline itself. */
	__u32 restart_grace_ms;
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
	bool alive_keyed; /* ALIVE datagrams move its deadline in the map */
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
	/* Concurrency limits: per function (function_set_limit), and a
	 * container's own (add container concurrency=, from its agent); a
	 * container's record holds the smaller nonzero of the two. */
	GHashTable *limits;     /* function_id (g_int64) -> limit */
	GHashTable *own_limits; /* slot + 1 -> limit */
	__u32 next_own_limit;   /* for the container lc_execute adds next */
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

/* A request that changes the lifecycle, as the control protocol gives it:
 * lc_execute runs it here (single-host mode); a fleet router writes it
 * through its store instead (fleet.h). */
enum lc_op {
	LC_BACKEND_ADD,
	LC_BACKEND_HEARTBEAT,
	LC_BACKEND_DRAIN,
	LC_BACKEND_DEL,
	LC_CONTAINER_ADD,
	LC_CONTAINER_UP,
	LC_CONTAINER_DRAIN,
	LC_CONTAINER_IDLE,
	LC_CONTAINER_DEL,
	LC_BACKEND_SET_FUNCTIONS,
	LC_FUNCTION_SET, /* the function's settings: concurrency */
};

struct lc_request {
	enum lc_op op;
	char backend[TETHER_NAME_MAX]; /* backend requests; a new container's backend */
	__u8 addr[16];                 /* add backend */
	__u8 mac[6];
	char iface[16];
	__u16 vlan;         /* 802.1Q VLAN id, 1..TETHER_VLAN_MAX; 0: untagged */
	__u8 encap;         /* enum backend_encap */
	bool has_mac;       /* routed: mac= given (else vxlan's default) */
	__u32 vni;          /* vxlan */
	__u32 heartbeat_ms; /* 0: the default */
	__u32 deadline_ms;  /* drains: 0 for the default */
	__u64 function_id;  /* add container, set function */
	char name[TETHER_NAME_MAX];
	enum container_state state;
	__u32 slot; /* container requests */
	bool has_functions; /* add backend with functions=, set backend */
	struct proto_functions functions;
	__u32 concurrency; /* add container: the container's own limit, 0 none;
			    * set function: the function's */
	__u64 alive_key[2]; /* add or heartbeat backend: its ALIVE key, 0: unchanged */
};

/* Runs request; *slot gets a new container's slot. */
enum proto_error lc_execute(struct lifecycle *lc, const struct lc_request *request, __u32 *slot);

/* The rules of the requests below, checked against the view without
 * changing anything: what a fleet router checks before it writes a change
 * to the store (the calls below check the same first). */
enum lc_container_change { LC_UP, LC_DRAIN, LC_IDLE, LC_DEL };
/* How a backend is reached: L2 through iface (required), or routed (vxlan,
 * ipip) to addr, by the FIB, confined to iface when one is given ("": any). */
struct lc_backend_link {
	__u8 encap; /* enum backend_encap */
	__u32 vni;  /* vxlan */
	const char *iface;
	__u16 vlan; /* L2 only */
};
enum proto_error lc_check_backend_add(struct lifecycle *lc, const char *name, const __u8 addr[16],
				      const struct lc_backend_link *link);
enum proto_error lc_check_backend_drain(struct lifecycle *lc, const char *name);
enum proto_error lc_check_container_add(struct lifecycle *lc, __u64 function_id,
					const char *backend_name, const char *name,
					enum container_state state);
enum proto_error lc_check_container_change(struct lifecycle *lc, __u32 slot,
					   enum lc_container_change change);
/* Whether backend name may hold function_id (the operator's allow-list,
 * include/tether/maps.h allowed_funcs; none set: any): PROTO_OK, or
 * PROTO_UNAUTHORIZED with "backend 'vm3' may hold functions 7, 9". */
enum proto_error lc_check_function_allowed(struct lifecycle *lc, const char *name,
					   __u64 function_id);
/* The functions backend name may hold, from now on: set whether or not the
 * backend is registered, kept when it is removed (by name: the agent that
 * registers it again is held to it). */
enum proto_error lc_backend_set_functions(struct lifecycle *lc, const char *name,
					  const struct proto_functions *functions);

/* vlan: the backend's 802.1Q VLAN id (1..TETHER_VLAN_MAX), 0 for untagged. */
enum proto_error lc_backend_add(struct lifecycle *lc, const char *name, const __u8 addr[16],
				const __u8 mac[6], const char *iface, __u16 vlan,
				__u32 heartbeat_ms, __u32 *id);
/* The same for any link; mac is vxlan's inner destination for a routed one. */
enum proto_error lc_backend_add_link(struct lifecycle *lc, const char *name, const __u8 addr[16],
				     const __u8 mac[6], const struct lc_backend_link *link,
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

/* Concurrency limits: the function's (0 removes it), applied at once to
 * every container of it; what a function has. */
enum proto_error lc_function_set_limit(struct lifecycle *lc, __u64 function_id, __u32 limit);
__u32 lc_function_limit(const struct lifecycle *lc, __u64 function_id);
__u32 lc_container_own_limit(const struct lifecycle *lc, __u32 slot);
/* The key of a backend's ALIVE datagrams (128 bits; zero: unchanged). */
enum proto_error lc_backend_set_liveness(struct lifecycle *lc, const char *name,
					 const __u64 key[2]);

/* A fleet's store is the truth (user/tetherd/fleet.c): these make the view
 * and the maps equal to one of its records, whatever they held, with the
 * identities the store issued (backend ids, container slots, generations and
 * secrets, so that every router stamps and honours the same tokens), and
 * emit the events the requests above would. Applying a record twice changes
 * nothing. Times are on this host's clock (the caller converts). */
struct lc_backend_spec {
	__u32 id;
	const char *name;
	__u8 addr[16];
	__u8 mac[6];
	const char *iface; /* found by name on this host; routed: "" for any */
	__u16 vlan;
	__u8 encap; /* enum backend_encap */
	__u32 vni;
	__u32 heartbeat_ms;
	enum backend_state state; /* up, draining or down */
	__u64 drain_deadline_ns;  /* when draining */
};
enum proto_error lc_backend_apply(struct lifecycle *lc, const struct lc_backend_spec *spec);
/* As lc_backend_del (its containers go too); a backend not known is no error. */
enum proto_error lc_backend_forget(struct lifecycle *lc, const char *name);

struct lc_container_spec {
	__u32 slot;
	__u32 generation;
	__u64 secret; /* nonzero */
	__u64 function_id;
	const char *backend; /* applied before its containers */
	const char *name;    /* may be empty */
	enum container_state state; /* starting, warm or draining */
	__u64 drain_deadline_ns;    /* when draining */
	__u32 concurrency;          /* the container's own limit; 0: none */
};
enum proto_error lc_container_apply(struct lifecycle *lc, const struct lc_container_spec *spec);
/* The container at slot is gone for why; a free slot is no error. */
enum proto_error lc_container_forget(struct lifecycle *lc, __u32 slot, const char *why);

/* Deadlines and heartbeats: backends past their heartbeat expiry go down,
 * draining containers past their deadline are gone. Call it often. */
void lifecycle_tick(struct lifecycle *lc);
/* The backends part of it alone: before a backend is shown as down, the data
 * plane has it down too (between ticks its record there still has the
 * restart grace on its deadline, and takes requests). */
void lifecycle_expire_backends(struct lifecycle *lc);
/* Whether the data plane sends the backend nothing, judged as the program
 * judges it (bpf/routing.h, backend_takes_work): its record in the map down
 * or past the map's deadline. The view's own deadline is earlier (the map's
 * has the restart grace) or later (ALIVE datagrams move the map's), so what
 * operators see as down (backend list, /metrics) asks the map. */
bool lifecycle_backend_down(const struct lifecycle *lc, const struct backend *backend);

/* Rebuilds and swaps in the table of every function whose warm set changed.
 * The daemon calls it after each batch of requests, before answering them,
 * so "ok" means the routing already follows the change. */
int lifecycle_flush_pools(struct lifecycle *lc);

/* A container takes new keys and flows: warm on a backend that is up. */
bool lc_container_in_pool(const struct lifecycle *lc, const struct container_record *record);

const char *container_state_name(enum container_state state);
const char *backend_state_name(enum backend_state state);

#endif
