// SPDX-License-Identifier: GPL-2.0
/* User-space driver for QEMU's edu device, on top of the test VMM. */
#include <errno.h>
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
		if (vmm_now_us() > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
	return 0;
}

int edu_factorial(struct edu *e, uint32_t n, uint32_t *result, int timeout_ms)
{
	int ret;

	edu_wr(e, EDU_REG_FACTORIAL, n);
	ret = wait_clear(e, EDU_REG_STATUS, EDU_STATUS_COMPUTING, timeout_ms);
	if (ret)
		return ret;
	*result = edu_rd(e, EDU_REG_FACTORIAL);
	return 0;
}

int edu_dma(struct edu *e, bool to_ram, uint64_t iova, uint32_t buf_off,
	    uint32_t count, bool irq, int timeout_ms)
{
	uint64_t dev = EDU_BUF_ADDR + buf_off;
	uint32_t cmd = EDU_DMA_START;
	int ret;

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
	if (!irq)
		return wait_clear(e, EDU_REG_DMA_CMD, EDU_DMA_START,
				  timeout_ms);
	ret = vmm_irq_wait(e->dev, timeout_ms);
	if (ret < 0)
		return ret;
	if (!(edu_rd(e, EDU_REG_IRQ_STATUS) & EDU_IRQ_DMA))
		return -EIO;
	edu_wr(e, EDU_REG_IRQ_ACK, EDU_IRQ_DMA);
	vmm_irq_unmask(e->dev);
	return wait_clear(e, EDU_REG_DMA_CMD, EDU_DMA_START, timeout_ms);
}
