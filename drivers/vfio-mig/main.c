// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: PCI driver registration.
 *
 * The driver binds only through driver_override, exactly like vfio-pci:
 *   echo vfio-mig > /sys/bus/pci/devices/BDF/driver_override
 *   echo BDF > /sys/bus/pci/drivers_probe
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/wait_bit.h>

#include "ctl.h"
#include "debugfs.h"
#include "dirty.h"
#include "lm.h"
#include "netlink.h"
#include "profile.h"
#include "trap.h"
#include "vfio_mig.h"

#ifndef VFIO_MIG_VERSION
#define VFIO_MIG_VERSION "0.0.0"
#endif

static bool enable_sriov;
module_param(enable_sriov, bool, 0644);
MODULE_PARM_DESC(enable_sriov,
		 "Allow a PF bound to vfio-mig to create VFs through sriov_numvfs (default: off)");

LIST_HEAD(vmig_devices);
/* Protects vmig_devices; see vfio_mig.h for the rules. */
DEFINE_MUTEX(vmig_devices_lock);

struct vmig_device *vmig_find_locked(const char *name)
{
	struct vmig_device *mdev;

	lockdep_assert_held(&vmig_devices_lock);
	list_for_each_entry(mdev, &vmig_devices, node)
		if (!strcmp(pci_name(mdev->core.pdev), name))
			return mdev;
	return NULL;
}

void vmig_dev_use_locked(struct vmig_device *mdev)
{
	lockdep_assert_held(&vmig_devices_lock);
	atomic_inc(&mdev->users);
}

void vmig_dev_unuse(struct vmig_device *mdev)
{
	/*
	 * wake_up_var() only hashes the address: remove may free @mdev as
	 * soon as the count is zero.
	 */
	atomic_dec_and_wake_up(&mdev->users);
}

static int vmig_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct vmig_device *mdev;
	int ret;

	mdev = vfio_alloc_device(vmig_device, core.vdev, &pdev->dev,
				 &vmig_vfio_ops);
	if (IS_ERR(mdev))
		return PTR_ERR(mdev);

	dev_set_drvdata(&pdev->dev, &mdev->core);
	ret = vfio_pci_core_register_device(&mdev->core);
	if (ret) {
		vmig_mig_exit(mdev);
		vfio_put_device(&mdev->core.vdev);
		return ret;
	}
	vmig_debugfs_add(mdev);
	mutex_lock(&vmig_devices_lock);
	list_add_tail(&mdev->node, &vmig_devices);
	vmig_nl_notify(mdev, VFIO_MIG_CMD_DEV_BIND_NTF);
	mutex_unlock(&vmig_devices_lock);
	pci_info(pdev, "bound to vfio-mig (profile %s, trap mode %s)\n",
		 mdev->profile->name, vmig_trap_mode_name(mdev->trap_mode));
	if (vmig_mig_unsupported(mdev->profile))
		pci_info(pdev, "no VFIO migration: %s (profile %s)\n",
			 vmig_mig_unsupported(mdev->profile),
			 mdev->profile->name);
	return 0;
}

static void vmig_remove(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(&pdev->dev);
	struct vmig_device *mdev = to_vmig(&core->vdev);

	mutex_lock(&vmig_devices_lock);
	list_del(&mdev->node);
	mutex_unlock(&vmig_devices_lock);
	/* no new use now (they start under the lock): let those running end */
	wait_var_event(&mdev->users, !atomic_read(&mdev->users));
	/* after them: a use's own notification (dev-set) comes first */
	vmig_nl_notify(mdev, VFIO_MIG_CMD_DEV_UNBIND_NTF);
	vmig_debugfs_remove(mdev);
	/* a target's background hand-back: never again, before dev_set goes */
	vmig_shadow_remove(mdev);
	vfio_pci_core_unregister_device(core);
	vmig_mig_exit(mdev);
	/* No VMM any more: stop a dirty log netlink left running. */
	vmig_dirty_stop(mdev, false);
	vmig_nl_dev_exit(mdev);
	vfio_put_device(&core->vdev);
}

static int vmig_sriov_configure(struct pci_dev *pdev, int nr_virtfn)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(&pdev->dev);

	if (!enable_sriov)
		return -ENOENT;
	return vfio_pci_core_sriov_configure(core, nr_virtfn);
}

/*
 * The devices a profile serves (profiles/), as "vfio_pci:" aliases in
 * modules.alias: tools that pick a VFIO variant driver from there (libvirt's
 * managed hostdevs) choose vfio-mig for them. The entries are
 * override-only, so nothing binds without driver_override; any other
 * device binds on request too (driver_override matches every device) and
 * gets the generic profile.
 */
static const struct pci_device_id vmig_pci_table[] = {
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(VMIG_EDU_VENDOR, VMIG_EDU_DEVICE) },
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(VMIG_NVME_VENDOR, VMIG_NVME_DEVICE) },
	{}
};
MODULE_DEVICE_TABLE(pci, vmig_pci_table);

static struct pci_driver vmig_pci_driver = {
	.name			= "vfio-mig",
	.id_table		= vmig_pci_table,
	.probe			= vmig_probe,
	.remove			= vmig_remove,
	.sriov_configure	= vmig_sriov_configure,
	.err_handler		= &vmig_err_handlers,
	.driver_managed_dma	= true,
	.dev_groups		= vmig_dev_groups,
};

static int __init vmig_init(void)
{
	int ret;

	ret = vmig_nl_init();
	if (ret)
		return ret;
	ret = vmig_ctl_init();
	if (ret) {
		vmig_nl_exit();
		return ret;
	}
	vmig_debugfs_init();
	ret = pci_register_driver(&vmig_pci_driver);
	if (ret) {
		vmig_debugfs_exit();
		vmig_ctl_exit();
		vmig_nl_exit();
	}
	return ret;
}
module_init(vmig_init);

static void __exit vmig_exit(void)
{
	pci_unregister_driver(&vmig_pci_driver);
	vmig_debugfs_exit();
	vmig_ctl_exit();
	vmig_nl_exit();
}
module_exit(vmig_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("vfio-mig developers");
MODULE_DESCRIPTION("VFIO PCI variant driver: live migration of passthrough devices without vendor support");
MODULE_VERSION(VFIO_MIG_VERSION);
