#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Test bed set-up inside the guest: modules, and two NVMe VFs provisioned
# through the PF with nvme-cli, sharing one namespace (QEMU's SR-IOV NVMe, see shared TESTBED);
# the network of a guest pair (run-pair.sh) and, from netns.sh, the two
# "hosts" in one guest (hosts_up / hosts_down).

[ -f /bin/netns.sh ] && . /bin/netns.sh

# The PCI function with vendor:device $1:$2 that is (vf=1) or is not a VF.
find_pci() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = "0x$1" ] || continue
		[ "$(cat "$d/device")" = "0x$2" ] || continue
		if [ -e "$d/physfn" ]; then isvf=1; else isvf=0; fi
		[ "$isvf" = "$3" ] && basename "$d"
	done
}

wait_for() {
	i=0
	while ! eval "$1"; do
		i=$((i + 1))
		[ $i -gt 200 ] && return 1
		sleep 0.1
	done
}

# Resources of each VF (secondary controller): NVME_VF_VQ queues (the
# admin queue and NVME_VF_VQ - 1 I/O queue pairs) and NVME_VF_VI interrupt
# vectors, out of the PF's flexible pools (machine.sh: sriov_vq_flexible=8,
# sriov_vi_flexible=6, for both VFs).
NVME_VF_VQ=4
NVME_VF_VI=3

# Give secondary controller $1 (VF $1) its resources and bring it online.
provision_one_vf() {
	nvme virt-mgmt /dev/nvme0 -c "$1" -r 1 -a 8 -n $NVME_VF_VI >/dev/null &&
	nvme virt-mgmt /dev/nvme0 -c "$1" -r 0 -a 8 -n $NVME_VF_VQ >/dev/null &&
	nvme virt-mgmt /dev/nvme0 -c "$1" -r 0 -a 9 -n 0 >/dev/null
}

# Both VFs of the PF, each with its own queues and vectors, and the test
# bed's file-backed namespace (machine.sh: nvme-ns nsid 1, detached=on)
# attached to both (secondary controllers 1 and 2), not to the PF: the
# VFs' drivers (the tests' user-space one) see the same blocks.
provision_vf() {
	pf=$(find_pci 1b36 0010 0 | head -n 1)
	[ -n "$pf" ] || { echo "no NVMe PF"; return 1; }
	wait_for '[ -c /dev/nvme0 ] && grep -q live /sys/class/nvme/nvme0/state' ||
		{ echo "nvme0 never came up"; return 1; }
	echo 0 > "/sys/bus/pci/devices/$pf/sriov_drivers_autoprobe"
	nvme virt-mgmt /dev/nvme0 -c 0 -r 1 -a 1 -n 0 >/dev/null &&
	nvme virt-mgmt /dev/nvme0 -c 0 -r 0 -a 1 -n 0 >/dev/null &&
	echo 1 > "/sys/bus/pci/devices/$pf/reset" &&
	wait_for 'grep -q live /sys/class/nvme/nvme0/state' &&
	echo 2 > "/sys/bus/pci/devices/$pf/sriov_numvfs" &&
	provision_one_vf 1 && provision_one_vf 2 ||
		{ echo "VF provisioning failed"; return 1; }
	nvme attach-ns /dev/nvme0 -n 1 -c 1,2 >/dev/null ||
		{ echo "attaching namespace 1 to VF 1 and 2 failed"; return 1; }
	echo "provisioned NVMe VFs $(find_pci 1b36 0010 1 | tr "\n" " ")on PF $pf;" \
		"namespace 1 attached to both"
}

# Is module $1 built into the running kernel (the debug kernel's gcm)?
builtin() {
	sed 's/-/_/g' "/lib/modules/$(uname -r)/modules.builtin" 2>/dev/null |
		grep -q "/$1\.ko\$"
}

testbed_setup() {
	for m in vfio_iommu_type1 vfio_pci nvme dirty_track vfio_mig \
		 sriov_shadow tls; do
		modprobe "$m" || builtin "$m" ||
			{ echo "modprobe $m failed"; return 1; }
	done
	# kTLS's ciphers (request_module has no udev here); AES-NI only
	# where the CPU model has it
	for m in gcm ghash_generic chacha20poly1305; do
		modprobe "$m" || builtin "$m" ||
			{ echo "modprobe $m failed"; return 1; }
	done
	modprobe aesni_intel 2>/dev/null
	provision_vf
}

# A guest of a pair (run-pair.sh, vmig.host=a|b): eth0 (virtio-net) is the
# link to the other guest, 10.98.0.1/24 on a and 10.98.0.2/24 on b.
host_net_setup() {
	case "$1" in
	a) addr=10.98.0.1 ;;
	b) addr=10.98.0.2 ;;
	*) echo "vmig.host=$1: expected a or b"; return 1 ;;
	esac
	# virtio_pci is built into 6.12 and a module in 6.1.
	modprobe virtio_pci 2>/dev/null || [ -d /sys/module/virtio_pci ] ||
		{ echo "modprobe virtio_pci failed"; return 1; }
	modprobe virtio_net || { echo "modprobe virtio_net failed"; return 1; }
	wait_for '[ -e /sys/class/net/eth0 ]' || { echo "no eth0"; return 1; }
	ip=${IPROUTE2:-ip}
	$ip link set lo up && $ip addr add "$addr/24" dev eth0 &&
		$ip link set eth0 up || { echo "eth0 set-up failed"; return 1; }
	echo "host $1: eth0 $addr/24"
}
