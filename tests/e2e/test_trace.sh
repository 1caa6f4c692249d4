#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The packet trace end to end (issue 13): tetherctl trace against a real
# tetherd whose XDP program routes tether-invoke's requests from the client's
# namespace to two echo backends. lib.sh's rig with two VMs:
#
#   requests  tetherctl trace --function F --count 3 while tether-invoke sends
#             three keyed requests: forward key_new, then key_hit twice, with
#             the key, container, backend vm1 or vm2, client address
#   slow      a function without containers: slow_path no_capacity
#   json      --json: one object per line, numbers as numbers
#   filters   two traces at once, one per key: each gets its own requests only
#   switch    the program's trace_config is on while a trace runs and off
#             once the last one has left
#   stale     a trace_config left on (as by a tetherd that died mid-trace) is
#             switched off when tetherd starts again and adopts the pins
#   bad       bad filter values and unknown keys: a clear error, exit status
#             nonzero, nothing switched on
#
#   tests/e2e/test_trace.sh [TEST...]
#
# TAP output, then "N passed, M failed" alone on the last line; the exit
# status is nonzero when a test failed.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

E2E_INVOKE=$E2E_BUILD/tether-invoke
F=41      # two warm containers, on vm1 and vm2
F_NONE=42 # none
HOUR=3600000

invoke() {
	e2e_in "$E2E_NS_CLIENT" "$E2E_INVOKE" --vip "$E2E_VIP4:$E2E_PORT" "$@"
}

# The program's trace_config: "enabled filters" from the pinned map.
trace_config() {
	bpftool -j map lookup pinned "$E2E_PIN_ROOT/trace_config" key 0 0 0 0 |
		jq -r '.formatted.value | "\(.enabled) \(.filters)"'
}

# Waits until trace_config's enabled is $1 (up to 5 s).
wait_enabled() {
	local want=$1 i
	for ((i = 0; i < 100; i++)); do
		[[ $(trace_config) == "$want "* ]] && return 0
		sleep 0.05
	done
	fail "trace_config enabled is '$(trace_config)', want $want"
}

# tetherctl trace ARGS... in the background, into FILE; sets TRACE_PID.
trace_bg() {
	local file=$1
	shift
	"$E2E_TETHERCTL" --socket "$E2E_SOCKET" trace "$@" >"$file" 2>"$file.err" &
	TRACE_PID=$!
	e2e_track "$TRACE_PID"
}

# Waits (up to 10 s) for the tetherctl trace started last to exit; its status.
trace_wait() {
	local i
	for ((i = 0; i < 200; i++)); do
		e2e_alive "$TRACE_PID" || break
		sleep 0.05
	done
	if e2e_alive "$TRACE_PID"; then
		kill -TERM "$TRACE_PID" 2>/dev/null || true
		fail "tetherctl trace did not stop after its --count"
		return 1
	fi
	wait "$TRACE_PID"
}

show() {
	sed 's/^/#     /' <<<"$1"
}

test_requests() {
	local out=$E2E_LOG_DIR/requests.out lines
	trace_bg "$out" --function "$F" --count 3
	wait_enabled 1
	invoke --function "$F" --key 4242 --count 3 >/dev/null
	trace_wait || fail "tetherctl trace failed: $(cat "$out.err")"
	lines=$(cat "$out")
	show "$lines"
	expect_eq "records" "$(wc -l <"$out")" 3
	expect_contains "first" "$(sed -n 1p "$out")" " forward key_new "
	expect_contains "second" "$(sed -n 2p "$out")" " forward key_hit "
	expect_contains "third" "$(sed -n 3p "$out")" " forward key_hit "
	local first
	first=$(sed -n 1p "$out")
	expect_contains "function" "$first" " function=$F "
	expect_contains "key" "$first" " key=4242 "
	expect_contains "flags" "$first" " flags=key "
	expect_contains "client" "$first" " client=192.0.2.10:"
	expect_contains "action" "$first" " action=redirect"
	[[ $first =~ \ container=[0-9]+\ generation=[0-9]+\ backend=vm[12]\ backend_id=[0-9]+ ]] ||
		fail "no container, generation and backend in: $first"
	[[ $first =~ ^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\  ]] || fail "no time first in: $first"
	# The same container each time: the key's affinity.
	expect_eq "one container" "$(grep -o ' container=[0-9]*' "$out" | sort -u | wc -l)" 1
}

test_slow() {
	local out=$E2E_LOG_DIR/slow.out
	trace_bg "$out" --function "$F_NONE" --count 1
	wait_enabled 1
	invoke --function "$F_NONE" --timeout-ms 300 >/dev/null || true
	trace_wait || fail "tetherctl trace failed: $(cat "$out.err")"
	show "$(cat "$out")"
	expect_contains "slow path" "$(cat "$out")" " slow_path no_capacity status=no_capacity "
	expect_contains "action" "$(cat "$out")" " action=pass"
}

test_json() {
	local out=$E2E_LOG_DIR/json.out
	trace_bg "$out" --key 777 --count 1 --json
	wait_enabled 1
	invoke --function "$F" --key 777 >/dev/null
	trace_wait || fail "tetherctl trace failed: $(cat "$out.err")"
	show "$(cat "$out")"
	expect_eq "trace" "$(jq -r .trace "$out")" forward
	expect_eq "reason" "$(jq -r .reason "$out")" key_new
	expect_eq "key" "$(jq -r '.key | numbers' "$out")" 777
	expect_eq "function" "$(jq -r '.function | numbers' "$out")" "$F"
	jq -e '.container | numbers' "$out" >/dev/null || fail "no numeric container"
}

test_filters() {
	local a=$E2E_LOG_DIR/filter_a.out b=$E2E_LOG_DIR/filter_b.out pid_a
	trace_bg "$a" --key 501 --count 2
	pid_a=$TRACE_PID
	wait_enabled 1
	trace_bg "$b" --key 502 --count 2
	# Both connected: the program traces everything, tetherd sorts.
	local i
	for ((i = 0; i < 100; i++)); do
		[[ $(trace_config) == "1 0" ]] && break
		sleep 0.05
	done
	expect_eq "trace_config with two filters" "$(trace_config)" "1 0"
	invoke --function "$F" --key 501 --count 2 >/dev/null
	invoke --function "$F" --key 502 --count 2 >/dev/null
	trace_wait || fail "trace b failed: $(cat "$b.err")"
	TRACE_PID=$pid_a
	trace_wait || fail "trace a failed: $(cat "$a.err")"
	expect_eq "key 501's" "$(grep -c ' key=501 ' "$a")" 2
	expect_eq "key 502's" "$(grep -c ' key=502 ' "$b")" 2
	expect_eq "no 502 in a" "$(grep -c ' key=502 ' "$a" || true)" 0
}

test_switch() {
	local out=$E2E_LOG_DIR/switch.out
	expect_eq "off before" "$(trace_config)" "0 0"
	trace_bg "$out" --function "$F" --key 9
	wait_enabled 1
	expect_eq "filters of one trace" "$(trace_config)" "1 3"
	kill -TERM "$TRACE_PID"
	wait "$TRACE_PID" 2>/dev/null || true
	wait_enabled 0
}

test_stale() {
	bpftool map update pinned "$E2E_PIN_ROOT/trace_config" key 0 0 0 0 \
		value 1 0 0 0 $(printf '0 %.0s' {1..28})
	expect_eq "left on" "$(trace_config)" "1 0"
	e2e_tetherd_stop KILL
	e2e_tetherd_start
	expect_eq "after the restart" "$(trace_config)" "0 0"
	grep -q "packet trace left on by an earlier tetherd is switched off" "$E2E_TETHERD_LOG" ||
		fail "tetherd did not say it switched the stale trace off"
}

# A bad value: exit status $1 and a message containing $2; nothing switched on.
expect_refused() {
	local status=$1 part=$2 got out
	shift 2
	set +e
	out=$("$E2E_TETHERCTL" --socket "$E2E_SOCKET" trace "$@" 2>&1)
	got=$?
	set -e
	echo "#   tetherctl trace $*: $out"
	expect_eq "exit status of trace $*" "$got" "$status"
	expect_contains "message of trace $*" "$out" "$part"
	expect_eq "off after trace $*" "$(trace_config)" "0 0"
}

test_bad() {
	expect_refused 2 "--function" --function 0
	expect_refused 2 "--function" --function banana
	expect_refused 2 "--key" --key -1
	expect_refused 2 "--count 0" --count 0
	expect_refused 2 "--container" --container x
	expect_refused 1 "container=" --container 2000000
	local out
	out=$(e2e_raw "watch trace colour=red")
	echo "#   watch trace colour=red: $out"
	expect_contains "unknown key" "$out" "error bad_argument"
	out=$(e2e_raw "watch trace function=0x")
	echo "#   watch trace function=0x: $out"
	expect_contains "bad function" "$out" "error bad_argument"
	expect_eq "off" "$(trace_config)" "0 0"
}

TESTS=(requests slow json filters switch bad stale)

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	[[ -x $E2E_INVOKE ]] || e2e_die "$E2E_INVOKE is missing: run 'make' first"
	e2e_init
	e2e_topology
	e2e_tetherd_start --hold-ms 200
	e2e_backend_start vm1
	e2e_backend_start vm2
	e2e_backend_add vm1 --heartbeat-ms "$HOUR" >/dev/null
	e2e_backend_add vm2 --heartbeat-ms "$HOUR" >/dev/null
	e2e_ctl container add --function "$F" --backend vm1 --warm >/dev/null
	e2e_ctl container add --function "$F" --backend vm2 --warm >/dev/null
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
