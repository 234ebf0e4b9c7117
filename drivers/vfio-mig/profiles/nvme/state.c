// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig profile "nvme": the state record (state.h): save from the
 * source's model, check a record from the network, load it into the
 * target's model.
 */
#include <linux/bits.h>
#include <linux/errno.h>
#include <linux/stddef.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/types.h>
#include <asm/byteorder.h>

#include "model.h"
#include "state.h"

/* Positions of a CQ after @n completions: slot and phase of the next. */
static void cq_pos(u64 n, u16 size, u16 *tail, bool *phase)
{
	*tail = n % size;
	*phase = !((n / size) & 1);
}

int nvmp_save(struct nvmp_ctrl *c, struct nvmp_state *st)
{
	unsigned int q, i;

	/*
	 * Nothing owed first: the settle below applies admin completions the
	 * guest has not released (they may still change what is known) and
	 * so changes the model, which only a save that then goes on may do.
	 */
	if (nvmp_outstanding(c))
		return -EBUSY;
	if (c->untracked)
		return -EIO;
	nvmp_settle(c);
	if (c->untracked)
		return -EIO;
	memset(st, 0, sizeof(*st));
	st->version = cpu_to_le32(NVMP_STATE_VERSION);
	st->cc = cpu_to_le32(c->cc);
	st->aqa = cpu_to_le32(c->aqa);
	st->intms = cpu_to_le32(c->intms);
	st->asq = cpu_to_le64(c->asq);
	st->acq = cpu_to_le64(c->acq);
	if (!c->enabled)
		return 0;
	st->admin_issued = cpu_to_le64(c->cq[0].issued);
	/* only what the guest set: a value left from before a reset is not */
	for (i = 0; i < NVMP_FEAT_NR; i++)
		if (c->feat_set & BIT(i))
			st->feat[i] = cpu_to_le32(c->feat[i]);
	st->feat_set = cpu_to_le32(c->feat_set);
	for (i = 0; i < NVMP_MAX_VEC; i++)
		if (c->iv_cfg_set & BIT(i))
			st->iv_cfg[i] = cpu_to_le32(c->iv_cfg[i]);
	st->iv_cfg_set = cpu_to_le32(c->iv_cfg_set);
	st->nr_ns = cpu_to_le32(c->nr_ns);
	for (i = 0; i < c->nr_ns; i++) {
		st->ns[i].nsid = cpu_to_le32(c->ns[i].nsid);
		st->ns[i].ms = cpu_to_le16(c->ns[i].ms);
		st->ns[i].lba_shift = c->ns[i].lba_shift;
		st->ns[i].flags = c->ns[i].ext ? NVMP_NSF_EXT : 0;
	}
	st->nr_aer = cpu_to_le32(c->nr_aer);
	for (i = 0; i < c->nr_aer; i++)
		st->aer_cid[i] = cpu_to_le16(c->aer_cid[i]);
	for (q = 0; q < NVMP_MAX_QID; q++) {
		const struct nvmp_sq *sq = &c->sq[q];
		const struct nvmp_cq *cq = &c->cq[q];
		struct nvmp_state_q *s = &st->q[q];

		if (sq->live) {
			s->flags |= NVMP_QF_SQ;
			s->sq_base = cpu_to_le64(sq->base);
			s->sq_size = cpu_to_le16(sq->size);
			s->sq_cqid = cpu_to_le16(sq->cqid);
			s->sq_prio = sq->prio;
			/* quiesced: the device fetched all it was given */
			s->sq_head = cpu_to_le16(sq->fwd);
			s->sq_tail = cpu_to_le16(sq->tail);
		}
		if (cq->live) {
			/* every command given completed, but waiting AERs */
			u64 n = cq->issued - (q ? 0 : c->nr_aer);
			u16 tail;
			bool phase;

			cq_pos(n, cq->size, &tail, &phase);
			s->flags |= NVMP_QF_CQ | (cq->ien ? NVMP_QF_IEN : 0) |
				    (phase ? NVMP_QF_PHASE : 0);
			s->cq_base = cpu_to_le64(cq->base);
			s->cq_size = cpu_to_le16(cq->size);
			s->cq_iv = cpu_to_le16(cq->iv);
			s->cq_head = cpu_to_le16(cq->head);
			s->cq_tail = cpu_to_le16(tail);
		}
	}
	return 0;
}

static bool zero(const void *p, size_t n)
{
	const u8 *b = p;

	while (n--)
		if (*b++)
			return false;
	return true;
}

/* A field of a record is refused: say which. */
static int bad(const char **why, const char *field)
{
	*why = field;
	return -EINVAL;
}

static int check_queue(const struct nvmp_state *st, unsigned int q,
		       const struct nvmp_limits *lim, u64 ps, const char **why)
{
	const struct nvmp_state_q *s = &st->q[q];
	u16 max = min_t(u16, lim->mqes, NVMP_MAX_QSIZE);
	u16 size;

	if (s->flags & ~(NVMP_QF_SQ | NVMP_QF_CQ | NVMP_QF_IEN | NVMP_QF_PHASE))
		return bad(why, "queue flags");
	if (!zero(s->rsvd, sizeof(s->rsvd)))
		return bad(why, "queue reserved bytes");
	if (q > lim->nr_ioq && (s->flags & (NVMP_QF_SQ | NVMP_QF_CQ)))
		return bad(why, "queue id beyond the target's queues");
	if (s->flags & NVMP_QF_SQ) {
		size = le16_to_cpu(s->sq_size);
		if (size < 2 || (q && size > max) || size > NVMP_MAX_QSIZE)
			return bad(why, "SQ size");
		if (le64_to_cpu(s->sq_base) & (ps - 1))
			return bad(why, "SQ base alignment");
		if (le16_to_cpu(s->sq_head) >= size ||
		    le16_to_cpu(s->sq_tail) >= size)
			return bad(why, "SQ head or tail");
		if (le16_to_cpu(s->sq_cqid) >= NVMP_MAX_QID ||
		    !(st->q[le16_to_cpu(s->sq_cqid)].flags & NVMP_QF_CQ))
			return bad(why, "SQ's CQ");
		/* the admin SQ pairs with the admin CQ, an I/O SQ with an I/O CQ */
		if (!q != !le16_to_cpu(s->sq_cqid))
			return bad(why, "SQ's CQ (admin and I/O queues mixed)");
		if (s->sq_prio > 3)
			return bad(why, "SQ priority");
	} else if (s->sq_base || s->sq_size || s->sq_cqid || s->sq_head ||
		   s->sq_tail || s->sq_prio) {
		return bad(why, "fields of an SQ not created");
	}
	if (s->flags & NVMP_QF_CQ) {
		size = le16_to_cpu(s->cq_size);
		if (size < 2 || (q && size > max) || size > NVMP_MAX_QSIZE)
			return bad(why, "CQ size");
		if (le64_to_cpu(s->cq_base) & (ps - 1))
			return bad(why, "CQ base alignment");
		if (le16_to_cpu(s->cq_head) >= size ||
		    le16_to_cpu(s->cq_tail) >= size)
			return bad(why, "CQ head or tail");
		if (le16_to_cpu(s->cq_iv) >= lim->nr_vec)
			return bad(why, "CQ interrupt vector");
	} else if (s->cq_base || s->cq_size || s->cq_iv || s->cq_head ||
		   s->cq_tail || (s->flags & (NVMP_QF_IEN | NVMP_QF_PHASE))) {
		return bad(why, "fields of a CQ not created");
	}
	return 0;
}

/* The admin queue's positions follow from the count of admin commands. */
static int check_admin(const struct nvmp_state *st, const char **why)
{
	const struct nvmp_state_q *a = &st->q[0];
	u32 aqa = le32_to_cpu(st->aqa);
	u64 n = le64_to_cpu(st->admin_issued);
	u32 nr_aer = le32_to_cpu(st->nr_aer);
	u16 ssz = (aqa & 0xfff) + 1, csz = ((aqa >> 16) & 0xfff) + 1;
	u16 tail;
	bool phase;

	if (aqa & 0xf000f000)
		return bad(why, "AQA reserved bits");
	if (nvmp_admin_period(st) > NVMP_MAX_ADMIN_PERIOD)
		return bad(why, "admin queue sizes (positions not restorable)");
	if ((a->flags & (NVMP_QF_SQ | NVMP_QF_CQ)) !=
	    (NVMP_QF_SQ | NVMP_QF_CQ))
		return bad(why, "admin queues");
	if (le16_to_cpu(a->sq_size) != ssz || le16_to_cpu(a->cq_size) != csz ||
	    le64_to_cpu(a->sq_base) != le64_to_cpu(st->asq) ||
	    le64_to_cpu(a->cq_base) != le64_to_cpu(st->acq) || a->sq_cqid)
		return bad(why, "admin queues against AQA, ASQ, ACQ");
	if (n < nr_aer)
		return bad(why, "admin command count");
	if (n % ssz != le16_to_cpu(a->sq_head))
		return bad(why, "admin SQ head against the command count");
	cq_pos(n - nr_aer, csz, &tail, &phase);
	if (tail != le16_to_cpu(a->cq_tail) ||
	    phase != !!(a->flags & NVMP_QF_PHASE))
		return bad(why, "admin CQ tail against the command count");
	return 0;
}

int nvmp_state_check(const struct nvmp_state *st,
		     const struct nvmp_limits *lim, const char **why)
{
	u32 cc = le32_to_cpu(st->cc), nq, i;
	u64 ps;

	if (le32_to_cpu(st->version) != NVMP_STATE_VERSION)
		return bad(why, "version");
	/*
	 * CC as a guest runs a controller: no shutdown under way, round
	 * robin arbitration, nothing in the reserved bits (nor CRIME, which
	 * QEMU's controller lacks); the restore writes it as it is.
	 */
	if (cc & NVMP_CC_REFUSED)
		return bad(why, "CC: shutdown, arbitration or reserved bits");
	if (NVMP_CC_MPS(cc) < lim->mps_min || NVMP_CC_MPS(cc) > lim->mps_max)
		return bad(why, "CC.MPS");
	ps = 4096ull << NVMP_CC_MPS(cc);
	if (!(cc & NVMP_CC_EN)) {
		/* registers only: nothing else may be there */
		if (!zero(&st->admin_issued, sizeof(*st) -
			  offsetof(struct nvmp_state, admin_issued)))
			return bad(why, "state of a disabled controller");
		return 0;
	}
	if (NVMP_CC_IOSQES(cc) != 6 || NVMP_CC_IOCQES(cc) != 4)
		return bad(why, "CC.IOSQES or CC.IOCQES");
	if ((le64_to_cpu(st->asq) | le64_to_cpu(st->acq)) & (ps - 1))
		return bad(why, "ASQ or ACQ alignment");
	if (le32_to_cpu(st->feat_set) & ~(BIT(NVMP_FEAT_NR) - 1))
		return bad(why, "features set");
	/*
	 * A slot the record does not use is zero, as nvmp_save() leaves it:
	 * the record is canonical, what is restored is what is saved again.
	 */
	for (i = 0; i < NVMP_FEAT_NR; i++)
		if (!(le32_to_cpu(st->feat_set) & BIT(i)) && st->feat[i])
			return bad(why, "value of a feature not set");
	/*
	 * The pairs granted may be more than the model follows (QEMU grants
	 * all it has, whatever the driver asks): the queues created are
	 * checked below, and against the target's resources by the
	 * compatibility check. 65536 (0xffff, zero-based) is no count.
	 */
	if (le32_to_cpu(st->feat_set) & BIT(NVMP_FEAT_NQ)) {
		nq = le32_to_cpu(st->feat[NVMP_FEAT_NQ]);
		if ((nq & 0xffff) == 0xffff || (nq >> 16) == 0xffff)
			return bad(why, "number of queues");
	}
	for (i = 0; i < NVMP_MAX_VEC; i++) {
		if (!(le32_to_cpu(st->iv_cfg_set) & BIT(i))) {
			if (st->iv_cfg[i])
				return bad(why, "configuration of a vector not set");
			continue;
		}
		if ((le32_to_cpu(st->iv_cfg[i]) & 0xffff) != i ||
		    i >= lim->nr_vec)
			return bad(why, "interrupt vector configuration");
	}
	if (le32_to_cpu(st->nr_ns) > NVMP_MAX_NS)
		return bad(why, "namespaces");
	for (i = 0; i < le32_to_cpu(st->nr_ns); i++)
		if (st->ns[i].lba_shift < 9 || st->ns[i].lba_shift > 16 ||
		    !st->ns[i].nsid || (st->ns[i].flags & ~NVMP_NSF_EXT) ||
		    ((st->ns[i].flags & NVMP_NSF_EXT) && !st->ns[i].ms))
			return bad(why, "namespace format");
	if (!zero(&st->ns[le32_to_cpu(st->nr_ns)],
		  (NVMP_MAX_NS - le32_to_cpu(st->nr_ns)) * sizeof(st->ns[0])))
		return bad(why, "namespace slot beyond the namespaces");
	if (le32_to_cpu(st->nr_aer) > NVMP_MAX_AER)
		return bad(why, "AERs");
	if (!zero(&st->aer_cid[le32_to_cpu(st->nr_aer)],
		  (NVMP_MAX_AER - le32_to_cpu(st->nr_aer)) *
		  sizeof(st->aer_cid[0])))
		return bad(why, "AER slot beyond the AERs");
	for (i = 0; i < NVMP_MAX_QID; i++)
		if (check_queue(st, i, lim, ps, why))
			return -EINVAL;
	return check_admin(st, why);
}

void nvmp_load(struct nvmp_ctrl *c, const struct nvmp_state *st)
{
	unsigned int q, i;

	c->cc = le32_to_cpu(st->cc);
	c->aqa = le32_to_cpu(st->aqa);
	c->intms = le32_to_cpu(st->intms);
	c->asq = le64_to_cpu(st->asq);
	c->acq = le64_to_cpu(st->acq);
	memset(c->sq, 0, sizeof(c->sq));
	memset(c->cq, 0, sizeof(c->cq));
	memset(c->pending, 0, sizeof(c->pending));
	c->admin_settled = 0;
	/* nothing in flight on the target yet */
	nvmp_track_init(c, c->trk.r, c->trk.nr_r, c->trk.rec, c->trk.nr_rec,
			c->trk.hash);
	c->untracked = 0;
	c->enabled = !!(c->cc & NVMP_CC_EN);
	for (i = 0; i < NVMP_FEAT_NR; i++)
		c->feat[i] = le32_to_cpu(st->feat[i]);
	c->feat_set = le32_to_cpu(st->feat_set);
	for (i = 0; i < NVMP_MAX_VEC; i++)
		c->iv_cfg[i] = le32_to_cpu(st->iv_cfg[i]);
	c->iv_cfg_set = le32_to_cpu(st->iv_cfg_set);
	c->nr_ns = le32_to_cpu(st->nr_ns);
	for (i = 0; i < c->nr_ns; i++) {
		c->ns[i].nsid = le32_to_cpu(st->ns[i].nsid);
		c->ns[i].ms = le16_to_cpu(st->ns[i].ms);
		c->ns[i].lba_shift = st->ns[i].lba_shift;
		c->ns[i].ext = !!(st->ns[i].flags & NVMP_NSF_EXT);
	}
	c->nr_aer = le32_to_cpu(st->nr_aer);
	for (i = 0; i < c->nr_aer; i++)
		c->aer_cid[i] = le16_to_cpu(st->aer_cid[i]);
	for (q = 0; q < NVMP_MAX_QID; q++) {
		const struct nvmp_state_q *s = &st->q[q];
		struct nvmp_sq *sq = &c->sq[q];
		struct nvmp_cq *cq = &c->cq[q];

		if (s->flags & NVMP_QF_SQ) {
			sq->live = 1;
			sq->base = le64_to_cpu(s->sq_base);
			sq->size = le16_to_cpu(s->sq_size);
			sq->cqid = le16_to_cpu(s->sq_cqid);
			sq->prio = s->sq_prio;
			sq->fwd = le16_to_cpu(s->sq_head);
			sq->tail = le16_to_cpu(s->sq_tail);
		}
		if (s->flags & NVMP_QF_CQ) {
			u16 size = le16_to_cpu(s->cq_size);
			u16 tail = le16_to_cpu(s->cq_tail);
			u16 head = le16_to_cpu(s->cq_head);
			/* a count with the tail's slot and phase, >= size */
			u64 n = tail + ((s->flags & NVMP_QF_PHASE) ? 2 : 1) *
				(u64)size;

			cq->live = 1;
			cq->base = le64_to_cpu(s->cq_base);
			cq->size = size;
			cq->iv = le16_to_cpu(s->cq_iv);
			cq->ien = !!(s->flags & NVMP_QF_IEN);
			cq->head = head;
			cq->consumed = n - (tail + size - head) % size;
			cq->issued = n + (q ? 0 : c->nr_aer);
			/* the source's save applied what was posted */
			if (!q)
				c->admin_settled = n;
		}
	}
}
