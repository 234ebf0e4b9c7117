/* SPDX-License-Identifier: GPL-2.0 */
/* vfio-mig: a device's DMA dirty log (dirty.c). */
#ifndef _VFIO_MIG_DIRTY_H
#define _VFIO_MIG_DIRTY_H

#include <linux/dirty_track.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>

struct vmig_device;

/**
 * struct vmig_dirty - the dirty log of one device
 * @lock: serialises start, stop, reports and @page_size changes.
 * @log: the running log or NULL. Published with rcu_assign_pointer() under
 *	@lock; markers (any context, no lock) use rcu_read_lock() and
 *	rcu_dereference(); stop unpublishes it under @lock and then
 *	dt_log_destroy() waits for an RCU grace period before freeing.
 * @ranges: copy of the IOVA ranges @log covers, sorted (under @lock).
 * @nr_ranges: entries in @ranges.
 * @feeder: what feeds @log (mediated by the profile, or all-mapped).
 * @vfio_owned: @log was started by the VMM through VFIO DMA logging and
 *	stops when the VMM closes the device (under @lock).
 * @page_size: page size of the next log started without one (under @lock).
 * @last_report_pages: dirty pages the last report returned (under @lock).
 * @gen: generation of the running (or last) log, incremented at every
 *	start (under @lock): a reader that sees it change between two reports
 *	knows the log was restarted, and the marks of the first one lost.
 */
struct vmig_dirty {
	struct mutex lock;	/* see above */
	struct dt_log __rcu *log;
	struct dt_range *ranges;
	u32 nr_ranges;
	enum dt_feeder_kind feeder;
	bool vfio_owned;
	u64 page_size;
	u64 last_report_pages;
	u32 gen;
};

struct vmig_dirty_stats {
	bool running;
	u64 page_size;
	u64 marks;
	u64 pages_dirty;
	u64 reports;
	u64 oor_marks;
	u64 last_report_pages;
};

void vmig_dirty_init(struct vmig_dirty *d);
bool vmig_dirty_running(struct vmig_device *mdev);
int vmig_dirty_set_page_size(struct vmig_device *mdev, u64 page_size);
/*
 * What a log's feeder depends on (trap mode, profile) and @page_size change
 * only between these: vmig_dirty_freeze() takes @lock, or fails with
 * -EBUSY while a log runs; vmig_dirty_thaw() drops it.
 */
int vmig_dirty_freeze(struct vmig_device *mdev);
void vmig_dirty_thaw(struct vmig_device *mdev);
/* @vfio: started through VFIO DMA logging (stopped at close). */
int vmig_dirty_start(struct vmig_device *mdev, const struct dt_range *ranges,
		     u32 nr_ranges, u64 page_size, bool vfio, const char **why);
/*
 * Stop the running log (only one VFIO started, if @vfio_only); -ENOENT
 * when there is none.
 */
int vmig_dirty_stop(struct vmig_device *mdev, bool vfio_only);
/* Any context: marks [iova, iova + len) if a log runs. */
void vmig_dirty_mark(struct vmig_device *mdev, u64 iova, u64 len);
/*
 * Mark each of @ranges (the VMM's own writes, netlink dirty-mark), all or
 * none: -ENOENT when no log runs, -EINVAL for an empty or wrapping range,
 * -ERANGE for one not inside the logged ranges (*@bad is the index of
 * the range refused), -E2BIG when they add up to more bytes than the log
 * covers, -EINTR (some marked) on a fatal signal. Sleeping context.
 */
int vmig_dirty_mark_ranges(struct vmig_device *mdev,
			   const struct dt_range *ranges, u32 nr_ranges,
			   u32 *bad);
/* Logged range @idx of the running log; -ENOENT past the last or none. */
int vmig_dirty_range(struct vmig_device *mdev, u32 idx, struct dt_range *r);
/*
 * Page size and generation of the running log; -ENOENT when none runs (or,
 * if @vfio_only, none that VFIO DMA logging started: a VMM reads no log but
 * its own, and a report with the generation fails once that log stops).
 */
int vmig_dirty_page_size(struct vmig_device *mdev, bool vfio_only,
			 u64 *page_size, u32 *gen);
/*
 * Report the dirty runs of [iova, iova + len) to @sink (in order), and
 * clear them if @clear. -EAGAIN if the running log's page size or
 * generation is not @page_size, @gen (it was restarted), -ENOENT if none
 * runs. Sleeping context.
 */
int vmig_dirty_report(struct vmig_device *mdev, u64 iova, u64 len, bool clear,
		      u64 page_size, u32 gen, dt_sink_fn sink, void *priv);
void vmig_dirty_stats(struct vmig_device *mdev, struct vmig_dirty_stats *s);

/* VFIO DMA logging (dma_log.c) */
extern const struct vfio_log_ops vmig_dma_log_ops;

#endif /* _VFIO_MIG_DIRTY_H */
