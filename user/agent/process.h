/* SPDX-License-Identifier: MIT */
/* Container processes, from the agent's side: start one (fork), hear it
 * become warm and answer requests over its channel, stop it, reap it, and
 * notice when it dies on its own. */
#ifndef TETHER_AGENT_PROCESS_H
#define TETHER_AGENT_PROCESS_H

#include <stddef.h>

#include "containers.h"

/* Forks the container's process (container_main.c); it turns warm after the
 * cold start. Returns 0, or a negative errno (logged). */
int process_start(struct agent *agent, struct container *c);

/* Closes its channel (it exits on EOF) and sends SIGTERM; SIGKILL follows
 * if it lingers. Requests still in it are answered CONTAINER_GONE. */
void process_stop(struct agent *agent, struct container *c);

/* Collects exited processes (on SIGCHLD). */
void process_reap(struct agent *agent);

/* SIGKILL for processes that did not stop in time. */
void process_tick(struct agent *agent, __u64 now);

/* SIGKILL for every process, and waits for them: the agent leaves at once. */
void process_kill_all(struct agent *agent);

#endif
