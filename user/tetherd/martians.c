// SPDX-License-Identifier: MIT
/* accept_local and rp_filter on backends' interfaces (martians.h). */
#include "martians.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct martians {
	bool fix;
	char root[256];
	GHashTable *checked; /* interface names found right, or set right */
	char said[768];
};

struct martians *martians_new(bool fix, const char *sysctl_root)
{
	struct martians *mt = g_new0(struct martians, 1);

	mt->fix = fix;
	snprintf(mt->root, sizeof(mt->root), "%s", sysctl_root ? sysctl_root : "/proc/sys");
	mt->checked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	return mt;
}

void martians_free(struct martians *mt)
{
	if (!mt)
		return;
	g_hash_table_destroy(mt->checked);
	g_free(mt);
}

static int read_setting(const struct martians *mt, const char *iface, const char *name)
{
	char path[512], text[32];
	int fd, value = -1;
	ssize_t got;

	snprintf(path, sizeof(path), "%s/net/ipv4/conf/%s/%s", mt->root, iface, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	got = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (got > 0) {
		text[got] = '\0';
		value = atoi(text);
	}
	return value;
}

static int write_setting(const struct martians *mt, const char *iface, const char *name,
			 int value)
{
	char path[512], text[16];
	int fd, len = snprintf(text, sizeof(text), "%d\n", value), err = 0;

	snprintf(path, sizeof(path), "%s/net/ipv4/conf/%s/%s", mt->root, iface, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != len)
		err = -errno;
	close(fd);
	return err;
}

const char *martians_check(struct martians *mt, const char *iface, const char *backend)
{
	int accept = read_setting(mt, iface, "accept_local");
	int accept_all = read_setting(mt, "all", "accept_local");
	int rp = read_setting(mt, iface, "rp_filter");
	int rp_all = read_setting(mt, "all", "rp_filter");
	GString *said = g_string_new(NULL);
	int err;

	mt->said[0] = '\0';
	if (!iface[0] || g_hash_table_contains(mt->checked, iface) || accept < 0 || rp < 0)
		goto out; /* known good, or no IPv4 on it (or no such interface yet) */
	bool accepts = accept > 0 || accept_all > 0;
	bool strict = rp == 1 || rp_all == 1;

	if (!accepts && mt->fix) {
		if ((err = write_setting(mt, iface, "accept_local", 1)))
			g_string_append_printf(said, "cannot set net.ipv4.conf.%s.accept_local=1: %s; ",
					       iface, strerror(-err));
		else
			g_string_append_printf(said, "set net.ipv4.conf.%s.accept_local=1; ", iface);
		accepts = !err;
	}
	if (rp == 1 && mt->fix) {
		if ((err = write_setting(mt, iface, "rp_filter", 2)))
			g_string_append_printf(said, "cannot set net.ipv4.conf.%s.rp_filter=2: %s; ",
					       iface, strerror(-err));
		else
			g_string_append_printf(said, "set net.ipv4.conf.%s.rp_filter=2 (it was 1); ",
					       iface);
		strict = err || rp_all == 1;
	}
	if (!accepts || strict) {
		g_string_append_printf(
			said,
			"backend %s is on %s, where replies the VM routes back through this host (its "
			"gateway) would be dropped as martians: their source is a service address, "
			"local here, ",
			backend, iface);
		if (!accepts && strict)
			g_string_append_printf(said, "and accept_local is 0 and rp_filter strict");
		else if (!accepts)
			g_string_append_printf(said, "and net.ipv4.conf.%s.accept_local is 0", iface);
		else
			g_string_append_printf(said, "and reverse-path filtering is strict "
						     "(net.ipv4.conf.%s.rp_filter is 1)",
					       rp == 1 ? iface : "all");
		g_string_append_printf(said, "; if its replies go that way, sysctl -w "
					     "net.ipv4.conf.%s.accept_local=1 net.ipv4.conf.%s.rp_filter=2%s%s",
				       iface, iface, rp_all == 1 ? " net.ipv4.conf.all.rp_filter=2" : "",
				       mt->fix ? "" : " (or start tetherd with --accept-local)");
	} else {
		g_hash_table_add(mt->checked, g_strdup(iface));
	}
	if (said->len) {
		if (said->str[said->len - 2] == ';')
			g_string_truncate(said, said->len - 2);
		snprintf(mt->said, sizeof(mt->said), "%s", said->str);
		fprintf(stderr, "tetherd: %s\n", mt->said);
	}
	/* Warned once: the operator has been told. */
	if (!mt->fix || (accepts && !strict))
		g_hash_table_add(mt->checked, g_strdup(iface));
out:
	g_string_free(said, TRUE);
	return mt->said;
}
