/* A load tool's line-protocol session with tetherd's control socket (Unix
 * or TCP), for tools/control_load.c and tools/control_rate.c. Every failure
 * ends the tool with the reason: a bench that lost its session has nothing
 * left to measure. */
#ifndef TETHER_TOOLS_CONTROL_SESSION_H
#define TETHER_TOOLS_CONTROL_SESSION_H

#include <stdio.h>

struct control_session {
	int fd;
	FILE *in; /* the answers, read line by line */
};

void control_session_unix(struct control_session *s, const char *path);
void control_session_tcp(struct control_session *s, const char *addr_port);
void control_session_send(struct control_session *s, const char *line);
/* One answer (a first line, records, an empty line): 1 if ok, 0 if
 * "error overloaded"; any other error ends the tool. *container (if not
 * NULL) gets the records' container=, when one is there. */
int control_session_answer(struct control_session *s, const char *request, unsigned *container);

/* "TOOL: WHAT: DETAIL" on stderr, exit 1. */
_Noreturn void tool_fail(const char *what, const char *detail);
/* CLOCK_MONOTONIC in seconds. */
double tool_now_s(void);

#endif
