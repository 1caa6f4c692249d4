#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Integration tests of the controller: tetherd and tetherctl driving real
# traffic from a client namespace through the router's XDP to echo backends in
# two VM namespaces (tests/e2e/lib.sh builds the rig). Run as root:
#
#   tests/e2e/test_controller.sh [TEST...]     (TEST: a name below, e.g. restart)
#
# TAP output ("ok N - name"), then "N passed, M failed" alone on a line; the
# exit status is nonzero when a test failed. Each test runs in a subshell and
# stops at its first failed assertion; tests use their own function ids, so
# one failure does not cascade into the next test.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# tetherd --hold-ms: how long the slow path holds a request; the held request
# of slow_path waits for a `container add` through it (which took over 300 ms
# in CI's sanitized stage on a busy machine).
HOLD_MS=1500
HOUR=1h       # backends' heartbeat period: they stay up for the whole run

# --- assertions ----------------------------------------------------------------

# Prints the figures of a udp_load summary line under a label.
figures() {
	local label=$1 line=$2 key out=""
	for key in sent answered lost ok no_capacity container_gone containers sticky_sessions; do
		[[ -n $(e2e_field "$line" "$key") ]] && out+=" $key=$(e2e_field "$line" "$key")"
	done
	echo "#   $label:$out"
}

# Checks a summary line: every request answered, and with status OK.
expect_all_ok() {
	local what=$1 line=$2 sent
	sent=$(e2e_field "$line" sent)
	expect_ge "$what: sent" "$sent" 1
	expect_eq "$what: lost" "$(e2e_field "$line" lost)" 0
	expect_eq "$what: ok" "$(e2e_field "$line" ok)" "$sent"
	expect_eq "$what: invalid answers" "$(e2e_field "$line" invalid)" 0
}

# --- the rig's state through tetherctl ---------------------------------------------

# The handles of the containers of a function, one per line.
slots_of() {
	e2e_ctl --json container list --function "$1" | jq -r '.[].container'
}

# Adds a warm container; prints its handle.
add_warm() {
	local function=$1 backend=$2
	e2e_ctl --json container add --function "$function" --backend "$backend" --warm |
		jq -er '.container'
}

# The slot that served the most requests in udp_load --per-container output.
busiest_slot() {
	grep '^container=' <<<"$1" | sort -t= -k3 -n -r | head -n1 | sed 's/^container=\([0-9]*\) .*/\1/'
}

# Requests served by slot in udp_load --per-container output (0 when none).
served_by_slot() {
	local output=$1 slot=$2 line
	line=$(grep "^container=$slot " <<<"$output" || true)
	if [[ -n $line ]]; then e2e_field "$line" count; else echo 0; fi
}

# Every container line names a slot of the function, served by the backend
# that `container list` gives for that slot.
expect_served_by_function() {
	local what=$1 output=$2 function=$3 list line slot by backend
	list=$(e2e_ctl --json container list --function "$function")
	while read -r line; do
		[[ -n $line ]] || continue
		slot=$(e2e_field "$line" container)
		by=$(e2e_field "$line" served_by)
		backend=$(jq -r --argjson s "$slot" '.[] | select(.container == $s) | .backend' <<<"$list")
		[[ -n $backend ]] || fail "$what: slot $slot served requests but is no container of function $function"
		expect_eq "$what: backend that served slot $slot" "$by" "$backend"
	done < <(grep '^container=' <<<"$output")
}

# What a restart or upgrade must keep: containers whole, backends but for the
# time left to their heartbeat deadline (it moves with the clock).
controller_state() {
	e2e_ctl --json container list
	e2e_ctl --json backend list | sed 's/"expires_in_ms":[0-9]*,//g'
}

# --- the tests -------------------------------------------------------------------

# a. Routing follows the lifecycle: sticky keys on warm containers of the
# function only; a draining container takes no new key but keeps its own; a
# deleted one takes nothing.
test_lifecycle() {
	local h1 h2 decoy out drained other
	h1=$(add_warm 1 vm1)
	h2=$(add_warm 1 vm2)
	decoy=$(add_warm 5 vm1) # another function's container: never serves function 1
	echo "#   function 1: containers $h1 (vm1), $h2 (vm2); function 5: $decoy"

	out=$(e2e_load --function 1 --count 200 --sessions 20 --key 1000 --rate 2000 --per-container)
	figures "200 keyed requests, 20 sessions" "$out"
	expect_all_ok "keyed" "$out"
	expect_eq "sticky sessions" "$(e2e_field "$out" sticky_sessions)" 20
	expect_served_by_function "keyed" "$out" 1
	expect_eq "requests served by function 5's container" "$(served_by_slot "$out" "$decoy")" 0

	out=$(e2e_load --vip "[$E2E_VIP6]:$E2E_PORT" --function 1 --count 40 --sessions 8 \
		--key 1000 --per-container)
	figures "IPv6, 40 requests, 8 sessions" "$out"
	expect_all_ok "IPv6" "$out"
	expect_eq "IPv6 sticky sessions" "$(e2e_field "$out" sticky_sessions)" 8
	expect_served_by_function "IPv6" "$out" 1

	out=$(e2e_load --function 1 --count 200 --sessions 20 --key 1000 --rate 2000 --per-container)
	drained=$(busiest_slot "$out")
	if [[ $drained == "$h1" ]]; then other=$h2; else other=$h1; fi
	e2e_ctl container drain "$drained" >/dev/null
	echo "#   drained container $drained ($(served_by_slot "$out" "$drained") of 200 requests before)"

	out=$(e2e_load --function 1 --count 200 --sessions 20 --key 5000 --rate 2000 --per-container)
	figures "new keys after drain" "$out"
	expect_all_ok "new keys after drain" "$out"
	expect_eq "new keys served by the draining container" "$(served_by_slot "$out" "$drained")" 0
	expect_eq "new keys served by the other container" "$(served_by_slot "$out" "$other")" 200

	out=$(e2e_load --function 1 --count 200 --sessions 20 --key 1000 --rate 2000 --per-container)
	figures "old keys after drain" "$out"
	expect_all_ok "old keys after drain" "$out"
	expect_eq "old keys still sticky" "$(e2e_field "$out" sticky_sessions)" 20
	expect_ge "old keys still served by the draining container" \
		"$(served_by_slot "$out" "$drained")" 1

	e2e_ctl container del "$drained" >/dev/null
	out=$(e2e_load --function 1 --count 400 --sessions 40 --key 1000 --rate 2000 --per-container)
	figures "old and new keys after del" "$out"
	expect_all_ok "after del" "$out"
	expect_eq "requests served by the deleted container" "$(served_by_slot "$out" "$drained")" 0
	expect_eq "requests served by the remaining container" "$(served_by_slot "$out" "$other")" 400
	expect_eq "containers of function 1 left" "$(slots_of 1 | tr '\n' ' ')" "$other "
}

# a'. Tokens: a client that presents the token of its last reply stays on that
# container whatever keys it uses (a winning token moves the key's affinity).
test_token_follow() {
	local out hits_before hits_after
	add_warm 2 vm1 >/dev/null
	add_warm 2 vm2 >/dev/null
	hits_before=$(e2e_ctl --json stats | jq '.[] | select(.part == "dataplane") | .token_hit')
	# A session's next request waits for the answer to its last (closed
	# loop): one sent before its first answer has no token yet and goes by
	# its own key. Open loop, 100 ms apart, a sanitized run's first answer
	# came later than that (4 December: 9 of 10 sessions on one container).
	out=$(e2e_load --function 2 --count 160 --sessions 10 --keys-per-session 4 --key 3000 \
		--rate 100 --token-follow --closed-loop --per-container)
	hits_after=$(e2e_ctl --json stats | jq '.[] | select(.part == "dataplane") | .token_hit')
	figures "160 requests, 10 sessions of 4 keys, following tokens" "$out"
	echo "#   token_hit: $hits_before -> $hits_after"
	expect_all_ok "token-follow" "$out"
	expect_eq "sessions on one container" "$(e2e_field "$out" sticky_sessions)" 10
	expect_served_by_function "token-follow" "$out" 2
	expect_ge "token hits" "$((hits_after - hits_before))" 150
}

# b. drain --wait under a steady load: returns 0 once the container is gone,
# and no request is lost meanwhile.
test_drain_wait() {
	local h1 h2 load=$E2E_LOG_DIR/drain_wait.load out start elapsed_ms status=0
	h1=$(add_warm 10 vm1)
	h2=$(add_warm 10 vm2)
	e2e_load_bg "$load" --function 10 --count 900 --rate 200 --sessions 30 --key 7000 \
		--timeout-ms 1000 --per-container
	sleep 1
	start=$(date +%s%N)
	e2e_ctl drain container "$h1" --deadline 2s --wait >"$E2E_LOG_DIR/drain_wait.out" 2>&1 ||
		status=$?
	elapsed_ms=$((($(date +%s%N) - start) / 1000000))
	echo "#   tetherctl drain container $h1 --deadline 2s --wait: exit status $status after ${elapsed_ms} ms"
	sed 's/^/#     /' "$E2E_LOG_DIR/drain_wait.out"
	e2e_load_wait "$load" >/dev/null
	out=$(cat "$load")
	figures "200/s during the drain" "$out"
	expect_all_ok "load during drain" "$out"
	expect_ge "requests served by $h1 (before its deadline)" "$(served_by_slot "$out" "$h1")" 1
	expect_ge "requests served by $h2" "$(served_by_slot "$out" "$h2")" 1
	expect_eq "containers of function 10 after the drain" "$(slots_of 10 | tr '\n' ' ')" "$h2 "
	expect_ge "drain --wait waited for the deadline (ms)" "$elapsed_ms" 1500
	expect_eq "exit status of drain --wait" "$status" 0
}

# c. The slow path: NO_CAPACITY after the hold time, CONTAINER_GONE for a
# STRICT token of a deleted container, and a held request forwarded to the
# first container that turns warm.
test_slow_path() {
	local out h token held load=$E2E_LOG_DIR/hold.load i
	local lo
	lo=$(ip -n "$E2E_NS_ROUTER" addr show dev lo)
	grep -q "inet $E2E_VIP4/32 " <<<"$lo" || fail "tetherd did not make $E2E_VIP4 local on the router's lo"
	grep -q "inet6 $E2E_VIP6/128 " <<<"$lo" || fail "tetherd did not make $E2E_VIP6 local on the router's lo"

	out=$(e2e_load --function 20 --count 3 --timeout-ms $((HOLD_MS + 2000)))
	figures "function 20 without containers" "$out"
	expect_eq "no capacity: answered" "$(e2e_field "$out" answered)" 3
	expect_eq "no capacity: NO_CAPACITY" "$(e2e_field "$out" no_capacity)" 3
	out=$(e2e_load --vip "[$E2E_VIP6]:$E2E_PORT" --function 20 --count 1 \
		--timeout-ms $((HOLD_MS + 2000)))
	figures "function 20 without containers, IPv6" "$out"
	expect_eq "no capacity, IPv6: NO_CAPACITY" "$(e2e_field "$out" no_capacity)" 1

	h=$(add_warm 21 vm2)
	token=$(e2e_ctl --json container list --function 21 | jq -r '.[0].token')
	e2e_ctl container del "$h" >/dev/null
	out=$(e2e_load --function 21 --count 2 --token "$token" --strict --timeout-ms 2000)
	figures "STRICT token of deleted container $h" "$out"
	expect_eq "strict: answered" "$(e2e_field "$out" answered)" 2
	expect_eq "strict: CONTAINER_GONE" "$(e2e_field "$out" container_gone)" 2

	held=$(e2e_ctl --json stats | jq '.[] | select(.part == "slowpath") | .held')
	e2e_load_bg "$load" --function 22 --count 1 --timeout-ms $((HOLD_MS + 3000)) --per-container
	for ((i = 0; i < 50; i++)); do
		(($(e2e_ctl --json stats | jq '.[] | select(.part == "slowpath") | .held') > held)) &&
			break
		sleep 0.005
	done
	h=$(add_warm 22 vm1)
	echo "#   request for function 22 held; container $h added on vm1"
	e2e_load_wait "$load" >/dev/null
	out=$(cat "$load")
	figures "held request" "$out"
	expect_all_ok "held request" "$out"
	expect_eq "held request served by" "$(grep '^container=' <<<"$out" | head -n1)" \
		"container=$h count=1 served_by=vm1"
}

# Runs 4 s of load on a function (500/s) and, 1 s in, the given step; the
# load's output goes to $E2E_LOG_DIR/STEP.load.
load_across() {
	local function=$1 step=$2 load=$E2E_LOG_DIR/$2.load
	e2e_load_bg "$load" --function "$function" --count 2000 --rate 500 --sessions 50 --key 9000 \
		--timeout-ms 1000 --per-container
	sleep 1
	"$step"
	e2e_load_wait "$load" >/dev/null
}

restart_kill9() {
	local pid
	pid=$(e2e_tetherd_pid)
	e2e_tetherd_stop KILL
	echo "#   killed tetherd $pid with SIGKILL"
	sleep 0.5
	e2e_tetherd_start
	echo "#   started tetherd $(e2e_tetherd_pid) on the same pin root"
}

# d. Restart under traffic: kill -9 and start again on the same pin root.
test_restart() {
	local before after out
	add_warm 30 vm1 >/dev/null
	add_warm 30 vm2 >/dev/null
	before=$(controller_state)
	load_across 30 restart_kill9
	out=$(cat "$E2E_LOG_DIR/restart_kill9.load")
	figures "500/s across kill -9 and restart" "$out"
	expect_all_ok "restart" "$out"
	expect_eq "containers served" "$(e2e_field "$out" containers)" 2
	after=$(controller_state)
	[[ $after == "$before" ]] || fail "the state differs after the restart:
$(diff <(echo "$before") <(echo "$after") | sed 's/^/#     /')"
	grep -q "adopted the maps pinned at $E2E_PIN_ROOT" "$E2E_TETHERD_LOG" ||
		fail "tetherd did not say it adopted the pinned maps"
}

upgrade_term() {
	local pid
	pid=$(e2e_tetherd_pid)
	e2e_tetherd_stop TERM
	echo "#   stopped tetherd $pid with SIGTERM"
	e2e_tetherd_start
	echo "#   started tetherd $(e2e_tetherd_pid): $(grep -o 'XDP replaced.*' "$E2E_TETHERD_LOG" | tail -n1)"
}

# The pinned link of the client-facing interface, as bpftool shows it (JSON).
pinned_link() {
	e2e_in_router bpftool -j link show pinned "$E2E_PIN_ROOT/link_$E2E_IF_RC"
}

# e. Upgrade under traffic: a new tetherd replaces the program in the pinned
# link while the old one is stopped by SIGTERM.
test_upgrade() {
	local link_before prog_before link_after prog_after before after out links
	add_warm 31 vm1 >/dev/null
	add_warm 31 vm2 >/dev/null
	link_before=$(pinned_link | jq -r '.id')
	prog_before=$(pinned_link | jq -r '.prog_id')
	before=$(controller_state)
	load_across 31 upgrade_term
	out=$(cat "$E2E_LOG_DIR/upgrade_term.load")
	figures "500/s across SIGTERM and upgrade" "$out"
	expect_all_ok "upgrade" "$out"
	link_after=$(pinned_link | jq -r '.id')
	prog_after=$(pinned_link | jq -r '.prog_id')
	echo "#   link $link_before: program $prog_before -> link $link_after: program $prog_after"
	expect_eq "the pinned link (updated in place)" "$link_after" "$link_before"
	[[ $prog_after != "$prog_before" ]] || fail "the program id did not change ($prog_after)"
	expect_eq "program on $E2E_IF_RC (ip link)" "$(e2e_xdp_prog_id "$E2E_IF_RC")" "$prog_after"
	# bpftool 7.1 does not print an XDP link's interface: the interface's
	# programs come from "bpftool net" (this namespace), the links from
	# "bpftool link" (every namespace), tied together by program id.
	expect_eq "XDP programs on $E2E_IF_RC (bpftool net)" \
		"$(e2e_in_router bpftool -j net show dev "$E2E_IF_RC" | jq -r '[.[0].xdp[].id] | join(" ")')" \
		"$prog_after"
	links=$(e2e_in_router bpftool -j link show)
	expect_eq "XDP links running the new program" \
		"$(jq -r --argjson p "$prog_after" '[.[] | select(.type == "xdp" and .prog_id == $p) | .id] | join(" ")' <<<"$links")" \
		"$link_after"
	expect_eq "XDP links running the old program" \
		"$(jq --argjson p "$prog_before" '[.[] | select(.type == "xdp" and .prog_id == $p)] | length' <<<"$links")" 0
	expect_eq "link pins under the pin root" "$(find "$E2E_PIN_ROOT" -name 'link_*' | wc -l)" 1
	after=$(controller_state)
	[[ $after == "$before" ]] || fail "the state differs after the upgrade:
$(diff <(echo "$before") <(echo "$after") | sed 's/^/#     /')"
}

# The rig's own backend: a request that did not come through the router (sent
# from inside the VM, so unstamped) is refused with CONTAINER_GONE.
test_unstamped() {
	local out
	out=$(e2e_in "$E2E_NS_VM1" "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" --function 1 --count 5 \
		--timeout-ms 1000)
	figures "unstamped, from inside vm1" "$out"
	expect_eq "unstamped: answered" "$(e2e_field "$out" answered)" 5
	expect_eq "unstamped: CONTAINER_GONE" "$(e2e_field "$out" container_gone)" 5
}

# f. Bad requests, straight on the socket: each gets the right error, and
# nothing changes.
test_bad_input() {
	local h before after answer code request long vm1_mac item
	h=$(add_warm 40 vm1)
	e2e_ctl container add --function 40 --backend vm2 --name twin --warm >/dev/null
	vm1_mac=$(e2e_mac "$E2E_NS_VM1" "$E2E_IF_V1")
	long="list backend padding=$(printf 'x%.0s' {1..1100})"
	local -a cases=(
		"unknown_verb|frobnicate backend"
		"unknown_verb|list gizmo"
		"missing_argument|add backend name=vm3 addr=203.0.113.3 mac=02:00:00:00:00:03"
		"missing_argument|add container backend=vm1 state=warm"
		"bad_argument|add backend name=vm3 addr=203.0.113.3 mac=02:00:00:zz:00:03 iface=$E2E_IF_R1"
		"bad_argument|add backend name=vm3 addr=203.0.113.300 mac=02:00:00:00:00:03 iface=$E2E_IF_R1"
		"bad_argument|add container function=0 backend=vm1"
		"bad_argument|list container colour=blue"
		"not_found|add container function=40 backend=vm9 state=warm"
		"not_found|del container container=99999"
		"exists|add backend name=vm1 addr=203.0.113.2 mac=$vm1_mac iface=$E2E_IF_R1"
		"exists|add container function=40 backend=vm2 name=twin state=warm"
		"invalid_transition|up container container=$h"
		"bad_request|$long"
		"bad_request|add backend name"
	)
	before=$(e2e_ctl --json backend list; e2e_ctl --json container list)
	for item in "${cases[@]}"; do
		code=${item%%|*}
		request=${item#*|}
		answer=$(e2e_raw "$request" | head -n1)
		echo "#   ${request:0:70}$( ((${#request} > 70)) && echo "...(${#request} bytes)") -> $answer"
		[[ $answer == "error $code: "?* ]] ||
			fail "'${request:0:70}': expected 'error $code: ...', got '$answer'"
	done
	if e2e_ctl container up "$h" >/dev/null 2>&1; then
		fail "tetherctl container up on a warm container exited 0"
	fi
	if e2e_ctl backend add vm3 --addr 203.0.113.3 --mac nonsense --iface "$E2E_IF_R1" \
		>/dev/null 2>&1; then
		fail "tetherctl backend add with a bad MAC exited 0"
	fi
	# --json prints both lists in full; only the heartbeat countdown may move.
	after=$(e2e_ctl --json backend list; e2e_ctl --json container list)
	expect_eq "backend and container lists (but expires_in_ms)" \
		"$(sed 's/"expires_in_ms":[0-9]*,//g' <<<"$after")" \
		"$(sed 's/"expires_in_ms":[0-9]*,//g' <<<"$before")"
}

# g. unload: tetherd detaches, removes its pins and exits.
test_unload() {
	local pid answer
	pid=$(e2e_tetherd_pid)
	answer=$(e2e_ctl unload 2>&1) || fail "tetherctl unload failed: $answer"
	e2e_wait_gone "$pid" 50 || fail "tetherd ($pid) still runs 5 s after unload"
	rm -f "$E2E_RUN_DIR/tetherd.pid"
	expect_eq "XDP program on $E2E_IF_RC" "$(e2e_xdp_prog_id "$E2E_IF_RC")" ""
	ip -n "$E2E_NS_ROUTER" link show dev "$E2E_IF_RC" | grep -q 'xdp' &&
		fail "ip link still shows XDP on $E2E_IF_RC"
	[[ ! -e $E2E_PIN_ROOT ]] || fail "the pin root $E2E_PIN_ROOT still exists: $(ls "$E2E_PIN_ROOT")"
	echo "#   tetherd $pid exited; no XDP on $E2E_IF_RC; $E2E_PIN_ROOT removed"
}

# --- runner ------------------------------------------------------------------------

TESTS=(lifecycle token_follow drain_wait slow_path restart upgrade bad_input unstamped unload)

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	e2e_init
	e2e_topology
	e2e_tetherd_start --hold-ms "$HOLD_MS"
	e2e_backend_start vm1
	e2e_backend_start vm2
	e2e_backend_add vm1 --heartbeat-ms "$HOUR" >/dev/null
	e2e_backend_add vm2 --heartbeat-ms "$HOUR" >/dev/null
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
