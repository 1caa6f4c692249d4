/* SPDX-License-Identifier: MIT */
/* Signals and leaving. SIGTERM (or SIGINT) drains every container: each
 * finishes its work in flight (until --drain-ms), reports idle and stops;
 * then the backend is removed and the agent exits 0. A second signal stops
 * waiting for work in flight. If tetherd cannot be told within the drain
 * time and a grace period, the agent stops its containers and exits 1. */
#ifndef TETHER_AGENT_SHUTDOWN_H
#define TETHER_AGENT_SHUTDOWN_H

#include "agent.h"

/* Blocks SIGTERM, SIGINT and SIGCHLD and reads them from a signalfd in the
 * loop. Returns 0 or a negative errno. */
int signals_open(struct agent *agent);

/* Decides when the agent has finished leaving (or must give up). */
void shutdown_tick(struct agent *agent, __u64 now);

/* Stops every process at once and ends the agent with status 1, saying why. */
void shutdown_abort(struct agent *agent, const char *why);

#endif
