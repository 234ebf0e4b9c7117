// SPDX-License-Identifier: GPL-2.0
/*
 * Property test: 200 random operation sequences on edu A; after each, A is
 * captured and replayed onto edu B (itself scrambled first), and every
 * readable register and the device buffer must match. The seed is printed;
 * RS_SEED=N reproduces a run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kselftest_harness.h"
#include "regsync.h"
#include "testbed.h"

#define SEQUENCES	200
#define MAX_OPS		5
#define IN_IOVA		RS_RAM_IOVA
#define OUT_IOVA	(RS_RAM_IOVA + 0x40000)
/* Check the buffer through the VMM's own DMA every this many sequences. */
#define VMM_CHECK_EVERY	25

static unsigned int rnd(unsigned int *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* A DMA with the interrupt bit, completion polled (the bit is state). */
static int dma_polled_irq(struct edu *e, uint64_t iova, uint32_t off,
			  uint32_t len)
{
	uint64_t end = vmm_now_us() + 5000000;

	edu_wr(e, EDU_REG_DMA_SRC, iova);
	edu_wr(e, EDU_REG_DMA_DST, EDU_BUF_ADDR + off);
	edu_wr(e, EDU_REG_DMA_COUNT, len);
	edu_wr(e, EDU_REG_DMA_CMD, EDU_DMA_START | EDU_DMA_IRQ);
	while (edu_rd(e, EDU_REG_DMA_CMD) & EDU_DMA_START) {
		if (vmm_now_us() > end)
			return -ETIMEDOUT;
		usleep(2000);
	}
	return 0;
}

static const char *const op_names[] = {
	"liveness", "factorial", "status", "raise", "ack", "dma-in",
	"dma-out", "dma-regs", "dma-irq",
};

/* One random operation; @dma allows the slow ones. */
static int random_op(struct rs_side *s, unsigned int *seed, bool dma,
		     char *trace, size_t tlen)
{
	unsigned int op = rnd(seed) % (dma ? 9 : 5);
	uint32_t off = rnd(seed) % 2048, len = 1 + rnd(seed) % 2047;
	uint32_t v = rnd(seed) ^ rnd(seed) << 16, fact;
	uint8_t *in = rs_host(s, IN_IOVA);
	int ret = 0;
	uint32_t i;

	if (off + len >= EDU_BUF_SIZE)
		len = EDU_BUF_SIZE - 1 - off;
	snprintf(trace + strlen(trace), tlen - strlen(trace), " %s",
		 op_names[op]);
	switch (op) {
	case 0:
		edu_liveness(&s->e, v);
		break;
	case 1:
		ret = edu_factorial(&s->e, v % 21, &fact, 5000);
		/* its interrupt is raised just after the busy bit clears */
		usleep(20000);
		break;
	case 2:
		edu_wr(&s->e, EDU_REG_STATUS, v & EDU_STATUS_IRQ_FACT);
		break;
	case 3:
		edu_wr(&s->e, EDU_REG_IRQ_RAISE, (v & 3) == 3 ? v :
			     (v & 1 ? EDU_IRQ_FACT : EDU_IRQ_DMA));
		break;
	case 4:
		edu_wr(&s->e, EDU_REG_IRQ_ACK, v & 1 ? ~0u : v);
		break;
	case 5:
		for (i = 0; i < len; i++)
			in[i] = rnd(seed);
		ret = edu_dma(&s->e, false, IN_IOVA, off, len, false, 5000);
		break;
	case 6:
		ret = edu_dma(&s->e, true, OUT_IOVA, off, len, false, 5000);
		break;
	case 7:
		edu_wr(&s->e, EDU_REG_DMA_SRC, v & 0xfffffff);
		edu_wr(&s->e, EDU_REG_DMA_DST, rnd(seed));
		edu_wr(&s->e, EDU_REG_DMA_COUNT, rnd(seed) % 5000);
		break;
	case 8:
		for (i = 0; i < len; i++)
			in[i] = rnd(seed);
		ret = dma_polled_irq(&s->e, IN_IOVA, off, len);
		break;
	}
	return ret;
}

FIXTURE(pair) {
	struct tb_devs t;
	struct rs_side a, b;
	uint8_t *snap;
};

FIXTURE_SETUP(pair)
{
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(2, self->t.nr_edu);
	ASSERT_EQ(0, rs_side_open(&self->a, self->t.edu[0], "all", "edu",
				  false));
	ASSERT_EQ(0, rs_side_open(&self->b, self->t.edu[1], "all", "edu",
				  false));
	self->snap = malloc(1 << 22);
	ASSERT_NE(NULL, self->snap);
}

FIXTURE_TEARDOWN(pair)
{
	rs_side_close(&self->a);
	rs_side_close(&self->b);
	free(self->snap);
}

/* The device state record (header + 4 KiB buffer) of @bdf's snapshot. */
static const uint8_t *devstate(const char *bdf, uint8_t *snap, uint32_t *len)
{
	ssize_t n = rs_snapshot_read(bdf, snap, 1 << 22);

	if (n <= 0)
		return NULL;
	return rs_snapshot_record(snap, n, RS_REC_DEVSTATE, len);
}

TEST_F_TIMEOUT(pair, random_sequences_replay_exactly, 560)
{
	struct rs_side *a = &self->a, *b = &self->b;
	static uint8_t bufa[EDU_BUF_SIZE], bufb[EDU_BUF_SIZE], sa[8192];
	uint32_t ra[RS_EDU_REGS], ra2[RS_EDU_REGS], rb[RS_EDU_REGS];
	unsigned int seed, seq, i, nops, fails = 0;
	const uint8_t *da, *db;
	uint32_t la, lb;
	char trace[256];
	char res[1024];
	uint64_t t0 = vmm_now_us();

	seed = getenv("RS_SEED") ? strtoul(getenv("RS_SEED"), NULL, 0) :
				   (unsigned int)time(NULL);
	TH_LOG("seed %u (RS_SEED=%u reproduces this run)", seed, seed);
	printf("# regsync property test seed: %u\n", seed);

	for (seq = 0; seq < SEQUENCES && fails < 3; seq++) {
		trace[0] = 0;
		nops = 1 + rnd(&seed) % MAX_OPS;
		for (i = 0; i < nops; i++)
			ASSERT_EQ(0, random_op(a, &seed, true, trace,
					       sizeof(trace)));

		rs_edu_dump(&a->e, ra);
		ASSERT_EQ(0, rs_ctl(a->bdf, "take full")) TH_LOG("seq %u", seq);
		rs_edu_dump(&a->e, ra2);
		EXPECT_EQ(0, memcmp(ra, ra2, sizeof(ra)))
			TH_LOG("seq %u: capture changed A", seq);
		da = devstate(a->bdf, self->snap, &la);
		ASSERT_NE(NULL, da);
		ASSERT_LE(la, sizeof(sa));
		memcpy(sa, da, la);

		/* scramble B, then replay A onto it */
		for (i = 0; i < 2; i++)
			ASSERT_EQ(0, random_op(b, &seed, !(seq % 4), trace,
					       sizeof(trace)));
		ASSERT_EQ(0, rs_ctl(a->bdf, "replay %s", b->bdf))
			TH_LOG("seq %u", seq);
		ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
		EXPECT_EQ(0, rs_key(res, "errors", -1))
			TH_LOG("seq %u (%s): %s", seq, trace, res);

		rs_edu_dump(&b->e, rb);
		for (i = 0; i < RS_EDU_REGS; i++)
			if (ra[i] != rb[i])
				break;
		EXPECT_EQ(RS_EDU_REGS, i)
			TH_LOG("seq %u (%s): register %#x A %#x B %#x", seq,
			       trace, i * 4, ra[i], rb[i]);

		/* the buffer, through the driver's capture of B */
		ASSERT_EQ(0, rs_ctl(b->bdf, "take full"));
		db = devstate(b->bdf, self->snap, &lb);
		ASSERT_NE(NULL, db);
		EXPECT_TRUE(la == lb && !memcmp(sa, db, la))
			TH_LOG("seq %u (%s): device buffers differ", seq,
			       trace);

		/* and now and then through each VMM's own DMA */
		if (seq % VMM_CHECK_EVERY == VMM_CHECK_EVERY - 1) {
			ASSERT_EQ(0, rs_edu_read_buffer(&a->e, OUT_IOVA,
							rs_host(a, OUT_IOVA),
							bufa));
			ASSERT_EQ(0, rs_edu_read_buffer(&b->e, OUT_IOVA,
							rs_host(b, OUT_IOVA),
							bufb));
			EXPECT_EQ(0, memcmp(bufa, bufb, sizeof(bufa)))
				TH_LOG("seq %u: buffers differ via the VMMs",
				       seq);
		}
		if (_metadata->exit_code == KSFT_FAIL)
			fails++;
	}
	TH_LOG("%u sequences in %llu s", seq,
	       (unsigned long long)(vmm_now_us() - t0) / 1000000);
	EXPECT_EQ(SEQUENCES, seq);
}

TEST_HARNESS_MAIN
