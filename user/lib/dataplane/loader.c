// SPDX-License-Identifier: MIT
#include "loader.h"
#include "dataplane.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>

#include "tether/maps.h"
#include "tether_xdp.skel.h"

static int print_libbpf(enum libbpf_print_level level, const char *format, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, format, args);
}

static int mkdir_p(const char *path)
{
	char partial[PATH_MAX];

	if (snprintf(partial, sizeof(partial), "%s", path) >= (int)sizeof(partial))
		return -ENAMETOOLONG;
	for (char *p = partial + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(partial, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(partial, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int pin_root_prepare(const char *pin_root)
{
	struct statfs fs;
	int err = mkdir_p(pin_root);

	if (err) {
		fprintf(stderr, "tether: cannot create pin root %s: %s\n", pin_root, strerror(-err));
		return err;
	}
	if (statfs(pin_root, &fs)) {
		err = -errno;
		fprintf(stderr, "tether: cannot stat pin root %s: %s\n", pin_root, strerror(errno));
		return err;
	}
	if (fs.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", pin_root, "bpf", 0, "mode=0700")) {
		err = -errno;
		fprintf(stderr,
			"tether: %s is not on a bpf filesystem and mounting one there failed: %s\n"
			"  (mount -t bpf bpf /sys/fs/bpf, or run as root with CAP_SYS_ADMIN)\n",
			pin_root, strerror(errno));
		return err;
	}
	return 0;
}

static int pin_path(char *out, size_t size, const char *pin_root, const char *name)
{
	if (snprintf(out, size, "%s/%s", pin_root, name) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* The stats map of an earlier version: the same map, but fewer counters
 * (they are only ever appended to struct tether_stats). */
static bool is_older_stats(const struct dataplane *dp, const struct bpf_map *map,
			   const struct bpf_map_info *info)
{
	return map == dp->skel->maps.stats && info->type == (__u32)bpf_map__type(map) &&
	       info->key_size == bpf_map__key_size(map) &&
	       info->max_entries == bpf_map__max_entries(map) &&
	       info->value_size < bpf_map__value_size(map) && info->value_size % sizeof(__u64) == 0 &&
	       info->value_size > 0;
}

/* The affinity map of the version before issue 15: the same map with 8-byte
 * values (slot and generation). */
static bool is_older_affinity(const struct dataplane *dp, const struct bpf_map *map,
			      const struct bpf_map_info *info)
{
	return map == dp->skel->maps.affinity && info->type == (__u32)bpf_map__type(map) &&
	       info->key_size == bpf_map__key_size(map) &&
	       info->max_entries == bpf_map__max_entries(map) &&
	       info->value_size == sizeof(struct affinity_value_v1);
}

/* container_live as the first builds of issue 15 pinned it: not mmapable. */
static bool is_older_live(const struct dataplane *dp, const struct bpf_map *map,
			  const struct bpf_map_info *info)
{
	return map == dp->skel->maps.container_live && !(info->map_flags & BPF_F_MMAPABLE);
}

/* A pinned map is adopted only when it is the map this program expects: a
 * map of another shape would be misread by the program. Returns 1 for an
 * earlier version's stats map, 2 for an earlier version's affinity map
 * (carried over, not adopted as they are), 3 for an earlier container_live
 * (replaced: its words are rebuilt from the records anyway). */
static int check_shape(struct dataplane *dp, const struct bpf_map *map, int fd, const char *path)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &info_len))
		return -errno;
	if (info.type == (__u32)bpf_map__type(map) && info.key_size == bpf_map__key_size(map) &&
	    info.value_size == bpf_map__value_size(map) &&
	    info.max_entries == bpf_map__max_entries(map))
		return is_older_live(dp, map, &info) ? 3 : 0;
	if (is_older_stats(dp, map, &info)) {
		dp->older_stats_size = info.value_size;
		return 1;
	}
	if (is_older_affinity(dp, map, &info))
		return 2;
	fprintf(stderr,
		"tether: pinned map %s does not match this program (type %u/%u, key %u/%u, "
		"value %u/%u, entries %u/%u: pinned/expected).\n"
		"  It was pinned by an incompatible tether version; unload it first "
		"(tetherd --unload, or rm %s).\n",
		path, info.type, bpf_map__type(map), info.key_size, bpf_map__key_size(map),
		info.value_size, bpf_map__value_size(map), info.max_entries,
		bpf_map__max_entries(map), path);
	return -EINVAL;
}

static int adopt_pinned_maps(struct dataplane *dp)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int err;

	bpf_object__for_each_map(map, dp->skel->obj) {
		if ((err = pin_path(path, sizeof(path), dp->pin_root, bpf_map__name(map))))
			return err;
		if (access(path, F_OK))
			continue;
		int fd = bpf_obj_get(path);

		if (fd < 0) {
			err = -errno;
			fprintf(stderr, "tether: cannot open pinned map %s: %s\n", path,
				strerror(errno));
			return err;
		}
		err = check_shape(dp, map, fd, path);
		if (err >= 1 && err <= 3) {
			/* libbpf makes ours at load */
			*(err == 1	? &dp->older_stats_fd
			  : err == 2	? &dp->older_affinity_fd
					: &dp->older_live_fd) = fd;
			dp->adopted = true;
			continue;
		}
		if (!err)
			err = bpf_map__reuse_fd(map, fd);
		close(fd);
		if (err)
			return err;
		dp->adopted = true;
	}
	return 0;
}

/* This program's stats map starts from the counts of the earlier version's,
 * and takes its place under the pin root. What the running program counts
 * between now and its replacement (bpf_link_update) stays in the old map. */
static int carry_over_stats(struct dataplane *dp)
{
	int cpus = libbpf_num_possible_cpus();
	size_t old_size = (dp->older_stats_size + 7) / 8 * 8, new_size = sizeof(struct tether_stats);
	char path[PATH_MAX];
	__u32 zero = 0;
	int err;

	if (cpus < 0)
		return cpus;
	if ((err = pin_path(path, sizeof(path), dp->pin_root, TETHER_MAP_STATS)))
		return err;

	char *old = calloc((size_t)cpus, old_size), *new = calloc((size_t)cpus, new_size);

	err = !old || !new ? -ENOMEM : 0;
	if (!err && bpf_map_lookup_elem(dp->older_stats_fd, &zero, old))
		err = -errno;
	for (int cpu = 0; !err && cpu < cpus; cpu++)
		memcpy(new + (size_t)cpu * new_size, old + (size_t)cpu * old_size,
		       dp->older_stats_size);
	if (!err && bpf_map_update_elem(bpf_map__fd(dp->skel->maps.stats), &zero, new, BPF_ANY))
		err = -errno;
	if (!err && unlink(path))
		err = -errno;
	free(old);
	free(new);
	if (err) {
		fprintf(stderr, "tether: cannot carry the counters of %s over: %s\n", path,
			strerror(-err));
		return err;
	}
	fprintf(stderr,
		"tether: %s was pinned by an earlier version with %u counters; they carry on in "
		"this version's map of %zu\n",
		path, dp->older_stats_size / 8, new_size / 8);
	close(dp->older_stats_fd);
	dp->older_stats_fd = -1;
	return 0;
}

/* Every container record (NULL on failure). */
static struct container_record *read_records(struct dataplane *dp, int *err)
{
	struct container_record *records = calloc(TETHER_MAX_CONTAINERS, sizeof(*records));

	*err = records ? containers_read_all(dp, records) : -ENOMEM;
	if (*err) {
		free(records);
		return NULL;
	}
	return records;
}

/* container_live from the records (include/tether/maps.h): whatever words an
 * earlier run left, none is trusted (a version that did not keep them may
 * have run on these maps since). The running program reads them meanwhile;
 * a word is one aligned store. */
static void rebuild_live(struct dataplane *dp, const struct container_record *records)
{
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS; slot++) {
		__u64 word = container_live_word(&records[slot]);

		if (dp->live_words[slot] != word)
			__atomic_store_n(&dp->live_words[slot], word, __ATOMIC_RELAXED);
	}
}

/* An earlier container_live (not mmapable) is cleared, so that the program
 * still running on it until this one is attached takes every key hit the
 * record's way (tetherd no longer keeps it), and its pin gives way to ours. */
static int retire_older_live(struct dataplane *dp)
{
	const __u32 batch = 65536;
	__u32 *keys = malloc(batch * sizeof(*keys));
	__u64 *zeros = calloc(batch, sizeof(*zeros));
	char path[PATH_MAX];
	int err = !keys || !zeros ? -ENOMEM : 0;

	for (__u32 first = 0; !err && first < TETHER_MAX_CONTAINERS; first += batch) {
		__u32 count = batch;

		for (__u32 i = 0; i < batch; i++)
			keys[i] = first + i;
		if (bpf_map_update_batch(dp->older_live_fd, keys, zeros, &count, NULL))
			err = -errno;
	}
	free(keys);
	free(zeros);
	if (!err &&
	    (err = pin_path(path, sizeof(path), dp->pin_root, TETHER_MAP_CONTAINER_LIVE)) == 0 &&
	    unlink(path))
		err = -errno;
	if (err) {
		fprintf(stderr, "tether: cannot replace the container_live of an earlier version: "
				"%s\n", strerror(-err));
		return err;
	}
	close(dp->older_live_fd);
	dp->older_live_fd = -1;
	return 0;
}

#define AFFINITY_CARRY_BATCH 8192

/* The entries of the version before's affinity map go into this one's, with
 * the container's secret and backend where the entry still names the live
 * container of its function (else 0: the record's way, as before). */
static int carry_over_affinity(struct dataplane *dp, const struct container_record *records)
{
	int fd = bpf_map__fd(dp->skel->maps.affinity);
	struct affinity_key *keys = malloc(AFFINITY_CARRY_BATCH * sizeof(*keys));
	struct affinity_value_v1 *old = malloc(AFFINITY_CARRY_BATCH * sizeof(*old));
	struct affinity_value *values = malloc(AFFINITY_CARRY_BATCH * sizeof(*values));
	struct affinity_key out_batch;
	void *in_batch = NULL;
	__u64 carried = 0;
	char path[PATH_MAX];
	int err = !keys || !old || !values ? -ENOMEM : 0;

	while (!err) {
		__u32 count = AFFINITY_CARRY_BATCH, written;
		int end = 0;

		if (bpf_map_lookup_batch(dp->older_affinity_fd, in_batch, &out_batch, keys, old,
					 &count, NULL)) {
			if (errno != ENOENT) {
				err = -errno;
				break;
			}
			end = 1;
		}
		for (__u32 i = 0; i < count; i++) {
			const struct container_record *record =
				old[i].slot < TETHER_MAX_CONTAINERS ? &records[old[i].slot] : NULL;

			values[i] = (struct affinity_value){ .slot = old[i].slot,
							     .generation = old[i].generation };
			if (record && record->state != CONTAINER_FREE &&
			    record->generation == old[i].generation &&
			    record->function_id == keys[i].function_id) {
				values[i].secret = record->secret;
				values[i].backend_id = record->backend_id;
			}
		}
		written = count;
		if (count && bpf_map_update_batch(fd, keys, values, &written, NULL))
			err = -errno;
		carried += written;
		if (end)
			break;
		in_batch = &out_batch;
	}
	free(keys);
	free(old);
	free(values);
	if (!err && (err = pin_path(path, sizeof(path), dp->pin_root, TETHER_MAP_AFFINITY)) == 0 &&
	    unlink(path))
		err = -errno;
	if (err) {
		fprintf(stderr, "tether: cannot carry the affinity entries of an earlier version "
				"over: %s\n", strerror(-err));
		return err;
	}
	fprintf(stderr, "tether: %llu affinity entries of an earlier version carried over\n",
		(unsigned long long)carried);
	close(dp->older_affinity_fd);
	dp->older_affinity_fd = -1;
	return 0;
}

/* After adoption: the records' words in container_live, and an earlier
 * version's affinity entries. The records are kept for the lifecycle
 * (dataplane_take_adopted_records). */
static int prepare_adopted(struct dataplane *dp)
{
	int err;
	struct container_record *records = read_records(dp, &err);

	if (!records) {
		fprintf(stderr, "tether: cannot read the adopted containers: %s\n",
			strerror(-err));
		return err;
	}
	dp->adopted_records = records;
	rebuild_live(dp, records);
	if (dp->older_live_fd >= 0 && (err = retire_older_live(dp)))
		return err;
	if (dp->older_affinity_fd >= 0)
		return carry_over_affinity(dp, records);
	return 0;
}

struct container_record *dataplane_take_adopted_records(struct dataplane *dp)
{
	struct container_record *records = dp->adopted_records;

	dp->adopted_records = NULL;
	return records;
}

void *dataplane_map_array(const struct bpf_map *map, size_t *size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t bytes = (size_t)bpf_map__max_entries(map) * ((bpf_map__value_size(map) + 7) / 8 * 8);
	void *memory;

	bytes = (bytes + page - 1) / page * page;
	memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
	if (memory == MAP_FAILED)
		return NULL;
	*size = bytes;
	return memory;
}

static int map_live_words(struct dataplane *dp)
{
	dp->live_words = dataplane_map_array(dp->skel->maps.container_live, &dp->live_size);
	if (dp->live_words)
		return 0;
	int err = -errno; /* before fprintf, which may change errno */

	fprintf(stderr, "tether: cannot map container_live into memory: %s\n", strerror(-err));
	return err;
}

static void close_opening_fds(struct dataplane *dp)
{
	int *fds[] = { &dp->older_stats_fd, &dp->older_affinity_fd, &dp->older_live_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static int pin_new_maps(struct dataplane *dp)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int err;

	bpf_object__for_each_map(map, dp->skel->obj) {
		if ((err = pin_path(path, sizeof(path), dp->pin_root, bpf_map__name(map))))
			return err;
		if (!access(path, F_OK))
			continue;
		if (bpf_obj_pin(bpf_map__fd(map), path)) {
			err = -errno;
			fprintf(stderr, "tether: cannot pin map at %s: %s\n", path, strerror(errno));
			return err;
		}
	}
	return 0;
}

static int size_per_cpu_maps(struct dataplane *dp)
{
	int cpus = libbpf_num_possible_cpus();

	if (cpus < 0)
		return cpus;
	return bpf_map__set_max_entries(dp->skel->maps.container_stats,
					(__u32)cpus * TETHER_MAX_CONTAINERS);
}

int dataplane_open(struct dataplane *dp, const struct dataplane_opts *opts)
{
	int err;

	memset(dp, 0, sizeof(*dp));
	dp->older_stats_fd = -1;
	dp->older_affinity_fd = -1;
	dp->older_live_fd = -1;
	libbpf_set_print(print_libbpf);
	if (opts && opts->pin_root) {
		if (snprintf(dp->pin_root, sizeof(dp->pin_root), "%s", opts->pin_root) >=
		    (int)sizeof(dp->pin_root))
			return -ENAMETOOLONG;
		if ((err = pin_root_prepare(dp->pin_root)))
			return err;
	}
	dp->skel = tether_xdp__open();
	if (!dp->skel) {
		err = -errno;
		fprintf(stderr, "tether: cannot open the BPF object: %s\n", strerror(errno));
		return err;
	}
	if ((err = size_per_cpu_maps(dp)))
		goto fail;
	if (dp->pin_root[0] && (err = adopt_pinned_maps(dp)))
		goto fail;
	/* libbpf prints the verifier's log when the kernel refuses the program. */
	err = tether_xdp__load(dp->skel);
	if (err) {
		fprintf(stderr, "tether: the kernel refused the XDP program (%s); "
				"the verifier's log is above.\n", strerror(-err));
		goto fail;
	}
	if ((err = map_live_words(dp)))
		goto fail;
	if (dp->older_stats_fd >= 0 && (err = carry_over_stats(dp)))
		goto fail;
	if (dp->adopted && (err = prepare_adopted(dp)))
		goto fail;
	if (dp->pin_root[0] && (err = pin_new_maps(dp)))
		goto fail;
	return 0;
fail:
	close_opening_fds(dp);
	dataplane_close(dp);
	return err;
}

void dataplane_unmap_inflight(struct dataplane *dp);

void dataplane_close(struct dataplane *dp)
{
	dataplane_unmap_inflight(dp);
	if (dp->live_words)
		munmap(dp->live_words, dp->live_size);
	dp->live_words = NULL;
	free(dp->adopted_records);
	dp->adopted_records = NULL;
	tether_xdp__destroy(dp->skel);
	dp->skel = NULL;
}

int dataplane_unpin(struct dataplane *dp)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int err = 0;

	if (!dp->pin_root[0])
		return 0;
	bpf_object__for_each_map(map, dp->skel->obj) {
		if (pin_path(path, sizeof(path), dp->pin_root, bpf_map__name(map)))
			continue;
		if (unlink(path) && errno != ENOENT)
			err = -errno;
	}
	return err;
}

int dataplane_prog_fd(const struct dataplane *dp)
{
	return bpf_program__fd(dp->skel->progs.tether_route);
}
