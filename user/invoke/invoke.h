/* SPDX-License-Identifier: MIT */
/* tether-invoke: sends requests for a function through a router and reports
 * who served each (user/invoke/main.c has the whole story). */
#ifndef TETHER_INVOKE_H
#define TETHER_INVOKE_H

#include <stdbool.h>
#include <stdint.h>

#include "tether/client.h"

struct invoke_options {
	const char *vip;
	uint64_t function_id;
	bool has_key;
	uint64_t key;
	bool has_token; /* --token */
	uint8_t token[TETHER_TOKEN_LEN];
	const char *token_file;
	bool strict;
	uint64_t count;
	uint64_t interval_ms;
	uint64_t timeout_ms;
	const char *payload;
	bool follow;
	bool json;
};

/* options.c: the command line. 0; 1 after --help or --version (printed); -1 after a
 * usage error (printed to stderr). */
int invoke_options_parse(int argc, char **argv, struct invoke_options *o);

/* token_file.c: the token a script keeps between invocations. */

/* Reads the token in path into session. 0 when read or when the file is
 * missing or empty (the session stays without one); -1 with a message on
 * stderr when it holds something else or cannot be read. */
int token_file_read(const char *path, struct tether_session *session);

/* Leaves path as the session says: its token (written whole: to a temporary
 * file, then renamed), or no file when the session has none. 0, or -1 with
 * a message on stderr. */
int token_file_write(const char *path, const struct tether_session *session);

/* report.c: one line per request, a summary after several. */

/* What became of one request. */
struct invoke_outcome {
	uint64_t number;      /* 1, 2, ... */
	int error;            /* 0: reply holds the answer; -ETIMEDOUT, or a send error */
	struct tether_reply reply;
	uint64_t latency_us;
};

void report_request(const struct invoke_options *o, const struct invoke_outcome *outcome);

struct invoke_totals {
	uint64_t requests, ok;
	struct tether_histogram latency_us; /* of the answered requests */
};

void report_totals(const struct invoke_options *o, const struct invoke_totals *totals);

#endif
