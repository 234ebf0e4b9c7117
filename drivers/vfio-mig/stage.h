/* SPDX-License-Identifier: GPL-2.0 */
/* vfio-mig: staging fds for page sends without a copy (stage.c). */
#ifndef _VFIO_MIG_STAGE_H
#define _VFIO_MIG_STAGE_H

struct file;
struct vmig_ctl;
struct vmig_device;

/* VFIO_MIG_CTL_STAGE_FD on the attached control fd @ctl_filp. */
long vmig_stage_fd(struct file *ctl_filp, struct vmig_ctl *c,
		   struct vmig_device *mdev, void __user *uarg);

#endif /* _VFIO_MIG_STAGE_H */
