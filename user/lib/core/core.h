/* SPDX-License-Identifier: MIT */
/* libtether-core: the plumbing Tether's daemons share, none of it specific to
 * routing: the event loop (loop.c) that tetherd and tether-agent run on,
 * addresses in the 16-byte form the maps and the control protocol use, and
 * "ADDR:PORT" endpoints as operators write them (addr.c), interfaces by name
 * (interface.c), and service addresses made local on lo over rtnetlink
 * (vip.c). Used by tetherd, tether-agent, the data-plane library and the
 * tests; it uses nothing of Tether's but include/tether. */
#ifndef TETHER_CORE_H
#define TETHER_CORE_H

#include <linux/types.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- The event loop (loop.c) ---------------------------------------------- */

/* One epoll set, a callback per file descriptor. */

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

/* ---- Addresses (addr.c) --------------------------------------------------- */

/* Addresses in the maps' and the control protocol's 16-byte form: IPv6, or
 * IPv4 mapped into IPv6 (::ffff:a.b.c.d), so one field holds either family. */

/* "192.0.2.1" or "2001:db8::1" to the 16-byte form: 0, or -EINVAL. */
int addr_parse(const char *text, __u8 out[16]);
/* The 16-byte form as text: 0, or -ENOSPC when size is too small. */
int addr_format(const __u8 addr[16], char *out, size_t size);
/* 1 when addr is an IPv4 address (v4-mapped), else 0. */
int addr_is_v4mapped(const __u8 addr[16]);

/* Endpoints as operators write them: "ADDR:PORT", an IPv6 address in
 * brackets ("192.0.2.1:7777", "[2001:db8::1]:7777"), the port 1-65535 in
 * decimal. Anything else (a bare IPv6 address, a name, "[192.0.2.1]:7777", a
 * port of 0 or "7777x") is -EINVAL; else 0, with the address in the 16-byte
 * form and the port. */
int endpoint_parse(const char *text, __u8 addr[16], __u16 *port);
/* The address and port as a socket address to bind or connect: its length. */
socklen_t endpoint_sockaddr(const __u8 addr[16], __u16 port, struct sockaddr_storage *out);

/* ---- Interfaces (interface.c) --------------------------------------------- */

/* The Ethernet address of the interface named iface: 0 or -errno. */
int interface_mac(const char *iface, __u8 mac[6]);

/* ---- Service addresses on lo (vip.c) -------------------------------------- */

/* Service addresses as local addresses: a VIP on `lo` (/32 or /128) makes
 * the host stack deliver requests for it to a socket bound there. On the
 * edge host that is tetherd's slow path (what the XDP program passes up); on
 * a VM it is the agent. Plain rtnetlink, no `ip` commands. */

/* Adds addr (16 bytes, v4-mapped for IPv4) to lo and waits (up to 2 s) until
 * the kernel delivers datagrams to it. Returns 0 when it added the address, 1
 * when the address was local already (EEXIST), or a negative errno. */
int vip_make_local(const __u8 addr[16]);

/* Removes addr from lo. Returns 0, also when the address was not there, or
 * a negative errno. */
int vip_remove_local(const __u8 addr[16]);

#endif
