// SPDX-License-Identifier: MIT
#include "core.h"

#include <errno.h>
#include <glib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct watch {
	int fd;
	loop_callback callback;
	void *ctx;
};

struct loop {
	int epoll_fd;
	GHashTable *watches; /* fd -> struct watch */
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
	return loop;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epoll_fd);
	g_hash_table_destroy(loop->watches);
	g_free(loop);
}

int loop_add(struct loop *loop, int fd, uint32_t events, loop_callback callback, void *ctx)
{
	struct epoll_event event = { .events = events, .data.fd = fd };

	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event))
		return -errno;
	struct watch *watch = g_new(struct watch, 1);

	*watch = (struct watch){ fd, callback, ctx };
	g_hash_table_replace(loop->watches, GINT_TO_POINTER(fd), watch);
	return 0;
}

int loop_modify(struct loop *loop, int fd, uint32_t events)
{
	struct epoll_event event = { .events = events, .data.fd = fd };

	return epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, fd, &event) ? -errno : 0;
}

void loop_remove(struct loop *loop, int fd)
{
	epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	g_hash_table_remove(loop->watches, GINT_TO_POINTER(fd));
}

int loop_run_once(struct loop *loop, int timeout_ms)
{
	struct epoll_event events[64];
	int ready = epoll_wait(loop->epoll_fd, events, 64, timeout_ms);

	if (ready < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < ready; i++) {
		/* Looked up again each time: an earlier callback may have removed it. */
		struct watch *watch =
			g_hash_table_lookup(loop->watches, GINT_TO_POINTER(events[i].data.fd));

		if (watch)
			watch->callback(watch->ctx, watch->fd, events[i].events);
	}
	return ready;
}
