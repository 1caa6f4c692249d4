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
