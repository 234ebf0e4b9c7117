#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the modules (and the in-VM test modules) for one kernel in a
# private copy of the sources, so builds for several kernels do not
# overwrite each other's objects.
#
#   build-kmods.sh KVER OUTDIR [extra kbuild args, e.g. C=2]
# Leaves OUTDIR/*.ko and OUTDIR/build.log; fails if the compiler warned.
# The headers of KVER: /lib/modules/KVER/build, or, for a kernel built
# for the test bed (scripts/debug-kernel.sh), the build tree its modules
# in $VMIG_CACHE/kernels/KVER link to.
set -euo pipefail

KVER=$1
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
TOP=$(cd "$(dirname "$0")/.." && pwd)
KDIR=/lib/modules/$KVER/build
CACHE=${VMIG_CACHE:-${HOME:-/root}/.cache/vfio-mig}
[ -f "$KDIR/Makefile" ] ||
	KDIR=$CACHE/kernels/$KVER/root/lib/modules/$KVER/build
SRC=$OUT/src

[ -f "$KDIR/Makefile" ] || { echo "no headers for $KVER at $KDIR" >&2; exit 1; }
mkdir -p "$SRC"
# Refresh the copy; unchanged files keep their times so kbuild stays
# incremental.
for f in Kbuild VERSION include drivers mm; do
	cp -a -u "$TOP/$f" "$SRC/"
done

set +e
make -C "$KDIR" M="$SRC" VFIO_MIG_TESTS=y "$@" modules > "$OUT/build.log" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
	tail -n 40 "$OUT/build.log" >&2
	exit $rc
fi
find "$SRC" -name '*.ko' -exec cp {} "$OUT/" \;
if grep -E 'warning:|error:' "$OUT/build.log" >&2; then
	exit 3
fi
