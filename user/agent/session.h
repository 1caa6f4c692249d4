/* SPDX-License-Identifier: MIT */
/* The backend's registration over the control link: add backend when the
 * link comes up (one that exists is taken over when tetherd has it as we
 * would register it, and replaced otherwise), learn which of our containers
 * tetherd still knows (reconcile.c), heartbeats every heartbeat_ms / 3, and
 * del backend when the agent leaves. */
#ifndef TETHER_AGENT_SESSION_H
#define TETHER_AGENT_SESSION_H

#include "agent.h"

/* The owner of the control link. */
extern const struct link_owner session_owner;

/* Sends the registration's next request, or a heartbeat when one is due. */
void session_step(struct agent *agent);

/* tetherd does not know our backend (any more): register it again, and
 * every container with it. */
void session_backend_lost(struct agent *agent);

/* An answer contradicted the agent's view: learn tetherd's again. */
void session_relist(struct agent *agent);

#endif
