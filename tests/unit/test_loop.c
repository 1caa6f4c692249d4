// SPDX-License-Identifier: MIT
/* Unit tests of the event loop (user/lib/core/loop.c): the events of one
 * epoll_wait reach the watch they were for, even when a callback earlier in
 * the same batch closed a descriptor and its number was taken again. That
 * happened in tetherd: curl closed a socket, a control connection was
 * accepted on the same number, and the closed socket's error event, later in
 * the batch, closed the new connection unread (the client: "Connection reset
 * by peer"). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"

struct batch {
	struct loop *loop;
	int fds[2];         /* both readable: one epoll_wait returns both */
	int first_run;      /* the index of the callback that ran first */
	int reused_fd;      /* the number the first callback took again */
	int reused_calls;   /* callbacks of the watch on the reused number */
	int original_calls; /* callbacks of the two original watches */
};

static void on_reused(void *ctx, int fd, uint32_t events)
{
	struct batch *batch = ctx;

	(void)fd;
	(void)events;
	batch->reused_calls++;
}

/* The first of the two to run closes the other and opens a descriptor on its
 * number, not readable: no event of this batch is for it. */
static void on_original(void *ctx, int fd, uint32_t events)
{
	struct batch *batch = ctx;
	int index = fd == batch->fds[0] ? 0 : 1;
	int other = batch->fds[!index];
	eventfd_t value;

	(void)events;
	assert_int_equal(eventfd_read(fd, &value), 0);
	batch->original_calls++;
	if (batch->first_run >= 0)
		return;
	batch->first_run = index;
	loop_remove(batch->loop, other);
	close(other);
	batch->reused_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_int_equal(batch->reused_fd, other); /* the lowest free number */
	assert_int_equal(loop_add(batch->loop, batch->reused_fd, EPOLLIN, on_reused, batch), 0);
}

static void test_stale_event_not_delivered_to_reused_number(void **state)
{
	struct batch batch = { .first_run = -1, .reused_fd = -1 };

	(void)state;
	batch.loop = loop_new();
	assert_non_null(batch.loop);
	for (int i = 0; i < 2; i++) {
		batch.fds[i] = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(batch.fds[i] >= 0);
		assert_int_equal(loop_add(batch.loop, batch.fds[i], EPOLLIN, on_original, &batch), 0);
	}
	assert_int_equal(loop_run_once(batch.loop, 1000), 2);
	assert_true(batch.first_run >= 0);
	assert_int_equal(batch.original_calls, 1); /* the closed one's event: dropped */
	assert_int_equal(batch.reused_calls, 0);    /* and never given to the new watch */

	/* The new watch works: made readable, it is called. */
	assert_int_equal(eventfd_write(batch.reused_fd, 1), 0);
	assert_int_equal(loop_run_once(batch.loop, 1000), 1);
	assert_int_equal(batch.reused_calls, 1);

	close(batch.fds[batch.first_run]);
	close(batch.reused_fd);
	loop_free(batch.loop);
}

static void count_call(void *ctx, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	(*(int *)ctx)++;
}

/* A descriptor closed without loop_remove (curl may do that) and its number
 * taken again: loop_add takes the new one, and only the new one is called. */
static void test_add_over_a_number_closed_unremoved(void **state)
{
	struct loop *loop = loop_new();
	int old_calls = 0, new_calls = 0;
	int fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);

	(void)state;
	assert_non_null(loop);
	assert_int_equal(loop_add(loop, fd, EPOLLIN, count_call, &old_calls), 0);
	close(fd); /* the kernel drops it from the epoll set; the loop does not know */
	int again = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_int_equal(again, fd);
	assert_int_equal(loop_add(loop, again, EPOLLIN, count_call, &new_calls), 0);
	assert_int_equal(loop_run_once(loop, 1000), 1);
	assert_int_equal(old_calls, 0);
	assert_int_equal(new_calls, 1);
	loop_remove(loop, again);
	close(again);
	loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stale_event_not_delivered_to_reused_number),
		cmocka_unit_test(test_add_over_a_number_closed_unremoved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
