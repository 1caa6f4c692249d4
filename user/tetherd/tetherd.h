/* SPDX-License-Identifier: MIT */
/* The daemon's parts and its settings (command line or config file). */
#ifndef TETHER_TETHERD_H
#define TETHER_TETHERD_H

#include <stdbool.h>
#include <sys/types.h>

#include <glib.h>

#include "attach.h"
#include "fleet.h"
#include "dataplane/dataplane.h"
#include "lifecycle.h"
#include "core/core.h"
#include "metrics.h"
#include "slowpath.h"

#define TETHERD_MAX_IFACES 16
#define TETHERD_MAX_VIPS 16
#define TETHERD_MAX_OPERATORS 8

struct tetherd_vip {
	__u8 addr[16];
	__u16 port;
};

/* TLS on the TCP listener (--tls-*, --tcp-plain). */
struct tetherd_tls_config {
	char cert[256];      /* --tls-cert: tetherd's certificate (PEM, its chain after it) */
	char key[256];       /* --tls-key */
	char client_ca[256]; /* --tls-client-ca: client certificates required, bound by CN */
	/* --tls-operator: client certificate CNs that are operators' (any backend) */
	char operators[TETHERD_MAX_OPERATORS][32];
	int operator_count;
	bool plain; /* --tcp-plain: the listener without TLS, asked for explicitly */
};

struct tetherd_config {
	char pin_root[256];
	char socket_path[256];
	char socket_group[64]; /* empty: root only (mode 0600) */
	char ifaces[TETHERD_MAX_IFACES][16];
	int iface_count;
	enum xdp_mode_request xdp_mode;
	struct tetherd_vip vips[TETHERD_MAX_VIPS];
	int vip_count;
	/* The router's completion addresses: DONE and ALIVE datagrams from
	 * backends to these are consumed by the XDP program (on every --iface). */
	struct tetherd_vip completions[TETHERD_MAX_VIPS];
	int completion_count;
	__u32 heartbeat_ms;
	__u32 restart_grace_ms; /* lifecycle_config's */
	__u32 drain_ms;
	struct slowpath_config slowpath;
	struct admission_limits admission; /* the slow path's budget in the data plane */
	char tcp_listen[64];  /* ADDR:PORT for remote agents; empty: none */
	char tcp_secret[128]; /* shared secret: operators, any backend; empty: none */
	char agent_secrets_dir[256]; /* DIR/NAME: backend NAME's own secret; empty: none */
	struct tetherd_tls_config tls;
	struct fleet_config fleet; /* endpoints empty: single host */
	__u32 agent_rate;    /* lifecycle changes a second per TCP connection; 0: no limit */
	struct metrics_config metrics; /* --metrics-listen, --metrics-functions */
	bool accept_local;   /* set accept_local on backends' interfaces (martians.c) */
	/* --encap-source: routed backends' outer source addresses (0: none) */
	struct encap_config encap;
	bool has_encap_source6;
	char user[64];       /* run as this user once started; empty: stay root */
	uid_t user_uid;      /* ... its ids, looked up by config_parse */
	gid_t user_gid;
	bool unload;
};

struct control;
struct martians;
struct trace_feed;

struct tetherd {
	struct tetherd_config config;
	struct dataplane dp;
	struct lifecycle lc;
	struct slowpath *slowpath;
	struct loop *loop;
	struct control *control;
	struct fleet *fleet; /* fleet mode (--store); NULL: single host */
	struct metrics *metrics; /* --metrics-listen; NULL: none */
	struct martians *martians; /* accept_local on backends' interfaces */
	struct trace_feed *trace;  /* the packet trace's ring (trace.c); NULL: none */
	int timer_fd, signal_fd; /* the loop's tick and SIGTERM/SIGINT; -1 when not open */
	int fast_timer_fd; /* every ms while requests are held (for full containers) */
	bool fast_armed;
	bool stop;
	bool unload_requested;
	__u64 changes_overloaded; /* changes refused: over --agent-rate */
	/* backend name -> struct change_budget: the budget a backend's bound
	 * connections share (one per name with a secret or certificate). */
	GHashTable *backend_budgets;
};

/* Where an answer given later goes: the connection's fd, and its number,
 * which no later connection on the same fd has. */
struct control_ticket {
	int fd;
	__u64 id;
};

/* A token bucket of lifecycle changes (--agent-rate): one per backend for
 * the connections bound to it, else one per TCP connection. */
struct change_budget {
	double tokens;
	__u64 refilled_ns;
};

/* Who sent a request: the control socket's view of the connection. */
struct requester {
	struct control_ticket ticket;
	struct change_budget budget; /* remote connections bound to no backend */
	bool remote;        /* over TCP */
	bool authenticated; /* TCP: passed "auth agent" */
	char backend[32];   /* TCP agent bound to this backend, or empty (any) */
};

#endif
