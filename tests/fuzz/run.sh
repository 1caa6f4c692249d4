#!/usr/bin/env bash
# A bounded libFuzzer run of every target over its committed corpus, under
# AddressSanitizer and UndefinedBehaviorSanitizer: part of `make test`.
# FUZZ_SECONDS (default 15) per target; new inputs found go to a scratch
# directory, not into the committed corpus.
set -euo pipefail
build=${BUILD:-build}
seconds=${FUZZ_SECONDS:-15}
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d /tmp/tether-fuzz-XXXXXX)
trap 'rm -rf "$scratch"' EXIT

targets=("$build"/fuzz/fuzz_*)
if [[ ! -x ${targets[0]} ]]; then
	echo "not ok - no fuzz targets in $build/fuzz: run make first"
	exit 1
fi
failed=0
for target in "${targets[@]}"; do
	name=$(basename "$target")
	corpus="$here/corpus/${name#fuzz_}"
	mkdir -p "$scratch/$name"
	echo "# $name: ${seconds}s over $corpus"
	if "$target" -max_total_time="$seconds" -max_len=2048 -print_final_stats=1 \
		-artifact_prefix="$scratch/$name/" "$scratch/$name" "$corpus" \
		> "$scratch/$name.log" 2>&1; then
		runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$name.log" | grep -o '[0-9]*$')
		echo "ok - $name: ${runs:-?} executions, no crash, leak or undefined behaviour"
	else
		failed=$((failed + 1))
		echo "not ok - $name: see below; the crashing input is kept in $scratch/$name"
		tail -40 "$scratch/$name.log"
		trap - EXIT
	fi
done
echo "$((${#targets[@]} - failed)) passed, $failed failed"
((failed == 0))
