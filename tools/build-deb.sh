#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make deb`: builds Tether's Debian package out of the source tree.
#
#   BUILD=build tools/build-deb.sh
#
# Copies the checkout (what git tracks, and new files it does not ignore;
# without git, everything but build/ and .git) to $BUILD/deb/tether-VERSION,
# writes debian/changelog there from VERSION (the only place the version is
# written down; the entry is dated by the last commit, so a rebuild of the
# same commit is the same package), and runs dpkg-buildpackage -b in that
# copy. The .deb, .buildinfo and .changes land in $BUILD/deb; the copy is
# removed once the package is built (kept when the build failed).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
[[ $build == /* ]] || build=$repo/$build
version=$(<"$repo/VERSION")
[[ $version =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || {
	echo "build-deb: VERSION '$version' is no Debian version" >&2
	exit 1
}
out=$build/deb
stage=$out/tether-$version

rm -rf "$out"
mkdir -p "$stage"
cd "$repo"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked files deleted in the work tree are listed too: skip them.
	git ls-files -z --cached --others --exclude-standard |
		tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$stage"
	commit=$(git rev-parse --short HEAD)
	date=$(git log -1 --format=%cD)
	git diff --quiet HEAD 2>/dev/null || commit="$commit with changes not committed"
else
	tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C "$stage"
	commit="a tree outside git"
	date=$(date -R)
fi
rm -rf "$stage/build"

maintainer=$(sed -n 's/^Maintainer: //p' debian/control)
cat >"$stage/debian/changelog" <<CHANGELOG
tether ($version) unstable; urgency=medium

  * Tether $version, built from $commit.

 -- $maintainer  $date
CHANGELOG

cd "$stage"
echo "build-deb: building tether $version in $stage"
# The package's build is a make of its own in the copy: nothing of the make
# that called this script may reach it (a BUILD=... of the caller's, in the
# environment or in MAKEFLAGS, would point its `make clean` at the caller's
# build directory).
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u BUILD -u CFLAGS -u CC \
	-u PREFIX -u DESTDIR -u BINDIR -u SBINDIR -u PKGLIBDIR -u MANDIR -u BASHCOMPDIR \
	-u SYSTEMDUNITDIR -u SYSCONFDIR dpkg-buildpackage -b -us -uc
cd "$out"
rm -rf "$stage"
echo "build-deb: $(ls "$out"/tether_"$version"_*.deb)"
