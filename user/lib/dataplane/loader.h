/* SPDX-License-Identifier: MIT */
/* Loading the XDP program and its maps, pinning them under a pin root, and
 * adopting the maps a previous tetherd pinned there (same state, no gap). */
#ifndef TETHER_LOADER_H
#define TETHER_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct tether_xdp; /* the generated skeleton */
struct bpf_map;
struct container_load;
struct container_record;

struct dataplane {
	struct tether_xdp *skel;
	char pin_root[256]; /* empty: nothing pinned (tests) */
	bool adopted;       /* maps came from an earlier run's pins */
	/* While opening: a stats map pinned by an earlier version, with fewer
	 * counters, whose counts go into this program's (-1: none). */
	int older_stats_fd;
	__u32 older_stats_size; /* its value size */
	/* While opening: an affinity map pinned by the version before issue 15
	 * (8-byte values), whose entries go into this program's (-1: none). */
	int older_affinity_fd;
	/* While opening: a container_live pinned without BPF_F_MMAPABLE (the
	 * first builds of issue 15), cleared and replaced by this one (-1: none). */
	int older_live_fd;
	/* The inflight map, mmapped on first use (load.c). */
	struct container_load *inflight;
	size_t inflight_size;
	/* container_live, mmapped while open (containers.c writes it). */
	__u64 *live_words;
	size_t live_size;
	/* The records read when the maps were adopted (NULL: none, or taken),
	 * TETHER_MAX_CONTAINERS of them: the lifecycle takes them instead of
	 * reading a million records a second time. */
	struct container_record *adopted_records;
};

struct dataplane_opts {
	const char *pin_root; /* NULL: load unpinned, for tests */
};

/* Opens and loads the program. With a pin root: mounts bpffs there when none
 * is mounted, reuses every map already pinned there (after checking it has
 * the shape this program expects) and pins the others. Counters are only
 * ever added at the end of struct tether_stats: a pinned stats map with fewer
 * of them (an earlier version's) is replaced by one of this program's shape
 * that starts from its counts; an affinity map of the version before issue 15
 * (8-byte values) is replaced by one of this shape holding its entries; the
 * containers' words in container_live are rebuilt from adopted records. On
 * failure returns a negative errno and has printed why, with the verifier's
 * log. */
int dataplane_open(struct dataplane *dp, const struct dataplane_opts *opts);
void dataplane_close(struct dataplane *dp);

/* Removes every map pin under the pin root (the maps live on while open). */
int dataplane_unpin(struct dataplane *dp);

int dataplane_prog_fd(const struct dataplane *dp);

/* The records read at adoption (every slot, TETHER_MAX_CONTAINERS of them),
 * handed over to the caller, who frees them; NULL when nothing was adopted or
 * they were taken already. */
struct container_record *dataplane_take_adopted_records(struct dataplane *dp);

/* An mmapable array map's memory, shared with the program (NULL and errno on
 * failure); *size is what munmap needs. */
void *dataplane_map_array(const struct bpf_map *map, size_t *size);

/* The directory for a pin root: mkdir -p and mount bpffs when needed. */
int pin_root_prepare(const char *pin_root);

#endif
