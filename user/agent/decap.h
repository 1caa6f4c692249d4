/* SPDX-License-Identifier: MIT */
/* tether-agent --decap: the VM's side of a routed backend. vxlan: a vxlan
 * device on the VNI (UDP 4789, bound to --addr) with the inner MAC the
 * router sends to by default (02:54:45 + the VNI); ipip: an XDP program that
 * takes the outer header off (decap_xdp.h; this kernel has no ipip module).
 * The inner request is
 * for a VIP the agent holds on lo: the kernel delivers it, and the reply
 * leaves by the VM's own route to the client (DSR), so reverse-path
 * filtering is turned off on the device. Removed on exit. */
#ifndef TETHER_AGENT_DECAP_H
#define TETHER_AGENT_DECAP_H

#include "options.h"

#define DECAP_DEVICE "tether-decap"

/* 0, or -1 with the reason logged (a kernel without the module: said so). */
int decap_setup(const struct agent_options *o);
void decap_teardown(const struct agent_options *o);

#endif
