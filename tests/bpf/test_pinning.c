// SPDX-License-Identifier: MIT
/* Pinning and adoption against the real kernel and bpffs: maps pinned under
 * a unique pin root survive the process that made them, a new dataplane_open
 * adopts them with their state, bpftool shows named fields, a map of the wrong
 * shape is refused (an earlier version's stats map, with fewer counters, is
 * carried over instead), a pin root of the version before admission gets the
 * admission maps, an affinity map of the version before issue 15 is carried
 * over into the new value shape, container_live follows the records (one
 * pinned without BPF_F_MMAPABLE is replaced), and bpffs is mounted at a pin root that has none. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>

#include "dataplane/dataplane.h"
#include "tether_xdp.skel.h"
#include "xdp_harness.h"

static char pin_root[128];

static void remove_pin_root(void)
{
	char command[256];

	snprintf(command, sizeof(command), "rm -rf '%s'", pin_root);
	if (system(command))
		fprintf(stderr, "could not remove %s\n", pin_root);
}

static int setup(void **state)
{
	(void)state;
	snprintf(pin_root, sizeof(pin_root), "/sys/fs/bpf/tether-test-pin-%d-%u", getpid(),
		 (unsigned)monotonic_ns());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	remove_pin_root();
	return 0;
}

static void test_adopts_pinned_state(void **state)
{
	struct dataplane first, second;
	struct dataplane_opts opts = { .pin_root = pin_root };
	struct tether_token token;
	struct container_record record;
	(void)state;

	assert_int_equal(dataplane_open(&first, &opts), 0);
	assert_false(first.adopted);
	assert_int_equal(container_install(&first, 17, 4242, 3, CONTAINER_WARM, &token), 0);
	dataplane_close(&first);

	assert_int_equal(dataplane_open(&second, &opts), 0);
	assert_true(second.adopted);
	assert_int_equal(container_get(&second, 17, &record), 0);
	assert_int_equal(record.function_id, 4242);
	assert_int_equal(record.backend_id, 3);
	assert_memory_equal(&record.secret, &token.secret, sizeof(token.secret));
	dataplane_close(&second);
}

/* The pins of the version before concurrency limits: no inflight, liveness
 * or functions map, containers' records with 0 where the limit now is. This
 * version adopts the rest, makes and pins the two, and reads the old records
 * as unlimited. */
static void test_adopts_pins_of_the_version_before_limits(void **state)
{
	struct dataplane first, second;
	struct dataplane_opts opts = { .pin_root = pin_root };
	struct tether_token token;
	struct container_record record;
	struct container_load load;
	char path[256];
	(void)state;

	assert_int_equal(dataplane_open(&first, &opts), 0);
	assert_int_equal(container_install(&first, 17, 4242, 3, CONTAINER_WARM, &token), 0);
	dataplane_close(&first);
	snprintf(path, sizeof(path), "%s/%s", pin_root, TETHER_MAP_INFLIGHT);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/%s", pin_root, TETHER_MAP_LIVENESS);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/%s", pin_root, TETHER_MAP_FUNCTIONS);
	assert_int_equal(unlink(path), 0);

	assert_int_equal(dataplane_open(&second, &opts), 0);
	assert_true(second.adopted);
	assert_int_equal(container_get(&second, 17, &record), 0);
	assert_int_equal(record.function_id, 4242);
	assert_int_equal(record.limit, 0);
	assert_int_equal(container_load_read(&second, 17, &load), 0);
	assert_int_equal(load.started, 0);
	snprintf(path, sizeof(path), "%s/%s", pin_root, TETHER_MAP_INFLIGHT);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/%s", pin_root, TETHER_MAP_LIVENESS);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/%s", pin_root, TETHER_MAP_FUNCTIONS);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(container_set_limit(&second, 17, 2), 0);
	assert_int_equal(container_take_room(&second, 17, 2), 1);
	dataplane_close(&second);

	/* And the next start adopts those too, counts and all. */
	assert_int_equal(dataplane_open(&second, &opts), 0);
	assert_int_equal(container_get(&second, 17, &record), 0);
	assert_int_equal(record.limit, 2);
	assert_int_equal(container_load_read(&second, 17, &load), 0);
	assert_int_equal(load.started, 1);
	dataplane_close(&second);
}

static struct bpf_map_info pinned_map_info(const char *map);

static __u64 live_word(struct dataplane *dp, __u32 slot)
{
	__u64 word = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.container_live), &slot,
					     &word), 0);
	return word;
}

/* The pins of the version before issue 15: an affinity map of 8-byte values
 * (slot and generation) and no container_live. Its entries are carried into
 * this version's map: with the container's secret and backend where the entry
 * names the live container of its own function, without them (the record's
 * way) where it names a replaced container or one of another function. */
static void test_carries_affinity_of_the_version_before_over(void **state)
{
	struct dataplane first, second;
	struct dataplane_opts opts = { .pin_root = pin_root };
	struct tether_token token;
	struct container_record record;
	char path[256];
	(void)state;

	assert_int_equal(dataplane_open(&first, &opts), 0);
	assert_int_equal(container_install(&first, 17, 4242, 3, CONTAINER_WARM, &token), 0);
	assert_int_equal(container_get(&first, 17, &record), 0);
	dataplane_close(&first);
	snprintf(path, sizeof(path), "%s/%s", pin_root, TETHER_MAP_AFFINITY);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/%s", pin_root, TETHER_MAP_CONTAINER_LIVE);
	assert_int_equal(unlink(path), 0);

	LIBBPF_OPTS(bpf_map_create_opts, lru);
	int fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "affinity", sizeof(struct affinity_key),
				sizeof(struct affinity_value_v1), TETHER_MAX_AFFINITY, &lru);
	struct affinity_key live = { 4242, 5 }, stale = { 4242, 6 }, foreign = { 999, 7 };
	struct affinity_value_v1 named = { 17, record.generation },
				 replaced = { 17, record.generation - 1 };

	assert_true(fd >= 0);
	assert_int_equal(bpf_map_update_elem(fd, &live, &named, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(fd, &stale, &replaced, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(fd, &foreign, &named, BPF_ANY), 0);
	snprintf(path, sizeof(path), "%s/%s", pin_root, TETHER_MAP_AFFINITY);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);

	for (int start = 0; start < 2; start++) {
		/* The first start carries them over, the next adopts them as they are. */
		struct affinity_value value;
		int affinity;

		assert_int_equal(dataplane_open(&second, &opts), 0);
		assert_true(second.adopted);
		assert_int_equal(pinned_map_info(TETHER_MAP_AFFINITY).value_size, sizeof(struct affinity_value));
		affinity = bpf_map__fd(second.skel->maps.affinity);
		assert_int_equal(bpf_map_lookup_elem(affinity, &live, &value), 0);
		assert_int_equal(value.slot, 17);
		assert_int_equal(value.generation, record.generation);
		assert_true(value.secret == record.secret);
		assert_int_equal(value.backend_id, 3);
		assert_int_equal(bpf_map_lookup_elem(affinity, &stale, &value), 0);
		assert_int_equal(value.generation, record.generation - 1);
		assert_true(value.secret == 0);
		assert_int_equal(bpf_map_lookup_elem(affinity, &foreign, &value), 0);
		assert_int_equal(value.slot, 17);
		assert_true(value.secret == 0);
		assert_true(live_word(&second, 17) == record.secret);
		dataplane_close(&second);
	}
}

/* container_live holds a container's secret while it is warm without a
 * limit, follows every change of its record, and is rebuilt from the records
 * when pinned maps are adopted (a word left wrong is not trusted). */
static void test_container_live_follows_records(void **state)
{
	struct dataplane dp;
	struct dataplane_opts opts = { .pin_root = pin_root };
	struct tether_token token;
	struct container_record record;
	__u32 slot = 21, other = 22;
	__u64 wrong = 0x1234;
	(void)state;

	assert_int_equal(dataplane_open(&dp, &opts), 0);
	assert_int_equal(container_install(&dp, slot, 77, 1, CONTAINER_STARTING, &token), 0);
	assert_int_equal(container_get(&dp, slot, &record), 0);
	assert_true(live_word(&dp, slot) == 0);
	assert_int_equal(container_set_state(&dp, slot, CONTAINER_WARM, 0), 0);
	assert_true(live_word(&dp, slot) == record.secret);
	assert_int_equal(container_set_limit(&dp, slot, 2), 0);
	assert_true(live_word(&dp, slot) == 0);
	assert_int_equal(container_set_limit(&dp, slot, 0), 0);
	assert_true(live_word(&dp, slot) == record.secret);
	assert_int_equal(container_set_state(&dp, slot, CONTAINER_DRAINING, monotonic_ns() + 1000000000ull), 0);
	assert_true(live_word(&dp, slot) == 0);
	assert_int_equal(container_set_state(&dp, slot, CONTAINER_WARM, 0), 0);
	assert_true(live_word(&dp, slot) == record.secret);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(dp.skel->maps.container_live), &other,
					     &wrong, BPF_ANY), 0);
	dataplane_close(&dp);

	assert_int_equal(dataplane_open(&dp, &opts), 0);
	assert_true(live_word(&dp, slot) == record.secret);
	assert_true(live_word(&dp, other) == 0);
	assert_int_equal(container_remove(&dp, slot), 0);
	assert_true(live_word(&dp, slot) == 0);
	dataplane_close(&dp);
}

/* What the kernel says of the map pinned as MAP under the pin root. */
static struct bpf_map_info pinned_map_info(const char *map)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", pin_root, map);
	int fd = bpf_obj_get(path);

	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	return info;
}

/* The first builds of issue 15 pinned container_live without BPF_F_MMAPABLE.
 * Adopting those pins replaces it: the old map is cleared (a program still
 * attached to it takes every key hit the record's way), its pin gives way to
 * an mmapable one holding the words the records call for, and the next start
 * adopts that one as it is. */
static void test_replaces_container_live_pinned_without_mmap(void **state)
{
	struct dataplane first, second;
	struct dataplane_opts opts = { .pin_root = pin_root };
	struct tether_token token;
	struct container_record record;
	__u32 warm = 17, empty = 18;
	__u64 stale = 0x1234, word = 1;
	char path[256];
	(void)state;

	assert_int_equal(dataplane_open(&first, &opts), 0);
	assert_int_equal(container_install(&first, warm, 4242, 3, CONTAINER_WARM, &token), 0);
	assert_int_equal(container_get(&first, warm, &record), 0);
	dataplane_close(&first);
	snprintf(path, sizeof(path), "%s/%s", pin_root, TETHER_MAP_CONTAINER_LIVE);
	assert_int_equal(unlink(path), 0);

	int older = bpf_map_create(BPF_MAP_TYPE_ARRAY, "container_live", sizeof(__u32),
				   sizeof(__u64), TETHER_MAX_CONTAINERS, NULL);

	assert_true(older >= 0);
	assert_int_equal(bpf_map_update_elem(older, &warm, &record.secret, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(older, &empty, &stale, BPF_ANY), 0);
	assert_int_equal(bpf_obj_pin(older, path), 0);
	assert_false(pinned_map_info(TETHER_MAP_CONTAINER_LIVE).map_flags & BPF_F_MMAPABLE);

	for (int start = 0; start < 2; start++) {
		/* The first start replaces it, the next adopts the replacement. */
		assert_int_equal(dataplane_open(&second, &opts), 0);
		assert_true(second.adopted);
		assert_true(pinned_map_info(TETHER_MAP_CONTAINER_LIVE).map_flags & BPF_F_MMAPABLE);
		assert_true(live_word(&second, warm) == record.secret);
		assert_true(live_word(&second, empty) == 0);
		assert_int_equal(container_set_state(&second, warm, CONTAINER_DRAINING,
						     monotonic_ns() + 1000000000ull), 0);
		assert_true(live_word(&second, warm) == 0);
		assert_int_equal(container_set_state(&second, warm, CONTAINER_WARM, 0), 0);
		assert_true(live_word(&second, warm) == record.secret);
		dataplane_close(&second);
	}
	assert_int_equal(bpf_map_lookup_elem(older, &warm, &word), 0);
	assert_true(word == 0);
	assert_int_equal(bpf_map_lookup_elem(older, &empty, &word), 0);
	assert_true(word == 0);
	close(older);
}

/* The pins of the version before the packet trace: no trace_config,
 * trace_scratch or trace_ring. This version makes and pins them, off; the
 * next start adopts them, a trace left on included (tetherd switches that
 * off itself, test_trace.sh). */
static void test_adopts_pins_of_the_version_before_the_trace(void **state)
{
	static const char *const maps[] = { TETHER_MAP_TRACE_CONFIG, TETHER_MAP_TRACE_SCRATCH,
					    TETHER_MAP_TRACE_RING };
	struct dataplane first, second;
	struct dataplane_opts opts = { .pin_root = pin_root };
	struct trace_config config;
	char path[256];
	(void)state;

	assert_int_equal(dataplane_open(&first, &opts), 0);
	dataplane_close(&first);
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_root, maps[i]);
		assert_int_equal(unlink(path), 0);
	}
	assert_int_equal(dataplane_open(&second, &opts), 0);
	assert_true(second.adopted);
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_root, maps[i]);
		assert_int_equal(access(path, F_OK), 0);
	}
	assert_int_equal(trace_config_get(&second, &config), 0);
	assert_int_equal(config.enabled, 0);
	config.enabled = 1;
	assert_int_equal(trace_config_set(&second, &config), 0);
	dataplane_close(&second);

	assert_int_equal(dataplane_open(&second, &opts), 0);
	assert_int_equal(trace_config_get(&second, &config), 0);
	assert_int_equal(config.enabled, 1);
	dataplane_close(&second);
}

static int bpftool_dump_contains(const char *map, const char *needle)
{
	char command[512], line[512];
	int found = 0;

	snprintf(command, sizeof(command), "bpftool map dump pinned '%s/%s' 2>&1", pin_root, map);
	FILE *out = popen(command, "r");

	assert_non_null(out);
	while (fgets(line, sizeof(line), out))
		if (strstr(line, needle))
			found = 1;
	pclose(out);
	return found;
}

static void test_bpftool_prints_named_fields(void **state)
{
	struct dataplane dp;
	struct dataplane_opts opts = { .pin_root = pin_root };
	struct backend_record backend = { .state = BACKEND_UP, .ifindex = 1 };
	struct tether_token token;
	__u8 vip[16];
	(void)state;

	assert_int_equal(dataplane_open(&dp, &opts), 0);
	assert_int_equal(addr_parse("198.51.100.7", vip), 0);
	assert_int_equal(service_add(&dp, vip, 7777, 1), 0);
	assert_int_equal(backend_set(&dp, 1, &backend), 0);
	assert_int_equal(container_install(&dp, 2, 77, 1, CONTAINER_WARM, &token), 0);
	struct affinity_key key = { .function_id = 77, .routing_key = 5 };
	struct affinity_value value = { .slot = 2, .generation = 1 };

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(dp.skel->maps.affinity), &key, &value,
					     BPF_ANY), 0);
	assert_true(bpftool_dump_contains("stats", "\"token_hit\""));
	assert_true(bpftool_dump_contains("containers", "\"function_id\": 77"));
	assert_true(bpftool_dump_contains("backends", "\"heartbeat_expiry_ns\""));
	assert_true(bpftool_dump_contains("affinity", "\"routing_key\": 5"));
	assert_true(bpftool_dump_contains("services", "\"port\""));
	assert_true(bpftool_dump_contains("container_stats", "\"packets\""));
	dataplane_close(&dp);
}

static void test_refuses_map_of_wrong_shape(void **state)
{
	struct dataplane dp;
	struct dataplane_opts opts = { .pin_root = pin_root };
	char path[256];
	(void)state;

	assert_int_equal(pin_root_prepare(pin_root), 0);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "stats", 4, 8, 1, NULL);

	assert_true(fd >= 0);
	snprintf(path, sizeof(path), "%s/stats", pin_root);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);
	assert_int_equal(dataplane_open(&dp, &opts), -EINVAL);
}

/* Pins a per-CPU "stats" map of value_size bytes, as an earlier (or later)
 * version would have; with counts, when value_size is whole counters:
 * counter i of CPU c holds 1000 * c + i + 1. */
static void pin_stats_of_size(__u32 value_size)
{
	int cpus = libbpf_num_possible_cpus();
	size_t stride = (value_size + 7) / 8 * 8;
	char path[256];
	__u32 zero = 0;

	assert_true(cpus > 0);
	assert_int_equal(pin_root_prepare(pin_root), 0);
	int fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "stats", 4, value_size, 1, NULL);

	assert_true(fd >= 0);
	if (value_size % 8 == 0) {
		__u64 *values = calloc((size_t)cpus, stride);

		assert_non_null(values);
		for (int cpu = 0; cpu < cpus; cpu++)
			for (size_t i = 0; i < value_size / 8; i++)
				values[(size_t)cpu * stride / 8 + i] = 1000ull * cpu + i + 1;
		assert_int_equal(bpf_map_update_elem(fd, &zero, values, BPF_ANY), 0);
		free(values);
	}
	snprintf(path, sizeof(path), "%s/stats", pin_root);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);
}


/* Counters are only appended: the stats map of a version with fewer of them
 * is carried over, its counts kept, the new counters at 0, and this
 * version's map pinned in its place. */
static void carries_over(size_t older)
{
	const size_t counters = sizeof(struct tether_stats) / 8;
	int cpus = libbpf_num_possible_cpus();
	struct dataplane dp;
	struct dataplane_opts opts = { .pin_root = pin_root };
	struct tether_stats total;

	pin_stats_of_size((__u32)(older * 8));
	assert_int_equal(dataplane_open(&dp, &opts), 0);
	assert_true(dp.adopted);
	assert_int_equal(stats_read(&dp, &total), 0);
	for (size_t i = 0; i < counters; i++) {
		__u64 want = 0;

		for (int cpu = 0; i < older && cpu < cpus; cpu++)
			want += 1000ull * cpu + i + 1;
		assert_int_equal(((const __u64 *)&total)[i], want);
	}
	assert_int_equal(pinned_map_info("stats").value_size, sizeof(struct tether_stats));
	dataplane_close(&dp);

	/* The next start adopts it as it is. */
	struct tether_stats again;

	assert_int_equal(dataplane_open(&dp, &opts), 0);
	assert_int_equal(stats_read(&dp, &again), 0);
	assert_memory_equal(&again, &total, sizeof(total));
	dataplane_close(&dp);
}

/* The version before retag_failed (issue 12). */
static void test_carries_stats_before_retag_over(void **state)
{
	(void)state;
	carries_over(offsetof(struct tether_stats, retag_failed) / 8);
}

/* The version before shed and shed_dropped (issue 17). */
static void test_carries_stats_before_shed_over(void **state)
{
	(void)state;
	carries_over(offsetof(struct tether_stats, shed) / 8);
}

/* A pin root of the version before admission: every map but the admission
 * maps, and a stats map without shed and shed_dropped. It is adopted (its
 * state kept), the admission maps are made and pinned, and nothing is
 * budgeted until tetherd sets it; what it sets is adopted by the next start. */
static void test_adopts_pins_of_version_before_admission(void **state)
{
	static const char *const new_maps[] = { TETHER_MAP_ADMIT_CONFIG, TETHER_MAP_ADMIT_BUCKETS,
						TETHER_MAP_ADMIT_FUNCTIONS };
	struct dataplane dp;
	struct dataplane_opts opts = { .pin_root = pin_root };
	struct admission_limits limits, set = { 500, 256, 5000, 2048, 100000, 10000 };
	struct tether_token token;
	struct container_record record;
	char path[256];
	(void)state;

	assert_int_equal(dataplane_open(&dp, &opts), 0);
	assert_int_equal(container_install(&dp, 9, 4243, 2, CONTAINER_WARM, &token), 0);
	dataplane_close(&dp);
	for (size_t i = 0; i < sizeof(new_maps) / sizeof(new_maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_root, new_maps[i]);
		assert_int_equal(unlink(path), 0);
	}
	snprintf(path, sizeof(path), "%s/stats", pin_root);
	assert_int_equal(unlink(path), 0);
	pin_stats_of_size(offsetof(struct tether_stats, shed));

	assert_int_equal(dataplane_open(&dp, &opts), 0);
	assert_true(dp.adopted);
	assert_int_equal(container_get(&dp, 9, &record), 0);
	assert_int_equal(record.function_id, 4243);
	for (size_t i = 0; i < sizeof(new_maps) / sizeof(new_maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_root, new_maps[i]);
		assert_int_equal(access(path, F_OK), 0);
	}
	assert_int_equal(admission_get(&dp, &limits), 0);
	assert_int_equal(limits.function_rate + limits.total_rate + limits.answer_rate, 0);
	assert_int_equal(admission_set(&dp, &set), 0);
	dataplane_close(&dp);

	assert_int_equal(dataplane_open(&dp, &opts), 0);
	assert_int_equal(admission_get(&dp, &limits), 0);
	assert_memory_equal(&limits, &set, sizeof(set));
	assert_true(bpftool_dump_contains(TETHER_MAP_ADMIT_CONFIG, "\"tolerance_ns\""));
	dataplane_close(&dp);
}

/* A stats map of a later version (more counters) or of no version (not whole
 * counters) is refused, and stays as it was. */
static void test_refuses_other_stats(void **state)
{
	static const __u32 sizes[] = { sizeof(struct tether_stats) + 8, sizeof(struct tether_stats) - 4 };
	struct dataplane dp;
	struct dataplane_opts opts = { .pin_root = pin_root };
	char command[300];
	(void)state;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		pin_stats_of_size(sizes[i]);
		assert_int_equal(dataplane_open(&dp, &opts), -EINVAL);
		assert_int_equal(pinned_map_info("stats").value_size, sizes[i]);
		snprintf(command, sizeof(command), "rm -f '%s/stats'", pin_root);
		assert_int_equal(system(command), 0);
	}
}

static void test_unpin_removes_every_pin(void **state)
{
	struct dataplane dp;
	struct dataplane_opts opts = { .pin_root = pin_root };
	char path[256];
	(void)state;

	assert_int_equal(dataplane_open(&dp, &opts), 0);
	snprintf(path, sizeof(path), "%s/containers", pin_root);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(dataplane_unpin(&dp), 0);
	assert_int_equal(access(path, F_OK), -1);
	dataplane_close(&dp);
}

static void test_mounts_bpffs_where_none_is(void **state)
{
	char dir[] = "/tmp/tether-test-pinroot-XXXXXX";
	struct statfs fs;
	(void)state;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(statfs(dir, &fs), 0);
	assert_int_not_equal(fs.f_type, BPF_FS_MAGIC);
	int err = pin_root_prepare(dir);
	int mounted = statfs(dir, &fs) == 0 && fs.f_type == BPF_FS_MAGIC;

	umount(dir);
	rmdir(dir);
	assert_int_equal(err, 0);
	assert_true(mounted);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_adopts_pinned_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopts_pins_of_the_version_before_limits, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_carries_affinity_of_the_version_before_over,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_container_live_follows_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replaces_container_live_pinned_without_mmap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_adopts_pins_of_the_version_before_the_trace,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bpftool_prints_named_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_map_of_wrong_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_carries_stats_before_retag_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_carries_stats_before_shed_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopts_pins_of_version_before_admission, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refuses_other_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpin_removes_every_pin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mounts_bpffs_where_none_is, setup, teardown),
	};

	harness_enter_private_netns();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
