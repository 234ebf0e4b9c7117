/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A user-space NVMe driver for the test VMM: drives any NVMe function
 * through a VFIO device fd (vfio-pci or vfio-mig), with its queues and
 * data buffers in test VMM RAM (struct vmm_ram) mapped through the
 * device's container. Written from the NVMe 1.4 base specification; the
 * definitions below are this file's own.
 *
 * Every loop is bounded by a time limit, and every value the device hands
 * back (CQE command id, SQ id, SQ head, phase, Identify fields) is checked
 * before it is used: a device that misbehaves gives -EPROTO and a message
 * in nvme_ctrl.why, never a wild access.
 */
#ifndef VMIG_TEST_NVME_H
#define VMIG_TEST_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm.h"

/* Controller registers (BAR0) */
#define NVME_REG_CAP		0x00	/* 64 bits */
#define NVME_REG_VS		0x08
#define NVME_REG_INTMS		0x0c
#define NVME_REG_INTMC		0x10
#define NVME_REG_CC		0x14
#define NVME_REG_CSTS		0x1c
#define NVME_REG_AQA		0x24
#define NVME_REG_ASQ		0x28	/* 64 bits, written as two dwords */
#define NVME_REG_ACQ		0x30	/* 64 bits, written as two dwords */
#define NVME_REG_DBS		0x1000	/* doorbells */

#define NVME_CAP_MQES(c)	((uint32_t)((c) & 0xffff))	/* 0's based */
#define NVME_CAP_CQR(c)		(((c) >> 16) & 1)
#define NVME_CAP_TO(c)		((uint32_t)(((c) >> 24) & 0xff))	/* 500 ms */
#define NVME_CAP_DSTRD(c)	((uint32_t)(((c) >> 32) & 0xf))
#define NVME_CAP_CSS_NVM(c)	(((c) >> 37) & 1)
#define NVME_CAP_MPSMIN(c)	((uint32_t)(((c) >> 48) & 0xf))

#define NVME_CC_EN		(1u << 0)
#define NVME_CC_CSS_NVM		(0u << 4)
#define NVME_CC_MPS(shift)	(((shift) - 12) << 7)
#define NVME_CC_AMS_RR		(0u << 11)
#define NVME_CC_IOSQES(n)	((n) << 16)
#define NVME_CC_IOCQES(n)	((n) << 20)

#define NVME_CSTS_RDY		(1u << 0)
#define NVME_CSTS_CFS		(1u << 1)

/* Opcodes */
#define NVME_ADM_DELETE_SQ	0x00
#define NVME_ADM_CREATE_SQ	0x01
#define NVME_ADM_DELETE_CQ	0x04
#define NVME_ADM_CREATE_CQ	0x05
#define NVME_ADM_IDENTIFY	0x06
#define NVME_ADM_SET_FEATURES	0x09
#define NVME_ADM_GET_FEATURES	0x0a

#define NVME_CMD_FLUSH		0x00
#define NVME_CMD_WRITE		0x01
#define NVME_CMD_READ		0x02

#define NVME_ID_CNS_NS		0x00
#define NVME_ID_CNS_CTRL	0x01
#define NVME_FEAT_NUM_QUEUES	0x07

/* Create I/O queue dword 11 */
#define NVME_Q_PC		(1u << 0)	/* physically contiguous */
#define NVME_CQ_IEN		(1u << 1)	/* interrupts enabled */

/* Completion status: the status field, without the phase bit */
#define NVME_SC(status)		((status) >> 1)
#define NVME_SC_SUCCESS		0

#define NVME_PAGE_SHIFT		12
#define NVME_PAGE		(1u << NVME_PAGE_SHIFT)

/* Submission queue entry (64 bytes) */
struct nvme_sqe {
	uint8_t opcode;
	uint8_t flags;		/* FUSE, PSDT (0: PRPs) */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2, cdw3;
	uint64_t mptr;
	uint64_t prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

/* Completion queue entry (16 bytes) */
struct nvme_cqe {
	uint32_t result;
	uint32_t dw1;
	uint16_t sq_head;
	uint16_t sq_id;
	uint16_t cid;
	uint16_t status;	/* bit 0: phase tag */
};

/* Identify Controller: the fields the tests use (offsets in bytes) */
#define NVME_IDC_VID		0
#define NVME_IDC_SN		4	/* 20 bytes */
#define NVME_IDC_MN		24	/* 40 bytes */
#define NVME_IDC_FR		64	/* 8 bytes */
#define NVME_IDC_MDTS		77
#define NVME_IDC_CNTLID		78
#define NVME_IDC_SQES		512
#define NVME_IDC_CQES		513
#define NVME_IDC_NN		516
/* Identify Namespace */
#define NVME_IDNS_NSZE		0
#define NVME_IDNS_NCAP		8
#define NVME_IDNS_NLBAF		25
#define NVME_IDNS_FLBAS		26
#define NVME_IDNS_LBAF		128	/* 16 x 4 bytes: MS, LBADS, RP */

#define NVME_MAX_IOQ		4	/* I/O queue pairs this driver runs */
#define NVME_MAX_VEC		8	/* MSI-X vectors it sets up */
#define NVME_MAX_DEPTH		64	/* entries per queue */
#define NVME_SLOT_PAGES		8	/* data buffer of one I/O command */
#define NVME_SLOT_BYTES		(NVME_SLOT_PAGES * NVME_PAGE)

/* One command slot: its command id is its index in the queue. */
struct nvme_req {
	struct nvme_queue *q;
	uint16_t cid;
	bool held;		/* handed out by nvme_req_get() */
	bool busy;		/* submitted, not yet completed */
	bool done;
	uint8_t opcode;
	uint64_t slba;
	uint32_t nlb;		/* blocks, 1's based */
	uint32_t buf_off;	/* data starts this far into buf (dword aligned) */
	uint8_t *buf;		/* NVME_SLOT_BYTES of data buffer (host view) */
	uint64_t buf_iova;
	uint64_t *prp_list;	/* one page (host view) */
	uint64_t prp_list_iova;
	int nr_prps;		/* PRP entries the last command used (1, 2, 3+) */
	bool unreleased;	/* reaped; its CQE not released yet */
	uint16_t status;	/* CQE status field (phase bit cleared) */
	uint32_t result;	/* CQE dword 0 */
	uint64_t submit_us;
	uint64_t tag;		/* the caller's */
};

struct nvme_queue {
	struct nvme_ctrl *c;
	uint16_t qid;
	uint16_t depth;		/* entries of SQ and CQ */
	struct nvme_sqe *sq;
	struct nvme_cqe *cq;
	uint64_t sq_iova, cq_iova;
	uint16_t sq_tail;	/* ours */
	uint16_t sq_head;	/* the device's, from the last CQE */
	uint16_t cq_head;
	uint8_t phase;
	int vector;		/* MSI-X vector of the CQ, -1: polled */
	/*
	 * @late_head: nvme_io_poll() writes the CQ head doorbell for what it
	 * reaped at the start of the next poll, as a driver that frees
	 * command ids as it reads completions and writes the head after a
	 * batch: an id can be reused before its old completion is released
	 * (@reused_early counts those submissions).
	 */
	bool late_head;
	uint16_t head_rung;	/* the CQ head doorbell's last value */
	unsigned long reused_early;
	unsigned int inflight;
	struct nvme_req *reqs;	/* depth slots; slot i has cid i */
	unsigned long submitted, completed, irqs;
};

struct nvme_ctrl {
	struct vmm_dev *dev;
	struct vmm_ram *ram;
	size_t ram_used;	/* bump allocator over ram (page granular) */
	bool mmio;		/* registers through the mmapped BAR */
	volatile uint8_t *bar;
	uint64_t cap;
	uint32_t vs;
	uint32_t db_stride;	/* bytes between doorbells */
	unsigned int timeout_ms;	/* CAP.TO, bounded */
	struct nvme_queue admin;
	struct nvme_queue ioq[NVME_MAX_IOQ];
	int nr_ioq;
	uint16_t ioq_granted;	/* I/O queue pairs the controller allows */
	/* Identify */
	uint16_t vid, cntlid;
	char sn[21], mn[41], fr[9];
	uint32_t nn;
	uint32_t max_xfer;	/* bytes per command (MDTS and our slots) */
	uint32_t nsid;
	uint64_t nsze;		/* namespace size in blocks */
	uint32_t lba_shift;
	uint32_t lba_size;
	void *id_buf;		/* one page for Identify data */
	uint64_t id_iova;
	/* MSI-X */
	int efd[NVME_MAX_VEC];
	int nr_vec;
	/*
	 * Called for the guest memory the driver writes (queue entries, PRP
	 * lists, data buffers, as a guest's CPU would): a VMM's dirty log
	 * of vCPU writes. May be NULL.
	 */
	void (*on_write)(void *arg, uint64_t iova, uint64_t len);
	void *on_write_arg;
	char why[256];		/* what went wrong last */
};

/*
 * Bring the controller up on a device fd: bus master on, disable, admin
 * queue (@admin_depth entries) in @ram, enable, Identify controller and
 * namespace @nsid. @ram must be mapped in @d's container (vmm_dma_map),
 * and is used from its start on. @mmio: registers through the BAR mmap
 * (when the region allows it) instead of pread/pwrite on the device fd.
 * Returns 0 or -errno (c->why says why).
 */
int nvme_ctrl_init(struct nvme_ctrl *c, struct vmm_dev *d,
		   struct vmm_ram *ram, uint32_t nsid, bool mmio);
/*
 * Disable the controller (stops its DMA), then drop the MSI-X eventfds;
 * also after a failed nvme_ctrl_init(), and on a zeroed struct.
 */
void nvme_ctrl_fini(struct nvme_ctrl *c);
int nvme_ctrl_disable(struct nvme_ctrl *c);

/* Register access through the device fd or the mmap (c->mmio). */
uint32_t nvme_rd32(struct nvme_ctrl *c, uint32_t off);
uint64_t nvme_rd64(struct nvme_ctrl *c, uint32_t off);
void nvme_wr32(struct nvme_ctrl *c, uint32_t off, uint32_t val);

/* Page-aligned DMA memory out of c->ram; NULL when it is used up. */
void *nvme_dma_alloc(struct nvme_ctrl *c, size_t size, uint64_t *iova);

/* One admin command, polled to completion; *result gets CQE dword 0. */
int nvme_admin(struct nvme_ctrl *c, struct nvme_sqe *cmd, uint32_t *result,
	       int timeout_ms);
int nvme_identify(struct nvme_ctrl *c, uint8_t cns, uint32_t nsid);
/* Set Features Number of Queues: asks for @nr pairs, gets c->ioq_granted. */
int nvme_set_num_queues(struct nvme_ctrl *c, uint16_t nr);

/*
 * MSI-X on the device fd (VFIO_DEVICE_SET_IRQS, MSI-X index): one eventfd
 * per vector for @nr vectors (at most the index's count, NVME_MAX_VEC).
 */
int nvme_msix_enable(struct nvme_ctrl *c, int nr);
void nvme_msix_disable(struct nvme_ctrl *c);
/* Wait up to @timeout_ms for vector @vec; returns its count or -errno. */
int nvme_msix_wait(struct nvme_ctrl *c, int vec, int timeout_ms);

/*
 * @nr I/O queue pairs (qid 1..nr) of @depth entries: Set Features Number
 * of Queues, then Create I/O CQ (vector qid when @irq, else polled) and
 * Create I/O SQ for each.
 */
int nvme_create_io_queues(struct nvme_ctrl *c, int nr, uint16_t depth,
			  bool irq);
struct nvme_queue *nvme_ioq(struct nvme_ctrl *c, int qid);

/* A free command slot of @q, or NULL when all are in flight. */
struct nvme_req *nvme_req_get(struct nvme_queue *q);
void nvme_req_put(struct nvme_req *r);
/*
 * Submit Read, Write or Flush on @r's queue: @nlb blocks at @slba, data in
 * r->buf + r->buf_off (at most NVME_SLOT_BYTES - buf_off, and c->max_xfer).
 * PRP1 alone, PRP1 + PRP2, or PRP1 + a PRP list in PRP2 as the transfer
 * needs (r->nr_prps says which). Rings the SQ doorbell.
 */
int nvme_io_submit(struct nvme_req *r, uint8_t opcode, uint64_t slba,
		   uint32_t nlb);
/*
 * Reap completions of @q (polling the phase bit): up to @max completed
 * requests into @done (may be NULL when @max is 0: reap into the slots
 * only). Rings the CQ head doorbell. Returns the number reaped or -errno
 * (-EPROTO: the device gave an invalid CQE).
 */
int nvme_io_poll(struct nvme_queue *q, struct nvme_req **done, int max);
/*
 * Until at least one completion of @q or @timeout_ms: polls, and when the
 * CQ has a vector sleeps on its eventfd between polls.
 */
int nvme_io_wait(struct nvme_queue *q, struct nvme_req **done, int max,
		 int timeout_ms);
/*
 * Until the device has posted a completion for every command in flight on
 * every I/O queue of @c, or @timeout_ms: looks at the CQs without reaping
 * (no request changes state, no doorbell). Returns 0 or -ETIMEDOUT.
 */
int nvme_io_settle(struct nvme_ctrl *c, int timeout_ms);
/* Submit one command and wait for it; returns -errno or the NVMe status. */
int nvme_io_sync(struct nvme_req *r, uint8_t opcode, uint64_t slba,
		 uint32_t nlb, int timeout_ms);
/*
 * Submit @cmd as it is (its PRPs, namespace and dwords the caller's; the
 * command id @r's) and wait for its completion: the CQE status (0 on
 * success), or -errno when it could not be submitted or did not complete.
 */
int nvme_sqe_sync(struct nvme_req *r, struct nvme_sqe *cmd, int timeout_ms);
/* The offset in BAR 0 of queue @qid's SQ tail (@cq: CQ head) doorbell. */
uint32_t nvme_doorbell_offset(const struct nvme_ctrl *c, uint16_t qid, bool cq);

/*
 * The verified workload: random Writes, Reads and Flushes over the LBA
 * range [base, base + nr) at a queue depth on each of the controller's I/O
 * queues. Each written block carries a stamp (magic, LBA, generation, a
 * seed-derived payload and a checksum); the host-side table holds the
 * newest generation of each block, and every read block is checked
 * against it. Commands in flight never overlap in LBAs.
 *
 * For migration: run it (nvme_wl_run), stop it at any point
 * (nvme_wl_drain: nothing left in flight, the table exact), keep the
 * struct, point it at another controller over the same backing data
 * (nvme_wl_attach) and go on; nvme_wl_verify_all reads every block the
 * table knows. When the old controller can no longer complete what was in
 * flight, nvme_wl_abandon forgets those commands: their blocks may then
 * hold either the old or the new generation.
 */
#define NVME_WL_MAGIC		0x564d4947u	/* "VMIG" */
#define NVME_WL_MAX_BLOCKS	64

struct nvme_wl_block {
	uint32_t gen;		/* newest generation written, 0: unknown */
	uint32_t alt;		/* also acceptable (an abandoned write), or 0 */
	uint8_t busy;		/* a command in flight covers it */
};

struct nvme_wl {
	struct nvme_ctrl *c;
	uint64_t base;		/* first LBA */
	uint32_t nr;		/* blocks */
	uint32_t max_blocks;	/* per command */
	int depth;		/* per queue */
	uint32_t seed;
	uint64_t rng;
	uint32_t gen;		/* last generation handed out */
	struct nvme_wl_block *tab;
	/* counters */
	unsigned long writes, reads, flushes, blocks_checked, errors;
	unsigned long prp1_only, prp2, prp_list;
	unsigned int max_qd;	/* most commands seen in flight on a queue */
	/* each successful Read's data range, as the device wrote it */
	void (*on_read)(void *arg, uint64_t iova, uint64_t len);
	void *on_read_arg;
	char why[256];		/* the first error, or the last refusal */
};

int nvme_wl_init(struct nvme_wl *w, struct nvme_ctrl *c, uint64_t base,
		 uint32_t nr, int depth, uint32_t seed);
void nvme_wl_free(struct nvme_wl *w);
/* Fill a block's stamp / check one; exported for the tests. */
void nvme_wl_stamp(const struct nvme_wl *w, void *blk, uint64_t lba,
		   uint32_t gen);
int nvme_wl_check(const struct nvme_wl *w, const void *blk, uint64_t lba,
		  uint32_t *gen);
/* Write every block of the range once (generation known everywhere). */
int nvme_wl_fill(struct nvme_wl *w, int timeout_ms);
/*
 * One round: reap what completed (checking reads), then submit until every
 * queue has @depth commands in flight. Returns commands reaped or -errno.
 */
int nvme_wl_step(struct nvme_wl *w);
/* Steps until @cmds more commands completed, then drains. */
int nvme_wl_run(struct nvme_wl *w, unsigned long cmds, int timeout_ms);
/* Wait for everything in flight. */
int nvme_wl_drain(struct nvme_wl *w, int timeout_ms);
/* Forget the commands in flight on the old controller (see above). */
void nvme_wl_abandon(struct nvme_wl *w);
/* Go on with controller @c (nothing may be in flight). */
int nvme_wl_attach(struct nvme_wl *w, struct nvme_ctrl *c);
/* Read back and check every block whose generation is known. */
int nvme_wl_verify_all(struct nvme_wl *w, int timeout_ms);
unsigned long nvme_wl_inflight(const struct nvme_wl *w);

/*
 * The driver's image, as a guest keeps its driver's state in its own RAM
 * (and a VMM migrating the guest moves it with RAM): the controller's
 * fields, each queue's positions and command slots, and a workload (may
 * be NULL) with its table. Pointers are not meaningful in the image: on
 * load they are derived again from the IOVAs, in the RAM and on the
 * device of the VMM that loads it, and every IOVA must lie in that RAM.
 * The queues must be polled ones (no MSI-X vector); the controller is
 * not touched. nvme_image_save() returns the bytes written, or -ENOSPC
 * when @len is short (nvme_image_size() says how much is needed);
 * nvme_image_load() 0, -EBADMSG (c->why says why) or -ENOMEM.
 */
#define NVME_IMAGE_MAGIC	0x31474d494d564e56ull	/* "VNVMIMG1" */

size_t nvme_image_size(const struct nvme_ctrl *c, const struct nvme_wl *w);
int nvme_image_save(const struct nvme_ctrl *c, const struct nvme_wl *w,
		    void *buf, size_t len);
int nvme_image_load(struct nvme_ctrl *c, struct nvme_wl *w,
		    struct vmm_dev *d, struct vmm_ram *ram, const void *buf,
		    size_t len);
/* Free what nvme_image_load() allocated (the controller is not touched). */
void nvme_image_free(struct nvme_ctrl *c, struct nvme_wl *w);

/*
 * Ground truth for a dirty log: the NVME_PAGE pages of [base, base + size)
 * the device wrote, i.e. each successful Read's data (nvme_dw_watch hooks
 * the workload's on_read) and the I/O completion queues (nvme_dw_add_cqs),
 * compared with the pages a log reported (bit i: page i from @base,
 * little-endian 64-bit words, as mig_dirty_report gives them).
 */
struct nvme_dev_writes {
	uint64_t *bits;
	uint64_t base, size;
	unsigned long reads;	/* Reads seen */
};

struct nvme_dw_cmp {
	unsigned long reported;	/* pages the log reported */
	unsigned long missed;	/* written by the device, not reported */
	unsigned long extra;	/* reported, not written by the device */
};

int nvme_dw_init(struct nvme_dev_writes *d, uint64_t base, uint64_t size);
void nvme_dw_free(struct nvme_dev_writes *d);
void nvme_dw_mark(struct nvme_dev_writes *d, uint64_t iova, uint64_t len);
void nvme_dw_watch(struct nvme_dev_writes *d, struct nvme_wl *w);
void nvme_dw_add_cqs(struct nvme_dev_writes *d, const struct nvme_ctrl *c);
void nvme_dw_compare(const struct nvme_dev_writes *d, const uint64_t *seen,
		     struct nvme_dw_cmp *r);

#endif
