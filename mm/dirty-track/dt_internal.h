/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dirty_track internals shared by the core (dt_core.c, also built in user
 * space by selftests/unit/dirty_track and bench/dirty_track through shims)
 * and the kernel-only parts (dt_module.c).
 */
#ifndef _DT_INTERNAL_H
#define _DT_INTERNAL_H

#include <linux/bits.h>
#include <linux/types.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/atomic.h>
#include <linux/dirty_track.h>

/*
 * Geometry, in pages of the log's page size:
 *
 *   word   64 pages      one unsigned long of page bits
 *   line   512 pages     8 words, one cache line of page bits; the unit of
 *                        the line summary
 *   block  1024 pages    2 lines, 128 bytes; the unit of lazy allocation
 *   chunk  2^18 pages    256 blocks; a lazily allocated header of 256 block
 *                        pointers (2 KiB), one pointer per chunk in log->dir
 *
 * Two summary levels sit above the page bits, both allocated at create time:
 *
 *   log->top    bit c   -> log->lsum[c * 8 .. c * 8 + 7] or alldirty bit c
 *                          may be non-zero
 *   log->lsum   bit l   -> line l (global line index, page >> 9) may hold a
 *                          set page bit
 *   block bits  bit p   -> page p is dirty
 *
 * A summary bit may be set while its child is clean (a superset), never the
 * reverse once a dt_mark() call has returned.  A mark whose block exists
 * costs one range check, two pointer loads, one test (and, when the page was
 * clean, one atomic test-and-set) of the page bit and two summary tests.
 */
#define DT_LINE_SHIFT		9
#define DT_LINE_PAGES		BIT(DT_LINE_SHIFT)
#define DT_LINE_WORDS		(DT_LINE_PAGES / BITS_PER_LONG)
#define DT_BLOCK_SHIFT		10
#define DT_BLOCK_PAGES		BIT(DT_BLOCK_SHIFT)
#define DT_BLOCK_WORDS		(DT_BLOCK_PAGES / BITS_PER_LONG)
#define DT_CHUNK_SHIFT		18
#define DT_CHUNK_PAGES		BIT_ULL(DT_CHUNK_SHIFT)
#define DT_CHUNK_BLOCKS		BIT(DT_CHUNK_SHIFT - DT_BLOCK_SHIFT)
#define DT_CHUNK_LINES		BIT(DT_CHUNK_SHIFT - DT_LINE_SHIFT)
#define DT_CHUNK_SUM_WORDS	(DT_CHUNK_LINES / BITS_PER_LONG)
/* Slack for the per-range chunk alignment: at most one chunk per range. */
#define DT_MAX_CHUNKS		((DT_MAX_PAGES >> DT_CHUNK_SHIFT) + DT_MAX_RANGES)

/**
 * struct dt_block - leaf bitmap, one bit per page
 * @bits: page bits; set by markers with atomic RMW, cleared by the reporter
 *	with xchg()/cmpxchg()
 */
struct dt_block {
	unsigned long bits[DT_BLOCK_WORDS];
};

/**
 * struct dt_chunk - lazily allocated header of one chunk
 * @blk: block pointers, each published once with cmpxchg() and kept until
 *	dt_log_destroy()
 */
struct dt_chunk {
	struct dt_block *blk[DT_CHUNK_BLOCKS];
};

/**
 * struct dt_irange - a logged range after page rounding and merging
 * @start: first byte, page aligned
 * @last: last byte (inclusive), one below a page boundary
 * @npages: pages in the range
 * @base: global page index of @start; a multiple of DT_CHUNK_PAGES, so a
 *	chunk never spans two ranges
 */
struct dt_irange {
	u64 start;
	u64 last;
	u64 npages;
	u64 base;
};

/* Per-CPU counters, updated with this_cpu_add() (IRQ safe). */
struct dt_pcpu_stats {
	u64 marks_fast;		/* single-page marks done by the fast path */
	u64 marks;
	u64 marked_pages;
	u64 newly_dirty;
	u64 oor_marks;
	u64 oor_bytes;
	u64 fallback_marks;
};

/* Lines a report keeps in flight (dt_core.c, struct dt_emit). */
#define DT_RING		64

/**
 * struct dt_line_slot - a line of page bits a report has queued
 * @g: first global page of the line
 * @slot: its block pointer in the chunk header
 * @w: its first page word, once resolved
 */
struct dt_line_slot {
	u64 g;
	struct dt_block **slot;
	unsigned long *w;
};

/**
 * struct dt_log - a dirty log
 * @shift: log2 of the page size
 * @nr_ranges: entries in @ranges
 * @nchunks: entries in @dir, bits in @top and @alldirty
 * @hint: index of the range the last multi-range fast-path mark hit
 * @logged_bytes: sum of the rounded range lengths
 * @dir: chunk directory: a header pointer per chunk, published once with
 *	cmpxchg() and kept until dt_log_destroy()
 * @lsum: line summary, DT_CHUNK_SUM_WORDS words per chunk
 * @top: summary bit per chunk, see the geometry comment above
 * @alldirty: bit c set when chunk c must be reported whole (atomic-context
 *	fallback); set by markers, cleared by the reporter
 * @all_mapped: all-mapped feeder attached; read with READ_ONCE() by the
 *	reporter, written under @report_lock
 * @pcpu: per-CPU statistics
 * @bitmap_bytes: bytes allocated for bitmaps and directories
 * @max_bytes: what @bitmap_bytes reaches with every page dirty
 * @cap_bytes: the admin's cap when the log was created (0: none); the log
 *	was created only if @max_bytes fits under it
 * @chunks_alloc: chunk headers allocated
 * @blocks_alloc: leaf blocks allocated
 * @last_oor_iova: latest out-of-range byte, WRITE_ONCE() by markers
 * @report_lock: serialises reporters, feeder attach/detach and everything
 *	below it
 * @reports: report calls
 * @reported_pages: pages delivered to sinks
 * @cleared_pages: page bits cleared by reporters
 * @fallback_reported: chunks reported whole because of @alldirty
 * @oor_seen: out-of-range marks already returned in a &struct dt_report
 * @iommu_domain: IOMMU domain of the iommu-hw feeder, or NULL
 * @report_q: the reporter's queue of lines (struct dt_emit), here rather
 *	than on the reporter's stack: 1.5 KiB
 * @ranges: the logged ranges, sorted by @start, disjoint
 *
 * Lifetime: markers need no lock, but must hold an RCU read-side critical
 * section (rcu_read_lock(), or preemption or IRQs disabled) from fetching the
 * log pointer to returning from dt_mark(); the owner unpublishes the pointer
 * and then calls dt_log_destroy(), which waits for a grace period first.
 */
struct dt_log {
	unsigned int shift;
	u32 nr_ranges;
	u64 nchunks;
	u32 hint;
	u64 logged_bytes;
	struct dt_chunk **dir;
	unsigned long *lsum;
	unsigned long *top;
	unsigned long *alldirty;
	bool all_mapped;
	struct dt_pcpu_stats __percpu *pcpu;
	atomic64_t bitmap_bytes;
	u64 max_bytes;
	u64 cap_bytes;
	atomic64_t chunks_alloc;
	atomic64_t blocks_alloc;
	u64 last_oor_iova;
	struct mutex report_lock;	/* see above */
	u64 reports;
	u64 reported_pages;
	u64 cleared_pages;
	u64 fallback_reported;
	u64 oor_seen;
	void *iommu_domain;
	struct dt_line_slot report_q[DT_RING];
	struct dt_irange ranges[];
};

void dt_log_set_all_mapped(struct dt_log *log, bool on);

extern unsigned int dt_max_log_mb;

#endif /* _DT_INTERNAL_H */
