#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Integration tests of tetherd as an operator runs it: the settings file, the
# XDP attach mode, the TCP listener for VM agents and its authentication (the
# shared secret, and per-backend secrets that keep an agent to its backend),
# the Unix socket's permissions, the event stream, heartbeats and the systemd
# unit. The rig is tests/e2e/lib.sh's (client, router, vm1..vm3 namespaces);
# tests that need a tetherd of their own start one in the router namespace on
# a veth pair of their own, with a pin root $E2E_PIN_ROOT-TAG. Run as root:
#
#   tests/e2e/test_tetherd.sh [TEST...]     (TEST: a name below, e.g. tcp_auth)
#
# TAP output ("ok N - name"), then "N passed, M failed" alone on the last
# line; the exit status is nonzero when a test failed. Each test runs in a
# subshell and stops at its first failed assertion.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOLD_MS=200    # the rig's tetherd --hold-ms: how long the slow path holds a request
HOUR=1h        # vm1's and vm2's heartbeat period: they stay up for the whole run
NOBODY_GROUP=nogroup

# --- assertions ----------------------------------------------------------------

# Prints a (multi-line) text as TAP comments.
show() {
	sed 's/^/#     /' <<<"$1"
}

# 16 random hex digits: the shortest secret tetherd takes.
random_secret() {
	head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n'
	echo
}

# Milliseconds since the epoch.
now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# --- the rig's state -----------------------------------------------------------------

add_warm() {
	local function=$1 backend=$2
	e2e_ctl --json container add --function "$function" --backend "$backend" --warm |
		jq -er '.container'
}

backend_field() {
	local name=$1 field=$2
	e2e_ctl --json backend list | jq -r --arg n "$name" ".[] | select(.backend == \$n) | .$field"
}

container_packets() {
	e2e_ctl --json container show "$1" | jq -r '.packets'
}

# Backends (without the heartbeat countdown) and containers, as JSON.
controller_state() {
	e2e_ctl --json backend list | sed 's/"expires_in_ms":[0-9]*,//g'
	e2e_ctl --json container list
}

vm_mac() {
	e2e_vm_vars "$1"
	e2e_mac "$E2E_VM_NS" "$E2E_VM_IFV"
}

# True when ADDR (v4 or v6, no prefix) is on the router's lo.
lo_has() {
	local addrs
	addrs=$(ip -n "$E2E_NS_ROUTER" -o addr show dev lo)
	grep -Eq "inet6? $1/" <<<"$addrs"
}

# Sends one request from inside the router namespace to VIP (ADDR:PORT or
# [ADDR]:PORT) for a function without containers: a tetherd that serves the
# VIP holds it, then answers NO_CAPACITY. Prints udp_load's summary.
probe_vip() {
	e2e_in_router "$E2E_LOAD" --vip "$1" --function 4242 --count 1 --timeout-ms 2000
}

expect_served() {
	local vip=$1 out
	out=$(probe_vip "$vip")
	expect_eq "NO_CAPACITY answers from $vip" "$(e2e_field "$out" no_capacity)" 1 || {
		echo "#     udp_load: $out"
		return 1
	}
}

# --- tetherd instances of a test's own ----------------------------------------------

# Sets IFACE (a veth of the instance's own in the router namespace, made here),
# PIN, SOCK and LOG for instance TAG (2 lowercase characters).
instance() {
	local tag=$1
	IFACE=${E2E_ID}$tag
	PIN=$E2E_PIN_ROOT-$tag
	SOCK=$E2E_RUN_DIR/$tag.sock
	LOG=$E2E_LOG_DIR/tetherd-$tag.log
	TAG=$tag
	e2e_router_veth "$IFACE"
	trap instance_stop EXIT # the test's subshell: stop the instance whatever happens
}

# Starts the instance with the options given; sets PID.
instance_start() {
	e2e_tetherd_spawn "$TAG" "$SOCK" "$@"
	PID=$E2E_SPAWN_PID
}

# Unloads the instance through its socket and checks it is gone with its pins.
instance_unload() {
	local answer
	answer=$("$E2E_TETHERCTL" --socket "$SOCK" unload 2>&1) || fail "tetherctl unload: $answer"
	e2e_wait_gone "$PID" 50 || fail "tetherd $PID still runs 5 s after unload"
	[[ ! -e $PIN ]] || fail "$PIN still exists after unload: $(ls "$PIN")"
	expect_eq "XDP program on $IFACE after unload" "$(e2e_xdp_prog_id "$IFACE")" ""
}

# EXIT trap of a test's subshell: whatever the instance left.
instance_stop() {
	if [[ -n ${PID:-} ]] && e2e_alive "$PID"; then
		kill -TERM "$PID" 2>/dev/null || true
		e2e_wait_gone "$PID" 30 || kill -KILL "$PID" 2>/dev/null || true
	fi
	if [[ -n ${PIN:-} && -e $PIN ]]; then
		"$E2E_TETHERD" --unload --pin-root "$PIN" >/dev/null 2>&1 || true
		rm -rf "$PIN"
	fi
}

# Nothing of a refused start is left: no pins, no socket, no XDP, no VIP.
expect_nothing_made() {
	local what=$1 vip4=$2
	[[ ! -e $PIN ]] || fail "$what: the pin root $PIN was made: $(ls "$PIN" | tr '\n' ' ')"
	[[ ! -e $SOCK ]] || fail "$what: the socket $SOCK was made"
	expect_eq "$what: XDP program on $IFACE" "$(e2e_xdp_prog_id "$IFACE")" ""
	! lo_has "$vip4" || fail "$what: $vip4 was left on the router's lo"
}

# --- a. the settings file ---------------------------------------------------------------

# tetherd --config FILE alone: every setting comes from the file.
test_config_file() {
	local conf out
	instance cf
	conf=$E2E_LOG_DIR/cf.conf
	cat >"$conf" <<-EOF
		# tetherd settings of the e2e test (a comment)
		[tetherd]
		iface = $IFACE
		vip = 198.51.100.11:$E2E_PORT;[2001:db8:100::11]:$E2E_PORT
		heartbeat-ms = 1234
		hold-ms = 100
		socket = $SOCK
		pin-root = $PIN
	EOF
	instance_start --config "$conf"
	show "$(cat "$LOG")"
	grep -qx "tetherd: ready on $SOCK (pin root $PIN)" "$LOG" ||
		fail "no 'ready on $SOCK (pin root $PIN)' in the log"
	grep -qx "tetherd: $IFACE: XDP native mode" "$LOG" ||
		fail "no '$IFACE: XDP native mode' in the log (auto on a veth)"
	! grep -q 'falling back' "$LOG" || fail "auto fell back to generic on a veth"
	local map
	for map in "link_$IFACE" services backends containers pools stats; do
		[[ -e $PIN/$map ]] || fail "$PIN/$map is missing: $(ls "$PIN" | tr '\n' ' ')"
	done
	[[ -n $(e2e_xdp_prog_id "$IFACE") ]] || fail "no XDP program on $IFACE"
	expect_eq "socket mode and owner" "$(stat -c '%a %U' "$SOCK")" "600 root"
	lo_has 198.51.100.11 && lo_has 2001:db8:100::11 ||
		fail "the VIPs are not on the router's lo: $(ip -n "$E2E_NS_ROUTER" -o addr show dev lo)"
	expect_served "198.51.100.11:$E2E_PORT"
	expect_served "[2001:db8:100::11]:$E2E_PORT"
	"$E2E_TETHERCTL" --socket "$SOCK" backend add cfb --addr 203.0.113.99 \
		--mac 02:00:00:00:00:99 --iface "${IFACE}p" >/dev/null
	out=$("$E2E_TETHERCTL" --socket "$SOCK" --json backend list)
	expect_eq "heartbeat_ms of a backend added without one" "$(jq -r '.[0].heartbeat_ms' <<<"$out")" 1234
	expect_eq "default socket (/run/tether/tetherd.sock) exists" \
		"$([[ -e /run/tether/tetherd.sock ]] && echo yes || echo no)" "$DEFAULT_SOCKET_EXISTED"
	expect_eq "default pin root (/sys/fs/bpf/tether) exists" \
		"$([[ -e /sys/fs/bpf/tether ]] && echo yes || echo no)" "$DEFAULT_PIN_EXISTED"
	instance_unload
}

# Flags override the file's scalar settings.
test_config_override() {
	local conf file_socket=$E2E_RUN_DIR/co-file.sock
	instance co
	conf=$E2E_LOG_DIR/co.conf
	cat >"$conf" <<-EOF
		[tetherd]
		iface = $IFACE
		vip = 198.51.100.12:$E2E_PORT
		heartbeat-ms = 1234
		hold-ms = 100
		socket = $file_socket
		pin-root = $PIN
	EOF
	instance_start --config "$conf" --socket "$SOCK" --heartbeat-ms 4321
	echo "#   tetherd --config co.conf --socket $SOCK --heartbeat-ms 4321"
	[[ ! -e $file_socket ]] || fail "the file's socket $file_socket exists too"
	[[ -e $PIN/link_$IFACE ]] || fail "the file's pin root $PIN was not used"
	expect_served "198.51.100.12:$E2E_PORT"
	"$E2E_TETHERCTL" --socket "$SOCK" backend add cob --addr 203.0.113.99 \
		--mac 02:00:00:00:00:99 --iface "${IFACE}p" >/dev/null
	expect_eq "heartbeat_ms (flag 4321 over file 1234)" \
		"$("$E2E_TETHERCTL" --socket "$SOCK" --json backend list | jq -r '.[0].heartbeat_ms')" 4321
	instance_unload
}

# Flags override the file's lists too ("the command line wins"): --vip and
# --iface on the command line replace the file's, not add to them.
test_config_override_lists() {
	local conf iface2=${E2E_ID}cm problems=()
	instance cl
	e2e_router_veth "$iface2"
	conf=$E2E_LOG_DIR/cl.conf
	cat >"$conf" <<-EOF
		[tetherd]
		iface = $IFACE
		vip = 198.51.100.13:$E2E_PORT;[2001:db8:100::13]:$E2E_PORT
		hold-ms = 100
		socket = $SOCK
		pin-root = $PIN
	EOF
	instance_start --config "$conf" --vip "198.51.100.14:$E2E_PORT" --iface "$iface2"
	echo "#   file: iface $IFACE, vip 198.51.100.13 and 2001:db8:100::13;" \
		"flags: --iface $iface2 --vip 198.51.100.14"
	show "$(grep -v '^===' "$LOG")"
	expect_served "198.51.100.14:$E2E_PORT"
	[[ -n $(e2e_xdp_prog_id "$iface2") ]] || problems+=("no XDP on the flag's $iface2")
	[[ -z $(e2e_xdp_prog_id "$IFACE") ]] || problems+=("XDP attached to the file's $IFACE too")
	! lo_has 198.51.100.13 || problems+=("the file's 198.51.100.13 is served too")
	! lo_has 2001:db8:100::13 || problems+=("the file's 2001:db8:100::13 is served too")
	((${#problems[@]} == 0)) || fail "the flags did not replace the file's lists: $(
		IFS=';'
		echo "${problems[*]}"
	)"
	instance_unload
}

# A bad settings file: tetherd exits nonzero at once, says what is wrong, and
# makes nothing.
test_config_bad() {
	local conf out status item label body expected first
	instance cb
	local base="[tetherd]
iface = $IFACE
socket = $SOCK
pin-root = $PIN"
	local -a cases=(
		"vip without a port|vip = 198.51.100.15|198.51.100.15"
		"vip with an unclosed [|vip = 198.51.100.15:$E2E_PORT;[2001:db8:100::15:$E2E_PORT|[2001:db8:100::15:$E2E_PORT"
		"vip with port 99999|vip = 198.51.100.15:99999|198.51.100.15:99999"
		"vip that is a host name|vip = vip.example:$E2E_PORT|vip.example:$E2E_PORT"
		"heartbeat-ms not a number|vip = 198.51.100.15:$E2E_PORT
heartbeat-ms = soon|soon"
		"unknown xdp-mode|vip = 198.51.100.15:$E2E_PORT
xdp-mode = turbo|xdp-mode"
		"a line that is no setting|vip = 198.51.100.15:$E2E_PORT
turbo mode on|turbo mode on"
	)
	for item in "${cases[@]}"; do
		label=${item%%|*}
		body=${item#*|}
		expected=${body##*|}
		body=${body%|*}
		conf=$E2E_LOG_DIR/cb.conf
		printf '%s\n%s\n' "$base" "$body" >"$conf"
		status=0
		out=$(e2e_tetherd_try --config "$conf") || status=$?
		first=$(head -n1 <<<"$out")
		echo "#   $label: exit $status: $first"
		((status != 0 && status != 124)) || fail "$label: exit status $status"
		expect_contains "$label: the first line of the message" "$first" "$expected"
		expect_nothing_made "$label" 198.51.100.15
	done
	status=0
	out=$(e2e_tetherd_try --config "$E2E_LOG_DIR/no-such.conf") || status=$?
	first=$(head -n1 <<<"$out")
	echo "#   missing file: exit $status: $first"
	((status != 0 && status != 124)) || fail "missing file: exit status $status"
	expect_contains "missing file: the message" "$first" "$E2E_LOG_DIR/no-such.conf"
	expect_contains "missing file: the message" "$first" "No such file"
	expect_nothing_made "missing file" 198.51.100.15
}

# --- b. native and generic XDP -----------------------------------------------------------

# Checks the XDP mode on IFACE: ip link's word, its JSON mode, the log line.
expect_xdp_mode() {
	local word=$1 number=$2 log_mode=$3 text
	text=$(ip -n "$E2E_NS_ROUTER" link show dev "$IFACE")
	echo "#   $(head -n1 <<<"$text" | grep -o 'mtu [0-9]* [a-z]*')"
	grep -q " $word qdisc" <<<"$text" || fail "ip link does not show '$word' on $IFACE: $text"
	expect_eq "xdp.mode in ip -j link" \
		"$(ip -n "$E2E_NS_ROUTER" -j link show dev "$IFACE" | jq -r '.[0].xdp.mode')" "$number"
	grep -qx "tetherd: $IFACE: XDP $log_mode mode" "$LOG" ||
		fail "the log does not say '$IFACE: XDP $log_mode mode': $(cat "$LOG")"
}

test_xdp_generic() {
	instance xg
	instance_start --iface "$IFACE" --vip "198.51.100.16:$E2E_PORT" --pin-root "$PIN" \
		--socket "$SOCK" --xdp-mode generic
	expect_xdp_mode xdpgeneric 2 generic
	instance_unload
}

test_xdp_native() {
	instance xn
	instance_start --iface "$IFACE" --vip "198.51.100.17:$E2E_PORT" --pin-root "$PIN" \
		--socket "$SOCK" --xdp-mode native
	expect_xdp_mode xdp 1 native
	instance_unload
}

# --- c. the TCP listener -----------------------------------------------------------------------

# A request as the log shows it: the secrets the tests use are not printed.
masked() {
	local text=${1/secret=$SECRET/secret=<the shared secret>}
	text=${text/secret=$AS1_SECRET/secret=<the as1 secret>}
	echo "${text/secret=$AS1_ROTATED/secret=<the new as1 secret>}"
}

# Sends a line on a connection; sets ANSWER to the first line of the answer
# ("" when none came: the connection was closed, or tetherd was silent) and
# ANSWER_ALL to all of it, records included.
tcp_ask() {
	local out
	ANSWER=""
	ANSWER_ALL=""
	if ! e2e_conn_send "$1" "$2"; then
		echo "#   [$1] $(masked "$2") -> (cannot send: the connection is closed)"
		return 0
	fi
	out=$(e2e_conn_answer "$1") || true
	ANSWER=$(head -n1 <<<"$out")
	ANSWER_ALL=$out
	echo "#   [$1] $(masked "$2") -> ${ANSWER:-(no answer)}"
}

# Opens connection NAME to the rig's TCP listener and checks it is up: a
# request before auth gets unauthorized, and the connection stays open.
tcp_open() {
	e2e_conn_open "$1" "TCP:127.0.0.1:$TCP_PORT"
	tcp_ask "$1" "list backend"
	[[ $ANSWER == "error unauthorized: "?* ]] ||
		fail "connection $1: before auth, expected 'error unauthorized: ...', got '$ANSWER'"
}

expect_unauthorized() {
	tcp_ask "$1" "$2"
	[[ $ANSWER == "error unauthorized: "?* ]] ||
		fail "'$2': expected 'error unauthorized: ...', got '$ANSWER'"
}

expect_closed() {
	e2e_conn_closed "$1" || fail "tetherd did not close connection $1 within 3 s"
}

WRONG_SECRET=not-the-secret-0123456789

# c. Before auth nothing is allowed; a wrong secret is refused and the
# connection closed; a retry right after is refused even with the right
# secret; after the backoff it works. An agent bound to a backend acts on that
# backend only; unload is refused over TCP.
test_tcp_auth() {
	local h1 h2 before after
	e2e_ctl backend add ta1 --addr 203.0.113.2 --mac "$(vm_mac vm1)" --iface "$E2E_IF_R1" \
		--heartbeat-ms "$HOUR" >/dev/null
	e2e_ctl backend add ta2 --addr 203.0.113.18 --mac "$(vm_mac vm2)" --iface "$E2E_IF_R2" \
		--heartbeat-ms "$HOUR" >/dev/null
	h1=$(add_warm 60 ta1)
	h2=$(add_warm 60 ta2)
	echo "#   backends ta1, ta2; function 60: container $h1 on ta1, $h2 on ta2; listener 127.0.0.1:$TCP_PORT"

	tcp_open a
	expect_unauthorized a "add container function=60 backend=ta1 state=warm"
	expect_unauthorized a "watch event"
	expect_unauthorized a "watch trace"
	expect_unauthorized a "unload tetherd"
	expect_eq "containers of function 60 after requests before auth" \
		"$(e2e_ctl --json container list --function 60 | jq length)" 2
	tcp_open b

	tcp_ask a "auth agent secret=$WRONG_SECRET"
	local wrong=$ANSWER
	tcp_ask b "auth agent secret=$SECRET"
	expect_eq "wrong secret" "$wrong" "error unauthorized: wrong secret"
	expect_contains "the right secret right after a failure" "$ANSWER" \
		"error unauthorized: too many failed attempts"
	expect_closed a
	expect_closed b

	sleep 0.4 # past the 200 ms after one failure
	tcp_open c
	tcp_ask c "auth agent secret=$SECRET backend=ta1"
	expect_eq "the right secret after the backoff, bound to ta1" "$ANSWER" ok

	before=$(controller_state)
	local request
	for request in "drain container container=$h2" "del container container=$h2" \
		"add container function=60 backend=ta2 state=warm" "heartbeat backend name=ta2" \
		"drain backend name=ta2" "del backend name=ta2" "unload tetherd" "watch trace"; do
		expect_unauthorized c "$request"
	done
	after=$(controller_state)
	[[ $after == "$before" ]] || fail "the state changed:
$(diff <(echo "$before") <(echo "$after") | sed 's/^/#     /')"
	e2e_alive "$(e2e_tetherd_pid)" || fail "tetherd exited"

	tcp_ask c "drain container container=$h1"
	expect_eq "drain of ta1's container by ta1's agent" "$ANSWER" ok
	expect_eq "state of container $h1" \
		"$(e2e_ctl --json container show "$h1" | jq -r '.state')" draining
	tcp_ask c "heartbeat backend name=ta1"
	expect_eq "heartbeat of ta1 by ta1's agent" "$ANSWER" ok
	e2e_conn_close c

	# An agent bound to no backend: unload is still refused.
	tcp_open g
	tcp_ask g "auth agent secret=$SECRET"
	expect_eq "the right secret, no backend" "$ANSWER" ok
	expect_unauthorized g "unload tetherd"
	tcp_ask g "list backend"
	expect_eq "list backend after auth" "$ANSWER" ok
	e2e_conn_close g
	e2e_alive "$(e2e_tetherd_pid)" || fail "tetherd exited after 'unload tetherd' over TCP"
	[[ -e $E2E_PIN_ROOT/link_$E2E_IF_RC ]] || fail "the pins are gone after 'unload tetherd' over TCP"
	e2e_ctl backend del ta1 >/dev/null
	e2e_ctl backend del ta2 >/dev/null
}

# c'. The wait grows with repeated failures: 200 ms after one, 400 ms after two.
test_tcp_backoff() {
	local t_fail waited
	tcp_open d
	tcp_open e
	tcp_open f
	tcp_open g
	tcp_ask d "auth agent secret=$WRONG_SECRET"
	expect_eq "first wrong secret" "$ANSWER" "error unauthorized: wrong secret"
	sleep 0.3
	tcp_ask e "auth agent secret=$WRONG_SECRET"
	t_fail=$(now_ms)
	expect_eq "second wrong secret, 300 ms later" "$ANSWER" "error unauthorized: wrong secret"
	# Two failures: 400 ms of backoff. The right secret at once (sent 287 ms
	# after, it once reached a sanitized tetherd on a busy machine past the
	# 400 ms), then again well past them.
	waited=$(($(now_ms) - t_fail))
	tcp_ask f "auth agent secret=$SECRET"
	echo "#   (${waited} ms after the second failure)"
	expect_contains "the right secret ${waited} ms after the second failure" "$ANSWER" \
		"too many failed attempts"
	waited=$(($(now_ms) - t_fail))
	((waited >= 600)) || sleep "$(printf '0.%03d' $((600 - waited)))"
	waited=$(($(now_ms) - t_fail))
	tcp_ask g "auth agent secret=$SECRET"
	echo "#   (${waited} ms after the second failure)"
	expect_eq "the right secret ${waited} ms after the second failure" "$ANSWER" ok
	e2e_conn_close g
}

# c''. A TCP listener without a secret of at least 16 characters: tetherd
# refuses to start, says why, and makes nothing.
test_tcp_short_secret() {
	local out status short=$E2E_LOG_DIR/short.secret problems=() label
	instance ss
	printf '0123456789abcde\n' >"$short" # 15 characters
	local -a common=(--iface "$IFACE" --vip "198.51.100.18:$E2E_PORT" --pin-root "$PIN"
		--socket "$SOCK" --tcp-listen "127.0.0.1:$((TCP_PORT + 1))" --tcp-plain)
	for label in "15-character secret" "no secret file"; do
		status=0
		if [[ $label == no* ]]; then
			out=$(e2e_tetherd_try "${common[@]}") || status=$?
		else
			out=$(e2e_tetherd_try "${common[@]}" --tcp-secret-file "$short") || status=$?
		fi
		echo "#   $label: exit $status: $(head -n1 <<<"$out")"
		((status != 0 && status != 124)) || fail "$label: exit status $status"
		expect_contains "$label: the message" "$out" "at least 16 characters"
		[[ -z $(e2e_in_router ss -Hltn "sport = :$((TCP_PORT + 1))") ]] ||
			problems+=("$label: something listens on port $((TCP_PORT + 1))")
		[[ ! -e $SOCK ]] || problems+=("$label: the socket $SOCK was made")
		[[ -z $(e2e_xdp_prog_id "$IFACE") ]] || problems+=("$label: XDP attached to $IFACE")
		! lo_has 198.51.100.18 || problems+=("$label: 198.51.100.18 left on lo")
		if [[ -e $PIN ]]; then
			problems+=("$label: the pin root $PIN was made: $(ls "$PIN" | tr '\n' ' ')")
			"$E2E_TETHERD" --unload --pin-root "$PIN" >/dev/null 2>&1 || true
		fi
	done
	((${#problems[@]} == 0)) || fail "a refused start changed things: $(
		IFS=';'
		echo "${problems[*]}"
	)"
}

# --- c2. per-backend secrets ------------------------------------------------------------

# The backend= values in an answer's records, one a word ("" when none).
record_backends() {
	grep -o '\(^\| \)backend=[^ ]*' <<<"$1" | sed 's/^ //; s/^backend=//' | sort -u | tr '\n' ' '
}

# Opens connection NAME and authenticates it with LINE; expects ok.
tcp_auth_ok() {
	tcp_open "$1"
	tcp_ask "$1" "$2"
	expect_eq "$(masked "$2")" "$ANSWER" ok
}

# Opens connection NAME, sends the auth LINE, expects 'wrong secret' and the
# connection closed.
tcp_auth_wrong() {
	tcp_open "$1"
	tcp_ask "$1" "$2"
	expect_eq "$(masked "$2")" "$ANSWER" "error unauthorized: wrong secret"
	expect_closed "$1"
}

# c2. An agent that authenticates with its backend's own secret
# (--agent-secrets-dir/as1) registers its backend and changes its containers;
# it cannot touch another backend or its containers, nor read them, and
# hears only its own events. Its secret is good only with backend=as1, a
# wrong one is refused and backs off, a changed one counts at the next auth,
# a file others may read is refused.
test_agent_secret() {
	local h_vm1 h_start mine before after request mac name
	mac=$(vm_mac vm1)
	h_vm1=$(add_warm 61 vm1)
	h_start=$(e2e_ctl --json container add --function 61 --backend vm1 | jq -er '.container')
	echo "#   vm1: container $h_vm1 (warm), $h_start (starting) of function 61; secrets in $SECRETS_DIR"

	tcp_auth_ok p "auth agent backend=as1 secret=$AS1_SECRET"
	tcp_ask p "add backend name=as1 addr=203.0.113.2 mac=$mac iface=$E2E_IF_R1 heartbeat_ms=3600000"
	expect_eq "as1 registers itself" "$ANSWER" ok
	tcp_ask p "add container function=61 backend=as1 state=starting"
	expect_eq "as1 adds a container" "$ANSWER" ok
	mine=$(sed -n 's/^container=\([0-9]*\) .*/\1/p' <<<"$ANSWER_ALL")
	tcp_ask p "up container container=$mine"
	expect_eq "as1 brings its container $mine up" "$ANSWER" ok
	tcp_ask p "heartbeat backend name=as1"
	expect_eq "as1's heartbeat" "$ANSWER" ok
	tcp_ask p "show container container=$mine"
	expect_eq "as1 shows its container" "$ANSWER" ok
	tcp_ask p "list backend"
	expect_eq "the backends as1 sees" "$(record_backends "$ANSWER_ALL")" "as1 "
	tcp_ask p "list container"
	expect_eq "the containers' backends as1 sees" "$(record_backends "$ANSWER_ALL")" "as1 "

	# Events: vm1's are not for as1; its own are.
	tcp_auth_ok q "auth agent backend=as1 secret=$AS1_SECRET"
	e2e_conn_send q "watch event"
	e2e_conn_wait q '^ok$' || fail "watch event: no 'ok' ($(cat "$E2E_LOG_DIR/conn-q/out"))"
	e2e_ctl container del "$(add_warm 63 vm1)" >/dev/null
	tcp_ask p "add container function=63 backend=as1 state=warm"
	e2e_conn_wait q "^event=container_added .*function=63 backend=as1 " ||
		fail "no container_added of as1 on its watch: $(cat "$E2E_LOG_DIR/conn-q/out")"
	! grep -q "backend=vm1" "$E2E_LOG_DIR/conn-q/out" ||
		fail "as1's watch hears of vm1: $(grep backend=vm1 "$E2E_LOG_DIR/conn-q/out")"
	e2e_conn_close q

	before=$(controller_state)
	for request in "add container function=61 backend=vm1 state=warm" \
		"up container container=$h_start" "drain container container=$h_vm1" \
		"idle container container=$h_vm1" "del container container=$h_vm1" \
		"show container container=$h_vm1" "list container backend=vm1" \
		"heartbeat backend name=vm1" "drain backend name=vm1" "del backend name=vm1" \
		"add backend name=as2 addr=203.0.113.2 mac=$mac iface=$E2E_IF_R1" \
		"flush affinity function=61" "show affinity function=61 key=1" "show stats" \
		"list function" "show function function=61" "unload tetherd"; do
		expect_unauthorized p "$request"
		expect_contains "the refusal of '$request'" "$ANSWER" "bound to backend 'as1'"
	done
	expect_contains "what as1 may do" "$ANSWER" "it may add, heartbeat, drain, del and list backend as1"
	after=$(controller_state)
	[[ $after == "$before" ]] || fail "the state changed:
$(diff <(echo "$before") <(echo "$after") | sed 's/^/#     /')"

	# Its own secret without backend=, or for another backend, is no good.
	tcp_auth_wrong r "auth agent secret=$AS1_SECRET"
	sleep 0.3 # past the 200 ms after one failure
	tcp_auth_ok s "auth agent backend=as1 secret=$AS1_SECRET"
	tcp_auth_wrong t "auth agent backend=vm1 secret=$AS1_SECRET"
	sleep 0.3
	# A wrong own secret: refused, and the right one right after too.
	tcp_auth_ok u "auth agent backend=as1 secret=$AS1_SECRET"
	tcp_open v
	tcp_open w
	tcp_ask v "auth agent backend=as1 secret=$WRONG_SECRET"
	expect_eq "a wrong secret for as1" "$ANSWER" "error unauthorized: wrong secret"
	tcp_ask w "auth agent backend=as1 secret=$AS1_SECRET"
	expect_contains "the right secret right after a wrong one" "$ANSWER" \
		"error unauthorized: too many failed attempts"
	expect_closed v
	expect_closed w
	sleep 0.3

	# A new secret in the file counts at the next auth; the old one is gone.
	printf '%s\n' "$AS1_ROTATED" >"$SECRETS_DIR/as1"
	tcp_auth_ok x "auth agent backend=as1 secret=$AS1_ROTATED"
	tcp_auth_wrong y "auth agent backend=as1 secret=$AS1_SECRET"
	sleep 0.3

	# A secret file others may read is refused, and the log says why.
	chmod 0644 "$SECRETS_DIR/as1"
	tcp_auth_wrong z "auth agent backend=as1 secret=$AS1_ROTATED"
	chmod 0600 "$SECRETS_DIR/as1"
	show "$(grep -F "$SECRETS_DIR/as1 is open" "$E2E_TETHERD_LOG" | tail -n1)"
	grep -qF "$SECRETS_DIR/as1 is open to group or others (mode 0644)" "$E2E_TETHERD_LOG" ||
		fail "the log does not say why as1's secret file was refused: $(tail -n3 "$E2E_TETHERD_LOG")"
	sleep 0.5 # two failures in a row: 400 ms
	tcp_auth_ok a "auth agent backend=as1 secret=$AS1_ROTATED"
	tcp_ask a "del backend name=as1"
	expect_eq "as1 removes itself" "$ANSWER" ok
	printf '%s\n' "$AS1_SECRET" >"$SECRETS_DIR/as1"
	for name in p s u x a; do
		e2e_conn_close "$name"
	done
	e2e_ctl container del "$h_vm1" >/dev/null
	e2e_ctl container del "$h_start" >/dev/null
}

# c2b. The functions a backend may hold: the operator sets them (the local
# socket, the shared secret; by name, before the agent registers and after it
# leaves); a connection bound to the backend (its own secret, or the shared
# one with backend=) may add or bring up containers of those functions only;
# operators are not held to it; it survives the backend's removal and a
# restart; nothing changes on a refusal.
test_allowed_functions() {
	local mac out mine theirs before after
	mac=$(vm_mac vm1)
	e2e_ctl backend set as1 --functions 71,73-75 >/dev/null || fail "backend set over the socket"
	tcp_auth_ok f "auth agent backend=as1 secret=$AS1_SECRET"
	tcp_ask f "add backend name=as1 addr=203.0.113.2 mac=$mac iface=$E2E_IF_R1 heartbeat_ms=3600000"
	expect_eq "as1 registers" "$ANSWER" ok
	expect_contains "as1's record" "$ANSWER_ALL" "functions=71,73-75"
	tcp_ask f "add container function=74 backend=as1 state=starting"
	expect_eq "as1 adds a container of function 74" "$ANSWER" ok
	mine=$(sed -n 's/^container=\([0-9]*\) .*/\1/p' <<<"$ANSWER_ALL")
	tcp_ask f "up container container=$mine"
	expect_eq "as1 brings it up" "$ANSWER" ok
	before=$(controller_state)
	tcp_ask f "add container function=72 backend=as1 state=warm"
	expect_eq "as1 adds a container of function 72" "$ANSWER" \
		"error unauthorized: backend 'as1' may hold functions 71,73-75, not 72 (the operator sets them: tetherctl backend set as1 --functions ...)"
	# An operator may: over the socket, and with the shared secret.
	theirs=$(e2e_ctl --json container add --function 72 --backend as1 | jq -er .container)
	tcp_auth_ok o "auth agent secret=$SECRET"
	tcp_ask o "add container function=76 backend=as1 state=starting"
	expect_eq "the shared secret adds function 76 on as1" "$ANSWER" ok
	before=$(controller_state)
	tcp_ask f "up container container=$theirs"
	expect_contains "as1 brings up the operator's container of function 72" "$ANSWER" \
		"error unauthorized: backend 'as1' may hold functions 71,73-75, not 72"
	tcp_ask f "add backend name=as1 addr=203.0.113.2 mac=$mac iface=$E2E_IF_R1 functions=any"
	expect_contains "as1 sets its own functions" "$ANSWER" "error unauthorized: the functions"
	expect_unauthorized f "set backend name=as1 functions=any"
	# The shared secret with backend= binds too.
	tcp_auth_ok g "auth agent backend=as1 secret=$SECRET"
	tcp_ask g "add container function=72 backend=as1 state=starting"
	expect_contains "the shared secret bound to as1, function 72" "$ANSWER" "error unauthorized"
	after=$(controller_state)
	[[ $after == "$before" ]] || fail "a refusal changed the state:
$(diff <(echo "$before") <(echo "$after") | sed 's/^/#     /')"
	# Kept by name: through the backend's removal and a restart.
	tcp_ask f "del backend name=as1"
	expect_eq "as1 removes itself" "$ANSWER" ok
	e2e_tetherd_stop KILL
	e2e_tetherd_start
	tcp_auth_ok h "auth agent backend=as1 secret=$AS1_SECRET"
	tcp_ask h "add backend name=as1 addr=203.0.113.2 mac=$mac iface=$E2E_IF_R1 heartbeat_ms=3600000"
	expect_contains "as1 registered again after a restart" "$ANSWER_ALL" "functions=71,73-75"
	tcp_ask h "add container function=72 backend=as1 state=starting"
	expect_contains "function 72 after the restart" "$ANSWER" "error unauthorized"
	e2e_ctl backend set as1 --functions any >/dev/null
	tcp_ask h "add container function=72 backend=as1 state=starting"
	expect_eq "function 72 once the operator allows any" "$ANSWER" ok
	tcp_ask h "del backend name=as1"
	for name in f o g h; do
		e2e_conn_close "$name"
	done
	out=$("$E2E_TETHERCTL" --socket "$E2E_SOCKET" backend set as1 --functions 0 2>&1) &&
		fail "a bad list was taken"
	expect_contains "a bad list" "$out" "expected function ids and ranges"
}

# c2c. A TCP connection may send --agent-rate changes a second, in bursts of
# as many: past that its changes are refused 'overloaded' (nothing changed,
# counted), another connection is not held up, the local socket has no
# limit, and the budget refills with time.
test_agent_rate() {
	local out n=$((AGENT_RATE * 3)) oks over before after i
	before=$(e2e_ctl --json stats | jq '.[] | select(.part == "control") | .changes_overloaded')
	out=$({
		printf 'auth agent secret=%s\n' "$SECRET"
		for ((i = 0; i < n; i++)); do printf 'heartbeat backend name=vm1\n'; done
	} | e2e_in_router socat -t 5 - "TCP:127.0.0.1:$TCP_PORT")
	oks=$(grep -c '^ok$' <<<"$out")
	over=$(grep -c '^error overloaded: ' <<<"$out")
	echo "#   $n heartbeats at once over TCP: $((oks - 1)) ok, $over overloaded"
	expect_eq "answers" $((oks - 1 + over)) "$n"
	expect_ge "changes taken (the burst)" $((oks - 1)) "$AGENT_RATE"
	expect_ge "changes refused" "$over" $((n - 2 * AGENT_RATE))
	expect_contains "the refusal" "$out" "sends more than $AGENT_RATE changes a second"
	after=$(e2e_ctl --json stats | jq '.[] | select(.part == "control") | .changes_overloaded')
	expect_eq "changes_overloaded counted" $((after - before)) "$over"
	# The local socket: no limit.
	out=$(for ((i = 0; i < n; i++)); do printf 'heartbeat backend name=vm1\n'; done |
		socat -t 5 - "UNIX-CONNECT:$E2E_SOCKET")
	expect_eq "heartbeats over the local socket, all ok" "$(grep -c '^ok$' <<<"$out")" "$n"
	# Refilled after a second.
	sleep 1
	out=$({
		printf 'auth agent secret=%s\n' "$SECRET"
		for ((i = 0; i < AGENT_RATE / 2; i++)); do printf 'heartbeat backend name=vm1\n'; done
	} | e2e_in_router socat -t 5 - "TCP:127.0.0.1:$TCP_PORT")
	expect_eq "a new connection, half the rate" "$(grep -c '^ok$' <<<"$out")" $((AGENT_RATE / 2 + 1))
	# Connections bound to one backend share its budget: two sending a burst
	# each at once get one burst between them (and what refills meanwhile),
	# not one each.
	local burst t0 ms taken refused name
	burst=$(for ((i = 0; i < AGENT_RATE; i++)); do printf 'heartbeat backend name=vm1\n'; done)
	tcp_auth_ok r1 "auth agent backend=vm1 secret=$SECRET"
	tcp_auth_ok r2 "auth agent backend=vm1 secret=$SECRET"
	t0=$(now_ms)
	e2e_conn_send r1 "$burst"
	e2e_conn_send r2 "$burst"
	for name in r1 r2; do
		for ((i = 0; i < 500; i++)); do
			(($(grep -c '^ok$\|^error overloaded' "$E2E_LOG_DIR/conn-$name/out") >= AGENT_RATE + 1)) &&
				break
			sleep 0.02
		done
	done
	ms=$(($(now_ms) - t0))
	taken=$(($(cat "$E2E_LOG_DIR"/conn-r[12]/out | grep -c '^ok$') - 2))
	refused=$(cat "$E2E_LOG_DIR"/conn-r[12]/out | grep -c '^error overloaded')
	echo "#   two connections bound to vm1, $AGENT_RATE heartbeats each at once: $taken ok, $refused overloaded in $ms ms"
	expect_eq "answers" $((taken + refused)) $((2 * AGENT_RATE))
	expect_ge "changes taken (the burst)" "$taken" "$AGENT_RATE"
	expect_le "changes taken (one burst and the refill over $ms ms)" "$taken" \
		$((AGENT_RATE + AGENT_RATE * ms / 1000 + 1))
	expect_contains "the refusal" "$(cat "$E2E_LOG_DIR"/conn-r[12]/out)" \
		"backend 'vm1' sends more than $AGENT_RATE changes a second over its connections together"
	e2e_conn_close r1
	e2e_conn_close r2
}

# c3. The VM agent over TCP with its backend's own secret: it registers, runs
# its containers and serves their requests, reports a drain it did not start
# (the event, show container, idle), and removes its backend when it stops.
test_agent_tcp() {
	local function=62 h out t0 ms
	e2e_agent_start vm3 --tetherd "tcp:203.0.113.33:$TCP_PORT" --tcp-plain \
		--secret-file "$SECRETS_DIR/vm3" \
		--function "$function:2" --cold-start-ms 100
	e2e_agent_wait_warm vm3 2
	echo "#   vm3's agent (tcp:203.0.113.33:$TCP_PORT, secret $SECRETS_DIR/vm3): 2 warm containers"
	out=$(e2e_load --function "$function" --count 20 --rate 500 --timeout-ms 2000)
	echo "#   20 requests for function $function: $out"
	expect_eq "answered OK by vm3's containers" "$(e2e_field "$out" ok)" 20

	h=$(e2e_ctl --json container list --backend vm3 | jq -er '.[0].container')
	t0=$(now_ms)
	e2e_ctl drain container "$h" --deadline 10s --wait >/dev/null 2>&1 ||
		fail "tetherctl drain container $h --wait failed"
	ms=$(($(now_ms) - t0))
	echo "#   drain of vm3's container $h by the operator: gone after $ms ms (deadline 10 s)"
	expect_le "ms until the agent reported container $h idle" "$ms" 3000

	e2e_agent_stop vm3
	expect_eq "backend vm3 after its agent stopped" "$(backend_field vm3 state)" ""
	! grep -q "refused" "$E2E_LOG_DIR/agent_vm3.log" ||
		fail "tetherd refused vm3's agent: $(grep refused "$E2E_LOG_DIR/agent_vm3.log")"
	! grep -q "auth agent backend=vm3 .*refused" "$E2E_TETHERD_LOG" ||
		fail "tetherd refused vm3's agent: $(grep 'backend=vm3' "$E2E_TETHERD_LOG")"
}

# c4a. A start that fails after the settings were taken (here the pin root
# cannot be made) says why and exits 1: no crash on the way out, nothing
# left behind.
test_start_failed() {
	local out status=0 root=/proc/tether-$E2E_ID
	out=$(e2e_tetherd_try --iface "$E2E_IF_RC" --vip "$E2E_VIP4:$E2E_PORT" --pin-root "$root" \
		--socket "$E2E_RUN_DIR/failed.sock") || status=$?
	echo "#   --pin-root $root: exit $status: $(head -n1 <<<"$out")"
	expect_eq "exit status" "$status" 1
	expect_contains "the reason" "$out" "cannot create pin root $root"
	[[ ! -e $E2E_RUN_DIR/failed.sock ]] || fail "the failed start left its socket"
}

# c4. Per-backend secrets tetherd will not use: it refuses to start, says why
# and how to fix it, and makes nothing.
test_agent_secrets_refused() {
	local out status item label setup expected hint first dir
	instance as
	dir=$E2E_LOG_DIR/as-secrets
	# label|what is done to the directory DIR|the message|the fix it names
	local -a cases=(
		"a directory others may read|chmod 755 DIR|DIR is open to group or others (mode 0755)|chmod 700 DIR"
		"a directory of another user|chown nobody DIR|DIR belongs to uid $(id -u nobody)|chown 0 DIR"
		"a secret file others may read|chmod 644 DIR/vm1|DIR/vm1 is open to group or others (mode 0644)|chmod 600 DIR/vm1"
		"a secret of 15 characters|printf 0123456789abcde >DIR/vm1|DIR/vm1 must hold one secret of 16 to 127 characters|(it holds 15 characters)"
		"a symbolic link|ln -s vm1 DIR/vm2|cannot open DIR/vm2|put the secret itself there"
		"a file name that is no backend name|cp -p DIR/vm1 DIR/vm\\ 1|DIR/vm 1: the file name is no backend name|[A-Za-z0-9._-]"
		"no such directory|rm -rf DIR|cannot open the agent secrets directory DIR|No such file"
		"no --tcp-listen|NO_LISTENER|--agent-secrets-dir is for agents on the TCP listener|give --tcp-listen"
	)
	for item in "${cases[@]}"; do
		IFS='|' read -r label setup expected hint <<<"$item"
		rm -rf "$dir"
		mkdir -m 700 "$dir"
		(umask 077 && random_secret >"$dir/vm1")
		local args=(--iface "$IFACE" --vip "198.51.100.20:$E2E_PORT" --pin-root "$PIN"
			--socket "$SOCK" --agent-secrets-dir "$dir")
		if [[ $setup != NO_LISTENER ]]; then
			args+=(--tcp-listen "127.0.0.1:$((TCP_PORT + 2))" --tcp-plain)
			eval "${setup//DIR/\"\$dir\"}"
		fi
		status=0
		out=$(e2e_tetherd_try "${args[@]}") || status=$?
		first=$(head -n1 <<<"$out")
		echo "#   $label: exit $status: $first"
		((status != 0 && status != 124)) || fail "$label: exit status $status"
		expect_contains "$label: the message" "$first" "${expected//DIR/$dir}"
		expect_contains "$label: the fix" "$first" "${hint//DIR/$dir}"
		expect_nothing_made "$label" 198.51.100.20
	done
	rm -rf "$dir"
}

# --- d. the Unix socket's permissions -----------------------------------------------------

# Sends 'list backend' to SOCKET as USER (setpriv options after it); prints
# what came back, socat's errors included.
ask_as() {
	local user=$1 socket=$2
	shift 2
	printf 'list backend\n' |
		setpriv --reuid="$user" "$@" socat -t1 - "UNIX-CONNECT:$socket" 2>&1 || true
}

# Connects to SOCKET as USER and only reads (tetherd refuses a peer it does
# not allow at once, in writing, and closes; a client that writes first may
# find the connection gone); prints what came.
read_as() {
	local user=$1 socket=$2
	shift 2
	timeout 3 setpriv --reuid="$user" "$@" socat -u -t1 "UNIX-CONNECT:$socket" - 2>&1 || true
}

test_socket_perms() {
	local group=${E2E_ID}g user=${E2E_ID}u member=${E2E_ID}m out
	expect_eq "the rig's socket: mode, owner, group" "$(stat -c '%a %U %G' "$E2E_SOCKET")" \
		"600 root root"
	groupadd "$group"
	useradd -M -N -g "$NOBODY_GROUP" -s /usr/sbin/nologin "$user"
	useradd -M -N -g "$NOBODY_GROUP" -G "$group" -s /usr/sbin/nologin "$member"
	echo "#   $(id "$user"); $(id "$member")"

	out=$(ask_as "$user" "$E2E_SOCKET" --regid="$NOBODY_GROUP" --init-groups)
	echo "#   $user on the rig's socket: $(head -n1 <<<"$out")"
	! grep -qx ok <<<"$out" || fail "$user may use the rig's 0600 socket"

	instance sg
	instance_start --iface "$IFACE" --vip "198.51.100.19:$E2E_PORT" --pin-root "$PIN" \
		--socket "$SOCK" --socket-group "$group"
	expect_eq "--socket-group: mode, owner, group" "$(stat -c '%a %U %G' "$SOCK")" \
		"660 root $group"
	out=$(ask_as "$user" "$SOCK" --regid="$NOBODY_GROUP" --init-groups)
	echo "#   $user (not in $group): $(head -n1 <<<"$out")"
	! grep -qx ok <<<"$out" || fail "$user, not in $group, may use the socket"
	expect_contains "$user, not in $group" "$out" "Permission denied"

	# tetherd's own check, should the file's mode be wider than it made it.
	chmod 0666 "$SOCK"
	out=$(read_as "$user" "$SOCK" --regid="$NOBODY_GROUP" --init-groups)
	chmod 0660 "$SOCK"
	echo "#   $user with the socket at 0666: $(head -n1 <<<"$out")"
	expect_eq "$user with the socket at 0666" "$(head -n1 <<<"$out")" \
		"error unauthorized: your user may not use this socket"

	out=$(ask_as "$user" "$SOCK" --regid="$group" --clear-groups)
	echo "#   $user with primary group $group: $(head -n1 <<<"$out")"
	expect_eq "$user with primary group $group" "$(head -n1 <<<"$out")" ok
	out=$(ask_as "$member" "$SOCK" --regid="$NOBODY_GROUP" --init-groups)
	if [[ $(head -n1 <<<"$out") != ok ]]; then
		# What tetherd says to it (a client that writes first may only see
		# the connection go).
		out+=" / read only: $(read_as "$member" "$SOCK" --regid="$NOBODY_GROUP" --init-groups)"
	fi
	echo "#   $member (in $group by /etc/group, primary group $NOBODY_GROUP): $(head -n1 <<<"$out")"
	expect_eq "$member, a member of $group" "$(head -n1 <<<"$out")" ok
	instance_unload
	userdel "$user" 2>/dev/null
	userdel "$member" 2>/dev/null
	groupdel "$group"
}

# --- e. watch --------------------------------------------------------------------------------

# The event names, in order, of the events in FILE about backend wt or
# function CAP (tetherctl's table, or the protocol's event= lines).
event_names() {
	grep -E "(^| )(backend=wt|function=$2)( |$)" "$1" |
		sed -E 's/^event=([a-z_]+).*/\1/; s/^[0-9-]+ [0-9:.]+ ([a-z_]+) .*/\1/' | tr '\n' ' '
}

test_watch() {
	local function=70 cap=71 sync=72 h out i ctl=$E2E_LOG_DIR/watch_tetherctl.out pid
	local raw=$E2E_LOG_DIR/conn-w/out
	e2e_conn_open w "UNIX-CONNECT:$E2E_SOCKET"
	e2e_conn_send w "watch event"
	e2e_conn_wait w '^ok$' || fail "watch event: no 'ok' ($(cat "$raw"))"
	"$E2E_TETHERCTL" --socket "$E2E_SOCKET" watch >"$ctl" 2>&1 &
	pid=$!
	e2e_track "$pid"
	# tetherctl says nothing until the first event: add and remove a container
	# of another function until it shows.
	for ((i = 0; i < 50; i++)); do
		h=$(add_warm "$sync" vm2)
		e2e_ctl container del "$h" >/dev/null
		grep -q "function=$sync " "$ctl" && break
		sleep 0.05
	done
	grep -q "function=$sync " "$ctl" || fail "tetherctl watch shows no event: $(cat "$ctl")"

	e2e_ctl backend add wt --addr 203.0.113.18 --mac "$(vm_mac vm2)" --iface "$E2E_IF_R2" \
		--heartbeat-ms "$HOUR" >/dev/null
	h=$(e2e_ctl --json container add --function "$function" --backend wt | jq -er '.container')
	e2e_ctl container up "$h" >/dev/null
	e2e_ctl container drain "$h" >/dev/null
	e2e_ctl container idle "$h" >/dev/null
	e2e_ctl backend del wt >/dev/null
	out=$(e2e_load --function "$cap" --count 1 --timeout-ms 2000)
	echo "#   backend wt, container $h of function $function; one request for function $cap: $out"
	expect_eq "NO_CAPACITY for function $cap" "$(e2e_field "$out" no_capacity)" 1
	e2e_conn_wait w "capacity_needed function=$cap " ||
		fail "no capacity_needed on the socket: $(cat "$raw")"
	for ((i = 0; i < 100; i++)); do
		grep -q "capacity_needed function=$cap " "$ctl" && break
		sleep 0.02
	done
	kill -TERM "$pid" 2>/dev/null || true
	e2e_conn_close w
	echo "#   tetherctl watch:"
	show "$(grep -E "(^| )(backend=wt|function=$cap)( |$)" "$ctl")"
	echo "#   socat 'watch event':"
	show "$(grep -E "^ok$|(^| )(backend=wt|function=$cap)( |$)" "$raw")"
	local expected="backend_up container_added container_up container_draining container_gone backend_removed capacity_needed "
	expect_eq "events on the socket" "$(event_names "$raw" "$cap")" "$expected"
	expect_eq "events of tetherctl watch" "$(event_names "$ctl" "$cap")" "$expected"
	grep -q "^event=container_added container=$h function=$function backend=wt state=starting" "$raw" ||
		fail "container_added does not name container $h, function $function, backend wt, state starting"
	grep -q "^event=container_gone container=$h function=$function backend=wt reason=idle" "$raw" ||
		fail "container_gone does not name container $h with reason=idle"
	grep -q "^event=capacity_needed function=$cap waiting=1" "$raw" ||
		fail "capacity_needed does not say waiting=1"
}

# --- f. heartbeats ------------------------------------------------------------------------------

# The state of backend hb in 'list backend'.
hb_state() {
	e2e_raw "list backend" | sed -n 's/^backend=hb .* state=\([a-z]*\) .*/\1/p'
}

# The state (enum backend_state: 1 up, 2 draining, 3 down) of backend id $1
# in the data plane's backends map.
dataplane_backend_state() {
	local id=$1
	# shellcheck disable=SC2046 # four words, one per byte
	bpftool -j map lookup pinned "$E2E_PIN_ROOT/backends" key $(e2e_key_bytes "$id") |
		jq '.formatted.value.state'
}

# f. A backend without heartbeats is down at its deadline: 'list backend' says
# so, and its containers get no traffic (the slow path answers NO_CAPACITY);
# a heartbeat brings it back.
test_heartbeat() {
	local function=80 h t0 t_added ts te state out before loop i polls=""
	local last_up=-1 first_down=-1 hb_id
	t0=$(now_ms)
	e2e_ctl backend add hb --addr 203.0.113.2 --mac "$(vm_mac vm1)" --iface "$E2E_IF_R1" \
		--heartbeat-ms 500 >/dev/null
	t_added=$(now_ms)
	h=$(add_warm "$function" hb)
	hb_id=$(backend_field hb id)
	# Each poll is timed from before it was sent to after its answer: the
	# deadline lies between t0 + 500 and t_added + 500 ms.
	while :; do
		ts=$(now_ms)
		state=$(hb_state)
		te=$(now_ms)
		polls+=" $((ts - t0))-$((te - t0)):$state"
		if [[ $state == down ]]; then
			first_down=$((te - t0))
			# Down in the list is down where requests are routed: the
			# next tick must not be what writes it (it once let one
			# request through in between).
			expect_eq "hb's state in the data plane once listed down" \
				"$(dataplane_backend_state "$hb_id")" 3
			((te >= t0 + 480)) || fail "hb down in a poll answered $((te - t0)) ms after the add began"
			break
		fi
		expect_eq "state of hb in a poll" "$state" up
		last_up=$((ts - t_added))
		((ts <= t_added + 600)) ||
			fail "hb still up in a poll sent $((ts - t_added)) ms after it was added (polls, ms:$polls)"
		sleep 0.01
	done
	echo "#   backend hb (heartbeat 500 ms, container $h of function $function):" \
		"last 'up' in a poll sent $last_up ms after the add, 'down' answered $first_down ms after"
	echo "#   polls (sent-answered ms after the add began: state):$polls"

	before=$(container_packets "$h")
	out=$(e2e_load --function "$function" --count 5 --rate 100 --timeout-ms 2000)
	echo "#   5 requests while hb is down: $out"
	expect_eq "answered while down" "$(e2e_field "$out" answered)" 5
	expect_eq "NO_CAPACITY while down" "$(e2e_field "$out" no_capacity)" 5
	expect_eq "packets of container $h while down" "$(container_packets "$h")" "$before"

	e2e_ctl backend heartbeat hb >/dev/null
	expect_eq "state after a heartbeat" "$(backend_field hb state)" up
	# Heartbeats every 100 ms while the requests go (a bounded loop).
	(
		for ((i = 0; i < 40; i++)); do
			"$E2E_TETHERCTL" --socket "$E2E_SOCKET" backend heartbeat hb >/dev/null 2>&1 || true
			sleep 0.1
		done
	) &
	loop=$!
	out=$(e2e_load --function "$function" --count 20 --rate 200 --timeout-ms 1000)
	kill "$loop" 2>/dev/null || true
	wait "$loop" 2>/dev/null || true
	echo "#   20 requests after the heartbeat: $out"
	expect_eq "ok after the heartbeat" "$(e2e_field "$out" ok)" 20
	expect_eq "packets of container $h after the heartbeat" "$(container_packets "$h")" \
		"$((before + 20))"
	e2e_ctl backend del hb >/dev/null
}

# --- g. the systemd unit ------------------------------------------------------------------------

test_systemd_unit() {
	local unit=$E2E_REPO/dist/tetherd.service dir keys out status key value
	[[ -f $unit ]] || fail "$unit is missing"
	# Section.Key=Value, one a line; BAD: for a line that is none of those.
	keys=$(awk '
		/^[ \t]*([#;]|$)/ { next }
		/^\[[A-Za-z]+\][ \t]*$/ { section = $0; gsub(/[][ \t]/, "", section); next }
		/^[A-Za-z][A-Za-z0-9]*=/ { i = index($0, "="); print section "." substr($0, 1, i - 1) "=" substr($0, i + 1); next }
		{ print "BAD:" $0 }' "$unit")
	! grep -q '^BAD:' <<<"$keys" || fail "lines that are not INI: $(grep '^BAD:' <<<"$keys")"
	expect_eq "sections" "$(cut -d. -f1 <<<"$keys" | uniq | tr '\n' ' ')" "Unit Service Install "
	for key in Unit.Description Service.Type=simple Service.ExecStart Service.Restart=always \
		Service.RuntimeDirectory=tether Service.ReadWritePaths Service.LimitMEMLOCK=infinity \
		Install.WantedBy=multi-user.target; do
		grep -q "^$key" <<<"$keys" || fail "no $key in the unit"
	done
	value=$(sed -n 's/^Service\.ExecStart=//p' <<<"$keys")
	[[ $value == /*/tetherd\ --config\ /* ]] || fail "ExecStart is not 'tetherd --config FILE': $value"
	value=$(sed -n 's/^Service\.ReadWritePaths=//p' <<<"$keys")
	[[ " $value " == *" /sys/fs/bpf "* && " $value " == *" /run/tether "* ]] ||
		fail "ReadWritePaths lacks the default pin root's bpffs or socket directory: $value"
	# The settings sample in the unit's comments uses tetherd's option names.
	local help
	help=$("$E2E_TETHERD" --help)
	for key in $(sed -n 's/^#[ \t]*\([a-z-]*\)[ \t]*=.*/\1/p' "$unit"); do
		grep -q -- "--$key " <<<"$help" || fail "the sample's '$key' is no tetherd option"
	done
	echo "#   $(grep -c . <<<"$keys") settings in [Unit] [Service] [Install]; ExecStart=$(sed -n 's/^Service\.ExecStart=//p' <<<"$keys")"
	if ! command -v systemd-analyze >/dev/null; then
		echo "#   no systemd-analyze here: the INI checks above stand alone"
		return 0
	fi
	dir=$(mktemp -d "$E2E_LOG_DIR/unit.XXXXXX")
	sed "s|^ExecStart=[^ ]*tetherd |ExecStart=$E2E_TETHERD |" "$unit" >"$dir/tetherd.service"
	grep -q "^ExecStart=$E2E_TETHERD --config " "$dir/tetherd.service" ||
		fail "could not point ExecStart at $E2E_TETHERD"
	# Documentation=man:...: the pages as built (make man), where man finds them.
	mkdir -p "$dir/man/man5" "$dir/man/man8"
	cp "$E2E_BUILD/man/tetherd.8" "$dir/man/man8/" && cp "$E2E_BUILD/man/tetherd.conf.5" "$dir/man/man5/" ||
		fail "the man pages are not built in $E2E_BUILD/man: run 'make' first"
	status=0
	out=$(MANPATH=$dir/man systemd-analyze verify "$dir/tetherd.service" 2>&1) || status=$?
	echo "#   systemd-analyze verify (ExecStart=$E2E_TETHERD): exit $status"
	[[ -z $out ]] || show "$out"
	out=$(grep -Ev 'is not executable|Command .* (No such file or directory|not found)' <<<"$out" || true)
	[[ -z $out ]] || fail "systemd-analyze verify complains: $out"
	expect_eq "systemd-analyze verify exit status" "$status" 0
}

# --- runner --------------------------------------------------------------------------------------

TESTS=(systemd_unit config_file config_override config_override_lists config_bad xdp_generic
	xdp_native tcp_auth tcp_backoff tcp_short_secret agent_secret allowed_functions agent_rate agent_tcp
	agent_secrets_refused start_failed socket_perms watch heartbeat)

# Before lib.sh's cleanup: stop every tetherd of the rig, remove the pin roots
# of the tests' own tetherds, the users and the group.
suite_cleanup() {
	local status=$? pid pids=() root name
	trap - EXIT
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
	if [[ -n ${E2E_PIN_ROOT:-} ]]; then
		for root in "$E2E_PIN_ROOT"-*; do
			[[ -e $root ]] || continue
			"$E2E_TETHERD" --unload --pin-root "$root" >/dev/null 2>&1 || true
			rm -rf "$root"
		done
	fi
	if [[ -n ${E2E_ID:-} ]]; then
		for name in "${E2E_ID}u" "${E2E_ID}m"; do
			getent passwd "$name" >/dev/null && userdel "$name" 2>/dev/null || true
		done
		getent group "${E2E_ID}g" >/dev/null && groupdel "${E2E_ID}g" 2>/dev/null || true
	fi
	# lib.sh's cleanup ends in exit: run it in a subshell, so that the
	# summary stays the last line.
	(
		(exit "$status")
		e2e_cleanup
	) || true
	[[ -z ${SUMMARY:-} ]] || echo "$SUMMARY"
	exit "$status"
}

main() {
	local selected=("$@") name
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	e2e_init
	trap suite_cleanup EXIT
	for name in setpriv useradd groupadd getent ss; do
		command -v "$name" >/dev/null || e2e_die "'$name' is not installed"
	done
	DEFAULT_SOCKET_EXISTED=$([[ -e /run/tether/tetherd.sock ]] && echo yes || echo no)
	DEFAULT_PIN_EXISTED=$([[ -e /sys/fs/bpf/tether ]] && echo yes || echo no)
	TCP_PORT=$(e2e_random_port 2)
	AGENT_RATE=50
	# 16 characters: the shortest secret tetherd takes.
	SECRET=$(random_secret)
	SECRET_FILE=$E2E_LOG_DIR/tcp.secret
	(umask 077 && printf '%s\n' "$SECRET" >"$SECRET_FILE")
	# Per-backend secrets: as1 (test_agent_secret), vm3 (vm3's agent).
	SECRETS_DIR=$E2E_LOG_DIR/agents
	AS1_SECRET=$(random_secret)
	AS1_ROTATED=$(random_secret)
	mkdir -m 700 "$SECRETS_DIR"
	(umask 077 && printf '%s\n' "$AS1_SECRET" >"$SECRETS_DIR/as1" &&
		random_secret >"$SECRETS_DIR/vm3")
	e2e_topology --vms 3
	# On every address of the router: vm3's agent reaches it at 203.0.113.33.
	# Plain TCP: the secrets' rules here; TLS is test_tls.sh's.
	e2e_tetherd_start --hold-ms "$HOLD_MS" --tcp-listen "0.0.0.0:$TCP_PORT" --tcp-plain \
		--tcp-secret-file "$SECRET_FILE" --agent-secrets-dir "$SECRETS_DIR" \
		--agent-rate "$AGENT_RATE"
	e2e_backend_start vm1
	e2e_backend_start vm2
	e2e_backend_add vm1 --heartbeat-ms "$HOUR" >/dev/null
	e2e_backend_add vm2 --heartbeat-ms "$HOUR" >/dev/null
	run_tests "${selected[@]}"
	SUMMARY="$passed passed, $failed failed" # printed last, by suite_cleanup
	((failed == 0))
}

main "$@"
