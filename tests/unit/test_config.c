// SPDX-License-Identifier: MIT
/* Unit tests of tetherd's settings (user/tetherd/config.c) that need no BPF:
 * the per-backend agent secrets (--agent-secrets-dir: a file per backend,
 * private to tetherd's user, read again at every auth), the checks of
 * --agent-secrets-dir, --tcp-listen and --user before anything is loaded, and
 * the slow path's budget (--admit-*, --shed-answer-*). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs.h"
#include "config.h"
#include "tether_version.h"

#define SECRET "0123456789abcdef" /* 16 characters: the shortest taken */

struct secrets {
	char dir[64];
	int fd;
	char secret[128];
	char why[768];
};

static void write_file(const struct secrets *s, const char *name, const char *contents,
		       mode_t mode)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	FILE *file = fopen(path, "w");

	assert_non_null(file);
	fputs(contents, file);
	fclose(file);
	assert_int_equal(chmod(path, mode), 0);
}

static int secrets_setup(void **state)
{
	struct secrets *s = calloc(1, sizeof(*s));

	snprintf(s->dir, sizeof(s->dir), "/tmp/tether-test-secrets.XXXXXX");
	assert_non_null(mkdtemp(s->dir)); /* mode 0700 */
	write_file(s, "vm1", "  " SECRET "\n", 0600);
	s->fd = config_open_agent_secrets(s->dir, geteuid(), s->why, sizeof(s->why));
	assert_true(s->fd >= 0);
	*state = s;
	return 0;
}

static int secrets_teardown(void **state)
{
	struct secrets *s = *state;
	char command[128];

	close(s->fd);
	snprintf(command, sizeof(command), "rm -rf '%s'", s->dir);
	assert_int_equal(system(command), 0);
	free(s);
	return 0;
}

static int read_secret(struct secrets *s, const char *backend)
{
	s->secret[0] = '\0';
	return config_read_agent_secret(s->fd, s->dir, backend, geteuid(), s->secret,
					sizeof(s->secret), s->why, sizeof(s->why));
}

static void expect_refused(struct secrets *s, const char *backend, int err, const char *why)
{
	assert_int_equal(read_secret(s, backend), err);
	assert_string_equal(s->secret, "");
	if (!strstr(s->why, why))
		fail_msg("expected '%s' in '%s'", why, s->why);
}

static void test_secret_read(void **state)
{
	struct secrets *s = *state;

	assert_int_equal(read_secret(s, "vm1"), 0);
	assert_string_equal(s->secret, SECRET); /* white space stripped */
	assert_string_equal(s->why, "");
}

static void test_secret_missing(void **state)
{
	struct secrets *s = *state;

	assert_int_equal(read_secret(s, "vm2"), -ENOENT);
	assert_string_equal(s->why, ""); /* no file: no secret of its own, no problem */
}

/* Read at every auth: a secret written while tetherd runs counts at once. */
static void test_secret_changed(void **state)
{
	struct secrets *s = *state;

	write_file(s, "vm1", "fedcba9876543210fedc\n", 0600);
	assert_int_equal(read_secret(s, "vm1"), 0);
	assert_string_equal(s->secret, "fedcba9876543210fedc");
	write_file(s, "vm2", SECRET, 0600);
	assert_int_equal(read_secret(s, "vm2"), 0);
}

static void test_secret_file_refused(void **state)
{
	struct secrets *s = *state;
	char path[128];

	write_file(s, "vm1", SECRET, 0640);
	expect_refused(s, "vm1", -EPERM, "is open to group or others (mode 0640)");
	expect_refused(s, "vm1", -EPERM, "chmod 600");
	write_file(s, "vm1", SECRET, 0604);
	expect_refused(s, "vm1", -EPERM, "chmod 600");
	write_file(s, "vm1", "0123456789abcde", 0600);
	expect_refused(s, "vm1", -EINVAL, "16 to 127 characters");
	write_file(s, "vm1", "0123456789 abcdef", 0600);
	expect_refused(s, "vm1", -EINVAL, "without spaces or '='");
	write_file(s, "vm2", SECRET, 0600);
	snprintf(path, sizeof(path), "%s/vm3", s->dir);
	assert_int_equal(symlink("vm2", path), 0);
	expect_refused(s, "vm3", -ELOOP, "a symbolic link");
	snprintf(path, sizeof(path), "%s/vm4", s->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	expect_refused(s, "vm4", -EINVAL, "is not a regular file");
	/* Names are backend names: nothing outside the directory. */
	expect_refused(s, "../vm1", -EINVAL, "is no backend name");
	expect_refused(s, "", -EINVAL, "is no backend name");
	/* Another user's file: tetherd reads only its own. */
	write_file(s, "vm1", SECRET, 0600);
	assert_int_equal(config_read_agent_secret(s->fd, s->dir, "vm1", geteuid() + 1, s->secret,
						  sizeof(s->secret), s->why, sizeof(s->why)),
			 -EPERM);
	assert_non_null(strstr(s->why, "chown"));
}

/* The directory, opened at start, is checked again at each read. */
static void test_secret_dir_refused(void **state)
{
	struct secrets *s = *state;

	assert_int_equal(chmod(s->dir, 0750), 0);
	expect_refused(s, "vm1", -EPERM, "chmod 700");
	assert_int_equal(chmod(s->dir, 0700), 0);
	assert_int_equal(read_secret(s, "vm1"), 0);
	assert_int_equal(chmod(s->dir, 0701), 0);
	assert_true(config_open_agent_secrets(s->dir, geteuid(), s->why, sizeof(s->why)) < 0);
	assert_non_null(strstr(s->why, "is open to group or others (mode 0701)"));
	assert_int_equal(chmod(s->dir, 0700), 0);
	assert_true(config_open_agent_secrets("/nonexistent-tether", geteuid(), s->why,
					      sizeof(s->why)) == -ENOENT);
}

/* config_parse with the words given (after "tetherd"). */
static int parse(struct tetherd_config *config, const char *const words[])
{
	char *argv[32] = { "tetherd" };
	int argc = 1;

	for (; words[argc - 1]; argc++)
		argv[argc] = (char *)words[argc - 1];
	optind = 0; /* glibc: start over */
	return config_parse(config, argc, argv);
}

/* tetherd's least command line, with one more OPTION VALUE (NULL: none). */
static int parse_least(struct tetherd_config *config, const char *option, const char *value)
{
	return parse(config, (const char *const[]){ "--iface", "lo", "--vip", "198.51.100.1:7777",
						    option, value, NULL });
}

/* A settings file of the least settings and KEYS ("name = value" lines),
 * then WORDS on the command line after --config. */
static int parse_file(struct tetherd_config *config, const char *keys, const char *const words[])
{
	char path[] = "/tmp/tether-test-config.XXXXXX";
	const char *argv[16] = { "--config", path };
	int fd = mkstemp(path), err;

	assert_true(fd >= 0);
	dprintf(fd, "[tetherd]\niface = lo\nvip = 198.51.100.1:7777\n%s", keys);
	close(fd);
	for (int i = 0; words[i]; i++)
		argv[i + 2] = words[i];
	err = parse(config, argv);
	unlink(path);
	return err;
}

static void test_parse_agent_secrets(void **state)
{
	struct secrets *s = *state;
	struct tetherd_config config;

	/* Per-backend secrets without a shared one: a listener of agents only. */
	assert_int_equal(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							       "198.51.100.1:7777", "--tcp-listen",
							       "127.0.0.1:7070", "--tcp-plain",
							       "--agent-secrets-dir", s->dir, NULL }),
			 0);
	assert_string_equal(config.agent_secrets_dir, s->dir);
	assert_string_equal(config.tcp_secret, "");
	/* ... but a TCP listener needs one or the other. */
	assert_true(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							  "198.51.100.1:7777", "--tcp-listen",
							  "127.0.0.1:7070", "--tcp-plain", NULL }) < 0);
	/* Per-backend secrets are for the TCP listener. */
	assert_true(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							  "198.51.100.1:7777", "--agent-secrets-dir",
							  s->dir, NULL }) < 0);
	/* A file of the directory that is not private: refused at start. */
	write_file(s, "vm2", SECRET, 0644);
	assert_true(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							  "198.51.100.1:7777", "--tcp-listen",
							  "127.0.0.1:7070", "--tcp-plain",
							  "--agent-secrets-dir", s->dir, NULL }) < 0);
}

/* The TCP listener's TLS (--tls-cert, --tls-key, --tls-client-ca,
 * --tls-operator) or plain TCP asked for (--tcp-plain); the files loaded at
 * parse time, so a mistake refuses the start; the same from the file. */
static void test_parse_tls(void **state)
{
	struct secrets *s = *state;
	struct tetherd_config config;
	char cert[128], key[128], ca[128], args[256], conf[160];
	const char *listen[] = { "--iface", "lo", "--vip", "198.51.100.1:7777", "--tcp-listen",
				 "127.0.0.1:7070" };
#define WORDS(...) (const char *const[]){ listen[0], listen[1], listen[2], listen[3], \
					  listen[4], listen[5], __VA_ARGS__, NULL }

	char certs[] = "/tmp/tether-test-config-certs.XXXXXX";

	assert_non_null(mkdtemp(certs));
	snprintf(args, sizeof(args), "ca %s ca", certs);
	assert_int_equal(test_certs(args), 0);
	snprintf(args, sizeof(args), "server %s ca tetherd 127.0.0.1", certs);
	assert_int_equal(test_certs(args), 0);
	snprintf(cert, sizeof(cert), "%s/tetherd.pem", certs);
	snprintf(key, sizeof(key), "%s/tetherd-key.pem", certs);
	snprintf(ca, sizeof(ca), "%s/ca.pem", certs);

	/* Client certificates alone authenticate: no secret needed. */
	assert_int_equal(parse(&config, WORDS("--tls-cert", cert, "--tls-key", key,
					      "--tls-client-ca", ca, "--tls-operator", "ops",
					      "--tls-operator", "orchestrator")),
			 0);
	assert_string_equal(config.tls.cert, cert);
	assert_string_equal(config.tls.key, key);
	assert_string_equal(config.tls.client_ca, ca);
	assert_int_equal(config.tls.operator_count, 2);
	assert_string_equal(config.tls.operators[1], "orchestrator");
	assert_false(config.tls.plain);
	/* Server TLS alone: secrets still authenticate. */
	assert_int_equal(parse(&config, WORDS("--tls-cert", cert, "--tls-key", key,
					      "--agent-secrets-dir", s->dir)),
			 0);
	assert_true(parse(&config, WORDS("--tls-cert", cert, "--tls-key", key)) < 0);
	/* Plain only when asked for, and then without TLS options. */
	assert_true(parse(&config, WORDS("--agent-secrets-dir", s->dir)) < 0);
	assert_int_equal(parse(&config, WORDS("--tcp-plain", "--agent-secrets-dir", s->dir)), 0);
	assert_true(config.tls.plain);
	assert_true(parse(&config, WORDS("--tcp-plain", "--tls-cert", cert, "--tls-key", key,
					 "--agent-secrets-dir", s->dir)) < 0);
	/* Half of it, or the wrong files. */
	assert_true(parse(&config, WORDS("--tls-cert", cert, "--agent-secrets-dir", s->dir)) < 0);
	assert_true(parse(&config, WORDS("--tls-cert", cert, "--tls-key", ca,
					 "--agent-secrets-dir", s->dir)) < 0);
	assert_true(parse(&config, WORDS("--tls-cert", cert, "--tls-key", key, "--tls-client-ca",
					 "/nonexistent/ca.pem")) < 0);
	assert_int_equal(chmod(key, 0604), 0);
	assert_true(parse(&config, WORDS("--tls-cert", cert, "--tls-key", key,
					 "--tls-client-ca", ca)) < 0);
	assert_int_equal(chmod(key, 0600), 0);
	assert_true(parse(&config, WORDS("--tls-cert", cert, "--tls-key", key,
					 "--agent-secrets-dir", s->dir, "--tls-operator", "ops")) < 0);
	assert_true(parse(&config, WORDS("--tls-cert", cert, "--tls-key", key, "--tls-client-ca",
					 ca, "--tls-operator", "not a name")) < 0);
	/* TLS options without a listener. */
	assert_true(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							  "198.51.100.1:7777", "--tls-cert", cert,
							  "--tls-key", key, NULL }) < 0);
	assert_true(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							  "198.51.100.1:7777", "--tcp-plain",
							  NULL }) < 0);
	/* The file: the same names; tcp-plain = true. */
	snprintf(conf, sizeof(conf), "%s/tetherd.conf", certs);
	FILE *file = fopen(conf, "w");

	assert_non_null(file);
	fprintf(file, "[tetherd]\niface = lo\nvip = 198.51.100.1:7777\ntcp-listen = 127.0.0.1:7070\n"
		      "tls-cert = %s\ntls-key = %s\ntls-client-ca = %s\ntls-operator = ops;orch\n",
		cert, key, ca);
	fclose(file);
	assert_int_equal(parse(&config, (const char *const[]){ "--config", conf, NULL }), 0);
	assert_string_equal(config.tls.client_ca, ca);
	assert_int_equal(config.tls.operator_count, 2);
	assert_string_equal(config.tls.operators[0], "ops");
	file = fopen(conf, "w");
	fprintf(file, "[tetherd]\niface = lo\nvip = 198.51.100.1:7777\ntcp-listen = 127.0.0.1:7070\n"
		      "tcp-plain = true\nagent-secrets-dir = %s\n",
		s->dir);
	fclose(file);
	assert_int_equal(parse(&config, (const char *const[]){ "--config", conf, NULL }), 0);
	assert_true(config.tls.plain);
	file = fopen(conf, "w");
	fprintf(file, "[tetherd]\niface = lo\nvip = 198.51.100.1:7777\ntcp-listen = 127.0.0.1:7070\n"
		      "tcp-plain = yes\nagent-secrets-dir = %s\n",
		s->dir);
	fclose(file);
	assert_true(parse(&config, (const char *const[]){ "--config", conf, NULL }) < 0);
	snprintf(args, sizeof(args), "rm -rf '%s'", certs);
	assert_int_equal(system(args), 0);
#undef WORDS
}

/* The store's TLS: for https:// endpoints; certificate and key together. */
static void test_parse_store_tls(void **state)
{
	struct secrets *s = *state;
	struct tetherd_config config;
	char pem[128];

	snprintf(pem, sizeof(pem), "%s/vm1", s->dir); /* any readable file */
	assert_int_equal(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							       "198.51.100.1:7777", "--store",
							       "etcd=https://10.0.0.5:2379",
							       "--store-ca", pem, "--store-cert", pem,
							       "--store-key", pem, NULL }),
			 0);
	assert_string_equal(config.fleet.ca, pem);
	assert_string_equal(config.fleet.cert, pem);
	assert_string_equal(config.fleet.key, pem);
	static const char *const bad[][6] = {
		{ "--store", "etcd=http://10.0.0.5:2379", "--store-ca", "PEM", NULL },
		{ "--store", "etcd=https://10.0.0.5:2379", "--store-cert", "PEM", NULL },
		{ "--store", "etcd=https://10.0.0.5:2379", "--store-ca", "/nonexistent", NULL },
		{ "--store-ca", "PEM", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *words[12] = { "--iface", "lo", "--vip", "198.51.100.1:7777" };

		for (int j = 0; bad[i][j]; j++)
			words[4 + j] = strcmp(bad[i][j], "PEM") ? bad[i][j] : pem;
		assert_true(parse(&config, words) < 0);
	}
}

static void test_parse_user(void **state)
{
	struct tetherd_config config;
	struct passwd *me = getpwuid(geteuid());

	(void)state;
	assert_true(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							  "198.51.100.1:7777", "--user",
							  "no-such-user-of-tether-tests", NULL }) < 0);
	if (geteuid() != 0 || !me) {
		skip(); /* becoming a user takes CAP_SETUID, CAP_SETGID, CAP_CHOWN */
		return;
	}
	assert_int_equal(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							       "198.51.100.1:7777", "--user", "nobody",
							       NULL }),
			 0);
	assert_string_equal(config.user, "nobody");
	assert_int_equal(config.user_uid, getpwnam("nobody")->pw_uid);
	assert_int_equal(config.user_gid, getpwnam("nobody")->pw_gid);
}

/* Fleet mode: --store etcd=URL,..., --fleet and --router-name, from the
 * command line and from the file; bad values refused. */
static void test_parse_fleet(void **state)
{
	struct tetherd_config config;
	char path[] = "/tmp/test_config_fleet.XXXXXX";
	int fd = mkstemp(path);
	static const char file[] = "[tetherd]\niface = lo\nvip = 198.51.100.1:7777\n"
				   "store = etcd=http://10.0.0.5:2379,http://10.0.0.6:2379\n"
				   "fleet = edge-1\nrouter-name = r7\n";

	(void)state;
	assert_int_equal(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
							       "198.51.100.1:7777", NULL }),
			 0);
	assert_string_equal(config.fleet.endpoints, "");
	assert_string_equal(config.fleet.name, "default");
	assert_true(fd >= 0 && write(fd, file, sizeof(file) - 1) == (ssize_t)sizeof(file) - 1);
	close(fd);
	assert_int_equal(parse(&config, (const char *const[]){ "--config", path, NULL }), 0);
	assert_string_equal(config.fleet.endpoints, "http://10.0.0.5:2379,http://10.0.0.6:2379");
	assert_string_equal(config.fleet.name, "edge-1");
	assert_string_equal(config.fleet.router, "r7");
	assert_int_equal(parse(&config, (const char *const[]){ "--config", path, "--fleet", "other",
							       NULL }),
			 0);
	assert_string_equal(config.fleet.name, "other");
	unlink(path);
	static const char *const bad[][2] = {
		{ "--store", "http://10.0.0.5:2379" }, /* no etcd= */
		{ "--store", "etcd=" },
		{ "--fleet", "a/b" },
		{ "--router-name", "has space" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(parse(&config, (const char *const[]){ "--iface", "lo", "--vip",
								  "198.51.100.1:7777", "--store",
								  "etcd=http://127.0.0.1:2379", bad[i][0],
								  bad[i][1], NULL }) < 0);
}

/* --version prints "tetherd VERSION" on stdout and is done (main exits 0);
 * it needs no --iface or --vip. */
static void test_parse_version(void **state)
{
	struct tetherd_config config;
	char path[] = "/tmp/test_config_version.XXXXXX", out[128] = "";
	int fd = mkstemp(path), saved = dup(STDOUT_FILENO);

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	fflush(stdout);
	assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	int parsed = parse(&config, (const char *const[]){ "--version", NULL });

	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	assert_int_equal(parsed, 1);
	assert_true(pread(fd, out, sizeof(out) - 1, 0) > 0);
	close(fd);
	unlink(path);
	assert_string_equal(out, "tetherd " TETHER_RELEASE_VERSION "\n");
	assert_true(strlen(TETHER_RELEASE_VERSION) > 0);
}

/* The slow path's budget: defaults, the options, the config file's keys
 * (the command line wins), and values refused before anything is loaded. */
static void test_parse_admission(void **state)
{
	struct tetherd_config config;
	(void)state;

	assert_int_equal(parse_least(&config, NULL, NULL), 0);
	assert_int_equal(config.admission.function_rate, TETHERD_DEFAULT_ADMIT_RATE);
	assert_int_equal(config.admission.function_burst, TETHERD_DEFAULT_ADMIT_BURST);
	assert_int_equal(config.admission.total_rate, TETHERD_DEFAULT_ADMIT_TOTAL_RATE);
	assert_int_equal(config.admission.total_burst, TETHERD_DEFAULT_ADMIT_TOTAL_BURST);
	assert_int_equal(config.admission.answer_rate, TETHERD_DEFAULT_SHED_ANSWER_RATE);
	assert_int_equal(config.admission.answer_burst, TETHERD_DEFAULT_SHED_ANSWER_BURST);

	assert_int_equal(parse(&config, (const char *const[]){
				       "--iface", "lo", "--vip", "198.51.100.1:7777",
				       "--admit-rate", "10", "--admit-burst", "20",
				       "--admit-total-rate", "30", "--admit-total-burst", "40",
				       "--shed-answer-rate", "0", "--shed-answer-burst", "0", NULL }),
			 0);
	assert_int_equal(config.admission.function_rate, 10);
	assert_int_equal(config.admission.function_burst, 20);
	assert_int_equal(config.admission.total_rate, 30);
	assert_int_equal(config.admission.total_burst, 40);
	assert_int_equal(config.admission.answer_rate, 0); /* no cap: its burst is moot */
	assert_int_equal(config.admission.answer_burst, 0);

	assert_int_equal(parse_file(&config, "admit-rate = 7\nadmit-total-burst = 9\n"
					     "shed-answer-rate = 11\n",
				    (const char *const[]){ "--admit-rate", "8", NULL }),
			 0);
	assert_int_equal(config.admission.function_rate, 8); /* the command line wins */
	assert_int_equal(config.admission.total_burst, 9);
	assert_int_equal(config.admission.answer_rate, 11);
	assert_int_equal(config.admission.function_burst, TETHERD_DEFAULT_ADMIT_BURST);

	static const char *const refused[][2] = {
		{ "--admit-burst", "0" },             /* a rate that admits nothing */
		{ "--admit-total-burst", "0" },
		{ "--shed-answer-burst", "0" },
		{ "--admit-rate", "1000000001" },     /* above 1e9 per second */
		{ "--admit-total-rate", "-1" },       /* not a number */
		{ "--shed-answer-rate", "many" },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (parse_least(&config, refused[i][0], refused[i][1]) >= 0)
			fail_msg("%s %s was taken", refused[i][0], refused[i][1]);
}

/* The restart grace: its default, the option, the settings file's key. */
static void test_parse_restart_grace(void **state)
{
	struct tetherd_config config;
	(void)state;

	assert_int_equal(parse_least(&config, NULL, NULL), 0);
	assert_int_equal(config.restart_grace_ms, 15000);
	assert_int_equal(parse_least(&config, "--restart-grace-ms", "0"), 0);
	assert_int_equal(config.restart_grace_ms, 0);
	assert_int_equal(parse_file(&config, "restart-grace-ms = 60000\n",
				    (const char *const[]){ NULL }),
			 0);
	assert_int_equal(config.restart_grace_ms, 60000);
	assert_true(parse_least(&config, "--restart-grace-ms", "soon") < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_secret_read, secrets_setup, secrets_teardown),
		cmocka_unit_test_setup_teardown(test_secret_missing, secrets_setup,
						secrets_teardown),
		cmocka_unit_test_setup_teardown(test_secret_changed, secrets_setup,
						secrets_teardown),
		cmocka_unit_test_setup_teardown(test_secret_file_refused, secrets_setup,
						secrets_teardown),
		cmocka_unit_test_setup_teardown(test_secret_dir_refused, secrets_setup,
						secrets_teardown),
		cmocka_unit_test_setup_teardown(test_parse_agent_secrets, secrets_setup,
						secrets_teardown),
		cmocka_unit_test_setup_teardown(test_parse_tls, secrets_setup, secrets_teardown),
		cmocka_unit_test_setup_teardown(test_parse_store_tls, secrets_setup,
						secrets_teardown),
		cmocka_unit_test(test_parse_user),
		cmocka_unit_test(test_parse_version),
		cmocka_unit_test(test_parse_fleet),
		cmocka_unit_test(test_parse_admission),
		cmocka_unit_test(test_parse_restart_grace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
