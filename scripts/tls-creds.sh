#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Test credentials for migctl's TLS, made with GnuTLS's certtool.
#
#   tls-creds.sh DIR
#
# DIR/x509: a CA and a server and a client certificate and key, in the
# layout of QEMU's tls-creds-x509 (ca-cert.pem, server-cert.pem,
# server-key.pem, client-cert.pem, client-key.pem). The server's
# certificate names vmig-target, localhost and the test bed's addresses;
# the client's is CN=vmig-source.
# DIR/rogue: the same names under another CA (an impostor, for the tests).
# DIR/swapped: DIR/x509's certificates in each other's roles (the server's
# as client-*, the client's as server-*: wrong key purposes).
# DIR/peer-cn, -san, -ip, -wild, -comma: DIR/x509 with a client certificate
# named otherwise: CN vmig-source-cn and no subjectAltName; CN
# vmig-cn-other and DNS vmig-san; CN 10.0.0.5 and IP 10.0.0.9; CN
# *.vmig-test; CN "vmig,a" (for --allow-peer's tests).
# DIR/keys.psk: "vmig-source:HEX" (32 random bytes); DIR/wrong.psk: the
# same identity with another key.
# For tests only: real deployments get their certificates from their own
# CA (Documentation/live-migration.rst, "Security"). Idempotent: an
# existing complete DIR is kept.
set -euo pipefail

DIR=$1
# .complete-N: the layout's version (a newer one makes the set afresh)
[ -f "$DIR/.complete-4" ] && exit 0
command -v certtool > /dev/null || {
	echo "tls-creds: certtool missing (gnutls-bin; scripts/deps.sh)" >&2
	exit 1
}
rm -rf "$DIR"
mkdir -p "$DIR"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
umask 077

# one CA with a server and a client certificate, into $1
pki() {
	local out=$1 ca=$2
	mkdir -p "$out"
	certtool --generate-privkey --key-type=ecdsa --outfile "$out/ca-key.pem" 2>/dev/null
	cat > "$T/ca.tmpl" <<-EOT
	cn = "$ca"
	ca
	cert_signing_key
	expiration_days = 3650
	EOT
	certtool --generate-self-signed --load-privkey "$out/ca-key.pem" \
		--template "$T/ca.tmpl" --outfile "$out/ca-cert.pem" 2>/dev/null
	cat > "$T/server.tmpl" <<-EOT
	cn = "vmig-target"
	dns_name = "vmig-target"
	dns_name = "localhost"
	ip_address = "127.0.0.1"
	ip_address = "::1"
	ip_address = "10.99.0.2"
	ip_address = "fd99::2"
	ip_address = "10.98.0.1"
	ip_address = "10.98.0.2"
	tls_www_server
	encryption_key
	signing_key
	expiration_days = 3650
	EOT
	cat > "$T/client.tmpl" <<-EOT
	cn = "vmig-source"
	dns_name = "vmig-source"
	tls_www_client
	encryption_key
	signing_key
	expiration_days = 3650
	EOT
	# clients named in other ways (DIR/peer-*, below): client use only
	variant() {
		local v=$1
		shift
		printf '%s\n' "$@" tls_www_client encryption_key signing_key \
			"expiration_days = 3650" > "$T/peer-$v.tmpl"
	}
	variant cn 'cn = "vmig-source-cn"'
	variant san 'cn = "vmig-cn-other"' 'dns_name = "vmig-san"'
	variant ip 'cn = "10.0.0.5"' 'ip_address = "10.0.0.9"'
	variant wild 'cn = "*.vmig-test"'
	variant comma 'cn = "vmig,a"'
	for who in server client peer-cn peer-san peer-ip peer-wild peer-comma; do
		certtool --generate-privkey --key-type=ecdsa \
			--outfile "$out/$who-key.pem" 2>/dev/null
		certtool --generate-certificate --load-privkey "$out/$who-key.pem" \
			--load-ca-certificate "$out/ca-cert.pem" \
			--load-ca-privkey "$out/ca-key.pem" \
			--template "$T/$who.tmpl" --outfile "$out/$who-cert.pem" 2>/dev/null
	done
	chmod 0644 "$out"/*-cert.pem
	# the CA signs nothing more: its key does not stay with the credentials
	rm -f "$out/ca-key.pem"
}
pki "$DIR/x509" "vfio-mig test CA"
pki "$DIR/rogue" "an impostor's CA"
mkdir -p "$DIR/swapped"
cp -a "$DIR/x509/ca-cert.pem" "$DIR/swapped/"
for f in cert key; do
	cp -a "$DIR/x509/server-$f.pem" "$DIR/swapped/client-$f.pem"
	cp -a "$DIR/x509/client-$f.pem" "$DIR/swapped/server-$f.pem"
done
# DIR/peer-*: DIR/x509 with the source's certificate of each variant
for v in cn san ip wild comma; do
	mkdir -p "$DIR/peer-$v"
	cp -a "$DIR/x509/ca-cert.pem" "$DIR/peer-$v/"
	for f in cert key; do
		mv "$DIR/x509/peer-$v-$f.pem" "$DIR/peer-$v/client-$f.pem"
		cp -a "$DIR/x509/server-$f.pem" "$DIR/peer-$v/server-$f.pem"
	done
	rm -f "$DIR/rogue/peer-$v-"*.pem
done
printf 'vmig-source:%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > "$DIR/keys.psk"
printf 'vmig-source:%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > "$DIR/wrong.psk"
chmod 0600 "$DIR"/*.psk
touch "$DIR/.complete-4"
