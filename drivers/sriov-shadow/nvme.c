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
 *    in order) and nothing the guest submits completes; a completion
 *    queue head it writes releases completions posted before the engage.
 * The device is idle but not stopped: an Asynchronous Event Request it
 * holds may still complete and interrupt the guest directly.
 *
 * The device keeps the state it had at engage, so the hand-back is the
 * guest's writes since then, in a canonical order the device takes as it
 * would have taken the guest's: the controller reset if the guest
 * disabled it; the interrupt mask; AQA, ASQ and ACQ; an enable; the last
 * value of each doorbell since the last reset (none while disabled); a
 * change of an enabled controller (a shutdown). The profile sees
 * each (it reads the queued commands and marks what they may write, as if
 * the guest had just rung): the held I/O runs then, once, in order. That
 * is at most NVSH_MAX_WRITES writes, whatever the guest did; doorbell
 * writes the device ignores (not a whole slot of a queue id it can have)
 * are not kept. A guest that disables the controller while engaged drops
 * the doorbells it wrote before: the device never sees them, as if it had
 * aborted those commands at the reset.
 *
 * A migration of the engaged device carries the record with the guest's
 * doorbells since the engage applied (held submissions travel as the
 * queues' tails, as the profile's own P2P states hold them), unless the
 * record no longer describes the controller: the guest reconfigured it
 * (CC, AQA, ASQ, ACQ), wrote a doorbell the record cannot take (a head
 * past the completions it knows), the device completed an AER meanwhile
 * (its entry is in the admin CQ at the record's tail), or a hand-back
 * failed part way. Then the stop-copy is refused and the source
 * runs on. A target does not engage an NVMe shadow from a stream: the
 * profile's restore drives the guest's queues, which needs the target VM
 * stopped (nvme-profile.rst), so its device takes the state.
 */
#include <linux/device.h>
#include <linux/module.h>
#include <linux/string.h>

#include "models.h"
#include "profile.h"
#include "profiles/nvme/state.h"

#define NVSH_CC_SHN(cc)		(((cc) >> 14) & 3)
#define NVSH_CSTS_RDY		0x1
#define NVSH_CSTS_SHST_DONE	(2u << 2)
#define NVSH_DB_SLOTS		(2 * NVMP_MAX_QID)
/* the mask (2), the reset (1), AQA, ASQ and ACQ (5), CC (1), doorbells */
#define NVSH_MAX_WRITES		(9 + NVSH_DB_SLOTS)

/* Registers the hand-back gives the device when the guest wrote them. */
enum nvsh_reg { NVSH_AQA, NVSH_ASQ_LO, NVSH_ASQ_HI, NVSH_ACQ_LO,
		NVSH_ACQ_HI, NVSH_NR_REGS };

static const u32 nvsh_reg_off[NVSH_NR_REGS] = {
	NVMP_REG_AQA, NVMP_REG_ASQ, NVMP_REG_ASQ + 4, NVMP_REG_ACQ,
	NVMP_REG_ACQ + 4,
};

/**
 * struct nvsh_model - the shadow NVMe controller (vmig_shadow_priv())
 * @st: the device's state record at engage (disabled after a reset), with
 *	the guest's doorbells since applied: the record a migration carries
 * @cap: CAP, captured at engage
 * @vs: VS, captured at engage
 * @cc: CC as written
 * @cc_dev: CC as the device has it (at engage, or after a reset)
 * @reg: AQA, ASQ and ACQ as written (enum nvsh_reg), @reg_set those
 *	written since the engage
 * @reg_set: see @reg
 * @intms: the interrupt mask (INTMS sets bits, INTMC clears them)
 * @intm_set: INTMS or INTMC written
 * @reset: the guest disabled the controller (CC.EN 1 -> 0) while engaged
 * @db: each doorbell's last value since the engage or the last reset,
 *	@db_set those written
 * @db_set: see @db
 * @db_stride: bytes between doorbells (CAP.DSTRD)
 * @stale: @st no longer describes the controller (see above)
 *
 * Under the shadow's mutex (every op runs under it).
 */
struct nvsh_model {
	struct nvmp_state st;
	u64 cap;
	u32 vs;
	u32 cc, cc_dev;
	u32 reg[NVSH_NR_REGS];
	DECLARE_BITMAP(reg_set, NVSH_NR_REGS);
	u32 intms;
	bool intm_set, reset;
	u32 db[NVSH_DB_SLOTS];
	DECLARE_BITMAP(db_set, NVSH_DB_SLOTS);
	u32 db_stride;
	bool stale;
};

static struct nvsh_model *model(struct vmig_shadow *sh)
{
	return vmig_shadow_priv(sh);
}

/* The registers from the record, as the device holds them. */
static void regs_from_record(struct nvsh_model *m)
{
	u64 asq = le64_to_cpu(m->st.asq), acq = le64_to_cpu(m->st.acq);

	m->cc = le32_to_cpu(m->st.cc);
	m->cc_dev = m->cc;
	m->reg[NVSH_AQA] = le32_to_cpu(m->st.aqa);
	m->reg[NVSH_ASQ_LO] = lower_32_bits(asq);
	m->reg[NVSH_ASQ_HI] = upper_32_bits(asq);
	m->reg[NVSH_ACQ_LO] = lower_32_bits(acq);
	m->reg[NVSH_ACQ_HI] = upper_32_bits(acq);
	m->intms = le32_to_cpu(m->st.intms);
}

static int nvsh_engage(struct vmig_shadow *sh,
		       const struct vmig_shadow_image *img, const char **why)
{
	struct nvsh_model *m = model(sh);
	u64 vs;

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

static u32 csts(const struct nvsh_model *m)
{
	u32 v = 0;

	if (m->cc & NVMP_CC_EN)
		v |= NVSH_CSTS_RDY;
	if (NVSH_CC_SHN(m->cc))
		v |= NVSH_CSTS_SHST_DONE;
	return v;
}

static int reg_index(u32 off)
{
	int i;

	for (i = 0; i < NVSH_NR_REGS; i++)
		if (nvsh_reg_off[i] == off)
			return i;
	return -1;
}

static u32 reg32(const struct nvsh_model *m, u32 off)
{
	int i = reg_index(off);

	if (i >= 0)
		return m->reg[i];
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
	}
	/* other registers (CMB, boot partitions, ...) and doorbells */
	return 0;
}

static u64 nvsh_read(struct vmig_shadow *sh, u8 bar, u32 off, u8 width)
{
	u32 v;

	if (bar)
		return 0;
	v = reg32(model(sh), round_down(off, 4)) >> (8 * (off & 3));
	return width >= 4 ? v : v & ((1u << (8 * width)) - 1);
}

/* Is @v within @from .. @to, going forward in a ring of @size? */
static bool ring_within(u16 from, u16 to, u16 v, u16 size)
{
	return (v + size - from) % size <= (to + size - from) % size;
}

/* A doorbell of a queue the record has: the record follows it. */
static void record_doorbell(struct nvsh_model *m, u32 slot, u32 val)
{
	struct nvmp_state_q *q = &m->st.q[slot / 2];
	u16 size;

	if (m->stale)
		return;
	if (!(slot & 1)) {
		size = le16_to_cpu(q->sq_size);
		if (!(q->flags & NVMP_QF_SQ))
			return;
		if (val < size)
			q->sq_tail = cpu_to_le16(val);
		else
			m->stale = true;	/* the device flags it */
		return;
	}
	size = le16_to_cpu(q->cq_size);
	if (!(q->flags & NVMP_QF_CQ))
		return;
	/* completions the device posted before the engage, no further */
	if (val < size &&
	    ring_within(le16_to_cpu(q->cq_head), le16_to_cpu(q->cq_tail),
			val, size))
		q->cq_head = cpu_to_le16(val);
	else
		m->stale = true;
}

static void doorbell(struct nvsh_model *m, u32 off, u8 width, u32 val)
{
	u32 slot = (off - NVMP_REG_DBS) / m->db_stride;

	/*
	 * Not a whole slot of a queue id the device can have, or a disabled
	 * controller (no queues): the device ignores it.
	 */
	if (width != 4 || (off - NVMP_REG_DBS) % m->db_stride ||
	    slot >= NVSH_DB_SLOTS || !(m->cc & NVMP_CC_EN))
		return;
	m->db[slot] = val;
	set_bit(slot, m->db_set);
	record_doorbell(m, slot, val);
}

static void nvsh_write(struct vmig_shadow *sh, u8 bar, u32 off, u8 width,
		       u64 val)
{
	struct nvsh_model *m = model(sh);
	u32 v = val;
	int i;

	if (bar)
		return;
	if (off >= NVMP_REG_DBS) {
		doorbell(m, off, width, v);
		return;
	}
	if (width != 4)		/* registers take dword accesses */
		return;
	i = reg_index(off);
	if (i >= 0) {
		m->reg[i] = v;
		set_bit(i, m->reg_set);
		m->stale = true;
		return;
	}
	switch (off) {
	case NVMP_REG_INTMS:
		m->intms |= v;
		break;
	case NVMP_REG_INTMC:
		m->intms &= ~v;
		break;
	case NVMP_REG_CC:
		if ((m->cc & NVMP_CC_EN) && !(v & NVMP_CC_EN)) {
			/* the doorbells and the mask go with the reset */
			m->reset = true;
			bitmap_zero(m->db_set, NVSH_DB_SLOTS);
			m->intms = 0;
			m->intm_set = false;
		}
		m->cc = v;
		m->stale = true;
		return;
	default:	/* read-only, or not modelled: the write is lost */
		return;
	}
	m->intm_set = true;
	m->st.intms = cpu_to_le32(m->intms);
}

/*
 * The device is idle, not stopped: an AER it held may have completed into
 * the admin CQ since the engage, past the tail the record has (the guest
 * may not have released it yet). Then the record is not the device's.
 */
static int aer_posted(struct vmig_shadow *sh, struct nvsh_model *m)
{
	const struct nvmp_state_q *q = &m->st.q[0];
	__le16 status;
	int ret;

	if (!(q->flags & NVMP_QF_CQ) || !le32_to_cpu(m->st.nr_aer))
		return 0;
	ret = vmig_shadow_peek(sh, le64_to_cpu(q->cq_base) +
			       le16_to_cpu(q->cq_tail) * NVMP_CQE_SIZE + 14,
			       &status, sizeof(status));
	if (ret)
		return ret;
	if ((le16_to_cpu(status) & 1) != !!(q->flags & NVMP_QF_PHASE))
		return 0;
	dev_warn_ratelimited(vmig_shadow_device(sh),
			     "nvme shadow: the device completed an AER while engaged: no migration while engaged; hand the device back first\n");
	m->stale = true;
	return -EBUSY;
}

/* The record, for a migration of the engaged device. */
static int nvsh_save(struct vmig_shadow *sh, struct vmig_shadow_image *img)
{
	struct nvsh_model *m = model(sh);
	int ret;

	if (m->stale) {
		dev_warn_ratelimited(vmig_shadow_device(sh),
				     "nvme shadow: the controller changed in ways its state record cannot say (register writes, a completion the device posted, a partial hand-back): no migration while engaged; hand the device back first\n");
		return -EBUSY;
	}
	if (!img->devstate || img->devstate_max < sizeof(m->st))
		return -ENOSPC;
	ret = aer_posted(sh, m);
	if (ret)
		return ret;
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
static void nvsh_reset(struct vmig_shadow *sh)
{
	struct nvsh_model *m = model(sh);
	u32 vs = m->vs, stride = m->db_stride;
	u64 cap = m->cap;

	memset(m, 0, sizeof(*m));
	m->st.version = cpu_to_le32(NVMP_STATE_VERSION);
	m->cap = cap;
	m->vs = vs;
	m->db_stride = stride;
	regs_from_record(m);
}

static void put(struct vmig_held_write *w, u32 *n, u32 off, u32 val)
{
	w[(*n)++] = (struct vmig_held_write){
		.value = val, .offset = off, .bar = 0, .width = 4,
	};
}

static int nvsh_handback_writes(struct vmig_shadow *sh,
				struct vmig_held_write *w, u32 max,
				const char **why)
{
	struct nvsh_model *m = model(sh);
	u32 n = 0, cc_dev = m->cc_dev;
	unsigned int i;
	bool late_cc;

	if (max < NVSH_MAX_WRITES) {
		*why = "nvme: more writes than a hand-back takes";
		return -ENOSPC;
	}
	/* the reset first: it clears the mask */
	if (m->reset && (cc_dev & NVMP_CC_EN)) {
		cc_dev &= ~NVMP_CC_EN;
		put(w, &n, NVMP_REG_CC, cc_dev);
	}
	/* then the mask: the held commands complete under the guest's */
	if (m->intm_set) {
		put(w, &n, NVMP_REG_INTMS, m->intms);
		put(w, &n, NVMP_REG_INTMC, ~m->intms);
	}
	for_each_set_bit(i, m->reg_set, NVSH_NR_REGS)
		put(w, &n, nvsh_reg_off[i], m->reg[i]);
	/*
	 * An enable before the doorbells (they need the queues); a change of
	 * an enabled controller (a shutdown) after them, as the guest wrote
	 * the doorbells first.
	 */
	late_cc = (m->cc & NVMP_CC_EN) && (cc_dev & NVMP_CC_EN);
	if (m->cc != cc_dev && !late_cc)
		put(w, &n, NVMP_REG_CC, m->cc);
	for_each_set_bit(i, m->db_set, NVSH_DB_SLOTS)
		put(w, &n, NVMP_REG_DBS + i * m->db_stride, m->db[i]);
	if (m->cc != cc_dev && late_cc)
		put(w, &n, NVMP_REG_CC, m->cc);
	return n;
}

/*
 * The hand-back stopped after the first @done writes of @w reached the
 * device: they are the device's now, so another hand-back gives only the
 * rest (no second reset, no register written twice); the record is no
 * longer the device's.
 */
static void nvsh_handback_failed(struct vmig_shadow *sh,
				 const struct vmig_held_write *w, u32 done)
{
	struct nvsh_model *m = model(sh);
	u32 i, off;
	int r;

	m->stale = true;
	for (i = 0; i < done; i++) {
		off = w[i].offset;
		r = reg_index(off);
		if (off == NVMP_REG_CC) {
			m->cc_dev = w[i].value;
			if (!(m->cc_dev & NVMP_CC_EN))
				m->reset = false;
		} else if (off == NVMP_REG_INTMC) {
			m->intm_set = false;
		} else if (r >= 0) {
			clear_bit(r, m->reg_set);
		} else if (off >= NVMP_REG_DBS) {
			clear_bit((off - NVMP_REG_DBS) / m->db_stride,
				  m->db_set);
		}
	}
}

const struct vmig_shadow_ops sriov_shadow_nvme = {
	.profile = "nvme",
	.owner = THIS_MODULE,
	.priv_size = sizeof(struct nvsh_model),
	.serves_stream = false,
	.engage = nvsh_engage,
	.read = nvsh_read,
	.write = nvsh_write,
	.save = nvsh_save,
	.reset = nvsh_reset,
	.handback_writes = nvsh_handback_writes,
	.handback_failed = nvsh_handback_failed,
};
