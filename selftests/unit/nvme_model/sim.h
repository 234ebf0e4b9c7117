/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small NVMe controller simulator for the restore tests: registers,
 * doorbells, admin queue, I/O queue pairs, the admin commands the restore
 * and the test guest use, Flush/Read/Write, completions posted in order
 * with the phase bit, a full CQ stalling the fetch, AERs held. Commands run
 * when their doorbell is written. Guest memory is a flat buffer at an IOVA.
 */
#ifndef _NVME_SIM_H
#define _NVME_SIM_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define SIM_MAX_Q	16

struct sim_q {
	uint64_t base;
	uint16_t size, head, tail, cqid, iv;
	uint8_t live, ien, phase, prio;
};

struct sim {
	uint8_t *mem;
	uint64_t mem_base, mem_size;
	uint32_t cc, csts, aqa, intms;
	uint64_t asq, acq;
	struct sim_q sq[SIM_MAX_Q], cq[SIM_MAX_Q];
	uint32_t feat[256];
	uint8_t feat_set[256];
	uint32_t iv_cfg[64];
	uint16_t aer[8];
	int nr_aer;
	uint16_t nr_ioq, nr_vec;
	unsigned long cmds, admin_cmds, flushes, bad_db, waits;
	unsigned long dup_cid;	/* admin ids equal to an outstanding AER's */
	int wait_budget;
	int dead;		/* never becomes ready; 2: with CSTS.CFS */
	int lazy;		/* run commands at the next wait, not at once */
	uint16_t pending_db;	/* lazy: SQs with a tail written (bits) */
};

struct sim_sqe {
	uint32_t cdw0, nsid, cdw2, cdw3;
	uint64_t mptr, prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct sim_cqe {
	uint32_t result, rsvd;
	uint16_t sq_head, sq_id, cid, status;
};

static inline void *sim_at(struct sim *s, uint64_t iova, uint64_t len)
{
	if (iova < s->mem_base || iova + len > s->mem_base + s->mem_size)
		return NULL;
	return s->mem + (iova - s->mem_base);
}

static inline void sim_post(struct sim *s, uint16_t cqid, uint16_t sqid,
			    uint16_t cid, uint16_t status, uint32_t result)
{
	struct sim_q *cq = &s->cq[cqid];
	struct sim_cqe e = {
		.result = result, .sq_head = s->sq[sqid].head, .sq_id = sqid,
		.cid = cid, .status = (uint16_t)(status << 1 | cq->phase),
	};
	void *p = sim_at(s, cq->base + cq->tail * 16ull, 16);

	if (p)
		memcpy(p, &e, 16);
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase ^= 1;
	}
}

/* Execute an admin command; returns the status (-1: no completion). */
static inline int sim_admin(struct sim *s, const struct sim_sqe *c,
			    uint32_t *result)
{
	uint16_t qid = c->cdw10 & 0xffff, size = (c->cdw10 >> 16) + 1;
	uint8_t *id;

	s->admin_cmds++;
	switch (c->cdw0 & 0xff) {
	case 0x00:	/* Delete I/O SQ */
		if (!qid || qid > s->nr_ioq || !s->sq[qid].live)
			return 0x101;
		memset(&s->sq[qid], 0, sizeof(s->sq[qid]));
		return 0;
	case 0x01:	/* Create I/O SQ */
		if (!qid || qid > s->nr_ioq || s->sq[qid].live)
			return 0x101;
		if ((c->cdw11 >> 16) >= SIM_MAX_Q ||
		    !s->cq[c->cdw11 >> 16].live)
			return 0x100;
		if (size < 2 || !(c->cdw11 & 1))
			return 0x102;
		s->sq[qid] = (struct sim_q){ .base = c->prp1, .size = size,
			.cqid = c->cdw11 >> 16, .live = 1,
			.prio = (c->cdw11 >> 1) & 3 };
		return 0;
	case 0x04:	/* Delete I/O CQ */
		if (!qid || qid > s->nr_ioq || !s->cq[qid].live)
			return 0x101;
		memset(&s->cq[qid], 0, sizeof(s->cq[qid]));
		return 0;
	case 0x05:	/* Create I/O CQ */
		if (!qid || qid > s->nr_ioq || s->cq[qid].live)
			return 0x101;
		if ((c->cdw11 >> 16) >= s->nr_vec)
			return 0x108;
		if (size < 2 || !(c->cdw11 & 1))
			return 0x102;
		s->cq[qid] = (struct sim_q){ .base = c->prp1, .size = size,
			.iv = c->cdw11 >> 16, .ien = !!(c->cdw11 & 2),
			.live = 1, .phase = 1 };
		return 0;
	case 0x06:	/* Identify: namespace 1 has 512-byte blocks */
		id = sim_at(s, c->prp1, 4096);
		if (!id)
			return 0x4;
		memset(id, 0, 4096);
		if ((c->cdw10 & 0xff) == 0 && c->nsid == 1) {
			id[2] = 1;	/* NSZE: 65536 blocks */
			id[128 + 2] = 9;
		}
		return 0;
	case 0x09:	/* Set Features */
		if ((c->cdw10 & 0xff) == 0x07) {
			*result = (uint32_t)(s->nr_ioq - 1) << 16 |
				  (s->nr_ioq - 1);
			s->feat[7] = *result;
		} else if ((c->cdw10 & 0xff) == 0x09) {
			if ((c->cdw11 & 0xffff) >= s->nr_vec)
				return 0x2;
			s->iv_cfg[c->cdw11 & 0xffff] = c->cdw11;
		} else {
			s->feat[c->cdw10 & 0xff] = c->cdw11;
		}
		s->feat_set[c->cdw10 & 0xff] = 1;
		return 0;
	case 0x0a:	/* Get Features */
		*result = s->feat[c->cdw10 & 0xff];
		return 0;
	case 0x0c:	/* AER: completes on an event */
		if (s->nr_aer == 8)
			return 0x105;
		s->aer[s->nr_aer++] = c->cdw0 >> 16;
		return -1;
	default:
		return 0x1;
	}
}

static inline void sim_process(struct sim *s, uint16_t qid)
{
	struct sim_q *sq = &s->sq[qid];

	while (sq->live && sq->head != sq->tail) {
		struct sim_q *cq = &s->cq[sq->cqid];
		struct sim_sqe c;
		uint32_t result = 0;
		void *p;
		int st;

		if ((cq->tail + 1) % cq->size == cq->head)
			return;		/* CQ full: fetch later */
		p = sim_at(s, sq->base + sq->head * 64ull, 64);
		if (!p)
			return;
		memcpy(&c, p, 64);
		sq->head = (sq->head + 1) % sq->size;
		s->cmds++;
		if (!qid) {
			int i;

			/* an id must be unique among outstanding commands */
			for (i = 0; i < s->nr_aer; i++)
				s->dup_cid += s->aer[i] == c.cdw0 >> 16;
			st = sim_admin(s, &c, &result);
		} else {
			switch (c.cdw0 & 0xff) {
			case 0x00:
				s->flushes++;
				/* fall through */
			case 0x01:
			case 0x02:
				st = 0;
				break;
			default:
				st = 0x1;
			}
		}
		if (st >= 0)
			sim_post(s, sq->cqid, qid, c.cdw0 >> 16, (uint16_t)st,
				 result);
	}
}

static inline void sim_wr(void *ctx, uint32_t off, uint64_t val, uint8_t w)
{
	struct sim *s = ctx;
	uint32_t v = (uint32_t)val, idx;
	uint16_t q;

	switch (off) {
	case 0x0c:
		s->intms |= v;
		return;
	case 0x10:
		s->intms &= ~v;
		return;
	case 0x14:
		if ((v & 1) && !(s->cc & 1)) {
			memset(s->sq, 0, sizeof(s->sq));
			memset(s->cq, 0, sizeof(s->cq));
			s->cq[0] = (struct sim_q){ .base = s->acq,
				.size = ((s->aqa >> 16) & 0xfff) + 1,
				.live = 1, .ien = 1, .phase = 1 };
			s->sq[0] = (struct sim_q){ .base = s->asq,
				.size = (s->aqa & 0xfff) + 1, .live = 1 };
			if (!s->dead)
				s->csts |= 1;
			else if (s->dead == 2)
				s->csts |= 2;	/* CFS */
		} else if (!(v & 1)) {
			memset(s->sq, 0, sizeof(s->sq));
			memset(s->cq, 0, sizeof(s->cq));
			memset(s->feat, 0, sizeof(s->feat));
			memset(s->feat_set, 0, sizeof(s->feat_set));
			memset(s->iv_cfg, 0, sizeof(s->iv_cfg));
			s->nr_aer = 0;
			s->csts &= ~3u;
		}
		s->cc = v;
		return;
	case 0x24:
		s->aqa = v;
		return;
	case 0x28:
		s->asq = w == 8 ? val : v;
		return;
	case 0x30:
		s->acq = w == 8 ? val : v;
		return;
	}
	if (off < 0x1000 || !(s->cc & 1))
		return;
	idx = (off - 0x1000) / 4;
	q = idx / 2;
	if (q >= SIM_MAX_Q) {
		s->bad_db++;
		return;
	}
	if (idx & 1) {
		if (!s->cq[q].live || v >= s->cq[q].size) {
			s->bad_db++;
			return;
		}
		s->cq[q].head = v;
		for (q = 0; q < SIM_MAX_Q; q++)
			sim_process(s, q);
		return;
	}
	if (!s->sq[q].live || v >= s->sq[q].size) {
		s->bad_db++;
		return;
	}
	s->sq[q].tail = v;
	if (s->lazy)
		s->pending_db |= 1u << q;
	else
		sim_process(s, q);
}

static inline uint64_t sim_rd(void *ctx, uint32_t off, uint8_t w)
{
	struct sim *s = ctx;

	switch (off) {
	case 0x00:
		return 0x7ff;	/* MQES 2047, DSTRD 0 */
	case 0x14:
		return s->cc;
	case 0x1c:
		return s->csts;
	}
	return 0;
}

static inline int sim_wait(void *ctx)
{
	struct sim *s = ctx;
	uint16_t q;

	s->waits++;
	/* lazy: the device gets to the doorbells only while the host waits */
	for (q = 0; q < SIM_MAX_Q; q++)
		if (s->pending_db & (1u << q)) {
			s->pending_db &= ~(1u << q);
			sim_process(s, q);
		}
	return s->waits > (unsigned long)s->wait_budget ? -ETIMEDOUT : 0;
}

static inline int sim_write(void *ctx, uint64_t iova, const void *buf,
			    uint32_t len)
{
	void *p = sim_at(ctx, iova, len);

	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}

#endif /* _NVME_SIM_H */
