/* SPDX-License-Identifier: MIT */
/* What the parts of the lifecycle share and nothing outside it uses: the
 * lifecycle is one state machine kept in several files, one per concern
 * (lifecycle.c, lifecycle_pools.c, lifecycle_backends.c,
 * lifecycle_containers.c, lifecycle_adopt.c). */
#ifndef TETHERD_LIFECYCLE_INTERNAL_H
#define TETHERD_LIFECYCLE_INTERNAL_H

#include "lifecycle.h"

#define NS_PER_MS 1000000ull

/* errors and events (lifecycle.c) */
enum proto_error lc_fail(struct lifecycle *lc, enum proto_error code, const char *format, ...)
	__attribute__((format(printf, 3, 4)));
enum proto_error lc_fail_kernel(struct lifecycle *lc, const char *what, int err);
void lc_emit(struct lifecycle *lc, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* functions and their pools (lifecycle_pools.c) */
void lc_function_free(gpointer data);
struct function *lc_function_get_or_create(struct lifecycle *lc, __u64 function_id);
void lc_mark_pool_dirty(struct lifecycle *lc, __u64 function_id);
bool lc_backend_is_up(const struct lifecycle *lc, __u32 backend_id);
int lc_collect_members(struct lifecycle *lc, struct function *function,
		       struct maglev_member **members, size_t *n);
/* The function's table is now fd (-1: none kept). */
void lc_keep_table(struct lifecycle *lc, struct function *function, int fd);

/* backends (lifecycle_backends.c) */
bool lc_name_is_valid(const char *name);
/* The map gets the view's record, with restart_grace_ms more on the deadline
 * of a backend only tetherd's heartbeats keep up: while tetherd restarts its
 * agent cannot heartbeat, and the VM would drop out of routing for that. */
int lc_set_backend_record(struct lifecycle *lc, const struct backend *backend);
/* Backends past their heartbeat deadline, or drained, go down. */
void lc_expire_backends(struct lifecycle *lc, __u64 now);

/* containers (lifecycle_containers.c) */
char *lc_container_key(__u32 backend_id, const char *name);
enum proto_error lc_container_drain_until(struct lifecycle *lc, __u32 slot, __u64 deadline);
enum proto_error lc_container_gone(struct lifecycle *lc, __u32 slot, const char *why);
/* Draining containers past their deadline are gone. */
void lc_expire_drains(struct lifecycle *lc, __u64 now);

#endif
