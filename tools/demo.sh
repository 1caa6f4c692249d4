#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo`: Tether on one machine. As root, after `make`: network
# namespaces for two clients, the router (tetherd, the XDP program) and three
# VMs (tether-agent each, with containers of two functions), then a narrated
# run of what Tether promises: sessions stay on their container, tokens bring
# a client back to its container, a cold start serves a request for a function
# without a warm container, a drain under load loses nothing, a dead VM's
# sessions move within the heartbeat time, tetherd restarts and upgrades under
# load without losing a request; the router's own traffic still works; and a
# fourth VM, two routed hops away behind a transit router, serves in IPIP.
# Ends with a summary table; removes everything it made on every exit
# (Ctrl-C and failures included). Traffic stays inside its namespaces.
#
# The scenarios are tests/e2e/scenarios.sh, which tests/e2e/test_demo.sh runs
# as tests: the demo and its test cannot drift apart.
#
#   tools/demo.sh            (BUILD=DIR for another build directory)
#
# Exit status 0 when every scenario held, 1 otherwise.
set -euo pipefail

E2E_QUIET=1
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
SCEN_MODE=demo
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/scenarios.sh"

DEMO_STATUS=()

# Runs one scenario in a subshell (its first failed check ends it) and keeps
# its outcome for the summary.
demo_run() {
	scen_run "$1"
	DEMO_STATUS+=("$SCEN_STATUS")
}

demo_summary() {
	local i name row label sent answered lost text result failures=0 failure
	printf '\n%s== Summary%s\n' "$SCEN_BOLD" "$SCEN_OFF"
	printf '   %-27s %7s %9s %6s  %s\n' scenario sent answered lost result
	for i in "${!SCEN_ALL[@]}"; do
		name=${SCEN_ALL[$i]}
		row=$(cat "$E2E_RUN_DIR/row_$name" 2>/dev/null || printf '%s\t-\t-\t-\t' "$name")
		IFS=$'\t' read -r label sent answered lost text <<<"$row"
		if ((DEMO_STATUS[i] == 0)); then
			result="${SCEN_GREEN}ok${SCEN_OFF}: $text"
		else
			failures=$((failures + 1))
			failure=$(head -n1 "$E2E_RUN_DIR/failures_$name" 2>/dev/null || echo "stopped (status ${DEMO_STATUS[i]})")
			result="${SCEN_RED}FAIL${SCEN_OFF}: $failure"
		fi
		printf '   %-27s %7s %9s %6s  %s\n' "$label" "$sent" "$answered" "$lost" "$result"
	done
	echo
	if ((failures)); then
		echo "   $failures of ${#SCEN_ALL[@]} scenarios failed; tetherd's and the agents' logs are kept in $E2E_LOG_DIR"
		return 1
	fi
	echo "   Every scenario held. Lost requests in scenario 5 are the ones sent to vm2 between its death and"
	echo "   its heartbeat deadline; the design promises no loss for keys, tokens, drains, restarts and upgrades."
}

main() {
	local started=$SECONDS
	if [[ $(id -u) -ne 0 ]]; then
		echo "tools/demo.sh needs root (network namespaces, XDP, bpffs): sudo make demo" >&2
		exit 1
	fi
	printf '%sTether: one machine, one command%s\n' "$SCEN_BOLD" "$SCEN_OFF"
	scen_explain "Setting up namespaces (2 clients, router, 3 VMs, a transit router and a routed VM), tetherd and a tether-agent per VM..."
	scen_setup
	scen_describe
	local name
	for name in "${SCEN_ALL[@]}"; do
		demo_run "$name"
	done
	local status=0
	demo_summary || status=1
	scen_explain "Done in $((SECONDS - started)) s; removing the namespaces, processes and BPF pins it made."
	return "$status"
}

main "$@"
