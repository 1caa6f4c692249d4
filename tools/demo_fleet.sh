#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo-fleet`: a fleet of three Tether routers on one machine. As root,
# after `make`: a three-member etcd cluster, three routers running tetherd in
# fleet mode, three VMs running tether-agent (each given all three routers),
# clients whose flows spread over the routers; then a narrated run: every
# router knows every container with the same token, sessions stay on their
# containers whichever router their datagrams reach, a router's tetherd
# killed under load and restarted, an etcd member killed under load while
# containers change. Ends with a summary table; removes everything it made on
# every exit. Traffic stays inside its namespaces.
#
# The scenarios are tests/e2e/fleet_scenarios.sh, which
# tests/e2e/test_demo_fleet.sh runs as tests.
#
#   tools/demo_fleet.sh            (BUILD=DIR for another build directory)
set -euo pipefail

E2E_QUIET=1
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/fleet.sh"
SCEN_MODE=demo
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/scenarios.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/fleet_scenarios.sh"

main() {
	local started=$SECONDS name status=0 i row label sent answered lost text statuses=()
	if [[ $(id -u) -ne 0 ]]; then
		echo "tools/demo_fleet.sh needs root (network namespaces, XDP, bpffs): sudo make demo-fleet" >&2
		exit 1
	fi
	printf '%sTether: a fleet of three routers, one machine%s\n' "$SCEN_BOLD" "$SCEN_OFF"
	scen_explain "Setting up etcd (3 members), 3 routers, 3 VMs with agents, clients..."
	fleet_scen_setup
	fleet_scen_describe
	for name in "${FLEET_SCEN_ALL[@]}"; do
		scen_run "$name"
		statuses+=("$SCEN_STATUS")
	done
	printf '\n%s== Summary%s\n' "$SCEN_BOLD" "$SCEN_OFF"
	printf '   %-22s %7s %9s %6s  %s\n' scenario sent answered lost result
	for i in "${!FLEET_SCEN_ALL[@]}"; do
		name=${FLEET_SCEN_ALL[$i]}
		row=$(cat "$E2E_RUN_DIR/row_$name" 2>/dev/null || printf '%s\t-\t-\t-\t' "$name")
		IFS=$'\t' read -r label sent answered lost text <<<"$row"
		if ((statuses[i] == 0)); then
			text="${SCEN_GREEN}ok${SCEN_OFF}: $text"
		else
			status=1
			text="${SCEN_RED}FAIL${SCEN_OFF}: $(head -n1 "$E2E_RUN_DIR/failures_$name" 2>/dev/null)"
		fi
		printf '   %-22s %7s %9s %6s  %s\n' "$label" "$sent" "$answered" "$lost" "$text"
	done
	scen_explain "Done in $((SECONDS - started)) s; removing what it made."
	return "$status"
}

main "$@"
