// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Pool-table lookups for BPF_PROG_TEST_RUN (tools/bench_hash.c): the key of
 * each run (the same, or a new one from a per-CPU count), hashed as the
 * router hashes routing keys, looked up in a table reached as the router
 * reaches its pools (an inner array of a hash of maps), the answer stored.
 * hl_floor does all of it but the table lookup; hl_maglev reads today's
 * Maglev table (pick_from_pool's first probe); hl_dxhash walks a DxHash
 * table (include/tether/dxhash.h). Container records and backends are not
 * read: the bench compares the tables, the rest of the path is the same. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "tether/dxhash.h"
#include "tether/hash.h"

#include "hash_lookup.h"

struct hl_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, HL_MAX_TABLES);
	__type(key, __u64);
	__array(values, struct hl_table);
} hl_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hl_config);
} hl_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hl_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hl_result);
} hl_result SEC(".maps");

/* The run's key hash and its table, or 0. */
static __always_inline void *run_table(__u64 *hash)
{
	__u32 zero = 0;
	struct hl_config *config = bpf_map_lookup_elem(&hl_config, &zero);

	if (!config)
		return 0;
	__u64 key = config->key;

	if (config->vary) {
		__u64 *count = bpf_map_lookup_elem(&hl_count, &zero);

		if (count) {
			key += *count;
			*count += 1;
		}
	}
	*hash = tether_hash_key(config->table_id, key);
	return bpf_map_lookup_elem(&hl_tables, &config->table_id);
}

static __always_inline int store(__u32 slot)
{
	__u32 zero = 0;
	struct hl_result *result = bpf_map_lookup_elem(&hl_result, &zero);

	if (result) {
		result->slot = slot;
		result->runs++;
	}
	return XDP_PASS;
}

/* Today's pick_from_pool, first probe: entry 1 + hash % M. */
static __always_inline __u32 maglev_pick(void *table, __u64 hash)
{
	__u32 index = 0;
	__u32 *size = bpf_map_lookup_elem(table, &index);

	if (!size || *size == 0)
		return HL_NO_SLOT;
	index = tether_pool_index(hash, *size);
	__u32 *slot = bpf_map_lookup_elem(table, &index);

	return slot ? *slot : HL_NO_SLOT;
}

/* The first warm bucket of the key's walk within DXHASH_PROBES steps, else
 * its fallback cell: as dxhash_lookup() in user/lib/dataplane/dxhash.c. */
static __always_inline __u32 dxhash_pick(void *table, __u64 hash)
{
	__u32 index = DXHASH_LEVELS_INDEX;
	__u32 *value = bpf_map_lookup_elem(table, &index);

	if (!value || *value > DXHASH_MAX_LEVELS)
		return HL_NO_SLOT;
	__u32 levels = *value;
	__u64 steps = 0;

	for (int probe = 0; probe < DXHASH_PROBES; probe++) {
		index = DXHASH_BUCKET_INDEX(dxhash_walk_next(hash, levels, &steps));
		value = bpf_map_lookup_elem(table, &index);
		if (value && *value != DXHASH_NONE)
			return *value;
	}
	index = DXHASH_CELL_INDEX(levels, dxhash_fallback_cell(hash, levels));
	value = bpf_map_lookup_elem(table, &index);
	return value ? *value : HL_NO_SLOT;
}

SEC("xdp")
int hl_floor(struct xdp_md *ctx)
{
	__u64 hash = 0;
	void *table = run_table(&hash);

	(void)ctx;
	return store(table ? (__u32)hash : HL_NO_SLOT);
}

SEC("xdp")
int hl_maglev(struct xdp_md *ctx)
{
	__u64 hash = 0;
	void *table = run_table(&hash);

	(void)ctx;
	return store(table ? maglev_pick(table, hash) : HL_NO_SLOT);
}

SEC("xdp")
int hl_dxhash(struct xdp_md *ctx)
{
	__u64 hash = 0;
	void *table = run_table(&hash);

	(void)ctx;
	return store(table ? dxhash_pick(table, hash) : HL_NO_SLOT);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
