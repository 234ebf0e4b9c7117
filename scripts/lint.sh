#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# checkpatch --strict on every kernel source file, and sparse (C=2) over
# the modules for each supported kernel. Writes TAP lines to $1.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
OUT=${1:-/dev/stdout}
KSRC=$(scripts/ksrc.sh)
KERNELS=${VMIG_KERNELS:-$(scripts/kernels.sh list)}
: > "$OUT.tmp"
fails=0

for f in $(git ls-files -co --exclude-standard 'drivers/*.[ch]' 'mm/*.[ch]' \
	   'include/*.h' | sort -u); do
	[ -f "$f" ] || continue
	# The compat header is the one place allowed to test kernel versions.
	ign=
	[ "$f" = include/vfio-mig/compat.h ] &&
		ign="--ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON,MACRO_ARG_UNUSED"
	if msg=$(perl "$KSRC/scripts/checkpatch.pl" --strict --no-tree \
		 --terse --show-types --no-summary $ign -f "$f" 2>&1) &&
	   [ -z "$msg" ]; then
		echo "ok - checkpatch --strict $f" >> "$OUT.tmp"
	else
		echo "$msg" | head -n 20
		echo "not ok - checkpatch --strict $f" >> "$OUT.tmp"
		fails=$((fails + 1))
	fi
done

for k in $KERNELS; do
	log=$TOP/build/sparse/$k/build.log
	if scripts/build-kmods.sh "$k" "$TOP/build/sparse/$k" C=2 CHECK=sparse \
		2>/dev/null; then
		echo "ok - sparse clean for $k" >> "$OUT.tmp"
	else
		grep -E 'warning:|error:' "$log" | head -n 20
		echo "not ok - sparse clean for $k" >> "$OUT.tmp"
		fails=$((fails + 1))
	fi
done
cat "$OUT.tmp" >> "$OUT"
rm -f "$OUT.tmp"
echo "lint: $fails problem(s)"
[ $fails -eq 0 ]
