/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vfio-mig profile "nvme": the two records of its compatibility check
 * (Documentation/nvme-profile.rst, "Compatibility"). Little endian, fixed
 * size; the netlink family carries them as opaque per-profile blobs.
 *
 * struct vfio_mig_nvme_needs: what the source's guest uses of its VF, as
 * the source kernel's model of the controller knows it (netlink dev-needs,
 * attribute profile-needs). migctl carries it in HELLO to the target.
 *
 * struct vfio_mig_nvme_facts: what the target host's migration controller
 * learned about the target VF from its PF (Identify Secondary Controller
 * List, Identify Namespace, Namespace Attached Controller List): the
 * target kernel cannot learn these itself (netlink dev-compat, attribute
 * profile-facts).
 *
 * The target kernel's nvme profile compares them (with what it reads of
 * the target VF itself: CAP, MSI-X) and refuses with the reason.
 */
#ifndef _UAPI_LINUX_VFIO_MIG_NVME_H
#define _UAPI_LINUX_VFIO_MIG_NVME_H

#include <linux/types.h>

#define VFIO_MIG_NVME_NEEDS_VERSION	1
#define VFIO_MIG_NVME_FACTS_VERSION	1
/* namespaces in either record (the model's NVMP_MAX_NS) */
#define VFIO_MIG_NVME_MAX_NS		16

/**
 * struct vfio_mig_nvme_needs_ns - a namespace the guest identified
 * @nsid: namespace id (not 0, not 0xffffffff)
 * @ms: metadata bytes per block in a separate buffer (0: none or extended)
 * @lbads: LBA data size, log2 (9..16)
 * @rsvd: 0
 * @nsze: size in logical blocks, as Identify Namespace told the guest
 */
struct vfio_mig_nvme_needs_ns {
	__le32 nsid;
	__le16 ms;
	__u8 lbads;
	__u8 rsvd;
	__le64 nsze;
};

/**
 * struct vfio_mig_nvme_needs - what the source's guest uses
 * @version: VFIO_MIG_NVME_NEEDS_VERSION
 * @size: sizeof(struct vfio_mig_nvme_needs)
 * @enabled: 1: the guest enabled the controller (CC.EN); 0: nothing else
 *	is set
 * @mps: CC.MPS (memory page size 2 ^ (12 + @mps))
 * @max_qid: highest I/O queue id created (SQ or CQ); 0: none
 * @granted_sq: I/O SQs the guest was granted (Number of Queues, 1-based;
 *	0: the guest did not ask)
 * @granted_cq: I/O CQs, the same
 * @max_qsize: entries of the largest I/O queue (0: none)
 * @nr_vec: interrupt vectors used: highest vector of a CQ with interrupts
 *	enabled or configured (feature 09h), plus 1; 0: none
 * @nr_ns: namespaces in @ns (<= VFIO_MIG_NVME_MAX_NS)
 * @rsvd: 0
 * @ns: the namespaces the guest identified, @nr_ns of them; the rest 0
 */
struct vfio_mig_nvme_needs {
	__le16 version;
	__le16 size;
	__u8 enabled;
	__u8 mps;
	__le16 max_qid;
	__le16 granted_sq;
	__le16 granted_cq;
	__le16 max_qsize;
	__le16 nr_vec;
	__le32 nr_ns;
	__le32 rsvd;
	struct vfio_mig_nvme_needs_ns ns[VFIO_MIG_NVME_MAX_NS];
};

/* vfio_mig_nvme_facts.flags: which facts are known */
#define VFIO_MIG_NVME_F_CTRL	0x1	/* @scid, @nvq, @nvi, @online */
#define VFIO_MIG_NVME_F_NS	0x2	/* @ns */

/* vfio_mig_nvme_facts_ns.state */
#define VFIO_MIG_NVME_NS_ATTACHED	1	/* attached to the VF; format known */
#define VFIO_MIG_NVME_NS_DETACHED	2	/* exists, not attached to the VF */
#define VFIO_MIG_NVME_NS_ABSENT		3	/* no such namespace */

/**
 * struct vfio_mig_nvme_facts_ns - a namespace as the target's PF sees it
 * @nsid: the namespace asked about (one of the needs' namespaces)
 * @ms: as in struct vfio_mig_nvme_needs_ns (when @state is ATTACHED)
 * @lbads: ditto
 * @state: VFIO_MIG_NVME_NS_*
 * @nsze: ditto
 */
struct vfio_mig_nvme_facts_ns {
	__le32 nsid;
	__le16 ms;
	__u8 lbads;
	__u8 state;
	__le64 nsze;
};

/**
 * struct vfio_mig_nvme_facts - the target VF, from its PF
 * @version: VFIO_MIG_NVME_FACTS_VERSION
 * @size: sizeof(struct vfio_mig_nvme_facts)
 * @flags: VFIO_MIG_NVME_F_*
 * @vfn: the VF's number (1-based) on its PF
 * @scid: its secondary controller id
 * @nvq: virtual queue resources assigned (the admin queue is one of them)
 * @nvi: virtual interrupt resources assigned
 * @online: 1: the secondary controller is online
 * @rsvd: 0
 * @nr_ns: namespaces in @ns (<= VFIO_MIG_NVME_MAX_NS)
 * @why: why a fact is missing (printable, NUL terminated; "" if none)
 * @ns: the namespaces, @nr_ns of them; the rest 0
 */
struct vfio_mig_nvme_facts {
	__le16 version;
	__le16 size;
	__le32 flags;
	__le16 vfn;
	__le16 scid;
	__le16 nvq;
	__le16 nvi;
	__u8 online;
	__u8 rsvd[3];
	__le32 nr_ns;
	char why[96];
	struct vfio_mig_nvme_facts_ns ns[VFIO_MIG_NVME_MAX_NS];
};

#endif /* _UAPI_LINUX_VFIO_MIG_NVME_H */
