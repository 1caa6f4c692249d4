/* SPDX-License-Identifier: MIT */
/* The event loop of tetherd and tether-agent: one epoll set, a callback per
 * file descriptor. */
#ifndef TETHER_LOOP_H
#define TETHER_LOOP_H

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

#endif
