// SPDX-License-Identifier: MIT
/* A member's status (/v3/maintenance/status), asked of that member alone:
 * its id, the leader it follows, its revision, for `fleet status`. */
#include "etcd_internal.h"

#include "etcd_json.h"

struct status_op {
	etcd_status_cb callback;
	void *ctx;
};

static enum etcd_next status_answer(struct etcd_call *call, JsonNode *root)
{
	struct status_op *op = call->op;
	struct etcd_member_status status;
	char why[256];

	if (!etcd_json_read_status(root, &status, why, sizeof(why))) {
		etcd_call_fail(call, ETCD_BAD_RESPONSE,
			       "%s answered the status with something etcd 3.4 does not send: %s",
			       etcd_call_endpoint(call), why);
		return ETCD_NEXT_DONE;
	}
	status.endpoint = etcd_call_endpoint(call);
	op->callback(op->ctx, NULL, &status);
	return ETCD_NEXT_DONE;
}

static void status_fail(struct etcd_call *call, const struct etcd_error *error)
{
	struct status_op *op = call->op;

	op->callback(op->ctx, error, NULL);
}

static const struct etcd_call_ops status_ops = {
	.what = "status", .answer = status_answer, .fail = status_fail, .free = g_free,
};

struct etcd_call *etcd_member_status_within(struct etcd_client *client, size_t index,
					    int timeout_ms, etcd_status_cb callback, void *ctx)
{
	struct status_op op = { callback, ctx };

	if (index >= client->n_endpoints || !callback)
		return NULL;
	struct etcd_call *call = etcd_call_new(client, &status_ops, g_memdup2(&op, sizeof(op)),
					       "/v3/maintenance/status", g_strdup("{}"),
					       ETCD_CALL_IDEMPOTENT | ETCD_CALL_PINNED);

	call->timeout_ms = timeout_ms;
	return etcd_call_launch(call, index);
}

struct etcd_call *etcd_member_status(struct etcd_client *client, size_t index,
				     etcd_status_cb callback, void *ctx)
{
	return etcd_member_status_within(client, index, 0, callback, ctx);
}
