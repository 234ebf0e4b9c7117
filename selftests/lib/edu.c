// SPDX-License-Identifier: GPL-2.0
/* User-space driver for QEMU's edu device, on top of the test VMM. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "edu.h"

uint32_t edu_rd(struct edu *e, uint32_t off)
{
	return e->mmio ? vmm_mmio_read32(e->dev, 0, off) :
			 vmm_read32(e->dev, 0, off);
}

void edu_wr(struct edu *e, uint32_t off, uint32_t val)
{
	if (e->mmio)
		vmm_mmio_write32(e->dev, 0, off, val);
	else
		vmm_write32(e->dev, 0, off, val);
}

void edu_wr64(struct edu *e, uint32_t off, uint64_t val)
{
	if (e->mmio) {
		volatile uint64_t *p = vmm_bar_mmap(e->dev, 0);

		if (p)
			p[off / 8] = val;
	} else {
		vmm_write64(e->dev, 0, off, val);
	}
}

int edu_probe(struct edu *e, struct vmm_dev *d, bool mmio)
{
	int ret;

	e->dev = d;
	e->mmio = mmio;
	ret = vmm_enable_bus_master(d);
	if (ret)
		return ret;
	if (mmio && !vmm_bar_mmap(d, 0))
		return -errno;
	return edu_rd(e, EDU_REG_ID) == EDU_ID_VALUE ? 0 : -ENODEV;
}

uint32_t edu_liveness(struct edu *e, uint32_t val)
{
	edu_wr(e, EDU_REG_LIVENESS, val);
	return edu_rd(e, EDU_REG_LIVENESS);
}

uint32_t edu_factorial_ref(uint32_t n)
{
	uint32_t r = 1;

	while (n > 1)
		r *= n--;
	return r;
}

static int wait_clear(struct edu *e, uint32_t reg, uint32_t bit,
		      int timeout_ms)
{
	uint64_t end = vmm_now_us() + (uint64_t)timeout_ms * 1000;

	while (edu_rd(e, reg) & bit) {
		if (e->poll_hook) {
			uint64_t t0 = vmm_now_us();

			if (e->poll_hook(e->poll_arg))
				return -ECANCELED;
			/* the time parked does not count */
			end += vmm_now_us() - t0;
		}
		if (vmm_now_us() > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
	return 0;
}

int edu_factorial(struct edu *e, uint32_t n, uint32_t *result, int timeout_ms)
{
	bool (*hook)(void *arg) = e->poll_hook;
	int ret;

	/* microseconds: a pause waits for it (the device's quiesce does) */
	e->poll_hook = NULL;
	edu_wr(e, EDU_REG_FACTORIAL, n);
	ret = wait_clear(e, EDU_REG_STATUS, EDU_STATUS_COMPUTING, timeout_ms);
	e->poll_hook = hook;
	if (ret)
		return ret;
	*result = edu_rd(e, EDU_REG_FACTORIAL);
	return 0;
}

int edu_dma_start(struct edu *e, bool to_ram, uint64_t iova, uint32_t buf_off,
		  uint32_t count, bool irq)
{
	uint64_t dev = EDU_BUF_ADDR + buf_off;
	uint32_t cmd = EDU_DMA_START;

	if (!count || count > EDU_DMA_MAX ||
	    buf_off + count >= EDU_BUF_SIZE || iova + count > EDU_DMA_MASK)
		return -EINVAL;
	if (to_ram)
		cmd |= EDU_DMA_TO_RAM;
	if (irq)
		cmd |= EDU_DMA_IRQ;
	edu_wr64(e, EDU_REG_DMA_SRC, to_ram ? dev : iova);
	edu_wr64(e, EDU_REG_DMA_DST, to_ram ? iova : dev);
	edu_wr64(e, EDU_REG_DMA_COUNT, count);
	edu_wr64(e, EDU_REG_DMA_CMD, cmd);
	return 0;
}

int edu_dma_wait(struct edu *e, int timeout_ms)
{
	return wait_clear(e, EDU_REG_DMA_CMD, EDU_DMA_START, timeout_ms);
}

int edu_dma(struct edu *e, bool to_ram, uint64_t iova, uint32_t buf_off,
	    uint32_t count, bool irq, int timeout_ms)
{
	int ret;

	ret = edu_dma_start(e, to_ram, iova, buf_off, count, irq);
	if (ret)
		return ret;
	if (!irq)
		return edu_dma_wait(e, timeout_ms);
	ret = vmm_irq_wait(e->dev, timeout_ms);
	if (ret < 0)
		return ret;
	if (!(edu_rd(e, EDU_REG_IRQ_STATUS) & EDU_IRQ_DMA))
		return -EIO;
	edu_wr(e, EDU_REG_IRQ_ACK, EDU_IRQ_DMA);
	vmm_irq_unmask(e->dev);
	return edu_dma_wait(e, timeout_ms);
}

void edu_regs_read(struct edu *e, struct edu_regs *r)
{
	r->liveness = edu_rd(e, EDU_REG_LIVENESS);
	r->factorial = edu_rd(e, EDU_REG_FACTORIAL);
	r->status = edu_rd(e, EDU_REG_STATUS);
	r->irq_status = edu_rd(e, EDU_REG_IRQ_STATUS);
	/*
	 * The DMA registers are 64 bits wide, but 6.1's vfio-pci splits an
	 * 8-byte BAR read in two 4-byte ones, and edu answers ~0 for a read
	 * of an upper half: their low halves (all the workload uses: IOVAs
	 * below 4 GiB, short counts) read the same on every kernel.
	 */
	r->dma_src = edu_rd(e, EDU_REG_DMA_SRC);
	r->dma_dst = edu_rd(e, EDU_REG_DMA_DST);
	r->dma_count = edu_rd(e, EDU_REG_DMA_COUNT);
	r->dma_cmd = edu_rd(e, EDU_REG_DMA_CMD);
}

/* ---- a seeded random workload with a model of the device ---- */

uint64_t edu_wl_rand(struct edu_wl *w)
{
	/* xorshift64* */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 0x2545f4914f6cdd1dull;
}

void edu_wl_bytes(struct edu_wl *w, uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = 1 + edu_wl_rand(w) % 255;
}

void edu_wl_init(struct edu_wl *w, struct edu *e, struct vmm_ram *ram,
		 uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->e = e;
	w->ram = ram;
	w->rng = seed ? seed : 1;
}

static void wl_fail(struct edu_wl *w, const char *fmt, ...)
{
	va_list ap;

	if (!w->errors++) {
		va_start(ap, fmt);
		vsnprintf(w->why, sizeof(w->why), fmt, ap);
		va_end(ap);
	}
}

static uint8_t *wl_host(struct edu_wl *w, uint64_t iova)
{
	return (uint8_t *)w->ram->host + (iova - w->ram->iova);
}

static void wl_write_ram(struct edu_wl *w, uint64_t iova, const void *src,
			 size_t len)
{
	if (w->vcpu_write)
		w->vcpu_write(w->priv, iova, src, len);
	else
		memcpy(wl_host(w, iova), src, len);
}

/* A random transfer: buffer offset, length, guest RAM address. */
static void wl_pick(struct edu_wl *w, uint32_t *off, uint32_t *len,
		    uint64_t *iova)
{
	*len = 1 + edu_wl_rand(w) % EDU_DMA_MAX;
	/* Never the buffer's last byte: off + len <= EDU_BUF_SIZE - 1. */
	*off = edu_wl_rand(w) % (EDU_BUF_SIZE - *len);
	*iova = w->ram->iova + edu_wl_rand(w) % (w->ram->size - *len + 1);
}

int edu_wl_to_device(struct edu_wl *w, uint64_t iova, uint32_t off,
		     uint32_t len)
{
	uint8_t data[EDU_DMA_MAX];
	int ret;

	if (len > EDU_DMA_MAX)
		return -EINVAL;
	edu_wl_bytes(w, data, len);
	wl_write_ram(w, iova, data, len);
	ret = edu_dma(w->e, false, iova, off, len, false, 5000);
	if (ret)
		return ret;
	memcpy(w->buf + off, data, len);
	w->dmas_in++;
	return 0;
}

int edu_wl_to_ram(struct edu_wl *w, uint64_t iova, uint32_t off, uint32_t len)
{
	int ret;

	ret = edu_dma(w->e, true, iova, off, len, false, 5000);
	if (ret)
		return ret;
	w->dmas_out++;
	w->checks++;
	if (memcmp(wl_host(w, iova), w->buf + off, len))
		wl_fail(w, "DMA of %u bytes from buffer offset %u to %#llx: RAM differs from the model",
			len, off, (unsigned long long)iova);
	return 0;
}

int edu_wl_fill(struct edu_wl *w)
{
	int ret;

	ret = edu_wl_to_device(w, w->ram->iova, 0, EDU_DMA_MAX);
	if (!ret)
		ret = edu_wl_to_device(w, w->ram->iova + EDU_DMA_MAX,
				       EDU_DMA_MAX,
				       EDU_BUF_SIZE - 1 - EDU_DMA_MAX);
	return ret;
}

static int wl_liveness(struct edu_wl *w)
{
	uint32_t v = edu_wl_rand(w), got = edu_liveness(w->e, v);

	w->checks++;
	if (got != ~v)
		wl_fail(w, "liveness %#x read back %#x", v, got);
	return 0;
}

static int wl_factorial(struct edu_wl *w)
{
	uint32_t n = edu_wl_rand(w) % 13, got;
	int ret;

	ret = edu_factorial(w->e, n, &got, 5000);
	if (ret)
		return ret;
	w->checks++;
	if (got != edu_factorial_ref(n))
		wl_fail(w, "factorial(%u) = %u, want %u", n, got,
			edu_factorial_ref(n));
	return 0;
}

int edu_wl_step(struct edu_wl *w)
{
	unsigned int kind = edu_wl_rand(w) % 100;
	uint64_t iova;
	uint32_t off, len;

	wl_pick(w, &off, &len, &iova);
	if (kind < 35)
		return edu_wl_to_device(w, iova, off, len);
	if (kind < 70)
		return edu_wl_to_ram(w, iova, off, len);
	if (kind < 85)
		return wl_liveness(w);
	return wl_factorial(w);
}
