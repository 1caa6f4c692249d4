// SPDX-License-Identifier: MIT
/* The outer source addresses of routed backends' packets (encap_config). */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

int encap_config_set(struct dataplane *dp, const struct encap_config *config)
{
	__u32 zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.encap_config), &zero, config, BPF_ANY))
		return -errno;
	return 0;
}

int encap_config_get(struct dataplane *dp, struct encap_config *config)
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.encap_config), &zero, config))
		return -errno;
	return 0;
}

bool encap_source_for(const struct encap_config *config, const __u8 addr[16])
{
	static const __u8 zero[16];

	if (addr_is_v4mapped(addr))
		return config->source4 != 0;
	return memcmp(config->source6, zero, 16) != 0;
}
