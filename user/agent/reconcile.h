/* SPDX-License-Identifier: MIT */
/* Matching tetherd's containers of our backend ("list container") with the
 * agent's: after a reconnect, a restart of tetherd or of the agent. */
#ifndef TETHER_AGENT_RECONCILE_H
#define TETHER_AGENT_RECONCILE_H

#include <glib.h>

#include "agent.h"

/* records: struct proto_request *, one per container of our backend. A
 * container of ours that tetherd knows (same slot and token) takes tetherd's
 * state; one it does not know is added again; one of tetherd's that is not
 * ours (left by an earlier agent) goes on agent->stale_slots, to delete. */
void reconcile(struct agent *agent, GPtrArray *records);

#endif
