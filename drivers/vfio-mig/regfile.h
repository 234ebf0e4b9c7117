/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig: the register file (regfile.c), the last value
 * written to each register of a device.
 */
#ifndef _VFIO_MIG_REGFILE_H
#define _VFIO_MIG_REGFILE_H

#include <linux/hash.h>
#include <linux/log2.h>
#include <linux/types.h>

#include "regstate.h"

/**
 * struct vmig_regfile_slot - last value written to one register
 * @seq: sequence number of that write
 * @value: the value
 * @offset: offset in the BAR
 * @bar: BAR index
 * @width: access width; registers are keyed by (bar, offset, width)
 * @used: the slot holds a register
 */
struct vmig_regfile_slot {
	u64 seq;
	u64 value;
	u32 offset;
	u8 bar;
	u8 width;
	u8 used;
	u8 pad;
};

/* Under rs->lock: empty the table. */
void __vmig_regfile_clear(struct vmig_regstate *rs);
#define VMIG_REGFILE_PROBE	32

static inline u32 vmig_regfile_hash(u8 bar, u32 offset, u8 width,
				    u32 nr_slots)
{
	u64 key = (u64)bar << 40 | (u64)width << 32 | offset;

	return hash_64(key, ilog2(nr_slots));
}

/*
 * The trap path's register file step (the log's is __vmig_reglog_append()),
 * inline because under TCG every call and return costs a translation-block
 * lookup. Under rs->lock.
 */
static inline void __vmig_regfile_update(struct vmig_regstate *rs, u64 seq,
					 u8 bar, u32 offset, u8 width,
					 u64 value)
{
	u32 mask = rs->nr_slots - 1;
	u32 i = vmig_regfile_hash(bar, offset, width, rs->nr_slots);
	unsigned int probe;

	for (probe = 0; probe < VMIG_REGFILE_PROBE; probe++, i = (i + 1) & mask) {
		struct vmig_regfile_slot *s = &rs->slots[i];

		if (!s->used) {
			s->used = 1;
			s->offset = offset;
			s->bar = bar;
			s->width = width;
			rs->regfile_used++;
		} else if (s->offset != offset || s->bar != bar ||
			   s->width != width) {
			continue;
		}
		s->seq = seq;
		s->value = value;
		return;
	}
	rs->regfile_overflows++;
}

/* Look a register up in a table (or a copy of one, same layout). */
const struct vmig_regfile_slot *
vmig_regfile_lookup(const struct vmig_regfile_slot *slots, u32 nr_slots,
		    u8 bar, u32 offset, u8 width);

/* Allocation bounds of the shadow_slots parameter (a historical name). */
#define VMIG_REGFILE_MIN		16
#define VMIG_REGFILE_MAX		16384
extern unsigned int vmig_regfile_slots;
/* Register file size the next open uses (a power of two). */
u32 vmig_regfile_size(void);

#endif /* _VFIO_MIG_REGFILE_H */
