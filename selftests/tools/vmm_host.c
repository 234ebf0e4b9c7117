// SPDX-License-Identifier: GPL-2.0
/*
 * vmm_host: the test VMM as the VMM of a live migration between hosts
 * (Documentation/live-migration.rst), driven by migctl through the
 * vfio_mig family's phases.
 *
 *   vmm_host source BDF [--ram-mib N] [--iova A] [--seed S] [--report FILE]
 *                       [--trap MODE] [--page-rate N] [--mark-ms M]
 *                       [--dirty-vfio] [--fill] [--ack-delay PHASE:MS]
 *   vmm_host target BDF [--ram-mib N] [--iova A] [--report FILE]
 *                       [--run-ms M] [--trap MODE] [--page-rate N]
 *                       [--ack-delay PHASE:MS]
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
	const char *bdf;
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

static struct mig_side side;
static struct edu edu;
static bool is_nvme;		/* the device is an NVMe function, not edu */
static struct lm_guest guest;
static bool guest_up;
static struct lm_nl nl;
static struct mig_dirty dlog;
static enum vstate vstate = S_IDLE;
static bool logging, own_log;
static uint64_t t_start;
static int sigfd = -1;

static struct {
	struct phase_rec ph[MAX_PHASES];
	unsigned int nph;
	unsigned int begins, pauses, aborts, commits, prepares, starts;
	unsigned long marks, mark_ranges, mark_pages, mark_errors;
	unsigned long lost_events;
	char after_abort_state[32];
	bool abort_not_running;
	uint64_t steps_at_abort;
	uint64_t ram_digest;
	bool have_digest;
	struct edu_regs regs;		/* source: at pause; target: at start */
	bool have_regs;
	int regs_ok, buffer_ok, pages_ok, model_ok;	/* -1: not checked */
	uint64_t steps_before;		/* target: the guest's steps at start */
	double pause_ms, start_ms;
	bool protocol_error;
	char why[512];
} rep = {
	.regs_ok = -1, .buffer_ok = -1, .pages_ok = -1, .model_ok = -1,
};

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

	fprintf(stderr, "vmm_host %s %s +%.3fs: ", role_name(), opt.bdf,
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

static void json_str(FILE *f, const char *key, const char *s, bool comma)
{
	fprintf(f, "\"%s\": \"", key);
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

static void json_check(FILE *f, const char *key, int v)
{
	if (v >= 0)
		fprintf(f, "\"%s\": %s,\n", key, v ? "true" : "false");
}

static bool checks_hold(void)
{
	return !rep.why[0] && rep.regs_ok != 0 && rep.buffer_ok != 0 &&
	       rep.pages_ok != 0 && rep.model_ok != 0 && !rep.protocol_error;
}

static void write_report(const char *result)
{
	char tmp[4096], phases[MAX_PHASES * 32] = "";
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
	json_str(f, "role", role_name(), true);
	json_str(f, "bdf", opt.bdf, true);
	json_str(f, "device", is_nvme ? "nvme" : "edu", true);
	json_str(f, "result", result, true);
	json_str(f, "phases", phases, true);
	fprintf(f, "\"begins\": %u,\n\"pauses\": %u,\n\"aborts\": %u,\n"
		"\"commits\": %u,\n\"prepares\": %u,\n\"starts\": %u,\n",
		rep.begins, rep.pauses, rep.aborts, rep.commits, rep.prepares,
		rep.starts);
	fprintf(f, "\"marks\": %lu,\n\"mark_ranges\": %lu,\n"
		"\"mark_pages\": %lu,\n\"mark_errors\": %lu,\n"
		"\"lost_events\": %lu,\n", rep.marks, rep.mark_ranges,
		rep.mark_pages, rep.mark_errors, rep.lost_events);
	if (rep.after_abort_state[0])
		json_str(f, "state_after_abort", rep.after_abort_state, true);
	if (rep.have_digest)
		fprintf(f, "\"ram_digest\": %" PRIu64 ",\n", rep.ram_digest);
	if (rep.have_regs)
		fprintf(f, "\"reg_liveness\": %u,\n\"reg_factorial\": %u,\n"
			"\"reg_status\": %u,\n\"reg_irq_status\": %u,\n"
			"\"reg_dma_src\": %" PRIu64 ",\n\"reg_dma_dst\": %" PRIu64 ",\n"
			"\"reg_dma_count\": %" PRIu64 ",\n\"reg_dma_cmd\": %" PRIu64 ",\n",
			rep.regs.liveness, rep.regs.factorial, rep.regs.status,
			rep.regs.irq_status, rep.regs.dma_src, rep.regs.dma_dst,
			rep.regs.dma_count, rep.regs.dma_cmd);
	json_check(f, "regs_ok", rep.regs_ok);
	json_check(f, "buffer_ok", rep.buffer_ok);
	json_check(f, "pages_ok", rep.pages_ok);
	json_check(f, "model_ok", rep.model_ok);
	if (guest_up) {
		uint64_t steps = lm_guest_steps(&guest);

		fprintf(f, "\"seed\": %" PRIu64 ",\n\"steps\": %" PRIu64 ",\n"
			"\"steps_before\": %" PRIu64 ",\n"
			"\"steps_after_abort\": %" PRIu64 ",\n"
			"\"checks\": %lu,\n\"errors\": %lu,\n"
			"\"page_writes\": %" PRIu64 ",\n",
			is_nvme ? guest.nv->ns.seed : guest.ds.seed, steps,
			rep.steps_before,
			rep.aborts ? steps - rep.steps_at_abort : 0,
			lm_guest_checks(&guest), lm_guest_errors(&guest),
			guest.ms.writes);
		if (is_nvme)
			fprintf(f, "\"nvme_writes\": %lu,\n\"nvme_reads\": %lu,\n"
				"\"nvme_flushes\": %lu,\n"
				"\"nvme_inflight\": %lu,\n"
				"\"nvme_verified\": %s,\n",
				guest.nv->w.writes, guest.nv->w.reads,
				guest.nv->w.flushes,
				nvme_wl_inflight(&guest.nv->w),
				guest.nv->verified ? "true" : "false");
		else
			fprintf(f, "\"dmas_in\": %lu,\n\"dmas_out\": %lu,\n",
				guest.wl.dmas_in, guest.wl.dmas_out);
	}
	fprintf(f, "\"pause_ms\": %.1f,\n\"start_ms\": %.1f,\n",
		rep.pause_ms, rep.start_ms);
	fprintf(f, "\"protocol_error\": %s,\n",
		rep.protocol_error ? "true" : "false");
	fprintf(f, "\"ok\": %s,\n", checks_hold() ? "true" : "false");
	json_str(f, "why", rep.why, false);
	fprintf(f, "}\n");
	if (fclose(f) || rename(tmp, opt.report))
		say("report %s: %s", opt.report, strerror(errno));
}

/* The summary line, the report, the exit code. */
static void __attribute__((noreturn)) finish(const char *result)
{
	bool ok = checks_hold();

	write_report(result);
	if (guest_up)
		printf("%s %s: %s; phases %u (aborts %u); %" PRIu64 " %s steps, %lu %s checked, %lu wrong; %" PRIu64 " page writes%s%s\n",
		       role_name(), opt.bdf, result, rep.nph, rep.aborts,
		       lm_guest_steps(&guest), is_nvme ? "NVMe" : "edu",
		       lm_guest_checks(&guest), is_nvme ? "blocks" : "results",
		       lm_guest_errors(&guest), guest.ms.writes,
		       ok ? "; OK" : "; FAILED: ", ok ? "" : rep.why);
	else
		printf("%s %s: %s; phases %u (aborts %u)%s%s\n", role_name(),
		       opt.bdf, result, rep.nph, rep.aborts,
		       ok ? "; OK" : "; FAILED: ", ok ? "" : rep.why);
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

		ret = lm_ack_ram(&nl, opt.bdf, e->phase, e->seq, result, &ram,
				 1);
	} else {
		ret = lm_ack(&nl, opt.bdf, e->phase, e->seq, result);
	}
	if (r)
		r->ack_err = ret;
	if (ret == -ESTALE)
		say("ack %s seq %u: stale (a newer phase replaced it)",
		    lm_phase_name(e->phase), e->seq);
	else if (ret)
		say("%s", nl.err);
	else
		say("%s seq %u: acked %u%s%s", lm_phase_name(e->phase), e->seq,
		    result, result ? " " : "", result ? strerror(result) : "");
}

/* ---- source ---- */

/* Report the vCPUs' writes since the last mark into the dirty log. */
static int flush_marks(void)
{
	size_t words = mig_bitmap_words(side.ram.size), ranges = 0, pages = 0;
	uint64_t *bits = calloc(words, sizeof(*bits));
	size_t i, n = side.ram.size / MIG_PAGE;
	int ret;

	if (!bits)
		return -ENOMEM;
	mig_cpu_take(&guest.cpu, bits);
	if (!mig_bitmap_weight(bits, n)) {
		free(bits);
		return 0;
	}
	ret = lm_dirty_mark(&nl, opt.bdf, side.ram.iova, bits, n, &ranges,
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
				mig_cpu_mark(&guest.cpu,
					     side.ram.iova + i * MIG_PAGE,
					     MIG_PAGE);
	}
	free(bits);
	return ret;
}

static void stop_log(void)
{
	int ret;

	if (!logging)
		return;
	logging = false;
	if (!own_log)
		return;
	own_log = false;
	ret = mig_dirty_stop(&dlog);
	if (ret)
		say("stopping the dirty log: %s (%s)", strerror(-ret),
		    dlog.nl.err);
}

static void src_begin(const struct lm_event *e, struct phase_rec *r)
{
	int ret;

	rep.begins++;
	if (vstate == S_PAUSED) {
		/* a new attempt without an abort: go on running */
		say("begin while paused: resuming the vCPUs first");
		lm_guest_resume(&guest);
	}
	if (!logging) {
		ret = mig_dirty_start(&dlog, &side.d, side.ram.iova,
				      side.ram.size, !opt.dirty_vfio);
		if (ret == -EBUSY) {
			say("a dirty log already runs on the device: marking into it");
			logging = true;
		} else if (ret) {
			say("dirty log: %s", dlog.err);
			ack(e, r, ret);
			return;
		} else {
			logging = own_log = true;
			say("dirty log started (%s)",
			    mig_dirty_via_name(dlog.via));
		}
	}
	ret = flush_marks();
	if (ret) {
		ack(e, r, ret);
		return;
	}
	vstate = S_BEGUN;
	ack(e, r, 0);
}

static void src_pause(const struct lm_event *e, struct phase_rec *r)
{
	uint64_t t0 = vmm_now_us();
	int ret;

	rep.pauses++;
	lm_guest_pause(&guest);
	if (!logging) {
		say("pause without begin: no dirty log to mark into");
		ack(e, r, EPROTO);
		return;
	}
	ret = flush_marks();
	if (ret) {
		ack(e, r, ret);
		return;
	}
	if (!is_nvme) {
		edu_regs_read(&edu, &rep.regs);
		rep.have_regs = true;
	}
	vstate = S_PAUSED;
	rep.pause_ms = (vmm_now_us() - t0) / 1000.0;
	if (is_nvme)
		say("vCPUs paused after %" PRIu64 " NVMe steps, %lu commands in flight, %" PRIu64 " page writes (%.1f ms)",
		    lm_guest_steps(&guest), nvme_wl_inflight(&guest.nv->w),
		    guest.ms.writes, rep.pause_ms);
	else
		say("vCPUs paused after %" PRIu64 " edu steps, %" PRIu64 " page writes (%.1f ms)",
		    guest.ds.steps, guest.ms.writes, rep.pause_ms);
	ack(e, r, 0);
}

static void src_abort(const struct lm_event *e, struct phase_rec *r)
{
	uint32_t st;
	int ret;

	rep.aborts++;
	stop_log();
	ret = mig_get_state(&side.d, &st);
	snprintf(rep.after_abort_state, sizeof(rep.after_abort_state), "%s",
		 ret ? strerror(-ret) : mig_state_name(st));
	if (ret || st != VFIO_DEVICE_STATE_RUNNING) {
		rep.abort_not_running = true;
		why("after abort the device is in %s, not RUNNING",
		    rep.after_abort_state);
	}
	rep.steps_at_abort = lm_guest_steps(&guest);
	lm_guest_resume(&guest);
	vstate = S_IDLE;
	ack(e, r, 0);
}

static void __attribute__((noreturn))
src_commit(const struct lm_event *e, struct phase_rec *r)
{
	rep.commits++;
	if (vstate != S_PAUSED) {
		rep.protocol_error = true;
		why("commit without a pause before it: the vCPUs were running");
		lm_guest_pause(&guest);
	}
	rep.ram_digest = lm_ram_digest(&side.ram);
	rep.have_digest = true;
	rep.pages_ok = lm_guest_check_pages(&guest);
	rep.model_ok = lm_guest_check_model(&guest);
	if (!rep.pages_ok || !rep.model_ok)
		why("%s", guest.why);
	vstate = S_COMMITTED;
	say("committed: RAM digest %" PRIu64, rep.ram_digest);
	write_report("committed");
	ack(e, r, 0);
	stop_log();
	finish("committed");
}

static void src_event(const struct lm_event *e)
{
	struct phase_rec *r = record(e);

	say("phase %s seq %u", lm_phase_name(e->phase), e->seq);
	switch (e->phase) {
	case VFIO_MIG_MIG_PHASE_BEGIN:
		src_begin(e, r);
		break;
	case VFIO_MIG_MIG_PHASE_PAUSE:
		src_pause(e, r);
		break;
	case VFIO_MIG_MIG_PHASE_ABORT:
		src_abort(e, r);
		break;
	case VFIO_MIG_MIG_PHASE_COMMIT:
		src_commit(e, r);
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
	uint32_t st = VFIO_DEVICE_STATE_ERROR;
	const char *result;

	say("signal %d: stopping", sig);
	lm_guest_pause(&guest);
	if (lm_guest_error(&guest))
		why("%s", guest.why);
	if (vstate != S_PAUSED && !mig_get_state(&side.d, &st) &&
	    st == VFIO_DEVICE_STATE_RUNNING) {
		rep.buffer_ok = lm_guest_check_buffer(&guest);
		if (!rep.buffer_ok)
			why("%s", guest.why);
	} else {
		say("device in %s: its buffer is not checked",
		    mig_state_name(st));
	}
	rep.pages_ok = lm_guest_check_pages(&guest);
	rep.model_ok = lm_guest_check_model(&guest);
	if (!rep.pages_ok || !rep.model_ok)
		why("%s", guest.why);
	stop_log();
	if (vstate == S_PAUSED)
		result = "paused";
	else if (rep.aborts)
		result = "aborted";
	else
		result = "running";
	finish(result);
}

/* ---- target ---- */

static void tgt_prepare(const struct lm_event *e, struct phase_rec *r)
{
	uint32_t st;

	rep.prepares++;
	if (!side.open || !side.ram.mapped) {
		ack(e, r, ENODEV);
		return;
	}
	if (!mig_get_state(&side.d, &st) && st != VFIO_DEVICE_STATE_RUNNING)
		say("prepare: the device is in %s (a previous attempt not rolled back?)",
		    mig_state_name(st));
	vstate = S_IDLE;
	ack(e, r, 0);
}

static void tgt_abort(const struct lm_event *e, struct phase_rec *r)
{
	uint32_t st;
	int ret;

	rep.aborts++;
	/*
	 * What arrived is not a VM: forget it. The device is the
	 * controller's to roll back (the kernel does when it lets go).
	 */
	memset(side.ram.host, 0, side.ram.size);
	ret = mig_get_state(&side.d, &st);
	snprintf(rep.after_abort_state, sizeof(rep.after_abort_state), "%s",
		 ret ? strerror(-ret) : mig_state_name(st));
	say("RAM discarded; device in %s", rep.after_abort_state);
	ack(e, r, 0);
}

/*
 * A shadow the stream engaged hands the device back in the background,
 * with the guest running, through the page this VMM lent the device
 * (LM_SCRATCH_OFF). The buffer check reads through that page too, so it
 * waits until the device has given the page back.
 */
static void wait_lent_page(void)
{
	struct lm_shadow s;
	struct genl g;
	int ret;

	ret = genl_open(&g, "vfio_mig");
	if (!ret) {
		ret = lm_shadow_wait_released(&g, opt.bdf, &s, 5000);
		genl_close(&g);
	}
	if (ret)
		say("the device's shadow is not handed back (%s): checking the buffer anyway",
		    strerror(-ret));
}

static void __attribute__((noreturn)) tgt_run(void);

static void tgt_start(const struct lm_event *e, struct phase_rec *r)
{
	uint64_t t0 = vmm_now_us(), t_digest, t_adopt;
	struct edu_regs now;
	int ret;

	rep.starts++;
	/*
	 * The test's own checks (not a VMM's work) come before the vCPUs
	 * run, so they count in the downtime: the log names their parts.
	 */
	rep.ram_digest = lm_ram_digest(&side.ram);
	rep.have_digest = true;
	t_digest = vmm_now_us();
	if (is_nvme)
		ret = lm_guest_adopt_nvme(&guest, &side.ram, &side.d,
					  opt.page_rate);
	else
		ret = lm_guest_adopt(&guest, &side.ram, &edu, opt.page_rate);
	if (ret) {
		why("start: %s", guest.why);
		ack(e, r, EBADMSG);
		finish("failed");
	}
	guest_up = true;
	t_adopt = vmm_now_us();
	rep.steps_before = lm_guest_steps(&guest);
	rep.regs_ok = lm_guest_check_regs(&guest, &now);
	rep.regs = now;
	rep.have_regs = !is_nvme;
	if (!rep.regs_ok)
		why("%s", guest.why);
	vstate = S_STARTED;
	rep.start_ms = (vmm_now_us() - t0) / 1000.0;
	say("started in %.1f ms (RAM digest %.1f ms, guest adopted %.1f ms, registers checked %.1f ms): RAM digest %" PRIu64 ", guest at %s step %" PRIu64 ", %" PRIu64 " page writes",
	    rep.start_ms, (t_digest - t0) / 1000.0,
	    (t_adopt - t_digest) / 1000.0,
	    (vmm_now_us() - t_adopt) / 1000.0,
	    rep.ram_digest, is_nvme ? "NVMe" : "edu", lm_guest_steps(&guest),
	    guest.ms.writes);
	ack(e, r, 0);
	tgt_run();
}

static void tgt_event(const struct lm_event *e)
{
	struct phase_rec *r = record(e);

	say("phase %s seq %u", lm_phase_name(e->phase), e->seq);
	if (vstate == S_STARTED) {
		rep.protocol_error = true;
		why("phase %s after start", lm_phase_name(e->phase));
		ack(e, r, EINVAL);
		return;
	}
	switch (e->phase) {
	case VFIO_MIG_MIG_PHASE_PREPARE:
		tgt_prepare(e, r);
		break;
	case VFIO_MIG_MIG_PHASE_START:
		tgt_start(e, r);
		break;
	case VFIO_MIG_MIG_PHASE_ABORT:
		tgt_abort(e, r);
		break;
	default:
		rep.protocol_error = true;
		why("phase %s (%u) announced to a target VMM",
		    lm_phase_name(e->phase), e->phase);
		ack(e, r, EINVAL);
	}
}

/* ---- the event loop ---- */

static void events(void)
{
	struct lm_event e;
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
		if (e.cmd != VFIO_MIG_CMD_MIG_PHASE_NTF ||
		    strcmp(e.bdf, opt.bdf))
			continue;
		if (opt.role == SOURCE)
			src_event(&e);
		else
			tgt_event(&e);
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

static void __attribute__((noreturn)) src_loop(void)
{
	uint64_t next_mark = 0;

	for (;;) {
		int sig = wait_for(logging && vstate == S_BEGUN ?
				   (int)opt.mark_ms : 200);

		if (sig)
			src_signal(sig);
		if (lm_guest_error(&guest)) {
			why("%s", guest.why);
			src_signal(0);
		}
		events();
		if (logging && vstate == S_BEGUN &&
		    vmm_now_us() >= next_mark) {
			flush_marks();
			next_mark = vmm_now_us() + opt.mark_ms * 1000ull;
		}
	}
}

/* The target after start: check what came, run the guest, report. */
static void __attribute__((noreturn)) tgt_run(void)
{
	uint64_t end;
	int sig = 0, ret;

	/*
	 * The vCPUs start once the device buffer and RAM are checked. An
	 * NVMe guest goes on with its commands in flight: its blocks are
	 * read back after the run.
	 */
	if (!is_nvme) {
		wait_lent_page();
		rep.buffer_ok = lm_guest_check_buffer(&guest);
	}
	rep.pages_ok = lm_guest_check_pages(&guest);
	if (!rep.buffer_ok || !rep.pages_ok)
		why("%s", guest.why);
	ret = lm_guest_start(&guest);
	if (ret) {
		why("starting the vCPUs: %s", strerror(-ret));
		finish("failed");
	}
	end = vmm_now_us() + opt.run_ms * 1000ull;
	while (vmm_now_us() < end && !lm_guest_error(&guest)) {
		sig = wait_for(50);
		if (sig)
			break;
		events();
	}
	lm_guest_pause(&guest);
	if (lm_guest_error(&guest))
		why("%s", guest.why);
	if (rep.pages_ok && !lm_guest_check_pages(&guest)) {
		rep.pages_ok = 0;
		why("%s", guest.why);
	}
	if (is_nvme && !lm_guest_error(&guest)) {
		rep.buffer_ok = lm_guest_check_buffer(&guest);
		if (!rep.buffer_ok)
			why("%s", guest.why);
	}
	rep.model_ok = lm_guest_check_model(&guest);
	if (!rep.model_ok)
		why("%s", guest.why);
	if (!sig && lm_guest_steps(&guest) == rep.steps_before)
		why("the guest made no device step in %u ms on the target",
		    opt.run_ms);
	say("ran %u ms: %s steps %" PRIu64 " -> %" PRIu64, opt.run_ms,
	    is_nvme ? "NVMe" : "edu", rep.steps_before,
	    lm_guest_steps(&guest));
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
		"usage: %s source BDF [--ram-mib N] [--iova A] [--seed S] [--report FILE]\n"
		"                      [--trap MODE] [--page-rate N] [--mark-ms M] [--dirty-vfio]\n"
		"                      [--fill] [--ack-delay PHASE:MS]\n"
		"       %s target BDF [--ram-mib N] [--iova A] [--report FILE] [--run-ms M]\n"
		"                      [--trap MODE] [--page-rate N] [--ack-delay PHASE:MS]\n",
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
	if (opt.ram_size < (1u << 20) || opt.iova % MIG_PAGE ||
	    opt.iova + opt.ram_size > EDU_DMA_MASK) {
		fprintf(stderr,
			"%s: RAM of %zu bytes at IOVA %#llx: want >= 1 MiB, page aligned, below 2^28 (edu DMA)\n",
			argv[0], opt.ram_size, (unsigned long long)opt.iova);
		exit(2);
	}
}

static void __attribute__((noreturn)) setup_fail(const char *what, int err)
{
	why("%s: %s", what, strerror(err < 0 ? -err : err));
	finish("failed");
}

int main(int argc, char **argv)
{
	char drv[64] = "";
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

	ret = vmm_driver_of(opt.bdf, drv, sizeof(drv));
	if (ret || strcmp(drv, "vfio-mig")) {
		why("%s is bound to \"%s\", not vfio-mig", opt.bdf,
		    ret ? strerror(-ret) : drv);
		finish("failed");
	}
	ret = mig_side_open(&side, opt.bdf, opt.trap, opt.iova, opt.ram_size);
	if (ret)
		setup_fail("opening the device and mapping guest RAM", ret);
	is_nvme = device_is_nvme(opt.bdf);
	if (is_nvme) {
		/* the guest's command register, as a VMM restores config space */
		ret = vmm_enable_bus_master(&side.d);
		if (ret)
			setup_fail("bus master", ret);
	} else {
		ret = edu_probe(&edu, &side.d, false);
		if (ret)
			setup_fail("edu probe", ret);
	}
	ret = lm_nl_open(&nl);
	if (ret) {
		why("%s", nl.err);
		finish("failed");
	}
	if (opt.role == SOURCE) {
		if (is_nvme)
			ret = lm_guest_boot_nvme(&guest, &side.ram, &side.d,
						 opt.seed, opt.page_rate);
		else
			ret = lm_guest_boot(&guest, &side.ram, &edu, opt.seed,
					    opt.page_rate, opt.fill);
		if (ret) {
			why("booting the guest: %s", guest.why[0] ? guest.why :
			    strerror(-ret));
			finish("failed");
		}
		guest_up = true;
		ret = lm_guest_start(&guest);
		if (ret)
			setup_fail("starting the vCPUs", ret);
		say("guest running: seed %#llx, %zu MiB at IOVA %#llx, %u pages for the memory vCPU at %u/s",
		    (unsigned long long)opt.seed, opt.ram_size >> 20,
		    (unsigned long long)opt.iova, guest.npages, opt.page_rate);
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
