// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the register file, the last value written to each
 * register, keyed by (BAR, offset, width).
 *
 * A fixed open-addressing hash table sized at open (parameter
 * shadow_slots, its historical name), updated under rs->lock by the trap
 * write path (inline, in regfile.h): no allocation, a bounded probe. When
 * a write finds no free slot within the probe limit it is counted in
 * regfile_overflows and the snapshot says the register file is
 * incomplete; the log still has the write.
 */
#include <linux/minmax.h>
#include <linux/moduleparam.h>
#include <linux/string.h>

#include "regfile.h"
#include "regstate.h"

unsigned int vmig_regfile_slots = 1024;

static int regfile_slots_set(const char *val, const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, VMIG_REGFILE_MIN, VMIG_REGFILE_MAX);
}

static const struct kernel_param_ops regfile_slots_ops = {
	.set = regfile_slots_set,
	.get = param_get_uint,
};

module_param_cb(shadow_slots, &regfile_slots_ops, &vmig_regfile_slots, 0644);
MODULE_PARM_DESC(shadow_slots,
		 "Register file slots per device, 16..16384, rounded up to a power of two; applies at the next open (default: 1024)");

u32 vmig_regfile_size(void)
{
	return roundup_pow_of_two(clamp_t(unsigned int,
					  READ_ONCE(vmig_regfile_slots),
					  VMIG_REGFILE_MIN, VMIG_REGFILE_MAX));
}

void __vmig_regfile_clear(struct vmig_regstate *rs)
{
	memset(rs->slots, 0, rs->nr_slots * sizeof(*rs->slots));
	rs->regfile_used = 0;
	rs->regfile_overflows = 0;
}

/* Look a register up in a table (or a copy of one, same layout). */
const struct vmig_regfile_slot *
vmig_regfile_lookup(const struct vmig_regfile_slot *slots, u32 nr_slots,
		    u8 bar, u32 offset, u8 width)
{
	u32 mask = nr_slots - 1;
	u32 i = vmig_regfile_hash(bar, offset, width, nr_slots);
	unsigned int probe;

	for (probe = 0; probe < VMIG_REGFILE_PROBE; probe++, i = (i + 1) & mask) {
		const struct vmig_regfile_slot *s = &slots[i];

		if (!s->used)
			return NULL;
		if (s->offset == offset && s->bar == bar && s->width == width)
			return s;
	}
	return NULL;
}
