/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: the shadow adapter (shadow.c, nl_shadow.c).
 *
 * A shadow is a software model of a device, registered per profile by
 * another module (sriov_shadow.ko) through the small API below: vfio_mig
 * never calls that module by symbol. While a shadow is engaged on a
 * device, every access of the VMM to the device's BARs through the device
 * fd is served by the shadow instead of the device: the device is
 * quiesced, its state captured into the shadow at engage, and brought to
 * the shadow's state at hand-back (Documentation/shadow.rst).
 */
#ifndef _VFIO_MIG_SHADOW_H
#define _VFIO_MIG_SHADOW_H

#include <linux/eventfd.h>
#include <linux/mutex.h>
#include <linux/percpu-rwsem.h>
#include <linux/rwsem.h>
#include <linux/types.h>
#include <linux/vfio.h>
#include <linux/workqueue.h>

struct device;
struct module;
struct vmig_ctl;
struct vmig_device;
struct vmig_reg_value;
struct vmig_held_write;
struct vmig_shadow;

/**
 * struct vmig_shadow_image - a device's state as a shadow takes and gives it
 * @reads: registers read from the device (engage) or to bring it to
 *	(hand-back); the profile's VMIG_REGF_CAPTURE registers
 * @nr_reads: entries in @reads
 * @max_reads: room in @reads (hand-back)
 * @written: the last value the guest wrote to registers whose value reads
 *	do not give (edu: the factorial's operand)
 * @nr_written: entries in @written
 * @max_written: room in @written (hand-back)
 * @devstate: the profile's device state blob (its format is the
 *	profile's), @devstate_len bytes of @devstate_max
 * @devstate_len: see @devstate
 * @devstate_max: see @devstate
 * @held: work the model holds while the device's DMA is held (edu: a DMA
 *	start), in the form the profile's held writes take, @nr_held of
 *	@max_held: a stream carries it as HELD_WRITES, so that a target
 *	without a shadow issues it as any held start; a hand-back hands it
 *	to the device after the state
 * @nr_held: see @held
 * @max_held: see @held
 * @devstate_later: engage: @devstate is not there yet, the @devstate op
 *	brings it (a model with that op, engaging from its device)
 * @devstate_gen: save: a count the model bumps whenever what its
 *	@devstate would hold changes (edu: a transfer into its buffer)
 * @devstate_kept: save: the model never had the blob, the device kept
 *	it (the @devstate op was given NULL): a hand-back leaves the
 *	device's own, a migration stream cannot carry the model's state
 */
struct vmig_shadow_image {
	struct vmig_reg_value *reads;
	u32 nr_reads;
	u32 max_reads;
	struct vmig_reg_value *written;
	u32 nr_written;
	u32 max_written;
	u8 *devstate;
	u32 devstate_len;
	u32 devstate_max;
	struct vmig_held_write *held;
	u32 nr_held;
	u32 max_held;
	bool devstate_later;
	u64 devstate_gen;
	bool devstate_kept;
};

/* A register's value in @img's reads or written values; -ENODATA. */
int vmig_shadow_image_get(const struct vmig_shadow_image *img, bool written,
			  u8 bar, u32 off, u8 width, u64 *val);
/* Add a read (@written false) or written value; -ENOSPC when full. */
int vmig_shadow_image_put(struct vmig_shadow_image *img, bool written, u8 bar,
			  u32 off, u8 width, u64 val);
/* Add a held write; -ENOSPC when full. */
int vmig_shadow_image_hold(struct vmig_shadow_image *img, u8 bar, u32 off,
			   u8 width, u64 val);

/**
 * struct vmig_shadow_ops - a shadow for the devices of one profile
 * @profile: the profile's name ("edu")
 * @owner: the module that implements it (THIS_MODULE): held while a
 *	shadow is engaged, so that it cannot be unloaded then
 * @priv_size: bytes of private data per engaged shadow (zeroed)
 * @serves_stream: a target may engage the model from a migration stream
 *	and serve the guest while its device takes the state in the
 *	background (by the profile's restore, with the guest running);
 *	false: the target's device takes the state itself
 * @engage: start the model from @img, the device's captured state; 0, or
 *	-errno with the reason in @why (a static string)
 * @read: a guest read of @width (1, 2 or 4) bytes at @off of BAR @bar
 * @write: a guest write
 * @save: the model's state into @img, for the hand-back; the profile's
 *	restore brings the device to it
 * @reset: the device was reset (VFIO_DEVICE_RESET, an FLR through config
 *	space, a hot reset): drop held work, as the profile drops held
 *	starts. Called before the model next serves an access or gives its
 *	state after the reset, so the guest's writes after it stay
 * @unhold: the device's DMA may go again (leaving the P2P states): start
 *	what vmig_shadow_dma() refused meanwhile (-EAGAIN)
 * @release: the shadow ends (after a hand-back, or the VMM closed the
 *	device), or @engage failed or never ran (the private data is then
 *	as @engage left it, or zeroed): free what @engage allocated
 * @handback_writes: optional, for a model whose device keeps the state it
 *	had at engage (or at its last reset, which the @reset op saw): the
 *	writes that bring it to the model's state, in the order the device
 *	is to take them, into @w (room for @max). The hand-back hands them
 *	to the device as the trap path hands the guest's (the profile sees
 *	each) instead of @save and the profile's restore. Returns how many,
 *	or -errno with the reason in @why (the hand-back is refused, the
 *	shadow serves on). Not called for a shadow engaged from a stream.
 *	With the access lock held for write and state_mutex.
 * @handback_failed: optional: the device took only the first @done of
 *	the writes @w that @handback_writes gave; the shadow serves on.
 *	Same context.
 * @devstate: optional, for a model whose device state blob takes the
 *	device long to give or take (edu: its buffer, by the device's own
 *	DMA): the engage starts the model from the registers alone
 *	(@devstate_later, the guest's accesses held only for that) and
 *	hands it the blob here once read, while the model serves; work
 *	that needs the blob waits for it (edu: a transfer keeps its start
 *	bit). @img NULL: the blob could not be read and the device keeps
 *	it: @save then gives none, and the engage is undone by a hand-back.
 *	A hand-back of such a model moves the blob first with the accesses
 *	going on (the profile's restore with VMIG_SNAP_STAGE), then the
 *	rest with them held (VMIG_SNAP_STAGED, if @devstate_gen did not
 *	change meanwhile; else all of it): the profile must know both.
 *	Without the access lock, under state_mutex.
 *
 * Every op runs in sleeping context under the shadow's own mutex, one op
 * at a time per device. @read and @write run with the device's access
 * lock held for read; @engage, and @save and @handback_writes for a
 * hand-back, with it held for write; @save for a migration stream and
 * @unhold under mig.state_mutex; @reset before any of those when the
 * device was reset since the model last looked (so in any of their
 * contexts); @release when no access can reach the shadow any more.
 * The model reaches guest memory with vmig_shadow_dma() and interrupts
 * with vmig_shadow_irq(). @why strings may be the module's own: vfio_mig
 * prints them in the kernel log, never hands them out.
 */
struct vmig_shadow_ops {
	const char *profile;
	struct module *owner;
	size_t priv_size;
	bool serves_stream;
	int (*engage)(struct vmig_shadow *sh,
		      const struct vmig_shadow_image *img, const char **why);
	u64 (*read)(struct vmig_shadow *sh, u8 bar, u32 off, u8 width);
	void (*write)(struct vmig_shadow *sh, u8 bar, u32 off, u8 width,
		      u64 val);
	int (*save)(struct vmig_shadow *sh, struct vmig_shadow_image *img);
	void (*reset)(struct vmig_shadow *sh);
	void (*unhold)(struct vmig_shadow *sh);
	void (*release)(struct vmig_shadow *sh);
	int (*handback_writes)(struct vmig_shadow *sh,
			       struct vmig_held_write *w, u32 max,
			       const char **why);
	void (*handback_failed)(struct vmig_shadow *sh,
				const struct vmig_held_write *w, u32 done);
	int (*devstate)(struct vmig_shadow *sh,
			const struct vmig_shadow_image *img, const char **why);
};

/* -EEXIST if the profile has a shadow already. */
int vmig_shadow_register(const struct vmig_shadow_ops *ops);
void vmig_shadow_unregister(const struct vmig_shadow_ops *ops);

/* The shadow's private data (ops->priv_size bytes). */
void *vmig_shadow_priv(struct vmig_shadow *sh);
/* The device the shadow serves for (for its messages). */
struct device *vmig_shadow_device(struct vmig_shadow *sh);
/*
 * Move @len bytes between guest IOVA @iova and @buf (@to_ram: into guest
 * memory, which the DMA dirty log then has marked, also when the write
 * failed part way). 0 or -errno; -EAGAIN while the device's DMA is held
 * (the @unhold op comes later); -EIO while the guest has bus mastering
 * off (the transfer goes nowhere, as the device's would).
 */
int vmig_shadow_dma(struct vmig_shadow *sh, u64 iova, void *buf, size_t len,
		    bool to_ram);
/*
 * Read @len bytes of guest memory at IOVA @iova into @buf, also while the
 * device's DMA is held (a model checking guest memory as it gives its
 * state; it must not change its state from what it reads then). 0 or
 * -errno.
 */
int vmig_shadow_peek(struct vmig_shadow *sh, u64 iova, void *buf,
		     size_t len);
/*
 * Signal interrupt @vector to the VMM, through the eventfd it gave for the
 * device's enabled interrupt type (MSI-X or MSI vector @vector, or INTx).
 * False if the VMM gave none, or for an MSI while the guest has bus
 * mastering off (a device's MSI is a memory write).
 */
bool vmig_shadow_irq(struct vmig_shadow *sh, unsigned int vector);

/* ---- inside vfio_mig ---- */

/* Interrupt vectors of each type whose eventfds a shadow can signal. */
#define VMIG_SHADOW_VECTORS	32
#define VMIG_SHADOW_IRQ_TYPES	(VFIO_PCI_MSIX_IRQ_INDEX + 1)

/**
 * struct vmig_shadow_dev - the shadow state of one device
 * @sem: the device's access lock: held for read by every BAR access of the
 *	VMM in trap modes sparse and all, for write by engage and hand-back
 *	while the guest moves between device and shadow, so that no access
 *	is in flight then
 * @move_lock: held for write by engage and hand-back throughout, also
 *	while a model's device state blob moves with the guest's accesses
 *	going to the shadow (the @devstate op), and by VFIO_MIG_CTL_PREPARE
 *	(lm.c) from the profile's checks to the end of its early save
 *	(across its worker's vfio_dma_rw()); for read by the VMM's config
 *	space writes and VFIO_DEVICE_RESET (trap.c): an FLR or reset they
 *	make, or a change to the command register, comes before or after
 *	the move, not in its middle
 * @sh: the engaged shadow or NULL; written under @sem held for write and
 *	mig.state_mutex, read under either
 * @engage_ns: how long the last engage held @sem for write
 * @handback_ns: the same for the last hand-back
 * @handback_work: the background hand-back of a target's shadow
 *	(vmig_shadow_hold()) and of one whose controller went
 *	(vmig_shadow_ctl_gone()), on system_long_wq; queued under
 *	mig.state_mutex (or by itself, to try again), never once @dying
 *	is set
 * @handback_tries: its tries so far; reset when it is queued for a new
 *	shadow (a stream's engage, a controller gone), then the work's own
 * @dying: the device goes (vmig_shadow_remove()); set under
 *	mig.state_mutex
 * @resets: the device's resets so far (vmig_shadow_device_reset())
 * @resets_begun: the resets the PCI core began so far (its reset_prepare;
 *	vmig_shadow_device_reset_begins()): a staged hand-back compares both
 * @irq_lock: protects @trigger
 * @trigger: the eventfds the VMM set for each interrupt type's first
 *	VMIG_SHADOW_VECTORS vectors (VFIO_DEVICE_SET_IRQS, ACTION_TRIGGER),
 *	each holding a reference; dropped at close
 *
 * Lock order: @move_lock, then @sem, come after mig.state_mutex (engage
 * and hand-back take them under dev_set->lock and state_mutex, the latter
 * by vmig_mig_lock(), which first applies a reported device reset:
 * mig.dma.lock and the shadow's mutex under state_mutex) and before
 * everything the access paths take (the shadow's mutex, the DMA hold
 * lock, memory_lock, and for VFIO_DEVICE_RESET and config writes
 * vfio-pci's own: memory_lock for write, the device lock); the shadow's
 * mutex is held across vfio_dma_rw() (type1's locks) and takes
 * @irq_lock, a leaf. @resets and @resets_begun are bumped from the PCI
 * core's reset_done and reset_prepare, any context, no lock.
 */
struct vmig_shadow_dev {
	struct percpu_rw_semaphore sem;
	struct rw_semaphore move_lock;
	struct vmig_shadow *sh;
	u64 engage_ns;
	u64 handback_ns;
	struct delayed_work handback_work;
	unsigned int handback_tries;
	bool dying;
	atomic_t resets;
	atomic_t resets_begun;
	struct mutex irq_lock;	/* protects @trigger */
	struct eventfd_ctx *trigger[VMIG_SHADOW_IRQ_TYPES][VMIG_SHADOW_VECTORS];
};

int vmig_shadow_dev_init(struct vmig_device *mdev);
void vmig_shadow_dev_exit(struct vmig_device *mdev);
/* remove: the background hand-back stopped for good, before unregister. */
void vmig_shadow_remove(struct vmig_device *mdev);
/* close_device: the shadow ends without a hand-back; eventfds dropped. */
void vmig_shadow_close(struct vmig_device *mdev);
/*
 * The release of control fd @ctl, under the device's ctl.rwsem held for
 * write: a shadow it engaged is its no more, and is handed back in the
 * background if @rolled_back (the migration did not reach its commit).
 */
void vmig_shadow_ctl_gone(struct vmig_device *mdev, const struct vmig_ctl *ctl,
			  bool rolled_back);
/*
 * Engage or hand back, from netlink holding a use of the device (it stays
 * bound; vmig_devices_lock is not held, other devices' operations go on).
 * 0, or -errno with the reason in @why (a static string, for an extack).
 * An engage for @ctl (the caller's control fd, which it keeps open for the
 * call; NULL: none) needs @ctl attached to the device and not committed,
 * and ends with it: vmig_shadow_ctl_gone().
 */
int vmig_shadow_engage(struct vmig_device *mdev, const struct vmig_ctl *ctl,
		       const char **why);
int vmig_shadow_handback(struct vmig_device *mdev, const char **why);
/* Is a shadow engaged (any lock, or none for a hint)? */
bool vmig_shadow_engaged(struct vmig_device *mdev);
/* Is a shadow registered for @profile? */
bool vmig_shadow_available(const char *profile);
/* The shadow of a device; takes no lock that engage holds (RCU). */
struct vmig_shadow_stats {
	bool engaged, from_stream;
	u64 reads, writes, dmas, irqs;
	u64 engage_ns, handback_ns;
};

void vmig_shadow_stats(struct vmig_device *mdev, struct vmig_shadow_stats *s);

/*
 * Migration, under mig.state_mutex. The source's stream carries the
 * engaged shadow's state (vmig_shadow_snapshot(), a snapshot the profile's
 * restore takes); the target serves the guest from it with its own shadow
 * (vmig_shadow_engage_stream(): 0, or -errno and the device is to take
 * the state); the arcs hold and release the shadow's DMA as the device's
 * (vmig_shadow_hold()), and releasing a target's starts its hand-back.
 */
struct vmig_snapshot *vmig_shadow_snapshot(struct vmig_device *mdev,
					   void *held, u32 *held_len);
int vmig_shadow_engage_stream(struct vmig_device *mdev,
			      const struct vmig_snapshot *snap,
			      const void *held, u32 held_len);
void vmig_shadow_hold(struct vmig_device *mdev, bool hold);
/* A reset ended the migration state: drop held work, release the DMA. */
void vmig_shadow_mig_reset(struct vmig_device *mdev, bool stay_stopped);

/*
 * The access paths (trap.c): a BAR access the engaged shadow serves, with
 * the device's access lock held for read: @count bytes (at most
 * VMIG_TRAP_CHUNK) at file position @pos, from or into the trap path's
 * copy of the VMM's buffer. Returns bytes or -errno.
 */
ssize_t vmig_shadow_read(struct vmig_device *mdev, u8 *buf, size_t count,
			 loff_t pos);
ssize_t vmig_shadow_write(struct vmig_device *mdev, const u8 *buf,
			  size_t count, loff_t pos);
/* VFIO_DEVICE_SET_IRQS went through: remember its eventfds. */
void vmig_shadow_set_irqs(struct vmig_device *mdev, void __user *uarg);
/*
 * The PCI core reset the device (its reset_done handler; any context):
 * an engaged shadow's model is reset before it next serves or gives state.
 */
void vmig_shadow_device_reset(struct vmig_device *mdev);
/*
 * The PCI core is about to reset the device (reset_prepare; any context):
 * what a hand-back staged on it before is not there any more.
 */
void vmig_shadow_device_reset_begins(struct vmig_device *mdev);

#endif /* _VFIO_MIG_SHADOW_H */
