/* SPDX-License-Identifier: MIT */
/* Shared by the forwarding benchmark's BPF programs (forward_xdp.bpf.c: the
 * traffic generator, the bare forwarders, the floor, a pass-through and the
 * transit's XDP switch/router; forward_sink.bpf.c: the counting sink on the
 * backends, which can answer each request with a DONE like an agent, or take
 * the outer headers of a routed frame off first) and its control tool
 * (forward_ctl.c). See tools/bench_forward.sh and
 * tools/bench_forward_encap.sh for the topologies. */
#ifndef TETHER_BENCH_FORWARD_H
#define TETHER_BENCH_FORWARD_H

#include <linux/types.h>
#include "tether/wire.h"

/* Every generated frame is this long: Ethernet, IPv4, UDP, the 48-byte
 * Tether header and FWD_PAYLOAD_LEN bytes of payload. */
#define FWD_FRAME_LEN 128
#define FWD_PAYLOAD_LEN (FWD_FRAME_LEN - 14 - 20 - 8 - TETHER_HDR_LEN)

/* Frames of one traffic mix: population entries per mix, mixes laid out one
 * after the other in fwd_frames (mix m starts at m * FWD_MAX_POPULATION). */
#define FWD_MAX_POPULATION 65536
#define FWD_MIXES 3 /* token, key, flow */

#define FWD_MAX_BACKENDS 64
#define FWD_MAX_SLOTS 65536 /* container slots the sink and the bare forwarder know */

struct fwd_frame {
	__u8 bytes[FWD_FRAME_LEN];
};

/* fwd_config[0]: which frames the generator sends. */
struct fwd_config {
	__u32 base;       /* first entry of fwd_frames */
	__u32 population; /* entries in use, from base */
};

/* The generator's per-CPU state. */
struct fwd_gen_state {
	__u32 sequence; /* next entry of the population */
	__u32 pad;
	__u64 sent;     /* frames sent with XDP_TX: the offered load */
};

/* What a backend's sink knows of a container slot: its token (the router
 * stamps it) and the backend that holds it. */
struct fwd_expect {
	struct tether_token token;
	__u32 backend; /* FWD backend index, not Tether's backend id */
	__u32 valid;
};

/* Per-CPU counters of a backend's sink. A frame is right when the container
 * it names (the stamped token, or the request's token when nothing stamped
 * it) is the one the generator expected (request_id), that container lives on
 * this backend, and the token is the container's exact token. */
struct fwd_counts {
	__u64 right;
	__u64 wrong;
};

/* fwd_sink_mode[0], shared by every sink: done 1 answers each request with a
 * DONE (docs/protocol.md, "Completions and liveness") sent back with XDP_TX
 * to the router's completion address, as an agent does when a container
 * finishes; 0 only counts and drops. */
struct fwd_sink_mode {
	__u32 done;
	__u32 pad;
};

/* A DONE: Ethernet, IPv4, UDP, the header and the received count. */
#define FWD_DONE_FRAME_LEN (14 + 20 + 8 + TETHER_HDR_LEN + TETHER_DONE_PAYLOAD_LEN)

/* The bare forwarder's table: token slot -> egress and addresses. */
struct fwd_route {
	__u32 ifindex;
	__u8 dst_mac[6];
	__u8 src_mac[6];
};

/* The bare encapsulating forwarders' table (fwd_bare_vxlan, fwd_bare_ipip):
 * token slot -> the outer headers to push before the request's IP packet,
 * written whole by forward_ctl mode: Ethernet to the next hop, the outer
 * IPv4 or IPv6 header, and for VXLAN its UDP and VXLAN headers and the inner
 * Ethernet header. The lengths (IPv4 total length, IPv6 payload length, UDP
 * length) are 0 and the outer IPv4 checksum is that of the header with a
 * total length of 0: the forwarder adds the length in. The outer UDP
 * checksum is 0, over IPv6 too (RFC 6935 allows it for tunnels; the transit
 * and the sinks are XDP programs and verify no checksum). */
#define FWD_OUTER_MAX 88 /* 84 used at most: Ethernet, IPv6, UDP, VXLAN, Ethernet */

struct fwd_encap_route {
	__u32 ifindex;  /* the egress toward the transit (fwd_ports) */
	__u32 outer_v6; /* 0: outer IPv4 */
	__u8 outer[FWD_OUTER_MAX];
};

/* The transit namespace's XDP switch/router (fwd_transit), filled by
 * forward_ctl transit: a frame to the transit's own MAC (fwd_transit_config)
 * is routed by its (outer) IP destination (fwd_transit_routes: the address,
 * IPv4 v4-mapped, -> a struct fwd_route: the port and the MACs to write),
 * anything else is switched by its destination MAC (fwd_transit_ports: -> a
 * struct fwd_route whose MACs are not used). */
struct fwd_transit_config {
	__u8 mac[6];
	__u8 pad[2];
};

struct fwd_addr {
	__u8 addr[16];
};

struct fwd_mac {
	__u8 mac[6];
	__u8 pad[2];
};

#endif
