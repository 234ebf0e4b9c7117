// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the device's DMA engine seen from the trap path.
 *
 * A profile that names its DMA engine's registers (vmig_profile.doorbell)
 * gets every trapped write to them here. This is where
 *  - the P2P states quiesce DMA: a start command written while DMA is held
 *    (RUNNING_P2P, PRE_COPY_P2P, STOP, STOP_COPY, RESUMING) does not reach
 *    the device; it is kept and issued when the device returns to RUNNING
 *    (or carried in the migration stream and issued by the target). While
 *    one is kept, further writes to the engine's registers are dropped, as
 *    the device ignores them while it transfers. Entering a P2P state
 *    waits for the transfer in flight;
 *  - the mediated dirty log is fed: before a start command reaches the
 *    device, the profile decodes the guest range it will write and the
 *    range is marked dirty; until the transfer is seen to have ended, each
 *    dirty report marks it again after clearing it.
 *
 * The guarantee holds for writes that trap: trap mode sparse (when the
 * profile's trapped pages cover the engine) or all. In trap mode none the
 * driver sees no write: entering a P2P state still waits for the transfer
 * in flight but cannot hold new ones.
 */
#include <linux/uaccess.h>

#include "dirty.h"
#include "lm.h"
#include "netlink.h"
#include "profile.h"
#include "reglog.h"
#include "trap.h"
#include "vfio_mig.h"

#define VMIG_DMA_WAIT_MS	3000

/*
 * Start a transfer on the device: mark its range (and pin it for the
 * container's dirty log), then write the command. A start whose pages
 * cannot be pinned once the container counts on pins is dropped, as the
 * device drops a start it cannot serve.
 */
static int issue(struct vmig_device *mdev, const struct vmig_held_write *w)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;
	struct vmig_dma_range r;
	int ret;

	if (p->dma_decode && p->dma_decode(mdev, w->value, &r) && r.to_ram) {
		ret = vmig_pin_transfer(mdev, &r);
		if (ret) {
			dev_warn_ratelimited(&mdev->core.pdev->dev,
					     "DMA start into %#llx+%#llx dropped: its pages cannot be pinned for the dirty log (%d)\n",
					     r.iova, r.len, ret);
			return 0;
		}
		vmig_dirty_mark(mdev, r.iova, r.len);
		h->inflight = r;
		h->inflight_valid = true;
	}
	return vmig_bar_write(mdev, w->bar, w->offset, w->width, w->value);
}

static bool in_engine(const struct vmig_doorbell *db, u8 bar, u64 at)
{
	return bar == db->bar && at >= db->start && at < db->end;
}

/*
 * One piece of a write, as vfio-pci would issue it. Under h->lock. Returns
 * 0 when the piece was written (or dropped, as the device would drop it).
 */
static int doorbell_piece(struct vmig_device *mdev, u8 bar, u64 at, u8 w,
			  u64 v)
{
	const struct vmig_profile *p = mdev->profile;
	const struct vmig_doorbell *db = p->doorbell;
	struct vmig_dma_hold *h = &mdev->mig.dma;
	struct vmig_held_write hw = {
		.value = v, .offset = at, .bar = bar, .width = w,
	};
	bool start;
	int ret;

	lockdep_assert_held(&h->lock);
	if (in_engine(db, bar, at)) {
		/* the device ignores its engine while it transfers */
		if (h->held && h->nr)
			return 0;
		start = at == db->cmd && w == 4 && (v & db->run);
		if (start && h->held) {
			h->writes[h->nr++] = hw;
			goto record;
		}
		if (start) {
			ret = issue(mdev, &hw);
			if (ret)
				return ret;
			goto record;
		}
	}
	ret = vmig_bar_write(mdev, bar, at, w, v);
	if (ret == -EPERM)	/* the MSI-X table: vfio-pci drops it too */
		return 0;
	if (ret)
		return ret;
record:
	if (vmig_record_write(&mdev->rs, bar, at, w, v))
		vmig_nl_notify_overflow(mdev);
	return 0;
}

#define DOORBELL_CHUNK	64

/*
 * A trapped write that touches the profile's DMA engine. The user's bytes
 * are copied once and the pieces written from that copy, so that what is
 * decoded, held, logged and written is one value.
 */
ssize_t vmig_doorbell_write(struct vmig_device *mdev, const char __user *buf,
			    size_t count, loff_t *ppos)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u8 bar = VFIO_PCI_OFFSET_TO_INDEX(*ppos);
	u64 off = *ppos & VFIO_PCI_OFFSET_MASK;
	u8 kbuf[DOORBELL_CHUNK];
	size_t done = 0, pos, n;
	int ret = 0;
	u8 w;

	mutex_lock(&h->lock);
	while (done < count && !ret) {
		n = min_t(size_t, count - done, sizeof(kbuf));
		if (copy_from_user(kbuf, buf + done, n)) {
			ret = -EFAULT;
			break;
		}
		for (pos = 0; pos < n; pos += w) {
			w = vmig_piece_width(off + done + pos, n - pos);
			ret = doorbell_piece(mdev, bar, off + done + pos, w,
					     vmig_piece_value(kbuf + pos, w));
			if (ret)
				break;
		}
		done += pos;
	}
	mutex_unlock(&h->lock);
	if (!done)
		return ret;
	*ppos += done;
	return done;
}

int vmig_dma_hold(struct vmig_device *mdev)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u16 window;
	int ret;

	mutex_lock(&h->lock);
	h->held = true;
	mutex_unlock(&h->lock);
	/*
	 * No new start reaches the device now: wait for the one in flight,
	 * reading the engine through a decode window: a VMM starting a
	 * machine moves the device to RUNNING_P2P before the guest has
	 * enabled its decoding (an engine that never ran reads idle).
	 */
	if (!p->dma_wait)
		return 0;
	window = vmig_decode_open(mdev);
	ret = p->dma_wait(mdev, VMIG_DMA_WAIT_MS);
	vmig_decode_close(mdev, window);
	if (ret) {
		pci_warn(mdev->core.pdev,
			 "DMA did not quiesce within %u ms (%d)\n",
			 VMIG_DMA_WAIT_MS, ret);
		vmig_dma_release(mdev, true);
	} else {
		/* the transfer in flight has ended */
		mutex_lock(&h->lock);
		vmig_pin_drop(mdev, 0, 0);
		mutex_unlock(&h->lock);
	}
	return ret;
}

void vmig_dma_release(struct vmig_device *mdev, bool do_issue)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u32 i;
	int ret;

	mutex_lock(&h->lock);
	for (i = 0; do_issue && i < h->nr; i++) {
		ret = issue(mdev, &h->writes[i]);
		if (ret)
			pci_warn(mdev->core.pdev,
				 "held DMA start at BAR%u %#x not issued: %d\n",
				 h->writes[i].bar, h->writes[i].offset, ret);
	}
	h->nr = 0;
	h->held = false;
	mutex_unlock(&h->lock);
}

u32 vmig_dma_held_get(struct vmig_device *mdev, struct vmig_held_write *w)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u32 nr;

	mutex_lock(&h->lock);
	nr = h->nr;
	memcpy(w, h->writes, nr * sizeof(*w));
	mutex_unlock(&h->lock);
	return nr;
}

void vmig_dma_held_set(struct vmig_device *mdev,
		       const struct vmig_held_write *w, u32 nr)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;

	mutex_lock(&h->lock);
	nr = min_t(u32, nr, VMIG_MAX_HELD);
	memcpy(h->writes, w, nr * sizeof(*w));
	h->nr = nr;
	h->held = true;
	mutex_unlock(&h->lock);
}

bool __vmig_dma_inflight(struct vmig_device *mdev, struct vmig_dma_range *r)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_dma_hold *h = &mdev->mig.dma;

	lockdep_assert_held(&h->lock);
	if (!h->inflight_valid)
		return false;
	/*
	 * Only a read that shows the engine idle ends the transfer: an
	 * unreadable device (memory decoding off, low power) may still write,
	 * and one whose bus mastering is off resumes when it is back on.
	 * Close and reset clear it.
	 */
	if (p->dma_wait && !p->dma_wait(mdev, 0)) {
		h->inflight_valid = false;
		vmig_pin_drop(mdev, 0, 0);
		return false;
	}
	*r = h->inflight;
	return true;
}
