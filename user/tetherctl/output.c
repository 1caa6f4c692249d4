// SPDX-License-Identifier: MIT
/* Tables and JSON (json-glib, control/json.h) for tetherctl (output.h). */
#include <string.h>

#include "control/json.h"
#include "output.h"

#define COLUMN_GAP 2

static bool same_keys(const struct proto_request *a, const struct proto_request *b)
{
	if (a->arg_count != b->arg_count)
		return false;
	for (int i = 0; i < a->arg_count; i++)
		if (!proto_get(b, a->args[i].key))
			return false;
	return true;
}

/* The records from first on that share its keys. */
static size_t group_size(const struct proto_request *first, size_t left)
{
	size_t n = 1;

	while (n < left && same_keys(first, &first[n]))
		n++;
	return n;
}

/* One cell; padded to width unless it ends the line. */
static void append_cell(GString *out, const char *text, size_t width, bool last)
{
	g_string_append(out, text);
	if (last)
		return;
	for (size_t pad = strlen(text); pad < width + COLUMN_GAP; pad++)
		g_string_append_c(out, ' ');
}

/* Records of one key set: the columns are the first one's keys. */
static void append_table(GString *out, const struct proto_request *rows, size_t count)
{
	int columns = rows[0].arg_count;
	size_t width[PROTO_MAX_ARGS];

	for (int c = 0; c < columns; c++) {
		const char *key = rows[0].args[c].key;

		width[c] = strlen(key);
		for (size_t r = 0; r < count; r++)
			width[c] = MAX(width[c], strlen(proto_get(&rows[r], key)));
	}
	for (int c = 0; c < columns; c++) {
		g_autofree char *header = g_ascii_strup(rows[0].args[c].key, -1);

		append_cell(out, header, width[c], c == columns - 1);
	}
	g_string_append_c(out, '\n');
	for (size_t r = 0; r < count; r++) {
		for (int c = 0; c < columns; c++)
			append_cell(out, proto_get(&rows[r], rows[0].args[c].key), width[c],
				    c == columns - 1);
		g_string_append_c(out, '\n');
	}
}

void ctl_output_table(GString *out, const struct proto_request *records, size_t count)
{
	for (size_t i = 0; i < count;) {
		size_t n = group_size(&records[i], count - i);

		if (i)
			g_string_append_c(out, '\n');
		append_table(out, &records[i], n);
		i += n;
	}
}

void ctl_output_json(GString *out, const struct proto_request *records, size_t count,
		     enum ctl_shape shape)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	if (shape == CTL_SHAPE_SINGLE && count == 0) {
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "ok");
		json_builder_add_boolean_value(b, TRUE);
		json_builder_end_object(b);
	} else if (shape == CTL_SHAPE_SINGLE && count == 1) {
		ctl_json_add_record(b, &records[0]);
	} else {
		json_builder_begin_array(b);
		for (size_t i = 0; i < count; i++)
			ctl_json_add_record(b, &records[i]);
		json_builder_end_array(b);
	}
	ctl_json_append(out, b);
	g_string_append_c(out, '\n');
}

void ctl_output_event(GString *out, const struct proto_request *event,
		      const struct timespec *when, bool json)
{
	const char *type = proto_get(event, "event");
	char stamp[32];
	struct tm tm;

	if (json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		ctl_json_add_record(b, event);
		ctl_json_append(out, b);
		g_string_append_c(out, '\n');
		return;
	}
	localtime_r(&when->tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	g_string_append_printf(out, "%s.%03ld", stamp, when->tv_nsec / 1000000);
	if (type)
		g_string_append_printf(out, " %s", type);
	for (int i = 0; i < event->arg_count; i++)
		if (strcmp(event->args[i].key, "event"))
			g_string_append_printf(out, " %s=%s", event->args[i].key,
					       event->args[i].value);
	g_string_append_c(out, '\n');
}
