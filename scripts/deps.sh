#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install every Debian package the build, the tests and the demo need.
# Idempotent: packages already present are not touched, and
# 'apt-get update' runs at most once per call, only when something is missing.
set -euo pipefail

PKGS=(
	build-essential make gcc libc6-dev pkg-config
	linux-headers-amd64 linux-headers-6.12-amd64
	linux-source-6.1 linux-source-6.12
	libnl-3-dev libnl-genl-3-dev
	libgnutls28-dev libsodium-dev gnutls-bin
	dkms sparse kmod
	qemu-system-x86 busybox-static nvme-cli iproute2 cpio xz-utils
	python3 python3-yaml
	debian-archive-keyring
	# make check-debug builds a kernel
	flex bison bc libelf-dev libssl-dev
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root (or: sudo $0) to install them" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
