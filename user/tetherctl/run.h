/* SPDX-License-Identifier: MIT */
/* tetherctl as a function of its command line, so the tests can run it. */
#ifndef TETHERCTL_RUN_H
#define TETHERCTL_RUN_H

#include <stdio.h>

enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILED = 1, /* tetherd refused, could not be reached, or a deadline passed */
	CTL_EXIT_USAGE = 2,  /* bad command line: nothing was sent */
};

/* Runs the command line argv; env_socket is $TETHER_SOCKET (or NULL).
 * Results go to out, messages and progress to err. Returns the exit
 * status. */
int ctl_run(int argc, char *const argv[], const char *env_socket, FILE *out, FILE *err);

#endif
