/* SPDX-License-Identifier: MIT */
/* The parts of fleet mode (fleet.h), shared by its files: fleet.c (the
 * client, the first read and the watch, waiting for a revision), fleet_mirror.c
 * (store records into the lifecycle), fleet_changes.c (requests written
 * through), fleet_presence.c (this router's record and lease, `show fleet`,
 * removing what no container or backend owns any more). */
#ifndef TETHER_FLEET_INTERNAL_H
#define TETHER_FLEET_INTERNAL_H

#include <glib.h>

#include "fleet.h"
#include "store/etcd.h"
#include "store_records.h"
#include "tetherd.h"

/* A backend as the store holds it. */
struct mirror_backend {
	char name[TETHER_NAME_MAX];
	__s64 create_revision; /* what its containers' backend_revision names */
	__s64 mod_revision;
	struct store_backend record;
};

/* A container slot's key in the store; mod_revision 0: no key. */
struct mirror_slot {
	__s64 mod_revision;
	__s64 create_revision;
	__s64 backend_revision;
	__u64 drain_deadline_unix_ms; /* draining: when it is gone */
	bool orphan; /* its backend is gone: the key is to be removed */
};

/* Something to run once this router has applied a revision. */
struct revision_waiter {
	__s64 revision;
	void (*ready)(void *ctx);
	void *ctx;
};

struct fleet {
	struct tetherd *d;
	struct fleet_config config;
	char prefix[64];
	struct etcd_client *client;

	/* reading and watching */
	struct etcd_call *snapshot;  /* the full read in progress */
	struct etcd_watch *watch;
	bool synced;                 /* the first full read is applied */
	__s64 applied_revision;      /* the newest revision applied here */
	/* The revision of the newest change applied here: the state key's mod
	 * revision (every change puts it), which `show fleet` compares with the
	 * store's. Routers' own records and lease expiries do not count. */
	__s64 applied_state_revision;
	char state_key[STORE_KEY_MAX];
	char state_value[STORE_VALUE_MAX];
	__u64 resyncs;               /* full reads after the first */
	__u64 snapshot_started_ns;
	char watch_endpoint[128];

	/* the store's view */
	GHashTable *backends; /* name -> struct mirror_backend */
	GHashTable *alive;    /* name -> lease id (gint64 *) */
	struct mirror_slot *slots; /* TETHER_MAX_CONTAINERS */
	__u32 next_slot_hint;
	__u64 bad_records;    /* keys that did not decode: logged, skipped */
	GHashTable *routers_seen; /* other routers' records: name -> struct fleet_router_seen */
	GArray *metrics_routers;  /* fleet_read_metrics' answer */

	GArray *waiters;         /* struct revision_waiter, by revision */
	GPtrArray *before_sync;  /* changes submitted before the first read */
	GHashTable *changes;     /* every change not answered yet */
	GHashTable *status_reads; /* `show fleet` reads not answered yet */
	GHashTable *capacity_asked; /* function id -> when this router last published */

	/* this router's record */
	__s64 router_lease;
	struct etcd_keepalive *router_keepalive;
	struct etcd_call *presence_call;
	__u64 presence_due_ns;
	__u64 presence_written;  /* applied revision it last wrote */
	__u64 presence_written_ns;
	__u64 cleanup_due_ns;
	struct cleanup *cleanup; /* the removal in flight */
};

/* fleet.c */
/* Runs ready(ctx) once applied_revision >= revision (now if it is). */
void fleet_when_applied(struct fleet *f, __s64 revision, void (*ready)(void *ctx), void *ctx);
void fleet_log(const struct fleet *f, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* fleet_mirror.c: every kv of a full read, in key order, then the end of it;
 * watch events as they come. */
void mirror_begin_snapshot(struct fleet *f);
void mirror_apply_kv(struct fleet *f, const struct etcd_kv *kv);
void mirror_end_snapshot(struct fleet *f);
void mirror_apply_event(struct fleet *f, const struct etcd_event *event);
struct mirror_backend *mirror_backend(struct fleet *f, const char *name);
/* A free slot no key holds, from a start of this router's own (so routers
 * adding at once rarely pick the same); false when there is none. */
bool mirror_free_slot(struct fleet *f, __u32 *slot);
/* The smallest backend id no backend of the store holds. */
bool mirror_free_backend_id(struct fleet *f, __u32 *id);

/* fleet_changes.c: changes submitted before the first read go now; those
 * that waited too long for it are answered unavailable; at the end, every
 * change not answered is answered that tetherd stops. */
void changes_release(struct fleet *f);
void changes_tick(struct fleet *f, __u64 now_ns);
void changes_abandon(struct fleet *f);

/* fleet_presence.c */
int presence_start(struct fleet *f);
void presence_tick(struct fleet *f, __u64 now_ns);
/* Ends the lease's renewal; answers the `show fleet` reads still waiting. */
void presence_stop(struct fleet *f);

/* An etcd failure as the answer to a request: unavailable, nothing changed
 * (or, for an outcome etcd could not tell, perhaps changed: the message says
 * so). */
void fleet_store_failure(const struct fleet *f, const struct etcd_error *error,
			 struct fleet_outcome *outcome);

#endif
