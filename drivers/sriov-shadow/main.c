// SPDX-License-Identifier: GPL-2.0
/*
 * sriov-shadow: the shadow adapter that absorbs a guest driver's register
 * accesses while the real VF is stopped, drained and replaced during
 * switchover (see ../shared/DESIGN.md, "Shadow adapter").
 *
 * The adapter registers with vfio_mig through its registration API; that
 * API arrives with the switchover work. Until then this module only
 * loads and unloads, and holds no state.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

#ifndef VFIO_MIG_VERSION
#define VFIO_MIG_VERSION "0.0.0"
#endif

static int __init sriov_shadow_init(void)
{
	return 0;
}

static void __exit sriov_shadow_exit(void)
{
}

module_init(sriov_shadow_init);
module_exit(sriov_shadow_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("vfio-mig developers");
MODULE_DESCRIPTION("Shadow SR-IOV adapter for the vfio-mig switchover window");
MODULE_VERSION(VFIO_MIG_VERSION);
