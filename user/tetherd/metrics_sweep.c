// SPDX-License-Identifier: MIT
/* The sliced reads of the big maps for /metrics (metrics_sweep.h). */
#include "metrics_sweep.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tether_xdp.skel.h"

#define SLOTS_PER_SLICE 1024      /* container slots: one batched read per CPU (~1.6 ms) */
#define AFFINITY_PER_SLICE 1024   /* affinity entries per batched read */

enum phase { IDLE, CONTAINERS, AFFINITY, DONE };

/* What the sweep counted of the container in a slot. */
struct counted {
	__u64 packets, bytes;
	__u32 generation;
	__u32 epoch; /* the sweep that counted it; others' are stale */
	__u32 state;
};

struct sweep {
	struct lifecycle *lc;
	int cpus;
	int stats_fd, affinity_fd;
	enum phase phase;
	__u32 epoch;
	__u32 next_slot;
	struct counted *counted;  /* TETHER_MAX_CONTAINERS, pages touched as used */
	GHashTable *functions;    /* function id -> struct sweep_sums */
	/* batch buffers */
	__u32 *keys;
	struct container_counters *values;
	__u64 *slice_packets, *slice_bytes;
	struct affinity_key *affinity_keys;
	struct affinity_value *affinity_values;
	struct affinity_key affinity_next;
	bool affinity_started;
	__u64 affinity_entries;     /* counting now */
	__u64 affinity_counted;     /* the last complete count */
	__u64 affinity_counted_ns;  /* when it completed; 0: never */
	__u64 containers[CONTAINER_GONE];
	struct sweep_timing timing;
	int error;
	const char *error_what;
};

struct sweep *sweep_new(struct lifecycle *lc)
{
	struct sweep *s = g_new0(struct sweep, 1);
	int cpus = libbpf_num_possible_cpus();

	s->lc = lc;
	s->cpus = cpus > 0 ? cpus : 1;
	s->stats_fd = bpf_map__fd(lc->dp->skel->maps.container_stats);
	s->affinity_fd = bpf_map__fd(lc->dp->skel->maps.affinity);
	/* calloc: the kernel hands zero pages out as they are first written. */
	s->counted = calloc(TETHER_MAX_CONTAINERS, sizeof(*s->counted));
	s->keys = g_new(__u32, SLOTS_PER_SLICE);
	s->values = g_new(struct container_counters, SLOTS_PER_SLICE);
	s->slice_packets = g_new(__u64, SLOTS_PER_SLICE);
	s->slice_bytes = g_new(__u64, SLOTS_PER_SLICE);
	s->affinity_keys = g_new(struct affinity_key, AFFINITY_PER_SLICE);
	s->affinity_values = g_new(struct affinity_value, AFFINITY_PER_SLICE);
	s->functions = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	if (!s->counted) {
		sweep_free(s);
		return NULL;
	}
	return s;
}

void sweep_free(struct sweep *s)
{
	if (!s)
		return;
	free(s->counted);
	g_free(s->keys);
	g_free(s->values);
	g_free(s->slice_packets);
	g_free(s->slice_bytes);
	g_free(s->affinity_keys);
	g_free(s->affinity_values);
	g_hash_table_destroy(s->functions);
	g_free(s);
}

void sweep_start(struct sweep *s)
{
	g_hash_table_remove_all(s->functions);
	s->epoch++;
	s->phase = CONTAINERS;
	s->next_slot = 0;
	s->affinity_started = false;
	s->affinity_entries = 0;
	memset(s->containers, 0, sizeof(s->containers));
	s->error = 0;
	s->error_what = NULL;
	s->timing = (struct sweep_timing){ .started_ns = monotonic_ns() };
}

bool sweep_running(const struct sweep *s)
{
	return s->phase == CONTAINERS || s->phase == AFFINITY;
}

bool sweep_done(const struct sweep *s)
{
	return s->phase == DONE;
}

int sweep_error(const struct sweep *s, const char **what)
{
	if (what)
		*what = s->error_what;
	return s->error;
}

static void failed(struct sweep *s, int err, const char *what)
{
	s->error = err;
	s->error_what = what;
	s->phase = DONE;
}

static struct sweep_sums *sums_of(struct sweep *s, __u64 function_id)
{
	struct sweep_sums *sums = g_hash_table_lookup(s->functions, &function_id);

	if (!sums) {
		__u64 *key = g_new(__u64, 1);

		*key = function_id;
		sums = g_new0(struct sweep_sums, 1);
		g_hash_table_insert(s->functions, key, sums);
	}
	return sums;
}

static bool live(const struct container_record *record)
{
	return record->state == CONTAINER_STARTING || record->state == CONTAINER_WARM ||
	       record->state == CONTAINER_DRAINING;
}

static void count_state(struct sweep *s, struct sweep_sums *sums, __u32 state, int delta)
{
	__u32 *count = state == CONTAINER_WARM	   ? &sums->warm
		       : state == CONTAINER_STARTING ? &sums->starting
						     : &sums->draining;

	*count += delta;
	s->containers[state] += delta;
}

/* One CPU's entries of slots [first, first + n): the array's keys run on from
 * the one before (in_batch), so one call reads them all. */
static int read_cpu(struct sweep *s, int cpu, __u32 first, __u32 n)
{
	__u32 start = (__u32)cpu * TETHER_MAX_CONTAINERS + first;
	__u32 before = start - 1, out_batch = 0, count = n;
	int err;

	/* valgrind 3.19 does not know BPF_MAP_LOOKUP_BATCH writes the values:
	 * zeroed first, they are not "uninitialised" to it (test_valgrind.sh). */
	memset(s->values, 0, n * sizeof(*s->values));
	err = bpf_map_lookup_batch(s->stats_fd, start ? &before : NULL, &out_batch, s->keys,
				       s->values, &count, NULL)
			  ? -errno
			  : 0;

	if (err && err != -ENOENT) /* ENOENT: the map's end, with what it read */
		return err;
	if (count != n)
		return -EIO;
	s->timing.entries_read += count;
	for (__u32 i = 0; i < n; i++) {
		s->slice_packets[i] += s->values[i].packets;
		s->slice_bytes[i] += s->values[i].bytes;
	}
	return 0;
}

/* Slots [first, first + n): skipped when none holds a container (then
 * *read stays false). */
static int read_slice(struct sweep *s, __u32 first, __u32 n, bool *read)
{
	const struct container_record *records = &s->lc->containers[first];
	bool any = false;
	int err;

	for (__u32 i = 0; i < n && !any; i++)
		any = live(&records[i]);
	*read = any;
	if (!any)
		return 0;
	memset(s->slice_packets, 0, n * sizeof(*s->slice_packets));
	memset(s->slice_bytes, 0, n * sizeof(*s->slice_bytes));
	for (int cpu = 0; cpu < s->cpus; cpu++)
		if ((err = read_cpu(s, cpu, first, n)))
			return err;
	for (__u32 i = 0; i < n; i++) {
		if (!live(&records[i]))
			continue;
		struct sweep_sums *sums = sums_of(s, records[i].function_id);

		sums->packets += s->slice_packets[i];
		sums->bytes += s->slice_bytes[i];
		count_state(s, sums, records[i].state, 1);
		s->counted[first + i] = (struct counted){
			.packets = s->slice_packets[i],
			.bytes = s->slice_bytes[i],
			.generation = records[i].generation,
			.epoch = s->epoch,
			.state = records[i].state,
		};
		s->timing.slots_read++;
	}
	return 0;
}

/* One batch of affinity entries, counted; the batch token carries on from
 * where the last one stopped (entries changing meanwhile may be counted
 * once more or less: the count is the map's fill, not an exact figure). */
static int read_affinity(struct sweep *s)
{
	__u32 count = AFFINITY_PER_SLICE;
	int err = bpf_map_lookup_batch(s->affinity_fd, s->affinity_started ? &s->affinity_next : NULL,
				       &s->affinity_next, s->affinity_keys, s->affinity_values,
				       &count, NULL)
			  ? -errno
			  : 0;

	s->affinity_started = true;
	s->affinity_entries += count;
	s->timing.entries_read += count;
	if (err == -ENOENT) {
		s->affinity_counted = s->affinity_entries;
		s->affinity_counted_ns = monotonic_ns();
		s->phase = DONE;
		return 0;
	}
	return err;
}

bool sweep_step(struct sweep *s, __u64 budget_ns)
{
	__u64 started = monotonic_ns(), now = started;
	int err;

	if (!sweep_running(s))
		return sweep_done(s);
	s->timing.steps++;
	bool read;

	do {
		read = true;
		if (s->phase == CONTAINERS) {
			__u32 n = MIN(SLOTS_PER_SLICE, TETHER_MAX_CONTAINERS - s->next_slot);

			if ((err = read_slice(s, s->next_slot, n, &read))) {
				failed(s, -err, "the per-container counters (container_stats)");
				break;
			}
			s->next_slot += n;
			if (s->next_slot >= TETHER_MAX_CONTAINERS)
				s->phase = s->affinity_counted_ns && monotonic_ns() - s->affinity_counted_ns <
									    SWEEP_AFFINITY_MAX_AGE_NS
						   ? DONE
						   : AFFINITY;
		} else if ((err = read_affinity(s))) {
			failed(s, -err, "the affinity map");
			break;
		}
		now = monotonic_ns();
		/* Empty slices cost a scan of memory: they do not end a step. */
	} while (sweep_running(s) && (!read || now - started < budget_ns));
	s->timing.busy_ns += now - started;
	s->timing.longest_step_ns = MAX(s->timing.longest_step_ns, now - started);
	if (sweep_done(s))
		s->timing.finished_ns = now;
	return sweep_done(s);
}

void sweep_forget(struct sweep *s, __u32 slot, __u32 generation, __u64 function_id)
{
	struct counted *c;
	struct sweep_sums *sums;

	if (slot >= TETHER_MAX_CONTAINERS)
		return;
	c = &s->counted[slot];
	if (c->epoch != s->epoch || c->generation != generation)
		return;
	if ((sums = g_hash_table_lookup(s->functions, &function_id))) {
		sums->packets -= MIN(sums->packets, c->packets);
		sums->bytes -= MIN(sums->bytes, c->bytes);
		count_state(s, sums, c->state, -1);
	}
	c->epoch = 0;
}

GHashTable *sweep_functions(const struct sweep *s)
{
	return s->functions;
}

__u64 sweep_affinity_entries(const struct sweep *s)
{
	return s->affinity_counted;
}

__u64 sweep_containers(const struct sweep *s, enum container_state state)
{
	return state < CONTAINER_GONE ? s->containers[state] : 0;
}

const struct sweep_timing *sweep_timing(const struct sweep *s)
{
	return &s->timing;
}
