// SPDX-License-Identifier: MIT
/* Plain or TLS transport on GnuTLS (tls.h). */
#define _GNU_SOURCE
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* TLS 1.2 and 1.3, GnuTLS's default ciphers otherwise. */
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* What a session checks the peer's certificate against: GnuTLS keeps a
 * pointer to it, so it lives as long as the session. */
struct tls_checks {
	gnutls_typed_vdata_st data[2];
	char server_name[256];
};

static gnutls_typed_vdata_st client_purpose[] = {
	{ GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 },
};

struct tls_creds {
	unsigned refs;
	enum tls_role role;
	bool has_ca;
	bool has_cert;
	gnutls_certificate_credentials_t x509;
};

static void say(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!out || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(out, size, fmt, ap);
	va_end(ap);
}

static bool given(const char *path)
{
	return path && path[0];
}

/* A file tetherd or the agent will read: it must exist and be a regular
 * file; a private key must not be open to others (group is fine: Debian's
 * ssl-cert group reads /etc/ssl/private). */
static int check_file(const char *what, const char *path, bool private_key, char *why,
		      size_t size)
{
	struct stat st;

	if (stat(path, &st)) {
		int err = -errno;

		say(why, size, "cannot read the %s %s: %s", what, path, strerror(errno));
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		say(why, size, "the %s %s is not a regular file", what, path);
		return -EINVAL;
	}
	if (private_key && (st.st_mode & 0007)) {
		say(why, size, "the %s %s is open to others (mode %04o), so the key is not "
			       "private: chmod o-rwx %s",
		    what, path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	if (access(path, R_OK)) {
		int err = -errno;

		say(why, size, "cannot read the %s %s: %s", what, path, strerror(errno));
		return err;
	}
	return 0;
}

struct tls_creds *tls_creds_load(enum tls_role role, const struct tls_files *files, char *why,
				 size_t why_size)
{
	struct tls_creds *creds;
	int ret;

	if (role == TLS_SERVER && (!given(files->cert) || !given(files->key))) {
		say(why, why_size, "TLS needs a certificate and its key");
		return NULL;
	}
	if (role == TLS_CLIENT && !given(files->ca)) {
		say(why, why_size, "TLS needs the CA that signed the server's certificate");
		return NULL;
	}
	if (given(files->cert) != given(files->key)) {
		say(why, why_size, "a certificate needs its key, and a key its certificate");
		return NULL;
	}
	if ((given(files->cert) && check_file("certificate", files->cert, false, why, why_size)) ||
	    (given(files->key) && check_file("key", files->key, true, why, why_size)) ||
	    (given(files->ca) && check_file("CA file", files->ca, false, why, why_size)))
		return NULL;
	creds = calloc(1, sizeof(*creds));
	if (!creds || gnutls_certificate_allocate_credentials(&creds->x509) < 0) {
		say(why, why_size, "out of memory");
		free(creds);
		return NULL;
	}
	creds->refs = 1;
	creds->role = role;
	if (given(files->cert)) {
		ret = gnutls_certificate_set_x509_key_file2(creds->x509, files->cert, files->key,
							    GNUTLS_X509_FMT_PEM, NULL, 0);
		if (ret < 0) {
			say(why, why_size, "cannot use the certificate %s with the key %s: %s",
			    files->cert, files->key, gnutls_strerror(ret));
			goto fail;
		}
		creds->has_cert = true;
	}
	if (given(files->ca)) {
		ret = gnutls_certificate_set_x509_trust_file(creds->x509, files->ca,
							     GNUTLS_X509_FMT_PEM);
		if (ret <= 0) {
			say(why, why_size, "cannot use the CA file %s: %s", files->ca,
			    ret < 0 ? gnutls_strerror(ret) : "no PEM certificate in it");
			goto fail;
		}
		creds->has_ca = true;
	}
	return creds;
fail:
	tls_creds_unref(creds);
	return NULL;
}

struct tls_creds *tls_creds_ref(struct tls_creds *creds)
{
	if (creds)
		creds->refs++;
	return creds;
}

void tls_creds_unref(struct tls_creds *creds)
{
	if (!creds || --creds->refs)
		return;
	gnutls_certificate_free_credentials(creds->x509);
	free(creds);
}

bool tls_creds_require_peer_cert(const struct tls_creds *creds)
{
	return creds && creds->role == TLS_SERVER && creds->has_ca;
}

static void format_time(time_t when, char *out, size_t size)
{
	struct tm tm;

	if (when == (time_t)-1 || !gmtime_r(&when, &tm) ||
	    !strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm))
		say(out, size, "unknown");
}

void tls_creds_describe(const struct tls_creds *creds, char *out, size_t size)
{
	gnutls_datum_t der = { 0 }, dn = { 0 };
	gnutls_x509_crt_t crt = NULL;
	unsigned char serial[40];
	size_t serial_len = sizeof(serial);
	char hex[2 * sizeof(serial) + 1] = "", until[64];

	if (!creds || !creds->has_cert ||
	    gnutls_certificate_get_crt_raw(creds->x509, 0, 0, &der) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER) < 0) {
		say(out, size, "no certificate");
		goto out;
	}
	gnutls_x509_crt_get_dn3(crt, &dn, 0);
	if (gnutls_x509_crt_get_serial(crt, serial, &serial_len) == 0)
		for (size_t i = 0; i < serial_len; i++)
			snprintf(hex + 2 * i, 3, "%02x", serial[i]);
	time_t expires = gnutls_x509_crt_get_expiration_time(crt);
	time_t activates = gnutls_x509_crt_get_activation_time(crt);
	time_t now = time(NULL);

	format_time(expires, until, sizeof(until));
	say(out, size, "subject %s, serial %s, valid until %s%s",
	    dn.data ? (const char *)dn.data : "?", hex, until,
	    now > expires ? " (EXPIRED: peers will refuse it)"
	    : now < activates ? " (NOT VALID YET: peers will refuse it)"
			      : "");
out:
	gnutls_free(dn.data);
	if (crt)
		gnutls_x509_crt_deinit(crt);
}

/* --- the transport ----------------------------------------------------------- */

static bool is_ip_address(const char *name)
{
	unsigned char buffer[16];

	return inet_pton(AF_INET, name, buffer) == 1 || inet_pton(AF_INET6, name, buffer) == 1;
}

int transport_init(struct transport *t, int fd, struct tls_creds *creds, const char *server_name,
		   char *why, size_t why_size)
{
	gnutls_session_t session;
	const char *error_at = NULL;
	int ret;

	memset(t, 0, sizeof(*t));
	t->fd = fd;
	if (!creds) {
		t->handshaken = true;
		return 0;
	}
	if (creds->role == TLS_CLIENT && !given(server_name)) {
		say(why, why_size, "no server name to check the server's certificate against");
		return -EINVAL;
	}
	ret = gnutls_init(&session, (creds->role == TLS_SERVER ? GNUTLS_SERVER : GNUTLS_CLIENT) |
					    GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (ret < 0) {
		say(why, why_size, "gnutls_init: %s", gnutls_strerror(ret));
		return -ENOMEM;
	}
	ret = gnutls_priority_set_direct(session, TLS_PRIORITY, &error_at);
	if (ret >= 0)
		ret = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds->x509);
	if (ret >= 0 && creds->role == TLS_SERVER) {
		if (creds->has_ca) {
			gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
			gnutls_session_set_verify_cert2(session, client_purpose, 1, 0);
		}
	} else if (ret >= 0) {
		struct tls_checks *checks = calloc(1, sizeof(*checks));

		if (!checks || strlen(server_name) >= sizeof(checks->server_name)) {
			free(checks);
			say(why, why_size, "the server name '%s' is too long", server_name);
			gnutls_deinit(session);
			return -EINVAL;
		}
		snprintf(checks->server_name, sizeof(checks->server_name), "%s", server_name);
		checks->data[0] = (gnutls_typed_vdata_st){ GNUTLS_DT_DNS_HOSTNAME,
							   (unsigned char *)checks->server_name, 0 };
		checks->data[1] = (gnutls_typed_vdata_st){
			GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER, 0
		};
		t->checks = checks;
		gnutls_session_set_verify_cert2(session, checks->data, 2, 0);
		if (!is_ip_address(server_name))
			ret = gnutls_server_name_set(session, GNUTLS_NAME_DNS, server_name,
						     strlen(server_name));
	}
	if (ret < 0) {
		say(why, why_size, "cannot set up TLS: %s", gnutls_strerror(ret));
		gnutls_deinit(session);
		free(t->checks);
		t->checks = NULL;
		return -EINVAL;
	}
	gnutls_transport_set_int(session, fd);
	gnutls_handshake_set_timeout(session, 0); /* the caller keeps the time */
	t->session = session;
	t->creds = tls_creds_ref(creds);
	return 0;
}

void transport_free(struct transport *t)
{
	if (t->session)
		gnutls_deinit(t->session);
	t->session = NULL;
	free(t->checks);
	t->checks = NULL;
	tls_creds_unref(t->creds);
	t->creds = NULL;
}

bool transport_is_tls(const struct transport *t)
{
	return t->session != NULL;
}

/* The subject CN of the peer's certificate: exactly one, printable. */
static void read_peer_name(struct transport *t)
{
	unsigned int count = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(t->session, &count);
	gnutls_x509_crt_t crt;
	char cn[sizeof(t->peer_name)], second[8];
	size_t cn_len = sizeof(cn), second_len = sizeof(second);

	t->peer_name[0] = '\0';
	if (!chain || !count || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_len) == 0 &&
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, second,
					  &second_len) == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE &&
	    strlen(cn) == cn_len) {
		bool printable = true;

		for (size_t i = 0; i < cn_len; i++)
			printable &= cn[i] >= ' ' && cn[i] < 0x7f;
		if (printable)
			snprintf(t->peer_name, sizeof(t->peer_name), "%s", cn);
	}
	gnutls_x509_crt_deinit(crt);
}

/* The subject of the peer's certificate, if it sent one, for messages. */
static void peer_subject(struct transport *t, char *out, size_t size)
{
	unsigned int count = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(t->session, &count);
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = { 0 };

	out[0] = '\0';
	if (!chain || !count || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0)
		say(out, size, " (its subject: %s)", (const char *)dn.data);
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
}

/* Why a handshake or record call failed, in a sentence. */
static void explain(struct transport *t, int ret)
{
	bool server = t->creds && t->creds->role == TLS_SERVER;
	const char *peer = server ? "the client" : "the server";

	if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		gnutls_datum_t text = { 0 };
		unsigned status = gnutls_session_get_verify_cert_status(t->session);
		char subject[256];

		gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0);
		peer_subject(t, subject, sizeof(subject));
		say(t->error, sizeof(t->error), "%s's certificate%s is refused: %s", peer, subject,
		    text.data ? (const char *)text.data : "verification failed");
		gnutls_free(text.data);
		for (size_t len = strlen(t->error); len && t->error[len - 1] == ' ';)
			t->error[--len] = '\0';
	} else if (ret == GNUTLS_E_NO_CERTIFICATE_FOUND || ret == GNUTLS_E_CERTIFICATE_REQUIRED) {
		say(t->error, sizeof(t->error),
		    "%s sent no certificate (one is required; a client sends none when it has none "
		    "from a CA the server names)",
		    peer);
	} else if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		say(t->error, sizeof(t->error), "%s refused the TLS handshake: %s", peer,
		    gnutls_alert_get_name(gnutls_alert_get(t->session)));
	} else if (ret == GNUTLS_E_UNEXPECTED_PACKET_LENGTH || ret == GNUTLS_E_PREMATURE_TERMINATION ||
		   ret == GNUTLS_E_PUSH_ERROR || ret == GNUTLS_E_PULL_ERROR) {
		say(t->error, sizeof(t->error), "%s closed the connection%s", peer,
		    t->handshaken ? "" : " during the TLS handshake (did it refuse this side's "
					 "certificate?)");
	} else if (ret == GNUTLS_E_UNSUPPORTED_VERSION_PACKET ||
		   ret == GNUTLS_E_UNEXPECTED_PACKET) {
		say(t->error, sizeof(t->error), "%s does not speak TLS (%s)", peer,
		    gnutls_strerror(ret));
	} else {
		say(t->error, sizeof(t->error), "TLS: %s", gnutls_strerror(ret));
	}
}

int transport_handshake(struct transport *t)
{
	int ret;

	if (t->handshaken)
		return 0;
	do
		ret = gnutls_handshake(t->session);
	while (ret == GNUTLS_E_INTERRUPTED ||
	       (ret < 0 && ret != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(ret)));
	if (ret == GNUTLS_E_AGAIN)
		return -EAGAIN;
	if (ret < 0) {
		explain(t, ret);
		/* Tell the peer why, as far as the socket takes it now. */
		if (ret != GNUTLS_E_FATAL_ALERT_RECEIVED && ret != GNUTLS_E_PREMATURE_TERMINATION)
			gnutls_alert_send_appropriate(t->session, ret);
		return -EPROTO;
	}
	t->handshaken = true;
	if (t->creds->role == TLS_SERVER)
		read_peer_name(t);
	return 0;
}

bool transport_wants_write(const struct transport *t)
{
	return t->session && gnutls_record_get_direction(t->session) == 1;
}

ssize_t transport_recv(struct transport *t, void *buffer, size_t size)
{
	ssize_t got;

	if (!t->session) {
		do
			got = recv(t->fd, buffer, size, MSG_DONTWAIT);
		while (got < 0 && errno == EINTR);
		if (got < 0) {
			int err = -errno;

			if (err != -EAGAIN)
				say(t->error, sizeof(t->error), "%s", strerror(errno));
			return err;
		}
		return got;
	}
	do
		got = gnutls_record_recv(t->session, buffer, size);
	while (got == GNUTLS_E_INTERRUPTED || got == GNUTLS_E_REHANDSHAKE ||
	       (got < 0 && got != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(got)));
	if (got == GNUTLS_E_AGAIN)
		return -EAGAIN;
	if (got == GNUTLS_E_PREMATURE_TERMINATION)
		return 0; /* closed without close_notify: the end all the same */
	if (got < 0) {
		explain(t, (int)got);
		return -EPROTO;
	}
	return got;
}

ssize_t transport_send(struct transport *t, const void *data, size_t size)
{
	ssize_t sent;

	if (!t->session) {
		do
			sent = send(t->fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (sent < 0 && errno == EINTR);
		if (sent < 0) {
			int err = -errno;

			if (err != -EAGAIN)
				say(t->error, sizeof(t->error), "%s", strerror(errno));
			return err;
		}
		return sent;
	}
	/* A record that went out in part goes on: GnuTLS holds it, and counts
	 * what it took from data when it was made. */
	do
		sent = t->send_pending ? gnutls_record_send(t->session, NULL, 0)
				       : gnutls_record_send(t->session, data, size);
	while (sent == GNUTLS_E_INTERRUPTED);
	if (sent == GNUTLS_E_AGAIN) {
		t->send_pending = true;
		return -EAGAIN;
	}
	t->send_pending = false;
	if (sent < 0) {
		explain(t, (int)sent);
		return -EPIPE;
	}
	return sent;
}

bool transport_has_pending(const struct transport *t)
{
	return t->session && gnutls_record_check_pending(t->session) > 0;
}
