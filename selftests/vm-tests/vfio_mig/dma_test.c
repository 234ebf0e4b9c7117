// SPDX-License-Identifier: GPL-2.0
/*
 * An edu DMA round trip (guest RAM -> device buffer -> guest RAM) through
 * vfio-mig gives the same bytes as through vfio-pci, with completion by
 * polling and by interrupt.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "edu.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(1u << 20)
#define OUT_OFF		0x40000u
#define LEN		2000u
#define BUF_OFF		16u

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = seed >> 16;
	}
}

/* One round trip on @bdf under @drv; the bytes that came back in @out. */
static int round_trip(const char *bdf, const char *drv, bool irq,
		      unsigned char *out)
{
	struct vmm_ram ram;
	struct vmm_dev d;
	struct edu e;
	int ret;

	ret = vmm_bind(bdf, drv);
	if (ret)
		return ret;
	ret = vmm_open(&d, bdf);
	if (ret)
		return ret;
	ret = vmm_ram_alloc(&ram, RAM_SIZE, RAM_IOVA);
	if (ret)
		goto close;
	ret = vmm_dma_map(&d, &ram);
	if (ret)
		goto free;
	ret = edu_probe(&e, &d, false);
	if (!ret && irq)
		ret = vmm_irq_enable(&d);
	if (ret)
		goto unmap;
	fill(ram.host, LEN, 42);
	ret = edu_dma(&e, false, RAM_IOVA, BUF_OFF, LEN, irq, 5000);
	if (!ret)
		ret = edu_dma(&e, true, RAM_IOVA + OUT_OFF, BUF_OFF, LEN, irq,
			      5000);
	memcpy(out, (unsigned char *)ram.host + OUT_OFF, LEN);
unmap:
	vmm_dma_unmap(&d, &ram);
free:
	vmm_ram_free(&ram);
close:
	vmm_close(&d);
	return ret;
}

static void same_bytes(struct __test_metadata *_metadata, const char *bdf,
		       bool irq)
{
	unsigned char ref[LEN], via_pci[LEN], via_mig[LEN];

	fill(ref, LEN, 42);
	memset(via_pci, 0, LEN);
	memset(via_mig, 0xff, LEN);
	ASSERT_EQ(0, round_trip(bdf, "vfio-pci", irq, via_pci));
	ASSERT_EQ(0, round_trip(bdf, TB_DRIVER, irq, via_mig));
	EXPECT_EQ(0, memcmp(ref, via_pci, LEN));
	EXPECT_EQ(0, memcmp(via_pci, via_mig, LEN));
	ASSERT_EQ(0, vmm_bind(bdf, TB_DRIVER));
}

TEST(round_trip_polled_edu0)
{
	struct tb_devs t;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(2, t.nr_edu);
	same_bytes(_metadata, t.edu[0], false);
}

TEST(round_trip_interrupt_edu1)
{
	struct tb_devs t;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(2, t.nr_edu);
	same_bytes(_metadata, t.edu[1], true);
}

TEST(unmapped_iova_is_not_written)
{
	unsigned char *probe;
	struct vmm_ram ram;
	struct tb_devs t;
	struct vmm_dev d;
	struct edu e;

	/* A DMA to an IOVA outside the mapping must fault, not land in RAM. */
	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(0, vmm_bind(t.edu[0], TB_DRIVER));
	ASSERT_EQ(0, vmm_open(&d, t.edu[0]));
	ASSERT_EQ(0, vmm_ram_alloc(&ram, RAM_SIZE, RAM_IOVA));
	ASSERT_EQ(0, vmm_dma_map(&d, &ram));
	ASSERT_EQ(0, edu_probe(&e, &d, false));
	memset(ram.host, 0x77, RAM_SIZE);
	ASSERT_EQ(0, edu_dma(&e, true, RAM_IOVA + RAM_SIZE + 0x10000, BUF_OFF,
			     64, false, 5000));
	probe = ram.host;
	for (size_t i = 0; i < RAM_SIZE; i++)
		ASSERT_EQ(0x77, probe[i]);
	vmm_dma_unmap(&d, &ram);
	vmm_ram_free(&ram);
	vmm_close(&d);
}

TEST_HARNESS_MAIN
