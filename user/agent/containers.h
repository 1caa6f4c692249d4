/* SPDX-License-Identifier: MIT */
/* The agent's containers: the table (this file's .c), what each one tells
 * tetherd next (lifecycle.c) and its process (process.c). A container lives
 * here from its creation until tetherd forgot it and its process was reaped. */
#ifndef TETHER_AGENT_CONTAINERS_H
#define TETHER_AGENT_CONTAINERS_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agent.h"

/* The container as tetherd knows it. */
enum registration {
	REG_NONE,     /* unknown to tetherd: add it (again) */
	REG_STARTING,
	REG_WARM,
	REG_DRAINING,
	REG_GONE,     /* tetherd forgot it for good */
};

enum process_state {
	PROCESS_NONE,     /* not started yet */
	PROCESS_COLD,     /* started, not warm yet */
	PROCESS_READY,    /* warm: runs requests */
	PROCESS_STOPPING, /* told to stop, or died: waiting to reap it */
	PROCESS_EXITED,   /* reaped */
};

struct container {
	struct agent *agent;
	__u32 id;     /* the agent's number for it: names it, and answers find it by it */
	char name[32];
	__u64 function_id;

	bool has_slot; /* tetherd gave it a slot and token (perhaps a stale one) */
	__u32 slot;
	__u8 token[16];
	enum registration reg;
	bool busy;             /* a request about it waits for tetherd's answer */
	bool check;            /* an event named it: ask tetherd how it is */
	__u64 not_before_ms;   /* do not add it before (retry, replacement) */
	__u64 retry_ms;        /* answered unavailable: no request before (a move clears it) */

	enum process_state process;
	pid_t pid;
	int fd; /* the channel to the process */
	__u64 started_ms, kill_at_ms;

	bool draining;          /* finish the work in flight, then leave */
	bool dead;              /* its process died: delete it at tetherd */
	__u64 drain_deadline_ms;
	__u32 in_flight;        /* requests dispatched to it, not answered yet */
	__u32 limit;            /* requests in flight it may have (--function F:N:LIMIT) */
	__u64 received;         /* requests stamped for it since it was added (the DONE
				 * datagrams' counts, bpf/load.h) */
	__u64 finished;         /* ... and answered, whatever the answer */
};

/* A new container of function_id, to be added at tetherd from not_before_ms
 * on (lifecycle.c does, and then starts its process). */
struct container *container_create(struct agent *agent, __u64 function_id, __u64 not_before_ms);

struct container *container_by_id(struct agent *agent, __u32 id);
struct container *container_by_slot(struct agent *agent, __u32 slot);
struct container *container_by_pid(struct agent *agent, pid_t pid);

/* "container 3 (vm1-2, function 42)" for messages; a static buffer. */
const char *container_label(const struct container *c);

/* Records the slot and token tetherd gave it (a new one replaces the old). */
void container_set_slot(struct agent *agent, struct container *c, __u32 slot,
			const __u8 token[16]);

/* A new name, after tetherd said another container has this one. */
void container_rename(struct agent *agent, struct container *c);

/* Lets the container finish its work until deadline_ms, then report idle and
 * stop. Earlier deadlines win. */
void container_drain(struct container *c, __u64 deadline_ms);

/* Containers of function_id that are not warm yet and not leaving. */
__u32 containers_starting(struct agent *agent, __u64 function_id);
/* Containers not leaving. */
__u32 containers_live(struct agent *agent);

/* One message to its process, over its channel (frame.h); 0 or a negative
 * errno (-EAGAIN: the channel's queue is full, -EPIPE: no channel). */
int container_send(struct container *c, const void *message, size_t len);

/* Forgets the containers that are done: gone at tetherd, process reaped. */
void containers_sweep(struct agent *agent);

/* Every container as unknown to tetherd (it lost our backend). */
void containers_forget_registrations(struct agent *agent);

#endif
