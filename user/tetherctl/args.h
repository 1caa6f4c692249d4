/* SPDX-License-Identifier: MIT */
/* tetherctl's command line to a checked request:
 *
 *   tetherctl [--socket PATH] [--json] NOUN VERB [ARGS]
 *
 * becomes the request line for tetherd, or a usage error with a message;
 * every value is checked here (values.h), so bad input never leaves the
 * client. Pure: no I/O, no environment (the caller passes $TETHER_SOCKET). */
#ifndef TETHER_CTL_ARGS_H
#define TETHER_CTL_ARGS_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "command_table.h"
#include "control/protocol.h"

#define CTL_DEFAULT_SOCKET "/run/tether/tetherd.sock"

struct ctl_invocation {
	const char *socket_path; /* --socket, else $TETHER_SOCKET, else the default */
	bool json;               /* --json */
	bool help;               /* --help: print help, send nothing */
	bool version;            /* --version: print "tetherctl VERSION", send nothing */
	/* As far as the command line named one (also after a usage error, for
	 * the usage line): the command, or only the first word of a two-word
	 * command ("backend"), or neither. */
	const struct ctl_command *command;
	const char *group;
	char request[PROTO_LINE_MAX + 1]; /* "verb noun key=value ...\n" */
	bool wait;                        /* --wait */
	char target[PROTO_LINE_MAX];      /* --wait: the container handle or backend name */
	__u64 deadline_ms;                /* --deadline; 0 when not given */
	__u64 count;                      /* trace --count; 0: no limit */
};

/* Parses argv[1..argc-1]. env_socket is $TETHER_SOCKET (NULL or empty: the
 * default). Returns 0, or -1 for a usage error with one sentence in
 * message. */
int ctl_parse_args(int argc, char *const argv[], const char *env_socket,
		   struct ctl_invocation *inv, char *message, size_t message_size);

#endif
