// SPDX-License-Identifier: MIT
/* The agent's side of the wire format (wire.h). */
#include "wire.h"

#include <arpa/inet.h>
#include <endian.h>
#include <string.h>

#include "tether/siphash.h"

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

size_t agent_build_done(const __u8 token[16], __u64 function_id, __u64 request_id,
			enum tether_status status, __u64 finished, __u64 received, void *out,
			size_t cap)
{
	struct tether_hdr hdr = {
		.magic = htons(TETHER_MAGIC),
		.version = TETHER_VERSION,
		.flags = TETHER_F_DONE | TETHER_F_STAMPED,
		.status = (__u8)status,
		.function_id = htobe64(function_id),
		.routing_key = htobe64(finished),
		.request_id = request_id,
	};
	__u64 received_be = htobe64(received);

	if (cap < TETHER_HDR_LEN + TETHER_DONE_PAYLOAD_LEN)
		return 0;
	memcpy(&hdr.container_token, token, 16);
	memcpy(out, &hdr, TETHER_HDR_LEN);
	memcpy((__u8 *)out + TETHER_HDR_LEN, &received_be, 8);
	return TETHER_HDR_LEN + TETHER_DONE_PAYLOAD_LEN;
}

size_t agent_build_alive(__u32 backend_id, __u64 seq, const __u64 key[2], void *out, size_t cap)
{
	struct tether_hdr hdr = {
		.magic = htons(TETHER_MAGIC),
		.version = TETHER_VERSION,
		.flags = TETHER_F_ALIVE | TETHER_F_STAMPED,
		.function_id = htobe64(backend_id),
		.routing_key = htobe64(seq),
	};

	if (cap < TETHER_HDR_LEN)
		return 0;
	hdr.container_token.secret = htobe64(tether_alive_tag(key, backend_id, seq));
	memcpy(out, &hdr, TETHER_HDR_LEN);
	return TETHER_HDR_LEN;
}
