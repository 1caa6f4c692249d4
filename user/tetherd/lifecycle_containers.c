// SPDX-License-Identifier: MIT
/* Containers: starting -> warm -> draining -> gone, their slots and names,
 * the functions' concurrency limits, and a fleet store's container records
 * applied. */
#include "lifecycle_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tether_xdp.skel.h"

char *lc_container_key(__u32 backend_id, const char *name)
{
	return g_strdup_printf("%u/%s", backend_id, name);
}

const struct container_record *lc_container(struct lifecycle *lc, __u32 slot)
{
	if (slot >= TETHER_MAX_CONTAINERS || lc->containers[slot].state == CONTAINER_FREE) {
		lc_fail(lc, PROTO_NOT_FOUND, "no container %u (tetherctl container list shows them)",
			slot);
		return NULL;
	}
	return &lc->containers[slot];
}

const char *lc_container_name(struct lifecycle *lc, __u32 slot, char *buf, size_t size)
{
	struct container_meta meta;

	buf[0] = '\0';
	if (!bpf_map_lookup_elem(bpf_map__fd(lc->dp->skel->maps.container_meta), &slot, &meta))
		snprintf(buf, size, "%s", meta.name);
	return buf;
}

static bool find_free_slot(struct lifecycle *lc, __u32 *slot)
{
	__u32 limit = lc->config.max_containers;

	for (__u32 i = 0; i < limit; i++) {
		__u32 candidate = (lc->next_slot + i) % limit;

		if (lc->containers[candidate].state == CONTAINER_FREE) {
			*slot = candidate;
			lc->next_slot = (candidate + 1) % limit;
			return true;
		}
	}
	return false;
}

static enum proto_error check_new_container(struct lifecycle *lc, const char *backend_name,
					    const char *name, enum container_state state,
					    struct backend **backend)
{
	if (state != CONTAINER_STARTING && state != CONTAINER_WARM)
		return lc_fail(lc, PROTO_BAD_ARGUMENT, "a new container is starting or warm");
	*backend = lc_backend_find(lc, backend_name);
	if (!*backend)
		return PROTO_NOT_FOUND;
	if ((*backend)->record.state != BACKEND_UP)
		return lc_fail(lc, PROTO_INVALID_TRANSITION,
			       "backend '%s' is %s: new containers go to up backends", backend_name,
			       backend_state_name((*backend)->record.state));
	if (name[0] && !lc_name_is_valid(name))
		return lc_fail(lc, PROTO_BAD_ARGUMENT,
			       "container name '%s' must be 1-31 of A-Z a-z 0-9 . _ -", name);
	if (name[0]) {
		g_autofree char *key = lc_container_key((*backend)->id, name);

		if (g_hash_table_contains(lc->container_names, key))
			return lc_fail(lc, PROTO_EXISTS, "backend '%s' has a container named '%s'",
				       backend_name, name);
	}
	return PROTO_OK;
}

/* Writes the name of a container about to be installed at slot. */
static enum proto_error record_name(struct lifecycle *lc, __u32 slot, const char *name)
{
	struct container_meta meta = {};

	if (!name[0])
		return PROTO_OK;
	snprintf(meta.name, sizeof(meta.name), "%s", name);
	if (bpf_map_update_elem(bpf_map__fd(lc->dp->skel->maps.container_meta), &slot, &meta,
				BPF_ANY))
		return lc_fail_kernel(lc, "recording the container's name", errno);
	return PROTO_OK;
}

/* The container the maps now hold at slot, in the view: counts, names, its
 * function's pool; the event, and the slow path told of a warm one. */
__u32 lc_function_limit(const struct lifecycle *lc, __u64 function_id)
{
	return GPOINTER_TO_UINT(g_hash_table_lookup(lc->limits, &function_id));
}

__u32 lc_container_own_limit(const struct lifecycle *lc, __u32 slot)
{
	return GPOINTER_TO_UINT(g_hash_table_lookup(lc->own_limits, GUINT_TO_POINTER(slot + 1)));
}

/* The smaller nonzero of the function's limit and the container's own. */
static int apply_limit(struct lifecycle *lc, __u32 slot)
{
	__u32 function = lc_function_limit(lc, lc->containers[slot].function_id);
	__u32 own = lc_container_own_limit(lc, slot);
	__u32 limit = !function ? own : !own ? function : function < own ? function : own;
	int err = container_set_limit(lc->dp, slot, limit);

	if (!err)
		lc->containers[slot].limit = limit;
	return err;
}

enum proto_error lc_function_set_limit(struct lifecycle *lc, __u64 function_id, __u32 limit)
{
	if (function_id == 0)
		return lc_fail(lc, PROTO_BAD_ARGUMENT, "function ids are nonzero");
	struct function_settings settings = { .concurrency = limit };
	int err = function_settings_set(lc->dp, function_id, &settings);

	if (err)
		return lc_fail_kernel(lc, "recording the function's settings", err);
	if (limit) {
		__u64 *key = g_new(__u64, 1);

		*key = function_id;
		g_hash_table_replace(lc->limits, key, GUINT_TO_POINTER(limit));
	} else {
		g_hash_table_remove(lc->limits, &function_id);
	}
	struct function *function = lc_function(lc, function_id);

	if (!function)
		return PROTO_OK;
	GHashTableIter iter;
	gpointer key;

	g_hash_table_iter_init(&iter, function->slots);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		if ((err = apply_limit(lc, GPOINTER_TO_UINT(key) - 1)))
			return lc_fail_kernel(lc, "setting the container's limit", err);
	}
	return PROTO_OK;
}

static void container_added(struct lifecycle *lc, __u32 slot, struct backend *backend,
			    const char *name)
{
	container_get(lc->dp, slot, &lc->containers[slot]);
	if (lc->next_own_limit)
		g_hash_table_replace(lc->own_limits, GUINT_TO_POINTER(slot + 1),
				     GUINT_TO_POINTER(lc->next_own_limit));
	lc->next_own_limit = 0;
	/* Before the slow path hears it is warm: held requests respect it. */
	apply_limit(lc, slot);
	const struct container_record *record = &lc->containers[slot];

	backend->containers++;
	if (name[0])
		g_hash_table_insert(lc->container_names, lc_container_key(backend->id, name),
				    GUINT_TO_POINTER(slot + 1));
	struct function *function = lc_function_get_or_create(lc, record->function_id);

	g_hash_table_add(function->slots, GUINT_TO_POINTER(slot + 1));
	lc_emit(lc, "event=container_added container=%u function=%llu backend=%s state=%s", slot,
		(unsigned long long)record->function_id, backend->meta.name,
		container_state_name(record->state));
	if (record->state == CONTAINER_WARM) {
		function->pool_dirty = true;
		if (lc->config.observer.container_warm)
			lc->config.observer.container_warm(lc->config.observer.ctx, slot,
							   record->function_id);
	}
}

enum proto_error lc_check_container_add(struct lifecycle *lc, __u64 function_id,
					const char *backend_name, const char *name,
					enum container_state state)
{
	struct backend *backend = NULL;
	enum proto_error check = check_new_container(lc, backend_name, name, state, &backend);

	if (check)
		return check;
	if (function_id == 0)
		return lc_fail(lc, PROTO_BAD_ARGUMENT, "function ids are nonzero");
	return PROTO_OK;
}

enum proto_error lc_container_add(struct lifecycle *lc, __u64 function_id,
				  const char *backend_name, const char *name,
				  enum container_state state, __u32 *slot,
				  struct tether_token *token)
{
	enum proto_error check = lc_check_container_add(lc, function_id, backend_name, name, state);

	if (check)
		return check;
	struct backend *backend = lc_backend_find(lc, backend_name);

	if (!find_free_slot(lc, slot))
		return lc_fail(lc, PROTO_FULL,
			       "all %u container slots are in use (tetherctl container list; "
			       "del or drain containers to make room)",
			       lc->config.max_containers);
	if ((check = record_name(lc, *slot, name)))
		return check;
	int err = container_install(lc->dp, *slot, function_id, backend->id, state, token);

	if (err) {
		bpf_map_delete_elem(bpf_map__fd(lc->dp->skel->maps.container_meta), slot);
		return lc_fail_kernel(lc, "adding the container", err);
	}
	container_added(lc, *slot, backend, name);
	return PROTO_OK;
}

static enum proto_error set_state(struct lifecycle *lc, __u32 slot, enum container_state state,
				  __u64 deadline)
{
	int err = container_set_state(lc->dp, slot, state, deadline);

	if (err)
		return lc_fail_kernel(lc, "changing the container's state", err);
	lc->containers[slot].state = state;
	lc->containers[slot].drain_deadline_ns = state == CONTAINER_DRAINING ? deadline : 0;
	return PROTO_OK;
}

static const char *backend_name_of(struct lifecycle *lc, const struct container_record *record)
{
	return lc->backends[record->backend_id].meta.name;
}

/* The rule of each change a request can make to a live container. */
enum proto_error lc_check_container_change(struct lifecycle *lc, __u32 slot,
					   enum lc_container_change change)
{
	const struct container_record *record = lc_container(lc, slot);

	if (!record)
		return PROTO_NOT_FOUND;
	switch (change) {
	case LC_UP:
		if (record->state != CONTAINER_STARTING)
			return lc_fail(lc, PROTO_INVALID_TRANSITION,
				       "container %u is %s; only a starting container comes up", slot,
				       container_state_name(record->state));
		break;
	case LC_DRAIN:
		if (record->state != CONTAINER_WARM && record->state != CONTAINER_STARTING)
			return lc_fail(lc, PROTO_INVALID_TRANSITION,
				       "container %u is %s; only a warm or starting container drains",
				       slot, container_state_name(record->state));
		break;
	case LC_IDLE:
		if (record->state != CONTAINER_DRAINING)
			return lc_fail(lc, PROTO_INVALID_TRANSITION,
				       "container %u is %s; idle is reported by a draining container",
				       slot, container_state_name(record->state));
		break;
	case LC_DEL:
		break;
	}
	return PROTO_OK;
}

enum proto_error lc_container_up(struct lifecycle *lc, __u32 slot)
{
	enum proto_error check = lc_check_container_change(lc, slot, LC_UP);

	if (check)
		return check;
	const struct container_record *record = &lc->containers[slot];
	enum proto_error err = set_state(lc, slot, CONTAINER_WARM, 0);

	if (err)
		return err;
	lc_mark_pool_dirty(lc, record->function_id);
	lc_emit(lc, "event=container_up container=%u function=%llu backend=%s", slot,
		(unsigned long long)record->function_id, backend_name_of(lc, record));
	if (lc->config.observer.container_warm)
		lc->config.observer.container_warm(lc->config.observer.ctx, slot,
						   record->function_id);
	return PROTO_OK;
}

enum proto_error lc_container_drain_until(struct lifecycle *lc, __u32 slot, __u64 deadline)
{
	const struct container_record *record = &lc->containers[slot];
	enum proto_error err = set_state(lc, slot, CONTAINER_DRAINING, deadline);

	if (err)
		return err;
	lc_mark_pool_dirty(lc, record->function_id);
	lc_emit(lc, "event=container_draining container=%u function=%llu backend=%s", slot,
		(unsigned long long)record->function_id, backend_name_of(lc, record));
	return PROTO_OK;
}

enum proto_error lc_container_drain(struct lifecycle *lc, __u32 slot, __u32 deadline_ms)
{
	enum proto_error check = lc_check_container_change(lc, slot, LC_DRAIN);

	if (check)
		return check;
	__u64 deadline = lifecycle_now(lc) +
			 (deadline_ms ? deadline_ms : lc->config.drain_ms) * NS_PER_MS;

	return lc_container_drain_until(lc, slot, deadline);
}

enum proto_error lc_container_gone(struct lifecycle *lc, __u32 slot, const char *why)
{
	struct container_record record = lc->containers[slot];
	char name[TETHER_NAME_MAX];
	int err = container_remove(lc->dp, slot);

	if (err)
		return lc_fail_kernel(lc, "removing the container", err);
	lc_container_name(lc, slot, name, sizeof(name));
	bpf_map_delete_elem(bpf_map__fd(lc->dp->skel->maps.container_meta), &slot);
	if (name[0]) {
		g_autofree char *key = lc_container_key(record.backend_id, name);

		g_hash_table_remove(lc->container_names, key);
	}
	lc->containers[slot] = (struct container_record){ .generation = record.generation };
	g_hash_table_remove(lc->own_limits, GUINT_TO_POINTER(slot + 1));
	lc->backends[record.backend_id].containers--;

	struct function *function = lc_function(lc, record.function_id);

	if (function) {
		g_hash_table_remove(function->slots, GUINT_TO_POINTER(slot + 1));
		function->pool_dirty = true;
	}
	lc_emit(lc, "event=container_gone container=%u function=%llu backend=%s reason=%s", slot,
		(unsigned long long)record.function_id, backend_name_of(lc, &record), why);
	return PROTO_OK;
}

enum proto_error lc_container_idle(struct lifecycle *lc, __u32 slot)
{
	enum proto_error check = lc_check_container_change(lc, slot, LC_IDLE);

	return check ? check : lc_container_gone(lc, slot, "idle");
}

enum proto_error lc_container_del(struct lifecycle *lc, __u32 slot)
{
	enum proto_error check = lc_check_container_change(lc, slot, LC_DEL);

	return check ? check : lc_container_gone(lc, slot, "deleted");
}


/* --- deadlines --- */

void lc_expire_drains(struct lifecycle *lc, __u64 now)
{
	GHashTableIter iter;
	gpointer value;
	GArray *expired = g_array_new(FALSE, FALSE, sizeof(__u32));

	g_hash_table_iter_init(&iter, lc->functions);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		GHashTableIter slots;
		gpointer key;

		g_hash_table_iter_init(&slots, ((struct function *)value)->slots);
		while (g_hash_table_iter_next(&slots, &key, NULL)) {
			__u32 slot = GPOINTER_TO_UINT(key) - 1;
			const struct container_record *record = &lc->containers[slot];

			if (record->state == CONTAINER_DRAINING && now >= record->drain_deadline_ns)
				g_array_append_val(expired, slot);
		}
	}
	for (guint i = 0; i < expired->len; i++)
		lc_container_gone(lc, g_array_index(expired, __u32, i), "deadline");
	g_array_free(expired, TRUE);
}

/* --- a fleet store's records, applied --- */

/* Whether the container at slot is the one the record names. */
static bool is_same_container(const struct lifecycle *lc, __u32 slot,
			      const struct lc_container_spec *spec, __u32 backend_id)
{
	const struct container_record *record = &lc->containers[slot];

	return record->state != CONTAINER_FREE && record->generation == spec->generation &&
	       record->secret == spec->secret && record->function_id == spec->function_id &&
	       record->backend_id == backend_id;
}

/* A container already in the view takes the record's state. */
static enum proto_error container_takes_state(struct lifecycle *lc,
					      const struct lc_container_spec *spec)
{
	const struct container_record *record = &lc->containers[spec->slot];
	enum container_state was = record->state;

	if (was == spec->state &&
	    (was != CONTAINER_DRAINING || record->drain_deadline_ns == spec->drain_deadline_ns))
		return PROTO_OK;
	if (spec->state == CONTAINER_DRAINING)
		return lc_container_drain_until(lc, spec->slot, spec->drain_deadline_ns);
	enum proto_error err = set_state(lc, spec->slot, spec->state, 0);

	if (err)
		return err;
	lc_mark_pool_dirty(lc, record->function_id);
	if (spec->state == CONTAINER_WARM) {
		lc_emit(lc, "event=container_up container=%u function=%llu backend=%s", spec->slot,
			(unsigned long long)record->function_id, backend_name_of(lc, record));
		if (lc->config.observer.container_warm)
			lc->config.observer.container_warm(lc->config.observer.ctx, spec->slot,
							   record->function_id);
	}
	return PROTO_OK;
}

enum proto_error lc_container_apply(struct lifecycle *lc, const struct lc_container_spec *spec)
{
	if (spec->slot >= TETHER_MAX_CONTAINERS || spec->function_id == 0 || spec->secret == 0 ||
	    (spec->state != CONTAINER_STARTING && spec->state != CONTAINER_WARM &&
	     spec->state != CONTAINER_DRAINING) ||
	    (spec->name[0] && !lc_name_is_valid(spec->name)))
		return lc_fail(lc, PROTO_BAD_ARGUMENT, "container record %u is not valid",
			       spec->slot);
	struct backend *backend = g_hash_table_lookup(lc->backend_names, spec->backend);

	if (!backend)
		return lc_fail(lc, PROTO_NOT_FOUND, "container %u is on backend '%s', which is not "
			       "known here", spec->slot, spec->backend);
	struct lc_container_spec effective = *spec;

	/* On a draining backend every container drains, until its deadline. */
	if (backend->record.state == BACKEND_DRAINING && spec->state != CONTAINER_DRAINING) {
		effective.state = CONTAINER_DRAINING;
		effective.drain_deadline_ns = backend->meta.drain_deadline_ns;
	}
	spec = &effective;
	if (is_same_container(lc, spec->slot, spec, backend->id)) {
		if (lc_container_own_limit(lc, spec->slot) != spec->concurrency) {
			if (spec->concurrency)
				g_hash_table_replace(lc->own_limits,
						     GUINT_TO_POINTER(spec->slot + 1),
						     GUINT_TO_POINTER(spec->concurrency));
			else
				g_hash_table_remove(lc->own_limits,
						    GUINT_TO_POINTER(spec->slot + 1));
			apply_limit(lc, spec->slot);
		}
		return container_takes_state(lc, spec);
	}
	if (lc->containers[spec->slot].state != CONTAINER_FREE)
		lc_container_gone(lc, spec->slot, "replaced");
	/* Past its drain deadline it is gone already: installing it would
	 * bring it back until the store forgets it. */
	if (spec->state == CONTAINER_DRAINING && lifecycle_now(lc) >= spec->drain_deadline_ns)
		return PROTO_OK;
	if (spec->name[0]) {
		g_autofree char *key = lc_container_key(backend->id, spec->name);
		gpointer holder = g_hash_table_lookup(lc->container_names, key);

		if (holder)
			lc_container_gone(lc, GPOINTER_TO_UINT(holder) - 1, "replaced");
	}
	enum proto_error check = record_name(lc, spec->slot, spec->name);

	if (check)
		return check;
	int err = container_install_identity(lc->dp, spec->slot, spec->function_id, backend->id,
					     spec->state, spec->generation, spec->secret);

	if (!err && spec->state == CONTAINER_DRAINING)
		err = container_set_state(lc->dp, spec->slot, CONTAINER_DRAINING,
					  spec->drain_deadline_ns);
	if (err) {
		container_remove(lc->dp, spec->slot);
		bpf_map_delete_elem(bpf_map__fd(lc->dp->skel->maps.container_meta), &spec->slot);
		return lc_fail_kernel(lc, "applying the container", err);
	}
	lc->next_own_limit = spec->concurrency;
	container_added(lc, spec->slot, backend, spec->name);
	return PROTO_OK;
}

enum proto_error lc_container_forget(struct lifecycle *lc, __u32 slot, const char *why)
{
	if (slot >= TETHER_MAX_CONTAINERS || lc->containers[slot].state == CONTAINER_FREE)
		return PROTO_OK;
	return lc_container_gone(lc, slot, why);
}

