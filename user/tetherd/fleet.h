/* SPDX-License-Identifier: MIT */
/* Fleet mode (tetherd --store etcd=URL,...): many routers behave as one. The
 * fleet's backends and containers live in etcd under /tether/FLEET/
 * (docs/store.md, store_records.h); every router mirrors them into its own
 * maps through the lifecycle's apply calls (fleet_mirror.c), so every router
 * stamps and honours the same tokens and builds the same pool tables. A
 * lifecycle request to any router is written through to the store
 * (fleet_changes.c): checked against the view with the lifecycle's rules,
 * committed by an etcd transaction that holds only if the view was current,
 * and answered once this router has applied it, so "ok" means committed and
 * routed by. Backend liveness is an etcd lease per backend that the
 * backend's heartbeats renew, through whichever router its agent talks to.
 *
 * Fail static: a router cut off from the store keeps forwarding on the state
 * it has, takes no backend down on its own, and answers lifecycle requests
 * "error unavailable" (nothing changed); once the store is back it catches
 * up (or reads everything again if its revision was compacted). */
#ifndef TETHER_FLEET_H
#define TETHER_FLEET_H

#include <stdbool.h>
#include <linux/types.h>

#include "control/protocol.h"
#include "lifecycle.h"
#include "tether/maps.h"

struct tetherd;
struct fleet;

struct fleet_config {
	char endpoints[512]; /* "http://127.0.0.1:2379,...": --store etcd=... */
	char name[32];       /* --fleet: the prefix /tether/NAME/ */
	char router[64];     /* --router-name: this router in routers/ */
	/* https:// endpoints: --store-ca (the CA of etcd's certificates), and
	 * --store-cert and --store-key (tetherd's client certificate, for an etcd
	 * with --client-cert-auth). Empty: none (curl's CAs; no certificate). */
	char ca[256];
	char cert[256];
	char key[256];
};

/* NULL with the reason in why. */
struct fleet *fleet_new(struct tetherd *d, const struct fleet_config *config, char *why,
			size_t why_size);
/* Reads the fleet's state, applies it and watches for changes, all on the
 * daemon's loop; lifecycle requests wait for the first read. */
int fleet_start(struct fleet *f);
/* The daemon's tick: the router's record, removals, requests waiting too long. */
void fleet_tick(struct fleet *f);
/* SIGHUP: --store-ca, --store-cert and --store-key again, for the
 * connections to etcd made from now on; on a failure (logged) the ones in
 * use stay. NULL and a store without TLS files: nothing. */
void fleet_reload_tls(struct fleet *f);
/* Requests not answered yet are answered unavailable (tetherd stops). */
void fleet_free(struct fleet *f);

struct fleet_outcome {
	enum proto_error error;
	char message[512];
	__u32 slot; /* add container: the new container's slot */
};


/* done runs once, from the loop, after the change is committed and applied
 * here, or when it cannot be (error unavailable: nothing changed). */
typedef void (*fleet_done_cb)(void *ctx, const struct fleet_outcome *outcome);
void fleet_submit(struct fleet *f, const struct lc_request *request, fleet_done_cb done,
		  void *ctx);

/* The slow path waits for capacity for function_id: every router of the
 * fleet tells its watchers (event=capacity_needed ... router=NAME), so the
 * agents connected to any router hear it. At most once a second per
 * function. */
void fleet_capacity_needed(struct fleet *f, __u64 function_id, __u32 waiting);

/* One router of the fleet as the store knows it. */
struct fleet_router {
	char name[64];
	__u64 applied_revision; /* of the newest change it applied */
	__u64 lag;            /* revisions behind the store's newest change */
	__u64 updated_ms_ago; /* since it last wrote its record */
	char store_endpoint[128];
};
struct fleet_status {
	char fleet[32];
	char router[64];      /* the one answering */
	__u64 store_revision;   /* the store's, routers' records included */
	__u64 state_revision;   /* of the newest change to the fleet's state */
	__u64 applied_revision; /* of the newest change the one answering applied */
	bool synced;
	struct fleet_router *routers;
	size_t n_routers;
};
/* `show fleet`: status is NULL on error (message says why). */
typedef void (*fleet_status_cb)(void *ctx, enum proto_error error, const char *message,
				const struct fleet_status *status);
void fleet_read_status(struct fleet *f, fleet_status_cb done, void *ctx);

/* What /metrics shows of the fleet: this router's own view, no store request
 * (a scrape never waits on etcd). Other routers' figures are their records
 * as the watch last brought them (each router writes its own every second
 * while it moves). The pointers hold until the loop runs again. */
struct fleet_router_seen {
	char name[TETHER_NAME_MAX];
	__u64 applied_revision;
	__u64 updated_unix_ms;
};
struct fleet_metrics {
	const char *fleet, *router;
	bool synced;   /* the full read is applied (no resync under way) */
	bool watching; /* the watch is connected */
	__u64 applied_revision; /* of the newest change to the state applied here */
	__u64 resyncs;          /* full reads after the first */
	__u64 bad_records;      /* keys that did not decode */
	__u64 pending_changes;  /* lifecycle requests written through, not answered yet */
	const struct fleet_router_seen *routers; /* every router but this one */
	size_t n_routers;
};
void fleet_read_metrics(struct fleet *f, struct fleet_metrics *out);

#endif
