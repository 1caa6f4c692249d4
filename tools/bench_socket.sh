#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Lifecycle operations per second through tetherd's control socket: a real
# tetherd in the end-to-end rig's router namespace (tests/e2e/lib.sh), and
# tools/control_load adding, bringing up and deleting containers with 1, 16
# and 256 requests in flight. Every up and del changes a function's warm set,
# so tetherd swaps that function's pool table before it answers; one swap
# waits for an RCU grace period, and requests that arrive together share one.
#
#   tools/bench_socket.sh [--quick] [--json FILE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/e2e/lib.sh"

count=2000
json=
while (($#)); do
	case $1 in
	--quick) count=200 ;;
	--json) json=$2; shift ;;
	*) echo "usage: tools/bench_socket.sh [--quick] [--json FILE]" >&2; exit 2 ;;
	esac
	shift
done
load=$E2E_BUILD/tools/control_load
[[ -x $load ]] || e2e_die "$load is missing: run 'make' first"

e2e_init
e2e_topology
e2e_tetherd_start

echo "Control socket: lifecycle operations per second ($count containers, 50 functions,"
echo "one connection; window = requests in flight; each up and del swaps a pool table)"
results=()
for window in 1 16 256; do
	out=$E2E_LOG_DIR/control-load-$window.json
	"$load" --socket "$E2E_SOCKET" --iface "$E2E_IF_R1" --count "$count" --window "$window" \
		--json "$out"
	results+=("$(cat "$out")")
done
if [[ -n $json ]]; then
	printf '%s\n' "${results[@]}" | jq -s '{control_socket: .}' > "$json"
	echo "bench_socket: JSON in $json"
fi
