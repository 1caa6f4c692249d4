// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

static struct service_key make_key(const __u8 addr[16], __u16 port)
{
	struct service_key key = { .port = htons(port) };

	memcpy(key.addr, addr, 16);
	return key;
}

/* Ports of one address share its address-only entry (port 0): it is removed
 * with the last of them. */
static int address_in_use(int fd, const __u8 addr[16])
{
	struct service_key key, next;
	const struct service_key *previous = NULL;

	while (!bpf_map_get_next_key(fd, previous, &next)) {
		if (next.port != 0 && !memcmp(next.addr, addr, 16))
			return 1;
		key = next;
		previous = &key;
	}
	return 0;
}

static int add_service(struct dataplane *dp, const __u8 addr[16], __u16 port,
		       __u32 service_id, enum service_kind kind)
{
	int fd = bpf_map__fd(dp->skel->maps.services);
	struct service_key key = make_key(addr, port);
	struct service_key address_only = make_key(addr, 0);
	struct service_info info = { .service_id = service_id, .kind = kind };

	if (port == 0)
		return -EINVAL;
	if (bpf_map_update_elem(fd, &address_only, &info, BPF_ANY))
		return -errno;
	if (bpf_map_update_elem(fd, &key, &info, BPF_ANY)) {
		int err = -errno;

		if (!address_in_use(fd, addr))
			bpf_map_delete_elem(fd, &address_only);
		return err;
	}
	return 0;
}

int service_add(struct dataplane *dp, const __u8 addr[16], __u16 port, __u32 service_id)
{
	return add_service(dp, addr, port, service_id, SERVICE_REQUESTS);
}

int service_add_completion(struct dataplane *dp, const __u8 addr[16], __u16 port)
{
	return add_service(dp, addr, port, 0, SERVICE_COMPLETION);
}

int service_del(struct dataplane *dp, const __u8 addr[16], __u16 port)
{
	int fd = bpf_map__fd(dp->skel->maps.services);
	struct service_key key = make_key(addr, port);
	struct service_key address_only = make_key(addr, 0);

	if (port == 0)
		return -EINVAL;
	if (bpf_map_delete_elem(fd, &key))
		return -errno;
	if (!address_in_use(fd, addr))
		bpf_map_delete_elem(fd, &address_only);
	return 0;
}
