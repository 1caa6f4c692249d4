/* SPDX-License-Identifier: MIT */
/* libtether-client: the client side of the Tether wire format
 * (include/tether/wire.h, DESIGN.md "Wire format"): what a program (a
 * platform's gateway, tether-invoke, tools/udp_load) needs to invoke a
 * function through a router and read the answer. Static and shared
 * (libtether-client.so.1, only tether_* symbols exported);
 * `pkg-config --cflags --libs tether-client` after `make install-client`.
 *
 *   struct tether_client client;
 *   struct tether_session session;
 *   struct tether_reply reply;
 *   uint8_t buf[TETHER_DATAGRAM_MAX];
 *   uint64_t latency_us;
 *
 *   tether_client_open(&client, "198.51.100.1:7777", 0);
 *   tether_session_init(&session);
 *   struct tether_request request = { .function_id = 7, .has_key = true, .key = 42,
 *                                     .request_id = tether_random_id() };
 *   tether_session_present(&session, &request);
 *   if (tether_client_call(&client, &request, &reply, buf, sizeof(buf), 1000000,
 *                          &latency_us) == 0) {
 *           tether_session_learn(&session, &reply);
 *           printf("%s from slot %u\n", tether_status_name(reply.status),
 *                  tether_token_slot(reply.token));
 *   }
 *   tether_client_close(&client);
 *
 * Nothing here keeps global state: a program may hold any number of clients
 * and sessions. Integers in these structs are in host order; the library
 * does the byte order. Functions that can fail return 0 (or a length) on
 * success and a negative errno value on failure. */
#ifndef TETHER_CLIENT_H
#define TETHER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "tether/wire.h"

#define TETHER_TOKEN_LEN 16
#define TETHER_TOKEN_HEX_LEN 32 /* without the terminating NUL */
/* The largest UDP payload over IPv4; also what replies are read into. */
#define TETHER_DATAGRAM_MAX 65507
#define TETHER_PAYLOAD_MAX (TETHER_DATAGRAM_MAX - TETHER_HDR_LEN)

/* ---- Requests ------------------------------------------------------------ */

/* One request, as the client means it. */
struct tether_request {
	uint64_t function_id; /* nonzero */
	bool has_key;         /* sets KEY: the router keeps this key's requests together */
	uint64_t key;
	bool has_token;       /* sets TOKEN: asks for the container the token names */
	uint8_t token[TETHER_TOKEN_LEN];
	bool strict;          /* sets STRICT: CONTAINER_GONE rather than another container */
	uint64_t request_id;  /* echoed in the reply; how replies are matched */
	const void *payload;
	size_t payload_len;   /* at most TETHER_PAYLOAD_MAX */
};

/* The 48-byte header of request: magic, version, the flags its fields ask
 * for, status and reserved bytes zero. */
void tether_request_header(const struct tether_request *request, struct tether_hdr *hdr);

/* The whole datagram (header, then payload) into out. Returns its length, or
 * 0 when it does not fit cap or the request is not one a router accepts
 * (function 0, payload over TETHER_PAYLOAD_MAX). */
size_t tether_request_build(const struct tether_request *request, void *out, size_t cap);

/* A request id for this process: random, so two runs of a program do not
 * take each other's late replies for their own. Callers add a sequence
 * number; the top bit is left clear so that never wraps. */
uint64_t tether_random_id(void);

/* ---- Replies ------------------------------------------------------------- */

/* A reply as read from the wire. payload points into the datagram it was
 * parsed from and is not NUL-terminated. */
struct tether_reply {
	uint8_t flags;
	uint8_t status; /* enum tether_status */
	uint64_t function_id;
	uint64_t routing_key;
	uint8_t token[TETHER_TOKEN_LEN]; /* the container that ran it, when OK */
	uint64_t request_id;
	const uint8_t *payload;
	size_t payload_len;
};

/* Why a datagram is not a reply to a request (TETHER_REPLY_VALID: it is). */
enum tether_reply_verdict {
	TETHER_REPLY_VALID = 0,
	TETHER_REPLY_SHORT,          /* shorter than the header */
	TETHER_REPLY_BAD_MAGIC,
	TETHER_REPLY_BAD_VERSION,
	TETHER_REPLY_NOT_REPLY,      /* REPLY is not set */
	TETHER_REPLY_BAD_STATUS,     /* a status code this client does not know */
	TETHER_REPLY_UNSTAMPED,      /* OK, but without the router's token (STAMPED) */
	TETHER_REPLY_WRONG_ID,       /* answers another request */
	TETHER_REPLY_WRONG_FUNCTION, /* the request id matches, the function does not */
};

/* Reads data as a reply: a header with the magic, the version, REPLY, a
 * known status, and STAMPED when the status is OK (an OK reply must carry
 * the token of the container that ran it). Fills *reply when valid. */
enum tether_reply_verdict tether_reply_parse(const void *data, size_t len,
					     struct tether_reply *reply);

/* Whether a parsed reply answers request: same request id and function. */
enum tether_reply_verdict tether_reply_matches(const struct tether_reply *reply,
					       const struct tether_request *request);

/* Both of the above: data is a valid reply to request. */
enum tether_reply_verdict tether_reply_check(const void *data, size_t len,
					     const struct tether_request *request,
					     struct tether_reply *reply);

/* "valid", "short", "bad_magic", ... */
const char *tether_reply_verdict_name(enum tether_reply_verdict verdict);

/* "ok", "no_capacity", "container_gone", "malformed", "overloaded";
 * "unknown" for any other code. */
const char *tether_status_name(int status);

/* ---- Tokens -------------------------------------------------------------- */

/* 32 lowercase hex digits and a NUL, bytes in wire order (as tetherctl
 * prints tokens). */
void tether_token_to_hex(const uint8_t token[TETHER_TOKEN_LEN],
			 char hex[TETHER_TOKEN_HEX_LEN + 1]);

/* Exactly 32 hex digits, either case. 0, or -EINVAL (token untouched). */
int tether_token_from_hex(const char *hex, uint8_t token[TETHER_TOKEN_LEN]);

/* The container slot a router token names (its first 4 bytes, big-endian).
 * The token is opaque to the routing; the slot is only for reporting. */
uint32_t tether_token_slot(const uint8_t token[TETHER_TOKEN_LEN]);

/* ---- Sessions ------------------------------------------------------------ */

/* What a client remembers between requests of one session: the token of the
 * container that last served it, so the next request can ask for it. */
struct tether_session {
	bool has_token;
	uint8_t token[TETHER_TOKEN_LEN];
};

void tether_session_init(struct tether_session *session);

/* Starts the session with a token (from a file, a previous run...). */
void tether_session_set_token(struct tether_session *session,
			      const uint8_t token[TETHER_TOKEN_LEN]);

/* Puts the session's token on request (TOKEN), when it has one. */
void tether_session_present(const struct tether_session *session,
			    struct tether_request *request);

/* Learns from a valid reply: OK replaces the token with the reply's;
 * CONTAINER_GONE forgets it (the container is gone for good, so the next
 * request goes by key or flow); other statuses change nothing. */
void tether_session_learn(struct tether_session *session, const struct tether_reply *reply);

/* ---- The connection ------------------------------------------------------ */

/* One UDP socket connected to a service address: it sends there only, and
 * hears only answers from there (backends answer from the service address:
 * direct server return). Non-blocking; waits happen in tether_client_recv. */
struct tether_client {
	int fd;
	int family; /* AF_INET or AF_INET6 */
};

/* "198.51.100.1:7777" or "[2001:db8::1]:7777" to a socket address. 0, or
 * -EINVAL. */
int tether_endpoint_parse(const char *text, struct sockaddr_storage *addr, socklen_t *len);

/* Opens a client to vip (as tether_endpoint_parse reads it), from
 * source_port (0: any). 0, -EINVAL for a bad vip, or the socket's errno. */
int tether_client_open(struct tether_client *client, const char *vip, uint16_t source_port);

void tether_client_close(struct tether_client *client);

/* Sends request in one datagram. 0; -EINVAL when tether_request_build would
 * refuse it; -EAGAIN or -ENOBUFS when the socket is full (try again); or
 * send's errno. */
int tether_client_send(struct tether_client *client, const struct tether_request *request);

/* Reads one datagram into buf, waiting up to timeout_us microseconds (0:
 * do not wait; negative: no limit). Its length; -ETIMEDOUT when none came;
 * or recv's errno (-ECONNREFUSED and the like report an ICMP error: the
 * socket stays usable). */
ssize_t tether_client_recv(struct tether_client *client, void *buf, size_t cap,
			   int64_t timeout_us);

/* Sends request and waits up to timeout_us for its reply, skipping
 * datagrams that are not one (stray or late replies, ICMP errors). 0 with
 * *reply (pointing into buf) and *latency_us (send to receipt, at least 1);
 * -ETIMEDOUT; or tether_client_send's error. */
int tether_client_call(struct tether_client *client, const struct tether_request *request,
		       struct tether_reply *reply, void *buf, size_t cap, int64_t timeout_us,
		       uint64_t *latency_us);

/* CLOCK_MONOTONIC in nanoseconds: what latencies are measured with. */
uint64_t tether_clock_ns(void);

/* ---- Latency histogram --------------------------------------------------- */

/* Counts values (latencies in microseconds) in log-linear buckets: exact
 * below 128, then 64 buckets per power of two, so a quantile is within 1/64
 * (1.6%) above the true value, in fixed memory (30 KB) whatever the count. */
#define TETHER_HISTOGRAM_LINEAR 128
#define TETHER_HISTOGRAM_SUB 64
#define TETHER_HISTOGRAM_BUCKETS \
	(TETHER_HISTOGRAM_LINEAR + (64 - 7) * TETHER_HISTOGRAM_SUB)

struct tether_histogram {
	uint64_t count;
	uint64_t min, max;
	uint64_t buckets[TETHER_HISTOGRAM_BUCKETS];
};

void tether_histogram_init(struct tether_histogram *h);
void tether_histogram_add(struct tether_histogram *h, uint64_t value);

/* The value at quantile num/den (1/2: the median, 999/1000: p99.9) by the
 * nearest-rank rule: the value at rank ceil(count * num / den). Reported as
 * the highest value of its bucket, but never above the largest value added,
 * so values below 128 and the maximum come out exact. 0 when empty. */
uint64_t tether_histogram_quantile(const struct tether_histogram *h, uint64_t num,
				   uint64_t den);

#endif
