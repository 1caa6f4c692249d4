/* SPDX-License-Identifier: MIT */
/* Executes one parsed request of docs/protocol.md and writes its whole answer
 * (ok or error line, records, the empty line). "watch event" and "auth agent"
 * belong to the connection and are handled by control.c. */
#ifndef TETHER_COMMANDS_H
#define TETHER_COMMANDS_H

#include "control/protocol.h"
#include "tetherd.h"

void commands_execute(struct tetherd *d, const struct requester *who,
		      const struct proto_request *req, struct proto_writer *w);

#endif
