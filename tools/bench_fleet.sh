#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The fleet bench (make bench), on the rig of tests/e2e/fleet.sh: three routers,
# a three-member etcd, VMs with echo backends.
#
#   convergence   a container added through r1 until r3 answers by it: a
#                 client sends requests for a new function through r3 only
#                 (held by its slow path meanwhile); the first answer from the
#                 new container, minus the time the add was sent (p50/p99 ms)
#   write rate    containers added per second through one router, and through
#                 the three at once (four connections each, requests answered
#                 once committed and applied)
#   initial sync  N containers written into the store (tools/fleet_fill), then
#                 a new router started on them: seconds until it has read and
#                 applied them all, and its memory (VmHWM)
#   key agreement a set of keys sent through r1, then r2, then r3 (each router
#                 learns them in turn): the share of keys that reached the same
#                 container through all three, with no membership change, and
#                 with a container added between r1's turn and the others'
#                 (docs/store.md, "Placement across routers")
#   data plane    ns per token hit of a fleet router's XDP program against a
#                 single-host tetherd's, side by side (bpftool prog run,
#                 BPF_PROG_TEST_RUN, the same frame)
#
#   tools/bench_fleet.sh [--quick] [--json FILE]
#
# --quick: a few trials and 20,000 containers (make test's smoke run).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/tests/e2e/lib.sh"
source "$here/tests/e2e/fleet.sh"
# etcd over plain HTTP, as when the figures in the README were measured
# (the routers' listeners use TLS; nothing measured here crosses them).
FLEET_ETCD_PLAIN=1

QUICK=0
JSON=
while (($#)); do
	case $1 in
	--quick) QUICK=1 ;;
	--json) JSON=$2 && shift ;;
	*) echo "usage: tools/bench_fleet.sh [--quick] [--json FILE]" >&2 && exit 2 ;;
	esac
	shift
done
if ((QUICK)); then
	TRIALS=4 WRITES=120 SYNC_CONTAINERS=20000 RUN_REPEAT=100000 KEYS=200
else
	TRIALS=20 WRITES=600 SYNC_CONTAINERS=1000000 RUN_REPEAT=1000000 KEYS=2000
fi

# Percentile P (0-100) of the numbers on stdin (nearest rank).
percentile() {
	sort -n | awk -v p="$1" '{ v[NR] = $1 } END { i = int((NR * p + 99) / 100); if (i < 1) i = 1; print v[i] }'
}

# Microseconds as milliseconds, one decimal.
ms() {
	awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'
}

# --- convergence -------------------------------------------------------------------

converge_once() {
	local function=$1 trace=$E2E_LOG_DIR/conv-$1.trace sent_ns first_us
	nsenter --net="/var/run/netns/$(fleet_ns cl3)" "$E2E_LOAD" --vip "$FLEET_VIP:$FLEET_PORT" \
		--function "$function" --rate 2000 --duration-s 1 --timeout-ms 2500 \
		--trace "$trace" >/dev/null 2>&1 &
	local load=$!
	sleep 0.2
	sent_ns=$(date +%s%N)
	fleet_ctl r1 container add --function "$function" --backend vm2 --warm >/dev/null
	wait "$load" || true
	first_us=$(awk '$5 == "status=ok" { sub("answered_us=", "", $3); print $3 }' "$trace" |
		sort -n | head -n1)
	[[ -n $first_us ]] || e2e_die "no answer through r3 for function $function"
	echo $(((first_us * 1000 - sent_ns) / 1000)) # µs
}

bench_convergence() {
	local i samples=()
	for ((i = 0; i < TRIALS; i++)); do
		samples+=("$(converge_once $((5000 + i)))")
	done
	CONV_P50=$(ms "$(printf '%s\n' "${samples[@]}" | percentile 50)")
	CONV_P99=$(ms "$(printf '%s\n' "${samples[@]}" | percentile 99)")
	CONV_MAX=$(ms "$(printf '%s\n' "${samples[@]}" | percentile 100)")
}

# --- write rate ----------------------------------------------------------------------

# Adds $2 containers of function $3 through router $1 on four connections;
# every answer must be ok. Starting containers: the rate of the store path
# (a warm one also swaps its function's pool table on every router, which
# waits for an RCU grace period: the single-host bench measures that).
add_through() {
	local router=$1 n=$2 function=$3 c i
	for c in 0 1 2 3; do
		for ((i = c; i < n; i += 4)); do
			printf 'add container function=%s backend=vm%d\n' "$function" $((i % 3 + 1))
		done | socat -t 60 - "UNIX-CONNECT:$(fleet_socket "$router")" \
			>"$E2E_LOG_DIR/write-$router-$function-$c.out" &
	done
	wait
}

count_oks() {
	cat "$E2E_LOG_DIR"/write-*-"$1"-*.out | grep -c '^ok$' || true
}

bench_writes() {
	local started took
	started=$(date +%s%N)
	add_through r1 "$WRITES" 601
	took=$(($(date +%s%N) - started))
	[[ $(count_oks 601) == "$WRITES" ]] || e2e_die "adds through r1: $(count_oks 601) of $WRITES ok"
	WRITE_ONE=$((WRITES * 1000000000 / took))
	started=$(date +%s%N)
	for router in r1 r2 r3; do
		add_through "$router" $((WRITES / 3)) 602 &
	done
	wait
	took=$(($(date +%s%N) - started))
	[[ $(count_oks 602) == $((WRITES / 3 * 3)) ]] || e2e_die "adds through three routers failed"
	WRITE_THREE=$((WRITES / 3 * 3 * 1000000000 / took))
}

# --- initial sync ------------------------------------------------------------------------

bench_sync() {
	local fleet=${FLEET_NAME}s log=$E2E_LOG_DIR/tetherd-r4.log pid i
	fleet_in hub "$E2E_BUILD/tools/fleet_fill" --store "$FLEET_STORE" --fleet "$fleet" \
		--containers "$SYNC_CONTAINERS" --backends 1000 --functions 10000 \
		>"$E2E_LOG_DIR/fill.out" 2>&1 || e2e_die "fleet_fill: $(cat "$E2E_LOG_DIR/fill.out")"
	FILL=$(cat "$E2E_LOG_DIR/fill.out")
	fleet_node r4
	fleet_port r4 mgmt0 mgmt 10.99.0.14/24
	fleet_port r4 lan0 lan 192.0.2.14/24
	fleet_port r4 fab0 fab 203.0.113.14/24
	FLEET_ROUTERS+=(r4)
	nsenter --net="/var/run/netns/$(fleet_ns r4)" "$E2E_TETHERD" --iface lan0 \
		--vip "$FLEET_VIP:$FLEET_PORT" --pin-root "/sys/fs/bpf/$E2E_ID-r4" \
		--socket "$(fleet_socket r4)" --store "etcd=$FLEET_STORE" --fleet "$fleet" \
		--router-name r4 >"$log" 2>&1 &
	pid=$!
	disown "$pid"
	e2e_track "$pid"
	for ((i = 0; i < 6000; i++)); do
		grep -qs "read the state" "$log" && break
		e2e_alive "$pid" || e2e_die "tetherd r4 exited: $(tail -n3 "$log")"
		sleep 0.1
	done
	SYNC_MS=$(sed -n 's/.*read the state .* (\([0-9.]*\) ms).*/\1/p' "$log" | head -n1)
	[[ -n $SYNC_MS ]] || e2e_die "r4 did not read the store within 600 s"
	SYNC_HWM_KB=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
	SYNC_CONTAINERS_SEEN=$(fleet_ctl r4 --json container list | jq length)
	kill "$pid"
	e2e_wait_gone "$pid" 100 || true
}

# --- key agreement -------------------------------------------------------------------------

# "KEY SLOT" for keys BASE..BASE+N-1 sent once each through client $1 (one
# session: request i carries key BASE + i % N).
keys_through() {
	local client=$1 base=$2 n=$3 trace=$E2E_LOG_DIR/keys-$1-$2.trace
	fleet_load "$client" --function 7 --key "$base" --keys-per-session "$n" --sessions 1 \
		--count "$n" --rate 5000 --trace "$trace" >/dev/null
	awk -v base="$base" -v n="$n" '$5 == "status=ok" {
		seq = substr($1, 9); slot = substr($6, 11); print base + (seq - 1) % n, slot }' "$trace" |
		sort -n
}

# The share (percent, one decimal) of keys whose three lines agree.
agreement() {
	local a=$1 b=$2 c=$3
	join "$a" "$b" | join - "$c" |
		awk -v n="$4" '$2 == $3 && $3 == $4 { same++ } END { printf "%.1f", 100 * same / n }'
}

bench_key_agreement() {
	local n=$KEYS base=700000 dir=$E2E_LOG_DIR
	keys_through cl1 $base "$n" >"$dir/k1"
	keys_through cl2 $base "$n" >"$dir/k2"
	keys_through cl3 $base "$n" >"$dir/k3"
	AGREE_STILL=$(agreement "$dir/k1" "$dir/k2" "$dir/k3" "$n")
	base=800000
	keys_through cl1 $base "$n" >"$dir/c1"
	fleet_ctl r1 container add --function 7 --backend vm2 --name churn --warm >/dev/null
	fleet_wait_converged 100 || e2e_die "the routers disagree after the churn add"
	keys_through cl2 $base "$n" >"$dir/c2"
	keys_through cl3 $base "$n" >"$dir/c3"
	AGREE_CHURN=$(agreement "$dir/c1" "$dir/c2" "$dir/c3" "$n")
	AGREE_POOL=$(fleet_ctl r1 --json function show 7 | jq '.[0].pool')
}

# --- the data plane, side by side ------------------------------------------------------------

# ns per run of the program on interface lan0 of node $1, for frame file $2.
prog_ns() {
	local node=$1 frame=$2 id
	id=$(ip -n "$(fleet_ns "$node")" -j -d link show dev lan0 | jq -r '.[0].xdp.prog.id')
	bpftool prog run id "$id" data_in "$frame" repeat "$RUN_REPEAT" |
		sed -n 's/.*[Dd]uration[^0-9]*\([0-9]*\).*/\1/p'
}

bench_dataplane() {
	local token frame=$E2E_LOG_DIR/frame.bin single=$E2E_LOG_DIR/frame-single.bin runs=() i
	token=$(fleet_ctl r1 --json container list --function 7 | jq -r '.[0].token')
	"$E2E_BUILD/tools/bench/request_frame" --function 7 --token "$token" --out "$frame"
	# A single-host tetherd beside it, with one warm container of its own.
	fleet_node s1
	ip link add lan0 netns "$(fleet_ns s1)" type veth peer name fab0 netns "$(fleet_ns s1)"
	ip -n "$(fleet_ns s1)" link set lan0 up
	ip -n "$(fleet_ns s1)" link set fab0 up
	nsenter --net="/var/run/netns/$(fleet_ns s1)" "$E2E_TETHERD" --iface lan0 \
		--vip "$FLEET_VIP:$FLEET_PORT" --pin-root "/sys/fs/bpf/$E2E_ID-s1" \
		--socket "$(fleet_socket s1)" >"$E2E_LOG_DIR/tetherd-s1.log" 2>&1 &
	local pid=$!
	disown "$pid"
	e2e_track "$pid"
	e2e_socket_wait_ready "$pid" "$(fleet_socket s1)" "$E2E_LOG_DIR/tetherd-s1.log"
	FLEET_ROUTERS+=(s1)
	fleet_ctl s1 backend add vm1 --addr 203.0.113.21 --mac 02:00:00:00:00:21 --iface fab0 \
		--heartbeat-ms 3600000 >/dev/null
	token=$(fleet_ctl s1 --json container add --function 7 --backend vm1 --warm | jq -r .token)
	"$E2E_BUILD/tools/bench/request_frame" --function 7 --token "$token" --out "$single"
	for i in 1 2 3 4 5; do
		runs+=("$(prog_ns r1 "$frame") $(prog_ns s1 "$single")")
	done
	DP_FLEET=$(printf '%s\n' "${runs[@]}" | cut -d' ' -f1 | percentile 50)
	DP_SINGLE=$(printf '%s\n' "${runs[@]}" | cut -d' ' -f2 | percentile 50)
}

main() {
	local vm node
	E2E_QUIET=1
	fleet_init
	fleet_topology
	fleet_etcd_start
	for node in "${FLEET_ROUTERS[@]}"; do
		fleet_router_start "$node"
	done
	for vm in "${FLEET_VMS[@]}"; do
		fleet_backend_add "$vm" r1 --heartbeat-ms 4000 >/dev/null
		fleet_heartbeats "$vm" r1
		fleet_echo_start "$vm"
		fleet_ctl r1 container add --function 7 --backend "$vm" --warm >/dev/null
	done
	fleet_wait_converged 100 || e2e_die "the routers did not agree on the first state"
	bench_convergence
	bench_key_agreement
	bench_writes
	bench_dataplane
	bench_sync
	printf '\nFleet: three routers, a three-member etcd (one 2-vCPU VM, all in namespaces)\n\n'
	printf '| figure | value |\n|---|---|\n'
	printf '| convergence, add through r1 until r3 answers by it (%d trials) | p50 %s ms, p99 %s ms, max %s ms |\n' \
		"$TRIALS" "$CONV_P50" "$CONV_P99" "$CONV_MAX"
	printf '| keys on the same container through r1, r2 and r3 (%s keys) | %s%% without churn; %s%% with a container added between r1 and the others (pool of %s after it) |\n' \
		"$KEYS" "$AGREE_STILL" "$AGREE_CHURN" "$AGREE_POOL"
	printf '| container adds/s (starting) through one router (4 connections) | %s |\n' "$WRITE_ONE"
	printf '| container adds/s (starting) through three routers (4 connections each) | %s |\n' \
		"$WRITE_THREE"
	printf '| initial sync of %s containers into a new router | %.1f s, %s containers applied, VmHWM %s MiB (store written: %s) |\n' \
		"$SYNC_CONTAINERS" "$(awk -v ms="$SYNC_MS" 'BEGIN { print ms / 1000 }')" \
		"$SYNC_CONTAINERS_SEEN" $((SYNC_HWM_KB / 1024)) "$FILL"
	printf '| token hit, ns per run (BPF_PROG_TEST_RUN, median of 5 x %s) | fleet router %s, single host %s |\n' \
		"$RUN_REPEAT" "$DP_FLEET" "$DP_SINGLE"
	if [[ -n $JSON ]]; then
		printf '{"convergence_ms":{"p50":%s,"p99":%s,"max":%s,"trials":%s},"key_agreement_pct":{"keys":%s,"still":%s,"churn":%s,"pool":%s},"adds_per_s":{"one_router":%s,"three_routers":%s},"sync":{"containers":%s,"applied":%s,"ms":%s,"vmhwm_kib":%s},"token_hit_ns":{"fleet":%s,"single":%s}}\n' \
			"$CONV_P50" "$CONV_P99" "$CONV_MAX" "$TRIALS" "$KEYS" "$AGREE_STILL" "$AGREE_CHURN" \
			"$AGREE_POOL" "$WRITE_ONE" "$WRITE_THREE" \
			"$SYNC_CONTAINERS" "$SYNC_CONTAINERS_SEEN" "$SYNC_MS" "$SYNC_HWM_KB" "$DP_FLEET" \
			"$DP_SINGLE" >"$JSON"
	fi
}

main
