/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: vfio-pci variant driver for devices without a vendor
 * migration driver. Internal definitions shared by the driver's files.
 */
#ifndef _VFIO_MIG_H
#define _VFIO_MIG_H

#include <linux/pci.h>
#include <linux/vfio_pci_core.h>

/**
 * struct vmig_device - one PCI function bound to vfio-mig
 * @core: vfio_pci_core state; must stay first (vfio_alloc_device()).
 * @open: a VMM has the device open. Written only in open_device and
 *	close_device, which vfio serialises under core.vdev.dev_set->lock;
 *	readers that need a stable value take that lock too.
 */
struct vmig_device {
	struct vfio_pci_core_device core;
	bool open;
};

static inline struct vmig_device *to_vmig(struct vfio_device *vdev)
{
	return container_of(vdev, struct vmig_device, core.vdev);
}

extern const struct vfio_device_ops vmig_vfio_ops;

#endif /* _VFIO_MIG_H */
