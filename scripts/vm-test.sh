#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make vm-test: one suite of the VM selftests (or some tests of it) on one
# kernel, without the rest of make check.
#
#   vm-test.sh KVER SUITE [TEST]
#
# Builds what the test bed needs (the modules for KVER, migctl, the VM
# selftests, the guest's initramfs), boots it with only SUITE (several:
# "s1 s2") and prints the guest's TAP as it comes, then the results with
# the kernel log checks (scripts/tap.py vm). TEST narrows the suite: a
# test program (log_test) or a kselftest harness test case by name
# (log_records_and_replay_compacts); several: "t1 t2". Exits 1 when
# anything failed or nothing passed. Outputs go to $VMIG_BUILD (default build/); the guest's
# logs to $VMIG_BUILD/vm/test-KVER/.
set -euo pipefail

KVER=${1:?usage: vm-test.sh KVER SUITE [TEST]}
SUITE=${2:?usage: vm-test.sh KVER SUITE [TEST]}
TEST=${3:-}
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
B=${VMIG_BUILD:-$TOP/build}
mkdir -p "$B"
B=$(cd "$B" && pwd)
export KSFT_INC=$B/ksft
mkdir -p "$KSFT_INC"
cp "$(scripts/ksrc.sh)"/tools/testing/selftests/kselftest*.h "$KSFT_INC/"

step() { printf '==> %s\n' "$*"; }
# the qemu suite alone needs the real VMM in the guest (check.sh)
case " $SUITE " in
*" qemu "*) scripts/qemu10.sh fetch > "$B/qemu10.log" 2>&1 ||
	{ cat "$B/qemu10.log"; exit 1; } ;;
*) export VMIG_NO_QEMU10=1 ;;
esac

step "modules for $KVER"
scripts/build-kmods.sh "$KVER" "$B/kmod/$KVER"
step "migctl"
make -s -C tools/migctl
step "VM selftests"
make -s -C selftests vm OUT="$B/tests" KSFT_INC="$KSFT_INC"
step "test bed image"
scripts/kernels.sh fetch "$KVER"
selftests/vm/mkinitramfs.sh "$KVER" "$B/kmod/$KVER" "$B/tests" \
	"$B/vm/initramfs-$KVER.cpio.gz" "$TOP/tools/migctl/migctl"

out=$B/vm/test-$KVER
step "VM on $KVER: suite $SUITE${TEST:+, test $TEST}"
VMIG_SUITES=$SUITE VMIG_TEST=$TEST \
	selftests/vm/run.sh "$KVER" "$B/vm/initramfs-$KVER.cpio.gz" "$out" test
python3 scripts/tap.py vm "$KVER" "$out"
step "results (logs: $out/guest.log, $out/console.log)"
cat "$out/results.tap"
# the guest's own checks pass without any test: say when none ran
if ! grep -Eq '^(not )?ok - [^ ]+ [^ :]+/' "$out/results.tap"; then
	echo "not ok - no test of suite $SUITE${TEST:+ matched $TEST}"
	exit 1
fi
# one line, N passed, N failed; fails on a failure or when nothing passed
python3 scripts/tap.py summary "$out/results.tap"
