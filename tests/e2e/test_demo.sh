#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The scenarios of `make demo` as tests: the same code (tests/e2e/scenarios.sh)
# on the same rig (two clients, the router with tetherd, three VMs with the
# real VM agent), with exact assertions: every reply came from a container of
# the requested function; sessions stay where the routing rules say; sent,
# answered and lost counted, lost 0 wherever the design promises it; IPv4 and
# IPv6; two clients at once; the router's own ping and TCP unharmed. Run as
# root:
#
#   tests/e2e/test_demo.sh [TEST...]     (TEST: a name below, e.g. drain)
#
# TAP output ("ok N - name"), then "N passed, M failed" alone on a line; the
# exit status is nonzero when a test failed. The tests run in this order on
# one rig (the drain leaves function 1 a container short, vm2 dies in
# vm_killed); each runs in a subshell and stops at its first failed assertion.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SCEN_MODE=test
source "$(dirname "${BASH_SOURCE[0]}")/scenarios.sh"

run_test() {
	local name=$1 started status row
	number=$((number + 1))
	started=$(date +%s%N)
	scen_run "$name"
	status=$SCEN_STATUS
	local ms=$((($(date +%s%N) - started) / 1000000))
	row=$(cat "$E2E_RUN_DIR/row_$name" 2>/dev/null || true)
	[[ -z $row ]] ||
		awk -F'\t' '{ printf "#   figures: sent=%s answered=%s lost=%s (%s)\n", $2, $3, $4, $5 }' <<<"$row"
	if ((status == 0)); then
		passed=$((passed + 1))
		echo "ok $number - $name (${ms} ms)"
	else
		failed=$((failed + 1))
		echo "not ok $number - $name (${ms} ms)"
	fi
}

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${SCEN_ALL[@]}")
	check_test_names scen_ "${selected[@]}"
	scen_setup
	scen_describe
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
