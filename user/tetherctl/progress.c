// SPDX-License-Identifier: MIT
/* Progress of a drain, for "drain ... --wait" (progress.h). */
#include <stdbool.h>
#include <string.h>

#include "progress.h"

#define MS_PER_S 1000

void ctl_progress_add(struct ctl_progress *p, __u64 at_ms, __u64 packets)
{
	unsigned int i = p->added++ % CTL_PROGRESS_SAMPLES;

	p->samples[i].at_ms = at_ms;
	p->samples[i].packets = packets;
}

long long ctl_progress_rate(const struct ctl_progress *p)
{
	unsigned int stored = MIN(p->added, CTL_PROGRESS_SAMPLES);

	if (stored < 2)
		return -1;

	unsigned int newest = (p->added - 1) % CTL_PROGRESS_SAMPLES, best = newest;
	__u64 now = p->samples[newest].at_ms, best_distance = G_MAXUINT64;

	for (unsigned int back = 1; back < stored; back++) {
		unsigned int i = (p->added - 1 - back) % CTL_PROGRESS_SAMPLES;
		__u64 age = now - p->samples[i].at_ms;
		__u64 distance = age > MS_PER_S ? age - MS_PER_S : MS_PER_S - age;

		if (distance < best_distance) {
			best = i;
			best_distance = distance;
		}
	}

	__u64 elapsed = now - p->samples[best].at_ms;
	__u64 before = p->samples[best].packets, after = p->samples[newest].packets;

	if (!elapsed)
		return -1;
	/* A counter that went back was reset: count from zero. */
	if (after < before)
		before = 0;
	return (long long)(((after - before) * MS_PER_S + elapsed / 2) / elapsed);
}

long long ctl_progress_deadline_in(const struct proto_request *records, size_t count)
{
	long long latest = -1;

	for (size_t i = 0; i < count; i++) {
		const char *state = proto_get(&records[i], "state");
		__u32 ms;

		/* tetherd sends 0 when not draining, and 2^64-1 for no deadline:
		 * both fail one of these tests. */
		if (!state || strcmp(state, "draining"))
			continue;
		if (proto_get_u32(&records[i], "deadline_in_ms", 1, &ms, NULL, 0))
			continue;
		latest = MAX(latest, (long long)ms);
	}
	return latest;
}

static void append_deadline(GString *out, const char *separator, long long deadline_in_ms)
{
	if (deadline_in_ms < 0)
		return;
	g_string_append_printf(out, "%sdeadline in %lld.%lld s", separator,
			       deadline_in_ms / MS_PER_S, deadline_in_ms % MS_PER_S / 100);
}

void ctl_progress_container(GString *out, const char *handle, const struct proto_request *record,
			    long long rate, long long deadline_in_ms)
{
	const char *state = proto_get(record, "state");
	const char *separator = ": ";
	__u64 affinities;

	g_string_append_printf(out, "container %s %s", handle, state ? state : "present");
	if (rate >= 0) {
		g_string_append_printf(out, "%s%lld packet%s in the last second", separator, rate,
				       rate == 1 ? "" : "s");
		separator = ", ";
	}
	if (proto_get(record, "affinities") &&
	    !proto_get_u64(record, "affinities", 1, &affinities, NULL, 0)) {
		g_string_append_printf(out, "%s%llu affinit%s left", separator,
				       (unsigned long long)affinities,
				       affinities == 1 ? "y" : "ies");
		separator = ", ";
	}
	append_deadline(out, separator, deadline_in_ms);
}

/* "2 draining, 1 starting": the containers by state, in order of first
 * appearance. */
static void append_states(GString *out, const struct proto_request *containers, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const char *state = proto_get(&containers[i], "state");
		size_t same = 0;
		bool counted = false;

		if (!state)
			state = "unknown";
		for (size_t j = 0; j < count; j++) {
			const char *other = proto_get(&containers[j], "state");

			if (!strcmp(other ? other : "unknown", state)) {
				counted |= j < i;
				same++;
			}
		}
		if (!counted)
			g_string_append_printf(out, "%s%zu %s", i ? ", " : "", same, state);
	}
}

void ctl_progress_backend(GString *out, const char *name, const struct proto_request *containers,
			  size_t count, long long deadline_in_ms)
{
	g_string_append_printf(out, "backend %s draining: %zu container%s left", name, count,
			       count == 1 ? "" : "s");
	if (count) {
		g_string_append(out, " (");
		append_states(out, containers, count);
		g_string_append(out, ")");
	}
	append_deadline(out, ", ", deadline_in_ms);
}
