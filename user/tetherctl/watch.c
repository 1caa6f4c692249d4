// SPDX-License-Identifier: MIT
/* The event stream of "watch event" (watch.h). */
#include <string.h>
#include <time.h>

#include "client.h"
#include "output.h"
#include "run.h"
#include "stream.h"
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
static int stream_events(struct ctl_conn *conn, const struct ctl_invocation *inv, FILE *out,
			 FILE *err)
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
		print_event(&event, inv->json, out);
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
	return ctl_stream(inv, out, err, stream_events);
}
