// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

/* A table map sized to its pool: entry 0 holds the size M, 1..M the slots. */
static int create_table_map(__u64 function_id, const __u32 *table, __u32 size)
{
	char name[BPF_OBJ_NAME_LEN];
	LIBBPF_OPTS(bpf_map_create_opts, create, .map_flags = BPF_F_INNER_MAP);

	snprintf(name, sizeof(name), "pool_%llx", (unsigned long long)function_id);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, sizeof(__u32), sizeof(__u32), size + 1,
				&create);
	if (fd < 0)
		return -errno;

	__u32 *keys = malloc((size_t)(size + 1) * sizeof(*keys));
	__u32 *values = malloc((size_t)(size + 1) * sizeof(*values));
	__u32 count = size + 1;
	int err = 0;

	if (!keys || !values) {
		err = -ENOMEM;
		goto out;
	}
	for (__u32 i = 0; i <= size; i++) {
		keys[i] = i;
		values[i] = i == TETHER_POOL_SIZE_INDEX ? size : table[i - 1];
	}
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

int pool_replace(struct dataplane *dp, __u64 function_id, const struct maglev_member *members,
		 size_t n)
{
	int pools_fd = bpf_map__fd(dp->skel->maps.pools);

	if (function_id == 0)
		return -EINVAL;
	if (n == 0) {
		if (bpf_map_delete_elem(pools_fd, &function_id) && errno != ENOENT)
			return -errno;
		return 0;
	}

	__u32 size = maglev_table_size(n);
	__u32 *table = malloc((size_t)size * sizeof(*table));

	if (!table)
		return -ENOMEM;
	int err = maglev_build(members, n, table, size);
	int table_fd = err ? err : create_table_map(function_id, table, size);

	free(table);
	if (table_fd < 0)
		return table_fd;
	/* One pointer update: a packet sees the old table or the new one. */
	if (bpf_map_update_elem(pools_fd, &function_id, &table_fd, BPF_ANY))
		err = -errno;
	close(table_fd);
	return err;
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
