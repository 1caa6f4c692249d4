// SPDX-License-Identifier: MIT
/* The event stream of "watch event" (watch.h). */
#include <string.h>
#include <time.h>

#include "client.h"
#include "output.h"
#include "run.h"
#include "watch.h"

static void print_event(const struct proto_request *event, bool json, FILE *out)
{
	g_autoptr(GString) text = g_string_new(NULL);
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	ctl_output_event(text, event, &now, json);
	fputs(text->str, out);
	/* Whoever reads a pipe from us wants each event when it happens. */
	fflush(out);
}

/* Events until tetherd ends the stream or it breaks. */
static int stream_events(struct ctl_conn *conn, bool json, FILE *out, FILE *err)
{
	char line[PROTO_LINE_MAX + 1], message[PROTO_LINE_MAX];
	int len;

	while ((len = ctl_read_line(conn, 0, line, message, sizeof(message))) > 0) {
		struct proto_request event;

		if (!strcmp(line, "\n") || !strcmp(line, "\r\n"))
			continue;
		if (proto_parse_record(line, len, &event, message, sizeof(message))) {
			fprintf(err, "tetherctl: skipping an event tetherctl cannot read: %s\n",
				message);
			continue;
		}
		print_event(&event, json, out);
		if (ferror(out))
			return CTL_EXIT_FAILED;
	}
	if (len == 0)
		snprintf(message, sizeof(message), "tetherd closed the connection");
	fprintf(err, "tetherctl: %s\n", message);
	return CTL_EXIT_FAILED;
}

int ctl_watch(const struct ctl_invocation *inv, FILE *out, FILE *err)
{
	struct ctl_conn conn;
	struct ctl_answer answer;
	char message[PROTO_LINE_MAX];
	int status = CTL_EXIT_FAILED;

	if (ctl_connect(&conn, inv->socket_path, message, sizeof(message))) {
		fprintf(err, "tetherctl: %s\n", message);
		return CTL_EXIT_FAILED;
	}
	ctl_answer_init(&answer);
	if (ctl_send(&conn, inv->request, message, sizeof(message)) ||
	    ctl_read_status(&conn, ctl_now_ms() + CTL_TIMEOUT_MS, &answer, message,
			    sizeof(message)))
		fprintf(err, "tetherctl: %s\n", message);
	else if (!answer.ok)
		fprintf(err, "tetherctl: %s: %s\n", proto_error_code(answer.error), answer.message);
	else
		status = stream_events(&conn, inv->json, out, err);
	ctl_answer_free(&answer);
	ctl_close(&conn);
	return status;
}
