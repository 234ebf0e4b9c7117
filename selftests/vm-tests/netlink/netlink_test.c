// SPDX-License-Identifier: GPL-2.0
/*
 * The vfio_mig netlink family through migctl, against the test bed's real
 * devices: JSON checked against sysfs and device state, settings refused
 * while open, the register log, the dirty log, events, and unprivileged
 * callers (refused everything, reads and multicast groups included).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vfio_mig.h>

#include "kselftest_harness.h"
#include "modparam.h"
#include "cmd.h"
#include "edu.h"
#include "genl.h"
#include "mig.h"
#include "testbed.h"

#define MIGCTL		"migctl"
#define NOBODY		65534

static char *devs[3];

static int setup(struct __test_metadata *_metadata, struct tb_devs *t)
{
	int i;

	ASSERT_EQ(0, tb_devices(t));
	ASSERT_EQ(2, t->nr_edu);
	ASSERT_EQ(TB_NR_VF, t->nr_vf);
	devs[0] = t->edu[0];
	devs[1] = t->edu[1];
	devs[2] = t->vf[0];
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, vmm_bind(devs[i], TB_DRIVER));
	return 0;
}

static void sysfs_hex(const char *bdf, const char *attr, char *out)
{
	char path[256], buf[32];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	buf[0] = 0;
	vmm_sysfs_read(path, buf, sizeof(buf));
	/* sysfs says 0x1234; migctl says 1234 */
	memcpy(out, buf[0] == '0' && buf[1] == 'x' ? buf + 2 : buf, 4);
	out[4] = 0;
}

static void dev_attr(const char *bdf, const char *attr, char *out, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio_mig/%s",
		 bdf, attr);
	out[0] = 0;
	vmm_sysfs_read(path, out, len);
}

TEST(dev_show_matches_sysfs)
{
	static struct cmd_result r;
	char obj[4096], v[64], want[64];
	struct tb_devs t;
	uint64_t n;
	bool b;
	int i;

	setup(_metadata, &t);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dev", "show"));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, json_object_with(r.out, "dev", devs[i], obj,
					      sizeof(obj))) TH_LOG("%s", devs[i]);
		static const char *const ids[][2] = {
			{ "vendor", "vendor" }, { "device", "device" },
			{ "subsystem_vendor", "subsystem_vendor" },
			{ "subsystem_device", "subsystem_device" },
		};
		for (unsigned int k = 0; k < 4; k++) {
			ASSERT_EQ(0, json_get_str(obj, ids[k][0], v, sizeof(v)));
			sysfs_hex(devs[i], ids[k][1], want);
			EXPECT_STREQ(want, v) TH_LOG("%s %s", devs[i], ids[k][0]);
		}
		ASSERT_EQ(0, json_get_u64(obj, "iommu_group", &n));
		EXPECT_EQ(vmm_iommu_group(devs[i]), (int)n);
		ASSERT_EQ(0, json_get_str(obj, "profile", v, sizeof(v)));
		dev_attr(devs[i], "profile", want, sizeof(want));
		EXPECT_STREQ(want, v);
		EXPECT_STREQ(i < 2 ? "edu" : "nvme", v);
		ASSERT_EQ(0, json_get_str(obj, "trap_mode", v, sizeof(v)));
		dev_attr(devs[i], "trap_mode", want, sizeof(want));
		EXPECT_STREQ(want, v);
		ASSERT_EQ(0, json_get_bool(obj, "open", &b));
		EXPECT_FALSE(b);
		ASSERT_EQ(0, json_get_u64(obj, "dirty_page_size", &n));
		EXPECT_EQ(4096, n);
	}
	/* One device by address; and one that is not bound. */
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dev", "show", devs[2]));
	EXPECT_EQ(0, r.status);
	EXPECT_EQ(1, json_count(r.out, "dev", devs[2]));
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "show", "0000:00:1f.7"));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "no such device bound to vfio-mig"))
		TH_LOG("%s", r.err);
}

TEST(dev_set_refused_while_open)
{
	static struct cmd_result r;
	char obj[4096], v[32];
	struct tb_devs t;
	struct vmm_dev d;
	bool open;

	setup(_metadata, &t);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "trap", "all"));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	dev_attr(devs[0], "trap_mode", v, sizeof(v));
	EXPECT_STREQ("all", v);

	ASSERT_EQ(0, vmm_open(&d, devs[0]));
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dev", "show", devs[0]));
	ASSERT_EQ(0, json_object_with(r.out, "dev", devs[0], obj, sizeof(obj)));
	ASSERT_EQ(0, json_get_bool(obj, "open", &open));
	EXPECT_TRUE(open);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "trap", "none"));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "Device or resource busy")) TH_LOG("%s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "open")) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "dirty-page-size",
			 "8192"));
	EXPECT_EQ(1, r.status);
	vmm_close(&d);

	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "trap", "none",
			 "dirty-page-size", "8192"));
	EXPECT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dev", "show", devs[0]));
	ASSERT_EQ(0, json_object_with(r.out, "dev", devs[0], obj, sizeof(obj)));
	ASSERT_EQ(0, json_get_str(obj, "trap_mode", v, sizeof(v)));
	EXPECT_STREQ("none", v);
	/* Bad values: extack names the cause; nothing changes. */
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "profile", "nope"));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "unknown profile")) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "dirty-page-size",
			 "5000"));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "power of two")) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "dirty-page-size",
			 "4096"));
	EXPECT_EQ(0, r.status);
}

static int count(const char *s, const char *pat)
{
	int n = 0;

	while ((s = strstr(s, pat))) {
		n++;
		s += strlen(pat);
	}
	return n;
}

TEST(register_log)
{
	static struct cmd_result r;
	struct tb_devs t;
	struct vmm_dev d;
	struct edu e;
	uint64_t next, n;
	char since[32];
	int i;

	setup(_metadata, &t);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[1], "trap", "all"));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, vmm_open(&d, devs[1]));
	ASSERT_EQ(0, edu_probe(&e, &d, false));
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dev", "show", devs[1]));
	ASSERT_EQ(0, json_get_u64(r.out, "log_next_seq", &next));
	for (i = 0; i < 5; i++)
		edu_liveness(&e, 0x1000 + i);
	snprintf(since, sizeof(since), "%llu", (unsigned long long)next);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "log", devs[1], "--since", since));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	for (i = 0; i < 5; i++) {
		char val[32];

		snprintf(val, sizeof(val), "\"value\":%d", 0x1000 + i);
		EXPECT_NE(NULL, strstr(r.out, val)) TH_LOG("%s", val);
	}
	/* Our five writes: liveness, offset 4, width 4. */
	EXPECT_EQ(5, count(r.out, "\"offset\":4,\"width\":4,"));
	snprintf(since, sizeof(since), "%llu", (unsigned long long)next + 4);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "log", devs[1], "--since", since));
	EXPECT_EQ(NULL, strstr(r.out, "\"value\":4096,"));
	EXPECT_NE(NULL, strstr(r.out, "\"value\":4100"));
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dev", "show", devs[1]));
	ASSERT_EQ(0, json_get_u64(r.out, "trapped_writes", &n));
	EXPECT_GE(n, 5);
	vmm_close(&d);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[1], "trap", "none"));
}

TEST(dirty_log_on_the_vf)
{
	static struct cmd_result r;
	struct tb_devs t;
	uint64_t n;

	/* The VF's generic profile has no DMA decoder: all-mapped feeder. */
	setup(_metadata, &t);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "stop", devs[2]));
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "show", devs[2]));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "no dirty log")) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "start", devs[2],
			 "0x100000:0x100000", "0x400000:0x2000"));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "start", devs[2], "0:0x1000"));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "already running")) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dirty", devs[2]));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, json_get_u64(r.out, "dirty_pages", &n));
	EXPECT_EQ(256 + 2, n) TH_LOG("%s", r.out);
	/* One range, and --clear: all-mapped reports everything again. */
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dirty", devs[2], "--iova",
			 "0x180000", "--length", "0x10000", "--clear"));
	ASSERT_EQ(0, json_get_u64(r.out, "dirty_pages", &n));
	EXPECT_EQ(16, n) TH_LOG("%s", r.out);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dev", "show", devs[2]));
	ASSERT_EQ(0, json_get_u64(r.out, "dirty_reports", &n));
	EXPECT_GE(n, 2);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "stop", devs[2]));
	EXPECT_EQ(0, r.status);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "stop", devs[2]));
	EXPECT_EQ(1, r.status);
	/* Overlapping ranges are refused. */
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "start", devs[2],
			 "0x100000:0x2000", "0x101000:0x2000"));
	EXPECT_EQ(1, r.status);
}

#define MAX_LOG_MB "/sys/module/dirty_track/parameters/max_log_mb"

/*
 * dirty_track's max_log_mb, put back after the test whatever happened, and
 * no dirty log left running on the VF.
 */
FIXTURE(cap) {
	struct modparam p;
};

FIXTURE_SETUP(cap)
{
	ASSERT_EQ(0, modparam_save(&self->p, MAX_LOG_MB))
		TH_LOG("%s: %s", MAX_LOG_MB, strerror(errno));
}

FIXTURE_TEARDOWN(cap)
{
	static struct cmd_result r;

	modparam_restore(&self->p);
	if (devs[2])
		CMD(&r, MIGCTL, "dirty", "stop", devs[2]);
}

/* A log over the admin's cap is refused with the reason; a small one runs. */
TEST_F(cap, dirty_log_refused_over_max_log_mb)
{
	static struct cmd_result r;
	struct tb_devs t;

	setup(_metadata, &t);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "stop", devs[2]));
	ASSERT_EQ(0, modparam_write(MAX_LOG_MB, "1"));
	/* 256 GiB: about 9 MB with every page dirty */
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "start", devs[2],
			 "0:0x4000000000"));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "max_log_mb")) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "show", devs[2]));
	EXPECT_EQ(1, r.status);
	/* 1 MiB of IOVA fits */
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "start", devs[2],
			 "0x100000:0x100000"));
	EXPECT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "stop", devs[2]));
	EXPECT_EQ(0, r.status);
	ASSERT_EQ(0, modparam_write(MAX_LOG_MB, "0"));
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "start", devs[2],
			 "0:0x4000000000"));
	EXPECT_EQ(0, r.status) TH_LOG("%s", r.err);
	/* the last stop also ends a log an ASSERT above left running */
}

/* `migctl -j monitor` in the background, its stdout on *fd. */
static pid_t start_monitor(int *fd)
{
	int p[2];
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (!pid) {
		dup2(p[1], 1);
		close(p[0]);
		execlp(MIGCTL, MIGCTL, "-j", "monitor", NULL);
		_exit(127);
	}
	close(p[1]);
	*fd = p[0];
	usleep(500000);		/* let it join the group */
	return pid;
}

/* Stop it (SIGINT) and collect what it printed; its exit status. */
static int stop_monitor(pid_t pid, int fd, char *buf, size_t len)
{
	size_t used = 0;
	ssize_t n;
	int st;

	usleep(500000);		/* let the last events arrive */
	kill(pid, SIGINT);
	while ((n = read(fd, buf + used, len - 1 - used)) > 0)
		used += n;
	buf[used] = 0;
	close(fd);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

TEST(monitor_sees_events)
{
	static struct cmd_result r;
	char buf[8192];
	struct tb_devs t;
	pid_t pid;
	int fd;

	pid = start_monitor(&fd);
	ASSERT_GT(pid, 0);
	setup(_metadata, &t);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "unbind", devs[0]));
	ASSERT_EQ(0, CMD(&r, MIGCTL, "bind", devs[0]));
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "trap", "sparse"));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "trap", "none"));
	EXPECT_EQ(0, stop_monitor(pid, fd, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "\"event\":\"unbind\"")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "\"event\":\"bind\"")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "\"trap_mode\":\"sparse\"")) TH_LOG("%s", buf);
	EXPECT_GE(json_count(buf, "dev", devs[0]), 4) TH_LOG("%s", buf);
}

TEST(log_overflow_event)
{
	static const char *param = "/sys/module/vfio_mig/parameters/log_entries";
	static struct cmd_result r;
	char buf[8192], saved[32] = "";
	struct tb_devs t;
	struct vmm_dev d;
	struct edu e;
	uint64_t n;
	pid_t pid;
	int fd, i;

	setup(_metadata, &t);
	ASSERT_EQ(0, vmm_sysfs_read(param, saved, sizeof(saved)));
	ASSERT_EQ(0, vmm_sysfs_write(param, "64"));
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[1], "trap", "all"));
	pid = start_monitor(&fd);
	ASSERT_GT(pid, 0);
	/* The ring (64 entries, sized at open) overflows on the 65th write. */
	ASSERT_EQ(0, vmm_open(&d, devs[1]));
	ASSERT_EQ(0, edu_probe(&e, &d, false));
	for (i = 0; i < 100; i++)
		edu_liveness(&e, i);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dev", "show", devs[1]));
	ASSERT_EQ(0, json_get_u64(r.out, "log_overflows", &n));
	EXPECT_GE(n, 30) TH_LOG("%s", r.out);
	vmm_close(&d);
	stop_monitor(pid, fd, buf, sizeof(buf));
	/* One event per overflow episode, not one per lost entry. */
	EXPECT_EQ(1, json_count(buf, "event", "log-overflow")) TH_LOG("%s", buf);
	EXPECT_EQ(1, json_count(buf, "dev", devs[1])) TH_LOG("%s", buf);
	vmm_sysfs_write(param, saved);
	CMD(&r, MIGCTL, "dev", "set", devs[1], "trap", "none");
}

/* dev show's migration state of @bdf into @state. */
static int mig_state_of(char *bdf, char *state, size_t len)
{
	static struct cmd_result r;

	if (CMD(&r, MIGCTL, "-j", "dev", "show", bdf) || r.status)
		return -1;
	return json_get_str(r.out, "mig_state", state, len);
}

TEST(mig_state_attribute_and_event)
{
	static struct cmd_result r;
	char buf[8192], st[32];
	struct tb_devs t;
	struct vmm_dev d;
	pid_t pid;
	int fd;

	setup(_metadata, &t);
	ASSERT_EQ(0, mig_state_of(devs[1], st, sizeof(st)));
	EXPECT_STREQ("running", st);
	/* migration needs a trap mode (trap mode none offers none) */
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[1], "trap", "sparse"));
	pid = start_monitor(&fd);
	ASSERT_GT(pid, 0);
	ASSERT_EQ(0, vmm_open(&d, devs[1]));
	ASSERT_EQ(0, mig_set_state(&d, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_state_of(devs[1], st, sizeof(st)));
	EXPECT_STREQ("stop", st);
	/* closing the device fd returns it to running */
	vmm_close(&d);
	ASSERT_EQ(0, mig_state_of(devs[1], st, sizeof(st)));
	EXPECT_STREQ("running", st);
	stop_monitor(pid, fd, buf, sizeof(buf));
	EXPECT_EQ(2, json_count(buf, "event", "mig-state")) TH_LOG("%s", buf);
	EXPECT_EQ(1, json_count(buf, "mig_state", "stop")) TH_LOG("%s", buf);
	CMD(&r, MIGCTL, "dev", "set", devs[1], "trap", "none");
}

/*
 * dev show's "migration": the flags the VMM's VFIO_DEVICE_FEATURE_MIGRATION
 * reports, PRE_COPY only on a kernel that has it; none with trap mode none
 * (which offers no migration). A closed device shows what a VMM opening
 * it would get.
 */
TEST(migration_flags_as_the_vmm_sees_them)
{
	static struct cmd_result r;
	char got[64], closed[64], want[96];
	struct tb_devs t;
	struct vmm_dev d;
	uint64_t flags;
	int pass;

	setup(_metadata, &t);
	for (pass = 0; pass < 2; pass++) {
		ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[1], "trap",
				 pass ? "none" : "sparse"));
		ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dev", "show", devs[1]));
		ASSERT_EQ(0, json_get_str(r.out, "migration", closed,
					  sizeof(closed))) TH_LOG("%s", r.out);
		ASSERT_EQ(0, vmm_open(&d, devs[1]));
		if (mig_features(&d, &flags))
			flags = 0;
		snprintf(want, sizeof(want), "%s%s%s",
			 flags & VFIO_MIGRATION_STOP_COPY ? "stop-copy" : "none",
			 flags & VFIO_MIGRATION_P2P ? ",p2p" : "",
			 flags & (1u << 2) ? ",pre-copy" : "");
		ASSERT_EQ(0, CMD(&r, MIGCTL, "-j", "dev", "show", devs[1]));
		ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
		ASSERT_EQ(0, json_get_str(r.out, "migration", got, sizeof(got)))
			TH_LOG("%s", r.out);
		EXPECT_STREQ(want, got) TH_LOG("pass %d", pass);
		EXPECT_STREQ(want, closed) TH_LOG("pass %d: closed", pass);
		if (pass) {
			EXPECT_STREQ("none", got);
		} else {
			EXPECT_EQ(0, strncmp(got, "stop-copy,p2p", 13));
		}
		ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "show", devs[1]));
		snprintf(want, sizeof(want), " migration %s\n", got);
		EXPECT_NE(NULL, strstr(r.out, want)) TH_LOG("%s", r.out);
		vmm_close(&d);
	}
	CMD(&r, MIGCTL, "dev", "set", devs[1], "trap", "none");
}

/* dev set applies every setting or none. */
TEST(dev_set_is_all_or_nothing)
{
	static struct cmd_result r;
	char trap[16], prof[32];
	struct tb_devs t;

	setup(_metadata, &t);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[1], "trap", "none",
			 "profile", "edu"));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	/* a running dirty log freezes trap mode, profile and page size */
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "start", devs[1],
			 "0x100000:0x10000"));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[1], "profile",
			 "generic", "trap", "all"));
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "dirty log is running")) TH_LOG("%s", r.err);
	dev_attr(devs[1], "trap_mode", trap, sizeof(trap));
	dev_attr(devs[1], "profile", prof, sizeof(prof));
	EXPECT_STREQ("none", trap);
	EXPECT_STREQ("edu", prof);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dirty", "stop", devs[1]));
	/* an unknown trap mode: the valid profile is not applied either */
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[1], "profile",
			 "generic", "trap", "bogus"));
	EXPECT_NE(0, r.status);
	dev_attr(devs[1], "profile", prof, sizeof(prof));
	EXPECT_STREQ("edu", prof);
}

TEST(unprivileged_gets_eperm)
{
	/* "@" stands for the device address. */
	static const char *const mutating[][6] = {
		{ "dev", "set", "@", "trap", "all" },
		{ "dirty", "start", "@", "0x100000:0x1000" },
		{ "dirty", "stop", "@" },
		{ "dirty", "show", "@" },
		{ "log", "@" },
		{ "dev", "show" },
		{ "dev", "show", "@" },
	};
	static struct cmd_result r;
	struct tb_devs t;
	unsigned int i, k;
	char *argv[8];

	setup(_metadata, &t);
	for (i = 0; i < sizeof(mutating) / sizeof(mutating[0]); i++) {
		memset(argv, 0, sizeof(argv));
		argv[0] = MIGCTL;
		for (k = 0; k < 6 && mutating[i][k]; k++)
			argv[k + 1] = strcmp(mutating[i][k], "@") ?
				      (char *)mutating[i][k] : devs[0];
		ASSERT_EQ(0, cmd_run(&r, NOBODY, argv));
		EXPECT_EQ(1, r.status) TH_LOG("%s %s", argv[1], argv[2]);
		EXPECT_NE(NULL, strstr(r.err, "Operation not permitted"))
			TH_LOG("%s %s: %s", argv[1], argv[2], r.err);
	}
	ASSERT_EQ(0, cmd_run(&r, NOBODY, (char *const[]){ MIGCTL, "bind",
							  devs[0], NULL }));
	EXPECT_EQ(1, r.status);
}

/*
 * As nobody (no capabilities), on a raw socket: dev-get, as a do and as a
 * dump, and joining each multicast group fail with EPERM. Returns a bit
 * per check that did not.
 */
static int unprivileged_child(const char *bdf)
{
	static const char *const groups[] = {
		VFIO_MIG_MCGRP_EVENTS, VFIO_MIG_MCGRP_MIG,
	};
	static struct genl_msg m;
	struct genl g;
	int bad = 0, ret;
	unsigned int i;
	uint32_t id;

	if (setgid(NOBODY) || setuid(NOBODY))
		return 0x80;
	if (genl_open(&g, VFIO_MIG_FAMILY_NAME))
		return 0x40;
	genl_msg_init(&m, &g, VFIO_MIG_CMD_DEV_GET, VFIO_MIG_FAMILY_VERSION,
		      0);
	genl_put_str(&m, VFIO_MIG_A_DEV_BDF, bdf);
	ret = genl_do(&g, &m);
	if (ret != -EPERM) {
		fprintf(stderr, "# dev-get do as nobody: %d\n", ret);
		bad |= 1;
	}
	genl_msg_init(&m, &g, VFIO_MIG_CMD_DEV_GET, VFIO_MIG_FAMILY_VERSION,
		      0);
	ret = genl_dump(&g, &m, NULL, NULL);
	if (ret != -EPERM) {
		fprintf(stderr, "# dev-get dump as nobody: %d\n", ret);
		bad |= 2;
	}
	for (i = 0; i < 2; i++) {
		if (genl_mcast_group(&g, VFIO_MIG_FAMILY_NAME, groups[i],
				     &id)) {
			bad |= 4 << i;
			continue;
		}
		ret = setsockopt(g.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
				 &id, sizeof(id)) ? -errno : 0;
		if (ret != -EPERM) {
			fprintf(stderr, "# join %s as nobody: %d\n",
				groups[i], ret);
			bad |= 4 << i;
		}
	}
	genl_close(&g);
	return bad;
}

TEST(unprivileged_gets_no_device_data_nor_events)
{
	struct tb_devs t;
	pid_t pid;
	int st;

	setup(_metadata, &t);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(unprivileged_child(devs[0]));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
}

/*
 * As nobody in a user and network namespace of its own (CAP_NET_ADMIN
 * there, which is all joining a group asks): join "events", say so on
 * @ready, and report whether anything arrived within 3 s. Exit 0: nothing
 * did; 1: an event did; 4: no such namespaces here; else a setup error.
 */
static int userns_listener(int ready)
{
	struct genl g;
	struct pollfd pfd;
	uint32_t id;
	char c = 1;

	if (setgid(NOBODY) || setuid(NOBODY))
		return 2;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET))
		return 4;
	if (genl_open(&g, VFIO_MIG_FAMILY_NAME) ||
	    genl_mcast_group(&g, VFIO_MIG_FAMILY_NAME, VFIO_MIG_MCGRP_EVENTS,
			     &id) ||
	    setsockopt(g.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &id,
		       sizeof(id)))
		return 3;
	if (write(ready, &c, 1) != 1)
		return 3;
	pfd.fd = g.fd;
	pfd.events = POLLIN;
	return poll(&pfd, 1, 3000) > 0;
}

TEST(no_events_into_an_unprivileged_users_namespace)
{
	static struct cmd_result r;
	struct tb_devs t;
	int p[2], st;
	pid_t pid;
	char c;

	setup(_metadata, &t);
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(p[0]);
		_exit(userns_listener(p[1]));
	}
	close(p[1]);
	if (read(p[0], &c, 1) == 1) {
		ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "trap",
				 "sparse"));
		EXPECT_EQ(0, r.status) TH_LOG("%s", r.err);
		ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[0], "trap",
				 "none"));
	}
	close(p[0]);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	if (WEXITSTATUS(st) == 4)
		SKIP(return, "no unprivileged user namespaces here");
	EXPECT_EQ(0, WEXITSTATUS(st))
		TH_LOG("1: the event reached it; 2, 3: setup failed");
}

/* ---- dev-compat: the target profile's compatibility answer ---- */

struct compat_id {
	uint16_t vendor, device, subvendor, subdevice;
	uint8_t revision;
	uint32_t class;
	uint64_t bar[6];
	const char *profile;
	int nr_bars;
};

struct compat_answer {
	bool replied;
	uint8_t tolerated;
	char refused[200];
};

static unsigned long sysfs_num(const char *bdf, const char *attr)
{
	char path[256], buf[32] = "";

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	vmm_sysfs_read(path, buf, sizeof(buf));
	return strtoul(buf, NULL, 0);
}

/* @bdf's identity as sysfs has it, profile edu. */
static int compat_id_of(const char *bdf, struct compat_id *id)
{
	unsigned long long start, end, flags;
	char path[256], line[256];
	FILE *f;
	int i;

	memset(id, 0, sizeof(*id));
	id->vendor = sysfs_num(bdf, "vendor");
	id->device = sysfs_num(bdf, "device");
	id->subvendor = sysfs_num(bdf, "subsystem_vendor");
	id->subdevice = sysfs_num(bdf, "subsystem_device");
	id->revision = sysfs_num(bdf, "revision");
	id->class = sysfs_num(bdf, "class") & 0xffffff;
	id->profile = "edu";
	id->nr_bars = 6;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", bdf);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	for (i = 0; i < 6 && fgets(line, sizeof(line), f); i++) {
		if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3)
			break;
		id->bar[i] = end > start || start ? end - start + 1 : 0;
	}
	fclose(f);
	return i == 6 ? 0 : -EINVAL;
}

static int compat_cb(const struct nlmsghdr *h, void *priv)
{
	const struct nlattr *tb[VFIO_MIG_A_DEV_MAX + 1];
	struct compat_answer *a = priv;

	genl_parse(h, tb, VFIO_MIG_A_DEV_MAX);
	if (!tb[VFIO_MIG_A_DEV_COMPAT_TOLERATED])
		return 0;
	a->replied = true;
	a->tolerated = *(const uint8_t *)genl_data(tb[VFIO_MIG_A_DEV_COMPAT_TOLERATED]);
	if (tb[VFIO_MIG_A_DEV_COMPAT_REFUSED])
		snprintf(a->refused, sizeof(a->refused), "%s",
			 (const char *)genl_data(tb[VFIO_MIG_A_DEV_COMPAT_REFUSED]));
	return 0;
}

/* Ask the kernel whether a source @id may migrate onto @bdf. */
static int dev_compat(struct genl *g, const char *bdf,
		      const struct compat_id *id, struct compat_answer *a)
{
	struct genl_msg m;
	int i;

	memset(a, 0, sizeof(*a));
	genl_msg_init(&m, g, VFIO_MIG_CMD_DEV_COMPAT, VFIO_MIG_FAMILY_VERSION,
		      0);
	genl_put_str(&m, VFIO_MIG_A_DEV_BDF, bdf);
	genl_put(&m, VFIO_MIG_A_DEV_VENDOR, &id->vendor, 2);
	genl_put(&m, VFIO_MIG_A_DEV_DEVICE, &id->device, 2);
	genl_put(&m, VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR, &id->subvendor, 2);
	genl_put(&m, VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE, &id->subdevice, 2);
	genl_put(&m, VFIO_MIG_A_DEV_REVISION, &id->revision, 1);
	genl_put(&m, VFIO_MIG_A_DEV_CLASS, &id->class, 4);
	for (i = 0; i < id->nr_bars; i++)
		genl_put_u64(&m, VFIO_MIG_A_DEV_BAR_LEN, id->bar[i]);
	genl_put_str(&m, VFIO_MIG_A_DEV_PROFILE, id->profile);
	return genl_do_reply(g, &m, compat_cb, a);
}

/*
 * dev-compat answers with the target profile's compat op, the check a
 * migration stream's header gets: edu tolerates another revision (and
 * says so), refuses other subsystem ids, another profile or BAR size,
 * each with its reason; an incomplete identity is an error of the
 * request. migctl's target asks exactly this (tools/migctl lm_dst.c)
 * before it accepts a source.
 */
TEST(dev_compat_is_the_profiles_answer)
{
	static const struct {
		const char *what, *refused;
		uint8_t tolerated;
	} cases[] = {
		{ "the same identity", NULL, 0 },
		{ "another revision", NULL, 1 },
		{ "other subsystem ids", "subsystem", 0 },
		{ "another profile", "profile mismatch: source generic", 0 },
		{ "another BAR0 size", "BAR0 size", 0 },
	};
	static struct cmd_result r;
	struct compat_answer a;
	struct compat_id src, id;
	struct tb_devs t;
	struct genl g;
	unsigned int i;
	int ret;

	setup(_metadata, &t);
	ASSERT_EQ(0, CMD(&r, MIGCTL, "dev", "set", devs[1], "profile", "edu"));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, compat_id_of(devs[0], &src));
	ASSERT_EQ(0, genl_open(&g, VFIO_MIG_FAMILY_NAME));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		id = src;
		switch (i) {
		case 1:
			id.revision++;
			break;
		case 2:
			id.subdevice++;
			break;
		case 3:
			id.profile = "generic";
			break;
		case 4:
			id.bar[0] *= 2;
			break;
		}
		ret = dev_compat(&g, devs[1], &id, &a);
		ASSERT_EQ(0, ret) TH_LOG("%s: %s (%s)", cases[i].what,
					 strerror(-ret), g.err);
		ASSERT_TRUE(a.replied) TH_LOG("%s: no answer", cases[i].what);
		EXPECT_EQ(cases[i].tolerated, a.tolerated)
			TH_LOG("%s", cases[i].what);
		if (cases[i].refused) {
			EXPECT_NE(NULL, strstr(a.refused, cases[i].refused))
				TH_LOG("%s: \"%s\"", cases[i].what, a.refused);
		} else {
			EXPECT_STREQ("", a.refused)
				TH_LOG("%s", cases[i].what);
		}
	}
	/* five BARs: the request is refused, not answered */
	id = src;
	id.nr_bars = 5;
	EXPECT_EQ(-EINVAL, dev_compat(&g, devs[1], &id, &a));
	EXPECT_NE(NULL, strstr(g.err, "six bar-len")) TH_LOG("%s", g.err);
	genl_close(&g);
}

TEST_HARNESS_MAIN
