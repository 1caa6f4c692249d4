#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end tests of the VM agent with several tetherds (tether-agent
# --tetherd A,B): it talks to one and moves to the next when that one dies,
# is absent, falls silent, or answers `unavailable` (a fleet's router cut off
# from its store). Two tetherds cannot share one data plane; most tests run
# without a fleet store: B is the rig's tetherd (tests/e2e/lib.sh: its XDP on
# the client's link, so traffic checks the move end to end), A a tetherd of
# the test's own in the same router namespace (a veth pair and a pin root of
# its own), or a fake one (socat and a script answering the control
# protocol). All listen on TCP; the agent in vm1 reaches them at the
# router's address on its link. A move to B, which does not know the
# backend, registers everything again there. The last test runs two routers
# of one fleet on a throw-away etcd (tools/etcd-cluster.sh) and checks that a
# move between them changes nothing and lets no lease expire. Run as root:
#
#   tests/e2e/test_agent_failover.sh [TEST...]   (TEST: a name below, e.g. killed)
#
# TAP output ("ok N - name"), then "N passed, M failed" alone on the last
# line; the exit status is nonzero when a test failed.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The agent's: heartbeats every 667 ms, a move after 1 s of silence (a
# sanitized tetherd on a busy machine took over 500 ms to answer once).
HEARTBEAT_MS=2000
ROUTER=203.0.113.1      # the router's address on vm1's link
FUNCTION=71

# Milliseconds since the epoch.
now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

show() {
	sed 's/^/#     /' <<<"$1"
}

# --- tetherd A, of a test's own ----------------------------------------------------

# Starts tetherd A (tag TAG, 2 lowercase characters) on a veth of its own in the
# router namespace, a VIP of its own, its own pin root and socket, listening on
# TCP port A_PORT with the rig's secret. Sets A_PID, A_SOCK, A_PIN.
a_start() {
	local tag=$1 iface=${E2E_ID}$1
	A_PIN=$E2E_PIN_ROOT-$tag
	A_SOCK=$E2E_RUN_DIR/$tag.sock
	e2e_router_veth "$iface"
	trap a_stop EXIT # the test's subshell: A goes whatever happens
	e2e_tetherd_spawn "$tag" "$A_SOCK" --iface "$iface" --vip "198.51.100.21:$E2E_PORT" \
		--pin-root "$A_PIN" --socket "$A_SOCK" --tcp-listen "0.0.0.0:$A_PORT" --tcp-plain \
		--tcp-secret-file "$SECRET_FILE"
	A_PID=$E2E_SPAWN_PID
}

# vm1's agent gone, whatever state a failed test left it in (the next test's
# agent could not serve the VIP it holds).
agent_gone() {
	local pid
	pid=$(e2e_agent_pid vm1) || true
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	e2e_wait_gone "$pid" 50 || kill -KILL "$pid" 2>/dev/null || true
	rm -f "$E2E_RUN_DIR/agent_vm1.pid"
}

# EXIT trap of a test's subshell: vm1's agent gone, A stopped (woken first if
# stopped) and unloaded, the fake's process group ended.
a_stop() {
	agent_gone
	if [[ -n ${A_PID:-} ]] && e2e_alive "$A_PID"; then
		kill -CONT "$A_PID" 2>/dev/null || true
		kill -TERM "$A_PID" 2>/dev/null || true
		e2e_wait_gone "$A_PID" 30 || kill -KILL "$A_PID" 2>/dev/null || true
	fi
	if [[ -n ${A_PIN:-} && -e $A_PIN ]]; then
		"$E2E_TETHERD" --unload --pin-root "$A_PIN" >/dev/null 2>&1 || true
		rm -rf "$A_PIN"
	fi
	fake_stop
}

a_ctl() {
	"$E2E_TETHERCTL" --socket "$A_SOCK" "$@"
}

# --- a fake tetherd --------------------------------------------------------------

# A tetherd cut off from its fleet's store, as the agent sees it: it takes the
# connection and its auth, answers reads (list, show) with nothing and watch
# with ok, says add backend is ok, and answers `unavailable` to every other
# write. One bash per connection (socat fork), each request line logged to
# $E2E_LOG_DIR/fake.requests. Listens on A_PORT in the router namespace.
fake_start() {
	local script=$E2E_LOG_DIR/fake_tetherd.sh
	FAKE_REQUESTS=$E2E_LOG_DIR/fake.requests
	: >"$FAKE_REQUESTS"
	cat >"$script" <<-'EOF'
		#!/usr/bin/env bash
		# One connection of the fake tetherd: stdin and stdout are the socket.
		while IFS= read -r line; do
			line=${line%$'\r'}
			printf '%s\n' "$line" >>"$1"
			case $line in
			'auth agent'* | 'del backend'*) printf 'ok\n\n' ;;
			'watch event'*) printf 'ok\n' ;;
			'list '* | 'show '*) printf 'ok\n\n' ;;
			'add backend'*) printf 'ok\nbackend=vm1 id=1 state=up\n\n' ;;
			*) printf "error unavailable: the fleet's store cannot be reached (fake)\n\n" ;;
			esac
		done
	EOF
	trap a_stop EXIT
	# Its own process group (setsid), so that the connections' shells end with it.
	nsenter --net="/var/run/netns/$E2E_NS_ROUTER" setsid socat \
		"TCP-LISTEN:$A_PORT,reuseaddr,fork" "EXEC:bash $script $FAKE_REQUESTS" \
		2>>"$E2E_LOG_DIR/fake.log" &
	FAKE_PID=$!
	disown "$FAKE_PID"
	e2e_track_any "$FAKE_PID"
	local i
	for ((i = 0; i < 50; i++)); do
		e2e_in "$E2E_NS_ROUTER" ss -Hltn "sport = :$A_PORT" | grep -q . && return 0
		sleep 0.1
	done
	e2e_die "the fake tetherd does not listen on port $A_PORT"
}

fake_stop() {
	[[ -n ${FAKE_PID:-} ]] || return 0
	# The group setsid made: socat and the shells of its connections.
	kill -TERM -- "-$FAKE_PID" 2>/dev/null || true
	e2e_wait_gone "$FAKE_PID" 20 || kill -KILL -- "-$FAKE_PID" 2>/dev/null || true
	FAKE_PID=
}

# --- the agent ----------------------------------------------------------------------

# Starts vm1's agent with the endpoints given (ENDPOINT[,ENDPOINT...]); sets
# LOG_FROM, its log's first line of this run.
agent_start() {
	local log=$E2E_LOG_DIR/agent_vm1.log
	LOG_FROM=$(($( (cat "$log" 2>/dev/null || true) | wc -l) + 1))
	e2e_agent_start vm1 --tetherd "$1" --secret-file "$SECRET_FILE" --tcp-plain \
		--function "$FUNCTION:2" --cold-start-ms 100 --heartbeat-ms "$HEARTBEAT_MS"
}

# This run's part of vm1's agent log.
agent_log() {
	tail -n "+$LOG_FROM" "$E2E_LOG_DIR/agent_vm1.log"
}

# The number of lines of this run's log matching the extended regex.
log_count() {
	agent_log | grep -Ec -- "$1" || true
}

# Waits up to 10 s until backend vm1 has count warm containers at the tetherd
# of socket; prints the ms it took from since (ms since the epoch). Failing,
# it says why on stderr (its output is the caller's number).
wait_warm_at() {
	local socket=$1 count=$2 since=$3 i warm
	for ((i = 0; i < 500; i++)); do
		warm=$("$E2E_TETHERCTL" --socket "$socket" --json container list --backend vm1 \
			2>/dev/null | jq '[.[] | select(.state == "warm")] | length' 2>/dev/null) ||
			warm=0
		if ((${warm:-0} >= count)); then
			echo $(($(now_ms) - since))
			return 0
		fi
		sleep 0.02
	done
	{
		show "$(agent_log)"
		fail "vm1 has ${warm:-0} of $count warm containers at $socket after 10 s"
	} >&2
}

# Waits up to 10 s until backend vm1 is known at the tetherd of socket; prints
# the ms it took from since.
wait_backend_at() {
	local socket=$1 since=$2 i
	for ((i = 0; i < 500; i++)); do
		if "$E2E_TETHERCTL" --socket "$socket" --json backend list 2>/dev/null |
			jq -e '.[] | select(.backend == "vm1")' >/dev/null 2>&1; then
			echo $(($(now_ms) - since))
			return 0
		fi
		sleep 0.02
	done
	{
		show "$(agent_log)"
		fail "backend vm1 is not at $socket after 10 s"
	} >&2
}

# Heartbeats go on at B: for 3 heartbeat times vm1 stays up there, its
# deadline renewed (never closer than a third of it).
expect_heartbeats_at_b() {
	local i out state expires lowest=$HEARTBEAT_MS
	for ((i = 0; i < 30; i++)); do
		out=$(e2e_ctl --json backend list)
		state=$(jq -r '.[] | select(.backend == "vm1") | .state' <<<"$out")
		expires=$(jq -r '.[] | select(.backend == "vm1") | .expires_in_ms' <<<"$out")
		expect_eq "vm1's state at B" "$state" up
		((expires >= lowest)) || lowest=$expires
		sleep 0.1
	done
	echo "#   vm1 at B for 3 s: up, its heartbeat deadline at least $lowest ms away"
	expect_ge "vm1's heartbeat deadline at B (ms away, lowest seen)" "$lowest" $((HEARTBEAT_MS / 3))
}

# 20 requests through B's XDP answered by vm1's containers.
expect_traffic() {
	local out
	out=$(e2e_load --function "$FUNCTION" --count 20 --rate 500 --timeout-ms 2000)
	echo "#   20 requests for function $FUNCTION through B: $out"
	expect_eq "requests answered OK by vm1's containers" "$(e2e_field "$out" ok)" 20
}

# The agent leaves through B: its backend is gone there, it exited.
expect_leaves() {
	e2e_agent_stop vm1
	expect_eq "backend vm1 at B after its agent stopped" \
		"$(e2e_ctl --json backend list | jq -r '.[] | select(.backend == "vm1") | .state')" ""
	agent_log | grep -q "done; exiting" || fail "the agent did not leave cleanly: $(agent_log | tail -n 5)"
}

# The agent logged the move from A to B once and no other move.
expect_one_move() {
	local why=$1 a=tcp:$ROUTER:$A_PORT b=tcp:$ROUTER:$B_PORT
	expect_eq "moves from $a to $b ($why)" "$(log_count "moving from $a to $b: $why")" 1 || {
		show "$(agent_log)"
		return 1
	}
	expect_eq "moves logged" "$(log_count "moving from")" 1
	show "$(agent_log | grep "moving from")"
}

# --- the tests ------------------------------------------------------------------------

# A's port has no listener (connection refused): the agent moves to B at once.
test_first_absent() {
	local t0 ms
	trap a_stop EXIT # no A: the agent alone
	t0=$(now_ms)
	agent_start "tcp:$ROUTER:$A_PORT,tcp:$ROUTER:$B_PORT"
	ms=$(wait_warm_at "$E2E_SOCKET" 2 "$t0")
	echo "#   agent started with A absent: 2 warm containers at B after $ms ms"
	expect_one_move "(control|watch) connection: cannot connect: Connection refused"
	expect_heartbeats_at_b
	expect_traffic
	expect_leaves
}

# tetherd A is killed (-9) under the agent: it moves to B, registers there,
# heartbeats go on, requests are served.
test_killed() {
	local t0 ms_backend ms_warm
	a_start ka
	t0=$(now_ms)
	agent_start "tcp:$ROUTER:$A_PORT,tcp:$ROUTER:$B_PORT"
	ms_warm=$(wait_warm_at "$A_SOCK" 2 "$t0")
	echo "#   registered at A: 2 warm containers after $ms_warm ms"
	sleep 0.5 # some heartbeats at A
	expect_eq "vm1 at A" "$(a_ctl --json backend list | jq -r '.[] | select(.backend == "vm1") | .state')" up
	expect_eq "vm1 at B before the move" \
		"$(e2e_ctl --json backend list | jq -r '.[] | select(.backend == "vm1") | .state')" ""

	kill -KILL "$A_PID"
	t0=$(now_ms)
	ms_backend=$(wait_backend_at "$E2E_SOCKET" "$t0")
	ms_warm=$(wait_warm_at "$E2E_SOCKET" 2 "$t0")
	echo "#   A killed: vm1 registered at B after $ms_backend ms, 2 warm containers after $ms_warm ms"
	e2e_wait_gone "$A_PID" 50 || fail "tetherd A survived kill -9"
	expect_le "ms from A's kill to vm1 at B" "$ms_backend" 1000
	expect_one_move "(control|watch) connection: tetherd closed the connection"
	expect_heartbeats_at_b
	expect_traffic
	expect_leaves
}

# tetherd A stops answering (SIGSTOP: its kernel still holds the connections):
# a heartbeat unanswered for half the heartbeat time moves the agent to B.
test_silent() {
	local t0 ms_backend ms_warm
	a_start sa
	t0=$(now_ms)
	agent_start "tcp:$ROUTER:$A_PORT,tcp:$ROUTER:$B_PORT"
	ms_warm=$(wait_warm_at "$A_SOCK" 2 "$t0")
	echo "#   registered at A: 2 warm containers after $ms_warm ms"
	sleep 0.5

	kill -STOP "$A_PID"
	t0=$(now_ms)
	ms_backend=$(wait_backend_at "$E2E_SOCKET" "$t0")
	ms_warm=$(wait_warm_at "$E2E_SOCKET" 2 "$t0")
	echo "#   A stopped: vm1 registered at B after $ms_backend ms, 2 warm containers after $ms_warm ms"
	echo "#   (heartbeats every $((HEARTBEAT_MS / 3)) ms; one unanswered for $((HEARTBEAT_MS / 2)) ms moves)"
	expect_le "ms from A's stop to vm1 at B" "$ms_backend" $((HEARTBEAT_MS + 500))
	expect_one_move "heartbeat backend unanswered for [0-9]+ ms"
	kill -CONT "$A_PID"
	expect_heartbeats_at_b
	expect_traffic
	expect_leaves
}

# A (fake) is cut off from its fleet's store: `unavailable` to the heartbeat
# (and to every write but add backend). The agent moves to B at the first
# one, deletes nothing at A, does not give up.
test_unavailable() {
	local t0 ms_warm
	fake_start
	t0=$(now_ms)
	agent_start "tcp:$ROUTER:$A_PORT,tcp:$ROUTER:$B_PORT"
	ms_warm=$(wait_warm_at "$E2E_SOCKET" 2 "$t0")
	echo "#   agent started at a tetherd answering unavailable: 2 warm containers at B after $ms_warm ms"
	show "$(sed 's/secret=[^ ]*/secret=<the secret>/' "$FAKE_REQUESTS")"
	grep -q '^add backend name=vm1 ' "$FAKE_REQUESTS" || fail "the agent never registered at the fake"
	expect_eq "heartbeats sent to the fake" "$(grep -c '^heartbeat backend' "$FAKE_REQUESTS")" 1
	expect_eq "deletions sent to the fake" "$(grep -c '^del ' "$FAKE_REQUESTS" || true)" 0
	expect_one_move "heartbeat backend answered unavailable: the fleet's store cannot be reached \(fake\)"
	expect_eq "log lines of the agent giving up" \
		"$(log_count "will not take this backend|exiting")" 0
	expect_heartbeats_at_b
	expect_traffic
	expect_leaves
}

# --- a fleet ---------------------------------------------------------------------------

# Starts router TAG (fa, fb) of fleet $E2E_ID on a veth of its own, with a VIP
# of its own (VIP_LAST: its last byte), on TCP port PORT; the store at
# $FLEET_ENDPOINTS. Prints its pid.
fleet_router_start() {
	local tag=$1 vip_last=$2 port=$3 iface=${E2E_ID}$1
	e2e_router_veth "$iface"
	e2e_tetherd_spawn "$tag" "$E2E_RUN_DIR/$tag.sock" --iface "$iface" \
		--vip "198.51.100.$vip_last:$E2E_PORT" --pin-root "$E2E_PIN_ROOT-$tag" \
		--socket "$E2E_RUN_DIR/$tag.sock" --tcp-listen "0.0.0.0:$port" --tcp-plain \
		--tcp-secret-file "$SECRET_FILE" --store "etcd=$FLEET_ENDPOINTS" --fleet "$E2E_ID" \
		--router-name "$tag" >/dev/null
	echo "$E2E_SPAWN_PID"
}

fleet_stop() {
	local pid
	agent_gone
	for pid in ${FA_PID:-} ${FB_PID:-}; do
		kill -TERM "$pid" 2>/dev/null || true
		e2e_wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
	done
	"$E2E_REPO/tools/etcd-cluster.sh" stop "$FLEET_DIR" >/dev/null 2>&1 || true
}

# The lease of vm1's alive key in the fleet's store (decimal; empty: none).
# Read from the JSON as text: jq would round a 64-bit id to a double's 53 bits.
fleet_alive_lease() {
	e2e_in_router etcdctl --endpoints "$FLEET_ENDPOINTS" get "/tether/$E2E_ID/alive/vm1" -w json |
		grep -o '"lease":[0-9]*' | cut -d: -f2 || true
}

# vm1's containers at router TAG: slot, token, state, one a line.
fleet_containers() {
	"$E2E_TETHERCTL" --socket "$E2E_RUN_DIR/$1.sock" --json container list --backend vm1 |
		jq -r '.[] | "\(.container) \(.token) \(.state)"' | sort
}

# Two routers of one fleet (a one-member etcd): the agent registers at A; A
# is killed; the agent moves to B, which has the same backend and containers,
# and takes them over as they are: the same slots, tokens and states, nothing
# added or deleted, the backend never down at B and its alive key on the same
# lease (one that had expired would have been replaced by a new one).
test_fleet() {
	local t0 ms before after i state down=0 lease owner=$BASHPID
	FLEET_DIR=$E2E_LOG_DIR/etcd
	trap fleet_stop EXIT
	# Owned by this test's subshell: the cluster goes with it whatever happens.
	FLEET_ENDPOINTS=$(ETCD_CLUSTER_NETNS=$E2E_NS_ROUTER "$E2E_REPO/tools/etcd-cluster.sh" \
		start "$FLEET_DIR" 1 --owner "$owner")
	FA_PID=$(fleet_router_start fa 31 "$A_PORT")
	FB_PID=$(fleet_router_start fb 32 "$B_PORT_FLEET")
	t0=$(now_ms)
	agent_start "tcp:$ROUTER:$A_PORT,tcp:$ROUTER:$B_PORT_FLEET"
	ms=$(wait_warm_at "$E2E_RUN_DIR/fa.sock" 2 "$t0")
	echo "#   registered at router fa of fleet $E2E_ID: 2 warm containers after $ms ms"
	ms=$(wait_warm_at "$E2E_RUN_DIR/fb.sock" 2 "$t0")
	before=$(fleet_containers fb)
	show "$before"
	lease=$(fleet_alive_lease)
	[[ -n $lease ]] || fail "vm1 has no alive key in the fleet's store"

	kill -KILL "$FA_PID"
	t0=$(now_ms)
	# For 3 heartbeat times: vm1 up at B all along.
	for ((i = 0; i < 60; i++)); do
		state=$("$E2E_TETHERCTL" --socket "$E2E_RUN_DIR/fb.sock" --json backend list |
			jq -r '.[] | select(.backend == "vm1") | .state')
		[[ $state == up ]] || down=$((down + 1))
		sleep 0.05
	done
	after=$(fleet_containers fb)
	echo "#   fa killed: vm1 up at fb in each of 60 looks over 3 s; alive on lease $lease before, $(fleet_alive_lease) after"
	expect_eq "times vm1 was not up at fb after fa was killed" "$down" 0
	expect_eq "vm1's alive key's lease after the move" "$(fleet_alive_lease)" "$lease"
	expect_eq "vm1's containers at fb (slot token state) after the move" "$after" "$before"
	expect_eq "moves logged" "$(log_count "moving from tcp:$ROUTER:$A_PORT to tcp:$ROUTER:$B_PORT_FLEET: ")" 1
	show "$(agent_log | grep -E "moving from|exists|taking|adding|replacing|deleted|refused")"
	expect_eq "take-overs logged" "$(log_count "backend vm1 exists at tetherd; taking it over")" 1
	expect_eq "containers added (at the start only)" "$(log_count ": added at tetherd")" 2
	expect_eq "containers added again, replaced or deleted" \
		"$(log_count "adding it again|replacing|deleted at tetherd")" 0
	e2e_agent_stop vm1
}

# --- runner --------------------------------------------------------------------------------------

TESTS=(first_absent killed silent unavailable fleet)

# Before lib.sh's cleanup: every tetherd of the rig woken (a test may have
# stopped A), the pin roots of A removed. (Each test's own EXIT trap has
# stopped its A and its fake already.)
suite_cleanup() {
	local status=$? pid pids=() root
	trap - EXIT
	if [[ -f ${E2E_RUN_DIR:-}/pids ]]; then
		for pid in $(<"$E2E_RUN_DIR/pids"); do
			e2e_ours "$pid" && pids+=("$pid")
		done
	fi
	for pid in "${pids[@]}"; do
		kill -CONT "$pid" 2>/dev/null || true
	done
	if [[ -n ${E2E_PIN_ROOT:-} ]]; then
		for root in "$E2E_PIN_ROOT"-*; do
			[[ -e $root ]] || continue
			"$E2E_TETHERD" --unload --pin-root "$root" >/dev/null 2>&1 || true
			rm -rf "$root"
		done
	fi
	(
		(exit "$status")
		e2e_cleanup
	) || true
	[[ -z ${SUMMARY:-} ]] || echo "$SUMMARY"
	exit "$status"
}

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	[[ -x $E2E_AGENT ]] || e2e_die "$E2E_AGENT is missing: run 'make' first"
	e2e_init
	trap suite_cleanup EXIT
	for name in setsid ss; do
		command -v "$name" >/dev/null || e2e_die "'$name' is not installed"
	done
	B_PORT=$(e2e_random_port 3)
	A_PORT=$((B_PORT + 1))
	B_PORT_FLEET=$((B_PORT + 2))
	SECRET_FILE=$E2E_LOG_DIR/tcp.secret
	(umask 077 && head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET_FILE")
	e2e_topology
	e2e_tetherd_start --tcp-listen "0.0.0.0:$B_PORT" --tcp-plain --tcp-secret-file "$SECRET_FILE"
	run_tests "${selected[@]}"
	SUMMARY="$passed passed, $failed failed" # printed last, by suite_cleanup
	((failed == 0))
}

main "$@"
