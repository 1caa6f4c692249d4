// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "privileges.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

/* What becoming --user takes: the ids, and handing the pins to its group. */
static const struct {
	int cap;
	const char *name;
} switch_caps[] = {
	{ CAP_SETUID, "CAP_SETUID" },
	{ CAP_SETGID, "CAP_SETGID" },
	{ CAP_CHOWN, "CAP_CHOWN" },
};

#define SWITCH_COUNT (sizeof(switch_caps) / sizeof(switch_caps[0]))

static bool has(const struct __user_cap_data_struct data[2], int cap)
{
	return data[cap / 32].permitted & (1u << (cap % 32));
}

static bool in_effective(const struct __user_cap_data_struct data[2], int cap)
{
	return data[cap / 32].effective & (1u << (cap % 32));
}

static int read_caps(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return syscall(SYS_capget, &header, data) ? -errno : 0;
}

int privileges_can_switch(char *why, size_t size)
{
	struct __user_cap_data_struct data[2] = {};
	size_t used = 0;
	int err = read_caps(data);

	if (err) {
		snprintf(why, size, "cannot read its capabilities: %s", strerror(-err));
		return err;
	}
	why[0] = '\0';
	for (size_t i = 0; i < SWITCH_COUNT; i++)
		if (!in_effective(data, switch_caps[i].cap))
			used += snprintf(why + used, used < size ? size - used : 0, "%s%s",
					 used ? " " : "it lacks ", switch_caps[i].name);
	if (!used)
		return 0;
	snprintf(why + used, used < size ? size - used : 0,
		 "; start it as root (a systemd unit's CapabilityBoundingSet= must list "
		 "CAP_SETUID CAP_SETGID CAP_CHOWN)");
	return -EPERM;
}

static int share_entry(int dir_fd, const char *pin_root, const char *name, gid_t gid)
{
	if (!fchownat(dir_fd, name, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW) &&
	    !fchmodat(dir_fd, name, 0660, 0))
		return 0;
	int err = -errno;

	fprintf(stderr, "tetherd: cannot share the pin %s/%s with group %u: %s\n", pin_root,
		name, (unsigned)gid, strerror(-err));
	return err;
}

int privileges_share_pins(const char *pin_root, gid_t gid)
{
	int err = 0, dir_fd = open(pin_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *listing = dir_fd < 0 ? NULL : fdopendir(dup(dir_fd));
	struct dirent *entry;

	if (!listing || fchown(dir_fd, (uid_t)-1, gid) || fchmod(dir_fd, 0770)) {
		err = -errno;
		fprintf(stderr, "tetherd: cannot share the pin root %s with group %u: %s\n",
			pin_root, (unsigned)gid, strerror(-err));
	}
	while (!err && (entry = readdir(listing)))
		if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, ".."))
			err = share_entry(dir_fd, pin_root, entry->d_name, gid);
	if (listing)
		closedir(listing);
	if (dir_fd >= 0)
		close(dir_fd);
	return err;
}

/* The user's ids and groups; the permitted capabilities survive the uid
 * change (PR_SET_KEEPCAPS), the effective ones are set again after. */
static int become(const struct privileges_user *user)
{
	int err = 0;

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		return -errno;
	if (initgroups(user->name, user->gid) || setresgid(user->gid, user->gid, user->gid) ||
	    setresuid(user->uid, user->uid, user->uid))
		err = -errno;
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	return err;
}

/* Root must be out of reach now: no CAP_SETUID, no saved uid 0. */
static int check_no_way_back(const struct privileges_user *user)
{
	uid_t real, effective, saved;

	if (getresuid(&real, &effective, &saved))
		return -errno;
	if (real != user->uid || effective != user->uid || saved != user->uid)
		return -EPERM;
	return user->uid != 0 && setuid(0) == 0 ? -EPERM : 0;
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

/* The bounding set: dropping from it needs CAP_SETPCAP, which goes with the
 * rest later. Without CAP_SETPCAP it stays as it is. */
static int drop_bounding_set(const struct __user_cap_data_struct data[2])
{
	if (!has(data, CAP_SETPCAP))
		return 0;
	for (int cap = 0; cap <= last_cap(); cap++)
		if (!is_kept(cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			return -errno;
	return 0;
}

/* want: the kept capabilities tetherd has, permitted and effective; kept:
 * their names. */
static void choose_kept(const struct __user_cap_data_struct data[2],
			struct __user_cap_data_struct want[2], char *kept, size_t size)
{
	size_t used = 0;

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
	if (!kept[0])
		snprintf(kept, size, "none");
}

int privileges_drop(const struct privileges_user *user, char *kept, size_t size)
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	struct __user_cap_data_struct want[2] = {};
	int err;

	if ((err = read_caps(data)) || (err = drop_bounding_set(data)))
		return err;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	choose_kept(data, want, kept, size);
	if (user && (err = become(user)))
		return err;
	if (syscall(SYS_capset, &header, want))
		return -errno;
	if (user && (err = check_no_way_back(user)))
		return err;
	/* No exec regains what was dropped: tetherd runs nothing, and this
	 * makes sure. */
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ? -errno : 0;
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
