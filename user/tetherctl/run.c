// SPDX-License-Identifier: MIT
/* tetherctl's flow: parse the command line, ask tetherd, print the answer,
 * and for "watch" and "--wait" hand over to watch.c and wait.c (run.h). */
#include <errno.h>
#include <string.h>

#include "client.h"
#include "complete.h"
#include "args.h"
#include "help.h"
#include "output.h"
#include "run.h"
#include "tether_version.h"
#include "wait.h"
#include "trace.h"
#include "watch.h"

static int usage_error(const struct ctl_invocation *inv, const char *message, FILE *err)
{
	g_autoptr(GString) usage = g_string_new(NULL);

	ctl_usage(usage, inv);
	fprintf(err, "tetherctl: %s\n%s", message, usage->str);
	return CTL_EXIT_USAGE;
}

static int print_help(const struct ctl_invocation *inv, FILE *out)
{
	g_autoptr(GString) help = g_string_new(NULL);

	ctl_help(help, inv);
	fputs(help->str, out);
	return CTL_EXIT_OK;
}

static void print_records(const struct ctl_invocation *inv, const struct ctl_answer *answer,
			  FILE *out)
{
	g_autoptr(GString) text = g_string_new(NULL);
	const struct proto_request *records = answer->records;

	if (inv->json)
		ctl_output_json(text, records, answer->count, inv->command->shape);
	else
		ctl_output_table(text, records, answer->count);
	fputs(text->str, out);
}

/* One request, one answer. */
static int call(const struct ctl_invocation *inv, FILE *out, FILE *err)
{
	struct ctl_answer answer;
	char message[PROTO_LINE_MAX];
	int status = CTL_EXIT_FAILED;

	ctl_answer_init(&answer);
	if (ctl_call(inv->socket_path, inv->request, &answer, message, sizeof(message))) {
		fprintf(err, "tetherctl: %s\n", message);
	} else if (!answer.ok) {
		fprintf(err, "tetherctl: %s: %s\n", proto_error_code(answer.error), answer.message);
	} else {
		print_records(inv, &answer, out);
		status = CTL_EXIT_OK;
	}
	ctl_answer_free(&answer);
	return status;
}

/* A result that could not be written is a failure too (a full disk, a
 * closed pipe). */
static int finish_output(FILE *out, FILE *err, int status)
{
	if (fflush(out) == 0 && !ferror(out))
		return status;
	fprintf(err, "tetherctl: cannot write the output: %s\n", strerror(errno));
	return status ? status : CTL_EXIT_FAILED;
}

int ctl_run(int argc, char *const argv[], const char *env_socket, FILE *out, FILE *err)
{
	struct ctl_invocation inv;
	char message[PROTO_LINE_MAX];
	int status;

	if (argc >= 2 && !strcmp(argv[1], CTL_COMPLETE_COMMAND)) {
		g_autoptr(GString) words = g_string_new(NULL);

		ctl_complete(words, argc - 2, argv + 2);
		fputs(words->str, out);
		return finish_output(out, err, CTL_EXIT_OK);
	}
	if (ctl_parse_args(argc, argv, env_socket, &inv, message, sizeof(message)))
		return usage_error(&inv, message, err);
	if (inv.help)
		return finish_output(out, err, print_help(&inv, out));
	if (inv.version) {
		fprintf(out, "tetherctl %s\n", TETHER_RELEASE_VERSION);
		return finish_output(out, err, CTL_EXIT_OK);
	}
	if (inv.command->mode == CTL_MODE_WATCH) {
		status = ctl_watch(&inv, out, err);
	} else if (inv.command->mode == CTL_MODE_TRACE) {
		status = ctl_trace(&inv, out, err);
	} else {
		__u64 requested_at_ms = ctl_now_ms();

		status = call(&inv, out, err);
		/* The result (a bare ok) is out before the wait begins. */
		fflush(out);
		if (status == CTL_EXIT_OK && inv.wait)
			status = ctl_wait_drain(&inv, requested_at_ms, err);
	}
	return finish_output(out, err, status);
}
