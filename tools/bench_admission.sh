#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The slow path under flood (issue 17): what a flood for a function with no
# capacity costs everyone else's requests, with and without admission in the
# data plane, on the end-to-end rig (tests/e2e/lib.sh) with the real agent.
#
#   tools/bench_admission.sh [--quick] [--json FILE] [--rounds N] [--seconds S]
#
#   client  ──veth──▶ router (tetherd, XDP) ──veth──▶ vm1 (tether-agent, two
#   client2 ──veth──┘                                 containers of function 1)
#
# Three cases, each for S seconds, in every round:
#   no flood             client: keyed requests for function 1 at 2,000/s
#   flood, shedding off  the same, and client2 floods function 999 (no
#                        container anywhere) as fast as udp_load goes; tetherd
#                        with --admit-rate 0 --admit-total-rate 0: every flood
#                        request climbs the stack into tetherd, which answers
#                        it OVERLOADED (queue full) or NO_CAPACITY (held 1 s)
#   flood, shedding on   the same with tetherd's default budget (500/s, burst
#                        256 per function; 5,000/s, 2,048 in all): the XDP
#                        program answers the flood OVERLOADED itself
# Latency is udp_load's (send to answer, in the client, microseconds);
# the legit figures are pooled over the rounds (udp_load --trace), the flood's
# and the counters summed. tetherd's CPU is its utime + stime over the case
# (/proc/PID/stat), in % of one core. Then ns/packet of a shed request and of
# the admission check, from bench_dataplane (BPF_PROG_TEST_RUN, --quick).
# The machine is shared (2 vCPUs run the clients, the router's softirqs,
# tetherd, the agent and its containers, and other people's work): read the
# tails side by side within one run, not alone. XDP_TX answers reach a
# client's veth only when it has an XDP program: the clients get xdp_pass.
# Full: 3 rounds of 5 s (about 1.5 minutes); --quick: 1 round of 2 s.
# Prints a table and, with --json FILE, writes it as JSON. Needs root.
# Exit status: 0 measured (legit requests lost or answered other than OK are
# figures of the table: the harm a flood does); 1 when the rig failed or an
# answer was invalid (not a reply to a request sent, or from a container of
# another function).
set -euo pipefail

E2E_QUIET=1
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"

ROUNDS=3 SECONDS_PER_CASE=5 JSON=
F_LEGIT=1 F_FLOOD=999 LEGIT_RATE=2000 LEGIT_SESSIONS=50
HOLD_MS=1000
SHEDDING_OFF=(--admit-rate 0 --admit-total-rate 0)
CASES=(none off on) # no flood; flood, shedding off; flood, shedding on

bench_die() {
	echo "bench_admission: FATAL: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--quick) ROUNDS=1 SECONDS_PER_CASE=2 ;;
	--json) JSON=${2:?--json FILE}; shift ;;
	--rounds) ROUNDS=${2:?--rounds N}; shift ;;
	--seconds) SECONDS_PER_CASE=${2:?--seconds S}; shift ;;
	-h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) bench_die "unknown option $1 (see --help)" ;;
	esac
	shift
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $SECONDS_PER_CASE =~ ^[1-9][0-9]*$ ]] ||
	bench_die "--rounds and --seconds take positive whole numbers"
[[ $(id -u) -eq 0 ]] || bench_die "needs root (network namespaces, XDP, bpffs); run it as root"
[[ -z $JSON ]] || JSON=$(realpath -m "$JSON")

# ------------------------------------------------------------------ the rig

# tetherd with these options (none: its defaults), the agent registered again.
tetherd_with() {
	e2e_tetherd_stop
	e2e_tetherd_start --hold-ms "$HOLD_MS" "$@"
	e2e_agent_wait_warm vm1 2
}

bench_setup() {
	e2e_init
	e2e_topology --vms 2 --clients 2
	ip -n "$E2E_NS_CLIENT" link set dev "$E2E_IF_CL" xdpdrv obj "$E2E_XDP_PASS" sec xdp
	ip -n "$E2E_NS_CLIENT2" link set dev "$E2E_IF_CL2" xdpdrv obj "$E2E_XDP_PASS" sec xdp
	e2e_tetherd_start --hold-ms "$HOLD_MS"
	e2e_agent_start vm1 --function "$F_LEGIT:2"
	e2e_agent_wait_warm vm1 2
	TETHERD_SHEDDING=on
}

# ------------------------------------------------------------------ runs

# tetherctl stats as one JSON object: "part.key": value.
counters() {
	e2e_ctl --json stats | jq -c '[.[] | .part as $p | to_entries[] | select(.key != "part") |
		{key: "\($p).\(.key)", value}] | from_entries'
}

# tetherd's CPU time so far, in clock ticks (utime + stime).
tetherd_ticks() {
	local stat
	stat=$(cat "/proc/$(e2e_tetherd_pid)/stat")
	stat=${stat##*) }
	# shellcheck disable=SC2086 # the fields, one a word
	set -- $stat
	echo $((${12} + ${13}))
}

# One case of one round: CASE (none, off, on) ROUND. Its figures go to
# $TMP/runs.jsonl, the legit trace to $TMP/legit-CASE-ROUND.trace.
run_case() {
	local case=$1 round=$2 name=$1-$2 want=on before after ticks started ended legit flood="{}"
	[[ $case == off ]] && want=off
	if [[ $TETHERD_SHEDDING != "$want" ]]; then
		if [[ $want == off ]]; then tetherd_with "${SHEDDING_OFF[@]}"; else tetherd_with; fi
		TETHERD_SHEDDING=$want
	fi
	before=$(counters)
	ticks=$(tetherd_ticks)
	started=$(date +%s%N)
	e2e_load_bg "$TMP/legit-$name.json" --function "$F_LEGIT" --sessions "$LEGIT_SESSIONS" \
		--rate "$LEGIT_RATE" --duration-s "$SECONDS_PER_CASE" --timeout-ms 2000 --json \
		--trace "$TMP/legit-$name.trace"
	local legit_pid=$E2E_LOAD_PID flood_pid=
	if [[ $case != none ]]; then
		ip netns exec "$E2E_NS_CLIENT2" "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" \
			--function "$F_FLOOD" --rate 0 --duration-s "$SECONDS_PER_CASE" \
			--timeout-ms $((HOLD_MS + 2000)) --json >"$TMP/flood-$name.json" 2>&1 &
		flood_pid=$!
		e2e_track "$flood_pid"
	fi
	wait "$legit_pid" || bench_die "udp_load (legit) failed: $(cat "$TMP/legit-$name.json")"
	[[ -z $flood_pid ]] || wait "$flood_pid" || bench_die "udp_load (flood) failed"
	ended=$(date +%s%N)
	ticks=$(($(tetherd_ticks) - ticks))
	after=$(counters)
	legit=$(cat "$TMP/legit-$name.json")
	[[ $case == none ]] || flood=$(cat "$TMP/flood-$name.json")
	jq -nc --arg case "$case" --argjson round "$round" --argjson legit "$legit" \
		--argjson flood "$flood" --argjson before "$before" --argjson after "$after" \
		--argjson ticks "$ticks" --argjson hz "$(getconf CLK_TCK)" \
		--argjson ns $((ended - started)) '
		def d(k): ($after[k] // 0) - ($before[k] // 0);
		{case: $case, round: $round, seconds: ($ns / 1e9),
		 legit: ($legit | {sent, answered, lost, ok, overloaded, no_capacity, invalid, p50_us, p99_us, p999_us, max_us}),
		 flood: ($flood | {sent, answered, lost, ok, overloaded, no_capacity}),
		 router: {shed: d("admission.shed"), shed_dropped: d("admission.shed_dropped"),
			  no_capacity: d("dataplane.no_capacity")},
		 slowpath: {received: d("slowpath.received"), overloaded: d("slowpath.overloaded"),
			    no_capacity: d("slowpath.no_capacity")},
		 tetherd_cpu_pct: ($ticks / $hz / ($ns / 1e9) * 100)}' >>"$TMP/runs.jsonl"
	jq -r 'select(.case == "'"$case"'" and .round == '"$round"') |
		"bench_admission: round \(.round) \(.case): legit sent \(.legit.sent), lost \(.legit.lost), p99 \(.legit.p99_us) us; flood sent \(.flood.sent // 0), shed \(.router.shed), slow path received \(.slowpath.received), tetherd \(.tetherd_cpu_pct | round)% CPU"' \
		"$TMP/runs.jsonl" >&2
	jq -e '.invalid == 0' <<<"$legit" >/dev/null ||
		WRONG+=("$case round $round: $(jq -c '{sent, ok, invalid}' <<<"$legit")")
}

# Legit latency percentiles over the OK answers of every round of CASE.
pooled() {
	cat "$TMP/legit-$1"-*.trace | sed -n 's/.* latency_us=\([0-9]*\) status=ok .*/\1/p' | sort -n |
		awk 'function at(q,  r) { r = int(n * q); if (r < n * q) r++; return v[r < 1 ? 1 : r] }
			{ v[++n] = $1 }
			END { printf "{\"answers\":%d,\"p50_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"max_us\":%d}\n",
				n, at(0.5), at(0.99), at(0.999), v[n] }'
}

# ns/packet of the admission cases of bench_dataplane (--quick world).
shed_ns() {
	local out
	out=$("$E2E_BUILD/tools/bench_dataplane" --quick --json "$TMP/dataplane.json" 2>/dev/null) ||
		bench_die "bench_dataplane failed"
	jq -c '[.cases[] | select(.case | test("shed|budget|whole|^no capacity$")) |
		{key: .case, value: .ns_per_packet}] | from_entries' "$TMP/dataplane.json"
}

# ------------------------------------------------------------------ main

main() {
	local round case rows=() order
	bench_setup
	TMP=$E2E_LOG_DIR
	WRONG=()
	: >"$TMP/runs.jsonl"
	echo "bench_admission: $E2E_ID: $ROUNDS round(s) of ${SECONDS_PER_CASE} s per case" >&2
	# A warm-up (ARP, caches, the containers' first requests).
	e2e_load --function "$F_LEGIT" --sessions "$LEGIT_SESSIONS" --count 200 --rate 1000 >/dev/null
	LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
	for ((round = 1; round <= ROUNDS; round++)); do
		# Shedding on, then off, then on again in the next round: one restart a round.
		order="none on off"
		((round % 2)) || order="off on none"
		for case in $order; do
			run_case "$case" "$round"
		done
	done
	LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
	for case in "${CASES[@]}"; do
		rows+=("$(jq -sc --arg case "$case" --argjson pooled "$(pooled "$case")" '
			map(select(.case == $case)) |
			{case: $case,
			 legit: ({sent: (map(.legit.sent) | add), lost: (map(.legit.lost) | add),
				  ok: (map(.legit.ok) | add),
				  not_ok: (map(.legit.answered - .legit.ok) | add)} + $pooled),
			 flood: {sent: (map(.flood.sent // 0) | add), answered: (map(.flood.answered // 0) | add),
				 lost: (map(.flood.lost // 0) | add), overloaded: (map(.flood.overloaded // 0) | add),
				 no_capacity: (map(.flood.no_capacity // 0) | add),
				 per_s: ((map(.flood.sent // 0) | add) / (length * '"$SECONDS_PER_CASE"'))},
			 router: {shed: (map(.router.shed) | add), shed_dropped: (map(.router.shed_dropped) | add)},
			 slowpath: {received: (map(.slowpath.received) | add)},
			 tetherd_cpu_pct: ((map(.tetherd_cpu_pct) | add) / length),
			 rounds: .}' "$TMP/runs.jsonl")")
	done
	local ns
	ns=$(shed_ns)
	printf '%s\n' "${rows[@]}" | jq -s --argjson rounds "$ROUNDS" --argjson seconds "$SECONDS_PER_CASE" \
		--argjson ns "$ns" --argjson load_start "$LOAD_START" --argjson load_end "$LOAD_END" '
		{config: {rounds: $rounds, seconds_per_case: $seconds, legit_rate: '"$LEGIT_RATE"',
			  legit: "client: function 1 (two warm containers on vm1), keyed, 50 sessions",
			  flood: "client2: function 999 (no container), udp_load --rate 0 (as fast as it goes)",
			  shedding_off: "tetherd --admit-rate 0 --admit-total-rate 0",
			  shedding_on: "tetherd defaults: 500/s burst 256 per function, 5000/s burst 2048 in all, answers 100000/s burst 10000",
			  cpus: '"$(nproc)"', loadavg_1min_start: $load_start, loadavg_1min_end: $load_end},
		 rows: ., shed_ns_per_packet: $ns}' >"$TMP/result.json"

	{
		printf '\nA flood for a function with no capacity, beside legit requests (%s round(s) of %s s per case)\n' \
			"$ROUNDS" "$SECONDS_PER_CASE"
		printf '  legit: client 1, function 1 keyed at %s/s; latency send to answer (us), pooled over rounds\n' "$LEGIT_RATE"
		printf '  flood: client 2, function 999 (no container) as fast as udp_load goes\n\n'
		printf '%-20s %6s %5s %6s %5s %6s %6s | %6s %7s %7s %7s | %7s\n' case sent lost not-ok p50 \
			p99 p999 flood/s "XDP" "slow" "over-" tetherd
		printf '%-20s %6s %5s %6s %5s %6s %6s | %6s %7s %7s %7s | %7s\n' "" legit "" "" "" "" "" \
			"" shed path loaded CPU
		jq -r '.rows[] | [(if .case == "none" then "no flood" elif .case == "off" then "flood, shedding off"
			else "flood, shedding on" end), .legit.sent, .legit.lost, .legit.not_ok, .legit.p50_us,
			.legit.p99_us, .legit.p999_us, (.flood.per_s | round), .router.shed, .slowpath.received,
			.flood.overloaded, "\(.tetherd_cpu_pct | round)%"]
			| map(tostring) | join("|")' "$TMP/result.json" |
			while IFS='|' read -r c sent lost notok p50 p99 p999 rate shed received overloaded cpu; do
				printf '%-20s %6s %5s %6s %5s %6s %6s | %6s %7s %7s %7s | %7s\n' "$c" "$sent" \
					"$lost" "$notok" "$p50" "$p99" "$p999" "$rate" "$shed" "$received" \
					"$overloaded" "$cpu"
			done
		printf '\n  legit: sent, lost, answered other than OK (the agent answers OVERLOADED when its\n'
		printf '  containers fall behind), latency of the OK answers (us). flood/s: the flood'"'"'s rate\n'
		printf '  while it sent (some of it never reaches the router: a veth ring overflows);\n'
		printf '  XDP shed: flood requests the router answered OVERLOADED itself; slow path: datagrams\n'
		printf '  tetherd read; overloaded: OVERLOADED answers the flood got. tetherd CPU: %% of one core\n'
		printf '  (the softirq time of the stack the flood climbs is not in it)\n'
		printf '\nns/packet (BPF_PROG_TEST_RUN, bench_dataplane --quick):\n'
		jq -r '.shed_ns_per_packet | to_entries[] | "  \(.key): \(.value)"' "$TMP/result.json"
		printf 'machine: %s CPUs, 1-minute load average %s at the start, %s at the end\n' \
			"$(nproc)" "$LOAD_START" "$LOAD_END"
	}
	[[ -z $JSON ]] || cp "$TMP/result.json" "$JSON"
	if ((${#WRONG[@]})); then
		printf 'bench_admission: legit requests not all OK: %s\n' "${WRONG[@]}" >&2
		exit 1
	fi
	echo "bench_admission: done in $SECONDS s${JSON:+; JSON in $JSON}" >&2
}

main
