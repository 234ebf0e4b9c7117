// SPDX-License-Identifier: GPL-2.0
/*
 * Single-threaded tests of the dirty_track core (mm/dirty-track/dt_core.c,
 * compiled unchanged against the shims in shim/): argument checking, page
 * rounding, edges of the IOVA space, every page size, out-of-range marks,
 * the atomic-context fallback, all-mapped, the user bitmap sink, windows,
 * large logs, and a randomised comparison with a reference model.
 */
#include <stdio.h>
#include <linux/dirty_track.h>
#include "../../../mm/dirty-track/dt_internal.h"
#include "kselftest_harness.h"
#include "dt_test_util.h"

extern int dt_shim_fail_nowait;
extern int dt_shim_fail_copy;
extern long dt_shim_live_allocs;

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)

static struct dt_log *mk1(uint64_t iova, uint64_t len, uint64_t ps)
{
	struct dt_range r = { iova, len };

	return dt_log_create(&r, 1, ps);
}

/* Report [iova, iova+len) into a fresh sink over the given universe. */
static uint64_t report(struct dt_log *log, struct tu_sink *s, uint64_t iova,
		       uint64_t len, struct dt_report *rep)
{
	struct dt_report r;

	tu_sink_reset(s);
	dt_read_and_clear(log, iova, len, tu_sink_fn, s, rep ? rep : &r);
	return rep ? rep->pages : r.pages;
}

TEST(create_rejects_bad_arguments)
{
	struct dt_range r[2] = { { 0, 4096 }, { 8192, 4096 } };
	struct dt_range many[DT_MAX_RANGES + 1];
	struct dt_log *log;
	unsigned int i;

	EXPECT_EQ(-EINVAL, PTR_ERR(dt_log_create(r, 0, 0)));
	EXPECT_EQ(-EINVAL, PTR_ERR(dt_log_create(NULL, 1, 0)));
	EXPECT_EQ(-EINVAL, PTR_ERR(dt_log_create(r, 2, 2048)));
	EXPECT_EQ(-EINVAL, PTR_ERR(dt_log_create(r, 2, 12288)));
	r[1].length = 0;
	EXPECT_EQ(-EINVAL, PTR_ERR(dt_log_create(r, 2, 0)));	/* zero length */
	r[1] = (struct dt_range){ 4095, 2 };
	EXPECT_EQ(-EINVAL, PTR_ERR(dt_log_create(r, 2, 0)));	/* overlap */
	r[1] = (struct dt_range){ 0, 1 };
	EXPECT_EQ(-EINVAL, PTR_ERR(dt_log_create(r, 2, 0)));	/* same start */
	r[1] = (struct dt_range){ U64_MAX, 2 };
	EXPECT_EQ(-EINVAL, PTR_ERR(dt_log_create(r, 2, 0)));	/* wraps */
	/* above 64 TiB at 4 KiB */
	EXPECT_EQ(-E2BIG, PTR_ERR(mk1(0, 64 * TiB + 4096, 0)));
	for (i = 0; i <= DT_MAX_RANGES; i++)
		many[i] = (struct dt_range){ (uint64_t)i * 2 * GiB, GiB };
	EXPECT_EQ(-EINVAL, PTR_ERR(dt_log_create(many, DT_MAX_RANGES + 1, 0)));
	log = dt_log_create(many, DT_MAX_RANGES, 0);
	ASSERT_FALSE(IS_ERR(log));
	dt_log_destroy(log);
	EXPECT_EQ(0, dt_shim_live_allocs);
}

TEST(overlap_in_any_order)
{
	struct dt_range r[3] = { { 10 * MiB, MiB }, { 0, MiB }, { 10 * MiB + MiB - 1, 5 } };

	EXPECT_EQ(-EINVAL, PTR_ERR(dt_log_create(r, 3, 0)));
	r[2].iova = 10 * MiB + MiB;
	struct dt_log *log = dt_log_create(r, 3, 0);

	ASSERT_FALSE(IS_ERR(log));
	/* [10M, 11M) and [11M, 11M+5) share no page: not merged */
	EXPECT_EQ(3, log->nr_ranges);
	dt_log_destroy(log);
	/* [10M, 11M-1) and [11M-1, 11M+5) share a page: merged */
	r[0].length = MiB - 1;
	r[2].iova = 10 * MiB + MiB - 1;
	log = dt_log_create(r, 3, 0);
	ASSERT_FALSE(IS_ERR(log));
	EXPECT_EQ(2, log->nr_ranges);
	dt_log_destroy(log);
}

TEST(unaligned_ranges_round_to_pages)
{
	struct dt_range r[2] = { { 0x1234, 0x3000 }, { 0x5000 + 100, 50 } };
	struct dt_log *log = dt_log_create(r, 2, 0);
	struct tu_sink s;
	struct dt_stats st;

	ASSERT_FALSE(IS_ERR(log));
	/* [0x1000, 0x4fff] and [0x5000, 0x5fff] share no page: kept apart */
	EXPECT_EQ(2, log->nr_ranges);
	dt_log_get_stats(log, &st);
	EXPECT_EQ(0x5000, st.logged_bytes);
	tu_sink_init(&s, 0, 4096, 16);
	EXPECT_EQ(0, dt_mark(log, 0x1000, 1, 0));	/* rounded-in byte */
	EXPECT_EQ(0, dt_mark(log, 0x5fff, 1, 0));
	EXPECT_EQ(-ERANGE, dt_mark(log, 0x6000, 1, 0));
	EXPECT_EQ(-ERANGE, dt_mark(log, 0xfff, 2, 0));	/* half in */
	EXPECT_EQ(2, report(log, &s, 0, U64_MAX, NULL));
	EXPECT_EQ(0, s.bad);
	EXPECT_EQ(1, s.map[1]);
	EXPECT_EQ(1, s.map[5]);
	EXPECT_EQ(0, s.map[6]);
	EXPECT_EQ(0, s.map[0]);
	dt_log_destroy(log);
	free(s.map);
}

TEST(range_ending_at_u64_max)
{
	uint64_t base = U64_MAX - 4 * MiB + 1;
	struct dt_log *log = mk1(base, 4 * MiB, 0);
	struct tu_sink s;
	struct dt_report rep;
	struct dt_stats st;

	ASSERT_FALSE(IS_ERR(log));
	tu_sink_init(&s, base, 4096, 1024);
	EXPECT_EQ(0, dt_mark(log, U64_MAX, 1, 0));
	EXPECT_EQ(0, dt_mark(log, base, 4 * MiB, 0));	/* ends exactly at U64_MAX */
	/* wraps past 2^64: in-range part marked, the rest counted */
	EXPECT_EQ(-ERANGE, dt_mark(log, U64_MAX - 10, 100, 0));
	EXPECT_EQ(1024, report(log, &s, base, 4 * MiB, &rep));
	EXPECT_EQ(0, s.bad);
	EXPECT_EQ(1, rep.oor_marks);
	EXPECT_EQ(0, rep.last_oor_iova);
	EXPECT_EQ(1, rep.runs);
	dt_log_get_stats(log, &st);
	EXPECT_EQ(89, st.oor_bytes);
	/* window reaching U64_MAX, full length */
	EXPECT_EQ(0, dt_mark(log, U64_MAX - 4095, 4096, 0));
	EXPECT_EQ(1, report(log, &s, 0, U64_MAX, NULL));
	EXPECT_EQ(1, s.map[1023]);
	dt_log_destroy(log);

	/* one page at the very top, and the largest page size */
	log = mk1(U64_MAX, 1, 1ULL << 63);
	ASSERT_FALSE(IS_ERR(log));
	EXPECT_EQ(0, dt_mark(log, 0, 1, 0) == -ERANGE ? 0 : 1);
	EXPECT_EQ(0, dt_mark(log, 1ULL << 63, 1, 0));
	tu_sink_init(&s, 1ULL << 63, 1ULL << 63, 1);
	EXPECT_EQ(1, report(log, &s, U64_MAX, 1, NULL));
	EXPECT_EQ(0, s.bad);
	dt_log_destroy(log);
	free(s.map);
}

TEST(whole_address_space_large_pages)
{
	/* [0, 2^64) in 2^40-byte pages: 2^24 pages, run length must not wrap */
	struct dt_log *log = mk1(0, U64_MAX, 1ULL << 40);
	struct tu_sink s;

	ASSERT_FALSE(IS_ERR(log));
	tu_sink_init(&s, 0, 1ULL << 40, 1 << 24);
	EXPECT_EQ(0, dt_mark(log, 0, U64_MAX, 0));
	EXPECT_EQ(-ERANGE, dt_mark(log, 5, U64_MAX, 0));	/* wraps */
	EXPECT_EQ(1 << 24, report(log, &s, 0, U64_MAX, NULL));
	EXPECT_EQ(0, s.bad);
	dt_log_destroy(log);
	free(s.map);
}

TEST(zero_length_is_noop)
{
	struct dt_log *log = mk1(0, GiB, 0);
	struct dt_report rep;
	struct dt_stats st;

	ASSERT_FALSE(IS_ERR(log));
	EXPECT_EQ(0, dt_mark(log, 4096, 0, 0));
	EXPECT_EQ(0, dt_mark(log, 5 * GiB, 0, 0));
	EXPECT_EQ(0, dt_prealloc(log, 0, 0, GFP_KERNEL));
	EXPECT_EQ(0, dt_read_and_clear(log, 0, 0, tu_sink_fn, NULL, &rep));
	EXPECT_EQ(0, rep.pages);
	dt_log_get_stats(log, &st);
	EXPECT_EQ(0, st.marks);
	EXPECT_EQ(0, st.oor_marks);
	EXPECT_EQ(0, st.chunks);
	dt_log_destroy(log);
}

TEST(every_page_size)
{
	unsigned int shift;

	for (shift = 12; shift <= 48; shift++) {
		uint64_t ps = 1ULL << shift, seed = shift, i;
		struct dt_range r[2] = { { 3 * ps + 17, 100 * ps }, { 200 * ps, 50 * ps } };
		struct dt_log *log = dt_log_create(r, 2, ps);
		uint8_t model[256] = { 0 };
		struct tu_sink s;

		ASSERT_FALSE(IS_ERR(log));
		ASSERT_EQ(ps, dt_log_page_size(log));
		tu_sink_init(&s, 0, ps, 256);
		for (i = 0; i < 200; i++) {
			uint64_t pg = tu_rand(&seed) % 256;
			uint64_t off = tu_rand(&seed) % ps;
			bool in = (pg >= 3 && pg <= 103) || (pg >= 200 && pg < 250);
			int ret = dt_mark(log, pg * ps + off, 1, 0);

			EXPECT_EQ(in ? 0 : -ERANGE, ret);
			if (in)
				model[pg] = 1;
		}
		report(log, &s, 0, U64_MAX, NULL);
		EXPECT_EQ(0, s.bad);
		for (i = 0; i < 256; i++)
			EXPECT_EQ(model[i], s.map[i]) TH_LOG("shift %u page %lu", shift, (unsigned long)i);
		dt_log_destroy(log);
		free(s.map);
	}
}

TEST(out_of_range_counted_and_reported)
{
	struct dt_range r[2] = { { GiB, GiB }, { 4 * GiB, GiB } };
	struct dt_log *log = dt_log_create(r, 2, 0);
	struct dt_report rep;
	struct dt_stats st;
	struct tu_sink s;

	ASSERT_FALSE(IS_ERR(log));
	tu_sink_init(&s, 0, 4096, (6 * GiB) >> 12);
	EXPECT_EQ(-ERANGE, dt_mark(log, 0, 4096, 0));
	EXPECT_EQ(-ERANGE, dt_mark(log, 3 * GiB, 4096, 0));
	/* spans the gap: both sides marked, gap counted */
	EXPECT_EQ(-ERANGE, dt_mark(log, 2 * GiB - 4096, 2 * GiB + 8192, 0));
	EXPECT_EQ(-ERANGE, dt_mark(log, 7 * GiB, 1, 0));
	report(log, &s, 0, U64_MAX, &rep);
	EXPECT_EQ(4, rep.oor_marks);
	EXPECT_EQ(7 * GiB, rep.last_oor_iova);
	EXPECT_EQ(2, rep.pages);
	EXPECT_EQ(1, s.map[(2 * GiB - 4096) >> 12]);
	EXPECT_EQ(1, s.map[(4 * GiB) >> 12]);
	EXPECT_EQ(0, s.map[(4 * GiB + 4096) >> 12]);
	dt_log_get_stats(log, &st);
	EXPECT_EQ(4, st.oor_marks);
	EXPECT_EQ(4096 + 4096 + 2 * GiB + 1, st.oor_bytes);
	report(log, &s, 0, U64_MAX, &rep);
	EXPECT_EQ(0, rep.oor_marks);
	dt_log_destroy(log);
	free(s.map);
}

TEST(atomic_context_fallback_and_prealloc)
{
	struct dt_log *log = mk1(0, 4 * GiB, 0);
	struct dt_report rep;
	struct dt_stats st;
	struct tu_sink s;
	uint64_t chunk_pages = DT_CHUNK_PAGES;

	ASSERT_FALSE(IS_ERR(log));
	tu_sink_init(&s, 0, 4096, (4 * GiB) >> 12);
	/* atomic, nothing allocated: the chunk goes "all dirty" */
	EXPECT_EQ(0, dt_mark(log, 5 * 4096, 1, DT_MARK_ATOMIC));
	dt_log_get_stats(log, &st);
	EXPECT_EQ(1, st.fallback_marks);
	EXPECT_EQ(1, st.fallback_chunks_pending);
	EXPECT_EQ(0, st.chunks);
	/*
	 * A window that covers only part of the chunk reports that part; the
	 * rest of the chunk is then marked page by page and the bit cleared.
	 */
	EXPECT_EQ(10, report(log, &s, 0, 10 * 4096, &rep));
	EXPECT_EQ(1, rep.fallback_chunks);
	dt_log_get_stats(log, &st);
	EXPECT_EQ(0, st.fallback_chunks_pending);
	EXPECT_EQ(chunk_pages - 10, st.pages_dirty);
	EXPECT_EQ(chunk_pages - 10, report(log, &s, 0, U64_MAX, &rep));
	EXPECT_EQ(0, rep.fallback_chunks);
	EXPECT_EQ(1, rep.runs);
	/* whole-chunk window: reported whole, one run */
	EXPECT_EQ(0, dt_mark(log, 3 * GiB + 5, 1, DT_MARK_ATOMIC));
	EXPECT_EQ(chunk_pages, report(log, &s, 3 * GiB, GiB, &rep));
	EXPECT_EQ(1, rep.fallback_chunks);
	EXPECT_EQ(1, rep.runs);
	EXPECT_EQ(0, report(log, &s, 0, U64_MAX, &rep));
	dt_log_get_stats(log, &st);
	EXPECT_EQ(0, st.fallback_chunks_pending);
	EXPECT_EQ(2, st.fallback_chunks_reported);
	EXPECT_EQ(0, st.pages_dirty);

	/* allocation failure in normal context also falls back */
	dt_shim_fail_nowait = 1;
	EXPECT_EQ(0, dt_mark(log, GiB, 1, 0));
	dt_shim_fail_nowait = 0;
	EXPECT_EQ(chunk_pages, report(log, &s, 0, U64_MAX, &rep));

	/* after dt_prealloc() atomic marks are exact */
	EXPECT_EQ(0, dt_prealloc(log, 2 * GiB + 100, GiB, GFP_KERNEL));
	/* a window beyond the logged ranges allocates the logged part only */
	EXPECT_EQ(0, dt_prealloc(log, 4 * GiB - 4096, 8192, GFP_KERNEL));
	EXPECT_EQ(0, dt_mark(log, 4 * GiB - 4096, 1, DT_MARK_ATOMIC));
	EXPECT_EQ(0, dt_mark(log, 2 * GiB + 4096 * 7, 4096 * 3, DT_MARK_ATOMIC));
	EXPECT_EQ(4, report(log, &s, 0, U64_MAX, &rep));
	EXPECT_EQ(0, rep.fallback_chunks);
	EXPECT_EQ(1, s.map[((2 * GiB) >> 12) + 9]);
	dt_log_get_stats(log, &st);
	EXPECT_EQ(3, st.fallback_marks);
	EXPECT_EQ(0, st.pages_dirty);
	/* nothing logged in the window: nothing to do, not an error */
	EXPECT_EQ(0, dt_prealloc(log, 8 * GiB, GiB, GFP_KERNEL));
	dt_log_get_stats(log, &st);
	EXPECT_GT((4 * GiB >> 12) / DT_BLOCK_PAGES, st.blocks);
	/* the whole IOVA space: every logged page */
	EXPECT_EQ(0, dt_prealloc(log, 0, U64_MAX, GFP_KERNEL));
	dt_log_get_stats(log, &st);
	EXPECT_EQ((4 * GiB >> 12) / DT_BLOCK_PAGES, st.blocks);
	EXPECT_EQ(4, st.chunks);
	dt_shim_fail_nowait = 1;
	EXPECT_EQ(0, dt_mark(log, 3 * GiB + 123456, 1, DT_MARK_ATOMIC));
	EXPECT_EQ(0, dt_mark(log, GiB + 12345, 2 * GiB, 0));
	dt_shim_fail_nowait = 0;
	EXPECT_EQ((2 * GiB >> 12) + 1 + 1, report(log, &s, 0, U64_MAX, &rep));
	EXPECT_EQ(0, rep.fallback_chunks);
	dt_log_get_stats(log, &st);
	EXPECT_EQ(3, st.fallback_marks);
	dt_log_destroy(log);
	free(s.map);
}

/*
 * The admin's cap (dirty_track.max_log_mb): a log whose memory could pass it
 * with every page dirty is not created; one that fits never passes it.
 */
TEST(memory_cap_refuses_a_log_that_could_pass_it)
{
	/* per chunk a directory slot and summary words; top and alldirty */
	const uint64_t per_chunk = sizeof(void *) +
				   DT_CHUNK_SUM_WORDS * sizeof(long);
	const uint64_t top = 2 * sizeof(long);	/* up to 64 chunks */
	struct dt_range two[2] = { { 0, 4096 }, { TiB, 4096 } };
	struct dt_stats st;
	struct dt_log *log;

	dt_max_log_mb = 1;
	/* 64 GiB: 64 chunk headers and 16384 blocks, 2.2 MB when all dirty */
	EXPECT_EQ(-ENOSPC, PTR_ERR(mk1(0, 64 * GiB, 0)));
	/* 16 GiB: 0.54 MB when all dirty */
	log = mk1(0, 16 * GiB, 0);
	ASSERT_FALSE(IS_ERR(log));
	dt_max_log_mb = 0;
	dt_log_get_stats(log, &st);
	EXPECT_EQ(MiB, st.bitmap_cap);
	EXPECT_EQ(16 * per_chunk + top + 16 * sizeof(struct dt_chunk) +
		  (16 * GiB >> 12) / DT_BLOCK_PAGES * sizeof(struct dt_block),
		  st.bitmap_bytes_max);
	EXPECT_EQ(16 * per_chunk + top, st.bitmap_bytes);
	/* every page dirty: exactly the maximum, under the cap */
	EXPECT_EQ(0, dt_mark(log, 0, 16 * GiB, 0));
	EXPECT_EQ(0, dt_prealloc(log, 0, U64_MAX, GFP_KERNEL));
	dt_log_get_stats(log, &st);
	EXPECT_EQ(st.bitmap_bytes_max, st.bitmap_bytes);
	EXPECT_EQ(0, st.fallback_marks);
	dt_log_destroy(log);

	/* per range: two one-page ranges need a chunk and a block each */
	dt_max_log_mb = 1;
	log = dt_log_create(two, 2, 0);
	dt_max_log_mb = 0;
	ASSERT_FALSE(IS_ERR(log));
	dt_log_get_stats(log, &st);
	EXPECT_EQ(2 * per_chunk + top + 2 * (sizeof(struct dt_chunk) +
				    sizeof(struct dt_block)),
		  st.bitmap_bytes_max);
	dt_log_destroy(log);

	/* no cap: created, and the stats say so */
	log = mk1(0, 64 * GiB, 0);
	ASSERT_FALSE(IS_ERR(log));
	dt_log_get_stats(log, &st);
	EXPECT_EQ(0, st.bitmap_cap);
	dt_log_destroy(log);
}

TEST(all_mapped_feeder)
{
	struct dt_range r[2] = { { 0, 16 * 4096 }, { 64 * 4096, 4096 } };
	struct dt_log *log = dt_log_create(r, 2, 0);
	struct tu_sink s;
	int i;

	ASSERT_FALSE(IS_ERR(log));
	tu_sink_init(&s, 0, 4096, 128);
	dt_log_set_all_mapped(log, true);
	for (i = 0; i < 3; i++) {
		dt_mark(log, 3 * 4096, 4096, 0);
		EXPECT_EQ(17, report(log, &s, 0, U64_MAX, NULL));
		EXPECT_EQ(2, s.runs);
		EXPECT_EQ(1, s.map[3]);
	}
	EXPECT_EQ(4, report(log, &s, 4096, 4 * 4096, NULL));
	dt_log_set_all_mapped(log, false);
	EXPECT_EQ(0, report(log, &s, 0, U64_MAX, NULL));
	dt_log_destroy(log);
	free(s.map);
}

TEST(user_bitmap_sink)
{
	struct dt_log *log = mk1(0x10000, 300 * GiB, 0);
	uint64_t npages = (300 * GiB) >> 12, i, seed = 7;
	uint64_t *ubm = calloc(npages / 64 + 2, 8);
	uint8_t *model = calloc(npages, 1);
	struct dt_report rep;
	uint64_t cnt = 0;

	ASSERT_FALSE(IS_ERR(log));
	for (i = 0; i < 5000; i++) {
		uint64_t pg = tu_rand(&seed) % npages;

		dt_mark(log, 0x10000 + pg * 4096 + 5, 1, 0);
		model[pg] = 1;
	}
	memset(ubm, 0xff, (npages / 64 + 2) * 8);
	ASSERT_EQ(0, dt_read_and_clear_user(log, 0x10000 + 123, 300 * GiB - 123, ubm, &rep));
	for (i = 0; i < npages; i++) {
		int bit = (ubm[i / 64] >> (i % 64)) & 1;

		if (bit != model[i]) {
			EXPECT_EQ(model[i], bit) TH_LOG("page %lu", (unsigned long)i);
			break;
		}
		cnt += bit;
	}
	EXPECT_EQ(rep.pages, cnt);
	EXPECT_EQ(~0ULL, ubm[npages / 64]);	/* untouched past the end */

	/* a failed copy puts the taken bits back */
	dt_mark(log, 0x10000 + 40000ULL * 4096, 1, 0);
	dt_mark(log, 0x10000 + 5ULL * 4096, 1, 0);
	dt_shim_fail_copy = 2;			/* second window fails */
	EXPECT_EQ(-EFAULT, dt_read_and_clear_user(log, 0x10000, 300 * GiB, ubm, &rep));
	dt_shim_fail_copy = 0;
	memset(ubm, 0, (npages / 64 + 2) * 8);
	ASSERT_EQ(0, dt_read_and_clear_user(log, 0x10000, 300 * GiB, ubm, &rep));
	EXPECT_EQ(1, rep.pages);
	EXPECT_EQ(1, (ubm[40000 / 64] >> (40000 % 64)) & 1);
	dt_log_destroy(log);
	free(ubm);
	free(model);
}

struct runs {
	int n;
	uint64_t iova[8], len[8];
};

static void run_sink(void *priv, uint64_t iova, uint64_t len)
{
	struct runs *r = priv;

	if (r->n < 8) {
		r->iova[r->n] = iova;
		r->len[r->n] = len;
	}
	r->n++;
}

/*
 * A log of the whole 2^64 space (one range to U64_MAX, widened to whole
 * pages of 2^63 or 2^40 bytes): its logged bytes saturate at U64_MAX
 * rather than wrap to 0.
 */
TEST(logged_bytes_of_the_whole_space_saturate)
{
	struct dt_range r = { 0, U64_MAX };
	unsigned int shift[] = { 63, 40 };
	struct dt_stats st;
	struct dt_log *log;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		log = dt_log_create(&r, 1, 1ULL << shift[i]);
		ASSERT_FALSE(IS_ERR(log));
		dt_log_get_stats(log, &st);
		EXPECT_EQ(U64_MAX, st.logged_bytes) TH_LOG("page 2^%u", shift[i]);
		dt_log_destroy(log);
	}
}

TEST(log_of_64_tib)
{
	struct runs runs;
	struct dt_range r[2] = { { 0, 32 * TiB }, { 40 * TiB, 32 * TiB } };
	struct dt_log *log = dt_log_create(r, 2, 0);
	struct dt_stats st;
	struct dt_report rep;
	uint64_t created;

	ASSERT_FALSE(IS_ERR(log));
	dt_log_get_stats(log, &st);
	EXPECT_EQ(64 * TiB, st.logged_bytes);
	/* directory and summaries: 72 bytes per 2^18 pages, 4.5 MiB */
	EXPECT_LT(st.bitmap_bytes, 5 * MiB);
	created = st.bitmap_bytes;
	EXPECT_EQ(0, dt_mark(log, 0, 1, 0));
	EXPECT_EQ(0, dt_mark(log, 72 * TiB - 1, 1, 0));
	EXPECT_EQ(0, dt_mark(log, 40 * TiB - 4096, 8192, 0) == -ERANGE ? 0 : 1);
	dt_log_get_stats(log, &st);
	EXPECT_EQ(3, st.pages_dirty);
	/* three chunks touched, one block each */
	EXPECT_EQ(3, st.chunks);
	EXPECT_EQ(3, st.blocks);
	EXPECT_EQ(created + 3 * (sizeof(struct dt_chunk) + sizeof(struct dt_block)),
		  st.bitmap_bytes);
	memset(&runs, 0, sizeof(runs));
	dt_read_and_clear(log, 0, U64_MAX, run_sink, &runs, &rep);
	ASSERT_EQ(3, runs.n);
	EXPECT_EQ(0, runs.iova[0]);
	EXPECT_EQ(40 * TiB, runs.iova[1]);
	EXPECT_EQ(72 * TiB - 4096, runs.iova[2]);
	EXPECT_EQ(4096, runs.len[0] + runs.len[1] + runs.len[2] - 8192);
	dt_log_get_stats(log, &st);
	EXPECT_EQ(0, st.pages_dirty);
	EXPECT_EQ(1, st.reports);
	EXPECT_EQ(3, st.reported_pages);
	dt_log_destroy(log);
}

/* Randomised: many unaligned ranges, marks and report windows vs a model. */
TEST(random_vs_model)
{
	for (int round = 0; round < 30; round++) {
		uint64_t seed = 1000 + round, ps = 4096ULL << (round % 4);
		uint64_t universe = 1 << 20;	/* pages */
		struct dt_range r[64];
		uint8_t *in = calloc(universe, 1), *model = calloc(universe, 1);
		unsigned int nr = 1 + tu_rand(&seed) % 64, i, k;
		uint64_t cur = tu_rand(&seed) % 1000 * ps + tu_rand(&seed) % ps;
		struct tu_sink s;
		struct dt_log *log;

		for (i = 0; i < nr; i++) {
			r[i].iova = cur;
			r[i].length = 1 + tu_rand(&seed) % (universe / nr / 2 * ps);
			cur += r[i].length + tu_rand(&seed) % (universe / nr / 4 * ps);
		}
		for (i = 0; i < nr; i++)
			for (uint64_t p = r[i].iova / ps; p <= (r[i].iova + r[i].length - 1) / ps; p++)
				in[p] = 1;
		/* shuffle */
		for (i = nr - 1; i > 0; i--) {
			struct dt_range t = r[i];

			k = tu_rand(&seed) % (i + 1);
			r[i] = r[k];
			r[k] = t;
		}
		log = dt_log_create(r, nr, ps);
		ASSERT_FALSE(IS_ERR(log));
		if (round % 2)
			ASSERT_EQ(0, dt_prealloc(log, r[0].iova, r[0].length, GFP_KERNEL));
		if (round % 2)
			for (i = 1; i < nr; i++)
				ASSERT_EQ(0, dt_prealloc(log, r[i].iova, r[i].length, GFP_KERNEL));
		tu_sink_init(&s, 0, ps, universe);
		for (int it = 0; it < 20; it++) {
			int nm = tu_rand(&seed) % 2000;

			for (int m = 0; m < nm; m++) {
				uint64_t a = tu_rand(&seed) % (universe * ps);
				uint64_t len = tu_rand(&seed) % 8 ? tu_rand(&seed) % (3 * ps) :
					       tu_rand(&seed) % (300 * ps);
				bool oor = false;
				int ret;

				if (a + len > universe * ps)
					len = universe * ps - a;
				for (uint64_t p = a / ps; len && p <= (a + len - 1) / ps; p++) {
					if (in[p])
						model[p] = 1;
					else
						oor = true;
				}
				/* atomic marks only where blocks exist: exact */
				ret = dt_mark(log, a, len, round % 2 && tu_rand(&seed) % 2 ?
					      DT_MARK_ATOMIC : 0);
				EXPECT_EQ(oor ? -ERANGE : 0, ret);
			}
			/* report in random windows until all covered */
			uint64_t w = 0;

			tu_sink_reset(&s);
			while (w < universe * ps) {
				uint64_t len = 1 + tu_rand(&seed) % (universe * ps / 3);
				struct dt_report rep;

				s.runs = 0;
				if (tu_rand(&seed) % 2)
					len = (len / ps) * ps + ps;
				if (w + len > universe * ps)
					len = universe * ps - w;
				dt_read_and_clear(log, w, len, tu_sink_fn, &s, &rep);
				w += len;
				if (w % ps) {
					/* the page at w was delivered if dirty; continue at its end */
					w = (w / ps + 1) * ps;
				}
			}
			ASSERT_EQ(0, s.bad);
			for (uint64_t p = 0; p < universe; p++) {
				if (s.map[p] != model[p]) {
					EXPECT_EQ(model[p], s.map[p]) TH_LOG("round %d it %d page %lu",
									 round, it, (unsigned long)p);
					break;
				}
			}
			memset(model, 0, universe);
		}
		dt_log_destroy(log);
		free(s.map);
		free(in);
		free(model);
	}
	EXPECT_EQ(0, dt_shim_live_allocs);
}

TEST_HARNESS_MAIN
