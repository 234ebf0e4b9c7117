// SPDX-License-Identifier: GPL-2.0
/*
 * dirty_track module glue and feeders (kernel only; the core is dt_core.c).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/err.h>
#include <linux/interval_tree.h>
#include <linux/iommu.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/dirty_track.h>
#include <vfio-mig/compat.h>

#include "dt_internal.h"

#ifndef VFIO_MIG_VERSION
#define VFIO_MIG_VERSION	"0.1.0"
#endif

/**
 * dt_log_create_from_itree() - create a log from VFIO's DMA logging ranges
 * @ranges: the interval tree vfio core hands to &vfio_log_ops.log_start
 * @nnodes: number of nodes in @ranges
 * @page_size: in: requested page size; out: the page size used (raised to
 *	4 KiB and rounded up to a power of two)
 *
 * Context: process context, may sleep.
 * Return: as dt_log_create().
 */
struct dt_log *dt_log_create_from_itree(struct rb_root_cached *ranges,
					u32 nnodes, u64 *page_size)
{
	struct interval_tree_node *node;
	struct dt_range *arr;
	struct dt_log *log;
	u64 ps = *page_size;
	u32 i = 0;

	if (!nnodes || nnodes > DT_MAX_RANGES)
		return ERR_PTR(-EINVAL);
	if (ps < (1ULL << DT_PAGE_SHIFT_MIN))
		ps = 1ULL << DT_PAGE_SHIFT_MIN;
	if (!is_power_of_2(ps)) {
		if (ps > (1ULL << 63))
			return ERR_PTR(-EINVAL);
		ps = 1ULL << (ilog2(ps) + 1);
	}
	arr = kcalloc(nnodes, sizeof(*arr), GFP_KERNEL);
	if (!arr)
		return ERR_PTR(-ENOMEM);
	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX);
	     node && i < nnodes;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX), i++) {
		arr[i].iova = node->start;
		arr[i].length = node->last - node->start + 1;
	}
	log = i ? dt_log_create(arr, i, ps) : ERR_PTR(-EINVAL);
	kfree(arr);
	if (!IS_ERR(log))
		*page_size = ps;
	return log;
}
EXPORT_SYMBOL_GPL(dt_log_create_from_itree);

/* ------------------------------------------------------------------ */
/* feeders                                                             */

/**
 * dt_feeder_name() - name of a feeder kind
 * @kind: the feeder
 *
 * Return: "mediated", "all-mapped", "iommu-hw" or "unknown".
 */
const char *dt_feeder_name(enum dt_feeder_kind kind)
{
	switch (kind) {
	case DT_FEEDER_MEDIATED:
		return "mediated";
	case DT_FEEDER_ALL_MAPPED:
		return "all-mapped";
	case DT_FEEDER_IOMMU_HW:
		return "iommu-hw";
	}
	return "unknown";
}
EXPORT_SYMBOL_GPL(dt_feeder_name);

#if VMIG_HAVE_IOMMU_DIRTY_OPS
static int dt_iommu_hw_domain(struct device *dev, struct iommu_domain **out,
			      const char **reason)
{
	struct iommu_domain *domain;

	if (!dev) {
		*reason = "no device given";
		return -EINVAL;
	}
	if (!device_iommu_capable(dev, IOMMU_CAP_DIRTY_TRACKING)) {
		*reason = "the device's IOMMU has no dirty tracking (no IOMMU_CAP_DIRTY_TRACKING)";
		return -EOPNOTSUPP;
	}
	domain = iommu_get_domain_for_dev(dev);
	if (!domain) {
		*reason = "the device is not attached to an IOMMU domain";
		return -EOPNOTSUPP;
	}
	if (!domain->dirty_ops) {
		/* Only iommufd allocates domains with dirty_ops. */
		if (IS_ENABLED(CONFIG_IOMMUFD))
			*reason = "IOMMU domain not allocated for dirty tracking (iommufd HWPT)";
		else
			*reason = "CONFIG_IOMMUFD=n: IOMMU dirty ops need an iommufd domain";
		return -EOPNOTSUPP;
	}
	*out = domain;
	return 0;
}
#else
static int dt_iommu_hw_domain(struct device *dev, struct iommu_domain **out,
			      const char **reason)
{
	*reason = "this kernel has no IOMMU dirty tracking ops (iommu_dirty_ops, added in 6.7)";
	return -EOPNOTSUPP;
}
#endif

static int dt_iommu_hw_set(struct iommu_domain *domain, bool on)
{
#if VMIG_HAVE_IOMMU_DIRTY_OPS
	return domain->dirty_ops->set_dirty_tracking(domain, on);
#else
	return -EOPNOTSUPP;
#endif
}

/**
 * dt_feeder_probe() - check whether a feeder can serve a device
 * @kind: the feeder
 * @dev: the device whose DMA is logged (used by %DT_FEEDER_IOMMU_HW)
 * @reason: on failure, set to a static string naming the cause
 *
 * The mediated and all-mapped feeders are always available.  The iommu-hw
 * feeder needs kernel, IOMMU and IOMMU domain support (see
 * &enum dt_feeder_kind); it never pretends.
 *
 * Context: process context.
 * Return: 0, -EOPNOTSUPP (with *@reason) or -EINVAL.
 */
int dt_feeder_probe(enum dt_feeder_kind kind, struct device *dev,
		    const char **reason)
{
	struct iommu_domain *domain;
	const char *dummy;

	if (!reason)
		reason = &dummy;
	*reason = NULL;
	switch (kind) {
	case DT_FEEDER_MEDIATED:
	case DT_FEEDER_ALL_MAPPED:
		return 0;
	case DT_FEEDER_IOMMU_HW:
		return dt_iommu_hw_domain(dev, &domain, reason);
	}
	*reason = "unknown feeder";
	return -EINVAL;
}
EXPORT_SYMBOL_GPL(dt_feeder_probe);

/**
 * dt_log_attach_feeder() - connect a feeder to a log
 * @log: the log
 * @kind: the feeder
 * @dev: the device whose DMA is logged
 * @reason: on failure, set to a static string naming the cause
 *
 * %DT_FEEDER_MEDIATED needs nothing: the profile calls dt_mark().
 * %DT_FEEDER_ALL_MAPPED makes every report deliver every logged page of its
 * window.  %DT_FEEDER_IOMMU_HW enables dirty tracking on the device's IOMMU
 * domain; the owner then calls dt_feeder_iommu_hw_read_and_clear() next to
 * dt_read_and_clear() for each report, and must keep the device attached to
 * that domain until dt_log_detach_feeder().
 *
 * Context: process context.
 * Return: 0, -EOPNOTSUPP (with *@reason), -EBUSY or -EINVAL.
 */
int dt_log_attach_feeder(struct dt_log *log, enum dt_feeder_kind kind,
			 struct device *dev, const char **reason)
{
	struct iommu_domain *domain = NULL;
	const char *dummy;
	int ret;

	if (!reason)
		reason = &dummy;
	ret = dt_feeder_probe(kind, dev, reason);
	if (ret)
		return ret;
	if (kind == DT_FEEDER_ALL_MAPPED) {
		dt_log_set_all_mapped(log, true);
		return 0;
	}
	if (kind != DT_FEEDER_IOMMU_HW)
		return 0;

	ret = dt_iommu_hw_domain(dev, &domain, reason);
	if (ret)
		return ret;
	mutex_lock(&log->report_lock);
	if (log->iommu_domain) {
		*reason = "an iommu-hw feeder is already attached";
		ret = -EBUSY;
		goto out;
	}
	ret = dt_iommu_hw_set(domain, true);
	if (ret) {
		*reason = "the IOMMU driver refused to enable dirty tracking";
		goto out;
	}
	log->iommu_domain = domain;
out:
	mutex_unlock(&log->report_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(dt_log_attach_feeder);

/**
 * dt_log_detach_feeder() - disconnect a feeder from a log
 * @log: the log
 * @kind: the feeder
 *
 * Context: process context.
 */
void dt_log_detach_feeder(struct dt_log *log, enum dt_feeder_kind kind)
{
	struct iommu_domain *domain;

	if (kind == DT_FEEDER_ALL_MAPPED) {
		dt_log_set_all_mapped(log, false);
		return;
	}
	if (kind != DT_FEEDER_IOMMU_HW)
		return;
	mutex_lock(&log->report_lock);
	domain = log->iommu_domain;
	log->iommu_domain = NULL;
	if (domain)
		dt_iommu_hw_set(domain, false);
	mutex_unlock(&log->report_lock);
}
EXPORT_SYMBOL_GPL(dt_log_detach_feeder);

/**
 * dt_feeder_iommu_hw_read_and_clear() - read and clear IOMMU dirty bits
 * @log: the log, with the iommu-hw feeder attached
 * @iova: first byte of the window
 * @length: bytes in the window
 * @dirty: the caller's bitmap, e.g. the one &vfio_log_ops.log_read_and_clear
 *	receives; the IOMMU driver sets its bits
 *
 * Use it in addition to dt_read_and_clear() into the same bitmap: marks from
 * other feeders still land in the log.
 *
 * Context: process context.
 * Return: 0, -EOPNOTSUPP when no iommu-hw feeder is attached, or the IOMMU
 * driver's error.
 */
int dt_feeder_iommu_hw_read_and_clear(struct dt_log *log, u64 iova,
				      u64 length, struct iova_bitmap *dirty)
{
	int ret = -EOPNOTSUPP;

	mutex_lock(&log->report_lock);
#if VMIG_HAVE_IOMMU_DIRTY_OPS
	if (log->iommu_domain) {
		struct iommu_domain *domain = log->iommu_domain;
		struct iommu_iotlb_gather gather;
		struct iommu_dirty_bitmap db;

		iommu_iotlb_gather_init(&gather);
		iommu_dirty_bitmap_init(&db, dirty, &gather);
		ret = domain->dirty_ops->read_and_clear_dirty(domain, iova,
							      length, 0, &db);
		iommu_iotlb_sync(domain, &gather);
	}
#endif
	mutex_unlock(&log->report_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(dt_feeder_iommu_hw_read_and_clear);

module_param_named(max_log_mb, dt_max_log_mb, uint, 0644);
MODULE_PARM_DESC(max_log_mb,
		 "Most memory one dirty log may use, in MiB (0: no cap): a log that could need more with every page dirty is not created (ENOSPC)");

static int __init dirty_track_init(void)
{
	const char *reason;

	dt_feeder_probe(DT_FEEDER_IOMMU_HW, NULL, &reason);
	pr_info("loaded, version %s, feeders: mediated, all-mapped, iommu-hw%s\n",
		VFIO_MIG_VERSION,
		VMIG_HAVE_IOMMU_DIRTY_OPS ? "" : " (unavailable on this kernel)");
	return 0;
}

static void __exit dirty_track_exit(void)
{
}

module_init(dirty_track_init);
module_exit(dirty_track_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("DMA dirty page log for live migration of VFIO devices");
MODULE_VERSION(VFIO_MIG_VERSION);
MODULE_AUTHOR("vfio-mig developers");
