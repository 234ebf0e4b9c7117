/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: the register write log (reglog.c), a bounded ring of the
 * trapped BAR writes of a device.
 */
#ifndef _VFIO_MIG_REGLOG_H
#define _VFIO_MIG_REGLOG_H

#include <linux/jiffies.h>
#include <linux/types.h>

#include "regfile.h"
#include "regstate.h"

/* bar value of a log entry that marks a device reset (width 0) */
#define VMIG_REGLOG_BAR_RESET	0xff

/**
 * struct vmig_reglog_entry - one trapped BAR write, as readers see it
 * @seq: sequence number, from 0 at probe, never reused
 * @ts_ns: when the write completed, ns since boot with jiffy resolution
 *	(the trap path records jiffies: the cheapest clock there is)
 * @offset: offset in the BAR
 * @bar: BAR index, or VMIG_REGLOG_BAR_RESET for a device reset marker
 * @width: access width in bytes (1, 2, 4, 8; 0 for a marker)
 * @value: value written (little-endian bytes of the access, zero-extended)
 */
struct vmig_reglog_entry {
	u64 seq;
	u64 ts_ns;
	u32 offset;
	u8 bar;
	u8 width;
	u64 value;
};

/* What the ring stores per write; the sequence number is implied. */
struct vmig_reglog_rec {
	u64 ts_jiffies;
	u64 value;
	u32 offset;
	u8 bar;
	u8 width;
	u16 pad;
};

/* Size of one log ring entry, for reports. */
#define VMIG_REGLOG_BYTES_PER_ENTRY	sizeof(struct vmig_reglog_rec)

/* Under rs->lock: the oldest sequence number the ring retains. */
u64 __vmig_reglog_oldest(const struct vmig_regstate *rs);

static inline void __vmig_reglog_append(struct vmig_regstate *rs, u8 bar,
					u32 offset, u8 width, u64 value)
{
	u64 seq = rs->next_seq++;
	struct vmig_reglog_rec *r = &rs->ring[seq & (rs->ring_size - 1)];

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
	__vmig_regfile_update(rs, rs->next_seq, bar, offset, width, value);
	__vmig_reglog_append(rs, bar, offset, width, value);
	rs->trapped_writes++;
	clean &= !!rs->overflows;
	vmig_rs_unlock(rs);
	return clean;
}

/* Allocation bounds of the log_entries parameter. */
#define VMIG_REGLOG_MIN		64
#define VMIG_REGLOG_MAX		65536
extern unsigned int vmig_reglog_entries;

/*
 * Copy up to @max entries with seq >= @since_seq (from the oldest retained
 * one if @since_seq is older: out[0].seq > since_seq reveals the gap).
 * Returns the count; *@next_seq is the seq to ask for next time.
 */
int vmig_reglog_read(struct vmig_device *mdev, u64 since_seq,
		     struct vmig_reglog_entry *out, unsigned int max,
		     u64 *next_seq);

#endif /* _VFIO_MIG_REGLOG_H */
