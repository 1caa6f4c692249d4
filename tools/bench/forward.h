/* SPDX-License-Identifier: MIT */
/* Shared by the forwarding benchmark's BPF programs (forward_xdp.bpf.c: the
 * traffic generator, the bare forwarder, the floor and a pass-through;
 * forward_sink.bpf.c: the counting sink on the backends, which can answer
 * each request with a DONE like an agent) and its control tool
 * (forward_ctl.c). See tools/bench_forward.sh for the topology. */
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

#endif
