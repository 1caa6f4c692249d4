# SPDX-License-Identifier: MIT
# End-to-end rig: a client, a router running tetherd, and two VM backends, each
# in its own network namespace, joined by veths. Sourced by tests/e2e/*.sh.
#
#   client (192.0.2.10, 2001:db8:2::10)
#     | veth  E2E_IF_CL <-> E2E_IF_RC
#   router (tetherd's XDP on E2E_IF_RC; VIP local on lo, made by tetherd)
#     | veth  E2E_IF_R1 <-> E2E_IF_V1     | veth  E2E_IF_R2 <-> E2E_IF_V2
#   vm1 (203.0.113.2, VIP on lo)          vm2 (203.0.113.18, VIP on lo)
#
# Requests go client -> router -> VM (XDP redirect); the VMs answer the client
# directly (DSR) through the router's ordinary forwarding. Every name carries
# a random id, so rigs can run side by side; e2e_cleanup (an EXIT trap set by
# e2e_init) kills what the rig started and removes what it made, on every
# exit path.
#
# Use:  source tests/e2e/lib.sh; e2e_init; e2e_topology; e2e_tetherd_start
#       e2e_backend_start vm1; e2e_ctl backend list; e2e_load --count 10 ...

E2E_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_BUILD=${BUILD:-$E2E_REPO/build}
[[ $E2E_BUILD == /* ]] || E2E_BUILD=$E2E_REPO/$E2E_BUILD
E2E_TETHERD=$E2E_BUILD/tetherd
E2E_TETHERCTL=$E2E_BUILD/tetherctl
E2E_ECHO=$E2E_BUILD/tools/echo_backend
E2E_LOAD=$E2E_BUILD/tools/udp_load
E2E_XDP_PASS=$E2E_BUILD/xdp_pass.bpf.o

E2E_PORT=7777
E2E_VIP4=198.51.100.1
E2E_VIP6=2001:db8:100::1
E2E_CLIENT4=192.0.2.10
E2E_CLIENT6=2001:db8:2::10

# Background processes are recorded in files of the rig's run directory, not
# in variables, so that tests may run in subshells and cleanup still finds
# everything: $E2E_RUN_DIR/pids (all), $E2E_RUN_DIR/tetherd.pid (the current).
E2E_TETHERD_ARGS=()  # extra tetherd options, kept for restarts

e2e_die() {
	echo "e2e: FATAL: $*" >&2
	exit 1
}

e2e_log() {
	echo "# $*"
}

e2e_require_root() {
	if [[ $(id -u) -ne 0 ]]; then
		e2e_die "the end-to-end tests need root (network namespaces, XDP, bpffs); run them as root"
	fi
}

e2e_require_tools() {
	local tool
	for tool in "$E2E_TETHERD" "$E2E_TETHERCTL" "$E2E_ECHO" "$E2E_LOAD"; do
		[[ -x $tool ]] || e2e_die "$tool is missing: run 'make' first"
	done
	[[ -f $E2E_XDP_PASS ]] || e2e_die "$E2E_XDP_PASS is missing: run 'make' first"
	for tool in ip nsenter socat bpftool jq ethtool; do
		command -v "$tool" >/dev/null || e2e_die "'$tool' is not installed (make deps)"
	done
}

# Names for this rig; the EXIT trap that removes it; INT/TERM exit through it.
e2e_init() {
	e2e_require_root
	e2e_require_tools
	E2E_ID=tt$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
	E2E_NS_CLIENT=$E2E_ID-client
	E2E_NS_ROUTER=$E2E_ID-router
	E2E_NS_VM1=$E2E_ID-vm1
	E2E_NS_VM2=$E2E_ID-vm2
	E2E_IF_CL=${E2E_ID}cl   # client's end, towards the router
	E2E_IF_RC=${E2E_ID}rc   # router's end, towards the client (XDP here)
	E2E_IF_R1=${E2E_ID}r1   # router -> vm1
	E2E_IF_V1=${E2E_ID}v1
	E2E_IF_R2=${E2E_ID}r2   # router -> vm2
	E2E_IF_V2=${E2E_ID}v2
	E2E_PIN_ROOT=/sys/fs/bpf/$E2E_ID
	E2E_RUN_DIR=/run/$E2E_ID
	E2E_SOCKET=$E2E_RUN_DIR/tetherd.sock
	E2E_LOG_DIR=$(mktemp -d "/tmp/$E2E_ID.XXXXXX")
	E2E_TETHERD_LOG=$E2E_LOG_DIR/tetherd.log
	mkdir -p "$E2E_RUN_DIR"
	: >"$E2E_RUN_DIR/pids"
	trap e2e_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	e2e_log "rig $E2E_ID (logs in $E2E_LOG_DIR)"
}

e2e_cleanup() {
	local status=$? pid pids=()
	trap - EXIT INT TERM
	if [[ -f ${E2E_RUN_DIR:-}/pids ]]; then
		for pid in $(<"$E2E_RUN_DIR/pids"); do
			e2e_ours "$pid" && pids+=("$pid")
		done
	fi
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		e2e_wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
	done
	if [[ -n ${E2E_PIN_ROOT:-} && -e $E2E_PIN_ROOT ]]; then
		"$E2E_TETHERD" --unload --pin-root "$E2E_PIN_ROOT" >/dev/null 2>&1 || true
		rm -rf "$E2E_PIN_ROOT"
	fi
	local ns
	for ns in "${E2E_NS_CLIENT:-}" "${E2E_NS_ROUTER:-}" "${E2E_NS_VM1:-}" "${E2E_NS_VM2:-}"; do
		[[ -n $ns ]] && ip netns del "$ns" 2>/dev/null || true
	done
	[[ -n ${E2E_RUN_DIR:-} ]] && rm -rf "$E2E_RUN_DIR"
	if ((status == 0)) && [[ -n ${E2E_LOG_DIR:-} ]]; then
		rm -rf "$E2E_LOG_DIR"
	elif [[ -n ${E2E_LOG_DIR:-} ]]; then
		echo "# logs kept in $E2E_LOG_DIR" >&2
	fi
	exit "$status"
}

# True while pid runs (an exited child not yet reaped is not running).
e2e_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# Polls up to tenths x 0.1 s for pid to be gone; 0 when it is.
e2e_wait_gone() {
	local pid=$1 tenths=$2 i
	for ((i = 0; i < tenths; i++)); do
		e2e_alive "$pid" || return 0
		sleep 0.1
	done
	! e2e_alive "$pid"
}

# Records a background process for cleanup.
e2e_track() {
	echo "$1" >>"$E2E_RUN_DIR/pids"
}

# True when pid still runs one of the rig's programs (not a reused pid).
e2e_ours() {
	local exe
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	[[ $exe == "$E2E_BUILD"/* ]]
}

# Runs a command in a namespace (its own /sys, no bpffs: not for tetherd).
e2e_in() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# Runs a command in the router's network namespace but the host's mount
# namespace, so the pin root under /sys/fs/bpf is the host's.
e2e_in_router() {
	nsenter --net="/var/run/netns/$E2E_NS_ROUTER" "$@"
}

e2e_sysctl() {
	local ns=$1 key=$2 value=$3
	e2e_in "$ns" sysctl -qw "$key=$value" >/dev/null
}

e2e_veth() {
	local ns_a=$1 if_a=$2 ns_b=$3 if_b=$4
	ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b"
	ip -n "$ns_a" link set "$if_a" up
	ip -n "$ns_b" link set "$if_b" up
}

e2e_addr() {
	local ns=$1 dev=$2 addr=$3
	if [[ $addr == *:* ]]; then
		ip -n "$ns" addr add "$addr" dev "$dev" nodad
	else
		ip -n "$ns" addr add "$addr" dev "$dev"
	fi
}

e2e_mac() {
	local ns=$1 dev=$2
	ip -n "$ns" -j link show dev "$dev" | jq -r '.[0].address'
}

# A VM: its link to the router, the VIPs on lo, default routes back through
# the router (replies go to the client directly), XDP_PASS on its veth end so
# frames redirected by the router's XDP are delivered.
e2e_vm() {
	local ns=$1 if_router=$2 if_vm=$3 net4=$4 net6=$5
	e2e_veth "$E2E_NS_ROUTER" "$if_router" "$ns" "$if_vm"
	e2e_addr "$E2E_NS_ROUTER" "$if_router" "$net4.$6/28"
	e2e_addr "$ns" "$if_vm" "$net4.$7/28"
	e2e_addr "$E2E_NS_ROUTER" "$if_router" "$net6:1/112"
	e2e_addr "$ns" "$if_vm" "$net6:2/112"
	e2e_addr "$ns" lo "$E2E_VIP4/32"
	e2e_addr "$ns" lo "$E2E_VIP6/128"
	ip -n "$ns" route add default via "$net4.$6"
	ip -n "$ns" -6 route add default via "$net6:1"
	# Replies come from the VIP, which tetherd makes local on the router too:
	# without accept_local the router drops them as martians.
	e2e_sysctl "$E2E_NS_ROUTER" "net.ipv4.conf.$if_router.accept_local" 1
	e2e_sysctl "$E2E_NS_ROUTER" "net.ipv4.conf.$if_router.rp_filter" 0
	e2e_sysctl "$ns" net.ipv4.conf.all.rp_filter 0
	e2e_sysctl "$ns" "net.ipv4.conf.$if_vm.rp_filter" 0
	ip -n "$ns" link set dev "$if_vm" xdpdrv obj "$E2E_XDP_PASS" sec xdp
}

e2e_topology() {
	local ns
	for ns in "$E2E_NS_CLIENT" "$E2E_NS_ROUTER" "$E2E_NS_VM1" "$E2E_NS_VM2"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		# No duplicate address detection, link-local addresses included:
		# addresses are usable at once, and nothing else is on these links.
		e2e_sysctl "$ns" net.ipv6.conf.all.accept_dad 0
		e2e_sysctl "$ns" net.ipv6.conf.default.accept_dad 0
	done
	e2e_veth "$E2E_NS_CLIENT" "$E2E_IF_CL" "$E2E_NS_ROUTER" "$E2E_IF_RC"
	# veth hands its peer CHECKSUM_PARTIAL skbs (only the pseudo-header sum in
	# the UDP checksum); a frame the router's XDP redirects loses that state and
	# reaches the VM with a bad checksum. A real NIC delivers whole checksums:
	# have the client compute them.
	ip netns exec "$E2E_NS_CLIENT" ethtool -K "$E2E_IF_CL" tx off >/dev/null
	e2e_addr "$E2E_NS_CLIENT" "$E2E_IF_CL" "$E2E_CLIENT4/24"
	e2e_addr "$E2E_NS_CLIENT" "$E2E_IF_CL" "$E2E_CLIENT6/64"
	e2e_addr "$E2E_NS_ROUTER" "$E2E_IF_RC" 192.0.2.1/24
	e2e_addr "$E2E_NS_ROUTER" "$E2E_IF_RC" 2001:db8:2::1/64
	ip -n "$E2E_NS_CLIENT" route add "$E2E_VIP4/32" via 192.0.2.1
	ip -n "$E2E_NS_CLIENT" -6 route add "$E2E_VIP6/128" via 2001:db8:2::1
	e2e_sysctl "$E2E_NS_ROUTER" net.ipv4.ip_forward 1
	e2e_sysctl "$E2E_NS_ROUTER" net.ipv6.conf.all.forwarding 1
	e2e_sysctl "$E2E_NS_ROUTER" net.ipv4.conf.all.rp_filter 0
	e2e_vm "$E2E_NS_VM1" "$E2E_IF_R1" "$E2E_IF_V1" 203.0.113 2001:db8:3::1 1 2
	e2e_vm "$E2E_NS_VM2" "$E2E_IF_R2" "$E2E_IF_V2" 203.0.113 2001:db8:3::2 17 18
}

# --- tetherd -----------------------------------------------------------------

# Starts tetherd in the router's namespace (extra options kept for restarts)
# and waits until its socket answers.
e2e_tetherd_start() {
	(($# == 0)) || E2E_TETHERD_ARGS=("$@")
	echo "=== tetherd $(date +%T.%N) ${E2E_TETHERD_ARGS[*]}" >>"$E2E_TETHERD_LOG"
	# A simple command, not a function, so that $! is tetherd itself (nsenter
	# and ip netns exec exec their command): signals reach it, not a subshell.
	nsenter --net="/var/run/netns/$E2E_NS_ROUTER" "$E2E_TETHERD" --iface "$E2E_IF_RC" \
		--vip "$E2E_VIP4:$E2E_PORT" --vip "[$E2E_VIP6]:$E2E_PORT" \
		--pin-root "$E2E_PIN_ROOT" --socket "$E2E_SOCKET" \
		"${E2E_TETHERD_ARGS[@]}" >>"$E2E_TETHERD_LOG" 2>&1 &
	local pid=$!
	disown "$pid" # stopped on purpose by the tests: no "Killed" notice from bash
	e2e_track "$pid"
	echo "$pid" >"$E2E_RUN_DIR/tetherd.pid"
	e2e_tetherd_wait_ready "$pid"
}

# The running tetherd's pid (empty when none was started or it was stopped).
e2e_tetherd_pid() {
	cat "$E2E_RUN_DIR/tetherd.pid" 2>/dev/null || true
}

e2e_tetherd_wait_ready() {
	local pid=$1 i
	for ((i = 0; i < 100; i++)); do
		if ! e2e_alive "$pid"; then
			cat "$E2E_TETHERD_LOG" >&2
			e2e_die "tetherd exited during start-up (log above)"
		fi
		if [[ -S $E2E_SOCKET ]] &&
			printf 'list backend\n' | socat -t1 - "UNIX-CONNECT:$E2E_SOCKET" 2>/dev/null |
			head -n1 | grep -qx ok; then
			return 0
		fi
		sleep 0.1
	done
	cat "$E2E_TETHERD_LOG" >&2
	e2e_die "tetherd's socket $E2E_SOCKET did not answer within 10 s"
}

# Stops tetherd with a signal (TERM, KILL) and waits for it to be gone.
e2e_tetherd_stop() {
	local signal=${1:-TERM} pid
	pid=$(e2e_tetherd_pid)
	[[ -n $pid ]] || return 0
	kill "-$signal" "$pid" 2>/dev/null || true
	e2e_wait_gone "$pid" 100 || e2e_die "tetherd ($pid) did not exit after SIG$signal"
	wait "$pid" 2>/dev/null || true
	rm -f "$E2E_RUN_DIR/tetherd.pid"
}

# tetherctl against this rig's tetherd.
e2e_ctl() {
	"$E2E_TETHERCTL" --socket "$E2E_SOCKET" "$@"
}

# One raw protocol request through socat; prints the answer.
e2e_raw() {
	printf '%s\n' "$1" | socat -t2 - "UNIX-CONNECT:$E2E_SOCKET"
}

# The id of the program on an interface of the router (empty: none).
e2e_xdp_prog_id() {
	ip -n "$E2E_NS_ROUTER" -j -d link show dev "$1" | jq -r '.[0].xdp.prog.id // empty'
}

# --- backends and clients ------------------------------------------------------

# Starts the echo backend NAME (vm1 or vm2) in its namespace, on both VIPs.
e2e_backend_start() {
	local name=$1 ns
	case $name in
	vm1) ns=$E2E_NS_VM1 ;;
	vm2) ns=$E2E_NS_VM2 ;;
	*) e2e_die "no VM '$name'" ;;
	esac
	ip netns exec "$ns" "$E2E_ECHO" --vip "$E2E_VIP4:$E2E_PORT" --vip "[$E2E_VIP6]:$E2E_PORT" \
		--name "$name" >"$E2E_LOG_DIR/echo_$name.log" 2>&1 &
	local pid=$! i
	e2e_track "$pid"
	for ((i = 0; i < 50; i++)); do
		grep -q serving "$E2E_LOG_DIR/echo_$name.log" 2>/dev/null && return 0
		e2e_alive "$pid" || break
		sleep 0.1
	done
	cat "$E2E_LOG_DIR/echo_$name.log" >&2
	e2e_die "echo_backend $name did not start"
}

# Registers vm1 or vm2 with tetherd: its VM-side MAC, the router's veth to it.
e2e_backend_add() {
	local name=$1 ns ifr ifv addr
	case $name in
	vm1) ns=$E2E_NS_VM1 ifr=$E2E_IF_R1 ifv=$E2E_IF_V1 addr=203.0.113.2 ;;
	vm2) ns=$E2E_NS_VM2 ifr=$E2E_IF_R2 ifv=$E2E_IF_V2 addr=203.0.113.18 ;;
	*) e2e_die "no VM '$name'" ;;
	esac
	e2e_ctl backend add "$name" --addr "$addr" --mac "$(e2e_mac "$ns" "$ifv")" \
		--iface "$ifr" "${@:2}"
}

# udp_load from the client namespace to the IPv4 VIP (or --vip given later).
e2e_load() {
	e2e_in "$E2E_NS_CLIENT" "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" "$@"
}

# udp_load in the background; its output goes to FILE. Sets E2E_LOAD_PID.
e2e_load_bg() {
	local file=$1
	shift
	ip netns exec "$E2E_NS_CLIENT" "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" "$@" >"$file" 2>&1 &
	E2E_LOAD_PID=$!
	e2e_track "$E2E_LOAD_PID"
}

# Waits for the background udp_load; prints its summary line.
e2e_load_wait() {
	local file=$1
	wait "$E2E_LOAD_PID" || true
	head -n1 "$file"
}

# The value of key in a key=value summary line ("" when absent).
e2e_field() {
	local line=$1 key=$2
	sed -n "s/.*\(^\| \)$key=\([^ ]*\).*/\2/p" <<<"$line" | head -n1
}
