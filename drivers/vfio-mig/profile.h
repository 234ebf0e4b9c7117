/* SPDX-License-Identifier: GPL-2.0 */
/* vfio-mig: device profiles (profile.c, profiles/). */
#ifndef _VFIO_MIG_PROFILE_H
#define _VFIO_MIG_PROFILE_H

#include <linux/types.h>

struct pci_dev;
struct pci_device_id;
struct vmig_device;
struct vmig_dma_range;
struct vmig_doorbell;
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
 *	(vfio_dma_rw works from it), device open, caller holds the device's
 *	mig.state_mutex (__vmig_snapshot_take(); dev_set->lock only from the
 *	debugfs interface, not from the migration arcs)
 * @restore: bring the target to the snapshot's state in the profile's own
 *	order; when NULL, the engine replays the register file and log tail in
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
			       const struct vmig_reglog_entry *e);
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

#endif /* _VFIO_MIG_PROFILE_H */
