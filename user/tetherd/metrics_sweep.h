/* SPDX-License-Identifier: MIT */
/* What /metrics reads from the big maps, a slice at a time: the per-container
 * counters (container_stats, cpu * 1M + slot) of the live containers, summed
 * per function, and the entries of the affinity LRU map, counted. With a
 * million containers that is two million counter entries and a million
 * affinity entries, most of a second of system calls: too long to stall
 * tetherd's loop (the slow path and the control socket run on it). So a sweep
 * runs in steps of a few milliseconds, between the loop's other work, with
 * batched lookups (bpf_map_lookup_batch), which take no lock the XDP program
 * waits on: reading never slows the data plane.
 *
 * Consistency: a slot's CPUs are read in one step, and a container is
 * counted (its requests, its state) for the function it belongs to when
 * read. A container that goes
 * while a sweep (or its result) is in use is taken back out of it
 * (sweep_forget), since its final count goes to the retired counts then: a
 * request is never counted twice, so the per-function counters never go
 * backwards. A container added after its slot was read counts from the next
 * sweep. */
#ifndef TETHER_METRICS_SWEEP_H
#define TETHER_METRICS_SWEEP_H

#include <glib.h>
#include <stdbool.h>
#include <linux/types.h>

#include "lifecycle.h"

/* A function's live containers as the sweep read them. */
struct sweep_sums {
	__u64 packets, bytes;            /* forwarded to them */
	__u32 warm, starting, draining;  /* how many, by state */
};

struct sweep_timing {
	__u64 started_ns, finished_ns; /* CLOCK_MONOTONIC; finished 0: running */
	__u64 busy_ns;                 /* spent in its steps */
	__u32 steps;
	__u64 longest_step_ns;         /* the longest the loop waited for it */
	__u64 slots_read;              /* container slots whose counters were read */
	__u64 entries_read;            /* map entries read, both maps */
};

struct sweep;

struct sweep *sweep_new(struct lifecycle *lc);
void sweep_free(struct sweep *s);

/* Drops the last result and starts reading again. */
void sweep_start(struct sweep *s);
/* Reads for about budget_ns (at least one slice); true once the sweep is
 * complete (then also true without reading). An error reading a map ends
 * the sweep with what it has, and is kept for sweep_error. */
bool sweep_step(struct sweep *s, __u64 budget_ns);
bool sweep_running(const struct sweep *s);
bool sweep_done(const struct sweep *s);
/* errno of the last failed read (0: none), and what it was reading. */
int sweep_error(const struct sweep *s, const char **what);

/* The container at slot, of that generation and function, has gone: what
 * the sweep counted of it is taken out. */
void sweep_forget(struct sweep *s, __u32 slot, __u32 generation, __u64 function_id);

/* The result (complete once sweep_done): function id -> struct sweep_sums of
 * its live containers; the affinity map's entries. Walking the affinity map
 * costs the same whatever it holds (its million buckets are walked, about
 * 30 ms here, in one call when it is nearly empty), and its fill changes
 * slowly: it is counted again only when the last count is older than
 * SWEEP_AFFINITY_MAX_AGE_NS. */
#define SWEEP_AFFINITY_MAX_AGE_NS (10 * 1000000000ull)
GHashTable *sweep_functions(const struct sweep *s);
__u64 sweep_affinity_entries(const struct sweep *s);
/* Live containers by state (CONTAINER_STARTING..CONTAINER_DRAINING). */
__u64 sweep_containers(const struct sweep *s, enum container_state state);
const struct sweep_timing *sweep_timing(const struct sweep *s);

#endif
