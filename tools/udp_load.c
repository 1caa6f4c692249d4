// SPDX-License-Identifier: MIT
/* udp_load: sends Tether requests to one service address and counts the
 * answers.
 *
 *   udp_load --vip ADDR:PORT [--count N] [--rate R] [--function F]
 *            [--key K] [--sessions S] [--keys-per-session N] [--token-follow]
 *            [--token HEX] [--strict] [--timeout-ms T] [--source-port P]
 *            [--per-container]
 *
 * Request i belongs to session i % S. Keyed requests (--key, --sessions or
 * --keys-per-session given) carry KEY; session s cycles over the keys
 * K + s * N ... K + s * N + N - 1 (K random when not given). --token-follow
 * presents, with TOKEN, the token of the latest reply the same session got
 * so far; --token presents a fixed token (32 hex digits, as on the wire) on
 * every request.
 *
 * One UDP socket, connected to the service address: it sends nowhere else and
 * only hears answers from there (the backends answer from the VIP: direct
 * server return). Answers are matched by request_id. A request without an
 * answer within --timeout-ms of being sent is lost; an answer after that is
 * late, and lost too.
 *
 * Output, key=value:
 *   sent=N answered=N lost=N ok=N no_capacity=N container_gone=N malformed=N
 *     overloaded=N containers=K late=N invalid=N duplicate=N send_errors=N
 *     [sticky_sessions=N sessions=S]
 *   container=SLOT count=N served_by=NAME          (--per-container, one each)
 * containers is the number of distinct container slots in OK answers;
 * sticky_sessions counts sessions whose OK answers all came from one slot.
 * invalid: answers that are not a reply to one of our requests, or whose
 * payload names another slot than their token. Exit status 0, 2 on a usage
 * error, 1 when the socket cannot be set up. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tether/wire.h"

#define NS_PER_SEC 1000000000ull
#define NS_PER_MS 1000000ull
#define MAX_DATAGRAM 65536
#define NO_SLOT UINT32_MAX

struct options {
	const char *vip;
	uint64_t count;
	uint64_t rate; /* requests per second; 0: as fast as the socket takes them */
	uint64_t function_id;
	bool keyed;
	uint64_t key_base;
	uint64_t sessions;
	uint64_t keys_per_session;
	bool token_follow;
	bool fixed_token;
	__u8 token[16];
	bool strict;
	uint64_t timeout_ms;
	uint16_t source_port;
	bool per_container;
};

struct request {
	uint64_t sent_ns; /* 0: not sent */
	bool answered;
};

struct session {
	__u8 token[16];
	bool has_token;
	uint32_t slot; /* of its first OK answer; NO_SLOT: none yet */
	bool moved;    /* an OK answer came from another slot */
};

struct container_count {
	uint32_t slot;
	uint64_t count;
	char served_by[64];
};

struct tally {
	uint64_t sent, answered, late, invalid, duplicate, send_errors;
	uint64_t status[5]; /* by TETHER_STATUS_* */
	struct container_count *containers;
	size_t ncontainers, containers_cap;
};

struct load {
	struct options opt;
	int fd;
	uint64_t id_base; /* request i has request_id id_base + i */
	struct request *requests;
	struct session *sessions;
	struct tally tally;
};

static const char usage[] =
	"usage: udp_load --vip ADDR:PORT [--count N] [--rate R] [--function F]\n"
	"                [--key K] [--sessions S] [--keys-per-session N] [--token-follow]\n"
	"                [--token HEX] [--strict] [--timeout-ms T] [--source-port P]\n"
	"                [--per-container]\n"
	"Sends N Tether requests (R per second) to ADDR:PORT and prints a summary:\n"
	"sent= answered= lost= ok= no_capacity= container_gone= malformed= overloaded=\n"
	"containers= ...; --per-container adds 'container=SLOT count=N' lines.\n";

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static int parse_u64(const char *text, uint64_t *out)
{
	char *end;

	if (!*text || *text == '-')
		return -1;
	errno = 0;
	*out = strtoull(text, &end, 0);
	return errno || *end ? -1 : 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_token(const char *text, __u8 out[16])
{
	if (strlen(text) != 32)
		return -1;
	for (int i = 0; i < 16; i++) {
		int high = hex_digit(text[2 * i]), low = hex_digit(text[2 * i + 1]);

		if (high < 0 || low < 0)
			return -1;
		out[i] = high << 4 | low;
	}
	return 0;
}

/* "198.51.100.1:7777" or "[2001:db8::1]:7777" to a socket address. */
static int parse_endpoint(const char *text, struct sockaddr_storage *out, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':');
	uint64_t port;

	if (!colon || (size_t)(colon - text) >= sizeof(host) || parse_u64(colon + 1, &port) ||
	    port == 0 || port > 65535)
		return -1;
	memcpy(host, text, colon - text);
	host[colon - text] = '\0';
	memset(out, 0, sizeof(*out));
	size_t hlen = strlen(host);

	if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

		host[hlen - 1] = '\0';
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)out;

	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	*len = sizeof(*sin);
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static int usage_error(const char *what, const char *value)
{
	fprintf(stderr, "udp_load: bad %s '%s' (udp_load --help)\n", what, value ? value : "");
	return -1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum { O_VIP = 1, O_COUNT, O_RATE, O_FUNCTION, O_KEY, O_SESSIONS, O_KPS, O_FOLLOW,
	       O_TOKEN, O_STRICT, O_TIMEOUT, O_SPORT, O_PER_CONTAINER, O_HELP };
	static const struct option options[] = {
		{ "vip", required_argument, 0, O_VIP },
		{ "count", required_argument, 0, O_COUNT },
		{ "rate", required_argument, 0, O_RATE },
		{ "function", required_argument, 0, O_FUNCTION },
		{ "key", required_argument, 0, O_KEY },
		{ "sessions", required_argument, 0, O_SESSIONS },
		{ "keys-per-session", required_argument, 0, O_KPS },
		{ "token-follow", no_argument, 0, O_FOLLOW },
		{ "token", required_argument, 0, O_TOKEN },
		{ "strict", no_argument, 0, O_STRICT },
		{ "timeout-ms", required_argument, 0, O_TIMEOUT },
		{ "source-port", required_argument, 0, O_SPORT },
		{ "per-container", no_argument, 0, O_PER_CONTAINER },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	uint64_t port = 0;
	bool key_given = false;
	int id;

	*o = (struct options){ .count = 1, .rate = 1000, .function_id = 1, .sessions = 1,
			       .keys_per_session = 1, .timeout_ms = 1000 };
	while ((id = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (id) {
		case O_VIP: o->vip = optarg; break;
		case O_COUNT:
			if (parse_u64(optarg, &o->count))
				return usage_error("--count", optarg);
			break;
		case O_RATE:
			if (parse_u64(optarg, &o->rate))
				return usage_error("--rate", optarg);
			break;
		case O_FUNCTION:
			if (parse_u64(optarg, &o->function_id) || !o->function_id)
				return usage_error("--function", optarg);
			break;
		case O_KEY:
			if (parse_u64(optarg, &o->key_base))
				return usage_error("--key", optarg);
			o->keyed = key_given = true;
			break;
		case O_SESSIONS:
			if (parse_u64(optarg, &o->sessions) || !o->sessions ||
			    o->sessions > 1000000)
				return usage_error("--sessions", optarg);
			o->keyed = true;
			break;
		case O_KPS:
			if (parse_u64(optarg, &o->keys_per_session) || !o->keys_per_session ||
			    o->keys_per_session > 1000000)
				return usage_error("--keys-per-session", optarg);
			o->keyed = true;
			break;
		case O_FOLLOW: o->token_follow = true; break;
		case O_TOKEN:
			if (parse_token(optarg, o->token))
				return usage_error("--token (32 hex digits)", optarg);
			o->fixed_token = true;
			break;
		case O_STRICT: o->strict = true; break;
		case O_TIMEOUT:
			if (parse_u64(optarg, &o->timeout_ms) || !o->timeout_ms ||
			    o->timeout_ms > 3600000)
				return usage_error("--timeout-ms", optarg);
			break;
		case O_SPORT:
			if (parse_u64(optarg, &port) || port > 65535)
				return usage_error("--source-port", optarg);
			o->source_port = port;
			break;
		case O_PER_CONTAINER: o->per_container = true; break;
		case O_HELP: fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); return -1;
		}
	}
	if (optind < argc)
		return usage_error("argument", argv[optind]);
	if (!o->vip)
		return usage_error("--vip (required)", "");
	if (o->count > 100000000)
		return usage_error("--count (at most 100000000)", "");
	if (o->token_follow && o->fixed_token)
		return usage_error("--token with --token-follow", "");
	if (o->keyed && !key_given && getrandom(&o->key_base, sizeof(o->key_base), 0) < 0)
		o->key_base = now_ns();
	return 0;
}

static int open_socket(const struct options *o)
{
	struct sockaddr_storage to, from = {};
	socklen_t to_len;
	int one = 1;

	if (parse_endpoint(o->vip, &to, &to_len)) {
		usage_error("--vip (ADDR:PORT or [IPv6]:PORT)", o->vip);
		return -2;
	}
	int fd = socket(to.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (o->source_port) {
		from.ss_family = to.ss_family;
		/* Port at the same offset in both families. */
		((struct sockaddr_in *)&from)->sin_port = htons(o->source_port);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&from, to_len))
			goto fail;
	}
	if (connect(fd, (struct sockaddr *)&to, to_len))
		goto fail;
	return fd;
fail:
	fprintf(stderr, "udp_load: %s: %s\n", o->vip, strerror(errno));
	close(fd);
	return -1;
}

static void build_request(struct load *l, uint64_t i, struct tether_hdr *hdr)
{
	const struct options *o = &l->opt;
	struct session *s = &l->sessions[i % o->sessions];
	uint64_t session = i % o->sessions, round = i / o->sessions;

	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = htons(TETHER_MAGIC);
	hdr->version = TETHER_VERSION;
	hdr->function_id = htobe64(o->function_id);
	hdr->request_id = htobe64(l->id_base + i);
	if (o->keyed) {
		hdr->flags |= TETHER_F_KEY;
		hdr->routing_key = htobe64(o->key_base + session * o->keys_per_session +
					   round % o->keys_per_session);
	}
	if (o->fixed_token || (o->token_follow && s->has_token)) {
		hdr->flags |= TETHER_F_TOKEN;
		memcpy(&hdr->container_token, o->fixed_token ? o->token : s->token, 16);
	}
	if (o->strict)
		hdr->flags |= TETHER_F_STRICT;
}

static void count_container(struct tally *t, uint32_t slot, const char *served_by)
{
	for (size_t i = 0; i < t->ncontainers; i++) {
		if (t->containers[i].slot == slot) {
			t->containers[i].count++;
			return;
		}
	}
	if (t->ncontainers == t->containers_cap) {
		size_t cap = t->containers_cap ? 2 * t->containers_cap : 16;
		struct container_count *grown = realloc(t->containers, cap * sizeof(*grown));

		if (!grown)
			return;
		t->containers = grown;
		t->containers_cap = cap;
	}
	struct container_count *c = &t->containers[t->ncontainers++];

	c->slot = slot;
	c->count = 1;
	snprintf(c->served_by, sizeof(c->served_by), "%s", served_by);
}

/* An OK answer's payload is "served-by=NAME slot=SLOT" from the backend: its
 * slot must be the token's. */
static bool read_served_by(const char *payload, size_t len, uint32_t slot, char *name,
			   size_t size)
{
	char text[256], word[64];
	unsigned int named_slot;

	if (len >= sizeof(text))
		return false;
	memcpy(text, payload, len);
	text[len] = '\0';
	if (sscanf(text, "served-by=%63s slot=%u", word, &named_slot) != 2 ||
	    named_slot != slot)
		return false;
	snprintf(name, size, "%s", word);
	return true;
}

static void on_answer(struct load *l, const __u8 *buf, size_t len, uint64_t now)
{
	const struct tether_hdr *hdr = (const struct tether_hdr *)buf;
	struct tally *t = &l->tally;

	if (len < TETHER_HDR_LEN || ntohs(hdr->magic) != TETHER_MAGIC ||
	    hdr->version != TETHER_VERSION || !(hdr->flags & TETHER_F_REPLY) ||
	    hdr->status > TETHER_STATUS_OVERLOADED ||
	    be64toh(hdr->function_id) != l->opt.function_id) {
		t->invalid++;
		return;
	}
	uint64_t i = be64toh(hdr->request_id) - l->id_base;

	if (i >= l->opt.count || !l->requests[i].sent_ns) {
		t->invalid++;
		return;
	}
	struct request *r = &l->requests[i];

	if (r->answered) {
		t->duplicate++;
		return;
	}
	r->answered = true;
	if (now - r->sent_ns > l->opt.timeout_ms * NS_PER_MS) {
		t->late++;
		return;
	}
	if (hdr->status != TETHER_STATUS_OK) {
		t->answered++;
		t->status[hdr->status]++;
		return;
	}
	uint32_t slot = ntohl(hdr->container_token.slot);
	char served_by[64];

	if (!(hdr->flags & TETHER_F_STAMPED) ||
	    !read_served_by((const char *)buf + TETHER_HDR_LEN, len - TETHER_HDR_LEN, slot,
			    served_by, sizeof(served_by))) {
		t->invalid++;
		return;
	}
	t->answered++;
	t->status[TETHER_STATUS_OK]++;
	count_container(t, slot, served_by);

	struct session *s = &l->sessions[i % l->opt.sessions];

	memcpy(s->token, &hdr->container_token, 16);
	s->has_token = true;
	if (s->slot == NO_SLOT)
		s->slot = slot;
	else if (s->slot != slot)
		s->moved = true;
}

static void receive_all(struct load *l)
{
	static __u8 buf[MAX_DATAGRAM];

	for (;;) {
		ssize_t len = recv(l->fd, buf, sizeof(buf), 0);

		if (len < 0) {
			/* ICMP errors (ECONNREFUSED...) are reported once: read on. */
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
			    errno == ENETUNREACH || errno == EINTR)
				continue;
			return; /* EAGAIN: nothing more for now */
		}
		on_answer(l, buf, (size_t)len, now_ns());
	}
}

static bool send_one(struct load *l, uint64_t i)
{
	struct tether_hdr hdr;

	build_request(l, i, &hdr);
	if (send(l->fd, &hdr, sizeof(hdr), 0) < 0) {
		if (errno == EAGAIN || errno == ENOBUFS)
			return false; /* try again shortly */
		l->tally.send_errors++;
	}
	l->requests[i].sent_ns = now_ns();
	l->tally.sent++;
	return true;
}

static void wait_readable(int fd, uint64_t until_ns)
{
	uint64_t now = now_ns();
	uint64_t wait = until_ns > now ? until_ns - now : 0;
	struct timespec timeout = { .tv_sec = wait / NS_PER_SEC, .tv_nsec = wait % NS_PER_SEC };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	ppoll(&pfd, 1, &timeout, NULL);
}

static void run(struct load *l)
{
	const struct options *o = &l->opt;
	uint64_t start = now_ns(), next = 0;

	while (next < o->count) {
		uint64_t due = o->rate ? start + next * NS_PER_SEC / o->rate : 0;

		if (now_ns() >= due) {
			if (!send_one(l, next))
				wait_readable(l->fd, now_ns() + NS_PER_MS / 10);
			else
				next++;
		} else {
			wait_readable(l->fd, due);
		}
		receive_all(l);
	}
	uint64_t end = now_ns() + o->timeout_ms * NS_PER_MS;

	while (l->tally.answered + l->tally.late < l->tally.sent && now_ns() < end) {
		wait_readable(l->fd, end);
		receive_all(l);
	}
}

static void report(const struct load *l)
{
	const struct tally *t = &l->tally;

	printf("sent=%" PRIu64 " answered=%" PRIu64 " lost=%" PRIu64 " ok=%" PRIu64
	       " no_capacity=%" PRIu64 " container_gone=%" PRIu64 " malformed=%" PRIu64
	       " overloaded=%" PRIu64 " containers=%zu late=%" PRIu64 " invalid=%" PRIu64
	       " duplicate=%" PRIu64 " send_errors=%" PRIu64,
	       t->sent, t->answered, t->sent - t->answered, t->status[TETHER_STATUS_OK],
	       t->status[TETHER_STATUS_NO_CAPACITY], t->status[TETHER_STATUS_CONTAINER_GONE],
	       t->status[TETHER_STATUS_MALFORMED], t->status[TETHER_STATUS_OVERLOADED],
	       t->ncontainers, t->late, t->invalid, t->duplicate, t->send_errors);
	if (l->opt.keyed) {
		uint64_t sticky = 0;

		for (uint64_t s = 0; s < l->opt.sessions; s++)
			sticky += l->sessions[s].slot != NO_SLOT && !l->sessions[s].moved;
		printf(" sticky_sessions=%" PRIu64 " sessions=%" PRIu64, sticky, l->opt.sessions);
	}
	printf("\n");
	if (l->opt.per_container)
		for (size_t i = 0; i < t->ncontainers; i++)
			printf("container=%u count=%" PRIu64 " served_by=%s\n",
			       t->containers[i].slot, t->containers[i].count,
			       t->containers[i].served_by);
}

int main(int argc, char **argv)
{
	struct load l = {};

	if (parse_options(argc, argv, &l.opt))
		return 2;
	l.fd = open_socket(&l.opt);
	if (l.fd < 0)
		return l.fd == -2 ? 2 : 1;
	l.requests = calloc(l.opt.count ? l.opt.count : 1, sizeof(*l.requests));
	l.sessions = calloc(l.opt.sessions, sizeof(*l.sessions));
	if (!l.requests || !l.sessions) {
		fprintf(stderr, "udp_load: out of memory\n");
		return 1;
	}
	for (uint64_t s = 0; s < l.opt.sessions; s++)
		l.sessions[s].slot = NO_SLOT;
	if (getrandom(&l.id_base, sizeof(l.id_base), 0) < 0)
		l.id_base = now_ns();
	l.id_base &= ~0ull >> 1; /* room for count ids above it */
	run(&l);
	report(&l);
	close(l.fd);
	free(l.requests);
	free(l.sessions);
	free(l.tally.containers);
	return 0;
}
