#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Boot the test bed for one kernel and collect what the guest reports.
#
#   run.sh KVER INITRD OUTDIR [test|demo|shell]
#
# The machine: q35 + intel-iommu (caching-mode, for VFIO in the guest),
# two edu devices and an NVMe controller with SR-IOV, under TCG.
# ttyS0 is the kernel console (OUTDIR/console.log), ttyS1 carries the
# tests' TAP or the demo's output (OUTDIR/guest.log, also shown live).
# VMIG_VM_TIMEOUT (seconds, default 1200) bounds the whole boot.
set -uo pipefail

KVER=$1 INITRD=$2 OUT=$3 MODE=${4:-test}
CACHE=${VMIG_CACHE:-${HOME:-/root}/.cache/vfio-mig}
LIMIT=${VMIG_VM_TIMEOUT:-1200}
KERNEL=$CACHE/kernels/$KVER/vmlinuz

mkdir -p "$OUT"
rm -f "$OUT/console.log" "$OUT/guest.log"
: > "$OUT/guest.log"

QEMU=(qemu-system-x86_64
	-M q35 -accel tcg,thread=multi -cpu max -smp 2 -m 1G
	-nodefaults -vga none -display none -no-reboot
	-device intel-iommu,intremap=on,caching-mode=on
	-device edu,addr=03.0
	-device edu,addr=05.0
	-device nvme-subsys,id=s0
	-device "nvme,serial=vmig0,subsys=s0,sriov_max_vfs=2,sriov_vq_flexible=8,sriov_vi_flexible=4,max_ioqpairs=12,msix_qsize=8,addr=04.0"
	-kernel "$KERNEL" -initrd "$INITRD"
	-append "console=ttyS0 intel_iommu=on panic=-1 vmig.mode=$MODE"
	-serial "file:$OUT/console.log")

if [ "$MODE" = shell ]; then
	QEMU[${#QEMU[@]}-1]=mon:stdio
	exec "${QEMU[@]}" -serial "file:$OUT/guest.log"
fi

start=$(date +%s.%N)
timeout -k 10 "$LIMIT" "${QEMU[@]}" -serial "file:$OUT/guest.log" \
	</dev/null 2>"$OUT/qemu.log" &
qpid=$!
if [ "${VMIG_QUIET:-0}" != 1 ]; then
	tail --pid=$qpid -s 0.2 -n +1 -F "$OUT/guest.log" 2>/dev/null |
		grep --line-buffered -v '^=== VMIG-' &
	tpid=$!
fi
wait $qpid
rc=$?
end=$(date +%s.%N)
[ -n "${tpid:-}" ] && wait "$tpid" 2>/dev/null
awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", e - s }' \
	> "$OUT/wall_seconds"
echo "$rc" > "$OUT/qemu_rc"
exit 0
