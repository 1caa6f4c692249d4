// SPDX-License-Identifier: MIT
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <net/if.h>
#include <getopt.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	"  --xdp-mode MODE        auto (native, else generic), native, generic\n"
	"  --pin-root DIR         where maps and links are pinned (" TETHERD_DEFAULT_PIN_ROOT ")\n"
	"  --socket PATH          the control socket (" TETHERD_DEFAULT_SOCKET ")\n"
	"  --socket-group GROUP   let GROUP use the socket too (mode 0660)\n"
	"  --heartbeat-ms N       a backend missing heartbeats this long is down (3000)\n"
	"  --drain-ms N           default drain deadline (30000)\n"
	"  --hold-ms N            how long the slow path holds a request for capacity (1000)\n"
	"  --queue N              requests held per function (256)\n"
	"  --tcp-listen ADDR:PORT a TCP listener for remote VM agents\n"
	"  --tcp-secret-file F    the shared secret agents must send first\n"
	"  --config FILE          settings file: [tetherd] group, same names, lists with ';'\n"
	"  --unload               detach, remove every pin under the pin root, exit\n";

enum option_id {
	OPT_IFACE = 1, OPT_VIP, OPT_XDP_MODE, OPT_PIN_ROOT, OPT_SOCKET, OPT_SOCKET_GROUP,
	OPT_HEARTBEAT, OPT_DRAIN, OPT_HOLD, OPT_QUEUE, OPT_TCP_LISTEN, OPT_TCP_SECRET,
	OPT_CONFIG, OPT_UNLOAD, OPT_HELP,
};

static const struct option options[] = {
	{ "iface", required_argument, 0, OPT_IFACE },
	{ "vip", required_argument, 0, OPT_VIP },
	{ "xdp-mode", required_argument, 0, OPT_XDP_MODE },
	{ "pin-root", required_argument, 0, OPT_PIN_ROOT },
	{ "socket", required_argument, 0, OPT_SOCKET },
	{ "socket-group", required_argument, 0, OPT_SOCKET_GROUP },
	{ "heartbeat-ms", required_argument, 0, OPT_HEARTBEAT },
	{ "drain-ms", required_argument, 0, OPT_DRAIN },
	{ "hold-ms", required_argument, 0, OPT_HOLD },
	{ "queue", required_argument, 0, OPT_QUEUE },
	{ "tcp-listen", required_argument, 0, OPT_TCP_LISTEN },
	{ "tcp-secret-file", required_argument, 0, OPT_TCP_SECRET },
	{ "config", required_argument, 0, OPT_CONFIG },
	{ "unload", no_argument, 0, OPT_UNLOAD },
	{ "help", no_argument, 0, OPT_HELP },
	{ 0, 0, 0, 0 },
};

int config_parse_vip(const char *text, struct tetherd_vip *vip)
{
	g_autofree char *copy = g_strdup(text);
	char *colon = strrchr(copy, ':');
	char *host = copy, *end;

	if (!colon)
		return -EINVAL;
	*colon = '\0';
	unsigned long port = strtoul(colon + 1, &end, 10);

	if (*end || port == 0 || port > 65535)
		return -EINVAL;
	if (host[0] == '[') {
		size_t len = strlen(host);

		if (len < 2 || host[len - 1] != ']')
			return -EINVAL;
		host[len - 1] = '\0';
		host++;
	}
	vip->port = port;
	return addr_parse(host, vip->addr);
}

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
		    config_parse_vip(value, &config->vips[config->vip_count]))
			return fprintf(stderr, "tetherd: --vip '%s' is not ADDR:PORT or "
					       "[IPv6]:PORT (at most %d)\n",
				       value, TETHERD_MAX_VIPS),
			       -EINVAL;
		config->vip_count++;
		return 0;
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
	case OPT_DRAIN:
		return parse_u32(name, value, &config->drain_ms);
	case OPT_HOLD:
		return parse_u32(name, value, &config->slowpath.hold_ms);
	case OPT_QUEUE:
		return parse_u32(name, value, &config->slowpath.queue_per_function);
	case OPT_TCP_LISTEN:
		return copy_setting(name, value, config->tcp_listen, sizeof(config->tcp_listen));
	case OPT_TCP_SECRET:
		return read_secret(value, config->tcp_secret, sizeof(config->tcp_secret));
	case OPT_UNLOAD:
		config->unload = true;
		return 0;
	}
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
		if (option->val == OPT_CONFIG || option->val == OPT_HELP)
			continue;
		gsize count = 0;
		g_auto(GStrv) values =
			g_key_file_get_string_list(file, "tetherd", option->name, &count, NULL);

		for (gsize i = 0; i < count; i++) {
			g_strstrip(values[i]);
			int err = option->val == OPT_UNLOAD ? 0
							    : apply(config, option->val, option->name,
								    values[i]);
			if (err)
				return err;
		}
	}
	return 0;
}

/* What can be checked before anything is loaded or pinned: a start that
 * will be refused leaves nothing behind. */
static int check_settings(const struct tetherd_config *config)
{
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
	if (config->tcp_listen[0] && strlen(config->tcp_secret) < 16) {
		fprintf(stderr, "tetherd: the TCP listener needs a shared secret of at least 16 "
				"characters (--tcp-secret-file)\n");
		return -EINVAL;
	}
	return 0;
}

static void set_defaults(struct tetherd_config *config)
{
	memset(config, 0, sizeof(*config));
	snprintf(config->pin_root, sizeof(config->pin_root), "%s", TETHERD_DEFAULT_PIN_ROOT);
	snprintf(config->socket_path, sizeof(config->socket_path), "%s", TETHERD_DEFAULT_SOCKET);
	config->xdp_mode = XDP_MODE_AUTO;
	config->heartbeat_ms = 3000;
	config->drain_ms = 30000;
	config->slowpath = (struct slowpath_config){ .hold_ms = 1000,
						     .queue_per_function = 256,
						     .queue_total = 16384 };
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
