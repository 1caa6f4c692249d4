// SPDX-License-Identifier: MIT
/* Container processes, from the agent's side (process.h). */
#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "container_main.h"
#include "dispatch.h"
#include "log.h"

#define STOP_TIMEOUT_MS 2000     /* from SIGTERM to SIGKILL */
#define REPLACE_DELAY_MS 1000    /* a died container's replacement waits this */
#define CHANNEL_BUFFER (1 << 20) /* bytes of requests queued to a container */

static bool is_running(const struct container *c)
{
	return c->process == PROCESS_COLD || c->process == PROCESS_READY;
}

static void close_channel(struct agent *agent, struct container *c)
{
	if (c->fd < 0)
		return;
	loop_remove(agent->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	dispatch_abandon(agent, c);
}

/* The process ended (reaped) or broke its channel without being asked to:
 * its work is lost, tetherd deletes it, and a new container takes its place. */
static void died(struct agent *agent, struct container *c, const char *why, bool reaped)
{
	bool replace = !c->draining && !agent->stopping;

	agent_log("%s: process %d %s%s", container_label(c), (int)c->pid, why,
		  replace ? "; replacing it in 1 s" : "");
	close_channel(agent, c);
	if (reaped) {
		c->process = PROCESS_EXITED;
	} else {
		kill(c->pid, SIGKILL);
		c->process = PROCESS_STOPPING; /* until reaped */
		c->kill_at_ms = now_ms() + STOP_TIMEOUT_MS;
	}
	c->dead = true;
	container_drain(c, now_ms());
	if (replace)
		container_create(agent, c->function_id, now_ms() + REPLACE_DELAY_MS);
}

static void on_message(struct agent *agent, struct container *c, const __u8 *message,
		       size_t len)
{
	struct agent_frame frame;
	const void *payload;

	if (agent_frame_decode(message, len, &frame, &payload)) {
		died(agent, c, "sent a message the agent cannot read", false);
		return;
	}
	if (frame.type == AGENT_FRAME_READY && c->process == PROCESS_COLD) {
		c->process = PROCESS_READY;
		agent_log("%s: process %d warm after %llu ms", container_label(c), (int)c->pid,
			  (unsigned long long)(now_ms() - c->started_ms));
	} else if (frame.type == AGENT_FRAME_RESULT) {
		dispatch_result(agent, c, frame.id, payload, frame.length);
	}
}

static void on_channel(void *ctx, int fd, uint32_t events)
{
	static __u8 message[AGENT_FRAME_MAX];
	struct container *c = ctx;
	struct agent *agent = c->agent;

	(void)events;
	/* A bounded batch, so one busy container does not starve the rest. */
	for (int i = 0; i < 64 && c->fd == fd; i++) {
		ssize_t got = recv(fd, message, sizeof(message), MSG_DONTWAIT);

		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (got <= 0) {
			/* It is exiting, or broke its channel: the reaper says how it ended. */
			close_channel(agent, c);
			kill(c->pid, SIGKILL);
			return;
		}
		on_message(agent, c, message, got);
	}
}

int process_start(struct agent *agent, struct container *c)
{
	struct container_spec spec = {
		.name = c->name,
		.handler = agent_handler_find(agent_function_handler(&agent->options, c->function_id)),
		.cold_start_ms = agent->options.cold_start_ms,
		.agent_pid = getpid(),
	};
	int pair[2], size = CHANNEL_BUFFER;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair)) {
		agent_log("%s: cannot make its channel: %s", container_label(c), strerror(errno));
		return -errno;
	}
	setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	pid_t pid = fork();

	if (pid == 0) {
		close(pair[0]);
		container_main(pair[1], &spec);
	}
	close(pair[1]);
	if (pid < 0 || loop_add(agent->loop, pair[0], EPOLLIN, on_channel, c)) {
		int err = pid < 0 ? errno : ENOMEM;

		agent_log("%s: cannot start its process: %s", container_label(c), strerror(err));
		close(pair[0]);
		if (pid > 0)
			kill(pid, SIGKILL); /* reaped by process_reap */
		return -err;
	}
	c->pid = pid;
	c->fd = pair[0];
	c->process = PROCESS_COLD;
	c->started_ms = now_ms();
	agent_log("%s: process %d started (handler %s), warm in %u ms", container_label(c),
		  (int)pid, spec.handler->name, spec.cold_start_ms);
	return 0;
}

void process_stop(struct agent *agent, struct container *c)
{
	if (!is_running(c))
		return;
	agent_log("%s: stopping process %d", container_label(c), (int)c->pid);
	close_channel(agent, c);
	kill(c->pid, SIGTERM);
	c->process = PROCESS_STOPPING;
	c->kill_at_ms = now_ms() + STOP_TIMEOUT_MS;
}

static void describe_status(int status, char *out, size_t size)
{
	if (WIFEXITED(status))
		snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, size, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(out, size, "ended");
}

void process_reap(struct agent *agent)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct container *c = container_by_pid(agent, pid);
		char how[96];

		if (!c)
			continue;
		describe_status(status, how, sizeof(how));
		if (is_running(c)) {
			died(agent, c, how, true);
			continue;
		}
		agent_log("%s: process %d stopped", container_label(c), (int)pid);
		c->process = PROCESS_EXITED;
	}
}

void process_tick(struct agent *agent, __u64 now)
{
	for (guint i = 0; i < agent->containers->len; i++) {
		struct container *c = g_ptr_array_index(agent->containers, i);

		if (c->process == PROCESS_STOPPING && now >= c->kill_at_ms) {
			agent_log("%s: process %d did not stop within %d ms; killing it",
				  container_label(c), (int)c->pid, STOP_TIMEOUT_MS);
			kill(c->pid, SIGKILL);
			c->kill_at_ms = UINT64_MAX;
		}
	}
}

void process_kill_all(struct agent *agent)
{
	for (guint i = 0; i < agent->containers->len; i++) {
		struct container *c = g_ptr_array_index(agent->containers, i);

		if (c->process == PROCESS_NONE || c->process == PROCESS_EXITED)
			continue;
		close_channel(agent, c);
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		c->process = PROCESS_EXITED;
	}
}
