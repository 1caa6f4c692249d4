/* SPDX-License-Identifier: MIT */
/* tetherctl's help and usage lines, written from the command table. */
#ifndef TETHER_CTL_HELP_H
#define TETHER_CTL_HELP_H

#include <glib.h>

#include "args.h"

/* The help inv asks for: one command's, a group's ("backend --help") or,
 * when the command line named neither, every command's. */
void ctl_help(GString *out, const struct ctl_invocation *inv);

/* The usage line(s) to print after a usage error, for as much of the
 * command as the line named. */
void ctl_usage(GString *out, const struct ctl_invocation *inv);

/* "backend add NAME --addr ADDR --mac MAC --iface IF [--heartbeat-ms N]" */
void ctl_synopsis(GString *out, const struct ctl_command *command);

#endif
