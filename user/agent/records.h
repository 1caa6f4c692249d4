/* SPDX-License-Identifier: MIT */
/* What tether-agent reads from tetherd, without I/O: the event lines of
 * "watch event" it acts on, the container records of "add container",
 * "list container" and "show container" answers, and the backend records of
 * "list backend" (docs/protocol.md). */
#ifndef TETHER_AGENT_RECORDS_H
#define TETHER_AGENT_RECORDS_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "options.h"
#include "control/protocol.h"
#include "tether/maps.h"

enum agent_event_type {
	AGENT_EVENT_OTHER = 0,       /* an event the agent does not act on */
	AGENT_EVENT_CAPACITY_NEEDED, /* function, waiting */
	AGENT_EVENT_CONTAINER_DRAINING, /* container, function, backend */
	AGENT_EVENT_CONTAINER_GONE,     /* container, function, backend */
};

struct agent_event {
	enum agent_event_type type;
	__u64 function_id;
	__u32 waiting;
	__u32 container;
	char backend[PROTO_NAME_MAX + 1];
};

/* One line of the event stream, with or without its newline. Returns 0 (an
 * unknown event type is AGENT_EVENT_OTHER), or -1 with a message when the
 * line is no event record or an event the agent acts on lacks a field. */
int agent_event_parse(const char *line, size_t len, struct agent_event *event, char *message,
		      size_t size);

struct agent_container_record {
	__u32 slot;
	__u8 token[16];
	enum container_state state; /* starting, warm, draining; gone otherwise */
	__u32 deadline_in_ms;       /* draining: time left, 0 when unknown */
};

/* A container record of tetherd's answers: container=, token= and state= are
 * required. Returns 0, or -1 with a message naming the missing field. */
int agent_container_record_parse(const struct proto_request *record,
				 struct agent_container_record *out, char *message, size_t size);

/* Whether a record of "list backend" registers the backend as options
 * would (addr, mac, iface, heartbeat_ms, vlan). When not, difference says how:
 * "mac is 02:00:00:00:00:09, this agent's is 02:00:00:00:00:01". */
bool agent_backend_matches(const struct proto_request *record,
			   const struct agent_options *options, char *difference, size_t size);

#endif
