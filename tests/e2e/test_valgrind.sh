#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tetherd, the VM agent, tetherctl, tether-invoke and udp_load under valgrind's
# memcheck, through a short run of everything they do (tests/e2e/lib.sh builds
# the rig; vm1 runs the agent, vm2 the echo backend):
#
#   start     tetherd starts (with /metrics); the agent registers vm1 with two
#             warm containers
#             of function 1; vm2 and two containers of function 2 are added
#             with tetherctl
#   requests  udp_load and tether-invoke, IPv4 and IPv6, keys and tokens: every
#             request answered OK by the right function's containers
#   slow_path a request for function 3, held by tetherd until a container of
#             function 3 is added, then forwarded (and one answered NO_CAPACITY)
#   drain     tetherctl drain container --wait, container del
#   restart   tetherd stopped (SIGTERM) and started again: it adopts the pinned
#             maps, and requests are answered as before
#   stop      the agent drains and leaves (SIGTERM), tetherd stops (SIGTERM)
#
# Every program of the build here runs under valgrind (the echo backend
# aside): a test fails when valgrind reports an error (invalid read or write,
# use of an uninitialised value, bad free, a definite or indirect leak) in any
# of them, or when a daemon does not come to a clean exit. valgrind's logs are
# in the rig's log directory (valgrind/), kept when a test failed.
# Suppressions, each with its reason: tests/sanitize/valgrind.supp.
#
#   tests/e2e/test_valgrind.sh [TEST...]
#
# TAP output, then "N passed, M failed" alone on the last line. Run as root.
# The tests build on each other: run them in order.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

E2E_INVOKE=$E2E_BUILD/tether-invoke
VG_STATUS=86        # valgrind's exit status when it found errors
# valgrind runs programs 20-50 times slower: the agent's heartbeat deadline,
# tetherd's hold time and every wait here have room for that.
HEARTBEAT_MS=15000
HOLD_MS=3000
READY_S=60          # for a daemon to start or stop

# --- assertions ----------------------------------------------------------------

expect_all_ok() {
	local what=$1 line=$2 sent
	sent=$(e2e_field "$line" sent)
	[[ $sent =~ ^[0-9]+$ ]] && ((sent > 0)) || fail "$what: nothing sent ('$line')"
	expect_eq "$what: lost" "$(e2e_field "$line" lost)" 0
	expect_eq "$what: ok" "$(e2e_field "$line" ok)" "$sent"
}

# --- programs under valgrind ------------------------------------------------------

# valgrind's options: a log per process named after its role (VG_NAME) and pid.
vg_options() {
	VG=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
		--errors-for-leak-kinds=definite,indirect --error-exitcode="$VG_STATUS"
		--suppressions="$E2E_REPO/tests/sanitize/valgrind.supp"
		--log-file="$VG_DIR/%q{VG_NAME}.%p.log")
}

# Runs a program of the build in the foreground under valgrind:
#   vg NAME [--ns NS] PROGRAM ARGS...
# (NAME names its log; --ns: in that namespace). Fails the test when valgrind
# found errors; otherwise returns the program's exit status.
vg() {
	local name=$1 status=0 prefix=()
	shift
	if [[ $1 == --ns ]]; then
		prefix=(ip netns exec "$2")
		shift 2
	fi
	"${prefix[@]}" env VG_NAME="$name" "${VG[@]}" "$@" || status=$?
	if ((status == VG_STATUS)); then
		vg_show "$name"
		fail "valgrind found errors in $name (above; logs in $VG_DIR)"
	fi
	return "$status"
}

vg_ctl() {
	vg tetherctl "$E2E_TETHERCTL" --socket "$E2E_SOCKET" "$@"
}

vg_load() {
	vg udp_load --ns "$E2E_NS_CLIENT" "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" "$@"
}

# Prints the valgrind logs of NAME that report errors.
vg_show() {
	local log
	for log in "$VG_DIR/$1".*.log; do
		[[ -e $log ]] || continue
		grep -q 'ERROR SUMMARY: 0 errors' "$log" && continue
		sed 's/^/#     /' "$log"
	done
}

# Checks the log of daemon NAME (pid PID) after it exited: fails unless
# valgrind ran it to the end and found nothing.
vg_check_exit() {
	local name=$1 pid=$2 log=$VG_DIR/$1.$2.log
	[[ -f $log ]] || fail "no valgrind log of $name ($pid): $log"
	if ! grep -q 'ERROR SUMMARY: ' "$log"; then
		sed 's/^/#     /' "$log"
		fail "$name ($pid) did not exit cleanly under valgrind (its log above)"
	fi
	if ! grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
		sed 's/^/#     /' "$log"
		fail "valgrind found errors in $name ($pid) (its log above)"
	fi
}

# Starts tetherd under valgrind in the router's namespace (options as
# e2e_tetherd_start) and waits until its socket answers.
vg_tetherd_start() {
	local pid answer i
	echo "=== tetherd (valgrind) $(date +%T.%N)" >>"$E2E_TETHERD_LOG"
	VG_NAME=tetherd nsenter --net="/var/run/netns/$E2E_NS_ROUTER" "${VG[@]}" "$E2E_TETHERD" \
		--iface "$E2E_IF_RC" --vip "$E2E_VIP4:$E2E_PORT" --vip "[$E2E_VIP6]:$E2E_PORT" \
		--pin-root "$E2E_PIN_ROOT" --socket "$E2E_SOCKET" --hold-ms "$HOLD_MS" \
		--metrics-listen "127.0.0.1:$METRICS_PORT" >>"$E2E_TETHERD_LOG" 2>&1 &
	pid=$!
	disown "$pid"
	e2e_track_any "$pid" # valgrind, not a program of the build: cleanup needs its start time
	echo "$pid" >"$E2E_RUN_DIR/tetherd.pid"
	for ((i = 0; i < READY_S * 10; i++)); do
		e2e_alive "$pid" || break
		answer=""
		[[ ! -S $E2E_SOCKET ]] || answer=$(printf 'list backend\n' |
			socat -t1 - "UNIX-CONNECT:$E2E_SOCKET" 2>/dev/null || true)
		[[ ${answer%%$'\n'*} == ok ]] && return 0
		sleep 0.1
	done
	sed 's/^/#     /' "$E2E_TETHERD_LOG"
	vg_show tetherd
	fail "tetherd under valgrind did not answer on $E2E_SOCKET within $READY_S s (log above)"
}

# Stops daemon NAME (pid in $E2E_RUN_DIR/NAME.pid) with SIGTERM, waits, checks
# its valgrind log.
vg_stop() {
	local name=$1 pid
	pid=$(cat "$E2E_RUN_DIR/$name.pid")
	kill -TERM "$pid"
	e2e_wait_gone "$pid" $((READY_S * 10)) || fail "$name ($pid) still runs $READY_S s after SIGTERM"
	rm -f "$E2E_RUN_DIR/$name.pid"
	vg_check_exit "${name%%_*}" "$pid"
}

# The agent of vm1 under valgrind (function 1, two containers).
vg_agent_start() {
	local pid mac
	e2e_vm_vars vm1
	mac=$(e2e_mac "$E2E_VM_NS" "$E2E_VM_IFV")
	VG_NAME=agent ip netns exec "$E2E_VM_NS" "${VG[@]}" "$E2E_AGENT" --name vm1 \
		--addr "$E2E_VM_ADDR" --mac "$mac" --router-iface "$E2E_VM_IFR" \
		--vip "$E2E_VIP4:$E2E_PORT" --vip "[$E2E_VIP6]:$E2E_PORT" \
		--tetherd "unix:$E2E_SOCKET" --function 1:2 --handler served-by \
		--heartbeat-ms "$HEARTBEAT_MS" --drain-ms 2000 \
		>>"$E2E_LOG_DIR/agent_vm1.log" 2>&1 &
	pid=$!
	disown "$pid"
	e2e_track_any "$pid"
	echo "$pid" >"$E2E_RUN_DIR/agent_vm1.pid"
}

# Waits until function F has COUNT warm containers.
wait_warm() {
	local function=$1 count=$2 warm=0 i
	for ((i = 0; i < READY_S * 10; i++)); do
		warm=$(e2e_ctl --json container list --function "$function" 2>/dev/null |
			jq '[.[] | select(.state == "warm")] | length' 2>/dev/null) || warm=0
		((${warm:-0} >= count)) && return 0
		e2e_alive "$(cat "$E2E_RUN_DIR/agent_vm1.pid")" || break
		sleep 0.1
	done
	sed 's/^/#     /' "$E2E_LOG_DIR/agent_vm1.log"
	fail "function $function: $warm of $count containers warm (agent's log above)"
}

# --- the tests -------------------------------------------------------------------

test_start() {
	local vm2_mac
	vg_tetherd_start
	vg_agent_start
	e2e_backend_start vm2
	vm2_mac=$(e2e_mac "$E2E_NS_VM2" "$E2E_IF_V2")
	vg_ctl backend add vm2 --addr 203.0.113.18 --mac "$vm2_mac" --iface "$E2E_IF_R2" \
		--heartbeat-ms 1h >/dev/null
	vg_ctl container add --function 2 --backend vm2 --warm >/dev/null
	vg_ctl container add --function 2 --backend vm2 --name two-b --warm >/dev/null
	wait_warm 1 2
	vg_ctl backend list | sed 's/^/#   /'
}

test_requests() {
	local out
	out=$(vg_load --function 1 --count 40 --rate 100 --sessions 8 \
		--key 100 --timeout-ms 3000 --per-container)
	echo "#   function 1 (vm1's agent), IPv4: $(head -n1 <<<"$out")"
	expect_all_ok "function 1, IPv4" "$(head -n1 <<<"$out")"
	grep '^container=' <<<"$out" | grep -qv 'served_by=vm1' &&
		fail "function 1 served by another backend than vm1: $out"
	out=$(vg_load --vip "[$E2E_VIP6]:$E2E_PORT" --function 2 --count 20 --rate 100 \
		--token-follow --timeout-ms 3000 --per-container)
	echo "#   function 2 (vm2), IPv6, following tokens: $(head -n1 <<<"$out")"
	expect_all_ok "function 2, IPv6" "$(head -n1 <<<"$out")"
	out=$(vg tether-invoke --ns "$E2E_NS_CLIENT" "$E2E_INVOKE" --vip "$E2E_VIP4:$E2E_PORT" \
		--function 1 --key 7 --count 3 --follow --timeout-ms 3000)
	echo "$out" | sed 's/^/#   tether-invoke: /'
	expect_eq "tether-invoke: requests answered OK" "$(e2e_field "$(tail -n1 <<<"$out")" ok)" 3
	# /metrics (libmicrohttpd on tetherd's loop, the sweep) under valgrind too.
	out=$(e2e_in_router curl -sS --max-time 30 "http://127.0.0.1:$METRICS_PORT/metrics")
	expect_ge "function 1's forwarded requests in /metrics" \
		"$(awk '$1 == "tether_function_forwarded_requests_total{function=\"1\"}" { print $2 }' \
			<<<"$out")" 40
}

test_slow_path() {
	local out held i load=$E2E_LOG_DIR/held.load
	out=$(vg_load --function 3 --count 1 --timeout-ms $((HOLD_MS + 5000)))
	echo "#   function 3 without containers: $out"
	expect_eq "NO_CAPACITY" "$(e2e_field "$out" no_capacity)" 1
	held=$(e2e_ctl --json stats | jq '.[] | select(.part == "slowpath") | .held')
	vg_load --function 3 --count 1 --timeout-ms $((HOLD_MS + 5000)) >"$load" 2>&1 &
	local pid=$!
	for ((i = 0; i < 100; i++)); do
		(($(e2e_ctl --json stats | jq '.[] | select(.part == "slowpath") | .held') > held)) &&
			break
		sleep 0.05
	done
	vg_ctl container add --function 3 --backend vm2 --warm >/dev/null
	wait "$pid" || true
	echo "#   held request, then a container of function 3 added: $(head -n1 "$load")"
	! grep -q FAILED "$load" || fail "$(cat "$load")"
	expect_all_ok "held request" "$(head -n1 "$load")"
}

test_drain() {
	local handles out
	mapfile -t handles < <(e2e_ctl --json container list --function 2 | jq -r '.[].container')
	expect_eq "containers of function 2" "${#handles[@]}" 2
	vg_ctl container drain "${handles[0]}" --deadline 1s --wait 2>&1 | sed 's/^/#   drain: /'
	vg_ctl container del "${handles[1]}" >/dev/null
	vg_ctl --json container list --function 2 >/dev/null
	expect_eq "containers of function 2 after drain and del" \
		"$(e2e_ctl --json container list --function 2 | jq length)" 0
	vg_ctl container add --function 2 --backend vm2 --warm >/dev/null
	out=$(vg_load --function 2 --count 10 --rate 100 --timeout-ms 3000)
	echo "#   function 2 on its new container: $out"
	expect_all_ok "function 2 after drain" "$out"
}

test_restart() {
	local before after out
	before=$(e2e_ctl --json container list)
	vg_stop tetherd
	vg_tetherd_start
	grep -q "adopted the maps pinned at $E2E_PIN_ROOT" "$E2E_TETHERD_LOG" ||
		fail "tetherd did not say it adopted the pinned maps"
	after=$(e2e_ctl --json container list)
	expect_eq "containers after the restart" "$after" "$before"
	out=$(vg_load --function 1 --count 20 --rate 100 --sessions 4 --key 100 --timeout-ms 3000)
	echo "#   function 1 after the restart: $out"
	expect_all_ok "function 1 after the restart" "$out"
	vg_ctl stats >/dev/null
}

test_stop() {
	vg_stop agent_vm1
	expect_eq "backend vm1 after its agent left" \
		"$(e2e_ctl --json backend list | jq '[.[] | select(.name == "vm1")] | length')" 0
	vg_stop tetherd
}

# Every valgrind log of the run: none with errors (processes killed on purpose
# leave no summary: the agent's container processes).
test_logs() {
	local log bad=0 count=0
	for log in "$VG_DIR"/*.log; do
		count=$((count + 1))
		grep -q 'ERROR SUMMARY: [1-9]' "$log" || continue
		sed 's/^/#     /' "$log"
		bad=$((bad + 1))
	done
	echo "#   $count valgrind logs, $bad with errors"
	((bad == 0)) || fail "valgrind found errors (logs above)"
}

# --- runner ------------------------------------------------------------------------

TESTS=(start requests slow_path drain restart stop logs)
METRICS_PORT=9417 # tetherd's /metrics, on the router namespace's loopback

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	command -v valgrind >/dev/null || e2e_die "'valgrind' is not installed (make deps)"
	[[ -x $E2E_AGENT && -x $E2E_INVOKE ]] || e2e_die "$E2E_AGENT or $E2E_INVOKE is missing: run 'make' first"
	# valgrind cannot run a program built with AddressSanitizer.
	if [[ $(nm -D "$E2E_TETHERD" 2>/dev/null) == *__asan_init* ]]; then
		e2e_die "$E2E_TETHERD is built with AddressSanitizer; valgrind needs the plain build (BUILD=build)"
	fi
	e2e_init
	VG_DIR=$E2E_LOG_DIR/valgrind
	mkdir -p "$VG_DIR"
	vg_options
	e2e_topology
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
