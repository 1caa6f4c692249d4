// SPDX-License-Identifier: MIT
/* The synchronous calls, for tools and tests: each starts the asynchronous
 * call and runs the client's private loop until its callback ran. The call's
 * own deadline ends it; the wait stops anyway a little after, should the
 * loop stop delivering. */
#include "etcd_internal.h"

#include <string.h>

#include "etcd_json.h"
#include "core/core.h"

struct wait {
	bool done;
	struct etcd_error error;
	struct etcd_range_result *range;
	struct etcd_txn_result *txn;
	struct etcd_write_result write;
	struct etcd_member_status status;
	int64_t id, ttl;
};

static void finish(struct wait *wait, const struct etcd_error *error)
{
	wait->done = true;
	if (error)
		wait->error = *error;
}

/* Refuses a client sharing someone else's loop; else clears the wait. */
static bool can_wait(struct etcd_client *client, struct wait *wait)
{
	memset(wait, 0, sizeof(*wait));
	if (client->own_loop)
		return true;
	etcd_error_set(&wait->error, ETCD_REJECTED,
		       "a synchronous etcd call needs a client with a loop of its own "
		       "(etcd_client_new with a NULL loop)");
	return false;
}

static enum etcd_status run(struct etcd_client *client, struct etcd_call *call,
			    struct wait *wait, struct etcd_error *error)
{
	int64_t give_up = g_get_monotonic_time() +
			  ((int64_t)client->options.timeout_ms + 5000) * 1000;

	if (!call && !wait->done && client->own_loop)
		etcd_error_set(&wait->error, ETCD_REJECTED,
			       "the etcd call was given bad arguments");
	while (call && !wait->done) {
		if (g_get_monotonic_time() > give_up) {
			etcd_call_cancel(call);
			etcd_error_set(&wait->error, ETCD_TIMEOUT,
				       "no answer from the etcd client within %d ms",
				       client->options.timeout_ms + 5000);
			break;
		}
		loop_run_once(client->loop, 100);
	}
	if (error)
		*error = wait->error;
	return wait->error.status;
}

static void range_done(void *ctx, const struct etcd_error *error,
		       const struct etcd_range_result *result)
{
	struct wait *wait = ctx;

	finish(wait, error);
	if (result)
		wait->range = etcd_range_result_copy(result);
}

enum etcd_status etcd_range_sync(struct etcd_client *client, const struct etcd_range *range,
				 struct etcd_range_result **result, struct etcd_error *error)
{
	struct wait wait;
	struct etcd_call *call = NULL;

	*result = NULL;
	if (can_wait(client, &wait))
		call = etcd_range(client, range, range_done, &wait);
	enum etcd_status status = run(client, call, &wait, error);

	*result = wait.range;
	return status;
}

static void write_done(void *ctx, const struct etcd_error *error,
		       const struct etcd_write_result *result)
{
	struct wait *wait = ctx;

	finish(wait, error);
	if (result)
		wait->write = *result;
}

enum etcd_status etcd_put_sync(struct etcd_client *client, const char *key, const void *value,
			       size_t value_len, int64_t lease, struct etcd_write_result *result,
			       struct etcd_error *error)
{
	struct wait wait;
	struct etcd_call *call = NULL;

	if (can_wait(client, &wait))
		call = etcd_put(client, key, value, value_len, lease, write_done, &wait);
	enum etcd_status status = run(client, call, &wait, error);

	if (result)
		*result = wait.write;
	return status;
}

enum etcd_status etcd_delete_sync(struct etcd_client *client, const char *key, bool prefix,
				  struct etcd_write_result *result, struct etcd_error *error)
{
	struct wait wait;
	struct etcd_call *call = NULL;

	if (can_wait(client, &wait))
		call = etcd_delete(client, key, prefix, write_done, &wait);
	enum etcd_status status = run(client, call, &wait, error);

	if (result)
		*result = wait.write;
	return status;
}

enum etcd_status etcd_compact_sync(struct etcd_client *client, int64_t revision, bool physical,
				   struct etcd_error *error)
{
	struct wait wait;
	struct etcd_call *call = NULL;

	if (can_wait(client, &wait))
		call = etcd_compact(client, revision, physical, write_done, &wait);
	return run(client, call, &wait, error);
}

static void txn_done(void *ctx, const struct etcd_error *error,
		     const struct etcd_txn_result *result)
{
	struct wait *wait = ctx;

	finish(wait, error);
	if (result)
		wait->txn = etcd_txn_result_copy(result);
}

enum etcd_status etcd_txn_sync(struct etcd_client *client, const struct etcd_txn *txn,
			       struct etcd_txn_result **result, struct etcd_error *error)
{
	struct wait wait;
	struct etcd_call *call = NULL;

	*result = NULL;
	if (can_wait(client, &wait))
		call = etcd_txn(client, txn, txn_done, &wait);
	enum etcd_status status = run(client, call, &wait, error);

	*result = wait.txn;
	return status;
}

static void lease_done(void *ctx, const struct etcd_error *error, int64_t id, int64_t ttl)
{
	struct wait *wait = ctx;

	finish(wait, error);
	wait->id = id;
	wait->ttl = ttl;
}

enum etcd_status etcd_lease_grant_sync(struct etcd_client *client, int64_t ttl, int64_t *id,
				       int64_t *granted_ttl, struct etcd_error *error)
{
	struct wait wait;
	struct etcd_call *call = NULL;

	if (can_wait(client, &wait))
		call = etcd_lease_grant(client, ttl, lease_done, &wait);
	enum etcd_status status = run(client, call, &wait, error);

	*id = wait.id;
	if (granted_ttl)
		*granted_ttl = wait.ttl;
	return status;
}

enum etcd_status etcd_lease_revoke_sync(struct etcd_client *client, int64_t id,
					struct etcd_error *error)
{
	struct wait wait;
	struct etcd_call *call = NULL;

	if (can_wait(client, &wait))
		call = etcd_lease_revoke(client, id, write_done, &wait);
	return run(client, call, &wait, error);
}

static void status_done(void *ctx, const struct etcd_error *error,
			const struct etcd_member_status *status)
{
	struct wait *wait = ctx;

	finish(wait, error);
	if (status)
		wait->status = *status;
}

enum etcd_status etcd_member_status_sync(struct etcd_client *client, size_t index,
					 struct etcd_member_status *status,
					 struct etcd_error *error)
{
	struct wait wait;
	struct etcd_call *call = NULL;

	if (can_wait(client, &wait))
		call = etcd_member_status(client, index, status_done, &wait);
	enum etcd_status result = run(client, call, &wait, error);

	*status = wait.status;
	return result;
}
