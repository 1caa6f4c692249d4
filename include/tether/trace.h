/* SPDX-License-Identifier: MIT */
/* The packet trace (tetherctl trace, docs/protocol.md "watch trace"): while a
 * trace runs, the XDP program writes one record per frame for a service or
 * completion address into the trace_ring ring buffer, saying what it did with
 * the frame and why. trace_config (written by tetherd only) says whether a
 * trace runs and what it is filtered to; with none running the program pays
 * two inlined array lookups and two branches per such frame. Shared by bpf/trace.h and
 * userspace: the only definition of the record. */
#ifndef TETHER_TRACE_H
#define TETHER_TRACE_H

#include <linux/types.h>

#define TETHER_MAP_TRACE_CONFIG "trace_config"
#define TETHER_MAP_TRACE_SCRATCH "trace_scratch"
#define TETHER_MAP_TRACE_RING "trace_ring"

/* 4 MiB: about 40,000 records between two reads by tetherd. Beyond, records
 * are lost (counted in trace_scratch), never the frames. */
#define TETHER_TRACE_RING_BYTES (1u << 22)
/* The program wakes the reader only when this much waits in the ring; a
 * reader polls on a timer too (tetherd: every 50 ms). */
#define TETHER_TRACE_WAKEUP_BYTES (TETHER_TRACE_RING_BYTES / 8)

enum trace_filter {
	TRACE_FILTER_FUNCTION = 0x1,  /* function_id equal */
	TRACE_FILTER_KEY = 0x2,       /* KEY set and routing_key equal */
	TRACE_FILTER_CONTAINER = 0x4, /* chosen container, or the token's, in slot */
};

/* trace_config: ARRAY with one entry. enabled 0: no trace (the default, and
 * what tetherd writes at start: a flag left on by a tetherd that died is not
 * left on). */
struct trace_config {
	__u32 enabled;
	__u32 filters; /* enum trace_filter, ANDed */
	__u64 function_id;
	__u64 routing_key;
	__u32 slot;
	__u32 pad;
};

/* What became of the frame. */
enum trace_decision {
	TRACE_FORWARD = 1,    /* to the container (XDP_TX or XDP_REDIRECT) */
	TRACE_SLOW_PATH,      /* up the stack to tetherd's slow path (XDP_PASS) */
	TRACE_SHED,           /* over the slow path's budget: answered OVERLOADED */
	TRACE_SHED_DROPPED,   /* over the budget and the cap on answers: dropped */
	TRACE_NOT_SENT,       /* routed, but no_route or retag_failed: dropped */
	TRACE_MALFORMED,      /* dropped; malformed says which check */
	TRACE_FRAGMENT,       /* an IP fragment for a service address: dropped */
	TRACE_DONE,           /* a DONE from a backend, consumed */
	TRACE_ALIVE,          /* an ALIVE from a backend, consumed */
	TRACE_COMPLETION_BAD, /* for the completion address, neither: dropped */
	TRACE_DECISIONS,
};

/* Which check a malformed frame failed, in the order the parser checks. */
enum trace_malformed {
	TRACE_BAD_NONE = 0,
	TRACE_BAD_ETHERNET, /* shorter than Ethernet, or a VLAN tag cut off */
	TRACE_BAD_IP,       /* IP header, its lengths or extension headers; or
			     * the UDP header outside the IP packet */
	TRACE_BAD_LENGTH,   /* UDP length below the 48-byte header or past the
			     * IP packet, or the frame ends inside the header */
	TRACE_BAD_MAGIC,
	TRACE_BAD_VERSION,
	TRACE_BAD_FLAGS,    /* reserved bits, or DONE, ALIVE, STAMPED, REPLY */
	TRACE_BAD_STATUS,   /* nonzero in a request */
	TRACE_BAD_RESERVED,
	TRACE_BAD_FUNCTION, /* function_id 0 */
	TRACE_BAD_CHECKS,
};

enum trace_has {
	TRACE_HAS_HEADER = 0x1,    /* function_id, routing_key, flags, status,
				    * request_id: from the Tether header */
	TRACE_HAS_CONTAINER = 0x2, /* slot, generation, backend_id: the container
				    * chosen (for a slow path decision: the one
				    * found full, when there was one) */
	TRACE_HAS_TOKEN = 0x4,     /* token_slot, token_generation: as sent */
	TRACE_HAS_BACKEND = 0x8,   /* backend_id alone (an ALIVE's) */
};

/* One record of trace_ring. reasons: bit i set when the i-th counter of
 * struct tether_stats moved for this frame (bit 0 token_hit, 1 token_miss,
 * ...): the trace gives the same reasons the counters count, by
 * construction. Times on the kernel's CLOCK_MONOTONIC. */
struct trace_record {
	__u64 time_ns;
	__u64 reasons;
	__u64 function_id; /* host order, like routing_key and request_id */
	__u64 routing_key;
	__u64 request_id;
	__u8 client_addr[16]; /* source address; IPv4 v4-mapped */
	__u16 client_port;    /* host order */
	__u8 decision;        /* enum trace_decision */
	__u8 action;          /* the XDP action returned */
	__u32 cpu;
	__u32 ifindex; /* ingress */
	__u32 slot;
	__u32 generation;
	__u32 backend_id;
	__u32 token_slot;
	__u32 token_generation;
	__u8 flags;     /* the header's flags as received */
	__u8 status;    /* the header's status as received (a DONE's outcome) */
	__u8 malformed; /* enum trace_malformed */
	__u8 has;       /* enum trace_has */
	__u32 pad;
};

_Static_assert(sizeof(struct trace_record) == 96, "trace records are 96 bytes");

/* reasons holds a bit per counter: struct tether_stats may grow to this. */
#define TRACE_MAX_COUNTERS 64

/* trace_scratch: PERCPU_ARRAY with one entry, the program's own: the record
 * being made and the counters as they were before the frame (fixed in size,
 * so that counters appended to struct tether_stats leave its pinned shape
 * alone). lost: records the ring had no room for, on this CPU. */
struct trace_scratch {
	__u64 lost;
	__u64 begun; /* 1 from trace_begin to trace_end: the record is this frame's */
	struct trace_record record;
	__u64 before[TRACE_MAX_COUNTERS];
};

#endif
