// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig profile "nvme": restore of the state record onto a controller.
 *
 * A controller's queue positions cannot be written: enabling it puts the
 * admin queue at slot 0 and creating a queue puts it at slot 0, and only
 * commands move them. The restore therefore drives the target through the
 * guest's own queues, with the target VM stopped:
 *
 *  1. save the memory of every queue of the record (@buf);
 *  2. program AQA/ASQ/ACQ and CC as the guest did, wait for CSTS.RDY;
 *  3. through the admin queue: Set Features as the guest set them; for
 *     each CQ, create it and one of its SQs, pump Flush commands through
 *     that SQ until the CQ's completion count has the record's slot and
 *     phase (counting the Flushes step 4 adds), delete and re-create that
 *     SQ; create the other SQs;
 *  4. advance every SQ to the record's head with Flush commands;
 *  5. hand the waiting AERs over again with their command ids, then pad
 *     the admin queue with Get Features (Number of Queues) until its
 *     command count is the record's modulo what both admin queue sizes
 *     see (the pad's last completion also shows the AERs were fetched);
 *  6. release completions up to the guest's CQ heads only: the ones the
 *     guest had not consumed stay posted;
 *  7. write the saved queue memory back: the guest finds its own entries.
 *
 * Every command of steps 3-5 is written over a slot the device has already
 * consumed on the source (or will overwrite anyway) and step 7 puts the
 * guest's bytes back, so no guest command runs twice and no completion the
 * guest has not consumed is lost. The count of commands is bounded by the
 * queue sizes (nvmp_state_check() bounds the admin pad).
 */
#include <linux/bits.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/types.h>
#include <asm/byteorder.h>

#include "model.h"
#include "state.h"

#define NVMP_CSTS_RDY		0x1
#define NVMP_CSTS_CFS		0x2

struct rs_queue {
	u64 n;		/* completions the device posted on this CQ */
	u64 released;	/* completions released by a head doorbell */
	u64 final;	/* n at the end of the restore */
	u64 keep;	/* completions the guest had not consumed */
	u16 tail;	/* SQ tail written to the device */
};

struct rs {
	struct nvmp_ctrl *c;
	const struct nvmp_state *st;
	const struct nvmp_dev *dev;
	struct rs_queue q[NVMP_MAX_QID];
	u32 flush_nsid;
	u16 cid;
	bool saved;	/* the guest's queue memory is in the buffer */
	const char **why;
};

static u16 sq_size(const struct rs *r, u16 q)
{
	return le16_to_cpu(r->st->q[q].sq_size);
}

static u16 cq_size(const struct rs *r, u16 q)
{
	return le16_to_cpu(r->st->q[q].cq_size);
}

static u16 sq_cqid(const struct rs *r, u16 q)
{
	return le16_to_cpu(r->st->q[q].sq_cqid);
}

/* Is @cid one of the guest's AERs the record hands over? */
static bool aer_cid(const struct rs *r, u16 cid)
{
	u32 i, nr = min_t(u32, le32_to_cpu(r->st->nr_aer), NVMP_MAX_AER);

	for (i = 0; i < nr; i++)
		if (le16_to_cpu(r->st->aer_cid[i]) == cid)
			return true;
	return false;
}

/* Write @nr copies of the SQE @cmd to SQ @q and ring its doorbell. */
static int submit(struct rs *r, u16 q, const u32 *cmd, u32 nr)
{
	u64 base = le64_to_cpu(r->st->q[q].sq_base);
	__le32 sqe[16];
	u32 i, j;

	for (i = 0; i < nr; i++) {
		for (j = 0; j < 16; j++)
			sqe[j] = cpu_to_le32(cmd[j]);
		/*
		 * command ids of our own: the guest never sees them; none
		 * equal to an AER's the restore hands over (unique while
		 * outstanding, on the admin queue)
		 */
		do {
			r->cid++;
		} while (q == 0 && aer_cid(r, r->cid));
		sqe[0] = cpu_to_le32((cmd[0] & 0xffff) | (u32)r->cid << 16);
		if (r->dev->write(r->dev->ctx, base + (u64)r->q[q].tail *
				  NVMP_SQE_SIZE, sqe, sizeof(sqe))) {
			*r->why = "writing a queue entry";
			return -EFAULT;
		}
		r->q[q].tail = (r->q[q].tail + 1) % sq_size(r, q);
	}
	r->dev->wr(r->dev->ctx, nvmp_db_offset(r->c, q, false), r->q[q].tail,
		   4);
	return 0;
}

/* Release CQ @q's completions up to what the end state allows. */
static void release(struct rs *r, u16 q)
{
	struct rs_queue *rq = &r->q[q];
	u64 to = min_t(u64, rq->n, rq->final - rq->keep);

	if (to == rq->released)
		return;
	rq->released = to;
	r->dev->wr(r->dev->ctx, nvmp_db_offset(r->c, q, true),
		   to % cq_size(r, q), 4);
}

/*
 * Wait for @nr completions on CQ @q; the status of the last is returned in
 * *@status (admin commands are sent one at a time). Releases as it goes.
 */
static int reap(struct rs *r, u16 q, u32 nr, u16 *status)
{
	u64 base = le64_to_cpu(r->st->q[q].cq_base);
	struct rs_queue *rq = &r->q[q];
	int ret;

	while (nr) {
		u16 slot = rq->n % cq_size(r, q);
		bool phase = !((rq->n / cq_size(r, q)) & 1);
		__le16 st;

		if (r->c->env.read(r->c->env.ctx, base + (u64)slot *
				   NVMP_CQE_SIZE + 14, &st, sizeof(st))) {
			*r->why = "reading a completion";
			return -EFAULT;
		}
		if ((le16_to_cpu(st) & 1) != phase) {
			if (r->dev->rd(r->dev->ctx, NVMP_REG_CSTS, 4) &
			    NVMP_CSTS_CFS) {
				*r->why = "controller fatal status";
				return -EIO;
			}
			ret = r->dev->wait(r->dev->ctx);
			if (ret) {
				*r->why = "waiting for a completion";
				return ret;
			}
			continue;
		}
		if (status)
			*status = le16_to_cpu(st) >> 1;
		rq->n++;
		nr--;
		release(r, q);
	}
	return 0;
}

static int admin(struct rs *r, u32 opc, u32 nsid, u64 prp1, u32 cdw10,
		 u32 cdw11, const char *what)
{
	u32 cmd[16] = { opc, nsid };
	u16 status = 0;
	int ret;

	cmd[6] = (u32)prp1;
	cmd[7] = (u32)(prp1 >> 32);
	cmd[10] = cdw10;
	cmd[11] = cdw11;
	ret = submit(r, 0, cmd, 1);
	if (!ret)
		ret = reap(r, 0, 1, &status);
	if (!ret && status) {
		*r->why = what;
		ret = -EIO;
	}
	return ret;
}

/* @nr Flush commands through SQ @q, in batches the queues can hold. */
static int pump(struct rs *r, u16 q, u64 nr)
{
	u32 cmd[16] = { 0x00, r->flush_nsid };
	u16 cq = sq_cqid(r, q);

	while (nr) {
		struct rs_queue *c = &r->q[cq];
		u64 room = cq_size(r, cq) - 1 - (c->n - c->released);
		u32 b = min_t(u64, nr, min_t(u64, room, sq_size(r, q) - 1));
		int ret;

		if (!b) {
			*r->why = "completion queue full";
			return -EIO;
		}
		ret = submit(r, q, cmd, b);
		if (!ret)
			ret = reap(r, cq, b, NULL);
		if (ret)
			return ret;
		nr -= b;
	}
	return 0;
}

static int set_features(struct rs *r)
{
	static const u8 fid[NVMP_FEAT_NR] = {
		[NVMP_FEAT_ARB] = 0x01, [NVMP_FEAT_PM] = 0x02,
		[NVMP_FEAT_ERR_REC] = 0x05, [NVMP_FEAT_VWC] = 0x06,
		[NVMP_FEAT_NQ] = 0x07, [NVMP_FEAT_IRQ_COAL] = 0x08,
		[NVMP_FEAT_WR_ATOMIC] = 0x0a, [NVMP_FEAT_AEC] = 0x0b,
	};
	const struct nvmp_state *st = r->st;
	unsigned int i;
	int ret;

	for (i = 0; i < NVMP_FEAT_NR; i++) {
		if (!(le32_to_cpu(st->feat_set) & BIT(i)))
			continue;
		ret = admin(r, 0x09, 0, 0, fid[i], le32_to_cpu(st->feat[i]),
			    "Set Features");
		if (ret)
			return ret;
	}
	for (i = 0; i < NVMP_MAX_VEC; i++) {
		if (!(le32_to_cpu(st->iv_cfg_set) & BIT(i)))
			continue;
		ret = admin(r, 0x09, 0, 0, 0x09, le32_to_cpu(st->iv_cfg[i]),
			    "Set Features (interrupt vector configuration)");
		if (ret)
			return ret;
	}
	return 0;
}

static int create_sq(struct rs *r, u16 q)
{
	const struct nvmp_state_q *s = &r->st->q[q];

	r->q[q].tail = 0;
	return admin(r, 0x01, 0, le64_to_cpu(s->sq_base),
		     (u32)(sq_size(r, q) - 1) << 16 | q,
		     (u32)sq_cqid(r, q) << 16 | (u32)s->sq_prio << 1 | 1,
		     "Create I/O Submission Queue");
}

/* Steps 3 and 4 for CQ @cq and its SQs. */
static int io_queues(struct rs *r, u16 cq)
{
	const struct nvmp_state_q *s = &r->st->q[cq];
	struct rs_queue *rq = &r->q[cq];
	u64 heads = 0, period = 2ull * cq_size(r, cq), want, pad;
	int first = -1, ret;
	u16 q;

	ret = admin(r, 0x05, 0, le64_to_cpu(s->cq_base),
		    (u32)(cq_size(r, cq) - 1) << 16 | cq,
		    (u32)le16_to_cpu(s->cq_iv) << 16 |
		    ((s->flags & NVMP_QF_IEN) ? 2 : 0) | 1,
		    "Create I/O Completion Queue");
	if (ret)
		return ret;
	for (q = 1; q < NVMP_MAX_QID; q++) {
		if (!(r->st->q[q].flags & NVMP_QF_SQ) || sq_cqid(r, q) != cq)
			continue;
		if (first < 0)
			first = q;
		heads += le16_to_cpu(r->st->q[q].sq_head);
	}
	/* the record's count, as slot and phase say it, modulo 2 x size */
	want = le16_to_cpu(s->cq_tail) +
	       ((s->flags & NVMP_QF_PHASE) ? 0 : cq_size(r, cq));
	pad = (want + period - heads % period) % period;
	rq->keep = (le16_to_cpu(s->cq_tail) + cq_size(r, cq) -
		    le16_to_cpu(s->cq_head)) % cq_size(r, cq);
	/* the completions the guest had not consumed are the last ones */
	if (pad + heads < rq->keep)
		pad += period;
	rq->final = pad + heads;
	if (first < 0) {
		/* a CQ with no SQ: no command can reach it */
		if (pad) {
			*r->why = "CQ position without an SQ to reach it";
			return -EINVAL;
		}
		return 0;
	}
	if (pad) {
		ret = create_sq(r, first);
		if (!ret)
			ret = pump(r, first, pad);
		if (!ret)
			ret = admin(r, 0x00, 0, 0, first, 0,
				    "Delete I/O Submission Queue");
		if (ret)
			return ret;
	}
	for (q = 1; q < NVMP_MAX_QID; q++) {
		if (!(r->st->q[q].flags & NVMP_QF_SQ) || sq_cqid(r, q) != cq)
			continue;
		ret = create_sq(r, q);
		if (!ret)
			ret = pump(r, q, le16_to_cpu(r->st->q[q].sq_head));
		if (ret)
			return ret;
	}
	return 0;
}

/* Hand the waiting AERs over again, with the guest's command ids. */
static int resubmit_aers(struct rs *r)
{
	const struct nvmp_state *st = r->st;
	u64 base = le64_to_cpu(st->asq);
	u32 i, nr = le32_to_cpu(st->nr_aer);

	for (i = 0; i < nr; i++) {
		__le32 sqe[16] = { 0 };

		/* its completion will name the guest's command id */
		sqe[0] = cpu_to_le32(0x0c |
				     (u32)le16_to_cpu(st->aer_cid[i]) << 16);
		if (r->dev->write(r->dev->ctx, base + (u64)r->q[0].tail *
				  NVMP_SQE_SIZE, sqe, sizeof(sqe))) {
			*r->why = "writing a queue entry";
			return -EFAULT;
		}
		r->q[0].tail = (r->q[0].tail + 1) % sq_size(r, 0);
	}
	if (nr)
		r->dev->wr(r->dev->ctx, nvmp_db_offset(r->c, 0, false),
			   r->q[0].tail, 4);
	return 0;
}

/*
 * Step 5: the AERs, then the pad that brings the admin queue's count to
 * the record's. The pad comes last: its completions are the ones the guest
 * had not consumed (held back), and the last of them shows that the device
 * fetched the AERs (it fetches in order) before the queue memory is put
 * back over their entries.
 */
static int admin_position(struct rs *r)
{
	const struct nvmp_state *st = r->st;
	u64 period = nvmp_admin_period(st);
	u64 nr_aer = le32_to_cpu(st->nr_aer), done, pad, i;
	u32 getf[16] = { 0x0a };
	int ret;

	done = r->q[0].n;	/* every admin command so far completed */
	pad = (le64_to_cpu(st->admin_issued) - nr_aer + period -
	       done % period) % period;
	r->q[0].keep = (le16_to_cpu(st->q[0].cq_tail) + cq_size(r, 0) -
			le16_to_cpu(st->q[0].cq_head)) % cq_size(r, 0);
	if (pad < r->q[0].keep || (nr_aer && !pad))
		pad += period;
	r->q[0].final = done + pad;
	ret = resubmit_aers(r);
	getf[10] = 0x07;
	for (i = 0; !ret && i < pad; i++) {
		ret = submit(r, 0, getf, 1);
		if (!ret)
			ret = reap(r, 0, 1, NULL);
	}
	return ret;
}

static size_t rings_size(const struct nvmp_state *st)
{
	size_t n = 0;
	unsigned int q;

	for (q = 0; q < NVMP_MAX_QID; q++) {
		if (st->q[q].flags & NVMP_QF_SQ)
			n += (size_t)le16_to_cpu(st->q[q].sq_size) *
			     NVMP_SQE_SIZE;
		if (st->q[q].flags & NVMP_QF_CQ)
			n += (size_t)le16_to_cpu(st->q[q].cq_size) *
			     NVMP_CQE_SIZE;
	}
	return n;
}

size_t nvmp_restore_buf_size(const struct nvmp_state *st)
{
	return rings_size(st) + sizeof(struct rs);
}

/* Save (@put false) or write back (@put true) every queue's memory. */
static int queue_memory(struct rs *r, u8 *buf, bool put)
{
	const struct nvmp_state *st = r->st;
	unsigned int q, k;

	for (q = 0; q < NVMP_MAX_QID; q++) {
		for (k = 0; k < 2; k++) {
			u32 flag = k ? NVMP_QF_CQ : NVMP_QF_SQ;
			u64 base = k ? le64_to_cpu(st->q[q].cq_base) :
				       le64_to_cpu(st->q[q].sq_base);
			u32 len = k ? cq_size(r, q) * NVMP_CQE_SIZE :
				      sq_size(r, q) * NVMP_SQE_SIZE;
			int ret;

			if (!(st->q[q].flags & flag))
				continue;
			if (put)
				ret = r->dev->write(r->dev->ctx, base, buf,
						    len);
			else
				ret = r->c->env.read(r->c->env.ctx, base, buf,
						     len);
			if (ret) {
				*r->why = put ? "writing queue memory back" :
						"reading queue memory";
				return ret;
			}
			buf += len;
		}
	}
	return 0;
}

/*
 * Zero every CQ (saved already): a completion is seen by its phase bit,
 * and the source's entries there carry phases of their own.
 */
static int clear_cqs(struct rs *r)
{
	static const u8 zero[512];
	unsigned int q;

	for (q = 0; q < NVMP_MAX_QID; q++) {
		u64 base = le64_to_cpu(r->st->q[q].cq_base);
		u32 len, off, n;

		if (!(r->st->q[q].flags & NVMP_QF_CQ))
			continue;
		len = cq_size(r, q) * NVMP_CQE_SIZE;
		for (off = 0; off < len; off += n) {
			n = min_t(u32, len - off, sizeof(zero));
			if (r->dev->write(r->dev->ctx, base + off, zero, n)) {
				*r->why = "clearing a completion queue";
				return -EFAULT;
			}
		}
	}
	return 0;
}

static int wait_ready(struct rs *r, bool rdy)
{
	for (;;) {
		u32 csts = r->dev->rd(r->dev->ctx, NVMP_REG_CSTS, 4);
		int ret;

		if (!!(csts & NVMP_CSTS_RDY) == rdy)
			return 0;
		/* a controller that failed never becomes ready */
		if (rdy && (csts & NVMP_CSTS_CFS)) {
			*r->why = "controller fatal status";
			return -EIO;
		}
		ret = r->dev->wait(r->dev->ctx);
		if (ret) {
			*r->why = rdy ? "waiting for CSTS.RDY" :
					"waiting for CSTS.RDY to clear";
			return ret;
		}
	}
}

static int restore(struct rs *r, u8 *buf)
{
	const struct nvmp_state *st = r->st;
	const struct nvmp_dev *dev = r->dev;
	struct nvmp_ctrl *c = r->c;
	u32 cc = le32_to_cpu(st->cc), intms = le32_to_cpu(st->intms);
	unsigned int q;
	int ret;

	dev->wr(dev->ctx, NVMP_REG_CC, 0, 4);
	ret = wait_ready(r, false);
	if (ret)
		return ret;
	dev->wr(dev->ctx, NVMP_REG_AQA, le32_to_cpu(st->aqa), 4);
	dev->wr(dev->ctx, NVMP_REG_ASQ, le64_to_cpu(st->asq), 8);
	dev->wr(dev->ctx, NVMP_REG_ACQ, le64_to_cpu(st->acq), 8);
	if (intms)
		dev->wr(dev->ctx, NVMP_REG_INTMS, intms, 4);
	if (!(cc & NVMP_CC_EN)) {
		dev->wr(dev->ctx, NVMP_REG_CC, cc, 4);
		nvmp_load(c, st);
		return 0;
	}
	ret = queue_memory(r, buf, false);
	if (ret)
		return ret;
	r->saved = true;
	ret = clear_cqs(r);
	if (ret)
		return ret;
	dev->wr(dev->ctx, NVMP_REG_CC, cc, 4);
	ret = wait_ready(r, true);
	if (ret)
		return ret;
	/* admin completions are released as they come until the pad */
	r->q[0].final = ~0ull;
	ret = set_features(r);
	for (q = 1; !ret && q < NVMP_MAX_QID; q++)
		if (st->q[q].flags & NVMP_QF_CQ)
			ret = io_queues(r, q);
	if (!ret)
		ret = admin_position(r);
	if (ret)
		return ret;
	if (r->q[0].n - r->q[0].released != r->q[0].keep) {
		*r->why = "admin completion queue position";
		return -EIO;
	}
	ret = queue_memory(r, buf, true);
	if (ret)
		return ret;
	r->saved = false;
	nvmp_load(c, st);
	/*
	 * The completions the record says the guest has not consumed are in
	 * its memory, as the source's device posted them. A record that
	 * counts more would leave the model waiting for completions that
	 * never come, and the device unmigratable.
	 */
	if (nvmp_outstanding(c)) {
		*r->why = "completions the record counts are not in guest memory";
		return -EINVAL;
	}
	return 0;
}

/*
 * A failed restore leaves a disabled controller, on the device and in
 * the model alike (a model that waits for completions the device will
 * never post would refuse every later quiesce), and the guest's queue
 * memory as it found it. Best effort: the first error stays the one
 * reported.
 */
static void restore_undo(struct rs *r, u8 *buf)
{
	const struct nvmp_dev *dev = r->dev;
	const char *why = *r->why;

	dev->wr(dev->ctx, NVMP_REG_CC, 0, 4);
	/*
	 * The wait may already be spent (the restore's deadline, a BAR
	 * error): the memory goes back only once the controller reads
	 * disabled, so that no completion lands on it after.
	 */
	wait_ready(r, false);
	if (r->saved &&
	    !(dev->rd(dev->ctx, NVMP_REG_CSTS, 4) & NVMP_CSTS_RDY))
		queue_memory(r, buf, true);
	nvmp_reg_write(r->c, NVMP_REG_CC, 0, 4);
	*r->why = why;
}

int nvmp_restore(struct nvmp_ctrl *c, const struct nvmp_state *st,
		 const struct nvmp_dev *dev, void *buf, size_t len,
		 const char **why)
{
	struct rs *r;
	int ret;

	if (len < nvmp_restore_buf_size(st)) {
		*why = "restore buffer size";
		return -EINVAL;
	}
	/* the bookkeeping after the queue memory (a multiple of 16 bytes) */
	r = (struct rs *)((u8 *)buf + rings_size(st));
	memset(r, 0, sizeof(*r));
	r->c = c;
	r->st = st;
	r->dev = dev;
	r->why = why;
	r->flush_nsid = le32_to_cpu(st->nr_ns) ?
			le32_to_cpu(st->ns[0].nsid) : 0xffffffff;
	ret = restore(r, buf);
	if (ret)
		restore_undo(r, buf);
	return ret;
}
