// SPDX-License-Identifier: MIT
/* /metrics: what tetherd counts and reads, written in the Prometheus text
 * format (metrics.h; the series are listed in the README, "Metrics"). */
#include "metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "commands.h"
#include "exposition.h"
#include "function_series.h"
#include "metrics_http.h"
#include "metrics_sweep.h"
#include "tetherd.h"

#if __has_include("tether_version.h")
#include "tether_version.h" /* generated from VERSION by the packaging's make rules */
#endif
#ifndef TETHER_RELEASE_VERSION
#define TETHER_RELEASE_VERSION "unreleased"
#endif

#define NS_PER_S 1e9

/* ---- what the data plane counts (struct tether_stats) ------------------------ */

struct counter_field {
	size_t offset;
	const char *label; /* the label value */
};

#define STAT(field) { offsetof(struct tether_stats, field), #field }
/* Decisions: each request for a service address, or packet not for one,
 * gets exactly one. */
static const struct counter_field decisions[] = {
	STAT(token_hit), STAT(token_miss),   STAT(token_foreign), STAT(key_hit),
	STAT(key_new),   STAT(key_rehomed),  STAT(flow_pick),     STAT(no_capacity),
	STAT(strict_gone), STAT(malformed),  STAT(fragment),      STAT(pass),
};
/* Faults, counted on top of a decision: the frame was dropped on its way out. */
static const struct counter_field faults[] = {
	STAT(no_route),
	STAT(retag_failed),
	STAT(encap_failed),
};
/* Routed backends (bpf/encap.h), on top of a decision: how requests left,
 * and why some went to the slow path instead. */
static const struct counter_field encap_events[] = {
	STAT(encap_vxlan), STAT(encap_ipip), STAT(fib_no_route), STAT(fib_no_neigh),
	STAT(too_big),     STAT(encap_slow),
};
/* Admission, on top of no_capacity or strict_gone: over the slow path's
 * budget, answered OVERLOADED by the XDP program or, over the cap on
 * answers, dropped. */
static const struct counter_field shed[] = {
	{ offsetof(struct tether_stats, shed), "answered" },
	{ offsetof(struct tether_stats, shed_dropped), "dropped" },
};
/* Concurrency limits, on top of a decision (or, for full, the decision a
 * request for full containers gets), and the accounting's repairs. */
static const struct counter_field load_events[] = {
	STAT(token_overflow), STAT(key_overflow), STAT(full), STAT(lost_fixed),
};
/* Datagrams to the completion address: DONEs and ALIVEs, by what came of them. */
static const struct counter_field completions[] = {
	STAT(done),  STAT(done_stale),	   STAT(done_forged),  STAT(alive),
	STAT(alive_replayed), STAT(alive_forged), STAT(completion_bad),
};
#undef STAT
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
/* A counter added to struct tether_stats must be exported: add it above. */
_Static_assert(COUNT_OF(decisions) + COUNT_OF(faults) + COUNT_OF(shed) + COUNT_OF(load_events) +
			       COUNT_OF(completions) + COUNT_OF(encap_events) ==
		       sizeof(struct tether_stats) / sizeof(__u64),
	       "a counter of struct tether_stats is not in /metrics (metrics.c)");

/* ---- what the slow path counts (struct slowpath_stats) ----------------------- */

struct slowpath_field {
	size_t offset;
	const char *family; /* without tether_slowpath_ and _total */
	const char *status; /* answered_total's label, or NULL */
	const char *help;
};

#define SLOW(field) offsetof(struct slowpath_stats, field)
static const struct slowpath_field slowpath_fields[] = {
	{ SLOW(received), "received", NULL,
	  "Datagrams the slow path read from the service sockets (requests the XDP program "
	  "handed up)." },
	{ SLOW(held), "held", NULL, "Requests queued to wait for a warm container." },
	{ SLOW(forwarded), "forwarded", NULL,
	  "Requests the slow path sent to a container (held ones, or to one warm since)." },
	{ SLOW(no_capacity), "answered", "no_capacity", NULL },
	{ SLOW(container_gone), "answered", "container_gone", NULL },
	{ SLOW(overloaded), "answered", "overloaded", NULL },
	{ SLOW(malformed), "answered", "malformed", NULL },
	{ SLOW(too_big), "answered", "too_big", NULL },
	{ SLOW(send_errors), "send_errors", NULL,
	  "Answers or forwards of the slow path the kernel refused." },
	{ SLOW(capacity_requests), "capacity_requests", NULL,
	  "capacity_needed events the slow path emitted (asking for a container)." },
	{ SLOW(held_full), "held_full", NULL,
	  "Requests held because the XDP program found every container of the function "
	  "(or a STRICT request's own) at its concurrency limit." },
};
#undef SLOW
_Static_assert(sizeof(slowpath_fields) / sizeof(slowpath_fields[0]) ==
		       sizeof(struct slowpath_stats) / sizeof(__u64),
	       "a counter of struct slowpath_stats is not in /metrics (metrics.c)");

/* ---- lifecycle events ---------------------------------------------------------- */

static const char *const event_types[] = {
	"backend_up",	   "backend_draining",	 "backend_down",       "backend_removed",
	"container_added", "container_up",	 "container_draining", "container_gone",
	"capacity_needed",
};
#define EVENT_TYPES (sizeof(event_types) / sizeof(event_types[0]))

struct metrics {
	struct tetherd *d;
	struct metrics_config config;
	struct metrics_http *http;
	struct sweep *sweep;
	struct function_series *functions;
	__u64 events[EVENT_TYPES + 1]; /* the last: any other type */
	GHashTable *requests;          /* "verb noun result" -> __u64 * */
	double started_unix;
	char kernel[128];
	GArray *rows; /* struct function_row, reused */
	GArray *inputs; /* struct function_input, reused */
	GHashTable *input_index; /* function id -> struct function_input, being collected */
};

struct metrics *metrics_new(struct tetherd *d, const struct metrics_config *config)
{
	struct metrics *m = g_new0(struct metrics, 1);
	struct utsname uts;
	struct timespec now;
	const char *verb, *noun;

	m->d = d;
	m->config = *config;
	m->sweep = sweep_new(&d->lc);
	if (!m->sweep) {
		g_free(m);
		return NULL;
	}
	m->functions = function_series_new(config->functions);
	m->requests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	m->rows = g_array_new(FALSE, FALSE, sizeof(struct function_row));
	m->inputs = g_array_new(FALSE, FALSE, sizeof(struct function_input));
	m->input_index = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	clock_gettime(CLOCK_REALTIME, &now);
	m->started_unix = now.tv_sec + now.tv_nsec / NS_PER_S;
	snprintf(m->kernel, sizeof(m->kernel), "%s", uname(&uts) ? "unknown" : uts.release);
	/* Every request's ok series exists from the start, at 0. */
	for (size_t i = 0; commands_request(i, &verb, &noun); i++)
		g_hash_table_insert(m->requests, g_strdup_printf("%s %s ok", verb, noun),
				    g_new0(__u64, 1));
	g_hash_table_insert(m->requests, g_strdup("auth agent ok"), g_new0(__u64, 1));
	g_hash_table_insert(m->requests, g_strdup("watch event ok"), g_new0(__u64, 1));
	return m;
}

int metrics_listen(struct metrics *m, char *why, size_t size)
{
	m->http = metrics_http_new(m, m->d->loop, m->config.listen, why, size);
	return m->http ? 0 : -EINVAL;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	metrics_http_free(m->http);
	sweep_free(m->sweep);
	function_series_free(m->functions);
	g_hash_table_destroy(m->requests);
	g_array_free(m->rows, TRUE);
	g_array_free(m->inputs, TRUE);
	g_hash_table_destroy(m->input_index);
	g_free(m);
}

/* ---- counting ------------------------------------------------------------------ */

/* A gone container's forwarded requests become its function's retired
 * count; the sweep gives back what it counted of it. */
static void container_gone(struct metrics *m, const char *line)
{
	unsigned int slot;
	unsigned long long function_id;
	struct container_counters counted = {};
	const char *at = strstr(line, " container=");

	if (!at || sscanf(at, " container=%u function=%llu", &slot, &function_id) != 2 ||
	    slot >= TETHER_MAX_CONTAINERS)
		return;
	container_stats_read(&m->d->dp, slot, &counted);
	function_series_retire(m->functions, function_id, counted.packets, counted.bytes);
	sweep_forget(m->sweep, slot, m->d->lc.containers[slot].generation, function_id);
}

void metrics_event(struct metrics *m, const char *line)
{
	size_t i;

	if (!m || strncmp(line, "event=", 6))
		return;
	const char *type = line + 6;
	size_t len = strcspn(type, " ");

	for (i = 0; i < EVENT_TYPES; i++)
		if (strlen(event_types[i]) == len && !strncmp(type, event_types[i], len))
			break;
	m->events[i]++;
	if (i < EVENT_TYPES && !strcmp(event_types[i], "container_gone"))
		container_gone(m, line);
}

static bool known_request(const char *verb, const char *noun)
{
	const char *v, *n;

	if ((!strcmp(verb, "auth") && !strcmp(noun, "agent")) ||
	    (!strcmp(verb, "watch") && (!strcmp(noun, "event") || !strcmp(noun, "trace"))))
		return true;
	for (size_t i = 0; commands_request(i, &v, &n); i++)
		if (!strcmp(verb, v) && !strcmp(noun, n))
			return true;
	return false;
}

/* "ok", an error code of the protocol, or "other". */
static const char *answer_result(const char *answer)
{
	if (!strncmp(answer, "ok", 2) && (answer[2] == '\n' || !answer[2]))
		return "ok";
	if (strncmp(answer, "error ", 6))
		return "other";
	const char *code = answer + 6;
	size_t len = strcspn(code, ":");

	for (enum proto_error e = PROTO_BAD_REQUEST; e <= PROTO_UNAVAILABLE; e++)
		if (strlen(proto_error_code(e)) == len && !strncmp(code, proto_error_code(e), len))
			return proto_error_code(e);
	return "other";
}

void metrics_request(struct metrics *m, const char *verb, const char *noun, const char *answer)
{
	if (!m)
		return;
	if (!verb || !noun)
		verb = noun = "none";
	else if (!known_request(verb, noun))
		verb = noun = "unknown";
	char *key = g_strdup_printf("%s %s %s", verb, noun, answer_result(answer));
	__u64 *count = g_hash_table_lookup(m->requests, key);

	if (!count) {
		count = g_new0(__u64, 1);
		g_hash_table_insert(m->requests, key, count);
	} else {
		g_free(key);
	}
	(*count)++;
}

/* ---- the sweep ----------------------------------------------------------------- */

bool metrics_prepare(struct metrics *m, __u64 max_age_ns, __u64 budget_ns)
{
	const struct sweep_timing *timing = sweep_timing(m->sweep);

	/* A sweep that cost much serves longer: scrapes never keep tetherd
	 * reading more than a sixth of its time. */
	if (max_age_ns && sweep_done(m->sweep) &&
	    monotonic_ns() - timing->finished_ns <= MAX(max_age_ns, 5 * timing->busy_ns))
		return true;
	if (!sweep_running(m->sweep))
		sweep_start(m->sweep);
	return sweep_step(m->sweep, budget_ns);
}

bool metrics_continue(struct metrics *m, __u64 budget_ns)
{
	return sweep_step(m->sweep, budget_ns);
}

/* ---- writing ------------------------------------------------------------------- */

#define LABELS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void u64_text(char *out, size_t size, __u64 value)
{
	snprintf(out, size, "%llu", (unsigned long long)value);
}

static void write_build(struct metrics *m, struct expo *e)
{
	char libbpf[32];

	snprintf(libbpf, sizeof(libbpf), "%s", libbpf_version_string());
	expo_family(e, "tether_build_info", EXPO_GAUGE,
		    "Always 1: tetherd's version, the libbpf it runs with and the kernel.");
	expo_sample_u64(e, LABELS("version", TETHER_RELEASE_VERSION, "libbpf", libbpf, "kernel",
				  m->kernel),
			1);
	expo_family(e, "tether_start_time_seconds", EXPO_GAUGE,
		    "When this tetherd started, in seconds since the Unix epoch.");
	expo_sample(e, NULL, m->started_unix);
}

/* One family of counters of struct tether_stats, a sample per field. */
static void write_counters(struct expo *e, const struct tether_stats *stats, const char *family,
			   const char *help, const char *label, const struct counter_field *fields,
			   size_t count)
{
	expo_family(e, family, EXPO_COUNTER, help);
	for (size_t i = 0; i < count; i++)
		expo_sample_u64(e, LABELS(label, fields[i].label),
				*(const __u64 *)((const char *)stats + fields[i].offset));
}

static void write_dataplane(struct metrics *m, struct expo *e)
{
	struct tether_stats stats;

	if (stats_read(&m->d->dp, &stats))
		return; /* the families are left out rather than given wrong values */
	write_counters(e, &stats, "tether_dataplane_decisions_total",
		       "Decisions of the XDP program, summed over CPUs: one per packet for a "
		       "service address (token_*, key_*, flow_pick, no_capacity and strict_gone "
		       "for requests; malformed, fragment), pass for packets not for one.",
		       "decision", decisions, COUNT_OF(decisions));
	write_counters(e, &stats, "tether_dataplane_faults_total",
		       "Frames the XDP program dropped on their way out, on top of their decision: "
		       "no_route (the backend's interface is not in tx_ports, or, for a routed "
		       "backend, the FIB has no route: to the slow path), retag_failed (the "
		       "frame could not get the backend's VLAN tagging), encap_failed (no "
		       "--encap-source of the routed backend's family, or the frame could not "
		       "grow).",
		       "fault", faults, COUNT_OF(faults));
	write_counters(e, &stats, "tether_dataplane_shed_total",
		       "Requests for the slow path over its budget (--admit-*), on top of their "
		       "decision: answered OVERLOADED by the XDP program, or dropped over the cap "
		       "on such answers (--shed-answer-rate).",
		       "outcome", shed, COUNT_OF(shed));
	write_counters(e, &stats, "tether_dataplane_load_total",
		       "Concurrency limits in the XDP program: token_overflow and key_overflow "
		       "(the asked-for container full, sent to a sibling with room), full (no "
		       "container with room: to the slow path), lost_fixed (requests found lost "
		       "on their way, taken off the in-flight count).",
		       "event", load_events, COUNT_OF(load_events));
	write_counters(e, &stats, "tether_dataplane_completions_total",
		       "Datagrams to the completion address, consumed by the XDP program: done, "
		       "done_stale (nothing new), done_forged (no live container of its function, "
		       "or the wrong interface), alive (a backend's deadline moved), "
		       "alive_replayed, alive_forged, completion_bad (neither DONE nor ALIVE).",
		       "result", completions, COUNT_OF(completions));
	write_counters(e, &stats, "tether_dataplane_encap_total",
		       "Requests for routed backends, on top of their decision: encap_vxlan and "
		       "encap_ipip (sent encapsulated), fib_no_route and fib_no_neigh (no route, "
		       "or the next hop unresolved: to the slow path), too_big (over the egress "
		       "MTU once encapsulated: answered TOO_BIG), encap_slow (to the slow path: for "
		       "VXLAN over IPv6, an IPv4 request without a UDP checksum or an IP packet "
		       "longer than its UDP datagram).",
		       "event", encap_events, COUNT_OF(encap_events));
}

static void write_states(struct metrics *m, struct expo *e)
{
	const struct lifecycle *lc = &m->d->lc;
	__u64 containers[CONTAINER_GONE + 1] = {}, backends[BACKEND_DOWN + 1] = {};
	GHashTableIter iter;
	gpointer value;
	__u64 pools = 0;

	for (__u32 id = 1; id < TETHER_MAX_BACKENDS; id++) {
		const struct backend *b = &lc->backends[id];

		if (!b->in_use)
			continue;
		backends[lifecycle_backend_down(lc, b) ? BACKEND_DOWN
						       : MIN(b->record.state, (__u32)BACKEND_DOWN)]++;
	}
	g_hash_table_iter_init(&iter, lc->functions);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		pools += ((const struct function *)value)->pool_size > 0;
	/* As the sweep counted them (a scan of a million containers is its job). */
	for (enum container_state state = CONTAINER_STARTING; state <= CONTAINER_DRAINING; state++)
		containers[state] = sweep_containers(m->sweep, state);
	expo_family(e, "tether_backends", EXPO_GAUGE,
		    "Backends (VMs) by state; a backend past its heartbeat deadline is down.");
	expo_sample_u64(e, LABELS("state", "up"), backends[BACKEND_UP]);
	expo_sample_u64(e, LABELS("state", "draining"), backends[BACKEND_DRAINING]);
	expo_sample_u64(e, LABELS("state", "down"), backends[BACKEND_DOWN]);
	expo_family(e, "tether_containers", EXPO_GAUGE,
		    "Containers by state, all functions (as of the last sweep).");
	expo_sample_u64(e, LABELS("state", "starting"), containers[CONTAINER_STARTING]);
	expo_sample_u64(e, LABELS("state", "warm"), containers[CONTAINER_WARM]);
	expo_sample_u64(e, LABELS("state", "draining"), containers[CONTAINER_DRAINING]);

	__u64 live = containers[CONTAINER_STARTING] + containers[CONTAINER_WARM] +
		     containers[CONTAINER_DRAINING];
	__u64 in_use = backends[BACKEND_UP] + backends[BACKEND_DRAINING] + backends[BACKEND_DOWN];

	expo_family(e, "tether_map_entries", EXPO_GAUGE,
		    "Entries in use in the data plane's maps: containers (slots), affinity (the "
		    "LRU map of learned keys, counted by the last sweep), backends, pools "
		    "(functions with a pool table).");
	expo_sample_u64(e, LABELS("map", "containers"), live);
	if (sweep_done(m->sweep))
		expo_sample_u64(e, LABELS("map", "affinity"), sweep_affinity_entries(m->sweep));
	expo_sample_u64(e, LABELS("map", "backends"), in_use);
	expo_sample_u64(e, LABELS("map", "pools"), pools);
	expo_family(e, "tether_map_max_entries", EXPO_GAUGE,
		    "What those maps hold at most (a full affinity map evicts its least "
		    "recently used entry for each new key).");
	expo_sample_u64(e, LABELS("map", "containers"), TETHER_MAX_CONTAINERS);
	expo_sample_u64(e, LABELS("map", "affinity"), TETHER_MAX_AFFINITY);
	expo_sample_u64(e, LABELS("map", "backends"), TETHER_MAX_BACKENDS - 1);
	expo_sample_u64(e, LABELS("map", "pools"), TETHER_MAX_FUNCTIONS);
}

/* ---- per function ---- */

static struct function_input *input_for(struct metrics *m, __u64 function_id)
{
	struct function_input *in = g_hash_table_lookup(m->input_index, &function_id);

	if (!in) {
		in = g_new0(struct function_input, 1);
		in->function_id = function_id;
		g_hash_table_insert(m->input_index, &in->function_id, in);
	}
	return in;
}

static bool active_input(const struct function_input *in)
{
	return in->warm || in->starting || in->draining || in->waiting;
}

static void add_waiting(void *ctx, __u64 function_id, __u32 waiting)
{
	struct metrics *m = ctx;

	input_for(m, function_id)->waiting = waiting;
}

/* Every function with containers or held requests: its containers and
 * their requests as the last sweep read them, what the slow path holds now. */
static void collect_functions(struct metrics *m)
{
	GHashTableIter iter;
	gpointer key, value;

	g_hash_table_remove_all(m->input_index);
	g_hash_table_iter_init(&iter, sweep_functions(m->sweep));
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		const struct sweep_sums *sums = value;
		struct function_input *in = input_for(m, *(const __u64 *)key);

		in->packets = sums->packets;
		in->bytes = sums->bytes;
		in->warm = sums->warm;
		in->starting = sums->starting;
		in->draining = sums->draining;
	}
	if (m->d->slowpath)
		slowpath_each_waiting(m->d->slowpath, add_waiting, m);
	g_array_set_size(m->inputs, 0);
	g_hash_table_iter_init(&iter, m->input_index);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		if (active_input(value))
			g_array_append_vals(m->inputs, value, 1);
}

static void write_functions(struct metrics *m, struct expo *e)
{
	static const char *const states[] = { "warm", "starting", "draining" };
	char id[24];

	collect_functions(m);
	function_series_update(m->functions, (const struct function_input *)m->inputs->data,
			       m->inputs->len, m->rows);
	expo_family(e, "tether_functions", EXPO_GAUGE,
		    "Functions with containers or requests held for them.");
	expo_sample_u64(e, NULL, m->inputs->len);
	expo_family(e, "tether_function_series", EXPO_GAUGE,
		    "Functions with series of their own (function=\"ID\"), at most "
		    "--metrics-functions; the others are summed into function=\"other\".");
	expo_sample_u64(e, NULL, function_series_labelled(m->functions));
	expo_family(e, "tether_function_containers", EXPO_GAUGE,
		    "Containers of a function by state, as of the last sweep (function=\"other\": "
		    "the functions without series of their own, summed).");
	for (guint i = 0; i < m->rows->len; i++) {
		const struct function_row *row = &g_array_index(m->rows, struct function_row, i);
		const __u64 values[] = { row->warm, row->starting, row->draining };

		if (row->function_id == FUNCTION_OTHER)
			snprintf(id, sizeof(id), "other");
		else
			u64_text(id, sizeof(id), row->function_id);
		for (size_t s = 0; s < 3; s++)
			expo_sample_u64(e, LABELS("function", id, "state", states[s]), values[s]);
	}
#define PER_FUNCTION(name, type, help, field)                                                \
	expo_family(e, name, type, help);                                                    \
	for (guint i = 0; i < m->rows->len; i++) {                                           \
		const struct function_row *row = &g_array_index(m->rows, struct function_row, i); \
                                                                                             \
		if (row->function_id == FUNCTION_OTHER)                                      \
			snprintf(id, sizeof(id), "other");                                   \
		else                                                                         \
			u64_text(id, sizeof(id), row->function_id);                          \
		expo_sample_u64(e, LABELS("function", id), row->field);                      \
	}
	PER_FUNCTION("tether_function_waiting_requests", EXPO_GAUGE,
		     "Requests of a function the slow path holds now, waiting for a warm "
		     "container.",
		     waiting);
	PER_FUNCTION("tether_function_forwarded_requests_total", EXPO_COUNTER,
		     "Requests the XDP program forwarded to a function's containers (from the "
		     "per-container counters; the live ones as of the last sweep), since tetherd "
		     "started.",
		     packets);
	PER_FUNCTION("tether_function_forwarded_bytes_total", EXPO_COUNTER,
		     "Bytes of those requests, as they left the router.", bytes);
#undef PER_FUNCTION
}

/* ---- slow path, lifecycle, control ---- */

static void write_slowpath(struct metrics *m, struct expo *e)
{
	struct slowpath_stats stats = {};
	const struct slowpath_config *config = &m->d->config.slowpath;

	if (m->d->slowpath)
		slowpath_stats(m->d->slowpath, &stats);
	for (size_t i = 0; i < sizeof(slowpath_fields) / sizeof(slowpath_fields[0]); i++) {
		const struct slowpath_field *f = &slowpath_fields[i];
		__u64 value = *(const __u64 *)((const char *)&stats + f->offset);
		char name[96];

		snprintf(name, sizeof(name), "tether_slowpath_%s_total", f->family);
		if (!f->status) {
			expo_family(e, name, EXPO_COUNTER, f->help);
			expo_sample_u64(e, NULL, value);
			continue;
		}
		if (i == 0 || !slowpath_fields[i - 1].status)
			expo_family(e, name, EXPO_COUNTER,
				    "Requests the slow path answered itself, by the status it sent "
				    "(no_capacity after the hold time, container_gone for STRICT, "
				    "overloaded when its queues are full, malformed).");
		expo_sample_u64(e, LABELS("status", f->status), value);
	}
	expo_family(e, "tether_slowpath_queue_depth", EXPO_GAUGE,
		    "Requests the slow path holds now, all functions.");
	expo_sample_u64(e, NULL, m->d->slowpath ? slowpath_waiting(m->d->slowpath, 0) : 0);
	expo_family(e, "tether_slowpath_queue_limit", EXPO_GAUGE,
		    "Requests the slow path holds at most: per function (--queue) and in all.");
	expo_sample_u64(e, LABELS("scope", "function"), config->queue_per_function);
	expo_sample_u64(e, LABELS("scope", "total"), config->queue_total);
}

static void write_events(struct metrics *m, struct expo *e)
{
	expo_family(e, "tether_lifecycle_events_total", EXPO_COUNTER,
		    "Lifecycle events tetherd emitted (what tetherctl watch shows), by type, since "
		    "it started.");
	for (size_t i = 0; i < EVENT_TYPES; i++)
		expo_sample_u64(e, LABELS("type", event_types[i]), m->events[i]);
	if (m->events[EVENT_TYPES])
		expo_sample_u64(e, LABELS("type", "other"), m->events[EVENT_TYPES]);
}

static gint compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void write_requests(struct metrics *m, struct expo *e)
{
	guint n;
	const char **keys = (const char **)g_hash_table_get_keys_as_array(m->requests, &n);

	qsort(keys, n, sizeof(*keys), compare_strings);
	expo_family(e, "tether_control_requests_total", EXPO_COUNTER,
		    "Control requests (socket and TCP) by verb, noun and result (ok or the error "
		    "code), since tetherd started; verb=\"unknown\" for requests the protocol does "
		    "not have, \"none\" for lines that did not parse.");
	for (guint i = 0; i < n; i++) {
		char verb[32], noun[32], result[32];

		if (sscanf(keys[i], "%31s %31s %31s", verb, noun, result) == 3)
			expo_sample_u64(e, LABELS("verb", verb, "noun", noun, "result", result),
					*(__u64 *)g_hash_table_lookup(m->requests, keys[i]));
	}
	g_free(keys);
}

/* ---- the fleet ---- */

static void write_fleet(struct metrics *m, struct expo *e)
{
	struct fleet_metrics fm;
	struct timespec now;
	__u64 newest;

	if (!m->d->fleet)
		return;
	fleet_read_metrics(m->d->fleet, &fm);
	clock_gettime(CLOCK_REALTIME, &now);
	__u64 now_ms = (__u64)now.tv_sec * 1000 + now.tv_nsec / 1000000;

	newest = fm.applied_revision;
	for (size_t i = 0; i < fm.n_routers; i++)
		newest = MAX(newest, fm.routers[i].applied_revision);
	expo_family(e, "tether_fleet_synced", EXPO_GAUGE,
		    "1 when this router has read the fleet's whole state from the store and "
		    "follows its watch; 0 while it reads it (at start, after a compaction).");
	expo_sample_u64(e, LABELS("fleet", fm.fleet, "router", fm.router), fm.synced);
	expo_family(e, "tether_fleet_watch_connected", EXPO_GAUGE,
		    "1 while this router's watch on the store is connected.");
	expo_sample_u64(e, LABELS("fleet", fm.fleet, "router", fm.router), fm.watching);
	expo_family(e, "tether_fleet_applied_revision", EXPO_GAUGE,
		    "The store revision of the newest change to the fleet's state a router has "
		    "applied: this router's now, the others' as their records last came through "
		    "the watch (each writes it every second while it moves).");
	expo_sample_u64(e, LABELS("fleet", fm.fleet, "router", fm.router), fm.applied_revision);
	for (size_t i = 0; i < fm.n_routers; i++)
		expo_sample_u64(e, LABELS("fleet", fm.fleet, "router", fm.routers[i].name),
				fm.routers[i].applied_revision);
	expo_family(e, "tether_fleet_lag_revisions", EXPO_GAUGE,
		    "Revisions a router is behind the newest change this router knows of (0: "
		    "caught up).");
	expo_sample_u64(e, LABELS("fleet", fm.fleet, "router", fm.router),
			newest - fm.applied_revision);
	for (size_t i = 0; i < fm.n_routers; i++)
		expo_sample_u64(e, LABELS("fleet", fm.fleet, "router", fm.routers[i].name),
				newest - fm.routers[i].applied_revision);
	expo_family(e, "tether_fleet_router_record_age_seconds", EXPO_GAUGE,
		    "Age of another router's record as this router last saw it (a router that "
		    "stops writing it is gone once its lease ends, 10 s).");
	for (size_t i = 0; i < fm.n_routers; i++)
		expo_sample(e, LABELS("fleet", fm.fleet, "router", fm.routers[i].name),
			    now_ms > fm.routers[i].updated_unix_ms
				    ? (now_ms - fm.routers[i].updated_unix_ms) / 1e3
				    : 0);
	expo_family(e, "tether_fleet_resyncs_total", EXPO_COUNTER,
		    "Full reads of the fleet's state after the first (the watch was compacted "
		    "past).");
	expo_sample_u64(e, LABELS("fleet", fm.fleet, "router", fm.router), fm.resyncs);
	expo_family(e, "tether_fleet_bad_records_total", EXPO_COUNTER,
		    "Keys of the store that did not decode (logged and skipped).");
	expo_sample_u64(e, LABELS("fleet", fm.fleet, "router", fm.router), fm.bad_records);
	expo_family(e, "tether_fleet_pending_changes", EXPO_GAUGE,
		    "Lifecycle requests this router wrote through to the store and has not answered "
		    "yet.");
	expo_sample_u64(e, LABELS("fleet", fm.fleet, "router", fm.router), fm.pending_changes);
}

static void write_sweep(struct metrics *m, struct expo *e)
{
	const struct sweep_timing *timing = sweep_timing(m->sweep);
	const char *what;
	int err = sweep_error(m->sweep, &what);

	expo_family(e, "tether_metrics_sweep_duration_seconds", EXPO_GAUGE,
		    "How long the last sweep of the per-container counters and the affinity map "
		    "took, from start to end (it reads in slices between tetherd's other work).");
	expo_sample(e, NULL, timing->finished_ns > timing->started_ns
				     ? (timing->finished_ns - timing->started_ns) / NS_PER_S
				     : 0);
	expo_family(e, "tether_metrics_sweep_busy_seconds", EXPO_GAUGE,
		    "Time the last sweep spent reading (the sum of its slices).");
	expo_sample(e, NULL, timing->busy_ns / NS_PER_S);
	expo_family(e, "tether_metrics_sweep_steps", EXPO_GAUGE,
		    "Turns of tetherd's loop the last sweep took (its slices run a few milliseconds "
		    "each; the loop's other work runs between them).");
	expo_sample_u64(e, NULL, timing->steps);
	expo_family(e, "tether_metrics_sweep_entries", EXPO_GAUGE,
		    "Map entries the last sweep read (per-CPU counter entries of live containers, "
		    "affinity entries).");
	expo_sample_u64(e, NULL, timing->entries_read);
	expo_family(e, "tether_metrics_sweep_errors", EXPO_GAUGE,
		    "1 when the last sweep could not read a map (its figures are partial; "
		    "tetherd's log says why).");
	expo_sample_u64(e, NULL, err != 0);
	if (err)
		fprintf(stderr, "tetherd: metrics: reading %s failed: %s\n", what, strerror(err));
}

int metrics_write(struct metrics *m, GString *out, char *why, size_t size)
{
	struct expo e;
	gsize start = out->len;

	expo_init(&e, out);
	write_build(m, &e);
	write_dataplane(m, &e);
	write_states(m, &e);
	write_functions(m, &e);
	write_slowpath(m, &e);
	write_events(m, &e);
	write_requests(m, &e);
	write_fleet(m, &e);
	write_sweep(m, &e);
	if (e.failed) {
		snprintf(why, size, "%s", e.why);
		g_string_truncate(out, start);
	}
	expo_free(&e);
	return e.failed ? -EINVAL : 0;
}
