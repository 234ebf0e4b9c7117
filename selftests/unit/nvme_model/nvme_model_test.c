// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the nvme profile's controller model (profiles/nvme/model.c)
 * against a fake guest memory and a fake device that posts completions the
 * way an NVMe controller does (in order of completion, one CQ slot each,
 * phase flipping at each wrap).
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

#define MEM_BASE	0x10000000ull
#define MEM_SIZE	(64ull << 20)
#define PS		4096ull
#define NPAGES		(MEM_SIZE / PS)

/* where the test puts things in guest memory */
#define ASQ_IOVA	(MEM_BASE + 0x0000)
#define ACQ_IOVA	(MEM_BASE + 0x1000)
#define SQ1_IOVA	(MEM_BASE + 0x2000)
#define CQ1_IOVA	(MEM_BASE + 0x4000)
#define ID_IOVA		(MEM_BASE + 0x5000)
#define LIST_IOVA	(MEM_BASE + 0x10000)
#define DATA_IOVA	(MEM_BASE + 0x100000)
#define NSZE		131072ull	/* blocks of the namespaces identified */
#define ADMIN_DEPTH	32
#define IO_DEPTH	64

struct sgl_desc {
	uint64_t addr;
	uint32_t len;
	uint8_t rsvd[3], type;
};

struct fake {
	uint8_t *mem;
	uint32_t dirty[NPAGES];	/* marks per page */
	uint64_t outside;	/* dirty ranges outside the memory */
	uint64_t max_len;	/* longest dirty range */
	int fail_reads;
	struct nvmp_ctrl c;
	/* per queue: our tail, the device's CQ tail and phase, our CQ head */
	uint16_t sq_tail[NVMP_MAX_QID];
	uint16_t cq_tail[NVMP_MAX_QID], cq_head[NVMP_MAX_QID];
	uint8_t cq_phase[NVMP_MAX_QID];
	uint16_t depth[NVMP_MAX_QID];
	uint64_t sq_base[NVMP_MAX_QID], cq_base[NVMP_MAX_QID];
	uint16_t cid;
	/* the in-flight store */
	struct nvmp_range ranges[4096];
	struct nvmp_rec recs[256];
	uint32_t hash[512];
};

static int f_read(void *ctx, u64 iova, void *buf, u32 len)
{
	struct fake *f = ctx;

	if (f->fail_reads || iova < MEM_BASE || iova + len > MEM_BASE + MEM_SIZE)
		return -EFAULT;
	memcpy(buf, f->mem + (iova - MEM_BASE), len);
	return 0;
}

static void f_dirty(void *ctx, u64 iova, u64 len)
{
	struct fake *f = ctx;
	uint64_t p;

	if (len > f->max_len)
		f->max_len = len;
	if (iova < MEM_BASE || iova + len > MEM_BASE + MEM_SIZE ||
	    iova + len < iova) {
		f->outside++;
		return;
	}
	for (p = (iova - MEM_BASE) / PS; p <= (iova + len - 1 - MEM_BASE) / PS;
	     p++)
		f->dirty[p]++;
}

static void *at(struct fake *f, uint64_t iova)
{
	return f->mem + (iova - MEM_BASE);
}

static unsigned long dirty_pages(struct fake *f)
{
	unsigned long n = 0, p;

	for (p = 0; p < NPAGES; p++)
		n += !!f->dirty[p];
	return n;
}

static int is_dirty(struct fake *f, uint64_t iova)
{
	return f->dirty[(iova - MEM_BASE) / PS] != 0;
}

static void clear_dirty(struct fake *f)
{
	memset(f->dirty, 0, sizeof(f->dirty));
}

/* Queue @sqe on SQ @qid and ring its tail doorbell. */
static int submit(struct fake *f, uint16_t qid, struct sim_sqe *s, bool forward)
{
	uint64_t slot = f->sq_base[qid] + f->sq_tail[qid] * sizeof(*s);

	if (!(s->cdw0 >> 16))
		s->cdw0 |= (uint32_t)(++f->cid ? f->cid : ++f->cid) << 16;
	memcpy(at(f, slot), s, sizeof(*s));
	f->sq_tail[qid] = (f->sq_tail[qid] + 1) % f->depth[qid];
	return nvmp_doorbell(&f->c, nvmp_db_offset(&f->c, qid, false),
			     f->sq_tail[qid], forward);
}

/* The device completes command @cid of SQ @sqid on CQ @cqid. */
static void complete(struct fake *f, uint16_t cqid, uint16_t sqid,
		     uint16_t cid, uint16_t status, uint32_t result)
{
	struct sim_cqe e = {
		.result = result, .sq_id = sqid, .cid = cid,
		.status = (uint16_t)(status << 1 | f->cq_phase[cqid]),
	};

	memcpy(at(f, f->cq_base[cqid] + f->cq_tail[cqid] * sizeof(e)), &e,
	       sizeof(e));
	if (++f->cq_tail[cqid] == f->depth[cqid]) {
		f->cq_tail[cqid] = 0;
		f->cq_phase[cqid] ^= 1;
	}
}

/* The guest releases every posted completion of CQ @qid. */
static int release(struct fake *f, uint16_t qid)
{
	f->cq_head[qid] = f->cq_tail[qid];
	return nvmp_doorbell(&f->c, nvmp_db_offset(&f->c, qid, true),
			     f->cq_head[qid], true);
}

static uint16_t last_cid(struct fake *f)
{
	return f->cid;
}

/* One admin command, completed with @status and released. */
static int admin(struct fake *f, struct sim_sqe *s, uint16_t status,
		 uint32_t result)
{
	int ret = submit(f, 0, s, true);

	if (ret)
		return ret;
	complete(f, 0, 0, last_cid(f), status, result);
	return release(f, 0);
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct nvmp_env env = { .read = f_read, .dirty = f_dirty, .ctx = f };

	f->mem = calloc(1, MEM_SIZE);
	/* CAP: MQES 2047, DSTRD 0 */
	nvmp_init(&f->c, &env, 0x7ff, 512 << 10);
	nvmp_track_init(&f->c, f->ranges, 4096, f->recs, 256, f->hash);
	return f;
}

static void fake_free(struct fake *f)
{
	free(f->mem);
	free(f);
}

static void enable(struct fake *f)
{
	nvmp_reg_write(&f->c, NVMP_REG_AQA,
		       (ADMIN_DEPTH - 1) << 16 | (ADMIN_DEPTH - 1), 4);
	nvmp_reg_write(&f->c, NVMP_REG_ASQ, ASQ_IOVA, 8);
	nvmp_reg_write(&f->c, NVMP_REG_ACQ, ACQ_IOVA, 8);
	nvmp_reg_write(&f->c, NVMP_REG_CC, 0x460001, 4);
	memset(f->sq_tail, 0, sizeof(f->sq_tail));
	memset(f->cq_tail, 0, sizeof(f->cq_tail));
	memset(f->cq_head, 0, sizeof(f->cq_head));
	memset(f->cq_phase, 1, sizeof(f->cq_phase));
	f->depth[0] = ADMIN_DEPTH;
	f->sq_base[0] = ASQ_IOVA;
	f->cq_base[0] = ACQ_IOVA;
}

static int create_pair(struct fake *f, uint16_t qid, uint16_t depth,
		       uint64_t sq, uint64_t cq)
{
	struct sim_sqe s = { .cdw0 = 0x05, .prp1 = cq,
			 .cdw10 = (uint32_t)(depth - 1) << 16 | qid,
			 .cdw11 = (uint32_t)qid << 16 | 0x3 };
	int ret = admin(f, &s, 0, 0);

	if (ret)
		return ret;
	memset(&s, 0, sizeof(s));
	s.cdw0 = 0x01;
	s.prp1 = sq;
	s.cdw10 = (uint32_t)(depth - 1) << 16 | qid;
	s.cdw11 = (uint32_t)qid << 16 | 0x1;
	f->depth[qid] = depth;
	f->sq_base[qid] = sq;
	f->cq_base[qid] = cq;
	return admin(f, &s, 0, 0);
}

/* Identify Namespace @nsid answers LBA format 0: 512-byte blocks. */
/* Identify Namespace: format 0 with @ms bytes of metadata per block. */
static int identify_ns_md(struct fake *f, uint32_t nsid, uint8_t lbads,
			  uint16_t ms, bool extended)
{
	struct sim_sqe s = { .cdw0 = 0x06, .nsid = nsid, .prp1 = ID_IOVA };
	uint8_t *id = at(f, ID_IOVA);

	memset(id, 0, 4096);
	memcpy(id, &(uint64_t){ NSZE }, 8);	/* NSZE */
	id[26] = extended ? 0x10 : 0;	/* FLBAS: format 0, bit 4 extended */
	id[128] = ms & 0xff;
	id[128 + 1] = ms >> 8;
	id[128 + 2] = lbads;
	return admin(f, &s, 0, 0);
}

static int identify_ns(struct fake *f, uint32_t nsid, uint8_t lbads)
{
	return identify_ns_md(f, nsid, lbads, 0, false);
}

static struct sim_sqe read_cmd(uint32_t nsid, uint64_t slba, uint32_t nlb,
			   uint64_t prp1, uint64_t prp2)
{
	struct sim_sqe s = { .cdw0 = 0x02, .nsid = nsid, .prp1 = prp1,
			 .prp2 = prp2, .cdw10 = (uint32_t)slba,
			 .cdw11 = (uint32_t)(slba >> 32),
			 .cdw12 = nlb - 1 };
	return s;
}

FIXTURE(model) {
	struct fake *f;
};

FIXTURE_SETUP(model)
{
	self->f = fake_new();
	enable(self->f);
	ASSERT_EQ(0, create_pair(self->f, 1, IO_DEPTH, SQ1_IOVA, CQ1_IOVA));
	ASSERT_EQ(0, identify_ns(self->f, 1, 9));
	clear_dirty(self->f);
}

FIXTURE_TEARDOWN(model)
{
	fake_free(self->f);
}

TEST_F(model, queues_created_from_completed_commands)
{
	struct nvmp_ctrl *c = &self->f->c;

	ASSERT_TRUE(c->enabled);
	EXPECT_TRUE(c->cq[1].live);
	EXPECT_TRUE(c->sq[1].live);
	EXPECT_EQ(CQ1_IOVA, c->cq[1].base);
	EXPECT_EQ(SQ1_IOVA, c->sq[1].base);
	EXPECT_EQ(IO_DEPTH, c->sq[1].size);
	EXPECT_EQ(1, c->sq[1].cqid);
	EXPECT_EQ(1, c->cq[1].iv);
	EXPECT_EQ(1, c->cq[1].ien);
	EXPECT_EQ(1, c->nr_ns);
	EXPECT_EQ(9, c->ns[0].lba_shift);
	EXPECT_EQ(0, c->untracked);
	EXPECT_EQ(0, nvmp_outstanding(c));
}

TEST_F(model, failed_create_is_not_a_queue)
{
	struct fake *f = self->f;
	struct sim_sqe s = { .cdw0 = 0x05, .prp1 = CQ1_IOVA + 0x800,
			 .cdw10 = 7u << 16 | 2, .cdw11 = 0x1 };

	ASSERT_EQ(0, admin(f, &s, 0x101, 0));	/* invalid queue id */
	EXPECT_FALSE(f->c.cq[2].live);
}

TEST_F(model, read_prp1_only)
{
	struct fake *f = self->f;
	struct sim_sqe s = read_cmd(1, 0, 1, DATA_IOVA + 0x200, 0);

	ASSERT_EQ(0, submit(f, 1, &s, true));
	/* one data page and the CQ page */
	EXPECT_EQ(2, dirty_pages(f));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA));
	EXPECT_TRUE(is_dirty(f, CQ1_IOVA));
	EXPECT_EQ(1, nvmp_outstanding(&f->c));
}

TEST_F(model, read_prp1_prp2)
{
	struct fake *f = self->f;
	/* 8 blocks from offset 0xe00: 512 bytes in page 0, 3584 in prp2 */
	struct sim_sqe s = read_cmd(1, 0, 8, DATA_IOVA + 0xe00,
				DATA_IOVA + 0x5000);

	ASSERT_EQ(0, submit(f, 1, &s, true));
	EXPECT_EQ(3, dirty_pages(f));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x5000));
	EXPECT_FALSE(is_dirty(f, DATA_IOVA + 0x1000));
}

TEST_F(model, write_dirties_only_its_completion)
{
	struct fake *f = self->f;
	struct sim_sqe s = read_cmd(1, 0, 64, DATA_IOVA, LIST_IOVA);

	s.cdw0 = 0x01;		/* Write: the device reads guest memory */
	ASSERT_EQ(0, submit(f, 1, &s, true));
	EXPECT_EQ(1, dirty_pages(f));
	EXPECT_TRUE(is_dirty(f, CQ1_IOVA));
}

TEST_F(model, read_prp_list)
{
	struct fake *f = self->f;
	uint64_t *list = at(f, LIST_IOVA);
	struct sim_sqe s = read_cmd(1, 0, 128, DATA_IOVA + 0x200, LIST_IOVA);
	unsigned int i;

	/* 64 KiB from offset 0x200: 3584 bytes, then 15 pages and 512 */
	for (i = 0; i < 16; i++)
		list[i] = DATA_IOVA + 0x100000 + i * 2 * PS;	/* scattered */
	ASSERT_EQ(0, submit(f, 1, &s, true));
	EXPECT_EQ(1 + 16 + 1, dirty_pages(f));
	for (i = 0; i < 16; i++) {
		EXPECT_TRUE(is_dirty(f, list[i]));
		EXPECT_FALSE(is_dirty(f, list[i] + PS));
	}
	EXPECT_FALSE(is_dirty(f, LIST_IOVA));
}

/*
 * Two Reads handed over by one doorbell, the first with a PRP list: the
 * list is read while the second entry is still to be decoded. (The model
 * once read both into one scratch buffer: the second Read was decoded from
 * the first's list entries.)
 */
TEST_F(model, batch_with_prp_list)
{
	struct fake *f = self->f;
	uint64_t *list = at(f, LIST_IOVA);
	struct sim_sqe s[2] = {
		read_cmd(1, 0, 128, DATA_IOVA, LIST_IOVA),
		read_cmd(1, 0, 8, DATA_IOVA + 0x300000, 0),
	};
	unsigned int i;

	for (i = 0; i < 16; i++)
		list[i] = DATA_IOVA + 0x100000 + i * 2 * PS;
	for (i = 0; i < 2; i++) {
		s[i].cdw0 |= (uint32_t)(100 + i) << 16;
		memcpy(at(f, SQ1_IOVA + i * sizeof(s[0])), &s[i],
		       sizeof(s[0]));
	}
	f->sq_tail[1] = 2;
	ASSERT_EQ(0, nvmp_doorbell(&f->c, nvmp_db_offset(&f->c, 1, false), 2,
				   true));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x300000));
	/* 64 KiB: PRP1's page and 15 from the list; the second; the CQ */
	EXPECT_EQ(1 + 15 + 1 + 1, dirty_pages(f));
	EXPECT_EQ(2, f->c.trk.live);
	EXPECT_EQ(0, f->c.untracked);
}

TEST_F(model, read_prp_list_chained)
{
	struct fake *f = self->f;
	uint64_t *l1 = at(f, LIST_IOVA), *l2 = at(f, LIST_IOVA + 0x3000);
	/* 600 pages: PRP1 + 511 in list 1 + 88 in list 2 */
	struct sim_sqe s = read_cmd(1, 0, 600 * 8, DATA_IOVA, LIST_IOVA);
	unsigned int i;

	f->c.max_xfer = 4 << 20;
	for (i = 0; i < 511; i++)
		l1[i] = DATA_IOVA + (1 + i) * PS;
	l1[511] = LIST_IOVA + 0x3000;
	for (i = 0; i < 88; i++)
		l2[i] = DATA_IOVA + (512 + i) * PS;
	ASSERT_EQ(0, submit(f, 1, &s, true));
	EXPECT_EQ(600 + 1, dirty_pages(f));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 599 * PS));
	EXPECT_FALSE(is_dirty(f, DATA_IOVA + 600 * PS));
	EXPECT_FALSE(is_dirty(f, LIST_IOVA + 0x3000));
	EXPECT_EQ(0, f->outside);
}

TEST_F(model, prp_list_chained_to_itself_ends)
{
	struct fake *f = self->f;
	uint64_t *l1 = at(f, LIST_IOVA);
	struct sim_sqe s = read_cmd(1, 0, 65535, DATA_IOVA, LIST_IOVA);
	unsigned int i;

	for (i = 0; i < 511; i++)
		l1[i] = DATA_IOVA + (1 + i) * PS;
	l1[511] = LIST_IOVA;	/* a loop */
	ASSERT_EQ(0, submit(f, 1, &s, true));
	/* bounded by max_xfer (512 KiB = 128 pages) */
	EXPECT_EQ(128 + 1, dirty_pages(f));
}

/*
 * PRP2 points at the last entry of its page and that entry holds PRP2
 * itself: a chain pointer not page aligned, which the device refuses (the
 * command moves no data). The walk must end (it looped for ever).
 */
TEST_F(model, prp_list_unaligned_self_chain_ends)
{
	struct fake *f = self->f;
	uint64_t last = LIST_IOVA + PS - 8;
	uint64_t *l1 = at(f, last);
	struct sim_sqe s = read_cmd(1, 0, 64, DATA_IOVA, last);

	*l1 = last;
	ASSERT_EQ(0, submit(f, 1, &s, true));
	/* PRP1's page only; its completion slot besides */
	EXPECT_TRUE(is_dirty(f, DATA_IOVA));
	EXPECT_FALSE(is_dirty(f, last));
}

TEST_F(model, read_sgl)
{
	struct fake *f = self->f;
	struct sgl_desc *seg = at(f, LIST_IOVA);
	/* 8 KiB: 1 KiB block, 1 KiB bucket, 6 KiB block (in a segment) */
	struct sim_sqe s = read_cmd(1, 0, 16, 0, 0);

	s.cdw0 |= 1 << 14;	/* PSDT: SGL */
	s.prp1 = LIST_IOVA;	/* SGL1: last segment, 3 descriptors */
	s.prp2 = (uint64_t)(3 * 16) | (uint64_t)0x30 << 56;
	seg[0].addr = DATA_IOVA + 0x7000;
	seg[0].len = 1024;
	seg[0].type = 0x00;
	seg[1].addr = 0;
	seg[1].len = 1024;
	seg[1].type = 0x10;
	seg[2].addr = DATA_IOVA + 0x9000;
	seg[2].len = 6144;
	seg[2].type = 0x00;
	ASSERT_EQ(0, submit(f, 1, &s, true));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x7000));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x9000));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0xa000));
	EXPECT_EQ(3 + 1, dirty_pages(f));
	EXPECT_EQ(0, f->c.untracked);
}

TEST_F(model, sgl_segment_loop_is_bounded)
{
	struct fake *f = self->f;
	struct sgl_desc *seg = at(f, LIST_IOVA);
	struct sim_sqe s = read_cmd(1, 0, 1024, 0, 0);

	s.cdw0 |= 1 << 14;
	s.prp1 = LIST_IOVA;
	s.prp2 = (uint64_t)16 | (uint64_t)0x20 << 56;	/* segment */
	seg[0].addr = LIST_IOVA;	/* a segment pointing at itself */
	seg[0].len = 16;
	seg[0].type = 0x20;
	ASSERT_EQ(0, submit(f, 1, &s, true));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_SGL);
}

TEST_F(model, completion_slots_and_outstanding)
{
	struct fake *f = self->f;
	uint16_t cids[3 * IO_DEPTH];
	unsigned int i, round;

	/* three passes over the CQ, completing out of order */
	for (round = 0; round < 3; round++) {
		for (i = 0; i < IO_DEPTH - 1; i++) {
			struct sim_sqe s = read_cmd(1, i, 1, DATA_IOVA, 0);

			ASSERT_EQ(0, submit(f, 1, &s, true));
			cids[i] = last_cid(f);
		}
		EXPECT_EQ(IO_DEPTH - 1, nvmp_outstanding(&f->c));
		for (i = 0; i < IO_DEPTH - 1; i += 2)
			complete(f, 1, 1, cids[i], 0, 0);
		EXPECT_EQ(IO_DEPTH / 2 - 1, nvmp_outstanding(&f->c));
		for (i = 1; i < IO_DEPTH - 1; i += 2)
			complete(f, 1, 1, cids[i], 0, 0);
		EXPECT_EQ(0, nvmp_outstanding(&f->c));
		ASSERT_EQ(0, release(f, 1));
		EXPECT_EQ(0, nvmp_outstanding(&f->c));
	}
	/* every CQ slot's page was marked: 64 x 16 bytes is one page */
	EXPECT_TRUE(is_dirty(f, CQ1_IOVA));
	EXPECT_EQ(3 * (IO_DEPTH - 1), f->c.cq[1].consumed);
}

TEST_F(model, held_doorbell_decodes_on_forward)
{
	struct fake *f = self->f;
	struct sim_sqe s = read_cmd(1, 0, 8, DATA_IOVA + 0x3000, 0);

	ASSERT_EQ(0, submit(f, 1, &s, false));
	EXPECT_EQ(0, dirty_pages(f));
	EXPECT_EQ(0, nvmp_outstanding(&f->c));
	nvmp_forward(&f->c, 1);
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x3000));
	EXPECT_EQ(1, nvmp_outstanding(&f->c));
}

TEST_F(model, features_kept)
{
	struct fake *f = self->f;
	struct nvmp_ctrl *c = &f->c;
	struct sim_sqe s = { .cdw0 = 0x09, .cdw10 = 0x06, .cdw11 = 1 };

	ASSERT_EQ(0, admin(f, &s, 0, 0));
	EXPECT_EQ(1, c->feat[NVMP_FEAT_VWC]);
	s.cdw10 = 0x07;
	s.cdw11 = 0x00ff00ff;
	ASSERT_EQ(0, admin(f, &s, 0, 0x00020002));
	EXPECT_EQ(0x00020002, c->feat[NVMP_FEAT_NQ]);
	s.cdw10 = 0x09;
	s.cdw11 = 0x10002;
	ASSERT_EQ(0, admin(f, &s, 0, 0));
	EXPECT_EQ(0x10002, c->iv_cfg[2]);
	EXPECT_EQ(0, c->untracked);
	s.cdw10 = 0x06;
	s.cdw11 = 0;
	ASSERT_EQ(0, admin(f, &s, 0x2, 0));	/* failed: unchanged */
	EXPECT_EQ(1, c->feat[NVMP_FEAT_VWC]);
	s.cdw10 = 0x7f;		/* a feature the model does not keep */
	ASSERT_EQ(0, admin(f, &s, 0, 0));
	EXPECT_TRUE(c->untracked & NVMP_UT_FEATURE);
}

/*
 * Admin commands the model does not follow: reads pass; any other opcode
 * that succeeds (Doorbell Buffer Config, Format NVM, a vendor's) makes the
 * model untracked, one that fails changes nothing.
 */
TEST_F(model, unmodelled_admin_is_untracked)
{
	struct fake *f = self->f;
	struct nvmp_ctrl *c = &f->c;
	static const uint8_t harmless[] = { 0x02, 0x0a, 0x08, 0x18, 0x1a,
					    0x82 };
	static const uint8_t stateful[] = { 0x7c, 0x80, 0x84, 0x0d, 0x15,
					    0x10, 0x1c, 0x19, 0xc1 };
	struct sim_sqe s = { 0 };
	unsigned int i;

	for (i = 0; i < sizeof(harmless); i++) {
		s.cdw0 = harmless[i];
		ASSERT_EQ(0, admin(f, &s, 0, 0));
		/* (their data pointers here are not memory: ignored) */
		EXPECT_FALSE(c->untracked & NVMP_UT_ADMIN)
			TH_LOG("opcode %#x", harmless[i]);
		c->untracked = 0;
	}
	for (i = 0; i < sizeof(stateful); i++) {
		s.cdw0 = stateful[i];
		ASSERT_EQ(0, admin(f, &s, 0x2, 0));	/* refused */
		EXPECT_FALSE(c->untracked & NVMP_UT_ADMIN)
			TH_LOG("opcode %#x", stateful[i]);
		ASSERT_EQ(0, admin(f, &s, 0, 0));
		EXPECT_TRUE(c->untracked & NVMP_UT_ADMIN)
			TH_LOG("opcode %#x", stateful[i]);
		EXPECT_EQ(stateful[i], c->last_unmediated);
		EXPECT_EQ(0, nvmp_outstanding(c));
		c->untracked = 0;
	}
}

/*
 * A command id reused once the command completed, before the guest
 * released its completion (a driver may): completions match the oldest
 * command first. Reused while the first is still in flight: no telling
 * whose completion is whose, the model stops vouching.
 */
TEST_F(model, admin_cid_reused)
{
	struct fake *f = self->f;
	struct nvmp_ctrl *c = &f->c;
	struct sim_sqe cq2 = { .cdw0 = 0x05 | 0x77u << 16,
			       .prp1 = CQ1_IOVA + 0x1000,
			       .cdw10 = (uint32_t)(IO_DEPTH - 1) << 16 | 2,
			       .cdw11 = 2u << 16 | 0x3 };
	struct sim_sqe dbbc = { .cdw0 = 0x7c | 0x77u << 16 };

	ASSERT_EQ(0, submit(f, 0, &cq2, true));
	complete(f, 0, 0, 0x77, 0, 0);		/* CQ 2 created */
	ASSERT_EQ(0, submit(f, 0, &dbbc, true));
	complete(f, 0, 0, 0x77, 0x2, 0);	/* Doorbell Buffer Config refused */
	ASSERT_EQ(0, release(f, 0));
	EXPECT_TRUE(c->cq[2].live);
	EXPECT_FALSE(c->untracked & NVMP_UT_ADMIN);
	EXPECT_EQ(0, nvmp_outstanding(c));

	/* the same id again while CQ 3's creation is in flight */
	cq2.cdw10 = (uint32_t)(IO_DEPTH - 1) << 16 | 3;
	cq2.cdw11 = 3u << 16 | 0x3;
	cq2.prp1 = CQ1_IOVA + 0x2000;
	ASSERT_EQ(0, submit(f, 0, &cq2, true));
	EXPECT_FALSE(c->untracked & NVMP_UT_ADMIN);
	ASSERT_EQ(0, submit(f, 0, &dbbc, true));
	EXPECT_TRUE(c->untracked & NVMP_UT_ADMIN);
	EXPECT_EQ(0x7c, c->last_unmediated);
}

/*
 * Metadata: in a separate buffer (MPTR) the model marks it there; with
 * extended LBAs (FLBAS bit 4) it follows each block in the data buffer,
 * which is then longer than the blocks alone: 8 x (512 + 64) bytes reach
 * past the first page.
 */
TEST_F(model, metadata_marked_where_it_lands)
{
	struct fake *f = self->f;
	struct sim_sqe rd;

	ASSERT_EQ(0, identify_ns_md(f, 2, 9, 64, false));
	clear_dirty(f);
	rd = read_cmd(2, 0, 8, DATA_IOVA, DATA_IOVA + PS);
	rd.mptr = DATA_IOVA + 0x40000;
	ASSERT_EQ(0, submit(f, 1, &rd, true));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA));
	EXPECT_FALSE(is_dirty(f, DATA_IOVA + PS));	/* 4 KiB of data */
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x40000));	/* 512 bytes of metadata */

	ASSERT_EQ(0, identify_ns_md(f, 3, 9, 64, true));
	clear_dirty(f);
	rd = read_cmd(3, 0, 8, DATA_IOVA + 0x80000, DATA_IOVA + 0x80000 + PS);
	rd.mptr = DATA_IOVA + 0xc0000;
	ASSERT_EQ(0, submit(f, 1, &rd, true));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x80000));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x80000 + PS))
		TH_LOG("extended LBAs: the metadata's 512 bytes past the data page unmarked");
	EXPECT_FALSE(is_dirty(f, DATA_IOVA + 0xc0000));	/* MPTR unused */
}

/*
 * PSDT 10b: MPTR holds the address of one SGL descriptor, which says where
 * the metadata lands; the descriptor itself is only read.
 */
TEST_F(model, metadata_sgl_marked_where_it_lands)
{
	struct fake *f = self->f;
	struct sgl_desc *md = at(f, LIST_IOVA);
	struct sim_sqe rd = read_cmd(2, 0, 8, 0, 0);

	ASSERT_EQ(0, identify_ns_md(f, 2, 9, 64, false));
	clear_dirty(f);
	rd.cdw0 |= 2 << 14;	/* PSDT: SGL, MPTR an SGL descriptor */
	rd.prp1 = DATA_IOVA;	/* SGL1: a data block of 4 KiB */
	rd.prp2 = 4096;
	rd.mptr = LIST_IOVA;
	md->addr = DATA_IOVA + 0x40000;
	md->len = 512;
	md->type = 0x00;
	ASSERT_EQ(0, submit(f, 1, &rd, true));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x40000));
	EXPECT_FALSE(is_dirty(f, LIST_IOVA));
	EXPECT_EQ(0, f->c.untracked);

	/* a descriptor type the model does not follow */
	md->type = 0x50;
	ASSERT_EQ(0, submit(f, 1, &rd, true));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_SGL);
}

/* A controller reset drops its AERs: the model's count starts again. */
TEST_F(model, reset_drops_aers)
{
	struct fake *f = self->f;
	struct nvmp_ctrl *c = &f->c;
	struct sim_sqe aer = { .cdw0 = 0x0c };

	ASSERT_EQ(0, submit(f, 0, &aer, true));
	EXPECT_EQ(1, c->nr_aer);
	nvmp_reg_write(c, NVMP_REG_CC, 0x460000, 4);
	enable(f);
	aer.cdw0 = 0x0c;
	ASSERT_EQ(0, submit(f, 0, &aer, true));
	EXPECT_EQ(1, c->nr_aer);
	EXPECT_EQ(0, nvmp_outstanding(c));
}

/*
 * A save refused for commands in flight leaves the model as it was: the
 * admin completions it would have applied apply once, when released.
 */
TEST_F(model, refused_save_changes_nothing)
{
	struct fake *f = self->f;
	struct nvmp_ctrl *c = &f->c;
	struct nvmp_state *st = calloc(1, sizeof(*st));
	struct sim_sqe cq2 = { .cdw0 = 0x05 | 0x77u << 16,
			       .prp1 = CQ1_IOVA + 0x1000,
			       .cdw10 = (uint32_t)(IO_DEPTH - 1) << 16 | 2,
			       .cdw11 = 2u << 16 | 0x3 };
	struct sim_sqe cq3 = cq2;

	ASSERT_NE(NULL, st);
	cq3.cdw10 = (uint32_t)(IO_DEPTH - 1) << 16 | 3;
	cq3.cdw11 = 3u << 16 | 0x3;
	cq3.prp1 = CQ1_IOVA + 0x2000;
	ASSERT_EQ(0, submit(f, 0, &cq2, true));
	complete(f, 0, 0, 0x77, 0, 0);		/* posted, not released */
	ASSERT_EQ(0, submit(f, 0, &cq3, true));	/* same id, in flight */
	EXPECT_EQ(-EBUSY, nvmp_save(c, st));
	complete(f, 0, 0, 0x77, 0x2, 0);	/* the device refuses CQ 3 */
	ASSERT_EQ(0, release(f, 0));
	EXPECT_TRUE(c->cq[2].live);
	EXPECT_FALSE(c->cq[3].live);
	free(st);
}

TEST_F(model, admin_data_dirty)
{
	struct fake *f = self->f;
	struct sim_sqe id = { .cdw0 = 0x06, .cdw10 = 1, .prp1 = DATA_IOVA };
	struct sim_sqe log = { .cdw0 = 0x02, .prp1 = DATA_IOVA + 0x10000,
			   .prp2 = DATA_IOVA + 0x20000,
			   .cdw10 = 0x02 | (2047u << 16) };	/* 8 KiB */
	struct sim_sqe gf = { .cdw0 = 0x0a, .cdw10 = 0x06,
			  .prp1 = DATA_IOVA + 0x30000 };

	ASSERT_EQ(0, admin(f, &id, 0, 0));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA));
	ASSERT_EQ(0, admin(f, &log, 0, 0));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x10000));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x20000));
	/* Get Features VWC: the value is in the completion, no buffer */
	ASSERT_EQ(0, admin(f, &gf, 0, 0));
	EXPECT_FALSE(is_dirty(f, DATA_IOVA + 0x30000));
	EXPECT_TRUE(is_dirty(f, ACQ_IOVA));
}

/*
 * Get Features of a feature the model does not know to answer in the
 * completion (FDP Events, a vendor's): its buffer is marked, all a command
 * can move; those that answer in dword 0 mark nothing.
 */
TEST_F(model, get_features_with_a_buffer_marked)
{
	struct fake *f = self->f;
	/* a buffer: 1; the value in dword 0: 0 */
	static const uint8_t fid[][2] = {
		{ 0x03, 1 }, { 0x0c, 1 }, { 0x0e, 1 }, { 0x13, 1 }, { 0x16, 1 },
		{ 0x1e, 1 }, { 0x7e, 1 }, { 0x81, 1 }, { 0xc0, 1 }, { 0xff, 1 },
		{ 0x01, 0 }, { 0x07, 0 }, { 0x0b, 0 }, { 0x0f, 0 }, { 0x1d, 0 },
		{ 0x83, 0 },
	};
	struct sim_sqe gf = { .cdw0 = 0x0a, .prp1 = DATA_IOVA + 0x30000 };
	unsigned int i;

	for (i = 0; i < sizeof(fid) / sizeof(fid[0]); i++) {
		clear_dirty(f);
		gf.cdw10 = fid[i][0];
		ASSERT_EQ(0, admin(f, &gf, 0, 0));
		EXPECT_EQ(fid[i][1], is_dirty(f, DATA_IOVA + 0x30000))
			TH_LOG("Get Features %#x: %s", fid[i][0], fid[i][1] ?
			       "its buffer unmarked" :
			       "marked, its value is in dword 0");
		/* PRP2 0: a page, not a list the model would walk */
		EXPECT_EQ(0, f->c.untracked)
			TH_LOG("Get Features %#x: untracked %#x", fid[i][0],
			       f->c.untracked);
	}
}

/*
 * A Read of a namespace the model has not (or no longer) identified: the
 * largest blocks, and separate metadata wherever MPTR points, as the
 * namespace may have it.
 */
TEST_F(model, unidentified_namespace_metadata_marked)
{
	struct fake *f = self->f;
	struct sim_sqe rd;

	rd = read_cmd(7, 0, 1, DATA_IOVA, 0);
	rd.mptr = DATA_IOVA + 0x40000;
	ASSERT_EQ(0, submit(f, 1, &rd, true));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x40000))
		TH_LOG("the metadata of an unidentified namespace unmarked");
}

/*
 * Identify data whose PRP1 starts 64 bytes before its page's end: the rest,
 * the LBA formats with it, is where PRP2 points, not in the next IOVA page
 * (which holds a smaller format here, as stale memory may).
 */
TEST_F(model, identify_data_through_prp2)
{
	struct fake *f = self->f;
	const uint64_t prp1 = ID_IOVA + PS - 64, prp2 = MEM_BASE + 0x8000;
	struct sim_sqe id = { .cdw0 = 0x06, .nsid = 4, .prp1 = prp1,
			      .prp2 = prp2 };
	uint8_t *first = at(f, prp1), *rest = at(f, prp2);
	struct sim_sqe rd;

	memset(at(f, ID_IOVA), 0, 2 * PS);
	memset(rest, 0, PS);
	memcpy(first, &(uint64_t){ NSZE }, 8);
	first[25] = 1;			/* NLBAF: two formats */
	first[26] = 1;			/* FLBAS: format 1 */
	rest[128 + 4 - 64 + 2] = 12;	/* format 1: 4 KiB blocks */
	first[128 + 4 + 2] = 9;		/* the next IOVA page: not the data */
	ASSERT_EQ(0, admin(f, &id, 0, 0));
	clear_dirty(f);
	rd = read_cmd(4, 0, 2, DATA_IOVA, DATA_IOVA + PS);
	ASSERT_EQ(0, submit(f, 1, &rd, true));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + PS))
		TH_LOG("two 4 KiB blocks marked as two 512-byte ones");
}

/*
 * Identify data the guest's driver freed (zeroed here) before it released
 * the completion is no namespace's: the namespace is forgotten, and marked
 * at its largest, rather than taken as 512-byte blocks without metadata.
 */
TEST_F(model, identify_data_gone_leaves_the_namespace_unknown)
{
	struct fake *f = self->f;
	struct sim_sqe id = { .cdw0 = 0x06, .nsid = 5, .prp1 = ID_IOVA };
	struct sim_sqe rd;

	ASSERT_EQ(0, identify_ns_md(f, 5, 9, 8, false));
	memset(at(f, ID_IOVA), 0, PS);
	ASSERT_EQ(0, admin(f, &id, 0, 0));
	clear_dirty(f);
	rd = read_cmd(5, 0, 1, DATA_IOVA, 0);
	rd.mptr = DATA_IOVA + 0x40000;
	ASSERT_EQ(0, submit(f, 1, &rd, true));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x40000));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x40000 + PS))
		TH_LOG("the namespace's metadata marked as 8 bytes a block");
}

TEST_F(model, reset_forgets_queues)
{
	struct nvmp_ctrl *c = &self->f->c;

	nvmp_reg_write(c, NVMP_REG_CC, 0x460000, 4);
	EXPECT_FALSE(c->enabled);
	EXPECT_FALSE(c->sq[1].live);
	EXPECT_EQ(-EINVAL, nvmp_doorbell(c, nvmp_db_offset(c, 1, false), 1,
					 true));
	enable(self->f);
	EXPECT_TRUE(c->sq[0].live);
	EXPECT_FALSE(c->sq[1].live);
}

TEST_F(model, hostile_doorbells)
{
	struct fake *f = self->f;
	struct nvmp_ctrl *c = &f->c;

	/* past the queue's size, an uncreated queue, a bad CQ head */
	EXPECT_EQ(-EINVAL, nvmp_doorbell(c, nvmp_db_offset(c, 1, false),
					 IO_DEPTH, true));
	EXPECT_EQ(-EINVAL, nvmp_doorbell(c, nvmp_db_offset(c, 3, false), 1,
					 true));
	EXPECT_EQ(-EINVAL, nvmp_doorbell(c, nvmp_db_offset(c, 1, true), 5,
					 true));
	EXPECT_EQ(-EINVAL, nvmp_doorbell(c, NVMP_REG_DBS + 2, 1, true));
	EXPECT_EQ(-EINVAL, nvmp_doorbell(c, nvmp_db_offset(c, 200, false), 1,
					 true));
	EXPECT_TRUE(c->untracked & NVMP_UT_QID);
	EXPECT_EQ(0, dirty_pages(f));
}

TEST_F(model, hostile_creates)
{
	struct fake *f = self->f;
	struct sim_sqe big = { .cdw0 = 0x05, .prp1 = DATA_IOVA,
			   .cdw10 = 0xffffu << 16 | 2, .cdw11 = 0x1 };
	struct sim_sqe far = { .cdw0 = 0x05, .prp1 = DATA_IOVA,
			   .cdw10 = 7u << 16 | 40, .cdw11 = 0x1 };
	struct sim_sqe nc = { .cdw0 = 0x05, .prp1 = DATA_IOVA,
			  .cdw10 = 7u << 16 | 3, .cdw11 = 0x0 };

	ASSERT_EQ(0, admin(f, &big, 0, 0));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_QSIZE);
	ASSERT_EQ(0, admin(f, &far, 0, 0));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_QID);
	ASSERT_EQ(0, admin(f, &nc, 0, 0));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_NONCONTIG);
	EXPECT_FALSE(f->c.cq[2].live);
	EXPECT_FALSE(f->c.cq[3].live);
}

TEST_F(model, delete_with_work_in_flight_is_untracked)
{
	struct fake *f = self->f;
	struct sim_sqe r = read_cmd(1, 0, 1, DATA_IOVA, 0);
	struct sim_sqe del = { .cdw0 = 0x00, .cdw10 = 1 };

	ASSERT_EQ(0, submit(f, 1, &r, true));
	ASSERT_EQ(0, admin(f, &del, 0, 0));
	EXPECT_FALSE(f->c.sq[1].live);
	EXPECT_TRUE(f->c.untracked & NVMP_UT_CQ_LOST);
}

TEST_F(model, unreadable_memory_is_untracked)
{
	struct fake *f = self->f;
	struct sim_sqe s = read_cmd(1, 0, 1, DATA_IOVA, 0);

	f->fail_reads = 1;
	ASSERT_EQ(0, submit(f, 1, &s, true));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_MEMORY);
}

/* Random SQEs and doorbells: nothing escapes the bounds. */
TEST_F(model, fuzz)
{
	struct fake *f = self->f;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	unsigned int i, j;

	for (i = 0; i < 20000; i++) {
		uint32_t *w;
		uint16_t q = (seed >> 7) % 3;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		if (q == 2)
			q = 1;
		w = at(f, f->sq_base[q] + (uint64_t)f->sq_tail[q] * 64);
		for (j = 0; j < 16; j++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			w[j] = (uint32_t)seed;
		}
		/* keep pointers inside memory half of the time */
		if (seed & 1)
			memcpy(&w[6], &(uint64_t){ DATA_IOVA +
				(seed >> 20) % (MEM_SIZE / 2) }, 8);
		if (seed & 2)
			w[0] &= ~0xc000u;	/* PRPs */
		f->sq_tail[q] = (f->sq_tail[q] + 1) % f->depth[q];
		nvmp_doorbell(&f->c, nvmp_db_offset(&f->c, q, false),
			      f->sq_tail[q], true);
		/* the device completes everything; the guest releases */
		if (!(i % 8)) {
			uint64_t n = f->c.cq[q].issued - f->c.cq[q].consumed;

			while (n--)
				complete(f, q, q, 1, 1, 0);
			release(f, q);
		}
		if (!f->c.sq[q].live)
			break;
		ASSERT_LE(f->max_len, (uint64_t)512 << 10);
	}
	TH_LOG("%u commands, %lu dirty calls, %lu outside memory, untracked %#x",
	       i, (unsigned long)f->c.dirty_calls,
	       (unsigned long)f->outside, f->c.untracked);
	EXPECT_GT(f->c.cmds, 1000);
}

/* A Read's pages are marked again at each report until it is released. */
TEST_F(model, remark_until_released)
{
	struct fake *f = self->f;
	uint64_t *list = at(f, LIST_IOVA);
	struct sim_sqe s = read_cmd(1, 0, 64, DATA_IOVA + 0x200, LIST_IOVA);
	struct sim_sqe w = read_cmd(1, 0, 8, DATA_IOVA + 0x40000, 0);
	unsigned int i;

	for (i = 0; i < 8; i++)
		list[i] = DATA_IOVA + 0x20000 + i * 2 * PS;
	ASSERT_EQ(0, submit(f, 1, &s, true));
	w.cdw0 = 0x01;		/* a Write keeps nothing */
	ASSERT_EQ(0, submit(f, 1, &w, true));
	EXPECT_EQ(1, f->c.trk.live);
	clear_dirty(f);		/* a report */
	nvmp_remark(&f->c);
	EXPECT_TRUE(is_dirty(f, DATA_IOVA));
	for (i = 0; i < 8; i++)
		EXPECT_TRUE(is_dirty(f, list[i]));
	EXPECT_TRUE(is_dirty(f, CQ1_IOVA));
	EXPECT_FALSE(is_dirty(f, DATA_IOVA + 0x40000));
	/* both complete and are released: nothing more to mark */
	complete(f, 1, 1, last_cid(f) - 1, 0, 0);
	complete(f, 1, 1, last_cid(f), 0, 0);
	ASSERT_EQ(0, release(f, 1));
	EXPECT_EQ(0, f->c.trk.live);
	clear_dirty(f);
	nvmp_remark(&f->c);
	EXPECT_EQ(0, dirty_pages(f));
}

TEST_F(model, remark_out_of_order_release)
{
	struct fake *f = self->f;
	uint16_t cid[3];
	unsigned int i;

	for (i = 0; i < 3; i++) {
		struct sim_sqe s = read_cmd(1, 0, 8, DATA_IOVA + i * 0x10000, 0);

		ASSERT_EQ(0, submit(f, 1, &s, true));
		cid[i] = last_cid(f);
	}
	/* the middle one completes first and is released alone */
	complete(f, 1, 1, cid[1], 0, 0);
	ASSERT_EQ(0, release(f, 1));
	EXPECT_EQ(2, f->c.trk.live);
	clear_dirty(f);
	nvmp_remark(&f->c);
	EXPECT_TRUE(is_dirty(f, DATA_IOVA));
	EXPECT_FALSE(is_dirty(f, DATA_IOVA + 0x10000));
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x20000));
	complete(f, 1, 1, cid[2], 0, 0);
	complete(f, 1, 1, cid[0], 0, 0);
	ASSERT_EQ(0, release(f, 1));
	EXPECT_EQ(0, f->c.trk.live);
	EXPECT_EQ(f->c.trk.r_head, f->c.trk.r_tail);
}

TEST_F(model, store_overflow_is_untracked)
{
	struct fake *f = self->f;
	uint64_t *list = at(f, LIST_IOVA);
	struct sim_sqe s = read_cmd(1, 0, 128, DATA_IOVA, LIST_IOVA);
	unsigned int i;

	/* scattered pages: one range each, more than a store of 4 */
	nvmp_track_init(&f->c, f->ranges, 4, f->recs, 256, f->hash);
	for (i = 0; i < 16; i++)
		list[i] = DATA_IOVA + 0x100000 + i * 2 * PS;
	ASSERT_EQ(0, submit(f, 1, &s, true));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_TRACK);
}

/*
 * The store lost a command: once its completion is released with no dirty
 * report in between, every write of it is in the log (marked at
 * submission) and the model is exact again. A report while it was in
 * flight may have lost a write: untracked until the controller resets.
 */
TEST_F(model, store_overflow_recovers_without_a_report)
{
	struct fake *f = self->f;
	uint64_t *list = at(f, LIST_IOVA);
	struct sim_sqe s = read_cmd(1, 0, 128, DATA_IOVA, LIST_IOVA);
	struct sim_sqe small = read_cmd(1, 0, 1, DATA_IOVA, 0);
	unsigned int i;

	nvmp_track_init(&f->c, f->ranges, 4, f->recs, 256, f->hash);
	for (i = 0; i < 16; i++)
		list[i] = DATA_IOVA + 0x100000 + i * 2 * PS;
	ASSERT_EQ(0, submit(f, 1, &s, true));
	ASSERT_EQ(0, submit(f, 1, &small, true));	/* kept */
	EXPECT_TRUE(f->c.untracked & NVMP_UT_TRACK);
	/* the kept one completes first: the lost one is still in flight */
	complete(f, 1, 1, small.cdw0 >> 16, 0, 0);
	ASSERT_EQ(0, release(f, 1));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_TRACK);
	complete(f, 1, 1, s.cdw0 >> 16, 0, 0);
	ASSERT_EQ(0, release(f, 1));
	EXPECT_FALSE(f->c.untracked & NVMP_UT_TRACK);

	/* again, with a report while the lost command is in flight */
	s.cdw0 &= 0xffff;
	ASSERT_EQ(0, submit(f, 1, &s, true));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_TRACK);
	nvmp_remark(&f->c);
	complete(f, 1, 1, s.cdw0 >> 16, 0, 0);
	ASSERT_EQ(0, release(f, 1));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_TRACK);
	EXPECT_EQ(0, nvmp_outstanding(&f->c));
}

/*
 * Random reads and writes with random command ids, completed and released
 * in random order: what nvmp_remark() marks is exactly the data pages of
 * the Reads not released yet (and the completion slots).
 */
TEST_F(model, remark_matches_a_reference)
{
	struct fake *f = self->f;
	struct {
		uint16_t cid;
		uint64_t page, seq;
		bool read;
	} ref[IO_DEPTH];
	uint64_t seed = 42, seq = 0;
	unsigned int i, j, n = 0, rounds;

	/* a small store: hash collisions and ring wraps are common */
	nvmp_track_init(&f->c, f->ranges, 256, f->recs, 128, f->hash);
	for (rounds = 0; rounds < 3000; rounds++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		if (n < IO_DEPTH / 2 && (seed & 3)) {
			uint64_t page = DATA_IOVA + ((seed >> 8) % 512) * PS;
			struct sim_sqe s = read_cmd(1, 0, 8, page, 0);

			s.cdw0 = (seed >> 20) & 1 ? 0x02 : 0x01;
			/* random ids, unique among those in flight */
			do {
				s.cdw0 = (s.cdw0 & 0xff) |
					 (uint32_t)(1 + (seed >> 24) % 500) << 16;
				seed += 1ull << 24;
				for (j = 0; j < n; j++)
					if (ref[j].cid == s.cdw0 >> 16)
						break;
			} while (j < n);
			ASSERT_EQ(0, submit(f, 1, &s, true));
			ref[n].cid = s.cdw0 >> 16;
			ref[n].page = page;
			ref[n].read = (s.cdw0 & 0xff) == 0x02;
			ref[n].seq = seq++;
			n++;
		} else if (n) {
			/* complete a random one (every 4th: the oldest) */
			j = (seed >> 9) % n;
			for (i = 0; !(seed & 0x30) && i < n; i++)
				if (ref[i].seq < ref[j].seq)
					j = i;
			complete(f, 1, 1, ref[j].cid, 0, 0);
			ASSERT_EQ(0, release(f, 1));
			ref[j] = ref[--n];
		}
		ASSERT_EQ(0, f->c.untracked) TH_LOG("round %u", rounds);
		clear_dirty(f);
		nvmp_remark(&f->c);
		for (j = 0; j < n; j++)
			if (ref[j].read)
				ASSERT_TRUE(is_dirty(f, ref[j].page))
					TH_LOG("round %u: in-flight read not marked",
					       rounds);
		for (i = 0; i < 512; i++) {
			uint64_t page = DATA_IOVA + i * PS;
			bool want = false;

			for (j = 0; j < n; j++)
				want |= ref[j].read && ref[j].page == page;
			ASSERT_EQ(want, is_dirty(f, page))
				TH_LOG("round %u: page %u", rounds, i);
		}
	}
	EXPECT_EQ(0, f->c.untracked);
}

/*
 * A guest may reuse a command id once its completion is posted, before it
 * releases that completion (a driver that frees the id as it reads the
 * completion and writes the head doorbell later): releasing the old
 * completion ends nothing of the new command, whatever the old one was.
 */
TEST_F(model, cid_reused_before_release)
{
	struct fake *f = self->f;
	struct sim_sqe a = read_cmd(1, 0, 8, DATA_IOVA, 0);
	struct sim_sqe b = read_cmd(1, 0, 8, DATA_IOVA + 0x10000, 0);
	struct sim_sqe w = read_cmd(1, 0, 8, DATA_IOVA + 0x20000, 0);
	uint16_t x;

	ASSERT_EQ(0, submit(f, 1, &a, true));
	x = last_cid(f);
	complete(f, 1, 1, x, 0, 0);
	b.cdw0 |= (uint32_t)x << 16;
	ASSERT_EQ(0, submit(f, 1, &b, true));
	ASSERT_EQ(0, release(f, 1));	/* a's completion only */
	EXPECT_EQ(1, f->c.trk.live);
	clear_dirty(f);
	nvmp_remark(&f->c);
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x10000));
	EXPECT_FALSE(is_dirty(f, DATA_IOVA));
	complete(f, 1, 1, x, 0, 0);
	ASSERT_EQ(0, release(f, 1));
	EXPECT_EQ(0, f->c.trk.live);

	/* the old command a Write, which the store never kept */
	w.cdw0 = 0x01;
	ASSERT_EQ(0, submit(f, 1, &w, true));
	x = last_cid(f);
	complete(f, 1, 1, x, 0, 0);
	b.cdw0 = 0x02 | (uint32_t)x << 16;
	ASSERT_EQ(0, submit(f, 1, &b, true));
	ASSERT_EQ(0, release(f, 1));
	EXPECT_EQ(1, f->c.trk.live);
	clear_dirty(f);
	nvmp_remark(&f->c);
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x10000));
	complete(f, 1, 1, x, 0, 0);
	ASSERT_EQ(0, release(f, 1));
	EXPECT_EQ(0, f->c.trk.live);
	EXPECT_EQ(0, f->c.untracked);
}

/* ... and a command the store lost stays lost until its own release. */
TEST_F(model, cid_reused_before_release_lost)
{
	struct fake *f = self->f;
	uint64_t *list = at(f, LIST_IOVA);
	struct sim_sqe small = read_cmd(1, 0, 1, DATA_IOVA, 0);
	struct sim_sqe big = read_cmd(1, 0, 128, DATA_IOVA, LIST_IOVA);
	unsigned int i;
	uint16_t x;

	nvmp_track_init(&f->c, f->ranges, 4, f->recs, 256, f->hash);
	for (i = 0; i < 16; i++)
		list[i] = DATA_IOVA + 0x100000 + i * 2 * PS;
	ASSERT_EQ(0, submit(f, 1, &small, true));	/* kept */
	x = last_cid(f);
	complete(f, 1, 1, x, 0, 0);
	big.cdw0 |= (uint32_t)x << 16;
	ASSERT_EQ(0, submit(f, 1, &big, true));		/* lost */
	EXPECT_TRUE(f->c.untracked & NVMP_UT_TRACK);
	ASSERT_EQ(0, release(f, 1));	/* small's completion */
	EXPECT_TRUE(f->c.untracked & NVMP_UT_TRACK);
	complete(f, 1, 1, x, 0, 0);
	ASSERT_EQ(0, release(f, 1));
	EXPECT_FALSE(f->c.untracked & NVMP_UT_TRACK);
}

/*
 * Random Reads and Writes, completed in random order and released in
 * batches later, their ids reused as soon as their completions are
 * posted: every Read not completed is marked at each report, and nothing
 * is marked but Reads not released.
 */
TEST_F(model, remark_with_ids_reused_before_release)
{
	struct fake *f = self->f;
	struct {
		uint16_t cid;
		uint64_t page, seq;
		bool read, posted;
	} ref[IO_DEPTH];
	uint64_t seed = 7, seq = 0;
	unsigned int i, j, n = 0, rounds, reused = 0, busy_ids;

	nvmp_track_init(&f->c, f->ranges, 256, f->recs, 128, f->hash);
	for (rounds = 0; rounds < 4000; rounds++) {
		unsigned int op;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		op = seed % 8;
		for (i = 0, busy_ids = 0; i < n; i++)
			busy_ids += !ref[i].posted;
		if (op < 4 && n < IO_DEPTH - 2 && busy_ids < 16) {
			uint64_t page = DATA_IOVA + ((seed >> 8) % 256) * PS;
			struct sim_sqe s = read_cmd(1, 0, 8, page, 0);
			uint16_t cid;
			bool busy;

			s.cdw0 = (seed >> 20) & 1 ? 0x02 : 0x01;
			/* 24 ids: unique among the (< 16) commands not completed */
			do {
				cid = 1 + (seed >> 24) % 24;
				seed += 1ull << 24;
				busy = false;
				for (j = 0; j < n; j++)
					busy |= ref[j].cid == cid &&
						!ref[j].posted;
			} while (busy);
			for (j = 0; j < n; j++)
				reused += ref[j].cid == cid;
			s.cdw0 |= (uint32_t)cid << 16;
			ASSERT_EQ(0, submit(f, 1, &s, true));
			ref[n].cid = cid;
			ref[n].page = page;
			ref[n].read = (s.cdw0 & 0xff) == 0x02;
			ref[n].posted = false;
			ref[n].seq = seq++;
			n++;
		} else if (op < 7) {
			/* a random one; every 4th time the oldest */
			for (i = 0, j = n; i < n; i++)
				if (!ref[i].posted &&
				    (j == n || ((seed & 0x300) ?
						(seed >> (i % 32)) & 1 :
						ref[i].seq < ref[j].seq)))
					j = i;
			if (j == n)
				continue;
			complete(f, 1, 1, ref[j].cid, 0, 0);
			ref[j].posted = true;
		} else {
			ASSERT_EQ(0, release(f, 1));
			for (j = 0; j < n;)
				if (ref[j].posted)
					ref[j] = ref[--n];
				else
					j++;
		}
		ASSERT_EQ(0, f->c.untracked) TH_LOG("round %u", rounds);
		clear_dirty(f);
		nvmp_remark(&f->c);
		for (i = 0; i < 256; i++) {
			uint64_t page = DATA_IOVA + i * PS;
			bool must = false, may = false;

			for (j = 0; j < n; j++) {
				if (!ref[j].read || ref[j].page != page)
					continue;
				may = true;
				must |= !ref[j].posted;
			}
			if (must)
				ASSERT_TRUE(is_dirty(f, page))
					TH_LOG("round %u: page %u of a Read in flight not marked",
					       rounds, i);
			if (!may)
				ASSERT_FALSE(is_dirty(f, page))
					TH_LOG("round %u: page %u marked", rounds, i);
		}
	}
	EXPECT_LT(100, reused);
}

/*
 * A guest that rings a new SQ's tail after its creation completed, before
 * it releases that completion (a driver woken by the completion, its
 * interrupt handler not done yet): the device fetches from the queue, so
 * the model applies the posted creation and decodes the tail. The later
 * release applies nothing again, not even to a command that reused the
 * creation's id meanwhile.
 */
TEST_F(model, sq_rung_before_its_creation_is_released)
{
	struct fake *f = self->f;
	struct sim_sqe cq = { .cdw0 = 0x05, .prp1 = CQ1_IOVA + 0x8000,
			      .cdw10 = (uint32_t)(IO_DEPTH - 1) << 16 | 2,
			      .cdw11 = 2 << 16 | 0x3 };
	struct sim_sqe sq = { .cdw0 = 0x01, .prp1 = SQ1_IOVA + 0x1000,
			      .cdw10 = (uint32_t)(IO_DEPTH - 1) << 16 | 2,
			      .cdw11 = 2 << 16 | 0x1 };
	struct sim_sqe again = sq;
	struct sim_sqe rd = read_cmd(1, 0, 8, DATA_IOVA + 0x30000, 0);
	uint64_t bad = f->c.bad_doorbells, cmds;
	uint16_t x;

	ASSERT_EQ(0, submit(f, 0, &cq, true));
	complete(f, 0, 0, last_cid(f), 0, 0);
	ASSERT_EQ(0, submit(f, 0, &sq, true));
	x = last_cid(f);
	complete(f, 0, 0, x, 0, 0);
	f->depth[2] = IO_DEPTH;
	f->sq_base[2] = SQ1_IOVA + 0x1000;
	f->cq_base[2] = CQ1_IOVA + 0x8000;
	/* neither completion released: SQ 2's tail */
	ASSERT_EQ(0, submit(f, 2, &rd, true));
	EXPECT_EQ(bad, f->c.bad_doorbells);
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x30000));
	EXPECT_EQ(1, f->c.trk.live);
	/* the creation's id reused for another creation of SQ 2 */
	again.cdw0 = 0x01 | (uint32_t)x << 16;
	ASSERT_EQ(0, submit(f, 0, &again, true));
	ASSERT_EQ(0, release(f, 0));
	EXPECT_TRUE(nvmp_sq_creating(&f->c, 2))
		TH_LOG("the old completion's release took the new command");
	/* SQ 2 kept its position: the next tail decodes one command */
	cmds = f->c.cmds;
	rd.cdw0 &= 0xffff;
	rd.prp1 = DATA_IOVA + 0x50000;
	ASSERT_EQ(0, submit(f, 2, &rd, true));
	EXPECT_EQ(cmds + 1, f->c.cmds);
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x50000));
	EXPECT_EQ(0, f->c.untracked);
}

/* A completion that names an SQ of another CQ ends nothing. */
TEST_F(model, completion_naming_an_sq_of_another_cq)
{
	struct fake *f = self->f;
	struct sim_sqe rd = read_cmd(1, 0, 8, DATA_IOVA + 0x30000, 0);
	struct sim_sqe wr = read_cmd(1, 0, 8, DATA_IOVA + 0x40000, 0);
	uint16_t x;

	ASSERT_EQ(0, create_pair(f, 2, IO_DEPTH, SQ1_IOVA + 0x1000,
				 CQ1_IOVA + 0x8000));
	ASSERT_EQ(0, submit(f, 1, &rd, true));
	x = last_cid(f);
	wr.cdw0 = 0x01;
	ASSERT_EQ(0, submit(f, 2, &wr, true));
	/* the slot of SQ 2's Write on CQ 2 holds one naming SQ 1's Read */
	complete(f, 2, 1, x, 0, 0);
	ASSERT_EQ(0, release(f, 2));
	EXPECT_EQ(1, f->c.trk.live);
	clear_dirty(f);
	nvmp_remark(&f->c);
	EXPECT_TRUE(is_dirty(f, DATA_IOVA + 0x30000));
	complete(f, 1, 1, x, 0, 0);
	ASSERT_EQ(0, release(f, 1));
	EXPECT_EQ(0, f->c.trk.live);
}

/*
 * A settle applies each posted admin completion once: a second one (a
 * save tried again) leaves the completion it applied alone, even when a
 * newer command reused its id, and so does the id check of pending
 * admin commands.
 */
TEST_F(model, settle_applies_a_completion_once)
{
	struct fake *f = self->f;
	struct sim_sqe cq = { .cdw0 = 0x05 | 0x55u << 16,
			      .prp1 = CQ1_IOVA + 0x8000,
			      .cdw10 = (uint32_t)(IO_DEPTH - 1) << 16 | 2,
			      .cdw11 = 2 << 16 | 0x3 };
	struct sim_sqe sq = { .cdw0 = 0x01 | 0x55u << 16,
			      .prp1 = SQ1_IOVA + 0x1000,
			      .cdw10 = (uint32_t)(IO_DEPTH - 1) << 16 | 2,
			      .cdw11 = 2 << 16 | 0x1 };
	struct sim_sqe sq3 = sq;

	ASSERT_EQ(0, submit(f, 0, &cq, true));
	complete(f, 0, 0, 0x55, 0, 0);		/* posted, not released */
	nvmp_settle(&f->c);
	EXPECT_TRUE(f->c.cq[2].live);
	ASSERT_EQ(0, submit(f, 0, &sq, true));	/* the id reused */
	nvmp_settle(&f->c);
	EXPECT_FALSE(f->c.sq[2].live)
		TH_LOG("the CQ's completion applied again, to the SQ");
	EXPECT_TRUE(nvmp_sq_creating(&f->c, 2));
	/* the id again, while that command is in flight: untracked */
	sq3.cdw10 = (uint32_t)(IO_DEPTH - 1) << 16 | 3;
	ASSERT_EQ(0, submit(f, 0, &sq3, true));
	EXPECT_TRUE(f->c.untracked & NVMP_UT_ADMIN);
}

/*
 * The target takes what the source's save applied as applied: the guest
 * reuses its AER's id before releasing the AER's completion (as Linux
 * does), and that release leaves the new AER waiting.
 */
TEST_F(model, target_release_of_a_settled_aer)
{
	struct fake *f = self->f;
	struct nvmp_state *st = calloc(1, sizeof(*st));
	struct sim_sqe aer = { .cdw0 = 0x0c | 0x66u << 16 };

	ASSERT_NE(NULL, st);
	ASSERT_EQ(0, submit(f, 0, &aer, true));
	complete(f, 0, 0, 0x66, 0, 0);		/* an event, not released */
	ASSERT_EQ(0, nvmp_save(&f->c, st));
	nvmp_load(&f->c, st);
	EXPECT_EQ(0, f->c.nr_aer);
	ASSERT_EQ(0, submit(f, 0, &aer, true));
	EXPECT_EQ(1, f->c.nr_aer);
	ASSERT_EQ(0, release(f, 0));
	EXPECT_EQ(1, f->c.nr_aer) TH_LOG("the old completion took the new AER");
	EXPECT_EQ(0, nvmp_outstanding(&f->c));
	free(st);
}

/* ---- the compatibility check (profiles/nvme/needs.c) ---- */

/*
 * A source guest: two I/O queue pairs (interrupt vectors 1 and 2),
 * granted three of each, namespace 1 of 512-byte blocks; its needs
 * record, and a target VF's facts and limits that take it.
 */
FIXTURE(needs) {
	struct fake *f;
	struct vfio_mig_nvme_needs n;
	struct vfio_mig_nvme_facts t;
	struct nvmp_limits lim;
	char why[160], notes[320];
};

static void facts_ok(struct vfio_mig_nvme_facts *t)
{
	memset(t, 0, sizeof(*t));
	t->version = VFIO_MIG_NVME_FACTS_VERSION;
	t->size = sizeof(*t);
	t->flags = VFIO_MIG_NVME_F_CTRL | VFIO_MIG_NVME_F_NS;
	t->vfn = 2;
	t->scid = 2;
	t->nvq = 4;		/* three I/O queue pairs and the admin queue */
	t->nvi = 3;
	t->online = 1;
	t->nr_ns = 1;
	t->ns[0].nsid = 1;
	t->ns[0].state = VFIO_MIG_NVME_NS_ATTACHED;
	t->ns[0].lbads = 9;
	t->ns[0].nsze = NSZE;
}

FIXTURE_SETUP(needs)
{
	struct sim_sqe s = { .cdw0 = 0x09, .cdw10 = 0x07, .cdw11 = 2 << 16 | 2 };

	self->f = fake_new();
	enable(self->f);
	ASSERT_EQ(0, admin(self->f, &s, 0, 2 << 16 | 2));
	ASSERT_EQ(0, create_pair(self->f, 1, IO_DEPTH, SQ1_IOVA, CQ1_IOVA));
	ASSERT_EQ(0, create_pair(self->f, 2, IO_DEPTH / 2, SQ1_IOVA + 0x1000,
				 CQ1_IOVA + 0x8000));
	ASSERT_EQ(0, identify_ns(self->f, 1, 9));
	nvmp_needs(&self->f->c, &self->n);
	facts_ok(&self->t);
	self->lim = (struct nvmp_limits){ .mqes = 2048, .nr_vec = 3,
					  .mps_min = 0, .mps_max = 4 };
	self->why[0] = self->notes[0] = 0;
}

FIXTURE_TEARDOWN(needs)
{
	fake_free(self->f);
}

static int check(FIXTURE_DATA(needs) *self, bool facts, bool lim)
{
	int ret;

	self->why[0] = self->notes[0] = 0;
	ret = nvmp_needs_valid(&self->n, sizeof(self->n), self->why,
			       sizeof(self->why));
	if (!ret && facts)
		ret = nvmp_facts_valid(&self->t, sizeof(self->t), self->why,
				       sizeof(self->why));
	if (!ret)
		ret = nvmp_needs_check(&self->n, facts ? &self->t : NULL,
				       lim ? &self->lim : NULL, self->why,
				       sizeof(self->why), self->notes,
				       sizeof(self->notes));
	return ret;
}

TEST_F(needs, record_from_the_model)
{
	struct vfio_mig_nvme_needs *n = &self->n;

	EXPECT_EQ(VFIO_MIG_NVME_NEEDS_VERSION, n->version);
	EXPECT_EQ(sizeof(*n), n->size);
	EXPECT_EQ(1, n->enabled);
	EXPECT_EQ(0, n->mps);
	EXPECT_EQ(2, n->max_qid);
	EXPECT_EQ(3, n->granted_sq);
	EXPECT_EQ(3, n->granted_cq);
	EXPECT_EQ(IO_DEPTH, n->max_qsize);
	EXPECT_EQ(3, n->nr_vec);	/* vectors 0, 1, 2 */
	ASSERT_EQ(1, n->nr_ns);
	EXPECT_EQ(1, n->ns[0].nsid);
	EXPECT_EQ(9, n->ns[0].lbads);
	EXPECT_EQ(0, n->ns[0].ms);
	EXPECT_EQ(NSZE, n->ns[0].nsze);
	EXPECT_EQ(0, check(self, true, true)) TH_LOG("%s", self->why);
	EXPECT_STREQ("", self->notes);
}

TEST_F(needs, disabled_controller_needs_nothing)
{
	nvmp_reg_write(&self->f->c, NVMP_REG_CC, 0, 4);
	nvmp_needs(&self->f->c, &self->n);
	EXPECT_EQ(0, self->n.enabled);
	EXPECT_EQ(0, self->n.max_qid);
	EXPECT_EQ(0, self->n.nr_ns);
	self->t.nvq = 1;
	self->t.nr_ns = 0;
	memset(self->t.ns, 0, sizeof(self->t.ns));
	EXPECT_EQ(0, check(self, true, true)) TH_LOG("%s", self->why);
	EXPECT_NE(NULL, strstr(self->notes, "disabled"));
}

TEST_F(needs, fewer_queue_pairs_refused)
{
	self->t.nvq = 2;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("target VF has 1 I/O queue pairs, the guest uses 2",
		     self->why);
}

TEST_F(needs, fewer_than_granted_refused)
{
	self->t.nvq = 3;	/* the guest uses 2 of the 3 it was granted */
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("target VF has 2 I/O queue pairs, the guest was granted 3",
		     self->why);
}

TEST_F(needs, fewer_interrupt_resources_refused)
{
	self->t.nvi = 2;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("target VF has 2 interrupt resources, the guest uses 3 vectors",
		     self->why);
}

TEST_F(needs, offline_vf_refused)
{
	self->t.online = 0;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("the target VF (secondary controller 2) is offline",
		     self->why);
}

TEST_F(needs, fewer_msix_vectors_refused)
{
	self->lim.nr_vec = 2;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("the guest uses 3 interrupt vectors, the target VF has 2 MSI-X vectors",
		     self->why);
}

TEST_F(needs, smaller_mqes_refused)
{
	self->lim.mqes = IO_DEPTH - 1;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_NE(NULL, strstr(self->why, "CAP.MQES")) TH_LOG("%s", self->why);
}

TEST_F(needs, page_size_out_of_range_refused)
{
	self->lim.mps_min = 1;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("memory page size 4096 on the source, the target takes 8192 to 65536 (CAP.MPSMIN, MPSMAX)",
		     self->why);
}

TEST_F(needs, namespace_detached_refused)
{
	self->t.ns[0].state = VFIO_MIG_NVME_NS_DETACHED;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("namespace 1 is not attached to the target VF", self->why);
}

TEST_F(needs, namespace_absent_refused)
{
	self->t.ns[0].state = VFIO_MIG_NVME_NS_ABSENT;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("namespace 1 does not exist on the target", self->why);
	facts_ok(&self->t);
	self->t.ns[0].nsid = 2;	/* the PF answered for another one */
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("namespace 1: the target's facts do not say", self->why);
}

/* The one-subsystem test bed cannot stage it (both VFs share namespace 1). */
TEST_F(needs, other_lba_format_refused)
{
	self->t.ns[0].lbads = 12;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("namespace 1: LBA data size 4096 on the target, 512 on the source",
		     self->why);
	facts_ok(&self->t);
	self->t.ns[0].ms = 8;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("namespace 1: metadata size 8 on the target, 0 on the source",
		     self->why);
}

TEST_F(needs, namespace_size)
{
	self->t.ns[0].nsze = NSZE - 1;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("namespace 1: 131071 blocks on the target, 131072 on the source",
		     self->why);
	/* larger: tolerated, said */
	self->t.ns[0].nsze = NSZE + 1;
	EXPECT_EQ(0, check(self, true, true)) TH_LOG("%s", self->why);
	EXPECT_NE(NULL, strstr(self->notes, "namespace 1 larger on the target"));
}

/* Without the PF's facts: what the kernel sees is checked, the rest said. */
TEST_F(needs, without_facts)
{
	EXPECT_EQ(0, check(self, false, true)) TH_LOG("%s", self->why);
	EXPECT_NE(NULL, strstr(self->notes, "queue and interrupt resources are unknown (no facts from its PF): checked at restore"))
		TH_LOG("%s", self->notes);
	EXPECT_NE(NULL, strstr(self->notes, "namespaces are unknown"));
	/* the kernel's own facts still refuse */
	self->lim.nr_vec = 1;
	EXPECT_EQ(-EINVAL, check(self, false, true));
	/* facts that say why they are missing */
	self->lim.nr_vec = 3;
	facts_ok(&self->t);
	self->t.flags = 0;
	self->t.nr_ns = 0;
	memset(self->t.ns, 0, sizeof(self->t.ns));
	snprintf(self->t.why, sizeof(self->t.why), "no NVMe device on PF 0000:00:04.0");
	EXPECT_EQ(0, check(self, true, true)) TH_LOG("%s", self->why);
	EXPECT_NE(NULL, strstr(self->notes, "(no NVMe device on PF 0000:00:04.0)"))
		TH_LOG("%s", self->notes);
	/* and without the registers */
	EXPECT_EQ(0, check(self, true, false));
	EXPECT_NE(NULL, strstr(self->notes, "registers were not readable"));
}

TEST_F(needs, malformed_records_refused)
{
	struct vfio_mig_nvme_needs n0 = self->n;
	struct vfio_mig_nvme_facts t0 = self->t;

	EXPECT_EQ(-EINVAL, nvmp_needs_valid(&self->n, sizeof(self->n) - 1,
					    self->why, sizeof(self->why)));
	EXPECT_EQ(-EINVAL, nvmp_needs_valid(&self->n, 2, self->why,
					    sizeof(self->why)));
	self->n.version = 2;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("the source's needs record has version 2, this kernel knows 1",
		     self->why);
	self->n = n0;
	self->n.nr_ns = VFIO_MIG_NVME_MAX_NS + 1;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	self->n = n0;
	self->n.ns[0].lbads = 8;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	self->n = n0;
	self->n.ns[3].nsid = 5;		/* beyond nr_ns */
	EXPECT_EQ(-EINVAL, check(self, true, true));
	self->n = n0;
	self->n.nr_ns = 2;
	self->n.ns[1] = self->n.ns[0];	/* twice */
	EXPECT_EQ(-EINVAL, check(self, true, true));
	EXPECT_STREQ("the source's needs record names namespace 1 twice",
		     self->why);
	self->n = n0;
	self->n.max_qid = NVMP_MAX_QID;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	self->n = n0;
	self->n.enabled = 0;		/* disabled, yet queues */
	EXPECT_EQ(-EINVAL, check(self, true, true));
	self->n = n0;
	memset(self->t.why, 'x', sizeof(self->t.why));
	EXPECT_EQ(-EINVAL, check(self, true, true));
	self->t = t0;
	self->t.flags |= 0x4;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	self->t = t0;
	self->t.ns[0].state = 0;
	EXPECT_EQ(-EINVAL, check(self, true, true));
	self->t = t0;
	self->t.flags = VFIO_MIG_NVME_F_CTRL;	/* namespaces without F_NS */
	EXPECT_EQ(-EINVAL, check(self, true, true));
	self->t = t0;
	EXPECT_EQ(-EINVAL, nvmp_facts_valid(&self->t, sizeof(self->t) + 1,
					    self->why, sizeof(self->why)));
	EXPECT_EQ(0, check(self, true, true)) TH_LOG("%s", self->why);
}

/* Random bytes in either record: refused or judged, never past a bound. */
TEST_F(needs, mutated_records)
{
	struct vfio_mig_nvme_needs n0 = self->n;
	struct vfio_mig_nvme_facts t0 = self->t;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned int i, j, ok = 0;

	for (i = 0; i < 20000; i++) {
		self->n = n0;
		self->t = t0;
		for (j = 0; j < 1 + i % 4; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (x & 1)
				((uint8_t *)&self->n)[(x >> 8) % sizeof(self->n)] = x >> 32;
			else
				((uint8_t *)&self->t)[(x >> 8) % sizeof(self->t)] = x >> 32;
		}
		if (!check(self, true, true))
			ok++;
		ASSERT_GT(sizeof(self->why), strnlen(self->why, sizeof(self->why)));
		ASSERT_GT(sizeof(self->notes), strnlen(self->notes, sizeof(self->notes)));
	}
	TH_LOG("%u of 20000 mutated pairs accepted", ok);
}

/*
 * CC's page size changed while enabled: the device keeps the enable's
 * (QEMU), so the model would walk PRP lists unlike it: it says it can no
 * longer vouch for the device (the save refuses), until a reset.
 */
TEST_F(model, cc_page_size_changed_while_enabled)
{
	struct fake *f = self->f;
	uint32_t cc = 0x460001;

	EXPECT_EQ(0, f->c.untracked);
	nvmp_reg_write(&f->c, NVMP_REG_CC, cc | 4 << 7, 4);	/* MPS 4 */
	EXPECT_EQ(NVMP_UT_CC, f->c.untracked & NVMP_UT_CC);
	/* a shutdown notification alone changes none of them */
	nvmp_reg_write(&f->c, NVMP_REG_CC, 0, 4);
	EXPECT_EQ(0, f->c.untracked);
	nvmp_reg_write(&f->c, NVMP_REG_CC, cc, 4);
	nvmp_reg_write(&f->c, NVMP_REG_CC, cc | 1 << 14, 4);	/* SHN */
	EXPECT_EQ(0, f->c.untracked);
}

/*
 * ASQ and ACQ written in parts as QEMU's controller takes them: a 2-byte
 * write at the register replaces its low 2 bytes (a 1-byte one too: its
 * smallest access is 2 bytes), the upper half at +4 its upper 4.
 */
TEST(admin_queue_registers_in_parts)
{
	struct fake *f = fake_new();

	nvmp_reg_write(&f->c, NVMP_REG_ASQ, 0x00a00000, 4);
	nvmp_reg_write(&f->c, NVMP_REG_ASQ, 0x1000, 2);
	EXPECT_EQ(0x00a01000ull, f->c.asq);
	nvmp_reg_write(&f->c, NVMP_REG_ASQ + 4, 0x1, 4);
	EXPECT_EQ(0x100a01000ull, f->c.asq);
	nvmp_reg_write(&f->c, NVMP_REG_ACQ, 0x12345678deadbeefull, 8);
	nvmp_reg_write(&f->c, NVMP_REG_ACQ, 0x21, 1);
	EXPECT_EQ(0x12345678dead0021ull, f->c.acq);
	fake_free(f);
}

TEST_HARNESS_MAIN
