#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Convergence: how long after a container or a VM leaves do the requests of
# a routing key pinned to it reach another container, seen from the client,
# on the end-to-end rig (tests/e2e/lib.sh) with the real VM agents.
#
#   tools/bench_converge.sh [--quick] [--json FILE] [--trials N] [--rate R]
#                           [--heartbeat-ms N]
#
#   client ──▶ router (tetherd, XDP) ──▶ vm1, vm2 (tether-agent each:
#                                        containers of function 1, served-by)
#
# A trial: tools/udp_load sends one routing key at a steady rate (2,000
# requests/s) and records every request (--trace: send time, answer time,
# status, the container that answered). Once the key has its container
# (tetherctl affinity show), that container goes, one of three ways:
#   container del   `tetherctl container del SLOT` (at once, no drain)
#   backend del     `tetherctl backend del VM` of the VM holding it (its
#                   containers go at once, no drain)
#   VM killed       SIGKILL to that VM's agent and its container processes:
#                   nothing tells tetherd; the router stops sending to the VM
#                   when its heartbeat deadline passes (the agent heartbeats
#                   every third of it, so expect 2/3 to 1 times the deadline)
#   VM killed, data-plane liveness
#                   the same with the agents' heartbeat time 150 ms: ALIVE
#                   datagrams to the router's completion address every 50 ms
#                   move the deadline in the XDP program itself (docs/protocol.md,
#                   "Completions and liveness"); target under 200 ms
# and the trial measures, from the client's traces: the time from the
# command's start and from its return (for the kill: right after it) to the
# first answer from another container; the requests sent from the
# start of the event up to that first rerouted request that got no answer in
# time (lost) or an answer other than OK (failed; CONTAINER_GONE for a request
# already stamped for the container the agent has just stopped). A negative
# time from the return means the switch was seen before tetherctl returned
# (tetherd answers once the change is in the maps). Each kind runs --trials
# times (median and range in the table, every trial in the JSON); after each
# trial the VM's agent is restarted (stopped or killed, started again, its
# containers warm), so every trial starts from the same rig.
# Full: 3 trials each (about 50 s); --quick: 1 trial each (about 20 s).
# Prints a table and, with --json FILE, writes the same as JSON. Needs root.
# Exit status: 0 measured; 1 when the rig failed or a request was answered
# wrongly (an invalid reply, or the key left its container before the event).
set -euo pipefail

E2E_QUIET=1
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"

TRIALS=3 RATE=2000 HEARTBEAT_MS=1000 JSON=
ALIVE_HEARTBEAT_MS=150 # the data-plane liveness trials' heartbeat time
COMPLETION=203.0.113.1:7700
FUNCTION=1
PER_VM=2         # containers of function 1 on each VM
LEAD_MS=700      # load before the event
TAIL_MS=1000     # load after the expected switch
COLD_START_MS=100
KEY_BASE=$((700000 + RANDOM))

bench_die() {
	echo "bench_converge: FATAL: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--quick) TRIALS=1 ;;
	--json) JSON=${2:?--json FILE}; shift ;;
	--trials) TRIALS=${2:?--trials N}; shift ;;
	--rate) RATE=${2:?--rate R}; shift ;;
	--heartbeat-ms) HEARTBEAT_MS=${2:?--heartbeat-ms N}; shift ;;
	-h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) bench_die "unknown option $1 (see --help)" ;;
	esac
	shift
done
[[ $TRIALS =~ ^[1-9][0-9]*$ && $RATE =~ ^[1-9][0-9]*$ && $HEARTBEAT_MS =~ ^[1-9][0-9]*$ ]] ||
	bench_die "--trials, --rate and --heartbeat-ms take positive whole numbers"
[[ $(id -u) -eq 0 ]] || bench_die "needs root (network namespaces, XDP, bpffs); run it as root"
[[ -z $JSON ]] || JSON=$(realpath -m "$JSON")

# ------------------------------------------------------------------ the rig

agent_start() {
	e2e_agent_start "$1" --function "$FUNCTION:$PER_VM" --handler served-by \
		--heartbeat-ms "${AGENT_HEARTBEAT_MS:-$HEARTBEAT_MS}" --cold-start-ms "$COLD_START_MS"
}

# Both VMs up with all their containers warm again.
wait_all_warm() {
	e2e_agent_wait_warm vm1 "$PER_VM"
	e2e_agent_wait_warm vm2 "$PER_VM"
}

# The rig as before a trial: VM NAME's agent started afresh (its containers
# were deleted or it was killed: the agent does not replace those).
agent_restart() {
	e2e_agent_stop "$1"
	agent_start "$1"
	wait_all_warm
}

now_us() {
	echo "${EPOCHREALTIME/./}"
}

# ------------------------------------------------------------------ a trial

# The container the key is bound to, once it is (waits up to 2 s).
key_container() {
	local key=$1 i slot
	for ((i = 0; i < 200; i++)); do
		slot=$(e2e_ctl --json affinity show --function "$FUNCTION" --key "$key" 2>/dev/null |
			jq -r 'select(.state == "warm") | .container' 2>/dev/null) || slot=""
		[[ -n $slot ]] && { echo "$slot"; return 0; }
		sleep 0.01
	done
	bench_die "key $key got no container within 2 s (is the load running? see $E2E_LOG_DIR)"
}

# One trial of EVENT (container_del, backend_del, vm_killed), number N: one
# JSON line in $TMP/trials.jsonl.
trial() {
	local event=$1 n=$2 key=$((KEY_BASE + ${#TRIAL_KEYS[@]})) name=$1-$2 switch_ms=200 seconds
	local slot backend started_us start_us end_us
	TRIAL_KEYS+=("$key")
	[[ $event != vm_killed ]] || switch_ms=$HEARTBEAT_MS
	[[ $event != vm_killed_alive ]] || switch_ms=$ALIVE_HEARTBEAT_MS
	seconds=$(((LEAD_MS + switch_ms + TAIL_MS + 999) / 1000))
	started_us=$(now_us)
	e2e_load_bg "$TMP/$name.json" --function "$FUNCTION" --key "$key" --rate "$RATE" \
		--duration-s "$seconds" --timeout-ms 1000 --json --trace "$TMP/$name.trace"
	slot=$(key_container "$key")
	backend=$(e2e_ctl --json container list | jq -r --argjson s "$slot" '.[] | select(.container == $s) | .backend')
	sleep "$(awk -v t="$((started_us + LEAD_MS * 1000 - $(now_us)))" 'BEGIN { printf "%.3f", (t > 0 ? t / 1e6 : 0) }')"
	case $event in
	container_del)
		start_us=$(now_us)
		e2e_ctl container del "$slot" >/dev/null || bench_die "tetherctl container del $slot failed"
		end_us=$(now_us)
		;;
	backend_del)
		start_us=$(now_us)
		e2e_ctl backend del "$backend" >/dev/null || bench_die "tetherctl backend del $backend failed"
		end_us=$(now_us)
		;;
	vm_killed | vm_killed_alive)
		e2e_agent_kill "$backend"
		start_us=$((E2E_KILLED_AT_NS / 1000)) end_us=$start_us
		;;
	esac
	e2e_load_wait "$TMP/$name.json" >/dev/null
	LAST_BACKEND=$backend
	jq -e . "$TMP/$name.json" >/dev/null 2>&1 || bench_die "udp_load failed: $(head -c 300 "$TMP/$name.json")"
	# From the trace: the first answer from another container, and what
	# failed from the start of the event up to the request it answered.
	awk -v old="$slot" -v start="$start_us" -v end="$end_us" '
		{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
		f["status"] == "ok" && f["container"] != old && (first == "" || f["answered_us"] < first) {
			first = f["answered_us"]; first_sent = f["sent_us"]; to = f["container"] }
		f["status"] == "ok" && f["container"] == old && f["sent_us"] >= end { old_after++ }
		f["status"] == "ok" && f["container"] != old && f["sent_us"] < start { early++ }
		{ sent[NR] = f["sent_us"]; status[NR] = f["status"] }
		END {
			for (i = 1; i <= NR; i++) {
				if (sent[i] < start || (first != "" && sent[i] > first_sent)) continue
				if (status[i] == "lost") lost++
				else if (status[i] != "ok") failed++
			}
			printf "{\"first_other_answer_us\":%s,\"first_other_sent_us\":%s,\"to_container\":%s,\"lost\":%d,\"failed\":%d,\"old_after_return\":%d,\"moved_early\":%d}\n",
				first == "" ? "null" : first, first == "" ? "null" : first_sent, to == "" ? "null" : to,
				lost, failed, old_after, early }' "$TMP/$name.trace" >"$TMP/$name.trial"
	jq -c --arg event "$event" --argjson n "$n" --argjson key "$key" --argjson from "$slot" \
		--arg backend "$backend" --argjson began "$start_us" --argjson returned "$end_us" \
		--slurpfile load "$TMP/$name.json" '
		. + {event: $event, trial: $n, key: $key, from_container: $from, from_backend: $backend,
		     command_ms: (($returned - $began) / 1000),
		     converge_ms: (if .first_other_answer_us then (.first_other_answer_us - $returned) / 1000 else null end),
		     converge_from_start_ms: (if .first_other_answer_us then (.first_other_answer_us - $began) / 1000 else null end),
		     load: $load[0]}' "$TMP/$name.trial" | tee -a "$TMP/trials.jsonl" |
		jq -r '"bench_converge: \(.event) \(.trial): key \(.key) on container \(.from_container) (\(.from_backend)); " +
			(if .converge_ms then "container \(.to_container) answered \(.converge_ms) ms after; command \(.command_ms) ms; lost \(.lost), failed \(.failed)"
			 else "no other container answered" end)' >&2
	# The rig failed, or requests were answered wrongly.
	jq -e '.first_other_answer_us != null' "$TMP/$name.trial" >/dev/null ||
		bench_die "$event trial $n: no other container answered key $key within the run (logs: $E2E_LOG_DIR)"
	jq -e '.invalid == 0' "$TMP/$name.json" >/dev/null || WRONG+=("$event $n: invalid answers")
	jq -e '.moved_early == 0' "$TMP/$name.trial" >/dev/null ||
		WRONG+=("$event $n: key $key left container $slot before the event")
}

# ------------------------------------------------------------------ main

main() {
	local event n
	e2e_init
	TMP=$E2E_LOG_DIR
	WRONG=() TRIAL_KEYS=()
	: >"$TMP/trials.jsonl"
	e2e_topology
	# XDP on the VMs' links too, for their ALIVE and DONE datagrams.
	E2E_TETHERD_IFACES+=("$E2E_IF_R1" "$E2E_IF_R2")
	e2e_tetherd_start --completion "$COMPLETION"
	agent_start vm1
	agent_start vm2
	wait_all_warm
	echo "bench_converge: $E2E_ID: $PER_VM containers of function $FUNCTION on vm1 and on vm2; $RATE requests/s on one key; heartbeat deadline $HEARTBEAT_MS ms; $TRIALS trial(s) each" >&2
	LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
	for event in container_del backend_del vm_killed vm_killed_alive; do
		if [[ $event == vm_killed_alive ]]; then
			AGENT_HEARTBEAT_MS=$ALIVE_HEARTBEAT_MS
			agent_restart vm1
			agent_restart vm2
		fi
		for ((n = 1; n <= TRIALS; n++)); do
			trial "$event" "$n"
			agent_restart "$LAST_BACKEND"
		done
	done

	LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
	jq -s --argjson load_start "$LOAD_START" --argjson load_end "$LOAD_END" --argjson trials "$TRIALS" --argjson rate "$RATE" --argjson hb "$HEARTBEAT_MS" \
		--argjson per_vm "$PER_VM" --argjson lead "$LEAD_MS" '
		def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
			else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		{config: {trials: $trials, rate: $rate, heartbeat_ms: $hb, heartbeat_every_ms: ($hb / 3 | floor),
			  containers_per_vm: $per_vm, vms: 2, cpus: '"$(nproc)"',
			  loadavg_1min_start: $load_start, loadavg_1min_end: $load_end, load_before_event_ms: $lead, handler: "served-by",
			  method: "one routing key at a steady rate (udp_load --trace); converge_ms = first answer from another container minus the command return (the kill for vm_killed), converge_from_start_ms the same from the command start, on the client clock (wall clock, one machine); lost/failed = requests sent from the event start up to the first rerouted one without an answer in time / with a status other than OK"},
		 rows: (group_by(.event) | map({event: .[0].event,
			what: ({container_del: "tetherctl container del", backend_del: "tetherctl backend del (no drain)",
				vm_killed: "VM agent SIGKILLed (heartbeat expiry)",
				vm_killed_alive: "VM killed, ALIVE every 50 ms (deadline 150)"}[.[0].event]),
			trials: length,
			converge_ms_median: (map(.converge_ms) | median), converge_ms_min: (map(.converge_ms) | min),
			converge_ms_max: (map(.converge_ms) | max),
			converge_from_start_ms_median: (map(.converge_from_start_ms) | median),
			command_ms_median: (map(.command_ms) | median),
			lost_median: (map(.lost) | median), lost_total: (map(.lost) | add),
			failed_median: (map(.failed) | median), failed_total: (map(.failed) | add),
			runs: map(del(.load.per_container))})
			| sort_by({backend_del: 1, vm_killed: 2, vm_killed_alive: 3, container_del: 0}[.event]))}' \
		"$TMP/trials.jsonl" >"$TMP/result.json"

	{
		printf '\nConvergence, seen from the client: %s requests/s on one routing key, pinned to the\n' "$RATE"
		printf 'container that goes; 2 VMs with %s containers each (tether-agent); %s trial(s) each\n' \
			"$PER_VM" "$TRIALS"
		printf 'until the first answer from another container, ms from the command start and return (the\n'
		printf 'kill); medians over the trials, the range of "from return" beside\n\n'
		printf '%-46s %6s %10s %10s %11s %16s %6s %6s\n' event trials "command ms" "from start" "from return" \
			min..max lost failed
		jq -r 'def r: . * 10 | round / 10;
			.rows[] | [.what, .trials, (.command_ms_median | r), (.converge_from_start_ms_median | r),
			(.converge_ms_median | r), "\(.converge_ms_min | r)..\(.converge_ms_max | r)", .lost_median,
			.failed_median] | map(tostring) | join("|")' "$TMP/result.json" |
			while IFS='|' read -r what trials command from_start converge range lost failed; do
				printf '%-46s %6s %10s %10s %11s %16s %6s %6s\n' "$what" "$trials" "$command" "$from_start" \
					"$converge" "$range" "$lost" "$failed"
			done
		printf '\nheartbeat deadline %s ms (agents heartbeat every %s ms): a killed VM is down %s..%s ms after the kill\n' \
			"$HEARTBEAT_MS" "$((HEARTBEAT_MS / 3))" "$((HEARTBEAT_MS - HEARTBEAT_MS / 3))" "$HEARTBEAT_MS"
		printf 'with data-plane liveness: heartbeat time %s ms, ALIVE every %s ms, the deadline moved by the XDP program\n' \
			"$ALIVE_HEARTBEAT_MS" "$((ALIVE_HEARTBEAT_MS / 3))"
		printf 'lost: no answer within 1 s; failed: answered other than OK (sent from the event start to the\n'
		printf 'first request another container answered)\n'
		printf 'machine: %s CPUs, 1-minute load average %s at the start, %s at the end\n' "$(nproc)" \
			"$LOAD_START" "$LOAD_END"
	}
	[[ -z $JSON ]] || cp "$TMP/result.json" "$JSON"
	if ((${#WRONG[@]})); then
		printf 'bench_converge: answered wrongly: %s\n' "${WRONG[@]}" >&2
		exit 1
	fi
	echo "bench_converge: done in $SECONDS s${JSON:+; JSON in $JSON}" >&2
}

main
