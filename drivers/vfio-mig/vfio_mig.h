/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: vfio-pci variant driver for devices without a vendor
 * migration driver. Internal definitions shared by the driver's files.
 */
#ifndef _VFIO_MIG_H
#define _VFIO_MIG_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/vfio_pci_core.h>

/**
 * struct vmig_device - one PCI function bound to vfio-mig
 * @core: vfio_pci_core state; must stay first (vfio_alloc_device()).
 * @node: entry in vmig_devices, under vmig_devices_lock.
 * @open: a VMM has the device open. Written only in open_device and
 *	close_device, which vfio serialises under core.vdev.dev_set->lock;
 *	readers that need a stable value take that lock too.
 */
struct vmig_device {
	struct vfio_pci_core_device core;
	struct list_head node;
	bool open;
};

/*
 * Every bound device is on vmig_devices from the end of probe to the start
 * of remove. Holding vmig_devices_lock keeps each listed device bound (remove
 * unlinks under it first), so code that finds a device by address, or walks
 * the list (netlink dumps, replay onto a second device), does so under the
 * lock. Lock order: vmig_devices_lock, then a device's dev_set->lock.
 */
extern struct list_head vmig_devices;
extern struct mutex vmig_devices_lock;

/* The bound device at PCI address @name ("0000:00:03.0"), under the lock. */
struct vmig_device *vmig_find_locked(const char *name);

static inline struct vmig_device *to_vmig(struct vfio_device *vdev)
{
	return container_of(vdev, struct vmig_device, core.vdev);
}

extern const struct vfio_device_ops vmig_vfio_ops;

#endif /* _VFIO_MIG_H */
