/* SPDX-License-Identifier: MIT */
/* Every map of the XDP program. Keys and values come from include/tether/maps.h;
 * every map is pinned by name under the pin root by the loader (user/lib/dataplane/loader.c). */
#ifndef TETHER_BPF_MAPS_H
#define TETHER_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "tether/maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TETHER_MAX_SERVICES);
	__type(key, struct service_key);
	__type(value, struct service_info);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TETHER_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_record);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TETHER_MAX_CONTAINERS);
	__type(key, __u32);
	__type(value, struct container_record);
} containers SEC(".maps");

/* Sized by the loader to (possible CPUs) x TETHER_MAX_CONTAINERS, indexed
 * cpu * TETHER_MAX_CONTAINERS + slot: see include/tether/maps.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TETHER_MAX_CONTAINERS);
	__type(key, __u32);
	__type(value, struct container_counters);
} container_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TETHER_MAX_AFFINITY);
	__type(key, struct affinity_key);
	__type(value, struct affinity_value);
} affinity SEC(".maps");

/* Template of a pool table; real tables are sized to their pool. */
struct pool_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, TETHER_MAX_FUNCTIONS);
	__type(key, __u64);
	__array(values, struct pool_table);
} pools SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, TETHER_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tether_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TETHER_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_meta);
} backend_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, TETHER_MAX_CONTAINERS);
	__type(key, __u32);
	__type(value, struct container_meta);
} container_meta SEC(".maps");

/* Read and written by tetherd only (include/tether/maps.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, TETHER_MAX_BACKENDS);
	__type(key, struct allowed_key);
	__type(value, struct allowed_functions);
} allowed_funcs SEC(".maps");
/* Admission to the slow path: see include/tether/maps.h and bpf/admission.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct admit_config);
} admit_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ADMIT_BUCKETS);
	__type(key, __u32);
	__type(value, struct admit_shared_bucket);
} admit_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TETHER_MAX_ADMIT_FUNCTIONS);
	__type(key, __u64);
	__type(value, struct admit_bucket);
} admit_functions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, TETHER_MAX_FUNCTIONS);
	__type(key, __u64);
	__type(value, struct function_settings);
} functions SEC(".maps");

/* Requests in flight per container slot (include/tether/maps.h). Mmapable:
 * the slow path reserves room with the same atomics as the program. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, TETHER_MAX_CONTAINERS);
	__type(key, __u32);
	__type(value, struct container_load);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TETHER_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_liveness);
} liveness SEC(".maps");

/* A container's secret while it is warm and unlimited (include/tether/maps.h):
 * what a key hit checks instead of the record. Mmapable: userspace rebuilds a
 * million words at start-up in memory, not in a million updates. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, TETHER_MAX_CONTAINERS);
	__type(key, __u32);
	__type(value, __u64);
} container_live SEC(".maps");

/* Outer source addresses of routed backends' packets (bpf/encap.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct encap_config);
} encap_config SEC(".maps");

/* The FIB's answers for routed backends, per CPU (bpf/encap.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TETHER_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct nexthop_entry);
} nexthop_cache SEC(".maps");

#endif
