// SPDX-License-Identifier: MIT
#include "core.h"

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Events carry their watch, not the descriptor's number: a callback may
 * close a descriptor whose event is still ahead in the same batch, and its
 * number may be taken again (an accepted connection) before that event is
 * handled. A removed watch is marked and freed after the batch, so the stale
 * event finds it dead instead of reaching the new one. */
struct watch {
	int fd;
	bool removed;
	loop_callback callback;
	void *ctx;
};

struct loop {
	int epoll_fd;
	GHashTable *watches; /* fd -> struct watch, the live ones */
	GPtrArray *removed;  /* watches removed since the batch began */
	int depth;           /* loop_run_once calls running (a callback may run one) */
};

struct loop *loop_new(void)
{
	struct loop *loop = g_new0(struct loop, 1);

	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epoll_fd < 0) {
		g_free(loop);
		return NULL;
	}
	loop->watches = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	loop->removed = g_ptr_array_new_with_free_func(g_free);
	return loop;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epoll_fd);
	g_hash_table_destroy(loop->watches);
	g_ptr_array_free(loop->removed, TRUE);
	g_free(loop);
}

/* The live watch of fd, if any, off the table and dead. */
static void retire(struct loop *loop, int fd)
{
	struct watch *watch;

	if (!g_hash_table_steal_extended(loop->watches, GINT_TO_POINTER(fd), NULL,
					 (gpointer *)&watch))
		return;
	watch->removed = true;
	g_ptr_array_add(loop->removed, watch);
}

int loop_add(struct loop *loop, int fd, uint32_t events, loop_callback callback, void *ctx)
{
	struct watch *watch = g_new(struct watch, 1);
	struct epoll_event event = { .events = events, .data.ptr = watch };

	*watch = (struct watch){ fd, false, callback, ctx };
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event)) {
		int err = -errno;

		g_free(watch);
		return err;
	}
	/* A watch left on this number: its descriptor was closed without
	 * loop_remove (the kernel dropped it from the set). */
	retire(loop, fd);
	g_hash_table_insert(loop->watches, GINT_TO_POINTER(fd), watch);
	return 0;
}

int loop_modify(struct loop *loop, int fd, uint32_t events)
{
	struct watch *watch = g_hash_table_lookup(loop->watches, GINT_TO_POINTER(fd));
	struct epoll_event event = { .events = events, .data.ptr = watch };

	if (!watch)
		return -ENOENT;
	return epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, fd, &event) ? -errno : 0;
}

void loop_remove(struct loop *loop, int fd)
{
	epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	retire(loop, fd);
}

int loop_run_once(struct loop *loop, int timeout_ms)
{
	struct epoll_event events[64];
	int ready = epoll_wait(loop->epoll_fd, events, 64, timeout_ms);

	if (ready < 0)
		return errno == EINTR ? 0 : -errno;
	loop->depth++;
	for (int i = 0; i < ready; i++) {
		struct watch *watch = events[i].data.ptr;

		if (!watch->removed)
			watch->callback(watch->ctx, watch->fd, events[i].events);
	}
	/* Freed once no batch, an outer one included, can hold their events. */
	if (--loop->depth == 0)
		g_ptr_array_set_size(loop->removed, 0);
	return ready;
}
