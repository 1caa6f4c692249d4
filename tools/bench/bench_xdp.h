/* SPDX-License-Identifier: MIT */
/* Shared by the benchmark's BPF wrappers (bench_xdp.bpf.c) and its harness
 * (tools/bench_dataplane.c). */
#ifndef TETHER_BENCH_XDP_H
#define TETHER_BENCH_XDP_H

#include <linux/types.h>
#include "tether/wire.h"

enum bench_vary {
	VARY_NONE = 0,
	VARY_TOKEN = 1, /* function and token from bench_tokens[i] */
	VARY_KEY = 2,   /* function and routing key from bench_keys[i] */
	VARY_FLOW = 3,  /* function from bench_keys[i], source address from i */
	VARY_KEY_NEW = 4,   /* function from bench_keys[i], a routing key never sent before */
	VARY_KEY_STALE = 5, /* bench_keys[i], its affinity entry made stale first (re-home) */
	VARY_DONE = 6,      /* a DONE whose finished count (routing_key) grows every run */
	VARY_FLOW_NEW = 7,  /* a source address never sent before (the baseline's new flow) */
};

/* The baselines of the same harness (bench_lru_hit, bench_lru_learn): a bare
 * flow table as an L4 balancer keeps one (Katran's flow_key and real_pos_lru),
 * one LRU_HASH of the same population as the affinity table; parse, then one
 * lookup (a hit), or one lookup that misses and one update into the full map. */
struct bench_flow_key {
	__u8 src[16]; /* as the parser gives them: IPv4 v4-mapped */
	__u8 dst[16];
	__be16 sport, dport;
	__u8 proto;
	__u8 pad[3];
} __attribute__((aligned(8))); /* its addresses copied as words, not bytes */

struct bench_flow_value {
	__u32 pos;   /* the real's index */
	__u32 pad;
	__u64 atime; /* last seen, ns */
};

/* Per-CPU counts of the baselines, checked by the harness as the router's
 * counters are. */
struct bench_counts {
	__u64 lru_hit;
	__u64 lru_miss;
	__u64 lru_learned;
	__u64 lru_learn_failed;
	__u64 line_probe;
	__u64 line_hit;
};

/* A line of the direct-mapped flow table (bench_line_probe): key and value
 * in one 64-byte cache line, at the flow hash's index. */
struct bench_line {
	struct bench_flow_key key;
	struct bench_flow_value value;
	__u8 pad[8];
};

struct bench_token {
	struct tether_token token;
	__be64 function_id;
};

struct bench_key {
	__be64 function_id;
	__be64 routing_key;
};

/* The whole frame of the cases whose answer rewrites all of it (shed): a
 * request of exactly this many bytes, restored whole, its length first. */
#define BENCH_FULL_FRAME 128

struct bench_template {
	__u8 macs[12];
	__u8 hdr[TETHER_HDR_LEN];
	__u16 udp_check;
	__u16 hdr_offset;     /* of the Tether header in the frame */
	__u16 udp_offset;
	__u16 src_addr_offset; /* of the last 4 bytes of the source address */
	__u32 vary;           /* enum bench_vary */
	__u32 population;     /* entries of bench_tokens / bench_keys in use */
	__u8 frame[BENCH_FULL_FRAME]; /* bench_route_full: the whole request */
	__u32 frame_len;      /* bench_route_routed: the request's length */
	__be16 l3_proto;      /* ... and its EtherType */
	__u16 pad;
};

#define BENCH_POPULATION (1u << 20)

/* The encapsulation floor's outer headers (bench_push_*): Ethernet and
 * IPv4 (IPIP), and Ethernet, IPv4, UDP, VXLAN and the inner Ethernet. */
#define BENCH_PUSH_IPIP4 34
#define BENCH_PUSH_VXLAN4 64
#define BENCH_PUSH_MAX 64
/* No container of the bench reaches this generation. */
#define BENCH_STALE_GENERATION 0xffffffffu

#endif
