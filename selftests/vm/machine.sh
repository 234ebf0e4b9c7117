#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The test bed machine, shared by run.sh and run-pair.sh (sourced, bash).
#
#   vm_machine KVER INITRD OUTDIR MODE [KERNEL_ARG...]
#
# Sets the array QEMU to the command line of one guest: q35 + intel-iommu
# (caching-mode, for VFIO in the guest), two edu devices and an NVMe
# controller with SR-IOV and a file-backed namespace (VM_NVME_IMG, below),
# under TCG; kernel KVER from $VMIG_CACHE with
# INITRD, vmig.mode=MODE and the extra KERNEL_ARGs on its command line.
# The namespace (nsid 1) starts detached from every controller; the guest
# attaches it to both VFs (guest-lib.sh). share-rw=on lets two QEMUs (a
# pair) write the same file: without it the second one fails to take the
# image's "write" lock.
# ttyS0, the kernel console, goes to OUTDIR/console.log and is the LAST
# element of QEMU (run.sh's shell mode swaps it for the terminal); callers
# append ttyS1 (-serial ...) and whatever else the guest needs.
# VMIG_APPEND adds to every guest's kernel command line (make check-debug:
# vmig.timeout=, the per-test limit of selftests/vm/init).

# The NVMe namespace's backing file: VM_NVME_IMG if the caller set it (a
# pair's guests share one), else OUTDIR/nvme-ns.img. vm_nvme_image FILE
# makes it afresh: VM_NVME_MIB MiB (default 64) of zeros, sparse.
vm_nvme_image() {
	rm -f "$1" && truncate -s "${VM_NVME_MIB:-64}M" "$1"
}

vm_machine() {
	local kver=$1 initrd=$2 out=$3 mode=$4
	local cache=${VMIG_CACHE:-${HOME:-/root}/.cache/vfio-mig}
	local img=${VM_NVME_IMG:-$out/nvme-ns.img}
	shift 4

	[ -f "$img" ] || vm_nvme_image "$img" || return 1

	# tsc=reliable: under TCG a loaded host starves the vCPU threads, the
	# clocksource watchdog then marks the TSC unstable, and the kernel's
	# live patching of sched_clock's static key (int3 text_poke) oopsed in
	# a run ("Oops: int3" in sched_clock_cpu, 6.12, multi-threaded TCG).
	# shellcheck disable=SC2034,SC2054 # QEMU is for the caller; commas are -device syntax
	QEMU=(qemu-system-x86_64
		-M q35 -accel tcg,thread=multi -cpu max -smp 2 -m 1G
		-nodefaults -vga none -display none -no-reboot
		-device intel-iommu,intremap=on,caching-mode=on
		-device edu,addr=03.0
		-device edu,addr=05.0
		-device nvme-subsys,id=s0
		-device "nvme,serial=vmig0,subsys=s0,sriov_max_vfs=2,sriov_vq_flexible=8,sriov_vi_flexible=6,max_ioqpairs=12,msix_qsize=8,addr=04.0"
		-drive "file=$img,if=none,id=nvm0,format=raw"
		-device nvme-ns,drive=nvm0,nsid=1,detached=on,share-rw=on
		-kernel "$cache/kernels/$kver/vmlinuz" -initrd "$initrd"
		-append "console=ttyS0 intel_iommu=on tsc=reliable panic=-1 vmig.mode=$mode${*:+ $*}${VMIG_APPEND:+ $VMIG_APPEND}"
		-serial "file:$out/console.log")
}

# A boot that never reaches the test bed's init is the test bed's failure,
# not the project's: the distribution kernel runs nothing of ours until
# init (selftests/vm/init) has said "=== VMIG-BOOTED" on ttyS1 and loads
# the modules. Under TCG such boots do fail now and then (an "Oops: int3"
# while the kernel patches its own text, "timer doesn't work through
# Interrupt-remapped IO-APIC"), and then the guest may hang until its time
# limit. So a guest gets VMIG_BOOT_TIMEOUT seconds (default 180; a boot
# takes 5-20 s) to reach init, and one more boot if it does not
# (VMIG_BOOT_TRIES, default 2). Each failed boot is kept and reported.

# vm_wait_booted OUTDIR PID: 0 once the guest's init has started; 1 if PID
# (its QEMU) ended first or VMIG_BOOT_TIMEOUT passed.
vm_wait_booted() {
	local out=$1 pid=$2 i
	for ((i = 0; i < ${VMIG_BOOT_TIMEOUT:-180} * 5; i++)); do
		grep -q '^=== VMIG-BOOTED' "$out/guest.log" 2>/dev/null &&
			return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	grep -q '^=== VMIG-BOOTED' "$out/guest.log" 2>/dev/null
}

# vm_keep_failed_boot OUTDIR N [WHAT]: keep boot N's logs as *.bootN.log
# and add a line saying what happened (WHAT; by default: it never reached
# init) to OUTDIR/boot_retries; scripts/tap.py shows it with the results.
vm_keep_failed_boot() {
	local out=$1 n=$2 what=${3:-never reached init} f first
	for f in console guest qemu; do
		[ -f "$out/$f.log" ] && mv -f "$out/$f.log" "$out/$f.boot$n.log"
	done
	first=$(grep -a -m 1 -E 'Oops|BUG:|Kernel panic|timer doesn|self-detected' \
		"$out/console.boot$n.log" 2>/dev/null | tr -d '\r')
	echo "boot $n $what${first:+ (console: $first)}; logs: $out/console.boot$n.log" |
		tee -a "$out/boot_retries" >&2
}
