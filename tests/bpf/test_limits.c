// SPDX-License-Identifier: MIT
/* Limits and time, against the real kernel maps and the real XDP program:
 *
 *   - containers full: with every slot in use, adding a container is a clear
 *     `full` error (through the lifecycle and through the control protocol)
 *     and nothing else changes: maps, pools, the lifecycle's view, events.
 *     The lifecycle's max_containers limit makes "every slot" 8 here; the
 *     maps keep their TETHER_MAX_CONTAINERS size.
 *   - the affinity LRU map: filled to capacity from userspace (batched), then
 *     new keys learned through the XDP program evict the least recently used
 *     entries, the oldest ones, while the old keys the program used recently
 *     stay; `show stats` counts the entries (affinity_entries) so that
 *     evictions = learned - entries.
 *   - the pool tables tetherd keeps open for its slow path, at most half its
 *     RLIMIT_NOFILE: each is the table in the data plane, follows the swaps.
 *   - the clock: deadlines and heartbeats follow CLOCK_MONOTONIC, so a jump of
 *     the wall clock (an hour forward, then back) neither takes a backend down
 *     nor ends a drain early.
 *
 * On the wall clock: setting CLOCK_REALTIME with clock_settime would jump the
 * clock of every process on the machine (other tests, builds comparing file
 * times, whatever records these runs), and a time namespace cannot help: it
 * offsets only CLOCK_MONOTONIC and CLOCK_BOOTTIME, never CLOCK_REALTIME. So
 * the jump here is private to this process: the test defines clock_gettime,
 * gettimeofday and time, which take precedence over the C library's for the
 * product code linked in and for the libraries (glib, libbpf) alike, and adds
 * an offset to every wall-clock reading; the monotonic clocks pass through.
 * Code that read the wall clock for a deadline would see the jump; the kernel
 * side (bpf_ktime_get_coarse_ns) is monotonic by construction. The test
 * checks that the jump is visible (time(), gettimeofday(), g_get_real_time())
 * and that the deadlines still fire on the monotonic clock afterwards.
 *
 * Run one test with a cmocka filter pattern: `test_limits '*lru*'`. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <glib.h>

#include "check.h"
#include "commands.h"
#include "dataplane/dataplane.h"
#include "lifecycle.h"
#include "pktgen.h"
#include "send.h"
#include "tether_xdp.skel.h"
#include "tetherd.h"
#include "xdp_harness.h"

#define F1 PKT_TEST_FUNCTION_ID
#define F2 0x2002ULL
#define F3 0x3003ULL
#define MS 1000000ull
#define SEC 1000000000ll
#define LIMIT 8             /* max_containers of the "full" test */
#define SNAP_SLOTS 32       /* slots compared by snapshots (beyond LIMIT too) */
#define SNAP_BACKENDS 4
#define POOL_CAP 4096       /* table entries compared by snapshots */
#define OLD_KEY_BASE 0x01d0000000000000ull /* keys filled from userspace */
#define NEW_KEY_BASE 0x0e30000000000000ull /* keys learned by the program */
#define TOUCHED 64          /* oldest keys used by the program before learning */
#define LEARNED 1024        /* new keys learned through the program */
/* The kernel frees LRU nodes in batches (LOCAL_FREE_TARGET, 128, per refill
 * of a CPU's free list): evictions may run ahead of the keys learned by up to
 * one batch. */
#define LRU_BATCH 128

/* Checks: tests/lib/check.h. */

/* ---- a private wall clock ------------------------------------------------- */

/* Added to every CLOCK_REALTIME reading of this process (see the top). */
static volatile long long wall_offset_ns;

static bool is_wall_clock(clockid_t id)
{
	return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI;
}

static void shift_timespec(struct timespec *ts, long long ns)
{
	long long total = (long long)ts->tv_sec * SEC + ts->tv_nsec + ns;

	ts->tv_sec = total / SEC;
	ts->tv_nsec = total % SEC;
}

/* The C library's clock_gettime, which this file's definition hides. */
static int real_clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);

	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	return real(id, ts);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int err = real_clock_gettime(id, ts);

	if (!err && is_wall_clock(id) && wall_offset_ns)
		shift_timespec(ts, wall_offset_ns);
	return err;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec ts;

	(void)tz;
	if (clock_gettime(CLOCK_REALTIME, &ts))
		return -1;
	tv->tv_sec = ts.tv_sec; /* declared nonnull by the C library */
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}

time_t time(time_t *out)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (out)
		*out = ts.tv_sec;
	return ts.tv_sec;
}

/* The wall clock without the offset, for checks. */
static long long true_wall_ns(void)
{
	struct timespec ts;

	real_clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ---- the world of one test ----------------------------------------------- */

struct world {
	struct tetherd d; /* dp and lc live here, so the control requests see them */
	bool dp_open, lc_init;
	bool real_clock;
	__u64 now; /* the fake clock, when not real_clock */
	GPtrArray *events;
	unsigned warm_calls;
	struct tether_token tokens[SNAP_SLOTS];
	__u32 lo, tx0;
	__u16 port_seq;
	cpu_set_t saved_affinity;
	bool affinity_saved;
};


static __u64 world_clock(void *ctx)
{
	struct world *w = ctx;

	return w->real_clock ? monotonic_ns() : w->now;
}

static void on_event(void *ctx, const char *line)
{
	g_ptr_array_add(((struct world *)ctx)->events, g_strdup(line));
}

static void on_container_warm(void *ctx, __u32 slot, __u64 function_id)
{
	(void)slot, (void)function_id;
	((struct world *)ctx)->warm_calls++;
}

static int world_setup(void **state, __u32 max_containers, bool real_clock)
{
	struct world *w = g_new0(struct world, 1);
	__u8 vip[16];

	*state = w;
	w->events = g_ptr_array_new_with_free_func(g_free);
	w->lo = harness_ifindex("lo");
	w->tx0 = harness_ifindex("tx0");
	w->port_seq = 30000;
	w->real_clock = real_clock;
	w->now = monotonic_ns();
	if (dataplane_open(&w->d.dp, NULL)) {
		print_error("setup: dataplane_open failed\n");
		return -1;
	}
	w->dp_open = true;
	pkt_v4mapped(vip, PKT_TEST_VIP4);
	if (service_add(&w->d.dp, vip, PKT_TEST_VIP_PORT, 1))
		return -1;
	struct lifecycle_config config = {
		.heartbeat_ms = 60000,
		.drain_ms = 30000,
		.max_containers = max_containers,
		.now_ns = world_clock,
		.clock_ctx = w,
		.observer = { .event = on_event, .container_warm = on_container_warm, .ctx = w },
	};
	if (lifecycle_init(&w->d.lc, &w->d.dp, &config)) {
		print_error("setup: lifecycle_init failed\n");
		return -1;
	}
	w->lc_init = true;
	return 0;
}

static int setup_limited(void **state)
{
	return world_setup(state, LIMIT, false);
}

static int setup_default(void **state)
{
	return world_setup(state, 0, false);
}

static int setup_real_clock(void **state)
{
	return world_setup(state, 0, true);
}

static int teardown(void **state)
{
	struct world *w = *state;

	wall_offset_ns = 0; /* even when a check failed halfway */
	if (!w)
		return 0;
	if (w->affinity_saved)
		sched_setaffinity(0, sizeof(w->saved_affinity), &w->saved_affinity);
	if (w->lc_init)
		lifecycle_free(&w->d.lc);
	if (w->dp_open)
		dataplane_close(&w->d.dp);
	g_ptr_array_free(w->events, TRUE);
	check_strings_free();
	g_free(w);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

static __u32 add_backend(struct world *w, const char *name, const char *iface,
			 __u32 heartbeat_ms, unsigned n)
{
	__u8 addr[16], mac[6] = { 0x02, 0, 0, 0, (__u8)n, (__u8)n };
	__u32 id = 0;

	CHECK(addr_parse(S("10.1.0.%u", n & 0xff), addr) == 0, "addr_parse");
	CHECK_PROTO(&w->d.lc, lc_backend_add(&w->d.lc, name, addr, mac, iface, 0, heartbeat_ms, &id),
		    PROTO_OK, "adding backend '%s'", name);
	return id;
}

static __u32 add_container(struct world *w, __u64 function_id, const char *backend,
			   const char *name, enum container_state state)
{
	struct tether_token token;
	__u32 slot = ~0u;

	CHECK_PROTO(&w->d.lc,
		    lc_container_add(&w->d.lc, function_id, backend, name, state, &slot, &token),
		    PROTO_OK, "adding container '%s' of function 0x%llx on '%s'", name,
		    (unsigned long long)function_id, backend);
	CHECK(slot < SNAP_SLOTS, "container '%s' got slot %u, beyond what the test expects", name,
	      slot);
	w->tokens[slot] = token;
	return slot;
}

static void flush(struct world *w)
{
	CHECK(lifecycle_flush_pools(&w->d.lc) == 0, "lifecycle_flush_pools: %s",
	      lifecycle_error(&w->d.lc));
}

/* One control request through tetherd's command table; the answer (kept
 * until teardown). */
static const char *control(struct world *w, const char *line)
{
	struct proto_request req;
	struct proto_writer out;
	struct requester who = { 0 };
	char message[256];

	CHECK(proto_parse_line(line, strlen(line), &req, message, sizeof(message)) == PROTO_OK,
	      "the test's request '%s' does not parse: %s", line, message);
	proto_writer_init(&out);
	commands_execute(&w->d, &who, &req, &out);
	const char *answer = S("%.*s", (int)out.len, out.data);

	proto_writer_free(&out);
	return answer;
}

/* The value of key in the first record of answer that has it (NULL: none). */
static const char *answer_field(const char *answer, const char *key)
{
	gchar **lines = g_strsplit(answer, "\n", -1);
	const char *found = NULL;

	for (gchar **line = lines + 1; *line && **line && !found; line++) {
		struct proto_request record;

		if (proto_parse_record(*line, strlen(*line), &record, NULL, 0) != PROTO_OK)
			continue;
		const char *value = proto_get(&record, key);

		if (value)
			found = S("%s", value);
	}
	g_strfreev(lines);
	return found;
}

static __u64 answer_u64(const char *answer, const char *key)
{
	const char *value = answer_field(answer, key);

	CHECK(value != NULL, "no %s= in the answer:\n%s", key, answer);
	return g_ascii_strtoull(value, NULL, 10);
}

static void send_request(struct world *w, __u64 function_id, __u8 flags, __u64 key,
			 const struct tether_token *token, struct sent *out)
{
	send_test_request(&w->d.dp, w->lo, function_id, flags, key, token, ++w->port_seq, out);
}

/* ---- snapshots: everything a refused add must leave alone --------------------- */

struct snapshot {
	struct container_record map_containers[SNAP_SLOTS];
	struct container_record view_containers[SNAP_SLOTS];
	char names[SNAP_SLOTS][TETHER_NAME_MAX];
	__u32 meta_entries;
	struct backend_record backends[SNAP_BACKENDS];
	__u32 backend_containers[SNAP_BACKENDS];
	int pool_err[3];
	__u32 pool_size[3];
	__u32 pools[3][POOL_CAP];
	__u32 functions, function_slots[3], container_names, next_slot;
	__u32 events, warm_calls;
};

static const __u64 snap_functions[3] = { F1, F2, F3 };

static void snapshot_take(struct world *w, struct snapshot *s)
{
	int containers_fd = bpf_map__fd(w->d.dp.skel->maps.containers);
	int meta_fd = bpf_map__fd(w->d.dp.skel->maps.container_meta);
	__u32 key, next;
	const __u32 *previous = NULL;

	memset(s, 0, sizeof(*s));
	for (__u32 slot = 0; slot < SNAP_SLOTS; slot++) {
		struct container_meta meta;

		CHECK(bpf_map_lookup_elem(containers_fd, &slot, &s->map_containers[slot]) == 0,
		      "reading slot %u", slot);
		s->view_containers[slot] = w->d.lc.containers[slot];
		if (!bpf_map_lookup_elem(meta_fd, &slot, &meta))
			memcpy(s->names[slot], meta.name, TETHER_NAME_MAX);
	}
	while (!bpf_map_get_next_key(meta_fd, previous, &next)) {
		s->meta_entries++;
		key = next;
		previous = &key;
	}
	for (__u32 id = 0; id < SNAP_BACKENDS; id++) {
		backend_get(&w->d.dp, id, &s->backends[id]);
		s->backend_containers[id] = w->d.lc.backends[id].containers;
	}
	for (int f = 0; f < 3; f++) {
		struct function *function = lc_function(&w->d.lc, snap_functions[f]);

		s->pool_err[f] = pool_read(&w->d.dp, snap_functions[f], s->pools[f], POOL_CAP,
					   &s->pool_size[f]);
		s->function_slots[f] = function ? g_hash_table_size(function->slots) + 1 : 0;
	}
	s->functions = g_hash_table_size(w->d.lc.functions);
	s->container_names = g_hash_table_size(w->d.lc.container_names);
	s->next_slot = w->d.lc.next_slot;
	s->events = w->events->len;
	s->warm_calls = w->warm_calls;
}

static void expect_unchanged(struct world *w, const struct snapshot *before, const char *what)
{
	struct snapshot *now = g_new0(struct snapshot, 1);

	snapshot_take(w, now);
	for (__u32 slot = 0; slot < SNAP_SLOTS; slot++) {
		CHECK(!memcmp(&now->map_containers[slot], &before->map_containers[slot],
			      sizeof(struct container_record)),
		      "%s: slot %u changed in the containers map (state %u -> %u)", what, slot,
		      before->map_containers[slot].state, now->map_containers[slot].state);
		CHECK(!memcmp(&now->view_containers[slot], &before->view_containers[slot],
			      sizeof(struct container_record)),
		      "%s: the lifecycle's record of slot %u changed", what, slot);
		CHECK(!strcmp(now->names[slot], before->names[slot]),
		      "%s: the name of slot %u changed ('%s' -> '%s')", what, slot,
		      before->names[slot], now->names[slot]);
	}
	CHECK_EQ(now->meta_entries, before->meta_entries, "%s: container_meta entries", what);
	CHECK(!memcmp(now->backends, before->backends, sizeof(now->backends)),
	      "%s: a backend record changed", what);
	CHECK(!memcmp(now->backend_containers, before->backend_containers,
		      sizeof(now->backend_containers)),
	      "%s: a backend's container count changed", what);
	for (int f = 0; f < 3; f++) {
		CHECK_EQ(now->pool_err[f], before->pool_err[f], "%s: pool of function 0x%llx exists",
			 what, (unsigned long long)snap_functions[f]);
		CHECK_EQ(now->pool_size[f], before->pool_size[f], "%s: pool size of function 0x%llx",
			 what, (unsigned long long)snap_functions[f]);
		CHECK(!memcmp(now->pools[f], before->pools[f], sizeof(now->pools[f])),
		      "%s: the pool table of function 0x%llx changed", what,
		      (unsigned long long)snap_functions[f]);
		CHECK_EQ(now->function_slots[f], before->function_slots[f],
			 "%s: the lifecycle's containers of function 0x%llx (+1, 0: unknown)", what,
			 (unsigned long long)snap_functions[f]);
	}
	CHECK_EQ(now->functions, before->functions, "%s: functions known to the lifecycle", what);
	CHECK_EQ(now->container_names, before->container_names, "%s: container names", what);
	CHECK_EQ(now->next_slot, before->next_slot, "%s: next_slot", what);
	CHECK_EQ(now->events, before->events, "%s: events emitted", what);
	CHECK_EQ(now->warm_calls, before->warm_calls, "%s: container_warm calls", what);
	g_free(now);
}

/* ---- 1. containers full --------------------------------------------------------- */

static void expect_full(struct world *w, __u64 function_id, const char *backend,
			const char *name, enum container_state state, const char *what)
{
	struct tether_token token;
	__u32 slot = 0xdead;

	CHECK_PROTO(&w->d.lc,
		    lc_container_add(&w->d.lc, function_id, backend, name, state, &slot, &token),
		    PROTO_FULL, "%s", what);
	CHECK(strstr(lifecycle_error(&w->d.lc), "all 8 container slots are in use") != NULL,
	      "%s: the message should say that all 8 slots are in use: '%s'", what,
	      lifecycle_error(&w->d.lc));
}

static void test_containers_full(void **state)
{
	struct world *w = *state;
	struct snapshot *snap = g_new0(struct snapshot, 1);
	__u32 slots[LIMIT];
	struct sent r;

	add_backend(w, "vm1", "lo", 0, 1);
	add_backend(w, "vm2", "tx0", 0, 2);
	for (int i = 0; i < LIMIT; i++) {
		const char *backend = i % 2 ? "vm2" : "vm1";
		__u64 function_id = i < 5 ? F1 : F2;
		enum container_state state = i == 4 || i == 7 ? CONTAINER_STARTING : CONTAINER_WARM;

		slots[i] = add_container(w, function_id, backend, S("c%d", i), state);
		CHECK(slots[i] < LIMIT, "container %d got slot %u, beyond the limit %u", i, slots[i],
		      LIMIT);
		for (int j = 0; j < i; j++)
			CHECK(slots[j] != slots[i], "containers %d and %d share slot %u", j, i,
			      slots[i]);
	}
	flush(w);
	snapshot_take(w, snap);

	expect_full(w, F1, "vm1", "", CONTAINER_WARM, "a ninth warm container");
	expect_full(w, F1, "vm2", "named", CONTAINER_STARTING, "a ninth, named, starting");
	expect_full(w, F3, "vm1", "newfn", CONTAINER_WARM, "the first container of a new function");
	flush(w);
	expect_unchanged(w, snap, "adding containers when all slots are in use");
	CHECK(lc_function(&w->d.lc, F3) == NULL, "the refused container's function is known");

	/* Other errors keep their codes when full: they are checked first. */
	CHECK_PROTO(&w->d.lc, lc_container_add(&w->d.lc, F1, "vm1", "c0", CONTAINER_WARM,
					       &(__u32){ 0 }, &(struct tether_token){}),
		    PROTO_EXISTS, "a duplicate name when full");
	CHECK_PROTO(&w->d.lc, lc_container_add(&w->d.lc, F1, "vm9", "", CONTAINER_WARM,
					       &(__u32){ 0 }, &(struct tether_token){}),
		    PROTO_NOT_FOUND, "an unknown backend when full");

	/* Through the control protocol: "error full: ..." and nothing changes. */
	const char *answer = control(w, "add container function=0x1001 backend=vm1 name=x "
					"state=warm");
	CHECK(g_str_has_prefix(answer, "error full: all 8 container slots are in use"),
	      "add container when full answered:\n%s", answer);
	CHECK(g_str_has_suffix(answer, "\n\n"), "the answer does not end with an empty line");
	printf("# when full: %.*s", (int)(strchr(answer, '\n') - answer + 1), answer);
	expect_unchanged(w, snap, "add container over the control protocol when full");

	/* Routing is as before: keys land on the warm containers of F1. */
	for (int i = 0; i < 16; i++) {
		send_request(w, F1, TETHER_F_KEY, 0x4242000 + i, NULL, &r);
		CHECK(r.stamped && (r.verdict == XDP_TX || r.verdict == XDP_REDIRECT),
		      "a keyed request for F1 when full was not forwarded (verdict %s)",
		      xdp_verdict_name(r.verdict));
		CHECK(r.slot == slots[0] || r.slot == slots[1] || r.slot == slots[2] ||
			      r.slot == slots[3],
		      "a keyed request for F1 went to slot %u, not a warm container of F1", r.slot);
	}

	/* A freed slot is taken again, and then it is full again. */
	CHECK_PROTO(&w->d.lc, lc_container_del(&w->d.lc, slots[3]), PROTO_OK, "del");
	flush(w);
	__u32 again = add_container(w, F3, "vm2", "again", CONTAINER_WARM);

	CHECK_EQ(again, slots[3], "the new container takes the freed slot");
	flush(w);
	expect_full(w, F3, "vm1", "", CONTAINER_WARM, "full again");
	for (__u32 slot = LIMIT; slot < SNAP_SLOTS; slot++)
		CHECK(w->d.lc.containers[slot].state == CONTAINER_FREE,
		      "slot %u beyond the limit is in use", slot);
	g_free(snap);
}

/* ---- 2. the affinity LRU map --------------------------------------------------- */

static __u64 key_index_old(__u64 key)
{
	return key - OLD_KEY_BASE;
}

/* Pins the test to one CPU: the LRU keeps a free list per CPU, and the
 * order of evictions is exact only when one CPU fills and learns. */
static void pin_to_one_cpu(struct world *w)
{
	cpu_set_t one;

	CHECK(sched_getaffinity(0, sizeof(w->saved_affinity), &w->saved_affinity) == 0,
	      "sched_getaffinity");
	w->affinity_saved = true;
	CPU_ZERO(&one);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (CPU_ISSET(cpu, &w->saved_affinity)) {
			CPU_SET(cpu, &one);
			break;
		}
	}
	CHECK(sched_setaffinity(0, sizeof(one), &one) == 0, "sched_setaffinity: %s",
	      strerror(errno));
}

static void test_affinity_lru_evicts_oldest(void **state)
{
	struct world *w = *state;
	const __u32 capacity = TETHER_MAX_AFFINITY;
	int fd = bpf_map__fd(w->d.dp.skel->maps.affinity);
	struct affinity_key *keys = g_new(struct affinity_key, capacity);
	struct affinity_value *values = g_new(struct affinity_value, capacity);
	struct sent r;
	__u64 entries;

	pin_to_one_cpu(w);
	add_backend(w, "vm1", "lo", 0, 1);
	__u32 a = add_container(w, F1, "vm1", "a", CONTAINER_WARM);
	__u32 b = add_container(w, F1, "vm1", "b", CONTAINER_WARM);

	flush(w);
	struct affinity_value live = { .slot = a, .generation = w->d.lc.containers[a].generation };

	/* Fill: old keys 0..capacity-1 in order, all bound to container a. */
	gint64 started = g_get_monotonic_time();

	for (__u32 i = 0; i < capacity; i++) {
		keys[i] = (struct affinity_key){ F1, OLD_KEY_BASE + i };
		values[i] = live;
	}
	for (__u32 done = 0; done < capacity;) {
		__u32 count = capacity - done < 65536 ? capacity - done : 65536;
		LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);

		CHECK(bpf_map_update_batch(fd, keys + done, values + done, &count, &opts) == 0,
		      "filling the affinity map at %u: %s", done, strerror(errno));
		done += count;
	}
	printf("# filled the affinity map with %u keys in %.0f ms\n", capacity,
	       (g_get_monotonic_time() - started) / 1e3);
	CHECK(affinity_entries_read(&w->d.dp, &entries) == 0, "counting the affinity entries");
	CHECK_EQ(entries, capacity, "entries after the fill (no eviction yet)");
	CHECK_EQ(answer_u64(control(w, "show stats"), "affinity_entries"), capacity,
		 "affinity_entries of show stats after the fill");

	/* The program uses the oldest TOUCHED keys: they become recently used. */
	for (__u32 i = 0; i < TOUCHED; i++) {
		send_request(w, F1, TETHER_F_KEY, OLD_KEY_BASE + i, NULL, &r);
		CHECK(r.d.key_hit == 1 && r.slot == a,
		      "old key %u should hit its entry (container %u); key_hit +%llu, slot %u", i, a,
		      (unsigned long long)r.d.key_hit, r.slot);
	}
	/* LEARNED new keys through the program, into the full map. */
	struct tether_stats before, after;

	CHECK(stats_read(&w->d.dp, &before) == 0, "stats");
	for (__u32 i = 0; i < LEARNED; i++) {
		send_request(w, F1, TETHER_F_KEY, NEW_KEY_BASE + i, NULL, &r);
		CHECK(r.d.key_new == 1 && r.stamped && (r.slot == a || r.slot == b),
		      "new key %u should be learned and forwarded (key_new +%llu, slot %u)", i,
		      (unsigned long long)r.d.key_new, r.slot);
	}
	CHECK(stats_read(&w->d.dp, &after) == 0, "stats");

	/* Walk the map: which keys are there now. */
	guint8 *present_old = g_new0(guint8, capacity);
	guint8 *present_new = g_new0(guint8, LEARNED);
	__u64 walked = 0, strangers = 0;
	struct affinity_key out_batch;
	void *in_batch = NULL;

	for (;;) {
		__u32 count = 65536;
		int err = bpf_map_lookup_batch(fd, in_batch, &out_batch, keys, values, &count, NULL)
				  ? -errno
				  : 0;

		for (__u32 i = 0; i < count; i++, walked++) {
			__u64 k = keys[i].routing_key;

			if (k >= OLD_KEY_BASE && k < OLD_KEY_BASE + capacity)
				present_old[key_index_old(k)] = 1;
			else if (k >= NEW_KEY_BASE && k < NEW_KEY_BASE + LEARNED)
				present_new[k - NEW_KEY_BASE] = 1;
			else
				strangers++;
		}
		if (err == -ENOENT)
			break;
		CHECK(err == 0, "walking the affinity map: %s", strerror(-err));
		in_batch = &out_batch;
	}
	__u32 gone = 0, first_gone = capacity, last_gone = 0, new_present = 0;

	for (__u32 i = 0; i < capacity; i++) {
		if (present_old[i])
			continue;
		gone++;
		first_gone = i < first_gone ? i : first_gone;
		last_gone = i;
	}
	for (__u32 i = 0; i < LEARNED; i++)
		new_present += present_new[i];
	printf("# learned %u keys into the full map: %u old keys evicted (old keys %u..%u), "
	       "%u entries now\n",
	       LEARNED, gone, first_gone, last_gone, (unsigned)walked);
	CHECK_EQ(strangers, 0, "keys in the map that the test did not put there");
	CHECK_EQ(new_present, LEARNED, "new keys present after learning");
	for (__u32 i = 0; i < TOUCHED; i++)
		CHECK(present_old[i], "old key %u, used by the program just before, was evicted", i);
	CHECK(gone >= LEARNED, "%u old keys were evicted for %u new ones in a full map", gone,
	      LEARNED);
	CHECK(gone <= LEARNED + LRU_BATCH, "%u old keys were evicted for %u new ones", gone,
	      LEARNED);
	CHECK(last_gone < TOUCHED + LEARNED + LRU_BATCH,
	      "old key %u was evicted: only the least recently used (the oldest, after the %u "
	      "touched ones) should go",
	      last_gone, TOUCHED);
	for (__u32 i = TOUCHED + LEARNED + LRU_BATCH; i < capacity; i++)
		if (!present_old[i])
			CHECK(false, "old key %u is gone", i);

	/* Counted: affinity_entries, and evictions = learned - entries. */
	const char *answer = control(w, "show stats");
	__u64 shown = answer_u64(answer, "affinity_entries");
	__u64 key_new = answer_u64(answer, "key_new");

	CHECK_EQ(shown, walked, "affinity_entries of show stats against a walk of the map");
	CHECK_EQ(key_new, after.key_new, "key_new of show stats");
	CHECK_EQ(after.key_new - before.key_new, LEARNED, "key_new while learning");
	/* learned = the fill from userspace + what the program learned */
	__u64 evictions = (__u64)capacity + key_new - shown;

	CHECK_EQ(evictions, gone, "evictions = learned - affinity_entries");
	printf("# show stats: key_new=%llu affinity_entries=%llu -> evictions=%llu\n",
	       (unsigned long long)key_new, (unsigned long long)shown,
	       (unsigned long long)evictions);
	g_free(present_old);
	g_free(present_new);
	g_free(keys);
	g_free(values);
}

/* affinity_entries moves with learning and flushing, from an empty map. */
static void test_affinity_entries_counted(void **state)
{
	struct world *w = *state;
	struct sent r;

	CHECK_EQ(answer_u64(control(w, "show stats"), "affinity_entries"), 0, "empty map");
	add_backend(w, "vm1", "lo", 0, 1);
	add_container(w, F1, "vm1", "a", CONTAINER_WARM);
	add_container(w, F2, "vm1", "b", CONTAINER_WARM);
	flush(w);
	for (int i = 0; i < 30; i++)
		send_request(w, i < 20 ? F1 : F2, TETHER_F_KEY, 777 + i, NULL, &r);
	send_request(w, F1, TETHER_F_KEY, 777, NULL, &r); /* a hit: no new entry */
	send_request(w, F1, 0, 0, NULL, &r);               /* a flow: no entry */
	CHECK_EQ(answer_u64(control(w, "show stats"), "affinity_entries"), 30, "after 30 keys");
	CHECK_EQ(answer_u64(control(w, "flush affinity function=0x2002"), "flushed"), 10,
		 "flushed");
	CHECK_EQ(answer_u64(control(w, "show stats"), "affinity_entries"), 20, "after the flush");
}

/* ---- the pool tables tetherd keeps open ------------------------------------- */

/* Entry 0 (the size) and entry 1 of a table, through an fd. */
static void table_head(int fd, __u32 *size, __u32 *first)
{
	__u32 zero = 0, one = 1;

	CHECK(bpf_map_lookup_elem(fd, &zero, size) == 0, "reading a kept table's size");
	CHECK(bpf_map_lookup_elem(fd, &one, first) == 0, "reading a kept table's first entry");
}

/* The slow path reads a function's table through the fd the lifecycle kept
 * (opening it by map id needs CAP_SYS_ADMIN, which tetherd drops): the fd is
 * the table in the data plane, follows every swap, goes with the pool, and at
 * most max_kept_tables are kept (the others fall back to the map id). */
static void test_table_fds_kept(void **state)
{
	struct world *w = *state;
	__u32 table[POOL_CAP], size, kept_size, kept_first;

	add_backend(w, "vm1", "lo", 0, 1);
	CHECK(w->d.lc.max_kept_tables > 0, "no table may be kept (RLIMIT_NOFILE)");
	__u32 a = add_container(w, F1, "vm1", "a", CONTAINER_WARM);

	flush(w);
	struct function *f1 = lc_function(&w->d.lc, F1);
	int fd = f1->table_fd;

	CHECK(fd >= 0, "no table kept for F1");
	CHECK_EQ(w->d.lc.kept_tables, 1, "kept tables");
	CHECK(pool_read(&w->d.dp, F1, table, POOL_CAP, &size) == 0, "pool_read F1");
	table_head(fd, &kept_size, &kept_first);
	CHECK_EQ(kept_size, size, "the kept table's size against the data plane's");
	CHECK_EQ(kept_first, table[0], "the kept table's first entry against the data plane's");

	/* A swap replaces the kept table with the new one. */
	add_container(w, F1, "vm1", "b", CONTAINER_WARM);
	flush(w);
	CHECK(pool_read(&w->d.dp, F1, table, POOL_CAP, &size) == 0, "pool_read F1");
	table_head(f1->table_fd, &kept_size, &kept_first);
	CHECK_EQ(kept_size, size, "after a swap: the kept table's size");
	CHECK_EQ(w->d.lc.kept_tables, 1, "kept tables after a swap");

	/* No warm container: no pool, no table kept. */
	CHECK_PROTO(&w->d.lc, lc_container_drain(&w->d.lc, a, 0), PROTO_OK, "drain a");
	CHECK_PROTO(&w->d.lc, lc_container_del(&w->d.lc, a + 1), PROTO_OK, "del b");
	flush(w);
	CHECK_EQ(f1->table_fd, -1, "F1's kept table after its pool went");
	CHECK_EQ(w->d.lc.kept_tables, 0, "kept tables");

	/* Past max_kept_tables, tables are not kept. */
	w->d.lc.max_kept_tables = 1;
	add_container(w, F2, "vm1", "c", CONTAINER_WARM);
	add_container(w, F3, "vm1", "d", CONTAINER_WARM);
	flush(w);
	CHECK_EQ(w->d.lc.kept_tables, 1, "kept tables at the limit");
	CHECK((lc_function(&w->d.lc, F2)->table_fd >= 0) != (lc_function(&w->d.lc, F3)->table_fd >= 0),
	      "one of F2 and F3 keeps its table");
	CHECK(pool_read(&w->d.dp, F2, table, POOL_CAP, &size) == 0 &&
		      pool_read(&w->d.dp, F3, table, POOL_CAP, &size) == 0,
	      "both F2 and F3 have pools");
}

/* ---- 3. the clock ------------------------------------------------------------------ */

/* The backend, in the lifecycle's view and in the map, is up; the request
 * reaches it. */
static void expect_still_serving(struct world *w, __u32 backend_id, __u32 warm, __u32 draining,
				 const char *what)
{
	struct backend_record record;
	struct sent r;

	lifecycle_tick(&w->d.lc);
	flush(w);
	CHECK_EQ(w->d.lc.backends[backend_id].record.state, BACKEND_UP,
		 "%s: the lifecycle's backend state", what);
	CHECK(backend_get(&w->d.dp, backend_id, &record) == 0, "%s: backend record", what);
	CHECK_EQ(record.state, BACKEND_UP, "%s: the backend's state in the map", what);
	CHECK(record.heartbeat_expiry_ns > monotonic_ns(),
	      "%s: the heartbeat expiry is in the past of CLOCK_MONOTONIC", what);
	CHECK_EQ(w->d.lc.containers[draining].state, CONTAINER_DRAINING,
		 "%s: the draining container's state (not gone before its deadline)", what);
	send_request(w, F1, TETHER_F_KEY, 0x77770000 + w->port_seq, NULL, &r);
	CHECK(r.stamped && r.slot == warm, "%s: a keyed request went to slot %u (verdict %s), "
	      "not the warm container %u", what, r.slot, xdp_verdict_name(r.verdict), warm);
	send_request(w, F1, TETHER_F_TOKEN | TETHER_F_STRICT, 0, &w->tokens[draining], &r);
	CHECK(r.stamped && r.slot == draining && r.d.token_hit == 1,
	      "%s: the draining container's token should still route to it (verdict %s, "
	      "status %u)", what, xdp_verdict_name(r.verdict), r.status);
	const char *backends = control(w, "list backend");
	__u64 expires = answer_u64(backends, "expires_in_ms");

	CHECK(!strcmp(answer_field(backends, "state"), "up") && expires > 0 && expires <= 3000,
	      "%s: list backend says state=%s expires_in_ms=%llu", what,
	      answer_field(backends, "state"), (unsigned long long)expires);
	__u64 deadline_in = answer_u64(control(w, S("show container container=%u", draining)),
				       "deadline_in_ms");

	CHECK(deadline_in > 0 && deadline_in <= 3000, "%s: deadline_in_ms=%llu", what,
	      (unsigned long long)deadline_in);
}

static void expect_wall_clock_shifted(long long offset_ns, const char *what)
{
	long long truth = true_wall_ns();
	struct timeval tv = { 0 };

	CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday");
	long long seen_tv = (long long)tv.tv_sec * SEC + tv.tv_usec * 1000ll;
	long long seen_time = (long long)time(NULL) * SEC;
	long long seen_glib = g_get_real_time() * 1000ll;

	CHECK(llabs(seen_tv - truth - offset_ns) < 2 * SEC,
	      "%s: gettimeofday is %lld s off the true wall clock, expected %lld", what,
	      (seen_tv - truth) / SEC, offset_ns / SEC);
	CHECK(llabs(seen_time - truth - offset_ns) < 2 * SEC, "%s: time() is %lld s off", what,
	      (seen_time - truth) / SEC);
	CHECK(llabs(seen_glib - truth - offset_ns) < 2 * SEC,
	      "%s: g_get_real_time is %lld s off, expected %lld", what, (seen_glib - truth) / SEC,
	      offset_ns / SEC);
}

static void test_wall_clock_jump(void **state)
{
	struct world *w = *state;
	const long long hour = 3600 * SEC;

	__u32 id = add_backend(w, "vm1", "lo", 3000, 1);
	__u32 warm = add_container(w, F1, "vm1", "warm", CONTAINER_WARM);
	__u32 draining = add_container(w, F1, "vm1", "draining", CONTAINER_WARM);

	flush(w);
	CHECK_PROTO(&w->d.lc, lc_container_drain(&w->d.lc, draining, 3000), PROTO_OK, "drain");
	flush(w);
	__u64 expiry = w->d.lc.backends[id].record.heartbeat_expiry_ns;
	__u64 deadline = w->d.lc.containers[draining].drain_deadline_ns;
	__u64 started = monotonic_ns();

	expect_still_serving(w, id, warm, draining, "before any jump");

	wall_offset_ns = hour;
	expect_wall_clock_shifted(hour, "an hour forward");
	expect_still_serving(w, id, warm, draining, "the wall clock an hour forward");
	usleep(200 * 1000);
	expect_still_serving(w, id, warm, draining, "200 ms later, an hour forward");

	wall_offset_ns = -hour;
	expect_wall_clock_shifted(-hour, "an hour back");
	expect_still_serving(w, id, warm, draining, "the wall clock an hour back");
	usleep(200 * 1000);
	expect_still_serving(w, id, warm, draining, "200 ms later, an hour back");
	CHECK_EQ(w->d.lc.backends[id].record.heartbeat_expiry_ns, expiry,
		 "the heartbeat expiry moved with the wall clock");
	CHECK_EQ(w->d.lc.containers[draining].drain_deadline_ns, deadline,
		 "the drain deadline moved with the wall clock");

	/* A heartbeat while the wall clock is off: the new expiry is 3 s of
	 * CLOCK_MONOTONIC from now, not an hour away. */
	CHECK_PROTO(&w->d.lc, lc_backend_heartbeat(&w->d.lc, "vm1"), PROTO_OK, "heartbeat");
	__u64 beat = monotonic_ns();

	expiry = w->d.lc.backends[id].record.heartbeat_expiry_ns;
	CHECK(expiry >= beat + 2900 * MS && expiry <= beat + 3000 * MS,
	      "a heartbeat with the wall clock an hour back set the expiry %lld ms from now",
	      ((long long)expiry - (long long)beat) / (long long)MS);
	wall_offset_ns = 0;
	printf("# wall clock +1 h and -1 h over %.0f ms: backend up, drain on\n",
	       (monotonic_ns() - started) / 1e6);

	/* And the deadlines do fire, on CLOCK_MONOTONIC: the drain at its 3 s,
	 * the backend 3 s after the heartbeat. */
	while (monotonic_ns() < deadline + 100 * MS)
		usleep(50 * 1000);
	lifecycle_tick(&w->d.lc);
	CHECK(lc_container(&w->d.lc, draining) == NULL, "the drain did not end at its deadline");
	CHECK_EQ(w->d.lc.backends[id].record.state, BACKEND_UP,
		 "the backend went down before its heartbeat expiry");
	while (monotonic_ns() < expiry + 100 * MS)
		usleep(50 * 1000);
	lifecycle_tick(&w->d.lc);
	CHECK_EQ(w->d.lc.backends[id].record.state, BACKEND_DOWN,
		 "the backend is not down after its heartbeat expiry");
	printf("# then on CLOCK_MONOTONIC: the drain ended at its deadline, the backend went "
	       "down at its expiry (%.0f ms in all)\n",
	       (monotonic_ns() - started) / 1e6);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_containers_full, setup_limited, teardown),
		cmocka_unit_test_setup_teardown(test_affinity_entries_counted, setup_default,
						teardown),
		cmocka_unit_test_setup_teardown(test_affinity_lru_evicts_oldest, setup_default,
						teardown),
		cmocka_unit_test_setup_teardown(test_table_fds_kept, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_wall_clock_jump, setup_real_clock, teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	harness_enter_private_netns();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
