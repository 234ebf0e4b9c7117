// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig profile "edu": QEMU's educational device (1234:11e8).
 *
 * Every register the device has can be read back, so the profile restores
 * from values captured by reading (which also covers trap mode none) and
 * uses the register file only for what reads cannot give (the factorial's
 * operand). Its restore order on the target:
 *
 *  1. wait until the target is idle (no DMA, no factorial running);
 *     silence its interrupts (INTx disabled, MSI disabled in the physical
 *     config space; restored at step 8);
 *  2. the 4 KiB device buffer, by a DMA from a borrowed guest page;
 *  3. the DMA command register's direction and interrupt bits, which the
 *     device only takes together with the start bit: by a 1-byte transfer
 *     with those bits, when they differ from what step 2 left;
 *  4. the factorial result, by re-running the computation on the operand
 *     that gives it (the register file's last operand if it does, else the
 *     smallest n with n! mod 2^32 equal to the result), with the factorial
 *     interrupt enabled as step 7 leaves it (if enabled, done once the
 *     device has raised it, silenced);
 *  5. liveness (the device stores the complement of what is written);
 *  6. DMA source, destination and count, without starting a transfer;
 *  7. the status register's interrupt-enable bit (again); then every
 *     interrupt status bit is acknowledged;
 *  8. interrupts back on, then the captured interrupt status is raised
 *     (a pending interrupt is state: the target's VMM receives it), with
 *     the factorial's if the source was still computing one and its
 *     interrupt was enabled (it ended in step 4).
 *
 * A shadow's hand-back splits it (vmig_shadow_ops.devstate): steps 1 to 4
 * with the guest still served by the shadow (VMIG_SNAP_STAGE), then the
 * rest with its accesses held (VMIG_SNAP_STAGED), which moves no buffer
 * and recomputes no factorial the device shows already.
 *
 * A migration controller may move the slow part before the stop
 * (VFIO_MIG_CTL_PREPARE, Documentation/migration.rst "The slow state
 * before the stop"): edu_early_save() reads the buffer on the source with
 * the guest running and its DMA starts held, edu_early_load() writes it
 * and the command bits (steps 2 and 3) on the target as the record
 * arrives; the blob of the stop then names that early state (flag
 * EDU_STATE_EARLY) and neither side runs a transfer in the stop.
 *
 * The buffer is reached only by DMA. Under VFIO the device translates
 * through the VMM's IOMMU domain, so no kernel DMA mapping reaches it;
 * instead the profile borrows one page of the VMM's IOVA space (named by
 * the debugfs command "scratch IOVA", or in a migration found as
 * pick_scratch() says): it saves the page's contents with vfio_dma_rw(),
 * lets the device transfer through it, and writes the saved contents back.
 * The guarantee: guest memory is unchanged once save or restore returns,
 * provided nothing else (a running vCPU, another device) touches that page
 * meanwhile, i.e. the VM is stopped or the VMM reserved the page; or, if
 * the device never ends a save's transfer, once it does: the page is put
 * back then (edu_priv.stuck_copy).
 * The buffer's last byte is beyond the device's DMA reach (QEMU 7.2 stops
 * the VM on a transfer that touches it), so no one can have written it: it
 * is always zero and is not moved.
 */
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/pci.h>
#include <linux/random.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/vfio.h>
#include <uapi/linux/vfio_mig_stream.h>

#include "../dirty.h"
#include "../lm.h"
#include "../profile.h"
#include "../replay.h"
#include "../shadow.h"
#include "../snapshot.h"
#include "../trap.h"
#include "../vfio_mig.h"
#include "edu.h"

/* devstate items in report errors (bar VMIG_BAR_DEVSTATE) */
#define EDU_ITEM_IDLE		1
#define EDU_ITEM_BUFFER		2
#define EDU_ITEM_DMA_CMD	3

static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(VMIG_EDU_VENDOR, VMIG_EDU_DEVICE) },
	{}
};

#define REG(n, o, w, c, f, ord) \
	{ .name = n, .offset = o, .bar = 0, .width = w, .class = c, \
	  .flags = f, .order = ord }
#define CAP	VMIG_REGF_CAPTURE

static const struct vmig_reg_desc edu_regs[] = {
	REG("id", EDU_ID, 4, VMIG_REG_RO, CAP, 0),
	REG("liveness", EDU_LIVENESS, 4, VMIG_REG_STATE, CAP, 3),
	REG("factorial", EDU_FACTORIAL, 4, VMIG_REG_TRIGGER, CAP, 1),
	REG("status", EDU_STATUS, 4, VMIG_REG_STATE, CAP, 2),
	REG("irq_status", EDU_IRQ_STATUS, 4, VMIG_REG_RO, CAP, 0),
	REG("irq_raise", EDU_IRQ_RAISE, 4, VMIG_REG_TRIGGER, 0, 5),
	REG("irq_ack", EDU_IRQ_ACK, 4, VMIG_REG_TRIGGER, 0, 5),
	REG("dma_src", EDU_DMA_SRC, 8, VMIG_REG_STATE, CAP, 4),
	REG("dma_dst", EDU_DMA_DST, 8, VMIG_REG_STATE, CAP, 4),
	REG("dma_count", EDU_DMA_COUNT, 8, VMIG_REG_STATE, CAP, 4),
	REG("dma_cmd", EDU_DMA_CMD, 8, VMIG_REG_TRIGGER, CAP, 4),
};

/* Sparse mode traps the register page; the rest of the 1 MiB BAR is empty. */
static const struct vmig_trap_range edu_trap[] = {
	{ .bar = 0, .offset = 0, .size = PAGE_SIZE },
};

/* DMA starts held in the P2P states: the device takes one at a time. */
#define EDU_MAX_HELD		4

/**
 * struct edu_priv - edu's state per device (vmig_profile_priv())
 * @held: DMA start commands written while DMA was held, in order; while
 *	one is kept, further writes to the engine's registers are dropped,
 *	as the device ignores them while it transfers
 * @nr_held: entries in @held
 * @inflight: the guest range of the last transfer started, valid while
 *	@inflight_valid: a report re-marks it until the transfer is seen to
 *	have ended, so that bytes landing after a report are not lost
 * @inflight_valid: see @inflight
 * @scratch: the guest page to borrow (debugfs "scratch IOVA"; 0: in a
 *	migration, look for one)
 * @borrowed: the profile's own transfer runs on the source with the guest
 *	running (early_save), or one that did not end still may (a save):
 *	the engine's address and count registers the guest writes and reads
 *	are @eng, not the device's, until give_back()
 * @stuck_copy: while @borrowed, the contents of the page at @stuck_iova
 *	that a save's transfer which never ended may still write: put back
 *	by give_back() once the engine reads idle (kmalloc'd; NULL: none)
 * @stuck_iova: see @stuck_copy
 * @eng: the guest's view of DMA_SRC, DMA_DST and DMA_COUNT while
 *	@borrowed, little-endian bytes from EDU_DMA_SRC
 * @shown_cmd: while @shown_valid, the command register's direction and
 *	interrupt bits as the guest left them; the device's are those of
 *	the profile's own transfer, until the guest's next start
 * @shown_valid: see @shown_cmd
 * @early_id: source: the id of the early state taken last, while the
 *	buffer and command bits are still those (no start reached the
 *	device since); 0: none
 * @loaded_id: target: the id of the early state loaded onto the device
 *	and not changed since; 0: none
 * @test_stall: tests (CONFIG_VFIO_MIG_TESTS, debugfs "stall-early"): the
 *	next early save acts as if the engine never read idle after its
 *	transfer
 * @test_stall_quiesce: tests (debugfs "stall-quiesce"): the next wait for
 *	the engine to read idle (edu_quiesce() with a bound: a DMA hold)
 *	times out as if it never did
 * @test_stall_save: tests (debugfs "stall-save", 1): the next save of the
 *	buffer gives up on its transfer as soon as it starts it, as if the
 *	engine had not read idle in time; ("stall-save-stuck", 2) and gives
 *	up its wait for a late end too. The three hooks are disarmed at
 *	close and reset
 * @own_transfers: transfers the profile ran itself (saves, restores,
 *	early states), for the debugfs counters: what a stop or a load cost
 * @test_peer_fail: tests (debugfs "peer-stop-fail"): the next link peer
 *	stop fails; disarmed at close and reset like the hooks above
 * @test_peer_stops: tests: the core's peer_quiesce calls that stop, for
 *	the debugfs counters (an edu has no link peer: test builds only lend
 *	it the op, so that the shadow's calls of it are seen)
 * @test_peer_resumes: tests: the same for the calls that resume
 * @test_peer_engaged: tests: such calls made while a shadow served the
 *	guest
 *
 * @held, @nr_held, @inflight*, @borrowed, @stuck_*, @eng, @shown_* and
 * the ids are
 * under mig.dma.lock (the DMA and reset ops run under it); @scratch and
 * the test hooks are written under dev_set->lock (the hooks also cleared
 * by the reset op) and read with READ_ONCE (the hooks taken with xchg());
 * @own_transfers and the peer counters are atomic.
 */
struct edu_priv {
	struct vmig_held_write held[EDU_MAX_HELD];
	u32 nr_held;
	struct vmig_dma_range inflight;
	bool inflight_valid;
	u64 scratch;
	bool borrowed;
	void *stuck_copy;
	u64 stuck_iova;
	u8 eng[EDU_DMA_CMD - EDU_DMA_SRC];
	u64 shown_cmd;
	bool shown_valid;
	u64 early_id;
	u64 loaded_id;
	bool test_stall;
	bool test_stall_quiesce;
	int test_stall_save;
	atomic64_t own_transfers;
	bool test_peer_fail;
	atomic_t test_peer_stops;
	atomic_t test_peer_resumes;
	atomic_t test_peer_engaged;
};

static struct edu_priv *priv(struct vmig_device *mdev)
{
	return vmig_profile_priv(mdev);
}

/* @shown_valid, and the trap path's cue to ask held_read. Under dma.lock. */
static void set_shown(struct vmig_device *mdev, bool on)
{
	priv(mdev)->shown_valid = on;
	WRITE_ONCE(mdev->mig.dma.answers, on);
}

static int rd(struct vmig_device *mdev, u32 off, u8 width, u64 *v)
{
	return vmig_bar_read(mdev, 0, off, width, v);
}

static int wr(struct vmig_device *mdev, u32 off, u8 width, u64 v)
{
	return vmig_bar_write(mdev, 0, off, width, v);
}

/*
 * Poll until @bit of register @off reads @set: soon at first (a factorial
 * ends in microseconds, and a hand-back holds the guest's accesses while
 * it waits for one), then every 2 to 4 ms (a transfer takes 100).
 */
static int wait_bit(struct vmig_device *mdev, u32 off, u8 width, u64 bit,
		    bool set, unsigned int ms)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);
	unsigned int us = 50;
	u64 v;
	int ret;

	for (;;) {
		ret = rd(mdev, off, width, &v);
		if (ret)
			return ret;
		if (!!(v & bit) == set)
			return 0;
		if (time_after(jiffies, end))
			return -ETIMEDOUT;
		usleep_range(us, 2 * us);
		us = min(2 * us, 2000U);
	}
}

static int wait_clear(struct vmig_device *mdev, u32 off, u8 width, u64 bit,
		      unsigned int ms)
{
	return wait_bit(mdev, off, width, bit, false, ms);
}

/* The DMA engine ends its transfer (a factorial may go on). */
static int engine_idle(struct vmig_device *mdev)
{
	return wait_clear(mdev, EDU_DMA_CMD, 8, EDU_CMD_RUN, 3000);
}

/* The engine and the factorial both end: what a capture needs. */
static int wait_idle(struct vmig_device *mdev)
{
	return engine_idle(mdev) ?: wait_clear(mdev, EDU_STATUS, 4,
					       EDU_STATUS_COMPUTING, 1000);
}

/* Start one transfer; @cmd holds the direction and interrupt bits. */
static int start_dma(struct vmig_device *mdev, u64 cmd, u64 src, u64 dst,
		     u64 count)
{
	int ret;

	ret = wr(mdev, EDU_DMA_SRC, 8, src);
	if (!ret)
		ret = wr(mdev, EDU_DMA_DST, 8, dst);
	if (!ret)
		ret = wr(mdev, EDU_DMA_COUNT, 8, count);
	if (!ret)
		ret = wr(mdev, EDU_DMA_CMD, 8, cmd | EDU_CMD_RUN);
	if (!ret)
		atomic64_inc(&priv(mdev)->own_transfers);
	return ret;
}

/* One transfer, to its end: -ETIMEDOUT if the engine is still busy. */
static int run_dma(struct vmig_device *mdev, u64 cmd, u64 src, u64 dst,
		   u64 count)
{
	return start_dma(mdev, cmd, src, dst, count) ?:
	       wait_clear(mdev, EDU_DMA_CMD, 8, EDU_CMD_RUN, 3000);
}

/* Physical config space around the profile's own DMA: see step 1. */
struct edu_quiet {
	u16 cmd;
	u16 msi_flags;
};

static void quiet(struct vmig_device *mdev, struct edu_quiet *q)
{
	struct pci_dev *pdev = mdev->core.pdev;

	spin_lock_irq(&mdev->core.irqlock);
	pci_read_config_word(pdev, PCI_COMMAND, &q->cmd);
	pci_write_config_word(pdev, PCI_COMMAND,
			      q->cmd | PCI_COMMAND_INTX_DISABLE |
			      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	spin_unlock_irq(&mdev->core.irqlock);
	q->msi_flags = 0;
	if (pdev->msi_cap) {
		pci_read_config_word(pdev, pdev->msi_cap + PCI_MSI_FLAGS,
				     &q->msi_flags);
		if (q->msi_flags & PCI_MSI_FLAGS_ENABLE)
			pci_write_config_word(pdev,
					      pdev->msi_cap + PCI_MSI_FLAGS,
					      q->msi_flags &
					      ~PCI_MSI_FLAGS_ENABLE);
	}
}

static void unquiet(struct vmig_device *mdev, const struct edu_quiet *q)
{
	struct pci_dev *pdev = mdev->core.pdev;

	if (q->msi_flags & PCI_MSI_FLAGS_ENABLE)
		pci_write_config_word(pdev, pdev->msi_cap + PCI_MSI_FLAGS,
				      q->msi_flags);
	spin_lock_irq(&mdev->core.irqlock);
	pci_write_config_word(pdev, PCI_COMMAND, q->cmd);
	spin_unlock_irq(&mdev->core.irqlock);
}

static int guest_rw(struct vmig_device *mdev, u64 iova, void *data,
		    size_t len, bool write)
{
	return vfio_dma_rw(&mdev->core.vdev, iova, data, len, write);
}

static bool scratch_ok(u64 scratch)
{
	return scratch && IS_ALIGNED(scratch, PAGE_SIZE) &&
	       scratch + PAGE_SIZE - 1 <= EDU_DMA_MASK;
}

/*
 * Give the DMA command register the direction and interrupt bits @want by
 * a 1-byte transfer between buffer byte 0 and the scratch page, whose byte
 * is saved and put back. A transfer into the buffer writes @buf0 there,
 * the byte's value; NULL: read it from the device first.
 */
static int fix_cmd(struct vmig_device *mdev, u64 scratch, u64 want,
		   const u8 *buf0)
{
	u64 cur;
	u8 saved, b0;
	int ret, ret2;

	ret = rd(mdev, EDU_DMA_CMD, 8, &cur);
	if (ret || (cur & (EDU_CMD_TO_RAM | EDU_CMD_IRQ)) == want)
		return ret;
	if (!scratch_ok(scratch))
		return -ENXIO;
	ret = guest_rw(mdev, scratch, &saved, 1, false);
	if (ret)
		return ret;
	if (want & EDU_CMD_TO_RAM) {
		ret = run_dma(mdev, want, EDU_BUF_ADDR, scratch, 1);
	} else {
		if (buf0) {
			b0 = *buf0;
		} else {
			ret = run_dma(mdev, EDU_CMD_TO_RAM, EDU_BUF_ADDR,
				      scratch, 1);
			if (!ret)
				ret = guest_rw(mdev, scratch, &b0, 1, false);
		}
		if (!ret)
			ret = guest_rw(mdev, scratch, &b0, 1, true);
		if (!ret)
			ret = run_dma(mdev, want, scratch, EDU_BUF_ADDR, 1);
	}
	/* a transfer that failed may end yet: the byte goes back after it */
	if (ret)
		engine_idle(mdev);
	ret2 = guest_rw(mdev, scratch, &saved, 1, true);
	return ret ? ret : ret2;
}

/*
 * Move the buffer between the device and @st through the scratch page.
 * -ETIMEDOUT: the device did not end the transfer; to RAM, it may still
 * write the page, whose saved contents are then the caller's (*@stuck) to
 * put back once it ends.
 */
static int move_buffer(struct vmig_device *mdev, u64 scratch,
		       struct edu_state *st, bool to_ram, void **stuck)
{
	void *saved = kmalloc(PAGE_SIZE, GFP_KERNEL);
	int ret, ret2, stall = 0;

	if (!saved)
		return -ENOMEM;
	ret = guest_rw(mdev, scratch, saved, PAGE_SIZE, false);
	if (ret)
		goto out;
	if (to_ram) {
		if (IS_ENABLED(CONFIG_VFIO_MIG_TESTS))
			stall = xchg(&priv(mdev)->test_stall_save, 0);
		if (stall)
			ret = start_dma(mdev, EDU_CMD_TO_RAM, EDU_BUF_ADDR,
					scratch, EDU_BUF_DMA) ?: -ETIMEDOUT;
		else
			ret = run_dma(mdev, EDU_CMD_TO_RAM, EDU_BUF_ADDR,
				      scratch, EDU_BUF_DMA);
		if (!ret)
			ret = guest_rw(mdev, scratch, st->buf, EDU_BUF_DMA,
				       false);
		st->buf[EDU_BUF_DMA] = 0;
	} else {
		ret = guest_rw(mdev, scratch, st->buf, EDU_BUF_DMA, true);
		if (!ret)
			ret = run_dma(mdev, 0, scratch, EDU_BUF_ADDR,
				      EDU_BUF_DMA);
	}
	/*
	 * A transfer that failed may not have ended (a timeout, or a read of
	 * the engine that failed), and end yet: into the page once it is put
	 * back, or from it. The page goes back once the engine reads idle (a
	 * late end is a plain failure). To RAM, one that never ends keeps
	 * the page for the caller to put back later.
	 */
	if (ret && (stall == 2 || engine_idle(mdev))) {
		if (to_ram) {
			*stuck = saved;
			return -ETIMEDOUT;
		}
		guest_rw(mdev, scratch, saved, PAGE_SIZE, true);
		kfree(saved);
		return -ETIMEDOUT;
	}
	if (ret == -ETIMEDOUT)
		ret = -EIO;
	ret2 = guest_rw(mdev, scratch, saved, PAGE_SIZE, true);
	if (!ret)
		ret = ret2;
out:
	kfree(saved);
	return ret;
}

struct scratch_probe {
	struct vmig_device *mdev;
	u64 iova;
};

static int scratch_probe_fn(void *arg)
{
	struct scratch_probe *p = arg;
	u8 b;

	return guest_rw(p->mdev, p->iova, &b, 1, false);
}

/*
 * Probed from a worker: the caller may be a controller (/dev/vfio-mig),
 * whose mm is not the one that mapped the IOVA.
 */
static bool scratch_mapped(struct vmig_device *mdev, u64 iova)
{
	struct scratch_probe p = { .mdev = mdev, .iova = iova };

	return iova && !vmig_run_in_worker(scratch_probe_fn, &p);
}

/*
 * The guest page a migration borrows (Documentation/migration.rst): the
 * one named by debugfs, else the source's (@hint, on the target) if it is
 * mapped here, else the first page of a DMA-logged range, else IOVA 1 MiB
 * or 4 KiB if mapped; 0: none.
 */
static u64 pick_scratch(struct vmig_device *mdev, u64 hint)
{
	static const u64 probe[] = { SZ_1M, PAGE_SIZE };
	struct dt_range r;
	u64 iova;
	u32 i;

	iova = READ_ONCE(priv(mdev)->scratch);
	if (iova)
		return iova;
	if (scratch_ok(hint) && scratch_mapped(mdev, hint))
		return hint;
	for (i = 0; !vmig_dirty_range(mdev, i, &r); i++) {
		iova = max_t(u64, PAGE_ALIGN(r.iova), PAGE_SIZE);
		if (iova + PAGE_SIZE <= r.iova + r.length &&
		    iova + PAGE_SIZE - 1 <= EDU_DMA_MASK)
			return iova;
	}
	for (i = 0; i < ARRAY_SIZE(probe); i++)
		if (scratch_mapped(mdev, probe[i]))
			return probe[i];
	return 0;
}

/*
 * The page to borrow: a migration may look for one, debugfs names it; a
 * shadow's hand-back on a target may take the page the source's VMM
 * reserved (it was named there), if it is mapped here.
 */
static u64 ctx_scratch(struct vmig_profile_ctx *ctx, u64 hint)
{
	u64 named = READ_ONCE(priv(ctx->mdev)->scratch);

	if (ctx->flags & VMIG_SNAP_COMPLETE)
		return pick_scratch(ctx->mdev, hint);
	if (!named && ctx->flags & VMIG_SNAP_RESERVED && scratch_ok(hint) &&
	    scratch_mapped(ctx->mdev, hint))
		return hint;
	return named;
}

struct edu_work {
	struct vmig_profile_ctx *ctx;
	u64 scratch;
};

/* The source's blob, if it is one this version wrote. */
static struct edu_state *state_of(struct vmig_profile_ctx *ctx)
{
	struct edu_state *st = ctx->state;

	if (!st || ctx->state_version != EDU_STATE_VERSION ||
	    ctx->state_len != sizeof(*st) ||
	    le32_to_cpu(st->version) != EDU_STATE_VERSION ||
	    le32_to_cpu(st->flags) & ~(EDU_STATE_BUF | EDU_STATE_CMD |
				       EDU_STATE_EARLY) ||
	    le32_to_cpu(st->cmd) & ~(EDU_CMD_TO_RAM | EDU_CMD_IRQ))
		return NULL;
	return st;
}

struct dma_regs {
	u64 src, dst, count, cmd;
};

static int read_dma_regs(struct vmig_device *mdev, struct dma_regs *d)
{
	int ret;

	ret = rd(mdev, EDU_DMA_SRC, 8, &d->src);
	if (!ret)
		ret = rd(mdev, EDU_DMA_DST, 8, &d->dst);
	if (!ret)
		ret = rd(mdev, EDU_DMA_COUNT, 8, &d->count);
	if (!ret)
		ret = rd(mdev, EDU_DMA_CMD, 8, &d->cmd);
	return ret;
}

static int write_dma_addrs(struct vmig_device *mdev, const struct dma_regs *d)
{
	int ret;

	ret = wr(mdev, EDU_DMA_SRC, 8, d->src);
	if (!ret)
		ret = wr(mdev, EDU_DMA_DST, 8, d->dst);
	if (!ret)
		ret = wr(mdev, EDU_DMA_COUNT, 8, d->count);
	return ret;
}

/* The device shows the guest's command bits again (fix_cmd). */
static void clear_shown(struct vmig_device *mdev)
{
	down_write(&mdev->mig.dma.lock);
	set_shown(mdev, false);
	up_write(&mdev->mig.dma.lock);
}

/*
 * The command bits the guest sees, into @d->cmd; the id of the early state
 * the device still holds (0: none), if @flags say this stream carried it.
 * DMA is held: nothing changes them meanwhile.
 */
static u64 guest_view(struct vmig_device *mdev, u32 flags,
		      struct dma_regs *d)
{
	struct edu_priv *e = priv(mdev);
	u64 id;

	down_write(&mdev->mig.dma.lock);
	if (e->shown_valid)
		d->cmd = (d->cmd & ~(u64)(EDU_CMD_TO_RAM | EDU_CMD_IRQ)) |
			 e->shown_cmd;
	id = flags & VMIG_SNAP_EARLY ? e->early_id : 0;
	up_write(&mdev->mig.dma.lock);
	return id;
}

/* The engine's registers the guest wrote while the profile had it. */
static void eng_put(u8 *eng, u32 off, u64 v)
{
	__le64 le = cpu_to_le64(v);

	memcpy(&eng[off - EDU_DMA_SRC], &le, 8);
}

static u64 eng_get(const u8 *eng, u32 off)
{
	__le64 le;

	memcpy(&le, &eng[off - EDU_DMA_SRC], 8);
	return le64_to_cpu(le);
}

struct page_back {
	struct vmig_device *mdev;
	u64 iova;
	void *copy;
};

static int page_back_fn(void *arg)
{
	struct page_back *p = arg;

	return guest_rw(p->mdev, p->iova, p->copy, PAGE_SIZE, true);
}

/*
 * The engine reads idle: its address registers back to the guest's
 * values, and the page a save's stuck transfer kept put back (from a
 * worker: the caller may be a controller, whose mm is not the VMM's).
 * Under dma.lock.
 */
static int give_back(struct vmig_device *mdev)
{
	struct edu_priv *e = priv(mdev);
	struct page_back p = { .mdev = mdev, .iova = e->stuck_iova,
			       .copy = e->stuck_copy };
	struct dma_regs d = {};
	int ret;

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	if (!e->borrowed)
		return 0;
	d.src = eng_get(e->eng, EDU_DMA_SRC);
	d.dst = eng_get(e->eng, EDU_DMA_DST);
	d.count = eng_get(e->eng, EDU_DMA_COUNT);
	e->borrowed = false;
	if (p.copy) {
		e->stuck_copy = NULL;
		ret = vmig_run_in_worker(page_back_fn, &p);
		if (ret)
			pci_warn(mdev->core.pdev,
				 "edu: the guest page at IOVA %#llx a late transfer wrote was not put back: %d\n",
				 p.iova, ret);
		kfree(p.copy);
		vmig_dirty_mark(mdev, p.iova, PAGE_SIZE);
	}
	return write_dma_addrs(mdev, &d);
}

/*
 * The engine is the profile's from now on: the guest's address and count
 * registers @d are kept aside (and answered from), and its command bits
 * shown, until give_back(). Under dma.lock.
 */
static void lend_engine(struct vmig_device *mdev, const struct dma_regs *d)
{
	struct edu_priv *e = priv(mdev);

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	eng_put(e->eng, EDU_DMA_SRC, d->src);
	eng_put(e->eng, EDU_DMA_DST, d->dst);
	eng_put(e->eng, EDU_DMA_COUNT, d->count);
	if (!e->shown_valid)
		e->shown_cmd = d->cmd & (EDU_CMD_TO_RAM | EDU_CMD_IRQ);
	set_shown(mdev, true);
	e->borrowed = true;
}

/*
 * The profile's transfer at @scratch has not ended: the page counts as
 * written by a transfer in flight until the engine reads idle
 * (edu_inflight()), and its saved contents @copy (or NULL) go back then
 * (give_back()). Takes dma.lock.
 */
static void scratch_in_flight(struct vmig_device *mdev, u64 scratch,
			      void *copy)
{
	struct edu_priv *e = priv(mdev);

	down_write(&mdev->mig.dma.lock);
	e->inflight = (struct vmig_dma_range){
		.iova = scratch, .len = PAGE_SIZE, .to_ram = true,
	};
	e->inflight_valid = true;
	kfree(e->stuck_copy);
	e->stuck_copy = copy;
	e->stuck_iova = scratch;
	up_write(&mdev->mig.dma.lock);
	vmig_dirty_mark(mdev, scratch, PAGE_SIZE);
}

/*
 * A save's transfer that never ended: the engine ignores what is written
 * to it meanwhile, so it keeps the profile's addresses and command bits
 * until it reads idle, when it takes the guest's @d back and the page's
 * contents @copy go back (give_back(), from edu_quiesce() or
 * edu_unquiesce()); the guest reads its own registers meanwhile, as after
 * an early save that did not end. The page counts as written.
 */
static void engine_stuck(struct vmig_device *mdev, const struct dma_regs *d,
			 u64 scratch, void *copy)
{
	down_write(&mdev->mig.dma.lock);
	lend_engine(mdev, d);
	up_write(&mdev->mig.dma.lock);
	scratch_in_flight(mdev, scratch, copy);
	pci_warn(mdev->core.pdev,
		 "edu: the device did not end the save's transfer at IOVA %#llx: the page is the device's until it does\n",
		 scratch);
}

/*
 * Save, on the source, with the device stopped: the buffer through the
 * scratch page, then the source's DMA registers and interrupt status as
 * they were before; or, for a stream that carried the early state still
 * on the device, only a reference to it.
 */
static int edu_save_work(void *arg)
{
	struct edu_work *w = arg;
	struct vmig_profile_ctx *ctx = w->ctx;
	struct vmig_device *mdev = ctx->mdev;
	u64 scratch = w->scratch, irq, early;
	struct edu_state *st = ctx->state;
	struct edu_quiet q;
	struct dma_regs d;
	void *copy = NULL;
	int ret, ret2;

	if (!scratch_ok(scratch) && ctx->flags & VMIG_SNAP_COMPLETE) {
		pci_warn(mdev->core.pdev,
			 "edu: no guest page to borrow (needs a DMA-logged range or IOVA 1 MiB mapped, type1 container): the buffer cannot be saved\n");
		return -ENXIO;
	}
	ret = wait_idle(mdev);
	/* a save or early save that timed out before: the engine is idle now */
	if (!ret && READ_ONCE(priv(mdev)->borrowed)) {
		down_write(&mdev->mig.dma.lock);
		ret = give_back(mdev);
		up_write(&mdev->mig.dma.lock);
	}
	if (!ret)
		ret = read_dma_regs(mdev, &d);
	if (!ret)
		ret = rd(mdev, EDU_IRQ_STATUS, 4, &irq);
	if (ret)
		return ret;
	early = guest_view(mdev, ctx->flags, &d);
	st->version = cpu_to_le32(EDU_STATE_VERSION);
	st->scratch = cpu_to_le64(scratch);
	st->cmd = cpu_to_le32(d.cmd & (EDU_CMD_TO_RAM | EDU_CMD_IRQ));
	st->flags = cpu_to_le32(EDU_STATE_CMD);
	st->reserved = 0;
	st->early_id = 0;
	ctx->state_len = sizeof(*st);
	/* a migration whose target loaded the buffer already: nothing moves */
	if (early && ctx->flags & VMIG_SNAP_COMPLETE) {
		st->flags = cpu_to_le32(EDU_STATE_CMD | EDU_STATE_EARLY);
		st->early_id = cpu_to_le64(early);
		return 0;
	}
	if (scratch_ok(scratch)) {
		quiet(mdev, &q);
		ret = move_buffer(mdev, scratch, st, true, &copy);
		if (!ret)
			st->flags = cpu_to_le32(EDU_STATE_BUF | EDU_STATE_CMD);
		if (ret == -ETIMEDOUT) {
			/* the busy engine would ignore the guest's values */
			engine_stuck(mdev, &d, scratch, copy);
		} else {
			/* the device's bits and addresses back, also on failure */
			ret2 = fix_cmd(mdev, scratch,
				       d.cmd & (EDU_CMD_TO_RAM | EDU_CMD_IRQ),
				       ret ? NULL : &st->buf[0]);
			if (!ret2)
				clear_shown(mdev);
			ret = ret ?: ret2;
			ret2 = write_dma_addrs(mdev, &d);
			ret = ret ?: ret2;
		}
		/* fix_cmd's transfer may have raised the DMA interrupt */
		if (!(irq & EDU_IRQ_DMA)) {
			ret2 = wr(mdev, EDU_IRQ_ACK, 4, EDU_IRQ_DMA);
			ret = ret ?: ret2;
		}
		unquiet(mdev, &q);
	}
	return ret;
}

static int edu_save(struct vmig_profile_ctx *ctx)
{
	struct edu_work w = { .ctx = ctx };

	if (!ctx->state)	/* registers only */
		return 0;
	w.scratch = ctx_scratch(ctx, 0);
	return vmig_run_in_worker(edu_save_work, &w);
}

/*
 * Early state (VFIO_MIG_CTL_PREPARE), on the source with the guest
 * running and its DMA starts held: the buffer through the named page, by
 * the profile's own transfer. Meanwhile the guest's writes to the
 * engine's address and count registers are kept aside and its reads
 * answered from them (@borrowed); afterwards the command register keeps
 * showing the guest its own direction and interrupt bits (@shown_cmd)
 * until its next start. The transfer raises no interrupt.
 */
struct edu_early {
	struct vmig_device *mdev;
	u64 scratch;
	struct edu_state *st;
	u64 id;
};

/* The guest's device must master the bus: else its DMA goes nowhere. */
static bool masters(struct vmig_device *mdev)
{
	u16 cmd;

	pci_read_config_word(mdev->core.pdev, PCI_COMMAND, &cmd);
	return (cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) ==
	       (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/*
 * Can early state move now? A page the VMM named to borrow (on both
 * sides); on the source, a device that masters the bus, else its DMA
 * goes nowhere (the caller keeps the command register as it is until
 * the save ends).
 */
static int edu_early_ready(struct vmig_device *mdev, bool load)
{
	u16 cmd;

	if (!scratch_ok(READ_ONCE(priv(mdev)->scratch)))
		return -ENXIO;
	if (load)
		return 0;
	pci_read_config_word(mdev->core.pdev, PCI_COMMAND, &cmd);
	return cmd & PCI_COMMAND_MASTER ? 0 : -EAGAIN;
}

static int edu_early_save_work(void *arg)
{
	struct edu_early *x = arg;
	struct vmig_device *mdev = x->mdev;
	struct edu_priv *e = priv(mdev);
	void *copy = NULL;
	struct dma_regs d;
	int ret, ret2;

	down_write(&mdev->mig.dma.lock);
	/* an earlier save that timed out still holds them */
	ret = e->borrowed ? -EBUSY :
	      masters(mdev) ? read_dma_regs(mdev, &d) : -EAGAIN;
	if (!ret && d.cmd & EDU_CMD_RUN)	/* DMA is held: cannot be */
		ret = -EBUSY;
	if (!ret)
		lend_engine(mdev, &d);
	up_write(&mdev->mig.dma.lock);
	if (ret)
		return ret;

	ret = move_buffer(mdev, x->scratch, x->st, true, &copy);
	/*
	 * A transfer that did not end must not meet the guest's: the
	 * engine ignores what is written to it meanwhile. Its registers
	 * stay borrowed until it reads idle (edu_quiesce(), or
	 * edu_unquiesce() on the way back), and the scratch page counts as
	 * written by a transfer in flight until then (edu_inflight()).
	 */
	if ((IS_ENABLED(CONFIG_VFIO_MIG_TESTS) && xchg(&e->test_stall, false)) ||
	    ret == -ETIMEDOUT) {
		/* the VMM's reserved page: put back once the engine is idle */
		scratch_in_flight(mdev, x->scratch, copy);
		return -ETIMEDOUT;
	}
	/* it did end (move_buffer() waits for a late end): DMA released */
	down_write(&mdev->mig.dma.lock);
	ret2 = give_back(mdev);
	ret = ret ?: ret2;
	if (!ret) {
		x->st->cmd = cpu_to_le32(e->shown_cmd);
		e->early_id = x->id;
	}
	up_write(&mdev->mig.dma.lock);
	/* its bytes went through the device and back: send it again */
	vmig_dirty_mark(mdev, x->scratch, PAGE_SIZE);
	return ret;
}

static int edu_early_save(struct vmig_device *mdev, void *blob, u32 *len)
{
	struct edu_early x = { .mdev = mdev, .st = blob };
	u16 window;
	int ret;

	if (*len < sizeof(*x.st))
		return -ENOSPC;
	/* the guest runs: only a page its VMM keeps unused will do */
	x.scratch = READ_ONCE(priv(mdev)->scratch);
	if (!scratch_ok(x.scratch))
		return -ENXIO;
	x.id = get_random_u64() | 1;
	memset(x.st, 0, sizeof(*x.st));
	window = vmig_decode_open(mdev);
	ret = vmig_run_in_worker(edu_early_save_work, &x);
	vmig_decode_close(mdev, window);
	if (ret)
		return ret;
	x.st->version = cpu_to_le32(EDU_STATE_VERSION);
	x.st->flags = cpu_to_le32(EDU_STATE_BUF | EDU_STATE_CMD);
	x.st->scratch = cpu_to_le64(x.scratch);
	x.st->early_id = cpu_to_le64(x.id);
	*len = sizeof(*x.st);
	return 0;
}

static int edu_early_load_work(void *arg)
{
	struct edu_early *x = arg;
	struct vmig_device *mdev = x->mdev;
	struct edu_quiet q;
	int ret;

	ret = wait_idle(mdev);
	if (ret)
		return ret;
	quiet(mdev, &q);
	ret = move_buffer(mdev, x->scratch, x->st, false, NULL);
	if (!ret)
		ret = fix_cmd(mdev, x->scratch, le32_to_cpu(x->st->cmd),
			      &x->st->buf[0]);
	/* the restore raises the source's; none of fix_cmd's may stay */
	if (!ret)
		ret = wr(mdev, EDU_IRQ_ACK, 4, 0xffffffff);
	unquiet(mdev, &q);
	return ret;
}

static int edu_early_load(struct vmig_device *mdev, const void *blob, u32 len)
{
	const struct edu_state *in = blob;
	struct edu_priv *e = priv(mdev);
	struct edu_early x = { .mdev = mdev };
	u16 window;
	int ret;

	if (len != sizeof(*in) ||
	    le32_to_cpu(in->version) != EDU_STATE_VERSION ||
	    le32_to_cpu(in->flags) != (EDU_STATE_BUF | EDU_STATE_CMD) ||
	    in->reserved || !in->early_id || in->buf[EDU_BUF_DMA] ||
	    le32_to_cpu(in->cmd) & ~(EDU_CMD_TO_RAM | EDU_CMD_IRQ))
		return -EINVAL;
	/*
	 * Only a page the target's VMM named: guest RAM may still arrive
	 * meanwhile, into any other.
	 */
	x.scratch = READ_ONCE(e->scratch);
	if (!scratch_ok(x.scratch))
		return -ENXIO;
	/* move_buffer() reads the blob: a copy the worker may use */
	x.st = kmemdup(in, sizeof(*in), GFP_KERNEL);
	if (!x.st)
		return -ENOMEM;
	down_write(&mdev->mig.dma.lock);
	e->loaded_id = 0;
	up_write(&mdev->mig.dma.lock);
	window = vmig_decode_open(mdev);
	ret = vmig_run_in_worker(edu_early_load_work, &x);
	vmig_decode_close(mdev, window);
	if (!ret) {
		down_write(&mdev->mig.dma.lock);
		e->loaded_id = le64_to_cpu(in->early_id);
		up_write(&mdev->mig.dma.lock);
	}
	kfree(x.st);
	return ret;
}

/* The operand whose factorial the device shows: see step 4. */
static int fact_operand(const struct vmig_snapshot *s, u32 result,
			bool computing, u32 *n)
{
	const struct vmig_reg_value *hint;
	u32 i;

	if (computing) {	/* the register still holds the operand */
		*n = result;
		return 0;
	}
	hint = vmig_snap_regfile(s, 0, EDU_FACTORIAL, 4);
	if (hint && hint->value <= EDU_FACT_MAX &&
	    edu_fact32(hint->value) == result) {
		*n = hint->value;
		return 0;
	}
	for (i = 0; i <= EDU_FACT_MAX; i++) {
		if (edu_fact32(i) == result) {
			*n = i;
			return 0;
		}
	}
	return -ERANGE;
}

struct edu_caps {
	u64 live, fact, status, irq;
	struct dma_regs d;
};

static int captured(struct vmig_profile_ctx *ctx, u32 off, u8 width, u64 *v)
{
	const struct vmig_reg_value *r = vmig_snap_read(ctx->src, 0, off,
							 width);

	if (!r) {
		vmig_report_error(ctx->report, 0, off, width, -ENODATA);
		return -ENODATA;
	}
	*v = r->value;
	return 0;
}

/* Write @val, read back and compare with @expect; report a mismatch. */
static void restore_reg(struct vmig_profile_ctx *ctx, u32 off, u8 width,
			u64 val, u64 expect)
{
	struct vmig_device *mdev = ctx->mdev;
	u64 back;
	int ret;

	ret = wr(mdev, off, width, val);
	if (!ret)
		ret = rd(mdev, off, width, &back);
	if (!ret && back != expect)
		ret = -EIO;
	if (ret)
		vmig_report_error(ctx->report, 0, off, width, ret);
	else
		ctx->report->applied++;
}

/*
 * Steps 2 and 3. Not the buffer if a staged restore put it on the device
 * (VMIG_SNAP_STAGED), or if the blob has none and the device kept its own
 * (a shadow that never had it: STAGE and STAGED).
 */
static void restore_buffer_and_cmd(struct vmig_profile_ctx *ctx, u64 scratch,
				   const struct edu_caps *c)
{
	struct edu_state *st = state_of(ctx);
	u32 flags = st ? le32_to_cpu(st->flags) : 0;
	bool have = flags & EDU_STATE_BUF;
	struct vmig_device *mdev = ctx->mdev;
	u64 cmd = c->d.cmd;
	bool ok = false;
	int ret;

	if (flags & EDU_STATE_CMD)
		cmd = (cmd & EDU_CMD_RUN) | le32_to_cpu(st->cmd);
	if (flags & EDU_STATE_EARLY) {
		/* loaded as the early record arrived, unless changed since */
		down_write(&mdev->mig.dma.lock);
		ok = !have && st->early_id && ctx->flags & VMIG_SNAP_EARLY &&
		     le64_to_cpu(st->early_id) == priv(mdev)->loaded_id;
		up_write(&mdev->mig.dma.lock);
		if (ok)
			ctx->report->applied++;
		else
			vmig_report_error(ctx->report, VMIG_BAR_DEVSTATE,
					  EDU_ITEM_BUFFER, 0, -ENODATA);
	} else if (ctx->flags & VMIG_SNAP_STAGED ||
	    (ctx->flags & VMIG_SNAP_STAGE && !have)) {
		ok = true;
	} else if (!have) {
		vmig_report_error(ctx->report, VMIG_BAR_DEVSTATE,
				  EDU_ITEM_BUFFER, 0, -ENODATA);
	} else if (!scratch_ok(scratch)) {
		vmig_report_error(ctx->report, VMIG_BAR_DEVSTATE,
				  EDU_ITEM_BUFFER, 0, -ENXIO);
	} else {
		ret = move_buffer(mdev, scratch, st, false, NULL);
		if (ret) {
			vmig_report_error(ctx->report, VMIG_BAR_DEVSTATE,
					  EDU_ITEM_BUFFER, 0, ret);
		} else {
			ok = true;
			ctx->report->applied++;
		}
	}

	if (cmd & EDU_CMD_RUN)	/* a transfer was in flight */
		ret = -EINPROGRESS;
	else if (!ok)
		ret = -ENODATA;
	else
		ret = fix_cmd(mdev, scratch,
			      cmd & (EDU_CMD_TO_RAM | EDU_CMD_IRQ),
			      have ? &st->buf[0] : NULL);
	if (ret)
		vmig_report_error(ctx->report, VMIG_BAR_DEVSTATE,
				  EDU_ITEM_DMA_CMD, 0, ret);
}

/*
 * Step 4; not if a staged restore left the result on the device and
 * nothing computes.
 */
static void restore_factorial(struct vmig_profile_ctx *ctx,
			      const struct edu_caps *c)
{
	bool irq = c->status & EDU_STATUS_IRQFACT &&
		   !(ctx->flags & VMIG_SNAP_STAGE);
	struct vmig_device *mdev = ctx->mdev;
	u64 fact, status;
	u32 n;
	int ret;

	if (ctx->flags & VMIG_SNAP_STAGED &&
	    !(c->status & EDU_STATUS_COMPUTING) &&
	    !rd(mdev, EDU_FACTORIAL, 4, &fact) &&
	    !rd(mdev, EDU_STATUS, 4, &status) && fact == c->fact &&
	    !(status & EDU_STATUS_COMPUTING)) {
		ctx->report->applied++;
		return;
	}
	/*
	 * The device's factorial thread clears the computing bit and only
	 * then looks at the interrupt-enable bit, possibly after our poll saw
	 * it clear: the bit is set before the computation starts, to what
	 * step 7 gives it, and if set, the thread is done once its interrupt
	 * shows (silenced since step 1; step 7 acknowledges it): one from
	 * before is acknowledged first. A staged restore sets it only at its
	 * second call.
	 */
	ret = wr(mdev, EDU_STATUS, 4, irq ? EDU_STATUS_IRQFACT : 0);
	if (!ret && irq)
		ret = wr(mdev, EDU_IRQ_ACK, 4, EDU_IRQ_FACT);
	if (!ret)
		ret = fact_operand(ctx->src, c->fact,
				   c->status & EDU_STATUS_COMPUTING, &n);
	if (!ret)
		ret = wr(mdev, EDU_FACTORIAL, 4, n);
	if (!ret)
		ret = wait_clear(mdev, EDU_STATUS, 4, EDU_STATUS_COMPUTING,
				 1000);
	if (!ret && irq)
		ret = wait_bit(mdev, EDU_IRQ_STATUS, 4, EDU_IRQ_FACT, true,
			       1000);
	if (!ret && !(c->status & EDU_STATUS_COMPUTING)) {
		ret = rd(mdev, EDU_FACTORIAL, 4, &fact);
		if (!ret && fact != c->fact)
			ret = -EIO;
	}
	if (ret)
		vmig_report_error(ctx->report, 0, EDU_FACTORIAL, 4, ret);
	else
		ctx->report->applied++;
}

static int edu_restore_work(void *arg)
{
	struct edu_work *w = arg;
	struct vmig_profile_ctx *ctx = w->ctx;
	struct vmig_device *mdev = ctx->mdev;
	struct edu_quiet q;
	struct edu_caps c;
	int ret;

	if (captured(ctx, EDU_LIVENESS, 4, &c.live) ||
	    captured(ctx, EDU_FACTORIAL, 4, &c.fact) ||
	    captured(ctx, EDU_STATUS, 4, &c.status) ||
	    captured(ctx, EDU_IRQ_STATUS, 4, &c.irq) ||
	    captured(ctx, EDU_DMA_SRC, 8, &c.d.src) ||
	    captured(ctx, EDU_DMA_DST, 8, &c.d.dst) ||
	    captured(ctx, EDU_DMA_COUNT, 8, &c.d.count) ||
	    captured(ctx, EDU_DMA_CMD, 8, &c.d.cmd))
		return -ENODATA;

	ret = wait_idle(mdev);
	if (ret) {
		vmig_report_error(ctx->report, VMIG_BAR_DEVSTATE,
				  EDU_ITEM_IDLE, 0, ret);
		return ret;
	}
	quiet(mdev, &q);
	restore_buffer_and_cmd(ctx, w->scratch, &c);
	restore_factorial(ctx, &c);
	if (ctx->flags & VMIG_SNAP_STAGE) {
		/* steps 5 to 8 come with VMIG_SNAP_STAGED */
		ret = wr(mdev, EDU_IRQ_ACK, 4, 0xffffffff);
		unquiet(mdev, &q);
		if (ret)
			vmig_report_error(ctx->report, 0, EDU_IRQ_STATUS, 4,
					  ret);
		return 0;
	}

	restore_reg(ctx, EDU_LIVENESS, 4, ~c.live & 0xffffffff, c.live);
	restore_reg(ctx, EDU_DMA_SRC, 8, c.d.src, c.d.src);
	restore_reg(ctx, EDU_DMA_DST, 8, c.d.dst, c.d.dst);
	restore_reg(ctx, EDU_DMA_COUNT, 8, c.d.count, c.d.count);
	restore_reg(ctx, EDU_STATUS, 4, c.status & EDU_STATUS_IRQFACT,
		    c.status & EDU_STATUS_IRQFACT);
	ret = wr(mdev, EDU_IRQ_ACK, 4, 0xffffffff);
	unquiet(mdev, &q);

	/*
	 * A factorial the source was still computing ended here, in step 4:
	 * with its interrupt enabled, the guest is owed that interrupt too.
	 */
	if ((c.status & (EDU_STATUS_COMPUTING | EDU_STATUS_IRQFACT)) ==
	    (EDU_STATUS_COMPUTING | EDU_STATUS_IRQFACT))
		c.irq |= EDU_IRQ_FACT;
	if (!ret && c.irq)
		ret = wr(mdev, EDU_IRQ_RAISE, 4, c.irq);
	if (ret)
		vmig_report_error(ctx->report, 0, EDU_IRQ_STATUS, 4, ret);
	else
		ctx->report->applied++;
	return 0;
}

/*
 * A version 2 blob, as a version 3 one: the buffer (flag BUF, the only
 * one it had) and the page the source borrowed; the command bits are the
 * captured register's. NULL: not one, or no memory (then the restore
 * finds no blob it knows and says so).
 */
static struct edu_state *from_v2(const struct vmig_profile_ctx *ctx)
{
	const struct edu_state_v2 *o = ctx->state;
	struct edu_state *st;

	if (!o || ctx->state_version != EDU_STATE_VERSION_V2 ||
	    ctx->state_len != sizeof(*o) ||
	    le32_to_cpu(o->version) != EDU_STATE_VERSION_V2 ||
	    le32_to_cpu(o->flags) & ~EDU_STATE_BUF)
		return NULL;
	st = kzalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return NULL;
	st->version = cpu_to_le32(EDU_STATE_VERSION);
	st->flags = o->flags;
	st->scratch = o->scratch;
	memcpy(st->buf, o->buf, sizeof(st->buf));
	return st;
}

static int edu_restore(struct vmig_profile_ctx *ctx)
{
	struct edu_state *st, *v3 = from_v2(ctx);
	struct edu_work w = { .ctx = ctx };
	void *state = ctx->state;
	u32 state_len = ctx->state_len;
	u32 state_version = ctx->state_version;
	int ret;

	if (v3) {
		ctx->state = v3;
		ctx->state_len = sizeof(*v3);
		ctx->state_version = EDU_STATE_VERSION;
	}
	st = state_of(ctx);
	w.scratch = ctx_scratch(ctx, st ? le64_to_cpu(st->scratch) : 0);
	ret = vmig_run_in_worker(edu_restore_work, &w);
	ctx->state = state;
	ctx->state_len = state_len;
	ctx->state_version = state_version;
	kfree(v3);
	/*
	 * An early state loaded is used up (or was not this stream's); the
	 * device's own command bits are the restored ones now.
	 */
	down_write(&ctx->mdev->mig.dma.lock);
	priv(ctx->mdev)->loaded_id = 0;
	priv(ctx->mdev)->early_id = 0;
	set_shown(ctx->mdev, false);
	up_write(&ctx->mdev->mig.dma.lock);
	return ret;
}

/*
 * For dirty tracking: command @cmd with the start and to-RAM bits makes the
 * device write [dst, dst + count) of guest IOVA, from the address
 * registers as the device holds them now. The count is the guest's: the
 * device moves at most its buffer (a larger count is not passed to it,
 * edu_issue()), so no more is marked.
 */
static bool edu_dma_decode(struct vmig_device *mdev, u32 cmd,
			   struct vmig_dma_range *r)
{
	u64 dst, cnt;

	if ((cmd & (EDU_CMD_RUN | EDU_CMD_TO_RAM)) !=
	    (EDU_CMD_RUN | EDU_CMD_TO_RAM))
		return false;
	if (rd(mdev, EDU_DMA_DST, 8, &dst) || rd(mdev, EDU_DMA_COUNT, 8, &cnt))
		return false;
	r->iova = dst & EDU_DMA_MASK;
	r->len = min_t(u64, cnt, EDU_BUF_SIZE);
	r->to_ram = true;
	return true;
}

static int edu_quiesce(struct vmig_device *mdev, unsigned int ms)
{
	u64 cmd;
	int ret;

	if (ms) {
		if (IS_ENABLED(CONFIG_VFIO_MIG_TESTS) &&
		    xchg(&priv(mdev)->test_stall_quiesce, false))
			return -ETIMEDOUT;
		ret = wait_clear(mdev, EDU_DMA_CMD, 8, EDU_CMD_RUN, ms);
		/* and a factorial (microseconds), so that a capture reads a result */
		ret = ret ?: wait_clear(mdev, EDU_STATUS, 4,
					EDU_STATUS_COMPUTING, min(ms, 100U));
		/*
		 * An early save that timed out left the guest's address
		 * registers aside: idle now, the engine takes them back
		 * before anything captures it. Callers hold no DMA lock.
		 */
		if (!ret && READ_ONCE(priv(mdev)->borrowed)) {
			down_write(&mdev->mig.dma.lock);
			ret = give_back(mdev);
			up_write(&mdev->mig.dma.lock);
		}
		return ret;
	}
	ret = rd(mdev, EDU_DMA_CMD, 8, &cmd);
	if (ret)
		return ret;
	return cmd & EDU_CMD_RUN ? -ETIMEDOUT : 0;
}

/*
 * A start reaches the device: its guest range is declared to the dirty
 * log first, and remembered until the engine reads idle. A start whose
 * pages cannot be pinned is dropped (logged, not written); one the device
 * would not make (edu_dma_fits()) is dropped unlogged: it changes nothing
 * there, and would stop the VM on QEMU 7.2.
 */
static enum vmig_db_verdict edu_issue(struct vmig_device *mdev,
				      const struct vmig_held_write *w)
{
	bool to_ram = w->value & EDU_CMD_TO_RAM;
	struct edu_priv *e = priv(mdev);
	struct vmig_dma_range r;
	u64 dev, cnt;

	if (!rd(mdev, to_ram ? EDU_DMA_SRC : EDU_DMA_DST, 8, &dev) &&
	    !rd(mdev, EDU_DMA_COUNT, 8, &cnt) && !edu_dma_fits(dev, cnt)) {
		dev_warn_ratelimited(&mdev->core.pdev->dev,
				     "edu: a transfer of %llu bytes at buffer address %#llx is outside the buffer: not made\n",
				     cnt, dev);
		return VMIG_DB_DROP;
	}
	if (edu_dma_decode(mdev, w->value, &r) && r.to_ram) {
		if (vmig_dma_start(mdev, &r))
			return VMIG_DB_HOLD;
		e->inflight = r;
		e->inflight_valid = true;
	}
	/* the start sets the command bits, and may change the buffer */
	set_shown(mdev, false);
	e->early_id = 0;
	e->loaded_id = 0;
	return VMIG_DB_FORWARD;
}

static bool is_start(const struct vmig_held_write *w)
{
	return w->bar == 0 && w->offset == EDU_DMA_CMD && w->width == 4 &&
	       (w->value & EDU_CMD_RUN);
}

static enum vmig_db_verdict edu_doorbell(struct vmig_device *mdev,
					 const struct vmig_held_write *w,
					 bool held)
{
	struct edu_priv *e = priv(mdev);

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	/* the device ignores its engine while it transfers */
	if (held && e->nr_held)
		return VMIG_DB_DROP;
	if (e->borrowed && !is_start(w)) {
		/*
		 * The profile's transfer has the engine: kept aside (and
		 * logged), as the device takes them, 4 or 8 bytes.
		 */
		if (w->offset >= EDU_DMA_SRC &&
		    w->offset + w->width <= EDU_DMA_CMD &&
		    (w->width == 4 || w->width == 8)) {
			__le64 le = cpu_to_le64(w->value);

			memcpy(&e->eng[w->offset - EDU_DMA_SRC], &le,
			       w->width);
		}
		return VMIG_DB_HOLD;
	}
	if (!is_start(w))
		return VMIG_DB_FORWARD;
	if (held) {
		e->held[e->nr_held++] = *w;
		return VMIG_DB_HOLD;
	}
	return edu_issue(mdev, w);
}

/*
 * While DMA is held with the guest running (a shadow's engage, a prepared
 * switchover), the command register of a held start reads as the device
 * would show it had the start reached it: running, so the guest's poll
 * waits for it. After an early save, until the guest's next start, it
 * reads with the guest's own direction and interrupt bits; during it, the
 * address and count registers read as the guest wrote them.
 */
static bool edu_held_read(struct vmig_device *mdev, u8 bar, u64 off,
			  u8 width, u64 *val)
{
	struct edu_priv *e = priv(mdev);

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	if (bar)
		return false;
	if (e->borrowed && off >= EDU_DMA_SRC && off + width <= EDU_DMA_CMD) {
		__le64 le = 0;

		memcpy(&le, &e->eng[off - EDU_DMA_SRC], width);
		*val = le64_to_cpu(le);
		return true;
	}
	/* the register as the device answers it: 4 or 8 bytes at its start */
	if (off != EDU_DMA_CMD || (width != 4 && width != 8))
		return false;
	if (e->nr_held)
		*val = e->held[0].value;
	else if (e->shown_valid)
		*val = e->shown_cmd;
	else
		return false;
	if (width == 4)
		*val = lower_32_bits(*val);
	return true;
}

static void edu_unquiesce(struct vmig_device *mdev, bool issue)
{
	struct edu_priv *e = priv(mdev);
	const struct vmig_held_write *w;
	u32 i;
	int ret;

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	/*
	 * An early save that timed out left the guest's addresses aside:
	 * they go back once the engine reads idle. If it does not, or they
	 * cannot, a kept start would be ignored by the busy engine or run
	 * on the profile's addresses: the starts are dropped, and said so.
	 */
	if (e->borrowed) {
		ret = engine_idle(mdev) ?: give_back(mdev);
		if (ret) {
			pci_warn(mdev->core.pdev,
				 "%u held DMA starts dropped: the device did not end the profile's transfer (%d)\n",
				 e->nr_held, ret);
			e->borrowed = false;
			issue = false;
		}
	}
	for (i = 0; issue && i < e->nr_held; i++) {
		w = &e->held[i];
		if (edu_issue(mdev, w) != VMIG_DB_FORWARD)
			continue;
		ret = vmig_bar_write(mdev, w->bar, w->offset, w->width,
				     w->value);
		if (ret)
			pci_warn(mdev->core.pdev,
				 "held DMA start at BAR%u %#x not issued: %d\n",
				 w->bar, w->offset, ret);
	}
	e->nr_held = 0;
}

static void edu_reset(struct vmig_device *mdev)
{
	struct edu_priv *e = priv(mdev);

	e->nr_held = 0;
	e->inflight_valid = false;
	e->borrowed = false;
	/* a stuck transfer's page: the VMM's to restore after a reset */
	kfree(e->stuck_copy);
	e->stuck_copy = NULL;
	set_shown(mdev, false);
	e->early_id = 0;
	e->loaded_id = 0;
	/* a test hook left armed (its test failed first) ends with the VMM */
	WRITE_ONCE(e->test_stall, false);
	WRITE_ONCE(e->test_stall_quiesce, false);
	WRITE_ONCE(e->test_stall_save, 0);
	WRITE_ONCE(e->test_peer_fail, false);
}

/*
 * Only a read that shows the engine idle ends the transfer: an unreadable
 * device (memory decoding off, low power) may still write, and one whose
 * bus mastering is off resumes when it is back on. Close and reset clear
 * it.
 */
static bool edu_inflight(struct vmig_device *mdev, struct vmig_dma_range *r)
{
	struct edu_priv *e = priv(mdev);

	if (!e->inflight_valid)
		return false;
	if (!edu_quiesce(mdev, 0)) {
		e->inflight_valid = false;
		vmig_pin_drop(mdev, 0, 0);
		return false;
	}
	*r = e->inflight;
	return true;
}

/* HELD_WRITES: struct vmig_stream_held[], the start commands in order. */
static u32 edu_held_save(struct vmig_device *mdev, void *buf)
{
	struct edu_priv *e = priv(mdev);
	struct vmig_stream_held *h = buf;
	u32 i;

	for (i = 0; i < e->nr_held; i++) {
		h[i].value = cpu_to_le64(e->held[i].value);
		h[i].offset = cpu_to_le32(e->held[i].offset);
		h[i].bar = e->held[i].bar;
		h[i].width = e->held[i].width;
		h[i].reserved = 0;
	}
	return e->nr_held * sizeof(*h);
}

static int edu_held_load(struct vmig_device *mdev, const void *buf, u32 len,
			 bool apply)
{
	const struct vmig_stream_held *h = buf;
	struct edu_priv *e = priv(mdev);
	u32 i, n = len / sizeof(*h);
	struct vmig_held_write w;

	if (len % sizeof(*h) || n > EDU_MAX_HELD)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		w.value = le64_to_cpu(h[i].value);
		w.offset = le32_to_cpu(h[i].offset);
		w.bar = h[i].bar;
		w.width = h[i].width;
		/* only what the trap path itself would have held */
		if (h[i].reserved || !is_start(&w) || w.value > U32_MAX)
			return -EINVAL;
		if (apply)
			e->held[i] = w;
	}
	if (apply)
		e->nr_held = n;
	return 0;
}

/* A shadow serves the guest: its interrupt status is the shadow's. */
static void edu_park(struct vmig_device *mdev)
{
	if (wr(mdev, EDU_IRQ_ACK, 4, 0xffffffff))
		pci_warn(mdev->core.pdev,
			 "edu: interrupt status not acknowledged for the shadow\n");
}

/*
 * debugfs TEST INTERFACE: "scratch IOVA", the guest page to borrow; in
 * test builds "stall-early", "stall-quiesce", "stall-save",
 * "stall-save-stuck" and "peer-stop-fail", see edu_priv.test_stall,
 * test_stall_quiesce, test_stall_save and test_peer_fail.
 */
static int edu_ctl(struct vmig_device *mdev, const char *cmd)
{
	u64 iova;
	int ret;

	if (IS_ENABLED(CONFIG_VFIO_MIG_TESTS) && !strcmp(cmd, "stall-early")) {
		WRITE_ONCE(priv(mdev)->test_stall, true);
		return 0;
	}
	if (IS_ENABLED(CONFIG_VFIO_MIG_TESTS) &&
	    !strcmp(cmd, "stall-quiesce")) {
		WRITE_ONCE(priv(mdev)->test_stall_quiesce, true);
		return 0;
	}
	if (IS_ENABLED(CONFIG_VFIO_MIG_TESTS) && !strcmp(cmd, "stall-save")) {
		WRITE_ONCE(priv(mdev)->test_stall_save, 1);
		return 0;
	}
	if (IS_ENABLED(CONFIG_VFIO_MIG_TESTS) &&
	    !strcmp(cmd, "stall-save-stuck")) {
		WRITE_ONCE(priv(mdev)->test_stall_save, 2);
		return 0;
	}
	if (IS_ENABLED(CONFIG_VFIO_MIG_TESTS) &&
	    !strcmp(cmd, "peer-stop-fail")) {
		WRITE_ONCE(priv(mdev)->test_peer_fail, true);
		return 0;
	}
	if (!str_has_prefix(cmd, "scratch "))
		return -EINVAL;
	ret = kstrtou64(skip_spaces(cmd + 8), 0, &iova);
	if (ret)
		return ret;
	if (!IS_ALIGNED(iova, PAGE_SIZE))
		return -EINVAL;
	WRITE_ONCE(priv(mdev)->scratch, iova);
	return 0;
}

static void edu_counters_show(struct vmig_device *mdev, struct seq_file *m)
{
	struct edu_priv *e = priv(mdev);

	seq_printf(m, "edu_own_transfers: %lld\n",
		   (long long)atomic64_read(&e->own_transfers));
	if (!IS_ENABLED(CONFIG_VFIO_MIG_TESTS))
		return;
	seq_printf(m, "edu_test_peer_stops: %d\n",
		   atomic_read(&e->test_peer_stops));
	seq_printf(m, "edu_test_peer_resumes: %d\n",
		   atomic_read(&e->test_peer_resumes));
	seq_printf(m, "edu_test_peer_engaged: %d\n",
		   atomic_read(&e->test_peer_engaged));
}

/*
 * Test builds only: an edu has no link peer, but the shadow's calls of the
 * peer_quiesce op are counted (and a stop made to fail), as a network
 * adapter's profile would see them.
 */
static int edu_test_peer_quiesce(struct vmig_device *mdev, bool stop,
				 unsigned int ms)
{
	struct edu_priv *e = priv(mdev);

	if (vmig_shadow_engaged(mdev))
		atomic_inc(&e->test_peer_engaged);
	if (!stop) {
		atomic_inc(&e->test_peer_resumes);
		return 0;
	}
	atomic_inc(&e->test_peer_stops);
	return xchg(&e->test_peer_fail, false) ? -ETIMEDOUT : 0;
}

static u32 edu_state_size(const struct vmig_profile *p)
{
	return sizeof(struct edu_state);
}

/* The DMA engine: source, destination, count and command registers. */
static const struct vmig_doorbell edu_doorbell_block = {
	.bar = 0,
	.start = EDU_DMA_SRC,
	.end = EDU_DMA_CMD + 8,
};

static const struct vmig_profile_dev_ops edu_ops = {
	.reset = edu_reset,
	.quiesce = edu_quiesce,
	.unquiesce = edu_unquiesce,
	.save = edu_save,
	.restore = edu_restore,
	.early_ready = edu_early_ready,
	.early_save = edu_early_save,
	.early_load = edu_early_load,
	.state_size = edu_state_size,
	.park = edu_park,
	.ctl = edu_ctl,
	.counters_show = edu_counters_show,
	.peer_quiesce = IS_ENABLED(CONFIG_VFIO_MIG_TESTS) ?
			edu_test_peer_quiesce : NULL,
};

static const struct vmig_profile_dma_ops edu_dma_ops = {
	.doorbell = edu_doorbell,
	.inflight = edu_inflight,
	.held_save = edu_held_save,
	.held_load = edu_held_load,
	.held_max = EDU_MAX_HELD * sizeof(struct vmig_stream_held),
	.held_read = edu_held_read,
};

const struct vmig_profile vmig_profile_edu = {
	.name = "edu",
	.version = EDU_STATE_VERSION,
	.min_version = EDU_STATE_VERSION_V2,
	.ids = edu_ids,
	.regs = edu_regs,
	.nr_regs = ARRAY_SIZE(edu_regs),
	.default_class = VMIG_REG_VOLATILE,
	.trap = edu_trap,
	.nr_trap = ARRAY_SIZE(edu_trap),
	.tolerate = VMIG_ID_REVISION,
	.doorbell = &edu_doorbell_block,
	.priv_size = sizeof(struct edu_priv),
	.ops = &edu_ops,
	.dma = &edu_dma_ops,
};
