// SPDX-License-Identifier: MIT
/* The memory of results: what the readers (etcd_json_answer.c) allocate,
 * freed; and copied, for the synchronous calls, whose results outlive the
 * callback that got them. */
#include "etcd_internal.h"

#include <string.h>

#include "etcd_json.h"

void etcd_kv_clear(struct etcd_kv *kv)
{
	g_free(kv->key);
	g_free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void etcd_range_result_clear(struct etcd_range_result *result)
{
	for (size_t i = 0; i < result->n_kvs; i++)
		etcd_kv_clear(&result->kvs[i]);
	g_free(result->kvs);
	memset(result, 0, sizeof(*result));
}

void etcd_range_result_free(struct etcd_range_result *result)
{
	if (!result)
		return;
	etcd_range_result_clear(result);
	g_free(result);
}

void etcd_txn_result_clear(struct etcd_txn_result *result)
{
	for (size_t i = 0; i < result->n_responses; i++)
		if (result->responses[i].type == ETCD_OP_RANGE)
			etcd_range_result_clear(&result->responses[i].range);
	g_free(result->responses);
	memset(result, 0, sizeof(*result));
}

void etcd_txn_result_free(struct etcd_txn_result *result)
{
	if (!result)
		return;
	etcd_txn_result_clear(result);
	g_free(result);
}

void etcd_watch_message_clear(struct etcd_watch_message *message)
{
	for (size_t i = 0; i < message->n_events; i++)
		etcd_kv_clear(&message->events[i].kv);
	g_free(message->events);
	g_free(message->error_message);
	g_free(message->cancel_reason);
	memset(message, 0, sizeof(*message));
}

static void copy_kv(struct etcd_kv *to, const struct etcd_kv *from)
{
	*to = *from;
	to->key = g_memdup2(from->key, from->key_len + 1);
	to->value = g_memdup2(from->value, from->value_len + 1);
}

static void copy_range(struct etcd_range_result *to, const struct etcd_range_result *from)
{
	*to = *from;
	to->kvs = g_new0(struct etcd_kv, from->n_kvs ? from->n_kvs : 1);
	for (size_t i = 0; i < from->n_kvs; i++)
		copy_kv(&to->kvs[i], &from->kvs[i]);
}

struct etcd_range_result *etcd_range_result_copy(const struct etcd_range_result *result)
{
	struct etcd_range_result *copy = g_new0(struct etcd_range_result, 1);

	copy_range(copy, result);
	return copy;
}

struct etcd_txn_result *etcd_txn_result_copy(const struct etcd_txn_result *result)
{
	struct etcd_txn_result *copy = g_new0(struct etcd_txn_result, 1);

	*copy = *result;
	copy->responses = g_new0(struct etcd_op_result, MAX(result->n_responses, 1));
	for (size_t i = 0; i < result->n_responses; i++) {
		copy->responses[i] = result->responses[i];
		if (result->responses[i].type == ETCD_OP_RANGE)
			copy_range(&copy->responses[i].range, &result->responses[i].range);
	}
	return copy;
}
