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

static void add_attr(struct nlmsghdr *header, unsigned short type, const void *data, size_t len)
{
	struct rtattr *attr = (struct rtattr *)((char *)header + NLMSG_ALIGN(header->nlmsg_len));

	attr->rta_type = type;
	attr->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(attr), data, len);
	header->nlmsg_len = NLMSG_ALIGN(header->nlmsg_len) + RTA_ALIGN(attr->rta_len);
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
	add_attr(&req->header, IFA_LOCAL, bytes, len);
	add_attr(&req->header, IFA_ADDRESS, bytes, len);
	return 0;
}

/* The kernel's answer: the error of an NLMSG_ERROR (0 for an ack), or what
 * take says of the first other message it takes (a value >= 0), or
 * -EPROTO. */
static int read_answer(int fd, int (*take)(const struct nlmsghdr *msg))
{
	char buf[1024];
	ssize_t got = recv(fd, buf, sizeof(buf), 0);

	if (got < 0)
		return -errno;
	for (struct nlmsghdr *msg = (struct nlmsghdr *)buf; NLMSG_OK(msg, (size_t)got);
	     msg = NLMSG_NEXT(msg, got)) {
		if (msg->nlmsg_type == NLMSG_ERROR)
			return ((const struct nlmsgerr *)NLMSG_DATA(msg))->error;
		int taken = take ? take(msg) : -1;

		if (taken >= 0)
			return taken;
	}
	return -EPROTO;
}

/* RTM_GETROUTE's answer: 1 when the route is RTN_LOCAL, else 0. */
static int route_type_local(const struct nlmsghdr *msg)
{
	if (msg->nlmsg_type != RTM_NEWROUTE)
		return -1;
	return ((const struct rtmsg *)NLMSG_DATA(msg))->rtm_type == RTN_LOCAL;
}

/* Sends one request and reads the kernel's answer (read_answer). */
static int talk(const struct nlmsghdr *request, int (*take)(const struct nlmsghdr *msg))
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int err;

	if (fd < 0)
		return -errno;
	if (sendto(fd, request, request->nlmsg_len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0)
		err = -errno;
	else
		err = read_answer(fd, take);
	close(fd);
	return err;
}

/* Does the kernel deliver datagrams to addr (IPv6) here yet? */
static int route_is_local6(const __u8 addr[16])
{
	struct {
		struct nlmsghdr header;
		struct rtmsg rtm;
		char attrs[RTA_SPACE(16)];
	} req = {
		.header = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)),
			    .nlmsg_type = RTM_GETROUTE,
			    .nlmsg_flags = NLM_F_REQUEST,
			    .nlmsg_seq = 1 },
		.rtm = { .rtm_family = AF_INET6, .rtm_dst_len = 128 },
	};

	add_attr(&req.header, RTA_DST, addr, 16);
	return talk(&req.header, route_type_local);
}

int vip_make_local(const __u8 addr[16])
{
	struct addr_request req;
	int err = build_request(&req, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, addr);

	if (err)
		return err;
	err = talk(&req.header, NULL);
	if (err && err != -EEXIST)
		return err;
	/* An IPv6 address's local route comes from addrconf's work queue after
	 * the ack (even without DAD): until it is there, a datagram to the
	 * address is dropped (Ip6OutNoRoutes). Up to 2 s on a busy machine. */
	for (int waited_ms = 0; !addr_is_v4mapped(addr) && waited_ms < 2000; waited_ms++) {
		if (route_is_local6(addr) != 0)
			break;
		usleep(1000);
	}
	return err == -EEXIST ? 1 : 0;
}

int vip_remove_local(const __u8 addr[16])
{
	struct addr_request req;
	int err = build_request(&req, RTM_DELADDR, 0, addr);

	if (err)
		return err;
	err = talk(&req.header, NULL);
	return err == -EADDRNOTAVAIL || err == -ENOENT ? 0 : err;
}
