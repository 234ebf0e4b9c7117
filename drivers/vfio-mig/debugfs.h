/* SPDX-License-Identifier: GPL-2.0 */
/* vfio-mig: the debugfs test interface (debugfs.c). */
#ifndef _VFIO_MIG_DEBUGFS_H
#define _VFIO_MIG_DEBUGFS_H

#include <linux/mutex.h>
#include <linux/types.h>

struct dentry;
struct vmig_device;

void vmig_debugfs_init(void);
void vmig_debugfs_exit(void);
void vmig_debugfs_add(struct vmig_device *mdev);
void vmig_debugfs_remove(struct vmig_device *mdev);

/**
 * struct vmig_dbg - state of the debugfs test interface of one device
 * @lock: serialises the files' commands, protects the fields below
 * @dir: the device's debugfs directory
 * @blob: the stored serialised snapshot
 * @blob_len: its length
 * @result: text of the last command's outcome
 */
struct vmig_dbg {
	struct mutex lock;	/* see above */
	struct dentry *dir;
	void *blob;
	size_t blob_len;
	char result[512];
};

#endif /* _VFIO_MIG_DEBUGFS_H */
