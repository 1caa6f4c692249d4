#!/usr/bin/env bash
# Runs every test binary given, prints each one's output, and ends with one
# summary line; exits nonzero when any test binary failed.
set -uo pipefail

passed=0
failed=0
failed_names=()
for test in "$@"; do
	echo "=== $test"
	if "$test"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failed_names+=("$test")
	fi
done
echo
if ((failed)); then
	echo "failed: ${failed_names[*]}"
fi
echo "tests: $passed passed, $failed failed"
((failed == 0))
