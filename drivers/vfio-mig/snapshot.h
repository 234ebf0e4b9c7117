/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: snapshots of a device's register state (snapshot.c) and
 * their byte form.
 */
#ifndef _VFIO_MIG_SNAPSHOT_H
#define _VFIO_MIG_SNAPSHOT_H

#include <linux/pci.h>
#include <linux/types.h>

#include "profile.h"
#include "reglog.h"

struct vmig_device;

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

/*
 * A register and a value: register file entries (with @seq) and captured
 * reads.
 */
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
/*
 * Restore (__vmig_snapshot_replay()) of a state that a shadow served on
 * the source: a guest page the profile borrows in it (edu) was one the
 * source's VMM reserved, and may be borrowed again while the guest runs.
 */
#define VMIG_SNAP_RESERVED	0x4
/*
 * A shadow's hand-back in two steps (vmig_shadow_ops.devstate): STAGE
 * restores only the device state blob's slow part (edu: the buffer, the
 * DMA command's bits, the factorial), with the guest still served by the
 * shadow; STAGED restores the rest, that part being on the device already
 * (or never taken from it: a blob without it). Only a shadow with that
 * op asks for them, and only of the profile it serves, which knows them.
 */
#define VMIG_SNAP_STAGE		0x8
#define VMIG_SNAP_STAGED	0x10
/*
 * Save for a stream that carried this device's early state (a
 * PROFILE_EARLY record, VFIO_MIG_CTL_PREPARE): the profile may refer to
 * it instead of saving that part again, if it is still exact. Restore of
 * a stream whose PROFILE_EARLY records the profile loaded: only then may
 * a blob refer to early state (an earlier stream's, dropped before its
 * restore, does not count).
 */
#define VMIG_SNAP_EARLY		0x20

/* vmig_snapshot.flags */
#define VMIG_SNAPF_LOG_LOSSY		0x1	/* the tail is incomplete */
#define VMIG_SNAPF_REGFILE_INCOMPLETE	0x2	/* register file overflowed */
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
 * @cut_seq: the register file and tail hold every write with seq < @cut_seq
 * @log_overflows: ring overflows on the source when taken
 * @regfile: last value of each written register, by ascending seq
 * @nr_regfile: count
 * @reads: registers the profile captures by reading them
 * @nr_reads: count
 * @tail: compacted log tail [since_seq, cut_seq), by ascending seq
 * @nr_tail: count
 * @devstate: profile's device state blob (@devstate_len bytes)
 * @devstate_len: length
 * @devstate_version: the profile version a stream's @devstate was written
 *	at; 0: the profile's current one (a snapshot taken here)
 */
struct vmig_snapshot {
	struct vmig_identity id;
	char profile[VMIG_PROFILE_NAME_MAX];
	u32 flags;
	u64 since_seq;
	u64 cut_seq;
	u64 log_overflows;
	struct vmig_reg_value *regfile;
	u32 nr_regfile;
	struct vmig_reg_value *reads;
	u32 nr_reads;
	struct vmig_reglog_entry *tail;
	u32 nr_tail;
	u8 *devstate;
	u32 devstate_len;
	u32 devstate_version;
};

void vmig_identity_of(struct pci_dev *pdev, struct vmig_identity *id);
/* The device must be open (a VMM holds it); ERR_PTR on failure. */
struct vmig_snapshot *vmig_snapshot_take(struct vmig_device *mdev,
					 unsigned int flags);
/*
 * The same for a caller that keeps the device open itself (the migration
 * arcs, under the migration state mutex): no dev_set->lock. The log tail
 * starts at @since (clamped to the retained log).
 */
struct vmig_snapshot *__vmig_snapshot_take(struct vmig_device *mdev,
					   unsigned int flags, u64 since);
void vmig_snapshot_free(struct vmig_snapshot *snap);

/* The profile version @snap's blob was written at, for profile @p. */
static inline u32 vmig_snap_state_version(const struct vmig_snapshot *snap,
					  const struct vmig_profile *p)
{
	return snap->devstate_version ?: p->version;
}

/* A versioned TLV byte stream (Documentation/register-sync.rst). */
void *vmig_snapshot_serialise(const struct vmig_snapshot *snap, size_t *len);
/* Validates every length; ERR_PTR(-EINVAL) with a reason in @why. */
struct vmig_snapshot *vmig_snapshot_parse(const void *buf, size_t len,
					  const char **why);
/* Is (@bar, @off, @w) a register of the snapshot's source device? */
bool vmig_snap_reg_ok(const struct vmig_snapshot *s, u8 bar, u32 off, u8 w);
/* The value a snapshot captured by reading, or NULL. */
const struct vmig_reg_value *vmig_snap_read(const struct vmig_snapshot *s,
					    u8 bar, u32 offset, u8 width);
/* The register file's last write to a register, or NULL. */
const struct vmig_reg_value *vmig_snap_regfile(const struct vmig_snapshot *s,
					       u8 bar, u32 offset, u8 width);

#endif /* _VFIO_MIG_SNAPSHOT_H */
