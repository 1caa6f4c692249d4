/* SPDX-License-Identifier: MIT */
/* tether-agent's command line, without I/O: every option read and checked,
 * so a bad one is refused with one sentence before the agent touches the
 * system. The secret file is named here and read by the agent. */
#ifndef TETHER_AGENT_OPTIONS_H
#define TETHER_AGENT_OPTIONS_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define AGENT_MAX_VIPS 16
#define AGENT_MAX_TETHERDS 8
#define AGENT_MAX_FUNCTIONS 32
#define AGENT_DEFAULT_TETHERD "unix:/run/tether/tetherd.sock"
#define AGENT_DEFAULT_HANDLER "counter"
#define AGENT_DEFAULT_COLD_START_MS 300
#define AGENT_DEFAULT_HEARTBEAT_MS 1000
#define AGENT_DEFAULT_DRAIN_MS 10000
#define AGENT_DEFAULT_MAX_CONTAINERS 64

/* ADDR:PORT, the address 16 bytes (v4-mapped for IPv4) as in the maps. */
struct agent_vip {
	__u8 addr[16];
	__u16 port;
	char text[64]; /* as the operator wrote it, for messages */
};

/* Where tetherd listens: its Unix socket, or a TCP listener for remote agents. */
struct agent_endpoint {
	bool tcp;
	char path[108];                 /* unix */
	struct sockaddr_storage address; /* tcp */
	socklen_t address_len;
	char host[64]; /* tcp: the address as text, brackets off: what tetherd's
			* certificate must name (unless --tls-server-name) */
	char text[160]; /* "unix:/run/tether/tetherd.sock", for messages */
};

/* --function F:COUNT[:CONCURRENCY] */
struct agent_function {
	__u64 function_id;
	__u32 count;       /* warm containers to start with */
	__u32 concurrency; /* requests in flight per container; 0: no limit */
	char handler[32];  /* its containers' handler; empty: --handler's */
};

#define AGENT_MAX_COMPLETIONS 8

struct agent_options {
	char name[32];         /* the backend's name at tetherd */
	char addr[64];         /* the VM's address, normalized */
	char mac[18];          /* aa:bb:cc:dd:ee:ff, lowercase */
	char router_iface[16]; /* the router's interface towards this VM */
	__u16 vlan;            /* its 802.1Q VLAN id on that interface; 0: untagged */
	/* --decap: how the router reaches this VM (enum backend_encap): 0 on a
	 * segment of the router (mac and router_iface), or routed, the agent
	 * setting up the decapsulation (decap.c); vni for vxlan. */
	__u8 decap;
	__u32 vni;
	struct agent_vip vips[AGENT_MAX_VIPS];
	int vip_count;
	/* --tetherd A,B,...: the agent talks to one, in this order, and moves to
	 * the next when it fails (failover.h); one unless a list was given. */
	struct agent_endpoint tetherds[AGENT_MAX_TETHERDS];
	int tetherd_count;
	char secret_file[256]; /* with tcp:, unless a client certificate authenticates */
	/* TLS for tcp: endpoints: tls_ca, the CAs of tetherd's certificate;
	 * tls_cert and tls_key, this agent's client certificate (CN=the backend);
	 * tls_server_name, the name tetherd's certificate must hold (else each
	 * endpoint's address). tcp_plain: no TLS, asked for explicitly. */
	char tls_ca[256];
	char tls_cert[256];
	char tls_key[256];
	char tls_server_name[256];
	bool tcp_plain;
	struct agent_function functions[AGENT_MAX_FUNCTIONS];
	int function_count;
	char handler[32];
	__u32 cold_start_ms;
	__u32 heartbeat_ms;
	__u32 drain_ms;
	__u32 max_containers;
	/* --completion A,B,...: the routers' completion addresses, where DONE
	 * and ALIVE datagrams go (tetherd's answer to add backend adds its own). */
	struct agent_vip completions[AGENT_MAX_COMPLETIONS];
	int completion_count;
	bool capacity;     /* start containers on capacity_needed */
	bool capacity_any; /* ... of any function, not only those of --function */
};

/* Fills options from argv (getopt_long; resets optind itself). Returns 0,
 * 1 when --help was asked (usage is printed by the caller), 2 for --version
 * (agent_version() is printed by the caller), or -1 with one sentence in
 * message naming the option at fault. */
int agent_options_parse(int argc, char **argv, struct agent_options *options, char *message,
			size_t size);

/* The text of --help. */
const char *agent_options_usage(void);

/* The line --version prints: "tether-agent VERSION". */
const char *agent_version(void);

/* "ADDR:PORT" or "[V6ADDR]:PORT" into vip; 0 or -1. */
int agent_parse_vip(const char *text, struct agent_vip *vip);

/* "unix:/path", "/path" or "tcp:ADDR:PORT" ("tcp:[V6]:PORT"); 0 or -1. */
int agent_parse_endpoint(const char *text, struct agent_endpoint *endpoint);

/* "ENDPOINT[,ENDPOINT...]" into endpoints (at most max): returns how many,
 * or -1 with one sentence in message naming the one at fault (not an
 * endpoint, empty, given twice, too many). */
int agent_parse_endpoints(const char *text, struct agent_endpoint *endpoints, int max,
			  char *message, size_t size);

/* "F:COUNT", "F:COUNT:CONCURRENCY" or "F:COUNT:CONCURRENCY:HANDLER", F decimal
 * or 0x hex and nonzero, HANDLER a known handler; 0 or -1. */
int agent_parse_function(const char *text, struct agent_function *function);

/* The agent starts containers of function_id on demand: --capacity, and the
 * function is one of --function or --capacity-any was given. */
bool agent_serves_on_demand(const struct agent_options *options, __u64 function_id);

/* The concurrency limit of function_id's containers (its --function), 0: none. */
__u32 agent_function_concurrency(const struct agent_options *options, __u64 function_id);

/* The handler of function_id's containers: its --function's, else --handler. */
const char *agent_function_handler(const struct agent_options *options, __u64 function_id);

#endif
