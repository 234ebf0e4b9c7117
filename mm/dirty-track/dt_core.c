// SPDX-License-Identifier: GPL-2.0
/*
 * dirty_track core: range setup, lock-free marking, read-and-clear reports.
 *
 * This file is also compiled in user space (selftests/unit/dirty_track and
 * bench/dirty_track) against thin shims of the kernel headers it includes;
 * keep it to the kernel APIs those shims provide.
 *
 * Memory ordering.  A marker sets bits bottom-up: the page bit, then the line
 * summary bit, then the chunk's top bit, each with a fully ordered atomic RMW
 * (or a plain test that finds the bit already set, followed by smp_rmb()).
 * The reporter clears top-down with xchg()/cmpxchg(), so a summary bit is
 * always cleared before the bits it summarises.  If a marker's test of a
 * summary bit reads it as set before the reporter clears it, the marker's page
 * bit was set before that clear, and the reporter's later read of the page
 * word sees it (store-buffering with full barriers on both sides); if it reads
 * it clear, the marker sets it and the next report finds the page.  The marker
 * always walks every level, so when dt_mark() returns each of its pages is
 * either reachable from the top or already taken by a running report.
 */

#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/err.h>
#include <linux/export.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/percpu.h>
#include <linux/prefetch.h>
#include <linux/preempt.h>
#include <linux/irqflags.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include <linux/dirty_track.h>

#include "dt_internal.h"

/* ------------------------------------------------------------------ */
/* bit helpers                                                         */

/* Bits lo..hi (inclusive) of a word. */
static inline unsigned long dt_mask(unsigned int lo, unsigned int hi)
{
	return (~0UL << lo) & (~0UL >> (BITS_PER_LONG - 1 - hi));
}

/*
 * Set @mask in *@w; return the bits that were clear before.  Fully ordered
 * when it writes; when every bit is already set it only reads.
 */
static inline unsigned long dt_word_set(unsigned long *w, unsigned long mask)
{
	unsigned long old = READ_ONCE(*w);

	if ((old & mask) == mask) {
		smp_rmb();	/* order the test before the next level's test */
		return 0;
	}
	if (is_power_of_2(mask)) {
		if (test_and_set_bit(__ffs(mask), w))
			return 0;
		return mask;
	}
	if (mask == ~0UL)
		return ~xchg(w, ~0UL);
	while (!try_cmpxchg(w, &old, old | mask))
		;
	return mask & ~old;
}

/*
 * Read *@w and atomically clear the bits in @clear; return the old value
 * masked with @want.  Bits in @want but not in @clear are only read (partly
 * covered children stay summarised).
 */
static inline unsigned long dt_word_take(unsigned long *w, unsigned long clear,
					 unsigned long want)
{
	unsigned long old = READ_ONCE(*w);

	if (!(old & want))
		return 0;
	if (!(old & clear)) {
		smp_rmb();	/* order this read before reads of children */
		return old & want;
	}
	if (clear == ~0UL)
		return xchg(w, 0UL) & want;
	while (!try_cmpxchg(w, &old, old & ~clear))
		;
	return old & want;
}

/* Set bit @n of bitmap @map (test first); fully ordered as dt_word_set(). */
static __always_inline void dt_set_bit(unsigned long *map, u64 n)
{
	unsigned long *w = &map[n / BITS_PER_LONG];

	if (READ_ONCE(*w) & BIT(n % BITS_PER_LONG))
		smp_rmb();	/* order the test before the next level's test */
	else
		test_and_set_bit(n % BITS_PER_LONG, w);
}

/* Set bits @a..@z (inclusive) of bitmap @map. */
static void dt_set_bits(unsigned long *map, u64 a, u64 z)
{
	u64 w;

	for (w = a / BITS_PER_LONG; w <= z / BITS_PER_LONG; w++)
		dt_word_set(&map[w],
			    dt_mask(w == a / BITS_PER_LONG ? a % BITS_PER_LONG : 0,
				    w == z / BITS_PER_LONG ? z % BITS_PER_LONG :
				    BITS_PER_LONG - 1));
}

static void dt_account(struct dt_log *log, s64 bytes)
{
	atomic64_add(bytes, &log->bitmap_bytes);
}

/*
 * The admin's cap on a log's memory, in MiB (0: none): the module parameter
 * max_log_mb of dirty_track.ko, read once per log, at creation.
 */
unsigned int dt_max_log_mb;

/* ------------------------------------------------------------------ */
/* creation and destruction                                            */

/* Bytes allocated at creation: directory, line summary, top, alldirty. */
static u64 dt_fixed_bytes(u64 nchunks)
{
	return nchunks * (sizeof(struct dt_chunk *) +
			  DT_CHUNK_SUM_WORDS * sizeof(long)) +
	       2 * BITS_TO_LONGS(nchunks) * sizeof(long);
}

static int dt_cmp_range(const void *a, const void *b)
{
	const struct dt_range *x = a, *y = b;

	if (x->iova != y->iova)
		return x->iova < y->iova ? -1 : 1;
	return 0;
}

/**
 * dt_log_create() - create a dirty log over a set of IOVA ranges
 * @ranges: the ranges, in any order; need not be page aligned
 * @nr_ranges: number of ranges, 1 to %DT_MAX_RANGES
 * @page_size: log granularity in bytes: 0 for 4 KiB, else a power of two
 *	of at least 4 KiB
 *
 * Each range is widened to whole pages; ranges that then share a page are
 * merged.  Ranges whose bytes overlap are rejected.  Only the directory and
 * summaries are allocated here (about 72 bytes per 2^18 logged pages);
 * bitmaps are allocated as pages are first marked, or by dt_prealloc().
 * With a cap set (dt_max_log_mb), a log whose memory could grow past it
 * with every page dirty is not created: a log never needs more later.
 *
 * Context: process context, may sleep.
 * Return: the log, or ERR_PTR(-EINVAL) for bad arguments, zero-length or
 * overlapping ranges, ERR_PTR(-E2BIG) above %DT_MAX_PAGES pages,
 * ERR_PTR(-ENOSPC) when its memory could pass the cap, ERR_PTR(-ENOMEM).
 */
struct dt_log *dt_log_create(const struct dt_range *ranges, u32 nr_ranges,
			     u64 page_size)
{
	struct dt_range *sorted;
	struct dt_log *log;
	u64 pages = 0, nchunks = 0, mask;
	unsigned int shift;
	u32 i, n = 0;
	int ret;

	if (!page_size)
		page_size = 1ULL << DT_PAGE_SHIFT_MIN;
	if (!ranges || !nr_ranges || nr_ranges > DT_MAX_RANGES ||
	    !is_power_of_2(page_size) ||
	    page_size < (1ULL << DT_PAGE_SHIFT_MIN))
		return ERR_PTR(-EINVAL);
	shift = ilog2(page_size);
	mask = page_size - 1;

	sorted = kmalloc_array(nr_ranges, sizeof(*sorted), GFP_KERNEL);
	if (!sorted)
		return ERR_PTR(-ENOMEM);
	memcpy(sorted, ranges, nr_ranges * sizeof(*sorted));
	sort(sorted, nr_ranges, sizeof(*sorted), dt_cmp_range, NULL);

	ret = -EINVAL;
	for (i = 0; i < nr_ranges; i++) {
		if (!sorted[i].length ||
		    sorted[i].length - 1 > U64_MAX - sorted[i].iova)
			goto out_free_sorted;
		if (i && sorted[i].iova <=
			 sorted[i - 1].iova + (sorted[i - 1].length - 1))
			goto out_free_sorted;
	}

	log = kzalloc(struct_size(log, ranges, nr_ranges), GFP_KERNEL);
	ret = -ENOMEM;
	if (!log)
		goto out_free_sorted;

	/* Round to pages, merge ranges that now touch the same page. */
	for (i = 0; i < nr_ranges; i++) {
		u64 start = sorted[i].iova & ~mask;
		u64 last = (sorted[i].iova + (sorted[i].length - 1)) | mask;

		if (n && start <= log->ranges[n - 1].last) {
			log->ranges[n - 1].last = last;
			continue;
		}
		log->ranges[n].start = start;
		log->ranges[n].last = last;
		n++;
	}
	log->nr_ranges = n;
	log->shift = shift;

	ret = -E2BIG;
	for (i = 0; i < n; i++) {
		struct dt_irange *r = &log->ranges[i];
		u64 np = ((r->last - r->start) >> shift) + 1;

		if (np > DT_MAX_PAGES || pages + np > DT_MAX_PAGES)
			goto out_free_log;
		r->npages = np;
		r->base = nchunks << DT_CHUNK_SHIFT;
		pages += np;
		nchunks += DIV_ROUND_UP(np, DT_CHUNK_PAGES);
		/* saturated: a log of the whole 2^64 space has U64_MAX */
		if (check_add_overflow(log->logged_bytes,
				       r->last - r->start + 1,
				       &log->logged_bytes) ||
		    r->last - r->start + 1 == 0)
			log->logged_bytes = U64_MAX;
	}
	/* Cannot trigger given the page limit; keeps allocations bounded. */
	if (WARN_ON_ONCE(nchunks > DT_MAX_CHUNKS))
		goto out_free_log;
	log->nchunks = nchunks;
	log->max_bytes = dt_fixed_bytes(nchunks);
	for (i = 0; i < n; i++)
		log->max_bytes += DIV_ROUND_UP(log->ranges[i].npages,
					       DT_CHUNK_PAGES) *
				  sizeof(struct dt_chunk) +
				  DIV_ROUND_UP(log->ranges[i].npages,
					       DT_BLOCK_PAGES) *
				  sizeof(struct dt_block);
	log->cap_bytes = (u64)READ_ONCE(dt_max_log_mb) << 20;
	ret = -ENOSPC;
	if (log->cap_bytes && log->max_bytes > log->cap_bytes)
		goto out_free_log;

	ret = -ENOMEM;
	log->dir = kvcalloc(nchunks, sizeof(*log->dir), GFP_KERNEL);
	log->lsum = kvcalloc(nchunks * DT_CHUNK_SUM_WORDS, sizeof(long),
			     GFP_KERNEL);
	log->top = kvcalloc(BITS_TO_LONGS(nchunks), sizeof(long), GFP_KERNEL);
	log->alldirty = kvcalloc(BITS_TO_LONGS(nchunks), sizeof(long),
				 GFP_KERNEL);
	log->pcpu = alloc_percpu(struct dt_pcpu_stats);
	if (!log->dir || !log->lsum || !log->top || !log->alldirty ||
	    !log->pcpu)
		goto out_free_log;
	mutex_init(&log->report_lock);
	dt_account(log, dt_fixed_bytes(nchunks));
	kfree(sorted);
	return log;

out_free_log:
	free_percpu(log->pcpu);
	kvfree(log->alldirty);
	kvfree(log->top);
	kvfree(log->lsum);
	kvfree(log->dir);
	kfree(log);
out_free_sorted:
	kfree(sorted);
	return ERR_PTR(ret);
}
EXPORT_SYMBOL_GPL(dt_log_create);

/**
 * dt_log_destroy() - free a log
 * @log: the log, or NULL
 *
 * The caller must have made the log unreachable for new markers (e.g. with
 * rcu_assign_pointer(p, NULL)) and must not report concurrently.  Markers
 * that are still inside their RCU read-side critical section may finish:
 * dt_log_destroy() waits for a grace period (synchronize_rcu()) before it
 * frees anything.  The iommu-hw feeder must have been detached.
 *
 * Context: process context, sleeps.
 */
void dt_log_destroy(struct dt_log *log)
{
	u64 c;
	unsigned int b;

	if (!log)
		return;
	synchronize_rcu();
	for (c = 0; c < log->nchunks; c++) {
		struct dt_chunk *chunk = log->dir[c];

		if (!chunk)
			continue;
		for (b = 0; b < DT_CHUNK_BLOCKS; b++)
			kfree(chunk->blk[b]);
		kfree(chunk);
	}
	free_percpu(log->pcpu);
	kvfree(log->alldirty);
	kvfree(log->top);
	kvfree(log->lsum);
	kvfree(log->dir);
	mutex_destroy(&log->report_lock);
	kfree(log);
}
EXPORT_SYMBOL_GPL(dt_log_destroy);

/**
 * dt_log_page_size() - page size of a log
 * @log: the log
 *
 * Return: the page size in bytes.
 */
u64 dt_log_page_size(const struct dt_log *log)
{
	return 1ULL << log->shift;
}
EXPORT_SYMBOL_GPL(dt_log_page_size);

/* ------------------------------------------------------------------ */
/* lazy allocation                                                     */

static struct dt_chunk *dt_get_chunk(struct dt_log *log, u64 c, gfp_t gfp)
{
	struct dt_chunk *chunk = READ_ONCE(log->dir[c]), *old;

	if (chunk || !gfp)
		return chunk;
	chunk = kzalloc(sizeof(*chunk), gfp);
	if (!chunk)
		return NULL;
	/* Fully ordered: the zeroed contents are visible before the pointer. */
	old = cmpxchg(&log->dir[c], NULL, chunk);
	if (old) {
		kfree(chunk);
		return old;
	}
	dt_account(log, sizeof(*chunk));
	atomic64_inc(&log->chunks_alloc);
	return chunk;
}

static struct dt_block *dt_get_block(struct dt_log *log,
				     struct dt_chunk *chunk, unsigned int b,
				     gfp_t gfp)
{
	struct dt_block *blk = READ_ONCE(chunk->blk[b]), *old;

	if (blk || !gfp)
		return blk;
	blk = kzalloc(sizeof(*blk), gfp);
	if (!blk)
		return NULL;
	old = cmpxchg(&chunk->blk[b], NULL, blk);
	if (old) {
		kfree(blk);
		return old;
	}
	dt_account(log, sizeof(*blk));
	atomic64_inc(&log->blocks_alloc);
	return blk;
}

/* ------------------------------------------------------------------ */
/* marking                                                             */

/* Index of the first range whose last byte is >= @iova, or nr_ranges. */
static u32 dt_find_range(const struct dt_log *log, u64 iova)
{
	u32 lo = 0, hi = log->nr_ranges;

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (log->ranges[mid].last < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Record pages [g, g + n) (global indices inside one chunk) as dirty. */
static bool dt_mark_chunk(struct dt_log *log, u64 g, u64 n, gfp_t gfp,
			  u64 *newly)
{
	u64 c = g >> DT_CHUNK_SHIFT, g0 = g;
	struct dt_chunk *chunk = dt_get_chunk(log, c, gfp);

	if (!chunk)
		goto fallback;
	while (n) {
		unsigned int b = (g >> DT_BLOCK_SHIFT) & (DT_CHUNK_BLOCKS - 1);
		unsigned int off = g & (DT_BLOCK_PAGES - 1);
		unsigned int cnt = min_t(u64, n, DT_BLOCK_PAGES - off);
		struct dt_block *blk = dt_get_block(log, chunk, b, gfp);
		unsigned int w, lo, hi;

		if (!blk)
			goto fallback;
		for (w = off / BITS_PER_LONG;
		     w <= (off + cnt - 1) / BITS_PER_LONG; w++) {
			lo = w == off / BITS_PER_LONG ? off % BITS_PER_LONG : 0;
			hi = w == (off + cnt - 1) / BITS_PER_LONG ?
			     (off + cnt - 1) % BITS_PER_LONG : BITS_PER_LONG - 1;
			*newly += hweight_long(dt_word_set(&blk->bits[w],
							   dt_mask(lo, hi)));
		}
		g += cnt;
		n -= cnt;
	}
	dt_set_bits(log->lsum, g0 >> DT_LINE_SHIFT, (g - 1) >> DT_LINE_SHIFT);
	dt_set_bit(log->top, c);
	return true;

fallback:
	/* Publish what was marked so far, then the whole-chunk bit. */
	if (g > g0)
		dt_set_bits(log->lsum, g0 >> DT_LINE_SHIFT,
			    (g - 1) >> DT_LINE_SHIFT);
	dt_set_bit(log->alldirty, c);
	dt_set_bit(log->top, c);
	return false;
}

static void dt_mark_pages(struct dt_log *log, u64 g, u64 n, gfp_t gfp,
			  u64 *newly, bool *fell_back)
{
	while (n) {
		u64 cnt = min(n, DT_CHUNK_PAGES - (g & (DT_CHUNK_PAGES - 1)));

		if (!dt_mark_chunk(log, g, cnt, gfp, newly))
			*fell_back = true;
		g += cnt;
		n -= cnt;
	}
}

static bool dt_atomic_context(unsigned int flags)
{
	return (flags & DT_MARK_ATOMIC) || in_nmi() || in_hardirq() ||
	       irqs_disabled();
}

/*
 * Walk the part of [iova, end] inside the logged ranges; call @fn for each
 * in-range piece as (range, first page, page count).  Return the number of
 * bytes outside the ranges (saturated) and their first byte in *@first_oor.
 */
typedef void (*dt_walk_fn)(struct dt_log *log, u64 g, u64 n, void *arg);

static u64 dt_sat_add(u64 a, u64 b)
{
	return a + b < a ? U64_MAX : a + b;
}

static u64 dt_walk(struct dt_log *log, u64 iova, u64 end, dt_walk_fn fn,
		   void *arg, u64 *first_oor)
{
	u32 i = dt_find_range(log, iova);
	u64 cur = iova, oor = 0;

	for (;;) {
		const struct dt_irange *r;
		u64 seg_end, first, last;

		if (i >= log->nr_ranges || log->ranges[i].start > end) {
			if (!oor)
				*first_oor = cur;
			oor = dt_sat_add(oor, end - cur);
			oor = dt_sat_add(oor, 1);
			break;
		}
		r = &log->ranges[i];
		if (r->start > cur) {
			if (!oor)
				*first_oor = cur;
			oor = dt_sat_add(oor, r->start - cur);
			cur = r->start;
		}
		seg_end = min(end, r->last);
		first = (cur - r->start) >> log->shift;
		last = (seg_end - r->start) >> log->shift;
		fn(log, r->base + first, last - first + 1, arg);
		if (seg_end == end)
			break;
		cur = seg_end + 1;
		i++;
	}
	return oor;
}

struct dt_mark_arg {
	gfp_t gfp;
	u64 newly;
	u64 pages;
	bool fell_back;
};

static void dt_mark_fn(struct dt_log *log, u64 g, u64 n, void *arg)
{
	struct dt_mark_arg *m = arg;

	m->pages += n;
	dt_mark_pages(log, g, n, m->gfp, &m->newly, &m->fell_back);
}

/*
 * Fast path of dt_mark(): one page whose leaf block exists.  Returns false
 * when the slow path must run (it then does the whole mark).
 */
static __always_inline bool dt_mark_one(struct dt_log *log, u64 iova)
{
	const struct dt_irange *r = &log->ranges[0];
	/*
	 * Loaded up front: the CPU can fetch these while the page bit's
	 * cache line is still on its way; the summary words themselves are
	 * read only after the page bit is set.
	 */
	unsigned long *lsum = log->lsum, *top = log->top;
	struct dt_pcpu_stats __percpu *pcpu = log->pcpu;
	struct dt_chunk *chunk;
	struct dt_block *blk;
	unsigned long *w;
	u32 i;
	u64 g;

	if (unlikely(iova - r->start > r->last - r->start)) {
		if (log->nr_ranges == 1)
			return false;
		/* Several ranges: try the last one hit, then search. */
		r = &log->ranges[READ_ONCE(log->hint)];
		if (iova - r->start > r->last - r->start) {
			i = dt_find_range(log, iova);
			if (i >= log->nr_ranges)
				return false;
			r = &log->ranges[i];
			if (iova < r->start)
				return false;
			WRITE_ONCE(log->hint, i);
		}
	}
	g = r->base + ((iova - r->start) >> log->shift);
	chunk = READ_ONCE(log->dir[g >> DT_CHUNK_SHIFT]);
	if (unlikely(!chunk))
		return false;
	blk = READ_ONCE(chunk->blk[(g >> DT_BLOCK_SHIFT) &
				   (DT_CHUNK_BLOCKS - 1)]);
	if (unlikely(!blk))
		return false;
	w = &blk->bits[(g / BITS_PER_LONG) & (DT_BLOCK_WORDS - 1)];
	if (!(READ_ONCE(*w) & BIT(g % BITS_PER_LONG))) {
		if (!test_and_set_bit(g % BITS_PER_LONG, w))
			this_cpu_inc(pcpu->newly_dirty);
	} else {
		smp_rmb();	/* order the test before the summary tests */
	}
	dt_set_bit(lsum, g >> DT_LINE_SHIFT);
	dt_set_bit(top, g >> DT_CHUNK_SHIFT);
	this_cpu_inc(pcpu->marks_fast);
	return true;
}

/* dt_mark() for several pages, missing blocks and out-of-range bytes. */
static noinline int dt_mark_slow(struct dt_log *log, u64 iova, u64 length,
				 unsigned int flags)
{
	struct dt_mark_arg m = { };
	u64 end, oor, first_oor = 0, wrap = 0;

	if (!length)
		return 0;
	if (!dt_atomic_context(flags))
		m.gfp = GFP_NOWAIT | __GFP_NOWARN;
	end = iova + (length - 1);
	if (end < iova) {		/* wraps: the tail is out of range */
		wrap = end + 1;
		end = U64_MAX;
	}
	oor = dt_walk(log, iova, end, dt_mark_fn, &m, &first_oor);

	this_cpu_inc(log->pcpu->marks);
	this_cpu_add(log->pcpu->marked_pages, m.pages);
	if (m.newly)
		this_cpu_add(log->pcpu->newly_dirty, m.newly);
	if (m.fell_back)
		this_cpu_inc(log->pcpu->fallback_marks);
	if (wrap && !oor)
		first_oor = 0;
	oor = dt_sat_add(oor, wrap);
	if (unlikely(oor)) {
		WRITE_ONCE(log->last_oor_iova, first_oor);
		this_cpu_add(log->pcpu->oor_bytes, oor);
		this_cpu_inc(log->pcpu->oor_marks);
		return -ERANGE;
	}
	return 0;
}

/**
 * dt_mark() - record that a device wrote [@iova, @iova + @length)
 * @log: the log
 * @iova: first byte written
 * @length: bytes written; 0 is a no-op
 * @flags: %DT_MARK_ATOMIC or 0
 *
 * Every page touched by the range is marked dirty.  Lock free; never sleeps.
 * Without %DT_MARK_ATOMIC, and outside hard IRQ, NMI and IRQs-disabled
 * context, a missing bitmap block is allocated with GFP_NOWAIT; in atomic
 * context, or if that fails, the chunk is marked "all dirty" instead (see
 * &enum dt_mark_flags).  Bytes outside the logged ranges are not logged but
 * counted (&dt_stats.oor_marks, &dt_stats.oor_bytes) and returned by the next
 * report.  A mark that returns before a report starts is delivered by that
 * report or an earlier one.
 *
 * Context: any, including hard IRQ; the caller holds an RCU read-side
 * critical section covering its access to @log (see dt_log_destroy()).
 * Return: 0, or -ERANGE if some bytes were outside the logged ranges.
 */
int dt_mark(struct dt_log *log, u64 iova, u64 length, unsigned int flags)
{
	/*
	 * One page, block present: no allocation, no range walk.  (A length
	 * that wraps past 2^64 never stays inside one page.)
	 */
	if (likely(length - 1 < (1ULL << log->shift) &&
		   !((iova ^ (iova + (length - 1))) >> log->shift)) &&
	    dt_mark_one(log, iova))
		return 0;
	return dt_mark_slow(log, iova, length, flags);
}
EXPORT_SYMBOL_GPL(dt_mark);

struct dt_prealloc_arg {
	gfp_t gfp;
	int ret;
};

static void dt_prealloc_fn(struct dt_log *log, u64 g, u64 n, void *arg)
{
	struct dt_prealloc_arg *p = arg;
	u64 end = g + n;

	while (g < end && !p->ret) {
		struct dt_chunk *chunk = dt_get_chunk(log, g >> DT_CHUNK_SHIFT,
						      p->gfp);
		unsigned int b = (g >> DT_BLOCK_SHIFT) & (DT_CHUNK_BLOCKS - 1);

		if (!chunk || !dt_get_block(log, chunk, b, p->gfp))
			p->ret = -ENOMEM;
		g = (g | (DT_BLOCK_PAGES - 1)) + 1;
		if (gfpflags_allow_blocking(p->gfp))
			cond_resched();
	}
}

/**
 * dt_prealloc() - allocate the bitmap blocks of the logged pages of a window
 * @log: the log
 * @iova: first byte of the window
 * @length: bytes in the window; 0 is a no-op
 * @gfp: allocation flags, e.g. GFP_KERNEL
 *
 * Allocates the blocks of every logged page in the window, so that marks of
 * those pages in atomic context never need the "all dirty" fallback.  Like a
 * report window, the window may extend beyond the logged ranges (e.g. 0 to
 * U64_MAX for the whole log); unlogged bytes need no memory and are skipped.
 * Costs 128 bytes per 1024 pages plus a 2 KiB header per 2^18 pages.
 *
 * Context: process context if @gfp may sleep; the log must stay alive.
 * Return: 0, or -ENOMEM (blocks allocated before the failure are kept).
 */
int dt_prealloc(struct dt_log *log, u64 iova, u64 length, gfp_t gfp)
{
	struct dt_prealloc_arg p = { .gfp = gfp };
	u64 end, first_oor;

	if (!length)
		return 0;
	end = iova + (length - 1);
	if (end < iova)
		end = U64_MAX;
	dt_walk(log, iova, end, dt_prealloc_fn, &p, &first_oor);
	return p.ret;
}
EXPORT_SYMBOL_GPL(dt_prealloc);

/* ------------------------------------------------------------------ */
/* reporting                                                           */

/*
 * Lines found in the summaries go through a software pipeline (see
 * dt_queue()): DT_AHEAD lines after one is queued its block pointer is
 * loaded and its page words prefetched, DT_AHEAD lines later it is taken.
 */
#define DT_AHEAD	16
#if DT_RING <= 2 * DT_AHEAD || (DT_RING & (DT_RING - 1))
#error "DT_RING must be a power of two above 2 * DT_AHEAD"
#endif

struct dt_emit {
	struct dt_log *log;
	const struct dt_irange *r;
	dt_sink_fn sink;
	void *priv;
	struct dt_report *rep;
	u64 start;		/* pending run [start, end) of global pages */
	u64 end;
	u64 cleared;
	u64 ga, gz;		/* window of the current span, global pages */
	unsigned int head, mid, tail;	/* queued, resolved, taken lines */
	struct dt_line_slot *q;	/* the log's @report_q, under report_lock */
};

static void dt_emit_flush_big(struct dt_emit *em, u64 iova, u64 n)
{
	unsigned int shift = em->log->shift;

	while (n) {
		/* A run can reach 2^64 bytes; deliver it in halves then. */
		u64 k = min(n, 1ULL << (63 - shift));

		if (em->sink)
			em->sink(em->priv, iova, k << shift);
		em->rep->runs++;
		iova += k << shift;
		n -= k;
	}
}

/* Deliver the pending run. */
static void dt_emit_flush(struct dt_emit *em)
{
	unsigned int shift = em->log->shift;
	u64 n = em->end - em->start;
	u64 iova;

	if (!n)
		return;
	iova = em->r->start + ((em->start - em->r->base) << shift);
	em->rep->pages += n;
	em->start = em->end;
	if (unlikely(n > (1ULL << (63 - shift)))) {
		dt_emit_flush_big(em, iova, n);
		return;
	}
	if (em->sink)
		em->sink(em->priv, iova, n << shift);
	em->rep->runs++;
}

/* Add global pages [g, g + n); calls arrive in ascending order of @g. */
static __always_inline void dt_emit(struct dt_emit *em, u64 g, u64 n)
{
	if (g <= em->end && em->end > em->start) {
		em->end = max(em->end, g + n);
		return;
	}
	dt_emit_flush(em);
	em->start = g;
	em->end = g + n;
}

static void dt_emit_word(struct dt_emit *em, u64 g0, unsigned long v)
{
	while (v) {
		unsigned int lo = __ffs(v);
		unsigned long x = v >> lo;
		unsigned int len = ~x ? __ffs(~x) : BITS_PER_LONG;

		dt_emit(em, g0 + lo, len);
		if (lo + len >= BITS_PER_LONG)
			break;
		v &= ~dt_mask(0, lo + len - 1);
	}
}

/* Take and emit the page words of a line that lies inside the window. */
static __always_inline void dt_take_line(struct dt_emit *em, u64 g,
					 unsigned long *w)
{
	unsigned int i;

	for (i = 0; i < DT_LINE_WORDS; i++) {
		unsigned long v = READ_ONCE(w[i]);

		if (!v)
			continue;
		v = xchg(&w[i], 0UL);
		if (v == ~0UL) {
			em->cleared += BITS_PER_LONG;
			dt_emit(em, g + i * BITS_PER_LONG, BITS_PER_LONG);
		} else if (is_power_of_2(v)) {
			em->cleared++;
			dt_emit(em, g + i * BITS_PER_LONG + __ffs(v), 1);
		} else {
			em->cleared += hweight_long(v);
			dt_emit_word(em, g + i * BITS_PER_LONG, v);
		}
	}
}

/* Take and emit the page bits of a line for pages [ga, gz] only. */
static void dt_take_line_part(struct dt_emit *em, u64 g, unsigned long *w)
{
	unsigned int i;

	for (i = 0; i < DT_LINE_WORDS; i++) {
		u64 gw = g + i * BITS_PER_LONG;
		unsigned long m, v;

		if (gw + BITS_PER_LONG - 1 < em->ga || gw > em->gz)
			continue;
		m = dt_mask(em->ga > gw ? em->ga - gw : 0,
			    em->gz < gw + BITS_PER_LONG - 1 ?
			    em->gz - gw : BITS_PER_LONG - 1);
		v = dt_word_take(&w[i], m, m);
		if (!v)
			continue;
		em->cleared += hweight_long(v);
		dt_emit_word(em, gw, v);
	}
}

/* Load the block pointer of the oldest unresolved line, prefetch its words. */
static __always_inline void dt_resolve(struct dt_emit *em)
{
	unsigned int i = em->mid++ % DT_RING;
	struct dt_block *blk = READ_ONCE(*em->q[i].slot);
	unsigned long *w = NULL;

	if (blk) {
		w = &blk->bits[(em->q[i].g / BITS_PER_LONG) &
			       (DT_BLOCK_WORDS - DT_LINE_WORDS)];
		prefetchw(w);
	}
	em->q[i].w = w;
}

/* Take the oldest resolved line; lines are taken in ascending order. */
static __always_inline void dt_take(struct dt_emit *em)
{
	unsigned int i = em->tail++ % DT_RING;
	u64 g = em->q[i].g;

	if (!em->q[i].w)
		return;
	if (likely(g >= em->ga && g + DT_LINE_PAGES - 1 <= em->gz))
		dt_take_line(em, g, em->q[i].w);
	else
		dt_take_line_part(em, g, em->q[i].w);
}

/*
 * Queue line @g, whose block pointer is *@slot and whose summary bit is
 * already cleared (or, for a line partly outside the window, only read).
 */
static __always_inline void dt_queue(struct dt_emit *em, u64 g,
				     struct dt_block **slot)
{
	unsigned int i = em->head++ % DT_RING;

	prefetch(slot);
	em->q[i].g = g;
	em->q[i].slot = slot;
	if (em->head - em->mid > DT_AHEAD)
		dt_resolve(em);
	if (em->mid - em->tail > DT_AHEAD)
		dt_take(em);
}

/* Take every queued line. */
static void dt_drain(struct dt_emit *em)
{
	while (em->mid != em->head)
		dt_resolve(em);
	while (em->tail != em->mid)
		dt_take(em);
}

/*
 * A window covers [ga, gz] of "all dirty" chunk @c, whose pages end at
 * @rend.  Mark the rest of the chunk page by page (the reporter may sleep and
 * allocate), so the bit can be cleared without reporting those pages again
 * and again.  A marker that sets the bit again meanwhile loses nothing: its
 * pages are either delivered now or among those marked here.
 */
static bool dt_split_alldirty(struct dt_log *log, u64 c, u64 ga, u64 gz,
			      u64 rend)
{
	u64 gc = c << DT_CHUNK_SHIFT, newly = 0;
	bool fell_back = false;

	if (ga > gc)
		dt_mark_pages(log, gc, ga - gc, GFP_KERNEL, &newly, &fell_back);
	if (gz < rend)
		dt_mark_pages(log, gz + 1, rend - gz, GFP_KERNEL, &newly,
			      &fell_back);
	this_cpu_add(log->pcpu->newly_dirty, newly);
	return !fell_back;
}

/* Report chunk @c for global pages [ga, gz] (clamped to the chunk). */
static void dt_report_chunk(struct dt_emit *em, u64 c, u64 ga, u64 gz)
{
	struct dt_log *log = em->log;
	u64 gc = c << DT_CHUNK_SHIFT;
	u64 gend = gc + DT_CHUNK_PAGES - 1;
	u64 rend = min(gend, em->r->base + em->r->npages - 1);
	unsigned long *lsum = &log->lsum[c * DT_CHUNK_SUM_WORDS];
	unsigned long bit = BIT(c % BITS_PER_LONG);
	unsigned int la, lz, sw;
	struct dt_chunk *chunk;
	bool whole = ga <= gc && gz >= gend;

	ga = max(ga, gc);
	gz = min(gz, gend);

	if (dt_word_take(&log->alldirty[c / BITS_PER_LONG], whole ? bit : 0,
			 bit)) {
		dt_drain(em);	/* keep the runs in ascending order */
		em->rep->fallback_chunks++;
		if (!whole && dt_split_alldirty(log, c, ga, min(gz, rend), rend))
			dt_word_take(&log->alldirty[c / BITS_PER_LONG], bit, bit);
		dt_emit(em, ga, min(gz, rend) - ga + 1);
	}

	chunk = READ_ONCE(log->dir[c]);
	if (!chunk)
		return;
	la = (ga - gc) >> DT_LINE_SHIFT;
	lz = (gz - gc) >> DT_LINE_SHIFT;
	for (sw = la / BITS_PER_LONG; sw <= lz / BITS_PER_LONG; sw++) {
		unsigned int lo = sw == la / BITS_PER_LONG ? la % BITS_PER_LONG : 0;
		unsigned int hi = sw == lz / BITS_PER_LONG ?
				  lz % BITS_PER_LONG : BITS_PER_LONG - 1;
		unsigned long want = dt_mask(lo, hi), full = want, sum;
		u64 g0 = gc + ((u64)sw * BITS_PER_LONG << DT_LINE_SHIFT);

		/* Lines only partly inside the window stay summarised. */
		if (sw == la / BITS_PER_LONG &&
		    ga > g0 + ((u64)lo << DT_LINE_SHIFT))
			full &= ~BIT(lo);
		if (sw == lz / BITS_PER_LONG &&
		    gz < g0 + ((u64)(hi + 1) << DT_LINE_SHIFT) - 1)
			full &= ~BIT(hi);
		sum = dt_word_take(&lsum[sw], full, want);
		while (sum) {
			unsigned int l = sw * BITS_PER_LONG + __ffs(sum);
			struct dt_block **slot;

			sum &= sum - 1;
			slot = &chunk->blk[l >> (DT_BLOCK_SHIFT - DT_LINE_SHIFT)];
			dt_queue(em, gc + ((u64)l << DT_LINE_SHIFT), slot);
		}
	}
}

/* Report global pages [ga, gz] of range @r. */
static void dt_report_span(struct dt_emit *em, u64 ga, u64 gz)
{
	struct dt_log *log = em->log;
	const struct dt_irange *r = em->r;
	u64 c0 = ga >> DT_CHUNK_SHIFT, c1 = gz >> DT_CHUNK_SHIFT, c;

	/* Pages past the range's end are never set: cover the whole chunk. */
	if (gz == r->base + r->npages - 1)
		gz = (c1 << DT_CHUNK_SHIFT) + DT_CHUNK_PAGES - 1;
	em->ga = ga;
	em->gz = gz;

	if (READ_ONCE(log->all_mapped))
		dt_emit(em, ga, min(gz, r->base + r->npages - 1) - ga + 1);

	for (c = c0; c <= c1; ) {
		unsigned int lo = c % BITS_PER_LONG;
		unsigned int hi = min_t(u64, BITS_PER_LONG - 1, lo + (c1 - c));
		u64 cw = c - lo;
		unsigned long want = dt_mask(lo, hi), full = want, top;

		if (c == c0 && ga > (c0 << DT_CHUNK_SHIFT))
			full &= ~BIT(lo);
		if (cw + hi == c1 &&
		    gz < (c1 << DT_CHUNK_SHIFT) + DT_CHUNK_PAGES - 1)
			full &= ~BIT(hi);
		top = dt_word_take(&log->top[c / BITS_PER_LONG], full, want);
		while (top) {
			unsigned int bit = __ffs(top);

			top &= top - 1;
			dt_report_chunk(em, cw + bit, ga, gz);
		}
		c = cw + BITS_PER_LONG;
		cond_resched();
	}
	dt_drain(em);
}

static void dt_report_locked(struct dt_log *log, u64 iova, u64 end,
			     struct dt_emit *em)
{
	u32 i;

	for (i = dt_find_range(log, iova); i < log->nr_ranges; i++) {
		const struct dt_irange *r = &log->ranges[i];
		u64 a, z;

		if (r->start > end)
			break;
		a = max(iova, r->start);
		z = min(end, r->last);
		em->r = r;
		dt_report_span(em, r->base + ((a - r->start) >> log->shift),
			       r->base + ((z - r->start) >> log->shift));
		dt_emit_flush(em);
	}
}

static void dt_report_finish(struct dt_log *log, struct dt_emit *em,
			     struct dt_report *rep)
{
	u64 oor = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		oor += per_cpu_ptr(log->pcpu, cpu)->oor_marks;
	rep->oor_marks = oor - log->oor_seen;
	log->oor_seen = oor;
	rep->last_oor_iova = READ_ONCE(log->last_oor_iova);
	log->reports++;
	log->reported_pages += rep->pages;
	log->cleared_pages += em->cleared;
	log->fallback_reported += rep->fallback_chunks;
}

/**
 * dt_read_and_clear() - deliver and clear the dirty pages of a window
 * @log: the log
 * @iova: first byte of the window
 * @length: bytes in the window; 0 delivers nothing
 * @sink: called for each run of dirty pages, in ascending IOVA order; may
 *	be NULL to take and count the pages only
 * @priv: passed to @sink
 * @rep: if not NULL, filled with a summary (zeroed first)
 *
 * Each page bit is taken with an atomic exchange, so a mark that races with
 * the report is delivered either now or by the next report, never lost.  Runs
 * cover whole pages; they may start before @iova or end after the window
 * when the window is not page aligned.  Chunks whose "all dirty" bit is set
 * are delivered whole (the bit is cleared only by a window covering the
 * whole chunk).  With the all-mapped feeder every logged page of the window
 * is delivered.  Cost: O(summary bits + dirty words) of the window, not
 * O(logged pages).
 *
 * Context: process context; takes the log's report mutex.
 * Return: 0.
 */
int dt_read_and_clear(struct dt_log *log, u64 iova, u64 length,
		      dt_sink_fn sink, void *priv, struct dt_report *rep)
{
	struct dt_report tmp;
	struct dt_emit em = { .log = log, .sink = sink, .priv = priv,
			      .q = log->report_q };
	u64 end;

	if (!rep)
		rep = &tmp;
	memset(rep, 0, sizeof(*rep));
	em.rep = rep;
	end = iova + (length ? length - 1 : 0);
	if (end < iova)
		end = U64_MAX;

	mutex_lock(&log->report_lock);
	if (length)
		dt_report_locked(log, iova, end, &em);
	dt_report_finish(log, &em, rep);
	mutex_unlock(&log->report_lock);
	return 0;
}
EXPORT_SYMBOL_GPL(dt_read_and_clear);

/* Bounce buffer for the user-space bitmap sink. */
#define DT_UBITS	(PAGE_SIZE * BITS_PER_BYTE)

struct dt_ubuf {
	u64 *bits;
	u64 base;		/* IOVA of bit 0 */
	u64 nbits;
	unsigned int shift;
};

static void dt_ubuf_sink(void *priv, u64 iova, u64 length)
{
	struct dt_ubuf *u = priv;
	u64 first = (iova - u->base) >> u->shift;
	u64 last = first + (length >> u->shift) - 1;

	/* Runs never leave the window: it is page aligned. */
	last = min(last, u->nbits - 1);
	for (; first <= last; first++)
		u->bits[first / 64] |= 1ULL << (first % 64);
}

static void dt_remark_fn(struct dt_log *log, u64 g, u64 n, void *arg)
{
	u64 *newly = arg;
	bool fb = false;

	dt_mark_pages(log, g, n, GFP_KERNEL, newly, &fb);
}

/**
 * dt_read_and_clear_user() - read and clear a window into a user bitmap
 * @log: the log
 * @iova: first byte of the window; rounded down to the log's page size
 * @length: bytes in the window; 0 writes nothing
 * @bitmap: user buffer; bit i of u64 word i / 64 stands for the page at
 *	round_down(@iova) + i * page size.  Every bit of the window is written
 *	(dirty or clean), DIV_ROUND_UP(pages, 64) words in all.
 * @rep: if not NULL, filled with a summary
 *
 * Works through a one-page kernel bounce buffer.  If copying to user space
 * fails, the pages of the failed part are marked dirty again, so nothing is
 * lost.
 *
 * Context: process context, may fault and sleep.
 * Return: 0, -EFAULT, or -EINTR (the caller was killed: the batches
 *	already copied out are taken from the log, the rest of the window is
 *	left in it).
 */
int dt_read_and_clear_user(struct dt_log *log, u64 iova, u64 length,
			   u64 __user *bitmap, struct dt_report *rep)
{
	struct dt_report tmp;
	struct dt_emit em = { .log = log, .sink = dt_ubuf_sink,
			      .q = log->report_q };
	struct dt_ubuf u = { .shift = log->shift };
	u64 base, end, npages, done = 0;
	int ret = 0;

	if (!rep)
		rep = &tmp;
	memset(rep, 0, sizeof(*rep));
	em.rep = rep;
	em.priv = &u;
	if (!length)
		return 0;
	base = iova & ~((1ULL << log->shift) - 1);
	end = iova + (length - 1);
	if (end < iova)
		end = U64_MAX;
	npages = ((end - base) >> log->shift) + 1;
	if (!npages)		/* the whole 2^64 space in 1-byte pages */
		return -EINVAL;

	u.bits = kmalloc(DT_UBITS / BITS_PER_BYTE, GFP_KERNEL);
	if (!u.bits)
		return -ENOMEM;

	mutex_lock(&log->report_lock);
	while (done < npages) {
		u64 n = min_t(u64, npages - done, DT_UBITS);
		u64 bytes = DIV_ROUND_UP(n, 64) * sizeof(u64);

		/* the caller's length sets the loop: a kill ends it */
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();

		u.base = base + (done << log->shift);
		u.nbits = n;
		memset(u.bits, 0, bytes);
		dt_report_locked(log, u.base,
				 u.base + ((n - 1) << log->shift) +
				 ((1ULL << log->shift) - 1), &em);
		if (copy_to_user(bitmap + done / 64, u.bits, bytes)) {
			u64 i, newly = 0, f;

			/* Put the taken bits back, then stop. */
			for (i = 0; i < n; i++) {
				u64 a = u.base + (i << log->shift);

				if (!(u.bits[i / 64] & (1ULL << (i % 64))))
					continue;
				dt_walk(log, a, a + ((1ULL << log->shift) - 1),
					dt_remark_fn, &newly, &f);
			}
			this_cpu_add(log->pcpu->newly_dirty, newly);
			ret = -EFAULT;
			break;
		}
		done += n;
	}
	dt_report_finish(log, &em, rep);
	mutex_unlock(&log->report_lock);
	kfree(u.bits);
	return ret;
}
EXPORT_SYMBOL_GPL(dt_read_and_clear_user);

/**
 * dt_log_get_stats() - read a log's statistics
 * @log: the log
 * @st: filled in; counters are summed without stopping markers, so they are
 *	a consistent snapshot only when the log is quiescent
 *
 * Context: any context that may take a mutex.
 */
void dt_log_get_stats(struct dt_log *log, struct dt_stats *st)
{
	u64 newly = 0, c, pending = 0;
	int cpu;

	memset(st, 0, sizeof(*st));
	for_each_possible_cpu(cpu) {
		const struct dt_pcpu_stats *p = per_cpu_ptr(log->pcpu, cpu);

		st->marks += READ_ONCE(p->marks) + READ_ONCE(p->marks_fast);
		st->marked_pages += READ_ONCE(p->marked_pages) +
				    READ_ONCE(p->marks_fast);
		newly += READ_ONCE(p->newly_dirty);
		st->oor_marks += READ_ONCE(p->oor_marks);
		st->oor_bytes += READ_ONCE(p->oor_bytes);
		st->fallback_marks += READ_ONCE(p->fallback_marks);
	}
	for (c = 0; c < BITS_TO_LONGS(log->nchunks); c++)
		pending += hweight_long(READ_ONCE(log->alldirty[c]));

	st->page_size = 1ULL << log->shift;
	st->nr_ranges = log->nr_ranges;
	st->logged_bytes = log->logged_bytes;
	st->bitmap_bytes = atomic64_read(&log->bitmap_bytes);
	st->bitmap_bytes_max = log->max_bytes;
	st->bitmap_cap = log->cap_bytes;
	st->chunks = atomic64_read(&log->chunks_alloc);
	st->blocks = atomic64_read(&log->blocks_alloc);
	st->last_oor_iova = READ_ONCE(log->last_oor_iova);
	st->fallback_chunks_pending = pending;

	mutex_lock(&log->report_lock);
	st->reports = log->reports;
	st->reported_pages = log->reported_pages;
	st->fallback_chunks_reported = log->fallback_reported;
	st->pages_dirty = newly > log->cleared_pages ?
			  newly - log->cleared_pages : 0;
	mutex_unlock(&log->report_lock);
}
EXPORT_SYMBOL_GPL(dt_log_get_stats);

/**
 * dt_log_set_all_mapped() - switch the all-mapped feeder on or off
 * @log: the log
 * @on: report every logged page on every report
 *
 * Context: process context.
 */
void dt_log_set_all_mapped(struct dt_log *log, bool on)
{
	mutex_lock(&log->report_lock);
	WRITE_ONCE(log->all_mapped, on);
	mutex_unlock(&log->report_lock);
}
