// SPDX-License-Identifier: GPL-2.0
/*
 * live_bench: a live migration between hosts, measured against raw TCP in
 * the same run (make bench, in the test bed guest).
 *
 * Baseline: selftests/tools/tcp_bench, one connection over loopback for
 * BASE_S seconds. Then migctl moves edu A (the test VMM vmm_host running
 * its guest: a fixed, seeded workload of DMAs and vCPU page writes over
 * RAM_MIB MiB) to edu B over the same loopback, with default convergence
 * settings. Prints, from migctl's JSON summary:
 *
 *   tcp_loopback_mib_per_s: N
 *   rounds: N
 *   total_ms: N
 *   downtime_ms: N
 *   page_stream_mib_per_s: N
 *   page_stream_ratio: N     (page streaming / raw loopback TCP; target >= 0.8)
 *
 * The migration repeats RUNS times and the median by page_stream_mib_per_s
 * is reported, as one TCG run varies with the host's load.
 */
#define _GNU_SOURCE
#include <stdbool.h>

#include "cmd.h"
#include "hosts.h"
#include "testbed.h"

#define BASE_S		"3"
#define BENCH_PORT	"5311"
#define LM_PORT		"5312"
#define RAM_MIB		"64"
#define RUNS		3
#define WAIT_READY_S	60
#define LOG_A		"/tmp/live_bench-a.log"
#define LOG_B		"/tmp/live_bench-b.log"
#define LOG_L		"/tmp/live_bench-listen.log"

struct run {
	uint64_t rounds, total_ms, downtime_ms;
	double stream;
};

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

/* Wait until @log holds a line "ready" (or @pid ends): 0 or -1. */
static int wait_ready(pid_t pid, const char *log)
{
	double end = mono_s() + WAIT_READY_S;
	char buf[8192];
	int status;

	while (mono_s() < end) {
		read_log(log, buf, sizeof(buf));
		if (strstr(buf, "ready\n") == buf || strstr(buf, "\nready\n"))
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		usleep(50000);
	}
	return -1;
}

static double json_f(const char *obj, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(obj, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

static int one_run(const char *a, const char *b, unsigned int seed,
		   struct run *r)
{
	char seedarg[32], obj[4096], buf[8192];
	pid_t va, vb, ls;
	int ret = -1;

	snprintf(seedarg, sizeof(seedarg), "%u", seed);
	vb = spawn_logged((char *[]){ tool("vmm_host"), "target", (char *)b,
				      "--ram-mib", RAM_MIB, "--run-ms", "500",
				      NULL }, LOG_B);
	va = spawn_logged((char *[]){ tool("vmm_host"), "source", (char *)a,
				      "--ram-mib", RAM_MIB, "--seed", seedarg,
				      NULL }, LOG_A);
	if (va < 0 || vb < 0 || wait_ready(va, LOG_A) || wait_ready(vb, LOG_B)) {
		fprintf(stderr, "live_bench: the VMMs did not start:\n%s\n",
			read_log(LOG_A, buf, sizeof(buf)));
		fprintf(stderr, "%s\n", read_log(LOG_B, buf, sizeof(buf)));
		goto out;
	}
	ls = spawn_logged((char *[]){ migctl, "-j", "listen", "--address",
				      "127.0.0.1", "--port", LM_PORT, "--once",
				      NULL }, LOG_L);
	if (ls < 0)
		goto out;
	usleep(300000);
	if (CMD(&res, migctl, "-j", "migrate", (char *)a, "--to",
		"127.0.0.1:" LM_PORT, "--target-dev", (char *)b)) {
		fprintf(stderr, "live_bench: cannot run migctl\n");
		wait_or_kill(ls, 5);
		goto out;
	}
	wait_or_kill(ls, 30);
	if (res.status ||
	    json_object_with(res.out, "event", "summary", obj, sizeof(obj))) {
		fprintf(stderr, "live_bench: migctl migrate exited %d:\n%s%s\n",
			res.status, res.out, res.err);
		goto out;
	}
	if (json_get_u64(obj, "rounds", &r->rounds) ||
	    json_get_u64(obj, "total_ms", &r->total_ms) ||
	    json_get_u64(obj, "downtime_ms", &r->downtime_ms) ||
	    (r->stream = json_f(obj, "page_stream_mib_per_s")) <= 0) {
		fprintf(stderr, "live_bench: summary lacks a figure: %s\n", obj);
		goto out;
	}
	ret = 0;
out:
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

static int by_stream(const void *x, const void *y)
{
	const struct run *a = x, *b = y;

	return (a->stream > b->stream) - (a->stream < b->stream);
}

int main(void)
{
	struct run runs[RUNS];
	struct tb_devs t;
	double tcp;
	pid_t srv;
	int i, n = 0;

	if (!access("/usr/sbin/migctl", X_OK))
		strcpy(migctl, "/usr/sbin/migctl");
	if (tb_devices(&t) || t.nr_edu < 2 ||
	    vmm_bind(t.edu[0], TB_DRIVER) || vmm_bind(t.edu[1], TB_DRIVER)) {
		printf("live_bench: needs two edus bound to vfio-mig\n");
		return 1;
	}

	srv = spawn_logged((char *[]){ tcp_bench_path(), "server", BENCH_PORT,
				       NULL }, "/tmp/live_bench-tcp.log");
	if (srv < 0 || CMD(&res, tcp_bench_path(), "client", "127.0.0.1",
			   BENCH_PORT, BASE_S) || res.status) {
		printf("live_bench: tcp_bench failed: %s%s\n", res.out, res.err);
		return 1;
	}
	wait_or_kill(srv, 10);
	tcp = tcp_mib_per_s(res.out);
	if (tcp <= 0) {
		printf("live_bench: tcp_bench printed: %s\n", res.out);
		return 1;
	}
	printf("tcp_loopback_mib_per_s: %.1f\n", tcp);

	for (i = 0; i < RUNS; i++)
		if (!one_run(t.edu[0], t.edu[1], 0x5eed + i, &runs[n]))
			n++;
	if (n < RUNS) {
		printf("live_bench: %d of %d migrations failed\n", RUNS - n,
		       RUNS);
		return 1;
	}
	qsort(runs, n, sizeof(runs[0]), by_stream);
	i = n / 2;
	printf("rounds: %llu\n", (unsigned long long)runs[i].rounds);
	printf("total_ms: %llu\n", (unsigned long long)runs[i].total_ms);
	printf("downtime_ms: %llu\n", (unsigned long long)runs[i].downtime_ms);
	printf("page_stream_mib_per_s: %.1f\n", runs[i].stream);
	printf("page_stream_ratio: %.3f\n", runs[i].stream / tcp);
	return 0;
}
