/* SPDX-License-Identifier: MIT */
/* The watch link: tetherd's event stream. capacity_needed starts a container
 * of the function (with --capacity, for a function this agent serves);
 * container_draining and container_gone about our containers make the agent
 * ask tetherd (show container) whether they are about the container it has
 * now, and drain or stop it. */
#ifndef TETHER_AGENT_EVENTS_H
#define TETHER_AGENT_EVENTS_H

#include "agent.h"

/* The owner of the watch link. */
extern const struct link_owner events_owner;

#endif
