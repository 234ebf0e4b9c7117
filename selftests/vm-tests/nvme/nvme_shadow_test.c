// SPDX-License-Identifier: GPL-2.0
/*
 * The shadow adapter (sriov_shadow's nvme model) in place of an NVMe VF
 * under the test VMM's driver and its verified workload (nvme.h: every
 * block written carries a stamp, every read is checked, a completion for
 * a command not in flight is an error):
 *
 *  - engage_holds_io_hand_back_runs_it: engaged with commands in flight
 *    (the engage waits for them); while engaged the registers read as the
 *    driver left them, the completions posted before the engage are
 *    reaped, and the commands the driver submits are held: none
 *    completes. After the hand-back every held command completes once and
 *    every block reads back right;
 *  - migrate_while_engaged: VF 1's shadow holds submitted commands (and
 *    the completions posted before the engage are reaped through it); its
 *    stream (the shadow's state record, the held submissions as queue
 *    tails, the CQ heads the guest moved) goes to VF 2, whose device takes
 *    it (no shadow from a stream for NVMe) and runs the held commands once
 *    it runs: every block right on VF 2;
 *  - controller_reset_while_engaged: the driver disables the controller
 *    while engaged, then enables it again: CSTS.RDY follows at once, a
 *    migration is refused (the record no longer describes the controller)
 *    and the source runs on; the hand-back resets and enables the device
 *    too, the commands held before the reset never run, and the driver
 *    brings the controller up again;
 *  - device_reset_while_engaged: VFIO_DEVICE_RESET while engaged resets
 *    the device and the model together: the held commands never run, the
 *    hand-back gives the device nothing, the driver starts again;
 *  - pci_reset_while_engaged: a reset through sysfs (as an FLR or a hot
 *    reset) while engaged: the model follows before the guest's next
 *    access, and what the guest writes after it reaches the device;
 *  - hostile_writes_while_engaged: hundreds of doorbell writes of every
 *    width and offset, doorbells of queues that cannot exist and CC
 *    toggled over and over: the model keeps a bounded state, the
 *    hand-back goes through, and the controller works afterwards.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/vfio_mig.h>

#include "kselftest_harness.h"
#include "genl.h"
#include "mig.h"
#include "nvme.h"
#include "nvme_vf.h"
#include "shadow.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(4u << 20)
#define NSID		1
#define QDEPTH		16
#define WL_DEPTH	8
#define TMO		5000
#define WL_TMO		40000
#define HOLD_US		200000	/* how long the held commands are watched */

FIXTURE(nsh) {
	struct tb_devs t;
	struct nvme_vf vf;
	struct genl nl;
	const char *bdf;
};

FIXTURE_SETUP(nsh)
{
	char err[320];

	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(TB_NR_VF, self->t.nr_vf);
	self->bdf = self->t.vf[0];
	if (!tb_module_loaded("sriov_shadow"))
		ASSERT_EQ(0, tb_module_load("sriov_shadow"));
	ASSERT_EQ(0, genl_open(&self->nl, "vfio_mig"));
	ASSERT_EQ(0, nvme_vf_up(&self->vf, self->bdf, TB_DRIVER, RAM_SIZE,
				RAM_IOVA, NSID, err, sizeof(err)))
		TH_LOG("%s", err);
}

FIXTURE_TEARDOWN(nsh)
{
	struct lm_shadow s;

	if (self->vf.open && !lm_shadow_get(&self->nl, self->bdf, &s) &&
	    s.engaged)
		lm_shadow_cmd(&self->nl, VFIO_MIG_CMD_SHADOW_DETACH, self->bdf);
	nvme_vf_down(&self->vf);
	genl_close(&self->nl);
}

/* Two polled I/O queue pairs, every block written once, some commands run. */
static void workload(struct __test_metadata *_metadata, struct nvme_ctrl *c,
		     struct nvme_wl *w, uint32_t seed)
{
	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	ASSERT_EQ(0, nvme_wl_init(w, c, 8192, 512, WL_DEPTH, seed));
	ASSERT_EQ(0, nvme_wl_fill(w, TMO)) TH_LOG("%s", w->why);
	ASSERT_EQ(0, nvme_wl_run(w, 200, WL_TMO)) TH_LOG("%s", w->why);
}

/* Nothing in flight, more commands run, every block reads back right. */
static void finish(struct __test_metadata *_metadata, struct nvme_wl *w)
{
	ASSERT_EQ(0, nvme_wl_drain(w, TMO)) TH_LOG("%s", w->why);
	ASSERT_EQ(0, nvme_wl_run(w, 200, WL_TMO)) TH_LOG("%s", w->why);
	w->blocks_checked = 0;
	EXPECT_EQ(0, nvme_wl_verify_all(w, TMO)) TH_LOG("%s", w->why);
	EXPECT_EQ(w->nr, w->blocks_checked);
	EXPECT_EQ(0, w->errors) TH_LOG("%s", w->why);
}

/* The driver brings the controller up again and the workload runs. */
static void restart(struct __test_metadata *_metadata,
		    FIXTURE_DATA(nsh) *self, uint32_t seed)
{
	struct nvme_wl w;
	char err[320];

	nvme_vf_down(&self->vf);
	ASSERT_EQ(0, nvme_vf_up(&self->vf, self->bdf, TB_DRIVER, RAM_SIZE,
				RAM_IOVA, NSID, err, sizeof(err)))
		TH_LOG("%s", err);
	workload(_metadata, &self->vf.c, &w, seed);
	finish(_metadata, &w);
	nvme_wl_free(&w);
}

/*
 * The commands held before a reset never ran (their queues went with
 * it): forgotten, and the driver starts again.
 */
static void never_ran(struct __test_metadata *_metadata,
		      FIXTURE_DATA(nsh) *self, struct nvme_wl *w,
		      unsigned long held, uint32_t seed)
{
	EXPECT_EQ(-ETIMEDOUT, nvme_io_settle(&self->vf.c, 100))
		TH_LOG("%lu commands held before the reset completed", held);
	nvme_wl_abandon(w);
	nvme_wl_free(w);
	restart(_metadata, self, seed);
}

static uint64_t engage(struct __test_metadata *_metadata,
		       FIXTURE_DATA(nsh) *self)
{
	struct lm_shadow s;
	uint64_t t0 = vmm_now_us(), us;
	int ret;

	ret = lm_shadow_cmd(&self->nl, VFIO_MIG_CMD_SHADOW_ATTACH, self->bdf);
	us = vmm_now_us() - t0;
	EXPECT_EQ(0, ret) TH_LOG("engage: %s", self->nl.err);
	EXPECT_EQ(0, lm_shadow_get(&self->nl, self->bdf, &s));
	EXPECT_TRUE(s.engaged);
	TH_LOG("engaged in %llu us (kernel: %llu us)", (unsigned long long)us,
	       (unsigned long long)(s.engage_ns / 1000));
	return us;
}

/*
 * While engaged: submit until every queue is full and watch for HOLD_US;
 * what completes was posted before the engage (@before: commands in
 * flight then). Returns the commands held.
 */
static unsigned long hold(struct __test_metadata *_metadata,
			  struct nvme_wl *w, unsigned long before)
{
	unsigned long reaped = 0;
	uint64_t end = vmm_now_us() + HOLD_US;
	int n;

	do {
		n = nvme_wl_step(w);
		EXPECT_LE(0, n) TH_LOG("%s", w->why);
		if (n < 0)
			break;
		reaped += n;
		usleep(10000);
	} while (vmm_now_us() < end);
	TH_LOG("while engaged: %lu completions reaped (%lu in flight at the engage), %lu commands held",
	       reaped, before, nvme_wl_inflight(w));
	EXPECT_GE(before, reaped) TH_LOG("a command submitted to the shadow ran");
	EXPECT_LT(0, nvme_wl_inflight(w));
	return nvme_wl_inflight(w);
}

TEST_F_TIMEOUT(nsh, engage_holds_io_hand_back_runs_it, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	uint32_t cc, csts, intms;
	unsigned long before, held;
	struct lm_shadow s;
	uint64_t cap, t0;
	struct nvme_wl w;
	int ret;

	workload(_metadata, c, &w, 0x51);
	ASSERT_LE(0, nvme_wl_step(&w)) TH_LOG("%s", w.why);
	before = nvme_wl_inflight(&w);
	cap = nvme_rd64(c, NVME_REG_CAP);
	cc = nvme_rd32(c, NVME_REG_CC);
	intms = nvme_rd32(c, NVME_REG_INTMS);

	engage(_metadata, self);
	/* the registers as the driver left them, served by the model */
	EXPECT_EQ(cap, nvme_rd64(c, NVME_REG_CAP));
	EXPECT_EQ(cc, nvme_rd32(c, NVME_REG_CC));
	EXPECT_EQ(intms, nvme_rd32(c, NVME_REG_INTMS));
	csts = nvme_rd32(c, NVME_REG_CSTS);
	EXPECT_EQ(NVME_CSTS_RDY, csts & (NVME_CSTS_RDY | NVME_CSTS_CFS));
	/* the interrupt mask is the model's, and reaches the device later */
	nvme_wr32(c, NVME_REG_INTMS, 0x4);
	EXPECT_EQ(intms | 0x4, nvme_rd32(c, NVME_REG_INTMS));

	held = hold(_metadata, &w, before);
	ASSERT_EQ(0, lm_shadow_get(&self->nl, self->bdf, &s));
	EXPECT_LT(0, s.writes);
	EXPECT_LT(0, s.reads);
	EXPECT_EQ(0, s.dmas);

	t0 = vmm_now_us();
	ret = lm_shadow_cmd(&self->nl, VFIO_MIG_CMD_SHADOW_DETACH, self->bdf);
	ASSERT_EQ(0, ret) TH_LOG("hand-back: %s", self->nl.err);
	TH_LOG("handed back in %llu us with %lu commands held",
	       (unsigned long long)(vmm_now_us() - t0), held);
	ASSERT_EQ(0, lm_shadow_get(&self->nl, self->bdf, &s));
	EXPECT_FALSE(s.engaged);
	/* the device's own registers now */
	EXPECT_EQ(intms | 0x4, nvme_rd32(c, NVME_REG_INTMS));
	nvme_wr32(c, NVME_REG_INTMC, 0x4);
	EXPECT_EQ(intms, nvme_rd32(c, NVME_REG_INTMS));

	/* every held command completes once, every block is right */
	finish(_metadata, &w);
	nvme_wl_free(&w);
}

TEST_F_TIMEOUT(nsh, migrate_while_engaged, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	struct vmm_dev *src = &self->vf.d, *dst;
	struct mig_buf buf = {};
	unsigned long held, before;
	struct lm_shadow s;
	struct nvme_wl w;
	char err[320];
	int fd, dfd, ret;

	dst = calloc(1, sizeof(*dst));
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, vmm_bind(self->t.vf[1], TB_DRIVER));
	ASSERT_EQ(0, nvme_vf_trap(self->t.vf[1], err, sizeof(err)))
		TH_LOG("%s", err);
	ASSERT_EQ(0, vmm_open(dst, self->t.vf[1]));
	ASSERT_EQ(0, vmm_dma_map(dst, &self->vf.ram));
	ASSERT_EQ(0, vmm_enable_bus_master(dst));

	workload(_metadata, c, &w, 0x52);
	ASSERT_LE(0, nvme_wl_step(&w)) TH_LOG("%s", w.why);
	before = nvme_wl_inflight(&w);
	engage(_metadata, self);
	held = hold(_metadata, &w, before);

	/* the switchover, with the shadow serving the source */
	ASSERT_EQ(0, mig_set_state(dst, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(dst, VFIO_DEVICE_STATE_RESUMING, &dfd));
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ret = mig_read_stop_copy(fd, &buf);
	close(fd);
	ASSERT_LT(0, ret);
	TH_LOG("%zu bytes of state from the shadow, %lu commands held",
	       buf.len, held);
	ret = mig_write_stream(dfd, buf.data, buf.len, 4096);
	close(dfd);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, mig_set_state(dst, VFIO_DEVICE_STATE_STOP, NULL));
	/* NVMe: the target's device took the state, no shadow serves it */
	ASSERT_EQ(0, lm_shadow_get(&self->nl, self->t.vf[1], &s));
	EXPECT_FALSE(s.engaged);
	ASSERT_EQ(0, mig_set_state(dst, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(dst, VFIO_DEVICE_STATE_RUNNING, NULL));

	/* the held commands run on VF 2, once; the driver goes on there */
	c->dev = dst;
	finish(_metadata, &w);

	nvme_wl_free(&w);
	nvme_ctrl_disable(c);
	c->dev = src;
	mig_buf_free(&buf);
	vmm_dma_unmap(dst, &self->vf.ram);
	vmm_close(dst);
	free(dst);
}

TEST_F_TIMEOUT(nsh, controller_reset_while_engaged, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	struct vmm_dev *src = &self->vf.d;
	unsigned long held;
	struct nvme_wl w;
	uint32_t cc;
	int fd, ret;

	workload(_metadata, c, &w, 0x53);
	engage(_metadata, self);
	held = hold(_metadata, &w, 0);

	/*
	 * The driver resets the controller: the model follows at once, and
	 * the reset clears the interrupt mask; the mask the driver sets
	 * after it is the one the device ends with.
	 */
	cc = nvme_rd32(c, NVME_REG_CC);
	nvme_wr32(c, NVME_REG_INTMS, 0x4);
	nvme_wr32(c, NVME_REG_CC, cc & ~NVME_CC_EN);
	EXPECT_EQ(0, nvme_rd32(c, NVME_REG_CSTS) & NVME_CSTS_RDY);
	EXPECT_EQ(0, nvme_rd32(c, NVME_REG_INTMS));
	nvme_wr32(c, NVME_REG_INTMS, 0x2);
	nvme_wr32(c, NVME_REG_CC, cc);
	EXPECT_EQ(NVME_CSTS_RDY, nvme_rd32(c, NVME_REG_CSTS) & NVME_CSTS_RDY);

	/* no record describes it now: the migration fails, the source runs */
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_STOP, NULL));
	fd = -1;
	EXPECT_EQ(-EBUSY, mig_set_state(src, VFIO_DEVICE_STATE_STOP_COPY, &fd))
		TH_LOG("the state of a reconfigured controller was taken");
	if (fd >= 0)
		close(fd);
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	ASSERT_EQ(0, mig_set_state(src, VFIO_DEVICE_STATE_RUNNING, NULL));

	/*
	 * The device takes the reset and the enable; what was held before
	 * the reset never runs (its queues went with it).
	 */
	ret = lm_shadow_cmd(&self->nl, VFIO_MIG_CMD_SHADOW_DETACH, self->bdf);
	ASSERT_EQ(0, ret) TH_LOG("hand-back: %s", self->nl.err);
	EXPECT_EQ(NVME_CSTS_RDY, nvme_rd32(c, NVME_REG_CSTS) &
		  (NVME_CSTS_RDY | NVME_CSTS_CFS));
	EXPECT_EQ(cc, nvme_rd32(c, NVME_REG_CC));
	EXPECT_EQ(0x2, nvme_rd32(c, NVME_REG_INTMS));
	never_ran(_metadata, self, &w, held, 0x54);
}

TEST_F_TIMEOUT(nsh, device_reset_while_engaged, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	unsigned long held;
	struct nvme_wl w;
	int ret;

	workload(_metadata, c, &w, 0x55);
	engage(_metadata, self);
	held = hold(_metadata, &w, 0);
	ASSERT_EQ(0, vmm_reset(&self->vf.d));
	/* the model was reset with the device */
	EXPECT_EQ(0, nvme_rd32(c, NVME_REG_CC));
	EXPECT_EQ(0, nvme_rd32(c, NVME_REG_CSTS) & NVME_CSTS_RDY);
	ret = lm_shadow_cmd(&self->nl, VFIO_MIG_CMD_SHADOW_DETACH, self->bdf);
	ASSERT_EQ(0, ret) TH_LOG("hand-back: %s", self->nl.err);
	EXPECT_EQ(0, nvme_rd32(c, NVME_REG_CSTS) & NVME_CSTS_RDY);
	never_ran(_metadata, self, &w, held, 0x56);
}

/*
 * A reset the PCI core makes outside VFIO_DEVICE_RESET (sysfs here; an FLR
 * through config space or a hot reset alike): the model is reset before
 * the guest's next access, so what the guest writes after the reset (its
 * driver bringing the controller up again) reaches the device at the
 * hand-back.
 */
TEST_F_TIMEOUT(nsh, pci_reset_while_engaged, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	uint32_t cc, aqa, asq[2], acq[2];
	unsigned long held;
	struct nvme_wl w;
	char path[128];
	int ret;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/reset",
		 self->bdf);
	if (access(path, W_OK))
		SKIP(return, "%s: no reset method", self->bdf);
	workload(_metadata, c, &w, 0x59);
	engage(_metadata, self);
	held = hold(_metadata, &w, 0);
	cc = nvme_rd32(c, NVME_REG_CC);
	aqa = nvme_rd32(c, NVME_REG_AQA);
	asq[0] = nvme_rd32(c, NVME_REG_ASQ);
	asq[1] = nvme_rd32(c, NVME_REG_ASQ + 4);
	acq[0] = nvme_rd32(c, NVME_REG_ACQ);
	acq[1] = nvme_rd32(c, NVME_REG_ACQ + 4);
	ASSERT_EQ(0, vmm_sysfs_write(path, "1"));
	/* the model follows the device */
	EXPECT_EQ(0, nvme_rd32(c, NVME_REG_CC));
	EXPECT_EQ(0, nvme_rd32(c, NVME_REG_AQA));
	/* the driver brings the controller up again, through the shadow */
	nvme_wr32(c, NVME_REG_AQA, aqa);
	nvme_wr32(c, NVME_REG_ASQ, asq[0]);
	nvme_wr32(c, NVME_REG_ASQ + 4, asq[1]);
	nvme_wr32(c, NVME_REG_ACQ, acq[0]);
	nvme_wr32(c, NVME_REG_ACQ + 4, acq[1]);
	nvme_wr32(c, NVME_REG_CC, cc);
	EXPECT_EQ(NVME_CSTS_RDY, nvme_rd32(c, NVME_REG_CSTS) & NVME_CSTS_RDY);
	usleep(100000);		/* the driver's deferred reset work ran */
	EXPECT_EQ(cc, nvme_rd32(c, NVME_REG_CC))
		TH_LOG("the model forgot what the guest wrote after the reset");
	ret = lm_shadow_cmd(&self->nl, VFIO_MIG_CMD_SHADOW_DETACH, self->bdf);
	ASSERT_EQ(0, ret) TH_LOG("hand-back: %s", self->nl.err);
	/* the device's own registers: as the guest left them */
	EXPECT_EQ(NVME_CSTS_RDY, nvme_rd32(c, NVME_REG_CSTS) &
		  (NVME_CSTS_RDY | NVME_CSTS_CFS));
	EXPECT_EQ(cc, nvme_rd32(c, NVME_REG_CC));
	EXPECT_EQ(aqa, nvme_rd32(c, NVME_REG_AQA));
	never_ran(_metadata, self, &w, held, 0x5a);
}

TEST_F_TIMEOUT(nsh, hostile_writes_while_engaged, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	uint32_t seed = 0x5eed, off, cc;
	struct nvme_wl w;
	uint8_t b[4];
	int i, ret;

	workload(_metadata, c, &w, 0x57);
	engage(_metadata, self);
	hold(_metadata, &w, 0);
	cc = nvme_rd32(c, NVME_REG_CC);
	for (i = 0; i < 600; i++) {
		seed = seed * 1103515245u + 12345u;
		off = NVME_REG_DBS + ((seed >> 8) % 0x1000);
		memcpy(b, &seed, sizeof(b));
		/* 1, 2 or 4 bytes anywhere in the doorbell page */
		ASSERT_EQ(0, vmm_region_write(&self->vf.d, 0,
					      off & ~((1u << (i % 3)) - 1), b,
					      1u << (i % 3)));
		if (i % 20 == 0)
			nvme_wr32(c, NVME_REG_CC, i % 40 ? cc : cc & ~NVME_CC_EN);
	}
	nvme_wr32(c, NVME_REG_CC, cc);
	ret = lm_shadow_cmd(&self->nl, VFIO_MIG_CMD_SHADOW_DETACH, self->bdf);
	ASSERT_EQ(0, ret) TH_LOG("hand-back after hostile writes: %s",
				 self->nl.err);
	nvme_wl_abandon(&w);
	nvme_wl_free(&w);
	restart(_metadata, self, 0x58);
}

TEST_HARNESS_MAIN
