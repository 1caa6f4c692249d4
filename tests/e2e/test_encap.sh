#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Routed backends end to end (issue 12), on lib.sh's rig: vm1 is a VXLAN
# backend (tetherd --encap-source, the agent's --decap vxlan making a real
# Linux vxlan device on the VNI), vm2 stays L2, both serving function 1: one
# function, a mixed pool. The router's XDP wraps requests for vm1 in outer
# IPv4/UDP/VXLAN to the next hop its FIB gives (here the VM itself, one hop;
# test_encap_transit.sh has VMs two routed hops away, IPIP and IPv6 outer);
# the VM's kernel decapsulates, its agent answers the client directly.
#
#   tests/e2e/test_encap.sh [TEST...]     (TEST: a name below)
#
# TAP output ("ok N - name"), then "N passed, M failed" alone on the last
# line; the exit status is nonzero when a test failed.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VNI=77
COUNT=20

stat_of() {
	e2e_ctl --json stats | jq -er ".[] | select(.part == \"encap\") | .$1"
}

# The routed backend is listed with its mode, VNI and the FIB's next hop.
test_list() {
	local out
	out=$(e2e_ctl --json backend list)
	expect_eq "vm1 encap" "$(jq -r '.[] | select(.backend == "vm1") | .encap' <<<"$out")" vxlan
	expect_eq "vm1 vni" "$(jq -r '.[] | select(.backend == "vm1") | .vni' <<<"$out")" "$VNI"
	expect_eq "vm1 nexthop" "$(jq -r '.[] | select(.backend == "vm1") | .nexthop' <<<"$out")" \
		"direct@$E2E_IF_R1"
	expect_eq "vm2 encap" "$(jq -r '.[] | select(.backend == "vm2") | .encap' <<<"$out")" l2
}

# Keys to the mixed pool, IPv4 and IPv6 inside VXLAN over IPv4: every request
# answered, some through vm1's tunnel (its first ones may take the slow path
# while the router resolves vm1's address: fib_no_neigh, still answered).
test_keys() {
	local before after out family vip
	before=$(($(stat_of encap_vxlan) + $(stat_of fib_no_neigh)))
	for family in 4 6; do
		vip="$E2E_VIP4:$E2E_PORT"
		[[ $family == 4 ]] || vip="[$E2E_VIP6]:$E2E_PORT"
		for key in 101 102 103 104 105 106 107 108; do
			out=$(e2e_load --vip "$vip" --function 1 --count 3 --key "$key$family")
			expect_eq "IPv$family key $key: lost" "$(e2e_field "$out" lost)" 0
			expect_eq "IPv$family key $key: ok" "$(e2e_field "$out" ok)" 3
			expect_eq "IPv$family key $key: one container" "$(e2e_field "$out" containers)" 1
		done
	done
	after=$(($(stat_of encap_vxlan) + $(stat_of fib_no_neigh)))
	expect_ge "requests for vm1 (sent in VXLAN or through the slow path)" \
		"$((after - before))" 3
	expect_ge "sent in VXLAN by XDP" "$(stat_of encap_vxlan)" 1
}

# tetherd refuses what cannot be routed: a VLAN on a routed backend, a VNI
# on IPIP, an IPv6 backend without an IPv6 --encap-source.
test_refused() {
	local answer
	answer=$(e2e_raw "add backend name=vm9 addr=203.0.113.50 encap=vxlan vlan=5" | head -n1)
	expect_contains "vlan on vxlan" "$answer" "error bad_argument"
	answer=$(e2e_raw "add backend name=vm9 addr=203.0.113.50 encap=ipip vni=5" | head -n1)
	expect_contains "vni on ipip" "$answer" "vni 5: a VNI (0 to 16777215) is for encap vxlan only"
	answer=$(e2e_raw "add backend name=vm9 addr=2001:db8:9::9 encap=ipip" | head -n1)
	expect_contains "IPv6 without a source" "$answer" "needs an outer source address"
}

TESTS=(list keys refused)

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	e2e_init
	e2e_topology
	E2E_TETHERD_ARGS+=(--encap-source 203.0.113.1)
	e2e_tetherd_start
	e2e_agent_start vm1 --function 1:2 --decap vxlan --vni "$VNI"
	e2e_agent_start vm2 --function 1:2
	e2e_agent_wait_warm vm1 2
	e2e_agent_wait_warm vm2 2
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
