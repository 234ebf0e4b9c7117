// SPDX-License-Identifier: GPL-2.0
/*
 * The nvme profile's state record and restore (profiles/nvme/state.c,
 * restore.c) against a simulated controller (sim.h): a test guest drives a
 * source controller through the model as the trap would (random queues,
 * wraps, completions left unconsumed, AERs, held doorbells), the record is
 * saved and restored onto a second controller over a copy of the guest's
 * memory, and then both controllers must be indistinguishable: the same
 * queue positions and phases, the same features, the same memory, and the
 * same behaviour when the guest goes on.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "model.h"
#include "state.h"
#include "sim.h"

#define MEM_BASE	0x40000000ull
#define MEM_SIZE	(4ull << 20)
#define NR_IOQ		4
#define NR_VEC		5

struct gq {
	uint64_t sqb, cqb;
	uint16_t ssz, csz, stail, chead, cqid;
	uint8_t cphase, live_sq, live_cq;
	unsigned int pending;	/* CQ: submitted, not reaped */
};

struct g {
	uint8_t *mem;
	struct sim sim;
	struct nvmp_ctrl c;
	struct gq q[NVMP_MAX_QID];
	uint16_t cid;
	uint64_t seed;
	bool hold;
	unsigned long dirty_calls;
};

static uint64_t rnd(struct g *g)
{
	g->seed ^= g->seed << 13;
	g->seed ^= g->seed >> 7;
	g->seed ^= g->seed << 17;
	return g->seed;
}

static int g_read(void *ctx, u64 iova, void *buf, u32 len)
{
	struct g *g = ctx;
	void *p = sim_at(&g->sim, iova, len);

	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

static void g_dirty(void *ctx, u64 iova, u64 len)
{
	((struct g *)ctx)->dirty_calls++;
}

static void g_init(struct g *g, uint8_t *mem)
{
	struct nvmp_env env = { .read = g_read, .dirty = g_dirty, .ctx = g };

	memset(g, 0, sizeof(*g));
	g->mem = mem;
	g->sim.mem = mem;
	g->sim.mem_base = MEM_BASE;
	g->sim.mem_size = MEM_SIZE;
	g->sim.nr_ioq = NR_IOQ;
	g->sim.nr_vec = NR_VEC;
	g->sim.wait_budget = 100;
	nvmp_init(&g->c, &env, 0x7ff, 512 << 10);
}

/* A register write by the guest: the trap tells the model, then the VF. */
static void g_reg(struct g *g, uint32_t off, uint64_t val, uint8_t w)
{
	nvmp_reg_write(&g->c, off, val, w);
	sim_wr(&g->sim, off, val, w);
}

static void g_db(struct g *g, uint16_t qid, bool cq, uint16_t val)
{
	uint32_t off = nvmp_db_offset(&g->c, qid, cq);
	int ret = nvmp_doorbell(&g->c, off, val, cq || !g->hold);

	if (!ret && (cq || !g->hold))
		sim_wr(&g->sim, off, val, 4);
}

static uint16_t g_submit(struct g *g, uint16_t qid, struct sim_sqe *s)
{
	struct gq *q = &g->q[qid];

	if (!++g->cid)
		g->cid = 1;
	s->cdw0 = (s->cdw0 & 0xffff) | (uint32_t)g->cid << 16;
	memcpy(sim_at(&g->sim, q->sqb + q->stail * 64ull, 64), s, 64);
	q->stail = (q->stail + 1) % q->ssz;
	g->q[q->cqid].pending++;
	g_db(g, qid, false, q->stail);
	return g->cid;
}

/* Reap up to @max completions of CQ @cq; the last one's CQE in @last. */
static unsigned int g_reap(struct g *g, uint16_t cqid, unsigned int max,
			   struct sim_cqe *last)
{
	struct gq *q = &g->q[cqid];
	unsigned int n = 0;

	while (n < max) {
		struct sim_cqe e;

		memcpy(&e, sim_at(&g->sim, q->cqb + q->chead * 16ull, 16), 16);
		if ((e.status & 1) != q->cphase)
			break;
		if (last)
			*last = e;
		if (++q->chead == q->csz) {
			q->chead = 0;
			q->cphase ^= 1;
		}
		q->pending--;
		n++;
	}
	if (n)
		g_db(g, cqid, true, q->chead);
	return n;
}

static int g_admin(struct g *g, struct sim_sqe *s, uint32_t *result)
{
	struct sim_cqe e;

	g_submit(g, 0, s);
	if (g_reap(g, 0, 1, &e) != 1)
		return -1;
	if (result)
		*result = e.result;
	return e.status >> 1;
}

static void g_enable(struct g *g, uint16_t asz, uint16_t csz)
{
	g->q[0] = (struct gq){ .sqb = MEM_BASE, .cqb = MEM_BASE + 0x10000,
			       .ssz = asz, .csz = csz, .cphase = 1,
			       .live_sq = 1, .live_cq = 1 };
	g_reg(g, NVMP_REG_AQA, (uint32_t)(csz - 1) << 16 | (asz - 1), 4);
	g_reg(g, NVMP_REG_ASQ, g->q[0].sqb, 8);
	g_reg(g, NVMP_REG_ACQ, g->q[0].cqb, 8);
	g_reg(g, NVMP_REG_CC, 0x460001, 4);
}

static int g_create(struct g *g, uint16_t qid, uint16_t cqid, uint16_t ssz,
		    uint16_t csz, bool cq)
{
	struct sim_sqe s = { 0 };
	struct gq *q = &g->q[qid];

	if (cq) {
		q->cqb = MEM_BASE + 0x20000 + qid * 0x10000ull;
		q->csz = csz;
		q->cphase = 1;
		s.cdw0 = 0x05;
		s.prp1 = q->cqb;
		s.cdw10 = (uint32_t)(csz - 1) << 16 | qid;
		s.cdw11 = (uint32_t)(qid % NR_VEC) << 16 | 0x3;
		q->live_cq = 1;
	} else {
		q->sqb = MEM_BASE + 0x200000 + qid * 0x20000ull;
		q->ssz = ssz;
		q->cqid = cqid;
		s.cdw0 = 0x01;
		s.prp1 = q->sqb;
		s.cdw10 = (uint32_t)(ssz - 1) << 16 | qid;
		s.cdw11 = (uint32_t)cqid << 16 | 0x1;
		q->live_sq = 1;
	}
	return g_admin(g, &s, NULL);
}

/* Room for one more command on SQ @qid without a CQ or SQ ever full. */
static bool g_room(struct g *g, uint16_t qid)
{
	struct gq *q = &g->q[qid], *cq = &g->q[q->cqid];

	return cq->pending + 1 < cq->csz && cq->pending + 1 < q->ssz;
}

static const uint16_t sizes[] = { 2, 3, 4, 7, 8, 16, 31, 32, 64 };

/* Build a random source: queues, features, AERs, traffic, holds. */
static void g_build(struct g *g)
{
	struct sim_sqe s;
	unsigned int i, steps = 50 + rnd(g) % 400;
	uint16_t asz = rnd(g) & 1 ? 32 : sizes[2 + rnd(g) % 7];
	uint16_t q, nq = 1 + rnd(g) % NR_IOQ;
	uint32_t res;

	g_enable(g, asz, rnd(g) & 1 ? asz : sizes[2 + rnd(g) % 7]);
	memset(&s, 0, sizeof(s));
	s.cdw0 = 0x09;
	s.cdw10 = 0x07;
	s.cdw11 = 0x00030003;
	g_admin(g, &s, &res);
	s.cdw10 = 0x06;
	s.cdw11 = 1;
	g_admin(g, &s, NULL);
	s.cdw10 = 0x09;
	s.cdw11 = 0x10002;
	g_admin(g, &s, NULL);
	memset(&s, 0, sizeof(s));
	s.cdw0 = 0x06;
	s.nsid = 1;
	s.prp1 = MEM_BASE + 0x380000;
	g_admin(g, &s, NULL);
	/* CQs 1..nq; SQs 1..nq, each on a random CQ */
	for (q = 1; q <= nq; q++)
		g_create(g, q, 0, 0, sizes[rnd(g) % 9], true);
	for (q = 1; q <= nq; q++)
		g_create(g, q, 1 + rnd(g) % nq, sizes[rnd(g) % 9], 0, false);
	if (rnd(g) & 1) {
		memset(&s, 0, sizeof(s));
		s.cdw0 = 0x0c;
		/* its id anywhere among the restore's own */
		g->cid = rnd(g) % 1024;
		if (g_room(g, 0))
			g_submit(g, 0, &s);
	}
	for (i = 0; i < steps; i++) {
		uint64_t r = rnd(g);
		uint16_t qid = r % (nq + 1);

		if (i == steps - steps / 8)
			g->hold = true;		/* the quiesce begins */
		if ((r >> 8) % 3 == 0) {
			/* the guest consumes some completions */
			uint16_t cq = (r >> 16) % (nq + 1);

			if (!g->hold)
				g_reap(g, cq, (r >> 24) % 8, NULL);
			continue;
		}
		if (!g_room(g, qid))
			continue;
		memset(&s, 0, sizeof(s));
		if (qid) {
			s.cdw0 = (r >> 32) % 3;	/* Flush, Write, Read */
			s.nsid = 1;
			s.prp1 = MEM_BASE + 0x300000;
			s.cdw12 = 7;
		} else {
			s.cdw0 = 0x0a;		/* Get Features */
			s.cdw10 = (r >> 32) & 1 ? 0x06 : 0x07;
		}
		g_submit(g, qid, &s);
	}
}

static void check_same_sim(struct __test_metadata *_metadata, const char *when,
			   const struct sim *a, const struct sim *b)
{
	unsigned int q, i;

	EXPECT_EQ(a->cc, b->cc);
	EXPECT_EQ(a->csts, b->csts);
	EXPECT_EQ(a->aqa, b->aqa);
	EXPECT_EQ(a->asq, b->asq);
	EXPECT_EQ(a->acq, b->acq);
	for (q = 0; q < SIM_MAX_Q; q++) {
		EXPECT_EQ(0, memcmp(&a->sq[q], &b->sq[q], sizeof(a->sq[q])))
			TH_LOG("%s: SQ %u: base %#lx/%#lx size %u/%u head %u/%u tail %u/%u",
			       when, q, (long)a->sq[q].base, (long)b->sq[q].base,
			       a->sq[q].size, b->sq[q].size, a->sq[q].head,
			       b->sq[q].head, a->sq[q].tail, b->sq[q].tail);
		EXPECT_EQ(0, memcmp(&a->cq[q], &b->cq[q], sizeof(a->cq[q])))
			TH_LOG("%s: CQ %u: size %u/%u head %u/%u tail %u/%u phase %u/%u",
			       when, q, a->cq[q].size, b->cq[q].size, a->cq[q].head,
			       b->cq[q].head, a->cq[q].tail, b->cq[q].tail,
			       a->cq[q].phase, b->cq[q].phase);
	}
	for (i = 1; i < 256; i++)
		if (a->feat_set[i] && i != 0x0a)
			EXPECT_EQ(a->feat[i], b->feat[i]) TH_LOG("FID %#x", i);
	for (i = 0; i < NR_VEC; i++)
		EXPECT_EQ(a->iv_cfg[i], b->iv_cfg[i]);
	EXPECT_EQ(a->nr_aer, b->nr_aer);
	for (i = 0; i < (unsigned int)a->nr_aer && i < 8; i++)
		EXPECT_EQ(a->aer[i], b->aer[i]);
}

static const struct nvmp_limits lim = {
	.mqes = 2048, .nr_ioq = NR_IOQ, .nr_vec = NR_VEC,
	.mps_min = 0, .mps_max = 0,
};

struct pair {
	uint8_t *ma, *mb;
	struct g a, b;
	struct nvmp_state st;
	void *buf;
};

/* Build a source from @seed, save, restore onto a second controller. */
static int migrate(struct __test_metadata *_metadata, struct pair *p,
		   uint64_t seed)
{
	const char *why = NULL;
	size_t len;
	int ret;

	memset(p->ma, 0, MEM_SIZE);
	g_init(&p->a, p->ma);
	p->a.seed = seed;
	g_build(&p->a);
	ret = nvmp_save(&p->a.c, &p->st);
	if (ret)
		return ret;
	ret = nvmp_state_check(&p->st, &lim, &why);
	EXPECT_EQ(0, ret) TH_LOG("seed %#lx: %s", (long)seed, why);
	if (ret)
		return ret;
	/* the record says what the source device holds */
	for (unsigned int q = 0; q < NR_IOQ + 1; q++) {
		const struct nvmp_state_q *s = &p->st.q[q];
		const struct sim_q *cq = &p->a.sim.cq[q];

		if (!(s->flags & NVMP_QF_CQ))
			continue;
		EXPECT_EQ(cq->tail, s->cq_tail) TH_LOG("CQ %u", q);
		EXPECT_EQ(cq->head, s->cq_head) TH_LOG("CQ %u", q);
		EXPECT_EQ(cq->phase, !!(s->flags & NVMP_QF_PHASE));
		if (s->flags & NVMP_QF_SQ)
			EXPECT_EQ(p->a.sim.sq[q].head, s->sq_head);
	}
	memcpy(p->mb, p->ma, MEM_SIZE);
	g_init(&p->b, p->mb);
	len = nvmp_restore_buf_size(&p->st);
	p->buf = realloc(p->buf, len);
	/*
	 * The target runs commands only while the restore waits, as a real
	 * device runs them after the doorbell write returns: a completion
	 * is seen by its phase bit, not by the write having happened.
	 */
	p->b.sim.lazy = 1;
	p->b.sim.wait_budget = 1 << 24;
	ret = nvmp_restore(&p->b.c, &p->st, &(struct nvmp_dev){
				   sim_wr, sim_rd, sim_wait, sim_write,
				   &p->b.sim }, p->buf, len, &why);
	p->b.sim.lazy = 0;
	sim_wait(&p->b.sim);
	EXPECT_EQ(0, ret) TH_LOG("seed %#lx: restore: %s", (long)seed, why);
	return ret;
}

FIXTURE(restore) {
	struct pair p;
};

FIXTURE_SETUP(restore)
{
	self->p.ma = calloc(1, MEM_SIZE);
	self->p.mb = calloc(1, MEM_SIZE);
	ASSERT_NE(NULL, self->p.ma);
	ASSERT_NE(NULL, self->p.mb);
}

FIXTURE_TEARDOWN(restore)
{
	free(self->p.ma);
	free(self->p.mb);
	free(self->p.buf);
}

TEST_F(restore, target_indistinguishable_from_source)
{
	struct pair *p = &self->p;
	unsigned int seeds = 400, done = 0, busy = 0, i;
	unsigned long flushes = 0;

	for (i = 0; i < seeds; i++) {
		uint64_t seed = 0x1234567ull * (i + 1) | 1;
		uint16_t q;
		int ret = migrate(_metadata, p, seed);

		if (ret == -EBUSY) {	/* a source with work the CQ holds */
			busy++;
			continue;
		}
		ASSERT_EQ(0, ret);
		flushes += p->b.sim.flushes;
		EXPECT_EQ(0, p->b.sim.dup_cid)
			TH_LOG("seed %#lx: the restore reused an AER's id",
			       (long)seed);
		check_same_sim(_metadata, "restored", &p->a.sim, &p->b.sim);
		ASSERT_EQ(0, memcmp(p->ma, p->mb, MEM_SIZE))
			TH_LOG("seed %#lx: guest memory differs", (long)seed);
		/* the guest goes on: held work released, more traffic */
		p->a.hold = p->b.hold = false;
		p->b.seed = p->a.seed;
		memcpy(p->b.q, p->a.q, sizeof(p->a.q));
		p->b.cid = p->a.cid;
		for (q = 0; q < NVMP_MAX_QID; q++) {
			if (!p->a.q[q].live_sq)
				continue;
			g_db(&p->a, q, false, p->a.q[q].stail);
			g_db(&p->b, q, false, p->b.q[q].stail);
		}
		for (q = 0; q < NVMP_MAX_QID; q++) {
			if (!p->a.q[q].live_cq)
				continue;
			g_reap(&p->a, q, 1000, NULL);
			g_reap(&p->b, q, 1000, NULL);
		}
		check_same_sim(_metadata, "went on", &p->a.sim, &p->b.sim);
		ASSERT_EQ(0, memcmp(p->ma, p->mb, MEM_SIZE))
			TH_LOG("seed %#lx: guest memory differs after", (long)seed);
		EXPECT_EQ(0, p->b.c.untracked);
		EXPECT_EQ(0, nvmp_outstanding(&p->b.c));
		EXPECT_EQ(0, p->b.sim.bad_db);
		done++;
	}
	TH_LOG("%u of %u sources migrated (%u busy), %lu positioning flushes",
	       done, seeds, busy, flushes);
	EXPECT_GT(done, seeds * 3 / 4);
}

TEST_F(restore, busy_source_refuses_to_save)
{
	struct g *g = &self->p.a;
	struct sim_sqe s = { .cdw0 = 0x01, .nsid = 1, .prp1 = MEM_BASE };

	g_init(g, self->p.ma);
	g_enable(g, 8, 8);
	ASSERT_EQ(0, g_create(g, 1, 0, 0, 4, true));
	ASSERT_EQ(0, g_create(g, 1, 1, 8, 0, false));
	/* the CQ holds 3: the 4th and 5th wait in the device's SQ */
	for (int i = 0; i < 5; i++)
		g_submit(g, 1, &s);
	EXPECT_EQ(-EBUSY, nvmp_save(&g->c, &self->p.st));
	g_reap(g, 1, 2, NULL);
	EXPECT_EQ(0, nvmp_save(&g->c, &self->p.st));
	g->c.untracked |= NVMP_UT_FEATURE;
	EXPECT_EQ(-EIO, nvmp_save(&g->c, &self->p.st));
}

TEST_F(restore, hostile_records_refused)
{
	struct pair *p = &self->p;
	const char *why;
	struct nvmp_state st;
	unsigned int i, refused = 0;
	uint64_t seed;

	for (seed = 1; migrate(_metadata, p, seed * 0x9e3779b9ull) ||
	     !(p->st.q[1].flags & NVMP_QF_SQ); seed++)
		ASSERT_LT(seed, 100);
	ASSERT_EQ(0, nvmp_state_check(&p->st, &lim, &why));
#define REFUSE(stmt) do {						\
		st = p->st;						\
		stmt;							\
		EXPECT_EQ(-EINVAL, nvmp_state_check(&st, &lim, &why))	\
			TH_LOG("accepted: %s", #stmt);			\
		refused++;						\
	} while (0)
	REFUSE(st.version = NVMP_STATE_VERSION + 1);
	REFUSE(st.version = 1);		/* before the canonical record */
	REFUSE(st.cc |= 1 << 7);		/* MPS the target lacks */
	REFUSE(st.cc |= 1 << 14);		/* a shutdown under way */
	REFUSE(st.cc |= 1 << 11);		/* weighted round robin */
	REFUSE(st.cc |= 1 << 2);		/* reserved */
	REFUSE(st.cc |= 1u << 31);		/* reserved */
	REFUSE(st.cc = (st.cc & ~0xf0000u) | 0x70000);	/* IOSQES */
	REFUSE(st.asq |= 0x200);
	REFUSE(st.aqa = 0x0fff0ffe);		/* period too long */
	REFUSE(st.admin_issued++);
	REFUSE(st.q[0].cq_tail ^= 1);
	REFUSE(st.q[0].flags ^= NVMP_QF_PHASE);
	REFUSE(st.q[1].sq_size = 4096);		/* above the target's MQES */
	REFUSE(st.q[1].sq_size = 1);
	REFUSE(st.q[1].sq_head = st.q[1].sq_size);
	REFUSE(st.q[1].sq_tail = 0xffff);
	REFUSE(st.q[1].sq_cqid = 15);
	REFUSE(st.q[1].sq_cqid = 200);
	REFUSE(st.q[1].sq_base |= 8);
	REFUSE(st.q[1].sq_prio = 4);
	REFUSE(st.q[1].cq_iv = NR_VEC);
	REFUSE(st.q[1].cq_head = st.q[1].cq_size);
	REFUSE(st.q[1].flags |= 0x40);
	REFUSE(st.q[1].rsvd[3] = 1);
	REFUSE(st.q[NR_IOQ + 1].flags = NVMP_QF_CQ;
	       st.q[NR_IOQ + 1].cq_size = 8);
	REFUSE(st.q[9].sq_base = 0x1000);
	REFUSE(st.nr_aer = NVMP_MAX_AER + 1);
	REFUSE(st.nr_ns = NVMP_MAX_NS + 1);
	REFUSE(st.ns[0].lba_shift = 3);
	REFUSE(st.feat_set |= 1u << 20);
	REFUSE(st.feat_set |= 1u << NVMP_FEAT_NQ;
	       st.feat[NVMP_FEAT_NQ] = 0xffff0003);
	REFUSE(st.iv_cfg_set |= 1u << 7; st.iv_cfg[7] = 7);
	REFUSE(st.iv_cfg_set |= 1u << 3; st.iv_cfg[3] = 4);
	REFUSE(st.cc &= ~1u);			/* disabled, with queues */
	REFUSE(st.q[1].sq_cqid = 0);		/* an I/O SQ on the admin CQ */
	/* QEMU's answer: every pair it has, more than the model follows */
	st = p->st;
	st.feat_set |= 1u << NVMP_FEAT_NQ;
	st.feat[NVMP_FEAT_NQ] = 0x003f003f;
	EXPECT_EQ(0, nvmp_state_check(&st, &lim, &why))
		TH_LOG("63 pairs granted refused: %s", why);
	/* the record is canonical: unused slots are zero */
	for (i = 0; i < NVMP_FEAT_NR && (p->st.feat_set & (1u << i)); i++)
		;
	ASSERT_LT(i, NVMP_FEAT_NR);
	REFUSE(st.feat[i] = 1);
	for (i = 0; i < NVMP_MAX_VEC && (p->st.iv_cfg_set & (1u << i)); i++)
		;
	ASSERT_LT(i, NVMP_MAX_VEC);
	REFUSE(st.iv_cfg[i] = 0x10000 | i);
	ASSERT_LT(p->st.nr_ns, NVMP_MAX_NS);
	REFUSE(st.ns[st.nr_ns].nsid = 9);
	REFUSE(st.ns[NVMP_MAX_NS - 1].flags = 1);
	REFUSE(st.ns[0].flags = 2);		/* unknown flag */
	REFUSE((st.ns[0].flags = NVMP_NSF_EXT, st.ns[0].ms = 0));	/* extended, no metadata */
	ASSERT_LT(p->st.nr_aer, NVMP_MAX_AER);
	REFUSE(st.aer_cid[NVMP_MAX_AER - 1] = 3);
	/* random bytes: refused or restorable, never a crash */
	for (i = 0; i < 20000; i++) {
		uint8_t *b = (uint8_t *)&st;
		unsigned int k;

		st = p->st;
		for (k = 0; k < 1 + i % 4; k++)
			b[(i * 7919u + k * 104729u) % sizeof(st)] ^=
				(uint8_t)(1 + (i >> 3));
		if (nvmp_state_check(&st, &lim, &why))
			continue;
		/* accepted: the restore must cope (bounded, clean error) */
		memcpy(p->mb, p->ma, MEM_SIZE);
		g_init(&p->b, p->mb);
		p->buf = realloc(p->buf, nvmp_restore_buf_size(&st));
		nvmp_restore(&p->b.c, &st, &(struct nvmp_dev){
				     sim_wr, sim_rd, sim_wait, sim_write,
				     &p->b.sim }, p->buf,
			     nvmp_restore_buf_size(&st), &why);
	}
	TH_LOG("%u targeted mutations refused", refused);
}

/*
 * A record whose I/O CQ tail counts a completion more than the guest's
 * memory holds (the source's device never posted it): well formed, so
 * the check passes, but the restore refuses it rather than leave the model
 * owed a completion that never comes.
 */
TEST_F(restore, completion_not_in_memory_refused)
{
	struct pair *p = &self->p;
	const char *why = NULL;
	struct nvmp_state_q *q;
	uint64_t seed;
	uint16_t size;

	for (seed = 1; migrate(_metadata, p, seed * 0x9e3779b9ull) ||
	     !(p->st.q[1].flags & NVMP_QF_SQ); seed++)
		ASSERT_LT(seed, 100);
	/* the CQ SQ 1 completes on */
	q = &p->st.q[p->st.q[1].sq_cqid];
	ASSERT_NE(0, p->st.q[1].sq_cqid);
	size = q->cq_size;
	q->cq_tail = (q->cq_tail + 1) % size;
	if (!q->cq_tail)	/* wrapped: the phase turns */
		q->flags ^= NVMP_QF_PHASE;
	ASSERT_EQ(0, nvmp_state_check(&p->st, &lim, &why)) TH_LOG("%s", why);
	memcpy(p->mb, p->ma, MEM_SIZE);
	g_init(&p->b, p->mb);
	EXPECT_EQ(-EINVAL, nvmp_restore(&p->b.c, &p->st, &(struct nvmp_dev){
						sim_wr, sim_rd, sim_wait,
						sim_write, &p->b.sim },
					p->buf, nvmp_restore_buf_size(&p->st),
					&why));
	ASSERT_NE(NULL, why);
	EXPECT_NE(NULL, strstr(why, "not in guest memory")) TH_LOG("%s", why);
	/*
	 * Refused, it leaves a disabled controller in the device and the
	 * model (nothing owed: a later quiesce must not wait for the
	 * completions the record invented) and the queue memory as it was.
	 */
	EXPECT_EQ(0, p->b.sim.cc & 1);
	EXPECT_EQ(0, nvmp_outstanding(&p->b.c));
	EXPECT_EQ(0, memcmp(p->mb, p->ma, MEM_SIZE));
}

TEST_F(restore, dead_target_fails_cleanly)
{
	struct pair *p = &self->p;
	const char *why = NULL;
	uint64_t seed;

	for (seed = 7; migrate(_metadata, p, seed); seed++)
		ASSERT_LT(seed, 100);
	g_init(&p->b, p->mb);
	p->b.sim.nr_ioq = 0;	/* a target that refuses every queue */
	EXPECT_EQ(-EIO, nvmp_restore(&p->b.c, &p->st, &(struct nvmp_dev){
					     sim_wr, sim_rd, sim_wait,
					     sim_write, &p->b.sim },
				     p->buf, nvmp_restore_buf_size(&p->st),
				     &why));
	EXPECT_NE(NULL, why);
	TH_LOG("refused: %s", why);
	/* CSTS.RDY never comes: a bounded wait, then the error */
	g_init(&p->b, p->mb);
	p->b.sim.dead = 1;
	EXPECT_EQ(-ETIMEDOUT, nvmp_restore(&p->b.c, &p->st, &(struct nvmp_dev){
						   sim_wr, sim_rd, sim_wait,
						   sim_write, &p->b.sim },
					   p->buf,
					   nvmp_restore_buf_size(&p->st),
					   &why));
	TH_LOG("refused: %s", why);
	EXPECT_EQ(0, strcmp(why, "waiting for CSTS.RDY"));
	EXPECT_EQ(0, p->b.sim.cc & 1);
	EXPECT_EQ(0, memcmp(p->mb, p->ma, MEM_SIZE));
	/* CSTS.CFS instead: refused at once, not at the deadline */
	g_init(&p->b, p->mb);
	p->b.sim.dead = 2;
	EXPECT_EQ(-EIO, nvmp_restore(&p->b.c, &p->st, &(struct nvmp_dev){
					     sim_wr, sim_rd, sim_wait,
					     sim_write, &p->b.sim },
				     p->buf, nvmp_restore_buf_size(&p->st),
				     &why));
	EXPECT_EQ(0, strcmp(why, "controller fatal status")) TH_LOG("%s", why);
	EXPECT_GT(p->b.sim.wait_budget, (int)p->b.sim.waits);
}

TEST_HARNESS_MAIN
