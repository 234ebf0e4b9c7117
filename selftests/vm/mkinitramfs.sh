#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the guest's busybox initramfs for one kernel.
#
#   mkinitramfs.sh KVER KODIR TESTDIR OUT.cpio.gz [EXTRA_BIN...]
#
# KODIR holds our modules built for KVER; TESTDIR holds SUITE/*_test
# binaries; EXTRA_BIN are host programs copied with their libraries
# (migctl); nvme-cli and iproute2's ip (for netns.sh: busybox's ip has no
# netns) always are. Guest kernel modules come from Debian's image of KVER,
# unpacked by scripts/kernels.sh fetch.
set -euo pipefail

KVER=$1 KODIR=$2 TESTDIR=$3
mkdir -p "$(dirname "$4")"
OUT=$(cd "$(dirname "$4")" && pwd)/$(basename "$4")
shift 4
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VMIG_CACHE:-${HOME:-/root}/.cache/vfio-mig}
IMG=$CACHE/kernels/$KVER/root
# Kernel modules the guest loads, with everything they depend on.
# tls and the AEADs kTLS takes (migctl's records in the kernel).
GUEST_MODULES=(vfio_pci vfio_iommu_type1 nvme veth virtio_pci virtio_net tls
	gcm ghash_generic chacha20poly1305 chacha_generic poly1305_generic
	aesni_intel)

[ -f "$CACHE/kernels/$KVER/.complete" ] || {
	echo "mkinitramfs: no guest kernel $KVER (scripts/kernels.sh fetch)" >&2
	exit 1
}

ROOT=$(mktemp -d)
chmod 0755 "$ROOT"
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root}
mkdir -p "$ROOT/lib/modules/$KVER/extra"

cp /bin/busybox "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"
install -m 0755 "$HERE/init" "$ROOT/init"
install -m 0755 "$HERE/guest-lib.sh" "$ROOT/bin/guest-lib.sh"
install -m 0755 "$HERE/netns.sh" "$ROOT/bin/netns.sh"
[ -f "$HERE/demo-guest.sh" ] && install -m 0755 "$HERE/demo-guest.sh" "$ROOT/bin/"

# Distribution modules: decompress so busybox modprobe can load them.
MODS=$(for m in "${GUEST_MODULES[@]}"; do
	modprobe -d "$IMG" -S "$KVER" --show-depends "$m"
done | awk '$1 == "insmod" { print $2 }' | sort -u)
for src in $MODS; do
	rel=${src#"$IMG"/lib/modules/"$KVER"/}
	dst=$ROOT/lib/modules/$KVER/${rel%.xz}
	mkdir -p "$(dirname "$dst")"
	case "$src" in
	*.xz) xz -dc "$src" > "$dst" ;;
	*) cp "$src" "$dst" ;;
	esac
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
	[ -f "$IMG/lib/modules/$KVER/$f" ] &&
		cp "$IMG/lib/modules/$KVER/$f" "$ROOT/lib/modules/$KVER/"
done
cp "$KODIR"/*.ko "$ROOT/lib/modules/$KVER/extra/"
depmod -b "$ROOT" "$KVER"

# migctl's test credentials (scripts/tls-creds.sh), one set for every
# guest so that the two guests of a pair trust each other:
# /etc/vfio-mig/x509 (QEMU's layout), /etc/vfio-mig/rogue (the same names
# under another CA), /etc/vfio-mig/keys.psk and wrong.psk.
TLS=${VMIG_TLS_DIR:-$HERE/../../build/tls}
"$HERE/../../scripts/tls-creds.sh" "$TLS"
mkdir -p "$ROOT/etc/vfio-mig"
cp -a "$TLS/x509" "$TLS/rogue" "$TLS/keys.psk" "$TLS/wrong.psk" \
	"$ROOT/etc/vfio-mig/"

# Host programs with their shared libraries.
copy_bin() {
	local bin=$1 lib
	install -D -m 0755 "$bin" "$ROOT/usr/sbin/$(basename "$bin")"
	for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$ROOT$lib" ] || install -D -m 0755 "$lib" "$ROOT$lib"
	done
}
copy_bin "$(command -v nvme)"
# iproute2's ip goes to /usr/sbin (netns.sh runs it by that path).
IPROUTE=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v ip) &&
	"$IPROUTE" -V 2>/dev/null | grep iproute2 > /dev/null || {
	echo "mkinitramfs: no iproute2 ip (scripts/deps.sh installs it)" >&2
	exit 1
}
copy_bin "$IPROUTE"
for b in "$@"; do
	copy_bin "$b"
done

# A real VMM for the qemu suite: Debian 13's QEMU 10 (scripts/qemu10.sh),
# its binary with its own loader and library closure under /opt/qemu10,
# the firmware an L2 machine needs, and /usr/bin/qemu10 to run it. Set
# VMIG_NO_QEMU10=1 to leave it out.
if [ "${VMIG_NO_QEMU10:-0}" != 1 ]; then
	Q10=$("$HERE/../../scripts/qemu10.sh" root)
	QD=$ROOT/opt/qemu10
	QLIB=usr/lib/x86_64-linux-gnu
	install -D -m 0755 "$Q10/usr/bin/qemu-system-x86_64" \
		"$QD/bin/qemu-system-x86_64"
	mkdir -p "$QD/lib" "$QD/share" "$QD/modules"
	for lib in $("$Q10/$QLIB/ld-linux-x86-64.so.2" \
			--library-path "$Q10/$QLIB:$Q10/lib/x86_64-linux-gnu" \
			--list "$Q10/usr/bin/qemu-system-x86_64" |
			grep -o '/[^ ]*'); do
		cp -L "$lib" "$QD/lib/$(basename "$lib")"
	done
	cp -L "$Q10/$QLIB/ld-linux-x86-64.so.2" "$QD/lib/"
	for f in seabios/bios-256k.bin qemu/kvmvapic.bin \
		 qemu/linuxboot_dma.bin qemu/multiboot_dma.bin; do
		cp -L "$Q10/usr/share/$f" "$QD/share/"
	done
	cat > "$ROOT/usr/bin/qemu10" <<'EOS'
#!/bin/sh
# Debian 13's QEMU 10 with its own loader and libraries (mkinitramfs.sh).
Q=/opt/qemu10
export QEMU_MODULE_DIR=$Q/modules
exec $Q/lib/ld-linux-x86-64.so.2 --library-path $Q/lib \
	$Q/bin/qemu-system-x86_64 -L $Q/share "$@"
EOS
	chmod 0755 "$ROOT/usr/bin/qemu10"
fi

mkdir -p "$ROOT/tests"
cp -r "$TESTDIR"/. "$ROOT/tests/"

(cd "$ROOT" && find . -print0 | cpio --null -o -H newc --quiet) |
	gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
