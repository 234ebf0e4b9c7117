#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Boot the test bed for one kernel and collect what the guest reports.
#
#   run.sh KVER INITRD OUTDIR [test|demo|shell]
#
# The machine (machine.sh): q35 + intel-iommu (caching-mode, for VFIO in
# the guest), two edu devices and an NVMe controller with SR-IOV, under TCG;
# its namespace is backed by OUTDIR/nvme-ns.img (64 MiB, made afresh).
# ttyS0 is the kernel console (OUTDIR/console.log), ttyS1 carries the
# tests' TAP or the demo's output (OUTDIR/guest.log, also shown live).
# VMIG_SUITES="s1 s2" runs only those suites' tests or benchmarks;
# VMIG_TEST="t1 t2" only those tests of them (selftests/vm/init, vmig.test=).
# VMIG_VM_TIMEOUT (seconds, default 1200) bounds the whole boot; a boot that
# never reaches init is tried again (machine.sh: VMIG_BOOT_TIMEOUT,
# VMIG_BOOT_TRIES; OUTDIR/boot_retries says what happened).
set -uo pipefail

KVER=$1 INITRD=$2 OUT=$3 MODE=${4:-test}
LIMIT=${VMIG_VM_TIMEOUT:-1200}
. "$(dirname "$0")/machine.sh"

mkdir -p "$OUT"
rm -f "$OUT/console.log" "$OUT/guest.log"
: > "$OUT/guest.log"

SUITES=${VMIG_SUITES:-}
SUITES=${SUITES// /,}
TESTS=${VMIG_TEST:-}
TESTS=${TESTS// /,}
# A fresh namespace (zeros) for every run.
VM_NVME_IMG=$OUT/nvme-ns.img
vm_nvme_image "$VM_NVME_IMG" || exit 1
vm_machine "$KVER" "$INITRD" "$OUT" "$MODE" ${SUITES:+"vmig.suites=$SUITES"} \
	${TESTS:+"vmig.test=$TESTS"}

if [ "$MODE" = shell ]; then
	QEMU[${#QEMU[@]}-1]=mon:stdio
	exec "${QEMU[@]}" -serial "file:$OUT/guest.log"
fi

start=$(date +%s.%N)
rm -f "$OUT"/*.boot*.log "$OUT/boot_retries"
for ((n = 1; ; n++)); do
	rm -f "$OUT/console.log"
	: > "$OUT/guest.log"
	timeout -k 10 "$LIMIT" "${QEMU[@]}" -serial "file:$OUT/guest.log" \
		</dev/null 2>"$OUT/qemu.log" &
	qpid=$!
	tpid=
	if [ "${VMIG_QUIET:-0}" != 1 ]; then
		tail --pid="$qpid" -s 0.2 -n +1 -F "$OUT/guest.log" 2>/dev/null |
			grep --line-buffered -v '^=== VMIG-' &
		tpid=$!
	fi
	vm_wait_booted "$OUT" "$qpid" && break
	kill -TERM "$qpid" 2>/dev/null
	[ "$n" -lt "${VMIG_BOOT_TRIES:-2}" ] || break
	wait "$qpid"
	[ -n "$tpid" ] && wait "$tpid" 2>/dev/null
	vm_keep_failed_boot "$OUT" "$n"
done
wait "$qpid"
rc=$?
end=$(date +%s.%N)
[ -n "$tpid" ] && wait "$tpid" 2>/dev/null
awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", e - s }' \
	> "$OUT/wall_seconds"
echo "$rc" > "$OUT/qemu_rc"
exit 0
