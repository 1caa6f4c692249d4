/* SPDX-License-Identifier: MIT */
/* The HTTP side of /metrics: libmicrohttpd (Debian's libmicrohttpd12) driven
 * by tetherd's own epoll loop, no thread of its own: its epoll fd is one fd
 * of the loop (MHD_USE_EPOLL, MHD_DAEMON_INFO_EPOLL_FD), MHD_run runs when it
 * is ready or when MHD_get_timeout says, on a timerfd.
 *
 * GET /metrics answers 200 with the exposition (metrics_write). When the big
 * maps need a new sweep that does not fit in one slice, the request is
 * suspended (MHD_suspend_connection) while the sweep goes on in slices
 * between the loop's other work, and answered when it is done; scrapes that
 * arrive meanwhile wait for the same sweep, and a result younger than a
 * second serves them at once. Other paths: 404; other methods: 405. */
#ifndef TETHER_METRICS_HTTP_H
#define TETHER_METRICS_HTTP_H

#include <stddef.h>

struct metrics;
struct loop;
struct metrics_http;

/* Binds listen ("ADDR:PORT", "[v6]:PORT") and serves on loop. NULL with why. */
struct metrics_http *metrics_http_new(struct metrics *m, struct loop *loop, const char *listen,
				      char *why, size_t size);
void metrics_http_free(struct metrics_http *h);

#endif
