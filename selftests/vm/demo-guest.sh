#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# What 'make demo' shows inside the test bed guest.
. /bin/guest-lib.sh

title() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

title "The test bed: $(uname -r), QEMU q35 + vIOMMU, two edu devices, SR-IOV NVMe"
for d in /sys/bus/pci/devices/*; do
	drv=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)
	printf '  %s  %s:%s  %-12s %s\n' "$(basename "$d")" \
		"$(cut -c3- "$d/vendor")" "$(cut -c3- "$d/device")" \
		"${drv:-(no driver)}" \
		"$([ -e "$d/physfn" ] && echo "VF of $(basename "$(readlink "$d/physfn")")")"
done | grep -E '1234:11e8|1b36:0010'

title "Modules"
lsmod | grep -E '^(vfio_mig|dirty_track|sriov_shadow|vfio_pci_core) '
run modinfo -F description vfio_mig
run modinfo -F parm vfio_mig

EDUS=$(find_pci 1234 11e8 0)
VF=$(find_pci 1b36 0010 1)
title "Bind both edus and the NVMe VF to vfio-mig"
for b in $EDUS $VF; do
	run migctl bind "$b"
done
run migctl dev show
run migctl -j -p dev show "$VF"

EDU=$(echo "$EDUS" | head -n 1)
title "A VMM (the test VMM) drives edu $EDU through vfio-mig: DMA round trip"
run /tests/tools/edu_dma "$EDU" --irq

title "Trap every BAR access of $EDU, drive it again, read its register log"
run migctl dev set "$EDU" trap all
/tests/tools/edu_dma "$EDU" > /dev/null && echo "  (edu_dma ran again, now through the trapped path)"
run migctl log "$EDU"
run migctl dev show "$EDU"
run migctl dev set "$EDU" trap none

title "A DMA dirty log on the VF (generic profile: all-mapped feeder)"
run migctl dirty start "$VF" 0x100000:0x10000
run migctl dirty "$VF"
run migctl dirty stop "$VF"

EDU2=$(echo "$EDUS" | tail -n 1)
title "Live migration: a guest's edu $EDU moves to edu $EDU2 while its workload runs"
echo "The test VMM runs a random workload on $EDU (DMAs both ways, register"
echo "activity, vCPU writes to RAM) and migrates it through the VFIO migration"
echo "uAPI alone: RAM in rounds from the dirty log, device state in pre-copy"
echo "(where the kernel has it) and stop-copy, then checks the target."
run /tests/tools/edu_migrate "$EDU" "$EDU2" || {
	echo "migration failed"
	exit 1
}
run migctl dev show "$EDU2"

title "Give the VF back"
run migctl unbind "$VF"
echo
echo "demo finished: devices bound to vfio-mig, a DMA through it, and a live migration with its data intact."
