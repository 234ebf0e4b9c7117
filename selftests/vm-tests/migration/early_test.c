// SPDX-License-Identifier: GPL-2.0
/*
 * The device's slow state before the stop (VFIO_MIG_CTL_PREPARE, the
 * PROFILE_EARLY record): edu A's buffer, which only the device's own DMA
 * reaches (a 100 ms tick each time), is read in PRE_COPY while the guest
 * may run, and edu B loads it as the record arrives. The stop-copy data
 * then only refers to it, and neither A's stop-copy nor B's load runs a
 * transfer.
 *
 *  - prepare_refusals: every documented refusal (without PRE_COPY also
 *    EMFILE), DMA not held after one, and a refusal that does not wait
 *    for the guest's transfer in flight;
 *  - prepare_refused_in_trap_mode_none: no migration offered, no prepare;
 *  - config_write_waits_for_the_early_save: the guest turning bus
 *    mastering off amid the early read waits until the read is done, and
 *    the early buffer is still A's;
 *  - early_state_moves_before_the_stop: the record is in the pre-copy
 *    data; A's prepare and B's write of it run edu transfers of the
 *    profile's own, A's stop-copy and B's load none (debugfs counter
 *    edu_own_transfers); B ends with A's registers and buffer;
 *  - held_start_after_prepare: a start the guest writes after the prepare
 *    reads as running and does not run on A; it migrates and runs on B,
 *    or, when A goes back to RUNNING instead, runs on A; the registers
 *    the profile's own transfer used read as the guest left them;
 *  - held_start_after_prepare_runs_on_b: that start travels in the
 *    stop-copy data with the early state and runs on B;
 *  - controller_gone_after_prepare: the rollback when the controller
 *    goes before the stop, and a stop undone before STOP_COPY, release
 *    DMA (the kept start runs on A) and drop the stream;
 *  - prepared_then_resumed_saves_anew: a prepared A that loads another
 *    state is saved in a new stream;
 *  - failed_stops_keep_the_stream: a stop whose DMA hold fails keeps the
 *    stream; later prepares queue on it, up to four early states;
 *  - timed_out_save_keeps_dma_held: an early save that does not end
 *    keeps DMA held; the guest's registers and kept start survive both
 *    ways out of PRE_COPY;
 *  - unprepared_migration_after_a_prepared_one: the early state is the
 *    stream's that sent it, a later one carries the buffer again;
 *  - hostile_early_records: malformed early records are refused as they
 *    arrive, one in a stream of the older profile version (which B takes
 *    without early records) and one after the register state too, and a
 *    stop-copy blob that names an early state B never loaded fails B's
 *    load, also when an earlier stream, dropped before its restore,
 *    loaded it; A is untouched.
 *
 * 6.1 has no PRE_COPY: there the prepare is made in RUNNING and opens
 * A's saving stream (its fd comes back from the call), whose rest the
 * arc into STOP_COPY gives; a "RUNNING" set in RUNNING is the way back.
 * The same tests run on both kernels.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <linux/vfio_mig_ctl.h>
#include <linux/vfio_mig_stream.h>

#include "kselftest_harness.h"
#include "edu.h"
#include "mig.h"
#include "regsync.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(1u << 20)
#define SCRATCH_IOVA	(RAM_IOVA + 0x3000)	/* kept unused by the test */
#define PEEK_IOVA	(RAM_IOVA + 0x80000)
#define REC_HDR		sizeof(struct vmig_stream_rec)
#define TICK_MS		100			/* one edu transfer */
#define PCI_CMD_MASTER	0x4
#define WORKER_DELAY	"/sys/kernel/debug/vfio-mig/worker_delay_ms"

/* edu's blob (drivers/vfio-mig/profiles/edu.h, version 3) */
#define EDU_ST_VERSION	0
#define EDU_ST_FLAGS	4
#define EDU_ST_CMD	16
#define EDU_ST_ID	24
#define EDU_ST_BUF	32
#define EDU_ST_LEN	(32 + EDU_BUF_SIZE)
#define EDU_ST_F_BUF	0x1
#define EDU_ST_F_CMD	0x2
#define EDU_ST_F_EARLY	0x4

FIXTURE(early) {
	struct tb_devs t;
	struct mig_side a, b;
	struct edu ea, eb;
	struct edu_wl wl;
	uint64_t flags, seed;
	int ctl, fd_a, fd_b;
};

FIXTURE_SETUP(early)
{
	int i;

	self->ctl = self->fd_a = self->fd_b = -1;
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(2, self->t.nr_edu);
	mig_dirty_kill(self->t.edu[0]);
	mig_dirty_kill(self->t.edu[1]);
	ASSERT_EQ(0, mig_side_open(&self->a, self->t.edu[0], "sparse",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, mig_side_open(&self->b, self->t.edu[1], "sparse",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, edu_probe(&self->ea, &self->a.d, false));
	ASSERT_EQ(0, edu_probe(&self->eb, &self->b.d, false));
	ASSERT_EQ(0, mig_features(&self->a.d, &self->flags));
	self->seed = vmm_now_us() ^ getpid();
	TH_LOG("seed %#llx", (unsigned long long)self->seed);
	edu_wl_init(&self->wl, &self->ea, &self->a.ram, self->seed);
	ASSERT_EQ(0, edu_wl_fill(&self->wl));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, edu_wl_step(&self->wl));
	/* the page each side's VMM keeps for its edu (no step runs now) */
	ASSERT_EQ(0, rs_ctl(self->t.edu[0], "scratch %#llx",
			    (unsigned long long)SCRATCH_IOVA));
	ASSERT_EQ(0, rs_ctl(self->t.edu[1], "scratch %#llx",
			    (unsigned long long)SCRATCH_IOVA));
}

FIXTURE_TEARDOWN(early)
{
	vmm_sysfs_write(WORKER_DELAY, "0");
	if (self->fd_a >= 0)
		close(self->fd_a);
	if (self->fd_b >= 0)
		close(self->fd_b);
	if (self->ctl >= 0)
		close(self->ctl);
	rs_ctl(self->t.edu[0], "scratch 0");
	rs_ctl(self->t.edu[1], "scratch 0");
	mig_side_close(&self->a);
	mig_side_close(&self->b);
	rs_set_trap_mode(self->t.edu[0], "none");
	rs_set_trap_mode(self->t.edu[1], "none");
}

static bool has_precopy(FIXTURE_DATA(early) *self)
{
	return self->flags & VFIO_MIGRATION_PRE_COPY;
}

/* A controller attached to A; 0 or -errno. */
static int attach_a(FIXTURE_DATA(early) *self)
{
	struct vfio_mig_ctl_attach at = { .argsz = sizeof(at) };

	self->ctl = open(VFIO_MIG_CTL_DEVICE, O_RDWR | O_CLOEXEC);
	if (self->ctl < 0)
		return -errno;
	snprintf(at.bdf, sizeof(at.bdf), "%.15s", self->a.d.bdf);
	return ioctl(self->ctl, VFIO_MIG_CTL_ATTACH, &at) ? -errno : 0;
}

/* The state a prepare is made in: PRE_COPY, or RUNNING without it. */
static uint32_t early_state(FIXTURE_DATA(early) *self)
{
	return has_precopy(self) ? VFIO_DEVICE_STATE_PRE_COPY :
				   VFIO_DEVICE_STATE_RUNNING;
}

/* A, attached, in that state: PRE_COPY's saving fd in fd_a. */
static void a_to_early_state(struct __test_metadata *_metadata,
			     FIXTURE_DATA(early) *self)
{
	if (has_precopy(self))
		ASSERT_EQ(0, mig_set_state(&self->a.d,
					   VFIO_DEVICE_STATE_PRE_COPY,
					   &self->fd_a));
}

/* A with a controller attached, ready to prepare. */
static void a_to_precopy(struct __test_metadata *_metadata,
			 FIXTURE_DATA(early) *self)
{
	ASSERT_EQ(0, attach_a(self));
	a_to_early_state(_metadata, self);
}

/* Without PRE_COPY, the stream the prepare opened goes to fd_a. */
static int prepare(FIXTURE_DATA(early) *self, uint32_t flags)
{
	struct vfio_mig_ctl_prepare p = {
		.argsz = sizeof(p), .flags = flags, .data_fd = -1,
	};

	if (ioctl(self->ctl, VFIO_MIG_CTL_PREPARE, &p))
		return -errno;
	if (has_precopy(self) == (p.data_fd >= 0))
		return -EPROTO;		/* an fd only without PRE_COPY */
	if (p.data_fd >= 0) {
		if (self->fd_a >= 0)
			close(self->fd_a);
		self->fd_a = p.data_fd;
	}
	return 0;
}

static uint64_t now_ms(void)
{
	return vmm_now_us() / 1000;
}

/* Offset of the first record of @type in @s (from @from), or -1. */
static long find_rec(const uint8_t *s, size_t len, uint32_t type, size_t from)
{
	size_t pos = from ? from : mig_get32(s + 12);

	while (pos + REC_HDR <= len) {
		if (mig_get32(s + pos) == type)
			return pos;
		pos += REC_HDR + mig_get32(s + pos + 4);
	}
	return -1;
}

/* The blob of the PROFILE_* record at @at. */
static uint8_t *blob_at(uint8_t *s, long at)
{
	return s + at + REC_HDR + sizeof(struct vmig_stream_profile);
}

/* Reseal the record at @at after its payload changed. */
static void reseal(uint8_t *s, long at)
{
	mig_put32(s + at + 8, mig_crc32(s + at + REC_HDR,
					mig_get32(s + at + 4)));
}

/*
 * A in PRE_COPY, prepared: its pre-copy data into @pre (with the early
 * record), then STOP_COPY's into @fin; A back to RUNNING.
 */
static void take_streams(struct __test_metadata *_metadata,
			 FIXTURE_DATA(early) *self, struct mig_buf *pre,
			 struct mig_buf *fin, uint64_t *stop_ms,
			 long long *xfers_prepared, long long *xfers_stopped)
{
	uint64_t t0;
	int ret;

	ASSERT_EQ(0, rs_ctl(self->t.edu[0], "scratch %#llx",
			    (unsigned long long)SCRATCH_IOVA));
	a_to_precopy(_metadata, self);
	ret = prepare(self, 0);
	ASSERT_EQ(0, ret) TH_LOG("prepare: %s", strerror(-ret));
	ASSERT_LT(0, mig_read_precopy(self->fd_a, pre));
	if (xfers_prepared)
		*xfers_prepared = rs_counter(self->t.edu[0],
					     "edu_own_transfers");
	t0 = now_ms();
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   NULL));
	ASSERT_LT(0, mig_read_stop_copy(self->fd_a, fin));
	if (stop_ms)
		*stop_ms = now_ms() - t0;
	if (xfers_stopped)
		*xfers_stopped = rs_counter(self->t.edu[0],
					    "edu_own_transfers");
	close(self->fd_a);
	self->fd_a = -1;
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
}

/*
 * The guest starts a transfer of @len bytes of fresh workload data (put in
 * @data and at @in) into buffer offset @off while DMA is held: the start
 * is kept, reads as running and moves nothing for two ticks.
 */
static void start_kept(struct __test_metadata *_metadata,
		       FIXTURE_DATA(early) *self, uint64_t in, uint32_t off,
		       uint8_t *data, size_t len)
{
	edu_wl_bytes(&self->wl, data, len);
	memcpy(mig_host(&self->a, in), data, len);
	ASSERT_EQ(0, edu_dma_start(&self->ea, false, in, off, len, false));
	usleep(2 * TICK_MS * 1000);
	EXPECT_EQ(EDU_DMA_START,
		  edu_rd(&self->ea, EDU_REG_DMA_CMD) & EDU_DMA_START)
		TH_LOG("the start was not kept");
}

/* A prepared, its data up to the early record read into @pre. */
static void a_prepared(struct __test_metadata *_metadata,
		       FIXTURE_DATA(early) *self, struct mig_buf *pre)
{
	int ret;

	a_to_precopy(_metadata, self);
	ret = prepare(self, 0);
	ASSERT_EQ(0, ret) TH_LOG("prepare: %s", strerror(-ret));
	ASSERT_LT(0, mig_read_precopy(self->fd_a, pre));
}

/* B: RUNNING -> RESUMING, then @n bytes of @p; 0 or write()'s -errno. */
static int b_resume(FIXTURE_DATA(early) *self, const void *p, size_t n)
{
	int ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RESUMING,
				&self->fd_b);

	return ret ?: mig_write_stream(self->fd_b, p, n, n);
}

/* B back to RUNNING after a refusal: a controller that goes away. */
static void b_recover(struct __test_metadata *_metadata,
		      FIXTURE_DATA(early) *self)
{
	uint32_t st;

	if (self->fd_b >= 0)
		close(self->fd_b);
	self->fd_b = -1;
	ASSERT_EQ(0, mig_ctl_rollback(self->b.d.bdf));
	ASSERT_EQ(0, mig_get_state(&self->b.d, &st));
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, st);
}

static void check_b_has_a_state(struct __test_metadata *_metadata,
				FIXTURE_DATA(early) *self)
{
	static uint8_t buf[EDU_BUF_SIZE];
	struct edu_regs ra, rb;

	edu_regs_read(&self->ea, &ra);
	edu_regs_read(&self->eb, &rb);
	EXPECT_EQ(ra.liveness, rb.liveness);
	EXPECT_EQ(ra.factorial, rb.factorial);
	EXPECT_EQ(ra.dma_src, rb.dma_src);
	EXPECT_EQ(ra.dma_dst, rb.dma_dst);
	EXPECT_EQ(ra.dma_count, rb.dma_count);
	EXPECT_EQ(ra.dma_cmd, rb.dma_cmd);
	ASSERT_EQ(0, rs_edu_read_buffer(&self->eb, PEEK_IOVA,
					mig_host(&self->b, PEEK_IOVA), buf));
	EXPECT_EQ(0, memcmp(buf, self->wl.buf, EDU_BUF_SIZE - 1))
		TH_LOG("B's buffer differs from A's");
}

/*
 * A prepare refused with @err (bus mastering off for it if @master_off)
 * while a transfer of the guest's is in flight: the refusal comes before
 * DMA is held, without waiting for that transfer (a tick), and nothing is
 * held after it: a transfer runs.
 */
static void refused_at_once(struct __test_metadata *_metadata,
			    FIXTURE_DATA(early) *self, int err,
			    bool master_off, const char *what)
{
	uint64_t t0, dt;
	int ret;

	ASSERT_EQ(0, edu_dma_start(&self->ea, true, RAM_IOVA + 0x30000, 0, 64,
				   false));
	if (master_off)
		ASSERT_EQ(0, vmm_command_update(&self->a.d, 0, PCI_CMD_MASTER));
	t0 = now_ms();
	ret = prepare(self, 0);
	dt = now_ms() - t0;
	if (master_off)
		ASSERT_EQ(0, vmm_command_update(&self->a.d, PCI_CMD_MASTER, 0));
	EXPECT_EQ(err, ret) TH_LOG("%s: %s", what, strerror(-ret));
	EXPECT_GT(TICK_MS / 2, dt)
		TH_LOG("%s: the refused prepare waited %llu ms for the guest's transfer",
		       what, (unsigned long long)dt);
	ASSERT_EQ(0, edu_dma_wait(&self->ea, 3000));
	ASSERT_EQ(0, edu_wl_to_device(&self->wl, RAM_IOVA + 0x10000, 7, 300));
}

TEST_F_TIMEOUT(early, prepare_refusals, 60)
{
	uint32_t st;
	int ret;

	ASSERT_EQ(0, attach_a(self));
	if (has_precopy(self)) {
		EXPECT_EQ(-EINVAL, prepare(self, 0)) TH_LOG("prepare in RUNNING");
	} else {
		ASSERT_EQ(0, mig_set_state(&self->a.d,
					   VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
		EXPECT_EQ(-EINVAL, prepare(self, 0))
			TH_LOG("prepare in RUNNING_P2P");
		ASSERT_EQ(0, mig_set_state(&self->a.d,
					   VFIO_DEVICE_STATE_RUNNING, NULL));
	}
	a_to_early_state(_metadata, self);
	EXPECT_EQ(-EINVAL, prepare(self, 1)) TH_LOG("unknown flag");
	rs_ctl(self->t.edu[0], "scratch 0");
	refused_at_once(_metadata, self, -ENXIO, false, "no page named");
	ASSERT_EQ(0, rs_ctl(self->t.edu[0], "scratch %#llx",
			    (unsigned long long)SCRATCH_IOVA));
	refused_at_once(_metadata, self, -EAGAIN, true, "bus mastering off");
	if (!has_precopy(self)) {
		/* no fd for the stream: refused before anything is held */
		struct rlimit old, low;
		int lowest = dup(0);

		ASSERT_LE(0, lowest);
		close(lowest);
		ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &old));
		low = old;
		low.rlim_cur = lowest;	/* the next fd would be past it */
		ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &low));
		refused_at_once(_metadata, self, -EMFILE, false, "no free fd");
		ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &old));
	}
	ret = prepare(self, 0);
	ASSERT_EQ(0, ret) TH_LOG("prepare: %s", strerror(-ret));
	EXPECT_EQ(-EALREADY, prepare(self, 0));
	ASSERT_EQ(0, mig_get_state(&self->a.d, &st));
	EXPECT_EQ(early_state(self), st);
	/* back to RUNNING: DMA released, transfers run again */
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	ASSERT_EQ(0, edu_wl_to_device(&self->wl, RAM_IOVA + 0x11000, 9, 200));
	ASSERT_EQ(0, edu_wl_to_ram(&self->wl, RAM_IOVA + 0x12000, 0, 2000));
	EXPECT_EQ(0, self->wl.errors) TH_LOG("%s", self->wl.why);
}

/*
 * In trap mode none the driver sees none of the guest's writes and can
 * hold no DMA start: the device offers no migration, and a prepare is
 * refused as a state change is, before the profile borrows its engine.
 */
TEST_F_TIMEOUT(early, prepare_refused_in_trap_mode_none, 60)
{
	mig_side_close(&self->a);
	ASSERT_EQ(0, mig_side_open(&self->a, self->t.edu[0], "none",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, edu_probe(&self->ea, &self->a.d, false));
	ASSERT_EQ(0, rs_ctl(self->t.edu[0], "scratch %#llx",
			    (unsigned long long)SCRATCH_IOVA));
	ASSERT_EQ(0, attach_a(self));
	EXPECT_EQ(-EOPNOTSUPP, prepare(self, 0));
	EXPECT_EQ(0xabcdu, ~edu_liveness(&self->ea, 0xabcd));
}

TEST_F_TIMEOUT(early, early_state_moves_before_the_stop, 90)
{
	struct mig_buf pre = {}, fin = {};
	uint64_t t0, stop_ms, write_ms, load_ms;
	long long a0, a_prep, a_stop, b0, b_write, b_load;
	long at;
	uint8_t *bl;
	int ret;

	a0 = rs_counter(self->t.edu[0], "edu_own_transfers");
	take_streams(_metadata, self, &pre, &fin, &stop_ms, &a_prep, &a_stop);
	at = find_rec(pre.data, pre.len, VMIG_REC_PROFILE_EARLY, 0);
	ASSERT_LE(0, at) TH_LOG("no PROFILE_EARLY record in pre-copy data");
	bl = blob_at(pre.data, at);
	EXPECT_EQ(EDU_ST_F_BUF | EDU_ST_F_CMD, mig_get32(bl + EDU_ST_FLAGS));
	EXPECT_EQ(0, memcmp(bl + EDU_ST_BUF, self->wl.buf, EDU_BUF_SIZE - 1))
		TH_LOG("the early buffer is not A's");
	at = find_rec(fin.data, fin.len, VMIG_REC_PROFILE_STATE, 0);
	ASSERT_LE(0, at);
	EXPECT_EQ(EDU_ST_F_CMD | EDU_ST_F_EARLY,
		  mig_get32(blob_at(fin.data, at) + EDU_ST_FLAGS));
	EXPECT_EQ(0, memcmp(blob_at(fin.data, at) + EDU_ST_ID,
			    bl + EDU_ST_ID, 8));

	/* B: the early record is loaded by the write that carries it */
	b0 = rs_counter(self->t.edu[1], "edu_own_transfers");
	t0 = now_ms();
	ret = b_resume(self, pre.data, pre.len);
	write_ms = now_ms() - t0;
	ASSERT_EQ(0, ret) TH_LOG("pre-copy data into B: %s", strerror(-ret));
	b_write = rs_counter(self->t.edu[1], "edu_own_transfers");
	ASSERT_EQ(0, mig_write_stream(self->fd_b, fin.data, fin.len, 4096));
	t0 = now_ms();
	ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL);
	load_ms = now_ms() - t0;
	ASSERT_EQ(0, ret) TH_LOG("B's load: %s", strerror(-ret));
	b_load = rs_counter(self->t.edu[1], "edu_own_transfers");
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	TH_LOG("profile transfers: A's prepare %lld, stop-copy %lld in %llu ms; B's early write %lld in %llu ms, load %lld in %llu ms",
	       a_prep - a0, a_stop - a_prep, (unsigned long long)stop_ms,
	       b_write - b0,
	       (unsigned long long)write_ms, b_load - b_write,
	       (unsigned long long)load_ms);
	/* the profile's own transfers (debugfs counters), exactly */
	ASSERT_LE(0, a0);
	ASSERT_LE(0, a_prep);
	ASSERT_LE(0, a_stop);
	ASSERT_LE(0, b0);
	ASSERT_LE(0, b_write);
	ASSERT_LE(0, b_load);
	EXPECT_LT(0, b_write - b0) TH_LOG("B's early load ran no transfer");
	EXPECT_EQ(0, a_stop - a_prep) TH_LOG("A's stop-copy ran one");
	EXPECT_EQ(0, b_load - b_write) TH_LOG("B's load ran one");
	EXPECT_LT(0, a_prep - a0) TH_LOG("A's prepare ran none");
	check_b_has_a_state(_metadata, self);
	mig_buf_free(&pre);
	mig_buf_free(&fin);
}

struct cmd_writer {
	struct vmm_dev *d;
	uint64_t start_ms, done_ms;
	int ret;
};

/*
 * The guest turns bus mastering off 30 ms into the prepare, whose save
 * waits 300 ms first (worker_delay_ms): well inside it.
 */
static void *master_off(void *arg)
{
	struct cmd_writer *w = arg;

	usleep(30 * 1000);
	w->start_ms = now_ms();
	w->ret = vmm_command_update(w->d, 0, PCI_CMD_MASTER);
	w->done_ms = now_ms();
	return NULL;
}

TEST_F_TIMEOUT(early, config_write_waits_for_the_early_save, 90)
{
	struct cmd_writer w = { .d = &self->a.d };
	struct mig_buf pre = {};
	uint64_t t0, t1;
	pthread_t th;
	uint8_t *bl;
	long at;
	int ret;

	a_to_precopy(_metadata, self);
	ASSERT_EQ(0, vmm_sysfs_write(WORKER_DELAY, "300"));
	ASSERT_EQ(0, pthread_create(&th, NULL, master_off, &w));
	t0 = now_ms();
	ret = prepare(self, 0);
	t1 = now_ms();
	pthread_join(th, NULL);
	ASSERT_EQ(0, vmm_sysfs_write(WORKER_DELAY, "0"));
	ASSERT_EQ(0, w.ret);
	ASSERT_EQ(0, ret) TH_LOG("prepare: %s", strerror(-ret));
	TH_LOG("prepare %llu ms; the config write began after %llu ms and ended after %llu ms",
	       (unsigned long long)(t1 - t0),
	       (unsigned long long)(w.start_ms - t0),
	       (unsigned long long)(w.done_ms - t0));
	/* the save waits 300 ms, then reads for a tick: the write waited */
	ASSERT_LE(300 + TICK_MS, t1 - t0);
	EXPECT_GT(t1 - t0, w.start_ms - t0) TH_LOG("the write did not come amid the prepare");
	EXPECT_LE(300 + TICK_MS * 9 / 10, w.done_ms - t0)
		TH_LOG("the config write did not wait for the early read");
	ASSERT_LT(0, mig_read_precopy(self->fd_a, &pre));
	at = find_rec(pre.data, pre.len, VMIG_REC_PROFILE_EARLY, 0);
	ASSERT_LE(0, at) TH_LOG("no PROFILE_EARLY record in pre-copy data");
	bl = blob_at(pre.data, at);
	EXPECT_EQ(0, memcmp(bl + EDU_ST_BUF, self->wl.buf, EDU_BUF_SIZE - 1))
		TH_LOG("the early buffer is not A's");
	ASSERT_EQ(0, vmm_command_update(&self->a.d, PCI_CMD_MASTER, 0));
	close(self->fd_a);
	self->fd_a = -1;
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	ASSERT_EQ(0, edu_wl_to_ram(&self->wl, RAM_IOVA + 0x12000, 0, 1000));
	EXPECT_EQ(0, self->wl.errors) TH_LOG("%s", self->wl.why);
	mig_buf_free(&pre);
}

TEST_F_TIMEOUT(early, held_start_after_prepare, 90)
{
	uint64_t in = RAM_IOVA + 0x20000, out = RAM_IOVA + 0x21000;
	struct mig_buf pre = {};
	struct edu_regs before, held;
	uint8_t data[600];
	int ret, i;

	ASSERT_EQ(0, rs_ctl(self->t.edu[0], "scratch %#llx",
			    (unsigned long long)SCRATCH_IOVA));
	ASSERT_EQ(0, attach_a(self));
	edu_regs_read(&self->ea, &before);
	a_to_early_state(_metadata, self);
	ret = prepare(self, 0);
	ASSERT_EQ(0, ret) TH_LOG("prepare: %s", strerror(-ret));
	/* the profile's own transfer used the engine: the guest's view */
	edu_regs_read(&self->ea, &held);
	EXPECT_EQ(before.dma_src, held.dma_src);
	EXPECT_EQ(before.dma_dst, held.dma_dst);
	EXPECT_EQ(before.dma_count, held.dma_count);
	EXPECT_EQ(before.dma_cmd, held.dma_cmd);
	ASSERT_LT(0, mig_read_precopy(self->fd_a, &pre));

	/* a start now is kept: it reads running and moves nothing */
	edu_wl_bytes(&self->wl, data, sizeof(data));
	memcpy(mig_host(&self->a, in), data, sizeof(data));
	ASSERT_EQ(0, edu_dma_start(&self->ea, false, in, 40, sizeof(data),
				   false));
	usleep(3 * TICK_MS * 1000);
	EXPECT_EQ(EDU_DMA_START,
		  edu_rd(&self->ea, EDU_REG_DMA_CMD) & EDU_DMA_START);
	for (i = 0; i < 2; i++) {
		edu_regs_read(&self->ea, &held);
		EXPECT_EQ(in, held.dma_src);
	}
	/* back to RUNNING: the start runs on A now */
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	ASSERT_EQ(0, edu_dma_wait(&self->ea, 3000));
	memcpy(self->wl.buf + 40, data, sizeof(data));
	ASSERT_EQ(0, edu_wl_to_ram(&self->wl, out, 40, sizeof(data)));
	EXPECT_EQ(0, self->wl.errors) TH_LOG("%s", self->wl.why);
	mig_buf_free(&pre);
}

/*
 * The controller goes away after the prepare, before any stop: the kernel
 * rolls A back to RUNNING (without PRE_COPY: out of its prepared RUNNING),
 * the kept start runs on A, the saving fd is dropped (ENODEV), and a new
 * controller prepares afresh.
 */
TEST_F_TIMEOUT(early, controller_gone_after_prepare, 120)
{
	uint64_t in = RAM_IOVA + 0x20000, out = RAM_IOVA + 0x21000;
	struct mig_buf pre = {};
	uint8_t data[500], b;
	uint32_t st;
	int ret, way;

	/* way 0: the controller goes; 1: a stop (to STOP) undone */
	for (way = 0; way < 2; way++) {
		a_prepared(_metadata, self, &pre);
		start_kept(_metadata, self, in, 80 + way, data, sizeof(data));
		if (!way) {
			close(self->ctl);
			self->ctl = -1;
		} else {
			ASSERT_EQ(0, mig_set_state(&self->a.d,
						   VFIO_DEVICE_STATE_STOP,
						   NULL));
			ASSERT_EQ(0, mig_set_state(&self->a.d,
						   VFIO_DEVICE_STATE_RUNNING,
						   NULL));
		}
		ASSERT_EQ(0, mig_get_state(&self->a.d, &st));
		EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, st);
		ASSERT_EQ(0, edu_dma_wait(&self->ea, 3000))
			TH_LOG("way %d: the kept start did not run", way);
		memcpy(self->wl.buf + 80 + way, data, sizeof(data));
		ASSERT_EQ(0, edu_wl_to_ram(&self->wl, out, 80 + way,
					   sizeof(data)));
		EXPECT_EQ(0, self->wl.errors) TH_LOG("%s", self->wl.why);
		EXPECT_EQ(-1, read(self->fd_a, &b, 1));
		EXPECT_EQ(ENODEV, errno) TH_LOG("way %d, the dropped stream: %s",
						way, strerror(errno));
		close(self->fd_a);
		self->fd_a = -1;
		if (self->ctl >= 0)
			close(self->ctl);
		self->ctl = -1;
		mig_buf_free(&pre);
	}
	/* a new controller: the prepare is the first again */
	a_to_precopy(_metadata, self);
	ret = prepare(self, 0);
	ASSERT_EQ(0, ret) TH_LOG("prepare again: %s", strerror(-ret));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	ASSERT_EQ(0, edu_wl_to_device(&self->wl, RAM_IOVA + 0x11000, 9, 200));
	EXPECT_EQ(0, self->wl.errors) TH_LOG("%s", self->wl.why);
}

/*
 * A prepared A that takes another device's state instead (STOP ->
 * RESUMING, B's stream, STOP) and is then saved: its STOP_COPY stream is
 * a new one, not the prepare's (no early record, no pre-copy header).
 */
TEST_F_TIMEOUT(early, prepared_then_resumed_saves_anew, 90)
{
	struct mig_buf pre = {}, fromb = {}, fin = {};
	int fd = -1, ret;

	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP_COPY,
				   &fd));
	ASSERT_LT(0, mig_read_stop_copy(fd, &fromb));
	close(fd);
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	a_prepared(_metadata, self, &pre);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RESUMING,
				   &fd));
	ASSERT_EQ(0, mig_write_stream(fd, fromb.data, fromb.len, 4096));
	close(fd);
	ret = mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP, NULL);
	ASSERT_EQ(0, ret) TH_LOG("A's load of B's stream: %s", strerror(-ret));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   &fd));
	ASSERT_LT(0, mig_read_stop_copy(fd, &fin));
	close(fd);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	ASSERT_LE(sizeof(struct vmig_stream_hdr), fin.len);
	ASSERT_EQ(0, memcmp(fin.data, VMIG_STREAM_MAGIC, 8))
		TH_LOG("no stream header: the prepare's stream went on");
	EXPECT_FALSE(mig_get32(fin.data + offsetof(struct vmig_stream_hdr,
						   features)) &
		     VMIG_STREAM_F_PRECOPY);
	EXPECT_GT(0, find_rec(fin.data, fin.len, VMIG_REC_PROFILE_EARLY, 0))
		TH_LOG("the prepare's early record came with the new state");
	mig_buf_free(&pre);
	mig_buf_free(&fromb);
	mig_buf_free(&fin);
}

/*
 * A start the guest writes after the prepare is kept on A and carried in
 * the stop-copy data (HELD_WRITES) with the early state: B, loaded from
 * both, runs it once it runs, from the RAM the migration brought.
 */
TEST_F_TIMEOUT(early, held_start_after_prepare_runs_on_b, 90)
{
	uint64_t in = RAM_IOVA + 0x20000;
	static uint8_t want[EDU_BUF_SIZE], got[EDU_BUF_SIZE];
	struct mig_buf pre = {}, fin = {};
	uint8_t data[600];
	int ret;

	a_prepared(_metadata, self, &pre);
	start_kept(_metadata, self, in, 40, data, sizeof(data));
	/* the guest pauses in its poll: A stops with the start kept */
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   NULL));
	ASSERT_LT(0, mig_read_stop_copy(self->fd_a, &fin));
	close(self->fd_a);
	self->fd_a = -1;
	ASSERT_LE(0, find_rec(fin.data, fin.len, VMIG_REC_HELD_WRITES, 0))
		TH_LOG("the kept start is not in the stop-copy data");
	/* A rolls back (it runs the start too; B must on its own) */
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));

	/* B: the RAM as the migration brings it, then both streams */
	memcpy(mig_host(&self->b, in), data, sizeof(data));
	ASSERT_EQ(0, b_resume(self, pre.data, pre.len));
	ASSERT_EQ(0, mig_write_stream(self->fd_b, fin.data, fin.len, 4096));
	ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL);
	ASSERT_EQ(0, ret) TH_LOG("B's load: %s", strerror(-ret));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	/* the guest's poll on B sees its transfer end */
	ASSERT_EQ(0, edu_dma_wait(&self->eb, 3000));
	memcpy(want, self->wl.buf, sizeof(want));
	memcpy(want + 40, data, sizeof(data));
	ASSERT_EQ(0, rs_edu_read_buffer(&self->eb, PEEK_IOVA,
					mig_host(&self->b, PEEK_IOVA), got));
	EXPECT_EQ(0, memcmp(got, want, EDU_BUF_SIZE - 1))
		TH_LOG("B's buffer is not A's with the kept transfer run");
	mig_buf_free(&pre);
	mig_buf_free(&fin);
}

/*
 * An early save whose transfer does not end (test hook "stall-early": as
 * if the engine never read idle): ETIMEDOUT, nothing queued, and DMA
 * stays held as if prepared, so that no start of the guest's meets the
 * transfer. The guest still reads its own address registers; a start it
 * writes is kept. Back to RUNNING, the registers are given back and the
 * start runs on A; through a stop, they are given back before the
 * capture, and B gets them and runs the start.
 */
TEST_F_TIMEOUT(early, timed_out_save_keeps_dma_held, 120)
{
	uint64_t in = RAM_IOVA + 0x20000, out = RAM_IOVA + 0x21000;
	static uint8_t want[EDU_BUF_SIZE], got[EDU_BUF_SIZE];
	struct edu_regs before, now, rb;
	struct mig_buf fin = {};
	uint8_t data[300];
	int ret, round;

	for (round = 0; round < 2; round++) {
		uint32_t off = round ? 400 : 40;

		edu_regs_read(&self->ea, &before);
		a_to_precopy(_metadata, self);
		ASSERT_EQ(0, rs_ctl(self->t.edu[0], "stall-early"));
		ret = prepare(self, 0);
		ASSERT_EQ(-ETIMEDOUT, ret) TH_LOG("prepare: %s", strerror(-ret));
		EXPECT_EQ(-EALREADY, prepare(self, 0));
		edu_regs_read(&self->ea, &now);
		EXPECT_EQ(before.dma_src, now.dma_src);
		EXPECT_EQ(before.dma_dst, now.dma_dst);
		EXPECT_EQ(before.dma_count, now.dma_count);
		start_kept(_metadata, self, in, off, data, sizeof(data));
		memcpy(self->wl.buf + off, data, sizeof(data));
		if (!round) {
			/* back to RUNNING: given back, the start runs on A */
			ASSERT_EQ(0, mig_set_state(&self->a.d,
						   VFIO_DEVICE_STATE_RUNNING,
						   NULL));
			ASSERT_EQ(0, edu_dma_wait(&self->ea, 3000));
			edu_regs_read(&self->ea, &now);
			EXPECT_EQ(in, now.dma_src);
			ASSERT_EQ(0, edu_wl_to_ram(&self->wl, out, off,
						   sizeof(data)));
			EXPECT_EQ(0, self->wl.errors) TH_LOG("%s", self->wl.why);
			close(self->fd_a);
			self->fd_a = -1;
			close(self->ctl);
			self->ctl = -1;
			continue;
		}
		/*
		 * The stop: B gets the guest's registers and runs the start.
		 * (Without PRE_COPY the timed-out prepare gave no fd: the
		 * stream it opened comes whole from STOP_COPY.)
		 */
		ASSERT_EQ(0, mig_set_state(&self->a.d,
					   VFIO_DEVICE_STATE_STOP_COPY,
					   self->fd_a < 0 ? &self->fd_a : NULL));
		ASSERT_LT(0, mig_read_stop_copy(self->fd_a, &fin));
		/* that stream began in the prepare: a pre-copy one */
		if (!has_precopy(self))
			EXPECT_TRUE(mig_get32(fin.data + offsetof(struct vmig_stream_hdr,
							 features)) &
				    VMIG_STREAM_F_PRECOPY)
				TH_LOG("STOP_COPY gave a new stream, not the prepare's");
		close(self->fd_a);
		self->fd_a = -1;
		ASSERT_EQ(0, mig_set_state(&self->a.d,
					   VFIO_DEVICE_STATE_RUNNING, NULL));
		memcpy(mig_host(&self->b, in), data, sizeof(data));
		ASSERT_EQ(0, b_resume(self, fin.data, fin.len));
		ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL);
		ASSERT_EQ(0, ret) TH_LOG("B's load: %s", strerror(-ret));
		ASSERT_EQ(0, mig_set_state(&self->b.d,
					   VFIO_DEVICE_STATE_RUNNING, NULL));
		ASSERT_EQ(0, edu_dma_wait(&self->eb, 3000));
		edu_regs_read(&self->eb, &rb);
		EXPECT_EQ(in, rb.dma_src) TH_LOG("B has the profile's source");
		EXPECT_EQ((uint64_t)EDU_BUF_ADDR + off, rb.dma_dst);
		EXPECT_EQ(sizeof(data), rb.dma_count);
		memcpy(want, self->wl.buf, sizeof(want));
		ASSERT_EQ(0, rs_edu_read_buffer(&self->eb, PEEK_IOVA,
						mig_host(&self->b, PEEK_IOVA),
						got));
		EXPECT_EQ(0, memcmp(got, want, EDU_BUF_SIZE - 1))
			TH_LOG("B's buffer is not A's with the kept transfer run");
	}
	mig_buf_free(&fin);
}

/*
 * As timed_out_save_keeps_dma_held's way back to RUNNING, with the guest
 * computing a factorial of seconds meanwhile: the registers are given
 * back once the engine reads idle, whatever the factorial does (it is not
 * DMA), and the kept start runs. Before, the way back waited for the
 * factorial too, gave up after a second, dropped the kept start and left
 * the guest the profile's addresses.
 */
TEST_F_TIMEOUT(early, timed_out_save_given_back_beside_a_factorial, 120)
{
	uint64_t in = RAM_IOVA + 0x20000, out = RAM_IOVA + 0x21000;
	struct edu_regs now;
	uint8_t data[300];
	int ret, ms;

	a_to_precopy(_metadata, self);
	ASSERT_EQ(0, rs_ctl(self->t.edu[0], "stall-early"));
	ret = prepare(self, 0);
	ASSERT_EQ(-ETIMEDOUT, ret) TH_LOG("prepare: %s", strerror(-ret));
	start_kept(_metadata, self, in, 40, data, sizeof(data));
	memcpy(self->wl.buf + 40, data, sizeof(data));
	/* about 3 s of QEMU's multiplications */
	edu_wr(&self->ea, EDU_REG_FACTORIAL, 0xc0000000u);
	usleep(TICK_MS * 1000);
	EXPECT_TRUE(edu_rd(&self->ea, EDU_REG_STATUS) & EDU_STATUS_COMPUTING)
		TH_LOG("the factorial ended too soon to tell");
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	ASSERT_EQ(0, edu_dma_wait(&self->ea, 3000));
	edu_regs_read(&self->ea, &now);
	EXPECT_EQ(in, now.dma_src) TH_LOG("the guest has the profile's source");
	EXPECT_EQ((uint64_t)EDU_BUF_ADDR + 40, now.dma_dst);
	EXPECT_EQ(sizeof(data), now.dma_count);
	ASSERT_EQ(0, edu_wl_to_ram(&self->wl, out, 40, sizeof(data)));
	EXPECT_EQ(0, self->wl.errors) TH_LOG("%s", self->wl.why);
	/* the next test's holds must not meet it */
	for (ms = 0; ms < 60000 &&
	     edu_rd(&self->ea, EDU_REG_STATUS) & EDU_STATUS_COMPUTING; ms += 100)
		usleep(100 * 1000);
	EXPECT_GT(60000, ms);
}

/* PROFILE_EARLY records in @s */
static int count_early(const uint8_t *s, size_t len)
{
	long at = 0;
	int n = 0;

	while ((at = find_rec(s, len, VMIG_REC_PROFILE_EARLY, at)) >= 0) {
		n++;
		at += REC_HDR + mig_get32(s + at + 4);
	}
	return n;
}

/*
 * A stop whose DMA hold fails (test hook "stall-quiesce": the engine as
 * if it never read idle) leaves A in its early state, DMA released, the
 * stream open: the guest's transfer runs, and the next prepare queues a
 * newer early state on that stream (without PRE_COPY, through another fd
 * for it). A stream takes four: the fifth prepare is refused (ENOSPC)
 * before anything is held, the guest runs on, and the stop moves what
 * changed. B loads the whole stream and has A's state.
 */
TEST_F_TIMEOUT(early, failed_stops_keep_the_stream, 150)
{
	struct mig_buf pre = {}, fin = {};
	uint32_t st;
	long at;
	int i, ret;

	a_to_precopy(_metadata, self);
	for (i = 0; i < VMIG_STREAM_MAX_EARLY; i++) {
		ret = prepare(self, 0);
		ASSERT_EQ(0, ret) TH_LOG("prepare %d: %s", i + 1, strerror(-ret));
		ASSERT_LT(0, mig_read_precopy(self->fd_a, &pre));
		ASSERT_EQ(0, rs_ctl(self->t.edu[0], "stall-quiesce"));
		ret = mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				    NULL);
		ASSERT_EQ(-ETIMEDOUT, ret) TH_LOG("stop %d: %s", i + 1,
						  strerror(-ret));
		ASSERT_EQ(0, mig_get_state(&self->a.d, &st));
		ASSERT_EQ(early_state(self), st);
		/* DMA released: the guest's transfer runs now */
		ASSERT_EQ(0, edu_wl_to_device(&self->wl, RAM_IOVA + 0x10000,
					      100 * i, 300));
	}
	EXPECT_EQ(VMIG_STREAM_MAX_EARLY, count_early(pre.data, pre.len));
	ret = prepare(self, 0);
	ASSERT_EQ(-ENOSPC, ret) TH_LOG("fifth prepare: %s", strerror(-ret));
	/* nothing held: a transfer runs */
	ASSERT_EQ(0, edu_wl_to_device(&self->wl, RAM_IOVA + 0x10000, 1000, 200));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   NULL));
	ASSERT_LT(0, mig_read_stop_copy(self->fd_a, &fin));
	close(self->fd_a);
	self->fd_a = -1;
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	/* one stream: the stop's data reads on from the pre-copy data */
	ASSERT_EQ(0, mig_buf_append(&pre, fin.data, fin.len));
	EXPECT_EQ(VMIG_STREAM_MAX_EARLY, count_early(pre.data, pre.len));
	/* the guest changed the buffer after the last early state */
	at = find_rec(pre.data, pre.len, VMIG_REC_PROFILE_STATE, 0);
	ASSERT_LE(0, at);
	EXPECT_EQ(EDU_ST_F_BUF | EDU_ST_F_CMD,
		  mig_get32(blob_at(pre.data, at) + EDU_ST_FLAGS));
	ret = b_resume(self, pre.data, pre.len);
	ASSERT_EQ(0, ret) TH_LOG("B's writes: %s", strerror(-ret));
	ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL);
	ASSERT_EQ(0, ret) TH_LOG("B's load: %s", strerror(-ret));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	check_b_has_a_state(_metadata, self);
	mig_buf_free(&pre);
	mig_buf_free(&fin);
}

/*
 * A later migration that does not prepare (or a saving fd that queued no
 * early record) must carry the buffer again: the early state belongs to
 * the stream that sent it.
 */
TEST_F_TIMEOUT(early, unprepared_migration_after_a_prepared_one, 90)
{
	struct mig_buf pre = {}, fin = {}, again = {};
	long at;
	int fd = -1;

	take_streams(_metadata, self, &pre, &fin, NULL, NULL, NULL);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   &fd));
	ASSERT_LT(0, mig_read_stop_copy(fd, &again));
	close(fd);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	at = find_rec(again.data, again.len, VMIG_REC_PROFILE_STATE, 0);
	ASSERT_LE(0, at);
	EXPECT_EQ(EDU_ST_F_BUF | EDU_ST_F_CMD,
		  mig_get32(blob_at(again.data, at) + EDU_ST_FLAGS));
	ASSERT_EQ(0, b_resume(self, again.data, again.len));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	check_b_has_a_state(_metadata, self);
	mig_buf_free(&pre);
	mig_buf_free(&fin);
	mig_buf_free(&again);
}

TEST_F_TIMEOUT(early, hostile_early_records, 120)
{
	static const char *const what[] = {
		"another blob version", "flags with EARLY", "unknown command bits",
		"early id 0", "blob a byte short", "last buffer byte set",
		"a stream of the older profile version",
	};
	const size_t ver_off = offsetof(struct vmig_stream_hdr,
					profile_version);
	struct mig_buf pre = {}, fin = {};
	struct edu_regs ra0, ra1;
	size_t n, early_len, base;
	uint8_t *m, *bl;
	long at, st_at, end;
	uint32_t hdr_len;
	int ret;
	unsigned int i;

	take_streams(_metadata, self, &pre, &fin, NULL, NULL, NULL);
	edu_regs_read(&self->ea, &ra0);
	at = find_rec(pre.data, pre.len, VMIG_REC_PROFILE_EARLY, 0);
	ASSERT_LE(0, at);
	m = malloc(pre.len + fin.len + 64);
	ASSERT_NE(NULL, m);

	for (i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		memcpy(m, pre.data, pre.len);
		n = pre.len;
		bl = blob_at(m, at);
		switch (i) {
		case 0:
			mig_put32(bl + EDU_ST_VERSION, 2);
			break;
		case 1:
			mig_put32(bl + EDU_ST_FLAGS, EDU_ST_F_BUF |
				  EDU_ST_F_CMD | EDU_ST_F_EARLY);
			break;
		case 2:
			mig_put32(bl + EDU_ST_CMD, 0x10);
			break;
		case 3:
			memset(bl + EDU_ST_ID, 0, 8);
			break;
		case 4:	/* record and header lengths agree, one byte short */
			mig_put32(m + at + 4, mig_get32(m + at + 4) - 1);
			mig_put32(m + at + REC_HDR + 36,
				  EDU_ST_LEN - 1);
			memmove(m + at + REC_HDR + mig_get32(m + at + 4),
				m + at + REC_HDR + mig_get32(m + at + 4) + 1,
				pre.len - (at + REC_HDR +
					   mig_get32(m + at + 4) + 1));
			n--;
			break;
		case 5:
			bl[EDU_ST_BUF + EDU_BUF_SIZE - 1] = 1;
			break;
		case 6:
			/*
			 * Version 2, as a source before early state says (B
			 * takes its PROFILE_STATE), but with an early
			 * record, which only the current version has.
			 */
			hdr_len = mig_get32(m + 12);
			mig_put32(m + ver_off, 2);
			mig_put32(m + hdr_len - 4,
				  mig_crc32(m, hdr_len - 4));
			mig_put32(m + at + REC_HDR +
				  offsetof(struct vmig_stream_profile,
					   version), 2);
			break;
		}
		reseal(m, at);
		ret = b_resume(self, m, n);
		EXPECT_EQ(i == 6 ? -EPROTONOSUPPORT : -EINVAL, ret)
			TH_LOG("%s: %s", what[i], strerror(-ret));
		b_recover(_metadata, self);
	}

	/*
	 * The pre-copy data without its early record (@base bytes), then
	 * the stop-copy data with that record moved after the register
	 * state.
	 */
	early_len = REC_HDR + mig_get32(pre.data + at + 4);
	memcpy(m, pre.data, at);
	memcpy(m + at, pre.data + at + early_len, pre.len - at - early_len);
	base = pre.len - early_len;
	st_at = find_rec(fin.data, fin.len, VMIG_REC_REG_STATE, 0);
	end = find_rec(fin.data, fin.len, VMIG_REC_END, 0);
	ASSERT_LE(0, st_at);
	ASSERT_LT(st_at, end);
	memcpy(m + base, fin.data, end);
	memcpy(m + base + end, pre.data + at, early_len);
	memcpy(m + base + end + early_len, fin.data + end, fin.len - end);
	ret = b_resume(self, m, pre.len + fin.len);
	EXPECT_EQ(-EINVAL, ret) TH_LOG("early after the state: %s",
				       strerror(-ret));
	b_recover(_metadata, self);

	/*
	 * A stream that loaded the early state and was dropped before its
	 * restore lends it to no later stream.
	 */
	ASSERT_EQ(0, b_resume(self, pre.data, pre.len));
	b_recover(_metadata, self);
	/* without it: the stop-copy blob names an early state B lacks */
	memcpy(m + base, fin.data, fin.len);
	ret = b_resume(self, m, base + fin.len);
	ASSERT_EQ(0, ret) TH_LOG("%s", strerror(-ret));
	EXPECT_NE(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL))
		TH_LOG("B loaded a state whose buffer it never had");
	b_recover(_metadata, self);

	/* A untouched; the unmutated streams still move A to B */
	edu_regs_read(&self->ea, &ra1);
	EXPECT_EQ(0, memcmp(&ra0, &ra1, sizeof(ra0)));
	ASSERT_EQ(0, b_resume(self, pre.data, pre.len));
	ASSERT_EQ(0, mig_write_stream(self->fd_b, fin.data, fin.len, 4096));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	check_b_has_a_state(_metadata, self);
	free(m);
	mig_buf_free(&pre);
	mig_buf_free(&fin);
}

TEST_HARNESS_MAIN
