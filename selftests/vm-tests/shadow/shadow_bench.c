// SPDX-License-Identifier: GPL-2.0
/*
 * What the shadow adapter costs the guest, on edu A. A "vCPU" thread
 * writes and reads edu's liveness register back to back, timing each
 * pair; its longest wait is taken over a quiet second (the baseline: one
 * trapped access pair) and over CYCLES engage, serve and hand-back cycles.
 * Prints key: value lines:
 *
 *   shadow_access_max_us       longest pair, quiet device (baseline)
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
#include "regsync.h"
#include "shadow.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(1u << 20)
#define SCRATCH		(RAM_IOVA + 0x3000)
#define CYCLES		3

static struct mig_side a;
static struct edu ea;
static struct genl nl;

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
		if (edu_liveness(&ea, v) != ~v)
			fprintf(stderr, "shadow_bench: liveness %#x wrong\n", v);
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

	ret = mig_set_state(&a.d, VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = mig_set_state(&a.d, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	if (ret)
		return ret;
	n = mig_read_stop_copy(fd, &buf);
	close(fd);
	*us = vmm_now_us() - t0;
	mig_buf_free(&buf);
	ret = n < 0 ? (int)n : 0;
	if (!ret)
		ret = mig_set_state(&a.d, VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = mig_set_state(&a.d, VFIO_DEVICE_STATE_RUNNING, NULL);
	return ret;
}

int main(void)
{
	uint64_t eng[CYCLES], hb[CYCLES], sc[CYCLES], dc[CYCLES];
	uint64_t base_max, stall = 0, m;
	double base_mean, shadow_mean = 0, mean;
	struct lm_shadow s;
	struct tb_devs t;
	pthread_t th;
	int i, ret;

	if (tb_devices(&t) || t.nr_edu < 1) {
		fprintf(stderr, "shadow_bench: no edu\n");
		return 1;
	}
	if (!tb_module_loaded("sriov_shadow") && tb_module_load("sriov_shadow"))
		return fail("loading sriov_shadow", -ENOENT);
	ret = vmm_bind(t.edu[0], "vfio-mig");
	if (!ret)
		ret = mig_side_open(&a, t.edu[0], "sparse", RAM_IOVA, RAM_SIZE);
	if (!ret)
		ret = edu_probe(&ea, &a.d, false);
	if (!ret)
		ret = rs_ctl(t.edu[0], "scratch %#llx", SCRATCH);
	if (!ret)
		ret = genl_open(&nl, "vfio_mig");
	if (ret)
		return fail("opening edu A", ret);
	if (pthread_create(&th, NULL, probe_fn, NULL))
		return fail("probe thread", -errno);

	probe_reset(false);
	sleep(1);
	probe_take(&base_max, &base_mean);

	for (i = 0; i < CYCLES; i++) {
		/* the device's own stop-copy, then one through the shadow */
		probe_reset(true);
		ret = stop_copy(&dc[i]);
		if (ret)
			return fail("device stop-copy", ret);
		probe_reset(false);
		ret = lm_shadow_cmd(&nl, VFIO_MIG_CMD_SHADOW_ATTACH, t.edu[0]);
		if (ret)
			return fail("engage", ret);
		usleep(300000);
		probe_take(&m, &mean);
		shadow_mean += mean / CYCLES;
		if (m > stall)
			stall = m;
		probe_reset(true);
		ret = stop_copy(&sc[i]);
		if (ret)
			return fail("stop-copy through the shadow", ret);
		probe_reset(false);
		usleep(100000);
		ret = lm_shadow_cmd(&nl, VFIO_MIG_CMD_SHADOW_DETACH, t.edu[0]);
		if (ret)
			return fail("hand-back", ret);
		usleep(100000);
		ret = lm_shadow_get(&nl, t.edu[0], &s);
		if (ret)
			return fail("shadow-get", ret);
		probe_take(&m, &mean);
		eng[i] = s.engage_ns / 1000;
		hb[i] = s.handback_ns / 1000;
		if (m > stall)
			stall = m;
	}
	pthread_mutex_lock(&probe.lock);
	probe.stop = true;
	pthread_mutex_unlock(&probe.lock);
	pthread_join(th, NULL);

	printf("shadow_access_max_us: %llu\n", (unsigned long long)base_max);
	printf("shadow_guest_stall_max_us: %llu\n", (unsigned long long)stall);
	printf("shadow_stall_ratio: %.1f\n",
	       base_max ? (double)stall / base_max : 0);
	printf("# shadow_guest_stall_max_us goal <= one trapped access (%llu us): %s\n",
	       (unsigned long long)base_max, stall <= base_max ? "met" : "MISSED");
	printf("shadow_engage_us: %llu\n",
	       (unsigned long long)median(eng, CYCLES));
	printf("shadow_handback_us: %llu\n",
	       (unsigned long long)median(hb, CYCLES));
	printf("shadow_access_us: %.1f\n", shadow_mean);
	printf("device_access_us: %.1f\n", base_mean);
	m = median(dc, CYCLES);
	printf("shadow_stop_copy_us: %llu\n",
	       (unsigned long long)median(sc, CYCLES));
	printf("device_stop_copy_us: %llu\n", (unsigned long long)m);
	printf("shadow_stop_copy_ratio: %.3f\n",
	       m ? (double)median(sc, CYCLES) / m : 0);
	genl_close(&nl);
	mig_side_close(&a);
	rs_set_trap_mode(t.edu[0], "none");
	return 0;
}
