#!/usr/bin/env bash
# Runs every test binary given, prints each one's output, and ends with one
# summary line; exits nonzero when any test binary failed.
#
#   tools/run-tests.sh [--jobs N] [--sanitize] TEST...
#
# --jobs N   runs up to N tests at once; each one's output is printed whole
#            when it ends, in the order given. End-to-end tests (tests/e2e/)
#            still run one at a time: they share users, ports and the host's
#            BPF links; the test binaries run beside them.
# --sanitize for a build with AddressSanitizer, LeakSanitizer and
#            UndefinedBehaviorSanitizer (make test-sanitize): every sanitized
#            program a test starts, daemons in the background included, writes
#            its reports to a directory of that test's own; a test that left a
#            report there failed, whatever its exit status.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
max_jobs=1
sanitize=0
while (($#)); do
	case $1 in
	--jobs) max_jobs=$2 && shift 2 ;;
	--sanitize) sanitize=1 && shift ;;
	*) break ;;
	esac
done

scratch=$(mktemp -d /tmp/tether-tests.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# Reports are written, and the suppressions read, by whatever user a daemon
# runs as (tetherd --user): they live here, not in the checkout, which may sit
# in a directory only root can enter (a clone under /root).
chmod 755 "$scratch"
suppressions=$scratch/lsan.supp
install -m 644 "$here/tests/sanitize/lsan.supp" "$suppressions"

# Runs test number $1 ($2), its output to stdout; its exit status in
# $scratch/$1.status.
run_one() {
	local index=$1 test=$2 status=0 reports=$scratch/$1.reports
	if ((sanitize)); then
		mkdir -p "$reports"
		chmod 1777 "$reports"
		# halt_on_error: the first error ends the program (a failed test, not a
		# stream of follow-on reports); leaks are checked at every exit;
		# fast_unwind_on_malloc=0: whole allocation stacks through GLib,
		# which has no frame pointers (else a leak's stack ends in g_malloc).
		ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:fast_unwind_on_malloc=0:log_path=$reports/asan" \
			LSAN_OPTIONS="suppressions=$suppressions:print_suppressions=0" \
			UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan" \
			"$test" || status=$?
	else
		"$test" || status=$?
	fi
	echo "$status" >"$scratch/$index.status"
}

# Prints the sanitizer reports test number $1 left; nonzero when it left any.
check_reports() {
	local reports=$scratch/$1.reports file
	((sanitize)) || return 0
	local files=("$reports"/*)
	[[ -e ${files[0]} ]] || return 0
	echo "# sanitizer reports (${#files[@]}) from the programs this test ran:"
	for file in "${files[@]}"; do
		echo "# --- ${file##*/} (the number is the pid)"
		cat "$file"
	done
	return 1
}

# Ends test number $1 ($2): counts it.
finish() {
	local index=$1 test=$2 status
	status=$(cat "$scratch/$index.status")
	check_reports "$index" || status=sanitizer
	if [[ $status == 0 ]]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failed_names+=("$test")
	fi
}

passed=0
failed=0
failed_names=()
tests=("$@")
if ((max_jobs <= 1)); then
	for ((i = 0; i < ${#tests[@]}; i++)); do
		echo "=== ${tests[i]}"
		run_one "$i" "${tests[i]}"
		finish "$i" "${tests[i]}"
	done
else
	started=()  # 1 for each test started
	e2e_index=  # the end-to-end test started last
	shown=0     # the next test to print
	while ((shown < ${#tests[@]})); do
		for ((i = shown; i < ${#tests[@]}; i++)); do
			(($(jobs -rp | wc -l) < max_jobs)) || break
			[[ -z ${started[i]:-} ]] || continue
			if [[ ${tests[i]} == *tests/e2e/* ]]; then
				[[ -z $e2e_index || -f $scratch/$e2e_index.status ]] || continue
				e2e_index=$i
			fi
			run_one "$i" "${tests[i]}" >"$scratch/$i.out" 2>&1 &
			started[i]=1
		done
		if [[ -f $scratch/$shown.status ]]; then
			echo "=== ${tests[shown]}"
			cat "$scratch/$shown.out"
			finish "$shown" "${tests[shown]}"
			shown=$((shown + 1))
		else
			sleep 0.2
		fi
	done
fi
echo
if ((failed)); then
	echo "failed: ${failed_names[*]}"
fi
echo "tests: $passed passed, $failed failed"
((failed == 0))
