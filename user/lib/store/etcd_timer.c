// SPDX-License-Identifier: MIT
/* The client's timers: curl's, each call's pause between rounds of endpoints,
 * each lease's next keepalive. One timerfd on the loop serves them all, set
 * to the earliest one due, so that a call in backoff costs no descriptor. */
#include "etcd_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/core.h"

struct etcd_timers {
	struct loop *loop;
	int fd;
	GSequence *pending; /* of struct etcd_timer, soonest first */
	uint64_t armed;     /* for first-armed-first-fired among equal times */
};

struct etcd_timer {
	struct etcd_timers *timers;
	GSequenceIter *place; /* in pending; NULL when not armed */
	int64_t due;          /* monotonic µs */
	uint64_t order;
	etcd_timer_fn fire;
	void *ctx;
};

static int by_due(gconstpointer a, gconstpointer b, gpointer unused)
{
	const struct etcd_timer *x = a, *y = b;

	(void)unused;
	if (x->due != y->due)
		return x->due < y->due ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Sets the timerfd to the soonest timer (g_get_monotonic_time is
 * CLOCK_MONOTONIC), or disarms it. */
static void set_fd(struct etcd_timers *timers)
{
	struct itimerspec spec = { 0 };
	GSequenceIter *first = g_sequence_get_begin_iter(timers->pending);

	if (!g_sequence_iter_is_end(first)) {
		int64_t due = ((struct etcd_timer *)g_sequence_get(first))->due;

		spec.it_value.tv_sec = due / G_USEC_PER_SEC;
		spec.it_value.tv_nsec = (due % G_USEC_PER_SEC) * 1000;
		if (!spec.it_value.tv_sec && !spec.it_value.tv_nsec)
			spec.it_value.tv_nsec = 1; /* zero would disarm */
	}
	timerfd_settime(timers->fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

static void on_expiry(void *ctx, int fd, uint32_t events)
{
	struct etcd_timers *timers = ctx;
	uint64_t expirations;
	int64_t now = g_get_monotonic_time();

	(void)events;
	(void)!read(fd, &expirations, sizeof(expirations));
	for (;;) {
		GSequenceIter *first = g_sequence_get_begin_iter(timers->pending);

		if (g_sequence_iter_is_end(first))
			break;
		struct etcd_timer *timer = g_sequence_get(first);

		if (timer->due > now)
			break;
		/* Off the list before it runs: its callback may arm or free it. */
		g_sequence_remove(first);
		timer->place = NULL;
		timer->fire(timer->ctx);
	}
	set_fd(timers);
}

struct etcd_timers *etcd_timers_new(struct loop *loop, char *why, size_t why_size)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0) {
		g_snprintf(why, why_size, "timerfd_create: %s", g_strerror(errno));
		return NULL;
	}
	struct etcd_timers *timers = g_new0(struct etcd_timers, 1);

	timers->loop = loop;
	timers->fd = fd;
	timers->pending = g_sequence_new(NULL);
	int err = loop_add(loop, fd, EPOLLIN, on_expiry, timers);

	if (err) {
		g_snprintf(why, why_size, "cannot add a timerfd to the loop: %s", g_strerror(-err));
		etcd_timers_free(timers);
		return NULL;
	}
	return timers;
}

void etcd_timers_free(struct etcd_timers *timers)
{
	if (!timers)
		return;
	loop_remove(timers->loop, timers->fd);
	close(timers->fd);
	g_sequence_free(timers->pending);
	g_free(timers);
}

struct etcd_timer *etcd_timer_new(struct etcd_timers *timers, etcd_timer_fn fire, void *ctx)
{
	struct etcd_timer *timer = g_new0(struct etcd_timer, 1);

	timer->timers = timers;
	timer->fire = fire;
	timer->ctx = ctx;
	return timer;
}

void etcd_timer_disarm(struct etcd_timer *timer)
{
	if (!timer || !timer->place)
		return;
	g_sequence_remove(timer->place);
	timer->place = NULL;
	set_fd(timer->timers);
}

void etcd_timer_free(struct etcd_timer *timer)
{
	etcd_timer_disarm(timer);
	g_free(timer);
}

void etcd_timer_arm(struct etcd_timer *timer, int64_t delay_us)
{
	struct etcd_timers *timers = timer->timers;

	if (timer->place)
		g_sequence_remove(timer->place);
	timer->due = g_get_monotonic_time() + MAX(delay_us, 0);
	timer->order = timers->armed++;
	timer->place = g_sequence_insert_sorted(timers->pending, timer, by_due, NULL);
	set_fd(timers);
}
