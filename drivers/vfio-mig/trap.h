/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: the BAR trap (trap.c): trap modes, the VFIO access paths,
 * and the driver's own BAR accesses.
 */
#ifndef _VFIO_MIG_TRAP_H
#define _VFIO_MIG_TRAP_H

#include <linux/string.h>
#include <linux/types.h>

struct attribute_group;
struct vfio_device;
struct vm_area_struct;
struct vmig_device;

/**
 * enum vmig_trap_mode - which BAR accesses go through the driver
 * @VMIG_TRAP_NONE: full passthrough, exactly vfio-pci; nothing is recorded.
 * @VMIG_TRAP_SPARSE: the profile's trapped pages are carved out of the BAR
 *	mmap (sparse-mmap capability); accesses through the device fd are
 *	recorded. A profile that names no page traps the whole BAR.
 * @VMIG_TRAP_ALL: BARs report no mmap; every access is recorded.
 */
enum vmig_trap_mode {
	VMIG_TRAP_NONE,
	VMIG_TRAP_SPARSE,
	VMIG_TRAP_ALL,
};

const char *vmig_trap_mode_name(enum vmig_trap_mode mode);
/* "none", "sparse" or "all" (a trailing newline is allowed); or -EINVAL. */
int vmig_trap_mode_parse(const char *s);
/* -EBUSY while a VMM has the device open or a dirty log runs. */
int vmig_set_trap_mode(struct vmig_device *mdev, enum vmig_trap_mode mode);
/*
 * Around a change of trap mode or profile: holds dev_set->lock and the
 * dirty log's lock, or fails with -EBUSY (open, or a dirty log running).
 */
int vmig_settings_lock(struct vmig_device *mdev);
void vmig_settings_unlock(struct vmig_device *mdev);
enum vmig_trap_mode vmig_default_trap_mode(void);

ssize_t vmig_read(struct vfio_device *vdev, char __user *buf, size_t count,
		  loff_t *ppos);
ssize_t vmig_write(struct vfio_device *vdev, const char __user *buf,
		   size_t count, loff_t *ppos);
/*
 * In trap modes sparse and all, a BAR access of the VMM is copied in or out
 * by the trap path, outside the device's locks, in pieces of at most
 * VMIG_TRAP_CHUNK bytes that end on a 4-byte boundary (or the access's
 * end), so that each is split into pieces as the whole access is.
 */
#define VMIG_TRAP_CHUNK	64
/*
 * A trapped BAR read that reaches the device, into @buf (at most
 * VMIG_TRAP_CHUNK bytes), as vfio-pci would issue it; the device's access
 * lock held for read.
 */
ssize_t vmig_trapped_read(struct vmig_device *mdev, u8 *buf, size_t count,
			  loff_t pos);
int vmig_mmap(struct vfio_device *vdev, struct vm_area_struct *vma);
long vmig_ioctl(struct vfio_device *vdev, unsigned int cmd,
		unsigned long arg);
extern const struct attribute_group *vmig_dev_groups[];

/*
 * The trapped write paths (trap.c, lm_dma.c) write the device themselves,
 * from one copy of the VMM's bytes, in naturally aligned pieces of at most
 * 4 bytes, and the log records exactly those pieces. vfio-pci splits the
 * same way on 6.1; 6.12's vfio-pci would issue an aligned 8-byte piece as
 * one 8-byte access, which vfio-mig issues as two 4-byte writes, low half
 * first. Writes to the MSI-X table are dropped, as vfio-pci drops them.
 */
static inline unsigned int vmig_piece_width(u64 off, size_t left)
{
	if (left >= 4 && !(off % 4))
		return 4;
	if (left >= 2 && !(off % 2))
		return 2;
	return 1;
}

/* The little-endian value of a piece of @width bytes at @p. */
static inline u64 vmig_piece_value(const u8 *p, unsigned int width)
{
	u64 v = 0;

	memcpy(&v, p, width);
	return le64_to_cpu((__force __le64)v);
}

/* In-kernel BAR access */
/*
 * Access a memory BAR from the kernel (profiles, snapshot, replay), under
 * the core's memory_lock and only while memory decoding is enabled.
 * Sleeping context; the device must be open.
 */
int vmig_bar_read(struct vmig_device *mdev, u8 bar, u32 off, u8 width,
		  u64 *val);
int vmig_bar_write(struct vmig_device *mdev, u8 bar, u32 off, u8 width,
		   u64 val);
/* The same, and recorded in the write log under memory_lock (a trapped write). */
int vmig_bar_write_recorded(struct vmig_device *mdev, u8 bar, u32 off,
			    u8 width, u64 val);
void vmig_bars_map(struct vmig_device *mdev);
void vmig_bars_unmap(struct vmig_device *mdev);
/*
 * A decode window for the driver's own accesses to a device whose VMM left
 * decoding off (trap.c); open and close around them, nothing held.
 */
u16 vmig_decode_open(struct vmig_device *mdev);
void vmig_decode_close(struct vmig_device *mdev, u16 opened);

#endif /* _VFIO_MIG_TRAP_H */
