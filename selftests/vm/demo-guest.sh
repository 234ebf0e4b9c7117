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
VF=$(find_pci 1b36 0010 1 | head -n 1)
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

title "A DMA dirty log on the VF (trap mode none: the all-mapped feeder, every page dirty)"
run migctl dirty start "$VF" 0x100000:0x10000
run migctl dirty "$VF"
run migctl dirty stop "$VF"

EDU2=$(echo "$EDUS" | tail -n 1)
VF2=$(find_pci 1b36 0010 1 | tail -n 1)
title "Two hosts in this guest: namespaces hosta (10.99.0.1) and hostb (10.99.0.2) on a veth"
hosts_up || { echo "could not set up the two hosts"; exit 1; }

# vmm_devs BDF[,BDF2]: vmm_host's device arguments (a second device: the
# VM's, in 16 MiB of RAM)
vmm_devs() {
	case $1 in
	*,*) echo "${1%%,*} --dev2 ${1#*,} --ram-mib 16" ;;
	*) echo "$1" ;;
	esac
}

# live_migrate SRC DST TAG [MIGRATE-OPTION]: host A's VMM runs a guest on
# SRC, host B's VMM holds DST with empty RAM; migctl moves the guest while
# it runs. SRC and DST may name two devices of one VM: BDF,BDF2.
live_migrate() {
	src=$1 dst=$2 tag=$3 opt=${4:-}
	# shellcheck disable=SC2046
	/tests/tools/vmm_host target $(vmm_devs "$dst") --run-ms 3000 \
		--report "/tmp/demo-$tag-b.json" > "/tmp/demo-$tag-b.log" 2>&1 &
	VB=$!
	# shellcheck disable=SC2046
	/tests/tools/vmm_host source $(vmm_devs "$src") --seed 0xd3e0 \
		--report "/tmp/demo-$tag-a.json" > "/tmp/demo-$tag-a.log" 2>&1 &
	VA=$!
	for f in "/tmp/demo-$tag-a.log" "/tmp/demo-$tag-b.log"; do
		i=0
		# the VMM may not have opened its log yet
		until grep -qx ready "$f" 2>/dev/null; do
			i=$((i + 1))
			[ $i -gt 600 ] && { echo "a VMM did not start:"; cat "$f"; exit 1; }
			sleep 0.1
		done
	done
	sleep 3	# let the guest run and dirty its RAM for a while
	title "Live migration: host A's VM moves to host B with migctl, while it runs"
	CREDS=/etc/vfio-mig/x509
	printf '$ ip netns exec hostb migctl listen --once --tls-creds %s --allow-peer vmig-source &\n' "$CREDS"
	$IPROUTE2 netns exec hostb migctl listen --once --tls-creds "$CREDS" \
		--allow-peer vmig-source 2>&1 | sed 's/^/  [host B] /' &
	LS=$!
	sleep 0.5
	printf '$ ip netns exec hosta migctl migrate %s --to 10.99.0.2 --target-dev %s --tls-creds %s --downtime-ms 300%s\n' \
		"$src" "$dst" "$CREDS" "${opt:+ $opt}"
	# shellcheck disable=SC2086
	$IPROUTE2 netns exec hosta migctl migrate "$src" --to 10.99.0.2 \
		--target-dev "$dst" --tls-creds "$CREDS" --downtime-ms 300 $opt || {
		echo "migration failed"
		cat "/tmp/demo-$tag-a.log" "/tmp/demo-$tag-b.log"
		kill $VA $VB 2>/dev/null
		exit 1
	}
	wait $LS
	wait $VA; ra=$?
	wait $VB; rb=$?
	title "After the switchover"
	echo "host A's VMM (it stopped at the commit point, never to run the device again):"
	tail -n 2 "/tmp/demo-$tag-a.log" | sed 's/^/  /'
	echo "host B's VMM (the guest continued there, its results checked):"
	tail -n 4 "/tmp/demo-$tag-b.log" | sed 's/^/  /'
	da=$(sed -n 's/.*"ram_digest": *\([0-9]*\).*/\1/p' "/tmp/demo-$tag-a.json")
	db=$(sed -n 's/.*"ram_digest": *\([0-9]*\).*/\1/p' "/tmp/demo-$tag-b.json")
	if [ "$ra" = 0 ] && [ "$rb" = 0 ] && [ -n "$da" ] && [ "$da" = "$db" ]; then
		echo "check: target RAM equals source RAM at the switchover (digest $da); the workload's data on B is intact"
	else
		echo "check FAILED: VMM exit codes $ra/$rb, RAM digests ${da:-none}/${db:-none}"
		exit 1
	fi
}

echo "host A: a VMM (the test VMM) runs a guest on edu $EDU: DMAs both ways,"
echo "        register activity, a vCPU writing RAM pages; its state lives in its RAM"
echo "host B: a VMM holds edu $EDU2 with empty RAM, vCPUs idle"
echo "Each VMM keeps a guest page for its edu, named as a VMM would: migctl then"
echo "moves edu's buffer (reachable only by the device's slow DMA) before the stop"
run sh -c "echo 'scratch 0x103000' > /sys/kernel/debug/vfio-mig/$EDU/ctl; echo 'scratch 0x103000' > /sys/kernel/debug/vfio-mig/$EDU2/ctl"
live_migrate "$EDU" "$EDU2" edu
echo "scratch 0" > "/sys/kernel/debug/vfio-mig/$EDU/ctl"
echo "scratch 0" > "/sys/kernel/debug/vfio-mig/$EDU2/ctl"
run migctl dev show "$EDU2"

title "Through the shadow adapter: a guest on edu $EDU2 moves to edu $EDU"
echo "migrate --via-shadow engages the source's shadow (sriov_shadow's software"
echo "edu) before the switchover: the stop-copy reads the model, not the slow"
echo "device; host B serves the guest with its own shadow at once and hands its"
echo "device the state in the background. edu's buffer moves by the device's DMA"
echo "through a guest page the VMM keeps for it, named here as a VMM would:"
run sh -c "echo 'scratch 0x103000' > /sys/kernel/debug/vfio-mig/$EDU2/ctl"
live_migrate "$EDU2" "$EDU" shadow --via-shadow
run migctl shadow show "$EDU"
echo "scratch 0" > "/sys/kernel/debug/vfio-mig/$EDU2/ctl"

title "An SR-IOV VF: NVMe VF $VF moves to VF $VF2 with I/O in flight"
run migctl bind "$VF2"
echo "Both VFs reach the same namespace (one volume, as two hosts' VFs would)."
echo "host A: a VMM runs a guest whose NVMe driver keeps 8 commands in flight on"
echo "        each of two queues: writes stamped with a generation per block, reads"
echo "        checking the newest; the nvme profile follows the queues from the"
echo "        admin commands it sees and marks every page the device writes"
echo "host B: a VMM holds VF $VF2 with empty RAM"
live_migrate "$VF" "$VF2" nvme
jv() { sed -n "s/.*\"$2\": *\([0-9a-z]*\).*/\1/p" "$1"; }
echo "NVMe commands in flight when host A's vCPUs paused: $(jv /tmp/demo-nvme-a.json nvme_inflight);"
echo "  host B finished them and went on: writes $(jv /tmp/demo-nvme-a.json nvme_writes) -> $(jv /tmp/demo-nvme-b.json nvme_writes), reads $(jv /tmp/demo-nvme-a.json nvme_reads) -> $(jv /tmp/demo-nvme-b.json nvme_reads);"
echo "  every block of the workload read back on host B: $(jv /tmp/demo-nvme-b.json nvme_verified)"

title "A VM of two devices: edu $EDU and NVMe VF $VF move together to edu $EDU2 and VF $VF2"
echo "One migctl migrate takes every passthrough device of the VM: one handshake,"
echo "one set of rounds over the RAM they share, one switchover in which both stop"
echo "and both load in parallel; a failure of either would roll both back. host A's"
echo "VMM runs a program for each device, each in its half of the VM's RAM: the edu"
echo "workload and the NVMe I/O with commands in flight."
run sh -c "echo 'scratch 0x103000' > /sys/kernel/debug/vfio-mig/$EDU/ctl; echo 'scratch 0x103000' > /sys/kernel/debug/vfio-mig/$EDU2/ctl"
live_migrate "$EDU,$VF" "$EDU2,$VF2" two "--on-max-rounds switchover"
echo "scratch 0" > "/sys/kernel/debug/vfio-mig/$EDU/ctl"
echo "scratch 0" > "/sys/kernel/debug/vfio-mig/$EDU2/ctl"
echo "host B's programs went on where host A's stopped: edu steps $(jv /tmp/demo-two-a.json steps) -> $(jv /tmp/demo-two-b.json steps), NVMe steps $(jv /tmp/demo-two-a.json dev2_steps) -> $(jv /tmp/demo-two-b.json dev2_steps);"
echo "  every NVMe block read back on host B: $(jv /tmp/demo-two-b.json dev2_nvme_verified)"
hosts_down
run migctl unbind "$VF2"

title "Give the VF back"
run migctl unbind "$VF"
echo
echo "demo finished: devices bound to vfio-mig, a DMA through it, and live migrations between two hosts (edu, edu through the shadow adapter, an NVMe VF with I/O in flight, then a VM of both) with their data intact."
