// SPDX-License-Identifier: MIT
/* Watching a prefix: one streaming call (/v3/watch answers with a JSON
 * message per line for as long as it runs). The watch remembers the revision
 * it has seen up to, from events, from the creation of a watch "from now" and
 * from progress notifications, so that when a stream breaks the call resumes
 * on the next endpoint right after it: no event twice, none lost, unless
 * etcd has compacted them away, which ends the watch as ETCD_COMPACTED. A
 * member that hangs closes nothing, so the watch also asks it for its status
 * now and then, and moves on when it does not answer. */
#include "etcd_internal.h"

#include <string.h>

#include "etcd_json.h"

struct etcd_watch {
	struct etcd_client *client;
	struct etcd_call *call; /* NULL once an error ended it */
	char *key;
	size_t key_len;
	char *end;
	size_t end_len;
	int64_t next_revision; /* 0: from now, until etcd says when now is */
	bool connected;        /* between CONNECTED and LOST */
	etcd_watch_cb callback;
	void *ctx;
	struct etcd_timer *check;   /* when to ask the member for its status */
	struct etcd_call *checking; /* that question, in flight */
	int in_callback;
	bool cancelled; /* from its callback: freed once that returns */
};

static void stop_checking(struct etcd_watch *watch)
{
	etcd_timer_disarm(watch->check);
	if (watch->checking) {
		struct etcd_call *call = watch->checking;

		watch->checking = NULL;
		etcd_call_cancel(call);
	}
}

static void watch_free(struct etcd_watch *watch)
{
	stop_checking(watch);
	etcd_timer_free(watch->check);
	if (watch->call) {
		struct etcd_call *call = watch->call;

		watch->call = NULL;
		etcd_call_stop(call);
	}
	etcd_client_forget_watch(watch->client, watch);
	g_free(watch->key);
	g_free(watch->end);
	g_free(watch);
}

void etcd_watch_cancel(struct etcd_watch *watch)
{
	if (!watch)
		return;
	if (watch->in_callback) {
		watch->cancelled = true;
		return;
	}
	watch_free(watch);
}

void etcd_watch_free_all(struct etcd_client *client)
{
	GList *watches = g_hash_table_get_keys(client->watches);

	for (GList *l = watches; l; l = l->next)
		watch_free(l->data);
	g_list_free(watches);
}

/* Runs the user's callback; false when it cancelled the watch (then freed). */
static bool deliver(struct etcd_watch *watch, const struct etcd_error *error,
		    const struct etcd_watch_update *update)
{
	watch->in_callback++;
	watch->callback(watch->ctx, error, update);
	watch->in_callback--;
	if (!watch->cancelled || watch->in_callback)
		return true;
	watch_free(watch);
	return false;
}

static char *watch_body(const struct etcd_watch *watch)
{
	return etcd_json_watch_request(watch->key, watch->key_len, watch->end, watch->end_len,
				       watch->next_revision);
}

/* Ends the watch with an error (the call is stopped by the engine after). */
static void watch_fail(struct etcd_call *call, const struct etcd_error *error)
{
	struct etcd_watch *watch = call->op;

	watch->call = NULL;
	watch->connected = false;
	stop_checking(watch);
	deliver(watch, error, NULL);
}

static void on_checked(void *ctx, const struct etcd_error *error,
		       const struct etcd_member_status *status)
{
	struct etcd_watch *watch = ctx;
	char why[ETCD_MESSAGE_MAX + 128];

	(void)status;
	watch->checking = NULL;
	if (!watch->call || !watch->connected)
		return;
	if (!error) {
		etcd_timer_arm(watch->check, watch->client->options.watch_check_ms * 1000LL);
		return;
	}
	g_snprintf(why, sizeof(why), "%s did not answer a status check (%s)",
		   etcd_call_endpoint(watch->call), error->message);
	etcd_call_abandon(watch->call, why); /* the watch may be gone after */
}

/* The stream's member still answers? (A connection to a stopped process
 * stays open, quiet.) */
static void check_member(void *ctx)
{
	struct etcd_watch *watch = ctx;

	if (!watch->call || !watch->connected || watch->checking)
		return;
	/* Should it end at once (curl refused it), its callback may move the
	 * watch, whose owner may cancel it: freed here, after. */
	watch->in_callback++;
	struct etcd_call *call = etcd_member_status_within(
		watch->client, etcd_call_endpoint_index(watch->call),
		watch->client->options.watch_check_ms, on_checked, watch);
	watch->in_callback--;
	if (watch->cancelled && !watch->in_callback) {
		watch_free(watch);
		return;
	}
	watch->checking = call;
}

static void watch_resume(struct etcd_call *call, const char *why)
{
	struct etcd_watch *watch = call->op;

	etcd_call_set_body(call, watch_body(watch));
	stop_checking(watch);
	if (!watch->connected)
		return; /* it was not running: nothing new to tell */
	watch->connected = false;
	struct etcd_watch_update update = {
		.news = ETCD_WATCH_LOST,
		.endpoint = etcd_call_endpoint(call),
		.message = why ? why : "the stream ended",
	};

	deliver(watch, NULL, &update); /* a cancel from it stops the call */
}

/* etcd cancelled the watch: compacted, or refused. */
static enum etcd_next watch_canceled(struct etcd_call *call, struct etcd_watch *watch,
				     const struct etcd_watch_message *message)
{
	char prefix[128];
	struct etcd_error error;

	g_snprintf(prefix, sizeof(prefix), "%.*s", (int)MIN(watch->key_len, 100), watch->key);
	if (message->compact_revision) {
		etcd_error_set(&error, ETCD_COMPACTED,
			       "the watch of '%s' cannot go on from revision %" G_GINT64_FORMAT
			       ": etcd has compacted its history up to revision %" G_GINT64_FORMAT
			       "; read everything again and watch from there",
			       prefix, watch->next_revision, message->compact_revision);
		error.compact_revision = message->compact_revision;
	} else {
		const char *reason = message->cancel_reason ? message->cancel_reason : "";
		enum etcd_status status;

		if (etcd_judge_grpc(0, reason, &status) == ETCD_VERDICT_RETRY) {
			etcd_call_note(call, "%s: %s", etcd_call_endpoint(call), reason);
			return ETCD_NEXT_RETRY; /* no leader there: elsewhere */
		}
		etcd_error_set(&error, ETCD_REJECTED, "%s cancelled the watch of '%s': %s",
			       etcd_call_endpoint(call), prefix,
			       reason[0] ? reason : "no reason given");
	}
	watch->call = NULL;
	watch->connected = false;
	stop_checking(watch);
	deliver(watch, &error, NULL);
	return ETCD_NEXT_DONE;
}

static enum etcd_next watch_events(struct etcd_watch *watch,
				   const struct etcd_watch_message *message)
{
	size_t first = 0;

	/* Events before the resume point were delivered already: a member that
	 * sends them again (it cannot) would not make duplicates. */
	while (first < message->n_events &&
	       message->events[first].kv.mod_revision < watch->next_revision)
		first++;
	if (first == message->n_events)
		return ETCD_NEXT_GO_ON;
	watch->next_revision = message->events[message->n_events - 1].kv.mod_revision + 1;
	struct etcd_watch_update update = {
		.news = ETCD_WATCH_EVENTS,
		.header = message->header,
		.events = message->events + first,
		.n_events = message->n_events - first,
	};

	return deliver(watch, NULL, &update) ? ETCD_NEXT_GO_ON : ETCD_NEXT_DONE;
}

static enum etcd_next watch_answer(struct etcd_call *call, JsonNode *root)
{
	struct etcd_watch *watch = call->op;
	struct etcd_watch_message message;
	struct etcd_watch_update update = { .header = { 0 } };
	enum etcd_next next = ETCD_NEXT_GO_ON;
	char why[256];

	if (!etcd_json_read_watch(root, &message, why, sizeof(why))) {
		etcd_call_fail(call, ETCD_BAD_RESPONSE,
			       "%s sent a watch message etcd 3.4 does not send: %s",
			       etcd_call_endpoint(call), why);
		return ETCD_NEXT_DONE;
	}
	if (message.is_error) {
		enum etcd_status status;

		if (etcd_judge_grpc(message.error_code, message.error_message, &status) !=
		    ETCD_VERDICT_FINAL) {
			etcd_call_note(call, "%s: %s", etcd_call_endpoint(call),
				       message.error_message);
			next = ETCD_NEXT_RETRY;
		} else {
			etcd_call_fail(call, status, "%s ended the watch: %s",
				       etcd_call_endpoint(call), message.error_message);
			next = ETCD_NEXT_DONE;
		}
	} else if (message.canceled) {
		next = watch_canceled(call, watch, &message);
	} else if (message.created) {
		if (!watch->next_revision)
			watch->next_revision = message.header.revision + 1;
		watch->connected = true;
		etcd_timer_arm(watch->check, watch->client->options.watch_check_ms * 1000LL);
		update.news = ETCD_WATCH_CONNECTED;
		update.header = message.header;
		update.endpoint = etcd_call_endpoint(call);
		next = deliver(watch, NULL, &update) ? ETCD_NEXT_GO_ON : ETCD_NEXT_DONE;
	} else if (message.n_events) {
		next = watch_events(watch, &message);
	} else {
		/* A progress notification: every change up to header.revision has
		 * been sent, so a resumed watch may start after it. */
		if (message.header.revision >= watch->next_revision)
			watch->next_revision = message.header.revision + 1;
		update.news = ETCD_WATCH_PROGRESS;
		update.header = message.header;
		next = deliver(watch, NULL, &update) ? ETCD_NEXT_GO_ON : ETCD_NEXT_DONE;
	}
	etcd_watch_message_clear(&message);
	return next;
}

static const struct etcd_call_ops watch_ops = {
	.what = "watch",
	.answer = watch_answer,
	.fail = watch_fail,
	.resume = watch_resume,
	.free = NULL, /* the call's op is the watch, which outlives it */
};

struct etcd_watch *etcd_watch_prefix(struct etcd_client *client, const char *prefix,
				     int64_t start_revision, etcd_watch_cb callback, void *ctx)
{
	if (!prefix || !callback || start_revision < 0)
		return NULL;
	struct etcd_watch *watch = g_new0(struct etcd_watch, 1);

	watch->client = client;
	watch->key_len = strlen(prefix);
	watch->key = g_strdup(prefix);
	watch->end = etcd_prefix_end(prefix, watch->key_len, &watch->end_len);
	watch->next_revision = start_revision;
	watch->callback = callback;
	watch->ctx = ctx;
	watch->check = etcd_timer_new(client->timers, check_member, watch);
	g_hash_table_add(client->watches, watch);
	watch->call = etcd_call_new(client, &watch_ops, watch, "/v3/watch", watch_body(watch),
				    ETCD_CALL_STREAM | ETCD_CALL_IDEMPOTENT);
	/* A call curl refused at once has told the callback (which may have
	 * cancelled the watch): the watch stays, ended. */
	watch->in_callback++;
	watch->call = etcd_call_launch(watch->call, 0);
	watch->in_callback--;
	if (watch->cancelled) {
		watch_free(watch);
		return NULL;
	}
	return watch;
}

int64_t etcd_watch_next_revision(const struct etcd_watch *watch)
{
	return watch->next_revision;
}

const char *etcd_watch_endpoint(const struct etcd_watch *watch)
{
	return watch->connected && watch->call ? etcd_call_endpoint(watch->call) : NULL;
}
