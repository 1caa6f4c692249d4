// SPDX-License-Identifier: MIT
/* JSON for --json output (json.h). */
#include <string.h>

#include "json.h"

void ctl_json_string(GString *out, const char *text)
{
	g_string_append_c(out, '"');
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		switch (*p) {
		case '"':
			g_string_append(out, "\\\"");
			break;
		case '\\':
			g_string_append(out, "\\\\");
			break;
		case '\n':
			g_string_append(out, "\\n");
			break;
		case '\r':
			g_string_append(out, "\\r");
			break;
		case '\t':
			g_string_append(out, "\\t");
			break;
		default:
			if (*p < 0x20 || *p >= 0x7f)
				g_string_append_printf(out, "\\u%04x", *p);
			else
				g_string_append_c(out, *p);
		}
	}
	g_string_append_c(out, '"');
}

bool ctl_json_is_number(const char *text)
{
	size_t len = strlen(text);
	unsigned long long value = 0;

	/* JSON has no leading zeros; "007" is a name, not seven. */
	if (!len || len > 16 || (text[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		value = value * 10 + (text[i] - '0');
	}
	return value <= CTL_JSON_MAX_SAFE;
}

void ctl_json_value(GString *out, const char *text)
{
	if (ctl_json_is_number(text))
		g_string_append(out, text);
	else
		ctl_json_string(out, text);
}

void ctl_json_object(GString *out, const struct proto_request *record)
{
	g_string_append_c(out, '{');
	for (int i = 0; i < record->arg_count; i++) {
		if (i)
			g_string_append_c(out, ',');
		ctl_json_string(out, record->args[i].key);
		g_string_append_c(out, ':');
		ctl_json_value(out, record->args[i].value);
	}
	g_string_append_c(out, '}');
}
