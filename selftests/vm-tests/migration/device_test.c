// SPDX-License-Identifier: GPL-2.0
/*
 * The same migrations for every device class the test bed has, one
 * FIXTURE_VARIANT per profile: edu A to edu B under the edu profile, NVMe
 * VF 1 to VF 2 under the nvme profile. The device is behind the test
 * library's guest (lmvmm.h: a device vCPU running the device's verified
 * workload, a memory vCPU writing RAM pages, the guest's state in its own
 * RAM), so a test says what happens to "the device" and the guest checks
 * its own results:
 *
 *  - migrate_running_guest: the guest runs on A; (PRE_COPY where the
 *    kernel offers it;) its vCPUs pause, A is quiesced and saved, the VMM
 *    copies RAM to B's, B restores, the guest is adopted on B from its
 *    RAM and goes on: the device's state is the guest's, its results and
 *    its data right;
 *  - source_resumes_after_failed_switchover: the same until A's state was
 *    read, then the target is gone: A goes back to RUNNING and the guest
 *    goes on there, everything right;
 *  - target_refuses_other_profile: B under another profile refuses A's
 *    stream, and A's guest goes on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "edu.h"
#include "lmvmm.h"
#include "mig.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(8u << 20)
#define RUN_US		400000
#define PAGE_RATE	200

FIXTURE(dev) {
	struct tb_devs t;
	const char *abdf, *bbdf;
	struct mig_side a, b;
	struct edu ea, eb;		/* edu variant */
	struct lm_guest g;
	bool guest;
	uint64_t flags;
};

FIXTURE_VARIANT(dev) {
	const char *profile;
	bool nvme;			/* the NVMe VFs, else the edus */
};

FIXTURE_VARIANT_ADD(dev, edu) {
	.profile = "edu",
};

FIXTURE_VARIANT_ADD(dev, nvme) {
	.profile = "nvme",
	.nvme = true,
};

static int set_profile(const char *bdf, const char *profile)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio_mig/profile",
		 bdf);
	return vmm_sysfs_write(path, profile);
}

static int set_trap(const char *bdf, const char *mode)
{
	char path[128];

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/trap_mode", bdf);
	return vmm_sysfs_write(path, mode);
}

/* Open @bdf under @profile, its RAM mapped, ready for a guest. */
static int side_up(struct mig_side *s, struct edu *e, const char *bdf,
		   const char *profile, bool nvme)
{
	int ret;

	ret = vmm_bind(bdf, "vfio-mig");
	if (!ret)
		ret = set_profile(bdf, profile);
	if (!ret)
		ret = mig_side_open(s, bdf, "sparse", RAM_IOVA, RAM_SIZE);
	if (ret)
		return ret;
	/* what the guest's command register says, as a VMM restores it */
	return nvme ? vmm_enable_bus_master(&s->d) : edu_probe(e, &s->d, false);
}

FIXTURE_SETUP(dev)
{
	ASSERT_EQ(0, tb_devices(&self->t));
	if (variant->nvme) {
		ASSERT_EQ(TB_NR_VF, self->t.nr_vf);
		self->abdf = self->t.vf[0];
		self->bbdf = self->t.vf[1];
	} else {
		ASSERT_LE(2, self->t.nr_edu);
		self->abdf = self->t.edu[0];
		self->bbdf = self->t.edu[1];
	}
	ASSERT_EQ(0, side_up(&self->a, &self->ea, self->abdf, variant->profile,
			     variant->nvme))
		TH_LOG("%s under %s", self->abdf, variant->profile);
	ASSERT_EQ(0, side_up(&self->b, &self->eb, self->bbdf, variant->profile,
			     variant->nvme))
		TH_LOG("%s under %s", self->bbdf, variant->profile);
	ASSERT_EQ(0, mig_features(&self->a.d, &self->flags));
	ASSERT_TRUE(self->flags & VFIO_MIGRATION_STOP_COPY);
	ASSERT_TRUE(self->flags & VFIO_MIGRATION_P2P);
}

FIXTURE_TEARDOWN(dev)
{
	if (self->guest)
		lm_guest_free(&self->g);
	mig_side_close(&self->b);
	mig_side_close(&self->a);
	/* as the suites after this one expect: own profile, no trapping */
	set_profile(self->abdf, variant->profile);
	set_profile(self->bbdf, variant->profile);
	set_trap(self->abdf, "none");
	set_trap(self->bbdf, "none");
}

/* Boot the guest on A and let it run a while. */
static void boot_on_a(struct __test_metadata *_metadata,
		      FIXTURE_DATA(dev) *self, bool nvme)
{
	uint64_t seed = vmm_now_us() ^ getpid();
	int ret;

	if (nvme)
		ret = lm_guest_boot_nvme(&self->g, &self->a.ram, &self->a.d,
					 seed, PAGE_RATE);
	else
		ret = lm_guest_boot(&self->g, &self->a.ram, &self->ea, seed,
				    PAGE_RATE, false);
	self->guest = true;
	ASSERT_EQ(0, ret) TH_LOG("booting the guest: %s", self->g.why);
	ASSERT_EQ(0, lm_guest_start(&self->g));
	TH_LOG("guest seed %#llx on %s", (unsigned long long)seed,
	       self->abdf);
	usleep(RUN_US);
}

/*
 * Stream A's state while the guest runs (PRE_COPY, where offered), pause
 * the vCPUs, quiesce A and read the rest. The data fd of A is closed; the
 * whole stream is in @buf.
 */
static void save_a(struct __test_metadata *_metadata, FIXTURE_DATA(dev) *self,
		   struct mig_buf *buf, size_t *pre_bytes)
{
	struct mig_buf part = {};
	ssize_t n;
	int fd, i;

	*pre_bytes = 0;
	if (self->flags & VFIO_MIGRATION_PRE_COPY) {
		ASSERT_EQ(0, mig_set_state(&self->a.d,
					   VFIO_DEVICE_STATE_PRE_COPY, &fd));
		for (i = 0; i < 3; i++) {
			usleep(RUN_US / 4);
			part.len = 0;
			n = mig_read_precopy(fd, &part);
			ASSERT_LE(0, n) TH_LOG("PRE_COPY read: %s",
					       strerror(-n));
			*pre_bytes += n;
			ASSERT_EQ(0, mig_buf_append(buf, part.data, part.len));
		}
		mig_buf_free(&part);
		lm_guest_pause(&self->g);
		ASSERT_EQ(0, mig_set_state(&self->a.d,
					   VFIO_DEVICE_STATE_PRE_COPY_P2P,
					   NULL));
		ASSERT_EQ(0, mig_set_state(&self->a.d,
					   VFIO_DEVICE_STATE_STOP_COPY, NULL));
	} else {
		lm_guest_pause(&self->g);
		ASSERT_EQ(0, mig_set_state(&self->a.d,
					   VFIO_DEVICE_STATE_RUNNING_P2P,
					   NULL));
		ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP,
					   NULL));
		ASSERT_EQ(0, mig_set_state(&self->a.d,
					   VFIO_DEVICE_STATE_STOP_COPY, &fd));
	}
	part.len = 0;
	n = mig_read_stop_copy(fd, &part);
	close(fd);
	ASSERT_LT(0, n) TH_LOG("STOP_COPY read: %s", strerror(-n));
	ASSERT_EQ(0, mig_buf_append(buf, part.data, part.len));
	mig_buf_free(&part);
	ASSERT_EQ(0, lm_guest_error(&self->g)) TH_LOG("%s", self->g.why);
}

/* B takes @buf: 0 or the -errno of the refusal. */
static int restore_b(FIXTURE_DATA(dev) *self, const struct mig_buf *buf)
{
	int fd, ret;

	ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RESUMING,
				    &fd);
	if (ret)
		return ret;
	ret = mig_write_stream(fd, buf->data, buf->len, 4096);
	close(fd);
	if (!ret)
		ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL);
	return ret;
}

/* A after a switchover that did not happen: back to RUNNING. */
static void resume_a(struct __test_metadata *_metadata,
		     FIXTURE_DATA(dev) *self)
{
	uint32_t st;

	ASSERT_EQ(0, mig_get_state(&self->a.d, &st));
	if (st != VFIO_DEVICE_STATE_STOP)
		ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP,
					   NULL));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING_P2P,
				   NULL));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
}

/* Run the guest on, then its own checks: device, data, RAM, results. */
static void run_and_check(struct __test_metadata *_metadata,
			  FIXTURE_DATA(dev) *self, const char *where)
{
	uint64_t before = lm_guest_steps(&self->g);

	lm_guest_resume(&self->g);
	usleep(RUN_US);
	lm_guest_pause(&self->g);
	EXPECT_EQ(0, lm_guest_error(&self->g)) TH_LOG("%s", self->g.why);
	EXPECT_LT(before, lm_guest_steps(&self->g))
		TH_LOG("the guest made no device step on %s", where);
	EXPECT_TRUE(lm_guest_check_buffer(&self->g)) TH_LOG("%s", self->g.why);
	EXPECT_TRUE(lm_guest_check_pages(&self->g)) TH_LOG("%s", self->g.why);
	EXPECT_TRUE(lm_guest_check_model(&self->g)) TH_LOG("%s", self->g.why);
	TH_LOG("on %s: %llu device steps (%llu before), %lu results checked, %lu wrong",
	       where, (unsigned long long)lm_guest_steps(&self->g),
	       (unsigned long long)before, lm_guest_checks(&self->g),
	       lm_guest_errors(&self->g));
}

TEST_F_TIMEOUT(dev, migrate_running_guest, 120)
{
	struct mig_buf buf = {};
	struct edu_regs now;
	size_t pre = 0;
	int ret;

	boot_on_a(_metadata, self, variant->nvme);
	save_a(_metadata, self, &buf, &pre);
	TH_LOG("stream: %zu bytes (%zu in PRE_COPY)", buf.len, pre);
	/* the VMM's last RAM copy: the guest's state, every device write */
	memcpy(self->b.ram.host, self->a.ram.host, RAM_SIZE);
	ret = restore_b(self, &buf);
	ASSERT_EQ(0, ret) TH_LOG("B refused A's stream: %s", strerror(-ret));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING_P2P,
				   NULL));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));

	/* A's guest is gone; B's adopts it from its RAM */
	lm_guest_free(&self->g);
	if (variant->nvme)
		ret = lm_guest_adopt_nvme(&self->g, &self->b.ram, &self->b.d,
					  PAGE_RATE);
	else
		ret = lm_guest_adopt(&self->g, &self->b.ram, &self->eb,
				     PAGE_RATE);
	ASSERT_EQ(0, ret) TH_LOG("adopting the guest on B: %s", self->g.why);
	EXPECT_TRUE(lm_guest_check_regs(&self->g, &now))
		TH_LOG("%s", self->g.why);
	ASSERT_EQ(0, lm_guest_start(&self->g));
	lm_guest_pause(&self->g);
	run_and_check(_metadata, self, self->bbdf);
	mig_buf_free(&buf);
}

TEST_F_TIMEOUT(dev, source_resumes_after_failed_switchover, 120)
{
	struct mig_buf buf = {};
	size_t pre = 0;

	boot_on_a(_metadata, self, variant->nvme);
	save_a(_metadata, self, &buf, &pre);
	TH_LOG("%zu bytes of state read; the target is gone", buf.len);
	resume_a(_metadata, self);
	run_and_check(_metadata, self, self->abdf);
	mig_buf_free(&buf);
}

TEST_F_TIMEOUT(dev, target_refuses_other_profile, 120)
{
	struct mig_buf buf = {};
	size_t pre = 0;
	int ret;

	/* a profile changes with the device closed */
	mig_side_close(&self->b);
	ASSERT_EQ(0, side_up(&self->b, &self->eb, self->bbdf, "generic",
			     variant->nvme));
	boot_on_a(_metadata, self, variant->nvme);
	save_a(_metadata, self, &buf, &pre);
	ret = restore_b(self, &buf);
	EXPECT_NE(0, ret) TH_LOG("B under generic took %s's stream",
				 variant->profile);
	TH_LOG("B refused: %s", strerror(-ret));
	resume_a(_metadata, self);
	run_and_check(_metadata, self, self->abdf);
	mig_buf_free(&buf);
}

TEST_HARNESS_MAIN
