// SPDX-License-Identifier: GPL-2.0
/*
 * Doorbells of two I/O queues rung concurrently through the nvme profile's
 * trap (issue #14 item 5): one thread of the test VMM per queue, each
 * writing and reading back its own LBAs through its own queue pair, while
 * the main thread reads and clears the dirty log or moves the device
 * through the P2P states. The profile decodes the two queues' doorbells
 * concurrently (the DMA hold lock taken for read and a mutex per queue);
 * the tests check that nothing is lost for it: every read checks, every
 * page the device wrote is in the dirty log, every command completes
 * once across the holds. The last test measures IOPS with one thread on
 * one queue and two threads on two, with the queue path on and off
 * (debugfs vfio-mig/queue_doorbells), in the same boot.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mig.h"
#include "nvme.h"
#include "nvme_vf.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(4u << 20)
#define NSID		1
#define QDEPTH		16
#define SLOTS		8		/* commands in flight per queue */
#define NQ		2
#define TMO		5000
#define STALL_MS	20000		/* no completion for this long: fail */
#define LBA_BASE	20480		/* clear of nvme_test.c's workloads */
#define QUEUE_DB	"/sys/kernel/debug/vfio-mig/queue_doorbells"

/* VF @bdf under the nvme profile (sparse trap), NQ I/O queue pairs. */
static int vf_up(struct nvme_vf *v, const char *bdf, char *err, size_t len)
{
	int ret = nvme_vf_up(v, bdf, TB_DRIVER, RAM_SIZE, RAM_IOVA, NSID, err,
			     len);

	if (ret)
		return ret;
	ret = nvme_create_io_queues(&v->c, NQ, QDEPTH, false);
	if (ret)
		snprintf(err, len, "%s: %s (%s)", bdf, v->c.why,
			 strerror(-ret));
	return ret;
}

/*
 * One thread's I/O on one queue: each of its SLOTS command slots owns
 * SLOT_BYTES worth of LBAs and alternates a Write of a random length at a
 * random offset in its buffer (PRP1, PRP1 + PRP2 or a PRP list) with a
 * Read of the same blocks into a zeroed buffer, checked byte for byte.
 */
struct worker {
	struct nvme_ctrl *c;
	int qid;
	volatile int *stop;
	volatile int *pause;	/* ask the thread to stop ringing */
	volatile int paused;	/* it has: nothing of it runs */
	uint64_t *pages;	/* pages the device wrote Read data to */
	uint64_t rng;
	unsigned long ios, reads, errors, prp_list;
	int ret;
	char why[320];
	struct {
		struct nvme_req *r;
		bool read_next;
		uint32_t gen, nlb, off;
	} s[SLOTS];
};

static uint32_t rnd(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return (uint32_t)(w->rng >> 16);
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = seed >> 16;
	}
}

static uint32_t seed_of(struct worker *w, int i)
{
	return (uint32_t)w->qid << 24 ^ (uint32_t)i << 16 ^ w->s[i].gen;
}

static int submit(struct worker *w, int i)
{
	struct nvme_ctrl *c = w->c;
	struct nvme_req *r = w->s[i].r;
	uint32_t per = NVME_SLOT_BYTES / c->lba_size, max, nlb;
	uint64_t slba = LBA_BASE + ((uint64_t)(w->qid - 1) * SLOTS + i) * per;

	if (!w->s[i].read_next) {
		max = per;
		if (max > c->max_xfer / c->lba_size)
			max = c->max_xfer / c->lba_size;
		nlb = 1 + rnd(w) % max;
		w->s[i].nlb = nlb;
		w->s[i].off = ((rnd(w) % (NVME_SLOT_BYTES - nlb * c->lba_size +
					  1)) & ~3u);
		w->s[i].gen++;
		r->buf_off = w->s[i].off;
		fill(r->buf + r->buf_off, (size_t)nlb * c->lba_size,
		     seed_of(w, i));
		return nvme_io_submit(r, NVME_CMD_WRITE, slba, nlb);
	}
	r->buf_off = w->s[i].off;
	memset(r->buf, 0, NVME_SLOT_BYTES);
	return nvme_io_submit(r, NVME_CMD_READ, slba, w->s[i].nlb);
}

static void mark(uint64_t *bits, uint64_t iova, uint64_t len)
{
	uint64_t pg;

	for (pg = (iova - RAM_IOVA) / MIG_PAGE;
	     pg <= (iova + len - 1 - RAM_IOVA) / MIG_PAGE; pg++)
		bits[pg / 64] |= 1ull << (pg % 64);
}

/* A completed command of slot @i: check a Read, flip the slot. */
static int reap(struct worker *w, int i)
{
	struct nvme_ctrl *c = w->c;
	struct nvme_req *r = w->s[i].r;
	size_t len = (size_t)w->s[i].nlb * c->lba_size;
	uint8_t *want;

	w->ios++;
	if (r->status) {
		snprintf(w->why, sizeof(w->why), "q%d slot %d: status %#x",
			 w->qid, i, r->status);
		return -EIO;
	}
	w->prp_list += r->nr_prps > 2;
	if (!w->s[i].read_next) {
		w->s[i].read_next = true;
		return 0;
	}
	w->reads++;
	if (w->pages)
		mark(w->pages, r->buf_iova + r->buf_off, len);
	want = malloc(len);
	if (!want)
		return -ENOMEM;
	fill(want, len, seed_of(w, i));
	if (memcmp(want, r->buf + r->buf_off, len)) {
		w->errors++;
		snprintf(w->why, sizeof(w->why),
			 "q%d slot %d gen %u: %zu bytes read back differ",
			 w->qid, i, w->s[i].gen, len);
	}
	free(want);
	w->s[i].read_next = false;
	return 0;
}

static bool idle(struct worker *w)
{
	int i;

	for (i = 0; i < SLOTS; i++)
		if (w->s[i].r->busy)
			return false;
	return true;
}

static int slot_of(struct worker *w, struct nvme_req *r)
{
	int i;

	for (i = 0; i < SLOTS; i++)
		if (w->s[i].r == r)
			return i;
	snprintf(w->why, sizeof(w->why), "q%d: command %u is not ours",
		 w->qid, r->cid);
	return -1;
}

static void *run(struct worker *w)
{
	struct nvme_queue *q = nvme_ioq(w->c, w->qid);
	uint64_t last = vmm_now_us();
	struct nvme_req *done[SLOTS];
	int i, n;

	for (;;) {
		bool stopping = *w->stop;

		/* a stopped guest: nothing rings, nothing is reaped */
		if (*w->pause && !stopping) {
			w->paused = 1;
			while (*w->pause && !*w->stop)
				usleep(1000);
			w->paused = 0;
			last = vmm_now_us();
			continue;
		}
		for (i = 0; !stopping && !*w->pause && i < SLOTS; i++) {
			if (w->s[i].r->busy)
				continue;
			w->ret = submit(w, i);
			if (w->ret) {
				snprintf(w->why, sizeof(w->why),
					 "q%d submit: %s", w->qid, w->c->why);
				return NULL;
			}
		}
		if (stopping && idle(w))
			return NULL;
		n = nvme_io_poll(q, done, SLOTS);
		if (n < 0) {
			w->ret = n;
			snprintf(w->why, sizeof(w->why), "q%d poll: %s",
				 w->qid, w->c->why);
			return NULL;
		}
		for (i = 0; i < n; i++) {
			int slot = slot_of(w, done[i]);

			w->ret = slot < 0 ? -EPROTO : reap(w, slot);
			if (w->ret)
				return NULL;
		}
		if (n) {
			last = vmm_now_us();
		} else if (vmm_now_us() - last > STALL_MS * 1000ull) {
			w->ret = -ETIMEDOUT;
			snprintf(w->why, sizeof(w->why),
				 "q%d: no completion for %d ms", w->qid,
				 STALL_MS);
			return NULL;
		} else {
			sched_yield();
		}
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct nvme_queue *q = nvme_ioq(w->c, w->qid);
	int i;

	for (i = 0; i < SLOTS; i++) {
		w->s[i].r = nvme_req_get(q);
		if (!w->s[i].r) {
			w->ret = -ENOSPC;
			snprintf(w->why, sizeof(w->why), "q%d: no free slot",
				 w->qid);
			break;
		}
	}
	if (!w->ret)
		run(w);
	/* the slots go back (the next crew gets them) unless in flight */
	for (i = 0; i < SLOTS && w->s[i].r; i++)
		nvme_req_put(w->s[i].r);
	return NULL;
}

struct crew {
	struct worker w[NQ];
	pthread_t th[NQ];
	int nr;
	volatile int stop, pause;
};

static int crew_start(struct crew *k, struct nvme_ctrl *c, int nr,
		      uint64_t **pages)
{
	int i, ret;

	memset(k, 0, sizeof(*k));
	for (i = 0; i < nr; i++) {
		k->w[i].c = c;
		k->w[i].qid = i + 1;
		k->w[i].stop = &k->stop;
		k->w[i].pause = &k->pause;
		k->w[i].pages = pages ? pages[i] : NULL;
		k->w[i].rng = 0x9e3779b97f4a7c15ull * (i + 1);
	}
	for (i = 0; i < nr; i++) {
		/* slots: the first SLOTS free requests of each queue */
		ret = pthread_create(&k->th[i], NULL, work, &k->w[i]);
		if (ret)
			return -ret;
		k->nr++;
	}
	return 0;
}

static void crew_stop(struct crew *k)
{
	int i;

	k->pause = 0;
	k->stop = 1;
	for (i = 0; i < k->nr; i++)
		pthread_join(k->th[i], NULL);
}

/* Wait until every thread has paused (it rings and reaps nothing). */
static int crew_paused(struct crew *k, int timeout_ms)
{
	uint64_t end = vmm_now_us() + timeout_ms * 1000ull;
	int i;

	for (i = 0; i < k->nr; i++) {
		while (!k->w[i].paused && !k->w[i].ret) {
			if (vmm_now_us() > end)
				return -ETIMEDOUT;
			usleep(1000);
		}
		if (k->w[i].ret)
			return k->w[i].ret;
	}
	return 0;
}

static void crew_check(struct __test_metadata *_metadata, struct crew *k)
{
	int i;

	for (i = 0; i < k->nr; i++) {
		struct worker *w = &k->w[i];
		struct nvme_queue *q = nvme_ioq(w->c, w->qid);

		TH_LOG("queue %d: %lu commands (%lu reads checked, %lu with a PRP list)",
		       w->qid, w->ios, w->reads, w->prp_list);
		EXPECT_EQ(0, w->ret) TH_LOG("%s", w->why);
		EXPECT_EQ(0, w->errors) TH_LOG("%s", w->why);
		EXPECT_LT(10, w->reads);
		/* every command completed, once */
		EXPECT_EQ(q->submitted, q->completed);
		EXPECT_EQ(0, q->inflight);
	}
}

FIXTURE(q2) {
	struct tb_devs t;
	struct nvme_vf vf;
};

FIXTURE_SETUP(q2)
{
	char err[320];

	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(TB_NR_VF, self->t.nr_vf);
	ASSERT_EQ(0, vmm_sysfs_write(QUEUE_DB, "Y"));
	ASSERT_EQ(0, vf_up(&self->vf, self->t.vf[0], err, sizeof(err)))
		TH_LOG("%s", err);
}

FIXTURE_TEARDOWN(q2)
{
	nvme_vf_down(&self->vf);
	vmm_sysfs_write(QUEUE_DB, "Y");
}

/*
 * Two threads, two queues, the dirty log read and cleared by the main
 * thread all along (each report excludes the doorbells, and the marks the
 * submissions made are cleared before the device writes: only the
 * profile's re-marks keep them): every page a Read's data landed in, and
 * the two CQs, are in the union of the reports.
 */
TEST_F_TIMEOUT(q2, concurrent_queues_dirty_log_complete, 120)
{
	const unsigned long words = RAM_SIZE / MIG_PAGE / 64;
	struct nvme_ctrl *c = &self->vf.c;
	uint64_t *seen, *pages[NQ];
	unsigned long i, missed = 0, extra = 0, reports = 0;
	uint64_t end;
	struct mig_dirty log;
	struct crew k;
	int q, ret;

	seen = calloc(words, 8);
	ASSERT_NE(NULL, seen);
	for (q = 0; q < NQ; q++) {
		pages[q] = calloc(words, 8);
		ASSERT_NE(NULL, pages[q]);
	}
	ret = mig_dirty_start(&log, &self->vf.d, RAM_IOVA, RAM_SIZE, true);
	ASSERT_EQ(0, ret) TH_LOG("dirty log: %s", log.err);
	ASSERT_EQ(0, crew_start(&k, c, NQ, pages));
	end = vmm_now_us() + 8000000ull;
	while (vmm_now_us() < end) {
		ret = mig_dirty_report(&log, seen);
		if (ret)
			break;
		reports++;
		usleep(2000);
	}
	crew_stop(&k);
	EXPECT_EQ(0, ret);
	ASSERT_EQ(0, mig_dirty_report(&log, seen));
	ASSERT_EQ(0, mig_dirty_stop(&log));
	crew_check(_metadata, &k);
	for (q = 0; q < NQ; q++) {
		mark(pages[q], c->ioq[q].cq_iova,
		     c->ioq[q].depth * sizeof(struct nvme_cqe));
		for (i = 0; i < words; i++) {
			missed += __builtin_popcountll(pages[q][i] & ~seen[i]);
			if (q)
				pages[0][i] |= pages[q][i];
		}
	}
	for (i = 0; i < words; i++)
		extra += __builtin_popcountll(seen[i] & ~pages[0][i]);
	TH_LOG("%lu reports: %lu pages missed, %lu marked the device did not write",
	       reports, missed, extra);
	EXPECT_LT(2, reports);
	EXPECT_EQ(0, missed);
	for (q = 0; q < NQ; q++)
		free(pages[q]);
	free(seen);
}

/*
 * The P2P arcs while both threads ring: RUNNING_P2P holds new SQ tails of
 * both queues (what was handed over completes), the threads pause as a
 * stopped guest would, STOP and STOP_COPY read the state, the switchover
 * fails and the device goes back to RUNNING: the held tails reach it.
 * Three rounds; every command completes once, every read checks.
 */
TEST_F_TIMEOUT(q2, p2p_arcs_while_queues_ring, 150)
{
	struct vmm_dev *d = &self->vf.d;
	struct mig_buf buf = {};
	unsigned long before[NQ], held = 0;
	struct crew k;
	uint64_t flags = 0;
	uint32_t st;
	int round, q, fd, ret;

	ASSERT_EQ(0, mig_features(d, &flags));
	ASSERT_TRUE(flags & VFIO_MIGRATION_P2P);
	ASSERT_EQ(0, crew_start(&k, &self->vf.c, NQ, NULL));
	for (round = 0; round < 3; round++) {
		usleep(500000);
		for (q = 0; q < NQ; q++)
			before[q] = k.w[q].ios;
		ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_RUNNING_P2P,
					   NULL));
		/* the threads go on ringing: new tails are held */
		usleep(300000);
		for (q = 0; q < NQ; q++)
			held += nvme_ioq(&self->vf.c, q + 1)->inflight;
		/* the guest stops: held commands stay in flight */
		k.pause = 1;
		ASSERT_EQ(0, crew_paused(&k, 10000));
		ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL));
		ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_STOP_COPY,
					   &fd));
		mig_buf_free(&buf);
		memset(&buf, 0, sizeof(buf));
		ret = mig_read_stop_copy(fd, &buf);
		close(fd);
		ASSERT_LT(0, ret);
		/* the switchover fails: back to running, tails released */
		ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL));
		ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_RUNNING_P2P,
					   NULL));
		ASSERT_EQ(0, mig_set_state(d, VFIO_DEVICE_STATE_RUNNING,
					   NULL));
		ASSERT_EQ(0, mig_get_state(d, &st));
		ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, st);
		k.pause = 0;
		for (q = 0; q < NQ; q++)
			ASSERT_EQ(0, k.w[q].ret) TH_LOG("%s", k.w[q].why);
		TH_LOG("round %d: %lu + %lu commands before the hold", round,
		       before[0], before[1]);
	}
	usleep(500000);
	crew_stop(&k);
	TH_LOG("%lu commands in flight across the holds", held);
	crew_check(_metadata, &k);
	mig_buf_free(&buf);
}

static double iops(struct __test_metadata *_metadata, struct nvme_ctrl *c,
		   int nr, const char *queue_db)
{
	unsigned long ios = 0;
	uint64_t t0, t1;
	struct crew k;
	int i;

	if (vmm_sysfs_write(QUEUE_DB, queue_db))
		return -1;
	if (crew_start(&k, c, nr, NULL))
		return -1;
	usleep(300000);
	for (i = 0; i < nr; i++)
		ios -= k.w[i].ios;
	t0 = vmm_now_us();
	usleep(3000000);
	for (i = 0; i < nr; i++)
		ios += k.w[i].ios;
	t1 = vmm_now_us();
	crew_stop(&k);
	crew_check(_metadata, &k);
	return ios * 1e6 / (t1 - t0);
}

/*
 * IOPS through the trap, same boot: 1 thread on 1 queue and 2 threads on
 * 2 queues, with the queue path (queue_doorbells Y) and without it (N:
 * every doorbell device-wide, as before it existed). Printed; the data is
 * checked as everywhere in this file. Under TCG the device model and the
 * vCPUs share the host's cores: the numbers say more about that than
 * about the lock.
 */
TEST_F_TIMEOUT(q2, iops_one_and_two_queues, 120)
{
	struct nvme_ctrl *c = &self->vf.c;
	double r[2][2];
	int path, nr;

	for (path = 0; path < 2; path++)
		for (nr = 1; nr <= 2; nr++)
			r[path][nr - 1] = iops(_metadata, c, nr,
					       path ? "Y" : "N");
	TH_LOG("device-wide path: %.0f IOPS 1 queue, %.0f IOPS 2 queues (x%.2f)",
	       r[0][0], r[0][1], r[0][1] / r[0][0]);
	TH_LOG("queue path:       %.0f IOPS 1 queue, %.0f IOPS 2 queues (x%.2f)",
	       r[1][0], r[1][1], r[1][1] / r[1][0]);
	for (path = 0; path < 2; path++)
		for (nr = 0; nr < 2; nr++)
			EXPECT_LT(0, r[path][nr]);
}

TEST_HARNESS_MAIN
