// SPDX-License-Identifier: MIT
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <getopt.h>
#include <glib.h>
#include <pwd.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privileges.h"
#include "store_records.h"
#include "tether_version.h"
#include "control/protocol.h"
#include "tls/tls.h"

static const char usage[] =
	"usage: tetherd --iface IF [--iface IF2 ...] --vip ADDR:PORT [--vip ...] [options]\n"
	"       tetherd --unload [--pin-root DIR]\n"
	"\n"
	"Loads Tether's XDP router onto IF (or adopts the one pinned under the pin\n"
	"root, with its state), serves the control socket, follows container\n"
	"lifecycle and answers the requests the XDP program hands up.\n"
	"\n"
	"  --iface IF             attach to this interface (repeatable)\n"
	"  --vip ADDR:PORT        a service address, IPv4 or [IPv6] (repeatable)\n"
	"  --completion ADDR:PORT the router's completion address: backends send DONE and\n"
	"                         ALIVE datagrams there (repeatable; the interfaces they\n"
	"                         come in on must be --iface too)\n"
	"  --xdp-mode MODE        auto (native, else generic), native, generic\n"
	"  --pin-root DIR         where maps and links are pinned (" TETHERD_DEFAULT_PIN_ROOT ")\n"
	"  --socket PATH          the control socket (" TETHERD_DEFAULT_SOCKET ")\n"
	"  --socket-group GROUP   let GROUP use the socket too (mode 0660)\n"
	"  --heartbeat-ms N       a backend missing heartbeats this long is down (3000)\n"
	"  --restart-grace-ms N   while no tetherd runs (a restart, an upgrade), the data\n"
	"                         plane keeps routing to a backend this long past its\n"
	"                         deadline: its agent cannot heartbeat then (15000; backends\n"
	"                         that send ALIVE datagrams need none)\n"
	"  --drain-ms N           default drain deadline (30000)\n"
	"  --hold-ms N            how long the slow path holds a request for capacity (1000)\n"
	"  --queue N              requests held per function (256)\n"
	"  --admit-rate N         requests per second of one function that the XDP program\n"
	"                         hands to the slow path (500; 0: no limit); beyond it and\n"
	"                         its burst it answers them OVERLOADED itself\n"
	"  --admit-burst N        ... at once after a quiet while (256)\n"
	"  --admit-total-rate N   the same for every function together (5000; 0: no limit)\n"
	"  --admit-total-burst N  (2048)\n"
	"  --shed-answer-rate N   OVERLOADED answers per second the XDP program sends at most;\n"
	"                         beyond, shed requests are dropped (100000; 0: no cap)\n"
	"  --shed-answer-burst N  (10000)\n"
	"  --tcp-listen ADDR:PORT a TCP listener for remote VM agents and orchestrators,\n"
	"                         TLS (--tls-cert, --tls-key) unless --tcp-plain; each\n"
	"                         connection authenticates: a client certificate\n"
	"                         (--tls-client-ca) or a secret first (auth agent)\n"
	"  --tls-cert F           tetherd's certificate for the listener (PEM; its chain after\n"
	"                         it), read again on SIGHUP\n"
	"  --tls-key F            its private key (PEM; no access for others), read again on\n"
	"                         SIGHUP\n"
	"  --tls-client-ca F      require client certificates signed by these CAs (PEM; read\n"
	"                         again on SIGHUP): a certificate whose subject CN is NAME\n"
	"                         binds its connection to backend NAME, as that backend's\n"
	"                         own secret does; secrets become optional\n"
	"  --tls-operator NAME    a client certificate with CN=NAME is an operator's: any\n"
	"                         backend, as the shared secret (repeatable, at most 8)\n"
	"  --tcp-plain            listen without TLS: secrets cross the network in clear\n"
	"                         (logged as a warning)\n"
	"  --tcp-secret-file F    the shared secret: the operator's or orchestrator's\n"
	"                         credential, good for every backend (full access but unload)\n"
	"  --agent-secrets-dir D  per-backend secrets: D/NAME holds backend NAME's own\n"
	"                         secret (16+ characters), read again at each auth. An agent\n"
	"                         that sends it with backend=NAME may change NAME and its\n"
	"                         containers, nothing else. D and its files must be the\n"
	"                         user's of tetherd (root, or --user) and private to it\n"
	"                         (chmod 700 D, chmod 600 D/*), or tetherd refuses them\n"
	"  --agent-rate N         lifecycle changes a second a backend's agent may send over\n"
	"                         TCP (its connections together; an unbound connection on\n"
	"                         its own), in bursts of as many; more are refused\n"
	"                         'overloaded' (100; 0: no limit)\n"
	"  --user NAME            once loaded, attached and listening, run as NAME (its uid,\n"
	"                         gid and groups) with the same few capabilities; its\n"
	"                         group may use the pins. Start as root\n"
	"  --store etcd=URL[,URL] fleet mode: the fleet's state lives in etcd at these\n"
	"                         endpoints (http://127.0.0.1:2379,...); this tetherd mirrors\n"
	"                         it and writes lifecycle requests through (docs/store.md)\n"
	"  --fleet NAME           the fleet: its keys are under /tether/NAME/ (default)\n"
	"  --router-name NAME     this router in the fleet (the host name)\n"
	"  --metrics-listen A:P   serve /metrics (Prometheus text format) over HTTP on\n"
	"                         ADDR:PORT, such as 127.0.0.1:9417 or [::1]:9417\n"
	"  --metrics-functions N  functions with /metrics series of their own (100); the\n"
	"                         others are summed into function=\"other\"\n"
	"  --accept-local         set net.ipv4.conf.IF.accept_local=1 on each backend's\n"
	"                         interface (and rp_filter 1 to 2), so replies a VM routes\n"
	"                         back through this host are not dropped as martians;\n"
	"                         without it tetherd warns where they would be\n"
	"  --encap-source ADDR    the outer source address of packets to routed backends\n"
	"                         (backend add --encap vxlan|ipip): one IPv4 and/or one\n"
	"                         IPv6 address of this host (repeatable, once a family)\n"
	"  --store-ca F           https:// endpoints: the CAs of etcd's certificates (PEM)\n"
	"  --store-cert F         ... tetherd's client certificate for etcd (PEM), with\n"
	"  --store-key F          ... its key; the three are read at start and on SIGHUP\n"
	"  --config FILE          settings file: [tetherd] group, same names, lists with ';'\n"
	"  --unload               detach, remove every pin under the pin root, exit\n"
	"  --version              print the version (tetherd VERSION) and exit\n";

enum option_id {
	OPT_IFACE = 1, OPT_VIP, OPT_XDP_MODE, OPT_PIN_ROOT, OPT_SOCKET, OPT_SOCKET_GROUP,
	OPT_HEARTBEAT, OPT_DRAIN, OPT_HOLD, OPT_QUEUE, OPT_ADMIT_RATE, OPT_ADMIT_BURST,
	OPT_ADMIT_TOTAL_RATE, OPT_ADMIT_TOTAL_BURST, OPT_ANSWER_RATE, OPT_ANSWER_BURST,
	OPT_TCP_LISTEN, OPT_TCP_SECRET, OPT_AGENT_SECRETS, OPT_AGENT_RATE, OPT_TLS_CERT,
	OPT_TLS_KEY, OPT_TLS_CLIENT_CA, OPT_TLS_OPERATOR, OPT_TCP_PLAIN, OPT_USER, OPT_STORE,
	OPT_FLEET, OPT_ROUTER_NAME, OPT_STORE_CA, OPT_STORE_CERT, OPT_STORE_KEY, OPT_CONFIG,
	OPT_UNLOAD, OPT_HELP, OPT_VERSION, OPT_METRICS_LISTEN, OPT_METRICS_FUNCTIONS,
	OPT_ACCEPT_LOCAL, OPT_COMPLETION, OPT_ENCAP_SOURCE, OPT_RESTART_GRACE,
};

static const struct option options[] = {
	{ "iface", required_argument, 0, OPT_IFACE },
	{ "vip", required_argument, 0, OPT_VIP },
	{ "xdp-mode", required_argument, 0, OPT_XDP_MODE },
	{ "pin-root", required_argument, 0, OPT_PIN_ROOT },
	{ "socket", required_argument, 0, OPT_SOCKET },
	{ "socket-group", required_argument, 0, OPT_SOCKET_GROUP },
	{ "heartbeat-ms", required_argument, 0, OPT_HEARTBEAT },
	{ "restart-grace-ms", required_argument, 0, OPT_RESTART_GRACE },
	{ "drain-ms", required_argument, 0, OPT_DRAIN },
	{ "hold-ms", required_argument, 0, OPT_HOLD },
	{ "queue", required_argument, 0, OPT_QUEUE },
	{ "admit-rate", required_argument, 0, OPT_ADMIT_RATE },
	{ "admit-burst", required_argument, 0, OPT_ADMIT_BURST },
	{ "admit-total-rate", required_argument, 0, OPT_ADMIT_TOTAL_RATE },
	{ "admit-total-burst", required_argument, 0, OPT_ADMIT_TOTAL_BURST },
	{ "shed-answer-rate", required_argument, 0, OPT_ANSWER_RATE },
	{ "shed-answer-burst", required_argument, 0, OPT_ANSWER_BURST },
	{ "tcp-listen", required_argument, 0, OPT_TCP_LISTEN },
	{ "tcp-secret-file", required_argument, 0, OPT_TCP_SECRET },
	{ "agent-secrets-dir", required_argument, 0, OPT_AGENT_SECRETS },
	{ "agent-rate", required_argument, 0, OPT_AGENT_RATE },
	{ "tls-cert", required_argument, 0, OPT_TLS_CERT },
	{ "tls-key", required_argument, 0, OPT_TLS_KEY },
	{ "tls-client-ca", required_argument, 0, OPT_TLS_CLIENT_CA },
	{ "tls-operator", required_argument, 0, OPT_TLS_OPERATOR },
	{ "tcp-plain", no_argument, 0, OPT_TCP_PLAIN },
	{ "user", required_argument, 0, OPT_USER },
	{ "store", required_argument, 0, OPT_STORE },
	{ "fleet", required_argument, 0, OPT_FLEET },
	{ "router-name", required_argument, 0, OPT_ROUTER_NAME },
	{ "store-ca", required_argument, 0, OPT_STORE_CA },
	{ "store-cert", required_argument, 0, OPT_STORE_CERT },
	{ "store-key", required_argument, 0, OPT_STORE_KEY },
	{ "config", required_argument, 0, OPT_CONFIG },
	{ "unload", no_argument, 0, OPT_UNLOAD },
	{ "help", no_argument, 0, OPT_HELP },
	{ "version", no_argument, 0, OPT_VERSION },
	{ "metrics-listen", required_argument, 0, OPT_METRICS_LISTEN },
	{ "metrics-functions", required_argument, 0, OPT_METRICS_FUNCTIONS },
	{ "accept-local", no_argument, 0, OPT_ACCEPT_LOCAL },
	{ "completion", required_argument, 0, OPT_COMPLETION },
	{ "encap-source", required_argument, 0, OPT_ENCAP_SOURCE },
	{ 0, 0, 0, 0 },
};

static int parse_u32(const char *name, const char *text, __u32 *out)
{
	char *end;
	unsigned long value = strtoul(text, &end, 10);

	if (!*text || *end || value > UINT32_MAX) {
		fprintf(stderr, "tetherd: --%s '%s' is not a number\n", name, text);
		return -EINVAL;
	}
	*out = value;
	return 0;
}

static int copy_setting(const char *name, const char *text, char *out, size_t size)
{
	if (strlen(text) >= size) {
		fprintf(stderr, "tetherd: --%s '%s' is too long\n", name, text);
		return -EINVAL;
	}
	snprintf(out, size, "%s", text);
	return 0;
}

static int read_secret(const char *path, char *out, size_t size)
{
	g_autofree char *contents = NULL;
	g_autoptr(GError) error = NULL;

	if (!g_file_get_contents(path, &contents, NULL, &error)) {
		fprintf(stderr, "tetherd: cannot read the TCP secret: %s\n", error->message);
		return -EINVAL;
	}
	g_strstrip(contents);
	return copy_setting("tcp-secret-file", contents, out, size);
}

static int apply(struct tetherd_config *config, int id, const char *name, const char *value)
{
	switch (id) {
	case OPT_IFACE:
		if (config->iface_count == TETHERD_MAX_IFACES)
			return fprintf(stderr, "tetherd: at most %d --iface\n", TETHERD_MAX_IFACES),
			       -EINVAL;
		return copy_setting(name, value, config->ifaces[config->iface_count++],
				    sizeof(config->ifaces[0]));
	case OPT_VIP:
		if (config->vip_count == TETHERD_MAX_VIPS ||
		    endpoint_parse(value, config->vips[config->vip_count].addr,
				   &config->vips[config->vip_count].port))
			return fprintf(stderr, "tetherd: --vip '%s' is not ADDR:PORT or "
					       "[IPv6]:PORT (at most %d)\n",
				       value, TETHERD_MAX_VIPS),
			       -EINVAL;
		config->vip_count++;
		return 0;
	case OPT_COMPLETION:
		if (config->completion_count == TETHERD_MAX_VIPS ||
		    endpoint_parse(value, config->completions[config->completion_count].addr,
				   &config->completions[config->completion_count].port))
			return fprintf(stderr, "tetherd: --completion '%s' is not ADDR:PORT or "
					       "[IPv6]:PORT (at most %d)\n",
				       value, TETHERD_MAX_VIPS),
			       -EINVAL;
		config->completion_count++;
		return 0;
	case OPT_ENCAP_SOURCE: {
		__u8 addr[16];
		bool v4;

		if (addr_parse(value, addr))
			return fprintf(stderr, "tetherd: --encap-source '%s' is not an IPv4 or IPv6 "
					       "address\n", value),
			       -EINVAL;
		v4 = addr_is_v4mapped(addr);
		if (v4 ? config->encap.source4 != 0 : config->has_encap_source6)
			return fprintf(stderr, "tetherd: --encap-source: one %s address at most "
					       "('%s' is the second)\n", v4 ? "IPv4" : "IPv6", value),
			       -EINVAL;
		if (v4) {
			memcpy(&config->encap.source4, addr + 12, 4);
		} else {
			memcpy(config->encap.source6, addr, 16);
			config->has_encap_source6 = true;
		}
		return 0;
	}
	case OPT_XDP_MODE:
		if (xdp_mode_parse(value, &config->xdp_mode))
			return fprintf(stderr, "tetherd: --xdp-mode is auto, native or generic\n"),
			       -EINVAL;
		return 0;
	case OPT_PIN_ROOT:
		return copy_setting(name, value, config->pin_root, sizeof(config->pin_root));
	case OPT_SOCKET:
		return copy_setting(name, value, config->socket_path, sizeof(config->socket_path));
	case OPT_SOCKET_GROUP:
		return copy_setting(name, value, config->socket_group,
				    sizeof(config->socket_group));
	case OPT_HEARTBEAT:
		return parse_u32(name, value, &config->heartbeat_ms);
	case OPT_RESTART_GRACE:
		return parse_u32(name, value, &config->restart_grace_ms);
	case OPT_DRAIN:
		return parse_u32(name, value, &config->drain_ms);
	case OPT_HOLD:
		return parse_u32(name, value, &config->slowpath.hold_ms);
	case OPT_QUEUE:
		return parse_u32(name, value, &config->slowpath.queue_per_function);
	case OPT_ADMIT_RATE:
		return parse_u32(name, value, &config->admission.function_rate);
	case OPT_ADMIT_BURST:
		return parse_u32(name, value, &config->admission.function_burst);
	case OPT_ADMIT_TOTAL_RATE:
		return parse_u32(name, value, &config->admission.total_rate);
	case OPT_ADMIT_TOTAL_BURST:
		return parse_u32(name, value, &config->admission.total_burst);
	case OPT_ANSWER_RATE:
		return parse_u32(name, value, &config->admission.answer_rate);
	case OPT_ANSWER_BURST:
		return parse_u32(name, value, &config->admission.answer_burst);
	case OPT_TCP_LISTEN:
		return copy_setting(name, value, config->tcp_listen, sizeof(config->tcp_listen));
	case OPT_TCP_SECRET:
		return read_secret(value, config->tcp_secret, sizeof(config->tcp_secret));
	case OPT_AGENT_SECRETS:
		return copy_setting(name, value, config->agent_secrets_dir,
				    sizeof(config->agent_secrets_dir));
	case OPT_AGENT_RATE:
		return parse_u32(name, value, &config->agent_rate);
	case OPT_TLS_CERT:
		return copy_setting(name, value, config->tls.cert, sizeof(config->tls.cert));
	case OPT_TLS_KEY:
		return copy_setting(name, value, config->tls.key, sizeof(config->tls.key));
	case OPT_TLS_CLIENT_CA:
		return copy_setting(name, value, config->tls.client_ca,
				    sizeof(config->tls.client_ca));
	case OPT_TLS_OPERATOR:
		if (!config_is_name(value))
			return fprintf(stderr, "tetherd: --tls-operator '%s' must be 1-31 of A-Z a-z "
					       "0-9 . _ - (a client certificate's CN)\n",
				       value),
			       -EINVAL;
		if (config->tls.operator_count == TETHERD_MAX_OPERATORS)
			return fprintf(stderr, "tetherd: at most %d --tls-operator\n",
				       TETHERD_MAX_OPERATORS),
			       -EINVAL;
		return copy_setting(name, value, config->tls.operators[config->tls.operator_count++],
				    sizeof(config->tls.operators[0]));
	case OPT_TCP_PLAIN:
		config->tls.plain = true;
		return 0;
	case OPT_STORE_CA:
		return copy_setting(name, value, config->fleet.ca, sizeof(config->fleet.ca));
	case OPT_STORE_CERT:
		return copy_setting(name, value, config->fleet.cert, sizeof(config->fleet.cert));
	case OPT_STORE_KEY:
		return copy_setting(name, value, config->fleet.key, sizeof(config->fleet.key));
	case OPT_USER:
		return copy_setting(name, value, config->user, sizeof(config->user));
	case OPT_STORE:
		if (strncmp(value, "etcd=", 5) || !value[5])
			return fprintf(stderr, "tetherd: --store is etcd=URL[,URL...], such as "
					       "etcd=http://127.0.0.1:2379\n"),
			       -EINVAL;
		return copy_setting(name, value + 5, config->fleet.endpoints,
				    sizeof(config->fleet.endpoints));
	case OPT_FLEET:
		return copy_setting(name, value, config->fleet.name, sizeof(config->fleet.name));
	case OPT_ROUTER_NAME:
		return copy_setting(name, value, config->fleet.router, sizeof(config->fleet.router));
	case OPT_UNLOAD:
		config->unload = true;
		return 0;
	case OPT_METRICS_LISTEN:
		return copy_setting(name, value, config->metrics.listen,
				    sizeof(config->metrics.listen));
	case OPT_METRICS_FUNCTIONS:
		return parse_u32(name, value, &config->metrics.functions);
	case OPT_ACCEPT_LOCAL:
		/* From the file: "accept-local = true" (or false). */
		config->accept_local = !value || !strcmp(value, "true") || !strcmp(value, "yes") ||
				       !strcmp(value, "1");
		return 0;
	}
	return -EINVAL;
}

/* A flag in the file: "tcp-plain = true" (or false). */
static int apply_flag(struct tetherd_config *config, const struct option *option,
		      const char *value)
{
	if (!strcmp(value, "true"))
		return apply(config, option->val, option->name, NULL);
	if (!strcmp(value, "false"))
		return 0;
	fprintf(stderr, "tetherd: %s = %s: the value is true or false\n", option->name, value);
	return -EINVAL;
}

static int apply_file(struct tetherd_config *config, const char *path)
{
	g_autoptr(GKeyFile) file = g_key_file_new();
	g_autoptr(GError) error = NULL;

	if (!g_key_file_load_from_file(file, path, G_KEY_FILE_NONE, &error)) {
		fprintf(stderr, "tetherd: cannot read %s: %s\n", path, error->message);
		return -EINVAL;
	}
	for (const struct option *option = options; option->name; option++) {
		if (option->val == OPT_CONFIG || option->val == OPT_HELP ||
		    option->val == OPT_VERSION)
			continue;
		gsize count = 0;
		g_auto(GStrv) values =
			g_key_file_get_string_list(file, "tetherd", option->name, &count, NULL);

		for (gsize i = 0; i < count; i++) {
			g_strstrip(values[i]);
			int err = option->val == OPT_UNLOAD ? 0
				  : option->val == OPT_TCP_PLAIN ? apply_flag(config, option, values[i])
								  : apply(config, option->val, option->name,
									  values[i]);
			if (err)
				return err;
		}
	}
	return 0;
}

/* --- per-backend agent secrets ---------------------------------------------- */

bool config_is_name(const char *name)
{
	size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "0123456789._-");

	return len && len == strlen(name) && len <= PROTO_NAME_MAX;
}

/* As ssh checks its keys: a secret anyone but its reader may read or
 * replace is no secret. */
static int check_private(const char *path, const struct stat *st, bool dir, uid_t owner,
			 char *why, size_t size)
{
	if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) {
		snprintf(why, size, "%s is not a %s", path, dir ? "directory" : "regular file");
		return -EINVAL;
	}
	if (st->st_uid != owner) {
		snprintf(why, size, "%s belongs to uid %u, but tetherd reads its secrets as uid %u: "
			 "chown %u %s",
			 path, (unsigned)st->st_uid, (unsigned)owner, (unsigned)owner, path);
		return -EPERM;
	}
	if (st->st_mode & 077) {
		snprintf(why, size, "%s is open to group or others (mode %04o), so a secret in it "
			 "is not private: chmod %s %s",
			 path, (unsigned)(st->st_mode & 07777), dir ? "700" : "600", path);
		return -EPERM;
	}
	return 0;
}

int config_open_agent_secrets(const char *dir, uid_t owner, char *why, size_t size)
{
	struct stat st;
	int err, fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		err = -errno;
		snprintf(why, size, "cannot open the agent secrets directory %s: %s", dir,
			 strerror(errno));
		return err;
	}
	err = fstat(fd, &st) ? -errno : check_private(dir, &st, true, owner, why, size);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* The secret in dir_fd/name: a regular file (no symlink), private, one
 * protocol value of 16-127 characters. -ENOENT (why empty) when there is no
 * such file. */
static int read_secret_file(int dir_fd, const char *dir, const char *name, uid_t owner,
			    char *secret, size_t secret_size, char *why, size_t size)
{
	char path[512], contents[256];
	struct stat st;
	ssize_t got = 0;
	int err;

	why[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		err = -errno;
		if (err != -ENOENT)
			snprintf(why, size, "cannot open %s: %s%s", path, strerror(errno),
				 err == -ELOOP ? " (a symbolic link: put the secret itself there)"
					       : "");
		return err;
	}
	err = fstat(fd, &st) ? -errno : check_private(path, &st, false, owner, why, size);
	if (!err && (got = read(fd, contents, sizeof(contents) - 1)) < 0)
		err = -errno;
	close(fd);
	if (err) {
		if (!why[0])
			snprintf(why, size, "cannot read %s: %s", path, strerror(-err));
		return err;
	}
	contents[got] = '\0';
	g_strstrip(contents);
	if (strlen(contents) < 16 || strlen(contents) >= secret_size ||
	    !proto_value_valid(contents)) {
		snprintf(why, size, "%s must hold one secret of 16 to %zu characters without "
			 "spaces or '=' (it holds %zu characters)",
			 path, secret_size - 1, strlen(contents));
		err = -EINVAL;
	} else {
		snprintf(secret, secret_size, "%s", contents);
	}
	explicit_bzero(contents, sizeof(contents));
	return err;
}

int config_read_agent_secret(int dir_fd, const char *dir, const char *backend, uid_t owner,
			     char *secret, size_t secret_size, char *why, size_t size)
{
	struct stat st;
	int err;

	why[0] = '\0';
	if (!config_is_name(backend)) {
		snprintf(why, size, "'%s' is no backend name", backend);
		return -EINVAL;
	}
	/* The directory's mode and owner may have changed since start. */
	if (fstat(dir_fd, &st)) {
		snprintf(why, size, "cannot stat %s: %s", dir, strerror(errno));
		return -errno;
	}
	if ((err = check_private(dir, &st, true, owner, why, size)))
		return err;
	return read_secret_file(dir_fd, dir, backend, owner, secret, secret_size, why, size);
}

/* Every file of the directory, as an auth would read it: a mistake shows
 * at start, not when an agent is turned away. */
static int check_agent_secrets(const char *dir, uid_t owner)
{
	char why[768], secret[128];
	int err = 0, dir_fd = config_open_agent_secrets(dir, owner, why, sizeof(why));
	struct dirent *entry;

	if (dir_fd < 0) {
		fprintf(stderr, "tetherd: %s\n", why);
		return dir_fd;
	}
	DIR *listing = fdopendir(dup(dir_fd));

	if (!listing) {
		err = -errno;
		snprintf(why, sizeof(why), "cannot list %s: %s", dir, strerror(errno));
	}
	while (!err && (entry = readdir(listing))) {
		if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, ".."))
			continue;
		if (config_is_name(entry->d_name)) {
			err = read_secret_file(dir_fd, dir, entry->d_name, owner, secret,
					       sizeof(secret), why, sizeof(why));
			continue;
		}
		snprintf(why, sizeof(why), "%s/%s: the file name is no backend name "
			 "([A-Za-z0-9._-], 1-31 characters)", dir, entry->d_name);
		err = -EINVAL;
	}
	if (err)
		fprintf(stderr, "tetherd: %s\n", why);
	explicit_bzero(secret, sizeof(secret));
	if (listing)
		closedir(listing);
	close(dir_fd);
	return err;
}

/* The name of the first TLS option given, or NULL. */
static const char *tls_option_given(const struct tetherd_tls_config *tls)
{
	return tls->cert[0]        ? "--tls-cert"
	       : tls->key[0]       ? "--tls-key"
	       : tls->client_ca[0] ? "--tls-client-ca"
	       : tls->operator_count ? "--tls-operator"
				     : NULL;
}

/* The listener's TLS: asked for whole, or plain TCP asked for explicitly;
 * the files are loaded now, so that a mistake shows at start. */
static int check_tls_settings(const struct tetherd_config *config)
{
	const struct tetherd_tls_config *tls = &config->tls;
	const char *given = tls_option_given(tls);
	char why[512];

	if (!config->tcp_listen[0] && (given || tls->plain)) {
		fprintf(stderr, "tetherd: %s is for the TCP listener: give --tcp-listen ADDR:PORT too\n",
			given ? given : "--tcp-plain");
		return -EINVAL;
	}
	if (!config->tcp_listen[0])
		return 0;
	if (tls->plain && given) {
		fprintf(stderr, "tetherd: --tcp-plain listens without TLS, but %s asks for TLS: give "
				"one or the other\n",
			given);
		return -EINVAL;
	}
	if (tls->plain)
		return 0;
	if (!tls->cert[0] || !tls->key[0]) {
		fprintf(stderr, "tetherd: --tcp-listen %s needs TLS: --tls-cert and --tls-key (and "
				"--tls-client-ca for agents' certificates); or --tcp-plain to listen "
				"without it, where secrets cross the network in clear\n",
			config->tcp_listen);
		return -EINVAL;
	}
	if (tls->operator_count && !tls->client_ca[0]) {
		fprintf(stderr, "tetherd: --tls-operator names client certificates: give "
				"--tls-client-ca too\n");
		return -EINVAL;
	}
	struct tls_files files = { tls->cert, tls->key, tls->client_ca };
	struct tls_creds *creds = tls_creds_load(TLS_SERVER, &files, why, sizeof(why));

	if (!creds) {
		fprintf(stderr, "tetherd: %s\n", why);
		return -EINVAL;
	}
	tls_creds_unref(creds);
	return 0;
}

static int check_tcp_settings(const struct tetherd_config *config, uid_t secrets_owner)
{
	int err;

	if (config->agent_secrets_dir[0] && !config->tcp_listen[0]) {
		fprintf(stderr, "tetherd: --agent-secrets-dir is for agents on the TCP listener: "
				"give --tcp-listen ADDR:PORT too\n");
		return -EINVAL;
	}
	if ((err = check_tls_settings(config)))
		return err;
	if (!config->tcp_listen[0])
		return 0;
	/* Client certificates authenticate by themselves; secrets are optional then. */
	bool by_certificate = config->tls.client_ca[0];

	if (config->tcp_secret[0] ? strlen(config->tcp_secret) < 16
				  : !config->agent_secrets_dir[0] && !by_certificate) {
		fprintf(stderr, "tetherd: the TCP listener needs a shared secret of at least 16 "
				"characters (--tcp-secret-file), per-backend secrets "
				"(--agent-secrets-dir), client certificates (--tls-client-ca), or "
				"several of them\n");
		return -EINVAL;
	}
	return config->agent_secrets_dir[0]
		       ? check_agent_secrets(config->agent_secrets_dir, secrets_owner)
		       : 0;
}

/* The store's TLS: for https:// endpoints; the files readable now (at
 * start, maybe as root: fleet.c reads them once, into memory). */
static int check_store_tls(const struct fleet_config *fleet)
{
	const char *given = fleet->ca[0] ? "--store-ca" : fleet->cert[0] ? "--store-cert"
						      : fleet->key[0]  ? "--store-key"
								       : NULL;

	if (!given)
		return 0;
	if (!fleet->endpoints[0]) {
		fprintf(stderr, "tetherd: %s is for the fleet's store: give --store too\n", given);
		return -EINVAL;
	}
	if (strstr(fleet->endpoints, "http://")) {
		fprintf(stderr, "tetherd: %s is for https:// endpoints, but --store names http:// "
				"ones (%s)\n",
			given, fleet->endpoints);
		return -EINVAL;
	}
	if (!fleet->cert[0] != !fleet->key[0]) {
		fprintf(stderr, "tetherd: --store-cert and --store-key go together\n");
		return -EINVAL;
	}
	const char *const files[][2] = { { "--store-ca", fleet->ca },
					 { "--store-cert", fleet->cert },
					 { "--store-key", fleet->key } };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i][1][0] && access(files[i][1], R_OK)) {
			fprintf(stderr, "tetherd: %s %s: %s\n", files[i][0], files[i][1],
				strerror(errno));
			return -EINVAL;
		}
	return 0;
}

/* --user: it must exist, and tetherd must be able to become it. */
static int look_up_user(struct tetherd_config *config)
{
	char why[256];

	errno = 0;
	struct passwd *entry = getpwnam(config->user);

	if (!entry) {
		fprintf(stderr, "tetherd: no user named '%s' for --user%s%s (getent passwd %s; "
				"a system user of its own: useradd --system --user-group "
				"--no-create-home --shell /usr/sbin/nologin %s)\n",
			config->user, errno ? ": " : "", errno ? strerror(errno) : "",
			config->user, config->user);
		return -ENOENT;
	}
	config->user_uid = entry->pw_uid;
	config->user_gid = entry->pw_gid;
	if (privileges_can_switch(why, sizeof(why))) {
		fprintf(stderr, "tetherd: cannot become user '%s' later: %s\n", config->user, why);
		return -EPERM;
	}
	return 0;
}

static int check_fleet_settings(const struct fleet_config *fleet)
{
	char prefix[64];

	if (store_prefix(fleet->name, prefix, sizeof(prefix))) {
		fprintf(stderr, "tetherd: --fleet '%s' must be 1-31 of A-Z a-z 0-9 . _ -\n",
			fleet->name);
		return -EINVAL;
	}
	if (!store_name_valid(fleet->router)) {
		fprintf(stderr, "tetherd: --router-name '%s' must be 1-31 of A-Z a-z 0-9 . _ - "
				"(the host name is the default)\n",
			fleet->router);
		return -EINVAL;
	}
	return 0;
}

static int check_rate(const char *rate_option, __u32 rate, const char *burst_option, __u32 burst)
{
	if (rate > TETHER_ADMIT_MAX_RATE) {
		fprintf(stderr, "tetherd: --%s %u is above %u per second (0: no limit)\n",
			rate_option, rate, TETHER_ADMIT_MAX_RATE);
		return -EINVAL;
	}
	if (rate && !burst) {
		fprintf(stderr, "tetherd: --%s 0 admits nothing at all; give at least 1, or "
				"--%s 0 for no limit\n",
			burst_option, rate_option);
		return -EINVAL;
	}
	return 0;
}

static int check_admission(const struct admission_limits *a)
{
	return check_rate("admit-rate", a->function_rate, "admit-burst", a->function_burst) ?:
	       check_rate("admit-total-rate", a->total_rate, "admit-total-burst",
			  a->total_burst) ?:
	       check_rate("shed-answer-rate", a->answer_rate, "shed-answer-burst",
			  a->answer_burst);
}

/* What can be checked before anything is loaded or pinned: a start that
 * will be refused leaves nothing behind. */
static int check_settings(struct tetherd_config *config)
{
	int err;

	for (int i = 0; i < config->iface_count; i++)
		if (!if_nametoindex(config->ifaces[i])) {
			fprintf(stderr, "tetherd: interface '%s' does not exist (ip link shows them)\n",
				config->ifaces[i]);
			return -ENODEV;
		}
	if (config->socket_group[0] && !getgrnam(config->socket_group)) {
		fprintf(stderr, "tetherd: no group named '%s' for --socket-group\n",
			config->socket_group);
		return -ENOENT;
	}
	if (config->user[0] && (err = look_up_user(config)))
		return err;
	if (config->fleet.endpoints[0] && (err = check_fleet_settings(&config->fleet)))
		return err;
	if ((err = check_admission(&config->admission)))
		return err;

	__u8 metrics_addr[16];
	__u16 metrics_port;

	if (config->metrics.listen[0] &&
	    endpoint_parse(config->metrics.listen, metrics_addr, &metrics_port)) {
		fprintf(stderr, "tetherd: --metrics-listen '%s' is not ADDR:PORT or [IPv6]:PORT "
				"(such as 127.0.0.1:9417)\n",
			config->metrics.listen);
		return -EINVAL;
	}
	if ((err = check_store_tls(&config->fleet)))
		return err;
	/* The secrets are read by tetherd as the user it runs as. */
	return check_tcp_settings(config, config->user[0] ? config->user_uid : geteuid());
}

static void set_defaults(struct tetherd_config *config)
{
	memset(config, 0, sizeof(*config));
	snprintf(config->pin_root, sizeof(config->pin_root), "%s", TETHERD_DEFAULT_PIN_ROOT);
	snprintf(config->socket_path, sizeof(config->socket_path), "%s", TETHERD_DEFAULT_SOCKET);
	config->xdp_mode = XDP_MODE_AUTO;
	config->heartbeat_ms = 3000;
	config->restart_grace_ms = 15000;
	config->agent_rate = 100;
	config->drain_ms = 30000;
	config->slowpath = (struct slowpath_config){ .hold_ms = 1000,
						     .queue_per_function = 256,
						     .queue_total = 16384 };
	config->admission = (struct admission_limits){
		.function_rate = TETHERD_DEFAULT_ADMIT_RATE,
		.function_burst = TETHERD_DEFAULT_ADMIT_BURST,
		.total_rate = TETHERD_DEFAULT_ADMIT_TOTAL_RATE,
		.total_burst = TETHERD_DEFAULT_ADMIT_TOTAL_BURST,
		.answer_rate = TETHERD_DEFAULT_SHED_ANSWER_RATE,
		.answer_burst = TETHERD_DEFAULT_SHED_ANSWER_BURST,
	};
	config->metrics.functions = METRICS_DEFAULT_FUNCTIONS;
	snprintf(config->fleet.name, sizeof(config->fleet.name), "default");
	/* The host's short name, as a fleet's routers/ key names it. */
	if (gethostname(config->fleet.router, sizeof(config->fleet.router)))
		snprintf(config->fleet.router, sizeof(config->fleet.router), "router");
	config->fleet.router[strcspn(config->fleet.router, ".")] = '\0';
}

int config_parse(struct tetherd_config *config, int argc, char **argv)
{
	int id, err;

	set_defaults(config);
	/* The file first, so the command line overrides it. */
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--config") && (err = apply_file(config, argv[i + 1])))
			return err;
	/* A list given on the command line replaces the file's list. */
	bool cmdline_ifaces = false, cmdline_vips = false;

	while ((id = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (id == OPT_IFACE && !cmdline_ifaces) {
			config->iface_count = 0;
			cmdline_ifaces = true;
		}
		if (id == OPT_VIP && !cmdline_vips) {
			config->vip_count = 0;
			cmdline_vips = true;
		}
		if (id == OPT_HELP) {
			fputs(usage, stdout);
			return 1;
		}
		if (id == OPT_VERSION) {
			printf("tetherd %s\n", TETHER_RELEASE_VERSION);
			return 1;
		}
		if (id == '?') {
			fputs(usage, stderr);
			return -EINVAL;
		}
		if (id != OPT_CONFIG && (err = apply(config, id, options[id - 1].name, optarg)))
			return err;
	}
	if (optind < argc) {
		fprintf(stderr, "tetherd: unexpected argument '%s'\n%s", argv[optind], usage);
		return -EINVAL;
	}
	if (!config->unload && (!config->iface_count || !config->vip_count)) {
		fprintf(stderr, "tetherd: give at least one --iface and one --vip\n%s", usage);
		return -EINVAL;
	}
	return config->unload ? 0 : check_settings(config);
}
