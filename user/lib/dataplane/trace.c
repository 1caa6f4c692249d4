// SPDX-License-Identifier: MIT
/* The packet trace's maps (include/tether/trace.h, bpf/trace.h): the switch
 * and filters in trace_config, records lost for want of room, the ring
 * buffer's fd for a reader, and the names a record is told in. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

int trace_config_set(struct dataplane *dp, const struct trace_config *config)
{
	__u32 zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.trace_config), &zero, config, BPF_ANY))
		return -errno;
	return 0;
}

int trace_config_get(struct dataplane *dp, struct trace_config *config)
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.trace_config), &zero, config))
		return -errno;
	return 0;
}

int trace_lost_read(struct dataplane *dp, __u64 *lost)
{
	int cpus = libbpf_num_possible_cpus();
	__u32 zero = 0;

	if (cpus < 0)
		return cpus;
	struct trace_scratch *per_cpu = calloc(cpus, sizeof(*per_cpu));

	if (!per_cpu)
		return -ENOMEM;
	int err = bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.trace_scratch), &zero, per_cpu)
			  ? -errno
			  : 0;

	*lost = 0;
	for (int cpu = 0; !err && cpu < cpus; cpu++)
		*lost += per_cpu[cpu].lost;
	free(per_cpu);
	return err;
}

int trace_ring_fd(struct dataplane *dp)
{
	return bpf_map__fd(dp->skel->maps.trace_ring);
}

/* In the order of struct tether_stats: bit i of a record's reasons. */
static const char *const counter_names[] = {
	"token_hit",     "token_miss",   "token_foreign", "key_hit",        "key_new",
	"key_rehomed",   "flow_pick",    "no_capacity",   "strict_gone",    "malformed",
	"fragment",      "pass",         "no_route",      "retag_failed",   "shed",
	"shed_dropped",  "token_overflow", "key_overflow", "full",          "done",
	"done_stale",    "done_forged",  "lost_fixed",    "alive",          "alive_replayed",
	"alive_forged",  "completion_bad", "encap_vxlan", "encap_ipip",    "fib_no_route",
	"fib_no_neigh",  "too_big",      "encap_slow",    "encap_failed",
};

_Static_assert(sizeof(counter_names) / sizeof(counter_names[0]) ==
		       sizeof(struct tether_stats) / sizeof(__u64),
	       "a name for every counter of struct tether_stats");

const char *trace_reason_name(unsigned bit)
{
	return bit < sizeof(counter_names) / sizeof(counter_names[0]) ? counter_names[bit] : NULL;
}

int trace_reason_bit(const char *name)
{
	for (unsigned i = 0; i < sizeof(counter_names) / sizeof(counter_names[0]); i++)
		if (!strcmp(counter_names[i], name))
			return (int)i;
	return -1;
}

const char *trace_decision_name(unsigned decision)
{
	static const char *const names[TRACE_DECISIONS] = {
		[TRACE_FORWARD] = "forward",
		[TRACE_SLOW_PATH] = "slow_path",
		[TRACE_SHED] = "shed",
		[TRACE_SHED_DROPPED] = "shed_dropped",
		[TRACE_NOT_SENT] = "not_sent",
		[TRACE_MALFORMED] = "malformed",
		[TRACE_FRAGMENT] = "fragment",
		[TRACE_DONE] = "done",
		[TRACE_ALIVE] = "alive",
		[TRACE_COMPLETION_BAD] = "completion_bad",
	};

	return decision < TRACE_DECISIONS && names[decision] ? names[decision] : "unknown";
}

const char *trace_malformed_name(unsigned check)
{
	static const char *const names[TRACE_BAD_CHECKS] = {
		[TRACE_BAD_NONE] = "none",	   [TRACE_BAD_ETHERNET] = "ethernet",
		[TRACE_BAD_IP] = "ip",		   [TRACE_BAD_LENGTH] = "length",
		[TRACE_BAD_MAGIC] = "magic",	   [TRACE_BAD_VERSION] = "version",
		[TRACE_BAD_FLAGS] = "flags",	   [TRACE_BAD_STATUS] = "status",
		[TRACE_BAD_RESERVED] = "reserved", [TRACE_BAD_FUNCTION] = "function",
	};

	return check < TRACE_BAD_CHECKS ? names[check] : "unknown";
}
