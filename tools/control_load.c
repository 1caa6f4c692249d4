// SPDX-License-Identifier: MIT
/* Lifecycle operations per second through tetherd's control socket: adds N
 * containers (starting), brings them up, deletes them, each phase timed, with
 * up to WINDOW requests in flight on one connection. WINDOW 1 is a client
 * that waits for every answer (an agent reporting one container); a larger
 * window is many agents at once, which tetherd serves in batches: one pool
 * swap per function per batch, not per request.
 *
 *   control_load --socket PATH --iface IF [--count N] [--window W]
 *                [--functions F] [--json FILE]
 *
 * Registers its own backend (control-load-PID), removes it at the end. */
#define _GNU_SOURCE
#include "control_session.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct options {
	const char *socket_path, *iface, *json_path;
	unsigned count, window, functions;
};

struct session {
	struct control_session control;
	char backend[32];
};

static void session_open(struct session *s, const char *path)
{
	control_session_unix(&s->control, path);
	snprintf(s->backend, sizeof(s->backend), "control-load-%d", getpid());
}

static void send_line(struct session *s, const char *line)
{
	control_session_send(&s->control, line);
}

/* One answer, which must be ok: the value of container= in its records
 * (add container), or 0. */
static unsigned read_answer(struct session *s, const char *request)
{
	unsigned container = 0;

	if (!control_session_answer(&s->control, request, &container))
		tool_fail(request, "error overloaded");
	return container;
}

/* Sends the phase's requests, never more than window unanswered. */
static double run_phase(struct session *s, const struct options *o, const char *phase,
			unsigned *containers)
{
	unsigned sent = 0, answered = 0;
	double start = tool_now_s();
	char line[256];

	while (answered < o->count) {
		while (sent < o->count && sent - answered < o->window) {
			if (!strcmp(phase, "add"))
				snprintf(line, sizeof(line),
					 "add container function=%u backend=%s state=starting\n",
					 1000 + sent % o->functions, s->backend);
			else
				snprintf(line, sizeof(line), "%s container container=%u\n", phase,
					 containers[sent]);
			send_line(s, line);
			sent++;
		}
		unsigned container = read_answer(s, phase);

		if (!strcmp(phase, "add"))
			containers[answered] = container;
		answered++;
	}
	return o->count / (tool_now_s() - start);
}

static void parse_options(struct options *o, int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "socket", required_argument, 0, 's' }, { "iface", required_argument, 0, 'i' },
		{ "count", required_argument, 0, 'n' },  { "window", required_argument, 0, 'w' },
		{ "functions", required_argument, 0, 'f' }, { "json", required_argument, 0, 'j' },
		{ 0, 0, 0, 0 }
	};
	int option;

	*o = (struct options){ .count = 1000, .window = 1, .functions = 50 };
	while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (option) {
		case 's': o->socket_path = optarg; break;
		case 'i': o->iface = optarg; break;
		case 'n': o->count = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': o->window = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'f': o->functions = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'j': o->json_path = optarg; break;
		default: exit(2);
		}
	}
	if (!o->socket_path || !o->iface || !o->count || !o->window || !o->functions) {
		fprintf(stderr, "usage: control_load --socket PATH --iface IF [--count N] "
				"[--window W] [--functions F] [--json FILE]\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	struct session s;
	char line[256];

	parse_options(&o, argc, argv);
	session_open(&s, o.socket_path);
	unsigned *containers = calloc(o.count, sizeof(*containers));

	if (!containers)
		tool_fail("memory", strerror(ENOMEM));
	snprintf(line, sizeof(line),
		 "add backend name=%s addr=203.0.113.250 mac=02:00:00:00:fa:01 iface=%s "
		 "heartbeat_ms=600000\n", s.backend, o.iface);
	send_line(&s, line);
	read_answer(&s, "add backend");

	double add = run_phase(&s, &o, "add", containers);
	double up = run_phase(&s, &o, "up", containers);
	double del = run_phase(&s, &o, "del", containers);

	snprintf(line, sizeof(line), "del backend name=%s\n", s.backend);
	send_line(&s, line);
	read_answer(&s, "del backend");
	printf("window %-4u  add %9.0f/s   up %9.0f/s   del %9.0f/s   (%u containers, %u "
	       "functions)\n", o.window, add, up, del, o.count, o.functions);
	if (o.json_path) {
		FILE *json = fopen(o.json_path, "w");

		if (!json)
			tool_fail(o.json_path, strerror(errno));
		fprintf(json, "{\"window\": %u, \"count\": %u, \"functions\": %u, "
			      "\"add_per_s\": %.1f, \"up_per_s\": %.1f, \"del_per_s\": %.1f}\n",
			o.window, o.count, o.functions, add, up, del);
		fclose(json);
	}
	free(containers);
	return 0;
}
