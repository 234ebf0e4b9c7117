/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: the migration control device /dev/vfio-mig (ctl.c) and the
 * migration phases relayed over netlink (nl_mig.c).
 */
#ifndef _VFIO_MIG_CTL_H
#define _VFIO_MIG_CTL_H

#include <linux/atomic.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/types.h>

struct dt_range;
struct file;
struct vmig_device;

/**
 * struct vmig_ctl - one open /dev/vfio-mig
 * @attach_lock: serialises VFIO_MIG_CTL_ATTACH on this fd; taken before
 *	vmig_devices_lock and the device's ctl.rwsem
 * @mdev: the device, set once by ATTACH (under @attach_lock and the
 *	device's ctl.rwsem held for write), with a reference on its
 *	vfio_device that release drops; read without a lock through
 *	smp_load_acquire(). The attachment is alive while the device's
 *	ctl.ctl points here (under its ctl.rwsem).
 * @moved: a VFIO_MIG_CTL_STATE set or a VFIO_MIG_CTL_PREPARE of this fd
 *	succeeded or changed the device's state: only then does release roll
 *	the device back (a controller that moved nothing leaves the state
 *	the VMM set, a paused VM's STOP say, as it is). Only ever set to
 *	true, with WRITE_ONCE() and the device's ctl.rwsem held for read;
 *	read by release with it held for write
 * @committed: VFIO_MIG_CTL_COMMIT was called; written with the device's
 *	ctl.rwsem held for write, read with it held
 * @last_phase: the last phase announced while this fd was attached (0:
 *	none); written under the device's ctl.rwsem (held for read) and
 *	ctl.phase_lock, read under either ctl.phase_lock or ctl.rwsem held
 *	for write (release)
 * @bdf: the device's address, for the events sent after it is gone
 * @nr_stage: staging fds open on this fd (stage.c), at most
 *	VFIO_MIG_CTL_STAGE_FDS_MAX; atomic, no lock (each staging fd holds
 *	a reference on this fd's file, so this outlives them)
 */
struct vmig_ctl {
	struct mutex attach_lock;	/* see above */
	struct vmig_device *mdev;
	bool moved;
	bool committed;
	u32 last_phase;
	char bdf[16];
	atomic_t nr_stage;
};

/**
 * struct vmig_ctl_dev - a device's side of /dev/vfio-mig and of the phases
 * @rwsem: protects @ctl. Every control ioctl holds it for read for as
 *	long as it uses the device, and so does the mig-phase handler; a
 *	shadow engage for a controller (ctl-fd) holds it for read to check
 *	that controller, under dev_set->lock; ATTACH, COMMIT, the release of
 *	a control fd (its rollback, and the end of a shadow engaged for it,
 *	included) and close_device hold it for write. close_device detaches
 *	the fd (@ctl = NULL: its ioctls then fail with ENODEV) once the ioctls in
 *	flight are done. close_device runs under the vfio dev_set->lock, so
 *	nothing may take that lock with @rwsem held; nor may an ioctl hold
 *	it while it touches its caller's memory (PAGES reads and writes its
 *	caller's buffers outside it, ctl.c). Lock order: vmig_devices_lock,
 *	dev_set->lock, a control fd's pages_lock, @rwsem, then either
 *	mig.state_mutex (and the locks under it, lm.h) or @phase_lock.
 * @ctl: the attached control fd, or NULL
 * @phase_lock: protects the fields below; the phase events are sent
 *	under it, so that they leave in @seq order
 * @phase: the pending phase (enum vfio_mig_mig_phase), 0: none
 * @seq: the pending phase's number
 * @next_seq: the number the next phase gets (per device, from 1, never
 *	reused while the device is bound)
 * @ram: the guest RAM the VMM named in its ack of prepare (kmalloc'd,
 *	@nr_ram ranges, 4 KiB aligned), or NULL; the control fd writes pages
 *	into it only. Kept only while a controller is attached (the ack
 *	holds @rwsem for read); dropped at the next announcement, and when
 *	the fd or the device goes. Read under @phase_lock with @rwsem held
 *	for read (vmig_ram_contains()): by the PAGES ioctl, which holds its
 *	fd's pages_lock too, and by a landing staging fd, which holds its
 *	own lock (stage.c).
 * @nr_ram: entries in @ram
 */
struct vmig_ctl_dev {
	struct rw_semaphore rwsem;	/* see above */
	struct vmig_ctl *ctl;
	struct mutex phase_lock;	/* see above */
	u32 phase;
	u32 seq;
	u32 next_seq;
	struct dt_range *ram;
	u32 nr_ram;
};

/* The most RAM ranges a VMM may name (mig-ack "ram"). */
#define VMIG_RAM_RANGES_MAX	64

/* ctl.c */
int vmig_ctl_init(void);
void vmig_ctl_exit(void);
void vmig_ctl_dev_init(struct vmig_device *mdev);
/* close_device: end the attachment, after the ioctls in flight. */
void vmig_ctl_detach(struct vmig_device *mdev);
/* The control fd @f is, or NULL if it is not a /dev/vfio-mig fd. */
struct vmig_ctl *vmig_ctl_of_file(struct file *f);

/* nl_mig.c */
/*
 * Announce @phase for the device at @bdf: it becomes the pending phase,
 * with a new seq (returned), and mig-phase-ntf is sent. The caller holds
 * mdev->ctl.rwsem; @ctl (the attached fd, or NULL) records it.
 */
u32 vmig_phase_announce(struct vmig_device *mdev, struct vmig_ctl *ctl,
			const char *bdf, u32 phase);
/* Forget the RAM the VMM named (the controller or the device went). */
void vmig_ram_forget(struct vmig_device *mdev);
/*
 * Whether the @n page-aligned IOVAs are all in the RAM the VMM named (true
 * if it named none); under ctl.rwsem. On false, *@bad is the first not.
 */
bool vmig_ram_contains(struct vmig_device *mdev, const u64 *iovas, u32 n,
		       u64 *bad);

#endif /* _VFIO_MIG_CTL_H */
