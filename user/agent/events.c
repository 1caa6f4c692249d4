// SPDX-License-Identifier: MIT
/* tetherd's event stream (events.h). */
#include "events.h"

#include <string.h>

#include "records.h"
#include "containers.h"
#include "log.h"

static void on_watching(struct tetherd_link *link, const struct tetherd_answer *answer,
			__u32 arg)
{
	(void)arg;
	if (answer->lost)
		return;
	if (answer->ok) {
		agent_log("watching tetherd's events");
		return;
	}
	link_log_refusal(link, answer);
	link_drop(link, "watch event refused", true);
}

static void on_link_up(struct tetherd_link *link)
{
	link_watch(link, on_watching);
}

static void capacity_needed(struct agent *agent, const struct agent_event *event)
{
	const struct agent_options *o = &agent->options;

	if (!agent_serves_on_demand(o, event->function_id) || agent->stopping ||
	    agent->session != SESSION_READY)
		return;
	/* One on its way is the answer already: tetherd repeats the event while
	 * requests wait, and the first warm container takes them all. */
	if (containers_starting(agent, event->function_id))
		return;
	if (containers_live(agent) >= o->max_containers) {
		agent_log("capacity_needed for function %llu, but this agent runs its maximum of %u containers",
			  (unsigned long long)event->function_id, o->max_containers);
		return;
	}
	struct container *c = container_create(agent, event->function_id, 0);

	agent_log("capacity_needed: function %llu has %u requests waiting; starting %s",
		  (unsigned long long)event->function_id, event->waiting, c->name);
}

/* tetherd changed one of our containers: ask it whether the event is about
 * the container we have in that slot now, since the event stream and the
 * answers to our requests travel on different connections. */
static void container_changed(struct agent *agent, const struct agent_event *event)
{
	struct container *c = container_by_slot(agent, event->container);

	if (strcmp(event->backend, agent->options.name) || !c)
		return;
	if (event->type == AGENT_EVENT_CONTAINER_DRAINING && c->reg != REG_DRAINING &&
	    c->reg != REG_GONE)
		c->check = true;
	if (event->type == AGENT_EVENT_CONTAINER_GONE && c->reg != REG_GONE)
		c->check = true;
}

static void on_event(struct tetherd_link *link, const char *line, size_t len)
{
	struct agent *agent = agent_of(link);
	struct agent_event event;
	char message[256];

	if (agent_event_parse(line, len, &event, message, sizeof(message))) {
		agent_log("skipping an event the agent cannot read: %s", message);
		return;
	}
	if (event.type == AGENT_EVENT_CAPACITY_NEEDED)
		capacity_needed(agent, &event);
	else if (event.type != AGENT_EVENT_OTHER)
		container_changed(agent, &event);
}

const struct link_owner events_owner = {
	.up = on_link_up,
	.event = on_event,
};
