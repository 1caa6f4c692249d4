/* SPDX-License-Identifier: MIT */
/* The agent's event loop: one epoll set, a callback per file descriptor,
 * and the monotonic clock every deadline of the agent is measured on. */
#ifndef TETHER_AGENT_LOOP_H
#define TETHER_AGENT_LOOP_H

#include <linux/types.h>
#include <stdint.h>

struct loop;
typedef void (*loop_callback)(void *ctx, int fd, uint32_t events);

struct loop *loop_new(void);
void loop_free(struct loop *loop);
int loop_add(struct loop *loop, int fd, uint32_t events, loop_callback callback, void *ctx);
int loop_modify(struct loop *loop, int fd, uint32_t events);
/* Forgets fd (the caller closes it). Safe from within a callback. */
void loop_remove(struct loop *loop, int fd);
/* Waits up to timeout_ms and runs the callbacks of the ready fds. */
int loop_run_once(struct loop *loop, int timeout_ms);

/* CLOCK_MONOTONIC in milliseconds. */
__u64 now_ms(void);

#endif
