/* SPDX-License-Identifier: MIT */
/* Admission to the slow path: a request the XDP program cannot route (no
 * warm container, or STRICT and gone) goes up the stack to tetherd only
 * within a budget -- its function's first, then every function's together --
 * so that a flood for one function costs the host no more than the budget,
 * and one flooded function cannot use up another's cold starts. Over budget,
 * bpf/forward.h answers the request in place (OVERLOADED), within a cap on
 * such answers.
 *
 * Each budget is a rate and a burst, kept as GCRA (the generic cell rate
 * algorithm, the "virtual scheduling" form of a token bucket): one 64-bit
 * theoretical arrival time (TAT) per bucket. A request at time now is
 * admitted when max(TAT, now) - now <= tolerance, (burst - 1) intervals, and
 * then moves TAT on to max(TAT, now) + interval. The move is one
 * compare-and-swap, so every CPU shares one bucket exactly; a refusal writes
 * nothing, so a flood of refusals only reads the bucket's cache line. The
 * clock is the kernel's CLOCK_MONOTONIC (bpf_ktime_get_ns), read only on this
 * path. Keys, values and the configuration: include/tether/maps.h. */
#ifndef TETHER_BPF_ADMISSION_H
#define TETHER_BPF_ADMISSION_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "maps.h"
#include "parse.h"

/* A compare-and-swap that loses to another CPU is tried again with what that
 * CPU wrote; after this many losses in a row the request counts as over
 * budget (it takes five CPUs admitting in the same few nanoseconds). */
#define ADMIT_CAS_TRIES 4

static __always_inline const struct admit_config *admit_config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&admit_config, &zero);
}

/* Whether any budget applies to requests for the slow path at all. */
static __always_inline int admission_limited(const struct admit_config *config)
{
	return config && (config->function.interval_ns || config->total.interval_ns);
}

/* One request's worth from the bucket whose TAT is *tat: 1 taken, 0 over
 * the rate (nothing written). A rate of 0 has no limit. */
static __always_inline int bucket_take(__u64 *tat, __u64 now, const struct admit_rate *rate)
{
	__u64 interval = rate->interval_ns, tolerance = rate->tolerance_ns;

	if (!interval)
		return 1;
#pragma unroll
	for (int i = 0; i < ADMIT_CAS_TRIES; i++) {
		__u64 seen = *(volatile __u64 *)tat;
		__u64 from = seen > now ? seen : now;

		if (from - now > tolerance)
			return 0;
		if (__sync_val_compare_and_swap(tat, seen, from + interval) == seen)
			return 1;
	}
	return 0;
}

/* The function's own bucket; a function without one (first seen, or evicted
 * from the LRU map after a quiet while) gets a full one, less this request. */
static __always_inline int function_bucket_take(__u64 function_id, __u64 now,
						const struct admit_rate *rate)
{
	if (!rate->interval_ns)
		return 1;

	struct admit_bucket *bucket = bpf_map_lookup_elem(&admit_functions, &function_id);

	if (!bucket) {
		struct admit_bucket fresh = { .tat_ns = now + rate->interval_ns };

		if (!bpf_map_update_elem(&admit_functions, &function_id, &fresh, BPF_NOEXIST))
			return 1;
		/* Another CPU made it first: take from that one. */
		bucket = bpf_map_lookup_elem(&admit_functions, &function_id);
		if (!bucket)
			return 1; /* no room to keep one: the shared budget still holds */
	}
	return bucket_take(&bucket->tat_ns, now, rate);
}

static __always_inline int shared_bucket_take(__u32 index, __u64 now,
					      const struct admit_rate *rate)
{
	if (!rate->interval_ns)
		return 1;

	struct admit_shared_bucket *bucket = bpf_map_lookup_elem(&admit_buckets, &index);

	return !bucket || bucket_take(&bucket->tat_ns, now, rate);
}

/* 1 when the request may go up to the slow path: within its function's
 * budget first, then within every function's. A request over its function's
 * budget takes nothing from the shared one, so a flooded function spends
 * only its own budget of it. */
static __always_inline int admit_to_slow_path(const struct request *req,
					      const struct admit_config *config, __u64 now)
{
	__u64 function_id = bpf_be64_to_cpu(req->hdr->function_id);

	return function_bucket_take(function_id, now, &config->function) &&
	       shared_bucket_take(ADMIT_BUCKET_TOTAL, now, &config->total);
}

/* 1 when one more OVERLOADED answer may leave: the cap on answers keeps a
 * flood with spoofed sources from being reflected at full rate. */
static __always_inline int answer_allowed(const struct admit_config *config, __u64 now)
{
	return shared_bucket_take(ADMIT_BUCKET_ANSWERS, now, &config->answers);
}

#endif
