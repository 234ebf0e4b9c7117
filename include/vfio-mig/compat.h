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

/*
 * Is the device bound through iommufd (no type1 container)? Then
 * vfio_dma_rw() reaches guest memory only for emulated devices, never for
 * a physical one like ours. vfio_iommufd_device_ictx() tells (from 6.6; a
 * stub answering NULL without CONFIG_IOMMUFD, as in Debian's 6.12); 6.1
 * binds devices to containers only.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
#define vmig_iommufd_bound(vdev)	(!!vfio_iommufd_device_ictx(vdev))
#else
#define vmig_iommufd_bound(vdev)	((void)(vdev), false)
#endif

/*
 * PRE_COPY, PRE_COPY_P2P and VFIO_MIG_GET_PRECOPY_INFO (added in 6.2).
 * Without them the state numbers are still named, so that code can compare
 * with them: the core never enters those states when the device does not
 * advertise VFIO_MIGRATION_PRE_COPY.
 */
#ifdef VFIO_MIG_GET_PRECOPY_INFO
#define VMIG_HAVE_PRECOPY		1
#define VMIG_MIGRATION_PRE_COPY		VFIO_MIGRATION_PRE_COPY
#define VMIG_STATE_PRE_COPY		VFIO_DEVICE_STATE_PRE_COPY
#define VMIG_STATE_PRE_COPY_P2P		VFIO_DEVICE_STATE_PRE_COPY_P2P
#define VMIG_GET_PRECOPY_INFO		VFIO_MIG_GET_PRECOPY_INFO
#define vmig_precopy_info		vfio_precopy_info
#else
#define VMIG_HAVE_PRECOPY		0
#define VMIG_MIGRATION_PRE_COPY		0
#define VMIG_STATE_PRE_COPY		6
#define VMIG_STATE_PRE_COPY_P2P		7
#define VMIG_GET_PRECOPY_INFO		_IO(VFIO_TYPE, VFIO_BASE + 21)
struct vmig_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};
#endif

/*
 * vfio_migration_ops.migration_get_data_size, behind
 * VFIO_DEVICE_FEATURE_MIG_DATA_SIZE (in the core from 6.3, keyed on the
 * uAPI define so that a backport counts too). Before, the
 * core hands the feature number to the driver's device_feature op, which
 * answers it itself (VMIG_CORE_DATA_SIZE 0): QEMU asks for it on every
 * kernel and, when refused, assumes 100 GiB of stop-copy data and never
 * converges.
 */
#ifdef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE	/* the uAPI and the op came together */
#define VMIG_CORE_DATA_SIZE		1
#define VMIG_MIG_OPS_DATA_SIZE(fn)	.migration_get_data_size = (fn),
#else
#define VMIG_CORE_DATA_SIZE		0
#define VMIG_MIG_OPS_DATA_SIZE(fn)
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
struct vfio_device_feature_mig_data_size {
	__aligned_u64 stop_copy_length;
};
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

/*
 * iova_bitmap, which VFIO's DMA_LOGGING_REPORT fills: part of vfio up to
 * 6.6; from 6.7 it is built only with CONFIG_IOMMUFD_DRIVER (off in
 * Debian's 6.12, where it is a stub answering -EOPNOTSUPP). Without it
 * vfio-mig offers no VFIO DMA logging; netlink's dirty log still works.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 7, 0) || \
	IS_ENABLED(CONFIG_IOMMUFD_DRIVER)
#define VMIG_HAVE_IOVA_BITMAP	1
#else
#define VMIG_HAVE_IOVA_BITMAP	0
#endif

/*
 * The parsed attributes of a genetlink dump request: 6.2 moved them from
 * genl_dumpit_info into its embedded genl_info.
 */
#include <net/genetlink.h>

static inline struct nlattr **vmig_genl_dump_attrs(struct netlink_callback *cb)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	return genl_dumpit_info(cb)->info.attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

/* eventfd_signal() lost its count argument in 6.8. */
#include <linux/eventfd.h>

static inline void vmig_eventfd_signal(struct eventfd_ctx *ctx)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	eventfd_signal(ctx);
#else
	eventfd_signal(ctx, 1);
#endif
}

#endif /* _VFIO_MIG_COMPAT_H */
