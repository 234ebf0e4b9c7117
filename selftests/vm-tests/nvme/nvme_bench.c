// SPDX-License-Identifier: GPL-2.0
/*
 * The NVMe VF's figures (#14), in one boot of the test bed:
 *
 *  - nvme_iops_trap_ratio: IOPS of the verified workload (selftests/lib
 *    nvme_wl: 2 I/O queue pairs of 16 entries, 8 commands in flight per
 *    queue, the workload's mix of Write/Read/Flush and PRP forms, 2048
 *    blocks, completions polled) on a VF bound to vfio-mig with the nvme
 *    profile in trap mode sparse, over the IOPS of the same workload on the
 *    other VF bound to vfio-pci. Both VFs are up at once and batches
 *    alternate between them, so that both see the same host load; then the
 *    two VFs swap drivers. The figure is the median of the batch pairs'
 *    ratios; the raw IOPS are the medians of each side's batches. Every
 *    block is checked at the end of each phase. Goal >= 0.9.
 *  - nvme_downtime_ms: VF 1 to VF 2 through the VFIO migration uAPI with
 *    the workload's commands in flight, from the source's leaving RUNNING
 *    (or PRE_COPY: the last running state) to the target's reaching
 *    RUNNING; the target waits in RESUMING beforehand, as a VMM's does.
 *    Its parts: source quiesce (RUNNING -> RUNNING_P2P -> STOP, or
 *    PRE_COPY -> PRE_COPY_P2P), stop-copy (-> STOP_COPY and the data fd
 *    read to its end), target restore (the RESUMING write and -> STOP),
 *    target resume (-> RUNNING_P2P -> RUNNING). PRE_COPY where the device
 *    offers it (kernels >= 6.2). Median of MIG_REPS migrations, the parts
 *    of that one; the workload then goes on against VF 2 and every block
 *    checks.
 *  - nvme_stop_copy_bytes: the device state read in STOP_COPY (that
 *    migration's).
 *  - nvme_dirty_false_positive_pct: with the workload running until
 *    DIRTY_READS Reads completed and the mediated dirty log read and
 *    cleared every 3 steps (the method of nvme_test's
 *    dirty_log_holds_every_device_write, nvme_dw_* in selftests/lib), the
 *    pages the log reported that the device did not write (no Read's data,
 *    no completion queue) over the pages reported, in %. A page the device
 *    wrote and the log missed fails the bench.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mig.h"
#include "nvme.h"
#include "nvme_vf.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(4u << 20)
#define NSID		1
#define QDEPTH		16
#define WL_DEPTH	8
#define WL_BLOCKS	2048
#define NR_IOQ		2
#define TMO		5000
#define WL_TMO		60000
#define BATCH_CMDS	4000	/* commands per IOPS batch */
#define PAIRS		8	/* batch pairs per phase */
#define MIG_REPS	7
#define DIRTY_READS	2000

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* @bdf under @driver (vfio-mig: the nvme profile, sparse trap). */
static int vf_bind(const char *bdf, const char *driver)
{
	char err[256];
	int ret = vmm_bind(bdf, driver);

	if (!ret && !strcmp(driver, TB_DRIVER))
		ret = nvme_vf_trap(bdf, err, sizeof(err));
	else if (ret)
		snprintf(err, sizeof(err), "bind %s to %s: %s", bdf, driver,
			 strerror(-ret));
	if (ret)
		fprintf(stderr, "%s\n", err);
	return ret;
}

/* VF @bdf under @driver with NR_IOQ I/O queue pairs. */
static int vf_up(struct nvme_vf *v, const char *bdf, const char *driver)
{
	char err[320];
	int ret;

	ret = nvme_vf_up(v, bdf, driver, RAM_SIZE, RAM_IOVA, NSID, err,
			 sizeof(err));
	if (ret) {
		fprintf(stderr, "%s\n", err);
		return ret;
	}
	ret = nvme_create_io_queues(&v->c, NR_IOQ, QDEPTH, false);
	if (ret)
		fprintf(stderr, "%s: %s (%s)\n", bdf, v->c.why, strerror(-ret));
	return ret;
}

static unsigned long wl_cmds(const struct nvme_wl *w)
{
	return w->writes + w->reads + w->flushes;
}

/* One batch: BATCH_CMDS commands of the workload; its IOPS, or < 0. */
static double batch(struct nvme_wl *w, const char *who)
{
	unsigned long n0 = wl_cmds(w);
	uint64_t t0 = vmm_now_us(), us;
	int ret;

	ret = nvme_wl_run(w, BATCH_CMDS, WL_TMO);
	us = vmm_now_us() - t0;
	if (ret || w->errors) {
		fprintf(stderr, "%s: workload: %s\n", who, w->why);
		return -1;
	}
	return (wl_cmds(w) - n0) * 1e6 / (us ? us : 1);
}

struct iops {
	double ratio[2 * PAIRS], pci[2 * PAIRS], mig[2 * PAIRS];
	double rw[2 * PAIRS], rw_ratio[2 * PAIRS];
	int n;
};

/*
 * A batch on the vfio-pci VF with every register access a pread/pwrite of
 * the BAR region instead of the mmap: what a VMM pays for a doorbell it
 * traps itself, without the profile (a diagnostic for the ratio).
 */
static double batch_rw(struct nvme_vf *v, struct nvme_wl *w, const char *who)
{
	volatile uint8_t *bar = v->c.bar;
	double r;

	v->c.bar = NULL;
	r = batch(w, who);
	v->c.bar = bar;
	return r;
}

static int iops_phase(const char *pci_bdf, const char *mig_bdf,
		      uint64_t pci_base, uint64_t mig_base, struct iops *a)
{
	struct nvme_vf *p = calloc(1, sizeof(*p)), *m = calloc(1, sizeof(*m));
	struct nvme_wl wp, wm;
	int i, ret = -1;

	memset(&wp, 0, sizeof(wp));
	memset(&wm, 0, sizeof(wm));
	if (!p || !m || vf_up(p, pci_bdf, "vfio-pci") ||
	    vf_up(m, mig_bdf, TB_DRIVER))
		goto out;
	/* the same workload on both: blocks, depth, mix (same seed) */
	if (nvme_wl_init(&wp, &p->c, pci_base, WL_BLOCKS, WL_DEPTH, 0x10b5) ||
	    nvme_wl_init(&wm, &m->c, mig_base, WL_BLOCKS, WL_DEPTH, 0x10b5))
		goto out;
	if (nvme_wl_fill(&wp, TMO) || nvme_wl_fill(&wm, TMO)) {
		fprintf(stderr, "fill: %s / %s\n", wp.why, wm.why);
		goto out;
	}
	/* warm up */
	if (batch(&wp, pci_bdf) < 0 || batch(&wm, mig_bdf) < 0)
		goto out;
	for (i = 0; i < PAIRS; i++) {
		double ip, im, ir;

		if (i % 2) {
			ip = batch(&wp, pci_bdf);
			im = batch(&wm, mig_bdf);
			ir = batch_rw(p, &wp, pci_bdf);
		} else {
			ir = batch_rw(p, &wp, pci_bdf);
			im = batch(&wm, mig_bdf);
			ip = batch(&wp, pci_bdf);
		}
		if (ip <= 0 || im < 0 || ir <= 0)
			goto out;
		a->pci[a->n] = ip;
		a->mig[a->n] = im;
		a->rw[a->n] = ir;
		a->rw_ratio[a->n] = im / ir;
		a->ratio[a->n++] = im / ip;
		printf("# %s vfio-pci %.0f IOPS (%.0f by pread/pwrite), %s nvme profile %.0f IOPS\n",
		       pci_bdf, ip, ir, mig_bdf, im);
	}
	if (nvme_wl_verify_all(&wp, TMO) || nvme_wl_verify_all(&wm, TMO) ||
	    wp.errors || wm.errors) {
		fprintf(stderr, "verify: %s / %s\n", wp.why, wm.why);
		goto out;
	}
	printf("# %s: %lu writes %lu reads %lu flushes, up to %u in flight a queue; %s: %lu writes %lu reads %lu flushes, up to %u\n",
	       pci_bdf, wp.writes, wp.reads, wp.flushes, wp.max_qd,
	       mig_bdf, wm.writes, wm.reads, wm.flushes, wm.max_qd);
	ret = 0;
out:
	nvme_wl_free(&wp);
	nvme_wl_free(&wm);
	if (p)
		nvme_vf_down(p);
	if (m)
		nvme_vf_down(m);
	free(p);
	free(m);
	return ret;
}

static int bench_iops(const struct tb_devs *t)
{
	static struct iops a;
	double r, ip, im;

	/* each VF keeps its own LBA range; the drivers swap */
	if (iops_phase(t->vf[0], t->vf[1], 4096, 8192, &a) ||
	    iops_phase(t->vf[1], t->vf[0], 8192, 4096, &a))
		return -1;
	r = median(a.ratio, a.n);
	ip = median(a.pci, a.n);
	im = median(a.mig, a.n);
	printf("# %d batch pairs of %d commands; ratios %.3f..%.3f\n", a.n,
	       BATCH_CMDS, a.ratio[0], a.ratio[a.n - 1]);
	printf("nvme_iops_vfio_pci: %.0f\n", ip);
	printf("nvme_iops_trap: %.0f\n", im);
	printf("nvme_iops_trap_ratio: %.3f\n", r);
	printf("# nvme_iops_trap_ratio goal >= 0.9: %s\n",
	       r >= 0.9 ? "met" : "MISSED");
	printf("nvme_iops_vfio_pci_rw: %.0f\n", median(a.rw, a.n));
	printf("nvme_iops_trap_rw_ratio: %.3f\n", median(a.rw_ratio, a.n));
	return 0;
}

struct mig_time {
	double downtime, quiesce, save, restore, resume;	/* ms */
	size_t stop_copy_bytes, pre_copy_bytes;
	unsigned long inflight;
};

static int st(struct vmm_dev *d, const char *who, uint32_t state, int *fd)
{
	int ret = mig_set_state(d, state, fd);

	if (ret)
		fprintf(stderr, "%s -> %s: %s\n", who, mig_state_name(state),
			strerror(-ret));
	return ret;
}

static double ms(uint64_t a, uint64_t b)
{
	return (b - a) / 1000.0;
}

/* Append what the saving fd has now to the resuming fd. */
static int pass_on(int from, int to, bool precopy, size_t *bytes)
{
	struct mig_buf b = {};
	ssize_t n;
	int ret;

	n = precopy ? mig_read_precopy(from, &b) : mig_read_stop_copy(from, &b);
	if (n < 0) {
		fprintf(stderr, "%s read: %s\n",
			precopy ? "PRE_COPY" : "STOP_COPY", strerror(-n));
		mig_buf_free(&b);
		return n;
	}
	*bytes += b.len;
	ret = mig_write_stream(to, b.data, b.len, 4096);
	if (ret)
		fprintf(stderr, "RESUMING write: %s\n", strerror(-ret));
	mig_buf_free(&b);
	return ret;
}

/* One migration VF 1 -> VF 2 with commands in flight, timed. */
static int migrate_once(const struct tb_devs *t, bool precopy,
			struct mig_time *m)
{
	struct nvme_vf *src = calloc(1, sizeof(*src));
	struct vmm_dev *dst = calloc(1, sizeof(*dst));
	uint64_t t0, t1, t2, t3, t4;
	bool dst_open = false, dst_mapped = false;
	int sfd = -1, rfd = -1, ret = -1, i;
	struct mig_buf buf = {};
	struct nvme_ctrl *c;
	struct nvme_wl w;

	memset(&w, 0, sizeof(w));
	memset(m, 0, sizeof(*m));
	if (!src || !dst || vf_up(src, t->vf[0], TB_DRIVER))
		goto out;
	c = &src->c;
	if (vf_bind(t->vf[1], TB_DRIVER) || vmm_open(dst, t->vf[1]))
		goto out;
	dst_open = true;
	if (vmm_dma_map(dst, &src->ram) || vmm_enable_bus_master(dst))
		goto out;
	dst_mapped = true;
	if (nvme_wl_init(&w, c, 12288, 512, WL_DEPTH, 0x1a7e) ||
	    nvme_wl_fill(&w, TMO) || nvme_wl_run(&w, 200, WL_TMO)) {
		fprintf(stderr, "workload on VF 1: %s\n", w.why);
		goto out;
	}
	/* the target listens from the start */
	if (st(dst, "VF 2", VFIO_DEVICE_STATE_STOP, NULL) ||
	    st(dst, "VF 2", VFIO_DEVICE_STATE_RESUMING, &rfd))
		goto out;
	if (precopy) {
		if (st(&src->d, "VF 1", VFIO_DEVICE_STATE_PRE_COPY, &sfd) ||
		    pass_on(sfd, rfd, true, &m->pre_copy_bytes))
			goto out;
		/* the guest goes on while the device pre-copies */
		for (i = 0; i < 20; i++)
			if (nvme_wl_step(&w) < 0)
				goto out;
		if (pass_on(sfd, rfd, true, &m->pre_copy_bytes))
			goto out;
	}
	if (nvme_wl_step(&w) < 0)
		goto out;
	m->inflight = nvme_wl_inflight(&w);

	t0 = vmm_now_us();
	if (precopy) {
		if (st(&src->d, "VF 1", VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL))
			goto out;
		t1 = vmm_now_us();
		if (st(&src->d, "VF 1", VFIO_DEVICE_STATE_STOP_COPY, NULL))
			goto out;
	} else {
		if (st(&src->d, "VF 1", VFIO_DEVICE_STATE_RUNNING_P2P, NULL) ||
		    st(&src->d, "VF 1", VFIO_DEVICE_STATE_STOP, NULL))
			goto out;
		t1 = vmm_now_us();
		if (st(&src->d, "VF 1", VFIO_DEVICE_STATE_STOP_COPY, &sfd))
			goto out;
	}
	ret = mig_read_stop_copy(sfd, &buf);
	t2 = vmm_now_us();
	if (ret <= 0) {
		fprintf(stderr, "STOP_COPY read: %s\n", strerror(-ret));
		ret = -1;
		goto out;
	}
	m->stop_copy_bytes = buf.len;
	ret = mig_write_stream(rfd, buf.data, buf.len, 4096);
	close(rfd);
	rfd = -1;
	if (ret) {
		fprintf(stderr, "RESUMING write: %s\n", strerror(-ret));
		goto out;
	}
	ret = -1;
	if (st(dst, "VF 2", VFIO_DEVICE_STATE_STOP, NULL))
		goto out;
	t3 = vmm_now_us();
	if (st(dst, "VF 2", VFIO_DEVICE_STATE_RUNNING_P2P, NULL) ||
	    st(dst, "VF 2", VFIO_DEVICE_STATE_RUNNING, NULL))
		goto out;
	t4 = vmm_now_us();
	m->downtime = ms(t0, t4);
	m->quiesce = ms(t0, t1);
	m->save = ms(t1, t2);
	m->restore = ms(t2, t3);
	m->resume = ms(t3, t4);

	/* the driver goes on against VF 2; every block checks */
	c->dev = dst;
	if (!nvme_wl_drain(&w, TMO) && !nvme_wl_run(&w, 200, WL_TMO)) {
		w.blocks_checked = 0;
		if (!nvme_wl_verify_all(&w, TMO) && !w.errors &&
		    w.blocks_checked == w.nr)
			ret = 0;
	}
	if (ret)
		fprintf(stderr, "workload on VF 2: %s (%lu of %u blocks checked)\n",
			w.why, w.blocks_checked, w.nr);
	nvme_ctrl_disable(c);
	c->dev = &src->d;
out:
	nvme_wl_free(&w);
	mig_buf_free(&buf);
	if (sfd >= 0)
		close(sfd);
	if (rfd >= 0)
		close(rfd);
	if (dst_mapped)
		vmm_dma_unmap(dst, &src->ram);
	if (dst_open)
		vmm_close(dst);
	if (src)
		nvme_vf_down(src);
	free(src);
	free(dst);
	return ret;
}

static int cmp_mig(const void *a, const void *b)
{
	const struct mig_time *x = a, *y = b;

	return x->downtime < y->downtime ? -1 : x->downtime > y->downtime;
}

/* MIG_REPS migrations; the one of median downtime in @md. */
static int migrate_reps(const struct tb_devs *t, bool precopy,
			struct mig_time *md)
{
	struct mig_time m[MIG_REPS];
	int i;

	for (i = 0; i < MIG_REPS; i++) {
		if (migrate_once(t, precopy, &m[i]))
			return -1;
		printf("# migration %d%s: %lu commands in flight, downtime %.3f ms (quiesce %.3f, stop-copy %.3f, restore %.3f, resume %.3f), %zu bytes in STOP_COPY, %zu in PRE_COPY\n",
		       i + 1, precopy ? " (PRE_COPY)" : "", m[i].inflight,
		       m[i].downtime, m[i].quiesce, m[i].save, m[i].restore,
		       m[i].resume, m[i].stop_copy_bytes, m[i].pre_copy_bytes);
	}
	qsort(m, MIG_REPS, sizeof(m[0]), cmp_mig);
	*md = m[MIG_REPS / 2];
	return 0;
}

static int bench_migration(const struct tb_devs *t)
{
	struct nvme_vf *v = calloc(1, sizeof(*v));
	struct mig_time md, sc;
	uint64_t flags = 0;
	bool precopy;
	int ret;

	if (!v || vf_up(v, t->vf[0], TB_DRIVER))
		return -1;
	ret = mig_features(&v->d, &flags);
	nvme_vf_down(v);
	free(v);
	if (ret || !(flags & VFIO_MIGRATION_STOP_COPY) ||
	    !(flags & VFIO_MIGRATION_P2P)) {
		fprintf(stderr, "migration flags %#llx: %s\n",
			(unsigned long long)flags, strerror(-ret));
		return -1;
	}
	precopy = flags & VFIO_MIGRATION_PRE_COPY;
	if (migrate_reps(t, precopy, &md))
		return -1;
	/* where PRE_COPY is used, the STOP_COPY-only figure too (comment) */
	if (precopy && migrate_reps(t, false, &sc))
		return -1;
	printf("# migration flags %#llx: %s; median of %d migrations\n",
	       (unsigned long long)flags,
	       precopy ? "through PRE_COPY" : "STOP_COPY only", MIG_REPS);
	if (precopy)
		printf("# without PRE_COPY: downtime %.3f ms (quiesce %.3f, stop-copy %.3f, restore %.3f, resume %.3f), %zu bytes in STOP_COPY\n",
		       sc.downtime, sc.quiesce, sc.save, sc.restore, sc.resume,
		       sc.stop_copy_bytes);
	printf("nvme_downtime_ms: %.3f\n", md.downtime);
	printf("nvme_downtime_quiesce_ms: %.3f\n", md.quiesce);
	printf("nvme_downtime_stop_copy_ms: %.3f\n", md.save);
	printf("nvme_downtime_restore_ms: %.3f\n", md.restore);
	printf("nvme_downtime_resume_ms: %.3f\n", md.resume);
	printf("nvme_stop_copy_bytes: %zu\n", md.stop_copy_bytes);
	if (precopy)
		printf("nvme_pre_copy_bytes: %zu\n", md.pre_copy_bytes);
	return 0;
}

static int bench_dirty(const struct tb_devs *t)
{
	const unsigned long words = RAM_SIZE / MIG_PAGE / 64;
	struct nvme_vf *v = calloc(1, sizeof(*v));
	uint64_t end, *seen = calloc(words, 8);
	unsigned long i, reports = 0;
	struct nvme_dev_writes dw;
	struct nvme_dw_cmp cmp;
	struct mig_dirty log;
	bool logging = false;
	struct nvme_wl w;
	int ret = -1;

	memset(&w, 0, sizeof(w));
	if (nvme_dw_init(&dw, RAM_IOVA, RAM_SIZE))
		goto out;
	if (!seen || !v || vf_up(v, t->vf[0], TB_DRIVER))
		goto out;
	if (nvme_wl_init(&w, &v->c, 12288, 512, WL_DEPTH, 0x77) ||
	    nvme_wl_fill(&w, TMO))
		goto out;
	if (mig_dirty_start(&log, &v->d, RAM_IOVA, RAM_SIZE, true)) {
		fprintf(stderr, "dirty log: %s\n", log.err);
		goto out;
	}
	logging = true;
	if (log.page_size != MIG_PAGE) {
		fprintf(stderr, "dirty log: pages of %llu bytes\n",
			(unsigned long long)log.page_size);
		goto out;
	}
	nvme_dw_watch(&dw, &w);
	/* steps until DIRTY_READS Reads completed, a report every 3 */
	end = vmm_now_us() + WL_TMO * 1000ull;
	for (i = 0; dw.reads < DIRTY_READS; i++) {
		if (nvme_wl_step(&w) < 0 || vmm_now_us() > end)
			goto out;
		if (i % 3 == 0) {
			if (mig_dirty_report(&log, seen))
				goto out;
			reports++;
		}
	}
	if (nvme_wl_drain(&w, TMO) || mig_dirty_report(&log, seen) ||
	    w.errors)
		goto out;
	nvme_dw_add_cqs(&dw, &v->c);
	nvme_dw_compare(&dw, seen, &cmp);
	printf("# dirty log (%s): %lu reads, %lu reports, %lu pages reported, %lu the device wrote, %lu it did not, %lu written but missed\n",
	       mig_dirty_via_name(log.via), dw.reads, reports, cmp.reported,
	       cmp.reported - cmp.extra, cmp.extra, cmp.missed);
	if (cmp.missed || !cmp.reported) {
		fprintf(stderr, "dirty log: %lu pages missed, %lu reported\n",
			cmp.missed, cmp.reported);
		goto out;
	}
	printf("nvme_dirty_false_positive_pct: %.1f\n",
	       100.0 * cmp.extra / cmp.reported);
	ret = 0;
out:
	if (ret && w.why[0])
		fprintf(stderr, "dirty: workload: %s\n", w.why);
	if (logging)
		mig_dirty_stop(&log);
	nvme_wl_free(&w);
	nvme_dw_free(&dw);
	if (v)
		nvme_vf_down(v);
	free(v);
	free(seen);
	return ret;
}

int main(void)
{
	struct tb_devs t;
	uint64_t t0 = vmm_now_us();
	int rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (tb_devices(&t) || t.nr_vf < 2) {
		fprintf(stderr, "nvme_bench: needs two NVMe VFs\n");
		return 1;
	}
	if (bench_iops(&t))
		rc = 1;
	if (bench_migration(&t))
		rc = 1;
	if (bench_dirty(&t))
		rc = 1;
	printf("# nvme_bench: %.1f s\n", (vmm_now_us() - t0) / 1e6);
	return rc;
}
