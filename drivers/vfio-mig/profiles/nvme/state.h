/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfio-mig profile "nvme": the controller state that migrates (the record,
 * little endian, fixed size) and its restore onto another controller.
 *
 * The record holds what the guest driver depends on, as NVMe 2.1's
 * controller state (TP4159) lists it: CC, AQA/ASQ/ACQ, INTMS, the features
 * the guest set, and per queue its base, size, CQ link, interrupt vector
 * and enable, SQ head (the device's: entries fetched) and tail (the
 * guest's: entries beyond the head are held work), CQ head (the guest's)
 * and tail and phase (the device's next completion). It is taken with the
 * device quiesced: every command handed over has completed, except
 * Asynchronous Event Requests, whose command ids travel and are handed to
 * the target again.
 */
#ifndef _VMIG_NVME_STATE_H
#define _VMIG_NVME_STATE_H

#include <asm/byteorder.h>
#include <uapi/linux/vfio_mig_nvme.h>

#include "model.h"

#define NVMP_STATE_VERSION	2	/* 1: before the record was canonical */

#define NVMP_QF_SQ		0x01	/* SQ created */
#define NVMP_QF_CQ		0x02	/* CQ created */
#define NVMP_QF_IEN		0x04	/* CQ interrupts enabled */
#define NVMP_QF_PHASE		0x08	/* phase of the CQ's next completion */

struct nvmp_state_q {
	__le64 sq_base;
	__le64 cq_base;
	__le16 sq_size;
	__le16 cq_size;
	__le16 sq_cqid;
	__le16 cq_iv;
	__le16 sq_head;
	__le16 sq_tail;
	__le16 cq_head;
	__le16 cq_tail;
	u8 flags;
	u8 sq_prio;
	u8 rsvd[6];
};

#define NVMP_NSF_EXT		0x01	/* metadata interleaved (extended LBA) */

struct nvmp_state_ns {
	__le32 nsid;
	__le16 ms;		/* metadata bytes per block */
	u8 lba_shift;
	u8 flags;		/* NVMP_NSF_*; EXT only with @ms */
};

struct nvmp_state {
	__le32 version;
	__le32 cc;
	__le32 aqa;
	__le32 intms;
	__le64 asq;
	__le64 acq;
	__le64 admin_issued;	/* admin commands since enable */
	__le32 feat[NVMP_FEAT_NR];
	__le32 feat_set;
	__le32 iv_cfg[NVMP_MAX_VEC];
	__le32 iv_cfg_set;
	__le32 nr_ns;
	struct nvmp_state_ns ns[NVMP_MAX_NS];
	__le16 aer_cid[NVMP_MAX_AER];
	__le32 nr_aer;
	struct nvmp_state_q q[NVMP_MAX_QID];
};

/* What the target controller offers (from its CAP and the profile). */
struct nvmp_limits {
	u16 mqes;		/* largest queue, entries */
	u16 nr_ioq;		/* I/O queue pairs it can grant */
	u16 nr_vec;		/* MSI-X vectors */
	u8 mps_min, mps_max;	/* CAP.MPSMIN/MPSMAX */
};

/*
 * The admin queue's positions repeat every lcm(SQ size, 2 x CQ size)
 * commands (the CQ's phase doubles its period); the restore pads to it.
 */
static inline u64 nvmp_admin_period(const struct nvmp_state *st)
{
	u32 aqa = le32_to_cpu(st->aqa);
	u64 a = (aqa & 0xfff) + 1, b = 2 * (((aqa >> 16) & 0xfff) + 1);
	u64 x = a, y = b;

	while (y) {
		u64 t = x % y;

		x = y;
		y = t;
	}
	return a / x * b;
}

/* The longest admin pad nvmp_state_check() lets a record ask for. */
#define NVMP_MAX_ADMIN_PERIOD	65536

/*
 * Fill @st from the model: -EBUSY while commands are outstanding, -EIO
 * when the model cannot vouch for the device (c->untracked).
 */
int nvmp_save(struct nvmp_ctrl *c, struct nvmp_state *st);
/*
 * Is @st a state @lim can take? 0, or -EINVAL with *@why naming the field
 * (a record from the network: every field is checked).
 */
int nvmp_state_check(const struct nvmp_state *st,
		     const struct nvmp_limits *lim, const char **why);
/* Set the target's model to @st (checked); doorbells beyond are held. */
void nvmp_load(struct nvmp_ctrl *c, const struct nvmp_state *st);

/*
 * How the restore reaches the target controller: registers of BAR 0, a
 * wait between polls (returns -ETIMEDOUT once the restore's deadline has
 * passed, or -EINTR), and guest memory writes by IOVA.
 */
struct nvmp_dev {
	void (*wr)(void *ctx, u32 off, u64 val, u8 width);
	u64 (*rd)(void *ctx, u32 off, u8 width);
	int (*wait)(void *ctx);
	int (*write)(void *ctx, u64 iova, const void *buf, u32 len);
	void *ctx;
};

/* Bytes of guest queue memory the restore saves and puts back. */
size_t nvmp_restore_buf_size(const struct nvmp_state *st);
/*
 * Bring a disabled controller to @st (checked) without executing any guest
 * command: the guest's queues are created at their bases and brought to
 * their positions by Flush and Get Features commands written over the
 * queue memory, which is saved into @buf (nvmp_restore_buf_size() bytes)
 * first (the CQs then zeroed: completions are seen by their phase bit)
 * and written back after. The guest must not run meanwhile (the
 * target VM is stopped). AERs are handed over again last. 0 or -errno,
 * *@why says what failed.
 */
int nvmp_restore(struct nvmp_ctrl *c, const struct nvmp_state *st,
		 const struct nvmp_dev *dev, void *buf, size_t len,
		 const char **why);

/*
 * The compatibility check (needs.c, Documentation/nvme-profile.rst
 * "Compatibility"). nvmp_needs(): what the guest uses, from the source's
 * model. nvmp_needs_valid(), nvmp_facts_valid(): is a record from user
 * space well formed (@len its bytes)? 0, or -EINVAL with the reason in
 * @why. nvmp_needs_check(): may a guest with @n (valid) move onto a
 * target VF whose kernel reads @lim (NULL: registers unreadable;
 * @lim->nr_ioq is not used) and whose PF told @f (valid; NULL: no facts)?
 * 0 with what was not checked or tolerated in @notes (appended), or
 * -EINVAL with the reason in @why.
 */
void nvmp_needs(const struct nvmp_ctrl *c, struct vfio_mig_nvme_needs *n);
int nvmp_needs_valid(const struct vfio_mig_nvme_needs *n, u32 len,
		     char *why, size_t why_len);
int nvmp_facts_valid(const struct vfio_mig_nvme_facts *f, u32 len,
		     char *why, size_t why_len);
int nvmp_needs_check(const struct vfio_mig_nvme_needs *n,
		     const struct vfio_mig_nvme_facts *f,
		     const struct nvmp_limits *lim, char *why, size_t why_len,
		     char *notes, size_t notes_len);

#endif /* _VMIG_NVME_STATE_H */
