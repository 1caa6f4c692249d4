/* SPDX-License-Identifier: MIT */
/* A small routed world for BPF tests: the real XDP program loaded unpinned in
 * the test's private network namespace, the test VIPs of pktgen.h (IPv4 and
 * IPv6) as services, and two functions with warm pools:
 *
 *   backend 1 "local": on lo, the ingress of BPF_PROG_TEST_RUN -> XDP_TX
 *   backend 2 "remote": on tx0 (a veth of the namespace)       -> XDP_REDIRECT
 *   function FIXTURE_F1 (= PKT_TEST_FUNCTION_ID): containers in slots 10..13,
 *       10 and 11 on backend 1, 12 and 13 on backend 2
 *   function FIXTURE_F2: containers in slots 20..21 on backend 1
 *   function FIXTURE_F_EMPTY: known to no map (no capacity)
 */
#ifndef TETHER_TESTS_FIXTURE_H
#define TETHER_TESTS_FIXTURE_H

#include "dataplane/dataplane.h"
#include "pktgen.h"
#include "xdp_harness.h"

#define FIXTURE_F1 PKT_TEST_FUNCTION_ID
#define FIXTURE_F2 0x2002ULL
#define FIXTURE_F_EMPTY 0x3003ULL
#define FIXTURE_BACKEND_LOCAL 1
#define FIXTURE_BACKEND_REMOTE 2
#define FIXTURE_F1_FIRST_SLOT 10
#define FIXTURE_F1_CONTAINERS 4
#define FIXTURE_F2_FIRST_SLOT 20
#define FIXTURE_F2_CONTAINERS 2

extern const __u8 fixture_local_mac[6];  /* backend 1's MAC */
extern const __u8 fixture_remote_mac[6]; /* backend 2's MAC */

struct fixture {
	struct dataplane dp;
	__u32 lo_ifindex, tx0_ifindex;
	struct tether_token tokens[32]; /* by slot, as minted */
};

/* Enters a private netns once per process (call from main before the tests),
 * then per test: fixture_setup loads a fresh program and world. */
void fixture_enter_netns(void);
void fixture_setup(struct fixture *fx);
void fixture_teardown(struct fixture *fx);
/* The same as cmocka group or test set-up and tear-down: *state is the one
 * fixture of the process. */
int fixture_cmocka_setup(void **state);
int fixture_cmocka_teardown(void **state);

/* Puts a backend of the fixture on a VLAN (vid 1..4094), or takes it off
 * one (0): its record rewritten with everything else as it was. */
void fixture_set_backend_vlan(struct fixture *fx, __u32 backend_id, __u16 vid);

/* Rebuilds a function's pool from the containers of its slot range that are
 * warm now (what the controller does on every change of the warm set). */
void fixture_rebuild_pool(struct fixture *fx, __u64 function_id);

/* Runs a frame through the program from lo; fills result and counter delta. */
void fixture_run(struct fixture *fx, const __u8 *frame, size_t len, struct xdp_result *result,
		 struct tether_stats *delta);

/* The slot a routed frame was stamped with (-1 when not stamped). */
long fixture_stamped_slot(const struct xdp_result *result);

/* The backend the slot's container sits on. */
__u32 fixture_backend_of(__u32 slot);

/* cmocka check: the program's output is exactly want (len bytes); on a
 * difference both frames are hexdumped and the test fails naming what. */
void fixture_expect_output(const char *name, const char *what, const struct xdp_result *result,
			   const __u8 *want, size_t len);

/* The model of a pool pick (DESIGN "Routing rules", TETHER_POOL_PROBES), read
 * from the maps: whether the slot's container of the function may take new
 * work, and the slot the pool picks for hash (-1: no capacity). */
int fixture_takes_new_work(struct fixture *fx, __u32 slot, __u64 function_id);
long fixture_model_pick(struct fixture *fx, __u64 function_id, __u64 hash);

/* The flow hash of pktgen's default client -> VIP flow from src_port. */
__u64 fixture_flow_hash(int family, __u16 src_port);
/* Its outer headers' entropy (tether_spread_flow) when routed. */
__u64 fixture_flow_spread(int family, __u16 src_port);

#endif
