/* SPDX-License-Identifier: MIT */
/* Throw-away certificates for the unit tests: tools/test-certs.sh (certtool)
 * run from the checkout the test runs in or was built in. */
#ifndef TETHER_TESTS_CERTS_H
#define TETHER_TESTS_CERTS_H

/* Runs "tools/test-certs.sh ARGS" (its output discarded): 0, or -1 when the
 * script is not found or failed (certtool missing: make deps). */
int test_certs(const char *args);

#endif
