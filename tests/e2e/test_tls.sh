#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end tests of TLS on tetherd's TCP listener and the VM agent's
# connections (docs/protocol.md, Authentication): agents authenticated by
# their client certificates, whose CN binds the connection to that backend;
# certificates refused (another backend's, expired, from another CA, for
# servers only, a name that is no backend's), a tetherd whose certificate
# names another address (the agent refuses it, sends nothing, moves on),
# operators' certificates, secrets over TLS, plain TCP only when asked for
# (and logged), SIGHUP rotation of the certificate and the CA while agents
# stay connected, and the Unix socket as it was.
#
# Certificates are made here (tools/test-certs.sh, certtool) in the rig's
# log directory. The rig's tetherd listens on every address of the router
# with mTLS; tests that need another tetherd start one of their own on a veth
# pair of their own (pin root $E2E_PIN_ROOT-TAG). Run as root:
#
#   tests/e2e/test_tls.sh [TEST...]     (TEST: a name below, e.g. rotation)
#
# TAP output ("ok N - name"), then "N passed, M failed" alone on the last
# line; the exit status is nonzero when a test failed.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FUNCTION=81
HOUR=1h

show() {
	sed 's/^/#     /' <<<"$1"
}

random_secret() {
	head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n'
	echo
}

# The router's address on VM NAME's link (where its agent reaches tetherd).
router_addr() {
	case $1 in
	vm1) echo 203.0.113.1 ;;
	vm2) echo 203.0.113.17 ;;
	vm3) echo 203.0.113.33 ;;
	esac
}

# Starts VM NAME's agent over TCP to the rig's tetherd with the client
# certificate CERT (a name in $CERTS; "" for none), more options after it
# (an agent without --function that never registers exits at once on
# SIGTERM).
agent_tls() {
	local name=$1 cert=$2
	shift 2
	local args=(--tetherd "tcp:$(router_addr "$name"):$TCP_PORT" --tls-ca "$CERTS/ca.pem")
	[[ -z $cert ]] || args+=(--tls-cert "$CERTS/$cert.pem" --tls-key "$CERTS/$cert-key.pem")
	e2e_agent_start "$name" "${args[@]}" --cold-start-ms 50 "$@"
}

# Waits up to 5 s for the extended REGEX in FILE; fails printing the file's
# tail otherwise.
wait_log() {
	local file=$1 regex=$2 i
	for ((i = 0; i < 50; i++)); do
		grep -Eq -- "$regex" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no line matching '$regex' in $file within 5 s; its end:
$(tail -n 8 "$file" 2>/dev/null | sed 's/^/#     /')"
}

backend_state() {
	e2e_ctl --json backend list | jq -r --arg n "$1" '.[] | select(.backend == $n) | .state'
}

# The socat address of a TLS connection to PORT on the router's 127.0.0.1
# with client certificate CERT ("" for none).
tls_address() {
	local port=$1 cert=$2 address
	address="OPENSSL:127.0.0.1:$port,cafile=$CERTS/ca.pem"
	[[ -z $cert ]] || address+=",cert=$CERTS/$cert.pem,key=$CERTS/$cert-key.pem"
	echo "$address"
}

# Sends a line on a connection; ANSWER is the first line of the answer, ""
# when none came; ANSWER_ALL all of it.
tls_ask() {
	local out
	ANSWER=""
	ANSWER_ALL=""
	if ! e2e_conn_send "$1" "$2"; then
		echo "#   [$1] $2 -> (cannot send: the connection is closed)"
		return 0
	fi
	out=$(e2e_conn_answer "$1") || true
	ANSWER=$(head -n1 <<<"$out")
	ANSWER_ALL=$out
	echo "#   [$1] $(sed 's/secret=[^ ]*/secret=.../' <<<"$2") -> ${ANSWER:-(no answer)}"
}

# Opens connection NAME to the rig's listener with certificate CERT.
tls_open() {
	e2e_conn_open "$1" "$(tls_address "$TCP_PORT" "$2")"
}

expect_unauthorized() {
	tls_ask "$1" "$2"
	[[ $ANSWER == "error unauthorized: "?* ]] ||
		fail "'$2': expected 'error unauthorized: ...', got '$ANSWER'"
}

expect_closed() {
	e2e_conn_closed "$1" || fail "tetherd did not close connection $1 within 3 s"
}

# The backend= values of an answer's records, one a word.
record_backends() {
	grep -o '\(^\| \)backend=[^ ]*' <<<"$1" | sed 's/^ //; s/^backend=//' | sort -u | tr '\n' ' '
}

# The serial of the certificate the listener at 127.0.0.1:PORT (router
# namespace) presents, as certtool prints it (lowercase hex).
served_serial() {
	local port=$1 pem
	pem=$(e2e_in_router timeout 5 gnutls-cli --x509cafile "$CERTS/ca.pem" \
		--x509certfile "$CERTS/ops.pem" --x509keyfile "$CERTS/ops-key.pem" --print-cert \
		-p "$port" 127.0.0.1 </dev/null 2>/dev/null |
		sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p;/END CERTIFICATE/q')
	[[ -n $pem ]] || return 0
	certtool -i <<<"$pem" 2>/dev/null | sed -n 's/.*Serial Number (hex): //p' | head -n1
}

# The serial in the certificate file FILE.
file_serial() {
	certtool -i --infile "$1" | sed -n 's/.*Serial Number (hex): //p' | head -n1
}

# The TCP connections established to the rig's listener from ADDR, as
# "local peer" lines (ss in the router namespace), sorted.
connections_from() {
	e2e_in_router ss -Htn state established "( sport = :$TCP_PORT )" |
		awk -v a="$1" '$4 ~ "^"a":" { print $3, $4 }' | sort
}

# --- tetherds of a test's own -------------------------------------------------------

# Sets IFACE, PIN, SOCK, LOG and PORT for instance TAG (2 lowercase
# characters), makes its veth, and stops it when the test's subshell ends.
instance() {
	local tag=$1
	IFACE=${E2E_ID}$tag
	PIN=$E2E_PIN_ROOT-$tag
	SOCK=$E2E_RUN_DIR/$tag.sock
	LOG=$E2E_LOG_DIR/tetherd-$tag.log
	TAG=$tag
	PORT=$((TCP_PORT + $2))
	e2e_router_veth "$IFACE"
	trap instance_stop EXIT
}

# Starts the instance with its interface, a VIP, pin root and socket, and
# the options given; sets PID.
instance_start() {
	e2e_tetherd_spawn "$TAG" "$SOCK" --iface "$IFACE" --vip "198.51.100.31:$E2E_PORT" \
		--pin-root "$PIN" --socket "$SOCK" "$@"
	PID=$E2E_SPAWN_PID
}

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

# --- the tests --------------------------------------------------------------------------

# An agent with its backend's certificate and no secret: registered, bound
# to its backend, its containers warm and serving; tetherd refused nothing.
test_agent_mtls() {
	agent_tls vm1 vm1 --function "$FUNCTION:1"
	e2e_agent_wait_warm vm1 1
	local out
	out=$(e2e_load --function "$FUNCTION" --count 20 --rate 500 --timeout-ms 2000)
	echo "#   vm1's agent (CN=vm1, no secret): 20 requests: $out"
	expect_eq "answered OK by vm1's container" "$(e2e_field "$out" ok)" 20
	! grep -q "refused" "$E2E_TETHERD_LOG" ||
		fail "tetherd refused something: $(grep refused "$E2E_TETHERD_LOG")"
	grep -q "TLS to tetherd: its certificate must chain" "$E2E_LOG_DIR/agent_vm1.log" ||
		fail "the agent does not say it uses TLS"
}

# On a connection its certificate bound to vm1: requests need no auth; auth
# agent backend=vm1 is fine without a secret, a wrong secret is not; another
# backend or none (even with its own secret, or the shared one) is refused
# and the connection closed; vm1's connection sees and changes vm1 only.
test_certificate_binds() {
	local mac before after request
	mac=$(e2e_mac "$E2E_NS_VM2" "$E2E_IF_V2")
	e2e_ctl backend add other --addr 203.0.113.18 --mac "$mac" --iface "$E2E_IF_R2" \
		--heartbeat-ms "$HOUR" >/dev/null
	local h
	h=$(e2e_ctl --json container add --function "$FUNCTION" --backend other --warm |
		jq -er '.container')
	tls_open a vm1
	tls_ask a "list backend"
	expect_eq "list backend without auth, certificate CN=vm1" "$ANSWER" ok
	expect_eq "the backends it sees" "$(record_backends "$ANSWER_ALL")" "vm1 "
	tls_ask a "auth agent backend=vm1"
	expect_eq "auth agent backend=vm1, no secret" "$ANSWER" ok
	before=$(e2e_ctl --json container list)
	for request in "del container container=$h" "drain backend name=other" \
		"add container function=$FUNCTION backend=other state=warm" "list container backend=other" \
		"show stats" "unload tetherd"; do
		expect_unauthorized a "$request"
		expect_contains "the refusal of '$request'" "$ANSWER" "bound to backend 'vm1'"
	done
	after=$(e2e_ctl --json container list)
	[[ $after == "$before" ]] || fail "the containers changed"

	tls_ask a "auth agent backend=other secret=$OTHER_SECRET"
	expect_eq "auth for another backend with that backend's own secret" "$ANSWER" \
		"error unauthorized: this connection's certificate binds it to backend 'vm1', not 'other'"
	expect_closed a
	tls_open b vm1
	tls_ask b "auth agent secret=$SECRET"
	expect_contains "auth without backend= (the shared secret)" "$ANSWER" \
		"binds it to backend 'vm1'"
	expect_closed b
	tls_open c vm1
	tls_ask c "auth agent backend=vm1 secret=not-the-secret-0123456789"
	expect_eq "a wrong secret, even with the right certificate" "$ANSWER" \
		"error unauthorized: wrong secret"
	expect_closed c
	sleep 0.3 # past the wait after a failure
	tls_open d vm1
	tls_ask d "auth agent backend=vm1 secret=$SECRET"
	expect_eq "the shared secret, backend=vm1" "$ANSWER" ok
	e2e_conn_close d
	wait_log "$E2E_TETHERD_LOG" "auth agent backend=other from 127.0.0.1 refused: its certificate \(CN=vm1\) binds it to backend vm1"
	e2e_ctl backend del other >/dev/null
}

# An agent given another backend's certificate: vm2's agent with vm1's is
# refused when it asks for vm2 (and never registers vm2), and cannot touch
# vm1's containers either: its connection is vm1's, not its own.
test_agent_other_certificate() {
	agent_tls vm2 vm1 --heartbeat-ms 1000
	wait_log "$E2E_LOG_DIR/agent_vm2.log" \
		"auth agent refused: unauthorized: this connection's certificate binds it to backend 'vm1', not 'vm2'"
	sleep 0.5
	expect_eq "backend vm2 at tetherd" "$(backend_state vm2)" ""
	expect_eq "backend vm1 untouched" "$(backend_state vm1)" up
	e2e_agent_stop vm2
	show "$(grep -m1 'auth agent refused' "$E2E_LOG_DIR/agent_vm2.log")"
}

# Certificates tetherd refuses at the handshake, each with its reason in
# tetherd's log; the agent hears it and never registers.
test_certificates_refused() {
	local item cert why label
	local -a cases=(
		"expired|expired|expired certificate"
		"from another CA|foreign|sent no certificate"
		"for TLS servers only|srvonly|does not match the intended purpose"
		"not valid yet|early|not yet valid certificate"
	)
	for item in "${cases[@]}"; do
		IFS='|' read -r label cert why <<<"$item"
		: >"$E2E_LOG_DIR/agent_vm2.log"
		local mark
		mark=$(wc -l <"$E2E_TETHERD_LOG")
		agent_tls vm2 "$cert" --heartbeat-ms 1000
		wait_log "$E2E_LOG_DIR/agent_vm2.log" "the server refused the TLS handshake: Certificate is (bad|required)"
		local refused
		refused=$(tail -n "+$((mark + 1))" "$E2E_TETHERD_LOG" | grep -m1 "TLS connection from" || true)
		echo "#   $label: tetherd: ${refused#tetherd: }"
		expect_contains "$label: tetherd's log" "$refused" "$why"
		expect_eq "$label: backend vm2" "$(backend_state vm2)" ""
		e2e_agent_stop vm2
	done
	show "agent: $(grep -m1 'TLS handshake' "$E2E_LOG_DIR/agent_vm2.log")"
	# A certificate whose CN is no backend name: the connection hears why.
	tls_open n badname
	tls_ask n "list backend"
	expect_eq "a CN that is no backend name" "$ANSWER" \
		"error unauthorized: your certificate's CN names no backend and no operator of this tetherd"
	expect_closed n
	wait_log "$E2E_TETHERD_LOG" "its certificate's CN 'vm 1' is no backend name"
	# No certificate at all.
	tls_open o ""
	tls_ask o "list backend"
	expect_eq "no certificate: no answer" "$ANSWER" ""
	expect_closed o
}

# A tetherd whose certificate names another address: the agent refuses it
# with a clear line, sends nothing (that tetherd hears no auth), and moves
# to the next tetherd of its list, where it registers.
test_tetherd_wrong_name() {
	instance wn 1
	instance_start --tcp-listen "0.0.0.0:$PORT" --tls-cert "$CERTS/wrongname.pem" \
		--tls-key "$CERTS/wrongname-key.pem" --agent-secrets-dir "$SECRETS_DIR"
	# vm3's certificate for the rig's mTLS, and its own secret for the other.
	e2e_agent_start vm3 --tetherd "tcp:203.0.113.33:$PORT,tcp:203.0.113.33:$TCP_PORT" \
		--tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/vm3.pem" --tls-key "$CERTS/vm3-key.pem" \
		--secret-file "$SECRETS_DIR/vm3" --function "$FUNCTION:1" --cold-start-ms 50
	e2e_agent_wait_warm vm3 1
	local moved
	moved=$(grep -m1 "moving from tcp:203.0.113.33:$PORT" "$E2E_LOG_DIR/agent_vm3.log" || true)
	show "$moved"
	expect_contains "the agent's line" "$moved" "TLS handshake failed, nothing sent: the server's certificate (its subject: CN=wrongname) is refused"
	expect_contains "the agent's line" "$moved" "The name in the certificate does not match the expected"
	! grep -q "auth agent" "$LOG" || fail "the wrong tetherd heard an auth: $(grep 'auth agent' "$LOG")"
	expect_eq "backends at the wrong tetherd" \
		"$("$E2E_TETHERCTL" --socket "$SOCK" --json backend list | jq length)" 0
	show "$(grep -m1 'TLS connection from' "$LOG")"
	expect_eq "vm3 at the right one" "$(backend_state vm3)" up
	e2e_agent_stop vm3
}

# Per-backend secrets still work over TLS: a tetherd with TLS but no client
# CA takes vm3's own secret (bound to vm3, nothing else), and refuses a
# wrong one; on the rig's mTLS listener an operator's certificate may bind
# itself to a backend with that backend's secret.
test_secrets_over_tls() {
	instance st 2
	instance_start --tcp-listen "0.0.0.0:$PORT" --tls-cert "$CERTS/tetherd.pem" \
		--tls-key "$CERTS/tetherd-key.pem" --agent-secrets-dir "$SECRETS_DIR"
	e2e_conn_open s "$(tls_address "$PORT" "")"
	tls_ask s "list backend"
	expect_contains "before auth, without a client certificate" "$ANSWER" "error unauthorized"
	tls_ask s "auth agent backend=vm3 secret=$(<"$SECRETS_DIR/vm3")"
	expect_eq "vm3's own secret over TLS" "$ANSWER" ok
	tls_ask s "add backend name=vm2 addr=203.0.113.18 mac=02:00:00:00:00:02 iface=$IFACE"
	expect_contains "vm3's connection adding vm2" "$ANSWER" "bound to backend 'vm3'"
	e2e_conn_close s
	e2e_conn_open w "$(tls_address "$PORT" "")"
	tls_ask w "auth agent backend=vm3 secret=not-the-secret-0123456789"
	expect_eq "a wrong secret" "$ANSWER" "error unauthorized: wrong secret"
	expect_closed w
	# The VM agent itself, TLS to tetherd and its own secret.
	sleep 0.3
	e2e_agent_start vm3 --tetherd "tcp:203.0.113.33:$PORT" --tls-ca "$CERTS/ca.pem" \
		--secret-file "$SECRETS_DIR/vm3" --router-iface "$IFACE"
	local i state=""
	for ((i = 0; i < 50; i++)); do
		state=$("$E2E_TETHERCTL" --socket "$SOCK" --json backend list |
			jq -r '.[] | select(.backend == "vm3") | .state')
		[[ $state == up ]] && break
		sleep 0.1
	done
	expect_eq "vm3 registered by its agent (TLS, its own secret)" "$state" up
	e2e_agent_stop vm3
	# mTLS: an operator's certificate narrows itself to vm1 with vm1's secret... or none.
	tls_open p ops
	tls_ask p "auth agent backend=vm3 secret=$(<"$SECRETS_DIR/vm3")"
	expect_eq "an operator's certificate, backend=vm3 and its secret" "$ANSWER" ok
	expect_unauthorized p "show stats"
	e2e_conn_close p
}

# An operator's certificate (--tls-operator ops): any backend, every request
# but unload, without a secret.
test_operator_certificate() {
	tls_open o ops
	tls_ask o "list backend"
	expect_eq "list backend" "$ANSWER" ok
	tls_ask o "show stats"
	expect_eq "show stats" "$ANSWER" ok
	tls_ask o "list function"
	expect_eq "list function" "$ANSWER" ok
	expect_unauthorized o "unload tetherd"
	tls_ask o "auth agent"
	expect_eq "auth agent, no secret, no backend" "$ANSWER" ok
	e2e_conn_close o
	e2e_alive "$(e2e_tetherd_pid)" || fail "tetherd exited"
}

# Plain TCP only when asked for: --tcp-listen without TLS refuses to start
# and says how; --tcp-plain starts with a warning in the log; an agent
# refuses a tcp: endpoint without --tls-ca or --tcp-plain, and warns with
# --tcp-plain; plain text to the TLS listener is refused.
test_plain_only_when_asked() {
	local out status=0
	instance pl 3
	out=$(e2e_tetherd_try --iface "$IFACE" --vip "198.51.100.31:$E2E_PORT" --pin-root "$PIN" \
		--socket "$SOCK" --tcp-listen "127.0.0.1:$PORT" --agent-secrets-dir "$SECRETS_DIR") ||
		status=$?
	echo "#   no TLS, no --tcp-plain: exit $status: $(head -n1 <<<"$out")"
	((status != 0 && status != 124)) || fail "tetherd started without TLS or --tcp-plain"
	expect_contains "the refusal" "$out" "needs TLS: --tls-cert and --tls-key"
	[[ ! -e $PIN ]] || fail "a refused start made $PIN"
	instance_start --tcp-listen "0.0.0.0:$PORT" --tcp-plain --agent-secrets-dir "$SECRETS_DIR"
	local warning
	warning=$(grep -m1 "warning: the TCP listener" "$LOG" || true)
	show "$warning"
	expect_contains "the warning" "$warning" "does not use TLS: secrets and requests cross the network in clear"
	e2e_conn_open q "TCP:127.0.0.1:$PORT"
	tls_ask q "auth agent backend=vm3 secret=$(<"$SECRETS_DIR/vm3")"
	expect_eq "plain TCP with --tcp-plain" "$ANSWER" ok
	e2e_conn_close q

	status=0
	out=$(ip netns exec "$E2E_NS_VM3" timeout 5 "$E2E_AGENT" --name vm3 --addr 203.0.113.34 \
		--mac 02:00:00:00:00:03 --router-iface x --vip "$E2E_VIP4:$E2E_PORT" \
		--tetherd "tcp:203.0.113.33:$PORT" --secret-file "$SECRETS_DIR/vm3" 2>&1) || status=$?
	echo "#   agent, tcp: without --tls-ca or --tcp-plain: exit $status: $out"
	expect_eq "its exit status" "$status" 2
	expect_contains "its refusal" "$out" "give --tls-ca"
	e2e_agent_start vm3 --tetherd "tcp:203.0.113.33:$PORT" --tcp-plain \
		--secret-file "$SECRETS_DIR/vm3" --router-iface "$IFACE"
	wait_log "$E2E_LOG_DIR/agent_vm3.log" "warning: --tcp-plain: the secret and every request to tetherd cross the network in clear"
	wait_log "$E2E_LOG_DIR/agent_vm3.log" "backend vm3 registered"
	e2e_agent_stop vm3

	# Plain text to the rig's TLS listener.
	e2e_conn_open t "TCP:127.0.0.1:$TCP_PORT"
	tls_ask t "auth agent secret=$SECRET"
	[[ $ANSWER != ok && $ANSWER != error* ]] ||
		fail "plain text to the TLS listener was answered: $ANSWER"
	expect_closed t
	wait_log "$E2E_TETHERD_LOG" "TLS connection from 127.0.0.1 refused: the client does not speak TLS"
}

# SIGHUP: a new certificate (same key, new serial) and a CA bundle that now
# also holds another CA. The agents' connections stay (the same TCP
# connections, no reconnect, heartbeats go on); new connections get the new
# certificate, and a certificate of the other CA is taken. Then a broken
# certificate file: the log says so and the last good files stay in use.
test_rotation() {
	local before after serial_before serial_file serial_now bad
	agent_tls vm2 vm2 --heartbeat-ms 1000 --function "$FUNCTION:1"
	e2e_agent_wait_warm vm2 1
	local marks=()
	marks+=("$(wc -l <"$E2E_LOG_DIR/agent_vm1.log")" "$(wc -l <"$E2E_LOG_DIR/agent_vm2.log")")
	before="$(connections_from 203.0.113.2)
$(connections_from 203.0.113.18)"
	serial_before=$(served_serial "$TCP_PORT")
	echo "#   before: serial $serial_before; the agents' connections:"
	show "$before"
	[[ $(wc -l <<<"$before") -eq 4 ]] || fail "expected 2 connections from each of vm1 and vm2"

	cp "$CERTS/tetherd.pem" "$CERTS/tetherd.pem.old"
	cp "$CERTS/ca.pem" "$CERTS/ca.pem.old"
	"$E2E_REPO/tools/test-certs.sh" rekey "$CERTS" tetherd ca
	cat "$CERTS/ca.pem.old" "$CERTS/other-ca.pem" >"$CERTS/ca.pem"
	serial_file=$(file_serial "$CERTS/tetherd.pem")
	kill -HUP "$(e2e_tetherd_pid)"
	wait_log "$E2E_TETHERD_LOG" "SIGHUP: TLS files reloaded: new connections get the certificate subject CN=tetherd, serial $serial_file"
	show "$(grep 'SIGHUP' "$E2E_TETHERD_LOG" | tail -n1)"
	serial_now=$(served_serial "$TCP_PORT")
	echo "#   after SIGHUP: a new connection gets serial $serial_now (the file's: $serial_file)"
	expect_eq "the new connection's certificate" "$serial_now" "$serial_file"
	[[ $serial_now != "$serial_before" ]] || fail "the serial did not change"
	# A certificate of the CA just added.
	tls_open f foreign
	tls_ask f "list backend"
	expect_eq "CN=vm1 from the CA added by SIGHUP" "$ANSWER" ok
	e2e_conn_close f

	sleep 1.5 # several heartbeats
	after="$(connections_from 203.0.113.2)
$(connections_from 203.0.113.18)"
	[[ $after == "$before" ]] || fail "the agents' connections changed:
$(diff <(echo "$before") <(echo "$after") | sed 's/^/#     /')"
	local name i=0 since
	for name in vm1 vm2; do
		expect_eq "backend $name" "$(backend_state "$name")" up
		since=$(tail -n "+$((marks[i] + 1))" "$E2E_LOG_DIR/agent_$name.log")
		i=$((i + 1))
		! grep -Eq "retrying|moving|closed|connected" <<<"$since" ||
			fail "$name's agent reconnected: $(grep -E 'retrying|moving|closed|connected' <<<"$since")"
	done
	echo "#   the agents' 4 connections are the same after SIGHUP; vm1 and vm2 up"

	# A broken file: refused, the files in use stay.
	printf 'not a certificate\n' >"$CERTS/tetherd.pem"
	kill -HUP "$(e2e_tetherd_pid)"
	wait_log "$E2E_TETHERD_LOG" "SIGHUP: the TLS files were not reloaded, the ones in use stay"
	bad=$(grep 'were not reloaded' "$E2E_TETHERD_LOG" | tail -n1)
	show "$bad"
	expect_eq "a new connection's certificate after the broken reload" \
		"$(served_serial "$TCP_PORT")" "$serial_file"
	tls_open g vm1
	tls_ask g "list backend"
	expect_eq "a new connection after the broken reload" "$ANSWER" ok
	e2e_conn_close g
	e2e_agent_stop vm2
	# Back to the first files.
	mv "$CERTS/tetherd.pem.old" "$CERTS/tetherd.pem"
	mv "$CERTS/ca.pem.old" "$CERTS/ca.pem"
	kill -HUP "$(e2e_tetherd_pid)"
	wait_log "$E2E_TETHERD_LOG" "SIGHUP: TLS files reloaded: .*serial $serial_before, valid until"
}

# The Unix socket is as it was: no TLS, peer credentials, full access.
test_unix_socket() {
	local answer
	answer=$(printf 'show stats\n' | socat -t2 - "UNIX-CONNECT:$E2E_SOCKET" | head -n1)
	expect_eq "show stats on the Unix socket" "$answer" ok
	expect_eq "tetherctl backend list" "$(e2e_ctl --json backend list | jq -r '.[0].backend')" vm1
}

# A client that connects and never finishes a handshake is closed after 10 s.
test_handshake_timeout() {
	local t0 ms
	e2e_conn_open h "TCP:127.0.0.1:$TCP_PORT"
	t0=${EPOCHREALTIME/./}
	local i
	for ((i = 0; i < 130; i++)); do
		e2e_alive "$(<"$E2E_LOG_DIR/conn-h/pid")" || break
		sleep 0.1
	done
	ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	echo "#   closed after $ms ms"
	e2e_alive "$(<"$E2E_LOG_DIR/conn-h/pid")" && fail "still open after 13 s"
	expect_ge "ms until closed" "$ms" 9500
	wait_log "$E2E_TETHERD_LOG" "closed: no handshake within 10 s"
}

TESTS=(agent_mtls certificate_binds agent_other_certificate certificates_refused
	tetherd_wrong_name secrets_over_tls operator_certificate allowed_functions
	plain_only_when_asked rotation unix_socket handshake_timeout)

# The operator's allow-list holds an agent its certificate binds as it holds
# one bound by a secret (test_tetherd.sh allowed_functions): vm3's agent
# (CN=vm3) adding, or bringing up, a container of a function vm3 may not
# hold is refused and nothing changes; within the list it works.
test_allowed_functions() {
	local mac mine theirs before after other=$((FUNCTION + 1))
	mac=$(e2e_mac "$E2E_NS_VM3" "$E2E_IF_V3")
	tls_open o ops
	tls_ask o "set backend name=vm3 functions=$FUNCTION"
	expect_eq "the operator's certificate sets vm3's functions" "$ANSWER" ok
	tls_open m vm3
	tls_ask m "add backend name=vm3 addr=203.0.113.34 mac=$mac iface=$E2E_IF_R3 heartbeat_ms=3600000"
	expect_eq "vm3 registers by its certificate" "$ANSWER" ok
	expect_contains "vm3's record" "$ANSWER_ALL" "functions=$FUNCTION"
	tls_ask m "add container function=$FUNCTION backend=vm3 state=starting"
	expect_eq "vm3 adds a container of function $FUNCTION" "$ANSWER" ok
	mine=$(sed -n 's/^container=\([0-9]*\) .*/\1/p' <<<"$ANSWER_ALL")
	tls_ask m "up container container=$mine"
	expect_eq "vm3 brings it up" "$ANSWER" ok
	# A container of another function on vm3, added by the operator.
	tls_ask o "add container function=$other backend=vm3 state=starting"
	expect_eq "the operator adds function $other on vm3" "$ANSWER" ok
	theirs=$(sed -n 's/^container=\([0-9]*\) .*/\1/p' <<<"$ANSWER_ALL")
	before=$(e2e_ctl --json container list)
	tls_ask m "add container function=$other backend=vm3 state=warm"
	expect_eq "vm3 adds a container of function $other" "$ANSWER" \
		"error unauthorized: backend 'vm3' may hold functions $FUNCTION, not $other (the operator sets them: tetherctl backend set vm3 --functions ...)"
	tls_ask m "up container container=$theirs"
	expect_contains "vm3 wakes the operator's container of function $other" "$ANSWER" \
		"error unauthorized: backend 'vm3' may hold functions $FUNCTION, not $other"
	expect_unauthorized m "set backend name=vm3 functions=any"
	after=$(e2e_ctl --json container list)
	[[ $after == "$before" ]] || fail "a refusal changed the containers:
$(diff <(echo "$before") <(echo "$after") | sed 's/^/#     /')"
	tls_ask m "del backend name=vm3"
	expect_eq "vm3 removes itself" "$ANSWER" ok
	tls_ask o "set backend name=vm3 functions=any"
	e2e_conn_close m
	e2e_conn_close o
}

make_certs() {
	local t=$E2E_REPO/tools/test-certs.sh
	"$t" ca "$CERTS" ca
	"$t" ca "$CERTS" other-ca
	"$t" server "$CERTS" ca tetherd 127.0.0.1 203.0.113.1 203.0.113.17 203.0.113.33
	"$t" server "$CERTS" ca wrongname 192.0.2.99 tetherd.example
	local name
	for name in vm1 vm2 vm3 ops; do
		"$t" client "$CERTS" ca "$name" "$name"
	done
	"$t" client "$CERTS" ca expired vm2 --expired
	"$t" client "$CERTS" ca early vm2 --not-yet
	"$t" client "$CERTS" other-ca foreign vm2
	"$t" client "$CERTS" ca srvonly vm2 --server-only
	"$t" client "$CERTS" ca badname "vm 1"
}

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	command -v certtool >/dev/null || e2e_die "certtool is not installed (make deps: gnutls-bin)"
	command -v gnutls-cli >/dev/null || e2e_die "gnutls-cli is not installed (make deps: gnutls-bin)"
	e2e_init
	CERTS=$E2E_LOG_DIR/certs
	make_certs
	TCP_PORT=$(e2e_random_port 4)
	SECRET=$(random_secret)
	SECRET_FILE=$E2E_LOG_DIR/tcp.secret
	(umask 077 && printf '%s\n' "$SECRET" >"$SECRET_FILE")
	SECRETS_DIR=$E2E_LOG_DIR/agents
	mkdir -m 700 "$SECRETS_DIR"
	(umask 077 && random_secret >"$SECRETS_DIR/vm3" && random_secret >"$SECRETS_DIR/other")
	OTHER_SECRET=$(<"$SECRETS_DIR/other")
	e2e_topology --vms 3
	e2e_tetherd_start --tcp-listen "0.0.0.0:$TCP_PORT" --tls-cert "$CERTS/tetherd.pem" \
		--tls-key "$CERTS/tetherd-key.pem" --tls-client-ca "$CERTS/ca.pem" --tls-operator ops \
		--tcp-secret-file "$SECRET_FILE" --agent-secrets-dir "$SECRETS_DIR"
	if [[ " ${selected[*]} " != *" agent_mtls "* ]]; then
		agent_tls vm1 vm1 --function "$FUNCTION:1"
		e2e_agent_wait_warm vm1 1
	fi
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
