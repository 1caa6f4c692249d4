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
# e2e_topology --vms 3 --clients 2 adds vm3 (203.0.113.34) and a second client
# (198.18.2.10, 2001:db8:4::10) on its own veth to the router (E2E_IF_CL2 <->
# E2E_IF_RC2, XDP there too). VMs may run the real VM agent instead of the
# echo backend: e2e_agent_start vm1 --function 1:2 (agents register
# themselves; e2e_agent_kill is a VM crash).
#
# Requests go client -> router -> VM (XDP redirect); the VMs answer the client
# directly (DSR) through the router's ordinary forwarding. Every name carries
# a random id, so rigs can run side by side; e2e_cleanup (an EXIT trap set by
# e2e_init) kills what the rig started and removes what it made, on every
# exit path.
#
# Use:  source tests/e2e/lib.sh; e2e_init; e2e_topology; e2e_tetherd_start
#       e2e_backend_start vm1; e2e_ctl backend list; e2e_load --count 10 ...
# or:   e2e_topology --vms 3 --clients 2; e2e_tetherd_start
#       e2e_agent_start vm1 --function 1:2; e2e_agent_wait_warm vm1 2

E2E_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_BUILD=${BUILD:-$E2E_REPO/build}
[[ $E2E_BUILD == /* ]] || E2E_BUILD=$E2E_REPO/$E2E_BUILD
E2E_TETHERD=$E2E_BUILD/tetherd
E2E_TETHERCTL=$E2E_BUILD/tetherctl
E2E_ECHO=$E2E_BUILD/tools/echo_backend
E2E_LOAD=$E2E_BUILD/tools/udp_load
E2E_AGENT=$E2E_BUILD/tether-agent
E2E_XDP_PASS=$E2E_BUILD/xdp_pass.bpf.o

E2E_PORT=7777
E2E_VIP4=198.51.100.1
E2E_VIP6=2001:db8:100::1
E2E_CLIENT4=192.0.2.10
E2E_CLIENT6=2001:db8:2::10
E2E_CLIENT2_4=198.18.2.10      # the second client (e2e_topology --clients 2)
E2E_CLIENT2_6=2001:db8:4::10
E2E_ROUTER4=192.0.2.1          # the router's own addresses on the client's link
E2E_ROUTER6=2001:db8:2::1

# Background processes are recorded in files of the rig's run directory, not
# in variables, so that tests may run in subshells and cleanup still finds
# everything: $E2E_RUN_DIR/pids (all), $E2E_RUN_DIR/tetherd.pid (the current),
# $E2E_RUN_DIR/agent_NAME.pid (the VM agents).
E2E_TETHERD_ARGS=()  # extra tetherd options, kept for restarts
E2E_TETHERD_IFACES=() # the router's client-facing interfaces (XDP), set by e2e_init/e2e_topology
E2E_NS_EXTRA=()       # namespaces a suite makes itself (beyond e2e_topology's), removed by e2e_cleanup

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
	E2E_NS_VM3=$E2E_ID-vm3          # e2e_topology --vms 3
	E2E_NS_CLIENT2=$E2E_ID-client2  # e2e_topology --clients 2
	E2E_IF_CL=${E2E_ID}cl   # client's end, towards the router
	E2E_IF_RC=${E2E_ID}rc   # router's end, towards the client (XDP here)
	E2E_IF_R1=${E2E_ID}r1   # router -> vm1
	E2E_IF_V1=${E2E_ID}v1
	E2E_IF_R2=${E2E_ID}r2   # router -> vm2
	E2E_IF_V2=${E2E_ID}v2
	E2E_IF_R3=${E2E_ID}r3   # router -> vm3
	E2E_IF_V3=${E2E_ID}v3
	E2E_IF_CL2=${E2E_ID}cl2 # the second client's end
	E2E_IF_RC2=${E2E_ID}rc2 # router's end towards it (XDP here too)
	E2E_TETHERD_IFACES=("$E2E_IF_RC")
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
	[[ -n ${E2E_QUIET:-} ]] || e2e_log "rig $E2E_ID (logs in $E2E_LOG_DIR)"
}

e2e_cleanup() {
	local status=$? pid pids=() agents=()
	trap - EXIT INT TERM
	if [[ -f ${E2E_RUN_DIR:-}/pids ]]; then
		for pid in $(<"$E2E_RUN_DIR/pids"); do
			e2e_ours "$pid" || continue
			if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$E2E_AGENT" ]]; then
				agents+=("$pid")
			else
				pids+=("$pid")
			fi
		done
	fi
	# VM agents first, while tetherd still answers their leaving; then the rest.
	e2e_stop_all agents "${agents[@]}"
	e2e_stop_all others "${pids[@]}"
	if [[ -n ${E2E_PIN_ROOT:-} && -e $E2E_PIN_ROOT ]]; then
		"$E2E_TETHERD" --unload --pin-root "$E2E_PIN_ROOT" >/dev/null 2>&1 || true
		rm -rf "$E2E_PIN_ROOT"
	fi
	local ns
	for ns in "${E2E_NS_CLIENT:-}" "${E2E_NS_CLIENT2:-}" "${E2E_NS_ROUTER:-}" "${E2E_NS_VM1:-}" \
		"${E2E_NS_VM2:-}" "${E2E_NS_VM3:-}" "${E2E_NS_EXTRA[@]}"; do
		[[ -n $ns && -e /var/run/netns/$ns ]] && ip netns del "$ns" 2>/dev/null || true
	done
	[[ -n ${E2E_RUN_DIR:-} ]] && rm -rf "$E2E_RUN_DIR"
	if ((status == 0)) && [[ -n ${E2E_LOG_DIR:-} ]]; then
		rm -rf "$E2E_LOG_DIR"
	elif [[ -n ${E2E_LOG_DIR:-} ]]; then
		echo "# logs kept in $E2E_LOG_DIR" >&2
	fi
	exit "$status"
}

# Sends TERM to every pid given (after a label), waits up to 3 s for all of
# them together, then KILLs what is left.
e2e_stop_all() {
	local pid left i
	shift
	(($#)) || return 0
	kill -TERM "$@" 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		left=0
		for pid in "$@"; do
			e2e_alive "$pid" && left=1
		done
		((left)) || return 0
		sleep 0.1
	done
	kill -KILL "$@" 2>/dev/null || true
	for pid in "$@"; do
		e2e_wait_gone "$pid" 20 || true
	done
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

# True when pid still runs one of the rig's programs (not a reused pid): a
# program of the build, or one recorded by e2e_track_any that still has the
# start time it had then.
e2e_ours() {
	local exe
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	[[ $exe == "$E2E_BUILD"/* ]] && return 0
	[[ -f ${E2E_RUN_DIR:-}/pids.any ]] &&
		grep -qx "$1 $(e2e_start_time "$1")" "$E2E_RUN_DIR/pids.any"
}

# The start time of pid (clock ticks since boot; empty when it is gone).
e2e_start_time() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	# shellcheck disable=SC2086 # the fields, one a word
	set -- $stat
	echo "${20}"
}

# Records a background process that is no program of the build (socat,
# python) for cleanup, with its start time so a reused pid is left alone.
e2e_track_any() {
	echo "$1 $(e2e_start_time "$1")" >>"$E2E_RUN_DIR/pids.any"
	e2e_track "$1"
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

# A client: its link to the router (the router's end gets tetherd's XDP),
# addresses, and routes to the VIPs through the router.
e2e_client() {
	local ns=$1 if_client=$2 if_router=$3 client4=$4 client6=$5 router4=$6 router6=$7
	e2e_veth "$ns" "$if_client" "$E2E_NS_ROUTER" "$if_router"
	# veth hands its peer CHECKSUM_PARTIAL skbs (only the pseudo-header sum in
	# the UDP checksum); a frame the router's XDP redirects loses that state and
	# reaches the VM with a bad checksum. A real NIC delivers whole checksums:
	# have the client compute them.
	ip netns exec "$ns" ethtool -K "$if_client" tx off >/dev/null
	e2e_addr "$ns" "$if_client" "$client4/24"
	e2e_addr "$ns" "$if_client" "$client6/64"
	e2e_addr "$E2E_NS_ROUTER" "$if_router" "$router4/24"
	e2e_addr "$E2E_NS_ROUTER" "$if_router" "$router6/64"
	ip -n "$ns" route add "$E2E_VIP4/32" via "$router4"
	ip -n "$ns" -6 route add "$E2E_VIP6/128" via "$router6"
}

# The rig: client, router, vm1, vm2; --vms 3 adds vm3, --clients 2 a second
# client (whose router-side interface joins E2E_TETHERD_IFACES).
e2e_topology() {
	local vms=2 clients=1 ns
	while (($#)); do
		case $1 in
		--vms) vms=$2 ;;
		--clients) clients=$2 ;;
		*) e2e_die "e2e_topology: unknown option '$1'" ;;
		esac
		shift 2
	done
	((vms >= 2 && vms <= 3)) || e2e_die "e2e_topology: --vms is 2 or 3"
	((clients >= 1 && clients <= 2)) || e2e_die "e2e_topology: --clients is 1 or 2"
	local namespaces=("$E2E_NS_CLIENT" "$E2E_NS_ROUTER" "$E2E_NS_VM1" "$E2E_NS_VM2")
	((vms < 3)) || namespaces+=("$E2E_NS_VM3")
	((clients < 2)) || namespaces+=("$E2E_NS_CLIENT2")
	for ns in "${namespaces[@]}"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		# No duplicate address detection, link-local addresses included:
		# addresses are usable at once, and nothing else is on these links.
		e2e_sysctl "$ns" net.ipv6.conf.all.accept_dad 0
		e2e_sysctl "$ns" net.ipv6.conf.default.accept_dad 0
	done
	e2e_client "$E2E_NS_CLIENT" "$E2E_IF_CL" "$E2E_IF_RC" "$E2E_CLIENT4" "$E2E_CLIENT6" \
		"$E2E_ROUTER4" "$E2E_ROUTER6"
	if ((clients >= 2)); then
		e2e_client "$E2E_NS_CLIENT2" "$E2E_IF_CL2" "$E2E_IF_RC2" "$E2E_CLIENT2_4" \
			"$E2E_CLIENT2_6" 198.18.2.1 2001:db8:4::1
		E2E_TETHERD_IFACES+=("$E2E_IF_RC2")
	fi
	e2e_sysctl "$E2E_NS_ROUTER" net.ipv4.ip_forward 1
	e2e_sysctl "$E2E_NS_ROUTER" net.ipv6.conf.all.forwarding 1
	e2e_sysctl "$E2E_NS_ROUTER" net.ipv4.conf.all.rp_filter 0
	e2e_vm "$E2E_NS_VM1" "$E2E_IF_R1" "$E2E_IF_V1" 203.0.113 2001:db8:3::1 1 2
	e2e_vm "$E2E_NS_VM2" "$E2E_IF_R2" "$E2E_IF_V2" 203.0.113 2001:db8:3::2 17 18
	((vms < 3)) || e2e_vm "$E2E_NS_VM3" "$E2E_IF_R3" "$E2E_IF_V3" 203.0.113 2001:db8:3::3 33 34
}

# --- tetherd -----------------------------------------------------------------

# Starts tetherd in the router's namespace (extra options kept for restarts)
# and waits until its socket answers.
e2e_tetherd_start() {
	(($# == 0)) || E2E_TETHERD_ARGS=("$@")
	echo "=== tetherd $(date +%T.%N) ${E2E_TETHERD_ARGS[*]}" >>"$E2E_TETHERD_LOG"
	# A simple command, not a function, so that $! is tetherd itself (nsenter
	# and ip netns exec exec their command): signals reach it, not a subshell.
	local iface ifaces=()
	for iface in "${E2E_TETHERD_IFACES[@]}"; do
		ifaces+=(--iface "$iface")
	done
	nsenter --net="/var/run/netns/$E2E_NS_ROUTER" "$E2E_TETHERD" "${ifaces[@]}" \
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

# Sets E2E_VM_NS, E2E_VM_IFR (the router's veth to it), E2E_VM_IFV (its
# own veth) and E2E_VM_ADDR for VM NAME (vm1, vm2, vm3).
e2e_vm_vars() {
	case $1 in
	vm1) E2E_VM_NS=$E2E_NS_VM1 E2E_VM_IFR=$E2E_IF_R1 E2E_VM_IFV=$E2E_IF_V1 E2E_VM_ADDR=203.0.113.2 ;;
	vm2) E2E_VM_NS=$E2E_NS_VM2 E2E_VM_IFR=$E2E_IF_R2 E2E_VM_IFV=$E2E_IF_V2 E2E_VM_ADDR=203.0.113.18 ;;
	vm3) E2E_VM_NS=$E2E_NS_VM3 E2E_VM_IFR=$E2E_IF_R3 E2E_VM_IFV=$E2E_IF_V3 E2E_VM_ADDR=203.0.113.34 ;;
	*) e2e_die "no VM '$1'" ;;
	esac
}

# Starts the echo backend NAME (vm1, vm2, vm3) in its namespace, on both VIPs.
e2e_backend_start() {
	local name=$1 ns
	e2e_vm_vars "$name"
	ns=$E2E_VM_NS
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

# Registers vm1, vm2 or vm3 with tetherd: its VM-side MAC, the router's veth to it.
e2e_backend_add() {
	local name=$1 ns ifr ifv addr
	e2e_vm_vars "$name"
	ns=$E2E_VM_NS ifr=$E2E_VM_IFR ifv=$E2E_VM_IFV addr=$E2E_VM_ADDR
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

# A port for a test's listener, with COUNT-1 more after it free for others
# (default 1): from 20000 up to 32767, below the ephemeral range of a new
# namespace (32768-60999). A port picked within that range can be taken
# meanwhile as the source port of an outgoing connection (a curl, a scrape),
# and the listener's bind then fails with "Address already in use".
e2e_random_port() {
	local count=${1:-1}
	echo $((20000 + RANDOM % (32768 - 20000 - count + 1)))
}

# The 4 bytes of a u32 map key (little-endian), as bpftool takes them after
# "key": a backend id or container slot, for a lookup in a pinned map.
e2e_key_bytes() {
	local n=$1
	printf '%d %d %d %d' $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) $((n >> 24 & 255))
}

# --- VM agents -------------------------------------------------------------------

# Starts the VM agent in VM NAME (vm1..vm3), registered with this rig's tetherd
# over its socket, serving both VIPs; the options after NAME are the agent's
# (--function 1:2 --capacity --cold-start-ms 300 --heartbeat-ms 1000 ...).
# Its log: $E2E_LOG_DIR/agent_NAME.log. Does not wait: see e2e_agent_wait_warm.
e2e_agent_start() {
	local name=$1 mac
	shift
	[[ -x $E2E_AGENT ]] || e2e_die "$E2E_AGENT is missing: run 'make' first"
	e2e_vm_vars "$name"
	mac=$(e2e_mac "$E2E_VM_NS" "$E2E_VM_IFV")
	e2e_agent_spawn "$E2E_VM_NS" "$name" --addr "$E2E_VM_ADDR" --mac "$mac" \
		--router-iface "$E2E_VM_IFR" --vip "$E2E_VIP4:$E2E_PORT" --vip "[$E2E_VIP6]:$E2E_PORT" \
		--tetherd "unix:$E2E_SOCKET" "$@"
}

# tether-agent --name NAME in namespace NS with exactly the other options
# given (a VM of a suite's own rig), logged and tracked as e2e_agent_start's.
e2e_agent_spawn() {
	local ns=$1 name=$2
	shift 2
	echo "=== tether-agent $(date +%T.%N) $*" >>"$E2E_LOG_DIR/agent_$name.log"
	ip netns exec "$ns" "$E2E_AGENT" --name "$name" "$@" >>"$E2E_LOG_DIR/agent_$name.log" 2>&1 &
	local pid=$!
	disown "$pid" # killed on purpose by the tests: no "Killed" notice from bash
	e2e_track "$pid"
	echo "$pid" >"$E2E_RUN_DIR/agent_$name.pid"
}

# --- TLS between tetherd and the agents ---------------------------------------------

E2E_TLS_PORT=7070 # the router's TCP listener with e2e_tls_certs

# Certificates for mutual TLS between the rig's tetherd and its VM agents
# (tools/test-certs.sh, certtool), in $E2E_TLS_DIR ($E2E_LOG_DIR/certs): a
# CA, tetherd's certificate naming the router's address on each VM's link,
# and a client certificate per VM (CN=vm1, vm2, vm3: each binds its agent to
# its own backend). Sets E2E_TLS_TETHERD, tetherd's options for a listener on
# every address of the router, port E2E_TLS_PORT, taking those certificates.
e2e_tls_certs() {
	local t=$E2E_REPO/tools/test-certs.sh name
	command -v certtool >/dev/null || e2e_die "certtool is not installed (make deps: gnutls-bin)"
	E2E_TLS_DIR=$E2E_LOG_DIR/certs
	"$t" ca "$E2E_TLS_DIR" ca >/dev/null
	"$t" server "$E2E_TLS_DIR" ca tetherd 127.0.0.1 203.0.113.1 203.0.113.17 203.0.113.33 \
		>/dev/null
	for name in vm1 vm2 vm3; do
		"$t" client "$E2E_TLS_DIR" ca "$name" "$name" >/dev/null
	done
	E2E_TLS_TETHERD=(--tcp-listen "0.0.0.0:$E2E_TLS_PORT" --tls-cert "$E2E_TLS_DIR/tetherd.pem"
		--tls-key "$E2E_TLS_DIR/tetherd-key.pem" --tls-client-ca "$E2E_TLS_DIR/ca.pem")
}

# e2e_agent_start over TCP with mutual TLS (after e2e_tls_certs): VM NAME's
# agent reaches tetherd at the router's address on its link with its own
# certificate and no secret.
e2e_agent_start_tls() {
	local name=$1
	shift
	e2e_vm_vars "$name"
	local router=${E2E_VM_ADDR%.*}.$((${E2E_VM_ADDR##*.} - 1))
	e2e_agent_start "$name" --tetherd "tcp:$router:$E2E_TLS_PORT" \
		--tls-ca "$E2E_TLS_DIR/ca.pem" --tls-cert "$E2E_TLS_DIR/$name.pem" \
		--tls-key "$E2E_TLS_DIR/$name-key.pem" "$@"
}

# The pid of VM NAME's agent (empty when none runs).
e2e_agent_pid() {
	local pid
	pid=$(cat "$E2E_RUN_DIR/agent_$1.pid" 2>/dev/null) || return 0
	e2e_alive "$pid" && echo "$pid"
	return 0
}

# The container processes of VM NAME's agent (its children), one per line.
e2e_agent_children() {
	local pid
	pid=$(e2e_agent_pid "$1")
	[[ -n $pid ]] || return 0
	cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d'
}

# Waits (up to 10 s) until backend NAME is up at tetherd with at least COUNT
# warm containers.
e2e_agent_wait_warm() {
	local name=$1 count=$2 i warm pid
	for ((i = 0; i < 100; i++)); do
		warm=$(e2e_ctl --json container list --backend "$name" 2>/dev/null |
			jq '[.[] | select(.state == "warm")] | length' 2>/dev/null) || warm=0
		((${warm:-0} >= count)) && return 0
		pid=$(cat "$E2E_RUN_DIR/agent_$name.pid" 2>/dev/null || true)
		if [[ -n $pid ]] && ! e2e_alive "$pid"; then
			cat "$E2E_LOG_DIR/agent_$name.log" >&2
			e2e_die "tether-agent $name exited (log above)"
		fi
		sleep 0.1
	done
	cat "$E2E_LOG_DIR/agent_$name.log" >&2
	e2e_die "tether-agent $name: ${warm:-0} of $count containers warm after 10 s (log above)"
}

# A VM crash: SIGKILL to VM NAME's agent and to every container process it
# ran; sets E2E_KILLED_AT_NS to the wall-clock time (ns) right after the kill.
e2e_agent_kill() {
	local name=$1 pid children
	pid=$(e2e_agent_pid "$name")
	[[ -n $pid ]] || e2e_die "no agent runs in $name"
	children=$(e2e_agent_children "$name")
	# shellcheck disable=SC2086 # one pid a word
	kill -KILL "$pid" $children 2>/dev/null || true
	# When it died (wall clock, ns): nothing of the VM runs after this.
	E2E_KILLED_AT_NS=${EPOCHREALTIME/./}000
	e2e_wait_gone "$pid" 50 || e2e_die "tether-agent $name ($pid) survived SIGKILL"
	for pid in $children; do
		e2e_wait_gone "$pid" 50 || e2e_die "container process $pid of $name survived SIGKILL"
	done
	rm -f "$E2E_RUN_DIR/agent_$name.pid"
}

# Stops VM NAME's agent with SIGTERM (it drains and leaves) and waits.
e2e_agent_stop() {
	local name=$1 pid
	pid=$(e2e_agent_pid "$name")
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	e2e_wait_gone "$pid" 150 || e2e_die "tether-agent $name ($pid) did not exit after SIGTERM"
	rm -f "$E2E_RUN_DIR/agent_$name.pid"
}

# --- extra tetherds, refused starts, client connections (test_tetherd.sh) ------

# A veth pair with both ends in the router's namespace, up: an interface of its
# own for an extra tetherd (NAME; its peer is NAMEp). NAME: at most 14
# characters, by convention $E2E_ID and a short tag. The namespace takes it
# away with it.
e2e_router_veth() {
	local name=$1
	ip link add "$name" netns "$E2E_NS_ROUTER" type veth peer name "${name}p" \
		netns "$E2E_NS_ROUTER"
	ip -n "$E2E_NS_ROUTER" link set "$name" up
	ip -n "$E2E_NS_ROUTER" link set "${name}p" up
}

# Waits until tetherd PID answers on SOCKET; dies (printing LOG) when it exits
# first or does not answer within 10 s.
e2e_socket_wait_ready() {
	local pid=$1 socket=$2 log=$3 i answer
	for ((i = 0; i < 100; i++)); do
		if ! e2e_alive "$pid"; then
			cat "$log" >&2
			e2e_die "tetherd ($pid) exited during start-up (log above)"
		fi
		answer=""
		if [[ -S $socket ]]; then
			answer=$(printf 'list backend\n' |
				socat -t1 - "UNIX-CONNECT:$socket" 2>/dev/null || true)
		fi
		[[ ${answer%%$'\n'*} == ok ]] && return 0
		sleep 0.1
	done
	cat "$log" >&2
	e2e_die "tetherd's socket $socket did not answer within 10 s"
}

# Starts one more tetherd in the router's namespace with exactly the options
# given (none added: they name its --iface, --vip, --pin-root and --socket, or
# a --config that does), logging to $E2E_LOG_DIR/tetherd-NAME.log, and waits
# until SOCKET answers. Sets E2E_SPAWN_PID. Cleanup stops it like the rig's
# tetherd; a pin root other than $E2E_PIN_ROOT is the caller's to remove.
e2e_tetherd_spawn() {
	local name=$1 socket=$2 log=$E2E_LOG_DIR/tetherd-$1.log
	shift 2
	echo "=== tetherd $(date +%T.%N) $*" >>"$log"
	nsenter --net="/var/run/netns/$E2E_NS_ROUTER" "$E2E_TETHERD" "$@" >>"$log" 2>&1 &
	E2E_SPAWN_PID=$!
	disown "$E2E_SPAWN_PID"
	e2e_track "$E2E_SPAWN_PID"
	e2e_socket_wait_ready "$E2E_SPAWN_PID" "$socket" "$log"
}

# Runs tetherd in the router's namespace with exactly the options given,
# expecting it to refuse to start: prints what it wrote (stdout and stderr) and
# returns its exit status, 124 when it still ran after 5 s (it is stopped then).
e2e_tetherd_try() {
	local status=0
	timeout --kill-after=2 5 nsenter --net="/var/run/netns/$E2E_NS_ROUTER" \
		"$E2E_TETHERD" "$@" 2>&1 || status=$?
	return "$status"
}

# Client connections to tetherd that stay open between requests, several at
# once: a socat in the router's namespace (so 127.0.0.1 is the router's; Unix
# sockets are reached as well) reads from a FIFO this shell keeps open and
# writes what it receives to $E2E_LOG_DIR/conn-NAME/out. NAME: [A-Za-z0-9_]+.
#   e2e_conn_open NAME ADDRESS   ADDRESS as socat takes it: TCP:127.0.0.1:PORT,
#                                UNIX-CONNECT:PATH
#   e2e_conn_send NAME LINE      sends one line (nonzero when it cannot)
#   e2e_conn_answer NAME         prints the next answer, its lines up to the
#                                empty line; nonzero (printing what came) when
#                                none came within 3 s or the peer closed first
#   e2e_conn_wait NAME REGEX     waits up to 3 s for a received line matching
#                                the extended REGEX
#   e2e_conn_closed NAME         0 when the peer closed the connection (3 s)
#   e2e_conn_close NAME          closes it
# socat lives at most 60 s, and ends soon after the peer closes.
e2e_conn_open() {
	local name=$1 address=$2 dir=$E2E_LOG_DIR/conn-$1 fd
	rm -rf "$dir"
	mkdir -p "$dir"
	mkfifo "$dir/in"
	: >"$dir/out"
	echo 0 >"$dir/seen"
	nsenter --net="/var/run/netns/$E2E_NS_ROUTER" timeout 60 socat -t 0.2 - "$address" \
		<"$dir/in" >"$dir/out" 2>"$dir/err" &
	echo "$!" >"$dir/pid"
	disown "$!"
	exec {fd}>"$dir/in"
	printf -v "E2E_CONN_FD_$name" '%s' "$fd"
}

e2e_conn_send() {
	local var=E2E_CONN_FD_$1
	(printf '%s\n' "$2" >&"${!var}") 2>/dev/null
}

e2e_conn_answer() {
	local dir=$E2E_LOG_DIR/conn-$1 seen i k alive lines=()
	for ((i = 0; i < 150; i++)); do
		alive=0
		e2e_alive "$(<"$dir/pid")" && alive=1
		seen=$(<"$dir/seen")
		mapfile -t lines < <(tail -n "+$((seen + 1))" "$dir/out")
		for ((k = 0; k < ${#lines[@]}; k++)); do
			if [[ -z ${lines[k]} ]]; then
				((k == 0)) || printf '%s\n' "${lines[@]:0:k}"
				echo $((seen + k + 1)) >"$dir/seen"
				return 0
			fi
		done
		((alive)) || break
		sleep 0.02
	done
	((${#lines[@]} == 0)) || printf '%s\n' "${lines[@]}"
	return 1
}

e2e_conn_wait() {
	local dir=$E2E_LOG_DIR/conn-$1 i
	for ((i = 0; i < 150; i++)); do
		grep -Eq -- "$2" "$dir/out" && return 0
		sleep 0.02
	done
	return 1
}

e2e_conn_closed() {
	e2e_wait_gone "$(<"$E2E_LOG_DIR/conn-$1/pid")" 30
}

e2e_conn_close() {
	local var=E2E_CONN_FD_$1 pid fd
	pid=$(<"$E2E_LOG_DIR/conn-$1/pid")
	fd=${!var:-}
	[[ -z $fd ]] || exec {fd}>&-
	kill -TERM "$pid" 2>/dev/null || true
	e2e_wait_gone "$pid" 20 || kill -KILL "$pid" 2>/dev/null || true
}

# --- faults (test_faults.sh) -------------------------------------------------------

# Stops the echo backend of VM NAME (vm1..vm3) and waits until it is gone.
e2e_backend_stop() {
	local name=$1 pid pids=()
	[[ -f $E2E_RUN_DIR/pids ]] || return 0
	for pid in $(<"$E2E_RUN_DIR/pids"); do
		[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$E2E_ECHO" ]] || continue
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--name $name " &&
			pids+=("$pid")
	done
	e2e_stop_all echo "${pids[@]}"
}

# Checks the maps pinned at the rig's pin root (build/tools/check_pins: pool
# tables against warm containers, backends, names); prints its summary or its
# problems, nonzero when it found any.
e2e_check_pins() {
	"$E2E_BUILD/tools/check_pins" --pin-root "$E2E_PIN_ROOT" "$@"
}

# A VM that stops answering and heartbeating for a while (SIGSTOP to VM NAME's
# agent; its container processes wait for it), and comes back (SIGCONT).
e2e_agent_pause() {
	local pid
	pid=$(e2e_agent_pid "$1")
	[[ -n $pid ]] || e2e_die "no agent runs in $1"
	kill -STOP "$pid"
}

e2e_agent_resume() {
	local pid
	pid=$(e2e_agent_pid "$1")
	[[ -z $pid ]] || kill -CONT "$pid"
}

# --- assertions of the test scripts (scenarios.sh has the demo's own) ----------

fail() {
	echo "#   FAILED: $*"
	return 1
}

expect_eq() {
	local what=$1 actual=$2 expected=$3
	[[ $actual == "$expected" ]] || fail "$what: expected '$expected', got '$actual'"
}

expect_contains() {
	local what=$1 text=$2 part=$3
	[[ $text == *"$part"* ]] || fail "$what: expected to contain '$part', got '$text'"
}

expect_ge() {
	local what=$1 actual=$2 minimum=$3
	[[ $actual =~ ^-?[0-9]+$ ]] && ((actual >= minimum)) ||
		fail "$what: expected at least $minimum, got '$actual'"
}

expect_le() {
	local what=$1 actual=$2 maximum=$3
	[[ $actual =~ ^-?[0-9]+$ ]] && ((actual <= maximum)) ||
		fail "$what: expected at most $maximum, got '$actual'"
}

# --- the TAP runner of the test scripts -----------------------------------------

# Dies unless every name given has its function PREFIXNAME (before a rig is
# built, so a typo costs nothing).
check_test_names() {
	local prefix=$1 name
	shift
	for name in "$@"; do
		declare -F "$prefix$name" >/dev/null ||
			e2e_die "no test '$name' (the script lists its tests near its end)"
	done
}

# The TAP plan, then each test by run_test.
run_tests() {
	local name
	echo "1..$#"
	for name in "$@"; do
		run_test "$name"
	done
}

# --- the TAP runner of the test scripts -----------------------------------------

# The counts run_test keeps, for the script's summary line.
passed=0
failed=0
number=0

# Runs test_NAME in a subshell (a failure ends only that test) and prints
# "ok N - NAME (ms)" or "not ok ..."; counts in the script's passed, failed
# and number variables.
run_test() {
	local name=$1 started status
	number=$((number + 1))
	started=$(date +%s%N)
	set +e
	(
		set -euo pipefail
		"test_$name"
	)
	status=$?
	set -e
	local ms=$((($(date +%s%N) - started) / 1000000))
	if ((status == 0)); then
		passed=$((passed + 1))
		echo "ok $number - $name (${ms} ms)"
	else
		failed=$((failed + 1))
		echo "not ok $number - $name (${ms} ms)"
	fi
}
