/* SPDX-License-Identifier: MIT */
/* libtether-tls: the transport of the control protocol over TCP, plain or
 * TLS (GnuTLS), for tetherd's listener and the VM agent's connections. Both
 * run on an epoll loop without threads: every call here returns at once,
 * -EAGAIN when the socket is not ready, and the caller calls again when the
 * socket's readiness says so (transport_wants_write: wait for EPOLLOUT
 * rather than EPOLLIN). The line framing and everything above stay the
 * callers'.
 *
 * Credentials are loaded whole or not at all, and shared by reference: a
 * connection holds the ones it was made with, so tetherd can load new ones
 * (SIGHUP) while its connections keep theirs.
 *
 * Verification (GnuTLS's, at the handshake): the peer's chain up to one of
 * the CAs given, every certificate within its validity period, and the
 * extended key usage, when the certificate has one, for the role (TLS client
 * authentication for an agent or an operator, server authentication for
 * tetherd). A client also checks the server's name: an IP address against
 * the certificate's IP addresses (subjectAltName), a DNS name against its DNS
 * names. TLS 1.2 and 1.3 only. */
#ifndef TETHER_TLS_H
#define TETHER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum tls_role { TLS_SERVER, TLS_CLIENT };

/* PEM files; NULL or "" for none. */
struct tls_files {
	const char *cert; /* this side's certificate, its chain after it */
	const char *key;  /* its private key: no access for others (mode o-rwx) */
	/* The CAs the peer's certificate must chain to. A server with them
	 * requires a client certificate; a client needs them (it always checks
	 * the server). */
	const char *ca;
};

struct tls_creds;

/* Reads and checks the files: a server needs cert and key; a client needs
 * ca, and cert and key together or neither. NULL with one sentence in why
 * (which file, what is wrong) on any failure. */
struct tls_creds *tls_creds_load(enum tls_role role, const struct tls_files *files, char *why,
				 size_t why_size);
struct tls_creds *tls_creds_ref(struct tls_creds *creds);
/* NULL is fine. */
void tls_creds_unref(struct tls_creds *creds);
/* Whether the peer must show a certificate that chains to a CA of these
 * credentials (a server given ca). */
bool tls_creds_require_peer_cert(const struct tls_creds *creds);
/* This side's certificate for a log line: "subject CN=...,O=..., serial
 * 0a1b..., valid until 2026-05-01 12:00:00 UTC" ("no certificate" without
 * one). Notes an expired or not yet valid one. */
void tls_creds_describe(const struct tls_creds *creds, char *out, size_t size);

/* One connection's transport. */
struct transport {
	int fd;                   /* the caller's: never closed here */
	struct tls_creds *creds;  /* a reference; NULL: plain TCP (or a Unix socket) */
	void *session;            /* gnutls_session_t */
	void *checks;             /* what the server's certificate is checked against */
	bool handshaken;          /* plain: always */
	bool send_pending;        /* a record went out in part: send again */
	/* A server's peer after the handshake: the client certificate's subject
	 * CN ("" without a certificate, or when it has no CN or more than one). */
	char peer_name[128];
	char error[384]; /* why the last call failed, for a log line */
};

/* Plain when creds is NULL. A client (creds loaded as TLS_CLIENT) checks the
 * server's certificate against server_name (an IP address or a DNS name,
 * sent as SNI when it is a DNS name). 0, or -errno with why. */
int transport_init(struct transport *t, int fd, struct tls_creds *creds, const char *server_name,
		   char *why, size_t why_size);
/* The TLS session (a no-op for plain) and the reference to the credentials;
 * the fd stays open. Sends no close_notify: the caller closes the socket. */
void transport_free(struct transport *t);
bool transport_is_tls(const struct transport *t);

/* 0 when the handshake is done (plain: at once); -EAGAIN to call again on
 * readiness (transport_wants_write); another negative errno when it failed,
 * with why in t->error (a certificate refused, and what was wrong with it;
 * the peer's alert; not TLS). */
int transport_handshake(struct transport *t);
/* After -EAGAIN: whether to wait for EPOLLOUT (true) or EPOLLIN. */
bool transport_wants_write(const struct transport *t);

/* Bytes read (> 0), 0 at the peer's end of the stream, -EAGAIN, or another
 * negative errno (t->error says why). A TLS peer that closes without a
 * close_notify ends the stream too. */
ssize_t transport_recv(struct transport *t, void *buffer, size_t size);
/* Bytes taken from data (> 0), -EAGAIN (nothing taken; call again, with the
 * same data or more of it after it), or another negative errno. */
ssize_t transport_send(struct transport *t, const void *data, size_t size);
/* Decrypted bytes wait inside the TLS session, which epoll cannot see:
 * read them before waiting again. */
bool transport_has_pending(const struct transport *t);

#endif
