// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig binds the test bed's devices through driver_override only, and a
 * VMM sees exactly what vfio-pci gives it: device, region and irq info,
 * capability chains, config space, BAR access and reset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "edu.h"
#include "regsync.h"
#include "testbed.h"

#define CAP_BUF		4096

struct view {
	struct vfio_device_info info;
	unsigned char region[VMM_MAX_REGIONS][CAP_BUF];
	struct vfio_irq_info irq[VMM_MAX_IRQS];
	unsigned char config[256];
	uint32_t bar0_word0;
	int reset_ret;
};

static int take_view(const char *bdf, const char *drv, struct view *v)
{
	struct vmm_dev d;
	unsigned int i;
	int ret;

	memset(v, 0, sizeof(*v));
	ret = vmm_bind(bdf, drv);
	if (ret)
		return ret;
	ret = vmm_open(&d, bdf);
	if (ret)
		return ret;
	v->info = d.info;
	for (i = 0; i < d.info.num_regions && i < VMM_MAX_REGIONS; i++) {
		struct vfio_region_info *r = (void *)v->region[i];

		r->argsz = CAP_BUF;
		r->index = i;
		/* Absent regions (e.g. VGA) fail the same way on both. */
		if (ioctl(d.fd, VFIO_DEVICE_GET_REGION_INFO, r))
			r->flags = 0xdead0000 | errno;
	}
	for (i = 0; i < d.info.num_irqs && i < VMM_MAX_IRQS; i++) {
		v->irq[i].argsz = sizeof(v->irq[i]);
		v->irq[i].index = i;
		ioctl(d.fd, VFIO_DEVICE_GET_IRQ_INFO, &v->irq[i]);
	}
	ret = vmm_region_read(&d, VFIO_PCI_CONFIG_REGION_INDEX, 0, v->config,
			      sizeof(v->config));
	if (!ret)
		v->bar0_word0 = vmm_read32(&d, 0, 0);
	v->reset_ret = vmm_reset(&d);
	vmm_close(&d);
	return ret;
}

TEST(binds_edus_and_vf)
{
	struct tb_devs t;
	char *devs[3];
	int i, n = 0;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(2, t.nr_edu);
	ASSERT_EQ(TB_NR_VF, t.nr_vf);
	devs[n++] = t.edu[0];
	devs[n++] = t.edu[1];
	devs[n++] = t.vf[0];
	for (i = 0; i < n; i++) {
		struct vmm_dev d;
		char drv[64];

		ASSERT_EQ(0, vmm_bind(devs[i], TB_DRIVER))
			TH_LOG("bind %s", devs[i]);
		ASSERT_EQ(0, vmm_driver_of(devs[i], drv, sizeof(drv)));
		ASSERT_STREQ(TB_DRIVER, drv);
		ASSERT_EQ(0, vmm_open(&d, devs[i])) TH_LOG("open %s", devs[i]);
		ASSERT_TRUE(d.info.flags & VFIO_DEVICE_FLAGS_PCI);
		vmm_close(&d);
	}
}

TEST(no_bind_without_override)
{
	char path[256], drv[64];
	struct tb_devs t;
	const char *bdf;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_GE(t.nr_edu, 1);
	bdf = t.edu[0];
	ASSERT_EQ(0, vmm_unbind(bdf));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override",
		 bdf);
	ASSERT_EQ(0, vmm_sysfs_write(path, "\n"));
	/* An explicit bind without driver_override must not match. */
	EXPECT_NE(0, vmm_sysfs_write("/sys/bus/pci/drivers/vfio-mig/bind",
				     bdf));
	/* Nor does a probe: the id table matches override devices only. */
	vmm_sysfs_write("/sys/bus/pci/drivers_probe", bdf);
	ASSERT_EQ(0, vmm_driver_of(bdf, drv, sizeof(drv)));
	EXPECT_STRNE(TB_DRIVER, drv);
	ASSERT_EQ(0, vmm_bind(bdf, TB_DRIVER));
}

static void compare_views(struct __test_metadata *_metadata, const char *bdf)
{
	struct view *pci = calloc(1, sizeof(*pci));
	struct view *mig = calloc(1, sizeof(*mig));
	unsigned int i;

	ASSERT_NE(NULL, pci);
	ASSERT_NE(NULL, mig);
	ASSERT_EQ(0, take_view(bdf, "vfio-pci", pci)) TH_LOG("%s", bdf);
	ASSERT_EQ(0, take_view(bdf, TB_DRIVER, mig)) TH_LOG("%s", bdf);
	EXPECT_EQ(pci->info.flags, mig->info.flags);
	EXPECT_EQ(pci->info.num_regions, mig->info.num_regions);
	EXPECT_EQ(pci->info.num_irqs, mig->info.num_irqs);
	for (i = 0; i < pci->info.num_regions && i < VMM_MAX_REGIONS; i++)
		EXPECT_EQ(0, memcmp(pci->region[i], mig->region[i], CAP_BUF))
			TH_LOG("%s region %u info differs", bdf, i);
	for (i = 0; i < pci->info.num_irqs && i < VMM_MAX_IRQS; i++)
		EXPECT_EQ(0, memcmp(&pci->irq[i], &mig->irq[i],
				    sizeof(pci->irq[i])))
			TH_LOG("%s irq %u info differs", bdf, i);
	EXPECT_EQ(0, memcmp(pci->config, mig->config, sizeof(pci->config)))
		TH_LOG("%s config space differs", bdf);
	EXPECT_EQ(pci->bar0_word0, mig->bar0_word0);
	EXPECT_EQ(pci->reset_ret, mig->reset_ret);
	ASSERT_EQ(0, vmm_bind(bdf, TB_DRIVER));
	free(pci);
	free(mig);
}

TEST(same_view_as_vfio_pci)
{
	struct tb_devs t;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(2, t.nr_edu);
	ASSERT_EQ(TB_NR_VF, t.nr_vf);
	compare_views(_metadata, t.edu[0]);
	compare_views(_metadata, t.edu[1]);
	compare_views(_metadata, t.vf[0]);
}

TEST(bar_access_fd_and_mmap)
{
	struct tb_devs t;
	struct vmm_dev d;
	struct edu fd_path, mm_path;
	uint32_t a, b;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(0, vmm_bind(t.edu[0], TB_DRIVER));
	ASSERT_EQ(0, vmm_open(&d, t.edu[0]));
	ASSERT_TRUE(d.regions[0].flags & VFIO_REGION_INFO_FLAG_MMAP);
	ASSERT_EQ(0, edu_probe(&fd_path, &d, false));
	ASSERT_EQ(0, edu_probe(&mm_path, &d, true));
	EXPECT_EQ(~0x5a5a1234u, edu_liveness(&fd_path, 0x5a5a1234));
	EXPECT_EQ(~0x5a5a1234u, edu_rd(&mm_path, EDU_REG_LIVENESS));
	EXPECT_EQ(~0xc0ffee00u, edu_liveness(&mm_path, 0xc0ffee00));
	EXPECT_EQ(~0xc0ffee00u, edu_rd(&fd_path, EDU_REG_LIVENESS));
	ASSERT_EQ(0, edu_factorial(&fd_path, 10, &a, 5000));
	ASSERT_EQ(0, edu_factorial(&mm_path, 12, &b, 5000));
	EXPECT_EQ(edu_factorial_ref(10), a);
	EXPECT_EQ(edu_factorial_ref(12), b);
	vmm_close(&d);
}

static int set_decode(struct vmm_dev *d, bool on)
{
	/* PCI_COMMAND_MEMORY */
	return on ? vmm_command_update(d, 0x2, 0) : vmm_command_update(d, 0, 0x2);
}

/*
 * A BAR access through the device fd with the VMM's memory decode off,
 * then on again: @off_val/@on_val read at @off; with @wr, a write of
 * @wr's value at @off first. Returns what the access with decode off
 * gave (0 or -errno), or the error of a step around it.
 */
static int access_decode_off(const char *bdf, const char *driver,
			     const char *trap, uint64_t off,
			     const uint32_t *wr, uint32_t *off_val,
			     uint32_t *on_val)
{
	struct vmm_dev d;
	int ret, got;

	ret = vmm_bind(bdf, driver);
	if (!ret && trap)
		ret = rs_set_trap_mode(bdf, trap);
	if (!ret)
		ret = vmm_open(&d, bdf);
	if (ret)
		return ret;
	ret = set_decode(&d, false);
	got = ret;
	if (!ret)
		got = wr ? vmm_region_write(&d, 0, off, wr, 4) :
			   vmm_region_read(&d, 0, off, off_val, 4);
	if (!ret)
		ret = set_decode(&d, true);
	if (!ret && wr)
		ret = vmm_region_write(&d, 0, off, wr, 4);
	if (!ret)
		ret = vmm_region_read(&d, 0, off, on_val, 4);
	vmm_close(&d);
	if (trap)
		rs_set_trap_mode(bdf, "none");
	return ret ? ret : got;
}

/*
 * A trapped BAR access follows the VMM's memory decode as vfio-pci's own
 * does. edu: a write into its DMA engine (the profile's doorbell path,
 * trap mode all) is refused with EIO while decode is off, and reaches the
 * device once it is on. A VF has no memory enable of its own (its BARs
 * follow the PF's): it goes on being read.
 */
TEST(trapped_access_follows_memory_decode)
{
	uint32_t off_pci = 0, on_pci = 0, off_mig = 0, on_mig = 0;
	uint32_t src = 0x1000;
	struct tb_devs t;

	ASSERT_EQ(0, tb_devices(&t));
	EXPECT_EQ(-EIO, access_decode_off(t.edu[0], "vfio-pci", NULL,
					  EDU_REG_DMA_SRC, &src, &off_pci,
					  &on_pci));
	EXPECT_EQ(src, on_pci);
	src = 0x2000;
	EXPECT_EQ(-EIO, access_decode_off(t.edu[0], TB_DRIVER, "all",
					  EDU_REG_DMA_SRC, &src, &off_mig,
					  &on_mig));
	EXPECT_EQ(src, on_mig);

	ASSERT_EQ(0, access_decode_off(t.vf[0], "vfio-pci", NULL, 0, NULL,
				       &off_pci, &on_pci));
	ASSERT_EQ(0, access_decode_off(t.vf[0], TB_DRIVER, "all", 0, NULL,
				       &off_mig, &on_mig));
	EXPECT_EQ(off_pci, off_mig);	/* NVMe CAP, low word */
	EXPECT_EQ(on_pci, on_mig);
	EXPECT_NE(0xffffffffu, on_mig);
	ASSERT_EQ(0, vmm_bind(t.edu[0], TB_DRIVER));
	ASSERT_EQ(0, vmm_bind(t.vf[0], TB_DRIVER));
}

TEST_HARNESS_MAIN
