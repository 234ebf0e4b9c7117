#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The kernels vfio-mig supports, resolved from Debian's packages.
#
#   kernels.sh list        the supported kernel releases (6.1, 6.12), one a line
#   kernels.sh default     the release 'make' builds for when the running
#                          kernel has no headers installed
#   kernels.sh fetch KVER  unpack Debian's image of KVER (vmlinuz + modules)
#                          into $VMIG_CACHE/kernels/KVER for the VM test bed
set -euo pipefail

CACHE=${VMIG_CACHE:-${HOME:-/root}/.cache/vfio-mig}
# Meta packages whose dependency names the current release of each kernel.
METAS=(linux-headers-amd64 linux-headers-6.12-amd64)

release_of() {
	# "linux-headers-6.1.0-56-amd64 (= 6.1.192-2)" -> 6.1.0-56-amd64
	dpkg-query -W -f='${Depends}' "$1" 2>/dev/null |
		tr ',' '\n' | sed -n 's/^ *linux-headers-\([0-9][^ ]*\).*/\1/p' |
		head -n 1
}

list() {
	local m r
	for m in "${METAS[@]}"; do
		r=$(release_of "$m")
		if [ -z "$r" ]; then
			echo "kernels: $m is not installed (run scripts/deps.sh)" >&2
			exit 1
		fi
		echo "$r"
	done
}

fetch() {
	local kver=$1 dir=$CACHE/kernels/$1 ver tmp deb
	[ -f "$dir/.complete" ] && return 0
	ver=$(dpkg-query -W -f='${Version}' "linux-headers-$kver" 2>/dev/null) || {
		echo "kernels: linux-headers-$kver is not installed" >&2
		exit 1
	}
	tmp=$(mktemp -d)
	chmod 755 "$tmp"
	trap 'rm -rf "$tmp"' RETURN
	echo "kernels: downloading linux-image-$kver-unsigned=$ver"
	(cd "$tmp" && apt-get download -q "linux-image-$kver-unsigned=$ver") ||
	(cd "$tmp" && apt-get download -q "linux-image-$kver=$ver")
	deb=$(ls "$tmp"/*.deb)
	rm -rf "$dir"
	mkdir -p "$dir/root"
	dpkg-deb -x "$deb" "$dir/root"
	cp "$dir/root/boot/vmlinuz-$kver" "$dir/vmlinuz"
	depmod -b "$dir/root" "$kver"
	touch "$dir/.complete"
}

case "${1:-}" in
list) list ;;
default)
	list | tail -n 1 ;;
fetch)
	[ $# -eq 2 ] || { echo "usage: $0 fetch KVER" >&2; exit 2; }
	fetch "$2" ;;
*)
	echo "usage: $0 list|default|fetch KVER" >&2
	exit 2 ;;
esac
