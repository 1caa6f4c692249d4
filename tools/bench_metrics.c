// SPDX-License-Identifier: MIT
/* What a /metrics scrape costs tetherd with a large population: N containers
 * in F functions (starting, so no pool table is built), every per-CPU counter
 * entry of theirs set, an affinity map filled with A entries. Measured on the
 * real maps through tetherd's own code (user/tetherd/metrics*.c), without
 * HTTP:
 *   - the sweep of the per-container counters and the affinity map: its time
 *     from start to end, the time it spent reading, its slices and the
 *     longest one (how long tetherd's loop waits for it at most), against
 *     one unsliced batched read of the same maps;
 *   - writing the exposition with --metrics-functions 100 and 10,000: time,
 *     size and lines;
 *   - that the per-function counters add up to what was set.
 *
 *   bench_metrics [--quick] [--json FILE]
 *   (quick: 10,000 containers in 100 functions, 10,000 affinity entries;
 *    else 1,000,000 in 10,000 functions and 1,000,000 entries)
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
#include "metrics.h"
#include "metrics_sweep.h"
#include "tetherd.h"
#include "tether_xdp.skel.h"

#define SLICE_NS (2 * 1000000ull) /* as metrics_http.c */

static __u64 clock_ns(void *ctx)
{
	(void)ctx;
	return monotonic_ns();
}

/* Every CPU's entry of every container: packets 1, bytes 100. */
static void set_counters(struct dataplane *dp, __u32 containers, int cpus)
{
	__u32 chunk = 65536, *keys = calloc(chunk, sizeof(*keys));
	struct container_counters *values = calloc(chunk, sizeof(*values));
	int fd = bpf_map__fd(dp->skel->maps.container_stats);

	for (__u32 i = 0; i < chunk; i++)
		values[i] = (struct container_counters){ 1, 100 };
	for (int cpu = 0; cpu < cpus; cpu++)
		for (__u32 first = 0; first < containers; first += chunk) {
			__u32 n = MIN(chunk, containers - first);

			for (__u32 i = 0; i < n; i++)
				keys[i] = (__u32)cpu * TETHER_MAX_CONTAINERS + first + i;
			if (bpf_map_update_batch(fd, keys, values, &n, NULL))
				bench_fail("setting container_stats", errno);
		}
	free(keys);
	free(values);
}

static void fill_affinity(struct dataplane *dp, __u32 entries)
{
	__u32 chunk = 65536;
	struct affinity_key *keys = calloc(chunk, sizeof(*keys));
	struct affinity_value *values = calloc(chunk, sizeof(*values));
	int fd = bpf_map__fd(dp->skel->maps.affinity);

	for (__u32 first = 0; first < entries; first += chunk) {
		__u32 n = MIN(chunk, entries - first);

		for (__u32 i = 0; i < n; i++) {
			keys[i] = (struct affinity_key){ 1 + (first + i) % 10000, first + i };
			values[i] = (struct affinity_value){ .slot = first + i, .generation = 1 };
		}
		if (bpf_map_update_batch(fd, keys, values, &n, NULL))
			bench_fail("filling the affinity map", errno);
	}
	free(keys);
	free(values);
}

/* What a sweep would cost read in one go: every entry, unsliced. */
static double unsliced_read_ms(struct dataplane *dp, __u32 containers, int cpus)
{
	__u32 chunk = 65536, *keys = calloc(chunk, sizeof(*keys)), out;
	struct container_counters *values = calloc(chunk, sizeof(*values));
	struct affinity_key *akeys = calloc(chunk, sizeof(*akeys)), anext;
	struct affinity_value *avalues = calloc(chunk, sizeof(*avalues));
	__u64 start = monotonic_ns();

	for (int cpu = 0; cpu < cpus; cpu++)
		for (__u32 first = 0; first < containers; first += chunk) {
			__u32 n = MIN(chunk, containers - first);
			__u32 at = (__u32)cpu * TETHER_MAX_CONTAINERS + first, before = at - 1;

			if (bpf_map_lookup_batch(bpf_map__fd(dp->skel->maps.container_stats),
						 at ? &before : NULL, &out, keys, values, &n, NULL) &&
			    errno != ENOENT)
				bench_fail("reading container_stats", errno);
		}
	void *in = NULL;

	for (;;) {
		__u32 n = chunk;
		int err = bpf_map_lookup_batch(bpf_map__fd(dp->skel->maps.affinity), in, &anext,
					       akeys, avalues, &n, NULL);

		if (err)
			break;
		in = &anext;
	}
	double ms = (monotonic_ns() - start) / 1e6;

	free(keys);
	free(values);
	free(akeys);
	free(avalues);
	return ms;
}

static __u64 sum_family(const char *text, const char *family)
{
	__u64 sum = 0;
	size_t len = strlen(family);

	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		if (!strncmp(line, family, len) && line[len] == '{')
			sum += strtoull(strchr(line, '}') + 2, NULL, 10);
	return sum;
}

/* The process's resident memory, KiB. */
static long rss_kib(void)
{
	char line[128];
	long kib = -1;
	FILE *status = fopen("/proc/self/status", "r");

	while (status && fgets(line, sizeof(line), status))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (status)
		fclose(status);
	return kib;
}

static size_t count_lines(const char *text, bool samples_only)
{
	size_t n = 0;

	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		n += !samples_only || line[0] != '#';
	return n;
}

int main(int argc, char **argv)
{
	int quick = 0, option, cpus = libbpf_num_possible_cpus();
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
	__u32 containers = quick ? 10000 : 1000000, functions = quick ? 100 : 10000;
	__u32 affinity = quick ? 10000 : 1000000;

	if (unshare(CLONE_NEWNET) || system("ip link set lo up"))
		bench_fail("a private network namespace (run as root)", errno);
	bench_report_open(json_path, 60);

	static struct tetherd d; /* what metrics.c reads: the maps, the lifecycle */
	struct lifecycle_config config = { .heartbeat_ms = 600000, .drain_ms = 1000,
					   .now_ns = clock_ns };
	__u8 addr[16], mac[6] = { 2, 0, 0, 0, 0, 1 };
	__u32 id, slot;
	__u64 start;

	if (dataplane_open(&d.dp, NULL) || lifecycle_init(&d.lc, &d.dp, &config))
		bench_fail("dataplane_open", EINVAL);
	addr_parse("203.0.113.2", addr);
	if (lc_backend_add(&d.lc, "vm1", addr, mac, "lo", 0, 0, &id))
		bench_fail(lifecycle_error(&d.lc), EINVAL);
	start = monotonic_ns();
	for (__u32 i = 0; i < containers; i++)
		if (lc_container_add(&d.lc, 1 + i % functions, "vm1", "", CONTAINER_STARTING, &slot,
				     NULL))
			bench_fail(lifecycle_error(&d.lc), EINVAL);
	printf("set-up: %u containers in %u functions (%.1f s), ", containers, functions,
	       (monotonic_ns() - start) / 1e9);
	set_counters(&d.dp, containers, cpus);
	fill_affinity(&d.dp, affinity);
	printf("%u affinity entries, %d CPUs\n", affinity, cpus);
	printf("%-60s %14s\n", "a /metrics scrape", "value");

	static const __u32 limits[] = { METRICS_DEFAULT_FUNCTIONS, 10000 };

	for (size_t l = 0; l < 2; l++) {
		struct metrics_config mc = { .functions = limits[l] };
		long rss_before = rss_kib();
		struct metrics *m = metrics_new(&d, &mc);
		char name[128], why[256];

		if (!m)
			bench_fail("metrics_new", ENOMEM);
		/* As metrics_http.c drives it: a slice, then the loop's other
		 * work, until done. */
		__u64 sweep_start = monotonic_ns();
		bool done = metrics_prepare(m, 0, SLICE_NS);

		while (!done)
			done = metrics_continue(m, SLICE_NS);
		double sweep_ms = (monotonic_ns() - sweep_start) / 1e6;
		GString *out = g_string_new(NULL);

		start = monotonic_ns();
		if (metrics_write(m, out, why, sizeof(why)))
			bench_fail(why, EINVAL);
		double write_ms = (monotonic_ns() - start) / 1e6;

		if (l == 0) {
			bench_report("memory /metrics keeps (resident, after a sweep)",
			       (rss_kib() - rss_before) / 1024.0, "MiB");
			bench_report("sweep: start to end (sliced)", sweep_ms, "ms");
			/* the sweep's own figures, from the exposition */
			const char *busy = strstr(out->str, "\ntether_metrics_sweep_busy_seconds ");
			const char *entries = strstr(out->str, "\ntether_metrics_sweep_entries ");

			if (busy)
				bench_report("sweep: reading (sum of slices)",
				       strtod(strchr(busy + 1, ' ') + 1, NULL) * 1e3, "ms");
			if (entries)
				bench_report("sweep: map entries read",
				       strtod(strchr(entries + 1, ' ') + 1, NULL), "entries");
			bench_report("the same maps read unsliced, one go",
			       unsliced_read_ms(&d.dp, containers, cpus), "ms");
		}
		snprintf(name, sizeof(name), "write the exposition, --metrics-functions %u",
			 limits[l]);
		bench_report(name, write_ms, "ms");
		snprintf(name, sizeof(name), "  its size (%zu samples)", count_lines(out->str, true));
		bench_report(name, out->len / 1024.0, "KiB");
		/* Every request counted once, whichever series holds it. */
		__u64 forwarded = sum_family(out->str, "tether_function_forwarded_requests_total");
		__u64 expected = (__u64)containers * cpus;

		if (forwarded != expected) {
			fprintf(stderr, "bench_metrics: the per-function counters add up to %llu, "
					"expected %llu\n",
				(unsigned long long)forwarded, (unsigned long long)expected);
			return 1;
		}
		g_string_free(out, TRUE);
		metrics_free(m);
	}
	/* The longest slice: a fresh sweep, stepped alone. */
	{
		struct metrics_config mc = { .functions = METRICS_DEFAULT_FUNCTIONS };
		struct metrics *m = metrics_new(&d, &mc);
		__u64 longest = 0;
		unsigned int slices = 0;
		bool done = false;

		while (!done) {
			__u64 t = monotonic_ns();

			done = slices ? metrics_continue(m, SLICE_NS) : metrics_prepare(m, 0, SLICE_NS);
			longest = MAX(longest, monotonic_ns() - t);
			slices++;
		}
		bench_report("sweep: slices (loop turns it takes)", slices, "slices");
		bench_report("sweep: the longest slice (the loop waits this at most)", longest / 1e6, "ms");
		metrics_free(m);
	}
	bench_report_close();
	lifecycle_free(&d.lc);
	dataplane_close(&d.dp);
	return 0;
}
