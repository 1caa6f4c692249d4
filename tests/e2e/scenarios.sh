# SPDX-License-Identifier: MIT
# The scenarios of `make demo` (tools/demo.sh), shared with their automated
# test (tests/e2e/test_demo.sh), so the demo and the test cannot drift apart.
# Sourced after tests/e2e/lib.sh.
#
# The rig (scen_setup): two clients, each on its own veth into the router and
# speaking IPv4 and IPv6; the router running tetherd; three VMs each running
# the real VM agent (tether-agent) whose containers run the "counter" handler:
# every answer names its container and counts the requests of its key so far.
#
#   function 1: 2 containers on vm1, 2 on vm2
#   function 2: 2 containers on vm2, 2 on vm3
#   function 3: none warm; vm3's agent starts one on demand (--capacity)
#   functions 4 and 5: 4 containers each on vm3 running the sleep handler
#       (20 ms a request); 4 with a concurrency limit of 1, 5 without
#   function 6: 2 containers on vm4, two routed hops away (router -> transit
#       -> vm4, no route to it but through the transit), reached in IPIP; its
#       agent takes the outer header off with an XDP program (--decap ipip)
#
# Requests: tether-invoke (one request at a time, every answer printed) where
# the demo shows single requests, tools/udp_load for load. Where sessions are
# (keys with a container), tetherd's `show affinity` says, one connection for
# many keys.
#
# Each scenario function narrates (scen_say), measures, records its row of the
# summary table (scen_row), then checks what the design promises with the
# expect_* assertions: the first failed one returns 1, so callers run each
# scenario in a subshell with `set -e` (the test stops the scenario there; the
# demo marks its row FAIL). The scenarios run in SCEN_ALL's order on one rig:
# the drain leaves function 1 a container short, vm2 dies in vm_killed.
# SCEN_MODE=demo prints for people, anything else prints TAP comments.

SCEN_F1=1
SCEN_F2=2
SCEN_F3=3
SCEN_F4=4 # the hot key's function with a limit of 1 (vm3: sleep handler, 20 ms)
SCEN_F5=5 # the same without a limit
SCEN_F6=6 # vm4's, behind the transit: IPIP
SCEN_VM4=10.20.1.2 # vm4's address (the outer destination), on the transit's link
SCEN_COMPLETION=203.0.113.1:7700 # the router's completion address (on vm1's link)
SCEN_HEARTBEAT_MS=1000      # vm2, the VM that dies: down 1 s after its last heartbeat
SCEN_HEARTBEAT_SAFE_MS=3000 # vm1, vm3: they live through tetherd's restarts
SCEN_COLD_START_MS=300
SCEN_HOLD_MS=1000           # tetherd --hold-ms: how long a request waits for capacity
SCEN_MODE=${SCEN_MODE:-test}
E2E_INVOKE=$E2E_BUILD/tether-invoke

# --- narration ---------------------------------------------------------------------

if [[ -t 1 && $SCEN_MODE == demo ]]; then
	SCEN_BOLD=$'\e[1m' SCEN_DIM=$'\e[2m' SCEN_RED=$'\e[31m' SCEN_GREEN=$'\e[32m' SCEN_OFF=$'\e[0m'
else
	SCEN_BOLD='' SCEN_DIM='' SCEN_RED='' SCEN_GREEN='' SCEN_OFF=''
fi

scen_heading() {
	if [[ $SCEN_MODE == demo ]]; then
		printf '\n%s== %s%s\n' "$SCEN_BOLD" "$*" "$SCEN_OFF"
	else
		echo "# --- $*"
	fi
}

# A one-line explanation of what comes.
scen_explain() {
	if [[ $SCEN_MODE == demo ]]; then
		printf '%s   %s%s\n' "$SCEN_DIM" "$*" "$SCEN_OFF"
	else
		echo "#   $*"
	fi
}

# A result line.
scen_say() {
	if [[ $SCEN_MODE == demo ]]; then
		echo "   $*"
	else
		echo "#   $*"
	fi
}

# --- assertions ----------------------------------------------------------------------

# Reports a failed check (kept for the demo's summary) and returns 1.
fail() {
	if [[ $SCEN_MODE == demo ]]; then
		echo "   ${SCEN_RED}FAILED: $*${SCEN_OFF}"
	else
		echo "#   FAILED: $*"
	fi
	echo "$*" >>"$E2E_RUN_DIR/failures_${SCEN_CURRENT:-}"
	return 1
}

# expect_eq, expect_ge and expect_le are lib.sh's; they report through this fail.

# A udp_load summary: requests sent, every answer OK and well-formed (what
# was not answered: expect_no_loss).
expect_all_ok() {
	local what=$1 line=$2
	expect_ge "$what: sent" "$(e2e_field "$line" sent)" 1
	expect_eq "$what: answers OK, of all answers" "$(e2e_field "$line" ok)" "$(e2e_field "$line" answered)"
	expect_eq "$what: invalid answers" "$(e2e_field "$line" invalid)" 0
}

# Answers the clients' kernels dropped because the client's socket buffer was
# full (a client starved of CPU reads too late), both clients, so far.
scen_client_drops() {
	local name total=0
	for name in client client2; do
		total=$((total + $(ip netns exec "$E2E_ID-$name" nstat -asz UdpRcvbufErrors Udp6RcvbufErrors |
			awk '/RcvbufErrors/ { n += $2 } END { print n + 0 }')))
	done
	echo "$total"
}

# "" or ", N answers dropped by the clients" for a summary row.
scen_drops_note() {
	(($1 == 0)) || echo ", $1 answers dropped by the busy clients"
}

# Nothing lost: every request of the summaries (udp_load's, or tether-invoke's
# through scen_inv_summary) was answered, but those whose answer reached the
# client and was dropped there for a full socket buffer: DROPS, the growth of
# scen_client_drops meanwhile (the system answered those; the client, starved
# of CPU on a busy machine, could not take them).
expect_no_loss() {
	local what=$1 drops=$2 line lost=0
	shift 2
	for line in "$@"; do
		lost=$((lost + $(e2e_field "$line" lost)))
	done
	((lost == drops)) ||
		fail "$what: lost $lost requests, of which the clients dropped $drops answers themselves (drops so far: $(scen_drops))"
	((drops == 0)) ||
		scen_say "(the clients, short of CPU, dropped $drops answers in their own full socket buffers: the system answered them)"
}

# A keyed udp_load run: every session's OK answers came from one container.
expect_sticky() {
	local what=$1 line=$2
	expect_eq "$what: sessions on one container" "$(e2e_field "$line" sticky_sessions)" \
		"$(e2e_field "$line" sessions)"
}

# Every container that answered (container=SLOT ... served_by=NAME lines of
# udp_load --per-container) is, by slot and name, a container of FUNCTION as
# tetherd listed it.
expect_served_by_function() {
	local what=$1 output=$2 function=$3 line slot name
	while read -r line; do
		[[ -n $line ]] || continue
		slot=$(e2e_field "$line" container)
		name=$(e2e_field "$line" served_by)
		expect_eq "$what: function of container $slot ($name)" \
			"$(scen_function_of "$slot" "$name")" "$function"
	done < <(grep '^container=' <<<"$output")
}

# tether-invoke's lines (plain or stamped by probe_bg): every request OK
# (timeouts aside when ALLOW is 1), each answer's payload from the
# container its token names, for FUNCTION and KEY, and every container that
# answered a container of FUNCTION (by slot and name, as tetherd listed it).
expect_invoke_ok() { # WHAT OUTPUT FUNCTION KEY [ALLOW]
	local what=$1 output=$2 function=$3 key=$4 allow=${5:-0} checked slot name
	expect_ge "$what: requests" "$(grep -c ' \?request=' <<<"$output")" 1
	checked=$(awk -v f="$function" -v k="$key" -v allow="$allow" '
		/(^| )request=/ {
			delete v; slot = ""
			for (i = 1; i <= NF; i++) {
				n = index($i, "="); name = substr($i, 1, n - 1); value = substr($i, n + 1)
				if (name == "container" && slot == "") slot = value
				else if (name == "payload") { n = index(value, "="); name = substr(value, 1, n - 1); value = substr(value, n + 1) }
				if (!(name in v)) v[name] = value
			}
			if (v["status"] == "timeout" && allow) next
			if (v["status"] != "ok") { bad++; if (!why) why = "status " v["status"]; next }
			if (v["container"] != slot || v["function"] != f || v["key"] != k) {
				bad++
				if (!why) why = "token slot " slot ", payload container " v["container"] " function " v["function"] " key " v["key"]
			}
			served[slot " " v["name"]] = 1
		}
		END { print bad + 0, why; for (c in served) print c }' <<<"$output")
	expect_eq "$what: requests not OK or answered wrongly" "${checked%%$'\n'*}" "0 "
	while read -r slot name; do
		expect_eq "$what: function of container $slot ($name)" \
			"$(scen_function_of "$slot" "$name")" "$function"
	done < <(sed 1d <<<"$checked")
}

# --- the rig's state -------------------------------------------------------------------

# Adds tetherd's current containers to the rig's record of every container
# seen (slots are reused; a slot and a name together name one container).
scen_snapshot() {
	local record=$E2E_RUN_DIR/containers.jsonl
	e2e_ctl --json container list | jq -c '.[] | del(.deadline_in_ms)' >>"$record"
	awk '!seen[$0]++' "$record" >"$record.new" # oldest first, each once
	mv "$record.new" "$record"
}

# "SLOT FUNCTION BACKEND" for every slot tetherd listed, as it listed it last.
scen_slot_map() {
	jq -rs 'reduce .[] as $c ({}; .[$c.container | tostring] = $c) | .[] |
		"\(.container) \(.function) \(.backend)"' "$E2E_RUN_DIR/containers.jsonl"
}

scen_lookup() {
	jq -rs --argjson s "$1" "$2" "$E2E_RUN_DIR/containers.jsonl"
}

# The function of container SLOT named NAME (empty when tetherd never listed it).
scen_function_of() {
	local filter='[.[] | select(.container == $s and .name == $n) | .function | tostring] | unique | join(",")'
	local of
	of=$(jq -rs --argjson s "$1" --arg n "$2" "$filter" "$E2E_RUN_DIR/containers.jsonl")
	if [[ -z $of ]]; then
		scen_snapshot
		of=$(jq -rs --argjson s "$1" --arg n "$2" "$filter" "$E2E_RUN_DIR/containers.jsonl")
	fi
	echo "$of"
}

# "vm1-2 on vm1" for a slot, as tetherd listed it last.
scen_slot_label() {
	local filter='[.[] | select(.container == $s)] | last | if . then "\(.name) on \(.backend)" else empty end'
	local label
	label=$(scen_lookup "$1" "$filter")
	if [[ -z $label ]]; then
		scen_snapshot
		label=$(scen_lookup "$1" "$filter")
	fi
	echo "${label:-unknown}"
}

# The slots of function F (on backend B), comma-separated.
scen_slots() {
	local args=(--function "$1")
	[[ -z ${2:-} ]] || args+=(--backend "$2")
	e2e_ctl --json container list "${args[@]}" | jq -r '[.[].container] | join(",")'
}

# Where the rig's kernels dropped packets so far (for failure messages):
# full UDP socket buffers (clients, tetherd's slow path, agents), veth rings
# and XDP (ethtool -S), interface drop counters. "none counted" when clean.
scen_drops() {
	local name ns n dev out=""
	for name in client client2 router vm1 vm2 vm3 transit vm4; do
		ns=$E2E_ID-$name
		[[ -e /var/run/netns/$ns ]] || continue
		n=$(ip netns exec "$ns" nstat -asz UdpRcvbufErrors Udp6RcvbufErrors |
			awk '/RcvbufErrors/ { n += $2 } END { print n + 0 }')
		((n == 0)) || out+="$name socket buffers $n, "
		for dev in $(ip -n "$ns" -o link show type veth | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
			n=$(ip netns exec "$ns" ethtool -S "$dev" 2>/dev/null |
				awk '/drops|errors/ { n += $2 } END { print n + 0 }')
			((n == 0)) || out+="$dev veth/XDP $n, "
			n=$(ip -n "$ns" -j -s link show dev "$dev" | jq '.[0].stats64 | .rx.dropped + .tx.dropped')
			((n == 0)) || out+="$dev dropped $n, "
		done
	done
	out=${out%, }
	echo "${out:-none counted}"
}

scen_stat() {
	e2e_ctl --json stats | jq --arg p "$1" --arg k "$2" '.[] | select(.part == $p) | .[$k]'
}

# The container of each key FIRST..FIRST+N-1 of function F, "KEY SLOT" a line
# ("KEY -" without an affinity): one connection to tetherd for all of them.
scen_affinity() {
	local function=$1 first=$2 count=$3 key
	for ((key = first; key < first + count; key++)); do
		printf 'show affinity function=%s key=%s\n' "$function" "$key"
	done | socat -t5 - "UNIX-CONNECT:$E2E_SOCKET" |
		sed -n 's/^function=[0-9]* key=\([0-9]*\) container=\([0-9]*\) .*/\1 \2/p' |
		awk -v first="$first" -v count="$count" '{ slot[$1] = $2 }
			END { for (k = first; k < first + count; k++) print k, (k in slot) ? slot[k] : "-" }'
}

# The keys of an affinity list (scen_affinity) whose container is in SLOTS
# (comma-separated), one a line.
scen_keys_on() {
	awk -v slots=",$2," 'index(slots, "," $2 ",") { print $1 }' <<<"$1"
}

# The sum of key over udp_load summary lines.
scen_sum() {
	local key=$1 total=0 line
	shift
	for line in "$@"; do
		total=$((total + $(e2e_field "$line" "$key")))
	done
	echo "$total"
}

# tether-invoke's lines (any number of runs) summed up as udp_load does:
# "sent=N answered=N lost=N ok=N" (lost: no answer in time).
scen_inv_summary() {
	awk '/(^| )request=/ { sent++; if ($0 ~ / status=(timeout|send_error) /) lost++; if ($0 ~ / status=ok /) ok++ }
		END { printf "sent=%d answered=%d lost=%d ok=%d\n", sent, sent - lost, lost, ok }' <<<"$1"
}

# A value of the payload of a tether-invoke line (after "payload=").
scen_payload() {
	e2e_field "${1#*payload=}" "$2"
}

# Records the scenario's row of the summary table: label, figures, what it
# showed; in $E2E_RUN_DIR/row_$SCEN_CURRENT (the runner names the scenario).
scen_row() {
	local label=$1 sent=$2 answered=$3 lost=$4 text=$5
	printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$sent" "$answered" "$lost" "$text" \
		>"$E2E_RUN_DIR/row_${SCEN_CURRENT:-$label}"
}

# --- clients ---------------------------------------------------------------------------

# The client's namespace and the VIP for `CLIENT 4|6`: sets SCEN_NS, SCEN_VIP.
scen_client() {
	SCEN_NS=$E2E_NS_CLIENT
	(($1 == 1)) || SCEN_NS=$E2E_NS_CLIENT2
	SCEN_VIP=$E2E_VIP4:$E2E_PORT
	(($2 == 4)) || SCEN_VIP=[$E2E_VIP6]:$E2E_PORT
}

# tether-invoke from a client: inv CLIENT 4|6 ARGS... (its exit status is not
# an error here: the lines say what happened).
inv() {
	scen_client "$1" "$2"
	shift 2
	ip netns exec "$SCEN_NS" "$E2E_INVOKE" --vip "$SCEN_VIP" "$@" || true
}

# udp_load from a client: load CLIENT 4|6 ARGS...
load() {
	scen_client "$1" "$2"
	shift 2
	ip netns exec "$SCEN_NS" "$E2E_LOAD" --vip "$SCEN_VIP" "$@"
}

# udp_load in the background: load_bg NAME CLIENT 4|6 ARGS...; its output goes
# to $E2E_LOG_DIR/NAME.out. load_wait VAR NAME waits and puts it in VAR.
load_bg() {
	local name=$1
	scen_client "$2" "$3"
	shift 3
	# A simple command: $! is udp_load itself (ip netns exec execs it).
	ip netns exec "$SCEN_NS" "$E2E_LOAD" --vip "$SCEN_VIP" "$@" >"$E2E_LOG_DIR/$name.out" 2>&1 &
	local pid=$!
	e2e_track "$pid"
	echo "$pid" >"$E2E_RUN_DIR/bg_$name.pid"
}

load_wait() {
	local pid
	pid=$(cat "$E2E_RUN_DIR/bg_$2.pid")
	wait "$pid" || fail "$2 failed: $(tail -n3 "$E2E_LOG_DIR/$2.out")"
	printf -v "$1" '%s' "$(cat "$E2E_LOG_DIR/$2.out")"
}

# tether-invoke in the background, each line of its output stamped with the
# wall-clock time (us) it came: probe_bg NAME CLIENT 4|6 ARGS...; into
# $E2E_LOG_DIR/NAME.out. load_wait VAR NAME waits for it too.
probe_bg() {
	local name=$1
	scen_client "$2" "$3"
	shift 3
	(
		ip netns exec "$SCEN_NS" "$E2E_INVOKE" --vip "$SCEN_VIP" "$@" |
			while IFS= read -r line; do
				echo "at_us=${EPOCHREALTIME/./} $line"
			done || true # tether-invoke's status: its lines tell
	) >"$E2E_LOG_DIR/$name.out" 2>&1 &
	local pid=$!
	e2e_track_any "$pid"
	echo "$pid" >"$E2E_RUN_DIR/bg_$name.pid"
}

# The counts of tether-invoke lines: "1..9 on container 0, then 1..16 on
# container 3" (a count restarts on a new container: the state was the old one's).
scen_count_runs() {
	local line
	while read -r line; do
		echo "$(e2e_field "$line" container) $(scen_payload "$line" count)"
	done < <(grep 'status=ok' <<<"$1") |
		awk '$1 != slot || $2 != last + 1 { if (NR > 1) out = out first ".." last " on container " slot ", then "; first = $2; slot = $1 }
			{ last = $2 } END { print out first ".." last " on container " slot }'
}

# --- setup ---------------------------------------------------------------------------------

scen_require() {
	e2e_require_root
	local tool
	for tool in "$E2E_AGENT" "$E2E_INVOKE" "$E2E_LOAD"; do
		[[ -x $tool ]] || e2e_die "$tool is missing: run 'make' first"
	done
	SCEN_PYTHON=/usr/bin/python3
	[[ -x $SCEN_PYTHON ]] || SCEN_PYTHON=$(command -v python3 || true)
	[[ -n $SCEN_PYTHON ]] || e2e_die "python3 is not installed (make deps brings it with libglib2.0-dev)"
}

# The rig, tetherd, the agents; waits until every container is warm.
# Runs scenario NAME in a subshell (its first failed check ends it) and
# leaves its status in SCEN_STATUS; Ctrl-C or SIGTERM ends the whole run (the
# rig goes with the EXIT trap), not just this scenario. Call it as a plain
# command, never after || or in if: bash ignores set -e inside anything run
# there, and a scenario would go on past its first failed check.
scen_run() {
	local name=$1 status
	SCEN_CURRENT=$name
	set +e
	(
		set -euo pipefail
		trap 'exit 130' INT
		trap 'exit 143' TERM
		"scen_$name"
	)
	status=$?
	set -e
	if ((status == 130 || status == 143)); then
		[[ $SCEN_MODE != demo ]] || echo "   interrupted: removing what the demo made"
		exit "$status"
	fi
	SCEN_STATUS=$status
}

# vm4 behind a transit router: router (172.16.1.1) -- transit (172.16.1.2,
# 10.20.1.1) -- vm4 (10.20.1.2); the router reaches 10.20.1.0/24 only through
# the transit, the transit everything else through the router. The transit's
# end of the router's link runs xdp_pass: the router's XDP redirects into it.
scen_routed_rig() {
	local ns
	SCEN_NS_TRANSIT=$E2E_ID-transit SCEN_NS_VM4=$E2E_ID-vm4
	SCEN_IF_RT=${E2E_ID}rt SCEN_IF_TR=${E2E_ID}tr SCEN_IF_T4=${E2E_ID}t4 SCEN_IF_V4=${E2E_ID}v4
	E2E_NS_EXTRA+=("$SCEN_NS_TRANSIT" "$SCEN_NS_VM4")
	for ns in "$SCEN_NS_TRANSIT" "$SCEN_NS_VM4"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		e2e_sysctl "$ns" net.ipv6.conf.all.accept_dad 0
		e2e_sysctl "$ns" net.ipv4.conf.all.rp_filter 0
		e2e_sysctl "$ns" net.ipv4.conf.default.rp_filter 0
	done
	e2e_sysctl "$SCEN_NS_TRANSIT" net.ipv4.ip_forward 1
	e2e_sysctl "$SCEN_NS_TRANSIT" net.ipv6.conf.all.forwarding 1
	e2e_veth "$E2E_NS_ROUTER" "$SCEN_IF_RT" "$SCEN_NS_TRANSIT" "$SCEN_IF_TR"
	e2e_addr "$E2E_NS_ROUTER" "$SCEN_IF_RT" 172.16.1.1/24
	e2e_addr "$SCEN_NS_TRANSIT" "$SCEN_IF_TR" 172.16.1.2/24
	e2e_addr "$E2E_NS_ROUTER" "$SCEN_IF_RT" fd10:1::1/64
	e2e_addr "$SCEN_NS_TRANSIT" "$SCEN_IF_TR" fd10:1::2/64
	e2e_sysctl "$E2E_NS_ROUTER" "net.ipv4.conf.$SCEN_IF_RT.accept_local" 1
	e2e_sysctl "$E2E_NS_ROUTER" "net.ipv4.conf.$SCEN_IF_RT.rp_filter" 0
	ip -n "$SCEN_NS_TRANSIT" link set dev "$SCEN_IF_TR" xdpdrv obj "$E2E_XDP_PASS" sec xdp
	e2e_veth "$SCEN_NS_TRANSIT" "$SCEN_IF_T4" "$SCEN_NS_VM4" "$SCEN_IF_V4"
	e2e_addr "$SCEN_NS_TRANSIT" "$SCEN_IF_T4" 10.20.1.1/24
	e2e_addr "$SCEN_NS_VM4" "$SCEN_IF_V4" "$SCEN_VM4/24"
	e2e_addr "$SCEN_NS_TRANSIT" "$SCEN_IF_T4" fd20:1::1/64
	e2e_addr "$SCEN_NS_VM4" "$SCEN_IF_V4" fd20:1::2/64
	ip -n "$SCEN_NS_VM4" route add default via 10.20.1.1
	ip -n "$SCEN_NS_VM4" -6 route add default via fd20:1::1
	ip -n "$SCEN_NS_TRANSIT" route add default via 172.16.1.1
	ip -n "$SCEN_NS_TRANSIT" -6 route add default via fd10:1::1
	ip -n "$E2E_NS_ROUTER" route add 10.20.1.0/24 via 172.16.1.2
	ip -n "$E2E_NS_ROUTER" -6 route add fd20:1::/64 via fd10:1::2
	"$E2E_REPO/tools/test-certs.sh" client "$E2E_TLS_DIR" ca vm4 vm4 >/dev/null
}

# vm4's agent: routed (--decap ipip, no MAC, no router interface), to tetherd
# at the router's address on vm1's link (its certificate names it), routed too.
scen_routed_agent_start() {
	e2e_agent_spawn "$SCEN_NS_VM4" vm4 --addr "$SCEN_VM4" --decap ipip \
		--vip "$E2E_VIP4:$E2E_PORT" --vip "[$E2E_VIP6]:$E2E_PORT" \
		--tetherd "tcp:203.0.113.1:$E2E_TLS_PORT" --tls-ca "$E2E_TLS_DIR/ca.pem" \
		--tls-cert "$E2E_TLS_DIR/vm4.pem" --tls-key "$E2E_TLS_DIR/vm4-key.pem" \
		--function "$SCEN_F6:2" --heartbeat-ms "$SCEN_HEARTBEAT_SAFE_MS"
}

scen_setup() {
	scen_require
	e2e_init
	: >"$E2E_RUN_DIR/containers.jsonl"
	e2e_topology --vms 3 --clients 2
	# The agents talk to tetherd over TCP with mutual TLS, as remote VMs do.
	e2e_tls_certs
	scen_routed_rig
	# XDP on the VMs' links too: their DONE and ALIVE datagrams come in there
	# (vm4's by the transit's link).
	E2E_TETHERD_IFACES+=("$E2E_IF_R1" "$E2E_IF_R2" "$E2E_IF_R3" "$SCEN_IF_RT")
	e2e_tetherd_start --hold-ms "$SCEN_HOLD_MS" "${E2E_TLS_TETHERD[@]}" \
		--completion "$SCEN_COMPLETION" --encap-source 172.16.1.1
	e2e_agent_start_tls vm1 --function "$SCEN_F1:2" --heartbeat-ms "$SCEN_HEARTBEAT_SAFE_MS"
	e2e_agent_start_tls vm2 --function "$SCEN_F1:2" --function "$SCEN_F2:2" \
		--heartbeat-ms "$SCEN_HEARTBEAT_MS"
	e2e_agent_start_tls vm3 --function "$SCEN_F2:2" --function "$SCEN_F3:0" --capacity \
		--function "$SCEN_F4:4:1:sleep" --function "$SCEN_F5:4:0:sleep" \
		--cold-start-ms "$SCEN_COLD_START_MS" --heartbeat-ms "$SCEN_HEARTBEAT_SAFE_MS"
	e2e_agent_wait_warm vm1 2
	e2e_agent_wait_warm vm2 4
	scen_routed_agent_start
	e2e_agent_wait_warm vm3 10
	e2e_agent_wait_warm vm4 2
	scen_snapshot
}

# The rig in a few lines.
scen_describe() {
	scen_say "client 1 ($E2E_CLIENT4, $E2E_CLIENT6) and client 2 ($E2E_CLIENT2_4, $E2E_CLIENT2_6) -> router (tetherd, XDP) -> vm1, vm2, vm3 (tether-agent)"
	scen_say "service address $E2E_VIP4:$E2E_PORT and [$E2E_VIP6]:$E2E_PORT; the VMs answer the clients directly"
	scen_say "each agent reaches tetherd over TCP ($E2E_TLS_PORT) with mutual TLS: its certificate (CN=vmN) binds it to its own backend"
	scen_say "function $SCEN_F1: containers $(scen_slots "$SCEN_F1" vm1) on vm1, $(scen_slots "$SCEN_F1" vm2) on vm2"
	scen_say "function $SCEN_F2: containers $(scen_slots "$SCEN_F2" vm2) on vm2, $(scen_slots "$SCEN_F2" vm3) on vm3"
	scen_say "function $SCEN_F3: no warm container; vm3 starts one on demand (cold start ${SCEN_COLD_START_MS} ms)"
	scen_say "functions $SCEN_F4 and $SCEN_F5: 4 containers each on vm3 whose requests take 20 ms; $SCEN_F4 runs one at a time (limit 1)"
	scen_say "function $SCEN_F6: containers $(scen_slots "$SCEN_F6" vm4) on vm4 ($SCEN_VM4), two routed hops away behind a transit router, reached in IPIP"
}

# --- 1. sessions stay on their container -----------------------------------------------------

scen_sessions() {
	local key out first=() second=() bulk1 bulk2 i drops
	scen_heading "1. Sessions stay on their container (routing key)"
	scen_explain "Each request carries a routing key (a session id). The XDP program remembers key -> container,"
	scen_explain "so a session keeps reaching the container that holds its state; the counter handler counts per key."
	for key in 1001 1002 1003; do
		out=$(inv 1 4 --function "$SCEN_F1" --key "$key" --count 5)
		first+=("$out")
		scen_say "key $key: 5 requests -> container $(scen_containers "$out") ($(scen_slot_label "$(scen_containers "$out")")), count $(scen_counts "$out") (client 1, IPv4)"
	done
	scen_explain "The same keys from client 2 over IPv6: the same containers, and their counts go on."
	for key in 1001 1002 1003; do
		out=$(inv 2 6 --function "$SCEN_F1" --key "$key" --count 5)
		second+=("$out")
		scen_say "key $key: 5 requests -> container $(scen_containers "$out") ($(scen_slot_label "$(scen_containers "$out")")), count $(scen_counts "$out") (client 2, IPv6)"
	done
	drops=$(scen_client_drops)
	load_bg s1_bulk1 1 4 --function "$SCEN_F1" --count 600 --sessions 100 --key 10000 --timeout-ms 2000 --rate 500 --per-container
	load_bg s1_bulk2 2 6 --function "$SCEN_F2" --count 600 --sessions 100 --key 20000 --timeout-ms 2000 --rate 500 --per-container
	load_wait bulk1 s1_bulk1
	load_wait bulk2 s1_bulk2
	drops=$(($(scen_client_drops) - drops))
	scen_say "at once, client 1 (IPv4, function $SCEN_F1) and client 2 (IPv6, function $SCEN_F2), 100 sessions each, 500/s:"
	scen_say "  sent $(scen_sum sent "$bulk1" "$bulk2"), lost $(scen_sum lost "$bulk1" "$bulk2"); sessions on one container: $(e2e_field "$bulk1" sticky_sessions)/100 and $(e2e_field "$bulk2" sticky_sessions)/100; latency p50 $(e2e_field "$bulk1" p50_us) us, p99 $(e2e_field "$bulk1" p99_us) us"
	out=$(scen_inv_summary "$(printf '%s\n' "${first[@]}" "${second[@]}")")
	scen_row "1 sessions stay (key)" "$(scen_sum sent "$out" "$bulk1" "$bulk2")" \
		"$(scen_sum answered "$out" "$bulk1" "$bulk2")" "$(scen_sum lost "$out" "$bulk1" "$bulk2")" \
		"$(($(scen_sum sticky_sessions "$bulk1" "$bulk2") + $(scen_stayed "${first[@]}" -- "${second[@]}"))) of 203 sessions stayed$(scen_drops_note "$drops")"

	for i in 0 1 2; do
		key=$((1001 + i))
		expect_invoke_ok "key $key, client 1" "${first[i]}" "$SCEN_F1" "$key"
		expect_invoke_ok "key $key, client 2" "${second[i]}" "$SCEN_F1" "$key"
		expect_eq "key $key: containers (client 1, IPv4)" "$(scen_containers "${first[i]}")" \
			"$(scen_containers "${first[i]}" | cut -d, -f1)"
		expect_eq "key $key: containers (client 2, IPv6)" "$(scen_containers "${second[i]}")" \
			"$(scen_containers "${first[i]}")"
		expect_eq "key $key: counts (client 1)" "$(scen_counts "${first[i]}")" "1 2 3 4 5"
		expect_eq "key $key: counts (client 2)" "$(scen_counts "${second[i]}")" "6 7 8 9 10"
	done
	expect_no_loss "100 sessions from each client" "$drops" "$bulk1" "$bulk2"
	expect_all_ok "client 1, IPv4, function $SCEN_F1" "$bulk1"
	expect_sticky "client 1, IPv4, function $SCEN_F1" "$bulk1"
	expect_eq "containers of function $SCEN_F1 that served 100 sessions" "$(e2e_field "$bulk1" containers)" 4
	expect_served_by_function "client 1" "$bulk1" "$SCEN_F1"
	expect_all_ok "client 2, IPv6, function $SCEN_F2" "$bulk2"
	expect_sticky "client 2, IPv6, function $SCEN_F2" "$bulk2"
	expect_eq "containers of function $SCEN_F2 that served 100 sessions" "$(e2e_field "$bulk2" containers)" 4
	expect_served_by_function "client 2" "$bulk2" "$SCEN_F2"
}

# How many keys of the tether-invoke outputs FIRST... -- SECOND... (one key
# each, in the same order) had one container in both.
scen_stayed() {
	local firsts=() seconds=() i n=0
	while [[ $1 != -- ]]; do
		firsts+=("$1")
		shift
	done
	shift
	seconds=("$@")
	for ((i = 0; i < ${#firsts[@]}; i++)); do
		[[ $(scen_containers "${firsts[i]}"$'\n'"${seconds[i]:-}" | tr , '\n' | sort -u | wc -l) == 1 ]] &&
			n=$((n + 1))
	done
	echo "$n"
}

# The containers of tether-invoke lines, in order, without repeats: "3" or "3,5".
scen_containers() {
	grep '^request=\|^at_us=' <<<"$1" | sed -n 's/.* status=ok container=\([0-9]*\) .*/\1/p' | uniq |
		paste -sd,
}

# The counts of tether-invoke lines: "1 2 3 4 5".
scen_counts() {
	local line
	while read -r line; do
		scen_payload "$line" count
	done < <(grep 'status=ok' <<<"$1") | paste -sd' '
}

# --- 2. token follow ------------------------------------------------------------------------

scen_tokens() {
	local s key out containers line session_out=() spread hits_before hits_after bulk1 bulk2 tokens drops
	scen_heading "2. A token in a reply brings the next request to the same container"
	scen_explain "Every reply carries its container's token (slot, generation, 64-bit secret). Presented again, it routes"
	scen_explain "the request to that container whatever its key: here each request of a session has a new key."
	hits_before=$(scen_stat dataplane token_hit)
	tokens=$E2E_RUN_DIR/tokens
	mkdir -p "$tokens"
	for s in 0 1 2; do
		out=""
		for ((key = 2001 + 5 * s; key < 2006 + 5 * s; key++)); do
			# --token-file: present the token of the last reply, keep the new one.
			out+=$(inv 1 4 --function "$SCEN_F2" --key "$key" --token-file "$tokens/session$s")$'\n'
		done
		session_out+=("$out")
		containers=$(scen_containers "$out")
		scen_say "session $((s + 1)), keys $((2001 + 5 * s))..$((2005 + 5 * s)) with the token: container $containers ($(scen_slot_label "${containers%%,*}")) for all 5"
	done
	spread=""
	for ((key = 2101; key < 2106; key++)); do
		spread+=$(inv 1 4 --function "$SCEN_F2" --key "$key")$'\n'
	done
	scen_say "5 new keys without a token: containers $(grep -o 'status=ok container=[0-9]*' <<<"$spread" | cut -d= -f3 | paste -sd' ')"
	# Open loop: a session's next request goes 333 ms after its last (50
	# sessions at 150/s), by when the answer with the token is in.
	drops=$(scen_client_drops)
	load_bg s2_bulk1 1 6 --function "$SCEN_F1" --count 300 --sessions 50 --keys-per-session 6 --key 30000 \
		--timeout-ms 2000 --rate 150 --token-follow --per-container
	load_bg s2_bulk2 2 4 --function "$SCEN_F2" --count 300 --sessions 50 --keys-per-session 6 --key 31000 \
		--timeout-ms 2000 --rate 150 --token-follow --per-container
	load_wait bulk1 s2_bulk1
	load_wait bulk2 s2_bulk2
	drops=$(($(scen_client_drops) - drops))
	hits_after=$(scen_stat dataplane token_hit)
	scen_say "client 1 (IPv6) and client 2 (IPv4) at once, 50 sessions of 6 keys each, following tokens: on one container $(e2e_field "$bulk1" sticky_sessions)/50 and $(e2e_field "$bulk2" sticky_sessions)/50, lost $(scen_sum lost "$bulk1" "$bulk2"); token hits in the XDP program: $((hits_after - hits_before))"
	out=$(scen_inv_summary "$(printf '%s\n' "${session_out[@]}" "$spread")")
	scen_row "2 token follow" "$(scen_sum sent "$out" "$bulk1" "$bulk2")" \
		"$(scen_sum answered "$out" "$bulk1" "$bulk2")" "$(scen_sum lost "$out" "$bulk1" "$bulk2")" \
		"$(($(scen_sum sticky_sessions "$bulk1" "$bulk2") + $(scen_stayed "${session_out[@]}" --))) of 103 sessions on one container$(scen_drops_note "$drops")"

	for s in 0 1 2; do
		expect_eq "session $((s + 1)): requests answered OK" "$(grep -c 'status=ok' <<<"${session_out[s]}")" 5
		containers=$(scen_containers "${session_out[s]}")
		expect_eq "session $((s + 1)): containers" "$containers" "${containers%%,*}"
		key=$((2001 + 5 * s))
		while read -r line; do
			expect_invoke_ok "session $((s + 1)), key $key" "$line" "$SCEN_F2" "$key"
			key=$((key + 1))
		done < <(grep '^request=' <<<"${session_out[s]}")
	done
	expect_eq "keys without a token answered OK" "$(grep -c 'status=ok' <<<"$spread")" 5
	expect_no_loss "50 sessions from each client" "$drops" "$bulk1" "$bulk2"
	expect_all_ok "client 1, IPv6, tokens" "$bulk1"
	expect_sticky "client 1, IPv6, tokens" "$bulk1"
	expect_served_by_function "client 1, IPv6, tokens" "$bulk1" "$SCEN_F1"
	expect_all_ok "client 2, IPv4, tokens" "$bulk2"
	expect_sticky "client 2, IPv4, tokens" "$bulk2"
	expect_served_by_function "client 2, IPv4, tokens" "$bulk2" "$SCEN_F2"
	# Every request but each session's first carries a token, and it hits.
	expect_ge "token hits" "$((hits_after - hits_before))" $((12 + 250 + 250))
}

# --- 3. cold start ----------------------------------------------------------------------------

scen_cold_start() {
	local first next slot latency_ms warm out line
	scen_heading "3. No warm container: the request waits for a cold start"
	scen_explain "Function $SCEN_F3 has no warm container: the XDP program hands the request to tetherd, which holds it"
	scen_explain "and asks for capacity; vm3's agent starts a container (${SCEN_COLD_START_MS} ms) and the held request goes to it."
	expect_eq "containers of function $SCEN_F3 before" "$(scen_slots "$SCEN_F3")" ""
	first=$(inv 1 4 --function "$SCEN_F3" --key 3001 --timeout-ms 3000)
	next=$(inv 2 6 --function "$SCEN_F3" --key 3001 --count 5)
	slot=$(scen_containers "$first")
	latency_ms=$(($(e2e_field "$first" latency_us) / 1000))
	scen_say "first request (client 1, IPv4): $latency_ms ms, the cold start; container $slot ($(scen_slot_label "$slot")), count $(scen_counts "$first")"
	scen_say "next 5 (client 2, IPv6): $(grep -o 'latency_us=[0-9]*' <<<"$next" | cut -d= -f2 | paste -sd' ') us; container $(scen_containers "$next"), count $(scen_counts "$next")"
	out=$(scen_inv_summary "$first"$'\n'"$next")
	scen_row "3 cold start" "$(e2e_field "$out" sent)" "$(e2e_field "$out" answered)" "$(e2e_field "$out" lost)" \
		"first ${latency_ms} ms, then $(e2e_field "$next" latency_us) us"

	expect_invoke_ok "first request" "$first" "$SCEN_F3" 3001
	expect_invoke_ok "next requests" "$next" "$SCEN_F3" 3001
	expect_eq "backend of function $SCEN_F3's containers" \
		"$(e2e_ctl --json container list --function "$SCEN_F3" | jq -r '[.[].backend] | join(",")')" vm3
	expect_eq "containers of the next requests" "$(scen_containers "$next")" "$slot"
	expect_eq "counts of key 3001" "$(scen_counts "$first") $(scen_counts "$next")" "1 2 3 4 5 6"
	expect_ge "first request's latency (ms): the cold start" "$latency_ms" "$SCEN_COLD_START_MS"
	expect_le "first request's latency (ms)" "$latency_ms" "$SCEN_HOLD_MS"
	while read -r line; do
		expect_le "latency of a request to the warm container (us)" "$(e2e_field "$line" latency_us)" 50000
	done < <(grep '^request=' <<<"$next")
	warm=$(e2e_ctl --json function show "$SCEN_F3" | jq -r 'if type == "array" then .[0].warm else .warm end')
	expect_eq "warm containers of function $SCEN_F3" "$warm" 1
}

# --- 4. drain --wait under load ---------------------------------------------------------------

scen_drain() {
	local h key probe_key="" out started ms status=0 out1 out2 probe before after on_h moved line drops
	scen_heading "4. tetherctl drain container H --wait, under load"
	scen_explain "A draining container takes no new keys, finishes its work, reports idle and is gone;"
	scen_explain "its sessions re-home on their next request. Nothing may be lost."
	h=$(scen_slots "$SCEN_F1" vm1 | cut -d, -f1)
	# A key of H's own for the probe, whose counts nothing else disturbs.
	for ((key = 49000; key < 49100; key++)); do
		out=$(inv 1 4 --function "$SCEN_F1" --key "$key")
		[[ $(scen_containers "$out") == "$h" ]] && probe_key=$key && break
	done
	[[ -n $probe_key ]] || fail "no key of 100 went to container $h"
	drops=$(scen_client_drops)
	load_bg s4_load1 1 4 --function "$SCEN_F1" --count 900 --sessions 60 --key 40000 --timeout-ms 2000 --rate 300 --per-container
	load_bg s4_load2 2 6 --function "$SCEN_F1" --count 900 --sessions 60 --key 41000 --timeout-ms 2000 --rate 300 --per-container
	sleep 0.5
	before=$(scen_affinity "$SCEN_F1" 40000 60; scen_affinity "$SCEN_F1" 41000 60)
	probe_bg s4_probe 1 4 --function "$SCEN_F1" --key "$probe_key" --count 20 --interval-ms 100
	sleep 0.7
	started=$(date +%s%N)
	e2e_ctl drain container "$h" --deadline 5s --wait >"$E2E_LOG_DIR/s4_drain.out" 2>&1 || status=$?
	ms=$((($(date +%s%N) - started) / 1000000))
	scen_say "tetherctl drain container $h --deadline 5s --wait ($(scen_slot_label "$h")): exit status $status after $ms ms"
	load_wait out1 s4_load1
	load_wait out2 s4_load2
	load_wait probe s4_probe
	drops=$(($(scen_client_drops) - drops))
	after=$(scen_affinity "$SCEN_F1" 40000 60; scen_affinity "$SCEN_F1" 41000 60)
	scen_snapshot
	on_h=$(scen_keys_on "$before" "$h" | wc -l)
	moved=$(($(scen_sum sessions "$out1" "$out2") - $(scen_sum sticky_sessions "$out1" "$out2")))
	scen_say "300/s from each client (IPv4, IPv6) for 3 s: sent $(scen_sum sent "$out1" "$out2"), answered $(scen_sum answered "$out1" "$out2"), lost $(scen_sum lost "$out1" "$out2")"
	scen_say "$on_h of 120 sessions were on container $h; $moved moved, each to another container of function $SCEN_F1, the others stayed"
	scen_say "key $probe_key, one request every 100 ms: count $(scen_count_runs "$probe") (state is per container)"
	out=$(scen_inv_summary "$probe")
	scen_row "4 drain --wait" "$(scen_sum sent "$out1" "$out2" "$out")" "$(scen_sum answered "$out1" "$out2" "$out")" \
		"$(scen_sum lost "$out1" "$out2" "$out")" \
		"$moved sessions re-homed$(scen_drops_note "$drops")"

	expect_eq "exit status of drain --wait" "$status" 0
	expect_no_loss "during the drain" "$drops" "$out1" "$out2" "$(scen_inv_summary "$probe")"
	expect_all_ok "client 1 during the drain" "$out1"
	expect_all_ok "client 2 during the drain" "$out2"
	expect_served_by_function "client 1 during the drain" "$out1" "$SCEN_F1"
	expect_served_by_function "client 2 during the drain" "$out2" "$SCEN_F1"
	expect_eq "the probe's requests answered OK" "$(grep -c 'status=ok' <<<"$probe")" 20
	expect_invoke_ok "the probe" "$probe" "$SCEN_F1" "$probe_key"
	expect_eq "the probe's containers" "$(scen_containers "$probe" | cut -d, -f1)" "$h"
	expect_eq "the probe's containers after the drain" "$(scen_containers "$probe" | tr , '\n' | wc -l)" 2
	expect_ge "sessions on the drained container" "$on_h" 1
	expect_eq "sessions that moved" "$moved" "$on_h"
	# Exactly the drained container's keys went elsewhere, to a container of
	# the function; every other key kept its container.
	line=$(awk -v h="$h" -v f="$SCEN_F1" '
		FILENAME == ARGV[1] { function_of[$1] = $2; next }
		FILENAME == ARGV[2] { now[$1] = $2; next }
		$2 == h && (now[$1] == h || now[$1] == "-" || function_of[now[$1]] != f) {
			print "key " $1 " of the drained container " h ": now on container " now[$1] }
		$2 != h && now[$1] != $2 { print "key " $1 ": container " $2 " before, " now[$1] " after" }' \
		<(scen_slot_map) <(echo "$after") <(echo "$before") | sed -n 1,5p)
	[[ -z $line ]] || fail "keys where the drain should not have put them:
$line"
	expect_eq "function $SCEN_F1's containers that are $h" "$(scen_slots "$SCEN_F1" | tr , '\n' | grep -cx "$h" || true)" 0
}

# --- 5. a VM dies ---------------------------------------------------------------------------------

# Probe output (probe_bg) as "SENT_US STATUS CONTAINER" lines, SENT_US the
# wall-clock time the request went (the line's time less its latency; for a
# timeout, the line's time).
scen_probe_table() {
	awk '/ request=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "%.0f %s %s\n", v["at_us"] - (v["latency_us"] == "-" ? 0 : v["latency_us"]), v["status"], v["container"] }' <<<"$1"
}

# When the first request sent after T_US (us) that a container not in SLOTS
# answered OK went, in ms after T_US (-1: none): from probe output.
scen_recovered_ms() {
	scen_probe_table "$1" | awk -v t="$2" -v slots=",$3," '
		!found && $1 >= t && $2 == "ok" && !index(slots, "," $3 ",") { found = int(($1 - t) / 1000) + 1 }
		END { print found - 1 }'
}

scen_vm_killed() {
	local victims out1 out2 out3 before after probe1 probe2 gap1 gap2 killed_us backend_state
	local v1 v2 v3 pk1 pk2 strict_key line bound out drops
	scen_heading "5. A VM dies: its sessions move to siblings within the heartbeat time"
	scen_explain "vm2's agent and containers get SIGKILL. Without heartbeats vm2 is down at its deadline (${SCEN_HEARTBEAT_MS} ms),"
	scen_explain "checked by the XDP program itself; its sessions re-home, STRICT sessions pinned to it get CONTAINER_GONE."
	victims=$(scen_slots "$SCEN_F1" vm2),$(scen_slots "$SCEN_F2" vm2)
	scen_snapshot
	# Every session gets its container first, so we know which are vm2's.
	load 1 4 --function "$SCEN_F1" --count 40 --sessions 40 --key 50000 >/dev/null
	load 2 6 --function "$SCEN_F2" --count 40 --sessions 40 --key 51000 >/dev/null
	load 2 4 --function "$SCEN_F1" --count 20 --sessions 20 --key 52000 --strict >/dev/null
	before=$(scen_affinity "$SCEN_F1" 50000 40; scen_affinity "$SCEN_F2" 51000 40; scen_affinity "$SCEN_F1" 52000 20)
	v1=$(scen_keys_on "$(scen_affinity "$SCEN_F1" 50000 40)" "$victims" | wc -l)
	v2=$(scen_keys_on "$(scen_affinity "$SCEN_F2" 51000 40)" "$victims" | wc -l)
	v3=$(scen_keys_on "$(scen_affinity "$SCEN_F1" 52000 20)" "$victims" | wc -l)
	drops=$(scen_client_drops)
	# 6 s of load: the kill comes 1.5 s after the last of these started, and
	# vm2's sessions move only after its deadline. On a busy machine starting
	# the five clients took 1.4 s, and a 4 s load ended before the deadline.
	load_bg s5_f1 1 4 --function "$SCEN_F1" --count 1800 --sessions 40 --key 50000 --rate 300 --per-container
	load_bg s5_f2 2 6 --function "$SCEN_F2" --count 1800 --sessions 40 --key 51000 --rate 300 --per-container
	load_bg s5_strict 2 4 --function "$SCEN_F1" --count 600 --sessions 20 --key 52000 --rate 100 --strict \
		--per-container
	# Probes: a vm2 key of each function, one request every 10 ms (50 ms timeout).
	pk1=$(scen_keys_on "$before" "$(scen_slots "$SCEN_F1" vm2)" | sed -n 1p)
	pk2=$(scen_keys_on "$before" "$(scen_slots "$SCEN_F2" vm2)" | sed -n 1p)
	probe_bg s5_probe1 1 4 --function "$SCEN_F1" --key "$pk1" --count 250 --interval-ms 10 --timeout-ms 50
	probe_bg s5_probe2 2 6 --function "$SCEN_F2" --key "$pk2" --count 250 --interval-ms 10 --timeout-ms 50
	sleep 1.5
	e2e_agent_kill vm2
	killed_us=${E2E_KILLED_AT_NS%???}
	scen_say "killed vm2's agent and its containers ($victims) with SIGKILL"
	load_wait out1 s5_f1
	load_wait out2 s5_f2
	load_wait out3 s5_strict
	load_wait probe1 s5_probe1
	load_wait probe2 s5_probe2
	drops=$(($(scen_client_drops) - drops))
	after=$(scen_affinity "$SCEN_F1" 50000 40; scen_affinity "$SCEN_F2" 51000 40; scen_affinity "$SCEN_F1" 52000 20)
	backend_state=$(e2e_ctl --json backend list | jq -r '.[] | select(.backend == "vm2") | .state')
	gap1=$(scen_recovered_ms "$probe1" "$killed_us" "$victims")
	gap2=$(scen_recovered_ms "$probe2" "$killed_us" "$victims")
	scen_say "function $SCEN_F1 (client 1, IPv4): $v1 of 40 sessions were on vm2 and moved to vm1; served again $gap1 ms after the kill; lost $(e2e_field "$out1" lost) of $(e2e_field "$out1" sent) (sent to vm2 before its deadline)"
	scen_say "function $SCEN_F2 (client 2, IPv6): $v2 of 40 sessions were on vm2 and moved to vm3; served again $gap2 ms after the kill; lost $(e2e_field "$out2" lost) of $(e2e_field "$out2" sent)"
	scen_say "STRICT (client 2, IPv4): $v3 of 20 sessions pinned to vm2 got CONTAINER_GONE ($(e2e_field "$out3" container_gone) answers) and stayed pinned; the other $((20 - v3)) kept their container"
	strict_key=$(scen_keys_on "$(scen_affinity "$SCEN_F1" 52000 20)" "$victims" | sed -n 1p)
	if [[ -n $strict_key ]]; then
		out=$(inv 2 4 --function "$SCEN_F1" --key "$strict_key" --strict)
		scen_say "key $strict_key with STRICT: $(e2e_field "$out" status); without: $(inv 2 4 --function "$SCEN_F1" --key "$strict_key" | sed -n 's/.* status=\([a-z_]*\) container=\([0-9]*\) .*/\1 from container \2/p')"
	fi
	scen_say "vm2 at tetherd: $backend_state"
	line=$(scen_inv_summary "$probe1"$'\n'"$probe2")
	scen_row "5 VM killed" "$(scen_sum sent "$out1" "$out2" "$out3" "$line")" \
		"$(scen_sum answered "$out1" "$out2" "$out3" "$line")" "$(scen_sum lost "$out1" "$out2" "$out3" "$line")" \
		"served again after $gap1/$gap2 ms; $v3 STRICT sessions -> CONTAINER_GONE"

	expect_eq "vm2's state at tetherd" "$backend_state" down
	expect_ge "function $SCEN_F1 sessions on vm2" "$v1" 1
	expect_ge "function $SCEN_F2 sessions on vm2" "$v2" 1
	expect_ge "STRICT sessions on vm2" "$v3" 1
	# Keys of vm2 went to a container of their function on another VM; the
	# others kept theirs; STRICT keys (52000...) kept theirs, dead or alive.
	line=$(awk -v victims=",$victims," '
		FILENAME == ARGV[1] { function_of[$1] = $2; next }
		FILENAME == ARGV[2] { now[$1] = $2; next }
		$1 < 52000 && index(victims, "," $2 ",") {
			if (now[$1] == "-" || index(victims, "," now[$1] ",") ||
			    function_of[now[$1]] != function_of[$2])
				print "key " $1 " of container " $2 " (vm2): now on container " now[$1]
			next }
		now[$1] != $2 { print "key " $1 ": container " $2 " before, " now[$1] " after" }' \
		<(scen_slot_map) <(echo "$after") <(echo "$before") | sed -n 1,5p)
	[[ -z $line ]] || fail "keys where the death of vm2 should not have put them:
$line"
	expect_eq "function $SCEN_F1: sessions that moved" \
		"$(($(e2e_field "$out1" sessions) - $(e2e_field "$out1" sticky_sessions)))" "$v1"
	expect_eq "function $SCEN_F2: sessions that moved" \
		"$(($(e2e_field "$out2" sessions) - $(e2e_field "$out2" sticky_sessions)))" "$v2"
	expect_sticky "STRICT sessions (none moved)" "$out3"
	for line in "$out1" "$out2" "$out3"; do
		expect_eq "invalid answers" "$(e2e_field "$line" invalid)" 0
	done
	expect_served_by_function "function $SCEN_F1 across the crash" "$out1" "$SCEN_F1"
	expect_served_by_function "function $SCEN_F2 across the crash" "$out2" "$SCEN_F2"
	expect_served_by_function "STRICT across the crash" "$out3" "$SCEN_F1"
	expect_eq "CONTAINER_GONE without STRICT" "$(scen_sum container_gone "$out1" "$out2")" 0
	expect_ge "STRICT: CONTAINER_GONE answers" "$(e2e_field "$out3" container_gone)" "$v3"
	# Lost: only vm2's sessions' requests until its deadline (and in flight at
	# the kill), and answers the busy clients dropped themselves.
	bound=$((300 * v1 * (SCEN_HEARTBEAT_MS + 600) / 40 / 1000 + 5 + drops))
	expect_le "function $SCEN_F1: lost (vm2's share of 1.6 s at 300/s)" "$(e2e_field "$out1" lost)" "$bound"
	bound=$((300 * v2 * (SCEN_HEARTBEAT_MS + 600) / 40 / 1000 + 5 + drops))
	expect_le "function $SCEN_F2: lost (vm2's share of 1.6 s at 300/s)" "$(e2e_field "$out2" lost)" "$bound"
	bound=$((100 * v3 * (SCEN_HEARTBEAT_MS + 600) / 20 / 1000 + 5 + drops))
	expect_le "STRICT: lost (vm2's share of 1.6 s at 100/s)" "$(e2e_field "$out3" lost)" "$bound"
	for line in "$gap1" "$gap2"; do
		expect_ge "time until vm2's keys were served again (ms)" "$line" 0
		expect_le "time until vm2's keys were served again (ms)" "$line" $((SCEN_HEARTBEAT_MS + 600))
	done
	# A probe line's time is when this shell read it, a little after the
	# answer came: its send time is known within some ms, hence 50 ms slack.
	for line in "$probe1" "$probe2"; do
		expect_eq "probe requests sent 50 ms or more after the kill that vm2 answered" \
			"$(scen_probe_table "$line" | awk -v t="$((killed_us + 50000))" -v slots=",$victims," \
				'$1 >= t && $2 == "ok" && index(slots, "," $3 ",")' | wc -l)" 0
	done
	expect_invoke_ok "probe of function $SCEN_F1" "$probe1" "$SCEN_F1" "$pk1" 1
	expect_invoke_ok "probe of function $SCEN_F2" "$probe2" "$SCEN_F2" "$pk2" 1
	[[ -z $strict_key ]] || expect_eq "STRICT request to vm2's container" "$(e2e_field "$out" status)" container_gone
}

# --- 6. tetherd restart and upgrade ---------------------------------------------------------------

# The pinned link of the client-facing interface: "LINK PROG".
scen_pinned_link() {
	e2e_in_router bpftool -j link show pinned "$E2E_PIN_ROOT/link_$E2E_IF_RC" | jq -r '"\(.id) \(.prog_id)"'
}

scen_controller_state() {
	e2e_ctl --json container list
	e2e_ctl --json backend list | jq -c '[.[] | del(.expires_in_ms)]'
	scen_affinity "$SCEN_F1" 60000 50
	scen_affinity "$SCEN_F2" 61000 50
}

# The names of the backends that are up, space-separated.
scen_backends_up() {
	e2e_ctl --json backend list | jq -r '[.[] | select(.state == "up") | .backend] | join(" ")'
}

# Waits (up to 4 s) until each backend named (space-separated) is up and has
# heartbeated since this was called (its expires_in_ms went up). Prints how
# long that took, or which did not.
scen_wait_heartbeats() {
	local names=$1 i now previous="" fresh="{}" missing
	for ((i = 0; i < 40; i++)); do
		now=$(e2e_ctl --json backend list 2>/dev/null |
			jq -c 'map(select(.state == "up") | {key: .backend, value: .expires_in_ms}) | from_entries' 2>/dev/null) ||
			now=""
		if [[ -n $now && -n $previous ]]; then
			fresh=$(jq -cn --argjson a "$previous" --argjson b "$now" --argjson f "$fresh" \
				'$f + ($b | with_entries(select(.value > ($a[.key] // 1e18) + 50) | .value = true))')
		fi
		missing=$(jq -rn --argjson f "$fresh" --arg names "$names" \
			'[$names | split(" ")[] | select(. != "" and ($f[.] | not))] | join(" ")')
		[[ -z $missing ]] && break
		[[ -z $now ]] || previous=$now
		sleep 0.1
	done
	if [[ -z $missing ]]; then
		echo "every VM agent (${names// /, }) reconnected and heartbeated within $((i * 100)) ms"
	else
		echo "no heartbeat within 4 s from: $missing"
	fi
}

scen_restart() {
	local out1 out2 link_before link_after pid before after stats_before up drops
	scen_heading "6. tetherd killed (-9) and restarted, then upgraded (SIGTERM + start), under load"
	scen_explain "The XDP program and its maps are pinned: routing goes on without tetherd. A new tetherd adopts"
	scen_explain "the maps and swaps its program into the pinned link atomically. Nothing may be lost."
	if [[ -n $(e2e_agent_pid vm2) ]]; then
		# Its heartbeat deadline (1 s) is shorter than tetherd's restart and the
		# agents' reconnection: the restart would take it down.
		e2e_agent_stop vm2
		scen_say "vm2 still ran (1 s heartbeat deadline, shorter than a restart): stopped it first"
	fi
	load 1 4 --function "$SCEN_F1" --count 50 --sessions 50 --key 60000 >/dev/null
	load 2 6 --function "$SCEN_F2" --count 50 --sessions 50 --key 61000 >/dev/null
	link_before=$(scen_pinned_link)
	before=$(scen_controller_state)
	stats_before=$(e2e_ctl --json stats | jq -c '.[] | select(.part == "dataplane")')
	drops=$(scen_client_drops)
	load_bg s6_f1 1 4 --function "$SCEN_F1" --count 2100 --sessions 50 --key 60000 --timeout-ms 2000 --rate 300 --per-container
	load_bg s6_f2 2 6 --function "$SCEN_F2" --count 2100 --sessions 50 --key 61000 --timeout-ms 2000 --rate 300 --per-container
	sleep 1
	pid=$(e2e_tetherd_pid)
	up=$(scen_backends_up)
	e2e_tetherd_stop KILL
	e2e_tetherd_start
	scen_say "killed tetherd $pid with SIGKILL; tetherd $(e2e_tetherd_pid) adopted the pinned maps: $(grep -o 'adopted the maps.*' "$E2E_TETHERD_LOG" | tail -n1 | sed 's/.*: //')"
	scen_say "$(scen_wait_heartbeats "$up")"
	pid=$(e2e_tetherd_pid)
	e2e_tetherd_stop TERM
	e2e_tetherd_start
	link_after=$(scen_pinned_link)
	scen_say "stopped tetherd $pid with SIGTERM; tetherd $(e2e_tetherd_pid): link ${link_before% *} program ${link_before#* } -> link ${link_after% *} program ${link_after#* } (replaced atomically)"
	load_wait out1 s6_f1
	load_wait out2 s6_f2
	drops=$(($(scen_client_drops) - drops))
	after=$(scen_controller_state)
	scen_say "300/s from each client for 7 s: sent $(scen_sum sent "$out1" "$out2"), answered $(scen_sum answered "$out1" "$out2"), lost $(scen_sum lost "$out1" "$out2"); sessions on one container $(e2e_field "$out1" sticky_sessions)/50 and $(e2e_field "$out2" sticky_sessions)/50"
	scen_say "backends at tetherd now: $(e2e_ctl --json backend list | jq -r '[.[] | "\(.backend) \(.state)"] | join(", ")')"
	scen_say "data plane decisions meanwhile: $(jq -rn --argjson a "$stats_before" --argjson b "$(e2e_ctl --json stats | jq -c '.[] | select(.part == "dataplane")')" \
		'[$b | to_entries[] | select(.value | type == "number") | select(.value != $a[.key]) | "\(.key) +\(.value - $a[.key])"] | join(", ")')"
	if (($(scen_sum ok "$out1" "$out2") != $(scen_sum sent "$out1" "$out2"))); then
		scen_say "answers other than OK: no_capacity $(scen_sum no_capacity "$out1" "$out2"), container_gone $(scen_sum container_gone "$out1" "$out2"), overloaded $(scen_sum overloaded "$out1" "$out2"), late $(scen_sum late "$out1" "$out2"); drops so far: $(scen_drops)"
	fi
	scen_row "6 tetherd restart+upgrade" "$(scen_sum sent "$out1" "$out2")" "$(scen_sum answered "$out1" "$out2")" \
		"$(scen_sum lost "$out1" "$out2")" "program ${link_before#* } -> ${link_after#* }, state kept$(scen_drops_note "$drops")"

	expect_no_loss "across restart and upgrade" "$drops" "$out1" "$out2"
	expect_all_ok "function $SCEN_F1 across restart and upgrade" "$out1"
	expect_all_ok "function $SCEN_F2 across restart and upgrade" "$out2"
	expect_sticky "function $SCEN_F1 across restart and upgrade" "$out1"
	expect_sticky "function $SCEN_F2 across restart and upgrade" "$out2"
	expect_served_by_function "function $SCEN_F1 across restart and upgrade" "$out1" "$SCEN_F1"
	expect_served_by_function "function $SCEN_F2 across restart and upgrade" "$out2" "$SCEN_F2"
	expect_eq "the pinned link (updated in place)" "${link_after% *}" "${link_before% *}"
	[[ ${link_after#* } != "${link_before#* }" ]] || fail "the program id did not change (${link_after#* })"
	[[ $after == "$before" ]] || fail "containers, backends or affinities differ after restart and upgrade:
$(diff <(echo "$before") <(echo "$after") | sed -n 1,20p | sed 's/^/#     /')"
}

# --- 7. the router's own traffic ------------------------------------------------------------------

# ICMP echo from the client namespace NS to ADDR through a raw socket (ping
# may not be installed): prints "received=N" of COUNT.
scen_ping() {
	e2e_in "$1" "$SCEN_PYTHON" - "$2" "$3" <<'PYTHON'
import os, select, socket, struct, sys, time
address, count = sys.argv[1], int(sys.argv[2])
v6 = ":" in address
sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                     socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
ident, received = os.getpid() & 0xffff, 0
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    return ~(total + (total >> 16)) & 0xffff
for seq in range(count):
    payload = b"tether-e2e-ping!"
    header = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, ident, seq)
    if not v6:  # the kernel sums ICMPv6 itself
        header = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq)
    sock.sendto(header + payload, (address, 0))
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        if not select.select([sock], [], [], deadline - time.monotonic())[0]:
            break
        data = sock.recv(2048)
        if not v6:
            data = data[(data[0] & 0x0f) * 4:]
        if len(data) >= 8 and struct.unpack("!BBHHH", data[:8])[::3] == (129 if v6 else 0, ident) \
                and struct.unpack("!H", data[6:8])[0] == seq:
            received += 1
            break
print("received=%d" % received)
PYTHON
}

scen_edge_traffic() {
	local pass_before pass_after pings="" tcp="" ok=0 total=0 target reply pid listen listeners=()
	scen_heading "7. The router's own traffic is untouched by the XDP program"
	scen_explain "Ping and TCP from client 1 to the router's address and to the VIP on the router (TCP port $E2E_PORT too)."
	# TCP listeners in the router: simple commands, so $! is socat itself
	# (nsenter execs it), which cleanup stops. They end with the scenario.
	for listen in "TCP-LISTEN:8080,bind=$E2E_ROUTER4" "TCP6-LISTEN:8080,bind=[$E2E_ROUTER6]" \
		"TCP-LISTEN:$E2E_PORT,bind=$E2E_VIP4" "TCP6-LISTEN:$E2E_PORT,bind=[$E2E_VIP6]"; do
		reply=router-tcp
		[[ $listen == *":$E2E_PORT,"* ]] && reply=vip-tcp
		nsenter --net="/var/run/netns/$E2E_NS_ROUTER" socat "$listen,reuseaddr,fork" \
			SYSTEM:"echo $reply" >/dev/null 2>&1 &
		pid=$!
		e2e_track_any "$pid"
		listeners+=("$pid")
	done
	pass_before=$(scen_stat dataplane pass)
	for target in "$E2E_ROUTER4" "$E2E_ROUTER6" "$E2E_VIP4" "$E2E_VIP6"; do
		reply=$(e2e_field "$(scen_ping "$E2E_NS_CLIENT" "$target" 3)" received)
		pings+="$target ${reply:-0}/3, "
		ok=$((ok + ${reply:-0}))
		total=$((total + 3))
	done
	for target in "$E2E_ROUTER4:8080" "[$E2E_ROUTER6]:8080" "$E2E_VIP4:$E2E_PORT" "[$E2E_VIP6]:$E2E_PORT"; do
		reply=""
		for _ in 1 2 3 4 5 6 7 8 9 10; do # the listeners may still be starting
			reply=$(e2e_in "$E2E_NS_CLIENT" socat -T2 - "TCP:$target" </dev/null 2>/dev/null || true)
			[[ -n $reply ]] && break
			sleep 0.1
		done
		tcp+="$target ${reply:-nothing}, "
		[[ -n $reply ]] && ok=$((ok + 1))
		total=$((total + 1))
	done
	pass_after=$(scen_stat dataplane pass)
	kill "${listeners[@]}" 2>/dev/null || true
	scen_say "ping, echo replies: ${pings%, }"
	scen_say "TCP, the listener's greeting: ${tcp%, }"
	scen_say "packets the XDP program passed to the router's own stack: $((pass_after - pass_before))"
	scen_row "7 router's own traffic" "$total" "$ok" "$((total - ok))" "ping and TCP to router and VIP"

	expect_eq "pings and TCP connections answered" "$ok" "$total"
	expect_eq "TCP greetings" "$tcp" "$E2E_ROUTER4:8080 router-tcp, [$E2E_ROUTER6]:8080 router-tcp, $E2E_VIP4:$E2E_PORT vip-tcp, [$E2E_VIP6]:$E2E_PORT vip-tcp, "
	expect_ge "packets passed by the XDP program" "$((pass_after - pass_before))" 12
}

# --- 8. a hot key with a concurrency limit --------------------------------------------------

scen_hot_key() {
	local limited unlimited p99_limited p99_unlimited bugs_before bugs
	scen_heading "8. A hot key: one container at a time (limit 1), steered, against one queue"
	scen_explain "100 requests/s on one key for 2 s, twice what one container serves (20 ms a request)."
	scen_explain "Function $SCEN_F5 has no limit: every request waits in the key's container. Function $SCEN_F4"
	scen_explain "runs one request at a time per container: the router counts them (the agent's DONE datagrams)"
	scen_explain "and sends the overflow to the next containers of the key's table; the affinity stays home."
	bugs_before=$(grep -c "ROUTER BUG" "$E2E_LOG_DIR/agent_vm3.log" || true)
	unlimited=$(load 1 4 --function "$SCEN_F5" --key 8001 --rate 100 --duration-s 2 --timeout-ms 10000)
	limited=$(load 1 4 --function "$SCEN_F4" --key 8001 --rate 100 --duration-s 2 --timeout-ms 10000)
	p99_unlimited=$(($(e2e_field "$unlimited" p99_us) / 1000))
	p99_limited=$(($(e2e_field "$limited" p99_us) / 1000))
	bugs=$(($(grep -c "ROUTER BUG" "$E2E_LOG_DIR/agent_vm3.log" || true) - bugs_before))
	scen_say "no limit: p50 $(($(e2e_field "$unlimited" p50_us) / 1000)) ms, p99 $p99_unlimited ms, $(e2e_field "$unlimited" containers) container"
	scen_say "limit 1:  p50 $(($(e2e_field "$limited" p50_us) / 1000)) ms, p99 $p99_limited ms, $(e2e_field "$limited" containers) containers; overflows steered: $(scen_stat load key_overflow)"
	scen_say "requests a container got beyond its limit (the agent's count): $bugs"
	scen_row "8 hot key, limit 1" "$(($(e2e_field "$limited" sent) + $(e2e_field "$unlimited" sent)))" \
		"$(($(e2e_field "$limited" answered) + $(e2e_field "$unlimited" answered)))" \
		"$(($(e2e_field "$limited" lost) + $(e2e_field "$unlimited" lost)))" \
		"p99 ${p99_limited} ms with the limit, ${p99_unlimited} ms without"

	expect_eq "lost without the limit" "$(e2e_field "$unlimited" lost)" 0
	expect_eq "lost with the limit" "$(e2e_field "$limited" lost)" 0
	expect_eq "answered OK with the limit" "$(e2e_field "$limited" ok)" "$(e2e_field "$limited" sent)"
	expect_eq "containers without the limit" "$(e2e_field "$unlimited" containers)" 1
	expect_ge "containers with the limit" "$(e2e_field "$limited" containers)" 2
	expect_eq "requests beyond a container's limit" "$bugs" 0
	expect_le "p99 with the limit x 5 (ms) under p99 without" "$((p99_limited * 5))" "$p99_unlimited"
}

# --- 9. a routed VM ------------------------------------------------------------------------

scen_routed() {
	local one two out1 out2 before after prog drops
	scen_heading "9. A VM two routed hops away: IPIP through a transit router"
	scen_explain "vm4 is not on the router's segment: the router reaches it only through a transit router. The XDP"
	scen_explain "program wraps each request in an outer IPv4 header to vm4 and sends it to the next hop the kernel's"
	scen_explain "FIB gives; vm4's agent takes the outer header off with an XDP program of its own; vm4 answers directly."
	before=$(scen_stat encap encap_ipip)
	one=$(inv 1 4 --function "$SCEN_F6" --key 9001 --count 3)
	two=$(inv 2 6 --function "$SCEN_F6" --key 9002 --count 3)
	scen_say "key 9001 (client 1, IPv4): container $(scen_containers "$one") ($(scen_slot_label "$(scen_containers "$one")")), count $(scen_counts "$one")"
	scen_say "key 9002 (client 2, IPv6): container $(scen_containers "$two") ($(scen_slot_label "$(scen_containers "$two")")), count $(scen_counts "$two")"
	drops=$(scen_client_drops)
	out1=$(load 1 4 --function "$SCEN_F6" --count 200 --sessions 20 --key 90000 --rate 400 --timeout-ms 2000 --per-container)
	out2=$(load 2 6 --function "$SCEN_F6" --count 200 --sessions 20 --key 91000 --rate 400 --timeout-ms 2000 --per-container)
	drops=$(($(scen_client_drops) - drops))
	after=$(scen_stat encap encap_ipip)
	prog=$(ip -n "$SCEN_NS_VM4" -j -d link show dev "$SCEN_IF_V4" | jq -r '.[0].xdp.prog.name // "none"')
	scen_say "vm4's next hop at the router: $(e2e_ctl --json backend list | jq -r '.[] | select(.backend == "vm4") | .nexthop'); on vm4's interface: XDP program $prog"
	scen_say "400/s from each client, IPv4 and IPv6: sent $(scen_sum sent "$out1" "$out2"), answered $(scen_sum answered "$out1" "$out2"), lost $(scen_sum lost "$out1" "$out2"); wrapped in IPIP by XDP: $((after - before))"
	scen_row "9 routed VM (IPIP)" "$(scen_sum sent "$out1" "$out2")" "$(scen_sum answered "$out1" "$out2")" \
		"$(scen_sum lost "$out1" "$out2")" "$((after - before)) requests wrapped in IPIP by XDP$(scen_drops_note "$drops")"

	expect_eq "key 9001 answered" "$(scen_inv_summary "$one")" "sent=3 answered=3 lost=0 ok=3"
	expect_eq "key 9002 answered" "$(scen_inv_summary "$two")" "sent=3 answered=3 lost=0 ok=3"
	expect_no_loss "to the routed VM" "$drops" "$out1" "$out2"
	expect_all_ok "client 1 to the routed VM" "$out1"
	expect_all_ok "client 2 to the routed VM" "$out2"
	expect_sticky "client 1 to the routed VM" "$out1"
	expect_sticky "client 2 to the routed VM" "$out2"
	expect_served_by_function "client 1 to the routed VM" "$out1" "$SCEN_F6"
	expect_served_by_function "client 2 to the routed VM" "$out2" "$SCEN_F6"
	expect_ge "wrapped in IPIP by XDP" "$((after - before))" 300
	expect_eq "vm4's decapsulator" "$prog" tether_decap
}

# The scenarios in order (each one's function is scen_NAME).
SCEN_ALL=(sessions tokens cold_start drain vm_killed restart edge_traffic hot_key routed)
