/* SPDX-License-Identifier: MIT */
/* Replies that come back through the edge host. A VM answers its clients
 * from the service address (direct server return); when the edge host is
 * the VM's gateway, those replies cross it, arriving on the backend's
 * interface with a source address the host holds itself (tetherd puts the
 * VIPs on lo for the slow path). Linux drops such packets as martians
 * unless net.ipv4.conf.IF.accept_local is 1, and with strict reverse-path
 * filtering (rp_filter 1, on IF or all) even then. IPv6 has no such check.
 *
 * tetherd checks each backend's interface once, when a backend on it comes
 * up (or is adopted): it warns, saying what to set, or with --accept-local
 * sets accept_local=1 and turns the interface's rp_filter 1 into 2 (loose)
 * itself (CAP_NET_ADMIN, which tetherd keeps, lets it write those). */
#ifndef TETHER_MARTIANS_H
#define TETHER_MARTIANS_H

#include <stdbool.h>
#include <stddef.h>

struct martians;

/* fix: --accept-local. sysctl_root: "/proc/sys" (tests point it elsewhere). */
struct martians *martians_new(bool fix, const char *sysctl_root);
void martians_free(struct martians *mt);

/* Checks iface (once; a failed fix is tried again next time), backend naming
 * the backend that brought it up. Returns what it found or did, a sentence
 * for the log, also printed; empty when all is well. */
const char *martians_check(struct martians *mt, const char *iface, const char *backend);

#endif
