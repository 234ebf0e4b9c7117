// SPDX-License-Identifier: GPL-2.0
/* User-space NVMe driver on top of the test VMM (see nvme.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "nvme.h"

#define ADMIN_DEPTH	32
#define CMD_TIMEOUT_MS	10000

static void why(struct nvme_ctrl *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

/* Registers */

uint32_t nvme_rd32(struct nvme_ctrl *c, uint32_t off)
{
	if (c->bar)
		return *(volatile uint32_t *)(c->bar + off);
	return vmm_read32(c->dev, 0, off);
}

uint64_t nvme_rd64(struct nvme_ctrl *c, uint32_t off)
{
	uint64_t lo = nvme_rd32(c, off);

	return lo | (uint64_t)nvme_rd32(c, off + 4) << 32;
}

void nvme_wr32(struct nvme_ctrl *c, uint32_t off, uint32_t val)
{
	if (c->bar) {
		/* queue entries in RAM before the doorbell */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		*(volatile uint32_t *)(c->bar + off) = val;
	} else {
		vmm_write32(c->dev, 0, off, val);
	}
}

static void wr64(struct nvme_ctrl *c, uint32_t off, uint64_t val)
{
	nvme_wr32(c, off, (uint32_t)val);
	nvme_wr32(c, off + 4, (uint32_t)(val >> 32));
}

static uint32_t sq_doorbell(struct nvme_ctrl *c, uint16_t qid)
{
	return NVME_REG_DBS + 2 * qid * c->db_stride;
}

static uint32_t cq_doorbell(struct nvme_ctrl *c, uint16_t qid)
{
	return NVME_REG_DBS + (2 * qid + 1) * c->db_stride;
}

/* Memory */

/* The driver (the guest's CPU) wrote @len bytes of guest memory at @iova. */
static void cpu_wrote(struct nvme_ctrl *c, uint64_t iova, uint64_t len)
{
	if (c->on_write && len)
		c->on_write(c->on_write_arg, iova, len);
}

void *nvme_dma_alloc(struct nvme_ctrl *c, size_t size, uint64_t *iova)
{
	size_t off = (c->ram_used + NVME_PAGE - 1) & ~(size_t)(NVME_PAGE - 1);
	void *p;

	size = (size + NVME_PAGE - 1) & ~(size_t)(NVME_PAGE - 1);
	if (off > c->ram->size || size > c->ram->size - off)
		return NULL;
	p = (uint8_t *)c->ram->host + off;
	memset(p, 0, size);
	*iova = c->ram->iova + off;
	c->ram_used = off + size;
	cpu_wrote(c, *iova, size);
	return p;
}

/* Enable and disable */

/* Wait until CSTS.RDY is @rdy; a fatal status stops the wait. */
static int wait_ready(struct nvme_ctrl *c, bool rdy)
{
	uint64_t end = vmm_now_us() + (uint64_t)c->timeout_ms * 1000;
	uint32_t csts;

	for (;;) {
		csts = nvme_rd32(c, NVME_REG_CSTS);
		if (csts == ~0u) {
			why(c, "CSTS reads all ones: device gone?");
			return -ENODEV;
		}
		if (csts & NVME_CSTS_CFS) {
			why(c, "controller fatal status (CSTS 0x%x)", csts);
			return -EIO;
		}
		if (!!(csts & NVME_CSTS_RDY) == rdy)
			return 0;
		if (vmm_now_us() > end) {
			why(c, "CSTS.RDY not %d after %u ms (CSTS 0x%x)", rdy,
			    c->timeout_ms, csts);
			return -ETIMEDOUT;
		}
		usleep(1000);
	}
}

int nvme_ctrl_disable(struct nvme_ctrl *c)
{
	uint32_t cc = nvme_rd32(c, NVME_REG_CC);

	if (cc == ~0u) {
		why(c, "CC reads all ones: device gone?");
		return -ENODEV;
	}
	/* RDY may still be 1 with EN clear: wait for it either way */
	nvme_wr32(c, NVME_REG_CC, cc & ~NVME_CC_EN);
	return wait_ready(c, false);
}

static int queue_alloc(struct nvme_ctrl *c, struct nvme_queue *q,
		       uint16_t qid, uint16_t depth, bool data)
{
	unsigned int i;

	memset(q, 0, sizeof(*q));
	q->c = c;
	q->qid = qid;
	q->depth = depth;
	q->phase = 1;
	q->vector = -1;
	q->sq = nvme_dma_alloc(c, depth * sizeof(struct nvme_sqe), &q->sq_iova);
	q->cq = nvme_dma_alloc(c, depth * sizeof(struct nvme_cqe), &q->cq_iova);
	q->reqs = calloc(depth, sizeof(*q->reqs));
	if (!q->sq || !q->cq || !q->reqs) {
		why(c, "queue %u: out of DMA memory (%zu of %zu bytes used)",
		    qid, c->ram_used, c->ram->size);
		return -ENOMEM;
	}
	for (i = 0; i < depth; i++) {
		struct nvme_req *r = &q->reqs[i];

		r->q = q;
		r->cid = i;
		if (!data)
			continue;
		r->buf = nvme_dma_alloc(c, NVME_SLOT_BYTES, &r->buf_iova);
		r->prp_list = nvme_dma_alloc(c, NVME_PAGE, &r->prp_list_iova);
		if (!r->buf || !r->prp_list) {
			why(c, "queue %u slot %u: out of DMA memory (%zu bytes)",
			    qid, i, c->ram->size);
			return -ENOMEM;
		}
	}
	return 0;
}

static void queue_free(struct nvme_queue *q)
{
	free(q->reqs);
	q->reqs = NULL;
}

int nvme_ctrl_init(struct nvme_ctrl *c, struct vmm_dev *d,
		   struct vmm_ram *ram, uint32_t nsid, bool mmio)
{
	uint32_t cc, to;
	int ret, i;

	memset(c, 0, sizeof(*c));
	c->dev = d;
	c->ram = ram;
	c->timeout_ms = 2000;
	for (i = 0; i < NVME_MAX_VEC; i++)
		c->efd[i] = -1;
	if (!ram->mapped) {
		why(c, "guest RAM not mapped in the container");
		return -EINVAL;
	}
	ret = vmm_enable_bus_master(d);
	if (ret) {
		why(c, "enabling bus master: %s", strerror(-ret));
		return ret;
	}
	if (mmio) {
		c->bar = vmm_bar_mmap(d, 0);
		if (!c->bar) {
			ret = -errno;
			why(c, "mmap of BAR0: %s", strerror(errno));
			return ret;
		}
		c->mmio = true;
	}
	c->cap = nvme_rd64(c, NVME_REG_CAP);
	c->vs = nvme_rd32(c, NVME_REG_VS);
	if (c->cap == ~0ull || !c->cap) {
		why(c, "CAP reads 0x%llx", (unsigned long long)c->cap);
		return -ENODEV;
	}
	if (!NVME_CAP_CSS_NVM(c->cap) || NVME_CAP_MPSMIN(c->cap) > 0) {
		why(c, "CAP 0x%llx: no NVM command set or 4 KiB pages",
		    (unsigned long long)c->cap);
		return -ENOTSUP;
	}
	c->db_stride = 4u << NVME_CAP_DSTRD(c->cap);
	to = NVME_CAP_TO(c->cap) * 500;
	c->timeout_ms = to < 2000 ? 2000 : to > 30000 ? 30000 : to;

	ret = nvme_ctrl_disable(c);
	if (ret)
		return ret;

	ret = queue_alloc(c, &c->admin, 0, ADMIN_DEPTH, false);
	if (ret)
		return ret;
	c->id_buf = nvme_dma_alloc(c, NVME_PAGE, &c->id_iova);
	if (!c->id_buf) {
		why(c, "out of DMA memory for Identify data");
		return -ENOMEM;
	}
	nvme_wr32(c, NVME_REG_AQA, (ADMIN_DEPTH - 1) << 16 | (ADMIN_DEPTH - 1));
	wr64(c, NVME_REG_ASQ, c->admin.sq_iova);
	wr64(c, NVME_REG_ACQ, c->admin.cq_iova);
	cc = NVME_CC_EN | NVME_CC_CSS_NVM | NVME_CC_MPS(NVME_PAGE_SHIFT) |
	     NVME_CC_AMS_RR | NVME_CC_IOSQES(6) | NVME_CC_IOCQES(4);
	nvme_wr32(c, NVME_REG_CC, cc);
	ret = wait_ready(c, true);
	if (ret)
		return ret;

	ret = nvme_identify(c, NVME_ID_CNS_CTRL, 0);
	if (ret)
		return ret;
	if (nsid) {
		ret = nvme_identify(c, NVME_ID_CNS_NS, nsid);
		if (ret)
			return ret;
	}
	return 0;
}

void nvme_ctrl_fini(struct nvme_ctrl *c)
{
	int i;

	if (!c->dev)		/* never initialised */
		return;
	if (c->dev->fd >= 0 && c->cap)
		nvme_ctrl_disable(c);
	nvme_msix_disable(c);
	queue_free(&c->admin);
	for (i = 0; i < NVME_MAX_IOQ; i++)
		queue_free(&c->ioq[i]);
	c->nr_ioq = 0;
}

/* Queues and commands */

struct nvme_req *nvme_req_get(struct nvme_queue *q)
{
	unsigned int i, held = 0;

	if (!q->reqs)
		return NULL;
	for (i = 0; i < q->depth; i++)
		held += q->reqs[i].held;
	/* one SQ entry always stays free: a full SQ has tail + 1 == head */
	if (held >= q->depth - 1u)
		return NULL;
	for (i = 0; i < q->depth; i++) {
		struct nvme_req *r = &q->reqs[i];

		if (!r->held) {
			r->held = true;
			r->done = false;
			r->tag = 0;
			r->buf_off = 0;
			r->nr_prps = 0;
			r->status = 0;
			return r;
		}
	}
	return NULL;
}

void nvme_req_put(struct nvme_req *r)
{
	if (r->busy)
		return;		/* the device still owns it */
	r->done = false;
	r->held = false;
}

/* Place @cmd in @q's SQ with @r's command id and ring the doorbell. */
static int sq_submit(struct nvme_queue *q, struct nvme_req *r,
		     struct nvme_sqe *cmd)
{
	struct nvme_ctrl *c = q->c;
	uint16_t next = (q->sq_tail + 1) % q->depth;

	if (r->busy) {
		why(c, "queue %u: command %u is already in flight", q->qid,
		    r->cid);
		return -EBUSY;
	}
	if (next == q->sq_head) {
		why(c, "queue %u: SQ full (head %u tail %u)", q->qid,
		    q->sq_head, q->sq_tail);
		return -EBUSY;
	}
	cmd->cid = r->cid;
	q->reused_early += r->unreleased;
	memcpy(&q->sq[q->sq_tail], cmd, sizeof(*cmd));
	cpu_wrote(c, q->sq_iova + q->sq_tail * sizeof(*cmd), sizeof(*cmd));
	r->busy = true;
	r->done = false;
	r->submit_us = vmm_now_us();
	q->inflight++;
	q->submitted++;
	q->sq_tail = next;
	nvme_wr32(c, sq_doorbell(c, q->qid), q->sq_tail);
	return 0;
}

/* Release what was reaped: the CQ head doorbell. */
static void cq_release(struct nvme_queue *q)
{
	unsigned int i;

	if (q->head_rung == q->cq_head)
		return;
	nvme_wr32(q->c, cq_doorbell(q->c, q->qid), q->cq_head);
	q->head_rung = q->cq_head;
	for (i = 0; q->reqs && i < q->depth; i++)
		q->reqs[i].unreleased = false;
}

int nvme_io_poll(struct nvme_queue *q, struct nvme_req **done, int max)
{
	struct nvme_ctrl *c = q->c;
	int n = 0, i;

	if (q->late_head)
		cq_release(q);	/* the last poll's batch */
	for (i = 0; i < q->depth; i++) {
		volatile struct nvme_cqe *v = &q->cq[q->cq_head];
		struct nvme_cqe e;
		struct nvme_req *r;

		if (done && n >= max)
			break;
		if ((v->status & 1) != q->phase)
			break;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		memcpy(&e, (const void *)v, sizeof(e));
		if (e.cid >= q->depth || !q->reqs[e.cid].busy) {
			why(c, "queue %u: CQE %u has command id %u, not in flight",
			    q->qid, q->cq_head, e.cid);
			return -EPROTO;
		}
		if (e.sq_id != q->qid) {
			why(c, "queue %u: CQE %u names SQ %u", q->qid,
			    q->cq_head, e.sq_id);
			return -EPROTO;
		}
		if (e.sq_head >= q->depth) {
			why(c, "queue %u: CQE %u has SQ head %u of %u",
			    q->qid, q->cq_head, e.sq_head, q->depth);
			return -EPROTO;
		}
		q->sq_head = e.sq_head;
		r = &q->reqs[e.cid];
		r->status = e.status >> 1;
		r->result = e.result;
		r->busy = false;
		r->done = true;
		r->unreleased = true;
		q->inflight--;
		q->completed++;
		if (done)
			done[n] = r;
		n++;
		if (++q->cq_head == q->depth) {
			q->cq_head = 0;
			q->phase ^= 1;
		}
	}
	if (n && !q->late_head)
		cq_release(q);
	return n;
}

/* Completions the device posted on @q that nobody reaped yet. */
static unsigned int cq_posted(const struct nvme_queue *q)
{
	unsigned int n = 0, head = q->cq_head;
	uint8_t phase = q->phase;

	while (n < q->depth) {
		volatile struct nvme_cqe *v = &q->cq[head];

		if ((v->status & 1) != phase)
			break;
		n++;
		if (++head == q->depth) {
			head = 0;
			phase ^= 1;
		}
	}
	return n;
}

int nvme_io_settle(struct nvme_ctrl *c, int timeout_ms)
{
	uint64_t end = vmm_now_us() + (uint64_t)timeout_ms * 1000;
	int i;

	for (i = 0; i < c->nr_ioq; i++) {
		struct nvme_queue *q = &c->ioq[i];

		while (cq_posted(q) < q->inflight) {
			if (vmm_now_us() > end) {
				why(c, "queue %u: %u of %u commands completed in %d ms",
				    q->qid, cq_posted(q), q->inflight,
				    timeout_ms);
				return -ETIMEDOUT;
			}
			usleep(100);
		}
	}
	return 0;
}

int nvme_io_wait(struct nvme_queue *q, struct nvme_req **done, int max,
		 int timeout_ms)
{
	uint64_t end = vmm_now_us() + (uint64_t)timeout_ms * 1000;
	struct nvme_ctrl *c = q->c;
	int n;

	for (;;) {
		n = nvme_io_poll(q, done, max);
		if (n)
			return n;
		if (vmm_now_us() > end) {
			why(c, "queue %u: no completion in %d ms (%u in flight)",
			    q->qid, timeout_ms, q->inflight);
			return -ETIMEDOUT;
		}
		if (q->vector >= 0) {
			int64_t left = (int64_t)(end - vmm_now_us()) / 1000;
			int ret = nvme_msix_wait(c, q->vector,
						 left > 0 ? (int)left + 1 : 1);

			if (ret > 0)
				q->irqs += ret;
			else if (ret != -ETIMEDOUT)
				return ret;
		} else {
			usleep(20);
		}
	}
}

int nvme_admin(struct nvme_ctrl *c, struct nvme_sqe *cmd, uint32_t *result,
	       int timeout_ms)
{
	struct nvme_queue *q = &c->admin;
	struct nvme_req *r = nvme_req_get(q);
	int ret;

	if (!r) {
		why(c, "admin queue: no free slot");
		return -EBUSY;
	}
	ret = sq_submit(q, r, cmd);
	if (!ret) {
		uint64_t end = vmm_now_us() + (uint64_t)timeout_ms * 1000;

		while (!r->done) {
			int64_t left = (int64_t)(end - vmm_now_us()) / 1000;

			ret = nvme_io_wait(q, NULL, 0, left > 0 ? (int)left : 0);
			if (ret < 0)
				break;
			ret = 0;
		}
	}
	if (ret < 0) {
		/* the slot stays busy: a late completion finds it valid */
		return ret;
	}
	if (result)
		*result = r->result;
	ret = r->status;
	nvme_req_put(r);
	if (ret)
		why(c, "admin opcode 0x%02x: status 0x%x", cmd->opcode, ret);
	return ret ? -EIO : 0;
}

static void id_string(char *dst, const uint8_t *src, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	while (len && dst[len - 1] == ' ')
		len--;
	dst[len] = 0;
}

static uint16_t le16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

int nvme_identify(struct nvme_ctrl *c, uint8_t cns, uint32_t nsid)
{
	struct nvme_sqe cmd = {
		.opcode = NVME_ADM_IDENTIFY,
		.nsid = nsid,
		.prp1 = c->id_iova,
		.cdw10 = cns,
	};
	const uint8_t *id = c->id_buf;
	int ret;

	memset(c->id_buf, 0, NVME_PAGE);
	cpu_wrote(c, c->id_iova, NVME_PAGE);
	ret = nvme_admin(c, &cmd, NULL, CMD_TIMEOUT_MS);
	if (ret)
		return ret;
	if (cns == NVME_ID_CNS_CTRL) {
		uint8_t mdts = id[NVME_IDC_MDTS];

		c->vid = le16(id + NVME_IDC_VID);
		c->cntlid = le16(id + NVME_IDC_CNTLID);
		id_string(c->sn, id + NVME_IDC_SN, 20);
		id_string(c->mn, id + NVME_IDC_MN, 40);
		id_string(c->fr, id + NVME_IDC_FR, 8);
		c->nn = le32(id + NVME_IDC_NN);
		if ((id[NVME_IDC_SQES] & 0xf) > 6 ||
		    (id[NVME_IDC_SQES] >> 4) < 6 ||
		    (id[NVME_IDC_CQES] & 0xf) > 4 ||
		    (id[NVME_IDC_CQES] >> 4) < 4) {
			why(c, "Identify: SQES 0x%02x CQES 0x%02x do not allow 64/16-byte entries",
			    id[NVME_IDC_SQES], id[NVME_IDC_CQES]);
			return -ENOTSUP;
		}
		c->max_xfer = NVME_SLOT_BYTES;
		if (mdts && mdts < 16 &&
		    (NVME_PAGE << mdts) < (uint64_t)c->max_xfer)
			c->max_xfer = NVME_PAGE << mdts;
	} else if (cns == NVME_ID_CNS_NS) {
		uint8_t flbas = id[NVME_IDNS_FLBAS] & 0xf;
		uint32_t lbaf, lbads;

		c->nsze = le64(id + NVME_IDNS_NSZE);
		if (!c->nsze) {
			why(c, "namespace %u: size 0 (not attached to controller %u?)",
			    nsid, c->cntlid);
			return -ENODEV;
		}
		if (flbas > id[NVME_IDNS_NLBAF]) {
			why(c, "namespace %u: FLBAS %u beyond NLBAF %u", nsid,
			    flbas, id[NVME_IDNS_NLBAF]);
			return -EPROTO;
		}
		lbaf = le32(id + NVME_IDNS_LBAF + 4 * flbas);
		lbads = (lbaf >> 16) & 0xff;
		if (lbads < 9 || lbads > NVME_PAGE_SHIFT || (lbaf & 0xffff)) {
			why(c, "namespace %u: LBA format 0x%08x (LBADS %u, metadata) not supported",
			    nsid, lbaf, lbads);
			return -ENOTSUP;
		}
		c->nsid = nsid;
		c->lba_shift = lbads;
		c->lba_size = 1u << lbads;
	}
	return 0;
}

int nvme_set_num_queues(struct nvme_ctrl *c, uint16_t nr)
{
	struct nvme_sqe cmd = {
		.opcode = NVME_ADM_SET_FEATURES,
		.cdw10 = NVME_FEAT_NUM_QUEUES,
		.cdw11 = (uint32_t)(nr - 1) << 16 | (uint16_t)(nr - 1),
	};
	uint32_t res = 0, nsq, ncq;
	int ret;

	if (!nr)
		return -EINVAL;
	ret = nvme_admin(c, &cmd, &res, CMD_TIMEOUT_MS);
	if (ret)
		return ret;
	nsq = (res & 0xffff) + 1;
	ncq = (res >> 16) + 1;
	c->ioq_granted = nsq < ncq ? nsq : ncq;
	if (c->ioq_granted < nr) {
		why(c, "Number of Queues: asked for %u pairs, got %u SQs %u CQs",
		    nr, nsq, ncq);
		return -ENOSPC;
	}
	return 0;
}

/* MSI-X */

int nvme_msix_enable(struct nvme_ctrl *c, int nr)
{
	struct vfio_irq_info info = { .argsz = sizeof(info),
				      .index = VFIO_PCI_MSIX_IRQ_INDEX };
	struct {
		struct vfio_irq_set set;
		int32_t fds[NVME_MAX_VEC];
	} s;
	int i, ret;

	if (c->nr_vec)
		return c->nr_vec >= nr ? 0 : -EBUSY;
	if (ioctl(c->dev->fd, VFIO_DEVICE_GET_IRQ_INFO, &info)) {
		ret = -errno;
		why(c, "MSI-X irq info: %s", strerror(errno));
		return ret;
	}
	if (nr < 1 || nr > NVME_MAX_VEC || (uint32_t)nr > info.count) {
		why(c, "MSI-X: %d vectors asked, the device has %u", nr,
		    info.count);
		return -ERANGE;
	}
	memset(&s, 0, sizeof(s));
	for (i = 0; i < nr; i++) {
		c->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->efd[i] < 0) {
			ret = -errno;
			goto fail;
		}
		s.fds[i] = c->efd[i];
	}
	s.set.argsz = sizeof(s.set) + nr * sizeof(int32_t);
	s.set.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	s.set.index = VFIO_PCI_MSIX_IRQ_INDEX;
	s.set.start = 0;
	s.set.count = nr;
	if (ioctl(c->dev->fd, VFIO_DEVICE_SET_IRQS, &s)) {
		ret = -errno;
		why(c, "MSI-X enable (%d vectors): %s", nr, strerror(errno));
		goto fail;
	}
	c->nr_vec = nr;
	return 0;
fail:
	for (i = 0; i < NVME_MAX_VEC; i++) {
		if (c->efd[i] >= 0)
			close(c->efd[i]);
		c->efd[i] = -1;
	}
	return ret;
}

void nvme_msix_disable(struct nvme_ctrl *c)
{
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		.index = VFIO_PCI_MSIX_IRQ_INDEX,
	};
	int i;

	if (c->nr_vec && c->dev && c->dev->fd >= 0)
		ioctl(c->dev->fd, VFIO_DEVICE_SET_IRQS, &set);
	for (i = 0; i < NVME_MAX_VEC; i++) {
		if (c->efd[i] >= 0)
			close(c->efd[i]);
		c->efd[i] = -1;
	}
	c->nr_vec = 0;
}

int nvme_msix_wait(struct nvme_ctrl *c, int vec, int timeout_ms)
{
	struct pollfd p;
	uint64_t cnt;
	int ret;

	if (vec < 0 || vec >= c->nr_vec)
		return -EINVAL;
	p.fd = c->efd[vec];
	p.events = POLLIN;
	ret = poll(&p, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	if (!ret)
		return -ETIMEDOUT;
	if (read(c->efd[vec], &cnt, sizeof(cnt)) != sizeof(cnt))
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	return (int)cnt;
}

int nvme_create_io_queues(struct nvme_ctrl *c, int nr, uint16_t depth,
			  bool irq)
{
	uint32_t mqes = NVME_CAP_MQES(c->cap) + 1;
	int i, ret;

	if (nr < 1 || nr > NVME_MAX_IOQ || depth < 2 ||
	    depth > NVME_MAX_DEPTH || c->nr_ioq) {
		why(c, "%d I/O queues of %u entries: not supported", nr, depth);
		return -EINVAL;
	}
	if (depth > mqes) {
		why(c, "queue depth %u beyond CAP.MQES + 1 = %u", depth, mqes);
		return -EINVAL;
	}
	ret = nvme_set_num_queues(c, nr);
	if (ret)
		return ret;
	if (irq) {
		ret = nvme_msix_enable(c, nr + 1);
		if (ret)
			return ret;
	}
	for (i = 0; i < nr; i++) {
		struct nvme_queue *q = &c->ioq[i];
		uint16_t qid = i + 1;
		struct nvme_sqe cq = {
			.opcode = NVME_ADM_CREATE_CQ,
			.cdw10 = (uint32_t)(depth - 1) << 16 | qid,
			.cdw11 = NVME_Q_PC,
		};
		struct nvme_sqe sq = {
			.opcode = NVME_ADM_CREATE_SQ,
			.cdw10 = (uint32_t)(depth - 1) << 16 | qid,
			.cdw11 = (uint32_t)qid << 16 | NVME_Q_PC,
		};

		ret = queue_alloc(c, q, qid, depth, true);
		if (ret)
			return ret;
		if (irq) {
			q->vector = qid;
			cq.cdw11 |= NVME_CQ_IEN | (uint32_t)qid << 16;
		}
		cq.prp1 = q->cq_iova;
		sq.prp1 = q->sq_iova;
		ret = nvme_admin(c, &cq, NULL, CMD_TIMEOUT_MS);
		if (ret) {
			why(c, "Create I/O CQ %u: %s", qid, c->why);
			return ret;
		}
		ret = nvme_admin(c, &sq, NULL, CMD_TIMEOUT_MS);
		if (ret) {
			why(c, "Create I/O SQ %u: %s", qid, c->why);
			return ret;
		}
		c->nr_ioq = i + 1;
	}
	return 0;
}

struct nvme_queue *nvme_ioq(struct nvme_ctrl *c, int qid)
{
	return qid >= 1 && qid <= c->nr_ioq ? &c->ioq[qid - 1] : NULL;
}

int nvme_io_submit(struct nvme_req *r, uint8_t opcode, uint64_t slba,
		   uint32_t nlb)
{
	struct nvme_queue *q = r->q;
	struct nvme_ctrl *c = q->c;
	struct nvme_sqe cmd = { .opcode = opcode, .nsid = c->nsid };
	uint64_t iova, len, first, rest;
	unsigned int i, n;

	r->opcode = opcode;
	r->slba = slba;
	r->nlb = nlb;
	r->nr_prps = 0;
	if (opcode == NVME_CMD_FLUSH)
		return sq_submit(q, r, &cmd);
	if (opcode != NVME_CMD_READ && opcode != NVME_CMD_WRITE)
		return -EINVAL;
	len = (uint64_t)nlb << c->lba_shift;
	if (!nlb || nlb > 0x10000 || slba >= c->nsze || nlb > c->nsze - slba) {
		why(c, "LBAs %llu+%u outside namespace of %llu",
		    (unsigned long long)slba, nlb,
		    (unsigned long long)c->nsze);
		return -EINVAL;
	}
	if ((r->buf_off & 3) || r->buf_off >= NVME_SLOT_BYTES ||
	    len > NVME_SLOT_BYTES - r->buf_off || len > c->max_xfer) {
		why(c, "%llu bytes at offset %u do not fit a command slot",
		    (unsigned long long)len, r->buf_off);
		return -EINVAL;
	}
	iova = r->buf_iova + r->buf_off;
	first = NVME_PAGE - (iova & (NVME_PAGE - 1));
	cmd.prp1 = iova;
	r->nr_prps = 1;
	if (len > first) {
		rest = len - first;
		n = (rest + NVME_PAGE - 1) / NVME_PAGE;
		if (n == 1) {
			cmd.prp2 = iova + first;
		} else {
			for (i = 0; i < n; i++)
				r->prp_list[i] = iova + first +
						 (uint64_t)i * NVME_PAGE;
			cmd.prp2 = r->prp_list_iova;
			cpu_wrote(c, r->prp_list_iova, n * sizeof(uint64_t));
		}
		r->nr_prps += n;
	}
	/* the data a Write carries, the zeroed buffer a Read fills */
	cpu_wrote(c, iova, len);
	cmd.cdw10 = (uint32_t)slba;
	cmd.cdw11 = (uint32_t)(slba >> 32);
	cmd.cdw12 = nlb - 1;
	return sq_submit(q, r, &cmd);
}

/* Wait for @r's completion: its status, or -errno. */
static int req_wait(struct nvme_req *r, int timeout_ms)
{
	uint64_t end = vmm_now_us() + (uint64_t)timeout_ms * 1000;
	int ret = 0;

	while (!ret && !r->done) {
		int64_t left = (int64_t)(end - vmm_now_us()) / 1000;

		if (left <= 0) {
			why(r->q->c, "queue %u command %u: no completion in %d ms",
			    r->q->qid, r->cid, timeout_ms);
			return -ETIMEDOUT;
		}
		ret = nvme_io_wait(r->q, NULL, 0, (int)left);
		ret = ret < 0 ? ret : 0;
	}
	return ret ? ret : r->status;
}

int nvme_io_sync(struct nvme_req *r, uint8_t opcode, uint64_t slba,
		 uint32_t nlb, int timeout_ms)
{
	int ret = nvme_io_submit(r, opcode, slba, nlb);

	return ret ? ret : req_wait(r, timeout_ms);
}

int nvme_sqe_sync(struct nvme_req *r, struct nvme_sqe *cmd, int timeout_ms)
{
	int ret;

	r->opcode = cmd->opcode;
	r->nr_prps = 0;
	ret = sq_submit(r->q, r, cmd);
	return ret ? ret : req_wait(r, timeout_ms);
}

uint32_t nvme_doorbell_offset(const struct nvme_ctrl *c, uint16_t qid, bool cq)
{
	return NVME_REG_DBS + (2 * qid + (cq ? 1 : 0)) * c->db_stride;
}

/* The verified workload */

struct wl_hdr {
	uint32_t magic;
	uint32_t gen;
	uint64_t lba;
	uint32_t seed;
	uint32_t csum;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Checksum of a block with its csum field taken as 0. */
static uint32_t wl_csum(const void *blk, uint32_t size)
{
	const uint64_t *p = blk;
	uint64_t h = 0x9e3779b97f4a7c15ull;
	uint32_t i;

	for (i = 0; i < size / 8; i++) {
		uint64_t v = p[i];

		if (i == 2)	/* seed | csum << 32 */
			v &= 0xffffffffull;
		h = (h ^ v) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	return (uint32_t)(h ^ h >> 32);
}

void nvme_wl_stamp(const struct nvme_wl *w, void *blk, uint64_t lba,
		   uint32_t gen)
{
	uint32_t size = w->c->lba_size, i;
	struct wl_hdr *h = blk;
	uint64_t *p = blk, x = mix64(lba ^ (uint64_t)gen << 40 ^ w->seed);

	for (i = sizeof(*h) / 8; i < size / 8; i++) {
		x += 0x9e3779b97f4a7c15ull;
		p[i] = mix64(x);
	}
	h->magic = NVME_WL_MAGIC;
	h->gen = gen;
	h->lba = lba;
	h->seed = w->seed;
	h->csum = 0;
	h->csum = wl_csum(blk, size);
}

int nvme_wl_check(const struct nvme_wl *w, const void *blk, uint64_t lba,
		  uint32_t *gen)
{
	const struct wl_hdr *h = blk;

	*gen = 0;
	if (h->magic != NVME_WL_MAGIC || h->seed != w->seed)
		return -ENOENT;		/* not a block of this workload */
	if (h->lba != lba || wl_csum(blk, w->c->lba_size) != h->csum)
		return -EILSEQ;
	*gen = h->gen;
	return 0;
}

static void wl_err(struct nvme_wl *w, const char *fmt, ...)
{
	va_list ap;

	/* the first error's message wins over anything said before */
	if (++w->errors > 1)
		return;
	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
}

static uint64_t wl_rand(struct nvme_wl *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

int nvme_wl_init(struct nvme_wl *w, struct nvme_ctrl *c, uint64_t base,
		 uint32_t nr, int depth, uint32_t seed)
{
	uint32_t room;

	memset(w, 0, sizeof(*w));
	if (!c->nr_ioq || !c->lba_size || !nr || base >= c->nsze ||
	    nr > c->nsze - base || depth < 1 ||
	    depth > c->ioq[0].depth - 1) {
		snprintf(w->why, sizeof(w->why),
			 "workload: %u blocks at %llu, depth %d do not fit the controller",
			 nr, (unsigned long long)base, depth);
		return -EINVAL;
	}
	w->c = c;
	w->base = base;
	w->nr = nr;
	w->depth = depth;
	w->seed = seed;
	w->rng = mix64(seed) | 1;
	/* room for a data offset of up to one page into the slot */
	room = (c->max_xfer < NVME_SLOT_BYTES ? c->max_xfer : NVME_SLOT_BYTES)
	       - NVME_PAGE;
	w->max_blocks = room >> c->lba_shift;
	if (w->max_blocks > NVME_WL_MAX_BLOCKS)
		w->max_blocks = NVME_WL_MAX_BLOCKS;
	if (w->max_blocks > nr)
		w->max_blocks = nr;
	if (!w->max_blocks)
		w->max_blocks = 1;
	w->tab = calloc(nr, sizeof(*w->tab));
	return w->tab ? 0 : -ENOMEM;
}

void nvme_wl_free(struct nvme_wl *w)
{
	free(w->tab);
	w->tab = NULL;
}

unsigned long nvme_wl_inflight(const struct nvme_wl *w)
{
	unsigned long n = 0;
	int i;

	for (i = 0; i < w->c->nr_ioq; i++)
		n += w->c->ioq[i].inflight;
	return n;
}

static void wl_count_prps(struct nvme_wl *w, const struct nvme_req *r)
{
	if (r->nr_prps == 1)
		w->prp1_only++;
	else if (r->nr_prps == 2)
		w->prp2++;
	else if (r->nr_prps > 2)
		w->prp_list++;
}

/* A completed command: update the table or check what was read. */
static void wl_complete(struct nvme_wl *w, struct nvme_req *r)
{
	uint32_t i, bs = w->c->lba_size;
	uint64_t idx = r->slba - w->base;

	if (r->status) {
		wl_err(w, "queue %u: opcode 0x%02x LBA %llu+%u: status 0x%x",
		       r->q->qid, r->opcode, (unsigned long long)r->slba,
		       r->nlb, r->status);
	}
	if (r->opcode == NVME_CMD_FLUSH) {
		w->flushes++;
		goto out;
	}
	if (r->opcode == NVME_CMD_READ && !r->status && w->on_read)
		w->on_read(w->on_read_arg, r->buf_iova + r->buf_off,
			   (uint64_t)r->nlb * bs);
	for (i = 0; i < r->nlb; i++) {
		struct nvme_wl_block *b = &w->tab[idx + i];

		b->busy = 0;
		if (r->status)
			continue;
		if (r->opcode == NVME_CMD_WRITE) {
			b->gen = (uint32_t)r->tag;
			b->alt = 0;
		} else if (b->gen) {
			const uint8_t *blk = r->buf + r->buf_off + i * bs;
			uint32_t got;
			int ret = nvme_wl_check(w, blk, r->slba + i, &got);

			w->blocks_checked++;
			if (ret)
				wl_err(w, "LBA %llu: %s stamp (want generation %u)",
				       (unsigned long long)r->slba + i,
				       ret == -ENOENT ? "no" : "corrupt",
				       b->gen);
			else if (got != b->gen && (!b->alt || got != b->alt))
				wl_err(w, "LBA %llu: generation %u, want %u",
				       (unsigned long long)r->slba + i, got,
				       b->gen);
		}
	}
	if (r->opcode == NVME_CMD_WRITE)
		w->writes++;
	else
		w->reads++;
out:
	wl_count_prps(w, r);
	nvme_req_put(r);
}

/* A free range of @nlb blocks (index into the table) or -1. */
static int64_t wl_pick(struct nvme_wl *w, uint32_t nlb)
{
	int tries;

	for (tries = 0; tries < 8; tries++) {
		uint64_t idx = wl_rand(w) % (w->nr - nlb + 1);
		uint32_t i;

		for (i = 0; i < nlb && !w->tab[idx + i].busy; i++)
			;
		if (i == nlb)
			return (int64_t)idx;
	}
	return -1;
}

static int wl_submit_one(struct nvme_wl *w, struct nvme_queue *q)
{
	uint32_t nlb, i, bs = w->c->lba_size;
	uint64_t rnd = wl_rand(w);
	struct nvme_req *r;
	uint8_t opc;
	int64_t idx;
	int ret;

	opc = rnd % 100 < 45 ? NVME_CMD_WRITE :
	      rnd % 100 < 96 ? NVME_CMD_READ : NVME_CMD_FLUSH;
	/* mostly small, now and then up to max_blocks */
	nlb = 1 + (rnd >> 8) % ((rnd >> 16) % 4 ? 8 : w->max_blocks);
	if (nlb > w->max_blocks)
		nlb = w->max_blocks;
	r = nvme_req_get(q);
	if (!r)
		return -EAGAIN;
	if (opc == NVME_CMD_FLUSH) {
		ret = nvme_io_submit(r, opc, 0, 0);
		goto out;
	}
	idx = wl_pick(w, nlb);
	if (idx < 0) {
		nvme_req_put(r);
		return -EAGAIN;
	}
	/* data at a dword-aligned offset: PRP1 not always page aligned */
	r->buf_off = (rnd >> 24) % 3 ? 0 : ((rnd >> 32) % NVME_PAGE) & ~3u;
	if (opc == NVME_CMD_WRITE) {
		r->tag = ++w->gen;
		if (!w->gen)		/* 0 means unknown: skip it */
			r->tag = ++w->gen;
		for (i = 0; i < nlb; i++)
			nvme_wl_stamp(w, r->buf + r->buf_off + i * bs,
				      w->base + idx + i, (uint32_t)r->tag);
	} else {
		r->tag = 1;
		memset(r->buf + r->buf_off, 0, (size_t)nlb * bs);
	}
	for (i = 0; i < nlb; i++)
		w->tab[idx + i].busy = 1;
	ret = nvme_io_submit(r, opc, w->base + idx, nlb);
	if (ret)
		for (i = 0; i < nlb; i++)
			w->tab[idx + i].busy = 0;
out:
	if (ret) {
		nvme_req_put(r);
		wl_err(w, "submit on queue %u: %s", q->qid, w->c->why);
	}
	return ret;
}

int nvme_wl_step(struct nvme_wl *w)
{
	struct nvme_req *done[NVME_MAX_DEPTH];
	uint64_t now = vmm_now_us();
	int i, j, n, reaped = 0;

	for (i = 0; i < w->c->nr_ioq; i++) {
		struct nvme_queue *q = &w->c->ioq[i];

		n = nvme_io_poll(q, done, NVME_MAX_DEPTH);
		if (n < 0) {
			wl_err(w, "%s", w->c->why);
			return n;
		}
		for (j = 0; j < n; j++)
			wl_complete(w, done[j]);
		reaped += n;
		for (j = 0; j < q->depth; j++) {
			struct nvme_req *r = &q->reqs[j];

			if (r->busy && now - r->submit_us >
				       (uint64_t)CMD_TIMEOUT_MS * 1000) {
				wl_err(w, "queue %u command %u (opcode 0x%02x) pending for %d ms",
				       q->qid, r->cid, r->opcode,
				       CMD_TIMEOUT_MS);
				return -ETIMEDOUT;
			}
		}
	}
	for (i = 0; i < w->c->nr_ioq; i++) {
		struct nvme_queue *q = &w->c->ioq[i];

		while ((int)q->inflight < w->depth) {
			int ret = wl_submit_one(w, q);

			if (ret == -EAGAIN)
				break;
			if (ret)
				return ret;
		}
		if (q->inflight > w->max_qd)
			w->max_qd = q->inflight;
	}
	return reaped;
}

/* Sleep until a vector fires or a short while passed. */
static void wl_idle(struct nvme_wl *w)
{
	struct pollfd p[NVME_MAX_IOQ];
	int i, n = 0, qi[NVME_MAX_IOQ];
	uint64_t cnt;

	for (i = 0; i < w->c->nr_ioq; i++) {
		int v = w->c->ioq[i].vector;

		if (v >= 0 && v < w->c->nr_vec) {
			qi[n] = i;
			p[n].fd = w->c->efd[v];
			p[n++].events = POLLIN;
		}
	}
	if (!n) {
		usleep(20);
		return;
	}
	if (poll(p, n, 5) > 0)
		for (i = 0; i < n; i++)
			if (p[i].revents & POLLIN &&
			    read(p[i].fd, &cnt, sizeof(cnt)) == sizeof(cnt))
				w->c->ioq[qi[i]].irqs += cnt;
}

static unsigned long wl_done(const struct nvme_wl *w)
{
	return w->writes + w->reads + w->flushes;
}

int nvme_wl_run(struct nvme_wl *w, unsigned long cmds, int timeout_ms)
{
	uint64_t end = vmm_now_us() + (uint64_t)timeout_ms * 1000;
	unsigned long target = wl_done(w) + cmds;
	int ret;

	while (wl_done(w) < target) {
		if (vmm_now_us() > end) {
			wl_err(w, "workload: %lu of %lu commands in %d ms",
			       cmds - (target - wl_done(w)), cmds, timeout_ms);
			return -ETIMEDOUT;
		}
		ret = nvme_wl_step(w);
		if (ret < 0)
			return ret;
		if (!ret)
			wl_idle(w);
	}
	return nvme_wl_drain(w, timeout_ms);
}

int nvme_wl_drain(struct nvme_wl *w, int timeout_ms)
{
	uint64_t end = vmm_now_us() + (uint64_t)timeout_ms * 1000;
	struct nvme_req *done[NVME_MAX_DEPTH];
	int i, j, n;

	while (nvme_wl_inflight(w)) {
		if (vmm_now_us() > end) {
			wl_err(w, "workload: %lu commands still in flight after %d ms",
			       nvme_wl_inflight(w), timeout_ms);
			return -ETIMEDOUT;
		}
		for (i = 0, n = 0; i < w->c->nr_ioq; i++) {
			int k = nvme_io_poll(&w->c->ioq[i], done,
					     NVME_MAX_DEPTH);

			if (k < 0) {
				wl_err(w, "%s", w->c->why);
				return k;
			}
			for (j = 0; j < k; j++)
				wl_complete(w, done[j]);
			n += k;
		}
		if (!n)
			wl_idle(w);
	}
	return w->errors ? -EILSEQ : 0;
}

void nvme_wl_abandon(struct nvme_wl *w)
{
	int i, j;
	uint32_t k;

	for (i = 0; i < w->c->nr_ioq; i++) {
		struct nvme_queue *q = &w->c->ioq[i];

		for (j = 0; j < q->depth; j++) {
			struct nvme_req *r = &q->reqs[j];

			if (!r->busy)
				continue;
			for (k = 0; r->opcode != NVME_CMD_FLUSH && k < r->nlb;
			     k++) {
				struct nvme_wl_block *b =
					&w->tab[r->slba - w->base + k];

				b->busy = 0;
				if (r->opcode == NVME_CMD_WRITE)
					b->alt = (uint32_t)r->tag;
			}
			r->busy = false;
			r->done = false;
			r->held = false;
		}
		q->inflight = 0;
	}
}

int nvme_wl_attach(struct nvme_wl *w, struct nvme_ctrl *c)
{
	if (nvme_wl_inflight(w)) {
		snprintf(w->why, sizeof(w->why),
			 "workload: %lu commands in flight on the old controller",
			 nvme_wl_inflight(w));
		return -EBUSY;
	}
	if (!c->nr_ioq || c->lba_size != w->c->lba_size ||
	    w->base + w->nr > c->nsze ||
	    w->depth > c->ioq[0].depth - 1) {
		snprintf(w->why, sizeof(w->why),
			 "workload: controller %s (%u-byte blocks, %llu of them, %d queues) does not fit",
			 c->dev->bdf, c->lba_size,
			 (unsigned long long)c->nsze, c->nr_ioq);
		return -EINVAL;
	}
	w->c = c;
	return 0;
}

int nvme_wl_fill(struct nvme_wl *w, int timeout_ms)
{
	struct nvme_queue *q = &w->c->ioq[0];
	uint32_t bs = w->c->lba_size, i, nlb, per;
	uint64_t idx;
	int ret;

	per = w->max_blocks;
	for (idx = 0; idx < w->nr; idx += nlb) {
		struct nvme_req *r = nvme_req_get(q);

		if (!r)
			return -EBUSY;
		nlb = w->nr - idx < per ? w->nr - idx : per;
		r->tag = ++w->gen;
		for (i = 0; i < nlb; i++)
			nvme_wl_stamp(w, r->buf + i * bs, w->base + idx + i,
				      (uint32_t)r->tag);
		ret = nvme_io_sync(r, NVME_CMD_WRITE, w->base + idx, nlb,
				   timeout_ms);
		if (ret) {
			wl_err(w, "fill: LBA %llu+%u: %s",
			       (unsigned long long)(w->base + idx), nlb,
			       ret < 0 ? w->c->why : "NVMe error status");
			if (!r->busy)
				nvme_req_put(r);
			return ret < 0 ? ret : -EIO;
		}
		for (i = 0; i < nlb; i++) {
			w->tab[idx + i].gen = (uint32_t)r->tag;
			w->tab[idx + i].alt = 0;
		}
		w->writes++;
		wl_count_prps(w, r);
		nvme_req_put(r);
	}
	return 0;
}

int nvme_wl_verify_all(struct nvme_wl *w, int timeout_ms)
{
	struct nvme_queue *q = &w->c->ioq[0];
	uint32_t nlb, per = w->max_blocks;
	uint64_t idx;
	int ret;

	if (nvme_wl_inflight(w))
		return -EBUSY;
	for (idx = 0; idx < w->nr; idx += nlb) {
		struct nvme_req *r = nvme_req_get(q);

		if (!r)
			return -EBUSY;
		nlb = w->nr - idx < per ? w->nr - idx : per;
		r->tag = 1;
		memset(r->buf, 0, (size_t)nlb * w->c->lba_size);
		ret = nvme_io_sync(r, NVME_CMD_READ, w->base + idx, nlb,
				   timeout_ms);
		if (ret < 0) {
			wl_err(w, "verify: LBA %llu+%u: %s",
			       (unsigned long long)(w->base + idx), nlb,
			       w->c->why);
			return ret;
		}
		/* checks the blocks (or counts a bad status), puts r */
		wl_complete(w, r);
	}
	return w->errors ? -EILSEQ : 0;
}

/* The driver's image in guest RAM */

struct nvme_image_hdr {
	uint64_t magic;
	uint32_t size;		/* bytes of the whole image */
	uint32_t nr_ioq;
	uint16_t depth[NVME_MAX_IOQ + 1];	/* admin, then I/O queues */
	uint32_t wl_nr;		/* blocks of the workload's table */
	uint64_t ram_iova, ram_size;
};

static size_t image_reqs(const struct nvme_image_hdr *h)
{
	size_t n = 0;
	unsigned int i;

	for (i = 0; i <= h->nr_ioq && i <= NVME_MAX_IOQ; i++)
		n += h->depth[i];
	return n;
}

static size_t image_len(const struct nvme_image_hdr *h)
{
	return sizeof(*h) + sizeof(struct nvme_ctrl) +
	       image_reqs(h) * sizeof(struct nvme_req) +
	       sizeof(struct nvme_wl) +
	       (size_t)h->wl_nr * sizeof(struct nvme_wl_block);
}

static void image_hdr(const struct nvme_ctrl *c, const struct nvme_wl *w,
		      struct nvme_image_hdr *h)
{
	int i;

	memset(h, 0, sizeof(*h));
	h->magic = NVME_IMAGE_MAGIC;
	h->nr_ioq = c->nr_ioq;
	h->depth[0] = c->admin.depth;
	for (i = 0; i < c->nr_ioq; i++)
		h->depth[i + 1] = c->ioq[i].depth;
	h->wl_nr = w ? w->nr : 0;
	h->ram_iova = c->ram->iova;
	h->ram_size = c->ram->size;
	h->size = image_len(h);
}

size_t nvme_image_size(const struct nvme_ctrl *c, const struct nvme_wl *w)
{
	struct nvme_image_hdr h;

	image_hdr(c, w, &h);
	return h.size;
}

static struct nvme_queue *image_queue(struct nvme_ctrl *c, unsigned int i)
{
	return i ? &c->ioq[i - 1] : &c->admin;
}

int nvme_image_save(const struct nvme_ctrl *c, const struct nvme_wl *w,
		    void *buf, size_t len)
{
	struct nvme_image_hdr h;
	uint8_t *p = buf;
	unsigned int i;

	image_hdr(c, w, &h);
	if (len < h.size)
		return -ENOSPC;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	memcpy(p, c, sizeof(*c));
	p += sizeof(*c);
	for (i = 0; i <= h.nr_ioq; i++) {
		const struct nvme_queue *q = image_queue((struct nvme_ctrl *)c,
							 i);

		memcpy(p, q->reqs, q->depth * sizeof(*q->reqs));
		p += q->depth * sizeof(*q->reqs);
	}
	if (w) {
		memcpy(p, w, sizeof(*w));
		p += sizeof(*w);
		memcpy(p, w->tab, (size_t)w->nr * sizeof(*w->tab));
	} else {
		memset(p, 0, sizeof(*w));
	}
	return (int)h.size;
}

/* The host view of [iova, iova + len) in @ram, or NULL when outside it. */
static void *image_host(const struct vmm_ram *ram, uint64_t iova,
			uint64_t len)
{
	if (iova < ram->iova || len > ram->size ||
	    iova - ram->iova > ram->size - len)
		return NULL;
	return (uint8_t *)ram->host + (iova - ram->iova);
}

static int image_fix_queue(struct nvme_ctrl *c, struct nvme_queue *q,
			   const struct nvme_req *reqs, bool data)
{
	unsigned int i;

	q->c = c;
	q->sq = image_host(c->ram, q->sq_iova,
			   q->depth * sizeof(struct nvme_sqe));
	q->cq = image_host(c->ram, q->cq_iova,
			   q->depth * sizeof(struct nvme_cqe));
	if (!q->sq || !q->cq || q->vector != -1 || q->sq_tail >= q->depth ||
	    q->sq_head >= q->depth || q->cq_head >= q->depth ||
	    q->inflight >= q->depth) {
		why(c, "image: queue %u is not one this driver can go on with",
		    q->qid);
		return -EBADMSG;
	}
	q->reqs = calloc(q->depth, sizeof(*q->reqs));
	if (!q->reqs)
		return -ENOMEM;
	memcpy(q->reqs, reqs, q->depth * sizeof(*q->reqs));
	for (i = 0; i < q->depth; i++) {
		struct nvme_req *r = &q->reqs[i];

		r->q = q;
		r->buf = NULL;
		r->prp_list = NULL;
		if (r->cid != i) {
			why(c, "image: queue %u slot %u has command id %u",
			    q->qid, i, r->cid);
			return -EBADMSG;
		}
		if (!data)
			continue;
		r->buf = image_host(c->ram, r->buf_iova, NVME_SLOT_BYTES);
		r->prp_list = image_host(c->ram, r->prp_list_iova, NVME_PAGE);
		if (!r->buf || !r->prp_list) {
			why(c, "image: queue %u slot %u: buffers outside RAM",
			    q->qid, i);
			return -EBADMSG;
		}
	}
	return 0;
}

int nvme_image_load(struct nvme_ctrl *c, struct nvme_wl *w,
		    struct vmm_dev *d, struct vmm_ram *ram, const void *buf,
		    size_t len)
{
	const uint8_t *p = buf;
	struct nvme_image_hdr h;
	unsigned int i;
	int ret;

	memset(c, 0, sizeof(*c));
	memset(w, 0, sizeof(*w));
	c->dev = d;
	c->ram = ram;
	for (i = 0; i < NVME_MAX_VEC; i++)
		c->efd[i] = -1;
	if (len < sizeof(h)) {
		why(c, "image: %zu bytes, not even a header", len);
		return -EBADMSG;
	}
	memcpy(&h, p, sizeof(h));
	if (h.magic != NVME_IMAGE_MAGIC || h.nr_ioq > NVME_MAX_IOQ ||
	    h.ram_iova != ram->iova || h.ram_size != ram->size) {
		why(c, "image: magic %#llx, %u queues, RAM %#llx+%#llx: not this driver's in this RAM",
		    (unsigned long long)h.magic, h.nr_ioq,
		    (unsigned long long)h.ram_iova,
		    (unsigned long long)h.ram_size);
		return -EBADMSG;
	}
	for (i = 0; i <= h.nr_ioq; i++) {
		if (h.depth[i] < 2 || h.depth[i] > (i ? NVME_MAX_DEPTH : 4096)) {
			why(c, "image: queue %u depth %u", i, h.depth[i]);
			return -EBADMSG;
		}
	}
	if (h.wl_nr > (1u << 20) || h.size != image_len(&h) || len < h.size) {
		why(c, "image: %u bytes (%zu here) for %u blocks", h.size, len,
		    h.wl_nr);
		return -EBADMSG;
	}
	p += sizeof(h);
	memcpy(c, p, sizeof(*c));
	p += sizeof(*c);
	/* what a pointer held in the other VMM means nothing here */
	c->dev = d;
	c->ram = ram;
	c->bar = NULL;
	c->mmio = false;
	c->on_write = NULL;
	c->on_write_arg = NULL;
	c->nr_vec = 0;
	c->admin.reqs = NULL;
	for (i = 0; i < NVME_MAX_IOQ; i++)
		c->ioq[i].reqs = NULL;
	for (i = 0; i < NVME_MAX_VEC; i++)
		c->efd[i] = -1;
	c->why[0] = 0;
	c->id_buf = image_host(ram, c->id_iova, NVME_PAGE);
	if (c->nr_ioq != (int)h.nr_ioq || !c->id_buf ||
	    c->admin.depth != h.depth[0] || c->ram_used > ram->size ||
	    !c->db_stride || c->db_stride > 4096) {
		why(c, "image: the controller's fields disagree with its header");
		return -EBADMSG;
	}
	for (i = 0; i <= h.nr_ioq; i++) {
		struct nvme_queue *q = image_queue(c, i);

		if (q->depth != h.depth[i] || q->qid != i) {
			why(c, "image: queue %u disagrees with the header", i);
			return -EBADMSG;
		}
		ret = image_fix_queue(c, q, (const struct nvme_req *)p, i > 0);
		if (ret)
			return ret;
		p += q->depth * sizeof(struct nvme_req);
	}
	memcpy(w, p, sizeof(*w));
	p += sizeof(*w);
	w->c = c;
	w->tab = NULL;
	w->on_read = NULL;
	w->on_read_arg = NULL;
	if (!h.wl_nr)
		return 0;
	if (w->nr != h.wl_nr || !w->depth || !w->max_blocks) {
		why(c, "image: the workload's fields disagree with the header");
		return -EBADMSG;
	}
	w->tab = calloc(w->nr, sizeof(*w->tab));
	if (!w->tab)
		return -ENOMEM;
	memcpy(w->tab, p, (size_t)w->nr * sizeof(*w->tab));
	return 0;
}

void nvme_image_free(struct nvme_ctrl *c, struct nvme_wl *w)
{
	int i;

	nvme_wl_free(w);
	queue_free(&c->admin);
	for (i = 0; i < NVME_MAX_IOQ; i++)
		queue_free(&c->ioq[i]);
}

int nvme_dw_init(struct nvme_dev_writes *d, uint64_t base, uint64_t size)
{
	memset(d, 0, sizeof(*d));
	if (!size || size % (64ull * NVME_PAGE))
		return -EINVAL;
	d->bits = calloc(size / NVME_PAGE / 64, sizeof(uint64_t));
	if (!d->bits)
		return -ENOMEM;
	d->base = base;
	d->size = size;
	return 0;
}

void nvme_dw_free(struct nvme_dev_writes *d)
{
	free(d->bits);
	d->bits = NULL;
}

void nvme_dw_mark(struct nvme_dev_writes *d, uint64_t iova, uint64_t len)
{
	uint64_t pg, last;

	/* only what lies in the range */
	if (!len || iova + len <= d->base || iova >= d->base + d->size)
		return;
	if (iova < d->base) {
		len -= d->base - iova;
		iova = d->base;
	}
	if (iova + len > d->base + d->size)
		len = d->base + d->size - iova;
	last = (iova + len - 1 - d->base) / NVME_PAGE;
	for (pg = (iova - d->base) / NVME_PAGE; pg <= last; pg++)
		d->bits[pg / 64] |= 1ull << (pg % 64);
}

static void dw_read(void *arg, uint64_t iova, uint64_t len)
{
	struct nvme_dev_writes *d = arg;

	d->reads++;
	nvme_dw_mark(d, iova, len);
}

void nvme_dw_watch(struct nvme_dev_writes *d, struct nvme_wl *w)
{
	w->on_read = dw_read;
	w->on_read_arg = d;
}

void nvme_dw_add_cqs(struct nvme_dev_writes *d, const struct nvme_ctrl *c)
{
	int q;

	for (q = 0; q < c->nr_ioq; q++)
		nvme_dw_mark(d, c->ioq[q].cq_iova,
			     (uint64_t)c->ioq[q].depth *
			     sizeof(struct nvme_cqe));
}

void nvme_dw_compare(const struct nvme_dev_writes *d, const uint64_t *seen,
		     struct nvme_dw_cmp *r)
{
	size_t i, words = d->size / NVME_PAGE / 64;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < words; i++) {
		r->reported += __builtin_popcountll(seen[i]);
		r->missed += __builtin_popcountll(d->bits[i] & ~seen[i]);
		r->extra += __builtin_popcountll(seen[i] & ~d->bits[i]);
	}
}
