# SPDX-License-Identifier: MIT
# What the forwarding benches share (tools/bench_forward.sh,
# tools/bench_forward_encap.sh): the options both take, the run's names (from
# its random ID), the cleanup, the generator's and the router's namespaces,
# the backends', the setup, attaching the router under test, running the
# generator, and the rounds of rows. Sourced by the script after
# `set -euo pipefail`, with FWD_NAME (its name in messages) set; the script
# then
#   - may set ROUNDS, SECONDS_PER_RUN, QUICK_SECONDS, GEN_CPU, WATCH_CPU;
#   - may define fwd_own_option (its own options: "$@" from the option on,
#     sets FWD_TAKEN to the words it took, 0 for an unknown option) and
#     fwd_cleanup_hook (run first on exit);
#   - calls fwd_parse_options "$@", fwd_preflight [TOOL...], fwd_names,
#     fwd_gen_router, fwd_backend for each backend, fwd_setup ARG...;
#   - defines measure ROW (the row's run, one JSON line in $TMP/run.json) and
#     calls fwd_rounds ROW... ($TMP/runs.jsonl: one line a row and round).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
CTL=$BUILD/tools/bench/forward_ctl

ROUNDS=8 SECONDS_PER_RUN=1 QUICK_SECONDS=1 WARMUP=0.3 JSON= GEN_CPU=0 WATCH_CPU=1
FLOWS=16384 FUNCTIONS=256 PER_FUNCTION=16 BACKENDS=4
VIP=198.51.100.1 PORT=7777 SINK_PORT=9
GEN_MAC=02:54:00:00:00:01

# jq: the median of an array of numbers.
FWD_JQ_MEDIAN='def median: sort | if length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;'

die() {
	echo "$FWD_NAME: FATAL: $*" >&2
	exit 1
}

fwd_parse_options() {
	while (($#)); do
		case $1 in
		--quick) ROUNDS=1 SECONDS_PER_RUN=$QUICK_SECONDS WARMUP=0.2 ;;
		--json) JSON=${2:?--json FILE}; shift ;;
		--rounds) ROUNDS=${2:?--rounds N}; shift ;;
		--seconds) SECONDS_PER_RUN=${2:?--seconds S}; shift ;;
		--cpu) GEN_CPU=${2:?--cpu N}; shift ;;
		-h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*)
			FWD_TAKEN=0
			declare -F fwd_own_option >/dev/null && fwd_own_option "$@"
			((FWD_TAKEN > 0)) || die "unknown option $1 (see --help)"
			shift $((FWD_TAKEN - 1))
			;;
		esac
		shift
	done
}

# Root, the tools (forward_ctl and those named), the commands, the CPUs, bpffs.
fwd_preflight() {
	local tool
	[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, XDP, bpffs); run it as root"
	for tool in "$CTL" "$@"; do
		[[ -x $tool ]] || die "$tool is missing: build it first (make bench-forward)"
	done
	for tool in ip nsenter jq taskset chrt; do
		command -v "$tool" >/dev/null || die "'$tool' is not installed (make deps)"
	done
	CPUS=$(nproc)
	((GEN_CPU < CPUS && WATCH_CPU < CPUS)) || die "--cpu $GEN_CPU / $WATCH_CPU: this machine has $CPUS CPUs"
	if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
		mount -t bpf bpf /sys/fs/bpf || die "cannot mount bpffs at /sys/fs/bpf"
	fi
}

# The run's names; every namespace of the run is named $ID-*, and the
# cleanup (on any exit) deletes them all.
fwd_names() {
	ID=tf$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n') # 8 characters
	NS_BACKENDS=()
	NS_GEN=$ID-gen
	NS_RTR=$ID-rtr
	IF_GEN=${ID}g  # generator's end
	IF_IN=${ID}r   # router's ingress (the router under test runs here)
	IF_HOLD=${ID}h # generator namespace, never carries traffic (see fwd_hold_generator)
	IF_HOLD_PEER=${ID}k
	PIN=/sys/fs/bpf/$ID
	TMP=$(mktemp -d "/tmp/$ID.XXXXXX")
	trap fwd_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

fwd_cleanup() {
	local status=$? ns
	trap - EXIT INT TERM
	declare -F fwd_cleanup_hook >/dev/null && fwd_cleanup_hook
	for ns in $(ip netns list | awk -v id="$ID-" 'index($1, id) == 1 { print $1 }'); do
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$PIN"
	if ((status == 0 || status == 130 || status == 143)); then
		rm -rf "$TMP"
	else
		echo "$FWD_NAME: failed; files kept in $TMP" >&2
	fi
	exit "$status"
}

in_ns() { # nsenter keeps the mount namespace: bpffs pins stay visible
	local ns=$1
	shift
	nsenter --net="/var/run/netns/$ns" "$@"
}

quiet_ns() { # no IPv6 autoconfiguration or ND chatter on the links
	in_ns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	in_ns "$1" ip link set lo up
}

# The generator's namespace and the router's, the veth between them (the
# router's end, $IF_IN, forwards: 192.0.2.1/24, ip_forward on), and the
# generator's idle veth pair.
fwd_gen_router() {
	ip netns add "$NS_GEN"
	ip netns add "$NS_RTR"
	quiet_ns "$NS_GEN"
	quiet_ns "$NS_RTR"
	ip link add "$IF_GEN" address "$GEN_MAC" netns "$NS_GEN" type veth peer name "$IF_IN" netns "$NS_RTR"
	ip link add "$IF_HOLD" netns "$NS_GEN" type veth peer name "$IF_HOLD_PEER" netns "$NS_GEN"
	in_ns "$NS_GEN" ip link set "$IF_GEN" up
	in_ns "$NS_GEN" ip link set "$IF_HOLD" up
	in_ns "$NS_GEN" ip link set "$IF_HOLD_PEER" up
	in_ns "$NS_RTR" ip link set "$IF_IN" up
	in_ns "$NS_RTR" ip addr add 192.0.2.1/24 dev "$IF_IN"
	in_ns "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0
}

# Backend B's namespace ($ID-bB, added to NS_BACKENDS) and its veth, both
# ends up: ${ID}BB, the sink's (MAC 02:54:00:00:0b:0B), to PEER_IF in PEER_NS.
fwd_backend() {
	local b=$1 peer_ns=$2 peer_if=$3 ns=$ID-b$1
	NS_BACKENDS+=("$ns")
	ip netns add "$ns"
	quiet_ns "$ns"
	ip link add "$peer_if" netns "$peer_ns" type veth peer name "${ID}B$b" netns "$ns" \
		address "02:54:00:00:0b:0$b"
	in_ns "$ns" ip link set "${ID}B$b" up
	in_ns "$peer_ns" ip link set "$peer_if" up
}

# forward_ctl setup in the router's namespace, with the arguments common to
# the benches and the script's own (its --backend...), then the sinks on
# ${ID}B0.. in NS_BACKENDS, and the generator held (below).
fwd_setup() {
	local b
	mkdir -p "$PIN"
	in_ns "$NS_RTR" "$CTL" setup --pin "$PIN" --router-if "$IF_IN" --client-mac "$GEN_MAC" \
		--vip "$VIP:$PORT" --sink-port "$SINK_PORT" --flows "$FLOWS" \
		--functions "$FUNCTIONS" --per-function "$PER_FUNCTION" \
		--table "$TMP/userspace.table" --nft "$TMP/dnat.nft" "$@"
	for ((b = 0; b < BACKENDS; b++)); do
		in_ns "${NS_BACKENDS[b]}" ip link set dev "${ID}B$b" xdpdrv pinned "$PIN/prog_sink_$b"
	done
	# Every BPF_PROG_TEST_RUN of an XDP program adds it to the kernel's XDP
	# dispatcher and removes it again, a synchronize_rcu() each way; attached
	# natively somewhere it stays there, and a test run costs nothing extra.
	in_ns "$NS_GEN" ip link set dev "$IF_HOLD" xdpdrv pinned "$PIN/prog_gen"
}

attach_router() { # a program pinned by forward_ctl setup
	in_ns "$NS_RTR" ip -force link set dev "$IF_IN" xdpdrv pinned "$PIN/$1"
}

generate() { # mix -> one JSON line in $TMP/run.json
	in_ns "$NS_GEN" chrt -f 10 "$CTL" run --pin "$PIN" --gen-if "$IF_GEN" --mix "$1" --cpu "$GEN_CPU" \
		--seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --watch-cpu "$WATCH_CPU" >"$TMP/run.json"
}

# Rows in rounds, each round every row once, back to back: measure ROW, then
# its line (with row and round) in $TMP/runs.jsonl and a progress line.
fwd_rounds() {
	local round row
	: >"$TMP/runs.jsonl"
	for ((round = 1; round <= ROUNDS; round++)); do
		for row in "$@"; do
			measure "$row"
			jq -c --arg row "$row" --argjson round "$round" '. + {row: $row, round: $round}' \
				"$TMP/run.json" >>"$TMP/runs.jsonl"
			jq -r --arg row "$row" --argjson round "$round" --arg name "$FWD_NAME" \
				'"\($name): round \($round) \($row): \(.delivered_pps / 1e6 * 1000 | round / 1000) Mpps delivered, \(.right_share * 100 | floor)% right (CPU '"$WATCH_CPU"' \(.other_cpu_busy * 100 | round)% busy)"' \
				"$TMP/run.json" >&2
		done
	done
}
