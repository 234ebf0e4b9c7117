// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the vfio_device_ops a VMM talks to.
 *
 * In trap mode none every operation is vfio_pci_core's own, so a VMM sees
 * exactly what vfio-pci would give it; trap.c wraps read, write, mmap and
 * ioctl for the other modes.
 */
#include <linux/percpu.h>
#include <vfio-mig/compat.h>

#include "ctl.h"
#include "dirty.h"
#include "lm.h"
#include "netlink.h"
#include "profile.h"
#include "regstate.h"
#include "trap.h"
#include "vfio_mig.h"

static int vmig_init_dev(struct vfio_device *vdev)
{
	struct vmig_device *mdev = to_vmig(vdev);
	int ret;

	mdev->trapped_reads = alloc_percpu(u64);
	if (!mdev->trapped_reads)
		return -ENOMEM;
	ret = vmig_shadow_dev_init(mdev);
	if (ret) {
		free_percpu(mdev->trapped_reads);
		return ret;
	}
	ret = vmig_regstate_init(&mdev->rs);
	if (!ret)
		ret = vmig_profile_bind(mdev,
					vmig_profile_for(to_pci_dev(vdev->dev)));
	if (!ret)
		ret = vfio_pci_core_init_dev(vdev);
	if (ret) {
		vmig_profile_unbind(mdev);
		vmig_regstate_destroy(&mdev->rs);
		vmig_shadow_dev_exit(mdev);
		free_percpu(mdev->trapped_reads);
		return ret;
	}
	mdev->trap_mode = vmig_default_trap_mode();
	vmig_dirty_init(&mdev->dirty);
	vmig_mig_init(mdev);
	vmig_ctl_dev_init(mdev);
	vmig_nl_dev_init(mdev);
	if (VMIG_HAVE_IOVA_BITMAP)
		vdev->log_ops = &vmig_dma_log_ops;
	return 0;
}

static void vmig_release_dev(struct vfio_device *vdev)
{
	struct vmig_device *mdev = to_vmig(vdev);

	vmig_regstate_destroy(&mdev->rs);
	vmig_shadow_dev_exit(mdev);
	free_percpu(mdev->trapped_reads);
	vmig_profile_unbind(mdev);
	/* an ack may name RAM after the device closed */
	vmig_ram_forget(mdev);
	/* on 6.1 this also frees the device */
	vfio_pci_core_release_dev(vdev);
}

static int vmig_open_device(struct vfio_device *vdev)
{
	struct vmig_device *mdev = to_vmig(vdev);
	const struct vmig_profile *p = mdev->profile;
	int ret;

	ret = vfio_pci_core_enable(&mdev->core);
	if (ret)
		return ret;
	if (p->ops && p->ops->open) {
		ret = p->ops->open(mdev);
		if (ret) {
			vfio_pci_core_disable(&mdev->core);
			return ret;
		}
	}

	ret = vmig_dma_open(mdev);
	if (ret) {
		if (p->ops && p->ops->close)
			p->ops->close(mdev);
		vfio_pci_core_disable(&mdev->core);
		return ret;
	}
	vmig_regstate_open(&mdev->rs);
	/* the group may have changed while the device was closed */
	mdev->mig.dma.alone = VMIG_GROUP_UNKNOWN;
	vmig_mig_open(mdev);
	vmig_bars_map(mdev);
	vfio_pci_core_finish_enable(&mdev->core);
	mdev->open = true;
	return 0;
}

static void vmig_close_device(struct vfio_device *vdev)
{
	struct vmig_device *mdev = to_vmig(vdev);

	mdev->open = false;
	/* A controller's ioctls in flight end; later ones get ENODEV. */
	vmig_ctl_detach(mdev);
	/* Back to RUNNING, data fds dropped, before the BARs go. */
	vmig_mig_close(mdev);
	/* An engaged shadow's state goes with the VMM that used it. */
	vmig_shadow_close(mdev);
	/* A dirty log the VMM started ends with its use of the device. */
	vmig_dirty_stop(mdev, true);
	if (mdev->profile->ops && mdev->profile->ops->close)
		mdev->profile->ops->close(mdev);
	vmig_dma_close(mdev);
	vmig_bars_unmap(mdev);
	vfio_pci_core_close_device(vdev);
}

const struct vfio_device_ops vmig_vfio_ops = {
	.name		= "vfio-mig",
	.init		= vmig_init_dev,
	.release	= vmig_release_dev,
	.open_device	= vmig_open_device,
	.close_device	= vmig_close_device,
	.ioctl		= vmig_ioctl,
	.device_feature	= vmig_device_feature,
	.dma_unmap	= vmig_dma_unmap,
	.read		= vmig_read,
	.write		= vmig_write,
	.mmap		= vmig_mmap,
	.request	= vfio_pci_core_request,
	.match		= vfio_pci_core_match,
#if VMIG_HAVE_IOMMUFD_OPS
	.bind_iommufd	= vfio_iommufd_physical_bind,
	.unbind_iommufd	= vfio_iommufd_physical_unbind,
	.attach_ioas	= vfio_iommufd_physical_attach_ioas,
	.detach_ioas	= vfio_iommufd_physical_detach_ioas,
#endif
};
