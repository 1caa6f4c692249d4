// SPDX-License-Identifier: MIT
/* The JSON bodies of the requests to etcd's gateway. Numbers go as JSON
 * numbers (the gateway takes them for its 64-bit fields), bytes as base64. */
#include "etcd_json.h"

#include <glib.h>
#include <string.h>

char *etcd_prefix_end(const char *prefix, size_t prefix_len, size_t *end_len)
{
	char *end = g_memdup2(prefix, prefix_len + 1);
	size_t len = prefix_len;

	while (len > 0 && (unsigned char)end[len - 1] == 0xff)
		len--;
	if (len == 0) {
		/* Every key: etcd reads a range_end of one NUL byte as "to the end". */
		end[0] = '\0';
		*end_len = 1;
		return end;
	}
	end[len - 1]++;
	end[len] = '\0';
	*end_len = len;
	return end;
}

static void add_bytes(JsonBuilder *builder, const char *name, const void *data, size_t len)
{
	char *base64 = g_base64_encode(data, len);

	json_builder_set_member_name(builder, name);
	json_builder_add_string_value(builder, base64);
	g_free(base64);
}

static void add_int(JsonBuilder *builder, const char *name, int64_t value)
{
	json_builder_set_member_name(builder, name);
	json_builder_add_int_value(builder, value);
}

static void add_bool(JsonBuilder *builder, const char *name, bool value)
{
	json_builder_set_member_name(builder, name);
	json_builder_add_boolean_value(builder, value);
}

static void add_string(JsonBuilder *builder, const char *name, const char *value)
{
	json_builder_set_member_name(builder, name);
	json_builder_add_string_value(builder, value);
}

/* The builder's object as text; frees the builder. */
static char *finish(JsonBuilder *builder)
{
	JsonNode *root = json_builder_get_root(builder);
	JsonGenerator *generator = json_generator_new();

	json_generator_set_root(generator, root);
	char *text = json_generator_to_data(generator, NULL);

	g_object_unref(generator);
	json_node_unref(root);
	g_object_unref(builder);
	return text;
}

static JsonBuilder *begin(void)
{
	JsonBuilder *builder = json_builder_new();

	json_builder_begin_object(builder);
	return builder;
}

static char *end(JsonBuilder *builder)
{
	json_builder_end_object(builder);
	return finish(builder);
}

/* The members of a RangeRequest, in the object being built. */
static void add_range(JsonBuilder *builder, const void *key, size_t key_len, const void *end,
		      size_t end_len, int64_t revision, int64_t limit, bool keys_only,
		      bool count_only)
{
	add_bytes(builder, "key", key, key_len);
	if (end)
		add_bytes(builder, "range_end", end, end_len);
	if (revision)
		add_int(builder, "revision", revision);
	if (limit)
		add_int(builder, "limit", limit);
	if (keys_only)
		add_bool(builder, "keys_only", true);
	if (count_only)
		add_bool(builder, "count_only", true);
}

char *etcd_json_range_request(const void *key, size_t key_len, const void *end_key,
			      size_t end_len, int64_t revision, int64_t limit, bool keys_only,
			      bool count_only)
{
	JsonBuilder *builder = begin();

	add_range(builder, key, key_len, end_key, end_len, revision, limit, keys_only, count_only);
	return end(builder);
}

static void add_put(JsonBuilder *builder, const char *key, const void *value, size_t value_len,
		    int64_t lease)
{
	add_bytes(builder, "key", key, strlen(key));
	add_bytes(builder, "value", value ? value : "", value ? value_len : 0);
	if (lease)
		add_int(builder, "lease", lease);
}

char *etcd_json_put_request(const char *key, const void *value, size_t value_len, int64_t lease)
{
	JsonBuilder *builder = begin();

	add_put(builder, key, value, value_len, lease);
	return end(builder);
}

char *etcd_json_delete_request(const void *key, size_t key_len, const void *end_key,
			       size_t end_len)
{
	JsonBuilder *builder = begin();

	add_bytes(builder, "key", key, key_len);
	if (end_key)
		add_bytes(builder, "range_end", end_key, end_len);
	return end(builder);
}

static bool add_compare(JsonBuilder *builder, const struct etcd_compare *compare, char *why,
			size_t why_size)
{
	static const char *const results[] = {
		[ETCD_CMP_EQUAL] = "EQUAL",
		[ETCD_CMP_NOT_EQUAL] = "NOT_EQUAL",
		[ETCD_CMP_LESS] = "LESS",
		[ETCD_CMP_GREATER] = "GREATER",
	};

	if (!compare->key) {
		g_snprintf(why, why_size, "a compare without a key");
		return false;
	}
	if ((unsigned)compare->op >= G_N_ELEMENTS(results)) {
		g_snprintf(why, why_size, "compare of %s: unknown operator %d", compare->key,
			   compare->op);
		return false;
	}
	json_builder_begin_object(builder);
	add_bytes(builder, "key", compare->key, strlen(compare->key));
	add_string(builder, "result", results[compare->op]);
	switch (compare->target) {
	case ETCD_CMP_VALUE:
		add_string(builder, "target", "VALUE");
		add_bytes(builder, "value", compare->value ? compare->value : "",
			  compare->value ? compare->value_len : 0);
		break;
	case ETCD_CMP_VERSION:
		add_string(builder, "target", "VERSION");
		add_int(builder, "version", compare->number);
		break;
	case ETCD_CMP_CREATE_REVISION:
		add_string(builder, "target", "CREATE");
		add_int(builder, "create_revision", compare->number);
		break;
	case ETCD_CMP_MOD_REVISION:
		add_string(builder, "target", "MOD");
		add_int(builder, "mod_revision", compare->number);
		break;
	case ETCD_CMP_LEASE:
		add_string(builder, "target", "LEASE");
		add_int(builder, "lease", compare->number);
		break;
	default:
		g_snprintf(why, why_size, "compare of %s: unknown target %d", compare->key,
			   compare->target);
		json_builder_end_object(builder);
		return false;
	}
	json_builder_end_object(builder);
	return true;
}

static bool add_op(JsonBuilder *builder, const struct etcd_op *op, char *why, size_t why_size)
{
	if (!op->key) {
		g_snprintf(why, why_size, "an op without a key");
		return false;
	}
	size_t key_len = strlen(op->key), end_len = 0;
	char *range_end = op->prefix ? etcd_prefix_end(op->key, key_len, &end_len) : NULL;
	bool ok = true;

	json_builder_begin_object(builder);
	switch (op->type) {
	case ETCD_OP_RANGE:
		json_builder_set_member_name(builder, "request_range");
		json_builder_begin_object(builder);
		add_range(builder, op->key, key_len, range_end, end_len, 0, op->limit,
			  op->keys_only, false);
		json_builder_end_object(builder);
		break;
	case ETCD_OP_PUT:
		json_builder_set_member_name(builder, "request_put");
		json_builder_begin_object(builder);
		add_put(builder, op->key, op->value, op->value_len, op->lease);
		json_builder_end_object(builder);
		break;
	case ETCD_OP_DELETE:
		json_builder_set_member_name(builder, "request_delete_range");
		json_builder_begin_object(builder);
		add_bytes(builder, "key", op->key, key_len);
		if (range_end)
			add_bytes(builder, "range_end", range_end, end_len);
		json_builder_end_object(builder);
		break;
	default:
		g_snprintf(why, why_size, "op on %s: unknown type %d", op->key, op->type);
		ok = false;
	}
	json_builder_end_object(builder);
	g_free(range_end);
	return ok;
}

static bool add_ops(JsonBuilder *builder, const char *name, const struct etcd_op *ops, size_t n,
		    char *why, size_t why_size)
{
	bool ok = true;

	json_builder_set_member_name(builder, name);
	json_builder_begin_array(builder);
	for (size_t i = 0; ok && i < n; i++)
		ok = add_op(builder, &ops[i], why, why_size);
	json_builder_end_array(builder);
	return ok;
}

char *etcd_json_txn_request(const struct etcd_txn *txn, char *why, size_t why_size)
{
	JsonBuilder *builder = begin();
	bool ok = true;

	json_builder_set_member_name(builder, "compare");
	json_builder_begin_array(builder);
	for (size_t i = 0; ok && i < txn->n_compares; i++)
		ok = add_compare(builder, &txn->compares[i], why, why_size);
	json_builder_end_array(builder);
	ok = ok && add_ops(builder, "success", txn->success, txn->n_success, why, why_size);
	ok = ok && add_ops(builder, "failure", txn->failure, txn->n_failure, why, why_size);
	char *text = end(builder);

	if (!ok) {
		g_free(text);
		return NULL;
	}
	return text;
}

char *etcd_json_watch_request(const void *key, size_t key_len, const void *end_key,
			      size_t end_len, int64_t start_revision)
{
	JsonBuilder *builder = begin();

	json_builder_set_member_name(builder, "create_request");
	json_builder_begin_object(builder);
	add_bytes(builder, "key", key, key_len);
	if (end_key)
		add_bytes(builder, "range_end", end_key, end_len);
	if (start_revision)
		add_int(builder, "start_revision", start_revision);
	/* Progress notifications move the resume point on while nothing under
	 * the prefix changes, so a resumed watch does not start from a revision
	 * compacted meanwhile. */
	add_bool(builder, "progress_notify", true);
	json_builder_end_object(builder);
	return end(builder);
}

char *etcd_json_lease_grant_request(int64_t ttl)
{
	JsonBuilder *builder = begin();

	add_int(builder, "TTL", ttl);
	return end(builder);
}

char *etcd_json_lease_id_request(int64_t id)
{
	JsonBuilder *builder = begin();

	add_int(builder, "ID", id);
	return end(builder);
}

char *etcd_json_compact_request(int64_t revision, bool physical)
{
	JsonBuilder *builder = begin();

	add_int(builder, "revision", revision);
	if (physical)
		add_bool(builder, "physical", true);
	return end(builder);
}
