// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "tls/tls.h"
#include "trace.h"

/* A watcher that does not read its events is cut off past this backlog,
 * rather than letting tetherd's memory grow. */
#define WATCHER_BACKLOG_MAX (1u << 20)
/* A tracing connection that does not read keeps no more than this queued:
 * records past it are skipped, and it is told how many. */
#define TRACER_BACKLOG_MAX (4u << 20)
/* Failed TCP authentications: each one doubles the wait before the same
 * address may try again, up to this. */
#define AUTH_BACKOFF_MAX_MS 60000
/* Requests pipelined behind one whose answer waits for the fleet's store are
 * read later; a client that sends more than this meanwhile is cut off. */
#define WAITING_INPUT_MAX (1u << 20)
/* A TLS handshake not done by then is given up (a client that connects and
 * sends nothing holds no connection for long). */
#define HANDSHAKE_TIMEOUT_MS 10000

/* What a client certificate made of its connection (--tls-client-ca). */
enum cert_role {
	CERT_NONE,     /* no certificate: plain TCP, TLS without client CA, Unix */
	CERT_BACKEND,  /* CN=NAME: bound to backend NAME */
	CERT_OPERATOR, /* CN is one of --tls-operator: any backend */
};

struct connection {
	struct control *control;
	int fd;
	struct transport tx; /* plain (Unix, --tcp-plain) or TLS */
	bool handshaking;    /* TLS: nothing is read or sent before it is done */
	__u64 handshake_deadline_ns;
	char address[64];    /* the TCP peer's, for log lines */
	enum cert_role cert;
	char cert_name[32];  /* the client certificate's CN */
	struct requester who;
	GString *in;
	GString *out;
	bool watching;
	bool tracing;                     /* "watch trace": records, not events */
	struct trace_ask trace_filter; /* ... the ones it asked for */
	__u64 trace_skipped;              /* ... not queued: it read too slowly */
	bool waiting; /* a request's answer comes later: read no more lines until it does */
	bool executing;      /* in commands_execute: an answer now is not a late one */
	bool answered_early; /* ... and one came, before commands_execute returned */
	char asked_verb[16], asked_noun[16]; /* the request being answered, for /metrics */
	bool closing; /* close once out is sent */
	bool input_done; /* the peer sent all it will (EOF): answer it, then close */
};

struct control {
	struct tetherd *d;
	int unix_fd, tcp_fd;
	/* The listener's TLS credentials: new connections take a reference, so
	 * a reload (SIGHUP) leaves established ones theirs. NULL: plain TCP. */
	struct tls_creds *tls;
	char unix_path[108];
	char secret[128];        /* shared: any backend; empty: none */
	const char *secrets_dir; /* DIR/NAME: backend NAME's own secret; NULL: none */
	int secrets_fd;          /* DIR, opened at start; -1: none */
	gid_t group;
	bool group_set;
	GHashTable *connections;   /* fd -> struct connection */
	GHashTable *auth_failures; /* peer address string -> struct auth_failure */
	__u64 next_connection_id;
};

struct auth_failure {
	__u32 count;
	__u64 retry_after_ns;
};

static int retrace(struct control *control);

static void connection_close(struct connection *conn)
{
	struct control *control = conn->control;
	bool tracing = conn->tracing;

	loop_remove(control->d->loop, conn->fd);
	g_hash_table_remove(control->connections, GINT_TO_POINTER(conn->fd));
	if (tracing)
		retrace(control); /* the last one gone: the trace is off */
}

static void connection_free(gpointer data)
{
	struct connection *conn = data;

	transport_free(&conn->tx);
	close(conn->fd);
	g_string_free(conn->in, TRUE);
	g_string_free(conn->out, TRUE);
	g_free(conn);
}

static void queue_error(struct connection *conn, enum proto_error code, const char *message)
{
	struct proto_writer w;

	proto_writer_init(&w);
	proto_write_error(&w, code, "%s", message);
	proto_write_end(&w);
	g_string_append_len(conn->out, w.data, w.len);
	proto_writer_free(&w);
}

static void peer_address(int fd, char *out, size_t size)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);

	snprintf(out, size, "unknown");
	if (getpeername(fd, (struct sockaddr *)&peer, &len))
		return;
	if (peer.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, out, size);
	else if (peer.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, out, size);
}

/* Constant time in the secret's content, so timing does not reveal it. */
static bool secrets_equal(const char *given, const char *expected)
{
	size_t given_len = strlen(given), expected_len = strlen(expected);
	unsigned char difference = given_len != expected_len;

	for (size_t i = 0; i < expected_len; i++)
		difference |= (unsigned char)given[i < given_len ? i : 0] ^
			      (unsigned char)expected[i];
	return difference == 0;
}

/* The shared secret, or with backend= that backend's own one, read from
 * the secrets directory now: a secret added, changed or removed while
 * tetherd runs counts from the next auth. A secret file tetherd refuses
 * (its mode, its owner) is logged for the operator. */
static bool secret_accepted(struct control *control, const char *given, const char *backend,
			    const char *address)
{
	char own[128] = "", why[768];
	bool shared = control->secret[0] && secrets_equal(given, control->secret);
	bool by_own = false;

	if (backend && control->secrets_dir) {
		int err = config_read_agent_secret(control->secrets_fd, control->secrets_dir,
						   backend, geteuid(), own, sizeof(own), why,
						   sizeof(why));

		if (err && why[0])
			fprintf(stderr, "tetherd: auth agent backend=%s from %s: %s\n", backend,
				address, why);
		by_own = !err && secrets_equal(given, own);
		explicit_bzero(own, sizeof(own));
	}
	return shared || by_own;
}

/* Each failure from an address doubles its wait before the next try. */
static void count_failure(struct control *control, const char *address, __u64 now)
{
	struct auth_failure *failure = g_hash_table_lookup(control->auth_failures, address);

	if (!failure) {
		failure = g_new0(struct auth_failure, 1);
		g_hash_table_insert(control->auth_failures, g_strdup(address), failure);
	}
	failure->count++;
	__u64 backoff_ms = MIN(AUTH_BACKOFF_MAX_MS, 100ull << MIN(failure->count, 10));

	failure->retry_after_ns = now + backoff_ms * 1000000ull;
}

static bool waiting_after_failures(struct control *control, const char *address, __u64 now)
{
	struct auth_failure *failure = g_hash_table_lookup(control->auth_failures, address);

	return failure && now < failure->retry_after_ns;
}

/* Refuses an auth: the answer, a log line, the connection closed. */
static void refuse_auth(struct connection *conn, const char *backend, const char *why,
			const char *answer)
{
	fprintf(stderr, "tetherd: auth agent%s%s from %s refused: %s\n", backend ? " backend=" : "",
		backend ? backend : "", conn->address, why);
	queue_error(conn, PROTO_UNAUTHORIZED, answer);
	conn->closing = true;
}

/* "auth agent [secret=S] [backend=NAME]" on a connection its client
 * certificate authenticated already: the secret is optional, and when given
 * it must be good for the backend; a certificate bound to a backend keeps
 * its connection to that backend (another backend=, or none, is refused);
 * an operator's may narrow its connection to a backend. */
static void authenticate_certified(struct connection *conn, const char *secret,
				   const char *backend, __u64 now)
{
	struct control *control = conn->control;
	char answer[160];

	if (conn->cert == CERT_BACKEND && (!backend || strcmp(backend, conn->cert_name))) {
		char why[160];

		snprintf(why, sizeof(why), "its certificate (CN=%s) binds it to backend %s",
			 conn->cert_name, conn->cert_name);
		if (backend)
			snprintf(answer, sizeof(answer),
				 "this connection's certificate binds it to backend '%s', not '%s'",
				 conn->cert_name, backend);
		else
			snprintf(answer, sizeof(answer),
				 "this connection's certificate binds it to backend '%s' (auth agent "
				 "backend=%s)",
				 conn->cert_name, conn->cert_name);
		refuse_auth(conn, backend, why, answer);
		return;
	}
	if (secret && !secret_accepted(control, secret, backend, conn->address)) {
		count_failure(control, conn->address, now);
		refuse_auth(conn, backend, "wrong secret", "wrong secret");
		return;
	}
	if (secret)
		g_hash_table_remove(control->auth_failures, conn->address);
	snprintf(conn->who.backend, sizeof(conn->who.backend), "%s", backend ? backend : "");
	g_string_append(conn->out, "ok\n\n");
}

/* "auth agent secret=S [backend=NAME]": with backend= the connection is
 * bound to NAME (commands.c keeps it to NAME and NAME's containers),
 * whichever secret it gave; without, only the shared secret is good. A
 * connection with a client certificate has its binding from it
 * (authenticate_certified). */
static void authenticate(struct connection *conn, const struct proto_request *req)
{
	struct control *control = conn->control;
	char message[256];
	const char *secret = proto_get(req, "secret");
	const char *backend = NULL;
	static const char *const keys[] = { "secret", "backend", NULL };
	__u64 now = lifecycle_now(&control->d->lc);
	enum proto_error err = proto_check_keys(req, keys, message, sizeof(message));

	if (!err)
		err = proto_get_name(req, "backend", 0, &backend, message, sizeof(message));
	if (err) {
		queue_error(conn, err, message);
		return;
	}
	if (waiting_after_failures(control, conn->address, now)) {
		queue_error(conn, PROTO_UNAUTHORIZED,
			    "too many failed attempts from this address; wait and try again");
		conn->closing = true;
		return;
	}
	if (conn->cert != CERT_NONE) {
		authenticate_certified(conn, secret, backend, now);
		return;
	}
	if (!secret || !secret_accepted(control, secret, backend, conn->address)) {
		count_failure(control, conn->address, now);
		refuse_auth(conn, backend, "wrong secret", "wrong secret");
		return;
	}
	g_hash_table_remove(control->auth_failures, conn->address);
	conn->who.authenticated = true;
	snprintf(conn->who.backend, sizeof(conn->who.backend), "%s", backend ? backend : "");
	g_string_append(conn->out, "ok\n\n");
}

static void start_watching(struct connection *conn, const struct proto_request *req)
{
	if (req->arg_count) {
		queue_error(conn, PROTO_BAD_ARGUMENT, "watch event takes no arguments");
		return;
	}
	if (conn->who.remote && !conn->who.authenticated) {
		queue_error(conn, PROTO_UNAUTHORIZED,
			    "authenticate first: auth agent backend=NAME secret=S (the backend's "
			    "own secret) or auth agent secret=S (the shared one)");
		return;
	}
	conn->watching = true;
	g_string_append(conn->out, "ok\n");
}

/* The trace the program runs for every connection tracing now. */
static int retrace(struct control *control)
{
	GHashTableIter iter;
	gpointer value;
	GArray *filters = g_array_new(FALSE, FALSE, sizeof(struct trace_ask));

	g_hash_table_iter_init(&iter, control->connections);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct connection *conn = value;

		if (conn->tracing && !conn->closing)
			g_array_append_val(filters, conn->trace_filter);
	}
	int err = trace_feed_apply(control->d->trace, (struct trace_ask *)filters->data,
				   (int)filters->len);

	if (err && err != -ENODEV)
		fprintf(stderr, "tetherd: cannot switch the packet trace %s: %s\n",
			filters->len ? "on" : "off", strerror(-err));
	g_array_free(filters, TRUE);
	return err == -ENODEV ? 0 : err;
}

/* "watch trace [function=F] [key=K] [container=C]": operators only (it
 * shows every tenant's requests), "ok", then records until it closes. */
static void start_tracing(struct connection *conn, const struct proto_request *req)
{
	struct control *control = conn->control;
	char message[512];
	enum proto_error err;

	if ((conn->who.remote && !conn->who.authenticated) || conn->who.backend[0]) {
		queue_error(conn, PROTO_UNAUTHORIZED,
			    "watch trace shows every function's requests: it is for operators "
			    "(the Unix socket, the shared secret, or an operator's certificate), "
			    "not for a connection bound to a backend");
		return;
	}
	if ((err = trace_filter_parse(req, &conn->trace_filter, message, sizeof(message)))) {
		queue_error(conn, err, message);
		return;
	}
	if (!control->d->trace) {
		queue_error(conn, PROTO_INTERNAL,
			    "the packet trace is not available: tetherd could not read its ring "
			    "buffer when it started (its log says why)");
		return;
	}
	/* Switched on before "ok": the first request after it is traced. */
	conn->tracing = true;
	if (retrace(control)) {
		conn->tracing = false;
		retrace(control);
		queue_error(conn, PROTO_INTERNAL, "the kernel refused to switch the trace on");
		return;
	}
	g_string_append(conn->out, "ok\n");
}

void control_trace(struct control *control, const struct trace_record *rec)
{
	GHashTableIter iter;
	gpointer value;
	struct proto_writer w;

	proto_writer_init(&w);
	g_hash_table_iter_init(&iter, control->connections);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct connection *conn = value;

		if (!conn->tracing || conn->closing ||
		    !trace_filter_matches(&conn->trace_filter, rec))
			continue;
		if (conn->out->len > TRACER_BACKLOG_MAX) {
			conn->trace_skipped++;
			continue;
		}
		if (conn->trace_skipped) {
			g_string_append_printf(conn->out,
					       "trace=lost count=%llu where=tetherd\n",
					       (unsigned long long)conn->trace_skipped);
			conn->trace_skipped = 0;
		}
		if (!w.len)
			trace_format(control->d, rec, &w);
		g_string_append_len(conn->out, w.data, w.len);
	}
	proto_writer_free(&w);
}

void control_trace_lost(struct control *control, __u64 lost)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, control->connections);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct connection *conn = value;

		if (conn->tracing && !conn->closing)
			g_string_append_printf(conn->out, "trace=lost count=%llu where=ring\n",
					       (unsigned long long)lost);
	}
}

static void handle_line(struct connection *conn, const char *line, size_t len)
{
	struct proto_request *req = g_new(struct proto_request, 1);
	struct metrics *metrics = conn->control->d->metrics;
	char message[512];
	gsize answer_at = conn->out->len;
	enum proto_error err = proto_parse_line(line, len, req, message, sizeof(message));

	if (err) {
		queue_error(conn, err, message);
		metrics_request(metrics, NULL, NULL, conn->out->str + answer_at);
	} else if (!strcmp(req->verb, "auth") && !strcmp(req->noun, "agent")) {
		authenticate(conn, req);
		metrics_request(metrics, req->verb, req->noun, conn->out->str + answer_at);
	} else if (!strcmp(req->verb, "watch") && !strcmp(req->noun, "event")) {
		start_watching(conn, req);
		metrics_request(metrics, req->verb, req->noun, conn->out->str + answer_at);
	} else if (!strcmp(req->verb, "watch") && !strcmp(req->noun, "trace")) {
		start_tracing(conn, req);
		metrics_request(metrics, req->verb, req->noun, conn->out->str + answer_at);
	} else {
		struct proto_writer w;

		proto_writer_init(&w);
		/* An answer given later is counted when it comes (control_answer). */
		snprintf(conn->asked_verb, sizeof(conn->asked_verb), "%s", req->verb);
		snprintf(conn->asked_noun, sizeof(conn->asked_noun), "%s", req->noun);
		conn->executing = true;
		bool answered = commands_execute(conn->control->d, &conn->who, req, &w);

		conn->executing = false;
		if (answered) {
			g_string_append_len(conn->out, w.data, w.len);
			metrics_request(metrics, req->verb, req->noun, w.data ? w.data : "");
		} else if (!conn->answered_early) {
			conn->waiting = true;
		}
		conn->answered_early = false;
		proto_writer_free(&w);
	}
	g_free(req);
}

static void handle_input(struct connection *conn)
{
	char *newline;

	while (!conn->closing && !conn->watching && !conn->tracing && !conn->waiting &&
	       (newline = memchr(conn->in->str, '\n', conn->in->len))) {
		size_t len = newline - conn->in->str + 1;
		/* Out of the buffer first: an answer given while the line is
		 * handled may read the next ones. */
		g_autofree char *line = g_memdup2(conn->in->str, len);

		g_string_erase(conn->in, 0, len);
		handle_line(conn, line, len);
	}
	if (conn->closing)
		return;
	bool whole_line = memchr(conn->in->str, '\n', conn->in->len) != NULL;

	if (!whole_line && conn->in->len >= PROTO_LINE_MAX) {
		queue_error(conn, PROTO_BAD_REQUEST, "line longer than 1024 bytes; closing");
		conn->closing = true;
	} else if (conn->in->len > WAITING_INPUT_MAX) {
		queue_error(conn, PROTO_BAD_REQUEST,
			    "more than 1 MiB of requests sent behind one still waiting for the "
			    "fleet's store; closing");
		conn->closing = true;
	}
}

void control_answer(struct control *control, const struct control_ticket *ticket,
		    const char *answer, size_t len)
{
	struct connection *conn =
		g_hash_table_lookup(control->connections, GINT_TO_POINTER(ticket->fd));

	if (!conn || conn->who.ticket.id != ticket->id)
		return; /* it closed meanwhile */
	g_string_append_len(conn->out, answer, len);
	metrics_request(control->d->metrics, conn->asked_verb, conn->asked_noun, answer);
	if (conn->executing) {
		conn->answered_early = true; /* handle_line goes on reading */
		return;
	}
	conn->waiting = false;
	if (!control->d->stop)
		handle_input(conn);
}

/* Everything the peer sent that the transport has: TLS may hold decrypted
 * bytes epoll cannot see, so read until the socket has no more. False when
 * the connection was closed (and freed). */
static bool read_input(struct connection *conn)
{
	char buffer[16384];

	while (!conn->closing && !conn->input_done) {
		ssize_t got = transport_recv(&conn->tx, buffer, sizeof(buffer));

		if (got == -EAGAIN)
			return true;
		if (got == 0 && (conn->waiting || conn->out->len ||
				 memchr(conn->in->str, '\n', conn->in->len))) {
			/* Requests sent, then the sending side shut (socat, a
			 * script): they are still answered before it closes. */
			conn->input_done = true;
			loop_modify(conn->control->d->loop, conn->fd, conn->out->len ? EPOLLOUT : 0);
			return true;
		}
		if (got <= 0) {
			if (got < 0 && conn->tx.session)
				fprintf(stderr, "tetherd: connection from %s: %s\n", conn->address,
					conn->tx.error);
			connection_close(conn);
			return false;
		}
		g_string_append_len(conn->in, buffer, got);
		handle_input(conn);
	}
	return true;
}

/* --tls-client-ca: the certificate's CN says who the connection is: an
 * operator (--tls-operator), or backend NAME, bound to it as by "auth agent
 * backend=NAME" with NAME's secret. A name that is neither is refused: the
 * client reads why as the answer to its first request. */
static void bind_certificate(struct connection *conn)
{
	const struct tetherd_tls_config *tls = &conn->control->d->config.tls;
	const char *name = conn->tx.peer_name;

	if (!tls_creds_require_peer_cert(conn->tx.creds))
		return; /* server-only TLS: the secret authenticates */
	for (int i = 0; i < tls->operator_count; i++)
		if (!strcmp(name, tls->operators[i])) {
			conn->cert = CERT_OPERATOR;
			snprintf(conn->cert_name, sizeof(conn->cert_name), "%.31s", name);
			conn->who.authenticated = true;
			return;
		}
	if (config_is_name(name)) {
		conn->cert = CERT_BACKEND;
		snprintf(conn->cert_name, sizeof(conn->cert_name), "%.31s", name);
		snprintf(conn->who.backend, sizeof(conn->who.backend), "%.31s", name);
		conn->who.authenticated = true;
		return;
	}
	fprintf(stderr, "tetherd: connection from %s refused: its certificate's CN '%s' is no "
			"backend name ([A-Za-z0-9._-], 1-31) and no --tls-operator\n",
		conn->address, name[0] ? name : "(none, or more than one)");
	queue_error(conn, PROTO_UNAUTHORIZED,
		    "your certificate's CN names no backend and no operator of this tetherd");
	conn->closing = true;
}

/* The TLS handshake, a step each time the socket is ready. */
static void continue_handshake(struct connection *conn)
{
	struct loop *loop = conn->control->d->loop;
	int err = transport_handshake(&conn->tx);

	if (err == -EAGAIN) {
		loop_modify(loop, conn->fd, transport_wants_write(&conn->tx) ? EPOLLOUT : EPOLLIN);
		return;
	}
	if (err) {
		fprintf(stderr, "tetherd: TLS connection from %s refused: %s\n", conn->address,
			conn->tx.error);
		connection_close(conn);
		return;
	}
	conn->handshaking = false;
	bind_certificate(conn);
	loop_modify(loop, conn->fd, EPOLLIN | (conn->out->len ? EPOLLOUT : 0));
	read_input(conn); /* what came with the handshake's last flight */
}

static void on_connection(void *ctx, int fd, uint32_t events)
{
	struct connection *conn = ctx;

	(void)fd;
	if (conn->handshaking) {
		continue_handshake(conn);
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		connection_close(conn);
		return;
	}
	if (events & EPOLLIN && !read_input(conn))
		return;
	if (events & EPOLLOUT)
		control_flush(conn->control);
}

/* Whether the peer process holds gid among its supplementary groups, as the
 * kernel has them (the "Groups:" line of /proc/PID/status). */
static bool peer_in_group(pid_t pid, gid_t gid)
{
	char path[64], line[4096];
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *status = fopen(path, "r");

	if (!status)
		return false;
	while (!found && fgets(line, sizeof(line), status)) {
		if (strncmp(line, "Groups:", 7))
			continue;
		char *cursor = line + 7, *end;

		for (long group; (group = strtol(cursor, &end, 10)), end != cursor; cursor = end)
			if ((gid_t)group == gid)
				found = true;
	}
	fclose(status);
	return found;
}

/* Root, tetherd's own user, or a member of the configured group. */
static bool unix_peer_allowed(struct control *control, int fd)
{
	struct ucred peer;
	socklen_t len = sizeof(peer);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len))
		return false;
	if (peer.uid == 0 || peer.uid == geteuid())
		return true;
	return control->group_set &&
	       (peer.gid == control->group || peer_in_group(peer.pid, control->group));
}

static void accept_connection(struct control *control, int listen_fd, bool remote)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (!remote && !unix_peer_allowed(control, fd)) {
		static const char refusal[] =
			"error unauthorized: your user may not use this socket\n\n";

		if (write(fd, refusal, sizeof(refusal) - 1) < 0)
			{ /* the peer is refused either way */ }
		close(fd);
		return;
	}
	struct connection *conn = g_new0(struct connection, 1);
	char why[256];

	conn->control = control;
	conn->fd = fd;
	conn->who.remote = remote;
	conn->who.ticket = (struct control_ticket){ fd, ++control->next_connection_id };
	conn->in = g_string_new(NULL);
	conn->out = g_string_new(NULL);
	if (remote)
		peer_address(fd, conn->address, sizeof(conn->address));
	else
		snprintf(conn->address, sizeof(conn->address), "the Unix socket");
	if (transport_init(&conn->tx, fd, remote ? control->tls : NULL, NULL, why, sizeof(why))) {
		fprintf(stderr, "tetherd: connection from %s refused: %s\n", conn->address, why);
		close(fd);
		g_string_free(conn->in, TRUE);
		g_string_free(conn->out, TRUE);
		g_free(conn);
		return;
	}
	conn->handshaking = !conn->tx.handshaken;
	conn->handshake_deadline_ns =
		lifecycle_now(&control->d->lc) + HANDSHAKE_TIMEOUT_MS * 1000000ull;
	g_hash_table_insert(control->connections, GINT_TO_POINTER(fd), conn);
	loop_add(control->d->loop, fd, EPOLLIN, on_connection, conn);
}

static void on_unix_listener(void *ctx, int fd, uint32_t events)
{
	(void)events;
	accept_connection(ctx, fd, false);
}

static void on_tcp_listener(void *ctx, int fd, uint32_t events)
{
	(void)events;
	accept_connection(ctx, fd, true);
}

struct control *control_new(struct tetherd *d)
{
	struct control *control = g_new0(struct control, 1);

	control->d = d;
	control->unix_fd = control->tcp_fd = control->secrets_fd = -1;
	control->connections =
		g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, connection_free);
	control->auth_failures = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	return control;
}

void control_free(struct control *control)
{
	if (!control)
		return;
	g_hash_table_destroy(control->connections);
	g_hash_table_destroy(control->auth_failures);
	if (control->unix_fd >= 0) {
		close(control->unix_fd);
		unlink(control->unix_path);
	}
	if (control->tcp_fd >= 0)
		close(control->tcp_fd);
	if (control->secrets_fd >= 0)
		close(control->secrets_fd);
	tls_creds_unref(control->tls);
	g_free(control);
}

static int make_parent_dir(const char *path)
{
	g_autofree char *dir = g_path_get_dirname(path);

	return g_mkdir_with_parents(dir, 0755) ? -errno : 0;
}

int control_listen_unix(struct control *control, const char *path, const char *group)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	int err;

	if (strlen(path) >= sizeof(address.sun_path)) {
		fprintf(stderr, "tetherd: socket path %s is too long\n", path);
		return -ENAMETOOLONG;
	}
	if (group && group[0]) {
		struct group *entry = getgrnam(group);

		if (!entry) {
			fprintf(stderr, "tetherd: no group named '%s' for the socket\n", group);
			return -ENOENT;
		}
		control->group = entry->gr_gid;
		control->group_set = true;
	}
	snprintf(address.sun_path, sizeof(address.sun_path), "%s", path);
	snprintf(control->unix_path, sizeof(control->unix_path), "%s", path);
	if ((err = make_parent_dir(path)))
		return err;
	unlink(path); /* a stale socket of an earlier tetherd */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old_mask = umask(0177);

	err = fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof(address)) ? -errno : 0;
	umask(old_mask);
	if (!err && control->group_set &&
	    (chown(path, (uid_t)-1, control->group) || chmod(path, 0660)))
		err = -errno;
	if (!err && listen(fd, 64))
		err = -errno;
	if (err) {
		fprintf(stderr, "tetherd: cannot listen on %s: %s\n", path, strerror(-err));
		if (fd >= 0)
			close(fd);
		return err;
	}
	control->unix_fd = fd;
	return loop_add(control->d->loop, fd, EPOLLIN, on_unix_listener, control);
}

/* Opened now, while tetherd may still be root, and read as the user it will
 * run as (--user), who owns the directory. */
static int open_agent_secrets(struct control *control, const char *dir)
{
	const struct tetherd_config *config = &control->d->config;
	uid_t owner = config->user[0] ? config->user_uid : geteuid();
	char why[768];
	int fd = config_open_agent_secrets(dir, owner, why, sizeof(why));

	if (fd < 0) {
		fprintf(stderr, "tetherd: %s\n", why);
		return fd;
	}
	control->secrets_fd = fd;
	control->secrets_dir = dir;
	return 0;
}

/* The listener's credentials from the files configured: NULL, with a log
 * line, when one of them is missing or wrong. */
static struct tls_creds *load_tls(const struct tetherd_tls_config *tls, const char *when)
{
	struct tls_files files = { tls->cert, tls->key, tls->client_ca };
	char why[512];
	struct tls_creds *creds = tls_creds_load(TLS_SERVER, &files, why, sizeof(why));

	if (!creds)
		fprintf(stderr, "tetherd: %s: %s\n", when, why);
	return creds;
}

/* How the listener authenticates, for its log line at start. */
static void describe_listener(struct control *control, const char *address)
{
	const struct tetherd_tls_config *tls = &control->d->config.tls;
	char certificate[512], operators[TETHERD_MAX_OPERATORS * 33] = "";
	GString *line = g_string_new(NULL);

	if (control->tls) {
		tls_creds_describe(control->tls, certificate, sizeof(certificate));
		g_string_append_printf(line, "TLS, tetherd's certificate: %s", certificate);
		if (tls->client_ca[0]) {
			for (int i = 0; i < tls->operator_count; i++)
				snprintf(operators + strlen(operators),
					 sizeof(operators) - strlen(operators), "%s%s", i ? "," : "",
					 tls->operators[i]);
			g_string_append_printf(line, "; client certificates from the CAs in %s "
						     "required, CN=NAME binds to backend NAME%s%s",
					       tls->client_ca, operators[0] ? ", operators: " : "",
					       operators);
		}
	} else {
		g_string_append(line, "PLAIN TCP (--tcp-plain)");
	}
	g_string_append_printf(line, "; %s%s%s%s", control->secret[0]
							? "the shared secret (any backend)"
							: "no shared secret",
			       control->secrets_dir ? ", per-backend secrets in " : "",
			       control->secrets_dir ? control->secrets_dir : "",
			       control->secrets_dir ? " (their files read at each auth)" : "");
	fprintf(stderr, "tetherd: TCP listener on %s: %s\n", address, line->str);
	if (!control->tls)
		fprintf(stderr, "tetherd: warning: the TCP listener on %s does not use TLS: secrets "
				"and requests cross the network in clear, readable and changeable by "
				"anyone on the path; give --tls-cert and --tls-key (and "
				"--tls-client-ca) instead of --tcp-plain\n",
			address);
	g_string_free(line, TRUE);
}

int control_listen_tcp(struct control *control, const char *address, const char *secret)
{
	const struct tetherd_config *config = &control->d->config;
	const char *secrets_dir = config->agent_secrets_dir;
	bool shared = secret && secret[0];
	bool by_certificate = !config->tls.plain && config->tls.client_ca[0];
	struct sockaddr_storage bind_address;
	socklen_t len;
	int one = 1, err;

	if (shared ? strlen(secret) < 16 : !secrets_dir[0] && !by_certificate) {
		fprintf(stderr, "tetherd: the TCP listener needs a shared secret of at least 16 "
				"characters (--tcp-secret-file), per-backend secrets "
				"(--agent-secrets-dir), client certificates (--tls-client-ca), or "
				"several of them\n");
		return -EINVAL;
	}
	__u8 bind_addr[16];
	__u16 bind_port;

	if (endpoint_parse(address, bind_addr, &bind_port)) {
		fprintf(stderr, "tetherd: --tcp-listen '%s' is not ADDR:PORT or [IPv6]:PORT "
				"(such as 0.0.0.0:7070)\n",
			address);
		return -EINVAL;
	}
	len = endpoint_sockaddr(bind_addr, bind_port, &bind_address);
	if (!config->tls.plain && !(control->tls = load_tls(&config->tls, "cannot use TLS")))
		return -EINVAL;
	snprintf(control->secret, sizeof(control->secret), "%s", shared ? secret : "");
	if (secrets_dir[0] && (err = open_agent_secrets(control, secrets_dir)))
		return err;
	int fd = socket(bind_address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&bind_address, len) || listen(fd, 64)) {
		err = -errno;
		fprintf(stderr, "tetherd: cannot listen on %s: %s\n", address, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	control->tcp_fd = fd;
	describe_listener(control, address);
	return loop_add(control->d->loop, fd, EPOLLIN, on_tcp_listener, control);
}

void control_reload_tls(struct control *control)
{
	struct tls_creds *creds;
	char certificate[512];

	if (!control->tls)
		return; /* no TLS listener */
	creds = load_tls(&control->d->config.tls,
			 "SIGHUP: the TLS files were not reloaded, the ones in use stay");
	if (!creds)
		return;
	tls_creds_unref(control->tls);
	control->tls = creds;
	tls_creds_describe(creds, certificate, sizeof(certificate));
	fprintf(stderr, "tetherd: SIGHUP: TLS files reloaded: new connections get the certificate "
			"%s%s%s; the %u connections open keep theirs\n",
		certificate, control->d->config.tls.client_ca[0] ? " and the CAs in " : "",
		control->d->config.tls.client_ca, g_hash_table_size(control->connections));
}

void control_tick(struct control *control)
{
	GHashTableIter iter;
	gpointer value;
	GPtrArray *late = g_ptr_array_new();
	__u64 now = lifecycle_now(&control->d->lc);

	g_hash_table_iter_init(&iter, control->connections);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct connection *conn = value;

		if (conn->handshaking && now > conn->handshake_deadline_ns)
			g_ptr_array_add(late, conn);
	}
	for (guint i = 0; i < late->len; i++) {
		struct connection *conn = g_ptr_array_index(late, i);

		fprintf(stderr, "tetherd: TLS connection from %s closed: no handshake within %d s\n",
			conn->address, HANDSHAKE_TIMEOUT_MS / 1000);
		connection_close(conn);
	}
	g_ptr_array_free(late, TRUE);
}

/* A connection bound to a backend hears of that backend only, and of what
 * names no backend (capacity_needed). */
static bool event_is_for(const struct connection *conn, const char *line)
{
	const char *field = strstr(line, " backend=");

	if (!conn->who.backend[0] || !field)
		return true;
	field += strlen(" backend=");
	size_t len = strcspn(field, " \n");

	return len == strlen(conn->who.backend) && !strncmp(field, conn->who.backend, len);
}

void control_broadcast(struct control *control, const char *line)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, control->connections);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct connection *conn = value;

		if (!conn->watching || conn->closing || !event_is_for(conn, line))
			continue;
		if (conn->out->len > WATCHER_BACKLOG_MAX) {
			g_string_append(conn->out, "event=overflow reason=watcher_too_slow\n");
			conn->closing = true;
			continue;
		}
		g_string_append(conn->out, line);
		g_string_append_c(conn->out, '\n');
	}
}

/* Writes what it can; a connection with output left waits for EPOLLOUT. */
static bool send_output(struct connection *conn)
{
	if (conn->handshaking)
		return true; /* nothing goes out before it is done */
	while (conn->out->len) {
		ssize_t sent = transport_send(&conn->tx, conn->out->str, conn->out->len);

		if (sent == -EAGAIN)
			break;
		if (sent <= 0)
			return false;
		g_string_erase(conn->out, 0, sent);
	}
	loop_modify(conn->control->d->loop, conn->fd,
		    (conn->input_done ? 0 : EPOLLIN) | (conn->out->len ? EPOLLOUT : 0));
	bool answered_all = conn->input_done && !conn->waiting &&
			    !memchr(conn->in->str, '\n', conn->in->len);

	return !((conn->closing || answered_all) && conn->out->len == 0);
}

void control_flush(struct control *control)
{
	GHashTableIter iter;
	gpointer value;

	if (!control) /* a start that failed before the socket was made */
		return;
	GPtrArray *finished = g_ptr_array_new();

	g_hash_table_iter_init(&iter, control->connections);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		if (!send_output(value))
			g_ptr_array_add(finished, value);
	for (guint i = 0; i < finished->len; i++)
		connection_close(g_ptr_array_index(finished, i));
	g_ptr_array_free(finished, TRUE);
}
