/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where vfio-mig deals with differences between the kernels
 * it supports (Debian's 6.1 and 6.12). Everything else in the tree uses
 * the VMIG_* names below and never tests a kernel version itself.
 *
 * Where a uAPI or kernel feature is announced by a macro, the macro is the
 * feature test; where it is not, the version that introduced it is.
 */
#ifndef _VFIO_MIG_COMPAT_H
#define _VFIO_MIG_COMPAT_H

#include <linux/version.h>
#include <linux/vfio.h>

/*
 * iommufd binding callbacks of struct vfio_device_ops (added in 6.2).
 * With CONFIG_IOMMUFD off the kernel defines them as NULL functions,
 * which is what a device without iommufd support wants.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define VMIG_HAVE_IOMMUFD_OPS	1
#else
#define VMIG_HAVE_IOMMUFD_OPS	0
#endif

/* PRE_COPY, MIG_DATA_SIZE and VFIO_MIG_GET_PRECOPY_INFO (added in 6.2). */
#ifdef VFIO_MIG_GET_PRECOPY_INFO
#define VMIG_HAVE_PRECOPY	1
#else
#define VMIG_HAVE_PRECOPY	0
#endif

/*
 * IOMMU dirty tracking: struct iommu_dirty_ops, iommu_domain.dirty_ops and
 * IOMMU_CAP_DIRTY_TRACKING (added in 6.7).
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
#define VMIG_HAVE_IOMMU_DIRTY_OPS	1
#else
#define VMIG_HAVE_IOMMU_DIRTY_OPS	0
#endif

#endif /* _VFIO_MIG_COMPAT_H */
