// SPDX-License-Identifier: MIT
/* tetherd: loads Tether onto an edge host (or adopts what an earlier tetherd
 * left pinned), serves the control socket, follows container lifecycle and
 * runs the slow path. See docs/protocol.md and `tetherd --help`. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "config.h"
#include "control.h"
#include "martians.h"
#include "privileges.h"
#include "tether_xdp.skel.h"
#include "tetherd.h"
#include "trace.h"

#define TICK_MS 50

static __u64 clock_monotonic(void *ctx)
{
	(void)ctx;
	return monotonic_ns();
}

/* A backend came up: are replies through this host accepted on its link? */
static void check_martians(struct tetherd *d, const char *line)
{
	char name[TETHER_NAME_MAX];
	const struct backend *backend;

	if (d->martians && sscanf(line, "event=backend_up backend=%31s", name) == 1 &&
	    (backend = lc_backend_find(&d->lc, name)))
		martians_check(d->martians, backend->meta.iface, name);
}

static void on_event(void *ctx, const char *line)
{
	struct tetherd *d = ctx;
	unsigned long long function_id;
	unsigned int waiting;

	if (d->control)
		control_broadcast(d->control, line);
	metrics_event(d->metrics, line);
	check_martians(d, line);
	/* This router's slow path asks for capacity: the fleet's agents hear it
	 * from any router (lines from other routers name theirs: not again). */
	if (d->fleet && !strstr(line, " router=") &&
	    sscanf(line, "event=capacity_needed function=%llu waiting=%u", &function_id,
		   &waiting) == 2)
		fleet_capacity_needed(d->fleet, function_id, waiting);
}

static void arm_fast_tick(struct tetherd *d);

static void on_container_warm(void *ctx, __u32 slot, __u64 function_id)
{
	struct tetherd *d = ctx;

	if (d->slowpath)
		slowpath_container_warm(d->slowpath, slot, function_id);
	arm_fast_tick(d);
}

static void on_tick(void *ctx, int fd, uint32_t events)
{
	struct tetherd *d = ctx;
	__u64 expirations;

	(void)events;
	if (read(fd, &expirations, sizeof(expirations)) < 0)
		return;
	lifecycle_tick(&d->lc);
	slowpath_tick(d->slowpath);
	fleet_tick(d->fleet);
	control_tick(d->control);
	__u64 lost = trace_feed_lost(d->trace);

	if (lost)
		control_trace_lost(d->control, lost);
	arm_fast_tick(d);
}

/* Every millisecond while the slow path holds requests: those held for full
 * containers go as soon as one has room. Disarmed when none is held, so an
 * idle tetherd does not wake a thousand times a second. */
static void arm_fast_tick(struct tetherd *d)
{
	bool want = d->slowpath && slowpath_waiting(d->slowpath, 0) > 0;
	struct itimerspec every = {};

	if (d->fast_timer_fd < 0 || want == d->fast_armed)
		return;
	if (want)
		every = (struct itimerspec){ .it_interval = { .tv_nsec = 1000000L },
					     .it_value = { .tv_nsec = 1000000L } };
	if (!timerfd_settime(d->fast_timer_fd, 0, &every, NULL))
		d->fast_armed = want;
}

static void on_fast_tick(void *ctx, int fd, uint32_t events)
{
	struct tetherd *d = ctx;
	__u64 expirations;

	(void)events;
	if (read(fd, &expirations, sizeof(expirations)) < 0)
		return;
	slowpath_place_full(d->slowpath);
	arm_fast_tick(d);
}

static void on_signal(void *ctx, int fd, uint32_t events)
{
	struct tetherd *d = ctx;
	struct signalfd_siginfo info;

	(void)events;
	if (read(fd, &info, sizeof(info)) != sizeof(info))
		return;
	if (info.ssi_signo != SIGHUP) {
		d->stop = true;
		return;
	}
	/* SIGHUP: the TLS files again, the listener's and the store's. */
	control_reload_tls(d->control);
	fleet_reload_tls(d->fleet);
}

static void on_service(void *ctx, int fd, uint32_t events)
{
	struct tetherd *d = ctx;

	(void)events;
	slowpath_readable(d->slowpath, fd);
	arm_fast_tick(d);
}

static int add_timer(struct tetherd *d)
{
	struct itimerspec every = {
		.it_interval = { .tv_nsec = TICK_MS * 1000000L },
		.it_value = { .tv_nsec = TICK_MS * 1000000L },
	};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	d->timer_fd = fd;
	if (timerfd_settime(fd, 0, &every, NULL))
		return -errno;
	int err = loop_add(d->loop, fd, EPOLLIN, on_tick, d);

	if (err)
		return err;
	/* Armed by arm_fast_tick while requests are held. */
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	d->fast_timer_fd = fd;
	return loop_add(d->loop, fd, EPOLLIN, on_fast_tick, d);
}

static int add_signals(struct tetherd *d)
{
	sigset_t mask;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	d->signal_fd = fd;
	return loop_add(d->loop, fd, EPOLLIN, on_signal, d);
}

static bool vip_configured(const struct tetherd *d, const struct service_key *key)
{
	for (int i = 0; i < d->config.vip_count; i++)
		if (!memcmp(d->config.vips[i].addr, key->addr, 16) &&
		    d->config.vips[i].port == ntohs(key->port))
			return true;
	for (int i = 0; i < d->config.completion_count; i++)
		if (!memcmp(d->config.completions[i].addr, key->addr, 16) &&
		    d->config.completions[i].port == ntohs(key->port))
			return true;
	return false;
}

/* The command line is the truth about service addresses: adopted ones that
 * it no longer names are removed. */
static int reconcile_services(struct tetherd *d)
{
	int fd = bpf_map__fd(d->dp.skel->maps.services);
	struct service_key key, next, stale[TETHER_MAX_SERVICES];
	const struct service_key *previous = NULL;
	int stale_count = 0, err;

	while (!bpf_map_get_next_key(fd, previous, &next)) {
		if (next.port && !vip_configured(d, &next) && stale_count < TETHER_MAX_SERVICES)
			stale[stale_count++] = next;
		key = next;
		previous = &key;
	}
	for (int i = 0; i < stale_count; i++)
		service_del(&d->dp, stale[i].addr, ntohs(stale[i].port));
	for (int i = 0; i < d->config.vip_count; i++) {
		const struct tetherd_vip *vip = &d->config.vips[i];

		if ((err = service_add(&d->dp, vip->addr, vip->port, i + 1))) {
			fprintf(stderr, "tetherd: cannot add service %d: %s\n", i, strerror(-err));
			return err;
		}
		int service_fd = slowpath_add_service(d->slowpath, vip->addr, vip->port);

		if (service_fd < 0)
			return service_fd;
		if ((err = loop_add(d->loop, service_fd, EPOLLIN, on_service, d)))
			return err;
	}
	for (int i = 0; i < d->config.completion_count; i++) {
		const struct tetherd_vip *c = &d->config.completions[i];

		if ((err = service_add_completion(&d->dp, c->addr, c->port))) {
			fprintf(stderr, "tetherd: cannot add completion address %d: %s\n", i,
				strerror(-err));
			return err;
		}
	}
	return 0;
}

static int attach_interfaces(struct tetherd *d)
{
	for (int i = 0; i < d->config.iface_count; i++) {
		const char *how;
		int err = attach_interface(&d->dp, d->config.ifaces[i], d->config.xdp_mode, &how);

		if (err)
			return err;
		fprintf(stderr, "tetherd: %s: XDP %s%s\n", d->config.ifaces[i], how,
			strcmp(how, "replaced") ? " mode" : " the running program atomically");
	}
	return 0;
}

/* Loaded, adopted, pinned, bound, attached: the rest needs little, and with
 * --user no root file either (privileges.h). */
static int drop_privileges(struct tetherd *d)
{
	const struct tetherd_config *config = &d->config;
	struct privileges_user user = { config->user, config->user_uid, config->user_gid };
	bool switching = config->user[0];
	char kept[128];
	int err;

	if (switching && (err = privileges_share_pins(config->pin_root, config->user_gid)))
		return err;
	if ((err = privileges_drop(switching ? &user : NULL, kept, sizeof(kept)))) {
		fprintf(stderr, "tetherd: cannot drop its privileges%s%s: %s\n",
			switching ? " and become user " : "", switching ? config->user : "",
			strerror(-err));
		return err;
	}
	if (switching)
		fprintf(stderr, "tetherd: running as user %s (uid %u, gid %u); its group may use "
				"the pins under %s\n",
			config->user, (unsigned)config->user_uid, (unsigned)config->user_gid,
			config->pin_root);
	fprintf(stderr, "tetherd: capabilities kept: %s (the others dropped)\n", kept);
	return 0;
}

/* Fleet mode: the store's state replaces what was adopted, as it arrives;
 * the data plane forwards on the adopted state meanwhile. */
static int start_fleet(struct tetherd *d)
{
	char why[512];

	if (!d->config.fleet.endpoints[0])
		return 0;
	d->fleet = fleet_new(d, &d->config.fleet, why, sizeof(why));
	if (!d->fleet) {
		fprintf(stderr, "tetherd: cannot use the store %s: %s\n", d->config.fleet.endpoints,
			why);
		return -EINVAL;
	}
	return fleet_start(d->fleet);
}

/* The slow path's budget, in the data plane before anything is attached;
 * a restart replaces the adopted one (the buckets' state carries on). */
static int apply_admission(struct tetherd *d)
{
	const struct admission_limits *a = &d->config.admission;
	int err = admission_set(&d->dp, a);

	if (err) {
		fprintf(stderr, "tetherd: cannot set the slow path's budget: %s\n", strerror(-err));
		return err;
	}
	fprintf(stderr, "tetherd: slow path budget: %u/s (burst %u) per function, %u/s (burst %u) "
			"in all; over it, OVERLOADED answers from XDP at most %u/s (burst %u) "
			"(0: no limit)\n",
		a->function_rate, a->function_burst, a->total_rate, a->total_burst, a->answer_rate,
		a->answer_burst);
	return 0;
}

/* Whether addr (v4-mapped for IPv4) is an address of this host. */
static bool address_is_local(const __u8 addr[16])
{
	struct ifaddrs *all, *ifa;
	bool found = false;

	if (getifaddrs(&all))
		return false;
	for (ifa = all; ifa && !found; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr)
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET && addr_is_v4mapped(addr))
			found = !memcmp(&((struct sockaddr_in *)ifa->ifa_addr)->sin_addr, addr + 12, 4);
		else if (ifa->ifa_addr->sa_family == AF_INET6 && !addr_is_v4mapped(addr))
			found = !memcmp(&((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr, addr, 16);
	}
	freeifaddrs(all);
	return found;
}

/* --encap-source: each must be this host's (a routed backend's replies and
 * ICMP errors come back to it), then into the data plane; none clears an
 * adopted one. */
static int apply_encap_sources(struct tetherd *d)
{
	const struct encap_config *config = &d->config.encap;
	__u8 addrs[2][16] = {}, mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };
	bool given[2] = { config->source4 != 0, d->config.has_encap_source6 };
	char text[64];
	int err;

	memcpy(addrs[0], mapped_prefix, 12);
	memcpy(addrs[0] + 12, &config->source4, 4);
	memcpy(addrs[1], config->source6, 16);
	for (int i = 0; i < 2; i++) {
		if (!given[i] || address_is_local(addrs[i]))
			continue;
		addr_format(addrs[i], text, sizeof(text));
		fprintf(stderr, "tetherd: --encap-source %s is not an address of this host "
				"(ip addr shows them): routed backends' replies and errors would not "
				"come back here\n", text);
		return -EADDRNOTAVAIL;
	}
	if ((err = encap_config_set(&d->dp, config))) {
		fprintf(stderr, "tetherd: cannot set the encapsulation source: %s\n", strerror(-err));
		return err;
	}
	return 0;
}

/* /metrics: bound before privileges drop (a port below 1024 works too). */
static int start_metrics(struct tetherd *d)
{
	char why[512];

	if (!d->config.metrics.listen[0])
		return 0;
	d->metrics = metrics_new(d, &d->config.metrics);
	if (!d->metrics)
		return -ENOMEM;
	if (metrics_listen(d->metrics, why, sizeof(why))) {
		fprintf(stderr, "tetherd: %s\n", why);
		return -EINVAL;
	}
	return 0;
}

static int start(struct tetherd *d)
{
	struct dataplane_opts opts = { .pin_root = d->config.pin_root };
	struct lifecycle_config lifecycle = {
		.heartbeat_ms = d->config.heartbeat_ms,
		.drain_ms = d->config.drain_ms,
		.restart_grace_ms = d->config.restart_grace_ms,
		.now_ns = clock_monotonic,
		.observer = { .event = on_event, .container_warm = on_container_warm, .ctx = d },
	};
	int err;

	privileges_raise_nofile(); /* before lifecycle_init: it sizes by the limit */
	if ((err = dataplane_open(&d->dp, &opts)))
		return err;
	if ((err = apply_admission(d)) || (err = apply_encap_sources(d)))
		return err;
	if ((err = lifecycle_init(&d->lc, &d->dp, &lifecycle)))
		return err;
	if (d->dp.adopted) {
		__u64 started = monotonic_ns();

		if ((err = lifecycle_adopt(&d->lc))) {
			fprintf(stderr, "tetherd: cannot adopt the pinned state: %s\n",
				lifecycle_error(&d->lc));
			return err;
		}
		fprintf(stderr, "tetherd: adopted the maps pinned at %s: %u functions (%.1f ms)\n",
			d->config.pin_root, g_hash_table_size(d->lc.functions),
			(monotonic_ns() - started) / 1e6);
	}
	d->martians = martians_new(d->config.accept_local, NULL);
	for (__u32 id = 1; id < TETHER_MAX_BACKENDS; id++) /* adopted ones */
		if (d->lc.backends[id].in_use)
			martians_check(d->martians, d->lc.backends[id].meta.iface,
				       d->lc.backends[id].meta.name);
	d->loop = loop_new();
	d->control = control_new(d);
	d->slowpath = slowpath_new(&d->lc, &d->config.slowpath);
	if (!d->loop || !d->slowpath)
		return -ENOMEM;
	d->trace = trace_feed_new(d); /* NULL: "watch trace" answers why */
	if ((err = add_signals(d)) || (err = add_timer(d)) || (err = reconcile_services(d)) ||
	    (err = control_listen_unix(d->control, d->config.socket_path,
				       d->config.socket_group)))
		return err;
	if (d->config.tcp_listen[0] &&
	    (err = control_listen_tcp(d->control, d->config.tcp_listen, d->config.tcp_secret)))
		return err;
	if ((err = start_metrics(d)) || (err = attach_interfaces(d)) || (err = start_fleet(d)))
		return err;
	return drop_privileges(d);
}

static void run(struct tetherd *d)
{
	fprintf(stderr, "tetherd: ready on %s (pin root %s)\n", d->config.socket_path,
		d->config.pin_root);
	while (!d->stop) {
		loop_run_once(d->loop, -1);
		/* Tables first, answers after: "ok" means routing follows already. */
		lifecycle_flush_pools(&d->lc);
		control_flush(d->control);
	}
}

static int unload(const char *pin_root)
{
	int err = detach_all(pin_root);
	GDir *dir = g_dir_open(pin_root, 0, NULL);
	const char *name;

	if (dir) {
		while ((name = g_dir_read_name(dir))) {
			g_autofree char *path = g_build_filename(pin_root, name, NULL);

			if (unlink(path))
				err = -errno;
		}
		g_dir_close(dir);
	}
	if (rmdir(pin_root) && errno != ENOENT && !err)
		fprintf(stderr, "tetherd: the pin root %s stays, empty: %s%s\n", pin_root,
			strerror(errno),
			geteuid() ? " (tetherd runs as a user that may not remove it; rmdir it as root)"
				  : "");
	if (err)
		fprintf(stderr, "tetherd: unload of %s incomplete: %s\n", pin_root, strerror(-err));
	else
		fprintf(stderr, "tetherd: detached and removed the pins under %s\n", pin_root);
	return err;
}

static void stop(struct tetherd *d)
{
	d->stop = true; /* answers given now read no further requests */
	fleet_free(d->fleet); /* its waiting requests are answered, then flushed */
	d->fleet = NULL;
	control_flush(d->control);
	control_free(d->control);
	trace_feed_free(d->trace); /* a trace is never left on */
	d->trace = NULL;
	metrics_free(d->metrics);
	d->metrics = NULL;
	martians_free(d->martians);
	d->martians = NULL;
	slowpath_free(d->slowpath);
	lifecycle_free(&d->lc);
	dataplane_close(&d->dp);
	loop_free(d->loop);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->fast_timer_fd >= 0)
		close(d->fast_timer_fd);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	if (d->backend_budgets)
		g_hash_table_destroy(d->backend_budgets);
}

int main(int argc, char **argv)
{
	struct tetherd d = { .timer_fd = -1, .fast_timer_fd = -1, .signal_fd = -1 };
	int err = config_parse(&d.config, argc, argv);

	if (err)
		return err > 0 ? 0 : 2;
	if (d.config.unload)
		return unload(d.config.pin_root) ? 1 : 0;
	err = start(&d);
	if (!err)
		run(&d);
	else if (d.dp.skel && !d.dp.adopted)
		/* Maps this failed start pinned itself serve nobody. */
		d.unload_requested = true;
	bool unload_requested = d.unload_requested;

	stop(&d);
	if (unload_requested)
		err = unload(d.config.pin_root);
	return err ? 1 : 0;
}
