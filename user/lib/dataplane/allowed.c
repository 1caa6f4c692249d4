// SPDX-License-Identifier: MIT
/* The functions each backend may hold (allowed_funcs, include/tether/maps.h):
 * by backend name, read and written by tetherd only. */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

static int allowed_fd(struct dataplane *dp)
{
	return bpf_map__fd(dp->skel->maps.allowed_funcs);
}

static int key_of(const char *name, struct allowed_key *key)
{
	memset(key, 0, sizeof(*key));
	if (strlen(name) >= sizeof(key->name))
		return -EINVAL;
	memcpy(key->name, name, strlen(name));
	return 0;
}

int allowed_set(struct dataplane *dp, const char *name, const struct allowed_functions *allowed)
{
	struct allowed_key key;

	if (key_of(name, &key) || allowed->count > TETHER_ALLOWED_RANGES)
		return -EINVAL;
	return bpf_map_update_elem(allowed_fd(dp), &key, allowed, BPF_ANY) ? -errno : 0;
}

int allowed_clear(struct dataplane *dp, const char *name)
{
	struct allowed_key key;

	if (key_of(name, &key))
		return -EINVAL;
	if (bpf_map_delete_elem(allowed_fd(dp), &key) && errno != ENOENT)
		return -errno;
	return 0;
}

int allowed_get(struct dataplane *dp, const char *name, struct allowed_functions *allowed)
{
	struct allowed_key key;

	if (key_of(name, &key))
		return -EINVAL;
	return bpf_map_lookup_elem(allowed_fd(dp), &key, allowed) ? -errno : 0;
}
