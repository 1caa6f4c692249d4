#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Throw-away certificates for tests and demos, made with certtool (Debian's
# gnutls-bin; tools/install-deps.sh installs it), ECDSA P-256 keys, mode 0600.
# Never for production: the CA's key sits beside its certificate.
#
#   tools/test-certs.sh ca DIR NAME
#       A CA: DIR/NAME.pem and DIR/NAME-key.pem (CN=NAME), valid for a year.
#   tools/test-certs.sh server DIR CA NAME HOST... [--also-client]
#       A server's certificate signed by CA (DIR/CA.pem), CN=NAME, for TLS
#       server authentication (and client authentication too with
#       --also-client, as etcd's own gateway wants), naming each HOST (an IP
#       address, or a DNS name) in its subjectAltName: DIR/NAME.pem,
#       DIR/NAME-key.pem.
#   tools/test-certs.sh client DIR CA NAME CN [OPTION...]
#       A client's certificate signed by CA, subject CN=CN, for TLS client
#       authentication: DIR/NAME.pem, DIR/NAME-key.pem. Options:
#         --expired        valid from two days ago until yesterday
#         --not-yet        valid from tomorrow on
#         --server-only    for TLS server authentication only (no client use)
#         --ou UNIT        an organizational unit in the subject
#   tools/test-certs.sh rekey DIR NAME CA
#       Signs DIR/NAME's key again, now, into a new certificate with a new
#       serial (the same subject and names): a rotation.
#
# DIR is created (mode 0700). Exit status 0, or 1 with the reason on stderr.
set -euo pipefail

die() {
	echo "test-certs: $*" >&2
	exit 1
}

usage() {
	sed -n '3,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

command -v certtool >/dev/null ||
	die "certtool is not installed (Debian: gnutls-bin; tools/install-deps.sh installs it)"

# Runs certtool quietly; its messages only when it fails.
run_certtool() {
	local out
	out=$(certtool "$@" 2>&1) || die "certtool $*: $out"
}

new_key() {
	run_certtool --generate-privkey --key-type ecdsa --curve secp256r1 --outfile "$1"
	chmod 600 "$1"
}

# The serial: random, 16 bytes in hex (a rotation gets a new one).
serial() {
	echo "0x$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n' | sed 's/^./4/')"
}

# Sign DIR/NAME-key.pem into DIR/NAME.pem with the template in DIR/NAME.tmpl,
# by CA (empty: self-signed).
sign() {
	local dir=$1 name=$2 ca=$3
	if [[ -z $ca ]]; then
		run_certtool --generate-self-signed --load-privkey "$dir/$name-key.pem" \
			--template "$dir/$name.tmpl" --outfile "$dir/$name.pem"
	else
		[[ -f $dir/$ca.pem && -f $dir/$ca-key.pem ]] || die "no CA $ca in $dir"
		run_certtool --generate-certificate --load-privkey "$dir/$name-key.pem" \
			--load-ca-certificate "$dir/$ca.pem" --load-ca-privkey "$dir/$ca-key.pem" \
			--template "$dir/$name.tmpl" --outfile "$dir/$name.pem"
	fi
}

(($# >= 3)) || usage
command=$1 dir=$2
mkdir -p -m 700 "$dir"
case $command in
ca)
	(($# == 3)) || usage
	name=$3
	new_key "$dir/$name-key.pem"
	cat >"$dir/$name.tmpl" <<-EOF
		cn = "$name"
		serial = $(serial)
		expiration_days = 365
		ca
		cert_signing_key
		crl_signing_key
	EOF
	sign "$dir" "$name" ""
	;;
server)
	(($# >= 5)) || usage
	ca=$3 name=$4
	shift 4
	new_key "$dir/$name-key.pem"
	{
		echo "cn = \"$name\""
		echo "serial = $(serial)"
		echo "expiration_days = 365"
		echo "tls_www_server"
		echo "signing_key"
		echo "encryption_key"
		for host in "$@"; do
			if [[ $host == --also-client ]]; then
				echo "tls_www_client"
			elif [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then
				echo "ip_address = \"$host\""
			else
				echo "dns_name = \"$host\""
			fi
		done
	} >"$dir/$name.tmpl"
	sign "$dir" "$name" "$ca"
	;;
client)
	(($# >= 5)) || usage
	ca=$3 name=$4 cn=$5
	shift 5
	usage_line=tls_www_client dates=("expiration_days = 365") ou=
	while (($#)); do
		case $1 in
		--expired)
			dates=("activation_date = \"$(date -u -d '2 days ago' '+%Y-%m-%d %H:%M:%S')\""
				"expiration_date = \"$(date -u -d '1 day ago' '+%Y-%m-%d %H:%M:%S')\"")
			;;
		--not-yet)
			dates=("activation_date = \"$(date -u -d 'tomorrow' '+%Y-%m-%d %H:%M:%S')\""
				"expiration_date = \"$(date -u -d '1 year' '+%Y-%m-%d %H:%M:%S')\"")
			;;
		--server-only) usage_line=tls_www_server ;;
		--ou)
			(($# >= 2)) || usage
			ou=$2
			shift
			;;
		*) die "unknown option '$1'" ;;
		esac
		shift
	done
	new_key "$dir/$name-key.pem"
	{
		echo "cn = \"$cn\""
		[[ -z $ou ]] || echo "unit = \"$ou\""
		echo "serial = $(serial)"
		printf '%s\n' "${dates[@]}"
		echo "$usage_line"
		echo "signing_key"
	} >"$dir/$name.tmpl"
	sign "$dir" "$name" "$ca"
	;;
rekey)
	(($# == 4)) || usage
	name=$3 ca=$4
	[[ -f $dir/$name.tmpl ]] || die "no certificate $name in $dir"
	sed -i "s/^serial = .*/serial = $(serial)/" "$dir/$name.tmpl"
	sign "$dir" "$name" "$ca"
	;;
*) usage ;;
esac
