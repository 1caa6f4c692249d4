/* SPDX-License-Identifier: MIT */
/* /metrics: tetherd's figures in the Prometheus text format (README,
 * "Metrics", lists the series), served by libmicrohttpd on tetherd's own
 * loop (metrics_http.c; no thread) at --metrics-listen ADDR:PORT.
 *
 * What it reads: the decision counters (the stats map, summed over CPUs),
 * the lifecycle's view (containers and backends by state, functions), the
 * slow path's counters and queues, the fleet's view of itself (no store
 * request), and, a slice at a time (metrics_sweep.h), the per-container
 * counters and the affinity map. What it counts itself, from start: the
 * lifecycle events by type (metrics_event) and the control requests by verb,
 * noun and result (metrics_request), and the requests each function's gone
 * containers had forwarded. */
#ifndef TETHER_METRICS_H
#define TETHER_METRICS_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define METRICS_DEFAULT_FUNCTIONS 100

struct metrics_config {
	char listen[64];   /* ADDR:PORT ("127.0.0.1:9417", "[::1]:9417"); empty: none */
	__u32 functions;   /* functions with series of their own; the rest are summed */
};

struct tetherd;
struct metrics;

/* The counting and the collection, without a listener (tests call this). */
struct metrics *metrics_new(struct tetherd *d, const struct metrics_config *config);
/* Binds config->listen and serves /metrics on d's loop: 0, or a negative errno
 * with why (a sentence for the operator). Call it before privileges drop. */
int metrics_listen(struct metrics *m, char *why, size_t size);
void metrics_free(struct metrics *m);

/* A lifecycle event line ("event=TYPE ..."): counted; a container's end
 * also moves its forwarded requests to its function's retired counts. m may
 * be NULL. */
void metrics_event(struct metrics *m, const char *line);

/* A control request and the first line of its answer ("ok", "error CODE:
 * ..."). verb and noun NULL: the line did not parse. Unknown requests are
 * counted together (verb="unknown"), so a client cannot make series. m may
 * be NULL. */
void metrics_request(struct metrics *m, const char *verb, const char *noun, const char *answer);

/* Starts a sweep of the big maps if the last one is older than max_age_ns,
 * or than five times what it spent reading when that is more (none ran: at
 * once; max_age_ns 0: always), and reads for up to budget_ns: true when a
 * result that fresh is ready for metrics_write. */
bool metrics_prepare(struct metrics *m, __u64 max_age_ns, __u64 budget_ns);
/* Reads on for up to budget_ns: true once the sweep is done. */
bool metrics_continue(struct metrics *m, __u64 budget_ns);

/* The exposition, with the last sweep's results: appended to out. 0, or
 * -EINVAL (a bug: a name the format does not allow), with why. */
int metrics_write(struct metrics *m, GString *out, char *why, size_t size);

#endif
