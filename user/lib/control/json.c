// SPDX-License-Identifier: MIT
/* JSON for --json output, on json-glib (json.h). */
#include <string.h>

#include "json.h"

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

void ctl_json_add_string(JsonBuilder *b, const char *text)
{
	if (g_utf8_validate(text, -1, NULL)) {
		json_builder_add_string_value(b, text);
		return;
	}
	/* Latin-1: a byte of 0x80 or more is two bytes of UTF-8. */
	GString *utf8 = g_string_sized_new(2 * strlen(text));

	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		if (*p < 0x80) {
			g_string_append_c(utf8, (char)*p);
		} else {
			g_string_append_c(utf8, (char)(0xc0 | *p >> 6));
			g_string_append_c(utf8, (char)(0x80 | (*p & 0x3f)));
		}
	json_builder_add_string_value(b, utf8->str);
	g_string_free(utf8, TRUE);
}

void ctl_json_add_value(JsonBuilder *b, const char *text)
{
	if (ctl_json_is_number(text))
		json_builder_add_int_value(b, (gint64)g_ascii_strtoull(text, NULL, 10));
	else
		ctl_json_add_string(b, text);
}

void ctl_json_add_record(JsonBuilder *b, const struct proto_request *record)
{
	json_builder_begin_object(b);
	for (int i = 0; i < record->arg_count; i++) {
		json_builder_set_member_name(b, record->args[i].key);
		ctl_json_add_value(b, record->args[i].value);
	}
	json_builder_end_object(b);
}

void ctl_json_append(GString *out, JsonBuilder *b)
{
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autoptr(JsonNode) root = json_builder_get_root(b);
	gsize len;

	json_generator_set_root(generator, root);
	g_autofree char *text = json_generator_to_data(generator, &len);

	/* json-glib 1.6 (Debian 12) escapes every control character but 0x1f,
	 * which it writes as it is: JSON wants it escaped. A raw 0x1f can only
	 * be inside a string here. */
	for (gsize i = 0; i < len; i++) {
		if (text[i] == 0x1f)
			g_string_append(out, "\\u001f");
		else
			g_string_append_c(out, text[i]);
	}
}
