// SPDX-License-Identifier: MIT
/* The table of tetherctl's commands (command_table.h). */
#include <string.h>

#include "command_table.h"

/* Arguments that several commands share. */
#define BACKEND_NAME                                                                   \
	{ .metavar = "NAME", .key = "name", .type = CTL_VALUE_NAME, .required = true,  \
	  .help = "the backend's name" }
#define CONTAINER_HANDLE                                                                   \
	{ .metavar = "HANDLE", .key = "container", .type = CTL_VALUE_CONTAINER,            \
	  .required = true, .help = "the container's handle, as 'container add' printed it" }
#define DEADLINE                                                                   \
	{ .flag = "--deadline", .metavar = "D", .key = "deadline_ms",              \
	  .type = CTL_VALUE_DURATION,                                              \
	  .help = "the drain ends here even with work left: 30s, 500ms, 2m "     \
		  "(default: tetherd's --drain-ms)" }
#define WAIT(what)                                                                 \
	{ .flag = "--wait", .kind = CTL_OPT_WAIT,                                  \
	  .help = "block, with progress on stderr, until " what }
#define FUNCTION(required_)                                                              \
	{ .flag = "--function", .metavar = "F", .key = "function",                        \
	  .type = CTL_VALUE_FUNCTION, .required = required_,                              \
	  .help = "a function id, decimal or 0x hex" }

const struct ctl_command ctl_commands[] = {
	{ { "backend", "add" }, "add", "backend",
	  { BACKEND_NAME,
	    { .flag = "--addr", .metavar = "ADDR", .key = "addr", .type = CTL_VALUE_ADDR,
	      .required = true, .help = "the backend's IPv4 or IPv6 address" },
	    { .flag = "--encap", .metavar = "MODE", .key = "encap", .type = CTL_VALUE_ENCAP,
	      .help = "how it is reached: l2 (default: on a segment of this host), vxlan or "
		      "ipip (routed, any number of hops away: the FIB gives the next hop)" },
	    { .flag = "--mac", .metavar = "MAC", .key = "mac", .type = CTL_VALUE_MAC,
	      .help = "the backend's MAC address, aa:bb:cc:dd:ee:ff (l2: required; vxlan: "
		      "the inner frame's destination, default 02:54:45 and the VNI)" },
	    { .flag = "--iface", .metavar = "IF", .key = "iface", .type = CTL_VALUE_IFACE,
	      .help = "the interface of the edge host that reaches it (l2: required; "
		      "routed: the only one its packets may leave by, default any)" },
	    { .flag = "--vni", .metavar = "N", .key = "vni", .type = CTL_VALUE_VNI,
	      .help = "vxlan: the VXLAN network identifier, 0-16777215 (default 0)" },
	    { .flag = "--heartbeat-ms", .metavar = "N", .key = "heartbeat_ms",
	      .type = CTL_VALUE_DURATION,
	      .help = "down when no heartbeat came for this long (ms, or 3s)" },
	    { .flag = "--vlan", .metavar = "N", .key = "vlan", .type = CTL_VALUE_VLAN,
	      .help = "its 802.1Q VLAN id (1-4094) on a trunk (default: untagged)" },
	    { .flag = "--functions", .metavar = "LIST", .key = "functions",
	      .type = CTL_VALUE_FUNCTIONS,
	      .help = "the functions its agent may hold: 7,9,0x100-0x1ff (default: as set, else any)" } },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE, "add a VM backend" },
	{ { "backend", "set" }, "set", "backend",
	  { BACKEND_NAME,
	    { .flag = "--functions", .metavar = "LIST", .key = "functions",
	      .type = CTL_VALUE_FUNCTIONS, .required = true,
	      .help = "the functions it may hold: 7,9,0x100-0x1ff, or any" } },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "set which functions a backend's agent may add or bring up (kept by name)" },
	{ { "backend", "del" }, "del", "backend", { BACKEND_NAME },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "remove a backend and its containers" },
	{ { "backend", "drain" }, "drain", "backend",
	  { BACKEND_NAME, DEADLINE, WAIT("its containers are gone") },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_BACKEND,
	  "drain a backend and its containers" },
	{ { "backend", "heartbeat" }, "heartbeat", "backend", { BACKEND_NAME },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "report a backend alive (a down backend comes back up)" },
	{ { "backend", "list" }, "list", "backend", { { 0 } },
	  CTL_SHAPE_LIST, CTL_MODE_CALL, CTL_WAIT_NONE, "list the backends" },

	{ { "container", "add" }, "add", "container",
	  { FUNCTION(true),
	    { .flag = "--backend", .metavar = "B", .key = "backend", .type = CTL_VALUE_NAME,
	      .required = true, .help = "the backend it runs on" },
	    { .flag = "--name", .metavar = "N", .key = "name", .type = CTL_VALUE_NAME,
	      .help = "a name, unique on its backend" },
	    { .flag = "--warm", .key = "state", .fixed = "warm",
	      .kind = CTL_OPT_FLAG, .help = "ready at once (default: starting)" } },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "add a container; prints its handle and token" },
	{ { "container", "up" }, "up", "container", { CONTAINER_HANDLE },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "a starting container is warm: it takes traffic" },
	{ { "container", "drain" }, "drain", "container",
	  { CONTAINER_HANDLE, DEADLINE, WAIT("the container is gone") },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_CONTAINER,
	  "drain a container: no new keys, existing ones finish" },
	{ { "container", "idle" }, "idle", "container", { CONTAINER_HANDLE },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "a draining container has no work left: it is gone" },
	{ { "container", "del" }, "del", "container", { CONTAINER_HANDLE },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE, "remove a container at once" },
	{ { "container", "list" }, "list", "container",
	  { FUNCTION(false),
	    { .flag = "--backend", .metavar = "B", .key = "backend", .type = CTL_VALUE_NAME,
	      .help = "only the containers on this backend" } },
	  CTL_SHAPE_LIST, CTL_MODE_CALL, CTL_WAIT_NONE, "list containers" },
	{ { "container", "show" }, "show", "container", { CONTAINER_HANDLE },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "show a container with its packets, bytes and affinities" },

	{ { "function", "list" }, "list", "function", { { 0 } },
	  CTL_SHAPE_LIST, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "list functions with their containers by state" },
	{ { "function", "show" }, "show", "function",
	  { { .metavar = "F", .key = "function", .type = CTL_VALUE_FUNCTION, .required = true,
	      .help = "a function id, decimal or 0x hex" } },
	  CTL_SHAPE_LIST, CTL_MODE_CALL, CTL_WAIT_NONE, "show a function and its containers" },
	{ { "function", "set" }, "set", "function",
	  { { .metavar = "F", .key = "function", .type = CTL_VALUE_FUNCTION, .required = true,
	      .help = "a function id, decimal or 0x hex" },
	    { .flag = "--concurrency", .metavar = "N", .key = "concurrency",
	      .type = CTL_VALUE_COUNT, .required = true,
	      .help = "requests in flight per container (0: no limit)" } },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "set a function's concurrency limit per container" },

	{ { "affinity", "show" }, "show", "affinity",
	  { FUNCTION(true),
	    { .flag = "--key", .metavar = "K", .key = "key", .type = CTL_VALUE_KEY,
	      .required = true, .help = "the routing key, decimal or 0x hex" } },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "show which container a key is bound to" },
	{ { "affinity", "flush" }, "flush", "affinity",
	  { FUNCTION(true),
	    { .flag = "--key", .metavar = "K", .key = "key", .type = CTL_VALUE_KEY,
	      .help = "only this routing key (default: all of the function's)" } },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "forget key bindings; keys re-home on their next request" },

	{ { "drain", "container" }, "drain", "container",
	  { CONTAINER_HANDLE, DEADLINE, WAIT("the container is gone") },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_CONTAINER,
	  "as 'container drain'" },
	{ { "drain", "backend" }, "drain", "backend",
	  { BACKEND_NAME, DEADLINE, WAIT("its containers are gone") },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_BACKEND, "as 'backend drain'" },

	{ { "fleet", "status" }, "show", "fleet", { { 0 } },
	  CTL_SHAPE_LIST, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "fleet mode: the store's revision and, per router, the revision it has "
	  "applied and its lag" },

	{ { "stats", NULL }, "show", "stats", { { 0 } },
	  CTL_SHAPE_LIST, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "show the data plane's and the slow path's counters" },
	{ { "watch", NULL }, "watch", "event", { { 0 } },
	  CTL_SHAPE_LIST, CTL_MODE_WATCH, CTL_WAIT_NONE,
	  "print lifecycle and capacity events as they happen, until interrupted" },
	{ { "trace", NULL }, "watch", "trace",
	  { FUNCTION(false),
	    { .flag = "--key", .metavar = "K", .key = "key", .type = CTL_VALUE_KEY,
	      .help = "only requests with this routing key, decimal or 0x hex" },
	    { .flag = "--container", .metavar = "HANDLE", .key = "container",
	      .type = CTL_VALUE_CONTAINER,
	      .help = "only requests sent to this container or naming it by token" },
	    { .flag = "--count", .metavar = "N", .key = "count", .type = CTL_VALUE_COUNT,
	      .kind = CTL_OPT_LOCAL, .help = "stop after N records (default: until interrupted)" } },
	  CTL_SHAPE_LIST, CTL_MODE_TRACE, CTL_WAIT_NONE,
	  "print the XDP program's decision for each request, and why, as it happens" },
	{ { "unload", NULL }, "unload", "tetherd", { { 0 } },
	  CTL_SHAPE_SINGLE, CTL_MODE_CALL, CTL_WAIT_NONE,
	  "detach the data plane, remove its pins and stop tetherd" },
};

const size_t ctl_command_count = sizeof(ctl_commands) / sizeof(ctl_commands[0]);

const struct ctl_command *ctl_command_find(const char *first, const char *second)
{
	for (size_t i = 0; i < ctl_command_count; i++) {
		const struct ctl_command *c = &ctl_commands[i];

		if (strcmp(c->words[0], first))
			continue;
		if (!c->words[1] || (second && !strcmp(c->words[1], second)))
			return c;
	}
	return NULL;
}

int ctl_option_count(const struct ctl_command *command)
{
	int n = 0;

	while (n < CTL_MAX_OPTIONS && (command->options[n].flag || command->options[n].metavar))
		n++;
	return n;
}

bool ctl_command_is_group(const char *first)
{
	for (size_t i = 0; i < ctl_command_count; i++)
		if (!strcmp(ctl_commands[i].words[0], first) && ctl_commands[i].words[1])
			return true;
	return false;
}
