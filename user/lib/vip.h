/* SPDX-License-Identifier: MIT */
/* Service addresses as local addresses: a VIP on `lo` (/32 or /128) makes
 * the host stack deliver requests for it to a socket bound there. On the
 * edge host that is tetherd's slow path (what the XDP program passes up); on
 * a VM it is the agent. Plain rtnetlink, no `ip` commands. */
#ifndef TETHER_VIP_H
#define TETHER_VIP_H

#include <linux/types.h>

/* Adds addr (16 bytes, v4-mapped for IPv4) to lo. Returns 0 when it added
 * the address, 1 when the address was local already (EEXIST), or a negative
 * errno. */
int vip_make_local(const __u8 addr[16]);

/* Removes addr from lo. Returns 0, also when the address was not there, or
 * a negative errno. */
int vip_remove_local(const __u8 addr[16]);

#endif
