/* SPDX-License-Identifier: MIT */
/* The next hop the kernel's FIB gives for a routed backend's address, as the
 * XDP program's bpf_fib_lookup will find it: for `list backend`. */
#ifndef TETHERD_NEXTHOP_H
#define TETHERD_NEXTHOP_H

#include <stddef.h>
#include <linux/types.h>

/* One protocol word: "10.1.0.1@eth1" (through that gateway), "direct@eth1"
 * (on link), "none:no-route" (or :unreachable, :blackhole, :prohibit,
 * :local-address, ...). ifindex: the backend's interface (0: any). */
void nexthop_describe(const __u8 addr[16], __u32 ifindex, char *out, size_t size);

#endif
