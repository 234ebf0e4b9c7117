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
 * quiesce, or a report of our own log) or at reset, close, or the VMM's
 * unmap of them: every page the device writes is then in the container's
 * next report, and no other page of the group is. The first pin switches
 * the group's scope, for good; before any transfer the device has written
 * nothing, so the reports before it only over-report. After it, a start
 * whose pages cannot all be pinned does not reach the device (fail
 * closed: its write would be lost to the log).
 *
 * vfio_pin_pages() is documented for emulated-IOMMU devices; this relies
 * on type1's pinned page scope (vfio_iommu_type1.c) as it is in 6.1 and
 * 6.12. Under iommufd it fails for a physical device and nothing changes.
 * type1's unmap notification holds its device_list_lock while calling
 * ->dma_unmap, which unpins under iommu->lock: the same order (and the
 * same inversion against type1's register_device) as every mdev driver.
 *
 * Everything here runs under the DMA hold lock (struct vmig_dma_hold),
 * which nests outside type1's iommu->lock: type1 calls ->dma_unmap with
 * iommu->lock dropped, so that callback may take the hold lock.
 */
#include <linux/iommu.h>
#include <linux/jiffies.h>
#include <linux/sched.h>
#include <linux/vfio.h>

#include "vfio_mig.h"

#define VMIG_UNMAP_GRACE_MS	20

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

	return p->doorbell && p->dma_decode &&
	       READ_ONCE(mdev->trap_mode) != VMIG_TRAP_NONE;
}

/* [@at, @at + PAGE_SIZE) meets [@iova, @iova + @len), without overflow */
static bool meets(u64 at, u64 iova, u64 len)
{
	return at + PAGE_SIZE > iova && (at < iova || at - iova < len);
}

void vmig_pin_drop(struct vmig_device *mdev, u64 iova, u64 len)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u32 i, kept = 0;

	lockdep_assert_held(&h->lock);
	for (i = 0; i < h->nr_pinned; i++) {
		u64 at = h->pinned[i];

		if (len && !meets(at, iova, len)) {
			h->pinned[kept++] = at;
			continue;
		}
		vfio_unpin_pages(&mdev->core.vdev, at, 1);
	}
	h->nr_pinned = kept;
}

/* The engine reads idle: the transfers started before have ended. */
static bool engine_idle(struct vmig_device *mdev)
{
	const struct vmig_profile *p = mdev->profile;

	return p->dma_wait && !p->dma_wait(mdev, 0);
}

/*
 * type1 retries an unmap while pages of it are pinned, and BUGs after ten
 * tries: after our ->dma_unmap unpinned them it takes its lock back at
 * once, so a start into [@first, @last] waits out the short time it needs
 * (VMIG_UNMAP_GRACE_MS) before it pins there again. The range may be
 * mapped anew meanwhile; the start then waits for nothing longer.
 */
static void wait_unmap(struct vmig_dma_hold *h, u64 first, u64 last)
{
	long left;

	if (!h->unmap_len)
		return;
	left = (long)(h->unmap_until - jiffies);
	if (left > 0 && (meets(first, h->unmap_iova, h->unmap_len) ||
			 meets(last, h->unmap_iova, h->unmap_len) ||
			 (first < h->unmap_iova && last >= h->unmap_iova)))
		schedule_timeout_uninterruptible(left);
	h->unmap_len = 0;
}

int vmig_pin_transfer(struct vmig_device *mdev, const struct vmig_dma_range *r)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u32 before, n;
	u64 first, last, at;
	struct page *page;
	int ret = 0;

	lockdep_assert_held(&h->lock);
	/* pages of a transfer that may still be running stay pinned */
	if (h->nr_pinned && engine_idle(mdev))
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
	wait_unmap(h, first, last);
	if (last < first)
		return h->scoped ? -EINVAL : 0;
	n = (last - first) / PAGE_SIZE + 1;
	if (n > VMIG_MAX_PINNED - h->nr_pinned)
		return h->scoped ? -E2BIG : 0;
	before = h->nr_pinned;
	for (at = first; at <= last; at += PAGE_SIZE) {
		ret = vfio_pin_pages(&mdev->core.vdev, at, 1,
				     IOMMU_READ | IOMMU_WRITE, &page);
		if (ret != 1)
			break;
		h->pinned[h->nr_pinned++] = at;
		/* type1 now reports this group's pinned pages only */
		h->scoped = true;
	}
	if (ret == 1)
		return 0;
	/*
	 * Not every page pinned. Before any pin the container reports every
	 * page (nothing is lost); after, a page written unpinned would be
	 * lost, so the start must not reach the device.
	 */
	while (h->nr_pinned > before)
		vfio_unpin_pages(&mdev->core.vdev, h->pinned[--h->nr_pinned],
				 1);
	return h->scoped ? (ret < 0 ? ret : -EFAULT) : 0;
}

/*
 * vfio_device_ops.dma_unmap: the VMM unmaps [@iova, @iova + @length) and
 * type1 waits for our pins there to go (see wait_unmap()).
 */
void vmig_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	struct vmig_device *mdev = to_vmig(vdev);
	struct vmig_dma_hold *h = &mdev->mig.dma;

	mutex_lock(&h->lock);
	h->unmap_iova = iova;
	h->unmap_len = length ?: 1;
	h->unmap_until = jiffies + msecs_to_jiffies(VMIG_UNMAP_GRACE_MS) + 1;
	vmig_pin_drop(mdev, iova, h->unmap_len);
	mutex_unlock(&h->lock);
}
