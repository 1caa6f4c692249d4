// SPDX-License-Identifier: MIT
/* Fleet mode (fleet.h): the store client, the full read of the fleet's state
 * and the watch that follows it, and waiting until a revision is applied. */
#include "fleet_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys per page of a full read. etcd 3.4 walks the rest of the range for
 * every page, so small pages make a large read slow (1,000,000 containers:
 * 75 s in pages of 4,096); a page of 25,000 is a few MB of JSON. */
#define SNAPSHOT_PAGE 25000

void fleet_log(const struct fleet *f, const char *format, ...)
{
	va_list args;

	fprintf(stderr, "tetherd: fleet %s: ", f->config.name);
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fputc('\n', stderr);
}

/* ---- waiting for a revision ------------------------------------------------ */

static gint by_revision(gconstpointer a, gconstpointer b)
{
	__s64 x = ((const struct revision_waiter *)a)->revision;
	__s64 y = ((const struct revision_waiter *)b)->revision;

	return (x > y) - (x < y);
}

void fleet_when_applied(struct fleet *f, __s64 revision, void (*ready)(void *ctx), void *ctx)
{
	struct revision_waiter waiter = { revision, ready, ctx };

	if (f->synced && f->applied_revision >= revision) {
		ready(ctx);
		return;
	}
	g_array_append_val(f->waiters, waiter);
	g_array_sort(f->waiters, by_revision);
}

/* Runs the waiters the applied revision has reached, oldest first. */
static void wake_waiters(struct fleet *f)
{
	while (f->synced && f->waiters->len &&
	       g_array_index(f->waiters, struct revision_waiter, 0).revision <=
		       f->applied_revision) {
		struct revision_waiter waiter = g_array_index(f->waiters, struct revision_waiter, 0);

		g_array_remove_index(f->waiters, 0);
		waiter.ready(waiter.ctx);
	}
}

static void applied(struct fleet *f, __s64 revision)
{
	if (revision > f->applied_revision)
		f->applied_revision = revision;
	wake_waiters(f);
}

/* ---- the watch ---------------------------------------------------------------- */

static void start_snapshot(struct fleet *f);

static void on_watch(void *ctx, const struct etcd_error *error,
		     const struct etcd_watch_update *update)
{
	struct fleet *f = ctx;

	if (error) {
		/* The watch has ended: compacted past our revision (read everything
		 * again), or refused. */
		fleet_log(f, "watch ended (%s: %s); reading the whole state again",
			  etcd_status_name(error->status), error->message);
		etcd_watch_cancel(f->watch);
		f->watch = NULL;
		f->resyncs++;
		start_snapshot(f);
		return;
	}
	switch (update->news) {
	case ETCD_WATCH_EVENTS:
		for (size_t i = 0; i < update->n_events; i++)
			mirror_apply_event(f, &update->events[i]);
		applied(f, update->n_events ? update->events[update->n_events - 1].kv.mod_revision
					    : update->header.revision);
		break;
	case ETCD_WATCH_PROGRESS:
		applied(f, update->header.revision);
		break;
	case ETCD_WATCH_CONNECTED:
		snprintf(f->watch_endpoint, sizeof(f->watch_endpoint), "%s", update->endpoint);
		fleet_log(f, "watching %s from %s", f->prefix, update->endpoint);
		break;
	case ETCD_WATCH_LOST:
		f->watch_endpoint[0] = '\0';
		fleet_log(f, "lost the watch on %s (%s); the data plane keeps the state it has "
			     "while the watch is resumed", update->endpoint ? update->endpoint : "?",
			  update->message ? update->message : "");
		break;
	}
}

/* ---- the full read ------------------------------------------------------------ */

static void on_snapshot_page(void *ctx, const struct etcd_range_result *page)
{
	struct fleet *f = ctx;

	for (size_t i = 0; i < page->n_kvs; i++)
		mirror_apply_kv(f, &page->kvs[i]);
}

static void on_snapshot_done(void *ctx, const struct etcd_error *error, int64_t revision)
{
	struct fleet *f = ctx;

	f->snapshot = NULL;
	if (error) {
		fleet_log(f, "reading %s failed (%s: %s); trying again", f->prefix,
			  etcd_status_name(error->status), error->message);
		start_snapshot(f); /* the client backs off between rounds itself */
		return;
	}
	mirror_end_snapshot(f);
	bool first = !f->resyncs;

	f->synced = true;
	f->applied_revision = revision;
	fleet_log(f, "%s the state of %s at revision %lld (%.1f ms): %u backends, %s",
		  first ? "read" : "read again", f->prefix, (long long)revision,
		  (monotonic_ns() - f->snapshot_started_ns) / 1e6, g_hash_table_size(f->backends),
		  f->bad_records ? "some records did not decode (logged above)" : "all records good");
	f->watch = etcd_watch_prefix(f->client, f->prefix, revision + 1, on_watch, f);
	if (!f->watch)
		fleet_log(f, "cannot watch %s", f->prefix);
	wake_waiters(f);
	changes_release(f);
}

static void start_snapshot(struct fleet *f)
{
	struct etcd_range range = { .key = f->prefix, .prefix = true, .limit = SNAPSHOT_PAGE };

	/* Until it is read whole, changes wait: the view is being rebuilt. */
	f->synced = false;
	f->snapshot_started_ns = monotonic_ns();
	mirror_begin_snapshot(f);
	f->snapshot = etcd_range_pages(f->client, &range, on_snapshot_page, on_snapshot_done, f);
	if (!f->snapshot)
		fleet_log(f, "cannot start reading %s", f->prefix);
}

/* ---- the module ---------------------------------------------------------------- */

static bool fleet_has_tls(const struct fleet_config *config);

struct fleet *fleet_new(struct tetherd *d, const struct fleet_config *config, char *why,
			size_t why_size)
{
	struct fleet *f = g_new0(struct fleet, 1);

	f->d = d;
	f->config = *config;
	if (store_prefix(config->name, f->prefix, sizeof(f->prefix))) {
		snprintf(why, why_size, "fleet name '%s' must be 1-31 of A-Z a-z 0-9 . _ -",
			 config->name);
		g_free(f);
		return NULL;
	}
	f->client = etcd_client_new(d->loop, config->endpoints, NULL, why, why_size);
	if (!f->client) {
		g_free(f);
		return NULL;
	}
	if (fleet_has_tls(config) && etcd_client_set_tls(f->client, &(struct etcd_tls_files){
			config->ca, config->cert, config->key }, why, why_size)) {
		etcd_client_free(f->client);
		g_free(f);
		return NULL;
	}
	store_key_state(f->prefix, f->state_key);
	snprintf(f->state_value, sizeof(f->state_value), "router=%s", config->router);
	f->backends = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	f->alive = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	f->slots = g_new0(struct mirror_slot, TETHER_MAX_CONTAINERS);
	f->waiters = g_array_new(FALSE, FALSE, sizeof(struct revision_waiter));
	f->before_sync = g_ptr_array_new();
	f->changes = g_hash_table_new(g_direct_hash, g_direct_equal);
	f->status_reads = g_hash_table_new(g_direct_hash, g_direct_equal);
	f->capacity_asked = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	f->routers_seen = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	f->metrics_routers = g_array_new(FALSE, FALSE, sizeof(struct fleet_router_seen));
	f->next_slot_hint = g_random_int_range(0, TETHER_MAX_CONTAINERS);
	return f;
}

static bool fleet_has_tls(const struct fleet_config *config)
{
	return config->ca[0] || config->cert[0] || config->key[0];
}

void fleet_reload_tls(struct fleet *f)
{
	char why[512];

	if (!f || !fleet_has_tls(&f->config))
		return;
	if (etcd_client_set_tls(f->client, &(struct etcd_tls_files){ f->config.ca, f->config.cert,
								     f->config.key },
				why, sizeof(why)))
		fleet_log(f, "SIGHUP: the store's TLS files were not reloaded, the ones in use "
			     "stay: %s", why);
	else
		fleet_log(f, "SIGHUP: the store's TLS files reloaded (%s%s%s%s): new connections "
			     "to etcd use them",
			  f->config.ca[0] ? "CA " : "", f->config.ca,
			  f->config.cert[0] ? ", certificate " : "", f->config.cert);
}

int fleet_start(struct fleet *f)
{
	fleet_log(f, "router %s, store %s, prefix %s", f->config.router, f->config.endpoints,
		  f->prefix);
	start_snapshot(f);
	return presence_start(f);
}

void fleet_tick(struct fleet *f)
{
	if (f)
		presence_tick(f, monotonic_ns());
}

void fleet_free(struct fleet *f)
{
	if (!f)
		return;
	if (f->watch)
		etcd_watch_cancel(f->watch);
	if (f->router_keepalive)
		etcd_keepalive_stop(f->router_keepalive);
	f->router_keepalive = NULL;
	etcd_client_free(f->client); /* cancels the calls still running, callbacks unrun */
	changes_abandon(f);
	presence_stop(f);
	g_hash_table_destroy(f->backends);
	g_hash_table_destroy(f->alive);
	g_free(f->slots);
	g_array_free(f->waiters, TRUE);
	g_ptr_array_free(f->before_sync, TRUE);
	g_hash_table_destroy(f->changes);
	g_hash_table_destroy(f->status_reads);
	g_hash_table_destroy(f->capacity_asked);
	g_hash_table_destroy(f->routers_seen);
	g_array_free(f->metrics_routers, TRUE);
	g_free(f);
}

void fleet_store_failure(const struct fleet *f, const struct etcd_error *error,
			 struct fleet_outcome *outcome)
{
	bool maybe = error->status == ETCD_TIMEOUT || error->status == ETCD_OUTCOME_UNKNOWN;

	outcome->error = PROTO_UNAVAILABLE;
	/* What it means first; etcd's message (every endpoint's failure) is
	 * cut to fit after it. */
	g_snprintf(outcome->message, sizeof(outcome->message), "%s; the store (%s) said: %s",
		   maybe ? "the fleet's store did not say whether it committed the change: list "
			   "the state to see, and send the request again if it is not there"
			 : "the fleet's store did not take the change: nothing changed, and the "
			   "routers keep forwarding on the state they have",
		   f->config.endpoints, error->message);
}

static gint router_by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(((const struct fleet_router_seen *)a)->name,
		      ((const struct fleet_router_seen *)b)->name);
}

void fleet_read_metrics(struct fleet *f, struct fleet_metrics *out)
{
	GHashTableIter iter;
	gpointer value;

	g_array_set_size(f->metrics_routers, 0);
	g_hash_table_iter_init(&iter, f->routers_seen);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_array_append_val(f->metrics_routers, *(struct fleet_router_seen *)value);
	g_array_sort(f->metrics_routers, router_by_name);
	*out = (struct fleet_metrics){
		.fleet = f->config.name,
		.router = f->config.router,
		.synced = f->synced,
		.watching = f->watch && f->watch_endpoint[0],
		.applied_revision = (__u64)f->applied_state_revision,
		.resyncs = f->resyncs,
		.bad_records = f->bad_records,
		.pending_changes = g_hash_table_size(f->changes),
		.routers = (const struct fleet_router_seen *)f->metrics_routers->data,
		.n_routers = f->metrics_routers->len,
	};
}
