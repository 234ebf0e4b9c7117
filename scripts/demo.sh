#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make demo: build for the newest supported kernel, boot the test bed and
# show vfio-mig at work (VMIG_KERNELS=... picks another kernel).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
B=$TOP/build
K=${VMIG_KERNELS:-$(scripts/kernels.sh default)}
K=${K%% *}
KSRC=$(scripts/ksrc.sh)
mkdir -p "$B/ksft"
cp "$KSRC"/tools/testing/selftests/kselftest*.h "$B/ksft/"

echo "==> building modules for $K, migctl and the test VMM"
scripts/build-kmods.sh "$K" "$B/kmod/$K"
make -s -C tools/migctl
make -s -C selftests vm OUT="$B/tests" KSFT_INC="$B/ksft" > /dev/null
scripts/kernels.sh fetch "$K"
# the demo's migration needs no QEMU 10 in the guest (the qemu suite does)
VMIG_NO_QEMU10=1 selftests/vm/mkinitramfs.sh "$K" "$B/kmod/$K" "$B/tests" \
	"$B/vm/initramfs-$K.cpio.gz" "$TOP/tools/migctl/migctl"
echo "==> booting the test bed ($K, QEMU TCG; about 20 s)"
selftests/vm/run.sh "$K" "$B/vm/initramfs-$K.cpio.gz" "$B/vm/demo-$K" demo
if ! grep -q 'demo finished' "$B/vm/demo-$K/guest.log"; then
	echo "demo failed; guest console: $B/vm/demo-$K/console.log" >&2
	exit 1
fi
