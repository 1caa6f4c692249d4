#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make bench` in --quick mode, as a smoke test in `make test`: every bench
# runs end to end on small populations, each data-plane case's counter moved
# once per packet (bench_dataplane exits 1 otherwise), the "in turn with"
# rows carry both medians, their ratio and their difference, forwarding
# delivered packets to the right containers only (with limits and DONEs
# flowing back too, the DONEs taken; to routed backends through a transit,
# VXLAN and IPIP sent by Tether's XDP, none to the slow path), power of two
# choices measured beside the table order, and every JSON file has the
# figures the README's tables are made of. Timings are printed, never
# asserted: the machine is shared.
set -uo pipefail
build=${BUILD:-build}
scratch=$(mktemp -d /tmp/tether-bench-quick-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
count=0
failed=0

ok() {
	count=$((count + 1))
	echo "ok $count - $*"
}

not_ok() {
	count=$((count + 1))
	failed=$((failed + 1))
	echo "not ok $count - $*"
}

# NAME JSON JQ-CHECK COMMAND...: runs the bench, then checks its JSON.
bench() {
	local name=$1 json=$2 check=$3
	shift 3
	echo "# $name: $*"
	if ! "$@" > "$scratch/$name.log" 2>&1; then
		sed 's/^/#   /' "$scratch/$name.log"
		not_ok "$name ran (exit status above)"
		return
	fi
	sed 's/^/#   /' "$scratch/$name.log"
	if jq -e "$check" "$json" > /dev/null 2>&1; then
		ok "$name: ran, JSON has its figures"
	else
		not_ok "$name: JSON $json lacks its figures (check: $check)"
	fi
}

command -v jq > /dev/null || { echo "not ok - jq is not installed (make deps)"; exit 1; }

bench dataplane "$scratch/dataplane.json" \
	'(.cases | length) >= 78 and all(.cases[]; .ns_per_packet > 0) and
	 ([.cases[] | select(.case | startswith("baseline: "))] | length) >= 6 and
	 any(.cases[]; .case | startswith("floor: direct-mapped line")) and
	 ([.cases[] | select(.cpus == 2)] | length) >= 5 and
	 all(.cases[] | select(.cpus == 2); .per_cpu_vs_one > 0) and
	 ([.cases[] | select(.case | endswith("P2C"))] | length) >= 4 and
	 ([.cases[] | select(.in_turn_with)] | length) == 10 and
	 ([.cases[] | select(.in_turn_with) | select(.case | test("one-armed|out another port"))]
	  | length) == 8 and
	 all(.cases[] | select(.in_turn_with); .ratio > 0 and .other_ns > 0 and .added_ns != null) and
	 (.balance.rows | length) >= 14 and all(.balance.rows[]; .sent > 0 and .forwarded > 0) and
	 ([.balance.rows[] | select(.order == "p2c")] | length) == ([.balance.rows[] | select(.order == "table")] | length)' \
	"$build/tools/bench_dataplane" --quick --json "$scratch/dataplane.json"
bench control "$scratch/control.json" \
	'.figures | length >= 20 and all(.[]; .value >= 0)' \
	"$build/tools/bench_control" --quick --json "$scratch/control.json"
bench metrics "$scratch/metrics.json" \
	'.figures | length >= 10 and all(.[]; .value >= 0)' \
	"$build/tools/bench_metrics" --quick --json "$scratch/metrics.json"
bench hash "$scratch/hash.json" \
	'(.disruption | length) >= 6 and all(.disruption[]; .leave_pct > 0) and
	 ([.disruption[] | select(.algorithm == "dxhash")] | all(.[]; .leave_pct == .leave_min_pct)) and
	 (.shrink | length) == 3 and (.bpf.rows | length) >= 5 and
	 all(.bpf.rows[]; .dxhash_varied_ns > 0)' \
	"$build/tools/bench_hash" --quick --json "$scratch/hash.json"
bench forward "$scratch/forward.json" \
	'([.rows[] | select(.row | startswith("tether"))] | length == 6 and
	  all(.[]; .right_share == 1 and .delivered_pps > 0)) and
	 ([.rows[] | select(.row | endswith("limit + DONEs"))] | length == 3 and
	  all(.[]; .tether_counters.done > 0 and .vs_same_mix > 0)) and
	 ([.rows[] | select(.row == "bare XDP forwarder, DONEs")] | length == 1 and
	  all(.[]; .right_share == 1 and .delivered_pps > 0))' \
	env BUILD="$build" tools/bench_forward.sh --quick --json "$scratch/forward.json"
bench forward_encap "$scratch/forward_encap.json" \
	'(.modes | length) == 5 and
	 all(.modes[]; .tether.wrong == 0 and .bare.wrong == 0 and .tether.right > 0 and .bare.right > 0) and
	 ([.modes[] | select(.encap != "l2") | .tether.tether_counters] | all(.[];
	  (.encap_vxlan // 0) + (.encap_ipip // 0) > 0 and
	  ((.fib_no_route // 0) + (.fib_no_neigh // 0) + (.too_big // 0) + (.encap_slow // 0) +
	   (.encap_failed // 0)) == 0))' \
	env BUILD="$build" tools/bench_forward_encap.sh --quick --json "$scratch/forward_encap.json"
bench socket "$scratch/socket.json" \
	'.control_socket | length == 3 and all(.[]; .add_per_s > 0 and .up_per_s > 0 and .del_per_s > 0)' \
	env BUILD="$build" tools/bench_socket.sh --quick --json "$scratch/socket.json"
bench latency "$scratch/latency.json" \
	'[.rows[] | select(.path == "tether" or .path == "direct")] | length >= 4 and all(.[]; .answered > 0)' \
	env BUILD="$build" tools/bench_latency.sh --quick --json "$scratch/latency.json"
bench converge "$scratch/converge.json" \
	'.rows | length == 4 and all(.[]; .trials >= 1 and .converge_from_start_ms_median != null)' \
	env BUILD="$build" tools/bench_converge.sh --quick --json "$scratch/converge.json"
bench admission "$scratch/admission.json" \
	'(.rows | length) == 3 and all(.rows[]; .legit.sent > 0 and .legit.p99_us > 0) and
	 ([.rows[] | select(.case != "none")] | all(.[]; .flood.sent > 0)) and
	 ([.rows[] | select(.case == "on")] | all(.[]; .router.shed > 0)) and
	 ([.rows[] | select(.case == "off")] | all(.[]; .router.shed == 0)) and
	 .shed_ns_per_packet["shed: answered OVERLOADED in place"] > 0' \
	env BUILD="$build" tools/bench_admission.sh --quick --json "$scratch/admission.json"
bench agent_rate "$scratch/agent_rate.json" \
	'(.agent_rate | length) == 3 and all(.agent_rate[]; .paced.p99_us > 0 and .paced.overloaded == 0) and
	 ([.agent_rate[] | select(.case == "flood_on")] | all(.[]; .flood.overloaded > 0)) and
	 ([.agent_rate[] | select(.case == "flood_off")] | all(.[]; .flood.overloaded == 0 and .flood.ok > 0))' \
	env BUILD="$build" tools/bench_agent_rate.sh --quick --json "$scratch/agent_rate.json"
bench hotkey "$scratch/hotkey.json" \
	'.rows | length == 2 and all(.[]; .answered > 0 and .p99_us > 0)' \
	env BUILD="$build" tools/bench_hotkey.sh --quick --json "$scratch/hotkey.json"
bench fleet "$scratch/fleet.json" \
	'.sync.applied == .sync.containers and .adds_per_s.one_router > 0 and
	 .convergence_ms.p50 > 0 and .token_hit_ns.fleet > 0 and .token_hit_ns.single > 0' \
	env BUILD="$build" tools/bench_fleet.sh --quick --json "$scratch/fleet.json"

echo "1..$count"
((failed == 0))
