/* SPDX-License-Identifier: MIT */
/* Least privilege: once tetherd has loaded, adopted, pinned, attached and
 * bound, it keeps only the capabilities its running work needs, and drops
 * every other one from its effective, permitted, inheritable, ambient and
 * bounding sets (so no exec regains them):
 *   CAP_BPF        new pool tables (BPF_MAP_CREATE);
 *   CAP_NET_ADMIN  taking the VIPs off lo when it stops, unload;
 *   CAP_NET_RAW    the slow path's AF_PACKET socket, opened on first use.
 * Map reads and writes go through fds it already holds and need none.
 * A restart or an upgrade is a new process, with the privileges it starts
 * with: attaching, pinning and mounting happen before the drop. */
#ifndef TETHER_PRIVILEGES_H
#define TETHER_PRIVILEGES_H

#include <stddef.h>

/* Drops all but the kept capabilities (those of them tetherd has). On
 * success writes the kept set, "cap_bpf cap_net_admin cap_net_raw", into
 * kept and returns 0; else a negative errno. */
int privileges_drop(char *kept, size_t size);

/* Raises the soft limit of open files to the hard one: every pool table
 * tetherd keeps for the slow path is an fd. Returns the soft limit now. */
unsigned long privileges_raise_nofile(void);

#endif
