// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

/* A table map sized to its pool: entry 0 holds the size M, 1..M the slots,
 * M+1 and M+2 the digest of its members. */
static int create_table_map(__u64 function_id, const __u32 *table, __u32 size, __u64 digest)
{
	char name[BPF_OBJ_NAME_LEN];
	LIBBPF_OPTS(bpf_map_create_opts, create, .map_flags = BPF_F_INNER_MAP);

	snprintf(name, sizeof(name), "pool_%llx", (unsigned long long)function_id);
	__u32 count = TETHER_POOL_TABLE_ENTRIES(size);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, sizeof(__u32), sizeof(__u32), count,
				&create);
	if (fd < 0)
		return -errno;

	__u32 *keys = malloc((size_t)count * sizeof(*keys));
	__u32 *values = malloc((size_t)count * sizeof(*values));
	int err = 0;

	if (!keys || !values) {
		err = -ENOMEM;
		goto out;
	}
	for (__u32 i = 0; i < count; i++)
		keys[i] = i;
	values[TETHER_POOL_SIZE_INDEX] = size;
	memcpy(&values[1], table, (size_t)size * sizeof(*table));
	values[TETHER_POOL_DIGEST_INDEX(size)] = (__u32)digest;
	values[TETHER_POOL_DIGEST_INDEX(size) + 1] = (__u32)(digest >> 32);
	if (bpf_map_update_batch(fd, keys, values, &count, NULL))
		err = -errno;
out:
	free(keys);
	free(values);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* In one batch call, as every update or delete of the outer map waits for an
 * RCU grace period: pools emptied together are removed with one wait. A key
 * without a pool stops the kernel's batch; it is skipped. */
static int pools_delete(int pools_fd, const __u64 *function_ids, __u32 count)
{
	for (__u32 done = 0; done < count;) {
		__u32 deleted = count - done;

		if (!bpf_map_delete_batch(pools_fd, function_ids + done, &deleted, NULL))
			return 0;
		if (errno != ENOENT)
			return -errno;
		done += deleted + 1;
	}
	return 0;
}

static int build_table_map(const struct pool_update *update)
{
	__u32 size = maglev_table_size(update->n);
	__u32 *table = malloc((size_t)size * sizeof(*table));

	if (!table)
		return -ENOMEM;
	int err = maglev_build(update->members, update->n, table, size);
	int fd = err ? err
		     : create_table_map(update->function_id, table, size,
					maglev_digest(update->members, update->n));

	free(table);
	return fd;
}

/* Up to POOL_BATCH new tables are built, then swapped in by one batch update:
 * the kernel waits for running programs once per update call (an RCU grace
 * period, milliseconds), so one call per table would make loading ten thousand
 * functions take minutes. Each function's swap stays a single pointer update. */
#define POOL_BATCH 256

static int swap_in_batch(int pools_fd, struct pool_update *updates, size_t count)
{
	__u64 keys[POOL_BATCH], emptied[POOL_BATCH];
	int fds[POOL_BATCH];
	size_t owners[POOL_BATCH]; /* the update each new table belongs to */
	__u32 built = 0, empty = 0;
	int err = 0;

	for (size_t i = 0; i < count; i++)
		updates[i].table_fd = -1;
	for (size_t i = 0; i < count && !err; i++) {
		if (updates[i].function_id == 0) {
			err = -EINVAL;
		} else if (updates[i].n == 0) {
			emptied[empty++] = updates[i].function_id;
		} else {
			int fd = build_table_map(&updates[i]);

			if (fd < 0) {
				err = fd;
				break;
			}
			keys[built] = updates[i].function_id;
			owners[built] = i;
			fds[built++] = fd;
		}
	}
	__u32 applied = built;

	if (!err && built && bpf_map_update_batch(pools_fd, keys, fds, &applied, NULL))
		err = -errno;
	if (!err && empty)
		err = pools_delete(pools_fd, emptied, empty);
	for (__u32 i = 0; i < built; i++) {
		if (!err && updates[owners[i]].keep_table)
			updates[owners[i]].table_fd = fds[i];
		else
			close(fds[i]);
	}
	return err;
}

int pools_replace(struct dataplane *dp, struct pool_update *updates, size_t count)
{
	int pools_fd = bpf_map__fd(dp->skel->maps.pools);

	for (size_t done = 0; done < count; done += POOL_BATCH) {
		size_t chunk = count - done < POOL_BATCH ? count - done : POOL_BATCH;
		int err = swap_in_batch(pools_fd, updates + done, chunk);

		if (err) {
			/* Kept tables of chunks before this one: not the caller's. */
			for (size_t i = 0; i < done; i++)
				if (updates[i].table_fd >= 0) {
					close(updates[i].table_fd);
					updates[i].table_fd = -1;
				}
			return err;
		}
	}
	return 0;
}

int pool_replace(struct dataplane *dp, __u64 function_id, const struct maglev_member *members,
		 size_t n)
{
	struct pool_update update = { .function_id = function_id, .members = members, .n = n };

	return pools_replace(dp, &update, 1);
}

int pool_read(struct dataplane *dp, __u64 function_id, __u32 *table, __u32 cap, __u32 *size)
{
	__u32 table_id, zero = TETHER_POOL_SIZE_INDEX;
	int err = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.pools), &function_id, &table_id))
		return -errno;
	int fd = bpf_map_get_fd_by_id(table_id);

	if (fd < 0)
		return -errno;
	if (bpf_map_lookup_elem(fd, &zero, size)) {
		err = -errno;
		goto out;
	}
	for (__u32 i = 0; i < *size && i < cap; i++) {
		__u32 index = i + 1;

		if (bpf_map_lookup_elem(fd, &index, &table[i])) {
			err = -errno;
			goto out;
		}
	}
out:
	close(fd);
	return err;
}

int pool_table_hash(int table_fd, __u64 *hash)
{
	__u32 size, index = TETHER_POOL_SIZE_INDEX, slot;
	__u64 h = 0xcbf29ce484222325ull; /* FNV-1a */

	if (bpf_map_lookup_elem(table_fd, &index, &size))
		return -errno;
	for (index = 0; index <= size; index++) {
		if (index && bpf_map_lookup_elem(table_fd, &index, &slot))
			return -errno;
		__u32 word = index ? slot : size;

		for (int byte = 0; byte < 4; byte++)
			h = (h ^ ((word >> (8 * byte)) & 0xff)) * 0x100000001b3ull;
	}
	*hash = h;
	return 0;
}

/* Opening a table by its map id needs CAP_SYS_ADMIN: tetherd does this while
 * adopting, before it drops its privileges. */
int pool_table_matches(struct dataplane *dp, __u64 function_id, __u64 digest, int *table_fd)
{
	__u32 table_id, size, zero = TETHER_POOL_SIZE_INDEX;
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);

	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.pools), &function_id, &table_id))
		return errno == ENOENT ? 0 : -errno;
	int fd = bpf_map_get_fd_by_id(table_id);

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	__u32 low = 0, high = 0;
	int matches = !bpf_obj_get_info_by_fd(fd, &info, &info_len) &&
		      !bpf_map_lookup_elem(fd, &zero, &size) &&
		      info.max_entries == TETHER_POOL_TABLE_ENTRIES(size) && /* older tables: no digest */
		      !bpf_map_lookup_elem(fd, &(__u32){ TETHER_POOL_DIGEST_INDEX(size) }, &low) &&
		      !bpf_map_lookup_elem(fd, &(__u32){ TETHER_POOL_DIGEST_INDEX(size) + 1 }, &high);

	matches = matches && (((__u64)high << 32) | low) == digest;
	if (matches && table_fd)
		*table_fd = fd;
	else
		close(fd);
	return matches;
}
