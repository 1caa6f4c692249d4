#!/usr/bin/env bash
# Installs the Debian packages Tether needs (when missing) and mounts bpffs.
# Run as root on Debian 12; `make test` and `make demo` call it.
set -euo pipefail

packages=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libcmocka-dev iproute2 make gcc
	  libglib2.0-dev pkg-config jq ethtool libclang-rt-14-dev nftables
	  # sysctl in the tests' namespaces (a minimal Debian 12 image lacks it)
	  procps
	  socat valgrind etcd-server etcd-client libcurl4-openssl-dev libjson-glib-dev
	  # TLS on the control connections (GnuTLS); certtool makes the tests' certificates
	  libgnutls28-dev gnutls-bin
	  # make deb and tests/packaging/test_deb.sh (man, bash completion, systemd-analyze)
	  debhelper dpkg-dev fakeroot lintian scdoc man-db bash-completion systemd
	  libmicrohttpd-dev prometheus)
missing=()
for package in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$package")
done
if ((${#missing[@]})); then
	if [[ $EUID -ne 0 ]]; then
		echo "tether: missing packages ${missing[*]}; run as root (apt-get install needs it)" >&2
		exit 1
	fi
	echo "tether: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
	if [[ $EUID -ne 0 ]]; then
		echo "tether: bpffs is not mounted at /sys/fs/bpf; run as root" >&2
		exit 1
	fi
	mount -t bpf bpf /sys/fs/bpf
fi
