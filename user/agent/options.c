// SPDX-License-Identifier: MIT
/* tether-agent's command line (options.h). */
#include "options.h"

#include <glib.h>
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "handlers.h"
#include "tether_version.h"
#include "control/protocol.h"
#include "core/core.h"
#include "tether/maps.h"

static const char usage[] =
	"usage: tether-agent --name NAME --addr ADDR --mac MAC --router-iface IF\n"
	"                    --vip ADDR:PORT [--vip ...] [--function F:COUNT ...] [options]\n"
	"\n"
	"The VM agent of Tether: registers this VM as a backend with tetherd, runs\n"
	"containers (one process each) of a function handler, reports their\n"
	"lifecycle, serves the requests the router stamps for them on each VIP and\n"
	"answers clients directly. SIGTERM drains every container, reports it idle,\n"
	"removes the backend and exits 0.\n"
	"\n"
	"  --name NAME            the backend's name at tetherd ([A-Za-z0-9._-], 1-31)\n"
	"  --addr ADDR            this VM's address (IPv4 or IPv6)\n"
	"  --mac MAC              this VM's interface address as the router sees it\n"
	"  --router-iface IF      the router's interface that reaches this VM\n"
	"  --vlan N               this VM's 802.1Q VLAN id (1-4094) when the router reaches\n"
	"                         it on a trunk: requests arrive tagged N (default: untagged)\n"
	"  --decap MODE           the router reaches this VM across routed hops: vxlan or\n"
	"                         ipip (then --mac and --router-iface are not needed). The\n"
	"                         agent sets up the decapsulation (a vxlan device on the\n"
	"                         VNI with the router's default inner MAC, or an XDP\n"
	"                         program that strips the outer IP header on the\n"
	"                         interface holding --addr) and removes it on exit\n"
	"  --vni N                with --decap vxlan: the VNI (0-16777215, default 0)\n"
	"  --vip ADDR:PORT        a service address, IPv4 or [IPv6] (repeatable). The agent\n"
	"                         adds ADDR to lo (rtnetlink, /32 or /128), removes it on\n"
	"                         exit if it added it, and serves UDP on ADDR:PORT\n"
	"  --tetherd ENDPOINT[,ENDPOINT...]\n"
	"                         where tetherd listens: unix:/path or tcp:ADDR:PORT\n"
	"                         (" AGENT_DEFAULT_TETHERD "). Several, comma-separated\n"
	"                         (the routers of a fleet, at most 8): the agent talks to\n"
	"                         one and moves both its links to the next, round-robin,\n"
	"                         when it fails: connection refused or dropped, a request\n"
	"                         (a heartbeat...) unanswered for heartbeat-ms / 2, or\n"
	"                         'unavailable' answers (cut off from the fleet's store).\n"
	"                         Given twice, the last one counts\n"
	"  --tls-ca F             TLS to tcp: endpoints: tetherd's certificate must chain\n"
	"                         to a CA in F (PEM) and name the endpoint's address (or\n"
	"                         --tls-server-name); a wrong one is refused before\n"
	"                         anything is sent, and the agent moves to the next tetherd\n"
	"  --tls-cert F           this agent's client certificate (PEM), CN=the backend's\n"
	"                         name: with tetherd's --tls-client-ca it authenticates\n"
	"                         the agent, and binds it to this backend, without a secret\n"
	"  --tls-key F            its private key (PEM; no access for others)\n"
	"  --tls-server-name NAME the name tetherd's certificate holds, when it is not the\n"
	"                         endpoints' address (a DNS name)\n"
	"  --tcp-plain            tcp: endpoints without TLS: the secret and every request\n"
	"                         cross the network in clear (logged as a warning)\n"
	"  --secret-file F        the secret for tcp: endpoints, sent with backend=NAME:\n"
	"                         best this backend's own (the file NAME in tetherd's\n"
	"                         --agent-secrets-dir), which lets the agent change only\n"
	"                         this backend and its containers; else the shared one.\n"
	"                         Optional with --tls-cert\n"
	"  --function F:COUNT[:N[:HANDLER]]\n"
	"                         start COUNT warm containers of function F (repeatable);\n"
	"                         N: each runs at most N requests at once (registered with\n"
	"                         tetherd, which steers around full containers; more is\n"
	"                         answered OVERLOADED and logged as a router bug; 0: no\n"
	"                         limit); HANDLER: theirs instead of --handler's\n"
	"  --completion ADDR:PORT[,ADDR:PORT...]\n"
	"                         the routers' completion addresses: a DONE datagram after\n"
	"                         each request, ALIVE every heartbeat-ms / 3 (tetherd's\n"
	"                         answer to add backend names its own)\n"
	"  --handler NAME         the function handler containers run (" AGENT_DEFAULT_HANDLER
	"): %s\n"
	"  --cold-start-ms N      how long a new container takes to become warm (300)\n"
	"  --heartbeat-ms N       tetherd takes the VM down after N ms without a heartbeat;\n"
	"                         the agent sends one every N/3 ms (1000)\n"
	"  --drain-ms N           on SIGTERM, how long containers may finish their work (10000)\n"
	"  --capacity             start a container when tetherd holds requests for lack of\n"
	"                         one (capacity_needed), for the functions of --function\n"
	"  --capacity-any         ... for any function (implies --capacity)\n"
	"  --max-containers N     containers this agent runs at most (64)\n"
	"  --version              print the version (tether-agent VERSION) and exit\n";

enum option_id {
	OPT_NAME = 1, OPT_ADDR, OPT_MAC, OPT_ROUTER_IFACE, OPT_VIP, OPT_TETHERD, OPT_SECRET_FILE,
	OPT_FUNCTION, OPT_HANDLER, OPT_COLD_START, OPT_HEARTBEAT, OPT_DRAIN, OPT_CAPACITY,
	OPT_CAPACITY_ANY, OPT_MAX_CONTAINERS, OPT_VLAN, OPT_TLS_CA, OPT_TLS_CERT, OPT_TLS_KEY,
	OPT_TLS_SERVER_NAME, OPT_TCP_PLAIN, OPT_COMPLETION, OPT_HELP, OPT_VERSION, OPT_DECAP,
	OPT_VNI,
};

static const struct option options[] = {
	{ "name", required_argument, 0, OPT_NAME },
	{ "addr", required_argument, 0, OPT_ADDR },
	{ "mac", required_argument, 0, OPT_MAC },
	{ "router-iface", required_argument, 0, OPT_ROUTER_IFACE },
	{ "vlan", required_argument, 0, OPT_VLAN },
	{ "decap", required_argument, 0, OPT_DECAP },
	{ "vni", required_argument, 0, OPT_VNI },
	{ "vip", required_argument, 0, OPT_VIP },
	{ "tetherd", required_argument, 0, OPT_TETHERD },
	{ "secret-file", required_argument, 0, OPT_SECRET_FILE },
	{ "tls-ca", required_argument, 0, OPT_TLS_CA },
	{ "tls-cert", required_argument, 0, OPT_TLS_CERT },
	{ "tls-key", required_argument, 0, OPT_TLS_KEY },
	{ "tls-server-name", required_argument, 0, OPT_TLS_SERVER_NAME },
	{ "tcp-plain", no_argument, 0, OPT_TCP_PLAIN },
	{ "function", required_argument, 0, OPT_FUNCTION },
	{ "handler", required_argument, 0, OPT_HANDLER },
	{ "cold-start-ms", required_argument, 0, OPT_COLD_START },
	{ "heartbeat-ms", required_argument, 0, OPT_HEARTBEAT },
	{ "drain-ms", required_argument, 0, OPT_DRAIN },
	{ "capacity", no_argument, 0, OPT_CAPACITY },
	{ "capacity-any", no_argument, 0, OPT_CAPACITY_ANY },
	{ "max-containers", required_argument, 0, OPT_MAX_CONTAINERS },
	{ "completion", required_argument, 0, OPT_COMPLETION },
	{ "help", no_argument, 0, OPT_HELP },
	{ "version", no_argument, 0, OPT_VERSION },
	{ 0, 0, 0, 0 },
};

const char *agent_options_usage(void)
{
	static char text[sizeof(usage) + 256];

	snprintf(text, sizeof(text), usage, agent_handler_names());
	return text;
}

const char *agent_version(void)
{
	return "tether-agent " TETHER_RELEASE_VERSION "\n";
}

static int refuse(char *message, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(char *message, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, size, fmt, ap);
	va_end(ap);
	return -1;
}

/* Decimal, or 0x hex; no sign, no spaces, no overflow. */
static int parse_u64(const char *text, __u64 *out)
{
	int base = strncmp(text, "0x", 2) ? 10 : 16;
	const char *digits = base == 16 ? text + 2 : text;
	char *end;

	/* strtoull would take a sign or spaces: the first byte must be a digit. */
	if (base == 10 ? !g_ascii_isdigit(digits[0]) : !g_ascii_isxdigit(digits[0]))
		return -1;
	errno = 0;
	unsigned long long value = strtoull(digits, &end, base);

	if (errno || *end)
		return -1;
	*out = value;
	return 0;
}

static int parse_ms(const char *option, const char *text, __u32 min, __u32 *out,
		    char *message, size_t size)
{
	__u64 value;

	if (strncmp(text, "0x", 2) == 0 || parse_u64(text, &value) || value > UINT32_MAX)
		return refuse(message, size, "--%s '%s' is not a number of milliseconds", option,
			      text);
	if (value < min)
		return refuse(message, size, "--%s must be at least %u", option, min);
	*out = value;
	return 0;
}

static bool name_is_valid(const char *name, size_t max)
{
	size_t len = strlen(name);

	if (len == 0 || len > max)
		return false;
	for (const char *c = name; *c; c++)
		if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
		    !(*c >= '0' && *c <= '9') && *c != '.' && *c != '_' && *c != '-')
			return false;
	return true;
}

int agent_parse_vip(const char *text, struct agent_vip *vip)
{
	if (strlen(text) >= sizeof(vip->text) || endpoint_parse(text, vip->addr, &vip->port))
		return -1;
	snprintf(vip->text, sizeof(vip->text), "%s", text);
	return 0;
}

static int parse_tcp_address(const char *text, struct agent_endpoint *endpoint)
{
	__u8 addr[16];
	__u16 port;

	if (endpoint_parse(text, addr, &port))
		return -1;
	endpoint->address_len = endpoint_sockaddr(addr, port, &endpoint->address);
	return addr_format(addr, endpoint->host, sizeof(endpoint->host));
}

int agent_parse_endpoint(const char *text, struct agent_endpoint *endpoint)
{
	memset(endpoint, 0, sizeof(*endpoint));
	if (strlen(text) >= sizeof(endpoint->text))
		return -1;
	if (strncmp(text, "tcp:", 4) == 0) {
		endpoint->tcp = true;
		if (parse_tcp_address(text + 4, endpoint))
			return -1;
	} else {
		const char *path = strncmp(text, "unix:", 5) == 0 ? text + 5 : text;

		if (path[0] != '/' || strlen(path) >= sizeof(endpoint->path))
			return -1;
		strcpy(endpoint->path, path);
	}
	snprintf(endpoint->text, sizeof(endpoint->text), "%s%s",
		 endpoint->tcp || strncmp(text, "unix:", 5) == 0 ? "" : "unix:", text);
	return 0;
}

static bool same_endpoint(const struct agent_endpoint *a, const struct agent_endpoint *b)
{
	if (a->tcp != b->tcp)
		return false;
	if (!a->tcp)
		return !strcmp(a->path, b->path);
	return a->address_len == b->address_len && !memcmp(&a->address, &b->address, a->address_len);
}

int agent_parse_endpoints(const char *text, struct agent_endpoint *endpoints, int max,
			  char *message, size_t size)
{
	g_auto(GStrv) words = g_strsplit(text, ",", -1);
	int count = 0;

	for (int i = 0; words[i]; i++) {
		const char *word = words[i];

		if (!word[0])
			return refuse(message, size,
				      "--tetherd '%s' has an empty endpoint (ENDPOINT,ENDPOINT,... "
				      "without spaces, no comma at either end)",
				      text);
		if (count == max)
			return refuse(message, size, "--tetherd '%s' lists more than %d endpoints",
				      text, max);
		if (agent_parse_endpoint(word, &endpoints[count]) && !strcmp(word, text))
			return refuse(message, size,
				      "--tetherd '%s' is not unix:/path or tcp:ADDR:PORT (several: "
				      "comma-separated)",
				      text);
		if (agent_parse_endpoint(word, &endpoints[count]))
			return refuse(message, size,
				      "--tetherd '%s': endpoint %d, '%s', is not unix:/path or "
				      "tcp:ADDR:PORT (the list is comma-separated, no spaces)",
				      text, i + 1, word);
		for (int j = 0; j < count; j++)
			if (same_endpoint(&endpoints[j], &endpoints[count]))
				return refuse(message, size, "--tetherd '%s' lists %s twice", text,
					      endpoints[count].text);
		count++;
	}
	if (!count)
		return refuse(message, size, "--tetherd needs an endpoint (unix:/path or tcp:ADDR:PORT)");
	return count;
}

int agent_parse_function(const char *text, struct agent_function *function)
{
	char copy[64];
	char *colon;
	__u64 count;

	if (strlen(text) >= sizeof(copy))
		return -1;
	strcpy(copy, text);
	colon = strchr(copy, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	char *third = strchr(colon + 1, ':');
	__u64 concurrency = 0;

	function->handler[0] = '\0';
	if (third) {
		char *fourth = strchr(third + 1, ':');

		*third = '\0';
		if (fourth) {
			*fourth = '\0';
			if (!agent_handler_find(fourth + 1) ||
			    strlen(fourth + 1) >= sizeof(function->handler))
				return -1;
			strcpy(function->handler, fourth + 1);
		}
		if (strncmp(third + 1, "0x", 2) == 0 || parse_u64(third + 1, &concurrency) ||
		    concurrency > UINT32_MAX)
			return -1;
	}
	if (parse_u64(copy, &function->function_id) || function->function_id == 0 ||
	    strncmp(colon + 1, "0x", 2) == 0 || parse_u64(colon + 1, &count) ||
	    count > UINT32_MAX)
		return -1;
	function->count = count;
	function->concurrency = concurrency;
	return 0;
}

/* aa:bb:cc:dd:ee:ff, either case, written back lowercase. */
static int parse_mac(const char *text, char out[18])
{
	__u8 bytes[6];

	if (strlen(text) != 17)
		return -1;
	for (int i = 0; i < 6; i++) {
		int high = g_ascii_xdigit_value(text[i * 3]), low = g_ascii_xdigit_value(text[i * 3 + 1]);

		if (high < 0 || low < 0 || (i < 5 && text[i * 3 + 2] != ':'))
			return -1;
		bytes[i] = high << 4 | low;
	}
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
		 bytes[3], bytes[4], bytes[5]);
	return 0;
}

static int copy_path(const char *option, const char *value, char *out, size_t out_size,
		     char *message, size_t size)
{
	if (!value[0] || strlen(value) >= out_size)
		return refuse(message, size, "--%s '%s' is not a file name (1-%zu characters)",
			      option, value, out_size - 1);
	strcpy(out, value);
	return 0;
}

/* A DNS name (letters, digits, '-', '.', '_'; up to 253) or an IP address. */
static bool server_name_is_valid(const char *name)
{
	unsigned char buffer[16];
	size_t len = strlen(name);

	if (inet_pton(AF_INET, name, buffer) == 1 || inet_pton(AF_INET6, name, buffer) == 1)
		return true;
	if (!len || len > 253 || name[0] == '.' || name[0] == '-')
		return false;
	for (const char *c = name; *c; c++)
		if (!g_ascii_isalnum(*c) && *c != '-' && *c != '.' && *c != '_')
			return false;
	return true;
}

static int apply(struct agent_options *o, int id, const char *value, char *message,
		 size_t size)
{
	__u8 addr[16];

	switch (id) {
	case OPT_NAME:
		if (!name_is_valid(value, 31))
			return refuse(message, size,
				      "--name '%s' must be 1-31 of A-Z a-z 0-9 . _ -", value);
		strcpy(o->name, value);
		return 0;
	case OPT_ADDR:
		if (addr_parse(value, addr))
			return refuse(message, size, "--addr '%s' is not an IPv4 or IPv6 address",
				      value);
		addr_format(addr, o->addr, sizeof(o->addr));
		return 0;
	case OPT_MAC:
		if (parse_mac(value, o->mac))
			return refuse(message, size, "--mac '%s' is not aa:bb:cc:dd:ee:ff", value);
		return 0;
	case OPT_ROUTER_IFACE:
		if (!name_is_valid(value, IFNAMSIZ - 1))
			return refuse(message, size,
				      "--router-iface '%s' is not an interface name (1-15 of A-Z a-z 0-9 . _ -)",
				      value);
		strcpy(o->router_iface, value);
		return 0;
	case OPT_VLAN: {
		__u64 vid;

		if (strncmp(value, "0x", 2) == 0 || parse_u64(value, &vid) || vid > TETHER_VLAN_MAX)
			return refuse(message, size,
				      "--vlan '%s' is not a VLAN id: 1 to %u, or 0 for untagged", value,
				      TETHER_VLAN_MAX);
		o->vlan = (__u16)vid;
		return 0;
	}
	case OPT_DECAP: {
		int encap = proto_encap_from_name(value);

		if (encap != BACKEND_VXLAN && encap != BACKEND_IPIP)
			return refuse(message, size, "--decap '%s' is not vxlan or ipip", value);
		o->decap = (__u8)encap;
		return 0;
	}
	case OPT_VNI: {
		__u64 vni;

		if (parse_u64(value, &vni) || vni > TETHER_VNI_MAX)
			return refuse(message, size, "--vni '%s' is not a VNI: 0 to %u", value,
				      TETHER_VNI_MAX);
		o->vni = (__u32)vni;
		return 0;
	}
	case OPT_VIP:
		if (o->vip_count == AGENT_MAX_VIPS)
			return refuse(message, size, "at most %d --vip", AGENT_MAX_VIPS);
		if (agent_parse_vip(value, &o->vips[o->vip_count]))
			return refuse(message, size,
				      "--vip '%s' is not ADDR:PORT (IPv6 as [ADDR]:PORT)", value);
		o->vip_count++;
		return 0;
	case OPT_TETHERD: {
		struct agent_endpoint endpoints[AGENT_MAX_TETHERDS];
		int count = agent_parse_endpoints(value, endpoints, AGENT_MAX_TETHERDS, message,
						  size);

		if (count < 0)
			return -1;
		/* Given twice, the last one counts, as for every single-valued option. */
		memcpy(o->tetherds, endpoints, count * sizeof(endpoints[0]));
		o->tetherd_count = count;
		return 0;
	}
	case OPT_SECRET_FILE:
		if (strlen(value) >= sizeof(o->secret_file))
			return refuse(message, size, "--secret-file '%s' is too long", value);
		strcpy(o->secret_file, value);
		return 0;
	case OPT_TLS_CA:
		return copy_path("tls-ca", value, o->tls_ca, sizeof(o->tls_ca), message, size);
	case OPT_TLS_CERT:
		return copy_path("tls-cert", value, o->tls_cert, sizeof(o->tls_cert), message, size);
	case OPT_TLS_KEY:
		return copy_path("tls-key", value, o->tls_key, sizeof(o->tls_key), message, size);
	case OPT_TLS_SERVER_NAME:
		if (!server_name_is_valid(value))
			return refuse(message, size,
				      "--tls-server-name '%s' is not a DNS name or an IP address",
				      value);
		strcpy(o->tls_server_name, value);
		return 0;
	case OPT_TCP_PLAIN:
		o->tcp_plain = true;
		return 0;
	case OPT_FUNCTION:
		if (o->function_count == AGENT_MAX_FUNCTIONS)
			return refuse(message, size, "at most %d --function", AGENT_MAX_FUNCTIONS);
		if (agent_parse_function(value, &o->functions[o->function_count]))
			return refuse(message, size,
				      "--function '%s' is not F:COUNT[:CONCURRENCY[:HANDLER]] (F a nonzero "
				      "id, decimal or 0x hex; a known handler)",
				      value);
		o->function_count++;
		return 0;
	case OPT_COMPLETION: {
		g_auto(GStrv) parts = g_strsplit(value, ",", -1);

		o->completion_count = 0;
		for (int i = 0; parts[i]; i++) {
			if (o->completion_count == AGENT_MAX_COMPLETIONS)
				return refuse(message, size, "at most %d --completion addresses",
					      AGENT_MAX_COMPLETIONS);
			if (agent_parse_vip(parts[i], &o->completions[o->completion_count]))
				return refuse(message, size,
					      "--completion '%s' is not ADDR:PORT (IPv6 as [ADDR]:PORT)",
					      parts[i]);
			o->completion_count++;
		}
		return 0;
	}
	case OPT_HANDLER:
		if (!agent_handler_find(value))
			return refuse(message, size, "--handler '%s' is unknown; known: %s", value,
				      agent_handler_names());
		strcpy(o->handler, value);
		return 0;
	case OPT_COLD_START:
		return parse_ms("cold-start-ms", value, 0, &o->cold_start_ms, message, size);
	case OPT_HEARTBEAT:
		return parse_ms("heartbeat-ms", value, 30, &o->heartbeat_ms, message, size);
	case OPT_DRAIN:
		return parse_ms("drain-ms", value, 0, &o->drain_ms, message, size);
	case OPT_MAX_CONTAINERS:
		return parse_ms("max-containers", value, 1, &o->max_containers, message, size);
	case OPT_CAPACITY_ANY:
		o->capacity_any = true;
		/* fall through */
	case OPT_CAPACITY:
		o->capacity = true;
		return 0;
	}
	return refuse(message, size, "unknown option");
}

static void set_defaults(struct agent_options *o)
{
	memset(o, 0, sizeof(*o));
	agent_parse_endpoint(AGENT_DEFAULT_TETHERD, &o->tetherds[0]);
	o->tetherd_count = 1;
	strcpy(o->handler, AGENT_DEFAULT_HANDLER);
	o->cold_start_ms = AGENT_DEFAULT_COLD_START_MS;
	o->heartbeat_ms = AGENT_DEFAULT_HEARTBEAT_MS;
	o->drain_ms = AGENT_DEFAULT_DRAIN_MS;
	o->max_containers = AGENT_DEFAULT_MAX_CONTAINERS;
}

/* tcp: endpoints: TLS (--tls-ca) or plain asked for (--tcp-plain); a
 * secret or a client certificate. TLS options only with tcp: endpoints. */
static int check_tls(const struct agent_options *o, char *message, size_t size)
{
	const struct agent_endpoint *tcp = NULL;
	const char *tls = o->tls_ca[0]		? "--tls-ca"
			  : o->tls_cert[0]	? "--tls-cert"
			  : o->tls_key[0]	? "--tls-key"
			  : o->tls_server_name[0] ? "--tls-server-name"
						: NULL;

	for (int i = 0; i < o->tetherd_count && !tcp; i++)
		if (o->tetherds[i].tcp)
			tcp = &o->tetherds[i];
	if (!tcp && (tls || o->tcp_plain))
		return refuse(message, size, "%s is for tcp: endpoints, and --tetherd lists none",
			      tls ? tls : "--tcp-plain");
	if (!tcp)
		return 0;
	if (o->tcp_plain && tls)
		return refuse(message, size,
			      "--tcp-plain connects without TLS, but %s asks for TLS: give one or "
			      "the other",
			      tls);
	if (!o->tcp_plain && !o->tls_ca[0])
		return refuse(message, size,
			      "--tetherd %s is TCP: give --tls-ca (the CA of tetherd's "
			      "certificate), or --tcp-plain to connect without TLS, where the "
			      "secret crosses the network in clear",
			      tcp->text);
	if (!o->tls_cert[0] != !o->tls_key[0])
		return refuse(message, size, "--tls-cert and --tls-key go together");
	if (!o->secret_file[0] && !o->tls_cert[0])
		return refuse(message, size,
			      "--tetherd %s needs --secret-file, or a client certificate "
			      "(--tls-cert, --tls-key)",
			      tcp->text);
	return 0;
}

static int check_complete(const struct agent_options *o, char *message, size_t size)
{
	int err;

	if (!o->name[0])
		return refuse(message, size, "--name is required (the backend's name)");
	if (!o->addr[0])
		return refuse(message, size, "--addr is required (this VM's address)");
	if (!o->decap && !o->mac[0])
		return refuse(message, size, "--mac is required (this VM's MAC address), "
					     "unless the router reaches it routed (--decap)");
	if (!o->decap && !o->router_iface[0])
		return refuse(message, size,
			      "--router-iface is required (the router's interface to this VM), "
			      "unless the router reaches it routed (--decap)");
	if (o->decap && o->vlan)
		return refuse(message, size, "--vlan is for a VM on the router's segment, not "
					     "with --decap");
	if (o->vni && o->decap != BACKEND_VXLAN)
		return refuse(message, size, "--vni is for --decap vxlan");
	if (!o->vip_count)
		return refuse(message, size, "at least one --vip ADDR:PORT is required");
	if ((err = check_tls(o, message, size)))
		return err;
	for (int i = 0; i < o->function_count; i++)
		for (int j = 0; j < i; j++)
			if (o->functions[i].function_id == o->functions[j].function_id)
				return refuse(message, size, "--function %llu is given twice",
					      (unsigned long long)o->functions[i].function_id);
	return 0;
}

int agent_options_parse(int argc, char **argv, struct agent_options *o, char *message,
			size_t size)
{
	int id;

	set_defaults(o);
	optind = 0; /* glibc: start over, also when called again (tests) */
	opterr = 0;
	while ((id = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (id == OPT_HELP)
			return 1;
		if (id == OPT_VERSION)
			return 2;
		if (id == '?' || id == ':') {
			const char *word = argv[optind - 1];

			return refuse(message, size,
				      id == ':' || optopt ? "option '%s' needs a value"
							  : "unknown option '%s' (--help lists them)",
				      word);
		}
		if (apply(o, id, optarg, message, size))
			return -1;
	}
	if (optind < argc)
		return refuse(message, size, "unexpected argument '%s'", argv[optind]);
	return check_complete(o, message, size);
}

__u32 agent_function_concurrency(const struct agent_options *o, __u64 function_id)
{
	for (int i = 0; i < o->function_count; i++)
		if (o->functions[i].function_id == function_id)
			return o->functions[i].concurrency;
	return 0;
}

const char *agent_function_handler(const struct agent_options *o, __u64 function_id)
{
	for (int i = 0; i < o->function_count; i++)
		if (o->functions[i].function_id == function_id && o->functions[i].handler[0])
			return o->functions[i].handler;
	return o->handler;
}

bool agent_serves_on_demand(const struct agent_options *o, __u64 function_id)
{
	if (!o->capacity)
		return false;
	if (o->capacity_any)
		return true;
	for (int i = 0; i < o->function_count; i++)
		if (o->functions[i].function_id == function_id)
			return true;
	return false;
}
