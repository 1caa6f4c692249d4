#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Least privilege (user/tetherd/privileges.h): once started, tetherd keeps
# CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW and nothing else, in every set, and
# what it does after that still works. On the rig of tests/e2e/lib.sh:
#
#   capabilities   /proc/PID/status of the running tetherd: CapEff, CapPrm and
#                  CapBnd hold exactly the kept set, CapInh and CapAmb nothing,
#                  NoNewPrivs is set; the log names the kept set.
#   after_drop     control requests that write maps (backends, containers, new
#                  pool tables), fast-path traffic, a held request forwarded by
#                  the slow path (AF_PACKET), and the slow path's placement: a
#                  key it places lands where the fast path puts it (it reads
#                  the pool table through the fd tetherd kept; by map id that
#                  would need CAP_SYS_ADMIN); the maps check out (check_pins).
#   restart        kill -9 and a new tetherd: it adopts, replaces the program
#                  in the pinned link, drops its privileges again; then
#                  `tetherctl unload` detaches, removes the pins and the VIPs.
#
#   tests/e2e/test_privileges.sh [TEST...]
#
# TAP output, then "N passed, M failed" alone on the last line. Run as root.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_BPF (39)
KEPT_MASK=0000008000003000
KEPT_NAMES="cap_bpf cap_net_admin cap_net_raw"

fail() {
	echo "#   FAILED: $*"
	return 1
}

expect_eq() {
	[[ $2 == "$3" ]] || fail "$1: expected '$3', got '$2'"
}

# The capability lines of a running process, as "CapEff=... " words.
caps_of() {
	awk '/^Cap|^NoNewPrivs/ { sub(":", "", $1); printf "%s=%s ", $1, $2 }' "/proc/$1/status"
}

expect_dropped() {
	local pid=$1 status
	status=$(caps_of "$pid")
	echo "#   tetherd $pid: $status"
	expect_eq "CapEff" "$(grep -o 'CapEff=[0-9a-f]*' <<<"$status")" "CapEff=$KEPT_MASK"
	expect_eq "CapPrm" "$(grep -o 'CapPrm=[0-9a-f]*' <<<"$status")" "CapPrm=$KEPT_MASK"
	expect_eq "CapBnd" "$(grep -o 'CapBnd=[0-9a-f]*' <<<"$status")" "CapBnd=$KEPT_MASK"
	expect_eq "CapInh" "$(grep -o 'CapInh=[0-9a-f]*' <<<"$status")" "CapInh=0000000000000000"
	expect_eq "CapAmb" "$(grep -o 'CapAmb=[0-9a-f]*' <<<"$status")" "CapAmb=0000000000000000"
	expect_eq "NoNewPrivs" "$(grep -o 'NoNewPrivs=[0-9]*' <<<"$status")" "NoNewPrivs=1"
}

test_capabilities() {
	expect_dropped "$(e2e_tetherd_pid)"
	expect_eq "the log's kept set" \
		"$(grep -o 'capabilities kept: [a-z_ ]*' "$E2E_TETHERD_LOG" | tail -n1)" \
		"capabilities kept: $KEPT_NAMES "
}

test_after_drop() {
	local out held=$E2E_LOG_DIR/held.load k fast slow same=0 check
	e2e_ctl container add --function 51 --backend vm1 --warm >/dev/null
	e2e_ctl container add --function 51 --backend vm2 --warm >/dev/null
	out=$(e2e_load --function 51 --count 100 --sessions 10 --key 5100 --rate 2000)
	echo "#   fast path: $(cut -d' ' -f1-5 <<<"$out")"
	expect_eq "fast path: ok" "$(e2e_field "$out" ok)" 100
	expect_eq "fast path: requests the slow path saw" \
		"$(e2e_ctl --json stats | jq '.[] | select(.part == "slowpath") | .received')" 0

	# a request held for capacity, then forwarded by the slow path (AF_PACKET)
	e2e_load_bg "$held" --function 52 --count 1 --timeout-ms 3000
	for ((k = 0; k < 100; k++)); do
		(($(e2e_ctl --json stats | jq '.[] | select(.part == "slowpath") | .held') > 0)) && break
		sleep 0.02
	done
	e2e_ctl container add --function 52 --backend vm2 --warm >/dev/null
	e2e_load_wait "$held" >/dev/null
	out=$(cat "$held")
	echo "#   held request: $(cut -d' ' -f1-5 <<<"$out")"
	expect_eq "held request answered OK" "$(e2e_field "$out" ok)" 1
	expect_eq "slow path send_errors" \
		"$(e2e_ctl --json stats | jq '.[] | select(.part == "slowpath") | .send_errors')" 0

	# placement: the slow path (a request from the router itself, which no
	# XDP program sees) puts a key where the fast path does
	for i in 1 2 3 4; do
		e2e_ctl container add --function 53 --backend "vm$((1 + i % 2))" --warm >/dev/null
	done
	for k in $(seq 5300 5315); do
		e2e_load --function 53 --count 1 --key "$k" >/dev/null
		fast=$(e2e_ctl --json affinity show --function 53 --key "$k" | jq .container)
		e2e_ctl affinity flush --function 53 --key "$k" >/dev/null
		e2e_in_router "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" --function 53 --count 1 \
			--key "$k" --timeout-ms 100 >/dev/null
		slow=$(e2e_ctl --json affinity show --function 53 --key "$k" 2>/dev/null | jq .container)
		[[ $fast == "$slow" ]] && same=$((same + 1))
	done
	echo "#   16 keys placed by the slow path: $same where the fast path puts them"
	expect_eq "keys the slow path places as the fast path does" "$same" 16
	check=$(e2e_check_pins) || fail "pins: $check"
	echo "#   $check"
}

test_restart() {
	local pid old_prog new_prog
	old_prog=$(e2e_xdp_prog_id "$E2E_IF_RC")
	e2e_tetherd_stop KILL
	e2e_tetherd_start
	pid=$(e2e_tetherd_pid)
	new_prog=$(e2e_xdp_prog_id "$E2E_IF_RC")
	echo "#   restarted: program $old_prog -> $new_prog, $(grep -c 'adopted the maps' "$E2E_TETHERD_LOG") adoption"
	[[ -n $new_prog && $new_prog != "$old_prog" ]] || fail "the program was not replaced ($old_prog -> $new_prog)"
	expect_dropped "$pid"
	expect_eq "containers after the restart" "$(e2e_ctl --json container list | jq length)" 7
	e2e_ctl unload >/dev/null
	e2e_wait_gone "$pid" 50 || fail "tetherd ($pid) still runs 5 s after unload"
	rm -f "$E2E_RUN_DIR/tetherd.pid"
	[[ ! -e $E2E_PIN_ROOT ]] || fail "the pin root is left: $(ls "$E2E_PIN_ROOT")"
	expect_eq "XDP program on $E2E_IF_RC after unload" "$(e2e_xdp_prog_id "$E2E_IF_RC")" ""
	grep -q "unload of .* incomplete" "$E2E_TETHERD_LOG" && fail "unload incomplete: $(tail -n2 "$E2E_TETHERD_LOG")"
	# a fresh tetherd adds the VIPs itself, and takes them off when it stops
	ip -n "$E2E_NS_ROUTER" addr del "$E2E_VIP4/32" dev lo 2>/dev/null || true
	ip -n "$E2E_NS_ROUTER" addr del "$E2E_VIP6/128" dev lo 2>/dev/null || true
	e2e_tetherd_start
	expect_dropped "$(e2e_tetherd_pid)"
	e2e_ctl unload >/dev/null
	e2e_wait_gone "$(e2e_tetherd_pid)" 50 || fail "tetherd still runs after unload"
	rm -f "$E2E_RUN_DIR/tetherd.pid"
	expect_eq "VIPs on the router's lo after unload" \
		"$(ip -n "$E2E_NS_ROUTER" -j addr show dev lo | jq -r --arg a "$E2E_VIP4" --arg b "$E2E_VIP6" \
			'[.[0].addr_info[] | select(.local == $a or .local == $b)] | length')" 0
	echo "#   unload with the kept set: link detached, pins and VIPs removed"
}

TESTS=(capabilities after_drop restart)
passed=0
failed=0
number=0

main() {
	local selected=("$@") name
	((${#selected[@]})) || selected=("${TESTS[@]}")
	for name in "${selected[@]}"; do
		declare -F "test_$name" >/dev/null || e2e_die "no test '$name' (tests: ${TESTS[*]})"
	done
	e2e_init
	[[ -x $E2E_BUILD/tools/check_pins ]] || e2e_die "$E2E_BUILD/tools/check_pins is missing: run 'make' first"
	e2e_topology
	e2e_tetherd_start
	e2e_backend_start vm1
	e2e_backend_start vm2
	e2e_backend_add vm1 --heartbeat-ms 1h >/dev/null
	e2e_backend_add vm2 --heartbeat-ms 1h >/dev/null
	echo "1..${#selected[@]}"
	for name in "${selected[@]}"; do
		run_test "$name"
	done
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
