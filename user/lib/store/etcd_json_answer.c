// SPDX-License-Identifier: MIT
/* Reading etcd's answers. The gateway leaves out fields at their zero value
 * and writes 64-bit numbers as strings; anything else unexpected is refused
 * with the field's path, so a broken proxy or another program on etcd's port
 * is named as such instead of read as an empty store. */
#include "etcd_json.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

/* Where in the answer a reader is, for its messages: "responses[1].kvs[0]". */
struct place {
	char *why;
	size_t why_size;
	char path[96];
};

static bool refuse(struct place *place, const char *member, const char *what)
{
	g_snprintf(place->why, place->why_size, "%s%s%s %s", place->path,
		   place->path[0] && member[0] ? "." : "", member, what);
	return false;
}

/* The member's node; NULL when absent or null (read as a zero). */
static JsonNode *member(JsonObject *object, const char *name)
{
	JsonNode *node = json_object_get_member(object, name);

	return node && !JSON_NODE_HOLDS_NULL(node) ? node : NULL;
}

static bool read_int(struct place *place, JsonObject *object, const char *name, int64_t *out)
{
	JsonNode *node = member(object, name);
	guint64 unsigned_value;
	gint64 value;

	*out = 0;
	if (!node)
		return true;
	if (!JSON_NODE_HOLDS_VALUE(node))
		return refuse(place, name, "is not a number");
	GType type = json_node_get_value_type(node);

	if (type == G_TYPE_INT64) {
		*out = json_node_get_int(node);
		return true;
	}
	if (type != G_TYPE_STRING)
		return refuse(place, name, "is not a number");
	const char *text = json_node_get_string(node);

	/* Member and cluster ids are unsigned 64-bit: kept as their bits. */
	if (text[0] != '-' &&
	    g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, &unsigned_value, NULL)) {
		*out = (int64_t)unsigned_value;
		return true;
	}
	if (!g_ascii_string_to_signed(text, 10, G_MININT64, G_MAXINT64, &value, NULL))
		return refuse(place, name, "is not a number");
	*out = value;
	return true;
}

static bool read_uint(struct place *place, JsonObject *object, const char *name, uint64_t *out)
{
	int64_t value;

	if (!read_int(place, object, name, &value))
		return false;
	*out = (uint64_t)value;
	return true;
}

static bool read_bool(struct place *place, JsonObject *object, const char *name, bool *out)
{
	JsonNode *node = member(object, name);

	*out = false;
	if (!node)
		return true;
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_BOOLEAN)
		return refuse(place, name, "is not true or false");
	*out = json_node_get_boolean(node);
	return true;
}

/* A string member, or NULL when absent; false when it is something else. */
static bool read_string(struct place *place, JsonObject *object, const char *name,
			const char **out)
{
	JsonNode *node = member(object, name);

	*out = NULL;
	if (!node)
		return true;
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)
		return refuse(place, name, "is not a string");
	*out = json_node_get_string(node);
	return true;
}

static bool is_base64(const char *text)
{
	size_t len = strlen(text), padding = 0;

	if (len % 4)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (c == '=') {
			padding++;
			if (i < len - 2 || padding > 2)
				return false;
		} else if (padding || !(g_ascii_isalnum(c) || c == '+' || c == '/')) {
			return false;
		}
	}
	return true;
}

/* Base64 bytes, NUL-terminated (the NUL not counted); empty when absent. */
static bool read_bytes(struct place *place, JsonObject *object, const char *name, char **out,
		       size_t *out_len)
{
	const char *text;

	*out = NULL;
	*out_len = 0;
	if (!read_string(place, object, name, &text))
		return false;
	if (text && !is_base64(text))
		return refuse(place, name, "is not base64");
	gsize len = 0;
	guchar *decoded = text && text[0] ? g_base64_decode(text, &len) : NULL;

	*out = g_malloc(len + 1);
	if (len)
		memcpy(*out, decoded, len);
	(*out)[len] = '\0';
	*out_len = len;
	g_free(decoded);
	return true;
}

/* The member name's object; NULL with *present false when absent. */
static bool read_object(struct place *place, JsonObject *object, const char *name,
			JsonObject **out)
{
	JsonNode *node = member(object, name);

	*out = NULL;
	if (!node)
		return true;
	if (!JSON_NODE_HOLDS_OBJECT(node))
		return refuse(place, name, "is not an object");
	*out = json_node_get_object(node);
	return true;
}

static bool read_array(struct place *place, JsonObject *object, const char *name,
		       JsonArray **out)
{
	JsonNode *node = member(object, name);

	*out = NULL;
	if (!node)
		return true;
	if (!JSON_NODE_HOLDS_ARRAY(node))
		return refuse(place, name, "is not an array");
	*out = json_node_get_array(node);
	return true;
}

/* Enters member name (and index, when not -1) for the messages. */
static size_t enter(struct place *place, const char *name, int index)
{
	size_t was = strlen(place->path);

	if (index >= 0)
		g_snprintf(place->path + was, sizeof(place->path) - was, "%s%s[%d]",
			   was ? "." : "", name, index);
	else
		g_snprintf(place->path + was, sizeof(place->path) - was, "%s%s", was ? "." : "",
			   name);
	return was;
}

static void leave(struct place *place, size_t was)
{
	place->path[was] = '\0';
}

static JsonObject *root_object(struct place *place, JsonNode *root)
{
	if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
		refuse(place, "", "the answer is not a JSON object");
		return NULL;
	}
	return json_node_get_object(root);
}

JsonNode *etcd_json_parse(const char *text, size_t len, char *why, size_t why_size)
{
	JsonParser *parser = json_parser_new_immutable();
	GError *error = NULL;
	JsonNode *root = NULL;

	if (len > G_MAXSSIZE) {
		g_snprintf(why, why_size, "too large to read");
	} else if (!json_parser_load_from_data(parser, text, (gssize)len, &error)) {
		g_snprintf(why, why_size, "not JSON: %s", error->message);
		g_error_free(error);
	} else if (!json_parser_get_root(parser) ||
		   !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
		g_snprintf(why, why_size, "not a JSON object");
	} else {
		root = json_node_ref(json_parser_get_root(parser));
	}
	g_object_unref(parser);
	return root;
}

static bool read_header(struct place *place, JsonObject *object, struct etcd_header *header)
{
	JsonObject *h;

	memset(header, 0, sizeof(*header));
	if (!read_object(place, object, "header", &h))
		return false;
	if (!h)
		return true;
	size_t was = enter(place, "header", -1);
	bool ok = read_uint(place, h, "cluster_id", &header->cluster_id) &&
		  read_uint(place, h, "member_id", &header->member_id) &&
		  read_int(place, h, "revision", &header->revision) &&
		  read_uint(place, h, "raft_term", &header->raft_term);

	leave(place, was);
	return ok;
}

static bool read_kv(struct place *place, JsonObject *object, struct etcd_kv *kv)
{
	memset(kv, 0, sizeof(*kv));
	if (read_bytes(place, object, "key", &kv->key, &kv->key_len) &&
	    read_bytes(place, object, "value", &kv->value, &kv->value_len) &&
	    read_int(place, object, "create_revision", &kv->create_revision) &&
	    read_int(place, object, "mod_revision", &kv->mod_revision) &&
	    read_int(place, object, "version", &kv->version) &&
	    read_int(place, object, "lease", &kv->lease))
		return true;
	etcd_kv_clear(kv);
	return false;
}

/* The element i of array as an object. */
static JsonObject *element(struct place *place, JsonArray *array, const char *name, guint i)
{
	JsonNode *node = json_array_get_element(array, i);

	if (!JSON_NODE_HOLDS_OBJECT(node)) {
		size_t was = enter(place, name, (int)i);

		refuse(place, "", "is not an object");
		leave(place, was);
		return NULL;
	}
	return json_node_get_object(node);
}

static bool read_range_object(struct place *place, JsonObject *object,
			      struct etcd_range_result *result)
{
	JsonArray *kvs;

	memset(result, 0, sizeof(*result));
	if (!read_header(place, object, &result->header) ||
	    !read_bool(place, object, "more", &result->more) ||
	    !read_int(place, object, "count", &result->count) ||
	    !read_array(place, object, "kvs", &kvs))
		return false;
	guint n = kvs ? json_array_get_length(kvs) : 0;

	result->kvs = g_new0(struct etcd_kv, n ? n : 1);
	for (guint i = 0; i < n; i++) {
		JsonObject *kv = element(place, kvs, "kvs", i);

		if (!kv)
			goto fail;
		size_t was = enter(place, "kvs", (int)i);
		bool ok = read_kv(place, kv, &result->kvs[i]);

		leave(place, was);
		if (!ok)
			goto fail;
		result->n_kvs++;
	}
	return true;
fail:
	etcd_range_result_clear(result);
	return false;
}

bool etcd_json_read_range(JsonNode *root, struct etcd_range_result *result, char *why,
			  size_t why_size)
{
	struct place place = { why, why_size, "" };
	JsonObject *object = root_object(&place, root);

	memset(result, 0, sizeof(*result));
	return object && read_range_object(&place, object, result);
}

static bool read_write_object(struct place *place, JsonObject *object,
			      struct etcd_write_result *result)
{
	memset(result, 0, sizeof(*result));
	return read_header(place, object, &result->header) &&
	       read_int(place, object, "deleted", &result->deleted);
}

bool etcd_json_read_write(JsonNode *root, struct etcd_write_result *result, char *why,
			  size_t why_size)
{
	struct place place = { why, why_size, "" };
	JsonObject *object = root_object(&place, root);

	memset(result, 0, sizeof(*result));
	return object && read_write_object(&place, object, result);
}

/* One of a txn's responses: {"response_range": {...}} or put or delete. */
static bool read_op_result(struct place *place, JsonObject *object,
			   struct etcd_op_result *result)
{
	static const struct {
		const char *name;
		enum etcd_op_type type;
	} kinds[] = {
		{ "response_range", ETCD_OP_RANGE },
		{ "response_put", ETCD_OP_PUT },
		{ "response_delete_range", ETCD_OP_DELETE },
	};

	for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
		JsonObject *inner;

		if (!read_object(place, object, kinds[k].name, &inner))
			return false;
		if (!inner)
			continue;
		size_t was = enter(place, kinds[k].name, -1);
		bool ok;

		result->type = kinds[k].type;
		if (kinds[k].type == ETCD_OP_RANGE)
			ok = read_range_object(place, inner, &result->range);
		else
			ok = read_write_object(place, inner, &result->write);
		leave(place, was);
		return ok;
	}
	return refuse(place, "", "is none of response_range, response_put, response_delete_range");
}

bool etcd_json_read_txn(JsonNode *root, struct etcd_txn_result *result, char *why,
			size_t why_size)
{
	struct place place = { why, why_size, "" };
	JsonObject *object = root_object(&place, root);
	JsonArray *responses;

	memset(result, 0, sizeof(*result));
	if (!object || !read_header(&place, object, &result->header) ||
	    !read_bool(&place, object, "succeeded", &result->succeeded) ||
	    !read_array(&place, object, "responses", &responses))
		return false;
	guint n = responses ? json_array_get_length(responses) : 0;

	result->responses = g_new0(struct etcd_op_result, n ? n : 1);
	for (guint i = 0; i < n; i++) {
		JsonObject *response = element(&place, responses, "responses", i);

		if (!response)
			goto fail;
		size_t was = enter(&place, "responses", (int)i);
		bool ok = read_op_result(&place, response, &result->responses[i]);

		leave(&place, was);
		if (!ok)
			goto fail;
		result->n_responses++;
	}
	return true;
fail:
	etcd_txn_result_clear(result);
	return false;
}

bool etcd_json_read_lease(JsonNode *root, int64_t *id, int64_t *ttl, char *why, size_t why_size)
{
	struct place place = { why, why_size, "" };
	JsonObject *object = root_object(&place, root), *result;
	const char *error;

	*id = *ttl = 0;
	if (!object || !read_object(&place, object, "result", &result))
		return false;
	if (result) /* a keepalive's: a stream of one message */
		object = result;
	if (!read_string(&place, object, "error", &error))
		return false;
	if (error && error[0]) {
		g_snprintf(why, why_size, "etcd refused the lease: %s", error);
		return false;
	}
	return read_int(&place, object, "ID", id) && read_int(&place, object, "TTL", ttl);
}

/* The status's member name, in the gateway's camelCase or in the proto's. */
static const char *status_name(JsonObject *object, const char *camel, const char *snake)
{
	return json_object_has_member(object, camel) ? camel : snake;
}

bool etcd_json_read_status(JsonNode *root, struct etcd_member_status *status, char *why,
			   size_t why_size)
{
	struct place place = { why, why_size, "" };
	JsonObject *o = root_object(&place, root);
	const char *version;
	JsonArray *errors;

	memset(status, 0, sizeof(*status));
	if (!o || !read_header(&place, o, &status->header) ||
	    !read_string(&place, o, "version", &version) ||
	    !read_uint(&place, o, "leader", &status->leader) ||
	    !read_int(&place, o, status_name(o, "dbSize", "db_size"), &status->db_size) ||
	    !read_int(&place, o, status_name(o, "dbSizeInUse", "db_size_in_use"),
		      &status->db_size_in_use) ||
	    !read_uint(&place, o, status_name(o, "raftIndex", "raft_index"), &status->raft_index) ||
	    !read_uint(&place, o, status_name(o, "raftTerm", "raft_term"), &status->raft_term) ||
	    !read_uint(&place, o, status_name(o, "raftAppliedIndex", "raft_applied_index"),
		       &status->raft_applied_index) ||
	    !read_bool(&place, o, status_name(o, "isLearner", "is_learner"), &status->is_learner) ||
	    !read_array(&place, o, "errors", &errors))
		return false;
	g_strlcpy(status->version, version ? version : "", sizeof(status->version));
	for (guint i = 0; errors && i < json_array_get_length(errors); i++) {
		const char *text = json_array_get_string_element(errors, i);

		if (!text)
			return refuse(&place, "errors", "holds something else than strings");
		if (status->errors[0])
			g_strlcat(status->errors, "; ", sizeof(status->errors));
		g_strlcat(status->errors, text, sizeof(status->errors));
	}
	return true;
}

static bool read_event(struct place *place, JsonObject *object, struct etcd_event *event)
{
	JsonNode *type = member(object, "type");
	JsonObject *kv;

	/* The gateway leaves PUT (0) out and names DELETE; numbers are taken too. */
	event->type = ETCD_EVENT_PUT;
	if (type) {
		GType value_type = JSON_NODE_HOLDS_VALUE(type) ? json_node_get_value_type(type) : 0;
		const char *name = value_type == G_TYPE_STRING ? json_node_get_string(type) : NULL;
		int64_t number = value_type == G_TYPE_INT64 ? json_node_get_int(type) : -1;

		if ((name && !strcmp(name, "DELETE")) || number == 1)
			event->type = ETCD_EVENT_DELETE;
		else if (!(name && !strcmp(name, "PUT")) && number != 0)
			return refuse(place, "type", "is neither PUT nor DELETE");
	}
	if (!read_object(place, object, "kv", &kv))
		return false;
	if (!kv)
		return refuse(place, "kv", "is missing");
	size_t was = enter(place, "kv", -1);
	bool ok = read_kv(place, kv, &event->kv);

	leave(place, was);
	return ok;
}

static bool read_stream_error(struct place *place, JsonObject *error,
			      struct etcd_watch_message *message)
{
	const char *text;
	int64_t code;

	message->is_error = true;
	if (!read_int(place, error, "grpc_code", &code) ||
	    !read_string(place, error, "message", &text))
		return false;
	message->error_code = (int)code;
	message->error_message = g_strdup(text ? text : "(no message)");
	return true;
}

bool etcd_json_read_watch(JsonNode *root, struct etcd_watch_message *message, char *why,
			  size_t why_size)
{
	struct place place = { why, why_size, "" };
	JsonObject *object = root_object(&place, root), *result, *error;
	JsonArray *events;
	const char *reason;

	memset(message, 0, sizeof(*message));
	if (!object || !read_object(&place, object, "error", &error))
		return false;
	if (error) {
		size_t was = enter(&place, "error", -1);
		bool ok = read_stream_error(&place, error, message);

		leave(&place, was);
		if (!ok)
			etcd_watch_message_clear(message);
		return ok;
	}
	if (!read_object(&place, object, "result", &result))
		return false;
	if (!result)
		return refuse(&place, "", "has neither result nor error");
	enter(&place, "result", -1);
	if (!read_header(&place, result, &message->header) ||
	    !read_bool(&place, result, "created", &message->created) ||
	    !read_bool(&place, result, "canceled", &message->canceled) ||
	    !read_int(&place, result, "compact_revision", &message->compact_revision) ||
	    !read_string(&place, result, "cancel_reason", &reason) ||
	    !read_array(&place, result, "events", &events))
		return false;
	message->cancel_reason = g_strdup(reason);
	guint n = events ? json_array_get_length(events) : 0;

	message->events = g_new0(struct etcd_event, n ? n : 1);
	for (guint i = 0; i < n; i++) {
		JsonObject *event = element(&place, events, "events", i);

		if (!event)
			goto fail;
		size_t was = enter(&place, "events", (int)i);
		bool ok = read_event(&place, event, &message->events[i]);

		leave(&place, was);
		if (!ok)
			goto fail;
		message->n_events++;
	}
	return true;
fail:
	etcd_watch_message_clear(message);
	return false;
}

bool etcd_json_read_error(JsonNode *root, int *code, char **message)
{
	char why[16];
	struct place place = { why, sizeof(why), "" };
	JsonObject *object = root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) :
								     NULL;
	JsonObject *inner;
	const char *text = NULL;
	int64_t number = 0;

	*code = 0;
	*message = NULL;
	if (!object)
		return false;
	if (read_object(&place, object, "error", &inner) && inner) {
		/* A stream's: {"error": {"grpc_code": 14, "message": "..."}} */
		if (!read_int(&place, inner, "grpc_code", &number) ||
		    !read_string(&place, inner, "message", &text))
			return false;
	} else if (!read_int(&place, object, "code", &number) ||
		   !read_string(&place, object, "message", &text) ||
		   (!text && !read_string(&place, object, "error", &text))) {
		return false;
	}
	if (!text && !number)
		return false;
	*code = (int)number;
	*message = g_strdup(text ? text : "(no message)");
	return true;
}
