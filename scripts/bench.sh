#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make bench: every benchmark, each printing 'key: value' lines with ratios
# against a baseline measured in the same run.
#  - host benchmarks: bench/*/Makefile, target 'run';
#  - guest benchmarks: selftests/vm-tests/*/*_bench, run in one boot of the
#    test bed per kernel (VMIG_KERNELS, default: both supported ones).
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
B=$TOP/build
rc=0
for d in bench/*/; do
	[ -f "$d/Makefile" ] || continue
	echo "== bench $(basename "$d") (host)"
	make -s -C "$d" run || rc=1
done

ls selftests/vm-tests/*/*_bench.c > /dev/null 2>&1 || exit $rc
KSRC=$(scripts/ksrc.sh)
mkdir -p "$B/ksft"
cp "$KSRC"/tools/testing/selftests/kselftest*.h "$B/ksft/"
make -s -C tools/migctl || exit 1
make -s -C selftests vm OUT="$B/tests" KSFT_INC="$B/ksft" > /dev/null || exit 1
for k in ${VMIG_KERNELS:-$(scripts/kernels.sh list)}; do
	echo "== bench in the test bed guest ($k)"
	scripts/build-kmods.sh "$k" "$B/kmod/$k" &&
	scripts/kernels.sh fetch "$k" &&
	selftests/vm/mkinitramfs.sh "$k" "$B/kmod/$k" "$B/tests" \
		"$B/vm/initramfs-$k.cpio.gz" "$TOP/tools/migctl/migctl" || {
		rc=1
		continue
	}
	VMIG_QUIET=1 selftests/vm/run.sh "$k" "$B/vm/initramfs-$k.cpio.gz" \
		"$B/vm/bench-$k" bench
	grep -E '^[a-z0-9_]+: ' "$B/vm/bench-$k/guest.log" || rc=1
	grep -q 'VMIG-END .* rc=[1-9]' "$B/vm/bench-$k/guest.log" && rc=1
	grep -q 'VMIG-DONE' "$B/vm/bench-$k/guest.log" || rc=1
done
exit $rc
