/* SPDX-License-Identifier: MIT */
/* The VIPs as local addresses of the VM: each on lo (/32 or /128, global
 * scope, no duplicate address detection), put there by the agent through
 * rtnetlink rather than by running `ip`, so the VM's kernel delivers the
 * router's requests for them to the agent's sockets. */
#ifndef TETHER_AGENT_VIP_LOCAL_H
#define TETHER_AGENT_VIP_LOCAL_H

#include <linux/types.h>

/* Adds addr (16 bytes, v4-mapped for IPv4) to lo. Returns 0 when it added
 * it, 1 when it was there already, or a negative errno. */
int agent_vip_add(const __u8 addr[16]);

/* Removes addr from lo: 0 (also when it was not there) or a negative errno. */
int agent_vip_remove(const __u8 addr[16]);

#endif
