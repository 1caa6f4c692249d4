/* SPDX-License-Identifier: MIT */
/* tetherd's settings: defaults, then the config file (--config), then the
 * command line, which wins. */
#ifndef TETHER_CONFIG_H
#define TETHER_CONFIG_H

#include "tetherd.h"

#define TETHERD_DEFAULT_PIN_ROOT "/sys/fs/bpf/tether"
#define TETHERD_DEFAULT_SOCKET "/run/tether/tetherd.sock"

/* 0: run; 1: done (--help printed); negative: bad settings (message printed). */
int config_parse(struct tetherd_config *config, int argc, char **argv);

/* "198.51.100.1:7777" or "[2001:db8::1]:7777". */
int config_parse_vip(const char *text, struct tetherd_vip *vip);

#endif
