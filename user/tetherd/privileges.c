// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "privileges.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
	int cap;
	const char *name;
} kept_caps[] = {
	{ CAP_BPF, "cap_bpf" },
	{ CAP_NET_ADMIN, "cap_net_admin" },
	{ CAP_NET_RAW, "cap_net_raw" },
};

#define KEPT_COUNT (sizeof(kept_caps) / sizeof(kept_caps[0]))

static bool has(const struct __user_cap_data_struct data[2], int cap)
{
	return data[cap / 32].permitted & (1u << (cap % 32));
}

static int last_cap(void)
{
	FILE *file = fopen("/proc/sys/kernel/cap_last_cap", "r");
	int last = CAP_LAST_CAP;

	if (file) {
		if (fscanf(file, "%d", &last) != 1)
			last = CAP_LAST_CAP;
		fclose(file);
	}
	return last;
}

static bool is_kept(int cap)
{
	for (size_t i = 0; i < KEPT_COUNT; i++)
		if (kept_caps[i].cap == cap)
			return true;
	return false;
}

int privileges_drop(char *kept, size_t size)
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	struct __user_cap_data_struct want[2] = {};
	size_t used = 0;

	if (syscall(SYS_capget, &header, data))
		return -errno;
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which
	 * goes with the rest below. Without CAP_SETPCAP it stays as it is. */
	if (has(data, CAP_SETPCAP)) {
		for (int cap = 0; cap <= last_cap(); cap++)
			if (!is_kept(cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
				return -errno;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	kept[0] = '\0';
	for (size_t i = 0; i < KEPT_COUNT; i++) {
		int cap = kept_caps[i].cap;

		if (!has(data, cap))
			continue;
		want[cap / 32].permitted |= 1u << (cap % 32);
		want[cap / 32].effective |= 1u << (cap % 32);
		used += snprintf(kept + used, used < size ? size - used : 0, "%s%s",
				 used ? " " : "", kept_caps[i].name);
	}
	if (syscall(SYS_capset, &header, want))
		return -errno;
	/* No exec regains what was dropped: tetherd runs nothing, and this
	 * makes sure. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (!kept[0])
		snprintf(kept, size, "none");
	return 0;
}

unsigned long privileges_raise_nofile(void)
{
	struct rlimit files;

	if (getrlimit(RLIMIT_NOFILE, &files))
		return 0;
	if (files.rlim_cur < files.rlim_max) {
		files.rlim_cur = files.rlim_max;
		setrlimit(RLIMIT_NOFILE, &files);
		getrlimit(RLIMIT_NOFILE, &files);
	}
	return files.rlim_cur;
}
