/* SPDX-License-Identifier: MIT */
/* The slow path: requests the XDP program could not route arrive here, up the
 * host stack, on UDP sockets bound to the service addresses, with the reason
 * in the status byte (bpf/forward.h hand_to_slow_path). STRICT failures are
 * answered CONTAINER_GONE at once. Requests for a function with no warm
 * container are held in a bounded queue per function while a capacity
 * request goes out on `watch`; the first container of that function that
 * turns warm gets them, stamped exactly as the fast path stamps, or, when
 * the hold time passes, the client gets NO_CAPACITY. A full queue is answered
 * OVERLOADED. Nothing is dropped without an answer and a counter.
 *
 * The XDP program hands requests up only within the slow path's budget (its
 * function's, then every function's: bpf/admission.h, set from tetherd's
 * --admit-* options); beyond it the program answers OVERLOADED itself, so a
 * flood costs the slow path at most the budget. */
#ifndef TETHER_SLOWPATH_H
#define TETHER_SLOWPATH_H

#include <linux/types.h>

#include "lifecycle.h"

/* The largest request the slow path takes (Tether header and payload, the
 * UDP payload): a jumbo frame's worth. A larger one could never leave as one
 * frame to a backend (the fast path drops fragments too) and is answered
 * MALFORMED. Held requests also stay within SLOWPATH_MAX_HELD_BYTES in all;
 * past it new ones are answered OVERLOADED. */
#define SLOWPATH_MAX_DATAGRAM 9000
#define SLOWPATH_MAX_HELD_BYTES (64u << 20)

struct slowpath_config {
	__u32 hold_ms;             /* how long a request waits for capacity (1000) */
	__u32 queue_per_function;  /* requests held per function (256) */
	__u32 queue_total;         /* requests held in all (16384) */
};

struct slowpath_stats {
	__u64 received;       /* datagrams read from the service sockets */
	__u64 held;           /* requests queued to wait for capacity */
	__u64 forwarded;      /* requests sent to a container (held, or warm since) */
	__u64 no_capacity;    /* answered NO_CAPACITY after the hold time */
	__u64 container_gone; /* answered CONTAINER_GONE (STRICT) */
	__u64 overloaded;     /* answered OVERLOADED: queue full */
	__u64 malformed;      /* not a Tether request: answered MALFORMED, or
			       * dropped when it has no Tether header at all */
	__u64 send_errors;    /* answers or forwards the kernel refused */
	__u64 capacity_requests; /* capacity_needed events emitted */
	__u64 held_full;      /* requests the XDP program found every container full for */
	__u64 too_big;        /* answered TOO_BIG: too large for a routed backend's path
			       * once encapsulated (the XDP program's reason, or the
			       * slow path's own send) */
};

struct slowpath;

/* lc gives containers, backends and the data plane; events go to
 * lc->config.observer.event (capacity_needed). */
struct slowpath *slowpath_new(struct lifecycle *lc, const struct slowpath_config *config);
void slowpath_free(struct slowpath *sp);

/* Opens a UDP socket bound to the service address (IP_FREEBIND: the VIP need
 * not be configured on the host for the bind to work) and returns its fd for
 * the caller's epoll set, or a negative errno (after printing why). It also
 * makes the VIP a local address on lo (core/core.h), so the host stack delivers
 * the requests the XDP program passes up; slowpath_free takes off the
 * addresses it added, and answers NO_CAPACITY to the requests still held. */
int slowpath_add_service(struct slowpath *sp, const __u8 addr[16], __u16 port);

/* The fd is readable: reads every waiting datagram and acts on each. */
void slowpath_readable(struct slowpath *sp, int fd);

/* A container turned warm: its function's held requests go to it. */
void slowpath_container_warm(struct slowpath *sp, __u32 slot, __u64 function_id);

/* Answers NO_CAPACITY to every request held longer than hold_ms. */
void slowpath_tick(struct slowpath *sp);
/* Requests held because containers were full: forwarded, oldest first, to
 * containers that have room now. Cheap when none is held. */
void slowpath_place_full(struct slowpath *sp);

/* Requests held now for function_id (0: in all). */
__u32 slowpath_waiting(const struct slowpath *sp, __u64 function_id);
void slowpath_stats(const struct slowpath *sp, struct slowpath_stats *stats);
/* fn for every function with requests held now (/metrics). */
void slowpath_each_waiting(const struct slowpath *sp,
			   void (*fn)(void *ctx, __u64 function_id, __u32 waiting), void *ctx);

#endif
