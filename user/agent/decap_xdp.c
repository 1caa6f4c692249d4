// SPDX-License-Identifier: MIT
/* The loader of the VM's IPIP decapsulator (decap_xdp.h): one per agent, so
 * its state is this file's. */
#include "decap_xdp.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "core/core.h"
#include "decap_ipip.skel.h"
#include "log.h"
#include "tether/decap.h"

#define PROG_NAME "tether_decap" /* the program's name in the kernel: how a stale one is known */

static struct decap_ipip *skel;
static int ifindex;
static char ifname[IF_NAMESIZE];
static int previous_fd = -1; /* the XDP program that was there before ours */
static __u32 attach_flags;

/* The interface that holds addr (16 bytes, IPv4 mapped), or 0. */
static int interface_of(const __u8 addr[16])
{
	struct ifaddrs *list, *i;
	int found = 0;

	if (getifaddrs(&list))
		return 0;
	for (i = list; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *s = (const void *)i->ifa_addr;

			if (addr_is_v4mapped(addr) && !memcmp(&s->sin_addr, addr + 12, 4))
				found = (int)if_nametoindex(i->ifa_name);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *s = (const void *)i->ifa_addr;

			if (!memcmp(&s->sin6_addr, addr, 16))
				found = (int)if_nametoindex(i->ifa_name);
		}
	}
	freeifaddrs(list);
	return found;
}

/* The id of the interface's XDP program (0: none) and, when asked, its name. */
static __u32 attached_id(char name[BPF_OBJ_NAME_LEN])
{
	struct bpf_prog_info info = {};
	__u32 id = 0, len = sizeof(info);
	int fd;

	if (bpf_xdp_query_id(ifindex, 0, &id) || !id || !name)
		return id;
	name[0] = 0;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len))
		memcpy(name, info.name, BPF_OBJ_NAME_LEN);
	if (fd >= 0)
		close(fd);
	return id;
}

/* What an operator can do about a failed attach. */
static const char *attach_hint(int err)
{
	switch (err) {
	case EPERM:
	case EACCES:
		return "the agent needs CAP_NET_ADMIN and CAP_BPF (run it as root)";
	case EBUSY:
	case EEXIST:
		return "another XDP program holds the interface in another mode: remove it "
		       "(ip link set dev IF xdp off)";
	case EOPNOTSUPP:
	case EINVAL:
		return "the driver takes no XDP program, not even in generic mode";
	default:
		return "see the kernel's message above, if any";
	}
}

/* Remembers what is attached now: a stale decapsulator of a killed agent is
 * taken off, anything else is kept to be put back on exit. */
static void take_over(void)
{
	char name[BPF_OBJ_NAME_LEN];
	__u32 id = attached_id(name);

	if (!id)
		return;
	if (!strcmp(name, PROG_NAME)) {
		agent_log("--decap ipip: removing a decapsulator left on %s (program %u) by an "
			  "agent that did not stop cleanly", ifname, id);
		bpf_xdp_detach(ifindex, 0, NULL);
		return;
	}
	previous_fd = bpf_prog_get_fd_by_id(id);
}

int decap_xdp_attach(const char *addr_text)
{
	__u8 addr[16];
	int err;

	if (addr_parse(addr_text, addr)) {
		agent_log("--decap ipip: --addr '%s' is not an address", addr_text);
		return -1;
	}
	ifindex = interface_of(addr);
	if (!ifindex) {
		agent_log("--decap ipip: no interface of this VM holds --addr %s: the decapsulator "
			  "goes on the interface that receives the router's packets for it",
			  addr_text);
		return -1;
	}
	if_indextoname((unsigned)ifindex, ifname);
	take_over();
	skel = decap_ipip__open();
	if (!skel) {
		err = errno;
		agent_log("--decap ipip: cannot open the BPF decapsulator: %s", strerror(err));
		goto fail;
	}
	memcpy((void *)skel->rodata->decap_addr, addr, sizeof(addr));
	if ((err = -decap_ipip__load(skel))) {
		agent_log("--decap ipip: the kernel refused the BPF decapsulator: %s (%s)",
			  strerror(err),
			  err == EPERM ? "the agent needs CAP_BPF and CAP_NET_ADMIN: run it as root"
				       : "see libbpf's message above");
		goto fail;
	}
	/* Native XDP where the driver has it, else generic (any interface). */
	attach_flags = 0;
	err = -bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.tether_decap), 0, NULL);
	if (err && err != EPERM) {
		attach_flags = XDP_FLAGS_SKB_MODE;
		err = -bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.tether_decap),
				      attach_flags, NULL);
	}
	if (err) {
		agent_log("--decap ipip: cannot attach the XDP decapsulator to %s (the interface "
			  "of --addr %s): %s: %s",
			  ifname, addr_text, strerror(err), attach_hint(err));
		goto fail;
	}
	agent_log("--decap ipip: XDP decapsulator on %s for IPIP to %s (outer IPv4 or IPv6, "
		  "either inner family)",
		  ifname, addr_text);
	return 0;
fail:
	decap_ipip__destroy(skel);
	skel = NULL;
	if (previous_fd >= 0)
		close(previous_fd);
	previous_fd = -1;
	return -1;
}

static void log_counts(void)
{
	int cpus = libbpf_num_possible_cpus();
	__u64 decapsulated = 0, truncated = 0;
	__u32 zero = 0;

	if (cpus <= 0)
		return;
	struct tether_decap_stats per_cpu[cpus];

	if (bpf_map__lookup_elem(skel->maps.decap_stats, &zero, sizeof(zero), per_cpu,
				 sizeof(per_cpu), 0))
		return;
	for (int c = 0; c < cpus; c++) {
		decapsulated += per_cpu[c].decapsulated;
		truncated += per_cpu[c].truncated;
	}
	agent_log("--decap ipip: %llu packets decapsulated, %llu dropped cut short",
		  (unsigned long long)decapsulated, (unsigned long long)truncated);
}

void decap_xdp_detach(void)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (!skel)
		return;
	log_counts();
	/* Only while ours is the interface's program: never take off another's. */
	if (!bpf_obj_get_info_by_fd(bpf_program__fd(skel->progs.tether_decap), &info, &len) &&
	    attached_id(NULL) == info.id) {
		if (previous_fd >= 0)
			bpf_xdp_attach(ifindex, previous_fd, attach_flags, NULL);
		else
			bpf_xdp_detach(ifindex, attach_flags, NULL);
	}
	if (previous_fd >= 0)
		close(previous_fd);
	previous_fd = -1;
	decap_ipip__destroy(skel);
	skel = NULL;
}
