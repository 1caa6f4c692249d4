/* SPDX-License-Identifier: MIT */
/* Loading the XDP program and its maps, pinning them under a pin root, and
 * adopting the maps a previous tetherd pinned there (same state, no gap). */
#ifndef TETHER_LOADER_H
#define TETHER_LOADER_H

#include <stdbool.h>

struct tether_xdp; /* the generated skeleton */

struct dataplane {
	struct tether_xdp *skel;
	char pin_root[256]; /* empty: nothing pinned (tests) */
	bool adopted;       /* maps came from an earlier run's pins */
};

struct dataplane_opts {
	const char *pin_root; /* NULL: load unpinned, for tests */
};

/* Opens and loads the program. With a pin root: mounts bpffs there when none
 * is mounted, reuses every map already pinned there (after checking it has
 * the shape this program expects) and pins the others. On failure returns a
 * negative errno and has printed why, with the verifier's log. */
int dataplane_open(struct dataplane *dp, const struct dataplane_opts *opts);
void dataplane_close(struct dataplane *dp);

/* Removes every map pin under the pin root (the maps live on while open). */
int dataplane_unpin(struct dataplane *dp);

int dataplane_prog_fd(const struct dataplane *dp);

/* The directory for a pin root: mkdir -p and mount bpffs when needed. */
int pin_root_prepare(const char *pin_root);

#endif
