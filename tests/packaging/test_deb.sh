#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian package, built, checked, installed on this machine with dpkg,
# used, and purged:
#
#   build        `make deb` builds build/deb/tether_VERSION_ARCH.deb from a copy
#                of the checkout: its version is VERSION, and the checkout is
#                left as it was (nothing new in it, no debian/ build files)
#   lintian      lintian (pedantic) reports no error; every tag it printed is
#                shown as a comment
#   install      dpkg -i installs it: the files where they belong, the
#                configuration as conffiles, the system user tether (nologin),
#                and neither unit enabled nor running
#   versions     tetherd, tetherctl, tether-agent and tether-invoke, as
#                installed, print "NAME VERSION" for --version and exit 0
#   man_pages    man -w finds every page (tetherd(8), tetherctl(8),
#                tether-agent(8), tether-invoke(1), tetherd.conf(5)); man
#                renders each without a groff warning
#   man_in_sync  the pages follow the programs: every tetherctl command (its
#                command table, through `tetherctl __complete`) heads an entry
#                of tetherctl(8); every option a program's --help lists heads
#                an entry of its page, and every other it names appears; every
#                key of the config file heads an entry of tetherd.conf(5)
#   completion   bash-completion, as installed: `tetherctl back<TAB>` gives
#                backend, `tetherctl backend <TAB>` its five commands
#   units        systemd-analyze verify accepts both units (ExecStart in
#                /usr/sbin, their man pages found)
#   run          the installed tetherd, started by its config file and
#                --user tether in a network namespace of the test's own (a veth,
#                a VIP, a pin root and socket of its own), runs as tether; the
#                installed tether-agent, with the unit's capabilities only
#                (NET_ADMIN, NET_BIND_SERVICE, no_new_privs), registers a VM
#                with a warm container; the installed tetherctl lists it
#                (backend list); the agent leaves on SIGTERM, tetherd stops,
#                and tetherd --unload removes the pins
#   purge        dpkg --purge removes it and leaves nothing behind: no file of
#                the package, no /etc/tether, no unit state, no process, no
#                pins; the user tether stays (Debian's practice for system
#                users, debian/tether.postrm)
#
#   BUILD=build tests/packaging/test_deb.sh [TEST...]
#
# Needs root. It refuses to run when the package is installed already (it
# installs and purges its own) or when /sys/fs/bpf/tether exists (the
# package's prerm detaches the data plane there on removal). Whatever
# happens, the EXIT trap stops what it started, purges the package, removes
# the namespaces and pins, and removes the user tether if the test created it.
# About 30 s, most of it `make deb` (the package's build compiles the four
# programs again).
#
# TAP output, then "N passed, M failed" alone on the last line.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

TESTS=(build lintian install versions man_pages man_in_sync completion units run purge)
VERSION=$(<"$E2E_REPO/VERSION")
ARCH=$(dpkg --print-architecture)
DEB=$E2E_BUILD/deb/tether_${VERSION}_$ARCH.deb
CHANGES=$E2E_BUILD/deb/tether_${VERSION}_$ARCH.changes
PROGRAMS=(/usr/sbin/tetherd /usr/bin/tetherctl /usr/sbin/tether-agent /usr/bin/tether-invoke)
VIP=198.51.100.1
PORT=7777

# --- helpers ----------------------------------------------------------------------

package_installed() {
	dpkg-query -W -f='${db:Status-Status}' tether 2>/dev/null | grep -qvx 'not-installed'
}

need_package() {
	package_installed || fail "the package is not installed (an earlier test failed)"
}

# The groff source of installed page NAME in SECTION.
page_source() {
	zcat "/usr/share/man/man$2/$1.$2.gz"
}

# The headings of a page's entries (the line before each ".RS 4"), without
# their fonts: "--iface IF", "backend add NAME --addr ADDR ...", "iface".
page_headings() {
	page_source "$1" "$2" | awk '$0 == ".RS 4" { print previous } { previous = $0 }' |
		sed -e 's/\\f[BIR]//g' -e 's/\\&//g'
}

# Every --option a program's --help names, one a line.
help_options() {
	"$1" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u
}

# The options a program's --help lists as its own (a line of its list starts
# with two spaces and the option; continuation lines are indented further).
help_listed_options() {
	"$1" --help | sed -n 's/^  \(--[a-z][a-z-]*\).*/\1/p' | sort -u
}

# Checks that every option of program $1 heads an entry of page $2($3) (the
# listed ones) or appears in it in bold (the others).
check_options_in_page() {
	local program=$1 page=$2 section=$3 option headings source
	headings=$(page_headings "$page" "$section")
	source=$(page_source "$page" "$section")
	for option in $(help_listed_options "$program"); do
		grep -qE -- "^$option( |$)" <<<"$headings" ||
			fail "$program --help lists $option, which heads no entry of $page($section)"
	done
	for option in $(help_options "$program"); do
		grep -qF -- "\\fB$option\\fR" <<<"$source" ||
			fail "$program --help names $option, which $page($section) does not"
	done
}

# tetherctl's commands, one a line ("backend add", "stats"), as its command
# table gives them (through the completion, which reads the table).
tetherctl_commands() {
	local first second seconds
	for first in $(tetherctl __complete ""); do
		seconds=$(tetherctl __complete "$first" "")
		if [[ -z $seconds ]]; then
			echo "$first"
		else
			for second in $seconds; do
				echo "$first $second"
			done
		fi
	done
}

# What bash completes for the command line $1 (a trailing space starts a new
# word), with bash-completion and tetherctl's completion as installed.
complete_line() {
	bash --norc --noprofile -c '
		source /usr/share/bash-completion/bash_completion
		_completion_loader tetherctl
		line=$1
		read -ra COMP_WORDS <<<"$line"
		[[ $line == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE=$line COMP_POINT=${#line}
		"$(complete -p tetherctl | sed -n "s/.*-F \([^ ]*\) .*/\1/p")" tetherctl \
			"${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		echo "${COMPREPLY[*]}"' complete_line "$1"
}

# The pids of processes running an installed program (also once purged: the
# kernel then shows its path with " (deleted)"), one a line; other tetherds
# on this machine (other tests' builds) are none of the test's business.
installed_running() {
	local exe_link exe
	for exe_link in /proc/[0-9]*/exe; do
		exe=$(readlink "$exe_link" 2>/dev/null) || continue
		case $exe in
		/usr/sbin/tetherd | /usr/sbin/tetherd" (deleted)" | /usr/sbin/tether-agent | \
			/usr/sbin/tether-agent" (deleted)")
			exe_link=${exe_link#/proc/}
			echo "${exe_link%/exe}"
			;;
		esac
	done
}

# Records a background process for the EXIT trap.
track() {
	echo "$1" >>"$SCRATCH/pids"
}

# Polls up to tenths x 0.1 s for command to succeed.
wait_for() {
	local tenths=$1 i
	shift
	for ((i = 0; i < tenths; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

warm_containers() {
	tetherctl --socket "$SOCKET" --json container list --backend vm1 |
		jq '[.[] | select(.state == "warm")] | length'
}

agent_registered() {
	[[ $(warm_containers) -ge 1 ]]
}

# --- the tests ----------------------------------------------------------------------

test_build() {
	local before after started took
	before=$(git -C "$E2E_REPO" status --porcelain --ignored=no 2>/dev/null || true)
	started=$(date +%s)
	make --no-print-directory -C "$E2E_REPO" BUILD="$E2E_BUILD" deb >"$SCRATCH/build.log" 2>&1 ||
		fail "make deb failed: $(tail -n 20 "$SCRATCH/build.log")"
	took=$(($(date +%s) - started))
	echo "#   make deb took $took s"
	[[ -f $DEB ]] || fail "no $DEB"
	[[ -f $CHANGES ]] || fail "no $CHANGES"
	expect_eq "the package's version" "$(dpkg-deb -f "$DEB" Version)" "$VERSION"
	expect_eq "the package's name" "$(dpkg-deb -f "$DEB" Package)" tether
	local changelog
	changelog=$(dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - ./usr/share/doc/tether/changelog.gz | zcat)
	expect_contains "the changelog's first entry" "${changelog%%$'\n'*}" "tether ($VERSION)"
	after=$(git -C "$E2E_REPO" status --porcelain --ignored=no 2>/dev/null || true)
	expect_eq "the checkout's status after make deb" "$after" "$before"
	local leftover
	for leftover in debian/tether debian/.debhelper debian/files debian/changelog \
		debian/debhelper-build-stamp debian/tether.substvars; do
		[[ ! -e $E2E_REPO/$leftover ]] || fail "make deb left $leftover in the checkout"
	done
}

test_lintian() {
	local out status=0
	[[ -f $CHANGES ]] || fail "no $CHANGES (build failed)"
	out=$(lintian --fail-on error --display-info --pedantic "$CHANGES" 2>&1) || status=$?
	sed 's/^/#   /' <<<"$out"
	! grep -q '^E: ' <<<"$out" || fail "lintian reports errors"
	expect_eq "lintian's exit status" "$status" 0
}

test_install() {
	local file
	[[ -f $DEB ]] || fail "no $DEB (build failed)"
	dpkg -i "$DEB" >"$SCRATCH/install.log" 2>&1 ||
		fail "dpkg -i failed: $(cat "$SCRATCH/install.log")"
	expect_eq "dpkg's status" "$(dpkg-query -W -f='${Status}' tether)" "install ok installed"
	dpkg -L tether >"$SCRATCH/files"
	for file in "${PROGRAMS[@]}" /usr/lib/tether/tether_xdp.bpf.o /etc/tether/tetherd.conf \
		/etc/tether/agent.conf /lib/systemd/system/tetherd.service \
		/lib/systemd/system/tether-agent.service \
		/usr/share/bash-completion/completions/tetherctl; do
		grep -qx "$file" "$SCRATCH/files" || fail "the package has no $file"
		[[ -e $file ]] || fail "$file is not installed"
	done
	expect_eq "conffiles" "$(dpkg-query -W -f='${Conffiles}' tether | awk '{print $1}' | sort | xargs)" \
		"/etc/tether/agent.conf /etc/tether/tetherd.conf"
	# The object keeps its BTF (bpftool reads the maps' fields from it).
	local sections
	sections=$(readelf -S /usr/lib/tether/tether_xdp.bpf.o) # whole: grep -q would cut the pipe
	grep -q '\.BTF ' <<<"$sections" || fail "the installed BPF object has no .BTF section"
	local entry
	entry=$(getent passwd tether) || fail "no user tether"
	expect_eq "tether's shell" "$(cut -d: -f7 <<<"$entry")" /usr/sbin/nologin
	expect_le "tether's uid (a system user)" "$(cut -d: -f3 <<<"$entry")" 999
	getent group tether >/dev/null || fail "no group tether"
	# Neither unit is enabled (tetherd has no interface yet) nor started.
	if compgen -G "/etc/systemd/system/*.wants/tether*.service" >/dev/null; then
		fail "a unit was enabled on installation"
	fi
	expect_eq "installed programs running after installation" "$(installed_running)" ""
	# The default configuration cannot start tetherd, and says why.
	local out status=0
	out=$(tetherd --config /etc/tether/tetherd.conf 2>&1) || status=$?
	expect_eq "tetherd's exit status with the default configuration" "$status" 2
	expect_contains "its message" "$out" "give at least one --iface and one --vip"
}

test_versions() {
	local program out
	need_package
	for program in "${PROGRAMS[@]}"; do
		out=$("$program" --version) || fail "$program --version exited $?"
		expect_eq "$program --version" "$out" "$(basename "$program") $VERSION"
	done
	# Found on root's PATH as the issue's commands name them.
	expect_eq "tetherd --version" "$(tetherd --version)" "tetherd $VERSION"
	expect_eq "tetherctl --version" "$(tetherctl --version)" "tetherctl $VERSION"
}

test_man_pages() {
	local page section name out warnings
	need_package
	expect_eq "man -w tetherctl" "$(man -w tetherctl)" /usr/share/man/man8/tetherctl.8.gz
	for page in tetherd.8 tetherctl.8 tether-agent.8 tether-invoke.1 tetherd.conf.5; do
		name=${page%.*} section=${page##*.}
		expect_eq "man -w $section $name" "$(man -w "$section" "$name")" \
			"/usr/share/man/man$section/$page.gz"
		warnings=$(MANWIDTH=80 man --warnings "$section" "$name" 2>&1 >/dev/null)
		expect_eq "groff's warnings for $name($section)" "$warnings" ""
		out=$(MANWIDTH=80 man "$section" "$name" 2>/dev/null | col -b)
		expect_contains "$name($section) rendered" "$out" "NAME"
		expect_contains "$name($section) rendered" "$out" "       $name - "
		expect_contains "$name($section) rendered" "$out" "SEE ALSO"
	done
}

test_man_in_sync() {
	local command headings count=0 key keys
	need_package
	headings=$(page_headings tetherctl 8)
	while read -r command; do
		count=$((count + 1))
		grep -qE "^$command( |$)" <<<"$headings" ||
			fail "tetherctl's command '$command' heads no entry of tetherctl(8)"
	done < <(tetherctl_commands)
	expect_ge "tetherctl's commands" "$count" 20
	check_options_in_page /usr/sbin/tetherd tetherd 8
	check_options_in_page /usr/bin/tetherctl tetherctl 8
	check_options_in_page /usr/sbin/tether-agent tether-agent 8
	check_options_in_page /usr/bin/tether-invoke tether-invoke 1
	# The file's keys: tetherd's options but those that are no settings.
	keys=$(help_listed_options /usr/sbin/tetherd | sed 's/^--//' |
		grep -vxE 'config|help|unload|version')
	headings=$(page_headings tetherd.conf 5)
	for key in $keys; do
		grep -qx "$key" <<<"$headings" || fail "the key '$key' heads no entry of tetherd.conf(5)"
	done
}

test_completion() {
	need_package
	expect_eq "tetherctl back<TAB>" "$(complete_line "tetherctl back")" backend
	expect_eq "tetherctl backend <TAB>" "$(complete_line "tetherctl backend ")" \
		"add set del drain heartbeat list"
	expect_eq "tetherctl container add --b<TAB>" "$(complete_line "tetherctl container add --b")" \
		"--backend"
	expect_eq "tetherctl --<TAB>" "$(complete_line "tetherctl --")" \
		"--socket --json --help --version"
}

test_units() {
	local out status=0
	need_package
	out=$(systemd-analyze verify /lib/systemd/system/tetherd.service \
		/lib/systemd/system/tether-agent.service 2>&1) || status=$?
	expect_eq "systemd-analyze verify's output" "$out" ""
	expect_eq "systemd-analyze verify's exit status" "$status" 0
	expect_contains "tetherd.service" "$(grep ^ExecStart= /lib/systemd/system/tetherd.service)" \
		"ExecStart=/usr/sbin/tetherd --config /etc/tether/tetherd.conf --user tether"
	expect_contains "tether-agent.service" \
		"$(grep ^ExecStart= /lib/systemd/system/tether-agent.service)" \
		"ExecStart=/usr/sbin/tether-agent \$TETHER_AGENT_OPTIONS"
}

test_run() {
	local tetherd_pid agent_pid status list uid mac caps
	need_package
	ip netns add "$NS_ROUTER"
	ip netns add "$NS_VM"
	ip link add "$IF_ROUTER" netns "$NS_ROUTER" type veth peer name "$IF_VM" netns "$NS_VM"
	ip -n "$NS_ROUTER" link set "$IF_ROUTER" up
	ip -n "$NS_VM" link set "$IF_VM" up
	ip -n "$NS_ROUTER" link set lo up
	ip -n "$NS_VM" link set lo up
	ip -n "$NS_ROUTER" addr add 203.0.113.1/28 dev "$IF_ROUTER"
	ip -n "$NS_VM" addr add 203.0.113.2/28 dev "$IF_VM"
	mkdir -p "$RUN_DIR"
	cat >"$SCRATCH/tetherd.conf" <<-CONF
		[tetherd]
		iface = $IF_ROUTER
		vip = $VIP:$PORT
		pin-root = $PIN_ROOT
		socket = $SOCKET
		heartbeat-ms = 3000
	CONF
	chmod 644 "$SCRATCH/tetherd.conf"
	# As the unit runs it (--config, --user tether), but in our namespace:
	# nsenter keeps the host's mount namespace, so the pin root is the host's.
	nsenter --net="/var/run/netns/$NS_ROUTER" /usr/sbin/tetherd --config "$SCRATCH/tetherd.conf" \
		--user tether >"$SCRATCH/tetherd.log" 2>&1 &
	tetherd_pid=$!
	track "$tetherd_pid"
	wait_for 100 tetherctl --socket "$SOCKET" backend list ||
		fail "tetherd did not answer on $SOCKET: $(cat "$SCRATCH/tetherd.log")"
	uid=$(awk '/^Uid:/ { print $3 }' "/proc/$tetherd_pid/status")
	expect_eq "tetherd's effective uid" "$uid" "$(id -u tether)"
	[[ -e $PIN_ROOT/link_$IF_ROUTER ]] || fail "no pinned link $PIN_ROOT/link_$IF_ROUTER"

	# The agent with the unit's capabilities: NET_ADMIN (the VIP on lo),
	# NET_BIND_SERVICE, no_new_privs.
	mac=$(ip -n "$NS_VM" -j link show dev "$IF_VM" | jq -r '.[0].address')
	ip netns exec "$NS_VM" setpriv --bounding-set -all,+net_admin,+net_bind_service \
		--no-new-privs /usr/sbin/tether-agent --name vm1 --addr 203.0.113.2 --mac "$mac" \
		--router-iface "$IF_ROUTER" --vip "$VIP:$PORT" --tetherd "unix:$SOCKET" \
		--function 7:1 --heartbeat-ms 1000 --drain-ms 1000 >"$SCRATCH/agent.log" 2>&1 &
	agent_pid=$!
	track "$agent_pid"
	wait_for 100 agent_registered ||
		fail "the agent's container is not warm after 10 s: $(cat "$SCRATCH/agent.log")"
	caps=$(awk '/^CapEff:/ { print $2 }' "/proc/$agent_pid/status")
	expect_eq "the agent's capabilities (NET_BIND_SERVICE, NET_ADMIN)" "$caps" 0000000000001400

	list=$(tetherctl --socket "$SOCKET" backend list)
	echo "$list" | sed 's/^/#   /'
	expect_contains "tetherctl backend list" "$list" "vm1"
	expect_contains "tetherctl backend list" "$(sed -n 2p <<<"$list")" " up "
	expect_eq "tetherctl --json backend list" \
		"$(tetherctl --socket "$SOCKET" --json backend list | jq -r '.[0].backend + " " + .[0].state')" \
		"vm1 up"

	# The agent leaves: drains, removes the backend, exits 0.
	kill -TERM "$agent_pid"
	status=0
	wait "$agent_pid" || status=$?
	expect_eq "the agent's exit status after SIGTERM" "$status" 0
	expect_eq "backends left" "$(tetherctl --socket "$SOCKET" --json backend list)" "[]"

	kill -TERM "$tetherd_pid"
	status=0
	wait "$tetherd_pid" || status=$?
	expect_eq "tetherd's exit status after SIGTERM" "$status" 0
	# Stopped, tetherd leaves the data plane attached; --unload removes it.
	[[ -e $PIN_ROOT/link_$IF_ROUTER ]] || fail "tetherd's stop removed its pins"
	/usr/sbin/tetherd --unload --pin-root "$PIN_ROOT" >"$SCRATCH/unload.log" 2>&1 ||
		fail "tetherd --unload failed: $(cat "$SCRATCH/unload.log")"
	[[ ! -e $PIN_ROOT ]] || fail "$PIN_ROOT is still there after --unload"
	expect_eq "the XDP program on $IF_ROUTER" \
		"$(ip -n "$NS_ROUTER" -j -d link show dev "$IF_ROUTER" | jq -r '.[0].xdp.prog.id // empty')" ""
}

test_purge() {
	local path owner left=()
	need_package
	[[ -s $SCRATCH/files ]] || dpkg -L tether >"$SCRATCH/files"
	dpkg --purge tether >"$SCRATCH/purge.log" 2>&1 ||
		fail "dpkg --purge failed: $(cat "$SCRATCH/purge.log")"
	! package_installed || fail "the package is still known to dpkg"
	while read -r path; do
		[[ -e $path || -L $path ]] || continue
		# A directory stays when something else is in it, or another package
		# owns it too (/usr/share/man, /lib, ...).
		if [[ -d $path ]]; then
			[[ -n $(ls -A "$path") ]] && continue
			owner=$(dpkg-query -S "$path" 2>/dev/null) && [[ -n $owner ]] && continue
		fi
		left+=("$path")
	done <"$SCRATCH/files"
	expect_eq "files of the package left" "${left[*]}" ""
	[[ ! -e /etc/tether ]] || fail "/etc/tether is left: $(ls -A /etc/tether)"
	[[ ! -e /usr/lib/tether ]] || fail "/usr/lib/tether is left"
	! ls /var/lib/dpkg/info/tether.* >/dev/null 2>&1 || fail "dpkg's scripts of tether are left"
	! ls /var/lib/systemd/deb-systemd-helper-enabled/*tether* >/dev/null 2>&1 ||
		fail "unit state is left in /var/lib/systemd/deb-systemd-helper-enabled"
	expect_eq "installed programs still running" "$(installed_running)" ""
	[[ ! -e $PIN_ROOT && ! -e /sys/fs/bpf/tether ]] || fail "pins are left"
	# The documented policy: the system user and its group stay.
	getent passwd tether >/dev/null || fail "purge removed the user tether (it should stay)"
}

# --- setup and cleanup ----------------------------------------------------------------

cleanup() {
	local status=$? pid exe
	trap - EXIT
	# A second interrupt must not cut a dpkg run of the cleanup short.
	trap '' INT TERM
	if [[ -f ${SCRATCH:-}/pids ]]; then
		for pid in $(<"$SCRATCH/pids"); do
			exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
			case $exe in
			/usr/sbin/tetherd* | /usr/sbin/tether-agent*) e2e_stop_all ours "$pid" ;;
			esac
		done
	fi
	if [[ -n ${PIN_ROOT:-} && -e $PIN_ROOT ]]; then
		if [[ -x /usr/sbin/tetherd ]]; then
			/usr/sbin/tetherd --unload --pin-root "$PIN_ROOT" >/dev/null 2>&1 || true
		elif [[ -x $E2E_TETHERD ]]; then
			"$E2E_TETHERD" --unload --pin-root "$PIN_ROOT" >/dev/null 2>&1 || true
		fi
		rm -rf "$PIN_ROOT"
	fi
	if package_installed; then
		echo "# purging the package left installed" >&2
		dpkg --purge tether >/dev/null 2>&1 || echo "# could not purge tether" >&2
	fi
	# An interrupted dpkg run (ours) can leave a trigger (man-db's) half done.
	if [[ -n $(dpkg --audit 2>/dev/null) ]]; then
		echo "# dpkg --configure -a: a dpkg run was interrupted" >&2
		dpkg --configure -a >/dev/null 2>&1 || true
	fi
	if ((!USER_EXISTED)) && getent passwd tether >/dev/null; then
		# The test made the user (through the package): it takes it away.
		deluser --system tether >/dev/null 2>&1 || userdel tether 2>/dev/null ||
			echo "# could not remove the user tether" >&2
		getent group tether >/dev/null && groupdel tether 2>/dev/null
	fi
	local ns
	for ns in "${NS_ROUTER:-}" "${NS_VM:-}"; do
		[[ -n $ns && -e /var/run/netns/$ns ]] && ip netns del "$ns" 2>/dev/null
	done
	[[ -n ${RUN_DIR:-} ]] && rm -rf "$RUN_DIR"
	if ((status == 0 && failed == 0)); then
		rm -rf "$SCRATCH"
	else
		echo "# logs kept in $SCRATCH" >&2
	fi
	echo "$passed passed, $failed failed"
	exit "$status"
}

main() {
	local selected=("$@") tool
	((${#selected[@]})) || selected=("${TESTS[@]}")
	check_test_names test_ "${selected[@]}"
	e2e_require_root
	for tool in dpkg dpkg-deb lintian man zcat ip nsenter setpriv jq git systemd-analyze; do
		command -v "$tool" >/dev/null || e2e_die "'$tool' is not installed (make deps)"
	done
	if package_installed; then
		e2e_die "the package tether is installed on this machine; this test installs and purges its own: dpkg --purge tether first"
	fi
	[[ ! -e /sys/fs/bpf/tether ]] ||
		e2e_die "/sys/fs/bpf/tether exists: the package's removal would detach that data plane"
	USER_EXISTED=0
	getent passwd tether >/dev/null && USER_EXISTED=1
	ID=td$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
	NS_ROUTER=$ID-router
	NS_VM=$ID-vm
	IF_ROUTER=${ID}r
	IF_VM=${ID}v
	PIN_ROOT=/sys/fs/bpf/$ID
	RUN_DIR=/run/$ID
	SOCKET=$RUN_DIR/tetherd.sock
	SCRATCH=$(mktemp -d "/tmp/$ID.XXXXXX")
	: >"$SCRATCH/pids"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	run_tests "${selected[@]}"
	((failed == 0))
}

main "$@"
