// SPDX-License-Identifier: MIT
#include "lifecycle.h"

#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tether_xdp.skel.h"

#define NS_PER_MS 1000000ull

static enum proto_error fail(struct lifecycle *lc, enum proto_error code, const char *format,
			     ...)
{
	va_list args;

	va_start(args, format);
	vsnprintf(lc->error, sizeof(lc->error), format, args);
	va_end(args);
	return code;
}

static enum proto_error fail_kernel(struct lifecycle *lc, const char *what, int err)
{
	return fail(lc, PROTO_INTERNAL, "%s: the kernel refused the map update: %s", what,
		    strerror(err < 0 ? -err : err));
}

const char *lifecycle_error(const struct lifecycle *lc)
{
	return lc->error;
}

__u64 lifecycle_now(const struct lifecycle *lc)
{
	return lc->config.now_ns(lc->config.clock_ctx);
}

const char *container_state_name(enum container_state state)
{
	switch (state) {
	case CONTAINER_STARTING: return "starting";
	case CONTAINER_WARM: return "warm";
	case CONTAINER_DRAINING: return "draining";
	case CONTAINER_GONE: return "gone";
	default: return "free";
	}
}

const char *backend_state_name(enum backend_state state)
{
	switch (state) {
	case BACKEND_UP: return "up";
	case BACKEND_DRAINING: return "draining";
	case BACKEND_DOWN: return "down";
	default: return "free";
	}
}

static void emit(struct lifecycle *lc, const char *format, ...)
{
	char line[256];
	va_list args;

	if (!lc->config.observer.event)
		return;
	va_start(args, format);
	vsnprintf(line, sizeof(line), format, args);
	va_end(args);
	lc->config.observer.event(lc->config.observer.ctx, line);
}

/* --- functions and their pools --- */

static void function_free(gpointer data)
{
	struct function *function = data;

	if (function->table_fd >= 0)
		close(function->table_fd);
	g_hash_table_destroy(function->slots);
	g_free(function);
}

struct function *lc_function(struct lifecycle *lc, __u64 function_id)
{
	return g_hash_table_lookup(lc->functions, &function_id);
}

static struct function *function_get_or_create(struct lifecycle *lc, __u64 function_id)
{
	struct function *function = lc_function(lc, function_id);

	if (function)
		return function;
	function = g_new0(struct function, 1);
	function->function_id = function_id;
	function->table_fd = -1;
	function->slots = g_hash_table_new(g_direct_hash, g_direct_equal);
	g_hash_table_insert(lc->functions, &function->function_id, function);
	return function;
}

static void mark_pool_dirty(struct lifecycle *lc, __u64 function_id)
{
	struct function *function = lc_function(lc, function_id);

	if (function)
		function->pool_dirty = true;
}

static bool backend_is_up(const struct lifecycle *lc, __u32 backend_id)
{
	const struct backend *backend = &lc->backends[backend_id];

	return backend->in_use && backend->record.state == BACKEND_UP &&
	       (backend->record.heartbeat_expiry_ns == 0 ||
		lifecycle_now(lc) < backend->record.heartbeat_expiry_ns);
}

bool lc_container_in_pool(const struct lifecycle *lc, const struct container_record *record)
{
	return record->state == CONTAINER_WARM && backend_is_up(lc, record->backend_id);
}

/* The Maglev identity of a container: slot and generation, like its token. */
static __u64 member_id(__u32 slot, const struct container_record *record)
{
	return (__u64)slot << 32 | record->generation;
}

static int collect_members(struct lifecycle *lc, struct function *function,
			   struct maglev_member **members, size_t *n)
{
	GHashTableIter iter;
	gpointer key;

	*members = g_new(struct maglev_member, g_hash_table_size(function->slots) + 1);
	*n = 0;
	g_hash_table_iter_init(&iter, function->slots);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		__u32 slot = GPOINTER_TO_UINT(key) - 1;
		const struct container_record *record = &lc->containers[slot];

		if (lc_container_in_pool(lc, record))
			(*members)[(*n)++] = (struct maglev_member){ member_id(slot, record), slot };
	}
	return 0;
}

/* The function's table is now fd (-1: none kept). */
static void keep_table(struct lifecycle *lc, struct function *function, int fd)
{
	if (function->table_fd >= 0) {
		close(function->table_fd);
		lc->kept_tables--;
	}
	function->table_fd = fd;
	if (fd >= 0)
		lc->kept_tables++;
}

int lifecycle_flush_pools(struct lifecycle *lc)
{
	GPtrArray *dirty = g_ptr_array_new();
	GArray *updates = g_array_new(FALSE, TRUE, sizeof(struct pool_update));
	GHashTableIter iter;
	gpointer value;
	__u32 kept = lc->kept_tables; /* with the tables this flush will keep */
	int err;

	g_hash_table_iter_init(&iter, lc->functions);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct function *function = value;

		if (!function->pool_dirty)
			continue;
		struct pool_update update = {
			.function_id = function->function_id,
			.keep_table = function->table_fd >= 0 || kept < lc->max_kept_tables,
		};
		struct maglev_member *members;

		if (function->table_fd < 0 && update.keep_table)
			kept++;

		collect_members(lc, function, &members, &update.n);
		update.members = members;
		g_array_append_val(updates, update);
		g_ptr_array_add(dirty, function);
	}
	err = pools_replace(lc->dp, (struct pool_update *)updates->data, updates->len);
	for (guint i = 0; i < updates->len; i++) {
		struct pool_update *update = &g_array_index(updates, struct pool_update, i);
		struct function *function = g_ptr_array_index(dirty, i);

		if (!err) {
			function->pool_dirty = false;
			function->pool_size = update->n;
			keep_table(lc, function, update->table_fd);
		}
		g_free((void *)update->members);
	}
	g_array_free(updates, TRUE);
	g_ptr_array_free(dirty, TRUE);
	if (err)
		fail_kernel(lc, "replacing pool tables", err);
	return err;
}

/* --- backends --- */

static bool name_is_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= TETHER_NAME_MAX)
		return false;
	for (const char *c = name; *c; c++)
		if (!g_ascii_isalnum(*c) && *c != '.' && *c != '_' && *c != '-')
			return false;
	return true;
}

struct backend *lc_backend_find(struct lifecycle *lc, const char *name)
{
	struct backend *backend = g_hash_table_lookup(lc->backend_names, name);

	if (!backend)
		fail(lc, PROTO_NOT_FOUND, "no backend named '%s' (tetherctl backend list shows them)",
		     name);
	return backend;
}

/* ALIVE datagrams move a keyed backend's deadline in the map (bpf/load.h):
 * the view takes the later one before it judges or writes the record. */
static void sync_expiry(struct lifecycle *lc, struct backend *backend)
{
	struct backend_record now;

	if (backend->alive_keyed && backend->record.heartbeat_expiry_ns &&
	    !backend_get(lc->dp, backend->id, &now) &&
	    now.heartbeat_expiry_ns > backend->record.heartbeat_expiry_ns)
		backend->record.heartbeat_expiry_ns = now.heartbeat_expiry_ns;
}

/* The map gets the view's record, with restart_grace_ms more on the deadline
 * of a backend only tetherd's heartbeats keep up: while tetherd restarts its
 * agent cannot heartbeat, and the VM would drop out of routing for that. */
static int set_backend_record(struct lifecycle *lc, const struct backend *backend)
{
	struct backend_record record = backend->record;

	if (record.heartbeat_expiry_ns && !backend->alive_keyed && record.state != BACKEND_DOWN)
		record.heartbeat_expiry_ns += (__u64)lc->config.restart_grace_ms * NS_PER_MS;
	return backend_set(lc->dp, backend->id, &record);
}

static int write_backend(struct lifecycle *lc, struct backend *backend)
{
	__u64 expiry;

	if (backend->in_use)
		sync_expiry(lc, backend);
	expiry = backend->record.heartbeat_expiry_ns;
	int err = set_backend_record(lc, backend);

	if (err)
		return err;
	/* backend_set filled in src_mac: keep the record as the map has it,
	 * the deadline aside (the map's has the grace). */
	backend_get(lc->dp, backend->id, &backend->record);
	backend->record.heartbeat_expiry_ns = expiry;
	if (bpf_map_update_elem(bpf_map__fd(lc->dp->skel->maps.backend_meta), &backend->id,
				&backend->meta, BPF_ANY))
		return -errno;
	return 0;
}

static struct backend *free_backend(struct lifecycle *lc)
{
	/* id 0 stays unused so a zeroed record never names a real backend. */
	for (__u32 id = 1; id < TETHER_MAX_BACKENDS; id++)
		if (!lc->backends[id].in_use)
			return &lc->backends[id];
	return NULL;
}

/* The link's own rules: an L2 backend names an existing interface and may
 * have a VLAN; a routed one has no VLAN, a VNI only for vxlan, an interface
 * only if it exists, and an outer source address of its family
 * (--encap-source). */
static enum proto_error check_link(struct lifecycle *lc, const __u8 addr[16],
				   const struct lc_backend_link *link)
{
	const char *iface = link->iface ? link->iface : "";
	bool routed = link->encap != BACKEND_L2;

	if (link->encap > BACKEND_IPIP)
		return fail(lc, PROTO_BAD_ARGUMENT, "encap %u is none of l2, vxlan, ipip",
			    link->encap);
	if (link->vlan > TETHER_VLAN_MAX)
		return fail(lc, PROTO_BAD_ARGUMENT,
			    "vlan %u is not a VLAN id: 1 to %u, or 0 for untagged", link->vlan,
			    TETHER_VLAN_MAX);
	if (routed && link->vlan)
		return fail(lc, PROTO_BAD_ARGUMENT,
			    "a routed backend (encap %s) has no VLAN: its packets leave as the "
			    "route's interface sends them", proto_encap_name(link->encap));
	if (link->vni > TETHER_VNI_MAX || (link->vni && link->encap != BACKEND_VXLAN))
		return fail(lc, PROTO_BAD_ARGUMENT,
			    "vni %u: a VNI (0 to %u) is for encap vxlan only", link->vni,
			    TETHER_VNI_MAX);
	if ((!routed || iface[0]) &&
	    (strlen(iface) >= sizeof(((struct backend_meta *)0)->iface) || !if_nametoindex(iface)))
		return fail(lc, PROTO_BAD_ARGUMENT,
			    "interface '%s' does not exist on this host (ip link shows them)", iface);
	if (routed) {
		struct encap_config config = {};

		encap_config_get(lc->dp, &config);
		if (!encap_source_for(&config, addr))
			return fail(lc, PROTO_BAD_ARGUMENT,
				    "a routed backend at an %s address needs an outer source "
				    "address of that family: start tetherd with --encap-source",
				    addr_is_v4mapped(addr) ? "IPv4" : "IPv6");
	}
	return PROTO_OK;
}

enum proto_error lc_check_backend_add(struct lifecycle *lc, const char *name, const __u8 addr[16],
				      const struct lc_backend_link *link)
{
	if (!name_is_valid(name))
		return fail(lc, PROTO_BAD_ARGUMENT,
			    "backend name '%s' must be 1-31 of A-Z a-z 0-9 . _ -", name);
	if (g_hash_table_lookup(lc->backend_names, name))
		return fail(lc, PROTO_EXISTS, "a backend named '%s' exists already", name);
	return check_link(lc, addr, link);
}

/* The record's link fields. */
static void set_link(struct backend *backend, const __u8 mac[6],
		     const struct lc_backend_link *link)
{
	const char *iface = link->iface ? link->iface : "";

	backend->record.ifindex = iface[0] ? if_nametoindex(iface) : 0;
	backend->record.vlan = link->vlan;
	backend->record.encap = link->encap;
	memcpy(backend->record.mac, mac, 6);
	if (link->encap != BACKEND_L2)
		memset(backend->record.src_mac, 0, 6); /* the tunnel's bytes */
	backend_set_vni(&backend->record, link->encap == BACKEND_VXLAN ? link->vni : 0);
	snprintf(backend->meta.iface, sizeof(backend->meta.iface), "%s", iface);
}

enum proto_error lc_backend_add(struct lifecycle *lc, const char *name, const __u8 addr[16],
				const __u8 mac[6], const char *iface, __u16 vlan,
				__u32 heartbeat_ms, __u32 *id)
{
	struct lc_backend_link link = { .encap = BACKEND_L2, .iface = iface, .vlan = vlan };

	return lc_backend_add_link(lc, name, addr, mac, &link, heartbeat_ms, id);
}

enum proto_error lc_backend_add_link(struct lifecycle *lc, const char *name, const __u8 addr[16],
				     const __u8 mac[6], const struct lc_backend_link *link,
				     __u32 heartbeat_ms, __u32 *id)
{
	enum proto_error check = lc_check_backend_add(lc, name, addr, link);

	if (check)
		return check;
	struct backend *slot = free_backend(lc);

	if (!slot)
		return fail(lc, PROTO_FULL, "all %u backend ids are in use", TETHER_MAX_BACKENDS - 1);

	struct backend backend = { .in_use = true, .id = (__u32)(slot - lc->backends) };

	if (!heartbeat_ms)
		heartbeat_ms = lc->config.heartbeat_ms;
	backend.record.state = BACKEND_UP;
	set_link(&backend, mac, link);
	backend.record.heartbeat_expiry_ns = lifecycle_now(lc) + heartbeat_ms * NS_PER_MS;
	memcpy(backend.record.addr, addr, 16);
	snprintf(backend.meta.name, sizeof(backend.meta.name), "%s", name);
	backend.meta.heartbeat_ms = heartbeat_ms;

	int err = write_backend(lc, &backend);

	if (err) {
		backend_del(lc->dp, backend.id);
		return fail_kernel(lc, "adding the backend", err);
	}
	*slot = backend;
	g_hash_table_insert(lc->backend_names, slot->meta.name, slot);
	*id = slot->id;
	emit(lc, "event=backend_up backend=%s id=%u", name, slot->id);
	return PROTO_OK;
}

/* Every function with a container on the backend rebuilds its pool. */
static void mark_backend_pools_dirty(struct lifecycle *lc, __u32 backend_id)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, lc->functions);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct function *function = value;
		GHashTableIter slots;
		gpointer key;

		g_hash_table_iter_init(&slots, function->slots);
		while (g_hash_table_iter_next(&slots, &key, NULL)) {
			if (lc->containers[GPOINTER_TO_UINT(key) - 1].backend_id == backend_id) {
				function->pool_dirty = true;
				break;
			}
		}
	}
}

/* Capacity is back: the slow path may hand held requests to these. */
static void announce_warm_containers(struct lifecycle *lc, __u32 backend_id)
{
	if (!lc->config.observer.container_warm || !backend_is_up(lc, backend_id))
		return;
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS && lc->backends[backend_id].containers;
	     slot++) {
		const struct container_record *record = &lc->containers[slot];

		if (record->state == CONTAINER_WARM && record->backend_id == backend_id)
			lc->config.observer.container_warm(lc->config.observer.ctx, slot,
							   record->function_id);
	}
}

enum proto_error lc_backend_heartbeat(struct lifecycle *lc, const char *name)
{
	struct backend *backend = lc_backend_find(lc, name);

	if (!backend)
		return PROTO_NOT_FOUND;
	struct backend updated = *backend;
	bool was_down = !backend_is_up(lc, backend->id) && backend->record.state != BACKEND_DRAINING;

	updated.record.heartbeat_expiry_ns =
		lifecycle_now(lc) + updated.meta.heartbeat_ms * NS_PER_MS;
	/* A backend that went down while draining comes back draining. */
	if (updated.record.state == BACKEND_DOWN)
		updated.record.state = updated.meta.drain_deadline_ns ? BACKEND_DRAINING : BACKEND_UP;
	int err = set_backend_record(lc, &updated);

	if (err)
		return fail_kernel(lc, "recording the heartbeat", err);
	*backend = updated;
	if (was_down) {
		mark_backend_pools_dirty(lc, backend->id);
		emit(lc, "event=backend_%s backend=%s id=%u",
		     backend_state_name(backend->record.state), name, backend->id);
		announce_warm_containers(lc, backend->id);
	}
	return PROTO_OK;
}

static enum proto_error container_drain_until(struct lifecycle *lc, __u32 slot, __u64 deadline);

/* A draining backend's warm and starting containers drain until its deadline. */
static void drain_containers_of(struct lifecycle *lc, const struct backend *backend)
{
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS && backend->containers; slot++) {
		const struct container_record *record = &lc->containers[slot];

		if (record->backend_id == backend->id && (record->state == CONTAINER_WARM ||
							  record->state == CONTAINER_STARTING))
			container_drain_until(lc, slot, backend->meta.drain_deadline_ns);
	}
}

enum proto_error lc_check_backend_drain(struct lifecycle *lc, const char *name)
{
	struct backend *backend = lc_backend_find(lc, name);

	if (!backend)
		return PROTO_NOT_FOUND;
	if (backend->record.state != BACKEND_UP)
		return fail(lc, PROTO_INVALID_TRANSITION, "backend '%s' is %s; only an up backend drains",
			    name, backend_state_name(backend->record.state));
	return PROTO_OK;
}

enum proto_error lc_backend_drain(struct lifecycle *lc, const char *name, __u32 deadline_ms)
{
	enum proto_error check = lc_check_backend_drain(lc, name);

	if (check)
		return check;
	struct backend *backend = lc_backend_find(lc, name);
	__u64 deadline = lifecycle_now(lc) + (deadline_ms ? deadline_ms : lc->config.drain_ms) *
						     NS_PER_MS;
	struct backend updated = *backend;

	updated.record.state = BACKEND_DRAINING;
	updated.meta.drain_deadline_ns = deadline;
	int err = write_backend(lc, &updated);

	if (err)
		return fail_kernel(lc, "draining the backend", err);
	*backend = updated;
	drain_containers_of(lc, backend);
	mark_backend_pools_dirty(lc, backend->id);
	emit(lc, "event=backend_draining backend=%s id=%u", name, backend->id);
	return PROTO_OK;
}

static enum proto_error container_gone(struct lifecycle *lc, __u32 slot, const char *why);

enum proto_error lc_backend_del(struct lifecycle *lc, const char *name)
{
	struct backend *backend = lc_backend_find(lc, name);

	if (!backend)
		return PROTO_NOT_FOUND;
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS && backend->containers; slot++) {
		const struct container_record *record = &lc->containers[slot];

		if (record->state != CONTAINER_FREE && record->backend_id == backend->id) {
			enum proto_error err = container_gone(lc, slot, "backend_removed");

			if (err)
				return err;
		}
	}
	int err = backend_del(lc->dp, backend->id);

	if (err)
		return fail_kernel(lc, "removing the backend", err);
	liveness_set(lc->dp, backend->id, NULL, 0); /* its agent's key dies with it */
	struct backend_meta cleared = {};

	bpf_map_update_elem(bpf_map__fd(lc->dp->skel->maps.backend_meta), &backend->id, &cleared,
			    BPF_ANY);
	emit(lc, "event=backend_removed backend=%s id=%u", name, backend->id);
	g_hash_table_remove(lc->backend_names, backend->meta.name);
	memset(backend, 0, sizeof(*backend));
	return PROTO_OK;
}

/* --- containers --- */

static char *container_key(__u32 backend_id, const char *name)
{
	return g_strdup_printf("%u/%s", backend_id, name);
}

const struct container_record *lc_container(struct lifecycle *lc, __u32 slot)
{
	if (slot >= TETHER_MAX_CONTAINERS || lc->containers[slot].state == CONTAINER_FREE) {
		fail(lc, PROTO_NOT_FOUND, "no container %u (tetherctl container list shows them)",
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
		return fail(lc, PROTO_BAD_ARGUMENT, "a new container is starting or warm");
	*backend = lc_backend_find(lc, backend_name);
	if (!*backend)
		return PROTO_NOT_FOUND;
	if ((*backend)->record.state != BACKEND_UP)
		return fail(lc, PROTO_INVALID_TRANSITION,
			    "backend '%s' is %s: new containers go to up backends", backend_name,
			    backend_state_name((*backend)->record.state));
	if (name[0] && !name_is_valid(name))
		return fail(lc, PROTO_BAD_ARGUMENT,
			    "container name '%s' must be 1-31 of A-Z a-z 0-9 . _ -", name);
	if (name[0]) {
		g_autofree char *key = container_key((*backend)->id, name);

		if (g_hash_table_contains(lc->container_names, key))
			return fail(lc, PROTO_EXISTS, "backend '%s' has a container named '%s'",
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
		return fail_kernel(lc, "recording the container's name", errno);
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
		return fail(lc, PROTO_BAD_ARGUMENT, "function ids are nonzero");
	struct function_settings settings = { .concurrency = limit };
	int err = function_settings_set(lc->dp, function_id, &settings);

	if (err)
		return fail_kernel(lc, "recording the function's settings", err);
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
			return fail_kernel(lc, "setting the container's limit", err);
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
		g_hash_table_insert(lc->container_names, container_key(backend->id, name),
				    GUINT_TO_POINTER(slot + 1));
	struct function *function = function_get_or_create(lc, record->function_id);

	g_hash_table_add(function->slots, GUINT_TO_POINTER(slot + 1));
	emit(lc, "event=container_added container=%u function=%llu backend=%s state=%s", slot,
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
		return fail(lc, PROTO_BAD_ARGUMENT, "function ids are nonzero");
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
		return fail(lc, PROTO_FULL,
			    "all %u container slots are in use (tetherctl container list; "
			    "del or drain containers to make room)",
			    lc->config.max_containers);
	if ((check = record_name(lc, *slot, name)))
		return check;
	int err = container_install(lc->dp, *slot, function_id, backend->id, state, token);

	if (err) {
		bpf_map_delete_elem(bpf_map__fd(lc->dp->skel->maps.container_meta), slot);
		return fail_kernel(lc, "adding the container", err);
	}
	container_added(lc, *slot, backend, name);
	return PROTO_OK;
}

static enum proto_error set_state(struct lifecycle *lc, __u32 slot, enum container_state state,
				  __u64 deadline)
{
	int err = container_set_state(lc->dp, slot, state, deadline);

	if (err)
		return fail_kernel(lc, "changing the container's state", err);
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
			return fail(lc, PROTO_INVALID_TRANSITION,
				    "container %u is %s; only a starting container comes up", slot,
				    container_state_name(record->state));
		break;
	case LC_DRAIN:
		if (record->state != CONTAINER_WARM && record->state != CONTAINER_STARTING)
			return fail(lc, PROTO_INVALID_TRANSITION,
				    "container %u is %s; only a warm or starting container drains",
				    slot, container_state_name(record->state));
		break;
	case LC_IDLE:
		if (record->state != CONTAINER_DRAINING)
			return fail(lc, PROTO_INVALID_TRANSITION,
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
	mark_pool_dirty(lc, record->function_id);
	emit(lc, "event=container_up container=%u function=%llu backend=%s", slot,
	     (unsigned long long)record->function_id, backend_name_of(lc, record));
	if (lc->config.observer.container_warm)
		lc->config.observer.container_warm(lc->config.observer.ctx, slot,
						   record->function_id);
	return PROTO_OK;
}

static enum proto_error container_drain_until(struct lifecycle *lc, __u32 slot, __u64 deadline)
{
	const struct container_record *record = &lc->containers[slot];
	enum proto_error err = set_state(lc, slot, CONTAINER_DRAINING, deadline);

	if (err)
		return err;
	mark_pool_dirty(lc, record->function_id);
	emit(lc, "event=container_draining container=%u function=%llu backend=%s", slot,
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

	return container_drain_until(lc, slot, deadline);
}

static enum proto_error container_gone(struct lifecycle *lc, __u32 slot, const char *why)
{
	struct container_record record = lc->containers[slot];
	char name[TETHER_NAME_MAX];
	int err = container_remove(lc->dp, slot);

	if (err)
		return fail_kernel(lc, "removing the container", err);
	lc_container_name(lc, slot, name, sizeof(name));
	bpf_map_delete_elem(bpf_map__fd(lc->dp->skel->maps.container_meta), &slot);
	if (name[0]) {
		g_autofree char *key = container_key(record.backend_id, name);

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
	emit(lc, "event=container_gone container=%u function=%llu backend=%s reason=%s", slot,
	     (unsigned long long)record.function_id, backend_name_of(lc, &record), why);
	return PROTO_OK;
}

enum proto_error lc_container_idle(struct lifecycle *lc, __u32 slot)
{
	enum proto_error check = lc_check_container_change(lc, slot, LC_IDLE);

	return check ? check : container_gone(lc, slot, "idle");
}

enum proto_error lc_container_del(struct lifecycle *lc, __u32 slot)
{
	enum proto_error check = lc_check_container_change(lc, slot, LC_DEL);

	return check ? check : container_gone(lc, slot, "deleted");
}

/* --- the functions a backend may hold --- */

enum proto_error lc_check_function_allowed(struct lifecycle *lc, const char *name,
					   __u64 function_id)
{
	struct allowed_functions allowed;
	char list[256];
	int err = allowed_get(lc->dp, name, &allowed);

	if (err == -ENOENT)
		return PROTO_OK;
	if (err)
		return fail_kernel(lc, "reading the backend's allowed functions", err);
	if (proto_functions_allow(&allowed, function_id))
		return PROTO_OK;
	proto_functions_format(&allowed, list, sizeof(list));
	return fail(lc, PROTO_UNAUTHORIZED,
		    "backend '%s' may hold functions %s, not %llu (the operator sets them: "
		    "tetherctl backend set %s --functions ...)",
		    name, list, (unsigned long long)function_id, name);
}

enum proto_error lc_backend_set_functions(struct lifecycle *lc, const char *name,
					  const struct proto_functions *functions)
{
	char list[256];
	int err;

	if (!name_is_valid(name))
		return fail(lc, PROTO_BAD_ARGUMENT,
			    "backend name '%s' must be 1-31 of A-Z a-z 0-9 . _ -", name);
	err = functions->any ? allowed_clear(lc->dp, name)
			     : allowed_set(lc->dp, name, &functions->allowed);
	if (err)
		return fail_kernel(lc, "recording the backend's allowed functions", err);
	if (functions->any)
		snprintf(list, sizeof(list), "any");
	else
		proto_functions_format(&functions->allowed, list, sizeof(list));
	emit(lc, "event=backend_functions backend=%s functions=%s", name, list);
	return PROTO_OK;
}

/* The key of the backend's ALIVE datagrams (none: nothing changes); an ALIVE
 * moves its deadline by its heartbeat time. */
enum proto_error lc_backend_set_liveness(struct lifecycle *lc, const char *name,
					 const __u64 key[2])
{
	if (!key[0] && !key[1])
		return PROTO_OK;
	struct backend *backend = lc_backend_find(lc, name);

	if (!backend)
		return PROTO_NOT_FOUND;
	struct backend_liveness live;

	if (!liveness_get(lc->dp, backend->id, &live) && live.key[0] == key[0] &&
	    live.key[1] == key[1] && live.window_ns == backend->meta.heartbeat_ms * NS_PER_MS)
		return PROTO_OK;
	/* ALIVE datagrams keep it up from now on, tetherd or not: the map's
	 * deadline loses the restart grace first. */
	struct backend keyed = *backend;
	int err;

	keyed.alive_keyed = true;
	if ((err = set_backend_record(lc, &keyed)))
		return fail_kernel(lc, "recording the backend's deadline", err);
	err = liveness_set(lc->dp, backend->id, key, backend->meta.heartbeat_ms * NS_PER_MS);
	if (err)
		return fail_kernel(lc, "recording the backend's liveness key", err);
	backend->alive_keyed = true;
	return PROTO_OK;
}

/* --- requests --- */

enum proto_error lc_execute(struct lifecycle *lc, const struct lc_request *r, __u32 *slot)
{
	struct tether_token token;
	__u32 id;

	switch (r->op) {
	case LC_BACKEND_ADD: {
		struct lc_backend_link link = {
			.encap = r->encap, .vni = r->vni, .iface = r->iface, .vlan = r->vlan,
		};
		__u8 mac[6];

		memcpy(mac, r->mac, 6);
		if (r->encap == BACKEND_VXLAN && !r->has_mac)
			tether_vxlan_default_mac(r->vni, mac);
		enum proto_error err = lc_backend_add_link(lc, r->backend, r->addr, mac, &link,
							   r->heartbeat_ms, &id);

		if (!err && r->has_functions)
			err = lc_backend_set_functions(lc, r->backend, &r->functions);
		return err ? err : lc_backend_set_liveness(lc, r->backend, r->alive_key);
	}
	case LC_BACKEND_SET_FUNCTIONS:
		return lc_backend_set_functions(lc, r->backend, &r->functions);
	case LC_BACKEND_HEARTBEAT: {
		enum proto_error err = lc_backend_heartbeat(lc, r->backend);

		return err ? err : lc_backend_set_liveness(lc, r->backend, r->alive_key);
	}
	case LC_BACKEND_DRAIN:
		return lc_backend_drain(lc, r->backend, r->deadline_ms);
	case LC_BACKEND_DEL:
		return lc_backend_del(lc, r->backend);
	case LC_CONTAINER_ADD: {
		lc->next_own_limit = r->concurrency;
		enum proto_error err = lc_container_add(lc, r->function_id, r->backend, r->name,
							r->state, slot, &token);

		lc->next_own_limit = 0;
		return err;
	}
	case LC_CONTAINER_UP:
		return lc_container_up(lc, r->slot);
	case LC_CONTAINER_DRAIN:
		return lc_container_drain(lc, r->slot, r->deadline_ms);
	case LC_CONTAINER_IDLE:
		return lc_container_idle(lc, r->slot);
	case LC_CONTAINER_DEL:
		return lc_container_del(lc, r->slot);
	case LC_FUNCTION_SET:
		return lc_function_set_limit(lc, r->function_id, r->concurrency);
	}
	return fail(lc, PROTO_INTERNAL, "request %d is not a lifecycle request", r->op);
}

/* --- a fleet store's state, applied --- */

/* The backend named in the record, or NULL: the store is the truth, so a
 * local backend of that name with another id, or another name at that id,
 * is forgotten first. */
static void forget_conflicting_backends(struct lifecycle *lc, const struct lc_backend_spec *spec)
{
	struct backend *named = g_hash_table_lookup(lc->backend_names, spec->name);
	struct backend *at_id = &lc->backends[spec->id];

	if (named && named->id != spec->id)
		lc_backend_del(lc, named->meta.name);
	if (at_id->in_use && strcmp(at_id->meta.name, spec->name))
		lc_backend_del(lc, at_id->meta.name);
}

static bool backend_spec_valid(struct lifecycle *lc, const struct lc_backend_spec *spec,
			       const struct lc_backend_link *link)
{
	if (spec->id == 0 || spec->id >= TETHER_MAX_BACKENDS || !name_is_valid(spec->name) ||
	    (spec->state != BACKEND_UP && spec->state != BACKEND_DRAINING &&
	     spec->state != BACKEND_DOWN)) {
		fail(lc, PROTO_BAD_ARGUMENT, "backend record '%s' (id %u, state %u) is not valid",
		     spec->name, spec->id, spec->state);
		return false;
	}
	if (check_link(lc, spec->addr, link)) {
		char why[256];

		snprintf(why, sizeof(why), "%s", lifecycle_error(lc));
		fail(lc, PROTO_BAD_ARGUMENT,
		     "backend '%s' cannot be reached from this host as the store says (every "
		     "router of a fleet needs its interface by the same name, and an "
		     "--encap-source for routed backends): %s",
		     spec->name, why);
		return false;
	}
	return true;
}

enum proto_error lc_backend_apply(struct lifecycle *lc, const struct lc_backend_spec *spec)
{
	struct lc_backend_link link = {
		.encap = spec->encap, .vni = spec->vni, .iface = spec->iface, .vlan = spec->vlan,
	};

	if (!backend_spec_valid(lc, spec, &link))
		return PROTO_BAD_ARGUMENT;
	forget_conflicting_backends(lc, spec);
	struct backend *backend = &lc->backends[spec->id];
	bool is_new = !backend->in_use;
	struct backend updated = is_new ? (struct backend){ .in_use = true, .id = spec->id }
					: *backend;
	enum backend_state was = is_new ? BACKEND_FREE : backend->record.state;
	bool was_up = !is_new && backend_is_up(lc, spec->id);

	/* Liveness is the store's: no local heartbeat deadline. */
	updated.record.heartbeat_expiry_ns = 0;
	updated.record.state = spec->state;
	set_link(&updated, spec->mac, &link);
	memcpy(updated.record.addr, spec->addr, 16);
	snprintf(updated.meta.name, sizeof(updated.meta.name), "%s", spec->name);
	updated.meta.heartbeat_ms = spec->heartbeat_ms;
	updated.meta.drain_deadline_ns =
		spec->state == BACKEND_DRAINING ? spec->drain_deadline_ns : 0;
	if (!is_new && !memcmp(&updated, backend, sizeof(updated)))
		return PROTO_OK;
	int err = write_backend(lc, &updated);

	if (err) {
		if (is_new)
			backend_del(lc->dp, spec->id);
		return fail_kernel(lc, "applying the backend", err);
	}
	*backend = updated;
	if (is_new)
		g_hash_table_insert(lc->backend_names, backend->meta.name, backend);
	if (was == spec->state)
		return PROTO_OK;
	if (spec->state == BACKEND_DRAINING)
		drain_containers_of(lc, backend);
	mark_backend_pools_dirty(lc, spec->id);
	emit(lc, "event=backend_%s backend=%s id=%u", backend_state_name(spec->state), spec->name,
	     spec->id);
	if (!was_up && backend_is_up(lc, spec->id))
		announce_warm_containers(lc, spec->id);
	return PROTO_OK;
}

enum proto_error lc_backend_forget(struct lifecycle *lc, const char *name)
{
	if (!g_hash_table_lookup(lc->backend_names, name))
		return PROTO_OK;
	return lc_backend_del(lc, name);
}

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
		return container_drain_until(lc, spec->slot, spec->drain_deadline_ns);
	enum proto_error err = set_state(lc, spec->slot, spec->state, 0);

	if (err)
		return err;
	mark_pool_dirty(lc, record->function_id);
	if (spec->state == CONTAINER_WARM) {
		emit(lc, "event=container_up container=%u function=%llu backend=%s", spec->slot,
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
	    (spec->name[0] && !name_is_valid(spec->name)))
		return fail(lc, PROTO_BAD_ARGUMENT, "container record %u is not valid", spec->slot);
	struct backend *backend = g_hash_table_lookup(lc->backend_names, spec->backend);

	if (!backend)
		return fail(lc, PROTO_NOT_FOUND, "container %u is on backend '%s', which is not "
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
		container_gone(lc, spec->slot, "replaced");
	/* Past its drain deadline it is gone already: installing it would
	 * bring it back until the store forgets it. */
	if (spec->state == CONTAINER_DRAINING && lifecycle_now(lc) >= spec->drain_deadline_ns)
		return PROTO_OK;
	if (spec->name[0]) {
		g_autofree char *key = container_key(backend->id, spec->name);
		gpointer holder = g_hash_table_lookup(lc->container_names, key);

		if (holder)
			container_gone(lc, GPOINTER_TO_UINT(holder) - 1, "replaced");
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
		return fail_kernel(lc, "applying the container", err);
	}
	lc->next_own_limit = spec->concurrency;
	container_added(lc, spec->slot, backend, spec->name);
	return PROTO_OK;
}

enum proto_error lc_container_forget(struct lifecycle *lc, __u32 slot, const char *why)
{
	if (slot >= TETHER_MAX_CONTAINERS || lc->containers[slot].state == CONTAINER_FREE)
		return PROTO_OK;
	return container_gone(lc, slot, why);
}

/* --- time --- */

static void expire_backends(struct lifecycle *lc, __u64 now)
{
	for (__u32 id = 1; id < TETHER_MAX_BACKENDS; id++) {
		struct backend *backend = &lc->backends[id];

		if (!backend->in_use || backend->record.state == BACKEND_DOWN)
			continue;
		sync_expiry(lc, backend);
		bool missed = backend->record.heartbeat_expiry_ns &&
			      now >= backend->record.heartbeat_expiry_ns;
		bool drained = backend->record.state == BACKEND_DRAINING && !backend->containers;

		if (!missed && !drained)
			continue;
		struct backend_record down = backend->record;

		down.state = BACKEND_DOWN;
		if (backend_set(lc->dp, id, &down))
			continue; /* tried again on the next tick */
		backend->record = down;
		mark_backend_pools_dirty(lc, id);
		emit(lc, "event=backend_down backend=%s id=%u reason=%s", backend->meta.name, id,
		     missed ? "heartbeat" : "drained");
	}
}

static void expire_drains(struct lifecycle *lc, __u64 now)
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
		container_gone(lc, g_array_index(expired, __u32, i), "deadline");
	g_array_free(expired, TRUE);
}

bool lifecycle_backend_down(const struct lifecycle *lc, const struct backend *backend)
{
	struct backend_record record;

	if (backend_get(lc->dp, backend->id, &record))
		record = backend->record;
	return record.state == BACKEND_DOWN ||
	       (record.heartbeat_expiry_ns && lifecycle_now(lc) >= record.heartbeat_expiry_ns);
}

void lifecycle_expire_backends(struct lifecycle *lc)
{
	expire_backends(lc, lifecycle_now(lc));
}

void lifecycle_tick(struct lifecycle *lc)
{
	__u64 now = lifecycle_now(lc);

	expire_drains(lc, now);
	expire_backends(lc, now);
}

/* --- set-up and adoption --- */

int lifecycle_init(struct lifecycle *lc, struct dataplane *dp,
		   const struct lifecycle_config *config)
{
	memset(lc, 0, sizeof(*lc));
	lc->dp = dp;
	lc->config = *config;
	if (!lc->config.max_containers || lc->config.max_containers > TETHER_MAX_CONTAINERS)
		lc->config.max_containers = TETHER_MAX_CONTAINERS;
	struct rlimit files;

	/* Kept pool tables may use half the fds: the rest is for connections
	 * and for building tables. */
	if (!getrlimit(RLIMIT_NOFILE, &files))
		lc->max_kept_tables = files.rlim_cur == RLIM_INFINITY || files.rlim_cur > UINT32_MAX
					      ? TETHER_MAX_FUNCTIONS
					      : (__u32)(files.rlim_cur / 2);
	lc->containers = calloc(TETHER_MAX_CONTAINERS, sizeof(*lc->containers));
	if (!lc->containers)
		return -ENOMEM;
	lc->functions = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, function_free);
	lc->backend_names = g_hash_table_new(g_str_hash, g_str_equal);
	lc->container_names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	lc->limits = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	lc->own_limits = g_hash_table_new(g_direct_hash, g_direct_equal);
	return 0;
}

void lifecycle_free(struct lifecycle *lc)
{
	if (!lc->functions)
		return;
	g_hash_table_destroy(lc->functions);
	g_hash_table_destroy(lc->backend_names);
	g_hash_table_destroy(lc->container_names);
	g_hash_table_destroy(lc->limits);
	g_hash_table_destroy(lc->own_limits);
	free(lc->containers);
	lc->containers = NULL;
}

/* The map's deadline of a backend without an ALIVE key has the restart grace
 * in it (set_backend_record). Its agent could not heartbeat while no tetherd
 * ran: it has one heartbeat time from now to do so, within that grace. */
static void adopt_deadline(struct lifecycle *lc, struct backend *backend)
{
	struct backend_liveness live;
	__u64 now = lifecycle_now(lc), expiry = backend->record.heartbeat_expiry_ns;

	backend->alive_keyed = !liveness_get(lc->dp, backend->id, &live) &&
			       (live.key[0] || live.key[1]);
	if (backend->alive_keyed || !expiry || expiry <= now)
		return;
	backend->record.heartbeat_expiry_ns =
		MIN(expiry, now + (__u64)backend->meta.heartbeat_ms * NS_PER_MS);
}

static int adopt_backends(struct lifecycle *lc)
{
	int meta_fd = bpf_map__fd(lc->dp->skel->maps.backend_meta);

	for (__u32 id = 1; id < TETHER_MAX_BACKENDS; id++) {
		struct backend *backend = &lc->backends[id];

		if (backend_get(lc->dp, id, &backend->record))
			continue;
		if (bpf_map_lookup_elem(meta_fd, &id, &backend->meta))
			return -errno;
		backend->in_use = true;
		backend->id = id;
		adopt_deadline(lc, backend);
		g_hash_table_insert(lc->backend_names, backend->meta.name, backend);
	}
	return 0;
}

/* The records the data plane read when it adopted the maps (reading a million
 * records again kept a restarted tetherd from serving for 0.3 s more), else
 * the whole array. */
static int read_all_containers(struct lifecycle *lc)
{
	struct container_record *adopted = dataplane_take_adopted_records(lc->dp);

	if (adopted) {
		free(lc->containers);
		lc->containers = adopted;
		return 0;
	}
	return containers_read_all(lc->dp, lc->containers);
}

/* The functions' settings, pinned by set function. */
static int adopt_function_settings(struct lifecycle *lc)
{
	int fd = bpf_map__fd(lc->dp->skel->maps.functions);
	__u64 key, next;
	const __u64 *previous = NULL;
	struct function_settings settings;

	while (!bpf_map_get_next_key(fd, previous, &next)) {
		if (!bpf_map_lookup_elem(fd, &next, &settings) && settings.concurrency) {
			__u64 *id = g_new(__u64, 1);

			*id = next;
			g_hash_table_replace(lc->limits, id, GUINT_TO_POINTER(settings.concurrency));
		}
		key = next;
		previous = &key;
	}
	return 0;
}

/* The names of the containers adopted (an orphan's is ignored). */
static void adopt_container_name(__u32 slot, const char *name, void *ctx)
{
	struct lifecycle *lc = ctx;

	if (slot >= TETHER_MAX_CONTAINERS || !name[0] || lc->containers[slot].state == CONTAINER_FREE)
		return;
	g_hash_table_insert(lc->container_names, container_key(lc->containers[slot].backend_id, name),
			    GUINT_TO_POINTER(slot + 1));
}

static int adopt_containers(struct lifecycle *lc)
{
	int err = adopt_function_settings(lc) ?: read_all_containers(lc);

	if (err)
		return err;
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS; slot++) {
		struct container_record *record = &lc->containers[slot];

		if (record->state == CONTAINER_FREE)
			continue;
		if (!lc->backends[record->backend_id].in_use) {
			/* Its backend is gone: so is the container, name and all. */
			container_remove(lc->dp, slot);
			bpf_map_delete_elem(bpf_map__fd(lc->dp->skel->maps.container_meta), &slot);
			*record = (struct container_record){ .generation = record->generation };
			continue;
		}
		lc->backends[record->backend_id].containers++;
		g_hash_table_add(function_get_or_create(lc, record->function_id)->slots,
				 GUINT_TO_POINTER(slot + 1));
		/* A limit other than its function's was the container's own
		 * (one equal to it is indistinguishable, and taken as the
		 * function's). */
		if (record->limit && record->limit != lc_function_limit(lc, record->function_id))
			g_hash_table_replace(lc->own_limits, GUINT_TO_POINTER(slot + 1),
					     GUINT_TO_POINTER(record->limit));
	}
	return container_names_for_each(lc->dp, adopt_container_name, lc);
}

/* Tables of functions that no longer have containers are removed. */
static int drop_orphan_pools(struct lifecycle *lc)
{
	int fd = bpf_map__fd(lc->dp->skel->maps.pools);
	GArray *orphans = g_array_new(FALSE, FALSE, sizeof(__u64));
	__u64 key, next;
	const __u64 *previous = NULL;

	while (!bpf_map_get_next_key(fd, previous, &next)) {
		if (!lc_function(lc, next))
			g_array_append_val(orphans, next);
		key = next;
		previous = &key;
	}
	for (guint i = 0; i < orphans->len; i++)
		bpf_map_delete_elem(fd, &g_array_index(orphans, __u64, i));
	g_array_free(orphans, TRUE);
	return 0;
}

/* A pinned table built from the members the function has now is kept as it
 * is; every other is rebuilt. Rebuilding all of them would keep a restarted
 * tetherd with ten thousand pools from serving for many seconds. */
static int adopt_pool(struct lifecycle *lc, struct function *function)
{
	struct maglev_member *members;
	size_t n;
	int table_fd = -1;

	collect_members(lc, function, &members, &n);
	int matches = n ? pool_table_matches(lc->dp, function->function_id,
					     maglev_digest(members, n),
					     lc->kept_tables < lc->max_kept_tables ? &table_fd : NULL)
			: 0;
	g_free(members);
	if (matches < 0)
		return matches;
	function->pool_dirty = !matches;
	if (matches) {
		function->pool_size = n;
		keep_table(lc, function, table_fd);
	}
	return 0;
}

int lifecycle_adopt(struct lifecycle *lc)
{
	GHashTableIter iter;
	gpointer value;
	int err;

	if ((err = adopt_backends(lc)) || (err = adopt_containers(lc)) ||
	    (err = drop_orphan_pools(lc)))
		return err;
	g_hash_table_iter_init(&iter, lc->functions);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		if ((err = adopt_pool(lc, value)))
			return err;
	return lifecycle_flush_pools(lc);
}
