// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the register write log, a bounded per-device ring of trapped BAR
 * writes.
 *
 * The ring never blocks a writer: when it is full the oldest entry is
 * overwritten, counted in rs->overflows, and the log is lossy until it is
 * reset (at the next open). A reader asking for entries that are gone gets
 * the oldest retained ones and sees the gap in their sequence numbers;
 * replay then falls back to the register file (regfile.c).
 */
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/slab.h>

#include "regfile.h"
#include "reglog.h"
#include "regstate.h"
#include "vfio_mig.h"

unsigned int vmig_reglog_entries = 4096;

static int log_entries_set(const char *val, const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, VMIG_REGLOG_MIN, VMIG_REGLOG_MAX);
}

static const struct kernel_param_ops log_entries_ops = {
	.set = log_entries_set,
	.get = param_get_uint,
};

module_param_cb(log_entries, &log_entries_ops, &vmig_reglog_entries, 0644);
MODULE_PARM_DESC(log_entries,
		 "Write log ring entries per device, 64..65536, rounded up to a power of two; applies at the next open (default: 4096)");

static u32 vmig_ring_size(void)
{
	return roundup_pow_of_two(clamp_t(unsigned int,
					  READ_ONCE(vmig_reglog_entries),
					  VMIG_REGLOG_MIN, VMIG_REGLOG_MAX));
}

int vmig_regstate_init(struct vmig_regstate *rs)
{
	rs->lock = 0;
	rs->ring_size = vmig_ring_size();
	rs->ring = kvcalloc(rs->ring_size, sizeof(*rs->ring), GFP_KERNEL);
	rs->nr_slots = vmig_regfile_size();
	rs->slots = kvcalloc(rs->nr_slots, sizeof(*rs->slots), GFP_KERNEL);
	if (!rs->ring || !rs->slots) {
		vmig_regstate_destroy(rs);
		return -ENOMEM;
	}
	return 0;
}

void vmig_regstate_destroy(struct vmig_regstate *rs)
{
	kvfree(rs->ring);
	kvfree(rs->slots);
	rs->ring = NULL;
	rs->slots = NULL;
}

void vmig_regstate_open(struct vmig_regstate *rs)
{
	u32 ring_size = vmig_ring_size(), nr_slots = vmig_regfile_size();
	struct vmig_regfile_slot *slots = NULL;
	struct vmig_reglog_rec *ring = NULL;

	/* open_device is serialised: nobody else changes the sizes. */
	if (ring_size != rs->ring_size)
		ring = kvcalloc(ring_size, sizeof(*ring), GFP_KERNEL);
	if (nr_slots != rs->nr_slots)
		slots = kvcalloc(nr_slots, sizeof(*slots), GFP_KERNEL);

	vmig_rs_lock(rs);
	if (ring) {
		swap(ring, rs->ring);
		rs->ring_size = ring_size;
	}
	if (slots) {
		swap(slots, rs->slots);
		rs->nr_slots = nr_slots;
	}
	rs->base_seq = rs->next_seq;
	rs->overflows = 0;
	__vmig_regfile_clear(rs);
	vmig_rs_unlock(rs);
	/* the old arrays, or NULL */
	kvfree(ring);
	kvfree(slots);
}

u64 __vmig_reglog_oldest(const struct vmig_regstate *rs)
{
	u64 oldest = rs->next_seq > rs->ring_size ?
		     rs->next_seq - rs->ring_size : 0;

	return max(oldest, rs->base_seq);
}

void vmig_record_reset(struct vmig_regstate *rs)
{
	vmig_rs_lock(rs);
	__vmig_regfile_clear(rs);
	__vmig_reglog_append(rs, VMIG_REGLOG_BAR_RESET, 0, 0, 0);
	vmig_rs_unlock(rs);
}

/* Entries copied per lock hold, so a large read never delays the trap path. */
#define LOG_READ_BATCH	64

int vmig_reglog_read(struct vmig_device *mdev, u64 since_seq,
		     struct vmig_reglog_entry *out, unsigned int max,
		     u64 *next_seq)
{
	struct vmig_regstate *rs = &mdev->rs;
	u64 seq = since_seq, end;
	unsigned int n = 0;
	bool done = false;

	while (n < max && !done) {
		vmig_rs_lock(rs);
		seq = max(seq, __vmig_reglog_oldest(rs));
		end = min_t(u64, rs->next_seq,
			    seq + min_t(unsigned int, max - n, LOG_READ_BATCH));
		for (; seq < end; seq++, n++) {
			const struct vmig_reglog_rec *r =
				&rs->ring[seq & (rs->ring_size - 1)];

			out[n].seq = seq;
			out[n].ts_ns = jiffies64_to_nsecs(r->ts_jiffies -
							  INITIAL_JIFFIES);
			out[n].offset = r->offset;
			out[n].bar = r->bar;
			out[n].width = r->width;
			out[n].value = r->value;
		}
		done = seq >= rs->next_seq;
		vmig_rs_unlock(rs);
	}
	*next_seq = seq;
	return n;
}

void vmig_get_counters(struct vmig_device *mdev, struct vmig_counters *c)
{
	struct vmig_regstate *rs = &mdev->rs;

	int cpu;

	memset(c, 0, sizeof(*c));
	for_each_possible_cpu(cpu)
		c->trapped_reads += *per_cpu_ptr(mdev->trapped_reads, cpu);
	vmig_rs_lock(rs);
	c->trapped_writes = rs->trapped_writes;
	c->log_entries = rs->next_seq - __vmig_reglog_oldest(rs);
	c->log_overflows = rs->overflows;
	c->log_next_seq = rs->next_seq;
	c->log_lossy = rs->overflows != 0;
	c->regfile_entries = rs->regfile_used;
	c->regfile_overflows = rs->regfile_overflows;
	vmig_rs_unlock(rs);
}
