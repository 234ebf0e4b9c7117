// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the type1 container's dirty log, fed exactly.
 *
 * A VMM whose kernel offers no VFIO DMA logging (Debian's 6.12: no
 * iova_bitmap) falls back to the type1 container's dirty log
 * (VFIO_IOMMU_DIRTY_PAGES), which reports every mapped page of a group
 * dirty in every round, unless every device of the group has pinned a
 * page through vfio_pin_pages(): then the group is in "pinned page dirty
 * scope" and the container reports only the pages pinned since the last
 * report and those still pinned. QEMU with enable-migration=on uses it.
 *
 * Where the mediated feeder sees every transfer the device makes into
 * guest RAM (a profile that decodes its DMA engine, trap mode sparse or
 * all), and the device is alone in its IOMMU group, the pages of each
 * transfer are pinned before the start command reaches the device and
 * unpinned once the engine reads idle (at the next start, the P2P
 * quiesce, or a report of our own log), at close, or at the VMM's unmap
 * of them (a reset leaves them: a stale pin only over-reports): every
 * page the device writes is then in the container's next report, and no
 * other page of the group is. The first pin switches
 * the group's scope, for good; before any transfer the device has written
 * nothing, so the reports before it only over-report. After it, a start
 * whose pages cannot all be pinned does not reach the device (fail
 * closed: its write would be lost to the log).
 *
 * vfio_pin_pages() is documented for emulated-IOMMU devices; this relies
 * on type1's pinned page scope (vfio_iommu_type1.c) as it is in 6.1 and
 * 6.12. Under iommufd it fails for a physical device and nothing changes.
 *
 * Locks. type1 calls ->dma_unmap holding its device_list_lock, and takes
 * that lock under iommu->lock when a device is opened into the container;
 * pinning and unpinning take iommu->lock. So ->dma_unmap waits, without a
 * bound, for nothing that needs iommu->lock: it takes only the hold's
 * @pin_lock (a leaf spinlock), moves the pages it must unpin out of
 * @pinned onto @unpin_q, and a work item unpins them (type1 dropped
 * iommu->lock for that) while ->dma_unmap waits a bounded time for the
 * unpins, and for a transfer it met that is being pinned. Unpinning in the
 * callback itself, as type1 suggests, would take iommu->lock under
 * device_list_lock: the reverse of type1's own register_device, a
 * deadlock against a device opened into the container meanwhile. The
 * pinner (under the DMA hold lock, which serialises transfers, drops and
 * reports) publishes each page it pinned under @pin_lock and learns there
 * whether an unmap met it (@pinning_hit): it then gives its pages back and
 * the start is dropped. Pages taken out of @pinned and not yet unpinned
 * are counted in @in_transit, so that ->dma_unmap waits for them too:
 * type1 retries the unmap while any page of it is pinned, and BUGs after
 * ten tries.
 */
#include <linux/iommu.h>
#include <linux/jiffies.h>
#include <linux/sched.h>
#include <linux/vfio.h>
#include <linux/wait.h>

#include "lm.h"
#include "profile.h"
#include "trap.h"
#include "vfio_mig.h"

#define VMIG_UNMAP_GRACE_MS	20
/* A start waits out at most this many graces, then is dropped. */
#define VMIG_UNMAP_WAITS	4

/* debugfs TEST INTERFACE (vfio-mig/unmap_grace_ms): the grace, longer */
unsigned int vmig_unmap_grace_ms = VMIG_UNMAP_GRACE_MS;

static int count_dev(struct device *dev, void *data)
{
	(*(unsigned int *)data)++;
	return 0;
}

/* Alone in its IOMMU group: the group's scope is this device's alone. */
static bool alone_in_group(struct vmig_device *mdev)
{
	struct iommu_group *group = iommu_group_get(&mdev->core.pdev->dev);
	unsigned int n = 0;

	if (!group)
		return false;
	iommu_group_for_each_dev(group, &n, count_dev);
	iommu_group_put(group);
	return n == 1;
}

/* Whether the mediated feeder sees every transfer into guest RAM. */
static bool exact(struct vmig_device *mdev)
{
	const struct vmig_profile *p = mdev->profile;

	return vmig_profile_feeds_dirty(p) &&
	       READ_ONCE(mdev->trap_mode) != VMIG_TRAP_NONE;
}

/* [@a, @a + @alen) and [@b, @b + @blen) overlap: one starts in the other */
static bool overlaps(u64 a, u64 alen, u64 b, u64 blen)
{
	return a - b < blen || b - a < alen;
}

/* [@at, @at + PAGE_SIZE) meets [@iova, @iova + @len) */
static bool meets(u64 at, u64 iova, u64 len)
{
	return overlaps(at, PAGE_SIZE, iova, len);
}

/*
 * Move the pinned pages that meet [@iova, @iova + @len) (every page if
 * @len is 0) out of @h->pinned into @out; returns how many. At most
 * @max, the copies of a page each count.
 */
static u32 take_pinned(struct vmig_dma_hold *h, u64 iova, u64 len,
		       u64 *out, u32 max)
{
	u32 i, kept = 0, n = 0;

	lockdep_assert_held(&h->pin_lock);
	for (i = 0; i < h->nr_pinned; i++) {
		u64 at = h->pinned[i];

		if ((len && !meets(at, iova, len)) || n == max)
			h->pinned[kept++] = at;
		else
			out[n++] = at;
	}
	h->nr_pinned = kept;
	return n;
}

/* Unpin the @n pages taken out of @pinned (counted in @in_transit). */
static void unpin(struct vmig_device *mdev, const u64 *pages, u32 n)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u32 i;

	if (!n)
		return;
	for (i = 0; i < n; i++)
		vfio_unpin_pages(&mdev->core.vdev, pages[i], 1);
	spin_lock(&h->pin_lock);
	h->in_transit -= n;
	spin_unlock(&h->pin_lock);
	wake_up_all(&h->pin_wq);
}

/* The pages ->dma_unmap queued, unpinned outside type1's locks. */
static void unpin_work(struct work_struct *work)
{
	struct vmig_dma_hold *h = container_of(work, struct vmig_dma_hold,
					       unpin_work);
	struct vmig_device *mdev = container_of(h, struct vmig_device,
						mig.dma);
	u64 out[VMIG_MAX_PINNED];
	u32 n;

	spin_lock(&h->pin_lock);
	n = h->nr_unpin_q;
	memcpy(out, h->unpin_q, n * sizeof(*out));
	h->nr_unpin_q = 0;
	spin_unlock(&h->pin_lock);
	unpin(mdev, out, n);
}

void vmig_pin_init(struct vmig_dma_hold *h)
{
	spin_lock_init(&h->pin_lock);
	init_waitqueue_head(&h->pin_wq);
	INIT_WORK(&h->unpin_work, unpin_work);
}

void vmig_pin_drop(struct vmig_device *mdev, u64 iova, u64 len)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u64 out[VMIG_MAX_PINNED];
	u32 n;

	lockdep_assert_held_write(&h->lock);
	spin_lock(&h->pin_lock);
	n = take_pinned(h, iova, len, out, VMIG_MAX_PINNED);
	h->in_transit += n;
	spin_unlock(&h->pin_lock);
	unpin(mdev, out, n);
	/* everything: nothing queued by ->dma_unmap may outlive the device */
	if (!len)
		flush_work(&h->unpin_work);
}

/* The engine reads idle: the transfers started before have ended. */
static bool engine_idle(struct vmig_device *mdev)
{
	const struct vmig_profile *p = mdev->profile;

	return p->ops && p->ops->quiesce && !p->ops->quiesce(mdev, 0);
}

/*
 * type1 retries an unmap while pages of it are pinned, and BUGs after ten
 * tries: after our ->dma_unmap unpinned them it takes its lock back at
 * once, so a start into [@first, @last] waits out the short time it needs
 * (the unmap's grace, VMIG_UNMAP_GRACE_MS) before it pins there again.
 * The range may be mapped anew meanwhile; the start then waits for
 * nothing longer. Jiffies a start into it must still wait (0: none);
 * under @pin_lock, which also ends an expired grace. Starts elsewhere
 * leave a grace alone.
 */
static long unmap_grace_left(struct vmig_dma_hold *h, u64 first, u64 last)
{
	long left;

	lockdep_assert_held(&h->pin_lock);
	if (!h->unmap_len)
		return 0;
	left = (long)(h->unmap_until - jiffies);
	if (left <= 0) {
		h->unmap_len = 0;
		return 0;
	}
	return overlaps(first, last - first + PAGE_SIZE, h->unmap_iova,
			h->unmap_len) ? left : 0;
}

/* Give back what this transfer pinned and ->dma_unmap did not take. */
static void unpin_own(struct vmig_device *mdev, const u64 *own, u32 n)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u64 out[VMIG_MAX_PINNED];
	u32 i, got = 0;

	spin_lock(&h->pin_lock);
	for (i = 0; i < n; i++)
		got += take_pinned(h, own[i], 1, out + got, 1);
	h->in_transit += got;
	spin_unlock(&h->pin_lock);
	unpin(mdev, out, got);
}

/* The transfer's pinning is over, its pages kept or given back. */
static void pinning_done(struct vmig_dma_hold *h)
{
	spin_lock(&h->pin_lock);
	h->pinning_len = 0;
	h->pinning_gen++;
	spin_unlock(&h->pin_lock);
	wake_up_all(&h->pin_wq);
}

int vmig_pin_transfer(struct vmig_device *mdev, const struct vmig_dma_range *r)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u64 own[VMIG_MAX_PINNED];
	u64 first, last, at;
	unsigned int waits;
	struct page *page;
	bool hit = false;
	u32 nr = 0;
	int ret = 1;
	long left;
	u64 n;

	lockdep_assert_held_write(&h->lock);
	/* pages of a transfer that may still be running stay pinned */
	if (READ_ONCE(h->nr_pinned) && engine_idle(mdev))
		vmig_pin_drop(mdev, 0, 0);
	if (!r->len || !exact(mdev))
		return 0;
	if (h->alone == VMIG_GROUP_UNKNOWN)
		h->alone = alone_in_group(mdev) ? VMIG_GROUP_ALONE :
						  VMIG_GROUP_SHARED;
	if (h->alone != VMIG_GROUP_ALONE)
		return 0;
	first = round_down(r->iova, PAGE_SIZE);
	last = round_down(r->iova + r->len - 1, PAGE_SIZE);
	if (last < first)
		return h->scoped ? -EINVAL : 0;
	/* 64 bits: a profile's length may come from a 64-bit register */
	n = (last - first) / PAGE_SIZE + 1;
	/*
	 * No grace of an unmap left, and from then on (the same hold of
	 * pin_lock) ->dma_unmap of any of these pages sets pinning_hit. A
	 * VMM that keeps unmapping there does not hold the start for ever.
	 */
	for (waits = 0;; waits++) {
		spin_lock(&h->pin_lock);
		left = unmap_grace_left(h, first, last);
		if (!left)
			break;
		spin_unlock(&h->pin_lock);
		if (waits == VMIG_UNMAP_WAITS)
			return h->scoped ? -EBUSY : 0;
		schedule_timeout_uninterruptible(left);
	}
	if (n > VMIG_MAX_PINNED - h->nr_pinned) {
		spin_unlock(&h->pin_lock);
		return h->scoped ? -E2BIG : 0;
	}
	h->pinning_iova = first;
	h->pinning_len = last - first + PAGE_SIZE;
	h->pinning_hit = false;
	spin_unlock(&h->pin_lock);

	for (at = first; at <= last && nr < n; at += PAGE_SIZE) {
		ret = vfio_pin_pages(&mdev->core.vdev, at, 1,
				     IOMMU_READ | IOMMU_WRITE, &page);
		if (ret != 1)
			break;
		own[nr++] = at;
		spin_lock(&h->pin_lock);
		hit = h->pinning_hit;
		/* published even if hit: unpin_own() takes it back */
		h->pinned[h->nr_pinned++] = at;
		spin_unlock(&h->pin_lock);
		/* type1 now reports this group's pinned pages only */
		h->scoped = true;
		if (hit)
			break;
	}
	if (ret == 1 && !hit) {
		pinning_done(h);
		return 0;
	}
	/*
	 * Not every page pinned, or the VMM unmapped some meanwhile. Before
	 * any pin the container reports every page (nothing is lost); after,
	 * a page written unpinned would be lost, so the start must not reach
	 * the device.
	 */
	unpin_own(mdev, own, nr);
	pinning_done(h);
	if (!h->scoped)
		return 0;
	return hit ? -EFAULT : (ret < 0 ? ret : -EFAULT);
}

/* What ->dma_unmap waits for has happened (see there). */
static bool unmap_settled(struct vmig_dma_hold *h, bool hit, u32 gen)
{
	bool done;

	spin_lock(&h->pin_lock);
	done = !h->in_transit && (!hit || h->pinning_gen != gen);
	spin_unlock(&h->pin_lock);
	return done;
}

/*
 * vfio_device_ops.dma_unmap: the VMM unmaps [@iova, @iova + @length) and
 * type1 waits for our pins there to go (see wait_unmap()). Called with
 * type1's device_list_lock held: takes only @pin_lock, and waits for the
 * unpins (the work item's, and any drop's) and for a pinner it met, up to
 * VMIG_UNMAP_GRACE_MS: a device being opened into the container holds
 * iommu->lock, which they need, while it waits for the device_list_lock we
 * are called under. type1 retries after that wait.
 */
void vmig_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	struct vmig_device *mdev = to_vmig(vdev);
	struct vmig_dma_hold *h = &mdev->mig.dma;
	unsigned long grace = msecs_to_jiffies(min(READ_ONCE(vmig_unmap_grace_ms),
						   5000U)) + 1;
	u64 len = length ?: 1;
	bool hit = false;
	u32 n, gen = 0;

	spin_lock(&h->pin_lock);
	/* one record: an earlier unmap's grace still running is kept in it */
	if (h->unmap_len && time_before(jiffies, h->unmap_until)) {
		u64 end = max(h->unmap_iova + h->unmap_len - 1, iova + len - 1);

		h->unmap_iova = min(h->unmap_iova, iova);
		h->unmap_len = end - h->unmap_iova + 1 ?: U64_MAX;
	} else {
		h->unmap_iova = iova;
		h->unmap_len = len;
	}
	h->unmap_until = jiffies + grace;
	/* this unmap's own range, not the merged one (that is the grace's) */
	if (h->pinning_len &&
	    overlaps(h->pinning_iova, h->pinning_len, iova, len)) {
		h->pinning_hit = true;
		hit = true;
		gen = h->pinning_gen;
	}
	n = take_pinned(h, iova, len, h->unpin_q + h->nr_unpin_q,
			VMIG_MAX_PINNED - h->nr_unpin_q);
	h->nr_unpin_q += n;
	h->in_transit += n;
	spin_unlock(&h->pin_lock);
	if (n)
		schedule_work(&h->unpin_work);
	wait_event_timeout(h->pin_wq, unmap_settled(h, hit, gen),
			   msecs_to_jiffies(VMIG_UNMAP_GRACE_MS));
	/* the grace runs from when type1 gets the range back: now */
	spin_lock(&h->pin_lock);
	if (h->unmap_len && time_before(h->unmap_until, jiffies + grace))
		h->unmap_until = jiffies + grace;
	spin_unlock(&h->pin_lock);
}
