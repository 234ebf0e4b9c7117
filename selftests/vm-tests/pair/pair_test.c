// SPDX-License-Identifier: GPL-2.0
/*
 * Two guests on one network (selftests/vm/run-pair.sh): guest a
 * (vmig.host=a, eth0 10.98.0.1/24) serves, guest b (10.98.0.2/24) is the
 * client: a TCP echo with a known pattern, then tcp_bench from b to a (its
 * figure is logged on b), then a live migration between the two kernels:
 * migctl moves guest a's edu, with the test VMM's guest running on it, to
 * guest b's edu; and the NVMe namespace both guests' QEMUs back with one
 * file: what a writes through its VF 1, b reads through its VF 2. Both
 * guests run this same binary, each its own
 * side; the waits are long, as the guests boot and reach this test at
 * different times. Skipped outside a pair (no vmig.host=).
 */
#define _GNU_SOURCE
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>

#include "kselftest_harness.h"
#include "cmd.h"
#include "../hosts/hosts.h"
#include "nvme.h"
#include "testbed.h"

#define A_IP		"10.98.0.1"
#define B_IP		"10.98.0.2"
#define ECHO_PORT	5201
#define BENCH_PORT	"5202"
#define WAIT_S		300
#define BENCH_S		"3"
#define SERVER_LOG	"/tmp/pair_test-server.log"
#define SYNC_PORT	5203
#define LM_PORT		"4797"
#define VMM_LOG		"/tmp/pair_test-vmm.log"
#define VMM_REPORT	"/tmp/pair_test-vmm.json"
#define LISTEN_LOG	"/tmp/pair_test-listen.log"
#define MIGCTL		"/usr/sbin/migctl"
#define CREDS		"/etc/vfio-mig/x509"	/* mkinitramfs.sh */
#define NVME_PORT	5204
#define NVME_SYNC_PORT	5205
#define NVME_LM_PORT	"4798"
#define NVME_BASE	32768	/* LBAs of the namespace this test uses */
#define NVME_NR		1024
#define NVME_RAM	(4u << 20)
#define NVME_IOVA	0x100000ull

static struct cmd_result res;

/* 'a' or 'b' from vmig.host= on the kernel command line, 0 if none. */
static char pair_host(void)
{
	char line[4096], *p;
	FILE *f = fopen("/proc/cmdline", "r");

	if (!f)
		return 0;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	for (p = p ? strtok(line, " \n") : NULL; p; p = strtok(NULL, " \n"))
		if (!strncmp(p, "vmig.host=", 10) &&
		    (p[10] == 'a' || p[10] == 'b') && !p[11])
			return p[10];
	return 0;
}

FIXTURE(pair) {
	char host;
};

FIXTURE_SETUP(pair)
{
	self->host = pair_host();
	if (!self->host)
		SKIP(return,
		     "not a guest of a pair (no vmig.host=; selftests/vm/run-pair.sh)");
}

FIXTURE_TEARDOWN(pair)
{
}

/*
 * eth0 has its address and is up; it is running (carrier) once the other
 * guest's QEMU has joined the socket netdev, which may take the other
 * guest's boot: wait for that.
 */
TEST_F_TIMEOUT(pair, eth0_configured, WAIT_S + 30)
{
	const char *want = self->host == 'a' ? A_IP : B_IP;
	double deadline = mono_s() + WAIT_S;
	char ip[INET_ADDRSTRLEN];
	struct ifaddrs *ifa, *i;
	bool found, up;

	do {
		found = up = false;
		ASSERT_EQ(0, getifaddrs(&ifa));
		for (i = ifa; i; i = i->ifa_next) {
			if (strcmp(i->ifa_name, "eth0"))
				continue;
			up |= (i->ifa_flags & (IFF_UP | IFF_RUNNING)) ==
			      (IFF_UP | IFF_RUNNING);
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
				continue;
			inet_ntop(AF_INET,
				  &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
				  ip, sizeof(ip));
			found |= !strcmp(ip, want);
		}
		freeifaddrs(ifa);
		if (found && up)
			break;
		usleep(200000);
	} while (mono_s() < deadline);
	EXPECT_TRUE(found) TH_LOG("eth0 has no %s", want);
	EXPECT_TRUE(up) TH_LOG("eth0 is not up and running (no carrier)");
}

/*
 * Connect to @ip:@port, retrying every 200 ms until it listens or
 * @deadline (mono_s()) passes: the connected fd, or -errno.
 */
static int connect_until(const char *ip, int port, double deadline)
{
	int fd, ret;

	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		ret = tcp_connect_fd(fd, ip, port);
		if (!ret)
			return fd;
		close(fd);
		if (mono_s() > deadline)
			return ret;
		usleep(200000);
	}
}

/* Listen on @ip:@port for one connection, up to @wait_s: its fd, or -errno. */
static int accept_one(const char *ip, int port, int wait_s)
{
	struct pollfd p = { .events = POLLIN };
	int lfd, fd;

	lfd = tcp_listen_on(ip, port);
	if (lfd < 0)
		return lfd;
	p.fd = lfd;
	if (poll(&p, 1, wait_s * 1000) != 1) {
		close(lfd);
		return -ETIMEDOUT;
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(lfd);
	return fd;
}

/* b connects (retrying until a listens), sends the pattern, a echoes it. */
TEST_F_TIMEOUT(pair, tcp_echo_b_to_a, WAIT_S + 60)
{
	double deadline = mono_s() + WAIT_S;
	char peer[INET_ADDRSTRLEN] = "";
	int fd, ret;

	if (self->host == 'a') {
		fd = tcp_listen_on(A_IP, ECHO_PORT);
		ASSERT_LE(0, fd) TH_LOG("listen: %s", strerror(-fd));
		ret = echo_serve(fd, 0x5a, WAIT_S, peer);
		close(fd);
		EXPECT_EQ(0, ret) TH_LOG("echo server: %s", strerror(-ret));
		EXPECT_STREQ(B_IP, peer);
		return;
	}
	fd = connect_until(A_IP, ECHO_PORT, deadline);
	ASSERT_LE(0, fd) TH_LOG("connect to %s:%d: %s", A_IP, ECHO_PORT,
				strerror(-fd));
	ret = echo_client(fd, 0x5a);
	close(fd);
	EXPECT_EQ(0, ret) TH_LOG("echo: %s", strerror(-ret));
}

/* tcp_bench server on a, client on b; b logs the throughput. */
TEST_F_TIMEOUT(pair, tcp_bench_b_to_a, WAIT_S + 60)
{
	char *bench = tcp_bench_path();
	double deadline = mono_s() + WAIT_S, mib;
	int status;
	pid_t srv;

	ASSERT_EQ(0, access(bench, X_OK)) TH_LOG("%s: %s", bench,
						 strerror(errno));
	if (self->host == 'a') {
		srv = spawn_logged((char *[]){ bench, "server", BENCH_PORT,
					       NULL }, SERVER_LOG);
		ASSERT_LT(0, srv);
		status = wait_or_kill(srv, WAIT_S);
		EXPECT_EQ(0, status) TH_LOG("server: %s",
					    read_log(SERVER_LOG, res.out,
						     sizeof(res.out)));
		unlink(SERVER_LOG);
		return;
	}
	/* The client retries for 60 s itself; a may be later than that. */
	do {
		ASSERT_EQ(0, CMD(&res, bench, "client", A_IP, BENCH_PORT,
				 BENCH_S));
	} while (res.status && strstr(res.err, "connect") &&
		 mono_s() < deadline);
	EXPECT_EQ(0, res.status) TH_LOG("client: %s%s", res.out, res.err);
	mib = tcp_mib_per_s(res.out);
	EXPECT_LT(0, mib) TH_LOG("client printed: %s", res.out);
	TH_LOG("tcp_mib_per_s across the guests (b -> a): %.1f", mib);
}

/* /tests/tools/NAME, next to tcp_bench. */
static char *tool(const char *name)
{
	static char path[PATH_MAX];
	char *t = tcp_bench_path();

	snprintf(path, sizeof(path), "%.*s/%s", (int)(strrchr(t, '/') - t), t,
		 name);
	return path;
}

/* Wait for a line equal to @line in the file @log while @pid runs. */
static bool wait_line(pid_t pid, const char *log, const char *line,
		      int timeout_s)
{
	double end = mono_s() + timeout_s;
	char buf[16384], *p;
	int status;

	while (mono_s() < end) {
		read_log(log, buf, sizeof(buf));
		for (p = strtok(buf, "\n"); p; p = strtok(NULL, "\n"))
			if (strstr(p, line))
				return true;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return false;
		usleep(100000);
	}
	return false;
}

static int report_digest(uint64_t *d)
{
	static char buf[8192];

	read_log(VMM_REPORT, buf, sizeof(buf));
	return json_get_u64(buf, "ram_digest", d);
}

/* One line (up to a newline) from @fd. */
static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, 1);

		if (r <= 0)
			return r ? -errno : -EPIPE;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
	return 0;
}

/*
 * a's device @bdf, under the test VMM's running guest, moves to b's
 * device of the same address: b runs the target VMM and 'migctl listen'
 * on @lm_port, then tells a (on @sync_port) it is ready; a runs the
 * source VMM and 'migctl migrate' and sends b the RAM digest its VMM took
 * at the switchover, which b compares with its own. The target VMM's own
 * checks (the device's state, the guest's results on it) decide its exit.
 */
static void pair_live(struct __test_metadata *_metadata, char host,
		      const char *bdf, const char *lm_port, int sync_port,
		      bool nvme)
{
	char line[128], buf[16384], to[64];
	uint64_t mine, theirs;
	pid_t vmm, ls;
	int fd = -1, ret, status;
	double deadline = mono_s() + WAIT_S;

	ASSERT_EQ(0, vmm_bind(bdf, TB_DRIVER));
	unlink(VMM_REPORT);
	if (host == 'b') {
		vmm = spawn_logged((char *[]){ tool("vmm_host"), "target",
					       (char *)bdf, "--report",
					       VMM_REPORT, "--run-ms", "2000",
					       NULL },
				   VMM_LOG);
		ASSERT_LT(0, vmm);
		ASSERT_TRUE(wait_line(vmm, VMM_LOG, "ready", 60))
			TH_LOG("target VMM: %s", read_log(VMM_LOG, buf, sizeof(buf)));
		ls = spawn_logged((char *[]){ MIGCTL, "-j", "listen", "--address",
					      B_IP, "--port", (char *)lm_port,
					      "--once",
					      "--tls-creds", CREDS,
					      "--allow-peer", "vmig-source",
					      NULL }, LISTEN_LOG);
		ASSERT_LT(0, ls);
		ASSERT_TRUE(wait_line(ls, LISTEN_LOG, "\"listening\"", 30))
			TH_LOG("migctl listen: %s",
			       read_log(LISTEN_LOG, buf, sizeof(buf)));
		fd = accept_one(B_IP, sync_port, WAIT_S);
		ASSERT_LE(0, fd) TH_LOG("a never came: %s", strerror(-fd));
		io_timeouts(fd);
		ASSERT_EQ(0, io_all(fd, "ready\n", 6, 1));
		/* a migrates now; it answers when its migctl is done */
		ret = -EAGAIN;
		for (int i = 0; i < 8 && ret; i++)
			ret = read_line(fd, line, sizeof(line));
		close(fd);
		status = wait_or_kill(ls, 60);
		EXPECT_EQ(0, status) TH_LOG("migctl listen: %s",
					    read_log(LISTEN_LOG, buf, sizeof(buf)));
		status = wait_or_kill(vmm, 60);
		EXPECT_EQ(0, status) TH_LOG("target VMM: %s",
					    read_log(VMM_LOG, buf, sizeof(buf)));
		ASSERT_EQ(0, ret) TH_LOG("no word from a: %s", strerror(-ret));
		ASSERT_EQ(1, sscanf(line, "digest %" SCNu64, &theirs))
			TH_LOG("a says: %s", line);
		ASSERT_EQ(0, report_digest(&mine))
			TH_LOG("target report: %s", read_log(VMM_REPORT, buf, sizeof(buf)));
		EXPECT_EQ(theirs, mine) TH_LOG("b's RAM is not a's at the switchover");
		TH_LOG("guest a's RAM arrived intact (digest %" PRIu64 ")", mine);
		/* the target VMM's summary: its last line */
		read_log(VMM_LOG, buf, sizeof(buf));
		while (strlen(buf) && buf[strlen(buf) - 1] == '\n')
			buf[strlen(buf) - 1] = 0;
		TH_LOG("target VMM: %s", strrchr(buf, '\n') ?
		       strrchr(buf, '\n') + 1 : buf);
		return;
	}
	vmm = spawn_logged((char *[]){ tool("vmm_host"), "source", (char *)bdf,
				       "--seed", "0xa11ce", "--report",
				       VMM_REPORT, NULL }, VMM_LOG);
	ASSERT_LT(0, vmm);
	ASSERT_TRUE(wait_line(vmm, VMM_LOG, "ready", 60))
		TH_LOG("source VMM: %s", read_log(VMM_LOG, buf, sizeof(buf)));
	fd = connect_until(B_IP, sync_port, deadline);
	ASSERT_LE(0, fd) TH_LOG("b is not ready: %s", strerror(-fd));
	io_timeouts(fd);
	ASSERT_EQ(0, read_line(fd, line, sizeof(line)));
	ASSERT_STREQ("ready", line);
	/*
	 * The other guest proves it is b: its certificate names B_IP. On a
	 * debug kernel (KASAN, lockdep) pages move ten times slower than the
	 * test VMM dirties them: the downtime budget widens there, what is
	 * checked (the data) does not. The NVMe workload dirties pages
	 * about as fast as the TCG test bed moves them (about 3 MiB/s), so
	 * its rounds may end at the round limit a little above the budget:
	 * that case checks the I/O across the switchover, not convergence
	 * (edu's does), and switches over at the limit.
	 */
	snprintf(to, sizeof(to), "%s:%s", B_IP, lm_port);
	ASSERT_EQ(0, CMD(&res, MIGCTL, "-j", "migrate", (char *)bdf, "--to", to,
			 "--target-dev", (char *)bdf,
			 "--tls-creds", CREDS, "--downtime-ms",
			 getenv("VMIG_SLOW_KERNEL") ? "5000" : "300",
			 "--on-max-rounds", nvme ? "switchover" : "abort"));
	status = wait_or_kill(vmm, 60);
	if (!res.status && !status && !report_digest(&mine))
		snprintf(line, sizeof(line), "digest %" PRIu64 "\n", mine);
	else
		snprintf(line, sizeof(line), "failed\n");
	io_all(fd, line, strlen(line), 1);
	close(fd);
	EXPECT_EQ(0, res.status) TH_LOG("migctl migrate: %s%s", res.out, res.err);
	EXPECT_EQ(0, status) TH_LOG("source VMM: %s",
				    read_log(VMM_LOG, buf, sizeof(buf)));
	TH_LOG("migctl: %s", res.out);
}

TEST_F_TIMEOUT(pair, live_migration_a_to_b, WAIT_S + 240)
{
	struct tb_devs t;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_LE(1, t.nr_edu);
	pair_live(_metadata, self->host, t.edu[0], LM_PORT, SYNC_PORT, false);
}

/*
 * a's NVMe VF 1 with the verified workload running (commands in flight
 * on two queues) moves to b's VF 1 under the nvme profile: b's QEMU backs
 * the namespace with the same file, as two hosts' VFs fronting one
 * volume. b's VMM goes on from the commands a left in flight and reads
 * every block of the workload back.
 */
TEST_F_TIMEOUT(pair, nvme_live_migration_a_to_b, WAIT_S + 240)
{
	char path[128];
	struct tb_devs t;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(TB_NR_VF, t.nr_vf);
	ASSERT_EQ(0, vmm_bind(t.vf[0], TB_DRIVER));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio_mig/profile",
		 t.vf[0]);
	ASSERT_EQ(0, vmm_sysfs_write(path, "nvme"));
	pair_live(_metadata, self->host, t.vf[0], NVME_LM_PORT,
		  NVME_SYNC_PORT, true);
}

/* One NVMe VF under vfio-pci: device, RAM, controller, two I/O queues. */
struct nvme_vf {
	struct vmm_dev d;
	struct vmm_ram ram;
	struct nvme_ctrl c;
};

static int nvme_vf_up(struct nvme_vf *v, const char *bdf)
{
	int ret;

	memset(v, 0, sizeof(*v));
	v->ram.memfd = -1;
	v->d.fd = v->d.group = v->d.container = -1;
	ret = vmm_bind(bdf, "vfio-pci");
	if (!ret)
		ret = vmm_open(&v->d, bdf);
	if (ret) {
		snprintf(v->c.why, sizeof(v->c.why), "%s: bind/open: %s", bdf,
			 strerror(-ret));
		return ret;
	}
	ret = vmm_ram_alloc(&v->ram, NVME_RAM, NVME_IOVA);
	if (!ret)
		ret = vmm_dma_map(&v->d, &v->ram);
	if (!ret)
		ret = nvme_ctrl_init(&v->c, &v->d, &v->ram, 1, false);
	if (!ret)
		ret = nvme_create_io_queues(&v->c, 2, 16, false);
	return ret;
}

static void nvme_vf_down(struct nvme_vf *v)
{
	nvme_ctrl_fini(&v->c);
	vmm_ram_release(&v->d, &v->ram);
	vmm_close(&v->d);
}

/*
 * The namespace is one file under both guests: a runs the verified NVMe
 * workload on its VF 1 and sends b the workload's seed and its table of
 * block generations; b points the same workload at its own VF 2 and reads
 * every block back: each must carry the generation a's table says.
 */
TEST_F_TIMEOUT(pair, nvme_namespace_shared_a_to_b, WAIT_S + 60)
{
	double deadline = mono_s() + WAIT_S;
	char line[128];
	uint32_t *gens, seed = 0xab5eed, i;
	struct tb_devs t;
	struct nvme_wl w = { 0 };
	struct nvme_vf *v;
	int fd = -1, ret;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(TB_NR_VF, t.nr_vf);
	v = calloc(1, sizeof(*v));
	gens = calloc(NVME_NR, sizeof(*gens));
	ASSERT_NE(NULL, v);
	ASSERT_NE(NULL, gens);
	if (self->host == 'a') {
		ret = nvme_vf_up(v, t.vf[0]);
		ASSERT_EQ(0, ret) TH_LOG("VF 1: %s", v->c.why);
		ASSERT_EQ(0, nvme_wl_init(&w, &v->c, NVME_BASE, NVME_NR, 8,
					  seed));
		ASSERT_EQ(0, nvme_wl_fill(&w, 5000)) TH_LOG("%s", w.why);
		ASSERT_EQ(0, nvme_wl_run(&w, 2000, 30000)) TH_LOG("%s", w.why);
		for (i = 0; i < NVME_NR; i++)
			gens[i] = w.tab[i].gen;
		TH_LOG("a: %lu writes, %lu reads checked %lu blocks through %s",
		       w.writes, w.reads, w.blocks_checked, t.vf[0]);
		nvme_wl_free(&w);
		nvme_vf_down(v);
		fd = connect_until(B_IP, NVME_PORT, deadline);
		ASSERT_LE(0, fd) TH_LOG("b never listened: %s", strerror(-fd));
		io_timeouts(fd);
		snprintf(line, sizeof(line), "nvme %u %u %u\n", NVME_BASE,
			 NVME_NR, seed);
		ASSERT_EQ(0, io_all(fd, line, strlen(line), 1));
		ASSERT_EQ(0, io_all(fd, gens, NVME_NR * sizeof(*gens), 1));
		ASSERT_EQ(0, read_line(fd, line, sizeof(line)));
		close(fd);
		EXPECT_STREQ("verified", line) TH_LOG("b says: %s", line);
		free(gens);
		free(v);
		return;
	}
	fd = accept_one(B_IP, NVME_PORT, WAIT_S);
	ASSERT_LE(0, fd) TH_LOG("a never came: %s", strerror(-fd));
	io_timeouts(fd);
	ASSERT_EQ(0, read_line(fd, line, sizeof(line)));
	snprintf(w.why, sizeof(w.why), "nvme %u %u %u", NVME_BASE, NVME_NR,
		 seed);
	ASSERT_STREQ(w.why, line);
	ASSERT_EQ(0, io_all(fd, gens, NVME_NR * sizeof(*gens), 0));
	ret = nvme_vf_up(v, t.vf[1]);
	if (!ret)
		ret = nvme_wl_init(&w, &v->c, NVME_BASE, NVME_NR, 8, seed);
	if (!ret) {
		for (i = 0; i < NVME_NR; i++)
			w.tab[i].gen = gens[i];
		ret = nvme_wl_verify_all(&w, 5000);
		TH_LOG("b: %lu blocks checked through %s, %lu errors%s%s",
		       w.blocks_checked, t.vf[1], w.errors,
		       w.errors ? ": " : "", w.errors ? w.why : "");
		EXPECT_EQ(NVME_NR, w.blocks_checked);
	} else {
		TH_LOG("VF 2: %s", v->c.why);
	}
	snprintf(line, sizeof(line), "%s\n", ret ? "failed" : "verified");
	EXPECT_EQ(0, io_all(fd, line, strlen(line), 1));
	close(fd);
	EXPECT_EQ(0, ret);
	nvme_wl_free(&w);
	nvme_vf_down(v);
	free(gens);
	free(v);
}

TEST_HARNESS_MAIN
