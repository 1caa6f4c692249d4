// SPDX-License-Identifier: MIT
/* The Prometheus text format (exposition.h). */
#include "exposition.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void expo_init(struct expo *e, GString *out)
{
	memset(e, 0, sizeof(*e));
	e->out = out;
	e->families = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

void expo_free(struct expo *e)
{
	if (e->families)
		g_hash_table_destroy(e->families);
	e->families = NULL;
}

static void fail(struct expo *e, const char *format, ...)
{
	va_list args;

	if (e->failed)
		return;
	e->failed = true;
	va_start(args, format);
	vsnprintf(e->why, sizeof(e->why), format, args);
	va_end(args);
}

static bool name_chars(const char *name, const char *first, const char *rest)
{
	if (!name[0] || !strchr(first, name[0]))
		return false;
	for (const char *p = name + 1; *p; p++)
		if (!strchr(rest, *p))
			return false;
	return true;
}

#define LETTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
#define DIGITS "0123456789"

bool expo_metric_name_valid(const char *name)
{
	return name_chars(name, LETTERS ":", LETTERS DIGITS ":");
}

bool expo_label_name_valid(const char *name)
{
	return name_chars(name, LETTERS, LETTERS DIGITS) && strncmp(name, "__", 2);
}

static bool ends_with(const char *text, const char *suffix)
{
	size_t len = strlen(text), n = strlen(suffix);

	return len >= n && !strcmp(text + len - n, suffix);
}

/* HELP text: backslash and newline escaped. */
static void escape_help(GString *out, const char *text)
{
	for (const char *p = text; *p; p++) {
		if (*p == '\\')
			g_string_append(out, "\\\\");
		else if (*p == '\n')
			g_string_append(out, "\\n");
		else
			g_string_append_c(out, *p);
	}
}

void expo_escape_label_value(GString *out, const char *value)
{
	g_autofree char *valid = g_utf8_make_valid(value, -1);

	for (const char *p = valid; *p; p++) {
		if (*p == '\\')
			g_string_append(out, "\\\\");
		else if (*p == '"')
			g_string_append(out, "\\\"");
		else if (*p == '\n')
			g_string_append(out, "\\n");
		else
			g_string_append_c(out, *p);
	}
}

void expo_family(struct expo *e, const char *name, enum expo_type type, const char *help)
{
	if (e->failed)
		return;
	if (!expo_metric_name_valid(name) || strlen(name) >= sizeof(e->family))
		return fail(e, "'%s' is not a metric name", name);
	if (type == EXPO_COUNTER && !ends_with(name, "_total"))
		return fail(e, "counter %s does not end in _total", name);
	if (type == EXPO_GAUGE && ends_with(name, "_total"))
		return fail(e, "gauge %s ends in _total, which is for counters", name);
	if (!help || !help[0])
		return fail(e, "%s has no help text", name);
	if (g_hash_table_contains(e->families, name))
		return fail(e, "family %s is written twice", name);
	g_hash_table_add(e->families, g_strdup(name));
	snprintf(e->family, sizeof(e->family), "%s", name);
	e->type = type;
	g_string_append_printf(e->out, "# HELP %s ", name);
	escape_help(e->out, help);
	g_string_append_printf(e->out, "\n# TYPE %s %s\n", name,
			       type == EXPO_COUNTER ? "counter" : "gauge");
}

static bool write_labels(struct expo *e, const char *const *labels)
{
	if (!labels || !labels[0])
		return true;
	g_string_append_c(e->out, '{');
	for (size_t i = 0; labels[i]; i += 2) {
		if (!labels[i + 1]) {
			fail(e, "%s: label %s has no value", e->family, labels[i]);
			return false;
		}
		if (!expo_label_name_valid(labels[i])) {
			fail(e, "%s: '%s' is not a label name", e->family, labels[i]);
			return false;
		}
		for (size_t j = 0; j < i; j += 2)
			if (!strcmp(labels[j], labels[i])) {
				fail(e, "%s: label %s given twice", e->family, labels[i]);
				return false;
			}
		if (i)
			g_string_append_c(e->out, ',');
		g_string_append_printf(e->out, "%s=\"", labels[i]);
		expo_escape_label_value(e->out, labels[i + 1]);
		g_string_append_c(e->out, '"');
	}
	g_string_append_c(e->out, '}');
	return true;
}

static bool begin_sample(struct expo *e, const char *const *labels)
{
	if (e->failed)
		return false;
	if (!e->family[0]) {
		fail(e, "a sample before any family");
		return false;
	}
	gsize start = e->out->len;

	g_string_append(e->out, e->family);
	if (!write_labels(e, labels)) {
		g_string_truncate(e->out, start);
		return false;
	}
	g_string_append_c(e->out, ' ');
	return true;
}

void expo_sample_u64(struct expo *e, const char *const *labels, __u64 value)
{
	if (begin_sample(e, labels))
		g_string_append_printf(e->out, "%llu\n", (unsigned long long)value);
}

void expo_sample(struct expo *e, const char *const *labels, double value)
{
	if (!begin_sample(e, labels))
		return;
	if (isnan(value))
		g_string_append(e->out, "NaN\n");
	else if (isinf(value))
		g_string_append(e->out, value > 0 ? "+Inf\n" : "-Inf\n");
	else if (value == floor(value) && fabs(value) < 9007199254740992.0)
		g_string_append_printf(e->out, "%.0f\n", value);
	else
		g_string_append_printf(e->out, "%.17g\n", value);
}
