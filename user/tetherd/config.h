/* SPDX-License-Identifier: MIT */
/* tetherd's settings: defaults, then the config file (--config), then the
 * command line, which wins. */
#ifndef TETHER_CONFIG_H
#define TETHER_CONFIG_H

#include "tetherd.h"

#define TETHERD_DEFAULT_PIN_ROOT "/sys/fs/bpf/tether"
#define TETHERD_DEFAULT_SOCKET "/run/tether/tetherd.sock"

/* The slow path's budget (bpf/admission.h): per function, a cold start's
 * worth of held requests at once (--queue's 256) and 500/s after; every
 * function together, ten functions' worth; answers over budget, 100,000/s
 * (a few megabytes a second of reflection at most, a percent of a core). */
#define TETHERD_DEFAULT_ADMIT_RATE 500
#define TETHERD_DEFAULT_ADMIT_BURST 256
#define TETHERD_DEFAULT_ADMIT_TOTAL_RATE 5000
#define TETHERD_DEFAULT_ADMIT_TOTAL_BURST 2048
#define TETHERD_DEFAULT_SHED_ANSWER_RATE 100000
#define TETHERD_DEFAULT_SHED_ANSWER_BURST 10000

/* 0: run; 1: done (--help or --version printed); negative: bad settings (message printed). */
int config_parse(struct tetherd_config *config, int argc, char **argv);

/* A backend's name, as the protocol has it: [A-Za-z0-9._-]{1,31}. */
bool config_is_name(const char *name);

/* --agent-secrets-dir: opened once, at start (as root, so its parents need
 * not be open to --user), and checked: a directory of owner's that nobody
 * else may use. Returns its fd, or a negative errno with why, a sentence for
 * the operator. */
int config_open_agent_secrets(const char *dir, uid_t owner, char *why, size_t size);

/* Backend's own secret: the file backend in the directory dir_fd (dir, its
 * path, for messages), read again at every auth, so a secret added, changed
 * or removed while tetherd runs counts at once. The directory and the file
 * must be owner's and private to it (as ssh wants its keys), the file a
 * regular one holding 16-127 characters. 0 with the secret; -ENOENT with why
 * empty when backend has no file; else a negative errno with why. */
int config_read_agent_secret(int dir_fd, const char *dir, const char *backend, uid_t owner,
			     char *secret, size_t secret_size, char *why, size_t size);

#endif
