// SPDX-License-Identifier: MIT
/* ns/packet of the XDP router with BPF_PROG_TEST_RUN, at scale: a million
 * containers in ten thousand function pools and a million affinity entries.
 * Each case runs the router (through tools/bench/bench_xdp.bpf.c, which
 * restores the frame before each repeat) and checks that the counter it claims
 * to measure moved by exactly the number of runs. Floors are measured in the
 * same run: MAC swap, parse + one lookup, and the template restore alone.
 * The admission cases run a function without a pool under a budget that
 * admits (both buckets taken), or one spent an hour ahead (shed: the answer
 * built in place, after a whole-frame restore, measured alone too), or that
 * and the cap on answers (dropped).
 * The packet trace: token and key hits with the trace compiled out (the
 * baseline, bench_xdp_untraced), with it in and off (the ordinary cases), and
 * on with a reader draining the ring on another thread; each printed with its
 * ratio to the baseline measured in the same run.
 *
 * Flows and new keys under a limit are measured twice: with the router's
 * table order and with power of two choices (the same wrapper built with
 * TETHER_PICK_P2C, bpf/routing.h), and a simulation of both orders over one
 * function's containers under a limit follows the cases (balance(): the share
 * sent to the slow path, overflow walks, how many in flight where, flows'
 * datagrams that moved); --only balance runs it alone.
 *
 * Baselines of the same harness (issue 15): a bare flow table of the same
 * population (1,000,000 flows in an LRU_HASH of the affinity table's size,
 * Katran's flow key) behind the same restore and parse: one lookup that hits,
 * and a new flow every packet learned into the full map. Cases on both CPUs
 * run the program from two threads pinned one per CPU at once (XDP's
 * test_run takes no cpu option), each walking its own part of the
 * population; their figure is ns per packet per CPU, beside the same case on
 * CPU 0 alone. Issue 15's two ratios are also measured run for run in turn
 * with their baselines ("in turn with" rows: a new key against the bare new
 * flow, a varied key hit against the bare LRU hit), each printed as the
 * median of the runs' ratios; so are issue 12's, each routed mode's hot
 * token hit in turn with L2's through the same wrapper, the frame leaving
 * both ways the same way (by its ingress, or both by another port: the
 * median of the runs' differences is the ns encapsulation adds).
 *
 *   bench_dataplane [--quick] [--json FILE] [--only SUBSTRING[|SUBSTRING...]]
 *                   [--runs N] [--compare OTHER_BUILD/bench_xdp.bpf.o]
 *
 * --runs: runs per case (the median is printed; 1..31, default 5, --quick 3).
 * --compare: every case on one CPU whose program is in bench_xdp.bpf.o also
 * through the program of the same name in another build of it, on the same
 * maps, run for run in turn with this build's: an A/B of a change to the
 * data plane in one run (the other build's maps must have the same sizes;
 * the P2C, FIB and untraced builds' cases and those on both CPUs are not
 * compared).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <math.h>
#include <sched.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "bench/bench_xdp.h"
#include "bench_xdp.skel.h"
#include "bench_xdp_untraced.skel.h"
#include "bench_xdp_p2c.skel.h"
#include "bench_xdp_fib.skel.h"
#include "dataplane/dataplane.h"
#include "pktgen.h"
#include "tether/hash.h"
#include "tether_xdp.skel.h"

#define FUNCTIONS 10000
#define CONTAINERS_PER_FUNCTION 100
#define CONTAINERS (FUNCTIONS * CONTAINERS_PER_FUNCTION)
#define BACKENDS 1000
#define AFFINITY_ENTRIES 1000000
#define FIRST_FUNCTION 1000

#define MAX_RUNS 31

struct scale {
	__u32 functions, per_function, affinity, repeat, runs;
	__u32 balance_requests; /* per case and order of the balance simulation */
};

struct world {
	struct dataplane dp;
	struct bench_xdp *bench;
	struct bench_xdp_untraced *untraced; /* the same without the trace */
	struct bench_xdp_p2c *p2c; /* the same wrapper, power of two choices */
	struct bench_xdp_fib *fib; /* the same, the FIB on every packet (no nexthop cache) */
	struct scale scale;
	struct bench_token *tokens; /* one per container, shuffled */
	struct bench_key *keys;     /* one per affinity entry, shuffled */
	__u32 containers;
};

static void fail(const char *what, int err)
{
	fprintf(stderr, "bench_dataplane: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static __u64 rng_state = 0x7e7e7e7e12345678ull;

static __u64 next_random(void)
{
	rng_state += 0x9e3779b97f4a7c15ull;
	return tether_mix64(rng_state);
}

static void shuffle(void *items, size_t n, size_t size)
{
	char tmp[64];
	char *base = items;

	for (size_t i = n - 1; i > 0; i--) {
		size_t j = next_random() % (i + 1);

		memcpy(tmp, base + i * size, size);
		memcpy(base + i * size, base + j * size, size);
		memcpy(base + j * size, tmp, size);
	}
}

static void enter_private_netns(void)
{
	if (unshare(CLONE_NEWNET) || system("ip link set lo up"))
		fail("a private network namespace (run as root)", errno);
}

static void load_backends(struct world *w)
{
	/* All on lo: ingress is lo in BPF_PROG_TEST_RUN, so the verdict is XDP_TX.
	 * A heartbeat deadline an hour away keeps its check on the path. */
	struct backend_record backend = {
		.state = BACKEND_UP,
		.ifindex = 1,
		.mac = { 0x02, 0, 0, 0, 0x0b, 0x01 },
		.heartbeat_expiry_ns = monotonic_ns() + 3600ull * 1000000000ull,
	};
	for (__u32 id = 0; id < BACKENDS; id++) {
		int err = backend_set(&w->dp, id, &backend);

		if (err)
			fail("backend_set", err);
	}
}

static void load_containers_and_pools(struct world *w)
{
	__u32 per_function = w->scale.per_function;

	w->containers = w->scale.functions * per_function;
	w->tokens = calloc(w->containers, sizeof(*w->tokens));
	struct maglev_member *members = calloc(w->containers, sizeof(*members));
	struct pool_update *pools = calloc(w->scale.functions, sizeof(*pools));

	if (!members || !w->tokens || !pools)
		fail("memory", ENOMEM);
	for (__u32 slot = 0; slot < w->containers; slot++) {
		__u64 function_id = FIRST_FUNCTION + slot / per_function;
		struct bench_token *token = &w->tokens[slot];
		int err = container_install(&w->dp, slot, function_id, slot % BACKENDS,
					    CONTAINER_WARM, &token->token);
		if (err)
			fail("container_install", err);
		token->function_id = htobe64(function_id);
		members[slot] = (struct maglev_member){ .id = slot, .slot = slot };
	}
	for (__u32 f = 0; f < w->scale.functions; f++)
		pools[f] = (struct pool_update){ .function_id = FIRST_FUNCTION + f,
						 .members = &members[f * per_function],
						 .n = per_function };
	int err = pools_replace(&w->dp, pools, w->scale.functions);

	if (err)
		fail("pools_replace", err);
	free(pools);
	free(members);
	shuffle(w->tokens, w->containers, sizeof(*w->tokens));
}

static void load_affinity(struct world *w)
{
	int fd = bpf_map__fd(w->dp.skel->maps.affinity);

	w->keys = calloc(w->scale.affinity, sizeof(*w->keys));
	if (!w->keys)
		fail("memory", ENOMEM);
	for (__u32 i = 0; i < w->scale.affinity; i++) {
		__u32 slot = next_random() % w->containers;
		struct container_record record;
		struct affinity_key key = {
			.function_id = FIRST_FUNCTION + slot / w->scale.per_function,
			.routing_key = next_random(),
		};
		int err = container_get(&w->dp, slot, &record);

		if (err)
			fail("container_get", err);
		/* As the program learns them: with the container's secret and
		 * backend (a key hit's fast way, bpf/routing.h). */
		struct affinity_value value = { .slot = slot,
						.generation = record.generation,
						.secret = record.secret,
						.backend_id = record.backend_id };

		if (bpf_map_update_elem(fd, &key, &value, BPF_NOEXIST))
			fail("affinity update", errno);
		w->keys[i] = (struct bench_key){ htobe64(key.function_id), htobe64(key.routing_key) };
	}
}

/* Of a variant build, only the program its cases run is loaded: the
 * verifier's time and its million instructions are not spent on the rest. */
static void only_program(struct bpf_object *obj, const char *name)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj)
		if (strcmp(bpf_program__name(prog), name))
			bpf_program__set_autoload(prog, false);
}

/* The bench objects share every map of the router's by name, and the P2C
 * build every map of the table order's (one template, one population). */
static void share_maps(struct bpf_object *obj, struct bpf_object *router,
		       struct bpf_object *bench)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		struct bpf_map *shared = bpf_object__find_map_by_name(router, bpf_map__name(map));

		if (!shared && bench)
			shared = bpf_object__find_map_by_name(bench, bpf_map__name(map));
		if (shared && bpf_map__reuse_fd(map, bpf_map__fd(shared)))
			fail("sharing a map with the bench object", errno);
	}
}

static void open_bench(struct world *w)
{
	w->bench = bench_xdp__open();
	if (!w->bench)
		fail("opening the bench object", errno);
	share_maps(w->bench->obj, w->dp.skel->obj, NULL);
	int err = bench_xdp__load(w->bench);

	if (err)
		fail("loading the bench object", err);
	w->p2c = bench_xdp_p2c__open();
	if (!w->p2c)
		fail("opening the P2C bench object", errno);
	share_maps(w->p2c->obj, w->dp.skel->obj, w->bench->obj);
	if ((err = bench_xdp_p2c__load(w->p2c)))
		fail("loading the P2C bench object", err);
	w->fib = bench_xdp_fib__open();
	if (!w->fib)
		fail("opening the FIB bench object", errno);
	share_maps(w->fib->obj, w->dp.skel->obj, w->bench->obj);
	only_program(w->fib->obj, "bench_route_routed");
	if ((err = bench_xdp_fib__load(w->fib)))
		fail("loading the FIB bench object", err);
	int tokens_fd = bpf_map__fd(w->bench->maps.bench_tokens);
	int keys_fd = bpf_map__fd(w->bench->maps.bench_keys);

	for (__u32 i = 0; i < w->containers; i++)
		if (bpf_map_update_elem(tokens_fd, &i, &w->tokens[i], BPF_ANY))
			fail("bench_tokens", errno);
	for (__u32 i = 0; i < w->scale.affinity; i++)
		if (bpf_map_update_elem(keys_fd, &i, &w->keys[i], BPF_ANY))
			fail("bench_keys", errno);
}

/* --compare FILE: another build's bench_xdp.bpf.o (say, the previous
 * commit's), loaded on the same maps. */
static struct bpf_object *open_compare(struct world *w, const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);

	if (!obj)
		fail(path, errno);
	struct bpf_map *map;

	/* A map whose value changed size (nexthop_cache) stays the other
	 * build's own; every other map is shared. */
	bpf_object__for_each_map(map, obj) {
		struct bpf_map *shared =
			bpf_object__find_map_by_name(w->bench->obj, bpf_map__name(map));

		if (shared && bpf_map__value_size(shared) == bpf_map__value_size(map) &&
		    bpf_map__reuse_fd(map, bpf_map__fd(shared)))
			fail("sharing a map with the --compare object", errno);
	}
	int err = bpf_object__load(obj);

	if (err)
		fail(path, err);
	return obj; /* it lives as long as the process */
}

/* --only: substrings separated by '|', a case runs when its name holds one. */
static int selected(const char *name, const char *only)
{
	char list[1024], *save = NULL;

	if (!only)
		return 1;
	snprintf(list, sizeof(list), "%s", only);
	for (char *part = strtok_r(list, "|", &save); part; part = strtok_r(NULL, "|", &save))
		if (strstr(name, part))
			return 1;
	return 0;
}

/* The router without the trace compiled in, on the same maps. */
static void open_untraced(struct world *w)
{
	struct bpf_map *map;

	w->untraced = bench_xdp_untraced__open();
	if (!w->untraced)
		fail("opening the untraced bench object", errno);
	bpf_object__for_each_map(map, w->untraced->obj) {
		struct bpf_map *shared =
			bpf_object__find_map_by_name(w->bench->obj, bpf_map__name(map));

		if (shared && bpf_map__reuse_fd(map, bpf_map__fd(shared)))
			fail("sharing a map with the untraced bench object", errno);
	}
	int err = bench_xdp_untraced__load(w->untraced);

	if (err)
		fail("loading the untraced bench object", err);
}

/* A trace that runs while a case does: the switch on, a thread reading. */
struct trace_reader {
	struct ring_buffer *ring;
	pthread_t thread;
	atomic_int stop;
	__u64 records;
};

static int count_record(void *ctx, void *data, size_t size)
{
	(void)data;
	(void)size;
	((struct trace_reader *)ctx)->records++;
	return 0;
}

static void *read_trace(void *arg)
{
	struct trace_reader *reader = arg;

	while (!atomic_load(&reader->stop))
		ring_buffer__poll(reader->ring, 50);
	ring_buffer__consume(reader->ring);
	return NULL;
}

static void trace_start(struct world *w, struct trace_reader *reader)
{
	struct trace_config on = { .enabled = 1 };

	memset(reader, 0, sizeof(*reader));
	reader->ring = ring_buffer__new(trace_ring_fd(&w->dp), count_record, reader, NULL);
	if (!reader->ring)
		fail("trace ring", errno);
	if (pthread_create(&reader->thread, NULL, read_trace, reader))
		fail("trace reader", EAGAIN);
	if (trace_config_set(&w->dp, &on))
		fail("trace_config", errno);
}

static void trace_stop(struct world *w, struct trace_reader *reader, const char *name)
{
	__u64 lost_before = 0, lost = 0;

	trace_lost_read(&w->dp, &lost_before);
	if (trace_config_set(&w->dp, &(struct trace_config){ 0 }))
		fail("trace_config", errno);
	atomic_store(&reader->stop, 1);
	pthread_join(reader->thread, NULL);
	trace_lost_read(&w->dp, &lost);
	fprintf(stderr, "%s: %llu records read; %llu lost (no room in the ring) since the "
			"program was loaded\n",
		name, (unsigned long long)reader->records, (unsigned long long)lost);
	ring_buffer__free(reader->ring);
}

/* The slow path's budget a case runs under (bpf/admission.h). */
enum bench_admission {
	ADMISSION_NONE = 0,   /* no budget (a program without tetherd's settings) */
	ADMISSION_WITHIN = 1, /* budgets that always admit: both buckets taken */
	ADMISSION_SHED = 2,   /* the function's budget spent: answered in place */
	ADMISSION_CAPPED = 3, /* ... and the cap on answers too: dropped */
};

struct bench_case {
	const char *name;
	int family;
	int program;      /* 0 route, 1 restore only, 2 mac swap, 3 parse+lookup,
			   * 4 route after a whole-frame restore, 5 that restore only,
			   * 6 route with power of two choices (bpf/routing.h,
			   * TETHER_PICK_P2C) for flows and new keys,
			   * 7 the routed wrapper, 8 the same with the next
			   * hop from the FIB on every packet (bpf/encap.h,
			   * TETHER_NEXTHOP_NO_CACHE), 9-11 the
			   * encapsulation's floor after the routed
			   * wrapper's restore: MAC addresses written
			   * (bench_push_none), IPIP/IPv4 and VXLAN/IPv4
			   * outer headers pushed (bench_push_ipip4,
			   * bench_push_vxlan4), 12 the baseline's LRU hit,
			   * 13 its new flow, 14 a direct-mapped line's
			   * probe (bench_line_probe), 15 its fill */
	__u32 flags;      /* Tether flags of the template */
	int vary;         /* enum bench_vary */
	int function;     /* 1: a function with no pool */
	int not_service;  /* UDP to another port */
	int bad_magic;
	size_t counter;   /* offsetof(struct tether_stats, ...), or -1 */
	__u32 population; /* of the varied field; 0: all of it */
	int admission;    /* enum bench_admission */
	int accounting;   /* every container has a limit (never reached): the
			   * in-flight accounting on the path; 2: and the home of
			   * the template's flow full (its count an hour ahead) */
	int completion;   /* a DONE to the completion address */
	int cpus;         /* 0: wherever the harness runs; 1: a thread on CPU 0;
			   * 2: threads on CPUs 0 and 1 at once */
	int trace;        /* enum bench_trace */
	const char *baseline; /* the case it is compared with (ratio printed) */
	int encap;        /* every backend routed (enum backend_encap), through
			   * bench_route_routed (program 7); 0: L2 */
	int outer;        /* routed: the outer family, 6, else IPv4 */
	int egress;       /* enum bench_egress: which way the frame leaves */
	/* Measured run for run in turn with this case (which goes first
	 * alternating, as --compare does): both medians and the medians of the
	 * runs' ratios and differences, which one process's drift cannot move. */
	const char *in_turn_with;
};

/* Which way a frame leaves, for L2 and routed alike: the routed path and
 * L2 compared with the same kind of exit, so that what a row adds over L2 is
 * the encapsulation's and not that of a helper call L2 did not make. */
enum bench_egress {
	EGRESS_LO = 0,     /* the rows outside the routed wrapper: ingress lo, L2
			    * backends on lo (XDP_TX) */
	EGRESS_SAME = 1,   /* one-armed, every routed wrapper row but the ones out
			    * another port: ingress bt0 (the test_run's ctx), L2
			    * backends on bt0 and the routed next hop by it: both
			    * XDP_TX */
	EGRESS_OTHER = 2,  /* two-armed: ingress lo, both leave by bt0: L2 through
			    * the DEVMAP (bpf_redirect_map), routed bpf_redirect */
};

enum bench_trace {
	TRACE_OFF = 0,      /* compiled in, switched off: the production case */
	TRACE_ABSENT = 1,   /* compiled out (bench_xdp_untraced) */
	TRACE_READING = 2,  /* on, everything, a reader draining the ring */
};

#define COMPLETION_PORT 7700
#define NEVER_FULL 0x7fffffffu

#define COUNTER(field) offsetof(struct tether_stats, field)
#define NO_COUNTER ((size_t)-1)
/* A count of the baselines' (struct bench_counts), not the router's. */
#define BENCH_COUNTER_FLAG ((size_t)1 << 20)
#define BENCH_COUNTER(field) (BENCH_COUNTER_FLAG | offsetof(struct bench_counts, field))

static int program_fd(struct world *w, int program, int trace)
{
	if (trace == TRACE_ABSENT)
		return bpf_program__fd(w->untraced->progs.bench_route);
	switch (program) {
	case 1: return bpf_program__fd(w->bench->progs.bench_restore_only);
	case 2: return bpf_program__fd(w->bench->progs.bench_mac_swap);
	case 3: return bpf_program__fd(w->bench->progs.bench_parse_lookup);
	case 4: return bpf_program__fd(w->bench->progs.bench_route_full);
	case 5: return bpf_program__fd(w->bench->progs.bench_restore_full_only);
	case 6: return bpf_program__fd(w->p2c->progs.bench_route);
	case 7: return bpf_program__fd(w->bench->progs.bench_route_routed);
	case 8: return bpf_program__fd(w->fib->progs.bench_route_routed);
	case 9: return bpf_program__fd(w->bench->progs.bench_push_none);
	case 10: return bpf_program__fd(w->bench->progs.bench_push_ipip4);
	case 11: return bpf_program__fd(w->bench->progs.bench_push_vxlan4);
	case 12: return bpf_program__fd(w->bench->progs.bench_lru_hit);
	case 13: return bpf_program__fd(w->bench->progs.bench_lru_learn);
	case 14: return bpf_program__fd(w->bench->progs.bench_line_probe);
	case 15: return bpf_program__fd(w->bench->progs.bench_line_fill);
	default: return bpf_program__fd(w->bench->progs.bench_route);
	}
}

/* The --compare object's program of the same name as the case's, or -1:
 * no --compare, a case of another object (P2C, FIB, untraced) or on both
 * CPUs. */
static int compare_program_fd(struct world *w, struct bpf_object *compare,
			      const struct bench_case *c)
{
	if (!compare || c->cpus)
		return -1;
	int fd = program_fd(w, c->program, c->trace);
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, w->bench->obj) {
		if (bpf_program__fd(prog) != fd)
			continue;
		struct bpf_program *other =
			bpf_object__find_program_by_name(compare, bpf_program__name(prog));

		if (!other)
			fail(bpf_program__name(prog), ENOENT); /* --compare: not in that build */
		return bpf_program__fd(other);
	}
	return -1;
}

static size_t build_template(struct world *w, const struct bench_case *c, __u8 *frame,
			     struct bench_template *template)
{
	struct pkt_spec spec;
	struct pkt_view view;

	pkt_spec_default(&spec, c->family);
	spec.hdr.function_id = c->function ? 999 : be64toh(w->tokens[0].function_id);
	spec.hdr.flags = c->flags;
	memcpy(spec.hdr.token, &w->tokens[0].token, 16);
	spec.hdr.routing_key = be64toh(w->keys[0].routing_key);
	if (c->flags & TETHER_F_KEY)
		spec.hdr.function_id = be64toh(w->keys[0].function_id);
	if (c->not_service)
		spec.dst_port = PKT_TEST_VIP_PORT + 1;
	if (c->completion) {
		spec.dst_port = COMPLETION_PORT;
		spec.hdr.flags = TETHER_F_DONE | TETHER_F_STAMPED;
		spec.payload_len = TETHER_DONE_PAYLOAD_LEN;
	}
	if (c->bad_magic) {
		spec.hdr.magic = 0x1234;
		spec.hdr_raw = 1;
		spec.hdr.version = TETHER_VERSION;
	}
	if (c->program == 4 || c->program == 5) /* a whole-frame restore: exactly BENCH_FULL_FRAME bytes */
		spec.payload_len = BENCH_FULL_FRAME - (c->family == 4 ? 90 : 110);
	size_t len = pkt_build(&spec, frame, 512);

	if (!len || pkt_parse(frame, len, &view) ||
	    ((c->program == 4 || c->program == 5) && len != BENCH_FULL_FRAME))
		fail("building a template frame", EINVAL);
	memset(template, 0, sizeof(*template));
	memcpy(template->macs, frame, 12);
	memcpy(template->hdr, frame + view.tether_off, TETHER_HDR_LEN);
	memcpy(&template->udp_check, frame + view.l4_off + 6, 2);
	template->hdr_offset = view.tether_off;
	template->udp_offset = view.l4_off;
	template->src_addr_offset = view.l3_off + (c->family == 4 ? 12 : 8 + 12);
	if (c->program == 4 || c->program == 5)
		memcpy(template->frame, frame, BENCH_FULL_FRAME);
	template->frame_len = (__u32)len;
	memcpy(&template->l3_proto, frame + 12, 2);
	template->vary = c->vary;
	template->population = c->vary == VARY_TOKEN ? w->containers : w->scale.affinity;
	if (c->vary == VARY_FLOW_NEW)
		template->population = 0;
	if (c->population)
		template->population = c->population;
	return len;
}

static __u64 bench_counter_value(struct world *w, size_t offset)
{
	int cpus = libbpf_num_possible_cpus();
	struct bench_counts *per_cpu = calloc(cpus > 0 ? cpus : 1, sizeof(*per_cpu));
	__u32 zero = 0;
	__u64 sum = 0;

	if (!per_cpu || cpus <= 0)
		fail("memory", ENOMEM);
	if (bpf_map_lookup_elem(bpf_map__fd(w->bench->maps.bench_counts), &zero, per_cpu))
		fail("bench_counts", errno);
	for (int cpu = 0; cpu < cpus; cpu++)
		sum += *(__u64 *)((char *)&per_cpu[cpu] + offset);
	free(per_cpu);
	return sum;
}

static __u64 counter_value(struct world *w, size_t counter)
{
	struct tether_stats total;

	if (counter == NO_COUNTER)
		return 0;
	if (counter & BENCH_COUNTER_FLAG)
		return bench_counter_value(w, counter & ~BENCH_COUNTER_FLAG);
	int err = stats_read(&w->dp, &total);

	if (err)
		fail("stats_read", err);
	return *(__u64 *)((char *)&total + counter);
}

static int compare_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int compare_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The budget of the case: limits, and the function's bucket (and the
 * answers') spent an hour ahead where the case sheds. */
static void set_admission(struct world *w, const struct bench_case *c)
{
	struct admission_limits none = {}, within = {
		TETHER_ADMIT_MAX_RATE, 1000000, TETHER_ADMIT_MAX_RATE, 1000000, 0, 0,
	}, shed = { 1, 1, TETHER_ADMIT_MAX_RATE, 1000000, 0, 0 },
	   capped = { 1, 1, TETHER_ADMIT_MAX_RATE, 1000000, 1, 1 };
	const struct admission_limits *limits = c->admission == ADMISSION_WITHIN ? &within
					       : c->admission == ADMISSION_SHED ? &shed
					       : c->admission == ADMISSION_CAPPED ? &capped
										: &none;
	__u64 later = monotonic_ns() + 3600ull * 1000000000ull;
	struct admit_bucket spent = { .tat_ns = later };
	struct admit_shared_bucket spent_shared = { .tat_ns = later };
	__u64 function_id = 999;
	__u32 answers = ADMIT_BUCKET_ANSWERS;
	int err = admission_set(&w->dp, limits);

	if (err)
		fail("admission_set", err);
	if (c->admission >= ADMISSION_SHED &&
	    bpf_map_update_elem(bpf_map__fd(w->dp.skel->maps.admit_functions), &function_id,
				&spent, BPF_ANY))
		fail("admit_functions", errno);
	if (c->admission == ADMISSION_CAPPED &&
	    bpf_map_update_elem(bpf_map__fd(w->dp.skel->maps.admit_buckets), &answers,
				&spent_shared, BPF_ANY))
		fail("admit_buckets", errno);
}

/* Every container's limit: 0 (accounting off) or NEVER_FULL (on: the
 * in-flight count is read and reserved on every forward, never full). */
static void set_limits(struct world *w, __u32 limit)
{
	static int current = -1;

	if (current == (int)limit)
		return;
	for (__u32 slot = 0; slot < w->containers; slot++) {
		int err = container_set_limit(&w->dp, slot, limit);

		if (err)
			fail("container_set_limit", err);
	}
	current = (int)limit;
}

/* One test_run of a case's program from a thread pinned to a CPU. */
struct runner {
	pthread_t thread;
	int cpu, prog_fd;
	__u32 repeat;
	__u8 *frame;
	size_t len;
	pthread_barrier_t *start;
	__u32 duration;
	int err;
};

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fail("sched_setaffinity", errno);
}

static void *run_pinned(void *arg)
{
	struct runner *r = arg;
	__u8 out[512];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = r->frame, .data_size_in = r->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = r->repeat);

	pin_to_cpu(r->cpu);
	pthread_barrier_wait(r->start);
	r->err = bpf_prog_test_run_opts(r->prog_fd, &opts) ? errno : 0;
	r->duration = opts.duration;
	return NULL;
}

/* Each CPU walks its own part of a varied case's population: CPU k starts
 * k / threads of the way in (bench_sequence is per CPU). */
static void spread_sequences(struct world *w, __u32 population, int threads)
{
	int cpus = libbpf_num_possible_cpus();
	__u64 *starts = calloc(cpus > 0 ? cpus : 1, sizeof(*starts)); /* per-CPU values: 8 bytes */
	__u32 zero = 0;

	if (!starts || cpus <= 0)
		fail("memory", ENOMEM);
	for (int cpu = 0; cpu < cpus && cpu < threads; cpu++)
		starts[cpu] = (__u32)((__u64)population * cpu / threads);
	if (bpf_map_update_elem(bpf_map__fd(w->bench->maps.bench_sequence), &zero, starts,
				BPF_ANY))
		fail("bench_sequence", errno);
	free(starts);
}

/* One run of the case on CPUs 0 .. threads - 1 at once: the mean of their ns
 * per packet. */
static __u32 run_on_cpus(struct world *w, const struct bench_case *c, __u8 *frame, size_t len,
			 int threads)
{
	struct runner runners[2];
	pthread_barrier_t start;
	__u64 sum = 0;

	pthread_barrier_init(&start, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++) {
		runners[i] = (struct runner){ .cpu = i, .prog_fd = program_fd(w, c->program, c->trace),
					      .repeat = w->scale.repeat, .frame = frame,
					      .len = len, .start = &start };
		if (pthread_create(&runners[i].thread, NULL, run_pinned, &runners[i]))
			fail("pthread_create", errno);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(runners[i].thread, NULL);
		if (runners[i].err)
			fail(c->name, runners[i].err);
		sum += runners[i].duration;
	}
	pthread_barrier_destroy(&start);
	return (__u32)(sum / (__u64)threads);
}

/* The baseline's flow table gets the population's flows (source addresses
 * 0 .. affinity - 1, the varied flows' walk), learned by its own program in
 * the order they are walked, as the affinity table's keys were loaded. */
static void load_baseline_flows(struct world *w)
{
	struct pkt_spec spec;
	struct pkt_view view;
	struct bench_template template = {};
	__u8 frame[512];
	__u32 zero = 0;

	pkt_spec_default(&spec, 4);
	size_t len = pkt_build(&spec, frame, sizeof(frame));

	if (!len || pkt_parse(frame, len, &view))
		fail("building the baseline's frame", EINVAL);
	memcpy(template.macs, frame, 12);
	memcpy(template.hdr, frame + view.tether_off, TETHER_HDR_LEN);
	memcpy(&template.udp_check, frame + view.l4_off + 6, 2);
	template.hdr_offset = view.tether_off;
	template.udp_offset = view.l4_off;
	template.src_addr_offset = view.l3_off + 12;
	template.vary = VARY_FLOW;
	template.population = w->scale.affinity;
	if (bpf_map_update_elem(bpf_map__fd(w->bench->maps.bench_template), &zero, &template,
				BPF_ANY))
		fail("bench_template", errno);
	spread_sequences(w, w->scale.affinity, 1);

	__u64 before = bench_counter_value(w, offsetof(struct bench_counts, lru_learned));
	struct bench_case fill = { .name = "filling the baseline's flow table", .program = 13,
				   .vary = VARY_FLOW };
	__u32 repeat = w->scale.repeat;

	w->scale.repeat = w->scale.affinity;
	run_on_cpus(w, &fill, frame, len, 1);
	w->scale.repeat = repeat;
	if (bench_counter_value(w, offsetof(struct bench_counts, lru_learned)) - before !=
	    w->scale.affinity)
		fail("the baseline's flow table did not take every flow", EINVAL);
	struct bench_case lines = { .name = "filling the direct-mapped table", .program = 15,
				    .vary = VARY_FLOW };

	w->scale.repeat = w->scale.affinity;
	run_on_cpus(w, &lines, frame, len, 1);
	w->scale.repeat = repeat;
}

/* The slot the table order picks for the template's flow (IPv4). */
static __u32 flow_home(struct world *w, const struct bench_case *c)
{
	struct pkt_spec spec;
	__u8 src[16] = { [10] = 0xff, [11] = 0xff }, dst[16] = { [10] = 0xff, [11] = 0xff };
	__u64 function_id = be64toh(w->tokens[0].function_id);
	__u32 cap = maglev_table_size(w->scale.per_function), size = 0;
	__u32 *table = calloc(cap, sizeof(*table));

	if (!table || c->family != 4 || c->vary != VARY_NONE)
		fail("flow_home: a repeated IPv4 flow", EINVAL);
	pkt_spec_default(&spec, 4);
	memcpy(&src[12], spec.src_addr, 4);
	memcpy(&dst[12], spec.dst_addr, 4);
	int err = pool_read(&w->dp, function_id, table, cap, &size);

	if (err)
		fail("pool_read", err);
	__u32 slot = table[tether_pool_index(tether_hash_flow(src, dst, htons(spec.src_port),
							      htons(spec.dst_port)),
					     size) - 1];
	free(table);
	return slot;
}

/* Routed backends two hops away: bt0 (a veth of the bench's namespace)
 * holds the encap sources, the next hop is a permanent neighbour, the
 * backends' subnets are routed through it. */
static void routed_world(void)
{
	if (system("sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1 && "
		   "ip link add bt0 type veth peer name bt1 && ip link set bt0 up && "
		   "ip link set bt1 up && ip addr add 10.99.0.1/24 dev bt0 && "
		   "ip -6 addr add fd99::1/64 dev bt0 nodad && "
		   "ip neigh add 10.99.0.2 lladdr 02:00:00:00:99:02 dev bt0 nud permanent && "
		   "ip -6 neigh add fd99::2 lladdr 02:00:00:00:99:02 dev bt0 nud permanent && "
		   "ip route add 10.200.0.0/16 via 10.99.0.2 && "
		   "ip -6 route add fd00:200::/32 via fd99::2"))
		fail("the routed world (ip)", EINVAL);
}

/* bt0's ifindex once routed_world() made it, else 0. */
static __u32 routed_port;

/* Every backend L2 on lo (encap 0; on bt0 for EGRESS_SAME and EGRESS_OTHER),
 * or routed to 10.200.0.5 / fd00:200::5. */
static void set_encap(struct world *w, int encap, int outer, int egress)
{
	static int current = 0, current_outer = 4, current_egress = EGRESS_LO, made;
	struct encap_config sources = {};

	outer = outer == 6 ? 6 : 4;
	if (encap == current && outer == current_outer && egress == current_egress)
		return;
	if ((encap || egress != EGRESS_LO) && !made++) {
		routed_world();
		routed_port = if_nametoindex("bt0");
		if (!routed_port)
			fail("bt0", errno);
		inet_pton(AF_INET, "10.99.0.1", &sources.source4);
		inet_pton(AF_INET6, "fd99::1", sources.source6);
		if (encap_config_set(&w->dp, &sources))
			fail("encap_config_set", EINVAL);
	}
	for (__u32 id = 0; id < BACKENDS; id++) {
		struct backend_record backend;

		if (backend_get(&w->dp, id, &backend))
			fail("backend_get", EINVAL);
		backend.encap = (__u8)encap;
		backend.ifindex = encap ? 0 : egress != EGRESS_LO ? routed_port : 1;
		memset(backend.src_mac, 0, 6);
		if (encap == BACKEND_VXLAN)
			backend_set_vni(&backend, 4242);
		if (outer == 6)
			pkt_addr6(backend.addr, "fd00:200::5");
		else
			pkt_v4mapped(backend.addr, "10.200.0.5");
		int err = backend_set(&w->dp, id, &backend);

		if (err)
			fail("backend_set", err);
	}
	current = encap;
	current_outer = outer;
	current_egress = egress;
}

/* One run of a case through a program: its ns/packet (on both CPUs at once
 * for a case with cpus, the mean of theirs). */
static __u32 run_once(struct world *w, const struct bench_case *c, int prog_fd, __u8 *frame,
		      size_t len)
{
	__u8 out[512];
	/* EGRESS_SAME: the frame arrives on bt0 (test_run's ctx; its data_end
	 * must be the frame's length). */
	struct xdp_md arrival = { .data_end = (__u32)len, .ingress_ifindex = routed_port };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = w->scale.repeat);
	__u64 before = counter_value(w, c->counter);
	__u64 expected = (__u64)w->scale.repeat * (c->cpus ? c->cpus : 1);
	__u32 duration;

	if (c->cpus) {
		duration = run_on_cpus(w, c, frame, len, c->cpus);
	} else {
		if (c->egress == EGRESS_SAME) {
			opts.ctx_in = &arrival;
			opts.ctx_size_in = sizeof(arrival);
		}
		if (bpf_prog_test_run_opts(prog_fd, &opts))
			fail(c->name, errno);
		duration = opts.duration;
		if (c->egress != EGRESS_LO &&
		    opts.retval != (c->egress == EGRESS_SAME ? XDP_TX : XDP_REDIRECT)) {
			fprintf(stderr, "bench_dataplane: %s: verdict %u: the frame does not "
					"leave the way the case claims\n", c->name, opts.retval);
			exit(1);
		}
		if ((c->program == 4 || c->program == 5) && opts.data_size_out > BENCH_FULL_FRAME)
			fail("the frame grew", EINVAL);
	}
	__u64 moved = counter_value(w, c->counter) - before;

	if (c->counter != NO_COUNTER && moved != expected) {
		fprintf(stderr, "bench_dataplane: %s: counter moved %llu for %llu runs: "
				"the case does not measure what it claims\n",
			c->name, (unsigned long long)moved, (unsigned long long)expected);
		exit(1);
	}
	return duration;
}

/* The case's median; with compare_fd >= 0 (--compare), the same case through
 * that program too, run for run in turn with this build's, its median in
 * *compare_ns. */
static __u32 measure(struct world *w, const struct bench_case *c, int compare_fd,
		     __u32 *compare_ns)
{
	__u8 frame[512];
	struct bench_template template;
	size_t len = build_template(w, c, frame, &template);
	__u32 zero = 0, durations[MAX_RUNS], compared[MAX_RUNS];

	set_limits(w, c->accounting || c->completion ? NEVER_FULL : 0);
	__u32 full_slot = c->accounting == 2 ? flow_home(w, c) : 0;

	if (c->accounting == 2) {
		struct container_load load = { .started = 1ull << 40 };

		if (bpf_map_update_elem(bpf_map__fd(w->dp.skel->maps.inflight), &full_slot, &load,
					BPF_ANY))
			fail("inflight", errno);
	}
	set_encap(w, c->encap, c->outer, c->egress);
	if (c->completion) {
		/* A DONE credits at most what the router forwarded: the DONEs'
		 * finished counts (growing every run) stay below this. */
		__u32 slot = ntohl(w->tokens[0].token.slot);
		struct container_load load = { .started = 1ull << 62 };

		if (bpf_map_update_elem(bpf_map__fd(w->dp.skel->maps.inflight), &slot, &load,
					BPF_ANY))
			fail("inflight", errno);
	}
	if (bpf_map_update_elem(bpf_map__fd(w->bench->maps.bench_template), &zero, &template,
				BPF_ANY))
		fail("bench_template", errno);
	set_admission(w, c);
	struct trace_reader reader;

	if (c->trace == TRACE_READING)
		trace_start(w, &reader);
	for (__u32 run = 0; run < w->scale.runs; run++) {
		if (c->cpus && c->vary != VARY_NONE && c->vary != VARY_FLOW_NEW)
			spread_sequences(w, template.population, c->cpus);
		/* The pair's order alternates: whichever runs first was measured
		 * up to 20 ns apart from the same program run second. */
		if (compare_fd >= 0 && run % 2)
			compared[run] = run_once(w, c, compare_fd, frame, len);
		durations[run] = run_once(w, c, program_fd(w, c->program, c->trace), frame, len);
		if (compare_fd >= 0 && !(run % 2))
			compared[run] = run_once(w, c, compare_fd, frame, len);
	}
	if (c->trace == TRACE_READING)
		trace_stop(w, &reader, c->name);
	set_admission(w, &(struct bench_case){ .admission = ADMISSION_NONE });
	if (c->accounting == 2 && container_load_reset(&w->dp, full_slot))
		fail("inflight", EINVAL);
	qsort(durations, w->scale.runs, sizeof(durations[0]), compare_u32);
	if (compare_fd >= 0) {
		qsort(compared, w->scale.runs, sizeof(compared[0]), compare_u32);
		*compare_ns = compared[w->scale.runs / 2];
	}
	return durations[w->scale.runs / 2];
}

static const struct bench_case *case_named(const char *name);

/* A case and its in_turn_with, run for run in turn on one CPU (no
 * accounting, admission, completion or trace: checked), each run with its
 * own template and its own backends' encapsulation. Returns the median of
 * the runs' ratios (a / b); *a_ns and *b_ns get the two medians, *added_ns
 * the median of the runs' differences (a - b). */
static double measure_in_turn(struct world *w, const struct bench_case *a, __u32 *a_ns,
			      __u32 *b_ns, int *added_ns)
{
	const struct bench_case *b = case_named(a->in_turn_with);
	const struct bench_case *pair[2] = { a, b };
	__u8 frames[2][512];
	struct bench_template templates[2];
	size_t lens[2];
	__u32 zero = 0, durations[2][MAX_RUNS];
	double ratios[MAX_RUNS];
	int added[MAX_RUNS];

	for (int i = 0; i < 2; i++) {
		const struct bench_case *c = pair[i];

		if (!c || c->cpus || c->accounting || c->completion ||
		    c->admission != ADMISSION_NONE || c->trace != TRACE_OFF)
			fail("in_turn_with: a plain case on one CPU", EINVAL);
		lens[i] = build_template(w, c, frames[i], &templates[i]);
	}
	set_limits(w, 0);
	for (__u32 run = 0; run < w->scale.runs; run++) {
		for (int turn = 0; turn < 2; turn++) {
			int i = (int)(run + turn) % 2; /* a first in even runs */

			/* each side's backends (nothing to do when unchanged) */
			set_encap(w, pair[i]->encap, pair[i]->outer, pair[i]->egress);
			if (bpf_map_update_elem(bpf_map__fd(w->bench->maps.bench_template), &zero,
						&templates[i], BPF_ANY))
				fail("bench_template", errno);
			durations[i][run] = run_once(w, pair[i],
						     program_fd(w, pair[i]->program, TRACE_OFF),
						     frames[i], lens[i]);
		}
		ratios[run] = (double)durations[0][run] / (durations[1][run] ? durations[1][run] : 1);
		added[run] = (int)durations[0][run] - (int)durations[1][run];
	}
	for (int i = 0; i < 2; i++)
		qsort(durations[i], w->scale.runs, sizeof(durations[i][0]), compare_u32);
	qsort(ratios, w->scale.runs, sizeof(ratios[0]), compare_double);
	qsort(added, w->scale.runs, sizeof(added[0]), compare_int);
	*a_ns = durations[0][w->scale.runs / 2];
	*b_ns = durations[1][w->scale.runs / 2];
	*added_ns = added[w->scale.runs / 2];
	return ratios[w->scale.runs / 2];
}

/* The older cases name their fields in order and leave the trace's last two
 * (off, no baseline) to their zero defaults. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const struct bench_case cases[] = {
	{ "floor: mac swap", 4, 2, 0, VARY_NONE, 0, 0, 0, NO_COUNTER, 0, ADMISSION_NONE, 0, 0, 0 },
	{ "floor: parse + 1 lookup", 4, 3, 0, VARY_NONE, 0, 0, 0, NO_COUNTER, 0, ADMISSION_NONE, 0, 0, 0 },
	{ "floor: template restore", 4, 1, 0, VARY_NONE, 0, 0, 0, NO_COUNTER, 0, ADMISSION_NONE, 0, 0, 0 },
	{ "floor: template restore, varied tokens", 4, 1, TETHER_F_TOKEN, VARY_TOKEN, 0, 0, 0,
	  NO_COUNTER, 0, ADMISSION_NONE, 0, 0, 0 },
	{ "token hit, repeated", 4, 0, TETHER_F_TOKEN, VARY_NONE, 0, 0, 0, COUNTER(token_hit), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "token hit, varied (all containers)", 4, 0, TETHER_F_TOKEN, VARY_TOKEN, 0, 0, 0,
	  COUNTER(token_hit), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "key hit, repeated", 4, 0, TETHER_F_KEY, VARY_NONE, 0, 0, 0, COUNTER(key_hit), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "key hit, varied (all entries)", 4, 0, TETHER_F_KEY, VARY_KEY, 0, 0, 0,
	  COUNTER(key_hit), 0, ADMISSION_NONE, 0, 0, 0 },
	/* The same harness's bare flow table: one LRU_HASH lookup that hits. */
	{ "baseline: LRU hit, repeated", 4, 12, 0, VARY_FLOW, 0, 0, 0, BENCH_COUNTER(lru_hit), 1,
	  ADMISSION_NONE, 0, 0, 0 },
	{ "baseline: LRU hit, varied (all flows)", 4, 12, 0, VARY_FLOW, 0, 0, 0,
	  BENCH_COUNTER(lru_hit), 0, ADMISSION_NONE, 0, 0, 0 },
	/* Issue 15's ratio run for run in turn (see the learn's below); before
	 * any case learns new keys or flows, which evict the million loaded. */
	{ .name = "key hit, varied, in turn with the bare LRU hit", .family = 4,
	  .flags = TETHER_F_KEY, .vary = VARY_KEY, .counter = COUNTER(key_hit),
	  .in_turn_with = "baseline: LRU hit, varied (all flows)" },
	/* The least a keyed lookup costs here: one line of a direct-mapped
	 * table (what the key hit's 0.8x target leaves room for). */
	{ "floor: direct-mapped line, varied (all flows)", 4, 14, 0, VARY_FLOW, 0, 0, 0,
	  BENCH_COUNTER(line_probe), 0, ADMISSION_NONE, 0, 0, 0,
	  .baseline = "baseline: LRU hit, varied (all flows)" },
	{ "flow pick, repeated", 4, 0, 0, VARY_NONE, 0, 0, 0, COUNTER(flow_pick), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "flow pick, varied (all functions)", 4, 0, 0, VARY_FLOW, 0, 0, 0, COUNTER(flow_pick), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "no capacity", 4, 0, 0, VARY_NONE, 1, 0, 0, COUNTER(no_capacity), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "pass (other port)", 4, 0, 0, VARY_NONE, 0, 1, 0, COUNTER(pass), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "malformed (bad magic)", 4, 0, 0, VARY_NONE, 0, 0, 1, COUNTER(malformed), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 token hit, repeated", 6, 0, TETHER_F_TOKEN, VARY_NONE, 0, 0, 0,
	  COUNTER(token_hit), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 token hit, varied", 6, 0, TETHER_F_TOKEN, VARY_TOKEN, 0, 0, 0,
	  COUNTER(token_hit), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 key hit, repeated", 6, 0, TETHER_F_KEY, VARY_NONE, 0, 0, 0, COUNTER(key_hit), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 key hit, varied", 6, 0, TETHER_F_KEY, VARY_KEY, 0, 0, 0, COUNTER(key_hit), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 flow pick, repeated", 6, 0, 0, VARY_NONE, 0, 0, 0, COUNTER(flow_pick), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 flow pick, varied", 6, 0, 0, VARY_FLOW, 0, 0, 0, COUNTER(flow_pick), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 no capacity", 6, 0, 0, VARY_NONE, 1, 0, 0, COUNTER(no_capacity), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 pass (other port)", 6, 0, 0, VARY_NONE, 0, 1, 0, COUNTER(pass), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 malformed (bad magic)", 6, 0, 0, VARY_NONE, 0, 0, 1, COUNTER(malformed), 0, ADMISSION_NONE, 0, 0, 0 },
	/* Admission to the slow path (a function with no pool, 999). */
	{ "no capacity, within budget (2 buckets)", 4, 0, 0, VARY_NONE, 1, 0, 0,
	  COUNTER(no_capacity), 0, ADMISSION_WITHIN, 0, 0, 0 },
	{ "floor: whole-frame restore (128 bytes)", 4, 5, 0, VARY_NONE, 1, 0, 0, NO_COUNTER, 0, ADMISSION_NONE, 0, 0, 0 },
	{ "no capacity, no budget, whole restore", 4, 4, 0, VARY_NONE, 1, 0, 0,
	  COUNTER(no_capacity), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "shed: answered OVERLOADED in place", 4, 4, 0, VARY_NONE, 1, 0, 0, COUNTER(shed), 0,
	  ADMISSION_SHED, 0, 0, 0 },
	{ "IPv6 shed: answered OVERLOADED in place", 6, 4, 0, VARY_NONE, 1, 0, 0, COUNTER(shed), 0,
	  ADMISSION_SHED, 0, 0, 0 },
	{ "shed over the answer cap: dropped", 4, 4, 0, VARY_NONE, 1, 0, 0,
	  COUNTER(shed_dropped), 0, ADMISSION_CAPPED, 0, 0, 0 },
	/* The same paths with every container under a limit (never reached): the
	 * in-flight count read and a reservation taken on every forward. */
	{ "token hit, repeated, accounting on", 4, 0, TETHER_F_TOKEN, VARY_NONE, 0, 0, 0,
	  COUNTER(token_hit), 0, ADMISSION_NONE, 1, 0, 0 },
	{ "token hit, varied, accounting on", 4, 0, TETHER_F_TOKEN, VARY_TOKEN, 0, 0, 0,
	  COUNTER(token_hit), 0, ADMISSION_NONE, 1, 0, 0 },
	{ "key hit, repeated, accounting on", 4, 0, TETHER_F_KEY, VARY_NONE, 0, 0, 0,
	  COUNTER(key_hit), 0, ADMISSION_NONE, 1, 0, 0 },
	{ "key hit, varied, accounting on", 4, 0, TETHER_F_KEY, VARY_KEY, 0, 0, 0,
	  COUNTER(key_hit), 0, ADMISSION_NONE, 1, 0, 0 },
	{ "flow pick, repeated, accounting on", 4, 0, 0, VARY_NONE, 0, 0, 0, COUNTER(flow_pick),
	  0, ADMISSION_NONE, 1, 0, 0 },
	{ "flow pick, varied, accounting on", 4, 0, 0, VARY_FLOW, 0, 0, 0, COUNTER(flow_pick), 0,
	  ADMISSION_NONE, 1, 0, 0 },
	/* Flows under a limit: power of two choices against the table order
	 * (above); without a limit P2C has nothing to compare and takes the
	 * table's pick. */
	{ "flow pick, repeated, accounting on, P2C", 4, 6, 0, VARY_NONE, 0, 0, 0, COUNTER(flow_pick),
	  0, ADMISSION_NONE, 1, 0 },
	{ "flow pick, varied, accounting on, P2C", 4, 6, 0, VARY_FLOW, 0, 0, 0, COUNTER(flow_pick), 0,
	  ADMISSION_NONE, 1, 0 },
	{ "flow pick, home full (walk), accounting on", 4, 0, 0, VARY_NONE, 0, 0, 0,
	  COUNTER(flow_pick), 0, ADMISSION_NONE, 2, 0 },
	{ "flow pick, home full, accounting on, P2C", 4, 6, 0, VARY_NONE, 0, 0, 0,
	  COUNTER(flow_pick), 0, ADMISSION_NONE, 2, 0 },
	{ "flow pick, repeated, P2C (no limit)", 4, 6, 0, VARY_NONE, 0, 0, 0, COUNTER(flow_pick), 0,
	  ADMISSION_NONE, 0, 0 },
	{ "flow pick, varied, P2C (no limit)", 4, 6, 0, VARY_FLOW, 0, 0, 0, COUNTER(flow_pick), 0,
	  ADMISSION_NONE, 0, 0 },
	{ "completion (DONE), repeated container", 4, 0, 0, VARY_DONE, 0, 0, 0, COUNTER(done), 0,
	  ADMISSION_NONE, 0, 1, 0 },
	{ "IPv6 completion (DONE)", 6, 0, 0, VARY_DONE, 0, 0, 0, COUNTER(done), 0,
	  ADMISSION_NONE, 0, 1, 0 },
	/* Both CPUs at once, each beside the same case on CPU 0 alone. */
	{ "token hit, varied, CPU 0 alone", 4, 0, TETHER_F_TOKEN, VARY_TOKEN, 0, 0, 0,
	  COUNTER(token_hit), 0, ADMISSION_NONE, 0, 0, 1 },
	{ "token hit, varied, 2 CPUs at once", 4, 0, TETHER_F_TOKEN, VARY_TOKEN, 0, 0, 0,
	  COUNTER(token_hit), 0, ADMISSION_NONE, 0, 0, 2 },
	{ "key hit, varied, CPU 0 alone", 4, 0, TETHER_F_KEY, VARY_KEY, 0, 0, 0,
	  COUNTER(key_hit), 0, ADMISSION_NONE, 0, 0, 1 },
	{ "key hit, varied, 2 CPUs at once", 4, 0, TETHER_F_KEY, VARY_KEY, 0, 0, 0,
	  COUNTER(key_hit), 0, ADMISSION_NONE, 0, 0, 2 },
	{ "baseline: LRU hit, varied, CPU 0 alone", 4, 12, 0, VARY_FLOW, 0, 0, 0,
	  BENCH_COUNTER(lru_hit), 0, ADMISSION_NONE, 0, 0, 1 },
	{ "baseline: LRU hit, varied, 2 CPUs at once", 4, 12, 0, VARY_FLOW, 0, 0, 0,
	  BENCH_COUNTER(lru_hit), 0, ADMISSION_NONE, 0, 0, 2 },
	/* The packet trace: compiled out (the baseline), in and off (the
	 * ordinary cases above), on with a reader. */
#define TRACED(name_, flags_, vary_, counter_, trace_, baseline_)                            \
	{ .name = name_, .family = 4, .flags = flags_, .vary = vary_, .counter = counter_,     \
	  .trace = trace_, .baseline = baseline_ }
	TRACED("token hit, repeated, trace compiled out", TETHER_F_TOKEN, VARY_NONE,
	       COUNTER(token_hit), TRACE_ABSENT, NULL),
	TRACED("token hit, repeated, trace off", TETHER_F_TOKEN, VARY_NONE, COUNTER(token_hit),
	       TRACE_OFF, "token hit, repeated, trace compiled out"),
	TRACED("token hit, repeated, trace on + reader", TETHER_F_TOKEN, VARY_NONE,
	       COUNTER(token_hit), TRACE_READING, "token hit, repeated, trace compiled out"),
	TRACED("key hit, repeated, trace compiled out", TETHER_F_KEY, VARY_NONE,
	       COUNTER(key_hit), TRACE_ABSENT, NULL),
	TRACED("key hit, repeated, trace off", TETHER_F_KEY, VARY_NONE, COUNTER(key_hit),
	       TRACE_OFF, "key hit, repeated, trace compiled out"),
	TRACED("key hit, repeated, trace on + reader", TETHER_F_KEY, VARY_NONE,
	       COUNTER(key_hit), TRACE_READING, "key hit, repeated, trace compiled out"),
	TRACED("key hit, varied, trace compiled out", TETHER_F_KEY, VARY_KEY, COUNTER(key_hit),
	       TRACE_ABSENT, NULL),
	TRACED("key hit, varied, trace off", TETHER_F_KEY, VARY_KEY, COUNTER(key_hit),
	       TRACE_OFF, "key hit, varied, trace compiled out"),
	TRACED("key hit, varied, trace on + reader", TETHER_F_KEY, VARY_KEY, COUNTER(key_hit),
	       TRACE_READING, "key hit, varied, trace compiled out"),
#undef TRACED
	/* Routed backends (bpf/encap.h): token and key hits through the wrapper
	 * that moves the frame's start back (program 7), L2 through it too as
	 * the baseline; "FIB every packet" is the same wrapper built without
	 * the nexthop cache (program 8), compared with the cached row above it. */
#define ROUTED(name_, family_, flags_, vary_, counter_, encap_, outer_, baseline_)            \
	{ .name = name_, .family = family_, .program = 7, .flags = flags_, .vary = vary_,      \
	  .counter = counter_, .encap = encap_, .outer = outer_, .baseline = baseline_,        \
	  .egress = EGRESS_SAME }
#define ROUTED_FIB(name_, family_, flags_, vary_, counter_, encap_, outer_, baseline_)        \
	{ .name = name_, .family = family_, .program = 8, .flags = flags_, .vary = vary_,      \
	  .counter = counter_, .encap = encap_, .outer = outer_, .baseline = baseline_,        \
	  .egress = EGRESS_SAME }
#define L2_REP "L2 token hit, repeated (routed wrapper)"
#define L2_VAR "L2 token hit, varied (routed wrapper)"
#define L2_KEY "L2 key hit, varied (routed wrapper)"
#define L2_REP6 "IPv6 L2 token hit, repeated (routed wrapper)"
#define L2_VAR6 "IPv6 L2 token hit, varied (routed wrapper)"
	ROUTED(L2_REP, 4, TETHER_F_TOKEN, VARY_NONE, COUNTER(token_hit), 0, 4, NULL),
	ROUTED(L2_VAR, 4, TETHER_F_TOKEN, VARY_TOKEN, COUNTER(token_hit), 0, 4, NULL),
	ROUTED(L2_KEY, 4, TETHER_F_KEY, VARY_KEY, COUNTER(key_hit), 0, 4, NULL),
	ROUTED(L2_REP6, 6, TETHER_F_TOKEN, VARY_NONE, COUNTER(token_hit), 0, 4, NULL),
	ROUTED(L2_VAR6, 6, TETHER_F_TOKEN, VARY_TOKEN, COUNTER(token_hit), 0, 4, NULL),
	ROUTED("VXLAN/IPv4 token hit, repeated", 4, TETHER_F_TOKEN, VARY_NONE, COUNTER(encap_vxlan),
	       BACKEND_VXLAN, 4, L2_REP),
	ROUTED_FIB("VXLAN/IPv4 token hit, repeated, FIB every packet", 4, TETHER_F_TOKEN, VARY_NONE,
		   COUNTER(encap_vxlan), BACKEND_VXLAN, 4, "VXLAN/IPv4 token hit, repeated"),
	ROUTED("VXLAN/IPv4 token hit, varied", 4, TETHER_F_TOKEN, VARY_TOKEN, COUNTER(encap_vxlan),
	       BACKEND_VXLAN, 4, L2_VAR),
	ROUTED_FIB("VXLAN/IPv4 token hit, varied, FIB every packet", 4, TETHER_F_TOKEN, VARY_TOKEN,
		   COUNTER(encap_vxlan), BACKEND_VXLAN, 4, "VXLAN/IPv4 token hit, varied"),
	ROUTED("VXLAN/IPv4 key hit, varied", 4, TETHER_F_KEY, VARY_KEY, COUNTER(encap_vxlan),
	       BACKEND_VXLAN, 4, L2_KEY),
	ROUTED("IPIP/IPv4 token hit, repeated", 4, TETHER_F_TOKEN, VARY_NONE, COUNTER(encap_ipip),
	       BACKEND_IPIP, 4, L2_REP),
	ROUTED_FIB("IPIP/IPv4 token hit, repeated, FIB every packet", 4, TETHER_F_TOKEN, VARY_NONE,
		   COUNTER(encap_ipip), BACKEND_IPIP, 4, "IPIP/IPv4 token hit, repeated"),
	ROUTED("IPIP/IPv4 token hit, varied", 4, TETHER_F_TOKEN, VARY_TOKEN, COUNTER(encap_ipip),
	       BACKEND_IPIP, 4, L2_VAR),
	ROUTED_FIB("IPIP/IPv4 token hit, varied, FIB every packet", 4, TETHER_F_TOKEN, VARY_TOKEN,
		   COUNTER(encap_ipip), BACKEND_IPIP, 4, "IPIP/IPv4 token hit, varied"),
	ROUTED("IPIP/IPv4 key hit, varied", 4, TETHER_F_KEY, VARY_KEY, COUNTER(encap_ipip),
	       BACKEND_IPIP, 4, L2_KEY),
	ROUTED("IPv6 VXLAN/IPv6 token hit, repeated", 6, TETHER_F_TOKEN, VARY_NONE,
	       COUNTER(encap_vxlan), BACKEND_VXLAN, 6, L2_REP6),
	ROUTED_FIB("IPv6 VXLAN/IPv6 token hit, repeated, FIB every packet", 6, TETHER_F_TOKEN,
		   VARY_NONE, COUNTER(encap_vxlan), BACKEND_VXLAN, 6,
		   "IPv6 VXLAN/IPv6 token hit, repeated"),
	ROUTED("IPv6 VXLAN/IPv6 token hit, varied", 6, TETHER_F_TOKEN, VARY_TOKEN,
	       COUNTER(encap_vxlan), BACKEND_VXLAN, 6, L2_VAR6),
	ROUTED("IPv6 IPIP/IPv6 token hit, repeated", 6, TETHER_F_TOKEN, VARY_NONE,
	       COUNTER(encap_ipip), BACKEND_IPIP, 6, L2_REP6),
	ROUTED_FIB("IPv6 IPIP/IPv6 token hit, repeated, FIB every packet", 6, TETHER_F_TOKEN,
		   VARY_NONE, COUNTER(encap_ipip), BACKEND_IPIP, 6,
		   "IPv6 IPIP/IPv6 token hit, repeated"),
	ROUTED("IPv6 IPIP/IPv6 token hit, varied", 6, TETHER_F_TOKEN, VARY_TOKEN,
	       COUNTER(encap_ipip), BACKEND_IPIP, 6, L2_VAR6),
	/* Issue 12's target (under 20 ns added to a hot token hit), each mode
	 * run for run in turn with L2 through the same wrapper, both leaving
	 * the same way: by the interface they came in on (one-armed, XDP_TX,
	 * as every routed wrapper row above), and by another (L2 through the
	 * DEVMAP, routed bpf_redirect). */
#define L2_OTHER "L2 token hit, repeated (routed wrapper, out another port)"
#define L2_OTHER6 "IPv6 L2 token hit, repeated (routed wrapper, out another port)"
#define EGRESS_ROW(name_, family_, counter_, encap_, outer_, egress_, l2_)                     \
	{ .name = name_, .family = family_, .program = 7, .flags = TETHER_F_TOKEN,             \
	  .vary = VARY_NONE, .counter = counter_, .encap = encap_, .outer = outer_,            \
	  .egress = egress_, .in_turn_with = l2_ }
	EGRESS_ROW(L2_OTHER, 4, COUNTER(token_hit), 0, 4, EGRESS_OTHER, NULL),
	EGRESS_ROW(L2_OTHER6, 6, COUNTER(token_hit), 0, 4, EGRESS_OTHER, NULL),
	/* The four modes, leaving one way. */
#define MODES_LEAVING(way_, egress_, l2_, l2_6_)                                               \
	EGRESS_ROW("IPIP/IPv4 token hit, repeated, " way_ ", in turn with L2", 4,              \
		   COUNTER(encap_ipip), BACKEND_IPIP, 4, egress_, l2_),                          \
	EGRESS_ROW("VXLAN/IPv4 token hit, repeated, " way_ ", in turn with L2", 4,             \
		   COUNTER(encap_vxlan), BACKEND_VXLAN, 4, egress_, l2_),                        \
	EGRESS_ROW("IPv6 IPIP/IPv6 token hit, repeated, " way_ ", in turn with L2", 6,         \
		   COUNTER(encap_ipip), BACKEND_IPIP, 6, egress_, l2_6_),                        \
	EGRESS_ROW("IPv6 VXLAN/IPv6 token hit, repeated, " way_ ", in turn with L2", 6,        \
		   COUNTER(encap_vxlan), BACKEND_VXLAN, 6, egress_, l2_6_)
	MODES_LEAVING("one-armed", EGRESS_SAME, L2_REP, L2_REP6),
	MODES_LEAVING("out another port", EGRESS_OTHER, L2_OTHER, L2_OTHER6),
#undef MODES_LEAVING
#undef EGRESS_ROW
#undef L2_OTHER
#undef L2_OTHER6
	ROUTED("L2 token hit, repeated (back to L2)", 4, TETHER_F_TOKEN, VARY_NONE,
	       COUNTER(token_hit), 0, 4, L2_REP),
	/* What encapsulating costs any forwarder (no routing, no next hop, no
	 * checksum worked out): the floor of the routed rows' "+ns" over L2. */
#define PUSH_FLOOR(name_, program_, baseline_)                                                \
	{ .name = name_, .family = 4, .program = program_, .vary = VARY_NONE,                 \
	  .counter = NO_COUNTER, .baseline = baseline_ }
	PUSH_FLOOR("floor: routed wrapper + MAC addresses written", 9, NULL),
	PUSH_FLOOR("floor: routed wrapper + IPIP/IPv4 pushed (adjust_head, 34 B)", 10,
		   "floor: routed wrapper + MAC addresses written"),
	PUSH_FLOOR("floor: routed wrapper + VXLAN/IPv4 pushed (adjust_head, 64 B)", 11,
		   "floor: routed wrapper + MAC addresses written"),
#undef PUSH_FLOOR
#undef L2_REP
#undef L2_VAR
#undef L2_KEY
#undef L2_REP6
#undef L2_VAR6
#undef ROUTED_FIB
#undef ROUTED
	/* Re-home and learn change the affinity table, so they come last, and
	 * re-home (which needs the loaded entries) before learn (which evicts them). */
	{ "floor: restore + stale affinity, repeated", 4, 1, TETHER_F_KEY, VARY_KEY_STALE, 0, 0,
	  0, NO_COUNTER, 1, ADMISSION_NONE, 0, 0, 0 },
	{ "floor: restore + stale affinity, varied", 4, 1, TETHER_F_KEY, VARY_KEY_STALE, 0, 0, 0,
	  NO_COUNTER, 0, ADMISSION_NONE, 0, 0, 0 },
	{ "key re-home, repeated", 4, 0, TETHER_F_KEY, VARY_KEY_STALE, 0, 0, 0,
	  COUNTER(key_rehomed), 1, ADMISSION_NONE, 0, 0, 0 },
	{ "key re-home, varied (all entries)", 4, 0, TETHER_F_KEY, VARY_KEY_STALE, 0, 0, 0,
	  COUNTER(key_rehomed), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 key re-home, repeated", 6, 0, TETHER_F_KEY, VARY_KEY_STALE, 0, 0, 0,
	  COUNTER(key_rehomed), 1, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 key re-home, varied", 6, 0, TETHER_F_KEY, VARY_KEY_STALE, 0, 0, 0,
	  COUNTER(key_rehomed), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "key new (learn), one function", 4, 0, TETHER_F_KEY, VARY_KEY_NEW, 0, 0, 0,
	  COUNTER(key_new), 1, ADMISSION_NONE, 0, 0, 0 },
	{ "key new (learn), varied functions", 4, 0, TETHER_F_KEY, VARY_KEY_NEW, 0, 0, 0,
	  COUNTER(key_new), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 key new (learn), one function", 6, 0, TETHER_F_KEY, VARY_KEY_NEW, 0, 0, 0,
	  COUNTER(key_new), 1, ADMISSION_NONE, 0, 0, 0 },
	{ "IPv6 key new (learn), varied functions", 6, 0, TETHER_F_KEY, VARY_KEY_NEW, 0, 0, 0,
	  COUNTER(key_new), 0, ADMISSION_NONE, 0, 0, 0 },
	/* The same harness's bare flow table: a new flow every packet, one lookup
	 * that misses and one update into the full map. */
	{ "baseline: new flow (learn), full LRU", 4, 13, 0, VARY_FLOW_NEW, 0, 0, 0,
	  BENCH_COUNTER(lru_learned), 0, ADMISSION_NONE, 0, 0, 0 },
	{ "key new (learn), one function, CPU 0 alone", 4, 0, TETHER_F_KEY, VARY_KEY_NEW, 0, 0, 0,
	  COUNTER(key_new), 1, ADMISSION_NONE, 0, 0, 1 },
	{ "key new (learn), one function, 2 CPUs at once", 4, 0, TETHER_F_KEY, VARY_KEY_NEW, 0, 0,
	  0, COUNTER(key_new), 1, ADMISSION_NONE, 0, 0, 2 },
	{ "key new (learn), varied functions, CPU 0 alone", 4, 0, TETHER_F_KEY, VARY_KEY_NEW, 0, 0,
	  0, COUNTER(key_new), 0, ADMISSION_NONE, 0, 0, 1 },
	{ "key new (learn), varied functions, 2 CPUs at once", 4, 0, TETHER_F_KEY, VARY_KEY_NEW, 0,
	  0, 0, COUNTER(key_new), 0, ADMISSION_NONE, 0, 0, 2 },
	{ "baseline: new flow (learn), CPU 0 alone", 4, 13, 0, VARY_FLOW_NEW, 0, 0, 0,
	  BENCH_COUNTER(lru_learned), 0, ADMISSION_NONE, 0, 0, 1 },
	{ "baseline: new flow (learn), 2 CPUs at once", 4, 13, 0, VARY_FLOW_NEW, 0, 0, 0,
	  BENCH_COUNTER(lru_learned), 0, ADMISSION_NONE, 0, 0, 2 },
	/* New keys under a limit (never reached): the table order against
	 * power of two choices, which learns the home with more room. */
	{ "key new, one function, accounting on", 4, 0, TETHER_F_KEY, VARY_KEY_NEW, 0, 0, 0,
	  COUNTER(key_new), 1, ADMISSION_NONE, 1, 0 },
	{ "key new, one function, accounting on, P2C", 4, 6, TETHER_F_KEY, VARY_KEY_NEW, 0, 0, 0,
	  COUNTER(key_new), 1, ADMISSION_NONE, 1, 0 },
	{ "key new, varied functions, accounting on", 4, 0, TETHER_F_KEY, VARY_KEY_NEW, 0, 0, 0,
	  COUNTER(key_new), 0, ADMISSION_NONE, 1, 0 },
	{ "key new, varied functions, accounting on, P2C", 4, 6, TETHER_F_KEY, VARY_KEY_NEW, 0, 0,
	  0, COUNTER(key_new), 0, ADMISSION_NONE, 1, 0 },
	/* The target's ratio (issue 15) from runs in turn, not two cases apart:
	 * the two learn pairs above drift up to 20% apart in one process. */
	{ .name = "key new (learn), one function, in turn with the bare new flow", .family = 4,
	  .flags = TETHER_F_KEY, .vary = VARY_KEY_NEW, .counter = COUNTER(key_new),
	  .population = 1, .in_turn_with = "baseline: new flow (learn), full LRU" },
};
#pragma GCC diagnostic pop

static const struct bench_case *case_named(const char *name)
{
	for (size_t i = 0; name && i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!strcmp(cases[i].name, name))
			return &cases[i];
	return NULL;
}

/* ------------------------------------------------------------ balance */

/* Balance of flows and new keys over one function's containers under a
 * limit: each order's program (bench_route_once, the router as built: the
 * table order, or power of two choices) routes requests one by one with
 * BPF_PROG_TEST_RUN, and this process plays the containers: Poisson arrivals,
 * exponential service times of mean 1, a completion raises the container's
 * done count in the inflight map as a DONE would. Both orders get the same
 * arrivals, service times and flows or keys (the same seed). Flows come from
 * a population of 16 per container, each sending many datagrams: "flow
 * moved" is the share of a flow's later datagrams that reached another
 * container than its previous one (DESIGN.md rule 3 wants them together). */
struct balance_case {
	const char *name;
	int keys;          /* new keys (else flows) */
	__u32 limit;       /* per container; BALANCE_NO_LIMIT: never reached */
	double load;       /* in flight per container on average (offered) */
};

#define BALANCE_NO_LIMIT 1000000u

struct balance_result {
	__u64 sent, forwarded, slow_path, walked;
	__u64 again, moved; /* flows: datagrams after a flow's first forwarded one,
			     * and those of them sent to another container */
	double seen_mean;  /* in flight at the chosen container, before it */
	double max_mean;   /* the most in flight at any container, mean over arrivals */
	__u32 max_peak;    /* ... its peak over the run */
};

struct pending {
	double finish;
	__u32 slot;
};

static void heap_push(struct pending *heap, size_t *n, struct pending item)
{
	size_t i = (*n)++;

	while (i > 0 && heap[(i - 1) / 2].finish > item.finish) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = item;
}

static struct pending heap_pop(struct pending *heap, size_t *n)
{
	struct pending top = heap[0], last = heap[--*n];
	size_t i = 0;

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= *n)
			break;
		if (child + 1 < *n && heap[child + 1].finish < heap[child].finish)
			child++;
		if (heap[child].finish >= last.finish)
			break;
		heap[i] = heap[child];
		i = child;
	}
	if (*n)
		heap[i] = last;
	return top;
}

static double uniform01(void)
{
	return ((next_random() >> 11) + 0.5) / 9007199254740992.0;
}

static void balance_run(struct world *w, int prog_fd, int p2c, const struct balance_case *c,
			__u32 requests, __u64 seed, struct balance_result *r)
{
	__u32 n = w->scale.per_function, cap = maglev_table_size(n), size = 0;
	__u64 function_id = FIRST_FUNCTION; /* slots 0..n-1 */
	__u32 *table = calloc(cap, sizeof(*table)), *in_flight = calloc(n, sizeof(*in_flight));
	__u64 *done = calloc(n, sizeof(*done));
	struct pending *heap = calloc(requests, sizeof(*heap));
	__u64 *keys = calloc(requests, sizeof(*keys));
	/* Flows: n x 16 of them, each sending many datagrams (a random one
	 * each time), so a flow's datagrams can be seen to stay together. */
	__u32 flows = n * 16;
	__u64 *flow_bits = calloc(flows, sizeof(*flow_bits));
	__u32 *flow_last = calloc(flows, sizeof(*flow_last));
	static __u8 frame[512], out[512];
	size_t heap_n = 0;
	double t = 0, rate = c->load * n, seen = 0, max_sum = 0;
	int err;

	if (!table || !in_flight || !done || !heap || !keys || !flow_bits || !flow_last)
		fail("memory", ENOMEM);
	if ((err = pool_read(&w->dp, function_id, table, cap, &size)))
		fail("pool_read", err);
	for (__u32 slot = 0; slot < n; slot++)
		if ((err = container_set_limit(&w->dp, slot, c->limit)) ||
		    (err = container_load_reset(&w->dp, slot)))
			fail("balance: limits", err);
	size_t map_size = (n * sizeof(struct container_load) + 4095) & ~(size_t)4095;
	struct container_load *loads = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED,
					    bpf_map__fd(w->dp.skel->maps.inflight), 0);

	if (loads == MAP_FAILED)
		fail("balance: mmap of the inflight map", errno);
	memset(r, 0, sizeof(*r));
	rng_state = seed;
	for (__u32 f = 0; f < flows; f++) {
		flow_bits[f] = next_random();
		flow_last[f] = ~0u;
	}
	for (__u32 i = 0; i < requests; i++) {
		t += -log(uniform01()) / rate;
		while (heap_n && heap[0].finish <= t) {
			struct pending gone = heap_pop(heap, &heap_n);

			in_flight[gone.slot]--;
			__atomic_store_n(&loads[gone.slot].done, ++done[gone.slot],
					 __ATOMIC_SEQ_CST);
		}
		struct pkt_spec spec;
		__u64 hash;

		pkt_spec_default(&spec, 4);
		spec.hdr.function_id = function_id;
		if (c->keys) {
			spec.hdr.flags = TETHER_F_KEY;
			spec.hdr.routing_key = keys[i] = next_random();
			hash = tether_hash_key(function_id, spec.hdr.routing_key);
		}
		__u32 flow = 0;

		if (!c->keys) {
			__u8 src[16] = { [10] = 0xff, [11] = 0xff }, dst[16] = { [10] = 0xff, [11] = 0xff };
			__u64 bits = flow_bits[flow = next_random() % flows];

			memcpy(&spec.src_addr[0], &bits, 4);
			spec.src_port = (__u16)(bits >> 32) | 1024;
			memcpy(&src[12], spec.src_addr, 4);
			memcpy(&dst[12], spec.dst_addr, 4);
			hash = tether_hash_flow(src, dst, htons(spec.src_port), htons(spec.dst_port));
		}
		double service = -log(uniform01());
		size_t len = pkt_build(&spec, frame, sizeof(frame));
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len,
			    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

		if (!len || bpf_prog_test_run_opts(prog_fd, &opts))
			fail("balance: a request", errno ? errno : EINVAL);
		r->sent++;
		if (opts.retval != XDP_TX) {
			r->slow_path++;
			continue;
		}
		struct pkt_view view;

		if (pkt_parse(out, opts.data_size_out, &view) || view.tether_off < 0)
			fail("balance: the forwarded frame", EINVAL);
		__u32 slot = ntohl(((const struct tether_hdr *)(out + view.tether_off))
					   ->container_token.slot);

		if (slot >= n)
			fail("balance: a container of another function", EINVAL);
		__u32 first = table[tether_pool_index(hash, size) - 1];
		__u32 second = table[tether_pool_index(tether_hash_second(hash), size) - 1];

		if (slot != first && (!p2c || slot != second))
			r->walked++;
		if (!c->keys && flow_last[flow] != ~0u) {
			r->again++;
			r->moved += flow_last[flow] != slot;
		}
		if (!c->keys)
			flow_last[flow] = slot;
		r->forwarded++;
		seen += in_flight[slot];
		in_flight[slot]++;
		heap_push(heap, &heap_n, (struct pending){ t + service, slot });
		__u32 most = 0;

		for (__u32 s = 0; s < n; s++)
			most = in_flight[s] > most ? in_flight[s] : most;
		max_sum += most;
		if (most > r->max_peak)
			r->max_peak = most;
		if (most > c->limit)
			fail("balance: a container got more than its limit", EINVAL);
	}
	/* The keys learned here are forgotten: the other order gets them new. */
	for (__u32 i = 0; c->keys && i < requests; i++) {
		struct affinity_key key = { .function_id = function_id, .routing_key = keys[i] };

		bpf_map_delete_elem(bpf_map__fd(w->dp.skel->maps.affinity), &key);
	}
	r->seen_mean = r->forwarded ? seen / r->forwarded : 0;
	r->max_mean = r->forwarded ? max_sum / r->forwarded : 0;
	for (__u32 slot = 0; slot < n; slot++)
		if ((err = container_set_limit(&w->dp, slot, 0)) ||
		    (err = container_load_reset(&w->dp, slot)))
			fail("balance: limits", err);
	free(table);
	free(in_flight);
	free(done);
	munmap(loads, map_size);
	free(heap);
	free(keys);
	free(flow_bits);
	free(flow_last);
}

static const struct balance_case balance_cases[] = {
	{ "flows, no limit reached, 4 in flight a container", 0, BALANCE_NO_LIMIT, 4 },
	{ "flows, limit 4, load 70%", 0, 4, 2.8 },
	{ "flows, limit 4, load 90%", 0, 4, 3.6 },
	{ "flows, limit 4, load 100%", 0, 4, 4 },
	{ "flows, limit 1, load 90%", 0, 1, 0.9 },
	{ "new keys, no limit reached, 4 in flight a container", 1, BALANCE_NO_LIMIT, 4 },
	{ "new keys, limit 4, load 90%", 1, 4, 3.6 },
	{ "new keys, limit 1, load 90%", 1, 1, 0.9 },
};

static void balance(struct world *w, __u32 requests, FILE *json)
{
	int fds[2] = { bpf_program__fd(w->bench->progs.bench_route_once),
		       bpf_program__fd(w->p2c->progs.bench_route_once) };
	static const char *const orders[2] = { "table", "p2c" };

	/* Attached natively somewhere, a program stays in the kernel's XDP
	 * dispatcher: else every BPF_PROG_TEST_RUN of one request adds it and
	 * removes it again, a synchronize_rcu() each way. */
	if (system("ip link add tbal0 type veth peer name tbal1 && ip link set tbal0 up && "
		   "ip link set tbal1 up"))
		fail("balance: a veth pair to hold the programs", EINVAL);
	for (int o = 0; o < 2; o++) {
		int err = bpf_xdp_attach(if_nametoindex(o ? "tbal1" : "tbal0"), fds[o],
					 XDP_FLAGS_DRV_MODE, NULL);

		if (err)
			fail("balance: attaching a program", err);
	}

	printf("\nbalance: %u containers of one function, %u requests a case, Poisson arrivals,\n"
	       "exponential service; the same requests for both orders\n",
	       w->scale.per_function, requests);
	printf("%-52s %5s %9s %8s %9s %8s %6s %11s\n", "case", "order", "slow path", "walked",
	       "seen mean", "max mean", "peak", "flow moved");
	if (json)
		fprintf(json, ", \"balance\": {\"containers\": %u, \"requests\": %u, \"rows\": [",
			w->scale.per_function, requests);
	for (size_t i = 0; i < sizeof(balance_cases) / sizeof(balance_cases[0]); i++) {
		const struct balance_case *c = &balance_cases[i];

		for (int o = 0; o < 2; o++) {
			struct balance_result r;

			balance_run(w, fds[o], o, c, requests, 0x5eed0000ull + i, &r);
			printf("%-52s %5s %8.2f%% %7.2f%% %9.2f %8.2f %6u", c->name, orders[o],
			       100.0 * r.slow_path / r.sent, 100.0 * r.walked / r.sent, r.seen_mean,
			       r.max_mean, r.max_peak);
			if (c->keys)
				printf(" %11s\n", "-");
			else
				printf(" %10.2f%%\n", r.again ? 100.0 * r.moved / r.again : 0.0);
			if (json)
				fprintf(json,
					"%s{\"case\": \"%s\", \"order\": \"%s\", \"keys\": %s, "
					"\"limit\": %u, \"load\": %.2f, \"sent\": %llu, "
					"\"forwarded\": %llu, \"slow_path\": %llu, \"walked\": %llu, "
					"\"seen_mean\": %.4f, \"max_mean\": %.4f, \"max_peak\": %u, "
					"\"flow_datagrams_again\": %llu, \"flow_datagrams_moved\": %llu}",
					i || o ? ", " : "", c->name, orders[o],
					c->keys ? "true" : "false",
					c->limit == BALANCE_NO_LIMIT ? 0 : c->limit, c->load,
					(unsigned long long)r.sent, (unsigned long long)r.forwarded,
					(unsigned long long)r.slow_path, (unsigned long long)r.walked,
					r.seen_mean, r.max_mean, r.max_peak,
					(unsigned long long)r.again, (unsigned long long)r.moved);
		}
	}
	if (json)
		fprintf(json, "]}");
}

static void setup_services(struct world *w)
{
	__u8 vip[16];

	pkt_v4mapped(vip, PKT_TEST_VIP4);
	int err = service_add(&w->dp, vip, PKT_TEST_VIP_PORT, 1);

	pkt_addr6(vip, PKT_TEST_VIP6);
	if (!err)
		err = service_add(&w->dp, vip, PKT_TEST_VIP_PORT, 2);
	if (!err)
		err = service_add_completion(&w->dp, vip, COMPLETION_PORT);
	pkt_v4mapped(vip, PKT_TEST_VIP4);
	if (!err)
		err = service_add_completion(&w->dp, vip, COMPLETION_PORT);
	if (err)
		fail("service_add", err);
}

int main(int argc, char **argv)
{
	struct world w = { .scale = { FUNCTIONS, CONTAINERS_PER_FUNCTION, AFFINITY_ENTRIES,
				      1000000, 5, 50000 } };
	const char *json_path = NULL, *only = NULL, *compare_path = NULL;
	int option, runs = 0;
	struct bpf_object *compare = NULL;

	static const struct option options[] = { { "quick", no_argument, 0, 'q' },
						 { "json", required_argument, 0, 'j' },
						 { "only", required_argument, 0, 'o' },
						 { "runs", required_argument, 0, 'r' },
						 { "compare", required_argument, 0, 'c' },
						 { "help", no_argument, 0, 'h' },
						 { 0, 0, 0, 0 } };
	while ((option = getopt_long(argc, argv, "qj:o:r:c:h", options, NULL)) != -1) {
		if (option == 'q')
			w.scale = (struct scale){ 100, 10, 10000, 20000, 3, 20000 };
		else if (option == 'j')
			json_path = optarg;
		else if (option == 'o')
			only = optarg;
		else if (option == 'r')
			runs = atoi(optarg);
		else if (option == 'c')
			compare_path = optarg;
		else {
			fprintf(option == 'h' ? stdout : stderr,
				"usage: bench_dataplane [--quick] [--json FILE] "
				"[--only SUBSTRING[|SUBSTRING...]] [--runs N (1-%d)] "
				"[--compare OTHER_BUILD/bench_xdp.bpf.o]\n", MAX_RUNS);
			return option == 'h' ? 0 : 2;
		}
	}
	if (runs) {
		if (runs < 1 || runs > MAX_RUNS) {
			fprintf(stderr, "bench_dataplane: --runs is 1..%d\n", MAX_RUNS);
			return 2;
		}
		w.scale.runs = (__u32)runs;
	}
	enter_private_netns();
	int err = dataplane_open(&w.dp, NULL);

	if (err)
		fail("dataplane_open", err);
	__u64 start = monotonic_ns();

	setup_services(&w);
	load_backends(&w);
	load_containers_and_pools(&w);
	fprintf(stderr, "containers and pools loaded (%.1f s)\n", (monotonic_ns() - start) / 1e9);
	load_affinity(&w);
	fprintf(stderr, "affinity loaded (%.1f s)\n", (monotonic_ns() - start) / 1e9);
	open_bench(&w);
	open_untraced(&w);
	load_baseline_flows(&w);
	if (compare_path)
		compare = open_compare(&w, compare_path);
	printf("loaded %u containers in %u functions, %u affinity entries (%.1f s)\n\n",
	       w.containers, w.scale.functions, w.scale.affinity,
	       (monotonic_ns() - start) / 1e9);

	FILE *json = json_path ? fopen(json_path, "w") : NULL;

	if (json_path && !json)
		fail(json_path, errno);
	printf("%-52s %10s\n", "case (median of runs)", "ns/packet");
	if (json)
		fprintf(json, "{\"containers\": %u, \"functions\": %u, \"affinity\": %u, "
			      "\"repeat\": %u, \"runs\": %u, \"cases\": [",
			w.containers, w.scale.functions, w.scale.affinity, w.scale.repeat,
			w.scale.runs);
	int first = 1;
	__u32 one_cpu_ns = 0;

	__u32 measured[sizeof(cases) / sizeof(cases[0])] = { 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!selected(cases[i].name, only))
			continue;
		if (cases[i].in_turn_with) {
			__u32 ns = 0, other_ns = 0;
			int added_ns = 0;
			double ratio = measure_in_turn(&w, &cases[i], &ns, &other_ns, &added_ns);

			printf("%-52s %10u   %.2fx (%+d ns; medians of the runs' ratios and "
			       "differences) of '%s', %u in turn\n",
			       cases[i].name, ns, ratio, added_ns, cases[i].in_turn_with, other_ns);
			if (json)
				fprintf(json, "%s{\"case\": \"%s\", \"ns_per_packet\": %u, "
					      "\"in_turn_with\": \"%s\", \"other_ns\": %u, "
					      "\"ratio\": %.3f, \"added_ns\": %d}",
					first ? "" : ", ", cases[i].name, ns, cases[i].in_turn_with,
					other_ns, ratio, added_ns);
			first = 0;
			continue;
		}
		int compare_fd = compare_program_fd(&w, compare, &cases[i]);
		__u32 old_ns = 0, ns = measure(&w, &cases[i], compare_fd, &old_ns),
		      base = 0;

		measured[i] = ns;
		for (size_t b = 0; cases[i].baseline && b < i; b++)
			if (!strcmp(cases[b].name, cases[i].baseline))
				base = measured[b];
		printf("%-52s %10u", cases[i].name, ns);
		if (base)
			printf("   %.2fx (%+d ns) of '%s'", (double)ns / base, (int)ns - (int)base,
			       cases[i].baseline);
		if (json)
			fprintf(json, "%s{\"case\": \"%s\", \"ns_per_packet\": %u",
				first ? "" : ", ", cases[i].name, ns);
		/* Per CPU on both against CPU 0 alone (the case just before). */
		if (cases[i].cpus == 1)
			one_cpu_ns = ns;
		if (cases[i].cpus == 2 && one_cpu_ns && ns) {
			printf("   per CPU %.2fx of one CPU's rate", (double)one_cpu_ns / ns);
			if (json)
				fprintf(json, ", \"cpus\": 2, \"per_cpu_vs_one\": %.3f",
					(double)one_cpu_ns / ns);
		} else if (cases[i].cpus && json) {
			fprintf(json, ", \"cpus\": %d", cases[i].cpus);
		}
		if (cases[i].cpus != 1)
			one_cpu_ns = 0;
		printf("\n");
		if (compare_fd >= 0)
			printf("%-52s %10u   this build %.2fx (%+d ns)\n", "  --compare build", old_ns,
			       (double)ns / old_ns, (int)ns - (int)old_ns);
		if (json)
			fprintf(json, "}");
		first = 0;
	}
	if (json)
		fprintf(json, "]");
	if (selected("balance", only))
		balance(&w, w.scale.balance_requests, json);
	if (json) {
		fprintf(json, "}\n");
		fclose(json);
	}
	bench_xdp_untraced__destroy(w.untraced);
	bench_xdp__destroy(w.bench);
	dataplane_close(&w.dp);
	free(w.tokens);
	free(w.keys);
	return 0;
}
