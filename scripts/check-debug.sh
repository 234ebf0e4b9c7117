#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make check-debug: the VM suites on a debug kernel (KASAN, PROVE_LOCKING,
# DEBUG_ATOMIC_SLEEP; scripts/debug-kernel.sh builds it once and caches
# it), failing on any test failure and on any report in the kernel log.
#
# Each step writes build/debug/results/STEP.tap ('ok - ...' / 'not ok -
# ...'); the last line is 'N passed, N failed[, N skipped]' over all of
# them. Kernel reports, with their context, are collected in
# build/debug/reports.txt.
#
#   VMIG_SUITES="s1 s2"   only these suites (default: all; 'pair' boots
#                         two debug guests)
#   VMIG_NO_QEMU10=1      leave out QEMU 10 (the qemu suite then skips)
#   VMIG_VM_TIMEOUT       bound on one guest's run, s (default 7200)
#   VMIG_TEST_TIMEOUT     bound on one test binary in the guest, s
#                         (default 1800)
#   VMIG_BOOT_TIMEOUT     time a guest has to reach init, s (default 600)
#
# The guests get vmig.slow=1: tests that budget time (the pair's downtime)
# widen the budget, not what they check.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
B=$TOP/build/debug
R=$B/results
rm -rf "$R" "$B/reports.txt"
mkdir -p "$R"
export KSFT_INC=$B/ksft
export VMIG_VM_TIMEOUT=${VMIG_VM_TIMEOUT:-7200}
export VMIG_BOOT_TIMEOUT=${VMIG_BOOT_TIMEOUT:-600}
# no5lvl: with 5-level paging (QEMU's -cpu max has LA57) 6.12's KASAN
# reports a wild access for any interrupt taken while identify_cpu()
# refills boot_cpu_data (LA57 reads as off, the direct map's addresses as
# outside the shadow), and then turns lock debugging off for the boot.
export VMIG_APPEND="vmig.timeout=${VMIG_TEST_TIMEOUT:-1800} vmig.slow=1 no5lvl${VMIG_APPEND:+ $VMIG_APPEND}"
SUITES=${VMIG_SUITES:-dirty_track hosts migration netlink pair qemu regsync vfio_mig}
t0=$(date +%s)

step() { printf '\n==> %s\n' "$*"; }
# tapline FILE ok|notok TEXT
tapline() {
	if [ "$2" = ok ]; then echo "ok - $3"; else echo "not ok - $3"; fi >> "$R/$1.tap"
}
finish() {
	step "results"
	grep -h '^\(not ok\|# \)' "$R"/*.tap
	[ -s "$B/reports.txt" ] && echo "kernel reports: $B/reports.txt"
	echo "make check-debug took $(( $(date +%s) - t0 )) s"
	python3 scripts/tap.py summary "$R"/*.tap
	exit $?
}
# reports OUTDIR LABEL: every report in OUTDIR's console logs, with context.
reports() {
	local f
	for f in "$1"/console*.log; do
		[ -f "$f" ] || continue
		python3 scripts/tap.py reports "$f" > "$B/reports.tmp"
		if [ -s "$B/reports.tmp" ]; then
			{ echo "=== $2: $f"; cat "$B/reports.tmp"; echo; } >> "$B/reports.txt"
		fi
	done
	rm -f "$B/reports.tmp"
}

step "debug kernel (scripts/debug-kernel.sh; cached after the first build)"
if KVER=$(scripts/debug-kernel.sh build); then
	kd=$(scripts/debug-kernel.sh kdir)
	tapline build ok "debug kernel $KVER built ($(cat "$kd/../build_seconds") s when first built)"
else
	tapline build notok "debug kernel built"
	finish
fi

step "kernel modules for $KVER (warning-free)"
# A warning (KASAN's stack redzones make frames larger) fails this
# result, but not the run: the kernel's -Werror (CONFIG_WERROR) is
# lifted so that the modules still build and the suites still run;
# build-kmods.sh exits 3 for warnings alone.
rm -rf "$B/kmod"
scripts/build-kmods.sh "$KVER" "$B/kmod" KCFLAGS=-Wno-error
rc=$?
if [ $rc -eq 0 ]; then
	tapline build ok "modules build warning-free for $KVER"
else
	tapline build notok "modules build warning-free for $KVER"
	[ $rc -eq 3 ] && ls "$B"/kmod/*.ko > /dev/null 2>&1 || finish
fi

step "migctl and the VM selftests"
mkdir -p "$KSFT_INC"
cp "$(scripts/ksrc.sh)"/tools/testing/selftests/kselftest*.h "$KSFT_INC/"
if make -s -C tools/migctl > "$B/migctl-build.log" 2>&1 &&
   make -s -C selftests vm OUT="$B/tests" KSFT_INC="$KSFT_INC" \
	> "$B/tests-build.log" 2>&1; then
	tapline build ok "migctl and VM selftests build"
else
	cat "$B/migctl-build.log" "$B/tests-build.log" 2>/dev/null
	tapline build notok "migctl and VM selftests build"
	finish
fi

case " $SUITES " in *" qemu "*) ;; *) export VMIG_NO_QEMU10=1 ;; esac
if [ "${VMIG_NO_QEMU10:-0}" != 1 ]; then
	if ! scripts/qemu10.sh fetch > "$B/qemu10.log" 2>&1; then
		cat "$B/qemu10.log"
		tapline build notok "QEMU 10 (Debian 13) fetched and runs"
		export VMIG_NO_QEMU10=1
	fi
fi

step "test bed image for $KVER"
IMG=$B/vm/initramfs.cpio.gz
if ! selftests/vm/mkinitramfs.sh "$KVER" "$B/kmod" "$B/tests" "$IMG" \
	"$TOP/tools/migctl/migctl"; then
	tapline vm notok "$KVER: test bed image built"
	finish
fi

single=$(for s in $SUITES; do [ "$s" = pair ] || echo "$s"; done | tr '\n' ' ')
single=${single% }
if [ -n "$single" ]; then
	out=$B/vm/single
	step "VM on $KVER: $single"
	VMIG_SUITES=$single selftests/vm/run.sh "$KVER" "$IMG" "$out" test
	python3 scripts/tap.py vm "$KVER" "$out"
	cp "$out/results.tap" "$R/vm.tap"
	reports "$out" "$KVER"
	echo "$KVER: VM wall time $(cat "$out/wall_seconds") s (console log: $out/console.log)"
fi

case " $SUITES " in
*" pair "*)
	out=$B/vm/pair
	step "VM pair: a and b on $KVER"
	VMIG_SUITES=pair selftests/vm/run-pair.sh "$KVER,$KVER" "$IMG,$IMG" \
		"$out" test
	for h in a b; do
		python3 scripts/tap.py vm "$KVER $h" "$out/$h"
		cp "$out/$h/results.tap" "$R/vm-pair-$h.tap"
		reports "$out/$h" "$KVER $h"
	done
	echo "pair: wall time $(cat "$out/wall_seconds") s (logs: $out/a, $out/b)"
	;;
esac

finish
