# Included by the Makefile: the version (and, later in this file, what
# installing and packaging need).

# --- The version: VERSION is its only source -----------------------------------
# Each program's --version prints it (from the generated $(BUILD)/tether_version.h);
# `make deb` writes it into debian/changelog; tests/packaging/test_deb.sh checks
# that the package, the changelog and every program's --version agree.
VERSION   := $(shell cat VERSION)
VERSION_H := $(BUILD)/tether_version.h

$(VERSION_H): VERSION
	@mkdir -p $(dir $@)
	printf '/* Generated from VERSION by the Makefile. */\n#define TETHER_RELEASE_VERSION "%s"\n' \
		"$$(cat $<)" >$@.tmp && mv $@.tmp $@

# The objects whose source includes it (found, so the list cannot go stale).
VERSION_USERS := $(call objects_of,$(shell grep -l '"tether_version.h"' \
	$(wildcard user/*/*.c tests/*/*.c tools/*.c) 2>/dev/null))
$(VERSION_USERS): $(VERSION_H)
