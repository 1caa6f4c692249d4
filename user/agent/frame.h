/* SPDX-License-Identifier: MIT */
/* The messages between tether-agent and its container processes. They travel
 * over a SOCK_SEQPACKET socketpair, which keeps message boundaries, so the
 * framing is only a fixed header (host byte order: both ends are one
 * machine) followed by the payload. */
#ifndef TETHER_AGENT_FRAME_H
#define TETHER_AGENT_FRAME_H

#include <linux/types.h>
#include <stddef.h>

#include "wire.h"

enum agent_frame_type {
	AGENT_FRAME_READY = 1,   /* container -> agent: cold start done, warm */
	AGENT_FRAME_REQUEST = 2, /* agent -> container: run the handler */
	AGENT_FRAME_RESULT = 3,  /* container -> agent: the handler's answer */
};

struct agent_frame {
	__u32 type;
	__u32 slot;        /* REQUEST: the container's slot at tetherd now */
	__u64 id;          /* REQUEST and RESULT: the agent's request id */
	__u64 function_id; /* REQUEST */
	__u64 routing_key; /* REQUEST */
	__u32 has_key;     /* REQUEST: the client set KEY */
	__u32 length;      /* payload bytes after the header */
};

#define AGENT_FRAME_MAX (sizeof(struct agent_frame) + AGENT_PAYLOAD_MAX)

/* Header and payload into out; the message's length, or 0 when it does not
 * fit cap or the payload exceeds AGENT_PAYLOAD_MAX. frame->length is set
 * from length. */
size_t agent_frame_encode(const struct agent_frame *frame, const void *payload, size_t length,
			  void *out, size_t cap);

/* One received message: 0 with *frame and *payload (pointing into data), or
 * -1 when it is shorter than a header, its length disagrees with the
 * message's size, or its type is unknown. */
int agent_frame_decode(const void *data, size_t len, struct agent_frame *frame,
		       const void **payload);

#endif
