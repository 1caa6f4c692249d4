/* SPDX-License-Identifier: MIT */
/* Executes one parsed request of docs/protocol.md and writes its whole answer
 * (ok or error line, records, the empty line). "watch event" and "auth agent"
 * belong to the connection and are handled by control.c. Returns false when
 * the answer comes later (a fleet router writes lifecycle changes through its
 * store): control_answer() then delivers it to who->ticket, and nothing is
 * written to w. */
#ifndef TETHER_COMMANDS_H
#define TETHER_COMMANDS_H

#include "control/protocol.h"
#include "tetherd.h"

bool commands_execute(struct tetherd *d, struct requester *who,
		      const struct proto_request *req, struct proto_writer *w);

/* The i-th request of the table ("add", "backend"), for /metrics to know
 * requests from unknown words; false past the last. auth agent and watch
 * event are control.c's, not in it. */
bool commands_request(size_t i, const char **verb, const char **noun);

#endif
