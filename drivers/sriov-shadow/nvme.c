// SPDX-License-Identifier: GPL-2.0
/*
 * sriov-shadow: an NVMe controller (QEMU's, PF or SR-IOV VF; vfio-mig's
 * nvme profile) that serves the guest while its device is taken away.
 *
 * The model holds the guest's work; it runs none of it. At engage the
 * device is quiesced (every command handed to it completed) and its state
 * record (profiles/nvme/state.h) taken. While engaged:
 *  - the registers read as the guest wrote them: CAP and VS as captured,
 *    CC, AQA, ASQ, ACQ and the interrupt mask as written, CSTS.RDY
 *    following CC.EN at once and CSTS.SHST complete once CC.SHN is set;
 *  - a doorbell write is kept, not executed: the commands the guest
 *    queues stay in its own submission queues (bounded by their sizes,
 *    in order) and nothing completes; a completion queue head it writes
 *    releases completions posted before the engage;
 *  - nothing raises an interrupt.
 * The device keeps the state it had at engage, so the hand-back is the
 * guest's writes since then, handed to the device in order through the
 * profile (which reads the queued commands and marks what they may write
 * as if the guest had just rung): the held I/O runs then, once, in order.
 * A controller reset by the guest while engaged drops the doorbells
 * written before it (the device would not have fetched them either).
 *
 * A migration of the engaged device carries the record with the guest's
 * doorbells since the engage applied (held submissions travel as the
 * queues' tails, as the profile's own P2P states hold them), unless the
 * guest reconfigured the controller meanwhile (CC, AQA, ASQ, ACQ): then
 * the save is refused and the source runs on. A target does not engage a
 * shadow from a stream: the profile's restore drives the guest's queues,
 * which needs the target VM stopped, so its device takes the state.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/module.h>
#include <linux/printk.h>
#include <linux/string.h>

#include "models.h"
#include "profile.h"
#include "profiles/nvme/state.h"

/* Writes the model keeps for the hand-back (vfio_mig takes up to 128). */
#define NVSH_LOG_MAX	96

#define NVSH_CC_SHN(cc)		(((cc) >> 14) & 3)
#define NVSH_CSTS_RDY		0x1
#define NVSH_CSTS_SHST_DONE	(2u << 2)

/**
 * struct nvme_model - the shadow NVMe controller (vmig_shadow_priv())
 * @st: the device's state record at engage (disabled after a reset), with
 *	the guest's valid doorbells since applied: the record a migration
 *	carries
 * @cap: CAP, captured at engage
 * @vs: VS, captured at engage
 * @cc: CC as written
 * @aqa: AQA as written
 * @asq: ASQ as written
 * @acq: ACQ as written
 * @intms: the interrupt mask (INTMS sets bits, INTMC clears them)
 * @db_stride: bytes between doorbells (CAP.DSTRD)
 * @reconfigured: CC, AQA, ASQ or ACQ written since the engage (or the
 *	reset): @st no longer describes the controller
 * @intm_written: INTMS or INTMC written: the hand-back sets the mask
 * @overflow: the guest wrote more than @log holds: no hand-back
 * @log: the writes for the hand-back, in order; a doorbell or register
 *	written again since the last CC write updates its entry
 * @nr_log: entries in @log
 * @epoch: the first entry after the last CC write
 *
 * Under the shadow's mutex (every op runs under it).
 */
struct nvme_model {
	struct nvmp_state st;
	u64 cap;
	u32 vs;
	u32 cc, aqa;
	u64 asq, acq;
	u32 intms;
	u32 db_stride;
	bool reconfigured, intm_written, overflow;
	struct vmig_held_write log[NVSH_LOG_MAX];
	u32 nr_log;
	u32 epoch;
};

static struct nvme_model *model(struct vmig_shadow *sh)
{
	return vmig_shadow_priv(sh);
}

/* The registers from the record, as the device holds them. */
static void regs_from_record(struct nvme_model *m)
{
	m->cc = le32_to_cpu(m->st.cc);
	m->aqa = le32_to_cpu(m->st.aqa);
	m->asq = le64_to_cpu(m->st.asq);
	m->acq = le64_to_cpu(m->st.acq);
	m->intms = le32_to_cpu(m->st.intms);
}

static int nvme_engage(struct vmig_shadow *sh,
		       const struct vmig_shadow_image *img, const char **why)
{
	struct nvme_model *m = model(sh);
	u64 vs;

	if (img->from_stream) {
		/* the profile's restore drives the guest's queues */
		*why = "nvme: a target's VF takes the state with the VM stopped";
		return -EOPNOTSUPP;
	}
	if (!img->devstate || img->devstate_len != sizeof(m->st)) {
		*why = "nvme: no controller state record";
		return -ENODATA;
	}
	memcpy(&m->st, img->devstate, sizeof(m->st));
	if (le32_to_cpu(m->st.version) != NVMP_STATE_VERSION) {
		*why = "nvme: state record of another version";
		return -EINVAL;
	}
	if (vmig_shadow_image_get(img, false, 0, NVMP_REG_CAP, 8, &m->cap) ||
	    vmig_shadow_image_get(img, false, 0, NVMP_REG_VS, 4, &vs)) {
		*why = "nvme: CAP and VS were not captured";
		return -ENODATA;
	}
	m->vs = vs;
	m->db_stride = 4u << ((m->cap >> 32) & 0xf);
	regs_from_record(m);
	return 0;
}

static u32 csts(const struct nvme_model *m)
{
	u32 v = 0;

	if (m->cc & NVMP_CC_EN)
		v |= NVSH_CSTS_RDY;
	if (NVSH_CC_SHN(m->cc))
		v |= NVSH_CSTS_SHST_DONE;
	return v;
}

static u32 reg32(const struct nvme_model *m, u32 off)
{
	switch (off) {
	case NVMP_REG_CAP:
		return lower_32_bits(m->cap);
	case NVMP_REG_CAP + 4:
		return upper_32_bits(m->cap);
	case NVMP_REG_VS:
		return m->vs;
	case NVMP_REG_INTMS:
	case NVMP_REG_INTMC:
		return m->intms;
	case NVMP_REG_CC:
		return m->cc;
	case NVMP_REG_CSTS:
		return csts(m);
	case NVMP_REG_AQA:
		return m->aqa;
	case NVMP_REG_ASQ:
		return lower_32_bits(m->asq);
	case NVMP_REG_ASQ + 4:
		return upper_32_bits(m->asq);
	case NVMP_REG_ACQ:
		return lower_32_bits(m->acq);
	case NVMP_REG_ACQ + 4:
		return upper_32_bits(m->acq);
	}
	/* other registers (CMB, boot partitions, ...) and doorbells */
	return 0;
}

static u64 nvme_read(struct vmig_shadow *sh, u8 bar, u32 off, u8 width)
{
	u32 v;

	if (bar)
		return 0;
	v = reg32(model(sh), round_down(off, 4)) >> (8 * (off & 3));
	return width >= 4 ? v : v & ((1u << (8 * width)) - 1);
}

/* Keep a write for the hand-back; @merge: update its entry this epoch. */
static void log_write(struct nvme_model *m, u32 off, u8 width, u64 val,
		      bool merge)
{
	u32 i;

	if (merge) {
		for (i = m->epoch; i < m->nr_log; i++) {
			if (m->log[i].offset == off &&
			    m->log[i].width == width) {
				m->log[i].value = val;
				return;
			}
		}
	}
	if (m->nr_log == NVSH_LOG_MAX) {
		m->overflow = true;
		return;
	}
	m->log[m->nr_log++] = (struct vmig_held_write){
		.value = val, .offset = off, .bar = 0, .width = width,
	};
}

/* A controller reset drops the doorbells kept before it. */
static void drop_doorbells(struct nvme_model *m)
{
	u32 i, n = 0;

	for (i = 0; i < m->nr_log; i++)
		if (m->log[i].offset < NVMP_REG_DBS)
			m->log[n++] = m->log[i];
	m->nr_log = n;
}

/* Is @v within @from .. @to, going forward in a ring of @size? */
static bool ring_within(u16 from, u16 to, u16 v, u16 size)
{
	return (u16)((v + size - from) % size) <= (u16)((to + size - from) % size);
}

/* A valid doorbell of a queue the record has: the record follows it. */
static void record_doorbell(struct nvme_model *m, u32 off, u32 val)
{
	u32 slot = (off - NVMP_REG_DBS) / m->db_stride;
	struct nvmp_state_q *q;
	u16 size;

	if (m->reconfigured || (off - NVMP_REG_DBS) % m->db_stride ||
	    slot >= 2 * NVMP_MAX_QID)
		return;
	q = &m->st.q[slot / 2];
	if (!(slot & 1)) {
		size = le16_to_cpu(q->sq_size);
		if ((q->flags & NVMP_QF_SQ) && val < size)
			q->sq_tail = cpu_to_le16(val);
		return;
	}
	size = le16_to_cpu(q->cq_size);
	/* completions the device posted before the engage, no further */
	if ((q->flags & NVMP_QF_CQ) && val < size &&
	    ring_within(le16_to_cpu(q->cq_head), le16_to_cpu(q->cq_tail),
			val, size))
		q->cq_head = cpu_to_le16(val);
}

static void nvme_write(struct vmig_shadow *sh, u8 bar, u32 off, u8 width,
		       u64 val)
{
	struct nvme_model *m = model(sh);
	u32 v = val;

	if (bar)
		return;
	if (off >= NVMP_REG_DBS) {
		/* as written: the device judges a write it would ignore */
		log_write(m, off, width, val, true);
		if (width == 4)
			record_doorbell(m, off, v);
		return;
	}
	if (width != 4)		/* registers take dword accesses */
		return;
	switch (off) {
	case NVMP_REG_INTMS:
		m->intms |= v;
		m->intm_written = true;
		m->st.intms = cpu_to_le32(m->intms);
		return;
	case NVMP_REG_INTMC:
		m->intms &= ~v;
		m->intm_written = true;
		m->st.intms = cpu_to_le32(m->intms);
		return;
	case NVMP_REG_CC:
		if ((m->cc & NVMP_CC_EN) && !(v & NVMP_CC_EN))
			drop_doorbells(m);
		m->cc = v;
		log_write(m, off, width, val, false);
		m->epoch = m->nr_log;
		break;
	case NVMP_REG_AQA:
		m->aqa = v;
		break;
	case NVMP_REG_ASQ:
		m->asq = (m->asq & GENMASK_ULL(63, 32)) | v;
		break;
	case NVMP_REG_ASQ + 4:
		m->asq = (m->asq & GENMASK_ULL(31, 0)) | ((u64)v << 32);
		break;
	case NVMP_REG_ACQ:
		m->acq = (m->acq & GENMASK_ULL(63, 32)) | v;
		break;
	case NVMP_REG_ACQ + 4:
		m->acq = (m->acq & GENMASK_ULL(31, 0)) | ((u64)v << 32);
		break;
	default:	/* read-only, or not modelled: the write is lost */
		return;
	}
	if (off != NVMP_REG_CC)
		log_write(m, off, width, val, true);
	m->reconfigured = true;
}

/* The record, for a migration of the engaged device. */
static int nvme_save(struct vmig_shadow *sh, struct vmig_shadow_image *img)
{
	struct nvme_model *m = model(sh);
	int ret;

	if (m->reconfigured || m->overflow) {
		dev_warn_ratelimited(vmig_shadow_device(sh),
				     "nvme shadow: the guest reconfigured its controller while engaged: no state record to migrate; hand the device back first\n");
		return -EBUSY;
	}
	if (!img->devstate || img->devstate_max < sizeof(m->st))
		return -ENOSPC;
	ret = vmig_shadow_image_put(img, false, 0, NVMP_REG_CAP, 8, m->cap);
	if (!ret)
		ret = vmig_shadow_image_put(img, false, 0, NVMP_REG_VS, 4,
					    m->vs);
	if (ret)
		return ret;
	memcpy(img->devstate, &m->st, sizeof(m->st));
	img->devstate_len = sizeof(m->st);
	return 0;
}

/*
 * The device was reset (so was its profile's model): so is this one, and
 * what it kept for the device is gone with what the device had.
 */
static void nvme_reset(struct vmig_shadow *sh)
{
	struct nvme_model *m = model(sh);

	memset(&m->st, 0, sizeof(m->st));
	m->st.version = cpu_to_le32(NVMP_STATE_VERSION);
	regs_from_record(m);
	m->reconfigured = false;
	m->intm_written = false;
	m->overflow = false;
	m->nr_log = 0;
	m->epoch = 0;
}

static int nvme_handback_writes(struct vmig_shadow *sh,
				struct vmig_held_write *w, u32 max,
				const char **why)
{
	struct nvme_model *m = model(sh);
	u32 n = m->nr_log;

	if (m->overflow) {
		*why = "nvme: more register writes while engaged than kept";
		return -ENOSPC;
	}
	if (n + 2 > max) {
		*why = "nvme: more writes than a hand-back takes";
		return -ENOSPC;
	}
	memcpy(w, m->log, n * sizeof(*w));
	if (m->intm_written) {
		/* the mask as the guest left it: all clear, then its bits */
		w[n++] = (struct vmig_held_write){
			.value = U32_MAX, .offset = NVMP_REG_INTMC, .width = 4,
		};
		w[n++] = (struct vmig_held_write){
			.value = m->intms, .offset = NVMP_REG_INTMS, .width = 4,
		};
	}
	return n;
}

const struct vmig_shadow_ops sriov_shadow_nvme = {
	.profile = "nvme",
	.owner = THIS_MODULE,
	.priv_size = sizeof(struct nvme_model),
	.engage = nvme_engage,
	.read = nvme_read,
	.write = nvme_write,
	.save = nvme_save,
	.reset = nvme_reset,
	.handback_writes = nvme_handback_writes,
};
