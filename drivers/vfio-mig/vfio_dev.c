// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the vfio_device_ops a VMM talks to.
 *
 * Until a trap mode or the migration uAPI is in use, every operation is
 * vfio_pci_core's own, so a VMM sees exactly what vfio-pci would give it.
 */
#include <vfio-mig/compat.h>

#include "vfio_mig.h"

static int vmig_open_device(struct vfio_device *vdev)
{
	struct vmig_device *mdev = to_vmig(vdev);
	int ret;

	ret = vfio_pci_core_enable(&mdev->core);
	if (ret)
		return ret;

	vfio_pci_core_finish_enable(&mdev->core);
	mdev->open = true;
	return 0;
}

static void vmig_close_device(struct vfio_device *vdev)
{
	struct vmig_device *mdev = to_vmig(vdev);

	mdev->open = false;
	vfio_pci_core_close_device(vdev);
}

const struct vfio_device_ops vmig_vfio_ops = {
	.name		= "vfio-mig",
	.init		= vfio_pci_core_init_dev,
	.release	= vfio_pci_core_release_dev,
	.open_device	= vmig_open_device,
	.close_device	= vmig_close_device,
	.ioctl		= vfio_pci_core_ioctl,
	.device_feature	= vfio_pci_core_ioctl_feature,
	.read		= vfio_pci_core_read,
	.write		= vfio_pci_core_write,
	.mmap		= vfio_pci_core_mmap,
	.request	= vfio_pci_core_request,
	.match		= vfio_pci_core_match,
#if VMIG_HAVE_IOMMUFD_OPS
	.bind_iommufd	= vfio_iommufd_physical_bind,
	.unbind_iommufd	= vfio_iommufd_physical_unbind,
	.attach_ioas	= vfio_iommufd_physical_attach_ioas,
	.detach_ioas	= vfio_iommufd_physical_detach_ioas,
#endif
};
