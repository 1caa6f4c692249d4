#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Routed backends two hops away (issue 12): the edge router's XDP wraps
# requests in VXLAN or IPIP for VMs behind a transit router, real agents
# take the outer headers off (--decap vxlan: a Linux vxlan device; --decap
# ipip: the agent's XDP decapsulator, bpf/decap_ipip.c), the containers
# answer the client directly. The edge router has no route to the VM subnets
# but through the transit.
#
#   client ── router (tetherd, XDP) ══ path A (172.16.1.0/24, fd10:1::/64) ══ transit ── vx4  10.20.1.2  vxlan, outer IPv4
#               │                   ══ path B (172.16.2.0/24, fd10:2::/64) ══    │    ── ip4  10.20.2.2  ipip,  outer IPv4
#               │                                                                 ├── vx6  fd20:3::2  vxlan, outer IPv6
#               └── l2 (203.0.113.2, on the router's L2)                          └── ip6  fd20:4::2  ipip,  outer IPv6
#
# Function 1 is a mixed pool (l2, vx4, ip4), function 2 routed over IPv6
# (vx6, ip6). Every VM subnet (10.20.N.0/24, fd20:N::/64) is routed on the
# router through path A; route_change moves them to path B under load.
#
#   tests/e2e/test_encap_transit.sh [TEST...]     (TEST: a name below)
#
# TAP output ("ok N - name"), then "N passed, M failed" alone on the last
# line; the exit status is nonzero when a test failed.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VNI=4242
# The agents live through tetherd's two restarts in a row (test_restart): with
# tetherd down they cannot heartbeat (a start-up took up to 4.5 s here on a
# busy machine); tetherd's restart grace (15 s) keeps them in the routing, and
# once it is back they have this long to heartbeat again.
HEARTBEAT_MS=3000
ROUTED=(vx4 ip4 vx6 ip6)
declare -A VM_NET=([vx4]=1 [ip4]=2 [vx6]=3 [ip6]=4)
declare -A VM_DECAP=([vx4]=vxlan [ip4]=ipip [vx6]=vxlan [ip6]=ipip)
declare -A VM_ADDR=([vx4]=10.20.1.2 [ip4]=10.20.2.2 [vx6]=fd20:3::2 [ip6]=fd20:4::2 [l2]=203.0.113.2)
declare -A VM_FUNCTION=([vx4]=1 [ip4]=1 [vx6]=2 [ip6]=2 [l2]=1)

# --- the rig ------------------------------------------------------------------------

transit_names() {
	NS_TRANSIT=$E2E_ID-transit
	IF_RA=${E2E_ID}ra IF_TA=${E2E_ID}ta # path A: router's end, transit's end
	IF_RB=${E2E_ID}rb IF_TB=${E2E_ID}tb # path B
	IF_RL=${E2E_ID}rl IF_VL=${E2E_ID}vl # router <-> l2
	declare -gA VM_NS VM_IFT VM_IFV
	local vm
	for vm in "${ROUTED[@]}" l2; do
		VM_NS[$vm]=$E2E_ID-$vm
		VM_IFT[$vm]=${E2E_ID}t$vm # the transit's end (the router's for l2)
		VM_IFV[$vm]=${E2E_ID}v$vm
	done
	E2E_NS_EXTRA=("$NS_TRANSIT" "${VM_NS[@]}")
}

new_ns() {
	ip netns add "$1"
	ip -n "$1" link set lo up
	e2e_sysctl "$1" net.ipv6.conf.all.accept_dad 0
	e2e_sysctl "$1" net.ipv6.conf.default.accept_dad 0
	e2e_sysctl "$1" net.ipv4.conf.all.rp_filter 0
	e2e_sysctl "$1" net.ipv4.conf.default.rp_filter 0
}

# Path N between the router and the transit. The transit's end runs
# xdp_pass: the router's XDP redirects into this veth.
transit_path() {
	local n=$1 if_r=$2 if_t=$3
	e2e_veth "$E2E_NS_ROUTER" "$if_r" "$NS_TRANSIT" "$if_t"
	e2e_addr "$E2E_NS_ROUTER" "$if_r" "172.16.$n.1/24"
	e2e_addr "$NS_TRANSIT" "$if_t" "172.16.$n.2/24"
	e2e_addr "$E2E_NS_ROUTER" "$if_r" "fd10:$n::1/64"
	e2e_addr "$NS_TRANSIT" "$if_t" "fd10:$n::2/64"
	# Replies come from the VIP, local on the router too (accept_local).
	e2e_sysctl "$E2E_NS_ROUTER" "net.ipv4.conf.$if_r.accept_local" 1
	e2e_sysctl "$E2E_NS_ROUTER" "net.ipv4.conf.$if_r.rp_filter" 0
	ip -n "$NS_TRANSIT" link set dev "$if_t" xdpdrv obj "$E2E_XDP_PASS" sec xdp
}

# A VM behind the transit: both families on its link (the outer family is
# its agent's --addr's; replies to clients of either family leave by it).
routed_vm() {
	local vm=$1 n=${VM_NET[$1]} ns=${VM_NS[$1]}
	new_ns "$ns"
	e2e_veth "$NS_TRANSIT" "${VM_IFT[$vm]}" "$ns" "${VM_IFV[$vm]}"
	e2e_addr "$NS_TRANSIT" "${VM_IFT[$vm]}" "10.20.$n.1/24"
	e2e_addr "$ns" "${VM_IFV[$vm]}" "10.20.$n.2/24"
	e2e_addr "$NS_TRANSIT" "${VM_IFT[$vm]}" "fd20:$n::1/64"
	e2e_addr "$ns" "${VM_IFV[$vm]}" "fd20:$n::2/64"
	ip -n "$ns" route add default via "10.20.$n.1"
	ip -n "$ns" -6 route add default via "fd20:$n::1"
	e2e_sysctl "$ns" "net.ipv4.conf.${VM_IFV[$vm]}.rp_filter" 0
}

# The router's routes to the VM subnets, through path N (1: A, 2: B).
route_vms_via() {
	local path=$1 vm n
	for vm in "${ROUTED[@]}"; do
		n=${VM_NET[$vm]}
		ip -n "$E2E_NS_ROUTER" route replace "10.20.$n.0/24" via "172.16.$path.2"
		ip -n "$E2E_NS_ROUTER" -6 route replace "fd20:$n::/64" via "fd10:$path::2"
	done
}

transit_topology() {
	local ns vm
	for ns in "$E2E_NS_CLIENT" "$E2E_NS_ROUTER" "$NS_TRANSIT"; do
		new_ns "$ns"
	done
	e2e_client "$E2E_NS_CLIENT" "$E2E_IF_CL" "$E2E_IF_RC" "$E2E_CLIENT4" "$E2E_CLIENT6" \
		"$E2E_ROUTER4" "$E2E_ROUTER6"
	for ns in "$E2E_NS_ROUTER" "$NS_TRANSIT"; do
		e2e_sysctl "$ns" net.ipv4.ip_forward 1
		e2e_sysctl "$ns" net.ipv6.conf.all.forwarding 1
	done
	transit_path 1 "$IF_RA" "$IF_TA"
	transit_path 2 "$IF_RB" "$IF_TB"
	for vm in "${ROUTED[@]}"; do
		routed_vm "$vm"
	done
	route_vms_via 1
	# The transit sends everything else (the clients) back through path A.
	ip -n "$NS_TRANSIT" route add default via 172.16.1.1
	ip -n "$NS_TRANSIT" -6 route add default via fd10:1::1
	# The L2 VM, on the router's own segment as in lib.sh's rig.
	ns=${VM_NS[l2]}
	new_ns "$ns"
	e2e_veth "$E2E_NS_ROUTER" "$IF_RL" "$ns" "${VM_IFV[l2]}"
	e2e_addr "$E2E_NS_ROUTER" "$IF_RL" 203.0.113.1/28
	e2e_addr "$ns" "${VM_IFV[l2]}" 203.0.113.2/28
	e2e_addr "$E2E_NS_ROUTER" "$IF_RL" 2001:db8:3::1/64
	e2e_addr "$ns" "${VM_IFV[l2]}" 2001:db8:3::2/64
	ip -n "$ns" route add default via 203.0.113.1
	ip -n "$ns" -6 route add default via 2001:db8:3::1
	e2e_sysctl "$E2E_NS_ROUTER" "net.ipv4.conf.$IF_RL.accept_local" 1
	e2e_sysctl "$E2E_NS_ROUTER" "net.ipv4.conf.$IF_RL.rp_filter" 0
	ip -n "$ns" link set dev "${VM_IFV[l2]}" xdpdrv obj "$E2E_XDP_PASS" sec xdp
}

# The agent of VM vm, serving both VIPs for its function, registered over
# tetherd's Unix socket; routed VMs decapsulate, the L2 one is reached by MAC.
agent_start() {
	local vm=$1 ns=${VM_NS[$1]} how=()
	if [[ $vm == l2 ]]; then
		how=(--mac "$(e2e_mac "$ns" "${VM_IFV[l2]}")" --router-iface "$IF_RL")
	else
		how=(--decap "${VM_DECAP[$vm]}")
		[[ ${VM_DECAP[$vm]} == ipip ]] || how+=(--vni "$VNI")
	fi
	e2e_agent_spawn "$ns" "$vm" --addr "${VM_ADDR[$vm]}" "${how[@]}" \
		--vip "$E2E_VIP4:$E2E_PORT" --vip "[$E2E_VIP6]:$E2E_PORT" \
		--tetherd "unix:$E2E_SOCKET" --function "${VM_FUNCTION[$vm]}:2" \
		--heartbeat-ms "$HEARTBEAT_MS"
}

# Has the router resolve hop (a datagram to its discard port) and waits for
# the neighbour entry.
resolve_neighbour() {
	local hop=$1 i
	for ((i = 0; i < 30; i++)); do
		ip -n "$E2E_NS_ROUTER" neigh show "$hop" | grep -Eq 'REACHABLE|STALE|DELAY' && return 0
		if [[ $hop == *:* ]]; then
			echo x | e2e_in "$E2E_NS_ROUTER" socat -u - "UDP6:[$hop]:9" 2>/dev/null || true
		else
			echo x | e2e_in "$E2E_NS_ROUTER" socat -u - "UDP4:$hop:9" 2>/dev/null || true
		fi
		sleep 0.1
	done
	e2e_die "the router did not resolve its neighbour $hop"
}

# --- helpers --------------------------------------------------------------------------

stat_of() {
	e2e_ctl --json stats | jq -er ".[] | select(.part == \"encap\") | .$1"
}

# Frames the transit received on its end of a path (what the router sent it).
rx_of() {
	ip -n "$NS_TRANSIT" -j -s link show dev "$1" | jq -r '.[0].stats64.rx.packets'
}

# "slot token" of every warm container of backend vm, one a line.
tokens_of() {
	e2e_ctl --json container list --backend "$1" |
		jq -r '.[] | select(.state == "warm") | "\(.container) \(.token)"'
}

vip_of_family() {
	if [[ $1 == 4 ]]; then echo "$E2E_VIP4:$E2E_PORT"; else echo "[$E2E_VIP6]:$E2E_PORT"; fi
}

# "container=SLOT AGENT" for each container that answered a udp_load
# --per-container run (served_by without its -N), one a line.
answered_by() {
	grep '^container=' <<<"$1" | sed 's/ .*served_by=/ /; s/-[0-9]*$//'
}

# Every OK answer of a udp_load --per-container run came from a container of
# one of the backends named (served_by: the agent's name, -N).
expect_served_by() {
	local what=$1 output=$2 allowed=" $3 " line name
	while read -r line; do
		[[ -n $line ]] || continue
		name=$(e2e_field "$line" served_by)
		name=${name%-*} # containers are named AGENT-N
		[[ $allowed == *" $name "* ]] || fail "$what: answered by '$name', not one of$allowed"
	done < <(grep '^container=' <<<"$output")
}

# --- the tests --------------------------------------------------------------------------

# Each backend is listed with its mode and the next hop the FIB gives: the
# transit on path A, never the VM itself.
test_list() {
	local out vm hop
	out=$(e2e_ctl --json backend list)
	for vm in "${ROUTED[@]}"; do
		expect_eq "$vm encap" "$(jq -r --arg b "$vm" '.[] | select(.backend == $b) | .encap' <<<"$out")" \
			"${VM_DECAP[$vm]}"
		hop=$(jq -r --arg b "$vm" '.[] | select(.backend == $b) | .nexthop' <<<"$out")
		if [[ ${VM_ADDR[$vm]} == *:* ]]; then
			expect_eq "$vm next hop" "$hop" "fd10:1::2@$IF_RA"
		else
			expect_eq "$vm next hop" "$hop" "172.16.1.2@$IF_RA"
		fi
	done
	expect_eq "l2 encap" "$(jq -r '.[] | select(.backend == "l2") | .encap' <<<"$out")" l2
}

# Keys, IPv4 and IPv6 inside, to both functions: every request answered, each
# key by one container, by a backend of its function; the XDP program sent
# VXLAN and IPIP, over IPv4 (function 1) and IPv6 (function 2).
test_keys() {
	local family function out vxlan ipip
	vxlan=$(stat_of encap_vxlan) ipip=$(stat_of encap_ipip)
	for function in 1 2; do
		for family in 4 6; do
			out=$(e2e_load --vip "$(vip_of_family $family)" --function "$function" --count 120 \
				--sessions 40 --key "${function}${family}000" --timeout-ms 2000 --per-container)
			expect_eq "function $function, IPv$family: lost" "$(e2e_field "$out" lost)" 0
			expect_eq "function $function, IPv$family: ok" "$(e2e_field "$out" ok)" 120
			expect_eq "function $function, IPv$family: sticky" \
				"$(e2e_field "$out" sticky_sessions)" "$(e2e_field "$out" sessions)"
			if ((function == 1)); then
				expect_served_by "function 1, IPv$family" "$out" "l2 vx4 ip4"
			else
				expect_served_by "function 2, IPv$family" "$out" "vx6 ip6"
			fi
		done
	done
	expect_ge "sent in VXLAN by XDP" "$(($(stat_of encap_vxlan) - vxlan))" 20
	expect_ge "sent in IPIP by XDP" "$(($(stat_of encap_ipip) - ipip))" 20
}

# The mixed pool, request by request: a token sent to every warm container of
# every backend (l2, VXLAN and IPIP over IPv4 and IPv6), from IPv4 and IPv6
# clients, is answered by that very container, through the data plane.
test_tokens() {
	local vm slot token family out hits
	hits=$(e2e_ctl --json stats | jq -r '.[] | select(.part == "dataplane") | .token_hit')
	for vm in l2 "${ROUTED[@]}"; do
		while read -r slot token; do
			for family in 4 6; do
				out=$(e2e_load --vip "$(vip_of_family $family)" --function "${VM_FUNCTION[$vm]}" \
					--count 3 --token "$token" --strict --timeout-ms 2000 --per-container)
				expect_eq "$vm container $slot, IPv$family: ok" "$(e2e_field "$out" ok)" 3
				expect_eq "$vm container $slot, IPv$family: answered by" \
					"$(answered_by "$out")" "container=$slot $vm"
			done
		done < <(tokens_of "$vm")
	done
	expect_ge "token hits in XDP" \
		"$(($(e2e_ctl --json stats | jq -r '.[] | select(.part == "dataplane") | .token_hit') - hits))" 40
}

# A container of the IPIP backend drained under load: nothing lost, the drain
# completes, and the container serves nothing after it.
test_drain() {
	local slot out status=0 after
	slot=$(tokens_of ip4 | head -n1 | cut -d' ' -f1)
	[[ -n $slot ]] || fail "no warm container on ip4"
	e2e_load_bg "$E2E_LOG_DIR/drain_load" --function 1 --count 600 --sessions 60 --key 70000 \
		--rate 300 --timeout-ms 2000 --per-container
	sleep 0.5
	e2e_ctl drain container "$slot" --deadline 5s --wait >"$E2E_LOG_DIR/drain.out" 2>&1 || status=$?
	e2e_load_wait "$E2E_LOG_DIR/drain_load" >/dev/null
	out=$(cat "$E2E_LOG_DIR/drain_load")
	expect_eq "drain --wait exit status" "$status" 0
	expect_eq "lost during the drain" "$(e2e_field "$out" lost)" 0
	expect_eq "ok during the drain" "$(e2e_field "$out" ok)" 600
	after=$(e2e_load --function 1 --count 120 --sessions 40 --key 71000 --timeout-ms 2000 --per-container)
	expect_eq "after the drain: ok" "$(e2e_field "$after" ok)" 120
	[[ $(grep -c "^container=$slot " <<<"$after") == 0 ]] ||
		fail "the drained container $slot still answered"
	expect_served_by "after the drain" "$after" "l2 vx4 ip4"
}

# The transit's routes change under load: the router's routes to the VM
# subnets move from path A to path B. tetherd is not restarted; within its
# 50 ms next-hop cache the XDP program sends by path B: every request of a
# steady load answered, path B carries the routed requests afterwards and
# path A none of them, and the listed next hop follows.
test_route_change() {
	local pid out a_before b_before a_after b_after hop
	pid=$(e2e_tetherd_pid)
	e2e_load_bg "$E2E_LOG_DIR/route_load" --function 2 --count 900 --sessions 90 --key 80000 \
		--rate 300 --timeout-ms 2000
	sleep 1
	route_vms_via 2
	sleep 0.5
	e2e_load_wait "$E2E_LOG_DIR/route_load" >/dev/null
	out=$(head -n1 "$E2E_LOG_DIR/route_load")
	expect_eq "lost while the route changed" "$(e2e_field "$out" lost)" 0
	expect_eq "ok while the route changed" "$(e2e_field "$out" ok)" 900
	a_before=$(rx_of "$IF_TA") b_before=$(rx_of "$IF_TB")
	for family in 4 6; do
		out=$(e2e_load --vip "$(vip_of_family $family)" --function 2 --count 100 --sessions 50 \
			--key "8${family}100" --timeout-ms 2000)
		expect_eq "by path B, IPv$family: ok" "$(e2e_field "$out" ok)" 100
		out=$(e2e_load --vip "$(vip_of_family $family)" --function 1 --count 100 --sessions 50 \
			--key "8${family}200" --timeout-ms 2000)
		expect_eq "by path B, function 1, IPv$family: ok" "$(e2e_field "$out" ok)" 100
	done
	a_after=$(rx_of "$IF_TA") b_after=$(rx_of "$IF_TB")
	# Function 2 is all routed (200 requests); function 1 partly (l2 is not).
	expect_ge "frames by path B" "$((b_after - b_before))" 200
	expect_le "frames by path A (neighbour probes at most)" "$((a_after - a_before))" 4
	hop=$(e2e_ctl --json backend list | jq -r '.[] | select(.backend == "ip6") | .nexthop')
	expect_eq "ip6's next hop" "$hop" "fd10:2::2@$IF_RB"
	expect_eq "tetherd not restarted" "$(e2e_tetherd_pid)" "$pid"
	route_vms_via 1
}

# No route to one VM's subnet: requests for its containers are counted
# fib_no_route in XDP and go to the slow path, which answers every one of
# them (nothing is lost); with the route back, XDP sends them again.
test_no_route() {
	local slot token out before ipip
	read -r slot token < <(tokens_of ip4)
	ip -n "$E2E_NS_ROUTER" route del 10.20.2.0/24
	before=$(stat_of fib_no_route)
	sleep 0.2 # past the next-hop cache's 50 ms
	out=$(e2e_load --function 1 --count 10 --token "$token" --timeout-ms 2000)
	ip -n "$E2E_NS_ROUTER" route add 10.20.2.0/24 via 172.16.1.2
	expect_eq "without a route: lost" "$(e2e_field "$out" lost)" 0
	expect_eq "without a route: answered" "$(e2e_field "$out" answered)" 10
	expect_ge "fib_no_route" "$(($(stat_of fib_no_route) - before))" 10
	sleep 0.2
	ipip=$(stat_of encap_ipip)
	out=$(e2e_load --function 1 --count 10 --token "$token" --strict --timeout-ms 2000 --per-container)
	expect_eq "route back: ok" "$(e2e_field "$out" ok)" 10
	expect_eq "route back: answered by" "$(answered_by "$out")" \
		"container=$slot ip4"
	expect_ge "route back: sent in IPIP by XDP" "$(($(stat_of encap_ipip) - ipip))" 10
}

# The router's neighbour on the path forgotten (as after a reboot of the
# transit, or a router that just started): the XDP program meets it
# unresolved (fib_no_neigh) and hands each such request to the slow path,
# which sends it through the kernel: answered by the token's own container
# (STRICT), and the kernel resolves the neighbour on the way, so the next
# requests are encapsulated in XDP again. Outer IPv4 (vx4) and IPv6 (ip6).
test_unresolved_neighbour() {
	local vm slot token out before vxlan ipip hop
	for vm in vx4 ip6; do
		read -r slot token < <(tokens_of "$vm")
		ip -n "$E2E_NS_ROUTER" neigh flush dev "$IF_RA"
		ip -n "$E2E_NS_ROUTER" -6 neigh flush dev "$IF_RA"
		sleep 0.2 # past the next-hop cache's 50 ms
		before=$(stat_of fib_no_neigh)
		out=$(e2e_load --vip "$(vip_of_family 4)" --function "${VM_FUNCTION[$vm]}" --count 10 \
			--token "$token" --strict --timeout-ms 2000 --per-container)
		expect_eq "$vm, neighbour unresolved: ok" "$(e2e_field "$out" ok)" 10
		expect_eq "$vm, neighbour unresolved: answered by" \
			"$(answered_by "$out")" "container=$slot $vm"
		expect_ge "$vm: fib_no_neigh" "$(($(stat_of fib_no_neigh) - before))" 1
		hop=172.16.1.2
		[[ $vm != ip6 ]] || hop=fd10:1::2
		ip -n "$E2E_NS_ROUTER" neigh show "$hop" | grep -Eq 'REACHABLE|STALE|DELAY|PROBE' ||
			fail "$vm: the kernel did not resolve $hop: $(ip -n "$E2E_NS_ROUTER" neigh show "$hop")"
		sleep 0.2
		vxlan=$(stat_of encap_vxlan) ipip=$(stat_of encap_ipip)
		out=$(e2e_load --vip "$(vip_of_family 4)" --function "${VM_FUNCTION[$vm]}" --count 10 \
			--token "$token" --strict --timeout-ms 2000)
		expect_eq "$vm, neighbour resolved: ok" "$(e2e_field "$out" ok)" 10
		expect_ge "$vm, neighbour resolved: encapsulated by XDP" \
			"$(($(stat_of encap_vxlan) + $(stat_of encap_ipip) - vxlan - ipip))" 10
	done
}

# The agents' decapsulators: an XDP program on each IPIP VM's interface, its
# name tether_decap; a VXLAN VM has its vxlan device.
test_decapsulators() {
	local vm prog
	for vm in ip4 ip6; do
		prog=$(ip -n "${VM_NS[$vm]}" -j -d link show dev "${VM_IFV[$vm]}" |
			jq -r '.[0].xdp.prog.name // empty')
		expect_eq "$vm's XDP program" "$prog" tether_decap
	done
	for vm in vx4 vx6; do
		ip -n "${VM_NS[$vm]}" link show dev tether-decap >/dev/null 2>&1 ||
			fail "$vm has no vxlan device tether-decap"
	done
}

# A killed IPIP agent leaves its program behind; the next agent replaces it
# (saying so) and its containers are reached through it; an agent stopped
# cleanly takes it off and logs its counts.
test_agent_restart() {
	local prog pid old new i slot token out
	old=$(tokens_of ip6)
	pid=$(e2e_agent_pid ip6)
	kill -KILL "$pid"
	e2e_wait_gone "$pid" 50 || fail "ip6's agent survived SIGKILL"
	prog=$(ip -n "${VM_NS[ip6]}" -j -d link show dev "${VM_IFV[ip6]}" | jq -r '.[0].xdp.prog.name // empty')
	expect_eq "left by the killed agent" "$prog" tether_decap
	agent_start ip6
	# The new agent's containers replace the killed one's at tetherd.
	for ((i = 0; i < 100; i++)); do
		new=$(tokens_of ip6)
		[[ $(wc -l <<<"$new") == 2 && -z $(comm -12 <(sort <<<"$old") <(sort <<<"$new")) ]] && break
		sleep 0.1
	done
	((i < 100)) || fail "ip6's containers were not replaced within 10 s: $new"
	grep -q "removing a decapsulator left on" "$E2E_LOG_DIR/agent_ip6.log" ||
		fail "the new agent did not say it replaced the stale decapsulator"
	while read -r slot token; do
		for family in 4 6; do
			out=$(e2e_load --vip "$(vip_of_family $family)" --function 2 --count 3 \
				--token "$token" --strict --timeout-ms 2000 --per-container)
			expect_eq "new container $slot, IPv$family: ok" "$(e2e_field "$out" ok)" 3
		done
	done <<<"$new"
	e2e_agent_stop ip6
	prog=$(ip -n "${VM_NS[ip6]}" -j -d link show dev "${VM_IFV[ip6]}" | jq -r '.[0].xdp.prog.name // empty')
	expect_eq "after a clean stop" "$prog" ""
	grep -q "packets decapsulated" "$E2E_LOG_DIR/agent_ip6.log" ||
		fail "the stopped agent did not log its counts"
}

# tetherd killed and started again, then stopped and started (an upgrade),
# under keyed load on both functions: the new tetherd adopts the pinned maps
# with the routed backends in them; nothing is lost, every session stays on
# its container, and the agents come back.
test_restart() {
	local out1 out2 up
	e2e_load --function 1 --count 40 --sessions 40 --key 95000 >/dev/null
	e2e_load --vip "[$E2E_VIP6]:$E2E_PORT" --function 2 --count 40 --sessions 40 --key 96000 >/dev/null
	up=$(e2e_ctl --json backend list | jq -r '[.[] | select(.state == "up") | .backend] | sort | join(" ")')
	ip netns exec "$E2E_NS_CLIENT" "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" --function 1 --count 1200 \
		--sessions 40 --key 95000 --rate 200 --timeout-ms 2000 >"$E2E_LOG_DIR/restart1" 2>&1 &
	local pid1=$!
	ip netns exec "$E2E_NS_CLIENT" "$E2E_LOAD" --vip "[$E2E_VIP6]:$E2E_PORT" --function 2 --count 1200 \
		--sessions 40 --key 96000 --rate 200 --timeout-ms 2000 >"$E2E_LOG_DIR/restart2" 2>&1 &
	local pid2=$!
	e2e_track "$pid1"
	e2e_track "$pid2"
	sleep 1
	e2e_tetherd_stop KILL
	e2e_tetherd_start
	sleep 1
	e2e_tetherd_stop TERM
	e2e_tetherd_start
	wait "$pid1" "$pid2" || true
	out1=$(head -n1 "$E2E_LOG_DIR/restart1") out2=$(head -n1 "$E2E_LOG_DIR/restart2")
	expect_eq "function 1: lost" "$(e2e_field "$out1" lost)" 0
	expect_eq "function 2: lost" "$(e2e_field "$out2" lost)" 0
	expect_eq "function 1: ok" "$(e2e_field "$out1" ok)" 1200
	expect_eq "function 2: ok" "$(e2e_field "$out2" ok)" 1200
	expect_eq "function 1: sticky" "$(e2e_field "$out1" sticky_sessions)" 40
	expect_eq "function 2: sticky" "$(e2e_field "$out2" sticky_sessions)" 40
	! grep -q "replacing it" "$E2E_LOG_DIR"/agent_*.log ||
		fail "an agent replaced its backend after the restarts: $(grep -h "replacing it" "$E2E_LOG_DIR"/agent_*.log | head -n1)"
	sleep 3
	expect_eq "backends up after the restarts" \
		"$(e2e_ctl --json backend list | jq -r '[.[] | select(.state == "up") | .backend] | sort | join(" ")')" "$up"
}

# An XDP program already on the VM's interface (here xdp_pass) gives way to
# the decapsulator while the agent runs and is put back when it stops.
test_previous_program() {
	local dev=${VM_IFV[ip4]} ns=${VM_NS[ip4]} out
	xdp_name() { ip -n "$ns" -j -d link show dev "$dev" | jq -r '.[0].xdp.prog.name // empty'; }
	e2e_agent_stop ip4
	expect_eq "after a clean stop" "$(xdp_name)" ""
	ip -n "$ns" link set dev "$dev" xdpdrv obj "$E2E_XDP_PASS" sec xdp
	agent_start ip4
	e2e_agent_wait_warm ip4 2
	expect_eq "while the agent runs" "$(xdp_name)" tether_decap
	out=$(e2e_load --function 1 --count 3 --token "$(tokens_of ip4 | head -n1 | cut -d' ' -f2)" \
		--strict --timeout-ms 2000)
	expect_eq "through the decapsulator: ok" "$(e2e_field "$out" ok)" 3
	e2e_agent_stop ip4
	expect_eq "put back when the agent stopped" "$(xdp_name)" xdp_pass
	ip -n "$ns" link set dev "$dev" xdpdrv off
	agent_start ip4
	e2e_agent_wait_warm ip4 2
}

TESTS=(list decapsulators keys tokens drain route_change no_route unresolved_neighbour agent_restart restart previous_program)

main() {
	local selected=("$@") vm
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	[[ -x $E2E_AGENT ]] || e2e_die "$E2E_AGENT is missing: run 'make' first"
	e2e_init
	transit_names
	transit_topology
	E2E_TETHERD_ARGS+=(--encap-source 172.16.1.1 --encap-source fd10:1::1)
	e2e_tetherd_start
	for vm in l2 "${ROUTED[@]}"; do
		agent_start "$vm"
	done
	for vm in l2 "${ROUTED[@]}"; do
		e2e_agent_wait_warm "$vm" 2
	done
	# The router's neighbours on both paths resolved, as on a router that has
	# been running, so that the tests count the XDP program's work from the
	# first request (test_unresolved_neighbour starts without them).
	local hop
	for hop in 172.16.1.2 172.16.2.2 fd10:1::2 fd10:2::2; do
		resolve_neighbour "$hop"
	done
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
