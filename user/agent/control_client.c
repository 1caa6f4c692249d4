// SPDX-License-Identifier: MIT
/* A connection to tetherd (control_client.h). */
#define _GNU_SOURCE
#include "control_client.h"

#include <errno.h>
#include <stdint.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "agent_clock.h"
#include "core/core.h"

#define CONNECT_TIMEOUT_MS 3000
/* tetherd answers at once; a request unanswered this long means a wedged
 * tetherd or a dead peer, and the link starts over. */
#define ANSWER_TIMEOUT_MS 10000
/* Bytes read past the last whole line: more means tetherd is not speaking
 * the protocol. */
#define INPUT_MAX (4 * PROTO_LINE_MAX)

struct link_request {
	char what[32]; /* "add backend" */
	bool stream;   /* "watch event": "ok", then events */
	tetherd_done done;
	__u32 arg;
	__u64 sent_ms;
};

static void on_link(void *ctx, int fd, uint32_t events);

void link_init(struct tetherd_link *link, void *owner_ctx, const char *role,
	       const struct agent_endpoint *endpoint, const char *secret, const char *backend,
	       const struct link_owner *owner, struct loop *loop, __u32 backoff_max_ms)
{
	memset(link, 0, sizeof(*link));
	link->owner_ctx = owner_ctx;
	link->role = role;
	link->endpoint = endpoint;
	link->secret = secret;
	link->backend = backend;
	link->owner = owner;
	link->loop = loop;
	link->fd = -1;
	link->in = g_string_new(NULL);
	link->out = g_string_new(NULL);
	g_queue_init(&link->pending);
	link->answer.records = g_ptr_array_new_with_free_func(g_free);
	link->backoff_ms = LINK_BACKOFF_MIN_MS;
	link->backoff_max_ms = MAX(backoff_max_ms, LINK_BACKOFF_MIN_MS);
}

void link_set_tls(struct tetherd_link *link, struct tls_creds *creds, const char *server_name)
{
	tls_creds_unref(link->tls);
	link->tls = tls_creds_ref(creds);
	link->server_name = server_name && server_name[0] ? server_name : NULL;
}

void link_free(struct tetherd_link *link)
{
	if (link->state != LINK_DOWN)
		link_drop(link, NULL, false);
	tls_creds_unref(link->tls);
	link->tls = NULL;
	g_string_free(link->in, TRUE);
	g_string_free(link->out, TRUE);
	g_ptr_array_free(link->answer.records, TRUE);
}

bool link_is_up(const struct tetherd_link *link)
{
	return link->state == LINK_UP;
}

bool link_oldest_pending(const struct tetherd_link *link, __u64 *sent_ms, const char **what)
{
	const struct link_request *req = g_queue_peek_head((GQueue *)&link->pending);

	if (!req)
		return false;
	*sent_ms = req->sent_ms;
	*what = req->what;
	return true;
}

void link_log_refusal(const struct tetherd_link *link, const struct tetherd_answer *answer)
{
	agent_log("tetherd at %s refused %s: %s: %s", link->endpoint->text, answer->request,
		  proto_error_code(answer->error), answer->message);
}

static void reset_answer(struct tetherd_link *link)
{
	link->status_read = false;
	link->answer.ok = false;
	link->answer.lost = false;
	link->answer.error = PROTO_OK;
	link->answer.message[0] = '\0';
	g_ptr_array_set_size(link->answer.records, 0);
}

/* Logs a failure unless it is the one logged last (a tetherd that stays
 * away is reported once, not at every retry). */
static void log_failure(struct tetherd_link *link, const char *why)
{
	if (!why || !strcmp(why, link->last_failure))
		return;
	snprintf(link->last_failure, sizeof(link->last_failure), "%s", why);
	agent_log("%s connection to tetherd at %s: %s; retrying", link->role,
		  link->endpoint->text, why);
}

static void fail_pending(struct tetherd_link *link)
{
	struct link_request *req;

	while ((req = g_queue_pop_head(&link->pending))) {
		struct tetherd_answer lost = { .request = req->what, .lost = true };

		if (req->done)
			req->done(link, &lost, req->arg);
		g_free(req);
	}
}

void link_drop(struct tetherd_link *link, const char *why, bool reconnect)
{
	bool was_up = link->state == LINK_UP || link->state == LINK_STREAMING;
	bool moved = reconnect && link->failed; /* the hook says where next, and why */

	if (link->state == LINK_DOWN)
		return;
	if (!moved)
		log_failure(link, why);
	loop_remove(link->loop, link->fd);
	transport_free(&link->tx);
	close(link->fd);
	link->fd = -1;
	link->state = LINK_DOWN;
	link->broken[0] = '\0';
	g_string_truncate(link->in, 0);
	g_string_truncate(link->out, 0);
	reset_answer(link);
	link->retry_at_ms = reconnect ? now_ms() + link->backoff_ms : UINT64_MAX;
	link->backoff_ms = MIN(link->backoff_ms * 2, link->backoff_max_ms);
	/* The link is down before anyone hears of it, so nobody sends on it. */
	fail_pending(link);
	if (was_up && link->owner->down)
		link->owner->down(link);
	if (moved)
		link->failed(link, why ? why : "dropped");
}

void link_move(struct tetherd_link *link, const struct agent_endpoint *endpoint,
	       __u64 connect_at_ms)
{
	link_drop(link, NULL, false);
	link->endpoint = endpoint;
	link->retry_at_ms = connect_at_ms;
	link->backoff_ms = LINK_BACKOFF_MIN_MS;
	link->last_failure[0] = '\0';
}

/* Sends what the socket takes. A failure only marks the link broken, and
 * link_tick drops it: so a request being sent never sees its own answer
 * reported lost before link_request has returned. */
static void flush_output(struct tetherd_link *link)
{
	if (link->state == LINK_CONNECTING || link->state == LINK_HANDSHAKING)
		return; /* sent once the link is ready */
	while (link->out->len && !link->broken[0]) {
		ssize_t sent = transport_send(&link->tx, link->out->str, link->out->len);

		if (sent == -EAGAIN)
			break;
		if (sent <= 0)
			snprintf(link->broken, sizeof(link->broken), "sending: %s",
				 sent < 0 ? link->tx.error : "nothing sent");
		else
			g_string_erase(link->out, 0, sent);
	}
	loop_modify(link->loop, link->fd,
		    EPOLLIN | (link->out->len && !link->broken[0] ? EPOLLOUT : 0));
}

/* Queues a line with its answer's handler, whatever the state. */
static void send_line(struct tetherd_link *link, const char *line, bool stream, tetherd_done done,
		      __u32 arg)
{
	struct link_request *req = g_new0(struct link_request, 1);
	const char *space = strchr(line, ' ');
	const char *end = space ? strpbrk(space + 1, " \n") : NULL;
	size_t what_len = end ? (size_t)(end - line) : strcspn(line, "\n");

	snprintf(req->what, sizeof(req->what), "%.*s", (int)what_len, line);
	req->stream = stream;
	req->done = done;
	req->arg = arg;
	req->sent_ms = now_ms();
	g_queue_push_tail(&link->pending, req);
	g_string_append(link->out, line);
	flush_output(link);
}

int link_request(struct tetherd_link *link, struct proto_writer *w, tetherd_done done,
		 __u32 arg)
{
	int err = -1;

	if (link->state == LINK_UP && !w->failed && w->len) {
		send_line(link, w->data, false, done, arg);
		err = 0;
	}
	proto_writer_free(w);
	return err;
}

int link_watch(struct tetherd_link *link, tetherd_done done)
{
	if (link->state != LINK_UP)
		return -1;
	send_line(link, "watch event\n", true, done, 0);
	return 0;
}

static void became_up(struct tetherd_link *link)
{
	link->state = LINK_UP;
	link->backoff_ms = LINK_BACKOFF_MIN_MS;
	link->last_failure[0] = '\0';
	if (link->owner->up)
		link->owner->up(link);
}

static void on_authenticated(struct tetherd_link *link, const struct tetherd_answer *answer,
			     __u32 arg)
{
	(void)arg;
	if (answer->lost)
		return;
	if (!answer->ok) {
		char why[PROTO_LINE_MAX + 64];

		snprintf(why, sizeof(why), "auth agent refused: %s: %s",
			 proto_error_code(answer->error), answer->message);
		link_drop(link, why, true);
		return;
	}
	became_up(link);
}

static void authenticate(struct tetherd_link *link)
{
	struct proto_writer w;

	proto_writer_init(&w);
	proto_request_begin(&w, "auth", "agent");
	if (link->secret && link->secret[0])
		proto_record_str(&w, "secret", link->secret);
	proto_record_str(&w, "backend", link->backend);
	proto_record_end(&w);
	link->state = LINK_AUTHENTICATING;
	if (!w.failed)
		send_line(link, w.data, false, on_authenticated, 0);
	proto_writer_free(&w);
}

/* TLS: a step of the handshake each time the socket is ready. tetherd's
 * certificate is checked here, before the first request (the secret) goes. */
static void handshake_step(struct tetherd_link *link)
{
	int err = transport_handshake(&link->tx);

	if (err == -EAGAIN) {
		loop_modify(link->loop, link->fd,
			    transport_wants_write(&link->tx) ? EPOLLOUT : EPOLLIN);
		return;
	}
	if (err) {
		char why[sizeof(link->tx.error) + 64];

		snprintf(why, sizeof(why), "TLS handshake failed, nothing sent: %s",
			 link->tx.error);
		link_drop(link, why, true);
		return;
	}
	loop_modify(link->loop, link->fd, EPOLLIN);
	authenticate(link);
}

static void connected(struct tetherd_link *link)
{
	char why[256];

	loop_modify(link->loop, link->fd, EPOLLIN);
	if (!link->endpoint->tcp) {
		became_up(link);
		return;
	}
	if (link->tls) {
		const char *name = link->server_name ? link->server_name : link->endpoint->host;

		if (transport_init(&link->tx, link->fd, link->tls, name, why, sizeof(why))) {
			link_drop(link, why, true);
			return;
		}
		link->state = LINK_HANDSHAKING;
		handshake_step(link);
		return;
	}
	authenticate(link);
}

/* A dead peer on an idle TCP link (the watch link is always idle) is noticed
 * in about 20 s instead of hours. */
static void keep_alive(int fd)
{
	int on = 1, idle = 5, interval = 5, count = 3;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

static int start_connect(struct tetherd_link *link)
{
	const struct agent_endpoint *endpoint = link->endpoint;
	struct sockaddr_un unix_address = { .sun_family = AF_UNIX };
	const struct sockaddr *address = (const struct sockaddr *)&endpoint->address;
	socklen_t address_len = endpoint->address_len;
	int family = endpoint->tcp ? endpoint->address.ss_family : AF_UNIX;

	if (!endpoint->tcp) {
		snprintf(unix_address.sun_path, sizeof(unix_address.sun_path), "%s",
			 endpoint->path);
		address = (const struct sockaddr *)&unix_address;
		address_len = sizeof(unix_address);
	}
	link->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (link->fd < 0)
		return -errno;
	if (endpoint->tcp)
		keep_alive(link->fd);
	if (connect(link->fd, address, address_len) && errno != EINPROGRESS) {
		int err = -errno;

		close(link->fd);
		link->fd = -1;
		return err;
	}
	return 0;
}

static void link_connect(struct tetherd_link *link)
{
	int err = start_connect(link);

	if (err || loop_add(link->loop, link->fd, EPOLLOUT, on_link, link)) {
		char why[128];

		snprintf(why, sizeof(why), "cannot connect: %s", strerror(err ? -err : errno));
		if (link->fd >= 0)
			close(link->fd);
		link->fd = -1;
		if (link->failed) {
			link->failed(link, why);
			return;
		}
		log_failure(link, why);
		link->retry_at_ms = now_ms() + link->backoff_ms;
		link->backoff_ms = MIN(link->backoff_ms * 2, link->backoff_max_ms);
		return;
	}
	transport_init(&link->tx, link->fd, NULL, NULL, NULL, 0); /* plain until connected */
	link->state = LINK_CONNECTING;
	link->connect_started_ms = now_ms();
}

/* The connect finished: connected, failed, or (a stray wakeup) not yet. */
static void finish_connect(struct tetherd_link *link)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	int error = 0;
	socklen_t error_len = sizeof(error);

	getsockopt(link->fd, SOL_SOCKET, SO_ERROR, &error, &error_len);
	if (error) {
		char why[128];

		snprintf(why, sizeof(why), "cannot connect: %s", strerror(error));
		link_drop(link, why, true);
		return;
	}
	if (getpeername(link->fd, (struct sockaddr *)&peer, &len) == 0)
		connected(link);
}

static bool is_empty_line(const char *line, size_t len)
{
	return (len == 1 && line[0] == '\n') || (len == 2 && line[0] == '\r' && line[1] == '\n');
}

static void complete_answer(struct tetherd_link *link)
{
	struct link_request *req = g_queue_pop_head(&link->pending);

	link->answer.request = req->what;
	if (req->stream && link->answer.ok)
		link->state = LINK_STREAMING;
	if (link->answered)
		link->answered(link, &link->answer);
	if (req->done)
		req->done(link, &link->answer, req->arg);
	g_free(req);
	reset_answer(link);
}

/* One line of an answer. Returns 0, or -1 with why when tetherd does not
 * speak the protocol. */
static int answer_line(struct tetherd_link *link, const char *line, size_t len, char *why,
		       size_t size)
{
	struct link_request *req = g_queue_peek_head(&link->pending);

	if (!req) {
		snprintf(why, size, "tetherd sent '%.*s' when no answer was due",
			 (int)strcspn(line, "\r\n"), line);
		return -1;
	}
	if (!link->status_read) {
		int status = proto_parse_status(line, len, &link->answer.error,
						link->answer.message,
						sizeof(link->answer.message));

		if (status < 0) {
			snprintf(why, size, "tetherd sent '%.*s' where 'ok' or 'error' was due",
				 (int)strcspn(line, "\r\n"), line);
			return -1;
		}
		link->answer.ok = status == 0;
		link->status_read = true;
		/* "watch event" answers "ok" and then streams: no empty line. */
		if (req->stream && link->answer.ok)
			complete_answer(link);
		return 0;
	}
	if (is_empty_line(line, len)) {
		complete_answer(link);
		return 0;
	}
	/* A parsed record points into its own buffer: it must never move, so
	 * each lives in its own allocation. */
	struct proto_request *record = g_new(struct proto_request, 1);
	char message[256];

	if (proto_parse_record(line, len, record, message, sizeof(message))) {
		snprintf(why, size, "tetherd sent a record the agent cannot read: %s", message);
		g_free(record);
		return -1;
	}
	g_ptr_array_add(link->answer.records, record);
	return 0;
}

static void take_lines(struct tetherd_link *link)
{
	char *newline;

	while (link->fd >= 0 && (newline = memchr(link->in->str, '\n', link->in->len))) {
		size_t len = newline - link->in->str + 1;
		g_autofree char *line = g_strndup(link->in->str, len);
		char why[PROTO_LINE_MAX];

		g_string_erase(link->in, 0, len);
		if (link->state == LINK_STREAMING) {
			if (!is_empty_line(line, len) && link->owner->event)
				link->owner->event(link, line, len);
		} else if (answer_line(link, line, len, why, sizeof(why))) {
			link_drop(link, why, true);
			return;
		}
	}
	if (link->in->len > INPUT_MAX)
		link_drop(link, "tetherd sent a line longer than the protocol allows", true);
}

/* Everything the transport has: TLS may hold decrypted bytes epoll cannot
 * see. */
static void read_input(struct tetherd_link *link)
{
	char buffer[16384];

	while (link->fd >= 0) {
		ssize_t got = transport_recv(&link->tx, buffer, sizeof(buffer));

		if (got == -EAGAIN)
			return;
		if (got <= 0) {
			char why[sizeof(link->tx.error) + 32];

			snprintf(why, sizeof(why), "%s",
				 got == 0 ? "tetherd closed the connection" : link->tx.error);
			link_drop(link, why, true);
			return;
		}
		g_string_append_len(link->in, buffer, got);
		take_lines(link);
	}
}

static void on_link(void *ctx, int fd, uint32_t events)
{
	struct tetherd_link *link = ctx;

	(void)fd;
	if (link->state == LINK_CONNECTING) {
		finish_connect(link);
		return;
	}
	if (link->state == LINK_HANDSHAKING) {
		handshake_step(link);
		return;
	}
	if (events & EPOLLOUT)
		flush_output(link);
	if (link->fd >= 0 && events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		read_input(link);
}

void link_tick(struct tetherd_link *link, __u64 now)
{
	struct link_request *oldest = g_queue_peek_head(&link->pending);

	if (link->broken[0])
		link_drop(link, link->broken, true);
	else if (link->state == LINK_DOWN && now >= link->retry_at_ms)
		link_connect(link);
	else if (link->state == LINK_CONNECTING &&
		 now - link->connect_started_ms > CONNECT_TIMEOUT_MS)
		link_drop(link, "no connection within 3 s", true);
	else if (link->state == LINK_HANDSHAKING &&
		 now - link->connect_started_ms > CONNECT_TIMEOUT_MS)
		link_drop(link, "no TLS handshake within 3 s of connecting", true);
	else if (link->state != LINK_STREAMING && oldest &&
		 now - oldest->sent_ms > ANSWER_TIMEOUT_MS)
		link_drop(link, "no answer within 10 s", true);
}
