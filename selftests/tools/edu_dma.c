// SPDX-License-Identifier: GPL-2.0
/*
 * edu_dma: one edu DMA round trip through whatever driver the device is
 * bound to, told step by step. Used by 'make demo'; a VMM in miniature.
 *
 *   edu_dma BDF [--irq]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edu.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(1u << 20)
#define OUT_OFF		0x40000u
#define LEN		2048u

int main(int argc, char **argv)
{
	bool irq = argc > 2 && !strcmp(argv[2], "--irq");
	unsigned char *src, *dst;
	struct vmm_ram ram;
	struct vmm_dev d;
	struct edu e;
	char drv[64];
	uint64_t t0;
	uint32_t f;
	unsigned int i;
	int ret;

	if (argc < 2) {
		fprintf(stderr, "usage: edu_dma BDF [--irq]\n");
		return 2;
	}
	vmm_driver_of(argv[1], drv, sizeof(drv));
	ret = vmm_open(&d, argv[1]);
	if (ret) {
		fprintf(stderr, "edu_dma: open %s: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	printf("  opened %s (driver %s, IOMMU group %d): %u regions, %u irqs, BAR0 %llu KiB%s\n",
	       argv[1], drv, d.groupid, d.info.num_regions, d.info.num_irqs,
	       (unsigned long long)d.regions[0].size / 1024,
	       d.regions[0].flags & VFIO_REGION_INFO_FLAG_MMAP ? " mmap-able" : "");
	if (vmm_ram_alloc(&ram, RAM_SIZE, RAM_IOVA) || vmm_dma_map(&d, &ram) ||
	    edu_probe(&e, &d, false)) {
		fprintf(stderr, "edu_dma: set-up failed\n");
		return 1;
	}
	printf("  guest RAM: 1 MiB memfd mapped at IOVA 0x%llx through the IOMMU\n",
	       RAM_IOVA);
	printf("  edu id 0x%08x, liveness(0x12345678) -> 0x%08x\n",
	       edu_rd(&e, EDU_REG_ID), edu_liveness(&e, 0x12345678));
	if (!edu_factorial(&e, 10, &f, 5000))
		printf("  factorial(10) computed by the device = %u\n", f);
	if (irq && vmm_irq_enable(&d) == 0)
		printf("  completion by %s interrupt on an eventfd\n",
		       d.irq_index == VFIO_PCI_MSI_IRQ_INDEX ? "MSI" : "INTx");
	else
		irq = false;
	src = ram.host;
	dst = src + OUT_OFF;
	for (i = 0; i < LEN; i++)
		src[i] = (i * 7 + 3) & 0xff;
	memset(dst, 0, LEN);
	t0 = vmm_now_us();
	ret = edu_dma(&e, false, RAM_IOVA, 0, LEN, irq, 5000);
	printf("  DMA %u bytes guest RAM 0x%llx -> device buffer: %s (%.1f ms)\n",
	       LEN, RAM_IOVA, ret ? strerror(-ret) : "done",
	       (vmm_now_us() - t0) / 1000.0);
	t0 = vmm_now_us();
	if (!ret)
		ret = edu_dma(&e, true, RAM_IOVA + OUT_OFF, 0, LEN, irq, 5000);
	printf("  DMA %u bytes device buffer -> guest RAM 0x%llx: %s (%.1f ms)\n",
	       LEN, RAM_IOVA + OUT_OFF, ret ? strerror(-ret) : "done",
	       (vmm_now_us() - t0) / 1000.0);
	ret = ret ? 1 : memcmp(src, dst, LEN) != 0;
	printf("  round trip: %s\n", ret ? "BYTES DIFFER" : "identical bytes");
	vmm_dma_unmap(&d, &ram);
	vmm_ram_free(&ram);
	vmm_close(&d);
	return ret;
}
