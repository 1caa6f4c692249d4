// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "xdp_harness.h"

#include <errno.h>
#include <stddef.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

static void die(const char *what)
{
	fprintf(stderr, "test harness: %s: %s\n", what, strerror(errno));
	fprintf(stderr, "test harness: these tests need root (CAP_SYS_ADMIN, CAP_BPF, "
			"CAP_NET_ADMIN) on a kernel with BPF and network namespaces.\n");
	exit(1);
}

void harness_enter_private_netns(void)
{
	if (unshare(CLONE_NEWNET))
		die("unshare(CLONE_NEWNET)");
	if (system("ip link set lo up && ip link add tx0 type veth peer name tx1 && ip link set tx0 up && ip link set tx1 up"))
		die("setting up lo and the veth pair tx0/tx1");
}

__u32 harness_ifindex(const char *name)
{
	__u32 ifindex = if_nametoindex(name);

	if (!ifindex)
		die(name);
	return ifindex;
}

int harness_run(struct dataplane *dp, const __u8 *frame, __u32 len, __u32 ingress_ifindex,
		struct xdp_result *result)
{
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ingress_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .data_size_in = len,
		    .data_out = result->frame, .data_size_out = sizeof(result->frame),
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

	if (bpf_prog_test_run_opts(dataplane_prog_fd(dp), &run))
		return -errno;
	result->verdict = run.retval;
	result->len = run.data_size_out;
	return 0;
}

int harness_time(struct dataplane *dp, const __u8 *frame, __u32 len, __u32 repeat,
		 __u32 *ns_per_run)
{
	__u8 out[HARNESS_FRAME_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .data_size_in = len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = repeat);

	if (bpf_prog_test_run_opts(dataplane_prog_fd(dp), &run))
		return -errno;
	*ns_per_run = run.duration;
	return 0;
}

void stats_delta(const struct tether_stats *before, const struct tether_stats *after,
		 struct tether_stats *delta)
{
	const __u64 *b = (const __u64 *)before, *a = (const __u64 *)after;
	__u64 *d = (__u64 *)delta;

	for (size_t i = 0; i < sizeof(*delta) / sizeof(__u64); i++)
		d[i] = a[i] - b[i];
}

const char *xdp_verdict_name(int verdict)
{
	switch (verdict) {
	case XDP_ABORTED: return "XDP_ABORTED";
	case XDP_DROP: return "XDP_DROP";
	case XDP_PASS: return "XDP_PASS";
	case XDP_TX: return "XDP_TX";
	case XDP_REDIRECT: return "XDP_REDIRECT";
	}
	return "unknown verdict";
}

static const struct {
	const char *name;
	size_t offset;
} stat_fields[] = {
#define STAT_FIELD(f) { #f, offsetof(struct tether_stats, f) }
	STAT_FIELD(token_hit),   STAT_FIELD(token_miss),  STAT_FIELD(token_foreign),
	STAT_FIELD(key_hit),     STAT_FIELD(key_new),     STAT_FIELD(key_rehomed),
	STAT_FIELD(flow_pick),   STAT_FIELD(no_capacity), STAT_FIELD(strict_gone),
	STAT_FIELD(malformed),   STAT_FIELD(fragment),    STAT_FIELD(pass),
	STAT_FIELD(no_route),   STAT_FIELD(retag_failed), STAT_FIELD(shed),
	STAT_FIELD(shed_dropped),
	STAT_FIELD(token_overflow),
	STAT_FIELD(key_overflow),
	STAT_FIELD(full),
	STAT_FIELD(done),
	STAT_FIELD(done_stale),
	STAT_FIELD(done_forged),
	STAT_FIELD(lost_fixed),
	STAT_FIELD(alive),
	STAT_FIELD(alive_replayed),
	STAT_FIELD(alive_forged),
	STAT_FIELD(completion_bad),
	STAT_FIELD(encap_vxlan),
	STAT_FIELD(encap_ipip),
	STAT_FIELD(fib_no_route),
	STAT_FIELD(fib_no_neigh),
	STAT_FIELD(too_big),
	STAT_FIELD(encap_slow),
	STAT_FIELD(encap_failed),
#undef STAT_FIELD
};

_Static_assert(sizeof(stat_fields) / sizeof(stat_fields[0]) ==
		       sizeof(struct tether_stats) / sizeof(__u64),
	       "every counter is named");

int stats_diff(const struct tether_stats *got, const struct tether_stats *want, char *out,
	       size_t size)
{
	size_t used = 0;
	int differ = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(stat_fields) / sizeof(stat_fields[0]); i++) {
		__u64 g, w;

		memcpy(&g, (const char *)got + stat_fields[i].offset, sizeof(g));
		memcpy(&w, (const char *)want + stat_fields[i].offset, sizeof(w));
		if (g == w)
			continue;
		differ++;
		if (used < size)
			used += snprintf(out + used, size - used, " %s %+lld (want %+lld)",
					 stat_fields[i].name, (long long)g, (long long)w);
	}
	return differ;
}
