/* SPDX-License-Identifier: MIT */
/* The clock every deadline of the agent is measured on. */
#ifndef TETHER_AGENT_CLOCK_H
#define TETHER_AGENT_CLOCK_H

#include <linux/types.h>

/* CLOCK_MONOTONIC in milliseconds. */
__u64 now_ms(void);

#endif
