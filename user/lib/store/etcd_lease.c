// SPDX-License-Identifier: MIT
/* Leases: grant, revoke, and keeping one alive. A keepalive renews the lease
 * every third of its TTL from the client's timers (each renewal a call of its
 * own, failing over like any other) and knows when etcd will drop the lease
 * unless a renewal gets through: past that, or when etcd answers that it no
 * longer knows the lease, the owner is told once that the lease is lost. */
#include "etcd_internal.h"

#include <stdarg.h>
#include <string.h>

#include "etcd_json.h"

/* --- Grant and revoke ----------------------------------------------------- */

struct lease_op {
	etcd_lease_cb granted;
	etcd_write_cb revoked;
	void *ctx;
};

static enum etcd_next grant_answer(struct etcd_call *call, JsonNode *root)
{
	struct lease_op *op = call->op;
	int64_t id, ttl;
	char why[256];

	if (!etcd_json_read_lease(root, &id, &ttl, why, sizeof(why))) {
		etcd_call_fail(call, ETCD_BAD_RESPONSE, "%s answered the lease grant badly: %s",
			       etcd_call_endpoint(call), why);
		return ETCD_NEXT_DONE;
	}
	if (!id || ttl <= 0) {
		etcd_call_fail(call, ETCD_BAD_RESPONSE,
			       "%s answered the lease grant without a lease ID or TTL",
			       etcd_call_endpoint(call));
		return ETCD_NEXT_DONE;
	}
	op->granted(op->ctx, NULL, id, ttl);
	return ETCD_NEXT_DONE;
}

static void grant_fail(struct etcd_call *call, const struct etcd_error *error)
{
	struct lease_op *op = call->op;

	op->granted(op->ctx, error, 0, 0);
}

static const struct etcd_call_ops grant_ops = {
	.what = "lease grant", .answer = grant_answer, .fail = grant_fail, .free = g_free,
};

struct etcd_call *etcd_lease_grant(struct etcd_client *client, int64_t ttl, etcd_lease_cb callback,
				   void *ctx)
{
	struct lease_op op = { .granted = callback, .ctx = ctx };

	if (ttl <= 0 || !callback)
		return NULL;
	/* Not resent once maybe applied: a lease granted twice is one leaked
	 * until its TTL runs out. */
	return etcd_call_launch(etcd_call_new(client, &grant_ops, g_memdup2(&op, sizeof(op)),
					      "/v3/lease/grant", etcd_json_lease_grant_request(ttl),
					      0),
				0);
}

static enum etcd_next revoke_answer(struct etcd_call *call, JsonNode *root)
{
	struct lease_op *op = call->op;
	struct etcd_write_result result;
	char why[256];

	if (!etcd_json_read_write(root, &result, why, sizeof(why))) {
		etcd_call_fail(call, ETCD_BAD_RESPONSE, "%s answered the lease revoke badly: %s",
			       etcd_call_endpoint(call), why);
		return ETCD_NEXT_DONE;
	}
	op->revoked(op->ctx, NULL, &result);
	return ETCD_NEXT_DONE;
}

static void revoke_fail(struct etcd_call *call, const struct etcd_error *error)
{
	struct lease_op *op = call->op;

	op->revoked(op->ctx, error, NULL);
}

static const struct etcd_call_ops revoke_ops = {
	.what = "lease revoke", .answer = revoke_answer, .fail = revoke_fail, .free = g_free,
};

struct etcd_call *etcd_lease_revoke(struct etcd_client *client, int64_t id,
				    etcd_write_cb callback, void *ctx)
{
	struct lease_op op = { .revoked = callback, .ctx = ctx };

	if (!id || !callback)
		return NULL;
	/* Resent, a revoke that went through reads ETCD_NOT_FOUND: still gone. */
	return etcd_call_launch(etcd_call_new(client, &revoke_ops, g_memdup2(&op, sizeof(op)),
					      "/v3/lease/revoke", etcd_json_lease_id_request(id),
					      ETCD_CALL_IDEMPOTENT),
				0);
}

/* --- One renewal -------------------------------------------------------------- */

static enum etcd_next renew_once_answer(struct etcd_call *call, JsonNode *root)
{
	struct lease_op *op = call->op;
	int64_t id, ttl;
	char why[256];

	if (!etcd_json_read_lease(root, &id, &ttl, why, sizeof(why))) {
		etcd_call_fail(call, ETCD_BAD_RESPONSE, "%s answered the keepalive badly: %s",
			       etcd_call_endpoint(call), why);
		return ETCD_NEXT_DONE;
	}
	if (ttl <= 0) {
		etcd_call_fail(call, ETCD_NOT_FOUND,
			       "lease %" G_GINT64_FORMAT " is gone: etcd (%s) no longer knows it "
			       "(it expired or was revoked)",
			       id, etcd_call_endpoint(call));
		return ETCD_NEXT_DONE;
	}
	op->granted(op->ctx, NULL, id, ttl);
	return ETCD_NEXT_DONE;
}

static const struct etcd_call_ops renew_once_ops = {
	.what = "lease keepalive", .answer = renew_once_answer, .fail = grant_fail,
	.free = g_free,
};

struct etcd_call *etcd_lease_keepalive_once(struct etcd_client *client, int64_t id,
					    etcd_lease_cb callback, void *ctx)
{
	struct lease_op op = { .granted = callback, .ctx = ctx };

	if (!id || !callback)
		return NULL;
	return etcd_call_launch(etcd_call_new(client, &renew_once_ops,
					      g_memdup2(&op, sizeof(op)), "/v3/lease/keepalive",
					      etcd_json_lease_id_request(id), ETCD_CALL_IDEMPOTENT),
				0);
}

/* --- Keepalive -------------------------------------------------------------- */

struct etcd_keepalive {
	struct etcd_client *client;
	int64_t id;
	int64_t ttl; /* seconds */
	struct etcd_timer *timer;
	struct etcd_call *call; /* the renewal in flight */
	int64_t sent;           /* when it was sent (monotonic µs) */
	int64_t expires;        /* when etcd drops the lease unless renewed */
	char *last_error;
	bool lost;
	etcd_lease_lost_cb on_lost;
	void *ctx;
	int in_callback;
	bool stopped; /* from its callback: freed once that returns */
};

static void keepalive_free(struct etcd_keepalive *keepalive)
{
	if (keepalive->call) {
		struct etcd_call *call = keepalive->call;

		keepalive->call = NULL;
		etcd_call_stop(call);
	}
	etcd_timer_free(keepalive->timer);
	etcd_client_forget_keepalive(keepalive->client, keepalive);
	g_free(keepalive->last_error);
	g_free(keepalive);
}

void etcd_keepalive_stop(struct etcd_keepalive *keepalive)
{
	if (!keepalive)
		return;
	if (keepalive->in_callback) {
		keepalive->stopped = true;
		return;
	}
	keepalive_free(keepalive);
}

void etcd_keepalive_free_all(struct etcd_client *client)
{
	GList *keepalives = g_hash_table_get_keys(client->keepalives);

	for (GList *l = keepalives; l; l = l->next)
		keepalive_free(l->data);
	g_list_free(keepalives);
}

static int64_t period_us(const struct etcd_keepalive *keepalive)
{
	return MAX(keepalive->ttl * G_USEC_PER_SEC / 3, 100 * 1000);
}

/* Tells the owner, once, that the lease is gone. */
static void lose(struct etcd_keepalive *keepalive, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void lose(struct etcd_keepalive *keepalive, const char *format, ...)
{
	struct etcd_error error = { .status = ETCD_NOT_FOUND };
	va_list args;

	if (keepalive->lost)
		return;
	keepalive->lost = true;
	etcd_timer_disarm(keepalive->timer);
	if (keepalive->call) {
		struct etcd_call *call = keepalive->call;

		keepalive->call = NULL;
		etcd_call_stop(call);
	}
	va_start(args, format);
	g_vsnprintf(error.message, sizeof(error.message), format, args);
	va_end(args);
	keepalive->in_callback++;
	keepalive->on_lost(keepalive->ctx, &error);
	keepalive->in_callback--;
	if (keepalive->stopped && !keepalive->in_callback)
		keepalive_free(keepalive);
}

static enum etcd_next renew_answer(struct etcd_call *call, JsonNode *root)
{
	struct etcd_keepalive *keepalive = call->op;
	int64_t id, ttl;
	char why[256];

	keepalive->call = NULL;
	if (!etcd_json_read_lease(root, &id, &ttl, why, sizeof(why))) {
		g_free(keepalive->last_error);
		keepalive->last_error = g_strdup_printf("%s answered a keepalive badly: %s",
							etcd_call_endpoint(call), why);
		etcd_timer_arm(keepalive->timer, MIN(period_us(keepalive), G_USEC_PER_SEC / 2));
		return ETCD_NEXT_DONE;
	}
	if (ttl <= 0) {
		lose(keepalive,
		     "lease %" G_GINT64_FORMAT " is gone: etcd (%s) no longer knows it (it "
		     "expired or was revoked)",
		     keepalive->id, etcd_call_endpoint(call));
		return ETCD_NEXT_DONE;
	}
	keepalive->ttl = ttl;
	keepalive->expires = keepalive->sent + ttl * G_USEC_PER_SEC;
	etcd_timer_arm(keepalive->timer, period_us(keepalive));
	return ETCD_NEXT_DONE;
}

static void renew_fail(struct etcd_call *call, const struct etcd_error *error)
{
	struct etcd_keepalive *keepalive = call->op;

	keepalive->call = NULL;
	if (error->status == ETCD_NOT_FOUND) {
		lose(keepalive, "lease %" G_GINT64_FORMAT " is gone: %s", keepalive->id,
		     error->message);
		return;
	}
	g_free(keepalive->last_error);
	keepalive->last_error = g_strdup(error->message);
	/* Soon again; the timer says when the lease is past saving. */
	etcd_timer_arm(keepalive->timer, MIN(period_us(keepalive), G_USEC_PER_SEC / 2));
}

static const struct etcd_call_ops renew_ops = {
	.what = "lease keepalive",
	.answer = renew_answer,
	.fail = renew_fail,
	.free = NULL, /* the call's op is the keepalive, which outlives it */
};

static void renew(void *ctx)
{
	struct etcd_keepalive *keepalive = ctx;
	int64_t now = g_get_monotonic_time();

	if (keepalive->lost)
		return;
	if (now >= keepalive->expires) {
		lose(keepalive,
		     "lease %" G_GINT64_FORMAT " is lost: no keepalive reached etcd within its "
		     "TTL of %" G_GINT64_FORMAT " s (%s)",
		     keepalive->id, keepalive->ttl,
		     keepalive->last_error ? keepalive->last_error : "no answer yet");
		return;
	}
	/* Whatever happens to the renewal, wake up when the lease would expire. */
	etcd_timer_arm(keepalive->timer, keepalive->expires - now);
	if (keepalive->call)
		return; /* still trying */
	keepalive->sent = now;
	struct etcd_call *call = etcd_call_new(keepalive->client, &renew_ops, keepalive,
					       "/v3/lease/keepalive",
					       etcd_json_lease_id_request(keepalive->id),
					       ETCD_CALL_IDEMPOTENT);

	/* No use trying past the lease's end. */
	call->timeout_ms = (int)MAX((keepalive->expires - now) / 1000, 200);
	keepalive->in_callback++;
	keepalive->call = etcd_call_launch(call, 0);
	keepalive->in_callback--;
	if (keepalive->stopped)
		keepalive_free(keepalive);
}

struct etcd_keepalive *etcd_keepalive_start(struct etcd_client *client, int64_t id, int64_t ttl,
					    etcd_lease_lost_cb lost, void *ctx)
{
	if (!id || ttl <= 0 || !lost)
		return NULL;
	struct etcd_keepalive *keepalive = g_new0(struct etcd_keepalive, 1);

	keepalive->client = client;
	keepalive->id = id;
	keepalive->ttl = ttl;
	keepalive->expires = g_get_monotonic_time() + ttl * G_USEC_PER_SEC;
	keepalive->on_lost = lost;
	keepalive->ctx = ctx;
	keepalive->timer = etcd_timer_new(client->timers, renew, keepalive);
	g_hash_table_add(client->keepalives, keepalive);
	etcd_timer_arm(keepalive->timer, 0); /* renew now, from the loop */
	return keepalive;
}
