/* SPDX-License-Identifier: MIT */
/* The slow path's sends to routed backends (encap vxlan or ipip): the
 * stamped request, as an IP packet, handed to the kernel in a VXLAN datagram
 * (a UDP socket) or as the payload of a raw IPIP/IPv6 socket, from the
 * --encap-source address. The kernel routes it and resolves the neighbour
 * (a request the XDP program passed up because the next hop's neighbour was
 * unresolved is delivered this way, and the next ones take the fast path
 * again). It never fragments: too big is -EMSGSIZE. */
#ifndef TETHERD_ROUTED_SEND_H
#define TETHERD_ROUTED_SEND_H

#include <stddef.h>
#include <linux/types.h>

#include "tether/maps.h"

struct routed_send {
	int fds[2][3]; /* [outer IPv6][VXLAN, IPIP of IPv4, IPIP of IPv6]; -1: not open */
};

void routed_send_init(struct routed_send *rs);
void routed_send_close(struct routed_send *rs);

/* frame: an Ethernet header (eth_len bytes, no VLAN tag) and the request's
 * IP packet; the header is rewritten for VXLAN's inner frame. Returns 0 or
 * a negative errno (-EMSGSIZE: over the path's MTU; -ENETUNREACH, ...). */
int routed_send(struct routed_send *rs, const struct encap_config *sources,
		const struct backend_record *backend, __u8 *frame, size_t len, size_t eth_len,
		__u16 sport);

#endif
