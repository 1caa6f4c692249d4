/* SPDX-License-Identifier: MIT */
/* The container process: what runs after fork in the child. */
#ifndef TETHER_AGENT_CONTAINER_MAIN_H
#define TETHER_AGENT_CONTAINER_MAIN_H

#include <linux/types.h>
#include <sys/types.h>

#include "handlers.h"

struct container_spec {
	const char *name;
	const struct agent_handler *handler;
	__u32 cold_start_ms;
	pid_t agent_pid; /* the parent: the container dies with it */
};

/* Takes channel (one end of a SOCK_SEQPACKET pair) as its only descriptor
 * besides stdio, waits out the cold start, says READY, then runs the handler
 * for each REQUEST and answers RESULT, keeping its memory, until the channel
 * closes. Never returns. */
void container_main(int channel, const struct container_spec *spec) __attribute__((noreturn));

#endif
