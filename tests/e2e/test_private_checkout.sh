#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A checkout in a directory only root may enter (a clone under /root, mode
# 0700 on Debian) passes the sanitized privileges suite: whatever tetherd
# reads once it has become its --user (LSAN_OPTIONS' suppressions file among
# them) must not live in the checkout.
#
#   private_checkout   this checkout, bind-mounted below a 0700 directory in a
#                      mount namespace of the test's own (gone with the test),
#                      runs tests/e2e/test_privileges.sh through
#                      tools/run-tests.sh --sanitize, as test-sanitize does;
#                      the build must be the sanitized one (BUILD=build/sanitize),
#                      where a file the user cannot read is a failure.
#
#   BUILD=build/sanitize tests/e2e/test_private_checkout.sh
#
# TAP output, then "N passed, M failed" alone on the last line. Run as root.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TESTS=(private_checkout)

# Runs inside the test's mount namespace: $1 the private directory, $2 the
# build directory relative to the checkout.
run_from_private_directory() {
	local private=$1 build=$2
	mkdir "$private/tether"
	mount --bind "$E2E_REPO" "$private/tether"
	cd "$private/tether"
	BUILD=$build tools/run-tests.sh --sanitize tests/e2e/test_privileges.sh
}

test_private_checkout() {
	local private build out status=0
	[[ $E2E_BUILD == "$E2E_REPO"/* ]] ||
		fail "the build ($E2E_BUILD) is not inside the checkout ($E2E_REPO): nothing to test"
	build=${E2E_BUILD#"$E2E_REPO"/}
	# The sanitizer runtime in tetherd: without it LSAN_OPTIONS is never read.
	(($(nm "$E2E_TETHERD" | grep -c ' __asan_init$') == 1)) ||
		fail "$E2E_TETHERD is not built with AddressSanitizer: run this with BUILD=build/sanitize (make test-sanitize does)"
	private=$(mktemp -d /tmp/tether-private.XXXXXX) # mode 0700, root's
	out=$(unshare --mount --propagation private \
		bash -c "$(declare -f run_from_private_directory); E2E_REPO=$E2E_REPO \
			run_from_private_directory $private $build" 2>&1) || status=$?
	rmdir "$private/tether" "$private" 2>/dev/null || true
	sed 's/^/#   | /' <<<"$out"
	expect_eq "the privileges suite from a checkout in $private (0700)" "$status" 0
	expect_contains "its summary" "$out" "tests: 1 passed, 0 failed"
}

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	e2e_require_root
	command -v unshare >/dev/null || e2e_die "'unshare' is not installed (util-linux)"
	run_tests "${selected[@]}"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"
