/* SPDX-License-Identifier: MIT */
/* A connection to tetherd's control socket (docs/protocol.md), never
 * blocking the agent: connects (Unix or TCP; on TCP, TLS unless plain was
 * asked for, tetherd's certificate checked before anything is sent, then
 * authenticating first),
 * pipelines requests and hands each its answer in order, or streams events
 * after "watch event". When the connection drops, every waiting request is
 * told it is lost and the link reconnects with a growing backoff. */
#ifndef TETHER_AGENT_CONTROL_CLIENT_H
#define TETHER_AGENT_CONTROL_CLIENT_H

#include <glib.h>
#include <linux/types.h>
#include <stdbool.h>

#include "options.h"
#include "control/protocol.h"
#include "tls/tls.h"

/* A link that failed connects again after a backoff that starts here and
 * doubles up to its maximum (link_init: at most LINK_BACKOFF_MAX_MS, less
 * for a short heartbeat, rotation_backoff_max_ms); it starts over once the
 * link is up. */
#define LINK_BACKOFF_MIN_MS 100
#define LINK_BACKOFF_MAX_MS 5000

struct tetherd_link;

struct tetherd_answer {
	const char *request; /* "add backend": for messages */
	bool lost;           /* no answer came: the connection dropped */
	bool ok;             /* "ok"; else "error CODE: message" */
	enum proto_error error;
	char message[PROTO_LINE_MAX];
	GPtrArray *records; /* struct proto_request *, the lines after "ok" */
};

/* Called once per request with its answer (or lost). It may send new
 * requests; on a lost answer the link is down and sending fails. */
typedef void (*tetherd_done)(struct tetherd_link *link, const struct tetherd_answer *answer,
			     __u32 arg);

/* What the link's owner is told. */
struct link_owner {
	void (*up)(struct tetherd_link *link);   /* connected (and authenticated) */
	void (*down)(struct tetherd_link *link); /* an up link dropped */
	void (*event)(struct tetherd_link *link, const char *line, size_t len);
};

enum link_state {
	LINK_DOWN,
	LINK_CONNECTING,
	LINK_HANDSHAKING, /* TLS: nothing is sent before tetherd's certificate passed */
	LINK_AUTHENTICATING,
	LINK_UP,
	LINK_STREAMING, /* after "watch event": every line is an event */
};

struct tetherd_link {
	void *owner_ctx; /* the agent */
	const char *role; /* "control", "watch": in messages */
	const struct agent_endpoint *endpoint;
	const char *secret;  /* tcp: sent first, with backend ("": none, a certificate's link) */
	const char *backend;
	/* tcp: TLS (link_set_tls): credentials, and the name tetherd's certificate
	 * must hold (NULL: the endpoint's address). */
	struct tls_creds *tls;
	const char *server_name;
	struct transport tx;
	const struct link_owner *owner;
	struct loop *loop;
	enum link_state state;
	int fd;
	GString *in, *out;
	GQueue pending; /* struct link_request *, oldest first */
	struct tetherd_answer answer; /* the one being read */
	bool status_read;
	__u64 connect_started_ms, retry_at_ms;
	__u32 backoff_ms, backoff_max_ms;
	char last_failure[256]; /* a failure is logged once, not at every retry */
	char broken[400];       /* why sending failed: link_tick drops the link */
	/* Set when the agent has several tetherds (failover.c). failed: the link
	 * failed and would connect again (could not connect, dropped, auth
	 * refused, an answer too late); it is down, and failed moves it
	 * (link_move) instead of the link logging why and retrying its endpoint
	 * after its backoff. answered: told every answer (lost ones apart) before
	 * its request's handler. */
	void (*failed)(struct tetherd_link *link, const char *why);
	void (*answered)(struct tetherd_link *link, const struct tetherd_answer *answer);
};

void link_init(struct tetherd_link *link, void *owner_ctx, const char *role,
	       const struct agent_endpoint *endpoint, const char *secret, const char *backend,
	       const struct link_owner *owner, struct loop *loop, __u32 backoff_max_ms);
void link_free(struct tetherd_link *link);
/* tcp: endpoints over TLS: creds (a client's: tetherd's CA, maybe the
 * agent's certificate; the link takes a reference), and the name tetherd's
 * certificate must hold (NULL: each endpoint's address). */
void link_set_tls(struct tetherd_link *link, struct tls_creds *creds, const char *server_name);

/* Connects when the backoff allows and gives up on slow connects and late
 * answers. Call it often. */
void link_tick(struct tetherd_link *link, __u64 now);

/* Up and taking requests. */
bool link_is_up(const struct tetherd_link *link);

/* The oldest request still waiting for its answer (auth included): true,
 * with when it was sent and what it is ("heartbeat backend"); false when
 * none waits. */
bool link_oldest_pending(const struct tetherd_link *link, __u64 *sent_ms, const char **what);

/* Sends the request line built in w (proto_request_begin ... end) and frees
 * w. Returns 0, and done gets the answer later (never before this returns);
 * or -1 when the link is not up or w failed (done is never called then). */
int link_request(struct tetherd_link *link, struct proto_writer *w, tetherd_done done,
		 __u32 arg);

/* "watch event": the link streams events to owner->event from its "ok" on. */
int link_watch(struct tetherd_link *link, tetherd_done done);

/* Closes the connection at once (pending answers are lost) and, with
 * reconnect, connects again after the backoff. */
void link_drop(struct tetherd_link *link, const char *why, bool reconnect);

/* Points the link at endpoint, dropping its connection first if it has one
 * (pending answers are lost; the failed hook is not called), and connects
 * from connect_at_ms on. */
void link_move(struct tetherd_link *link, const struct agent_endpoint *endpoint,
	       __u64 connect_at_ms);

/* "tetherd at unix:/run/tether/tetherd.sock refused add backend: exists: ...",
 * logged. */
void link_log_refusal(const struct tetherd_link *link, const struct tetherd_answer *answer);

#endif
