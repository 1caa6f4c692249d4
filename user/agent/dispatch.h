/* SPDX-License-Identifier: MIT */
/* Serving requests: one UDP socket per VIP (the VIP on lo), each datagram
 * checked (wire.h), run in the container the router's stamp names and
 * answered straight to the client from the VIP (direct server return). */
#ifndef TETHER_AGENT_DISPATCH_H
#define TETHER_AGENT_DISPATCH_H

#include <linux/types.h>
#include <stddef.h>

#include "containers.h"

/* Puts every VIP on lo and binds its socket. Returns 0, or -1 (logged). */
int dispatch_open(struct agent *agent);
/* Closes the sockets and takes off lo the VIPs the agent put there. */
void dispatch_close(struct agent *agent);

/* The container answered request id: the client gets the reply. */
void dispatch_result(struct agent *agent, struct container *c, __u64 id, const void *payload,
		     size_t len);

/* The container will not answer (stopped or died): each of its requests is
 * answered CONTAINER_GONE. */
void dispatch_abandon(struct agent *agent, struct container *c);

#endif
