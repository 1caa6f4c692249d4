// SPDX-License-Identifier: MIT
/* The VM's side of a routed backend (decap.h): the vxlan device, made with
 * ip(8) (one device at start and stop, where its many options read best as
 * the command an operator would type), or the IPIP decapsulator (decap_xdp.c). */
#include "decap.h"
#include "decap_xdp.h"

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
	char vni[16], mac[18];

	if (!o->decap)
		return 0;
	/* No ipip or ip6_tunnel module on the kernels we run: BPF does it. */
	if (o->decap == BACKEND_IPIP)
		return decap_xdp_attach(o->addr);
	decap_teardown(o); /* one left by an agent that was killed */
	{
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
	}
	char *up[] = { "ip", "link", "set", DECAP_DEVICE, "up", NULL };

	if (run(up)) {
		agent_log("--decap: cannot bring %s up", DECAP_DEVICE);
		decap_teardown(o);
		return -1;
	}
	rp_filter_off();
	agent_log("--decap vxlan: %s up (local %s, vni %s)", DECAP_DEVICE, o->addr, vni);
	return 0;
}

void decap_teardown(const struct agent_options *o)
{
	char *del[] = { "ip", "link", "del", DECAP_DEVICE, NULL };

	if (o->decap == BACKEND_VXLAN)
		run(del);
	else if (o->decap == BACKEND_IPIP)
		decap_xdp_detach();
}
