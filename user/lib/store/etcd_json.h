/* SPDX-License-Identifier: MIT */
/* etcd's JSON: the requests the store client sends (etcd_json_request.c) and
 * the answers it reads (etcd_json_answer.c), as etcd 3.4's gateway speaks
 * them: proto field names, 64-bit numbers as strings, keys and values base64.
 * Pure functions, apart from the network, so that tests can feed the readers
 * malformed answers. */
#ifndef TETHER_STORE_ETCD_JSON_H
#define TETHER_STORE_ETCD_JSON_H

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd.h"

/* --- Requests: JSON text to g_free ------------------------------------------ */

/* The end of the range of keys starting with prefix (the prefix with its last
 * byte below 0xff raised by one); "\0" (every key) for an empty prefix. */
char *etcd_prefix_end(const char *prefix, size_t prefix_len, size_t *end_len);

/* end NULL: the key alone. */
char *etcd_json_range_request(const void *key, size_t key_len, const void *end, size_t end_len,
			      int64_t revision, int64_t limit, bool keys_only, bool count_only);
char *etcd_json_put_request(const char *key, const void *value, size_t value_len, int64_t lease);
char *etcd_json_delete_request(const void *key, size_t key_len, const void *end, size_t end_len);
/* NULL when the txn is malformed (a NULL key, an unknown op), why says how. */
char *etcd_json_txn_request(const struct etcd_txn *txn, char *why, size_t why_size);
char *etcd_json_watch_request(const void *key, size_t key_len, const void *end, size_t end_len,
			      int64_t start_revision);
char *etcd_json_lease_grant_request(int64_t ttl);
/* Keepalive and revoke. */
char *etcd_json_lease_id_request(int64_t id);
char *etcd_json_compact_request(int64_t revision, bool physical);

/* --- Answers ------------------------------------------------------------------
 * Each reader fills its result from the parsed answer and returns true, or
 * returns false with what is wrong in why ("kvs[2].key is not base64") and
 * leaves nothing allocated. Fields etcd leaves out (zeros) read as zeros. */

/* NULL when text is not one JSON object; json_node_unref the result. */
JsonNode *etcd_json_parse(const char *text, size_t len, char *why, size_t why_size);

bool etcd_json_read_range(JsonNode *root, struct etcd_range_result *result, char *why,
			  size_t why_size);
/* Put, delete range, revoke, compaction. */
bool etcd_json_read_write(JsonNode *root, struct etcd_write_result *result, char *why,
			  size_t why_size);
bool etcd_json_read_txn(JsonNode *root, struct etcd_txn_result *result, char *why,
			size_t why_size);
/* A grant's answer ({"ID", "TTL", "error"}), or a keepalive's ({"result":
 * {"ID", "TTL"}}): ttl 0 from a keepalive means the lease is gone. */
bool etcd_json_read_lease(JsonNode *root, int64_t *id, int64_t *ttl, char *why, size_t why_size);
bool etcd_json_read_status(JsonNode *root, struct etcd_member_status *status, char *why,
			   size_t why_size);

/* One message of a watch stream. */
struct etcd_watch_message {
	bool is_error; /* {"error": ...}: the stream failed (code, message) */
	int error_code;
	char *error_message;
	struct etcd_header header;
	bool created;
	bool canceled;
	int64_t compact_revision;
	char *cancel_reason;
	struct etcd_event *events;
	size_t n_events;
};
bool etcd_json_read_watch(JsonNode *root, struct etcd_watch_message *message, char *why,
			  size_t why_size);
void etcd_watch_message_clear(struct etcd_watch_message *message);

/* An error answer: {"error": "...", "message": "...", "code": N} (one-shot
 * calls) or {"error": {"grpc_code": N, "message": "..."}} (streams). *message
 * to g_free. */
bool etcd_json_read_error(JsonNode *root, int *code, char **message);

void etcd_kv_clear(struct etcd_kv *kv);
void etcd_range_result_clear(struct etcd_range_result *result);
void etcd_txn_result_clear(struct etcd_txn_result *result);

#endif
