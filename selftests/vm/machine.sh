#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The test bed machine, shared by run.sh and run-pair.sh (sourced, bash).
#
#   vm_machine KVER INITRD OUTDIR MODE [KERNEL_ARG...]
#
# Sets the array QEMU to the command line of one guest: q35 + intel-iommu
# (caching-mode, for VFIO in the guest), two edu devices and an NVMe
# controller with SR-IOV, under TCG; kernel KVER from $VMIG_CACHE with
# INITRD, vmig.mode=MODE and the extra KERNEL_ARGs on its command line.
# ttyS0, the kernel console, goes to OUTDIR/console.log and is the LAST
# element of QEMU (run.sh's shell mode swaps it for the terminal); callers
# append ttyS1 (-serial ...) and whatever else the guest needs.

vm_machine() {
	local kver=$1 initrd=$2 out=$3 mode=$4
	local cache=${VMIG_CACHE:-${HOME:-/root}/.cache/vfio-mig}
	shift 4

	# shellcheck disable=SC2034,SC2054 # QEMU is for the caller; commas are -device syntax
	QEMU=(qemu-system-x86_64
		-M q35 -accel tcg,thread=multi -cpu max -smp 2 -m 1G
		-nodefaults -vga none -display none -no-reboot
		-device intel-iommu,intremap=on,caching-mode=on
		-device edu,addr=03.0
		-device edu,addr=05.0
		-device nvme-subsys,id=s0
		-device "nvme,serial=vmig0,subsys=s0,sriov_max_vfs=2,sriov_vq_flexible=8,sriov_vi_flexible=4,max_ioqpairs=12,msix_qsize=8,addr=04.0"
		-kernel "$cache/kernels/$kver/vmlinuz" -initrd "$initrd"
		-append "console=ttyS0 intel_iommu=on panic=-1 vmig.mode=$mode${*:+ $*}"
		-serial "file:$out/console.log")
}
