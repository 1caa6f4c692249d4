// SPDX-License-Identifier: MIT
/* The slow path's sends to routed backends (routed_send.h). */
#include "routed_send.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/if_ether.h>

enum { SOCK_VXLAN, SOCK_IPIP4, SOCK_IPIP6 };

/* The inner frame's source: any unicast address but the VM's vxlan device's
 * own (the kernel drops those as loops); 02:54:46 is not a default's. */
static const __u8 inner_source[ETH_ALEN] = { 0x02, 0x54, 0x46, 0x00, 0x00, 0x01 };

struct vxlan_header {
	__u8 flags;
	__u8 reserved1[3];
	__u8 vni[3];
	__u8 reserved2;
};

void routed_send_init(struct routed_send *rs)
{
	for (int f = 0; f < 2; f++)
		for (int k = 0; k < 3; k++)
			rs->fds[f][k] = -1;
}

void routed_send_close(struct routed_send *rs)
{
	for (int f = 0; f < 2; f++)
		for (int k = 0; k < 3; k++)
			if (rs->fds[f][k] >= 0)
				close(rs->fds[f][k]);
	routed_send_init(rs);
}

static int open_socket(struct routed_send *rs, const struct encap_config *sources, bool v6,
		       int kind)
{
	int *fd = &rs->fds[v6][kind];
	int family = v6 ? AF_INET6 : AF_INET;
	int type = kind == SOCK_VXLAN ? SOCK_DGRAM : SOCK_RAW;
	int proto = kind == SOCK_VXLAN ? 0 : kind == SOCK_IPIP4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	struct sockaddr_storage local = {};
	int dont = IP_PMTUDISC_DO, on = 1;

	if (*fd >= 0)
		return *fd;
	int s = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);

	if (s < 0)
		return -errno;
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&local;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, sources->source6, 16);
		setsockopt(s, IPPROTO_IPV6, IPV6_DONTFRAG, &on, sizeof(on));
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&local;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = sources->source4;
		setsockopt(s, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof(dont));
	}
	/* Only sends: nothing is ever read from it. */
	int zero = 0;

	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &zero, sizeof(zero));
	if (bind(s, (struct sockaddr *)&local, v6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in))) {
		int err = -errno;

		close(s);
		return err;
	}
	shutdown(s, SHUT_RD);
	*fd = s;
	return s;
}

int routed_send(struct routed_send *rs, const struct encap_config *sources,
		const struct backend_record *backend, __u8 *frame, size_t len, size_t eth_len,
		__u16 sport)
{
	bool v6 = !(backend->addr[10] == 0xff && backend->addr[11] == 0xff &&
		    !memcmp(backend->addr, "\0\0\0\0\0\0\0\0\0\0", 10));
	bool inner_v4 = (frame[eth_len] >> 4) == 4;
	bool vxlan = backend->encap == BACKEND_VXLAN;
	int kind = vxlan ? SOCK_VXLAN : inner_v4 ? SOCK_IPIP4 : SOCK_IPIP6;
	static const __u8 zero16[16];

	if (v6 ? !memcmp(sources->source6, zero16, 16) : !sources->source4)
		return -EADDRNOTAVAIL;

	int fd = open_socket(rs, sources, v6, kind);

	if (fd < 0)
		return fd;

	struct sockaddr_storage to = {};
	socklen_t to_len;
	__u16 port = vxlan ? htons(TETHER_VXLAN_PORT) : 0;

	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&to;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
		memcpy(&sin6->sin6_addr, backend->addr, 16);
		to_len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&to;

		sin->sin_family = AF_INET;
		sin->sin_port = port;
		memcpy(&sin->sin_addr, backend->addr + 12, 4);
		to_len = sizeof(*sin);
	}
	(void)sport; /* the kernel picks the socket's port: the slow path is no ECMP load */

	struct vxlan_header vxlan_hdr = { .flags = 0x08 };
	struct iovec iov[2];
	int parts = 0;

	if (vxlan) {
		struct ethhdr *inner = (struct ethhdr *)frame;

		memcpy(vxlan_hdr.vni, backend->tunnel.vni, 3);
		memcpy(inner->h_dest, backend->mac, ETH_ALEN);
		memcpy(inner->h_source, inner_source, ETH_ALEN);
		iov[parts++] = (struct iovec){ &vxlan_hdr, sizeof(vxlan_hdr) };
		iov[parts++] = (struct iovec){ frame, len };
	} else {
		iov[parts++] = (struct iovec){ frame + eth_len, len - eth_len };
	}

	struct msghdr msg = { .msg_name = &to, .msg_namelen = to_len, .msg_iov = iov,
			      .msg_iovlen = (size_t)parts };

	if (sendmsg(fd, &msg, 0) < 0)
		return -errno;
	return 0;
}
