// SPDX-License-Identifier: MIT
/* The --wait loop of a drain (wait.h). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "progress.h"
#include "run.h"
#include "wait.h"

struct waiter {
	const struct ctl_invocation *inv;
	bool backend;                      /* waiting for a backend, else a container */
	char request[PROTO_LINE_MAX + 1]; /* the poll */
	__u64 deadline_ms;                 /* ctl_now_ms() clock; 0: unknown */
	bool told;                         /* deadline_ms came from tetherd */
	__u64 next_report_ms;
	struct ctl_progress progress;
	FILE *err;
};

enum poll_result {
	POLL_GONE,    /* the drain is over */
	POLL_LEFT,    /* work is left: poll again */
	POLL_OVERDUE, /* the deadline passed with work left */
	POLL_FAILED,  /* tetherd could not be asked, or refused */
};

static void build_poll_request(struct waiter *w)
{
	struct proto_writer pw;

	proto_writer_init(&pw);
	if (w->backend) {
		proto_request_begin(&pw, "list", "container");
		proto_record_str(&pw, "backend", w->inv->target);
	} else {
		proto_request_begin(&pw, "show", "container");
		proto_record_str(&pw, "container", w->inv->target);
	}
	proto_record_end(&pw);
	/* The target passed ctl_parse_args' checks, so this cannot fail. */
	snprintf(w->request, sizeof(w->request), "%s", pw.failed ? "" : pw.data);
	proto_writer_free(&pw);
}

static enum poll_result poll_once(struct waiter *w, struct ctl_answer *answer)
{
	char message[PROTO_LINE_MAX];

	if (ctl_call(w->inv->socket_path, w->request, answer, message, sizeof(message))) {
		fprintf(w->err, "tetherctl: %s\n", message);
		return POLL_FAILED;
	}
	if (!answer->ok && answer->error == PROTO_NOT_FOUND)
		return POLL_GONE;
	if (!answer->ok) {
		fprintf(w->err, "tetherctl: %s: %s\n", proto_error_code(answer->error),
			answer->message);
		return POLL_FAILED;
	}
	return answer->count ? POLL_LEFT : POLL_GONE;
}

/* Learns the deadline and the packet counter from what tetherd said. */
static void update(struct waiter *w, const struct proto_request *records, size_t count,
		   __u64 asked_at_ms)
{
	long long told = ctl_progress_deadline_in(records, count);
	__u64 packets;

	/* tetherd's word on the deadline wins over our --deadline estimate.
	 * It counted from after we asked, so asked_at + told is never later
	 * than the real deadline; and once passed, tetherd says 0, which must
	 * not move the deadline along with each poll. */
	if (told >= 0 && (!w->told || asked_at_ms + told < w->deadline_ms)) {
		w->deadline_ms = asked_at_ms + told;
		w->told = true;
	}
	if (!w->backend && proto_get(&records[0], "packets") &&
	    !proto_get_u64(&records[0], "packets", 1, &packets, NULL, 0))
		ctl_progress_add(&w->progress, asked_at_ms, packets);
}

static void describe(const struct waiter *w, const struct proto_request *records, size_t count,
		     __u64 now_ms, GString *line)
{
	long long deadline_in = -1;

	if (w->deadline_ms)
		deadline_in = w->deadline_ms > now_ms ? (long long)(w->deadline_ms - now_ms) : 0;
	if (w->backend)
		ctl_progress_backend(line, w->inv->target, records, count, deadline_in);
	else
		ctl_progress_container(line, w->inv->target, &records[0],
				       ctl_progress_rate(&w->progress), deadline_in);
}

/* Work is left: report it, and tell whether the deadline has passed. */
static enum poll_result observe(struct waiter *w, const struct ctl_answer *answer,
				__u64 asked_at_ms)
{
	const struct proto_request *records = answer->records;
	size_t count = answer->count;
	g_autoptr(GString) line = g_string_new(NULL);
	__u64 now = ctl_now_ms();

	update(w, records, count, asked_at_ms);
	describe(w, records, count, now, line);
	if (w->deadline_ms && asked_at_ms >= w->deadline_ms + CTL_WAIT_GRACE_MS) {
		fprintf(w->err, "tetherctl: the deadline passed with work left: %s\n", line->str);
		return POLL_OVERDUE;
	}
	if (now >= w->next_report_ms) {
		fprintf(w->err, "%s\n", line->str);
		fflush(w->err);
		w->next_report_ms = now + CTL_WAIT_REPORT_MS;
	}
	return POLL_LEFT;
}

static void sleep_until(__u64 at_ms)
{
	struct timespec ts = { .tv_sec = at_ms / 1000, .tv_nsec = at_ms % 1000 * 1000000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* The next poll: a period on, or at the end of the grace after the
 * deadline, so that a drain still busy then is seen there. */
static __u64 next_poll_ms(const struct waiter *w, __u64 asked_at_ms)
{
	__u64 next = asked_at_ms + CTL_WAIT_POLL_MS;
	__u64 overdue_at = w->deadline_ms + CTL_WAIT_GRACE_MS;

	if (w->deadline_ms && overdue_at > asked_at_ms && overdue_at < next)
		next = overdue_at;
	return next;
}

int ctl_wait_drain(const struct ctl_invocation *inv, __u64 requested_at_ms, FILE *err)
{
	struct waiter w = {
		.inv = inv,
		.backend = inv->command->wait == CTL_WAIT_BACKEND,
		.deadline_ms = inv->deadline_ms ? requested_at_ms + inv->deadline_ms : 0,
		.err = err,
	};
	enum poll_result result;

	build_poll_request(&w);
	do {
		struct ctl_answer answer;
		__u64 asked_at = ctl_now_ms();

		ctl_answer_init(&answer);
		result = poll_once(&w, &answer);
		if (result == POLL_LEFT)
			result = observe(&w, &answer, asked_at);
		ctl_answer_free(&answer);
		if (result == POLL_LEFT)
			sleep_until(next_poll_ms(&w, asked_at));
	} while (result == POLL_LEFT);

	if (result != POLL_GONE)
		return CTL_EXIT_FAILED;
	if (w.backend)
		fprintf(err, "backend %s has no container left: the drain is over\n", inv->target);
	else
		fprintf(err, "container %s is gone: the drain is over\n", inv->target);
	return CTL_EXIT_OK;
}
