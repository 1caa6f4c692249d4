// SPDX-License-Identifier: MIT
/* tether-invoke: invokes a function through a Tether router, from a shell.
 *
 *   tether-invoke --vip ADDR:PORT --function F [--key K]
 *                 [--token HEX | --token-file FILE] [--strict] [--follow]
 *                 [--count N] [--interval-ms M] [--timeout-ms T]
 *                 [--payload TEXT] [--json]
 *
 * Sends N requests (one by default), one at a time, each waiting up to T ms
 * for its reply, M ms apart. Each carries KEY with --key and STRICT with
 * --strict. The first presents the token given (--token, or the one in the
 * token file when it exists); with --follow each next request presents the
 * token of the latest OK reply instead (a CONTAINER_GONE reply forgets it),
 * otherwise each presents the first request's token again. At the end the
 * token file holds the latest OK reply's token, or is removed after a
 * CONTAINER_GONE, so a script's next invocation goes back to the same
 * container:
 *
 *   tether-invoke --vip 198.51.100.1:7777 --function 7 --key 42 --token-file t
 *   tether-invoke --vip 198.51.100.1:7777 --function 7 --token-file t --strict
 *
 * One line per request (report.c):
 *   request=1 status=ok container=SLOT token=HEX latency_us=312 payload=TEXT
 * container is the slot of the reply's token: the container that ran it.
 * With N > 1 a last line sums up: requests= ok= failed= p50_us= p99_us=
 * max_us=. --json prints the same as one JSON object per line.
 *
 * Exit status 0 when every request got OK, 1 otherwise, 2 on a usage error. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "invoke.h"

struct invocation {
	struct invoke_options opt;
	struct tether_client client;
	struct tether_session first;  /* the token given at the start */
	struct tether_session latest; /* learns from every reply */
	uint64_t id_base;
	struct invoke_totals totals;
	uint8_t buf[TETHER_DATAGRAM_MAX];
};

static void build_request(const struct invocation *inv, uint64_t number,
			  struct tether_request *request)
{
	const struct invoke_options *o = &inv->opt;

	*request = (struct tether_request){
		.function_id = o->function_id,
		.has_key = o->has_key,
		.key = o->key,
		.strict = o->strict,
		.request_id = inv->id_base + number,
		.payload = o->payload,
		.payload_len = o->payload ? strlen(o->payload) : 0,
	};
	tether_session_present(o->follow ? &inv->latest : &inv->first, request);
}

/* Sends request number and waits for its reply; reports it. True when it
 * got OK. */
static bool invoke_one(struct invocation *inv, uint64_t number)
{
	struct tether_request request;
	struct invoke_outcome outcome = { .number = number };

	build_request(inv, number, &request);
	outcome.error = tether_client_call(&inv->client, &request, &outcome.reply, inv->buf,
					   sizeof(inv->buf), (int64_t)inv->opt.timeout_ms * 1000,
					   &outcome.latency_us);
	if (outcome.error && outcome.error != -ETIMEDOUT)
		fprintf(stderr, "tether-invoke: send to %s: %s\n", inv->opt.vip,
			strerror(-outcome.error));
	if (!outcome.error) {
		tether_session_learn(&inv->latest, &outcome.reply);
		tether_histogram_add(&inv->totals.latency_us, outcome.latency_us);
	}
	report_request(&inv->opt, &outcome);
	return !outcome.error && outcome.reply.status == TETHER_STATUS_OK;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec pause = { .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000 };

	while (nanosleep(&pause, &pause) && errno == EINTR)
		;
}

/* The token to start with, into both sessions. */
static int load_token(struct invocation *inv)
{
	tether_session_init(&inv->first);
	if (inv->opt.has_token)
		tether_session_set_token(&inv->first, inv->opt.token);
	else if (inv->opt.token_file && token_file_read(inv->opt.token_file, &inv->first))
		return -1;
	inv->latest = inv->first;
	return 0;
}

/* The token file follows the replies: a new token after OK, none after
 * CONTAINER_GONE, as it was when nothing came back. */
static int save_token(const struct invocation *inv, bool answered)
{
	if (!inv->opt.token_file || !answered)
		return 0;
	return token_file_write(inv->opt.token_file, &inv->latest);
}

int main(int argc, char **argv)
{
	static struct invocation inv; /* the receive buffer is large: not on the stack */
	int parsed = invoke_options_parse(argc, argv, &inv.opt);

	if (parsed)
		return parsed > 0 ? 0 : 2;
	if (load_token(&inv))
		return 2;
	int error = tether_client_open(&inv.client, inv.opt.vip, 0);

	if (error) {
		fprintf(stderr, "tether-invoke: %s: %s\n", inv.opt.vip, strerror(-error));
		return 1;
	}
	inv.id_base = tether_random_id();
	tether_histogram_init(&inv.totals.latency_us);
	for (uint64_t n = 1; n <= inv.opt.count; n++) {
		if (n > 1 && inv.opt.interval_ms)
			sleep_ms(inv.opt.interval_ms);
		inv.totals.requests++;
		inv.totals.ok += invoke_one(&inv, n);
	}
	tether_client_close(&inv.client);
	if (inv.opt.count > 1)
		report_totals(&inv.opt, &inv.totals);
	bool answered = inv.totals.latency_us.count > 0;

	if (save_token(&inv, answered))
		return 1;
	return inv.totals.ok == inv.totals.requests ? 0 : 1;
}
