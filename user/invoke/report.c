// SPDX-License-Identifier: MIT
/* tether-invoke's output (invoke.h): key=value lines for people and
 * scripts, or one JSON object per line with --json. */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>

#include "control/json.h"
#include "invoke.h"

/* "ok", "no_capacity", ... for answers; what went wrong otherwise. */
static const char *outcome_status(const struct invoke_outcome *outcome)
{
	if (!outcome->error)
		return tether_status_name(outcome->reply.status);
	return outcome->error == -ETIMEDOUT ? "timeout" : "send_error";
}

/* Only an OK reply's token names the container that ran the request. */
static bool served(const struct invoke_outcome *outcome)
{
	return !outcome->error && outcome->reply.status == TETHER_STATUS_OK;
}

/* The payload on one line: printable ASCII as it is, anything else (and
 * the backslash) escaped, so the line stays one line. */
static void append_payload_text(GString *out, const struct tether_reply *reply)
{
	for (size_t i = 0; i < reply->payload_len; i++) {
		uint8_t c = reply->payload[i];

		if (c == '\\')
			g_string_append(out, "\\\\");
		else if (c >= 0x20 && c < 0x7f)
			g_string_append_c(out, (char)c);
		else
			g_string_append_printf(out, "\\x%02x", c);
	}
}

static void request_text(GString *out, const struct invoke_outcome *outcome)
{
	char hex[TETHER_TOKEN_HEX_LEN + 1];

	g_string_append_printf(out, "request=%" PRIu64 " status=%s", outcome->number,
			       outcome_status(outcome));
	if (served(outcome)) {
		tether_token_to_hex(outcome->reply.token, hex);
		g_string_append_printf(out, " container=%u token=%s",
				       tether_token_slot(outcome->reply.token), hex);
	} else {
		g_string_append(out, " container=- token=-");
	}
	if (outcome->error) {
		g_string_append(out, " latency_us=- payload=");
		return;
	}
	g_string_append_printf(out, " latency_us=%" PRIu64 " payload=", outcome->latency_us);
	append_payload_text(out, &outcome->reply);
}

static void request_json(GString *out, const struct invoke_outcome *outcome)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	char hex[TETHER_TOKEN_HEX_LEN + 1];

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "request");
	json_builder_add_int_value(b, (gint64)outcome->number);
	json_builder_set_member_name(b, "status");
	json_builder_add_string_value(b, outcome_status(outcome));
	json_builder_set_member_name(b, "container");
	if (served(outcome))
		json_builder_add_int_value(b, tether_token_slot(outcome->reply.token));
	else
		json_builder_add_null_value(b);
	json_builder_set_member_name(b, "token");
	if (served(outcome)) {
		tether_token_to_hex(outcome->reply.token, hex);
		json_builder_add_string_value(b, hex);
	} else {
		json_builder_add_null_value(b);
	}
	json_builder_set_member_name(b, "latency_us");
	if (outcome->error)
		json_builder_add_null_value(b);
	else
		json_builder_add_int_value(b, (gint64)outcome->latency_us);
	json_builder_set_member_name(b, "payload");
	if (outcome->error) {
		json_builder_add_null_value(b);
	} else {
		/* Text: a NUL in the payload ends it there. */
		g_autofree char *payload =
			g_strndup((const char *)outcome->reply.payload, outcome->reply.payload_len);

		ctl_json_add_string(b, payload);
	}
	json_builder_end_object(b);
	ctl_json_append(out, b);
}

void report_request(const struct invoke_options *o, const struct invoke_outcome *outcome)
{
	GString *out = g_string_new(NULL);

	if (o->json)
		request_json(out, outcome);
	else
		request_text(out, outcome);
	g_string_append_c(out, '\n');
	fputs(out->str, stdout);
	fflush(stdout); /* a line per request as it happens, also into a pipe */
	g_string_free(out, TRUE);
}

void report_totals(const struct invoke_options *o, const struct invoke_totals *totals)
{
	const struct tether_histogram *h = &totals->latency_us;
	uint64_t failed = totals->requests - totals->ok;
	uint64_t p50 = tether_histogram_quantile(h, 1, 2);
	uint64_t p99 = tether_histogram_quantile(h, 99, 100);

	if (o->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		g_autoptr(GString) out = g_string_new(NULL);
		const struct {
			const char *name;
			uint64_t value;
		} fields[] = { { "requests", totals->requests }, { "ok", totals->ok },
			       { "failed", failed },		 { "p50_us", p50 },
			       { "p99_us", p99 },		 { "max_us", h->max } };

		json_builder_begin_object(b);
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			json_builder_set_member_name(b, fields[i].name);
			json_builder_add_int_value(b, (gint64)fields[i].value);
		}
		json_builder_end_object(b);
		ctl_json_append(out, b);
		printf("%s\n", out->str);
	} else
		printf("requests=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64 " p50_us=%" PRIu64
		       " p99_us=%" PRIu64 " max_us=%" PRIu64 "\n",
		       totals->requests, totals->ok, failed, p50, p99, h->max);
}
