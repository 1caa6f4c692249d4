// SPDX-License-Identifier: MIT
/* The endpoint rotation policy (rotation.h). */
#include "rotation.h"

#include <glib.h>
#include <string.h>

#include "control_client.h"

void rotation_init(struct rotation *r, int count, __u32 backoff_max_ms)
{
	memset(r, 0, sizeof(*r));
	r->count = count > 0 ? count : 1;
	r->backoff_ms = LINK_BACKOFF_MIN_MS;
	r->backoff_max_ms = MAX(backoff_max_ms, LINK_BACKOFF_MIN_MS);
}

static void worked(struct rotation *r)
{
	r->failures = 0;
	r->backoff_ms = LINK_BACKOFF_MIN_MS;
}

__u32 rotation_fail(struct rotation *r)
{
	__u32 wait = 0;

	r->current = (r->current + 1) % r->count;
	r->unavailable = 0;
	if (++r->failures % r->count == 0) {
		wait = r->backoff_ms;
		r->backoff_ms = MIN(r->backoff_ms * 2, r->backoff_max_ms);
	}
	return wait;
}

/* Reads and the connection's own requests say nothing about the store. */
static bool is_write(const char *request)
{
	static const char *const reads[] = { "auth ", "list ", "show ", "watch " };

	for (size_t i = 0; i < G_N_ELEMENTS(reads); i++)
		if (!strncmp(request, reads[i], strlen(reads[i])))
			return false;
	return true;
}

static bool about_backend(const char *request)
{
	return !strcmp(request, "add backend") || !strcmp(request, "heartbeat backend");
}

bool rotation_answer(struct rotation *r, const char *request, bool ok, enum proto_error error)
{
	if (ok || error != PROTO_UNAVAILABLE) {
		r->unavailable = 0;
		if (ok && is_write(request))
			worked(r);
		return false;
	}
	return about_backend(request) || ++r->unavailable >= ROTATION_UNAVAILABLE_MAX;
}

__u32 rotation_patience_ms(__u32 heartbeat_ms)
{
	return heartbeat_ms / 2;
}

__u32 rotation_backoff_max_ms(__u32 heartbeat_ms)
{
	return CLAMP(heartbeat_ms / 6, LINK_BACKOFF_MIN_MS, LINK_BACKOFF_MAX_MS);
}
