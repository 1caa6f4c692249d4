#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# libtether-client as a platform's gateway would use it: installed with
# `make install-client` into a scratch prefix, found by pkg-config, and the
# README's example program built against it, shared and static, then run
# against tools/echo_backend on loopback (which answers an unstamped request
# CONTAINER_GONE: a real reply through the library's send, receive and
# checks).
#
#   installed       header, both libraries, the soname link and the .pc file
#                   land in the prefix; pkg-config reads the version
#   exports         the shared library exports tether_* and nothing else; the
#                   static one holds the client's object only
#   example_shared  the README's example builds with pkg-config, links
#                   libtether-client.so.1 from the prefix, and gets its reply
#   example_static  the same, linked statically
#
#   BUILD=build tests/packaging/test_client_library.sh
#
# TAP output, then "N passed, M failed" alone on the last line.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

TESTS=(installed exports example_shared example_static)
VERSION=1.0.0

test_installed() {
	local file
	for file in include/tether/client.h include/tether/wire.h lib/libtether-client.a \
		lib/libtether-client.so.$VERSION lib/pkgconfig/tether-client.pc; do
		[[ -f $PREFIX/$file ]] || fail "$file is not installed in $PREFIX"
	done
	expect_eq "soname link" "$(readlink "$PREFIX/lib/libtether-client.so.1")" \
		"libtether-client.so.$VERSION"
	expect_eq "pkg-config version" "$(pkg-config --modversion tether-client)" "$VERSION"
	expect_eq "SONAME" "$(readelf -d "$PREFIX/lib/libtether-client.so.$VERSION" |
		sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')" libtether-client.so.1
}

test_exports() {
	local others members
	others=$(nm -D --defined-only "$PREFIX/lib/libtether-client.so.$VERSION" |
		awk '$2 != "A" { print $3 }' | grep -v '^tether_' || true)
	expect_eq "exported symbols not named tether_*" "$others" ""
	expect_ge "tether_* symbols exported" \
		"$(nm -D --defined-only "$PREFIX/lib/libtether-client.so.$VERSION" | grep -c ' tether_')" 20
	members=$(ar t "$PREFIX/lib/libtether-client.a" | tr '\n' ' ')
	expect_eq "objects in the static library" "$members" "client.o "
}

# Builds the README's example with $1 extra flags into $2.
build_example() {
	local out=$1
	shift
	# shellcheck disable=SC2046 # pkg-config's flags are words
	cc -Wall -Wextra -Werror "$SCRATCH/example.c" "$@" -o "$out"
}

# Runs example binary $1 against the echo backend; prints its output.
run_example() {
	"$1" "127.0.0.1:$PORT"
}

test_example_shared() {
	local out
	# shellcheck disable=SC2046
	build_example "$SCRATCH/example-shared" $(pkg-config --cflags --libs tether-client) \
		-Wl,-rpath,"$PREFIX/lib"
	expect_contains "libraries the example loads" "$(ldd "$SCRATCH/example-shared")" \
		"libtether-client.so.1 => $PREFIX/lib/libtether-client.so.1"
	out=$(run_example "$SCRATCH/example-shared")
	echo "#   $out"
	expect_contains "the example's reply" "$out" "container_gone"
}

test_example_static() {
	local out
	# shellcheck disable=SC2046
	build_example "$SCRATCH/example-static" $(pkg-config --cflags tether-client) \
		"$PREFIX/lib/libtether-client.a" $(pkg-config --libs glib-2.0)
	[[ -z $(ldd "$SCRATCH/example-static" | grep tether) ]] ||
		fail "the static example loads a tether library"
	out=$(run_example "$SCRATCH/example-static")
	echo "#   $out"
	expect_contains "the example's reply" "$out" "container_gone"
}

cleanup() {
	local status=$?
	[[ -n ${ECHO_PID:-} ]] && kill "$ECHO_PID" 2>/dev/null && wait "$ECHO_PID" 2>/dev/null
	rm -rf "$SCRATCH"
	echo "$passed passed, $failed failed"
	exit "$status"
}

main() {
	local selected=("$@")
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	for tool in cc pkg-config readelf nm ar ldd ss; do
		command -v "$tool" >/dev/null || e2e_die "'$tool' is not installed"
	done
	[[ -x $E2E_ECHO ]] || e2e_die "$E2E_ECHO is missing: run 'make' first"
	SCRATCH=$(mktemp -d /tmp/tether-client-lib.XXXXXX)
	trap cleanup EXIT
	PREFIX=$SCRATCH/prefix
	make --no-print-directory -C "$E2E_REPO" BUILD="$E2E_BUILD" PREFIX="$PREFIX" install-client \
		>"$SCRATCH/install.log" 2>&1 || e2e_die "make install-client failed: $(tail -n5 "$SCRATCH/install.log")"
	export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
	# The example, exactly as the README shows it.
	sed -n '/<!-- example: libtether-client -->/,/^```$/p' "$E2E_REPO/README.md" |
		sed '1,2d;$d' >"$SCRATCH/example.c"
	[[ -s $SCRATCH/example.c ]] || e2e_die "no example in README.md (the <!-- example: libtether-client --> block)"
	PORT=$(e2e_random_port)
	"$E2E_ECHO" --vip "127.0.0.1:$PORT" --name example >"$SCRATCH/echo.log" 2>&1 &
	ECHO_PID=$!
	for _ in $(seq 50); do
		ss -Huln "sport = :$PORT" | grep -q . && break
		sleep 0.1
	done
	run_tests "${selected[@]}"
	((failed == 0))
}

main "$@"
