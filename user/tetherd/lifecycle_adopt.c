// SPDX-License-Identifier: MIT
/* Adoption: a restarted tetherd takes its view from the pinned maps, so
 * traffic goes on and no state is lost (DESIGN.md, operator interface). */
#include "lifecycle_internal.h"

#include <errno.h>
#include <stdlib.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tether_xdp.skel.h"

/* The map's deadline of a backend without an ALIVE key has the restart grace
 * in it (lc_set_backend_record). Its agent could not heartbeat while no tetherd
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
	g_hash_table_insert(lc->container_names, lc_container_key(lc->containers[slot].backend_id, name),
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
		g_hash_table_add(lc_function_get_or_create(lc, record->function_id)->slots,
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

	lc_collect_members(lc, function, &members, &n);
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
		lc_keep_table(lc, function, table_fd);
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

