#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The scenarios of `make demo-fleet` as tests: the same code
# (tests/e2e/fleet_scenarios.sh) on the same rig (three routers in fleet
# mode, a three-member etcd, three VMs with the real VM agent given every
# router), with their assertions: identical containers and tokens on every
# router, sessions over ECMP sticky and none lost, a router's tetherd killed
# under load with nothing lost and the router caught up after its restart, an
# etcd member killed under load while containers change.
#
#   tests/e2e/test_demo_fleet.sh [TEST...]
#
# TAP output, then "N passed, M failed" alone on the last line. Run as root.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet.sh"
SCEN_MODE=test
source "$(dirname "${BASH_SOURCE[0]}")/scenarios.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_scenarios.sh"

run_test() {
	local name=$1 started
	number=$((number + 1))
	started=$(date +%s%N)
	scen_run "$name"
	local ms=$((($(date +%s%N) - started) / 1000000))
	if ((SCEN_STATUS == 0)); then
		passed=$((passed + 1))
		echo "ok $number - $name (${ms} ms)"
	else
		failed=$((failed + 1))
		echo "not ok $number - $name (${ms} ms)"
	fi
}

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${FLEET_SCEN_ALL[@]}")
	check_test_names scen_ "${selected[@]}"
	fleet_scen_setup
	fleet_scen_describe
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
