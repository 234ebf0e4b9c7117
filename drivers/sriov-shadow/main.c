// SPDX-License-Identifier: GPL-2.0
/*
 * sriov-shadow: the shadow adapter's device models. Each serves the guest
 * in place of a device of one vfio-mig profile while the device is taken
 * away (Documentation/shadow.rst); vfio_mig calls them through the ops it
 * is given at registration, and holds this module while one is engaged,
 * so that it cannot be unloaded then.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

#include "models.h"

#ifndef VFIO_MIG_VERSION
#define VFIO_MIG_VERSION "0.0.0"
#endif

static const struct vmig_shadow_ops *const models[] = {
	&sriov_shadow_edu,
	&sriov_shadow_nvme,
};

static int __init sriov_shadow_init(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(models); i++) {
		ret = vmig_shadow_register(models[i]);
		if (ret) {
			pr_err("shadow for profile %s not registered: %d\n",
			       models[i]->profile, ret);
			while (i--)
				vmig_shadow_unregister(models[i]);
			return ret;
		}
	}
	return 0;
}

static void __exit sriov_shadow_exit(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(models); i++)
		vmig_shadow_unregister(models[i]);
}

module_init(sriov_shadow_init);
module_exit(sriov_shadow_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("vfio-mig developers");
MODULE_DESCRIPTION("Shadow SR-IOV adapter for the vfio-mig switchover window");
MODULE_VERSION(VFIO_MIG_VERSION);
