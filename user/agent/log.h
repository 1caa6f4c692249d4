/* SPDX-License-Identifier: MIT */
/* The agent's messages: one line per lifecycle step to stderr, each
 * starting "tether-agent: ". */
#ifndef TETHER_AGENT_LOG_H
#define TETHER_AGENT_LOG_H

void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
