#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A hot key with concurrency limit 1: request latency when Tether steers
# around full containers (every container of the function under limit 1,
# the key's affinity kept) against the same load with no limit, where every
# request of the key queues in its one container. On the end-to-end rig
# (tests/e2e/lib.sh) with the real VM agents:
#
#   tools/bench_hotkey.sh [--quick] [--json FILE] [--rate R] [--seconds S]
#
#   client ──▶ router (tetherd --completion, XDP on every link) ──▶ vm1, vm2
#              (tether-agent each: 4 containers of the sleep handler, 20 ms a
#               request; with the limit, --function F:4:1 and DONEs)
#
# One routing key at a steady rate (default 100 requests/s: twice what one
# container serves, a quarter of the eight) for S seconds (10; --quick 3):
# without the limit the key's container falls behind and its queue grows for
# the whole run; with it the overflow runs beside it. p50/p99/p999 of the
# client's latency (send to answer), the containers that answered, and what
# was lost. Prints a table; --json FILE writes it as JSON. Needs root.
set -euo pipefail

E2E_QUIET=1
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"

RATE=100 SECONDS_RUN=10 JSON=
FUNCTION=93
KEY=$((900000 + RANDOM))
COMPLETION=203.0.113.1:7700

bench_die() {
	echo "bench_hotkey: FATAL: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--quick) SECONDS_RUN=3 ;;
	--json) JSON=${2:?--json FILE}; shift ;;
	--rate) RATE=${2:?--rate R}; shift ;;
	--seconds) SECONDS_RUN=${2:?--seconds S}; shift ;;
	-h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) bench_die "unknown option $1 (see --help)" ;;
	esac
	shift
done
[[ $RATE =~ ^[1-9][0-9]*$ && $SECONDS_RUN =~ ^[1-9][0-9]*$ ]] ||
	bench_die "--rate and --seconds take positive whole numbers"
[[ $(id -u) -eq 0 ]] || bench_die "needs root (network namespaces, XDP, bpffs); run it as root"
[[ -z $JSON ]] || JSON=$(realpath -m "$JSON")

# MODE (limit, none): both VMs' agents with 4 containers each, warm.
agents() {
	local spec=$FUNCTION:4 name
	[[ $1 == none ]] || spec=$FUNCTION:4:1
	for name in vm1 vm2; do
		[[ -z $(e2e_agent_pid "$name") ]] || e2e_agent_stop "$name"
	done
	for name in vm1 vm2; do
		e2e_agent_start "$name" --function "$spec" --handler sleep --heartbeat-ms 1000 \
			--cold-start-ms 50
	done
	e2e_agent_wait_warm vm1 4
	e2e_agent_wait_warm vm2 4
}

run_mode() {
	local mode=$1
	agents "$mode"
	e2e_load --function "$FUNCTION" --key "$KEY" --rate "$RATE" --duration-s "$SECONDS_RUN" \
		--timeout-ms 10000 --json >"$TMP/$mode.json" ||
		bench_die "udp_load failed: $(head -c 300 "$TMP/$mode.json")"
	jq -c --arg mode "$mode" '{mode: $mode, sent, answered, lost, ok, overloaded, containers,
		p50_us, p99_us, p999_us, max_us}' "$TMP/$mode.json" >>"$TMP/rows.jsonl"
}

main() {
	e2e_init
	TMP=$E2E_LOG_DIR
	: >"$TMP/rows.jsonl"
	e2e_topology
	E2E_TETHERD_IFACES+=("$E2E_IF_R1" "$E2E_IF_R2")
	e2e_tetherd_start --completion "$COMPLETION" --hold-ms 5000 --queue 4096
	echo "bench_hotkey: $E2E_ID: one key at $RATE requests/s for $SECONDS_RUN s; 8 containers of 20 ms" >&2
	run_mode limit
	run_mode none
	jq -s --argjson rate "$RATE" --argjson seconds "$SECONDS_RUN" '{config: {rate: $rate,
		seconds: $seconds, containers: 8, handler_ms: 20, cpus: '"$(nproc)"',
		method: "one routing key at a steady rate (udp_load); limit: every container under concurrency 1, Tether steering; none: no limit, every request in the key'"'"'s container"},
		rows: .}' "$TMP/rows.jsonl" >"$TMP/result.json"
	printf '\nA hot key, %s requests/s for %s s, 8 containers whose requests take 20 ms\n\n' "$RATE" \
		"$SECONDS_RUN"
	printf '%-34s %8s %6s %11s %10s %10s %10s\n' path answered lost containers p50_ms p99_ms p999_ms
	jq -r '.rows[] | [(if .mode == "limit" then "Tether, limit 1 (steered)" else "no limit (one container)" end),
		.answered, .lost, .containers, (.p50_us / 1000 | floor), (.p99_us / 1000 | floor),
		(.p999_us / 1000 | floor)] | map(tostring) | join("|")' "$TMP/result.json" |
		while IFS='|' read -r path answered lost containers p50 p99 p999; do
			printf '%-34s %8s %6s %11s %10s %10s %10s\n' "$path" "$answered" "$lost" "$containers" \
				"$p50" "$p99" "$p999"
		done
	[[ -z $JSON ]] || cp "$TMP/result.json" "$JSON"
	echo "bench_hotkey: done in $SECONDS s${JSON:+; JSON in $JSON}" >&2
}

main
