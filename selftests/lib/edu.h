/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A user-space driver for QEMU's educational PCI device (1234:11e8),
 * driven through the test VMM. Register map: QEMU docs/specs/edu.txt.
 */
#ifndef VMIG_TEST_EDU_H
#define VMIG_TEST_EDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm.h"

#define EDU_VENDOR		0x1234
#define EDU_DEVICE		0x11e8
#define EDU_ID_VALUE		0x010000ed

#define EDU_REG_ID		0x00
#define EDU_REG_LIVENESS	0x04
#define EDU_REG_FACTORIAL	0x08
#define EDU_REG_STATUS		0x20
#define EDU_REG_IRQ_STATUS	0x24
#define EDU_REG_IRQ_RAISE	0x60
#define EDU_REG_IRQ_ACK		0x64
#define EDU_REG_DMA_SRC		0x80
#define EDU_REG_DMA_DST		0x88
#define EDU_REG_DMA_COUNT	0x90
#define EDU_REG_DMA_CMD		0x98

#define EDU_STATUS_COMPUTING	0x01
#define EDU_STATUS_IRQ_FACT	0x80
#define EDU_DMA_START		0x01
#define EDU_DMA_TO_RAM		0x02
#define EDU_DMA_IRQ		0x04
#define EDU_IRQ_FACT		0x00000001
#define EDU_IRQ_DMA		0x00000100

/* The device buffer, as the device addresses it. */
#define EDU_BUF_ADDR		0x40000
#define EDU_BUF_SIZE		4096
/*
 * QEMU 7.2 kills the VM when a transfer reaches the buffer's last byte,
 * so every transfer stays at least one byte inside.
 */
#define EDU_DMA_MAX		2048
/* The device masks DMA addresses to 28 bits. */
#define EDU_DMA_MASK		((1ull << 28) - 1)

struct edu {
	struct vmm_dev *dev;
	bool mmio;		/* use the mmapped BAR instead of the fd */
	/*
	 * Called at each poll of a DMA wait when set: true
	 * ends the wait with -ECANCELED. A VMM parks a vCPU there when it
	 * pauses the guest, as a real vCPU stops in the middle of its poll.
	 */
	bool (*poll_hook)(void *arg);
	void *poll_arg;
};

uint32_t edu_rd(struct edu *e, uint32_t off);
void edu_wr(struct edu *e, uint32_t off, uint32_t val);
void edu_wr64(struct edu *e, uint32_t off, uint64_t val);

int edu_probe(struct edu *e, struct vmm_dev *d, bool mmio);
uint32_t edu_liveness(struct edu *e, uint32_t val);
int edu_factorial(struct edu *e, uint32_t n, uint32_t *result, int timeout_ms);
/*
 * One DMA between guest RAM at @iova and the device buffer at @buf_off.
 * Completion by interrupt when @irq (the VMM must have enabled one),
 * else by polling the command register.
 */
int edu_dma(struct edu *e, bool to_ram, uint64_t iova, uint32_t buf_off,
	    uint32_t count, bool irq, int timeout_ms);
/* Reference factorial as the device computes it (32-bit wrap). */
uint32_t edu_factorial_ref(uint32_t n);
/* The first half of edu_dma(): program and start, do not wait. */
int edu_dma_start(struct edu *e, bool to_ram, uint64_t iova, uint32_t buf_off,
		  uint32_t count, bool irq);
/* Poll until the DMA command's start bit clears. */
int edu_dma_wait(struct edu *e, int timeout_ms);

/* The registers that hold state, read through the device fd. */
struct edu_regs {
	uint32_t liveness, factorial, status, irq_status;
	uint64_t dma_src, dma_dst, dma_count, dma_cmd;
};
void edu_regs_read(struct edu *e, struct edu_regs *r);

/*
 * A seeded random workload on one edu, with a model of its buffer:
 * DMAs both ways between random guest RAM and random buffer ranges
 * (never the buffer's last byte), liveness and factorial. Results the
 * device gives are checked against the model; a mismatch is counted in
 * @errors (the first one described in @why), a device error returned.
 * The random bytes it writes are never 0. The vCPU's writes to guest RAM
 * go through @vcpu_write when set (a VMM records them for migration).
 * After a migration, point @e and @ram at the target and go on.
 */
struct edu_wl {
	struct edu *e;
	struct vmm_ram *ram;
	uint64_t rng;
	uint8_t buf[EDU_BUF_SIZE];	/* what the device buffer holds */
	void (*vcpu_write)(void *priv, uint64_t iova, const void *src,
			   size_t len);
	void *priv;
	unsigned long dmas_in, dmas_out, checks, errors;
	char why[256];
};

void edu_wl_init(struct edu_wl *w, struct edu *e, struct vmm_ram *ram,
		 uint64_t seed);
uint64_t edu_wl_rand(struct edu_wl *w);
void edu_wl_bytes(struct edu_wl *w, uint8_t *p, size_t len);
/* Load the whole buffer (but its last byte) with known bytes. */
int edu_wl_fill(struct edu_wl *w);
/* One random operation. */
int edu_wl_step(struct edu_wl *w);
/* The two DMA operations on given ranges, model kept. */
int edu_wl_to_device(struct edu_wl *w, uint64_t iova, uint32_t off,
		     uint32_t len);
int edu_wl_to_ram(struct edu_wl *w, uint64_t iova, uint32_t off,
		  uint32_t len);

#endif
