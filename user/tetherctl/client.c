// SPDX-License-Identifier: MIT
/* The control socket, from tetherctl's side (client.h). */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "values.h"

static int say(char *message, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int say(char *message, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, size, fmt, ap);
	va_end(ap);
	return -1;
}

__u64 ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ctl_connect(struct ctl_conn *conn, const char *path, char *message, size_t size)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	/* Bounds connect() and send() too: a wedged tetherd cannot hang us. */
	struct timeval timeout = { .tv_sec = CTL_TIMEOUT_MS / 1000 };

	conn->fd = -1;
	conn->path = path;
	conn->pending_len = 0;
	if (strlen(path) >= sizeof(addr.sun_path))
		return say(message, size, "the socket path '%s' is too long", path);
	strcpy(addr.sun_path, path);
	conn->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (conn->fd < 0)
		return say(message, size, "cannot create a socket: %s", strerror(errno));
	setsockopt(conn->fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	if (connect(conn->fd, (struct sockaddr *)&addr, sizeof(addr))) {
		int err = errno;

		ctl_close(conn);
		return say(message, size,
			   "cannot connect to %s: %s (is tetherd running? --socket or TETHER_SOCKET select another)",
			   path, strerror(err));
	}
	return 0;
}

int ctl_send(struct ctl_conn *conn, const char *request, char *message, size_t size)
{
	size_t len = strlen(request), sent = 0;

	while (sent < len) {
		ssize_t n = send(conn->fd, request + sent, len - sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return say(message, size, "tetherd on %s took no request for %d s",
				   conn->path, CTL_TIMEOUT_MS / 1000);
		if (n < 0)
			return say(message, size, "cannot send to tetherd on %s: %s", conn->path,
				   strerror(errno));
		sent += n;
	}
	return 0;
}

void ctl_close(struct ctl_conn *conn)
{
	if (conn->fd >= 0)
		close(conn->fd);
	conn->fd = -1;
}

/* Takes a whole line out of pending into line; its length, or 0 if pending
 * holds no newline yet. */
static size_t take_line(struct ctl_conn *conn, char *line)
{
	char *newline = memchr(conn->pending, '\n', conn->pending_len);

	if (!newline)
		return 0;

	size_t len = newline - conn->pending + 1;

	memcpy(line, conn->pending, len);
	line[len] = '\0';
	memmove(conn->pending, conn->pending + len, conn->pending_len - len);
	conn->pending_len -= len;
	return len;
}

/* Waits until the socket is readable; -1 at the deadline. */
static int wait_readable(struct ctl_conn *conn, __u64 deadline_ms, char *message, size_t size)
{
	struct pollfd pfd = { .fd = conn->fd, .events = POLLIN };

	for (;;) {
		int timeout = -1;

		if (deadline_ms) {
			__u64 now = ctl_now_ms();

			timeout = now < deadline_ms ? (int)(deadline_ms - now) : 0;
		}

		int n = poll(&pfd, 1, timeout);

		if (n > 0)
			return 0;
		if (n == 0)
			return say(message, size, "no answer from tetherd on %s within %d s",
				   conn->path, CTL_TIMEOUT_MS / 1000);
		if (errno != EINTR)
			return say(message, size, "waiting for tetherd: %s", strerror(errno));
	}
}

int ctl_read_line(struct ctl_conn *conn, __u64 deadline_ms, char *line, char *message,
		  size_t size)
{
	for (;;) {
		size_t len = take_line(conn, line);

		if (len)
			return (int)len;
		if (conn->pending_len == sizeof(conn->pending))
			return say(message, size, "tetherd sent a line longer than %d bytes",
				   PROTO_LINE_MAX);
		if (wait_readable(conn, deadline_ms, message, size))
			return -1;

		ssize_t n = read(conn->fd, conn->pending + conn->pending_len,
				 sizeof(conn->pending) - conn->pending_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return say(message, size, "reading from tetherd: %s", strerror(errno));
		if (n == 0 && conn->pending_len)
			return say(message, size, "tetherd closed the connection in the middle of a line");
		if (n == 0)
			return 0;
		conn->pending_len += n;
	}
}

static bool is_empty_line(const char *line)
{
	return !strcmp(line, "\n") || !strcmp(line, "\r\n");
}

/* A line that should have been there, or something in its place. */
static int unexpected(const char *line, int len, const char *what, char *message, size_t size)
{
	char shown[80];

	if (len == 0)
		return say(message, size, "tetherd closed the connection before %s", what);
	ctl_quote(line, shown, sizeof(shown));
	return say(message, size, "tetherd sent '%s' where tetherctl expected %s", shown, what);
}

int ctl_read_status(struct ctl_conn *conn, __u64 deadline_ms, struct ctl_answer *answer,
		    char *message, size_t size)
{
	char line[PROTO_LINE_MAX + 1];
	int len = ctl_read_line(conn, deadline_ms, line, message, size);

	if (len < 0)
		return -1;
	if (len == 0)
		return unexpected(line, len, "its answer", message, size);

	int status = proto_parse_status(line, len, &answer->error, answer->message,
					sizeof(answer->message));

	if (status < 0) {
		line[strcspn(line, "\r\n")] = '\0';
		return unexpected(line, len, "'ok' or 'error CODE: message'", message, size);
	}
	answer->ok = status == 0;
	return 0;
}

/* Parses the record lines into answer->records. */
static int parse_records(GPtrArray *lines, struct ctl_answer *answer, char *message,
			 size_t size)
{
	char why[PROTO_LINE_MAX];

	answer->records = g_new0(struct proto_request, MAX(lines->len, 1));
	for (guint i = 0; i < lines->len; i++) {
		const char *line = g_ptr_array_index(lines, i);

		if (proto_parse_record(line, strlen(line), &answer->records[i], why, sizeof(why)))
			return say(message, size, "tetherd sent a record tetherctl cannot read: %s",
				   why);
		answer->count++;
	}
	return 0;
}

int ctl_read_answer(struct ctl_conn *conn, __u64 deadline_ms, struct ctl_answer *answer,
		    char *message, size_t size)
{
	g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
	char line[PROTO_LINE_MAX + 1];
	int len;

	if (ctl_read_status(conn, deadline_ms, answer, message, size))
		return -1;
	while ((len = ctl_read_line(conn, deadline_ms, line, message, size)) > 0) {
		if (is_empty_line(line))
			return parse_records(lines, answer, message, size);
		/* An error is followed by nothing but the empty line. */
		if (!answer->ok)
			return say(message, size, "tetherd sent a record after an error");
		g_ptr_array_add(lines, g_strdup(line));
	}
	return len < 0 ? -1 : unexpected(line, len, "the end of its answer", message, size);
}

int ctl_call(const char *path, const char *request, struct ctl_answer *answer, char *message,
	     size_t size)
{
	__u64 deadline_ms = ctl_now_ms() + CTL_TIMEOUT_MS;
	struct ctl_conn conn;
	int err;

	if (ctl_connect(&conn, path, message, size))
		return -1;
	err = ctl_send(&conn, request, message, size);
	if (!err)
		err = ctl_read_answer(&conn, deadline_ms, answer, message, size);
	ctl_close(&conn);
	return err;
}

void ctl_answer_init(struct ctl_answer *answer)
{
	memset(answer, 0, sizeof(*answer));
}

void ctl_answer_free(struct ctl_answer *answer)
{
	g_free(answer->records);
	answer->records = NULL;
	answer->count = 0;
}
