/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dirty_track - DMA dirty page log for live migration of VFIO devices.
 *
 * A &struct dt_log records which pages of a set of IOVA ranges a device has
 * written.  Producers ("feeders") mark pages from any context, hard IRQ
 * included, without locks; one reporter at a time reads and clears the log
 * into a caller supplied sink.  See Documentation/dirty-track.rst.
 */
#ifndef _LINUX_DIRTY_TRACK_H
#define _LINUX_DIRTY_TRACK_H

#include <linux/bits.h>
#include <linux/types.h>

struct device;
struct iova_bitmap;
struct rb_root_cached;

/** DT_PAGE_SHIFT_MIN - log2 of the smallest (and default) page size. */
#define DT_PAGE_SHIFT_MIN	12
/** DT_MAX_RANGES - most IOVA ranges per log (as VFIO_DEVICE_FEATURE_DMA_LOGGING_START). */
#define DT_MAX_RANGES		(PAGE_SIZE / 16)
/** DT_MAX_PAGES - most logged pages per log (64 TiB at 4 KiB pages). */
#define DT_MAX_PAGES		BIT_ULL(34)

/**
 * struct dt_range - one IOVA range to log
 * @iova: first byte of the range; need not be page aligned
 * @length: length in bytes; must not be zero, @iova + @length - 1 must not
 *	    wrap (a range may end at U64_MAX)
 *
 * Same layout as &struct vfio_device_feature_dma_logging_range.
 */
struct dt_range {
	u64 iova;
	u64 length;
};

/**
 * enum dt_mark_flags - flags for dt_mark()
 * @DT_MARK_ATOMIC: the caller may be in atomic context (hard or soft IRQ,
 *	spinlock held, preemption disabled).  dt_mark() then never allocates:
 *	a page whose bitmap block is not yet allocated (see dt_prealloc()) is
 *	recorded by setting its chunk's "all dirty" bit, which the next report
 *	turns into a report of the whole chunk and counts in
 *	&dt_stats.fallback_marks.  dt_mark() also treats hard IRQ, NMI and
 *	IRQs-disabled context as atomic without the flag.
 */
enum dt_mark_flags {
	DT_MARK_ATOMIC = 1U << 0,
};

/**
 * struct dt_stats - statistics of a log, see dt_log_get_stats()
 * @page_size: page size of the log in bytes
 * @nr_ranges: number of logged ranges after page rounding and merging
 * @logged_bytes: bytes of IOVA space logged (sum of the rounded ranges)
 * @marks: dt_mark() calls with a non-zero length
 * @marked_pages: in-range pages passed to dt_mark() (counted per call)
 * @pages_dirty: pages whose bit is set now (a snapshot; see also
 *	@fallback_chunks_pending)
 * @reports: dt_read_and_clear() and dt_read_and_clear_user() calls
 * @reported_pages: pages delivered to sinks so far
 * @bitmap_bytes: bytes allocated for the log's bitmaps and directories
 * @bitmap_bytes_max: what @bitmap_bytes reaches when every page is dirty
 *	(the most the log can ever allocate)
 * @bitmap_cap: the cap on @bitmap_bytes_max when the log was created (the
 *	module parameter max_log_mb of dirty_track.ko; 0: none)
 * @chunks: chunk headers allocated (each covers 2^18 pages, 2 KiB)
 * @blocks: leaf blocks allocated (each holds 1024 page bits, 128 bytes)
 * @oor_marks: dt_mark() calls that hit at least one byte outside the logged
 *	ranges (those bytes are not logged; the event is counted and reported)
 * @oor_bytes: bytes passed to dt_mark() that fell outside the logged ranges
 * @last_oor_iova: first out-of-range byte of the latest such mark
 * @fallback_marks: marks recorded with a chunk's "all dirty" bit because the
 *	leaf block was missing in atomic context or could not be allocated
 * @fallback_chunks_reported: chunks reported whole because of that bit
 * @fallback_chunks_pending: chunks whose "all dirty" bit is set now
 */
struct dt_stats {
	u64 page_size;
	u32 nr_ranges;
	u64 logged_bytes;
	u64 marks;
	u64 marked_pages;
	u64 pages_dirty;
	u64 reports;
	u64 reported_pages;
	u64 bitmap_bytes;
	u64 bitmap_bytes_max;
	u64 bitmap_cap;
	u64 chunks;
	u64 blocks;
	u64 oor_marks;
	u64 oor_bytes;
	u64 last_oor_iova;
	u64 fallback_marks;
	u64 fallback_chunks_reported;
	u64 fallback_chunks_pending;
};

/**
 * struct dt_report - summary of one read-and-clear call
 * @pages: pages delivered to the sink
 * @runs: sink calls (runs of contiguous dirty pages)
 * @fallback_chunks: chunks delivered whole because of their "all dirty" bit
 * @oor_marks: out-of-range dt_mark() calls since the previous report
 * @last_oor_iova: first out-of-range byte of the latest out-of-range mark,
 *	valid when @oor_marks is not zero
 */
struct dt_report {
	u64 pages;
	u64 runs;
	u64 fallback_chunks;
	u64 oor_marks;
	u64 last_oor_iova;
};

/**
 * typedef dt_sink_fn - receives dirty runs from dt_read_and_clear()
 * @priv: the caller's cookie
 * @iova: first byte of the run, aligned to the log's page size
 * @length: length of the run in bytes, a multiple of the page size
 *
 * Called in process context with the log's report mutex held; it may sleep
 * but must not call back into the same log's report functions.  For a VFIO
 * report pass a function that calls iova_bitmap_set(priv, iova, length).
 */
typedef void (*dt_sink_fn)(void *priv, u64 iova, u64 length);

struct dt_log;

struct dt_log *dt_log_create(const struct dt_range *ranges, u32 nr_ranges,
			     u64 page_size);
struct dt_log *dt_log_create_from_itree(struct rb_root_cached *ranges,
					u32 nnodes, u64 *page_size);
void dt_log_destroy(struct dt_log *log);

int dt_mark(struct dt_log *log, u64 iova, u64 length, unsigned int flags);
int dt_prealloc(struct dt_log *log, u64 iova, u64 length, gfp_t gfp);

int dt_read_and_clear(struct dt_log *log, u64 iova, u64 length,
		      dt_sink_fn sink, void *priv, struct dt_report *rep);
int dt_read_and_clear_user(struct dt_log *log, u64 iova, u64 length,
			   u64 __user *bitmap, struct dt_report *rep);

void dt_log_get_stats(struct dt_log *log, struct dt_stats *st);
u64 dt_log_page_size(const struct dt_log *log);

/**
 * enum dt_feeder_kind - sources of dirty information for a log
 * @DT_FEEDER_MEDIATED: a device profile decodes trapped DMA registers and
 *	descriptor rings and calls dt_mark() for each buffer the device may
 *	write.  Exact; always available.
 * @DT_FEEDER_ALL_MAPPED: every logged page is reported dirty by every
 *	report (what VFIO type1 does without a dirty-capable IOMMU).  Always
 *	correct, never converges; always available.
 * @DT_FEEDER_IOMMU_HW: the IOMMU's dirty bits through the kernel's
 *	iommu_dirty_ops (set_dirty_tracking, read_and_clear_dirty).  Needs a
 *	kernel with those ops (>= 6.7), an IOMMU reporting
 *	IOMMU_CAP_DIRTY_TRACKING and a domain allocated for dirty tracking
 *	(today only iommufd domains); otherwise attaching fails with
 *	-EOPNOTSUPP and a reason.
 */
enum dt_feeder_kind {
	DT_FEEDER_MEDIATED,
	DT_FEEDER_ALL_MAPPED,
	DT_FEEDER_IOMMU_HW,
};

const char *dt_feeder_name(enum dt_feeder_kind kind);
int dt_feeder_probe(enum dt_feeder_kind kind, struct device *dev,
		    const char **reason);
int dt_log_attach_feeder(struct dt_log *log, enum dt_feeder_kind kind,
			 struct device *dev, const char **reason);
void dt_log_detach_feeder(struct dt_log *log, enum dt_feeder_kind kind);
int dt_feeder_iommu_hw_read_and_clear(struct dt_log *log, u64 iova,
				      u64 length, struct iova_bitmap *dirty);

#endif /* _LINUX_DIRTY_TRACK_H */
