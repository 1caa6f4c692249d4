// SPDX-License-Identifier: MIT
/* The function handlers of tether-agent's containers (handlers.h). */
#include "handlers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

/* Counts requests per routing key ("none" without KEY) and in total, and
 * says which container and process counted them: a client sees from the
 * answer whether it reached the same warm container as before. */
static size_t run_counter(struct agent_memory *memory, const struct agent_call *call, char *out,
			  size_t cap)
{
	char key[24];

	if (call->has_key)
		snprintf(key, sizeof(key), "%llu", (unsigned long long)call->routing_key);
	else
		snprintf(key, sizeof(key), "none");
	__u64 *count = g_hash_table_lookup(memory->counts, key);

	if (!count) {
		count = g_new0(__u64, 1);
		g_hash_table_insert(memory->counts, g_strdup(key), count);
	}
	(*count)++;
	memory->total++;
	int len = snprintf(out, cap,
			   "container=%u name=%s function=%llu key=%s count=%llu total=%llu pid=%d",
			   call->slot, call->name, (unsigned long long)call->function_id, key,
			   (unsigned long long)*count, (unsigned long long)memory->total,
			   call->pid);

	return len < 0 ? 0 : (size_t)len < cap ? (size_t)len : cap - 1;
}

/* Answers the request's payload. */
static size_t run_echo(struct agent_memory *memory, const struct agent_call *call, char *out,
		       size_t cap)
{
	size_t len = call->length < cap ? call->length : cap;

	memory->total++;
	memcpy(out, call->payload, len);
	return len;
}

/* Names the container as tools/echo_backend does ("served-by=NAME
 * slot=SLOT"), so tools/udp_load can check who answered. */
static size_t run_served_by(struct agent_memory *memory, const struct agent_call *call,
			    char *out, size_t cap)
{
	int len = snprintf(out, cap, "served-by=%s slot=%u", call->name, call->slot);

	memory->total++;
	return len < 0 ? 0 : (size_t)len < cap ? (size_t)len : cap - 1;
}

/* Takes its time, as real work does: sleeps the milliseconds the payload
 * names ("ms=N", at most 10 s), else 20, then answers like served-by (so
 * tools/udp_load can check who answered) with the time it slept. */
static size_t run_sleep(struct agent_memory *memory, const struct agent_call *call, char *out,
			size_t cap)
{
	char text[32] = "";
	unsigned long ms = 20;
	size_t n = call->length < sizeof(text) - 1 ? call->length : sizeof(text) - 1;

	memcpy(text, call->payload, n);
	text[n] = '\0';
	if (!strncmp(text, "ms=", 3))
		ms = strtoul(text + 3, NULL, 10);
	if (ms > 10000)
		ms = 10000;
	struct timespec pause = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&pause, &pause) && errno == EINTR)
		;
	memory->total++;
	int len = snprintf(out, cap, "served-by=%s slot=%u slept_ms=%lu", call->name, call->slot,
			   ms);

	return len < 0 ? 0 : (size_t)len < cap ? (size_t)len : cap - 1;
}

static const struct agent_handler handlers[] = {
	{ "counter", run_counter },
	{ "echo", run_echo },
	{ "served-by", run_served_by },
	{ "sleep", run_sleep },
};

#define HANDLER_COUNT (sizeof(handlers) / sizeof(handlers[0]))

const struct agent_handler *agent_handler_find(const char *name)
{
	for (size_t i = 0; i < HANDLER_COUNT; i++)
		if (!strcmp(handlers[i].name, name))
			return &handlers[i];
	return NULL;
}

const char *agent_handler_names(void)
{
	static char names[256];

	if (!names[0])
		for (size_t i = 0; i < HANDLER_COUNT; i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 i ? ", " : "", handlers[i].name);
	return names;
}

void agent_memory_init(struct agent_memory *memory)
{
	memory->counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	memory->total = 0;
}

void agent_memory_free(struct agent_memory *memory)
{
	if (memory->counts)
		g_hash_table_destroy(memory->counts);
	memory->counts = NULL;
}
