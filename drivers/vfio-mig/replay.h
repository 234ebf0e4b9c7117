/* SPDX-License-Identifier: GPL-2.0 */
/* vfio-mig: replay of a snapshot onto a target device (replay.c). */
#ifndef _VFIO_MIG_REPLAY_H
#define _VFIO_MIG_REPLAY_H

#include <linux/types.h>

struct vmig_device;
struct vmig_identity;
struct vmig_snapshot;

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
 * @regfile_only: the log tail was incomplete (lossy log): only the register
 *	file was replayed
 * @regfile_incomplete: the source's register file had overflowed
 * @id_tolerated: the identities differed in fields the profile tolerates
 * @msg: why the replay was refused, or notes ("" when none)
 */
struct vmig_replay_report {
	u32 applied;
	u32 skipped;
	u32 nr_errors;
	struct vmig_replay_error errors[VMIG_REPLAY_MAX_ERRORS];
	bool regfile_only;
	bool regfile_incomplete;
	bool id_tolerated;
	char msg[VMIG_REPLAY_MSG_LEN];
};

/*
 * Apply @snap to @dst (open, bound to vfio_mig). Refuses (-EINVAL, reason
 * in report->msg) a target whose identity or profile differs beyond the
 * profile's allow-list. Never touches the source device.
 */
int vmig_snapshot_replay(struct vmig_device *dst,
			 const struct vmig_snapshot *snap,
			 struct vmig_replay_report *report);
/*
 * The same without dev_set->lock (see __vmig_snapshot_take()).
 * @flags: what the profile's restore op sees in its context:
 * VMIG_SNAP_COMPLETE (@snap came from a migration stream),
 * VMIG_SNAP_RESERVED.
 */
int __vmig_snapshot_replay(struct vmig_device *dst,
			   const struct vmig_snapshot *snap,
			   struct vmig_replay_report *report, unsigned int flags);
/* Profile and identity check alone; the reason goes to report->msg. */
int vmig_check_compat(struct vmig_device *dst,
		      const struct vmig_identity *src_id,
		      const char *src_profile,
		      struct vmig_replay_report *report);
void vmig_report_error(struct vmig_replay_report *r, u8 bar, u32 offset,
		       u8 width, int err);

#endif /* _VFIO_MIG_REPLAY_H */
