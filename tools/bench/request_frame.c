// SPDX-License-Identifier: MIT
/* request_frame: writes one Tether request frame to a file, for
 * `bpftool prog run ... data_in FILE repeat N` against a router's program
 * (tools/bench_fleet.sh measures a fleet router's program and a single-host
 * one's with it).
 *
 *   request_frame --function F [--token HEX] [--key K] --out FILE
 *
 * IPv4, from the tests' client (pktgen's defaults) to the VIP 198.51.100.1:7777. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pktgen.h"

static int hex_token(const char *hex, __u8 token[16])
{
	if (strlen(hex) != 32)
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned int byte;

		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			return -1;
		token[i] = (__u8)byte;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "function", required_argument, 0, 'f' }, { "token", required_argument, 0, 't' },
		{ "key", required_argument, 0, 'k' },	   { "out", required_argument, 0, 'o' },
		{ 0 },
	};
	static __u8 frame[PKT_MAX_FRAME];
	struct pkt_spec spec;
	const char *out = NULL;
	int c;

	pkt_spec_default(&spec, 4);
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'f':
			spec.hdr.function_id = strtoull(optarg, NULL, 0);
			break;
		case 't':
			if (hex_token(optarg, spec.hdr.token))
				return fprintf(stderr, "request_frame: --token is 32 hex digits\n"), 2;
			spec.hdr.flags |= TETHER_F_TOKEN;
			break;
		case 'k':
			spec.hdr.routing_key = strtoull(optarg, NULL, 0);
			spec.hdr.flags |= TETHER_F_KEY;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!out || !spec.hdr.function_id)
		return fprintf(stderr, "usage: request_frame --function F [--token HEX] [--key K] "
				       "--out FILE\n"),
		       2;
	size_t len = pkt_build(&spec, frame, sizeof(frame));
	FILE *file = fopen(out, "w");

	if (!len || !file || fwrite(frame, 1, len, file) != len || fclose(file))
		return perror(out), 1;
	return 0;
}
