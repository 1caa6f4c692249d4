// SPDX-License-Identifier: MIT
/* A call: one request to etcd and its attempts on the endpoints. An endpoint
 * that fails (no connection, no leader, 5xx) hands the request to the next;
 * once every endpoint failed in a round, the call pauses (exponential backoff
 * with jitter) before the next round; at its deadline it gives up and says
 * why, endpoint by endpoint. A write is sent again only when etcd surely did
 * not apply it. Streams (watches) have no deadline and never give up. */
#include "etcd_internal.h"

#include <stdarg.h>
#include <string.h>

#include "etcd_json.h"

/* Larger answers are refused: a range that large wants etcd_range_pages. */
#define ANSWER_MAX (256u << 20)

struct etcd_call *etcd_call_new(struct etcd_client *client, const struct etcd_call_ops *ops,
				void *op, const char *path, char *body, unsigned flags)
{
	struct etcd_call *call = g_new0(struct etcd_call, 1);

	call->client = client;
	call->ops = ops;
	call->op = op;
	call->path = g_strdup(path);
	call->body = body;
	call->flags = flags;
	call->refs = 1;
	call->received = g_byte_array_new();
	call->why = g_new0(char *, client->n_endpoints + 1);
	call->gave_up_as = ETCD_UNAVAILABLE;
	g_hash_table_add(client->calls, call);
	return call;
}

static void call_free(struct etcd_call *call)
{
	g_hash_table_remove(call->client->calls, call);
	etcd_timer_free(call->backoff);
	etcd_timer_free(call->first_answer);
	if (call->ops->free)
		call->ops->free(call->op);
	g_free(call->path);
	g_free(call->body);
	g_free(call->url);
	g_byte_array_unref(call->received);
	/* One note per endpoint, NULL where it did not fail: not a NULL-ended
	 * vector (g_strfreev would stop at the first hole). */
	for (size_t i = 0; i < call->client->n_endpoints; i++)
		g_free(call->why[i]);
	g_free(call->why);
	g_free(call);
}

void etcd_call_ref(struct etcd_call *call)
{
	call->refs++;
}

void etcd_call_unref(struct etcd_call *call)
{
	if (--call->refs == 0)
		call_free(call);
}

/* Takes the attempt in flight off curl (closing its connection if it was
 * not finished). */
static void detach(struct etcd_call *call)
{
	etcd_timer_disarm(call->first_answer);
	if (!call->easy)
		return;
	curl_multi_remove_handle(call->client->multi, call->easy);
	curl_easy_cleanup(call->easy);
	call->easy = NULL;
}

void etcd_call_stop(struct etcd_call *call)
{
	if (call->stopped)
		return;
	call->stopped = true;
	detach(call);
	if (call->queued) {
		g_queue_remove(&call->client->streams_ready, call);
		call->queued = false;
	}
	etcd_timer_disarm(call->backoff);
	etcd_call_unref(call);
}

void etcd_call_cancel(struct etcd_call *call)
{
	if (call)
		etcd_call_stop(call);
}

const char *etcd_call_endpoint(const struct etcd_call *call)
{
	return call->client->endpoints[call->endpoint];
}

size_t etcd_call_endpoint_index(const struct etcd_call *call)
{
	return call->endpoint;
}

static int timeout_ms(const struct etcd_call *call)
{
	return call->timeout_ms ? call->timeout_ms : call->client->options.timeout_ms;
}

void etcd_call_note(struct etcd_call *call, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	g_free(call->why[call->endpoint]);
	call->why[call->endpoint] = g_strdup_vprintf(format, args);
	va_end(args);
}

void etcd_call_fail(struct etcd_call *call, enum etcd_status status, const char *format, ...)
{
	struct etcd_error error;
	va_list args;

	if (call->stopped)
		return;
	memset(&error, 0, sizeof(error));
	error.status = status;
	va_start(args, format);
	g_vsnprintf(error.message, sizeof(error.message), format, args);
	va_end(args);
	etcd_call_ref(call);
	call->ops->fail(call, &error);
	etcd_call_stop(call);
	etcd_call_unref(call);
}

static bool is_write(const struct etcd_call *call)
{
	return !(call->flags & ETCD_CALL_IDEMPOTENT);
}

/* Every endpoint's last failure, "; "-separated. */
static char *notes(const struct etcd_call *call)
{
	GString *text = g_string_new(NULL);

	for (size_t i = 0; i < call->client->n_endpoints; i++) {
		if (!call->why[i])
			continue;
		if (text->len)
			g_string_append(text, "; ");
		g_string_append(text, call->why[i]);
	}
	return g_string_free(text, false);
}

static void give_up(struct etcd_call *call)
{
	char *tried = notes(call);
	int ms = timeout_ms(call);

	if (call->gave_up_as == ETCD_TIMEOUT)
		etcd_call_fail(call, ETCD_TIMEOUT, "etcd did not answer the %s within %d ms (%s)%s",
			       call->ops->what, ms, tried,
			       is_write(call) ? "; it may or may not have been applied" : "");
	else if (call->flags & ETCD_CALL_PINNED)
		etcd_call_fail(call, ETCD_UNAVAILABLE, "etcd unavailable: %s", tried);
	else
		etcd_call_fail(call, ETCD_UNAVAILABLE,
			       "etcd unavailable: no endpoint took the %s within %d ms (%s)",
			       call->ops->what, ms, tried);
	g_free(tried);
}

/* etcd_client_set_tls's files, from memory (curl copies them). */
static void set_tls(const struct etcd_client *client, CURL *easy)
{
	struct curl_blob blob = { .flags = CURL_BLOB_COPY };

	if (client->tls_ca) {
		blob.data = (void *)g_bytes_get_data(client->tls_ca, &blob.len);
		curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (client->tls_cert && client->tls_key) {
		blob.data = (void *)g_bytes_get_data(client->tls_cert, &blob.len);
		curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
		blob.data = (void *)g_bytes_get_data(client->tls_key, &blob.len);
		curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
	}
}

static void on_no_first_answer(void *ctx);

static void attempt(struct etcd_call *call)
{
	struct etcd_client *client = call->client;
	int64_t now = g_get_monotonic_time();
	long left_ms = 0;

	if (call->deadline) {
		left_ms = (long)((call->deadline - now) / 1000);
		if (left_ms <= 0) {
			give_up(call);
			return;
		}
	}
	CURL *easy = curl_easy_init();

	if (!easy) {
		etcd_call_fail(call, ETCD_UNAVAILABLE, "curl_easy_init failed (out of memory?)");
		return;
	}
	g_free(call->url);
	call->url = g_strconcat(client->endpoints[call->endpoint], call->path, NULL);
	g_byte_array_set_size(call->received, 0);
	call->too_large = false;
	call->answered = false;
	call->curl_error[0] = '\0';
	call->attempt_started = now;
	long connect_ms = client->options.connect_timeout_ms;

	if (left_ms && left_ms < connect_ms)
		connect_ms = left_ms;
	/* A member that takes a read and never answers (hung, stopped) must
	 * leave the others time: a read's attempt gets half of what is left. A
	 * write sent cannot be sent elsewhere anyway: it gets it all. */
	call->attempt_ms = left_ms;
	if (left_ms && !is_write(call) && !(call->flags & ETCD_CALL_PINNED) &&
	    client->n_endpoints > 1)
		call->attempt_ms = MAX(left_ms / 2, MIN(left_ms, 200));
	curl_easy_setopt(easy, CURLOPT_URL, call->url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_PROXY, ""); /* never a proxy from the environment */
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(call->body));
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, client->headers);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, etcd_call_received);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, call);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, call->curl_error);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, call->attempt_ms); /* 0 (streams): none */
	/* A connection to a host that vanished (down, cut off) ends after the
	 * kernel's keepalive probes (about a minute), not never. */
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 10L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 5L);
	if (client->connect_afresh[call->endpoint])
		curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
	set_tls(client, easy);
	call->easy = easy;
	if (call->flags & ETCD_CALL_STREAM) {
		if (!call->first_answer)
			call->first_answer = etcd_timer_new(client->timers, on_no_first_answer, call);
		etcd_timer_arm(call->first_answer, (int64_t)timeout_ms(call) * 1000);
	}
	CURLMcode code = curl_multi_add_handle(client->multi, easy);

	if (code != CURLM_OK) {
		call->easy = NULL;
		curl_easy_cleanup(easy);
		etcd_call_fail(call, ETCD_UNAVAILABLE, "curl refused the %s: %s", call->ops->what,
			       curl_multi_strerror(code));
	}
}

static void on_backoff_over(void *ctx)
{
	attempt(ctx);
}

/* The pause after round number round failed: exponential, capped, with the
 * upper half random so that routers cut off together come back apart. */
static int64_t backoff_us(const struct etcd_client *client, unsigned round)
{
	int64_t pause_ms = client->options.backoff_min_ms;

	for (unsigned i = 0; i < round && pause_ms < client->options.backoff_max_ms; i++)
		pause_ms *= 2;
	pause_ms = MIN(pause_ms, client->options.backoff_max_ms);
	int64_t half = pause_ms * 1000 / 2;

	return half + g_random_int_range(0, (gint32)MIN(half, G_MAXINT32 - 1) + 1);
}

/* The current endpoint failed (noted): the next one, or a pause after a
 * whole round, or giving up at the deadline. */
static void retry(struct etcd_call *call)
{
	struct etcd_client *client = call->client;

	if (call->stopped)
		return;
	if (call->flags & ETCD_CALL_PINNED) {
		give_up(call);
		return;
	}
	/* New calls start elsewhere too. */
	if (client->preferred == call->endpoint)
		client->preferred = (call->endpoint + 1) % client->n_endpoints;
	call->endpoint = (call->endpoint + 1) % client->n_endpoints;
	if (++call->tried < client->n_endpoints) {
		attempt(call);
		return;
	}
	int64_t pause = backoff_us(client, call->round);

	call->tried = 0;
	call->round++;
	if (call->deadline && g_get_monotonic_time() + pause >= call->deadline) {
		give_up(call);
		return;
	}
	if (!call->backoff)
		call->backoff = etcd_timer_new(client->timers, on_backoff_over, call);
	etcd_timer_arm(call->backoff, pause);
}

void etcd_call_start(struct etcd_call *call, size_t endpoint)
{
	struct etcd_client *client = call->client;

	call->endpoint = call->flags & ETCD_CALL_PINNED ? endpoint : client->preferred;
	if (!(call->flags & ETCD_CALL_STREAM))
		call->deadline = g_get_monotonic_time() + (int64_t)timeout_ms(call) * 1000;
	attempt(call);
}

struct etcd_call *etcd_call_launch(struct etcd_call *call, size_t endpoint)
{
	etcd_call_ref(call);
	etcd_call_start(call, endpoint);
	bool over = call->stopped;

	etcd_call_unref(call);
	return over ? NULL : call;
}

void etcd_call_restart(struct etcd_call *call, char *body)
{
	etcd_call_set_body(call, body);
	call->tried = 0;
	call->round = 0;
	call->deadline = g_get_monotonic_time() + (int64_t)timeout_ms(call) * 1000;
	attempt(call);
}

void etcd_call_set_body(struct etcd_call *call, char *body)
{
	g_free(call->body);
	call->body = body;
}

size_t etcd_call_received(char *data, size_t size, size_t count, void *ctx)
{
	struct etcd_call *call = ctx;
	size_t len = size * count;

	if (call->received->len + len > ANSWER_MAX) {
		call->too_large = true;
		return 0; /* curl ends the transfer: CURLE_WRITE_ERROR */
	}
	g_byte_array_append(call->received, (const guint8 *)data, (guint)len);
	if ((call->flags & ETCD_CALL_STREAM) && !call->queued && memchr(data, '\n', len)) {
		g_queue_push_tail(&call->client->streams_ready, call);
		call->queued = true;
	}
	return len;
}

/* A stream broke (noted): the user hears of it, the request is updated to
 * resume, and the next endpoint gets it. */
static void resume_stream(struct etcd_call *call)
{
	/* A stream that ran a while starts a fresh round: no pause before the
	 * other endpoints. */
	if (call->answered && g_get_monotonic_time() - call->attempt_started >= G_USEC_PER_SEC) {
		call->tried = 0;
		call->round = 0;
	}
	detach(call);
	/* Lines left unread are read again from the next endpoint. */
	if (call->queued) {
		g_queue_remove(&call->client->streams_ready, call);
		call->queued = false;
	}
	call->ops->resume(call, call->why[call->endpoint]);
	retry(call);
}

void etcd_call_abandon(struct etcd_call *call, const char *why)
{
	if (call->stopped || !call->easy)
		return;
	etcd_call_ref(call);
	call->client->connect_afresh[call->endpoint] = true;
	etcd_call_note(call, "%s", why);
	resume_stream(call);
	etcd_call_unref(call);
}

static void on_no_first_answer(void *ctx)
{
	struct etcd_call *call = ctx;
	char why[256];

	g_snprintf(why, sizeof(why), "%s: no answer to the %s within %d ms",
		   etcd_call_endpoint(call), call->ops->what, timeout_ms(call));
	etcd_call_abandon(call, why);
}

void etcd_call_deliver_lines(struct etcd_call *call)
{
	CURL *easy = call->easy;
	size_t consumed = 0;
	long http = 0;

	if (call->stopped || !easy)
		return;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http);
	if (http != 200) /* an error: read whole once the attempt ends */
		return;
	etcd_call_ref(call);
	/* Lines are read in place and dropped together at the end: a backlog of
	 * many in one read costs one move, not one per line. */
	for (;;) {
		const char *line = (const char *)call->received->data + consumed;
		const char *newline = memchr(line, '\n', call->received->len - consumed);

		if (!newline)
			break;
		size_t len = (size_t)(newline - line);
		char why[256];

		consumed += len + 1;
		if (!len)
			continue;
		JsonNode *root = etcd_json_parse(line, len, why, sizeof(why));

		if (!root) {
			etcd_call_fail(call, ETCD_BAD_RESPONSE,
				       "%s sent a %s message etcd 3.4 does not send: %s",
				       etcd_call_endpoint(call), call->ops->what, why);
			break;
		}
		if (!call->answered) {
			call->answered = true;
			etcd_timer_disarm(call->first_answer);
			call->client->connect_afresh[call->endpoint] = false;
		}
		enum etcd_next next = call->ops->answer(call, root);

		json_node_unref(root);
		if (next == ETCD_NEXT_DONE)
			etcd_call_stop(call);
		else if (next == ETCD_NEXT_RETRY)
			resume_stream(call);
		if (call->stopped || call->easy != easy)
			break; /* over, or another attempt with a buffer of its own */
	}
	if (!call->stopped && call->easy == easy)
		g_byte_array_remove_range(call->received, 0, (guint)consumed);
	etcd_call_unref(call);
}

/* etcd answered with an error status: judge it. */
static void refused(struct etcd_call *call, long http)
{
	const char *endpoint = etcd_call_endpoint(call);
	char why[256];
	JsonNode *root = etcd_json_parse((const char *)call->received->data, call->received->len,
					 why, sizeof(why));
	enum etcd_status status = ETCD_UNAVAILABLE;
	enum etcd_verdict verdict;
	char *message = NULL;
	int code;

	if (root && etcd_json_read_error(root, &code, &message)) {
		verdict = etcd_judge_grpc(code, message, &status);
	} else if (http >= 500) {
		message = g_strdup_printf("HTTP %ld", http);
		verdict = ETCD_VERDICT_RETRY_IF_READ;
	} else {
		etcd_call_fail(call, ETCD_BAD_RESPONSE,
			       "%s answered the %s with HTTP %ld and no etcd error: is it an etcd "
			       "3.4 client URL?",
			       endpoint, call->ops->what, http);
		goto out;
	}
	if (verdict == ETCD_VERDICT_RETRY ||
	    (verdict == ETCD_VERDICT_RETRY_IF_READ && !is_write(call))) {
		etcd_call_note(call, "%s: %s", endpoint, message);
		if (call->flags & ETCD_CALL_STREAM)
			resume_stream(call);
		else
			retry(call);
	} else if (verdict == ETCD_VERDICT_RETRY_IF_READ) {
		etcd_call_fail(call, ETCD_OUTCOME_UNKNOWN,
			       "%s answered the %s with '%s': it may or may not have been applied",
			       endpoint, call->ops->what, message);
	} else if (status == ETCD_COMPACTED) {
		etcd_call_fail(call, status, "the revision the %s asked for is compacted (%s: %s)",
			       call->ops->what, endpoint, message);
	} else {
		etcd_call_fail(call, status, "%s refused the %s: %s", endpoint, call->ops->what,
			       message);
	}
out:
	g_free(message);
	if (root)
		json_node_unref(root);
}

/* A one-shot call's answer (HTTP 200). */
static void answered(struct etcd_call *call)
{
	char why[256];
	JsonNode *root = etcd_json_parse((const char *)call->received->data, call->received->len,
					 why, sizeof(why));

	if (!root) {
		etcd_call_fail(call, ETCD_BAD_RESPONSE,
			       "%s answered the %s with something etcd 3.4 does not send: %s",
			       etcd_call_endpoint(call), call->ops->what, why);
		return;
	}
	if (!(call->flags & ETCD_CALL_PINNED))
		call->client->preferred = call->endpoint;
	call->client->connect_afresh[call->endpoint] = false;
	enum etcd_next next = call->ops->answer(call, root);

	json_node_unref(root);
	if (next == ETCD_NEXT_DONE)
		etcd_call_stop(call);
	else if (next == ETCD_NEXT_RETRY)
		retry(call);
}

/* curl ended the attempt with code (not CURLE_OK): the transfer failed. */
static void transfer_failed(struct etcd_call *call, CURLcode code, long sent, long http)
{
	const char *endpoint = etcd_call_endpoint(call);
	const char *text = call->curl_error[0] ? call->curl_error : curl_easy_strerror(code);

	if (code == CURLE_WRITE_ERROR && call->too_large) {
		etcd_call_fail(call, ETCD_BAD_RESPONSE, "%s answered the %s with more than %u MiB",
			       endpoint, call->ops->what, ANSWER_MAX >> 20);
		return;
	}
	if (code != CURLE_COULDNT_CONNECT && code != CURLE_COULDNT_RESOLVE_HOST)
		call->client->connect_afresh[call->endpoint] = true;
	if (call->flags & ETCD_CALL_STREAM) {
		etcd_call_note(call, http == 200 ? "the stream from %s broke: %s" : "%s: %s",
			       endpoint, text);
		resume_stream(call);
		return;
	}
	if (!sent || code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST) {
		/* Never reached etcd: safe to send anywhere. */
		etcd_call_note(call, "%s: %s", endpoint, text);
		retry(call);
		return;
	}
	if (code == CURLE_OPERATION_TIMEDOUT) {
		etcd_call_note(call, "%s: no answer within %ld ms", endpoint, call->attempt_ms);
		call->gave_up_as = ETCD_TIMEOUT;
		/* A read's attempt had part of the time: the rest for the others. */
		if (!is_write(call) && g_get_monotonic_time() < call->deadline - 1000) {
			retry(call);
			return;
		}
		give_up(call);
		return;
	}
	if (!is_write(call)) {
		etcd_call_note(call, "%s: %s", endpoint, text);
		retry(call);
		return;
	}
	etcd_call_fail(call, ETCD_OUTCOME_UNKNOWN,
		       "the connection to %s broke after the %s was sent (%s): it may or may not "
		       "have been applied",
		       endpoint, call->ops->what, text);
}

void etcd_call_finished(struct etcd_call *call, CURLcode code)
{
	long http = 0, sent = 0;

	curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &http);
	curl_easy_getinfo(call->easy, CURLINFO_REQUEST_SIZE, &sent);
	detach(call);
	etcd_call_ref(call);
	if (code != CURLE_OK) {
		transfer_failed(call, code, sent, http);
	} else if (call->flags & ETCD_CALL_STREAM) {
		if (http == 200) {
			etcd_call_note(call, "%s ended the stream", etcd_call_endpoint(call));
			resume_stream(call);
		} else {
			refused(call, http);
		}
	} else if (http == 200) {
		answered(call);
	} else {
		refused(call, http);
	}
	etcd_call_unref(call);
}
