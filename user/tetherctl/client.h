/* SPDX-License-Identifier: MIT */
/* tetherctl's side of the control socket: connect, send one request line,
 * read the answer's lines (however the bytes arrive) within a timeout. */
#ifndef TETHERCTL_CLIENT_H
#define TETHERCTL_CLIENT_H

#include <glib.h>
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "control/protocol.h"

#define CTL_TIMEOUT_MS 10000 /* for an answer to arrive in full */

struct ctl_conn {
	int fd;
	const char *path;
	char pending[PROTO_LINE_MAX]; /* bytes read past the last line returned */
	size_t pending_len;
};

/* tetherd's answer to one request. */
struct ctl_answer {
	bool ok;                     /* "ok"; else "error CODE: message" */
	enum proto_error error;
	char message[PROTO_LINE_MAX];
	/* The records after "ok". A parsed record points into itself, so
	 * they are parsed in place once all have arrived, and never move. */
	struct proto_request *records;
	size_t count;
};

/* CLOCK_MONOTONIC in ms: the clock of every deadline here. */
__u64 ctl_now_ms(void);

/* Each returns 0, or -1 with one sentence in message. */
int ctl_connect(struct ctl_conn *conn, const char *path, char *message, size_t size);
int ctl_send(struct ctl_conn *conn, const char *request, char *message, size_t size);
void ctl_close(struct ctl_conn *conn);

/* Reads one line into line (PROTO_LINE_MAX + 1 bytes), newline included and
 * NUL-terminated, before deadline_ms (0: no deadline). Returns its length, 0
 * when tetherd closed the connection between lines, or -1 with message. */
int ctl_read_line(struct ctl_conn *conn, __u64 deadline_ms, char *line, char *message,
		  size_t size);

/* The status line of an answer: fills ok, error and message. */
int ctl_read_status(struct ctl_conn *conn, __u64 deadline_ms, struct ctl_answer *answer,
		    char *message, size_t size);

/* A whole answer: the status line, the records up to the empty line. */
int ctl_read_answer(struct ctl_conn *conn, __u64 deadline_ms, struct ctl_answer *answer,
		    char *message, size_t size);

/* Connects to path, sends request ("verb noun ...\n"), reads the answer
 * within CTL_TIMEOUT_MS and closes. An error answer is a success here: it
 * fails only when tetherd could not be asked. */
int ctl_call(const char *path, const char *request, struct ctl_answer *answer, char *message,
	     size_t size);

void ctl_answer_init(struct ctl_answer *answer);
void ctl_answer_free(struct ctl_answer *answer);

#endif
