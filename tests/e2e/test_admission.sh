#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The slow path under flood (issue 17), end to end: the issue's measurement
# as a test of behaviour, never of timing. The rig is lib.sh's with three VMs
# running the real agent and two clients:
#
#   client  -- router's $E2E_IF_RC  (XDP): keyed requests for function 1 at
#              2,000/s (legit), and function 5's first request mid-flood
#   client2 -- router's $E2E_IF_RC2 (XDP): a flood for function 999, which no
#              VM serves, as fast as udp_load goes
#   vm1: tether-agent, two warm containers of function 1
#   vm3: tether-agent, no container of function 5 until tetherd asks for one
#        (--capacity, a cold start of COLD_START_MS)
#
# tetherd runs with a small budget (ADMIT_* below). What must hold:
#   flood   the flood is answered OVERLOADED by the router itself (shed, and
#           the client's OVERLOADED answers); the slow path receives at most
#           the budget of function 999 (its burst plus its rate over the
#           flood's duration, from the router's counters and tetherd's);
#           every legit request is answered OK; function 5's first request,
#           sent during the flood, is held and served by the container vm3
#           starts for it
#   cap     with a cap on answers, the router answers at most that many and
#           drops (and counts) the rest
#   off     with no budget, nothing is shed: the flood reaches the slow path
#   config  tetherctl stats shows the budget (table and JSON), and the
#           defaults when tetherd is given none
#
#   tests/e2e/test_admission.sh [TEST...]     (TEST: a name below, e.g. flood)
#
# TAP output ("ok N - name"), then "N passed, M failed" alone on the last
# line; the exit status is nonzero when a test failed. Frames the router's
# XDP sends back (XDP_TX) reach a client's veth only when it has an XDP
# program (as redirected frames need, DESIGN's platform notes): the clients'
# veths get xdp_pass, as the VMs' have.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOLD_MS=3000        # tetherd --hold-ms: function 5's request waits out the cold start
COLD_START_MS=300   # vm3's agent: how long its container of function 5 takes
AGENT_HEARTBEAT_MS=15000
F_LEGIT=1           # two warm containers on vm1
F_COLD=5            # none until vm3 starts one on demand
F_FLOOD=999         # none, ever
LEGIT_RATE=2000     # the issue's legit client
FLOOD_S=4           # seconds of flood (and of legit traffic beside it)
ADMIT_RATE=100      # tetherd --admit-rate: per function, per second
ADMIT_BURST=50
ADMIT_TOTAL_RATE=1000
ADMIT_TOTAL_BURST=500
# The budget, as tetherd options (no cap on answers: the cap has its test).
BUDGET=(--admit-rate "$ADMIT_RATE" --admit-burst "$ADMIT_BURST"
	--admit-total-rate "$ADMIT_TOTAL_RATE" --admit-total-burst "$ADMIT_TOTAL_BURST"
	--shed-answer-rate 0)

# --- counters ----------------------------------------------------------------------

# Every counter of tetherctl stats, flattened: "part.key value" lines.
snapshot() {
	e2e_ctl --json stats | jq -r '.[] | .part as $p | to_entries[] |
		select(.key != "part") | "\($p).\(.key) \(.value)"'
}

# The value of PART.KEY in a snapshot.
stat_of() {
	awk -v k="$2" '$1 == k { print $2 }' <<<"$1"
}

# AFTER - BEFORE for PART.KEY.
delta() {
	echo $(($(stat_of "$2" "$3") - $(stat_of "$1" "$3")))
}

# An XDP_PASS program on a client's veth, as the VMs have, so that frames the
# router's XDP sends back with XDP_TX are delivered (a veth takes XDP frames
# from its peer only with NAPI on, which an XDP program turns on).
xdp_pass_on() {
	ip -n "$1" link set dev "$2" xdpdrv obj "$E2E_XDP_PASS" sec xdp
}

# Restarts tetherd with the options given (the rig's own and these), and
# waits until the agents have their containers registered again.
restart_tetherd() {
	e2e_tetherd_stop
	e2e_tetherd_start --hold-ms "$HOLD_MS" "$@"
	e2e_agent_wait_warm vm1 2
}

# udp_load from client2 (IPv4 VIP, or --vip given later), in the background;
# its output goes to FILE. Sets FLOOD_PID.
flood_bg() {
	local file=$1
	shift
	ip netns exec "$E2E_NS_CLIENT2" "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" "$@" >"$file" 2>&1 &
	FLOOD_PID=$!
	e2e_track "$FLOOD_PID"
}

# --- tests ---------------------------------------------------------------------------

# The issue's measurement, as behaviour.
test_flood() {
	local before after legit flood cold started ended elapsed_ms shed dropped admitted
	local received flood_sent bound slot
	restart_tetherd "${BUDGET[@]}"
	expect_eq "function $F_COLD's containers before" \
		"$(e2e_ctl --json container list --function "$F_COLD" | jq length)" 0
	before=$(snapshot)
	started=$(date +%s%N)
	e2e_load_bg "$E2E_LOG_DIR/legit.out" --function "$F_LEGIT" --sessions 50 --rate "$LEGIT_RATE" \
		--duration-s "$FLOOD_S" --timeout-ms 2000
	local legit_pid=$E2E_LOAD_PID
	flood_bg "$E2E_LOG_DIR/flood.out" --function "$F_FLOOD" --rate 0 --duration-s "$FLOOD_S" \
		--timeout-ms $((HOLD_MS + 2000))
	sleep 1
	# Function 5's first request, from the legit client, in the thick of it.
	cold=$(e2e_in "$E2E_NS_CLIENT" "$E2E_LOAD" --vip "[$E2E_VIP6]:$E2E_PORT" --function "$F_COLD" \
		--key 5001 --count 1 --timeout-ms $((HOLD_MS + 2000)) --per-container)
	wait "$legit_pid" || true
	legit=$(head -n1 "$E2E_LOG_DIR/legit.out")
	wait "$FLOOD_PID" || true
	ended=$(date +%s%N)
	flood=$(head -n1 "$E2E_LOG_DIR/flood.out")
	after=$(snapshot)
	elapsed_ms=$(((ended - started) / 1000000))

	shed=$(delta "$before" "$after" admission.shed)
	dropped=$(delta "$before" "$after" admission.shed_dropped)
	admitted=$(($(delta "$before" "$after" dataplane.no_capacity) +
		$(delta "$before" "$after" dataplane.strict_gone) - shed - dropped))
	received=$(delta "$before" "$after" slowpath.received)
	flood_sent=$(e2e_field "$flood" sent)
	# Function 999's budget over the whole window, plus function 5's request.
	bound=$((ADMIT_BURST + ADMIT_RATE * elapsed_ms / 1000 + 1 + 1))
	echo "#   legit:  $(cut -d' ' -f1-8 <<<"$legit") p99_us=$(e2e_field "$legit" p99_us)"
	echo "#   flood:  $(cut -d' ' -f1-8 <<<"$flood") ($((flood_sent * 1000 / (FLOOD_S * 1000)))/s)"
	echo "#   function $F_COLD: $(cut -d' ' -f1-4 <<<"$cold") latency $(e2e_field "$cold" max_us) us"
	echo "#   router: shed $shed, shed_dropped $dropped, admitted $admitted; slow path received $received (budget over ${elapsed_ms} ms: $bound)"

	# The legit client loses nothing.
	expect_ge "legit: sent" "$(e2e_field "$legit" sent)" $((LEGIT_RATE * FLOOD_S / 2))
	expect_eq "legit: lost" "$(e2e_field "$legit" lost)" 0
	expect_eq "legit: ok" "$(e2e_field "$legit" ok)" "$(e2e_field "$legit" sent)"
	# The flood was a flood: far more than its budget.
	expect_ge "flood: sent (10 x the budget)" "$flood_sent" $((10 * bound))
	# The router answered it: OVERLOADED from XDP, none dropped (no cap).
	expect_ge "router: shed" "$shed" $((flood_sent - bound - $(e2e_field "$flood" lost)))
	expect_eq "router: shed_dropped" "$dropped" 0
	expect_ge "flood: OVERLOADED answers" "$(e2e_field "$flood" overloaded)" \
		$((shed - $(e2e_field "$flood" lost)))
	expect_eq "flood: OK answers" "$(e2e_field "$flood" ok)" 0
	# The slow path got at most the budget, and all of what was admitted.
	expect_le "router: admitted to the slow path" "$admitted" "$bound"
	expect_ge "router: admitted to the slow path (at least the burst)" "$admitted" "$ADMIT_BURST"
	expect_le "slow path: received" "$received" "$admitted"
	expect_ge "slow path: received" "$received" $((admitted - 2))
	# Function 5's cold start went through: held, asked for, served by vm3.
	expect_eq "function $F_COLD: ok" "$(e2e_field "$cold" ok)" 1
	slot=$(sed -n 's/^container=\([0-9]*\) .*/\1/p' <<<"$cold")
	expect_eq "function $F_COLD: served by" \
		"$(e2e_ctl --json container list --function "$F_COLD" |
			jq -r --argjson s "${slot:--1}" '.[] | select(.container == $s) | .backend')" vm3
	expect_ge "function $F_COLD: latency (us), the cold start" "$(e2e_field "$cold" max_us)" \
		$((COLD_START_MS * 1000))
	expect_ge "slow path: forwarded (function $F_COLD's request)" \
		"$(delta "$before" "$after" slowpath.forwarded)" 1
}

# A cap on answers: at most its burst and rate are answered, the rest dropped.
test_cap() {
	local before after flood shed dropped started ended elapsed_ms bound rate=200 burst=100
	restart_tetherd "${BUDGET[@]}" --shed-answer-rate "$rate" --shed-answer-burst "$burst"
	before=$(snapshot)
	started=$(date +%s%N)
	flood_bg "$E2E_LOG_DIR/cap.out" --vip "[$E2E_VIP6]:$E2E_PORT" --function "$F_FLOOD" \
		--rate 0 --duration-s 2 --timeout-ms 500
	wait "$FLOOD_PID" || true
	ended=$(date +%s%N)
	after=$(snapshot)
	flood=$(head -n1 "$E2E_LOG_DIR/cap.out")
	elapsed_ms=$(((ended - started) / 1000000))
	shed=$(delta "$before" "$after" admission.shed)
	dropped=$(delta "$before" "$after" admission.shed_dropped)
	bound=$((burst + rate * elapsed_ms / 1000 + 1))
	echo "#   flood (IPv6): $(cut -d' ' -f1-8 <<<"$flood"); router: shed $shed, shed_dropped $dropped (cap over ${elapsed_ms} ms: $bound)"
	expect_ge "router: shed (at least the answers' burst)" "$shed" "$burst"
	expect_le "router: shed (answers within the cap)" "$shed" "$bound"
	expect_ge "router: shed_dropped" "$dropped" $(($(e2e_field "$flood" sent) / 2))
	expect_le "flood: OVERLOADED answers" "$(e2e_field "$flood" overloaded)" \
		$((shed + $(delta "$before" "$after" slowpath.overloaded)))
}

# No budget: nothing is shed; the flood reaches the slow path.
test_off() {
	local before after flood shed
	restart_tetherd --admit-rate 0 --admit-total-rate 0
	before=$(snapshot)
	flood_bg "$E2E_LOG_DIR/off.out" --function "$F_FLOOD" --rate 5000 --duration-s 1 \
		--timeout-ms $((HOLD_MS + 2000))
	wait "$FLOOD_PID" || true
	after=$(snapshot)
	flood=$(head -n1 "$E2E_LOG_DIR/off.out")
	shed=$(delta "$before" "$after" admission.shed)
	echo "#   flood at 5000/s for 1 s: $(cut -d' ' -f1-8 <<<"$flood"); shed $shed, slow path received $(delta "$before" "$after" slowpath.received)"
	expect_eq "router: shed" "$shed" 0
	expect_eq "router: shed_dropped" "$(delta "$before" "$after" admission.shed_dropped)" 0
	expect_ge "slow path: received" "$(delta "$before" "$after" slowpath.received)" \
		$(($(e2e_field "$flood" sent) - $(e2e_field "$flood" lost)))
}

# tetherctl stats: the budget as given, in the table and in JSON; the
# defaults without options.
test_config() {
	local table json
	restart_tetherd "${BUDGET[@]}" --shed-answer-rate 12345 --shed-answer-burst 678
	json=$(e2e_ctl --json stats | jq -c '.[] | select(.part == "admission")')
	expect_eq "admit_rate" "$(jq .admit_rate <<<"$json")" "$ADMIT_RATE"
	expect_eq "admit_burst" "$(jq .admit_burst <<<"$json")" "$ADMIT_BURST"
	expect_eq "admit_total_rate" "$(jq .admit_total_rate <<<"$json")" "$ADMIT_TOTAL_RATE"
	expect_eq "admit_total_burst" "$(jq .admit_total_burst <<<"$json")" "$ADMIT_TOTAL_BURST"
	expect_eq "shed_answer_rate" "$(jq .shed_answer_rate <<<"$json")" 12345
	expect_eq "shed_answer_burst" "$(jq .shed_answer_burst <<<"$json")" 678
	for key in shed shed_dropped; do
		[[ $(jq ".$key" <<<"$json") =~ ^[0-9]+$ ]] || fail "$key is not a count in $json"
	done
	table=$(e2e_ctl stats)
	expect_contains "tetherctl stats" "$table" "SHED_ANSWER_RATE"
	grep -Eq '^admission +[0-9]+ +[0-9]+ +100 +50 +1000 +500 +12345 +678$' <<<"$table" ||
		fail "no admission row with the budget in: $table"
	restart_tetherd
	json=$(e2e_ctl --json stats | jq -c '.[] | select(.part == "admission")')
	expect_eq "defaults" "$(jq -c '[.admit_rate, .admit_burst, .admit_total_rate,
		.admit_total_burst, .shed_answer_rate, .shed_answer_burst]' <<<"$json")" \
		"[500,256,5000,2048,100000,10000]"
}

# --- runner ------------------------------------------------------------------------------

TESTS=(config flood cap off)

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	e2e_init
	e2e_topology --vms 3 --clients 2
	xdp_pass_on "$E2E_NS_CLIENT" "$E2E_IF_CL"
	xdp_pass_on "$E2E_NS_CLIENT2" "$E2E_IF_CL2"
	e2e_tetherd_start --hold-ms "$HOLD_MS" "${BUDGET[@]}"
	# Heartbeats with room: the flood can starve an agent of the CPU (two
	# here) for most of a second, and a VM that misses its deadline leaves
	# the pool, as it should; liveness is test_tetherd's, not this test's.
	e2e_agent_start vm1 --function "$F_LEGIT:2" --heartbeat-ms "$AGENT_HEARTBEAT_MS"
	e2e_agent_start vm3 --function "$F_COLD:0" --capacity --cold-start-ms "$COLD_START_MS" \
		--heartbeat-ms "$AGENT_HEARTBEAT_MS"
	e2e_agent_wait_warm vm1 2
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
