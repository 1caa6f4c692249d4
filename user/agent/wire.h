/* SPDX-License-Identifier: MIT */
/* The agent's side of the wire format (include/tether/wire.h), without I/O:
 * which datagrams are requests it answers, whether the router's stamp names
 * one of its containers, and the exact bytes of its answers. */
#ifndef TETHER_AGENT_WIRE_H
#define TETHER_AGENT_WIRE_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "tether/wire.h"

/* The largest answer payload: a reply must fit one UDP datagram over IPv4. */
#define AGENT_PAYLOAD_MAX (65507 - TETHER_HDR_LEN)

/* A datagram the agent ignores: not a Tether header at all (short, wrong
 * magic or version), or a reply (answering replies could loop between two
 * hosts). Everything else gets an answer. */
#define AGENT_IGNORE (-1)

/* Reads and checks the header of a datagram received on a VIP. Returns
 * AGENT_IGNORE, TETHER_STATUS_MALFORMED (reserved flags or bytes, a status,
 * function 0, or not STAMPED: only the router's stamped requests are run),
 * or TETHER_STATUS_OK; *hdr is filled unless it returns AGENT_IGNORE. */
int agent_request_check(const void *data, size_t len, struct tether_hdr *hdr);

/* The container slot the router stamped (token bytes 0-3, big-endian). */
__u32 agent_token_slot(const struct tether_hdr *hdr);

/* One of the agent's containers, as the token check sees it. */
struct agent_slot {
	__u32 slot;
	__u8 token[16]; /* as tetherd returned it on add container */
	__u64 function_id;
	bool serving;   /* its process runs (starting, warm or draining) */
};

/* Whether the stamped request may run in candidate, the agent's container
 * with the stamped slot (NULL when it has none): TETHER_STATUS_OK only when
 * the whole 16-byte token equals the container's, the function matches and
 * the container serves; TETHER_STATUS_CONTAINER_GONE otherwise (the request
 * never runs elsewhere); TETHER_STATUS_MALFORMED when not stamped. */
enum tether_status agent_token_verdict(const struct tether_hdr *hdr,
				       const struct agent_slot *candidate);

/* The answer to request: its header with REPLY added to its flags, status,
 * the same function, key and request id, token in container_token (NULL:
 * the token as received), then payload. Returns the datagram's length, or 0
 * when it does not fit cap. */
size_t agent_build_reply(const struct tether_hdr *request, enum tether_status status,
			 const __u8 *token, const void *payload, size_t payload_len, void *out,
			 size_t cap);

/* A DONE datagram (include/tether/wire.h): the container (its token) finished
 * a request of function_id (request_id 0 and status 0: a refresh, sent every
 * liveness period); finished and received are its cumulative counts.
 * Returns the length (TETHER_HDR_LEN + TETHER_DONE_PAYLOAD_LEN), or 0 when
 * cap is too small. */
size_t agent_build_done(const __u8 token[16], __u64 function_id, __u64 request_id,
			enum tether_status status, __u64 finished, __u64 received, void *out,
			size_t cap);

/* An ALIVE datagram of backend backend_id with sequence seq, tagged with key
 * (include/tether/siphash.h). Returns TETHER_HDR_LEN, or 0. */
size_t agent_build_alive(__u32 backend_id, __u64 seq, const __u64 key[2], void *out,
			 size_t cap);

#endif
