#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# dkms add / build / install for each kernel given, in private DKMS trees
# (nothing touches /var/lib/dkms or /lib/modules). TAP lines go to $1.
#
#   dkms-check.sh OUT.tap KVER...
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$1
shift
VER=$(cat "$TOP/VERSION")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
S=$W/src D=$W/dkms I=$W/install
mkdir -p "$S/vfio-mig-$VER" "$D" "$I"

tap() { if [ "$1" = ok ]; then echo "ok - $2"; else echo "not ok - $2"; fi >> "$OUT"; }

conf_ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$TOP/dkms.conf")
tap "$([ "$conf_ver" = "$VER" ] && echo ok)" "dkms.conf PACKAGE_VERSION ($conf_ver) matches VERSION ($VER)"

# What a release tarball holds: the tracked (and new, unignored) files.
(cd "$TOP" && git ls-files -co --exclude-standard -z |
	xargs -0 -I{} cp --parents {} "$S/vfio-mig-$VER/") 2>/dev/null ||
	cp -r "$TOP"/. "$S/vfio-mig-$VER/"

common=(-m vfio-mig -v "$VER" --sourcetree "$S" --dkmstree "$D")
if dkms add "${common[@]}" > "$W/add.log" 2>&1; then
	tap ok "dkms add"
else
	cat "$W/add.log"
	tap no "dkms add"
	exit 1
fi
for k in "$@"; do
	if dkms build "${common[@]}" -k "$k" > "$W/build-$k.log" 2>&1; then
		tap ok "dkms build -k $k"
	else
		tail -n 30 "$W/build-$k.log"
		cat "$D/vfio-mig/$VER/build/make.log" 2>/dev/null | tail -n 30
		tap no "dkms build -k $k"
		continue
	fi
	mkdir -p "$I/$k"
	if dkms install "${common[@]}" -k "$k" --installtree "$I" --no-depmod \
		> "$W/install-$k.log" 2>&1; then
		ok=ok
		for m in dirty_track vfio_mig sriov_shadow; do
			f=$(ls "$I/$k/updates/dkms/$m.ko"* 2>/dev/null | head -n 1)
			if [ -z "$f" ] ||
			   ! modinfo -F vermagic "$f" | grep -q "^$k "; then
				echo "dkms install -k $k: $m missing or wrong vermagic"
				ok=no
			fi
		done
		tap $ok "dkms install -k $k (three modules, vermagic $k)"
	else
		tail -n 30 "$W/install-$k.log"
		tap no "dkms install -k $k"
	fi
done
dkms remove "${common[@]}" --all --installtree "$I" --no-depmod \
	> /dev/null 2>&1 || true
