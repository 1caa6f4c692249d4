// SPDX-License-Identifier: MIT
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_arp.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

int backend_set(struct dataplane *dp, __u32 backend_id, const struct backend_record *record)
{
	struct backend_record filled = *record;
	struct bpf_devmap_val port = { .ifindex = record->ifindex };
	char iface[IF_NAMESIZE];
	int err;

	if (backend_id >= TETHER_MAX_BACKENDS || record->state == BACKEND_FREE ||
	    record->vlan > TETHER_VLAN_MAX || record->encap > BACKEND_IPIP ||
	    (record->encap != BACKEND_L2 && record->vlan))
		return -EINVAL;
	/* A routed backend's egress is the FIB's, packet by packet: no source
	 * MAC and no tx_ports entry (bpf/encap.h redirects by ifindex). */
	if (record->encap != BACKEND_L2) {
		if (record->ifindex && !if_indextoname(record->ifindex, iface))
			return -ENODEV;
		if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.backends), &backend_id, record,
					BPF_ANY))
			return -errno;
		return 0;
	}
	if (!if_indextoname(record->ifindex, iface))
		return -ENODEV;
	if ((err = interface_mac(iface, filled.src_mac)))
		return err;
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.tx_ports), &filled.ifindex, &port,
				BPF_ANY))
		return -errno;
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.backends), &backend_id, &filled,
				BPF_ANY))
		return -errno;
	return 0;
}

int backend_get(struct dataplane *dp, __u32 backend_id, struct backend_record *record)
{
	if (backend_id >= TETHER_MAX_BACKENDS)
		return -EINVAL;
	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.backends), &backend_id, record))
		return -errno;
	return record->state == BACKEND_FREE ? -ENOENT : 0;
}

/* The interface stays in tx_ports: other backends may sit behind it, and an
 * unused entry costs nothing. */
int backend_del(struct dataplane *dp, __u32 backend_id)
{
	struct backend_record freed = {};

	if (backend_id >= TETHER_MAX_BACKENDS)
		return -EINVAL;
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.backends), &backend_id, &freed,
				BPF_ANY))
		return -errno;
	return 0;
}
