// SPDX-License-Identifier: MIT
/* The trace stream of "watch trace" (trace.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "control/json.h"
#include "run.h"
#include "stream.h"
#include "trace.h"

/* Told on their own, at the head of the line. */
static bool is_head(const char *key)
{
	return !strcmp(key, "trace") || !strcmp(key, "reason") || !strcmp(key, "time_us");
}

void ctl_trace_line(GString *out, const struct proto_request *record)
{
	const char *time_us = proto_get(record, "time_us");
	const char *reason = proto_get(record, "reason");
	__u64 us = time_us ? strtoull(time_us, NULL, 10) : 0;
	time_t seconds = (time_t)(us / 1000000);
	char stamp[32];
	struct tm tm;

	localtime_r(&seconds, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	g_string_append_printf(out, "%s.%06llu %s", stamp, (unsigned long long)(us % 1000000),
			       proto_get(record, "trace") ?: "?");
	if (reason && strcmp(reason, "none"))
		g_string_append_printf(out, " %s", reason);
	for (int i = 0; i < record->arg_count; i++)
		if (!is_head(record->args[i].key))
			g_string_append_printf(out, " %s=%s", record->args[i].key,
					       record->args[i].value);
	g_string_append_c(out, '\n');
}

static void print_record(const struct proto_request *record, bool json, FILE *out)
{
	g_autoptr(GString) text = g_string_new(NULL);

	if (json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		ctl_json_add_record(b, record);
		ctl_json_append(text, b);
		g_string_append_c(text, '\n');
	} else {
		ctl_trace_line(text, record);
	}
	fputs(text->str, out);
	fflush(out); /* whoever reads our pipe wants each record as it happens */
}

static void tell_lost(const struct proto_request *record, FILE *err)
{
	const char *where = proto_get(record, "where");

	fprintf(err, "tetherctl: %s trace records lost: %s\n", proto_get(record, "count") ?: "?",
		where && !strcmp(where, "tetherd")
			? "tetherctl read them more slowly than they came"
			: "the XDP program's ring buffer was full (narrow the trace with "
			  "--function, --key or --container)");
}

static int stream_records(struct ctl_conn *conn, const struct ctl_invocation *inv, FILE *out,
			  FILE *err)
{
	char line[PROTO_LINE_MAX + 1], message[PROTO_LINE_MAX];
	__u64 printed = 0;
	int len;

	while ((len = ctl_read_line(conn, 0, line, message, sizeof(message))) > 0) {
		struct proto_request record;

		if (!strcmp(line, "\n") || !strcmp(line, "\r\n"))
			continue;
		if (proto_parse_record(line, len, &record, message, sizeof(message))) {
			fprintf(err, "tetherctl: skipping a trace record tetherctl cannot read: %s\n",
				message);
			continue;
		}
		const char *kind = proto_get(&record, "trace");

		if (kind && !strcmp(kind, "lost")) {
			tell_lost(&record, err);
			continue;
		}
		print_record(&record, inv->json, out);
		if (ferror(out))
			return CTL_EXIT_FAILED;
		if (inv->count && ++printed == inv->count)
			return CTL_EXIT_OK;
	}
	if (len == 0)
		snprintf(message, sizeof(message), "tetherd closed the connection");
	fprintf(err, "tetherctl: %s\n", message);
	return CTL_EXIT_FAILED;
}

int ctl_trace(const struct ctl_invocation *inv, FILE *out, FILE *err)
{
	return ctl_stream(inv, out, err, stream_records);
}
