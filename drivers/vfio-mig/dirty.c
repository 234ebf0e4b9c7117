// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: a device's DMA dirty log, on top of dirty_track.
 *
 * One log per device at a time, started by netlink (dirty-start) or by a
 * VMM through VFIO DMA logging. A device whose profile decodes its DMA
 * engine (edu, nvme), in a trap mode that sees the engine's registers, gets the
 * mediated feeder: lm_dma.c marks exactly the guest ranges the device is
 * told to write. Any other device gets the all-mapped feeder, which
 * reports every logged page dirty on every report: always correct, never
 * converging.
 */
#include <linux/dirty_track.h>
#include <linux/overflow.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "dirty.h"
#include "lm.h"
#include "profile.h"
#include "trap.h"
#include "vfio_mig.h"

void vmig_dirty_init(struct vmig_dirty *d)
{
	mutex_init(&d->lock);
	RCU_INIT_POINTER(d->log, NULL);
	d->page_size = PAGE_SIZE;
}

bool vmig_dirty_running(struct vmig_device *mdev)
{
	return !!rcu_access_pointer(mdev->dirty.log);
}

int vmig_dirty_freeze(struct vmig_device *mdev)
{
	mutex_lock(&mdev->dirty.lock);
	if (rcu_access_pointer(mdev->dirty.log)) {
		mutex_unlock(&mdev->dirty.lock);
		return -EBUSY;
	}
	return 0;
}

void vmig_dirty_thaw(struct vmig_device *mdev)
{
	mutex_unlock(&mdev->dirty.lock);
}

int vmig_dirty_set_page_size(struct vmig_device *mdev, u64 page_size)
{
	struct vmig_dirty *d = &mdev->dirty;
	int ret = 0;

	if (page_size < SZ_4K || !is_power_of_2(page_size))
		return -EINVAL;
	mutex_lock(&d->lock);
	if (rcu_access_pointer(d->log))
		ret = -EBUSY;
	else
		d->page_size = page_size;
	mutex_unlock(&d->lock);
	return ret;
}

static int cmp_range(const void *a, const void *b)
{
	const struct dt_range *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

/*
 * Transfers the device was given before @log existed may write into it:
 * mark them now, as a clearing report does. A transfer decoded from here
 * on marks the published log itself; the DMA hold lock orders the two.
 */
static void mark_in_flight(struct vmig_device *mdev, struct dt_log *log)
{
	struct vmig_dma_range busy;

	down_write(&mdev->mig.dma.lock);
	if (__vmig_dma_inflight(mdev, &busy))
		dt_mark(log, busy.iova, busy.len, 0);
	__vmig_dma_remark(mdev);
	up_write(&mdev->mig.dma.lock);
}

int vmig_dirty_start(struct vmig_device *mdev, const struct dt_range *ranges,
		     u32 nr_ranges, u64 page_size, bool vfio, const char **why)
{
	struct vmig_dirty *d = &mdev->dirty;
	enum dt_feeder_kind feeder;
	struct dt_log *log;
	int ret;

	mutex_lock(&d->lock);
	if (rcu_access_pointer(d->log)) {
		*why = "a dirty log is already running on this device";
		ret = -EBUSY;
		goto out;
	}
	log = dt_log_create(ranges, nr_ranges, page_size ?: d->page_size);
	if (IS_ERR(log)) {
		ret = PTR_ERR(log);
		if (ret == -ENOSPC)
			*why = "the log could need more memory than dirty_track's max_log_mb";
		else if (ret == -E2BIG)
			*why = "more pages than a log holds (2^34)";
		else if (ret == -ENOMEM)
			*why = "out of memory for the log";
		else
			*why = "overlapping or too many IOVA ranges, or a bad page size";
		goto out;
	}
	d->ranges = kmemdup(ranges, nr_ranges * sizeof(*ranges), GFP_KERNEL);
	if (!d->ranges) {
		dt_log_destroy(log);
		ret = -ENOMEM;
		goto out;
	}
	sort(d->ranges, nr_ranges, sizeof(*ranges), cmp_range, NULL);
	d->nr_ranges = nr_ranges;
	/* trap mode and profile stay put while the log runs (trap.c) */
	feeder = vmig_profile_feeds_dirty(mdev->profile) &&
		 READ_ONCE(mdev->trap_mode) != VMIG_TRAP_NONE ?
		 DT_FEEDER_MEDIATED : DT_FEEDER_ALL_MAPPED;
	ret = dt_log_attach_feeder(log, feeder, &mdev->core.pdev->dev, why);
	if (ret) {
		dt_log_destroy(log);
		kfree(d->ranges);
		d->ranges = NULL;
		d->nr_ranges = 0;
		goto out;
	}
	d->feeder = feeder;
	d->vfio_owned = vfio;
	d->last_report_pages = 0;
	d->gen++;
	rcu_assign_pointer(d->log, log);
	if (feeder == DT_FEEDER_MEDIATED)
		mark_in_flight(mdev, log);
out:
	mutex_unlock(&d->lock);
	return ret;
}

int vmig_dirty_stop(struct vmig_device *mdev, bool vfio_only)
{
	struct vmig_dirty *d = &mdev->dirty;
	struct dt_log *log;

	mutex_lock(&d->lock);
	if (vfio_only && !d->vfio_owned) {
		mutex_unlock(&d->lock);
		return -ENOENT;
	}
	d->vfio_owned = false;
	log = rcu_dereference_protected(d->log, lockdep_is_held(&d->lock));
	RCU_INIT_POINTER(d->log, NULL);
	kfree(d->ranges);
	d->ranges = NULL;
	d->nr_ranges = 0;
	mutex_unlock(&d->lock);
	if (!log)
		return -ENOENT;
	/* dt_log_destroy() waits for markers still inside rcu_read_lock(). */
	dt_log_destroy(log);
	return 0;
}

void vmig_dirty_mark(struct vmig_device *mdev, u64 iova, u64 len)
{
	struct dt_log *log;

	rcu_read_lock();
	log = rcu_dereference(mdev->dirty.log);
	if (log)
		dt_mark(log, iova, len, 0);
	rcu_read_unlock();
}

/* Is [iova, last] inside the logged ranges (sorted, not overlapping)? */
static bool logged(const struct vmig_dirty *d, u64 iova, u64 last)
{
	u32 i;

	for (i = 0; i < d->nr_ranges; i++) {
		const struct dt_range *r = &d->ranges[i];
		u64 r_last = r->iova + r->length - 1;

		if (iova < r->iova || iova > r_last)
			continue;
		if (last <= r_last)
			return true;
		/* goes on in the next range, if that one starts right here */
		iova = r_last + 1;
	}
	return false;
}

/*
 * dt_mark() never sleeps (any context): a range of a huge log is marked
 * this many pages at a time, with a chance to reschedule in between.
 */
#define MARK_STEP_PAGES	SZ_256K

/* Sum of @nr lengths, saturating. */
static u64 total_length(const struct dt_range *r, u32 nr)
{
	u64 sum = 0;
	u32 i;

	for (i = 0; i < nr; i++)
		if (check_add_overflow(sum, r[i].length, &sum))
			return U64_MAX;
	return sum;
}

/* Mark @r, in steps; process context, @d->lock held. */
static int mark_range(struct dt_log *log, const struct dt_range *r)
{
	u64 iova = r->iova, left = r->length, n, step;

	/* a power of two, or 0: all at once (a log of huge pages is small) */
	if (check_mul_overflow((u64)MARK_STEP_PAGES, dt_log_page_size(log),
			       &step))
		step = 0;
	while (left) {
		/* up to the next step boundary: each step whole pages */
		n = step ? min(left, step - (iova & (step - 1))) : left;
		dt_mark(log, iova, n, 0);
		iova += n;
		left -= n;
		if (left && fatal_signal_pending(current))
			return -EINTR;	/* marked in part: harmless */
		cond_resched();
	}
	return 0;
}

int vmig_dirty_mark_ranges(struct vmig_device *mdev,
			   const struct dt_range *ranges, u32 nr_ranges,
			   u32 *bad)
{
	struct vmig_dirty *d = &mdev->dirty;
	struct dt_log *log;
	int ret = 0;
	u32 i;

	mutex_lock(&d->lock);
	log = rcu_dereference_protected(d->log, lockdep_is_held(&d->lock));
	if (!log) {
		ret = -ENOENT;
		goto out;
	}
	for (i = 0; i < nr_ranges; i++) {
		const struct dt_range *r = &ranges[i];

		if (!r->length || r->iova + (r->length - 1) < r->iova)
			ret = -EINVAL;
		else if (!logged(d, r->iova, r->iova + (r->length - 1)))
			ret = -ERANGE;
		if (ret) {
			*bad = i;
			goto out;
		}
	}
	/* once over the log at most: the work a request asks is bounded */
	if (total_length(ranges, nr_ranges) >
	    total_length(d->ranges, d->nr_ranges)) {
		ret = -E2BIG;
		goto out;
	}
	/* the log stays while @lock is held: stop unpublishes it under it */
	for (i = 0; i < nr_ranges && !ret; i++)
		ret = mark_range(log, &ranges[i]);
out:
	mutex_unlock(&d->lock);
	return ret;
}

/* What a report marks again once read (struct peek). */
enum peek_keep {
	KEEP_OUTSIDE,	/* a clearing report: what lies outside the window */
	KEEP_ALL,	/* a read without clear: all of it */
	KEEP_NONE,	/* the all-mapped feeder: nothing, it reports all */
};

/**
 * struct peek - a report's sink as vmig_dirty_report() calls it
 * @sink: the caller's sink
 * @priv: its cookie
 * @log: the log reported
 * @first: the window's first byte
 * @last: its last byte
 * @keep: what is marked again (enum peek_keep)
 */
struct peek {
	dt_sink_fn sink;
	void *priv;
	struct dt_log *log;
	u64 first, last;
	enum peek_keep keep;
};

/*
 * The log clears whole log pages, and its runs may stick out of a window
 * that is not aligned to them (a VFIO report at a finer page than the
 * log's, or an iova_bitmap chunk boundary): the caller gets the part in
 * the window, and what lies outside is marked again, for the report that
 * covers it (a page split by two windows is then reported by both, and
 * once more by the next report: a superset, never a loss).
 */
static void peek_sink(void *priv, u64 iova, u64 len)
{
	struct peek *p = priv;
	u64 last = iova + len - 1;
	u64 from = max(iova, p->first), to = min(last, p->last);

	if (p->keep == KEEP_ALL) {
		dt_mark(p->log, iova, len, 0);
	} else if (p->keep == KEEP_OUTSIDE) {
		if (iova < p->first)
			dt_mark(p->log, iova, min(last, p->first - 1) - iova + 1,
				0);
		if (last > p->last) {
			u64 s = max(iova, p->last + 1);

			dt_mark(p->log, s, last - s + 1, 0);
		}
	}
	if (from <= to)
		p->sink(p->priv, from, to - from + 1);
}

int vmig_dirty_range(struct vmig_device *mdev, u32 idx, struct dt_range *r)
{
	struct vmig_dirty *d = &mdev->dirty;
	int ret = -ENOENT;

	mutex_lock(&d->lock);
	if (idx < d->nr_ranges) {
		*r = d->ranges[idx];
		ret = 0;
	}
	mutex_unlock(&d->lock);
	return ret;
}

int vmig_dirty_page_size(struct vmig_device *mdev, bool vfio_only,
			 u64 *page_size, u32 *gen)
{
	struct vmig_dirty *d = &mdev->dirty;
	struct dt_log *log;
	int ret = -ENOENT;

	mutex_lock(&d->lock);
	log = rcu_dereference_protected(d->log, lockdep_is_held(&d->lock));
	if (log && (d->vfio_owned || !vfio_only)) {
		*page_size = dt_log_page_size(log);
		*gen = d->gen;
		ret = 0;
	}
	mutex_unlock(&d->lock);
	return ret;
}

int vmig_dirty_report(struct vmig_device *mdev, u64 iova, u64 len, bool clear,
		      u64 page_size, u32 gen, dt_sink_fn sink, void *priv)
{
	struct vmig_dirty *d = &mdev->dirty;
	struct dt_report rep = {};
	struct peek p = { sink, priv, NULL, iova, iova + len - 1 };
	struct vmig_dma_range busy;
	bool again = false, mediated;
	struct dt_log *log;
	int ret;

	mutex_lock(&d->lock);
	log = rcu_dereference_protected(d->log, lockdep_is_held(&d->lock));
	if (!log) {
		ret = -ENOENT;
		goto out;
	}
	if (dt_log_page_size(log) != page_size || d->gen != gen) {
		ret = -EAGAIN;
		goto out;
	}
	p.log = log;
	/*
	 * A transfer still running may write after this report: mark its
	 * range again once cleared. The DMA hold lock keeps a new transfer
	 * from starting (and being marked) between the check and the clear.
	 */
	mediated = clear && d->feeder == DT_FEEDER_MEDIATED;
	if (mediated) {
		down_write(&mdev->mig.dma.lock);
		again = __vmig_dma_inflight(mdev, &busy);
	}
	/*
	 * A read without clear puts the bits back; an all-mapped log has no
	 * bits to put back (it reports every page every time). Either way
	 * the sink gets only the window's part of each run.
	 */
	p.keep = d->feeder == DT_FEEDER_ALL_MAPPED ? KEEP_NONE :
		 clear ? KEEP_OUTSIDE : KEEP_ALL;
	ret = dt_read_and_clear(log, iova, len, peek_sink, &p, &rep);
	if (!ret)
		d->last_report_pages = rep.pages;
	if (again)
		dt_mark(log, busy.iova, busy.len, 0);
	if (mediated) {
		__vmig_dma_remark(mdev);
		up_write(&mdev->mig.dma.lock);
	}
out:
	mutex_unlock(&d->lock);
	return ret;
}

void vmig_dirty_stats(struct vmig_device *mdev, struct vmig_dirty_stats *s)
{
	struct vmig_dirty *d = &mdev->dirty;
	struct dt_stats st;
	struct dt_log *log;

	memset(s, 0, sizeof(*s));
	mutex_lock(&d->lock);
	s->page_size = d->page_size;
	s->last_report_pages = d->last_report_pages;
	log = rcu_dereference_protected(d->log, lockdep_is_held(&d->lock));
	if (log) {
		dt_log_get_stats(log, &st);
		s->running = true;
		s->marks = st.marks;
		s->pages_dirty = st.pages_dirty;
		s->reports = st.reports;
		s->oor_marks = st.oor_marks;
	}
	mutex_unlock(&d->lock);
}
