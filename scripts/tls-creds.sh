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
# DIR/cn-only: DIR/x509 with a client certificate that names
# vmig-source-cn in its CN alone (no subjectAltName).
# DIR/keys.psk: "vmig-source:HEX" (32 random bytes); DIR/wrong.psk: the
# same identity with another key.
# For tests only: real deployments get their certificates from their own
# CA (Documentation/live-migration.rst, "Security"). Idempotent: an
# existing complete DIR is kept.
set -euo pipefail

DIR=$1
# .complete-N: the layout's version (a newer one makes the set afresh)
[ -f "$DIR/.complete-3" ] && exit 0
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
	# a client named by its CN alone: no subjectAltName, client use only
	cat > "$T/cn-client.tmpl" <<-EOT
	cn = "vmig-source-cn"
	tls_www_client
	encryption_key
	signing_key
	expiration_days = 3650
	EOT
	for who in server client cn-client; do
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
mkdir -p "$DIR/cn-only"
cp -a "$DIR/x509/ca-cert.pem" "$DIR/cn-only/"
for f in cert key; do
	mv "$DIR/x509/cn-client-$f.pem" "$DIR/cn-only/client-$f.pem"
	cp -a "$DIR/x509/server-$f.pem" "$DIR/cn-only/server-$f.pem"
done
rm -f "$DIR/rogue"/cn-client-*.pem
printf 'vmig-source:%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > "$DIR/keys.psk"
printf 'vmig-source:%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > "$DIR/wrong.psk"
chmod 0600 "$DIR"/*.psk
touch "$DIR/.complete-3"
