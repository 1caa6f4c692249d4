// SPDX-License-Identifier: MIT
/* Backends: up -> draining -> down (DESIGN.md, lifecycle), their heartbeats
 * and ALIVE keys, the functions each may hold, and a fleet store's backend
 * records applied. */
#include "lifecycle_internal.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tether_xdp.skel.h"

bool lc_name_is_valid(const char *name)
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
		lc_fail(lc, PROTO_NOT_FOUND, "no backend named '%s' (tetherctl backend list shows them)",
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
int lc_set_backend_record(struct lifecycle *lc, const struct backend *backend)
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
	int err = lc_set_backend_record(lc, backend);

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
		return lc_fail(lc, PROTO_BAD_ARGUMENT, "encap %u is none of l2, vxlan, ipip",
			       link->encap);
	if (link->vlan > TETHER_VLAN_MAX)
		return lc_fail(lc, PROTO_BAD_ARGUMENT,
			       "vlan %u is not a VLAN id: 1 to %u, or 0 for untagged", link->vlan,
			       TETHER_VLAN_MAX);
	if (routed && link->vlan)
		return lc_fail(lc, PROTO_BAD_ARGUMENT,
			       "a routed backend (encap %s) has no VLAN: its packets leave as the "
			       "route's interface sends them", proto_encap_name(link->encap));
	if (link->vni > TETHER_VNI_MAX || (link->vni && link->encap != BACKEND_VXLAN))
		return lc_fail(lc, PROTO_BAD_ARGUMENT,
			       "vni %u: a VNI (0 to %u) is for encap vxlan only", link->vni,
			       TETHER_VNI_MAX);
	if ((!routed || iface[0]) &&
	    (strlen(iface) >= sizeof(((struct backend_meta *)0)->iface) || !if_nametoindex(iface)))
		return lc_fail(lc, PROTO_BAD_ARGUMENT,
			       "interface '%s' does not exist on this host (ip link shows them)", iface);
	if (routed) {
		struct encap_config config = {};

		encap_config_get(lc->dp, &config);
		if (!encap_source_for(&config, addr))
			return lc_fail(lc, PROTO_BAD_ARGUMENT,
				       "a routed backend at an %s address needs an outer source "
				       "address of that family: start tetherd with --encap-source",
				       addr_is_v4mapped(addr) ? "IPv4" : "IPv6");
	}
	return PROTO_OK;
}

enum proto_error lc_check_backend_add(struct lifecycle *lc, const char *name, const __u8 addr[16],
				      const struct lc_backend_link *link)
{
	if (!lc_name_is_valid(name))
		return lc_fail(lc, PROTO_BAD_ARGUMENT,
			       "backend name '%s' must be 1-31 of A-Z a-z 0-9 . _ -", name);
	if (g_hash_table_lookup(lc->backend_names, name))
		return lc_fail(lc, PROTO_EXISTS, "a backend named '%s' exists already", name);
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
		return lc_fail(lc, PROTO_FULL, "all %u backend ids are in use",
			       TETHER_MAX_BACKENDS - 1);

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
		return lc_fail_kernel(lc, "adding the backend", err);
	}
	*slot = backend;
	g_hash_table_insert(lc->backend_names, slot->meta.name, slot);
	*id = slot->id;
	lc_emit(lc, "event=backend_up backend=%s id=%u", name, slot->id);
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
	if (!lc->config.observer.container_warm || !lc_backend_is_up(lc, backend_id))
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
	bool was_down = !lc_backend_is_up(lc, backend->id) && backend->record.state != BACKEND_DRAINING;

	updated.record.heartbeat_expiry_ns =
		lifecycle_now(lc) + updated.meta.heartbeat_ms * NS_PER_MS;
	/* A backend that went down while draining comes back draining. */
	if (updated.record.state == BACKEND_DOWN)
		updated.record.state = updated.meta.drain_deadline_ns ? BACKEND_DRAINING : BACKEND_UP;
	int err = lc_set_backend_record(lc, &updated);

	if (err)
		return lc_fail_kernel(lc, "recording the heartbeat", err);
	*backend = updated;
	if (was_down) {
		mark_backend_pools_dirty(lc, backend->id);
		lc_emit(lc, "event=backend_%s backend=%s id=%u",
			backend_state_name(backend->record.state), name, backend->id);
		announce_warm_containers(lc, backend->id);
	}
	return PROTO_OK;
}


/* A draining backend's warm and starting containers drain until its deadline. */
static void drain_containers_of(struct lifecycle *lc, const struct backend *backend)
{
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS && backend->containers; slot++) {
		const struct container_record *record = &lc->containers[slot];

		if (record->backend_id == backend->id && (record->state == CONTAINER_WARM ||
							  record->state == CONTAINER_STARTING))
			lc_container_drain_until(lc, slot, backend->meta.drain_deadline_ns);
	}
}

enum proto_error lc_check_backend_drain(struct lifecycle *lc, const char *name)
{
	struct backend *backend = lc_backend_find(lc, name);

	if (!backend)
		return PROTO_NOT_FOUND;
	if (backend->record.state != BACKEND_UP)
		return lc_fail(lc, PROTO_INVALID_TRANSITION, "backend '%s' is %s; only an up backend drains",
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
		return lc_fail_kernel(lc, "draining the backend", err);
	*backend = updated;
	drain_containers_of(lc, backend);
	mark_backend_pools_dirty(lc, backend->id);
	lc_emit(lc, "event=backend_draining backend=%s id=%u", name, backend->id);
	return PROTO_OK;
}


enum proto_error lc_backend_del(struct lifecycle *lc, const char *name)
{
	struct backend *backend = lc_backend_find(lc, name);

	if (!backend)
		return PROTO_NOT_FOUND;
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS && backend->containers; slot++) {
		const struct container_record *record = &lc->containers[slot];

		if (record->state != CONTAINER_FREE && record->backend_id == backend->id) {
			enum proto_error err = lc_container_gone(lc, slot, "backend_removed");

			if (err)
				return err;
		}
	}
	int err = backend_del(lc->dp, backend->id);

	if (err)
		return lc_fail_kernel(lc, "removing the backend", err);
	liveness_set(lc->dp, backend->id, NULL, 0); /* its agent's key dies with it */
	struct backend_meta cleared = {};

	bpf_map_update_elem(bpf_map__fd(lc->dp->skel->maps.backend_meta), &backend->id, &cleared,
			    BPF_ANY);
	lc_emit(lc, "event=backend_removed backend=%s id=%u", name, backend->id);
	g_hash_table_remove(lc->backend_names, backend->meta.name);
	memset(backend, 0, sizeof(*backend));
	return PROTO_OK;
}


/* --- deadlines --- */

void lc_expire_backends(struct lifecycle *lc, __u64 now)
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
		lc_emit(lc, "event=backend_down backend=%s id=%u reason=%s", backend->meta.name, id,
			missed ? "heartbeat" : "drained");
	}
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
	lc_expire_backends(lc, lifecycle_now(lc));
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
		return lc_fail_kernel(lc, "reading the backend's allowed functions", err);
	if (proto_functions_allow(&allowed, function_id))
		return PROTO_OK;
	proto_functions_format(&allowed, list, sizeof(list));
	return lc_fail(lc, PROTO_UNAUTHORIZED,
		       "backend '%s' may hold functions %s, not %llu (the operator sets them: "
		       "tetherctl backend set %s --functions ...)",
		       name, list, (unsigned long long)function_id, name);
}

enum proto_error lc_backend_set_functions(struct lifecycle *lc, const char *name,
					  const struct proto_functions *functions)
{
	char list[256];
	int err;

	if (!lc_name_is_valid(name))
		return lc_fail(lc, PROTO_BAD_ARGUMENT,
			       "backend name '%s' must be 1-31 of A-Z a-z 0-9 . _ -", name);
	err = functions->any ? allowed_clear(lc->dp, name)
			     : allowed_set(lc->dp, name, &functions->allowed);
	if (err)
		return lc_fail_kernel(lc, "recording the backend's allowed functions", err);
	if (functions->any)
		snprintf(list, sizeof(list), "any");
	else
		proto_functions_format(&functions->allowed, list, sizeof(list));
	lc_emit(lc, "event=backend_functions backend=%s functions=%s", name, list);
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
	if ((err = lc_set_backend_record(lc, &keyed)))
		return lc_fail_kernel(lc, "recording the backend's deadline", err);
	err = liveness_set(lc->dp, backend->id, key, backend->meta.heartbeat_ms * NS_PER_MS);
	if (err)
		return lc_fail_kernel(lc, "recording the backend's liveness key", err);
	backend->alive_keyed = true;
	return PROTO_OK;
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
	if (spec->id == 0 || spec->id >= TETHER_MAX_BACKENDS || !lc_name_is_valid(spec->name) ||
	    (spec->state != BACKEND_UP && spec->state != BACKEND_DRAINING &&
	     spec->state != BACKEND_DOWN)) {
		lc_fail(lc, PROTO_BAD_ARGUMENT, "backend record '%s' (id %u, state %u) is not valid",
			spec->name, spec->id, spec->state);
		return false;
	}
	if (check_link(lc, spec->addr, link)) {
		char why[256];

		snprintf(why, sizeof(why), "%s", lifecycle_error(lc));
		lc_fail(lc, PROTO_BAD_ARGUMENT,
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
	bool was_up = !is_new && lc_backend_is_up(lc, spec->id);

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
		return lc_fail_kernel(lc, "applying the backend", err);
	}
	*backend = updated;
	if (is_new)
		g_hash_table_insert(lc->backend_names, backend->meta.name, backend);
	if (was == spec->state)
		return PROTO_OK;
	if (spec->state == BACKEND_DRAINING)
		drain_containers_of(lc, backend);
	mark_backend_pools_dirty(lc, spec->id);
	lc_emit(lc, "event=backend_%s backend=%s id=%u", backend_state_name(spec->state),
		spec->name, spec->id);
	if (!was_up && lc_backend_is_up(lc, spec->id))
		announce_warm_containers(lc, spec->id);
	return PROTO_OK;
}

enum proto_error lc_backend_forget(struct lifecycle *lc, const char *name)
{
	if (!g_hash_table_lookup(lc->backend_names, name))
		return PROTO_OK;
	return lc_backend_del(lc, name);
}

