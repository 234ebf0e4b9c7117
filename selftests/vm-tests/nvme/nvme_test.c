// SPDX-License-Identifier: GPL-2.0
/*
 * The test VMM's NVMe driver (selftests/lib/nvme.c) on the test bed's
 * NVMe VFs: Identify, I/O queue pairs, Read/Write/Flush with each PRP
 * form, MSI-X completions, the verified workload, and the namespace the
 * two VFs share (guest-lib.sh attaches it to both). Each test runs with
 * the VFs bound to vfio-pci, and bound to vfio-mig with the nvme profile
 * in trap mode sparse: every register and doorbell write then goes
 * through the profile's controller model, which reads the queued commands
 * from guest memory before the device sees them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "mig.h"
#include "nvme.h"
#include "nvme_vf.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(4u << 20)
#define NSID		1
#define QDEPTH		16	/* entries per I/O queue */
#define WL_DEPTH	8	/* workload commands in flight per queue */
#define TMO		5000
#define WL_TMO		40000

/* One VF under its driver, its RAM mapped, the controller enabled. */
/* VF @bdf under @driver, RAM_SIZE bytes of RAM at RAM_IOVA, namespace 1. */
static int vf_up(struct nvme_vf *v, const char *bdf, const char *driver,
		 char *err, size_t len)
{
	return nvme_vf_up(v, bdf, driver, RAM_SIZE, RAM_IOVA, NSID, err, len);
}

FIXTURE(vf1) {
	struct tb_devs t;
	struct nvme_vf vf;
};

FIXTURE_VARIANT(vf1) {
	const char *driver;
	bool trapped;	/* vfio-mig, profile nvme, trap mode sparse */
};

FIXTURE_VARIANT_ADD(vf1, vfio_pci) {
	.driver = "vfio-pci",
};

FIXTURE_VARIANT_ADD(vf1, nvme_profile) {
	.driver = TB_DRIVER,
	.trapped = true,
};

FIXTURE_SETUP(vf1)
{
	char err[320];

	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(TB_NR_VF, self->t.nr_vf);
	ASSERT_EQ(0, vf_up(&self->vf, self->t.vf[0], variant->driver, err,
				 sizeof(err)))
		TH_LOG("%s", err);
}

FIXTURE_TEARDOWN(vf1)
{
	nvme_vf_down(&self->vf);
}

/* VF 1 under the nvme profile only: what plain vfio-pci cannot do. */
FIXTURE(mig) {
	struct tb_devs t;
	struct nvme_vf vf;
};

FIXTURE_SETUP(mig)
{
	char err[320];

	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(TB_NR_VF, self->t.nr_vf);
	ASSERT_EQ(0, vf_up(&self->vf, self->t.vf[0], TB_DRIVER, err,
			   sizeof(err)))
		TH_LOG("%s", err);
}

FIXTURE_TEARDOWN(mig)
{
	nvme_vf_down(&self->vf);
}

static void pattern(uint8_t *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = seed >> 16;
	}
}

/*
 * Write @nlb blocks from data at @off into the slot, read them back into
 * a zeroed slot at the same offset, flush; check the bytes and the PRP
 * form used (@prps: 1 for PRP1 alone, 2 for PRP1 + PRP2, 3 for a list).
 */
static void rw_check(struct __test_metadata *_metadata, struct nvme_ctrl *c,
		     int qid, uint64_t slba, uint32_t nlb, uint32_t off,
		     int prps, uint32_t seed)
{
	struct nvme_queue *q = nvme_ioq(c, qid);
	size_t len = (size_t)nlb * c->lba_size;
	struct nvme_req *w, *r;
	uint8_t *want;

	ASSERT_NE(NULL, q);
	want = malloc(len);
	ASSERT_NE(NULL, want);
	pattern(want, len, seed);
	w = nvme_req_get(q);
	r = nvme_req_get(q);
	ASSERT_NE(NULL, w);
	ASSERT_NE(NULL, r);
	w->buf_off = off;
	memcpy(w->buf + off, want, len);
	EXPECT_EQ(0, nvme_io_sync(w, NVME_CMD_WRITE, slba, nlb, TMO))
		TH_LOG("write: %s", c->why);
	if (prps > 2) {
		EXPECT_LT(2, w->nr_prps);	/* PRP2 points to a list */
	} else {
		EXPECT_EQ(prps, w->nr_prps);
	}
	r->buf_off = off;
	memset(r->buf, 0, NVME_SLOT_BYTES);
	EXPECT_EQ(0, nvme_io_sync(r, NVME_CMD_READ, slba, nlb, TMO))
		TH_LOG("read: %s", c->why);
	EXPECT_EQ(w->nr_prps, r->nr_prps);
	EXPECT_EQ(0, memcmp(want, r->buf + off, len))
		TH_LOG("q%d LBA %llu+%u at offset %u: data differs", qid,
		       (unsigned long long)slba, nlb, off);
	/* nothing outside the transfer was touched */
	if (off) {
		EXPECT_EQ(0, r->buf[off - 1]);
	}
	if (off + len < NVME_SLOT_BYTES) {
		EXPECT_EQ(0, r->buf[off + len]);
	}
	nvme_req_put(r);
	EXPECT_EQ(0, nvme_io_sync(w, NVME_CMD_FLUSH, 0, 0, TMO))
		TH_LOG("flush: %s", c->why);
	nvme_req_put(w);
	free(want);
}

TEST_F(vf1, identify)
{
	struct nvme_ctrl *c = &self->vf.c;

	TH_LOG("%s: VID %04x cntlid %u \"%s\" sn \"%s\" fr \"%s\" VS %x nn %u; ns %u: %llu blocks of %u bytes, max transfer %u",
	       self->t.vf[0], c->vid, c->cntlid, c->mn, c->sn, c->fr, c->vs,
	       c->nn, c->nsid, (unsigned long long)c->nsze, c->lba_size,
	       c->max_xfer);
	EXPECT_EQ(TB_NVME_VENDOR, c->vid);
	/* a secondary controller: the PF is controller 0 */
	EXPECT_NE(0, c->cntlid);
	EXPECT_NE(NULL, strstr(c->mn, "NVMe"));
	EXPECT_GE(c->nn, NSID);
	EXPECT_GE(c->vs, 0x10200u);
	/* the test bed's file: whole MiBs, at least 4 of them */
	EXPECT_EQ(0, (c->nsze << c->lba_shift) & ((1u << 20) - 1));
	EXPECT_GE(c->nsze << c->lba_shift, 4u << 20);
	EXPECT_GE(c->max_xfer, 4 * NVME_PAGE);
	/* a namespace the VF does not have */
	EXPECT_EQ(-ENODEV, nvme_identify(c, NVME_ID_CNS_NS, 2));
	EXPECT_EQ(0, nvme_identify(c, NVME_ID_CNS_NS, NSID));
}

TEST_F(vf1, two_io_queue_pairs)
{
	struct nvme_ctrl *c = &self->vf.c;

	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	TH_LOG("%u I/O queue pairs granted", c->ioq_granted);
	EXPECT_GE(c->ioq_granted, 2);
	EXPECT_EQ(2, c->nr_ioq);
	rw_check(_metadata, c, 1, 100, 1, 0, 1, 1);
	rw_check(_metadata, c, 2, 200, 1, 0, 1, 2);
	/* each queue's completions came on its own CQ */
	EXPECT_EQ(3, nvme_ioq(c, 1)->completed);
	EXPECT_EQ(3, nvme_ioq(c, 2)->completed);
}

TEST_F(vf1, prp1_only)
{
	struct nvme_ctrl *c = &self->vf.c;
	uint32_t page = NVME_PAGE >> c->lba_shift;

	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	/* a whole page, page aligned; one block at an odd dword */
	rw_check(_metadata, c, 1, 1000, page, 0, 1, 11);
	rw_check(_metadata, c, 2, 1010, 1, 4 * 13, 1, 12);
}

TEST_F(vf1, prp1_prp2)
{
	struct nvme_ctrl *c = &self->vf.c;
	uint32_t page = NVME_PAGE >> c->lba_shift;

	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	/* two whole pages; one page's worth across a page boundary */
	rw_check(_metadata, c, 1, 2000, 2 * page, 0, 2, 21);
	rw_check(_metadata, c, 2, 2100, page, NVME_PAGE / 2, 2, 22);
}

TEST_F(vf1, prp_list)
{
	struct nvme_ctrl *c = &self->vf.c;
	uint32_t page = NVME_PAGE >> c->lba_shift;

	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	/* three pages; five pages from an offset (six PRPs); the most */
	rw_check(_metadata, c, 1, 3000, 3 * page, 0, 3, 31);
	rw_check(_metadata, c, 2, 3100, 5 * page, 1024, 3, 32);
	rw_check(_metadata, c, 1, 3200, c->max_xfer >> c->lba_shift, 0, 3,
		 33);
}

/* Registers and doorbells through the mmapped BAR instead of the fd. */
TEST_F(vf1, mmio_registers)
{
	struct nvme_ctrl *c = &self->vf.c;

	nvme_ctrl_fini(c);
	if (variant->trapped) {
		/* the trapped pages cannot be mmapped: through the fd only */
		ASSERT_EQ(-EINVAL, nvme_ctrl_init(c, &self->vf.d,
						  &self->vf.ram, NSID, true));
		ASSERT_EQ(0, nvme_ctrl_init(c, &self->vf.d, &self->vf.ram,
					    NSID, false))
			TH_LOG("%s", c->why);
	} else {
		ASSERT_EQ(0, nvme_ctrl_init(c, &self->vf.d, &self->vf.ram,
					    NSID, true))
			TH_LOG("%s", c->why);
		ASSERT_TRUE(c->mmio);
	}
	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	rw_check(_metadata, c, 1, 4000, 3 * (NVME_PAGE >> c->lba_shift), 8,
		 3, 41);
	rw_check(_metadata, c, 2, 4100, 1, 0, 1, 42);
}

TEST_F(vf1, bad_commands_refused)
{
	struct nvme_ctrl *c = &self->vf.c;
	struct nvme_req *r;

	ASSERT_EQ(0, nvme_create_io_queues(c, 1, QDEPTH, false))
		TH_LOG("%s", c->why);
	r = nvme_req_get(nvme_ioq(c, 1));
	ASSERT_NE(NULL, r);
	/* the driver refuses what does not fit the namespace or the slot */
	EXPECT_EQ(-EINVAL, nvme_io_submit(r, NVME_CMD_READ, c->nsze, 1));
	EXPECT_EQ(-EINVAL, nvme_io_submit(r, NVME_CMD_READ, c->nsze - 1, 2));
	r->buf_off = 2;
	EXPECT_EQ(-EINVAL, nvme_io_submit(r, NVME_CMD_READ, 0, 1));
	/* the device refuses a namespace it does not have */
	r->buf_off = 0;
	c->nsid = 7;
	EXPECT_LT(0, nvme_io_sync(r, NVME_CMD_READ, 0, 1, TMO));
	c->nsid = NSID;
	EXPECT_EQ(0, nvme_io_sync(r, NVME_CMD_READ, 0, 1, TMO));
	nvme_req_put(r);
}

TEST_F(vf1, msix_completion)
{
	struct nvme_ctrl *c = &self->vf.c;
	struct nvme_req *r, *done[4];
	struct nvme_queue *q;
	int n;

	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, true))
		TH_LOG("%s", c->why);
	ASSERT_EQ(3, c->nr_vec);
	q = nvme_ioq(c, 2);
	EXPECT_EQ(2, q->vector);
	r = nvme_req_get(q);
	ASSERT_NE(NULL, r);
	pattern(r->buf, c->lba_size, 5);
	ASSERT_EQ(0, nvme_io_submit(r, NVME_CMD_WRITE, 50, 1));
	/* the completion signals queue 2's vector, and only that one */
	n = nvme_msix_wait(c, 2, TMO);
	EXPECT_GE(n, 1) TH_LOG("vector 2: %d (%s)", n, strerror(-n));
	EXPECT_EQ(1, nvme_io_poll(q, done, 4));
	EXPECT_EQ(r, done[0]);
	EXPECT_EQ(0, r->status);
	EXPECT_EQ(-ETIMEDOUT, nvme_msix_wait(c, 1, 0));
	nvme_req_put(r);

	/*
	 * nvme_io_wait sleeps on the eventfd when it finds nothing done: it
	 * polls first, and the device may have completed by then (on a busy
	 * host, every time: CI saw 0 of 17 waited for once), so the
	 * interrupts no wait took are counted from the eventfd at the end.
	 */
	q = nvme_ioq(c, 1);
	r = nvme_req_get(q);
	ASSERT_NE(NULL, r);
	for (n = 0; n < 16; n++) {
		ASSERT_EQ(0, nvme_io_submit(r, NVME_CMD_READ, 50, 1));
		EXPECT_EQ(1, nvme_io_wait(q, done, 4, TMO))
			TH_LOG("%s", c->why);
		EXPECT_EQ(0, r->status);
	}
	EXPECT_EQ(0, nvme_io_sync(r, NVME_CMD_FLUSH, 0, 0, TMO));
	nvme_req_put(r);
	n = nvme_msix_wait(c, q->vector, 0);
	TH_LOG("queue 1: %lu interrupts waited for, %d more signalled, in 17 commands",
	       q->irqs, n > 0 ? n : 0);
	EXPECT_GE(q->irqs + (n > 0 ? n : 0), 1);
}

static void log_wl(struct __test_metadata *_metadata, struct nvme_wl *w,
		   uint64_t us)
{
	TH_LOG("%lu writes %lu reads %lu flushes in %llu ms, up to %u in flight per queue; %lu blocks checked; PRPs: %lu single, %lu pairs, %lu lists; %lu errors%s%s",
	       w->writes, w->reads, w->flushes,
	       (unsigned long long)us / 1000, w->max_qd, w->blocks_checked,
	       w->prp1_only,
	       w->prp2, w->prp_list, w->errors, w->errors ? ": " : "",
	       w->errors ? w->why : "");
}

TEST_F_TIMEOUT(vf1, verified_workload, 90)
{
	struct nvme_ctrl *c = &self->vf.c;
	unsigned long irqs;
	struct nvme_wl w;
	uint64_t t0;

	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, true))
		TH_LOG("%s", c->why);
	ASSERT_EQ(0, nvme_wl_init(&w, c, 4096, 2048, WL_DEPTH, 0x5eed));
	t0 = vmm_now_us();
	ASSERT_EQ(0, nvme_wl_fill(&w, TMO)) TH_LOG("%s", w.why);
	EXPECT_EQ(0, nvme_wl_run(&w, 5000, WL_TMO)) TH_LOG("%s", w.why);
	log_wl(_metadata, &w, vmm_now_us() - t0);
	EXPECT_EQ(0, w.errors);
	EXPECT_EQ(WL_DEPTH, w.max_qd);
	EXPECT_GE(w.reads, 2000);
	EXPECT_GE(w.blocks_checked, 5000);
	EXPECT_GT(w.prp_list, 0);
	EXPECT_GT(w.prp2, 0);
	EXPECT_GT(w.prp1_only, 0);
	/* both queues carried the load, completions by interrupt */
	EXPECT_GE(nvme_ioq(c, 1)->completed, 2000);
	EXPECT_GE(nvme_ioq(c, 2)->completed, 2000);
	irqs = nvme_ioq(c, 1)->irqs + nvme_ioq(c, 2)->irqs;
	TH_LOG("%lu interrupts", irqs);
	EXPECT_GT(irqs, 0);
	EXPECT_EQ(0, nvme_wl_verify_all(&w, TMO)) TH_LOG("%s", w.why);
	nvme_wl_free(&w);
}

/* The checker is not blind: stale and corrupt blocks are caught. */
TEST_F(vf1, workload_catches_bad_data)
{
	struct nvme_ctrl *c = &self->vf.c;
	struct nvme_req *r;
	struct nvme_wl w;
	uint32_t gen;

	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	ASSERT_EQ(0, nvme_wl_init(&w, c, 8192, 256, WL_DEPTH, 0xbad));
	ASSERT_EQ(0, nvme_wl_fill(&w, TMO)) TH_LOG("%s", w.why);
	ASSERT_EQ(0, nvme_wl_verify_all(&w, TMO)) TH_LOG("%s", w.why);

	/* the table claims a newer write of block 10 than the disk holds */
	w.tab[10].gen++;
	EXPECT_EQ(-EILSEQ, nvme_wl_verify_all(&w, TMO));
	EXPECT_EQ(1, w.errors) TH_LOG("%s", w.why);
	EXPECT_NE(NULL, strstr(w.why, "want")) TH_LOG("%s", w.why);
	w.tab[10].gen--;

	/* block 20 overwritten behind the workload's back: stamped for 21 */
	r = nvme_req_get(nvme_ioq(c, 1));
	ASSERT_NE(NULL, r);
	nvme_wl_stamp(&w, r->buf, w.base + 21, w.tab[20].gen);
	ASSERT_EQ(-EILSEQ, nvme_wl_check(&w, r->buf, w.base + 20, &gen));
	ASSERT_EQ(0, nvme_io_sync(r, NVME_CMD_WRITE, w.base + 20, 1, TMO));
	nvme_req_put(r);
	w.errors = 0;
	w.why[0] = 0;
	EXPECT_EQ(-EILSEQ, nvme_wl_verify_all(&w, TMO));
	EXPECT_EQ(1, w.errors);
	EXPECT_NE(NULL, strstr(w.why, "corrupt")) TH_LOG("%s", w.why);
	nvme_wl_free(&w);
}

/*
 * VF 2 reads what VF 1 wrote (one namespace): the workload runs on VF 1,
 * stops, moves with its table to VF 2 (as after a migration), checks every
 * block there and goes on; VF 1 then sees VF 2's writes.
 */
TEST_F_TIMEOUT(vf1, vf2_sees_vf1_data, 90)
{
	struct nvme_ctrl *c1 = &self->vf.c, *c2;
	struct nvme_vf *vf2;
	struct nvme_wl w;
	char err[320];
	uint64_t t0;

	vf2 = calloc(1, sizeof(*vf2));
	ASSERT_NE(NULL, vf2);
	ASSERT_EQ(0, vf_up(vf2, self->t.vf[1], variant->driver, err, sizeof(err)))
		TH_LOG("%s", err);
	c2 = &vf2->c;
	TH_LOG("VF1 %s cntlid %u, VF2 %s cntlid %u", self->t.vf[0],
	       c1->cntlid, self->t.vf[1], c2->cntlid);
	EXPECT_NE(c1->cntlid, c2->cntlid);
	EXPECT_EQ(c1->nsze, c2->nsze);
	EXPECT_EQ(c1->lba_size, c2->lba_size);
	ASSERT_EQ(0, nvme_create_io_queues(c1, 2, QDEPTH, false))
		TH_LOG("%s", c1->why);
	ASSERT_EQ(0, nvme_create_io_queues(c2, 2, QDEPTH, true))
		TH_LOG("%s", c2->why);

	t0 = vmm_now_us();
	ASSERT_EQ(0, nvme_wl_init(&w, c1, 16384, 1024, WL_DEPTH, 0x2f2));
	ASSERT_EQ(0, nvme_wl_fill(&w, TMO)) TH_LOG("%s", w.why);
	EXPECT_EQ(0, nvme_wl_run(&w, 800, WL_TMO)) TH_LOG("%s", w.why);
	/* a pause in the middle: stop with commands in flight, drain */
	EXPECT_EQ(0, nvme_wl_step(&w) < 0);
	EXPECT_EQ(-EBUSY, nvme_wl_attach(&w, c2));
	EXPECT_EQ(0, nvme_wl_drain(&w, TMO)) TH_LOG("%s", w.why);

	ASSERT_EQ(0, nvme_wl_attach(&w, c2)) TH_LOG("%s", w.why);
	w.blocks_checked = 0;
	EXPECT_EQ(0, nvme_wl_verify_all(&w, TMO)) TH_LOG("%s", w.why);
	EXPECT_EQ(w.nr, w.blocks_checked);
	EXPECT_EQ(0, nvme_wl_run(&w, 800, WL_TMO)) TH_LOG("%s", w.why);

	ASSERT_EQ(0, nvme_wl_attach(&w, c1)) TH_LOG("%s", w.why);
	w.blocks_checked = 0;
	EXPECT_EQ(0, nvme_wl_verify_all(&w, TMO)) TH_LOG("%s", w.why);
	EXPECT_EQ(w.nr, w.blocks_checked);
	log_wl(_metadata, &w, vmm_now_us() - t0);
	EXPECT_EQ(0, w.errors);
	nvme_wl_free(&w);
	nvme_vf_down(vf2);
	free(vf2);
}

/*
 * A switchover with commands in flight: the workload forgets them on VF 1
 * (never reaping their completions), VF 1's controller is disabled, and
 * VF 2 reads each of their blocks as either the old or the new generation.
 * The device is let finish them before CC.EN is cleared: QEMU 7.2 died of
 * SIGSEGV once (CI, 6.12 guest) when a VF was disabled with I/O in flight
 * (Documentation/testbed.rst); a migration drains the device first anyway.
 */
TEST_F_TIMEOUT(vf1, abandon_in_flight_then_vf2, 60)
{
	struct nvme_ctrl *c1 = &self->vf.c, *c2;
	unsigned long alts = 0;
	struct nvme_vf *vf2;
	struct nvme_wl w;
	char err[320];
	uint32_t i;

	vf2 = calloc(1, sizeof(*vf2));
	ASSERT_NE(NULL, vf2);
	ASSERT_EQ(0, vf_up(vf2, self->t.vf[1], variant->driver, err, sizeof(err)))
		TH_LOG("%s", err);
	c2 = &vf2->c;
	ASSERT_EQ(0, nvme_create_io_queues(c1, 2, QDEPTH, false))
		TH_LOG("%s", c1->why);
	ASSERT_EQ(0, nvme_create_io_queues(c2, 2, QDEPTH, false))
		TH_LOG("%s", c2->why);
	ASSERT_EQ(0, nvme_wl_init(&w, c1, 20480, 512, WL_DEPTH, 0xab));
	ASSERT_EQ(0, nvme_wl_fill(&w, TMO)) TH_LOG("%s", w.why);
	ASSERT_EQ(0, nvme_wl_run(&w, 300, WL_TMO)) TH_LOG("%s", w.why);
	/* a few rounds, so that writes are surely among those in flight */
	for (i = 0; i < 4; i++)
		ASSERT_LE(0, nvme_wl_step(&w)) TH_LOG("%s", w.why);
	ASSERT_LT(0, nvme_wl_inflight(&w));
	TH_LOG("%lu commands in flight abandoned", nvme_wl_inflight(&w));
	ASSERT_EQ(0, nvme_io_settle(c1, TMO)) TH_LOG("%s", c1->why);
	nvme_wl_abandon(&w);
	EXPECT_EQ(0, nvme_wl_inflight(&w));
	for (i = 0; i < w.nr; i++) {
		EXPECT_EQ(0, w.tab[i].busy);
		alts += !!w.tab[i].alt;
	}
	TH_LOG("%lu blocks may hold either generation", alts);
	EXPECT_LT(0, alts);
	EXPECT_EQ(0, nvme_ctrl_disable(c1)) TH_LOG("%s", c1->why);

	ASSERT_EQ(0, nvme_wl_attach(&w, c2)) TH_LOG("%s", w.why);
	w.blocks_checked = 0;
	EXPECT_EQ(0, nvme_wl_verify_all(&w, TMO)) TH_LOG("%s", w.why);
	EXPECT_EQ(w.nr, w.blocks_checked);
	EXPECT_EQ(0, nvme_wl_run(&w, 300, WL_TMO)) TH_LOG("%s", w.why);
	EXPECT_EQ(0, nvme_wl_verify_all(&w, TMO)) TH_LOG("%s", w.why);
	EXPECT_EQ(0, w.errors) TH_LOG("%s", w.why);
	nvme_wl_free(&w);
	nvme_vf_down(vf2);
	free(vf2);
}

/*
 * VF 1 to VF 2 through the VFIO migration uAPI, the verified workload
 * running: commands in flight when DMA is held (the device drains them),
 * commands queued while it is held (their tail doorbells are held, move
 * in the state record as the queues' tails, and reach VF 2 when it runs),
 * then the same driver state goes on against VF 2 over the same guest
 * memory, and every block checks.
 */
/*
 * Two I/O queue pairs and the verified workload on @c: every block
 * written once, @cmds commands run, then a step that leaves commands in
 * flight.
 */
static void workload_in_flight(struct __test_metadata *_metadata,
			       struct nvme_ctrl *c, struct nvme_wl *w,
			       uint32_t seed, unsigned long cmds)
{
	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	ASSERT_EQ(0, nvme_wl_init(w, c, 8192, 512, WL_DEPTH, seed));
	ASSERT_EQ(0, nvme_wl_fill(w, TMO)) TH_LOG("%s", w->why);
	ASSERT_EQ(0, nvme_wl_run(w, cmds, WL_TMO)) TH_LOG("%s", w->why);
	ASSERT_LE(0, nvme_wl_step(w)) TH_LOG("%s", w->why);
}

TEST_F_TIMEOUT(mig, migrate_to_vf2_with_io, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	struct vmm_dev *src = &self->vf.d, *dst;
	struct mig_buf buf = {};
	unsigned long inflight, held;
	uint64_t flags = 0;
	struct nvme_wl w;
	char err[320];
	int fd, dfd, ret;

	ASSERT_EQ(0, mig_features(src, &flags));
	ASSERT_TRUE(flags & VFIO_MIGRATION_STOP_COPY);
	ASSERT_TRUE(flags & VFIO_MIGRATION_P2P);

	/* the target: VF 2 under the profile, the same guest RAM mapped */
	dst = calloc(1, sizeof(*dst));
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, vmm_bind(self->t.vf[1], TB_DRIVER));
	ASSERT_EQ(0, nvme_vf_trap(self->t.vf[1], err, sizeof(err)))
		TH_LOG("%s", err);
	ASSERT_EQ(0, vmm_open(dst, self->t.vf[1]));
	ASSERT_EQ(0, vmm_dma_map(dst, &self->vf.ram));
	ASSERT_EQ(0, vmm_enable_bus_master(dst));

	workload_in_flight(_metadata, c, &w, 0x5a, 300);

	/* the target listens from the start */
	ASSERT_EQ(0, mig_set_state(dst, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(dst, VFIO_DEVICE_STATE_RESUMING, &dfd));
	if (flags & VFIO_MIGRATION_PRE_COPY) {
		/* 6.2+: the state streams while the workload runs on */
		struct mig_buf pre = {};
		size_t pre_bytes = 0;
		ssize_t n;
		int i;

		ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_PRE_COPY,
					   &fd));
		for (i = 0; i < 4; i++) {
			ASSERT_EQ(0, nvme_wl_run(&w, 100, WL_TMO))
				TH_LOG("%s", w.why);
			pre.len = 0;
			n = mig_read_precopy(fd, &pre);
			ASSERT_LE(0, n) TH_LOG("PRE_COPY read: %s",
					       strerror(-n));
			pre_bytes += n;
			ASSERT_EQ(0, mig_write_stream(dfd, pre.data, pre.len,
						      4096));
		}
		mig_buf_free(&pre);
		ASSERT_LE(0, nvme_wl_step(&w)) TH_LOG("%s", w.why);
		inflight = nvme_wl_inflight(&w);
		/* DMA held: the device finishes what it was given, no more */
		ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_PRE_COPY_P2P,
					   NULL));
		ASSERT_LE(0, nvme_wl_step(&w)) TH_LOG("%s", w.why);
		held = nvme_wl_inflight(&w);
		ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_STOP_COPY,
					   NULL));
		TH_LOG("%zu bytes in PRE_COPY", pre_bytes);
	} else {
		inflight = nvme_wl_inflight(&w);
		ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_RUNNING_P2P,
					   NULL));
		ASSERT_LE(0, nvme_wl_step(&w)) TH_LOG("%s", w.why);
		held = nvme_wl_inflight(&w);
		ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_STOP, NULL));
		ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_STOP_COPY,
					   &fd));
	}
	TH_LOG("%lu commands in flight at the hold, %lu after one more step",
	       inflight, held);
	EXPECT_LT(0, held) TH_LOG("no command was in flight at the switchover");
	ret = mig_read_stop_copy(fd, &buf);
	close(fd);
	ASSERT_LT(0, ret);
	TH_LOG("%zu bytes of device state in STOP_COPY", buf.len);

	ret = mig_write_stream(dfd, buf.data, buf.len, 4096);
	close(dfd);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, mig_set_state(dst, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(dst, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(dst, VFIO_DEVICE_STATE_RUNNING, NULL));

	/* the driver goes on: the same queues, now behind VF 2 */
	c->dev = dst;
	ASSERT_EQ(0, nvme_wl_drain(&w, TMO)) TH_LOG("%s", w.why);
	ASSERT_EQ(0, nvme_wl_run(&w, 300, WL_TMO)) TH_LOG("%s", w.why);
	w.blocks_checked = 0;
	EXPECT_EQ(0, nvme_wl_verify_all(&w, TMO)) TH_LOG("%s", w.why);
	EXPECT_EQ(w.nr, w.blocks_checked);
	EXPECT_EQ(0, w.errors) TH_LOG("%s", w.why);

	nvme_wl_free(&w);
	nvme_ctrl_disable(c);
	c->dev = src;
	mig_buf_free(&buf);
	vmm_dma_unmap(dst, &self->vf.ram);
	vmm_close(dst);
	free(dst);
}

/*
 * The switchover fails after the source's state was read (the target
 * refused it, the link dropped): the source goes back STOP_COPY -> STOP
 * -> RUNNING_P2P -> RUNNING, and the doorbells the driver rang while DMA
 * was held reach the device then: every command completes once, every
 * block reads back right on VF 1.
 */
TEST_F_TIMEOUT(mig, source_goes_on_after_stop_copy, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	struct vmm_dev *src = &self->vf.d;
	struct mig_buf buf = {};
	unsigned long held, submitted;
	uint32_t st;
	struct nvme_wl w;
	int fd, ret, i;

	workload_in_flight(_metadata, c, &w, 0x5b, 200);

	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	/* the driver goes on: what completes is reaped, new doorbells held */
	for (i = 0; i < 3; i++)
		ASSERT_LE(0, nvme_wl_step(&w)) TH_LOG("%s", w.why);
	held = nvme_wl_inflight(&w);
	submitted = c->ioq[0].submitted + c->ioq[1].submitted;
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ret = mig_read_stop_copy(fd, &buf);
	close(fd);
	ASSERT_LT(0, ret);
	/* the target never took it: back to running */
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, mig_get_state(src, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, st);
	TH_LOG("%lu commands in flight when DMA was held; %zu bytes of state read and dropped",
	       held, buf.len);
	EXPECT_LT(0, held);

	ASSERT_EQ(0, nvme_wl_drain(&w, TMO)) TH_LOG("%s", w.why);
	EXPECT_EQ(submitted, c->ioq[0].completed + c->ioq[1].completed)
		TH_LOG("every command submitted completes, once");
	ASSERT_EQ(0, nvme_wl_run(&w, 300, WL_TMO)) TH_LOG("%s", w.why);
	w.blocks_checked = 0;
	EXPECT_EQ(0, nvme_wl_verify_all(&w, TMO)) TH_LOG("%s", w.why);
	EXPECT_EQ(w.nr, w.blocks_checked);
	EXPECT_EQ(0, w.errors) TH_LOG("%s", w.why);
	nvme_wl_free(&w);
	mig_buf_free(&buf);
}

/*
 * The verified workload (blocks from @slba, 512 of them) on @vf's I/O
 * queues until @reads Reads completed, the mediated log read and cleared
 * every 3 steps while commands are in flight; *@cmp compares what the log
 * held with the pages the device wrote (each Read's data, the completion
 * queues). The queues must exist.
 */
static void dirty_run(struct __test_metadata *_metadata, struct nvme_vf *vf,
		      uint64_t slba, unsigned long reads, uint32_t seed,
		      struct nvme_dw_cmp *cmp)
{
	const unsigned long words = RAM_SIZE / MIG_PAGE / 64;
	struct nvme_ctrl *c = &vf->c;
	struct nvme_dev_writes dw;
	unsigned long i, reports = 0;
	struct mig_dirty log;
	struct nvme_wl w;
	uint64_t end, *seen;
	int ret;

	seen = calloc(words, 8);
	ASSERT_NE(NULL, seen);
	ASSERT_EQ(0, nvme_dw_init(&dw, RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, nvme_wl_init(&w, c, slba, 512, WL_DEPTH, seed));
	ASSERT_EQ(0, nvme_wl_fill(&w, TMO)) TH_LOG("%s", w.why);
	ret = mig_dirty_start(&log, &vf->d, RAM_IOVA, RAM_SIZE, true);
	ASSERT_EQ(0, ret) TH_LOG("dirty log: %s", log.err);
	ASSERT_EQ(MIG_PAGE, log.page_size);
	nvme_dw_watch(&dw, &w);
	/*
	 * Until @reads Reads completed, not a number of steps: a step that
	 * finds nothing done returns at once (400 steps gave 77 Reads once).
	 */
	end = vmm_now_us() + WL_TMO * 1000ull;
	for (i = 0; dw.reads < reads; i++) {
		ASSERT_GT(end, vmm_now_us())
			TH_LOG("%lu Reads in %d ms", dw.reads, WL_TMO);
		ASSERT_LE(0, nvme_wl_step(&w)) TH_LOG("%s", w.why);
		if (i % 3 == 0) {
			ASSERT_EQ(0, mig_dirty_report(&log, seen));
			reports++;
		}
	}
	ASSERT_EQ(0, nvme_wl_drain(&w, TMO)) TH_LOG("%s", w.why);
	ASSERT_EQ(0, mig_dirty_report(&log, seen));
	ASSERT_EQ(0, mig_dirty_stop(&log));
	nvme_dw_add_cqs(&dw, c);
	nvme_dw_compare(&dw, seen, cmp);
	TH_LOG("%lu reads, %lu reports: %lu pages missed, %lu marked the device did not write",
	       dw.reads, reports, cmp->missed, cmp->extra);
	EXPECT_LE(reads, dw.reads);
	EXPECT_EQ(0, w.errors) TH_LOG("%s", w.why);
	nvme_wl_free(&w);
	nvme_dw_free(&dw);
	free(seen);
}

/*
 * Dirty completeness through the profile: the mediated log, read and
 * cleared every few steps while commands are in flight (so that marks
 * race with reports), holds every page the device wrote.
 */
TEST_F_TIMEOUT(mig, dirty_log_holds_every_device_write, 120)
{
	struct nvme_dw_cmp cmp;

	ASSERT_EQ(0, nvme_create_io_queues(&self->vf.c, 2, QDEPTH, false))
		TH_LOG("%s", self->vf.c.why);
	dirty_run(_metadata, &self->vf, 12288, 300, 0x77, &cmp);
	EXPECT_EQ(0, cmp.missed);
}

/*
 * The same, with the driver freeing command ids as it reads completions
 * and writing the CQ head doorbell at its next poll: ids are reused before
 * the old completions are released, and those releases must not end the
 * new commands' records in the profile's model.
 */
TEST_F_TIMEOUT(mig, dirty_log_holds_writes_of_ids_reused_before_release, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	unsigned long reused = 0;
	struct nvme_dw_cmp cmp;
	int i;

	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	for (i = 0; i < c->nr_ioq; i++)
		c->ioq[i].late_head = true;
	dirty_run(_metadata, &self->vf, 12288, 300, 0x78, &cmp);
	for (i = 0; i < c->nr_ioq; i++)
		reused += c->ioq[i].reused_early;
	TH_LOG("%lu commands reused an id before its completion was released",
	       reused);
	EXPECT_LT(100, reused);
	EXPECT_EQ(0, cmp.missed);
}

#define RESET_DELAY	"/sys/kernel/debug/vfio-mig/reset_delay_ms"

/*
 * A reset the PCI core makes outside VFIO_DEVICE_RESET (sysfs here; an FLR
 * through config space alike) reaches the profile's model through a work
 * item. The guest's driver may bring the controller up again before that
 * work runs (it ran 2 s late here): the model takes the reset before the
 * driver's first write, not after its last, and the dirty log then holds
 * every page the device writes.
 */
TEST_F_TIMEOUT(mig, dirty_log_after_a_reset_the_driver_outran, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	struct nvme_dw_cmp cmp;
	char path[128];
	int ret;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/reset",
		 self->t.vf[0]);
	if (access(path, W_OK))
		SKIP(return, "%s: no reset method", self->t.vf[0]);
	ASSERT_EQ(0, vmm_sysfs_write(RESET_DELAY, "2000"));
	ret = vmm_sysfs_write(path, "1");
	/* the delay is taken when the work is queued: back to none now */
	ASSERT_EQ(0, vmm_sysfs_write(RESET_DELAY, "0"));
	ASSERT_EQ(0, ret) TH_LOG("reset: %s", strerror(-ret));
	nvme_ctrl_fini(c);
	ASSERT_EQ(0, nvme_ctrl_init(c, &self->vf.d, &self->vf.ram, NSID,
				    false))
		TH_LOG("%s", c->why);
	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	usleep(2500000);	/* the reset's work ran */
	dirty_run(_metadata, &self->vf, 12288, 300, 0x79, &cmp);
	EXPECT_EQ(0, cmp.missed)
		TH_LOG("the model was reset after the driver brought the controller up");
}

static unsigned long tainted(void)
{
	char buf[32] = "";

	vmm_sysfs_read("/proc/sys/kernel/tainted", buf, sizeof(buf));
	return strtoul(buf, NULL, 0);
}

/* TAINT_DIE (oops) and TAINT_WARN */
#define TAINT_BAD	((1ul << 7) | (1ul << 9))

/* A Read of @pages pages from LBA 0 with the guest's own PRPs. */
static int read_with(struct nvme_req *r, uint32_t pages, uint64_t prp1,
		     uint64_t prp2)
{
	struct nvme_sqe cmd = {
		.opcode = NVME_CMD_READ, .nsid = r->q->c->nsid,
		.prp1 = prp1, .prp2 = prp2,
		.cdw12 = pages * (NVME_PAGE / r->q->c->lba_size) - 1,
	};

	return nvme_sqe_sync(r, &cmd, TMO);
}

/* Create I/O CQ (@sq: SQ on CQ @cqid) with the guest's own parameters. */
static int create_with(struct nvme_ctrl *c, bool sq, uint16_t qid,
		       uint16_t size, uint64_t base, uint16_t cqid)
{
	struct nvme_sqe cmd = {
		.opcode = sq ? 0x01 : 0x05, .prp1 = base,
		.cdw10 = (uint32_t)(size - 1) << 16 | qid,
		.cdw11 = sq ? (uint32_t)cqid << 16 | 1 : 1,
	};

	return nvme_admin(c, &cmd, NULL, TMO);
}

#define HOSTILE_STEPS	13

/*
 * The first 4 pages of blocks hold a pattern and queue 1's data buffers are zero, so that
 * the pages a Read of them fills change (what a memory snapshot sees).
 */
static void seed_blocks(struct __test_metadata *_metadata,
			struct nvme_ctrl *c)
{
	struct nvme_queue *q = nvme_ioq(c, 1);
	struct nvme_req *r = nvme_req_get(q);
	int i;

	ASSERT_NE(NULL, r);
	pattern(r->buf, 4 * NVME_PAGE, 0x5eed);
	ASSERT_EQ(0, nvme_io_sync(r, NVME_CMD_WRITE, 0,
				  4 * NVME_PAGE / c->lba_size, TMO))
		TH_LOG("%s", c->why);
	nvme_req_put(r);
	for (i = 0; i < q->depth; i++)
		memset(q->reqs[i].buf, 0, NVME_SLOT_BYTES);
}

static void cpu_wrote_page(void *arg, uint64_t iova, uint64_t len)
{
	nvme_dw_mark(arg, iova, len);
}

/*
 * Pages of @v's RAM that differ from @snap and that the test's CPU did not
 * write (@cpu, fed by cpu_wrote_page()): the device wrote them. Returns
 * how many of them the log's report (@seen) lacks; *@device_pages counts
 * them all.
 */
static unsigned long unreported_device_pages(struct __test_metadata *_metadata,
					     const struct nvme_vf *v,
					     const void *snap,
					     const struct nvme_dev_writes *cpu,
					     const uint64_t *seen,
					     unsigned long *device_pages)
{
	unsigned long pg, missed = 0;

	*device_pages = 0;
	for (pg = 0; pg < RAM_SIZE / MIG_PAGE; pg++) {
		bool reported = seen[pg / 64] & (1ull << (pg % 64));
		bool by_cpu = cpu->bits[pg / 64] & (1ull << (pg % 64));

		if (!memcmp((const uint8_t *)snap + pg * MIG_PAGE,
			    (const uint8_t *)v->ram.host + pg * MIG_PAGE,
			    MIG_PAGE) || by_cpu)
			continue;
		(*device_pages)++;
		if (!reported) {
			missed++;
			TH_LOG("page %#llx written by the device, not reported",
			       (unsigned long long)(RAM_IOVA + pg * MIG_PAGE));
		}
	}
	return missed;
}

/*
 * A dirty log started while the device has commands in flight, decoded
 * before the log existed: the pages they write after the start are
 * reported (the start marks what is in flight, as a report does): the
 * log is started right after the driver submitted, 40 times.
 */
TEST_F_TIMEOUT(mig, dirty_log_started_with_commands_in_flight, 120)
{
	unsigned long device_pages = 0, missed = 0, inflight = 0, n, m;
	struct nvme_ctrl *c = &self->vf.c;
	struct nvme_dev_writes cpu;
	struct mig_dirty log;
	struct nvme_wl w;
	uint64_t *seen;
	void *snap;
	int ret, i;

	ASSERT_EQ(0, nvme_dw_init(&cpu, RAM_IOVA, RAM_SIZE));
	seen = calloc(RAM_SIZE / MIG_PAGE / 64, 8);
	snap = malloc(RAM_SIZE);
	ASSERT_NE(NULL, seen);
	ASSERT_NE(NULL, snap);
	workload_in_flight(_metadata, c, &w, 0x6c, 100);
	ASSERT_EQ(0, nvme_wl_drain(&w, TMO)) TH_LOG("%s", w.why);
	c->on_write = cpu_wrote_page;
	c->on_write_arg = &cpu;
	for (i = 0; i < 40; i++) {
		memset(cpu.bits, 0, RAM_SIZE / MIG_PAGE / 8);
		memset(seen, 0, RAM_SIZE / MIG_PAGE / 8);
		memcpy(snap, self->vf.ram.host, RAM_SIZE);
		ASSERT_LE(0, nvme_wl_step(&w)) TH_LOG("%s", w.why);
		inflight += nvme_wl_inflight(&w);
		ret = mig_dirty_start(&log, &self->vf.d, RAM_IOVA, RAM_SIZE,
				      true);
		ASSERT_EQ(0, ret) TH_LOG("dirty log: %s", log.err);
		ASSERT_EQ(0, nvme_wl_drain(&w, TMO)) TH_LOG("%s", w.why);
		ASSERT_EQ(0, mig_dirty_report(&log, seen));
		ASSERT_EQ(0, mig_dirty_stop(&log));
		/*
		 * The snapshot predates the submission, so the test cannot
		 * tell whether a command wrote just before the start or
		 * after it: it asks the log for both, which the start's
		 * marking of every command not yet released gives.
		 */
		m = unreported_device_pages(_metadata, &self->vf, snap, &cpu,
					    seen, &n);
		device_pages += n;
		missed += m;
	}
	c->on_write = NULL;
	TH_LOG("40 starts, %lu commands in flight at them; %lu pages written by the device, %lu missed by the log",
	       inflight, device_pages, missed);
	EXPECT_EQ(0, missed);
	EXPECT_EQ(0, w.errors) TH_LOG("%s", w.why);
	nvme_wl_free(&w);
	nvme_dw_free(&cpu);
	free(snap);
	free(seen);
	if (!device_pages)
		SKIP(return, "the device wrote nothing across the starts");
}

static const char *const hostile_names[HOSTILE_STEPS] = {
	"Read, PRP1 outside the guest's memory",
	"Read of 2 pages, PRP2 not page aligned",
	"Read, a PRP list entry outside",
	"Read, the PRP list outside",
	"Read after them",
	"Create I/O CQ 0",
	"Create I/O CQ beyond the doorbells",
	"Create I/O CQ of 1 entry",
	"Create I/O CQ, base not page aligned",
	"Create I/O SQ on a CQ that does not exist",
	"Create I/O SQ on the admin CQ",
	"CSTS.CFS afterwards",
	"Read at the end",
};

/*
 * What a hostile guest driver does to @v (2 I/O queue pairs created):
 * Reads whose PRPs point outside its memory or are not aligned, doorbells
 * of queues never created and beyond the device's, a tail and a head past
 * a queue's end, Create I/O queue commands with bad parameters. @out gets
 * each step's outcome (the completion status, -errno, or CFS).
 */
static void hostile_seq(struct __test_metadata *_metadata, struct nvme_vf *v,
			int *out)
{
	const uint64_t outside = 0x7ff00000ull;	/* no mapping there */
	struct nvme_ctrl *c = &v->c;
	uint64_t list_iova, *list;
	struct nvme_req *r;
	uint32_t max_qid;
	int k = 0;

	r = nvme_req_get(nvme_ioq(c, 1));
	ASSERT_NE(NULL, r);
	list = nvme_dma_alloc(c, NVME_PAGE, &list_iova);
	ASSERT_NE(NULL, list);
	out[k++] = read_with(r, 1, outside, 0);
	out[k++] = read_with(r, 2, r->buf_iova, r->buf_iova + NVME_PAGE + 8);
	list[0] = r->buf_iova + NVME_PAGE;
	list[1] = outside;
	list[2] = r->buf_iova + 3 * NVME_PAGE;
	if (c->on_write)
		c->on_write(c->on_write_arg, list_iova, 3 * sizeof(*list));
	out[k++] = read_with(r, 4, r->buf_iova, list_iova);
	out[k++] = read_with(r, 4, r->buf_iova, outside);
	out[k++] = read_with(r, 1, r->buf_iova, 0);

	max_qid = (v->d.regions[0].size - NVME_REG_DBS) /
		  (2 * c->db_stride) - 1;
	ASSERT_LT(3, max_qid);
	nvme_wr32(c, nvme_doorbell_offset(c, 3, false), 5);
	nvme_wr32(c, nvme_doorbell_offset(c, 3, true), 5);
	nvme_wr32(c, nvme_doorbell_offset(c, max_qid, false), 1);
	nvme_wr32(c, nvme_doorbell_offset(c, max_qid, true), 1);
	nvme_wr32(c, nvme_doorbell_offset(c, 2, false), QDEPTH + 3);
	nvme_wr32(c, nvme_doorbell_offset(c, 2, true), 0xffff);

	out[k++] = create_with(c, false, 0, 8, list_iova, 0);
	out[k++] = create_with(c, false, max_qid + 1, 8, list_iova, 0);
	out[k++] = create_with(c, false, 3, 1, list_iova, 0);
	out[k++] = create_with(c, false, 3, 8, list_iova + 8, 0);
	out[k++] = create_with(c, true, 3, 8, list_iova, 9);
	out[k++] = create_with(c, true, 3, 8, list_iova, 0);
	out[k++] = !!(nvme_rd32(c, NVME_REG_CSTS) & NVME_CSTS_CFS);
	out[k++] = read_with(r, 1, r->buf_iova, 0);
	ASSERT_EQ(HOSTILE_STEPS, k);
	nvme_req_put(r);
}

/*
 * A hostile guest driver under the profile (the trap decodes every
 * doorbell) gets what the same driver gets from the other VF under
 * vfio-pci, step by step (the device's own behaviour: QEMU's NVMe
 * completes some of these commands, fails others, ignores bad doorbells);
 * the host stays up (no WARN, no oops); the dirty log misses no page the
 * device wrote, during the hostile commands and in the verified workload
 * after them; the profile refuses to migrate a device it cannot vouch for
 * (a PRP list it could not read), the device running on, until the guest
 * resets the controller.
 */
TEST_F_TIMEOUT(mig, hostile_guest_commands, 120)
{
	int prof[HOSTILE_STEPS], pci[HOSTILE_STEPS];
	unsigned long taint0 = tainted();
	struct vmm_dev *d = &self->vf.d;
	unsigned long device_pages, missed;
	struct nvme_dev_writes cpu;
	struct mig_buf buf = {};
	struct nvme_dw_cmp cmp;
	struct mig_dirty log;
	uint64_t *seen;
	struct nvme_vf *other;
	char err[320];
	void *snap;
	uint32_t st;
	int ret, fd, i;

	other = calloc(1, sizeof(*other));
	ASSERT_NE(NULL, other);
	ASSERT_EQ(0, vf_up(other, self->t.vf[1], "vfio-pci", err,
			   sizeof(err)))
		TH_LOG("%s", err);
	ASSERT_EQ(0, nvme_create_io_queues(&other->c, 2, QDEPTH, false))
		TH_LOG("%s", other->c.why);
	ASSERT_EQ(0, nvme_create_io_queues(&self->vf.c, 2, QDEPTH, false))
		TH_LOG("%s", self->vf.c.why);
	hostile_seq(_metadata, other, pci);
	/*
	 * Under the profile with its dirty log on: every page that changed
	 * and that the CPU did not write (the device did) must be reported.
	 */
	ASSERT_EQ(0, nvme_dw_init(&cpu, RAM_IOVA, RAM_SIZE));
	seen = calloc(RAM_SIZE / MIG_PAGE / 64, 8);
	snap = malloc(RAM_SIZE);
	ASSERT_NE(NULL, seen);
	ASSERT_NE(NULL, snap);
	seed_blocks(_metadata, &self->vf.c);
	ret = mig_dirty_start(&log, d, RAM_IOVA, RAM_SIZE, true);
	ASSERT_EQ(0, ret) TH_LOG("dirty log: %s", log.err);
	memcpy(snap, self->vf.ram.host, RAM_SIZE);
	self->vf.c.on_write = cpu_wrote_page;
	self->vf.c.on_write_arg = &cpu;
	hostile_seq(_metadata, &self->vf, prof);
	self->vf.c.on_write = NULL;
	ASSERT_EQ(0, mig_dirty_report(&log, seen));
	ASSERT_EQ(0, mig_dirty_stop(&log));
	missed = unreported_device_pages(_metadata, &self->vf, snap, &cpu, seen,
					 &device_pages);
	TH_LOG("hostile commands: %lu pages written by the device, %lu missed by the log",
	       device_pages, missed);
	EXPECT_EQ(0, missed);
	EXPECT_LT(0, device_pages);
	nvme_dw_free(&cpu);
	free(snap);
	free(seen);
	for (i = 0; i < HOSTILE_STEPS; i++) {
		EXPECT_EQ(pci[i], prof[i])
			TH_LOG("%s: %d under vfio-pci, %d under the profile",
			       hostile_names[i], pci[i], prof[i]);
		TH_LOG("%-42s %d", hostile_names[i], prof[i]);
	}
	EXPECT_EQ(0, prof[HOSTILE_STEPS - 1]);
	nvme_vf_down(other);
	free(other);
	vmm_bind(self->t.vf[1], TB_DRIVER);

	/* the workload goes on; the dirty log misses nothing */
	dirty_run(_metadata, &self->vf, 8192, 150, 0x4057, &cmp);
	EXPECT_EQ(0, cmp.missed);

	/*
	 * The PRP list the model could not read (the IOMMU had no mapping
	 * there) is one it cannot vouch for: had the VMM mapped it before
	 * the device fetched it, the device would have written pages the log
	 * never saw. The device refuses to leave RUNNING, clearly, and runs
	 * on; a controller reset (the guest's driver's) makes it migratable
	 * again.
	 */
	ret = mig_set_state(d, VFIO_DEVICE_STATE_RUNNING_P2P, NULL);
	EXPECT_EQ(-EFAULT, ret) TH_LOG("P2P after an unreadable PRP list: %s",
				       strerror(-ret));
	ASSERT_EQ(0, mig_get_state(d, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, st);
	nvme_ctrl_fini(&self->vf.c);
	ASSERT_EQ(0, nvme_ctrl_init(&self->vf.c, d, &self->vf.ram, NSID,
				    false))
		TH_LOG("%s", self->vf.c.why);
	ASSERT_EQ(0, nvme_create_io_queues(&self->vf.c, 2, QDEPTH, false))
		TH_LOG("%s", self->vf.c.why);
	ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL));
	ret = mig_set_state(d, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	ASSERT_EQ(0, ret) TH_LOG("STOP_COPY: %s", strerror(-ret));
	ret = mig_read_stop_copy(fd, &buf);
	close(fd);
	EXPECT_LT(0, ret) TH_LOG("the state did not save: %s",
				 strerror(-ret));
	ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, mig_get_state(d, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, st);
	mig_buf_free(&buf);
	EXPECT_EQ(taint0 & TAINT_BAD, tainted() & TAINT_BAD)
		TH_LOG("kernel tainted %#lx (was %#lx)", tainted(), taint0);
}

TEST_HARNESS_MAIN
