// SPDX-License-Identifier: MIT
/* Completions and liveness (completion.h). */
#include "completion.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "log.h"
#include "wire.h"

/* A UDP socket of the family, bound to the VM's own address when it is of
 * that family: the router checks where DONE and ALIVE come from. */
static int open_socket(const struct agent *agent, int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	__u8 addr[16];

	if (fd < 0)
		return -1;
	if (!addr_parse(agent->options.addr, addr) &&
	    (addr_is_v4mapped(addr) ? AF_INET : AF_INET6) == family) {
		struct sockaddr_storage local = {};
		socklen_t len;

		if (family == AF_INET) {
			struct sockaddr_in *v4 = (struct sockaddr_in *)&local;

			v4->sin_family = AF_INET;
			memcpy(&v4->sin_addr, addr + 12, 4);
			len = sizeof(*v4);
		} else {
			struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&local;

			v6->sin6_family = AF_INET6;
			memcpy(&v6->sin6_addr, addr, 16);
			len = sizeof(*v6);
		}
		bind(fd, (struct sockaddr *)&local, len); /* else the kernel's choice */
	}
	return fd;
}

int completion_open(struct agent *agent)
{
	do {
		if (getrandom(agent->alive_key, sizeof(agent->alive_key), 0) !=
		    sizeof(agent->alive_key))
			return -1;
	} while (!agent->alive_key[0] && !agent->alive_key[1]);
	for (int i = 0; i < agent->options.completion_count; i++)
		agent->completions[agent->completion_count++] = agent->options.completions[i];
	agent->completion_fd4 = open_socket(agent, AF_INET);
	agent->completion_fd6 = open_socket(agent, AF_INET6);
	return 0;
}

void completion_close(struct agent *agent)
{
	if (agent->completion_fd4 >= 0)
		close(agent->completion_fd4);
	if (agent->completion_fd6 >= 0)
		close(agent->completion_fd6);
	agent->completion_fd4 = agent->completion_fd6 = -1;
	if (agent->limit_violations)
		agent_log("ROUTER BUG: %llu requests arrived beyond their container's limit",
			  (unsigned long long)agent->limit_violations);
}

void completion_learn(struct agent *agent, const char *text)
{
	struct agent_vip vip;

	if (agent_parse_vip(text, &vip))
		return;
	for (int i = 0; i < agent->completion_count; i++)
		if (!memcmp(agent->completions[i].addr, vip.addr, 16) &&
		    agent->completions[i].port == vip.port)
			return;
	if (agent->completion_count == AGENT_MAX_COMPLETIONS)
		return;
	agent->completions[agent->completion_count++] = vip;
	agent_log("sending DONE and ALIVE to %s too", vip.text);
}

static void send_all(struct agent *agent, const void *data, size_t len)
{
	for (int i = 0; i < agent->completion_count; i++) {
		const struct agent_vip *to = &agent->completions[i];
		struct sockaddr_storage address = {};
		socklen_t address_len;
		int fd;

		if (addr_is_v4mapped(to->addr)) {
			struct sockaddr_in *v4 = (struct sockaddr_in *)&address;

			v4->sin_family = AF_INET;
			v4->sin_port = htons(to->port);
			memcpy(&v4->sin_addr, to->addr + 12, 4);
			address_len = sizeof(*v4);
			fd = agent->completion_fd4;
		} else {
			struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&address;

			v6->sin6_family = AF_INET6;
			v6->sin6_port = htons(to->port);
			memcpy(&v6->sin6_addr, to->addr, 16);
			address_len = sizeof(*v6);
			fd = agent->completion_fd6;
		}
		if (fd >= 0)
			sendto(fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&address,
			       address_len);
	}
}

static void send_done(struct agent *agent, const struct container *c, __u64 request_id,
		      enum tether_status status)
{
	__u8 datagram[TETHER_HDR_LEN + TETHER_DONE_PAYLOAD_LEN];
	size_t len = agent_build_done(c->token, c->function_id, request_id, status, c->finished,
				      c->received, datagram, sizeof(datagram));

	if (len)
		send_all(agent, datagram, len);
}

void completion_done(struct agent *agent, struct container *c, __u64 request_id,
		     enum tether_status status)
{
	c->finished++;
	if (agent->completion_count && c->has_slot)
		send_done(agent, c, request_id, status);
}

void completion_tick(struct agent *agent, __u64 now)
{
	if (!agent->completion_count || now < agent->alive_due_ms)
		return;
	agent->alive_due_ms = now + agent->options.heartbeat_ms / 3;
	/* Refreshes for the containers the router has as ours (a leaving one
	 * may be gone there any moment: a DONE then counts as forged). */
	for (guint i = 0; i < agent->containers->len && !agent->stopping; i++) {
		const struct container *c = g_ptr_array_index(agent->containers, i);

		if (c->has_slot && (c->reg == REG_WARM || c->reg == REG_STARTING) && !c->draining)
			send_done(agent, c, 0, TETHER_STATUS_OK);
	}
	/* ALIVE once a router has our key, and not while leaving (a router
	 * without the key, or after del backend, counts them forged). Also
	 * while tetherd is unreachable: the XDP program takes them without it,
	 * so a restart longer than the deadline does not take the VM down. */
	if (agent->backend_id && agent->alive_registered && !agent->stopping) {
		__u8 datagram[TETHER_HDR_LEN];
		size_t len = agent_build_alive(agent->backend_id, ++agent->alive_seq,
					       agent->alive_key, datagram, sizeof(datagram));

		if (len)
			send_all(agent, datagram, len);
	}
}

/* key[0] then key[1], each big-endian (tetherd reads them back so). */
void completion_key_text(const struct agent *agent, char out[33])
{
	snprintf(out, 33, "%016llx%016llx", (unsigned long long)agent->alive_key[0],
		 (unsigned long long)agent->alive_key[1]);
}
