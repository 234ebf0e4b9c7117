#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make check: every suite, summed up in one closing line.
#
# Each step writes build/results/STEP.tap ('ok - ...' / 'not ok - ...');
# the last line is 'N passed, N failed[, N skipped]' over all of them.
# VMIG_KERNELS (space-separated releases) narrows the kernels; by default
# both supported ones (scripts/kernels.sh list).
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
B=$TOP/build
R=$B/results
rm -rf "$R"
mkdir -p "$R"
KERNELS=${VMIG_KERNELS:-$(scripts/kernels.sh list)}
KSRC=$(scripts/ksrc.sh)
export KSFT_INC=$B/ksft
mkdir -p "$KSFT_INC"
cp "$KSRC"/tools/testing/selftests/kselftest*.h "$KSFT_INC/"
t0=$(date +%s)

step() { printf '\n==> %s\n' "$*"; }
# tapline FILE ok|notok TEXT
tapline() {
	if [ "$2" = ok ]; then echo "ok - $3"; else echo "not ok - $3"; fi >> "$R/$1.tap"
}

step "kernel modules (warning-free), for: $KERNELS"
for k in $KERNELS; do
	if scripts/build-kmods.sh "$k" "$B/kmod/$k"; then
		tapline build ok "modules build warning-free for $k"
	else
		tapline build notok "modules build warning-free for $k"
	fi
done

step "migctl"
if make -s -C tools/migctl > "$B/migctl-build.log" 2>&1; then
	tapline build ok "migctl builds warning-free"
else
	cat "$B/migctl-build.log"
	tapline build notok "migctl builds warning-free"
fi

step "netlink: uAPI header and kernel policies against the YNL spec"
scripts/ynl.sh check > "$R/ynl.tap" 2>&1 || true
grep -v '^ok' "$R/ynl.tap" || true
grep -q '^\(not \)\?ok' "$R/ynl.tap" || echo "not ok - scripts/ynl.sh check ran" >> "$R/ynl.tap"

step "checkpatch --strict and sparse"
scripts/lint.sh "$R/lint.tap"

step "DKMS add/build/install"
scripts/dkms-check.sh "$R/dkms.tap" $KERNELS

step "user-space unit tests (ASan/UBSan)"
for d in selftests/unit/*/ tools/migctl/tests/; do
	[ -f "$d/Makefile" ] || continue
	name=$(basename "$d")
	[ "$name" = tests ] && name=migctl
	make -s -C "$d" run KSFT_INC="$KSFT_INC" > "$B/unit-$name.log" 2>&1
	rc=$?
	grep -E '^(not )?ok ' "$B/unit-$name.log" | sed 's/^/  /' | tail -n 40
	python3 scripts/tap.py log "unit $name" "$B/unit-$name.log" $rc \
		"$R/unit-$name.tap"
done

step "nvme model, concurrent queues, under ThreadSanitizer"
make -s -C selftests/unit/nvme_model tsan KSFT_INC="$KSFT_INC" \
	> "$B/unit-nvme_model-tsan.log" 2>&1
rc=$?
grep -E '^(not )?ok |WARNING: ThreadSanitizer' "$B/unit-nvme_model-tsan.log" | sed 's/^/  /'
python3 scripts/tap.py log "unit nvme_model tsan" \
	"$B/unit-nvme_model-tsan.log" $rc "$R/unit-nvme_model-tsan.tap"

step "real VMM: Debian 13's QEMU 10 for the qemu suite"
if scripts/qemu10.sh fetch > "$B/qemu10.log" 2>&1; then
	tapline build ok "QEMU $(cat "${VMIG_CACHE:-${HOME:-/root}/.cache/vfio-mig}/qemu10/version") (Debian 13) fetched and runs"
else
	cat "$B/qemu10.log"
	tapline build notok "QEMU 10 (Debian 13) fetched and runs"
	# the other suites still run; the qemu suite skips without it
	export VMIG_NO_QEMU10=1
fi

step "VM selftests"
if make -s -C selftests vm OUT="$B/tests" KSFT_INC="$KSFT_INC" \
	> "$B/tests-build.log" 2>&1; then
	tapline build ok "VM selftests build"
else
	cat "$B/tests-build.log"
	tapline build notok "VM selftests build"
fi
for k in $KERNELS; do
	out=$B/vm/$k
	step "VM on $k"
	if ! scripts/kernels.sh fetch "$k" ||
	   ! selftests/vm/mkinitramfs.sh "$k" "$B/kmod/$k" "$B/tests" \
		"$B/vm/initramfs-$k.cpio.gz" "$TOP/tools/migctl/migctl"; then
		tapline "vm-$k" notok "$k: test bed image built"
		continue
	fi
	selftests/vm/run.sh "$k" "$B/vm/initramfs-$k.cpio.gz" "$out" test
	python3 scripts/tap.py vm "$k" "$out"
	cp "$out/results.tap" "$R/vm-$k.tap"
	echo "$k: VM wall time $(cat "$out/wall_seconds") s (console log: $out/console.log)"
done

# Two guests joined by a network: the pair suite, a live migration between
# two kernel instances: guest a (the source) on the oldest kernel checked
# above, guest b (the target) on the newest.
PA=$(for k in $KERNELS; do echo "$k"; done | head -n 1)
PB=$(for k in $KERNELS; do echo "$k"; done | tail -n 1)
if [ -f "$B/vm/initramfs-$PA.cpio.gz" ] && [ -f "$B/vm/initramfs-$PB.cpio.gz" ]; then
	out=$B/vm/pair
	step "VM pair: a on $PA, b on $PB"
	VMIG_SUITES=pair selftests/vm/run-pair.sh "$PA,$PB" \
		"$B/vm/initramfs-$PA.cpio.gz,$B/vm/initramfs-$PB.cpio.gz" "$out" test
	python3 scripts/tap.py vm "$PA a" "$out/a"
	python3 scripts/tap.py vm "$PB b" "$out/b"
	cp "$out/a/results.tap" "$R/vm-pair-a.tap"
	cp "$out/b/results.tap" "$R/vm-pair-b.tap"
	echo "pair: wall time $(cat "$out/wall_seconds") s (logs: $out/a, $out/b)"
fi

step "results"
grep -h '^\(not ok\|# \)' "$R"/*.tap
echo "make check took $(( $(date +%s) - t0 )) s"
python3 scripts/tap.py summary "$R"/*.tap
