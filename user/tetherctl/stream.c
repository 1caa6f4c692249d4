// SPDX-License-Identifier: MIT
/* Requests whose answer is a stream (stream.h). */
#include "stream.h"

#include "run.h"

int ctl_stream(const struct ctl_invocation *inv, FILE *out, FILE *err,
	       ctl_stream_reader read_stream)
{
	struct ctl_conn conn;
	struct ctl_answer answer;
	char message[PROTO_LINE_MAX];
	int status = CTL_EXIT_FAILED;

	if (ctl_connect(&conn, inv->socket_path, message, sizeof(message))) {
		fprintf(err, "tetherctl: %s\n", message);
		return CTL_EXIT_FAILED;
	}
	ctl_answer_init(&answer);
	if (ctl_send(&conn, inv->request, message, sizeof(message)) ||
	    ctl_read_status(&conn, ctl_now_ms() + CTL_TIMEOUT_MS, &answer, message,
			    sizeof(message)))
		fprintf(err, "tetherctl: %s\n", message);
	else if (!answer.ok)
		fprintf(err, "tetherctl: %s: %s\n", proto_error_code(answer.error), answer.message);
	else
		status = read_stream(&conn, inv, out, err);
	ctl_answer_free(&answer);
	ctl_close(&conn);
	return status;
}
