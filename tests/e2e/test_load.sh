#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end tests of load-aware routing (issue 11; docs/protocol.md,
# "Completions and liveness") with real VM agents: tetherd with a completion
# address and its XDP program on the VMs' links too, agents in vm1 and vm2
# running the sleep handler (20 ms a request) in containers of limit 1,
# sending a DONE after each request and ALIVE and refreshes every
# heartbeat-ms / 3.
#
#   steering      64 concurrent requests with one key reach all 8 containers,
#                 all answered, none lost, no container ever ran two at once
#                 (the agents' own count of requests beyond a limit is 0)
#   unlimited     the contrast: the same with the limit off all queue in the
#                 key's one container (and take about 64 x 20 ms)
#   lost_done     completions dropped on the VM side (nftables): containers
#                 stay counted busy; once DONEs flow again a refresh heals the
#                 counts within the bound (2 x heartbeat-ms / 3)
#   lost_request  requests dropped on their way into the VM: the received
#                 counts of the refreshes find them lost within the bound
#   alive         ALIVE datagrams counted, none forged; a killed VM's keys
#                 are served elsewhere within 200 ms (heartbeat 150 ms)
# Run as root:  tests/e2e/test_load.sh [TEST...]
# TAP output, then "N passed, M failed" alone on the last line.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FUNCTION=91
KEY=4242
COMPLETION_PORT=7700
COMPLETION=203.0.113.1:$COMPLETION_PORT # the router's address on vm1's link
HEARTBEAT_MS=150                        # ALIVE and refreshes every 50 ms
BOUND_MS=$((2 * HEARTBEAT_MS / 3 + 100)) # documented bound, plus the rig's slack

show() {
	sed 's/^/#     /' <<<"$1"
}

# Starts the agents of vm1 and vm2 with 4 containers of FUNCTION each, with
# the given per-container concurrency (0: no limit); $2: their heartbeat
# (HEARTBEAT_MS).
start_agents() {
	local limit=$1 heartbeat_ms=${2:-$HEARTBEAT_MS} spec name
	spec="$FUNCTION:4"
	((limit == 0)) || spec="$FUNCTION:4:$limit"
	for name in vm1 vm2; do
		e2e_agent_start "$name" --function "$spec" --handler sleep \
			--heartbeat-ms "$heartbeat_ms" --cold-start-ms 50
	done
	e2e_agent_wait_warm vm1 4
	e2e_agent_wait_warm vm2 4
}

stop_agents() {
	local name
	for name in vm1 vm2; do
		[[ -z $(e2e_agent_pid "$name") ]] || e2e_agent_stop "$name"
	done
	sleep 0.2
}

violations() {
	cat "$E2E_LOG_DIR"/agent_vm*.log 2>/dev/null | grep -c "ROUTER BUG" || true
}

stat_of() {
	e2e_ctl --json stats | jq -r "[.[] | select(.part == \"$1\")][0].$2"
}

# The sum of in_flight over the function's containers, as tetherd shows it.
in_flight_total() {
	e2e_ctl --json container list --function "$FUNCTION" | jq '[.[].in_flight] | add // 0'
}

# Waits up to MS for the function's in-flight total to reach 0; prints the
# milliseconds it took (or fails).
wait_idle_ms() {
	local limit_ms=$1 start now
	start=${EPOCHREALTIME/./}
	while :; do
		[[ $(in_flight_total) == 0 ]] && break
		now=${EPOCHREALTIME/./}
		(((now - start) / 1000 <= limit_ms)) || {
			fail "in flight still $(in_flight_total) after ${limit_ms} ms"
			return 1
		}
		sleep 0.01
	done
	now=${EPOCHREALTIME/./}
	echo $(((now - start) / 1000))
}

vm_nft() {
	local vm=$1
	shift
	e2e_vm_vars "$vm"
	ip netns exec "$E2E_VM_NS" nft "$@"
}

# --- tests ------------------------------------------------------------------
# tetherd down for 3 heartbeat deadlines: the agents' ALIVE datagrams keep
# their backends up in the data plane (no control connection needed), so the
# VMs go on serving, and a restarted tetherd adopts them up. A deadline of
# 1 s (ALIVE every 333 ms): 150 ms is alive's, a tighter test of speed.
test_alive_without_tetherd() {
	local heartbeat_ms=1000
	start_agents 0 "$heartbeat_ms"
	local out before name down_ms=$((3 * heartbeat_ms))
	before=$(stat_of load alive)
	e2e_tetherd_stop KILL
	sleep "$((down_ms / 1000)).$(printf %03d $((down_ms % 1000)))"
	out=$(e2e_load --function "$FUNCTION" --count 40 --sessions 40 --timeout-ms 1000 --per-container)
	show "$(head -n1 <<<"$out")"
	expect_eq "answered OK with tetherd down $down_ms ms and more" "$(e2e_field "${out%%$'\n'*}" ok)" 40
	expect_contains "served by vm1" "$out" "served_by=vm1"
	expect_contains "served by vm2" "$out" "served_by=vm2"
	e2e_tetherd_start --completion "$COMPLETION" --hold-ms 2000
	expect_ge "ALIVE applied meanwhile" "$(($(stat_of load alive) - before))" 6
	for name in vm1 vm2; do
		expect_eq "$name at the restarted tetherd" \
			"$(e2e_ctl --json backend list | jq -r --arg n "$name" '.[] | select(.backend == $n) | .state')" up
	done
	stop_agents
}


test_steering() {
	start_agents 1
	local out before
	before=$(violations)
	out=$(e2e_load --function "$FUNCTION" --key "$KEY" --count 64 --timeout-ms 5000 \
		--per-container)
	show "$out"
	local line=${out%%$'\n'*}
	expect_eq answered "$(e2e_field "$line" answered)" 64
	expect_eq ok "$(e2e_field "$line" ok)" 64
	expect_eq lost "$(e2e_field "$line" lost)" 0
	expect_eq containers "$(e2e_field "$line" containers)" 8
	expect_eq "requests beyond a limit (agents' logs)" "$(violations)" "$before"
	expect_ge key_overflow "$(stat_of load key_overflow)" 1
	wait_idle_ms 1000 >/dev/null
	stop_agents
}

test_unlimited() {
	start_agents 0
	local out line
	out=$(e2e_load --function "$FUNCTION" --key "$((KEY + 1))" --count 64 --timeout-ms 10000)
	show "$out"
	line=${out%%$'\n'*}
	expect_eq answered "$(e2e_field "$line" answered)" 64
	expect_eq containers "$(e2e_field "$line" containers)" 1
	# 64 requests of 20 ms one after the other in one container.
	expect_ge "p99 (us) queued in one container" "$(e2e_field "$line" p99_us)" 1000000
	stop_agents
}

test_lost_done() {
	start_agents 1
	local out line ms
	# DONEs (and refreshes) from vm1 dropped on their way out.
	vm_nft vm1 add table inet tload
	vm_nft vm1 add chain inet tload out '{ type filter hook output priority 0; }'
	vm_nft vm1 add rule inet tload out udp dport "$COMPLETION_PORT" drop
	out=$(e2e_load --function "$FUNCTION" --key "$KEY" --count 16 --timeout-ms 5000)
	line=${out%%$'\n'*}
	show "$line"
	expect_eq answered "$(e2e_field "$line" answered)" 16
	sleep 0.3
	local busy
	busy=$(in_flight_total)
	show "counted in flight with vm1's DONEs dropped: $busy"
	expect_ge "vm1's containers counted busy" "$busy" 1
	vm_nft vm1 delete table inet tload
	ms=$(wait_idle_ms "$BOUND_MS")
	show "counts healed ${ms} ms after DONEs flowed again (bound ${BOUND_MS} ms)"
	expect_eq "requests beyond a limit" "$(violations)" 0
	stop_agents
}

test_lost_request() {
	start_agents 1
	local out line ms before
	before=$(stat_of load lost_fixed)
	# Requests into vm2 dropped before the agent sees them.
	vm_nft vm2 add table inet tload
	vm_nft vm2 add chain inet tload in '{ type filter hook input priority 0; }'
	vm_nft vm2 add rule inet tload in udp dport "$E2E_PORT" drop
	out=$(e2e_load --function "$FUNCTION" --key "$KEY" --count 16 --timeout-ms 300)
	line=${out%%$'\n'*}
	show "$line"
	vm_nft vm2 delete table inet tload
	ms=$(wait_idle_ms "$BOUND_MS")
	show "lost requests uncounted within ${ms} ms (bound ${BOUND_MS} ms)"
	expect_ge lost_fixed "$(($(stat_of load lost_fixed) - before))" 1
	stop_agents
}

test_alive() {
	start_agents 1
	local before forged done_forged out line handle slot backend key killed_at now elapsed
	sleep 0.1
	before=$(stat_of load alive)
	forged=$(stat_of load alive_forged)
	done_forged=$(stat_of load done_forged)
	sleep 0.3
	expect_ge "ALIVE applied in 300 ms" "$(($(stat_of load alive) - before))" 4
	expect_eq "ALIVE forged meanwhile" "$(stat_of load alive_forged)" "$forged"
	expect_eq "DONE forged meanwhile" "$(stat_of load done_forged)" "$done_forged"
	# A key whose home is on vm1.
	for key in $(seq 1000 1100); do
		out=$(e2e_load --function "$FUNCTION" --key "$key" --count 1 --per-container)
		[[ $out == *"served_by=vm1"* ]] && break
	done
	[[ $out == *"served_by=vm1"* ]] || fail "no key of 100 lives on vm1"
	e2e_agent_kill vm1
	killed_at=$E2E_KILLED_AT_NS
	sleep 0.2
	out=$(e2e_load --function "$FUNCTION" --key "$key" --count 1 --timeout-ms 1000 --per-container)
	now=${EPOCHREALTIME/./}000
	elapsed=$(((now - killed_at) / 1000000))
	show "$out"
	expect_eq "answered 200 ms after the kill" "$(e2e_field "${out%%$'\n'*}" ok)" 1
	expect_contains "served by" "$out" "served_by=vm2"
	show "answered by vm2 ${elapsed} ms after vm1 was killed"
	stop_agents
	# The dead backend: down at tetherd too.
	e2e_ctl backend list | grep -q "vm1.*down" || {
		sleep 0.5
		e2e_ctl backend list | grep -q "vm1.*down" || fail "tetherd does not show vm1 down"
	}
}

TESTS=(steering unlimited lost_done lost_request alive alive_without_tetherd)

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	e2e_init
	command -v nft >/dev/null || e2e_die "'nft' is not installed (nftables; make deps)"
	e2e_topology
	# XDP on the VMs' links too: DONE and ALIVE come in there.
	E2E_TETHERD_IFACES+=("$E2E_IF_R1" "$E2E_IF_R2")
	e2e_tetherd_start --completion "$COMPLETION" --hold-ms 2000
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
