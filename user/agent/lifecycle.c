// SPDX-License-Identifier: MIT
/* Each container's requests to tetherd and what their answers change
 * (lifecycle.h). Answers only change state; lifecycle_step, run after every
 * batch of events, decides the next request from that state. */
#include "lifecycle.h"

#include <string.h>

#include "records.h"
#include "containers.h"
#include "log.h"
#include "process.h"
#include "session.h"

#define RETRY_MS 2000

/* The container an answer is about, unless it went meanwhile. */
static struct container *answered(struct tetherd_link *link, __u32 id)
{
	struct container *c = container_by_id(agent_of(link), id);

	if (c)
		c->busy = false;
	return c;
}

/* An answer that contradicts what the agent believes: it logs tetherd's
 * words and learns tetherd's view again. */
static void surprised(struct tetherd_link *link, const struct tetherd_answer *answer)
{
	link_log_refusal(link, answer);
	session_relist(agent_of(link));
}

/* tetherd could not reach its fleet's store: nothing changed. The request
 * goes again after RETRY_MS, or at once at the next tetherd (failover.c
 * moves when they keep coming); the agent's view stands. */
static bool unavailable(struct tetherd_link *link, const struct tetherd_answer *answer,
			struct container *c)
{
	if (answer->ok || answer->error != PROTO_UNAVAILABLE)
		return false;
	link_log_refusal(link, answer);
	c->retry_ms = now_ms() + RETRY_MS;
	return true;
}

static void send_request(struct agent *agent, struct container *c, struct proto_writer *w,
			 tetherd_done done)
{
	if (link_request(&agent->control, w, done, c->id) == 0)
		c->busy = true;
}

/* --- add container --- */

static void on_added(struct tetherd_link *link, const struct tetherd_answer *answer, __u32 id)
{
	struct agent *agent = agent_of(link);
	struct container *c = answered(link, id);
	struct agent_container_record record;
	char message[256];

	if (!c || answer->lost || unavailable(link, answer, c))
		return;
	if (!answer->ok) {
		link_log_refusal(link, answer);
		if (answer->error == PROTO_NOT_FOUND)
			session_backend_lost(agent);
		else if (answer->error == PROTO_EXISTS)
			container_rename(agent, c);
		else
			c->not_before_ms = now_ms() + RETRY_MS;
		return;
	}
	if (!answer->records->len ||
	    agent_container_record_parse(((struct proto_request *)g_ptr_array_index(answer->records, 0)),
					 &record, message, sizeof(message))) {
		agent_log("tetherd at %s answered add container without a usable record (%s); asking again",
			  link->endpoint->text, answer->records->len ? message : "none");
		session_relist(agent);
		return;
	}
	container_set_slot(agent, c, record.slot, record.token);
	c->reg = record.state == CONTAINER_WARM ? REG_WARM : REG_STARTING;
	agent_log("%s: added at tetherd, %s", container_label(c),
		  c->reg == REG_WARM ? "warm" : "starting");
	/* Asked to leave meanwhile: no process to start, only to report idle. */
	if (c->process == PROCESS_NONE && !c->draining && process_start(agent, c))
		c->dead = c->draining = true; /* process_start said why */
}

static void send_add(struct agent *agent, struct container *c)
{
	struct proto_writer w;
	bool warm = c->process == PROCESS_READY;

	proto_writer_init(&w);
	proto_request_begin(&w, "add", "container");
	proto_record_u64(&w, "function", c->function_id);
	proto_record_str(&w, "backend", agent->options.name);
	proto_record_str(&w, "name", c->name);
	/* A container tetherd lost while it ran comes back warm at once. */
	proto_record_str(&w, "state", warm ? "warm" : "starting");
	if (c->limit) /* only then: a tetherd without limits still takes the rest */
		proto_record_u64(&w, "concurrency", c->limit);
	proto_record_end(&w);
	send_request(agent, c, &w, on_added);
}

/* --- up container --- */

static void on_up(struct tetherd_link *link, const struct tetherd_answer *answer, __u32 id)
{
	struct container *c = answered(link, id);

	if (!c || answer->lost || unavailable(link, answer, c))
		return;
	if (answer->ok) {
		c->reg = REG_WARM;
		agent_log("%s: warm, up at tetherd", container_label(c));
	} else if (answer->error == PROTO_NOT_FOUND) {
		link_log_refusal(link, answer);
		c->reg = REG_NONE;
	} else {
		surprised(link, answer);
	}
}

/* --- drain container --- */

static void on_drained(struct tetherd_link *link, const struct tetherd_answer *answer,
		       __u32 id)
{
	struct container *c = answered(link, id);

	if (!c || answer->lost || unavailable(link, answer, c))
		return;
	if (answer->ok) {
		c->reg = REG_DRAINING;
		agent_log("%s: draining (%u in flight)", container_label(c), c->in_flight);
	} else if (answer->error == PROTO_NOT_FOUND) {
		c->reg = REG_GONE;
	} else {
		surprised(link, answer);
	}
}

/* --- idle container, del container --- */

static void on_gone(struct tetherd_link *link, const struct tetherd_answer *answer, __u32 id)
{
	struct container *c = answered(link, id);

	if (!c || answer->lost || unavailable(link, answer, c))
		return;
	if (answer->ok || answer->error == PROTO_NOT_FOUND) {
		/* not_found: tetherd's drain deadline came first; gone either way. */
		c->reg = REG_GONE;
		agent_log("%s: %s, gone at tetherd", container_label(c),
			  !strcmp(answer->request, "idle container") ? "idle" : "deleted");
	} else {
		surprised(link, answer);
	}
}

/* --- show container (an event named it) --- */

/* Whether tetherd's answer to show container describes c itself (same slot
 * and token) and how it is; false when tetherd does not know c any more. */
static bool shown_record(const struct tetherd_answer *answer, const struct container *c,
			 struct agent_container_record *record)
{
	char message[256];

	return answer->ok && answer->records->len &&
	       !agent_container_record_parse(((struct proto_request *)g_ptr_array_index(answer->records, 0)),
					     record, message, sizeof(message)) &&
	       record->slot == c->slot && !memcmp(record->token, c->token, sizeof(c->token)) &&
	       record->state != CONTAINER_GONE;
}

static void on_shown(struct tetherd_link *link, const struct tetherd_answer *answer, __u32 id)
{
	struct agent *agent = agent_of(link);
	struct container *c = answered(link, id);
	struct agent_container_record record;

	if (!c || answer->lost || (!answer->ok && answer->error != PROTO_NOT_FOUND))
		return;
	if (!shown_record(answer, c, &record)) {
		agent_log("%s: gone at tetherd; stopping it", container_label(c));
		c->reg = REG_GONE;
		container_drain(c, now_ms() + agent->options.drain_ms);
	} else if (record.state == CONTAINER_DRAINING && !c->draining) {
		__u32 left = record.deadline_in_ms ? record.deadline_in_ms : agent->options.drain_ms;

		agent_log("%s: tetherd drains it; finishing %u requests in flight within %u ms",
			  container_label(c), c->in_flight, left);
		c->reg = REG_DRAINING;
		container_drain(c, now_ms() + left);
	}
}

static void send_about(struct agent *agent, struct container *c, const char *verb,
		       tetherd_done done)
{
	struct proto_writer w;

	proto_writer_init(&w);
	proto_request_begin(&w, verb, "container");
	proto_record_u64(&w, "container", c->slot);
	if (!strcmp(verb, "drain")) {
		__u64 now = now_ms();
		__u64 left = c->drain_deadline_ms > now ? c->drain_deadline_ms - now : 0;

		/* 0 would mean tetherd's default deadline. */
		proto_record_u64(&w, "deadline_ms", left ? left : 1);
	}
	proto_record_end(&w);
	send_request(agent, c, &w, done);
}

/* --- the next step of one container --- */

static bool work_finished(const struct agent *agent, const struct container *c, __u64 now)
{
	return c->in_flight == 0 || now >= c->drain_deadline_ms || c->dead || agent->hurry;
}

static void step(struct agent *agent, struct container *c, __u64 now)
{
	bool registered = c->reg == REG_STARTING || c->reg == REG_WARM || c->reg == REG_DRAINING;

	if (c->draining && !registered && work_finished(agent, c, now)) {
		process_stop(agent, c); /* tetherd is done with it */
		return;
	}
	if (c->busy || agent->session != SESSION_READY || now < c->retry_ms)
		return;
	if (c->dead && registered)
		send_about(agent, c, "del", on_gone);
	else if (c->check && registered && !c->draining)
		send_about(agent, c, "show", on_shown);
	else if (!c->draining && c->reg == REG_NONE && now >= c->not_before_ms)
		send_add(agent, c);
	else if (!c->draining && c->reg == REG_STARTING && c->process == PROCESS_READY)
		send_about(agent, c, "up", on_up);
	else if (c->draining && (c->reg == REG_STARTING || c->reg == REG_WARM))
		send_about(agent, c, "drain", on_drained);
	else if (c->draining && c->reg == REG_DRAINING && work_finished(agent, c, now))
		send_about(agent, c, "idle", on_gone);
	c->check = false;
}

void lifecycle_step(struct agent *agent)
{
	__u64 now = now_ms();

	for (guint i = 0; i < agent->containers->len; i++)
		step(agent, g_ptr_array_index(agent->containers, i), now);
	containers_sweep(agent);
}
