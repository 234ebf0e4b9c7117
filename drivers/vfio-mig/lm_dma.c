// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the device's DMA engine seen from the trap path.
 *
 * A profile that names its DMA engine's registers (vmig_profile.doorbell)
 * gets every trapped write to them here, through its DMA ops
 * (vmig_profile_dma_ops). This is where
 *  - the P2P states quiesce DMA: the profile's doorbell op sees whether DMA
 *    is held (RUNNING_P2P, PRE_COPY_P2P, STOP, STOP_COPY, RESUMING) and
 *    keeps a start command then instead of letting it reach the device;
 *    the unquiesce op issues it when the device returns to RUNNING (or
 *    it is carried in the migration stream, by the held_save and
 *    held_load ops, and issued by the target). Entering a P2P state
 *    waits for the transfer in flight (the quiesce op);
 *  - the mediated dirty log is fed: before a start command reaches the
 *    device, the profile decodes the guest range it will write and
 *    declares it (vmig_dma_start(): marked dirty, pinned); until the
 *    transfer is seen to have ended, each dirty report marks again what
 *    the inflight op returns after clearing it.
 *
 * Concurrency. mig.dma.lock is a read-write semaphore: everything takes
 * it for write (exclusive), except a doorbell write the profile maps to
 * one of its independent queues (its queue_of op): that takes it for read
 * and the queue's own mutex (mig.dma.qlock[], allocated at open, one per
 * queue the profile declares). Doorbells of different queues are then
 * decoded, marked and written to the device concurrently; the P2P arcs,
 * dirty reports, save and restore (write) wait for them, so @held is
 * stable under either. Each queue's writes still reach the device in the
 * order they were decoded, each after what it lets the device write is
 * marked dirty.
 *
 * The guarantee holds for writes that trap: trap mode sparse (when the
 * profile's trapped pages cover the engine) or all. In trap mode none the
 * driver sees no write: entering a P2P state still waits for the transfer
 * in flight but cannot hold new ones.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "dirty.h"
#include "lm.h"
#include "netlink.h"
#include "profile.h"
#include "reglog.h"
#include "trap.h"
#include "vfio_mig.h"

#define VMIG_DMA_WAIT_MS	3000

bool vmig_queue_doorbells = true;

int vmig_dma_start(struct vmig_device *mdev, const struct vmig_dma_range *r)
{
	int ret;

	/* pinning state is device-wide: not from a queue's doorbell */
	lockdep_assert_held_write(&mdev->mig.dma.lock);
	ret = vmig_pin_transfer(mdev, r);
	if (ret) {
		dev_warn_ratelimited(&mdev->core.pdev->dev,
				     "DMA start into %#llx+%#llx dropped: its pages cannot be pinned for the dirty log (%d)\n",
				     r->iova, r->len, ret);
		return ret;
	}
	vmig_dirty_mark(mdev, r->iova, r->len);
	return 0;
}

static bool in_engine(const struct vmig_doorbell *db, u8 bar, u64 at)
{
	return bar == db->bar && at >= db->start && at < db->end;
}

/*
 * One piece of a write, as vfio-pci would issue it. Under h->lock (for
 * read only with the piece's queue mutex, see above). Returns 0 when the
 * piece was written (or held or dropped, as the profile says).
 */
static int __doorbell_piece(struct vmig_device *mdev, u8 bar, u64 at, u8 w,
			    u64 v, bool record)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;
	struct vmig_held_write hw = {
		.value = v, .offset = at, .bar = bar, .width = w,
	};
	int ret;

	lockdep_assert_held(&h->lock);
	if (in_engine(p->doorbell, bar, at) && p->dma && p->dma->doorbell) {
		switch (p->dma->doorbell(mdev, &hw, h->held)) {
		case VMIG_DB_DROP:
			return 0;
		case VMIG_DB_HOLD:
			goto record;
		case VMIG_DB_FORWARD:
			break;
		}
	}
	/* recorded under memory_lock, before a reset can come between */
	ret = record ? vmig_bar_write_recorded(mdev, bar, at, w, v) :
		       vmig_bar_write(mdev, bar, at, w, v);
	if (ret == -EPERM)	/* the MSI-X table: vfio-pci drops it too */
		return 0;
	return ret;
record:
	if (record && vmig_record_write(&mdev->rs, bar, at, w, v))
		vmig_nl_notify_overflow(mdev);
	return 0;
}

static int doorbell_piece(struct vmig_device *mdev, u8 bar, u64 at, u8 w,
			  u64 v)
{
	return __doorbell_piece(mdev, bar, at, w, v, true);
}

struct replay_call {
	struct vmig_device *mdev;
	const struct vmig_held_write *w;
	u32 nr;
	u32 done;
};

static int replay_fn(void *arg)
{
	struct replay_call *k = arg;
	struct vmig_device *mdev = k->mdev;
	struct vmig_dma_hold *h = &mdev->mig.dma;
	const struct vmig_held_write *w;
	int ret = 0;
	u32 i;

	down_write(&h->lock);
	for (i = 0; i < k->nr && !ret; i++) {
		w = &k->w[i];
		if (mdev->profile->doorbell)
			ret = __doorbell_piece(mdev, w->bar, w->offset,
					       w->width, w->value, false);
		else
			ret = vmig_bar_write(mdev, w->bar, w->offset, w->width,
					     w->value);
		if (ret == -EPERM)	/* the MSI-X table */
			ret = 0;
		if (!ret)
			k->done = i + 1;
	}
	up_write(&h->lock);
	return ret;
}

int vmig_dma_replay(struct vmig_device *mdev, const struct vmig_held_write *w,
		    u32 nr, u32 *done)
{
	struct replay_call k = { .mdev = mdev, .w = w, .nr = nr };
	int ret = 0;

	if (nr)
		ret = vmig_run_in_worker(replay_fn, &k);
	*done = k.done;
	return ret;
}

/*
 * A write of one piece that the profile maps to one of its queues: under
 * h->lock for read and that queue's mutex. Returns 1 when the write is
 * not one (the caller takes the device-wide path), else what
 * doorbell_piece() returned.
 */
static int queue_piece(struct vmig_device *mdev, u8 bar, u64 off, u8 w,
		       u64 v)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;
	struct vmig_held_write hw = {
		.value = v, .offset = off, .bar = bar, .width = w,
	};
	int q, ret = 1;

	if (!h->nr_q || !in_engine(p->doorbell, bar, off))
		return 1;
	down_read(&h->lock);
	q = p->dma->queue_of(mdev, &hw);
	if (q >= 0 && q < h->nr_q) {
		mutex_lock(&h->qlock[q]);
		ret = doorbell_piece(mdev, bar, off, w, v);
		mutex_unlock(&h->qlock[q]);
	}
	up_read(&h->lock);
	return ret;
}

/*
 * A trapped write that touches the profile's DMA engine, from the trap
 * path's copy of the VMM's bytes, so that what is decoded, held, logged
 * and written is one value. A write of one piece that the profile maps to
 * a queue takes the queue's path; any other write is device-wide, all its
 * pieces under h->lock for write. (The trap path hands over a longer
 * write in chunks, each taken as a write of its own.)
 */
ssize_t vmig_doorbell_write(struct vmig_device *mdev, const u8 *buf,
			    size_t count, loff_t fpos)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u8 bar = VFIO_PCI_OFFSET_TO_INDEX(fpos);
	u64 off = fpos & VFIO_PCI_OFFSET_MASK;
	size_t pos;
	int ret = 0;
	u8 w;

	/* a reset the model has not seen yet: the device-wide path applies it */
	if (h->nr_q && READ_ONCE(vmig_queue_doorbells) &&
	    !READ_ONCE(mdev->mig.dma_reset) &&
	    count <= sizeof(u64) && vmig_piece_width(off, count) == count) {
		ret = queue_piece(mdev, bar, off, count,
				  vmig_piece_value(buf, count));
		if (ret <= 0)
			return ret ? ret : count;
		ret = 0;
	}
	down_write(&h->lock);
	/* a device reset the model has not seen: before this write */
	vmig_mig_dma_reset(mdev);
	for (pos = 0; pos < count; pos += w) {
		w = vmig_piece_width(off + pos, count - pos);
		ret = doorbell_piece(mdev, bar, off + pos, w,
				     vmig_piece_value(buf + pos, w));
		if (ret)
			break;
	}
	up_write(&h->lock);
	return pos ? pos : ret;
}

ssize_t vmig_doorbell_read(struct vmig_device *mdev, u8 *buf, size_t count,
			   loff_t fpos)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u8 bar = VFIO_PCI_OFFSET_TO_INDEX(fpos);
	u64 off = fpos & VFIO_PCI_OFFSET_MASK;
	ssize_t ret = count;
	__le64 le;
	u64 v;

	if (!p->dma || !p->dma->held_read || count > sizeof(v))
		return vmig_trapped_read(mdev, buf, count, fpos);
	down_write(&h->lock);
	vmig_mig_dma_reset(mdev);	/* as for a write */
	/*
	 * Not the profile's to answer: the device's, read before the profile
	 * can program the engine for its own transfer (which it does only
	 * after taking this lock to say so).
	 */
	if (p->dma->held_read(mdev, bar, off, count, &v)) {
		le = cpu_to_le64(v);
		memcpy(buf, &le, count);
	} else {
		ret = vmig_trapped_read(mdev, buf, count, fpos);
	}
	up_write(&h->lock);
	return ret;
}

int vmig_dma_open(struct vmig_device *mdev)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;
	unsigned int i, nr = 0;

	if (p->dma && p->dma->queue_of)
		nr = min_t(unsigned int, p->dma->nr_queues, VMIG_MAX_QUEUES);
	h->nr_q = 0;
	if (!nr)
		return 0;
	h->qlock = kcalloc(nr, sizeof(*h->qlock), GFP_KERNEL_ACCOUNT);
	if (!h->qlock)
		return -ENOMEM;
	for (i = 0; i < nr; i++)
		mutex_init(&h->qlock[i]);
	h->nr_q = nr;
	return 0;
}

void vmig_dma_close(struct vmig_device *mdev)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	unsigned int i;

	for (i = 0; i < h->nr_q; i++)
		mutex_destroy(&h->qlock[i]);
	kfree(h->qlock);
	h->qlock = NULL;
	h->nr_q = 0;
}

int vmig_dma_hold(struct vmig_device *mdev)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u16 window;
	int ret;

	down_write(&h->lock);
	h->held = true;
	up_write(&h->lock);
	/*
	 * No new start reaches the device now: wait for the one in flight,
	 * reading the engine through a decode window: a VMM starting a
	 * machine moves the device to RUNNING_P2P before the guest has
	 * enabled its decoding (an engine that never ran reads idle).
	 */
	if (!p->ops || !p->ops->quiesce)
		return 0;
	window = vmig_decode_open(mdev);
	ret = p->ops->quiesce(mdev, VMIG_DMA_WAIT_MS);
	vmig_decode_close(mdev, window);
	if (ret) {
		pci_warn(mdev->core.pdev,
			 "DMA did not quiesce within %u ms (%d)\n",
			 VMIG_DMA_WAIT_MS, ret);
		vmig_dma_release(mdev, true);
	} else {
		/* the transfer in flight has ended */
		down_write(&h->lock);
		vmig_pin_drop(mdev, 0, 0);
		up_write(&h->lock);
	}
	return ret;
}

void vmig_dma_release(struct vmig_device *mdev, bool do_issue)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;

	down_write(&h->lock);
	/* a reset since the hold: its starts were the old device's, dropped */
	vmig_mig_dma_reset_release(mdev);
	if (p->ops && p->ops->unquiesce)
		p->ops->unquiesce(mdev, do_issue);
	h->held = false;
	up_write(&h->lock);
}

u32 vmig_dma_held_save(struct vmig_device *mdev, void *buf)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u32 len = 0;

	down_write(&h->lock);
	if (p->dma && p->dma->held_save)
		len = p->dma->held_save(mdev, buf);
	up_write(&h->lock);
	return len;
}

u32 vmig_dma_held_max(struct vmig_device *mdev)
{
	const struct vmig_profile *p = mdev->profile;

	return p->dma && p->dma->held_save ? p->dma->held_max : 0;
}

int vmig_dma_held_check(struct vmig_device *mdev, const void *buf, u32 len)
{
	const struct vmig_profile *p = mdev->profile;

	if (!p->dma || !p->dma->held_load)
		return len ? -EINVAL : 0;
	return p->dma->held_load(mdev, buf, len, false);
}

void vmig_dma_held_load(struct vmig_device *mdev, const void *buf, u32 len)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;

	down_write(&h->lock);
	/* checked as it arrived (vmig_dma_held_check()) */
	if (p->dma && p->dma->held_load)
		p->dma->held_load(mdev, buf, len, true);
	h->held = true;
	up_write(&h->lock);
}

bool __vmig_dma_inflight(struct vmig_device *mdev, struct vmig_dma_range *r)
{
	const struct vmig_profile *p = mdev->profile;

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	return p->dma && p->dma->inflight && p->dma->inflight(mdev, r);
}

void __vmig_dma_remark(struct vmig_device *mdev)
{
	const struct vmig_profile *p = mdev->profile;

	lockdep_assert_held_write(&mdev->mig.dma.lock);
	if (p->dma && p->dma->remark)
		p->dma->remark(mdev);
}
