/* SPDX-License-Identifier: MIT */
/* Completions and liveness (docs/protocol.md, "Completions and liveness"):
 * a DONE datagram to the routers' completion addresses after each request a
 * container answers and, every heartbeat-ms / 3, a refresh DONE per container
 * and an ALIVE for the backend, so the routers count requests in flight and
 * learn liveness at data-plane speed. */
#ifndef TETHER_AGENT_COMPLETION_H
#define TETHER_AGENT_COMPLETION_H

#include "agent.h"
#include "containers.h"
#include "tether/wire.h"

/* The ALIVE key (128 random bits) and the sockets; 0 or -1. */
int completion_open(struct agent *agent);
void completion_close(struct agent *agent);

/* An address tetherd named ("ADDR:PORT" or "[V6]:PORT"), added if new. */
void completion_learn(struct agent *agent, const char *text);

/* The container answered one more request (finished++), with status, for
 * request_id (as on the wire): a DONE goes out. */
void completion_done(struct agent *agent, struct container *c, __u64 request_id,
		     enum tether_status status);

/* Refreshes and ALIVE when due. */
void completion_tick(struct agent *agent, __u64 now);

/* "alive_key" as 32 hex digits, for add and heartbeat backend. */
void completion_key_text(const struct agent *agent, char out[33]);

#endif
