/* SPDX-License-Identifier: MIT */
/* What each container tells tetherd, one request at a time: add container
 * (then its process starts), up container once the process is warm, drain
 * container, idle container once its work is done, del container when its
 * process died, show container when an event named it. */
#ifndef TETHER_AGENT_LIFECYCLE_H
#define TETHER_AGENT_LIFECYCLE_H

#include "agent.h"

/* Sends each container's next request, if it has one and the backend is
 * registered; stops the processes of containers tetherd is done with. */
void lifecycle_step(struct agent *agent);

#endif
