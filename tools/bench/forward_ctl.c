// SPDX-License-Identifier: MIT
/* The forwarding benchmark's control tool (tools/bench_forward.sh and
 * tools/bench_forward_encap.sh drive it).
 *
 *   forward_ctl setup --pin DIR --router-if IF --client-mac MAC --vip ADDR:PORT
 *                     --backend IF,MAC,ADDR[,ADDR6] [--backend ...] --sink-port PORT
 *                     [--flows N] [--functions N] [--per-function N]
 *                     --table FILE --nft FILE [--completion ADDR:PORT]
 *                     [--encap-source ADDR [--encap-source ADDR6]]
 *     Run inside the router's namespace. Loads Tether (maps pinned under
 *     DIR/tether, program at DIR/prog_tether) and fills it: the service
 *     address, one Tether backend per backend veth, functions x per-function
 *     warm containers spread over the backends, their Maglev pools, and one
 *     affinity entry per flow of the key mix. Loads the generator, the bare
 *     forwarder, the floor, a pass-through and a drop program (DIR/prog_gen,
 *     DIR/prog_bare, DIR/prog_floor, DIR/prog_pass, DIR/prog_drop) and one counting sink per backend
 *     (DIR/prog_sink_I), and writes the frames of the three traffic mixes.
 *     Writes the userspace router's tables (--table) and the nftables ruleset
 *     of the DNAT baseline (--nft). With --completion, that is the router's
 *     completion address (a services entry of kind 1) and where the sinks
 *     send their DONEs when told to (below). With --encap-source, Tether's
 *     outer source addresses (encap_config) for routed backends, and the
 *     sinks take the outer headers of routed requests off (decap). Also
 *     loads the bare encapsulating forwarders (DIR/prog_bare_vxlan,
 *     DIR/prog_bare_ipip; their table is filled by mode) and the transit's
 *     switch/router (DIR/prog_transit; filled by transit).
 *
 *   forward_ctl mode --pin DIR --mode l2|vxlan|ipip [--family 4|6] [--vni N]
 *                    [--via MAC] --backend IF,MAC,ADDR[,ADDR6] [--backend ...]
 *                    [--functions N] [--per-function N]
 *     Run inside the router's namespace, with setup's backends. Rewrites
 *     Tether's backend records: l2 as setup made them, or routed (vxlan with
 *     VNI N + the backend's index, or ipip) to the backend's address of the
 *     family, the next hop left to the FIB; and for the routed modes the bare
 *     encapsulating forwarders' table (struct fwd_encap_route): every
 *     container's outer headers toward its backend's address, from the
 *     encap source of the family, by IF to the next hop's MAC (--via).
 *
 *   forward_ctl transit --pin DIR --transit-if IF --backend IF,MAC,ADDR[,ADDR6] ...
 *     Run inside the transit's namespace. Fills the switch/router's tables
 *     (struct fwd_transit_config): its own MAC (IF's), and for each backend
 *     its addresses routed, and its MAC switched, to the port IF, whose MAC
 *     becomes the routed frames' source.
 *
 *   forward_ctl completions --pin DIR --limit N --done 0|1
 *                           [--functions N] [--per-function N]
 *     Every container's concurrency limit (0: none), and whether the sinks
 *     answer each request with a DONE (XDP_TX back to the router's
 *     completion address, on the backend's link: consumed by the router's
 *     program on its backend-facing veths).
 *
 *   forward_ctl run --pin DIR --gen-if IF --mix token|key|flow --cpu N
 *                   --seconds S [--warmup S] [--watch-cpu M]
 *     Run inside the generator's namespace. Sends the mix's frames out of
 *     IF with BPF_PROG_TEST_RUN + BPF_F_TEST_XDP_LIVE_FRAMES on CPU N, for
 *     a warm-up and then S seconds, and prints one JSON object: frames sent
 *     (offered), frames the sinks counted (delivered), right and wrong, the
 *     Tether decision counters that moved, and how busy CPU M was meanwhile
 *     (other_cpu_busy: what else ran on the machine).
 *
 * The traffic: --flows client flows (one source port each) per mix. Token mix:
 * each flow carries the token of a random container. Key mix: each flow
 * carries a routing key with an affinity entry to a random container of its
 * function. Flow mix: neither; the container is the pool's pick for the flow.
 * Every frame carries its expected container's slot in request_id, which the
 * sinks check (tools/bench/forward_sink.bpf.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include "bench/forward.h"
#include "dataplane/dataplane.h"
#include "forward_sink.skel.h"
#include "forward_xdp.skel.h"
#include "pktgen.h"
#include "tether/hash.h"
#include "tether_xdp.skel.h"

#define FIRST_FUNCTION 1000
#define FIRST_CLIENT_PORT 20000

enum mix { MIX_TOKEN, MIX_KEY, MIX_FLOW };
static const char *const mix_names[FWD_MIXES] = { "token", "key", "flow" };

struct backend_arg {
	char iface[IF_NAMESIZE];
	__u32 ifindex;
	__u8 mac[6], src_mac[6];
	struct in_addr addr;
	struct in6_addr addr6;
	int have_addr6;
};

struct options {
	const char *pin, *router_if, *gen_if, *table, *nft, *mix, *mode, *transit_if;
	__u8 client_mac[6], via[6];
	int have_client_mac, have_via, family;
	struct encap_config encap;
	int have_encap;
	__u32 vni;
	struct in_addr vip, completion;
	__u16 vip_port, sink_port, completion_port;
	__u32 limit, done;
	int have_limit, have_done;
	struct backend_arg backends[FWD_MAX_BACKENDS];
	__u32 n_backends;
	__u32 flows, functions, per_function;
	int cpu, watch_cpu;
	double seconds, warmup;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "forward_ctl: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void usage_error(const char *message)
{
	fprintf(stderr, "forward_ctl: %s (see the comment at the top of tools/bench/forward_ctl.c)\n",
		message);
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static __u64 rng_state = 0x7e7e7e7e12345678ull;

static __u64 next_random(void)
{
	rng_state += 0x9e3779b97f4a7c15ull;
	return tether_mix64(rng_state);
}

static int parse_mac(const char *text, __u8 mac[6])
{
	unsigned int b[6];
	char tail;

	if (sscanf(text, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return -1;
		mac[i] = b[i];
	}
	return 0;
}

static void pin_path(char *out, size_t size, const char *pin, const char *name)
{
	if (snprintf(out, size, "%s/%s", pin, name) >= (int)size)
		die("pin path", ENAMETOOLONG);
}

static void pin_fd(int fd, const char *pin, const char *name)
{
	char path[512];

	pin_path(path, sizeof(path), pin, name);
	if (bpf_obj_pin(fd, path))
		die(path, errno);
}

static int open_pinned(const char *pin, const char *name)
{
	char path[512];

	pin_path(path, sizeof(path), pin, name);
	int fd = bpf_obj_get(path);

	if (fd < 0)
		die(path, errno);
	return fd;
}

/* The interfaces of the --backend arguments, in this namespace. */
static void resolve_backends(struct options *o)
{
	for (__u32 b = 0; b < o->n_backends; b++) {
		struct backend_arg *backend = &o->backends[b];
		int err;

		backend->ifindex = if_nametoindex(backend->iface);
		if (!backend->ifindex)
			die(backend->iface, errno);
		if ((err = interface_mac(backend->iface, backend->src_mac)))
			die(backend->iface, err);
	}
}

/* ---------------------------------------------------------------- setup */

struct world {
	struct options *o;
	struct dataplane dp;
	struct forward_xdp *xdp;
	struct forward_sink *sinks[FWD_MAX_BACKENDS];
	__u32 containers;
	struct tether_token *tokens; /* by slot */
	/* Every function's Maglev table as the router holds it: function f's
	 * entries at pools[f * pool_cap], pool_sizes[f] of them. */
	__u32 *pools, *pool_sizes, pool_cap;
	__u8 router_mac[6];
	FILE *table;
};

static __u64 function_of(const struct world *w, __u32 slot)
{
	return FIRST_FUNCTION + slot / w->o->per_function;
}

static __u32 backend_of(const struct world *w, __u32 slot)
{
	return slot % w->o->n_backends;
}

static void setup_tether(struct world *w)
{
	struct options *o = w->o;
	char tether_pin[512];
	__u8 vip[16];

	pin_path(tether_pin, sizeof(tether_pin), o->pin, "tether");
	struct dataplane_opts opts = { .pin_root = tether_pin };
	int err = dataplane_open(&w->dp, &opts);

	if (err)
		die("dataplane_open", err);
	pin_fd(dataplane_prog_fd(&w->dp), o->pin, "prog_tether");

	memset(vip, 0, sizeof(vip));
	vip[10] = vip[11] = 0xff;
	memcpy(&vip[12], &o->vip, 4);
	if ((err = service_add(&w->dp, vip, o->vip_port, 1)))
		die("service_add", err);
	if (o->completion_port) {
		memcpy(&vip[12], &o->completion, 4);
		if ((err = service_add_completion(&w->dp, vip, o->completion_port)))
			die("service_add_completion", err);
	}
	if (o->have_encap && (err = encap_config_set(&w->dp, &o->encap)))
		die("encap_config_set", err);

	for (__u32 b = 0; b < o->n_backends; b++) {
		struct backend_record record = {
			.state = BACKEND_UP,
			.ifindex = o->backends[b].ifindex,
			/* A heartbeat deadline an hour away keeps its check on the path. */
			.heartbeat_expiry_ns = monotonic_ns() + 3600ull * 1000000000ull,
		};
		memcpy(record.mac, o->backends[b].mac, 6);
		memset(record.addr, 0, 10);
		record.addr[10] = record.addr[11] = 0xff;
		memcpy(&record.addr[12], &o->backends[b].addr, 4);
		if ((err = backend_set(&w->dp, b, &record)))
			die("backend_set", err);
		fprintf(w->table, "backend %u %s %u\n", b, inet_ntoa(o->backends[b].addr),
			o->sink_port);
	}

	w->containers = o->functions * o->per_function;
	w->tokens = calloc(w->containers, sizeof(*w->tokens));
	struct maglev_member *members = calloc(w->containers, sizeof(*members));
	struct pool_update *pools = calloc(o->functions, sizeof(*pools));

	if (!w->tokens || !members || !pools)
		die("memory", ENOMEM);
	for (__u32 slot = 0; slot < w->containers; slot++) {
		if ((err = container_install(&w->dp, slot, function_of(w, slot), backend_of(w, slot),
					     CONTAINER_WARM, &w->tokens[slot])))
			die("container_install", err);
		members[slot] = (struct maglev_member){ .id = slot, .slot = slot };
		const __u8 *t = (const __u8 *)&w->tokens[slot];

		fprintf(w->table, "container %u ", slot);
		for (int i = 0; i < 16; i++)
			fprintf(w->table, "%02x", t[i]);
		fprintf(w->table, " %llu %u\n", (unsigned long long)function_of(w, slot),
			backend_of(w, slot));
	}
	for (__u32 f = 0; f < o->functions; f++)
		pools[f] = (struct pool_update){ .function_id = FIRST_FUNCTION + f,
						 .members = &members[f * o->per_function],
						 .n = o->per_function };
	if ((err = pools_replace(&w->dp, pools, o->functions)))
		die("pools_replace", err);
	free(pools);
	free(members);

	/* The userspace router gets the very same Maglev tables. */
	w->pool_cap = maglev_table_size(o->per_function);
	w->pools = calloc((size_t)o->functions * w->pool_cap, sizeof(*w->pools));
	w->pool_sizes = calloc(o->functions, sizeof(*w->pool_sizes));
	if (!w->pools || !w->pool_sizes)
		die("memory", ENOMEM);
	for (__u32 f = 0; f < o->functions; f++) {
		__u32 *table = &w->pools[(size_t)f * w->pool_cap];

		if ((err = pool_read(&w->dp, FIRST_FUNCTION + f, table, w->pool_cap,
				     &w->pool_sizes[f])))
			die("pool_read", err);
		fprintf(w->table, "pool %u %u", FIRST_FUNCTION + f, w->pool_sizes[f]);
		for (__u32 i = 0; i < w->pool_sizes[f]; i++)
			fprintf(w->table, " %u", table[i]);
		fputc('\n', w->table);
	}
}

static void setup_programs(struct world *w)
{
	struct options *o = w->o;
	int err;

	w->xdp = forward_xdp__open_and_load();
	if (!w->xdp)
		die("loading forward_xdp.bpf.o", errno);
	pin_fd(bpf_program__fd(w->xdp->progs.fwd_generate), o->pin, "prog_gen");
	pin_fd(bpf_program__fd(w->xdp->progs.fwd_bare), o->pin, "prog_bare");
	pin_fd(bpf_program__fd(w->xdp->progs.fwd_pass), o->pin, "prog_pass");
	pin_fd(bpf_program__fd(w->xdp->progs.fwd_floor), o->pin, "prog_floor");
	pin_fd(bpf_program__fd(w->xdp->progs.fwd_drop), o->pin, "prog_drop");
	pin_fd(bpf_program__fd(w->xdp->progs.fwd_bare_vxlan), o->pin, "prog_bare_vxlan");
	pin_fd(bpf_program__fd(w->xdp->progs.fwd_bare_ipip), o->pin, "prog_bare_ipip");
	pin_fd(bpf_program__fd(w->xdp->progs.fwd_transit), o->pin, "prog_transit");
	pin_fd(bpf_map__fd(w->xdp->maps.fwd_config), o->pin, "map_config");
	pin_fd(bpf_map__fd(w->xdp->maps.fwd_gen_state), o->pin, "map_gen");
	pin_fd(bpf_map__fd(w->xdp->maps.fwd_encap_routes), o->pin, "map_encap_routes");
	pin_fd(bpf_map__fd(w->xdp->maps.fwd_transit_config), o->pin, "map_transit_config");
	pin_fd(bpf_map__fd(w->xdp->maps.fwd_transit_routes), o->pin, "map_transit_routes");
	pin_fd(bpf_map__fd(w->xdp->maps.fwd_transit_ports), o->pin, "map_transit_ports");

	for (__u32 b = 0; b < o->n_backends; b++) {
		struct forward_sink *sink = forward_sink__open();
		char name[32];

		if (!sink)
			die("opening forward_sink.bpf.o", errno);
		sink->rodata->backend = b;
		sink->rodata->own_addr = o->backends[b].addr.s_addr;
		sink->rodata->completion_addr = o->completion.s_addr;
		sink->rodata->completion_port = o->completion_port;
		sink->rodata->decap = o->have_encap;
		if (b > 0 &&
		    (bpf_map__reuse_fd(sink->maps.fwd_expect,
				       bpf_map__fd(w->sinks[0]->maps.fwd_expect)) ||
		     bpf_map__reuse_fd(sink->maps.fwd_counts,
				       bpf_map__fd(w->sinks[0]->maps.fwd_counts)) ||
		     bpf_map__reuse_fd(sink->maps.fwd_sink_mode,
				       bpf_map__fd(w->sinks[0]->maps.fwd_sink_mode)) ||
		     bpf_map__reuse_fd(sink->maps.fwd_finished,
				       bpf_map__fd(w->sinks[0]->maps.fwd_finished))))
			die("sharing the sinks' maps", errno);
		if ((err = forward_sink__load(sink)))
			die("loading forward_sink.bpf.o", err);
		w->sinks[b] = sink;
		snprintf(name, sizeof(name), "prog_sink_%u", b);
		pin_fd(bpf_program__fd(sink->progs.fwd_sink), o->pin, name);
	}
	pin_fd(bpf_map__fd(w->sinks[0]->maps.fwd_counts), o->pin, "map_counts");
	pin_fd(bpf_map__fd(w->sinks[0]->maps.fwd_sink_mode), o->pin, "map_sink_mode");

	int expect_fd = bpf_map__fd(w->sinks[0]->maps.fwd_expect);
	int routes_fd = bpf_map__fd(w->xdp->maps.fwd_routes);
	int ports_fd = bpf_map__fd(w->xdp->maps.fwd_ports);

	for (__u32 slot = 0; slot < w->containers; slot++) {
		struct backend_arg *backend = &o->backends[backend_of(w, slot)];
		struct fwd_expect expect = { .token = w->tokens[slot],
					     .backend = backend_of(w, slot),
					     .valid = 1 };
		struct fwd_route route = { .ifindex = backend->ifindex };

		memcpy(route.dst_mac, backend->mac, 6);
		memcpy(route.src_mac, backend->src_mac, 6);
		if (bpf_map_update_elem(expect_fd, &slot, &expect, BPF_ANY) ||
		    bpf_map_update_elem(routes_fd, &slot, &route, BPF_ANY))
			die("filling the sinks' and the bare forwarder's tables", errno);
	}
	for (__u32 b = 0; b < o->n_backends; b++) {
		struct bpf_devmap_val port = { .ifindex = o->backends[b].ifindex };

		if (bpf_map_update_elem(ports_fd, &port.ifindex, &port, BPF_ANY))
			die("fwd_ports", errno);
	}
}

/* One flow of one mix: its frame, and the container it must reach. */
static void write_frame(struct world *w, enum mix mix, __u32 flow, __u64 function_id,
			__u8 flags, __u64 routing_key, __u32 token_slot, __u32 expected)
{
	struct options *o = w->o;
	struct pkt_spec spec;
	__u8 buf[256];
	struct fwd_frame frame;

	pkt_spec_default(&spec, 4);
	memcpy(spec.src_mac, o->client_mac, 6);
	memcpy(spec.dst_mac, w->router_mac, 6);
	memcpy(spec.dst_addr, &o->vip, 4);
	spec.src_port = FIRST_CLIENT_PORT + flow;
	spec.dst_port = o->vip_port;
	spec.hdr.flags = flags;
	spec.hdr.function_id = function_id;
	spec.hdr.routing_key = routing_key;
	if (flags & TETHER_F_TOKEN)
		memcpy(spec.hdr.token, &w->tokens[token_slot], 16);
	spec.hdr.request_id = expected;
	spec.payload_len = FWD_PAYLOAD_LEN;
	spec.payload_seed = (__u8)flow;
	if (pkt_build(&spec, buf, sizeof(buf)) != FWD_FRAME_LEN)
		die("building a frame", EINVAL);
	memcpy(frame.bytes, buf, FWD_FRAME_LEN);

	__u32 index = mix * FWD_MAX_POPULATION + flow;

	if (bpf_map_update_elem(bpf_map__fd(w->xdp->maps.fwd_frames), &index, &frame, BPF_ANY))
		die("fwd_frames", errno);
}

/* The pool's pick for a flow: the container the router's flow hash lands on
 * (every container is warm, so the first probe takes it). */
static __u32 flow_pick(struct world *w, __u64 function_id, __u32 flow)
{
	struct options *o = w->o;
	__u8 src[16] = { [10] = 0xff, [11] = 0xff }, dst[16] = { [10] = 0xff, [11] = 0xff };
	__u32 f = function_id - FIRST_FUNCTION;

	if (inet_pton(AF_INET, PKT_TEST_CLIENT4, &src[12]) != 1)
		die("client address", EINVAL);
	memcpy(&dst[12], &o->vip, 4);
	__u64 hash = tether_hash_flow(src, dst, htons(FIRST_CLIENT_PORT + flow), htons(o->vip_port));

	return w->pools[(size_t)f * w->pool_cap + tether_pool_index(hash, w->pool_sizes[f]) - 1];
}

static void setup_traffic(struct world *w)
{
	struct options *o = w->o;
	int affinity_fd = bpf_map__fd(w->dp.skel->maps.affinity);

	for (__u32 flow = 0; flow < o->flows; flow++) {
		/* Token: a random container. */
		__u32 slot = next_random() % w->containers;

		write_frame(w, MIX_TOKEN, flow, function_of(w, slot), TETHER_F_TOKEN, 0, slot, slot);

		/* Key: a key of a random function, with an affinity entry to a
		 * random container of that function, chosen independently of the
		 * pool's pick: a router that ignores the entry is caught (15 times
		 * in 16 with 16 containers a function). */
		slot = next_random() % w->containers;
		struct affinity_key key = { .function_id = function_of(w, slot),
					    .routing_key = next_random() };
		struct container_record record;
		int err = container_get(&w->dp, slot, &record);

		if (err)
			die("container_get", err);
		struct affinity_value value = { .slot = slot, .generation = record.generation };

		if (bpf_map_update_elem(affinity_fd, &key, &value, BPF_ANY))
			die("affinity", errno);
		fprintf(w->table, "affinity %llu %llu %u\n", (unsigned long long)key.function_id,
			(unsigned long long)key.routing_key, slot);
		write_frame(w, MIX_KEY, flow, key.function_id, TETHER_F_KEY, key.routing_key, 0,
			    slot);

		/* Flow: a random function; the pool's pick for this flow. */
		__u64 function_id = FIRST_FUNCTION + next_random() % o->functions;

		write_frame(w, MIX_FLOW, flow, function_id, 0, 0, 0,
			    flow_pick(w, function_id, flow));
	}

	struct fwd_config config = { .base = 0, .population = o->flows };
	__u32 zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(w->xdp->maps.fwd_config), &zero, &config, BPF_ANY))
		die("fwd_config", errno);
}

/* The DNAT baseline: conntrack-based DNAT of the service address to the
 * address of the backend that holds the token's container, looked up in a map
 * keyed by the token's slot (raw transport-header payload: UDP header 8 bytes
 * + token offset 24 bytes = bit 256). Each client flow keeps its token, so the
 * flow's first packet decides and conntrack carries the rest. */
static void write_nft(struct world *w)
{
	struct options *o = w->o;
	FILE *f = fopen(o->nft, "w");

	if (!f)
		die(o->nft, errno);
	fprintf(f, "table ip tether_bench {\n"
		   "\tmap slot_backend {\n"
		   "\t\ttypeof @th,256,32 : ip daddr\n"
		   "\t\telements = {");
	for (__u32 slot = 0; slot < w->containers; slot++)
		fprintf(f, "%s%u : %s", slot ? ", " : " ", slot,
			inet_ntoa(o->backends[backend_of(w, slot)].addr));
	fprintf(f, " }\n\t}\n"
		   "\tchain prerouting {\n"
		   "\t\ttype nat hook prerouting priority dstnat; policy accept;\n");
	fprintf(f, "\t\tip daddr %s udp dport %u dnat ip to @th,256,32 map @slot_backend\n",
		inet_ntoa(o->vip), o->vip_port);
	fprintf(f, "\t}\n}\n");
	if (fclose(f))
		die(o->nft, errno);
}

static int cmd_setup(struct options *o)
{
	struct world w = { .o = o };

	if (!o->pin || !o->router_if || !o->table || !o->nft || !o->n_backends ||
	    !o->have_client_mac || !o->vip.s_addr || !o->vip_port || !o->sink_port)
		usage_error("setup needs --pin --router-if --client-mac --vip --backend --sink-port "
			    "--table --nft");
	if (!o->flows || o->flows > FWD_MAX_POPULATION || FIRST_CLIENT_PORT + o->flows > 65535)
		usage_error("--flows must be 1..45535");
	if (!o->functions || !o->per_function ||
	    (__u64)o->functions * o->per_function > FWD_MAX_SLOTS)
		usage_error("functions x per-function must be 1..65536");
	if (mkdir(o->pin, 0700) && errno != EEXIST)
		die(o->pin, errno);
	resolve_backends(o);
	int err = interface_mac(o->router_if, w.router_mac);

	if (err)
		die(o->router_if, err);
	w.table = fopen(o->table, "w");
	if (!w.table)
		die(o->table, errno);

	double start = now_s();

	setup_tether(&w);
	setup_programs(&w);
	setup_traffic(&w);
	write_nft(&w);
	if (fclose(w.table))
		die(o->table, errno);
	fprintf(stderr, "forward_ctl: %u containers in %u functions on %u backends, %u flows "
			"per mix (%.1f s)\n",
		w.containers, o->functions, o->n_backends, o->flows, now_s() - start);
	/* The pins keep programs and maps alive once this process is gone. */
	for (__u32 b = 0; b < o->n_backends; b++)
		forward_sink__destroy(w.sinks[b]);
	forward_xdp__destroy(w.xdp);
	dataplane_close(&w.dp);
	free(w.tokens);
	free(w.pools);
	free(w.pool_sizes);
	return 0;
}

/* ---------------------------------------------------------- completions */

static int cmd_completions(struct options *o)
{
	if (!o->pin || !o->have_limit || !o->have_done)
		usage_error("completions needs --pin --limit --done");
	int containers_fd = open_pinned(o->pin, "tether/containers");
	int mode_fd = open_pinned(o->pin, "map_sink_mode");
	__u32 n = o->functions * o->per_function, zero = 0;
	struct fwd_sink_mode mode = { .done = o->done };

	/* Limits first when they go on, the sinks' DONEs first when they go
	 * off: no request is counted that no DONE will answer. */
	if (!o->done && bpf_map_update_elem(mode_fd, &zero, &mode, BPF_ANY))
		die("map_sink_mode", errno);
	for (__u32 slot = 0; slot < n; slot++) {
		struct container_record record;

		if (bpf_map_lookup_elem(containers_fd, &slot, &record))
			die("tether/containers", errno);
		record.limit = o->limit;
		if (bpf_map_update_elem(containers_fd, &slot, &record, BPF_EXIST))
			die("tether/containers", errno);
	}
	if (o->done && bpf_map_update_elem(mode_fd, &zero, &mode, BPF_ANY))
		die("map_sink_mode", errno);
	return 0;
}

/* ----------------------------------------------------------------- mode */

/* The one's complement checksum of an IPv4 header (its check field 0). */
static __u16 ipv4_check(const struct iphdr *ip)
{
	const __u16 *word = (const __u16 *)ip;
	__u32 sum = 0;

	for (size_t i = 0; i < sizeof(*ip) / 2; i++)
		sum += word[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The outer headers the bare encapsulating forwarders push for backend b
 * (struct fwd_encap_route): what Tether's routed path writes (bpf/encap.h),
 * the lengths 0, the outer UDP checksum 0, the source port from the slot. */
static void outer_headers(const struct options *o, const struct encap_config *config, __u32 b,
			  int vxlan, __u16 sport, struct fwd_encap_route *route)
{
	const struct backend_arg *backend = &o->backends[b];
	int v6 = o->family == 6;
	__u8 *at = route->outer;
	struct ethhdr eth = { .h_proto = htons(v6 ? ETH_P_IPV6 : ETH_P_IP) };

	memset(route, 0, sizeof(*route));
	route->ifindex = backend->ifindex;
	route->outer_v6 = v6;
	memcpy(eth.h_dest, o->via, ETH_ALEN);
	memcpy(eth.h_source, backend->src_mac, ETH_ALEN);
	memcpy(at, &eth, sizeof(eth));
	at += sizeof(eth);
	if (v6) {
		struct ipv6hdr ip6 = { .version = 6, .hop_limit = 64,
				       .nexthdr = vxlan ? IPPROTO_UDP : IPPROTO_IPIP };

		memcpy(&ip6.saddr, config->source6, 16);
		memcpy(&ip6.daddr, &backend->addr6, 16);
		memcpy(at, &ip6, sizeof(ip6));
		at += sizeof(ip6);
	} else {
		struct iphdr ip = { .version = 4, .ihl = 5, .frag_off = htons(0x4000), .ttl = 64,
				    .protocol = vxlan ? IPPROTO_UDP : IPPROTO_IPIP,
				    .saddr = config->source4, .daddr = backend->addr.s_addr };

		ip.check = ipv4_check(&ip);
		memcpy(at, &ip, sizeof(ip));
		at += sizeof(ip);
	}
	if (vxlan) {
		struct udphdr udp = { .source = htons(sport), .dest = htons(TETHER_VXLAN_PORT) };
		__u32 vni = o->vni + b;
		__u8 header[8] = { 0x08, 0, 0, 0, (__u8)(vni >> 16), (__u8)(vni >> 8), (__u8)vni, 0 };
		struct ethhdr inner = { .h_proto = htons(ETH_P_IP) };

		memcpy(inner.h_dest, backend->mac, ETH_ALEN);
		memcpy(inner.h_source, backend->src_mac, ETH_ALEN);
		memcpy(at, &udp, sizeof(udp));
		at += sizeof(udp);
		memcpy(at, header, sizeof(header));
		at += sizeof(header);
		memcpy(at, &inner, sizeof(inner));
	}
}

static int cmd_mode(struct options *o)
{
	int l2 = o->mode && !strcmp(o->mode, "l2"), vxlan = o->mode && !strcmp(o->mode, "vxlan");
	int ipip = o->mode && !strcmp(o->mode, "ipip");

	if (!o->pin || !o->n_backends || !(l2 || vxlan || ipip))
		usage_error("mode needs --pin --mode l2|vxlan|ipip --backend");
	if (!l2 && (!o->have_via || (o->family != 4 && o->family != 6)))
		usage_error("mode vxlan|ipip needs --family 4|6 --via MAC");
	resolve_backends(o);
	int backends_fd = open_pinned(o->pin, "tether/backends");
	int routes_fd = open_pinned(o->pin, "map_encap_routes");
	int config_fd = open_pinned(o->pin, "tether/encap_config");
	struct encap_config config;
	static const __u8 none[16];
	__u32 zero = 0;

	if (bpf_map_lookup_elem(config_fd, &zero, &config))
		die("tether/encap_config", errno);
	if (!l2 && (o->family == 4 ? !config.source4 : !memcmp(config.source6, none, 16)))
		usage_error("no --encap-source of that family was given to setup");
	for (__u32 b = 0; b < o->n_backends; b++) {
		struct backend_arg *backend = &o->backends[b];
		struct backend_record record;

		if (bpf_map_lookup_elem(backends_fd, &b, &record))
			die("tether/backends", errno);
		memcpy(record.mac, backend->mac, 6);
		memset(record.addr, 0, 16);
		if (l2 || o->family == 4) {
			record.addr[10] = record.addr[11] = 0xff;
			memcpy(&record.addr[12], &backend->addr, 4);
		} else if (backend->have_addr6) {
			memcpy(record.addr, &backend->addr6, 16);
		} else {
			usage_error("--family 6 needs every --backend with an IPv6 address");
		}
		record.vlan = 0;
		if (l2) {
			record.encap = BACKEND_L2;
			record.ifindex = backend->ifindex;
			memcpy(record.src_mac, backend->src_mac, 6);
		} else {
			record.encap = vxlan ? BACKEND_VXLAN : BACKEND_IPIP;
			record.ifindex = 0; /* the FIB's */
			memset(record.src_mac, 0, 6);
			if (vxlan)
				backend_set_vni(&record, o->vni + b);
		}
		if (bpf_map_update_elem(backends_fd, &b, &record, BPF_EXIST))
			die("tether/backends", errno);
	}
	if (l2)
		return 0;

	__u32 n = o->functions * o->per_function;

	for (__u32 slot = 0; slot < n; slot++) {
		struct fwd_encap_route route;

		outer_headers(o, &config, slot % o->n_backends, vxlan,
			      0xc000 | (slot & 0x3fff), &route);
		if (bpf_map_update_elem(routes_fd, &slot, &route, BPF_ANY))
			die("map_encap_routes", errno);
	}
	return 0;
}

/* -------------------------------------------------------------- transit */

static int cmd_transit(struct options *o)
{
	if (!o->pin || !o->transit_if || !o->n_backends)
		usage_error("transit needs --pin --transit-if --backend");
	resolve_backends(o);
	int config_fd = open_pinned(o->pin, "map_transit_config");
	int routes_fd = open_pinned(o->pin, "map_transit_routes");
	int ports_fd = open_pinned(o->pin, "map_transit_ports");
	struct fwd_transit_config config = { 0 };
	__u32 zero = 0;
	int err = interface_mac(o->transit_if, config.mac);

	if (err)
		die(o->transit_if, err);
	if (bpf_map_update_elem(config_fd, &zero, &config, BPF_ANY))
		die("map_transit_config", errno);
	for (__u32 b = 0; b < o->n_backends; b++) {
		struct backend_arg *backend = &o->backends[b];
		struct fwd_route hop = { .ifindex = backend->ifindex };
		struct fwd_addr addr = { .addr = { [10] = 0xff, [11] = 0xff } };
		struct fwd_mac mac = { 0 };

		memcpy(hop.dst_mac, backend->mac, 6);
		memcpy(hop.src_mac, backend->src_mac, 6);
		memcpy(&addr.addr[12], &backend->addr, 4);
		memcpy(mac.mac, backend->mac, 6);
		if (bpf_map_update_elem(routes_fd, &addr, &hop, BPF_ANY) ||
		    bpf_map_update_elem(ports_fd, &mac, &hop, BPF_ANY))
			die("the transit's tables", errno);
		if (backend->have_addr6) {
			memcpy(addr.addr, &backend->addr6, 16);
			if (bpf_map_update_elem(routes_fd, &addr, &hop, BPF_ANY))
				die("the transit's routes", errno);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ run */

static void read_counts(int fd, struct fwd_counts *total)
{
	int cpus = libbpf_num_possible_cpus();
	struct fwd_counts values[cpus > 0 ? cpus : 1];

	memset(total, 0, sizeof(*total));
	for (__u32 b = 0; b < FWD_MAX_BACKENDS; b++) {
		if (bpf_map_lookup_elem(fd, &b, values))
			die("reading the sinks' counters", errno);
		for (int c = 0; c < cpus; c++) {
			total->right += values[c].right;
			total->wrong += values[c].wrong;
		}
	}
}

static void read_tether_stats(int fd, struct tether_stats *total)
{
	int cpus = libbpf_num_possible_cpus();
	struct tether_stats values[cpus > 0 ? cpus : 1];
	__u32 zero = 0;

	memset(total, 0, sizeof(*total));
	if (bpf_map_lookup_elem(fd, &zero, values))
		die("reading Tether's counters", errno);
	for (int c = 0; c < cpus; c++)
		for (size_t i = 0; i < sizeof(*total) / sizeof(__u64); i++)
			((__u64 *)total)[i] += ((__u64 *)&values[c])[i];
}

/* Busy and total jiffies of one CPU, from /proc/stat. */
static void cpu_times(int cpu, unsigned long long *busy, unsigned long long *total)
{
	char line[512], name[16];
	FILE *f = fopen("/proc/stat", "r");

	*busy = *total = 0;
	if (!f)
		return;
	snprintf(name, sizeof(name), "cpu%d ", cpu);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v[10] = { 0 };

		if (strncmp(line, name, strlen(name)))
			continue;
		sscanf(line + strlen(name), "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
		       &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
		for (int i = 0; i < 8; i++) /* guest time is already in user */
			*total += v[i];
		*busy = *total - v[3] - v[4]; /* idle, iowait */
		break;
	}
	fclose(f);
}

static __u64 read_sent(int fd)
{
	int cpus = libbpf_num_possible_cpus();
	struct fwd_gen_state values[cpus > 0 ? cpus : 1];
	__u32 zero = 0;
	__u64 sent = 0;

	if (bpf_map_lookup_elem(fd, &zero, values))
		die("reading the generator's state", errno);
	for (int c = 0; c < cpus; c++)
		sent += values[c].sent;
	return sent;
}

/* Runs the generator for the given time. */
static void generate(int prog_fd, __u32 ifindex, double seconds)
{
	static __u8 frame[FWD_FRAME_LEN];
	struct xdp_md ctx = { .data_end = FWD_FRAME_LEN, .ingress_ifindex = ifindex };
	double deadline = now_s() + seconds;
	__u32 repeat = 1u << 16;

	while (now_s() < deadline) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame),
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = repeat,
			    .batch_size = 64, .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
		double started = now_s();

		if (bpf_prog_test_run_opts(prog_fd, &opts))
			die("BPF_PROG_TEST_RUN with live frames", errno);
		/* Calls of about 50 ms: a close deadline, little overhead. */
		double took = now_s() - started;

		if (took < 0.025 && repeat < (1u << 24))
			repeat *= 2;
		else if (took > 0.1 && repeat > 1024)
			repeat /= 2;
	}
}

static const char *const stat_names[] = {
	"token_hit",  "token_miss", "token_foreign", "key_hit",  "key_new",
	"key_rehomed", "flow_pick", "no_capacity",  "strict_gone", "malformed",
	"fragment",   "pass",       "no_route",    "retag_failed", "shed", "shed_dropped",
	"token_overflow", "key_overflow", "full", "done", "done_stale", "done_forged",
	"lost_fixed", "alive", "alive_replayed", "alive_forged", "completion_bad",
	"encap_vxlan", "encap_ipip", "fib_no_route", "fib_no_neigh", "too_big", "encap_slow", "encap_failed",
};

static int cmd_run(struct options *o)
{
	int mix = -1;

	if (!o->pin || !o->gen_if || !o->mix || o->seconds <= 0)
		usage_error("run needs --pin --gen-if --mix --seconds");
	for (int m = 0; m < FWD_MIXES; m++)
		if (!strcmp(o->mix, mix_names[m]))
			mix = m;
	if (mix < 0)
		usage_error("--mix is token, key or flow");
	__u32 ifindex = if_nametoindex(o->gen_if);

	if (!ifindex)
		die(o->gen_if, errno);
	if (o->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			die("pinning the generator to its CPU", errno);
	}
	int prog_fd = open_pinned(o->pin, "prog_gen");
	int config_fd = open_pinned(o->pin, "map_config");
	int counts_fd = open_pinned(o->pin, "map_counts");
	int stats_fd = open_pinned(o->pin, "tether/stats");
	int gen_fd = open_pinned(o->pin, "map_gen");
	struct fwd_config config;
	__u32 zero = 0;

	/* setup stored the population; the mix picks the frames. */
	if (bpf_map_lookup_elem(config_fd, &zero, &config))
		die("fwd_config", errno);
	config.base = mix * FWD_MAX_POPULATION;
	if (bpf_map_update_elem(config_fd, &zero, &config, BPF_ANY))
		die("fwd_config", errno);
	if (o->warmup > 0)
		generate(prog_fd, ifindex, o->warmup);

	struct fwd_counts before, after;
	struct tether_stats stats_before, stats_after;

	usleep(20000); /* let the warm-up's frames drain */
	unsigned long long busy_before = 0, total_before = 0, busy_after = 0, total_after = 0;

	read_counts(counts_fd, &before);
	read_tether_stats(stats_fd, &stats_before);
	if (o->watch_cpu >= 0)
		cpu_times(o->watch_cpu, &busy_before, &total_before);
	__u64 sent = read_sent(gen_fd);
	double start = now_s();

	generate(prog_fd, ifindex, o->seconds);
	double elapsed = now_s() - start;

	sent = read_sent(gen_fd) - sent;
	if (o->watch_cpu >= 0)
		cpu_times(o->watch_cpu, &busy_after, &total_after);
	usleep(20000); /* the frames still on their way count as delivered */
	read_counts(counts_fd, &after);
	read_tether_stats(stats_fd, &stats_after);
	double watch_busy = total_after > total_before ?
		(double)(busy_after - busy_before) / (total_after - total_before) : 0;

	__u64 right = after.right - before.right, wrong = after.wrong - before.wrong;

	printf("{\"mix\": \"%s\", \"seconds\": %.3f, \"sent\": %llu, \"right\": %llu, "
	       "\"wrong\": %llu, \"offered_pps\": %.0f, \"delivered_pps\": %.0f, "
	       "\"right_share\": %.6f, \"other_cpu_busy\": %.3f, \"tether\": {",
	       o->mix, elapsed, (unsigned long long)sent, (unsigned long long)right,
	       (unsigned long long)wrong, sent / elapsed, (right + wrong) / elapsed,
	       right + wrong ? (double)right / (right + wrong) : 0.0, watch_busy);
	int first = 1;

	for (size_t i = 0; i < sizeof(stat_names) / sizeof(stat_names[0]); i++) {
		__u64 moved = ((__u64 *)&stats_after)[i] - ((__u64 *)&stats_before)[i];

		if (moved) {
			printf("%s\"%s\": %llu", first ? "" : ", ", stat_names[i],
			       (unsigned long long)moved);
			first = 0;
		}
	}
	printf("}}\n");
	return 0;
}

/* ----------------------------------------------------------------- main */

static void parse_backend(struct options *o, char *arg)
{
	char *iface = strtok(arg, ","), *mac = strtok(NULL, ","), *addr = strtok(NULL, ",");
	char *addr6 = strtok(NULL, ",");

	if (o->n_backends >= FWD_MAX_BACKENDS)
		usage_error("too many --backend");
	struct backend_arg *b = &o->backends[o->n_backends++];

	if (!iface || !mac || !addr || strlen(iface) >= IF_NAMESIZE || parse_mac(mac, b->mac) ||
	    inet_pton(AF_INET, addr, &b->addr) != 1 ||
	    (addr6 && inet_pton(AF_INET6, addr6, &b->addr6) != 1))
		usage_error("--backend IFACE,MAC,IPV4[,IPV6]");
	b->have_addr6 = addr6 != NULL;
	strcpy(b->iface, iface);
}

static void parse_encap_source(struct options *o, const char *arg)
{
	if (inet_pton(AF_INET, arg, &o->encap.source4) != 1 &&
	    inet_pton(AF_INET6, arg, o->encap.source6) != 1)
		usage_error("--encap-source ADDR (IPv4 or IPv6)");
	o->have_encap = 1;
}

int main(int argc, char **argv)
{
	struct options o = {
		.flows = 16384, .functions = 256, .per_function = 16, .cpu = -1, .watch_cpu = -1,
		.vni = 4242,
	};
	static const struct option options[] = {
		{ "pin", required_argument, 0, 'p' },
		{ "router-if", required_argument, 0, 'r' },
		{ "gen-if", required_argument, 0, 'g' },
		{ "client-mac", required_argument, 0, 'c' },
		{ "vip", required_argument, 0, 'v' },
		{ "backend", required_argument, 0, 'b' },
		{ "sink-port", required_argument, 0, 's' },
		{ "flows", required_argument, 0, 'f' },
		{ "functions", required_argument, 0, 'F' },
		{ "per-function", required_argument, 0, 'P' },
		{ "table", required_argument, 0, 't' },
		{ "nft", required_argument, 0, 'n' },
		{ "mix", required_argument, 0, 'm' },
		{ "cpu", required_argument, 0, 'C' },
		{ "seconds", required_argument, 0, 'S' },
		{ "warmup", required_argument, 0, 'W' },
		{ "watch-cpu", required_argument, 0, 'R' },
		{ "completion", required_argument, 0, 'D' },
		{ "limit", required_argument, 0, 'L' },
		{ "done", required_argument, 0, 'd' },
		{ "encap-source", required_argument, 0, 'e' },
		{ "mode", required_argument, 0, 'M' },
		{ "family", required_argument, 0, '4' },
		{ "vni", required_argument, 0, 'V' },
		{ "via", required_argument, 0, 'h' },
		{ "transit-if", required_argument, 0, 'T' },
		{ 0, 0, 0, 0 },
	};
	int option;

	if (argc < 2)
		usage_error("a command: setup, run, completions, mode or transit");
	const char *command = argv[1];

	optind = 2;
	while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (option) {
		case 'p': o.pin = optarg; break;
		case 'r': o.router_if = optarg; break;
		case 'g': o.gen_if = optarg; break;
		case 'c':
			if (parse_mac(optarg, o.client_mac))
				usage_error("--client-mac");
			o.have_client_mac = 1;
			break;
		case 'v': {
			char *colon = strrchr(optarg, ':');

			if (!colon)
				usage_error("--vip ADDR:PORT");
			*colon = '\0';
			if (inet_pton(AF_INET, optarg, &o.vip) != 1)
				usage_error("--vip ADDR:PORT (IPv4)");
			o.vip_port = atoi(colon + 1);
			break;
		}
		case 'b': parse_backend(&o, optarg); break;
		case 's': o.sink_port = atoi(optarg); break;
		case 'f': o.flows = strtoul(optarg, NULL, 10); break;
		case 'F': o.functions = strtoul(optarg, NULL, 10); break;
		case 'P': o.per_function = strtoul(optarg, NULL, 10); break;
		case 't': o.table = optarg; break;
		case 'n': o.nft = optarg; break;
		case 'm': o.mix = optarg; break;
		case 'C': o.cpu = atoi(optarg); break;
		case 'S': o.seconds = atof(optarg); break;
		case 'W': o.warmup = atof(optarg); break;
		case 'R': o.watch_cpu = atoi(optarg); break;
		case 'D': {
			char *colon = strrchr(optarg, ':');

			if (!colon)
				usage_error("--completion ADDR:PORT");
			*colon = '\0';
			if (inet_pton(AF_INET, optarg, &o.completion) != 1 || !atoi(colon + 1))
				usage_error("--completion ADDR:PORT (IPv4)");
			o.completion_port = atoi(colon + 1);
			break;
		}
		case 'L': o.limit = strtoul(optarg, NULL, 10); o.have_limit = 1; break;
		case 'd': o.done = atoi(optarg) != 0; o.have_done = 1; break;
		case 'e': parse_encap_source(&o, optarg); break;
		case 'M': o.mode = optarg; break;
		case '4': o.family = atoi(optarg); break;
		case 'V': o.vni = strtoul(optarg, NULL, 10); break;
		case 'h':
			if (parse_mac(optarg, o.via))
				usage_error("--via MAC");
			o.have_via = 1;
			break;
		case 'T': o.transit_if = optarg; break;
		default: usage_error("unknown option");
		}
	}
	if (!strcmp(command, "setup"))
		return cmd_setup(&o);
	if (!strcmp(command, "run"))
		return cmd_run(&o);
	if (!strcmp(command, "completions"))
		return cmd_completions(&o);
	if (!strcmp(command, "mode"))
		return cmd_mode(&o);
	if (!strcmp(command, "transit"))
		return cmd_transit(&o);
	usage_error("a command: setup, run, completions, mode or transit");
	return 2;
}
