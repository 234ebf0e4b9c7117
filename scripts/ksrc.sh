#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Unpack the build-time files vfio-mig takes from Debian's linux-source-6.12
# (kselftest harness, checkpatch, ynl) into $VMIG_CACHE once, and print
# the folder. Nothing from the kernel tree is committed to ours.
set -euo pipefail

CACHE=${VMIG_CACHE:-${HOME:-/root}/.cache/vfio-mig}
PKG=linux-source-6.12
TAR=/usr/src/$PKG.tar.xz
VER=$(dpkg-query -W -f='${Version}' "$PKG")
DIR=$CACHE/ksrc-$VER

if [ ! -f "$DIR/.complete" ]; then
	rm -rf "$DIR"
	mkdir -p "$DIR"
	tar -xJf "$TAR" -C "$DIR" --strip-components=1 --wildcards \
		"$PKG/tools/testing/selftests/kselftest*.h" \
		"$PKG/scripts/checkpatch.pl" \
		"$PKG/scripts/spelling.txt" \
		"$PKG/scripts/const_structs.checkpatch" \
		"$PKG/tools/net/ynl/*" \
		"$PKG/Documentation/netlink/*"
	touch "$DIR/.complete"
fi
echo "$DIR"
