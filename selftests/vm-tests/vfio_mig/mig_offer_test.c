// SPDX-License-Identifier: GPL-2.0
/*
 * VFIO migration is offered only where the profile can quiesce the
 * device's DMA (Documentation/migration.rst, "Which devices migrate"):
 *
 *  - edu_profile_offers: edu with its profile has STOP_COPY and P2P;
 *  - generic_profile_withdraws: the same edu given the generic profile
 *    has no STOP_COPY (nor P2P), refuses every state but RUNNING, and
 *    says why in sysfs and debugfs; back to edu, it offers it again;
 *  - trap_none_withdraws: edu with trap mode none has no migration (the
 *    profile would see no doorbell), and says why;
 *  - vf_has_no_migration: the NVMe VF, generic from its bind, has no
 *    migration feature at all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "mig.h"
#include "regsync.h"
#include "testbed.h"

/* /sys/bus/pci/devices/BDF/vfio_mig/migration, newline stripped */
static int offer_of(const char *bdf, char *buf, size_t len)
{
	char path[256];
	int ret;

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/migration", bdf);
	ret = vmm_sysfs_read(path, buf, len);
	if (!ret)
		buf[strcspn(buf, "\n")] = 0;
	return ret;
}

/* The "migration:" line of the device's debugfs counters. */
static int debugfs_offer(const char *bdf, char *buf, size_t len)
{
	char path[256], line[256];
	FILE *f;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), "/sys/kernel/debug/vfio-mig/%s/counters",
		 bdf);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "migration: ", 11)) {
			snprintf(buf, len, "%s", line + 11);
			buf[strcspn(buf, "\n")] = 0;
			ret = 0;
		}
	fclose(f);
	return ret;
}

FIXTURE(offer) {
	struct tb_devs t;
	struct rs_side s;
	struct vmm_dev vf;
	bool vf_open;
};

FIXTURE_SETUP(offer)
{
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(2, self->t.nr_edu);
}

FIXTURE_TEARDOWN(offer)
{
	rs_side_close(&self->s);
	if (self->vf_open)
		vmm_close(&self->vf);
}

TEST_F(offer, edu_profile_offers)
{
	uint64_t flags = 0;
	char why[256];
	int ret;

	ASSERT_EQ(0, rs_side_open(&self->s, self->t.edu[0], "all", "edu",
				  false));
	ret = mig_features(&self->s.d, &flags);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION: %s",
				 strerror(-ret));
	EXPECT_TRUE(flags & VFIO_MIGRATION_STOP_COPY);
	EXPECT_TRUE(flags & VFIO_MIGRATION_P2P);
	ASSERT_EQ(0, offer_of(self->t.edu[0], why, sizeof(why)));
	EXPECT_STREQ("offered", why);
	EXPECT_EQ(0, mig_set_state(&self->s.d, VFIO_DEVICE_STATE_STOP, NULL));
	EXPECT_EQ(0, mig_set_state(&self->s.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
}

TEST_F(offer, generic_profile_withdraws)
{
	uint64_t flags = 0;
	uint32_t st = ~0u;
	char why[256];
	int ret;

	ASSERT_EQ(0, rs_side_open(&self->s, self->t.edu[0], "all", "generic",
				  false));
	ret = mig_features(&self->s.d, &flags);
	EXPECT_FALSE(!ret && (flags & VFIO_MIGRATION_STOP_COPY))
		TH_LOG("generic profile offers STOP_COPY (flags %#llx)",
		       (unsigned long long)flags);
	EXPECT_FALSE(!ret && (flags & VFIO_MIGRATION_P2P));
	ret = mig_set_state(&self->s.d, VFIO_DEVICE_STATE_STOP, NULL);
	EXPECT_NE(0, ret) TH_LOG("generic profile entered STOP");
	EXPECT_EQ(0, mig_get_state(&self->s.d, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, st);
	ASSERT_EQ(0, offer_of(self->t.edu[0], why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "quiesce")) TH_LOG("sysfs: %s", why);
	ASSERT_EQ(0, debugfs_offer(self->t.edu[0], why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "quiesce")) TH_LOG("debugfs: %s", why);

	/* the edu profile again: offered at the next open */
	rs_side_close(&self->s);
	ASSERT_EQ(0, rs_side_open(&self->s, self->t.edu[0], "all", "edu",
				  false));
	ASSERT_EQ(0, mig_features(&self->s.d, &flags));
	EXPECT_TRUE(flags & VFIO_MIGRATION_STOP_COPY);
	EXPECT_TRUE(flags & VFIO_MIGRATION_P2P);
}

/*
 * edu's profile with trap mode none: the profile never sees a doorbell, so
 * nothing could hold a DMA start in the P2P states. No migration, and
 * sysfs and debugfs say why; with a trap mode, offered again.
 */
TEST_F(offer, trap_none_withdraws)
{
	uint64_t flags = 0;
	char why[256];
	int ret;

	ASSERT_EQ(0, rs_side_open(&self->s, self->t.edu[0], "none", "edu",
				  false));
	ret = mig_features(&self->s.d, &flags);
	EXPECT_FALSE(!ret && (flags & VFIO_MIGRATION_STOP_COPY))
		TH_LOG("trap mode none offers STOP_COPY (flags %#llx)",
		       (unsigned long long)flags);
	EXPECT_NE(0, mig_set_state(&self->s.d, VFIO_DEVICE_STATE_RUNNING_P2P,
				   NULL));
	ASSERT_EQ(0, offer_of(self->t.edu[0], why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "trap mode none")) TH_LOG("sysfs: %s", why);
	ASSERT_EQ(0, debugfs_offer(self->t.edu[0], why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "trap mode none"))
		TH_LOG("debugfs: %s", why);

	rs_side_close(&self->s);
	ASSERT_EQ(0, rs_side_open(&self->s, self->t.edu[0], "sparse", "edu",
				  false));
	ASSERT_EQ(0, mig_features(&self->s.d, &flags));
	EXPECT_TRUE(flags & VFIO_MIGRATION_STOP_COPY);
	ASSERT_EQ(0, offer_of(self->t.edu[0], why, sizeof(why)));
	EXPECT_STREQ("offered", why);
}

/*
 * The NVMe VF: its own profile (nvme) offers migration; under the generic
 * profile (set by the admin) it offers none, and says why.
 */
TEST_F(offer, vf_migration_by_profile)
{
	uint64_t flags = 0;
	char why[256], path[128], trap[128];
	int ret;

	if (!self->t.nr_vf)
		SKIP(return, "no NVMe VF in this test bed");
	ASSERT_EQ(0, vmm_bind(self->t.vf[0], TB_DRIVER));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio_mig/profile",
		 self->t.vf[0]);
	ASSERT_EQ(0, vmm_sysfs_write(path, "nvme"));
	snprintf(trap, sizeof(trap),
		 "/sys/bus/pci/devices/%s/vfio_mig/trap_mode", self->t.vf[0]);
	ASSERT_EQ(0, vmm_sysfs_write(trap, "sparse"));
	ASSERT_EQ(0, vmm_open(&self->vf, self->t.vf[0]));
	self->vf_open = true;
	ASSERT_EQ(0, mig_features(&self->vf, &flags));
	EXPECT_TRUE(flags & VFIO_MIGRATION_STOP_COPY);
	EXPECT_TRUE(flags & VFIO_MIGRATION_P2P);
	vmm_close(&self->vf);
	self->vf_open = false;

	ASSERT_EQ(0, vmm_sysfs_write(path, "generic"));
	ASSERT_EQ(0, vmm_open(&self->vf, self->t.vf[0]));
	self->vf_open = true;
	/* bound under nvme, the feature stays: it offers nothing now */
	flags = 0;
	ret = mig_features(&self->vf, &flags);
	EXPECT_FALSE(!ret && (flags & (VFIO_MIGRATION_STOP_COPY |
				       VFIO_MIGRATION_P2P)))
		TH_LOG("VF migration flags %#llx", (unsigned long long)flags);
	ASSERT_EQ(0, offer_of(self->t.vf[0], why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "quiesce")) TH_LOG("sysfs: %s", why);
	vmm_close(&self->vf);
	self->vf_open = false;
	EXPECT_EQ(0, vmm_sysfs_write(path, "nvme"));
	EXPECT_EQ(0, vmm_sysfs_write(trap, "none"));
}

TEST_HARNESS_MAIN
