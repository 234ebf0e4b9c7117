// SPDX-License-Identifier: GPL-2.0
/*
 * The controller model under concurrent doorbells (model.h, Concurrency):
 * one thread per I/O queue pair rings its SQ tail and CQ head doorbells
 * through nvmp_doorbell() at the same time as the others, with the model
 * lock a pthread mutex (as the kernel's nvme profile does with its queue
 * mutexes and model lock). The same per-queue command sequences run once
 * on one thread, queue after queue; both runs must end with the same
 * dirty marks (per page, counted), the same in-flight store (records and
 * their ranges), the same counters and the same remark.
 *
 * Built with ASan/UBSan (make run) and ThreadSanitizer (make tsan).
 * NVMP_MT_NOLOCK=1 runs without the model lock: the comparison (or TSan)
 * must then fail, which shows the test can see what the lock prevents.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "model.h"
#include "sim.h"

#define MEM_BASE	0x10000000ull
#define NQ		3		/* I/O queue pairs 1 .. NQ */
#define REGION		(8ull << 20)	/* guest memory per queue pair */
#define MEM_SIZE	((NQ + 1) * REGION)
#define PS		4096ull
#define NPAGES		(MEM_SIZE / PS)
#define DEPTH		64
#define ITERS		5000
/*
 * The store frees records in submission order: a command one queue keeps
 * in flight holds every later record of every queue. Big enough for the
 * whole run, so that no interleaving overflows it.
 */
#define NR_R		(1u << 19)
#define NR_REC		(1u << 16)

#define ASQ_IOVA	(MEM_BASE + 0x0000)
#define ACQ_IOVA	(MEM_BASE + 0x1000)
#define ID_IOVA		(MEM_BASE + 0x5000)
#define R(q)		(MEM_BASE + (uint64_t)(q) * REGION)
#define SQ_IOVA(q)	(R(q))
#define CQ_IOVA(q)	(R(q) + 0x2000)
#define LIST_IOVA(q, s)	(R(q) + 0x10000 + (uint64_t)(s) * PS)
#define DATA_IOVA(q)	(R(q) + 0x100000)
#define DATA_PAGES	((REGION - 0x100000) / PS)

struct fake {
	uint8_t *mem;
	uint32_t dirty[NPAGES];	/* marks per page (atomic adds) */
	uint64_t outside;
	struct nvmp_ctrl c;
	pthread_mutex_t mu;
	struct nvmp_range *ranges;
	struct nvmp_rec *recs;
	uint32_t *hash;
};

static int f_read(void *ctx, u64 iova, void *buf, u32 len)
{
	struct fake *f = ctx;

	if (iova < MEM_BASE || iova + len > MEM_BASE + MEM_SIZE)
		return -EFAULT;
	memcpy(buf, f->mem + (iova - MEM_BASE), len);
	return 0;
}

static void f_dirty(void *ctx, u64 iova, u64 len)
{
	struct fake *f = ctx;
	uint64_t p;

	if (iova < MEM_BASE || iova + len > MEM_BASE + MEM_SIZE ||
	    iova + len < iova) {
		__atomic_add_fetch(&f->outside, 1, __ATOMIC_RELAXED);
		return;
	}
	for (p = (iova - MEM_BASE) / PS; p <= (iova + len - 1 - MEM_BASE) / PS;
	     p++)
		__atomic_add_fetch(&f->dirty[p], 1, __ATOMIC_RELAXED);
}

static void f_lock(void *ctx)
{
	pthread_mutex_lock(&((struct fake *)ctx)->mu);
}

static void f_unlock(void *ctx)
{
	pthread_mutex_unlock(&((struct fake *)ctx)->mu);
}

static void *at(struct fake *f, uint64_t iova)
{
	return f->mem + (iova - MEM_BASE);
}

/* One admin command, completed at once and released (setup only). */
static int admin(struct fake *f, struct sim_sqe *s, uint16_t *tail,
		 uint16_t cid)
{
	struct sim_cqe e = { .cid = cid, .status = 1 };
	int ret;

	s->cdw0 |= (uint32_t)cid << 16;
	memcpy(at(f, ASQ_IOVA + *tail * 64ull), s, sizeof(*s));
	*tail = (*tail + 1) % 32;
	ret = nvmp_doorbell(&f->c, nvmp_db_offset(&f->c, 0, false), *tail,
			    true);
	if (ret)
		return ret;
	/* no wrap in setup: 2 x NQ + 1 commands, phase 1 */
	memcpy(at(f, ACQ_IOVA + (cid - 1) * 16ull), &e, sizeof(e));
	return nvmp_doorbell(&f->c, nvmp_db_offset(&f->c, 0, true), cid, true);
}

static void fake_free(struct fake *f)
{
	pthread_mutex_destroy(&f->mu);
	free(f->mem);
	free(f->ranges);
	free(f->recs);
	free(f->hash);
	free(f);
}

static struct fake *fake_new(bool locked)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct nvmp_env env = { .read = f_read, .dirty = f_dirty, .ctx = f };
	uint16_t tail = 0, cid = 0, q;
	struct sim_sqe s;
	uint8_t *id;

	if (locked) {
		env.lock = f_lock;
		env.unlock = f_unlock;
	}
	pthread_mutex_init(&f->mu, NULL);
	f->mem = calloc(1, MEM_SIZE);
	f->ranges = calloc(NR_R, sizeof(*f->ranges));
	f->recs = calloc(NR_REC, sizeof(*f->recs));
	f->hash = calloc(2 * NR_REC, sizeof(*f->hash));
	nvmp_init(&f->c, &env, 0x7ff, 512 << 10);
	nvmp_track_init(&f->c, f->ranges, NR_R, f->recs, NR_REC, f->hash);
	nvmp_reg_write(&f->c, NVMP_REG_AQA, 31 << 16 | 31, 4);
	nvmp_reg_write(&f->c, NVMP_REG_ASQ, ASQ_IOVA, 8);
	nvmp_reg_write(&f->c, NVMP_REG_ACQ, ACQ_IOVA, 8);
	nvmp_reg_write(&f->c, NVMP_REG_CC, 0x460001, 4);
	for (q = 1; q <= NQ; q++) {
		memset(&s, 0, sizeof(s));
		s.cdw0 = 0x05;
		s.prp1 = CQ_IOVA(q);
		s.cdw10 = (uint32_t)(DEPTH - 1) << 16 | q;
		s.cdw11 = (uint32_t)q << 16 | 0x3;
		if (admin(f, &s, &tail, ++cid))
			goto fail;
		memset(&s, 0, sizeof(s));
		s.cdw0 = 0x01;
		s.prp1 = SQ_IOVA(q);
		s.cdw10 = (uint32_t)(DEPTH - 1) << 16 | q;
		s.cdw11 = (uint32_t)q << 16 | 0x1;
		if (admin(f, &s, &tail, ++cid))
			goto fail;
	}
	/* namespace 1: 512-byte blocks, no metadata */
	id = at(f, ID_IOVA);
	id[2] = 1;		/* NSZE: 65536 blocks */
	id[128 + 2] = 9;
	memset(&s, 0, sizeof(s));
	s.cdw0 = 0x06;
	s.nsid = 1;
	s.prp1 = ID_IOVA;
	if (admin(f, &s, &tail, ++cid))
		goto fail;
	memset(f->dirty, 0, sizeof(f->dirty));
	return f;
fail:
	fake_free(f);
	return NULL;
}

/* The guest driver of one queue pair, and the device's side of it. */
struct drv {
	struct fake *f;
	uint16_t qid;
	uint64_t seed;
	uint16_t tail, cq_tail;
	uint8_t phase;
	uint16_t cid;
	uint16_t fifo[DEPTH];	/* command ids in flight, oldest first */
	unsigned int in_head, n_in;
	int err;
};

static uint64_t rnd(struct drv *d)
{
	d->seed ^= d->seed << 13;
	d->seed ^= d->seed >> 7;
	d->seed ^= d->seed << 17;
	return d->seed;
}

static uint64_t data_page(struct drv *d)
{
	return DATA_IOVA(d->qid) + (rnd(d) % (DATA_PAGES - 64)) * PS;
}

/* A command into the SQ slot at the tail: Read (PRP1, PRP2, list, SGL). */
static void build(struct drv *d, struct sim_sqe *s)
{
	uint16_t slot = d->tail;
	uint64_t *list = at(d->f, LIST_IOVA(d->qid, slot));
	unsigned int n, i;

	memset(s, 0, sizeof(*s));
	s->nsid = 1;
	switch (rnd(d) % 6) {
	case 0:		/* one page or less */
		s->cdw0 = 0x02;
		s->prp1 = data_page(d) + (rnd(d) % 8) * 512;
		s->cdw12 = 0;
		break;
	case 1:		/* two pages */
		s->cdw0 = 0x02;
		s->prp1 = data_page(d);
		s->prp2 = data_page(d);
		s->cdw12 = 15;
		break;
	case 2:		/* a list of scattered pages: may exceed the stage */
	case 3:
		n = 3 + rnd(d) % 30;
		s->cdw0 = 0x02;
		s->prp1 = data_page(d);
		s->prp2 = LIST_IOVA(d->qid, slot);
		for (i = 0; i < n - 1; i++)
			list[i] = rnd(d) % 4 ? data_page(d) :
				  s->prp1 + (i + 1) * PS;	/* merged */
		s->cdw12 = n * 8 - 1;
		break;
	case 4:		/* SGL: one data block */
		s->cdw0 = 0x02 | 1u << 14;
		s->prp1 = data_page(d);
		s->prp2 = (uint64_t)4096 << 0;	/* len 4096, type 0 */
		s->cdw12 = 7;
		break;
	default:	/* Write: the device writes only the completion */
		s->cdw0 = 0x01;
		s->prp1 = data_page(d);
		s->cdw12 = 7;
		break;
	}
	d->cid = d->cid % 1000 + 1;
	s->cdw0 |= (uint32_t)d->cid << 16;
}

static void complete(struct drv *d, unsigned int m)
{
	struct fake *f = d->f;

	while (m--) {
		struct sim_cqe e = {
			.sq_id = d->qid, .cid = d->fifo[d->in_head],
			.status = d->phase,
		};

		memcpy(at(f, CQ_IOVA(d->qid) + d->cq_tail * 16ull), &e,
		       sizeof(e));
		if (++d->cq_tail == DEPTH) {
			d->cq_tail = 0;
			d->phase ^= 1;
		}
		d->in_head = (d->in_head + 1) % DEPTH;
		d->n_in--;
	}
}

static void *drive(void *arg)
{
	struct drv *d = arg;
	struct fake *f = d->f;
	unsigned int it, b, i;
	struct sim_sqe s;

	for (it = 0; it < ITERS && !d->err; it++) {
		b = 1 + rnd(d) % 4;
		if (d->n_in + b < DEPTH - 1) {
			for (i = 0; i < b; i++) {
				build(d, &s);
				memcpy(at(f, SQ_IOVA(d->qid) + d->tail * 64ull),
				       &s, sizeof(s));
				d->fifo[(d->in_head + d->n_in++) % DEPTH] =
					d->cid;
				d->tail = (d->tail + 1) % DEPTH;
			}
			d->err = nvmp_doorbell(&f->c,
					       nvmp_db_offset(&f->c, d->qid,
							      false),
					       d->tail, true);
		}
		if (d->err)
			break;
		/* the device completes the oldest few; the guest releases */
		complete(d, rnd(d) % (d->n_in + 1));
		d->err = nvmp_doorbell(&f->c,
				       nvmp_db_offset(&f->c, d->qid, true),
				       d->cq_tail, true);
	}
	return NULL;
}

/* The store's live records, by (sqid, cid), with their ranges. */
struct rec_view {
	uint16_t sqid, cid, n;
	struct nvmp_range r[64];
};

static int rec_cmp(const void *a, const void *b)
{
	const struct rec_view *x = a, *y = b;

	if (x->sqid != y->sqid)
		return x->sqid - y->sqid;
	return x->cid - y->cid;
}

static unsigned int store_view(struct fake *f, struct rec_view *v)
{
	const struct nvmp_track *t = &f->c.trk;
	unsigned int n = 0;
	uint64_t i;
	uint16_t k;

	for (i = t->c_tail; i != t->c_head; i++) {
		const struct nvmp_rec *r = &t->rec[i & (t->nr_rec - 1)];

		if (!r->live)
			continue;
		memset(&v[n], 0, sizeof(v[n]));
		v[n].sqid = r->sqid;
		v[n].cid = r->cid;
		v[n].n = r->n;
		for (k = 0; k < r->n && k < 64; k++)
			v[n].r[k] = t->r[(r->first + k) & (t->nr_r - 1)];
		n++;
	}
	qsort(v, n, sizeof(*v), rec_cmp);
	return n;
}

/* Run the queues' sequences (@threads: concurrently) on a new fake. */
static struct fake *run(bool threads, bool locked, int *err)
{
	struct fake *f = fake_new(locked);
	struct drv d[NQ];
	pthread_t th[NQ];
	unsigned int q;

	*err = f ? 0 : -1;
	if (!f)
		return NULL;
	for (q = 0; q < NQ; q++) {
		memset(&d[q], 0, sizeof(d[q]));
		d[q].f = f;
		d[q].qid = q + 1;
		d[q].seed = 0x9e3779b97f4a7c15ull * (q + 1);
		d[q].phase = 1;
	}
	for (q = 0; q < NQ; q++) {
		if (threads)
			pthread_create(&th[q], NULL, drive, &d[q]);
		else
			drive(&d[q]);
	}
	for (q = 0; threads && q < NQ; q++)
		pthread_join(th[q], NULL);
	for (q = 0; q < NQ; q++)
		if (d[q].err)
			*err = d[q].err;
	return f;
}

FIXTURE(mt) {
	struct fake *one, *many;
	struct rec_view *v1, *v2;
};

FIXTURE_SETUP(mt)
{
	const char *nolock = getenv("NVMP_MT_NOLOCK");
	int err;

	self->one = run(false, true, &err);
	ASSERT_NE(NULL, self->one);
	ASSERT_EQ(0, err);
	self->many = run(true, !(nolock && *nolock == '1'), &err);
	ASSERT_NE(NULL, self->many);
	ASSERT_EQ(0, err);
	self->v1 = calloc(NR_REC, sizeof(*self->v1));
	self->v2 = calloc(NR_REC, sizeof(*self->v2));
	ASSERT_NE(NULL, self->v1);
	ASSERT_NE(NULL, self->v2);
}

FIXTURE_TEARDOWN(mt)
{
	if (self->one)
		fake_free(self->one);
	if (self->many)
		fake_free(self->many);
	free(self->v1);
	free(self->v2);
}

static unsigned long page_diff(struct fake *a, struct fake *b)
{
	unsigned long n = 0, p;

	for (p = 0; p < NPAGES; p++)
		n += a->dirty[p] != b->dirty[p];
	return n;
}

/* Marks, counters and the store are the same as the sequential run's. */
TEST_F(mt, concurrent_queues_match_one_thread)
{
	struct fake *a = self->one, *b = self->many;
	unsigned int n1, n2, i;
	unsigned long pages = 0, p;

	for (p = 0; p < NPAGES; p++)
		pages += !!a->dirty[p];
	TH_LOG("%d queue pairs x %d doorbell rounds: %llu commands, %llu dirty calls, %lu pages, %llu in flight",
	       NQ, ITERS, (unsigned long long)a->c.cmds,
	       (unsigned long long)a->c.dirty_calls, pages,
	       (unsigned long long)a->c.trk.live);
	EXPECT_EQ(0, a->c.untracked);
	EXPECT_EQ(0, a->outside);
	EXPECT_EQ(a->c.untracked, b->c.untracked);
	EXPECT_EQ(a->c.cmds, b->c.cmds);
	EXPECT_EQ(a->c.dirty_calls, b->c.dirty_calls);
	EXPECT_EQ(a->c.bad_doorbells, b->c.bad_doorbells);
	EXPECT_EQ(0, b->c.bad_doorbells);
	EXPECT_EQ(0, page_diff(a, b));
	for (i = 1; i <= NQ; i++) {
		EXPECT_EQ(a->c.cq[i].issued, b->c.cq[i].issued);
		EXPECT_EQ(a->c.cq[i].consumed, b->c.cq[i].consumed);
	}
	EXPECT_EQ(nvmp_outstanding(&a->c), nvmp_outstanding(&b->c));
	/* the store: the same live records with the same ranges */
	EXPECT_EQ(a->c.trk.live, b->c.trk.live);
	n1 = store_view(a, self->v1);
	n2 = store_view(b, self->v2);
	ASSERT_EQ(n1, n2);
	EXPECT_EQ(a->c.trk.live, n1);
	for (i = 0; i < n1; i++)
		ASSERT_EQ(0, memcmp(&self->v1[i], &self->v2[i],
				    sizeof(self->v1[i])))
			TH_LOG("record %u (sq %u cid %u) differs", i,
			       self->v1[i].sqid, self->v1[i].cid);
	/* a report: what is marked again is the same */
	memset(a->dirty, 0, sizeof(a->dirty));
	memset(b->dirty, 0, sizeof(b->dirty));
	nvmp_remark(&a->c);
	nvmp_remark(&b->c);
	EXPECT_EQ(0, page_diff(a, b));
}

/*
 * Two SQs on one CQ: SQ NQ + 1 (on CQ 1, its doorbells pair NQ + 1's)
 * hands over Writes while CQ 1's head doorbell (pair 1's) releases them.
 * Handing over reads how far CQ 1 was released, which pair 1 writes
 * (model.h: single-copy accesses; make tsan sees a plain one).
 */
#define SHARED_SQ	(NQ + 1)
#define SHARED_SQ_IOVA	(MEM_BASE + 0x8000)
#define SHARED_CMDS	4000

static void *shared_tails(void *arg)
{
	struct fake *f = arg;
	uint16_t tail = 0;
	unsigned int i;

	for (i = 0; i < SHARED_CMDS; i++) {
		struct sim_sqe s = {
			.cdw0 = 0x01 | (uint32_t)(i % DEPTH + 1) << 16,
			.nsid = 1, .prp1 = DATA_IOVA(1),
		};

		memcpy(at(f, SHARED_SQ_IOVA + tail * 64ull), &s, sizeof(s));
		tail = (tail + 1) % DEPTH;
		if (nvmp_doorbell(&f->c, nvmp_db_offset(&f->c, SHARED_SQ,
							false), tail, true))
			return (void *)1;
	}
	return NULL;
}

TEST(shared_cq_released_while_handed_over)
{
	struct fake *f = fake_new(true);
	struct sim_sqe s = { .cdw0 = 0x01, .prp1 = SHARED_SQ_IOVA,
			     .cdw10 = (uint32_t)(DEPTH - 1) << 16 | SHARED_SQ,
			     .cdw11 = 1u << 16 | 0x1 };
	uint16_t tail = 2 * NQ + 1, head = 0;
	unsigned int released = 0, spins = 0;
	pthread_t th;
	void *ret;

	ASSERT_NE(NULL, f);
	ASSERT_EQ(0, admin(f, &s, &tail, 2 * NQ + 2));
	ASSERT_TRUE(f->c.sq[SHARED_SQ].live);
	ASSERT_EQ(0, pthread_create(&th, NULL, shared_tails, f));
	while (released < SHARED_CMDS && spins < 100000000) {
		uint16_t next = (head + 1) % DEPTH;

		if (nvmp_doorbell(&f->c, nvmp_db_offset(&f->c, 1, true), next,
				  true)) {
			spins++;	/* nothing handed over to release yet */
			continue;
		}
		head = next;
		released++;
	}
	pthread_join(th, &ret);
	EXPECT_EQ(NULL, ret);
	EXPECT_EQ(SHARED_CMDS, released);
	EXPECT_EQ(SHARED_CMDS, f->c.cq[1].issued);
	EXPECT_EQ(SHARED_CMDS, f->c.cq[1].consumed);
	EXPECT_EQ(0, f->c.untracked);
	fake_free(f);
}

TEST_HARNESS_MAIN
