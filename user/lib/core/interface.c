// SPDX-License-Identifier: MIT
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"

int interface_mac(const char *iface, __u8 mac[6])
{
	struct ifreq request = {};
	int fd, err = 0;

	if (strlen(iface) >= sizeof(request.ifr_name))
		return -ENODEV;
	strcpy(request.ifr_name, iface);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFHWADDR, &request))
		err = -errno;
	else
		memcpy(mac, request.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}
