#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tetherd's /metrics end to end (issue 13), on lib.sh's rig (client, router,
# vm1, vm2), everything on the router namespace's own loopback:
#
#   scrape      GET /metrics: 200, the text format's content type, promtool
#               check metrics (Debian's prometheus package) finds nothing,
#               every family the README lists is there; HEAD, 404, 405
#   prometheus  a real Prometheus server (started here on a free port, a
#               scratch data dir, removed after) scrapes tetherd every second;
#               queries through its HTTP API show
#               tether_function_forwarded_requests_total and
#               tether_dataplane_decisions_total move by the requests sent,
#               and every query of the Grafana dashboard runs there
#   counting    control requests by verb, noun and result (an error too, and
#               unknown words counted together), lifecycle events by type, a
#               container's requests kept in its function's counter after it
#               has gone, the slow path's held requests
#   bounded     --metrics-functions 2 with 5 functions: 2 of their own and
#               "other", and all of them add up to the requests sent
#   user        tetherd --user (a user made here, removed after) binds
#               /metrics on a port below 1024 before it drops root, and
#               serves it afterwards
#   fleet       two routers of one fleet on a throw-away etcd: synced, the
#               watch, each router's applied revision and lag as the other
#               sees it; promtool check metrics on that output too
#   dashboard   dist/grafana-dashboard.json parses, its panels are well
#               formed, and every metric its queries name is one tetherd
#               exports (single host or fleet, from real scrapes)
#   accept_local  vm2's link without accept_local: tetherd warns, naming the
#               backend and the sysctl; with --accept-local it sets it, and
#               vm2's replies through the router come back
#   container_show  tetherctl container show has the fields of the containers
#               map's record, equal to what bpftool map lookup prints
#   many        20,000 containers: the sweep takes several turns of the loop,
#               the scrape waits for it while control requests are answered
#
#   tests/e2e/test_metrics.sh [TEST...]
#
# TAP output, then "N passed, M failed" on the last line; nonzero exit when
# a test failed.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DASHBOARD=$E2E_REPO/dist/grafana-dashboard.json
HOUR=3600000 # backends' heartbeat period: up for the whole run
F_KEYED=7    # warm on vm1
F_OTHER=8    # warm on vm2

# Every family of the README's list (single host).
FAMILIES=(tether_build_info tether_start_time_seconds tether_dataplane_decisions_total
	tether_dataplane_faults_total tether_dataplane_shed_total tether_dataplane_load_total
	tether_dataplane_completions_total tether_slowpath_held_full_total tether_backends tether_containers tether_map_entries
	tether_map_max_entries tether_functions tether_function_series tether_function_containers
	tether_function_waiting_requests tether_function_forwarded_requests_total
	tether_function_forwarded_bytes_total tether_slowpath_received_total
	tether_slowpath_held_total tether_slowpath_forwarded_total tether_slowpath_answered_total
	tether_slowpath_send_errors_total tether_slowpath_capacity_requests_total
	tether_slowpath_queue_depth tether_slowpath_queue_limit tether_lifecycle_events_total
	tether_control_requests_total tether_metrics_sweep_duration_seconds
	tether_metrics_sweep_busy_seconds tether_metrics_sweep_steps tether_metrics_sweep_entries
	tether_metrics_sweep_errors)
FLEET_FAMILIES=(tether_fleet_synced tether_fleet_watch_connected tether_fleet_applied_revision
	tether_fleet_lag_revisions tether_fleet_router_record_age_seconds tether_fleet_resyncs_total
	tether_fleet_bad_records_total tether_fleet_pending_changes)

# A TCP port no socket of the router's namespace uses (below the ephemeral
# range: e2e_random_port).
free_port() {
	local port used
	used=$(e2e_in_router ss -Hatn | awk '{print $4}' | sed 's/.*://')
	for ((;;)); do
		port=$(e2e_random_port)
		grep -qx "$port" <<<"$used" || break
	done
	echo "$port"
}

# GET URL in the router's namespace: the body on stdout; fails on HTTP errors.
get() {
	e2e_in_router curl -sS --fail --max-time 10 "$@"
}

# The rig's tetherd's /metrics (its port is in a file: tests restart tetherd
# in their subshells).
scrape() {
	get "http://127.0.0.1:$(metrics_port)/metrics"
}

metrics_port() {
	cat "$E2E_RUN_DIR/metrics_port"
}

# The value of a sample of a scrape: TEXT NAME{LABELS} (exactly as written).
sample() {
	awk -v series="$2" '$1 == series { print $2 }' <<<"$1"
}

# The families (# TYPE lines) of a scrape.
families() {
	awk '$1 == "#" && $2 == "TYPE" { print $3 }' <<<"$1" | sort -u
}

expect_promtool_clean() {
	local what=$1 text=$2 out
	if ! out=$(promtool check metrics <<<"$text" 2>&1); then
		fail "promtool check metrics on $what: $out"
	fi
	[[ -z $out ]] || fail "promtool check metrics on $what says: $out"
}

start_rig_tetherd() {
	local port
	port=$(free_port)
	echo "$port" >"$E2E_RUN_DIR/metrics_port"
	e2e_tetherd_start --metrics-listen "127.0.0.1:$port" "$@"
}

# --- scrape ------------------------------------------------------------------------

test_scrape() {
	local text headers family missing=() code
	text=$(scrape)
	headers=$(get -o /dev/null -D - "http://127.0.0.1:$(metrics_port)/metrics")
	expect_contains "content type" "$headers" "Content-Type: text/plain; version=0.0.4; charset=utf-8"
	expect_promtool_clean "tetherd's /metrics" "$text"
	for family in "${FAMILIES[@]}"; do
		grep -qx "$family" <<<"$(families "$text")" || missing+=("$family")
	done
	expect_eq "families missing" "${missing[*]}" ""
	expect_eq "families not named tether_" "$(families "$text" | grep -v '^tether_' || true)" ""
	expect_eq "build info" "$(grep -c '^tether_build_info{version="[^"]*",libbpf="v[0-9.]*",kernel="[^"]*"} 1$' <<<"$text")" 1
	expect_eq "warm containers of $F_KEYED" \
		"$(sample "$text" "tether_function_containers{function=\"$F_KEYED\",state=\"warm\"}")" 1
	code=$(e2e_in_router curl -s -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$(metrics_port)/metrics")
	expect_eq "HEAD /metrics" "$code" 200
	code=$(e2e_in_router curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(metrics_port)/other")
	expect_eq "GET /other" "$code" 404
	code=$(e2e_in_router curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$(metrics_port)/metrics")
	expect_eq "POST /metrics" "$code" 405
	echo "#   $(grep -vc '^#' <<<"$text") samples in $(families "$text" | wc -l) families, promtool clean"
}

# --- a Prometheus server ---------------------------------------------------------------

prometheus_start() {
	PROM_DIR=$(mktemp -d "/tmp/$E2E_ID-prometheus.XXXXXX")
	PROM_PORT=$(free_port)
	cat >"$PROM_DIR/prometheus.yml" <<-EOF
		global:
		  scrape_interval: 1s
		  evaluation_interval: 1s
		scrape_configs:
		  - job_name: tetherd
		    static_configs:
		      - targets: ['127.0.0.1:$(metrics_port)']
	EOF
	e2e_in_router prometheus --config.file="$PROM_DIR/prometheus.yml" \
		--storage.tsdb.path="$PROM_DIR/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
		--log.level=warn >"$E2E_LOG_DIR/prometheus.log" 2>&1 &
	PROM_PID=$!
	e2e_track_any "$PROM_PID"
	local i
	for ((i = 0; i < 100; i++)); do
		get "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1 && return 0
		e2e_alive "$PROM_PID" || break
		sleep 0.2
	done
	cat "$E2E_LOG_DIR/prometheus.log" >&2
	e2e_die "prometheus did not become ready on 127.0.0.1:$PROM_PORT"
}

prometheus_stop() {
	if [[ -n ${PROM_PID:-} ]]; then
		kill -TERM "$PROM_PID" 2>/dev/null || true
		e2e_wait_gone "$PROM_PID" 100 || kill -KILL "$PROM_PID" 2>/dev/null || true
	fi
	[[ -z ${PROM_DIR:-} ]] || rm -rf "$PROM_DIR"
}

# The API's answer to an instant query.
prom_api() {
	get -G "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1"
}

# The value of an instant query's first result (empty: none).
prom_value() {
	prom_api "$1" | jq -r '.data.result[0].value[1] // empty'
}

# Polls QUERY until its value is at least MIN (integers), up to 20 s; prints it.
prom_wait_ge() {
	local query=$1 min=$2 value i
	for ((i = 0; i < 100; i++)); do
		value=$(prom_value "$query")
		if [[ -n $value ]] && awk -v v="$value" -v m="$min" 'BEGIN { exit !(v >= m) }'; then
			echo "$value"
			return 0
		fi
		sleep 0.2
	done
	echo "${value:-none}"
	return 1
}

test_prometheus() {
	local forwarded decisions before_f before_d after_f after_d out expr bad=0 n=0
	trap prometheus_stop EXIT
	prometheus_start
	forwarded="tether_function_forwarded_requests_total{job=\"tetherd\",function=\"$F_KEYED\"}"
	decisions='sum(tether_dataplane_decisions_total{job="tetherd",decision=~"key_hit|key_new"})'
	prom_wait_ge 'up{job="tetherd"}' 1 >/dev/null || fail "prometheus never scraped tetherd up"
	before_f=$(prom_wait_ge "$forwarded" 0) || fail "prometheus has no $forwarded"
	before_d=$(prom_wait_ge "$decisions" 0) || fail "prometheus has no $decisions"
	out=$(e2e_load --function "$F_KEYED" --count 300 --key 4242 --timeout-ms 1000)
	expect_eq "answered ok" "$(e2e_field "$out" ok)" 300
	after_f=$(prom_wait_ge "$forwarded" $((before_f + 300))) ||
		fail "$forwarded went from $before_f to $after_f, not by 300"
	after_d=$(prom_wait_ge "$decisions" $((before_d + 300))) ||
		fail "$decisions went from $before_d to $after_d, not by 300"
	echo "#   through Prometheus's API: $forwarded $before_f -> $after_f, key decisions $before_d -> $after_d"
	expect_ge "increase over a minute" \
		"$(prom_value "sum(increase(tether_function_forwarded_requests_total{job=\"tetherd\",function=\"$F_KEYED\"}[1m]))" | cut -d. -f1)" 1
	# Every query of the dashboard, as Grafana would send it.
	while IFS= read -r expr; do
		n=$((n + 1))
		expr=${expr//\$__rate_interval/1m}
		expr=${expr//\$instance/.*}
		out=$(prom_api "$expr" 2>&1) || true
		if [[ $(jq -r '.status' <<<"$out" 2>/dev/null) != success ]]; then
			echo "#   the dashboard's query $expr: $out"
			bad=$((bad + 1))
		fi
	done < <(jq -r '.. | objects | .expr | strings' "$DASHBOARD")
	echo "#   the dashboard's $n queries run on Prometheus $(prometheus --version 2>&1 | head -n1 | awk '{print $3}')"
	expect_eq "dashboard queries Prometheus refused" "$bad" 0
}

# --- counting ----------------------------------------------------------------------

# A scrape whose sweep is new: a sweep serves scrapes for a second.
scrape_fresh() {
	sleep 1.1
	scrape
}

test_counting() {
	local before mid after h out
	before=$(scrape_fresh)
	e2e_raw "show container container=1048000" >/dev/null
	e2e_raw "frobnicate things" >/dev/null
	e2e_raw "bad line with no = sign" >/dev/null
	h=$(e2e_ctl --json container add --function 9 --backend vm2 --warm | jq -er '.container')
	out=$(e2e_load --function 9 --count 50 --key 99 --timeout-ms 1000)
	expect_eq "answered by function 9" "$(e2e_field "$out" ok)" 50
	mid=$(scrape_fresh)
	e2e_ctl container del "$h" >/dev/null
	# No container for function 10: held by the slow path until it gives up.
	e2e_load --function 10 --count 3 --timeout-ms 200 >/dev/null || true
	after=$(scrape_fresh)
	delta() {
		local a b
		a=$(sample "$before" "$1")
		b=$(sample "$after" "$1")
		echo $((${b:-0} - ${a:-0}))
	}
	expect_eq "show container not_found" \
		"$(delta 'tether_control_requests_total{verb="show",noun="container",result="not_found"}')" 1
	expect_eq "unknown requests" \
		"$(delta 'tether_control_requests_total{verb="unknown",noun="unknown",result="unknown_verb"}')" 1
	expect_eq "unparsed lines" \
		"$(delta 'tether_control_requests_total{verb="none",noun="none",result="bad_request"}')" 1
	expect_eq "add container ok" \
		"$(delta 'tether_control_requests_total{verb="add",noun="container",result="ok"}')" 1
	expect_eq "del container ok" \
		"$(delta 'tether_control_requests_total{verb="del",noun="container",result="ok"}')" 1
	expect_eq "frobnicate has no series" "$(grep -c frobnicate <<<"$after" || true)" 0
	expect_eq "container_added events" "$(delta 'tether_lifecycle_events_total{type="container_added"}')" 1
	expect_eq "container_gone events" "$(delta 'tether_lifecycle_events_total{type="container_gone"}')" 1
	# One at once, and a reminder every 500 ms while the requests wait.
	expect_ge "capacity_needed events" "$(delta 'tether_lifecycle_events_total{type="capacity_needed"}')" 1
	expect_eq "capacity_needed events, as the slow path counts them" \
		"$(delta 'tether_lifecycle_events_total{type="capacity_needed"}')" \
		"$(delta 'tether_slowpath_capacity_requests_total')"
	# Function 9 had its series while its container lived; the container
	# gone, its requests stay in the counter.
	expect_eq "function 9's forwarded requests, its container live" \
		"$(sample "$mid" 'tether_function_forwarded_requests_total{function="9"}')" 50
	expect_eq "function 9's forwarded requests after its container went" \
		"$(sample "$after" 'tether_function_forwarded_requests_total{function="9"}')" 50
	expect_eq "function 9's bytes: kept" \
		"$(sample "$after" 'tether_function_forwarded_bytes_total{function="9"}')" \
		"$(sample "$mid" 'tether_function_forwarded_bytes_total{function="9"}')"
	expect_eq "function 9's warm containers" \
		"$(sample "$after" 'tether_function_containers{function="9",state="warm"}')" 0
	expect_eq "slow path: held" "$(delta tether_slowpath_held_total)" 3
	expect_ge "slow path: received" "$(delta tether_slowpath_received_total)" 3
}

# --- bounded -------------------------------------------------------------------------

test_bounded() {
	local f i text labels sum packets=0 h out
	e2e_tetherd_stop
	start_rig_tetherd --metrics-functions 2
	for f in 21 22 23 24 25; do
		e2e_ctl container add --function "$f" --backend vm1 --warm >/dev/null
		# Function f gets f - 20 warm containers: 24 and 25 have the most.
		for ((i = 21; i < f; i++)); do
			e2e_ctl container add --function "$f" --backend vm2 --warm >/dev/null
		done
		out=$(e2e_load --function "$f" --count 20 --timeout-ms 1000)
		expect_eq "answered by function $f" "$(e2e_field "$out" ok)" 20
	done
	text=$(scrape)
	labels=$(grep '^tether_function_forwarded_requests_total{' <<<"$text" |
		sed 's/.*function="\([^"]*\)".*/\1/' | sort | tr '\n' ' ')
	# The first scrape after a start chooses: the most warm containers.
	expect_eq "functions with series of their own" "$labels" "24 25 other "
	expect_eq "tether_function_series" "$(sample "$text" tether_function_series)" 2
	# No container has gone since the start: all series together count what
	# the live containers' counters hold.
	for h in $(e2e_ctl --json container list | jq -r '.[].container'); do
		packets=$((packets + $(e2e_ctl --json container show "$h" | jq -r '.packets')))
	done
	sum=$(grep '^tether_function_forwarded_requests_total{' <<<"$text" | awk '{ s += $2 } END { print s }')
	expect_eq "forwarded requests, all series, against the containers' own counters" "$sum" "$packets"
	expect_eq "warm containers of \"other\" (7, 8, 21, 22, 23)" \
		"$(sample "$text" 'tether_function_containers{function="other",state="warm"}')" \
		$((1 + 1 + 1 + 2 + 3))
	expect_promtool_clean "the bounded scrape" "$text"
	e2e_tetherd_stop
	start_rig_tetherd
}

# --- --user ------------------------------------------------------------------------------

test_user() {
	local user=${E2E_ID}m text pid port=917 status
	command -v useradd >/dev/null || e2e_die "'useradd' is not installed"
	useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$user"
	METRICS_USER=$user
	trap 'userdel "$METRICS_USER" 2>/dev/null || true' EXIT
	e2e_tetherd_stop
	echo "$port" >"$E2E_RUN_DIR/metrics_port"
	e2e_tetherd_start --metrics-listen "127.0.0.1:$port" --user "$user"
	pid=$(e2e_tetherd_pid)
	status=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
	expect_eq "tetherd's uid" "$status" "$(id -u "$user")"
	text=$(scrape)
	expect_eq "scraped as $user: warm containers of $F_KEYED" \
		"$(sample "$text" "tether_function_containers{function=\"$F_KEYED\",state=\"warm\"}")" 1
	expect_promtool_clean "tetherd --user's /metrics" "$text"
	echo "#   tetherd as $user (uid $status) serves /metrics on port $port, bound as root"
	e2e_tetherd_stop
	start_rig_tetherd
}

# --- fleet ---------------------------------------------------------------------------------

fleet_stop() {
	local pid
	for pid in ${FA_PID:-} ${FB_PID:-}; do
		kill -TERM "$pid" 2>/dev/null || true
		e2e_wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
	done
	[[ -z ${FLEET_DIR:-} ]] || "$E2E_REPO/tools/etcd-cluster.sh" stop "$FLEET_DIR" >/dev/null 2>&1 || true
	rm -rf "$E2E_PIN_ROOT-fa" "$E2E_PIN_ROOT-fb"
	ip -n "$E2E_NS_ROUTER" link del "${E2E_ID}fa" 2>/dev/null || true
	ip -n "$E2E_NS_ROUTER" link del "${E2E_ID}fb" 2>/dev/null || true
}

# Two routers of fleet $E2E_ID on a one-member etcd; their /metrics ports in
# FA_METRICS and FB_METRICS. Stopped by fleet_stop.
fleet_start() {
	local tag port owner=$BASHPID
	FLEET_DIR=$(mktemp -u "$E2E_LOG_DIR/etcd.XXXXXX")
	# Owned by the test's subshell: the cluster goes with it whatever happens.
	FLEET_ENDPOINTS=$(ETCD_CLUSTER_NETNS=$E2E_NS_ROUTER "$E2E_REPO/tools/etcd-cluster.sh" \
		start "$FLEET_DIR" 1 --owner "$owner")
	for tag in fa fb; do
		port=$(free_port)
		e2e_router_veth "${E2E_ID}$tag"
		e2e_tetherd_spawn "$tag" "$E2E_RUN_DIR/$tag.sock" --iface "${E2E_ID}$tag" \
			--vip "198.51.100.$([[ $tag == fa ]] && echo 31 || echo 32):$E2E_PORT" \
			--pin-root "$E2E_PIN_ROOT-$tag" --socket "$E2E_RUN_DIR/$tag.sock" \
			--store "etcd=$FLEET_ENDPOINTS" --fleet "$E2E_ID" --router-name "$tag" \
			--metrics-listen "127.0.0.1:$port" >/dev/null
		if [[ $tag == fa ]]; then
			FA_PID=$E2E_SPAWN_PID FA_METRICS=$port
		else
			FB_PID=$E2E_SPAWN_PID FB_METRICS=$port
		fi
	done
}

# Polls fa's /metrics until fb's record, as fa has it, says fb applied a
# change (fb writes it every second while it moves); prints the scrape.
fleet_scrape() {
	local text i revision
	for ((i = 0; i < 100; i++)); do
		text=$(get "http://127.0.0.1:$FA_METRICS/metrics")
		revision=$(sample "$text" "tether_fleet_applied_revision{fleet=\"$E2E_ID\",router=\"fb\"}")
		if [[ ${revision:-0} -gt 0 ]]; then
			echo "$text"
			return 0
		fi
		sleep 0.2
	done
	echo "$text"
	return 1
}

test_fleet() {
	local text family missing=() rev_fa rev_fb i
	trap fleet_stop EXIT
	fleet_start
	"$E2E_TETHERCTL" --socket "$E2E_RUN_DIR/fa.sock" backend add fvm --addr 203.0.113.99 \
		--mac 02:00:00:00:09:09 --iface "${E2E_ID}fa" --heartbeat-ms "$HOUR" >/dev/null
	# fa answered once it applied the backend; fb applies it from its watch.
	for ((i = 0; i < 50; i++)); do
		"$E2E_TETHERCTL" --socket "$E2E_RUN_DIR/fb.sock" --json backend list |
			jq -e 'any(.[]; .backend == "fvm")' >/dev/null && break
		sleep 0.1
	done
	"$E2E_TETHERCTL" --socket "$E2E_RUN_DIR/fb.sock" container add --function 77 --backend fvm \
		--warm >/dev/null
	text=$(fleet_scrape) || fail "fa's /metrics never showed fb's record: $(grep fleet <<<"$text")"
	for family in "${FLEET_FAMILIES[@]}"; do
		grep -qx "$family" <<<"$(families "$text")" || missing+=("$family")
	done
	expect_eq "fleet families missing" "${missing[*]}" ""
	expect_eq "fa synced" "$(sample "$text" "tether_fleet_synced{fleet=\"$E2E_ID\",router=\"fa\"}")" 1
	expect_eq "fa watching" \
		"$(sample "$text" "tether_fleet_watch_connected{fleet=\"$E2E_ID\",router=\"fa\"}")" 1
	rev_fa=$(sample "$text" "tether_fleet_applied_revision{fleet=\"$E2E_ID\",router=\"fa\"}")
	rev_fb=$(sample "$text" "tether_fleet_applied_revision{fleet=\"$E2E_ID\",router=\"fb\"}")
	expect_ge "fa's applied revision" "$rev_fa" 2
	expect_ge "fb's applied revision, as fa sees it" "$rev_fb" 1
	expect_eq "fa's warm containers of 77 (added through fb)" \
		"$(sample "$text" 'tether_function_containers{function="77",state="warm"}')" 1
	expect_promtool_clean "a fleet router's /metrics" "$text"
	echo "#   fa: applied revision $rev_fa, fb's (as fa saw its record) $rev_fb; $(grep -c '^tether_fleet' <<<"$text") fleet samples"
	fleet_stop
	trap - EXIT
}

# --- dashboard ---------------------------------------------------------------------------

test_dashboard() {
	local names used unknown panels ids
	jq -e . "$DASHBOARD" >/dev/null || { fail "$DASHBOARD does not parse"; return; }
	panels=$(jq '[.panels[] | select(.type != "row")] | length' "$DASHBOARD")
	expect_ge "panels" "$panels" 10
	ids=$(jq -r '[.panels[].id] | (length == (unique | length))' "$DASHBOARD")
	expect_eq "panel ids unique" "$ids" true
	expect_eq "panels without a query, a datasource or a place" \
		"$(jq -r '[.panels[] | select(.type != "row") |
			select((.targets | length) == 0 or .datasource == null or .gridPos == null or
			       any(.targets[]; (.expr // "") == "")) | .title] | join(", ")' "$DASHBOARD")" ""
	for title in "Requests by decision" "Slow path" "Warm containers per function"; do
		expect_eq "panel '$title'" \
			"$(jq --arg t "$title" '[.panels[] | select(.type != "row" and .title == $t)] | length' \
				"$DASHBOARD")" 1
	done
	# What tetherd exports, from real scrapes: this rig's and a fleet router's.
	local single fleet
	single=$(scrape) || { fail "no scrape of the rig's tetherd"; return; }
	trap fleet_stop EXIT
	fleet_start
	fleet=$(get "http://127.0.0.1:$FA_METRICS/metrics") || { fail "no scrape of fa"; return; }
	fleet_stop
	trap - EXIT
	names=$( { families "$single"; families "$fleet"; } | sort -u)
	used=$(jq -r '.. | objects | (.expr, .definition) | strings' "$DASHBOARD" |
		grep -o 'tether_[a-zA-Z0-9_:]*' | sort -u)
	unknown=$(comm -23 <(echo "$used") <(echo "$names") | tr '\n' ' ')
	expect_eq "metrics the dashboard names that tetherd does not export" "$unknown" ""
	echo "#   $panels panels, $(wc -l <<<"$used") metrics named, all exported"
}

# --- accept_local ----------------------------------------------------------------------

test_accept_local() {
	local out
	e2e_tetherd_stop
	e2e_sysctl "$E2E_NS_ROUTER" "net.ipv4.conf.$E2E_IF_R2.accept_local" 0
	start_rig_tetherd
	# vm2 was adopted: checked at start.
	grep -q "backend vm2 is on $E2E_IF_R2, where replies the VM routes back through this host" \
		"$E2E_TETHERD_LOG" || fail "no warning about vm2's link: $(tail -n5 "$E2E_TETHERD_LOG")"
	grep -q "start tetherd with --accept-local" "$E2E_TETHERD_LOG" || fail "the warning does not name --accept-local"
	out=$(e2e_load --function "$F_OTHER" --count 20 --key 5 --timeout-ms 300 || true)
	expect_eq "vm2's replies without accept_local (dropped as martians)" "$(e2e_field "$out" ok)" 0
	e2e_tetherd_stop
	start_rig_tetherd --accept-local
	grep -q "set net.ipv4.conf.$E2E_IF_R2.accept_local=1" "$E2E_TETHERD_LOG" ||
		fail "tetherd --accept-local did not say it set accept_local"
	expect_eq "accept_local on vm2's link" \
		"$(e2e_in_router sysctl -n "net.ipv4.conf.$E2E_IF_R2.accept_local")" 1
	out=$(e2e_load --function "$F_OTHER" --count 20 --key 5 --timeout-ms 1000)
	expect_eq "vm2's replies with --accept-local" "$(e2e_field "$out" ok)" 20
	e2e_tetherd_stop
	start_rig_tetherd
}

# --- many containers -----------------------------------------------------------------------

# 20,000 containers (starting: no pool tables to build), so the sweep takes
# several turns of the loop: the scrape waits (suspended) for it, the
# control socket answers meanwhile, and everything is counted.
test_many() {
	local text i n=20000 steps answered=0 pid
	# On a backend of their own, removed with them at the end.
	e2e_ctl backend add many --addr 203.0.113.5 --mac 02:00:00:00:05:05 --iface "$E2E_IF_R1" \
		--heartbeat-ms "$HOUR" >/dev/null
	for ((i = 0; i < n; i++)); do
		echo "add container function=$((1000 + i % 500)) backend=many state=starting"
	done | socat -t60 - "UNIX-CONNECT:$E2E_SOCKET" | grep -c '^ok$' >"$E2E_LOG_DIR/many.added"
	expect_eq "containers added" "$(<"$E2E_LOG_DIR/many.added")" "$n"
	sleep 1.1 # no sweep result fresh any more
	scrape >"$E2E_LOG_DIR/many.scrape" &
	pid=$!
	for ((i = 0; i < 20; i++)); do
		[[ $(e2e_raw "list backend" | head -n1) == ok ]] && answered=$((answered + 1))
	done
	wait "$pid" || fail "the scrape failed"
	text=$(<"$E2E_LOG_DIR/many.scrape")
	steps=$(sample "$text" tether_metrics_sweep_steps)
	echo "#   $n containers more: the sweep took $steps turns of the loop," \
		"$(sample "$text" tether_metrics_sweep_duration_seconds) s; 20 control requests answered meanwhile"
	expect_ge "the sweep's turns of the loop" "$steps" 2
	expect_eq "control requests answered during the scrape" "$answered" 20
	expect_ge "starting containers" "$(sample "$text" 'tether_containers{state="starting"}')" "$n"
	expect_eq "tether_functions" "$(( $(sample "$text" tether_functions) >= 500 ))" 1
	expect_eq "series of their own (the limit, 100)" "$(sample "$text" tether_function_series)" 100
	expect_promtool_clean "a scrape of $n containers" "$text"
	e2e_ctl backend del many >/dev/null
}

# --- container show against bpftool map lookup ------------------------------------------------

test_container_show() {
	local h shown raw secret_hex le field
	h=$(e2e_ctl --json container list --function "$F_KEYED" | jq -er '.[0].container')
	shown=$(e2e_ctl --json container show "$h")
	# shellcheck disable=SC2046 # the key's bytes, one word each
	raw=$(bpftool map lookup pinned "$E2E_PIN_ROOT/containers" key $(e2e_key_bytes "$h"))
	for field in generation backend_id drain_deadline_ns; do
		expect_eq "$field: container show and bpftool" "$(jq -r ".$field" <<<"$shown")" \
			"$(jq -r ".value.$field" <<<"$raw")"
	done
	expect_eq "function" "$(jq -r '.function' <<<"$shown")" "$(jq -r '.value.function_id' <<<"$raw")"
	expect_eq "state (2: warm)" "$(jq -r '.value.state' <<<"$raw")" 2
	# The secret: its bytes in hex (the token's last 16 digits); bpftool
	# prints the u64 they make on this little-endian host (as text: jq would
	# round it).
	secret_hex=$(jq -r '.secret' <<<"$shown")
	expect_eq "the secret ends the token" "$(jq -r '.token' <<<"$shown" | cut -c17-)" "$secret_hex"
	le=$(sed 's/\(..\)/\1 /g' <<<"$secret_hex" | awk '{ for (i = NF; i > 0; i--) printf "%s", $i }')
	expect_eq "secret: container show and bpftool" "$(printf '%u' "0x$le")" \
		"$(grep -o '"secret": [0-9]*' <<<"$raw" | awk '{ print $2 }')"
	echo "#   container $h: $(jq -c '{generation, backend_id, secret, drain_deadline_ns}' <<<"$shown")"
}

# --- runner ------------------------------------------------------------------------------------

TESTS=(scrape prometheus counting bounded user fleet dashboard accept_local container_show many)

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	command -v promtool >/dev/null || e2e_die "promtool is not installed (make deps: prometheus)"
	command -v prometheus >/dev/null || e2e_die "prometheus is not installed (make deps)"
	command -v curl >/dev/null || e2e_die "curl is not installed"
	e2e_init
	e2e_topology
	start_rig_tetherd
	e2e_backend_start vm1
	e2e_backend_start vm2
	e2e_backend_add vm1 --heartbeat-ms "$HOUR" >/dev/null
	e2e_backend_add vm2 --heartbeat-ms "$HOUR" >/dev/null
	e2e_ctl container add --function "$F_KEYED" --backend vm1 --warm >/dev/null
	e2e_ctl container add --function "$F_OTHER" --backend vm2 --warm >/dev/null
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
