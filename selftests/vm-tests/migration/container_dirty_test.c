// SPDX-License-Identifier: GPL-2.0
/*
 * The type1 container's dirty log (VFIO_IOMMU_DIRTY_PAGES), what QEMU
 * uses where the kernel offers no VFIO DMA logging (Debian's 6.12): vfio-mig
 * pins the pages of each transfer into guest RAM that the mediated feeder
 * sees (lm_pin.c), which switches the container to reporting those pages
 * only. Checked against what the device was told to write:
 *
 *  - before the device has written anything, every mapped page is
 *    reported (the container's default);
 *  - in trap modes sparse and all, after transfers into RAM (some across a
 *    page boundary) and from RAM, exactly the pages written are reported;
 *    the next report holds at most the last transfer's pages (pinned until
 *    the next start, the P2P quiesce or close);
 *  - in trap mode none the driver sees no transfer: every page, always;
 *  - the VMM unmaps RAM whose pages are pinned (type1 BUGs if they stay
 *    pinned through its retries), also while transfers start on other
 *    RAM of the device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "edu.h"
#include "mig.h"
#include "regsync.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(1u << 20)
#define PAGES		((int)(RAM_SIZE / 4096))
#define WORDS		(PAGES / 64)

FIXTURE(cdirty) {
	struct tb_devs t;
	struct mig_side a;
	struct edu e;
	uint64_t bm[WORDS];
};

FIXTURE_VARIANT(cdirty) {
	const char *trap;
	bool exact;
};

FIXTURE_VARIANT_ADD(cdirty, sparse) {
	.trap = "sparse", .exact = true,
};

FIXTURE_VARIANT_ADD(cdirty, all) {
	.trap = "all", .exact = true,
};

FIXTURE_VARIANT_ADD(cdirty, none) {
	.trap = "none", .exact = false,
};

FIXTURE_SETUP(cdirty)
{
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_LE(1, self->t.nr_edu);
	ASSERT_EQ(0, mig_side_open(&self->a, self->t.edu[0], variant->trap,
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, edu_probe(&self->e, &self->a.d, false));
}

FIXTURE_TEARDOWN(cdirty)
{
	mig_side_close(&self->a);
	rs_set_trap_mode(self->t.edu[0], "none");
}

static int tracking(int container, bool start)
{
	struct vfio_iommu_type1_dirty_bitmap db = {
		.argsz = sizeof(db),
		.flags = start ? VFIO_IOMMU_DIRTY_PAGES_FLAG_START :
				 VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
	};

	return ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &db) ? -errno : 0;
}

/* Read and clear the container's log over the RAM mapping; the count. */
static int report(int container, uint64_t *bm)
{
	struct {
		struct vfio_iommu_type1_dirty_bitmap db;
		struct vfio_iommu_type1_dirty_bitmap_get g;
	} r = {
		.db.argsz = sizeof(r),
		.db.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
		.g.iova = RAM_IOVA,
		.g.size = RAM_SIZE,
		.g.bitmap.pgsize = 4096,
		.g.bitmap.size = WORDS * 8,
		.g.bitmap.data = (__u64 *)bm,
	};
	int i, n = 0;

	memset(bm, 0, WORDS * 8);
	if (ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &r))
		return -errno;
	for (i = 0; i < WORDS; i++)
		n += __builtin_popcountll(bm[i]);
	return n;
}

static void set_page(uint64_t *want, uint64_t iova, uint32_t len)
{
	uint64_t p;

	for (p = (iova - RAM_IOVA) / 4096;
	     p <= (iova + len - 1 - RAM_IOVA) / 4096; p++)
		want[p / 64] |= 1ull << (p % 64);
}

TEST_F(cdirty, reports_what_the_device_wrote)
{
	/* into RAM: in one page, across a boundary, at the end of RAM */
	static const struct { uint64_t off; uint32_t len; } to_ram[] = {
		{ 0x3000, 512 }, { 0x10f00, 512 }, { 0x42000, 2048 },
		{ 0x7f800, 1024 }, { RAM_SIZE - 256, 256 },
	};
	uint64_t want[WORDS] = {}, last[WORDS] = {};
	int c = self->a.d.container, n, i;

	ASSERT_EQ(0, tracking(c, true));
	n = report(c, self->bm);
	ASSERT_EQ(PAGES, n) TH_LOG("before any transfer");

	/* from RAM: read by the device, never reported */
	ASSERT_EQ(0, edu_dma(&self->e, false, RAM_IOVA + 0x20000, 0, 1024,
			     false, 3000));
	for (i = 0; i < (int)(sizeof(to_ram) / sizeof(to_ram[0])); i++) {
		ASSERT_EQ(0, edu_dma(&self->e, true, RAM_IOVA + to_ram[i].off,
				     0, to_ram[i].len, false, 3000));
		set_page(want, RAM_IOVA + to_ram[i].off, to_ram[i].len);
	}
	ASSERT_EQ(0, edu_dma(&self->e, false, RAM_IOVA + 0x30000, 0, 1024,
			     false, 3000));
	n = report(c, self->bm);
	if (!variant->exact) {
		EXPECT_EQ(PAGES, n);
	} else {
		for (i = 0; i < WORDS && want[i] == self->bm[i]; i++)
			;
		if (i < WORDS)
			TH_LOG("pages %d..%d: reported %#llx, written %#llx",
			       i * 64, i * 64 + 63,
			       (unsigned long long)self->bm[i],
			       (unsigned long long)want[i]);
		EXPECT_EQ(WORDS, i);
		TH_LOG("%d of %d pages reported, all written by the device", n,
		       PAGES);
	}

	/* nothing new: at most the last transfer's pages, still pinned */
	set_page(last, RAM_IOVA + to_ram[4].off, to_ram[4].len);
	n = report(c, self->bm);
	if (!variant->exact) {
		EXPECT_EQ(PAGES, n);
	} else {
		for (i = 0; i < WORDS && !(self->bm[i] & ~last[i]); i++)
			;
		EXPECT_EQ(WORDS, i);
	}
	ASSERT_EQ(0, tracking(c, false));
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000ull + t.tv_nsec / 1000000;
}

struct churn {
	struct vmm_dev *d;
	volatile bool stop;
	int rounds, err;
};

/* Map and unmap a second RAM region, over and over. */
static void *churn_fn(void *arg)
{
	struct churn *c = arg;
	struct vmm_ram r = { .memfd = -1 };

	if (vmm_ram_alloc(&r, 64 << 10, RAM_IOVA + 2 * RAM_SIZE)) {
		c->err = -ENOMEM;
		return NULL;
	}
	while (!c->stop && !c->err) {
		c->err = vmm_dma_map(c->d, &r);
		if (!c->err)
			c->err = vmm_dma_unmap(c->d, &r);
		c->rounds++;
	}
	vmm_ram_release(c->d, &r);
	return NULL;
}

TEST_F(cdirty, unmap_releases_pinned_pages)
{
	struct churn ch = { .d = &self->a.d };
	uint64_t t0;
	pthread_t th;
	int i;

	/* transfers into RAM while another region comes and goes */
	ASSERT_EQ(0, pthread_create(&th, NULL, churn_fn, &ch));
	for (i = 0; i < 6; i++)
		EXPECT_EQ(0, edu_dma(&self->e, true,
				     RAM_IOVA + 0x5000 + i * 0x1800, 0, 512,
				     false, 3000));
	ch.stop = true;
	pthread_join(th, NULL);
	EXPECT_EQ(0, ch.err) TH_LOG("map/unmap: %s", strerror(-ch.err));
	EXPECT_LT(0, ch.rounds);
	TH_LOG("%d map/unmap rounds during the transfers", ch.rounds);

	/* the last transfer's page is still pinned: the unmap takes it */
	t0 = now_ms();
	ASSERT_EQ(0, vmm_dma_unmap(&self->a.d, &self->a.ram));
	EXPECT_GT(1000u, now_ms() - t0);
	/* mapped again, the device writes there again */
	ASSERT_EQ(0, vmm_dma_map(&self->a.d, &self->a.ram));
	memset(mig_host(&self->a, RAM_IOVA + 0x20000), 0x5c, 256);
	ASSERT_EQ(0, edu_dma(&self->e, false, RAM_IOVA + 0x20000, 0, 256,
			     false, 3000));
	memset(mig_host(&self->a, RAM_IOVA + 0x9000), 0xaa, 256);
	ASSERT_EQ(0, edu_dma(&self->e, true, RAM_IOVA + 0x9000, 0, 256, false,
			     3000));
	for (i = 0; i < 256; i++)
		if (*mig_host(&self->a, RAM_IOVA + 0x9000 + i) != 0x5c)
			break;
	EXPECT_EQ(256, i);
}

#define RESET_DELAY	"/sys/kernel/debug/vfio-mig/reset_delay_ms"

/*
 * A reset whose work runs late (debugfs reset_delay_ms; "reset-done": the
 * PCI core's calls around a reset), after a transfer the guest started
 * since: the transfer's page stays pinned, so the container reports it
 * until the transfer is seen to end, in the report after the work too.
 * Before, the reset's work unpinned it, and that report lost it.
 */
TEST_F(cdirty, late_reset_work_keeps_a_new_transfer_pinned)
{
	uint64_t iova = RAM_IOVA + 0x9000, want[WORDS] = {};
	int c = self->a.d.container, ret, i;

	if (!variant->exact)
		SKIP(return, "trap mode none: every page, always");
	set_page(want, iova, 256);
	ASSERT_EQ(0, tracking(c, true));
	ASSERT_LT(0, report(c, self->bm));
	ASSERT_EQ(0, vmm_sysfs_write(RESET_DELAY, "50"));
	ret = rs_ctl(self->t.edu[0], "reset-done");
	/* the delay is taken when the work is queued: back to none now */
	ASSERT_EQ(0, vmm_sysfs_write(RESET_DELAY, "0"));
	ASSERT_EQ(0, ret) TH_LOG("reset-done: %s", strerror(-ret));
	ASSERT_EQ(0, edu_dma_start(&self->e, true, iova, 0, 256, false));
	usleep(400 * 1000);	/* the reset's work (at 50 ms) ran */
	ASSERT_LT(0, report(c, self->bm));
	ASSERT_EQ(0, edu_dma_wait(&self->e, 3000));
	ASSERT_LT(0, report(c, self->bm))
		TH_LOG("the transfer's page was unpinned before it ended");
	for (i = 0; i < WORDS && !(want[i] & ~self->bm[i]); i++)
		;
	EXPECT_EQ(WORDS, i);
	ASSERT_EQ(0, tracking(c, false));
}

#define UNMAP_GRACE	"/sys/kernel/debug/vfio-mig/unmap_grace_ms"

/*
 * A start into RAM the VMM just unmapped (and mapped again) waits out the
 * unmap's grace before it pins there (type1 retries an unmap while pages
 * of it are pinned, and BUGs after ten tries), also when a start into
 * other RAM came between. Before, that other start ended the grace, and
 * the start into the unmapped range pinned at once. The grace is
 * stretched to 1.5 s here, so that the wait shows.
 */
TEST_F(cdirty, unmap_grace_outlasts_other_starts)
{
	struct vmm_ram r2 = { .memfd = -1 };
	uint64_t t0, ms;
	int ret;

	if (!variant->exact)
		SKIP(return, "trap mode none: nothing is pinned");
	ASSERT_EQ(0, vmm_ram_alloc(&r2, 64 << 10, RAM_IOVA + 2 * RAM_SIZE));
	ASSERT_EQ(0, vmm_dma_map(&self->a.d, &r2));
	/* a page of RAM pinned: its unmap takes it, and starts a grace */
	ASSERT_EQ(0, edu_dma(&self->e, true, RAM_IOVA + 0x9000, 0, 256, false,
			     3000));
	ASSERT_EQ(0, vmm_sysfs_write(UNMAP_GRACE, "1500"));
	ret = vmm_dma_unmap(&self->a.d, &self->a.ram);
	/* the grace is taken at the unmap: back to the default now */
	ASSERT_EQ(0, vmm_sysfs_write(UNMAP_GRACE, "20"));
	ASSERT_EQ(0, ret) TH_LOG("unmap: %s", strerror(-ret));
	t0 = now_ms();
	ASSERT_EQ(0, vmm_dma_map(&self->a.d, &self->a.ram));
	ASSERT_EQ(0, edu_dma(&self->e, true, RAM_IOVA + 2 * RAM_SIZE, 0, 256,
			     false, 3000));
	ASSERT_EQ(0, edu_dma(&self->e, true, RAM_IOVA + 0x9000, 0, 256, false,
			     5000));
	ms = now_ms() - t0;
	EXPECT_LE(1200u, ms)
		TH_LOG("the start into the unmapped RAM ran after %llu ms, in its grace",
		       (unsigned long long)ms);
	vmm_ram_release(&self->a.d, &r2);
}

TEST_HARNESS_MAIN
