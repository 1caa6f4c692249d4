// SPDX-License-Identifier: MIT
/* Lifecycle requests written through the fleet's store (fleet.h): each is
 * checked against this router's view with the lifecycle's own rules, then
 * committed by one etcd transaction whose compares hold only if the keys it
 * read are as the view has them. When they no longer are (another router
 * changed them, or took the same new slot or id), the request waits until
 * this router has applied that change and is tried again from its checks.
 * It is answered once this router has applied what it committed, so "ok"
 * means committed in the store and routed by here. */
#include "fleet_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* Tries of one request whose compares keep failing: past this the store is
 * changing faster than the request can follow. */
#define MAX_ATTEMPTS 8
/* How long settle() reads for whether an uncertain try was committed. */
#define SETTLE_TIMEOUT_MS 2000
/* A request waits this long at most for the first read of the store. */
#define SYNC_WAIT_NS (10ull * 1000000000ull)
#define NS_PER_MS 1000000ull

struct change {
	struct fleet *f;
	struct lc_request request;
	fleet_done_cb done;
	void *ctx;
	int attempts;
	__u64 submitted_ns;
	__u32 slot;       /* add container: the slot tried */
	__u64 secret;     /* add container: the secret tried */
	bool uncertain;   /* the store did not say whether the last try was committed */
	__s64 lease;      /* add backend, heartbeat: a lease granted for alive/NAME */
	__s64 lease_ttl;
	/* The transaction and the strings it points to. */
	char keys[6][STORE_KEY_MAX];
	char values[4][STORE_VALUE_MAX];
	struct etcd_compare compares[4];
	struct etcd_op ops[7]; /* the change's, and the state key */
	struct etcd_txn txn;
	struct fleet_outcome outcome;
};

static void change_try(struct change *c);

static void finish(struct change *c)
{
	g_hash_table_remove(c->f->changes, c);
	c->done(c->ctx, &c->outcome);
	g_free(c);
}

static void finish_error(struct change *c, enum proto_error error, const char *message)
{
	c->outcome.error = error;
	snprintf(c->outcome.message, sizeof(c->outcome.message), "%s", message);
	finish(c);
}

static void finish_lifecycle_error(struct change *c, enum proto_error error)
{
	finish_error(c, error, lifecycle_error(&c->f->d->lc));
}

static void finish_store_error(struct change *c, const struct etcd_error *error)
{
	fleet_store_failure(c->f, error, &c->outcome);
	finish(c);
}

static void finished_when_applied(void *ctx)
{
	finish(ctx);
}

static void try_again(void *ctx)
{
	change_try(ctx);
}

/* ---- the transaction ------------------------------------------------------------ */

static const char *key(struct change *c, int index)
{
	return c->keys[index];
}

static void compare(struct change *c, const char *k, enum etcd_compare_target target,
		    __s64 number)
{
	c->compares[c->txn.n_compares++] = (struct etcd_compare){
		.key = k, .target = target, .op = ETCD_CMP_EQUAL, .number = number,
	};
}

static void put(struct change *c, const char *k, const char *value, __s64 lease)
{
	c->ops[c->txn.n_success++] = (struct etcd_op){
		.type = ETCD_OP_PUT, .key = k, .value = value, .value_len = strlen(value),
		.lease = lease,
	};
}

static void delete(struct change *c, const char *k, bool prefix)
{
	c->ops[c->txn.n_success++] = (struct etcd_op){
		.type = ETCD_OP_DELETE, .key = k, .prefix = prefix,
	};
}

static void on_revoked(void *ctx, const struct etcd_error *error,
		       const struct etcd_write_result *result)
{
	(void)ctx, (void)error, (void)result; /* unrevoked, it expires after its TTL */
}

/* A lease granted for a backend that will not be added. */
static void revoke_lease(struct change *c)
{
	if (c->lease)
		etcd_lease_revoke(c->f->client, c->lease, on_revoked, NULL);
	c->lease = 0;
}

static bool outcome_unknown(const struct etcd_error *error)
{
	return error->status == ETCD_TIMEOUT || error->status == ETCD_OUTCOME_UNKNOWN;
}

static void on_settled(void *ctx, const struct etcd_error *error,
		       const struct etcd_range_result *result)
{
	struct change *c = ctx;

	if (error) {
		finish_store_error(c, error);
		return;
	}
	fleet_when_applied(c->f, result->header.revision, try_again, c);
}

/* The store could not say whether the last try was committed (the member
 * it went to died, the leader changed): once it answers a read again, and
 * this router has applied everything up to that read, the request is either
 * done already (change_try sees it) or tried again, its compares keeping a
 * second try from applying twice. */
static void settle(struct change *c)
{
	/* Short: the request's first try has had the client's whole timeout,
	 * and the operator waits for one answer (tetherctl gives up at 10 s). */
	struct etcd_range range = { .key = c->f->state_key, .count_only = true,
				    .timeout_ms = SETTLE_TIMEOUT_MS };

	c->uncertain = true;
	if (!etcd_range(c->f->client, &range, on_settled, c))
		finish_error(c, PROTO_INTERNAL, "the store request could not be built");
}

static void on_txn(void *ctx, const struct etcd_error *error, const struct etcd_txn_result *result)
{
	struct change *c = ctx;

	if (error && error->status == ETCD_FAILED_COMPARE) {
		if (++c->attempts >= MAX_ATTEMPTS) {
			revoke_lease(c);
			finish_error(c, PROTO_UNAVAILABLE,
				     "the fleet's store kept changing what this request depends on "
				     "(8 tries); nothing changed; try again");
			return;
		}
		/* Another router changed a key this request read: check again
		 * once this router has that change too. */
		fleet_when_applied(c->f, result ? result->header.revision : 0, try_again, c);
		return;
	}
	if (error && outcome_unknown(error) && ++c->attempts < MAX_ATTEMPTS) {
		settle(c); /* a member died, a leader changed: see what became of it */
		return;
	}
	if (error) {
		if (c->request.op == LC_BACKEND_ADD && !outcome_unknown(error))
			revoke_lease(c);
		finish_store_error(c, error);
		return;
	}
	c->outcome.slot = c->slot;
	fleet_when_applied(c->f, result->header.revision, finished_when_applied, c);
}

static void commit(struct change *c)
{
	put(c, c->f->state_key, c->f->state_value, 0);
	c->txn.compares = c->compares;
	c->txn.success = c->ops;
	if (!etcd_txn(c->f->client, &c->txn, on_txn, c))
		finish_error(c, PROTO_INTERNAL, "the store transaction could not be built");
}

static void reset_txn(struct change *c)
{
	memset(&c->txn, 0, sizeof(c->txn));
}

/* ---- leases ----------------------------------------------------------------------- */

/* Backend liveness is an etcd lease of the backend's heartbeat time (whole
 * seconds, at least 2: etcd's minimum TTL). */
static __s64 lease_ttl_of(__u32 heartbeat_ms)
{
	__s64 ttl = (heartbeat_ms + 999) / 1000;

	return ttl < 2 ? 2 : ttl;
}

static void on_lease(void *ctx, const struct etcd_error *error, int64_t id, int64_t ttl)
{
	struct change *c = ctx;

	if (error) {
		finish_store_error(c, error);
		return;
	}
	c->lease = id;
	c->lease_ttl = ttl;
	change_try(c);
}

static bool have_lease(struct change *c, __u32 heartbeat_ms)
{
	if (c->lease)
		return true;
	if (!etcd_lease_grant(c->f->client, lease_ttl_of(heartbeat_ms), on_lease, c))
		finish_error(c, PROTO_INTERNAL, "the lease request could not be built");
	return false;
}

/* ---- backends ---------------------------------------------------------------------- */

static struct mirror_backend *backend_in_store(struct change *c, const char *name)
{
	struct mirror_backend *mb = mirror_backend(c->f, name);

	if (!mb)
		finish_error(c, PROTO_NOT_FOUND,
			     "no backend named that in the fleet (tetherctl backend list shows them)");
	return mb;
}

static void set_policy(struct change *c, int k, int v);

static void add_backend(struct change *c)
{
	const struct lc_request *r = &c->request;
	struct lifecycle *lc = &c->f->d->lc;
	struct lc_backend_link link = {
		.encap = r->encap, .vni = r->vni, .iface = r->iface, .vlan = r->vlan,
	};
	enum proto_error err = lc_check_backend_add(lc, r->backend, r->addr, &link);
	__u32 heartbeat_ms = r->heartbeat_ms ? r->heartbeat_ms : lc->config.heartbeat_ms;
	struct store_backend record = {
		.iface = "", .heartbeat_ms = heartbeat_ms, .state = BACKEND_UP,
	};

	if (err) {
		revoke_lease(c);
		finish_lifecycle_error(c, err);
		return;
	}
	if (!have_lease(c, heartbeat_ms))
		return;
	if (!mirror_free_backend_id(c->f, &record.id)) {
		revoke_lease(c);
		finish_error(c, PROTO_FULL, "all backend ids of the fleet are in use");
		return;
	}
	memcpy(record.addr, r->addr, 16);
	memcpy(record.mac, r->mac, 6);
	if (r->encap == BACKEND_VXLAN && !r->has_mac)
		tether_vxlan_default_mac(r->vni, record.mac);
	record.vlan = r->vlan;
	record.encap = r->encap;
	record.vni = r->vni;
	snprintf(record.iface, sizeof(record.iface), "%s", r->iface);
	store_key_backend(c->f->prefix, r->backend, c->keys[0]);
	store_key_backend_id(c->f->prefix, record.id, c->keys[1]);
	store_key_alive(c->f->prefix, r->backend, c->keys[2]);
	store_backend_encode(&record, c->values[0]);
	store_backend_id_encode(r->backend, c->values[1]);
	snprintf(c->values[2], STORE_VALUE_MAX, "router=%s", c->f->config.router);
	reset_txn(c);
	compare(c, key(c, 0), ETCD_CMP_CREATE_REVISION, 0);
	compare(c, key(c, 1), ETCD_CMP_CREATE_REVISION, 0);
	put(c, key(c, 0), c->values[0], 0);
	put(c, key(c, 1), c->values[1], 0);
	put(c, key(c, 2), c->values[2], c->lease);
	if (r->has_functions)
		set_policy(c, 3, 3);
	commit(c);
}

/* The functions request's backend may hold, into key slot k and value slot v
 * of the transaction: any is no key. */
static void set_policy(struct change *c, int k, int v)
{
	const struct lc_request *r = &c->request;

	store_key_policy(c->f->prefix, r->backend, c->keys[k]);
	if (r->functions.any) {
		delete(c, key(c, k), false);
		return;
	}
	store_policy_encode(&r->functions.allowed, c->values[v]);
	put(c, key(c, k), c->values[v], 0);
}

static void set_functions(struct change *c)
{
	if (!store_name_valid(c->request.backend)) {
		finish_error(c, PROTO_BAD_ARGUMENT, "a backend name is 1-31 of A-Z a-z 0-9 . _ -");
		return;
	}
	reset_txn(c);
	set_policy(c, 0, 0);
	commit(c);
}

/* A new lease for a backend whose alive key its lease took with it (its
 * heartbeats stopped for longer than its heartbeat time): up again. */
static void revive_backend(struct change *c, const struct mirror_backend *mb)
{
	if (!have_lease(c, mb->record.heartbeat_ms))
		return;
	store_key_backend(c->f->prefix, mb->name, c->keys[0]);
	store_key_alive(c->f->prefix, mb->name, c->keys[1]);
	snprintf(c->values[0], STORE_VALUE_MAX, "router=%s", c->f->config.router);
	reset_txn(c);
	compare(c, key(c, 0), ETCD_CMP_CREATE_REVISION, mb->create_revision);
	put(c, key(c, 1), c->values[0], c->lease);
	commit(c);
}

static void on_keepalive(void *ctx, const struct etcd_error *error, int64_t id, int64_t ttl)
{
	struct change *c = ctx;
	struct mirror_backend *mb;

	(void)id, (void)ttl;
	if (!error) {
		finish(c); /* renewed: nothing to apply */
		return;
	}
	if (error->status != ETCD_NOT_FOUND) {
		finish_store_error(c, error);
		return;
	}
	if ((mb = backend_in_store(c, c->request.backend)))
		revive_backend(c, mb);
}

static void heartbeat_backend(struct change *c)
{
	struct mirror_backend *mb = backend_in_store(c, c->request.backend);
	gint64 *lease;

	if (!mb)
		return;
	if (c->lease) { /* granted for a revival */
		revive_backend(c, mb);
		return;
	}
	lease = g_hash_table_lookup(c->f->alive, mb->name);
	if (!lease) {
		revive_backend(c, mb);
		return;
	}
	if (!etcd_lease_keepalive_once(c->f->client, *lease, on_keepalive, c))
		finish_error(c, PROTO_INTERNAL, "the keepalive request could not be built");
}

static void drain_backend(struct change *c)
{
	struct lifecycle *lc = &c->f->d->lc;
	enum proto_error err = lc_check_backend_drain(lc, c->request.backend);
	struct mirror_backend *mb;

	if (err) {
		finish_lifecycle_error(c, err);
		return;
	}
	if (!(mb = backend_in_store(c, c->request.backend)))
		return;
	struct store_backend record = mb->record;
	__u32 deadline_ms = c->request.deadline_ms ? c->request.deadline_ms : lc->config.drain_ms;

	record.state = BACKEND_DRAINING;
	record.drain_deadline_unix_ms = store_unix_ms() + deadline_ms;
	store_key_backend(c->f->prefix, mb->name, c->keys[0]);
	store_backend_encode(&record, c->values[0]);
	reset_txn(c);
	compare(c, key(c, 0), ETCD_CMP_MOD_REVISION, mb->mod_revision);
	put(c, key(c, 0), c->values[0], 0);
	commit(c);
}

/* The backend's containers' keys go later, as orphans (fleet_presence.c):
 * a transaction holds at most 128 operations, a backend many more
 * containers. Every router forgets them with the backend at once. */
static void del_backend(struct change *c)
{
	struct mirror_backend *mb = backend_in_store(c, c->request.backend);

	if (!mb)
		return;
	store_key_backend(c->f->prefix, mb->name, c->keys[0]);
	store_key_backend_id(c->f->prefix, mb->record.id, c->keys[1]);
	store_key_alive(c->f->prefix, mb->name, c->keys[2]);
	store_key_names_of(c->f->prefix, mb->name, c->keys[3]);
	reset_txn(c);
	compare(c, key(c, 0), ETCD_CMP_CREATE_REVISION, mb->create_revision);
	delete(c, key(c, 0), false);
	delete(c, key(c, 1), false);
	delete(c, key(c, 2), false);
	delete(c, key(c, 3), true);
	commit(c);
}

/* ---- containers --------------------------------------------------------------------- */

static int random_secret(__u64 *secret)
{
	do {
		if (getrandom(secret, sizeof(*secret), 0) != sizeof(*secret))
			return -errno;
	} while (*secret == 0);
	return 0;
}

static void add_container(struct change *c)
{
	const struct lc_request *r = &c->request;
	struct lifecycle *lc = &c->f->d->lc;
	enum proto_error err =
		lc_check_container_add(lc, r->function_id, r->backend, r->name, r->state);
	struct mirror_backend *mb;
	struct store_container record = {
		.function_id = r->function_id, .state = r->state,
	};

	if (err) {
		finish_lifecycle_error(c, err);
		return;
	}
	if (!(mb = backend_in_store(c, r->backend)))
		return;
	if (!mirror_free_slot(c->f, &c->slot)) {
		finish_error(c, PROTO_FULL, "all container slots of the fleet are in use");
		return;
	}
	if (random_secret(&c->secret)) {
		finish_error(c, PROTO_INTERNAL, "no random bytes for the container's secret");
		return;
	}
	record.secret = c->secret;
	record.concurrency = r->concurrency;
	snprintf(record.backend, sizeof(record.backend), "%s", r->backend);
	snprintf(record.name, sizeof(record.name), "%s", r->name);
	record.backend_revision = (__u64)mb->create_revision;
	store_key_container(c->f->prefix, c->slot, c->keys[0]);
	store_key_backend(c->f->prefix, r->backend, c->keys[1]);
	store_container_encode(&record, c->values[0]);
	reset_txn(c);
	compare(c, key(c, 0), ETCD_CMP_CREATE_REVISION, 0);
	compare(c, key(c, 1), ETCD_CMP_CREATE_REVISION, mb->create_revision);
	put(c, key(c, 0), c->values[0], 0);
	if (r->name[0]) {
		store_key_name(c->f->prefix, r->backend, r->name, c->keys[2]);
		store_name_encode(c->slot, c->values[1]);
		compare(c, key(c, 2), ETCD_CMP_CREATE_REVISION, 0);
		put(c, key(c, 2), c->values[1], 0);
	}
	commit(c);
}

/* The store's record of a live container, from the view: what the view
 * applied is what the store holds at the slot's mod revision. */
static bool record_of(struct change *c, __u32 slot, struct store_container *record)
{
	struct lifecycle *lc = &c->f->d->lc;
	const struct container_record *live = lc_container(lc, slot);
	const struct mirror_slot *ms = &c->f->slots[slot];

	if (!live || !ms->mod_revision || ms->orphan)
		return false;
	*record = (struct store_container){
		.function_id = live->function_id,
		.backend_revision = (__u64)ms->backend_revision,
		.state = live->state,
		.secret = live->secret,
		.drain_deadline_unix_ms = ms->drain_deadline_unix_ms,
		.concurrency = lc_container_own_limit(lc, slot),
	};
	snprintf(record->backend, sizeof(record->backend), "%s",
		 lc->backends[live->backend_id].meta.name);
	lc_container_name(lc, slot, record->name, sizeof(record->name));
	return true;
}

static void change_container(struct change *c)
{
	static const enum lc_container_change changes[] = {
		[LC_CONTAINER_UP] = LC_UP, [LC_CONTAINER_DRAIN] = LC_DRAIN,
		[LC_CONTAINER_IDLE] = LC_IDLE, [LC_CONTAINER_DEL] = LC_DEL,
	};
	struct lifecycle *lc = &c->f->d->lc;
	__u32 slot = c->request.slot;
	enum proto_error err = lc_check_container_change(lc, slot, changes[c->request.op]);
	struct store_container record;

	if (err) {
		finish_lifecycle_error(c, err);
		return;
	}
	if (!record_of(c, slot, &record)) {
		finish_error(c, PROTO_NOT_FOUND, "no container at that slot in the fleet's store");
		return;
	}
	c->slot = slot;
	store_key_container(c->f->prefix, slot, c->keys[0]);
	reset_txn(c);
	compare(c, key(c, 0), ETCD_CMP_MOD_REVISION, c->f->slots[slot].mod_revision);
	switch (c->request.op) {
	case LC_CONTAINER_UP:
	case LC_CONTAINER_DRAIN:
		record.state = c->request.op == LC_CONTAINER_UP ? CONTAINER_WARM : CONTAINER_DRAINING;
		if (record.state == CONTAINER_DRAINING)
			record.drain_deadline_unix_ms =
				store_unix_ms() +
				(c->request.deadline_ms ? c->request.deadline_ms : lc->config.drain_ms);
		store_container_encode(&record, c->values[0]);
		put(c, key(c, 0), c->values[0], 0);
		break;
	default:
		delete(c, key(c, 0), false);
		if (record.name[0]) {
			store_key_name(c->f->prefix, record.backend, record.name, c->keys[1]);
			delete(c, key(c, 1), false);
		}
		break;
	}
	commit(c);
}

/* set function: functions/F with its settings; every router applies it from
 * its watch (fleet_mirror.c), this one before it answers. */
static void set_function(struct change *c)
{
	struct store_function record = { .concurrency = c->request.concurrency };

	if (!c->request.function_id) {
		finish_error(c, PROTO_BAD_ARGUMENT, "function ids are nonzero");
		return;
	}
	store_key_function(c->f->prefix, c->request.function_id, c->keys[0]);
	store_function_encode(&record, c->values[0]);
	reset_txn(c);
	put(c, key(c, 0), c->values[0], 0);
	commit(c);
}

/* ---- requests ------------------------------------------------------------------------ */

/* After a try whose outcome the store could not tell: whether the view
 * shows the request done. */
static bool already_done(struct change *c)
{
	const struct lc_request *r = &c->request;
	struct lifecycle *lc = &c->f->d->lc;
	struct mirror_backend *mb = mirror_backend(c->f, r->backend);
	const struct container_record *live;

	switch (r->op) {
	case LC_BACKEND_ADD:
		return mb && !memcmp(mb->record.addr, r->addr, 16) &&
		       !memcmp(mb->record.mac, r->mac, 6) && !strcmp(mb->record.iface, r->iface) &&
		       mb->record.vlan == r->vlan;
	case LC_BACKEND_HEARTBEAT:
		return false; /* renewing again does no harm */
	case LC_BACKEND_DRAIN:
		return mb && mb->record.state == BACKEND_DRAINING;
	case LC_BACKEND_DEL:
		return !mb;
	case LC_CONTAINER_ADD:
		live = &lc->containers[c->slot];
		return c->f->slots[c->slot].mod_revision && live->state != CONTAINER_FREE &&
		       live->secret == c->secret;
	case LC_CONTAINER_UP:
	case LC_CONTAINER_DRAIN:
		live = &lc->containers[r->slot];
		return live->state ==
		       (r->op == LC_CONTAINER_UP ? CONTAINER_WARM : CONTAINER_DRAINING);
	case LC_CONTAINER_IDLE:
	case LC_CONTAINER_DEL:
		return !c->f->slots[r->slot].mod_revision;
	case LC_BACKEND_SET_FUNCTIONS:
		return false; /* setting it again does no harm */
	case LC_FUNCTION_SET:
		return lc_function_limit(lc, r->function_id) == r->concurrency;
	}
	return false;
}

static void change_try(struct change *c)
{
	if (c->uncertain && already_done(c)) {
		c->outcome.slot = c->slot;
		finish(c);
		return;
	}
	c->uncertain = false;
	switch (c->request.op) {
	case LC_BACKEND_ADD:
		add_backend(c);
		break;
	case LC_BACKEND_HEARTBEAT:
		heartbeat_backend(c);
		break;
	case LC_BACKEND_DRAIN:
		drain_backend(c);
		break;
	case LC_BACKEND_DEL:
		del_backend(c);
		break;
	case LC_CONTAINER_ADD:
		add_container(c);
		break;
	case LC_CONTAINER_UP:
	case LC_CONTAINER_DRAIN:
	case LC_CONTAINER_IDLE:
	case LC_CONTAINER_DEL:
		change_container(c);
		break;
	case LC_BACKEND_SET_FUNCTIONS:
		set_functions(c);
		break;
	case LC_FUNCTION_SET:
		set_function(c);
		break;
	}
}

void fleet_submit(struct fleet *f, const struct lc_request *request, fleet_done_cb done,
		  void *ctx)
{
	struct change *c = g_new0(struct change, 1);

	c->f = f;
	c->request = *request;
	c->done = done;
	c->ctx = ctx;
	c->submitted_ns = monotonic_ns();
	g_hash_table_add(f->changes, c);
	if (!f->synced) {
		g_ptr_array_add(f->before_sync, c);
		return;
	}
	change_try(c);
}

void changes_release(struct fleet *f)
{
	GPtrArray *waiting = f->before_sync;

	f->before_sync = g_ptr_array_new();
	for (guint i = 0; i < waiting->len; i++)
		change_try(g_ptr_array_index(waiting, i));
	g_ptr_array_free(waiting, TRUE);
}

void changes_tick(struct fleet *f, __u64 now_ns)
{
	for (guint i = 0; i < f->before_sync->len;) {
		struct change *c = g_ptr_array_index(f->before_sync, i);

		if (now_ns - c->submitted_ns < SYNC_WAIT_NS) {
			i++;
			continue;
		}
		g_ptr_array_remove_index(f->before_sync, i);
		finish_error(c, PROTO_UNAVAILABLE,
			     "this router has not read the fleet's state from its store yet (is "
			     "etcd reachable?); nothing changed");
	}
}

/* The client is gone (its calls cancelled without their callbacks): every
 * change still waiting is answered now. */
void changes_abandon(struct fleet *f)
{
	GList *left = g_hash_table_get_keys(f->changes);

	g_array_set_size(f->waiters, 0);
	g_ptr_array_set_size(f->before_sync, 0);
	for (GList *item = left; item; item = item->next)
		finish_error(item->data, PROTO_UNAVAILABLE,
			     "tetherd is stopping; the change may or may not have been committed");
	g_list_free(left);
}
