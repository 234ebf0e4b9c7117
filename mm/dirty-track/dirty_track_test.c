// SPDX-License-Identifier: GPL-2.0
/*
 * Self-test of dirty_track.ko, run at module load (kselftest_module style):
 * loading succeeds when every case passes and fails with -EINVAL otherwise.
 * Loaded by selftests/vm-tests/dirty_track/dirty_track_kmod_test.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/dirty_track.h>

#include "dt_internal.h"	/* DT_CHUNK_PAGES */

#define SZ_4K_ULL	4096ULL
#define GIB		BIT_ULL(30)
#define TIB		BIT_ULL(40)

static unsigned int dtt_total, dtt_failed;

#define DTT_CHECK(cond) do {						\
	dtt_total++;							\
	if (!(cond)) {							\
		dtt_failed++;						\
		pr_err("FAIL %s:%d: %s\n", __func__, __LINE__, #cond);	\
	}								\
} while (0)

/* Sink that records pages of [base, base + npages * 4K) into a bitmap. */
struct dtt_sink {
	u64 base;
	u64 npages;
	unsigned long *seen;
	u64 pages;
	bool bad;
};

static void dtt_sink_fn(void *priv, u64 iova, u64 length)
{
	struct dtt_sink *s = priv;
	u64 first, n;

	s->pages += length / SZ_4K_ULL;
	if (iova < s->base || (iova - s->base) / SZ_4K_ULL + length / SZ_4K_ULL > s->npages) {
		s->bad = true;
		return;
	}
	first = (iova - s->base) / SZ_4K_ULL;
	n = length / SZ_4K_ULL;
	bitmap_set(s->seen, first, n);
}

static u64 dtt_report(struct dt_log *log, struct dtt_sink *s)
{
	struct dt_report rep;

	s->pages = 0;
	dt_read_and_clear(log, 0, U64_MAX, dtt_sink_fn, s, &rep);
	return rep.pages;
}

static void dtt_basic(void)
{
	struct dt_range r[2] = { { 0x1234, 0x3000 }, { U64_MAX - 8191, 8192 } };
	struct dt_range bad[2] = { { 0, 8192 }, { 4096, 4096 } };
	struct dt_report rep;
	struct dt_stats st;
	struct dt_log *log;
	u64 pages = 0;

	DTT_CHECK(PTR_ERR(dt_log_create(bad, 2, 0)) == -EINVAL);
	DTT_CHECK(PTR_ERR(dt_log_create(r, 2, 6000)) == -EINVAL);
	bad[1].length = 0;
	DTT_CHECK(PTR_ERR(dt_log_create(bad, 2, 0)) == -EINVAL);

	log = dt_log_create(r, 2, 0);
	DTT_CHECK(!IS_ERR(log));
	if (IS_ERR(log))
		return;
	DTT_CHECK(dt_mark(log, 0x1000, 1, 0) == 0);
	DTT_CHECK(dt_mark(log, U64_MAX, 1, 0) == 0);
	DTT_CHECK(dt_mark(log, 0x9000, 1, 0) == -ERANGE);
	DTT_CHECK(dt_mark(log, U64_MAX - 5, 10, 0) == -ERANGE);
	dt_read_and_clear(log, 0, U64_MAX, NULL, NULL, NULL);
	dt_log_get_stats(log, &st);
	DTT_CHECK(st.reported_pages == 2);
	DTT_CHECK(st.oor_marks == 2);
	DTT_CHECK(st.pages_dirty == 0);
	DTT_CHECK(st.page_size == 4096);
	dt_mark(log, 0x2000, 0x2000, 0);
	dt_read_and_clear(log, 0, U64_MAX, NULL, NULL, &rep);
	pages = rep.pages;
	DTT_CHECK(pages == 2);
	DTT_CHECK(rep.runs == 1);
	dt_log_destroy(log);

	/* 64 TiB in one log; directory allocated, bitmaps lazily */
	r[0] = (struct dt_range){ 0, 64 * TIB };
	log = dt_log_create(r, 1, 0);
	DTT_CHECK(!IS_ERR(log));
	if (IS_ERR(log))
		return;
	dt_log_get_stats(log, &st);
	/* directory and summaries: 72 bytes per 2^18 pages, 4.5 MiB */
	DTT_CHECK(st.bitmap_bytes < 5 << 20);
	DTT_CHECK(dt_mark(log, 64 * TIB - 1, 1, 0) == 0);
	dt_read_and_clear(log, 0, U64_MAX, NULL, NULL, &rep);
	DTT_CHECK(rep.pages == 1);
	dt_log_destroy(log);

	/* every page size from 4 KiB to 1 GiB */
	for (pages = 12; pages <= 30; pages++) {
		u64 ps = 1ULL << pages;

		r[0] = (struct dt_range){ 5 * ps + 1, 10 * ps };
		log = dt_log_create(r, 1, ps);
		DTT_CHECK(!IS_ERR(log));
		if (IS_ERR(log))
			return;
		DTT_CHECK(dt_mark(log, 15 * ps, 1, 0) == 0);
		DTT_CHECK(dt_mark(log, 16 * ps, 1, 0) == -ERANGE);
		dt_read_and_clear(log, 0, U64_MAX, NULL, NULL, &rep);
		DTT_CHECK(rep.pages == 1);
		dt_log_destroy(log);
	}
	pr_info("basic: done\n");
}

static void dtt_nop_sink(void *priv, u64 iova, u64 length)
{
}

/* ---- hard IRQ marking ---- */
struct dtt_irq {
	struct hrtimer timer;
	struct dt_log *log;
	atomic_t runs;
	int ret_pre, ret_lazy;
	bool in_irq;
};

static enum hrtimer_restart dtt_timer_fn(struct hrtimer *t)
{
	struct dtt_irq *d = container_of(t, struct dtt_irq, timer);

	d->in_irq = in_hardirq();
	/* preallocated part: exact */
	d->ret_pre = dt_mark(d->log, 7 * SZ_4K_ULL, 1, 0);
	/* never allocated part: must fall back, not allocate */
	d->ret_lazy = dt_mark(d->log, 3 * GIB + 5 * SZ_4K_ULL, 1, 0);
	atomic_inc(&d->runs);
	return HRTIMER_NORESTART;
}

static void dtt_hardirq(void)
{
	struct dt_range r = { 0, 4 * GIB };
	struct dtt_irq *d = kzalloc(sizeof(*d), GFP_KERNEL);
	struct dt_report rep;
	struct dt_stats st;
	unsigned long flags;
	int i;

	if (!d) {
		DTT_CHECK(0);
		return;
	}
	d->log = dt_log_create(&r, 1, 0);
	DTT_CHECK(!IS_ERR(d->log));
	if (IS_ERR(d->log)) {
		kfree(d);
		return;
	}
	DTT_CHECK(dt_prealloc(d->log, 0, GIB, GFP_KERNEL) == 0);
	hrtimer_init(&d->timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_HARD);
	d->timer.function = dtt_timer_fn;
	hrtimer_start(&d->timer, ns_to_ktime(100000), HRTIMER_MODE_REL_HARD);
	for (i = 0; i < 1000 && !atomic_read(&d->runs); i++)
		usleep_range(1000, 2000);
	hrtimer_cancel(&d->timer);
	DTT_CHECK(atomic_read(&d->runs) == 1);
	DTT_CHECK(d->in_irq);
	DTT_CHECK(d->ret_pre == 0);
	DTT_CHECK(d->ret_lazy == 0);

	/* IRQs disabled, no flag: detected as atomic */
	local_irq_save(flags);
	dt_mark(d->log, 2 * GIB, 1, 0);
	dt_mark(d->log, 9 * SZ_4K_ULL, 1, DT_MARK_ATOMIC);
	local_irq_restore(flags);

	dt_log_get_stats(d->log, &st);
	DTT_CHECK(st.fallback_marks == 2);
	DTT_CHECK(st.fallback_chunks_pending == 2);
	dt_read_and_clear(d->log, 0, 64 * SZ_4K_ULL, dtt_nop_sink, NULL, &rep);
	DTT_CHECK(rep.pages == 2);		/* pages 7 and 9 */
	DTT_CHECK(rep.fallback_chunks == 0);
	dt_read_and_clear(d->log, 0, U64_MAX, dtt_nop_sink, NULL, &rep);
	DTT_CHECK(rep.fallback_chunks == 2);
	DTT_CHECK(rep.pages == 2 * DT_CHUNK_PAGES);
	dt_log_destroy(d->log);
	kfree(d);
	pr_info("hardirq: done\n");
}

/* ---- concurrent marking from kthreads while reporting ---- */
#define DTT_PAGES	BIT(18)	/* 1 GiB */
#define DTT_THREADS	4

struct dtt_thread {
	struct task_struct *task;
	struct dt_log __rcu **logp;
	unsigned long *marked;		/* pages this thread marked */
	u64 marks;
	bool prealloc_only;
	struct completion done;
};

static int dtt_marker(void *arg)
{
	struct dtt_thread *t = arg;
	u32 seed = get_random_u32();

	while (!kthread_should_stop()) {
		int i;

		for (i = 0; i < 256; i++) {
			struct dt_log *log;
			u64 pg;

			seed = seed * 1664525 + 1013904223;
			pg = (seed >> 8) % DTT_PAGES;
			rcu_read_lock();
			log = rcu_dereference(*t->logp);
			if (log) {
				dt_mark(log, pg * SZ_4K_ULL, 1,
					t->prealloc_only ? DT_MARK_ATOMIC : 0);
				__set_bit(pg, t->marked);
				t->marks++;
			}
			rcu_read_unlock();
		}
		cond_resched();
	}
	complete(&t->done);
	return 0;
}

static void dtt_concurrent(bool atomic)
{
	struct dt_range r = { 0, DTT_PAGES * SZ_4K_ULL };
	struct dt_log __rcu *logp;
	struct dtt_thread *t;
	struct dtt_sink s = { .base = 0, .npages = DTT_PAGES };
	unsigned long *all;
	struct dt_log *log;
	struct dt_stats st;
	int i, n = 0, reports = 0;
	unsigned long end;

	t = kcalloc(DTT_THREADS, sizeof(*t), GFP_KERNEL);
	s.seen = bitmap_zalloc(DTT_PAGES, GFP_KERNEL);
	all = bitmap_zalloc(DTT_PAGES, GFP_KERNEL);
	log = dt_log_create(&r, 1, 0);
	if (!t || !s.seen || !all || IS_ERR(log)) {
		DTT_CHECK(0);
		goto out;
	}
	if (atomic)
		DTT_CHECK(dt_prealloc(log, 0, U64_MAX, GFP_KERNEL) == 0);
	RCU_INIT_POINTER(logp, log);
	for (i = 0; i < DTT_THREADS; i++) {
		t[i].logp = &logp;
		t[i].prealloc_only = atomic;
		t[i].marked = bitmap_zalloc(DTT_PAGES, GFP_KERNEL);
		init_completion(&t[i].done);
		if (!t[i].marked)
			break;
		t[i].task = kthread_run(dtt_marker, &t[i], "dtt_marker/%d", i);
		if (IS_ERR(t[i].task)) {
			bitmap_free(t[i].marked);
			break;
		}
		n++;
	}
	DTT_CHECK(n == DTT_THREADS);
	end = jiffies + msecs_to_jiffies(300);
	while (time_before(jiffies, end)) {
		dtt_report(log, &s);
		reports++;
		cond_resched();
	}
	for (i = 0; i < n; i++)
		kthread_stop(t[i].task);
	dtt_report(log, &s);
	/* no lost mark, no phantom page */
	for (i = 0; i < n; i++) {
		bitmap_or(all, all, t[i].marked, DTT_PAGES);
		bitmap_free(t[i].marked);
	}
	DTT_CHECK(!s.bad);
	DTT_CHECK(bitmap_equal(all, s.seen, DTT_PAGES));
	dt_log_get_stats(log, &st);
	DTT_CHECK(st.pages_dirty == 0);
	DTT_CHECK(st.fallback_marks == 0);
	pr_info("concurrent(%s): %d threads, %llu marks, %d reports, %u pages seen\n",
		atomic ? "atomic" : "normal", n, st.marks, reports,
		bitmap_weight(s.seen, DTT_PAGES));
	rcu_assign_pointer(logp, NULL);
	dt_log_destroy(log);
	log = NULL;
out:
	if (!IS_ERR_OR_NULL(log))
		dt_log_destroy(log);
	bitmap_free(all);
	bitmap_free(s.seen);
	kfree(t);
}

/* ---- destroy while markers run (RCU rule) ---- */
static void dtt_destroy_race(void)
{
	struct dt_range r = { 0, DTT_PAGES * SZ_4K_ULL };
	struct dt_log __rcu *logp;
	struct dtt_thread *t;
	struct dt_log *log;
	int i, n = 0, round;

	t = kcalloc(DTT_THREADS, sizeof(*t), GFP_KERNEL);
	if (!t) {
		DTT_CHECK(0);
		return;
	}
	RCU_INIT_POINTER(logp, NULL);
	for (i = 0; i < DTT_THREADS; i++) {
		t[i].logp = &logp;
		t[i].marked = bitmap_zalloc(DTT_PAGES, GFP_KERNEL);
		init_completion(&t[i].done);
		if (!t[i].marked)
			break;
		t[i].task = kthread_run(dtt_marker, &t[i], "dtt_destroy/%d", i);
		if (IS_ERR(t[i].task)) {
			bitmap_free(t[i].marked);
			break;
		}
		n++;
	}
	DTT_CHECK(n == DTT_THREADS);
	for (round = 0; round < 20; round++) {
		log = dt_log_create(&r, 1, 0);
		DTT_CHECK(!IS_ERR(log));
		if (IS_ERR(log))
			break;
		rcu_assign_pointer(logp, log);
		usleep_range(5000, 6000);
		rcu_assign_pointer(logp, NULL);
		dt_log_destroy(log);	/* waits for markers' grace period */
	}
	for (i = 0; i < n; i++) {
		kthread_stop(t[i].task);
		bitmap_free(t[i].marked);
	}
	kfree(t);
	pr_info("destroy_race: done\n");
}

/* ---- feeders ---- */
static void dtt_feeders(void)
{
	struct dt_range r = { 0, 64 * SZ_4K_ULL };
	struct pci_dev *pdev;
	struct dt_report rep;
	struct dt_log *log;
	const char *reason = NULL;
	int ret;

	DTT_CHECK(dt_feeder_probe(DT_FEEDER_MEDIATED, NULL, &reason) == 0);
	DTT_CHECK(dt_feeder_probe(DT_FEEDER_ALL_MAPPED, NULL, &reason) == 0);
	ret = dt_feeder_probe(DT_FEEDER_IOMMU_HW, NULL, &reason);
	DTT_CHECK(ret == -EOPNOTSUPP || ret == -EINVAL);
	DTT_CHECK(reason);
	pr_info("iommu-hw without device: %d (%s)\n", ret, reason ? reason : "?");

	/* Any PCI device: must be served or refused with a reason, never pretend */
	pdev = pci_get_device(PCI_ANY_ID, PCI_ANY_ID, NULL);
	if (pdev) {
		reason = NULL;
		ret = dt_feeder_probe(DT_FEEDER_IOMMU_HW, &pdev->dev, &reason);
		DTT_CHECK(ret == 0 || (ret == -EOPNOTSUPP && reason));
		pr_info("iommu-hw for %s: %d (%s)\n", pci_name(pdev), ret,
			reason ? reason : "available");
		pci_dev_put(pdev);
	}

	log = dt_log_create(&r, 1, 0);
	DTT_CHECK(!IS_ERR(log));
	if (IS_ERR(log))
		return;
	DTT_CHECK(dt_log_attach_feeder(log, DT_FEEDER_IOMMU_HW, NULL, &reason) != 0);
	DTT_CHECK(dt_feeder_iommu_hw_read_and_clear(log, 0, 4096, NULL) == -EOPNOTSUPP);
	DTT_CHECK(dt_log_attach_feeder(log, DT_FEEDER_ALL_MAPPED, NULL, &reason) == 0);
	dt_read_and_clear(log, 0, U64_MAX, dtt_nop_sink, NULL, &rep);
	DTT_CHECK(rep.pages == 64);
	dt_log_detach_feeder(log, DT_FEEDER_ALL_MAPPED);
	dt_read_and_clear(log, 0, U64_MAX, dtt_nop_sink, NULL, &rep);
	DTT_CHECK(rep.pages == 0);
	DTT_CHECK(!strcmp(dt_feeder_name(DT_FEEDER_IOMMU_HW), "iommu-hw"));
	dt_log_destroy(log);
	pr_info("feeders: done\n");
}

static unsigned int cap_mb;
module_param(cap_mb, uint, 0444);
MODULE_PARM_DESC(cap_mb,
		 "Run only the memory cap case: dirty_track's max_log_mb was set to this (1 to 1024)");

/*
 * dirty_track.max_log_mb is cap_mb: a log that could pass the cap with every
 * page dirty is refused, one that fits reaches at most its maximum.
 */
static void dtt_cap(void)
{
	struct dt_range r = { 0, 64 * GIB * cap_mb };
	struct dt_stats st;
	struct dt_log *log;

	/* 64 GiB per MiB: above 1024 MiB the first log would be too big */
	DTT_CHECK(cap_mb <= 1024);
	if (cap_mb > 1024)
		return;

	/* about 35 KB per GiB when all dirty: 64 GiB per MiB cannot fit */
	log = dt_log_create(&r, 1, 0);
	DTT_CHECK(PTR_ERR(log) == -ENOSPC);
	if (!IS_ERR(log))
		dt_log_destroy(log);
	r.length = 16 * GIB * cap_mb;
	log = dt_log_create(&r, 1, 0);
	DTT_CHECK(!IS_ERR(log));
	if (IS_ERR(log))
		return;
	DTT_CHECK(dt_prealloc(log, 0, U64_MAX, GFP_KERNEL) == 0);
	DTT_CHECK(dt_mark(log, 0, r.length, 0) == 0);
	dt_log_get_stats(log, &st);
	DTT_CHECK(st.bitmap_cap == (u64)cap_mb << 20);
	DTT_CHECK(st.bitmap_bytes == st.bitmap_bytes_max);
	DTT_CHECK(st.bitmap_bytes <= st.bitmap_cap);
	DTT_CHECK(st.fallback_marks == 0);
	dt_log_destroy(log);
	pr_info("cap %u MiB: a %llu GiB log needs at most %llu bytes\n",
		cap_mb, r.length / GIB, st.bitmap_bytes_max);
}

static int __init dirty_track_test_init(void)
{
	if (cap_mb) {
		dtt_cap();
		goto out;
	}
	dtt_basic();
	dtt_hardirq();
	dtt_concurrent(false);
	dtt_concurrent(true);
	dtt_destroy_race();
	dtt_feeders();
out:
	if (dtt_failed) {
		pr_err("failed %u out of %u checks\n", dtt_failed, dtt_total);
		return -EINVAL;
	}
	pr_info("all %u checks passed\n", dtt_total);
	return 0;
}

static void __exit dirty_track_test_exit(void)
{
}

module_init(dirty_track_test_init);
module_exit(dirty_track_test_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Self-test of the dirty_track DMA dirty log");
MODULE_VERSION("0.1.0");
MODULE_INFO(test, "Y");
