#!/usr/bin/env bash
# A throw-away etcd cluster on 127.0.0.1 for tests: the store client's tests
# (tests/store/) and the fleet's end-to-end tests.
#
#   tools/etcd-cluster.sh start DIR N [--tls] [--owner PID]
#       Starts N members (N >= 1) in DIR (created; it must not exist or be
#       empty), on free ports this script picks, and waits until every member
#       is healthy. Prints the client endpoints, comma-separated, on one line
#       (http://127.0.0.1:PORT,...; member I is the I-th, counting from 0).
#       --tls: clients speak TLS to the members and must show a certificate
#       (etcd --client-cert-auth); certificates made in DIR/tls by
#       tools/test-certs.sh: ca.pem (the CA of every certificate here),
#       member.pem (the members', naming the host), client.pem and
#       client-key.pem (a client's); endpoints are https://. Peers talk
#       plain HTTP among themselves.
#       --owner PID: when PID exits, the cluster is stopped and DIR removed,
#       so a test that crashes leaves nothing behind.
#   tools/etcd-cluster.sh endpoints DIR      prints the endpoints again
#   tools/etcd-cluster.sh endpoint DIR I     prints member I's endpoint
#   tools/etcd-cluster.sh kill DIR I         kill -9 of member I (its data stays)
#   tools/etcd-cluster.sh restart DIR I      starts member I again on its data and
#                                            ports; waits until it is healthy
#   tools/etcd-cluster.sh freeze DIR I       SIGSTOP of member I: it keeps its
#                                            connections open and answers nothing
#   tools/etcd-cluster.sh thaw DIR I         SIGCONT of member I
#   tools/etcd-cluster.sh stop DIR           stops every member and removes DIR
#
# Where (start only; later commands read it from DIR): ETCD_CLUSTER_HOST, the
# address every member listens on (127.0.0.1); ETCD_CLUSTER_NETNS, a network
# namespace (ip netns) the members run in, for routers in namespaces of their
# own to reach them (the fleet's tests).
# Extra etcd flags for every member: ETCD_CLUSTER_FLAGS (e.g.
# "--experimental-watch-progress-notify-interval=500ms"). Member I logs to
# DIR/mI.log. Exit status 0 on success; 1 on failure, with the reason on
# stderr; 127 when etcd is not installed (tools/install-deps.sh installs it).
set -euo pipefail

die() {
	echo "etcd-cluster: $*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# Runs a command in the cluster's network namespace (or here).
in_netns() {
	if [[ -n ${NETNS:-} ]]; then
		nsenter --net="/var/run/netns/$NETNS" "$@"
	else
		"$@"
	fi
}

# A TCP port on HOST nobody listens on now, not in $taken. Another
# process may still take it before etcd binds it: start() tries again then.
free_port() {
	local port
	while :; do
		# Below the kernel's ephemeral range (32768-60999): a member's own
		# outgoing connections cannot take the port of a member killed and
		# about to be restarted on it.
		port=$((20000 + RANDOM % 12000))
		[[ " $taken " == *" $port "* ]] && continue
		in_netns ss -Htln "sport = :$port" | grep -q . && continue
		taken+=" $port"
		echo "$port"
		return
	done
}

# Reads DIR/cluster: N, CLIENT_PORTS, PEER_PORTS, TOKEN.
# shellcheck disable=SC2153 # the capitals come from DIR/cluster
load() {
	[[ -f $dir/cluster ]] || die "$dir holds no cluster started by this script"
	# shellcheck disable=SC1091
	source "$dir/cluster"
	read -ra client_ports <<<"$CLIENT_PORTS"
	read -ra peer_ports <<<"$PEER_PORTS"
}

check_index() {
	[[ $1 =~ ^[0-9]+$ ]] && (($1 < N)) && return
	die "no member $1 in $dir (members 0 to $((N - 1)))"
}

# The client URL scheme, and the TLS flags of etcd and etcdctl (--tls).
scheme() {
	[[ -n ${TLS:-} ]] && echo https || echo http
}

member_tls_flags() {
	[[ -n ${TLS:-} ]] || return 0
	echo "--client-cert-auth --trusted-ca-file $dir/tls/ca.pem" \
		"--cert-file $dir/tls/member.pem --key-file $dir/tls/member-key.pem"
}

client_tls_flags() {
	[[ -n ${TLS:-} ]] || return 0
	echo "--cacert $dir/tls/ca.pem --cert $dir/tls/client.pem --key $dir/tls/client-key.pem"
}

make_certs() {
	local certs=$dir/tls script
	script=$(dirname "$(readlink -f "$0")")/test-certs.sh
	"$script" ca "$certs" ca >/dev/null &&
		"$script" server "$certs" ca member "$HOST" --also-client >/dev/null &&
		"$script" client "$certs" ca client tether-test-client >/dev/null ||
		die "cannot make the certificates for --tls (certtool: gnutls-bin)"
}

initial_cluster() {
	local i list=
	for ((i = 0; i < N; i++)); do
		list+="${list:+,}m$i=http://$HOST:${peer_ports[i]}"
	done
	echo "$list"
}

# Starts member $1 in the background, its pid in DIR/mI.pid.
launch() {
	local i=$1 state=$2
	# setsid: a Ctrl-C to the test does not reach etcd before the test's
	# own clean-up does; stdout and stderr away from the caller's pipes.
	# shellcheck disable=SC2086
	# nsenter execs etcd: the pid is etcd's.
	setsid ${NETNS:+nsenter --net=/var/run/netns/$NETNS} etcd --name "m$i" \
		--data-dir "$dir/m$i.data" \
		--listen-client-urls "$(scheme)://$HOST:${client_ports[i]}" \
		--advertise-client-urls "$(scheme)://$HOST:${client_ports[i]}" $(member_tls_flags) \
		--listen-peer-urls "http://$HOST:${peer_ports[i]}" \
		--initial-advertise-peer-urls "http://$HOST:${peer_ports[i]}" \
		--initial-cluster "$(initial_cluster)" --initial-cluster-token "$TOKEN" \
		--initial-cluster-state "$state" ${ETCD_CLUSTER_FLAGS:-} \
		</dev/null >>"$dir/m$i.log" 2>&1 &
	echo $! >"$dir/m$i.pid"
}

healthy() {
	# shellcheck disable=SC2046 # the flags, one a word
	ETCDCTL_API=3 in_netns etcdctl --endpoints="$(scheme)://$HOST:${client_ports[$1]}" \
		$(client_tls_flags) --dial-timeout=1s --command-timeout=1s endpoint health \
		>/dev/null 2>&1
}

# Whether process $1 runs: a zombie (a parent that has not reaped it yet)
# does not.
running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

alive() {
	local pid
	pid=$(cat "$dir/m$1.pid" 2>/dev/null) && running "$pid"
}

# Waits up to 20 s for the members given to be healthy; nonzero when one
# died (a port taken meanwhile) or never became healthy.
wait_healthy() {
	local i deadline=$((SECONDS + 20))
	for i in "$@"; do
		until healthy "$i"; do
			alive "$i" || return 1
			((SECONDS < deadline)) || return 1
			sleep 0.1
		done
	done
}

endpoints() {
	local i list=
	for ((i = 0; i < N; i++)); do
		list+="${list:+,}$(scheme)://$HOST:${client_ports[i]}"
	done
	echo "$list"
}

listening() {
	in_netns ss -Htln "( sport = :${client_ports[$1]} or sport = :${peer_ports[$1]} )" |
		grep -q .
}

# Returns once member $1 is gone and its ports are closed: its leader thread
# looks dead (a zombie) before the others have exited and closed its sockets.
kill_member() {
	local pid tries=0
	pid=$(cat "$dir/m$1.pid" 2>/dev/null) || return 0
	kill -9 "$pid" 2>/dev/null || true
	while (running "$pid" || listening "$1") && ((tries++ < 200)); do sleep 0.05; done
	rm -f "$dir/m$1.pid"
}

stop_all() {
	local i pid pids=()
	for ((i = 0; i < N; i++)); do
		pid=$(cat "$dir/m$i.pid" 2>/dev/null) || continue
		kill "$pid" 2>/dev/null && pids+=("$pid")
		kill -CONT "$pid" 2>/dev/null || true # a frozen one, to take its TERM
	done
	for ((i = 0; i < 50 && ${#pids[@]}; i++)); do
		local left=()
		for pid in "${pids[@]}"; do
			running "$pid" && left+=("$pid")
		done
		pids=(${left[@]+"${left[@]}"})
		((${#pids[@]})) && sleep 0.1
	done
	for pid in ${pids[@]+"${pids[@]}"}; do
		kill -9 "$pid" 2>/dev/null || true
	done
	for ((i = 0; i < N; i++)); do rm -f "$dir/m$i.pid"; done
}

start() {
	local n=$1 owner=$2 attempt i
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "N must be a number of members, 1 or more (got '$n')"
	if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
		echo "etcd-cluster: etcd is not installed (Debian: etcd-server etcd-client;" \
			"tools/install-deps.sh installs them)" >&2
		exit 127
	fi
	if [[ -e $dir ]]; then
		[[ -d $dir && -z $(ls -A "$dir") ]] || die "$dir exists and is not an empty directory"
	fi
	mkdir -p "$dir"
	N=$n
	[[ -z ${TLS:-} ]] || make_certs
	for attempt in 1 2 3 4 5; do
		taken=
		client_ports=() peer_ports=()
		for ((i = 0; i < N; i++)); do
			client_ports+=("$(free_port)")
			peer_ports+=("$(free_port)")
		done
		TOKEN=tether-$$-$RANDOM
		cat >"$dir/cluster" <<-EOF
			N=$N
			CLIENT_PORTS="${client_ports[*]}"
			PEER_PORTS="${peer_ports[*]}"
			TOKEN=$TOKEN
			HOST=$HOST
			NETNS=$NETNS
			TLS=${TLS:-}
		EOF
		for ((i = 0; i < N; i++)); do launch "$i" new; done
		if wait_healthy $(seq 0 $((N - 1))); then
			[[ -n $owner ]] && guard "$owner"
			endpoints
			return 0
		fi
		stop_all
		rm -rf "$dir"/m*.data
		echo "etcd-cluster: attempt $attempt failed (a port taken?), trying other ports" >&2
	done
	tail -n 5 "$dir"/m*.log >&2 || true
	stop_all
	rm -rf "$dir"
	die "the cluster did not become healthy; logs above"
}

# Stops the cluster and removes DIR once process $1 is gone.
guard() {
	local owner=$1 self
	self=$(readlink -f "$0")
	# shellcheck disable=SC2016 # expanded by the guard's own shell
	setsid bash -c 'while kill -0 "$1" 2>/dev/null && [[ -f "$2/cluster" ]]; do sleep 0.5; done
			[[ -f "$2/cluster" ]] && exec "$3" stop "$2"' guard "$owner" "$dir" "$self" \
		</dev/null >/dev/null 2>&1 &
}

(($# >= 2)) || usage
command=$1 dir=$2
HOST=${ETCD_CLUSTER_HOST:-127.0.0.1}
NETNS=${ETCD_CLUSTER_NETNS:-}
case $command in
start)
	(($# >= 3)) || usage
	n=$3 owner= TLS=
	shift 3
	while (($#)); do
		case $1 in
		--tls) TLS=1 && shift ;;
		--owner) (($# >= 2)) || usage && owner=$2 && shift 2 ;;
		*) usage ;;
		esac
	done
	start "$n" "$owner"
	;;
endpoints)
	load
	endpoints
	;;
endpoint)
	(($# == 3)) || usage
	load
	check_index "$3"
	echo "$(scheme)://$HOST:${client_ports[$3]}"
	;;
kill)
	(($# == 3)) || usage
	load
	check_index "$3"
	kill_member "$3"
	;;
restart)
	(($# == 3)) || usage
	load
	check_index "$3"
	alive "$3" && die "member $3 of $dir is running"
	launch "$3" existing
	wait_healthy "$3" || die "member $3 did not become healthy again; see $dir/m$3.log"
	;;
freeze | thaw)
	(($# == 3)) || usage
	load
	check_index "$3"
	alive "$3" || die "member $3 of $dir is not running"
	kill "-$([[ $command == freeze ]] && echo STOP || echo CONT)" "$(cat "$dir/m$3.pid")"
	;;
stop)
	[[ -e $dir ]] || exit 0
	load
	stop_all
	rm -rf "$dir"
	;;
*) usage ;;
esac
