// SPDX-License-Identifier: MIT
/* One RTM_GETROUTE per call ("ip route get ADDR [oif IF]"): list backend is
 * rare, and the answer must be the kernel's of the moment. */
#include "nexthop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "core/core.h"

struct route_request {
	struct nlmsghdr header;
	struct rtmsg rt;
	char attrs[64];
};

static void add_attr(struct route_request *req, unsigned short type, const void *data, size_t len)
{
	struct rtattr *attr = (struct rtattr *)((char *)req + NLMSG_ALIGN(req->header.nlmsg_len));

	attr->rta_type = type;
	attr->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(attr), data, len);
	req->header.nlmsg_len = NLMSG_ALIGN(req->header.nlmsg_len) + RTA_ALIGN(attr->rta_len);
}

static void describe_route(struct nlmsghdr *msg, int family, char *out, size_t size)
{
	struct rtmsg *rt = NLMSG_DATA(msg);
	int len = (int)RTM_PAYLOAD(msg);
	char gateway[INET6_ADDRSTRLEN] = "", dev[IF_NAMESIZE] = "?";

	if (rt->rtm_type != RTN_UNICAST) {
		snprintf(out, size, "none:%s", rt->rtm_type == RTN_LOCAL ? "local-address"
					       : rt->rtm_type == RTN_BLACKHOLE ? "blackhole"
					       : rt->rtm_type == RTN_UNREACHABLE ? "unreachable"
					       : rt->rtm_type == RTN_PROHIBIT ? "prohibit" : "not-unicast");
		return;
	}
	for (struct rtattr *attr = RTM_RTA(rt); RTA_OK(attr, len); attr = RTA_NEXT(attr, len)) {
		if (attr->rta_type == RTA_GATEWAY)
			inet_ntop(family, RTA_DATA(attr), gateway, sizeof(gateway));
		else if (attr->rta_type == RTA_OIF)
			if_indextoname(*(__u32 *)RTA_DATA(attr), dev);
	}
	if (gateway[0])
		snprintf(out, size, "%s@%s", gateway, dev);
	else
		snprintf(out, size, "direct@%s", dev);
}

void nexthop_describe(const __u8 addr[16], __u32 ifindex, char *out, size_t size)
{
	bool v4 = addr_is_v4mapped(addr);
	int family = v4 ? AF_INET : AF_INET6;
	struct route_request req = {
		.header = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)),
			    .nlmsg_type = RTM_GETROUTE, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 1 },
		.rt = { .rtm_family = (unsigned char)family, .rtm_dst_len = v4 ? 32 : 128 },
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct timeval timeout = { .tv_sec = 1 };
	char buf[4096];

	add_attr(&req, RTA_DST, v4 ? addr + 12 : addr, v4 ? 4 : 16);
	if (ifindex)
		add_attr(&req, RTA_OIF, &ifindex, sizeof(ifindex));

	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0) {
		snprintf(out, size, "unknown:netlink-error-%d", errno);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	ssize_t got = -1;

	if (sendto(fd, &req, req.header.nlmsg_len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) >= 0)
		got = recv(fd, buf, sizeof(buf), 0);
	if (got < 0) {
		snprintf(out, size, "unknown:netlink-error-%d", errno);
		close(fd);
		return;
	}
	close(fd);
	snprintf(out, size, "unknown:no-answer");
	for (struct nlmsghdr *msg = (struct nlmsghdr *)buf; NLMSG_OK(msg, (size_t)got);
	     msg = NLMSG_NEXT(msg, got)) {
		if (msg->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *err = NLMSG_DATA(msg);

			snprintf(out, size, "none:%s", -err->error == ENETUNREACH ? "no-route"
						       : -err->error == EHOSTUNREACH ? "host-unreachable"
						       : "error");
			return;
		}
		if (msg->nlmsg_type == RTM_NEWROUTE) {
			describe_route(msg, family, out, size);
			return;
		}
	}
}
