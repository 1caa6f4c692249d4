// SPDX-License-Identifier: MIT
/* The table of the agent's containers (containers.h). */
#include "containers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

static void set_name(struct agent *agent, struct container *c)
{
	char id[16];
	int room;

	/* "BACKEND-ID", the backend's name cut so the whole fits 31 characters. */
	snprintf(id, sizeof(id), "-%u", c->id);
	room = (int)(sizeof(c->name) - 1 - strlen(id));
	snprintf(c->name, sizeof(c->name), "%.*s%s", room, agent->options.name, id);
}

struct container *container_create(struct agent *agent, __u64 function_id, __u64 not_before_ms)
{
	struct container *c = g_new0(struct container, 1);

	c->agent = agent;
	c->id = ++agent->next_container_id;
	c->function_id = function_id;
	c->limit = agent_function_concurrency(&agent->options, function_id);
	c->not_before_ms = not_before_ms;
	c->fd = -1;
	set_name(agent, c);
	g_ptr_array_add(agent->containers, c);
	return c;
}

void container_rename(struct agent *agent, struct container *c)
{
	c->id = ++agent->next_container_id;
	set_name(agent, c);
}

struct container *container_by_id(struct agent *agent, __u32 id)
{
	for (guint i = 0; i < agent->containers->len; i++) {
		struct container *c = g_ptr_array_index(agent->containers, i);

		if (c->id == id)
			return c;
	}
	return NULL;
}

struct container *container_by_slot(struct agent *agent, __u32 slot)
{
	return g_hash_table_lookup(agent->by_slot, GUINT_TO_POINTER(slot));
}

struct container *container_by_pid(struct agent *agent, pid_t pid)
{
	for (guint i = 0; i < agent->containers->len; i++) {
		struct container *c = g_ptr_array_index(agent->containers, i);

		if (c->pid == pid && c->process != PROCESS_NONE && c->process != PROCESS_EXITED)
			return c;
	}
	return NULL;
}

const char *container_label(const struct container *c)
{
	static char label[96];

	if (c->has_slot)
		snprintf(label, sizeof(label), "container %u (%s, function %llu)", c->slot,
			 c->name, (unsigned long long)c->function_id);
	else
		snprintf(label, sizeof(label), "container %s (function %llu)", c->name,
			 (unsigned long long)c->function_id);
	return label;
}

/* The slot map names c only while c holds the slot: after tetherd lost
 * state, another container of ours may have been given it. */
static void unmap_slot(struct agent *agent, struct container *c)
{
	if (c->has_slot && container_by_slot(agent, c->slot) == c)
		g_hash_table_remove(agent->by_slot, GUINT_TO_POINTER(c->slot));
}

void container_set_slot(struct agent *agent, struct container *c, __u32 slot,
			const __u8 token[16])
{
	unmap_slot(agent, c);
	/* A new token is a new container for the router: its counts start at 0. */
	if (!c->has_slot || c->slot != slot || memcmp(c->token, token, sizeof(c->token)))
		c->received = c->finished = 0;
	c->has_slot = true;
	c->slot = slot;
	memcpy(c->token, token, sizeof(c->token));
	g_hash_table_replace(agent->by_slot, GUINT_TO_POINTER(slot), c);
}

void container_drain(struct container *c, __u64 deadline_ms)
{
	if (!c->draining || deadline_ms < c->drain_deadline_ms)
		c->drain_deadline_ms = deadline_ms;
	c->draining = true;
}

__u32 containers_starting(struct agent *agent, __u64 function_id)
{
	__u32 count = 0;

	for (guint i = 0; i < agent->containers->len; i++) {
		struct container *c = g_ptr_array_index(agent->containers, i);

		if (c->function_id == function_id && !c->draining && c->reg != REG_WARM)
			count++;
	}
	return count;
}

__u32 containers_live(struct agent *agent)
{
	__u32 count = 0;

	for (guint i = 0; i < agent->containers->len; i++)
		if (!((struct container *)g_ptr_array_index(agent->containers, i))->draining)
			count++;
	return count;
}

static bool is_done(const struct container *c)
{
	return c->draining && !c->busy && (c->reg == REG_NONE || c->reg == REG_GONE) &&
	       (c->process == PROCESS_NONE || c->process == PROCESS_EXITED);
}

void containers_sweep(struct agent *agent)
{
	for (guint i = 0; i < agent->containers->len;) {
		struct container *c = g_ptr_array_index(agent->containers, i);

		if (!is_done(c)) {
			i++;
			continue;
		}
		agent_log("%s: finished", container_label(c));
		unmap_slot(agent, c);
		g_ptr_array_remove_index(agent->containers, i);
		g_free(c);
	}
}

void containers_forget_registrations(struct agent *agent)
{
	for (guint i = 0; i < agent->containers->len; i++) {
		struct container *c = g_ptr_array_index(agent->containers, i);

		if (c->reg != REG_GONE)
			c->reg = REG_NONE;
		c->check = false;
	}
}

int container_send(struct container *c, const void *message, size_t len)
{
	if (c->fd < 0)
		return -EPIPE;
	if (send(c->fd, message, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return 0;
}
