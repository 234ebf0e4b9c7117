// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig profile "nvme": an NVMe controller (QEMU's, PF or SR-IOV VF),
 * migrated by mediation (Documentation/nvme-profile.rst).
 *
 * Sparse trap mode traps the register page and the doorbell page of BAR 0
 * (the MSI-X table stays with vfio-pci core). Every trapped write reaches
 * the controller model (model.c) through the DMA doorbell op, under the
 * device's mig.dma.lock, before it reaches the device (held for write,
 * except the doorbells of I/O queue pairs: held for read with the pair's
 * queue mutex, see nvme_queue_of() and model.h, Concurrency):
 *  - register writes are followed and forwarded;
 *  - a tail doorbell first has the model read and decode the new
 *    submission queue entries (guest memory by IOVA, vfio_dma_rw() in the
 *    writer's context) and mark what the device may write; in the P2P
 *    states it is held instead, and handed to the device when it runs
 *    again (or carried in the state record as the queue's tail);
 *  - a head doorbell releases completions (admin effects, the in-flight
 *    store) and is forwarded.
 * After each clearing dirty report the remark op marks again what
 * commands in flight may still write. The quiesce waits until the device
 * owes no completion; save and restore move struct nvmp_state.
 *
 * Guest memory is read with vfio_dma_rw(), which works from the VMM's own
 * threads (the trap path) or from a kernel worker: everything else that
 * reads it (the quiesce, the held tails handed over, save, restore) runs
 * in a worker (vmig_run_in_worker()), whoever called the arc (a VMM, or a
 * migration controller from another process).
 */
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/pci.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vfio.h>

#include "../../dirty.h"
#include "../../lm.h"
#include "../../profile.h"
#include "../../replay.h"
#include "../../snapshot.h"
#include "../../trap.h"
#include "../../vfio_mig.h"
#include "model.h"
#include "state.h"

#define NVME_TRACK_RANGES	8192	/* 128 KiB */
#define NVME_TRACK_RECS		2048
#define NVME_RESTORE_MS		5000
#define NVME_BAR_TRAPPED	0x2000	/* registers and doorbells */
/* 32-bit doorbell slots in the trapped doorbell page */
#define NVME_DB_SLOTS		((NVME_BAR_TRAPPED - NVMP_REG_DBS) / 4)

/* devstate items in report errors (bar VMIG_BAR_DEVSTATE) */
#define NVME_ITEM_STATE		1

static const struct pci_device_id nvme_ids[] = {
	{ PCI_DEVICE(VMIG_NVME_VENDOR, VMIG_NVME_DEVICE) },
	{}
};

static const struct vmig_reg_desc nvme_regs[] = {
	/* captured for the shadow (sriov_shadow's nvme model serves them) */
	{ "CAP", NVMP_REG_CAP, 0, 8, VMIG_REG_RO, VMIG_REGF_CAPTURE },
	{ "VS", NVMP_REG_VS, 0, 4, VMIG_REG_RO, VMIG_REGF_CAPTURE },
	{ "INTMS", NVMP_REG_INTMS, 0, 4, VMIG_REG_TRIGGER },
	{ "INTMC", NVMP_REG_INTMC, 0, 4, VMIG_REG_TRIGGER },
	{ "CC", NVMP_REG_CC, 0, 4, VMIG_REG_TRIGGER },
	{ "CSTS", NVMP_REG_CSTS, 0, 4, VMIG_REG_VOLATILE },
	{ "AQA", NVMP_REG_AQA, 0, 4, VMIG_REG_STATE },
	{ "ASQ", NVMP_REG_ASQ, 0, 8, VMIG_REG_STATE },
	{ "ACQ", NVMP_REG_ACQ, 0, 8, VMIG_REG_STATE },
	{ "doorbell", NVMP_REG_DBS, 0, 4, VMIG_REG_TRIGGER, 0, 0, 4,
	  2 * NVMP_MAX_QID },
};

static const struct vmig_trap_range nvme_trap[] = {
	{ .bar = 0, .offset = 0, .size = NVME_BAR_TRAPPED },
};

/**
 * struct nvme_priv - the profile's state per device
 * @c: the controller model; under mig.dma.lock held for write, or for
 *	read by the doorbell of I/O queue pair q (nvme_queue_of()) with
 *	mig.dma.qlock[q] held: then the model touches pair q's own state
 *	and takes @mlock for what pairs share (model.h, Concurrency)
 * @mlock: the model lock (nvmp_env.lock); innermost of the device's
 *	sleeping locks but for what the model reads guest memory with
 *	(vfio_dma_rw(): type1's locks), which it may call under it
 * @ranges: its in-flight store (nvmp_track_init()), from open to close
 * @recs: ditto
 * @hash: ditto
 * @ready: the model knows the device (CAP read); set and cleared under
 *	mig.dma.lock for write
 * @stray: SQ tail doorbells held in the P2P states that the model did not
 *	take (a queue it does not follow, a tail past the queue): the last
 *	value per 32-bit slot, written to the device as they are when it
 *	runs again, as it would have seen them. A slot belongs to one queue
 *	pair: written under that pair's doorbell locks, read and cleared
 *	under mig.dma.lock for write
 * @stray_set: the slots of @stray in use (atomic bit operations)
 */
struct nvme_priv {
	struct nvmp_ctrl c;
	struct mutex mlock;	/* see above */
	struct nvmp_range *ranges;
	struct nvmp_rec *recs;
	u32 *hash;
	bool ready;
	u32 stray[NVME_DB_SLOTS];
	DECLARE_BITMAP(stray_set, NVME_DB_SLOTS);
};

static struct nvme_priv *priv(struct vmig_device *mdev)
{
	return vmig_profile_priv(mdev);
}

static int env_read(void *ctx, u64 iova, void *buf, u32 len)
{
	struct vmig_device *mdev = ctx;

	return vfio_dma_rw(&mdev->core.vdev, iova, buf, len, false);
}

static void env_dirty(void *ctx, u64 iova, u64 len)
{
	vmig_dirty_mark(ctx, iova, len);
}

static void env_lock(void *ctx)
{
	mutex_lock(&priv(ctx)->mlock);
}

static void env_unlock(void *ctx)
{
	mutex_unlock(&priv(ctx)->mlock);
}

/* The model's facts about the device, once its registers can be read. */
static int nvme_ready(struct vmig_device *mdev)
{
	struct nvme_priv *n = priv(mdev);
	struct nvmp_env env = {
		.read = env_read, .dirty = env_dirty, .ctx = mdev,
		.lock = env_lock, .unlock = env_unlock,
	};
	u64 cap;
	int ret;

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	if (n->ready)
		return 0;
	if (!n->ranges)
		return -ENODEV;
	ret = vmig_bar_read(mdev, 0, NVMP_REG_CAP, 8, &cap);
	if (ret)
		return ret;
	nvmp_init(&n->c, &env, cap, NVMP_MAX_XFER);
	nvmp_track_init(&n->c, n->ranges, NVME_TRACK_RANGES, n->recs,
			NVME_TRACK_RECS, n->hash);
	n->ready = true;
	return 0;
}

static int nvme_open(struct vmig_device *mdev)
{
	struct nvme_priv *n = priv(mdev);

	n->ranges = kvcalloc(NVME_TRACK_RANGES, sizeof(*n->ranges),
			     GFP_KERNEL_ACCOUNT);
	n->recs = kvcalloc(NVME_TRACK_RECS, sizeof(*n->recs),
			   GFP_KERNEL_ACCOUNT);
	n->hash = kvcalloc(2 * NVME_TRACK_RECS, sizeof(*n->hash),
			   GFP_KERNEL_ACCOUNT);
	if (!n->ranges || !n->recs || !n->hash) {
		kvfree(n->ranges);
		kvfree(n->recs);
		kvfree(n->hash);
		n->ranges = NULL;
		n->recs = NULL;
		n->hash = NULL;
		return -ENOMEM;
	}
	mutex_init(&n->mlock);
	bitmap_zero(n->stray_set, NVME_DB_SLOTS);
	n->ready = false;
	return 0;
}

static void nvme_close(struct vmig_device *mdev)
{
	struct nvme_priv *n = priv(mdev);

	down_write(&mdev->mig.dma.lock);
	n->ready = false;
	up_write(&mdev->mig.dma.lock);
	kvfree(n->ranges);
	kvfree(n->recs);
	kvfree(n->hash);
	n->ranges = NULL;
	n->recs = NULL;
	n->hash = NULL;
	mutex_destroy(&n->mlock);
}

/* A device reset: the controller forgets everything, so does the model. */
static void nvme_reset(struct vmig_device *mdev)
{
	struct nvme_priv *n = priv(mdev);

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	bitmap_zero(n->stray_set, NVME_DB_SLOTS);
	if (n->ready)
		nvmp_reg_write(&n->c, NVMP_REG_CC, 0, 4);
}

static enum vmig_db_verdict nvme_doorbell(struct vmig_device *mdev,
					  const struct vmig_held_write *w,
					  bool held)
{
	struct nvme_priv *n = priv(mdev);
	unsigned int slot;
	bool sq;
	int ret;

	lockdep_assert_held(&mdev->mig.dma.lock);
	if (w->bar != 0 || (!n->ready && nvme_ready(mdev)))
		return VMIG_DB_FORWARD;
	if (w->offset < NVMP_REG_DBS) {
		nvmp_reg_write(&n->c, w->offset, w->value, w->width);
		return VMIG_DB_FORWARD;
	}
	sq = !(((w->offset - NVMP_REG_DBS) / n->c.db_stride) & 1);
	ret = nvmp_doorbell(&n->c, w->offset, w->value, !held);
	if (!held || !sq)
		return VMIG_DB_FORWARD;
	/*
	 * A tail held: the device fetches nothing until it runs again. One
	 * the model did not take is kept as written (@stray); a write that
	 * is not a whole aligned slot, which the device ignores, is dropped.
	 */
	if (w->width == 4 && IS_ALIGNED(w->offset, 4) &&
	    w->offset < NVME_BAR_TRAPPED) {
		slot = (w->offset - NVMP_REG_DBS) / 4;
		if (ret) {
			n->stray[slot] = w->value;
			set_bit(slot, n->stray_set);
		} else {
			/* the model's tail is the newer word */
			clear_bit(slot, n->stray_set);
		}
	}
	return VMIG_DB_HOLD;
}

/*
 * The doorbells of I/O queue pair q (SQ q tail, CQ q head) are queue q:
 * they run concurrently with other pairs' (model.h, Concurrency). The
 * rest (registers, the admin queue, a controller the model does not know
 * yet or not enabled) is device-wide.
 */
static int nvme_queue_of(struct vmig_device *mdev,
			 const struct vmig_held_write *w)
{
	struct nvme_priv *n = priv(mdev);
	u16 q;

	lockdep_assert_held(&mdev->mig.dma.lock);
	if (w->bar != 0 || w->width != 4 || !n->ready)
		return -1;
	q = nvmp_doorbell_queue(&n->c, w->offset);
	/*
	 * The tail of an SQ the model does not follow may need the admin
	 * queue's completions (nvmp_doorbell()): device-wide. Which SQs it
	 * follows changes only device-wide, so it holds until the write is
	 * done under the read lock.
	 */
	if (q && w->offset == nvmp_db_offset(&n->c, q, false) &&
	    !nvmp_sq_follows(&n->c, q))
		return -1;
	return q ? q : -1;
}

static void nvme_remark(struct vmig_device *mdev)
{
	struct nvme_priv *n = priv(mdev);

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	if (n->ready)
		nvmp_remark(&n->c);
}

/* A call that reads guest memory, made from a worker. */
struct nvme_call {
	struct vmig_device *mdev;
	bool lock;	/* take mig.dma.lock (the caller does not hold it) */
	bool issue;
	u64 nr;
};

/* Commands the device owes (AERs aside); -EFAULT: guest memory unread. */
static int look_work(void *arg)
{
	struct nvme_call *k = arg;
	struct vmig_device *mdev = k->mdev;
	struct nvme_priv *n = priv(mdev);
	int ret = 0;

	if (k->lock)
		down_write(&mdev->mig.dma.lock);
	k->nr = n->ready ? nvmp_outstanding(&n->c) : 0;
	if (n->ready && (n->c.untracked & NVMP_UT_MEMORY))
		ret = -EFAULT;
	if (k->lock)
		up_write(&mdev->mig.dma.lock);
	return ret;
}

/*
 * Wait until the device owes no completion: with @ms 0, just look
 * (mig.dma.lock held by the caller); else poll, the lock taken for each
 * look.
 */
static int nvme_quiesce(struct vmig_device *mdev, unsigned int ms)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);
	struct nvme_call k = { .mdev = mdev, .lock = ms != 0 };
	int ret;

	if (!ms)
		lockdep_assert_held_write(&mdev->mig.dma.lock);
	for (;;) {
		ret = vmig_run_in_worker(look_work, &k);
		if (ret == -EFAULT)
			dev_warn_ratelimited(&mdev->core.pdev->dev,
					     "nvme: a command's PRP list or queue entry was unreadable through the IOMMU: the model cannot vouch for the device's writes; no migration until the guest resets the controller\n");
		if (ret)
			return ret;
		if (!k.nr)
			return 0;
		if (!ms || time_after(jiffies, end))
			return -ETIMEDOUT;
		if (fatal_signal_pending(current))
			return -EINTR;
		usleep_range(100, 200);
	}
}

/* Hand the held tails to the device, in queue order (caller's lock). */
static int forward_work(void *arg)
{
	struct nvme_call *k = arg;
	struct vmig_device *mdev = k->mdev;
	struct nvme_priv *n = priv(mdev);
	struct nvmp_ctrl *c = &n->c;
	unsigned int q;
	int ret;

	for (q = 0; q < NVMP_MAX_QID; q++) {
		struct nvmp_sq *sq = &c->sq[q];

		if (!sq->live || sq->fwd == sq->tail)
			continue;
		nvmp_forward(c, q);
		ret = vmig_bar_write(mdev, 0, nvmp_db_offset(c, q, false), 4,
				     sq->tail);
		if (ret)
			pci_warn(mdev->core.pdev,
				 "nvme: held tail %u of SQ %u not written: %d\n",
				 sq->tail, q, ret);
	}
	for_each_set_bit(q, n->stray_set, NVME_DB_SLOTS) {
		ret = vmig_bar_write(mdev, 0, NVMP_REG_DBS + q * 4, 4,
				     n->stray[q]);
		if (ret)
			pci_warn(mdev->core.pdev,
				 "nvme: held doorbell at %#x not written: %d\n",
				 NVMP_REG_DBS + q * 4, ret);
	}
	bitmap_zero(n->stray_set, NVME_DB_SLOTS);
	return 0;
}

/* Leave the P2P states: issue the held tails, or forget them. */
static void nvme_unquiesce(struct vmig_device *mdev, bool issue)
{
	struct nvme_priv *n = priv(mdev);
	struct nvme_call k = { .mdev = mdev };
	unsigned int q;

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	if (!n->ready)
		return;
	if (issue) {
		if (vmig_run_in_worker(forward_work, &k)) {
			bitmap_zero(n->stray_set, NVME_DB_SLOTS);
			pci_warn(mdev->core.pdev,
				 "nvme: held doorbells not issued (fatal signal)\n");
		}
		return;
	}
	/*
	 * Forgotten: the held tails travel in the state record; a stray one
	 * cannot (the model refused it: a queue it does not follow makes it
	 * untracked and the save refuses, a tail past its queue the device
	 * would have ignored).
	 */
	bitmap_zero(n->stray_set, NVME_DB_SLOTS);
	for (q = 0; q < NVMP_MAX_QID; q++)
		n->c.sq[q].tail = n->c.sq[q].fwd;
}

/*
 * A stray tail of an SQ the model knows now, or is creating (the guest
 * rang it after the creation completed, before it released that
 * completion): the record would carry the queue without that tail, so
 * the save waits for a later try (caller's lock). Strays of queues that
 * do not exist, or past a queue's size, the device ignores: no matter.
 */
static bool stray_for_a_queue(struct nvme_priv *n)
{
	struct nvmp_ctrl *c = &n->c;
	unsigned int slot;

	for_each_set_bit(slot, n->stray_set, NVME_DB_SLOTS) {
		u32 off = NVMP_REG_DBS + slot * 4;
		u16 q = nvmp_doorbell_queue(c, off);

		if (!q || off != nvmp_db_offset(c, q, false))
			continue;
		if (c->sq[q].live ? n->stray[slot] < c->sq[q].size :
				    nvmp_sq_creating(c, q))
			return true;
	}
	return false;
}

static int nvme_save_work(void *arg)
{
	struct vmig_profile_ctx *ctx = arg;
	struct vmig_device *mdev = ctx->mdev;
	struct nvme_priv *n = priv(mdev);
	int ret;

	down_write(&mdev->mig.dma.lock);
	ret = nvme_ready(mdev);
	if (!ret && stray_for_a_queue(n)) {
		pci_warn(mdev->core.pdev,
			 "nvme: a held tail doorbell came before the model knew its queue: no save (the migration can be tried again)\n");
		ret = -EBUSY;
	}
	if (!ret)
		ret = nvmp_save(&n->c, ctx->state);
	if (ret == -EIO)
		pci_warn(mdev->core.pdev,
			 "nvme: the model cannot vouch for the device (untracked %#x): no migration\n",
			 n->c.untracked);
	else if (ret == -EBUSY)
		pci_warn(mdev->core.pdev,
			 "nvme: commands still in flight at save\n");
	up_write(&mdev->mig.dma.lock);
	if (!ret)
		ctx->state_len = sizeof(struct nvmp_state);
	return ret;
}

static int nvme_save(struct vmig_profile_ctx *ctx)
{
	if (!ctx->state)	/* registers only */
		return 0;
	return vmig_run_in_worker(nvme_save_work, ctx);
}

/* The restore's access to the target device (struct nvmp_dev). */
struct nvme_rs {
	struct vmig_device *mdev;
	unsigned long end;
	int err;
};

static void rs_wr(void *ctx, u32 off, u64 val, u8 width)
{
	struct nvme_rs *r = ctx;
	int ret = vmig_bar_write(r->mdev, 0, off, width, val);

	if (ret && !r->err)
		r->err = ret;
}

static u64 rs_rd(void *ctx, u32 off, u8 width)
{
	struct nvme_rs *r = ctx;
	u64 v = 0;
	int ret = vmig_bar_read(r->mdev, 0, off, width, &v);

	if (ret && !r->err)
		r->err = ret;
	return ret ? ~0ull : v;
}

static int rs_wait(void *ctx)
{
	struct nvme_rs *r = ctx;

	if (r->err)
		return r->err;
	if (time_after(jiffies, r->end))
		return -ETIMEDOUT;
	if (fatal_signal_pending(current))
		return -EINTR;
	usleep_range(50, 100);
	return 0;
}

static int rs_write(void *ctx, u64 iova, const void *buf, u32 len)
{
	struct nvme_rs *r = ctx;

	return vfio_dma_rw(&r->mdev->core.vdev, iova, (void *)buf, len, true);
}

/*
 * The restore drives the controller by its own DMA (queue entries,
 * completions): memory decoding and bus mastering on for its duration,
 * whatever the VMM has restored of the command register yet. Returns the
 * command register to put back.
 */
static u16 master_open(struct vmig_device *mdev)
{
	struct vfio_pci_core_device *core = &mdev->core;
	u16 cmd;

	down_write(&core->memory_lock);
	pci_read_config_word(core->pdev, PCI_COMMAND, &cmd);
	pci_write_config_word(core->pdev, PCI_COMMAND,
			      cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	up_write(&core->memory_lock);
	return cmd;
}

static void master_close(struct vmig_device *mdev, u16 cmd)
{
	struct vfio_pci_core_device *core = &mdev->core;

	down_write(&core->memory_lock);
	pci_write_config_word(core->pdev, PCI_COMMAND, cmd);
	up_write(&core->memory_lock);
}

/* What the target controller offers, from its registers and config. */
static void limits(struct vmig_device *mdev, u64 cap, struct nvmp_limits *l)
{
	int vec = pci_msix_vec_count(mdev->core.pdev);

	/* CAP.MQES is zero-based: 0xffff would wrap a u16 */
	l->mqes = min_t(u32, (cap & 0xffff) + 1, NVMP_MAX_QSIZE);
	l->mps_min = (cap >> 48) & 0xf;
	l->mps_max = (cap >> 52) & 0xf;
	l->nr_vec = vec > 0 ? vec : 1;
	/* the queues granted are the device's answer to Set Features */
	l->nr_ioq = NVMP_MAX_QID - 1;
}

static int nvme_restore_work(void *arg)
{
	struct vmig_profile_ctx *ctx = arg;
	struct vmig_device *mdev = ctx->mdev;
	struct nvme_priv *n = priv(mdev);
	const struct nvmp_state *st = ctx->state;
	struct nvme_rs r = {
		.mdev = mdev,
		.end = jiffies + msecs_to_jiffies(NVME_RESTORE_MS),
	};
	struct nvmp_dev dev = { rs_wr, rs_rd, rs_wait, rs_write, &r };
	const char *why = NULL;
	struct nvmp_limits lim;
	size_t len;
	void *buf;
	u64 cap;
	u16 cmd;
	int ret;

	if (!st || ctx->state_len != sizeof(*st)) {
		vmig_report_error(ctx->report, VMIG_BAR_DEVSTATE,
				  NVME_ITEM_STATE, 0, -ENODATA);
		return -ENODATA;
	}
	down_write(&mdev->mig.dma.lock);
	ret = nvme_ready(mdev);
	if (!ret)
		ret = vmig_bar_read(mdev, 0, NVMP_REG_CAP, 8, &cap);
	if (!ret) {
		limits(mdev, cap, &lim);
		ret = nvmp_state_check(st, &lim, &why);
	}
	if (ret)
		goto out;
	len = nvmp_restore_buf_size(st);
	buf = kvzalloc(len, GFP_KERNEL_ACCOUNT);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	cmd = master_open(mdev);
	ret = nvmp_restore(&n->c, st, &dev, buf, len, &why);
	master_close(mdev, cmd);
	kvfree(buf);
out:
	up_write(&mdev->mig.dma.lock);
	if (ret) {
		pci_warn(mdev->core.pdev, "nvme: restore failed: %s (%d)\n",
			 why ?: "device", ret);
		vmig_report_error(ctx->report, VMIG_BAR_DEVSTATE,
				  NVME_ITEM_STATE, 0, ret);
	} else {
		ctx->report->applied++;
	}
	return ret;
}

static int nvme_restore(struct vmig_profile_ctx *ctx)
{
	return vmig_run_in_worker(nvme_restore_work, ctx);
}

/*
 * What the guest uses (Documentation/nvme-profile.rst, "Compatibility"),
 * from the model as it stands: a queue the guest creates later is the
 * restore's to check.
 */
static int nvme_needs(struct vmig_device *mdev, void *buf)
{
	struct nvme_priv *n = priv(mdev);
	struct vfio_mig_nvme_needs *r = buf;

	BUILD_BUG_ON(sizeof(*r) > VMIG_NEEDS_MAX);
	down_write(&mdev->mig.dma.lock);
	if (n->ready) {
		nvmp_needs(&n->c, r);
	} else {
		/* the guest has not touched the controller yet */
		memset(r, 0, sizeof(*r));
		r->version = cpu_to_le16(VFIO_MIG_NVME_NEEDS_VERSION);
		r->size = cpu_to_le16(sizeof(*r));
	}
	up_write(&mdev->mig.dma.lock);
	return sizeof(*r);
}

/*
 * May a guest with @needs move onto this VF? The VF's registers give
 * CAP.MQES and the page sizes, its config the MSI-X table size; the
 * queue and interrupt resources and the namespaces come in @facts from
 * the target's PF. The restore checks the state record again.
 */
static int nvme_compat_needs(struct vmig_device *mdev, const void *needs,
			     u32 needs_len, const void *facts, u32 facts_len,
			     struct vmig_replay_report *rep, char *notes,
			     size_t notes_len)
{
	struct nvmp_limits lim, *l = NULL;
	u64 cap;

	if (!needs) {
		strscpy(notes,
			"the source sent no needs record (an older migctl): queues, vectors and namespaces checked at restore only",
			notes_len);
		return 0;
	}
	if (nvmp_needs_valid(needs, needs_len, rep->msg, sizeof(rep->msg)))
		return -EINVAL;
	if (facts &&
	    nvmp_facts_valid(facts, facts_len, rep->msg, sizeof(rep->msg)))
		return -EINVAL;
	down_write(&mdev->mig.dma.lock);
	if (mdev->open && !vmig_bar_read(mdev, 0, NVMP_REG_CAP, 8, &cap) &&
	    cap != ~0ull) {
		limits(mdev, cap, &lim);
		l = &lim;
	}
	up_write(&mdev->mig.dma.lock);
	return nvmp_needs_check(needs, facts, l, rep->msg, sizeof(rep->msg),
				notes, notes_len);
}

static u32 nvme_state_size(const struct vmig_profile *p)
{
	return sizeof(struct nvmp_state);
}

static const struct vmig_doorbell nvme_doorbell_block = {
	.bar = 0,
	.start = 0,
	.end = NVME_BAR_TRAPPED,
};

static const struct vmig_profile_dev_ops nvme_ops = {
	.open = nvme_open,
	.close = nvme_close,
	.reset = nvme_reset,
	.quiesce = nvme_quiesce,
	.unquiesce = nvme_unquiesce,
	.save = nvme_save,
	.restore = nvme_restore,
	.state_size = nvme_state_size,
	.needs = nvme_needs,
	.compat_needs = nvme_compat_needs,
};

static const struct vmig_profile_dma_ops nvme_dma_ops = {
	.doorbell = nvme_doorbell,
	.remark = nvme_remark,
	.queue_of = nvme_queue_of,
	.nr_queues = NVMP_MAX_QID,
};

const struct vmig_profile vmig_profile_nvme = {
	.name = "nvme",
	.version = NVMP_STATE_VERSION,
	.ids = nvme_ids,
	.regs = nvme_regs,
	.nr_regs = ARRAY_SIZE(nvme_regs),
	.default_class = VMIG_REG_VOLATILE,
	.trap = nvme_trap,
	.nr_trap = ARRAY_SIZE(nvme_trap),
	.tolerate = VMIG_ID_REVISION,
	.doorbell = &nvme_doorbell_block,
	.priv_size = sizeof(struct nvme_priv),
	.ops = &nvme_ops,
	.dma = &nvme_dma_ops,
};
