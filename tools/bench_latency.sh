#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Request latency through Tether against the same requests sent straight to
# the backend: what the router adds to a request's round trip, at a low and a
# high request rate, on the end-to-end rig (tests/e2e/lib.sh) with the real VM
# agent.
#
#   tools/bench_latency.sh [--quick] [--json FILE] [--rounds N]
#                          [--low-rate R] [--high-rate R]
#
#   client ──veth──▶ router ──veth──▶ vm1 (tether-agent, 1 container of
#     │  (XDP: Tether)  ▲                    function 1, served-by handler)
#     └──second veth────┘ (no XDP: the kernel forwards to vm1)
#   replies: vm1 ──▶ router (kernel forwarding) ──▶ client, on both paths (DSR)
#
# Both paths use the same client program (tools/udp_load), the same agent
# and the same container, and the agent gets the same request bytes:
#   Tether:  udp_load --token T: the client presents the container's token;
#            the router's XDP program checks it, stamps it (STAMPED, the
#            token: bpf/forward.h), rewrites the MACs and redirects the frame
#            to vm1's veth.
#   direct:  udp_load --token T --stamped T --source-port 6001: the client
#            sends the frame as the router would have stamped it. A policy
#            rule on the client sends this source port out a second veth into
#            the router namespace, which has no XDP program; there the kernel
#            forwards it to vm1 (a policy rule for that interface, looked up
#            before the router's local table, since tetherd makes the VIP
#            local on the router). The frames vm1 gets on both paths have the
#            same MACs, addresses, flags (TOKEN|STAMPED) and token (checked
#            once with a capture on vm1's veth); they differ only where any
#            two requests differ (source port, IP id, request_id, checksums)
#            and in the TTL, which the kernel decrements and XDP does not. So
#            "direct" is the router's plain kernel forwarding: the "no
#            Tether" baseline.
# The bench checks that Tether's data plane decided nothing during the direct
# runs (token_hit unchanged) and a token hit for every answered request of the
# Tether runs.
#
# Latency is udp_load's: send to answer, in the client, microseconds. Each
# round runs every case once (the two paths back to back, in alternating
# order, so slow drifts of the machine hit both alike); the table's
# percentiles are over the answers of all rounds together (udp_load --trace);
# the JSON adds each round's figures and the median over rounds of the
# per-round differences. The machine is shared (2 vCPUs: client, agent,
# container, softirqs and other people's work), so tails (p99, p999) move by
# milliseconds from run to run; read them side by side, not alone.
# Full: 6 rounds of 2 s at the low rate and 1 s at the high rate (about 45 s
# in all); --quick: 1 round of 1 s each (about 10 s).
# Prints a table and, with --json FILE, writes the same as JSON. Needs root.
# Exit status: 0 measured; 1 when the rig failed or a request was answered
# wrongly (not OK, by another container, or an invalid reply).
set -euo pipefail

E2E_QUIET=1
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"

ROUNDS=6 LOW_RATE=200 HIGH_RATE=10000 LOW_SECONDS=2 HIGH_SECONDS=1 JSON=
FUNCTION=1
DIRECT_PORT=6001  # udp_load's source port on the direct path (outside the ephemeral range)
DIRECT_TABLE=100  # routing table of the direct path, client and router

bench_die() {
	echo "bench_latency: FATAL: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--quick) ROUNDS=1 LOW_SECONDS=1 HIGH_SECONDS=1 ;;
	--json) JSON=${2:?--json FILE}; shift ;;
	--rounds) ROUNDS=${2:?--rounds N}; shift ;;
	--low-rate) LOW_RATE=${2:?--low-rate R}; shift ;;
	--high-rate) HIGH_RATE=${2:?--high-rate R}; shift ;;
	-h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) bench_die "unknown option $1 (see --help)" ;;
	esac
	shift
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $LOW_RATE =~ ^[1-9][0-9]*$ && $HIGH_RATE =~ ^[1-9][0-9]*$ ]] ||
	bench_die "--rounds, --low-rate and --high-rate take positive whole numbers"
((LOW_RATE < HIGH_RATE)) || bench_die "--low-rate ($LOW_RATE) must be below --high-rate ($HIGH_RATE)"
[[ $(id -u) -eq 0 ]] || bench_die "needs root (network namespaces, XDP, bpffs); run it as root"
[[ -z $JSON ]] || JSON=$(realpath -m "$JSON")

# ------------------------------------------------------------------ the rig

# The second path: client -> router without XDP -> vm1, for requests from
# DIRECT_PORT only; everything else keeps the rig's routes.
bench_direct_path() {
	local if_client=${E2E_ID}dc if_router=${E2E_ID}dr router_mac
	e2e_veth "$E2E_NS_CLIENT" "$if_client" "$E2E_NS_ROUTER" "$if_router"
	# The client computes whole UDP checksums, as on its first link.
	ip netns exec "$E2E_NS_CLIENT" ethtool -K "$if_client" tx off >/dev/null
	router_mac=$(e2e_mac "$E2E_NS_ROUTER" "$if_router")
	# Client: the VIP through the second link (no address there; a static
	# neighbour, since the router answers no ARP on it for a forwarded VIP).
	ip -n "$E2E_NS_CLIENT" route add "$E2E_VIP4/32" dev "$if_client" table "$DIRECT_TABLE"
	ip -n "$E2E_NS_CLIENT" neigh replace "$E2E_VIP4" lladdr "$router_mac" dev "$if_client" nud permanent
	ip -n "$E2E_NS_CLIENT" rule add ipproto udp sport "$DIRECT_PORT" lookup "$DIRECT_TABLE" pref 100
	# Router: what arrives on the second link goes to vm1, though the VIP is
	# local here: that rule comes before the local table, moved from 0 to 20.
	ip -n "$E2E_NS_ROUTER" route add "$E2E_VIP4/32" via 203.0.113.2 dev "$E2E_IF_R1" table "$DIRECT_TABLE"
	ip -n "$E2E_NS_ROUTER" rule add iif "$if_router" lookup "$DIRECT_TABLE" pref 10
	ip -n "$E2E_NS_ROUTER" rule add lookup local pref 20
	ip -n "$E2E_NS_ROUTER" rule del lookup local pref 0
	e2e_sysctl "$E2E_NS_ROUTER" "net.ipv4.conf.$if_router.rp_filter" 0
}

bench_setup() {
	e2e_init
	e2e_topology
	e2e_tetherd_start
	e2e_agent_start vm1 --function "$FUNCTION:1" --handler served-by
	e2e_agent_wait_warm vm1 1
	bench_direct_path
	read -r SLOT TOKEN NAME < <(e2e_ctl --json container list --backend vm1 |
		jq -r '.[0] | "\(.container) \(.token) \(.name)"')
	[[ $TOKEN =~ ^[0-9a-f]{32}$ ]] || bench_die "no token for vm1's container (tetherctl container list)"
}

# ------------------------------------------------------------------ runs

token_hits() {
	e2e_ctl --json stats | jq '.[] | select(.part == "dataplane") | .token_hit'
}

# One udp_load run: PATH (tether, direct) RATE SECONDS ROUND. Its summary
# goes to $TMP/PATH-RATE-ROUND.json, its trace beside it; checks what came.
run_case() {
	local path=$1 rate=$2 seconds=$3 round=$4 name=$1-$2-$4 args hits_before hits out
	args=(--function "$FUNCTION" --token "$TOKEN" --rate "$rate" --duration-s "$seconds"
		--timeout-ms 1000 --per-container --json --trace "$TMP/$name.trace")
	[[ $path == tether ]] || args+=(--stamped "$TOKEN" --source-port "$DIRECT_PORT")
	hits_before=$(token_hits)
	e2e_load "${args[@]}" >"$TMP/$name.json" || bench_die "udp_load failed ($path, $rate/s)"
	hits=$(($(token_hits) - hits_before))
	out=$(jq -c --arg path "$path" --argjson rate "$rate" --argjson round "$round" \
		--argjson hits "$hits" '. + {path: $path, rate: $rate, round: $round, token_hits: $hits}' \
		"$TMP/$name.json")
	echo "$out" >>"$TMP/runs.jsonl"
	jq -r '"bench_latency: round \(.round) \(.path) \(.rate)/s: sent \(.sent), lost \(.lost), p50 \(.p50_us) us, p99 \(.p99_us) us, p999 \(.p999_us) us"' <<<"$out" >&2
	# Answered wrongly: not OK, invalid, or by another container than asked.
	jq -e --argjson slot "$SLOT" '.ok == .answered and .invalid == 0 and .duplicate == 0 and
		all(.per_container[]; .container == $slot)' <<<"$out" >/dev/null ||
		WRONG+=("$path $rate/s round $round: $(jq -c '{ok, answered, invalid, duplicate, per_container}' <<<"$out")")
	if [[ $path == direct ]]; then
		((hits == 0)) || bench_die "the direct path went through Tether's XDP program ($hits token hits)"
	else
		# Every answered request went through Tether (a request lost on the
		# way in, on a busy machine, may not have reached it).
		jq -e --argjson hits "$hits" '.answered <= $hits and $hits <= .sent' <<<"$out" >/dev/null ||
			bench_die "Tether counted $hits token hits for $(jq -r '"\(.sent) requests sent, \(.answered) answered"' <<<"$out")"
	fi
}

# Latency percentiles over the OK answers of every round of PATH at RATE:
# a JSON object (nearest rank, as udp_load).
pooled() {
	cat "$TMP/$1-$2"-*.trace | sed -n 's/.* latency_us=\([0-9]*\) status=ok .*/\1/p' | sort -n |
		awk 'function at(q,  r) { r = int(n * q); if (r < n * q) r++; return v[r < 1 ? 1 : r] }
			{ v[++n] = $1; sum += $1 }
			END { printf "{\"answers\":%d,\"p50_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"max_us\":%d,\"mean_us\":%.1f}\n",
				n, at(0.5), at(0.99), at(0.999), v[n], n ? sum / n : 0 }'
}

# ------------------------------------------------------------------ main

main() {
	local round rate seconds path order
	bench_setup
	TMP=$E2E_LOG_DIR
	WRONG=()
	: >"$TMP/runs.jsonl"
	echo "bench_latency: $E2E_ID: container $SLOT ($NAME) of function $FUNCTION on vm1; $ROUNDS round(s)" >&2
	# A short warm-up of both paths (ARP, caches, the container's first requests).
	e2e_load --function "$FUNCTION" --token "$TOKEN" --count 50 --rate 500 >/dev/null
	e2e_load --function "$FUNCTION" --token "$TOKEN" --stamped "$TOKEN" --source-port "$DIRECT_PORT" \
		--count 50 --rate 500 >/dev/null
	LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
	for ((round = 1; round <= ROUNDS; round++)); do
		order="tether direct"
		((round % 2)) || order="direct tether"
		for rate in "$LOW_RATE" "$HIGH_RATE"; do
			seconds=$LOW_SECONDS
			[[ $rate == "$HIGH_RATE" ]] && seconds=$HIGH_SECONDS
			for path in $order; do
				run_case "$path" "$rate" "$seconds" "$round"
			done
		done
	done

	LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
	local rows=()
	for rate in "$LOW_RATE" "$HIGH_RATE"; do
		for path in tether direct; do
			rows+=("$(jq -sc --arg path "$path" --argjson rate "$rate" --argjson pooled "$(pooled "$path" "$rate")" '
				map(select(.path == $path and .rate == $rate)) |
				{path: $path, rate: $rate, sent: (map(.sent) | add), answered: (map(.answered) | add),
				 lost: (map(.lost) | add), ok: (map(.ok) | add), token_hits: (map(.token_hits) | add)}
				+ $pooled + {rounds: map(del(.per_container))}' "$TMP/runs.jsonl")")
		done
	done
	printf '%s\n' "${rows[@]}" | jq -s --argjson rounds "$ROUNDS" --argjson low "$LOW_RATE" \
		--argjson high "$HIGH_RATE" --argjson low_s "$LOW_SECONDS" --argjson high_s "$HIGH_SECONDS" \
		--arg container "$SLOT ($NAME)" --argjson load_start "$LOAD_START" --argjson load_end "$LOAD_END" '
		def ratio(a; b): if b == 0 then null else a / b end;
		def median: sort | if length % 2 == 1 then .[length / 2 | floor]
			else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		# Tether minus direct within each round (udp_load figures), median over rounds.
		def round_diffs($rate): [.[] | select(.rate == $rate) | .rounds[]] | group_by(.round)
			| map(INDEX(.path)) | map(select(.tether and .direct));
		def median_diff($rate; f): [round_diffs($rate)[] | (.tether | f) - (.direct | f)] | median;
		{config: {rounds: $rounds, rates: [$low, $high], seconds_per_round: {($low | tostring): $low_s, ($high | tostring): $high_s},
			  container: $container, handler: "served-by", cpus: '"$(nproc)"',
			  loadavg_1min_start: $load_start, loadavg_1min_end: $load_end,
			  tether_path: "client -> router (Tether XDP: token check, stamp, MAC rewrite, redirect) -> vm1",
			  direct_path: "client -> second veth -> router (no XDP; kernel IP forwarding by a policy route) -> vm1; the frame stamped by the client as the router would (udp_load --stamped)",
			  reply_path: "vm1 -> router (kernel forwarding) -> client, both paths (DSR)",
			  method: "latency = send to answer in the client (udp_load); percentiles over all rounds (nearest rank); each round runs both paths back to back in alternating order"},
		 rows: .,
		 comparisons: [group_by(.rate)[] | (map(select(.path == "tether"))[0]) as $t | (map(select(.path == "direct"))[0]) as $d |
			{rate: $t.rate,
			 p50_diff_us: ($t.p50_us - $d.p50_us), p99_diff_us: ($t.p99_us - $d.p99_us),
			 p999_diff_us: ($t.p999_us - $d.p999_us), mean_diff_us: ($t.mean_us - $d.mean_us),
			 p50_ratio: ratio($t.p50_us; $d.p50_us), p99_ratio: ratio($t.p99_us; $d.p99_us),
			 p999_ratio: ratio($t.p999_us; $d.p999_us)} as $c
			| $c + {median_of_round_diffs_us: {p50: median_diff($c.rate; .p50_us), p99: median_diff($c.rate; .p99_us),
							   p999: median_diff($c.rate; .p999_us)}}]}' >"$TMP/result.json"

	{
		printf '\nRequest latency, send to answer in the client (us): container %s of function %s on vm1\n' \
			"$SLOT ($NAME)" "$FUNCTION"
		printf '(tether-agent, served-by handler); %s round(s); percentiles over all rounds\n' "$ROUNDS"
		printf '  Tether: client -> router, Tether XDP (token check, stamp, redirect) -> vm1\n'
		printf '  direct: client -> router, kernel forwarding (no XDP) -> vm1, frame stamped by the client\n'
		printf '  replies: vm1 -> router (kernel forwarding) -> client on both paths\n\n'
		printf '%-8s %-16s %8s %5s %7s %7s %7s %7s %7s\n' rate path answers lost mean p50 p99 p999 max
		jq -r '.rows as $rows | .comparisons[] | . as $c | ($rows | map(select(.rate == $c.rate))) as $r |
			($r[] | select(.path == "tether")) as $t | ($r[] | select(.path == "direct")) as $d |
			def r2: if . == null then "-" else (. * 100 | round / 100 | tostring + "x") end;
			def sign: if . > 0 then "+\(.)" else tostring end;
			["\($c.rate)/s", "Tether", $t.answers, $t.lost, ($t.mean_us | round), $t.p50_us, $t.p99_us, $t.p999_us, $t.max_us],
			["", "direct", $d.answers, $d.lost, ($d.mean_us | round), $d.p50_us, $d.p99_us, $d.p999_us, $d.max_us],
			["", "Tether - direct", "", "", ($c.mean_diff_us | round | sign), ($c.p50_diff_us | sign),
			 ($c.p99_diff_us | sign), ($c.p999_diff_us | sign), ""],
			["", "Tether / direct", "", "", "", ($c.p50_ratio | r2), ($c.p99_ratio | r2), ($c.p999_ratio | r2), ""],
			["", "diff by round*", "", "", "", ($c.median_of_round_diffs_us.p50 | round | sign),
			 ($c.median_of_round_diffs_us.p99 | round | sign), ($c.median_of_round_diffs_us.p999 | round | sign), ""]
			| map(tostring) | join("|")' "$TMP/result.json" |
			while IFS='|' read -r rate path answers lost mean p50 p99 p999 max; do
				printf '%-8s %-16s %8s %5s %7s %7s %7s %7s %7s\n' "$rate" "$path" "$answers" "$lost" \
					"$mean" "$p50" "$p99" "$p999" "$max"
			done
		printf '\n* Tether - direct within each round (the two back to back), median over the rounds: less\n'
		printf '  sensitive to bursts of other work on the machine than the figures over all rounds\n'
		printf 'machine: %s CPUs, 1-minute load average %s at the start, %s at the end (other work on it\n' \
			"$(nproc)" "$LOAD_START" "$LOAD_END"
		printf 'raises the tails, p99 and p999, by milliseconds)\n'
		printf 'Tether token hits: %s in the Tether runs (one per request that reached the router), %s in the direct runs\n' \
			"$(jq '[.rows[] | select(.path == "tether") | .token_hits] | add' "$TMP/result.json")" \
			"$(jq '[.rows[] | select(.path == "direct") | .token_hits] | add' "$TMP/result.json")"
	}
	[[ -z $JSON ]] || cp "$TMP/result.json" "$JSON"
	if ((${#WRONG[@]})); then
		printf 'bench_latency: answered wrongly: %s\n' "${WRONG[@]}" >&2
		exit 1
	fi
	echo "bench_latency: done in $SECONDS s${JSON:+; JSON in $JSON}" >&2
}

main
