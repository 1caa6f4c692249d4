// SPDX-License-Identifier: MIT
/* The lifecycle: errors and events, requests, the tick, set-up. Backends,
 * containers, pools and adoption are in their own lifecycle_*.c. */
#include "lifecycle_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

enum proto_error lc_fail(struct lifecycle *lc, enum proto_error code, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vsnprintf(lc->error, sizeof(lc->error), format, args);
	va_end(args);
	return code;
}

enum proto_error lc_fail_kernel(struct lifecycle *lc, const char *what, int err)
{
	return lc_fail(lc, PROTO_INTERNAL, "%s: the kernel refused the map update: %s", what,
		       strerror(err < 0 ? -err : err));
}

const char *lifecycle_error(const struct lifecycle *lc)
{
	return lc->error;
}

__u64 lifecycle_now(const struct lifecycle *lc)
{
	return lc->config.now_ns(lc->config.clock_ctx);
}

const char *container_state_name(enum container_state state)
{
	switch (state) {
	case CONTAINER_STARTING: return "starting";
	case CONTAINER_WARM: return "warm";
	case CONTAINER_DRAINING: return "draining";
	case CONTAINER_GONE: return "gone";
	default: return "free";
	}
}

const char *backend_state_name(enum backend_state state)
{
	switch (state) {
	case BACKEND_UP: return "up";
	case BACKEND_DRAINING: return "draining";
	case BACKEND_DOWN: return "down";
	default: return "free";
	}
}

void lc_emit(struct lifecycle *lc, const char *format, ...)
{
	char line[256];
	va_list args;

	if (!lc->config.observer.event)
		return;
	va_start(args, format);
	vsnprintf(line, sizeof(line), format, args);
	va_end(args);
	lc->config.observer.event(lc->config.observer.ctx, line);
}


/* --- requests --- */

enum proto_error lc_execute(struct lifecycle *lc, const struct lc_request *r, __u32 *slot)
{
	struct tether_token token;
	__u32 id;

	switch (r->op) {
	case LC_BACKEND_ADD: {
		struct lc_backend_link link = {
			.encap = r->encap, .vni = r->vni, .iface = r->iface, .vlan = r->vlan,
		};
		__u8 mac[6];

		memcpy(mac, r->mac, 6);
		if (r->encap == BACKEND_VXLAN && !r->has_mac)
			tether_vxlan_default_mac(r->vni, mac);
		enum proto_error err = lc_backend_add_link(lc, r->backend, r->addr, mac, &link,
							   r->heartbeat_ms, &id);

		if (!err && r->has_functions)
			err = lc_backend_set_functions(lc, r->backend, &r->functions);
		return err ? err : lc_backend_set_liveness(lc, r->backend, r->alive_key);
	}
	case LC_BACKEND_SET_FUNCTIONS:
		return lc_backend_set_functions(lc, r->backend, &r->functions);
	case LC_BACKEND_HEARTBEAT: {
		enum proto_error err = lc_backend_heartbeat(lc, r->backend);

		return err ? err : lc_backend_set_liveness(lc, r->backend, r->alive_key);
	}
	case LC_BACKEND_DRAIN:
		return lc_backend_drain(lc, r->backend, r->deadline_ms);
	case LC_BACKEND_DEL:
		return lc_backend_del(lc, r->backend);
	case LC_CONTAINER_ADD: {
		lc->next_own_limit = r->concurrency;
		enum proto_error err = lc_container_add(lc, r->function_id, r->backend, r->name,
							r->state, slot, &token);

		lc->next_own_limit = 0;
		return err;
	}
	case LC_CONTAINER_UP:
		return lc_container_up(lc, r->slot);
	case LC_CONTAINER_DRAIN:
		return lc_container_drain(lc, r->slot, r->deadline_ms);
	case LC_CONTAINER_IDLE:
		return lc_container_idle(lc, r->slot);
	case LC_CONTAINER_DEL:
		return lc_container_del(lc, r->slot);
	case LC_FUNCTION_SET:
		return lc_function_set_limit(lc, r->function_id, r->concurrency);
	}
	return lc_fail(lc, PROTO_INTERNAL, "request %d is not a lifecycle request", r->op);
}

/* --- time --- */

void lifecycle_tick(struct lifecycle *lc)
{
	__u64 now = lifecycle_now(lc);

	lc_expire_drains(lc, now);
	lc_expire_backends(lc, now);
}

/* --- set-up (adoption: lifecycle_adopt.c) --- */

int lifecycle_init(struct lifecycle *lc, struct dataplane *dp,
		   const struct lifecycle_config *config)
{
	memset(lc, 0, sizeof(*lc));
	lc->dp = dp;
	lc->config = *config;
	if (!lc->config.max_containers || lc->config.max_containers > TETHER_MAX_CONTAINERS)
		lc->config.max_containers = TETHER_MAX_CONTAINERS;
	struct rlimit files;

	/* Kept pool tables may use half the fds: the rest is for connections
	 * and for building tables. */
	if (!getrlimit(RLIMIT_NOFILE, &files))
		lc->max_kept_tables = files.rlim_cur == RLIM_INFINITY || files.rlim_cur > UINT32_MAX
					      ? TETHER_MAX_FUNCTIONS
					      : (__u32)(files.rlim_cur / 2);
	lc->containers = calloc(TETHER_MAX_CONTAINERS, sizeof(*lc->containers));
	if (!lc->containers)
		return -ENOMEM;
	lc->functions = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, lc_function_free);
	lc->backend_names = g_hash_table_new(g_str_hash, g_str_equal);
	lc->container_names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	lc->limits = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	lc->own_limits = g_hash_table_new(g_direct_hash, g_direct_equal);
	return 0;
}

void lifecycle_free(struct lifecycle *lc)
{
	if (!lc->functions)
		return;
	g_hash_table_destroy(lc->functions);
	g_hash_table_destroy(lc->backend_names);
	g_hash_table_destroy(lc->container_names);
	g_hash_table_destroy(lc->limits);
	g_hash_table_destroy(lc->own_limits);
	free(lc->containers);
	lc->containers = NULL;
}

