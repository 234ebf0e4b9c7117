// SPDX-License-Identifier: GPL-2.0
/*
 * Register state sync on two edus, A and B: drive A through the test VMM,
 * capture it, replay onto B, and compare every readable register and the
 * device buffer. Also: the capture leaves A and the VMM's memory as they
 * were; the pending interrupt reaches B's VMM; trap modes all and none
 * behave alike for the VMM; sparse mode's sparse-mmap layout; mode and
 * profile changes while open are refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "regsync.h"
#include "testbed.h"

#define IN_IOVA		RS_RAM_IOVA
#define OUT_IOVA	(RS_RAM_IOVA + 0x40000)

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = seed >> 16;
	}
}

static int dma_in(struct rs_side *s, uint32_t off, uint32_t len,
		  unsigned int seed, bool irq)
{
	fill(rs_host(s, IN_IOVA), len, seed);
	return edu_dma(&s->e, false, IN_IOVA, off, len, irq, 5000);
}

FIXTURE(pair) {
	struct tb_devs t;
	struct rs_side a, b;
};

FIXTURE_SETUP(pair)
{
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(2, self->t.nr_edu);
	ASSERT_EQ(0, rs_side_open(&self->a, self->t.edu[0], "all", "edu",
				  true));
	ASSERT_EQ(0, rs_side_open(&self->b, self->t.edu[1], "all", "edu",
				  true));
}

FIXTURE_TEARDOWN(pair)
{
	rs_side_close(&self->a);
	rs_side_close(&self->b);
}

static void compare_regs(struct __test_metadata *_metadata,
			 const uint32_t *ra, const uint32_t *rb)
{
	unsigned int i;

	for (i = 0; i < RS_EDU_REGS; i++)
		EXPECT_EQ(ra[i], rb[i]) TH_LOG("register %#x: A %#x B %#x",
					       i * 4, ra[i], rb[i]);
}

TEST_F_TIMEOUT(pair, drive_capture_replay, 120)
{
	struct rs_side *a = &self->a, *b = &self->b;
	uint32_t before[RS_EDU_REGS], after[RS_EDU_REGS], rb[RS_EDU_REGS];
	static uint8_t bufa[EDU_BUF_SIZE], bufb[EDU_BUF_SIZE], want[EDU_BUF_SIZE];
	static uint8_t scratch_a[4096], scratch_b[4096];
	char res[1024];
	uint32_t fact;

	/* Drive A: liveness, factorial with its interrupt, DMA, interrupts. */
	edu_wr(&a->e, EDU_REG_IRQ_ACK, ~0u);
	EXPECT_EQ(~0x12345678u, edu_liveness(&a->e, 0x12345678));
	edu_wr(&a->e, EDU_REG_STATUS, EDU_STATUS_IRQ_FACT);
	ASSERT_EQ(0, edu_factorial(&a->e, 10, &fact, 5000));
	EXPECT_EQ(edu_factorial_ref(10), fact);
	EXPECT_GE(vmm_irq_wait(&a->d, 2000), 1);	/* factorial irq */
	ASSERT_EQ(0, dma_in(a, 16, 2000, 1, false));
	ASSERT_EQ(0, dma_in(a, 2100, 1900, 2, true));	/* by interrupt */
	ASSERT_EQ(0, edu_dma(&a->e, true, OUT_IOVA, 0, 64, false, 5000));
	edu_wr(&a->e, EDU_REG_DMA_SRC, 0x12340);
	edu_wr(&a->e, EDU_REG_DMA_DST, 0x56780);
	edu_wr(&a->e, EDU_REG_DMA_COUNT, 77);
	EXPECT_EQ(EDU_IRQ_FACT, edu_rd(&a->e, EDU_REG_IRQ_STATUS));
	EXPECT_EQ(EDU_DMA_TO_RAM, edu_rd(&a->e, EDU_REG_DMA_CMD));
	EXPECT_GT(rs_counter(a->bdf, "trapped_writes"), 10);

	/* Capture: A and its VMM's memory must come out unchanged. */
	fill(rs_host(a, RS_SCRATCH), 4096, 99);
	memcpy(scratch_a, rs_host(a, RS_SCRATCH), 4096);
	rs_edu_dump(&a->e, before);
	ASSERT_EQ(0, rs_ctl(a->bdf, "take full"));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	TH_LOG("take: %s", res);
	EXPECT_GT(rs_key(res, "devstate", 0), 4096);
	EXPECT_EQ(0, rs_key(res, "flags", -1) & 1);	/* not lossy */
	rs_edu_dump(&a->e, after);
	compare_regs(_metadata, before, after);
	EXPECT_EQ(0, memcmp(scratch_a, rs_host(a, RS_SCRATCH), 4096));

	/* B starts elsewhere. */
	edu_liveness(&b->e, 0xdead);
	ASSERT_EQ(0, edu_factorial(&b->e, 5, &fact, 5000));
	ASSERT_EQ(0, dma_in(b, 0, 1024, 7, false));
	fill(rs_host(b, RS_SCRATCH), 4096, 98);
	memcpy(scratch_b, rs_host(b, RS_SCRATCH), 4096);
	while (vmm_irq_wait(&b->d, 0) > 0)
		;

	ASSERT_EQ(0, rs_ctl(a->bdf, "replay %s", b->bdf));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	TH_LOG("replay: %s", res);
	EXPECT_EQ(0, rs_key(res, "errors", -1));
	EXPECT_EQ(0, memcmp(scratch_b, rs_host(b, RS_SCRATCH), 4096));
	/* The pending factorial interrupt is state: B's VMM receives it. */
	EXPECT_GE(vmm_irq_wait(&b->d, 2000), 1);

	rs_edu_dump(&b->e, rb);
	compare_regs(_metadata, before, rb);

	/* The buffers, read back through each VMM. */
	memset(want, 0, sizeof(want));
	fill(want + 16, 2000, 1);
	fill(want + 2100, 1900, 2);
	ASSERT_EQ(0, rs_edu_read_buffer(&a->e, OUT_IOVA, rs_host(a, OUT_IOVA),
					bufa));
	ASSERT_EQ(0, rs_edu_read_buffer(&b->e, OUT_IOVA, rs_host(b, OUT_IOVA),
					bufb));
	EXPECT_EQ(0, memcmp(want + 16, bufa + 16, 2000));
	EXPECT_EQ(0, memcmp(want + 2100, bufa + 2100, 1900));
	EXPECT_EQ(0, memcmp(bufa, bufb, EDU_BUF_SIZE));
}

/* The same VMM session against trap mode @mode; what the VMM observed. */
struct observed {
	uint32_t live[3], fact[3], regs[RS_EDU_REGS];
	uint8_t dma[1500];
	long long reads, writes;
	uint32_t bar0_flags;
};

static int session(const char *bdf, const char *mode, struct observed *o)
{
	static const uint32_t n[3] = { 0, 7, 12 };
	struct rs_side s;
	int i, ret;

	memset(o, 0, sizeof(*o));
	ret = rs_side_open(&s, bdf, mode, "edu", true);
	if (ret)
		goto out;
	o->bar0_flags = s.d.regions[0].flags;
	edu_wr(&s.e, EDU_REG_IRQ_ACK, ~0u);
	edu_wr(&s.e, EDU_REG_STATUS, 0);
	for (i = 0; i < 3; i++) {
		o->live[i] = edu_liveness(&s.e, 0x1000 * i + 5);
		ret = edu_factorial(&s.e, n[i], &o->fact[i], 5000);
		if (ret)
			goto out;
	}
	ret = dma_in(&s, 100, sizeof(o->dma), 5, true);
	if (!ret)
		ret = edu_dma(&s.e, true, OUT_IOVA, 100, sizeof(o->dma), false,
			      5000);
	if (ret)
		goto out;
	memcpy(o->dma, rs_host(&s, OUT_IOVA), sizeof(o->dma));
	edu_wr(&s.e, EDU_REG_IRQ_RAISE, 0x30000);
	rs_edu_dump(&s.e, o->regs);
	edu_wr(&s.e, EDU_REG_IRQ_ACK, ~0u);
	o->reads = rs_counter(bdf, "trapped_reads");
	o->writes = rs_counter(bdf, "trapped_writes");
out:
	rs_side_close(&s);
	return ret;
}

TEST_F_TIMEOUT(pair, trap_all_and_none_look_the_same, 120)
{
	struct observed none, all;
	uint8_t want[sizeof(none.dma)];
	long long r0, w0;
	const char *bdf = self->a.bdf;

	rs_side_close(&self->a);
	r0 = rs_counter(bdf, "trapped_reads");
	w0 = rs_counter(bdf, "trapped_writes");
	ASSERT_EQ(0, session(bdf, "none", &none));
	ASSERT_EQ(0, session(bdf, "all", &all));

	EXPECT_TRUE(none.bar0_flags & VFIO_REGION_INFO_FLAG_MMAP);
	EXPECT_FALSE(all.bar0_flags & VFIO_REGION_INFO_FLAG_MMAP);
	/* none records nothing; all records every access */
	EXPECT_EQ(r0, none.reads);
	EXPECT_EQ(w0, none.writes);
	EXPECT_GT(all.reads, none.reads);
	EXPECT_GT(all.writes, none.writes + 15);

	EXPECT_EQ(0, memcmp(none.live, all.live, sizeof(none.live)));
	EXPECT_EQ(0, memcmp(none.fact, all.fact, sizeof(none.fact)));
	EXPECT_EQ(0, memcmp(none.regs, all.regs, sizeof(none.regs)));
	fill(want, sizeof(want), 5);
	EXPECT_EQ(0, memcmp(want, none.dma, sizeof(want)));
	EXPECT_EQ(0, memcmp(none.dma, all.dma, sizeof(want)));
	EXPECT_EQ(edu_factorial_ref(12), all.fact[2]);
}

TEST_F(pair, sparse_mode_carves_out_the_register_page)
{
	struct vfio_region_info_cap_sparse_mmap *sp;
	struct vfio_region_info *info;
	struct vfio_info_cap_header *h;
	struct rs_side *a = &self->a;
	long long w0;
	void *p;

	rs_side_close(a);
	ASSERT_EQ(0, rs_side_open(a, self->t.edu[0], "sparse", "edu", false));
	info = calloc(1, 4096);
	ASSERT_NE(NULL, info);
	info->argsz = 4096;
	info->index = 0;
	ASSERT_EQ(0, ioctl(a->d.fd, VFIO_DEVICE_GET_REGION_INFO, info));
	ASSERT_TRUE(info->flags & VFIO_REGION_INFO_FLAG_MMAP);
	ASSERT_TRUE(info->flags & VFIO_REGION_INFO_FLAG_CAPS);
	ASSERT_NE(0, info->cap_offset);
	h = (void *)((char *)info + info->cap_offset);
	ASSERT_EQ(VFIO_REGION_INFO_CAP_SPARSE_MMAP, h->id);
	sp = (void *)h;
	ASSERT_EQ(1, sp->nr_areas);
	EXPECT_EQ(4096, sp->areas[0].offset);
	EXPECT_EQ(info->size - 4096, sp->areas[0].size);

	/* The trapped page cannot be mapped; the rest can. */
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, a->d.fd,
		 info->offset);
	EXPECT_EQ(MAP_FAILED, p);
	p = mmap(NULL, info->size, PROT_READ | PROT_WRITE, MAP_SHARED, a->d.fd,
		 info->offset);
	EXPECT_EQ(MAP_FAILED, p);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, a->d.fd,
		 info->offset + 4096);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, 8192);

	/* Register accesses through the fd are recorded. */
	w0 = rs_counter(a->bdf, "trapped_writes");
	EXPECT_EQ(~0x77u, edu_liveness(&a->e, 0x77));
	EXPECT_EQ(w0 + 1, rs_counter(a->bdf, "trapped_writes"));
	free(info);
}

TEST_F(pair, mode_and_profile_changes_while_open_refused)
{
	char mode[32];
	struct tb_devs *t = &self->t;

	EXPECT_EQ(-EBUSY, rs_set_trap_mode(self->a.bdf, "sparse"));
	EXPECT_EQ(-EBUSY, rs_set_trap_mode(self->a.bdf, "none"));
	EXPECT_EQ(-EBUSY, rs_set_profile(self->a.bdf, "generic"));
	ASSERT_EQ(0, rs_get_trap_mode(self->a.bdf, mode, sizeof(mode)));
	EXPECT_STREQ("all", mode);

	rs_side_close(&self->a);
	EXPECT_EQ(-EINVAL, rs_set_trap_mode(self->a.bdf, "bogus"));
	EXPECT_EQ(-ENOENT, rs_set_profile(self->a.bdf, "nosuch"));
	EXPECT_EQ(0, rs_set_trap_mode(self->a.bdf, "sparse"));
	ASSERT_EQ(0, rs_get_trap_mode(self->a.bdf, mode, sizeof(mode)));
	EXPECT_STREQ("sparse", mode);
	EXPECT_EQ(0, rs_set_profile(self->a.bdf, "generic"));
	EXPECT_EQ(0, rs_set_profile(self->a.bdf, "edu"));
	EXPECT_EQ(0, rs_set_trap_mode(self->a.bdf, "none"));
	/* the edu profile is for edus only */
	ASSERT_EQ(TB_NR_VF, t->nr_vf);
	ASSERT_EQ(0, vmm_bind(t->vf[0], TB_DRIVER));
	EXPECT_EQ(-EINVAL, rs_set_profile(t->vf[0], "edu"));
}

TEST_HARNESS_MAIN
