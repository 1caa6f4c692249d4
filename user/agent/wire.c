// SPDX-License-Identifier: MIT
/* The agent's side of the wire format (wire.h). */
#include "wire.h"

#include <arpa/inet.h>
#include <endian.h>
#include <string.h>

#define KNOWN_REQUEST_FLAGS (TETHER_F_CLIENT_MASK | TETHER_F_STAMPED)

int agent_request_check(const void *data, size_t len, struct tether_hdr *hdr)
{
	static const __u8 zero[3];

	if (len < TETHER_HDR_LEN)
		return AGENT_IGNORE;
	memcpy(hdr, data, TETHER_HDR_LEN);
	if (ntohs(hdr->magic) != TETHER_MAGIC || hdr->version != TETHER_VERSION ||
	    hdr->flags & TETHER_F_REPLY)
		return AGENT_IGNORE;
	if (hdr->flags & ~KNOWN_REQUEST_FLAGS || hdr->status || memcmp(hdr->reserved, zero, 3) ||
	    !hdr->function_id || !(hdr->flags & TETHER_F_STAMPED))
		return TETHER_STATUS_MALFORMED;
	return TETHER_STATUS_OK;
}

__u32 agent_token_slot(const struct tether_hdr *hdr)
{
	return ntohl(hdr->container_token.slot);
}

enum tether_status agent_token_verdict(const struct tether_hdr *hdr,
				       const struct agent_slot *candidate)
{
	if (!(hdr->flags & TETHER_F_STAMPED))
		return TETHER_STATUS_MALFORMED;
	if (!candidate || candidate->slot != agent_token_slot(hdr) ||
	    memcmp(&hdr->container_token, candidate->token, sizeof(candidate->token)) ||
	    be64toh(hdr->function_id) != candidate->function_id || !candidate->serving)
		return TETHER_STATUS_CONTAINER_GONE;
	return TETHER_STATUS_OK;
}

size_t agent_build_reply(const struct tether_hdr *request, enum tether_status status,
			 const __u8 *token, const void *payload, size_t payload_len, void *out,
			 size_t cap)
{
	struct tether_hdr reply = *request;

	if (payload_len > cap || cap - payload_len < TETHER_HDR_LEN)
		return 0;
	reply.flags |= TETHER_F_REPLY;
	reply.status = status;
	memset(reply.reserved, 0, sizeof(reply.reserved));
	if (token)
		memcpy(&reply.container_token, token, sizeof(reply.container_token));
	memcpy(out, &reply, TETHER_HDR_LEN);
	if (payload_len)
		memcpy((__u8 *)out + TETHER_HDR_LEN, payload, payload_len);
	return TETHER_HDR_LEN + payload_len;
}
