# SPDX-License-Identifier: MIT
# The scenarios of `make demo-fleet` (tools/demo_fleet.sh), shared with their
# test (tests/e2e/test_demo_fleet.sh), on the fleet rig of tests/e2e/fleet.sh:
# three routers in fleet mode, a three-member etcd, three VMs running the
# real VM agent (tether-agent, two containers of function 1 each), each agent
# given all three routers and starting on a different one. Sourced after
# lib.sh, fleet.sh and scenarios.sh (narration, assertions, scen_run).

FLEET_SCEN_ALL=(fleet_registered fleet_sessions fleet_router_killed fleet_member_killed)
FLEET_F=1
FLEET_AGENT_HEARTBEAT_MS=3000

# Kills one container process of VM $1's agent: the agent deletes the
# container and starts a replacement of the same function (two lifecycle
# changes, through whichever router the agent talks to).
fleet_container_crash() {
	local pid child
	pid=$(cat "$E2E_RUN_DIR/agent-$1.pid")
	child=$(cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d' | head -n1)
	[[ -n $child ]] || e2e_die "no container process of $1's agent"
	kill -KILL "$child"
}

# Waits (15 s) until every router lists $1 warm containers of function 1.
fleet_wait_warm() {
	local i
	for ((i = 0; i < 150; i++)); do
		(($(fleet_warm r1) == $1 && $(fleet_warm r2) == $1 && $(fleet_warm r3) == $1)) &&
			fleet_wait_converged 10 && return 0
		sleep 0.1
	done
	return 1
}

# tether-agent in VM $1, given the three routers starting with router $2.
fleet_agent_start() {
	local vm=$1 first=$2 i endpoints= log=$E2E_LOG_DIR/agent-$1.log
	for i in 1 2 3; do
		local n=$(((first + i - 2) % 3 + 1))
		endpoints+="${endpoints:+,}tcp:203.0.113.1$n:7070"
	done
	nsenter --net="/var/run/netns/$(fleet_ns "$vm")" "$E2E_AGENT" --name "$vm" \
		--addr "203.0.113.2$(fleet_index "$vm")" --mac "$(fleet_vm_mac "$vm")" \
		--router-iface fab0 --vip "$FLEET_VIP:$FLEET_PORT" --tetherd "$endpoints" \
		--tls-ca "$FLEET_CERTS/ca.pem" --tls-cert "$FLEET_CERTS/$vm.pem" \
		--tls-key "$FLEET_CERTS/$vm-key.pem" --function "$FLEET_F:2" \
		--heartbeat-ms "$FLEET_AGENT_HEARTBEAT_MS" >>"$log" 2>&1 &
	local pid=$!
	disown "$pid"
	e2e_track "$pid"
	echo "$pid" >"$E2E_RUN_DIR/agent-$vm.pid"
}

# Warm containers of function 1 router $1 lists.
fleet_warm() {
	fleet_ctl "$1" --json container list --function "$FLEET_F" 2>/dev/null |
		jq '[.[] | select(.state == "warm")] | length'
}

fleet_scen_setup() {
	local node vm i
	fleet_init
	fleet_topology
	fleet_etcd_start
	for node in "${FLEET_ROUTERS[@]}"; do
		fleet_router_start "$node"
	done
	i=1
	for vm in "${FLEET_VMS[@]}"; do
		fleet_agent_start "$vm" "$i"
		i=$((i + 1))
	done
	for ((i = 0; i < 150; i++)); do
		(($(fleet_warm r1) >= 6 && $(fleet_warm r2) >= 6 && $(fleet_warm r3) >= 6)) && return 0
		sleep 0.1
	done
	e2e_die "the agents' 6 containers are not warm on every router after 15 s (logs in $E2E_LOG_DIR)"
}

fleet_scen_describe() {
	scen_explain "Three routers (r1-r3) run tetherd in fleet mode on one etcd cluster of three members;"
	scen_explain "three VMs run tether-agent, each given all three routers (vm1 starts on r1, vm2 on r2,"
	scen_explain "vm3 on r3), with two containers of function 1. Client clx reaches the VIP through all"
	scen_explain "three routers (ECMP): each flow goes to one of them."
}

# --- scenarios -------------------------------------------------------------------------

scen_fleet_registered() {
	local node tokens first=
	scen_heading "1. One fleet: every router knows every container, with the same token"
	fleet_ctl r1 fleet status | sed 's/^/   /'
	for node in "${FLEET_ROUTERS[@]}"; do
		tokens=$(fleet_ctl "$node" --json container list --function "$FLEET_F" |
			jq -r '[.[] | "\(.container):\(.token)"] | sort | join(" ")')
		scen_say "$node: $(wc -w <<<"$tokens") containers, tokens $(sha256sum <<<"$tokens" | cut -c1-12)"
		first=${first:-$tokens}
		expect_eq "$node's containers and tokens" "$tokens" "$first"
	done
	scen_row "one fleet" - - - "6 containers, identical tokens on r1, r2, r3"
}

# Starts twelve udp_load from clx in the background (twelve flows: ECMP
# spreads them over the routers by a random hash, and with six flows all went
# through one router once in a few hundred runs), each with 4 sessions
# following their tokens at 50 requests/s, for $1 seconds; their outputs in
# $2.N. Sets FLEET_LOAD_PIDS.
fleet_session_load() {
	local i
	FLEET_LOAD_PIDS=()
	for i in $(seq 1 12); do
		nsenter --net="/var/run/netns/$(fleet_ns clx)" "$E2E_LOAD" \
			--vip "$FLEET_VIP:$FLEET_PORT" --function "$FLEET_F" --sessions 4 --token-follow \
			--key $((9000 + 100 * i)) --duration-s "$1" --rate 50 --timeout-ms 1500 \
			>"$2.$i" 2>&1 &
		FLEET_LOAD_PIDS+=($!)
		e2e_track "$!"
	done
}

fleet_load_wait() {
	local pid
	for pid in "${FLEET_LOAD_PIDS[@]}"; do
		wait "$pid" || true
	done
}

# The summary of the finished loads: "sent answered lost sticky_share" (sums;
# the share of all their sessions that stayed on one container).
fleet_load_figures() {
	local file line sent=0 answered=0 lost=0 sticky=0 sessions=0
	for file in "$1".*; do
		line=$(head -n1 "$file")
		sent=$((sent + $(e2e_field "$line" sent)))
		answered=$((answered + $(e2e_field "$line" answered)))
		lost=$((lost + $(e2e_field "$line" lost)))
		sticky=$((sticky + $(e2e_field "$line" sticky_sessions)))
		sessions=$((sessions + $(e2e_field "$line" sessions)))
	done
	echo "$sent $answered $lost $(awk -v s="$sticky" -v n="$sessions" 'BEGIN { printf "%.3f", s / n }')"
}

scen_fleet_sessions() {
	local out=$E2E_LOG_DIR/sessions.out sent answered lost sticky hit=0 node
	scen_heading "2. Sessions through every router: each key and token stays on its container"
	fleet_session_load 3 "$out"
	fleet_load_wait
	read -r sent answered lost sticky <<<"$(fleet_load_figures "$out")"
	for node in "${FLEET_ROUTERS[@]}"; do
		(($(fleet_ctl "$node" --json stats | jq '.[0].token_hit + .[0].key_hit') > 0)) &&
			hit=$((hit + 1))
	done
	scen_say "48 sessions in 12 flows over ECMP: $answered of $sent answered, sticky share $sticky," \
		"through $hit routers"
	scen_row "sessions over ECMP" "$sent" "$answered" "$lost" "sticky share $sticky, $hit routers"
	expect_eq "lost" "$lost" 0
	expect_eq "sticky share" "$sticky" 1.000
	expect_ge "routers that routed sessions" "$hit" 2
}

scen_fleet_router_killed() {
	local out=$E2E_LOG_DIR/router-killed.out sent answered lost sticky
	scen_heading "3. A router's tetherd killed (-9) under load, then restarted"
	scen_explain "Its XDP program stays attached on the pinned maps; agents connected to it move on."
	fleet_session_load 6 "$out"
	sleep 1
	fleet_router_stop r2 KILL
	scen_say "r2's tetherd killed"
	fleet_container_crash vm1
	scen_say "a container of vm1 crashed: its agent deletes it and starts another (r2 is dead)"
	sleep 2
	fleet_router_start r2
	fleet_wait_warm 6 || fail "the routers do not show 6 warm containers alike after r2's restart"
	scen_say "r2 restarted and caught up: the same 6 warm containers and tokens as r1 and r3"
	fleet_load_wait
	read -r sent answered lost sticky <<<"$(fleet_load_figures "$out")"
	grep -h "moving from" "$E2E_LOG_DIR"/agent-*.log | sed 's/^.*moving/   agent: moving/' | tail -n 3 || true
	scen_say "load meanwhile: $answered of $sent answered, sticky share $sticky (the sessions of the" \
		"crashed container moved; the others stayed)"
	scen_row "router killed" "$sent" "$answered" "$lost" "r2 caught up; sessions stayed but the crashed container's"
	expect_eq "lost while r2's tetherd was dead" "$lost" 0
}

scen_fleet_member_killed() {
	local out=$E2E_LOG_DIR/member-killed.out sent answered lost sticky
	scen_heading "4. An etcd member killed under load, while containers change"
	fleet_session_load 5 "$out"
	sleep 1
	"$E2E_REPO/tools/etcd-cluster.sh" kill "$FLEET_ETCD_DIR" 0
	scen_say "etcd member 0 killed"
	fleet_container_crash vm2
	scen_say "a container of vm2 crashed: replaced through its router, with two members of three"
	fleet_wait_warm 6 || fail "the replacement is not warm on every router"
	"$E2E_REPO/tools/etcd-cluster.sh" restart "$FLEET_ETCD_DIR" 0
	scen_say "member 0 back"
	fleet_load_wait
	fleet_wait_converged 100 || fail "the routers disagree after member 0 came back"
	read -r sent answered lost sticky <<<"$(fleet_load_figures "$out")"
	scen_say "load meanwhile: $answered of $sent answered, sticky share $sticky"
	scen_row "etcd member killed" "$sent" "$answered" "$lost" "changes went on with 2 members of 3"
	expect_eq "lost with a member down" "$lost" 0
}
