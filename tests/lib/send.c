// SPDX-License-Identifier: MIT
#include "send.h"

#include <arpa/inet.h>
#include <string.h>

#include "check.h"
#include "pktgen.h"
#include "xdp_harness.h"

void send_test_request(struct dataplane *dp, __u32 ifindex, __u64 function_id, __u8 flags,
		       __u64 key, const struct tether_token *token, __u16 src_port,
		       struct sent *out)
{
	static __u8 frame[PKT_MAX_FRAME];
	static struct xdp_result result;
	struct tether_stats before, after;
	struct pkt_spec spec;
	struct pkt_tether hdr;
	struct tether_token stamped;

	pkt_spec_default(&spec, 4);
	spec.hdr.function_id = function_id;
	spec.hdr.flags = flags;
	spec.hdr.routing_key = key;
	if (token)
		memcpy(spec.hdr.token, token, sizeof(*token));
	spec.src_port = src_port;
	size_t len = pkt_build(&spec, frame, sizeof(frame));

	CHECK(len > 0, "pktgen could not build the request");
	CHECK(stats_read(dp, &before) == 0, "reading the stats map");
	int err = harness_run(dp, frame, len, ifindex, &result);

	CHECK(err == 0, "BPF_PROG_TEST_RUN failed: %s", strerror(-err));
	CHECK(stats_read(dp, &after) == 0, "reading the stats map");
	stats_delta(&before, &after, &out->d);
	out->verdict = result.verdict;
	memcpy(out->dst_mac, result.frame, 6);
	CHECK(pkt_tether_read(result.frame, result.len, &hdr) == 0,
	      "the program's output frame has no Tether header (verdict %s)",
	      xdp_verdict_name(result.verdict));
	out->status = hdr.status;
	out->stamped = hdr.flags & TETHER_F_STAMPED;
	memcpy(&stamped, hdr.token, sizeof(stamped));
	out->slot = ntohl(stamped.slot);
	out->generation = ntohl(stamped.generation);
	out->secret = stamped.secret;
}
