// SPDX-License-Identifier: GPL-2.0
/*
 * What the shadow adapter costs the guest, on edu A and on NVMe VF 1. A
 * "vCPU" thread makes register access pairs back to back (edu: write and
 * read its liveness register; NVMe: write INTMC, read CSTS), timing each
 * pair; its longest wait is taken over a quiet second (the baseline: one
 * trapped access pair) and over CYCLES engage, serve and hand-back cycles.
 * On the NVMe VF the verified workload (nvme.h) keeps commands in flight
 * at each engage and submits while engaged, so each hand-back hands the
 * device held I/O. Prints key: value lines, prefixed "nvme_" for the VF:
 *
 *   shadow_access_max_us       longest pair, quiet device (baseline)
 *   device_io_access_max_us    NVMe: longest pair while the device runs
 *                              the workload, no shadow (context only)
 *   shadow_guest_stall_max_us  longest pair over the cycles
 *   shadow_stall_ratio         the two above, with the goal line
 *   shadow_engage_us           guest accesses held by engage (median)
 *   shadow_handback_us         held by the hand-back (median)
 *   shadow_access_us           mean pair while engaged
 *   device_access_us           mean pair on the quiet device
 *   shadow_stop_copy_us        STOP -> STOP_COPY and the stream read, A
 *                              engaged (median of CYCLES)
 *   device_stop_copy_us        the same, the device's own (median)
 *   shadow_stop_copy_ratio     shadow / device
 *
 * The goal for edu is one trapped access; for NVMe one trapped access
 * plus the hand-back of the held I/O (the shadow issue's goal).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/vfio_mig.h>

#include "edu.h"
#include "mig.h"
#include "nvme.h"
#include "nvme_vf.h"
#include "regsync.h"
#include "shadow.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(1u << 20)
#define SCRATCH		(RAM_IOVA + 0x3000)
#define CYCLES		3

#define NVME_NSID	1
#define NVME_QDEPTH	16
#define NVME_WL_DEPTH	8
#define NVME_TMO	5000

/* The device under test: its fd, and one access pair of the probe's. */
static struct mig_side a;
static struct edu ea;
static struct nvme_vf nv;
static struct nvme_wl wl;
static bool nvme;
static struct genl nl;

static struct vmm_dev *dev(void)
{
	return nvme ? &nv.d : &a.d;
}

/* One access pair as a vCPU makes it; false if the device answered wrong. */
static bool pair(uint32_t v)
{
	if (!nvme)
		return edu_liveness(&ea, v) == ~v;
	nvme_wr32(&nv.c, NVME_REG_INTMC, 0);
	return nvme_rd32(&nv.c, NVME_REG_CSTS) & NVME_CSTS_RDY;
}

/* The probe: max and sum of its pair times since the last reset. */
static struct {
	pthread_mutex_t lock;
	bool stop, hold;
	uint64_t max_us, sum_us, n;
} probe = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void *probe_fn(void *arg)
{
	uint32_t v = 1;

	(void)arg;
	for (;;) {
		uint64_t t0, dt;
		bool stop, hold;

		pthread_mutex_lock(&probe.lock);
		stop = probe.stop;
		hold = probe.hold;
		pthread_mutex_unlock(&probe.lock);
		if (stop)
			return NULL;
		if (hold) {
			usleep(1000);
			continue;
		}
		t0 = vmm_now_us();
		if (!pair(v))
			fprintf(stderr, "shadow_bench: access pair %#x wrong\n",
				v);
		dt = vmm_now_us() - t0;
		v++;
		pthread_mutex_lock(&probe.lock);
		if (dt > probe.max_us)
			probe.max_us = dt;
		probe.sum_us += dt;
		probe.n++;
		pthread_mutex_unlock(&probe.lock);
	}
}

static void probe_reset(bool hold)
{
	pthread_mutex_lock(&probe.lock);
	probe.max_us = probe.sum_us = probe.n = 0;
	probe.hold = hold;
	pthread_mutex_unlock(&probe.lock);
	usleep(20000);		/* a pair in flight ends */
	pthread_mutex_lock(&probe.lock);
	probe.max_us = probe.sum_us = probe.n = 0;
	pthread_mutex_unlock(&probe.lock);
}

static void probe_take(uint64_t *max, double *mean)
{
	pthread_mutex_lock(&probe.lock);
	*max = probe.max_us;
	*mean = probe.n ? (double)probe.sum_us / probe.n : 0;
	pthread_mutex_unlock(&probe.lock);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a1 = *(const uint64_t *)x, b1 = *(const uint64_t *)y;

	return a1 < b1 ? -1 : a1 > b1;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "shadow_bench: %s: %s (%s)\n", what, strerror(-err),
		nl.err);
	return 1;
}

/* RUNNING -> STOP -> STOP_COPY, the stream read, back to RUNNING: us. */
static int stop_copy(uint64_t *us)
{
	struct mig_buf buf = {};
	uint64_t t0 = vmm_now_us();
	ssize_t n;
	int fd, ret;

	ret = mig_set_state(dev(), VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = mig_set_state(dev(), VFIO_DEVICE_STATE_STOP_COPY, &fd);
	if (ret)
		return ret;
	n = mig_read_stop_copy(fd, &buf);
	close(fd);
	*us = vmm_now_us() - t0;
	mig_buf_free(&buf);
	ret = n < 0 ? (int)n : 0;
	if (!ret)
		ret = mig_set_state(dev(), VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = mig_set_state(dev(), VFIO_DEVICE_STATE_RUNNING, NULL);
	return ret;
}

/* NVMe: the workload's commands in flight (@drain: none). */
static int io(bool drain)
{
	int ret;

	if (!nvme)
		return 0;
	if (drain)
		return nvme_wl_drain(&wl, NVME_TMO);
	ret = nvme_wl_step(&wl);
	return ret < 0 ? ret : 0;
}

/* While engaged for @us: NVMe submits (held), edu just serves. */
static int serve(unsigned int us)
{
	uint64_t end = vmm_now_us() + us;
	int ret = 0;

	if (!nvme) {
		usleep(us);
		return 0;
	}
	while (!ret && vmm_now_us() < end) {
		ret = io(false);
		usleep(10000);
	}
	return ret;
}

static int open_edu(const struct tb_devs *t, const char **bdf)
{
	int ret;

	if (t->nr_edu < 1)
		return -ENODEV;
	*bdf = t->edu[0];
	ret = vmm_bind(*bdf, "vfio-mig");
	if (!ret)
		ret = mig_side_open(&a, *bdf, "sparse", RAM_IOVA, RAM_SIZE);
	if (!ret)
		ret = edu_probe(&ea, &a.d, false);
	if (!ret)
		ret = rs_ctl(*bdf, "scratch %#llx", SCRATCH);
	return ret;
}

/* VF 1 under the nvme profile, two I/O queue pairs, every block written. */
static int open_nvme(const struct tb_devs *t, const char **bdf)
{
	char err[320];
	int ret;

	if (t->nr_vf < 1)
		return -ENODEV;
	*bdf = t->vf[0];
	ret = nvme_vf_up(&nv, *bdf, TB_DRIVER, 4u << 20, RAM_IOVA, NVME_NSID,
			 err, sizeof(err));
	if (ret)
		fprintf(stderr, "shadow_bench: %s\n", err);
	if (!ret)
		ret = nvme_create_io_queues(&nv.c, 2, NVME_QDEPTH, false);
	if (!ret)
		ret = nvme_wl_init(&wl, &nv.c, 8192, 512, NVME_WL_DEPTH, 0x5b);
	if (!ret)
		ret = nvme_wl_fill(&wl, NVME_TMO);
	return ret;
}

/* The cycles on one device; its lines prefixed with @pfx. */
static int run(const struct tb_devs *t, const char *pfx)
{
	uint64_t eng[CYCLES], hb[CYCLES], sc[CYCLES], dc[CYCLES];
	uint64_t base_max, io_max = 0, stall = 0, m, m_engaged, goal;
	double base_mean, shadow_mean = 0, mean;
	const char *bdf = NULL;
	struct lm_shadow s;
	pthread_t th;
	int i, ret;

	ret = nvme ? open_nvme(t, &bdf) : open_edu(t, &bdf);
	if (ret)
		return fail(nvme ? "opening the NVMe VF" : "opening edu A",
			    ret);
	probe.stop = false;
	if (pthread_create(&th, NULL, probe_fn, NULL))
		return fail("probe thread", -errno);

	probe_reset(false);
	sleep(1);
	probe_take(&base_max, &base_mean);
	if (nvme) {
		/* context: the same pairs while the device runs the I/O */
		probe_reset(false);
		ret = serve(1000000);
		if (!ret)
			ret = io(true);
		if (ret)
			return fail("workload", ret);
		probe_take(&io_max, &mean);
	}

	for (i = 0; i < CYCLES; i++) {
		/* the device's own stop-copy, then one through the shadow */
		probe_reset(true);
		ret = io(true);
		if (!ret)
			ret = stop_copy(&dc[i]);
		if (ret)
			return fail("device stop-copy", ret);
		ret = io(false);
		if (ret)
			return fail("workload", ret);
		probe_reset(false);
		ret = lm_shadow_cmd(&nl, VFIO_MIG_CMD_SHADOW_ATTACH, bdf);
		if (ret)
			return fail("engage", ret);
		ret = serve(300000);
		if (ret)
			return fail("workload while engaged", ret);
		probe_take(&m, &mean);
		shadow_mean += mean / CYCLES;
		if (m > stall)
			stall = m;
		m_engaged = m;
		probe_reset(true);
		ret = stop_copy(&sc[i]);
		if (ret)
			return fail("stop-copy through the shadow", ret);
		probe_reset(false);
		ret = serve(100000);
		if (!ret)
			ret = lm_shadow_cmd(&nl, VFIO_MIG_CMD_SHADOW_DETACH,
					    bdf);
		if (ret)
			return fail("hand-back", ret);
		usleep(100000);
		ret = lm_shadow_get(&nl, bdf, &s);
		if (ret)
			return fail("shadow-get", ret);
		probe_take(&m, &mean);
		eng[i] = s.engage_ns / 1000;
		hb[i] = s.handback_ns / 1000;
		if (m > stall)
			stall = m;
		printf("# %scycle %d: longest pair %llu us from the engage on, %llu us from the hand-back on; engage held %llu us, hand-back %llu us\n",
		       pfx, i, (unsigned long long)m_engaged,
		       (unsigned long long)m, (unsigned long long)eng[i],
		       (unsigned long long)hb[i]);
		ret = io(true);		/* every held command completed */
		if (ret || (nvme && wl.errors))
			return fail("the held I/O", ret ?: -EIO);
	}
	pthread_mutex_lock(&probe.lock);
	probe.stop = true;
	pthread_mutex_unlock(&probe.lock);
	pthread_join(th, NULL);

	goal = base_max + (nvme ? median(hb, CYCLES) : 0);
	printf("%sshadow_access_max_us: %llu\n", pfx,
	       (unsigned long long)base_max);
	printf("%sshadow_guest_stall_max_us: %llu\n", pfx,
	       (unsigned long long)stall);
	if (nvme)
		printf("%sdevice_io_access_max_us: %llu\n", pfx,
		       (unsigned long long)io_max);
	printf("%sshadow_stall_ratio: %.1f\n", pfx,
	       base_max ? (double)stall / base_max : 0);
	printf("# %sshadow_guest_stall_max_us goal <= one trapped access%s (%llu us): %s\n",
	       pfx, nvme ? " + the hand-back" : "", (unsigned long long)goal,
	       stall <= goal ? "met" : "MISSED");
	printf("%sshadow_engage_us: %llu\n", pfx,
	       (unsigned long long)median(eng, CYCLES));
	printf("%sshadow_handback_us: %llu\n", pfx,
	       (unsigned long long)median(hb, CYCLES));
	printf("%sshadow_access_us: %.1f\n", pfx, shadow_mean);
	printf("%sdevice_access_us: %.1f\n", pfx, base_mean);
	m = median(dc, CYCLES);
	printf("%sshadow_stop_copy_us: %llu\n", pfx,
	       (unsigned long long)median(sc, CYCLES));
	printf("%sdevice_stop_copy_us: %llu\n", pfx, (unsigned long long)m);
	printf("%sshadow_stop_copy_ratio: %.3f\n", pfx,
	       m ? (double)median(sc, CYCLES) / m : 0);
	if (nvme) {
		nvme_wl_free(&wl);
		nvme_vf_down(&nv);
	} else {
		mig_side_close(&a);
		rs_set_trap_mode(bdf, "none");
	}
	return 0;
}

int main(void)
{
	struct tb_devs t;
	int ret;

	if (tb_devices(&t)) {
		fprintf(stderr, "shadow_bench: no test bed devices\n");
		return 1;
	}
	if (!tb_module_loaded("sriov_shadow") && tb_module_load("sriov_shadow"))
		return fail("loading sriov_shadow", -ENOENT);
	ret = genl_open(&nl, "vfio_mig");
	if (ret)
		return fail("netlink", ret);
	ret = run(&t, "");
	if (!ret) {
		nvme = true;
		ret = run(&t, "nvme_");
	}
	genl_close(&nl);
	return ret;
}
