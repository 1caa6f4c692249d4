/* SPDX-License-Identifier: MIT */
/* tether-agent --decap ipip: the BPF decapsulator (bpf/decap_ipip.c) on the
 * interface that holds --addr, for kernels without the ipip and ip6_tunnel
 * modules. An XDP program already there is put back on exit; one of ours left
 * by a killed agent is replaced. */
#ifndef TETHER_AGENT_DECAP_XDP_H
#define TETHER_AGENT_DECAP_XDP_H

/* 0, or -1 with the reason logged for an operator. addr: --addr's text. */
int decap_xdp_attach(const char *addr);
/* Detaches it (if it is still the interface's program) and logs its counts. */
void decap_xdp_detach(void);

#endif
