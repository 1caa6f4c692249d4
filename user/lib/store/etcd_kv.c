// SPDX-License-Identifier: MIT
/* Keys and values: range (and a large range in pages), put, delete,
 * transactions and compaction, as calls (etcd_call.c) with their callbacks. */
#include "etcd_internal.h"

#include <string.h>

#include "etcd_json.h"

/* A one-shot call's callback. */
struct kv_op {
	etcd_range_cb range;
	etcd_write_cb write;
	etcd_txn_cb txn;
	void *ctx;
};

static void bad_answer(struct etcd_call *call, const char *why)
{
	etcd_call_fail(call, ETCD_BAD_RESPONSE,
		       "%s answered the %s with something etcd 3.4 does not send: %s",
		       etcd_call_endpoint(call), call->ops->what, why);
}

/* timeout_ms: the call's deadline; 0: the client's. */
static struct etcd_call *start_within(struct etcd_client *client, const struct etcd_call_ops *ops,
				      struct kv_op op, const char *path, char *body, unsigned flags,
				      int timeout_ms)
{
	struct etcd_call *call =
		etcd_call_new(client, ops, g_memdup2(&op, sizeof(op)), path, body, flags);

	call->timeout_ms = timeout_ms;
	return etcd_call_launch(call, 0);
}

static struct etcd_call *start(struct etcd_client *client, const struct etcd_call_ops *ops,
			       struct kv_op op, const char *path, char *body, unsigned flags)
{
	return start_within(client, ops, op, path, body, flags, 0);
}

/* --- Range ------------------------------------------------------------------ */

static enum etcd_next range_answer(struct etcd_call *call, JsonNode *root)
{
	struct kv_op *op = call->op;
	struct etcd_range_result result;
	char why[256];

	if (!etcd_json_read_range(root, &result, why, sizeof(why))) {
		bad_answer(call, why);
		return ETCD_NEXT_DONE;
	}
	op->range(op->ctx, NULL, &result);
	etcd_range_result_clear(&result);
	return ETCD_NEXT_DONE;
}

static void range_fail(struct etcd_call *call, const struct etcd_error *error)
{
	struct kv_op *op = call->op;

	op->range(op->ctx, error, NULL);
}

static const struct etcd_call_ops range_ops = {
	.what = "range",
	.answer = range_answer,
	.fail = range_fail,
	.free = g_free,
};

/* The range's body, with its end worked out from prefix or range_end. */
static char *range_body(const struct etcd_range *range)
{
	size_t key_len = strlen(range->key), end_len = 0;
	char *end = NULL;

	if (range->range_end) {
		/* "": every key from key on, which etcd spells as one NUL byte. */
		end = g_strdup(range->range_end);
		end_len = MAX(strlen(end), 1);
	} else if (range->prefix) {
		end = etcd_prefix_end(range->key, key_len, &end_len);
	}
	char *body = etcd_json_range_request(range->key, key_len, end, end_len, range->revision,
					     range->limit, range->keys_only, range->count_only);

	g_free(end);
	return body;
}

struct etcd_call *etcd_range(struct etcd_client *client, const struct etcd_range *range,
			     etcd_range_cb callback, void *ctx)
{
	if (!range || !range->key || !callback)
		return NULL;
	return start_within(client, &range_ops, (struct kv_op){ .range = callback, .ctx = ctx },
			    "/v3/kv/range", range_body(range), ETCD_CALL_IDEMPOTENT,
			    range->timeout_ms);
}

/* --- A range in pages ------------------------------------------------------- */

struct pages_op {
	char *key; /* where the next page starts */
	size_t key_len;
	char *end;
	size_t end_len;
	int64_t revision; /* every page's; 0 until the first page set it */
	int64_t limit;
	bool keys_only;
	etcd_page_cb page;
	etcd_pages_done_cb done;
	void *ctx;
};

static void pages_free(void *ctx)
{
	struct pages_op *op = ctx;

	g_free(op->key);
	g_free(op->end);
	g_free(op);
}

static char *pages_body(const struct pages_op *op)
{
	return etcd_json_range_request(op->key, op->key_len, op->end, op->end_len, op->revision,
				       op->limit, op->keys_only, false);
}

static enum etcd_next pages_answer(struct etcd_call *call, JsonNode *root)
{
	struct pages_op *op = call->op;
	struct etcd_range_result page;
	char why[256];

	if (!etcd_json_read_range(root, &page, why, sizeof(why))) {
		bad_answer(call, why);
		return ETCD_NEXT_DONE;
	}
	if (!op->revision)
		op->revision = page.header.revision;
	op->page(op->ctx, &page);
	if (call->stopped) { /* cancelled from the page callback */
		etcd_range_result_clear(&page);
		return ETCD_NEXT_DONE;
	}
	if (!page.more || !page.n_kvs) {
		etcd_range_result_clear(&page);
		op->done(op->ctx, NULL, op->revision);
		return ETCD_NEXT_DONE;
	}
	/* The next page starts right after the last key: the key with a NUL. */
	const struct etcd_kv *last = &page.kvs[page.n_kvs - 1];

	g_free(op->key);
	op->key = g_malloc0(last->key_len + 1);
	memcpy(op->key, last->key, last->key_len);
	op->key_len = last->key_len + 1;
	etcd_range_result_clear(&page);
	etcd_call_restart(call, pages_body(op));
	return ETCD_NEXT_GO_ON;
}

static void pages_fail(struct etcd_call *call, const struct etcd_error *error)
{
	struct pages_op *op = call->op;

	op->done(op->ctx, error, op->revision);
}

static const struct etcd_call_ops pages_ops = {
	.what = "range",
	.answer = pages_answer,
	.fail = pages_fail,
	.free = pages_free,
};

struct etcd_call *etcd_range_pages(struct etcd_client *client, const struct etcd_range *range,
				   etcd_page_cb page, etcd_pages_done_cb done, void *ctx)
{
	if (!range || !range->key || !page || !done)
		return NULL;
	struct pages_op *op = g_new0(struct pages_op, 1);

	op->key_len = strlen(range->key);
	op->key = g_strdup(range->key);
	if (range->range_end) {
		op->end_len = MAX(strlen(range->range_end), 1);
		op->end = g_strdup(range->range_end);
	} else if (range->prefix) {
		op->end = etcd_prefix_end(range->key, op->key_len, &op->end_len);
	} else { /* one key: one page */
		op->end = NULL;
	}
	op->revision = range->revision;
	/* etcd 3.4 walks the rest of the range in its index for every page (to
	 * count it), so small pages cost the square of the keys: 1,000,000 keys
	 * took 72 s in pages of 2,000 and 27 s in pages of 10,000 (answers of
	 * ~1.5 MB), most of it etcd writing JSON. */
	op->limit = range->limit > 0 ? range->limit : 10000;
	op->keys_only = range->keys_only;
	op->page = page;
	op->done = done;
	op->ctx = ctx;
	return etcd_call_launch(etcd_call_new(client, &pages_ops, op, "/v3/kv/range",
					      pages_body(op), ETCD_CALL_IDEMPOTENT),
				0);
}

/* --- Writes: put, delete, compaction ------------------------------------------ */

static enum etcd_next write_answer(struct etcd_call *call, JsonNode *root)
{
	struct kv_op *op = call->op;
	struct etcd_write_result result;
	char why[256];

	if (!etcd_json_read_write(root, &result, why, sizeof(why))) {
		bad_answer(call, why);
		return ETCD_NEXT_DONE;
	}
	op->write(op->ctx, NULL, &result);
	return ETCD_NEXT_DONE;
}

static void write_fail(struct etcd_call *call, const struct etcd_error *error)
{
	struct kv_op *op = call->op;

	op->write(op->ctx, error, NULL);
}

static const struct etcd_call_ops put_ops = {
	.what = "put", .answer = write_answer, .fail = write_fail, .free = g_free,
};
static const struct etcd_call_ops delete_ops = {
	.what = "delete", .answer = write_answer, .fail = write_fail, .free = g_free,
};
static const struct etcd_call_ops compact_ops = {
	.what = "compaction", .answer = write_answer, .fail = write_fail, .free = g_free,
};

struct etcd_call *etcd_put(struct etcd_client *client, const char *key, const void *value,
			   size_t value_len, int64_t lease, etcd_write_cb callback, void *ctx)
{
	if (!key || !callback)
		return NULL;
	return start(client, &put_ops, (struct kv_op){ .write = callback, .ctx = ctx },
		     "/v3/kv/put", etcd_json_put_request(key, value, value_len, lease), 0);
}

struct etcd_call *etcd_delete(struct etcd_client *client, const char *key, bool prefix,
			      etcd_write_cb callback, void *ctx)
{
	if (!key || !callback)
		return NULL;
	size_t key_len = strlen(key), end_len = 0;
	char *end = prefix ? etcd_prefix_end(key, key_len, &end_len) : NULL;
	char *body = etcd_json_delete_request(key, key_len, end, end_len);

	g_free(end);
	return start(client, &delete_ops, (struct kv_op){ .write = callback, .ctx = ctx },
		     "/v3/kv/deleterange", body, 0);
}

struct etcd_call *etcd_compact(struct etcd_client *client, int64_t revision, bool physical,
			       etcd_write_cb callback, void *ctx)
{
	if (revision <= 0 || !callback)
		return NULL;
	/* Compacting twice to one revision changes nothing: safe to resend. */
	return start(client, &compact_ops, (struct kv_op){ .write = callback, .ctx = ctx },
		     "/v3/kv/compaction", etcd_json_compact_request(revision, physical),
		     ETCD_CALL_IDEMPOTENT);
}

/* --- Transactions ------------------------------------------------------------ */

static enum etcd_next txn_answer(struct etcd_call *call, JsonNode *root)
{
	struct kv_op *op = call->op;
	struct etcd_txn_result result;
	char why[256];

	if (!etcd_json_read_txn(root, &result, why, sizeof(why))) {
		bad_answer(call, why);
		return ETCD_NEXT_DONE;
	}
	if (result.succeeded) {
		op->txn(op->ctx, NULL, &result);
	} else {
		struct etcd_error error;

		etcd_error_set(&error, ETCD_FAILED_COMPARE,
			       "the txn's compares did not hold at revision %" G_GINT64_FORMAT
			       ": its failure ops ran",
			       result.header.revision);
		op->txn(op->ctx, &error, &result);
	}
	etcd_txn_result_clear(&result);
	return ETCD_NEXT_DONE;
}

static void txn_fail(struct etcd_call *call, const struct etcd_error *error)
{
	struct kv_op *op = call->op;

	op->txn(op->ctx, error, NULL);
}

static const struct etcd_call_ops txn_ops = {
	.what = "txn", .answer = txn_answer, .fail = txn_fail, .free = g_free,
};

struct etcd_call *etcd_txn(struct etcd_client *client, const struct etcd_txn *txn,
			   etcd_txn_cb callback, void *ctx)
{
	char why[128];

	if (!txn || !callback)
		return NULL;
	char *body = etcd_json_txn_request(txn, why, sizeof(why));

	if (!body) {
		g_warning("etcd_txn: %s", why);
		return NULL;
	}
	return start(client, &txn_ops, (struct kv_op){ .txn = callback, .ctx = ctx }, "/v3/kv/txn",
		     body, 0);
}
