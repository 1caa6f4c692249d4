// SPDX-License-Identifier: MIT
/* Serving requests (dispatch.h). */
#include "dispatch.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "completion.h"
#include "frame.h"
#include "wire.h"
#include "core/core.h"
#include "log.h"

#define IN_FLIGHT_MAX 1024     /* per container; more is OVERLOADED */
#define RECEIVE_BATCH 64       /* datagrams per wakeup of one socket */
#define SOCKET_BUFFER (1 << 20)

/* A request handed to a container, waiting for its result. */
struct dispatched {
	struct container *c;
	int fd; /* the VIP's socket: the reply leaves from the VIP */
	struct sockaddr_storage client;
	socklen_t client_len;
	struct tether_hdr header; /* as received */
};

static __u8 datagram[65536];
static __u8 message[AGENT_FRAME_MAX];

static void send_reply(int fd, const struct sockaddr_storage *client, socklen_t client_len,
		       const struct tether_hdr *request, enum tether_status status,
		       const __u8 *token, const void *payload, size_t len)
{
	static __u8 reply[TETHER_HDR_LEN + AGENT_PAYLOAD_MAX];
	size_t reply_len = agent_build_reply(request, status, token, payload, len, reply,
					     sizeof(reply));

	if (reply_len)
		sendto(fd, reply, reply_len, MSG_DONTWAIT, (const struct sockaddr *)client,
		       client_len);
}

static bool serving(const struct container *c)
{
	return (c->process == PROCESS_COLD || c->process == PROCESS_READY) && c->fd >= 0 &&
	       c->reg != REG_GONE && !c->dead &&
	       !(c->draining && now_ms() >= c->drain_deadline_ms);
}

/* The token check, with the agent's container of the stamped slot. */
static enum tether_status verdict(struct agent *agent, const struct tether_hdr *hdr,
				  struct container **out)
{
	struct container *c = container_by_slot(agent, agent_token_slot(hdr));
	struct agent_slot view;

	*out = c;
	if (c) {
		view.slot = c->slot;
		memcpy(view.token, c->token, sizeof(view.token));
		view.function_id = c->function_id;
		view.serving = serving(c);
	}
	return agent_token_verdict(hdr, c ? &view : NULL);
}

/* Hands the request to the container: OK, or why it cannot run there. */
static enum tether_status run_in(struct agent *agent, struct container *c,
				 struct dispatched *request, const void *payload, size_t len)
{
	struct agent_frame frame = {
		.type = AGENT_FRAME_REQUEST,
		.slot = c->slot,
		.id = ++agent->next_request_id,
		.function_id = c->function_id,
		.routing_key = be64toh(request->header.routing_key),
		.has_key = !!(request->header.flags & TETHER_F_KEY),
	};
	size_t message_len = agent_frame_encode(&frame, payload, len, message, sizeof(message));
	int err;

	if (c->in_flight >= IN_FLIGHT_MAX)
		return TETHER_STATUS_OVERLOADED;
	if (c->limit && c->in_flight >= c->limit) {
		/* The router counts requests in flight and never sends one more:
		 * this one is a router bug, refused so the limit holds. */
		agent->limit_violations++;
		agent_log("ROUTER BUG: %s received a request with %u in flight, its limit %u "
			  "(%llu such requests so far); answered OVERLOADED",
			  container_label(c), c->in_flight, c->limit,
			  (unsigned long long)agent->limit_violations);
		return TETHER_STATUS_OVERLOADED;
	}
	err = message_len ? container_send(c, message, message_len) : -EMSGSIZE;
	if (err == -EAGAIN || err == -ENOBUFS)
		return TETHER_STATUS_OVERLOADED;
	if (err)
		return TETHER_STATUS_CONTAINER_GONE;
	request->c = c;
	c->in_flight++;
	g_hash_table_insert(agent->requests, g_memdup2(&frame.id, sizeof(frame.id)),
			    g_memdup2(request, sizeof(*request)));
	return TETHER_STATUS_OK;
}

static void handle_datagram(struct agent *agent, int fd, size_t len,
			    const struct sockaddr_storage *client, socklen_t client_len)
{
	struct dispatched request = { .fd = fd, .client = *client, .client_len = client_len };
	int status = agent_request_check(datagram, len, &request.header);
	struct container *c = NULL;

	if (status == AGENT_IGNORE)
		return;
	if (status == TETHER_STATUS_OK)
		status = verdict(agent, &request.header, &c);
	if (status == TETHER_STATUS_OK) {
		c->received++; /* the router counted it: it counts in the DONEs */
		status = run_in(agent, c, &request, datagram + TETHER_HDR_LEN,
				len - TETHER_HDR_LEN);
		if (status != TETHER_STATUS_OK)
			completion_done(agent, c, request.header.request_id, status);
	}
	if (status != TETHER_STATUS_OK)
		send_reply(fd, client, client_len, &request.header, status, NULL, NULL, 0);
}

static void on_service(void *ctx, int fd, uint32_t events)
{
	struct agent *agent = ctx;

	(void)events;
	for (int i = 0; i < RECEIVE_BATCH; i++) {
		struct sockaddr_storage client;
		socklen_t client_len = sizeof(client);
		ssize_t got = recvfrom(fd, datagram, sizeof(datagram), MSG_DONTWAIT,
				       (struct sockaddr *)&client, &client_len);

		if (got < 0)
			return; /* EAGAIN: all read */
		handle_datagram(agent, fd, got, &client, client_len);
	}
}

void dispatch_result(struct agent *agent, struct container *c, __u64 id, const void *payload,
		     size_t len)
{
	struct dispatched *request = g_hash_table_lookup(agent->requests, &id);

	if (!request || request->c != c)
		return;
	send_reply(request->fd, &request->client, request->client_len, &request->header,
		   TETHER_STATUS_OK, c->token, payload, len);
	c->in_flight--;
	completion_done(agent, c, request->header.request_id, TETHER_STATUS_OK);
	g_hash_table_remove(agent->requests, &id);
}

void dispatch_abandon(struct agent *agent, struct container *c)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, agent->requests);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct dispatched *request = value;

		if (request->c != c)
			continue;
		send_reply(request->fd, &request->client, request->client_len, &request->header,
			   TETHER_STATUS_CONTAINER_GONE, NULL, NULL, 0);
		completion_done(agent, c, request->header.request_id,
				TETHER_STATUS_CONTAINER_GONE);
		g_hash_table_iter_remove(&iter);
	}
	c->in_flight = 0;
}

/* An AF_INET or AF_INET6 UDP socket bound to the VIP. */
static int bind_vip(const struct agent_vip *vip)
{
	struct sockaddr_storage address = {};
	struct sockaddr_in *v4 = (struct sockaddr_in *)&address;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&address;
	socklen_t len;
	int family = addr_is_v4mapped(vip->addr) ? AF_INET : AF_INET6;
	int one = 1, size = SOCKET_BUFFER;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (family == AF_INET) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(vip->port);
		memcpy(&v4->sin_addr, vip->addr + 12, 4);
		len = sizeof(*v4);
	} else {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(vip->port);
		memcpy(&v6->sin6_addr, vip->addr, 16);
		len = sizeof(*v6);
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&address, len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int open_service(struct agent *agent, const struct agent_vip *vip)
{
	struct service *service = &agent->services[agent->service_count];
	int added = vip_make_local(vip->addr);

	if (added < 0) {
		agent_log("cannot add VIP %s to lo: %s", vip->text, strerror(-added));
		return -1;
	}
	service->vip = vip;
	service->vip_added = added == 0;
	service->fd = bind_vip(vip);
	agent->service_count++;
	if (service->fd < 0) {
		agent_log("cannot serve on %s: %s", vip->text, strerror(-service->fd));
		return -1;
	}
	if (loop_add(agent->loop, service->fd, EPOLLIN, on_service, agent)) {
		agent_log("cannot watch the socket of %s", vip->text);
		return -1;
	}
	agent_log("serving %s (VIP %s lo)", vip->text,
		  service->vip_added ? "added to" : "already on");
	return 0;
}

int dispatch_open(struct agent *agent)
{
	for (int i = 0; i < agent->options.vip_count; i++)
		if (open_service(agent, &agent->options.vips[i]))
			return -1;
	return 0;
}

void dispatch_close(struct agent *agent)
{
	for (int i = 0; i < agent->service_count; i++) {
		struct service *service = &agent->services[i];

		if (service->fd >= 0) {
			loop_remove(agent->loop, service->fd);
			close(service->fd);
		}
		/* Only the first service of an address added it: it alone removes it. */
		if (service->vip_added)
			vip_remove_local(service->vip->addr);
	}
	agent->service_count = 0;
}
