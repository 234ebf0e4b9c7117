/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig profile "nvme": a model of one NVMe controller as its guest
 * driver drives it, built only from what the trap sees (register and
 * doorbell writes) and what the trap reads from guest memory by IOVA
 * (submission queue entries, PRP lists and SGL segments, completion queue
 * entries the guest has released).
 *
 * The model answers three questions for the profile:
 *  - which guest pages may the device write because of a command being
 *    handed to it (data buffers of commands that move data to the host,
 *    and the completion queue slot the command's completion will land in);
 *  - how many commands has the device been given and not yet completed
 *    (the quiesce waits for zero);
 *  - what state does the guest driver depend on (registers, features,
 *    queues and their positions): the state record that migrates.
 *
 * Everything it reads from guest memory is guest controlled. A guest that
 * rewrites a submission queue entry after ringing its doorbell, or forges a
 * completion, can make the model wrong about its own memory only: the
 * device's DMA stays inside the VM's IOMMU domain whatever the model thinks.
 * No loop or allocation depends on a guest number beyond the bounds below.
 *
 * Concurrency. The model is plain C, built unchanged in user space by
 * selftests/unit/nvme_model; it takes one lock of its caller's, through
 * nvmp_env.lock and .unlock (the "model lock"). The caller guarantees:
 *  - device-wide calls (nvmp_init(), nvmp_track_init(), nvmp_reg_write(),
 *    doorbells of queue 0, nvmp_forward(), nvmp_outstanding(),
 *    nvmp_settle(), nvmp_remark(), save and restore) run alone: no other
 *    call on the controller runs meanwhile;
 *  - a doorbell of queue pair q >= 1 (SQ q tail or CQ q head,
 *    nvmp_doorbell_queue() says which) may run concurrently with
 *    doorbells of other queue pairs q' >= 1, never with one of the same
 *    pair (the caller keeps a lock per queue pair); but a tail doorbell
 *    of an SQ the model does not follow (nvmp_sq_follows() false) is
 *    device-wide: it may apply admin completions (nvmp_doorbell()).
 * What such a doorbell touches is either its queue pair's own (nvmp_sq q,
 * nvmp_cq q's head and consumed count, nvmp_qctx q), read-only while
 * device-wide calls are excluded (registers, namespaces, which queues are
 * live and where), or taken under the model lock: the in-flight store,
 * the CQ slot counter (@issued: SQs may share a CQ) and how far its
 * completions were seen posted (@seen), @untracked and the counters. The
 * lock is never held across a read of guest memory except while a
 * command with more than NVMP_STAGE discontiguous ranges is decoded (its
 * ranges must be contiguous in the store).
 */
#ifndef _VMIG_NVME_MODEL_H
#define _VMIG_NVME_MODEL_H

#include <linux/types.h>

/* Register offsets in BAR 0 (NVMe 1.4, 3.1) */
#define NVMP_REG_CAP		0x00
#define NVMP_REG_VS		0x08
#define NVMP_REG_INTMS		0x0c
#define NVMP_REG_INTMC		0x10
#define NVMP_REG_CC		0x14
#define NVMP_REG_CSTS		0x1c
#define NVMP_REG_NSSR		0x20
#define NVMP_REG_AQA		0x24
#define NVMP_REG_ASQ		0x28
#define NVMP_REG_ACQ		0x30
#define NVMP_REG_DBS		0x1000	/* first doorbell */

#define NVMP_CC_EN		0x1
#define NVMP_CC_MPS(cc)		(((cc) >> 7) & 0xf)
#define NVMP_CC_IOSQES(cc)	(((cc) >> 16) & 0xf)
#define NVMP_CC_IOCQES(cc)	(((cc) >> 20) & 0xf)
/* CC bits a record may not carry: reserved, CRIME, SHN, AMS */
#define NVMP_CC_REFUSED		0xff00f80eu

/* What the model follows (bounds of every guest-driven loop and table) */
#define NVMP_MAX_QID		16	/* queue ids 0 (admin) .. 15 */
#define NVMP_MAX_QSIZE		4096	/* entries per queue */
#define NVMP_MAX_VEC		32	/* interrupt vectors (feature 0x09) */
#define NVMP_MAX_NS		16	/* namespaces with a known format */
#define NVMP_MAX_PENDING	16	/* admin commands awaiting completion */
#define NVMP_MAX_XFER		(8u << 20)	/* bytes per command */
#define NVMP_MAX_SGL_DESC	256	/* SGL descriptors walked per command */
#define NVMP_MAX_AER		4	/* Asynchronous Event Requests held */
#define NVMP_SQE_SIZE		64
#define NVMP_CQE_SIZE		16

/* Features whose value the model keeps (Set Features, FID) */
enum nvmp_feat {
	NVMP_FEAT_ARB,		/* 0x01 Arbitration */
	NVMP_FEAT_PM,		/* 0x02 Power Management */
	NVMP_FEAT_ERR_REC,	/* 0x05 Error Recovery */
	NVMP_FEAT_VWC,		/* 0x06 Volatile Write Cache */
	NVMP_FEAT_NQ,		/* 0x07 Number of Queues (the granted value) */
	NVMP_FEAT_IRQ_COAL,	/* 0x08 Interrupt Coalescing */
	NVMP_FEAT_WR_ATOMIC,	/* 0x0a Write Atomicity Normal */
	NVMP_FEAT_AEC,		/* 0x0b Asynchronous Event Configuration */
	NVMP_FEAT_NR
};

/* nvmp_ctrl.untracked: why the model cannot vouch for the device */
#define NVMP_UT_QID		0x0001	/* a queue id >= NVMP_MAX_QID */
#define NVMP_UT_QSIZE		0x0002	/* a queue larger than NVMP_MAX_QSIZE */
#define NVMP_UT_NONCONTIG	0x0004	/* a queue not physically contiguous */
#define NVMP_UT_FEATURE		0x0008	/* a feature the model does not keep */
#define NVMP_UT_PENDING		0x0010	/* > NVMP_MAX_PENDING admin commands */
#define NVMP_UT_SGL		0x0020	/* an SGL descriptor type not followed */
#define NVMP_UT_XFER		0x0040	/* a transfer above NVMP_MAX_XFER */
#define NVMP_UT_ENTRY_SIZE	0x0080	/* I/O queue entry sizes not 64/16 */
#define NVMP_UT_CQ_LOST		0x0100	/* an SQ deleted with work in flight */
#define NVMP_UT_NS		0x0200	/* more than NVMP_MAX_NS namespaces */
#define NVMP_UT_MEMORY		0x0400	/* guest memory unreadable */
#define NVMP_UT_AER		0x0800	/* more than NVMP_MAX_AER AERs */
#define NVMP_UT_TRACK		0x1000	/* the in-flight store overflowed */
#define NVMP_UT_ADMIN		0x2000	/* an admin command not modelled */
#define NVMP_UT_CC		0x4000	/* CC's MPS, entry sizes changed */

/*
 * How the model reaches guest memory. @read: copy @len bytes at guest IOVA
 * @iova into @buf (0 or -errno). @dirty: the device may write
 * [@iova, @iova + @len) (a byte range; the caller rounds to pages); may be
 * called concurrently (doorbells of two queue pairs). @lock, @unlock: the
 * model lock (see above; a sleeping lock: a guest read may happen under
 * it); NULL when the caller never runs two calls at once.
 */
struct nvmp_env {
	int (*read)(void *ctx, u64 iova, void *buf, u32 len);
	void (*dirty)(void *ctx, u64 iova, u64 len);
	void *ctx;
	void (*lock)(void *ctx);
	void (*unlock)(void *ctx);
};

/*
 * The ranges of commands in flight (struct nvmp_track): a mark made when a
 * command is handed over is cleared by the next dirty report, and the
 * device may write after it. Every command that may write guest data
 * keeps its ranges here until the guest releases its completion, and
 * nvmp_remark() marks them all again at each report.
 *
 * A guest may reuse a command id once the command completed, before it
 * releases that completion (a driver that frees the id as it reads the
 * completion and writes the head doorbell later). The release of the old
 * completion must not end the new command's record: each record keeps the
 * position on its CQ (@after) up to which the guest's CQ showed posted
 * completions when the command was handed over. Those were posted before
 * the device had the command, so none of them is its own; a released
 * completion before @after belongs to an older command with the same id.
 */
struct nvmp_range {
	u64 iova;
	u64 len;
};

struct nvmp_rec {
	u64 first;	/* index of its first range (monotonic) */
	u64 after;	/* its CQ's completions before this one are older */
	u16 n;		/* ranges */
	u16 sqid;
	u16 cid;
	u8 live;	/* completion not released yet */
};

/*
 * Storage the caller provides (nvmp_track_init()); sizes powers of two.
 * Ranges and records are rings in submission order; a released record
 * frees its ranges once every older one is released too.
 */
#define NVMP_MAX_LOST		32	/* commands the store lost, followed */

struct nvmp_track {
	struct nvmp_range *r;
	struct nvmp_rec *rec;
	u32 *hash;	/* 2 x nr_rec slots: record index + 1, 0 empty */
	u32 nr_r, nr_rec;
	u32 hash_shift;	/* 32 - log2(2 x nr_rec) */
	u64 r_head, r_tail;
	u64 c_head, c_tail;
	struct nvmp_rec *cur;	/* being filled by the decoder */
	u64 live;
	/*
	 * Commands the store could not keep (NVMP_UT_TRACK), by SQ and
	 * command id, until the guest releases their completions; a remark
	 * (a dirty report, a log's start) while one is in the set may have
	 * lost one of their writes. Once the set empties with no such remark
	 * (and never overflowed), every write of theirs is in the log,
	 * marked at submission: the model is exact again.
	 */
	struct { u64 after; u16 sqid, cid; } lost[NVMP_MAX_LOST];
	u32 nr_lost;
	bool lost_reported;	/* or the set overflowed: sticky */
};

/* ranges of one command gathered before they enter the store */
#define NVMP_STAGE		16

/*
 * What a doorbell of one queue pair works with, so that doorbells of two
 * pairs need not share it: scratch for reads from guest memory (a batch of
 * entries, a chunk of a PRP list) and the command being decoded. Owned by
 * whoever runs the pair's doorbell (see Concurrency above).
 */
struct nvmp_qctx {
	u8 ent[512];		/* SQEs or CQEs */
	u8 list[512];		/* PRP list entries */
	struct nvmp_range stage[NVMP_STAGE];
	u16 n_stage;
	u16 cid;		/* the command being decoded */
	u64 after;		/* its CQ's posted entries before it */
	u8 track;		/* its ranges go to the store */
	u8 locked;		/* it spilled: the model lock is held */
	u32 ut;			/* NVMP_UT_* seen, for @untracked */
	u64 dirty_calls;
};

struct nvmp_sq {
	u64 base;	/* IOVA of entry 0 */
	u16 size;	/* entries */
	u16 cqid;
	u16 tail;	/* the guest's last tail doorbell */
	u16 fwd;	/* tail handed to the device (== tail unless held) */
	u8 live;
	u8 prio;
};

struct nvmp_cq {
	u64 base;
	u16 size;
	u16 iv;		/* interrupt vector */
	u16 head;	/* the guest's last head doorbell */
	u8 live;
	u8 ien;		/* interrupts enabled */
	u64 issued;	/* commands handed to the device that complete here */
	u64 consumed;	/* entries the guest released (head doorbells) */
	u64 seen;	/* entries before it seen posted (model lock) */
};

/* An admin command whose effect applies when it completes successfully. */
struct nvmp_pending {
	u16 cid;
	u8 opcode;
	u8 used;
	u32 seq;	/* submission order: a reused id completes oldest first */
	u32 nsid;
	u32 cdw10, cdw11;
	u64 prp1, prp2;
};

struct nvmp_ns {
	u32 nsid;
	u8 lba_shift;
	u8 ext;		/* metadata interleaved with the data (FLBAS bit 4) */
	u16 ms;		/* metadata bytes per block (separate buffer unless @ext) */
	u64 nsze;	/* size in blocks (compatibility check only) */
};

struct nvmp_ctrl {
	/* device facts, set by the profile at open */
	u32 db_stride;		/* bytes between doorbells: 4 << CAP.DSTRD */
	u16 mqes;		/* CAP.MQES + 1: largest queue the device takes */
	u32 max_xfer;		/* bytes per command the device moves, capped */
	struct nvmp_env env;

	/* registers as the guest wrote them */
	u32 cc, aqa, intms;
	u64 asq, acq;
	u8 enabled;		/* CC.EN seen set and not cleared */

	struct nvmp_sq sq[NVMP_MAX_QID];
	struct nvmp_cq cq[NVMP_MAX_QID];
	struct nvmp_pending pending[NVMP_MAX_PENDING];
	u32 pending_seq;
	/*
	 * Admin CQ entries before this position were applied when posted
	 * (nvmp_settle(), or a tail rung on an SQ whose creation the guest
	 * had not released): their release applies nothing again.
	 */
	u64 admin_settled;

	u32 feat[NVMP_FEAT_NR];
	u32 feat_set;		/* bit per enum nvmp_feat: set by the guest */
	u32 iv_cfg[NVMP_MAX_VEC];	/* feature 0x09, by vector */
	u32 iv_cfg_set;		/* bit per vector */
	struct nvmp_ns ns[NVMP_MAX_NS];
	unsigned int nr_ns;

	u16 aer_cid[NVMP_MAX_AER];	/* AERs handed over, not completed */
	unsigned int nr_aer;

	u32 untracked;		/* NVMP_UT_*, sticky until controller reset */
	u8 last_unmediated;	/* the admin opcode behind NVMP_UT_ADMIN */

	struct nvmp_track trk;

	/* counters, for reports and tests */
	u64 cmds, dirty_calls, bad_doorbells;

	/* per queue pair (index: queue id) */
	struct nvmp_qctx q[NVMP_MAX_QID];
};

/* A zeroed controller with the device's facts. */
void nvmp_init(struct nvmp_ctrl *c, const struct nvmp_env *env, u64 cap,
	       u32 max_xfer);
/*
 * The guest wrote @val to the register at @off of BAR 0 (@width 4 or 8;
 * the trap splits wider ones). Doorbell writes go to nvmp_doorbell().
 */
void nvmp_reg_write(struct nvmp_ctrl *c, u32 off, u64 val, u8 width);
/*
 * The guest wrote @val to the doorbell at @off (>= NVMP_REG_DBS). A tail
 * doorbell is recorded; when @forward, the entries from the last forwarded
 * tail to it are decoded (dirty ranges reported) and the caller then hands
 * the tail to the device. A CQ head doorbell releases entries (admin
 * completions are applied). Returns 0, or -EINVAL for a doorbell the device
 * ignores too (queue not created, value past its size). May sleep: it
 * reads guest memory and reschedules between batches of entries.
 */
int nvmp_doorbell(struct nvmp_ctrl *c, u32 off, u32 val, bool forward);
/*
 * The queue pair (1 .. NVMP_MAX_QID - 1) a write at @off is the doorbell
 * of, when that doorbell may run concurrently with other pairs' (see
 * Concurrency above); 0 for everything device-wide (registers, the admin
 * queue, a doorbell past the queues the model follows, a controller not
 * enabled).
 */
u16 nvmp_doorbell_queue(const struct nvmp_ctrl *c, u32 off);
/* Hand held tails to the model: decode sq's entries up to its tail. */
void nvmp_forward(struct nvmp_ctrl *c, u16 qid);
/*
 * Commands handed to the device with no completion posted yet, not
 * counting Asynchronous Event Requests (they wait for an event, not for
 * the device: the quiesce does not wait for them, they migrate).
 */
u64 nvmp_outstanding(struct nvmp_ctrl *c);
/*
 * Apply the admin completions the device posted and the guest has not
 * released yet (the save needs the device's view; the guest's later
 * release of them changes nothing).
 */
void nvmp_settle(struct nvmp_ctrl *c);
/*
 * Give the model its in-flight store (@nr_r ranges, @nr_rec records, a
 * hash of 2 x @nr_rec u32: powers of two). Without one, nothing is kept
 * and nvmp_remark() marks only the completion slots.
 */
void nvmp_track_init(struct nvmp_ctrl *c, struct nvmp_range *r, u32 nr_r,
		     struct nvmp_rec *rec, u32 nr_rec, u32 *hash);
/*
 * After a dirty report cleared the log: mark again everything the device
 * may still write, the data of every command whose completion the guest
 * has not released and the completion slots not yet consumed.
 */
void nvmp_remark(struct nvmp_ctrl *c);
/* Register offset of a doorbell: SQ @qid tail (@cq false) or CQ head. */
u32 nvmp_db_offset(const struct nvmp_ctrl *c, u16 qid, bool cq);
/* Is a Create I/O SQ @qid pending (submitted, completion not released)? */
bool nvmp_sq_creating(const struct nvmp_ctrl *c, u16 qid);
bool nvmp_sq_follows(const struct nvmp_ctrl *c, u16 qid);

#endif /* _VMIG_NVME_MODEL_H */
