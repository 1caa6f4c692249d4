// SPDX-License-Identifier: MIT
/* The fleet's store, mirrored into the lifecycle (fleet_internal.h): each key
 * decoded (store_records.h) and applied with the lifecycle's apply calls,
 * which make the view and the maps equal to the record whatever they held.
 * A full read rebuilds the store's view and, at its end, forgets what the
 * store no longer has. */
#include "fleet_internal.h"

#include <stdio.h>
#include <string.h>

/* Bad records are logged, the first ones whole, then one in this many. */
#define BAD_RECORD_LOG_EVERY 1000

static void bad_record(struct fleet *f, const struct etcd_kv *kv, const char *why)
{
	f->bad_records++;
	if (f->bad_records <= 20 || f->bad_records % BAD_RECORD_LOG_EVERY == 0)
		fleet_log(f, "skipping %.*s (revision %lld): %s (%llu such records so far)",
			  (int)kv->key_len, kv->key, (long long)kv->mod_revision, why,
			  (unsigned long long)f->bad_records);
}

struct mirror_backend *mirror_backend(struct fleet *f, const char *name)
{
	return g_hash_table_lookup(f->backends, name);
}

/* ---- backends ------------------------------------------------------------------ */

/* The backend as the lifecycle should have it: the store's record, down while
 * no lease keeps its alive key. */
static void apply_backend(struct fleet *f, const struct mirror_backend *mb)
{
	struct lifecycle *lc = &f->d->lc;
	bool alive = g_hash_table_contains(f->alive, mb->name);
	struct lc_backend_spec spec = {
		.id = mb->record.id,
		.name = mb->name,
		.iface = mb->record.iface,
		.vlan = mb->record.vlan,
		.encap = mb->record.encap,
		.vni = mb->record.vni,
		.heartbeat_ms = mb->record.heartbeat_ms,
		.state = alive ? mb->record.state : BACKEND_DOWN,
		.drain_deadline_ns = store_deadline_to_monotonic(mb->record.drain_deadline_unix_ms,
								 lifecycle_now(lc), store_unix_ms()),
	};

	memcpy(spec.addr, mb->record.addr, 16);
	memcpy(spec.mac, mb->record.mac, 6);
	if (lc_backend_apply(lc, &spec))
		fleet_log(f, "backend %s (store revision %lld) cannot be applied here: %s", mb->name,
			  (long long)mb->mod_revision, lifecycle_error(lc));
}

static void put_backend(struct fleet *f, const struct store_key *key, const struct etcd_kv *kv)
{
	struct mirror_backend *mb = g_new0(struct mirror_backend, 1);
	char why[256] = "";

	if (store_backend_decode(kv->value, kv->value_len, &mb->record, why, sizeof(why))) {
		bad_record(f, kv, why);
		g_free(mb);
		return;
	}
	snprintf(mb->name, sizeof(mb->name), "%s", key->name);
	mb->create_revision = kv->create_revision;
	mb->mod_revision = kv->mod_revision;
	g_hash_table_replace(f->backends, mb->name, mb);
	apply_backend(f, mb);
}

/* The backend's containers' keys have no backend now: removed later
 * (fleet_presence.c), never applied. */
static void orphan_containers_of(struct fleet *f, __s64 backend_revision)
{
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS; slot++)
		if (f->slots[slot].mod_revision && f->slots[slot].backend_revision == backend_revision)
			f->slots[slot].orphan = true;
}

static void delete_backend(struct fleet *f, const char *name)
{
	struct mirror_backend *mb = mirror_backend(f, name);

	if (mb) {
		orphan_containers_of(f, mb->create_revision);
		g_hash_table_remove(f->backends, name);
	}
	lc_backend_forget(&f->d->lc, name);
}

static void set_alive(struct fleet *f, const char *name, __s64 lease, bool alive)
{
	struct mirror_backend *mb;

	if (alive) {
		gint64 *id = g_new(gint64, 1);

		*id = lease;
		g_hash_table_replace(f->alive, g_strdup(name), id);
	} else {
		g_hash_table_remove(f->alive, name);
	}
	if ((mb = mirror_backend(f, name)))
		apply_backend(f, mb);
}

/* ---- containers ------------------------------------------------------------------ */

static void put_container(struct fleet *f, __u32 slot, const struct etcd_kv *kv)
{
	struct lifecycle *lc = &f->d->lc;
	struct store_container record;
	char why[256] = "";

	if (store_container_decode(kv->value, kv->value_len, &record, why, sizeof(why))) {
		bad_record(f, kv, why);
		return;
	}
	struct mirror_backend *mb = mirror_backend(f, record.backend);

	f->slots[slot] = (struct mirror_slot){
		.mod_revision = kv->mod_revision,
		.create_revision = kv->create_revision,
		.backend_revision = (__s64)record.backend_revision,
		.drain_deadline_unix_ms =
			record.state == CONTAINER_DRAINING ? record.drain_deadline_unix_ms : 0,
		/* Added to a backend since removed (or removed and added again). */
		.orphan = !mb || mb->create_revision != (__s64)record.backend_revision,
	};
	if (f->slots[slot].orphan) {
		lc_container_forget(lc, slot, "backend_removed");
		return;
	}
	struct lc_container_spec spec = {
		.slot = slot,
		.generation = store_generation(kv->create_revision),
		.secret = record.secret,
		.function_id = record.function_id,
		.backend = record.backend,
		.name = record.name,
		.state = record.state,
		.drain_deadline_ns = store_deadline_to_monotonic(record.drain_deadline_unix_ms,
								 lifecycle_now(lc), store_unix_ms()),
		.concurrency = record.concurrency,
	};

	if (lc_container_apply(lc, &spec))
		fleet_log(f, "container %u (store revision %lld) cannot be applied here: %s", slot,
			  (long long)kv->mod_revision, lifecycle_error(lc));
}

static void delete_container(struct fleet *f, __u32 slot)
{
	f->slots[slot] = (struct mirror_slot){};
	lc_container_forget(&f->d->lc, slot, "deleted");
}

/* ---- policies -------------------------------------------------------------------------- */

static void put_policy(struct fleet *f, const struct store_key *key, const struct etcd_kv *kv)
{
	struct proto_functions functions = { .any = false };
	char why[256] = "";

	if (store_policy_decode(kv->value, kv->value_len, &functions.allowed, why, sizeof(why))) {
		bad_record(f, kv, why);
		return;
	}
	if (lc_backend_set_functions(&f->d->lc, key->name, &functions))
		fleet_log(f, "the functions of backend %s cannot be applied here: %s", key->name,
			  lifecycle_error(&f->d->lc));
}

/* ---- keys and events ---------------------------------------------------------------- */

/* Every change puts the state key: its revision is the state's. */
static void state_moved(struct fleet *f, const struct store_key *key, __s64 revision)
{
	if (key->kind == STORE_STATE && revision > f->applied_state_revision)
		f->applied_state_revision = revision;
}

/* Another router's slow path waits for capacity: this router's watchers
 * (agents among them) hear it too. */
static void capacity_asked(struct fleet *f, const struct store_key *key, const struct etcd_kv *kv)
{
	const struct lifecycle_observer *observer = &f->d->lc.config.observer;
	struct proto_request record;
	const char *router;
	__u32 waiting = 0;
	char line[256], why[128];

	if (proto_parse_record(kv->value, kv->value_len, &record, why, sizeof(why)) ||
	    proto_get_u32(&record, "waiting", 1, &waiting, why, sizeof(why)) ||
	    !(router = proto_get(&record, "router")) || !strcmp(router, f->config.router) ||
	    !observer->event)
		return;
	snprintf(line, sizeof(line), "event=capacity_needed function=%llu waiting=%u router=%s",
		 (unsigned long long)key->function_id, waiting, router);
	observer->event(observer->ctx, line);
}

/* Another router's record, for /metrics (fleet_read_metrics); this
 * router's own figures are live. */
static void router_seen(struct fleet *f, const struct store_key *key, const struct etcd_kv *kv)
{
	struct store_router record;
	struct fleet_router_seen *seen;
	char why[128];

	if (!strcmp(key->name, f->config.router) ||
	    store_router_decode(kv->value, kv->value_len, &record, why, sizeof(why)))
		return;
	seen = g_hash_table_lookup(f->routers_seen, key->name);
	if (!seen) {
		seen = g_new0(struct fleet_router_seen, 1);
		snprintf(seen->name, sizeof(seen->name), "%s", key->name);
		g_hash_table_insert(f->routers_seen, seen->name, seen);
	}
	seen->applied_revision = record.applied_revision;
	seen->updated_unix_ms = record.updated_unix_ms;
}

/* functions/F: the function's settings, on every router. */
static void put_function(struct fleet *f, const struct store_key *key, const struct etcd_kv *kv)
{
	struct store_function record;
	char why[256] = "";

	if (store_function_decode(kv->value, kv->value_len, &record, why, sizeof(why))) {
		bad_record(f, kv, why);
		return;
	}
	if (lc_function_set_limit(&f->d->lc, key->function_id, record.concurrency))
		fleet_log(f, "function %llu's settings cannot be applied here: %s",
			  (unsigned long long)key->function_id, lifecycle_error(&f->d->lc));
}

void mirror_apply_kv(struct fleet *f, const struct etcd_kv *kv)
{
	struct store_key key;

	if (!store_key_parse(f->prefix, kv->key, kv->key_len, &key)) {
		bad_record(f, kv, "not a key of a fleet (docs/store.md lists them)");
		return;
	}
	state_moved(f, &key, kv->mod_revision);
	switch (key.kind) {
	case STORE_ALIVE:
		set_alive(f, key.name, kv->lease, true);
		break;
	case STORE_BACKEND:
		put_backend(f, &key, kv);
		break;
	case STORE_CONTAINER:
		put_container(f, key.number, kv);
		break;
	case STORE_CAPACITY:
		capacity_asked(f, &key, kv);
		break;
	case STORE_POLICY:
		put_policy(f, &key, kv);
		break;
	case STORE_ROUTER:
		router_seen(f, &key, kv);
		break;
	case STORE_FUNCTION:
		put_function(f, &key, kv);
		break;
	default: /* ids and names only guard changes and answer status */
		break;
	}
}

void mirror_apply_event(struct fleet *f, const struct etcd_event *event)
{
	struct store_key key;

	if (event->type == ETCD_EVENT_PUT) {
		mirror_apply_kv(f, &event->kv);
		return;
	}
	if (!store_key_parse(f->prefix, event->kv.key, event->kv.key_len, &key))
		return;
	state_moved(f, &key, event->kv.mod_revision);
	switch (key.kind) {
	case STORE_ALIVE:
		set_alive(f, key.name, 0, false);
		break;
	case STORE_BACKEND:
		delete_backend(f, key.name);
		break;
	case STORE_CONTAINER:
		delete_container(f, key.number);
		break;
	case STORE_POLICY: {
		struct proto_functions any = { .any = true };

		lc_backend_set_functions(&f->d->lc, key.name, &any);
		break;
	}
	case STORE_ROUTER:
		g_hash_table_remove(f->routers_seen, key.name);
		break;
	case STORE_FUNCTION:
		lc_function_set_limit(&f->d->lc, key.function_id, 0);
		break;
	default:
		break;
	}
}

/* ---- full reads -------------------------------------------------------------------- */

void mirror_begin_snapshot(struct fleet *f)
{
	f->applied_state_revision = 0;
	g_hash_table_remove_all(f->routers_seen);
	g_hash_table_remove_all(f->backends);
	g_hash_table_remove_all(f->alive);
	memset(f->slots, 0, TETHER_MAX_CONTAINERS * sizeof(*f->slots));
}

/* What this router holds and the store does not is gone: kept from before a
 * restart (the pinned maps) or missed while the watch was away. */
void mirror_end_snapshot(struct fleet *f)
{
	struct lifecycle *lc = &f->d->lc;
	__u32 forgotten_backends = 0, forgotten_containers = 0;

	for (__u32 id = 1; id < TETHER_MAX_BACKENDS; id++) {
		const struct backend *b = &lc->backends[id];

		if (b->in_use && !mirror_backend(f, b->meta.name)) {
			char name[TETHER_NAME_MAX];

			snprintf(name, sizeof(name), "%s", b->meta.name);
			lc_backend_forget(lc, name);
			forgotten_backends++;
		}
	}
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS; slot++) {
		if (lc->containers[slot].state != CONTAINER_FREE && !f->slots[slot].mod_revision) {
			lc_container_forget(lc, slot, "deleted");
			forgotten_containers++;
		}
	}
	if (forgotten_backends || forgotten_containers)
		fleet_log(f, "forgot %u backends and %u containers the store no longer has",
			  forgotten_backends, forgotten_containers);
}

/* ---- identities for new keys ------------------------------------------------------- */

bool mirror_free_slot(struct fleet *f, __u32 *slot)
{
	const struct lifecycle *lc = &f->d->lc;

	for (__u32 i = 0; i < TETHER_MAX_CONTAINERS; i++) {
		__u32 candidate = (f->next_slot_hint + i) % TETHER_MAX_CONTAINERS;

		if (!f->slots[candidate].mod_revision &&
		    lc->containers[candidate].state == CONTAINER_FREE) {
			*slot = candidate;
			f->next_slot_hint = (candidate + 1) % TETHER_MAX_CONTAINERS;
			return true;
		}
	}
	return false;
}

bool mirror_free_backend_id(struct fleet *f, __u32 *id)
{
	g_autofree bool *used = g_new0(bool, TETHER_MAX_BACKENDS);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, f->backends);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		used[((struct mirror_backend *)value)->record.id] = true;
	for (__u32 candidate = 1; candidate < TETHER_MAX_BACKENDS; candidate++) {
		if (!used[candidate]) {
			*id = candidate;
			return true;
		}
	}
	return false;
}
