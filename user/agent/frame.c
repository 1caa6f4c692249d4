// SPDX-License-Identifier: MIT
/* Messages between tether-agent and its containers (frame.h). */
#include "frame.h"

#include <string.h>

size_t agent_frame_encode(const struct agent_frame *frame, const void *payload, size_t length,
			  void *out, size_t cap)
{
	struct agent_frame header = *frame;

	if (length > AGENT_PAYLOAD_MAX || cap < sizeof(header) + length)
		return 0;
	header.length = length;
	memcpy(out, &header, sizeof(header));
	if (length)
		memcpy((__u8 *)out + sizeof(header), payload, length);
	return sizeof(header) + length;
}

int agent_frame_decode(const void *data, size_t len, struct agent_frame *frame,
		       const void **payload)
{
	if (len < sizeof(*frame))
		return -1;
	memcpy(frame, data, sizeof(*frame));
	if (frame->length != len - sizeof(*frame) || frame->length > AGENT_PAYLOAD_MAX ||
	    frame->type < AGENT_FRAME_READY || frame->type > AGENT_FRAME_RESULT)
		return -1;
	*payload = (const __u8 *)data + sizeof(*frame);
	return 0;
}
