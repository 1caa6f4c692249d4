/* SPDX-License-Identifier: MIT */
/* Attaching the XDP program to interfaces through bpf_links pinned under the
 * pin root, so forwarding goes on while tetherd is stopped; a restarted or
 * upgraded tetherd swaps its program into the pinned link atomically. */
#ifndef TETHER_ATTACH_H
#define TETHER_ATTACH_H

#include "dataplane/loader.h"

enum xdp_mode_request {
	XDP_MODE_AUTO,    /* native, else generic (and say so) */
	XDP_MODE_NATIVE,  /* native or fail */
	XDP_MODE_GENERIC, /* generic (skb) mode */
};

int xdp_mode_parse(const char *text, enum xdp_mode_request *mode);

/* Attaches to ifname, or replaces the program of the link pinned for it.
 * *how says what happened ("native", "generic", "replaced"). */
int attach_interface(struct dataplane *dp, const char *ifname, enum xdp_mode_request mode,
		     const char **how);

/* Detaches every pinned link under the pin root and removes the link pins. */
int detach_all(const char *pin_root);

#endif
