// SPDX-License-Identifier: GPL-2.0
/*
 * The migration control device /dev/vfio-mig and the migration phases
 * (Documentation/live-migration.rst), with the test VMM holding edu A (and
 * edu B as a target) and this test in the role of migctl:
 *
 *  - open_unprivileged: no CAP_SYS_ADMIN, no fd;
 *  - attach_errors: unknown BDF, device not open, a second controller,
 *    a second ATTACH, bad flags, ioctls before ATTACH;
 *  - pages_*: reads equal the VMM's RAM, writes change it; misaligned,
 *    too many, unmapped IOVAs and bad sizes refused with the uAPI's errnos;
 *  - staged_pages_*: a staging fd's pages are the guest's as PAGES reads
 *    them, byte for byte, at the stage's time, sent by sendfile() over
 *    TCP and read; the kinds, keyed hashes and block hashes are migctl's
 *    own (libsodium's SipHash-2-4, tools/migctl/hash.c); errors leave
 *    nothing staged;
 *  - state_*: the state set through the control fd is the VMM's; illegal
 *    states refused; a STOP_COPY data fd from it resumes edu B;
 *  - vmm_close_*: the VMM closes the device: every ioctl fails with ENODEV;
 *  - rollback_*: a control fd closed before its commit point leaves the
 *    device RUNNING (RESUMING dropped unapplied) and the VMM gets "abort";
 *    one that moved nothing leaves the VMM's state;
 *  - commit_*: COMMIT keeps the state; COMMIT_STOPPED keeps STOP against
 *    both fds (and resets: refused, or undone for those that cannot be)
 *    until the VMM closes the device;
 *  - phase_*: mig-phase / mig-ack relay, seq, ESTALE, the events;
 *  - dirty_mark: marks exactly the given pages, refuses ranges outside;
 *  - vfio_report_finer_than_the_log: a VFIO report at 4 KiB in windows
 *    that split a 64 KiB log page loses no dirty page;
 *  - netns_events: events and operations work from another netns;
 *  - vmm_close_races_ioctls: the VMM closes the device while PAGES and
 *    STATE run on other threads: they finish, then get ENODEV;
 *  - vmm_close_not_held_by_a_faulting_caller: a PAGES call stuck on a
 *    fault in its caller's memory does not hold up the VMM's close;
 *  - vmm_close_not_held_by_a_faulting_data_fd_read, ..._write: nor does a
 *    read or write of a controller's data fd stuck so;
 *  - unbind_after_vmm_close: the device goes while a dead control fd still
 *    holds it; its release still announces "abort".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>
#include <linux/vfio_mig.h>
#include <linux/vfio_mig_ctl.h>

#include "kselftest_harness.h"
#include "hash.h"
#include "edu.h"
#include "genl.h"
#include "lmvmm.h"
#include "mig.h"
#include "regsync.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(1u << 20)
#define RAM_PAGES	(RAM_SIZE / MIG_PAGE)
#define PEEK_IOVA	(RAM_IOVA + RAM_SIZE - 0x2000)
#define EV_TIMEOUT_MS	10000

#ifndef SOL_NETLINK
#define SOL_NETLINK	270
#endif

/* ---- the control device ---- */

static int ctl_open(void)
{
	return open(VFIO_MIG_CTL_DEVICE, O_RDWR | O_CLOEXEC);
}

static int ctl_attach(int fd, const char *bdf)
{
	struct vfio_mig_ctl_attach a = { .argsz = sizeof(a) };

	snprintf(a.bdf, sizeof(a.bdf), "%s", bdf);
	return ioctl(fd, VFIO_MIG_CTL_ATTACH, &a) ? -errno : 0;
}

/* Attach a new control fd to @bdf; the fd, or -errno. */
static int ctl_new(const char *bdf)
{
	int fd = ctl_open(), ret;

	if (fd < 0)
		return -errno;
	ret = ctl_attach(fd, bdf);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static int ctl_set(int fd, uint32_t state, int *data_fd)
{
	struct vfio_mig_ctl_state s = {
		.argsz = sizeof(s),
		.flags = VFIO_MIG_CTL_STATE_SET,
		.device_state = state,
		.data_fd = -2,
	};

	if (ioctl(fd, VFIO_MIG_CTL_STATE, &s))
		return -errno;
	if (data_fd)
		*data_fd = s.data_fd;
	else if (s.data_fd >= 0)
		close(s.data_fd);
	return 0;
}

static int ctl_get(int fd, uint32_t *state)
{
	struct vfio_mig_ctl_state s = { .argsz = sizeof(s), .data_fd = -2 };

	if (ioctl(fd, VFIO_MIG_CTL_STATE, &s))
		return -errno;
	*state = s.device_state;
	return s.data_fd == -1 ? 0 : -EPROTO;
}

static int ctl_pages(int fd, bool write, const uint64_t *iovas, uint32_t n,
		     void *data, uint32_t *count)
{
	struct vfio_mig_ctl_pages p = {
		.argsz = sizeof(p),
		.flags = write ? VFIO_MIG_CTL_PAGES_WRITE : 0,
		.count = n,
		.page_size = 4096,
		.iovas = (uintptr_t)iovas,
		.data = (uintptr_t)data,
	};
	int ret = ioctl(fd, VFIO_MIG_CTL_PAGES, &p) ? -errno : 0;

	if (count)
		*count = p.count;
	return ret;
}

static int ctl_commit(int fd, uint32_t flags)
{
	struct vfio_mig_ctl_commit c = { .argsz = sizeof(c), .flags = flags };

	return ioctl(fd, VFIO_MIG_CTL_COMMIT, &c) ? -errno : 0;
}

/* ---- netlink: phases, acks, their events ---- */

/* A vfio_mig socket that listens to multicast group @group. */
static int ev_open(struct genl *g, const char *group)
{
	uint32_t id;
	int ret;

	ret = genl_open(g, VFIO_MIG_FAMILY_NAME);
	if (!ret)
		ret = genl_mcast_group(g, VFIO_MIG_FAMILY_NAME, group, &id);
	if (!ret && setsockopt(g->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
			       &id, sizeof(id)))
		ret = -errno;
	return ret;
}

/*
 * The next event @cmd about @bdf within @ms (others are skipped): 0,
 * -ETIMEDOUT or -errno.
 */
static int ev_wait(struct genl *g, uint8_t cmd, const char *bdf,
		   struct lm_event *out, int ms)
{
	uint64_t end = vmm_now_us() + (uint64_t)ms * 1000;

	for (;;) {
		struct pollfd p = { .fd = g->fd, .events = POLLIN };
		int64_t left = (int64_t)(end - vmm_now_us()) / 1000;
		struct nlmsghdr *h;
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -ETIMEDOUT;
		n = recv(g->fd, g->rx, 64 << 10, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		for (h = (struct nlmsghdr *)g->rx; NLMSG_OK(h, n);
		     h = NLMSG_NEXT(h, n)) {
			struct lm_event e;

			if (h->nlmsg_type != g->family)
				continue;
			lm_event_parse(h, &e);
			if (e.cmd == cmd && !strcmp(e.bdf, bdf)) {
				*out = e;
				return 0;
			}
		}
	}
}

struct phase_reply {
	struct lm_event e;
	bool seen;
};

static int phase_cb(const struct nlmsghdr *h, void *priv)
{
	struct phase_reply *r = priv;

	lm_event_parse(h, &r->e);
	r->seen = true;
	return 0;
}

/* mig-phase: 0 and the reply, or -errno. */
static int nl_phase(struct genl *g, const char *bdf, uint32_t phase,
		    struct lm_event *reply)
{
	struct phase_reply r = {};
	struct genl_msg *m = malloc(sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	genl_msg_init(m, g, VFIO_MIG_CMD_MIG_PHASE, 1, 0);
	genl_put_str(m, VFIO_MIG_A_MIG_BDF, bdf);
	genl_put(m, VFIO_MIG_A_MIG_PHASE, &phase, sizeof(phase));
	ret = genl_do_reply(g, m, phase_cb, &r);
	free(m);
	if (!ret && !r.seen)
		ret = -EPROTO;
	if (!ret && reply)
		*reply = r.e;
	return ret;
}

/* mig-ack naming @nr ranges of RAM (the ack of prepare). */
static int nl_ack_ram(struct genl *g, const char *bdf, uint32_t phase,
		      uint32_t seq, uint32_t result, const struct lm_ram *ram,
		      unsigned int nr)
{
	struct genl_msg *m = malloc(sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	genl_msg_init(m, g, VFIO_MIG_CMD_MIG_ACK, 1, 0);
	genl_put_str(m, VFIO_MIG_A_MIG_BDF, bdf);
	genl_put(m, VFIO_MIG_A_MIG_PHASE, &phase, sizeof(phase));
	genl_put(m, VFIO_MIG_A_MIG_SEQ, &seq, sizeof(seq));
	genl_put(m, VFIO_MIG_A_MIG_RESULT, &result, sizeof(result));
	lm_put_ram(m, ram, nr);
	ret = genl_do(g, m);
	free(m);
	return ret;
}

static int nl_ack(struct genl *g, const char *bdf, uint32_t phase,
		  uint32_t seq, uint32_t result)
{
	return nl_ack_ram(g, bdf, phase, seq, result, NULL, 0);
}

/* dirty-mark of @n (iova, length) pairs. */
static int nl_mark(struct genl *g, const char *bdf, const uint64_t *r,
		   int n)
{
	struct genl_msg *m = malloc(sizeof(*m));
	struct nlattr *nest;
	int i, ret;

	if (!m)
		return -ENOMEM;
	genl_msg_init(m, g, VFIO_MIG_CMD_DIRTY_MARK, 1, 0);
	genl_put_str(m, VFIO_MIG_A_DIRTY_BDF, bdf);
	for (i = 0; i < n; i++) {
		nest = genl_nest_start(m, VFIO_MIG_A_DIRTY_RANGE);
		genl_put_u64(m, VFIO_MIG_A_DIRTY_RANGE_IOVA, r[2 * i]);
		genl_put_u64(m, VFIO_MIG_A_DIRTY_RANGE_LENGTH, r[2 * i + 1]);
		genl_nest_end(m, nest);
	}
	ret = genl_do(g, m);
	free(m);
	return ret;
}

/* dirty-start over A's RAM on @bdf through @g; 0 or -errno. */
static int nl_dirty_start(struct genl *g, const char *bdf)
{
	struct genl_msg *m = malloc(sizeof(*m));
	struct nlattr *nest;
	int ret;

	if (!m)
		return -ENOMEM;
	genl_msg_init(m, g, VFIO_MIG_CMD_DIRTY_START, 1, 0);
	genl_put_str(m, VFIO_MIG_A_DIRTY_BDF, bdf);
	nest = genl_nest_start(m, VFIO_MIG_A_DIRTY_RANGE);
	genl_put_u64(m, VFIO_MIG_A_DIRTY_RANGE_IOVA, RAM_IOVA);
	genl_put_u64(m, VFIO_MIG_A_DIRTY_RANGE_LENGTH, MIG_PAGE);
	genl_nest_end(m, nest);
	ret = genl_do(g, m);
	free(m);
	return ret;
}

/* ---- the fixture: A open with its RAM, B bound ---- */

FIXTURE(ctl) {
	struct tb_devs t;
	struct mig_side a, b;
	struct edu ea, eb;
	uint64_t flags;
	struct genl nl;		/* requests */
	struct genl mev;	/* the "mig" group */
	struct mig_dirty log;
	int ctl, data_fd;
	const char *bdf;
};

FIXTURE_SETUP(ctl)
{
	int ret;

	self->ctl = self->data_fd = -1;
	self->nl.fd = self->mev.fd = self->log.nl.fd = -1;
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(2, self->t.nr_edu);
	self->bdf = self->t.edu[0];
	mig_dirty_kill(self->t.edu[0]);
	mig_dirty_kill(self->t.edu[1]);
	ASSERT_EQ(0, mig_side_open(&self->a, self->t.edu[0], "sparse",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, edu_probe(&self->ea, &self->a.d, false));
	ASSERT_EQ(0, vmm_bind(self->t.edu[1], TB_DRIVER));
	ASSERT_EQ(0, mig_features(&self->a.d, &self->flags));
	ret = genl_open(&self->nl, VFIO_MIG_FAMILY_NAME);
	ASSERT_EQ(0, ret) TH_LOG("genl_open: %s", strerror(-ret));
	ret = ev_open(&self->mev, VFIO_MIG_MCGRP_MIG);
	ASSERT_EQ(0, ret) TH_LOG("mig group: %s", strerror(-ret));
}

FIXTURE_TEARDOWN(ctl)
{
	if (self->data_fd >= 0)
		close(self->data_fd);
	if (self->ctl >= 0)
		close(self->ctl);
	mig_dirty_stop(&self->log);
	genl_close(&self->nl);
	genl_close(&self->mev);
	mig_side_close(&self->a);
	mig_side_close(&self->b);
	mig_dirty_kill(self->t.edu[0]);
	rs_set_trap_mode(self->t.edu[0], "none");
	rs_set_trap_mode(self->t.edu[1], "none");
}

static int state_of(struct mig_side *s)
{
	uint32_t st;

	return mig_get_state(&s->d, &st) ? -1 : (int)st;
}

/* What a forked child must not keep: the device (and its close). */
static void child_drop_fds(FIXTURE_DATA(ctl) *self)
{
	int fds[] = { self->a.d.fd, self->a.d.group, self->a.d.container,
		      self->a.d.irq_fd, self->a.ram.memfd, self->b.d.fd,
		      self->b.d.group, self->b.d.container, self->ctl,
		      self->data_fd, self->mev.fd, self->nl.fd };
	unsigned int i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Wait for @pid up to @ms; its exit status, or -1 (killed then). */
static int child_wait(pid_t pid, int ms)
{
	int status, i;

	for (i = 0; i < ms / 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* ---- the tests ---- */

TEST_F(ctl, open_unprivileged)
{
	struct stat st;
	pid_t pid;

	ASSERT_EQ(0, stat(VFIO_MIG_CTL_DEVICE, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct __user_cap_header_struct h = {
			.version = _LINUX_CAPABILITY_VERSION_3,
		};
		struct __user_cap_data_struct d[2];
		int fd;

		child_drop_fds(self);
		/* root without CAP_SYS_ADMIN: the device refuses */
		if (syscall(SYS_capget, &h, d))
			_exit(10);
		d[0].effective &= ~(1u << CAP_SYS_ADMIN);
		d[0].permitted &= ~(1u << CAP_SYS_ADMIN);
		d[0].inheritable &= ~(1u << CAP_SYS_ADMIN);
		if (syscall(SYS_capset, &h, d))
			_exit(11);
		fd = ctl_open();
		if (fd >= 0)
			_exit(1);
		if (errno != EPERM)
			_exit(2);
		/* nobody: not even the file's mode lets it in */
		if (setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(12);
		fd = ctl_open();
		if (fd >= 0)
			_exit(3);
		_exit(errno == EACCES || errno == EPERM ? 0 : 4);
	}
	EXPECT_EQ(0, child_wait(pid, 10000))
		TH_LOG("1/3: opened without privilege, 2/4: wrong errno");
	/* and root opens it */
	self->ctl = ctl_open();
	ASSERT_LE(0, self->ctl);
}

TEST_F(ctl, attach_errors)
{
	struct vfio_mig_ctl_attach at = { .argsz = sizeof(at), .flags = 1 };
	uint32_t st;
	int fd2;

	self->ctl = ctl_open();
	ASSERT_LE(0, self->ctl);
	/* nothing but ATTACH before ATTACH */
	EXPECT_EQ(-ENOTCONN, ctl_get(self->ctl, &st));
	EXPECT_EQ(-ENOTCONN, ctl_commit(self->ctl, 0));
	EXPECT_EQ(-ENODEV, ctl_attach(self->ctl, "0000:7f:1f.7"));
	EXPECT_EQ(-ENODEV, ctl_attach(self->ctl, "nonsense"));
	/* B is bound to vfio-mig but no VMM has it open */
	EXPECT_EQ(-ENOTCONN, ctl_attach(self->ctl, self->t.edu[1]));
	snprintf(at.bdf, sizeof(at.bdf), "%s", self->bdf);
	EXPECT_EQ(-1, ioctl(self->ctl, VFIO_MIG_CTL_ATTACH, &at));
	EXPECT_EQ(EINVAL, errno);
	at.flags = 0;
	at.argsz = 4;
	EXPECT_EQ(-1, ioctl(self->ctl, VFIO_MIG_CTL_ATTACH, &at));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->ctl, _IO(VFIO_MIG_CTL_TYPE, 99), &at));
	EXPECT_EQ(ENOTTY, errno);

	ASSERT_EQ(0, ctl_attach(self->ctl, self->bdf));
	EXPECT_EQ(-EALREADY, ctl_attach(self->ctl, self->bdf));
	EXPECT_EQ(0, ctl_get(self->ctl, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, st);

	fd2 = ctl_open();
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-EBUSY, ctl_attach(fd2, self->bdf));
	/* the first one goes: the device is free again */
	close(self->ctl);
	self->ctl = -1;
	EXPECT_EQ(0, ctl_attach(fd2, self->bdf));
	close(fd2);
}

/* Page @i of the pattern @seed. */
static void pattern(uint8_t *p, uint64_t i, uint8_t seed)
{
	unsigned int j;

	for (j = 0; j < MIG_PAGE; j++)
		p[j] = (uint8_t)(i * 7 + j * 13 + seed);
}

TEST_F(ctl, pages_rw)
{
	static uint8_t data[VFIO_MIG_CTL_PAGES_MAX * MIG_PAGE];
	uint64_t iovas[VFIO_MIG_CTL_PAGES_MAX];
	uint8_t want[MIG_PAGE];
	uint32_t i, count;
	int ret;

	for (i = 0; i < RAM_PAGES; i++)
		pattern(mig_host(&self->a, RAM_IOVA + i * MIG_PAGE), i, 1);
	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);

	/* a few pages, out of order */
	iovas[0] = RAM_IOVA + 5 * MIG_PAGE;
	iovas[1] = RAM_IOVA;
	iovas[2] = RAM_IOVA + (RAM_PAGES - 1) * MIG_PAGE;
	ret = ctl_pages(self->ctl, false, iovas, 3, data, &count);
	ASSERT_EQ(0, ret) TH_LOG("read: %s", strerror(-ret));
	EXPECT_EQ(3, count);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, memcmp(data + i * MIG_PAGE,
				    mig_host(&self->a, iovas[i]), MIG_PAGE))
			TH_LOG("page %u read differs", i);

	/* the most per call: all of RAM */
	for (i = 0; i < VFIO_MIG_CTL_PAGES_MAX; i++)
		iovas[i] = RAM_IOVA + i * MIG_PAGE;
	memset(data, 0, sizeof(data));
	ASSERT_EQ(0, ctl_pages(self->ctl, false, iovas,
			       VFIO_MIG_CTL_PAGES_MAX, data, NULL));
	EXPECT_EQ(0, memcmp(data, self->a.ram.host, RAM_SIZE));

	/* writes land in the VMM's RAM */
	iovas[0] = RAM_IOVA + 7 * MIG_PAGE;
	iovas[1] = RAM_IOVA + 200 * MIG_PAGE;
	pattern(data, 7, 99);
	pattern(data + MIG_PAGE, 200, 99);
	ASSERT_EQ(0, ctl_pages(self->ctl, true, iovas, 2, data, &count));
	EXPECT_EQ(2, count);
	pattern(want, 7, 99);
	EXPECT_EQ(0, memcmp(want, mig_host(&self->a, iovas[0]), MIG_PAGE));
	pattern(want, 200, 99);
	EXPECT_EQ(0, memcmp(want, mig_host(&self->a, iovas[1]), MIG_PAGE));
	pattern(want, 8, 1);	/* and nothing else */
	EXPECT_EQ(0, memcmp(want, mig_host(&self->a, RAM_IOVA + 8 * MIG_PAGE),
			    MIG_PAGE));

	/* misaligned: nothing moves */
	iovas[0] = RAM_IOVA + 3 * MIG_PAGE;
	iovas[1] = RAM_IOVA + 4 * MIG_PAGE + 512;
	pattern(data, 0, 55);
	EXPECT_EQ(-EINVAL, ctl_pages(self->ctl, true, iovas, 2, data, &count));
	EXPECT_EQ(0, count);
	pattern(want, 3, 1);
	EXPECT_EQ(0, memcmp(want, mig_host(&self->a, RAM_IOVA + 3 * MIG_PAGE),
			    MIG_PAGE));
	/* too many, or another page size */
	EXPECT_EQ(-E2BIG, ctl_pages(self->ctl, false, iovas,
				    VFIO_MIG_CTL_PAGES_MAX + 1, data, NULL));
	{
		struct vfio_mig_ctl_pages p = {
			.argsz = sizeof(p), .count = 1, .page_size = 8192,
			.iovas = (uintptr_t)iovas, .data = (uintptr_t)data,
		};

		EXPECT_EQ(-1, ioctl(self->ctl, VFIO_MIG_CTL_PAGES, &p));
		EXPECT_EQ(EINVAL, errno);
		p.page_size = 4096;
		p.flags = 2;
		EXPECT_EQ(-1, ioctl(self->ctl, VFIO_MIG_CTL_PAGES, &p));
		EXPECT_EQ(EINVAL, errno);
		p.flags = 0;
		p.data = 8;	/* a bad user pointer */
		iovas[0] = RAM_IOVA;
		EXPECT_EQ(-1, ioctl(self->ctl, VFIO_MIG_CTL_PAGES, &p));
		EXPECT_EQ(EFAULT, errno);
	}

	/* an IOVA the device has no mapping for: the pages before are done */
	iovas[0] = RAM_IOVA + 10 * MIG_PAGE;
	iovas[1] = RAM_IOVA + 11 * MIG_PAGE;
	iovas[2] = RAM_IOVA + RAM_SIZE + 16 * MIG_PAGE;
	iovas[3] = RAM_IOVA + 12 * MIG_PAGE;
	memset(data, 0, 4 * MIG_PAGE);
	ret = ctl_pages(self->ctl, false, iovas, 4, data, &count);
	EXPECT_EQ(-EFAULT, ret) TH_LOG("unmapped read: %s", strerror(-ret));
	EXPECT_EQ(2, count);
	EXPECT_EQ(0, memcmp(data, mig_host(&self->a, iovas[0]), 2 * MIG_PAGE));
	pattern(data + 3 * MIG_PAGE, 12, 77);
	ret = ctl_pages(self->ctl, true, iovas + 2, 2, data + 2 * MIG_PAGE,
			&count);
	EXPECT_EQ(-EFAULT, ret);
	EXPECT_EQ(0, count);
	pattern(want, 12, 1);
	EXPECT_EQ(0, memcmp(want, mig_host(&self->a, iovas[3]), MIG_PAGE));
}

/* ---- staging fds ---- */

static int stage_fd(int ctl)
{
	struct vfio_mig_ctl_stage_fd sf = { .argsz = sizeof(sf) };

	return ioctl(ctl, VFIO_MIG_CTL_STAGE_FD, &sf) ? -errno : sf.fd;
}

static int stage(int fd, const uint64_t *iovas, uint32_t n, uint64_t *hashes,
		 uint8_t *kinds, uint64_t *sums, const struct mh_key *key,
		 uint32_t *ndata)
{
	struct vfio_mig_ctl_stage sa = {
		.argsz = sizeof(sa),
		.flags = sums ? VFIO_MIG_CTL_STAGE_SUMS : 0,
		.count = n,
		.iovas = (uintptr_t)iovas, .hashes = (uintptr_t)hashes,
		.kinds = (uintptr_t)kinds, .sums = (uintptr_t)sums,
	};

	memcpy(sa.key, key->k, sizeof(sa.key));
	if (ioctl(fd, VFIO_MIG_CTL_STAGE, &sa))
		return -errno;
	*ndata = sa.ndata;
	return 0;
}

/* Send @len bytes of @fd from @off by sendfile() over @s[0]; read at @s[1]. */
static int send_and_read(int fd, off_t off, size_t len, const int s[2],
			 uint8_t *out)
{
	size_t got = 0;
	ssize_t r;

	while (len) {
		r = sendfile(s[0], fd, &off, len);
		if (r <= 0)
			return r ? -errno : -EIO;
		len -= r;
		while (r > 0) {
			ssize_t g = recv(s[1], out + got, r, 0);

			if (g <= 0)
				return -EIO;
			got += g;
			r -= g;
		}
	}
	return 0;
}

TEST_F(ctl, staged_pages_as_read_and_hashed)
{
	static uint8_t want[VFIO_MIG_CTL_PAGES_MAX * MIG_PAGE];
	static uint8_t got[VFIO_MIG_CTL_PAGES_MAX * MIG_PAGE];
	uint64_t iovas[VFIO_MIG_CTL_PAGES_MAX], hashes[VFIO_MIG_CTL_PAGES_MAX];
	uint64_t sums[VFIO_MIG_CTL_PAGES_MAX], h;
	uint8_t kinds[VFIO_MIG_CTL_PAGES_MAX];
	uint32_t i, nd = 0, k, n = VFIO_MIG_CTL_PAGES_MAX;
	struct mh_key key;
	int sfd, socks[2], ret;

	ASSERT_EQ(0, mh_key_new(&key));
	for (i = 0; i < RAM_PAGES; i++)
		pattern(mig_host(&self->a, RAM_IOVA + i * MIG_PAGE), i, 3);
	/* pages 10 to 19 zero; page 30 zero but for its last byte */
	memset(mig_host(&self->a, RAM_IOVA + 10 * MIG_PAGE), 0, 10 * MIG_PAGE);
	memset(mig_host(&self->a, RAM_IOVA + 30 * MIG_PAGE), 0, MIG_PAGE - 1);
	*(uint8_t *)mig_host(&self->a, RAM_IOVA + 31 * MIG_PAGE - 1) = 1;

	/* before ATTACH: no staging fd */
	self->ctl = ctl_open();
	ASSERT_LE(0, self->ctl);
	EXPECT_EQ(-ENOTCONN, stage_fd(self->ctl));
	ASSERT_EQ(0, ctl_attach(self->ctl, self->bdf));
	sfd = stage_fd(self->ctl);
	ASSERT_LE(0, sfd) TH_LOG("staging fd: %s", strerror(-sfd));

	/*
	 * Every page, in an order that breaks the runs: backwards in pairs.
	 * The reader holds page 40 as it is and page 41 as it was before.
	 */
	for (i = 0; i < n; i++)
		iovas[i] = RAM_IOVA + (uint64_t)(i ^ 1) * MIG_PAGE;
	ASSERT_EQ(0, ctl_pages(self->ctl, false, iovas, n, want, NULL));
	for (i = 0; i < n; i++)
		hashes[i] = 0;
	h = mh_keyed64(&key, mig_host(&self->a, RAM_IOVA + 40 * MIG_PAGE),
		       MIG_PAGE);
	hashes[41] = h ? h : 1;		/* iovas[41] is page 40 */
	hashes[40] = hashes[41] ^ 1;	/* page 41: another content */
	ret = stage(sfd, iovas, n, hashes, kinds, sums, &key, &nd);
	ASSERT_EQ(0, ret) TH_LOG("stage: %s", strerror(-ret));

	/* the guest changes its pages: the staged ones do not */
	for (i = 0; i < RAM_PAGES; i++)
		pattern(mig_host(&self->a, RAM_IOVA + i * MIG_PAGE), i, 4);

	for (i = 0, k = 0; i < n; i++) {
		uint32_t pg = i ^ 1;
		const uint8_t *p = want + (size_t)i * MIG_PAGE;
		bool zero = pg >= 10 && pg < 20;

		h = mh_keyed64(&key, p, MIG_PAGE);
		EXPECT_EQ(h ? h : 1, hashes[i]) TH_LOG("page %u's hash", pg);
		if (pg == 40) {
			EXPECT_EQ(VFIO_MIG_CTL_STAGE_UNCHANGED, kinds[i]);
			continue;
		}
		EXPECT_EQ(zero ? VFIO_MIG_CTL_STAGE_ZERO :
			  VFIO_MIG_CTL_STAGE_DATA, kinds[i])
			TH_LOG("page %u's kind", pg);
		if (zero)
			continue;
		EXPECT_EQ(mh_hash64(p, MIG_PAGE, MH_SEED_PAGE), sums[k])
			TH_LOG("page %u's block hash", pg);
		memmove(want + (size_t)k * MIG_PAGE, p, MIG_PAGE);
		k++;
	}
	EXPECT_EQ(k, nd);
	EXPECT_EQ(n - 11, nd);

	/* read() from the start, then sendfile() over TCP, at offsets */
	memset(got, 0, sizeof(got));
	EXPECT_EQ((ssize_t)nd * MIG_PAGE, read(sfd, got, sizeof(got)));
	EXPECT_EQ(0, memcmp(want, got, (size_t)nd * MIG_PAGE));
	EXPECT_EQ(0, read(sfd, got, MIG_PAGE));
	ASSERT_EQ(0, tb_tcp_pair(socks));
	memset(got, 0, sizeof(got));
	ret = send_and_read(sfd, 0, (size_t)nd * MIG_PAGE, socks, got);
	EXPECT_EQ(0, ret) TH_LOG("sendfile: %s", strerror(-ret));
	EXPECT_EQ(0, memcmp(want, got, (size_t)nd * MIG_PAGE));
	ret = send_and_read(sfd, 3 * MIG_PAGE + 100, 5000, socks, got);
	EXPECT_EQ(0, ret);
	EXPECT_EQ(0, memcmp(want + 3 * MIG_PAGE + 100, got, 5000));
	/* past the end: nothing */
	{
		off_t off = (off_t)nd * MIG_PAGE;

		EXPECT_EQ(0, sendfile(socks[0], sfd, &off, MIG_PAGE));
	}

	/* a new stage replaces the pages; read() goes on at the position */
	iovas[0] = RAM_IOVA + 2 * MIG_PAGE;
	hashes[0] = 0;
	ASSERT_EQ(0, stage(sfd, iovas, 1, hashes, kinds, NULL, &key, &nd));
	EXPECT_EQ(1, nd);
	EXPECT_EQ(0, read(sfd, got, sizeof(got)));
	EXPECT_EQ(0, lseek(sfd, 0, SEEK_SET));
	EXPECT_EQ(MIG_PAGE, read(sfd, got, sizeof(got)));
	EXPECT_EQ(0, memcmp(got, mig_host(&self->a, iovas[0]), MIG_PAGE));

	/*
	 * Pages a pipe still holds are not rewritten by the next stage, which
	 * takes others: the pipe reads what was staged when it got them. A
	 * new staging fd, whose only pages are those the pipe holds.
	 */
	{
		int pfd[2], sfd2 = stage_fd(self->ctl);
		loff_t off = 0;

		ASSERT_LE(0, sfd2);
		ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
		for (i = 0; i < 4; i++) {
			iovas[i] = RAM_IOVA + (60 + i) * (uint64_t)MIG_PAGE;
			hashes[i] = 0;
		}
		ASSERT_EQ(0, ctl_pages(self->ctl, false, iovas, 4, want, NULL));
		ASSERT_EQ(0, stage(sfd2, iovas, 4, hashes, kinds, NULL, &key,
				   &nd));
		ASSERT_EQ(4, nd);
		EXPECT_EQ(4 * MIG_PAGE, splice(sfd2, &off, pfd[1], NULL,
					       4 * MIG_PAGE, 0));
		for (i = 0; i < 4; i++)
			pattern(mig_host(&self->a, iovas[i]), i, 9);
		for (i = 0; i < 4; i++)
			hashes[i] = 0;
		ASSERT_EQ(0, stage(sfd2, iovas, 4, hashes, kinds, NULL, &key,
				   &nd));
		EXPECT_EQ(4 * MIG_PAGE, read(pfd[0], got, 4 * MIG_PAGE));
		EXPECT_EQ(0, memcmp(want, got, 4 * MIG_PAGE))
			TH_LOG("a page the pipe held was staged over");
		EXPECT_EQ(4 * MIG_PAGE, pread(sfd2, got, 4 * MIG_PAGE, 0));
		for (i = 0; i < 4; i++)
			EXPECT_EQ(0, memcmp(got + i * MIG_PAGE,
					    mig_host(&self->a, iovas[i]),
					    MIG_PAGE));
		close(pfd[0]);
		close(pfd[1]);
		close(sfd2);
	}

	/* errors: nothing staged, hashes as they were */
	iovas[1] = RAM_IOVA + RAM_SIZE + 16 * MIG_PAGE;	/* not mapped */
	hashes[0] = hashes[1] = 7;
	EXPECT_EQ(-EFAULT, stage(sfd, iovas, 2, hashes, kinds, NULL, &key,
				 &nd));
	EXPECT_EQ(7, hashes[0]);
	EXPECT_EQ(0, pread(sfd, got, MIG_PAGE, 0));
	iovas[1] = RAM_IOVA + 512;
	EXPECT_EQ(-EINVAL, stage(sfd, iovas, 2, hashes, kinds, NULL, &key,
				 &nd));
	EXPECT_EQ(-E2BIG, stage(sfd, iovas, n + 1, hashes, kinds, NULL, &key,
				&nd));
	/* arguments refused drop what the fd held, as any error does */
	iovas[0] = RAM_IOVA + MIG_PAGE;
	iovas[1] = RAM_IOVA + 2 * MIG_PAGE;
	memset(mig_host(&self->a, iovas[0]), 0x5a, MIG_PAGE);
	memset(mig_host(&self->a, iovas[1]), 0xa5, MIG_PAGE);
	hashes[0] = hashes[1] = 0;
	ASSERT_EQ(0, stage(sfd, iovas, 2, hashes, kinds, NULL, &key, &nd));
	ASSERT_EQ(2, nd);
	EXPECT_EQ(MIG_PAGE, pread(sfd, got, MIG_PAGE, 0));
	EXPECT_EQ(-E2BIG, stage(sfd, iovas, n + 1, hashes, kinds, NULL, &key,
				&nd));
	EXPECT_EQ(0, pread(sfd, got, MIG_PAGE, 0))
		TH_LOG("a stage refused for its count left the earlier pages");
	hashes[0] = hashes[1] = 0;
	ASSERT_EQ(0, stage(sfd, iovas, 2, hashes, kinds, NULL, &key, &nd));
	ASSERT_EQ(2, nd);
	{
		struct vfio_mig_ctl_stage sa = { .argsz = sizeof(sa),
						 .flags = 2 };

		EXPECT_EQ(-1, ioctl(sfd, VFIO_MIG_CTL_STAGE, &sa));
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ(0, pread(sfd, got, MIG_PAGE, 0))
			TH_LOG("a stage refused for its flags left the earlier pages");
	}
	{
		struct vfio_mig_ctl_stage sa = { .argsz = sizeof(sa),
						 .flags = 2 };
		struct vfio_mig_ctl_stage_fd sf = { .argsz = sizeof(sf),
						    .reserved = 1 };

		EXPECT_EQ(-1, ioctl(sfd, VFIO_MIG_CTL_STAGE, &sa));
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ(-1, ioctl(self->ctl, VFIO_MIG_CTL_STAGE_FD, &sf));
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ(-1, ioctl(sfd, VFIO_MIG_CTL_PAGES, &sa));
		EXPECT_EQ(ENOTTY, errno);
	}
	/* once the VMM closed the device: ENODEV */
	mig_side_close(&self->a);
	iovas[1] = RAM_IOVA;
	EXPECT_EQ(-ENODEV, stage(sfd, iovas, 2, hashes, kinds, NULL, &key,
				 &nd));
	close(socks[0]);
	close(socks[1]);
	close(sfd);
}

static int land(int fd, const uint64_t *iovas, uint32_t n, bool sums)
{
	struct vfio_mig_ctl_land la = {
		.argsz = sizeof(la),
		.flags = sums ? VFIO_MIG_CTL_LAND_SUMS : 0,
		.count = n, .iovas = (uintptr_t)iovas,
	};

	return ioctl(fd, VFIO_MIG_CTL_LAND, &la) ? -errno : 0;
}

static int landed(int fd, uint64_t *bytes, uint64_t *sums)
{
	struct vfio_mig_ctl_landed ld = { .argsz = sizeof(ld),
					  .sums = (uintptr_t)sums };

	if (ioctl(fd, VFIO_MIG_CTL_LANDED, &ld))
		return -errno;
	*bytes = ld.bytes;
	return 0;
}

/* @len bytes from socket @sock through a pipe into @fd; 0 or -errno. */
static int splice_in(int sock, int fd, size_t len)
{
	int pfd[2], ret = 0;
	ssize_t r, w;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	while (len && !ret) {
		r = splice(sock, NULL, pfd[1], NULL, len, SPLICE_F_MOVE);
		if (r <= 0) {
			ret = r ? -errno : -EIO;
			break;
		}
		len -= r;
		while (r > 0) {
			w = splice(pfd[0], NULL, fd, NULL, r, SPLICE_F_MOVE);
			if (w <= 0) {
				ret = w ? -errno : -EIO;
				break;
			}
			r -= w;
		}
	}
	close(pfd[0]);
	close(pfd[1]);
	return ret;
}

/*
 * A control fd has at most VFIO_MIG_CTL_STAGE_FDS_MAX staging fds open
 * (ENOSPC past that); closing one makes room for one, and closing all of
 * them gives the whole count back, each time.
 */
TEST_F(ctl, staging_fds_bounded)
{
	int fds[VFIO_MIG_CTL_STAGE_FDS_MAX], round, i;

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < VFIO_MIG_CTL_STAGE_FDS_MAX; i++) {
			fds[i] = stage_fd(self->ctl);
			ASSERT_LE(0, fds[i]) TH_LOG("round %d, fd %d: %s",
						    round, i, strerror(-fds[i]));
		}
		EXPECT_EQ(-ENOSPC, stage_fd(self->ctl));
		EXPECT_EQ(-ENOSPC, stage_fd(self->ctl));
		close(fds[7]);
		fds[7] = stage_fd(self->ctl);
		EXPECT_LE(0, fds[7]);
		EXPECT_EQ(-ENOSPC, stage_fd(self->ctl));
		for (i = 0; i < VFIO_MIG_CTL_STAGE_FDS_MAX; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
}

TEST_F(ctl, landed_pages_as_written)
{
	static uint8_t data[VFIO_MIG_CTL_PAGES_MAX * MIG_PAGE];
	uint64_t iovas[VFIO_MIG_CTL_PAGES_MAX], sums[VFIO_MIG_CTL_PAGES_MAX];
	uint64_t bytes = 0;
	uint32_t i, n = 64;
	uint8_t want[MIG_PAGE];
	int sfd, socks[2], ret;

	for (i = 0; i < RAM_PAGES; i++)
		pattern(mig_host(&self->a, RAM_IOVA + i * MIG_PAGE), i, 5);
	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	sfd = stage_fd(self->ctl);
	ASSERT_LE(0, sfd);

	/* unarmed: nothing lands */
	EXPECT_EQ(-1, write(sfd, data, MIG_PAGE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-EINVAL, landed(sfd, &bytes, NULL));

	/* runs of IOVAs and single pages, out of order: pages 100-131, then 7, 50-80 */
	for (i = 0; i < n; i++)
		iovas[i] = RAM_IOVA + (i < 32 ? 100 + i : i == 32 ? 7 : 18 + i) *
			   (uint64_t)MIG_PAGE;
	for (i = 0; i < n; i++)
		pattern(data + (size_t)i * MIG_PAGE, i, 66);

	/* from a TCP socket through a pipe, with the block hashes */
	ASSERT_EQ(0, land(sfd, iovas, n, true));
	ASSERT_EQ(0, tb_tcp_pair(socks));
	ASSERT_EQ((ssize_t)n * MIG_PAGE,
		  send(socks[0], data, (size_t)n * MIG_PAGE, 0));
	ret = splice_in(socks[1], sfd, (size_t)n * MIG_PAGE);
	ASSERT_EQ(0, ret) TH_LOG("splice: %s", strerror(-ret));
	ASSERT_EQ(0, landed(sfd, &bytes, sums));
	EXPECT_EQ((uint64_t)n * MIG_PAGE, bytes);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(0, memcmp(data + (size_t)i * MIG_PAGE,
				    mig_host(&self->a, iovas[i]), MIG_PAGE))
			TH_LOG("page %u did not land", i);
		EXPECT_EQ(mh_hash64(data + (size_t)i * MIG_PAGE, MIG_PAGE,
				    MH_SEED_PAGE), sums[i])
			TH_LOG("page %u's block hash", i);
	}
	pattern(want, 99, 5);	/* and nothing around them */
	EXPECT_EQ(0, memcmp(want, mig_host(&self->a, RAM_IOVA + 99 * MIG_PAGE),
			    MIG_PAGE));
	/* past the armed pages */
	EXPECT_EQ(-1, write(sfd, data, 1));
	EXPECT_EQ(ENOSPC, errno);

	/* by write(), in odd pieces, from the caller's memory */
	for (i = 0; i < 3; i++)
		pattern(data + (size_t)i * MIG_PAGE, i, 67);
	ASSERT_EQ(0, land(sfd, iovas + 40, 3, true));
	EXPECT_EQ(1000, write(sfd, data, 1000));
	EXPECT_EQ(3 * MIG_PAGE - 1000, write(sfd, data + 1000,
					      3 * MIG_PAGE));
	ASSERT_EQ(0, landed(sfd, &bytes, sums));
	EXPECT_EQ(3 * MIG_PAGE, bytes);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(0, memcmp(data + (size_t)i * MIG_PAGE,
				    mig_host(&self->a, iovas[40 + i]), MIG_PAGE));
		EXPECT_EQ(mh_hash64(data + (size_t)i * MIG_PAGE, MIG_PAGE,
				    MH_SEED_PAGE), sums[i]);
	}

	/* an IOVA not mapped: the pages before it land, the write stops */
	iovas[0] = RAM_IOVA + 3 * MIG_PAGE;
	iovas[1] = RAM_IOVA + RAM_SIZE + 16 * MIG_PAGE;
	ASSERT_EQ(0, land(sfd, iovas, 2, false));
	EXPECT_EQ(MIG_PAGE, write(sfd, data, 2 * MIG_PAGE));
	EXPECT_EQ(-1, write(sfd, data, MIG_PAGE));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, landed(sfd, &bytes, NULL));
	EXPECT_EQ(MIG_PAGE, bytes);

	/* bad arguments */
	iovas[1] = RAM_IOVA + 100;
	EXPECT_EQ(-EINVAL, land(sfd, iovas, 2, false));
	EXPECT_EQ(-E2BIG, land(sfd, iovas, VFIO_MIG_CTL_PAGES_MAX + 1, false));
	/* arguments refused disarm the fd, as any landing call does */
	iovas[1] = RAM_IOVA;
	ASSERT_EQ(0, land(sfd, iovas, 2, false));
	EXPECT_EQ(-E2BIG, land(sfd, iovas, VFIO_MIG_CTL_PAGES_MAX + 1, false));
	EXPECT_EQ(-1, write(sfd, data, 1))
		TH_LOG("a landing refused for its count left the fd armed");
	EXPECT_EQ(EINVAL, errno);
	{
		struct vfio_mig_ctl_land la = { .argsz = sizeof(la),
						.flags = 2 };

		EXPECT_EQ(-1, ioctl(sfd, VFIO_MIG_CTL_LAND, &la));
		EXPECT_EQ(EINVAL, errno);
	}
	/* once the VMM closed the device */
	iovas[1] = RAM_IOVA;
	ASSERT_EQ(0, land(sfd, iovas, 2, false));
	mig_side_close(&self->a);
	EXPECT_EQ(-1, write(sfd, data, MIG_PAGE));
	EXPECT_EQ(ENODEV, errno);
	close(socks[0]);
	close(socks[1]);
	close(sfd);
}

/*
 * The RAM the VMM names in its ack of prepare bounds the controller's page
 * writes until the next phase: a P2P window it mapped is not written.
 */
TEST_F(ctl, named_ram_bounds_page_writes)
{
	static struct lm_ram many[65];
	struct lm_ram half = { RAM_IOVA, RAM_SIZE / 2 };
	uint8_t data[2 * MIG_PAGE], want[MIG_PAGE];
	uint64_t iovas[2];
	struct lm_event r, ev;
	uint32_t count, i;
	int ret;

	for (i = 0; i < RAM_PAGES; i++)
		pattern(mig_host(&self->a, RAM_IOVA + i * MIG_PAGE), i, 1);
	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);

	/* RAM belongs to prepare's ack; it must be sane and bounded */
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_BEGIN,
			      &r));
	EXPECT_EQ(-EINVAL, nl_ack_ram(&self->nl, self->bdf,
				      VFIO_MIG_MIG_PHASE_BEGIN, r.seq, 0, &half, 1));
	EXPECT_NE(0, self->nl.err[0]);
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_PREPARE,
			      &r));
	half.iova += 1;
	EXPECT_EQ(-EINVAL, nl_ack_ram(&self->nl, self->bdf,
				      VFIO_MIG_MIG_PHASE_PREPARE, r.seq, 0, &half, 1));
	half.iova -= 1;
	for (i = 0; i < 65; i++)
		many[i] = (struct lm_ram){ RAM_IOVA + i * MIG_PAGE, MIG_PAGE };
	EXPECT_EQ(-E2BIG, nl_ack_ram(&self->nl, self->bdf,
				     VFIO_MIG_MIG_PHASE_PREPARE, r.seq, 0, many, 65));
	/* the failed acks left the phase pending */
	ASSERT_EQ(0, nl_ack_ram(&self->nl, self->bdf,
				VFIO_MIG_MIG_PHASE_PREPARE, r.seq, 0, &half, 1))
		TH_LOG("%s", self->nl.err);
	do {
		ASSERT_EQ(0, ev_wait(&self->mev, VFIO_MIG_CMD_MIG_ACK_NTF,
				     self->bdf, &ev, EV_TIMEOUT_MS));
	} while (ev.seq != r.seq);
	EXPECT_EQ(1, ev.nr_ram);

	/* inside: written */
	iovas[0] = RAM_IOVA + 3 * MIG_PAGE;
	pattern(data, 3, 42);
	ASSERT_EQ(0, ctl_pages(self->ctl, true, iovas, 1, data, &count));
	pattern(want, 3, 42);
	EXPECT_EQ(0, memcmp(want, mig_host(&self->a, iovas[0]), MIG_PAGE));
	/* one page outside (mapped, not named): nothing of the call written */
	iovas[0] = RAM_IOVA + 4 * MIG_PAGE;
	iovas[1] = RAM_IOVA + RAM_SIZE / 2;
	pattern(data, 4, 43);
	pattern(data + MIG_PAGE, 128, 43);
	ret = ctl_pages(self->ctl, true, iovas, 2, data, &count);
	EXPECT_EQ(-EACCES, ret) TH_LOG("%s", strerror(-ret));
	EXPECT_EQ(0, count);
	pattern(want, 4, 1);
	EXPECT_EQ(0, memcmp(want, mig_host(&self->a, iovas[0]), MIG_PAGE));
	pattern(want, RAM_PAGES / 2, 1);
	EXPECT_EQ(0, memcmp(want, mig_host(&self->a, iovas[1]), MIG_PAGE));
	/* reads are not bounded by it */
	EXPECT_EQ(0, ctl_pages(self->ctl, false, iovas + 1, 1, data, NULL));

	/* the next phase drops it */
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_ABORT,
			      &r));
	pattern(data, RAM_PAGES / 2, 44);
	EXPECT_EQ(0, ctl_pages(self->ctl, true, iovas + 1, 1, data, NULL));
	pattern(want, RAM_PAGES / 2, 44);
	EXPECT_EQ(0, memcmp(want, mig_host(&self->a, iovas[1]), MIG_PAGE));
}

TEST_F(ctl, state_set_get)
{
	uint32_t st;

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP,
			     &self->data_fd));
	EXPECT_EQ(-1, self->data_fd);
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP, state_of(&self->a));
	ASSERT_EQ(0, ctl_get(self->ctl, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP, st);
	/* as the VFIO feature: no way to ERROR or beyond the last state */
	EXPECT_EQ(-EINVAL, ctl_set(self->ctl, VFIO_DEVICE_STATE_ERROR, NULL));
	EXPECT_EQ(-EINVAL, ctl_set(self->ctl, 100, NULL));
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP, state_of(&self->a));
	/* the VMM's changes show through the control fd */
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING_P2P,
				   NULL));
	ASSERT_EQ(0, ctl_get(self->ctl, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING_P2P, st);
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_RUNNING, NULL));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
	EXPECT_EQ(0x12345678u, ~edu_liveness(&self->ea, 0x12345678));
}

/* Bring edu @e to a state worth migrating; its registers after. */
static void make_state(struct __test_metadata *_metadata, struct edu *e,
		       struct mig_side *s, uint64_t seed, struct edu_regs *r)
{
	struct edu_wl w;
	uint32_t f;

	edu_wl_init(&w, e, &s->ram, seed);
	ASSERT_EQ(0, edu_wl_fill(&w));
	edu_liveness(e, (uint32_t)seed);
	ASSERT_EQ(0, edu_factorial(e, 7, &f, 5000));
	edu_regs_read(e, r);
}

TEST_F(ctl, state_stop_copy_resumes_b)
{
	static uint8_t bufa[EDU_BUF_SIZE], bufb[EDU_BUF_SIZE];
	struct mig_buf stream = {};
	struct edu_regs ra, rb;
	int fd_b = -1, ret;
	ssize_t n;

	ASSERT_EQ(0, mig_side_open(&self->b, self->t.edu[1], "sparse",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, edu_probe(&self->eb, &self->b.d, false));
	make_state(_metadata, &self->ea, &self->a, 0x5eed, &ra);

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	ret = ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP_COPY, &self->data_fd);
	ASSERT_EQ(0, ret) TH_LOG("STOP_COPY: %s", strerror(-ret));
	ASSERT_LE(0, self->data_fd);
	EXPECT_EQ(FD_CLOEXEC, fcntl(self->data_fd, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP_COPY, state_of(&self->a));
	n = mig_read_stop_copy(self->data_fd, &stream);
	ASSERT_LT(0, n) TH_LOG("stream: %s", strerror(-n));
	TH_LOG("STOP_COPY stream through the control fd: %zd bytes", n);
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP, NULL));
	close(self->data_fd);
	self->data_fd = -1;

	/* B resumes it, through the VMM's own fd */
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RESUMING,
				   &fd_b));
	ASSERT_EQ(0, mig_write_stream(fd_b, stream.data, stream.len, 4096));
	ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL);
	EXPECT_EQ(0, ret) TH_LOG("B: RESUMING -> STOP: %s", strerror(-ret));
	close(fd_b);
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	edu_regs_read(&self->eb, &rb);
	EXPECT_EQ(ra.liveness, rb.liveness);
	EXPECT_EQ(ra.factorial, rb.factorial);
	EXPECT_EQ(ra.dma_src, rb.dma_src);
	EXPECT_EQ(ra.dma_dst, rb.dma_dst);
	EXPECT_EQ(ra.dma_count, rb.dma_count);

	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, rs_edu_read_buffer(&self->ea, PEEK_IOVA,
					mig_host(&self->a, PEEK_IOVA), bufa));
	ASSERT_EQ(0, rs_edu_read_buffer(&self->eb, PEEK_IOVA,
					mig_host(&self->b, PEEK_IOVA), bufb));
	EXPECT_EQ(0, memcmp(bufa, bufb, EDU_BUF_SIZE - 1))
		TH_LOG("B's buffer differs from A's");
	mig_buf_free(&stream);
}

TEST_F(ctl, vmm_close_ends_attachment)
{
	uint64_t iova = RAM_IOVA;
	uint8_t page[MIG_PAGE];
	uint32_t st;
	int fd2;

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP_COPY,
			     &self->data_fd));
	/* the VMM goes, mid-session */
	ASSERT_EQ(0, vmm_fd_close(&self->a.d));
	EXPECT_EQ(-ENODEV, ctl_get(self->ctl, &st));
	EXPECT_EQ(-ENODEV, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP, NULL));
	EXPECT_EQ(-ENODEV, ctl_pages(self->ctl, false, &iova, 1, page, NULL));
	EXPECT_EQ(-ENODEV, ctl_commit(self->ctl, 0));
	EXPECT_EQ(-ENODEV, ctl_attach(self->ctl, self->bdf));
	EXPECT_EQ(-1, read(self->data_fd, page, sizeof(page)));
	EXPECT_EQ(ENODEV, errno);

	/* a new VMM session: RUNNING, and a new controller may attach */
	ASSERT_EQ(0, vmm_fd_open(&self->a.d));
	ASSERT_EQ(0, edu_probe(&self->ea, &self->a.d, false));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
	EXPECT_EQ(-ENODEV, ctl_get(self->ctl, &st));
	fd2 = ctl_new(self->bdf);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, ctl_pages(fd2, false, &iova, 1, page, NULL));
	close(self->ctl);	/* the dead fd goes: fd2 keeps the device */
	self->ctl = fd2;
	EXPECT_EQ(0, ctl_get(self->ctl, &st));
}

TEST_F(ctl, rollback_from_each_state)
{
	uint32_t states[] = {
		VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_STOP,
		VFIO_DEVICE_STATE_STOP_COPY, VFIO_DEVICE_STATE_PRE_COPY,
		VFIO_DEVICE_STATE_PRE_COPY_P2P,
	};
	unsigned int i;
	int fd, ret;

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		if (states[i] >= VFIO_DEVICE_STATE_PRE_COPY &&
		    !(self->flags & VFIO_MIGRATION_PRE_COPY))
			continue;
		fd = ctl_new(self->bdf);
		ASSERT_LE(0, fd);
		ret = ctl_set(fd, states[i], NULL);
		ASSERT_EQ(0, ret) TH_LOG("to %s: %s",
					 mig_state_name(states[i]),
					 strerror(-ret));
		EXPECT_EQ((int)states[i], state_of(&self->a));
		close(fd);
		EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a))
			TH_LOG("after a controller left %s",
			       mig_state_name(states[i]));
	}
	EXPECT_EQ(0xabcdu, ~edu_liveness(&self->ea, 0xabcd));
}

/*
 * A controller that moved nothing leaves the state the VMM set: a paused
 * VM's STOP stays STOP after a controller attached, read the state and a
 * page, tried a state the device refuses, and closed its fd.
 */
TEST_F(ctl, rollback_only_what_the_controller_moved)
{
	static uint8_t page[4096] __attribute__((aligned(4096)));
	uint64_t iova = RAM_IOVA;
	uint32_t st;
	int fd;

	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP, NULL));
	fd = ctl_new(self->bdf);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ctl_get(fd, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP, st);
	EXPECT_EQ(0, ctl_pages(fd, false, &iova, 1, page, NULL));
	EXPECT_EQ(-EINVAL, ctl_set(fd, VFIO_DEVICE_STATE_ERROR, NULL));
	close(fd);
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP, state_of(&self->a))
		TH_LOG("a controller that moved nothing rolled the device back");
	/* one that moved it is rolled back, from where it left it */
	fd = ctl_new(self->bdf);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ctl_set(fd, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	close(fd);
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
	EXPECT_EQ(0xabcdu, ~edu_liveness(&self->ea, 0xabcd));
}

TEST_F(ctl, rollback_stop_copy_aborts)
{
	static uint8_t buf[EDU_BUF_SIZE];
	struct lm_event begin, ev;
	uint8_t byte;

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_BEGIN,
			      &begin)) TH_LOG("%s", self->nl.err);
	ASSERT_EQ(0, ev_wait(&self->mev, VFIO_MIG_CMD_MIG_PHASE_NTF, self->bdf,
			     &ev, EV_TIMEOUT_MS));
	EXPECT_EQ(begin.seq, ev.seq);
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP_COPY,
			     &self->data_fd));
	ASSERT_LE(0, self->data_fd);

	/* migctl dies */
	close(self->ctl);
	self->ctl = -1;
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
	ASSERT_EQ(0, ev_wait(&self->mev, VFIO_MIG_CMD_MIG_PHASE_NTF, self->bdf,
			     &ev, EV_TIMEOUT_MS));
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_ABORT, ev.phase);
	EXPECT_LT(begin.seq, ev.seq);
	/* the VMM acks the kernel's abort (no controller attached now) */
	EXPECT_EQ(0, nl_ack(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_ABORT,
			    ev.seq, 0)) TH_LOG("%s", self->nl.err);
	/* the dropped stream is gone, the device works */
	EXPECT_EQ(-1, read(self->data_fd, &byte, 1));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(0x4321u, ~edu_liveness(&self->ea, 0x4321));
	EXPECT_EQ(0, rs_edu_read_buffer(&self->ea, PEEK_IOVA,
					mig_host(&self->a, PEEK_IOVA), buf));
}

TEST_F(ctl, rollback_resuming_unapplied)
{
	struct mig_buf stream = {};
	struct edu_regs ra, rb, rb2;
	int fd_a = -1, fd_b = -1;
	uint32_t st;

	ASSERT_EQ(0, mig_side_open(&self->b, self->t.edu[1], "sparse",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, edu_probe(&self->eb, &self->b.d, false));
	make_state(_metadata, &self->ea, &self->a, 0xa, &ra);
	edu_liveness(&self->eb, 0xb0b0);
	edu_regs_read(&self->eb, &rb);
	ASSERT_NE(ra.liveness, rb.liveness);

	/* A's stream, through the VMM */
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   &fd_a));
	ASSERT_LT(0, mig_read_stop_copy(fd_a, &stream));
	close(fd_a);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));

	/* half of it to B through a controller, which then dies */
	self->ctl = ctl_new(self->t.edu[1]);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_RESUMING, &fd_b));
	ASSERT_LE(0, fd_b);
	ASSERT_EQ(0, ctl_get(self->ctl, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_RESUMING, st);
	ASSERT_EQ(0, mig_write_stream(fd_b, stream.data, stream.len / 2,
				      4096));
	close(self->ctl);
	self->ctl = -1;
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->b));
	EXPECT_EQ(-1, write(fd_b, stream.data + stream.len / 2, 1));
	EXPECT_EQ(ENODEV, errno);
	close(fd_b);
	edu_regs_read(&self->eb, &rb2);
	EXPECT_EQ(rb.liveness, rb2.liveness) TH_LOG("A's state reached B");
	EXPECT_EQ(0x77u, ~edu_liveness(&self->eb, 0x77));
	mig_buf_free(&stream);
}

TEST_F(ctl, commit_keeps_state)
{
	struct lm_event ph, ev;

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_PREPARE,
			      &ph));
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP, NULL));
	EXPECT_EQ(-EINVAL, ctl_commit(self->ctl, 1u << 5));
	ASSERT_EQ(0, ctl_commit(self->ctl, 0));
	close(self->ctl);
	self->ctl = -1;
	/* no rollback, no abort */
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP, state_of(&self->a));
	ASSERT_EQ(0, ev_wait(&self->mev, VFIO_MIG_CMD_MIG_PHASE_NTF, self->bdf,
			     &ev, EV_TIMEOUT_MS));
	EXPECT_EQ(ph.seq, ev.seq);
	EXPECT_EQ(-ETIMEDOUT, ev_wait(&self->mev, VFIO_MIG_CMD_MIG_PHASE_NTF,
				      self->bdf, &ev, 1000))
		TH_LOG("phase %u seq %u after a commit", ev.phase, ev.seq);
	/* a plain commit binds nobody: the VMM runs it again */
	EXPECT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
}

TEST_F(ctl, commit_stopped_blocks_running)
{
	struct vfio_pci_hot_reset hot = { .argsz = sizeof(hot) };
	int ret;

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	/* only in STOP */
	EXPECT_EQ(-EINVAL, ctl_commit(self->ctl, VFIO_MIG_CTL_COMMIT_STOPPED));
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, ctl_commit(self->ctl, VFIO_MIG_CTL_COMMIT_STOPPED));

	EXPECT_EQ(-EPERM, ctl_set(self->ctl, VFIO_DEVICE_STATE_RUNNING, NULL));
	EXPECT_EQ(-EPERM, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP_COPY,
				  NULL));
	EXPECT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP, NULL));
	ret = mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING, NULL);
	EXPECT_EQ(-EPERM, ret) TH_LOG("VMM to RUNNING: %s", strerror(-ret));
	ret = mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING_P2P, NULL);
	EXPECT_EQ(-EPERM, ret);
	EXPECT_EQ(-1, ioctl(self->a.d.fd, VFIO_DEVICE_RESET));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ioctl(self->a.d.fd, VFIO_DEVICE_PCI_HOT_RESET, &hot));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP, state_of(&self->a));

	/* the controller goes: still STOP */
	close(self->ctl);
	self->ctl = -1;
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP, state_of(&self->a));
	EXPECT_EQ(-EPERM, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
					NULL));

	/* until the VMM closes the device */
	ASSERT_EQ(0, vmm_reopen(&self->a.d));
	ASSERT_EQ(0, edu_probe(&self->ea, &self->a.d, false));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
	EXPECT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP, NULL));
	EXPECT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	EXPECT_EQ(0x99u, ~edu_liveness(&self->ea, 0x99));
}

/*
 * The resets a variant driver cannot refuse: a hot reset through another
 * device of the slot or bus, an FLR written in config space, sysfs
 * "reset". The test bed's edus (conventional PCI on the root bus) have no
 * FLR and no bus reset, so the test sends what each of them ends in, the
 * PCI core's reset_done notification (debugfs "reset-done", test builds):
 * the committed source stays in STOP and a DMA start does not run.
 */
TEST_F(ctl, commit_stopped_survives_other_resets)
{
	uint8_t *ram = mig_host(&self->a, RAM_IOVA);
	unsigned int i, changed = 0;

	/* the device buffer holds 0xc3s, RAM 0x5as */
	memset(ram, 0xc3, 256);
	ASSERT_EQ(0, edu_dma(&self->ea, false, RAM_IOVA, 0, 256, false, 5000));
	memset(ram, 0x5a, 256);

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, ctl_commit(self->ctl, VFIO_MIG_CTL_COMMIT_STOPPED));

	ASSERT_EQ(0, rs_ctl(self->bdf, "reset-done"));
	usleep(200000);		/* the reset work has run */
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP, state_of(&self->a));
	EXPECT_EQ(-EPERM, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
					NULL));

	/* a start is held, not run */
	ASSERT_EQ(0, edu_dma_start(&self->ea, true, RAM_IOVA, 0, 256, false));
	usleep(500000);
	for (i = 0; i < 256; i++)
		changed += ram[i] != 0x5a;
	EXPECT_EQ(0, changed) TH_LOG("the device ran a DMA after the reset");
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP, state_of(&self->a));
}

TEST_F(ctl, phase_ack_relay)
{
	struct lm_event r1, r2, ev;

	/* no controller, no phase */
	EXPECT_EQ(-ENOTCONN, nl_phase(&self->nl, self->bdf,
				      VFIO_MIG_MIG_PHASE_BEGIN, NULL));
	EXPECT_NE(0, self->nl.err[0]);
	EXPECT_EQ(-ENODEV, nl_phase(&self->nl, "0000:7f:1f.7",
				    VFIO_MIG_MIG_PHASE_BEGIN, NULL));
	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	/* the policy: phases are 1..6 */
	EXPECT_EQ(-ERANGE, nl_phase(&self->nl, self->bdf, 0, NULL));
	EXPECT_EQ(-ERANGE, nl_phase(&self->nl, self->bdf, 7, NULL));

	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_BEGIN,
			      &r1)) TH_LOG("%s", self->nl.err);
	EXPECT_STREQ(self->bdf, r1.bdf);
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_BEGIN, r1.phase);
	EXPECT_NE(0, r1.seq);
	ASSERT_EQ(0, ev_wait(&self->mev, VFIO_MIG_CMD_MIG_PHASE_NTF, self->bdf,
			     &ev, EV_TIMEOUT_MS));
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_BEGIN, ev.phase);
	EXPECT_EQ(r1.seq, ev.seq);

	/* wrong seq, wrong phase: ESTALE with a reason */
	EXPECT_EQ(-ESTALE, nl_ack(&self->nl, self->bdf,
				  VFIO_MIG_MIG_PHASE_BEGIN, r1.seq + 1, 0));
	EXPECT_NE(0, self->nl.err[0]);
	EXPECT_EQ(-ESTALE, nl_ack(&self->nl, self->bdf,
				  VFIO_MIG_MIG_PHASE_PAUSE, r1.seq, 0));
	EXPECT_EQ(-ERANGE, nl_ack(&self->nl, self->bdf,
				  VFIO_MIG_MIG_PHASE_BEGIN, r1.seq, 4096));
	ASSERT_EQ(0, nl_ack(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_BEGIN,
			    r1.seq, 0)) TH_LOG("%s", self->nl.err);
	ASSERT_EQ(0, ev_wait(&self->mev, VFIO_MIG_CMD_MIG_ACK_NTF, self->bdf,
			     &ev, EV_TIMEOUT_MS));
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_BEGIN, ev.phase);
	EXPECT_EQ(r1.seq, ev.seq);
	EXPECT_TRUE(ev.has_result);
	EXPECT_EQ(0, ev.result);
	/* acked: nothing pending */
	EXPECT_EQ(-ESTALE, nl_ack(&self->nl, self->bdf,
				  VFIO_MIG_MIG_PHASE_BEGIN, r1.seq, 0));

	/* a new phase replaces a pending one */
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_PAUSE,
			      &r1));
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_PAUSE,
			      &r2));
	EXPECT_LT(r1.seq, r2.seq);
	EXPECT_EQ(-ESTALE, nl_ack(&self->nl, self->bdf,
				  VFIO_MIG_MIG_PHASE_PAUSE, r1.seq, 0));
	ASSERT_EQ(0, nl_ack(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_PAUSE,
			    r2.seq, ENOMEM));
	ASSERT_EQ(0, ev_wait(&self->mev, VFIO_MIG_CMD_MIG_ACK_NTF, self->bdf,
			     &ev, EV_TIMEOUT_MS));
	EXPECT_EQ(r2.seq, ev.seq);
	EXPECT_EQ(ENOMEM, ev.result);

	/* the controller leaves after "pause": the kernel says abort */
	close(self->ctl);
	self->ctl = -1;
	do {
		ASSERT_EQ(0, ev_wait(&self->mev, VFIO_MIG_CMD_MIG_PHASE_NTF,
				     self->bdf, &ev, EV_TIMEOUT_MS));
	} while (ev.seq <= r2.seq);
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_ABORT, ev.phase);
	EXPECT_EQ(r2.seq + 1, ev.seq);
	EXPECT_EQ(-ENOTCONN, nl_phase(&self->nl, self->bdf,
				      VFIO_MIG_MIG_PHASE_BEGIN, NULL));
}

/* Bits of the dirty report, as page numbers from RAM_IOVA; count. */
static int dirty_pages(struct mig_dirty *l, int *pages, int max)
{
	uint64_t bits[RAM_PAGES / 64] = {};
	int i, n = 0, ret;

	ret = mig_dirty_report(l, bits);
	if (ret)
		return ret;
	for (i = 0; i < (int)RAM_PAGES; i++)
		if (mig_test_bit(bits, i) && n < max)
			pages[n++] = i;
	return n;
}

/* VFIO DMA_LOGGING_REPORT of [@iova, @iova + @len) at 4 KiB into @bits. */
static int vfio_report(struct vmm_dev *d, uint64_t iova, uint64_t len,
		       uint64_t *bits)
{
	struct vfio_device_feature_dma_logging_report rep = {
		.iova = iova, .length = len, .page_size = MIG_PAGE,
		.bitmap = (uintptr_t)bits,
	};

	return mig_feature(d, VFIO_DEVICE_FEATURE_GET |
			   VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &rep,
			   sizeof(rep));
}

/*
 * A VMM that logs at 64 KiB and reports at 4 KiB, in windows that split a
 * 64 KiB log page (as iova_bitmap's chunks may): a write in the page's
 * second half is reported by the window that holds it, not lost to the
 * first window's clearing of the whole log page.
 */
TEST_F(ctl, vfio_report_finer_than_the_log)
{
	struct vfio_device_feature_dma_logging_range range = {
		.iova = RAM_IOVA, .length = RAM_SIZE,
	};
	struct vfio_device_feature_dma_logging_control lc = {
		.page_size = 0x10000, .num_ranges = 1,
		.ranges = (uintptr_t)&range,
	};
	uint64_t r[2] = { RAM_IOVA + 0xa000, MIG_PAGE };	/* page 10 */
	uint64_t lo = 0, hi = 0, all = 0;
	int ret;

	ret = mig_feature(&self->a.d, VFIO_DEVICE_FEATURE_SET |
			  VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &lc,
			  sizeof(lc));
	if (ret == -ENOTTY || ret == -EOPNOTSUPP)
		SKIP(return, "no VFIO DMA logging on this kernel (no iova_bitmap)");
	ASSERT_EQ(0, ret) TH_LOG("DMA_LOGGING_START: %s", strerror(-ret));
	ASSERT_EQ(0x10000u, lc.page_size);
	ASSERT_EQ(0, vfio_report(&self->a.d, RAM_IOVA, RAM_SIZE, &all));
	ret = nl_mark(&self->nl, self->bdf, r, 1);
	ASSERT_EQ(0, ret) TH_LOG("dirty-mark: %s", self->nl.err);
	ASSERT_EQ(0, vfio_report(&self->a.d, RAM_IOVA, 0x8000, &lo));
	ASSERT_EQ(0, vfio_report(&self->a.d, RAM_IOVA + 0x8000, 0x8000, &hi));
	/* each window gets its part of the dirty log page, in its own bits */
	EXPECT_EQ(0xffull, lo);
	EXPECT_EQ(0xffull, hi) TH_LOG("the page's second half was lost");
	EXPECT_EQ(0, mig_feature(&self->a.d, VFIO_DEVICE_FEATURE_SET |
				 VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0));
}

TEST_F(ctl, dirty_mark)
{
	uint64_t r[6];
	int pages[16], n, ret;

	/* no log: refused as dirty-get refuses it */
	r[0] = RAM_IOVA;
	r[1] = MIG_PAGE;
	EXPECT_EQ(-ENOENT, nl_mark(&self->nl, self->bdf, r, 1));
	EXPECT_NE(0, self->nl.err[0]);
	ret = mig_dirty_start(&self->log, &self->a.d, RAM_IOVA, RAM_SIZE,
			      true);
	ASSERT_EQ(0, ret) TH_LOG("dirty log: %s", self->log.err);
	n = dirty_pages(&self->log, pages, 16);	/* empty it */
	ASSERT_LE(0, n);

	r[0] = RAM_IOVA + 3 * MIG_PAGE;
	r[1] = MIG_PAGE;
	r[2] = RAM_IOVA + 10 * MIG_PAGE + 100;	/* pages 10 and 11 */
	r[3] = MIG_PAGE;
	r[4] = RAM_IOVA + RAM_SIZE - 1;		/* the last byte */
	r[5] = 1;
	ret = nl_mark(&self->nl, self->bdf, r, 3);
	ASSERT_EQ(0, ret) TH_LOG("dirty-mark: %s", self->nl.err);
	n = dirty_pages(&self->log, pages, 16);
	ASSERT_EQ(4, n);
	EXPECT_EQ(3, pages[0]);
	EXPECT_EQ(10, pages[1]);
	EXPECT_EQ(11, pages[2]);
	EXPECT_EQ((int)RAM_PAGES - 1, pages[3]);
	EXPECT_EQ(0, dirty_pages(&self->log, pages, 16));

	/* all or nothing: one range outside the log refuses the request */
	r[0] = RAM_IOVA + 20 * MIG_PAGE;
	r[1] = MIG_PAGE;
	r[2] = RAM_IOVA + RAM_SIZE - MIG_PAGE;	/* runs past the end */
	r[3] = 2 * MIG_PAGE;
	EXPECT_EQ(-ERANGE, nl_mark(&self->nl, self->bdf, r, 2));
	EXPECT_NE(0, self->nl.err[0]);
	r[2] = RAM_IOVA - MIG_PAGE;
	r[3] = MIG_PAGE;
	EXPECT_EQ(-ERANGE, nl_mark(&self->nl, self->bdf, r, 2));
	r[2] = RAM_IOVA;
	r[3] = 0;
	EXPECT_EQ(-EINVAL, nl_mark(&self->nl, self->bdf, r, 2));
	EXPECT_EQ(-EINVAL, nl_mark(&self->nl, self->bdf, r, 0));
	EXPECT_EQ(0, dirty_pages(&self->log, pages, 16));

	/* bounded: at most the log's size in one request */
	r[0] = RAM_IOVA;
	r[1] = RAM_SIZE;
	r[2] = RAM_IOVA;
	r[3] = RAM_SIZE;
	EXPECT_EQ(-E2BIG, nl_mark(&self->nl, self->bdf, r, 2));
	EXPECT_NE(NULL, strstr(self->nl.err, "more than"))
		TH_LOG("%s", self->nl.err);
	EXPECT_EQ(0, dirty_pages(&self->log, pages, 16));
	r[3] = RAM_SIZE - MIG_PAGE;
	r[2] = RAM_IOVA + MIG_PAGE;
	r[1] = MIG_PAGE;
	EXPECT_EQ(0, nl_mark(&self->nl, self->bdf, r, 2));
	EXPECT_EQ(16, dirty_pages(&self->log, pages, 16));

	ASSERT_EQ(0, mig_dirty_stop(&self->log));
	r[0] = RAM_IOVA;
	r[1] = MIG_PAGE;
	EXPECT_EQ(-ENOENT, nl_mark(&self->nl, self->bdf, r, 1));
}

#define WORKER_DELAY	"/sys/kernel/debug/vfio-mig/worker_delay_ms"

/*
 * A controller killed while its PAGES call waits for the kernel worker
 * leaves at once (the queued call is cancelled), not when the worker gets
 * to it; and the device serves the next controller.
 */
TEST_F(ctl, pages_wait_is_killable)
{
	static uint8_t data[MIG_PAGE];
	uint64_t iova = RAM_IOVA, t0, ms;
	int p[2], st, ret;
	pid_t pid;
	char c;

	ASSERT_EQ(0, vmm_sysfs_write(WORKER_DELAY, "5000"));
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd = ctl_new(self->bdf);

		close(p[0]);
		if (fd < 0)
			_exit(1);
		c = 1;
		if (write(p[1], &c, 1) != 1)
			_exit(2);
		ctl_pages(fd, false, &iova, 1, data, NULL);
		_exit(3);
	}
	close(p[1]);
	ret = read(p[0], &c, 1);
	close(p[0]);
	usleep(300000);		/* into the ioctl, its call queued */
	t0 = vmm_now_us();
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	ms = (vmm_now_us() - t0) / 1000;
	vmm_sysfs_write(WORKER_DELAY, "0");
	ASSERT_EQ(1, ret) TH_LOG("the child did not attach");
	EXPECT_TRUE(WIFSIGNALED(st));
	EXPECT_GT(2000, ms) TH_LOG("the killed caller took %llu ms to go",
				   (unsigned long long)ms);

	/* the cancelled call never runs; the next controller is served */
	usleep(5500000);
	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	ret = ctl_pages(self->ctl, false, &iova, 1, data, NULL);
	EXPECT_EQ(0, ret) TH_LOG("read: %s", strerror(-ret));
	EXPECT_EQ(0, memcmp(data, mig_host(&self->a, iova), MIG_PAGE));
}

struct stuck_pages {
	int fd;
	uint64_t *iovas;	/* in a userfaultfd range: the call faults */
	uint8_t *data;
	int ret;
};

static void *stuck_pages_main(void *arg)
{
	struct stuck_pages *sp = arg;

	sp->ret = ctl_pages(sp->fd, false, sp->iovas, 1, sp->data, NULL);
	return NULL;
}

static void *close_main(void *arg)
{
	mig_side_close(arg);
	return NULL;
}

/*
 * Once the caller's fault is resolved: the close thread @tc (unless it was
 * @closed) and the caller's @caller joined; the close did not wait.
 */
static void close_did_not_wait(struct __test_metadata *_metadata,
			       bool closed, pthread_t tc, pthread_t caller,
			       uint64_t ms)
{
	if (!closed)
		pthread_join(tc, NULL);
	pthread_join(caller, NULL);
	EXPECT_TRUE(closed) TH_LOG("the VMM's close waited for the caller's fault");
	EXPECT_GT(2000, ms) TH_LOG("close took %llu ms", (unsigned long long)ms);
}

/* Join @th if it ends within 3 s; *@ms: since @t0 (vmm_now_us()). */
static bool joined_within_3s(pthread_t th, uint64_t t0, uint64_t *ms)
{
	struct timespec until;
	bool joined;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 3;
	joined = !pthread_timedjoin_np(th, NULL, &until);
	*ms = (vmm_now_us() - t0) / 1000;
	return joined;
}

/*
 * A controller whose PAGES call faults on its own memory, for as long as
 * it likes (userfaultfd), does not hold up the VMM's close of the device:
 * the call touches the caller's memory outside the device's lock. Once
 * the fault is resolved the call finds the device gone (ENODEV).
 */
TEST_F(ctl, vmm_close_not_held_by_a_faulting_caller)
{
	static uint8_t data[MIG_PAGE] __attribute__((aligned(MIG_PAGE)));
	static uint64_t src[MIG_PAGE / 8] __attribute__((aligned(MIG_PAGE)));
	struct uffdio_copy cp = { 0 };
	struct stuck_pages sp = { .data = data, .ret = 1 };
	pthread_t tp, tc;
	uint64_t t0, ms;
	bool closed;
	void *mem;
	int uffd;

	uffd = tb_uffd_region(MIG_PAGE, &mem);
	if (uffd < 0)
		SKIP(return, "no userfaultfd: %s", strerror(-uffd));
	sp.iovas = mem;
	sp.fd = ctl_new(self->bdf);
	ASSERT_LE(0, sp.fd);
	ASSERT_EQ(0, pthread_create(&tp, NULL, stuck_pages_main, &sp));
	/* the call is in the kernel, faulting on its IOVA list */
	ASSERT_EQ(0, tb_uffd_next_fault(uffd, 5000));

	t0 = vmm_now_us();
	ASSERT_EQ(0, pthread_create(&tc, NULL, close_main, &self->a));
	closed = joined_within_3s(tc, t0, &ms);

	/* resolve the fault: the list names one page of the guest's RAM */
	src[0] = RAM_IOVA;
	cp.dst = (uintptr_t)sp.iovas;
	cp.src = (uintptr_t)src;
	cp.len = MIG_PAGE;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_COPY, &cp));
	close_did_not_wait(_metadata, closed, tc, tp, ms);
	EXPECT_EQ(-ENODEV, sp.ret) TH_LOG("PAGES after the close: %s",
					  strerror(-sp.ret));
	close(sp.fd);
	munmap(sp.iovas, MIG_PAGE);
	close(uffd);
}

/* A read or write of a data fd whose buffer faults until resolved. */
struct stuck_io {
	int fd;
	void *buf;
	bool write;
	ssize_t ret;
};

static void *stuck_io_main(void *arg)
{
	struct stuck_io *io = arg;

	io->ret = io->write ? write(io->fd, io->buf, MIG_PAGE) :
			      read(io->fd, io->buf, MIG_PAGE);
	if (io->ret < 0)
		io->ret = -errno;
	return NULL;
}

/*
 * A controller that reads (@state STOP_COPY) or writes (RESUMING) the data
 * fd it got into or from memory that faults for as long as it likes does
 * not hold up the VMM's close: the fd touches its caller's memory outside
 * the lock a close takes. Once the fault is resolved the call finds the
 * fd dropped (ENODEV).
 */
static void data_fd_stuck(struct __test_metadata *_metadata,
			  FIXTURE_DATA(ctl) *self, uint32_t state)
{
	struct stuck_io io = { .write = state == VFIO_DEVICE_STATE_RESUMING };
	struct uffdio_zeropage zp = { 0 };
	pthread_t tio, tc;
	uint64_t t0, ms;
	bool closed;
	int uffd;

	uffd = tb_uffd_region(MIG_PAGE, &io.buf);
	if (uffd < 0)
		SKIP(return, "no userfaultfd: %s", strerror(-uffd));
	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, ctl_set(self->ctl, state, &self->data_fd));
	ASSERT_LE(0, self->data_fd);
	io.fd = self->data_fd;
	ASSERT_EQ(0, pthread_create(&tio, NULL, stuck_io_main, &io));
	ASSERT_EQ(0, tb_uffd_next_fault(uffd, 5000));

	t0 = vmm_now_us();
	ASSERT_EQ(0, pthread_create(&tc, NULL, close_main, &self->a));
	closed = joined_within_3s(tc, t0, &ms);

	zp.range.start = (uintptr_t)io.buf;
	zp.range.len = MIG_PAGE;
	EXPECT_EQ(0, ioctl(uffd, UFFDIO_ZEROPAGE, &zp));
	close_did_not_wait(_metadata, closed, tc, tio, ms);
	EXPECT_EQ(-ENODEV, io.ret) TH_LOG("%s after the close: %zd",
					  io.write ? "write" : "read", io.ret);
	munmap(io.buf, MIG_PAGE);
	close(uffd);
}

TEST_F(ctl, vmm_close_not_held_by_a_faulting_data_fd_read)
{
	data_fd_stuck(_metadata, self, VFIO_DEVICE_STATE_STOP_COPY);
}

TEST_F(ctl, vmm_close_not_held_by_a_faulting_data_fd_write)
{
	data_fd_stuck(_metadata, self, VFIO_DEVICE_STATE_RESUMING);
}

static int gen_cb(const struct nlmsghdr *h, void *priv)
{
	const struct nlattr *tb[VFIO_MIG_A_DIRTY_MAX + 1];
	int64_t *gen = priv;

	genl_parse(h, tb, VFIO_MIG_A_DIRTY_MAX);
	if (!tb[VFIO_MIG_A_DIRTY_GENERATION])
		*gen = -2;
	else if (*gen == -1)
		*gen = *(const uint32_t *)genl_data(tb[VFIO_MIG_A_DIRTY_GENERATION]);
	return 0;
}

/* The dirty log's generation, from a whole-log dirty-get; or -errno. */
static int64_t dirty_gen(struct genl *g, const char *bdf)
{
	struct genl_msg *m = malloc(sizeof(*m));
	int64_t gen = -1;
	int ret;

	if (!m)
		return -ENOMEM;
	genl_msg_init(m, g, VFIO_MIG_CMD_DIRTY_GET, VFIO_MIG_FAMILY_VERSION, 0);
	genl_put_str(m, VFIO_MIG_A_DIRTY_BDF, bdf);
	ret = genl_dump(g, m, gen_cb, &gen);
	free(m);
	return ret ?: gen == -2 ? -EPROTO : gen;
}

/*
 * Every dirty-get reply carries the log's generation, one more at every
 * start, so that a reader sees a restart between two of its reads; and
 * with a migration controller attached the log can neither stop nor be
 * replaced.
 */
TEST_F(ctl, dirty_log_generation_and_controller)
{
	int64_t g1, g2;
	int ret;

	ret = mig_dirty_start(&self->log, &self->a.d, RAM_IOVA, RAM_SIZE,
			      true);
	ASSERT_EQ(0, ret) TH_LOG("dirty log: %s", self->log.err);
	g1 = dirty_gen(&self->nl, self->bdf);
	ASSERT_LE(0, g1) TH_LOG("dirty-get: %s", strerror((int)-g1));
	EXPECT_EQ(g1, dirty_gen(&self->nl, self->bdf));
	/* stopped and restarted alike: a new generation */
	ASSERT_EQ(0, mig_dirty_stop(&self->log));
	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, true));
	g2 = dirty_gen(&self->nl, self->bdf);
	EXPECT_EQ((uint32_t)(g1 + 1), g2);

	/* a controller attached: no stop, no second start */
	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl) TH_LOG("attach: %s", strerror(-self->ctl));
	EXPECT_EQ(-EBUSY, mig_dirty_kill(self->bdf));
	EXPECT_EQ(-EBUSY, nl_dirty_start(&self->nl, self->bdf));
	EXPECT_NE(NULL, strstr(self->nl.err, "controller"))
		TH_LOG("%s", self->nl.err);
	EXPECT_EQ(g2, dirty_gen(&self->nl, self->bdf));
	/* gone: the log stops */
	close(self->ctl);
	self->ctl = -1;
	EXPECT_EQ(0, mig_dirty_stop(&self->log));

	/*
	 * Once the controller's migration is over (ABORT announced, or
	 * committed), the VMM that started the log stops it although the
	 * controller is still attached: a log left running would keep the
	 * device's settings locked after the VMM is gone.
	 */
	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, true));
	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl) TH_LOG("attach: %s", strerror(-self->ctl));
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_BEGIN,
			      NULL));
	EXPECT_EQ(-EBUSY, mig_dirty_kill(self->bdf));
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_ABORT,
			      NULL));
	EXPECT_EQ(0, mig_dirty_stop(&self->log));
	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, true));
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_BEGIN,
			      NULL));
	EXPECT_EQ(-EBUSY, mig_dirty_kill(self->bdf));
	ASSERT_EQ(0, ctl_commit(self->ctl, 0));
	EXPECT_EQ(0, mig_dirty_stop(&self->log));
}

TEST_F(ctl, netns_events)
{
	struct lm_event ph, ev;
	int pfd[2], ret;
	char c = 0;
	pid_t pid;

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct genl g, st;

		child_drop_fds(self);
		close(pfd[0]);
		if (unshare(CLONE_NEWNET))
			_exit(10);
		/* the family, both groups, from the new namespace */
		if (ev_open(&g, VFIO_MIG_MCGRP_MIG))
			_exit(11);
		if (ev_open(&st, VFIO_MIG_MCGRP_EVENTS))
			_exit(12);
		if (write(pfd[1], "r", 1) != 1)
			_exit(13);
		if (ev_wait(&g, VFIO_MIG_CMD_MIG_PHASE_NTF, self->bdf, &ev,
			    EV_TIMEOUT_MS))
			_exit(2);
		/* the VMM acks from here */
		if (nl_ack(&g, self->bdf, ev.phase, ev.seq, 0))
			_exit(3);
		if (ev_wait(&st, VFIO_MIG_CMD_MIG_STATE_NTF, self->bdf, &ev,
			    EV_TIMEOUT_MS))
			_exit(4);
		_exit(ev.state == VFIO_DEVICE_STATE_STOP ? 0 : 5);
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1)) TH_LOG("the child did not start");
	close(pfd[0]);
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_BEGIN,
			      &ph));
	ret = ev_wait(&self->mev, VFIO_MIG_CMD_MIG_ACK_NTF, self->bdf, &ev,
		      EV_TIMEOUT_MS);
	EXPECT_EQ(0, ret) TH_LOG("no ack from the other namespace");
	EXPECT_EQ(ph.seq, ev.seq);
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP, NULL));
	EXPECT_EQ(0, child_wait(pid, 3 * EV_TIMEOUT_MS))
		TH_LOG("10-13: set-up, 2: no phase event, 3: ack failed, 4/5: no state event");
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_RUNNING, NULL));
}

struct racer {
	int fd;
	bool state;		/* toggle STOP/RUNNING, else read pages */
	unsigned long calls;
	int last;
};

static void *race_main(void *arg)
{
	uint8_t *data = malloc(64 * MIG_PAGE);
	uint64_t iovas[64];
	struct racer *r = arg;
	int i;

	if (!data) {
		r->last = -ENOMEM;
		return NULL;
	}
	for (i = 0; i < 64; i++)
		iovas[i] = RAM_IOVA + i * MIG_PAGE;
	for (;;) {
		if (r->state)
			r->last = ctl_set(r->fd, r->calls & 1 ?
					  VFIO_DEVICE_STATE_RUNNING :
					  VFIO_DEVICE_STATE_STOP, NULL);
		else
			r->last = ctl_pages(r->fd, false, iovas, 64, data,
					    NULL);
		if (r->last)
			break;
		r->calls++;
	}
	free(data);
	return NULL;
}

TEST_F(ctl, vmm_close_races_ioctls)
{
	struct racer pages = { .state = false }, state = { .state = true };
	pthread_t tp, ts;

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	pages.fd = state.fd = self->ctl;
	ASSERT_EQ(0, pthread_create(&tp, NULL, race_main, &pages));
	ASSERT_EQ(0, pthread_create(&ts, NULL, race_main, &state));
	usleep(300 * 1000);
	ASSERT_EQ(0, vmm_fd_close(&self->a.d));
	pthread_join(tp, NULL);
	pthread_join(ts, NULL);
	TH_LOG("%lu PAGES and %lu STATE calls before the close",
	       pages.calls, state.calls);
	EXPECT_LT(0, pages.calls);
	EXPECT_LT(0, state.calls);
	EXPECT_EQ(-ENODEV, pages.last);
	EXPECT_EQ(-ENODEV, state.last);

	ASSERT_EQ(0, vmm_fd_open(&self->a.d));
	ASSERT_EQ(0, edu_probe(&self->ea, &self->a.d, false));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
	EXPECT_EQ(0x31u, ~edu_liveness(&self->ea, 0x31));
}

TEST_F(ctl, unbind_after_vmm_close)
{
	struct lm_event begin, ev;
	uint32_t st;
	int ret;

	self->ctl = ctl_new(self->bdf);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, nl_phase(&self->nl, self->bdf, VFIO_MIG_MIG_PHASE_BEGIN,
			      &begin));
	ASSERT_EQ(0, ctl_set(self->ctl, VFIO_DEVICE_STATE_STOP, NULL));
	/* the VMM goes, then the device leaves vfio-mig */
	mig_side_close(&self->a);
	ret = vmm_unbind(self->bdf);
	ASSERT_EQ(0, ret) TH_LOG("unbind: %s", strerror(-ret));
	EXPECT_EQ(-ENODEV, ctl_get(self->ctl, &st));
	EXPECT_EQ(-ENODEV, ctl_attach(self->ctl, self->bdf));
	/* the fd's release: no device to roll back, the VMM is told */
	close(self->ctl);
	self->ctl = -1;
	do {
		ASSERT_EQ(0, ev_wait(&self->mev, VFIO_MIG_CMD_MIG_PHASE_NTF,
				     self->bdf, &ev, EV_TIMEOUT_MS));
	} while (ev.seq == begin.seq);
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_ABORT, ev.phase);
	/* bound again, the device works */
	ASSERT_EQ(0, vmm_bind(self->bdf, TB_DRIVER));
	ASSERT_EQ(0, mig_side_open(&self->a, self->bdf, "sparse", RAM_IOVA,
				   RAM_SIZE));
	ASSERT_EQ(0, edu_probe(&self->ea, &self->a.d, false));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
	self->ctl = ctl_new(self->bdf);
	EXPECT_LE(0, self->ctl);
}

/*
 * migctl is not the VMM: from a process without the VMM's mm, PAGES
 * moves the VMM's RAM and a stream written through the control fd
 * resumes B (its profile borrows a guest page of B's VMM to restore).
 */
TEST_F(ctl, foreign_process_resumes_b)
{
	struct mig_buf stream = {};
	struct edu_regs ra, rb;
	int fd_a = -1, status;
	pid_t pid;

	ASSERT_EQ(0, mig_side_open(&self->b, self->t.edu[1], "sparse",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, edu_probe(&self->eb, &self->b.d, false));
	make_state(_metadata, &self->ea, &self->a, 0xf0, &ra);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   &fd_a));
	ASSERT_LT(0, mig_read_stop_copy(fd_a, &stream));
	close(fd_a);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	pattern(mig_host(&self->b, RAM_IOVA + 9 * MIG_PAGE), 9, 3);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		uint64_t iova = RAM_IOVA + 9 * MIG_PAGE;
		uint8_t page[MIG_PAGE], want[MIG_PAGE];
		int fd, dfd = -1, ret;

		child_drop_fds(self);
		fd = ctl_new(self->t.edu[1]);
		if (fd < 0)
			_exit(10);
		if (ctl_pages(fd, false, &iova, 1, page, NULL))
			_exit(11);
		pattern(want, 9, 3);
		if (memcmp(page, want, MIG_PAGE))
			_exit(12);
		if (ctl_set(fd, VFIO_DEVICE_STATE_RESUMING, &dfd) || dfd < 0)
			_exit(13);
		if (mig_write_stream(dfd, stream.data, stream.len, 4096))
			_exit(14);
		ret = ctl_set(fd, VFIO_DEVICE_STATE_STOP, NULL);
		if (ret)
			_exit(ret == -EIO ? 15 : 16);
		close(dfd);
		if (ctl_set(fd, VFIO_DEVICE_STATE_RUNNING, NULL))
			_exit(17);
		if (ctl_commit(fd, 0))
			_exit(18);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("10: attach, 11/12: PAGES, 13/14: RESUMING, 15: EIO on RESUMING -> STOP, 16: other error, 17/18: RUNNING, commit");
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->b));
	edu_regs_read(&self->eb, &rb);
	EXPECT_EQ(ra.liveness, rb.liveness);
	EXPECT_EQ(ra.factorial, rb.factorial);
	mig_buf_free(&stream);
}

TEST_HARNESS_MAIN
