/* SPDX-License-Identifier: MIT */
/* The packet trace on tetherd's side ("watch trace", docs/protocol.md): the
 * XDP program's ring buffer (include/tether/trace.h) read on the loop, each
 * record told as a protocol line to the connections tracing (control.c
 * keeps them); trace_config switched on while at least one traces and off
 * when the last leaves, and off at start (a flag a dead tetherd left on is
 * not left on) and at exit. tetherd stays the only writer of the maps; an
 * operator needs the control socket, not CAP_BPF. */
#ifndef TETHER_TETHERD_TRACE_H
#define TETHER_TETHERD_TRACE_H

#include <stdbool.h>

#include "control/protocol.h"
#include "tetherd.h"

/* What one tracing connection asked for (ANDed; none: everything). */
struct trace_ask {
	__u32 filters; /* enum trace_filter */
	__u64 function_id;
	__u64 routing_key;
	__u32 slot;
};

struct trace_feed;

/* Switches a stale trace off and starts reading the ring (on d->loop).
 * NULL, with a log line, when the ring cannot be read. */
struct trace_feed *trace_feed_new(struct tetherd *d);
/* Switches the trace off. */
void trace_feed_free(struct trace_feed *feed);

/* "watch trace [function=F] [key=K] [container=C]": the filter, or an error
 * with a message for the operator. */
enum proto_error trace_filter_parse(const struct proto_request *req, struct trace_ask *out,
				    char *message, size_t size);
bool trace_filter_matches(const struct trace_ask *filter, const struct trace_record *rec);

/* The program's filter for these connections' filters (count of them):
 * theirs when they all ask the same, else none (each is filtered here);
 * count 0 switches the trace off. */
int trace_feed_apply(struct trace_feed *feed, const struct trace_ask *filters, int count);

/* Reads what waits in the ring (the program wakes tetherd only once the
 * ring fills up: the tick delivers the rest), then returns the records the
 * ring had no room for since the last call. */
__u64 trace_feed_lost(struct trace_feed *feed);

/* The record as a protocol line "trace=DECISION ...\n". */
void trace_format(struct tetherd *d, const struct trace_record *rec, struct proto_writer *w);

#endif
