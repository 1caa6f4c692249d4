// SPDX-License-Identifier: MIT
/* libFuzzer target: what the VM agent does with a datagram on a VIP — the
 * header check, the token verdict against a container, and the reply it
 * builds — for any bytes an attacker on the network can send. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tether_hdr hdr;
	static __u8 reply[TETHER_HDR_LEN + 64];
	int check = agent_request_check(data, size, &hdr);

	if (check == AGENT_IGNORE)
		return 0;
	struct agent_slot own = { .slot = agent_token_slot(&hdr), .function_id = 7, .serving = true };

	memset(own.token, 0x5a, sizeof(own.token));
	enum tether_status verdict = agent_token_verdict(&hdr, &own);

	/* A token that is not the container's own never runs. */
	if (verdict == TETHER_STATUS_OK &&
	    memcmp(&hdr.container_token, own.token, sizeof(own.token)))
		abort();
	agent_token_verdict(&hdr, NULL);
	size_t len = agent_build_reply(&hdr, verdict, NULL, data, size > 64 ? 64 : size, reply,
				       sizeof(reply));
	if (len && (len < TETHER_HDR_LEN || !(((struct tether_hdr *)reply)->flags & TETHER_F_REPLY)))
		abort();
	return 0;
}
