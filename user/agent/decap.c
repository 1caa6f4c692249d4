// SPDX-License-Identifier: MIT
/* The decapsulating device of a routed backend (decap.h), made with ip(8):
 * one device at start and stop, where its many options read best as the
 * command an operator would type. */
#include "decap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control/protocol.h"
#include "core/core.h"
#include "log.h"
#include "tether/maps.h"

/* Runs argv (ip ...), quietly; its exit status, or -1. */
static int run(char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Quiet: the caller says what failed, in words for the operator. */
		if (!freopen("/dev/null", "w", stderr))
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void rp_filter_off(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/conf/" DECAP_DEVICE "/rp_filter", "w");

	if (f) {
		fputs("0\n", f);
		fclose(f);
	}
}

int decap_setup(const struct agent_options *o)
{
	__u8 addr[16];
	char vni[16], mac[18];
	bool v4;

	if (!o->decap)
		return 0;
	addr_parse(o->addr, addr);
	v4 = addr_is_v4mapped(addr);
	decap_teardown(o); /* one left by an agent that was killed */
	if (o->decap == BACKEND_VXLAN) {
		__u8 bytes[6];

		/* The inner destination the router sends to: --mac, else its default. */
		tether_vxlan_default_mac(o->vni, bytes);
		snprintf(vni, sizeof(vni), "%u", o->vni);
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1],
			 bytes[2], bytes[3], bytes[4], bytes[5]);
		if (o->mac[0])
			snprintf(mac, sizeof(mac), "%s", o->mac);
		char *add[] = { "ip", "link", "add", DECAP_DEVICE, "address", mac, "type", "vxlan",
				"id", vni, "dstport", "4789", "local", (char *)o->addr,
				"nolearning", NULL };

		if (run(add)) {
			agent_log("--decap vxlan: cannot add the vxlan device %s (ip link add ... type "
				  "vxlan id %u dstport 4789 local %s): is the vxlan module there?",
				  DECAP_DEVICE, o->vni, o->addr);
			return -1;
		}
	} else {
		char *add[] = { "ip", "link", "add", DECAP_DEVICE, "type", v4 ? "ipip" : "ip6tnl",
				"local", (char *)o->addr, v4 ? NULL : "mode", "any", NULL };

		if (run(add)) {
			agent_log("--decap ipip: this kernel has no %s tunnel (ip link add ... type "
				  "%s fails; the ipip/ip6_tunnel modules are missing) and the agent has "
				  "no BPF decapsulator yet: use --decap vxlan here",
				  v4 ? "ipip" : "ip6tnl", v4 ? "ipip" : "ip6tnl");
			return -1;
		}
	}
	char *up[] = { "ip", "link", "set", DECAP_DEVICE, "up", NULL };

	if (run(up)) {
		agent_log("--decap: cannot bring %s up", DECAP_DEVICE);
		decap_teardown(o);
		return -1;
	}
	rp_filter_off();
	agent_log("--decap %s: %s up (local %s%s%s)", proto_encap_name(o->decap), DECAP_DEVICE,
		  o->addr, o->decap == BACKEND_VXLAN ? ", vni " : "",
		  o->decap == BACKEND_VXLAN ? vni : "");
	return 0;
}

void decap_teardown(const struct agent_options *o)
{
	char *del[] = { "ip", "link", "del", DECAP_DEVICE, NULL };

	if (o->decap)
		run(del);
}
