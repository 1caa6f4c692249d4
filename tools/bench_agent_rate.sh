#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bounded agents (issue 16): how long a well-behaved VM agent waits for its
# lifecycle changes while another agent floods tetherd with its own, with
# tetherd's per-connection limit (--agent-rate) off and on. A real tetherd in
# the end-to-end rig's router namespace (tests/e2e/lib.sh), its TCP listener
# on the router's loopback; tools/control_rate plays both agents, each on a
# TCP connection of its own:
#
#   well-behaved  add, up and del of a container of its own, one change at a
#                 time, PACED_RATE changes a second; each timed from request
#                 to answer
#   flood         the same cycle with WINDOW changes in flight, as fast as
#                 tetherd answers; its refusals (error overloaded) counted
#
# Every up and del swaps a pool table, which waits for an RCU grace period:
# the flood's swaps are what the well-behaved agent queues behind. Cases:
#   quiet      the well-behaved agent alone (limit on)
#   flood_off  beside the flood, tetherd --agent-rate 0
#   flood_on   beside the flood, tetherd --agent-rate AGENT_RATE (default 100)
# Ratios are the case's p99 against quiet's, in the same run. The machine is
# shared: read them side by side, not alone.
#
#   tools/bench_agent_rate.sh [--quick] [--json FILE]
#
# Full: 600 paced changes a case (20 s each, about a minute and a half);
# --quick: 60 (2 s each). Needs root.
set -euo pipefail

E2E_QUIET=1
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"

PACED_RATE=30 COUNT=600 WINDOW=32 AGENT_RATE=100 JSON=
while (($#)); do
	case $1 in
	--quick) COUNT=60 ;;
	--json) JSON=${2:?--json FILE}; shift ;;
	-h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench_agent_rate: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
RATE_TOOL=$E2E_BUILD/tools/control_rate
[[ -x $RATE_TOOL ]] || e2e_die "$RATE_TOOL is missing: run 'make' first"

e2e_init
e2e_topology
PORT=$(e2e_random_port)
SECRET_FILE=$E2E_RUN_DIR/tcp-secret
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$SECRET_FILE"
chmod 600 "$SECRET_FILE"
# Plain TCP on the router's loopback: the limit is what is measured here,
# not the transport (test_tls.sh has that).
PLAIN=(--tcp-plain)

# control_rate in the router's namespace, as agent NAME (a backend of its own).
agent() {
	local name=$1 addr=$2
	shift 2
	e2e_in_router "$RATE_TOOL" --connect "127.0.0.1:$PORT" --secret-file "$SECRET_FILE" \
		--iface "$E2E_IF_R1" --name "$name" --addr "$addr" "$@"
}

# One case: tetherd with --agent-rate $2; a flood beside the paced agent when
# $3 is "flood". Prints the case's JSON object.
run_case() {
	local name=$1 rate=$2 flood=$3 flood_pid= seconds
	e2e_tetherd_stop 2>/dev/null || true
	e2e_tetherd_start --tcp-listen "127.0.0.1:$PORT" --tcp-secret-file "$SECRET_FILE" \
		--agent-rate "$rate" "${PLAIN[@]}"
	seconds=$((COUNT / PACED_RATE + 2))
	if [[ $flood == flood ]]; then
		e2e_in_router "$RATE_TOOL" --connect "127.0.0.1:$PORT" --secret-file "$SECRET_FILE" \
			--iface "$E2E_IF_R1" --name flood --addr 203.0.113.251 --function 2 \
			--flood "$seconds" --window "$WINDOW" --json "$E2E_LOG_DIR/$name-flood.json" \
			>"$E2E_LOG_DIR/$name-flood.out" 2>&1 &
		flood_pid=$!
		e2e_track "$flood_pid"
		sleep 0.5 # the flood is under way before the first measured change
	fi
	agent paced 203.0.113.250 --function 1 --paced "$PACED_RATE" --count "$COUNT" \
		--json "$E2E_LOG_DIR/$name-paced.json" >"$E2E_LOG_DIR/$name-paced.out" 2>&1 ||
		e2e_die "the paced agent failed: $(cat "$E2E_LOG_DIR/$name-paced.out")"
	if [[ -n $flood_pid ]]; then
		wait "$flood_pid" || e2e_die "the flood failed: $(cat "$E2E_LOG_DIR/$name-flood.out")"
	else
		echo '{"changes": 0, "ok": 0, "overloaded": 0, "ok_per_s": 0}' >"$E2E_LOG_DIR/$name-flood.json"
	fi
	jq -n --arg case "$name" --argjson agent_rate "$rate" \
		--slurpfile paced "$E2E_LOG_DIR/$name-paced.json" \
		--slurpfile flood "$E2E_LOG_DIR/$name-flood.json" \
		'{case: $case, agent_rate: $agent_rate, paced: $paced[0], flood: $flood[0]}'
}

results=$(
	run_case quiet "$AGENT_RATE" none
	run_case flood_off 0 flood
	run_case flood_on "$AGENT_RATE" flood
)
results=$(jq -s '(.[0].paced.p99_us) as $base | map(. + {p99_vs_quiet: (.paced.p99_us / $base)})' \
	<<<"$results")

echo "Bounded agents: one agent's changes (add, up, del at $PACED_RATE/s, $COUNT timed) while"
echo "another floods ($WINDOW in flight); tetherd --agent-rate off (0) and on ($AGENT_RATE)"
printf '%-10s %10s %9s %9s %9s %8s %12s %12s\n' case agent-rate p50_us p99_us max_us "p99/quiet" \
	flood_ok/s flood_refused
jq -r '.[] | [.case, .agent_rate, .paced.p50_us, .paced.p99_us, .paced.max_us, .p99_vs_quiet,
	.flood.ok_per_s, .flood.overloaded] | @tsv' <<<"$results" |
	while IFS=$'\t' read -r c r p50 p99 max ratio okps refused; do
		printf '%-10s %10s %9.0f %9.0f %9.0f %8.2fx %12.0f %12s\n' "$c" "$r" "$p50" "$p99" "$max" \
			"$ratio" "$okps" "$refused"
	done
# What must hold whatever the machine does: the well-behaved agent was never
# refused, and with the limit on the flood was.
jq -e 'all(.[]; .paced.overloaded == 0)' <<<"$results" >/dev/null ||
	e2e_die "the well-behaved agent was refused (overloaded): $results"
jq -e '.[] | select(.case == "flood_on") | .flood.overloaded > 0' <<<"$results" >/dev/null ||
	e2e_die "with --agent-rate $AGENT_RATE, the flood was never refused: $results"
if [[ -n $JSON ]]; then
	jq '{agent_rate: .}' <<<"$results" >"$JSON"
	echo "bench_agent_rate: JSON in $JSON"
fi
