/* SPDX-License-Identifier: MIT */
/* Several tetherds (--tetherd A,B,C: the routers of a fleet): the agent's
 * control and watch links talk to one, and both move to the next one,
 * round-robin (rotation.h), when it fails: a link cannot connect or drops,
 * a request (a heartbeat, the registration...) goes unanswered for half the
 * heartbeat time, or the router answers `unavailable` (it is cut off from
 * the fleet's store). A move runs
 * the session again as a reconnect does (session.c): in a fleet the next
 * router has the same backend and containers, which the agent takes over as
 * they are. Each move is logged once, with why. With one tetherd nothing
 * here acts: the links reconnect to it after their backoff. */
#ifndef TETHER_AGENT_FAILOVER_H
#define TETHER_AGENT_FAILOVER_H

#include "agent.h"

/* After link_init of both links. */
void failover_init(struct agent *agent);

/* Moves when an answer or a late heartbeat asked for it. Call it often,
 * before link_tick. */
void failover_tick(struct agent *agent, __u64 now);

/* "unix:/run/tether/tetherd.sock", "tcp:A, tcp:B": for messages. */
const char *failover_endpoints_text(const struct agent_options *options);

#endif
