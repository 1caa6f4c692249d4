/* SPDX-License-Identifier: MIT */
/* The fleet's store client: how Tether talks to etcd (3.4, its v3 API as JSON
 * over HTTP), where a fleet of routers keeps its shared state. tetherd's fleet
 * mode uses it to read and watch that state into its maps, to commit lifecycle
 * changes (transactions) and to hold its lease; tools (`fleet status`) and
 * tests use it too. Everything runs on the caller's epoll loop (loop.h), with
 * no threads: a call starts a request and returns, and its callback gets the
 * parsed answer later, from the loop. Each request has a deadline and fails
 * over between the endpoints given (a member refusing connections, without a
 * leader or answering 5xx), pausing with exponential backoff and jitter after
 * every endpoint failed once; failures come back as one status and a message
 * meant for an operator. The _sync calls (etcd_sync.c) wrap the asynchronous
 * ones for tools and tests, on a client with a loop of its own. */
#ifndef TETHER_STORE_ETCD_H
#define TETHER_STORE_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct etcd_client;
struct etcd_call;      /* a request in flight (one-shot calls and paged ranges) */
struct etcd_watch;     /* a watch of a prefix, resumed across endpoints */
struct etcd_keepalive; /* a lease kept alive */

enum etcd_status {
	ETCD_OK = 0,
	/* No endpoint took the request before the deadline (refused connections,
	 * no leader, 5xx): a write was not applied. */
	ETCD_UNAVAILABLE,
	/* The deadline passed with the request sent and unanswered: a write may or
	 * may not have been applied. */
	ETCD_TIMEOUT,
	/* The connection broke after a write was sent, or etcd answered that its
	 * outcome is unknown (request timed out, leader changed): it may or may not
	 * have been applied. Reads and watches are retried instead. */
	ETCD_OUTCOME_UNKNOWN,
	/* The revision asked for has been compacted away: read everything again. */
	ETCD_COMPACTED,
	/* A transaction's compares did not hold; its failure ops ran. */
	ETCD_FAILED_COMPARE,
	/* The lease does not exist (expired, revoked), or was lost: the keys
	 * attached to it are gone or about to be. */
	ETCD_NOT_FOUND,
	/* etcd refused the request (invalid, too large, a future revision). */
	ETCD_REJECTED,
	/* The answer is not what etcd 3.4 sends. */
	ETCD_BAD_RESPONSE,
};

#define ETCD_MESSAGE_MAX 512
struct etcd_error {
	enum etcd_status status;
	/* ETCD_COMPACTED from a watch: the oldest revision still kept (etcd's
	 * compact_revision); 0 when etcd did not say. */
	int64_t compact_revision;
	char message[ETCD_MESSAGE_MAX];
};

/* "unavailable", "timeout", ...: for logs and tests. */
const char *etcd_status_name(enum etcd_status status);

struct etcd_options {
	int timeout_ms;         /* each call's deadline (a paged range: each page's); 5000 */
	int connect_timeout_ms; /* to connect to one endpoint; 1000 */
	int backoff_min_ms;     /* the first pause once every endpoint failed; 50 */
	int backoff_max_ms;     /* the longest pause; 2000 */
	/* How often a watch asks its member for its status: a member that hangs
	 * (stopped, stuck on its disk) sends nothing and closes nothing, and
	 * only this tells its watches to go elsewhere; 5000. */
	int watch_check_ms;
};

/* endpoints: "http://127.0.0.1:2379,http://127.0.0.1:22379,...". loop: the
 * loop to run on; NULL makes the client a private one (etcd_client_loop), which
 * the _sync calls need. options: NULL or zeros for the defaults. NULL on
 * error, with the reason in why. */
struct etcd_client *etcd_client_new(struct loop *loop, const char *endpoints,
				    const struct etcd_options *options, char *why, size_t why_size);
/* Cancels every call, watch and keepalive still running (no callback runs;
 * their handles are freed) and frees the client. Not from one of its callbacks. */
void etcd_client_free(struct etcd_client *client);
struct loop *etcd_client_loop(struct etcd_client *client);

/* TLS for https:// endpoints, PEM files; NULL or "" for none. */
struct etcd_tls_files {
	const char *ca;   /* the CAs etcd's certificates chain to (none: curl's default CAs) */
	const char *cert; /* this client's certificate, for an etcd run with --client-cert-auth */
	const char *key;  /* ... and its key (no access for others): both or neither */
};
/* Reads the files now, into memory (the process may lose the right to read
 * them later, as tetherd does with --user): every attempt from now on uses
 * them; connections already open keep going. 0, or -1 with why, leaving
 * what was set before in use (a reload that fails changes nothing). */
int etcd_client_set_tls(struct etcd_client *client, const struct etcd_tls_files *files,
			char *why, size_t why_size);
size_t etcd_client_endpoint_count(const struct etcd_client *client);
const char *etcd_client_endpoint(const struct etcd_client *client, size_t index);

/* Stops a one-shot call (range, put, txn, ...) or a paged range before its
 * callback ran: the callback will not run. A call's handle is valid until its
 * callback returns. */
void etcd_call_cancel(struct etcd_call *call);

/* --- Keys and values ------------------------------------------------------- */

struct etcd_header {
	uint64_t cluster_id;
	uint64_t member_id; /* the member that answered */
	int64_t revision;   /* the store's revision when it answered */
	uint64_t raft_term;
};

struct etcd_kv {
	char *key; /* NUL-terminated (the NUL is not counted in key_len) */
	size_t key_len;
	char *value; /* NUL-terminated too; a value may hold NULs: value_len */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version; /* 1 at creation, +1 at every put */
	int64_t lease;
};

struct etcd_range {
	const char *key;
	/* Every key in [key, range_end) ("": from key on); NULL: see prefix. */
	const char *range_end;
	bool prefix;           /* every key starting with key (else the key alone) */
	int64_t revision;      /* read as of this revision; 0: the newest */
	int64_t limit;         /* at most this many keys; 0: no limit */
	bool keys_only;        /* values left out */
	bool count_only;       /* only the count */
	int timeout_ms;        /* its deadline; 0: the client's (etcd_range only) */
};

struct etcd_range_result {
	struct etcd_header header;
	struct etcd_kv *kvs; /* in key order */
	size_t n_kvs;
	bool more;     /* the range holds keys past the limit */
	int64_t count; /* keys in the whole range, not only those returned */
};

/* Put, delete, lease revoke, compaction. */
struct etcd_write_result {
	struct etcd_header header; /* header.revision: the revision of the write */
	int64_t deleted;           /* delete: how many keys went */
};

/* In every callback error is NULL on success; result is NULL on error (but
 * for ETCD_FAILED_COMPARE, see etcd_txn). Results belong to the client and
 * live until the callback returns. Every call returns NULL when it cannot be
 * sent (a NULL key or callback, a malformed txn): its callback never runs. */
typedef void (*etcd_range_cb)(void *ctx, const struct etcd_error *error,
			      const struct etcd_range_result *result);
typedef void (*etcd_write_cb)(void *ctx, const struct etcd_error *error,
			      const struct etcd_write_result *result);

struct etcd_call *etcd_range(struct etcd_client *client, const struct etcd_range *range,
			     etcd_range_cb callback, void *ctx);
struct etcd_call *etcd_put(struct etcd_client *client, const char *key, const void *value,
			   size_t value_len, int64_t lease, etcd_write_cb callback, void *ctx);
/* The key alone, or every key starting with it. */
struct etcd_call *etcd_delete(struct etcd_client *client, const char *key, bool prefix,
			      etcd_write_cb callback, void *ctx);
/* Drops the history before revision (physical: once etcd has freed it). */
struct etcd_call *etcd_compact(struct etcd_client *client, int64_t revision, bool physical,
			       etcd_write_cb callback, void *ctx);

/* A large range read in pages of range->limit keys (0: 10,000; the next page
 * starts past the last key of the one before), all at one revision (range->revision, or
 * the newest when the first page is read), so the pages make one snapshot:
 * watching from revision + 1 afterwards misses nothing. page runs once per
 * page; done once, at the end or on the first error (ETCD_COMPACTED when that
 * revision is compacted meanwhile: start again). */
typedef void (*etcd_page_cb)(void *ctx, const struct etcd_range_result *page);
typedef void (*etcd_pages_done_cb)(void *ctx, const struct etcd_error *error, int64_t revision);
struct etcd_call *etcd_range_pages(struct etcd_client *client, const struct etcd_range *range,
				   etcd_page_cb page, etcd_pages_done_cb done, void *ctx);

/* --- Transactions ---------------------------------------------------------- */

enum etcd_compare_target {
	ETCD_CMP_VALUE,
	ETCD_CMP_VERSION,         /* 0: the key does not exist */
	ETCD_CMP_CREATE_REVISION, /* 0: the key does not exist */
	ETCD_CMP_MOD_REVISION,
	ETCD_CMP_LEASE,
};

enum etcd_compare_op { ETCD_CMP_EQUAL, ETCD_CMP_NOT_EQUAL, ETCD_CMP_LESS, ETCD_CMP_GREATER };

struct etcd_compare {
	const char *key;
	enum etcd_compare_target target;
	enum etcd_compare_op op;
	int64_t number;    /* version, revision or lease */
	const void *value; /* ETCD_CMP_VALUE */
	size_t value_len;
};

enum etcd_op_type { ETCD_OP_RANGE, ETCD_OP_PUT, ETCD_OP_DELETE };

struct etcd_op {
	enum etcd_op_type type;
	const char *key;
	bool prefix;       /* range, delete: every key starting with key */
	const void *value; /* put */
	size_t value_len;
	int64_t lease;  /* put */
	int64_t limit;  /* range */
	bool keys_only; /* range */
};

struct etcd_txn {
	const struct etcd_compare *compares;
	size_t n_compares;
	const struct etcd_op *success; /* run when every compare holds */
	size_t n_success;
	const struct etcd_op *failure; /* run otherwise */
	size_t n_failure;
};

struct etcd_op_result {
	enum etcd_op_type type;
	struct etcd_range_result range; /* ETCD_OP_RANGE */
	struct etcd_write_result write; /* ETCD_OP_PUT, ETCD_OP_DELETE */
};

struct etcd_txn_result {
	struct etcd_header header; /* header.revision: the transaction's */
	bool succeeded;
	struct etcd_op_result *responses; /* one per op of the branch that ran */
	size_t n_responses;
};

/* A transaction whose compares failed reports ETCD_FAILED_COMPARE with the
 * result too (succeeded false, the failure ops' responses). */
typedef void (*etcd_txn_cb)(void *ctx, const struct etcd_error *error,
			    const struct etcd_txn_result *result);
/* etcd refuses more than 128 ops a branch by default (ETCD_REJECTED). */
struct etcd_call *etcd_txn(struct etcd_client *client, const struct etcd_txn *txn,
			   etcd_txn_cb callback, void *ctx);

/* --- Watches --------------------------------------------------------------- */

enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };

struct etcd_event {
	enum etcd_event_type type;
	struct etcd_kv kv; /* a DELETE's kv: the key and its mod_revision alone */
};

enum etcd_watch_news {
	ETCD_WATCH_EVENTS,    /* events, in revision order */
	ETCD_WATCH_PROGRESS,  /* nothing changed under the prefix up to header.revision */
	ETCD_WATCH_CONNECTED, /* the watch runs on endpoint (again) */
	ETCD_WATCH_LOST,      /* the connection broke (message): resuming elsewhere */
};

struct etcd_watch_update {
	enum etcd_watch_news news;
	struct etcd_header header;
	const struct etcd_event *events;
	size_t n_events;
	const char *endpoint; /* CONNECTED, LOST */
	const char *message;  /* LOST */
};

/* error non-NULL ends the watch: ETCD_COMPACTED (error->compact_revision: read
 * everything again and watch from there), or etcd refused it. */
typedef void (*etcd_watch_cb)(void *ctx, const struct etcd_error *error,
			      const struct etcd_watch_update *update);
/* Every change to keys starting with prefix from start_revision on (0: from
 * now), each event once and in order: a broken connection is resumed on the
 * next endpoint from the last revision seen + 1 (with backoff once every
 * endpoint failed), for as long as the watch runs. */
struct etcd_watch *etcd_watch_prefix(struct etcd_client *client, const char *prefix,
				     int64_t start_revision, etcd_watch_cb callback, void *ctx);
/* Stops the watch and frees it (also after an error ended it); callable from
 * its callback. */
void etcd_watch_cancel(struct etcd_watch *watch);
/* Where the watch goes on from: the last revision seen + 1. */
int64_t etcd_watch_next_revision(const struct etcd_watch *watch);
/* The endpoint its stream is on now; NULL while it reconnects. */
const char *etcd_watch_endpoint(const struct etcd_watch *watch);

/* --- Leases ---------------------------------------------------------------- */

/* id and ttl (seconds; etcd may raise the TTL asked for) of the new lease. */
typedef void (*etcd_lease_cb)(void *ctx, const struct etcd_error *error, int64_t id, int64_t ttl);
struct etcd_call *etcd_lease_grant(struct etcd_client *client, int64_t ttl, etcd_lease_cb callback,
				   void *ctx);
/* Ends the lease now; its keys go with it. */
struct etcd_call *etcd_lease_revoke(struct etcd_client *client, int64_t id,
				    etcd_write_cb callback, void *ctx);

/* Renews lease id once (a heartbeat that arrived): the callback gets its id
 * and TTL, or ETCD_NOT_FOUND when the lease expired or was revoked. */
struct etcd_call *etcd_lease_keepalive_once(struct etcd_client *client, int64_t id,
					    etcd_lease_cb callback, void *ctx);

/* Called once, when the lease is lost: ETCD_NOT_FOUND (it expired or was
 * revoked, or no keepalive reached etcd before its TTL ran out). The
 * keepalive then stops; free it with etcd_keepalive_stop. */
typedef void (*etcd_lease_lost_cb)(void *ctx, const struct etcd_error *error);
/* Renews lease id every third of its ttl (seconds), from the loop's timers,
 * now first. */
struct etcd_keepalive *etcd_keepalive_start(struct etcd_client *client, int64_t id, int64_t ttl,
					    etcd_lease_lost_cb lost, void *ctx);
/* Stops renewing (the lease then expires after its TTL) and frees it. */
void etcd_keepalive_stop(struct etcd_keepalive *keepalive);

/* --- Maintenance ----------------------------------------------------------- */

struct etcd_member_status {
	struct etcd_header header; /* member_id: the member asked; revision */
	const char *endpoint;      /* where it answered */
	char version[32];          /* etcd's, "3.4.23" */
	uint64_t leader;           /* the leader's member id; 0: none */
	int64_t db_size;
	int64_t db_size_in_use;
	uint64_t raft_index;
	uint64_t raft_term;
	uint64_t raft_applied_index;
	bool is_learner;
	char errors[256]; /* the member's alarms and errors, "; "-separated */
};

typedef void (*etcd_status_cb)(void *ctx, const struct etcd_error *error,
			       const struct etcd_member_status *status);
/* Asks the member at endpoint number index, that one only: for `fleet status`. */
struct etcd_call *etcd_member_status(struct etcd_client *client, size_t index,
				     etcd_status_cb callback, void *ctx);

/* --- Synchronous calls (etcd_sync.c) ----------------------------------------
 * For tools and tests: each runs the client's private loop (etcd_client_new
 * with a NULL loop) until its call completes or its deadline passes, running
 * other calls' callbacks meanwhile. They return the status (also in error,
 * which may be NULL); results they allocate are the caller's. On a client
 * sharing another loop they refuse (ETCD_REJECTED): running a loop from
 * inside its own callbacks would re-enter its owner. */
enum etcd_status etcd_range_sync(struct etcd_client *client, const struct etcd_range *range,
				 struct etcd_range_result **result, struct etcd_error *error);
enum etcd_status etcd_put_sync(struct etcd_client *client, const char *key, const void *value,
			       size_t value_len, int64_t lease, struct etcd_write_result *result,
			       struct etcd_error *error);
enum etcd_status etcd_delete_sync(struct etcd_client *client, const char *key, bool prefix,
				  struct etcd_write_result *result, struct etcd_error *error);
enum etcd_status etcd_compact_sync(struct etcd_client *client, int64_t revision, bool physical,
				   struct etcd_error *error);
/* *result is set for ETCD_OK and ETCD_FAILED_COMPARE. */
enum etcd_status etcd_txn_sync(struct etcd_client *client, const struct etcd_txn *txn,
			       struct etcd_txn_result **result, struct etcd_error *error);
enum etcd_status etcd_lease_grant_sync(struct etcd_client *client, int64_t ttl, int64_t *id,
				       int64_t *granted_ttl, struct etcd_error *error);
enum etcd_status etcd_lease_revoke_sync(struct etcd_client *client, int64_t id,
					struct etcd_error *error);
/* status->endpoint points into the client. */
enum etcd_status etcd_member_status_sync(struct etcd_client *client, size_t index,
					 struct etcd_member_status *status,
					 struct etcd_error *error);

void etcd_range_result_free(struct etcd_range_result *result);
void etcd_txn_result_free(struct etcd_txn_result *result);

#endif
