#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fault injection against the whole system (tests/e2e/lib.sh builds the rig):
#
#   kill9_lifecycle   tetherd is killed with SIGKILL at random moments while a
#                     driver makes random lifecycle changes (add, up, drain,
#                     idle, del of containers of three functions on two
#                     backends) through tetherctl: after 2-12 answered changes
#                     of a burst and 0-30 ms, and every other time only once
#                     tetherd is inside a pool table swap (its kernel stack in
#                     synchronize_rcu under bpf_map_do_batch: the pools
#                     update; tools/kill_in_stack watches and kills). After each restart, tools/check_pins finds the
#                     pinned maps consistent, and `container list` holds
#                     exactly what the driver was told (an answered change is
#                     never lost; an unanswered one happened or did not, whole).
#   routing_after_kills  every function's requests reach only its warm
#                     containers, on the right backend, none lost.
#   backend_flap      a VM agent stops (SIGSTOP: heartbeats stop) and resumes.
#   agent_restart     a VM agent is killed and started again: it takes its
#                     backend over, adds its containers anew, deletes the old.
#   kill9_with_agents tetherd killed under agents and traffic.
#   vm_vanishes       a VM agent and its containers are killed for good.
# In the last four, udp_load runs from the client in back-to-back chunks the
# whole time, and a window counts the chunks wholly inside it: once routing
# has had the heartbeat time to converge, no request is lost, and once tetherd
# knows a container is gone, no request reaches it (the agent would answer
# CONTAINER_GONE: its token check).
#
#   tests/e2e/test_faults.sh [TEST...]
#   TETHER_FAULT_SEED=N  (the seed; printed, random by default)
#   TETHER_FAULT_KILLS=N (kills of kill9_lifecycle, default 20)
#
# TAP output, then "N passed, M failed" alone on the last line. Run as root.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SEED=${TETHER_FAULT_SEED:-$((($(date +%s%N) / 1000) % 1000000))}
KILLS=${TETHER_FAULT_KILLS:-20}
KILL_IN_STACK=$E2E_BUILD/tools/kill_in_stack
FUNCTIONS=(101 102 103)
BACKENDS=(vm1 vm2)
AGENT_FUNCTION=201
HEARTBEAT_MS=2000          # the agents' heartbeat deadline: routing converges within it
CONVERGE_MS=$((HEARTBEAT_MS + 150)) # ... plus tetherd's tick and the coarse clock
# A resumed agent heartbeats within a third of that: its VM serves again then.
RESUME_MS=$((HEARTBEAT_MS / 3 + 300))
MAX_LIVE=24                # containers the driver keeps at most

# --- assertions ----------------------------------------------------------------

now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# --- 1. tetherd killed during lifecycle changes ----------------------------------

# The driver's model of every container it made: state (starting, warm,
# draining, gone), slot, function, backend; by name (names are unique).
declare -A M_STATE M_SLOT M_FUNC M_BACKEND
ADDED_RE='^ok [^ ]+ add ([0-9]+)'
ERROR_RE='^tetherctl: (bad_request|unknown_verb|missing_argument|bad_argument|not_found|exists|invalid_transition|full|unauthorized|internal): '

# One lifecycle change on tetherctl; its outcome as a journal line:
#   ok NAME OP [SLOT STATE FUNCTION BACKEND]   answered ok
#   refused NAME OP MESSAGE                    answered an error: the model is wrong
#   unsure NAME OP [STATE FUNCTION BACKEND]    no answer: tetherd died meanwhile
change() {
	local journal=$1 name=$2 op=$3 out err status=0 slot=${M_SLOT[$2]:-} state function backend
	case $op in
	add)
		function=$4 backend=$5 state=$6
		out=$(e2e_ctl --json container add --function "$function" --backend "$backend" \
			--name "$name" $([[ $state == warm ]] && echo --warm) 2>"$journal.err") || status=$?
		;;
	up) out=$(e2e_ctl container up "$slot" 2>"$journal.err") || status=$? ;;
	drain) out=$(e2e_ctl container drain "$slot" --deadline 10m 2>"$journal.err") || status=$? ;;
	idle) out=$(e2e_ctl container idle "$slot" 2>"$journal.err") || status=$? ;;
	del) out=$(e2e_ctl container del "$slot" 2>"$journal.err") || status=$? ;;
	esac
	err=$(<"$journal.err")
	if ((status == 0)); then
		if [[ $op == add ]]; then
			[[ $out =~ \"container\":([0-9]+) ]] || {
				echo "refused $name add no container in '$out'" >>"$journal"
				return 1
			}
			echo "ok $name add ${BASH_REMATCH[1]} $state $function $backend" >>"$journal"
		else
			echo "ok $name $op" >>"$journal"
		fi
		return 0
	fi
	if [[ $err =~ $ERROR_RE ]]; then
		echo "refused $name $op ${err//$'\n'/ }" >>"$journal"
	else
		echo "unsure $name $op ${state:-} ${function:-} ${backend:-}" >>"$journal"
	fi
	return 1
}

# What an answered change makes of a container.
after_op() {
	case $1 in
	up) echo warm ;;
	drain) echo draining ;;
	idle | del) echo gone ;;
	esac
}

# Random changes until tetherd stops answering (or 3000 changes); run in the
# background, with the model as it was when it started (a copy: a subshell).
burst() {
	local journal=$1 round=$2 i=0 name op live r
	RANDOM=$((SEED * 1000 + round))
	while ((i < 3000)); do
		live=()
		for name in "${!M_STATE[@]}"; do
			[[ ${M_STATE[$name]} != gone ]] && live+=("$name")
		done
		r=$((RANDOM % 100))
		if ((${#live[@]} < 4 || (${#live[@]} < MAX_LIVE && r < 35))); then
			name=r${round}n$i
			local function=${FUNCTIONS[RANDOM % ${#FUNCTIONS[@]}]}
			local backend=${BACKENDS[RANDOM % ${#BACKENDS[@]}]}
			local state=starting
			((RANDOM % 100 < 65)) && state=warm
			change "$journal" "$name" add "$function" "$backend" "$state" || return 0
			M_STATE[$name]=$state
			[[ $(tail -n1 "$journal") =~ $ADDED_RE ]] && M_SLOT[$name]=${BASH_REMATCH[1]}
		else
			name=${live[RANDOM % ${#live[@]}]}
			r=$((RANDOM % 100))
			case ${M_STATE[$name]} in
			starting) if ((r < 60)); then op=up; elif ((r < 80)); then op=drain; else op=del; fi ;;
			warm) if ((r < 55)); then op=drain; else op=del; fi ;;
			draining) if ((r < 50)); then op=idle; else op=del; fi ;;
			esac
			((${#live[@]} < MAX_LIVE)) || [[ $op != up && $op != drain ]] || op=del
			change "$journal" "$name" "$op" || return 0
			M_STATE[$name]=$(after_op "$op")
		fi
		i=$((i + 1))
	done
}

# The parent's model follows the journal; an unsure change is settled by what
# tetherd shows after the restart (see settle).
UNSURE=""
apply_journal() {
	local journal=$1 kind name op rest
	UNSURE=""
	[[ -f $journal ]] || return 0
	while read -r kind name op rest; do
		case $kind in
		ok)
			if [[ $op == add ]]; then
				read -r M_SLOT[$name] M_STATE[$name] M_FUNC[$name] M_BACKEND[$name] <<<"$rest"
			else
				M_STATE[$name]=$(after_op "$op")
			fi
			CHANGES=$((CHANGES + 1))
			;;
		refused) fail "tetherd refused '$op' of $name, which the model allows: $rest" ;;
		unsure) UNSURE="$name $op $rest" ;;
		esac
	done <"$journal"
}

# After a restart: `container list` must hold exactly the model (an unsure
# change may have happened or not, but whole).
settle() {
	local list name slot state function backend seen=" " u_name u_op u_state u_function u_backend
	read -r u_name u_op u_state u_function u_backend <<<"$UNSURE"
	list=$(e2e_ctl --json container list | jq -r '.[] | "\(.name) \(.container) \(.state) \(.function) \(.backend)"')
	while read -r name slot state function backend; do
		[[ -n $name ]] || continue
		seen+="$name "
		if [[ $name == "$u_name" && $u_op == add ]]; then
			expect_eq "$name (added without an answer): function" "$function" "$u_function"
			expect_eq "$name (added without an answer): backend" "$backend" "$u_backend"
			expect_eq "$name (added without an answer): state" "$state" "$u_state"
			M_SLOT[$name]=$slot M_STATE[$name]=$state M_FUNC[$name]=$function M_BACKEND[$name]=$backend
			UNSURE_HAPPENED=$((UNSURE_HAPPENED + 1))
			continue
		fi
		[[ -n ${M_STATE[$name]:-} && ${M_STATE[$name]} != gone ]] || {
			[[ $name == "$u_name" ]] || fail "container $name (slot $slot, $state) is listed but the driver never added it or saw it go"
		}
		if [[ $name == "$u_name" ]]; then
			# up, drain, idle or del without an answer: before or after, whole
			if [[ $state != "${M_STATE[$name]}" ]]; then
				expect_eq "$name after an unanswered $u_op" "$state" "$(after_op "$u_op")"
				UNSURE_HAPPENED=$((UNSURE_HAPPENED + 1))
			fi
			M_STATE[$name]=$state
		else
			expect_eq "state of $name" "$state" "${M_STATE[$name]}"
		fi
		expect_eq "slot of $name" "$slot" "${M_SLOT[$name]}"
		expect_eq "function of $name" "$function" "${M_FUNC[$name]}"
		expect_eq "backend of $name" "$backend" "${M_BACKEND[$name]}"
	done <<<"$list"
	for name in "${!M_STATE[@]}"; do
		[[ ${M_STATE[$name]} == gone || $seen == *" $name "* ]] && continue
		if [[ $name == "$u_name" && ($u_op == idle || $u_op == del) ]]; then
			M_STATE[$name]=gone
			UNSURE_HAPPENED=$((UNSURE_HAPPENED + 1))
			continue
		fi
		fail "container $name (${M_STATE[$name]}, slot ${M_SLOT[$name]}) was forgotten: tetherd does not list it"
	done
	if [[ $u_op == add && $seen != *" $u_name "* ]]; then
		M_STATE[$u_name]=gone # never made
	fi
	# tetherd's own view agrees: warm containers per function (function list)
	local f want="" got=""
	for f in "${FUNCTIONS[@]}"; do
		local n=0
		for name in "${!M_STATE[@]}"; do
			[[ ${M_STATE[$name]} == warm && ${M_FUNC[$name]} == "$f" ]] && n=$((n + 1))
		done
		((n == 0)) || want+="$f:$n "
	done
	got=$(e2e_ctl --json function list | jq -r '[.[] | select(.warm > 0) | "\(.function):\(.warm)"] | sort | join(" ")')
	expect_eq "warm containers by function (function list)" "$got" "${want% }"
}

# Where tetherd is now, from its kernel stack: swap (in the pools update,
# waiting for readers), idle (epoll), other.
where_is() {
	local stack=""
	read -r -d '' stack 2>/dev/null <"/proc/$1/stack" || true
	if [[ $stack == *bpf_map_do_batch* && $stack == *synchronize_rcu* ]]; then
		echo swap
	elif [[ $stack == *ep_poll* || $stack == *do_epoll_wait* ]]; then
		echo idle
	else
		echo other
	fi
}

journal_lines() {
	local lines=()
	[[ -f $1 ]] && mapfile -t lines <"$1"
	echo "${#lines[@]}"
}

test_kill9_lifecycle() {
	local round pid journal burst_pid where deadline delay check wanted
	local -A kills_at=([swap]=0 [idle]=0 [other]=0)
	CHANGES=0 UNSURE_HAPPENED=0
	local unsure_count=0 started
	RANDOM=$SEED
	started=$(now_ms)
	echo "#   seed $SEED, $KILLS kills"
	for ((round = 1; round <= KILLS; round++)); do
		pid=$(e2e_tetherd_pid)
		journal=$E2E_LOG_DIR/journal.$round
		burst "$journal" "$round" &
		burst_pid=$!
		# a few answered changes first (2..12), then a random moment
		wanted=$((2 + RANDOM % 11))
		deadline=$(($(now_ms) + 3000))
		while (($(journal_lines "$journal") < wanted && $(now_ms) < deadline)); do
			sleep 0.005
		done
		delay=$((RANDOM % 30))
		sleep "0.$(printf '%03d' "$delay")"
		# odd rounds aim at the next moment tetherd is inside a pool swap
		# (within 2 s): the grace period's wait may last microseconds, too
		# short for the shell to see and then kill
		if ((round % 2)) && "$KILL_IN_STACK" --pid "$pid" --within-ms 2000 \
			bpf_map_do_batch synchronize_rcu >/dev/null; then
			where=swap
		else
			where=$(where_is "$pid")
		fi
		e2e_tetherd_stop KILL
		kills_at[$where]=$((kills_at[$where] + 1))
		wait "$burst_pid" || true
		e2e_tetherd_start
		apply_journal "$journal"
		[[ -n $UNSURE ]] && unsure_count=$((unsure_count + 1))
		settle
		check=$(e2e_check_pins) || fail "round $round (killed at $where): the pinned maps are inconsistent:
$(sed 's/^/#     /' <<<"$check")"
	done
	local live=0 warm=0 name
	for name in "${!M_STATE[@]}"; do
		[[ ${M_STATE[$name]} != gone ]] && live=$((live + 1))
		[[ ${M_STATE[$name]} == warm ]] && warm=$((warm + 1))
	done
	echo "#   $KILLS kills with SIGKILL: ${kills_at[swap]} inside a pool swap, ${kills_at[idle]} idle, ${kills_at[other]} elsewhere"
	echo "#   $CHANGES answered changes, none lost; $unsure_count unanswered ($UNSURE_HAPPENED of them had happened, whole)"
	echo "#   at the end: $live containers ($warm warm); $(e2e_check_pins)"
	echo "#   $(($(now_ms) - started)) ms"
	expect_eq "tetherd adoptions in its log" "$(grep -c 'adopted the maps pinned' "$E2E_TETHERD_LOG")" "$KILLS"
	if [[ -r /proc/self/stack ]]; then
		expect_ge "kills inside a pool swap" "${kills_at[swap]}" 1
	else
		echo "#   (no /proc/PID/stack here: kills are not classified)"
	fi
}

# --- 2. routing after the kills ------------------------------------------------------

test_routing_after_kills() {
	local f out list line slot by backend warm total=0
	list=$(e2e_ctl --json container list)
	for f in "${FUNCTIONS[@]}"; do
		warm=$(jq --argjson f "$f" '[.[] | select(.function == $f and .state == "warm")] | length' <<<"$list")
		# without warm containers the slow path holds requests for 1 s
		out=$(e2e_load --function "$f" --count 150 --sessions 15 --key $((f * 1000)) --rate 3000 \
			--timeout-ms 2500 --per-container)
		echo "#   function $f ($warm warm): $(head -n1 <<<"$out" | cut -d' ' -f1-7)"
		if ((warm == 0)); then
			expect_eq "function $f without warm containers: no_capacity" "$(e2e_field "$out" no_capacity)" 150
			continue
		fi
		expect_eq "function $f: lost" "$(e2e_field "$out" lost)" 0
		expect_eq "function $f: ok" "$(e2e_field "$out" ok)" 150
		while read -r line; do
			[[ $line == container=* ]] || continue
			slot=$(e2e_field "$line" container)
			by=$(e2e_field "$line" served_by)
			backend=$(jq -r --argjson s "$slot" --argjson f "$f" \
				'.[] | select(.container == $s and .function == $f and .state == "warm") | .backend' <<<"$list")
			[[ -n $backend ]] || fail "function $f: slot $slot served, but it is no warm container of $f"
			expect_eq "backend that served slot $slot" "$by" "$backend"
		done <<<"$out"
		total=$((total + 150))
	done
	echo "#   $total requests after the kills, all answered by warm containers of their function"
}

# --- agents, and load in chunks -------------------------------------------------------

# Fresh VM agents on vm1 and vm2, with two warm containers each of
# AGENT_FUNCTION, whatever an earlier test left: the echo backends (and the
# driver's containers with their backends) go the first time, earlier agents
# are killed and their backends removed.
# Fresh agents on vm1 and vm2; $1: their heartbeat (HEARTBEAT_MS).
agents_fresh() {
	local vm heartbeat_ms=${1:-$HEARTBEAT_MS}
	for vm in vm1 vm2; do
		e2e_backend_stop "$vm"
		[[ -z $(e2e_agent_pid "$vm") ]] || e2e_agent_kill "$vm"
		e2e_ctl backend del "$vm" >/dev/null 2>&1 || true
		e2e_agent_start "$vm" --function "$AGENT_FUNCTION:2" --handler served-by \
			--heartbeat-ms "$heartbeat_ms" --cold-start-ms 100
	done
	e2e_agent_wait_warm vm1 2
	e2e_agent_wait_warm vm2 2
}

# Load in back-to-back chunks until the file STOP exists or the test's shell
# PARENT is gone. Even chunks use the same keys all along, KEYS..KEYS+9 (their
# affinities outlive containers), odd ones fresh keys above (spread over the
# pools): every test its own KEYS. One line per chunk, "START_MS END_MS
# summary", and its container= lines likewise.
chunks() {
	local out=$1 stop=$2 parent=$3 keys=$4 t result n=0 key
	while [[ ! -e $stop ]] && kill -0 "$parent" 2>/dev/null; do
		if ((n % 2)); then key=$((keys + 1000 + n * 10)); else key=$keys; fi
		n=$((n + 1))
		t=$(now_ms)
		result=$(e2e_load --function "$AGENT_FUNCTION" --count 30 --rate 300 --sessions 10 \
			--key "$key" --token-follow --timeout-ms 300 --per-container 2>&1) || true
		sed "s/^/$t $(now_ms) /" <<<"$result" >>"$out"
	done
}

# Also records tetherd's events meanwhile ($E2E_LOG_DIR/events.NAME, kept
# with the logs when a test fails).
chunks_start() {
	CHUNKS=$E2E_LOG_DIR/chunks.$1
	rm -f "$CHUNKS" "$CHUNKS.stop"
	local parent=$BASHPID
	chunks "$CHUNKS" "$CHUNKS.stop" "$parent" "$2" &
	CHUNKS_PID=$!
	e2e_ctl watch >>"$E2E_LOG_DIR/events.$1" 2>&1 &
	WATCH_PID=$!
	e2e_track "$WATCH_PID"
}

chunks_stop() {
	touch "$CHUNKS.stop"
	wait "$CHUNKS_PID" || true
	kill "$WATCH_PID" 2>/dev/null || true
	wait "$WATCH_PID" 2>/dev/null || true
}

# The awk condition of chunks wholly inside [a, b) ms.
INSIDE='$1 >= a && $2 <= b'

# Sums a field over the chunks wholly inside [from, to).
chunk_sum() {
	local field=$1 from=$2 to=$3
	awk -v f="$field" -v a="$from" -v b="$to" "
		\$3 ~ /^sent=/ && $INSIDE {
			for (i = 3; i <= NF; i++) { split(\$i, kv, \"=\"); if (kv[1] == f) s += kv[2] } }
		END { print s + 0 }" "$CHUNKS"
}

chunk_count() {
	awk -v a="$1" -v b="$2" "\$3 ~ /^sent=/ && $INSIDE { n++ } END { print n + 0 }" "$CHUNKS"
}

# Requests served by a VM (the agent names its containers VM-N) in the
# chunks wholly inside [from, to).
served_by() {
	awk -v vm="$1" -v a="$2" -v b="$3" "
		\$3 ~ /^container=/ && $INSIDE && \$5 ~ (\"^served_by=\" vm \"-\") {
			split(\$4, kv, \"=\"); s += kv[2] }
		END { print s + 0 }" "$CHUNKS"
}

# The figures of a window, for the log.
window() {
	local label=$1 from=$2 to=$3
	echo "#   $label: $(chunk_count "$from" "$to") chunks, sent=$(chunk_sum sent "$from" "$to") lost=$(chunk_sum lost "$from" "$to") ok=$(chunk_sum ok "$from" "$to") container_gone=$(chunk_sum container_gone "$from" "$to") no_capacity=$(chunk_sum no_capacity "$from" "$to"), by vm1 $(served_by vm1 "$from" "$to"), by vm2 $(served_by vm2 "$from" "$to")"
}

# Every chunk of the run, those across the events too.
window_all() {
	window "all chunks of the run" 0 99999999999999
}

# In [from, to): chunks ran, every request answered OK.
expect_clean() {
	local label=$1 from=$2 to=$3 sent
	sent=$(chunk_sum sent "$from" "$to")
	expect_ge "$label: requests sent" "$sent" 1
	expect_eq "$label: lost" "$(chunk_sum lost "$from" "$to")" 0
	expect_eq "$label: CONTAINER_GONE (a request reached a dead container)" \
		"$(chunk_sum container_gone "$from" "$to")" 0
	expect_eq "$label: ok" "$(chunk_sum ok "$from" "$to")" "$sent"
}

# --- 3. a backend that flaps ---------------------------------------------------------------

test_backend_flap() {
	local t0 t1 t2 end state
	agents_fresh
	chunks_start flap 1000000
	sleep 1
	t0=$(now_ms)
	e2e_agent_pause vm1
	sleep $(((HEARTBEAT_MS + 1000) / 1000)).$(((HEARTBEAT_MS + 1000) % 1000 / 100))
	state=$(e2e_ctl --json backend list | jq -r '.[] | select(.backend == "vm1") | .state')
	t1=$(now_ms)
	e2e_agent_resume vm1
	# Every other chunk sends the same keys, learned on vm2 while vm1 was
	# down, and they stay there (a key keeps its live container): only the
	# chunks of new keys can reach vm1. The 3 s after RESUME_MS hold two
	# whole chunks or more (a chunk takes up to 0.9 s sanitized), one of
	# them of new keys.
	sleep 4
	end=$(now_ms)
	chunks_stop
	t2=$((t1 + RESUME_MS))
	window "before the pause" 0 "$t0"
	window "vm1 down, after convergence (${CONVERGE_MS} ms)" $((t0 + CONVERGE_MS)) "$t1"
	window "vm1 resumed, heartbeating again (${RESUME_MS} ms)" "$t2" "$end"
	window_all
	expect_eq "vm1's state a second past its heartbeat deadline" "$state" down
	expect_clean "before the pause" 0 "$t0"
	expect_clean "vm1 down, after convergence" $((t0 + CONVERGE_MS)) "$t1"
	expect_eq "requests served by vm1 while down" "$(served_by vm1 $((t0 + CONVERGE_MS)) "$t1")" 0
	expect_clean "after vm1 resumed and converged" "$t2" "$end"
	expect_ge "requests served by vm1 after it came back" "$(served_by vm1 "$t2" "$end")" 1
	expect_eq "CONTAINER_GONE in the whole run" "$(chunk_sum container_gone 0 "$end")" 0
	expect_eq "vm1's state at the end" \
		"$(e2e_ctl --json backend list | jq -r '.[] | select(.backend == "vm1") | .state')" up
}

# --- 4. an agent that restarts ---------------------------------------------------------

# The slots of backend NAME's containers, sorted, on one line.
slots_on() {
	e2e_ctl --json container list --backend "$1" | jq -r '[.[].container] | sort | join(" ")'
}

# Their tokens (a slot is reused at once; a token never).
tokens_on() {
	e2e_ctl --json container list --backend "$1" | jq -r '[.[].token] | sort | join(" ")'
}

test_agent_restart() {
	local t0 t_known t_warm end old new token still deadline
	agents_fresh
	old=$(tokens_on vm1)
	chunks_start restart 2000000
	sleep 1
	t0=$(now_ms)
	e2e_agent_kill vm1
	e2e_agent_start vm1 --function "$AGENT_FUNCTION:2" --handler served-by \
		--heartbeat-ms "$HEARTBEAT_MS" --cold-start-ms 100
	# tetherd knows the old containers are gone when it no longer lists them
	deadline=$(($(now_ms) + 5000))
	while :; do
		still=0
		new=$(tokens_on vm1)
		for token in $old; do
			[[ " $new " == *" $token "* ]] && still=1
		done
		((still && $(now_ms) < deadline)) || break
	done
	t_known=$(now_ms)
	((still == 0)) || fail "the old containers of vm1 ($old) are still listed 5 s after the restart"
	e2e_agent_wait_warm vm1 2
	t_warm=$(now_ms)
	sleep 1.5
	end=$(now_ms)
	chunks_stop
	echo "#   old containers of vm1 (tokens): $old; new: $(tokens_on vm1); old ones gone at tetherd after $((t_known - t0)) ms, new ones warm after $((t_warm - t0)) ms"
	window "before" 0 "$t0"
	window "after tetherd knew the old containers gone" "$t_known" "$end"
	window "after the new containers were warm" "$t_warm" "$end"
	window_all
	expect_clean "before the restart" 0 "$t0"
	expect_eq "CONTAINER_GONE once tetherd knew the old containers gone" \
		"$(chunk_sum container_gone "$t_known" "$end")" 0
	expect_clean "after the new containers are warm" "$t_warm" "$end"
	expect_ge "requests served by the restarted vm1" "$(served_by vm1 "$t_warm" "$end")" 1
	expect_eq "containers of vm1 after the restart" "$(wc -w <<<"$(slots_on vm1)")" 2
}

# --- 5. tetherd killed under agents and traffic ---------------------------------------------

test_kill9_with_agents() {
	local t0 t1 end before after check states
	# While tetherd is down the agents cannot heartbeat: it stays down longer
	# than their deadline, and the restart grace in the map's deadlines
	# (tetherd --restart-grace-ms, 15 s) keeps their VMs in the routing.
	agents_fresh
	before=$(e2e_ctl --json container list | jq -c 'sort_by(.container)')
	chunks_start kill9 3000000
	sleep 1
	t0=$(now_ms)
	e2e_tetherd_stop KILL
	sleep "$((HEARTBEAT_MS + 500))e-3"
	e2e_tetherd_start
	t1=$(now_ms)
	sleep "$((HEARTBEAT_MS + 500))e-3" # the adopted deadlines pass unless they heartbeat
	end=$(now_ms)
	chunks_stop
	echo "#   tetherd killed and back in $((t1 - t0)) ms (the agents' deadline: $HEARTBEAT_MS ms)"
	window_all
	expect_clean "the whole run (the data plane forwards without tetherd)" 0 "$end"
	states=$(e2e_ctl --json backend list | jq -r '[.[] | "\(.backend):\(.state)"] | sort | join(" ")')
	expect_eq "backends after the restart" "$states" "vm1:up vm2:up"
	after=$(e2e_ctl --json container list | jq -c 'sort_by(.container)')
	expect_eq "containers after the restart" "$after" "$before"
	check=$(e2e_check_pins) || fail "pins inconsistent: $check"
	echo "#   $check"
}

# --- 6. a VM that vanishes ----------------------------------------------------------------

test_vm_vanishes() {
	local t0 end state
	agents_fresh
	chunks_start vanish 4000000
	sleep 1
	t0=$(now_ms)
	e2e_agent_kill vm1
	sleep 3.5
	end=$(now_ms)
	chunks_stop
	state=$(e2e_ctl --json backend list | jq -r '.[] | select(.backend == "vm1") | .state')
	window "before" 0 "$t0"
	window "after convergence (${CONVERGE_MS} ms)" $((t0 + CONVERGE_MS)) "$end"
	window_all
	expect_eq "vm1's state" "$state" down
	expect_clean "before" 0 "$t0"
	expect_clean "after convergence" $((t0 + CONVERGE_MS)) "$end"
	expect_eq "requests served by vm1 after convergence" "$(served_by vm1 $((t0 + CONVERGE_MS)) "$end")" 0
	expect_eq "CONTAINER_GONE in the whole run" "$(chunk_sum container_gone 0 "$end")" 0
	local check
	check=$(e2e_check_pins) || fail "pins inconsistent: $check"
	echo "#   $check"
}

# --- runner ------------------------------------------------------------------------

TESTS=(kill9_lifecycle routing_after_kills backend_flap agent_restart kill9_with_agents vm_vanishes)

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	e2e_init
	[[ -x $E2E_BUILD/tools/check_pins ]] || e2e_die "$E2E_BUILD/tools/check_pins is missing: run 'make' first"
	[[ -x $KILL_IN_STACK ]] || e2e_die "$KILL_IN_STACK is missing: run 'make' first"
	[[ -x $E2E_AGENT ]] || e2e_die "$E2E_AGENT is missing: run 'make' first"
	e2e_topology
	e2e_tetherd_start
	e2e_backend_start vm1
	e2e_backend_start vm2
	e2e_backend_add vm1 --heartbeat-ms 1h >/dev/null
	e2e_backend_add vm2 --heartbeat-ms 1h >/dev/null
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
