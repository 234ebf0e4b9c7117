// SPDX-License-Identifier: GPL-2.0
/*
 * live_bench: a live migration between hosts, measured against raw TCP in
 * the same run (make bench, in the test bed guest).
 *
 * Each of RUNS runs, in one boot:
 *  1. tcp_idle: selftests/tools/tcp_bench, one connection over loopback for
 *     BASE_S seconds, nothing else running;
 *  2. the VMMs start as for the migration: edu A's source vmm_host runs its
 *     guest (a seeded workload of DMAs and vCPU page writes over RAM_MIB
 *     MiB, the RAM it does not otherwise use filled with pseudo-random
 *     bytes at boot, --fill: page streaming then moves data pages, not
 *     zero-page records), edu B's target vmm_host idles;
 *  3. tcp: tcp_bench again, with those VMMs running (their vCPU threads
 *     share the guest's CPUs with everything else, as during the
 *     migration);
 *  4. migctl moves edu A to edu B over the same loopback, with default
 *     convergence settings.
 *
 * Printed (medians over the runs; each ratio is taken within its run, then
 * the median of the runs' ratios, as the host's load varies between runs):
 *
 *   tcp_idle_mib_per_s: N      (1.)
 *   tcp_loopback_mib_per_s: N  (3., with the VMMs running)
 *   rounds: N
 *   total_ms: N
 *   downtime_ms: N
 *   page_stream_mib_per_s: N   (migctl's summary)
 *   page_stream_ratio: N       (page streaming / tcp with the VMMs running;
 *                               target >= 0.8)
 *   page_stream_ratio_idle: N  (page streaming / tcp_idle)
 *   page_stream_mib_per_s_copy, page_stream_ratio_copy: N (the same
 *                               migration again with --copy-pages on both
 *                               sides: the pages through migctl's buffers,
 *                               as before the kernel staged and landed
 *                               them; its ratio against the tcp figure of
 *                               its own setup)
 *
 * and where the downtime went (migctl's summary, medians):
 *
 *   downtime_pause_ms: N       (the VMM's ack of the vCPU pause)
 *   downtime_device_ms: N      (the device's own part: its stop-copy arcs
 *                               on the source, stop_copy_ms, plus loading
 *                               the state on the target, target_load_ms)
 *   downtime_dirty_ms: N       (the final dirty read)
 *   downtime_transfer_ms: N    (the final pages and the device state,
 *                               the dirty read included)
 *   downtime_resume_ms: N      (COMMIT to the target's resume ack)
 *
 * and, from the target's own account (migctl 1.5's READY and DONE;
 * decimals, medians of each run's figure):
 *
 *   downtime_device_load_ms: N (the target's devices' RESUMING -> STOP,
 *                               part of target_load_ms, whose rest is the
 *                               final frames reaching the target and
 *                               READY's way back)
 *   downtime_device_own_ms: N  (stop_copy_us + downtime_device_load_ms:
 *                               the device's save and restore alone)
 *   downtime_target_vmm_ms: N  (the target VMM's start ack, part of
 *                               downtime_resume_ms: the test VMM's own
 *                               checks, its RAM digest above all)
 *
 * downtime_device_ms keeps its meaning (stop_copy_ms + target_load_ms).
 *
 *   device_held_ms: N          (how long the guest's device could not
 *                               start DMA: from migctl's prepare, which
 *                               holds it, to DONE, the target's start
 *                               acknowledged; the downtime where nothing
 *                               was prepared)
 *   device_held_ms_via_shadow, device_held_ms_2dev: N  (the same for
 *                               those migrations)
 *
 * These migrations run with --insecure (plain TCP), as these lines always
 * measured. The source VMM names the page it keeps for edu (debugfs
 * "scratch", as hosts/live_test migrate_early_device_state; the target's
 * too), so migctl's
 * prepare step moves edu's buffer before the stop (6.12 since session 18,
 * whose runs before it moved the buffer in the stop: downtime_ms 410; 6.1,
 * which has no PRE_COPY, since session 20, through a stream the prepare
 * opens: downtime_ms 475 before). Each
 * run then migrates a second time, over mutual TLS (X.509, kTLS where the
 * kernel takes the keys), same boot, same setup but no page named: its
 * '# run' line shows the downtime with the buffer moved in the stop, for
 * comparison:
 *
 *   page_stream_mib_per_s_tls: N
 *   page_stream_ratio_tls: N   (page streaming with TLS / without, within
 *                               each run)
 *   tcp_ktls_mib_per_s: N      (tcp_bench --ktls: the raw socket of the
 *                               migration's kind, kTLS with the cipher its
 *                               handshake chose, the VMMs running, measured
 *                               before that migration for each cipher)
 *   page_stream_ratio_tls_raw: N (page streaming with TLS / that socket,
 *                               within each run; target >= 0.8). Both
 *                               only when every run's channel was kTLS
 *                               both ways ("not measured" otherwise)
 *   tls_handshake_ms: N        (the source's handshake, from its
 *                               "secured" event)
 *
 * and a third time through the source's shadow adapter (--via-shadow,
 * plain TCP; Documentation/shadow.rst), same boot, same setup:
 *
 *   downtime_ms_via_shadow: N
 *   downtime_device_ms_via_shadow: N  (as downtime_device_ms)
 *
 * downtime_ms and downtime_device_ms stay the migration without the
 * shadow, the device's own save and restore in the stop.
 *
 * and a fourth time as a VM of two devices (vmm_host --dev2: edu A with
 * NVMe VF 1, to edu B with VF 2, one migration, plain TCP, edu's page
 * named as in the first; the same RAM_MIB in all, each device's guest
 * program in a half; --on-max-rounds switchover, as the NVMe workload
 * dirties pages about as fast as this bed moves them):
 *
 *   downtime_ms_2dev: N
 *   downtime_device_ms_2dev: N  (both devices' stop-copy arcs, which run in
 *                               parallel, plus both loads, also parallel)
 *
 * and, for each run, a '# run' line with its figures and where migctl's
 * time went.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <sys/ioctl.h>

#include "cmd.h"
#include "hosts.h"
#include "lmvmm.h"
#include "regsync.h"
#include "testbed.h"

#define BASE_S		"3"
#define BENCH_PORT	"5311"
#define LM_PORT		"5312"
#define RAM_MIB		"64"
#define RUNS		5
#define WAIT_READY_S	60
#define LOG_A		"/tmp/live_bench-a.log"
#define LOG_B		"/tmp/live_bench-b.log"
#define LOG_L		"/tmp/live_bench-listen.log"
#define LOG_T		"/tmp/live_bench-tcp.log"
#define CREDS		"/etc/vfio-mig/x509"	/* mkinitramfs.sh */

struct run {
	double rounds, total_ms, downtime_ms, stream;
	double dt_pause, dt_device, dt_dirty, dt_xfer, dt_resume;
	/* the target's own account (migctl 1.5): its devices' load, its VMM's start ack */
	double dt_dev_load, dt_dev_own, dt_tgt_vmm;
	/* the guest's device DMA starts held: the prepare to DONE */
	double held, held_shadow, held_2dev;
	double tcp, tcp_idle, ratio, ratio_idle;
	/* the same again over TLS */
	double stream_tls, ratio_tls, handshake_ms;
	/* raw kTLS for each cipher (enum cipher), and the one negotiated */
	double ktls[3], tcp_ktls, ratio_tls_raw;
	/* and once more through the shadow adapter (--via-shadow) */
	double dt_shadow, dt_device_shadow;
	/* and as a VM of two devices */
	double dt_2dev, dt_device_2dev;
	/* pages staged in the kernel, landed by it (migctl's pages_staged, pages_landed) */
	bool staged, landed;
	/* and with --copy-pages: page streaming / its own run's tcp */
	double stream_copy, ratio_copy;
};

enum mode { INSECURE, TLS, VIA_SHADOW, TWO_DEV, COPY_PAGES };

/* tcp_bench --ktls's names, and the "secured" event's */
static const char *const cipher_arg[] = {
	"aes-128-gcm", "aes-256-gcm", "chacha20-poly1305",
};
static const char *const cipher_event[] = {
	"AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305",
};
#define NR_CIPHERS	3
static const char *const mode_name[] = { "insecure", "tls", "via shadow",
					 "two devices", "copy pages" };
/* TWO_DEV: the NVMe VFs that join edu A and edu B */
static const char *vf_a, *vf_b;

/* vmm_host's guest RAM is at 0x100000; the page it lends the device */
#define SCRATCH_IOVA	(0x100000ull + LM_SCRATCH_OFF)

static struct cmd_result res;
static char migctl[PATH_MAX] = "migctl";

static char *tool(const char *name)
{
	static char path[2][PATH_MAX];
	static int i;
	char *t = tcp_bench_path();	/* .../tools/tcp_bench */

	i ^= 1;
	snprintf(path[i], sizeof(path[i]), "%.*s/%s",
		 (int)(strrchr(t, '/') - t), t, name);
	return path[i];
}

/*
 * Wait until @log holds a line "ready", or with @text that text anywhere
 * (or @pid ends): 0 or -1.
 */
static int wait_text_or_ready(pid_t pid, const char *log, const char *text)
{
	double end = mono_s() + WAIT_READY_S;
	char buf[8192];
	int status;

	while (mono_s() < end) {
		read_log(log, buf, sizeof(buf));
		if (text ? !!strstr(buf, text) :
		    strstr(buf, "ready\n") == buf || strstr(buf, "\nready\n"))
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		usleep(50000);
	}
	return -1;
}

static int wait_ready(pid_t pid, const char *log)
{
	return wait_text_or_ready(pid, log, NULL);
}

static double json_f(const char *obj, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(obj, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

/*
 * Raw loopback TCP for BASE_S seconds, through kTLS with @cipher (tcp_bench
 * --ktls) unless NULL: MiB/s, or a negative value.
 */
static double tcp_measure_with(const char *cipher)
{
	double mibs;
	pid_t srv;

	srv = spawn_logged((char *[]){ tcp_bench_path(), "server", BENCH_PORT,
				       cipher ? "--ktls" : NULL,
				       (char *)cipher, NULL }, LOG_T);
	if (srv < 0)
		return -1;
	if (cmd_run(&res, -1, (char *const[]){ tcp_bench_path(), "client",
						"127.0.0.1", BENCH_PORT, BASE_S,
						cipher ? "--ktls" : NULL,
						(char *)cipher, NULL }) ||
	    res.status) {
		fprintf(stderr, "live_bench: tcp_bench failed: %s%s\n", res.out,
			res.err);
		wait_or_kill(srv, 1);
		return -1;
	}
	wait_or_kill(srv, 10);
	mibs = tcp_mib_per_s(res.out);
	if (mibs <= 0)
		fprintf(stderr, "live_bench: tcp_bench printed: %s\n", res.out);
	return mibs;
}

/* A VF under vfio-mig's nvme profile: 0 or -errno. */
static int set_nvme(const char *bdf)
{
	char path[128];

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/profile", bdf);
	return vmm_sysfs_write(path, "nvme");
}

static double tcp_measure(void)
{
	return tcp_measure_with(NULL);
}

/*
 * One migration: over mutual TLS (@mode TLS), else --insecure; VIA_SHADOW:
 * through the source's shadow adapter, the source's edu read through the
 * page vmm_host keeps for it (as hosts/live_test migrate_via_shadow).
 */
static int one_run(const char *a, const char *b, unsigned int seed,
		   enum mode mode, struct run *r)
{
	char seedarg[32], obj[4096], buf[8192], sec_obj[4096];
	char srcs[64], dsts[64];
	bool tls = mode == TLS, shadow = mode == VIA_SHADOW;
	bool two = mode == TWO_DEV, copy = mode == COPY_PAGES;
	pid_t va = -1, vb = -1, ls;
	int i, ret = -1;

	r->tcp_idle = tcp_measure();
	if (r->tcp_idle <= 0)
		return -1;
	snprintf(seedarg, sizeof(seedarg), "%u", seed);
	snprintf(srcs, sizeof(srcs), "%s%s%s", a, two ? "," : "",
		 two ? vf_a : "");
	snprintf(dsts, sizeof(dsts), "%s%s%s", b, two ? "," : "",
		 two ? vf_b : "");
	vb = spawn_logged((char *[]){ tool("vmm_host"), "target", (char *)b,
				      "--ram-mib", RAM_MIB, "--run-ms", "500",
				      two ? "--dev2" : NULL, (char *)vf_b,
				      NULL }, LOG_B);
	va = spawn_logged((char *[]){ tool("vmm_host"), "source", (char *)a,
				      "--ram-mib", RAM_MIB, "--seed", seedarg,
				      "--fill", two ? "--dev2" : NULL,
				      (char *)vf_a, NULL }, LOG_A);
	if (va < 0 || vb < 0 || wait_ready(va, LOG_A) || wait_ready(vb, LOG_B)) {
		fprintf(stderr, "live_bench: the VMMs did not start:\n%s\n",
			read_log(LOG_A, buf, sizeof(buf)));
		fprintf(stderr, "%s\n", read_log(LOG_B, buf, sizeof(buf)));
		goto out;
	}
	/* the baseline under the migration's conditions: the VMMs running */
	r->tcp = tcp_measure();
	if (r->tcp <= 0)
		goto out;
	/*
	 * ... and kTLS's, for each cipher the handshake may choose (a
	 * kernel without one: negative, and a migration that chose it
	 * has no baseline)
	 */
	for (i = 0; tls && i < NR_CIPHERS; i++)
		r->ktls[i] = tcp_measure_with(cipher_arg[i]);
	if (!tls && (rs_ctl(a, "scratch %#llx", SCRATCH_IOVA) ||
		     rs_ctl(b, "scratch %#llx", SCRATCH_IOVA))) {
		fprintf(stderr, "live_bench: cannot name edu's scratch page\n");
		goto out;
	}
	unlink(LOG_L);	/* no "listening" of an earlier run */
	ls = spawn_logged((char *[]){ migctl, "-j", "listen", "--address",
				      "127.0.0.1", "--port", LM_PORT, "--once",
				      tls ? "--tls-creds" : "--insecure",
				      tls ? CREDS : copy ? "--copy-pages" : NULL,
				      NULL }, LOG_L);
	if (ls < 0 || wait_text_or_ready(ls, LOG_L, "\"listening\"")) {
		fprintf(stderr, "live_bench: migctl listen did not listen: %s\n",
			read_log(LOG_L, buf, sizeof(buf)));
		goto out;
	}
	if (cmd_run(&res, -1, (char *const[]){
			migctl, "-j", "migrate", srcs, "--to",
			"127.0.0.1:" LM_PORT, "--target-dev", dsts,
			tls ? "--tls-creds" : "--insecure",
			tls ? CREDS : shadow ? "--via-shadow" :
			two ? "--on-max-rounds" : copy ? "--copy-pages" : NULL,
			two ? "switchover" : NULL, NULL })) {
		fprintf(stderr, "live_bench: cannot run migctl\n");
		wait_or_kill(ls, 5);
		goto out;
	}
	if (wait_or_kill(ls, 30))
		fprintf(stderr, "live_bench: migctl listen: %s\n",
			read_log(LOG_L, buf, sizeof(buf)));
	if (res.status ||
	    json_object_with(res.out, "event", "summary", obj, sizeof(obj))) {
		fprintf(stderr, "live_bench: migctl migrate exited %d:\n%s%s\n",
			res.status, res.out, res.err);
		goto out;
	}
	if (two && !strstr(obj, "\"devices\":2")) {
		fprintf(stderr, "live_bench: not two devices: %s\n", obj);
		goto out;
	}
	if (shadow && !strstr(obj, "\"via_shadow\":true")) {
		fprintf(stderr, "live_bench: not through the shadow: %s\n", obj);
		goto out;
	}
	/*
	 * A page named, no shadow: the buffer must have moved early (6.1,
	 * without PRE_COPY, too: the prepare opens the stream there).
	 */
	if (mode == INSECURE && !strstr(obj, "\"early\":true")) {
		fprintf(stderr, "live_bench: the device state did not move before the stop: %s\n",
			obj);
		goto out;
	}
	r->staged = strstr(obj, "\"pages_staged\":true");
	if (copy && r->staged) {
		fprintf(stderr, "live_bench: --copy-pages staged pages: %s\n",
			obj);
		goto out;
	}
	r->rounds = json_f(obj, "rounds");
	r->total_ms = json_f(obj, "total_ms");
	r->downtime_ms = json_f(obj, "downtime_ms");
	r->stream = json_f(obj, "page_stream_mib_per_s");
	if (r->rounds < 0 || r->total_ms < 0 || r->downtime_ms < 0 ||
	    r->stream <= 0) {
		fprintf(stderr, "live_bench: summary lacks a figure: %s\n", obj);
		goto out;
	}
	r->dt_pause = json_f(obj, "pause_ms");
	r->dt_device = json_f(obj, "stop_copy_ms");
	if (r->dt_device >= 0 && json_f(obj, "target_load_ms") >= 0)
		r->dt_device += json_f(obj, "target_load_ms");
	else
		r->dt_device = -1;
	/* a migctl before 1.5 has none of these: -1, "not measured" */
	r->dt_dev_load = json_f(obj, "target_device_load_ms");
	r->dt_dev_own = json_f(obj, "stop_copy_us");
	r->dt_tgt_vmm = json_f(obj, "target_vmm_start_ms");
	if (r->dt_dev_load < 0 || r->dt_dev_own < 0)
		r->dt_dev_load = r->dt_dev_own = -1;
	else
		r->dt_dev_own = r->dt_dev_own / 1000 + r->dt_dev_load;
	r->held = json_f(obj, "device_held_ms");
	if (r->held >= 0 && r->held < r->downtime_ms) {
		fprintf(stderr, "live_bench: device_held_ms below the downtime: %s\n",
			obj);
		goto out;
	}
	r->dt_dirty = json_f(obj, "final_dirty_ms");
	r->dt_xfer = json_f(obj, "final_transfer_ms");
	r->dt_resume = json_f(obj, "commit_ms");
	if (r->dt_pause < 0 || r->dt_device < 0 || r->dt_dirty < 0 ||
	    r->dt_xfer < 0 || r->dt_resume < 0) {
		fprintf(stderr, "live_bench: summary lacks a downtime part: %s\n",
			obj);
		goto out;
	}
	r->ratio = r->stream / r->tcp;
	r->ratio_idle = r->stream / r->tcp_idle;
	if (tls) {
		char sec[1024];

		if (json_object_with(res.out, "event", "secured", sec,
				     sizeof(sec))) {
			fprintf(stderr, "live_bench: no \"secured\" event:\n%s\n",
				res.out);
			goto out;
		}
		r->handshake_ms = json_f(sec, "handshake_ms");
		printf("# tls: %s\n", sec);
		/* the raw socket of the same kind: kTLS both ways, that cipher */
		r->tcp_ktls = -1;
		for (i = 0; strstr(sec, "\"ktls\":\"tx+rx\"") &&
			    i < NR_CIPHERS; i++)
			if (strstr(sec, cipher_event[i]))
				r->tcp_ktls = r->ktls[i];
		printf("# ktls raw: %s %.1f, %s %.1f, %s %.1f MiB/s\n",
		       cipher_arg[0], r->ktls[0], cipher_arg[1], r->ktls[1],
		       cipher_arg[2], r->ktls[2]);
		/* GnuTLS in user space, or a cipher tcp_bench could not set */
		if (r->tcp_ktls <= 0)
			printf("# no raw kTLS baseline for this migration's channel\n");
		r->ratio_tls_raw = r->tcp_ktls > 0 ? r->stream / r->tcp_ktls : -1;
	}
	/* the target's side of the load: pages still queued, the kernel's */
	r->landed = false;
	if (!json_object_with(read_log(LOG_L, buf, sizeof(buf)), "event",
			      "summary", sec_obj, sizeof(sec_obj)))
		r->landed = strstr(sec_obj, "\"pages_landed\":true");
	if (copy && r->landed) {
		fprintf(stderr, "live_bench: listen --copy-pages landed pages: %s\n",
			sec_obj);
		goto out;
	}
	if (!json_object_with(read_log(LOG_L, buf, sizeof(buf)), "event",
			      "summary", sec_obj, sizeof(sec_obj)))
		printf("# target (%s): drain %.0f ms, kernel load %.0f ms, start %.0f ms\n",
		       mode_name[mode], json_f(sec_obj, "drain_ms"),
		       json_f(sec_obj, "load_ms"), json_f(sec_obj, "start_ms"));
	/* what the target VMM's start spent: the test's own checks */
	{
		static char vlog[1 << 16];
		const char *s = strstr(read_log(LOG_B, vlog, sizeof(vlog)),
				       "started in ");
		const char *nl = s ? strchr(s, ':') : NULL;

		if (s && nl)
			printf("# target VMM (%s): %.*s\n", mode_name[mode],
			       (int)(nl - s), s);
	}
	printf("# run (%s): the guest's device DMA starts held %.0f ms (downtime %.0f)\n",
	       mode_name[mode], r->held, r->downtime_ms);
	printf("# run (%s): the device's own part %.1f ms = stop-copy %.1f + the target's load %.1f (of %.0f from FINAL to READY); the target VMM's start ack %.1f ms (of %.0f from COMMIT to DONE)\n",
	       mode_name[mode], r->dt_dev_own, json_f(obj, "stop_copy_us") / 1000,
	       r->dt_dev_load, json_f(obj, "target_load_ms"), r->dt_tgt_vmm,
	       r->dt_resume);
	printf("# run (%s): page_stream %.1f MiB/s, tcp %.1f (idle %.1f), ratio %.3f (idle %.3f); rounds %.0f, total %.0f ms, downtime %.0f ms (pause %.0f, device %.0f = stop-copy %.0f + load %.0f, dirty %.0f, transfer %.0f, resume %.0f); before it, prepare %.0f ms + early state round %.0f ms (%s); pages_sent %.0f, zero %.0f, unchanged %.0f; read %.0f ms, hash %.0f ms, send %.0f ms, ack_wait %.0f ms\n",
	       mode_name[mode],
	       r->stream, r->tcp, r->tcp_idle, r->ratio, r->ratio_idle,
	       r->rounds, r->total_ms, r->downtime_ms, r->dt_pause,
	       r->dt_device, json_f(obj, "stop_copy_ms"),
	       json_f(obj, "target_load_ms"), r->dt_dirty, r->dt_xfer, r->dt_resume,
	       json_f(obj, "early_prepare_ms"), json_f(obj, "early_ack_ms"),
	       strstr(obj, "\"early\":true") ? "moved early" : "not early",
	       json_f(obj, "pages_sent"), json_f(obj, "zero_pages"),
	       json_f(obj, "unchanged_pages"), json_f(obj, "read_ms"),
	       json_f(obj, "hash_ms"), json_f(obj, "send_ms"),
	       json_f(obj, "ack_wait_ms"));
	fflush(stdout);
	ret = 0;
out:
	if (!tls) {
		rs_ctl(a, "scratch 0");
		rs_ctl(b, "scratch 0");
	}
	if (va > 0 && wait_or_kill(va, 20))
		fprintf(stderr, "live_bench: source VMM: %s\n",
			read_log(LOG_A, buf, sizeof(buf)));
	if (vb > 0 && wait_or_kill(vb, 20)) {
		fprintf(stderr, "live_bench: target VMM: %s\n",
			read_log(LOG_B, buf, sizeof(buf)));
		ret = -1;
	}
	return ret;
}

static int by_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

/* The median of field @off of @n runs. */
/* The figure at @off of @r. */
static double figure(const struct run *r, size_t off)
{
	return *(const double *)((const char *)r + off);
}

static double median(const struct run *runs, int n, size_t off)
{
	double v[RUNS];
	int i;

	for (i = 0; i < n; i++)
		v[i] = figure(&runs[i], off);
	qsort(v, n, sizeof(v[0]), by_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MEDIAN(field) median(runs, n, offsetof(struct run, field))

/* A line of decimals, or "not measured" if a run lacks the figure (-1). */
static void print_measured(const struct run *runs, int n, size_t off,
			   const char *key, const char *fmt)
{
	int i;

	for (i = 0; i < n; i++)
		if (figure(&runs[i], off) < 0) {
			printf("# %s: not measured (run %d: no such figure from migctl)\n",
			       key, i + 1);
			return;
		}
	printf("%s: ", key);
	printf(fmt, median(runs, n, off));
	printf("\n");
}

#define PRINT_MEASURED(key, field, fmt) \
	print_measured(runs, n, offsetof(struct run, field), key, fmt)

int main(void)
{
	struct run runs[RUNS];
	int i, n = 0, shadow_failed = 0, two_failed = 0;
	struct tb_devs t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!access("/usr/sbin/migctl", X_OK))
		strcpy(migctl, "/usr/sbin/migctl");
	if (tb_devices(&t) || t.nr_edu < 2 ||
	    vmm_bind(t.edu[0], TB_DRIVER) || vmm_bind(t.edu[1], TB_DRIVER)) {
		printf("live_bench: needs two edus bound to vfio-mig\n");
		return 1;
	}
	/* the NVMe VFs, under the nvme profile: a VM's second device */
	if (t.nr_vf >= 2 && !vmm_bind(t.vf[0], TB_DRIVER) &&
	    !vmm_bind(t.vf[1], TB_DRIVER) && !set_nvme(t.vf[0]) &&
	    !set_nvme(t.vf[1])) {
		vf_a = t.vf[0];
		vf_b = t.vf[1];
	} else {
		printf("# no NVMe VFs under vfio-mig: no two-device migration\n");
	}
	i = tb_lo_up();
	if (i) {
		printf("live_bench: cannot bring the loopback up: %s\n",
		       strerror(-i));
		return 1;
	}

	for (i = 0; i < RUNS; i++) {
		struct run tr, sr, cr;

		if (one_run(t.edu[0], t.edu[1], 0x5eed + i, INSECURE,
			    &runs[n]) ||
		    one_run(t.edu[0], t.edu[1], 0x5eed + i, COPY_PAGES, &cr) ||
		    one_run(t.edu[0], t.edu[1], 0x5eed + i, TLS, &tr))
			continue;
		runs[n].stream_copy = cr.stream;
		runs[n].ratio_copy = cr.ratio;
		printf("# run %d: pages %s and %s; %.1f MiB/s (ratio %.3f), with --copy-pages %.1f MiB/s (ratio %.3f); tls: %s and %s\n",
		       i + 1, runs[n].staged ? "staged" : "copied (not staged)",
		       runs[n].landed ? "landed" : "written (not landed)",
		       runs[n].stream, runs[n].ratio, cr.stream, cr.ratio,
		       tr.staged ? "staged" : "copied",
		       tr.landed ? "landed" : "written");
		runs[n].stream_tls = tr.stream;
		runs[n].ratio_tls = tr.stream / runs[n].stream;
		runs[n].handshake_ms = tr.handshake_ms;
		runs[n].tcp_ktls = tr.tcp_ktls;
		runs[n].ratio_tls_raw = tr.ratio_tls_raw;
		/* a failure here is the shadow's: the other lines stand */
		if (one_run(t.edu[0], t.edu[1], 0x5eed + i, VIA_SHADOW, &sr)) {
			shadow_failed++;
			sr.downtime_ms = sr.dt_device = sr.held = -1;
		}
		runs[n].dt_shadow = sr.downtime_ms;
		runs[n].dt_device_shadow = sr.dt_device;
		runs[n].held_shadow = sr.held;
		/* and the two-device VM's: its own line, the others stand */
		if (vf_a &&
		    one_run(t.edu[0], t.edu[1], 0x5eed + i, TWO_DEV, &sr)) {
			two_failed++;
			sr.downtime_ms = sr.dt_device = sr.held = -1;
		}
		runs[n].dt_2dev = sr.downtime_ms;
		runs[n].dt_device_2dev = sr.dt_device;
		runs[n].held_2dev = sr.held;
		n++;
	}
	if (n < RUNS) {
		printf("live_bench: %d of %d runs failed\n", RUNS - n, RUNS);
		return 1;
	}
	printf("tcp_idle_mib_per_s: %.1f\n", MEDIAN(tcp_idle));
	printf("tcp_loopback_mib_per_s: %.1f\n", MEDIAN(tcp));
	printf("rounds: %.0f\n", MEDIAN(rounds));
	printf("total_ms: %.0f\n", MEDIAN(total_ms));
	printf("downtime_ms: %.0f\n", MEDIAN(downtime_ms));
	printf("downtime_pause_ms: %.0f\n", MEDIAN(dt_pause));
	printf("downtime_device_ms: %.0f\n", MEDIAN(dt_device));
	printf("downtime_dirty_ms: %.0f\n", MEDIAN(dt_dirty));
	printf("downtime_transfer_ms: %.0f\n", MEDIAN(dt_xfer));
	printf("downtime_resume_ms: %.0f\n", MEDIAN(dt_resume));
	PRINT_MEASURED("downtime_device_load_ms", dt_dev_load, "%.1f");
	PRINT_MEASURED("downtime_device_own_ms", dt_dev_own, "%.1f");
	PRINT_MEASURED("downtime_target_vmm_ms", dt_tgt_vmm, "%.1f");
	PRINT_MEASURED("device_held_ms", held, "%.0f");
	printf("page_stream_mib_per_s: %.1f\n", MEDIAN(stream));
	printf("page_stream_ratio: %.3f\n", MEDIAN(ratio));
	printf("page_stream_ratio_idle: %.3f\n", MEDIAN(ratio_idle));
	printf("page_stream_mib_per_s_copy: %.1f\n", MEDIAN(stream_copy));
	printf("page_stream_ratio_copy: %.3f\n", MEDIAN(ratio_copy));
	printf("page_stream_mib_per_s_tls: %.1f\n", MEDIAN(stream_tls));
	printf("page_stream_ratio_tls: %.3f\n", MEDIAN(ratio_tls));
	printf("tls_handshake_ms: %.1f\n", MEDIAN(handshake_ms));
	for (i = 0; i < n && runs[i].ratio_tls_raw > 0; i++)
		;
	if (i == n) {
		printf("tcp_ktls_mib_per_s: %.1f\n", MEDIAN(tcp_ktls));
		printf("page_stream_ratio_tls_raw: %.3f\n",
		       MEDIAN(ratio_tls_raw));
	} else {
		printf("# tcp_ktls_mib_per_s, page_stream_ratio_tls_raw: not measured (run %d had no kTLS both ways, or no raw figure for its cipher)\n",
		       i + 1);
	}
	if (shadow_failed) {
		printf("live_bench: %d of %d migrations through the shadow failed\n",
		       shadow_failed, RUNS);
		return 1;
	}
	printf("downtime_ms_via_shadow: %.0f\n", MEDIAN(dt_shadow));
	printf("downtime_device_ms_via_shadow: %.0f\n",
	       MEDIAN(dt_device_shadow));
	PRINT_MEASURED("device_held_ms_via_shadow", held_shadow, "%.0f");
	if (two_failed) {
		printf("live_bench: %d of %d migrations of two devices failed\n",
		       two_failed, RUNS);
		return 1;
	}
	if (!vf_a) {
		printf("# downtime_ms_2dev: not measured (no NVMe VFs)\n");
		return 0;
	}
	printf("downtime_ms_2dev: %.0f\n", MEDIAN(dt_2dev));
	printf("downtime_device_ms_2dev: %.0f\n", MEDIAN(dt_device_2dev));
	PRINT_MEASURED("device_held_ms_2dev", held_2dev, "%.0f");
	return 0;
}
