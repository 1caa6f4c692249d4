#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VLANs end to end (issue 12): clients whose frames reach the router tagged,
# and a VM the router reaches on a trunk, with real 802.1Q and 802.1ad frames
# on the veths. The rig is lib.sh's, with two clients and two VMs:
#
#   client  (untagged, as the rig makes it) -- router's $E2E_IF_RC  (XDP)
#   client2 (tagged: 802.1Q 10, or 802.1ad 20 outside 802.1Q 30)
#                                           -- router's $E2E_IF_RC2 (XDP)
#   vm1: untagged                           -- router's $E2E_IF_R1
#   vm2: on VLAN 100 of its link (backend add --vlan 100)
#                                           -- router's $E2E_IF_R2
#   vm3: on VLAN 100 of its link, its tether-agent registering it (--vlan 100)
#                                           -- router's $E2E_IF_R3
#
# The CI kernel has no 802.1Q driver (no `ip link add ... type vlan`), so
# each end of a tagged link gets what a VLAN interface would do as tc
# programs (tools/vlan_port.bpf.c): untagged frames leave tagged, frames with
# the link's tagging arrive untagged, anything else is dropped. The addresses
# stay on the veths, so ARP and NDP, the slow path's answers and the VMs'
# direct replies cross client2's link tagged as on a real trunk; tetherd's XDP
# sits on the router's veth and sees the tags, as on a wire (the veths' VLAN
# offload is off, so the tags are in the frames). vm2 takes nothing
# untagged, and the router's end of its link tags nothing (make_trunk_vm):
# what reaches vm2 was tagged by tetherd. Before the fix, tagged requests to
# vm1 and every request to vm2 were counted as routed and lost.
#
#   tests/e2e/test_vlan.sh [TEST...]     (TEST: a name below, e.g. qinq)
#
# TAP output ("ok N - name"), then "N passed, M failed" alone on the last
# line; the exit status is nonzero when a test failed. dot1q and qinq set
# client2's tagging for themselves.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOLD_MS=3000  # tetherd --hold-ms: long enough to bring a container up meanwhile
HOUR=1h       # the backends' heartbeat period: they stay up for the whole run
TRUNK_VID=100 # vm2's VLAN (the q100 port of vlan_port.bpf.c)
F_VM1=1       # a warm container on vm1
F_VM2=2       # a warm container on vm2
COUNT=40      # requests per load
VLAN_PORT=$E2E_BUILD/vlan_port.bpf.o

# --- the tagged links ------------------------------------------------------------

# Makes DEV (in namespace NS) a port of VLAN PORT (q10, qinq or q100 of
# vlan_port.bpf.c), replacing what it was: frames with the VLAN's tags come in
# untagged, others are dropped; with "both", untagged frames also leave
# tagged (in the frame: the device's VLAN offload goes off).
vlan_port() {
	local ns=$1 dev=$2 port=$3 directions=${4:-both}
	tc -n "$ns" qdisc del dev "$dev" clsact 2>/dev/null || true
	tc -n "$ns" qdisc add dev "$dev" clsact
	tc -n "$ns" filter add dev "$dev" ingress bpf direct-action obj "$VLAN_PORT" sec "tc/${port}_in"
	[[ $directions == both ]] || return 0
	tc -n "$ns" filter add dev "$dev" egress bpf direct-action obj "$VLAN_PORT" sec "tc/${port}_out"
	ip netns exec "$ns" ethtool -K "$dev" txvlan off tx-vlan-stag-hw-insert off >/dev/null
}

# VM NAME's link carries VLAN $TRUNK_VID only. The VM's end tags what it
# sends and takes only tagged frames; the router's end takes only tagged
# frames (the VM's direct replies) and tags nothing itself, so that a request
# reaches the VM only when tetherd tagged it, on the XDP path or the slow
# path. The router then never needs to answer the VM's ARP or NDP (which
# would leave untagged): the VM knows the router's MAC statically.
make_trunk_vm() {
	local mac gw4 gw6
	e2e_vm_vars "$1"
	mac=$(e2e_mac "$E2E_NS_ROUTER" "$E2E_VM_IFR")
	gw4=$(ip -n "$E2E_VM_NS" -j route show default | jq -r '.[0].gateway')
	gw6=$(ip -n "$E2E_VM_NS" -6 -j route show default | jq -r '.[0].gateway')
	ip -n "$E2E_VM_NS" neigh replace "$gw4" lladdr "$mac" dev "$E2E_VM_IFV" nud permanent
	ip -n "$E2E_VM_NS" -6 neigh replace "$gw6" lladdr "$mac" dev "$E2E_VM_IFV" nud permanent
	vlan_port "$E2E_VM_NS" "$E2E_VM_IFV" q100
	vlan_port "$E2E_NS_ROUTER" "$E2E_VM_IFR" q100 in
}

# client2's link as TAGGING: q10 (802.1Q 10) or qinq (802.1ad 20 outside,
# 802.1Q 30 inside), at both ends.
tag_client2() {
	vlan_port "$E2E_NS_CLIENT2" "$E2E_IF_CL2" "$1"
	vlan_port "$E2E_NS_ROUTER" "$E2E_IF_RC2" "$1"
}

# --- traffic and counters ------------------------------------------------------------

# udp_load from client2 (tagged) to the IPv4 VIP, or --vip given later.
load2() {
	e2e_in "$E2E_NS_CLIENT2" "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" "$@"
}

# One data-plane counter (tetherctl stats).
dp_stat() {
	e2e_ctl --json stats | jq -r --arg k "$1" '.[] | select(.part == "dataplane") | .[$k]'
}

sp_stat() {
	e2e_ctl --json stats | jq -r --arg k "$1" '.[] | select(.part == "slowpath") | .[$k]'
}

COUNTERS=(key_hit key_new token_hit flow_pick no_capacity malformed no_route retag_failed)

# Remembers the counters above (and the containers' packets) as BEFORE_*.
counters_before() {
	local c
	for c in "${COUNTERS[@]}"; do
		printf -v "BEFORE_$c" '%s' "$(dp_stat "$c")"
	done
	BEFORE_VM1_PACKETS=$(container_packets "$H1")
	BEFORE_VM2_PACKETS=$(container_packets "$H2")
}

# Each counter moved by what is given (COUNTER=N ...), every other of the
# list not at all.
expect_counters() {
	local what=$1 c want got before
	shift
	declare -A wanted=()
	while (($#)); do
		wanted[${1%%=*}]=${1#*=}
		shift
	done
	for c in "${COUNTERS[@]}"; do
		before=BEFORE_$c
		got=$(($(dp_stat "$c") - ${!before}))
		want=${wanted[$c]:-0}
		expect_eq "$what: $c moved by" "$got" "$want"
	done
}

container_packets() {
	e2e_ctl --json container show "$1" | jq -r '.packets'
}

# A load's summary: every request answered OK by VM NAME (the echo backend's
# name comes back in the reply), none lost.
expect_all_served_by() {
	local what=$1 out=$2 vm=$3 sent
	echo "#   $what: $(head -n1 <<<"$out" | grep -o 'sent=[0-9]* answered=[0-9]* lost=[0-9]* ok=[0-9]*')"
	sent=$(e2e_field "$(head -n1 <<<"$out")" sent)
	expect_eq "$what: sent" "$sent" "$COUNT"
	expect_eq "$what: lost" "$(e2e_field "$out" lost)" 0
	expect_eq "$what: answered OK" "$(e2e_field "$out" ok)" "$sent"
	expect_eq "$what: served by" "$(grep '^container=' <<<"$out" | sed 's/.*served_by=//' | sort -u)" "$vm"
}

# Keys and tokens to both VMs from a load command (load2 or e2e_load), over
# IPv4 and IPv6; the counters and the containers' packets follow exactly.
keys_and_tokens() {
	local label=$1 load=$2 out vip key=$3
	for vip in "$E2E_VIP4:$E2E_PORT" "[$E2E_VIP6]:$E2E_PORT"; do
		counters_before
		out=$("$load" --vip "$vip" --function "$F_VM1" --count "$COUNT" --key "$key" \
			--timeout-ms 1000 --per-container)
		expect_all_served_by "$label, $vip, a key on vm1 (untagged)" "$out" vm1
		out=$("$load" --vip "$vip" --function "$F_VM2" --count "$COUNT" --key "$key" \
			--timeout-ms 1000 --per-container)
		expect_all_served_by "$label, $vip, a key on vm2 (VLAN $TRUNK_VID)" "$out" vm2
		out=$("$load" --vip "$vip" --function "$F_VM2" --count "$COUNT" --token "$TOKEN2" \
			--timeout-ms 1000 --per-container)
		expect_all_served_by "$label, $vip, vm2's token" "$out" vm2
		out=$("$load" --vip "$vip" --function "$F_VM1" --count "$COUNT" --token "$TOKEN1" \
			--timeout-ms 1000 --per-container)
		expect_all_served_by "$label, $vip, vm1's token" "$out" vm1
		expect_counters "$label, $vip" key_new=2 key_hit=$((2 * COUNT - 2)) \
			token_hit=$((2 * COUNT))
		expect_eq "$label, $vip: vm1's container's packets" \
			$(($(container_packets "$H1") - BEFORE_VM1_PACKETS)) $((2 * COUNT))
		expect_eq "$label, $vip: vm2's container's packets" \
			$(($(container_packets "$H2") - BEFORE_VM2_PACKETS)) $((2 * COUNT))
		key=$((key + 1))
	done
}

# --- the tests -------------------------------------------------------------------------

# backend list shows each backend's VLAN; a VID out of range changes nothing.
test_config() {
	local table json before after answer status=0
	table=$(e2e_ctl backend list)
	echo "#   $(head -n1 <<<"$table")"
	grep -q '^VLAN\| VLAN ' <<<"$table" || fail "backend list has no VLAN column: $table"
	json=$(e2e_ctl --json backend list)
	expect_eq "vm1's vlan (--json)" "$(jq -r '.[] | select(.backend == "vm1") | .vlan' <<<"$json")" 0
	expect_eq "vm2's vlan (--json)" "$(jq -r '.[] | select(.backend == "vm2") | .vlan' <<<"$json")" \
		"$TRUNK_VID"
	# The pinned record, by its BTF field name.
	local id
	id=$(jq -r '.[] | select(.backend == "vm2") | .id' <<<"$json")
	# shellcheck disable=SC2046 # the key's bytes, one word each
	expect_eq "vm2's vlan in the pinned backends map" \
		"$(bpftool -j map lookup pinned "$E2E_PIN_ROOT/backends" key $(e2e_key_bytes "$id") |
			jq -r '.formatted.value.vlan')" "$TRUNK_VID"

	before=$(e2e_ctl --json backend list | sed 's/"expires_in_ms":[0-9]*,//g')
	answer=$(e2e_ctl backend add vm9 --addr 203.0.113.50 --mac 02:00:00:00:00:09 \
		--iface "$E2E_IF_R1" --vlan 4095 2>&1) || status=$?
	expect_eq "tetherctl --vlan 4095: exit status" "$status" 2
	expect_contains "tetherctl --vlan 4095" "$answer" \
		"bad value '4095' for '--vlan': expected a VLAN id from 1 to 4094, or 0 for untagged"
	answer=$(e2e_raw "add backend name=vm9 addr=203.0.113.50 mac=02:00:00:00:00:09 iface=$E2E_IF_R1 vlan=4095" |
		head -n1)
	expect_eq "add backend vlan=4095" "$answer" \
		"error bad_argument: bad value '4095' for 'vlan': expected a VLAN id from 1 to 4094, or 0 for untagged"
	after=$(e2e_ctl --json backend list | sed 's/"expires_in_ms":[0-9]*,//g')
	expect_eq "backends after the refused adds" "$after" "$before"
}

# Untagged requests (client) to both VMs: vm2 only through its VLAN.
test_untagged() {
	keys_and_tokens "untagged client" e2e_load 7000
}

# 802.1Q-tagged requests (client2 on VLAN 10) to both VMs.
test_dot1q() {
	tag_client2 q10
	keys_and_tokens "802.1Q client" load2 7100
}

# 802.1ad + 802.1Q (QinQ) tagged requests to both VMs.
test_qinq() {
	tag_client2 qinq
	keys_and_tokens "QinQ client" load2 7200
}

# A request held by the slow path (no warm container yet) goes to vm2 tagged
# when its container comes up, and the tagged client gets the answer.
test_slow_path() {
	local h out load=$E2E_LOG_DIR/held.load forwarded held i
	h=$(e2e_ctl --json container add --function 3 --backend vm2 | jq -er '.container')
	forwarded=$(sp_stat forwarded)
	held=$(sp_stat held)
	counters_before
	e2e_in "$E2E_NS_CLIENT2" "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" --function 3 --count 3 \
		--rate 1000 --timeout-ms 5000 --per-container >"$load" 2>&1 &
	local pid=$!
	e2e_track "$pid"
	for ((i = 0; i < 200; i++)); do
		(($(sp_stat held) >= held + 3)) && break
		sleep 0.01
	done
	expect_eq "requests held" $(($(sp_stat held) - held)) 3
	e2e_ctl container up "$h" >/dev/null
	wait "$pid" || true
	out=$(cat "$load")
	echo "#   held, then container $h up on vm2: $(head -n1 <<<"$out" | grep -o 'sent=[0-9]* answered=[0-9]* lost=[0-9]* ok=[0-9]*')"
	expect_eq "held: lost" "$(e2e_field "$out" lost)" 0
	expect_eq "held: answered OK" "$(e2e_field "$out" ok)" 3
	expect_eq "held: served by" "$(grep '^container=' <<<"$out" | sed 's/.*served_by=//')" vm2
	expect_eq "forwarded by the slow path" $(($(sp_stat forwarded) - forwarded)) 3
	expect_eq "slow path send errors" "$(sp_stat send_errors)" 0
	expect_counters "held requests" no_capacity=3
}

# vm3's agent registers its backend with --vlan 100: requests reach its
# container tagged, from the tagged client and the untagged one.
test_agent() {
	local out backend
	e2e_agent_start vm3 --vlan "$TRUNK_VID" --function 4:1 --handler served-by
	e2e_agent_wait_warm vm3 1
	backend=$(e2e_ctl --json backend list | jq -c '.[] | select(.backend == "vm3")')
	echo "#   $backend"
	expect_eq "vm3's vlan, as its agent registered it" "$(jq -r '.vlan' <<<"$backend")" "$TRUNK_VID"
	expect_eq "vm3's iface" "$(jq -r '.iface' <<<"$backend")" "$E2E_IF_R3"
	out=$(load2 --function 4 --count "$COUNT" --key 7400 --timeout-ms 1000 --per-container)
	expect_all_served_by "tagged client to vm3's agent" "$out" vm3-1
	out=$(e2e_load --vip "[$E2E_VIP6]:$E2E_PORT" --function 4 --count "$COUNT" --key 7401 \
		--timeout-ms 1000 --per-container)
	expect_all_served_by "untagged client to vm3's agent, IPv6" "$out" vm3-1
	e2e_agent_stop vm3
}

# Restarted, tetherd adopts vm2's VLAN from the pinned backends map: the
# tagged requests still reach it.
test_restart() {
	local out
	e2e_tetherd_stop KILL
	e2e_tetherd_start
	grep -q "adopted the maps pinned at $E2E_PIN_ROOT" "$E2E_TETHERD_LOG" ||
		fail "tetherd did not say it adopted the pinned maps"
	expect_eq "vm2's vlan after the restart" \
		"$(e2e_ctl --json backend list | jq -r '.[] | select(.backend == "vm2") | .vlan')" \
		"$TRUNK_VID"
	counters_before
	out=$(load2 --function "$F_VM2" --count "$COUNT" --key 7300 --timeout-ms 1000 --per-container)
	expect_all_served_by "tagged client to vm2 after the restart" "$out" vm2
	out=$(e2e_load --function "$F_VM2" --count "$COUNT" --key 7300 --timeout-ms 1000 \
		--per-container)
	expect_all_served_by "untagged client to vm2 after the restart" "$out" vm2
	expect_counters "after the restart" key_new=1 key_hit=$((2 * COUNT - 1))
}

# --- runner ------------------------------------------------------------------------------

TESTS=(config untagged dot1q qinq slow_path agent restart)

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	e2e_init
	[[ -f $VLAN_PORT ]] || e2e_die "$VLAN_PORT is missing: run 'make' first"
	command -v tc >/dev/null || e2e_die "'tc' is not installed (iproute2; make deps)"
	e2e_topology --vms 3 --clients 2
	make_trunk_vm vm2
	make_trunk_vm vm3
	tag_client2 q10
	e2e_tetherd_start --hold-ms "$HOLD_MS"
	e2e_backend_start vm1
	e2e_backend_start vm2
	e2e_backend_add vm1 --heartbeat-ms "$HOUR" >/dev/null
	e2e_backend_add vm2 --heartbeat-ms "$HOUR" --vlan "$TRUNK_VID" >/dev/null
	H1=$(e2e_ctl --json container add --function "$F_VM1" --backend vm1 --warm | jq -er '.container')
	H2=$(e2e_ctl --json container add --function "$F_VM2" --backend vm2 --warm | jq -er '.container')
	TOKEN1=$(e2e_ctl --json container show "$H1" | jq -er '.token')
	TOKEN2=$(e2e_ctl --json container show "$H2" | jq -er '.token')
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
