/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: vfio-pci variant driver for devices without a vendor
 * migration driver. Internal definitions shared by the driver's files.
 */
#ifndef _VFIO_MIG_H
#define _VFIO_MIG_H

#include <linux/atomic.h>
#include <linux/hash.h>
#include <linux/jiffies.h>
#include <linux/log2.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/vfio_pci_core.h>
#include <linux/workqueue.h>

#include "ctl.h"
#include "dirty.h"
#include "lm.h"
/* after the above: on 6.12 it relies on them for cpu_relax() */
#include <linux/bit_spinlock.h>

struct vmig_device;
struct vmig_profile;
struct vmig_replay_report;
struct vmig_snapshot;

/* ---- trap modes (trap.c) ---- */

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

/* ---- write log and shadow register file (log.c, shadow.c) ---- */

/* bar value of a log entry that marks a device reset (width 0) */
#define VMIG_LOG_BAR_RESET	0xff

/**
 * struct vmig_log_entry - one trapped BAR write, as readers see it
 * @seq: sequence number, from 0 at probe, never reused
 * @ts_ns: when the write completed, ns since boot with jiffy resolution
 *	(the trap path records jiffies: the cheapest clock there is)
 * @offset: offset in the BAR
 * @bar: BAR index, or VMIG_LOG_BAR_RESET for a device reset marker
 * @width: access width in bytes (1, 2, 4, 8; 0 for a marker)
 * @value: value written (little-endian bytes of the access, zero-extended)
 */
struct vmig_log_entry {
	u64 seq;
	u64 ts_ns;
	u32 offset;
	u8 bar;
	u8 width;
	u64 value;
};

/* What the ring stores per write; the sequence number is implied. */
struct vmig_log_rec {
	u64 ts_jiffies;
	u64 value;
	u32 offset;
	u8 bar;
	u8 width;
	u16 pad;
};

/**
 * struct vmig_shadow_slot - last value written to one register
 * @seq: sequence number of that write
 * @value: the value
 * @offset: offset in the BAR
 * @bar: BAR index
 * @width: access width; registers are keyed by (bar, offset, width)
 * @used: the slot holds a register
 */
struct vmig_shadow_slot {
	u64 seq;
	u64 value;
	u32 offset;
	u8 bar;
	u8 width;
	u8 used;
	u8 pad;
};

/**
 * struct vmig_regstate - the write log ring and the shadow register file
 * @lock: bit VMIG_RS_LOCKED is a bit spinlock (vmig_rs_lock()) protecting
 *	every field below; a bit spinlock because its fast path is inline,
 *	unlike spin_lock(), and the trap path pays for every call. Taken
 *	(never from irq context) by the trap write path for one append and
 *	one shadow update, by readers for bounded copies, and to swap the
 *	arrays when open_device resizes them. Nothing inside allocates or
 *	sleeps.
 * @ring: log ring, @ring_size entries (a power of two); the entry of
 *	sequence number s lives at ring[s & (ring_size - 1)]
 * @ring_size: number of entries
 * @next_seq: sequence number of the next write
 * @base_seq: first sequence number since the log was last reset (open)
 * @overflows: entries overwritten before being superseded by a reset
 * @slots: shadow hash table, @nr_slots entries (a power of two), linear
 *	probing keyed by (bar, offset, width)
 * @nr_slots: number of slots
 * @shadow_used: slots in use
 * @shadow_overflows: writes the shadow table had no room for
 * @trapped_writes: BAR writes recorded since probe
 */
struct vmig_regstate {
	unsigned long lock;
	struct vmig_log_rec *ring;
	u32 ring_size;
	u64 next_seq;
	u64 base_seq;
	u64 overflows;
	struct vmig_shadow_slot *slots;
	u32 nr_slots;
	u32 shadow_used;
	u64 shadow_overflows;
	u64 trapped_writes;
};

#define VMIG_RS_LOCKED		0
#define vmig_rs_lock(rs)	bit_spin_lock(VMIG_RS_LOCKED, &(rs)->lock)
/* Only the holder writes the word: the release need not be atomic. */
#define vmig_rs_unlock(rs)	__bit_spin_unlock(VMIG_RS_LOCKED, &(rs)->lock)

int vmig_regstate_init(struct vmig_regstate *rs);
void vmig_regstate_destroy(struct vmig_regstate *rs);
/* open_device: apply changed size parameters, start a fresh log. */
void vmig_regstate_open(struct vmig_regstate *rs);
/* The device was reset: the shadow is cleared and a marker logged. */
void vmig_record_reset(struct vmig_regstate *rs);
/* Sizes of one log ring entry and one shadow slot, for reports. */
#define VMIG_LOG_BYTES_PER_ENTRY	sizeof(struct vmig_log_rec)

/* under rs->lock */
u64 __vmig_log_oldest(const struct vmig_regstate *rs);
void __vmig_shadow_clear(struct vmig_regstate *rs);
#define VMIG_SHADOW_PROBE	32

static inline u32 vmig_shadow_hash(u8 bar, u32 offset, u8 width,
				   u32 nr_slots)
{
	u64 key = (u64)bar << 40 | (u64)width << 32 | offset;

	return hash_64(key, ilog2(nr_slots));
}

/*
 * The trap path's two steps, inline because under TCG every call and
 * return costs a translation-block lookup. Both under rs->lock.
 */
static inline void __vmig_shadow_update(struct vmig_regstate *rs, u64 seq,
					u8 bar, u32 offset, u8 width,
					u64 value)
{
	u32 mask = rs->nr_slots - 1;
	u32 i = vmig_shadow_hash(bar, offset, width, rs->nr_slots);
	unsigned int probe;

	for (probe = 0; probe < VMIG_SHADOW_PROBE; probe++, i = (i + 1) & mask) {
		struct vmig_shadow_slot *s = &rs->slots[i];

		if (!s->used) {
			s->used = 1;
			s->offset = offset;
			s->bar = bar;
			s->width = width;
			rs->shadow_used++;
		} else if (s->offset != offset || s->bar != bar ||
			   s->width != width) {
			continue;
		}
		s->seq = seq;
		s->value = value;
		return;
	}
	rs->shadow_overflows++;
}

static inline void __vmig_log_append(struct vmig_regstate *rs, u8 bar,
				     u32 offset, u8 width, u64 value)
{
	u64 seq = rs->next_seq++;
	struct vmig_log_rec *r = &rs->ring[seq & (rs->ring_size - 1)];

	if (seq - rs->base_seq >= rs->ring_size)
		rs->overflows++;
	r->ts_jiffies = get_jiffies_64();
	r->value = value;
	r->offset = offset;
	r->bar = bar;
	r->width = width;
	r->pad = 0;
}

/*
 * Record one completed write of @width bytes (1, 2, 4 or 8). Entries are
 * stamped with jiffies: a clock read per write costs more than the rest of
 * the recording (ktime_get_ns() reads the HPET where the TSC is unstable).
 * Returns true for the write that first overflowed the log since it was
 * reset, so that the caller can raise the log-overflow event.
 */
static inline bool vmig_record_write(struct vmig_regstate *rs, u8 bar,
				     u32 offset, u8 width, u64 value)
{
	bool clean;

	vmig_rs_lock(rs);
	clean = !rs->overflows;
	__vmig_shadow_update(rs, rs->next_seq, bar, offset, width, value);
	__vmig_log_append(rs, bar, offset, width, value);
	rs->trapped_writes++;
	clean &= !!rs->overflows;
	vmig_rs_unlock(rs);
	return clean;
}

const struct vmig_shadow_slot *
vmig_shadow_lookup(const struct vmig_shadow_slot *slots, u32 nr_slots,
		   u8 bar, u32 offset, u8 width);

/* Allocation bounds of the two parameters (entries / slots). */
#define VMIG_LOG_MIN		64
#define VMIG_LOG_MAX		65536
#define VMIG_SHADOW_MIN		16
#define VMIG_SHADOW_MAX		16384
extern unsigned int vmig_log_entries;
extern unsigned int vmig_shadow_slots;
/* Shadow table size the next open uses (a power of two). */
u32 vmig_shadow_size(void);

/**
 * struct vmig_counters - what netlink reports about a device
 * @trapped_reads: BAR reads through the trapped path since probe (counted
 *	when asked, failed ones included)
 * @trapped_writes: BAR writes recorded since probe
 * @log_entries: entries retained in the ring now
 * @log_overflows: entries lost to ring overflow since the log was reset
 * @log_next_seq: sequence number the next write gets
 * @shadow_entries: registers in the shadow file
 * @shadow_overflows: writes the shadow file had no room for
 * @log_lossy: the log lost entries since it was reset (open)
 */
struct vmig_counters {
	u64 trapped_reads;
	u64 trapped_writes;
	u64 log_entries;
	u64 log_overflows;
	u64 log_next_seq;
	u64 shadow_entries;
	u64 shadow_overflows;
	bool log_lossy;
};

void vmig_get_counters(struct vmig_device *mdev, struct vmig_counters *c);
/*
 * Copy up to @max entries with seq >= @since_seq (from the oldest retained
 * one if @since_seq is older: out[0].seq > since_seq reveals the gap).
 * Returns the count; *@next_seq is the seq to ask for next time.
 */
int vmig_log_read(struct vmig_device *mdev, u64 since_seq,
		  struct vmig_log_entry *out, unsigned int max, u64 *next_seq);

/* ---- in-kernel BAR access (trap.c) ---- */

/*
 * Access a memory BAR from the kernel (profiles, snapshot, replay), under
 * the core's memory_lock and only while memory decoding is enabled.
 * Sleeping context; the device must be open.
 */
int vmig_bar_read(struct vmig_device *mdev, u8 bar, u32 off, u8 width,
		  u64 *val);
int vmig_bar_write(struct vmig_device *mdev, u8 bar, u32 off, u8 width,
		   u64 val);
void vmig_bars_map(struct vmig_device *mdev);
void vmig_bars_unmap(struct vmig_device *mdev);
/*
 * A decode window for the driver's own accesses to a device whose VMM left
 * decoding off (trap.c); open and close around them, nothing held.
 */
u16 vmig_decode_open(struct vmig_device *mdev);
void vmig_decode_close(struct vmig_device *mdev, u16 opened);
/* The range vfio-pci itself refuses to pass through (the MSI-X table). */

/* ---- device profiles (profile.c, profiles/) ---- */

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
 * struct vmig_reg_desc - one register a profile knows
 * @name: for reports
 * @offset: offset in @bar
 * @bar: BAR index
 * @width: access width used to capture it
 * @class: enum vmig_reg_class
 * @flags: VMIG_REGF_*
 * @order: replay phase; lower first, then log order
 */
struct vmig_reg_desc {
	const char *name;
	u32 offset;
	u8 bar;
	u8 width;
	u8 class;
	u8 flags;
	u8 order;
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

/* Context of a profile's save or restore callback. */
struct vmig_profile_ctx {
	struct vmig_device *mdev;
	struct vmig_snapshot *snap;		/* save: being filled */
	const struct vmig_snapshot *src;	/* restore: being applied */
	struct vmig_replay_report *report;	/* restore */
	unsigned int flags;			/* VMIG_SNAP_* */
	u64 scratch;	/* guest IOVA the profile may borrow, 0: none */
};

/**
 * struct vmig_profile - what vfio-mig knows about one kind of device
 * @name: short name ("edu"), at most VMIG_PROFILE_NAME_MAX - 1 chars
 * @version: profile (and device state blob) version
 * @ids: devices the profile is for; NULL: any device (generic)
 * @regs: registers the profile knows, @nr_regs of them
 * @nr_regs: count
 * @default_class: class of a register not in @regs
 * @trap: pages the sparse mode traps, @nr_trap of them, sorted by offset;
 *	none: whole BARs
 * @nr_trap: count
 * @tolerate: VMIG_ID_* fields that may differ between source and target
 * @save: capture device state that registers do not reach into the
 *	snapshot (a device state blob, extra reads); runs in a worker
 *	(vfio_dma_rw works from it), device open, caller holds dev_set->lock
 * @restore: bring the target to the snapshot's state in the profile's own
 *	order; when NULL, the engine replays the shadow file and log tail in
 *	(@order, seq) order. Same context as @save.
 * @replay_trigger: may a logged write to a TRIGGER register be replayed?
 *	NULL: never.
 * @doorbell: the DMA engine's registers, or NULL: writes there go through
 *	vmig_doorbell_write() (lm_dma.c), which holds transfers in the P2P
 *	states and feeds the mediated dirty log
 * @dma_decode: the device is told to start a transfer with command @cmd:
 *	does it write guest memory, and which range? (fills @r). Reads the
 *	device's address registers; sleeping context, device open.
 * @dma_wait: wait up to @ms for the transfer in flight to end (0: idle)
 * @devstate_size: size of the device state blob @save produces
 * @scratch_limit: highest guest IOVA the device reaches by DMA, for the
 *	page @save and @restore may borrow; 0: they borrow none
 * @shadow_ops: for the shadow adapter issue: its behaviour for this
 *	device; NULL until that issue defines it.
 */
struct vmig_profile {
	const char *name;
	u32 version;
	const struct pci_device_id *ids;
	const struct vmig_reg_desc *regs;
	unsigned int nr_regs;
	u8 default_class;
	const struct vmig_trap_range *trap;
	unsigned int nr_trap;
	u32 tolerate;
	int (*save)(struct vmig_profile_ctx *ctx);
	int (*restore)(struct vmig_profile_ctx *ctx);
	bool (*replay_trigger)(struct vmig_device *mdev,
			       const struct vmig_log_entry *e);
	const struct vmig_doorbell *doorbell;
	bool (*dma_decode)(struct vmig_device *mdev, u32 cmd,
			   struct vmig_dma_range *r);
	int (*dma_wait)(struct vmig_device *mdev, unsigned int ms);
	u32 devstate_size;
	u64 scratch_limit;
	const void *shadow_ops;
};

#define VMIG_PROFILE_NAME_MAX	32

extern const struct vmig_profile vmig_profile_generic;
extern const struct vmig_profile vmig_profile_edu;
/* the device edu serves; also in main.c's PCI table (modules.alias) */
#define VMIG_EDU_VENDOR		0x1234
#define VMIG_EDU_DEVICE		0x11e8

const struct vmig_profile *vmig_profile_for(struct pci_dev *pdev);
const struct vmig_profile *vmig_profile_find(const char *name);
bool vmig_profile_fits(const struct vmig_profile *p, struct pci_dev *pdev);
/* -EBUSY while open or logging, -ENOENT unknown, -EINVAL not for it. */
int vmig_set_profile(struct vmig_device *mdev, const char *name);
const char *vmig_profile_name(struct vmig_device *mdev);
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

/* ---- snapshots and replay (snapshot.c, replay.c) ---- */

/**
 * struct vmig_identity - what must match between source and target
 * @vendor: PCI vendor id
 * @device: PCI device id
 * @subvendor: subsystem vendor id
 * @subdevice: subsystem device id
 * @revision: revision id
 * @class: class code (24 bits)
 * @bar_len: length of each standard BAR (0: absent)
 */
struct vmig_identity {
	u16 vendor;
	u16 device;
	u16 subvendor;
	u16 subdevice;
	u8 revision;
	u32 class;
	u64 bar_len[PCI_STD_NUM_BARS];
};

/* A register and a value: shadow entries (with @seq) and captured reads. */
struct vmig_reg_value {
	u64 seq;
	u64 value;
	u32 offset;
	u8 bar;
	u8 width;
};

/*
 * vmig_snapshot_take() flags. VMIG_SNAP_DEVSTATE: also the profile's
 * device state; the device must be quiescent (stopped). VMIG_SNAP_COMPLETE:
 * fail rather than leave out device state the profile cannot reach (a
 * migration; the debugfs test interface takes what it can).
 */
#define VMIG_SNAP_DEVSTATE	0x1
#define VMIG_SNAP_COMPLETE	0x2

/* vmig_snapshot.flags */
#define VMIG_SNAPF_LOG_LOSSY		0x1	/* the tail is incomplete */
#define VMIG_SNAPF_SHADOW_INCOMPLETE	0x2	/* shadow table overflowed */
#define VMIG_SNAPF_DEVSTATE		0x4	/* @devstate is present */
#define VMIG_SNAPF_ALL			0x7

/* Bounds of a snapshot, checked when building and when parsing one. */
#define VMIG_SNAP_MAX_READS	256
#define VMIG_SNAP_MAX_DEVSTATE	(64 * 1024)
#define VMIG_SNAP_MAX_BYTES	(4 * 1024 * 1024)

/**
 * struct vmig_snapshot - register state of a device at one point
 * @id: identity of the source device
 * @profile: profile name on the source
 * @flags: VMIG_SNAPF_*
 * @since_seq: first sequence number of @tail's window
 * @cut_seq: the shadow and tail hold every write with seq < @cut_seq
 * @log_overflows: ring overflows on the source when taken
 * @shadow: last value of each written register, by ascending seq
 * @nr_shadow: count
 * @reads: registers the profile captures by reading them
 * @nr_reads: count
 * @tail: compacted log tail [since_seq, cut_seq), by ascending seq
 * @nr_tail: count
 * @devstate: profile's device state blob (@devstate_len bytes)
 * @devstate_len: length
 */
struct vmig_snapshot {
	struct vmig_identity id;
	char profile[VMIG_PROFILE_NAME_MAX];
	u32 flags;
	u64 since_seq;
	u64 cut_seq;
	u64 log_overflows;
	struct vmig_reg_value *shadow;
	u32 nr_shadow;
	struct vmig_reg_value *reads;
	u32 nr_reads;
	struct vmig_log_entry *tail;
	u32 nr_tail;
	u8 *devstate;
	u32 devstate_len;
};

#define VMIG_REPLAY_MAX_ERRORS	16
#define VMIG_REPLAY_MSG_LEN	160

/* An error on one register; bar VMIG_BAR_DEVSTATE: a profile state item. */
#define VMIG_BAR_DEVSTATE	0xfe
struct vmig_replay_error {
	u32 offset;
	u8 bar;
	u8 width;
	int err;
};

/**
 * struct vmig_replay_report - outcome of a replay
 * @applied: register writes issued
 * @skipped: entries not replayed (trigger, read-only, volatile, excluded)
 * @nr_errors: registers that failed (only the first
 *	VMIG_REPLAY_MAX_ERRORS are in @errors)
 * @errors: per-register errors
 * @shadow_only: the log tail was incomplete (lossy log): only the shadow
 *	file was replayed
 * @shadow_incomplete: the source's shadow file had overflowed
 * @id_tolerated: the identities differed in fields the profile tolerates
 * @msg: why the replay was refused, or notes ("" when none)
 */
struct vmig_replay_report {
	u32 applied;
	u32 skipped;
	u32 nr_errors;
	struct vmig_replay_error errors[VMIG_REPLAY_MAX_ERRORS];
	bool shadow_only;
	bool shadow_incomplete;
	bool id_tolerated;
	char msg[VMIG_REPLAY_MSG_LEN];
};

void vmig_identity_of(struct pci_dev *pdev, struct vmig_identity *id);
/* The device must be open (a VMM holds it); ERR_PTR on failure. */
struct vmig_snapshot *vmig_snapshot_take(struct vmig_device *mdev,
					 unsigned int flags);
/*
 * The same for a caller that keeps the device open itself (the migration
 * arcs, under the migration state mutex): no dev_set->lock. The log tail
 * starts at @since (clamped to the retained log); the profile may borrow
 * guest page @scratch (0: none).
 */
struct vmig_snapshot *__vmig_snapshot_take(struct vmig_device *mdev,
					   unsigned int flags, u64 since,
					   u64 scratch);
void vmig_snapshot_free(struct vmig_snapshot *snap);
/* A versioned TLV byte stream (Documentation/register-sync.rst). */
void *vmig_snapshot_serialise(const struct vmig_snapshot *snap, size_t *len);
/* Validates every length; ERR_PTR(-EINVAL) with a reason in @why. */
struct vmig_snapshot *vmig_snapshot_parse(const void *buf, size_t len,
					  const char **why);
/*
 * Apply @snap to @dst (open, bound to vfio_mig). Refuses (-EINVAL, reason
 * in report->msg) a target whose identity or profile differs beyond the
 * profile's allow-list. Never touches the source device.
 */
int vmig_snapshot_replay(struct vmig_device *dst,
			 const struct vmig_snapshot *snap,
			 struct vmig_replay_report *report);
/* The same without dev_set->lock (see __vmig_snapshot_take()). */
int __vmig_snapshot_replay(struct vmig_device *dst,
			   const struct vmig_snapshot *snap,
			   struct vmig_replay_report *report, u64 scratch);
/* Profile and identity check alone; the reason goes to report->msg. */
int vmig_check_compat(struct vmig_device *dst,
		      const struct vmig_identity *src_id,
		      const char *src_profile,
		      struct vmig_replay_report *report);
void vmig_report_error(struct vmig_replay_report *r, u8 bar, u32 offset,
		       u8 width, int err);
/* Is (@bar, @off, @w) a register of the snapshot's source device? */
bool vmig_snap_reg_ok(const struct vmig_snapshot *s, u8 bar, u32 off, u8 w);
/* The value a snapshot captured by reading, or NULL. */
const struct vmig_reg_value *vmig_snap_read(const struct vmig_snapshot *s,
					    u8 bar, u32 offset, u8 width);
/* The shadow file's last write to a register, or NULL. */
const struct vmig_reg_value *vmig_snap_shadow(const struct vmig_snapshot *s,
					      u8 bar, u32 offset, u8 width);
/* IOVA of one guest page the profile may borrow while the device is
 * stopped (saved and restored around its own DMA); 0: none.
 */
int vmig_set_dma_scratch(struct vmig_device *mdev, u64 iova);

/* ---- debugfs test interface (debugfs.c) ---- */

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
 * @dma_scratch: guest IOVA a profile may borrow (see
 *	vmig_set_dma_scratch()); under dev_set->lock.
 * @bar_va: in-kernel mappings of the memory BARs, made at open and
 *	dropped at close, both under dev_set->lock; used with it held.
 * @trapped_reads: BAR reads through the trapped path, per CPU (an atomic
 *	would cost the read path more than the rest of its bookkeeping).
 * @rs: write log and shadow register file, under @rs.lock.
 * @dbg: debugfs test interface, under @dbg.lock.
 * @dirty: the DMA dirty log (dirty.h has its locking rules).
 * @overflow_work: sends the log-overflow event from process context.
 * @mig: VFIO migration state (lm.h has its locking rules).
 * @ctl: the attached /dev/vfio-mig fd and the pending migration phase
 *	(ctl.h has their locking rules).
 */
struct vmig_device {
	struct vfio_pci_core_device core;
	struct list_head node;
	bool open;
	enum vmig_trap_mode trap_mode;
	const struct vmig_profile *profile;
	u64 dma_scratch;
	void __iomem *bar_va[PCI_STD_NUM_BARS];
	u64 __percpu *trapped_reads;
	struct vmig_regstate rs;
	struct vmig_dbg dbg;
	struct vmig_dirty dirty;
	struct work_struct overflow_work;
	struct vmig_mig mig;
	struct vmig_ctl_dev ctl;
};

/*
 * Every bound device is on vmig_devices from the end of probe to the start
 * of remove. Holding vmig_devices_lock keeps each listed device bound (remove
 * unlinks under it first), so code that finds a device by address, or walks
 * the list (netlink dumps, replay onto a second device), does so under the
 * lock. Lock order: vmig_devices_lock, then a device's dev_set->lock.
 */
extern struct list_head vmig_devices;
extern struct mutex vmig_devices_lock;

/* The bound device at PCI address @name ("0000:00:03.0"), under the lock. */
struct vmig_device *vmig_find_locked(const char *name);

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
