// SPDX-License-Identifier: MIT
/* Reading tetherd's events, container and backend records (records.h). */
#include "records.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

static enum agent_event_type event_type(const char *name)
{
	if (!strcmp(name, "capacity_needed"))
		return AGENT_EVENT_CAPACITY_NEEDED;
	if (!strcmp(name, "container_draining"))
		return AGENT_EVENT_CONTAINER_DRAINING;
	if (!strcmp(name, "container_gone"))
		return AGENT_EVENT_CONTAINER_GONE;
	return AGENT_EVENT_OTHER;
}

static int read_container_fields(const struct proto_request *record, struct agent_event *event,
				 char *message, size_t size)
{
	const char *backend;

	if (proto_get_u32(record, "container", 1, &event->container, message, size) ||
	    proto_get_function(record, "function", 1, &event->function_id, message, size) ||
	    proto_get_name(record, "backend", 1, &backend, message, size))
		return -1;
	snprintf(event->backend, sizeof(event->backend), "%s", backend);
	return 0;
}

int agent_event_parse(const char *line, size_t len, struct agent_event *event, char *message,
		      size_t size)
{
	struct proto_request record;
	const char *name;

	memset(event, 0, sizeof(*event));
	if (proto_parse_record(line, len, &record, message, size))
		return -1;
	name = proto_get(&record, "event");
	if (!name) {
		snprintf(message, size, "the line has no event= field");
		return -1;
	}
	event->type = event_type(name);
	switch (event->type) {
	case AGENT_EVENT_CAPACITY_NEEDED:
		if (proto_get_function(&record, "function", 1, &event->function_id, message, size) ||
		    proto_get_u32(&record, "waiting", 0, &event->waiting, message, size))
			return -1;
		return 0;
	case AGENT_EVENT_CONTAINER_DRAINING:
	case AGENT_EVENT_CONTAINER_GONE:
		return read_container_fields(&record, event, message, size);
	case AGENT_EVENT_OTHER:
		break;
	}
	return 0;
}

static enum container_state state_named(const char *name)
{
	if (!strcmp(name, "starting"))
		return CONTAINER_STARTING;
	if (!strcmp(name, "warm"))
		return CONTAINER_WARM;
	if (!strcmp(name, "draining"))
		return CONTAINER_DRAINING;
	return CONTAINER_GONE;
}

int agent_container_record_parse(const struct proto_request *record,
				 struct agent_container_record *out, char *message, size_t size)
{
	const char *state = proto_get(record, "state");

	memset(out, 0, sizeof(*out));
	if (proto_get_u32(record, "container", 1, &out->slot, message, size) ||
	    proto_get_token(record, "token", 1, out->token, message, size) ||
	    proto_get_u32(record, "deadline_in_ms", 0, &out->deadline_in_ms, message, size))
		return -1;
	if (!state) {
		snprintf(message, size, "the container record has no state=");
		return -1;
	}
	out->state = state_named(state);
	return 0;
}

static bool same_addr(const char *theirs, const char *ours)
{
	__u8 a[16], b[16];

	return theirs && !addr_parse(theirs, a) && !addr_parse(ours, b) && !memcmp(a, b, 16);
}

bool agent_backend_matches(const struct proto_request *record,
			   const struct agent_options *o, char *difference, size_t size)
{
	const char *addr = proto_get(record, "addr"), *mac = proto_get(record, "mac");
	const char *iface = proto_get(record, "iface");
	__u32 heartbeat_ms = 0;
	__u16 vlan = 0; /* a record without vlan= (an older tetherd): untagged */
	char ours[16];

	snprintf(ours, sizeof(ours), "%u", o->heartbeat_ms);
	const char *encap = proto_get(record, "encap");
	__u32 vni = 0;

	if (!same_addr(addr, o->addr))
		snprintf(difference, size, "addr is %s, this agent's is %s", addr ? addr : "unset",
			 o->addr);
	else if (strcmp(encap ? encap : "l2", proto_encap_name(o->decap)))
		snprintf(difference, size, "encap is %s, this agent's is %s", encap ? encap : "l2",
			 proto_encap_name(o->decap));
	else if (proto_get_vni(record, "vni", 0, &vni, NULL, 0) || vni != o->vni)
		snprintf(difference, size, "vni is %s, this agent's is %u",
			 proto_get(record, "vni") ? proto_get(record, "vni") : "0", o->vni);
	else if (o->decap && o->mac[0] && (!mac || strcasecmp(mac, o->mac)))
		snprintf(difference, size, "mac is %s, this agent's is %s", mac ? mac : "unset",
			 o->mac);
	else if (o->decap) /* routed: the router's interface is the FIB's */
		goto heartbeat;
	else if (!mac || strcasecmp(mac, o->mac))
		snprintf(difference, size, "mac is %s, this agent's is %s", mac ? mac : "unset",
			 o->mac);
	else if (!iface || strcmp(iface, o->router_iface))
		snprintf(difference, size, "iface is %s, this agent's is %s",
			 iface ? iface : "unset", o->router_iface);
	else
		goto heartbeat;
	return false;
heartbeat:
	if (proto_get_u32(record, "heartbeat_ms", 1, &heartbeat_ms, NULL, 0) ||
	    heartbeat_ms != o->heartbeat_ms)
		snprintf(difference, size, "heartbeat_ms is %s, this agent's is %s",
			 proto_get(record, "heartbeat_ms") ? proto_get(record, "heartbeat_ms")
							   : "unset",
			 ours);
	else if (proto_get_vlan(record, "vlan", 0, &vlan, NULL, 0) || vlan != o->vlan)
		snprintf(difference, size, "vlan is %s, this agent's is %u",
			 proto_get(record, "vlan") ? proto_get(record, "vlan") : "0", o->vlan);
	else
		return true;
	return false;
}
