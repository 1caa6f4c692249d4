// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "certs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* tools/test-certs.sh here, or above the test's binary (build/tests/unit/). */
static const char *script(void)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX - 32];
	ssize_t len;

	if (path[0])
		return path;
	if (realpath("tools/test-certs.sh", path) && !access(path, X_OK))
		return path;
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return path[0] = '\0', NULL;
	exe[len] = '\0';
	for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
		*slash = '\0';
		snprintf(path, sizeof(path), "%s/tools/test-certs.sh", exe);
		if (!access(path, X_OK))
			return path;
	}
	path[0] = '\0';
	return NULL;
}

int test_certs(const char *args)
{
	const char *found = script();
	char command[PATH_MAX + 1024];

	if (!found) {
		fprintf(stderr, "tools/test-certs.sh not found\n");
		return -1;
	}
	snprintf(command, sizeof(command), "'%s' %s >/dev/null", found, args);
	return system(command) ? -1 : 0;
}
