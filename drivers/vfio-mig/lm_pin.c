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
 * unpinned once the transfer is seen to have ended (the next start, the
 * P2P quiesce, a report that finds the engine idle, reset, close, or the
 * VMM unmapping them): every page the device writes is then in the
 * container's next report, and no other page of the group is. The first
 * pin switches the group's scope; before any transfer the device has
 * written nothing, so the reports before it only over-report.
 *
 * Everything here runs under the DMA hold lock (struct vmig_dma_hold),
 * which nests outside type1's iommu->lock: type1 calls ->dma_unmap with
 * iommu->lock dropped, so that callback may take the hold lock.
 */
#include <linux/iommu.h>
#include <linux/vfio.h>

#include "vfio_mig.h"

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

void vmig_pin_drop(struct vmig_device *mdev, u64 iova, u64 len)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u32 i, kept = 0;

	lockdep_assert_held(&h->lock);
	for (i = 0; i < h->nr_pinned; i++) {
		u64 at = h->pinned[i];

		if (len && (at + PAGE_SIZE <= iova || at >= iova + len)) {
			h->pinned[kept++] = at;
			continue;
		}
		vfio_unpin_pages(&mdev->core.vdev, at, 1);
	}
	h->nr_pinned = kept;
}

void vmig_pin_transfer(struct vmig_device *mdev,
		       const struct vmig_dma_range *r)
{
	struct vmig_dma_hold *h = &mdev->mig.dma;
	u64 first, last, at;
	struct page *page;

	lockdep_assert_held(&h->lock);
	vmig_pin_drop(mdev, 0, 0);	/* the previous transfer has ended */
	if (!r->len || !exact(mdev))
		return;
	if (h->alone < 0)
		h->alone = alone_in_group(mdev);
	if (!h->alone)
		return;
	first = round_down(r->iova, PAGE_SIZE);
	last = round_down(r->iova + r->len - 1, PAGE_SIZE);
	if (last < first || (last - first) / PAGE_SIZE >= VMIG_MAX_PINNED) {
		/* a profile decodes ranges the device can move */
		dev_warn_ratelimited(&mdev->core.pdev->dev,
				     "DMA range %#llx+%#llx too large to pin for the container's dirty log\n",
				     r->iova, r->len);
		return;
	}
	/*
	 * A page that cannot be pinned (an IOVA the VMM did not map: the
	 * device's write faults; a device without a type1 container) has
	 * nothing to report.
	 */
	for (at = first; at <= last; at += PAGE_SIZE)
		if (vfio_pin_pages(&mdev->core.vdev, at, 1,
				   IOMMU_READ | IOMMU_WRITE, &page) == 1)
			h->pinned[h->nr_pinned++] = at;
}

/* vfio_device_ops.dma_unmap: the VMM unmaps IOVA the device may hold. */
void vmig_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	struct vmig_device *mdev = to_vmig(vdev);
	struct vmig_dma_hold *h = &mdev->mig.dma;

	mutex_lock(&h->lock);
	vmig_pin_drop(mdev, iova, length ?: 1);
	mutex_unlock(&h->lock);
}
