// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig profile "nvme": the controller model (model.h).
 *
 * Dirty ranges. A command may make the device write guest memory in two
 * places: its data buffer, when data moves to the host (opcode bits 1:0 are
 * 10b or 11b: Read, Identify, Get Log Page, Get Features, ...), and one
 * completion queue slot. Completions land in a CQ in order, one slot each,
 * so the n-th command ever handed to the device for CQ c lands in slot
 * n mod size, whatever order the device completes them in: the model marks
 * that slot when it hands the command over. Data buffers are walked from
 * the command's PRP entries (PRP1, PRP2 or a PRP list, NVMe 1.4 4.3) or SGL
 * descriptors (4.4) for the command's length, capped by what the device
 * moves per command (max_xfer): a longer command fails without moving data.
 *
 * Admin commands that change what the guest depends on (queues created and
 * deleted, features set) are remembered by command id and applied when the
 * guest releases their successful completion (CQ 0 head doorbell).
 */
#include <linux/errno.h>
#include <linux/compiler.h>
#include <linux/kernel.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/types.h>
#include <asm/byteorder.h>

#include "model.h"

/* Submission queue entry fields (dwords, little endian in guest memory) */
struct nvmp_sqe {
	__le32 cdw0;		/* opcode 7:0, fuse 9:8, psdt 15:14, cid 31:16 */
	__le32 nsid;
	__le32 cdw2, cdw3;
	__le64 mptr;
	__le64 prp1;		/* or SGL1 bytes 0..7 */
	__le64 prp2;		/* or SGL1 bytes 8..15 */
	__le32 cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct nvmp_cqe {
	__le32 result;
	__le32 rsvd;
	__le16 sq_head;
	__le16 sq_id;
	__le16 cid;
	__le16 status;		/* phase bit 0, status 15:1 */
};

struct nvmp_sgl {
	__le64 addr;
	__le32 len;
	u8 rsvd[3];
	u8 type;		/* type 7:4, subtype 3:0 */
};

#define SQE_OPC(s)	(le32_to_cpu((s)->cdw0) & 0xff)
#define SQE_PSDT(s)	((le32_to_cpu((s)->cdw0) >> 14) & 0x3)
#define SQE_CID(s)	(le32_to_cpu((s)->cdw0) >> 16)

/* Admin opcodes */
#define ADM_DELETE_SQ	0x00
#define ADM_CREATE_SQ	0x01
#define ADM_GET_LOG	0x02
#define ADM_DELETE_CQ	0x04
#define ADM_CREATE_CQ	0x05
#define ADM_IDENTIFY	0x06
#define ADM_ABORT	0x08
#define ADM_SET_FEAT	0x09
#define ADM_GET_FEAT	0x0a
#define ADM_AER		0x0c
#define ADM_KEEP_ALIVE	0x18
#define ADM_DIRECTIVE_RECV	0x1a
#define ADM_SECURITY_RECV	0x82

/* NVM command set opcodes with a length of their own */
#define IO_READ		0x02
#define IO_RESV_REPORT	0x0e

#define SGL_DATA	0x0
#define SGL_BIT_BUCKET	0x1
#define SGL_SEGMENT	0x2
#define SGL_LAST_SEG	0x3

static const u8 feat_fid[NVMP_FEAT_NR] = {
	[NVMP_FEAT_ARB] = 0x01,
	[NVMP_FEAT_PM] = 0x02,
	[NVMP_FEAT_ERR_REC] = 0x05,
	[NVMP_FEAT_VWC] = 0x06,
	[NVMP_FEAT_NQ] = 0x07,
	[NVMP_FEAT_IRQ_COAL] = 0x08,
	[NVMP_FEAT_WR_ATOMIC] = 0x0a,
	[NVMP_FEAT_AEC] = 0x0b,
};

/* Set Features FIDs that need no state: the value is re-read or harmless */
#define FID_TEMP_THRESH	0x04	/* thresholds: not moved (documented) */
#define FID_IV_CFG	0x09
#define FID_TIMESTAMP	0x0e	/* the target's clock is the truth */
#define FID_KATO	0x0f	/* keep alive: fabrics only */
#define FID_SW_PROGRESS	0x80

void nvmp_init(struct nvmp_ctrl *c, const struct nvmp_env *env, u64 cap,
	       u32 max_xfer)
{
	memset(c, 0, sizeof(*c));
	c->env = *env;
	c->db_stride = 4u << ((cap >> 32) & 0xf);
	c->mqes = (u16)min_t(u32, (cap & 0xffff) + 1, NVMP_MAX_QSIZE);
	c->max_xfer = min_t(u32, max_xfer, NVMP_MAX_XFER);
}

static void mlock(struct nvmp_ctrl *c)
{
	if (c->env.lock)
		c->env.lock(c->env.ctx);
}

static void munlock(struct nvmp_ctrl *c)
{
	if (c->env.unlock)
		c->env.unlock(c->env.ctx);
}

static void trk_add(struct nvmp_ctrl *c, u64 iova, u64 len);
static void trk_open(struct nvmp_ctrl *c, u16 sqid, u16 cid, u64 after);
static void trk_close(struct nvmp_ctrl *c);

/* Under the model lock: the staged ranges of @w's command into the store. */
static void stage_flush(struct nvmp_ctrl *c, u16 qid, struct nvmp_qctx *w)
{
	u16 i;

	trk_open(c, qid, w->cid, w->after);
	for (i = 0; c->trk.cur && i < w->n_stage; i++)
		trk_add(c, w->stage[i].iova, w->stage[i].len);
	w->n_stage = 0;
}

/*
 * The device may write [@iova, @iova + @len) because of the command queue
 * pair @qid is decoding: mark it now, and keep it for the store (staged;
 * once the stage is full, straight into the store under the model lock,
 * held until the command is done).
 */
static void dirty(struct nvmp_ctrl *c, u16 qid, u64 iova, u64 len)
{
	struct nvmp_qctx *w = &c->q[qid];
	struct nvmp_range *last;

	if (!len)
		return;
	w->dirty_calls++;
	c->env.dirty(c->env.ctx, iova, len);
	if (!w->track)
		return;
	if (w->locked) {
		if (c->trk.cur)
			trk_add(c, iova, len);
		return;
	}
	if (w->n_stage) {
		last = &w->stage[w->n_stage - 1];
		if (last->iova + last->len == iova) {
			last->len += len;
			return;
		}
	}
	if (w->n_stage == NVMP_STAGE) {
		mlock(c);
		w->locked = 1;
		stage_flush(c, qid, w);
		if (c->trk.cur)
			trk_add(c, iova, len);
		return;
	}
	w->stage[w->n_stage++] = (struct nvmp_range){ iova, len };
}

/*
 * Queue pair @qid starts decoding command @cid; its CQ showed completions
 * posted up to @after when it was handed over (sq_after()).
 */
static void cmd_begin(struct nvmp_ctrl *c, u16 qid, u16 cid, u64 after)
{
	struct nvmp_qctx *w = &c->q[qid];

	w->cid = cid;
	w->after = after;
	w->n_stage = 0;
	w->locked = 0;
	w->track = !!c->trk.rec;
}

/* ... and is done: its ranges enter the store, its counts the totals. */
static void cmd_end(struct nvmp_ctrl *c, u16 qid)
{
	struct nvmp_qctx *w = &c->q[qid];
	struct nvmp_cq *cq;

	if (!w->locked)
		mlock(c);
	if (w->track && !w->locked)
		stage_flush(c, qid, w);
	trk_close(c);
	cq = &c->cq[c->sq[qid].cqid];
	cq->seen = max_t(u64, cq->seen, w->after);
	c->dirty_calls += w->dirty_calls;
	w->dirty_calls = 0;
	w->track = 0;
	w->locked = 0;
	munlock(c);
}

/* Fold what queue pair @qid's call found into @untracked. */
static void ut_fold(struct nvmp_ctrl *c, u16 qid)
{
	struct nvmp_qctx *w = &c->q[qid];

	if (!w->ut)
		return;
	mlock(c);
	c->untracked |= w->ut;
	munlock(c);
	w->ut = 0;
}

/* The in-flight store (struct nvmp_track). */
static u32 trk_slot(const struct nvmp_track *t, u16 sqid, u16 cid)
{
	u32 key = (u32)sqid << 16 | cid;

	/* multiplicative hashing: the top bits of the product */
	return (u32)(key * 0x9e3779b1u) >> t->hash_shift;
}

/* The hash slot holding record (@sqid, @cid), or the empty one to use. */
static u32 *trk_find(struct nvmp_track *t, u16 sqid, u16 cid)
{
	u32 i = trk_slot(t, sqid, cid), n;

	for (n = 0; n < 2 * t->nr_rec; n++, i = (i + 1) & (2 * t->nr_rec - 1)) {
		struct nvmp_rec *r;

		if (!t->hash[i])
			return &t->hash[i];
		r = &t->rec[t->hash[i] - 1];
		if (r->sqid == sqid && r->cid == cid)
			return &t->hash[i];
	}
	return NULL;	/* cannot happen: at most nr_rec entries */
}

/* Remove hash slot @h, moving later entries of its run back. */
static void trk_unhash(struct nvmp_track *t, u32 *h)
{
	u32 mask = 2 * t->nr_rec - 1, i = h - t->hash, j = i;

	t->hash[i] = 0;
	for (;;) {
		struct nvmp_rec *r;
		u32 home;

		j = (j + 1) & mask;
		if (!t->hash[j])
			return;
		r = &t->rec[t->hash[j] - 1];
		home = trk_slot(t, r->sqid, r->cid);
		/* can the entry at j move to the hole at i? */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->hash[i] = t->hash[j];
			t->hash[j] = 0;
			i = j;
		}
	}
}

/* Free what the oldest released records held. */
static void trk_trim(struct nvmp_track *t)
{
	while (t->c_tail != t->c_head &&
	       !t->rec[t->c_tail & (t->nr_rec - 1)].live)
		t->c_tail++;
	t->r_tail = t->c_tail == t->c_head ? t->r_head :
		    t->rec[t->c_tail & (t->nr_rec - 1)].first;
}

/*
 * The store cannot keep command @cid of SQ @sqid, handed over when its CQ
 * showed @after (under the model lock).
 */
static void trk_lost(struct nvmp_ctrl *c, u16 sqid, u16 cid, u64 after)
{
	struct nvmp_track *t = &c->trk;
	u32 i;

	c->untracked |= NVMP_UT_TRACK;
	for (i = 0; i < t->nr_lost; i++)	/* each range it drops */
		if (t->lost[i].sqid == sqid && t->lost[i].cid == cid &&
		    t->lost[i].after == after)
			return;
	if (t->nr_lost == NVMP_MAX_LOST) {
		t->lost_reported = true;
		return;
	}
	t->lost[t->nr_lost].sqid = sqid;
	t->lost[t->nr_lost].cid = cid;
	t->lost[t->nr_lost].after = after;
	t->nr_lost++;
}

/*
 * Its completion, at position @pos of its CQ, released (under the model
 * lock): when the last lost command goes with no remark since,
 * NVMP_UT_TRACK goes too.
 */
static void trk_lost_end(struct nvmp_ctrl *c, u16 sqid, u16 cid, u64 pos)
{
	struct nvmp_track *t = &c->trk;
	u32 i;

	for (i = 0; i < t->nr_lost; i++) {
		if (t->lost[i].sqid != sqid || t->lost[i].cid != cid ||
		    pos < t->lost[i].after)
			continue;
		t->lost[i] = t->lost[--t->nr_lost];
		break;
	}
	if (!t->nr_lost && !t->lost_reported)
		c->untracked &= ~NVMP_UT_TRACK;
}

/*
 * Command @cid of SQ @sqid is done (under the model lock): its completion
 * at position @pos of its CQ was released, or (@pos U64_MAX) the command
 * cannot run any more. A completion older than the record is another
 * command's with the same id (model.h).
 */
static void trk_end(struct nvmp_ctrl *c, u16 sqid, u16 cid, u64 pos)
{
	struct nvmp_track *t = &c->trk;
	u32 *h;

	if (!t->rec || !t->live)
		return;
	h = trk_find(t, sqid, cid);
	if (!h || !*h || pos < t->rec[*h - 1].after)
		return;
	t->rec[*h - 1].live = 0;
	t->live--;
	trk_unhash(t, h);
	trk_trim(t);
}

/* @after: its CQ's completions posted before it was handed over */
static void trk_open(struct nvmp_ctrl *c, u16 sqid, u16 cid, u64 after)
{
	struct nvmp_track *t = &c->trk;
	struct nvmp_rec *r;

	if (!t->rec)
		return;
	/* a command id reused while in flight: the old one is done */
	trk_end(c, sqid, cid, U64_MAX);
	if (t->c_head - t->c_tail == t->nr_rec) {
		trk_lost(c, sqid, cid, after);
		return;
	}
	r = &t->rec[t->c_head & (t->nr_rec - 1)];
	r->first = t->r_head;
	r->after = after;
	r->n = 0;
	r->sqid = sqid;
	r->cid = cid;
	r->live = 1;
	t->cur = r;
}

static void trk_add(struct nvmp_ctrl *c, u64 iova, u64 len)
{
	struct nvmp_track *t = &c->trk;
	struct nvmp_range *last;

	if (t->cur->n) {
		last = &t->r[(t->r_head - 1) & (t->nr_r - 1)];
		if (last->iova + last->len == iova) {
			last->len += len;
			return;
		}
	}
	if (t->r_head - t->r_tail == t->nr_r || t->cur->n == U16_MAX) {
		trk_lost(c, t->cur->sqid, t->cur->cid, t->cur->after);
		return;
	}
	t->r[t->r_head & (t->nr_r - 1)] = (struct nvmp_range){ iova, len };
	t->r_head++;
	t->cur->n++;
}

/* The decoder is done with the command: keep it if it has ranges. */
static void trk_close(struct nvmp_ctrl *c)
{
	struct nvmp_track *t = &c->trk;
	struct nvmp_rec *r = t->cur;
	u32 *h;

	if (!r)
		return;
	t->cur = NULL;
	if (!r->n) {
		r->live = 0;
		return;
	}
	h = trk_find(t, r->sqid, r->cid);
	if (!h) {
		t->r_head = r->first;
		r->live = 0;
		trk_lost(c, r->sqid, r->cid, r->after);
		return;
	}
	*h = (t->c_head & (t->nr_rec - 1)) + 1;
	t->c_head++;
	t->live++;
}

static void trk_reset(struct nvmp_track *t)
{
	if (t->hash)
		memset(t->hash, 0, 2 * t->nr_rec * sizeof(*t->hash));
	t->r_head = 0;
	t->r_tail = 0;
	t->c_head = 0;
	t->c_tail = 0;
	t->live = 0;
	t->cur = NULL;
	t->nr_lost = 0;
	t->lost_reported = false;
}

/* Forget the commands of SQ @qid (deleted: nothing of it runs). */
static void trk_drop_sq(struct nvmp_ctrl *c, u16 qid)
{
	struct nvmp_track *t = &c->trk;
	u64 i;

	for (i = t->c_tail; t->rec && i != t->c_head; i++) {
		struct nvmp_rec *r = &t->rec[i & (t->nr_rec - 1)];

		if (r->live && r->sqid == qid)
			trk_end(c, r->sqid, r->cid, U64_MAX);
	}
}

void nvmp_track_init(struct nvmp_ctrl *c, struct nvmp_range *r, u32 nr_r,
		     struct nvmp_rec *rec, u32 nr_rec, u32 *hash)
{
	struct nvmp_track *t = &c->trk;

	t->r = r;
	t->nr_r = nr_r;
	t->rec = rec;
	t->nr_rec = nr_rec;
	t->hash = hash;
	t->hash_shift = 32;
	while (nr_rec && (1u << (32 - t->hash_shift)) < 2 * nr_rec)
		t->hash_shift--;
	trk_reset(t);
}

void nvmp_remark(struct nvmp_ctrl *c)
{
	struct nvmp_track *t = &c->trk;
	unsigned int q;
	u64 i;
	u16 k;

	/* a lost command's ranges cannot be marked again */
	if (t->nr_lost)
		t->lost_reported = true;
	for (i = t->c_tail; t->rec && i != t->c_head; i++) {
		const struct nvmp_rec *r = &t->rec[i & (t->nr_rec - 1)];

		for (k = 0; r->live && k < r->n; k++) {
			const struct nvmp_range *g =
				&t->r[(r->first + k) & (t->nr_r - 1)];

			c->env.dirty(c->env.ctx, g->iova, g->len);
		}
	}
	/* completion slots from the guest's head to the last one handed out */
	for (q = 0; q < NVMP_MAX_QID; q++) {
		const struct nvmp_cq *cq = &c->cq[q];
		u64 n = min_t(u64, cq->issued - cq->consumed, cq->size);
		u32 from = cq->head, first;

		if (!cq->live || !n)
			continue;
		first = min_t(u64, n, cq->size - from);
		c->env.dirty(c->env.ctx, cq->base + (u64)from * NVMP_CQE_SIZE,
			     (u64)first * NVMP_CQE_SIZE);
		if (n > first)
			c->env.dirty(c->env.ctx, cq->base,
				     (n - first) * NVMP_CQE_SIZE);
	}
}

/* A read of guest memory for queue pair @qid's call (see ut_fold()). */
static int gread(struct nvmp_ctrl *c, u16 qid, u64 iova, void *buf, u32 len)
{
	int ret = c->env.read(c->env.ctx, iova, buf, len);

	if (ret)
		c->q[qid].ut |= NVMP_UT_MEMORY;
	return ret;
}

static u32 page_size(const struct nvmp_ctrl *c)
{
	return 4096u << NVMP_CC_MPS(c->cc);
}

/* Reset everything the guest built: CC.EN cleared or never set. */
static void reset_queues(struct nvmp_ctrl *c)
{
	memset(c->sq, 0, sizeof(c->sq));
	memset(c->cq, 0, sizeof(c->cq));
	memset(c->pending, 0, sizeof(c->pending));
	c->feat_set = 0;
	c->iv_cfg_set = 0;
	c->nr_ns = 0;
	c->nr_aer = 0;		/* the controller drops its AERs too */
	c->admin_settled = 0;
	c->untracked = 0;
	c->enabled = 0;
	trk_reset(&c->trk);
	memset(c->q, 0, sizeof(c->q));
}

static void enable(struct nvmp_ctrl *c)
{
	struct nvmp_sq *sq = &c->sq[0];
	struct nvmp_cq *cq = &c->cq[0];

	reset_queues(c);
	c->enabled = 1;
	cq->base = c->acq;
	cq->size = ((c->aqa >> 16) & 0xfff) + 1;
	cq->live = 1;
	cq->ien = 1;
	sq->base = c->asq;
	sq->size = (c->aqa & 0xfff) + 1;
	sq->cqid = 0;
	sq->live = 1;
}

/*
 * A write of @width bytes at the start of a 64-bit register, as QEMU's
 * controller takes it: those bytes (at least 2, its smallest access),
 * the others kept.
 */
static u64 merge_low(u64 old, u64 val, u8 width)
{
	u64 mask = width >= 8 ? ~0ull : (1ull << (8 * max_t(u8, width, 2))) - 1;

	return (old & ~mask) | (val & mask);
}

void nvmp_reg_write(struct nvmp_ctrl *c, u32 off, u64 val, u8 width)
{
	u32 v = (u32)val;

	switch (off) {
	case NVMP_REG_INTMS:
		c->intms |= v;
		break;
	case NVMP_REG_INTMC:
		c->intms &= ~v;
		break;
	case NVMP_REG_CC:
		if ((v & NVMP_CC_EN) && !(c->cc & NVMP_CC_EN)) {
			c->cc = v;
			enable(c);
		} else if (!(v & NVMP_CC_EN) && (c->cc & NVMP_CC_EN)) {
			c->cc = v;
			reset_queues(c);
		} else {
			/*
			 * The page size and entry sizes are the enable's for
			 * the device (QEMU reads them then): a change while
			 * enabled would make the model walk PRPs unlike it.
			 */
			if ((c->cc & NVMP_CC_EN) &&
			    (NVMP_CC_MPS(v) != NVMP_CC_MPS(c->cc) ||
			     NVMP_CC_IOSQES(v) != NVMP_CC_IOSQES(c->cc) ||
			     NVMP_CC_IOCQES(v) != NVMP_CC_IOCQES(c->cc)))
				c->untracked |= NVMP_UT_CC;
			c->cc = v;
		}
		break;
	case NVMP_REG_AQA:
		c->aqa = v;
		break;
	case NVMP_REG_ASQ:
		c->asq = merge_low(c->asq, val, width);
		break;
	case NVMP_REG_ASQ + 4:
		c->asq = (c->asq & 0xffffffffull) | ((u64)v << 32);
		break;
	case NVMP_REG_ACQ:
		c->acq = merge_low(c->acq, val, width);
		break;
	case NVMP_REG_ACQ + 4:
		c->acq = (c->acq & 0xffffffffull) | ((u64)v << 32);
		break;
	default:
		break;
	}
}

u32 nvmp_db_offset(const struct nvmp_ctrl *c, u16 qid, bool cq)
{
	return NVMP_REG_DBS + (2 * qid + cq) * c->db_stride;
}

/* PRP walk: NVMe 1.4 figure 108 (PRP1 with offset, PRP2 or a list). */
static int dirty_prp(struct nvmp_ctrl *c, u16 qid, u64 prp1, u64 prp2,
		     u64 len)
{
	u32 ps = page_size(c), per = ps / 8, slot;
	u8 *buf = c->q[qid].list;
	u64 first, list;

	first = min_t(u64, len, ps - (prp1 & (ps - 1)));
	dirty(c, qid, prp1, first);
	len -= first;
	if (!len)
		return 0;
	if (len <= ps) {
		dirty(c, qid, prp2, len);
		return 0;
	}
	/* a list: its first entry may sit at an offset in its page */
	list = prp2;
	slot = (list & (ps - 1)) / 8;
	while (len) {
		u32 n = min_t(u32, per - slot, sizeof(c->q[0].list) / 8), i;
		__le64 *e = (__le64 *)buf;
		bool chained = false;

		if (gread(c, qid, list, buf, n * 8))
			return -EFAULT;
		for (i = 0; i < n && len && !chained; i++) {
			u64 a = le64_to_cpu(e[i]);

			if (slot + i == per - 1 && len > ps) {
				/*
				 * The page's last entry chains to the next
				 * list page, which must be page aligned: the
				 * device fails the command otherwise, moving
				 * no more data (and a chain to the same slot
				 * would never end).
				 */
				if (a & (ps - 1))
					return 0;
				list = a;
				slot = (list & (ps - 1)) / 8;
				chained = true;
				continue;
			}
			dirty(c, qid, a, min_t(u64, len, ps));
			len -= min_t(u64, len, ps);
		}
		if (!chained) {
			list += n * 8;
			slot += n;
		}
	}
	return 0;
}

/* SGL walk: data blocks, bit buckets, segments; bounded descriptor count. */
static int dirty_sgl(struct nvmp_ctrl *c, u16 qid,
		     const struct nvmp_sgl *first, u64 len)
{
	struct nvmp_sgl d = *first;
	unsigned int walked = 0;
	u64 seg = 0;
	u32 seg_left = 0;

	for (;;) {
		u8 type = d.type >> 4;
		u64 addr = le64_to_cpu(d.addr);
		u32 dlen = le32_to_cpu(d.len);

		if (++walked > NVMP_MAX_SGL_DESC) {
			c->q[qid].ut |= NVMP_UT_SGL;
			return -E2BIG;
		}
		switch (type) {
		case SGL_DATA:
			dirty(c, qid, addr, min_t(u64, len, dlen));
			len -= min_t(u64, len, dlen);
			break;
		case SGL_BIT_BUCKET:
			len -= min_t(u64, len, dlen);
			break;
		case SGL_SEGMENT:
		case SGL_LAST_SEG:
			if (dlen < sizeof(d) || dlen % sizeof(d)) {
				/* the device fails the command */
				return 0;
			}
			seg = addr;
			seg_left = dlen / sizeof(d);
			break;
		default:
			c->q[qid].ut |= NVMP_UT_SGL;
			return -EOPNOTSUPP;
		}
		if (!len || !seg_left)
			return 0;
		if (gread(c, qid, seg, &d, sizeof(d)))
			return -EFAULT;
		seg += sizeof(d);
		seg_left--;
	}
}

/* Walk the data pointer of a command (PRP or SGL) for @len bytes. */
static int dirty_dptr(struct nvmp_ctrl *c, u16 qid, const struct nvmp_sqe *s,
		      u64 len)
{
	if (!len)
		return 0;
	if (len > c->max_xfer) {
		/* the device refuses it; above NVMP_MAX_XFER we cannot say */
		if (c->max_xfer == NVMP_MAX_XFER)
			c->q[qid].ut |= NVMP_UT_XFER;
		len = c->max_xfer;
	}
	if (SQE_PSDT(s))
		return dirty_sgl(c, qid, (const struct nvmp_sgl *)&s->prp1,
				 len);
	return dirty_prp(c, qid, le64_to_cpu(s->prp1), le64_to_cpu(s->prp2),
			 len);
}

/*
 * The separate metadata buffer of a command, @len bytes: at MPTR, or with
 * PSDT 10b described by the one SGL descriptor MPTR points at (NVMe 1.4
 * 4.2), walked as the data's SGL is.
 */
static void dirty_mptr(struct nvmp_ctrl *c, u16 qid, const struct nvmp_sqe *s,
		       u64 len)
{
	struct nvmp_sgl d;

	if (SQE_PSDT(s) != 2) {
		dirty(c, qid, le64_to_cpu(s->mptr), len);
		return;
	}
	if (gread(c, qid, le64_to_cpu(s->mptr), &d, sizeof(d)))
		return;
	dirty_sgl(c, qid, &d, len);
}

static const struct nvmp_ns *ns_find(const struct nvmp_ctrl *c, u32 nsid)
{
	unsigned int i;

	for (i = 0; i < c->nr_ns; i++)
		if (c->ns[i].nsid == nsid)
			return &c->ns[i];
	return NULL;
}

/* Bytes an I/O command moves to the host (0: none, or not that way). */
static u64 io_to_host_len(struct nvmp_ctrl *c, const struct nvmp_sqe *s,
			  u64 *md_len)
{
	u8 opc = SQE_OPC(s);
	const struct nvmp_ns *ns;
	u64 nlb;

	*md_len = 0;
	switch (opc) {
	case IO_READ:
		nlb = (le32_to_cpu(s->cdw12) & 0xffff) + 1ull;
		ns = ns_find(c, le32_to_cpu(s->nsid));
		if (!ns) {
			/*
			 * Never identified (or forgotten at a reset, before
			 * the driver identifies it again): the largest blocks,
			 * and separate metadata as large wherever MPTR points.
			 */
			if (s->mptr)
				*md_len = nlb << 16;
			return nlb << 16;
		}
		/* extended LBAs: each block's metadata follows its data */
		if (ns->ext)
			return nlb * ((1ull << ns->lba_shift) + ns->ms);
		*md_len = nlb * ns->ms;
		return nlb << ns->lba_shift;
	case IO_RESV_REPORT:
		return ((u64)le32_to_cpu(s->cdw10) + 1) * 4;
	default:
		/* unknown commands that move data to the host: all they can */
		return (opc & 0x2) ? c->max_xfer : 0;
	}
}

/*
 * Bytes of data Get Features returns for @fid in a buffer: 0 for the
 * features whose value is all in the completion (NVMe 2.1, Figure 385),
 * the buffer's size for those that return one, and for any other (a newer
 * feature, a vendor's) 4 KiB, the most any feature's data structure takes
 * (and never a PRP list: PRP2 of a feature without data is often 0).
 */
static u64 feat_data_len(u8 fid)
{
	switch (fid) {
	case 0x01 ... 0x02:	/* Arbitration, Power Management */
	case 0x04 ... 0x0b:	/* Temperature Threshold .. Async Event Config */
	case 0x0f ... 0x12:	/* Keep Alive .. Read Recovery Level */
	case 0x14 ... 0x15:	/* Predictable Latency Window, LBA Status */
	case 0x17 ... 0x1a:	/* Sanitize Config .. Spinup Control */
	case 0x1d:		/* Flexible Data Placement */
	case 0x80:		/* Software Progress Marker */
	case 0x82 ... 0x84:	/* Reservation Mask, Persistence; Write Protect */
		return 0;
	case 0x0c:		/* Autonomous Power State Transition */
		return 256;
	case 0x0e:		/* Timestamp */
		return 8;
	case 0x13:		/* Predictable Latency Mode Config */
	case 0x16:		/* Host Behavior Support */
		return 512;
	case 0x81:		/* Host Identifier */
		return 16;
	case 0x03:		/* LBA Range Type */
	case 0x0d:		/* Host Memory Buffer attributes */
	case 0x1e:		/* FDP Events */
	case 0x7d ... 0x7f:	/* Controller and Namespace Metadata */
	default:
		return 4096;
	}
}

static u64 admin_to_host_len(struct nvmp_ctrl *c, const struct nvmp_sqe *s)
{
	u32 numd;

	switch (SQE_OPC(s)) {
	case ADM_IDENTIFY:
		return 4096;
	case ADM_GET_LOG:
		numd = (le32_to_cpu(s->cdw10) >> 16) |
		       ((le32_to_cpu(s->cdw11) & 0xffff) << 16);
		return ((u64)numd + 1) * 4;
	case ADM_GET_FEAT:
		return feat_data_len(le32_to_cpu(s->cdw10) & 0xff);
	case ADM_CREATE_SQ:
	case ADM_CREATE_CQ:
		return 0;	/* PRP1 is the queue, not data */
	default:
		return (SQE_OPC(s) & 0x2) ? c->max_xfer : 0;
	}
}

typedef void (*cq_walk_fn)(struct nvmp_ctrl *c, u64 pos,
			   const struct nvmp_cqe *e, void *arg);

/*
 * Walk CQ @cq's completions from position @from (not before the guest's
 * head) to @end (at most what was handed over) while their phase tags say
 * the device posted them, calling @each (if any) with each one and its
 * position. Returns the position where the walk stopped. Guest memory is
 * read in batches for pair @qid's call; an unreadable CQ stops the walk
 * (NVMP_UT_MEMORY). The caller says what may change meanwhile.
 */
static u64 cq_walk(struct nvmp_ctrl *c, u16 qid, const struct nvmp_cq *cq,
		   u64 from, u64 end, cq_walk_fn each, void *arg)
{
	struct nvmp_cqe e[8];
	u64 p = from;

	while (p < end) {
		u32 slot = p % cq->size, k, i;
		u8 phase = !((p / cq->size) & 1);

		k = min_t(u64, end - p, cq->size - slot);
		k = min_t(u32, k, ARRAY_SIZE(e));
		if (gread(c, qid, cq->base + (u64)slot * NVMP_CQE_SIZE, e,
			  k * NVMP_CQE_SIZE))
			break;
		for (i = 0; i < k && (le16_to_cpu(e[i].status) & 1) == phase;
		     i++)
			if (each)
				each(c, p + i, &e[i], arg);
		p += i;
		if (i < k)
			break;
	}
	return p;
}

/* The completions the guest has not released that the device posted. */
static u64 cq_walk_posted(struct nvmp_ctrl *c, u16 q, cq_walk_fn each,
			  void *arg)
{
	const struct nvmp_cq *cq = &c->cq[q];

	return cq_walk(c, 0, cq, cq->consumed,
		       min_t(u64, cq->issued, cq->consumed + cq->size), each,
		       arg) - cq->consumed;
}

struct cid_count {
	u16 cid;
	u32 n;
};

static void count_cid(struct nvmp_ctrl *c, u64 pos, const struct nvmp_cqe *e,
		      void *arg)
{
	struct cid_count *k = arg;

	/* a settled one's command is no longer pending */
	k->n += le16_to_cpu(e->cid) == k->cid && pos >= c->admin_settled;
}

/*
 * Completions on the admin CQ that the device posted and the guest has not
 * released, with command id @cid, not applied by a settle yet.
 */
static u32 posted_with_cid(struct nvmp_ctrl *c, u16 cid)
{
	struct cid_count k = { .cid = cid };

	cq_walk_posted(c, 0, count_cid, &k);
	return k.n;
}

/*
 * An admin command whose completion decides its effect. A guest may reuse
 * a command id once the command completed, before it releases the
 * completion: both are kept, and completions match the oldest first
 * (admin_done()). An id reused while the command is still in flight
 * leaves no way to tell which completion is whose: the model stops
 * vouching (NVMP_UT_ADMIN), as for a command it does not follow.
 */
static void pending_add(struct nvmp_ctrl *c, const struct nvmp_sqe *s)
{
	struct nvmp_pending *p = NULL;
	u32 same = 0;
	unsigned int i;

	for (i = 0; i < NVMP_MAX_PENDING; i++) {
		if (!c->pending[i].used)
			p = p ?: &c->pending[i];
		else
			same += c->pending[i].cid == SQE_CID(s);
	}
	if (same && posted_with_cid(c, SQE_CID(s)) < same) {
		c->last_unmediated = SQE_OPC(s);
		c->untracked |= NVMP_UT_ADMIN;
		return;
	}
	if (!p) {
		c->untracked |= NVMP_UT_PENDING;
		return;
	}
	p->used = 1;
	p->seq = c->pending_seq++;
	p->cid = SQE_CID(s);
	p->opcode = SQE_OPC(s);
	p->nsid = le32_to_cpu(s->nsid);
	p->cdw10 = le32_to_cpu(s->cdw10);
	p->cdw11 = le32_to_cpu(s->cdw11);
	p->prp1 = le64_to_cpu(s->prp1);
	p->prp2 = le64_to_cpu(s->prp2);
}

bool nvmp_sq_creating(const struct nvmp_ctrl *c, u16 qid)
{
	unsigned int i;

	for (i = 0; i < NVMP_MAX_PENDING; i++)
		if (c->pending[i].used &&
		    c->pending[i].opcode == ADM_CREATE_SQ &&
		    (c->pending[i].cdw10 & 0xffff) == qid)
			return true;
	return false;
}

/* Does the model follow SQ @qid (a tail rung there is decoded)? */
bool nvmp_sq_follows(const struct nvmp_ctrl *c, u16 qid)
{
	return qid < NVMP_MAX_QID && c->sq[qid].live;
}

static void aer_add(struct nvmp_ctrl *c, u16 cid)
{
	if (c->nr_aer == NVMP_MAX_AER) {
		c->untracked |= NVMP_UT_AER;
		return;
	}
	c->aer_cid[c->nr_aer++] = cid;
}

/* An AER's completion was seen: it no longer waits. */
static bool aer_done(struct nvmp_ctrl *c, u16 cid)
{
	unsigned int i;

	for (i = 0; i < c->nr_aer; i++) {
		if (c->aer_cid[i] != cid)
			continue;
		c->aer_cid[i] = c->aer_cid[--c->nr_aer];
		return true;
	}
	return false;
}

/* Does the model keep this admin command's effect? */
static bool admin_tracked(u8 opc)
{
	switch (opc) {
	case ADM_DELETE_SQ:
	case ADM_CREATE_SQ:
	case ADM_DELETE_CQ:
	case ADM_CREATE_CQ:
	case ADM_SET_FEAT:
	case ADM_IDENTIFY:
		return true;
	default:
		return false;
	}
}

/*
 * Admin commands that change nothing the model keeps or the migration
 * moves: they read (logs, features, directives, security data), abort a
 * command (whose completion the model sees) or keep a fabrics link alive.
 * Every other opcode's successful completion either takes effect in the
 * model (admin_tracked()) or makes it untracked (NVMP_UT_ADMIN): Doorbell
 * Buffer Config would move the doorbells into guest memory, Format NVM,
 * Sanitize, Namespace Management and Attachment, Firmware Commit,
 * Virtualization Management and Directive Send change the device in
 * ways the record does not carry, and an opcode unknown to the model
 * (vendor specific ones included) is taken as one of those.
 */
static bool admin_harmless(u8 opc)
{
	switch (opc) {
	case ADM_GET_LOG:
	case ADM_GET_FEAT:
	case ADM_ABORT:
	case ADM_KEEP_ALIVE:
	case ADM_DIRECTIVE_RECV:
	case ADM_SECURITY_RECV:
		return true;
	default:
		return false;
	}
}

/*
 * How far SQ @qid's CQ shows completions posted now, before the device has
 * the commands a tail hands over (model.h, struct nvmp_range): those
 * completions are older than each of them. @issued and @seen are shared
 * with the other SQs of the CQ, @consumed is written by the CQ's own
 * doorbell: the walk starts from a snapshot and reads guest memory
 * without the model lock. cmd_end() keeps the result in @seen, so that
 * each entry is read once while it stays posted.
 */
static u64 sq_after(struct nvmp_ctrl *c, u16 qid)
{
	struct nvmp_cq *cq = &c->cq[c->sq[qid].cqid];
	u64 from, end, consumed;

	mlock(c);
	consumed = READ_ONCE(cq->consumed);
	from = max_t(u64, cq->seen, consumed);
	end = min_t(u64, cq->issued, consumed + cq->size);
	munlock(c);
	return cq_walk(c, qid, cq, from, end, NULL, NULL);
}

/*
 * One command handed over on SQ @qid; its CQ showed completions posted up
 * to @after (sq_after()). The CQ slot count (@issued) is shared with the
 * other SQs of the CQ: under the model lock.
 */
static void decode(struct nvmp_ctrl *c, u16 qid, const struct nvmp_sqe *s,
		   u64 after)
{
	struct nvmp_cq *cq = &c->cq[c->sq[qid].cqid];
	u64 len, md = 0, slot;

	if (!cq->live)	/* the device has nowhere to complete it */
		return;
	mlock(c);
	c->cmds++;
	slot = cq->base + (cq->issued % cq->size) * NVMP_CQE_SIZE;
	cq->issued++;
	munlock(c);
	/* the slot its completion will land in */
	dirty(c, qid, slot, NVMP_CQE_SIZE);
	cmd_begin(c, qid, SQE_CID(s), after);
	if (qid == 0) {
		u8 opc = SQE_OPC(s);

		if (opc == ADM_AER)
			aer_add(c, SQE_CID(s));
		else if (!admin_harmless(opc))
			pending_add(c, s);	/* its completion decides */
		len = admin_to_host_len(c, s);
	} else {
		len = io_to_host_len(c, s, &md);
	}
	dirty_dptr(c, qid, s, len);
	if (md)
		dirty_mptr(c, qid, s, min_t(u64, md, c->max_xfer));
	cmd_end(c, qid);
}

void nvmp_forward(struct nvmp_ctrl *c, u16 qid)
{
	struct nvmp_sq *sq;
	u64 after = 0;
	u8 *buf;

	if (qid >= NVMP_MAX_QID)
		return;
	sq = &c->sq[qid];
	buf = c->q[qid].ent;
	/* one walk for the whole tail: the guest saw what it reuses before */
	if (sq->live && sq->fwd != sq->tail && c->cq[sq->cqid].live)
		after = sq_after(c, qid);
	while (sq->live && sq->fwd != sq->tail) {
		u32 n = (sq->tail > sq->fwd ? sq->tail : sq->size) - sq->fwd;
		u32 i;

		n = min_t(u32, n, sizeof(c->q[0].ent) / NVMP_SQE_SIZE);
		if (gread(c, qid, sq->base + (u64)sq->fwd * NVMP_SQE_SIZE, buf,
			  n * NVMP_SQE_SIZE)) {
			/* the device cannot fetch them either */
			sq->fwd = sq->tail;
			break;
		}
		for (i = 0; i < n; i++)
			decode(c, qid, (const struct nvmp_sqe *)
			       (buf + i * NVMP_SQE_SIZE), after);
		sq->fwd = (sq->fwd + n) % sq->size;
		/* a tail can hand over a queue of 8 MiB Reads: millions of marks */
		cond_resched();
	}
	ut_fold(c, qid);
}

/*
 * Can the model follow the queue a Create I/O SQ/CQ command made (@qid,
 * @other: the CQ of an SQ, else 0)? When it cannot, the device did it
 * anyway: the model is untracked from now on.
 */
static bool create_followed(struct nvmp_ctrl *c, const struct nvmp_pending *p,
			    u16 qid, u16 other)
{
	u32 size = (p->cdw10 >> 16) + 1;

	if (!qid)
		return false;
	if (qid >= NVMP_MAX_QID || other >= NVMP_MAX_QID)
		c->untracked |= NVMP_UT_QID;
	else if (size > NVMP_MAX_QSIZE)
		c->untracked |= NVMP_UT_QSIZE;
	else if (!(p->cdw11 & 0x1))
		c->untracked |= NVMP_UT_NONCONTIG;
	else
		return true;
	return false;
}

static void create_cq(struct nvmp_ctrl *c, const struct nvmp_pending *p)
{
	u16 qid = p->cdw10 & 0xffff;
	struct nvmp_cq *cq;

	if (!create_followed(c, p, qid, 0))
		return;
	cq = &c->cq[qid];
	memset(cq, 0, sizeof(*cq));
	cq->base = p->prp1;
	cq->size = (p->cdw10 >> 16) + 1;
	cq->ien = !!(p->cdw11 & 0x2);
	cq->iv = p->cdw11 >> 16;
	cq->live = 1;
}

static void create_sq(struct nvmp_ctrl *c, const struct nvmp_pending *p)
{
	u16 qid = p->cdw10 & 0xffff, cqid = p->cdw11 >> 16;
	struct nvmp_sq *sq;

	if (!create_followed(c, p, qid, cqid))
		return;
	if (!c->cq[cqid].live)	/* the device refused it too */
		return;
	sq = &c->sq[qid];
	memset(sq, 0, sizeof(*sq));
	sq->base = p->prp1;
	sq->size = (p->cdw10 >> 16) + 1;
	sq->cqid = cqid;
	sq->prio = (p->cdw11 >> 1) & 0x3;
	sq->live = 1;
}

static void delete_sq(struct nvmp_ctrl *c, u16 qid)
{
	struct nvmp_sq *sq;
	struct nvmp_cq *cq;

	if (!qid || qid >= NVMP_MAX_QID || !c->sq[qid].live)
		return;
	sq = &c->sq[qid];
	cq = &c->cq[sq->cqid];
	/*
	 * Commands still in it are aborted, and the device may or may not
	 * post their completions: from here on the slot count of its CQ is
	 * a guess, unless nothing was outstanding.
	 */
	if (cq->issued - cq->consumed)
		c->untracked |= NVMP_UT_CQ_LOST;
	trk_drop_sq(c, qid);
	memset(sq, 0, sizeof(*sq));
}

static void set_feature(struct nvmp_ctrl *c, const struct nvmp_pending *p,
			u32 result)
{
	u8 fid = p->cdw10 & 0xff;
	unsigned int i;

	for (i = 0; i < NVMP_FEAT_NR; i++) {
		if (feat_fid[i] != fid)
			continue;
		/* Number of Queues: what the device granted counts */
		c->feat[i] = fid == 0x07 ? result : p->cdw11;
		c->feat_set |= 1u << i;
		return;
	}
	switch (fid) {
	case FID_IV_CFG:
		i = p->cdw11 & 0xffff;
		if (i < NVMP_MAX_VEC) {
			c->iv_cfg[i] = p->cdw11;
			c->iv_cfg_set |= 1u << i;
		} else {
			c->untracked |= NVMP_UT_FEATURE;
		}
		break;
	case FID_TEMP_THRESH:
	case FID_TIMESTAMP:
	case FID_KATO:
	case FID_SW_PROGRESS:
		break;
	default:
		c->untracked |= NVMP_UT_FEATURE;
		break;
	}
}

/*
 * @len bytes at @off of an Identify's 4 KiB of data, where the device wrote
 * them: from PRP1 (with its offset) to the end of its page, then PRP2.
 */
static int id_read(struct nvmp_ctrl *c, const struct nvmp_pending *p,
		   u32 off, void *buf, u32 len)
{
	u32 psz = page_size(c), first = psz - (p->prp1 & (psz - 1)), n = 0;

	if (off < first) {
		n = min_t(u32, len, first - off);
		if (gread(c, 0, p->prp1 + off, buf, n))
			return -EFAULT;
	}
	if (n < len && gread(c, 0, p->prp2 + (off + n - first),
			     (u8 *)buf + n, len - n))
		return -EFAULT;
	return 0;
}

static void ns_forget(struct nvmp_ctrl *c, u32 nsid)
{
	const struct nvmp_ns *ns = ns_find(c, nsid);

	if (ns)
		c->ns[ns - c->ns] = c->ns[--c->nr_ns];
}

/*
 * Identify Namespace data: NSZE (byte 0), NLBAF (byte 25), FLBAS (byte
 * 26) and LBA formats (byte 128). Read when the guest releases the
 * completion, which may be after its driver parsed and freed the buffer:
 * data that is not a namespace's (NSZE 0, a format index past NLBAF, LBADS
 * outside 9 to 16: a zeroed or reused buffer) leaves the namespace
 * unknown, marked at its largest, rather than guessed.
 */
static void identify_done(struct nvmp_ctrl *c, const struct nvmp_pending *p)
{
	struct nvmp_ns *ns = NULL;
	u32 nsid = p->nsid;
	u8 hdr[27], fmt[4];
	unsigned int i, idx;
	__le64 le;
	u64 nsze;

	if ((p->cdw10 & 0xff) != 0x00 || !nsid || nsid == 0xffffffff)
		return;
	if (id_read(c, p, 0, hdr, sizeof(hdr)))
		return;
	idx = (hdr[26] & 0xf) | ((hdr[26] >> 1) & 0x30);
	memcpy(&le, hdr, sizeof(le));
	nsze = le64_to_cpu(le);
	if (!nsze || hdr[25] > 63 || idx > hdr[25] ||
	    id_read(c, p, 128 + 4 * idx, fmt, sizeof(fmt)) ||
	    fmt[2] < 9 || fmt[2] > 16) {
		ns_forget(c, nsid);
		return;
	}
	for (i = 0; i < c->nr_ns; i++)
		if (c->ns[i].nsid == nsid)
			ns = &c->ns[i];
	if (!ns) {
		if (c->nr_ns == NVMP_MAX_NS) {
			c->untracked |= NVMP_UT_NS;
			return;
		}
		ns = &c->ns[c->nr_ns++];
		ns->nsid = nsid;
	}
	ns->lba_shift = fmt[2];
	/* metadata in a separate buffer unless FLBAS bit 4 (extended) */
	ns->ms = fmt[0] | (fmt[1] << 8);
	ns->ext = ns->ms && (hdr[26] & 0x10);
	ns->nsze = nsze;
}

static void admin_done(struct nvmp_ctrl *c, const struct nvmp_cqe *e)
{
	u16 cid = le16_to_cpu(e->cid);
	bool ok = !(le16_to_cpu(e->status) >> 1);
	struct nvmp_pending *p = NULL;
	unsigned int i;

	if (aer_done(c, cid))
		return;
	/* the oldest command with this id (pending_add()) */
	for (i = 0; i < NVMP_MAX_PENDING; i++) {
		struct nvmp_pending *q = &c->pending[i];

		if (q->used && q->cid == cid &&
		    (!p || (s32)(q->seq - p->seq) < 0))
			p = q;
	}
	if (!p)
		return;
	p->used = 0;
	if (!ok)
		return;
	switch (p->opcode) {
	case ADM_CREATE_CQ:
		create_cq(c, p);
		break;
	case ADM_CREATE_SQ:
		create_sq(c, p);
		break;
	case ADM_DELETE_SQ:
		delete_sq(c, p->cdw10 & 0xffff);
		break;
	case ADM_DELETE_CQ:
		if ((p->cdw10 & 0xffff) &&
		    (p->cdw10 & 0xffff) < NVMP_MAX_QID)
			memset(&c->cq[p->cdw10 & 0xffff], 0,
			       sizeof(c->cq[0]));
		break;
	case ADM_SET_FEAT:
		set_feature(c, p, le32_to_cpu(e->result));
		break;
	case ADM_IDENTIFY:
		identify_done(c, p);
		break;
	default:
		if (!admin_tracked(p->opcode)) {
			c->last_unmediated = p->opcode;
			c->untracked |= NVMP_UT_ADMIN;
		}
		break;
	}
}

/* Is anything in the store, or lost by it (under the model lock)? */
static bool trk_any(struct nvmp_ctrl *c)
{
	bool any;

	mlock(c);
	any = c->trk.live != 0 || c->trk.nr_lost != 0;
	munlock(c);
	return any;
}

/*
 * The guest released CQ @qid entries up to @head: apply admin completions.
 * @head and @consumed are the pair's own; @issued (SQs may share the CQ),
 * the store and the counters are read and changed under the model lock.
 */
static int cq_release(struct nvmp_ctrl *c, u16 qid, u32 head)
{
	struct nvmp_cq *cq = &c->cq[qid];
	u32 n = (head + cq->size - cq->head) % cq->size;
	const struct nvmp_cqe *e = (const struct nvmp_cqe *)c->q[qid].ent;
	bool bad;

	mlock(c);
	bad = head >= cq->size || n > cq->issued - cq->consumed;
	if (bad)
		c->bad_doorbells++;
	munlock(c);
	if (bad)
		return -EINVAL;
	/* what completed: admin effects, and commands the store keeps */
	while (cq->head != head && (qid == 0 || trk_any(c))) {
		u32 k = min_t(u32, (head + cq->size - cq->head) % cq->size,
			      cq->size - cq->head);
		u32 i;

		k = min_t(u32, k, sizeof(c->q[0].ent) / NVMP_CQE_SIZE);
		if (gread(c, qid, cq->base + (u64)cq->head * NVMP_CQE_SIZE,
			  c->q[qid].ent, k * NVMP_CQE_SIZE))
			break;
		mlock(c);
		for (i = 0; i < k; i++) {
			u16 sqid = le16_to_cpu(e[i].sq_id);
			u16 cid = le16_to_cpu(e[i].cid);

			/* a completion naming an SQ of another CQ ends nothing */
			if (sqid < NVMP_MAX_QID && c->sq[sqid].live &&
			    c->sq[sqid].cqid == qid) {
				trk_end(c, sqid, cid, cq->consumed + i);
				if (c->trk.nr_lost)
					trk_lost_end(c, sqid, cid,
						     cq->consumed + i);
			}
			/* one a settle applied when it was posted: done */
			if (qid == 0 && cq->consumed + i >= c->admin_settled)
				admin_done(c, &e[i]);
		}
		munlock(c);
		cq->head = (cq->head + k) % cq->size;
		/* read by the doorbells of other SQs on this CQ (decode()) */
		WRITE_ONCE(cq->consumed, cq->consumed + k);
	}
	WRITE_ONCE(cq->consumed,
		   cq->consumed + (head + cq->size - cq->head) % cq->size);
	cq->head = head;
	ut_fold(c, qid);
	return 0;
}

/* A doorbell the device ignores: counted, under the model lock. */
static int bad_doorbell(struct nvmp_ctrl *c, u32 ut)
{
	mlock(c);
	if (ut)
		c->untracked |= ut;
	else
		c->bad_doorbells++;
	munlock(c);
	return -EINVAL;
}

u16 nvmp_doorbell_queue(const struct nvmp_ctrl *c, u32 off)
{
	u32 idx;

	if (off < NVMP_REG_DBS || !c->enabled || !c->db_stride ||
	    (off - NVMP_REG_DBS) % c->db_stride)
		return 0;
	idx = (off - NVMP_REG_DBS) / c->db_stride;
	return idx / 2 < NVMP_MAX_QID ? idx / 2 : 0;
}

int nvmp_doorbell(struct nvmp_ctrl *c, u32 off, u32 val, bool forward)
{
	u32 idx = (off - NVMP_REG_DBS) / c->db_stride;
	u16 qid = idx / 2;
	struct nvmp_sq *sq;

	if (off < NVMP_REG_DBS || (off - NVMP_REG_DBS) % c->db_stride ||
	    !c->enabled)
		return bad_doorbell(c, 0);
	if (qid >= NVMP_MAX_QID)
		return bad_doorbell(c, NVMP_UT_QID);
	if (idx & 1) {
		if (!c->cq[qid].live)
			return bad_doorbell(c, 0);
		return cq_release(c, qid, val);
	}
	sq = &c->sq[qid];
	/*
	 * A tail rung on an SQ whose creation completed before the guest
	 * released that completion (a driver woken by the completion rings
	 * the new queue before its interrupt handler writes the admin CQ's
	 * head): the device fetches from it, so the model applies the admin
	 * completions posted so far, the creation among them, and decodes
	 * the tail (device-wide, model.h).
	 */
	if (!sq->live && qid && nvmp_sq_creating(c, qid))
		nvmp_settle(c);
	if (!sq->live || val >= sq->size)
		return bad_doorbell(c, 0);
	sq->tail = val;
	if (forward)
		nvmp_forward(c, qid);
	return 0;
}

static void count_aers(struct nvmp_ctrl *c, u64 pos, const struct nvmp_cqe *e,
		       void *arg)
{
	u64 *aers = arg;
	unsigned int i;

	for (i = 0; i < c->nr_aer; i++)
		*aers += c->aer_cid[i] == le16_to_cpu(e->cid);
}

u64 nvmp_outstanding(struct nvmp_ctrl *c)
{
	u64 total = 0;
	unsigned int q;

	for (q = 0; q < NVMP_MAX_QID; q++) {
		struct nvmp_cq *cq = &c->cq[q];
		u64 aers_posted = 0, posted, owed;

		if (!cq->live)
			continue;
		/* AERs among the admin CQ's posted ones */
		posted = cq_walk_posted(c, q, q ? NULL : count_aers,
					&aers_posted);
		owed = cq->issued - cq->consumed - posted;
		/* AERs waiting for an event do not count */
		if (q == 0 && aers_posted < c->nr_aer)
			owed -= min_t(u64, owed, c->nr_aer - aers_posted);
		total += owed;
	}
	ut_fold(c, 0);
	return total;
}

static void settle_one(struct nvmp_ctrl *c, u64 pos, const struct nvmp_cqe *e,
		       void *arg)
{
	admin_done(c, e);
}

/*
 * Apply the admin completions posted and not applied yet: from the first
 * not settled (@admin_settled, not before the guest's head) while the
 * phase tags say posted, at most what was handed over. Each is applied
 * once, here or at its release (cq_release()).
 */
void nvmp_settle(struct nvmp_ctrl *c)
{
	struct nvmp_cq *cq = &c->cq[0];

	if (!cq->live)
		return;
	c->admin_settled = cq_walk(c, 0, cq,
				   max_t(u64, cq->consumed, c->admin_settled),
				   min_t(u64, cq->issued,
					 cq->consumed + cq->size),
				   settle_one, NULL);
	ut_fold(c, 0);
}
