// SPDX-License-Identifier: MIT
/* udp_load: sends Tether requests to one service address and counts the
 * answers.
 *
 *   udp_load --vip ADDR:PORT [--count N | --duration-s D] [--rate R] [--function F]
 *            [--key K] [--sessions S] [--keys-per-session N] [--token-follow]
 *            [--closed-loop] [--token HEX] [--strict] [--timeout-ms T] [--source-port P]
 *            [--per-container] [--json] [--stamped HEX] [--trace FILE]
 *
 * Request i belongs to session i % S. Keyed requests (--key, --sessions or
 * --keys-per-session given) carry KEY; session s cycles over the keys
 * K + s * N ... K + s * N + N - 1 (K random when not given), so a session
 * stays on its own key set. --token-follow presents, with TOKEN, the token of
 * the latest reply the same session got so far (a session forgets it on
 * CONTAINER_GONE); --token presents a fixed token (32 hex digits, as on the
 * wire) on every request. --closed-loop: a session sends its next request
 * only once its previous one was answered or timed out, as a client that
 * follows tokens does (open loop, the default, it goes when the rate says,
 * answered or not). --duration-s sends for D seconds instead of N
 * requests.
 *
 * --stamped HEX sends every request as a router forwards it to the container
 * whose token is HEX: STAMPED set and HEX in the token field, the request's
 * own flags (KEY, TOKEN, STRICT) unchanged. A backend takes such a frame
 * without a router in the path: it measures the backend alone (as
 * tools/bench_latency.sh does, against the same requests through Tether).
 * --trace FILE writes, after the run, one line per request:
 *   request=SEQ sent_us=T answered_us=T|- latency_us=N|- status=NAME|lost container=SLOT|-
 * times in microseconds of the wall clock (CLOCK_REALTIME, so they compare
 * with `date +%s%N`), status lost for no answer in time (late included).
 *
 * One client (include/tether/client.h): a UDP socket connected to the
 * service address, so it sends nowhere else and only hears answers from
 * there (the backends answer from the VIP: direct server return). Answers
 * are matched by request_id. A request without an answer within
 * --timeout-ms of being sent is lost; an answer after that is late, and lost
 * too. At most WINDOW requests are in flight; past that, sending waits.
 *
 * Output, key=value:
 *   sent=N answered=N lost=N ok=N no_capacity=N container_gone=N malformed=N
 *     overloaded=N containers=K late=N invalid=N duplicate=N send_errors=N
 *     [sticky_sessions=N sessions=S sticky_share=F] errors=N
 *     p50_us=N p99_us=N p999_us=N max_us=N
 *   container=SLOT count=N served_by=NAME          (--per-container, one each)
 * or, with --json, one object with the same fields ("per_container": a list
 * of {"container","count","served_by"} with --per-container).
 * containers is the number of distinct container slots in OK answers, the
 * slot taken from the reply's token; served_by is the name the first OK
 * answer's payload gave: "served-by=NAME slot=SLOT" (echo_backend, the
 * agent's served-by handler) or "container=SLOT name=NAME ..." (the agent's
 * counter handler); "-" for other payloads. sticky_sessions counts sessions
 * whose OK answers all came from one slot; sticky_share is that over S.
 * errors counts answers in time with a status other than OK; the latency
 * figures (microseconds, send to answer, within 1.6%) are over every answer
 * in time. invalid: answers that are not a reply to one of our requests, or
 * whose payload names another slot than their token. Exit status 0, 2 on a
 * usage error, 1 when the socket cannot be set up or the trace written. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/json.h"
#include "tether/client.h"

#define NS_PER_SEC 1000000000ull
#define NS_PER_MS 1000000ull
#define NS_PER_US 1000ull
#define MAX_COUNT 100000000ull
#define MAX_DURATION_S 86400ull
#define WINDOW (1u << 16) /* requests in flight at most */
#define NO_SLOT UINT32_MAX
#define NO_SEQ UINT64_MAX

struct options {
	const char *vip;
	uint64_t count;
	uint64_t duration_s; /* 0: send count requests */
	uint64_t rate;       /* requests per second; 0: as fast as the socket takes them */
	uint64_t function_id;
	bool keyed;
	uint64_t key_base;
	uint64_t sessions;
	uint64_t keys_per_session;
	bool token_follow;
	bool closed_loop; /* a session's next request waits for its last answer */
	bool fixed_token;
	uint8_t token[TETHER_TOKEN_LEN];
	bool strict;
	uint64_t timeout_ms;
	uint16_t source_port;
	bool per_container;
	bool json;
	bool stamped; /* --stamped: send as a router forwards to stamp_token's container */
	uint8_t stamp_token[TETHER_TOKEN_LEN];
	const char *trace_path; /* --trace FILE; NULL: none */
};

/* A request in flight: ring[seq % WINDOW] while it may still be answered in
 * time; whether it was answered at all is in the answered bitmap. */
struct flight {
	uint64_t seq; /* NO_SEQ: empty */
	uint64_t sent_ns;
};

struct session {
	struct tether_session client; /* the token it presents with --token-follow */
	uint32_t slot; /* of its first OK answer; NO_SLOT: none yet */
	bool moved;    /* an OK answer came from another slot */
};

/* What --trace writes of request seq: trace[seq]. */
struct trace_entry {
	uint64_t sent_ns, answered_ns; /* answered_ns 0: no answer in time */
	uint32_t slot;
	uint8_t status;
};

struct container_count {
	uint32_t slot;
	uint64_t count;
	char served_by[64];
};

struct tally {
	uint64_t sent, answered, late, invalid, duplicate, send_errors;
	uint64_t status[TETHER_STATUS_OVERLOADED + 1];
	struct tether_histogram latency_us;
	GArray *containers;  /* struct container_count, in order of first answer */
	GHashTable *by_slot; /* slot -> index + 1 in containers */
};

struct load {
	struct options opt;
	struct tether_client client;
	uint64_t id_base; /* request i has request_id id_base + i */
	uint64_t next;    /* requests sent so far */
	struct flight *ring;
	uint8_t *answered; /* one bit per request */
	uint64_t answered_bits;
	struct session *sessions;
	struct tally tally;
	struct trace_entry *trace; /* --trace: one per request, grown with answered */
	uint8_t buf[TETHER_DATAGRAM_MAX];
};

static const char usage[] =
	"usage: udp_load --vip ADDR:PORT [--count N | --duration-s D] [--rate R] [--function F]\n"
	"                [--key K] [--sessions S] [--keys-per-session N] [--token-follow]\n"
	"                [--closed-loop] [--token HEX] [--strict] [--timeout-ms T]\n"
	"                [--source-port P] [--per-container] [--json] [--stamped HEX]\n"
	"                [--trace FILE]\n"
	"Sends N Tether requests (or for D seconds, R per second) to ADDR:PORT and prints\n"
	"a summary: sent= answered= lost= ok= no_capacity= container_gone= malformed=\n"
	"overloaded= containers= ... p50_us= p99_us= p999_us=; --per-container adds\n"
	"'container=SLOT count=N served_by=NAME' lines; --json prints one object.\n"
	"--stamped HEX: send each request as a router forwards it to the container whose\n"
	"token is HEX (STAMPED set, HEX in the token field), to reach a backend with no\n"
	"router in the path. --closed-loop: a session's next request waits for the answer\n"
	"to its previous one (or its timeout). --trace FILE: one line per request after\n"
	"the run:\n"
	"'request=SEQ sent_us= answered_us= latency_us= status= container=' (wall clock, us).\n";

/* ---- Options --------------------------------------------------------------- */

static int parse_u64(const char *text, uint64_t *out)
{
	char *end;

	if (!*text || *text == '-')
		return -1;
	errno = 0;
	*out = strtoull(text, &end, 0);
	return errno || *end ? -1 : 0;
}

static int usage_error(const char *what, const char *value)
{
	fprintf(stderr, "udp_load: bad %s '%s' (udp_load --help)\n", what, value ? value : "");
	return -1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum { O_VIP = 1, O_COUNT, O_DURATION, O_RATE, O_FUNCTION, O_KEY, O_SESSIONS, O_KPS,
	       O_FOLLOW, O_CLOSED, O_TOKEN, O_STRICT, O_TIMEOUT, O_SPORT, O_PER_CONTAINER, O_JSON,
	       O_STAMPED, O_TRACE, O_HELP };
	static const struct option options[] = {
		{ "vip", required_argument, 0, O_VIP },
		{ "count", required_argument, 0, O_COUNT },
		{ "duration-s", required_argument, 0, O_DURATION },
		{ "rate", required_argument, 0, O_RATE },
		{ "function", required_argument, 0, O_FUNCTION },
		{ "key", required_argument, 0, O_KEY },
		{ "sessions", required_argument, 0, O_SESSIONS },
		{ "keys-per-session", required_argument, 0, O_KPS },
		{ "token-follow", no_argument, 0, O_FOLLOW },
		{ "closed-loop", no_argument, 0, O_CLOSED },
		{ "token", required_argument, 0, O_TOKEN },
		{ "strict", no_argument, 0, O_STRICT },
		{ "timeout-ms", required_argument, 0, O_TIMEOUT },
		{ "source-port", required_argument, 0, O_SPORT },
		{ "per-container", no_argument, 0, O_PER_CONTAINER },
		{ "json", no_argument, 0, O_JSON },
		{ "stamped", required_argument, 0, O_STAMPED },
		{ "trace", required_argument, 0, O_TRACE },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	uint64_t port = 0;
	bool key_given = false, count_given = false;
	int id;

	*o = (struct options){ .count = 1, .rate = 1000, .function_id = 1, .sessions = 1,
			       .keys_per_session = 1, .timeout_ms = 1000 };
	while ((id = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (id) {
		case O_VIP: o->vip = optarg; break;
		case O_COUNT:
			if (parse_u64(optarg, &o->count))
				return usage_error("--count", optarg);
			count_given = true;
			break;
		case O_DURATION:
			if (parse_u64(optarg, &o->duration_s) || !o->duration_s ||
			    o->duration_s > MAX_DURATION_S)
				return usage_error("--duration-s (1 to 86400)", optarg);
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
		case O_CLOSED: o->closed_loop = true; break;
		case O_TOKEN:
			if (tether_token_from_hex(optarg, o->token))
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
		case O_JSON: o->json = true; break;
		case O_STAMPED:
			if (tether_token_from_hex(optarg, o->stamp_token))
				return usage_error("--stamped (32 hex digits)", optarg);
			o->stamped = true;
			break;
		case O_TRACE: o->trace_path = optarg; break;
		case O_HELP: fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); return -1;
		}
	}
	if (optind < argc)
		return usage_error("argument", argv[optind]);
	if (!o->vip)
		return usage_error("--vip (required)", "");
	if (o->count > MAX_COUNT)
		return usage_error("--count (at most 100000000)", "");
	if (count_given && o->duration_s)
		return usage_error("--count with --duration-s", "");
	if (o->token_follow && o->fixed_token)
		return usage_error("--token with --token-follow", "");
	if (o->keyed && !key_given)
		o->key_base = tether_random_id();
	return 0;
}

/* ---- Bookkeeping ----------------------------------------------------------- */

static bool was_answered(const struct load *l, uint64_t seq)
{
	return l->answered[seq / 8] & 1u << (seq % 8);
}

static void mark_answered(struct load *l, uint64_t seq)
{
	l->answered[seq / 8] |= 1u << (seq % 8);
}

/* Room for the bit of request seq (the bitmap grows with --duration-s). */
static bool reserve_bit(struct load *l, uint64_t seq)
{
	if (seq < l->answered_bits)
		return true;
	uint64_t bits = l->answered_bits ? 2 * l->answered_bits : 1 << 16;

	while (bits <= seq)
		bits *= 2;
	uint8_t *grown = realloc(l->answered, bits / 8);

	if (!grown)
		return false;
	memset(grown + l->answered_bits / 8, 0, (bits - l->answered_bits) / 8);
	l->answered = grown;
	if (l->opt.trace_path) {
		struct trace_entry *trace = realloc(l->trace, bits * sizeof(*trace));

		if (!trace)
			return false;
		memset(trace + l->answered_bits, 0, (bits - l->answered_bits) * sizeof(*trace));
		l->trace = trace;
	}
	l->answered_bits = bits;
	return true;
}

static uint64_t timeout_ns(const struct load *l)
{
	return l->opt.timeout_ms * NS_PER_MS;
}

/* Nanoseconds until ring slot of request seq may take it: 0 when it is empty
 * or its request was answered or timed out. */
static uint64_t window_wait_ns(const struct load *l, uint64_t seq, uint64_t now)
{
	const struct flight *f = &l->ring[seq % WINDOW];

	if (f->seq == NO_SEQ || was_answered(l, f->seq) || now - f->sent_ns > timeout_ns(l))
		return 0;
	return f->sent_ns + timeout_ns(l) + 1 - now;
}

/* --closed-loop: how long request seq waits for the answer to its session's
 * previous request (or for that one's timeout). */
static uint64_t session_wait_ns(const struct load *l, uint64_t seq, uint64_t now)
{
	if (!l->opt.closed_loop || seq < l->opt.sessions)
		return 0;
	uint64_t previous = seq - l->opt.sessions;

	if (l->ring[previous % WINDOW].seq != previous)
		return 0;
	return window_wait_ns(l, previous, now);
}

static void count_container(struct tally *t, uint32_t slot, const char *served_by)
{
	size_t index = GPOINTER_TO_SIZE(g_hash_table_lookup(t->by_slot, GUINT_TO_POINTER(slot)));

	if (index) {
		g_array_index(t->containers, struct container_count, index - 1).count++;
		return;
	}
	struct container_count c = { .slot = slot, .count = 1 };

	snprintf(c.served_by, sizeof(c.served_by), "%s", served_by);
	g_array_append_val(t->containers, c);
	g_hash_table_insert(t->by_slot, GUINT_TO_POINTER(slot),
			    GSIZE_TO_POINTER(t->containers->len));
}

/* ---- Sending --------------------------------------------------------------- */

static void build_request(const struct load *l, uint64_t i, struct tether_request *request)
{
	const struct options *o = &l->opt;
	uint64_t session = i % o->sessions, round = i / o->sessions;

	*request = (struct tether_request){ .function_id = o->function_id,
					    .request_id = l->id_base + i,
					    .strict = o->strict };
	if (o->keyed) {
		request->has_key = true;
		request->key = o->key_base + session * o->keys_per_session +
			       round % o->keys_per_session;
	}
	if (o->fixed_token) {
		request->has_token = true;
		memcpy(request->token, o->token, TETHER_TOKEN_LEN);
	} else if (o->token_follow) {
		tether_session_present(&l->sessions[session].client, request);
	}
}

/* --stamped: the header as the router rewrites it (STAMPED, the chosen
 * container's token), sent as tether_client_send sends. */
static int send_stamped(struct load *l, const struct tether_request *request)
{
	struct tether_hdr hdr;

	tether_request_header(request, &hdr);
	hdr.flags |= TETHER_F_STAMPED;
	memcpy(&hdr.container_token, l->opt.stamp_token, TETHER_TOKEN_LEN);
	return send(l->client.fd, &hdr, TETHER_HDR_LEN, 0) < 0 ? -errno : 0;
}

/* Sends request l->next; false when the socket is full (try again). */
static bool send_next(struct load *l)
{
	struct tether_request request;
	uint64_t i = l->next;

	if (!reserve_bit(l, i)) {
		fprintf(stderr, "udp_load: out of memory\n");
		exit(1);
	}
	build_request(l, i, &request);
	/* Stamped before sending: on the loopback the answer can be queued
	 * before send returns. */
	uint64_t sent_ns = tether_clock_ns();
	int error = l->opt.stamped ? send_stamped(l, &request)
				   : tether_client_send(&l->client, &request);

	if (error == -EAGAIN || error == -ENOBUFS)
		return false;
	if (error)
		l->tally.send_errors++;
	l->ring[i % WINDOW] = (struct flight){ .seq = i, .sent_ns = sent_ns };
	if (l->trace)
		l->trace[i].sent_ns = sent_ns;
	l->tally.sent++;
	l->next++;
	return true;
}

/* ---- Receiving ------------------------------------------------------------- */

/* Who the payload of an OK answer says ran it. Both payloads the rig's
 * backends send name the slot, as "served-by=NAME slot=SLOT" or
 * "container=SLOT name=NAME ..."; other payloads name nothing, which is
 * fine: the slot comes from the token. */
struct payload_claim {
	char name[64];
	bool has_slot;
	uint32_t slot;
};

static void read_claim(const uint8_t *payload, size_t len, struct payload_claim *claim)
{
	char text[512];
	char *save = NULL;
	bool named_by_served_by = false;

	*claim = (struct payload_claim){ .name = "-" };
	if (len >= sizeof(text))
		len = sizeof(text) - 1; /* the words that matter come first */
	memcpy(text, payload, len);
	text[len] = '\0';
	for (char *word = strtok_r(text, " \n", &save); word; word = strtok_r(NULL, " \n", &save)) {
		char *value = strchr(word, '=');
		uint64_t number;

		if (!value)
			continue;
		*value++ = '\0';
		if (!strcmp(word, "served-by")) {
			snprintf(claim->name, sizeof(claim->name), "%s", value);
			named_by_served_by = true;
		} else if (!strcmp(word, "name") && !named_by_served_by) {
			snprintf(claim->name, sizeof(claim->name), "%s", value);
		} else if ((!strcmp(word, "slot") || !strcmp(word, "container")) &&
			   !claim->has_slot && !parse_u64(value, &number) && number <= UINT32_MAX) {
			claim->has_slot = true;
			claim->slot = (uint32_t)number;
		}
	}
}

static void note_session(struct load *l, uint64_t seq, const struct tether_reply *reply)
{
	struct session *s = &l->sessions[seq % l->opt.sessions];
	uint32_t slot = tether_token_slot(reply->token);

	tether_session_learn(&s->client, reply);
	if (reply->status != TETHER_STATUS_OK)
		return;
	if (s->slot == NO_SLOT)
		s->slot = slot;
	else if (s->slot != slot)
		s->moved = true;
}

static void on_answer(struct load *l, const uint8_t *buf, size_t len, uint64_t now)
{
	struct tally *t = &l->tally;
	struct tether_reply reply;
	struct payload_claim claim;

	if (tether_reply_parse(buf, len, &reply) != TETHER_REPLY_VALID ||
	    reply.function_id != l->opt.function_id) {
		t->invalid++;
		return;
	}
	uint64_t seq = reply.request_id - l->id_base;

	if (seq >= l->next) {
		t->invalid++;
		return;
	}
	uint32_t slot = tether_token_slot(reply.token);

	if (reply.status == TETHER_STATUS_OK) {
		read_claim(reply.payload, reply.payload_len, &claim);
		if (claim.has_slot && claim.slot != slot) {
			t->invalid++;
			return;
		}
	}
	if (was_answered(l, seq)) {
		t->duplicate++;
		return;
	}
	mark_answered(l, seq);
	const struct flight *f = &l->ring[seq % WINDOW];

	if (f->seq != seq || now - f->sent_ns > timeout_ns(l)) {
		t->late++;
		return;
	}
	t->answered++;
	t->status[reply.status]++;
	tether_histogram_add(&t->latency_us, (now - f->sent_ns) / NS_PER_US);
	if (l->trace)
		l->trace[seq] = (struct trace_entry){ .sent_ns = f->sent_ns, .answered_ns = now,
						      .slot = slot, .status = reply.status };
	note_session(l, seq, &reply);
	if (reply.status == TETHER_STATUS_OK)
		count_container(t, slot, claim.name);
}

/* Reads answers: waits up to wait_ns for the first, then takes what is
 * there. */
static void receive(struct load *l, uint64_t wait_ns)
{
	int64_t wait_us = (int64_t)((wait_ns + NS_PER_US - 1) / NS_PER_US);

	for (;;) {
		ssize_t len = tether_client_recv(&l->client, l->buf, sizeof(l->buf), wait_us);

		if (len == -ETIMEDOUT)
			return;
		wait_us = 0;
		if (len >= 0)
			on_answer(l, l->buf, (size_t)len, tether_clock_ns());
		/* else an ICMP error (port unreachable...), reported once: read on */
	}
}

/* ---- The run --------------------------------------------------------------- */

/* When request i is due, by the rate, from start (0: now). */
static uint64_t due_ns(const struct options *o, uint64_t start, uint64_t i)
{
	if (!o->rate)
		return 0;
	return start + i / o->rate * NS_PER_SEC + i % o->rate * NS_PER_SEC / o->rate;
}

static bool done_sending(const struct load *l, uint64_t start, uint64_t now)
{
	const struct options *o = &l->opt;

	if (!o->duration_s)
		return l->next >= o->count;
	uint64_t end = start + o->duration_s * NS_PER_SEC;

	return now >= end || due_ns(o, start, l->next) >= end;
}

static void run(struct load *l)
{
	uint64_t start = tether_clock_ns(), now = start;

	while (!done_sending(l, start, now)) {
		uint64_t due = due_ns(&l->opt, start, l->next);
		uint64_t wait = due > now ? due - now : window_wait_ns(l, l->next, now);

		if (!wait)
			wait = session_wait_ns(l, l->next, now);

		if (wait)
			receive(l, wait);
		else if (!send_next(l))
			receive(l, NS_PER_MS / 10); /* the socket is full */
		else
			receive(l, 0);
		now = tether_clock_ns();
	}
	uint64_t end = tether_clock_ns() + timeout_ns(l);

	while (l->tally.answered + l->tally.late < l->tally.sent && (now = tether_clock_ns()) < end)
		receive(l, end - now);
}

/* ---- Report ---------------------------------------------------------------- */

struct summary {
	uint64_t sticky;
	double sticky_share;
	uint64_t errors;
	uint64_t p50, p99, p999, max;
};

static struct summary summarize(const struct load *l)
{
	const struct tally *t = &l->tally;
	struct summary s = {
		.errors = t->answered - t->status[TETHER_STATUS_OK],
		.p50 = tether_histogram_quantile(&t->latency_us, 1, 2),
		.p99 = tether_histogram_quantile(&t->latency_us, 99, 100),
		.p999 = tether_histogram_quantile(&t->latency_us, 999, 1000),
		.max = t->latency_us.max,
	};

	for (uint64_t i = 0; i < l->opt.sessions; i++)
		s.sticky += l->sessions[i].slot != NO_SLOT && !l->sessions[i].moved;
	s.sticky_share = (double)s.sticky / (double)l->opt.sessions;
	return s;
}

static void report_text(const struct load *l, const struct summary *s)
{
	const struct tally *t = &l->tally;

	printf("sent=%" PRIu64 " answered=%" PRIu64 " lost=%" PRIu64 " ok=%" PRIu64
	       " no_capacity=%" PRIu64 " container_gone=%" PRIu64 " malformed=%" PRIu64
	       " overloaded=%" PRIu64 " containers=%u late=%" PRIu64 " invalid=%" PRIu64
	       " duplicate=%" PRIu64 " send_errors=%" PRIu64,
	       t->sent, t->answered, t->sent - t->answered, t->status[TETHER_STATUS_OK],
	       t->status[TETHER_STATUS_NO_CAPACITY], t->status[TETHER_STATUS_CONTAINER_GONE],
	       t->status[TETHER_STATUS_MALFORMED], t->status[TETHER_STATUS_OVERLOADED],
	       t->containers->len, t->late, t->invalid, t->duplicate, t->send_errors);
	if (l->opt.keyed)
		printf(" sticky_sessions=%" PRIu64 " sessions=%" PRIu64 " sticky_share=%.3f",
		       s->sticky, l->opt.sessions, s->sticky_share);
	printf(" errors=%" PRIu64 " p50_us=%" PRIu64 " p99_us=%" PRIu64 " p999_us=%" PRIu64
	       " max_us=%" PRIu64 "\n",
	       s->errors, s->p50, s->p99, s->p999, s->max);
	if (!l->opt.per_container)
		return;
	for (guint i = 0; i < t->containers->len; i++) {
		const struct container_count *c =
			&g_array_index(t->containers, struct container_count, i);

		printf("container=%u count=%" PRIu64 " served_by=%s\n", c->slot, c->count,
		       c->served_by);
	}
}

static void add_u64(JsonBuilder *b, const char *name, uint64_t value)
{
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, (gint64)value);
}

static void report_json(const struct load *l, const struct summary *s)
{
	const struct tally *t = &l->tally;
	g_autoptr(JsonBuilder) b = json_builder_new();
	GString *out = g_string_new(NULL);

	json_builder_begin_object(b);
	add_u64(b, "sent", t->sent);
	add_u64(b, "answered", t->answered);
	add_u64(b, "lost", t->sent - t->answered);
	add_u64(b, "ok", t->status[TETHER_STATUS_OK]);
	add_u64(b, "no_capacity", t->status[TETHER_STATUS_NO_CAPACITY]);
	add_u64(b, "container_gone", t->status[TETHER_STATUS_CONTAINER_GONE]);
	add_u64(b, "malformed", t->status[TETHER_STATUS_MALFORMED]);
	add_u64(b, "overloaded", t->status[TETHER_STATUS_OVERLOADED]);
	add_u64(b, "containers", t->containers->len);
	add_u64(b, "late", t->late);
	add_u64(b, "invalid", t->invalid);
	add_u64(b, "duplicate", t->duplicate);
	add_u64(b, "send_errors", t->send_errors);
	if (l->opt.keyed) {
		add_u64(b, "sticky_sessions", s->sticky);
		add_u64(b, "sessions", l->opt.sessions);
		/* As the text gives it: three decimals. */
		json_builder_set_member_name(b, "sticky_share");
		json_builder_add_double_value(b, round(s->sticky_share * 1000) / 1000);
	}
	add_u64(b, "errors", s->errors);
	add_u64(b, "p50_us", s->p50);
	add_u64(b, "p99_us", s->p99);
	add_u64(b, "p999_us", s->p999);
	add_u64(b, "max_us", s->max);
	if (l->opt.per_container) {
		json_builder_set_member_name(b, "per_container");
		json_builder_begin_array(b);
		for (guint i = 0; i < t->containers->len; i++) {
			const struct container_count *c =
				&g_array_index(t->containers, struct container_count, i);

			json_builder_begin_object(b);
			add_u64(b, "container", c->slot);
			add_u64(b, "count", c->count);
			json_builder_set_member_name(b, "served_by");
			ctl_json_add_string(b, c->served_by);
			json_builder_end_object(b);
		}
		json_builder_end_array(b);
	}
	json_builder_end_object(b);
	ctl_json_append(out, b);
	g_string_append_c(out, '\n');
	fputs(out->str, stdout);
	g_string_free(out, TRUE);
}

/* --trace: one line per request, times on the wall clock (the monotonic
 * clock the run used, shifted by the offset between the two now). */
static int write_trace(const struct load *l)
{
	struct timespec real;
	FILE *out = fopen(l->opt.trace_path, "w");

	if (!out)
		return -errno;
	clock_gettime(CLOCK_REALTIME, &real);
	int64_t offset_ns = (int64_t)(real.tv_sec * NS_PER_SEC + real.tv_nsec) -
			    (int64_t)tether_clock_ns();

	for (uint64_t i = 0; i < l->next; i++) {
		const struct trace_entry *e = &l->trace[i];

		fprintf(out, "request=%" PRIu64 " sent_us=%" PRId64, i,
			((int64_t)e->sent_ns + offset_ns) / (int64_t)NS_PER_US);
		if (e->answered_ns)
			fprintf(out, " answered_us=%" PRId64 " latency_us=%" PRIu64
				" status=%s container=%u\n",
				((int64_t)e->answered_ns + offset_ns) / (int64_t)NS_PER_US,
				(uint64_t)((e->answered_ns - e->sent_ns) / NS_PER_US),
				tether_status_name(e->status), e->slot);
		else
			fputs(" answered_us=- latency_us=- status=lost container=-\n", out);
	}
	return fclose(out) ? -errno : 0;
}

/* ---- main ------------------------------------------------------------------ */

static struct load *load_new(const struct options *o)
{
	struct load *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->opt = *o;
	l->client.fd = -1;
	l->ring = malloc(WINDOW * sizeof(*l->ring));
	l->sessions = calloc(o->sessions, sizeof(*l->sessions));
	if (!l->ring || !l->sessions || !reserve_bit(l, o->duration_s ? 0 : o->count)) {
		free(l->ring);
		free(l->sessions);
		free(l);
		return NULL;
	}
	for (uint32_t i = 0; i < WINDOW; i++)
		l->ring[i].seq = NO_SEQ;
	for (uint64_t s = 0; s < o->sessions; s++) {
		tether_session_init(&l->sessions[s].client);
		l->sessions[s].slot = NO_SLOT;
	}
	tether_histogram_init(&l->tally.latency_us);
	l->tally.containers = g_array_new(FALSE, FALSE, sizeof(struct container_count));
	l->tally.by_slot = g_hash_table_new(g_direct_hash, g_direct_equal);
	l->id_base = tether_random_id() >> 1; /* room for the sequence numbers above it */
	return l;
}

static void load_free(struct load *l)
{
	tether_client_close(&l->client);
	g_array_free(l->tally.containers, TRUE);
	g_hash_table_destroy(l->tally.by_slot);
	free(l->answered);
	free(l->trace);
	free(l->ring);
	free(l->sessions);
	free(l);
}

int main(int argc, char **argv)
{
	struct options opt;

	struct sockaddr_storage vip;
	socklen_t vip_len;

	if (parse_options(argc, argv, &opt))
		return 2;
	if (tether_endpoint_parse(opt.vip, &vip, &vip_len)) {
		usage_error("--vip (ADDR:PORT or [IPv6]:PORT)", opt.vip);
		return 2;
	}
	struct load *l = load_new(&opt);

	if (!l) {
		fprintf(stderr, "udp_load: out of memory\n");
		return 1;
	}
	int error = tether_client_open(&l->client, opt.vip, opt.source_port);

	if (error) {
		fprintf(stderr, "udp_load: %s: %s\n", opt.vip, strerror(-error));
		load_free(l);
		return 1;
	}
	run(l);
	if (opt.trace_path && (error = write_trace(l))) {
		fprintf(stderr, "udp_load: cannot write the trace to %s: %s\n", opt.trace_path,
			strerror(-error));
		load_free(l);
		return 1;
	}
	struct summary s = summarize(l);

	if (opt.json)
		report_json(l, &s);
	else
		report_text(l, &s);
	load_free(l);
	return 0;
}
