// SPDX-License-Identifier: MIT
/* Matching tetherd's containers with the agent's (reconcile.h). */
#include "reconcile.h"

#include <string.h>

#include "records.h"
#include "containers.h"
#include "log.h"

static const struct agent_container_record *find_record(const GArray *records, __u32 slot,
							const __u8 token[16])
{
	for (guint i = 0; i < records->len; i++) {
		const struct agent_container_record *record =
			&g_array_index(records, struct agent_container_record, i);

		if (record->slot == slot && !memcmp(record->token, token, 16))
			return record;
	}
	return NULL;
}

/* c takes the state tetherd has for it; without a record it is unknown. */
static void adopt_state(struct agent *agent, struct container *c,
			const struct agent_container_record *record)
{
	if (!record) {
		if (c->reg != REG_GONE && c->reg != REG_NONE)
			agent_log("%s: unknown to tetherd; adding it again", container_label(c));
		if (c->reg != REG_GONE)
			c->reg = REG_NONE;
		return;
	}
	if (record->state == CONTAINER_STARTING)
		c->reg = REG_STARTING;
	else if (record->state == CONTAINER_WARM)
		c->reg = REG_WARM;
	else if (record->state == CONTAINER_DRAINING)
		c->reg = REG_DRAINING;
	if (record->state == CONTAINER_DRAINING && !c->draining) {
		__u32 left = record->deadline_in_ms ? record->deadline_in_ms
						    : agent->options.drain_ms;

		agent_log("%s: tetherd drains it; finishing its work within %u ms",
			  container_label(c), left);
		container_drain(c, now_ms() + left);
	}
}

static bool is_ours(struct agent *agent, const struct agent_container_record *record)
{
	struct container *c = container_by_slot(agent, record->slot);

	return c && !memcmp(c->token, record->token, 16) && c->reg != REG_GONE;
}

void reconcile(struct agent *agent, GPtrArray *answer_records)
{
	GArray *records = g_array_new(FALSE, FALSE, sizeof(struct agent_container_record));
	char message[256];

	for (guint i = 0; i < answer_records->len; i++) {
		struct agent_container_record record;

		if (agent_container_record_parse(((struct proto_request *)g_ptr_array_index(answer_records, i)),
						 &record, message, sizeof(message)) == 0)
			g_array_append_val(records, record);
	}
	for (guint i = 0; i < agent->containers->len; i++) {
		struct container *c = g_ptr_array_index(agent->containers, i);

		if (!c->busy)
			adopt_state(agent, c, c->has_slot ? find_record(records, c->slot, c->token)
							  : NULL);
	}
	g_array_set_size(agent->stale_slots, 0);
	for (guint i = 0; i < records->len; i++) {
		const struct agent_container_record *record =
			&g_array_index(records, struct agent_container_record, i);

		if (!is_ours(agent, record))
			g_array_append_val(agent->stale_slots, record->slot);
	}
	g_array_free(records, TRUE);
}
