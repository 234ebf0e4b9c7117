// SPDX-License-Identifier: GPL-2.0
/*
 * sriov-shadow: a software edu (QEMU's educational device, 1234:11e8) that
 * serves the guest while its device is taken away.
 *
 * It follows QEMU's hw/misc/edu.c register for register: 4-byte accesses
 * below 0x80, 4- or 8-byte ones from 0x80 (vfio_mig hands it 4-byte
 * pieces), anything else reads all ones and is ignored; liveness stores
 * the complement of what is written; the DMA address registers are
 * ignored while a transfer runs. Where the device works in the
 * background, the model works at once: a factorial is computed as its
 * operand is written, and a transfer runs as its start is written, so the
 * guest finds the computing and start bits clear at its next read. A
 * transfer moves bytes between the model's buffer and guest memory with
 * vmig_shadow_dma() (which marks what it writes in the DMA dirty log); one
 * the device would not make (edu_dma_fits(): outside the buffer's reach,
 * its last byte included, or of no bytes) is not made, and the command
 * register keeps what it held before that start. While the device's DMA
 * is held (P2P states of a migration), a transfer keeps its start bit set
 * and starts when DMA may go again, on this host or on the target.
 * Interrupts go to the VMM's eventfd for the enabled type: vector 0 of
 * MSI, or INTx.
 *
 * Engaged on its device, the model starts from the registers and gets the
 * buffer later (the devstate op: the device moves it by its own DMA, a
 * tenth of a second, while the model already serves); a transfer started
 * before then keeps its start bit until the buffer is there.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/printk.h>
#include <linux/string.h>

#include "models.h"
#include "profile.h"
#include "profiles/edu.h"

/**
 * struct edu_model - the software edu (vmig_shadow_priv())
 * @liveness: what reads of the liveness register give
 * @fact: the factorial register
 * @status: the status register (only its interrupt-enable bit is ever
 *	set: computing ends at once)
 * @irq_status: raised and not acknowledged interrupts
 * @dma_src: DMA source address
 * @dma_dst: DMA destination address
 * @dma_cnt: DMA byte count
 * @dma_cmd: DMA command (the start bit is clear between writes)
 * @cmd_before: while a transfer waits to start, the command it replaced:
 *	what the device's register holds until the start reaches it (a
 *	held start is given as work on top of it)
 * @operand: the last factorial operand written, valid if @have_operand
 * @have_operand: see @operand
 * @scratch: the guest page the device's state was moved through
 * @irq_later: an interrupt raised while the device's DMA was held (a
 *	stream's factorial): signalled when DMA may go
 * @buf_state: what @buf holds: EDU_BUF_HAVE the buffer, EDU_BUF_LATER
 *	nothing yet (the devstate op brings it), EDU_BUF_DEVICE nothing for
 *	good (the device kept it: @save gives none, the hand-back leaves it)
 * @buf_gen: transfers into @buf so far
 * @buf: the device buffer
 *
 * Under the shadow's mutex (every op runs under it).
 */
struct edu_model {
	u32 liveness, fact, status, irq_status;
	u64 dma_src, dma_dst, dma_cnt, dma_cmd;
	u64 cmd_before;
	u32 operand;
	bool have_operand;
	u64 scratch;
	bool irq_later;
	enum { EDU_BUF_HAVE, EDU_BUF_LATER, EDU_BUF_DEVICE } buf_state;
	u64 buf_gen;
	u8 buf[EDU_BUF_SIZE];
};

static struct edu_model *model(struct vmig_shadow *sh)
{
	return vmig_shadow_priv(sh);
}

/* Each register the edu profile captures, and its width. */
static const struct {
	u32 off;
	u8 width;
} edu_state_regs[] = {
	{ EDU_LIVENESS, 4 }, { EDU_FACTORIAL, 4 }, { EDU_STATUS, 4 },
	{ EDU_IRQ_STATUS, 4 }, { EDU_DMA_SRC, 8 }, { EDU_DMA_DST, 8 },
	{ EDU_DMA_COUNT, 8 }, { EDU_DMA_CMD, 8 },
};

static u64 *reg64(struct edu_model *m, u32 off)
{
	switch (off) {
	case EDU_DMA_SRC:
		return &m->dma_src;
	case EDU_DMA_DST:
		return &m->dma_dst;
	case EDU_DMA_COUNT:
		return &m->dma_cnt;
	case EDU_DMA_CMD:
		return &m->dma_cmd;
	}
	return NULL;
}

static u32 *reg32(struct edu_model *m, u32 off)
{
	switch (off) {
	case EDU_LIVENESS:
		return &m->liveness;
	case EDU_FACTORIAL:
		return &m->fact;
	case EDU_STATUS:
		return &m->status;
	case EDU_IRQ_STATUS:
		return &m->irq_status;
	}
	return NULL;
}

static void run_dma(struct vmig_shadow *sh);
static void factorial(struct vmig_shadow *sh, u32 n, bool signal);

/* The buffer from the device state blob of @img. */
static int take_buffer(struct edu_model *m,
		       const struct vmig_shadow_image *img, const char **why)
{
	const struct edu_state *st = (const void *)img->devstate;

	if (!st || img->devstate_len != sizeof(*st) ||
	    le32_to_cpu(st->version) != EDU_STATE_VERSION ||
	    !(le32_to_cpu(st->flags) & EDU_STATE_BUF)) {
		*why = "edu: buffer not captured: no guest page named (debugfs scratch)";
		return -ENODATA;
	}
	memcpy(m->buf, st->buf, sizeof(m->buf));
	m->scratch = le64_to_cpu(st->scratch);
	m->buf_state = EDU_BUF_HAVE;
	return 0;
}

static int edu_engage(struct vmig_shadow *sh,
		      const struct vmig_shadow_image *img, const char **why)
{
	struct edu_model *m = model(sh);
	int i, ret;
	u64 v;

	for (i = 0; i < ARRAY_SIZE(edu_state_regs); i++) {
		u32 off = edu_state_regs[i].off;

		if (vmig_shadow_image_get(img, false, 0, off,
					  edu_state_regs[i].width, &v)) {
			*why = "edu: a register of the device was not captured";
			return -ENODATA;
		}
		if (reg64(m, off))
			*reg64(m, off) = v;
		else
			*reg32(m, off) = v;
	}
	if (img->devstate_later) {
		m->buf_state = EDU_BUF_LATER;
	} else {
		ret = take_buffer(m, img, why);
		if (ret)
			return ret;
	}
	/* the register file's last operand, if it gives the result */
	if (!vmig_shadow_image_get(img, true, 0, EDU_FACTORIAL, 4, &v) &&
	    v <= U32_MAX) {
		m->operand = v;
		m->have_operand = edu_fact32(v) == m->fact;
	}
	/*
	 * Work a migration stream may carry: a factorial (the register holds
	 * its operand) ends now, its interrupt when DMA may go; a transfer
	 * the source held (its start, as the profile keeps held starts)
	 * starts then. A running transfer is never in a capture: the device
	 * was quiesced, the model's own held one travels as held work.
	 */
	if (m->dma_cmd & EDU_CMD_RUN) {
		*why = "edu: a transfer in flight in the state";
		return -EINVAL;
	}
	if (m->status & EDU_STATUS_COMPUTING) {
		m->status &= ~EDU_STATUS_COMPUTING;
		factorial(sh, m->fact, false);
	}
	for (i = 0; i < img->nr_held; i++) {
		const struct vmig_held_write *w = &img->held[i];

		if (w->bar || w->offset != EDU_DMA_CMD || w->width != 4 ||
		    !(w->value & EDU_CMD_RUN)) {
			*why = "edu: held work that is not a DMA start";
			return -EINVAL;
		}
		if (!(m->dma_cmd & EDU_CMD_RUN)) {
			m->cmd_before = m->dma_cmd;
			m->dma_cmd = w->value;
		}
	}
	if (m->dma_cmd & EDU_CMD_RUN)
		run_dma(sh);
	return 0;
}

static void raise_irq(struct vmig_shadow *sh, u32 bits)
{
	struct edu_model *m = model(sh);

	m->irq_status |= bits;
	if (m->irq_status)
		vmig_shadow_irq(sh, 0);
}

/* One transfer, at once; see the top of the file. */
static void run_dma(struct vmig_shadow *sh)
{
	struct edu_model *m = model(sh);
	bool to_ram = m->dma_cmd & EDU_CMD_TO_RAM;
	u64 dev = to_ram ? m->dma_src : m->dma_dst;
	u64 ram = (to_ram ? m->dma_dst : m->dma_src) & EDU_DMA_MASK;
	u64 cnt = m->dma_cnt;
	int ret;

	if (!edu_dma_fits(dev, cnt)) {
		pr_warn_ratelimited("edu shadow: a transfer of %llu bytes at buffer address %#llx is outside the buffer: not made\n",
				    cnt, dev);
		/* as the profile drops it: the device's command stays */
		m->dma_cmd = m->cmd_before;
		return;
	}
	if (m->buf_state != EDU_BUF_HAVE)	/* the start bit stays set */
		return;
	ret = vmig_shadow_dma(sh, ram, m->buf + (dev - EDU_BUF_ADDR), cnt,
			      to_ram);
	/* DMA held, or the caller killed: the start bit stays set */
	if (ret == -EAGAIN || ret == -EINTR)
		return;
	/* EIO: the guest has bus mastering off, the transfer goes nowhere */
	if (ret && ret != -EIO)
		pr_warn_ratelimited("edu shadow: a transfer at guest IOVA %#llx failed: %d\n",
				    ram, ret);
	if (!ret && !to_ram)
		m->buf_gen++;
	m->dma_cmd &= ~EDU_CMD_RUN;
	if (m->dma_cmd & EDU_CMD_IRQ)
		raise_irq(sh, EDU_IRQ_DMA);
}

static void factorial(struct vmig_shadow *sh, u32 n, bool signal)
{
	struct edu_model *m = model(sh);

	m->operand = n;
	m->have_operand = true;
	m->fact = edu_fact32(n);
	if (!(m->status & EDU_STATUS_IRQFACT))
		return;
	if (signal) {
		raise_irq(sh, EDU_IRQ_FACT);
	} else {
		m->irq_status |= EDU_IRQ_FACT;
		m->irq_later = true;
	}
}

/* DMA may go again: what was held meanwhile goes. */
static void edu_unhold(struct vmig_shadow *sh)
{
	struct edu_model *m = model(sh);

	if (m->irq_later && m->irq_status)
		vmig_shadow_irq(sh, 0);
	m->irq_later = false;
	if (m->dma_cmd & EDU_CMD_RUN)
		run_dma(sh);
}

/* A reset drops a held transfer, as the profile drops held starts. */
static void edu_reset(struct vmig_shadow *sh)
{
	struct edu_model *m = model(sh);

	m->dma_cmd &= ~EDU_CMD_RUN;
	m->irq_later = false;
}

/* A transfer a killed caller left (its start bit set) goes now. */
static void retry(struct vmig_shadow *sh)
{
	if (model(sh)->dma_cmd & EDU_CMD_RUN)
		run_dma(sh);
}

static bool width_ok(u32 off, u8 width)
{
	return width == 4 || (off >= EDU_DMA_SRC && width == 8);
}

static u64 edu_read(struct vmig_shadow *sh, u8 bar, u32 off, u8 width)
{
	struct edu_model *m = model(sh);

	retry(sh);
	if (bar || !width_ok(off, width))
		return ~0ULL;
	if (off == EDU_ID)
		return 0x010000ed;
	if (reg32(m, off))
		return *reg32(m, off);
	if (reg64(m, off))
		return *reg64(m, off);
	return ~0ULL;
}

static void edu_write(struct vmig_shadow *sh, u8 bar, u32 off, u8 width,
		      u64 val)
{
	struct edu_model *m = model(sh);

	retry(sh);
	if (bar || !width_ok(off, width))
		return;
	switch (off) {
	case EDU_LIVENESS:
		m->liveness = ~val;
		break;
	case EDU_FACTORIAL:
		factorial(sh, val, true);
		break;
	case EDU_STATUS:
		if (val & EDU_STATUS_IRQFACT)
			m->status |= EDU_STATUS_IRQFACT;
		else
			m->status &= ~EDU_STATUS_IRQFACT;
		break;
	case EDU_IRQ_RAISE:
		raise_irq(sh, val);
		break;
	case EDU_IRQ_ACK:
		m->irq_status &= ~val;
		break;
	case EDU_DMA_SRC:
	case EDU_DMA_DST:
	case EDU_DMA_COUNT:
		/* ignored while a transfer runs, as the device does */
		if (!(m->dma_cmd & EDU_CMD_RUN))
			*reg64(m, off) = val;
		break;
	case EDU_DMA_CMD:
		if (!(val & EDU_CMD_RUN) || m->dma_cmd & EDU_CMD_RUN)
			break;
		m->cmd_before = m->dma_cmd;
		m->dma_cmd = val;
		run_dma(sh);
		break;
	}
}

static int edu_save(struct vmig_shadow *sh, struct vmig_shadow_image *img)
{
	struct edu_model *m = model(sh);
	struct edu_state *st = (void *)img->devstate;
	int i, ret = 0;
	u64 v;

	if (!st || img->devstate_max < sizeof(*st))
		return -ENOSPC;
	if (m->buf_state == EDU_BUF_LATER)	/* not while the engage runs */
		return -EBUSY;
	for (i = 0; i < ARRAY_SIZE(edu_state_regs) && !ret; i++) {
		u32 off = edu_state_regs[i].off;

		v = reg64(m, off) ? *reg64(m, off) : *reg32(m, off);
		/*
		 * A waiting transfer goes as held work, as the device's
		 * would, on top of the command its register held before.
		 */
		if (off == EDU_DMA_CMD && v & EDU_CMD_RUN) {
			ret = vmig_shadow_image_hold(img, 0, EDU_DMA_CMD, 4, v);
			v = m->cmd_before & ~(u64)EDU_CMD_RUN;
		}
		if (!ret)
			ret = vmig_shadow_image_put(img, false, 0, off,
						    edu_state_regs[i].width, v);
	}
	if (!ret)
		ret = vmig_shadow_image_put(img, false, 0, EDU_ID, 4,
					    0x010000ed);
	if (!ret && m->have_operand)
		ret = vmig_shadow_image_put(img, true, 0, EDU_FACTORIAL, 4,
					    m->operand);
	if (ret)
		return ret;
	st->version = cpu_to_le32(EDU_STATE_VERSION);
	st->scratch = cpu_to_le64(m->scratch);
	if (m->buf_state == EDU_BUF_HAVE) {
		st->flags = cpu_to_le32(EDU_STATE_BUF);
		memcpy(st->buf, m->buf, sizeof(st->buf));
		st->buf[EDU_BUF_DMA] = 0;
	}
	img->devstate_len = sizeof(*st);
	img->devstate_gen = m->buf_gen;
	img->devstate_kept = m->buf_state == EDU_BUF_DEVICE;
	return 0;
}

/*
 * The buffer, read by the device once the engage moved the guest here;
 * a transfer that waited for it goes. NULL: it could not be read, the
 * device keeps it, and the hand-back that follows leaves it there.
 */
static int edu_devstate(struct vmig_shadow *sh,
			const struct vmig_shadow_image *img, const char **why)
{
	struct edu_model *m = model(sh);
	int ret;

	if (m->buf_state != EDU_BUF_LATER) {
		*why = "edu: the buffer came already";
		return -EINVAL;
	}
	if (!img) {
		m->buf_state = EDU_BUF_DEVICE;
		return 0;
	}
	ret = take_buffer(m, img, why);
	if (!ret)
		retry(sh);
	return ret;
}

const struct vmig_shadow_ops sriov_shadow_edu = {
	.profile = "edu",
	.owner = THIS_MODULE,
	.priv_size = sizeof(struct edu_model),
	.serves_stream = true,
	.engage = edu_engage,
	.read = edu_read,
	.write = edu_write,
	.save = edu_save,
	.reset = edu_reset,
	.unhold = edu_unhold,
	.devstate = edu_devstate,
};
