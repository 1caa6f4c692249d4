// SPDX-License-Identifier: MIT
/* The client side of the wire format (include/tether/client.h). */
#define _GNU_SOURCE
#include "tether/client.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#define NS_PER_SEC 1000000000ull
#define NS_PER_US 1000ull

/* ---- Requests ------------------------------------------------------------ */

void tether_request_header(const struct tether_request *request, struct tether_hdr *hdr)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = htons(TETHER_MAGIC);
	hdr->version = TETHER_VERSION;
	hdr->function_id = htobe64(request->function_id);
	hdr->request_id = htobe64(request->request_id);
	if (request->has_key) {
		hdr->flags |= TETHER_F_KEY;
		hdr->routing_key = htobe64(request->key);
	}
	if (request->has_token) {
		hdr->flags |= TETHER_F_TOKEN;
		memcpy(&hdr->container_token, request->token, TETHER_TOKEN_LEN);
	}
	if (request->strict)
		hdr->flags |= TETHER_F_STRICT;
}

static bool request_acceptable(const struct tether_request *request)
{
	return request->function_id && request->payload_len <= TETHER_PAYLOAD_MAX &&
	       (request->payload || !request->payload_len);
}

size_t tether_request_build(const struct tether_request *request, void *out, size_t cap)
{
	struct tether_hdr hdr;

	if (!request_acceptable(request) || cap < TETHER_HDR_LEN ||
	    cap - TETHER_HDR_LEN < request->payload_len)
		return 0;
	tether_request_header(request, &hdr);
	memcpy(out, &hdr, TETHER_HDR_LEN);
	if (request->payload_len)
		memcpy((uint8_t *)out + TETHER_HDR_LEN, request->payload, request->payload_len);
	return TETHER_HDR_LEN + request->payload_len;
}

uint64_t tether_random_id(void)
{
	uint64_t id;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = tether_clock_ns() ^ (uint64_t)getpid() << 40;
	return id & ~0ull >> 1;
}

/* ---- Replies ------------------------------------------------------------- */

enum tether_reply_verdict tether_reply_parse(const void *data, size_t len,
					     struct tether_reply *reply)
{
	struct tether_hdr hdr;

	if (len < TETHER_HDR_LEN)
		return TETHER_REPLY_SHORT;
	memcpy(&hdr, data, TETHER_HDR_LEN); /* data need not be aligned */
	if (ntohs(hdr.magic) != TETHER_MAGIC)
		return TETHER_REPLY_BAD_MAGIC;
	if (hdr.version != TETHER_VERSION)
		return TETHER_REPLY_BAD_VERSION;
	if (!(hdr.flags & TETHER_F_REPLY))
		return TETHER_REPLY_NOT_REPLY;
	if (hdr.status > TETHER_STATUS_OVERLOADED)
		return TETHER_REPLY_BAD_STATUS;
	if (hdr.status == TETHER_STATUS_OK && !(hdr.flags & TETHER_F_STAMPED))
		return TETHER_REPLY_UNSTAMPED;
	reply->flags = hdr.flags;
	reply->status = hdr.status;
	reply->function_id = be64toh(hdr.function_id);
	reply->routing_key = be64toh(hdr.routing_key);
	memcpy(reply->token, &hdr.container_token, TETHER_TOKEN_LEN);
	reply->request_id = be64toh(hdr.request_id);
	reply->payload = (const uint8_t *)data + TETHER_HDR_LEN;
	reply->payload_len = len - TETHER_HDR_LEN;
	return TETHER_REPLY_VALID;
}

enum tether_reply_verdict tether_reply_matches(const struct tether_reply *reply,
					       const struct tether_request *request)
{
	if (reply->request_id != request->request_id)
		return TETHER_REPLY_WRONG_ID;
	if (reply->function_id != request->function_id)
		return TETHER_REPLY_WRONG_FUNCTION;
	return TETHER_REPLY_VALID;
}

enum tether_reply_verdict tether_reply_check(const void *data, size_t len,
					     const struct tether_request *request,
					     struct tether_reply *reply)
{
	struct tether_reply parsed;
	enum tether_reply_verdict verdict = tether_reply_parse(data, len, &parsed);

	if (verdict == TETHER_REPLY_VALID)
		verdict = tether_reply_matches(&parsed, request);
	if (verdict == TETHER_REPLY_VALID)
		*reply = parsed;
	return verdict;
}

const char *tether_reply_verdict_name(enum tether_reply_verdict verdict)
{
	static const char *const names[] = {
		[TETHER_REPLY_VALID] = "valid",
		[TETHER_REPLY_SHORT] = "short",
		[TETHER_REPLY_BAD_MAGIC] = "bad_magic",
		[TETHER_REPLY_BAD_VERSION] = "bad_version",
		[TETHER_REPLY_NOT_REPLY] = "not_reply",
		[TETHER_REPLY_BAD_STATUS] = "bad_status",
		[TETHER_REPLY_UNSTAMPED] = "unstamped",
		[TETHER_REPLY_WRONG_ID] = "wrong_id",
		[TETHER_REPLY_WRONG_FUNCTION] = "wrong_function",
	};

	if ((size_t)verdict < sizeof(names) / sizeof(names[0]))
		return names[verdict];
	return "unknown";
}

const char *tether_status_name(int status)
{
	switch (status) {
	case TETHER_STATUS_OK: return "ok";
	case TETHER_STATUS_NO_CAPACITY: return "no_capacity";
	case TETHER_STATUS_CONTAINER_GONE: return "container_gone";
	case TETHER_STATUS_MALFORMED: return "malformed";
	case TETHER_STATUS_OVERLOADED: return "overloaded";
	default: return "unknown";
	}
}

/* ---- Tokens -------------------------------------------------------------- */

void tether_token_to_hex(const uint8_t token[TETHER_TOKEN_LEN],
			 char hex[TETHER_TOKEN_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < TETHER_TOKEN_LEN; i++) {
		hex[2 * i] = digits[token[i] >> 4];
		hex[2 * i + 1] = digits[token[i] & 0xf];
	}
	hex[TETHER_TOKEN_HEX_LEN] = '\0';
}

int tether_token_from_hex(const char *hex, uint8_t token[TETHER_TOKEN_LEN])
{
	uint8_t bytes[TETHER_TOKEN_LEN];

	if (strlen(hex) != TETHER_TOKEN_HEX_LEN)
		return -EINVAL;
	for (int i = 0; i < TETHER_TOKEN_LEN; i++) {
		int high = g_ascii_xdigit_value(hex[2 * i]), low = g_ascii_xdigit_value(hex[2 * i + 1]);

		if (high < 0 || low < 0)
			return -EINVAL;
		bytes[i] = high << 4 | low;
	}
	memcpy(token, bytes, TETHER_TOKEN_LEN);
	return 0;
}

uint32_t tether_token_slot(const uint8_t token[TETHER_TOKEN_LEN])
{
	return (uint32_t)token[0] << 24 | (uint32_t)token[1] << 16 | (uint32_t)token[2] << 8 |
	       token[3];
}

/* ---- Sessions ------------------------------------------------------------ */

void tether_session_init(struct tether_session *session)
{
	memset(session, 0, sizeof(*session));
}

void tether_session_set_token(struct tether_session *session,
			      const uint8_t token[TETHER_TOKEN_LEN])
{
	memcpy(session->token, token, TETHER_TOKEN_LEN);
	session->has_token = true;
}

void tether_session_present(const struct tether_session *session,
			    struct tether_request *request)
{
	if (!session->has_token)
		return;
	request->has_token = true;
	memcpy(request->token, session->token, TETHER_TOKEN_LEN);
}

void tether_session_learn(struct tether_session *session, const struct tether_reply *reply)
{
	if (reply->status == TETHER_STATUS_OK)
		tether_session_set_token(session, reply->token);
	else if (reply->status == TETHER_STATUS_CONTAINER_GONE)
		tether_session_init(session);
}

/* ---- The connection ------------------------------------------------------ */

static int parse_port(const char *text, uint16_t *port)
{
	char *end;
	unsigned long value;

	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno || *end || value == 0 || value > 65535)
		return -EINVAL;
	*port = value;
	return 0;
}

int tether_endpoint_parse(const char *text, struct sockaddr_storage *addr, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':');
	uint16_t port;

	if (!colon || (size_t)(colon - text) >= sizeof(host) || parse_port(colon + 1, &port))
		return -EINVAL;
	memcpy(host, text, colon - text);
	host[colon - text] = '\0';
	memset(addr, 0, sizeof(*addr));
	size_t hlen = strlen(host);

	if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;

		host[hlen - 1] = '\0';
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)addr;

	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	*len = sizeof(*sin);
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -EINVAL;
}

static int bind_source_port(int fd, int family, uint16_t port)
{
	struct sockaddr_storage from = { .ss_family = family };
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6)
					   : sizeof(struct sockaddr_in);
	int one = 1;

	/* The port sits at the same offset in both families. */
	((struct sockaddr_in *)&from)->sin_port = htons(port);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	return bind(fd, (struct sockaddr *)&from, len);
}

int tether_client_open(struct tether_client *client, const char *vip, uint16_t source_port)
{
	struct sockaddr_storage to;
	socklen_t to_len;

	client->fd = -1;
	if (tether_endpoint_parse(vip, &to, &to_len))
		return -EINVAL;
	int fd = socket(to.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if ((source_port && bind_source_port(fd, to.ss_family, source_port)) ||
	    connect(fd, (struct sockaddr *)&to, to_len)) {
		int error = errno;

		close(fd);
		return -error;
	}
	client->fd = fd;
	client->family = to.ss_family;
	return 0;
}

void tether_client_close(struct tether_client *client)
{
	if (client->fd >= 0)
		close(client->fd);
	client->fd = -1;
}

int tether_client_send(struct tether_client *client, const struct tether_request *request)
{
	struct tether_hdr hdr;

	if (!request_acceptable(request))
		return -EINVAL;
	tether_request_header(request, &hdr);
	/* Header and payload gathered: the payload is not copied. */
	struct iovec parts[2] = {
		{ .iov_base = &hdr, .iov_len = TETHER_HDR_LEN },
		{ .iov_base = (void *)request->payload, .iov_len = request->payload_len },
	};
	struct msghdr msg = { .msg_iov = parts, .msg_iovlen = request->payload_len ? 2 : 1 };

	return sendmsg(client->fd, &msg, 0) < 0 ? -errno : 0;
}

/* Microseconds until deadline_ns (0 once past); negative timeouts (no
 * limit) and 0 (no wait) stay as they are. */
static int64_t time_left_us(int64_t timeout_us, uint64_t deadline_ns)
{
	uint64_t now = tether_clock_ns();

	if (timeout_us <= 0)
		return timeout_us;
	return now < deadline_ns ? (int64_t)((deadline_ns - now) / NS_PER_US) : 0;
}

static uint64_t deadline_after(int64_t timeout_us)
{
	return tether_clock_ns() + (timeout_us > 0 ? (uint64_t)timeout_us * NS_PER_US : 0);
}

/* Waits until fd is readable, a signal came, or timeout_us (negative: no
 * limit) has passed; false only on timeout. */
static bool wait_readable(int fd, int64_t timeout_us)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec timeout = { .tv_sec = timeout_us / 1000000,
				    .tv_nsec = timeout_us % 1000000 * NS_PER_US };

	return ppoll(&pfd, 1, timeout_us < 0 ? NULL : &timeout, NULL) != 0;
}

ssize_t tether_client_recv(struct tether_client *client, void *buf, size_t cap,
			   int64_t timeout_us)
{
	uint64_t deadline = deadline_after(timeout_us);

	for (;;) {
		ssize_t len = recv(client->fd, buf, cap, 0);

		if (len >= 0)
			return len;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		/* Readable can still mean nothing to read (a datagram with a bad
		 * checksum is dropped at recv): wait for what is left. */
		int64_t left = time_left_us(timeout_us, deadline);

		if (left == 0 || !wait_readable(client->fd, left))
			return -ETIMEDOUT;
	}
}

int tether_client_call(struct tether_client *client, const struct tether_request *request,
		       struct tether_reply *reply, void *buf, size_t cap, int64_t timeout_us,
		       uint64_t *latency_us)
{
	uint64_t sent = tether_clock_ns();
	uint64_t deadline = deadline_after(timeout_us);
	int error = tether_client_send(client, request);

	if (error)
		return error;
	for (;;) {
		int64_t left = time_left_us(timeout_us, deadline);
		ssize_t len = tether_client_recv(client, buf, cap, left);

		if (len == -ETIMEDOUT)
			return -ETIMEDOUT;
		if (len >= 0 &&
		    tether_reply_check(buf, (size_t)len, request, reply) == TETHER_REPLY_VALID) {
			uint64_t elapsed_us = (tether_clock_ns() - sent) / NS_PER_US;

			*latency_us = elapsed_us ? elapsed_us : 1;
			return 0;
		}
		/* Not our reply (a stray or late one, an ICMP error): wait on,
		 * unless the time is up already. */
		if (left == 0)
			return -ETIMEDOUT;
	}
}

uint64_t tether_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- Latency histogram --------------------------------------------------- */

/* Bucket of value: itself below TETHER_HISTOGRAM_LINEAR; above, the power
 * of two it lies in (2^e, e >= 7) split into TETHER_HISTOGRAM_SUB buckets
 * of width 2^(e-6). */
static size_t bucket_of(uint64_t value)
{
	if (value < TETHER_HISTOGRAM_LINEAR)
		return value;
	int e = 63 - __builtin_clzll(value);
	int shift = e - 6;

	return TETHER_HISTOGRAM_LINEAR + (size_t)(e - 7) * TETHER_HISTOGRAM_SUB +
	       (size_t)((value >> shift) - TETHER_HISTOGRAM_SUB);
}

/* The highest value bucket holds. */
static uint64_t bucket_top(size_t bucket)
{
	if (bucket < TETHER_HISTOGRAM_LINEAR)
		return bucket;
	size_t k = bucket - TETHER_HISTOGRAM_LINEAR;
	int shift = (int)(k / TETHER_HISTOGRAM_SUB) + 1;
	uint64_t low = (uint64_t)(TETHER_HISTOGRAM_SUB + k % TETHER_HISTOGRAM_SUB) << shift;

	return low + ((1ull << shift) - 1);
}

void tether_histogram_init(struct tether_histogram *h)
{
	memset(h, 0, sizeof(*h));
}

void tether_histogram_add(struct tether_histogram *h, uint64_t value)
{
	if (!h->count || value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
	h->count++;
	h->buckets[bucket_of(value)]++;
}

uint64_t tether_histogram_quantile(const struct tether_histogram *h, uint64_t num,
				   uint64_t den)
{
	if (!h->count || !den)
		return 0;
	/* ceil(count * num / den) without overflow for any count we can hold */
	unsigned __int128 scaled = (unsigned __int128)h->count * (num < den ? num : den);
	uint64_t rank = (uint64_t)((scaled + den - 1) / den);
	uint64_t seen = 0;

	if (rank == 0)
		rank = 1;
	for (size_t b = 0; b < TETHER_HISTOGRAM_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen >= rank) {
			uint64_t top = bucket_top(b);

			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}
