// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrency tests of the dirty_track core: N threads mark at random while
 * a reporter reads and clears, checked against a reference model.
 *
 * Whole-chunk deliveries of the atomic-context fallback are allowed to
 * exceed the marks (reports that had one are exempt from the phantom check).
 *
 * Each mark is recorded with the number of reports started before it began
 * (s) and after it returned (e).  Reports are numbered from 1 in start order.
 *  - no lost mark: some report k with s <= k <= e + 1 delivers the page
 *    (a mark that returned before report e + 1 started is in it or earlier);
 *  - no phantom bit: each delivery of a page in report k is explained by a
 *    mark of that page with s <= k and e >= the page's previous delivery.
 */
#include <stdio.h>
#include <pthread.h>
#include <linux/dirty_track.h>
#include "../../../mm/dirty-track/dt_internal.h"
#include "kselftest_harness.h"
#include "dt_test_util.h"

struct ev {			/* one mark */
	uint32_t page;
	uint32_t s, e;
};

struct ctx {
	struct dt_log *log;
	uint64_t base, ps, npages;
	int nthreads, marks_per_thread;
	unsigned int flags_mode;	/* 0: normal, 1: atomic only, 2: mixed */
	volatile int stop;
	uint32_t started;		/* reports started */
	struct ev **evs;
	int *nev;
	/* deliveries: per report list of pages */
	uint32_t **del;
	uint32_t *ndel, *cap;
	uint32_t maxrep;
	uint8_t *fb;			/* report k delivered fallback chunks */
	int bad;
};

struct thr {
	struct ctx *c;
	int id;
};

static void *marker(void *arg)
{
	struct thr *t = arg;
	struct ctx *c = t->c;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (t->id + 1);
	int i;

	for (i = 0; i < c->marks_per_thread; i++) {
		uint32_t page = tu_rand(&seed) % c->npages;
		unsigned int fl = c->flags_mode == 1 ? DT_MARK_ATOMIC :
				  c->flags_mode == 2 && (tu_rand(&seed) & 1) ? DT_MARK_ATOMIC : 0;
		struct ev *ev = &c->evs[t->id][i];

		/* hot pages get many marks: exercise set-bit-already-set paths */
		if (tu_rand(&seed) % 4 == 0)
			page %= 256;
		ev->page = page;
		ev->s = __atomic_load_n(&c->started, __ATOMIC_SEQ_CST);
		dt_mark(c->log, c->base + (uint64_t)page * c->ps + tu_rand(&seed) % c->ps, 1, fl);
		ev->e = __atomic_load_n(&c->started, __ATOMIC_SEQ_CST);
	}
	c->nev[t->id] = i;
	return NULL;
}

struct rsink {
	struct ctx *c;
	uint32_t k;
};

static void rsink_fn(void *priv, uint64_t iova, uint64_t len)
{
	struct rsink *r = priv;
	struct ctx *c = r->c;
	uint64_t p;

	if ((iova - c->base) % c->ps || len % c->ps) {
		c->bad = 1;
		return;
	}
	for (p = (iova - c->base) / c->ps; p < (iova - c->base + len) / c->ps; p++) {
		if (c->ndel[r->k] == c->cap[r->k]) {
			c->cap[r->k] = c->cap[r->k] ? 2 * c->cap[r->k] : 1024;
			c->del[r->k] = realloc(c->del[r->k], c->cap[r->k] * 4);
		}
		c->del[r->k][c->ndel[r->k]++] = p;
	}
}

static void do_report(struct ctx *c, uint64_t seed)
{
	struct rsink rs = { c };
	uint32_t k = __atomic_add_fetch(&c->started, 1, __ATOMIC_SEQ_CST);

	rs.k = k;
	if (k >= c->maxrep) {
		c->bad = 2;
		return;
	}
	struct dt_report rep;

	(void)seed;
	dt_read_and_clear(c->log, 0, U64_MAX, rsink_fn, &rs, &rep);
	c->fb[k] = rep.fallback_chunks != 0;
}

static void *reporter(void *arg)
{
	struct ctx *c = arg;
	uint64_t seed = 42;

	while (!__atomic_load_n(&c->stop, __ATOMIC_SEQ_CST) &&
	       c->started + 2 < c->maxrep)
		do_report(c, tu_rand(&seed));
	return NULL;
}

static int check(struct ctx *c, struct __test_metadata *_metadata)
{
	uint32_t nrep = c->started, k, i;
	/* per page: sorted list of reports that delivered it */
	uint32_t **dl = calloc(c->npages, sizeof(*dl));
	uint32_t *ndl = calloc(c->npages, 4);
	uint32_t *cdl = calloc(c->npages, 4);
	uint64_t lost = 0, phantom = 0, dup = 0, total = 0;
	int t, j;

	for (k = 1; k <= nrep; k++) {
		for (i = 0; i < c->ndel[k]; i++) {
			uint32_t p = c->del[k][i];

			if (ndl[p] && dl[p][ndl[p] - 1] == k)
				dup++;
			if (ndl[p] == cdl[p]) {
				cdl[p] = cdl[p] ? 2 * cdl[p] : 4;
				dl[p] = realloc(dl[p], cdl[p] * 4);
			}
			dl[p][ndl[p]++] = k;
			total++;
		}
	}
	/* lost marks */
	for (t = 0; t < c->nthreads; t++) {
		for (j = 0; j < c->nev[t]; j++) {
			struct ev *ev = &c->evs[t][j];
			bool found = false;

			for (i = 0; i < ndl[ev->page] && !found; i++)
				found = dl[ev->page][i] >= ev->s && dl[ev->page][i] <= ev->e + 1;
			if (!found && lost++ < 5)
				TH_LOG("lost: page %u s %u e %u", ev->page, ev->s, ev->e);
		}
	}
	/* phantoms: delivery k of p needs a mark with s <= k, e >= prev */
	{
		/* per page: marks' (s, e) lists */
		uint32_t *nm = calloc(c->npages, 4), *cm = calloc(c->npages, 4);
		struct ev **ml = calloc(c->npages, sizeof(*ml));

		for (t = 0; t < c->nthreads; t++)
			for (j = 0; j < c->nev[t]; j++) {
				struct ev *ev = &c->evs[t][j];
				uint32_t p = ev->page;

				if (nm[p] == cm[p]) {
					cm[p] = cm[p] ? 2 * cm[p] : 4;
					ml[p] = realloc(ml[p], cm[p] * sizeof(struct ev));
				}
				ml[p][nm[p]++] = *ev;
			}
		for (uint32_t p = 0; p < c->npages; p++) {
			for (i = 0; i < ndl[p]; i++) {
				uint32_t kk = dl[p][i], prev = i ? dl[p][i - 1] : 0;
				bool ok = false;

				for (uint32_t m = 0; m < nm[p] && !ok; m++)
					ok = ml[p][m].s <= kk && ml[p][m].e >= prev;
				/* a whole-chunk fallback delivery is a superset */
				if (!ok && c->fb[kk])
					ok = true;
				if (!ok && phantom++ < 5)
					TH_LOG("phantom: page %u report %u prev %u", p, kk, prev);
			}
			free(ml[p]);
			free(dl[p]);
		}
		free(nm);
		free(cm);
		free(ml);
	}
	TH_LOG("reports %u deliveries %lu lost %lu phantom %lu dup %lu", nrep,
	       (unsigned long)total, (unsigned long)lost, (unsigned long)phantom,
	       (unsigned long)dup);
	free(dl);
	free(ndl);
	free(cdl);
	return (lost || phantom || dup || c->bad) ? -1 : 0;
}

static int run_one(struct __test_metadata *_metadata, int nthreads, int marks,
		   uint64_t npages, uint64_t ps, unsigned int mode, bool prealloc)
{
	struct ctx c = { 0 };
	struct dt_range r = { 0x40000000ULL + 123, npages * ps - 200 };
	pthread_t th[16], rep;
	struct thr ta[16];
	struct dt_stats st;
	int i, ret;

	c.base = 0x40000000ULL;
	c.ps = ps;
	c.npages = npages;
	c.nthreads = nthreads;
	c.marks_per_thread = marks;
	c.flags_mode = mode;
	c.maxrep = 100000;
	c.del = calloc(c.maxrep, sizeof(*c.del));
	c.fb = calloc(c.maxrep, 1);
	c.ndel = calloc(c.maxrep, 4);
	c.cap = calloc(c.maxrep, 4);
	c.evs = calloc(nthreads, sizeof(*c.evs));
	c.nev = calloc(nthreads, sizeof(int));
	for (i = 0; i < nthreads; i++)
		c.evs[i] = calloc(marks, sizeof(struct ev));
	c.log = dt_log_create(&r, 1, ps);
	if (IS_ERR(c.log))
		return -1;
	if (prealloc)
		EXPECT_EQ(0, dt_prealloc(c.log, 0, U64_MAX, GFP_KERNEL));
	pthread_create(&rep, NULL, reporter, &c);
	for (i = 0; i < nthreads; i++) {
		ta[i].c = &c;
		ta[i].id = i;
		pthread_create(&th[i], NULL, marker, &ta[i]);
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&c.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(rep, NULL);
	do_report(&c, 0);		/* final report picks up the rest */
	dt_log_get_stats(c.log, &st);
	ret = check(&c, _metadata);
	if (st.pages_dirty != 0) {
		TH_LOG("pages_dirty %lu after final report", (unsigned long)st.pages_dirty);
		ret = -1;
	}
	if (st.marks != (uint64_t)nthreads * marks) {
		TH_LOG("marks %lu", (unsigned long)st.marks);
		ret = -1;
	}
	dt_log_destroy(c.log);
	for (i = 0; i < nthreads; i++)
		free(c.evs[i]);
	for (i = 0; i < (int)c.maxrep; i++)
		free(c.del[i]);
	free(c.del);
	free(c.fb);
	free(c.ndel);
	free(c.cap);
	free(c.evs);
	free(c.nev);
	return ret;
}

TEST(threads_4_small_log)
{
	ASSERT_EQ(0, run_one(_metadata, 4, 200000, 1 << 14, 4096, 0, false));
}

TEST(threads_3_large_log_spread)
{
	/* 4 GiB: many chunks and blocks allocated concurrently */
	ASSERT_EQ(0, run_one(_metadata, 3, 150000, 1 << 20, 4096, 0, false));
}

TEST(threads_4_atomic_prealloc)
{
	ASSERT_EQ(0, run_one(_metadata, 4, 150000, 1 << 16, 8192, 1, true));
}

TEST(threads_4_mixed_2m_pages)
{
	ASSERT_EQ(0, run_one(_metadata, 4, 150000, 1 << 12, 2 << 20, 2, false));
}

/* Range marks racing with reports: every page of every range mark arrives. */
struct rm_ctx {
	struct dt_log *log;
	volatile int stop;
	uint8_t *seen;
	uint64_t npages;
};

static void rm_sink(void *priv, uint64_t iova, uint64_t len)
{
	struct rm_ctx *c = priv;

	for (uint64_t p = iova >> 12; p < (iova + len) >> 12 && p < c->npages; p++)
		c->seen[p] = 1;
}

static void *rm_marker(void *arg)
{
	struct rm_ctx *c = arg;
	uint64_t seed = 5;

	for (int i = 0; i < 20000; i++) {
		uint64_t a = tu_rand(&seed) % c->npages;
		uint64_t n = 1 + tu_rand(&seed) % 5000;

		if (a + n > c->npages)
			n = c->npages - a;
		dt_mark(c->log, a << 12, n << 12, 0);
	}
	return NULL;
}

TEST(range_marks_vs_reports)
{
	struct rm_ctx c = { 0 };
	struct dt_range r = { 0, 1ULL << 32 };
	pthread_t th[2];
	uint8_t *model;
	uint64_t seed = 5, p;
	int i;

	c.npages = 1 << 20;
	c.seen = calloc(c.npages, 1);
	model = calloc(c.npages, 1);
	c.log = dt_log_create(&r, 1, 0);
	ASSERT_FALSE(IS_ERR(c.log));
	for (i = 0; i < 20000; i++) {	/* same sequence as rm_marker */
		uint64_t a = tu_rand(&seed) % c.npages;
		uint64_t n = 1 + tu_rand(&seed) % 5000;

		if (a + n > c.npages)
			n = c.npages - a;
		memset(model + a, 1, n);
	}
	for (i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, rm_marker, &c);
	for (i = 0; i < 200; i++)
		dt_read_and_clear(c.log, (uint64_t)(i % 7) << 29, 1ULL << 31, rm_sink, &c, NULL);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	dt_read_and_clear(c.log, 0, U64_MAX, rm_sink, &c, NULL);
	for (p = 0; p < c.npages; p++)
		if (c.seen[p] != model[p]) {
			EXPECT_EQ(model[p], c.seen[p]) TH_LOG("page %lu", (unsigned long)p);
			break;
		}
	dt_log_destroy(c.log);
	free(c.seen);
	free(model);
}

TEST_HARNESS_MAIN
