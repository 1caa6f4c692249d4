# Included by the Makefile: the version, man pages, `make install` and
# `make deb` (the Debian package; debian/ and tools/build-deb.sh).

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

# --- Man pages: docs/man/NAME.SECTION.scd, built with scdoc ---------------------
MAN_PAGES := $(patsubst docs/man/%.scd,$(BUILD)/man/%,$(wildcard docs/man/*.scd))

$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	scdoc <$< >$@.tmp && mv $@.tmp $@

# `make` builds them too (and the sanitizer build: test_tetherd.sh checks the
# unit's Documentation= with them); `make programs`: what `make install`
# installs (no tests).
all userspace: $(MAN_PAGES)

.PHONY: man programs install deb
man: $(MAN_PAGES)
programs: $(PROGRAMS) $(BPF_OBJ) $(MAN_PAGES)

# --- make install [PREFIX=/usr/local] [DESTDIR=] -------------------------------
# The programs, the BPF object (tetherd embeds it; this copy is for bpftool),
# man pages, tetherctl's bash completion, the systemd units (ExecStart naming
# SBINDIR) and, unless there is one, /etc/tether's configuration. It creates
# no user: tetherd.service runs tetherd --user tether (see dist/tetherd.service).
# The Debian package installs through it (debian/rules).
BINDIR         ?= $(PREFIX)/bin
SBINDIR        ?= $(PREFIX)/sbin
PKGLIBDIR      ?= $(PREFIX)/lib/tether
MANDIR         ?= $(PREFIX)/share/man
BASHCOMPDIR    ?= $(PREFIX)/share/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR     ?= /etc

install: programs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PKGLIBDIR) \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/tether
	install -m 755 $(BUILD)/tetherd $(BUILD)/tether-agent $(DESTDIR)$(SBINDIR)/
	install -m 755 $(BUILD)/tetherctl $(BUILD)/tether-invoke $(DESTDIR)$(BINDIR)/
	install -m 644 $(BPF_OBJ) $(DESTDIR)$(PKGLIBDIR)/
	for page in $(MAN_PAGES); do \
		section=$${page##*.}; \
		install -d $(DESTDIR)$(MANDIR)/man$$section && \
		install -m 644 $$page $(DESTDIR)$(MANDIR)/man$$section/ || exit 1; \
	done
	install -m 644 dist/tetherctl.bash-completion $(DESTDIR)$(BASHCOMPDIR)/tetherctl
	for unit in tetherd.service tether-agent.service; do \
		sed 's|/usr/local/sbin/|$(SBINDIR)/|g' dist/$$unit >$(DESTDIR)$(SYSTEMDUNITDIR)/$$unit && \
		chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$unit || exit 1; \
	done
	[ -e $(DESTDIR)$(SYSCONFDIR)/tether/tetherd.conf ] || \
		install -m 644 dist/tetherd.conf $(DESTDIR)$(SYSCONFDIR)/tether/tetherd.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/tether/agent.conf ] || \
		install -m 644 dist/tether-agent.conf $(DESTDIR)$(SYSCONFDIR)/tether/agent.conf

# --- make deb: the Debian package, built from a copy in $(BUILD)/deb ------------
# tools/build-deb.sh copies the checkout there, writes debian/changelog from
# VERSION and runs dpkg-buildpackage; the .deb lands in $(BUILD)/deb/.
deb: deps
	@BUILD=$(BUILD) tools/build-deb.sh
