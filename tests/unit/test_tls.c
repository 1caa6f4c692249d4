// SPDX-License-Identifier: MIT
/* Unit tests of the control connections' transport (user/lib/tls/): a
 * server and a client on the two ends of a socket pair, both non-blocking,
 * driven in turns as an epoll loop would drive them. Certificates are made
 * by tools/test-certs.sh (certtool) in a scratch directory: a good client,
 * an expired one, one from another CA, one for servers only, a server named
 * for another address. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs.h"
#include "tls/tls.h"

static char dir[64];

static void make(const char *args)
{
	if (test_certs(args))
		fail_msg("tools/test-certs.sh %s failed (certtool installed? make deps)", args);
}

static int certs_setup(void **state)
{
	char args[256];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tether-test-tls.XXXXXX");
	assert_non_null(mkdtemp(dir));
	static const char *const made[] = {
		"ca %s ca",
		"ca %s other-ca",
		"server %s ca tetherd 127.0.0.1 ::1 tetherd.example",
		"server %s ca elsewhere 192.0.2.99",
		"client %s ca vm1 vm1",
		"client %s ca expired vm1 --expired",
		"client %s ca early vm1 --not-yet",
		"client %s other-ca foreign vm1",
		"client %s ca server-only vm1 --server-only",
	};
	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
		snprintf(args, sizeof(args), made[i], dir);
		make(args);
	}
	return 0;
}

static int certs_teardown(void **state)
{
	char command[128];

	(void)state;
	snprintf(command, sizeof(command), "rm -rf '%s'", dir);
	return system(command);
}

static char *path(const char *name)
{
	static char paths[8][128];
	static int next;
	char *out = paths[next++ % 8];

	snprintf(out, sizeof(paths[0]), "%s/%s", dir, name);
	return out;
}

static struct tls_creds *server_creds(bool client_ca)
{
	char why[512];
	struct tls_files files = { path("tetherd.pem"), path("tetherd-key.pem"),
				   client_ca ? path("ca.pem") : NULL };
	struct tls_creds *creds = tls_creds_load(TLS_SERVER, &files, why, sizeof(why));

	if (!creds)
		fail_msg("server credentials: %s", why);
	return creds;
}

static struct tls_creds *client_creds(const char *name)
{
	char why[512], cert[64], key[64];
	struct tls_files files = { NULL, NULL, path("ca.pem") };

	if (name) {
		snprintf(cert, sizeof(cert), "%s.pem", name);
		snprintf(key, sizeof(key), "%s-key.pem", name);
		files.cert = path(cert);
		files.key = path(key);
	}
	struct tls_creds *creds = tls_creds_load(TLS_CLIENT, &files, why, sizeof(why));

	if (!creds)
		fail_msg("client credentials %s: %s", name ? name : "(none)", why);
	return creds;
}

struct pair {
	int fds[2];
	struct transport server, client;
	int server_status, client_status;
};

static void pair_open(struct pair *p, struct tls_creds *server, struct tls_creds *client,
		      const char *server_name)
{
	char why[256];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fds), 0);
	assert_int_equal(transport_init(&p->server, p->fds[0], server, NULL, why, sizeof(why)), 0);
	assert_int_equal(transport_init(&p->client, p->fds[1], client, server_name, why,
					 sizeof(why)),
			 0);
	p->server_status = p->client_status = -EAGAIN;
}

static void pair_close(struct pair *p)
{
	transport_free(&p->server);
	transport_free(&p->client);
	close(p->fds[0]);
	close(p->fds[1]);
}

/* Both handshakes in turns until neither waits any more (or 200 turns). */
static void handshake(struct pair *p)
{
	for (int turn = 0; turn < 200; turn++) {
		if (p->server_status == -EAGAIN)
			p->server_status = transport_handshake(&p->server);
		if (p->client_status == -EAGAIN)
			p->client_status = transport_handshake(&p->client);
		if (p->server_status != -EAGAIN && p->client_status != -EAGAIN)
			return;
		/* The side that failed closes, as tetherd and the agent do. */
		if (p->server_status != -EAGAIN && p->server_status)
			shutdown(p->fds[0], SHUT_RDWR);
		if (p->client_status != -EAGAIN && p->client_status)
			shutdown(p->fds[1], SHUT_RDWR);
		poll(NULL, 0, 1);
	}
}

/* What the client reads once the server has judged it (TLS 1.3 clients
 * finish before the server has checked their certificate). */
static ssize_t client_reads(struct pair *p, char *buffer, size_t size)
{
	ssize_t got = -EAGAIN;

	for (int turn = 0; turn < 200 && got == -EAGAIN; turn++) {
		got = transport_recv(&p->client, buffer, size);
		if (got == -EAGAIN)
			poll(NULL, 0, 1);
	}
	return got;
}

static void test_good_client(void **state)
{
	struct tls_creds *server = server_creds(true), *client = client_creds("vm1");
	struct pair p;
	char buffer[64];
	char message[] = "list backend\n";

	(void)state;
	pair_open(&p, server, client, "127.0.0.1");
	/* The connection holds the credentials: tetherd may drop its own. */
	tls_creds_unref(server);
	tls_creds_unref(client);
	handshake(&p);
	assert_int_equal(p.client_status, 0);
	if (p.server_status)
		fail_msg("server: %s", p.server.error);
	assert_true(transport_is_tls(&p.server));
	assert_string_equal(p.server.peer_name, "vm1");
	assert_int_equal(transport_send(&p.client, message, strlen(message)), strlen(message));
	ssize_t got = -EAGAIN;

	for (int turn = 0; turn < 100 && got == -EAGAIN; turn++)
		got = transport_recv(&p.server, buffer, sizeof(buffer));
	assert_int_equal(got, strlen(message));
	assert_memory_equal(buffer, message, got);
	pair_close(&p);
}

/* More than the socket takes at once: sends return -EAGAIN, and go on with
 * the same data until all of it went, in order. */
static void test_large_send(void **state)
{
	struct tls_creds *server = server_creds(true), *client = client_creds("vm1");
	size_t total = 4 << 20, sent = 0, received = 0;
	unsigned char *data = malloc(total), *back = malloc(total);
	struct pair p;
	int again = 0;

	(void)state;
	for (size_t i = 0; i < total; i++)
		data[i] = (unsigned char)(i * 7 + i / 4096);
	pair_open(&p, server, client, "tetherd.example");
	handshake(&p);
	assert_int_equal(p.server_status, 0);
	assert_int_equal(p.client_status, 0);
	while (received < total) {
		/* Until the socket is full. */
		while (sent < total) {
			ssize_t n = transport_send(&p.server, data + sent, total - sent);

			if (n == -EAGAIN) {
				again++;
				break;
			}
			assert_true(n > 0);
			sent += n;
		}
		ssize_t got = -EAGAIN;

		while (received < total &&
		       (got = transport_recv(&p.client, back + received, total - received)) > 0)
			received += got;
		if (got != -EAGAIN && received < total)
			fail_msg("receiving after %zu of %zu bytes: %zd: %s", received, total, got,
				 p.client.error);
	}
	assert_true(again > 0);
	assert_memory_equal(data, back, total);
	/* The end of the stream. */
	shutdown(p.fds[0], SHUT_WR);
	assert_int_equal(client_reads(&p, (char *)back, 16), 0);
	free(data);
	free(back);
	pair_close(&p);
	tls_creds_unref(server);
	tls_creds_unref(client);
}

/* The server refuses the client's certificate; says why; the client hears it. */
static void expect_client_refused(const char *name, const char *why_part)
{
	struct tls_creds *server = server_creds(true);
	struct tls_creds *client = name ? client_creds(name) : client_creds(NULL);
	struct pair p;
	char buffer[16];

	pair_open(&p, server, client, "127.0.0.1");
	handshake(&p);
	assert_int_equal(p.server_status, -EPROTO);
	if (!strstr(p.server.error, why_part))
		fail_msg("%s: the server says '%s', not '%s'", name ? name : "no certificate",
			 p.server.error, why_part);
	if (p.client_status == 0) /* TLS 1.3: the client finished first */
		assert_true(client_reads(&p, buffer, sizeof(buffer)) < 0 ||
			    client_reads(&p, buffer, sizeof(buffer)) == 0);
	else
		assert_int_equal(p.client_status, -EPROTO);
	printf("#   %s: server: %s; client: %s\n", name ? name : "no certificate", p.server.error,
	       p.client.error[0] ? p.client.error : "(closed)");
	pair_close(&p);
	tls_creds_unref(server);
	tls_creds_unref(client);
}

static void test_client_refused(void **state)
{
	(void)state;
	expect_client_refused("expired", "expired");
	expect_client_refused("early", "not yet valid");
	expect_client_refused("foreign", "no certificate");
	expect_client_refused("server-only", "purpose");
	expect_client_refused(NULL, "no certificate");
}

/* The client refuses a server whose certificate names another address, or
 * that chains to a CA it does not trust. */
static void test_server_refused(void **state)
{
	struct tls_creds *server = server_creds(false), *client = client_creds("vm1");
	struct pair p;

	(void)state;
	pair_open(&p, server, client, "192.0.2.1");
	handshake(&p);
	assert_int_equal(p.client_status, -EPROTO);
	assert_non_null(strstr(p.client.error, "the server's certificate"));
	assert_non_null(strstr(p.client.error, "does not match"));
	printf("#   wrong name: %s; server: %s\n", p.client.error, p.server.error);
	pair_close(&p);

	char why[512];
	struct tls_files other = { NULL, NULL, path("other-ca.pem") };
	struct tls_creds *distrustful = tls_creds_load(TLS_CLIENT, &other, why, sizeof(why));

	assert_non_null(distrustful);
	pair_open(&p, server, distrustful, "127.0.0.1");
	handshake(&p);
	assert_int_equal(p.client_status, -EPROTO);
	printf("#   another CA: %s\n", p.client.error);
	assert_non_null(strstr(p.client.error, "issuer is unknown"));
	pair_close(&p);

	/* The right name: also a DNS name, and IPv6. */
	pair_open(&p, server, client, "::1");
	handshake(&p);
	assert_int_equal(p.client_status, 0);
	assert_int_equal(p.server_status, 0);
	assert_string_equal(p.server.peer_name, ""); /* no client CA: no client certificate */
	pair_close(&p);
	tls_creds_unref(server);
	tls_creds_unref(client);
	tls_creds_unref(distrustful);
}

/* A client that does not speak TLS; a plain transport. */
static void test_plain(void **state)
{
	struct tls_creds *server = server_creds(true);
	struct pair p;
	char buffer[64];
	static const char line[] = "auth agent secret=x\n";

	(void)state;
	pair_open(&p, server, NULL, NULL);
	assert_false(transport_is_tls(&p.client));
	assert_int_equal(transport_handshake(&p.client), 0);
	assert_int_equal(transport_send(&p.client, line, strlen(line)), strlen(line));
	handshake(&p);
	assert_int_equal(p.server_status, -EPROTO);
	printf("#   plain text to TLS: %s\n", p.server.error);
	assert_int_equal(transport_recv(&p.client, buffer, sizeof(buffer)) >= 0, 1);
	pair_close(&p);
	tls_creds_unref(server);
}

static void test_load_refused(void **state)
{
	char why[512];
	struct tls_files files = { path("tetherd.pem"), path("tetherd-key.pem"), NULL };
	struct tls_creds *creds;

	(void)state;
	assert_int_equal(chmod(path("tetherd-key.pem"), 0644), 0);
	assert_null(tls_creds_load(TLS_SERVER, &files, why, sizeof(why)));
	assert_non_null(strstr(why, "is open to others (mode 0644)"));
	assert_int_equal(chmod(path("tetherd-key.pem"), 0640), 0);
	creds = tls_creds_load(TLS_SERVER, &files, why, sizeof(why));
	assert_non_null(creds);
	tls_creds_describe(creds, why, sizeof(why));
	assert_non_null(strstr(why, "CN=tetherd"));
	assert_null(strstr(why, "EXPIRED"));
	tls_creds_unref(creds);
	assert_int_equal(chmod(path("tetherd-key.pem"), 0600), 0);

	files.key = path("vm1-key.pem"); /* not this certificate's */
	assert_null(tls_creds_load(TLS_SERVER, &files, why, sizeof(why)));
	assert_non_null(strstr(why, "cannot use the certificate"));
	files.key = path("nothing.pem");
	assert_null(tls_creds_load(TLS_SERVER, &files, why, sizeof(why)));
	assert_non_null(strstr(why, "No such file"));
	files = (struct tls_files){ path("tetherd.pem"), path("tetherd-key.pem"), path("vm1.tmpl") };
	assert_null(tls_creds_load(TLS_SERVER, &files, why, sizeof(why)));
	assert_non_null(strstr(why, "CA file"));
	files = (struct tls_files){ path("tetherd.pem"), NULL, NULL };
	assert_null(tls_creds_load(TLS_SERVER, &files, why, sizeof(why)));
	files = (struct tls_files){ NULL, NULL, NULL };
	assert_null(tls_creds_load(TLS_CLIENT, &files, why, sizeof(why)));
	assert_non_null(strstr(why, "CA"));

	files = (struct tls_files){ path("expired.pem"), path("expired-key.pem"), path("ca.pem") };
	creds = tls_creds_load(TLS_CLIENT, &files, why, sizeof(why));
	assert_non_null(creds);
	tls_creds_describe(creds, why, sizeof(why));
	assert_non_null(strstr(why, "EXPIRED"));
	tls_creds_unref(creds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_client),
		cmocka_unit_test(test_large_send),
		cmocka_unit_test(test_client_refused),
		cmocka_unit_test(test_server_refused),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_load_refused),
	};

	return cmocka_run_group_tests(tests, certs_setup, certs_teardown);
}
