/* SPDX-License-Identifier: MIT */
/* Function handlers: what a container of tether-agent executes for each
 * request. A container is one process running one handler; its memory lives
 * between requests, which is what makes a warm container worth routing to.
 * Adding a handler is one function and one line in the table. */
#ifndef TETHER_AGENT_HANDLERS_H
#define TETHER_AGENT_HANDLERS_H

#include <glib.h>
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

/* The container's state kept in memory between requests. */
struct agent_memory {
	GHashTable *counts; /* key text -> __u64 *, per routing key */
	__u64 total;        /* requests served */
};

/* One request as the handler sees it. */
struct agent_call {
	__u32 slot;        /* the container's slot at tetherd */
	const char *name;  /* the container's name */
	__u64 function_id;
	__u64 routing_key;
	bool has_key;      /* the client set KEY */
	const void *payload;
	size_t length;
	int pid;           /* the container process */
};

/* Writes the answer payload into out (at most cap bytes) and returns its
 * length. */
typedef size_t (*agent_handler_fn)(struct agent_memory *memory, const struct agent_call *call,
				   char *out, size_t cap);

struct agent_handler {
	const char *name;
	agent_handler_fn run;
};

/* The handler called name, or NULL. */
const struct agent_handler *agent_handler_find(const char *name);
/* "counter, echo": for --help and error messages. */
const char *agent_handler_names(void);

void agent_memory_init(struct agent_memory *memory);
void agent_memory_free(struct agent_memory *memory);

#endif
