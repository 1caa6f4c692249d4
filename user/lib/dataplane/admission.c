// SPDX-License-Identifier: MIT
/* The slow path's budgets (bpf/admission.h): the one entry of admit_config,
 * from rates and bursts. */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

#define NS_PER_S 1000000000ull

static int rate_from(__u32 rate, __u32 burst, struct admit_rate *out)
{
	memset(out, 0, sizeof(*out));
	if (!rate)
		return 0; /* no limit; the burst means nothing then */
	if (rate > TETHER_ADMIT_MAX_RATE || !burst)
		return -EINVAL;
	out->rate = rate;
	out->burst = burst;
	out->interval_ns = NS_PER_S / rate;
	out->tolerance_ns = (__u64)(burst - 1) * out->interval_ns;
	return 0;
}

int admission_set(struct dataplane *dp, const struct admission_limits *limits)
{
	struct admit_config config;
	__u32 zero = 0;
	int err = rate_from(limits->function_rate, limits->function_burst, &config.function) ?:
		  rate_from(limits->total_rate, limits->total_burst, &config.total) ?:
		  rate_from(limits->answer_rate, limits->answer_burst, &config.answers);

	if (err)
		return err;
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.admit_config), &zero, &config, BPF_ANY))
		return -errno;
	return 0;
}

int admission_get(struct dataplane *dp, struct admission_limits *limits)
{
	struct admit_config config;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.admit_config), &zero, &config))
		return -errno;
	*limits = (struct admission_limits){
		.function_rate = config.function.rate, .function_burst = config.function.burst,
		.total_rate = config.total.rate, .total_burst = config.total.burst,
		.answer_rate = config.answers.rate, .answer_burst = config.answers.burst,
	};
	return 0;
}
