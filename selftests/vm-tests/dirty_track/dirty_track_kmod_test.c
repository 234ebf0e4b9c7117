// SPDX-License-Identifier: GPL-2.0
/*
 * In-VM kselftest for dirty_track.ko: loads the self-test module
 * dirty_track_test.ko (mm/dirty-track/dirty_track_test.c, built with
 * VFIO_MIG_TESTS=y and installed in /lib/modules/$(uname -r)/extra/),
 * whose init runs the cases against the real dirty_track.ko (basic and edge
 * cases, marking from a hard-IRQ hrtimer and with IRQs off, kthreads marking
 * while reports run, destroy racing markers under RCU, feeders) and fails
 * with -EINVAL if any check fails.  The guest init loads dirty_track.ko
 * before the tests run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include "kselftest_harness.h"
#include "modparam.h"

#define TEST_MOD	"dirty_track_test"

static int mod_path(char *buf, size_t len, const char *name)
{
	struct utsname u;

	if (uname(&u))
		return -1;
	snprintf(buf, len, "/lib/modules/%s/extra/%s.ko", u.release, name);
	return 0;
}

static int dirty_track_loaded(void)
{
	return access("/sys/module/dirty_track", F_OK) == 0;
}

TEST(dirty_track_module_loaded)
{
	/* The guest init loads it; its absence is a failure, not a skip. */
	ASSERT_TRUE(dirty_track_loaded()) TH_LOG("dirty_track.ko is not loaded");
	ASSERT_EQ(0, access("/sys/module/dirty_track/version", R_OK));
}

/*
 * Load the self-test module with @params (its init runs the checks and
 * fails with -EINVAL if one fails), then unload it.
 */
static void run_selftest_module(struct __test_metadata *_metadata,
				const char *params)
{
	char path[512];
	int fd, ret;

	/* The guest init loads it; its absence is a failure, not a skip. */
	ASSERT_TRUE(dirty_track_loaded()) TH_LOG("dirty_track.ko is not loaded");
	ASSERT_EQ(0, mod_path(path, sizeof(path), TEST_MOD));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", path, strerror(errno));
	/* a leftover instance from an earlier run would make this -EEXIST */
	syscall(__NR_delete_module, TEST_MOD, O_NONBLOCK);
	ret = syscall(__NR_finit_module, fd, params, 0);
	close(fd);
	if (ret)
		TH_LOG("finit_module: %s (see dmesg for the failing check)",
		       strerror(errno));
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, access("/sys/module/" TEST_MOD, F_OK));
	ASSERT_EQ(0, syscall(__NR_delete_module, TEST_MOD, O_NONBLOCK));
}

TEST(selftest_module_passes)
{
	run_selftest_module(_metadata, "");
}

TEST(selftest_module_reloads)
{
	char path[512];
	int fd, i;

	/* The guest init loads it; its absence is a failure, not a skip. */
	ASSERT_TRUE(dirty_track_loaded()) TH_LOG("dirty_track.ko is not loaded");
	ASSERT_EQ(0, mod_path(path, sizeof(path), TEST_MOD));
	for (i = 0; i < 2; i++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		ASSERT_LE(0, fd) TH_LOG("%s: %s", path, strerror(errno));
		ASSERT_EQ(0, syscall(__NR_finit_module, fd, "", 0));
		close(fd);
		ASSERT_EQ(0, syscall(__NR_delete_module, TEST_MOD, O_NONBLOCK));
	}
}

#define MAX_LOG_MB "/sys/module/dirty_track/parameters/max_log_mb"

/* dirty_track's max_log_mb, put back after the test whatever happened. */
MODPARAM_FIXTURE(cap, MAX_LOG_MB);

/*
 * The admin's cap: with max_log_mb=2 the self-test module's cap case checks
 * that a log that could pass 2 MiB with every page dirty is refused
 * (ENOSPC) and one that fits stays under it with every page dirty.
 */
TEST_F(cap, max_log_mb_caps_a_log)
{
	ASSERT_EQ(0, modparam_write(MAX_LOG_MB, "2"))
		TH_LOG("max_log_mb: %s", strerror(errno));
	run_selftest_module(_metadata, "cap_mb=2");
}

TEST_HARNESS_MAIN
