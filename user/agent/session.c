// SPDX-License-Identifier: MIT
/* The backend's registration at tetherd (session.h). Answers change the
 * session's state; session_step sends what that state needs next. */
#include "session.h"

#include "completion.h"

#include <string.h>

#include "records.h"
#include "containers.h"
#include "log.h"
#include "reconcile.h"
#include "shutdown.h"

#define RETRY_MS 2000

/* --- the control link --- */

static void on_link_up(struct tetherd_link *link)
{
	struct agent *agent = agent_of(link);

	agent_log("connected to tetherd at %s", link->endpoint->text);
	agent->session = SESSION_NEED_BACKEND;
	agent->session_retry_ms = 0;
}

static void on_link_down(struct tetherd_link *link)
{
	struct agent *agent = agent_of(link);

	agent->session = SESSION_OFFLINE;
	agent->heartbeat_pending = false;
}

const struct link_owner session_owner = {
	.up = on_link_up,
	.down = on_link_down,
};

void session_backend_lost(struct agent *agent)
{
	if (agent->session == SESSION_OFFLINE)
		return;
	agent_log("tetherd at %s does not know backend %s; registering it again",
		  agent->control.endpoint->text, agent->options.name);
	agent->session = SESSION_NEED_BACKEND;
	agent->alive_registered = false;
	containers_forget_registrations(agent);
}

void session_relist(struct agent *agent)
{
	if (agent->session == SESSION_READY)
		agent->session = SESSION_NEED_LIST;
}

/* A refusal that no retry can fix (the command line or the secret is wrong)
 * ends the agent; others are retried. `unavailable` (a fleet's router cut
 * off from its store) is never final: nothing changed, the request is
 * retried, and failover.c moves to another router when there is one. */
static bool refusal_is_final(enum proto_error error)
{
	return error == PROTO_BAD_REQUEST || error == PROTO_UNKNOWN_VERB ||
	       error == PROTO_MISSING_ARGUMENT || error == PROTO_BAD_ARGUMENT ||
	       error == PROTO_UNAUTHORIZED;
}

static void refused(struct agent *agent, const struct tetherd_answer *answer,
		    enum session_state retry)
{
	link_log_refusal(&agent->control, answer);
	if (refusal_is_final(answer->error)) {
		shutdown_abort(agent, "tetherd will not take this backend as configured");
		return;
	}
	agent->session = retry;
	agent->session_retry_ms = now_ms() + RETRY_MS;
}

/* Our backend id (ALIVE names it) and the completion addresses tetherd
 * named in its answer. */
static void learn_backend(struct agent *agent, const GPtrArray *records, const char *id)
{
	if (id)
		agent->backend_id = (__u32)g_ascii_strtoull(id, NULL, 10);
	for (guint i = 0; records && i < records->len; i++) {
		const char *completion =
			proto_get((struct proto_request *)g_ptr_array_index(records, i), "completion");

		if (completion)
			completion_learn(agent, completion);
	}
}

/* alive_key= only towards a tetherd that takes DONE and ALIVE: one given by
 * --completion, or one that named its completion address. */
static __u32 add_alive_key(struct agent *agent, struct proto_writer *w)
{
	char key[33];

	if (!agent->completion_count)
		return 0;
	completion_key_text(agent, key);
	proto_record_str(w, "alive_key", key);
	return 1;
}

/* --- add backend --- */

static void on_backend_added(struct tetherd_link *link, const struct tetherd_answer *answer,
			     __u32 arg)
{
	struct agent *agent = agent_of(link);
	const char *id = answer->ok && answer->records->len
				 ? proto_get(((struct proto_request *)g_ptr_array_index(answer->records, 0)),
					     "id")
				 : NULL;

	(void)arg;
	if (answer->lost)
		return;
	if (answer->error == PROTO_EXISTS) {
		agent->session = SESSION_NEED_CHECK;
		return;
	}
	if (!answer->ok) {
		refused(agent, answer, SESSION_NEED_BACKEND);
		return;
	}
	agent_log("backend %s registered (id %s, heartbeat %u ms)", agent->options.name,
		  id ? id : "?", agent->options.heartbeat_ms);
	learn_backend(agent, answer->records, id);
	agent->alive_registered = arg; /* ALIVE only once tetherd has the key */
	agent->registered_once = true;
	agent->session = SESSION_NEED_LIST;
	agent->heartbeat_due_ms = 0;
}

static void send_add_backend(struct agent *agent)
{
	const struct agent_options *o = &agent->options;
	struct proto_writer w;

	proto_writer_init(&w);
	proto_request_begin(&w, "add", "backend");
	proto_record_str(&w, "name", o->name);
	proto_record_str(&w, "addr", o->addr);
	if (o->mac[0])
		proto_record_str(&w, "mac", o->mac);
	if (o->router_iface[0])
		proto_record_str(&w, "iface", o->router_iface);
	proto_record_u64(&w, "heartbeat_ms", o->heartbeat_ms);
	if (o->decap) { /* only then: a tetherd without encapsulation still takes L2 */
		proto_record_str(&w, "encap", proto_encap_name(o->decap));
		if (o->decap == BACKEND_VXLAN)
			proto_record_u64(&w, "vni", o->vni);
	}
	if (o->vlan) /* only then: a tetherd without VLANs still takes the rest */
		proto_record_u64(&w, "vlan", o->vlan);
	__u32 with_key = add_alive_key(agent, &w);

	proto_record_end(&w);
	agent->alive_registered = false; /* (again) until this router has the key */
	if (link_request(&agent->control, &w, on_backend_added, with_key) == 0)
		agent->session = SESSION_ADDING_BACKEND;
}

/* --- an existing backend: take it over, or replace it --- */

static void on_backend_replaced(struct tetherd_link *link, const struct tetherd_answer *answer,
				__u32 arg)
{
	struct agent *agent = agent_of(link);

	(void)arg;
	if (answer->lost)
		return;
	if (answer->ok || answer->error == PROTO_NOT_FOUND)
		agent->session = SESSION_NEED_BACKEND;
	else
		refused(agent, answer, SESSION_NEED_BACKEND);
}

/* Its containers go with it; ours are added again after. */
static void replace_backend(struct agent *agent, const char *difference)
{
	struct proto_writer w;

	agent_log("backend %s exists at tetherd, but its %s; replacing it", agent->options.name,
		  difference);
	proto_writer_init(&w);
	proto_request_begin(&w, "del", "backend");
	proto_record_str(&w, "name", agent->options.name);
	proto_record_end(&w);
	if (link_request(&agent->control, &w, on_backend_replaced, 0) == 0)
		agent->session = SESSION_REPLACING;
}

static const struct proto_request *find_backend(const GPtrArray *records, const char *name)
{
	for (guint i = 0; i < records->len; i++) {
		const struct proto_request *record = ((struct proto_request *)g_ptr_array_index(records, i));
		const char *backend = proto_get(record, "backend");

		if (backend && !strcmp(backend, name))
			return record;
	}
	return NULL;
}

static void on_backends_listed(struct tetherd_link *link, const struct tetherd_answer *answer,
			       __u32 arg)
{
	struct agent *agent = agent_of(link);
	const struct proto_request *record;
	char difference[256];

	(void)arg;
	if (answer->lost)
		return;
	if (!answer->ok) {
		refused(agent, answer, SESSION_NEED_CHECK);
		return;
	}
	record = find_backend(answer->records, agent->options.name);
	if (!record) {
		agent->session = SESSION_NEED_BACKEND; /* removed meanwhile: add it */
	} else if (!agent_backend_matches(record, &agent->options, difference,
					  sizeof(difference))) {
		replace_backend(agent, difference);
	} else {
		agent_log("backend %s exists at tetherd; taking it over", agent->options.name);
		learn_backend(agent, NULL, proto_get(record, "id"));
		agent->registered_once = true;
		agent->session = SESSION_NEED_LIST;
		agent->heartbeat_due_ms = 0; /* at once: a backend that was down comes up */
	}
}

static void send_list_backends(struct agent *agent)
{
	struct proto_writer w;

	proto_writer_init(&w);
	proto_request_begin(&w, "list", "backend");
	proto_record_end(&w);
	if (link_request(&agent->control, &w, on_backends_listed, 0) == 0)
		agent->session = SESSION_CHECKING;
}

/* --- list container --- */

static void on_listed(struct tetherd_link *link, const struct tetherd_answer *answer,
		      __u32 arg)
{
	struct agent *agent = agent_of(link);

	(void)arg;
	if (answer->lost)
		return;
	if (!answer->ok) {
		refused(agent, answer, SESSION_NEED_LIST);
		return;
	}
	reconcile(agent, answer->records);
	agent->session = SESSION_READY;
}

static void send_list(struct agent *agent)
{
	struct proto_writer w;

	proto_writer_init(&w);
	proto_request_begin(&w, "list", "container");
	proto_record_str(&w, "backend", agent->options.name);
	proto_record_end(&w);
	if (link_request(&agent->control, &w, on_listed, 0) == 0)
		agent->session = SESSION_LISTING;
}

/* --- stale containers (an earlier agent's) --- */

static void on_stale_deleted(struct tetherd_link *link, const struct tetherd_answer *answer,
			     __u32 slot)
{
	if (answer->ok)
		agent_log("container %u: left by an earlier agent; deleted at tetherd", slot);
	else if (!answer->lost && answer->error != PROTO_NOT_FOUND)
		link_log_refusal(link, answer);
}

static void delete_stale(struct agent *agent)
{
	for (guint i = 0; i < agent->stale_slots->len; i++) {
		__u32 slot = g_array_index(agent->stale_slots, __u32, i);
		struct proto_writer w;

		proto_writer_init(&w);
		proto_request_begin(&w, "del", "container");
		proto_record_u64(&w, "container", slot);
		proto_record_end(&w);
		link_request(&agent->control, &w, on_stale_deleted, slot);
	}
	g_array_set_size(agent->stale_slots, 0);
}

/* --- heartbeat backend --- */

static void on_heartbeat(struct tetherd_link *link, const struct tetherd_answer *answer,
			 __u32 arg)
{
	struct agent *agent = agent_of(link);

	agent->heartbeat_pending = false;
	if (answer->ok && arg)
		agent->alive_registered = true;
	if (answer->lost || answer->ok)
		return;
	if (answer->error == PROTO_NOT_FOUND)
		session_backend_lost(agent);
	else
		link_log_refusal(link, answer);
}

static void send_heartbeat(struct agent *agent)
{
	struct proto_writer w;

	proto_writer_init(&w);
	proto_request_begin(&w, "heartbeat", "backend");
	proto_record_str(&w, "name", agent->options.name);
	__u32 with_key = add_alive_key(agent, &w);

	proto_record_end(&w);
	if (link_request(&agent->control, &w, on_heartbeat, with_key) == 0)
		agent->heartbeat_pending = true;
	agent->heartbeat_due_ms = now_ms() + agent->options.heartbeat_ms / 3;
}

/* --- del backend --- */

static void on_backend_deleted(struct tetherd_link *link, const struct tetherd_answer *answer,
			       __u32 arg)
{
	struct agent *agent = agent_of(link);

	(void)arg;
	if (answer->lost)
		return;
	if (answer->ok || answer->error == PROTO_NOT_FOUND) {
		agent_log("backend %s removed from tetherd", agent->options.name);
		agent->session = SESSION_REMOVED;
		return;
	}
	link_log_refusal(link, answer);
	agent->session = SESSION_READY;
	agent->session_retry_ms = now_ms() + RETRY_MS;
}

static void send_del_backend(struct agent *agent)
{
	struct proto_writer w;

	proto_writer_init(&w);
	proto_request_begin(&w, "del", "backend");
	proto_record_str(&w, "name", agent->options.name);
	proto_record_end(&w);
	if (link_request(&agent->control, &w, on_backend_deleted, 0) == 0)
		agent->session = SESSION_REMOVING;
}

/* --- what comes next --- */

static bool leaving(const struct agent *agent)
{
	return agent->stopping && agent->containers->len == 0;
}

void session_step(struct agent *agent)
{
	__u64 now = now_ms();

	if (now < agent->session_retry_ms)
		return;
	switch (agent->session) {
	case SESSION_NEED_BACKEND:
		/* Leaving with nothing to drain: no need to register first. */
		if (leaving(agent))
			send_del_backend(agent);
		else
			send_add_backend(agent);
		break;
	case SESSION_NEED_CHECK:
		send_list_backends(agent);
		break;
	case SESSION_NEED_LIST:
		send_list(agent);
		break;
	case SESSION_READY:
		delete_stale(agent);
		if (leaving(agent))
			send_del_backend(agent);
		else if (!agent->heartbeat_pending && now >= agent->heartbeat_due_ms)
			send_heartbeat(agent);
		break;
	default:
		break;
	}
}
