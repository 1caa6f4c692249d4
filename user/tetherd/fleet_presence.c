// SPDX-License-Identifier: MIT
/* This router in the fleet's store (fleet_internal.h): its record under
 * routers/ on a lease of its own (gone some seconds after the router is), with
 * the revision it has applied, which `show fleet` compares with the store's;
 * and the removal of keys nothing owns any more: containers past their drain
 * deadline, and containers of removed backends. Every router removes them,
 * each with a compare on the key's revision, so whichever is first wins and
 * the others' transactions change nothing. */
#include "fleet_internal.h"

#include <stdio.h>
#include <string.h>

#define NS_PER_MS 1000000ull
#define ROUTER_LEASE_TTL 10       /* s */
#define PRESENCE_EVERY_MS 1000    /* the record follows the applied revision this often */
#define PRESENCE_REFRESH_MS 5000  /* and is rewritten at least this often */
#define CLEANUP_EVERY_MS 1000
#define CLEANUP_BATCH 32          /* keys per transaction (etcd allows 128 operations) */
/* A draining container is removed from the store this long after its
 * deadline: every router has dropped it from its maps by then. */
#define CLEANUP_GRACE_MS 2000


/* ---- the router's lease and record -------------------------------------------------- */

static void grant_router_lease(struct fleet *f);

static void on_router_lease_lost(void *ctx, const struct etcd_error *error)
{
	struct fleet *f = ctx;

	fleet_log(f, "router %s lost its lease (%s); taking a new one", f->config.router,
		  error->message);
	etcd_keepalive_stop(f->router_keepalive);
	f->router_keepalive = NULL;
	f->router_lease = 0;
	grant_router_lease(f);
}

static void on_router_lease(void *ctx, const struct etcd_error *error, int64_t id, int64_t ttl)
{
	struct fleet *f = ctx;

	f->presence_call = NULL;
	if (error) {
		f->presence_due_ns = 0; /* try again on the next tick */
		return;
	}
	f->router_lease = id;
	f->router_keepalive = etcd_keepalive_start(f->client, id, ttl, on_router_lease_lost, f);
	f->presence_written = 0;
}

static void grant_router_lease(struct fleet *f)
{
	f->presence_call = etcd_lease_grant(f->client, ROUTER_LEASE_TTL, on_router_lease, f);
}

static void on_presence_written(void *ctx, const struct etcd_error *error,
				const struct etcd_write_result *result)
{
	struct fleet *f = ctx;

	(void)result;
	f->presence_call = NULL;
	if (error)
		f->presence_written = 0;
}

static void write_presence(struct fleet *f)
{
	struct store_router record = {
		.applied_revision = (__u64)f->applied_state_revision,
		.updated_unix_ms = store_unix_ms(),
	};
	char key[STORE_KEY_MAX], value[STORE_VALUE_MAX];

	snprintf(record.store_endpoint, sizeof(record.store_endpoint), "%s",
		 f->watch_endpoint[0] ? f->watch_endpoint : "-");
	store_key_router(f->prefix, f->config.router, key);
	store_router_encode(&record, value);
	f->presence_written = (__u64)f->applied_state_revision;
	f->presence_call = etcd_put(f->client, key, value, strlen(value), f->router_lease,
				    on_presence_written, f);
}

int presence_start(struct fleet *f)
{
	grant_router_lease(f);
	return 0;
}

static void status_abandon(gpointer key, gpointer value, gpointer data);

void presence_stop(struct fleet *f)
{
	if (f->router_keepalive)
		etcd_keepalive_stop(f->router_keepalive);
	f->router_keepalive = NULL;
	g_free(f->cleanup);
	f->cleanup = NULL;
	g_hash_table_foreach(f->status_reads, status_abandon, NULL);
	g_hash_table_remove_all(f->status_reads);
}

/* ---- capacity asked for ------------------------------------------------------------------ */

/* A router publishes a function's need for capacity at most this often. */
#define CAPACITY_EVERY_NS (1000ull * NS_PER_MS)

static void on_capacity_written(void *ctx, const struct etcd_error *error,
				const struct etcd_write_result *result)
{
	(void)ctx, (void)error, (void)result; /* the slow path asks again if it must */
}

void fleet_capacity_needed(struct fleet *f, __u64 function_id, __u32 waiting)
{
	__u64 now = monotonic_ns();
	gpointer last = g_hash_table_lookup(f->capacity_asked, &function_id);
	char key[STORE_KEY_MAX], value[STORE_VALUE_MAX];

	if (!f->router_lease || (last && now - *(__u64 *)last < CAPACITY_EVERY_NS))
		return;
	if (!last) {
		last = g_new(__u64, 2);
		((__u64 *)last)[1] = function_id;
		g_hash_table_insert(f->capacity_asked, &((__u64 *)last)[1], last);
	}
	*(__u64 *)last = now;
	store_key_capacity(f->prefix, function_id, key);
	snprintf(value, sizeof(value), "waiting=%u router=%s", waiting, f->config.router);
	/* On the router's lease: gone with the router. */
	etcd_put(f->client, key, value, strlen(value), f->router_lease, on_capacity_written, NULL);
}

/* ---- keys nothing owns -------------------------------------------------------------------- */

struct cleanup {
	struct fleet *f;
	char keys[CLEANUP_BATCH][STORE_KEY_MAX];
	struct etcd_compare compares[CLEANUP_BATCH];
	struct etcd_op ops[CLEANUP_BATCH + 1]; /* and the state key */
	size_t n;
};

static void on_cleaned(void *ctx, const struct etcd_error *error,
		       const struct etcd_txn_result *result)
{
	struct cleanup *cleanup = ctx;

	(void)error, (void)result; /* a compare that failed: another router was first */
	cleanup->f->cleanup = NULL;
	g_free(cleanup);
}

static bool is_unowned(const struct mirror_slot *ms, __u64 now_unix_ms)
{
	return ms->mod_revision &&
	       (ms->orphan || (ms->drain_deadline_unix_ms &&
			       now_unix_ms >= ms->drain_deadline_unix_ms + CLEANUP_GRACE_MS));
}

/* Up to CLEANUP_BATCH keys in one transaction, each compared on its create
 * revision (the same container, not a new one at its slot). When another
 * router removed one first the whole batch fails: the next round, on the
 * view with that removal applied, takes the rest. */
static void clean_up(struct fleet *f)
{
	__u64 now_unix_ms = store_unix_ms();
	struct cleanup *cleanup = g_new0(struct cleanup, 1);

	cleanup->f = f;
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS && cleanup->n < CLEANUP_BATCH; slot++) {
		const struct mirror_slot *ms = &f->slots[slot];

		if (!is_unowned(ms, now_unix_ms))
			continue;
		size_t i = cleanup->n++;

		store_key_container(f->prefix, slot, cleanup->keys[i]);
		cleanup->compares[i] = (struct etcd_compare){
			.key = cleanup->keys[i], .target = ETCD_CMP_CREATE_REVISION,
			.op = ETCD_CMP_EQUAL, .number = ms->create_revision,
		};
		cleanup->ops[i] = (struct etcd_op){ .type = ETCD_OP_DELETE, .key = cleanup->keys[i] };
	}
	if (!cleanup->n) {
		g_free(cleanup);
		return;
	}
	cleanup->ops[cleanup->n] = (struct etcd_op){
		.type = ETCD_OP_PUT, .key = f->state_key, .value = f->state_value,
		.value_len = strlen(f->state_value),
	};
	struct etcd_txn txn = {
		.compares = cleanup->compares, .n_compares = cleanup->n,
		.success = cleanup->ops, .n_success = cleanup->n + 1,
	};

	if (etcd_txn(f->client, &txn, on_cleaned, cleanup))
		f->cleanup = cleanup;
	else
		g_free(cleanup);
}

/* ---- the tick ------------------------------------------------------------------------------ */

void presence_tick(struct fleet *f, __u64 now_ns)
{
	changes_tick(f, now_ns);
	if (!f->synced)
		return;
	if (f->router_lease && !f->presence_call && now_ns >= f->presence_due_ns) {
		/* Its own writes move the store's revision, not the state's. */
		bool moved = (__u64)f->applied_state_revision != f->presence_written;

		if (moved || now_ns - f->presence_written_ns >= PRESENCE_REFRESH_MS * NS_PER_MS) {
			write_presence(f);
			f->presence_written_ns = now_ns;
		}
		f->presence_due_ns = now_ns + PRESENCE_EVERY_MS * NS_PER_MS;
	} else if (!f->router_lease && !f->presence_call && now_ns >= f->presence_due_ns) {
		grant_router_lease(f);
		f->presence_due_ns = now_ns + PRESENCE_EVERY_MS * NS_PER_MS;
	}
	if (!f->cleanup && now_ns >= f->cleanup_due_ns) {
		clean_up(f);
		f->cleanup_due_ns = now_ns + CLEANUP_EVERY_MS * NS_PER_MS;
	}
}

/* ---- show fleet ------------------------------------------------------------------------------ */

struct status_read {
	struct fleet *f;
	fleet_status_cb done;
	void *ctx;
	char key[STORE_KEY_MAX];
};

static void status_abandon(gpointer key, gpointer value, gpointer data)
{
	struct status_read *read = key;

	(void)value, (void)data;
	read->done(read->ctx, PROTO_UNAVAILABLE, "tetherd is stopping", NULL);
	g_free(read);
}

static void on_routers(void *ctx, const struct etcd_error *error,
		       const struct etcd_txn_result *result)
{
	struct status_read *read = ctx;
	struct fleet *f = read->f;

	g_hash_table_remove(f->status_reads, read);
	if (error) {
		struct fleet_outcome outcome;

		fleet_store_failure(f, error, &outcome);
		read->done(read->ctx, PROTO_UNAVAILABLE, outcome.message, NULL);
		g_free(read);
		return;
	}
	const struct etcd_range_result *state = &result->responses[0].range;
	const struct etcd_range_result *routers = &result->responses[1].range;
	struct fleet_status status = {
		.store_revision = (__u64)result->header.revision,
		.state_revision = state->n_kvs ? (__u64)state->kvs[0].mod_revision : 0,
		.applied_revision = (__u64)f->applied_state_revision,
		.synced = f->synced,
	};
	__u64 now_unix_ms = store_unix_ms();

	snprintf(status.fleet, sizeof(status.fleet), "%s", f->config.name);
	snprintf(status.router, sizeof(status.router), "%s", f->config.router);
	status.routers = g_new0(struct fleet_router, routers->n_kvs + 1);
	for (size_t i = 0; i < routers->n_kvs; i++) {
		const struct etcd_kv *kv = &routers->kvs[i];
		struct fleet_router *router = &status.routers[status.n_routers];
		struct store_router record;
		struct store_key key;
		char why[256];

		if (!store_key_parse(f->prefix, kv->key, kv->key_len, &key) ||
		    key.kind != STORE_ROUTER ||
		    store_router_decode(kv->value, kv->value_len, &record, why, sizeof(why)))
			continue;
		snprintf(router->name, sizeof(router->name), "%s", key.name);
		router->applied_revision = record.applied_revision;
		router->lag = status.state_revision > record.applied_revision
				      ? status.state_revision - record.applied_revision
				      : 0;
		router->updated_ms_ago =
			now_unix_ms > record.updated_unix_ms ? now_unix_ms - record.updated_unix_ms : 0;
		snprintf(router->store_endpoint, sizeof(router->store_endpoint), "%s",
			 record.store_endpoint);
		status.n_routers++;
	}
	read->done(read->ctx, PROTO_OK, "", &status);
	g_free(status.routers);
	g_free(read);
}

/* The state key and every router's record, at one revision. */
void fleet_read_status(struct fleet *f, fleet_status_cb done, void *ctx)
{
	struct status_read *read = g_new0(struct status_read, 1);

	read->f = f;
	read->done = done;
	read->ctx = ctx;
	snprintf(read->key, sizeof(read->key), "%srouters/", f->prefix);
	struct etcd_op ranges[] = {
		{ .type = ETCD_OP_RANGE, .key = f->state_key },
		{ .type = ETCD_OP_RANGE, .key = read->key, .prefix = true },
	};
	struct etcd_txn txn = { .success = ranges, .n_success = 2 };

	if (!etcd_txn(f->client, &txn, on_routers, read)) {
		done(ctx, PROTO_INTERNAL, "the store request could not be built", NULL);
		g_free(read);
		return;
	}
	g_hash_table_add(f->status_reads, read);
}
