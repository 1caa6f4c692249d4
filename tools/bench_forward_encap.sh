#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Forwarding throughput to routed backends (issue 12): packets per second
# through a transit namespace for each forwarding mode (L2; VXLAN and IPIP,
# outer IPv4 and IPv6), Tether against a bare XDP encapsulating forwarder
# (the ceiling), and the share of what was sent that the sinks counted as
# delivered to the right container.
#
#   tools/bench_forward_encap.sh [--quick] [--json FILE] [--rounds N]
#                                [--seconds S] [--cpu N]
#
#   gen ns:  <id>g ──veth──▶ <id>r  (router ns: the router under test on <id>r)
#                                    <id>T ──veth──▶ <id>t  (transit ns: XDP switch/router)
#                                                            <id>X0..3 ──veth──▶ <id>B0..3
#                                                              (backend ns 0..3: counting sink, XDP)
#
# The generator, the traffic and the sinks' judgement are tools/bench_forward.sh's
# (see its header): live XDP frames from the generator's namespace, 128 bytes,
# 16384 client flows, 4,096 containers in 256 functions on 4 backends; every
# row here sends the token mix (each flow presents a container's token). The
# sinks (tools/bench/forward_sink.bpf.c, loaded with decap) take the outer
# headers off first: Ethernet + outer IPv4/IPv6 + UDP + VXLAN + inner
# Ethernet, or Ethernet + outer IPv4/IPv6 (IPIP); then the same check.
#
# The transit is not the kernel's stack (too slow: it would be the figure)
# but an XDP program on <id>t (fwd_transit in tools/bench/forward_xdp.bpf.c):
# a frame to the transit's own MAC is routed by its (outer) destination
# address, one hash lookup in a static table (forward_ctl transit: each
# backend's 10.20.B.2 and fd20:B::2 -> <id>XB, the sink's MAC), its MACs
# rewritten (no TTL, no checksum: nothing downstream verifies one), and
# redirected; any other frame is switched by its destination MAC (one lookup).
#
# Rows, two per mode, the router under test on <id>r:
#   tether l2       Tether's L2 backends: ifindex <id>T, the sinks' MACs; the
#                   transit switches them by MAC. L2 goes through the same
#                   transit as the routed modes, so every row pays the same
#                   hops (and is not comparable with bench_forward's L2 rows,
#                   which go from the router straight to the backends).
#   bare l2         bench_forward's bare forwarder (fwd_bare), the same path.
#   tether vxlan4   Tether's routed backends (forward_ctl mode: the backend
#   tether ipip4    records rewritten between rows: encap, VNI 4242 + index,
#   tether vxlan6   the address of the family), the next hop from the kernel's
#   tether ipip6    FIB in the router namespace (10.20.0.0/16 and fd20::/16 via
#                   the transit on <id>T, its neighbour entries permanent),
#                   cached per CPU and backend for 50 ms as in production;
#                   outer source 172.16.0.1 / fd10::1 (encap_config).
#   bare vxlan4...  fwd_bare_vxlan / fwd_bare_ipip: parse, one array lookup on
#                   the token's slot giving precomputed outer headers, pushed
#                   with the lengths added in (and the outer IPv4 checksum, by
#                   RFC 1624's update), redirect. No FIB, no hash, no
#                   validation, the outer UDP checksum 0 (over IPv6 too, which
#                   Tether computes): the ceiling.
# "tether÷bare" is a mode's Tether row over its bare row, best rounds (and
# the median of the per-round ratios). "delivered" is what the sinks counted
# as reaching the right container over what the generator sent, all rounds;
# "wrong" what they counted at the wrong one (must be 0). The Tether rows'
# decision counters are in the JSON; any that sent frames to the slow path
# (no route, no neighbour, too big) are printed as a warning.
#
# Cores, rounds and best round: as tools/bench_forward.sh (one core, --cpu,
# runs the generator, the router, the transit and the sinks; a row's figure
# is its best round, medians in the JSON; CPU 1's load is printed as a sign
# of other work). Full: 8 rounds of 1 s (about 2 minutes); --quick: 1 round
# of 0.5 s (about 15 s). Prints the table and, with --json FILE, writes the
# same as JSON. Needs root.
set -euo pipefail

FWD_NAME=bench_forward_encap
source "$(dirname "${BASH_SOURCE[0]}")/bench/forward_lib.sh"
QUICK_SECONDS=0.5 VNI=4242
TRANSIT_MAC=02:54:00:00:0e:01
ENCAP_SOURCE4=172.16.0.1 ENCAP_SOURCE6=fd10::1 NEXT_HOP4=172.16.0.2 NEXT_HOP6=fd10::2
MODES=(l2 vxlan4 ipip4 vxlan6 ipip6)

fwd_parse_options "$@"
fwd_preflight
fwd_names
NS_TRANSIT=$ID-transit
IF_OUT=${ID}T     # the router's way to the transit
IF_TRANSIT=${ID}t # the transit's end (fwd_transit)

# --------------------------------------------------------------- topology
topology() {
	local b mac
	fwd_gen_router
	ip netns add "$NS_TRANSIT"
	quiet_ns "$NS_TRANSIT"
	ip link add "$IF_OUT" netns "$NS_RTR" type veth peer name "$IF_TRANSIT" netns "$NS_TRANSIT" \
		address "$TRANSIT_MAC"
	in_ns "$NS_TRANSIT" ip link set "$IF_TRANSIT" up
	# IPv6 on the transit link only (the FIB's outer IPv6 routes), without
	# autoconfiguration: no link-local address, no DAD, no chatter.
	in_ns "$NS_RTR" ip link set "$IF_OUT" addrgenmode none
	in_ns "$NS_RTR" sysctl -qw "net.ipv6.conf.$IF_OUT.disable_ipv6=0" net.ipv6.conf.all.forwarding=1
	in_ns "$NS_RTR" ip link set "$IF_OUT" up
	in_ns "$NS_RTR" ip addr add "$ENCAP_SOURCE4/24" dev "$IF_OUT"
	in_ns "$NS_RTR" ip -6 addr add "$ENCAP_SOURCE6/64" dev "$IF_OUT" nodad
	in_ns "$NS_RTR" ip route add 10.20.0.0/16 via "$NEXT_HOP4" dev "$IF_OUT"
	in_ns "$NS_RTR" ip -6 route add fd20::/16 via "$NEXT_HOP6" dev "$IF_OUT"
	# The transit answers no ARP or ND (XDP): static neighbours.
	in_ns "$NS_RTR" ip neigh replace "$NEXT_HOP4" lladdr "$TRANSIT_MAC" dev "$IF_OUT" nud permanent
	in_ns "$NS_RTR" ip -6 neigh replace "$NEXT_HOP6" lladdr "$TRANSIT_MAC" dev "$IF_OUT" nud permanent
	ROUTER_BACKENDS=() TRANSIT_BACKENDS=()
	for ((b = 0; b < BACKENDS; b++)); do
		fwd_backend "$b" "$NS_TRANSIT" "${ID}X$b"
		mac=02:54:00:00:0b:0$b
		ROUTER_BACKENDS+=(--backend "$IF_OUT,$mac,10.20.$b.2,fd20:$b::2")
		TRANSIT_BACKENDS+=(--backend "${ID}X$b,$mac,10.20.$b.2,fd20:$b::2")
	done
}

setup() {
	fwd_setup "${ROUTER_BACKENDS[@]}" --encap-source "$ENCAP_SOURCE4" --encap-source "$ENCAP_SOURCE6"
	in_ns "$NS_TRANSIT" "$CTL" transit --pin "$PIN" --transit-if "$IF_TRANSIT" "${TRANSIT_BACKENDS[@]}"
	in_ns "$NS_TRANSIT" ip link set dev "$IF_TRANSIT" xdpdrv pinned "$PIN/prog_transit"
}

# ------------------------------------------------------------------- rows
ROWS=()
for mode in "${MODES[@]}"; do
	ROWS+=("tether $mode" "bare $mode")
done
CURRENT_MODE=

set_mode() { # l2, vxlan4, ipip6...: Tether's backends and the bare table
	local mode=${1%[46]} family=${1#"${1%[46]}"} via=()
	[[ $1 == "$CURRENT_MODE" ]] && return
	[[ -n $family ]] && via=(--family "$family" --via "$TRANSIT_MAC")
	in_ns "$NS_RTR" "$CTL" mode --pin "$PIN" --mode "$mode" "${via[@]}" --vni "$VNI" \
		"${ROUTER_BACKENDS[@]}" --functions "$FUNCTIONS" --per-function "$PER_FUNCTION"
	CURRENT_MODE=$1
}

measure() { # "tether MODE" or "bare MODE" -> one JSON line in $TMP/run.json
	local router=${1%% *} mode=${1#* }
	set_mode "$mode"
	case $router/$mode in
	tether/*) attach_router prog_tether ;;
	bare/l2) attach_router prog_bare ;;
	bare/vxlan*) attach_router prog_bare_vxlan ;;
	bare/ipip*) attach_router prog_bare_ipip ;;
	*) die "no row $1" ;;
	esac
	generate token
}

# ------------------------------------------------------------------- main
echo "$FWD_NAME: $ID: topology, Tether and the programs ($((FUNCTIONS * PER_FUNCTION)) containers in $FUNCTIONS functions on $BACKENDS backends behind a transit, $FLOWS flows)" >&2
topology
setup
fwd_rounds "${ROWS[@]}"

# One object per row (its best round, the median of its rounds, what the
# sinks counted over all rounds), and per mode Tether's over the bare
# forwarder's: best rounds, and the median of the per-round ratios.
jq -s --argjson rounds "$ROUNDS" --argjson seconds "$SECONDS_PER_RUN" --argjson gen_cpu "$GEN_CPU" \
	--argjson flows "$FLOWS" --argjson functions "$FUNCTIONS" --argjson per_function "$PER_FUNCTION" \
	--argjson backends "$BACKENDS" --arg modes "${MODES[*]}" "$FWD_JQ_MEDIAN"'
	def total(f): map(f) | add;
	. as $runs
	| ($runs | group_by(.round) | map(INDEX(.row) | map_values(.delivered_pps))) as $by_round
	| ($runs | group_by(.row) | map(
		(max_by(.delivered_pps)) as $best | {
		row: .[0].row,
		router: (.[0].row | split(" ")[0]),
		mode: (.[0].row | split(" ")[1]),
		offered_pps: $best.offered_pps,
		delivered_pps: $best.delivered_pps,
		delivered_pps_median: (map(.delivered_pps) | median),
		delivered_pps_rounds: map(.delivered_pps),
		sent: total(.sent),
		right: total(.right),
		wrong: total(.wrong),
		delivered_share: (total(.right) / (total(.sent) | if . == 0 then 1 else . end)),
		ns_per_packet: (1e9 / $best.delivered_pps),
		other_cpu_busy_median: (map(.other_cpu_busy) | median),
		tether_counters: (map(.tether) | reduce .[] as $t ({}; reduce ($t | to_entries[]) as $e (.; .[$e.key] += $e.value)))
	}) | INDEX(.row)) as $by
	| {
		config: {rounds: $rounds, seconds_per_round: $seconds, cpu: $gen_cpu, flows: $flows,
			 functions: $functions, containers: ($functions * $per_function), backends: $backends,
			 frame_bytes: 128, mix: "token",
			 method: "generator, router, XDP transit and sinks on one core; every mode through the transit; a row is its best round (medians alongside); delivered = right / sent over all rounds"},
		rows: [$by[]],
		modes: [ $modes | split(" ")[] as $m
			| {mode: $m,
			   encap: ($m | sub("[46]$"; "")),
			   outer: (if ($m | endswith("4")) then "IPv4" elif ($m | endswith("6")) then "IPv6" else null end),
			   tether: $by["tether " + $m], bare: $by["bare " + $m],
			   tether_over_bare: ($by["tether " + $m].delivered_pps / $by["bare " + $m].delivered_pps),
			   tether_over_bare_median_of_rounds:
				([$by_round[] | .["tether " + $m] / .["bare " + $m]] | median)} ]
	}' "$TMP/runs.jsonl" >"$TMP/result.json"

# The table.
{
	printf '\nForwarding through a transit: %s round(s) of %s s, token mix, %s flows, %s containers on %s backends, 128-byte frames\n' \
		"$ROUNDS" "$SECONDS_PER_RUN" "$FLOWS" "$((FUNCTIONS * PER_FUNCTION))" "$BACKENDS"
	printf 'generator + router + XDP transit + sinks together on CPU %s (closed loop). Mpps: best of %s rounds;\n' \
		"$GEN_CPU" "$ROUNDS"
	printf 'delivered: right / sent, all rounds; wrong: at the wrong container, all rounds\n\n'
	printf '%-6s %5s %12s %10s %13s %21s %13s\n' mode outer "tether Mpps" "bare Mpps" "tether÷bare" \
		"delivered tether/bare" "wrong t/b"
	jq -r '.modes[] | [.encap, (.outer // "-"),
		(.tether.delivered_pps / 1e6 * 1000 | round / 1000),
		(.bare.delivered_pps / 1e6 * 1000 | round / 1000),
		"\(.tether_over_bare * 100 | round)% (\(.tether_over_bare_median_of_rounds * 100 | round)%)",
		"\(.tether.delivered_share * 1000 | floor / 10)% / \(.bare.delivered_share * 1000 | floor / 10)%",
		"\(.tether.wrong) / \(.bare.wrong)"] | @tsv' "$TMP/result.json" |
		while IFS=$'\t' read -r mode outer tether bare ratio delivered wrong; do
			printf '%-6s %5s %12s %10s %13s %21s %13s\n' "$mode" "$outer" "$tether" "$bare" "$ratio" \
				"$delivered" "$wrong"
		done
	printf '(tether÷bare: best rounds, and in parentheses the median of the per-round ratios)\n'
	jq -r '.rows[] | select(.wrong > 0) |
		"WARNING: \(.row): \(.wrong) packets reached the wrong container"' "$TMP/result.json"
	jq -r '.rows[] | select(.router == "tether") | .row as $row
		| .tether_counters | to_entries[]
		| select(.key | IN("no_route", "fib_no_route", "fib_no_neigh", "too_big", "encap_slow", "encap_failed", "pass", "no_capacity"))
		| "WARNING: \($row): Tether counted \(.value) \(.key) (not forwarded by XDP)"' "$TMP/result.json"
} | tee "$TMP/table.txt"
[[ -n $JSON ]] && cp "$TMP/result.json" "$JSON"
echo "$FWD_NAME: done in $SECONDS s${JSON:+; JSON in $JSON}" >&2
