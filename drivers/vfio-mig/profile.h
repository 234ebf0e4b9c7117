/* SPDX-License-Identifier: GPL-2.0 */
/* vfio-mig: device profiles (profile.c, profiles/). */
#ifndef _VFIO_MIG_PROFILE_H
#define _VFIO_MIG_PROFILE_H

#include <linux/types.h>

struct seq_file;

struct pci_dev;
struct pci_device_id;
struct vmig_device;
struct vmig_dma_range;
struct vmig_doorbell;
struct vmig_identity;
struct vmig_profile;
struct vmig_reglog_entry;
struct vmig_replay_report;
struct vmig_snapshot;

/**
 * enum vmig_reg_class - what replay does with a register
 * @VMIG_REG_STATE: replay the last value
 * @VMIG_REG_TRIGGER: has side effects (doorbell, command, start bit):
 *	never replayed blindly; the profile's replay_trigger or restore decides
 * @VMIG_REG_RO: read-only; writes are not replayed
 * @VMIG_REG_VOLATILE: changes by itself; neither replayed nor compared
 */
enum vmig_reg_class {
	VMIG_REG_STATE,
	VMIG_REG_TRIGGER,
	VMIG_REG_RO,
	VMIG_REG_VOLATILE,
};

/* vmig_reg_desc.flags */
#define VMIG_REGF_CAPTURE	0x1	/* read at save time into the snapshot */
#define VMIG_REGF_VERIFY	0x2	/* read back after replay and compare */

/**
 * struct vmig_reg_desc - one register, or an array of alike registers, a
 *	profile knows
 * @name: for reports
 * @offset: offset in @bar (of the first element of an array)
 * @bar: BAR index
 * @width: access width used to capture it
 * @class: enum vmig_reg_class
 * @flags: VMIG_REGF_*
 * @order: replay phase; lower first, then log order
 * @stride: bytes from one element of an array to the next (>= @width);
 *	0 with @count 0 or 1
 * @count: elements in the array (2 x N queue doorbells, say); 0 or 1: a
 *	single register
 */
struct vmig_reg_desc {
	const char *name;
	u32 offset;
	u8 bar;
	u8 width;
	u8 class;
	u8 flags;
	u8 order;
	u32 stride;
	u32 count;
};

/* A BAR range the sparse mode traps (page aligned). */
struct vmig_trap_range {
	u8 bar;
	u32 offset;
	u32 size;
};

/* Identity fields a profile may tolerate differing (vmig_profile.tolerate) */
#define VMIG_ID_REVISION	0x1
#define VMIG_ID_SUBSYSTEM	0x2

/**
 * struct vmig_profile_ctx - context of a profile's save or restore op
 * @mdev: the device
 * @src: restore: the snapshot being applied (registers read with
 *	vmig_snap_read() and vmig_snap_regfile())
 * @report: restore: where errors go (vmig_report_error())
 * @flags: VMIG_SNAP_*; VMIG_SNAP_COMPLETE marks a migration (save: leave
 *	nothing out; restore: from a migration stream)
 * @state: save: the state_size op's bytes, zeroed, for the device state
 *	blob (NULL without VMIG_SNAP_DEVSTATE); restore: the source's blob,
 *	or NULL. Opaque to the core: a snapshot and the migration stream
 *	carry it unchanged, the stream checked only that the source's
 *	profile name is this profile's, that its version is one the profile
 *	takes (@state_version) and that it fits.
 * @state_len: save: bytes of @state filled (0: no blob); restore: bytes
 *	of @state
 * @state_version: restore: the profile version @state was written at (the
 *	stream header's; the profile's own for a local snapshot), between
 *	the profile's @min_version and @version
 */
struct vmig_profile_ctx {
	struct vmig_device *mdev;
	const struct vmig_snapshot *src;
	struct vmig_replay_report *report;
	unsigned int flags;
	void *state;
	u32 state_len;
	u32 state_version;
};

/*
 * struct vmig_held_write - a piece of a trapped write to the DMA engine
 * block (vmig_profile.doorbell), as the profile's doorbell op sees it
 */
struct vmig_held_write {
	u64 value;
	u32 offset;
	u8 bar;
	u8 width;
};

/**
 * enum vmig_db_verdict - what the core does with a doorbell write
 * @VMIG_DB_FORWARD: write it to the device and log it
 * @VMIG_DB_HOLD: log it, do not write it: the profile kept it (held work,
 *	issued by @unquiesce) or dropped it as the device would drop a start
 *	it cannot serve
 * @VMIG_DB_DROP: neither write nor log it (the device ignores its engine
 *	while it transfers)
 */
enum vmig_db_verdict {
	VMIG_DB_FORWARD,
	VMIG_DB_HOLD,
	VMIG_DB_DROP,
};

/**
 * struct vmig_profile_dev_ops - a profile's behaviour for its device
 *
 * Every op is optional. The profile's private data (vmig_profile_priv(),
 * vmig_profile.priv_size bytes, zeroed) lives from the moment the profile
 * is bound to the device (probe, or vmig_set_profile()) until it is
 * unbound (another profile set, or the device released); its locking is
 * the profile's to document, along the rules below.
 *
 * @open: the VMM opened the device (open_device, dev_set->lock held):
 *	start a session's state; an error fails the open
 * @close: the VMM closed it (close_device, dev_set->lock held), after
 *	migration was reset: drop the session's state
 * @reset: the migration state is reset (close, a device reset): drop the
 *	held work and forget the transfer in flight. Under mig.state_mutex
 *	and mig.dma.lock; must not sleep long (no device access needed)
 * @quiesce: wait up to @ms for the device's DMA in flight to end (0: just
 *	look); 0 when idle, -ETIMEDOUT else. Sleeping context, device open;
 *	without it the device cannot offer migration (its DMA cannot be
 *	quiesced). Also called with mig.dma.lock held and @ms 0.
 * @unquiesce: leave the P2P states: issue the held work in order (each
 *	start through vmig_dma_start()), or drop it when !@issue. Under
 *	mig.dma.lock
 * @save: capture device state that registers do not reach into the
 *	snapshot (a device state blob, extra reads); runs in a worker
 *	(vfio_dma_rw works from it), device open, caller holds the device's
 *	mig.state_mutex (__vmig_snapshot_take(); dev_set->lock only from the
 *	debugfs interface, not from the migration arcs)
 * @restore: bring the target to the snapshot's state in the profile's own
 *	order; when NULL, the engine replays the register file and log tail in
 *	(@order, seq) order. Same context as @save.
 * @early_ready: optional, with @early_save: can early state move now?
 *	Source (@load false): asked by VFIO_MIG_CTL_PREPARE before DMA is
 *	held, so that a refusal costs the guest nothing; under
 *	mig.state_mutex and shadow.move_lock held for write (no config
 *	write of the VMM's until @early_save returns). Target (@load true):
 *	would @early_load succeed now, for the migration controller's
 *	handshake (netlink dev-get, through vmig_device.early_load: asked
 *	when the profile is bound and after its debugfs commands); under
 *	dev_set->lock. 0, or -ENXIO
 *	(something the VMM must name is missing), -EAGAIN (the guest's
 *	device state forbids it now: edu's bus mastering off).
 * @early_save: optional: source, PRE_COPY, DMA held (VFIO_MIG_CTL_PREPARE),
 *	the guest running: the state that only a slow device operation
 *	reaches, as a blob into @blob (room for @state_size; its length in
 *	*@len) that @save's blob can then refer to instead of carrying it.
 *	Under mig.state_mutex; the profile keeps the guest's view of the
 *	device unchanged (its doorbell and held_read ops). -ETIMEDOUT: the
 *	device may still be busy with the profile's own operation, and the
 *	core keeps DMA held until the device leaves PRE_COPY; any other
 *	error releases it.
 * @early_load: target, RESUMING: check a blob @early_save wrote (-EINVAL:
 *	not one it could write) and load it onto the device, so that
 *	@restore finds it there. Under the resuming fd's lock, inside the
 *	write() that completes the record; not under mig.state_mutex, but
 *	no arc runs meanwhile (each takes that lock to drop or apply the fd).
 * @state_size: largest device state blob @save produces (0: none); a
 *	stream carrying a longer one is refused as it arrives
 * @compat: may a snapshot of a device @src be applied to this profile's
 *	device @dst? 0 or -EINVAL with the reason in @rep->msg; sets
 *	@rep->id_tolerated when a difference was tolerated. NULL:
 *	vmig_profile_compat_ids() with the profile's @tolerate.
 * @needs: source: what the guest uses of the device, as a versioned
 *	record of the profile's own, into @buf (VMIG_NEEDS_MAX bytes): its
 *	bytes (0: none), or -errno. Under dev_set->lock (netlink dev-needs);
 *	the profile takes its own locks.
 * @compat_needs: target: the second half of @compat, asked by the
 *	migration controller before any state moves (netlink dev-compat):
 *	may a source whose @needs op said @needs (@needs_len bytes from the
 *	network; NULL: the source sent none) move onto @mdev, given @facts
 *	(@facts_len bytes; NULL: none) that the target's controller learned
 *	about the device from outside (its PF)? 0 with what it could not
 *	check in @notes (@notes_len bytes), or -EINVAL with the reason in
 *	@rep->msg. Under dev_set->lock; the device may be closed.
 * @park: the device's state moved into a shadow (shadow.c), or a
 *	hand-back to it was refused: keep it from raising the interrupts the
 *	shadow owns now (edu: acknowledge its interrupt status). Sleeping
 *	context, device open, memory decoding on, guest accesses held.
 * @replay_trigger: may a logged write to a TRIGGER register be replayed?
 *	NULL: never.
 * @ctl: a debugfs TEST INTERFACE command the core does not know (edu:
 *	"scratch IOVA"); -EINVAL if the profile does not know it either.
 *	Under dev_set->lock.
 * @counters_show: the profile's own "key: value" lines in the debugfs
 *	counters file (edu: the transfers it ran itself). Under
 *	dev_set->lock.
 * @peer_quiesce: optional, for a device with a link peer (a network
 *	adapter): a shadow engage on the source is about to take the device
 *	away from the guest, so ask the peer to stop sending to it (@stop
 *	true: a TCP window of 0, a pause frame, the fabric's equivalent) and
 *	wait at most @ms for what it sent to arrive; 0, or -errno and the
 *	engage is refused with the device untouched. Called again with @stop
 *	false (@ms 0, its result only logged) once the guest is off the
 *	shadow: the engage was undone (also after a failed stop, so that a
 *	stop half made is undone), handed back, or dropped because the VMM
 *	closed the device (a source's after its migration). An engage that
 *	failed but stays engaged (EIO) keeps the peer stopped until then.
 *	Never for a shadow a migration stream engaged (shadow.rst says
 *	why). Sleeping context under dev_set->lock, a stop (and the resume
 *	that undoes a failed one) also under mig.state_mutex, so the op must
 *	not wait for anything that takes those (a NIC profile needing
 *	rtnl_lock must not wait for a holder of rtnl that opens, resets or
 *	migrates this device). The guest's accesses go on: at a stop they
 *	still reach the device, at a resume the device serves them again
 *	(nothing does after a close).
 */
struct vmig_profile_dev_ops {
	int (*open)(struct vmig_device *mdev);
	void (*close)(struct vmig_device *mdev);
	void (*reset)(struct vmig_device *mdev);
	int (*quiesce)(struct vmig_device *mdev, unsigned int ms);
	void (*unquiesce)(struct vmig_device *mdev, bool issue);
	int (*save)(struct vmig_profile_ctx *ctx);
	int (*restore)(struct vmig_profile_ctx *ctx);
	int (*early_ready)(struct vmig_device *mdev, bool load);
	int (*early_save)(struct vmig_device *mdev, void *blob, u32 *len);
	int (*early_load)(struct vmig_device *mdev, const void *blob, u32 len);
	u32 (*state_size)(const struct vmig_profile *p);
	int (*compat)(const struct vmig_profile *p,
		      const struct vmig_identity *src,
		      const struct vmig_identity *dst,
		      struct vmig_replay_report *rep);
	int (*needs)(struct vmig_device *mdev, void *buf);
	int (*compat_needs)(struct vmig_device *mdev, const void *needs,
			    u32 needs_len, const void *facts, u32 facts_len,
			    struct vmig_replay_report *rep, char *notes,
			    size_t notes_len);
	void (*park)(struct vmig_device *mdev);
	bool (*replay_trigger)(struct vmig_device *mdev,
			       const struct vmig_reglog_entry *e);
	int (*ctl)(struct vmig_device *mdev, const char *cmd);
	void (*counters_show)(struct vmig_device *mdev, struct seq_file *m);
	int (*peer_quiesce)(struct vmig_device *mdev, bool stop,
			    unsigned int ms);
};

/**
 * struct vmig_profile_dma_ops - the device's DMA engine, for a profile
 *	that names it (vmig_profile.doorbell)
 *
 * @doorbell: a trapped write piece @w to the engine block; @held: DMA is
 *	held (P2P states, STOP, STOP_COPY, RESUMING). Returns what the core
 *	does with it; a start that goes ahead is first declared with
 *	vmig_dma_start() (dirty log, pins). Under mig.dma.lock; sleeping
 *	context; the device may be read.
 * @inflight: the guest range a transfer still running may write (true),
 *	or false once the engine reads idle (then the profile forgets it
 *	and drops the pins: vmig_pin_drop()). Under mig.dma.lock.
 * @held_save: the held work as a HELD_WRITES record payload into @buf
 *	(room for @held_max bytes): bytes written. Under mig.dma.lock.
 * @held_load: check a HELD_WRITES payload as it arrives (@apply false:
 *	-EINVAL if the trap path could not have held it), or install it
 *	after a successful restore (@apply true). Under mig.dma.lock when
 *	@apply; @mdev's profile is this one either way.
 * @held_max: largest HELD_WRITES payload
 * @remark: a clearing dirty report just ran: mark again everything the
 *	device may still write (commands in flight), for a device with more
 *	than the one transfer @inflight describes. Under mig.dma.lock; must
 *	not read guest memory (any context).
 * @queue_of: optional: the queue (0 .. @nr_queues - 1) whose doorbell the
 *	single-piece write @w is, when the device serves that queue
 *	independently of the others, or -1: device-wide. Then @doorbell
 *	runs for @w under mig.dma.lock held for READ and the queue's mutex
 *	only, concurrently with other queues' doorbells: it may touch that
 *	queue's state, read device-wide state (stable: everything that
 *	changes it holds the lock for write), and must protect whatever it
 *	shares with other queues itself; it must not call vmig_dma_start()
 *	(pinning is device-wide). Called under mig.dma.lock held for read.
 * @nr_queues: queues @queue_of may return (at most VMIG_MAX_QUEUES)
 * @held_read: optional: a trapped read of @width bytes at @off of BAR
 *	@bar in the engine block: true with the value the guest is to see
 *	in @val, false to let the device answer. A start the profile holds
 *	reads as running, as the device would show it, for a guest whose
 *	vCPUs run meanwhile (a shadow's engage, a prepared switchover); and
 *	registers the profile's own transfers changed read as the guest
 *	left them (@early_save). Under mig.dma.lock.
 *
 * Every op but @doorbell (and @held_load with @apply false) runs with
 * mig.dma.lock held for write when it says "under mig.dma.lock".
 */
struct vmig_profile_dma_ops {
	enum vmig_db_verdict (*doorbell)(struct vmig_device *mdev,
					 const struct vmig_held_write *w,
					 bool held);
	bool (*inflight)(struct vmig_device *mdev, struct vmig_dma_range *r);
	u32 (*held_save)(struct vmig_device *mdev, void *buf);
	int (*held_load)(struct vmig_device *mdev, const void *buf, u32 len,
			 bool apply);
	u32 held_max;
	void (*remark)(struct vmig_device *mdev);
	int (*queue_of)(struct vmig_device *mdev,
			const struct vmig_held_write *w);
	unsigned int nr_queues;
	bool (*held_read)(struct vmig_device *mdev, u8 bar, u64 off, u8 width,
			  u64 *val);
};

/**
 * struct vmig_profile - what vfio-mig knows about one kind of device
 *
 * The data half:
 * @name: short name ("edu"), at most VMIG_PROFILE_NAME_MAX - 1 chars
 * @version: profile (and device state blob) version
 * @min_version: the oldest blob version @ops->restore takes, from a source
 *	with an older module (0: @version only); what it takes of one is
 *	the profile's to say
 * @ids: devices the profile is for; NULL: any device (generic)
 * @regs: registers (and register arrays) the profile knows, @nr_regs
 * @nr_regs: count
 * @default_class: class of a register not in @regs
 * @trap: pages the sparse mode traps, @nr_trap of them, sorted by offset;
 *	none: whole BARs
 * @nr_trap: count
 * @tolerate: VMIG_ID_* fields that may differ between source and target
 *	(for the default @ops->compat)
 * @doorbell: the DMA engine's register block, or NULL: trapped writes
 *	there go to @dma->doorbell (lm_dma.c), which holds transfers in the
 *	P2P states and feeds the mediated dirty log
 * @priv_size: bytes of private data per device (vmig_profile_priv())
 *
 * The ops half:
 * @ops: device ops, or NULL
 * @dma: DMA engine ops; needed with @doorbell
 */
struct vmig_profile {
	const char *name;
	u32 version;
	u32 min_version;
	const struct pci_device_id *ids;
	const struct vmig_reg_desc *regs;
	unsigned int nr_regs;
	u8 default_class;
	const struct vmig_trap_range *trap;
	unsigned int nr_trap;
	u32 tolerate;
	const struct vmig_doorbell *doorbell;
	size_t priv_size;
	const struct vmig_profile_dev_ops *ops;
	const struct vmig_profile_dma_ops *dma;
};

#define VMIG_PROFILE_NAME_MAX	32
/* The largest profile needs or facts record (dev_ops.needs, compat_needs) */
#define VMIG_NEEDS_MAX		512

extern const struct vmig_profile vmig_profile_generic;
extern const struct vmig_profile vmig_profile_edu;
extern const struct vmig_profile vmig_profile_nvme;
/* QEMU's NVMe controller (PF and SR-IOV VFs): profile nvme, main.c */
#define VMIG_NVME_VENDOR	0x1b36
#define VMIG_NVME_DEVICE	0x0010
/* the device edu serves; also in main.c's PCI table (modules.alias) */
#define VMIG_EDU_VENDOR		0x1234
#define VMIG_EDU_DEVICE		0x11e8

const struct vmig_profile *vmig_profile_for(struct pci_dev *pdev);
const struct vmig_profile *vmig_profile_find(const char *name);
bool vmig_profile_fits(const struct vmig_profile *p, struct pci_dev *pdev);
/* -EBUSY while open or logging, -ENOENT unknown, -EINVAL not for it. */
int vmig_set_profile(struct vmig_device *mdev, const char *name);
const char *vmig_profile_name(struct vmig_device *mdev);
/*
 * Bind @p to @mdev: allocate its private data (before the profile is
 * published) and free the old profile's; a no-op if @p is bound already.
 * Under dev_set->lock, mig.state_mutex and mig.dma.lock with the device
 * closed, or from probe (nothing else sees the device yet).
 */
int vmig_profile_bind(struct vmig_device *mdev, const struct vmig_profile *p);
void vmig_profile_unbind(struct vmig_device *mdev);
/* The bound profile's private data (NULL if its priv_size is 0). */
void *vmig_profile_priv(struct vmig_device *mdev);
/* The default compat op: identity check with @p->tolerate. */
int vmig_profile_compat_ids(const struct vmig_profile *p,
			    const struct vmig_identity *src,
			    const struct vmig_identity *dst,
			    struct vmig_replay_report *rep);
/* The profile's compat op, or the default. */
int vmig_profile_compat(const struct vmig_profile *p,
			const struct vmig_identity *src,
			const struct vmig_identity *dst,
			struct vmig_replay_report *rep);
/* Largest device state blob of @p (0: none). */
u32 vmig_profile_state_size(const struct vmig_profile *p);

/*
 * Ask the profile's early_ready op again (target side) into
 * vmig_device.early_load; under dev_set->lock, after what may change it.
 */
void vmig_profile_early_update(struct vmig_device *mdev);

/* May a stream carry device state blobs of version @v to profile @p? */
static inline bool vmig_profile_takes_version(const struct vmig_profile *p,
					      u32 v)
{
	return v == p->version ||
	       (p->min_version && v >= p->min_version && v < p->version);
}

/* Register slots of @p, arrays counted element by element. */
unsigned int vmig_profile_nr_slots(const struct vmig_profile *p);
/* Does @p see every DMA start the device is told of (its doorbell op)? */
static inline bool vmig_profile_feeds_dirty(const struct vmig_profile *p)
{
	return p->doorbell && p->dma && p->dma->doorbell;
}

/* Can @p quiesce the device's DMA (hold starts, wait for the one in flight)? */
static inline bool vmig_profile_has_dma(const struct vmig_profile *p)
{
	return p->doorbell && p->dma && p->dma->doorbell && p->ops &&
	       p->ops->quiesce;
}

const struct vmig_reg_desc *vmig_profile_reg(const struct vmig_profile *p,
					     u8 bar, u32 offset, u8 width);
u8 vmig_profile_class(const struct vmig_profile *p, u8 bar, u32 offset,
		      u8 width);
/* Does the sparse mode of @mdev trap [off, off + len) of @bar? */
bool vmig_profile_traps(struct vmig_device *mdev, u8 bar, u64 off, u64 len);
/*
 * Run @fn(@arg) in a kernel worker and wait for it (vfio_dma_rw needs it);
 * -EINTR if a fatal signal came before it started (then it never runs).
 */
int vmig_run_in_worker(int (*fn)(void *arg), void *arg);
/* debugfs TEST INTERFACE (vfio-mig/worker_delay_ms): delay each call */
extern unsigned int vmig_worker_delay_ms;

#endif /* _VFIO_MIG_PROFILE_H */
