/* SPDX-License-Identifier: MIT */
/* tether-agent's state: its options, its two links to tetherd, its backend's
 * registration, its containers and the sockets it serves requests on. Each
 * part is changed by its own file; this header only holds them together. */
#ifndef TETHER_AGENT_AGENT_H
#define TETHER_AGENT_AGENT_H

#include <glib.h>
#include <linux/types.h>
#include <stdbool.h>

#include "options.h"
#include "control_client.h"
#include "agent_clock.h"
#include "rotation.h"
#include "core/core.h"

/* The backend's registration at tetherd over the control link (session.c). */
enum session_state {
	SESSION_OFFLINE,        /* no control link */
	SESSION_NEED_BACKEND,   /* linked: add backend next */
	SESSION_ADDING_BACKEND,
	SESSION_NEED_CHECK,     /* it existed: is it registered as we would? */
	SESSION_CHECKING,
	SESSION_REPLACING,      /* it differed: del backend, then add it again */
	SESSION_NEED_LIST,      /* registered: learn which containers tetherd knows */
	SESSION_LISTING,
	SESSION_READY,          /* containers may talk to tetherd; heartbeats flow */
	SESSION_REMOVING,       /* del backend sent (stopping) */
	SESSION_REMOVED,
};

/* A UDP socket bound to one VIP:PORT (dispatch.c). */
struct service {
	int fd;
	const struct agent_vip *vip;
	bool vip_added; /* the agent put the address on lo, and removes it */
};

struct agent {
	struct agent_options options;
	char secret[128]; /* from --secret-file */
	struct tls_creds *tls; /* --tls-ca, --tls-cert, --tls-key; NULL: none */
	struct loop *loop;
	struct tetherd_link control; /* requests and their answers */
	struct tetherd_link watch;   /* the event stream */
	/* Both links talk to options.tetherds[rotation.current] (failover.c). */
	struct rotation rotation;
	bool move_pending; /* an answer said: move away, at the next tick */
	char move_why[PROTO_LINE_MAX + 64];
	char move_logged[AGENT_MAX_TETHERDS][PROTO_LINE_MAX + 64]; /* why, per endpoint left */
	bool round_logged; /* "every tetherd failed", once until one works */

	enum session_state session;
	bool registered_once; /* tetherd has known our backend in this run */
	__u64 session_retry_ms; /* after a refusal, do not ask again before */
	__u64 heartbeat_due_ms;
	bool heartbeat_pending;
	GArray *stale_slots; /* __u32: containers of our backend that are not ours */

	GPtrArray *containers; /* struct container * */
	GHashTable *by_slot;   /* slot -> struct container * */
	__u32 next_container_id;

	struct service services[AGENT_MAX_VIPS];
	int service_count;
	GHashTable *requests; /* request id -> struct dispatched (dispatch.c) */
	__u64 next_request_id;

	/* Completions and liveness (completion.c): where DONE and ALIVE go
	 * (--completion, and tetherd's answer to add backend), the key of our
	 * ALIVE datagrams, and our backend id at tetherd (0: not known yet). */
	struct agent_vip completions[AGENT_MAX_COMPLETIONS];
	int completion_count;
	__u64 alive_key[2];
	__u64 alive_seq;
	__u64 alive_due_ms;
	__u32 backend_id;
	bool alive_registered; /* the router we talk to has the key (an answered ok) */
	int completion_fd4, completion_fd6;
	__u64 limit_violations; /* requests beyond a container's limit: a router bug */

	int signal_fd;
	bool stopping;          /* SIGTERM: drain, report idle, leave */
	bool hurry;             /* a second signal: do not wait for work */
	__u64 stop_deadline_ms; /* give up on tetherd then */
	bool finished;
	int exit_status;
};

/* The agent from a struct tetherd_link's owner_ctx. */
static inline struct agent *agent_of(struct tetherd_link *link)
{
	return link->owner_ctx;
}

#endif
