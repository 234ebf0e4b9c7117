// SPDX-License-Identifier: GPL-2.0
/*
 * vmm_host: the test VMM as the VMM of a live migration between hosts
 * (Documentation/live-migration.rst), driven by migctl through the
 * vfio_mig family's phases.
 *
 *   vmm_host source BDF [--dev2 BDF2] [--ram-mib N] [--iova A] [--seed S]
 *                       [--report FILE] [--trap MODE] [--page-rate N]
 *                       [--mark-ms M] [--dirty-vfio] [--fill]
 *                       [--ack-delay PHASE:MS]
 *   vmm_host target BDF [--dev2 BDF2] [--ram-mib N] [--iova A]
 *                       [--report FILE] [--run-ms M] [--trap MODE]
 *                       [--page-rate N] [--ack-delay PHASE:MS]
 *
 * Both open BDF (bound to vfio-mig, trap mode MODE, default sparse) as a
 * VMM does, map guest RAM at IOVA A (default 0x100000; N MiB, default 8),
 * join the "mig" multicast group and print "ready" on stdout.
 *
 * The source boots a guest (lmvmm.h): a device vCPU and a memory vCPU
 * writing random RAM pages (N a second, default 200), the guest's own
 * state kept in its RAM. The device vCPU drives what BDF is: an edu runs
 * the edu_wl workload (DMAs both ways, register activity, results
 * checked); an NVMe function (1b36:0010, QEMU's NVMe and its VFs) runs the
 * verified NVMe workload on two polled I/O queue pairs with commands in
 * flight on both (nvme.h: every read checked against the newest write),
 * its namespace 1 shared with the target's; --fill first fills the workload's
 * RAM with pseudo-random bytes (no zero pages to skip). On the phases of
 * its BDF:
 *   begin   starts the device dirty log over its RAM (netlink dirty-start,
 *           or VFIO DMA logging with --dirty-vfio), dirty-marks its vCPUs'
 *           writes from then on every M ms (default 20), acks;
 *   pause   stops its vCPUs (a DMA in flight completes), dirty-marks every
 *           page written since the last mark, reads the device's registers
 *           (the switchover state), acks;
 *   abort   stops the dirty log, resumes the vCPUs, acks;
 *   commit  records the RAM digest and the switchover state in the report,
 *           acks, stops the dirty log and exits without touching the
 *           device again (0 if the guest's own checks held).
 * SIGTERM or SIGINT: stops the vCPUs, checks the guest (the device buffer
 * by DMA, the RAM pages, the workload's results), writes the report and
 * exits 0 if everything held.
 *
 * The target idles with the device open; prepare is acked, naming its RAM
 * (the controller writes pages there only); on start it
 * first takes the RAM digest (to compare with the source's), adopts the
 * guest from its RAM, checks the device's registers are the ones the guest
 * last saw, acks, checks the device buffer and the RAM pages against the
 * guest's state, runs the guest for M ms (default 2000) with its results
 * checked, writes the report and exits 0 or 1. On abort it discards its
 * RAM (the controller and the kernel roll the device back), acks and
 * waits for the next attempt.
 *
 * --dev2: the VM has a second device, BDF2, in a container of its own with
 * the same RAM mapped (one migration takes both, Documentation/
 * live-migration.rst "Several devices of one VM"). Each device has a guest
 * program of its own, in its half of the RAM, with its own two vCPUs
 * (BDF's in the first half, BDF2's in the second), each program's writes
 * dirty-marked into its device's log. The phases come per device: the
 * first pause stops every vCPU, each abort resumes them (migctl runs every
 * device again before any abort); the source commits once both devices
 * committed, the target adopts each program at its device's start and
 * runs both once both started. The report's device fields of BDF2 carry
 * the prefix "dev2_"; "ok" covers both.
 *
 * The report (--report) is one JSON object; a summary line ends stdout.
 * --ack-delay (a test hook) holds the ack of PHASE for MS milliseconds,
 * once the VMM has done what the phase asks: a window for tests to break
 * a migration at a known point.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <linux/vfio_mig.h>

#include "edu.h"
#include "lmvmm.h"
#include "mig.h"
#include "shadow.h"
#include "vmm.h"

#define MAX_PHASES	64

enum role { SOURCE, TARGET };
enum vstate { S_IDLE, S_BEGUN, S_PAUSED, S_COMMITTED, S_STARTED };

struct phase_rec {
	uint32_t phase, seq, result;
	int ack_err;
	double t_ms;
};

static struct {
	enum role role;
	const char *bdf, *bdf2;
	const char *report;
	const char *trap;
	uint64_t iova, seed;
	size_t ram_size;
	unsigned int page_rate, mark_ms, run_ms;
	bool dirty_vfio, fill;
	uint32_t delay_phase;
	unsigned int delay_ms;
} opt = {
	.iova = 0x100000,
	.ram_size = 8u << 20,
	.trap = "sparse",
	.page_rate = 200,
	.mark_ms = 20,
	.run_ms = 2000,
};

/* A device of the VM and the guest program that drives it. */
struct vdev {
	const char *bdf;
	struct vmm_dev *d;
	struct vmm_ram ram;		/* its program's part of guest RAM */
	struct edu edu;
	bool is_nvme;			/* an NVMe function, not edu */
	struct lm_guest guest;
	bool guest_up;
	struct mig_dirty dlog;
	bool logging, own_log;
	bool committed, started;
	/* for the report */
	char after_abort_state[32];
	uint64_t steps_at_abort;
	struct edu_regs regs;		/* source: at pause; target: at start */
	bool have_regs;
	int regs_ok, buffer_ok, pages_ok, model_ok;	/* -1: not checked */
	uint64_t steps_before;		/* target: the guest's steps at start */
};

static struct mig_side side;		/* the first device, and all the RAM */
static struct vmm_dev dev2;
static struct vdev vd[2] = {
	{ .regs_ok = -1, .buffer_ok = -1, .pages_ok = -1, .model_ok = -1 },
	{ .regs_ok = -1, .buffer_ok = -1, .pages_ok = -1, .model_ok = -1 },
};
static unsigned int nvd = 1;
static struct lm_nl nl;
static enum vstate vstate = S_IDLE;
static uint64_t t_start;
static int sigfd = -1;

static struct {
	struct phase_rec ph[MAX_PHASES];
	unsigned int nph;
	unsigned int begins, pauses, aborts, commits, prepares, starts;
	unsigned long marks, mark_ranges, mark_pages, mark_errors;
	unsigned long lost_events;
	bool abort_not_running;
	uint64_t ram_digest;
	bool have_digest;
	double pause_ms, start_ms;
	bool protocol_error;
	char why[512];
} rep;

#define for_each_vdev(v) for ((v) = vd; (v) < vd + nvd; (v)++)

static double now_ms(void)
{
	return (vmm_now_us() - t_start) / 1000.0;
}

static const char *role_name(void)
{
	return opt.role == SOURCE ? "source" : "target";
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vmm_host %s %s%s%s +%.3fs: ", role_name(), opt.bdf,
		opt.bdf2 ? "," : "", opt.bdf2 ? opt.bdf2 : "",
		now_ms() / 1000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The first failure, kept for the report and the summary. */
static void why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void why(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say("FAILED: %s", buf);
	if (!rep.why[0])
		snprintf(rep.why, sizeof(rep.why), "%s", buf);
}

static void json_str(FILE *f, const char *pfx, const char *key, const char *s,
		     bool comma)
{
	fprintf(f, "\"%s%s\": \"", pfx, key);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s < 0x20)
			fputc(' ', f);
		else
			fputc(*s, f);
	}
	fprintf(f, "\"%s\n", comma ? "," : "");
}

static void json_check(FILE *f, const char *pfx, const char *key, int v)
{
	if (v >= 0)
		fprintf(f, "\"%s%s\": %s,\n", pfx, key, v ? "true" : "false");
}

static bool checks_hold(void)
{
	struct vdev *v;

	if (rep.why[0] || rep.protocol_error)
		return false;
	for_each_vdev(v)
		if (!v->regs_ok || !v->buffer_ok || !v->pages_ok ||
		    !v->model_ok)
			return false;
	return true;
}

/* A device's fields of the report, its keys prefixed with @pfx. */
static void report_dev(FILE *f, struct vdev *v, const char *pfx)
{
	json_str(f, pfx, "bdf", v->bdf, true);
	json_str(f, pfx, "device", v->is_nvme ? "nvme" : "edu", true);
	if (v->after_abort_state[0])
		json_str(f, pfx, "state_after_abort", v->after_abort_state,
			 true);
	if (v->have_regs)
		fprintf(f, "\"%sreg_liveness\": %u,\n\"%sreg_factorial\": %u,\n"
			"\"%sreg_status\": %u,\n\"%sreg_irq_status\": %u,\n"
			"\"%sreg_dma_src\": %" PRIu64 ",\n\"%sreg_dma_dst\": %" PRIu64 ",\n"
			"\"%sreg_dma_count\": %" PRIu64 ",\n\"%sreg_dma_cmd\": %" PRIu64 ",\n",
			pfx, v->regs.liveness, pfx, v->regs.factorial, pfx,
			v->regs.status, pfx, v->regs.irq_status, pfx,
			v->regs.dma_src, pfx, v->regs.dma_dst, pfx,
			v->regs.dma_count, pfx, v->regs.dma_cmd);
	json_check(f, pfx, "regs_ok", v->regs_ok);
	json_check(f, pfx, "buffer_ok", v->buffer_ok);
	json_check(f, pfx, "pages_ok", v->pages_ok);
	json_check(f, pfx, "model_ok", v->model_ok);
	if (v->guest_up) {
		struct lm_guest *g = &v->guest;
		uint64_t steps = lm_guest_steps(g);

		fprintf(f, "\"%sseed\": %" PRIu64 ",\n\"%ssteps\": %" PRIu64 ",\n"
			"\"%ssteps_before\": %" PRIu64 ",\n"
			"\"%ssteps_after_abort\": %" PRIu64 ",\n"
			"\"%schecks\": %lu,\n\"%serrors\": %lu,\n"
			"\"%spage_writes\": %" PRIu64 ",\n",
			pfx, v->is_nvme ? g->nv->ns.seed : g->ds.seed, pfx,
			steps, pfx, v->steps_before, pfx,
			rep.aborts ? steps - v->steps_at_abort : 0,
			pfx, lm_guest_checks(g), pfx, lm_guest_errors(g), pfx,
			g->ms.writes);
		if (v->is_nvme)
			fprintf(f, "\"%snvme_writes\": %lu,\n\"%snvme_reads\": %lu,\n"
				"\"%snvme_flushes\": %lu,\n"
				"\"%snvme_inflight\": %lu,\n"
				"\"%snvme_verified\": %s,\n",
				pfx, g->nv->w.writes, pfx, g->nv->w.reads,
				pfx, g->nv->w.flushes, pfx,
				nvme_wl_inflight(&g->nv->w), pfx,
				g->nv->verified ? "true" : "false");
		else
			fprintf(f, "\"%sdmas_in\": %lu,\n\"%sdmas_out\": %lu,\n",
				pfx, g->wl.dmas_in, pfx, g->wl.dmas_out);
	}
}

static void write_report(const char *result)
{
	char tmp[4096], phases[MAX_PHASES * 48] = "";
	unsigned int i;
	size_t len = 0;
	FILE *f;

	for (i = 0; i < rep.nph; i++)
		len += snprintf(phases + len, sizeof(phases) - len, "%s%s/%u:%u",
				i ? " " : "", lm_phase_name(rep.ph[i].phase),
				rep.ph[i].seq, rep.ph[i].result);
	if (!opt.report)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", opt.report);
	f = fopen(tmp, "w");
	if (!f) {
		say("report %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "{\n");
	json_str(f, "", "role", role_name(), true);
	fprintf(f, "\"devices\": %u,\n", nvd);
	report_dev(f, &vd[0], "");
	if (nvd > 1)
		report_dev(f, &vd[1], "dev2_");
	json_str(f, "", "result", result, true);
	json_str(f, "", "phases", phases, true);
	fprintf(f, "\"begins\": %u,\n\"pauses\": %u,\n\"aborts\": %u,\n"
		"\"commits\": %u,\n\"prepares\": %u,\n\"starts\": %u,\n",
		rep.begins, rep.pauses, rep.aborts, rep.commits, rep.prepares,
		rep.starts);
	fprintf(f, "\"marks\": %lu,\n\"mark_ranges\": %lu,\n"
		"\"mark_pages\": %lu,\n\"mark_errors\": %lu,\n"
		"\"lost_events\": %lu,\n", rep.marks, rep.mark_ranges,
		rep.mark_pages, rep.mark_errors, rep.lost_events);
	if (rep.have_digest)
		fprintf(f, "\"ram_digest\": %" PRIu64 ",\n", rep.ram_digest);
	fprintf(f, "\"pause_ms\": %.1f,\n\"start_ms\": %.1f,\n",
		rep.pause_ms, rep.start_ms);
	fprintf(f, "\"protocol_error\": %s,\n",
		rep.protocol_error ? "true" : "false");
	fprintf(f, "\"ok\": %s,\n", checks_hold() ? "true" : "false");
	json_str(f, "", "why", rep.why, false);
	fprintf(f, "}\n");
	if (fclose(f) || rename(tmp, opt.report))
		say("report %s: %s", opt.report, strerror(errno));
}

/* The summary line, the report, the exit code. */
static void __attribute__((noreturn)) finish(const char *result)
{
	bool ok = checks_hold();
	struct vdev *v;

	write_report(result);
	printf("%s %s%s%s: %s; phases %u (aborts %u)", role_name(), opt.bdf,
	       opt.bdf2 ? "," : "", opt.bdf2 ? opt.bdf2 : "", result, rep.nph,
	       rep.aborts);
	for_each_vdev(v)
		if (v->guest_up)
			printf("; %" PRIu64 " %s steps, %lu %s checked, %lu wrong, %" PRIu64 " page writes",
			       lm_guest_steps(&v->guest),
			       v->is_nvme ? "NVMe" : "edu",
			       lm_guest_checks(&v->guest),
			       v->is_nvme ? "blocks" : "results",
			       lm_guest_errors(&v->guest), v->guest.ms.writes);
	printf("%s%s\n", ok ? "; OK" : "; FAILED: ", ok ? "" : rep.why);
	fflush(stdout);
	_exit(ok ? 0 : 1);
}

static struct phase_rec *record(const struct lm_event *e)
{
	struct phase_rec *r;

	if (rep.nph == MAX_PHASES)
		return NULL;
	r = &rep.ph[rep.nph++];
	r->phase = e->phase;
	r->seq = e->seq;
	r->t_ms = now_ms();
	return r;
}

static void ack(const struct lm_event *e, struct phase_rec *r, int err)
{
	uint32_t result = err < 0 ? -err : err;
	int ret;

	if (r)
		r->result = result;
	if (e->phase == opt.delay_phase && opt.delay_ms) {
		say("%s seq %u: holding the ack for %u ms (--ack-delay)",
		    lm_phase_name(e->phase), e->seq, opt.delay_ms);
		usleep(opt.delay_ms * 1000);
	}
	if (e->phase == VFIO_MIG_MIG_PHASE_PREPARE && !result) {
		/* the target names its RAM: pages are written there only */
		struct lm_ram ram = { side.ram.iova, side.ram.size };

		ret = lm_ack_ram(&nl, e->bdf, e->phase, e->seq, result, &ram,
				 1);
	} else {
		ret = lm_ack(&nl, e->bdf, e->phase, e->seq, result);
	}
	if (r)
		r->ack_err = ret;
	if (ret == -ESTALE)
		say("ack %s seq %u: stale (a newer phase replaced it)",
		    lm_phase_name(e->phase), e->seq);
	else if (ret)
		say("%s", nl.err);
	else
		say("%s %s seq %u: acked %u%s%s", e->bdf, lm_phase_name(e->phase),
		    e->seq, result, result ? " " : "",
		    result ? strerror(result) : "");
}

static void pause_all(void)
{
	struct vdev *v;

	for_each_vdev(v)
		if (v->guest_up)
			lm_guest_pause(&v->guest);
}

static void resume_all(void)
{
	struct vdev *v;

	for_each_vdev(v)
		if (v->guest_up)
			lm_guest_resume(&v->guest);
}

/* ---- source ---- */

/* Report @v's program's vCPU writes since the last mark into @v's log. */
static int flush_marks(struct vdev *v)
{
	size_t words = mig_bitmap_words(v->ram.size), ranges = 0, pages = 0;
	uint64_t *bits = calloc(words, sizeof(*bits));
	size_t i, n = v->ram.size / MIG_PAGE;
	int ret;

	if (!bits)
		return -ENOMEM;
	mig_cpu_take(&v->guest.cpu, bits);
	if (!mig_bitmap_weight(bits, n)) {
		free(bits);
		return 0;
	}
	ret = lm_dirty_mark(&nl, v->bdf, v->ram.iova, bits, n, &ranges,
			    &pages);
	rep.marks++;
	rep.mark_ranges += ranges;
	rep.mark_pages += pages;
	if (ret) {
		/* not lost: marked again for the next try */
		rep.mark_errors++;
		say("%s", nl.err);
		for (i = 0; i < n; i++)
			if (mig_test_bit(bits, i))
				mig_cpu_mark(&v->guest.cpu,
					     v->ram.iova + i * MIG_PAGE,
					     MIG_PAGE);
	}
	free(bits);
	return ret;
}

/* Every running log's marks; the first error. */
static int flush_all(void)
{
	struct vdev *v;
	int ret = 0, r;

	for_each_vdev(v) {
		if (!v->logging)
			continue;
		r = flush_marks(v);
		ret = ret ? ret : r;
	}
	return ret;
}

static void stop_log(struct vdev *v)
{
	int ret;

	if (!v->logging)
		return;
	v->logging = false;
	if (!v->own_log)
		return;
	v->own_log = false;
	ret = mig_dirty_stop(&v->dlog);
	if (ret)
		say("%s: stopping the dirty log: %s (%s)", v->bdf,
		    strerror(-ret), v->dlog.nl.err);
}

static void src_begin(struct vdev *v, const struct lm_event *e,
		      struct phase_rec *r)
{
	int ret;

	rep.begins++;
	if (vstate == S_PAUSED) {
		/* a new attempt without an abort: go on running */
		say("begin while paused: resuming the vCPUs first");
		resume_all();
	}
	if (!v->logging) {
		/* a device's log covers all the VM's RAM */
		ret = mig_dirty_start(&v->dlog, v->d, side.ram.iova,
				      side.ram.size, !opt.dirty_vfio);
		if (ret == -EBUSY) {
			say("%s: a dirty log already runs on the device: marking into it",
			    v->bdf);
			v->logging = true;
		} else if (ret) {
			say("%s: dirty log: %s", v->bdf, v->dlog.err);
			ack(e, r, ret);
			return;
		} else {
			v->logging = v->own_log = true;
			say("%s: dirty log started (%s)", v->bdf,
			    mig_dirty_via_name(v->dlog.via));
		}
	}
	ret = flush_marks(v);
	if (ret) {
		ack(e, r, ret);
		return;
	}
	vstate = S_BEGUN;
	ack(e, r, 0);
}

static void src_pause(struct vdev *v, const struct lm_event *e,
		      struct phase_rec *r)
{
	uint64_t t0 = vmm_now_us();
	int ret;

	rep.pauses++;
	pause_all();
	if (!v->logging) {
		say("pause without begin: no dirty log to mark into");
		ack(e, r, EPROTO);
		return;
	}
	ret = flush_all();
	if (ret) {
		ack(e, r, ret);
		return;
	}
	if (!v->is_nvme) {
		edu_regs_read(&v->edu, &v->regs);
		v->have_regs = true;
	}
	vstate = S_PAUSED;
	rep.pause_ms += (vmm_now_us() - t0) / 1000.0;
	if (v->is_nvme)
		say("%s: vCPUs paused after %" PRIu64 " NVMe steps, %lu commands in flight, %" PRIu64 " page writes (%.1f ms)",
		    v->bdf, lm_guest_steps(&v->guest),
		    nvme_wl_inflight(&v->guest.nv->w), v->guest.ms.writes,
		    rep.pause_ms);
	else
		say("%s: vCPUs paused after %" PRIu64 " edu steps, %" PRIu64 " page writes (%.1f ms)",
		    v->bdf, v->guest.ds.steps, v->guest.ms.writes,
		    rep.pause_ms);
	ack(e, r, 0);
}

static void src_abort(struct vdev *v, const struct lm_event *e,
		      struct phase_rec *r)
{
	uint32_t st;
	int ret;

	rep.aborts++;
	stop_log(v);
	/*
	 * The vCPUs resume: every device of the VM must run (migctl runs
	 * each again before it tells any VMM abort).
	 */
	for_each_vdev(v) {
		ret = mig_get_state(v->d, &st);
		snprintf(v->after_abort_state, sizeof(v->after_abort_state),
			 "%s", ret ? strerror(-ret) : mig_state_name(st));
		if (ret || st != VFIO_DEVICE_STATE_RUNNING) {
			rep.abort_not_running = true;
			why("at an abort %s is in %s, not RUNNING", v->bdf,
			    v->after_abort_state);
		}
		v->steps_at_abort = lm_guest_steps(&v->guest);
	}
	resume_all();
	vstate = S_IDLE;
	ack(e, r, 0);
}

static void src_commit(struct vdev *v, const struct lm_event *e,
		       struct phase_rec *r)
{
	rep.commits++;
	if (vstate != S_PAUSED) {
		rep.protocol_error = true;
		why("commit without a pause before it: the vCPUs were running");
		pause_all();
	}
	v->committed = true;
	for_each_vdev(v) {
		if (!v->committed) {
			/* the VM is gone once every device is */
			ack(e, r, 0);
			return;
		}
	}
	rep.ram_digest = lm_ram_digest(&side.ram);
	rep.have_digest = true;
	for_each_vdev(v) {
		v->pages_ok = lm_guest_check_pages(&v->guest);
		v->model_ok = lm_guest_check_model(&v->guest);
		if (!v->pages_ok || !v->model_ok)
			why("%s", v->guest.why);
	}
	vstate = S_COMMITTED;
	say("committed: RAM digest %" PRIu64, rep.ram_digest);
	write_report("committed");
	ack(e, r, 0);
	for_each_vdev(v)
		stop_log(v);
	finish("committed");
}

static void src_event(struct vdev *v, const struct lm_event *e)
{
	struct phase_rec *r = record(e);

	say("%s: phase %s seq %u", v->bdf, lm_phase_name(e->phase), e->seq);
	switch (e->phase) {
	case VFIO_MIG_MIG_PHASE_BEGIN:
		src_begin(v, e, r);
		break;
	case VFIO_MIG_MIG_PHASE_PAUSE:
		src_pause(v, e, r);
		break;
	case VFIO_MIG_MIG_PHASE_ABORT:
		src_abort(v, e, r);
		break;
	case VFIO_MIG_MIG_PHASE_COMMIT:
		src_commit(v, e, r);
		break;
	default:
		rep.protocol_error = true;
		why("phase %s (%u) announced to a source VMM",
		    lm_phase_name(e->phase), e->phase);
		ack(e, r, EINVAL);
	}
}

/* A signal: stop the guest, check it, report. */
static void __attribute__((noreturn)) src_signal(int sig)
{
	const char *result;
	struct vdev *v;

	say("signal %d: stopping", sig);
	pause_all();
	for_each_vdev(v) {
		uint32_t st = VFIO_DEVICE_STATE_ERROR;

		if (lm_guest_error(&v->guest))
			why("%s", v->guest.why);
		if (vstate != S_PAUSED && !mig_get_state(v->d, &st) &&
		    st == VFIO_DEVICE_STATE_RUNNING) {
			v->buffer_ok = lm_guest_check_buffer(&v->guest);
			if (!v->buffer_ok)
				why("%s", v->guest.why);
		} else {
			say("%s in %s: its buffer is not checked", v->bdf,
			    mig_state_name(st));
		}
		v->pages_ok = lm_guest_check_pages(&v->guest);
		v->model_ok = lm_guest_check_model(&v->guest);
		if (!v->pages_ok || !v->model_ok)
			why("%s", v->guest.why);
		stop_log(v);
	}
	if (vstate == S_PAUSED)
		result = "paused";
	else if (rep.aborts)
		result = "aborted";
	else
		result = "running";
	finish(result);
}

/* ---- target ---- */

static void tgt_prepare(struct vdev *v, const struct lm_event *e,
			struct phase_rec *r)
{
	uint32_t st;

	rep.prepares++;
	if (!side.open || !side.ram.mapped) {
		ack(e, r, ENODEV);
		return;
	}
	if (!mig_get_state(v->d, &st) && st != VFIO_DEVICE_STATE_RUNNING)
		say("prepare: %s is in %s (a previous attempt not rolled back?)",
		    v->bdf, mig_state_name(st));
	vstate = S_IDLE;
	ack(e, r, 0);
}

static void tgt_abort(struct vdev *v, const struct lm_event *e,
		      struct phase_rec *r)
{
	uint32_t st;
	int ret;

	rep.aborts++;
	/*
	 * What arrived is not a VM: forget it. The device is the
	 * controller's to roll back (the kernel does when it lets go).
	 */
	memset(side.ram.host, 0, side.ram.size);
	ret = mig_get_state(v->d, &st);
	snprintf(v->after_abort_state, sizeof(v->after_abort_state), "%s",
		 ret ? strerror(-ret) : mig_state_name(st));
	say("RAM discarded; %s in %s", v->bdf, v->after_abort_state);
	ack(e, r, 0);
}

/*
 * A shadow the stream engaged hands the device back in the background,
 * with the guest running, through the page this VMM lent the device
 * (LM_SCRATCH_OFF). The buffer check reads through that page too, so it
 * waits until the device has given the page back.
 */
static void wait_lent_page(struct vdev *v)
{
	struct lm_shadow s;
	struct genl g;
	int ret;

	ret = genl_open(&g, "vfio_mig");
	if (!ret) {
		ret = lm_shadow_wait_released(&g, v->bdf, &s, 5000);
		genl_close(&g);
	}
	if (ret)
		say("%s: the device's shadow is not handed back (%s): checking the buffer anyway",
		    v->bdf, strerror(-ret));
}

static void __attribute__((noreturn)) tgt_run(void);

static void tgt_start(struct vdev *v, const struct lm_event *e,
		      struct phase_rec *r)
{
	uint64_t t0 = vmm_now_us(), t_digest, t_adopt;
	struct vdev *o;
	struct edu_regs now;
	int ret;

	rep.starts++;
	/*
	 * The test's own checks (not a VMM's work) come before the vCPUs
	 * run, so they count in the downtime: the log names their parts.
	 * The RAM digest at the first device's start: migctl runs every
	 * device before it starts any, and no vCPU runs until all started.
	 */
	if (!rep.have_digest) {
		rep.ram_digest = lm_ram_digest(&side.ram);
		rep.have_digest = true;
	}
	t_digest = vmm_now_us();
	if (v->is_nvme)
		ret = lm_guest_adopt_nvme(&v->guest, &v->ram, v->d,
					  opt.page_rate);
	else
		ret = lm_guest_adopt(&v->guest, &v->ram, &v->edu,
				     opt.page_rate);
	if (ret) {
		why("start: %s: %s", v->bdf, v->guest.why);
		ack(e, r, EBADMSG);
		finish("failed");
	}
	v->guest_up = true;
	v->started = true;
	t_adopt = vmm_now_us();
	v->steps_before = lm_guest_steps(&v->guest);
	v->regs_ok = lm_guest_check_regs(&v->guest, &now);
	v->regs = now;
	v->have_regs = !v->is_nvme;
	if (!v->regs_ok)
		why("%s", v->guest.why);
	rep.start_ms += (vmm_now_us() - t0) / 1000.0;
	say("%s started in %.1f ms (RAM digest %.1f ms, guest adopted %.1f ms, registers checked %.1f ms): RAM digest %" PRIu64 ", guest at %s step %" PRIu64 ", %" PRIu64 " page writes",
	    v->bdf, (vmm_now_us() - t0) / 1000.0, (t_digest - t0) / 1000.0,
	    (t_adopt - t_digest) / 1000.0,
	    (vmm_now_us() - t_adopt) / 1000.0,
	    rep.ram_digest, v->is_nvme ? "NVMe" : "edu",
	    lm_guest_steps(&v->guest), v->guest.ms.writes);
	for_each_vdev(o) {
		if (!o->started) {
			ack(e, r, 0);
			return;
		}
	}
	vstate = S_STARTED;
	ack(e, r, 0);
	tgt_run();
}

static void tgt_event(struct vdev *v, const struct lm_event *e)
{
	struct phase_rec *r = record(e);

	say("%s: phase %s seq %u", v->bdf, lm_phase_name(e->phase), e->seq);
	if (vstate == S_STARTED || v->started) {
		rep.protocol_error = true;
		why("phase %s after start", lm_phase_name(e->phase));
		ack(e, r, EINVAL);
		return;
	}
	switch (e->phase) {
	case VFIO_MIG_MIG_PHASE_PREPARE:
		tgt_prepare(v, e, r);
		break;
	case VFIO_MIG_MIG_PHASE_START:
		tgt_start(v, e, r);
		break;
	case VFIO_MIG_MIG_PHASE_ABORT:
		tgt_abort(v, e, r);
		break;
	default:
		rep.protocol_error = true;
		why("phase %s (%u) announced to a target VMM",
		    lm_phase_name(e->phase), e->phase);
		ack(e, r, EINVAL);
	}
}

/* ---- the event loop ---- */

static struct vdev *vdev_of(const char *bdf)
{
	struct vdev *v;

	for_each_vdev(v)
		if (!strcmp(bdf, v->bdf))
			return v;
	return NULL;
}

static void events(void)
{
	struct lm_event e;
	struct vdev *v;
	int ret;

	while ((ret = lm_nl_next(&nl, &e, 0)) != 0) {
		if (ret == -ENOBUFS) {
			rep.lost_events++;
			say("events were lost (socket overrun)");
			continue;
		}
		if (ret < 0) {
			why("reading mig events: %s", strerror(-ret));
			finish("failed");
		}
		v = vdev_of(e.bdf);
		if (e.cmd != VFIO_MIG_CMD_MIG_PHASE_NTF || !v)
			continue;
		if (opt.role == SOURCE)
			src_event(v, &e);
		else
			tgt_event(v, &e);
	}
}

/* Wait up to @ms for events or a signal; the signal number or 0. */
static int wait_for(int ms)
{
	struct pollfd p[2] = {
		{ .fd = lm_nl_fd(&nl), .events = POLLIN },
		{ .fd = sigfd, .events = POLLIN },
	};
	struct signalfd_siginfo si;

	if (poll(p, 2, ms) < 0 && errno != EINTR)
		return 0;
	if ((p[1].revents & POLLIN) &&
	    read(sigfd, &si, sizeof(si)) == sizeof(si))
		return si.ssi_signo;
	return 0;
}

static bool any_logging(void)
{
	struct vdev *v;

	for_each_vdev(v)
		if (v->logging)
			return true;
	return false;
}

static void __attribute__((noreturn)) src_loop(void)
{
	uint64_t next_mark = 0;
	struct vdev *v;

	for (;;) {
		int sig = wait_for(any_logging() && vstate == S_BEGUN ?
				   (int)opt.mark_ms : 200);

		if (sig)
			src_signal(sig);
		for_each_vdev(v) {
			if (lm_guest_error(&v->guest)) {
				why("%s", v->guest.why);
				src_signal(0);
			}
		}
		events();
		if (any_logging() && vstate == S_BEGUN &&
		    vmm_now_us() >= next_mark) {
			flush_all();
			next_mark = vmm_now_us() + opt.mark_ms * 1000ull;
		}
	}
}

/* The target after start: check what came, run the guest, report. */
static void __attribute__((noreturn)) tgt_run(void)
{
	struct vdev *v;
	uint64_t end;
	int sig = 0, ret;
	bool failed = false;

	/*
	 * The vCPUs start once the device buffers and RAM are checked. An
	 * NVMe guest goes on with its commands in flight: its blocks are
	 * read back after the run.
	 */
	for_each_vdev(v) {
		if (!v->is_nvme) {
			wait_lent_page(v);
			v->buffer_ok = lm_guest_check_buffer(&v->guest);
		}
		v->pages_ok = lm_guest_check_pages(&v->guest);
		if (!v->buffer_ok || !v->pages_ok)
			why("%s", v->guest.why);
	}
	for_each_vdev(v) {
		ret = lm_guest_start(&v->guest);
		if (ret) {
			why("starting the vCPUs: %s", strerror(-ret));
			finish("failed");
		}
	}
	end = vmm_now_us() + opt.run_ms * 1000ull;
	while (vmm_now_us() < end && !failed) {
		sig = wait_for(50);
		if (sig)
			break;
		events();
		for_each_vdev(v)
			failed |= lm_guest_error(&v->guest) != 0;
	}
	pause_all();
	for_each_vdev(v) {
		if (lm_guest_error(&v->guest))
			why("%s", v->guest.why);
		if (v->pages_ok && !lm_guest_check_pages(&v->guest)) {
			v->pages_ok = 0;
			why("%s", v->guest.why);
		}
		if (v->is_nvme && !lm_guest_error(&v->guest)) {
			v->buffer_ok = lm_guest_check_buffer(&v->guest);
			if (!v->buffer_ok)
				why("%s", v->guest.why);
		}
		v->model_ok = lm_guest_check_model(&v->guest);
		if (!v->model_ok)
			why("%s", v->guest.why);
		if (!sig && lm_guest_steps(&v->guest) == v->steps_before)
			why("%s: the guest made no device step in %u ms on the target",
			    v->bdf, opt.run_ms);
		say("ran %u ms: %s %s steps %" PRIu64 " -> %" PRIu64,
		    opt.run_ms, v->bdf, v->is_nvme ? "NVMe" : "edu",
		    v->steps_before, lm_guest_steps(&v->guest));
	}
	finish("started");
}

static void __attribute__((noreturn)) tgt_loop(void)
{
	for (;;) {
		int sig = wait_for(200);

		if (sig) {
			say("signal %d: stopping", sig);
			finish(rep.prepares ? "prepared" : "idle");
		}
		events();
	}
}

/* ---- set-up ---- */

/* QEMU's NVMe controller and its VFs (1b36:0010), by the sysfs ids. */
static bool device_is_nvme(const char *bdf)
{
	char path[128], id[16] = "", dev[16] = "";

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", bdf);
	if (vmm_sysfs_read(path, id, sizeof(id)))
		return false;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", bdf);
	if (vmm_sysfs_read(path, dev, sizeof(dev)))
		return false;
	return strtoul(id, NULL, 16) == 0x1b36 &&
	       strtoul(dev, NULL, 16) == 0x0010;
}

static void __attribute__((noreturn)) usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s source BDF [--dev2 BDF2] [--ram-mib N] [--iova A] [--seed S]\n"
		"                      [--report FILE] [--trap MODE] [--page-rate N] [--mark-ms M]\n"
		"                      [--dirty-vfio] [--fill] [--ack-delay PHASE:MS]\n"
		"       %s target BDF [--dev2 BDF2] [--ram-mib N] [--iova A] [--report FILE]\n"
		"                      [--run-ms M] [--trap MODE] [--page-rate N] [--ack-delay PHASE:MS]\n",
		argv0, argv0);
	exit(2);
}

static void parse_delay(const char *argv0, const char *v)
{
	const char *colon = strchr(v, ':');
	uint32_t p;

	for (p = VFIO_MIG_MIG_PHASE_BEGIN; colon && p <= VFIO_MIG_MIG_PHASE_START;
	     p++) {
		if (strlen(lm_phase_name(p)) == (size_t)(colon - v) &&
		    !strncmp(v, lm_phase_name(p), colon - v)) {
			opt.delay_phase = p;
			opt.delay_ms = strtoul(colon + 1, NULL, 0);
			return;
		}
	}
	usage(argv0);
}

static void parse(int argc, char **argv)
{
	int i;

	if (argc < 3)
		usage(argv[0]);
	if (!strcmp(argv[1], "source"))
		opt.role = SOURCE;
	else if (!strcmp(argv[1], "target"))
		opt.role = TARGET;
	else
		usage(argv[0]);
	opt.bdf = argv[2];
	opt.seed = vmm_now_us() ^ getpid();
	for (i = 3; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--dirty-vfio")) {
			opt.dirty_vfio = true;
			continue;
		}
		if (!strcmp(a, "--fill")) {
			opt.fill = true;
			continue;
		}
		if (!v)
			usage(argv[0]);
		i++;
		if (!strcmp(a, "--ram-mib"))
			opt.ram_size = strtoull(v, NULL, 0) << 20;
		else if (!strcmp(a, "--dev2"))
			opt.bdf2 = v;
		else if (!strcmp(a, "--iova"))
			opt.iova = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--seed"))
			opt.seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--report"))
			opt.report = v;
		else if (!strcmp(a, "--run-ms"))
			opt.run_ms = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--trap"))
			opt.trap = v;
		else if (!strcmp(a, "--page-rate"))
			opt.page_rate = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--mark-ms"))
			opt.mark_ms = strtoul(v, NULL, 0) ?: 1;
		else if (!strcmp(a, "--ack-delay"))
			parse_delay(argv[0], v);
		else
			usage(argv[0]);
	}
	if (opt.bdf2 && !strcmp(opt.bdf2, opt.bdf)) {
		fprintf(stderr, "%s: --dev2 %s is BDF itself\n", argv[0],
			opt.bdf2);
		exit(2);
	}
	if (opt.ram_size < (opt.bdf2 ? 4u << 20 : 1u << 20) ||
	    opt.ram_size % (2 * MIG_PAGE) || opt.iova % MIG_PAGE ||
	    opt.iova + opt.ram_size > EDU_DMA_MASK) {
		fprintf(stderr,
			"%s: RAM of %zu bytes at IOVA %#llx: want >= 1 MiB (4 MiB with --dev2), page aligned, below 2^28 (edu DMA)\n",
			argv[0], opt.ram_size, (unsigned long long)opt.iova);
		exit(2);
	}
}

static void __attribute__((noreturn)) setup_fail(const char *what, int err)
{
	why("%s: %s", what, strerror(err < 0 ? -err : err));
	finish("failed");
}

/* The VMM takes devices bound to vfio-mig already. */
static void check_driver(const char *bdf)
{
	char drv[64] = "";
	int ret = vmm_driver_of(bdf, drv, sizeof(drv));

	if (ret || strcmp(drv, "vfio-mig")) {
		why("%s is bound to \"%s\", not vfio-mig", bdf,
		    ret ? strerror(-ret) : drv);
		finish("failed");
	}
}

/* A device as the VM's: its guest program's part of the RAM, its probe. */
static void setup_dev(struct vdev *v, const char *bdf, struct vmm_dev *d,
		      unsigned int part)
{
	int ret;

	v->bdf = bdf;
	v->d = d;
	v->ram = side.ram;
	v->ram.memfd = -1;
	if (nvd > 1) {
		/* its half of the RAM, the other half the other program's */
		v->ram.size = side.ram.size / 2;
		v->ram.host = (uint8_t *)side.ram.host + part * v->ram.size;
		v->ram.iova = side.ram.iova + part * v->ram.size;
	}
	v->is_nvme = device_is_nvme(bdf);
	if (v->is_nvme) {
		/* the guest's command register, as a VMM restores config space */
		ret = vmm_enable_bus_master(d);
		if (ret)
			setup_fail("bus master", ret);
	} else {
		ret = edu_probe(&v->edu, d, false);
		if (ret)
			setup_fail("edu probe", ret);
	}
}

/* The second device: its own container, the VM's RAM mapped alike. */
static void open_dev2(void)
{
	char path[256];
	int ret;

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/trap_mode", opt.bdf2);
	ret = vmm_sysfs_write(path, opt.trap);
	if (!ret)
		ret = vmm_open(&dev2, opt.bdf2);
	if (!ret)
		ret = vmm_dma_map(&dev2, &side.ram);
	if (ret)
		setup_fail("opening --dev2 and mapping guest RAM for it", ret);
}

/* Boot the program of @v on its device, in its part of the RAM. */
static void boot_guest(struct vdev *v, uint64_t seed)
{
	int ret;

	if (v->is_nvme)
		ret = lm_guest_boot_nvme(&v->guest, &v->ram, v->d, seed,
					 opt.page_rate);
	else
		ret = lm_guest_boot(&v->guest, &v->ram, &v->edu, seed,
				    opt.page_rate, opt.fill);
	if (ret) {
		why("booting the guest of %s: %s", v->bdf,
		    v->guest.why[0] ? v->guest.why : strerror(-ret));
		finish("failed");
	}
	v->guest_up = true;
	ret = lm_guest_start(&v->guest);
	if (ret)
		setup_fail("starting the vCPUs", ret);
	say("%s: guest running: seed %#llx, %zu MiB at IOVA %#llx, %u pages for the memory vCPU at %u/s",
	    v->bdf, (unsigned long long)seed, v->ram.size >> 20,
	    (unsigned long long)v->ram.iova, v->guest.npages, opt.page_rate);
}

int main(int argc, char **argv)
{
	struct vdev *v;
	sigset_t set;
	int ret;

	t_start = vmm_now_us();
	setvbuf(stdout, NULL, _IOLBF, 0);
	parse(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* blocked before any thread: the vCPUs inherit the mask */
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sigfd < 0)
		setup_fail("signalfd", errno);

	vd[0].bdf = opt.bdf;
	if (opt.bdf2) {
		vd[1].bdf = opt.bdf2;
		nvd = 2;
	}
	check_driver(opt.bdf);
	if (opt.bdf2)
		check_driver(opt.bdf2);
	ret = mig_side_open(&side, opt.bdf, opt.trap, opt.iova, opt.ram_size);
	if (ret)
		setup_fail("opening the device and mapping guest RAM", ret);
	if (opt.bdf2)
		open_dev2();
	setup_dev(&vd[0], opt.bdf, &side.d, 0);
	if (opt.bdf2)
		setup_dev(&vd[1], opt.bdf2, &dev2, 1);
	ret = lm_nl_open(&nl);
	if (ret) {
		why("%s", nl.err);
		finish("failed");
	}
	if (opt.role == SOURCE) {
		/* each program its own seed, the second derived */
		for_each_vdev(v)
			boot_guest(v, opt.seed + (v - vd) * 0x9e3779b97f4a7c15ull);
	} else {
		say("idle: %zu MiB at IOVA %#llx", opt.ram_size >> 20,
		    (unsigned long long)opt.iova);
	}
	printf("ready\n");
	fflush(stdout);
	if (opt.role == SOURCE)
		src_loop();
	tgt_loop();
}
