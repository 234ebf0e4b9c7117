// SPDX-License-Identifier: GPL-2.0
/*
 * Module lifetime: load/unload cycles with no device open, and unloading or
 * unbinding while a VMM holds the device fd is refused or waits safely for
 * the VMM, leaving no reference behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "edu.h"
#include "testbed.h"

/* Dependency order: each depends only on the ones before it. */
static const char * const mods[] = { "dirty_track", "vfio_mig",
				     "sriov_shadow" };
#define NR_MODS (sizeof(mods) / sizeof(mods[0]))

static int unload_all(void)
{
	int i, ret;

	for (i = NR_MODS - 1; i >= 0; i--) {
		ret = tb_module_unload(mods[i]);
		if (ret && ret != -ENOENT)
			return ret;
	}
	return 0;
}

static int load_all(void)
{
	unsigned int i;
	int ret;

	for (i = 0; i < NR_MODS; i++) {
		ret = tb_module_load(mods[i]);
		if (ret && ret != -EEXIST)
			return ret;
	}
	return 0;
}

/* vfio_mig's references but sriov_shadow's (which uses its symbols). */
static int vmm_refs(void)
{
	return tb_module_refcnt("vfio_mig") - tb_module_loaded("sriov_shadow");
}

TEST(load_unload_20_cycles)
{
	struct tb_devs t;
	char drv[64];
	int cycle, i;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(2, t.nr_edu);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, vmm_bind(t.edu[i], TB_DRIVER));
	for (cycle = 0; cycle < 20; cycle++) {
		ASSERT_EQ(0, unload_all()) TH_LOG("cycle %d", cycle);
		for (i = 0; i < (int)NR_MODS; i++)
			ASSERT_FALSE(tb_module_loaded(mods[i]));
		/* Removal unbinds; driver_override stays for the next load. */
		ASSERT_EQ(0, vmm_driver_of(t.edu[0], drv, sizeof(drv)));
		ASSERT_STREQ("", drv);
		ASSERT_EQ(0, load_all()) TH_LOG("cycle %d", cycle);
		for (i = 0; i < 2; i++) {
			ASSERT_EQ(0, vmm_driver_of(t.edu[i], drv, sizeof(drv)));
			ASSERT_STREQ(TB_DRIVER, drv);
		}
	}
	ASSERT_EQ(0, vmm_refs());
}

TEST(unload_refused_while_open)
{
	struct tb_devs t;
	struct vmm_dev d;
	struct edu e;
	int ret;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(0, vmm_bind(t.edu[0], TB_DRIVER));
	ASSERT_EQ(0, vmm_refs());
	ASSERT_EQ(0, vmm_open(&d, t.edu[0]));
	EXPECT_GT(vmm_refs(), 0);
	ret = tb_module_unload("vfio_mig");
	EXPECT_TRUE(ret == -EWOULDBLOCK || ret == -EBUSY) TH_LOG("ret %d", ret);
	ASSERT_TRUE(tb_module_loaded("vfio_mig"));
	ASSERT_EQ(0, edu_probe(&e, &d, false));
	EXPECT_EQ(~1u, edu_liveness(&e, 1));
	vmm_close(&d);
	EXPECT_EQ(0, vmm_refs());
}

TEST(unbind_while_open_waits_for_vmm)
{
	struct tb_devs t;
	struct vmm_dev d;
	struct edu e;
	char drv[64];
	int status, waited;
	pid_t pid;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(0, vmm_bind(t.edu[0], TB_DRIVER));
	ASSERT_EQ(0, vmm_open(&d, t.edu[0]));
	ASSERT_EQ(0, edu_probe(&e, &d, false));

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* Drop the inherited fds: only the parent is the VMM. */
		close(d.fd);
		close(d.group);
		close(d.container);
		_exit(vmm_sysfs_write("/sys/bus/pci/drivers/vfio-mig/unbind",
				      t.edu[0]) ? 1 : 0);
	}

	/* The unbind waits for the VMM; the device keeps working meanwhile. */
	sleep(1);
	ASSERT_EQ(0, waitpid(pid, &status, WNOHANG));
	EXPECT_EQ(~7u, edu_liveness(&e, 7));
	vmm_close(&d);

	for (waited = 0; waited < 200; waited++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(50000);
	}
	if (waited == 200) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	ASSERT_LT(waited, 200) TH_LOG("unbind still blocked after close");
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, vmm_driver_of(t.edu[0], drv, sizeof(drv)));
	EXPECT_STREQ("", drv);
	EXPECT_EQ(0, vmm_refs());

	/* And the device is whole afterwards. */
	ASSERT_EQ(0, vmm_bind(t.edu[0], TB_DRIVER));
	ASSERT_EQ(0, vmm_open(&d, t.edu[0]));
	ASSERT_EQ(0, edu_probe(&e, &d, false));
	EXPECT_EQ(~9u, edu_liveness(&e, 9));
	vmm_close(&d);
}

TEST(rebind_after_unload_while_fd_closed_race)
{
	struct tb_devs t;
	struct vmm_dev d;
	struct edu e;
	int i;

	/* Open, close and unload back to back: no reference may linger. */
	ASSERT_EQ(0, tb_devices(&t));
	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, vmm_bind(t.edu[1], TB_DRIVER));
		ASSERT_EQ(0, vmm_open(&d, t.edu[1]));
		ASSERT_EQ(0, edu_probe(&e, &d, true));
		EXPECT_EQ(~(unsigned int)i, edu_liveness(&e, i));
		vmm_close(&d);
		ASSERT_EQ(0, unload_all());
		ASSERT_EQ(0, load_all());
	}
}

TEST_HARNESS_MAIN
