/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: vfio-pci variant driver for devices without a vendor
 * migration driver. The core header: struct vmig_device, the list of bound
 * devices, and the driver's lock order. Each concern has a header of its
 * own, which the files that use it include:
 *
 *	trap.h		BAR trap, trap modes, in-kernel BAR access (trap.c)
 *	regstate.h	what the trap write path records, under one bit spinlock
 *	reglog.h	the register write log ring (reglog.c)
 *	regfile.h	the register file, last value per register (regfile.c)
 *	profile.h	device profiles (profile.c, profiles/)
 *	snapshot.h	snapshots and their byte form (snapshot.c)
 *	replay.h	replay of a snapshot onto a device (replay.c)
 *	debugfs.h	the debugfs test interface (debugfs.c)
 *	dirty.h		the DMA dirty log (dirty.c) and VFIO DMA logging
 *			(dma_log.c)
 *	lm.h		VFIO migration (lm.c, lm_dma.c, lm_pin.c, migf.c)
 *	stream.h	the migration stream (stream.c)
 *	ctl.h		/dev/vfio-mig (ctl.c) and the migration phases
 *			(nl_mig.c)
 *	netlink.h	the vfio_mig genetlink family (netlink.c, nl_policy.c)
 */
#ifndef _VFIO_MIG_H
#define _VFIO_MIG_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/vfio_pci_core.h>
#include <linux/workqueue.h>

#include "ctl.h"
#include "debugfs.h"
#include "dirty.h"
#include "lm.h"
#include "regstate.h"
#include "shadow.h"
#include "trap.h"

struct vmig_profile;

/*
 * Lock order. Every lock of the driver, outermost first, with the foreign
 * locks it nests with (in brackets). A lock may be taken while holding
 * only locks above it; locks on one level, and 1 and 2, are never held
 * together. The kdoc of each lock's struct says more.
 *
 *  0. vmig_migf.io_lock		read() and write() of one migration data fd
 *				(lm.h): taken with no lock held; under it
 *				only vmig_migf.lock, and the caller's own
 *				page faults; no arc or close takes it
 *     vmig_stage.lock		one staging fd (stage.c): taken with no
 *				driver lock held, but under the foreign
 *				[pipe->mutex] of a splice(); under it
 *				ctl_dev.rwsem (read), then phase_lock, the
 *				caller's own page faults, and waits for a
 *				worker that holds [type1: iommu->lock]; no
 *				arc, close or detach takes it
 *  1. vmig_dbg.lock		debugfs commands of one device (debugfs.h)
 *  2. vmig_ctl.attach_lock	VFIO_MIG_CTL_ATTACH on one control fd (ctl.h)
 *  3. vmig_devices_lock	keeps listed devices bound, or a use of the
 *				device taken under it does (below)
 *  4. [vfio core: dev_set->lock]  open_device and close_device run under
 *				it (vmig_dev_set_lock())
 *  5. ctl_file.pages_lock	VFIO_MIG_CTL_PAGES of one control fd (ctl.c);
 *				taken with no lock held, rwsem under it
 *  6. vmig_ctl_dev.rwsem	the attached control fd (ctl.h); close_device
 *				takes it under dev_set->lock, and so does a
 *				shadow engage for a controller (for read)
 *  7. vmig_ctl_dev.phase_lock	the pending phase (ctl.h); under rwsem (and
 *				pages_lock), never together with state_mutex
 *  8. vmig_mig.state_mutex	the migration state machine (lm.h); close_device
 *				takes it under dev_set->lock, so arcs never
 *				take dev_set->lock
 *     vmig_shadow_dev.move_lock  (shadow.h): a config write and
 *				VFIO_DEVICE_RESET of the VMM hold it for
 *				read and take nothing above (vfio-pci's
 *				memory_lock and device lock below it);
 *				engage, hand-back and VFIO_MIG_CTL_PREPARE
 *				hold it for write under state_mutex
 *				throughout
 *     vmig_shadow_dev.sem	the access lock (shadow.h): a BAR access of
 *				the VMM holds it for read and takes nothing
 *				above; engage and hand-back take it for
 *				write under the move lock
 *     vmig_shadow.lock		the engaged shadow's mutex (shadow.c): under
 *				the access lock or state_mutex (also under
 *				vmig_migf.lock: the final stream reads the
 *				model); held across vfio_dma_rw() (type1, 12)
 *     [a kworker: the background hand-back takes dev_set->lock, then
 *				state_mutex, as netlink's engage does]
 *  9. vmig_migf.lock		one migration data fd (lm.h)
 * 10. vmig_dirty.lock		the DMA dirty log (dirty.h); the
 *				settings lock takes it under dev_set->lock
 *     [dirty_track: dt_log.report_lock]  inside it (reports, stats)
 * 11. vmig_dma_hold.lock	the doorbell block and held DMA starts (lm.h);
 *				a rwsem: for read only by a doorbell write of
 *				one of the profile's queues, which then takes
 *     vmig_dma_hold.qlock[q]	that queue's mutex (one at a time), under it
 *     [nvme: nvme_priv.mlock]	the nvme model's lock (profiles/nvme/nvme.c),
 *				under the hold lock (either mode) and qlock;
 *				may be held across vfio_dma_rw() (type1, 12)
 * 12. [vfio-pci core: memory_lock]  BAR access; a reset holds it, so the
 *				reset path takes none of the locks above
 *     [type1: iommu->lock, then device_list_lock]  pinning (lm_pin.c),
 *				vfio_dma_rw(). ->dma_unmap is called under
 *				device_list_lock alone: it takes pin_lock
 *				only and leaves the unpins (iommu->lock) to a
 *				work item it waits for, bounded, so that
 *				iommu->lock is never taken under
 *				device_list_lock (type1's register_device
 *				takes them the other way round)
 * 13. leaves, nothing is taken under them:
 *	vmig_dma_hold.pin_lock	(spinlock; from ->dma_unmap, the unpin
 *				work item and under vmig_dma_hold.lock)
 *	vmig_mig.reset_lock	(spinlock; from reset_done, under memory_lock;
 *				under the state mutex and vmig_dma_hold.lock)
 *	vmig_regstate.lock	(bit spinlock, regstate.h; the trap write
 *				path, under memory_lock or the DMA hold lock)
 *	vmig_shadow_dev.irq_lock (shadow.h; under vmig_shadow.lock, the
 *				engaged shadow's own mutex, or alone)
 *	shadow_ops_lock		(shadow.c, the registered shadows; alone, or
 *				under dev_set->lock or state_mutex)
 *
 * Markers of the dirty log take no lock (RCU, dirty.h).
 */

/**
 * struct vmig_device - one PCI function bound to vfio-mig
 * @core: vfio_pci_core state; must stay first (vfio_alloc_device()).
 * @node: entry in vmig_devices, under vmig_devices_lock.
 * @open: a VMM has the device open. Written only in open_device and
 *	close_device, which vfio serialises under core.vdev.dev_set->lock;
 *	readers that need a stable value take that lock too.
 * @trap_mode: enum vmig_trap_mode. Changed only under dev_set->lock while
 *	!@open, so it is stable for as long as a VMM can access the device
 *	and the access paths read it without a lock.
 * @profile: the device profile; same rule as @trap_mode.
 * @profile_priv: the profile's private data (vmig_profile_priv());
 *	allocated and freed with @profile by vmig_profile_bind(), under the
 *	same rule; what is inside follows the profile's own locking rules.
 * @early_load: the profile could load early device state now (its
 *	early_ready op, vmig_profile_early_update()): written under
 *	dev_set->lock when the profile is bound and after its debugfs
 *	commands; netlink's dev-get reads it with READ_ONCE(), without the
 *	lock that keeps @profile_priv.
 * @bar_va: in-kernel mappings of the memory BARs, made at open and
 *	dropped at close, both under dev_set->lock; used with it held.
 * @trapped_reads: BAR reads through the trapped path, per CPU (an atomic
 *	would cost the read path more than the rest of its bookkeeping).
 * @rs: write log and register file, under @rs.lock.
 * @dbg: debugfs test interface, under @dbg.lock.
 * @dirty: the DMA dirty log (dirty.h has its locking rules).
 * @overflow_work: sends the log-overflow event from process context.
 * @mig: VFIO migration state (lm.h has its locking rules).
 * @ctl: the attached /dev/vfio-mig fd and the pending migration phase
 *	(ctl.h has their locking rules).
 * @shadow: the shadow adapter and the access lock (shadow.h).
 * @users: uses of the device (vmig_dev_use_locked()): operations that
 *	found it under vmig_devices_lock and run without it; remove waits for
 *	them to end once it has unlisted the device.
 */
struct vmig_device {
	struct vfio_pci_core_device core;
	struct list_head node;
	bool open;
	enum vmig_trap_mode trap_mode;
	const struct vmig_profile *profile;
	void *profile_priv;
	bool early_load;
	void __iomem *bar_va[PCI_STD_NUM_BARS];
	u64 __percpu *trapped_reads;
	struct vmig_regstate rs;
	struct vmig_dbg dbg;
	struct vmig_dirty dirty;
	struct work_struct overflow_work;
	struct vmig_mig mig;
	struct vmig_ctl_dev ctl;
	struct vmig_shadow_dev shadow;
	atomic_t users;
};

/*
 * Every bound device is on vmig_devices from the end of probe to the start
 * of remove. Holding vmig_devices_lock keeps each listed device bound (remove
 * unlinks under it first), so code that finds a device by address, or walks
 * the list (netlink dumps, replay onto a second device), does so under the
 * lock. An operation that takes the device's dev_set->lock holds a use of
 * the device instead (vmig_dev_use_locked() under the lock, then the lock
 * dropped): that lock may be held for long (a shadow's engage and hand-back
 * move the device's state by its own DMA, hundreds of milliseconds for edu),
 * and no other device's operation may wait for it behind vmig_devices_lock.
 * So dev_set->lock is never taken under vmig_devices_lock. Remove waits for
 * the uses to end; nothing done under a use may wait for remove (unbind a
 * device, take the PCI device lock: pci_reset_function()).
 */
extern struct list_head vmig_devices;
extern struct mutex vmig_devices_lock;

/* The bound device at PCI address @name ("0000:00:03.0"), under the lock. */
struct vmig_device *vmig_find_locked(const char *name);
/* Take a use of a listed device, under the lock; it stays bound until... */
void vmig_dev_use_locked(struct vmig_device *mdev);
/* ...the use is dropped (any time, no lock held). */
void vmig_dev_unuse(struct vmig_device *mdev);

static inline struct vmig_device *to_vmig(struct vfio_device *vdev)
{
	return container_of(vdev, struct vmig_device, core.vdev);
}

/*
 * vfio-pci drops writes to the MSI-X table (and replay must never write
 * it): is [off, off + width) of @bar in it?
 */
static inline bool vmig_bar_excluded(struct vmig_device *mdev, u8 bar,
				     u32 off, u8 width)
{
	struct vfio_pci_core_device *core = &mdev->core;
	u64 start = core->msix_offset, end = start + core->msix_size;

	return bar == core->msix_bar && off < end && off + width > start;
}

static inline struct mutex *vmig_dev_set_lock(struct vmig_device *mdev)
{
	return &mdev->core.vdev.dev_set->lock;
}

extern const struct vfio_device_ops vmig_vfio_ops;

#endif /* _VFIO_MIG_H */
