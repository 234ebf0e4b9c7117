// SPDX-License-Identifier: GPL-2.0
/*
 * What migrating an edu costs, through VFIO migration uAPI v2, under a
 * fixed seeded workload (same device history in every run: the device fd
 * is got anew first). Prints key: value lines:
 *
 *   edu_stop_copy_bytes      bytes read in STOP_COPY, without PRE_COPY
 *   edu_stop_copy_us         RUNNING -> STOP_COPY request to the data fd's
 *                            end of stream (median of RUNS)
 *   edu_resume_us            RESUMING: the stream written, -> STOP (on B)
 *   edu_precopy_bytes        bytes read in PRE_COPY (6.2+)
 *   precopy_stop_copy_ratio  STOP_COPY bytes with PRE_COPY / without (6.2+)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edu.h"
#include "mig.h"
#include "regsync.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(1u << 20)
#define SEED		0x5eed1234ull
#define STEPS_BEFORE	16	/* workload before the migration starts */
#define STEPS_DURING	6	/* during PRE_COPY (or just before STOP_COPY) */
#define RUNS		5

struct run {
	size_t pre_bytes, stop_bytes;
	uint64_t stop_us;
};

static struct mig_side a, b;
static struct edu ea, eb;
static struct mig_buf stream;

static int fail(const char *what, int err)
{
	fprintf(stderr, "migration_bench: %s: %s\n", what, strerror(-err));
	return err ? err : -EIO;
}

static int steps(struct edu_wl *w, int n)
{
	int ret = 0;

	while (n-- && !ret)
		ret = edu_wl_step(w);
	if (!ret && w->errors)
		fprintf(stderr, "migration_bench: workload: %s\n", w->why);
	return ret ? ret : w->errors ? -EIO : 0;
}

/* One migration of A (its stream left in @stream), A back to RUNNING. */
static int measure(bool precopy, struct run *r)
{
	struct mig_dirty log;
	struct edu_wl w;
	uint64_t t0;
	int fd = -1, ret;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	stream.len = 0;
	ret = vmm_reopen(&a.d);
	if (!ret)
		ret = edu_probe(&ea, &a.d, false);
	if (ret)
		return fail("reopening A", ret);
	edu_wl_init(&w, &ea, &a.ram, SEED);
	ret = edu_wl_fill(&w);
	if (!ret)
		ret = steps(&w, STEPS_BEFORE);
	if (ret)
		return fail("workload", ret);
	ret = mig_dirty_start(&log, &a.d, RAM_IOVA, RAM_SIZE, false);
	if (ret)
		return fail(log.err, ret);
	if (precopy) {
		ret = mig_set_state(&a.d, VFIO_DEVICE_STATE_PRE_COPY, &fd);
		if (ret)
			goto out;
		n = mig_read_precopy(fd, &stream);
		if (n < 0) {
			ret = n;
			goto out;
		}
	}
	ret = steps(&w, STEPS_DURING);
	if (ret)
		goto out;
	if (precopy) {
		n = mig_read_precopy(fd, &stream);
		if (n < 0) {
			ret = n;
			goto out;
		}
		r->pre_bytes = stream.len;
	}
	t0 = vmm_now_us();
	ret = mig_set_state(&a.d, VFIO_DEVICE_STATE_STOP_COPY,
			    precopy ? NULL : &fd);
	if (ret)
		goto out;
	n = mig_read_stop_copy(fd, &stream);
	r->stop_us = vmm_now_us() - t0;
	if (n <= 0) {
		ret = n ? n : -ENODATA;
		goto out;
	}
	r->stop_bytes = n;
	ret = mig_set_state(&a.d, VFIO_DEVICE_STATE_RUNNING, NULL);
out:
	if (fd >= 0)
		close(fd);
	mig_dirty_stop(&log);
	return ret ? fail(precopy ? "PRE_COPY migration" : "migration", ret)
		   : 0;
}

/* The stream resumes B: the time it takes, or -errno. */
static long long resume_b(void)
{
	uint64_t t0 = vmm_now_us();
	int fd, ret;

	ret = mig_set_state(&b.d, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		return ret;
	ret = mig_write_stream(fd, stream.data, stream.len, 4096);
	if (!ret)
		ret = mig_set_state(&b.d, VFIO_DEVICE_STATE_STOP, NULL);
	close(fd);
	if (ret) {
		vmm_reopen(&b.d);
		vmm_enable_bus_master(&b.d);
		return ret;
	}
	t0 = vmm_now_us() - t0;
	ret = mig_set_state(&b.d, VFIO_DEVICE_STATE_RUNNING, NULL);
	return ret ? ret : (long long)t0;
}

static int cmp_u64(const void *x, const void *y)
{
	const uint64_t *p = x, *q = y;

	return *p < *q ? -1 : *p > *q;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

int main(void)
{
	uint64_t flags, us[RUNS], bytes[RUNS], pre[RUNS], stop_pre[RUNS];
	struct tb_devs t;
	struct run r;
	long long rus;
	int i, ret;

	if (tb_devices(&t) || t.nr_edu < 2) {
		fprintf(stderr, "migration_bench: no two edus\n");
		return 1;
	}
	mig_dirty_kill(t.edu[0]);
	ret = mig_side_open(&a, t.edu[0], "sparse", RAM_IOVA, RAM_SIZE);
	if (!ret)
		ret = mig_side_open(&b, t.edu[1], "sparse", RAM_IOVA, RAM_SIZE);
	if (!ret)
		ret = edu_probe(&eb, &b.d, false);
	if (!ret)
		ret = mig_features(&a.d, &flags);
	if (ret)
		return fail("opening the edus", ret), 1;

	for (i = 0; i < RUNS; i++) {
		if (measure(false, &r))
			return 1;
		us[i] = r.stop_us;
		bytes[i] = r.stop_bytes;
	}
	rus = resume_b();
	if (rus < 0)
		return fail("resuming B", rus), 1;
	printf("edu_stop_copy_bytes: %llu\n",
	       (unsigned long long)median(bytes, RUNS));
	printf("edu_stop_copy_us: %llu\n", (unsigned long long)median(us, RUNS));
	printf("edu_resume_us: %lld\n", rus);
	if (!(flags & VFIO_MIGRATION_PRE_COPY)) {
		printf("edu_precopy_bytes: unavailable (no PRE_COPY on this kernel: added in 6.2)\n");
		printf("precopy_stop_copy_ratio: unavailable (no PRE_COPY on this kernel: added in 6.2)\n");
		return 0;
	}
	for (i = 0; i < RUNS; i++) {
		if (measure(true, &r))
			return 1;
		pre[i] = r.pre_bytes;
		stop_pre[i] = r.stop_bytes;
	}
	rus = resume_b();
	if (rus < 0)
		return fail("resuming B from a PRE_COPY stream", rus), 1;
	printf("edu_precopy_bytes: %llu\n", (unsigned long long)median(pre, RUNS));
	printf("precopy_stop_copy_ratio: %.3f\n",
	       (double)median(stop_pre, RUNS) / median(bytes, RUNS));
	mig_side_close(&a);
	mig_side_close(&b);
	rs_set_trap_mode(t.edu[0], "none");
	rs_set_trap_mode(t.edu[1], "none");
	return 0;
}
