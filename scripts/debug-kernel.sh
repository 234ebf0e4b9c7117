#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A debug build of Debian's linux-source-6.12 for the VM test bed (make
# check-debug): KASAN, PROVE_LOCKING and DEBUG_ATOMIC_SLEEP on a small
# config (x86_64_defconfig + kvm_guest.config + what the test bed needs,
# the fragment below), built once and cached.
#
#   debug-kernel.sh build   build (unless cached) and print its release
#   debug-kernel.sh kver    print the release the current config would have
#   debug-kernel.sh kdir    print its build tree (for out-of-tree modules)
#
# The source is unpacked once into $VMIG_CACHE/debug-kernel/src-SRCVER;
# a build lives in $VMIG_CACHE/debug-kernel/SRCVER-HASH (HASH: of this
# script's config fragment), its objects in build/.
# Its release is SRCVER-vmig-debug-HASH, installed into the test bed's
# kernel cache like Debian's images (scripts/kernels.sh fetch):
# $VMIG_CACHE/kernels/KVER/{vmlinuz,root/lib/modules/KVER}, so
# mkinitramfs.sh and run.sh take KVER as for any other kernel, and
# build-kmods.sh builds against it with KDIR=$(debug-kernel.sh kdir).
# Builds run under 'nice -n 19' with VMIG_JOBS jobs (default: nproc).
set -euo pipefail

CACHE=${VMIG_CACHE:-${HOME:-/root}/.cache/vfio-mig}
PKG=linux-source-6.12
TAR=/usr/src/$PKG.tar.xz
JOBS=${VMIG_JOBS:-$(nproc)}

# What the test bed needs on top of x86_64_defconfig + kvm_guest.config:
# q35 + intel-iommu with interrupt remapping, VFIO type1 (no iommufd,
# as in Debian's config), NVMe with SR-IOV, veth/netns, virtio-net for
# the pair; as modules where the guest modprobes them. Then the checkers.
# Left out, for build time: debug info (reports still name functions),
# and what the test bed never uses (graphics, sound, USB, input, disks
# and file systems, NICs but virtio-net, netfilter, SELinux).
fragment() {
	cat <<'EOF'
CONFIG_LOCALVERSION_AUTO=n
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_MODULE_SIG=n
CONFIG_MODULE_COMPRESS=n
CONFIG_PCI=y
CONFIG_PCI_IOV=y
CONFIG_PCI_MSI=y
CONFIG_IOMMU_SUPPORT=y
CONFIG_INTEL_IOMMU=y
CONFIG_INTEL_IOMMU_DEFAULT_ON=y
CONFIG_IRQ_REMAP=y
CONFIG_IOMMUFD=n
CONFIG_VFIO=m
CONFIG_VFIO_GROUP=y
CONFIG_VFIO_CONTAINER=y
CONFIG_VFIO_IOMMU_TYPE1=m
CONFIG_VFIO_PCI=m
CONFIG_VFIO_PCI_CORE=m
CONFIG_VFIO_PCI_MMAP=y
CONFIG_VFIO_PCI_INTX=y
CONFIG_NVME_CORE=m
CONFIG_BLK_DEV_NVME=m
CONFIG_NET_NS=y
CONFIG_VETH=m
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_NET=m
CONFIG_TLS=m
CONFIG_CRYPTO_CHACHA20POLY1305=m
CONFIG_CRYPTO_CHACHA20=m
CONFIG_CRYPTO_POLY1305=m
CONFIG_CRYPTO_AES_NI_INTEL=m
CONFIG_DEBUG_FS=y
CONFIG_DEVTMPFS=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_DEBUG_INFO_NONE=y
CONFIG_DEBUG_INFO=n
CONFIG_DEBUG_INFO_BTF=n
CONFIG_DRM=n
CONFIG_FB=n
CONFIG_AGP=n
CONFIG_SOUND=n
CONFIG_USB_SUPPORT=n
CONFIG_HID=n
CONFIG_INPUT_MOUSE=n
CONFIG_INPUT_JOYSTICK=n
CONFIG_INPUT_TABLET=n
CONFIG_INPUT_TOUCHSCREEN=n
CONFIG_WLAN=n
CONFIG_WIRELESS=n
CONFIG_ETHERNET=n
CONFIG_PCCARD=n
CONFIG_ATA=n
CONFIG_SCSI=n
CONFIG_EXT4_FS=n
CONFIG_ISO9660_FS=n
CONFIG_MSDOS_FS=n
CONFIG_VFAT_FS=n
CONFIG_AUTOFS_FS=n
CONFIG_QUOTA=n
CONFIG_NETWORK_FILESYSTEMS=n
CONFIG_NET_9P=n
CONFIG_NETFILTER=n
CONFIG_NET_SCHED=n
CONFIG_AUDIT=n
CONFIG_SECURITY_SELINUX=n
CONFIG_HIBERNATION=n
CONFIG_SUSPEND=n
CONFIG_PROFILING=n
CONFIG_KALLSYMS=y
CONFIG_KALLSYMS_ALL=y
CONFIG_KASAN=y
CONFIG_KASAN_GENERIC=y
CONFIG_KASAN_INLINE=y
CONFIG_KASAN_VMALLOC=y
CONFIG_PROVE_LOCKING=y
CONFIG_DEBUG_ATOMIC_SLEEP=y
CONFIG_PANIC_ON_OOPS=n
EOF
}

srcver() { dpkg-query -W -f='${Version}' "$PKG"; }
hash8() { fragment | sha256sum | cut -c1-8; }
# 6.12.118-1~deb12u1 -> 6.12.118
upstream() { srcver | sed 's/-[^-]*$//'; }
kver() { echo "$(upstream)-vmig-debug-$(hash8)"; }
dir() { echo "$CACHE/debug-kernel/$(srcver)-$(hash8)"; }

build() {
	local d kv src obj kimg t0
	d=$(dir)
	kv=$(kver)
	src=$CACHE/debug-kernel/src-$(srcver) obj=$d/build
	kimg=$CACHE/kernels/$kv
	mkdir -p "$d"
	# One build at a time (a second caller waits and takes the result).
	exec 9> "$CACHE/debug-kernel/lock"
	flock 9
	if [ -f "$d/.complete" ] && [ -f "$kimg/.complete" ]; then
		echo "$kv"
		return 0
	fi
	t0=$(date +%s)
	if [ ! -f "$src/.unpacked" ]; then
		echo "debug-kernel: unpacking $TAR" >&2
		rm -rf "$src"
		mkdir -p "$src"
		tar -xJf "$TAR" -C "$src" --strip-components=1
		touch "$src/.unpacked"
	fi
	mkdir -p "$obj"
	fragment > "$d/vmig-debug.config"
	echo "CONFIG_LOCALVERSION=\"-vmig-debug-$(hash8)\"" >> "$d/vmig-debug.config"
	# The Makefile's version is upstream's; check the release we name.
	local mk
	mk=$(make -s -C "$src" kernelversion)
	[ "$mk" = "$(upstream)" ] ||
		{ echo "debug-kernel: source says $mk, package $(upstream)" >&2; exit 1; }
	echo "debug-kernel: configuring in $obj" >&2
	make -s -C "$src" O="$obj" x86_64_defconfig > /dev/null
	(cd "$obj" && "$src/scripts/kconfig/merge_config.sh" -m .config \
		"$src/kernel/configs/kvm_guest.config" "$d/vmig-debug.config") \
		> "$d/merge.log"
	make -s -C "$src" O="$obj" olddefconfig > /dev/null
	# merge_config.sh warns about values kconfig overrode; ours must hold.
	local line sym val got
	while read -r line; do
		sym=${line%%=*} val=${line#*=}
		got=$(grep -E "^$sym=|^# $sym is not set" "$obj/.config" || true)
		case "$val" in
		n) [ -z "$got" ] || [ "$got" = "# $sym is not set" ] ;;
		*) [ "$got" = "$sym=$val" ] ;;
		esac || { echo "debug-kernel: $sym=$val did not hold: '$got'" >&2; exit 1; }
	done < "$d/vmig-debug.config"
	echo "debug-kernel: building $kv with $JOBS jobs (log: $d/build.log)" >&2
	if ! nice -n 19 make -C "$src" O="$obj" -j"$JOBS" bzImage modules \
			> "$d/build.log" 2>&1; then
		tail -n 40 "$d/build.log" >&2
		exit 1
	fi
	[ "$(cat "$obj/include/config/kernel.release")" = "$kv" ] ||
		{ echo "debug-kernel: release is not $kv" >&2; exit 1; }
	rm -rf "$kimg"
	mkdir -p "$kimg/root"
	nice -n 19 make -s -C "$src" O="$obj" INSTALL_MOD_PATH="$kimg/root" \
		INSTALL_MOD_STRIP=1 DEPMOD=/sbin/depmod modules_install > /dev/null
	cp "$obj/arch/x86/boot/bzImage" "$kimg/vmlinuz"
	depmod -b "$kimg/root" "$kv"
	touch "$kimg/.complete"
	echo "$(($(date +%s) - t0))" > "$d/build_seconds"
	touch "$d/.complete"
	echo "debug-kernel: built $kv in $(cat "$d/build_seconds") s" >&2
	echo "$kv"
}

case "${1:-}" in
build) build ;;
kver) kver ;;
kdir) echo "$(dir)/build" ;;
*)
	echo "usage: $0 build|kver|kdir" >&2
	exit 2 ;;
esac
