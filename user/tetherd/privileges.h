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
 * with: attaching, pinning and mounting happen before the drop.
 *
 * With --user it also stops being root: it takes the user's uid, gid and
 * groups, so it owns no root file any more, and keeps the same three
 * capabilities (PR_SET_KEEPCAPS across setuid, then capset). What it does
 * after that needs no root file: map fds, its sockets and netlink are held
 * or need only the kept capabilities; the per-backend agent secrets are the
 * user's own files; unload opens, detaches and removes the pins through the
 * user's group, which the pins are shared with (root keeps owning them, so
 * the next tetherd, root again, adopts them). What the user cannot do: remove
 * the control socket and the emptied pin root when it exits (the directories
 * holding them are root's); the next tetherd replaces the socket. */
#ifndef TETHER_PRIVILEGES_H
#define TETHER_PRIVILEGES_H

#include <stddef.h>
#include <sys/types.h>

/* The user tetherd runs as after start; a NULL one: stay root. */
struct privileges_user {
	const char *name;
	uid_t uid;
	gid_t gid;
};

/* Whether this process can become another user later: 0, or -EPERM with
 * the capabilities it lacks in why (checked before anything is pinned). */
int privileges_can_switch(char *why, size_t size);

/* Lets group gid open and remove the pins: the pin root becomes root:gid
 * 0770, each pin in it root:gid 0660. 0 or a negative errno (printed). */
int privileges_share_pins(const char *pin_root, gid_t gid);

/* Drops all but the kept capabilities (those of them tetherd has) and, with
 * a user, becomes that user keeping them. On success writes the kept set,
 * "cap_bpf cap_net_admin cap_net_raw", into kept and returns 0; else a
 * negative errno. */
int privileges_drop(const struct privileges_user *user, char *kept, size_t size);

/* Raises the soft limit of open files to the hard one: every pool table
 * tetherd keeps for the slow path is an fd. Returns the soft limit now. */
unsigned long privileges_raise_nofile(void);

#endif
