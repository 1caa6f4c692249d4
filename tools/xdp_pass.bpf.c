// SPDX-License-Identifier: MIT
/* A minimal XDP program that lets every frame through. The end-to-end tests
 * attach it on the VM side of each router<->VM veth: a frame that the
 * router's XDP program redirects into a veth is only delivered when the peer
 * device has an XDP program (or GRO) enabled (DESIGN.md, "Platform notes"). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
