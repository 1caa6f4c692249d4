/* SPDX-License-Identifier: MIT */
/* The packet trace (include/tether/trace.h): route_frame() calls
 * trace_begin() before acting on a frame for a service or completion address
 * and trace_end() after. With no trace running each costs an array lookup
 * (inlined by the verifier) and a branch, and nothing else runs. While one
 * runs, the counters of this CPU are copied before the frame and compared
 * after it: the counters that moved are the record's reasons, so the trace
 * and the counters cannot disagree, and routing.h needs no hooks of its own.
 * Everything read from the packet is read in trace_begin(), before
 * forwarding may move the frame. The rest is trace_finish(), a global
 * function: the verifier checks it once, not once for every path through the
 * router (nor does a flag kept across the router double those paths). */
#ifndef TETHER_BPF_TRACE_H
#define TETHER_BPF_TRACE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "tether/trace.h"
#include "maps.h"
#include "parse.h"
#include "routing.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trace_config);
} trace_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trace_scratch);
} trace_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TETHER_TRACE_RING_BYTES);
} trace_ring SEC(".maps");

#define TRACE_COUNTERS (sizeof(struct tether_stats) / sizeof(__u64))

_Static_assert(sizeof(struct tether_stats) % sizeof(__u64) == 0, "counters are 64-bit");
_Static_assert(TRACE_COUNTERS <= TRACE_MAX_COUNTERS, "a reason bit per counter");

static __always_inline const struct trace_config *trace_running(void)
{
	__u32 zero = 0;
	const struct trace_config *config = bpf_map_lookup_elem(&trace_config, &zero);

	return config && config->enabled ? config : NULL;
}

/* Which check of parse.h a malformed frame failed, from how far the parser
 * got (req's pointers) and the header's fields in tether_hdr_valid()'s order. */
static __always_inline __u8 trace_malformed_check(struct xdp_md *ctx, const struct request *req)
{
	void *data_end = (void *)(long)ctx->data_end;

	if (!req->eth || !req->l3)
		return TRACE_BAD_ETHERNET;
	if (!req->udp)
		return TRACE_BAD_IP;

	struct udphdr *udp = req->udp;

	if ((void *)(udp + 1) > data_end)
		return TRACE_BAD_IP;

	const struct tether_hdr *hdr = (void *)(udp + 1);
	__u32 udp_len = bpf_ntohs(udp->len);

	if ((void *)(hdr + 1) > data_end || udp_len < sizeof(*udp) + sizeof(*hdr))
		return TRACE_BAD_LENGTH;
	if (hdr->magic != bpf_htons(TETHER_MAGIC))
		return TRACE_BAD_MAGIC;
	if (hdr->version != TETHER_VERSION)
		return TRACE_BAD_VERSION;
	if (hdr->flags & ~TETHER_F_CLIENT_MASK)
		return TRACE_BAD_FLAGS;
	if (hdr->status)
		return TRACE_BAD_STATUS;
	if (hdr->reserved[0] || hdr->reserved[1] || hdr->reserved[2])
		return TRACE_BAD_RESERVED;
	if (!hdr->function_id)
		return TRACE_BAD_FUNCTION;
	return TRACE_BAD_LENGTH; /* the header is fine: its length lies */
}

#ifdef TETHER_NO_TRACE
/* The bench's baseline only (tools/bench/, make bench): the router without
 * the trace's two lookups, to measure what they cost when off. */
static __always_inline void trace_begin(struct xdp_md *ctx, enum parse_result parsed,
					const struct request *req,
					const struct tether_stats *stats)
{
}

static __always_inline void trace_end(enum parse_result parsed, const struct choice *chosen,
				      int action)
{
}
#else
/* The frame as it came in, and the counters before it. */
static __always_inline void trace_begin(struct xdp_md *ctx, enum parse_result parsed,
					const struct request *req,
					const struct tether_stats *stats)
{
	if (!trace_running())
		return;

	__u32 zero = 0;
	struct trace_scratch *scratch = bpf_map_lookup_elem(&trace_scratch, &zero);

	if (!scratch || !stats)
		return;
	struct trace_record *rec = &scratch->record;
	const __u64 *counters = (const __u64 *)stats;

#pragma unroll
	for (int i = 0; i < TRACE_COUNTERS; i++)
		scratch->before[i] = counters[i];
	scratch->begun = 1;
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->time_ns = bpf_ktime_get_ns();
	rec->cpu = bpf_get_smp_processor_id();
	rec->ifindex = ctx->ingress_ifindex;
	__builtin_memcpy(rec->client_addr, req->flow_src.addr, sizeof(rec->client_addr));
	rec->client_port = bpf_ntohs(req->flow_src.port);
	if (parsed == PARSE_MALFORMED)
		rec->malformed = trace_malformed_check(ctx, req);

	const struct tether_hdr *hdr = req->hdr;
	void *data_end = (void *)(long)ctx->data_end;

	if (!hdr || (void *)(hdr + 1) > data_end)
		return;
	rec->has = TRACE_HAS_HEADER;
	rec->function_id = bpf_be64_to_cpu(hdr->function_id);
	rec->routing_key = bpf_be64_to_cpu(hdr->routing_key);
	rec->request_id = bpf_be64_to_cpu(hdr->request_id);
	rec->flags = hdr->flags;
	rec->status = hdr->status;
	if (parsed == PARSE_ALIVE) {
		rec->has |= TRACE_HAS_BACKEND;
		rec->backend_id = (__u32)rec->function_id;
	} else if (parsed == PARSE_DONE || (hdr->flags & TETHER_F_TOKEN)) {
		rec->has |= TRACE_HAS_TOKEN;
		rec->token_slot = bpf_ntohl(hdr->container_token.slot);
		rec->token_generation = bpf_ntohl(hdr->container_token.generation);
	}
}

#define TRACE_BIT(field) (1ull << (__builtin_offsetof(struct tether_stats, field) / sizeof(__u64)))

static __always_inline __u8 trace_decision_of(enum parse_result parsed, __u64 reasons)
{
	switch (parsed) {
	case PARSE_MALFORMED:
		return TRACE_MALFORMED;
	case PARSE_FRAGMENT:
		return TRACE_FRAGMENT;
	case PARSE_DONE:
		return TRACE_DONE;
	case PARSE_ALIVE:
		return TRACE_ALIVE;
	case PARSE_COMPLETION_BAD:
		return TRACE_COMPLETION_BAD;
	default:
		break;
	}
	if (reasons & TRACE_BIT(shed))
		return TRACE_SHED;
	if (reasons & TRACE_BIT(shed_dropped))
		return TRACE_SHED_DROPPED;
	/* A routed backend the FIB gives no frame for goes up, not away
	 * (bpf/encap.h): its no_route comes with fib_no_route. */
	if (reasons & (TRACE_BIT(fib_no_route) | TRACE_BIT(fib_no_neigh) | TRACE_BIT(too_big) |
		       TRACE_BIT(encap_slow)))
		return TRACE_SLOW_PATH;
	if (reasons & (TRACE_BIT(no_route) | TRACE_BIT(retag_failed) | TRACE_BIT(encap_failed)))
		return TRACE_NOT_SENT;
	if (reasons & (TRACE_BIT(no_capacity) | TRACE_BIT(strict_gone) | TRACE_BIT(full)))
		return TRACE_SLOW_PATH;
	return TRACE_FORWARD;
}

static __always_inline int trace_wanted(const struct trace_config *config,
					const struct trace_record *rec)
{
	__u32 filters = config->filters;

	if ((filters & TRACE_FILTER_FUNCTION) &&
	    (!(rec->has & TRACE_HAS_HEADER) || rec->function_id != config->function_id))
		return 0;
	if ((filters & TRACE_FILTER_KEY) &&
	    (!(rec->has & TRACE_HAS_HEADER) || !(rec->flags & TETHER_F_KEY) ||
	     rec->routing_key != config->routing_key))
		return 0;
	if ((filters & TRACE_FILTER_CONTAINER) &&
	    !((rec->has & TRACE_HAS_CONTAINER) && rec->slot == config->slot) &&
	    !((rec->has & TRACE_HAS_TOKEN) && rec->token_slot == config->slot))
		return 0;
	return 1;
}

/* bpf_loop's step: bit i of *reasons when counter i moved. A loop of the
 * verifier's own, walked once: unrolled, every counter's comparison would
 * double the paths it walks. */
static long trace_compare_counter(__u32 i, void *ctx)
{
	__u64 *reasons = ctx;
	__u32 zero = 0;
	const __u64 *counters = bpf_map_lookup_elem(&stats, &zero);
	const struct trace_scratch *scratch = bpf_map_lookup_elem(&trace_scratch, &zero);

	if (!counters || !scratch || i >= TRACE_COUNTERS)
		return 1;
	if (counters[i] != scratch->before[i])
		*reasons |= 1ull << i;
	return 0;
}

#define TRACE_NO_SLOT 0xffffffffu
#define TRACE_STALE_NS 1000000000ull

/* The counters that moved, the container chosen (slot TRACE_NO_SLOT: none),
 * the filters; then the record into the
 * ring, or counted lost when it has no room. A frame the trace was switched
 * on during has no record begun: nothing. Returns 1 when a record was
 * written. */
__noinline int trace_finish(__u32 parsed, __u32 action, __u32 slot, __u32 generation,
			    __u32 backend_id)
{
	__u32 zero = 0;
	const struct trace_config *config = bpf_map_lookup_elem(&trace_config, &zero);
	struct trace_scratch *scratch = bpf_map_lookup_elem(&trace_scratch, &zero);
	__u64 reasons = 0;

	if (!config || !scratch || !scratch->begun)
		return 0;
	scratch->begun = 0;
	/* Begun by a frame long gone (the trace went off between its begin and
	 * end, and on again since): not this frame's. */
	if (bpf_ktime_get_ns() - scratch->record.time_ns > TRACE_STALE_NS)
		return 0;

	struct trace_record *rec = &scratch->record;

	bpf_loop(TRACE_COUNTERS, trace_compare_counter, &reasons, 0);
	rec->reasons = reasons;
	rec->action = action;
	rec->decision = trace_decision_of(parsed, reasons);
	if (parsed == PARSE_REQUEST && slot != TRACE_NO_SLOT) {
		rec->has |= TRACE_HAS_CONTAINER;
		rec->slot = slot;
		rec->generation = generation;
		rec->backend_id = backend_id;
	}
	if (!trace_wanted(config, rec))
		return 0;
	/* A wakeup per record costs more than the rest of the trace: the
	 * reader is woken only once the ring fills up, and reads on its own
	 * tick (tetherd's, every 50 ms) otherwise. */
	__u64 wakeup = bpf_ringbuf_query(&trace_ring, BPF_RB_AVAIL_DATA) >= TETHER_TRACE_WAKEUP_BYTES
			       ? BPF_RB_FORCE_WAKEUP
			       : BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_output(&trace_ring, rec, sizeof(*rec), wakeup)) {
		scratch->lost++;
		return 0;
	}
	return 1;
}

static __always_inline void trace_end(enum parse_result parsed, const struct choice *chosen,
				      int action)
{
	if (!trace_running())
		return;
	/* What describes the container chosen is the choice's: a key hit's fast
	 * way (bpf/routing.h choose_known) does not read the record, and every
	 * choice has its backend. */
	if (chosen->backend)
		trace_finish(parsed, action, chosen->slot, chosen->generation,
			     chosen->backend_id);
	else
		trace_finish(parsed, action, TRACE_NO_SLOT, 0, 0);
}

#endif /* TETHER_NO_TRACE */

#endif
