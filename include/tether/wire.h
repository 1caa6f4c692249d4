/* SPDX-License-Identifier: MIT */
/* The Tether wire format (DESIGN.md, "Wire format"): the 48-byte header at
 * the start of every request and reply UDP payload. Shared by the XDP program
 * and userspace; this is the only definition. All integers are big-endian. */
#ifndef TETHER_WIRE_H
#define TETHER_WIRE_H

#include <linux/types.h>

#define TETHER_MAGIC 0x5445 /* "TE" */
#define TETHER_VERSION 1
#define TETHER_HDR_LEN 48

enum tether_flag {
	TETHER_F_KEY = 0x01,     /* routing_key is meaningful */
	TETHER_F_TOKEN = 0x02,   /* container_token is meaningful */
	TETHER_F_STRICT = 0x04,  /* answer CONTAINER_GONE rather than fall back */
	TETHER_F_DONE = 0x08,    /* backend -> router: a container finished a request */
	TETHER_F_ALIVE = 0x10,   /* backend -> router: the backend is alive */
	TETHER_F_STAMPED = 0x40, /* set by the router only */
	TETHER_F_REPLY = 0x80,   /* set by backends in replies */
};

/* Flags a client may set on a request; any other bit makes it malformed. */
#define TETHER_F_CLIENT_MASK (TETHER_F_KEY | TETHER_F_TOKEN | TETHER_F_STRICT)

/* Datagrams from backends to the router's completion address (docs/protocol.md,
 * "Completions and liveness"): the 48-byte header with exactly these flags.
 *
 * DONE: function_id and request_id of the request, container_token of the
 * container that ran it, status its outcome, routing_key the container's
 * cumulative count of finished requests (so a lost DONE is healed by the
 * next), then TETHER_DONE_PAYLOAD_LEN bytes: the container's cumulative count
 * of received requests (big-endian u64), for the router to find requests lost
 * on their way. A DONE with request_id 0 and status 0 is a refresh, sent
 * every liveness period for each container with a limit.
 *
 * ALIVE: function_id the backend id, routing_key a sequence number that only
 * grows, the token's first 8 bytes 0 and its last 8 the SipHash-2-4 tag
 * (include/tether/siphash.h) of (backend id, sequence) under the backend's
 * 128-bit liveness key; request_id 0. */
#define TETHER_F_DONE_MASK (TETHER_F_DONE | TETHER_F_STAMPED)
#define TETHER_F_ALIVE_MASK (TETHER_F_ALIVE | TETHER_F_STAMPED)
#define TETHER_DONE_PAYLOAD_LEN 8

enum tether_status {
	TETHER_STATUS_OK = 0,
	TETHER_STATUS_NO_CAPACITY = 1,
	TETHER_STATUS_CONTAINER_GONE = 2,
	TETHER_STATUS_MALFORMED = 3,
	TETHER_STATUS_OVERLOADED = 4,
	TETHER_STATUS_TOO_BIG = 5, /* too large to forward once encapsulated */
};

/* The router's token layout: the slot indexes the container array directly
 * (an array lookup, not a hash walk), the generation changes each time a slot
 * is reused, and the 64-bit secret is random per container. A guessed token
 * therefore reaches a chosen container with probability 2^-64. */
struct tether_token {
	__be32 slot;
	__be32 generation;
	__u64 secret; /* random bytes: compared, never interpreted */
};

struct tether_hdr {
	__be16 magic;
	__u8 version;
	__u8 flags;
	__u8 status;
	__u8 reserved[3];
	__be64 function_id;
	__be64 routing_key;
	struct tether_token container_token;
	__be64 request_id;
};

_Static_assert(sizeof(struct tether_token) == 16, "token is 16 bytes on the wire");
_Static_assert(sizeof(struct tether_hdr) == TETHER_HDR_LEN, "header is 48 bytes on the wire");

#endif
