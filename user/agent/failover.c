// SPDX-License-Identifier: MIT
/* Moving the agent's links between tetherds (failover.h). */
#include "failover.h"

#include <stdio.h>
#include <string.h>

#include "containers.h"
#include "log.h"

static const struct agent_endpoint *current(const struct agent *agent)
{
	return &agent->options.tetherds[agent->rotation.current];
}

static void move(struct agent *agent, const char *why)
{
	const struct agent_endpoint *from = current(agent);
	char *logged = agent->move_logged[agent->rotation.current];
	__u32 wait = rotation_fail(&agent->rotation);
	const struct agent_endpoint *to = current(agent);
	__u64 now = now_ms();

	agent->move_pending = false;
	/* Once per endpoint and reason until one works: an outage of every
	 * router is not logged at every round. */
	if (strcmp(logged, why)) {
		snprintf(logged, sizeof(agent->move_logged[0]), "%s", why);
		agent_log("moving from %s to %s: %s", from->text, to->text, why);
	}
	if (wait && !agent->round_logged) {
		agent->round_logged = true;
		agent_log("each of the %d tetherds failed in a row; trying them again after %u ms, "
			  "then with a backoff of up to %u ms a round",
			  agent->rotation.count, wait, agent->rotation.backoff_max_ms);
	}
	link_move(&agent->control, to, now + wait);
	link_move(&agent->watch, to, now + wait);
	/* What the last one could not do, the next one may do at once. */
	for (guint i = 0; i < agent->containers->len; i++)
		((struct container *)g_ptr_array_index(agent->containers, i))->retry_ms = 0;
}

static void on_link_failed(struct tetherd_link *link, const char *why)
{
	struct agent *agent = agent_of(link);
	char text[sizeof(agent->move_why)];

	if (link->endpoint != current(agent)) {
		/* Left behind by a move (it failed before it heard of it). */
		link_move(link, current(agent), now_ms());
		return;
	}
	snprintf(text, sizeof(text), "%s connection: %s", link->role, why);
	move(agent, text);
}

static void on_answered(struct tetherd_link *link, const struct tetherd_answer *answer)
{
	struct agent *agent = agent_of(link);
	__u32 failures = agent->rotation.failures;
	__u32 in_row = agent->rotation.unavailable + 1;

	if (rotation_answer(&agent->rotation, answer->request, answer->ok, answer->error)) {
		if (!agent->move_pending && in_row >= ROTATION_UNAVAILABLE_MAX)
			snprintf(agent->move_why, sizeof(agent->move_why),
				 "%u answers in a row were unavailable, the last to %s: %s", in_row,
				 answer->request, answer->message);
		else if (!agent->move_pending)
			snprintf(agent->move_why, sizeof(agent->move_why),
				 "%s answered unavailable: %s", answer->request, answer->message);
		agent->move_pending = true;
	} else if (failures && !agent->rotation.failures) {
		/* It works: failures are logged again from now on. */
		memset(agent->move_logged, 0, sizeof(agent->move_logged));
		agent->round_logged = false;
	}
}

void failover_init(struct agent *agent)
{
	rotation_init(&agent->rotation, agent->options.tetherd_count,
		      rotation_backoff_max_ms(agent->options.heartbeat_ms));
	if (agent->options.tetherd_count < 2)
		return;
	agent->control.failed = on_link_failed;
	agent->watch.failed = on_link_failed;
	agent->control.answered = on_answered;
}

void failover_tick(struct agent *agent, __u64 now)
{
	__u32 patience = rotation_patience_ms(agent->options.heartbeat_ms);
	const char *what;
	__u64 sent_ms;
	char why[96];

	if (agent->options.tetherd_count < 2)
		return;
	if (agent->move_pending) {
		move(agent, agent->move_why);
	} else if (link_oldest_pending(&agent->control, &sent_ms, &what) &&
		   now - sent_ms > patience) {
		/* A wedged tetherd, a silent host, or a router holding requests
		 * (one still reading its fleet's store): the backend's lease runs. */
		snprintf(why, sizeof(why), "%s unanswered for %llu ms", what,
			 (unsigned long long)(now - sent_ms));
		move(agent, why);
	}
}

const char *failover_endpoints_text(const struct agent_options *options)
{
	static char text[AGENT_MAX_TETHERDS * 162];
	size_t len = 0;

	text[0] = '\0';
	for (int i = 0; i < options->tetherd_count && len < sizeof(text); i++)
		len += snprintf(text + len, sizeof(text) - len, "%s%s", i ? ", " : "",
				options->tetherds[i].text);
	return text;
}
