/* SPDX-License-Identifier: MIT */
/* Per-function series of /metrics, bounded: at most `limit` functions get
 * series of their own (function="ID"); the rest are summed into
 * function="other", so ten thousand functions cannot blow up a scrape.
 *
 * Which functions: the set is sticky. A function keeps its series while it
 * has containers or held requests; free places go to the functions with the
 * most warm containers (then the most containers, the most held requests,
 * the smallest id); a labelled function with nothing left gives its place up
 * only when another needs it.
 *
 * Counters stay counters. A function's forwarded requests and bytes are its
 * gone containers' (retired, added as each goes) plus its live containers'
 * (from the sweep). When a function moves out of "other" into a series of its
 * own, what "other" had counted of it stays in "other" (an offset), and its
 * own series starts from there; when a function leaves (no containers, its
 * place taken, or unlabelled and empty), "other" keeps what it counted of
 * it. So every series only grows, and "other" + the labelled series count
 * every request forwarded since tetherd started, less the requests of
 * functions that lost their own series. Pure logic: no maps, no clock. */
#ifndef TETHER_FUNCTION_SERIES_H
#define TETHER_FUNCTION_SERIES_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define FUNCTION_OTHER 0 /* the row of the functions summed together */

/* A function as the lifecycle and the slow path see it now. */
struct function_input {
	__u64 function_id;
	__u32 warm, starting, draining;
	__u32 waiting;         /* requests held by the slow path */
	__u64 packets, bytes;  /* forwarded to its live containers */
};

/* One series set: a labelled function, or "other" (function_id 0). */
struct function_row {
	__u64 function_id;
	__u64 warm, starting, draining, waiting;
	__u64 packets, bytes; /* counters */
};

struct function_series;

struct function_series *function_series_new(__u32 limit);
void function_series_free(struct function_series *fs);

/* A container of function_id is gone, having forwarded packets and bytes. */
void function_series_retire(struct function_series *fs, __u64 function_id, __u64 packets,
			    __u64 bytes);

/* The rows for inputs (each function once, any order): the labelled
 * functions by id, then "other" (always, zeros when nothing is summed).
 * rows gets struct function_row. */
void function_series_update(struct function_series *fs, const struct function_input *inputs,
			    size_t n, GArray *rows);

/* Functions with series of their own now. */
__u32 function_series_labelled(const struct function_series *fs);

#endif
