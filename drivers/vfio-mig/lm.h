/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: VFIO migration (lm.c), its data fds (migf.c), the migration
 * stream (stream.c) and the DMA quiescing of the P2P states (lm_dma.c).
 */
#ifndef _VFIO_MIG_LM_H
#define _VFIO_MIG_LM_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/vfio.h>
#include <linux/wait.h>
#include <linux/rwsem.h>
#include <linux/workqueue.h>

struct file;
struct vmig_device;
struct vmig_held_write;
struct vmig_profile;
struct vmig_snapshot;

/* A DMA the device was just told to perform, as a DMA decoder sees it. */
struct vmig_dma_range {
	u64 iova;
	u64 len;
	bool to_ram;
};

/**
 * struct vmig_doorbell - the register block of a device's DMA engine (its
 *	doorbells, command and address registers): trapped writes there go
 *	to the profile's doorbell op
 * @bar: BAR holding them
 * @start: first byte of the block
 * @end: end of the block
 */
struct vmig_doorbell {
	u8 bar;
	u32 start;
	u32 end;
};

/* pages pinned for the container's dirty log (lm_pin.c): two transfers */
#define VMIG_MAX_PINNED		4

enum vmig_group_alone {
	VMIG_GROUP_UNKNOWN,
	VMIG_GROUP_ALONE,
	VMIG_GROUP_SHARED,
};

/* queue mutexes a profile may ask for (vmig_profile_dma_ops.nr_queues) */
#define VMIG_MAX_QUEUES		64

/**
 * struct vmig_dma_hold - the device's DMA engine as the trap path sees it
 * @lock: serialises writes to the profile's doorbell registers with the
 *	P2P arcs and with dirty reports; protects the fields below. A
 *	read-write semaphore: taken for write by everything (device-wide
 *	writes, arcs, reports, save, restore, reset), for read only by a
 *	doorbell write of one of the profile's queues (its queue_of op),
 *	which also takes that queue's @qlock (lm_dma.c): @held and what the
 *	profile declares device-wide are stable under either mode; pinning
 *	(@pinning_*) and the profile's device-wide state need it for write.
 *	Taken in process context only (the trap write path, arcs, reports);
 *	lock order: vmig_mig.state_mutex, vmig_migf.lock, vmig_dirty.lock,
 *	then @lock; the core's memory_lock (BAR access) and type1's
 *	iommu->lock (pinning, lm_pin.c) nest inside it, so a reset (which
 *	holds memory_lock) never takes it (lm.c), nor does type1's unmap
 *	notification (it holds device_list_lock, which type1 takes under
 *	iommu->lock).
 * @qlock: one mutex per queue of the profile (@nr_q), taken under @lock
 *	held for read: serialises the doorbell writes of one queue (decoded
 *	and written to the device in one order); never two at once.
 *	Allocated at open_device and freed at close_device (dev_set->lock),
 *	when no trapped write can run.
 * @nr_q: entries of @qlock (0: every doorbell write is device-wide)
 * @pin_lock: protects @pinned, @nr_pinned, @unmap_*, @pinning_*,
 *	@unpin_q, @nr_unpin_q and @in_transit; a leaf: nothing is called
 *	with it held. Taken by ->dma_unmap (under type1's device_list_lock),
 *	by @unpin_work and under @lock.
 * @held: DMA starts are held (P2P states, STOP, STOP_COPY, RESUMING, a
 *	prepared PRE_COPY, or without PRE_COPY a prepared RUNNING); what is
 *	held, and the transfer in flight, are
 *	the profile's (its DMA ops run under @lock)
 * @answers: the profile answers the guest's reads of its engine itself
 *	(its held_read op) with DMA released too: its own transfer left a
 *	register as the guest did not (edu: the command bits after an early
 *	save). Set by the profile under @lock; read by the trap path with
 *	READ_ONCE()
 * @pinned: page-aligned IOVAs of transfers into guest RAM, pinned for the
 *	type1 container's dirty log until the engine reads idle (lm_pin.c)
 * @nr_pinned: entries in @pinned
 * @alone: whether the device is alone in its IOMMU group (looked up at
 *	the first transfer after open)
 * @scoped: a page was pinned: type1 reports this group's pinned pages
 *	only, from then on (never cleared: fail closed)
 * @unmap_iova: the VMM's unmaps (->dma_unmap) whose grace runs, merged
 *	into one range ...
 * @unmap_len: ... its length (0: none) ...
 * @unmap_until: ... and until when a start into it waits (jiffies)
 * @pinning_iova: the pages a transfer is being pinned for (@lock held) ...
 * @pinning_len: ... their length (0: no transfer is being pinned) ...
 * @pinning_hit: ... and whether ->dma_unmap met them meanwhile
 * @pinning_gen: counts the pinnings that ended
 * @unpin_q: pages ->dma_unmap took out of @pinned, for @unpin_work
 * @nr_unpin_q: entries in @unpin_q
 * @in_transit: pages taken out of @pinned and not yet unpinned
 * @unpin_work: unpins @unpin_q outside type1's locks (lm_pin.c)
 * @pin_wq: ->dma_unmap waits there for @in_transit to drain and for a
 *	pinning it met to end
 */
struct vmig_dma_hold {
	struct rw_semaphore lock;	/* see above */
	struct mutex *qlock;		/* see above */
	unsigned int nr_q;
	bool held;
	bool answers;
	spinlock_t pin_lock;	/* see above */
	u64 pinned[VMIG_MAX_PINNED];
	u32 nr_pinned;
	enum vmig_group_alone alone;
	bool scoped;
	u64 unmap_iova;
	u64 unmap_len;
	unsigned long unmap_until;
	u64 pinning_iova;
	u64 pinning_len;
	bool pinning_hit;
	u32 pinning_gen;
	u64 unpin_q[VMIG_MAX_PINNED];
	u32 nr_unpin_q;
	u32 in_transit;
	struct work_struct unpin_work;
	wait_queue_head_t pin_wq;
};

/**
 * struct vmig_mig - migration state of a device
 * @state_mutex: serialises the state machine; protects @state, @saving,
 *	@resuming and @stay_stopped, and the binding of a profile (with
 *	the profile's private data). Held across every arc, including the
 *	profile's save and restore. Never taken under the device's
 *	dev_set->lock by an arc, and close_device takes it under that lock;
 *	so arcs use the unlocked snapshot and replay variants.
 * @state: the VFIO device state
 * @saving: data fd of the saving group (PRE_COPY*, STOP_COPY; without
 *	PRE_COPY, from a prepare in RUNNING through RUNNING_P2P and STOP to
 *	STOP_COPY), or NULL
 * @resuming: data fd of RESUMING, or NULL
 * @reset_lock: protects @deferred_reset and @dma_reset
 * @deferred_reset: a device reset arrived and is not applied yet; applied
 *	under @state_mutex by @reset_work or by whoever takes the mutex
 *	first (see lm.c)
 * @dma_reset: the same reset, for the profile's model of the device: applied
 *	under @dma.lock for write by whoever takes it first, @reset_work or
 *	a trapped write to the DMA engine (vmig_mig_dma_reset()), so that a
 *	guest that writes the device after its reset finds the model reset
 *	too, however late @reset_work runs
 * @reset_work: applies @deferred_reset
 * @stay_stopped: a controller committed the source in STOP
 *	(VFIO_MIG_CTL_COMMIT_STOPPED): no arc leaves STOP, from either fd,
 *	VFIO_DEVICE_RESET and VFIO_DEVICE_PCI_HOT_RESET are refused, and any
 *	other reset leaves the device in STOP with DMA held (lm.c), until
 *	close_device clears it
 * @dma: the DMA engine's hold state
 * @prepared: VFIO_MIG_CTL_PREPARE held DMA in PRE_COPY (a kernel without
 *	PRE_COPY: in RUNNING, with @saving opened by it) and queued the
 *	profile's early state; cleared when the device leaves that state,
 *	by a "RUNNING" asked in RUNNING (which releases it, as the arc back
 *	to RUNNING does) and by a reset (under @state_mutex)
 */
struct vmig_mig {
	struct mutex state_mutex;	/* see above */
	enum vfio_device_mig_state state;
	struct vmig_migf *saving;
	struct vmig_migf *resuming;
	spinlock_t reset_lock;		/* see above */
	bool deferred_reset;
	bool dma_reset;
	struct delayed_work reset_work;
	bool stay_stopped;
	struct vmig_dma_hold dma;
	bool prepared;
};

/* A queued piece of a saving stream. */
struct vmig_chunk {
	struct list_head node;
	size_t len;
	size_t pos;
	u8 data[];
};

struct vmig_stream_rx;

/* The most of a write to a resuming fd copied in at a time. */
#define VMIG_MIGF_BOUNCE	(64 * 1024)

/**
 * struct vmig_migf - a migration data fd
 * @filp: its file
 * @mdev: the device; valid while !@disabled under @lock, or while the
 *	device's state_mutex is held (only an arc disables the fd)
 * @io_lock: serialises the fd's read() and write() calls, which touch
 *	their caller's memory only with @lock dropped (a buffer that faults
 *	for ever holds up its own fd, never a close or an arc, which take
 *	@lock); taken before @lock, never by an arc
 * @bounce: resuming: @io_lock's copy of the caller's bytes (VMIG_MIGF_BOUNCE)
 * @lock: protects every field below. Lock order: state_mutex, @lock,
 *	the dirty log's lock, the DMA hold lock
 * @disabled: the device dropped the fd (arc out of the session, close,
 *	reset): read and write fail with -ENODEV
 * @saving: a saving fd (else resuming)
 * @chunks: saving: queued bytes, oldest first (a reader takes the oldest
 *	off while it copies it out, and puts back what it did not copy)
 * @queued: saving: bytes in @chunks not yet read, with the rest of a chunk
 *	a reader has taken off to copy out
 * @initial: saving: of @queued, bytes of the initial PRE_COPY data
 * @precopy: saving: the device is in a PRE_COPY state
 * @final: saving: the complete state is queued; EOF after @chunks
 * @hdr_sent: saving: the stream header is queued
 * @sent_seq: saving: write log entries below this are queued
 * @log_lost: saving: entries were overwritten before being queued
 * @nr_early: saving: PROFILE_EARLY records queued (the final save may
 *	refer to the last), at most VMIG_STREAM_MAX_EARLY (uAPI)
 * @bytes: bytes read or written so far
 * @poll_wait: readers waiting for data
 * @poll_work: saving: wakes PRE_COPY pollers when the log grows
 * @rx: resuming: the stream parser
 */
struct vmig_migf {
	struct file *filp;
	struct vmig_device *mdev;
	struct mutex io_lock;	/* see above */
	u8 *bounce;
	struct mutex lock;	/* see above */
	bool disabled;
	bool saving;
	struct list_head chunks;
	size_t queued;
	size_t initial;
	bool precopy;
	bool final;
	bool hdr_sent;
	u64 sent_seq;
	bool log_lost;
	u32 nr_early;
	u64 bytes;
	wait_queue_head_t poll_wait;
	struct delayed_work poll_work;
	struct vmig_stream_rx *rx;
};

/* lm.c */
/* Why a device with profile @p cannot migrate, or NULL: it can. */
const char *vmig_mig_unsupported(const struct vmig_profile *p);
/* ... or for the device with its trap mode: NULL when offered */
const char *vmig_mig_unsupported_dev(struct vmig_device *mdev);
/*
 * The VFIO migration flags the device offers a VMM that opens it now (a
 * VMM that has it open got the same: its settings are frozen while open).
 */
u32 vmig_mig_flags(struct vmig_device *mdev);
void vmig_mig_init(struct vmig_device *mdev);
/*
 * open_device: the migration flags for the profile and trap mode the
 * device has now (none if it cannot quiesce DMA); neither changes while
 * open.
 */
void vmig_mig_open(struct vmig_device *mdev);
/* close_device: back to RUNNING, fds dropped, holds released. */
/*
 * mig.state_mutex, with a device reset the PCI core reported applied first
 * (and one that arrives meanwhile applied before it is let go).
 */
void vmig_mig_lock(struct vmig_device *mdev);
void vmig_mig_unlock(struct vmig_device *mdev);
void vmig_mig_close(struct vmig_device *mdev);
/* After VFIO_DEVICE_RESET: wait until the reset is applied. */
void vmig_mig_reset_sync(struct vmig_device *mdev);
/* debugfs TEST INTERFACE (vfio-mig/reset_delay_ms): delay the reset work */
extern unsigned int vmig_reset_delay_ms;
/*
 * debugfs TEST INTERFACE (vfio-mig/unmap_grace_ms): how long a start into
 * IOVA the VMM just unmapped waits before it pins there (lm_pin.c; 20 by
 * default, at most 5000)
 */
extern unsigned int vmig_unmap_grace_ms;
/*
 * Under mig.dma.lock for write: apply a device reset the profile's model
 * has not seen yet (struct vmig_mig @dma_reset), unless DMA is held (the
 * reset's work applies it then, with the rest).
 */
void vmig_mig_dma_reset(struct vmig_device *mdev);
/*
 * The same as DMA is released (vmig_dma_release()), before the held
 * starts are issued: a reset since the hold drops them.
 */
void vmig_mig_dma_reset_release(struct vmig_device *mdev);
/* remove: no reset work may run any more. */
void vmig_mig_exit(struct vmig_device *mdev);
/*
 * Move to @new_state one arc at a time, as VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE
 * does (the VFIO op and /dev/vfio-mig both end here): the new state's data
 * fd (a reference for the caller), NULL, or an ERR_PTR. -EPERM for any
 * state but STOP after vmig_mig_commit_stopped(); -EOPNOTSUPP when the
 * device offers no migration. Takes state_mutex, never dev_set->lock.
 */
struct file *vmig_mig_set_state(struct vmig_device *mdev,
				enum vfio_device_mig_state new_state);
enum vfio_device_mig_state vmig_mig_get_state(struct vmig_device *mdev);
/*
 * A controller went away before its commit point: back to RUNNING along
 * legal arcs; a RESUMING stream is dropped unapplied first. ERROR stays.
 */
void vmig_mig_rollback(struct vmig_device *mdev);
/* The device must be in STOP (else -EINVAL); it stays there until close. */
int vmig_mig_commit_stopped(struct vmig_device *mdev);
/*
 * VFIO_MIG_CTL_PREPARE: in PRE_COPY, hold DMA and queue the profile's
 * early state on the saving fd (see the uAPI header for the errors). A
 * kernel without PRE_COPY: in RUNNING, on a saving fd it opens, which the
 * arc into STOP_COPY gives again; *@data gets a reference to it then.
 */
int vmig_mig_prepare(struct vmig_device *mdev, struct file **data);
/* Is the device committed in STOP? (takes state_mutex) */
bool vmig_mig_stay_stopped(struct vmig_device *mdev);
extern const struct vfio_migration_ops vmig_mig_ops;
int vmig_device_feature(struct vfio_device *vdev, u32 flags,
			void __user *arg, size_t argsz);

/*
 * lm_pin.c: the type1 container's dirty log. Under vmig_dma_hold.lock (write):
 * pin the pages of transfer @r before its start reaches the device (0),
 * or -errno: the start must not reach the device.
 */
int vmig_pin_transfer(struct vmig_device *mdev, const struct vmig_dma_range *r);
/*
 * Under vmig_dma_hold.lock (write): unpin what lies in [@iova, @iova + @len), or
 * everything if @len is 0.
 */
void vmig_pin_drop(struct vmig_device *mdev, u64 iova, u64 len);
/* vfio_device_ops.dma_unmap; takes vmig_dma_hold.pin_lock only */
void vmig_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length);
/* Initialise the pin state of @h (its lock is the caller's). */
void vmig_pin_init(struct vmig_dma_hold *h);
extern const struct pci_error_handlers vmig_err_handlers;
const char *vmig_mig_state_name(enum vfio_device_mig_state state);

/* lm_dma.c */
/*
 * debugfs TEST INTERFACE (vfio-mig/queue_doorbells): N sends every doorbell
 * write through the device-wide path, as if no profile declared queues
 * (to measure what the queue path buys); Y by default.
 */
extern bool vmig_queue_doorbells;
/*
 * The trap path's write to the profile's doorbell block, and its read of
 * that block while DMA is held (what the profile's held_read op says, else
 * the device's answer): @count bytes (at most VMIG_TRAP_CHUNK) at file
 * position @fpos, from or into the trap path's copy of the VMM's buffer,
 * with the device's access lock held for read. Returns bytes or -errno.
 */
ssize_t vmig_doorbell_write(struct vmig_device *mdev, const u8 *buf,
			    size_t count, loff_t fpos);
ssize_t vmig_doorbell_read(struct vmig_device *mdev, u8 *buf, size_t count,
			   loff_t fpos);
/* Does [off, off + count) of BAR @bar touch the doorbell block? */
static inline bool vmig_doorbell_hit(const struct vmig_doorbell *db, u8 bar,
				     u64 off, size_t count)
{
	return db && bar == db->bar && off < db->end &&
	       off + count > db->start;
}

/*
 * open_device / close_device: the queue mutexes of the profile's queues
 * (vmig_profile_dma_ops.nr_queues), under dev_set->lock.
 */
int vmig_dma_open(struct vmig_device *mdev);
void vmig_dma_close(struct vmig_device *mdev);
int vmig_dma_hold(struct vmig_device *mdev);
void vmig_dma_release(struct vmig_device *mdev, bool issue);
/*
 * For a profile's doorbell and unquiesce ops, under vmig_dma_hold.lock held
 * for write (not from a queue's doorbell, which holds it for read): a
 * transfer into guest RAM @r is about to start: mark it dirty and pin its
 * pages for the container's dirty log. -errno: the start must not reach
 * the device (the profile drops it, as the device drops a start it cannot
 * serve).
 */
int vmig_dma_start(struct vmig_device *mdev, const struct vmig_dma_range *r);
/*
 * Hand @nr writes to the device in order, as the trap path hands the
 * guest's: each through the profile's doorbell op when it falls in the
 * doorbell block (which may read guest memory: run in a worker), the rest
 * straight to the device; none is logged again (the shadow logged them as
 * the guest made them). For a shadow's hand-back, with the device's
 * accesses held. 0, or the first -errno (later writes are not made);
 * @done: how many were made.
 */
int vmig_dma_replay(struct vmig_device *mdev, const struct vmig_held_write *w,
		    u32 nr, u32 *done);
/*
 * The profile's held work, for the stream: a HELD_WRITES payload (at most
 * vmig_dma_held_max() bytes) into @buf, its length returned; checked as it
 * arrives on the target (-EINVAL: refuse the stream) and installed after a
 * successful restore (DMA stays held).
 */
u32 vmig_dma_held_save(struct vmig_device *mdev, void *buf);
u32 vmig_dma_held_max(struct vmig_device *mdev);
int vmig_dma_held_check(struct vmig_device *mdev, const void *buf, u32 len);
void vmig_dma_held_load(struct vmig_device *mdev, const void *buf, u32 len);
/*
 * Around a dirty report, under mig.dma.lock held for write across it: the
 * range of a transfer still running, to mark again after the read-and-clear
 * (false: none).
 */
bool __vmig_dma_inflight(struct vmig_device *mdev, struct vmig_dma_range *r);
/* After a clearing report: the profile's remark op (dma.lock for write). */
void __vmig_dma_remark(struct vmig_device *mdev);

/* migf.c */
struct vmig_migf *vmig_migf_save_open(struct vmig_device *mdev, bool precopy);
struct vmig_migf *vmig_migf_resume_open(struct vmig_device *mdev);
/*
 * PRE_COPY: queue the profile's early state (@blob, @len bytes) as a
 * PROFILE_EARLY record; the next read gives it.
 */
int vmig_migf_queue_early(struct vmig_migf *migf, const void *blob, u32 len);
/* May @migf take one more PROFILE_EARLY record (VMIG_STREAM_MAX_EARLY)? */
bool vmig_migf_early_room(struct vmig_migf *migf);
/* Queue the rest of the state (device stopped); the stream then ends. */
int vmig_migf_save_final(struct vmig_migf *migf);
/* RESUMING -> STOP: check the stream is complete and apply it. */
int vmig_migf_load(struct vmig_migf *migf);
/* Drop the fd from the device (and the reference the device held). */
void vmig_migf_put(struct vmig_migf *migf);
/* Estimate of the bytes STOP_COPY will produce from now. */
unsigned long vmig_migf_stop_copy_estimate(struct vmig_device *mdev,
					   struct vmig_migf *saving);

#endif /* _VFIO_MIG_LM_H */
