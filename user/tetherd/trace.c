// SPDX-License-Identifier: MIT
/* The packet trace's feed (trace.h). */
#define _GNU_SOURCE
#include "trace.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "control.h"

struct trace_feed {
	struct tetherd *d;
	struct ring_buffer *ring;
	int fd;            /* the ring's epoll fd, on d->loop */
	bool on;           /* trace_config enabled, as written last */
	__u64 lost_seen;   /* the program's lost count at the last look */
	__s64 realtime_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC, for wall times */
};

static __s64 clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (__s64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct trace_feed *feed = ctx;

	if (size < sizeof(struct trace_record))
		return 0;
	control_trace(feed->d->control, data);
	return 0;
}

static void on_ring(void *ctx, int fd, uint32_t events)
{
	struct trace_feed *feed = ctx;

	(void)fd;
	(void)events;
	/* At most what is there now: a flood does not keep the loop here. */
	ring_buffer__consume(feed->ring);
}

static int switch_off(struct trace_feed *feed)
{
	int err = trace_config_set(&feed->d->dp, &(struct trace_config){ 0 });

	if (!err)
		feed->on = false;
	return err;
}

struct trace_feed *trace_feed_new(struct tetherd *d)
{
	struct trace_feed *feed = g_new0(struct trace_feed, 1);
	struct trace_config stale;

	feed->d = d;
	feed->fd = -1;
	if (!trace_config_get(&d->dp, &stale) && stale.enabled)
		fprintf(stderr, "tetherd: a packet trace left on by an earlier tetherd is "
				"switched off\n");
	int err = switch_off(feed);

	feed->ring = err ? NULL : ring_buffer__new(trace_ring_fd(&d->dp), on_record, feed, NULL);
	if (!feed->ring) {
		fprintf(stderr, "tetherd: cannot read the packet trace's ring buffer: %s\n",
			strerror(err ? -err : errno));
		g_free(feed);
		return NULL;
	}
	feed->fd = ring_buffer__epoll_fd(feed->ring);
	if (loop_add(d->loop, feed->fd, EPOLLIN, on_ring, feed)) {
		fprintf(stderr, "tetherd: cannot watch the packet trace's ring buffer\n");
		ring_buffer__free(feed->ring);
		g_free(feed);
		return NULL;
	}
	trace_lost_read(&d->dp, &feed->lost_seen);
	feed->realtime_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
	return feed;
}

void trace_feed_free(struct trace_feed *feed)
{
	if (!feed)
		return;
	switch_off(feed);
	loop_remove(feed->d->loop, feed->fd);
	ring_buffer__free(feed->ring);
	g_free(feed);
}

enum proto_error trace_filter_parse(const struct proto_request *req, struct trace_ask *out,
				    char *message, size_t size)
{
	static const char *const keys[] = { "function", "key", "container", NULL };
	enum proto_error err;

	memset(out, 0, sizeof(*out));
	if ((err = proto_check_keys(req, keys, message, size)) ||
	    (err = proto_get_function(req, "function", 0, &out->function_id, message, size)) ||
	    (err = proto_get_u64(req, "key", 0, &out->routing_key, message, size)) ||
	    (err = proto_get_u32(req, "container", 0, &out->slot, message, size)))
		return err;
	if (proto_get(req, "container") && out->slot >= TETHER_MAX_CONTAINERS) {
		snprintf(message, size, "container=%u is no container handle: handles are below %u",
			 out->slot, TETHER_MAX_CONTAINERS);
		return PROTO_BAD_ARGUMENT;
	}
	if (proto_get(req, "function"))
		out->filters |= TRACE_FILTER_FUNCTION;
	if (proto_get(req, "key"))
		out->filters |= TRACE_FILTER_KEY;
	if (proto_get(req, "container"))
		out->filters |= TRACE_FILTER_CONTAINER;
	return PROTO_OK;
}

/* The same test as bpf/trace.h trace_wanted(). */
bool trace_filter_matches(const struct trace_ask *f, const struct trace_record *rec)
{
	bool header = rec->has & TRACE_HAS_HEADER;

	if ((f->filters & TRACE_FILTER_FUNCTION) && (!header || rec->function_id != f->function_id))
		return false;
	if ((f->filters & TRACE_FILTER_KEY) &&
	    (!header || !(rec->flags & TETHER_F_KEY) || rec->routing_key != f->routing_key))
		return false;
	if ((f->filters & TRACE_FILTER_CONTAINER) &&
	    !((rec->has & TRACE_HAS_CONTAINER) && rec->slot == f->slot) &&
	    !((rec->has & TRACE_HAS_TOKEN) && rec->token_slot == f->slot))
		return false;
	return true;
}

int trace_feed_apply(struct trace_feed *feed, const struct trace_ask *filters, int count)
{
	struct trace_config config = { .enabled = count > 0 };
	int err;

	if (!feed)
		return -ENODEV;
	if (count == 0)
		return feed->on ? switch_off(feed) : 0;
	bool same = true;

	for (int i = 1; i < count && same; i++)
		same = !memcmp(&filters[i], &filters[0], sizeof(filters[0]));
	if (same) {
		config.filters = filters[0].filters;
		config.function_id = filters[0].function_id;
		config.routing_key = filters[0].routing_key;
		config.slot = filters[0].slot;
	}
	if ((err = trace_config_set(&feed->d->dp, &config)))
		return err;
	feed->on = true;
	return 0;
}

__u64 trace_feed_lost(struct trace_feed *feed)
{
	__u64 lost = 0, fresh;

	if (!feed)
		return 0;
	/* The wall clock may have been set since (NTP): times follow it. */
	feed->realtime_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
	if (feed->on)
		ring_buffer__consume(feed->ring);
	if (trace_lost_read(&feed->d->dp, &lost))
		return 0;
	fresh = lost - feed->lost_seen;
	feed->lost_seen = lost;
	return fresh;
}

static const char *action_name(__u32 action)
{
	switch (action) {
	case XDP_DROP:
		return "drop";
	case XDP_PASS:
		return "pass";
	case XDP_TX:
		return "tx";
	case XDP_REDIRECT:
		return "redirect";
	default:
		return "aborted";
	}
}

/* What the slow path is told (the status byte it gets), or the answer. */
static const char *status_of(const struct trace_record *rec)
{
	__u64 r = rec->reasons;
	int strict = trace_reason_bit("strict_gone"), full = trace_reason_bit("full");
	int none = trace_reason_bit("no_capacity");

	if (rec->decision == TRACE_SHED)
		return "overloaded";
	if (rec->decision != TRACE_SLOW_PATH && rec->decision != TRACE_SHED_DROPPED)
		return NULL;
	if (none >= 0 && r & (1ull << none))
		return "no_capacity";
	if (strict >= 0 && r & (1ull << strict))
		return "container_gone";
	if (full >= 0 && r & (1ull << full))
		return "overloaded";
	return NULL;
}

static void format_flags(__u8 flags, char *out, size_t size)
{
	static const struct { __u8 bit; const char *name; } names[] = {
		{ TETHER_F_KEY, "key" },	{ TETHER_F_TOKEN, "token" },
		{ TETHER_F_STRICT, "strict" },	{ TETHER_F_DONE, "done" },
		{ TETHER_F_ALIVE, "alive" },	{ TETHER_F_STAMPED, "stamped" },
		{ TETHER_F_REPLY, "reply" },
	};
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (flags & names[i].bit)
			used += snprintf(out + used, size - used, "%s%s", used ? "," : "",
					 names[i].name);
	if (!used)
		snprintf(out, size, "none");
}

static void format_client(const struct trace_record *rec, char *out, size_t size)
{
	static const __u8 v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char addr[INET6_ADDRSTRLEN];

	if (!memcmp(rec->client_addr, v4mapped, sizeof(v4mapped))) {
		inet_ntop(AF_INET, rec->client_addr + 12, addr, sizeof(addr));
		snprintf(out, size, "%s:%u", addr, rec->client_port);
	} else {
		inet_ntop(AF_INET6, rec->client_addr, addr, sizeof(addr));
		snprintf(out, size, "[%s]:%u", addr, rec->client_port);
	}
}

static void record_backend(struct tetherd *d, __u32 id, struct proto_writer *w)
{
	if (id && id < TETHER_MAX_BACKENDS && d->lc.backends[id].in_use)
		proto_record_str(w, "backend", d->lc.backends[id].meta.name);
	proto_record_u64(w, "backend_id", id);
}

void trace_format(struct tetherd *d, const struct trace_record *rec, struct proto_writer *w)
{
	char reasons[512] = "", text[128];
	size_t used = 0;
	const char *status = status_of(rec);
	__s64 wall_ns = (__s64)rec->time_ns + (d->trace ? d->trace->realtime_ns : 0);

	for (unsigned i = 0; i < TRACE_MAX_COUNTERS; i++)
		if ((rec->reasons & (1ull << i)) && trace_reason_name(i))
			used += snprintf(reasons + used, sizeof(reasons) - used, "%s%s",
					 used ? "," : "", trace_reason_name(i));
	proto_record_begin(w);
	proto_record_str(w, "trace", trace_decision_name(rec->decision));
	proto_record_str(w, "reason", used ? reasons : "none");
	if (status)
		proto_record_str(w, "status", status);
	if (rec->decision == TRACE_MALFORMED)
		proto_record_str(w, "check", trace_malformed_name(rec->malformed));
	proto_record_u64(w, "time_us", wall_ns > 0 ? (__u64)wall_ns / 1000 : 0);
	proto_record_u64(w, "cpu", rec->cpu);
	proto_record_u64(w, "ifindex", rec->ifindex);
	format_client(rec, text, sizeof(text));
	proto_record_str(w, "client", text);
	if (rec->decision == TRACE_ALIVE) {
		proto_record_u64(w, "seq", rec->routing_key); /* function_id: the backend's id */
	} else if (rec->has & TRACE_HAS_HEADER) {
		proto_record_u64(w, "function", rec->function_id);
		format_flags(rec->flags, text, sizeof(text));
		proto_record_str(w, "flags", text);
		if (rec->decision == TRACE_DONE) {
			proto_record_u64(w, "finished", rec->routing_key);
			proto_record_u64(w, "outcome", rec->status);
		} else if (rec->flags & TETHER_F_KEY) {
			proto_record_u64(w, "key", rec->routing_key);
		}
		proto_record_u64(w, "request_id", rec->request_id);
	}
	if (rec->has & TRACE_HAS_TOKEN) {
		proto_record_u64(w, "token_container", rec->token_slot);
		proto_record_u64(w, "token_generation", rec->token_generation);
	}
	if (rec->has & TRACE_HAS_CONTAINER) {
		proto_record_u64(w, "container", rec->slot);
		proto_record_u64(w, "generation", rec->generation);
		record_backend(d, rec->backend_id, w);
	} else if (rec->has & TRACE_HAS_BACKEND) {
		record_backend(d, rec->backend_id, w);
	}
	proto_record_str(w, "action", action_name(rec->action));
	proto_record_end(w);
}
