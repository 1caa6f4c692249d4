/* A load tool's session with tetherd's control socket (control_session.h). */
#define _GNU_SOURCE
#include "control_session.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

void tool_fail(const char *what, const char *detail)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, detail);
	exit(1);
}

double tool_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void session_reader(struct control_session *s)
{
	s->in = fdopen(dup(s->fd), "r");
	if (!s->in)
		tool_fail("fdopen", strerror(errno));
}

void control_session_unix(struct control_session *s, const char *path)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };

	snprintf(address.sun_path, sizeof(address.sun_path), "%s", path);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&address, sizeof(address)))
		tool_fail(path, strerror(errno));
	session_reader(s);
}

void control_session_tcp(struct control_session *s, const char *addr_port)
{
	char host[256];
	const char *colon = strrchr(addr_port, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *found;

	if (!colon || (size_t)(colon - addr_port) >= sizeof(host))
		tool_fail(addr_port, "not ADDR:PORT");
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr_port), addr_port);
	if (getaddrinfo(host, colon + 1, &hints, &found))
		tool_fail(addr_port, "cannot resolve");
	s->fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, found->ai_addr, found->ai_addrlen))
		tool_fail(addr_port, strerror(errno));
	freeaddrinfo(found);
	session_reader(s);
}

void control_session_send(struct control_session *s, const char *line)
{
	size_t len = strlen(line);

	for (size_t sent = 0; sent < len;) {
		ssize_t n = write(s->fd, line + sent, len - sent);

		if (n < 0 && errno != EINTR)
			tool_fail("writing to tetherd", strerror(errno));
		sent += n > 0 ? (size_t)n : 0;
	}
}

int control_session_answer(struct control_session *s, const char *request, unsigned *container)
{
	char line[2048];
	int first = 1, ok = 0;

	while (fgets(line, sizeof(line), s->in)) {
		if (line[0] == '\n')
			return ok;
		if (first) {
			ok = !strncmp(line, "ok", 2);
			if (!ok && strncmp(line, "error overloaded", 16))
				tool_fail(request, line);
		}
		first = 0;
		char *found = strstr(line, "container=");

		if (found && container)
			*container = (unsigned)strtoul(found + strlen("container="), NULL, 10);
	}
	tool_fail(request, "tetherd closed the connection");
}
