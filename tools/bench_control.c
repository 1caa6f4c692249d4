// SPDX-License-Identifier: MIT
/* Control plane and memory figures, measured in one run:
 *  - Maglev table build time against pool size, and the share of keys that
 *    move when one container leaves or joins;
 *  - lifecycle operations per second (container add, up, del) through the
 *    lifecycle interface on the real maps, pool swaps included;
 *  - restart: opening the pinned maps and adopting a million containers, what
 *    tetherd does before it serves its socket;
 *  - kernel memory of every map (memlock in fdinfo), per container, per
 *    affinity entry and per function pool.
 *
 *   bench_control [--quick] [--json FILE]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench_report.h"
#include "dataplane/dataplane.h"
#include "lifecycle.h"
#include "tether/hash.h"
#include "tether_xdp.skel.h"

static __u64 clock_ns(void *ctx)
{
	(void)ctx;
	return monotonic_ns();
}

/* --- Maglev --- */

static double moved_share(const __u32 *a, const __u32 *b, __u32 size)
{
	__u32 moved = 0;

	for (__u32 i = 0; i < size; i++)
		moved += a[i] != b[i];
	return (double)moved / size;
}

static void bench_maglev(size_t n)
{
	struct maglev_member *members = calloc(n + 1, sizeof(*members));
	__u32 size = maglev_table_size(n + 1); /* n and n + 1 share a band here */

	if (maglev_table_size(n) != size)
		size = maglev_table_size(n);
	__u32 *before = calloc(size, sizeof(*before)), *after = calloc(size, sizeof(*after));

	for (size_t i = 0; i <= n; i++)
		members[i] = (struct maglev_member){ tether_mix64(i + 1), (__u32)i };
	int rounds = n >= 10000 ? 3 : 20;
	__u64 start = monotonic_ns();

	for (int r = 0; r < rounds; r++)
		if (maglev_build(members, n, before, size))
			bench_fail("maglev_build", EINVAL);
	double build_ms = (monotonic_ns() - start) / 1e6 / rounds;
	char name[96];

	snprintf(name, sizeof(name), "maglev build, %zu containers (%u entries)", n, size);
	bench_report(name, build_ms, "ms");
	maglev_build(members, n - 1, after, size);
	snprintf(name, sizeof(name), "keys moved, 1 of %zu leaves (ideal %.2f%%)", n, 100.0 / n);
	bench_report(name, 100 * moved_share(before, after, size), "%");
	free(members);
	free(before);
	free(after);
}

/* --- lifecycle operations --- */

static void bench_lifecycle_ops(struct dataplane *dp, __u32 count)
{
	struct lifecycle lc;
	struct lifecycle_config config = { .heartbeat_ms = 60000, .drain_ms = 1000,
					   .now_ns = clock_ns };
	__u8 addr[16], mac[6] = { 2, 0, 0, 0, 0, 1 };
	__u32 id, *slots = calloc(count, sizeof(*slots));
	struct tether_token token;

	addr_parse("203.0.113.2", addr);
	if (lifecycle_init(&lc, dp, &config) ||
	    lc_backend_add(&lc, "vm1", addr, mac, "lo", 0, 0, &id))
		bench_fail("lifecycle set-up", EINVAL);
	/* Each request as tetherd handles it: the change, then the pool swap
	 * before the answer. 50 functions, so swaps are per function. */
	__u64 start = monotonic_ns();

	for (__u32 i = 0; i < count; i++) {
		if (lc_container_add(&lc, 100 + i % 50, "vm1", "", CONTAINER_STARTING, &slots[i],
				     &token))
			bench_fail(lifecycle_error(&lc), EINVAL);
		lifecycle_flush_pools(&lc);
	}
	double add_s = (monotonic_ns() - start) / 1e9;

	start = monotonic_ns();
	for (__u32 i = 0; i < count; i++) {
		lc_container_up(&lc, slots[i]);
		lifecycle_flush_pools(&lc);
	}
	double up_s = (monotonic_ns() - start) / 1e9;

	start = monotonic_ns();
	for (__u32 i = 0; i < count; i++) {
		lc_container_del(&lc, slots[i]);
		lifecycle_flush_pools(&lc);
	}
	double del_s = (monotonic_ns() - start) / 1e9;

	bench_report("container add (starting), per second", count / add_s, "ops/s");
	bench_report("container up (pool swap each), per second", count / up_s, "ops/s");
	bench_report("container del (pool swap each), per second", count / del_s, "ops/s");
	lc_backend_del(&lc, "vm1");
	lifecycle_free(&lc);
	free(slots);
}

/* --- memory --- */

static __u64 map_memlock(int fd)
{
	char path[64], line[256];
	__u64 bytes = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *info = fopen(path, "r");

	while (info && fgets(line, sizeof(line), info))
		if (sscanf(line, "memlock: %llu", (unsigned long long *)&bytes) == 1)
			break;
	if (info)
		fclose(info);
	return bytes;
}

static void bench_memory(struct dataplane *dp, __u32 pool_members)
{
	struct bpf_map *map;
	__u64 total = 0;

	bpf_object__for_each_map(map, dp->skel->obj) {
		char name[96];
		__u64 bytes = map_memlock(bpf_map__fd(map));

		total += bytes;
		snprintf(name, sizeof(name), "map %s", bpf_map__name(map));
		bench_report(name, bytes / 1048576.0, "MiB");
	}
	bench_report("all maps (pool tables apart)", total / 1048576.0, "MiB");
	bench_report("per container slot (containers + container_stats)",
	       (double)(map_memlock(bpf_map__fd(dp->skel->maps.containers)) +
			map_memlock(bpf_map__fd(dp->skel->maps.container_stats))) /
		       TETHER_MAX_CONTAINERS,
	       "bytes");
	bench_report("per affinity entry", (double)map_memlock(bpf_map__fd(dp->skel->maps.affinity)) /
					     TETHER_MAX_AFFINITY,
	       "bytes");
	/* A pool table: one array sized to its band. */
	struct maglev_member *members = calloc(pool_members, sizeof(*members));

	for (__u32 i = 0; i < pool_members; i++)
		members[i] = (struct maglev_member){ i + 1, i };
	if (pool_replace(dp, 424242, members, pool_members))
		bench_fail("pool_replace", EINVAL);
	__u32 table_id;

	bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.pools), &(__u64){ 424242 }, &table_id);
	int table_fd = bpf_map_get_fd_by_id(table_id);
	char name[96];

	snprintf(name, sizeof(name), "per function pool of %u containers", pool_members);
	bench_report(name, map_memlock(table_fd) / 1024.0, "KiB");
	close(table_fd);
	pool_replace(dp, 424242, NULL, 0);
	free(members);
}

/* --- restart --- */

static void bench_restart(__u32 containers)
{
	char pin_root[96];
	struct dataplane dp;

	snprintf(pin_root, sizeof(pin_root), "/sys/fs/bpf/tether-bench-restart-%d", getpid());
	struct dataplane_opts opts = { .pin_root = pin_root };

	if (dataplane_open(&dp, &opts))
		bench_fail("dataplane_open", EINVAL);
	struct backend_record backend = { .state = BACKEND_UP, .ifindex = 1 };

	backend_set(&dp, 1, &backend);
	struct backend_meta meta = { .name = "vm1", .iface = "lo", .heartbeat_ms = 60000 };

	bpf_map_update_elem(bpf_map__fd(dp.skel->maps.backend_meta), &(__u32){ 1 }, &meta, 0);
	for (__u32 slot = 0; slot < containers; slot++) {
		struct container_meta name = {};

		snprintf(name.name, sizeof(name.name), "c%u", slot); /* as agents name them */
		if (container_install(&dp, slot, 1 + slot / 100, 1, CONTAINER_WARM, NULL) ||
		    bpf_map_update_elem(bpf_map__fd(dp.skel->maps.container_meta), &slot, &name, 0))
			bench_fail("container_install", EINVAL);
	}
	dataplane_close(&dp);

	/* First with no pool tables pinned (each is built), then the restart an
	 * operator sees: the pinned tables are right and kept. */
	static const char *const cases[] = { "every pool table built", "tables kept" };

	for (int run = 0; run < 2; run++) {
		struct lifecycle lc;
		struct lifecycle_config config = { .heartbeat_ms = 60000, .drain_ms = 1000,
						   .now_ns = clock_ns };
		__u64 start = monotonic_ns();

		if (dataplane_open(&dp, &opts) || lifecycle_init(&lc, &dp, &config) ||
		    lifecycle_adopt(&lc))
			bench_fail("adopting", EINVAL);
		double ms = (monotonic_ns() - start) / 1e6;
		char name[128];

		snprintf(name, sizeof(name), "restart: open + adopt %u containers, %u pools (%s)",
			 containers, g_hash_table_size(lc.functions), cases[run]);
		bench_report(name, ms, "ms");
		lifecycle_free(&lc);
		if (run == 0)
			dataplane_close(&dp);
	}
	dataplane_unpin(&dp);
	dataplane_close(&dp);
	rmdir(pin_root);
}

int main(int argc, char **argv)
{
	int quick = 0, option;
	const char *json_path = NULL;
	static const struct option options[] = { { "quick", no_argument, 0, 'q' },
						 { "json", required_argument, 0, 'j' },
						 { 0, 0, 0, 0 } };

	while ((option = getopt_long(argc, argv, "qj:", options, NULL)) != -1) {
		if (option == 'q')
			quick = 1;
		else if (option == 'j')
			json_path = optarg;
		else
			return 2;
	}
	if (unshare(CLONE_NEWNET) || system("ip link set lo up"))
		bench_fail("a private network namespace (run as root)", errno);
	bench_report_open(json_path, 52);
	printf("%-52s %14s\n", "control plane and memory", "value");
	static const size_t pools[] = { 10, 100, 1000, 10000 };

	for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++)
		bench_maglev(pools[i]);

	struct dataplane dp;

	if (dataplane_open(&dp, NULL))
		bench_fail("dataplane_open", EINVAL);
	bench_lifecycle_ops(&dp, quick ? 200 : 2000);
	bench_memory(&dp, 100);
	dataplane_close(&dp);
	bench_restart(quick ? 10000 : 1000000);
	bench_report_close();
	return 0;
}
