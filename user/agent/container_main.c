// SPDX-License-Identifier: MIT
/* The container process (container_main.h). */
#define _GNU_SOURCE
#include "container_main.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

#define CHANNEL_FD 3

/* The agent blocks signals to read them from a signalfd; a container must
 * get its own SIGTERM. */
static void reset_signals(void)
{
	sigset_t all;

	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
}

/* The channel becomes fd 3 and every other descriptor of the agent (its
 * sockets, the other containers' channels) is closed. */
static int keep_only_channel(int channel)
{
	if (channel != CHANNEL_FD && dup2(channel, CHANNEL_FD) < 0)
		return -1;
	return close_range(CHANNEL_FD + 1, ~0U, 0);
}

static void sleep_ms(__u32 ms)
{
	struct timespec left = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&left, &left) && errno == EINTR)
		;
}

static int send_message(const struct agent_frame *frame, const void *payload, size_t length)
{
	static __u8 message[AGENT_FRAME_MAX];
	size_t len = agent_frame_encode(frame, payload, length, message, sizeof(message));

	return len && send(CHANNEL_FD, message, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static void run_request(const struct container_spec *spec, struct agent_memory *memory,
			const struct agent_frame *frame, const void *payload)
{
	static char answer[AGENT_PAYLOAD_MAX];
	struct agent_call call = {
		.slot = frame->slot,
		.name = spec->name,
		.function_id = frame->function_id,
		.routing_key = frame->routing_key,
		.has_key = frame->has_key,
		.payload = payload,
		.length = frame->length,
		.pid = getpid(),
	};
	struct agent_frame result = { .type = AGENT_FRAME_RESULT, .id = frame->id };
	size_t len = spec->handler->run(memory, &call, answer, sizeof(answer));

	if (send_message(&result, answer, len))
		_exit(1); /* the agent went away */
}

static void __attribute__((noreturn)) serve(const struct container_spec *spec)
{
	static __u8 message[AGENT_FRAME_MAX];
	struct agent_memory memory;

	agent_memory_init(&memory);
	for (;;) {
		ssize_t got = recv(CHANNEL_FD, message, sizeof(message), 0);
		struct agent_frame frame;
		const void *payload;

		if (got == 0)
			_exit(0); /* the agent closed the channel: stop */
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			_exit(1);
		if (agent_frame_decode(message, got, &frame, &payload) == 0 &&
		    frame.type == AGENT_FRAME_REQUEST)
			run_request(spec, &memory, &frame, payload);
	}
}

void container_main(int channel, const struct container_spec *spec)
{
	struct agent_frame ready = { .type = AGENT_FRAME_READY };
	char title[16];

	/* The container goes when the agent goes, even if it is killed. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != spec->agent_pid)
		_exit(1);
	reset_signals();
	if (keep_only_channel(channel)) {
		fprintf(stderr, "tether-agent: container %s: cannot set up its channel: %s\n",
			spec->name, strerror(errno));
		_exit(1);
	}
	snprintf(title, sizeof(title), "tc:%s", spec->name);
	prctl(PR_SET_NAME, title);
	sleep_ms(spec->cold_start_ms);
	if (send_message(&ready, NULL, 0))
		_exit(1);
	serve(spec);
}
