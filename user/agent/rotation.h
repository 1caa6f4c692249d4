/* SPDX-License-Identifier: MIT */
/* Which of several tetherds (--tetherd A,B,C) the agent talks to, and when it
 * moves on: the policy alone, without I/O (failover.c applies it to the
 * links). The agent talks to one endpoint; when it fails, the next one in
 * the list is tried at once, round-robin, and the links' backoff (100 ms,
 * doubling to 5 s) is waited only after every endpoint failed in a row. An
 * endpoint has worked once it answered a write `ok` (a router that accepts
 * connections but cannot reach the fleet's store answers reads, and
 * `unavailable` to writes); then the count of failures starts over. */
#ifndef TETHER_AGENT_ROTATION_H
#define TETHER_AGENT_ROTATION_H

#include <linux/types.h>
#include <stdbool.h>

#include "control/protocol.h"

/* Unavailable answers in a row, to requests other than the backend's own
 * (add backend, heartbeat backend: one is enough), that make the agent move. */
#define ROTATION_UNAVAILABLE_MAX 3

struct rotation {
	int count;          /* endpoints */
	int current;        /* the one the links use */
	__u32 failures;     /* endpoints that failed in a row since one last worked */
	__u32 backoff_ms;   /* waited after the next whole round of failures */
	__u32 backoff_max_ms;
	__u32 unavailable;  /* unavailable answers in a row from the current one */
};

/* backoff_max_ms: rotation_backoff_max_ms(heartbeat). */
void rotation_init(struct rotation *r, int count, __u32 backoff_max_ms);

/* The current endpoint failed: the next one becomes current. Returns how
 * long to wait before connecting to it: 0, or, when every endpoint has now
 * failed in a row, the backoff (which then doubles, up to its maximum). */
__u32 rotation_fail(struct rotation *r);

/* An answer from the current endpoint to request ("heartbeat backend"),
 * ok or error. Returns true when the agent should move away: the answer is
 * `unavailable` and is about the backend itself (add backend, heartbeat
 * backend: its lease is at stake), or is the ROTATION_UNAVAILABLE_MAX-th
 * unavailable answer in a row. A write answered ok makes the endpoint one
 * that worked (rotation_fail starts counting again). */
bool rotation_answer(struct rotation *r, const char *request, bool ok, enum proto_error error);

/* How long a request (a heartbeat, the registration, any: answers come in
 * order) may go unanswered before the agent moves away: half the heartbeat
 * time (heartbeats go every third of it), so that the move and a heartbeat
 * elsewhere fit before the backend's deadline or lease. */
__u32 rotation_patience_ms(__u32 heartbeat_ms);

/* The longest wait between two attempts to reach tetherd: a sixth of the
 * heartbeat time (at least LINK_BACKOFF_MIN_MS, at most LINK_BACKOFF_MAX_MS).
 * Without ALIVE datagrams the backend's deadline in the data plane moves
 * only by heartbeats through tetherd: it falls at most 2/3 of the heartbeat
 * time after tetherd went away (heartbeats go every third of it), so a
 * tetherd back from a restart or an upgrade must hear from the agent soon,
 * not after a backoff grown to 5 s while it was away. */
__u32 rotation_backoff_max_ms(__u32 heartbeat_ms);

#endif
