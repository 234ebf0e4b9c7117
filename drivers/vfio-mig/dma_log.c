// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: VFIO device DMA logging (DMA_LOGGING_START/STOP/REPORT) on top
 * of the device's dirty log (dirty.c), for VMMs that speak VFIO migration.
 *
 * A log the VMM starts is the device's one dirty log: netlink sees it too,
 * and a VMM cannot start one while netlink's runs (-EBUSY). The VMM's log is
 * stopped when it closes the device (vmig_dirty_stop(mdev, true) in
 * close_device).
 */
#include <linux/interval_tree.h>
#include <linux/iova_bitmap.h>
#include <linux/slab.h>
#include <linux/vfio.h>

#include "dirty.h"
#include "vfio_mig.h"

static int vmig_dma_log_start(struct vfio_device *vdev,
			      struct rb_root_cached *ranges, u32 nnodes,
			      u64 *page_size)
{
	struct vmig_device *mdev = to_vmig(vdev);
	struct interval_tree_node *node;
	struct dt_range *r;
	const char *why = NULL;
	u32 n = 0;
	int ret;

	if (nnodes > DT_MAX_RANGES)
		return -E2BIG;
	/* The device may log at a coarser page than asked: tell the VMM. */
	if (!*page_size || *page_size > SZ_1G)
		return -EINVAL;
	*page_size = max_t(u64, SZ_4K, roundup_pow_of_two(*page_size));
	r = kcalloc(nnodes, sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX);
	     node && n < nnodes;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX), n++) {
		r[n].iova = node->start;
		r[n].length = node->last - node->start + 1;
	}
	ret = vmig_dirty_start(mdev, r, n, *page_size, true, &why);
	kfree(r);
	if (ret == -ENOSPC)	/* the admin's policy: say it where it is seen */
		dev_warn_ratelimited(&mdev->core.pdev->dev, "DMA logging: %s\n",
				     why);
	else if (ret && why)
		pci_dbg(mdev->core.pdev, "DMA logging: %s\n", why);
	return ret;
}

static int vmig_dma_log_stop(struct vfio_device *vdev)
{
	/*
	 * Only the log VFIO started; stopping one that is not running is not
	 * an error (vfio rule).
	 */
	vmig_dirty_stop(to_vmig(vdev), true);
	return 0;
}

struct window {
	struct iova_bitmap *dirty;
};

/*
 * Runs come clipped to the window (vmig_dirty_report() keeps what lies
 * outside it for a later report): iova_bitmap maps only the window.
 */
static void bitmap_sink(void *priv, u64 iova, u64 len)
{
	struct window *w = priv;

	iova_bitmap_set(w->dirty, iova, len);
}

static int vmig_dma_log_read_and_clear(struct vfio_device *vdev,
				       unsigned long iova, unsigned long length,
				       struct iova_bitmap *dirty)
{
	struct window w = { dirty };
	struct vmig_device *mdev = to_vmig(vdev);
	u64 ps;
	u32 gen;
	int ret;

	if (!length)
		return 0;
	/* the log this VMM started: not one netlink started since */
	ret = vmig_dirty_page_size(mdev, true, &ps, &gen);
	if (!ret)
		ret = vmig_dirty_report(mdev, iova, length, true, ps, gen,
					bitmap_sink, &w);
	/* stopped or restarted meanwhile: the VMM's log is gone all the same */
	return ret == -ENOENT || ret == -EAGAIN ? -EINVAL : ret;
}

const struct vfio_log_ops vmig_dma_log_ops = {
	.log_start		= vmig_dma_log_start,
	.log_stop		= vmig_dma_log_stop,
	.log_read_and_clear	= vmig_dma_log_read_and_clear,
};
