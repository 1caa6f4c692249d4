// SPDX-License-Identifier: MIT
/* Functions and their pool tables: a function's table is rebuilt from its
 * warm containers on up backends and swapped in (lifecycle_flush_pools). */
#include "lifecycle_internal.h"

#include <unistd.h>

void lc_function_free(gpointer data)
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

struct function *lc_function_get_or_create(struct lifecycle *lc, __u64 function_id)
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

void lc_mark_pool_dirty(struct lifecycle *lc, __u64 function_id)
{
	struct function *function = lc_function(lc, function_id);

	if (function)
		function->pool_dirty = true;
}

bool lc_backend_is_up(const struct lifecycle *lc, __u32 backend_id)
{
	const struct backend *backend = &lc->backends[backend_id];

	return backend->in_use && backend->record.state == BACKEND_UP &&
	       (backend->record.heartbeat_expiry_ns == 0 ||
		lifecycle_now(lc) < backend->record.heartbeat_expiry_ns);
}

bool lc_container_in_pool(const struct lifecycle *lc, const struct container_record *record)
{
	return record->state == CONTAINER_WARM && lc_backend_is_up(lc, record->backend_id);
}

/* The Maglev identity of a container: slot and generation, like its token. */
static __u64 member_id(__u32 slot, const struct container_record *record)
{
	return (__u64)slot << 32 | record->generation;
}

int lc_collect_members(struct lifecycle *lc, struct function *function,
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
void lc_keep_table(struct lifecycle *lc, struct function *function, int fd)
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

		lc_collect_members(lc, function, &members, &update.n);
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
			lc_keep_table(lc, function, update->table_fd);
		}
		g_free((void *)update->members);
	}
	g_array_free(updates, TRUE);
	g_ptr_array_free(dirty, TRUE);
	if (err)
		lc_fail_kernel(lc, "replacing pool tables", err);
	return err;
}

