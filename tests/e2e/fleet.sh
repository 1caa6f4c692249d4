# SPDX-License-Identifier: MIT
# The fleet rig: a three-member etcd cluster and three routers running
# tetherd in fleet mode, VMs and clients, each in a network namespace of its
# own. Sourced after tests/e2e/lib.sh by tests/e2e/test_fleet.sh and the
# fleet demo.
#
#   hub namespace: three bridges
#     mgmt   10.99.0.1/24, where the etcd members listen (ETCD_CLUSTER_NETNS)
#     lan    the clients' LAN: routers at 192.0.2.11-13, clients .21-23, .30
#     fab    the VMs' fabric: routers at 203.0.113.11-13, VMs .21-23
#   rN     a router: tetherd --store etcd=... --fleet NAME --router-name rN,
#          XDP on lan0 (its LAN side), backends reached through fab0 (the
#          same name on every router, as a fleet needs), etcd through mgmt0;
#          agents on TCP at 203.0.113.1N:7070 with mutual TLS
#   vmN    a VM: VIPs on lo, its replies to clients through r1 (DSR)
#   clN    client N (1-3) reaches the VIPs through router N only
#   clx    a client whose routes to the VIPs spread over all three routers
#          (ECMP, hashed on ports): each flow goes to one router
#
# TLS everywhere, as a fleet runs: etcd speaks TLS and wants client
# certificates (tools/etcd-cluster.sh --tls; the routers get --store-ca,
# --store-cert, --store-key), and agents and routers authenticate each other
# by certificate (fleet_init makes them in $FLEET_CERTS: ca.pem; rN.pem,
# router N's, naming 203.0.113.1N; vmN.pem, VM N's agent's, CN=vmN). With
# FLEET_ETCD_PLAIN=1 etcd is plain HTTP (the fleet bench, whose figures
# compare with earlier runs).
#
# Names carry the rig's random id; fleet_cleanup (an EXIT trap set by
# fleet_init) stops everything and removes what the rig made.

FLEET_ROUTERS=(r1 r2 r3)
FLEET_VMS=(vm1 vm2 vm3)
FLEET_MGMT_HUB=10.99.0.1
FLEET_VIP=$E2E_VIP4
FLEET_PORT=$E2E_PORT
FLEET_STORE_TLS=() # tetherd's --store-ca, --store-cert, --store-key (fleet_etcd_start)

fleet_ns() {
	echo "$E2E_ID-$1"
}

# Runs a command in node $1's network namespace (host mount namespace, so
# bpffs and the run directory are the host's).
fleet_in() {
	local node=$1
	shift
	nsenter --net="/var/run/netns/$(fleet_ns "$node")" "$@"
}

# The number of a node: 1 for r1, vm1, cl1.
fleet_index() {
	echo "${1//[!0-9]/}"
}

fleet_init() {
	e2e_require_root
	e2e_require_tools
	command -v etcd >/dev/null || e2e_die "etcd is not installed (make deps installs etcd-server)"
	E2E_ID=tf$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
	E2E_RUN_DIR=/run/$E2E_ID
	E2E_LOG_DIR=$(mktemp -d "/tmp/$E2E_ID.XXXXXX")
	FLEET_NAME=$E2E_ID
	FLEET_ETCD_DIR=$E2E_LOG_DIR/etcd
	FLEET_CERTS=$E2E_LOG_DIR/certs
	mkdir -p "$E2E_RUN_DIR"
	: >"$E2E_RUN_DIR/pids"
	trap fleet_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[[ -n ${E2E_QUIET:-} ]] || e2e_log "fleet rig $E2E_ID (logs in $E2E_LOG_DIR)"
	fleet_make_certs
}

# The routers' and the agents' certificates, one CA.
fleet_make_certs() {
	local t=$E2E_REPO/tools/test-certs.sh node
	command -v certtool >/dev/null || e2e_die "certtool is not installed (make deps: gnutls-bin)"
	"$t" ca "$FLEET_CERTS" ca >/dev/null
	for node in "${FLEET_ROUTERS[@]}"; do
		"$t" server "$FLEET_CERTS" ca "$node" "203.0.113.1$(fleet_index "$node")" >/dev/null
	done
	for node in "${FLEET_VMS[@]}"; do
		"$t" client "$FLEET_CERTS" ca "$node" "$node" >/dev/null
	done
}

fleet_cleanup() {
	local status=$? pid pids=() node
	trap - EXIT INT TERM
	if [[ -f ${E2E_RUN_DIR:-}/pids ]]; then
		for pid in $(<"$E2E_RUN_DIR/pids"); do
			e2e_ours "$pid" && pids+=("$pid")
		done
	fi
	e2e_stop_all all "${pids[@]}"
	if [[ -n ${FLEET_ETCD_DIR:-} && -d $FLEET_ETCD_DIR ]]; then
		mkdir -p "$E2E_LOG_DIR/etcd-logs"
		cp "$FLEET_ETCD_DIR"/m*.log "$E2E_LOG_DIR/etcd-logs/" 2>/dev/null || true
		"$E2E_REPO/tools/etcd-cluster.sh" stop "$FLEET_ETCD_DIR" >/dev/null 2>&1
	fi
	for node in "${FLEET_ROUTERS[@]}"; do
		local root=/sys/fs/bpf/$E2E_ID-$node
		if [[ -e $root ]]; then
			"$E2E_TETHERD" --unload --pin-root "$root" >/dev/null 2>&1 || true
			rm -rf "$root"
		fi
	done
	for node in hub "${FLEET_ROUTERS[@]}" "${FLEET_VMS[@]}" cl1 cl2 cl3 clx; do
		[[ -e /var/run/netns/$E2E_ID-$node ]] && ip netns del "$E2E_ID-$node" 2>/dev/null
	done
	[[ -n ${E2E_RUN_DIR:-} ]] && rm -rf "$E2E_RUN_DIR"
	if ((status == 0)) && [[ -n ${E2E_LOG_DIR:-} ]]; then
		rm -rf "$E2E_LOG_DIR"
	elif [[ -n ${E2E_LOG_DIR:-} ]]; then
		echo "# logs kept in $E2E_LOG_DIR" >&2
	fi
	exit "$status"
}

# --- the topology ----------------------------------------------------------------

fleet_node() {
	local ns
	ns=$(fleet_ns "$1")
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	e2e_sysctl "$ns" net.ipv6.conf.all.accept_dad 0
	e2e_sysctl "$ns" net.ipv4.conf.all.rp_filter 0
	e2e_sysctl "$ns" net.ipv4.conf.default.rp_filter 0
}

# A port of node $1 named $2 on hub bridge $3, with address $4 (CIDR).
fleet_port() {
	local node=$1 dev=$2 bridge=$3 addr=$4 peer
	peer=${E2E_ID}${node}${dev:0:1}
	ip link add "$dev" netns "$(fleet_ns "$node")" type veth peer name "$peer" \
		netns "$(fleet_ns hub)"
	ip -n "$(fleet_ns hub)" link set "$peer" master "$bridge" up
	ip -n "$(fleet_ns "$node")" link set "$dev" up
	[[ -z $addr ]] || ip -n "$(fleet_ns "$node")" addr add "$addr" dev "$dev"
	FLEET_PEER=$peer
}

fleet_topology() {
	local node i hub
	fleet_node hub
	hub=$(fleet_ns hub)
	for bridge in mgmt lan fab; do
		ip -n "$hub" link add "$bridge" type bridge
		ip -n "$hub" link set "$bridge" up
	done
	ip -n "$hub" addr add "$FLEET_MGMT_HUB/24" dev mgmt
	for node in "${FLEET_ROUTERS[@]}"; do
		i=$(fleet_index "$node")
		fleet_node "$node"
		fleet_port "$node" mgmt0 mgmt "10.99.0.1$i/24"
		fleet_port "$node" lan0 lan "192.0.2.1$i/24"
		# A client's veth hands its peer frames with partial checksums; the
		# XDP program redirects them as they are: clients compute them.
		fleet_port "$node" fab0 fab "203.0.113.1$i/24"
		# Frames redirected into a veth reach its peer only when the peer
		# has an XDP program (DESIGN.md, platform notes).
		ip -n "$hub" link set dev "$FLEET_PEER" xdpdrv obj "$E2E_XDP_PASS" sec xdp
		e2e_sysctl "$(fleet_ns "$node")" net.ipv4.ip_forward 1
		# Replies come from the VIP, local on every router too.
		e2e_sysctl "$(fleet_ns "$node")" net.ipv4.conf.fab0.accept_local 1
		e2e_sysctl "$(fleet_ns "$node")" net.ipv4.conf.fab0.rp_filter 0
	done
	for node in "${FLEET_VMS[@]}"; do
		i=$(fleet_index "$node")
		fleet_node "$node"
		fleet_port "$node" eth0 fab "203.0.113.2$i/24"
		ip -n "$(fleet_ns "$node")" addr add "$FLEET_VIP/32" dev lo
		ip -n "$(fleet_ns "$node")" route add default via 203.0.113.11
		ip -n "$(fleet_ns "$node")" link set dev eth0 xdpdrv obj "$E2E_XDP_PASS" sec xdp
	done
	for i in 1 2 3; do
		fleet_node "cl$i"
		fleet_port "cl$i" eth0 lan "192.0.2.2$i/24"
		fleet_in "cl$i" ethtool -K eth0 tx off >/dev/null
		ip -n "$(fleet_ns "cl$i")" route add "$FLEET_VIP/32" via "192.0.2.1$i"
	done
	fleet_node clx
	fleet_port clx eth0 lan 192.0.2.30/24
	fleet_in clx ethtool -K eth0 tx off >/dev/null
	e2e_sysctl "$(fleet_ns clx)" net.ipv4.fib_multipath_hash_policy 1
	ip -n "$(fleet_ns clx)" route add "$FLEET_VIP/32" \
		nexthop via 192.0.2.11 nexthop via 192.0.2.12 nexthop via 192.0.2.13
}

# --- etcd and the routers ------------------------------------------------------------

fleet_etcd_start() {
	local tls=(--tls)
	[[ -z ${FLEET_ETCD_PLAIN:-} ]] || tls=()
	FLEET_STORE=$(ETCD_CLUSTER_NETNS=$(fleet_ns hub) ETCD_CLUSTER_HOST=$FLEET_MGMT_HUB \
		"$E2E_REPO/tools/etcd-cluster.sh" start "$FLEET_ETCD_DIR" 3 "${tls[@]}" --owner $$) ||
		e2e_die "the etcd cluster did not start"
	FLEET_STORE_TLS=()
	((${#tls[@]})) || return 0
	FLEET_STORE_TLS=(--store-ca "$FLEET_ETCD_DIR/tls/ca.pem" --store-cert
		"$FLEET_ETCD_DIR/tls/client.pem" --store-key "$FLEET_ETCD_DIR/tls/client-key.pem")
}

# etcdctl against the cluster, from the hub.
fleet_etcdctl() {
	local tls=()
	((${#FLEET_STORE_TLS[@]} == 0)) || tls=(--cacert "$FLEET_ETCD_DIR/tls/ca.pem" --cert
		"$FLEET_ETCD_DIR/tls/client.pem" --key "$FLEET_ETCD_DIR/tls/client-key.pem")
	ETCDCTL_API=3 fleet_in hub etcdctl --endpoints="$FLEET_STORE" "${tls[@]}" "$@"
}

fleet_socket() {
	echo "$E2E_RUN_DIR/$1.sock"
}

fleet_log_of() {
	echo "$E2E_LOG_DIR/tetherd-$1.log"
}

# Starts router $1's tetherd (extra options after it) and waits for its socket.
fleet_router_start() {
	local node=$1 log
	shift
	log=$(fleet_log_of "$node")
	echo "=== tetherd $(date +%T.%N) $*" >>"$log"
	# A simple command, not a function: $! is tetherd itself (nsenter execs it).
	nsenter --net="/var/run/netns/$(fleet_ns "$node")" "$E2E_TETHERD" --iface lan0 --vip "$FLEET_VIP:$FLEET_PORT" \
		--pin-root "/sys/fs/bpf/$E2E_ID-$node" --socket "$(fleet_socket "$node")" \
		--heartbeat-ms 2000 --hold-ms 3000 --tcp-listen "203.0.113.1$(fleet_index "$node"):7070" \
		--tls-cert "$FLEET_CERTS/$node.pem" --tls-key "$FLEET_CERTS/$node-key.pem" \
		--tls-client-ca "$FLEET_CERTS/ca.pem" "${FLEET_STORE_TLS[@]}" \
		--store "etcd=$FLEET_STORE" --fleet "$FLEET_NAME" --router-name "$node" "$@" \
		>>"$log" 2>&1 &
	local pid=$!
	disown "$pid"
	e2e_track "$pid"
	echo "$pid" >"$E2E_RUN_DIR/tetherd-$node.pid"
	e2e_socket_wait_ready "$pid" "$(fleet_socket "$node")" "$log"
	fleet_wait_synced "$node"
}

fleet_router_pid() {
	cat "$E2E_RUN_DIR/tetherd-$1.pid" 2>/dev/null || true
}

fleet_router_stop() {
	local node=$1 signal=${2:-TERM} pid
	pid=$(fleet_router_pid "$node")
	[[ -n $pid ]] || return 0
	kill "-$signal" "$pid" 2>/dev/null || true
	e2e_wait_gone "$pid" 100 || e2e_die "tetherd of $node ($pid) did not exit after SIG$signal"
	rm -f "$E2E_RUN_DIR/tetherd-$node.pid"
}

# tetherctl against router $1.
fleet_ctl() {
	local node=$1
	shift
	"$E2E_TETHERCTL" --socket "$(fleet_socket "$node")" "$@"
}

# Waits (10 s) until router $1 has read the store (show fleet: synced=yes).
fleet_wait_synced() {
	local i
	for ((i = 0; i < 100; i++)); do
		fleet_ctl "$1" --json fleet status 2>/dev/null | jq -e '.[0].synced == "yes"' \
			>/dev/null 2>&1 && return 0
		sleep 0.1
	done
	e2e_die "router $1 did not read the fleet's store within 10 s ($(fleet_log_of "$1"))"
}

# The fleet's state as router $1 sees it: backends and containers with their
# states and tokens, sorted, one line each (compared across routers).
fleet_view() {
	{
		fleet_ctl "$1" --json backend list |
			jq -r '.[] | "backend \(.backend) id=\(.id) state=\(.state) addr=\(.addr) functions=\(.functions)"'
		fleet_ctl "$1" --json container list |
			jq -r '.[] | "container \(.container) f=\(.function) b=\(.backend) \(.state) \(.token)"'
	} | sort
}

# Waits (up to $2 tenths) until every router running shows the same view as
# router r1; prints the differences when they do not converge.
fleet_wait_converged() {
	local tenths=${1:-100} i node same ref
	for ((i = 0; i < tenths; i++)); do
		same=1
		ref=$(fleet_view r1)
		for node in r2 r3; do
			[[ -n $(fleet_router_pid "$node") ]] || continue
			[[ $(fleet_view "$node") == "$ref" ]] || same=0
		done
		((same)) && return 0
		sleep 0.1
	done
	for node in r2 r3; do
		diff <(fleet_view r1) <(fleet_view "$node") | sed "s/^/#   r1 vs $node: /" | head -n 20
	done
	return 1
}

# --- backends ---------------------------------------------------------------------------

fleet_vm_mac() {
	ip -n "$(fleet_ns "$1")" -j link show dev eth0 | jq -r '.[0].address'
}

# Registers VM $1 through router $2 (options after it: --heartbeat-ms N).
fleet_backend_add() {
	local vm=$1 router=$2
	shift 2
	fleet_ctl "$router" backend add "$vm" --addr "203.0.113.2$(fleet_index "$vm")" \
		--mac "$(fleet_vm_mac "$vm")" --iface fab0 "$@"
}

# The echo backend in VM $1 (answers "served-by=NAME slot=SLOT").
fleet_echo_start() {
	local vm=$1 log=$E2E_LOG_DIR/echo-$1.log i
	nsenter --net="/var/run/netns/$(fleet_ns "$vm")" "$E2E_ECHO" --vip "$FLEET_VIP:$FLEET_PORT" \
		--name "$vm" >"$log" 2>&1 &
	local pid=$!
	disown "$pid"
	e2e_track "$pid"
	for ((i = 0; i < 50; i++)); do
		grep -q serving "$log" 2>/dev/null && return 0
		sleep 0.1
	done
	e2e_die "echo_backend in $vm did not start"
}

# tether-invoke from client $1 (cl1..cl3, clx) to the VIP.
fleet_invoke() {
	local client=$1
	shift
	fleet_in "$client" "$E2E_BUILD/tether-invoke" --vip "$FLEET_VIP:$FLEET_PORT" "$@"
}

# udp_load from client $1.
fleet_load() {
	local client=$1
	shift
	fleet_in "$client" "$E2E_LOAD" --vip "$FLEET_VIP:$FLEET_PORT" "$@"
}

# Keeps backend $1 alive: heartbeats through router $2 every 500 ms in the
# background (a stand-in for its agent). Sets FLEET_HEARTBEAT_PID.
fleet_heartbeats() {
	local vm=$1 router=$2
	(while :; do
		fleet_ctl "$router" backend heartbeat "$vm" >/dev/null 2>&1 || true
		sleep 0.5
	done) &
	FLEET_HEARTBEAT_PID=$!
	disown "$FLEET_HEARTBEAT_PID"
	e2e_track_any "$FLEET_HEARTBEAT_PID"
}
