// SPDX-License-Identifier: MIT
/* Signals and leaving (shutdown.h). */
#include "shutdown.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "containers.h"
#include "log.h"
#include "process.h"

/* After the drain deadline, how long tetherd may take to hear the rest. */
#define STOP_GRACE_MS 5000

static void begin(struct agent *agent, const char *signal_name)
{
	__u64 now = now_ms();

	agent->stopping = true;
	agent->stop_deadline_ms = now + agent->options.drain_ms + STOP_GRACE_MS;
	agent_log("%s: draining %u containers within %u ms, then leaving", signal_name,
		  agent->containers->len, agent->options.drain_ms);
	for (guint i = 0; i < agent->containers->len; i++)
		container_drain(g_ptr_array_index(agent->containers, i),
				now + agent->options.drain_ms);
}

static void hurry(struct agent *agent, const char *signal_name)
{
	agent_log("%s again: not waiting for work in flight", signal_name);
	agent->hurry = true;
}

static void on_signal(void *ctx, int fd, uint32_t events)
{
	struct agent *agent = ctx;
	struct signalfd_siginfo info;

	(void)events;
	while (read(fd, &info, sizeof(info)) == sizeof(info)) {
		const char *name = info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";

		if (info.ssi_signo == SIGCHLD)
			process_reap(agent);
		else if (!agent->stopping)
			begin(agent, name);
		else
			hurry(agent, name);
	}
}

int signals_open(struct agent *agent)
{
	sigset_t mask;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	agent->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (agent->signal_fd < 0)
		return -errno;
	return loop_add(agent->loop, agent->signal_fd, EPOLLIN, on_signal, agent);
}

void shutdown_abort(struct agent *agent, const char *why)
{
	__u32 running = 0;

	for (guint i = 0; i < agent->containers->len; i++) {
		const struct container *c = g_ptr_array_index(agent->containers, i);

		running += c->process != PROCESS_NONE && c->process != PROCESS_EXITED;
	}
	agent_log("%s; stopping %u container processes and exiting", why, running);
	process_kill_all(agent);
	agent->finished = true;
	agent->exit_status = 1;
}

void shutdown_tick(struct agent *agent, __u64 now)
{
	if (!agent->stopping || agent->finished)
		return;
	if (agent->session == SESSION_REMOVED) {
		agent_log("done; exiting");
		agent->finished = true;
		agent->exit_status = 0;
	} else if (!agent->registered_once && agent->session == SESSION_OFFLINE &&
		   agent->containers->len == 0) {
		agent_log("never registered with tetherd at %s; exiting",
			  agent->control.endpoint->text);
		agent->finished = true;
		agent->exit_status = 0;
	} else if (now >= agent->stop_deadline_ms) {
		shutdown_abort(agent, "tetherd did not confirm the drain in time");
	}
}
