// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Benchmark wrappers around Tether's router for BPF_PROG_TEST_RUN with a large
 * repeat count. The router rewrites the frame it is given (token, STAMPED,
 * checksum, MACs), and the kernel hands the same buffer to every repeat, so
 * each run first restores the frame from a template, optionally varying the
 * token, key or flow across a population. The restore alone is measured too
 * (bench_restore_only), as are two floors: a MAC swap, and parse + one lookup.
 * An answer in place (a shed request) rewrites and shortens the whole frame:
 * bench_route_full restores its length and every byte first
 * (bench_restore_full_only alone).
 * Built twice: as it is (the router's table order for flows and new keys) and
 * with TETHER_PICK_P2C (power of two choices, bpf/routing.h), measured side by
 * side by tools/bench_dataplane.c. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "router.h"

#include "bench_xdp.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_template);
} bench_template SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_POPULATION);
	__type(key, __u32);
	__type(value, struct bench_token);
} bench_tokens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_POPULATION);
	__type(key, __u32);
	__type(value, struct bench_key);
} bench_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_sequence SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_fresh_keys SEC(".maps");

/* New keys and flows, counted per CPU: two CPUs learning at once share no
 * counter (the cases on both CPUs measure the router, not this). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_fresh SEC(".maps");

/* The baselines' flow table and counts (bench_xdp.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TETHER_MAX_AFFINITY);
	__type(key, struct bench_flow_key);
	__type(value, struct bench_flow_value);
} bench_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TETHER_MAX_AFFINITY);
	__type(key, __u32);
	__type(value, struct bench_line);
} bench_lines SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_counts);
} bench_counts SEC(".maps");

static __always_inline __u64 next_fresh(void)
{
	__u32 zero = 0;
	__u64 *sent = bpf_map_lookup_elem(&bench_fresh, &zero);

	if (!sent)
		return 0;
	*sent += 1;
	return *sent;
}

/* Never repeats within a run of the bench (the CPU's number and its own
 * count: runs may move between CPUs), and never collides in practice with
 * the random keys loaded into the affinity table. */
static __always_inline __u64 next_fresh_key(void)
{
	__u64 n = ((__u64)bpf_get_smp_processor_id() << 48) | next_fresh();

	return (n * 0x9e3779b97f4a7c15ull) ^ 0x5eed5eed00000000ull;
}

/* A source address (its last 32 bits) no flow of the baseline's population
 * (0 .. population - 1) and no other CPU ever sends. */
static __always_inline __u32 next_fresh_source(void)
{
	return 0xc0000000u | (bpf_get_smp_processor_id() & 3) << 28 |
	       ((__u32)next_fresh() & 0x0fffffffu);
}

/* A generation that no longer matches makes the router re-home the key: the
 * state a key is in after its container was replaced. Set, not flipped: when
 * the router's update of a full LRU map finds no free node (rare) the entry
 * stays as this left it, and must still be stale for the next packet. */
static __always_inline void make_affinity_stale(const struct bench_key *key)
{
	struct affinity_key lookup = {
		.function_id = bpf_be64_to_cpu(key->function_id),
		.routing_key = bpf_be64_to_cpu(key->routing_key),
	};
	struct affinity_value *known = bpf_map_lookup_elem(&affinity, &lookup);

	if (known) {
		/* A replaced container has another generation and another
		 * secret: neither the record's way nor the fast way
		 * (bpf/routing.h) takes the entry. */
		known->generation = BENCH_STALE_GENERATION;
		known->secret = 0;
	}
}

static __always_inline __u32 next_index(__u32 population)
{
	__u32 zero = 0;
	__u32 *sequence = bpf_map_lookup_elem(&bench_sequence, &zero);

	if (!sequence || !population)
		return 0;
	__u32 index = *sequence;

	/* A case with a smaller population than the one before starts over
	 * (else one packet takes an entry past the population: all zero). */
	if (index >= population)
		index = 0;
	*sequence = index + 1 >= population ? 0 : index + 1;
	return index;
}

static __always_inline int restore_frame(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct bench_template *template = bpf_map_lookup_elem(&bench_template, &zero);

	if (!template)
		return -1;
	__u8 *hdr = data + (template->hdr_offset & 0xff);
	__u16 *udp_check = data + (template->udp_offset & 0xff) + 6;
	__u8 *src_addr = data + (template->src_addr_offset & 0xff);

	if ((void *)(hdr + TETHER_HDR_LEN) > data_end || (void *)(udp_check + 1) > data_end ||
	    (void *)(src_addr + 4) > data_end || data + 12 > data_end)
		return -1;
	copy_words(data, template->macs, 12);
	copy_words(hdr, template->hdr, TETHER_HDR_LEN);
	*udp_check = template->udp_check;

	struct tether_hdr *request = (struct tether_hdr *)hdr;

	switch (template->vary) {
	case VARY_TOKEN: {
		__u32 index = next_index(template->population);
		struct bench_token *token = bpf_map_lookup_elem(&bench_tokens, &index);

		if (token) {
			request->container_token = token->token;
			request->function_id = token->function_id;
		}
		break;
	}
	case VARY_DONE: {
		__u64 *sent = bpf_map_lookup_elem(&bench_fresh_keys, &zero);

		if (sent) {
			*sent += 1;
			request->routing_key = bpf_cpu_to_be64(*sent);
		}
		break;
	}
	case VARY_KEY:
	case VARY_KEY_STALE: {
		__u32 index = next_index(template->population);
		struct bench_key *key = bpf_map_lookup_elem(&bench_keys, &index);

		if (key) {
			request->function_id = key->function_id;
			request->routing_key = key->routing_key;
			if (template->vary == VARY_KEY_STALE)
				make_affinity_stale(key);
		}
		break;
	}
	case VARY_KEY_NEW: {
		__u32 index = next_index(template->population);
		struct bench_key *key = bpf_map_lookup_elem(&bench_keys, &index);

		if (key)
			request->function_id = key->function_id;
		request->routing_key = bpf_cpu_to_be64(next_fresh_key());
		break;
	}
	case VARY_FLOW: {
		__u32 index = next_index(template->population);
		struct bench_key *key = bpf_map_lookup_elem(&bench_keys, &index);

		if (key)
			request->function_id = key->function_id;
		*(__u32 *)src_addr = index;
		break;
	}
	case VARY_FLOW_NEW: {
		__u32 source = next_fresh_source();

		*(__u32 *)src_addr = source;
		break;
	}
	}
	return 0;
}

SEC("xdp")
int bench_route(struct xdp_md *ctx)
{
	if (restore_frame(ctx))
		return XDP_ABORTED;
	return route_frame(ctx);
}

/* The frame as given, no restore: the balance simulation of
 * tools/bench_dataplane.c sends each request once. */
SEC("xdp")
int bench_route_once(struct xdp_md *ctx)
{
	return route_frame(ctx);
}

/* A routed backend's request leaves with outer headers in front (one
 * bpf_xdp_adjust_head): the frame's start goes back to where the request's
 * was, and its EtherType (an IPIP outer header covers it) with the rest of
 * the template. The helper is called even with nothing to take back (an L2
 * row's frame did not grow), so that every row through this wrapper pays the
 * same restore: a routed row's "+ns" over L2 is then the routed path's own,
 * not the harness undoing its push too. */
static __always_inline int restore_routed_frame(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct bench_template *template = bpf_map_lookup_elem(&bench_template, &zero);

	if (!template)
		return -1;
	void *start = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	long grown = (end - start) - (long)template->frame_len;

	if (grown < 0)
		grown = 0;
	if (bpf_xdp_adjust_head(ctx, (int)grown))
		return -1;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	/* A word, not the two bytes a packed struct's field is stored as. */
	*(__be16 *)(data + offsetof(struct ethhdr, h_proto)) = template->l3_proto;
	return restore_frame(ctx);
}

/* The L2 cases through this wrapper measure its cost. */
SEC("xdp")
int bench_route_routed(struct xdp_md *ctx)
{
	if (restore_routed_frame(ctx))
		return XDP_ABORTED;
	return route_frame(ctx);
}

/* The encapsulation's floor: what any encapsulating forwarder does, with
 * nothing worked out (no route, no next hop, no checksum): one
 * bpf_xdp_adjust_head and the outer headers, Ethernet included, copied
 * whole from the template. bench_push_none is the L2 forwarder's part (the
 * MAC addresses written) after the same restore. */
static __always_inline int push_floor(struct xdp_md *ctx, int added, int written)
{
	__u32 zero = 0;
	struct bench_template *template = bpf_map_lookup_elem(&bench_template, &zero);

	if (!template || restore_routed_frame(ctx))
		return XDP_ABORTED;
	if (added && bpf_xdp_adjust_head(ctx, -added))
		return XDP_ABORTED;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + BENCH_PUSH_MAX > data_end)
		return XDP_ABORTED;
	if (written == BENCH_PUSH_VXLAN4)
		copy_words(data, template->frame, BENCH_PUSH_VXLAN4);
	else if (written == BENCH_PUSH_IPIP4)
		copy_words(data, template->frame, BENCH_PUSH_IPIP4);
	else
		copy_words(data, template->frame, ETH_ALEN * 2);
	return XDP_TX;
}

SEC("xdp")
int bench_push_none(struct xdp_md *ctx)
{
	return push_floor(ctx, 0, 0);
}

SEC("xdp")
int bench_push_ipip4(struct xdp_md *ctx)
{
	return push_floor(ctx, BENCH_PUSH_IPIP4 - ETH_HLEN, BENCH_PUSH_IPIP4);
}

SEC("xdp")
int bench_push_vxlan4(struct xdp_md *ctx)
{
	return push_floor(ctx, BENCH_PUSH_VXLAN4 - ETH_HLEN, BENCH_PUSH_VXLAN4);
}

/* The whole request back: its length (the answer shortened it), then its
 * BENCH_FULL_FRAME bytes. */
static __always_inline int restore_full_frame(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct bench_template *template = bpf_map_lookup_elem(&bench_template, &zero);

	if (!template)
		return -1;
	int grow = BENCH_FULL_FRAME - (int)(ctx->data_end - ctx->data);

	if (grow && bpf_xdp_adjust_tail(ctx, grow))
		return -1;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + BENCH_FULL_FRAME > data_end)
		return -1;
	copy_words(data, template->frame, BENCH_FULL_FRAME);
	return 0;
}

SEC("xdp")
int bench_route_full(struct xdp_md *ctx)
{
	if (restore_full_frame(ctx))
		return XDP_ABORTED;
	return route_frame(ctx);
}

SEC("xdp")
int bench_restore_full_only(struct xdp_md *ctx)
{
	if (restore_full_frame(ctx))
		return XDP_ABORTED;
	return XDP_TX;
}

SEC("xdp")
int bench_restore_only(struct xdp_md *ctx)
{
	if (restore_frame(ctx))
		return XDP_ABORTED;
	return XDP_TX;
}

/* ---- the baselines: a bare flow table in the same harness ---------------- */

static __always_inline struct bench_counts *bench_counts_here(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&bench_counts, &zero);
}

/* The same parse as the router's (to the Tether header, the service lookup
 * included), then the flow's key as an L4 balancer builds it. */
static __always_inline int flow_key_of(struct xdp_md *ctx, struct bench_flow_key *key)
{
	struct request req = {};

	if (parse_request(ctx, &req) != PARSE_REQUEST)
		return -1;
	__builtin_memcpy(key->src, req.flow_src.addr, 16);
	__builtin_memcpy(key->dst, req.service.addr, 16);
	key->sport = req.flow_src.port;
	key->dport = req.service.port;
	key->proto = IPPROTO_UDP;
	return 0;
}

/* One LRU_HASH lookup that hits: the least a flow-table balancer does for a
 * known flow. */
SEC("xdp")
int bench_lru_hit(struct xdp_md *ctx)
{
	struct bench_flow_key key = {};
	struct bench_counts *counts = bench_counts_here();

	if (restore_frame(ctx) || flow_key_of(ctx, &key) || !counts)
		return XDP_ABORTED;
	struct bench_flow_value *known = bpf_map_lookup_elem(&bench_flows, &key);

	if (!known) {
		counts->lru_miss++;
		return XDP_DROP;
	}
	counts->lru_hit++;
	return XDP_TX;
}

/* A new flow: one lookup that misses, one update into the (full) map. */
SEC("xdp")
int bench_lru_learn(struct xdp_md *ctx)
{
	struct bench_flow_key key = {};
	struct bench_counts *counts = bench_counts_here();

	if (restore_frame(ctx) || flow_key_of(ctx, &key) || !counts)
		return XDP_ABORTED;
	if (bpf_map_lookup_elem(&bench_flows, &key)) {
		counts->lru_hit++;
		return XDP_TX;
	}
	struct bench_flow_value learned = {
		.pos = (__u32)key.src[15] & 63,
		.atime = bpf_ktime_get_coarse_ns(),
	};

	if (bpf_map_update_elem(&bench_flows, &key, &learned, BPF_ANY))
		counts->lru_learn_failed++;
	else
		counts->lru_learned++;
	return XDP_TX;
}

/* The frame restored, parsed, and its flow's line of the direct-mapped
 * table (at the flow hash's index); NULL on failure. */
static __always_inline struct bench_line *frame_line(struct xdp_md *ctx,
						     struct bench_flow_key *key)
{
	if (restore_frame(ctx) || flow_key_of(ctx, key))
		return NULL;
	__u32 index = (__u32)tether_hash_flow(key->src, key->dst, key->sport, key->dport) &
		      (TETHER_MAX_AFFINITY - 1);

	return bpf_map_lookup_elem(&bench_lines, &index);
}

/* The least a keyed lookup can cost over a million entries: one cache line
 * read at the hash's index and its key compared, no bucket, no chain, no
 * eviction (a colliding flow would just overwrite the line). A floor for
 * the key hit's target, never a design: it counts probes, hit or not. */
SEC("xdp")
int bench_line_probe(struct xdp_md *ctx)
{
	struct bench_flow_key key = {};
	struct bench_counts *counts = bench_counts_here();
	struct bench_line *line = frame_line(ctx, &key);

	if (!line || !counts)
		return XDP_ABORTED;
	const __u64 *have = (const __u64 *)&line->key, *want = (const __u64 *)&key;

	counts->line_probe++;
	if (!((have[0] ^ want[0]) | (have[1] ^ want[1]) | (have[2] ^ want[2]) |
	      (have[3] ^ want[3]) | (have[4] ^ want[4])))
		counts->line_hit++;
	return XDP_TX;
}

/* Writes the flow into its line (the harness fills the table with it). */
SEC("xdp")
int bench_line_fill(struct xdp_md *ctx)
{
	struct bench_flow_key key = {};
	struct bench_counts *counts = bench_counts_here();
	struct bench_line *line = frame_line(ctx, &key);

	if (!line || !counts)
		return XDP_ABORTED;
	__builtin_memcpy(&line->key, &key, sizeof(key));
	line->value.pos = (__u32)key.src[15] & 63;
	counts->line_probe++;
	return XDP_TX;
}

/* The floor: the least an XDP forwarder does. */
SEC("xdp")
int bench_mac_swap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 mac[8] __attribute__((aligned(8))); /* put_mac's words */

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	put_mac(mac, eth->h_dest);
	put_mac(eth->h_dest, eth->h_source);
	put_mac(eth->h_source, mac);
	return XDP_TX;
}

/* Parse to UDP and do one hash lookup: what any map-driven forwarder pays. */
SEC("xdp")
int bench_parse_lookup(struct xdp_md *ctx)
{
	struct request req = {};

	if (parse_request(ctx, &req) != PARSE_REQUEST)
		return XDP_DROP;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
