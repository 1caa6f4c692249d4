// SPDX-License-Identifier: MIT
/* One remote agent's lifecycle changes over tetherd's TCP listener, as a
 * well-behaved VM sends them or as a flooding one does. Each cycle adds a
 * container (starting), brings it up and deletes it: three changes, the last
 * two each swapping a pool table.
 *
 *   control_rate --connect ADDR:PORT --secret-file F --iface IF --name NAME
 *                --addr VM_ADDR --function F
 *                (--paced RATE --count N | --flood SECONDS [--window W])
 *                [--json FILE]
 *
 * --paced sends one change at a time, RATE changes a second, and times each
 * from request to answer: the latencies (p50, p99, max) are what a VM waits
 * for tetherd. --flood sends changes as fast as answers come, W in flight,
 * for SECONDS; an answer "error overloaded" (tetherd --agent-rate) is counted
 * and the flood goes on. Registers its backend NAME (shared secret: the
 * operator's credential) and removes it at the end. */
#define _GNU_SOURCE
#include "control_session.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct options {
	const char *connect, *secret_file, *iface, *name, *addr, *json_path;
	unsigned function, paced_rate, count, flood_s, window;
};

/* What the answers said. */
struct tally {
	unsigned long ok, overloaded;
};

static void request(struct control_session *s, const char *line, const char *what)
{
	control_session_send(s, line);
	if (!control_session_answer(s, what, NULL))
		tool_fail(what, "overloaded (outside the measured changes)");
}

static void authenticate(struct control_session *s, const struct options *o)
{
	char secret[256] = "", line[512];
	FILE *file = fopen(o->secret_file, "r");

	if (!file || !fgets(secret, sizeof(secret), file))
		tool_fail(o->secret_file, file ? "empty" : strerror(errno));
	fclose(file);
	secret[strcspn(secret, "\n")] = '\0';
	snprintf(line, sizeof(line), "auth agent secret=%s\n", secret);
	request(s, line, "auth agent");
}

/* The request of a cycle's step: add, up or del of container. */
static void change_line(char *line, size_t size, const struct options *o, unsigned step,
			unsigned container)
{
	if (step == 0)
		snprintf(line, size, "add container function=%u backend=%s state=starting\n",
			 o->function, o->name);
	else
		snprintf(line, size, "%s container container=%u\n", step == 1 ? "up" : "del",
			 container);
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Paced: one change at a time at o->paced_rate a second; latencies in us. */
static void run_paced(struct control_session *s, const struct options *o, double *latency_us,
		      struct tally *tally)
{
	unsigned container = 0, measured = 0;
	double interval = 1.0 / o->paced_rate, next = tool_now_s();
	char line[256];

	for (unsigned step = 0; measured < o->count; step = (step + 1) % 3) {
		while (tool_now_s() < next)
			usleep(200);
		next += interval;
		change_line(line, sizeof(line), o, step, container);
		double sent = tool_now_s();

		control_session_send(s, line);
		int ok = control_session_answer(s, "paced change", step == 0 ? &container : NULL);

		latency_us[measured++] = (tool_now_s() - sent) * 1e6;
		ok ? tally->ok++ : tally->overloaded++;
		if (!ok) /* this cycle's container is not there: start the next one */
			step = 2;
	}
}

/* Flood: W cycles at a time, each step sent for all of them before their
 * answers are read; for o->flood_s seconds. */
static void run_flood(struct control_session *s, const struct options *o, struct tally *tally)
{
	unsigned *containers = calloc(o->window, sizeof(*containers));
	int *alive = calloc(o->window, sizeof(*alive));
	double end = tool_now_s() + o->flood_s;
	char line[256];

	if (!containers || !alive)
		tool_fail("memory", strerror(ENOMEM));
	while (tool_now_s() < end) {
		for (unsigned step = 0; step < 3; step++) {
			unsigned sent = 0;

			for (unsigned i = 0; i < o->window; i++) {
				if (step > 0 && !alive[i])
					continue;
				change_line(line, sizeof(line), o, step, containers[i]);
				control_session_send(s, line);
				sent++;
			}
			for (unsigned i = 0; i < o->window && sent; i++) {
				if (step > 0 && !alive[i])
					continue;
				int ok = control_session_answer(s, "flood change", step == 0 ? &containers[i] : NULL);

				ok ? tally->ok++ : tally->overloaded++;
				/* up refused: del it anyway; del refused: it stays (leaked
				 * until the backend goes, which takes it along) */
				if (step == 0)
					alive[i] = ok;
				else if (step == 2)
					alive[i] = 0;
				sent--;
			}
		}
	}
	free(containers);
	free(alive);
}

static void parse_options(struct options *o, int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "connect", required_argument, 0, 'c' }, { "secret-file", required_argument, 0, 's' },
		{ "iface", required_argument, 0, 'i' },	  { "name", required_argument, 0, 'n' },
		{ "addr", required_argument, 0, 'a' },	  { "function", required_argument, 0, 'f' },
		{ "paced", required_argument, 0, 'p' },	  { "count", required_argument, 0, 'N' },
		{ "flood", required_argument, 0, 'F' },	  { "window", required_argument, 0, 'w' },
		{ "json", required_argument, 0, 'j' },	  { 0, 0, 0, 0 }
	};
	int option;

	*o = (struct options){ .function = 1, .window = 32 };
	while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (option) {
		case 'c': o->connect = optarg; break;
		case 's': o->secret_file = optarg; break;
		case 'i': o->iface = optarg; break;
		case 'n': o->name = optarg; break;
		case 'a': o->addr = optarg; break;
		case 'f': o->function = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'p': o->paced_rate = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'N': o->count = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'F': o->flood_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': o->window = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'j': o->json_path = optarg; break;
		default: exit(2);
		}
	}
	if (!o->connect || !o->secret_file || !o->iface || !o->name || !o->addr || !o->window ||
	    !!o->paced_rate == !!o->flood_s || (o->paced_rate && !o->count)) {
		fprintf(stderr, "usage: control_rate --connect ADDR:PORT --secret-file F --iface IF "
				"--name NAME --addr VM_ADDR --function F\n"
				"       (--paced RATE --count N | --flood SECONDS [--window W]) "
				"[--json FILE]\n");
		exit(2);
	}
}

static void report(const struct options *o, double *latency_us, const struct tally *tally,
		   double elapsed_s)
{
	FILE *json = o->json_path ? fopen(o->json_path, "w") : NULL;

	if (o->json_path && !json)
		tool_fail(o->json_path, strerror(errno));
	if (o->paced_rate) {
		qsort(latency_us, o->count, sizeof(*latency_us), compare_doubles);
		double p50 = latency_us[o->count / 2], p99 = latency_us[o->count * 99 / 100],
		       max = latency_us[o->count - 1];

		printf("paced changes=%u ok=%lu overloaded=%lu p50_us=%.0f p99_us=%.0f max_us=%.0f\n",
		       o->count, tally->ok, tally->overloaded, p50, p99, max);
		if (json)
			fprintf(json, "{\"changes\": %u, \"ok\": %lu, \"overloaded\": %lu, "
				      "\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n",
				o->count, tally->ok, tally->overloaded, p50, p99, max);
	} else {
		printf("flood changes=%lu ok=%lu overloaded=%lu ok_per_s=%.0f\n",
		       tally->ok + tally->overloaded, tally->ok, tally->overloaded,
		       tally->ok / elapsed_s);
		if (json)
			fprintf(json, "{\"changes\": %lu, \"ok\": %lu, \"overloaded\": %lu, "
				      "\"ok_per_s\": %.1f}\n",
				tally->ok + tally->overloaded, tally->ok, tally->overloaded,
				tally->ok / elapsed_s);
	}
	if (json)
		fclose(json);
}

int main(int argc, char **argv)
{
	struct options o;
	struct control_session s;
	struct tally tally = { 0 };
	char line[512];

	parse_options(&o, argc, argv);
	double *latency_us = calloc(o.count ? o.count : 1, sizeof(*latency_us));

	if (!latency_us)
		tool_fail("memory", strerror(ENOMEM));
	control_session_tcp(&s, o.connect);
	authenticate(&s, &o);
	/* Registering is outside the measure; so it waits out a budget spent. */
	snprintf(line, sizeof(line),
		 "add backend name=%s addr=%s mac=02:00:00:00:fb:01 iface=%s heartbeat_ms=600000\n",
		 o.name, o.addr, o.iface);
	request(&s, line, "add backend");

	double started = tool_now_s();

	if (o.paced_rate)
		run_paced(&s, &o, latency_us, &tally);
	else
		run_flood(&s, &o, &tally);
	double elapsed = tool_now_s() - started;

	for (int tries = 0;; tries++) {
		snprintf(line, sizeof(line), "del backend name=%s\n", o.name);
		control_session_send(&s, line);
		if (control_session_answer(&s, "del backend", NULL))
			break;
		if (tries == 50)
			tool_fail("del backend", "overloaded for 5 s");
		usleep(100 * 1000);
	}
	report(&o, latency_us, &tally, elapsed);
	free(latency_us);
	return 0;
}
