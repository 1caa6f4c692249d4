/* SPDX-License-Identifier: MIT */
/* Requests whose answer is a stream ("watch event", "watch trace"). */
#ifndef TETHERCTL_STREAM_H
#define TETHERCTL_STREAM_H

#include <stdio.h>

#include "args.h"
#include "client.h"

/* Reads the stream on conn, once tetherd has taken the request, and prints
 * it to out; returns the exit status. */
typedef int (*ctl_stream_reader)(struct ctl_conn *conn, const struct ctl_invocation *inv,
				 FILE *out, FILE *err);

/* Sends inv's request; a refusal or a broken connection is told on err
 * (CTL_EXIT_FAILED), else read_stream takes the connection. */
int ctl_stream(const struct ctl_invocation *inv, FILE *out, FILE *err,
	       ctl_stream_reader read_stream);

#endif
