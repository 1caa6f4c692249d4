// SPDX-License-Identifier: MIT
/* check_pins: is the state pinned under a pin root consistent? For the fault
 * tests (tests/e2e/test_faults.sh), run while tetherd is quiet:
 *
 *   check_pins --pin-root DIR [--grace-ms N] [--verbose]
 *
 * It opens the pinned maps read-only (bpf_obj_get, shapes checked against
 * include/tether/maps.h; nothing is loaded, created or written) and checks:
 *   - every entry of every function's pool table names a warm container of
 *     that function on an up backend;
 *   - every warm container on an up backend is in its function's table, and
 *     each table holds exactly that set, sized maglev_table_size(set);
 *   - no pool table is left for a function without warm containers;
 *   - no container record references a missing backend, and names
 *     (container_meta, backend_meta) exist only for live slots and ids.
 * "Up" is the data plane's view: state up and the heartbeat expiry not passed.
 * A backend whose expiry passed less than --grace-ms ago (default 500) may
 * still be up in tetherd's view until its next tick: its containers are
 * allowed either way.
 *
 * Prints one summary line "check_pins: ok backends=... containers=... warm=...
 * pools=... table_entries=..." and exits 0, or one line per problem and exits 1;
 * exits 2 when the pins cannot be read. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <glib.h>

#include "dataplane/dataplane.h"
#include "dataplane/maglev.h"
#include "tether/maps.h"

#define MAX_REPORTED 50 /* problem lines printed; the count is always given */
#define NS_PER_MS 1000000ull

struct pins {
	int backends, containers, pools, backend_meta, container_meta;
};

struct state {
	struct backend_record *backends;
	struct backend_meta *backend_meta;
	struct container_record *containers;
	__u64 now, grace_ns;
	GPtrArray *problems; /* lines, printed once the snapshot is known consistent */
	bool verbose;
};

static void problem(struct state *s, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct state *s, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	g_ptr_array_add(s->problems, g_strdup_vprintf(format, args));
	va_end(args);
}

static int open_map(const char *root, const char *name, __u32 key_size, __u32 value_size)
{
	g_autofree char *path = g_build_filename(root, name, NULL);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0) {
		fprintf(stderr, "check_pins: cannot open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len) ||
	    (key_size && info.key_size != key_size) || (value_size && info.value_size != value_size)) {
		fprintf(stderr, "check_pins: %s is not the map this tool knows (key %u, value %u)\n",
			path, info.key_size, info.value_size);
		exit(2);
	}
	return fd;
}

/* The whole array map into values (count entries of size bytes each). */
static void read_array(int fd, void *values, __u32 count, size_t size, const char *what)
{
	const __u32 batch = 65536;
	__u32 *keys = g_new(__u32, batch);
	__u32 out_batch, done = 0;

	while (done < count) {
		__u32 n = count - done < batch ? count - done : batch;

		if (bpf_map_lookup_batch(fd, done ? &out_batch : NULL, &out_batch, keys,
					 (char *)values + (size_t)done * size, &n, NULL) &&
		    errno != ENOENT) {
			fprintf(stderr, "check_pins: reading %s: %s\n", what, strerror(errno));
			exit(2);
		}
		done += n;
		if (!n)
			break;
	}
	g_free(keys);
}

/* -1: the backend is down (or missing), 1: up, 0: just expired (either). */
static int backend_up(const struct state *s, __u32 id)
{
	const struct backend_record *b;

	if (id == 0 || id >= TETHER_MAX_BACKENDS)
		return -1;
	b = &s->backends[id];
	if (b->state != BACKEND_UP)
		return -1;
	if (!b->heartbeat_expiry_ns || s->now < b->heartbeat_expiry_ns)
		return 1;
	return s->now - b->heartbeat_expiry_ns < s->grace_ns ? 0 : -1;
}

static void check_backends(struct state *s, unsigned *count)
{
	GHashTable *names = g_hash_table_new(g_str_hash, g_str_equal);

	for (__u32 id = 0; id < TETHER_MAX_BACKENDS; id++) {
		const struct backend_meta *meta = &s->backend_meta[id];
		bool has_name = meta->name[0] != '\0';

		if (s->backends[id].state == BACKEND_FREE) {
			if (has_name)
				problem(s, "backend id %u is free but backend_meta names it '%.31s'", id,
					meta->name);
			continue;
		}
		(*count)++;
		if (id == 0)
			problem(s, "backend id 0 is in use (ids start at 1)");
		if (s->backends[id].vlan > TETHER_VLAN_MAX)
			problem(s, "backend %u has vlan %u: a VLAN id is 1 to %u, or 0", id,
				s->backends[id].vlan, TETHER_VLAN_MAX);
		if (!has_name)
			problem(s, "backend %u has no name in backend_meta", id);
		else if (!g_hash_table_add(names, (gpointer)meta->name))
			problem(s, "two backends are named '%.31s'", meta->name);
	}
	g_hash_table_destroy(names);
}

/* Containers: backends exist; the warm set of every function (on up
 * backends), and the slots allowed in tables (also on just-expired ones). */
static void check_containers(struct state *s, GHashTable *warm, GHashTable *allowed,
			     unsigned *live, unsigned *warm_count)
{
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS; slot++) {
		const struct container_record *c = &s->containers[slot];

		if (c->state == CONTAINER_FREE)
			continue;
		(*live)++;
		if (c->state > CONTAINER_DRAINING)
			problem(s, "container %u has state %u, not starting, warm or draining", slot,
				c->state);
		if (c->backend_id == 0 || c->backend_id >= TETHER_MAX_BACKENDS ||
		    s->backends[c->backend_id].state == BACKEND_FREE)
			problem(s, "container %u (function %llu) references backend %u, which does "
				   "not exist", slot, (unsigned long long)c->function_id, c->backend_id);
		if (c->function_id == 0)
			problem(s, "container %u has function 0", slot);
		if (c->state != CONTAINER_WARM)
			continue;
		int up = backend_up(s, c->backend_id);

		if (up < 0)
			continue;
		GHashTable *set = allowed;

		for (int pass = 0; pass < (up > 0 ? 2 : 1); pass++, set = warm) {
			GHashTable *slots = g_hash_table_lookup(set, &c->function_id);

			if (!slots) {
				__u64 *key = g_new(__u64, 1);

				*key = c->function_id;
				slots = g_hash_table_new(g_direct_hash, g_direct_equal);
				g_hash_table_insert(set, key, slots);
			}
			g_hash_table_add(slots, GUINT_TO_POINTER(slot + 1));
		}
		if (up > 0)
			(*warm_count)++;
	}
}

static void check_container_meta(struct state *s, int fd)
{
	__u32 key, next;
	const __u32 *previous = NULL;

	while (!bpf_map_get_next_key(fd, previous, &next)) {
		if (next >= TETHER_MAX_CONTAINERS || s->containers[next].state == CONTAINER_FREE)
			problem(s, "container_meta has a name for slot %u, which is free", next);
		key = next;
		previous = &key;
	}
}

/* One function's table against its warm set. */
static void check_table(struct state *s, __u64 function_id, int table_fd, GHashTable *warm,
			GHashTable *allowed, unsigned *entries)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), size = 0, zero = TETHER_POOL_SIZE_INDEX;
	GHashTable *want = g_hash_table_lookup(warm, &function_id);
	GHashTable *may = g_hash_table_lookup(allowed, &function_id);
	GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	unsigned long long f = (unsigned long long)function_id;

	if (bpf_obj_get_info_by_fd(table_fd, &info, &len) ||
	    bpf_map_lookup_elem(table_fd, &zero, &size)) {
		problem(s, "function %llu: cannot read its table: %s", f, strerror(errno));
		goto out;
	}
	if (size == 0 || TETHER_POOL_TABLE_ENTRIES(size) != info.max_entries) {
		problem(s, "function %llu: table size %u in a map of %u entries", f, size,
			info.max_entries);
		goto out;
	}
	__u32 *slots = g_new(__u32, size + 1);

	read_array(table_fd, slots, size + 1, sizeof(__u32), "a pool table");
	for (__u32 i = 1; i <= size; i++) {
		__u32 slot = slots[i];
		const struct container_record *c =
			slot < TETHER_MAX_CONTAINERS ? &s->containers[slot] : NULL;

		(*entries)++;
		if (!g_hash_table_add(seen, GUINT_TO_POINTER(slot + 1)))
			continue; /* judged at its first entry */
		if (may && g_hash_table_contains(may, GUINT_TO_POINTER(slot + 1)))
			continue;
		if (!c)
			problem(s, "function %llu: table entry %u names slot %u, beyond the array",
				f, i, slot);
		else if (c->state == CONTAINER_FREE)
			problem(s, "function %llu: table entry %u names slot %u, which is free", f, i,
				slot);
		else if (c->function_id != function_id)
			problem(s, "function %llu: table entry %u names container %u of function %llu",
				f, i, slot, (unsigned long long)c->function_id);
		else if (c->state != CONTAINER_WARM)
			problem(s, "function %llu: table entry %u names container %u, which is %s", f,
				i, slot, c->state == CONTAINER_STARTING ? "starting" : "draining");
		else
			problem(s, "function %llu: table entry %u names container %u on backend %u, "
				   "which is not up", f, i, slot, c->backend_id);
	}
	g_free(slots);
	if (want) {
		GHashTableIter iter;
		gpointer key;

		g_hash_table_iter_init(&iter, want);
		while (g_hash_table_iter_next(&iter, &key, NULL))
			if (!g_hash_table_contains(seen, key))
				problem(s, "function %llu: warm container %u on an up backend is missing "
					   "from its table", f, GPOINTER_TO_UINT(key) - 1);
	}
	/* The size follows the members: tetherd sizes a table for its pool. */
	__u32 members = g_hash_table_size(seen);

	if (members && size != maglev_table_size(members))
		problem(s, "function %llu: a table of %u entries for %u members (expected %u)", f,
			size, members, maglev_table_size(members));
	if (s->verbose)
		printf("check_pins: function %llu: table of %u entries, %u containers\n", f, size,
		       members);
out:
	g_hash_table_destroy(seen);
}

static void check_pools(struct state *s, int pools_fd, GHashTable *warm, GHashTable *allowed,
			unsigned *pools, unsigned *entries)
{
	GHashTable *has_pool = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	__u64 key, next;
	const __u64 *previous = NULL;

	while (!bpf_map_get_next_key(pools_fd, previous, &next)) {
		__u32 table_id;

		key = next;
		previous = &key;
		if (bpf_map_lookup_elem(pools_fd, &key, &table_id))
			continue; /* removed meanwhile */
		int table_fd = bpf_map_get_fd_by_id(table_id);

		if (table_fd < 0) {
			problem(s, "function %llu: its table (map id %u) cannot be opened: %s",
				(unsigned long long)key, table_id, strerror(errno));
			continue;
		}
		(*pools)++;
		__u64 *id = g_new(__u64, 1);

		*id = key;
		g_hash_table_add(has_pool, id);
		check_table(s, key, table_fd, warm, allowed, entries);
		close(table_fd);
	}
	GHashTableIter iter;
	gpointer function;

	g_hash_table_iter_init(&iter, warm);
	while (g_hash_table_iter_next(&iter, &function, NULL))
		if (!g_hash_table_contains(has_pool, function))
			problem(s, "function %llu has warm containers on up backends but no pool",
				(unsigned long long)*(__u64 *)function);
	g_hash_table_destroy(has_pool);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: check_pins --pin-root DIR [--grace-ms N] [--verbose]\n"
		     "Checks the maps tetherd pinned under DIR for consistency (see the source's "
		     "header);\nexit 0 consistent, 1 problems found, 2 cannot read.\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "pin-root", required_argument, NULL, 'p' },
		{ "grace-ms", required_argument, NULL, 'g' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *root = NULL;
	struct state s = { .grace_ns = 500 * NS_PER_MS };
	int option;

	while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (option) {
		case 'p': root = optarg; break;
		case 'g': s.grace_ns = strtoull(optarg, NULL, 10) * NS_PER_MS; break;
		case 'v': s.verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!root || optind != argc) {
		usage(stderr);
		return 2;
	}
	struct pins pins = {
		.backends = open_map(root, TETHER_MAP_BACKENDS, sizeof(__u32),
				     sizeof(struct backend_record)),
		.containers = open_map(root, TETHER_MAP_CONTAINERS, sizeof(__u32),
				       sizeof(struct container_record)),
		.pools = open_map(root, TETHER_MAP_POOLS, sizeof(__u64), sizeof(__u32)),
		.backend_meta = open_map(root, TETHER_MAP_BACKEND_META, sizeof(__u32),
					 sizeof(struct backend_meta)),
		.container_meta = open_map(root, TETHER_MAP_CONTAINER_META, sizeof(__u32),
					   sizeof(struct container_meta)),
	};

	s.backends = g_new0(struct backend_record, TETHER_MAX_BACKENDS);
	s.backend_meta = g_new0(struct backend_meta, TETHER_MAX_BACKENDS);
	s.containers = g_new0(struct container_record, TETHER_MAX_CONTAINERS);

	struct backend_record *backends_after = g_new0(struct backend_record, TETHER_MAX_BACKENDS);
	struct container_record *containers_after =
		g_new0(struct container_record, TETHER_MAX_CONTAINERS);
	unsigned backends = 0, live = 0, warm_count = 0, pools = 0, entries = 0;

	/* The tables are read after the arrays: when a running tetherd changed
	 * the arrays meanwhile, the snapshot is not one state; read it again. */
	for (int attempt = 1;; attempt++) {
		GHashTable *warm = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
							 (GDestroyNotify)g_hash_table_destroy);
		GHashTable *allowed = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
							    (GDestroyNotify)g_hash_table_destroy);

		if (s.problems)
			g_ptr_array_free(s.problems, TRUE);
		s.problems = g_ptr_array_new_with_free_func(g_free);
		backends = live = warm_count = pools = entries = 0;
		read_array(pins.backends, s.backends, TETHER_MAX_BACKENDS, sizeof(*s.backends),
			   "backends");
		read_array(pins.backend_meta, s.backend_meta, TETHER_MAX_BACKENDS,
			   sizeof(*s.backend_meta), "backend_meta");
		read_array(pins.containers, s.containers, TETHER_MAX_CONTAINERS,
			   sizeof(*s.containers), "containers");
		s.now = monotonic_ns();
		check_backends(&s, &backends);
		check_containers(&s, warm, allowed, &live, &warm_count);
		check_container_meta(&s, pins.container_meta);
		check_pools(&s, pins.pools, warm, allowed, &pools, &entries);
		g_hash_table_destroy(warm);
		g_hash_table_destroy(allowed);
		read_array(pins.backends, backends_after, TETHER_MAX_BACKENDS,
			   sizeof(*backends_after), "backends");
		read_array(pins.containers, containers_after, TETHER_MAX_CONTAINERS,
			   sizeof(*containers_after), "containers");
		bool steady = !memcmp(backends_after, s.backends,
				      TETHER_MAX_BACKENDS * sizeof(*backends_after)) &&
			      !memcmp(containers_after, s.containers,
				      (size_t)TETHER_MAX_CONTAINERS * sizeof(*containers_after));

		if (steady || !s.problems->len)
			break;
		if (attempt == 5) {
			printf("check_pins: the maps kept changing while read (5 attempts); the "
			       "problems below may be changes in flight\n");
			break;
		}
	}
	int status = s.problems->len ? 1 : 0;

	if (s.problems->len) {
		for (guint i = 0; i < s.problems->len && i < MAX_REPORTED; i++)
			printf("check_pins: PROBLEM: %s\n", (char *)g_ptr_array_index(s.problems, i));
		printf("check_pins: %u problems (backends=%u containers=%u warm=%u pools=%u)\n",
		       s.problems->len, backends, live, warm_count, pools);
	} else {
		printf("check_pins: ok backends=%u containers=%u warm=%u functions_with_pool=%u "
		       "table_entries=%u\n",
		       backends, live, warm_count, pools, entries);
	}
	/* Freed, so that LeakSanitizer and valgrind see no leak in a test tool. */
	g_ptr_array_free(s.problems, TRUE);
	g_free(s.backends);
	g_free(s.backend_meta);
	g_free(s.containers);
	g_free(backends_after);
	g_free(containers_after);
	return status;
}
