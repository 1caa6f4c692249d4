// SPDX-License-Identifier: MIT
/* Unit tests of the client library (include/tether/client.h): the exact
 * bytes of requests, what makes a datagram a valid reply, tokens in hex,
 * sessions following tokens, the latency histogram's quantiles. Then the
 * library, tools/udp_load and tether-invoke against a fake backend: a thread
 * on the loopback that answers like tether-agent (REPLY, STAMPED, its token,
 * a "counter" or "served-by" payload), or stays silent. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tether/client.h"
#include "tether_version.h"

static const uint8_t token_a[TETHER_TOKEN_LEN] = { 0, 0, 0, 7, 0, 0, 0, 1,
						   0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4 };
static const uint8_t token_b[TETHER_TOKEN_LEN] = { 0, 0, 1, 2, 0, 0, 0, 9,
						   9, 8, 7, 6, 5, 4, 3, 2 };

/* ---- Requests ------------------------------------------------------------ */

static void test_request_bytes(void **state)
{
	static const uint8_t expected[TETHER_HDR_LEN + 2] = {
		0x54, 0x45,             /* magic "TE" */
		1,                      /* version */
		0x07,                   /* KEY | TOKEN | STRICT */
		0, 0, 0, 0,             /* status, reserved */
		0, 0, 0, 0, 0, 0, 0x10, 0x01,                      /* function 4097 */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,    /* key */
		0, 0, 0, 7, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, /* token */
		0x80, 0, 0, 0, 0, 0, 0, 0x2a,                      /* request id */
		'h', 'i',
	};
	struct tether_request request = {
		.function_id = 4097,
		.has_key = true,
		.key = 0x0102030405060708ull,
		.has_token = true,
		.strict = true,
		.request_id = 0x800000000000002aull,
		.payload = "hi",
		.payload_len = 2,
	};
	uint8_t out[128];

	(void)state;
	memcpy(request.token, token_a, TETHER_TOKEN_LEN);
	assert_int_equal(tether_request_build(&request, out, sizeof(out)), sizeof(expected));
	assert_memory_equal(out, expected, sizeof(expected));
	/* exactly big enough, then one byte short */
	assert_int_equal(tether_request_build(&request, out, sizeof(expected)), sizeof(expected));
	assert_int_equal(tether_request_build(&request, out, sizeof(expected) - 1), 0);
}

static void test_request_plain(void **state)
{
	/* no KEY, no TOKEN: the flags are clear and the fields stay zero even
	 * when the struct holds values for them */
	struct tether_request request = { .function_id = 1, .key = 99, .request_id = 5 };
	struct tether_hdr hdr;
	uint8_t zero[TETHER_TOKEN_LEN] = { 0 };

	(void)state;
	memcpy(request.token, token_a, TETHER_TOKEN_LEN);
	tether_request_header(&request, &hdr);
	assert_int_equal(hdr.flags, 0);
	assert_int_equal(hdr.routing_key, 0);
	assert_memory_equal(&hdr.container_token, zero, TETHER_TOKEN_LEN);
	assert_int_equal(be64toh(hdr.request_id), 5);
	assert_int_equal(hdr.status, 0);
}

static void test_request_refused(void **state)
{
	struct tether_request request = { .function_id = 0 };
	uint8_t out[TETHER_HDR_LEN];

	(void)state;
	assert_int_equal(tether_request_build(&request, out, sizeof(out)), 0);
	request.function_id = 1;
	request.payload = out;
	request.payload_len = TETHER_PAYLOAD_MAX + 1;
	assert_int_equal(tether_request_build(&request, out, sizeof(out)), 0);
	assert_int_equal(tether_random_id() >> 63, 0);
}

/* ---- Replies ------------------------------------------------------------- */

/* A reply as a backend writes it: OK, STAMPED, the token, "served". */
static size_t make_reply(uint8_t *out, const struct tether_request *request)
{
	size_t len = tether_request_build(request, out, TETHER_HDR_LEN);
	struct tether_hdr *hdr = (struct tether_hdr *)out;

	hdr->flags |= TETHER_F_REPLY | TETHER_F_STAMPED;
	memcpy(&hdr->container_token, token_a, TETHER_TOKEN_LEN);
	memcpy(out + len, "served", 6);
	return len + 6;
}

static void test_reply_valid(void **state)
{
	struct tether_request request = { .function_id = 9, .has_key = true, .key = 3,
					  .request_id = 77 };
	struct tether_reply reply;
	uint8_t buf[128];
	size_t len = make_reply(buf, &request);

	(void)state;
	assert_int_equal(tether_reply_check(buf, len, &request, &reply), TETHER_REPLY_VALID);
	assert_int_equal(reply.status, TETHER_STATUS_OK);
	assert_int_equal(reply.function_id, 9);
	assert_int_equal(reply.routing_key, 3);
	assert_int_equal(reply.request_id, 77);
	assert_memory_equal(reply.token, token_a, TETHER_TOKEN_LEN);
	assert_int_equal(tether_token_slot(reply.token), 7);
	assert_ptr_equal(reply.payload, buf + TETHER_HDR_LEN);
	assert_int_equal(reply.payload_len, 6);
	/* a header alone is a reply with an empty payload */
	assert_int_equal(tether_reply_check(buf, TETHER_HDR_LEN, &request, &reply),
			 TETHER_REPLY_VALID);
	assert_int_equal(reply.payload_len, 0);
}

static void test_reply_invalid(void **state)
{
	struct tether_request request = { .function_id = 9, .request_id = 77 };
	struct tether_request other = request;
	struct tether_reply reply;
	uint8_t good[128], buf[128];
	size_t len = make_reply(good, &request);
	struct tether_hdr *hdr = (struct tether_hdr *)buf;

	(void)state;
#define CHECK(verdict) assert_int_equal(tether_reply_check(buf, len, &request, &reply), verdict)
	memcpy(buf, good, len);
	buf[0] = 0x45; /* "EE" */
	CHECK(TETHER_REPLY_BAD_MAGIC);

	memcpy(buf, good, len);
	hdr->version = 2;
	CHECK(TETHER_REPLY_BAD_VERSION);

	memcpy(buf, good, len);
	hdr->flags &= ~TETHER_F_REPLY; /* a request, maybe our own looped back */
	CHECK(TETHER_REPLY_NOT_REPLY);

	memcpy(buf, good, len);
	hdr->status = 5;
	CHECK(TETHER_REPLY_BAD_STATUS);

	memcpy(buf, good, len);
	hdr->flags &= ~TETHER_F_STAMPED; /* OK without the router's token */
	CHECK(TETHER_REPLY_UNSTAMPED);
	hdr->status = TETHER_STATUS_NO_CAPACITY; /* an error needs no token */
	CHECK(TETHER_REPLY_VALID);

	memcpy(buf, good, len);
	other.request_id = 78;
	assert_int_equal(tether_reply_check(buf, len, &other, &reply), TETHER_REPLY_WRONG_ID);
	other = request;
	other.function_id = 10;
	assert_int_equal(tether_reply_check(buf, len, &other, &reply),
			 TETHER_REPLY_WRONG_FUNCTION);

	assert_int_equal(tether_reply_check(buf, TETHER_HDR_LEN - 1, &request, &reply),
			 TETHER_REPLY_SHORT);
	assert_int_equal(tether_reply_check(buf, 0, &request, &reply), TETHER_REPLY_SHORT);
#undef CHECK
	assert_string_equal(tether_reply_verdict_name(TETHER_REPLY_WRONG_ID), "wrong_id");
	assert_string_equal(tether_reply_verdict_name(99), "unknown");
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(tether_status_name(TETHER_STATUS_OK), "ok");
	assert_string_equal(tether_status_name(TETHER_STATUS_NO_CAPACITY), "no_capacity");
	assert_string_equal(tether_status_name(TETHER_STATUS_CONTAINER_GONE), "container_gone");
	assert_string_equal(tether_status_name(TETHER_STATUS_MALFORMED), "malformed");
	assert_string_equal(tether_status_name(TETHER_STATUS_OVERLOADED), "overloaded");
	assert_string_equal(tether_status_name(5), "unknown");
	assert_string_equal(tether_status_name(-1), "unknown");
}

/* ---- Tokens -------------------------------------------------------------- */

static void test_token_hex(void **state)
{
	char hex[TETHER_TOKEN_HEX_LEN + 1];
	uint8_t token[TETHER_TOKEN_LEN];

	(void)state;
	tether_token_to_hex(token_a, hex);
	assert_string_equal(hex, "0000000700000001deadbeef01020304");
	assert_int_equal(tether_token_from_hex(hex, token), 0);
	assert_memory_equal(token, token_a, TETHER_TOKEN_LEN);
	assert_int_equal(tether_token_from_hex("00000102000000090908070605040302", token), 0);
	assert_memory_equal(token, token_b, TETHER_TOKEN_LEN);
	assert_int_equal(tether_token_from_hex("0000000700000001DEADBEEF01020304", token), 0);
	assert_memory_equal(token, token_a, TETHER_TOKEN_LEN);
	assert_int_equal(tether_token_slot(token_b), 0x102);

	/* refused, and the token left as it was */
	assert_int_equal(tether_token_from_hex("0000000700000001deadbeef0102030", token), -EINVAL);
	assert_int_equal(tether_token_from_hex("0000000700000001deadbeef010203040", token),
			 -EINVAL);
	assert_int_equal(tether_token_from_hex("0000000700000001deadbeef0102030g", token), -EINVAL);
	assert_int_equal(tether_token_from_hex("", token), -EINVAL);
	assert_memory_equal(token, token_a, TETHER_TOKEN_LEN);
}

/* ---- Sessions ------------------------------------------------------------ */

static struct tether_reply reply_with(uint8_t status, const uint8_t *token)
{
	struct tether_reply reply = { .status = status };

	memcpy(reply.token, token, TETHER_TOKEN_LEN);
	return reply;
}

static void test_session_follows_tokens(void **state)
{
	struct tether_session session;
	struct tether_request request = { .function_id = 1 };
	struct tether_reply reply;

	(void)state;
	tether_session_init(&session);
	tether_session_present(&session, &request);
	assert_false(request.has_token);

	reply = reply_with(TETHER_STATUS_OK, token_a);
	tether_session_learn(&session, &reply);
	tether_session_present(&session, &request);
	assert_true(request.has_token);
	assert_memory_equal(request.token, token_a, TETHER_TOKEN_LEN);

	/* no capacity, overloaded: the container may still be there */
	reply = reply_with(TETHER_STATUS_NO_CAPACITY, token_b);
	tether_session_learn(&session, &reply);
	reply = reply_with(TETHER_STATUS_OVERLOADED, token_b);
	tether_session_learn(&session, &reply);
	assert_memory_equal(session.token, token_a, TETHER_TOKEN_LEN);

	/* a new container served it: its token is the one to present */
	reply = reply_with(TETHER_STATUS_OK, token_b);
	tether_session_learn(&session, &reply);
	request = (struct tether_request){ .function_id = 1 };
	tether_session_present(&session, &request);
	assert_memory_equal(request.token, token_b, TETHER_TOKEN_LEN);

	/* gone for good: the next request goes by key */
	reply = reply_with(TETHER_STATUS_CONTAINER_GONE, token_b);
	tether_session_learn(&session, &reply);
	request = (struct tether_request){ .function_id = 1 };
	tether_session_present(&session, &request);
	assert_false(request.has_token);

	tether_session_set_token(&session, token_a);
	tether_session_present(&session, &request);
	assert_true(request.has_token);
	assert_memory_equal(request.token, token_a, TETHER_TOKEN_LEN);
}

/* ---- Histogram ----------------------------------------------------------- */

static void test_histogram_exact(void **state)
{
	struct tether_histogram *h = malloc(sizeof(*h));

	(void)state;
	tether_histogram_init(h);
	assert_int_equal(tether_histogram_quantile(h, 1, 2), 0);
	for (uint64_t v = 100; v >= 1; v--) /* the order they come in does not matter */
		tether_histogram_add(h, v);
	assert_int_equal(h->count, 100);
	assert_int_equal(h->min, 1);
	assert_int_equal(h->max, 100);
	assert_int_equal(tether_histogram_quantile(h, 1, 2), 50);
	assert_int_equal(tether_histogram_quantile(h, 99, 100), 99);
	assert_int_equal(tether_histogram_quantile(h, 999, 1000), 100);
	assert_int_equal(tether_histogram_quantile(h, 1, 1), 100);
	assert_int_equal(tether_histogram_quantile(h, 0, 1), 1); /* rank 1 at least */

	/* one slow request in a thousand: p99.9 is still the fast ones, the
	 * maximum is the slow one exactly */
	tether_histogram_init(h);
	for (int i = 0; i < 999; i++)
		tether_histogram_add(h, 10);
	tether_histogram_add(h, 1000000);
	assert_int_equal(tether_histogram_quantile(h, 1, 2), 10);
	assert_int_equal(tether_histogram_quantile(h, 99, 100), 10);
	assert_int_equal(tether_histogram_quantile(h, 999, 1000), 10);
	assert_int_equal(tether_histogram_quantile(h, 1, 1), 1000000);
	tether_histogram_add(h, 1000000); /* now two in 1001: rank 1000 is slow */
	assert_int_equal(tether_histogram_quantile(h, 999, 1000), 1000000);
	free(h);
}

static void test_histogram_precision(void **state)
{
	struct tether_histogram *h = malloc(sizeof(*h));
	const uint64_t values[] = { 127, 128, 129, 1000, 1003, 65535, 65536, 999999,
				    (1ull << 40) + 12345, (1ull << 63) + 1, UINT64_MAX };

	(void)state;
	/* a bucket's value is at least the value, and less than 1/64 above */
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint64_t v = values[i];

		tether_histogram_init(h);
		tether_histogram_add(h, v);
		tether_histogram_add(h, UINT64_MAX);
		uint64_t got = tether_histogram_quantile(h, 1, 2);

		if (got < v || got - v > v / 64)
			fail_msg("value %llu reported as %llu", (unsigned long long)v,
				 (unsigned long long)got);
	}
	/* a million values, 1..1000000: no sorting, still within 1/64 */
	tether_histogram_init(h);
	for (uint64_t v = 1; v <= 1000000; v++)
		tether_histogram_add(h, v);
	uint64_t p50 = tether_histogram_quantile(h, 1, 2);
	uint64_t p999 = tether_histogram_quantile(h, 999, 1000);

	assert_true(p50 >= 500000 && p50 <= 500000 + 500000 / 64);
	assert_true(p999 >= 999000 && p999 <= 1000000);
	assert_int_equal(tether_histogram_quantile(h, 1, 1), 1000000);
	free(h);
}

/* ---- Endpoints ----------------------------------------------------------- */

static void test_endpoint_parse(void **state)
{
	struct sockaddr_storage addr;
	socklen_t len;

	(void)state;
	assert_int_equal(tether_endpoint_parse("198.51.100.1:7777", &addr, &len), 0);
	assert_int_equal(addr.ss_family, AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&addr)->sin_port), 7777);
	assert_int_equal(tether_endpoint_parse("[2001:db8::1]:80", &addr, &len), 0);
	assert_int_equal(addr.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&addr)->sin6_port), 80);
	const char *bad[] = { "198.51.100.1", "198.51.100.1:", "198.51.100.1:0",
			      "198.51.100.1:65536", "198.51.100.1:-1", "198.51.100.1:80x",
			      "2001:db8::1:80", "[2001:db8::1]", "host:80", ":80", "" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (tether_endpoint_parse(bad[i], &addr, &len) != -EINVAL)
			fail_msg("'%s' was taken for an endpoint", bad[i]);
}

/* ---- A fake backend on the loopback -------------------------------------- */

enum fake_mode {
	FAKE_COUNTER,   /* like tether-agent's counter handler */
	FAKE_SERVED_BY, /* like echo_backend and the agent's served-by handler */
	FAKE_ECHO,      /* the request's payload back: names no container */
	FAKE_LIAR,      /* a payload naming another slot than the token */
	FAKE_STRAY,     /* a reply to another request id first, then the real one */
	FAKE_SILENT,    /* reads, never answers */
};

struct fake {
	int fd;
	char vip[64];
	pthread_t thread;
	atomic_int mode;
	atomic_bool stop;
	atomic_uint requests;
	pthread_mutex_t lock; /* guards what the last request carried */
	uint8_t last_flags;
	uint8_t last_token[TETHER_TOKEN_LEN];
	uint64_t count; /* the counter handler's memory */
};

static size_t fake_payload(struct fake *f, const struct tether_hdr *request, const uint8_t *in,
			   size_t in_len, char *out, size_t cap)
{
	switch (atomic_load(&f->mode)) {
	case FAKE_SERVED_BY:
		return snprintf(out, cap, "served-by=vmfake slot=%u", tether_token_slot(token_a));
	case FAKE_ECHO:
		memcpy(out, in, in_len < cap ? in_len : cap);
		return in_len < cap ? in_len : cap;
	case FAKE_LIAR:
		return snprintf(out, cap, "served-by=vmfake slot=%u",
				tether_token_slot(token_a) + 1);
	default:
		f->count++;
		return snprintf(out, cap,
				"container=%u name=fake-1 function=%llu key=%llu count=%llu "
				"total=%llu pid=%d",
				tether_token_slot(token_a),
				(unsigned long long)be64toh(request->function_id),
				(unsigned long long)be64toh(request->routing_key),
				(unsigned long long)f->count, (unsigned long long)f->count,
				(int)getpid());
	}
}

/* Answers one request the way the agent does: the request's header with
 * REPLY, STAMPED (we play the router too), status OK, our token. */
static void fake_answer(struct fake *f, uint8_t *buf, size_t len,
			const struct sockaddr_storage *from, socklen_t from_len)
{
	uint8_t reply[TETHER_DATAGRAM_MAX];
	struct tether_hdr hdr;

	memcpy(&hdr, buf, TETHER_HDR_LEN);
	pthread_mutex_lock(&f->lock);
	f->last_flags = hdr.flags;
	memcpy(f->last_token, &hdr.container_token, TETHER_TOKEN_LEN);
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_add(&f->requests, 1);
	if (atomic_load(&f->mode) == FAKE_SILENT)
		return;
	hdr.flags |= TETHER_F_REPLY | TETHER_F_STAMPED;
	hdr.status = TETHER_STATUS_OK;
	memcpy(&hdr.container_token, token_a, TETHER_TOKEN_LEN);
	size_t payload_len = fake_payload(f, &hdr, buf + TETHER_HDR_LEN, len - TETHER_HDR_LEN,
					  (char *)reply + TETHER_HDR_LEN,
					  sizeof(reply) - TETHER_HDR_LEN);

	if (atomic_load(&f->mode) == FAKE_STRAY) {
		struct tether_hdr stray = hdr;

		stray.request_id = htobe64(be64toh(hdr.request_id) + 1000);
		memcpy(reply, &stray, TETHER_HDR_LEN);
		sendto(f->fd, reply, TETHER_HDR_LEN + payload_len, 0,
		       (const struct sockaddr *)from, from_len);
	}
	memcpy(reply, &hdr, TETHER_HDR_LEN);
	sendto(f->fd, reply, TETHER_HDR_LEN + payload_len, 0, (const struct sockaddr *)from,
	       from_len);
}

static void *fake_serve(void *arg)
{
	struct fake *f = arg;
	uint8_t buf[TETHER_DATAGRAM_MAX];

	while (!atomic_load(&f->stop)) {
		struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
		struct sockaddr_storage from;
		socklen_t from_len = sizeof(from);

		if (poll(&pfd, 1, 20) <= 0)
			continue;
		ssize_t len = recvfrom(f->fd, buf, sizeof(buf), MSG_DONTWAIT,
				       (struct sockaddr *)&from, &from_len);

		if (len >= TETHER_HDR_LEN)
			fake_answer(f, buf, (size_t)len, &from, from_len);
	}
	return NULL;
}

static int fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);

	assert_non_null(f);
	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&addr, &len), 0);
	snprintf(f->vip, sizeof(f->vip), "127.0.0.1:%u", ntohs(addr.sin_port));
	pthread_mutex_init(&f->lock, NULL);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_serve, f), 0);
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;

	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	close(f->fd);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return 0;
}

/* ---- The library against it ---------------------------------------------- */

static void test_loopback_call(void **state)
{
	struct fake *f = *state;
	struct tether_client client;
	struct tether_session session;
	struct tether_reply reply;
	static uint8_t buf[TETHER_DATAGRAM_MAX];
	uint64_t latency_us = 0;
	struct tether_request request = { .function_id = 42, .has_key = true, .key = 1000,
					  .request_id = tether_random_id() };

	assert_int_equal(tether_client_open(&client, f->vip, 0), 0);
	tether_session_init(&session);
	tether_session_present(&session, &request);
	assert_int_equal(tether_client_call(&client, &request, &reply, buf, sizeof(buf), 1000000,
					    &latency_us),
			 0);
	assert_true(latency_us > 0);
	assert_int_equal(reply.status, TETHER_STATUS_OK);
	assert_int_equal(reply.request_id, request.request_id);
	assert_int_equal(tether_token_slot(reply.token), 7);
	char payload[256];

	snprintf(payload, sizeof(payload), "%.*s", (int)reply.payload_len, reply.payload);
	assert_non_null(strstr(payload, "container=7 name=fake-1 function=42 key=1000 count=1"));
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->last_flags, TETHER_F_KEY); /* no token yet */
	pthread_mutex_unlock(&f->lock);

	/* the session presents the token it got */
	tether_session_learn(&session, &reply);
	request.request_id++;
	tether_session_present(&session, &request);
	assert_int_equal(tether_client_call(&client, &request, &reply, buf, sizeof(buf), 1000000,
					    &latency_us),
			 0);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->last_flags, TETHER_F_KEY | TETHER_F_TOKEN);
	assert_memory_equal(f->last_token, token_a, TETHER_TOKEN_LEN);
	pthread_mutex_unlock(&f->lock);
	tether_client_close(&client);
	assert_int_equal(client.fd, -1);
}

static void test_loopback_skips_strays(void **state)
{
	struct fake *f = *state;
	struct tether_client client;
	struct tether_reply reply;
	static uint8_t buf[TETHER_DATAGRAM_MAX];
	uint64_t latency_us;
	struct tether_request request = { .function_id = 3, .request_id = 500 };

	atomic_store(&f->mode, FAKE_STRAY);
	assert_int_equal(tether_client_open(&client, f->vip, 0), 0);
	assert_int_equal(tether_client_call(&client, &request, &reply, buf, sizeof(buf), 1000000,
					    &latency_us),
			 0);
	assert_int_equal(reply.request_id, 500);
	/* the stray one (id 1500) was read and dropped: nothing is left */
	assert_int_equal(tether_client_recv(&client, buf, sizeof(buf), 0), -ETIMEDOUT);
	tether_client_close(&client);
}

static void test_loopback_timeout(void **state)
{
	struct fake *f = *state;
	struct tether_client client;
	struct tether_reply reply;
	static uint8_t buf[TETHER_DATAGRAM_MAX];
	uint64_t latency_us = 0;
	struct tether_request request = { .function_id = 3, .request_id = 1 };

	atomic_store(&f->mode, FAKE_SILENT);
	assert_int_equal(tether_client_open(&client, f->vip, 0), 0);
	uint64_t start = tether_clock_ns();

	assert_int_equal(tether_client_call(&client, &request, &reply, buf, sizeof(buf), 50000,
					    &latency_us),
			 -ETIMEDOUT);
	uint64_t waited_ms = (tether_clock_ns() - start) / 1000000;

	assert_true(waited_ms >= 50);
	assert_true(waited_ms < 1000);
	assert_int_equal(atomic_load(&f->requests), 1); /* it did arrive */
	assert_int_equal(tether_client_recv(&client, buf, sizeof(buf), 0), -ETIMEDOUT);
	tether_client_close(&client);
}

static void test_send_refused(void **state)
{
	struct fake *f = *state;
	struct tether_client client;
	struct tether_request request = { .function_id = 0 };

	assert_int_equal(tether_client_open(&client, f->vip, 0), 0);
	assert_int_equal(tether_client_send(&client, &request), -EINVAL);
	tether_client_close(&client);
	assert_int_equal(tether_client_open(&client, "127.0.0.1", 0), -EINVAL);
	assert_int_equal(client.fd, -1);
}

/* ---- The programs against it --------------------------------------------- */

/* build/tests/unit/test_client -> build/NAME */
static bool built(const char *name, char *path, size_t size)
{
	char self[512];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (len <= 0)
		return false;
	self[len] = '\0';
	snprintf(path, size, "%s/../../%s", dirname(self), name);
	return access(path, X_OK) == 0;
}

/* Runs command (through sh); returns its first line of output in out and
 * its exit status. */
static int run_program(const char *command, char *out, size_t size)
{
	FILE *p = popen(command, "r");

	assert_non_null(p);
	out[0] = '\0';
	if (!fgets(out, (int)size, p))
		out[0] = '\0';
	char rest[4096];

	while (fgets(rest, sizeof(rest), p)) /* keep the last line too, after a newline */
		if (strlen(out) + strlen(rest) < size)
			strcat(out, rest);
	int status = pclose(p);

	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The value of key in key=value output, as text ("" when absent). */
static const char *field(const char *output, const char *key, char *value, size_t size)
{
	char pattern[64];
	const char *at = output;

	snprintf(pattern, sizeof(pattern), "%s=", key);
	value[0] = '\0';
	while ((at = strstr(at, pattern))) {
		if (at == output || at[-1] == ' ' || at[-1] == '\n') {
			snprintf(value, size, "%.*s", (int)strcspn(at + strlen(pattern), " \n"),
				 at + strlen(pattern));
			break;
		}
		at++;
	}
	return value;
}

#define EXPECT_FIELD(output, key, expected)                                              \
	do {                                                                             \
		char value_[64];                                                         \
		if (strcmp(field(output, key, value_, sizeof(value_)), expected))         \
			fail_msg("%s: expected '%s', got '%s' in: %s", key, expected, value_, \
				 output);                                                \
	} while (0)

static void need(const char *name, char *path, size_t size)
{
	const char *ci = getenv("CI");

	if (built(name, path, size))
		return;
	if (ci && !strcmp(ci, "true"))
		fail_msg("CI=true: this test needs build/%s", name);
	fprintf(stderr, "skipping: needs build/%s\n", name);
	skip();
}

static void test_udp_load_payloads(void **state)
{
	struct fake *f = *state;
	static const struct {
		enum fake_mode mode;
		const char *served_by;
	} cases[] = {
		{ FAKE_COUNTER, "fake-1" },
		{ FAKE_SERVED_BY, "vmfake" },
		{ FAKE_ECHO, "-" },
	};
	char load[600], command[1024], out[8192];

	need("tools/udp_load", load, sizeof(load));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		atomic_store(&f->mode, cases[i].mode);
		snprintf(command, sizeof(command),
			 "%s --vip %s --function 42 --count 200 --sessions 10 "
			 "--keys-per-session 3 --token-follow --per-container --rate 2000",
			 load, f->vip);
		assert_int_equal(run_program(command, out, sizeof(out)), 0);
		EXPECT_FIELD(out, "sent", "200");
		EXPECT_FIELD(out, "ok", "200");
		EXPECT_FIELD(out, "lost", "0");
		EXPECT_FIELD(out, "invalid", "0");
		EXPECT_FIELD(out, "containers", "1");
		EXPECT_FIELD(out, "sticky_sessions", "10");
		EXPECT_FIELD(out, "sticky_share", "1.000");
		EXPECT_FIELD(out, "errors", "0");
		EXPECT_FIELD(out, "served_by", cases[i].served_by);
		EXPECT_FIELD(out, "container", "7");
		char p50[32], p999[32];

		field(out, "p50_us", p50, sizeof(p50));
		field(out, "p999_us", p999, sizeof(p999));
		if (atoi(p50) <= 0 || atoi(p999) < atoi(p50))
			fail_msg("latencies p50 %s p999 %s in: %s", p50, p999, out);
	}
	/* the second half of the requests presented the token of the first */
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->last_flags, TETHER_F_KEY | TETHER_F_TOKEN);
	pthread_mutex_unlock(&f->lock);
}

static void test_udp_load_liar_and_silence(void **state)
{
	struct fake *f = *state;
	char load[600], command[1024], out[8192];

	need("tools/udp_load", load, sizeof(load));
	atomic_store(&f->mode, FAKE_LIAR);
	snprintf(command, sizeof(command), "%s --vip %s --count 20 --rate 0 --timeout-ms 200", load,
		 f->vip);
	assert_int_equal(run_program(command, out, sizeof(out)), 0);
	EXPECT_FIELD(out, "invalid", "20");
	EXPECT_FIELD(out, "ok", "0");

	atomic_store(&f->mode, FAKE_SILENT);
	snprintf(command, sizeof(command), "%s --vip %s --count 5 --timeout-ms 100 --json", load,
		 f->vip);
	assert_int_equal(run_program(command, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"sent\":5,\"answered\":0,\"lost\":5,"));
	assert_non_null(strstr(out, "\"p50_us\":0"));
}

static void test_udp_load_duration(void **state)
{
	struct fake *f = *state;
	char load[600], command[1024], out[8192];

	need("tools/udp_load", load, sizeof(load));
	snprintf(command, sizeof(command),
		 "%s --vip %s --duration-s 1 --rate 200 --key 5 --json --per-container", load,
		 f->vip);
	assert_int_equal(run_program(command, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "{\"sent\":200,\"answered\":200,\"lost\":0,\"ok\":200,"));
	assert_non_null(strstr(out, "\"per_container\":[{\"container\":7,\"count\":200,"
				    "\"served_by\":\"fake-1\"}]}"));
	snprintf(command, sizeof(command), "%s --vip %s --duration-s 1 --count 3 2>&1", load,
		 f->vip);
	assert_int_equal(run_program(command, out, sizeof(out)), 2);
}

static void test_invoke(void **state)
{
	struct fake *f = *state;
	char invoke[600], command[2048], out[8192], file[64] = "/tmp/test_client.XXXXXX";
	char token_path[128];

	need("tether-invoke", invoke, sizeof(invoke));
	assert_non_null(mkdtemp(file));
	snprintf(token_path, sizeof(token_path), "%s/token", file);

	/* no token file yet: by key; then the file holds the token */
	snprintf(command, sizeof(command),
		 "%s --vip %s --function 42 --key 9 --token-file %s --payload hello", invoke,
		 f->vip, token_path);
	assert_int_equal(run_program(command, out, sizeof(out)), 0);
	EXPECT_FIELD(out, "request", "1");
	EXPECT_FIELD(out, "status", "ok");
	EXPECT_FIELD(out, "container", "7");
	EXPECT_FIELD(out, "token", "0000000700000001deadbeef01020304");
	assert_non_null(strstr(out, " payload=container=7 name=fake-1 function=42 key=9 "));
	char saved[64] = "";
	FILE *t = fopen(token_path, "r");

	assert_non_null(t);
	assert_non_null(fgets(saved, sizeof(saved), t));
	fclose(t);
	assert_string_equal(saved, "0000000700000001deadbeef01020304\n");

	/* the next invocation presents it */
	snprintf(command, sizeof(command),
		 "%s --vip %s --function 42 --token-file %s --strict --count 3 --json", invoke,
		 f->vip, token_path);
	assert_int_equal(run_program(command, out, sizeof(out)), 0);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->last_flags, TETHER_F_TOKEN | TETHER_F_STRICT);
	assert_memory_equal(f->last_token, token_a, TETHER_TOKEN_LEN);
	pthread_mutex_unlock(&f->lock);
	assert_non_null(strstr(out, "{\"request\":1,\"status\":\"ok\",\"container\":7,"));
	assert_non_null(strstr(out, "{\"requests\":3,\"ok\":3,\"failed\":0,"));

	/* no answer: exit status 1, the file as it was */
	atomic_store(&f->mode, FAKE_SILENT);
	snprintf(command, sizeof(command),
		 "%s --vip %s --function 42 --token-file %s --timeout-ms 50", invoke, f->vip,
		 token_path);
	assert_int_equal(run_program(command, out, sizeof(out)), 1);
	EXPECT_FIELD(out, "status", "timeout");
	assert_int_equal(access(token_path, R_OK), 0);

	/* --version: "tether-invoke VERSION", exit status 0, nothing sent */
	snprintf(command, sizeof(command), "%s --version", invoke);
	assert_int_equal(run_program(command, out, sizeof(out)), 0);
	assert_string_equal(out, "tether-invoke " TETHER_RELEASE_VERSION "\n");

	/* usage errors: 2 */
	snprintf(command, sizeof(command), "%s --vip %s 2>/dev/null", invoke, f->vip);
	assert_int_equal(run_program(command, out, sizeof(out)), 2);
	snprintf(command, sizeof(command),
		 "%s --vip %s --function 1 --token 1234 2>/dev/null", invoke, f->vip);
	assert_int_equal(run_program(command, out, sizeof(out)), 2);
	snprintf(command, sizeof(command),
		 "%s --vip %s --function 1 --token 0000000700000001deadbeef01020304 "
		 "--token-file %s 2>/dev/null",
		 invoke, f->vip, token_path);
	assert_int_equal(run_program(command, out, sizeof(out)), 2);
	unlink(token_path);
	rmdir(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_bytes),
		cmocka_unit_test(test_request_plain),
		cmocka_unit_test(test_request_refused),
		cmocka_unit_test(test_reply_valid),
		cmocka_unit_test(test_reply_invalid),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_token_hex),
		cmocka_unit_test(test_session_follows_tokens),
		cmocka_unit_test(test_histogram_exact),
		cmocka_unit_test(test_histogram_precision),
		cmocka_unit_test(test_endpoint_parse),
		cmocka_unit_test_setup_teardown(test_loopback_call, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_loopback_skips_strays, fake_setup,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_loopback_timeout, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_send_refused, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_udp_load_payloads, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_udp_load_liar_and_silence, fake_setup,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_udp_load_duration, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_invoke, fake_setup, fake_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
