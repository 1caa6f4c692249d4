#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A fleet of three routers behaves as one router (DESIGN.md, "Fleets";
# docs/store.md), on the rig of tests/e2e/fleet.sh: a real three-member etcd
# cluster, three tetherds in fleet mode, VMs with echo backends, clients
# that reach the VIP through one router each or spread over all three.
#
#   tokens        a container added through r1 has the same token on every
#                 router; a token minted through r1 reaches its container
#                 through r2 and r3 (TOKEN+STRICT), byte for byte
#   tables        every router's pool table of a function hashes the same
#   keys          keys sent through every router (ECMP flows) each stay on one
#                 container, the same whichever router saw the key first
#   writes        a change through any router is answered ok once committed
#                 and is applied by every router; bad input changes nothing
#   store_tls_reload  etcd on TLS with client certificates: SIGHUP reloads a
#                 router's store files; a key open to others is refused and
#                 the files in use stay; writes go on
#   liveness      heartbeats through any router keep a backend up; when they
#                 stop it goes down on every router within its heartbeat time
#                 (its lease), and comes back with the next heartbeat
#   router_killed kill -9 of r2's tetherd under load: its XDP program keeps
#                 forwarding on the pinned maps, the others serve, nothing is
#                 lost; restarted, it catches up with changes made meanwhile
#   member_killed one etcd member of three killed: changes and traffic go on
#   cut_off       r3 cut off from etcd: it forwards on what it has, answers
#                 changes unavailable, changes nothing; healed, it converges
#   quorum_lost   two members of three killed: every router forwards on the
#                 state it has (no backend goes down), every change is
#                 answered unavailable; restarted, the fleet converges
#   compacted     r3 cut off while containers go and the store is compacted:
#                 back, it reads everything again and keeps no stale container
#   racing_adds   r1 and r2 each add 600 containers at once: no slot and no
#                 token twice, and every router has all 1,200
#   policies      the functions a backend may hold, set through r2: every router
#                 shows them and holds a connection bound to that backend to
#                 them, through r3
#   capacity      a request for a function without containers, held by r1's
#                 slow path, is heard as capacity_needed on r3's event stream;
#                 a container added through r2 gets it forwarded by r1
#
#   tests/e2e/test_fleet.sh [TEST...]
#
# TAP output, then "N passed, M failed" alone on the last line. Run as root.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet.sh"

TESTS=(tokens tables keys writes store_tls_reload function_set liveness router_killed
	member_killed cut_off quorum_lost compacted racing_adds policies capacity)
F=7 # the function of the echo containers
# The backends' heartbeat time (their leases' TTL): long enough that a busy
# machine does not miss a renewal, short enough to wait out in a test.
HEARTBEAT_MS=6000

# The token of container SLOT as router $1 lists it.
token_at() {
	fleet_ctl "$1" --json container list | jq -r --argjson s "$2" '.[] | select(.container == $s) | .token'
}

test_tokens() {
	local slot token node out
	slot=$(fleet_ctl r1 --json container add --function "$F" --backend vm1 --name tok --warm |
		jq -r .container)
	fleet_wait_converged 50 || fail "the routers do not agree after the add"
	token=$(token_at r1 "$slot")
	echo "#   container $slot, token $token through r1"
	for node in r2 r3; do
		expect_eq "the token of container $slot at $node" "$(token_at "$node" "$slot")" "$token"
	done
	for node in 1 2 3; do
		out=$(fleet_invoke "cl$node" --function "$F" --token "$token" --strict --count 5)
		echo "#   through r$node: $(tail -n1 <<<"$out")"
		expect_eq "TOKEN+STRICT through r$node: OK answers" "$(grep -c 'status=ok' <<<"$out")" 5
		expect_eq "TOKEN+STRICT through r$node: the token's container" \
			"$(grep -c "container=$slot " <<<"$out")" 5
		expect_contains "TOKEN+STRICT through r$node: the token stamped" "$out" "token=$token"
	done
	fleet_ctl r2 container del "$slot" >/dev/null
}

test_tables() {
	local node digest first=
	for node in "${FLEET_ROUTERS[@]}"; do
		digest=$(fleet_ctl "$node" --json function show "$F" | jq -r '.[0].table_digest')
		echo "#   $node: function $F table $digest"
		[[ $digest =~ ^[0-9a-f]{16}$ ]] || fail "$node: no table digest for function $F"
		first=${first:-$digest}
		expect_eq "$node's table of function $F" "$digest" "$first"
	done
}

# Each key from several flows (so through several routers): one container.
test_keys() {
	local key out slots routers_before routers_after hit=0 node
	for node in "${FLEET_ROUTERS[@]}"; do
		routers_before+=" $(fleet_ctl "$node" --json stats | jq '.[0].key_new + .[0].key_hit')"
	done
	for key in 101 202 303 404 505 606; do
		slots=$(for _ in 1 2 3 4 5 6; do
			fleet_load clx --function "$F" --key "$key" --sessions 1 --count 4 \
				--per-container | sed -n 's/^container=\([0-9]*\).*/\1/p'
		done | sort -u | tr '\n' ' ')
		echo "#   key $key: container(s) $slots"
		expect_eq "key $key: containers over six flows" "$(wc -w <<<"$slots")" 1
	done
	read -ra before <<<"$routers_before"
	for node in "${FLEET_ROUTERS[@]}"; do
		local i=$(($(fleet_index "$node") - 1)) now
		now=$(fleet_ctl "$node" --json stats | jq '.[0].key_new + .[0].key_hit')
		((now > before[i])) && hit=$((hit + 1))
	done
	echo "#   keyed requests went through $hit of 3 routers"
	expect_ge "routers the flows went through" "$hit" 2
}

test_writes() {
	local out slot node
	out=$(fleet_ctl r3 container add --function "$F" --backend vm2 --name w1 2>&1) ||
		fail "add through r3: $out"
	slot=$(fleet_ctl r3 --json container list | jq -r '.[] | select(.name == "w1") | .container')
	fleet_ctl r2 container up "$slot" >/dev/null || fail "up through r2"
	for node in "${FLEET_ROUTERS[@]}"; do
		expect_eq "w1 at $node right after up through r2" \
			"$(fleet_ctl "$node" --json container list | jq -r '.[] | select(.name == "w1") | .state')" warm
	done
	out=$(fleet_ctl r1 container add --function "$F" --backend vm2 --name w1 2>&1) && fail "a duplicate name was added"
	expect_contains "a duplicate name through r1" "$out" "exists"
	out=$(fleet_ctl r1 container up "$slot" 2>&1) && fail "a warm container came up again"
	expect_contains "up of a warm container" "$out" "invalid_transition"
	out=$(fleet_ctl r2 container add --function "$F" --backend no-such-vm 2>&1) && fail "added to no backend"
	expect_contains "a container on no backend" "$out" "not_found"
	fleet_ctl r1 container drain "$slot" --deadline 5s >/dev/null
	fleet_ctl r3 container idle "$slot" >/dev/null
	fleet_wait_converged 50 || fail "the routers disagree after the writes"
	expect_eq "w1 after idle, at r2" \
		"$(fleet_ctl r2 --json container list | jq '[.[] | select(.name == "w1")] | length')" 0
}

# etcd speaks TLS and wants a client certificate (fleet.sh): SIGHUP makes a
# router read its store files again (and its listener's); a key that has
# become open to others is refused and the files in use stay; writes through
# it work all along.
test_store_tls_reload() {
	local log key i out
	log=$(fleet_log_of r2)
	key=$FLEET_ETCD_DIR/tls/client-key.pem
	[[ $FLEET_STORE == https://* ]] || fail "the rig's etcd is not on TLS: $FLEET_STORE"
	kill -HUP "$(fleet_router_pid r2)"
	for ((i = 0; i < 50; i++)); do
		grep -q "SIGHUP: the store's TLS files reloaded" "$log" && break
		sleep 0.1
	done
	echo "#   $(grep "SIGHUP: the store's" "$log" | tail -n1)"
	grep -q "SIGHUP: the store's TLS files reloaded" "$log" || fail "r2 did not reload: $(tail -n3 "$log")"
	grep -q "SIGHUP: TLS files reloaded" "$log" || fail "r2 did not reload its listener's files"
	chmod 0644 "$key"
	kill -HUP "$(fleet_router_pid r2)"
	for ((i = 0; i < 50; i++)); do
		grep -q "the store's TLS files were not reloaded" "$log" && break
		sleep 0.1
	done
	chmod 0600 "$key"
	echo "#   $(grep "were not reloaded" "$log" | tail -n1)"
	grep -q "the store's TLS files were not reloaded, the ones in use stay: .*open to others" "$log" ||
		fail "r2 did not refuse the open key: $(tail -n3 "$log")"
	out=$(fleet_ctl r2 container add --function "$F" --backend vm2 --name tls1 2>&1) ||
		fail "add through r2 after the reloads: $out"
	fleet_wait_converged 50 || fail "the routers disagree"
	fleet_ctl r2 container del "$(fleet_ctl r2 --json container list |
		jq -r '.[] | select(.name == "tls1") | .container')" >/dev/null
}

# Waits (5 s at most) until every router shows function F with concurrency $1.
wait_concurrency() {
	local want=$1 i node all
	for ((i = 0; i < 50; i++)); do
		all=1
		for node in "${FLEET_ROUTERS[@]}"; do
			[[ $(fleet_ctl "$node" --json function show "$F" | jq -r '.[0].concurrency') == "$want" ]] ||
				all=0
		done
		((all)) && return 0
		sleep 0.1
	done
	return 1
}

# A function's concurrency limit is lifecycle state: set through r2, it is
# in the store (functions/F) and every router applies it to F's containers.
test_function_set() {
	local node out
	out=$(fleet_ctl r2 function set "$F" --concurrency 2 2>&1) || fail "function set through r2: $out"
	wait_concurrency 2 || fail "not every router applied concurrency 2 within 5 s"
	for node in "${FLEET_ROUTERS[@]}"; do
		expect_eq "concurrency of $F at $node" \
			"$(fleet_ctl "$node" --json function show "$F" | jq -r '.[0].concurrency')" 2
		expect_eq "limits of $F's containers at $node" \
			"$(fleet_ctl "$node" --json container list --function "$F" |
				jq -r '[.[].limit] | unique | join(",")')" 2
	done
	expect_contains "the store's record" \
		"$(fleet_etcdctl get "/tether/$FLEET_NAME/functions/$F" 2>&1)" "concurrency=2"
	fleet_ctl r3 function set "$F" --concurrency 0 >/dev/null || fail "function set through r3"
	wait_concurrency 0 || fail "not every router lifted the limit within 5 s"
	for node in "${FLEET_ROUTERS[@]}"; do
		expect_eq "limits of $F's containers at $node, lifted" \
			"$(fleet_ctl "$node" --json container list --function "$F" |
				jq -r '[.[].limit] | unique | join(",")')" 0
	done
}

test_liveness() {
	local node state i started down_ms
	kill "$FLEET_HB_VM3" 2>/dev/null || true
	started=$(date +%s%N)
	for ((i = 0; i < (HEARTBEAT_MS + 4000) / 100; i++)); do
		down=0
		for node in "${FLEET_ROUTERS[@]}"; do
			state=$(fleet_ctl "$node" --json backend list | jq -r '.[] | select(.backend == "vm3") | .state')
			[[ $state == down ]] && down=$((down + 1))
		done
		((down == 3)) && break
		sleep 0.1
	done
	down_ms=$((($(date +%s%N) - started) / 1000000))
	echo "#   vm3 down on $down of 3 routers ${down_ms} ms after its heartbeats stopped" \
		"(heartbeat $HEARTBEAT_MS ms)"
	expect_eq "routers with vm3 down" "$down" 3
	# The lease's TTL, etcd's expiry check (every 500 ms), the watch.
	expect_le "ms until vm3 is down everywhere" "$down_ms" $((HEARTBEAT_MS + 3000))
	fleet_ctl r2 backend heartbeat vm3 >/dev/null || fail "a heartbeat through r2"
	fleet_heartbeats vm3 r2
	FLEET_HB_VM3=$FLEET_HEARTBEAT_PID
	fleet_wait_converged 50 || fail "the routers disagree after vm3 came back"
	expect_eq "vm3 at r1 after a heartbeat through r2" \
		"$(fleet_ctl r1 --json backend list | jq -r '.[] | select(.backend == "vm3") | .state')" up
}

test_router_killed() {
	local out slot lost
	nsenter --net="/var/run/netns/$(fleet_ns clx)" "$E2E_LOAD" --vip "$FLEET_VIP:$FLEET_PORT" \
		--function "$F" --sessions 40 --duration-s 4 --rate 400 >"$E2E_LOG_DIR/load-kill.out" 2>&1 &
	local load=$!
	e2e_track "$load"
	sleep 1
	fleet_router_stop r2 KILL
	echo "#   r2's tetherd killed (-9); its XDP program stays attached"
	slot=$(fleet_ctl r1 --json container add --function "$F" --backend vm1 --name late --warm |
		jq -r .container)
	wait "$load" || true
	out=$(head -n1 "$E2E_LOG_DIR/load-kill.out")
	echo "#   load through all routers meanwhile: $(cut -d' ' -f1-6 <<<"$out")"
	lost=$(e2e_field "$out" lost)
	expect_eq "requests lost while r2's tetherd was dead" "$lost" 0
	fleet_router_start r2
	fleet_wait_converged 50 || fail "r2 did not catch up after its restart"
	expect_eq "the container added meanwhile, at r2" "$(token_at r2 "$slot")" "$(token_at r1 "$slot")"
}

test_member_killed() {
	local i out failed=0
	"$E2E_REPO/tools/etcd-cluster.sh" kill "$FLEET_ETCD_DIR" 0
	echo "#   etcd member 0 killed"
	for i in 1 2 3 4 5 6; do
		out=$(fleet_ctl "r$(((i % 3) + 1))" container add --function "$F" --backend vm2 \
			--name "m$i" --warm 2>&1) || { failed=$((failed + 1)) && echo "#   $out"; }
	done
	expect_eq "changes refused with one member of three down" "$failed" 0
	out=$(fleet_load cl2 --function "$F" --sessions 10 --count 200 --rate 1000)
	expect_eq "requests lost with one member down" "$(e2e_field "$out" lost)" 0
	"$E2E_REPO/tools/etcd-cluster.sh" restart "$FLEET_ETCD_DIR" 0
	fleet_wait_converged 100 || fail "the routers disagree after member 0 came back"
}

test_cut_off() {
	local out before
	ip -n "$(fleet_ns r3)" link set mgmt0 down
	echo "#   r3 cut off from etcd"
	out=$(timeout 20 "$E2E_TETHERCTL" --socket "$(fleet_socket r3)" container add --function "$F" \
		--backend vm1 --name cut 2>&1) && fail "r3 took a change while cut off"
	expect_contains "a change through the cut-off r3" "$out" "unavailable"
	before=$(fleet_view r3)
	fleet_ctl r1 container add --function "$F" --backend vm1 --name during-cut --warm >/dev/null
	out=$(fleet_load cl3 --function "$F" --sessions 10 --count 200 --rate 1000)
	expect_eq "requests lost through the cut-off r3" "$(e2e_field "$out" lost)" 0
	expect_eq "r3's view while cut off" "$(fleet_view r3)" "$before"
	ip -n "$(fleet_ns r3)" link set mgmt0 up
	fleet_wait_converged 200 || fail "r3 did not converge after the cut healed"
	echo "#   r3 back: $(fleet_ctl r3 --json container list | jq 'length') containers, as r1"
}

# Members 1 and 2 started again after test_quorum_lost killed them.
quorum_back() {
	local member
	for member in 1 2; do
		"$E2E_REPO/tools/etcd-cluster.sh" restart "$FLEET_ETCD_DIR" "$member"
	done
}

test_quorum_lost() {
	local out node up
	"$E2E_REPO/tools/etcd-cluster.sh" kill "$FLEET_ETCD_DIR" 1
	"$E2E_REPO/tools/etcd-cluster.sh" kill "$FLEET_ETCD_DIR" 2
	# Also when a check below fails: every test after this one needs the
	# quorum (without it they failed too, one of them after 14 minutes).
	trap quorum_back EXIT
	echo "#   etcd members 1 and 2 killed: no quorum"
	out=$(timeout 20 "$E2E_TETHERCTL" --socket "$(fleet_socket r1)" container add --function "$F" \
		--backend vm1 --name noquorum 2>&1) && fail "a change was taken without quorum"
	expect_contains "a change without quorum" "$out" "unavailable"
	sleep $((HEARTBEAT_MS / 1000 + 1)) # past every backend's heartbeat time: nothing may go down
	for node in "${FLEET_ROUTERS[@]}"; do
		up=$(fleet_ctl "$node" --json backend list | jq '[.[] | select(.state == "up")] | length')
		expect_eq "backends up at $node without quorum" "$up" 3
	done
	out=$(fleet_load clx --function "$F" --sessions 20 --count 300 --rate 1000)
	expect_eq "requests lost without quorum" "$(e2e_field "$out" lost)" 0
	trap - EXIT
	quorum_back
	fleet_wait_converged 200 || fail "the fleet did not converge after the quorum came back"
}

test_compacted() {
	local slots revision i lost
	for i in 1 2 3 4; do
		fleet_ctl r1 container add --function "$F" --backend vm3 --name "c$i" --warm >/dev/null
	done
	fleet_wait_converged 50 || fail "the routers disagree before the cut"
	lost=$(grep -c "lost the watch" "$(fleet_log_of r3)" || true)
	ip -n "$(fleet_ns r3)" link set mgmt0 down
	# Until r3 notices (its watch checks its member every 5 s): then it
	# resumes from its revision, which the compaction will have removed.
	for ((i = 0; i < 150; i++)); do
		(($(grep -c "lost the watch" "$(fleet_log_of r3)" || true) > lost)) && break
		sleep 0.1
	done
	slots=$(fleet_ctl r1 --json container list | jq -r '.[] | select(.name | test("^c[0-9]$")) | .container')
	for slot in $slots; do
		fleet_ctl r1 container del "$slot" >/dev/null
	done
	revision=$(fleet_etcdctl endpoint status -w json | jq '.[0].Status.header.revision')
	fleet_etcdctl compact "$revision" >/dev/null
	echo "#   r3 cut off; $(wc -w <<<"$slots") containers deleted, store compacted at $revision"
	expect_eq "containers r3 still has while cut off" \
		"$(fleet_ctl r3 --json container list | jq '[.[] | select(.name | test("^c[0-9]$"))] | length')" 4
	ip -n "$(fleet_ns r3)" link set mgmt0 up
	fleet_wait_converged 200 || fail "r3 did not converge after the compaction"
	expect_eq "deleted containers still at r3" \
		"$(fleet_ctl r3 --json container list | jq '[.[] | select(.name | test("^c[0-9]$"))] | length')" 0
	grep -q "read again" "$(fleet_log_of r3)" || fail "r3 did not read the whole state again"
}

# Adds $2 containers through router $1 on four connections at once (each
# answers its requests in order), one raw request each.
add_many() {
	local router=$1 n=$2 c i pids=()
	for c in 0 1 2 3; do
		for ((i = c; i < n; i += 4)); do
			printf 'add container function=9 backend=vm%d state=warm\n' $((i % 3 + 1))
		done | socat -t 60 - "UNIX-CONNECT:$(fleet_socket "$router")" \
			>"$E2E_LOG_DIR/race-$router-$c.out" &
		pids+=($!)
	done
	wait "${pids[@]}"
}

test_racing_adds() {
	local n=600 oks slots tokens
	add_many r1 $n &
	local a=$!
	add_many r2 $n &
	local b=$!
	wait "$a" "$b"
	oks=$(cat "$E2E_LOG_DIR"/race-r*.out | grep -c '^ok$')
	expect_eq "adds answered ok" "$oks" $((2 * n))
	fleet_wait_converged 300 || fail "the routers disagree after the race"
	slots=$(fleet_ctl r3 --json container list --function 9 | jq -r '.[].container' | sort -u | wc -l)
	tokens=$(fleet_ctl r3 --json container list --function 9 | jq -r '.[].token' | sort -u | wc -l)
	echo "#   r3 lists $slots containers of function 9 with $tokens tokens"
	expect_eq "distinct slots" "$slots" $((2 * n))
	expect_eq "distinct tokens" "$tokens" $((2 * n))
}

# Sends the request lines given to router $1's TCP listener as backend $2's
# agent (over mutual TLS, with that VM's certificate: it binds the
# connection to $2, as the agents of the rig do); prints the answers.
as_agent_of() {
	local router=$1 backend=$2 address
	shift 2
	address="OPENSSL:203.0.113.1$(fleet_index "$router"):7070,cafile=$FLEET_CERTS/ca.pem"
	address+=",cert=$FLEET_CERTS/$backend.pem,key=$FLEET_CERTS/$backend-key.pem"
	printf '%s\n' "$@" | fleet_in "$router" socat -t 5 - "$address"
}

test_policies() {
	local node out
	fleet_ctl r2 backend set vm2 --functions 7,20-29 >/dev/null || fail "backend set through r2"
	fleet_wait_converged 50 || fail "the routers disagree after the policy"
	for node in "${FLEET_ROUTERS[@]}"; do
		expect_eq "vm2's functions at $node" \
			"$(fleet_ctl "$node" --json backend list | jq -r '.[] | select(.backend == "vm2") | .functions')" \
			"7,20-29"
	done
	out=$(as_agent_of r3 vm2 "add container function=30 backend=vm2 state=starting" \
		"add container function=25 backend=vm2 state=starting")
	echo "#   vm2's agent through r3: $(grep -c '^ok$' <<<"$out") ok, $(grep -c '^error' <<<"$out") refused"
	expect_contains "function 30 for vm2 through r3" "$out" \
		"error unauthorized: backend 'vm2' may hold functions 7,20-29, not 30"
	expect_eq "answers ok (function 25)" "$(grep -c '^ok$' <<<"$out")" 1
	fleet_ctl r1 backend set vm2 --functions any >/dev/null
	fleet_wait_converged 50 || fail "the routers disagree after the policy's removal"
	expect_eq "vm2's functions at r3 after any" \
		"$(fleet_ctl r3 --json backend list | jq -r '.[] | select(.backend == "vm2") | .functions')" any
}

test_capacity() {
	local watch=$E2E_LOG_DIR/watch-r3 out i
	timeout 15 "$E2E_TETHERCTL" --socket "$(fleet_socket r3)" watch >"$watch" 2>&1 &
	local watcher=$!
	# The watch is live once it shows an event: a probe container's, added
	# again every half second until one shows (one added before the watch
	# was taken is never shown).
	local probe slot
	for ((probe = 0; probe < 20; probe++)); do
		fleet_ctl r2 container add --function 43 --backend vm1 --name "probe$probe" >/dev/null
		for ((i = 0; i < 10; i++)); do
			grep -q "container_added .*function=43" "$watch" && break 2
			sleep 0.05
		done
	done
	grep -q "container_added .*function=43" "$watch" || fail "r3's watch shows no event: $(cat "$watch")"
	for slot in $(fleet_ctl r2 --json container list --function 43 | jq -r '.[].container'); do
		fleet_ctl r2 container del "$slot" >/dev/null
	done
	nsenter --net="/var/run/netns/$(fleet_ns cl1)" "$E2E_BUILD/tether-invoke" \
		--vip "$FLEET_VIP:$FLEET_PORT" --function 42 --timeout-ms 5000 >"$E2E_LOG_DIR/cold.out" 2>&1 &
	local invoke=$!
	for ((i = 0; i < 50; i++)); do
		grep -q "capacity_needed function=42 .*router=r1" "$watch" && break
		sleep 0.1
	done
	expect_contains "r3's events" "$(cat "$watch")" "capacity_needed function=42 waiting=1 router=r1"
	fleet_ctl r2 container add --function 42 --backend vm1 --name cold --warm >/dev/null
	wait "$invoke" || true
	out=$(cat "$E2E_LOG_DIR/cold.out")
	echo "#   held by r1, served after a container was added through r2: $out"
	expect_contains "the held request" "$out" "status=ok"
	kill "$watcher" 2>/dev/null || true
	wait "$watcher" 2>/dev/null || true
}

main() {
	local selected=("$@") vm node
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	fleet_init
	fleet_topology
	fleet_etcd_start
	for node in "${FLEET_ROUTERS[@]}"; do
		fleet_router_start "$node"
	done
	for vm in "${FLEET_VMS[@]}"; do
		fleet_backend_add "$vm" r1 --heartbeat-ms "$HEARTBEAT_MS" >/dev/null
		fleet_heartbeats "$vm" r1
		printf -v "FLEET_HB_${vm^^}" '%s' "$FLEET_HEARTBEAT_PID"
		fleet_echo_start "$vm"
		fleet_ctl r1 container add --function "$F" --backend "$vm" --name "e$vm" --warm >/dev/null
	done
	fleet_wait_converged 100 || e2e_die "the routers did not agree on the first state"
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
