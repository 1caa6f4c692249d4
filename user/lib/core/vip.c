// SPDX-License-Identifier: MIT
#include "core.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>


struct addr_request {
	struct nlmsghdr header;
	struct ifaddrmsg ifa;
	char attrs[2 * RTA_SPACE(16)];
};

static void add_attr(struct addr_request *req, unsigned short type, const void *data,
		     size_t len)
{
	struct rtattr *attr = (struct rtattr *)((char *)req + NLMSG_ALIGN(req->header.nlmsg_len));

	attr->rta_type = type;
	attr->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(attr), data, len);
	req->header.nlmsg_len = NLMSG_ALIGN(req->header.nlmsg_len) + RTA_ALIGN(attr->rta_len);
}

/* One RTM_NEWADDR or RTM_DELADDR for addr on lo, /32 or /128. */
static int build_request(struct addr_request *req, __u16 type, __u16 flags,
			 const __u8 addr[16])
{
	unsigned int lo = if_nametoindex("lo");
	int v4 = addr_is_v4mapped(addr);
	const __u8 *bytes = v4 ? addr + 12 : addr;
	size_t len = v4 ? 4 : 16;

	if (!lo)
		return -ENODEV;
	memset(req, 0, sizeof(*req));
	req->header.nlmsg_len = NLMSG_LENGTH(sizeof(req->ifa));
	req->header.nlmsg_type = type;
	req->header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	req->header.nlmsg_seq = 1;
	req->ifa.ifa_family = v4 ? AF_INET : AF_INET6;
	req->ifa.ifa_prefixlen = v4 ? 32 : 128;
	/* Global scope: the host must accept requests for it from outside. */
	req->ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	/* No duplicate address detection: the VIP is ours by configuration. */
	req->ifa.ifa_flags = v4 ? 0 : IFA_F_NODAD;
	req->ifa.ifa_index = lo;
	add_attr(req, IFA_LOCAL, bytes, len);
	add_attr(req, IFA_ADDRESS, bytes, len);
	return 0;
}

/* The kernel's answer to the request: 0 or a negative errno. */
static int read_ack(int fd)
{
	char buf[1024];
	ssize_t got = recv(fd, buf, sizeof(buf), 0);

	if (got < 0)
		return -errno;
	for (struct nlmsghdr *msg = (struct nlmsghdr *)buf; NLMSG_OK(msg, (size_t)got);
	     msg = NLMSG_NEXT(msg, got)) {
		if (msg->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *err = NLMSG_DATA(msg);

			return err->error;
		}
	}
	return -EPROTO;
}

static int talk(struct addr_request *req)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int err;

	if (fd < 0)
		return -errno;
	if (sendto(fd, req, req->header.nlmsg_len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0)
		err = -errno;
	else
		err = read_ack(fd);
	close(fd);
	return err;
}

int vip_make_local(const __u8 addr[16])
{
	struct addr_request req;
	int err = build_request(&req, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, addr);

	if (err)
		return err;
	err = talk(&req);
	return err == -EEXIST ? 1 : err;
}

int vip_remove_local(const __u8 addr[16])
{
	struct addr_request req;
	int err = build_request(&req, RTM_DELADDR, 0, addr);

	if (err)
		return err;
	err = talk(&req);
	return err == -EADDRNOTAVAIL || err == -ENOENT ? 0 : err;
}
