/* SPDX-License-Identifier: MIT */
/* The control socket: a Unix socket for operators and local agents (peer
 * credentials checked), an optional TCP listener for remote agents, TLS
 * (libtether-tls) unless asked otherwise (a client certificate, or a secret
 * first: the shared operator secret, or a backend's own secret; a backend's
 * certificate or secret binds the connection to that backend; failed
 * attempts slowed down), line framing,
 * and the streams of "watch event" and "watch trace" subscribers. Answers are queued and sent by control_flush()
 * after the daemon has swapped in the pools the requests changed. */
#ifndef TETHER_CONTROL_H
#define TETHER_CONTROL_H

#include "tetherd.h"

struct control *control_new(struct tetherd *d);
void control_free(struct control *control);

/* Binds path (replacing a stale socket), mode 0600, or 0660 with the group. */
int control_listen_unix(struct control *control, const char *path, const char *group);
/* ADDR:PORT ("127.0.0.1:7070", "[::1]:7070"): TLS with the configuration's
 * --tls-* files (a client certificate, with --tls-client-ca, authenticates
 * and binds its connection), or plain with --tcp-plain (a warning logged);
 * without a certificate, agents send a secret first. */
int control_listen_tcp(struct control *control, const char *address, const char *secret);

/* SIGHUP: the --tls-* files again. New connections get the new credentials,
 * open ones keep theirs; a file missing or wrong leaves the ones in use
 * (logged). */
void control_reload_tls(struct control *control);

/* The daemon's tick: TLS handshakes not done within 10 s are given up. */
void control_tick(struct control *control);

/* The answer of a request commands_execute() left waiting: queued on its
 * connection, whose next requests are then read; dropped when that
 * connection has closed meanwhile. */
void control_answer(struct control *control, const struct control_ticket *ticket,
		    const char *answer, size_t len);

/* Queues an event line for every watcher. */
void control_broadcast(struct control *control, const char *line);
/* The packet trace (trace.c): a record for every connection whose "watch
 * trace" filter it matches; lost records (the ring had no room) told to
 * every tracing connection. */
struct trace_record;
void control_trace(struct control *control, const struct trace_record *rec);
void control_trace_lost(struct control *control, __u64 lost);

/* Sends what is queued; closes connections that asked to be closed. */
void control_flush(struct control *control);

#endif
