// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "core.h"

static const __u8 v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int addr_parse(const char *text, __u8 out[16])
{
	struct in_addr ipv4;

	if (inet_pton(AF_INET, text, &ipv4) == 1) {
		memcpy(out, v4mapped_prefix, 12);
		memcpy(out + 12, &ipv4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, out) == 1)
		return 0;
	return -EINVAL;
}

int addr_is_v4mapped(const __u8 addr[16])
{
	return !memcmp(addr, v4mapped_prefix, 12);
}

int addr_format(const __u8 addr[16], char *out, size_t size)
{
	const char *done = addr_is_v4mapped(addr) ? inet_ntop(AF_INET, addr + 12, out, size)
						  : inet_ntop(AF_INET6, addr, out, size);
	return done ? 0 : -ENOSPC;
}

int endpoint_parse(const char *text, __u8 addr[16], __u16 *port)
{
	const char *colon = strrchr(text, ':');
	char host[INET6_ADDRSTRLEN + 2];
	size_t host_len;
	unsigned long value = 0;

	if (!colon || colon == text)
		return -EINVAL;
	/* The port: 1 to 65535, decimal digits only (no sign, space or 0x). */
	if (!colon[1])
		return -EINVAL;
	for (const char *digit = colon + 1; *digit; digit++) {
		if (*digit < '0' || *digit > '9' || value > 65535)
			return -EINVAL;
		value = value * 10 + (unsigned long)(*digit - '0');
	}
	if (value == 0 || value > 65535)
		return -EINVAL;
	host_len = (size_t)(colon - text);
	if (host_len >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, host_len);
	host[host_len] = '\0';
	/* An IPv6 address in brackets, an IPv4 address without. */
	if (host[0] == '[') {
		struct in6_addr ipv6;

		if (host_len < 3 || host[host_len - 1] != ']')
			return -EINVAL;
		host[host_len - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &ipv6) != 1)
			return -EINVAL;
		memcpy(addr, &ipv6, 16);
	} else {
		struct in_addr ipv4;

		if (inet_pton(AF_INET, host, &ipv4) != 1)
			return -EINVAL;
		memcpy(addr, v4mapped_prefix, 12);
		memcpy(addr + 12, &ipv4, 4);
	}
	*port = (__u16)value;
	return 0;
}

socklen_t endpoint_sockaddr(const __u8 addr[16], __u16 port, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (addr_is_v4mapped(addr)) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)out;

		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		memcpy(&v4->sin_addr, addr + 12, 4);
		return sizeof(*v4);
	}
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;

	v6->sin6_family = AF_INET6;
	v6->sin6_port = htons(port);
	memcpy(&v6->sin6_addr, addr, 16);
	return sizeof(*v6);
}
