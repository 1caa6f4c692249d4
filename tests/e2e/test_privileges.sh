#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Least privilege (user/tetherd/privileges.h): once started, tetherd keeps
# CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW and nothing else, in every set, and
# what it does after that still works. On the rig of tests/e2e/lib.sh:
#
#   capabilities   /proc/PID/status of the running tetherd: CapEff, CapPrm and
#                  CapBnd hold exactly the kept set, CapInh and CapAmb nothing,
#                  NoNewPrivs is set; the log names the kept set.
#   after_drop     control requests that write maps (backends, containers, new
#                  pool tables), fast-path traffic, a held request forwarded by
#                  the slow path (AF_PACKET), and the slow path's placement: a
#                  key it places lands where the fast path puts it (it reads
#                  the pool table through the fd tetherd kept; by map id that
#                  would need CAP_SYS_ADMIN); the maps check out (check_pins).
#   restart        kill -9 and a new tetherd: it adopts, replaces the program
#                  in the pinned link, drops its privileges again; then
#                  `tetherctl unload` detaches, removes the pins and the VIPs.
#   user           tetherd --user U (a user the test makes, and removes),
#                  started as dist/tetherd.service starts it (root with the
#                  unit's CapabilityBoundingSet only): it runs as U (uid, gid, groups; root's way back closed) with
#                  the same capabilities; its group may use the pins; as U it
#                  serves lifecycle changes, routes traffic, forwards held
#                  requests (AF_PACKET), places keys like the fast path, reads
#                  per-backend agent secrets (U's own files, changed while it
#                  runs); after kill -9 the next tetherd (root) adopts U's
#                  pins and becomes U again; `tetherctl unload` as U
#                  detaches, removes the pins and takes the VIPs off lo.
#   user_refused   --user of no such user, or one that may not read the
#                  agent secrets: refused at start, with the reason, nothing
#                  made.
#
#   tests/e2e/test_privileges.sh [TEST...]
#
# TAP output, then "N passed, M failed" alone on the last line. Run as root.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_BPF (39)
KEPT_MASK=0000008000003000
KEPT_NAMES="cap_bpf cap_net_admin cap_net_raw"

# The capability lines of a running process, as "CapEff=... " words.
caps_of() {
	awk '/^Cap|^NoNewPrivs/ { sub(":", "", $1); printf "%s=%s ", $1, $2 }' "/proc/$1/status"
}

expect_dropped() {
	local pid=$1 status
	status=$(caps_of "$pid")
	echo "#   tetherd $pid: $status"
	expect_eq "CapEff" "$(grep -o 'CapEff=[0-9a-f]*' <<<"$status")" "CapEff=$KEPT_MASK"
	expect_eq "CapPrm" "$(grep -o 'CapPrm=[0-9a-f]*' <<<"$status")" "CapPrm=$KEPT_MASK"
	expect_eq "CapBnd" "$(grep -o 'CapBnd=[0-9a-f]*' <<<"$status")" "CapBnd=$KEPT_MASK"
	expect_eq "CapInh" "$(grep -o 'CapInh=[0-9a-f]*' <<<"$status")" "CapInh=0000000000000000"
	expect_eq "CapAmb" "$(grep -o 'CapAmb=[0-9a-f]*' <<<"$status")" "CapAmb=0000000000000000"
	expect_eq "NoNewPrivs" "$(grep -o 'NoNewPrivs=[0-9]*' <<<"$status")" "NoNewPrivs=1"
}

test_capabilities() {
	expect_dropped "$(e2e_tetherd_pid)"
	expect_eq "the log's kept set" \
		"$(grep -o 'capabilities kept: [a-z_ ]*' "$E2E_TETHERD_LOG" | tail -n1)" \
		"capabilities kept: $KEPT_NAMES "
}

# What tetherd does after the drop, with functions BASE+1..BASE+3 and keys
# (BASE+1)00.. and (BASE+3)00..: fast-path traffic to two containers added
# now (new pool tables), a held request forwarded by the slow path, keys the
# slow path places where the fast path does; the pins check out. Leaves 7
# containers.
exercise_after_drop() {
	local base=$1 out held=$E2E_LOG_DIR/held.load k fast slow same=0 check
	local f1=$((base + 1)) f2=$((base + 2)) f3=$((base + 3))
	e2e_ctl container add --function "$f1" --backend vm1 --warm >/dev/null
	e2e_ctl container add --function "$f1" --backend vm2 --warm >/dev/null
	out=$(e2e_load --function "$f1" --count 100 --sessions 10 --key "${f1}00" --rate 2000)
	echo "#   fast path: $(cut -d' ' -f1-5 <<<"$out")"
	expect_eq "fast path: ok" "$(e2e_field "$out" ok)" 100
	expect_eq "fast path: requests the slow path saw" \
		"$(e2e_ctl --json stats | jq '.[] | select(.part == "slowpath") | .received')" 0

	# a request held for capacity, then forwarded by the slow path (AF_PACKET)
	e2e_load_bg "$held" --function "$f2" --count 1 --timeout-ms 3000
	for ((k = 0; k < 100; k++)); do
		(($(e2e_ctl --json stats | jq '.[] | select(.part == "slowpath") | .held') > 0)) && break
		sleep 0.02
	done
	e2e_ctl container add --function "$f2" --backend vm2 --warm >/dev/null
	e2e_load_wait "$held" >/dev/null
	out=$(cat "$held")
	echo "#   held request: $(cut -d' ' -f1-5 <<<"$out")"
	expect_eq "held request answered OK" "$(e2e_field "$out" ok)" 1
	expect_eq "slow path send_errors" \
		"$(e2e_ctl --json stats | jq '.[] | select(.part == "slowpath") | .send_errors')" 0

	# placement: the slow path (a request from the router itself, which no
	# XDP program sees) puts a key where the fast path does
	for i in 1 2 3 4; do
		e2e_ctl container add --function "$f3" --backend "vm$((1 + i % 2))" --warm >/dev/null
	done
	for k in $(seq "${f3}00" "${f3}15"); do
		e2e_load --function "$f3" --count 1 --key "$k" >/dev/null
		fast=$(e2e_ctl --json affinity show --function "$f3" --key "$k" | jq .container)
		e2e_ctl affinity flush --function "$f3" --key "$k" >/dev/null
		e2e_in_router "$E2E_LOAD" --vip "$E2E_VIP4:$E2E_PORT" --function "$f3" --count 1 \
			--key "$k" --timeout-ms 100 >/dev/null
		slow=$(e2e_ctl --json affinity show --function "$f3" --key "$k" 2>/dev/null | jq .container)
		[[ $fast == "$slow" ]] && same=$((same + 1))
	done
	echo "#   16 keys placed by the slow path: $same where the fast path puts them"
	expect_eq "keys the slow path places as the fast path does" "$same" 16
	check=$(e2e_check_pins) || fail "pins: $check"
	echo "#   $check"
}

test_after_drop() {
	exercise_after_drop 50
}

test_restart() {
	local pid old_prog new_prog
	old_prog=$(e2e_xdp_prog_id "$E2E_IF_RC")
	e2e_tetherd_stop KILL
	e2e_tetherd_start
	pid=$(e2e_tetherd_pid)
	new_prog=$(e2e_xdp_prog_id "$E2E_IF_RC")
	echo "#   restarted: program $old_prog -> $new_prog, $(grep -c 'adopted the maps' "$E2E_TETHERD_LOG") adoption"
	[[ -n $new_prog && $new_prog != "$old_prog" ]] || fail "the program was not replaced ($old_prog -> $new_prog)"
	expect_dropped "$pid"
	expect_eq "containers after the restart" "$(e2e_ctl --json container list | jq length)" 7
	e2e_ctl unload >/dev/null
	e2e_wait_gone "$pid" 50 || fail "tetherd ($pid) still runs 5 s after unload"
	rm -f "$E2E_RUN_DIR/tetherd.pid"
	[[ ! -e $E2E_PIN_ROOT ]] || fail "the pin root is left: $(ls "$E2E_PIN_ROOT")"
	expect_eq "XDP program on $E2E_IF_RC after unload" "$(e2e_xdp_prog_id "$E2E_IF_RC")" ""
	grep -q "unload of .* incomplete" "$E2E_TETHERD_LOG" && fail "unload incomplete: $(tail -n2 "$E2E_TETHERD_LOG")"
	# a fresh tetherd adds the VIPs itself, and takes them off when it stops
	ip -n "$E2E_NS_ROUTER" addr del "$E2E_VIP4/32" dev lo 2>/dev/null || true
	ip -n "$E2E_NS_ROUTER" addr del "$E2E_VIP6/128" dev lo 2>/dev/null || true
	e2e_tetherd_start
	expect_dropped "$(e2e_tetherd_pid)"
	e2e_ctl unload >/dev/null
	e2e_wait_gone "$(e2e_tetherd_pid)" 50 || fail "tetherd still runs after unload"
	rm -f "$E2E_RUN_DIR/tetherd.pid"
	expect_eq "VIPs on the router's lo after unload" \
		"$(ip -n "$E2E_NS_ROUTER" -j addr show dev lo | jq -r --arg a "$E2E_VIP4" --arg b "$E2E_VIP6" \
			'[.[0].addr_info[] | select(.local == $a or .local == $b)] | length')" 0
	echo "#   unload with the kept set: link detached, pins and VIPs removed"
}

# --- tetherd --user ---------------------------------------------------------------

# 16 random hex digits: the shortest secret tetherd takes.
random_secret() {
	head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# The ids line of a running process ("Uid:", "Gid:"), as "A B C D".
ids_of() {
	awk -v key="$2:" '$1 == key { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"
}

# Checks tetherd PID runs as TEST_USER: every uid and gid, its groups (as
# initgroups makes them), the same capabilities as root's tetherd keeps.
expect_user() {
	local pid=$1 uid gid
	uid=$(id -u "$TEST_USER")
	gid=$(id -g "$TEST_USER")
	echo "#   tetherd $pid: Uid $(ids_of "$pid" Uid), Gid $(ids_of "$pid" Gid), Groups $(ids_of "$pid" Groups)"
	expect_eq "Uid (real, effective, saved, fs)" "$(ids_of "$pid" Uid)" "$uid $uid $uid $uid"
	expect_eq "Gid (real, effective, saved, fs)" "$(ids_of "$pid" Gid)" "$gid $gid $gid $gid"
	expect_eq "Groups" "$(ids_of "$pid" Groups | tr ' ' '\n' | sed '/^$/d' | sort -n | tr '\n' ' ')" \
		"$(id -G "$TEST_USER" | tr ' ' '\n' | sort -n | tr '\n' ' ')"
	expect_dropped "$pid"
	grep -q "running as user $TEST_USER (uid $uid, gid $gid)" "$E2E_TETHERD_LOG" ||
		fail "the log does not say tetherd runs as $TEST_USER: $(tail -n4 "$E2E_TETHERD_LOG")"
}

# The pin root and every pin: owner root, group TEST_USER's, rw for both.
expect_pins_shared() {
	local bad
	expect_eq "the pin root: owner, group, mode" "$(stat -c '%U %G %a' "$E2E_PIN_ROOT")" \
		"root $TEST_USER 770"
	bad=$(find "$E2E_PIN_ROOT" -mindepth 1 \( ! -user root -o ! -group "$TEST_USER" -o ! -perm 660 \) \
		-printf '%f %u:%g %m, ')
	[[ -z $bad ]] || fail "pins not root:$TEST_USER 0660: $bad"
}

# Authenticates connection NAME with backend vm1's own secret SECRET on the
# instance's TCP listener, then heartbeats vm1 through it; prints what came.
heartbeat_with_secret() {
	local name=$1 secret=$2 out
	e2e_conn_open "$name" "TCP:127.0.0.1:$TCP_PORT"
	e2e_conn_send "$name" "auth agent backend=vm1 secret=$secret"
	out=$(e2e_conn_answer "$name" | head -n1) || true
	if [[ $out == ok ]]; then
		e2e_conn_send "$name" "heartbeat backend name=vm1"
		out+=", $(e2e_conn_answer "$name" | head -n1)" || true
	fi
	e2e_conn_close "$name"
	echo "$out"
}

# Backends vm1 and vm2, whatever ran before (a tetherd that unloaded has none).
ensure_backends() {
	local vm
	for vm in vm1 vm2; do
		e2e_ctl --json backend list | jq -e --arg n "$vm" 'any(.[]; .backend == $n)' >/dev/null ||
			e2e_backend_add "$vm" --heartbeat-ms 1h >/dev/null
	done
}

# A starting container of function F on vm1 goes up, drains, reports idle
# and is gone; another is deleted: the lifecycle as tetherd's user.
exercise_lifecycle() {
	local function=$1 h step
	h=$(e2e_ctl --json container add --function "$function" --backend vm1 | jq -er '.container')
	for step in up drain idle; do
		e2e_ctl container "$step" "$h" >/dev/null || fail "tetherctl container $step $h refused"
	done
	! e2e_ctl --json container list --function "$function" | jq -e 'any(.[]; .container == '"$h"')' \
		>/dev/null || fail "container $h is still listed after idle"
	h=$(e2e_ctl --json container add --function "$function" --backend vm2 --warm | jq -er '.container')
	e2e_ctl container del "$h" >/dev/null || fail "tetherctl container del $h refused"
	echo "#   function $function: add, up, drain, idle on vm1; add --warm, del on vm2"
}

# Writes a wrapper that starts tetherd as dist/tetherd.service does: root
# with the unit's CapabilityBoundingSet only. Prints its path.
unit_tetherd() {
	local caps wrapper=$E2E_LOG_DIR/tetherd-as-the-unit
	caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$E2E_REPO/dist/tetherd.service" |
		tr 'A-Z ' 'a-z,' | sed 's/cap_/+/g')
	[[ -n $caps ]] || fail "no CapabilityBoundingSet= in dist/tetherd.service"
	printf '#!/bin/sh\nexec setpriv --bounding-set=-all,%s --inh-caps=-all %s "$@"\n' \
		"$caps" "$E2E_TETHERD" >"$wrapper"
	chmod 700 "$wrapper"
	echo "$wrapper"
}

test_user() {
	local pid secrets=$E2E_LOG_DIR/user-secrets secret rotated out containers
	secret=$(random_secret)
	rotated=$(random_secret)
	# The per-backend secrets are the user's own files; the directory above
	# them ($E2E_LOG_DIR, root's, 0700) is not open to it.
	mkdir -m 700 "$secrets"
	(umask 077 && printf '%s\n' "$secret" >"$secrets/vm1")
	chown -R "$TEST_USER:" "$secrets"
	e2e_tetherd_stop TERM # root's tetherd, if one runs: this one adopts its pins
	E2E_TETHERD=$(unit_tetherd)
	echo "#   tetherd started as the unit starts it: $(tail -n1 "$E2E_TETHERD" | cut -d' ' -f2-3)"
	e2e_tetherd_start --user "$TEST_USER" --tcp-listen "127.0.0.1:$TCP_PORT" --tcp-plain \
		--agent-secrets-dir "$secrets"
	pid=$(e2e_tetherd_pid)
	expect_user "$pid"
	expect_pins_shared
	ensure_backends

	exercise_lifecycle 70
	exercise_after_drop 80
	out=$(heartbeat_with_secret u1 "$secret")
	echo "#   vm1's own secret, read by tetherd as $TEST_USER: $out"
	expect_eq "auth and heartbeat with vm1's secret" "$out" "ok, ok"
	printf '%s\n' "$rotated" >"$secrets/vm1"
	out=$(heartbeat_with_secret u2 "$rotated")
	echo "#   vm1's new secret, written while tetherd runs: $out"
	expect_eq "auth and heartbeat with vm1's new secret" "$out" "ok, ok"

	# kill -9: the next tetherd starts as root, adopts the user's pins and
	# becomes the user again. It takes off lo only the VIPs it put there:
	# remove them, so that the unload below does it, as the user.
	containers=$(e2e_ctl --json container list | jq length)
	e2e_tetherd_stop KILL
	ip -n "$E2E_NS_ROUTER" addr del "$E2E_VIP4/32" dev lo 2>/dev/null || true
	ip -n "$E2E_NS_ROUTER" addr del "$E2E_VIP6/128" dev lo 2>/dev/null || true
	e2e_tetherd_start
	pid=$(e2e_tetherd_pid)
	expect_eq "containers after the restart" "$(e2e_ctl --json container list | jq length)" \
		"$containers"
	expect_user "$pid"
	expect_pins_shared
	exercise_lifecycle 71

	# unload as the user: the link detached, the pins removed, the VIPs off lo
	e2e_ctl unload >/dev/null
	e2e_wait_gone "$pid" 50 || fail "tetherd ($pid) still runs 5 s after unload"
	rm -f "$E2E_RUN_DIR/tetherd.pid"
	! grep -q "unload of .* incomplete" "$E2E_TETHERD_LOG" ||
		fail "unload incomplete: $(grep 'unload of' "$E2E_TETHERD_LOG" | tail -n1)"
	[[ ! -e $E2E_PIN_ROOT || -z $(ls -A "$E2E_PIN_ROOT") ]] ||
		fail "pins left after unload: $(ls "$E2E_PIN_ROOT")"
	expect_eq "XDP program on $E2E_IF_RC after unload" "$(e2e_xdp_prog_id "$E2E_IF_RC")" ""
	expect_eq "VIPs on the router's lo after unload" \
		"$(ip -n "$E2E_NS_ROUTER" -j addr show dev lo | jq -r --arg a "$E2E_VIP4" --arg b "$E2E_VIP6" \
			'[.[0].addr_info[] | select(.local == $a or .local == $b)] | length')" 0
	echo "#   unload as $TEST_USER: link detached, pins removed ($(grep -o 'the pin root .* stays, empty' \
		"$E2E_TETHERD_LOG" | tail -n1 || echo "pin root removed")), VIPs off lo"
	rm -rf "$E2E_PIN_ROOT"
}

# Runs tetherd with OPTIONS on a pin root and socket of its own, expecting a
# refusal that names WHAT; checks nothing was made.
expect_refused_start() {
	local what=$1 out status=0 pin=$E2E_PIN_ROOT-ur sock=$E2E_RUN_DIR/ur.sock
	shift
	out=$(e2e_tetherd_try --iface "$E2E_IF_RC" --vip "198.51.100.21:$E2E_PORT" --pin-root "$pin" \
		--socket "$sock" "$@") || status=$?
	echo "#   exit $status: $(head -n1 <<<"$out")"
	((status != 0 && status != 124)) || fail "exit status $status"
	[[ $(head -n1 <<<"$out") == *"$what"* ]] || fail "the message does not say '$what': $out"
	if [[ -e $pin ]]; then
		"$E2E_TETHERD" --unload --pin-root "$pin" >/dev/null 2>&1 || true
		rm -rf "$pin"
		fail "the pin root $pin was made"
	fi
	[[ ! -e $sock ]] || fail "the socket $sock was made"
}

test_user_refused() {
	local secrets=$E2E_LOG_DIR/refused-secrets
	expect_refused_start "no user named 'no-such-user-$E2E_ID' for --user" \
		--user "no-such-user-$E2E_ID"
	# Secrets root owns: the user tetherd will run as could not read them.
	mkdir -m 700 "$secrets"
	(umask 077 && random_secret >"$secrets/vm1")
	expect_refused_start "belongs to uid 0, but tetherd reads its secrets as uid $(id -u "$TEST_USER")" \
		--user "$TEST_USER" --tcp-listen "127.0.0.1:$((TCP_PORT + 1))" --tcp-plain \
		--agent-secrets-dir "$secrets"
}

TESTS=(capabilities after_drop restart user user_refused)

# lib.sh's cleanup (which stops a tetherd that may run as the test's user),
# then the user; the summary stays the last line.
suite_cleanup() {
	local status=$?
	trap - EXIT
	(
		(exit "$status")
		e2e_cleanup
	) || true
	if [[ -n ${TEST_USER:-} ]] && getent passwd "$TEST_USER" >/dev/null; then
		userdel "$TEST_USER" 2>/dev/null || echo "# could not remove the user $TEST_USER" >&2
	fi
	[[ -z ${TEST_USER:-} ]] || ! getent group "$TEST_USER" >/dev/null ||
		groupdel "$TEST_USER" 2>/dev/null || true
	[[ -z ${SUMMARY:-} ]] || echo "$SUMMARY"
	exit "$status"
}

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	e2e_init
	trap suite_cleanup EXIT
	[[ -x $E2E_BUILD/tools/check_pins ]] || e2e_die "$E2E_BUILD/tools/check_pins is missing: run 'make' first"
	command -v useradd >/dev/null || e2e_die "'useradd' is not installed"
	# A system user of the run's own, with a group of its own, for --user.
	TEST_USER=${E2E_ID}u
	useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$TEST_USER"
	TCP_PORT=$(e2e_random_port 2)
	e2e_topology
	e2e_tetherd_start
	e2e_backend_start vm1
	e2e_backend_start vm2
	e2e_backend_add vm1 --heartbeat-ms 1h >/dev/null
	e2e_backend_add vm2 --heartbeat-ms 1h >/dev/null
	run_tests "${selected[@]}"
	SUMMARY="$passed passed, $failed failed" # printed last, by suite_cleanup
	((failed == 0))
}

main "$@"
