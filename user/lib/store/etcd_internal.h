/* SPDX-License-Identifier: MIT */
/* Inside the store client: the client (etcd.c), a call and its attempts on
 * the endpoints (etcd_call.c), timers on the loop (etcd_timer.c) and failure
 * verdicts (etcd_error.c), shared by the files that make the requests
 * (etcd_kv.c, etcd_watch.c, etcd_lease.c, etcd_status.c). Not for users of
 * the library: they have etcd.h. */
#ifndef TETHER_STORE_ETCD_INTERNAL_H
#define TETHER_STORE_ETCD_INTERNAL_H

#include <curl/curl.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "etcd.h"

/* --- Timers: one timerfd on the loop for all of a client's (etcd_timer.c) --- */

struct etcd_timers;
struct etcd_timer;
typedef void (*etcd_timer_fn)(void *ctx);
/* NULL on error, why set. */
struct etcd_timers *etcd_timers_new(struct loop *loop, char *why, size_t why_size);
/* After every timer of it was freed. */
void etcd_timers_free(struct etcd_timers *timers);
struct etcd_timer *etcd_timer_new(struct etcd_timers *timers, etcd_timer_fn fire, void *ctx);
/* Disarms and frees it; NULL is fine. */
void etcd_timer_free(struct etcd_timer *timer);
/* Fires once, delay_us from now (0 or less: as soon as the loop runs). */
void etcd_timer_arm(struct etcd_timer *timer, int64_t delay_us);
void etcd_timer_disarm(struct etcd_timer *timer);

/* --- The client ------------------------------------------------------------- */

struct etcd_client {
	struct loop *loop;
	bool own_loop;
	char **endpoints; /* "http://host:port", no trailing slash */
	size_t n_endpoints;
	size_t preferred; /* where new calls start: the last that answered */
	/* Per endpoint: an attempt there timed out or was abandoned, so the
	 * connections curl keeps to it may be dead (a host cut off leaves them
	 * open and silent). Attempts there connect afresh until one is answered. */
	bool *connect_afresh;
	struct etcd_options options;
	CURLM *multi;
	struct etcd_timers *timers;
	struct etcd_timer *curl_timer;
	struct curl_slist *headers;
	GBytes *tls_ca, *tls_cert, *tls_key; /* etcd_client_set_tls: PEM, or NULL */
	GHashTable *calls;      /* every etcd_call alive */
	GHashTable *watches;    /* every etcd_watch */
	GHashTable *keepalives; /* every etcd_keepalive */
	GHashTable *sockets;    /* curl's sockets on the loop */
	GQueue streams_ready;   /* streaming calls with whole lines to deliver */
};

/* The client's curl multi handle ran: deliver what it brought. */
void etcd_client_dispatch(struct etcd_client *client);
void etcd_client_forget_watch(struct etcd_client *client, struct etcd_watch *watch);
void etcd_client_forget_keepalive(struct etcd_client *client, struct etcd_keepalive *keepalive);
/* For etcd_watch.c and etcd_lease.c to free what is left in etcd_client_free. */
void etcd_watch_free_all(struct etcd_client *client);
void etcd_keepalive_free_all(struct etcd_client *client);

/* --- A call: one request, its attempts on the endpoints --------------------- */

enum etcd_call_flags {
	/* Safe to send again after it may have been applied: reads, watches,
	 * keepalives. A write is sent again only when etcd surely did not apply
	 * it (no connection, no leader). */
	ETCD_CALL_IDEMPOTENT = 1 << 0,
	/* The answer is a stream of JSON messages, one per line (watches): no
	 * deadline; resumed on the next endpoint when it breaks. */
	ETCD_CALL_STREAM = 1 << 1,
	/* To one endpoint only, no failover (status of a member). */
	ETCD_CALL_PINNED = 1 << 2,
};

/* What a call does after an answer (or, for a stream, a message). */
enum etcd_next {
	ETCD_NEXT_GO_ON, /* a stream reads on; a one-shot call restarted itself */
	ETCD_NEXT_DONE,  /* the call is over: the engine frees it */
	/* This endpoint failed (etcd_call_note says why): the next one. For a
	 * stream, resume() runs first. */
	ETCD_NEXT_RETRY,
};

struct etcd_call;
struct etcd_call_ops {
	const char *what; /* "range", "put", "watch": for messages */
	/* A 200 answer parsed (a stream: one message). Runs the user's callback. */
	enum etcd_next (*answer)(struct etcd_call *call, JsonNode *root);
	/* The call failed for good: runs the user's callback with error. */
	void (*fail)(struct etcd_call *call, const struct etcd_error *error);
	/* Streams: the stream broke (why); update the request to resume from
	 * where it was. May run the user's callback (which may stop the call). */
	void (*resume)(struct etcd_call *call, const char *why);
	/* Frees op (NULL: op is not the call's). */
	void (*free)(void *op);
};

struct etcd_call {
	struct etcd_client *client;
	const struct etcd_call_ops *ops;
	void *op; /* the request's own state (etcd_kv.c, ...) */
	char *path;
	char *body;
	unsigned flags;
	int refs;
	bool stopped; /* cancelled or over: no callback runs any more */
	bool queued;  /* in client->streams_ready */
	bool answered; /* the attempt in flight delivered a message */
	/* The attempt in flight. */
	CURL *easy;
	char *url;
	GByteArray *received;
	bool too_large;
	char curl_error[CURL_ERROR_SIZE];
	int64_t attempt_started; /* monotonic µs */
	long attempt_ms;         /* its timeout; 0: none */
	/* Failover. */
	int timeout_ms;   /* the deadline from the start; 0: the client's */
	int64_t deadline; /* monotonic µs; 0: none (streams) */
	size_t endpoint;  /* index into client->endpoints */
	size_t tried;     /* endpoints tried in this round */
	unsigned round;
	struct etcd_timer *backoff;
	/* A stream's attempt that has not answered in the call's timeout is
	 * abandoned: sent on a connection that died quietly, it would wait for
	 * an answer forever (a stream has no curl timeout). */
	struct etcd_timer *first_answer;
	char **why; /* per endpoint: its last failure */
	enum etcd_status gave_up_as;
};

/* A call of ops on path with body (taken), not started. */
struct etcd_call *etcd_call_new(struct etcd_client *client, const struct etcd_call_ops *ops,
				void *op, const char *path, char *body, unsigned flags);
/* Sends it: to endpoint (ETCD_CALL_PINNED) or the client's preferred one. */
void etcd_call_start(struct etcd_call *call, size_t endpoint);
/* Starts it, and returns it; NULL when it already ended (curl refused it:
 * its callback ran). */
struct etcd_call *etcd_call_launch(struct etcd_call *call, size_t endpoint);
/* From answer(): the same call again with a new body (taken) and a new
 * deadline, on the endpoint that answered (the next page of a range). */
void etcd_call_restart(struct etcd_call *call, char *body);
/* A stream's endpoint seems dead though its connection is not (why): the
 * stream resumes on the next endpoint, as if it had broken. */
void etcd_call_abandon(struct etcd_call *call, const char *why);
/* Replaces the body the next attempt sends (a stream's resume()). */
void etcd_call_set_body(struct etcd_call *call, char *body);
/* Stops it (no callback runs any more) and drops the engine's reference. */
void etcd_call_stop(struct etcd_call *call);
void etcd_call_ref(struct etcd_call *call);
void etcd_call_unref(struct etcd_call *call);
/* The endpoint the attempt in flight (or the last one) went to. */
const char *etcd_call_endpoint(const struct etcd_call *call);
size_t etcd_call_endpoint_index(const struct etcd_call *call);
/* Records why the current endpoint failed, before ETCD_NEXT_RETRY. */
void etcd_call_note(struct etcd_call *call, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* Ends a one-shot call with error: its ops->fail, then it is freed. */
void etcd_call_fail(struct etcd_call *call, enum etcd_status status, const char *format, ...)
	G_GNUC_PRINTF(3, 4);

/* curl says the attempt of the easy handle ended with code. */
void etcd_call_finished(struct etcd_call *call, CURLcode code);
/* Delivers a streaming call's whole lines received so far. */
void etcd_call_deliver_lines(struct etcd_call *call);
/* curl's write callback. */
size_t etcd_call_received(char *data, size_t size, size_t count, void *call);

/* --- Status (etcd_status.c) --------------------------------------------------- */

/* etcd_member_status with a deadline of its own. */
struct etcd_call *etcd_member_status_within(struct etcd_client *client, size_t index,
					    int timeout_ms, etcd_status_cb callback, void *ctx);

/* --- Results (etcd_result.c) ------------------------------------------------ */

struct etcd_range_result *etcd_range_result_copy(const struct etcd_range_result *result);
struct etcd_txn_result *etcd_txn_result_copy(const struct etcd_txn_result *result);

/* --- Verdicts on etcd's errors (etcd_error.c) -------------------------------- */

enum etcd_verdict {
	ETCD_VERDICT_RETRY,         /* surely not applied: the next endpoint */
	ETCD_VERDICT_RETRY_IF_READ, /* maybe applied: reads retry, writes end unknown */
	ETCD_VERDICT_FINAL,         /* ends the call with *status */
};

/* An error etcd answered: its gRPC code and message. */
enum etcd_verdict etcd_judge_grpc(int code, const char *message, enum etcd_status *status);
void etcd_error_set(struct etcd_error *error, enum etcd_status status, const char *format, ...)
	G_GNUC_PRINTF(3, 4);

#endif
