// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration of an edu through VFIO migration uAPI v2 alone, with the
 * test VMM in the role of QEMU 8.1+: edu A is migrated to edu B in the same
 * guest while a random workload runs on A, guest RAM copied by the VMM
 * from the dirty log (device) and its own record (vCPU writes).
 *
 *  - stop_copy*: RUNNING -> STOP_COPY; RAM equal at switchover, B's
 *    registers and buffer equal A's, the workload continues on B;
 *  - pre_copy: the same through PRE_COPY (6.2+);
 *  - dirty_log_complete*: every page a DMA changed is reported, and only
 *    those (ground truth: memory snapshots);
 *  - illegal_arcs: every arc the uAPI forbids is refused, state unchanged;
 *  - close_*: data fd and device fd closed mid-session, device back in
 *    RUNNING and working after a reopen;
 *  - p2p_*: RUNNING_P2P holds new DMA, waits for the one in flight, and a
 *    held DMA start migrates.
 *
 * MIG_SEED=<n> repeats a run's random choices (each test prints its seed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "edu.h"
#include "mig.h"
#include "regsync.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull	/* the same on both sides, < 2^28 */
#define RAM_SIZE	(4u << 20)
#define RAM_PAGES	(RAM_SIZE / MIG_PAGE)
#define RAM_WORDS	((RAM_PAGES + 63) / 64)
/* where buffer read-outs land, after the RAM comparisons */
#define PEEK_IOVA	(RAM_IOVA + RAM_SIZE - 0x4000)
#define WL_STEPS	30
#define WL_STEPS_AFTER	12

static uint64_t test_seed(struct __test_metadata *_metadata)
{
	const char *env = getenv("MIG_SEED");
	uint64_t seed;

	seed = env ? strtoull(env, NULL, 0) : vmm_now_us() ^ getpid();
	TH_LOG("seed %#llx (MIG_SEED=%#llx repeats this run)",
	       (unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

/* The workload as a vCPU thread of the VMM. */
struct wl_thread {
	struct edu_wl *w;
	pthread_t tid;
	bool started;
	int steps;
	int ret;
	bool stop, done;
};

static void *wl_main(void *arg)
{
	struct wl_thread *t = arg;
	int i;

	for (i = 0; i < t->steps && !__atomic_load_n(&t->stop,
						     __ATOMIC_ACQUIRE); i++) {
		t->ret = edu_wl_step(t->w);
		if (t->ret)
			break;
	}
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static int wl_start(struct wl_thread *t, struct edu_wl *w, int steps)
{
	memset(t, 0, sizeof(*t));
	t->w = w;
	t->steps = steps;
	if (pthread_create(&t->tid, NULL, wl_main, t))
		return -errno;
	t->started = true;
	return 0;
}

static int wl_join(struct wl_thread *t)
{
	if (!t->started)
		return 0;
	__atomic_store_n(&t->stop, true, __ATOMIC_RELEASE);
	pthread_join(t->tid, NULL);
	t->started = false;
	return t->ret;
}

static bool wl_done(struct wl_thread *t)
{
	return __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
}

FIXTURE(mig) {
	struct tb_devs t;
	struct mig_side a, b;
	struct edu ea, eb;
	uint64_t flags;
	struct mig_dirty log;
	struct mig_cpu_log cpu;
	struct edu_wl wl;
	struct wl_thread th;
	uint64_t seed;
	int fd_a, fd_b;		/* data fds */
};

static void vcpu_write(void *priv, uint64_t iova, const void *src,
		       size_t len)
{
	FIXTURE_DATA(mig) *self = priv;

	mig_vcpu_write(&self->cpu, &self->a.ram, iova, src, len);
}

FIXTURE_SETUP(mig)
{
	int ret;

	self->fd_a = self->fd_b = -1;
	self->log.nl.fd = -1;
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(2, self->t.nr_edu);
	/* a dirty log a crashed test left behind (netlink's outlive fds) */
	mig_dirty_kill(self->t.edu[0]);
	mig_dirty_kill(self->t.edu[1]);
	ASSERT_EQ(0, mig_side_open(&self->a, self->t.edu[0], "sparse",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, mig_side_open(&self->b, self->t.edu[1], "sparse",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, edu_probe(&self->ea, &self->a.d, false));
	ASSERT_EQ(0, edu_probe(&self->eb, &self->b.d, false));
	ASSERT_EQ(0, mig_cpu_log_init(&self->cpu, &self->a.ram));
	ret = mig_features(&self->a.d, &self->flags);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION: %s",
				 strerror(-ret));
	self->seed = test_seed(_metadata);
	edu_wl_init(&self->wl, &self->ea, &self->a.ram, self->seed);
	self->wl.vcpu_write = vcpu_write;
	self->wl.priv = self;
}

FIXTURE_TEARDOWN(mig)
{
	wl_join(&self->th);
	if (self->fd_a >= 0)
		close(self->fd_a);
	if (self->fd_b >= 0)
		close(self->fd_b);
	mig_dirty_stop(&self->log);
	mig_cpu_log_free(&self->cpu);
	mig_side_close(&self->a);
	mig_side_close(&self->b);
	mig_dirty_kill(self->t.edu[0]);
	rs_set_trap_mode(self->t.edu[0], "none");
	rs_set_trap_mode(self->t.edu[1], "none");
}

static bool has_precopy(FIXTURE_DATA(mig) *self)
{
	return self->flags & VFIO_MIGRATION_PRE_COPY;
}

static int state_of(struct mig_side *s)
{
	uint32_t st;

	return mig_get_state(&s->d, &st) ? -1 : (int)st;
}

/* A DMA round trip through the device: guest RAM -> buffer -> RAM. */
static int round_trip(struct edu *e, struct mig_side *s, uint64_t seed)
{
	uint64_t in = RAM_IOVA + 0x10000, out = RAM_IOVA + 0x20000;
	struct edu_wl w;
	int ret;

	edu_wl_init(&w, e, &s->ram, seed);
	edu_wl_bytes(&w, mig_host(s, in), 1000);
	memset(mig_host(s, out), 0, 1000);
	ret = edu_dma(e, false, in, 100, 1000, false, 5000);
	if (!ret)
		ret = edu_dma(e, true, out, 100, 1000, false, 5000);
	if (ret)
		return ret;
	return memcmp(mig_host(s, in), mig_host(s, out), 1000) ? -EIO : 0;
}

/* Get the device fd again (the way to abort RESUMING) and the edu. */
static int reopen(struct mig_side *s, struct edu *e)
{
	int ret = vmm_reopen(&s->d);

	return ret ?: edu_probe(e, &s->d, false);
}

static void expect_regs(struct __test_metadata *_metadata, const char *who,
			const struct edu_regs *want, const struct edu_regs *got)
{
	EXPECT_EQ(want->liveness, got->liveness) TH_LOG("%s liveness", who);
	EXPECT_EQ(want->factorial, got->factorial) TH_LOG("%s factorial", who);
	EXPECT_EQ(want->status, got->status) TH_LOG("%s status", who);
	EXPECT_EQ(want->irq_status, got->irq_status)
		TH_LOG("%s irq status", who);
	EXPECT_EQ(want->dma_src, got->dma_src) TH_LOG("%s DMA src", who);
	EXPECT_EQ(want->dma_dst, got->dma_dst) TH_LOG("%s DMA dst", who);
	EXPECT_EQ(want->dma_count, got->dma_count) TH_LOG("%s DMA count", who);
	EXPECT_EQ(want->dma_cmd, got->dma_cmd) TH_LOG("%s DMA cmd", who);
}

/* First page where the two RAMs differ, or -1. */
static long ram_diff(struct mig_side *a, struct mig_side *b)
{
	size_t i;

	for (i = 0; i < RAM_PAGES; i++)
		if (memcmp(mig_host(a, RAM_IOVA + i * MIG_PAGE),
			   mig_host(b, RAM_IOVA + i * MIG_PAGE), MIG_PAGE))
			return i;
	return -1;
}

struct rounds {
	int n;
	long first, last, total;
};

static long ram_round(FIXTURE_DATA(mig) *self, struct rounds *r)
{
	long n = mig_ram_round(&self->log, &self->cpu, &self->a.ram,
			       &self->b.ram, NULL);

	if (n < 0)
		return n;
	if (!r->n++)
		r->first = n;
	r->last = n;
	r->total += n;
	return n;
}

/* The workload runs on A while the VMM copies RAM; then it stops. */
static void run_and_copy(struct __test_metadata *_metadata,
			 FIXTURE_DATA(mig) *self, struct rounds *r,
			 int precopy_fd, int resume_fd, size_t *pre_bytes)
{
	struct mig_buf pre = {};
	ssize_t n;

	ASSERT_EQ(0, wl_start(&self->th, &self->wl, WL_STEPS));
	while (!wl_done(&self->th)) {
		usleep(150 * 1000);
		ASSERT_LE(0, ram_round(self, r)) TH_LOG("%s", self->log.err);
		if (precopy_fd < 0)
			continue;
		pre.len = 0;
		n = mig_read_precopy(precopy_fd, &pre);
		ASSERT_LE(0, n) TH_LOG("PRE_COPY read: %s", strerror(-n));
		*pre_bytes += n;
		ASSERT_EQ(0, mig_write_stream(resume_fd, pre.data, pre.len,
					      4096));
	}
	mig_buf_free(&pre);
	ASSERT_EQ(0, wl_join(&self->th));
	EXPECT_EQ(0, self->wl.errors) TH_LOG("workload on A: %s",
					     self->wl.why);
	/* the vCPUs are idle now: the rounds should converge */
	ASSERT_LE(0, ram_round(self, r));
	ASSERT_LE(0, ram_round(self, r));
	TH_LOG("workload on A: %lu DMAs in, %lu out, %lu checks; %d RAM rounds, pages: first %ld, last %ld, total %ld",
	       self->wl.dmas_in, self->wl.dmas_out, self->wl.checks, r->n,
	       r->first, r->last, r->total);
}

/* The vCPU's last act before the switchover: a DMA still in flight. */
struct inflight {
	uint64_t iova;
	uint32_t off, len;
};

static void start_inflight(struct __test_metadata *_metadata,
			   FIXTURE_DATA(mig) *self, struct inflight *f)
{
	f->len = 1 + edu_wl_rand(&self->wl) % EDU_DMA_MAX;
	f->off = edu_wl_rand(&self->wl) % (EDU_BUF_SIZE - f->len);
	f->iova = RAM_IOVA + MIG_PAGE +
		  edu_wl_rand(&self->wl) % (RAM_SIZE / 2);
	ASSERT_EQ(0, edu_dma_start(&self->ea, true, f->iova, f->off, f->len,
				   false));
}

/* B takes over: registers, buffer and RAM as A left them; goes on. */
static void verify_target(struct __test_metadata *_metadata,
			  FIXTURE_DATA(mig) *self,
			  const struct edu_regs *at_switch,
			  const struct inflight *f)
{
	static uint8_t bufa[EDU_BUF_SIZE], bufb[EDU_BUF_SIZE];
	struct edu_regs ra, rb, want = *at_switch;
	long diff;

	/* the DMA in flight at the switchover had ended on A */
	want.dma_cmd &= ~(uint64_t)EDU_DMA_START;
	EXPECT_EQ(0, memcmp(mig_host(&self->b, f->iova),
			    self->wl.buf + f->off, f->len))
		TH_LOG("the DMA in flight at the switchover is missing on B");
	diff = ram_diff(&self->a, &self->b);
	EXPECT_EQ(-1, diff) TH_LOG("RAM differs after B resumed, page %ld",
				   diff);

	edu_regs_read(&self->eb, &rb);
	expect_regs(_metadata, "B", &want, &rb);
	/* A, back in RUNNING, was not changed by the save either */
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	edu_regs_read(&self->ea, &ra);
	expect_regs(_metadata, "A", &want, &ra);

	ASSERT_EQ(0, rs_edu_read_buffer(&self->ea, PEEK_IOVA,
					mig_host(&self->a, PEEK_IOVA), bufa));
	ASSERT_EQ(0, rs_edu_read_buffer(&self->eb, PEEK_IOVA,
					mig_host(&self->b, PEEK_IOVA), bufb));
	EXPECT_EQ(0, memcmp(bufa, self->wl.buf, EDU_BUF_SIZE - 1))
		TH_LOG("A's buffer differs from the workload's model");
	EXPECT_EQ(0, memcmp(bufb, self->wl.buf, EDU_BUF_SIZE - 1))
		TH_LOG("B's buffer differs from A's");

	/* the workload goes on, on B */
	self->wl.e = &self->eb;
	self->wl.ram = &self->b.ram;
	self->wl.vcpu_write = NULL;
	for (int i = 0; i < WL_STEPS_AFTER; i++)
		ASSERT_EQ(0, edu_wl_step(&self->wl));
	EXPECT_EQ(0, self->wl.errors) TH_LOG("workload on B: %s",
					     self->wl.why);
	EXPECT_EQ(0, round_trip(&self->eb, &self->b, self->seed));
}

/* B: STOP -> RESUMING; the caller writes the stream. */
static void target_resuming(struct __test_metadata *_metadata,
			    FIXTURE_DATA(mig) *self)
{
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RESUMING,
				   &self->fd_b));
	ASSERT_LE(0, self->fd_b);
}

/* B: RESUMING -> STOP -> RUNNING. */
static void target_run(struct __test_metadata *_metadata,
		       FIXTURE_DATA(mig) *self)
{
	int ret;

	ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL);
	ASSERT_EQ(0, ret) TH_LOG("B: RESUMING -> STOP: %s", strerror(-ret));
	close(self->fd_b);
	self->fd_b = -1;
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->b));
}

/*
 * After STOP_COPY's end of stream: the last RAM round, A to STOP, RAM
 * compared.
 */
static void source_finish(struct __test_metadata *_metadata,
			  FIXTURE_DATA(mig) *self, struct rounds *r)
{
	long diff;

	ASSERT_LE(0, ram_round(self, r)) TH_LOG("%s", self->log.err);
	TH_LOG("final RAM round: %ld pages", r->last);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP, NULL));
	close(self->fd_a);
	self->fd_a = -1;
	ASSERT_EQ(0, mig_dirty_stop(&self->log)) TH_LOG("%s", self->log.err);
	diff = ram_diff(&self->a, &self->b);
	ASSERT_EQ(-1, diff) TH_LOG("RAM differs at switchover, page %ld (%#llx)",
				   diff, RAM_IOVA + diff * MIG_PAGE);
}

static void migrate_stop_copy(struct __test_metadata *_metadata,
			      FIXTURE_DATA(mig) *self, bool netlink)
{
	struct mig_buf stream = {};
	struct edu_regs at_switch;
	struct rounds r = {};
	struct inflight f;
	uint64_t t0, est = 0;
	ssize_t n;
	int ret;

	ret = mig_dirty_start(&self->log, &self->a.d, RAM_IOVA, RAM_SIZE,
			      netlink);
	ASSERT_EQ(0, ret) TH_LOG("dirty log: %s", self->log.err);
	TH_LOG("dirty log through %s", mig_dirty_via_name(self->log.via));
	mig_cpu_mark_all(&self->cpu);	/* round 1 copies all RAM */
	ASSERT_EQ(0, edu_wl_fill(&self->wl));
	run_and_copy(_metadata, self, &r, -1, -1, NULL);

	/* switchover, a DMA in flight and a RAM round while it flies */
	start_inflight(_metadata, self, &f);
	edu_regs_read(&self->ea, &at_switch);
	ASSERT_LE(0, ram_round(self, &r));
	/* MIG_DATA_SIZE: the core's from 6.3, the driver's on 6.1 */
	ret = mig_data_size(&self->a.d, &est);
	EXPECT_EQ(0, ret);
	t0 = vmm_now_us();
	ret = mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
			    &self->fd_a);
	ASSERT_EQ(0, ret) TH_LOG("A: RUNNING -> STOP_COPY: %s",
				 strerror(-ret));
	ASSERT_LE(0, self->fd_a);
	n = mig_read_stop_copy(self->fd_a, &stream);
	ASSERT_LT(0, n) TH_LOG("STOP_COPY read: %s", strerror(-n));
	TH_LOG("STOP_COPY: %zd bytes in %llu us (MIG_DATA_SIZE: %llu)",
	       n, (unsigned long long)(vmm_now_us() - t0),
	       (unsigned long long)est);
	EXPECT_EQ(0, memcmp(mig_host(&self->a, f.iova),
			    self->wl.buf + f.off, f.len))
		TH_LOG("the DMA in flight did not complete before STOP_COPY");
	source_finish(_metadata, self, &r);

	target_resuming(_metadata, self);
	ret = mig_write_stream(self->fd_b, stream.data, stream.len, 4096);
	ASSERT_EQ(0, ret) TH_LOG("RESUMING write: %s", strerror(-ret));
	target_run(_metadata, self);
	verify_target(_metadata, self, &at_switch, &f);
	mig_buf_free(&stream);
}

TEST_F_TIMEOUT(mig, stop_copy, 300)
{
	migrate_stop_copy(_metadata, self, false);
}

TEST_F_TIMEOUT(mig, stop_copy_netlink_dirty_log, 300)
{
	struct mig_dirty probe;

	/* Where VFIO DMA logging is missing, stop_copy used netlink already. */
	if (!mig_dirty_start(&probe, &self->a.d, RAM_IOVA, RAM_SIZE, false)) {
		bool vfio = probe.via == MIG_DIRTY_VFIO;

		mig_dirty_stop(&probe);
		if (!vfio)
			SKIP(return, "no VFIO DMA logging: stop_copy ran on the netlink dirty log");
	}
	migrate_stop_copy(_metadata, self, true);
}

TEST_F_TIMEOUT(mig, pre_copy, 300)
{
	struct mig_buf stream = {};
	uint64_t initial, dirty, est;
	struct edu_regs at_switch;
	uint8_t probe[16];
	size_t pre_bytes = 0;
	struct rounds r = {};
	struct inflight f;
	int fd = -1, ret;
	ssize_t n;

	if (!has_precopy(self))
		SKIP(return, "no PRE_COPY: migration flags %#llx (kernel < 6.2)",
		     (unsigned long long)self->flags);
	ret = mig_dirty_start(&self->log, &self->a.d, RAM_IOVA, RAM_SIZE,
			      false);
	ASSERT_EQ(0, ret) TH_LOG("dirty log: %s", self->log.err);
	mig_cpu_mark_all(&self->cpu);
	ASSERT_EQ(0, edu_wl_fill(&self->wl));

	/* B listens from the start; A saves while it runs */
	target_resuming(_metadata, self);
	ret = mig_set_state(&self->a.d, VFIO_DEVICE_STATE_PRE_COPY,
			    &self->fd_a);
	ASSERT_EQ(0, ret) TH_LOG("A: RUNNING -> PRE_COPY: %s", strerror(-ret));
	ASSERT_LE(0, self->fd_a);
	ASSERT_EQ(0, mig_precopy_info(self->fd_a, &initial, &dirty));
	EXPECT_LT(0, initial) TH_LOG("PRE_COPY starts with no initial bytes");
	EXPECT_EQ(0, mig_data_size(&self->a.d, &est));
	TH_LOG("PRE_COPY: initial %llu, dirty %llu; MIG_DATA_SIZE %llu",
	       (unsigned long long)initial, (unsigned long long)dirty,
	       (unsigned long long)est);
	run_and_copy(_metadata, self, &r, self->fd_a, self->fd_b, &pre_bytes);

	/* idle device: drain, then the temporary end of stream */
	n = mig_read_precopy(self->fd_a, &stream);
	ASSERT_LE(0, n);
	pre_bytes += n;
	ASSERT_EQ(0, mig_write_stream(self->fd_b, stream.data, stream.len,
				      4096));
	ASSERT_EQ(0, mig_precopy_info(self->fd_a, &initial, &dirty));
	EXPECT_EQ(0, initial);
	EXPECT_EQ(0, dirty);
	stream.len = 0;
	errno = 0;
	n = read(self->fd_a, probe, sizeof(probe));
	EXPECT_EQ(-1, n) TH_LOG("read() at PRE_COPY's end of data");
	EXPECT_EQ(ENOMSG, errno) TH_LOG("read() at PRE_COPY's end of data");
	if (n > 0)	/* keep the stream whole for B */
		ASSERT_EQ(0, mig_write_stream(self->fd_b, probe, n, n));

	start_inflight(_metadata, self, &f);
	edu_regs_read(&self->ea, &at_switch);
	ASSERT_LE(0, ram_round(self, &r));
	ret = mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	ASSERT_EQ(0, ret) TH_LOG("A: PRE_COPY -> STOP_COPY: %s",
				 strerror(-ret));
	EXPECT_EQ(-1, fd) TH_LOG("PRE_COPY -> STOP_COPY keeps the data fd");
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(-EINVAL, mig_precopy_info(self->fd_a, &initial, &dirty))
		TH_LOG("PRECOPY_INFO outside PRE_COPY");
	n = mig_read_stop_copy(self->fd_a, &stream);
	ASSERT_LT(0, n) TH_LOG("STOP_COPY read: %s", strerror(-n));
	TH_LOG("stream: %zu bytes in PRE_COPY, %zd in STOP_COPY", pre_bytes, n);
	EXPECT_EQ(0, memcmp(mig_host(&self->a, f.iova),
			    self->wl.buf + f.off, f.len))
		TH_LOG("the DMA in flight did not complete before STOP_COPY");
	source_finish(_metadata, self, &r);

	ret = mig_write_stream(self->fd_b, stream.data, stream.len, 4096);
	ASSERT_EQ(0, ret) TH_LOG("RESUMING write: %s", strerror(-ret));
	target_run(_metadata, self);
	verify_target(_metadata, self, &at_switch, &f);
	mig_buf_free(&stream);
}

/* ---- completeness of the dirty log ---- */

#define SRC_PAGES	6
#define WINDOWS		3
#define WINDOW_DMAS	10

static bool in_set(const size_t *set, int n, size_t page)
{
	for (int i = 0; i < n; i++)
		if (set[i] == page)
			return true;
	return false;
}

/* A to-RAM range that touches none of the source pages. */
static void pick_dst(struct edu_wl *w, const size_t *src, uint64_t *iova,
		     uint32_t len)
{
	size_t p, first, last;
	bool clash;

	do {
		*iova = RAM_IOVA + MIG_PAGE +
			edu_wl_rand(w) % (RAM_SIZE - MIG_PAGE - len);
		first = (*iova - RAM_IOVA) / MIG_PAGE;
		last = (*iova + len - 1 - RAM_IOVA) / MIG_PAGE;
		clash = false;
		for (p = first; p <= last; p++)
			clash |= in_set(src, SRC_PAGES, p);
	} while (clash);
}

/* One window: DMAs both ways, reports also while a DMA is in flight. */
static int dma_window(FIXTURE_DATA(mig) *self, const size_t *src,
		      uint64_t *reported)
{
	struct edu_wl *w = &self->wl;
	int k, ret = 0;

	for (k = 0; k < WINDOW_DMAS && !ret; k++) {
		uint32_t len = 1 + edu_wl_rand(w) % EDU_DMA_MAX;
		uint32_t off = edu_wl_rand(w) % (EDU_BUF_SIZE - len);
		uint64_t iova;

		if (edu_wl_rand(w) % 3 == 0) {
			/* RAM -> device from inside one source page */
			uint32_t in = edu_wl_rand(w) % MIG_PAGE;

			len = len > MIG_PAGE - in ? MIG_PAGE - in : len;
			iova = RAM_IOVA + src[k % SRC_PAGES] * MIG_PAGE + in;
			ret = edu_dma(w->e, false, iova, off, len, false, 5000);
			continue;
		}
		pick_dst(w, src, &iova, len);
		if (k % 2) {
			ret = edu_dma(w->e, true, iova, off, len, false, 5000);
			continue;
		}
		ret = edu_dma_start(w->e, true, iova, off, len, false);
		if (!ret)
			ret = mig_dirty_report(&self->log, reported);
		if (!ret)
			ret = edu_dma_wait(w->e, 5000);
	}
	return ret;
}

static void completeness(struct __test_metadata *_metadata,
			 FIXTURE_DATA(mig) *self, const char *mode,
			 bool netlink)
{
	static uint8_t snap[RAM_SIZE];
	uint64_t reported[RAM_WORDS], scratch[RAM_WORDS];
	size_t src[SRC_PAGES], p, missing = 0, fp = 0, changed = 0;
	struct mig_side *a = &self->a;
	uint8_t page[MIG_PAGE];
	int i, win, ret;

	if (strcmp(mode, "sparse")) {
		mig_side_close(a);
		ASSERT_EQ(0, mig_side_open(a, self->t.edu[0], mode, RAM_IOVA,
					   RAM_SIZE));
		ASSERT_EQ(0, edu_probe(&self->ea, &a->d, false));
	}
	ret = mig_dirty_start(&self->log, &a->d, RAM_IOVA, RAM_SIZE, netlink);
	ASSERT_EQ(0, ret) TH_LOG("dirty log: %s", self->log.err);
	TH_LOG("trap mode %s, dirty log through %s", mode,
	       mig_dirty_via_name(self->log.via));
	self->wl.vcpu_write = NULL;
	/* every byte the device will write is non-zero, RAM starts zeroed */
	ASSERT_EQ(0, edu_wl_fill(&self->wl));

	for (win = 0; win < WINDOWS; win++) {
		memset(a->ram.host, 0, RAM_SIZE);
		for (i = 0; i < SRC_PAGES; i++) {
			do {
				src[i] = 1 + edu_wl_rand(&self->wl) %
					     (RAM_PAGES - 1);
			} while (in_set(src, i, src[i]));
			edu_wl_bytes(&self->wl, page, MIG_PAGE);
			memcpy(mig_host(a, RAM_IOVA + src[i] * MIG_PAGE), page,
			       MIG_PAGE);
		}
		memcpy(snap, a->ram.host, RAM_SIZE);
		memset(scratch, 0, sizeof(scratch));
		ASSERT_EQ(0, mig_dirty_report(&self->log, scratch));
		memset(reported, 0, sizeof(reported));
		ASSERT_EQ(0, dma_window(self, src, reported));
		ASSERT_EQ(0, mig_dirty_report(&self->log, reported))
			TH_LOG("%s", self->log.err);

		for (p = 0; p < RAM_PAGES; p++) {
			bool chg = memcmp(snap + p * MIG_PAGE,
					  mig_host(a, RAM_IOVA + p * MIG_PAGE),
					  MIG_PAGE);
			bool rep = mig_test_bit(reported, p);

			changed += chg;
			if (chg && !rep) {
				missing++;
				TH_LOG("window %d: page %#llx changed, not reported",
				       win, RAM_IOVA + p * MIG_PAGE);
			}
			if (rep && !chg) {
				fp++;
				TH_LOG("window %d: page %#llx reported, unchanged%s",
				       win, RAM_IOVA + p * MIG_PAGE,
				       in_set(src, SRC_PAGES, p) ?
				       " (a DMA source)" : "");
			}
		}
	}
	TH_LOG("%d windows: %zu pages changed, %zu missing from the log, %zu false positives",
	       WINDOWS, changed, missing, fp);
	EXPECT_LT(0, changed);
	EXPECT_EQ(0, missing);
	EXPECT_EQ(0, fp) TH_LOG("the edu decoder should report exactly the written pages");
}

TEST_F_TIMEOUT(mig, dirty_log_complete, 120)
{
	completeness(_metadata, self, "sparse", false);
}

TEST_F_TIMEOUT(mig, dirty_log_complete_trap_all, 120)
{
	completeness(_metadata, self, "all", false);
}

TEST_F_TIMEOUT(mig, dirty_log_complete_netlink, 120)
{
	completeness(_metadata, self, "sparse", true);
}

/* ---- the state machine's forbidden arcs ---- */

static bool supported(uint64_t flags, uint32_t st)
{
	switch (st) {
	case VFIO_DEVICE_STATE_STOP:
	case VFIO_DEVICE_STATE_RUNNING:
	case VFIO_DEVICE_STATE_STOP_COPY:
	case VFIO_DEVICE_STATE_RESUMING:
		return true;
	case VFIO_DEVICE_STATE_RUNNING_P2P:
		return flags & VFIO_MIGRATION_P2P;
	case VFIO_DEVICE_STATE_PRE_COPY:
		return flags & VFIO_MIGRATION_PRE_COPY;
	case VFIO_DEVICE_STATE_PRE_COPY_P2P:
		return (flags & VFIO_MIGRATION_PRE_COPY) &&
		       (flags & VFIO_MIGRATION_P2P);
	default:
		return false;
	}
}

/* Is the arc @from -> @to one the uAPI forbids? */
static bool forbidden(uint64_t flags, uint32_t from, uint32_t to)
{
	if (!supported(flags, to))	/* ERROR, out of range, optional */
		return true;
	return from == VFIO_DEVICE_STATE_STOP_COPY &&
	       (to == VFIO_DEVICE_STATE_PRE_COPY ||
		to == VFIO_DEVICE_STATE_PRE_COPY_P2P);
}

TEST_F_TIMEOUT(mig, illegal_arcs, 300)
{
	static const uint32_t extra[] = { MIG_STATE_NR, MIG_STATE_NR + 1, 100,
					  0x7fffffff, 0x80000000,
					  0xffffffff };
	uint32_t from, to, cand[MIG_STATE_NR + 6];
	int ncand = 0, refused = 0, i, fd, ret;

	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, false));
	for (to = 0; to < MIG_STATE_NR; to++)
		cand[ncand++] = to;
	for (i = 0; i < 6; i++)
		cand[ncand++] = extra[i];
	TH_LOG("migration flags %#llx", (unsigned long long)self->flags);

	for (from = 1; from < MIG_STATE_NR; from++) {
		if (!supported(self->flags, from))
			continue;
		ret = mig_set_state(&self->a.d, from, &self->fd_a);
		ASSERT_EQ(0, ret) TH_LOG("to %s: %s", mig_state_name(from),
					 strerror(-ret));
		for (i = 0; i < ncand; i++) {
			to = cand[i];
			if (!forbidden(self->flags, from, to))
				continue;
			fd = -2;
			ret = mig_set_state(&self->a.d, to, &fd);
			EXPECT_NE(0, ret) TH_LOG("%s -> %s (%u) accepted",
						 mig_state_name(from),
						 mig_state_name(to), to);
			EXPECT_EQ(-EINVAL, ret);
			if (fd >= 0)
				close(fd);
			EXPECT_EQ((int)from, state_of(&self->a))
				TH_LOG("after the refused %s -> %s (%u)",
				       mig_state_name(from),
				       mig_state_name(to), to);
			refused += ret != 0;
		}
		if (self->fd_a >= 0)
			close(self->fd_a);
		self->fd_a = -1;
		/* back to RUNNING; RESUMING without a stream: reopen */
		if (from == VFIO_DEVICE_STATE_RESUMING) {
			ASSERT_EQ(0, reopen(&self->a, &self->ea));
		} else {
			ASSERT_EQ(0, mig_set_state(&self->a.d,
						   VFIO_DEVICE_STATE_RUNNING,
						   NULL));
		}
		ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
	}
	TH_LOG("%d forbidden arcs refused", refused);
	EXPECT_EQ(0, round_trip(&self->ea, &self->a, self->seed));
}

/* ---- data fd and device fd closed mid-session ---- */

/* A whole stream of A, A back in RUNNING. */
static void take_stream(struct __test_metadata *_metadata,
			FIXTURE_DATA(mig) *self, struct mig_buf *stream)
{
	int fd;

	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   &fd));
	ASSERT_LT(0, mig_read_stop_copy(fd, stream));
	close(fd);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
}

static void expect_running_and_working(struct __test_metadata *_metadata,
				       FIXTURE_DATA(mig) *self,
				       struct mig_side *s, struct edu *e)
{
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(s));
	EXPECT_EQ(0, round_trip(e, s, self->seed));
}

TEST_F_TIMEOUT(mig, close_data_fd_mid_stop_copy, 120)
{
	uint8_t part[64];

	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, false));
	ASSERT_EQ(0, edu_wl_fill(&self->wl));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   &self->fd_a));
	ASSERT_LT(0, read(self->fd_a, part, sizeof(part)));
	close(self->fd_a);
	self->fd_a = -1;
	EXPECT_EQ(VFIO_DEVICE_STATE_STOP_COPY, state_of(&self->a));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	expect_running_and_working(_metadata, self, &self->a, &self->ea);
}

TEST_F_TIMEOUT(mig, close_data_fd_mid_pre_copy, 120)
{
	uint8_t part[16];

	if (!has_precopy(self))
		SKIP(return, "no PRE_COPY: migration flags %#llx (kernel < 6.2)",
		     (unsigned long long)self->flags);
	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, false));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_PRE_COPY,
				   &self->fd_a));
	ASSERT_LT(0, read(self->fd_a, part, sizeof(part)));
	close(self->fd_a);
	self->fd_a = -1;
	EXPECT_EQ(VFIO_DEVICE_STATE_PRE_COPY, state_of(&self->a));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	expect_running_and_working(_metadata, self, &self->a, &self->ea);
}

TEST_F_TIMEOUT(mig, close_data_fd_mid_resuming, 120)
{
	struct mig_buf stream = {};

	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, false));
	take_stream(_metadata, self, &stream);
	target_resuming(_metadata, self);
	ASSERT_EQ(0, mig_write_stream(self->fd_b, stream.data, stream.len / 2,
				      512));
	close(self->fd_b);
	self->fd_b = -1;
	EXPECT_EQ(VFIO_DEVICE_STATE_RESUMING, state_of(&self->b));
	/* half a stream: RESUMING -> STOP must refuse it */
	EXPECT_NE(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL));
	EXPECT_EQ(VFIO_DEVICE_STATE_RESUMING, state_of(&self->b));
	ASSERT_EQ(0, reopen(&self->b, &self->eb));
	expect_running_and_working(_metadata, self, &self->b, &self->eb);
	mig_buf_free(&stream);
}

TEST_F_TIMEOUT(mig, close_device_fd_in_stop_copy, 120)
{
	uint8_t part[64];
	ssize_t n;

	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, false));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   &self->fd_a));
	ASSERT_LT(0, read(self->fd_a, part, sizeof(part)));
	ASSERT_EQ(0, vmm_fd_close(&self->a.d));
	/* the session is over: the data fd may say so, must not crash */
	n = read(self->fd_a, part, sizeof(part));
	TH_LOG("read() on the orphaned data fd: %zd (%s)", n,
	       n < 0 ? strerror(errno) : "no error");
	close(self->fd_a);
	self->fd_a = -1;
	ASSERT_EQ(0, vmm_fd_open(&self->a.d));
	ASSERT_EQ(0, edu_probe(&self->ea, &self->a.d, false));
	expect_running_and_working(_metadata, self, &self->a, &self->ea);
}

TEST_F_TIMEOUT(mig, close_device_fd_in_resuming, 120)
{
	struct mig_buf stream = {};
	ssize_t n;

	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, false));
	take_stream(_metadata, self, &stream);
	target_resuming(_metadata, self);
	ASSERT_EQ(0, mig_write_stream(self->fd_b, stream.data, stream.len / 3,
				      100));
	ASSERT_EQ(0, vmm_fd_close(&self->b.d));
	n = write(self->fd_b, stream.data + stream.len / 3, 64);
	TH_LOG("write() on the orphaned data fd: %zd (%s)", n,
	       n < 0 ? strerror(errno) : "no error");
	close(self->fd_b);
	self->fd_b = -1;
	ASSERT_EQ(0, vmm_fd_open(&self->b.d));
	ASSERT_EQ(0, edu_probe(&self->eb, &self->b.d, false));
	expect_running_and_working(_metadata, self, &self->b, &self->eb);
	mig_buf_free(&stream);
}

/* ---- RUNNING_P2P ---- */

#define P2P_IOVA	(RAM_IOVA + 0x80000)
#define P2P_LEN		1500u
#define P2P_OFF		200u

static void p2p_prepare(struct __test_metadata *_metadata,
			FIXTURE_DATA(mig) *self)
{
	self->wl.vcpu_write = NULL;
	ASSERT_EQ(0, edu_wl_fill(&self->wl));
	memset(mig_host(&self->a, P2P_IOVA), 0, P2P_LEN);
	memset(mig_host(&self->b, P2P_IOVA), 0, P2P_LEN);
}

static bool p2p_landed(FIXTURE_DATA(mig) *self, struct mig_side *s)
{
	return !memcmp(mig_host(s, P2P_IOVA), self->wl.buf + P2P_OFF, P2P_LEN);
}

static bool untouched(struct mig_side *s)
{
	for (unsigned int i = 0; i < P2P_LEN; i++)
		if (mig_host(s, P2P_IOVA)[i])
			return false;
	return true;
}

TEST_F_TIMEOUT(mig, p2p_holds_new_dma, 60)
{
	if (!(self->flags & VFIO_MIGRATION_P2P))
		SKIP(return, "no VFIO_MIGRATION_P2P");
	p2p_prepare(_metadata, self);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING_P2P,
				   NULL));
	ASSERT_EQ(0, edu_dma_start(&self->ea, true, P2P_IOVA, P2P_OFF,
				   P2P_LEN, false));
	usleep(500 * 1000);	/* five times what the DMA takes */
	EXPECT_TRUE(untouched(&self->a))
		TH_LOG("a DMA started in RUNNING_P2P reached guest RAM");
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	ASSERT_EQ(0, edu_dma_wait(&self->ea, 5000));
	EXPECT_TRUE(p2p_landed(self, &self->a))
		TH_LOG("the held DMA did not run after RUNNING_P2P -> RUNNING");
	EXPECT_EQ(0, round_trip(&self->ea, &self->a, self->seed));
}

TEST_F_TIMEOUT(mig, p2p_waits_for_inflight_dma, 60)
{
	uint64_t t0, us;

	if (!(self->flags & VFIO_MIGRATION_P2P))
		SKIP(return, "no VFIO_MIGRATION_P2P");
	p2p_prepare(_metadata, self);
	ASSERT_EQ(0, edu_dma_start(&self->ea, true, P2P_IOVA, P2P_OFF,
				   P2P_LEN, false));
	t0 = vmm_now_us();
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING_P2P,
				   NULL));
	us = vmm_now_us() - t0;
	EXPECT_TRUE(p2p_landed(self, &self->a))
		TH_LOG("RUNNING -> RUNNING_P2P returned after %llu us with the DMA unfinished",
		       (unsigned long long)us);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	EXPECT_EQ(0, edu_rd(&self->ea, EDU_REG_DMA_CMD) & EDU_DMA_START);
	EXPECT_EQ(0, round_trip(&self->ea, &self->a, self->seed));
}

/*
 * Starts the device would not make, which QEMU 7.2's edu answers by
 * aborting the whole VM (hw_error()): of no bytes, of the whole buffer
 * (its last byte), ending on its last byte, or beside it either way. The
 * profile does not pass them on: the start bit reads clear, no byte of
 * guest RAM changes, and the device works on.
 */
TEST_F_TIMEOUT(mig, out_of_buffer_starts_not_made, 60)
{
	static const struct {
		bool to_ram;
		uint64_t dev, count;
	} bad[] = {
		{ true, EDU_BUF_ADDR, 0 },
		{ true, EDU_BUF_ADDR, EDU_BUF_SIZE },
		{ true, EDU_BUF_ADDR + 1, EDU_BUF_SIZE - 1 },
		{ false, EDU_BUF_ADDR - 8, 16 },
		{ false, EDU_BUF_ADDR + EDU_BUF_SIZE, 8 },
	};
	uint8_t *ram = mig_host(&self->a, RAM_IOVA);
	unsigned int i, k;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(ram, 0x77, 2 * MIG_PAGE);
		edu_wr64(&self->ea, EDU_REG_DMA_SRC,
			 bad[i].to_ram ? bad[i].dev : RAM_IOVA);
		edu_wr64(&self->ea, EDU_REG_DMA_DST,
			 bad[i].to_ram ? RAM_IOVA : bad[i].dev);
		edu_wr64(&self->ea, EDU_REG_DMA_COUNT, bad[i].count);
		edu_wr64(&self->ea, EDU_REG_DMA_CMD, EDU_DMA_START |
			 (bad[i].to_ram ? EDU_DMA_TO_RAM : 0));
		usleep(300 * 1000);	/* three times what a transfer takes */
		EXPECT_EQ(0, edu_rd(&self->ea, EDU_REG_DMA_CMD) & EDU_DMA_START)
			TH_LOG("start %u reached the device", i);
		for (k = 0; k < 2 * MIG_PAGE && ram[k] == 0x77; k++)
			;
		EXPECT_EQ(2 * MIG_PAGE, k) TH_LOG("start %u wrote guest RAM", i);
	}
	EXPECT_EQ(0, round_trip(&self->ea, &self->a, self->seed));
}

/*
 * A stop of A whose save stalls as test hook @hook says, its engine and
 * the page the save borrows (none named: IOVA 1 MiB, the guest's own)
 * holding the guest's values; then, the stop failed and A back in
 * RUNNING, the page and the engine are the guest's again.
 */
static void stalled_save(struct __test_metadata *_metadata,
			 FIXTURE_DATA(mig) *self, const char *hook, int want)
{
	uint8_t *page = mig_host(&self->a, RAM_IOVA);
	struct edu_regs r;
	unsigned int k;
	uint32_t st;
	int ret;

	memset(page, 0x3c, MIG_PAGE);
	edu_wr64(&self->ea, EDU_REG_DMA_SRC, EDU_BUF_ADDR + 8);
	edu_wr64(&self->ea, EDU_REG_DMA_DST, RAM_IOVA + 0x30000);
	edu_wr64(&self->ea, EDU_REG_DMA_COUNT, 64);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, rs_ctl(self->t.edu[0], hook));
	ret = mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
			    &self->fd_a);
	EXPECT_EQ(want, ret) TH_LOG("the stop: %s", strerror(-ret));
	ASSERT_EQ(0, mig_get_state(&self->a.d, &st));
	ASSERT_EQ(VFIO_DEVICE_STATE_STOP, st);
	/* the guest reads its own source meanwhile */
	edu_regs_read(&self->ea, &r);
	EXPECT_EQ(EDU_BUF_ADDR + 8, r.dma_src);
	usleep(300 * 1000);	/* three times what a transfer takes */
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	for (k = 0; k < MIG_PAGE && page[k] == 0x3c; k++)
		;
	EXPECT_EQ(MIG_PAGE, k)
		TH_LOG("the page the save borrowed is not the guest's (byte %u)",
		       k);
	edu_regs_read(&self->ea, &r);
	EXPECT_EQ(EDU_BUF_ADDR + 8, r.dma_src);
	EXPECT_EQ(RAM_IOVA + 0x30000, r.dma_dst);
	EXPECT_EQ(64, r.dma_count);
	EXPECT_EQ(0, round_trip(&self->ea, &self->a, self->seed));
}

/*
 * A save whose own transfer ends after the profile gave up waiting for it
 * (test hook "stall-save": it gives up at once): the page goes back only
 * once the transfer ended, and the engine gets the guest's addresses
 * back, though the stop fails (EIO). Before, the late transfer landed
 * over the page put back, and the guest read the profile's addresses.
 */
TEST_F_TIMEOUT(mig, save_transfer_ending_late, 60)
{
	stalled_save(_metadata, self, "stall-save", -EIO);
}

/*
 * As save_transfer_ending_late, but the save also gives up its wait for
 * the late end (test hook "stall-save-stuck": a transfer that never
 * ends, as far as the save can tell): the stop fails with ETIMEDOUT, the
 * guest reads its own addresses meanwhile, and the page's saved contents
 * go back once the engine is seen idle, on the way back to RUNNING, over
 * what the transfer wrote; the guest's addresses go back with them.
 */
TEST_F_TIMEOUT(mig, save_transfer_never_ending, 60)
{
	stalled_save(_metadata, self, "stall-save-stuck", -ETIMEDOUT);
}

/*
 * A VMM's VFIO DMA logging report reads the log it started, no other: once
 * an admin stopped that log through netlink and started another, the
 * VMM's report fails instead of reading (and clearing) the admin's log,
 * whose ranges and start are not the VMM's: the pages dirtied between
 * the two logs would be lost to it without a word.
 */
TEST_F_TIMEOUT(mig, vfio_report_reads_only_the_vmm_log, 60)
{
	size_t words = mig_bitmap_words(RAM_SIZE);
	uint64_t *bits = calloc(words, 8);
	struct mig_dirty admin = { .nl.fd = -1 };

	ASSERT_NE(NULL, bits);
	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, false))
		TH_LOG("%s", self->log.err);
	if (self->log.via != MIG_DIRTY_VFIO) {
		free(bits);
		SKIP(return, "no VFIO DMA logging on this kernel");
	}
	EXPECT_EQ(0, mig_dirty_report(&self->log, bits));
	ASSERT_EQ(0, mig_dirty_kill(self->t.edu[0]));
	ASSERT_EQ(0, mig_dirty_start(&admin, &self->a.d, RAM_IOVA, RAM_SIZE,
				     true))
		TH_LOG("%s", admin.err);
	/* a page the device writes now is the admin's log's */
	ASSERT_EQ(0, edu_dma(&self->ea, true, RAM_IOVA + 0x7000, 0, 64, false,
			     3000));
	EXPECT_EQ(-EINVAL, mig_dirty_report(&self->log, bits))
		TH_LOG("the VMM's report read the log netlink started");
	memset(bits, 0, words * 8);
	EXPECT_EQ(0, mig_dirty_report(&admin, bits));
	EXPECT_TRUE(mig_test_bit(bits, 7))
		TH_LOG("the admin's log lost the page the device wrote");
	EXPECT_EQ(0, mig_dirty_stop(&admin));
	free(bits);
}

TEST_F_TIMEOUT(mig, p2p_held_dma_migrates, 120)
{
	struct mig_buf stream = {};
	int ret;

	if (!(self->flags & VFIO_MIGRATION_P2P))
		SKIP(return, "no VFIO_MIGRATION_P2P");
	p2p_prepare(_metadata, self);
	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, false));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING_P2P,
				   NULL));
	ASSERT_EQ(0, edu_dma_start(&self->ea, true, P2P_IOVA, P2P_OFF,
				   P2P_LEN, false));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   &self->fd_a));
	ASSERT_LT(0, mig_read_stop_copy(self->fd_a, &stream));
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP, NULL));
	EXPECT_TRUE(untouched(&self->a)) TH_LOG("the held DMA ran on A");

	target_resuming(_metadata, self);
	ret = mig_write_stream(self->fd_b, stream.data, stream.len, 1000);
	ASSERT_EQ(0, ret) TH_LOG("RESUMING write: %s", strerror(-ret));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL));
	usleep(300 * 1000);
	EXPECT_TRUE(untouched(&self->b)) TH_LOG("the held DMA ran in STOP");
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	ASSERT_EQ(0, edu_dma_wait(&self->eb, 5000));
	EXPECT_TRUE(p2p_landed(self, &self->b))
		TH_LOG("the held DMA did not run on B");
	EXPECT_TRUE(untouched(&self->a));
	mig_buf_free(&stream);
}

TEST_HARNESS_MAIN
