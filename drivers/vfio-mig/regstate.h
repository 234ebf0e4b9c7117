/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: what the trap write path records, the write log ring
 * (reglog.h) and the register file (regfile.h), under one bit spinlock.
 */
#ifndef _VFIO_MIG_REGSTATE_H
#define _VFIO_MIG_REGSTATE_H

#include <linux/bitops.h>
#include <linux/preempt.h>
#include <linux/processor.h>
#include <linux/types.h>
/* after the above: on 6.12 it relies on them (cpu_relax()) */
#include <linux/bit_spinlock.h>

struct vmig_device;
struct vmig_reglog_rec;
struct vmig_regfile_slot;

/**
 * struct vmig_regstate - the write log ring and the register file
 * @lock: bit VMIG_RS_LOCKED is a bit spinlock (vmig_rs_lock()) protecting
 *	every field below; a bit spinlock because its fast path is inline,
 *	unlike spin_lock(), and the trap path pays for every call. Taken
 *	(never from irq context) by the trap write path for one append and
 *	one register file update, by readers for bounded copies, and to swap
 *	the arrays when open_device resizes them. Nothing inside allocates or
 *	sleeps.
 * @ring: log ring, @ring_size entries (a power of two); the entry of
 *	sequence number s lives at ring[s & (ring_size - 1)]
 * @ring_size: number of entries
 * @next_seq: sequence number of the next write
 * @base_seq: first sequence number since the log was last reset (open)
 * @overflows: entries overwritten before being superseded by a reset
 * @slots: register file hash table, @nr_slots entries (a power of two),
 *	linear probing keyed by (bar, offset, width)
 * @nr_slots: number of slots
 * @regfile_used: slots in use
 * @regfile_overflows: writes the register file had no room for
 * @trapped_writes: BAR writes recorded since probe
 */
struct vmig_regstate {
	unsigned long lock;
	struct vmig_reglog_rec *ring;
	u32 ring_size;
	u64 next_seq;
	u64 base_seq;
	u64 overflows;
	struct vmig_regfile_slot *slots;
	u32 nr_slots;
	u32 regfile_used;
	u64 regfile_overflows;
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
/* The device was reset: the register file is cleared and a marker logged. */
void vmig_record_reset(struct vmig_regstate *rs);

/**
 * struct vmig_counters - what netlink reports about a device
 * @trapped_reads: BAR reads through the trapped path since probe (counted
 *	when asked, failed ones included)
 * @trapped_writes: BAR writes recorded since probe
 * @log_entries: entries retained in the ring now
 * @log_overflows: entries lost to ring overflow since the log was reset
 * @log_next_seq: sequence number the next write gets
 * @regfile_entries: registers in the register file
 * @regfile_overflows: writes the register file had no room for
 * @log_lossy: the log lost entries since it was reset (open)
 */
struct vmig_counters {
	u64 trapped_reads;
	u64 trapped_writes;
	u64 log_entries;
	u64 log_overflows;
	u64 log_next_seq;
	u64 regfile_entries;
	u64 regfile_overflows;
	bool log_lossy;
};

void vmig_get_counters(struct vmig_device *mdev, struct vmig_counters *c);

#endif /* _VFIO_MIG_REGSTATE_H */
