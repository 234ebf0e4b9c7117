#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A real VMM for the test bed: Debian 13's QEMU 10, unpacked into a private
# folder with its whole library closure, beside (never over) the machine's
# Debian 12 packages.
#
#   qemu10.sh fetch    download and unpack it into $VMIG_CACHE/qemu10/root
#                      (idempotent: a complete, version-checked copy is kept)
#   qemu10.sh root     print that folder (fetching first if needed)
#   qemu10.sh run ARGS run qemu-system-x86_64 from it (host-side check)
#
# The packages come from the Debian registry this machine already uses
# (its apt sources' URI, suite trixie), through a private apt configuration:
# its own sources list, lists, an empty dpkg status (so apt resolves the
# whole closure, trixie's libc included) and its own archive cache. The
# archive is checked with the trixie keys of debian-archive-keyring.
set -euo pipefail

CACHE=${VMIG_CACHE:-${HOME:-/root}/.cache/vfio-mig}
Q=$CACHE/qemu10
ROOT=$Q/root
SUITE=${VMIG_QEMU_SUITE:-trixie}
MAJOR=10
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

die() { echo "qemu10: $*" >&2; exit 1; }

mirror() {
	# The URI of the machine's own Debian source (deb822 or one-line form).
	local u
	u=$(sed -n 's/^URIs: *\([^ ]*\/debian\)\/*$/\1/p' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
	[ -n "$u" ] || u=$(sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\/debian\)\/* .*/\2/p' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		2>/dev/null | head -n 1)
	[ -n "$u" ] || die "no Debian archive in this machine's apt sources"
	echo "$u"
}

run_qemu() {
	QEMU_MODULE_DIR=$ROOT/usr/lib/x86_64-linux-gnu/qemu \
	exec "$ROOT/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
		--library-path "$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu" \
		"$ROOT/usr/bin/qemu-system-x86_64" "$@"
}

version_ok() {
	local v
	v=$( (run_qemu --version) 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p')
	[ "${v%%.*}" = "$MAJOR" ] && echo "$v"
}

fetch() {
	local apt=$Q/apt d v
	if [ -f "$Q/.complete" ] && v=$(version_ok); then
		return 0
	fi
	[ -f "$KEYRING" ] || die "$KEYRING missing (install debian-archive-keyring)"
	rm -rf "$ROOT" "$Q/.complete"
	mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/etc" "$ROOT"
	: > "$apt/status"
	echo "deb [signed-by=$KEYRING] $(mirror) $SUITE main" > "$apt/etc/sources.list"
	local opts=(-o "Dir::Etc::sourcelist=$apt/etc/sources.list"
		-o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$apt/lists"
		-o "Dir::State::status=$apt/status"
		-o "Dir::Cache::Archives=$apt/archives"
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
		-o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1
		-o APT::Sandbox::User=root)
	echo "qemu10: fetching qemu-system-x86 from Debian $SUITE (private apt state in $apt)"
	apt-get -q "${opts[@]}" update ||
		die "apt-get update of Debian $SUITE failed"
	apt-cache "${opts[@]}" show qemu-system-x86 >/dev/null 2>&1 ||
		die "the registry has no qemu-system-x86 in Debian $SUITE"
	apt-get -q -y "${opts[@]}" install --download-only \
		--no-install-recommends qemu-system-x86 ||
		die "downloading qemu-system-x86 and its closure failed"
	for d in "$apt"/archives/*.deb; do
		dpkg-deb -x "$d" "$ROOT"
	done
	v=$(version_ok) ||
		die "unpacked QEMU does not run or is not version $MAJOR: $( (run_qemu --version 2>&1 || true) | head -n 1)"
	# The downloaded archives are no longer needed once unpacked.
	rm -f "$apt"/archives/*.deb
	echo "$v" > "$Q/version"
	touch "$Q/.complete"
	echo "qemu10: QEMU $v in $ROOT"
}

case "${1:-}" in
fetch) fetch ;;
root) fetch >&2; echo "$ROOT" ;;
run) shift; fetch >&2; run_qemu "$@" ;;
*)
	echo "usage: $0 fetch|root|run ARGS..." >&2
	exit 2 ;;
esac
