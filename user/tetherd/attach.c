// SPDX-License-Identifier: MIT
#include "attach.h"

#include <dirent.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define LINK_PREFIX "link_"

int xdp_mode_parse(const char *text, enum xdp_mode_request *mode)
{
	if (!strcmp(text, "auto"))
		*mode = XDP_MODE_AUTO;
	else if (!strcmp(text, "native"))
		*mode = XDP_MODE_NATIVE;
	else if (!strcmp(text, "generic"))
		*mode = XDP_MODE_GENERIC;
	else
		return -EINVAL;
	return 0;
}

static int link_pin_path(char *out, size_t size, const char *pin_root, const char *ifname)
{
	if (snprintf(out, size, "%s/" LINK_PREFIX "%s", pin_root, ifname) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

static int replace_pinned(struct dataplane *dp, const char *path)
{
	int link_fd = bpf_obj_get(path);

	if (link_fd < 0)
		return -errno;
	/* One pointer swap in the kernel: no packet sees no program. */
	int err = bpf_link_update(link_fd, dataplane_prog_fd(dp), NULL) ? -errno : 0;

	close(link_fd);
	return err;
}

static int create_link(struct dataplane *dp, int ifindex, __u32 flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
	int fd = bpf_link_create(dataplane_prog_fd(dp), ifindex, BPF_XDP, &opts);

	return fd < 0 ? -errno : fd;
}

int attach_interface(struct dataplane *dp, const char *ifname, enum xdp_mode_request mode,
		     const char **how)
{
	char path[512];
	int ifindex = if_nametoindex(ifname);
	int err;

	if (!ifindex) {
		fprintf(stderr, "tetherd: interface '%s' does not exist (ip link shows them)\n",
			ifname);
		return -ENODEV;
	}
	if ((err = link_pin_path(path, sizeof(path), dp->pin_root, ifname)))
		return err;
	if (!access(path, F_OK)) {
		err = replace_pinned(dp, path);
		if (err)
			fprintf(stderr, "tetherd: cannot replace the program on %s: %s\n", ifname,
				strerror(-err));
		*how = "replaced";
		return err;
	}

	int fd = -EOPNOTSUPP;

	*how = "native";
	if (mode != XDP_MODE_GENERIC)
		fd = create_link(dp, ifindex, XDP_FLAGS_DRV_MODE);
	if (fd < 0 && mode == XDP_MODE_AUTO)
		fprintf(stderr, "tetherd: native XDP on %s failed (%s); falling back to generic mode, "
				"which is much slower\n",
			ifname, strerror(-fd));
	if (fd < 0 && mode != XDP_MODE_NATIVE) {
		fd = create_link(dp, ifindex, XDP_FLAGS_SKB_MODE);
		*how = "generic";
	}
	if (fd < 0) {
		fprintf(stderr, "tetherd: cannot attach XDP to %s: %s%s\n", ifname, strerror(-fd),
			fd == -EBUSY ? " (another XDP program is attached: ip link set dev IF xdp off)"
				     : "");
		return fd;
	}
	if (bpf_obj_pin(fd, path)) {
		err = -errno;
		fprintf(stderr, "tetherd: cannot pin the link at %s: %s\n", path, strerror(errno));
	}
	close(fd);
	return err;
}

int detach_all(const char *pin_root)
{
	DIR *dir = opendir(pin_root);
	struct dirent *entry;
	char path[512];
	int err = 0;

	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((entry = readdir(dir))) {
		if (strncmp(entry->d_name, LINK_PREFIX, strlen(LINK_PREFIX)))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", pin_root, entry->d_name) >=
		    (int)sizeof(path))
			continue;
		int fd = bpf_obj_get(path);

		if (fd >= 0) {
			if (bpf_link_detach(fd))
				err = -errno;
			close(fd);
		}
		if (unlink(path))
			err = -errno;
	}
	closedir(dir);
	return err;
}
