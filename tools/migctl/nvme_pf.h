/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the target host's PF driver knows about an NVMe VF that the
 * target kernel's nvme profile cannot learn itself: the VF's secondary
 * controller (its queue and interrupt resources, online or not), and the
 * namespaces the source's guest uses: attached to the VF or not, their
 * format and size. From the PF's NVMe character device by the admin
 * passthrough ioctl (Identify CNS 15h, 11h or 00h, 12h); the kernel's
 * profile judges (Documentation/nvme-profile.rst, "Compatibility").
 */
#ifndef MIGCTL_NVME_PF_H
#define MIGCTL_NVME_PF_H

#include <stddef.h>
#include <stdint.h>

#include <linux/vfio_mig_nvme.h>

/* Identify data: 4096 bytes. */
#define NVME_PF_ID_LEN	4096

/*
 * One Identify command to the PF: CNS @cns, CNTID @cntid, namespace
 * @nsid, data into @buf (NVME_PF_ID_LEN bytes). 0, a positive NVMe
 * status, or -errno.
 */
typedef int (*nvme_pf_identify_fn)(void *ctx, uint8_t cns, uint16_t cntid,
				   uint32_t nsid, uint8_t *buf);

/*
 * The VF @vf_bdf's PF (sysfs physfn under @sysfs, "/sys" normally), the
 * VF's number on it (1-based: virtfnN + 1) and the PF's NVMe controller's
 * character device ("/dev/nvmeN" into @dev). 0, or -errno with @why.
 */
int nvme_pf_find(const char *sysfs, const char *vf_bdf, char *pf, size_t pf_len,
		 uint16_t *vfn, char *dev, size_t dev_len, char *why,
		 size_t why_len);

/*
 * The facts about VF number @vfn for the namespaces in @needs (a struct
 * vfio_mig_nvme_needs of @needs_len bytes: only its namespace ids are
 * used, each checked), asked through @identify. Fills @f, whose flags say
 * what is known and f->why why the rest is not.
 */
void nvme_pf_facts_from(nvme_pf_identify_fn identify, void *ctx,
			uint16_t vfn, const uint8_t *needs, size_t needs_len,
			struct vfio_mig_nvme_facts *f);

/* The same for VF @vf_bdf of this host, through its PF's /dev/nvmeN. */
void nvme_pf_facts(const char *vf_bdf, const uint8_t *needs,
		   size_t needs_len, struct vfio_mig_nvme_facts *f);

#endif
