// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration between two hosts in one guest (Documentation/
 * live-migration.rst): hosta and hostb are network namespaces joined by a
 * veth pair (selftests/vm/netns.sh); the two VMMs are vmm_host
 * (selftests/tools) in the guest's own namespace, the source on edu
 * 0000:00:03.0 and the target on edu 0000:00:05.0; migctl runs in the
 * namespaces: `migctl -j listen --once` in hostb, `migctl -j migrate` in
 * hosta.
 *
 *  - migrate_insecure_pages_staged_and_landed, migrate_insecure_copy_pages:
 *    the same on a plain link, the pages staged by the source's kernel and
 *    landed by the target's from the socket; and through migctl's buffers
 *    (--copy-pages on both sides);
 *  - migrate_under_load: the migration succeeds while the guest runs;
 *    the target's RAM digest equals the source's at the switchover, the
 *    device registers are the same, the guest goes on on the target with
 *    its results checked (its state came in its RAM), rounds are
 *    reported as JSON events;
 *  - failures before the commit point: the target migctl killed (-9),
 *    the link dropped, the source migctl interrupted (SIGINT) or killed
 *    (-9: the kernel rolls back), at several points (round 1, a later
 *    round, the switchover: the source VMM holds its pause ack to make
 *    that window), and a target that refuses (a device with another
 *    profile, a device no VMM has open). Each time the source migctl
 *    exits 1 (unless killed), the source VMM got abort (if a phase was
 *    announced) and its guest runs on with the device usable and nothing
 *    lost (its own checks: the device buffer by DMA, every RAM page it
 *    wrote, every result), and the target VMM saw abort or nothing; some
 *    cases then migrate again with the same VMMs, successfully;
 *  - hostile peers: a plain source, the wrong PSK, another CA's
 *    certificate, all turned away by one listen that then serves an
 *    honest migration; an impostor target that gets nothing; a migration
 *    over IPv6 with a pre-shared key;
 *  - the kernel's side with a controller of the test's own: abort
 *    announced when the controller's fd closes before a commit, ESTALE
 *    and ENOTCONN;
 *  - migrate_via_shadow: `migrate --via-shadow` engages the source's
 *    shadow before the switchover; the stream is the shadow's state, the
 *    target serves it with its own shadow and hands its device the state
 *    in the background; everything is checked as for migrate_under_load.
 *
 * Each process's output is kept in /tmp/live/ and shown when a case fails.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <sys/ioctl.h>
#include <linux/vfio_mig.h>
#include <linux/vfio_mig_ctl.h>

#include "kselftest_harness.h"
#include "cmd.h"
#include "hosts.h"
#include "lmvmm.h"
#include "mig.h"
#include "shadow.h"
#include "testbed.h"
#include "vmm.h"

#define SRC_BDF		"0000:00:03.0"
#define DST_BDF		"0000:00:05.0"
#define DST_IP		"10.99.0.2"
#define NETNS_SH	"/bin/netns.sh"
#define IP		"/usr/sbin/ip"
#define LOGDIR		"/tmp/live"
#define SVMM_LOG	LOGDIR "/source-vmm.log"
#define TVMM_LOG	LOGDIR "/target-vmm.log"
#define SVMM_REP	LOGDIR "/source-vmm.json"
#define TVMM_REP	LOGDIR "/target-vmm.json"
#define SRC_LOG		LOGDIR "/migrate.log"
#define DST_LOG		LOGDIR "/listen.log"
#define RAM_MIB		"8"
/* a VM of two devices: each device's guest program in a half */
#define RAM_MIB_2DEV	"16"
#define CREDS		"/etc/vfio-mig/x509"	/* mkinitramfs.sh */
#define ROGUE		"/etc/vfio-mig/rogue"
#define TARGET_RUN_MS	"1500"
#define BIG		(256 << 10)

static struct cmd_result res;
static char buf[BIG], buf2[BIG];

/* ---- processes ---- */

struct proc {
	const char *name;
	const char *log;
	pid_t pid;
	int status;		/* exit code, or 128 + signal, once done */
	bool done;
};

/*
 * Start argv with stdout and stderr to @log, stdin from /dev/null, and
 * none of this test's other fds (the harness's pipes stay ours).
 */
static int proc_start(struct proc *p, const char *name, const char *log,
		      char *const argv[])
{
	/* the log is new before anyone looks into it */
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	memset(p, 0, sizeof(*p));
	p->name = name;
	p->log = log;
	if (fd < 0)
		return -errno;
	p->pid = fork();
	if (p->pid < 0) {
		close(fd);
		return -errno;
	}
	if (!p->pid) {
		int null = open("/dev/null", O_RDONLY), i;

		if (null < 0)
			_exit(126);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		for (i = 3; i < 1024; i++)
			close(i);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd);
	return 0;
}

static bool proc_poll(struct proc *p)
{
	int st;

	if (p->done || p->pid <= 0)
		return true;
	if (waitpid(p->pid, &st, WNOHANG) != p->pid)
		return false;
	p->done = true;
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return true;
}

/* Wait up to @ms for @p to end; true if it did. */
static bool proc_wait(struct proc *p, int ms)
{
	uint64_t end = vmm_now_us() + ms * 1000ull;

	while (!proc_poll(p)) {
		if (vmm_now_us() > end)
			return false;
		usleep(20000);
	}
	return true;
}

static void proc_signal(struct proc *p, int sig)
{
	if (p->pid > 0 && !proc_poll(p))
		kill(p->pid, sig);
}

static void proc_reap(struct proc *p)
{
	if (p->pid <= 0 || p->done)
		return;
	kill(p->pid, SIGKILL);
	proc_wait(p, 5000);
}

/* ---- logs and JSON events ---- */

static char *slurp(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r;

	out[0] = 0;
	if (fd < 0)
		return out;
	while (n + 1 < len && (r = read(fd, out + n, len - 1 - n)) > 0)
		n += r;
	out[n] = 0;
	close(fd);
	return out;
}

/* The last @max bytes of @path, for a failure message. */
static const char *tail_of(const char *path, size_t max)
{
	static char t[8192];
	size_t n;

	slurp(path, buf2, sizeof(buf2));
	n = strlen(buf2);
	if (max > sizeof(t) - 1)
		max = sizeof(t) - 1;
	n = n > max ? n - max : 0;
	memcpy(t, buf2 + n, strlen(buf2 + n) + 1);
	return t;
}

static bool line_starts(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	for (;;) {
		if (!strncmp(p, line, n))
			return true;
		p = strchr(p, '\n');
		if (!p++)
			return false;
	}
}

/*
 * Walk the JSON event lines of @text: each line that is an object whose
 * "event" is @event (and "role" @role when not NULL) is copied to @obj;
 * returns how many there were (@obj holds the last one).
 */
static int events_of(const char *text, const char *event, const char *role,
		     char *obj, size_t len)
{
	const char *p = text;
	char line[4096], v[64];
	int n = 0;

	while (*p) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l < sizeof(line) && *p == '{') {
			memcpy(line, p, l);
			line[l] = 0;
			if (!json_get_str(line, "event", v, sizeof(v)) &&
			    !strcmp(v, event) &&
			    (!role || (!json_get_str(line, "role", v,
						     sizeof(v)) &&
					!strcmp(v, role)))) {
				n++;
				if (obj)
					snprintf(obj, len, "%s", line);
			}
		}
		p += l;
		if (*p)
			p++;
	}
	return n;
}

/* A "phase" event of @role for @phase in @text, copied to @obj. */
static bool phase_event(const char *text, const char *role,
			const char *phase, char *obj, size_t len)
{
	const char *p = text;
	char line[4096], v[64];

	while (*p) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l < sizeof(line) && *p == '{') {
			memcpy(line, p, l);
			line[l] = 0;
			if (!json_get_str(line, "event", v, sizeof(v)) &&
			    !strcmp(v, "phase") &&
			    !json_get_str(line, "role", v, sizeof(v)) &&
			    !strcmp(v, role) &&
			    !json_get_str(line, "phase", v, sizeof(v)) &&
			    !strcmp(v, phase)) {
				if (obj)
					snprintf(obj, len, "%s", line);
				return true;
			}
		}
		p += l;
		if (*p)
			p++;
	}
	return false;
}

/* ---- the fixture ---- */

FIXTURE(live) {
	struct proc svmm, tvmm, src, dst;
	/* the devices: the two edus, or the two NVMe VFs (use_nvme) */
	char sbdf[32], dbdf[32];
	/*
	 * the source's device may hold work at the switchover (an NVMe
	 * shadow holds what the guest submitted): the target's device runs
	 * it once it runs, before the target VMM starts, so the target's RAM
	 * at start is the source's plus those writes
	 */
	bool held_work;
	bool nvme;
	/*
	 * use_two_devices(): the VM also has NVMe VF 1 (sbdf2), to VF 2
	 * (dbdf2); migctl takes the lists in mig_src and mig_dst
	 */
	bool two;
	char sbdf2[32], dbdf2[32];
	char mig_src[80], mig_dst[80];
	unsigned short port;
	char port_s[8], to[32];
	char vmm_host[PATH_MAX];
	char migctl[PATH_MAX];
	char seed[32];
	bool logs_shown;
};

static void set_profile(const char *bdf, const char *profile)
{
	char path[128];

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/profile", bdf);
	vmm_sysfs_write(path, profile);
}

static void set_trap(const char *bdf, const char *mode)
{
	char path[128];

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/trap_mode", bdf);
	vmm_sysfs_write(path, mode);
}

static const char *profile_of(const char *bdf)
{
	static char p[64];
	char path[128];

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/profile", bdf);
	if (vmm_sysfs_read(path, p, sizeof(p)))
		snprintf(p, sizeof(p), "(unreadable)");
	return p;
}

FIXTURE_SETUP(live)
{
	char self_exe[PATH_MAX];
	const char *env = getenv("MIGCTL");
	ssize_t n;
	int ret;

	mkdir(LOGDIR, 0755);
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	ASSERT_LT(0, n);
	self_exe[n] = 0;
	snprintf(self->vmm_host, sizeof(self->vmm_host),
		 "%s/tools/vmm_host", dirname(dirname(self_exe)));
	ASSERT_EQ(0, access(self->vmm_host, X_OK))
		TH_LOG("%s: %s", self->vmm_host, strerror(errno));
	snprintf(self->migctl, sizeof(self->migctl), "%s",
		 env ? env : "/usr/sbin/migctl");
	ASSERT_EQ(0, access(self->migctl, X_OK))
		TH_LOG("%s: %s", self->migctl, strerror(errno));
	ASSERT_EQ(0, access(IP, X_OK)) TH_LOG("%s: %s", IP, strerror(errno));

	ASSERT_EQ(0, CMD(&res, NETNS_SH, "up"));
	ASSERT_EQ(0, res.status) TH_LOG("netns.sh up: %s%s", res.out, res.err);
	ret = vmm_bind(SRC_BDF, "vfio-mig");
	ASSERT_EQ(0, ret) TH_LOG("binding %s: %s", SRC_BDF, strerror(-ret));
	ret = vmm_bind(DST_BDF, "vfio-mig");
	ASSERT_EQ(0, ret) TH_LOG("binding %s: %s", DST_BDF, strerror(-ret));
	/* what an earlier test may have left */
	mig_dirty_kill(SRC_BDF);
	mig_dirty_kill(DST_BDF);
	set_profile(SRC_BDF, "edu");
	set_profile(DST_BDF, "edu");
	ASSERT_STREQ("edu", profile_of(SRC_BDF));
	ASSERT_STREQ("edu", profile_of(DST_BDF));
	/* a port of its own: a killed listener's may linger */
	self->port = 4800 + getpid() % 1000;
	snprintf(self->port_s, sizeof(self->port_s), "%u", self->port);
	snprintf(self->to, sizeof(self->to), DST_IP ":%u", self->port);
	snprintf(self->seed, sizeof(self->seed), "%#llx",
		 (unsigned long long)(vmm_now_us() ^ getpid()));
	TH_LOG("guest seed %s (vmm_host source --seed), port %u", self->seed,
	       self->port);
	snprintf(self->sbdf, sizeof(self->sbdf), "%s", SRC_BDF);
	snprintf(self->dbdf, sizeof(self->dbdf), "%s", DST_BDF);
	unlink(SVMM_REP);
	unlink(TVMM_REP);
}

/* the nvme compatibility tests' PF changes, undone (end of file) */
static void nvme_pf_undo(void);

FIXTURE_TEARDOWN(live)
{
	nvme_pf_undo();
	proc_reap(&self->src);
	proc_reap(&self->dst);
	proc_reap(&self->svmm);
	proc_reap(&self->tvmm);
	/*
	 * The killed VMMs let go of their devices: a device still held
	 * fails this case (with who holds it), not every later one.
	 */
	EXPECT_EQ(0, vmm_wait_released(SRC_BDF, 10000));
	EXPECT_EQ(0, vmm_wait_released(DST_BDF, 10000));
	if (self->nvme) {
		EXPECT_EQ(0, vmm_wait_released(self->sbdf, 10000));
		EXPECT_EQ(0, vmm_wait_released(self->dbdf, 10000));
	}
	if (self->two) {
		EXPECT_EQ(0, vmm_wait_released(self->sbdf2, 10000));
		EXPECT_EQ(0, vmm_wait_released(self->dbdf2, 10000));
		mig_dirty_kill(self->sbdf2);
		mig_dirty_kill(self->dbdf2);
		set_trap(self->sbdf2, "none");
		set_trap(self->dbdf2, "none");
	}
	EXPECT_EQ(0, CMD(&res, NETNS_SH, "down"));
	mig_dirty_kill(SRC_BDF);
	mig_dirty_kill(DST_BDF);
	set_profile(SRC_BDF, "edu");
	set_profile(DST_BDF, "edu");
	set_trap(SRC_BDF, "none");
	set_trap(DST_BDF, "none");
	if (self->nvme) {
		mig_dirty_kill(self->sbdf);
		mig_dirty_kill(self->dbdf);
		set_trap(self->sbdf, "none");
		set_trap(self->dbdf, "none");
	}
}

/*
 * The test bed's NVMe VF 1 into @src and VF 2 into @dst (32 bytes each),
 * both under vfio-mig with the nvme profile, sharing the test bed's
 * namespace (guest-lib.sh provision_vf), as two hosts' VFs fronting one
 * volume.
 */
static void take_vfs(struct __test_metadata *_metadata, char *src, char *dst)
{
	struct tb_devs t;
	int i, ret;

	ASSERT_EQ(0, tb_devices(&t));
	ASSERT_EQ(TB_NR_VF, t.nr_vf);
	snprintf(src, 32, "%s", t.vf[0]);
	snprintf(dst, 32, "%s", t.vf[1]);
	for (i = 0; i < 2; i++) {
		const char *bdf = i ? dst : src;

		ret = vmm_bind(bdf, "vfio-mig");
		ASSERT_EQ(0, ret) TH_LOG("binding %s: %s", bdf,
					 strerror(-ret));
		mig_dirty_kill(bdf);
		set_profile(bdf, "nvme");
		ASSERT_STREQ("nvme", profile_of(bdf));
	}
}

/* The migration moves NVMe VF 1 to VF 2 instead of edu A to B. */
static void use_nvme(struct __test_metadata *_metadata,
		     FIXTURE_DATA(live) *self)
{
	self->nvme = true;
	take_vfs(_metadata, self->sbdf, self->dbdf);
}

/*
 * The VM has two devices, edu A and NVMe VF 1, migrated together to edu
 * B and VF 2 (Documentation/live-migration.rst, "Several devices of one
 * VM"): vmm_host --dev2 runs a guest program for each, the edu workload
 * and the verified NVMe I/O.
 */
static void use_two_devices(struct __test_metadata *_metadata,
			    FIXTURE_DATA(live) *self)
{
	self->two = true;
	take_vfs(_metadata, self->sbdf2, self->dbdf2);
	snprintf(self->mig_src, sizeof(self->mig_src), "%s,%s", self->sbdf,
		 self->sbdf2);
	snprintf(self->mig_dst, sizeof(self->mig_dst), "%s,%s", self->dbdf,
		 self->dbdf2);
}

static void show_logs(struct __test_metadata *_metadata,
		      FIXTURE_DATA(live) *self)
{
	struct proc *ps[] = { &self->src, &self->dst, &self->svmm,
			      &self->tvmm };
	unsigned int i;

	/* once a case: the first failure's context is the useful one */
	if (self->logs_shown)
		return;
	self->logs_shown = true;
	for (i = 0; i < 4; i++)
		if (ps[i]->pid > 0)
			TH_LOG("---- %s (%s), last lines:\n%s", ps[i]->name,
			       ps[i]->log, tail_of(ps[i]->log, 2500));
}

/* Wait up to @ms for a line starting with @line in @p's log. */
static bool wait_line(struct proc *p, const char *line, int ms)
{
	uint64_t end = vmm_now_us() + ms * 1000ull;

	for (;;) {
		if (line_starts(slurp(p->log, buf, sizeof(buf)), line))
			return true;
		if (proc_poll(p) || vmm_now_us() > end)
			return line_starts(slurp(p->log, buf, sizeof(buf)),
					   line);
		usleep(10000);
	}
}

/* Wait up to @ms for @text in @p's log. */
static bool wait_text(struct proc *p, const char *text, int ms)
{
	uint64_t end = vmm_now_us() + ms * 1000ull;

	for (;;) {
		if (strstr(slurp(p->log, buf, sizeof(buf)), text))
			return true;
		if (proc_poll(p) || vmm_now_us() > end)
			return strstr(slurp(p->log, buf, sizeof(buf)), text);
		usleep(10000);
	}
}

static void start_source_vmm(struct __test_metadata *_metadata,
			     FIXTURE_DATA(live) *self, const char *const extra[])
{
	char *argv[24] = { self->vmm_host, "source", self->sbdf, "--ram-mib",
			   RAM_MIB, "--seed", self->seed, "--report",
			   SVMM_REP };
	int n = 9;

	if (self->two) {
		argv[n++] = "--dev2";
		argv[n++] = self->sbdf2;
		argv[n++] = "--ram-mib";
		argv[n++] = RAM_MIB_2DEV;
	}

	while (extra && *extra && n < 22)
		argv[n++] = (char *)*extra++;
	ASSERT_EQ(0, proc_start(&self->svmm, "source VMM", SVMM_LOG, argv));
	ASSERT_TRUE(wait_line(&self->svmm, "ready", 30000)) {
		show_logs(_metadata, self);
		TH_LOG("the source VMM did not get ready");
	}
}

static void start_target_vmm(struct __test_metadata *_metadata,
			     FIXTURE_DATA(live) *self)
{
	char *argv[] = { self->vmm_host, "target", self->dbdf, "--ram-mib",
			 RAM_MIB, "--run-ms", TARGET_RUN_MS, "--report",
			 TVMM_REP, self->two ? "--dev2" : NULL, self->dbdf2,
			 "--ram-mib", RAM_MIB_2DEV, NULL };

	ASSERT_EQ(0, proc_start(&self->tvmm, "target VMM", TVMM_LOG, argv));
	ASSERT_TRUE(wait_line(&self->tvmm, "ready", 30000)) {
		show_logs(_metadata, self);
		TH_LOG("the target VMM did not get ready");
	}
}

/* Does @extra name credentials (or --insecure)? */
/* Whether @extra holds option @opt. */
static bool has_opt(const char *const extra[], const char *opt)
{
	for (; extra && *extra; extra++)
		if (!strcmp(*extra, opt))
			return true;
	return false;
}

static bool has_sec(const char *const extra[])
{
	for (; extra && *extra; extra++)
		if (!strcmp(*extra, "--tls-creds") || !strcmp(*extra, "--psk-file") ||
		    !strcmp(*extra, "--insecure"))
			return true;
	return false;
}

/*
 * `ip netns exec hostb migctl -j listen --port P --once [extra...]`, with
 * the test bed's X.509 credentials unless @extra names others.
 */
static void start_listen(struct __test_metadata *_metadata,
			 FIXTURE_DATA(live) *self, const char *const extra[])
{
	char *argv[24] = { IP, "netns", "exec", "hostb", self->migctl, "-j",
			   "listen", "--port", self->port_s, "--once" };
	int n = 10;

	if (!has_sec(extra)) {
		argv[n++] = "--tls-creds";
		argv[n++] = CREDS;
	}
	while (extra && *extra && n < 22)
		argv[n++] = (char *)*extra++;
	ASSERT_EQ(0, proc_start(&self->dst, "migctl listen (hostb)", DST_LOG,
				argv));
	ASSERT_TRUE(wait_text(&self->dst, "\"listening\"", 15000)) {
		show_logs(_metadata, self);
		TH_LOG("migctl listen printed no \"listening\" event");
	}
}

/*
 * `ip netns exec hosta migctl -j migrate SRC --to B:P --target-dev DST ...`,
 * X.509 unless @extra names other credentials.
 */
static void start_migrate(struct __test_metadata *_metadata,
			  FIXTURE_DATA(live) *self, const char *const extra[])
{
	char *argv[32] = { IP, "netns", "exec", "hosta", self->migctl, "-j",
			   "migrate", self->two ? self->mig_src : self->sbdf,
			   "--to", self->to, "--target-dev",
			   self->two ? self->mig_dst : self->dbdf };
	int n = 12;

	if (!has_sec(extra)) {
		argv[n++] = "--tls-creds";
		argv[n++] = CREDS;
	}
	/*
	 * A debug kernel (make check-debug) moves pages ten times slower
	 * than the guest dirties them: a wider downtime budget there, unless
	 * the test sets its own. What is checked does not change.
	 */
	if (getenv("VMIG_SLOW_KERNEL") && !has_opt(extra, "--downtime-ms")) {
		argv[n++] = "--downtime-ms";
		argv[n++] = "5000";
	}
	/*
	 * The NVMe workload dirties pages about as fast as the TCG test bed
	 * moves them (6.1: about 3 MiB/s each way), so its rounds may end at
	 * the round limit a few hundred ms above the budget. The NVMe cases
	 * check the I/O across the switchover, not convergence (edu's do):
	 * they switch over at the limit, unless the test sets the limit.
	 */
	if ((self->nvme || self->two) && !has_opt(extra, "--max-rounds") &&
	    !has_opt(extra, "--on-max-rounds")) {
		argv[n++] = "--on-max-rounds";
		argv[n++] = "switchover";
	}
	while (extra && *extra && n < 30)
		argv[n++] = (char *)*extra++;
	ASSERT_EQ(0, proc_start(&self->src, "migctl migrate (hosta)", SRC_LOG,
				argv));
}

/* The value of @key in the report @path (decimal), or ~0. */
static uint64_t rep_u64(const char *path, const char *key)
{
	uint64_t v = ~0ull;

	slurp(path, buf, sizeof(buf));
	json_get_u64(buf, key, &v);
	return v;
}

static const char *rep_str(const char *path, const char *key)
{
	static char v[8][512];
	static int i;

	i = (i + 1) % 8;
	slurp(path, buf, sizeof(buf));
	if (json_get_str(buf, key, v[i], sizeof(v[i])))
		snprintf(v[i], sizeof(v[i]), "(no %s)", key);
	return v[i];
}

/* The text of @key's value in the report @path (a number, say). */
static const char *rep_raw(const char *path, const char *key)
{
	static char v[8][64];
	static int i;
	char pat[80];
	const char *p;
	size_t n;

	i = (i + 1) % 8;
	snprintf(v[i], sizeof(v[i]), "?");
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(slurp(path, buf, sizeof(buf)), pat);
	if (!p)
		return v[i];
	p += strlen(pat);
	n = strcspn(p, ",\n}");
	if (n >= sizeof(v[i]))
		n = sizeof(v[i]) - 1;
	memcpy(v[i], p, n);
	v[i][n] = 0;
	return v[i];
}

static int rep_bool(const char *path, const char *key)
{
	bool b;

	slurp(path, buf, sizeof(buf));
	return json_get_bool(buf, key, &b) ? -1 : b;
}

/* ---- a migration that works ---- */

/* A failed check with a message, outside the EXPECT macros (loops). */
#define ADD_FAILURE_MSG(_metadata, fmt, ...) do {			\
		TH_LOG(fmt, ##__VA_ARGS__);				\
		(_metadata)->exit_code = KSFT_FAIL;			\
	} while (0)

/* The seq of the last @phase in a VMM report's "phases" ("begin/7:0 ..."). */
static long vmm_phase_seq(const char *phases, const char *phase)
{
	char pat[32];
	const char *p = phases, *hit = NULL;

	snprintf(pat, sizeof(pat), "%s/", phase);
	while ((p = strstr(p, pat))) {
		if (p == phases || p[-1] == ' ')
			hit = p;
		p += strlen(pat);
	}
	return hit ? strtol(hit + strlen(pat), NULL, 10) : -1;
}

/*
 * Each phase migctl reports (its "phase" events of @role in @log) is the
 * one the VMM acked: same seq, the kernel's number for it.
 */
static void check_phase_seqs(struct __test_metadata *_metadata,
			     const char *log, const char *role,
			     const char *report, const char *const phases[])
{
	char obj[4096], vmm[1024];
	uint64_t seq;
	int i;

	snprintf(vmm, sizeof(vmm), "%s", rep_str(report, "phases"));
	slurp(log, buf, sizeof(buf));
	for (i = 0; phases[i]; i++) {
		if (!phase_event(buf, role, phases[i], obj, sizeof(obj))) {
			ADD_FAILURE_MSG(_metadata, "no %s phase event from the %s migctl",
					phases[i], role);
			continue;
		}
		if (json_get_u64(obj, "seq", &seq)) {
			ADD_FAILURE_MSG(_metadata, "the %s migctl's phase event has no \"seq\": %s",
					role, obj);
			continue;
		}
		EXPECT_EQ(vmm_phase_seq(vmm, phases[i]), (long)seq)
			TH_LOG("%s: migctl says seq %llu, the %s VMM acked %s",
			       phases[i], (unsigned long long)seq, role, vmm);
	}
}

static void check_migrated(struct __test_metadata *_metadata,
			   FIXTURE_DATA(live) *self, unsigned int aborts,
			   bool check_seqs)
{
	static const char *const regs[] = {
		"reg_liveness", "reg_factorial", "reg_status",
		"reg_irq_status", "reg_dma_src", "reg_dma_dst",
		"reg_dma_count", "reg_dma_cmd",
	};
	char sum[4096], ev[4096];
	uint64_t rounds = 0, total = 0, down = 0, nrounds, sdig, tdig;
	unsigned int i;

	ASSERT_TRUE(proc_wait(&self->src, 90000)) {
		show_logs(_metadata, self);
		TH_LOG("migctl migrate did not finish in 90 s");
	}
	ASSERT_TRUE(proc_wait(&self->dst, 20000)) {
		show_logs(_metadata, self);
		TH_LOG("migctl listen --once did not finish");
	}
	EXPECT_EQ(0, self->src.status) {
		show_logs(_metadata, self);
		TH_LOG("migctl migrate exited %d, want 0 (migrated)",
		       self->src.status);
	}
	EXPECT_EQ(0, self->dst.status)
		TH_LOG("migctl listen --once exited %d, want 0",
		       self->dst.status);
	/* the source VMM committed and left; the target ran the guest */
	ASSERT_TRUE(proc_wait(&self->svmm, 20000)) {
		show_logs(_metadata, self);
		TH_LOG("the source VMM is still running after the migration");
	}
	ASSERT_TRUE(proc_wait(&self->tvmm, 30000)) {
		show_logs(_metadata, self);
		TH_LOG("the target VMM did not finish its run");
	}
	if (self->svmm.status || self->tvmm.status ||
	    self->src.status || self->dst.status)
		show_logs(_metadata, self);
	EXPECT_EQ(0, self->svmm.status)
		TH_LOG("source VMM: %s", rep_str(SVMM_REP, "why"));
	EXPECT_EQ(0, self->tvmm.status)
		TH_LOG("target VMM: %s", rep_str(TVMM_REP, "why"));
	EXPECT_STREQ("committed", rep_str(SVMM_REP, "result"));
	EXPECT_STREQ("started", rep_str(TVMM_REP, "result"));
	EXPECT_EQ(aborts, rep_u64(SVMM_REP, "aborts"))
		TH_LOG("source VMM phases: %s", rep_str(SVMM_REP, "phases"));
	EXPECT_GE(aborts, rep_u64(TVMM_REP, "aborts"))
		TH_LOG("target VMM phases: %s", rep_str(TVMM_REP, "phases"));
	if (aborts) {
		EXPECT_LT(0, rep_u64(SVMM_REP, "steps_after_abort"))
			TH_LOG("the source's guest did not run after the abort");
	}

	/* RAM: the target's at start is the source's at the switchover */
	sdig = rep_u64(SVMM_REP, "ram_digest");
	tdig = rep_u64(TVMM_REP, "ram_digest");
	ASSERT_NE(~0ull, sdig) TH_LOG("no RAM digest in the source's report");
	ASSERT_NE(~0ull, tdig) TH_LOG("no RAM digest in the target's report");
	if (self->held_work)
		TH_LOG("RAM digests: source %llu at the switchover, target %llu at start (after its device ran the held work): not compared; the guest's checks are",
		       (unsigned long long)sdig, (unsigned long long)tdig);
	else
		EXPECT_EQ(sdig, tdig)
			TH_LOG("target RAM digest %llu != source RAM digest %llu at the switchover (target: %s)",
			       (unsigned long long)tdig,
			       (unsigned long long)sdig,
			       rep_str(TVMM_REP, "why"));
	/*
	 * The device: edu's registers as the source left them at the pause
	 * (an NVMe controller's are checked by the target VMM: regs_ok).
	 */
	for (i = 0; !self->nvme && i < ARRAY_SIZE(regs); i++) {
		uint64_t a = rep_u64(SVMM_REP, regs[i]);
		uint64_t b = rep_u64(TVMM_REP, regs[i]);

		/*
		 * A vCPU paused in its poll of a transfer (lmvmm.h
		 * mid_step): the transfer, carried over, may have ended
		 * by the target's start; its other bits stay.
		 */
		if (!strcmp(regs[i], "reg_dma_cmd") && a != ~0ull &&
		    b != ~0ull) {
			a &= ~(uint64_t)EDU_DMA_START;
			b &= ~(uint64_t)EDU_DMA_START;
		}

		EXPECT_NE(~0ull, a) TH_LOG("%s missing", regs[i]);
		EXPECT_EQ(a, b) TH_LOG("%s: source %#llx, target %#llx",
				       regs[i], (unsigned long long)a,
				       (unsigned long long)b);
	}
	/* the guest's own checks on the target, and its progress there */
	EXPECT_EQ(1, rep_bool(TVMM_REP, "regs_ok"))
		TH_LOG("%s", rep_str(TVMM_REP, "why"));
	EXPECT_EQ(1, rep_bool(TVMM_REP, "buffer_ok"))
		TH_LOG("%s", rep_str(TVMM_REP, "why"));
	EXPECT_EQ(1, rep_bool(TVMM_REP, "pages_ok"))
		TH_LOG("%s", rep_str(TVMM_REP, "why"));
	EXPECT_EQ(1, rep_bool(TVMM_REP, "model_ok"))
		TH_LOG("%s", rep_str(TVMM_REP, "why"));
	EXPECT_EQ(rep_u64(SVMM_REP, "seed"), rep_u64(TVMM_REP, "seed"));
	EXPECT_EQ(rep_u64(SVMM_REP, "steps"),
		  rep_u64(TVMM_REP, "steps_before"))
		TH_LOG("the target's guest did not start where the source's stopped");
	EXPECT_LT(rep_u64(TVMM_REP, "steps_before"),
		  rep_u64(TVMM_REP, "steps"))
		TH_LOG("the guest made no progress on the target");
	EXPECT_EQ(0, rep_u64(TVMM_REP, "errors"));

	/* what migctl said */
	slurp(SRC_LOG, buf, sizeof(buf));
	ASSERT_EQ(1, events_of(buf, "summary", "source", sum, sizeof(sum)))
		TH_LOG("migctl migrate: want one summary event:\n%s", buf);
	EXPECT_EQ(0, json_get_str(sum, "result", ev, sizeof(ev)));
	EXPECT_STREQ("migrated", ev);
	EXPECT_EQ(0, json_get_u64(sum, "rounds", &rounds));
	EXPECT_EQ(0, json_get_u64(sum, "total_ms", &total));
	EXPECT_EQ(0, json_get_u64(sum, "downtime_ms", &down));
	EXPECT_LE(1, rounds);
	nrounds = events_of(buf, "round", "source", ev, sizeof(ev));
	EXPECT_LE(1, nrounds) TH_LOG("no round events:\n%s", buf);
	EXPECT_EQ(rounds, nrounds)
		TH_LOG("summary says %llu rounds, %llu round events",
		       (unsigned long long)rounds,
		       (unsigned long long)nrounds);
	EXPECT_EQ(1, events_of(buf, "final", "source", NULL, 0))
		TH_LOG("want one \"final\" event (the switchover transfer)");
	EXPECT_TRUE(phase_event(buf, "source", "begin", NULL, 0));
	EXPECT_TRUE(phase_event(buf, "source", "pause", NULL, 0));
	EXPECT_TRUE(phase_event(buf, "source", "commit", NULL, 0));
	EXPECT_FALSE(phase_event(buf, "source", "abort", NULL, 0));
	EXPECT_LT(0, down);
	EXPECT_LE(down, total);
	if (check_seqs) {
		check_phase_seqs(_metadata, SRC_LOG, "source", SVMM_REP,
				 (const char *const[]){ "begin", "pause",
							"commit", NULL });
		check_phase_seqs(_metadata, DST_LOG, "target", TVMM_REP,
				 (const char *const[]){ "prepare", "start",
							NULL });
	}
	TH_LOG("migrated: %llu rounds, total %llu ms, downtime %llu ms; source VMM: pause %s ms, %s pages dirty-marked; guest %s device steps on the source, %s on the target",
	       (unsigned long long)rounds, (unsigned long long)total,
	       (unsigned long long)down, rep_raw(SVMM_REP, "pause_ms"),
	       rep_raw(SVMM_REP, "mark_pages"), rep_raw(SVMM_REP, "steps"),
	       rep_raw(TVMM_REP, "steps"));
	TH_LOG("summary: %s", sum);
}

/*
 * Both sides said how the link was secured: TLS 1.3, and with the guest
 * kernel's tls module loaded, the records in kTLS both ways.
 */
static void check_secured(struct __test_metadata *_metadata)
{
	const char *logs[] = { SRC_LOG, DST_LOG }, *roles[] = { "source", "target" };
	bool ktls = !access("/sys/module/tls", F_OK);
	char ev[1024], v[64];
	int i;

	for (i = 0; i < 2; i++) {
		slurp(logs[i], buf, sizeof(buf));
		ASSERT_EQ(1, events_of(buf, "secured", roles[i], ev, sizeof(ev)))
			TH_LOG("%s:\n%s", roles[i], buf);
		EXPECT_EQ(0, json_get_str(ev, "protocol", v, sizeof(v)));
		EXPECT_EQ(0, strncmp(v, "TLS1.3", 6)) TH_LOG("%s", ev);
		EXPECT_EQ(0, json_get_str(ev, "ktls", v, sizeof(v)));
		if (ktls)
			EXPECT_STREQ("tx+rx", v);
		TH_LOG("%s", ev);
	}
}

/*
 * Which way the pages went: staged by the source's kernel and sent from
 * there (pages_staged), landed by the target's from the socket
 * (pages_landed), as each side's summary says.
 */
static void check_page_path(struct __test_metadata *_metadata, bool staged,
			    bool landed)
{
	char sum[4096];
	bool v = !staged;

	slurp(SRC_LOG, buf, sizeof(buf));
	ASSERT_EQ(1, events_of(buf, "summary", "source", sum, sizeof(sum)));
	EXPECT_EQ(0, json_get_bool(sum, "pages_staged", &v)) TH_LOG("%s", sum);
	EXPECT_EQ(staged, v) TH_LOG("%s", sum);
	slurp(DST_LOG, buf, sizeof(buf));
	ASSERT_EQ(1, events_of(buf, "summary", "target", sum, sizeof(sum)));
	v = !landed;
	EXPECT_EQ(0, json_get_bool(sum, "pages_landed", &v)) TH_LOG("%s", sum);
	EXPECT_EQ(landed, v) TH_LOG("%s", sum);
}

/*
 * A verified migration of a guest that runs a while first, its RAM full of
 * data (pages move as data, not as zero records); @extra as both migctls
 * take it (NULL: X.509).
 */
static void migrate_busy(struct __test_metadata *_metadata,
			 FIXTURE_DATA(live) *self, const char *const extra[])
{
	start_source_vmm(_metadata, self, (const char *const[]){ "--fill",
								 NULL });
	start_target_vmm(_metadata, self);
	start_listen(_metadata, self, extra);
	usleep(500000);
	start_migrate(_metadata, self, extra);
	check_migrated(_metadata, self, 0, true);
}

TEST_F_TIMEOUT(live, migrate_under_load, 150)
{
	migrate_busy(_metadata, self, NULL);
	check_secured(_metadata);
	/*
	 * kTLS takes staged pages, and gives the target each record's
	 * plaintext by splice(): both only where the guest has kTLS
	 */
	check_page_path(_metadata, !access("/sys/module/tls", F_OK),
			!access("/sys/module/tls", F_OK));
}

/*
 * A plain link: the source's pages staged in its kernel and sent by
 * sendfile(), the target's spliced from the socket into guest memory;
 * then again with --copy-pages on both sides, through migctl's buffers.
 * Both verified as every migration is (RAM, registers, the guest's
 * progress), so the two paths carry the same pages.
 */
TEST_F_TIMEOUT(live, migrate_insecure_pages_staged_and_landed, 150)
{
	migrate_busy(_metadata, self,
		     (const char *const[]){ "--insecure", NULL });
	check_page_path(_metadata, true, true);
}

TEST_F_TIMEOUT(live, migrate_insecure_copy_pages, 150)
{
	migrate_busy(_metadata, self, (const char *const[]){
		"--insecure", "--copy-pages", NULL });
	check_page_path(_metadata, false, false);
}

/*
 * The source's summary of a migration through the shadow (into @sum): it
 * says so, with how long the engage held the guest's accesses (ns).
 */
static uint64_t via_shadow_summary(struct __test_metadata *_metadata,
				   char *sum, size_t len)
{
	uint64_t v = 0;

	slurp(SRC_LOG, buf, sizeof(buf));
	EXPECT_EQ(1, events_of(buf, "summary", "source", sum, len));
	EXPECT_EQ(0, json_get_u64(sum, "shadow_engage_ns", &v)) TH_LOG("%s", sum);
	EXPECT_LT(0, v);
	EXPECT_NE(NULL, strstr(sum, "\"via_shadow\":true")) TH_LOG("%s", sum);
	return v;
}

/* Debugfs ctl file of edu @bdf, into @ctl (160 bytes). */
static const char *edu_ctl(char *ctl, const char *bdf)
{
	snprintf(ctl, 160, "/sys/kernel/debug/vfio-mig/%s/ctl", bdf);
	return ctl;
}

/*
 * Both VMMs and listen started, each VMM's page for its edu named as a
 * VMM would name it (0x103000, vmm_host's LM_SCRATCH_OFF) where asked.
 */
static void start_with_pages(struct __test_metadata *_metadata,
			     FIXTURE_DATA(live) *self, bool src_page,
			     bool dst_page)
{
	char ctl[160];

	start_source_vmm(_metadata, self, NULL);
	if (src_page)
		ASSERT_EQ(0, vmm_sysfs_write(edu_ctl(ctl, SRC_BDF),
					     "scratch 0x103000"));
	start_target_vmm(_metadata, self);
	if (dst_page)
		ASSERT_EQ(0, vmm_sysfs_write(edu_ctl(ctl, DST_BDF),
					     "scratch 0x103000"));
	start_listen(_metadata, self, NULL);
	usleep(500000);
}

/*
 * Through the shadow adapter: the source's edu is read through the page
 * vmm_host keeps for it (lmvmm.h), named as a VMM would name it.
 */
TEST_F_TIMEOUT(live, migrate_via_shadow, 150)
{
	char sum[4096], ctl[160];
	struct lm_shadow sh;
	struct genl nl;
	uint64_t v = 0;

	edu_ctl(ctl, SRC_BDF);
	start_with_pages(_metadata, self, true, false);
	start_migrate(_metadata, self,
		      (const char *const[]){ "--via-shadow", NULL });
	check_migrated(_metadata, self, 0, true);
	v = via_shadow_summary(_metadata, sum, sizeof(sum));
	/* the target's device took the state; the source's shadow went */
	ASSERT_EQ(0, genl_open(&nl, "vfio_mig"));
	ASSERT_EQ(0, lm_shadow_get(&nl, DST_BDF, &sh));
	EXPECT_FALSE(sh.engaged) TH_LOG("the target's shadow still serves");
	EXPECT_LT(0, sh.engage_ns) TH_LOG("the target never engaged a shadow");
	EXPECT_LT(0, sh.handback_ns);
	ASSERT_EQ(0, lm_shadow_get(&nl, SRC_BDF, &sh));
	EXPECT_FALSE(sh.engaged);
	genl_close(&nl);
	ASSERT_EQ(0, vmm_sysfs_write(ctl, "scratch 0"));
	TH_LOG("shadow engage on the source: %.1f us held (migctl: %s)",
	       v / 1e3, sum);
}

/*
 * The device's slow state moves before the stop: with the page vmm_host
 * keeps for it named, migctl prepares the switchover (the source's edu
 * buffer read with the guest running, its DMA held) and waits for the
 * target's ack of the round that carries it (the target's edu loaded with
 * it as it arrived): the switchover acknowledgement. Neither side then
 * runs an edu DMA in the stop, each of which is a 100 ms tick: the wait
 * moved from the stop into pre-copy.
 */
/*
 * The summary's device_held_ms (the guest's device DMA starts held) and
 * the target's own account of its part (wire 1.5), whole ms: the hold
 * covers the downtime and at least @early ms more (the round after a
 * prepare; 0: none), each part of the target's within the window the
 * source saw (its decimal may round up by one).
 */
static void check_held_and_account(struct __test_metadata *_metadata,
				   const char *sum, uint64_t early)
{
	uint64_t held = 0, down = 0, win = 0, part = 0, start = 0, vmm = 0;

	ASSERT_EQ(0, json_get_u64(sum, "device_held_ms", &held)) TH_LOG("%s", sum);
	ASSERT_EQ(0, json_get_u64(sum, "downtime_ms", &down));
	if (early) {
		EXPECT_LE(down + early, held) TH_LOG("%s", sum);
	} else {
		EXPECT_EQ(down, held) TH_LOG("%s", sum);
	}
	ASSERT_EQ(0, json_get_u64(sum, "target_load_ms", &win));
	ASSERT_EQ(0, json_get_u64(sum, "target_device_load_ms", &part))
		TH_LOG("%s", sum);
	EXPECT_LE(part, win + 1) TH_LOG("%s", sum);
	ASSERT_EQ(0, json_get_u64(sum, "commit_ms", &win));
	ASSERT_EQ(0, json_get_u64(sum, "target_start_ms", &start))
		TH_LOG("%s", sum);
	ASSERT_EQ(0, json_get_u64(sum, "target_vmm_start_ms", &vmm));
	EXPECT_LE(start, win + 1) TH_LOG("%s", sum);
	EXPECT_LE(vmm, start + 1) TH_LOG("%s", sum);
	TH_LOG("device DMA held %" PRIu64 " ms, downtime %" PRIu64
	       " ms; target start %" PRIu64 " ms of commit %" PRIu64
	       " ms, its VMM's ack %" PRIu64 " ms", held, down, start, win,
	       vmm);
}

TEST_F_TIMEOUT(live, migrate_early_device_state, 150)
{
	char sum[4096], ev[1024], ctl[160], tctl[160];
	uint64_t ack = 0, stop = 0, load = 0;

	edu_ctl(ctl, SRC_BDF);
	edu_ctl(tctl, DST_BDF);
	start_with_pages(_metadata, self, true, true);
	start_migrate(_metadata, self, NULL);
	check_migrated(_metadata, self, 0, true);
	EXPECT_EQ(0, vmm_sysfs_write(ctl, "scratch 0"));
	EXPECT_EQ(0, vmm_sysfs_write(tctl, "scratch 0"));
	slurp(SRC_LOG, buf, sizeof(buf));
	/* 6.1 too: no PRE_COPY there, the prepare opens the stream */
	ASSERT_EQ(1, events_of(buf, "summary", "source", sum, sizeof(sum)));
	ASSERT_EQ(1, events_of(buf, "prepare", "source", ev, sizeof(ev)))
		TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(ev, "\"early\":true")) TH_LOG("%s", ev);
	EXPECT_NE(NULL, strstr(sum, "\"early\":true")) TH_LOG("%s", sum);
	EXPECT_EQ(0, json_get_u64(sum, "early_ack_ms", &ack));
	EXPECT_EQ(0, json_get_u64(sum, "stop_copy_ms", &stop));
	EXPECT_EQ(0, json_get_u64(sum, "target_load_ms", &load));
	/* the target's buffer write (one tick) came before the stop... */
	EXPECT_LE(100, ack) TH_LOG("%s", sum);
	/* ...and no tick in it, on either side */
	EXPECT_GT(90, stop) TH_LOG("%s", sum);
	EXPECT_GT(90, load) TH_LOG("%s", sum);
	TH_LOG("early state: acked %" PRIu64 " ms after prepare; stop-copy %"
	       PRIu64 " ms, target load %" PRIu64 " ms", ack, stop, load);
	check_held_and_account(_metadata, sum, ack);
}

/*
 * The source's VMM named its page, the target's did not: the target would
 * refuse the early record, and the migration with it. Its ACCEPT says it
 * cannot load early state, and the source moves the state in the stop.
 */
TEST_F_TIMEOUT(live, migrate_target_without_page_moves_state_in_the_stop, 150)
{
	char sum[4096], ev[1024], ctl[160];

	edu_ctl(ctl, SRC_BDF);
	start_with_pages(_metadata, self, true, false);
	start_migrate(_metadata, self, NULL);
	check_migrated(_metadata, self, 0, true);
	EXPECT_EQ(0, vmm_sysfs_write(ctl, "scratch 0"));
	slurp(SRC_LOG, buf, sizeof(buf));
	ASSERT_EQ(1, events_of(buf, "summary", "source", sum, sizeof(sum)));
	ASSERT_EQ(1, events_of(buf, "prepare", "source", ev, sizeof(ev)))
		TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(ev, "\"early\":false")) TH_LOG("%s", ev);
	EXPECT_NE(NULL, strstr(ev, "the target's device cannot load early device state now"))
		TH_LOG("%s", ev);
	EXPECT_NE(NULL, strstr(sum, "\"early\":false")) TH_LOG("%s", sum);
	check_held_and_account(_metadata, sum, 0);
}

/* ---- failures before the commit point ---- */

enum inject { KILL_TARGET, LINK_DOWN, SIGINT_SOURCE, KILL_SOURCE };
enum point { AT_ROUND1, AT_LATER_ROUND, AT_SWITCHOVER, AT_SHADOW };

static const char *const inject_name[] = {
	"kill -9 of the target migctl", "link down", "SIGINT to the source migctl",
	"kill -9 of the source migctl",
};
static const char *const point_name[] = {
	"round 1", "a later round", "the switchover",
	"the switchover, the shadow engaged (--via-shadow)",
};

/* Wait until the migration reaches @at; false if it ended first. */
static bool reach(struct __test_metadata *_metadata,
		  FIXTURE_DATA(live) *self, enum point at)
{
	uint64_t end = vmm_now_us() + 60000000ull;
	char ev[4096];

	while (vmm_now_us() < end) {
		uint64_t round = 0;

		slurp(SRC_LOG, buf, sizeof(buf));
		switch (at) {
		case AT_ROUND1:
			if (phase_event(buf, "source", "begin", NULL, 0))
				return true;
			break;
		case AT_LATER_ROUND:
			if (events_of(buf, "round", "source", ev, sizeof(ev)) &&
			    !json_get_u64(ev, "round", &round) && round >= 2)
				return true;
			break;
		case AT_SWITCHOVER:
		case AT_SHADOW:
			/* the source VMM holds its pause ack (--ack-delay) */
			if (strstr(slurp(SVMM_LOG, buf2, sizeof(buf2)),
				   ": phase pause seq"))
				return true;
			break;
		}
		if (proc_poll(&self->src))
			break;
		usleep(5000);
	}
	show_logs(_metadata, self);
	TH_LOG("the migration never reached %s (migctl migrate %s)",
	       point_name[at], self->src.done ? "ended" : "still runs");
	return false;
}

static void link_set(char *state)
{
	CMD(&res, IP, "-n", "hostb", "link", "set", "veth-b", state);
}

/*
 * The source migctl failed before the commit point: exit 1, a failed
 * summary, a rollback that worked when phases had been announced.
 */
static void check_source_failed(struct __test_metadata *_metadata,
				FIXTURE_DATA(live) *self, bool announced)
{
	char sum[4096], ev[4096];
	bool ok = false;
	uint64_t code = ~0ull;

	ASSERT_TRUE(proc_wait(&self->src, 45000)) {
		show_logs(_metadata, self);
		TH_LOG("migctl migrate did not give up within 45 s");
	}
	EXPECT_EQ(1, self->src.status) {
		show_logs(_metadata, self);
		TH_LOG("migctl migrate exited %d, want 1 (failed, rolled back)",
		       self->src.status);
	}
	slurp(SRC_LOG, buf, sizeof(buf));
	EXPECT_EQ(1, events_of(buf, "summary", "source", sum, sizeof(sum)))
		TH_LOG("want one summary event:\n%s", buf);
	EXPECT_EQ(0, json_get_str(sum, "result", ev, sizeof(ev)));
	EXPECT_STREQ("failed", ev) TH_LOG("summary: %s", sum);
	EXPECT_EQ(0, json_get_u64(sum, "exit", &code));
	EXPECT_EQ(1, code);
	EXPECT_FALSE(phase_event(buf, "source", "commit", NULL, 0))
		TH_LOG("a commit was announced:\n%s", buf);
	if (announced) {
		EXPECT_LE(1, events_of(buf, "rollback", "source", ev,
				       sizeof(ev)))
			TH_LOG("no rollback event:\n%s", buf);
		EXPECT_EQ(0, json_get_bool(ev, "ok", &ok));
		EXPECT_TRUE(ok) TH_LOG("rollback: %s", ev);
	}
}

/*
 * The source VMM's guest runs on after an abort (or after nothing) and
 * its checks hold; the target VMM saw an abort or nothing, never start.
 * Both VMMs are stopped (SIGTERM) here.
 */
static void check_vmms_after_failure(struct __test_metadata *_metadata,
				     FIXTURE_DATA(live) *self, bool announced)
{
	const char *ph;

	EXPECT_FALSE(proc_poll(&self->svmm)) {
		show_logs(_metadata, self);
		TH_LOG("the source VMM exited (%d) after a failed migration",
		       self->svmm.status);
	}
	if (announced) {
		EXPECT_TRUE(wait_text(&self->svmm, ": phase abort seq",
				      10000)) {
			show_logs(_metadata, self);
			TH_LOG("the source VMM got no abort");
		}
	}
	/* the guest goes on a while on the source, then is checked */
	usleep(1500000);
	proc_signal(&self->svmm, SIGTERM);
	ASSERT_TRUE(proc_wait(&self->svmm, 20000))
		TH_LOG("the source VMM did not stop on SIGTERM");
	EXPECT_EQ(0, self->svmm.status) {
		show_logs(_metadata, self);
		TH_LOG("source VMM: %s", rep_str(SVMM_REP, "why"));
	}
	ph = rep_str(SVMM_REP, "phases");
	EXPECT_EQ(1, rep_bool(SVMM_REP, "ok"))
		TH_LOG("source VMM: %s", rep_str(SVMM_REP, "why"));
	EXPECT_EQ(1, rep_bool(SVMM_REP, "buffer_ok"))
		TH_LOG("source VMM: %s", rep_str(SVMM_REP, "why"));
	EXPECT_EQ(1, rep_bool(SVMM_REP, "pages_ok"))
		TH_LOG("source VMM: %s", rep_str(SVMM_REP, "why"));
	EXPECT_EQ(1, rep_bool(SVMM_REP, "model_ok"))
		TH_LOG("source VMM: %s", rep_str(SVMM_REP, "why"));
	EXPECT_EQ(0, rep_u64(SVMM_REP, "errors"));
	EXPECT_EQ(0, rep_u64(SVMM_REP, "commits")) TH_LOG("phases: %s", ph);
	if (announced) {
		EXPECT_STREQ("aborted", rep_str(SVMM_REP, "result"))
			TH_LOG("phases: %s", ph);
		EXPECT_LE(1, rep_u64(SVMM_REP, "aborts"))
			TH_LOG("phases: %s", ph);
		EXPECT_STREQ("RUNNING",
			     rep_str(SVMM_REP, "state_after_abort"));
		EXPECT_LT(0, rep_u64(SVMM_REP, "steps_after_abort"))
			TH_LOG("the guest made no device step after the abort");
	} else {
		EXPECT_EQ(0, rep_u64(SVMM_REP, "begins"))
			TH_LOG("phases: %s", ph);
	}
	TH_LOG("source VMM after the failure: phases %s; %s device steps (%s after the abort), %s results checked",
	       ph, rep_raw(SVMM_REP, "steps"),
	       rep_raw(SVMM_REP, "steps_after_abort"),
	       rep_raw(SVMM_REP, "checks"));

	if (self->tvmm.pid <= 0)
		return;
	EXPECT_FALSE(proc_poll(&self->tvmm)) {
		show_logs(_metadata, self);
		TH_LOG("the target VMM exited (%d)", self->tvmm.status);
	}
	if (announced && self->dst.pid > 0)
		/* the target migctl gone, its prepare is taken back */
		wait_text(&self->tvmm, ": phase abort seq", 10000);
	proc_signal(&self->tvmm, SIGTERM);
	ASSERT_TRUE(proc_wait(&self->tvmm, 20000));
	EXPECT_EQ(0, self->tvmm.status)
		TH_LOG("target VMM: %s", rep_str(TVMM_REP, "why"));
	ph = rep_str(TVMM_REP, "phases");
	EXPECT_EQ(0, rep_u64(TVMM_REP, "starts")) TH_LOG("phases: %s", ph);
	/* a prepared target was told to abort */
	if (rep_u64(TVMM_REP, "prepares") &&
	    rep_u64(TVMM_REP, "prepares") != ~0ull) {
		EXPECT_LE(1, rep_u64(TVMM_REP, "aborts"))
			TH_LOG("the target VMM was prepared and never aborted: %s",
			       ph);
	}
	TH_LOG("target VMM: phases %s", ph);
}

static void fail_migration(struct __test_metadata *_metadata,
			   FIXTURE_DATA(live) *self, enum inject what,
			   enum point at, bool retry)
{
	const char *lextra[4] = { NULL }, *mextra[16] = { NULL };
	const char *sextra[8] = { NULL };
	bool switchover, via_shadow = at == AT_SHADOW;
	char ev[4096], why[1024], ctl[160];
	int nl = 0, nm = 0, ns = 0, rounds;
	struct lm_shadow sh = {};
	uint64_t handback_ns = 0;
	struct genl g;

	TH_LOG("%s during %s%s", inject_name[what], point_name[at],
	       retry ? ", then a migration that works" : "");
	if (at == AT_SWITCHOVER || via_shadow) {
		/* the window: the source VMM holds its pause ack 3 s */
		sextra[ns++] = "--ack-delay";
		sextra[ns++] = "pause:3000";
	} else {
		/*
		 * Rounds that never converge: migctl switches over when a
		 * round leaves no dirty page, so the guest dirties a page a
		 * millisecond and the VMM reports them every 5 ms.
		 */
		sextra[ns++] = "--page-rate";
		sextra[ns++] = "1000";
		sextra[ns++] = "--mark-ms";
		sextra[ns++] = "5";
	}
	start_source_vmm(_metadata, self, sextra);
	snprintf(ctl, sizeof(ctl), "/sys/kernel/debug/vfio-mig/%s/ctl",
		 SRC_BDF);
	if (via_shadow) {
		/* the page vmm_host keeps for it, as in migrate_via_shadow */
		ASSERT_EQ(0, vmm_sysfs_write(ctl, "scratch 0x103000"));
		mextra[nm++] = "--via-shadow";
	}
	start_target_vmm(_metadata, self);
	if (what == LINK_DOWN) {
		lextra[nl++] = "--timeout-ms";
		lextra[nl++] = "1500";
		mextra[nm++] = "--timeout-ms";
		mextra[nm++] = "1500";
		/* the target waits that long more (> the 3 s pause hold) */
		mextra[nm++] = "--vmm-timeout-ms";
		mextra[nm++] = "5000";
	}
	if (at != AT_SWITCHOVER && !via_shadow) {
		/*
		 * Rounds until the failure: never converged (a page pending
		 * at 2 MiB/s is 2 ms of downtime), no max-rounds; round 1
		 * (1-2 MiB of non-zero pages) lasts a while.
		 */
		mextra[nm++] = "--downtime-ms";
		mextra[nm++] = "1";
		mextra[nm++] = "--max-rounds";
		mextra[nm++] = "1000";
		mextra[nm++] = "--bandwidth";
		mextra[nm++] = "2M";
	}
	start_listen(_metadata, self, lextra);
	start_migrate(_metadata, self, mextra);
	ASSERT_TRUE(reach(_metadata, self, at));
	ASSERT_EQ(0, genl_open(&g, "vfio_mig"));
	if (via_shadow) {
		/* migctl engages before it announces the pause */
		ASSERT_EQ(0, lm_shadow_get(&g, SRC_BDF, &sh));
		ASSERT_TRUE(sh.engaged) TH_LOG("the shadow was not engaged");
		handback_ns = sh.handback_ns;	/* an earlier test's */
	}

	switch (what) {
	case KILL_TARGET:
		proc_signal(&self->dst, SIGKILL);
		break;
	case LINK_DOWN:
		link_set("down");
		break;
	case SIGINT_SOURCE:
		proc_signal(&self->src, SIGINT);
		break;
	case KILL_SOURCE:
		proc_signal(&self->src, SIGKILL);
		break;
	}
	/* where the migration was when it broke */
	slurp(SRC_LOG, buf, sizeof(buf));
	rounds = events_of(buf, "round", "source", NULL, 0);
	switchover = events_of(buf, "switchover", "source", NULL, 0) > 0;
	TH_LOG("injected after %d round events of the source migctl%s",
	       rounds, switchover ? ", at the switchover" : "");
	switch (at) {
	case AT_ROUND1:
		EXPECT_EQ(0, rounds) TH_LOG("round 1 was over");
		break;
	case AT_LATER_ROUND:
		EXPECT_LE(2, rounds);
		EXPECT_FALSE(switchover) TH_LOG("the rounds were over");
		break;
	case AT_SWITCHOVER:
	case AT_SHADOW:
		EXPECT_TRUE(switchover);
		break;
	}
	if (what == KILL_SOURCE) {
		ASSERT_TRUE(proc_wait(&self->src, 10000));
		EXPECT_EQ(128 + SIGKILL, self->src.status);
	} else {
		check_source_failed(_metadata, self, true);
	}
	slurp(SRC_LOG, buf, sizeof(buf));
	if (events_of(buf, "summary", "source", ev, sizeof(ev)) &&
	    !json_get_str(ev, "error", why, sizeof(why)))
		TH_LOG("source migctl: %s", why);
	ASSERT_TRUE(proc_wait(&self->dst, 20000)) {
		show_logs(_metadata, self);
		TH_LOG("migctl listen did not end");
	}
	if (what == KILL_TARGET) {
		EXPECT_EQ(128 + SIGKILL, self->dst.status);
	} else {
		EXPECT_EQ(1, self->dst.status)
			TH_LOG("migctl listen --once exited %d, want 1",
			       self->dst.status);
	}
	slurp(DST_LOG, buf, sizeof(buf));
	if (events_of(buf, "summary", "target", ev, sizeof(ev)) &&
	    !json_get_str(ev, "error", why, sizeof(why)))
		TH_LOG("target migctl: %s", why);
	if (what == LINK_DOWN)
		link_set("up");
	if (via_shadow) {
		uint64_t end = vmm_now_us() + 10000000ull;

		/*
		 * The engage was the migration's: it ends with it, however
		 * migctl went (its own rollback, or the kernel's when the
		 * controller died).
		 */
		do {
			ASSERT_EQ(0, lm_shadow_get(&g, SRC_BDF, &sh));
			if (!sh.engaged)
				break;
			usleep(20000);
		} while (vmm_now_us() < end);
		EXPECT_FALSE(sh.engaged)
			TH_LOG("the source's shadow still serves 10 s after migctl went");
		EXPECT_NE(handback_ns, sh.handback_ns)
			TH_LOG("no hand-back since the engage");
		TH_LOG("the source's shadow was handed back (accesses held %.1f us)",
		       sh.handback_ns / 1e3);
		if (what != KILL_SOURCE) {
			char act[32] = "";
			bool ok = false;

			/* migctl's rollback says so: engage, then release */
			slurp(SRC_LOG, buf, sizeof(buf));
			EXPECT_EQ(2, events_of(buf, "shadow", "source", ev,
					       sizeof(ev)));
			EXPECT_EQ(0, json_get_str(ev, "action", act,
						  sizeof(act)));
			EXPECT_STREQ("release", act);
			EXPECT_EQ(0, json_get_bool(ev, "ok", &ok));
			EXPECT_TRUE(ok) TH_LOG("release: %s", ev);
		}
		EXPECT_EQ(0, vmm_sysfs_write(ctl, "scratch 0"));
	}
	genl_close(&g);

	if (retry) {
		/* the same VMMs, a second attempt */
		ASSERT_TRUE(wait_text(&self->svmm, ": phase abort seq", 10000)) {
			show_logs(_metadata, self);
			TH_LOG("the source VMM got no abort");
		}
		if (!strstr(slurp(TVMM_LOG, buf, sizeof(buf)),
			    "phase prepare")) {
			TH_LOG("(the target VMM was not prepared)");
		} else {
			ASSERT_TRUE(wait_text(&self->tvmm, ": phase abort seq",
					      10000)) {
				show_logs(_metadata, self);
				TH_LOG("the target VMM got no abort");
			}
		}
		usleep(1000000);
		start_listen(_metadata, self, NULL);
		start_migrate(_metadata, self, NULL);
		check_migrated(_metadata, self, 1, false);
		return;
	}
	check_vmms_after_failure(_metadata, self, true);
}

TEST_F_TIMEOUT(live, kill_target_migctl_round1_then_migrate, 150)
{
	fail_migration(_metadata, self, KILL_TARGET, AT_ROUND1, true);
}

TEST_F_TIMEOUT(live, kill_target_migctl_later_round, 120)
{
	fail_migration(_metadata, self, KILL_TARGET, AT_LATER_ROUND, false);
}

TEST_F_TIMEOUT(live, kill_target_migctl_switchover, 120)
{
	fail_migration(_metadata, self, KILL_TARGET, AT_SWITCHOVER, false);
}

TEST_F_TIMEOUT(live, link_down_later_round, 120)
{
	fail_migration(_metadata, self, LINK_DOWN, AT_LATER_ROUND, false);
}

TEST_F_TIMEOUT(live, link_down_switchover, 120)
{
	fail_migration(_metadata, self, LINK_DOWN, AT_SWITCHOVER, false);
}

/* the kernel rolls the source back when its controller dies */
TEST_F_TIMEOUT(live, kill_source_migctl_later_round, 120)
{
	fail_migration(_metadata, self, KILL_SOURCE, AT_LATER_ROUND, false);
}

/* ... and hands the device back from the shadow its controller engaged */
TEST_F_TIMEOUT(live, kill_source_migctl_via_shadow, 120)
{
	fail_migration(_metadata, self, KILL_SOURCE, AT_SHADOW, false);
}

/* migctl's own rollback hands it back too (the target went) */
TEST_F_TIMEOUT(live, kill_target_migctl_via_shadow, 120)
{
	fail_migration(_metadata, self, KILL_TARGET, AT_SHADOW, false);
}

TEST_F_TIMEOUT(live, sigint_source_migctl_then_migrate, 150)
{
	fail_migration(_metadata, self, SIGINT_SOURCE, AT_LATER_ROUND, true);
}

/* ---- a target that refuses ---- */

/* Any "refused" event naming @field, on either side. */
static bool refused_on(const char *field, char *obj, size_t len)
{
	const char *logs[] = { SRC_LOG, DST_LOG };
	char v[64];
	int i;

	for (i = 0; i < 2; i++) {
		slurp(logs[i], buf, sizeof(buf));
		if (events_of(buf, "refused", NULL, obj, len) &&
		    !json_get_str(obj, "field", v, sizeof(v)) &&
		    !strcmp(v, field))
			return true;
	}
	return false;
}

/* The target edu has another profile: the handshake refuses it. */
TEST_F_TIMEOUT(live, refuse_target_profile, 90)
{
	char ev[4096] = "";

	set_profile(DST_BDF, "generic");
	ASSERT_STREQ("generic", profile_of(DST_BDF))
		TH_LOG("cannot give %s the generic profile", DST_BDF);
	start_source_vmm(_metadata, self, NULL);
	start_target_vmm(_metadata, self);
	start_listen(_metadata, self, NULL);
	start_migrate(_metadata, self, NULL);
	check_source_failed(_metadata, self, false);
	EXPECT_TRUE(refused_on("profile", ev, sizeof(ev))) {
		show_logs(_metadata, self);
		TH_LOG("no \"refused\" event for the profile");
	}
	TH_LOG("refused: %s", ev);
	ASSERT_TRUE(proc_wait(&self->dst, 20000));
	EXPECT_EQ(1, self->dst.status);
	check_vmms_after_failure(_metadata, self, false);
}

/* No VMM has the target device open: the target refuses. */
TEST_F_TIMEOUT(live, refuse_target_not_open, 90)
{
	start_source_vmm(_metadata, self, NULL);
	start_listen(_metadata, self, NULL);
	start_migrate(_metadata, self, NULL);
	check_source_failed(_metadata, self, false);
	slurp(SRC_LOG, buf, sizeof(buf));
	EXPECT_LE(1, events_of(buf, "refused", NULL, NULL, 0) +
		  events_of(buf, "error", NULL, NULL, 0))
		TH_LOG("the source migctl named no cause:\n%s", buf);
	ASSERT_TRUE(proc_wait(&self->dst, 20000));
	EXPECT_EQ(1, self->dst.status);
	check_vmms_after_failure(_metadata, self, false);
}

/*
 * A source VMM that opened its device in trap mode none: the device offers
 * no migration (the profile would see no doorbell). migctl fails with the
 * device's reason, and the guest goes on on the source.
 */
TEST_F_TIMEOUT(live, refuse_source_trap_none, 90)
{
	static const char *const none[] = { "--trap", "none", NULL };

	start_source_vmm(_metadata, self, none);
	start_target_vmm(_metadata, self);
	start_listen(_metadata, self, NULL);
	start_migrate(_metadata, self, NULL);
	check_source_failed(_metadata, self, false);
	slurp(SRC_LOG, buf, sizeof(buf));
	EXPECT_NE(NULL, strstr(buf, "offers no VFIO migration: trap mode none"))
		TH_LOG("the source migctl did not say why:\n%s", buf);
	check_vmms_after_failure(_metadata, self, false);
}

/* ---- hostile peers (Documentation/live-migration.rst, "Security") ---- */

/* One `migctl migrate` in hosta with @sec options; its exit status. */
static int hostile_migrate(FIXTURE_DATA(live) *self, const char *a,
			   const char *b, const char *c, const char *d)
{
	CMD(&res, IP, "netns", "exec", "hosta", self->migctl, "-j", "migrate",
	    SRC_BDF, "--to", self->to, "--target-dev", DST_BDF,
	    "--timeout-ms", "3000", (char *)a, (char *)b, (char *)c, (char *)d);
	return res.status;
}

/*
 * From hosta, a connection to the target that says nothing, held for
 * @secs: a peer that never starts its TLS handshake. Its pid.
 */
static pid_t silent_peer(unsigned short port, int secs)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	pid_t pid = fork();
	int ns, fd;

	if (pid)
		return pid;
	ns = open("/run/netns/hosta", O_RDONLY);
	if (ns < 0 || setns(ns, CLONE_NEWNET))
		_exit(1);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, DST_IP, &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		_exit(2);
	sleep(secs);
	_exit(0);
}

/*
 * A listen with --allow-peer meets a peer that connects and says nothing
 * (held open throughout), a plain TCP source, a PSK it does not know and
 * a certificate from another CA; each is turned away before the target
 * device or its VMM is touched, the silent one at the handshake deadline,
 * and the same listen --once serves an honest migration meanwhile, while
 * four more silent peers hold all of listen's places (the honest source
 * evicts the oldest).
 */
TEST_F_TIMEOUT(live, hostile_peers_then_migrate, 180)
{
	static const char *const tries[][4] = {
		{ "--insecure", NULL },
		{ "--psk-file", "/etc/vfio-mig/wrong.psk", NULL },
		{ "--tls-creds", ROGUE, "--tls-name", "vmig-target" },
	};
	pid_t silent, silent2[4];
	unsigned int i;
	int st;

	start_source_vmm(_metadata, self, NULL);
	start_target_vmm(_metadata, self);
	start_listen(_metadata, self, (const char *const[]){
		"--tls-creds", CREDS, "--allow-peer", "vmig-source",
		"--allow-dev", DST_BDF, "--timeout-ms", "5000", NULL });
	silent = silent_peer(self->port, 60);
	ASSERT_LT(0, silent);
	for (i = 0; i < ARRAY_SIZE(tries); i++) {
		st = hostile_migrate(self, tries[i][0], tries[i][1],
				     tries[i][2], tries[i][3]);
		EXPECT_EQ(1, st) TH_LOG("migrate %s: exit %d: %s%s",
					tries[i][0], st, res.out, res.err);
		EXPECT_FALSE(proc_poll(&self->dst)) {
			show_logs(_metadata, self);
			TH_LOG("listen --once ended after a hostile peer (%s)",
			       tries[i][0]);
		}
	}
	/* the silent one too, at its handshake deadline (5 s) */
	EXPECT_TRUE(wait_text(&self->dst, "no answer in time", 15000));
	usleep(200000);
	slurp(DST_LOG, buf, sizeof(buf));
	EXPECT_EQ(4, events_of(buf, "summary", "target", NULL, 0))
		TH_LOG("listen:\n%s", buf);
	EXPECT_NE(NULL, strstr(buf, "no answer in time")) TH_LOG("%s", buf);
	EXPECT_EQ(0, events_of(buf, "accepted", "target", NULL, 0))
		TH_LOG("listen accepted a hostile peer:\n%s", buf);
	EXPECT_EQ(0, events_of(buf, "phase", "target", NULL, 0))
		TH_LOG("listen reached the target VMM for a hostile peer:\n%s",
		       buf);
	EXPECT_NE(NULL, strstr(buf, "\"result\":\"rejected\""));
	/*
	 * The honest one, with the same listen and VMMs, while silent peers
	 * hold every place listen has (4): it evicts the oldest.
	 */
	for (i = 0; i < ARRAY_SIZE(silent2); i++) {
		silent2[i] = silent_peer(self->port, 60);
		ASSERT_LT(0, silent2[i]);
	}
	usleep(500000);
	start_migrate(_metadata, self, NULL);
	check_migrated(_metadata, self, 0, true);
	kill(silent, SIGKILL);
	waitpid(silent, &st, 0);
	EXPECT_TRUE(WIFSIGNALED(st)) TH_LOG("the silent peer could not connect (%d)",
					    WEXITSTATUS(st));
	for (i = 0; i < ARRAY_SIZE(silent2); i++) {
		kill(silent2[i], SIGKILL);
		waitpid(silent2[i], &st, 0);
	}
	slurp(DST_LOG, buf, sizeof(buf));
	EXPECT_NE(NULL, strstr(buf, "\"evicted\":true")) TH_LOG("%s", buf);
	slurp(DST_LOG, buf, sizeof(buf));
	EXPECT_NE(NULL, strstr(buf, "CN=vmig-source")) TH_LOG("%s", buf);
}

/*
 * A man in the middle: whoever listens at the target's address has a
 * certificate, but not one the source's CA signed. The source gives up
 * in the TLS handshake: no phase, no page, its VMM never told.
 */
TEST_F_TIMEOUT(live, impostor_target_gets_nothing, 90)
{
	start_source_vmm(_metadata, self, NULL);
	start_listen(_metadata, self, (const char *const[]){
		"--tls-creds", ROGUE, NULL });
	start_migrate(_metadata, self, NULL);
	check_source_failed(_metadata, self, false);
	slurp(SRC_LOG, buf, sizeof(buf));
	EXPECT_NE(NULL, strstr(buf, "\"stage\":\"tls\"")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "not trusted")) TH_LOG("%s", buf);
	EXPECT_EQ(0, events_of(buf, "secured", "source", NULL, 0));
	EXPECT_EQ(0, events_of(buf, "accepted", "source", NULL, 0));
	EXPECT_EQ(0, events_of(buf, "phase", "source", NULL, 0));
	check_vmms_after_failure(_metadata, self, false);
	proc_signal(&self->dst, SIGTERM);
}

/* IPv6: listen on "::", migrate to [fd99::2]:port, PSK credentials. */
TEST_F_TIMEOUT(live, migrate_over_ipv6_with_psk, 150)
{
	snprintf(self->to, sizeof(self->to), "[fd99::2]:%u", self->port);
	start_source_vmm(_metadata, self, NULL);
	start_target_vmm(_metadata, self);
	start_listen(_metadata, self, (const char *const[]){
		"--address", "::", "--psk-file", "/etc/vfio-mig/keys.psk",
		"--allow-peer", "vmig-source", NULL });
	start_migrate(_metadata, self, (const char *const[]){
		"--psk-file", "/etc/vfio-mig/keys.psk", NULL });
	check_migrated(_metadata, self, 0, true);
	slurp(DST_LOG, buf, sizeof(buf));
	EXPECT_NE(NULL, strstr(buf, "\"peer\":\"[fd99::1]:")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "\"credentials\":\"psk\"")) TH_LOG("%s", buf);
}

/* ---- the VMM's side of the protocol, with a controller of our own ---- */

/* A VMM report's "phases" ("begin/7:0 pause/8:0") without the seqs. */
static const char *phase_names(const char *phases)
{
	static char out[1024];
	size_t n = 0;
	const char *p;

	for (p = phases; *p && n + 1 < sizeof(out); p++) {
		if (*p == '/') {
			while (p[1] >= '0' && p[1] <= '9')
				p++;
			continue;
		}
		out[n++] = *p;
	}
	out[n] = 0;
	return out;
}

/* Wait up to @ms for a mig event of @cmd for @bdf and @phase. */
static bool wait_mig_event(struct lm_nl *n, uint8_t cmd, const char *bdf,
			   uint32_t phase, struct lm_event *e, int ms)
{
	uint64_t end = vmm_now_us() + ms * 1000ull;

	while (vmm_now_us() < end) {
		int ret = lm_nl_next(n, e, 100);

		if (ret > 0 && e->cmd == cmd && !strcmp(e->bdf, bdf) &&
		    e->phase == phase)
			return true;
	}
	return false;
}

/*
 * A controller attached through /dev/vfio-mig announces begin and pause
 * (the VMM starts its dirty log, marks, stops its vCPUs, acks each), then
 * goes away before a commit: the kernel announces abort, the VMM resumes
 * its guest, nothing is lost. Acks that do not match the pending phase are
 * ESTALE, announcements without a controller ENOTCONN.
 */
TEST_F_TIMEOUT(live, kernel_abort_when_controller_goes, 90)
{
	struct vfio_mig_ctl_attach at = { .argsz = sizeof(at) };
	struct lm_event e;
	struct lm_nl n;
	int fd, ret;

	start_source_vmm(_metadata, self, NULL);
	ret = lm_nl_open(&n);
	ASSERT_EQ(0, ret) TH_LOG("%s", n.err);
	ret = lm_announce(&n, SRC_BDF, VFIO_MIG_MIG_PHASE_BEGIN);
	EXPECT_EQ(-ENOTCONN, ret) TH_LOG("announce without a controller: %s",
					 n.err);
	fd = open(VFIO_MIG_CTL_DEVICE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", VFIO_MIG_CTL_DEVICE, strerror(errno));
	snprintf(at.bdf, sizeof(at.bdf), "%s", SRC_BDF);
	ASSERT_EQ(0, ioctl(fd, VFIO_MIG_CTL_ATTACH, &at))
		TH_LOG("VFIO_MIG_CTL_ATTACH %s: %s", SRC_BDF, strerror(errno));

	ret = lm_announce(&n, SRC_BDF, VFIO_MIG_MIG_PHASE_BEGIN);
	ASSERT_EQ(0, ret) TH_LOG("%s", n.err);
	ASSERT_TRUE(wait_mig_event(&n, VFIO_MIG_CMD_MIG_ACK_NTF, SRC_BDF,
				   VFIO_MIG_MIG_PHASE_BEGIN, &e, 10000)) {
		show_logs(_metadata, self);
		TH_LOG("the source VMM did not ack begin");
	}
	EXPECT_EQ(0, e.result) TH_LOG("begin acked with %s",
				      strerror(e.result));
	/* a second ack of the same phase: nothing is pending any more */
	EXPECT_EQ(-ESTALE, lm_ack(&n, SRC_BDF, e.phase, e.seq, 0));
	/* the guest runs with its dirty log a while */
	usleep(800000);
	ret = lm_announce(&n, SRC_BDF, VFIO_MIG_MIG_PHASE_PAUSE);
	ASSERT_EQ(0, ret) TH_LOG("%s", n.err);
	ASSERT_TRUE(wait_mig_event(&n, VFIO_MIG_CMD_MIG_ACK_NTF, SRC_BDF,
				   VFIO_MIG_MIG_PHASE_PAUSE, &e, 10000)) {
		show_logs(_metadata, self);
		TH_LOG("the source VMM did not ack pause");
	}
	EXPECT_EQ(0, e.result);
	/* the controller goes away before any commit */
	close(fd);
	ASSERT_TRUE(wait_mig_event(&n, VFIO_MIG_CMD_MIG_PHASE_NTF, SRC_BDF,
				   VFIO_MIG_MIG_PHASE_ABORT, &e, 10000))
		TH_LOG("the kernel announced no abort when the controller's fd closed");
	ASSERT_TRUE(wait_mig_event(&n, VFIO_MIG_CMD_MIG_ACK_NTF, SRC_BDF,
				   VFIO_MIG_MIG_PHASE_ABORT, &e, 10000)) {
		show_logs(_metadata, self);
		TH_LOG("the source VMM did not ack abort");
	}
	EXPECT_EQ(0, e.result);
	ret = lm_announce(&n, SRC_BDF, VFIO_MIG_MIG_PHASE_BEGIN);
	EXPECT_EQ(-ENOTCONN, ret) TH_LOG("announce after the controller left: %s",
					 n.err);
	lm_nl_close(&n);
	check_vmms_after_failure(_metadata, self, true);
	EXPECT_LT(0, rep_u64(SVMM_REP, "mark_pages"))
		TH_LOG("the VMM dirty-marked no page while its guest ran");
	EXPECT_EQ(0, rep_u64(SVMM_REP, "mark_errors"));
	EXPECT_STREQ("begin:0 pause:0 abort:0",
		     phase_names(rep_str(SVMM_REP, "phases")));
}

/* ---- a VM's two devices in one migration (wire 1.4) ---- */

/* How many "phase" events of the source's for @phase @log holds. */
static int count_phase(const char *log, const char *phase)
{
	char pat[64];
	const char *q;
	int k = 0;

	snprintf(pat, sizeof(pat), "\"phase\":\"%s\"", phase);
	for (q = log; (q = strstr(q, pat)); q++)
		k++;
	return k;
}

/* Wait up to @ms for @n occurrences of @text in @p's log. */
static bool wait_count(struct proc *p, const char *text, int n, int ms)
{
	uint64_t end = vmm_now_us() + ms * 1000ull;
	const char *q;
	int k;

	for (;;) {
		slurp(p->log, buf, sizeof(buf));
		for (k = 0, q = buf; (q = strstr(q, text)); q++)
			k++;
		if (k >= n)
			return true;
		if (proc_poll(p) || vmm_now_us() > end)
			return false;
		usleep(10000);
	}
}

/* After a failed attempt: listen is gone, the source VMM got @aborts. */
static void two_failed(struct __test_metadata *_metadata,
		       FIXTURE_DATA(live) *self, bool announced,
		       unsigned int aborts)
{
	check_source_failed(_metadata, self, announced);
	ASSERT_TRUE(proc_wait(&self->dst, 20000)) {
		show_logs(_metadata, self);
		TH_LOG("migctl listen did not end");
	}
	EXPECT_TRUE(wait_count(&self->svmm, ": phase abort seq", aborts,
			       10000)) {
		show_logs(_metadata, self);
		TH_LOG("the source VMM did not get %u aborts", aborts);
	}
	EXPECT_FALSE(proc_poll(&self->svmm)) {
		show_logs(_metadata, self);
		TH_LOG("the source VMM exited after a failed attempt");
	}
	usleep(500000);
}

/*
 * edu A and NVMe VF 1 of one VM (vmm_host --dev2: the edu workload and
 * the verified NVMe I/O, each in its half of the RAM) move to edu B and
 * VF 2 in one migration. Three attempts fail first, at the handshake (the
 * second target device is none), in the rounds (no convergence) and at
 * the switchover (the target's migctl killed while the source VMM holds
 * its pause ack); each rolls both devices back and both programs run on,
 * then the fourth migrates both, every check of both programs holding.
 */
TEST_F_TIMEOUT(live, two_devices_fail_at_each_stage_then_migrate, 360)
{
	char good[sizeof(self->mig_dst)], sum[4096], ev[256];
	uint64_t n = 0;

	use_two_devices(_metadata, self);
	start_source_vmm(_metadata, self, (const char *const[]){
		"--ack-delay", "pause:2000", NULL });
	start_target_vmm(_metadata, self);

	/* 1. the handshake: nothing touched, nothing announced */
	snprintf(good, sizeof(good), "%s", self->mig_dst);
	snprintf(self->mig_dst, sizeof(self->mig_dst), "%s,0000:00:1f.7",
		 self->dbdf);
	start_listen(_metadata, self, NULL);
	start_migrate(_metadata, self, NULL);
	two_failed(_metadata, self, false, 0);
	slurp(SRC_LOG, buf, sizeof(buf));
	EXPECT_EQ(1, events_of(buf, "refused", "source", NULL, 0))
		TH_LOG("%s", buf);
	EXPECT_FALSE(phase_event(buf, "source", "begin", NULL, 0));
	snprintf(self->mig_dst, sizeof(self->mig_dst), "%s", good);

	/* 2. the rounds: a budget no round meets */
	start_listen(_metadata, self, NULL);
	start_migrate(_metadata, self, (const char *const[]){
		"--downtime-ms", "1", "--max-rounds", "2",
		"--on-max-rounds", "abort", NULL });
	two_failed(_metadata, self, true, 2);
	slurp(SRC_LOG, buf, sizeof(buf));
	EXPECT_EQ(2, count_phase(buf, "begin"));

	/* 3. the switchover: the target's migctl dies during the pause */
	start_listen(_metadata, self, NULL);
	start_migrate(_metadata, self, NULL);
	ASSERT_TRUE(wait_count(&self->svmm, ": phase pause seq", 1, 60000)) {
		show_logs(_metadata, self);
		TH_LOG("no pause reached the source VMM");
	}
	proc_signal(&self->dst, SIGKILL);
	two_failed(_metadata, self, true, 4);
	slurp(SRC_LOG, buf, sizeof(buf));
	EXPECT_TRUE(events_of(buf, "switchover", "source", NULL, 0));

	/* 4. both devices migrate */
	usleep(1000000);
	start_listen(_metadata, self, NULL);
	start_migrate(_metadata, self, NULL);
	check_migrated(_metadata, self, 4, false);
	EXPECT_EQ(2, rep_u64(SVMM_REP, "devices"));
	EXPECT_EQ(2, rep_u64(TVMM_REP, "devices"));
	EXPECT_STREQ("nvme", rep_str(SVMM_REP, "dev2_device"));
	EXPECT_STREQ("nvme", rep_str(TVMM_REP, "dev2_device"));
	EXPECT_EQ(1, rep_bool(TVMM_REP, "dev2_regs_ok"))
		TH_LOG("%s", rep_str(TVMM_REP, "why"));
	EXPECT_EQ(1, rep_bool(TVMM_REP, "dev2_buffer_ok"))
		TH_LOG("%s", rep_str(TVMM_REP, "why"));
	EXPECT_EQ(1, rep_bool(TVMM_REP, "dev2_pages_ok"))
		TH_LOG("%s", rep_str(TVMM_REP, "why"));
	EXPECT_EQ(1, rep_bool(TVMM_REP, "dev2_model_ok"))
		TH_LOG("%s", rep_str(TVMM_REP, "why"));
	EXPECT_EQ(1, rep_bool(TVMM_REP, "dev2_nvme_verified"))
		TH_LOG("%s", rep_str(TVMM_REP, "why"));
	EXPECT_EQ(rep_u64(SVMM_REP, "dev2_seed"),
		  rep_u64(TVMM_REP, "dev2_seed"));
	EXPECT_EQ(rep_u64(SVMM_REP, "dev2_steps"),
		  rep_u64(TVMM_REP, "dev2_steps_before"))
		TH_LOG("VF 1's program did not go on where it stopped");
	EXPECT_LT(rep_u64(TVMM_REP, "dev2_steps_before"),
		  rep_u64(TVMM_REP, "dev2_steps"))
		TH_LOG("VF 1's program made no progress on the target");
	EXPECT_EQ(0, rep_u64(TVMM_REP, "dev2_errors"));
	EXPECT_LT(rep_u64(SVMM_REP, "dev2_nvme_writes"),
		  rep_u64(TVMM_REP, "dev2_nvme_writes"));
	slurp(SRC_LOG, buf, sizeof(buf));
	ASSERT_EQ(1, events_of(buf, "summary", "source", sum, sizeof(sum)));
	EXPECT_EQ(0, json_get_u64(sum, "devices", &n));
	EXPECT_EQ(2, n);
	EXPECT_EQ(0, json_get_str(sum, "dev", ev, sizeof(ev)));
	EXPECT_STREQ(self->mig_src, ev);
	EXPECT_EQ(2, count_phase(buf, "pause"));
	EXPECT_EQ(2, count_phase(buf, "commit"));
	TH_LOG("two devices: edu %s -> %s steps, NVMe %s -> %s steps, %s NVMe writes verified on the target",
	       rep_raw(SVMM_REP, "steps"), rep_raw(TVMM_REP, "steps"),
	       rep_raw(SVMM_REP, "dev2_steps"), rep_raw(TVMM_REP, "dev2_steps"),
	       rep_raw(TVMM_REP, "dev2_nvme_writes"));
}

/* ---- NVMe VF 1 to VF 2, I/O in flight (Documentation/nvme-profile.rst) ---- */

/*
 * The NVMe guests' side of a migration that committed: the source paused
 * with commands in flight, the target finished them, went on and read
 * every block of the workload back, each the newest generation written.
 */
static void check_nvme_io(struct __test_metadata *_metadata)
{
	EXPECT_STREQ("nvme", rep_str(SVMM_REP, "device"));
	EXPECT_STREQ("nvme", rep_str(TVMM_REP, "device"));
	EXPECT_EQ(1, rep_bool(TVMM_REP, "nvme_verified"))
		TH_LOG("target VMM: %s", rep_str(TVMM_REP, "why"));
	EXPECT_LT(rep_u64(SVMM_REP, "nvme_writes"),
		  rep_u64(TVMM_REP, "nvme_writes"))
		TH_LOG("the workload wrote nothing on the target");
	TH_LOG("NVMe: %s commands in flight at the pause; writes %s on the source, %s after the target's run; %s blocks read back and checked on the target",
	       rep_raw(SVMM_REP, "nvme_inflight"),
	       rep_raw(SVMM_REP, "nvme_writes"),
	       rep_raw(TVMM_REP, "nvme_writes"), rep_raw(TVMM_REP, "checks"));
}

TEST_F_TIMEOUT(live, nvme_migrate_under_load, 180)
{
	use_nvme(_metadata, self);
	start_source_vmm(_metadata, self, NULL);
	start_target_vmm(_metadata, self);
	start_listen(_metadata, self, NULL);
	usleep(500000);
	start_migrate(_metadata, self, NULL);
	check_migrated(_metadata, self, 0, true);
	check_nvme_io(_metadata);
	/* the workload keeps commands in flight: the pause caught some */
	EXPECT_LT(0, rep_u64(SVMM_REP, "nvme_inflight"));
	EXPECT_NE(~0ull, rep_u64(SVMM_REP, "nvme_inflight"));
}

/*
 * Through the NVMe shadow: the source's guest submits to the shadow from
 * the engage to the pause; what it submitted travels as queue tails and
 * runs on the target's VF, whose device takes the state (no shadow from a
 * stream for NVMe).
 */
TEST_F_TIMEOUT(live, nvme_migrate_via_shadow, 180)
{
	char sum[4096];
	struct lm_shadow sh;
	struct genl nl;
	uint64_t v = 0;

	use_nvme(_metadata, self);
	self->held_work = true;
	start_source_vmm(_metadata, self, NULL);
	start_target_vmm(_metadata, self);
	start_listen(_metadata, self, NULL);
	usleep(500000);
	start_migrate(_metadata, self,
		      (const char *const[]){ "--via-shadow", NULL });
	check_migrated(_metadata, self, 0, true);
	check_nvme_io(_metadata);
	v = via_shadow_summary(_metadata, sum, sizeof(sum));
	ASSERT_EQ(0, genl_open(&nl, "vfio_mig"));
	ASSERT_EQ(0, lm_shadow_get(&nl, self->dbdf, &sh));
	EXPECT_FALSE(sh.engaged) TH_LOG("a shadow serves the target's VF");
	ASSERT_EQ(0, lm_shadow_get(&nl, self->sbdf, &sh));
	EXPECT_FALSE(sh.engaged);
	genl_close(&nl);
	TH_LOG("NVMe shadow engage on the source: %.1f us held (migctl: %s)",
	       v / 1e3, sum);
}

/*
 * The rounds do not converge under the NVMe workload: migctl gives up, the
 * source VMM runs on; killed then, it lets go of its VF, which a new VMM
 * opens at once.
 */
TEST_F_TIMEOUT(live, nvme_no_convergence_then_reopen, 150)
{
	use_nvme(_metadata, self);
	start_source_vmm(_metadata, self, NULL);
	start_target_vmm(_metadata, self);
	start_listen(_metadata, self, NULL);
	usleep(500000);
	start_migrate(_metadata, self,
		      (const char *const[]){ "--downtime-ms", "1",
					     "--max-rounds", "3", NULL });
	check_source_failed(_metadata, self, true);
	ASSERT_TRUE(wait_text(&self->svmm, ": phase abort seq", 10000))
		show_logs(_metadata, self);
	EXPECT_FALSE(proc_wait(&self->svmm, 2000))
		TH_LOG("the source VMM exited after the abort");
	proc_signal(&self->svmm, SIGKILL);
	EXPECT_TRUE(proc_wait(&self->svmm, 10000))
		TH_LOG("the killed source VMM has not exited in 10 s");
	ASSERT_EQ(0, vmm_wait_released(self->sbdf, 10000));
	start_source_vmm(_metadata, self, NULL);
}

TEST_F_TIMEOUT(live, nvme_kill_target_migctl_later_round_then_migrate, 180)
{
	use_nvme(_metadata, self);
	fail_migration(_metadata, self, KILL_TARGET, AT_LATER_ROUND, true);
	check_nvme_io(_metadata);
}

TEST_F_TIMEOUT(live, nvme_kill_target_migctl_round1, 150)
{
	use_nvme(_metadata, self);
	fail_migration(_metadata, self, KILL_TARGET, AT_ROUND1, false);
}

TEST_F_TIMEOUT(live, nvme_link_down_later_round, 150)
{
	use_nvme(_metadata, self);
	fail_migration(_metadata, self, LINK_DOWN, AT_LATER_ROUND, false);
}

/* the kernel rolls the source VF back when its controller dies */
TEST_F_TIMEOUT(live, nvme_kill_source_migctl_switchover, 150)
{
	use_nvme(_metadata, self);
	fail_migration(_metadata, self, KILL_SOURCE, AT_SWITCHOVER, false);
}

TEST_F_TIMEOUT(live, nvme_kill_target_migctl_switchover, 150)
{
	use_nvme(_metadata, self);
	fail_migration(_metadata, self, KILL_TARGET, AT_SWITCHOVER, false);
}

TEST_F_TIMEOUT(live, nvme_link_down_switchover, 150)
{
	use_nvme(_metadata, self);
	fail_migration(_metadata, self, LINK_DOWN, AT_SWITCHOVER, false);
}

/* The target VF is not under the nvme profile: refused before any state. */
TEST_F_TIMEOUT(live, nvme_refuse_target_profile, 120)
{
	char ev[4096] = "";

	use_nvme(_metadata, self);
	set_profile(self->dbdf, "generic");
	ASSERT_STREQ("generic", profile_of(self->dbdf));
	start_source_vmm(_metadata, self, NULL);
	start_target_vmm(_metadata, self);
	start_listen(_metadata, self, NULL);
	start_migrate(_metadata, self, NULL);
	check_source_failed(_metadata, self, false);
	EXPECT_TRUE(refused_on("profile", ev, sizeof(ev))) {
		show_logs(_metadata, self);
		TH_LOG("no \"refused\" event for the profile");
	}
	TH_LOG("refused: %s", ev);
	ASSERT_TRUE(proc_wait(&self->dst, 20000));
	EXPECT_EQ(1, self->dst.status);
	check_vmms_after_failure(_metadata, self, false);
	set_profile(self->dbdf, "nvme");
}

/*
 * ---- NVMe compatibility before any state moves (nvme-profile.rst,
 * "Compatibility"): the target's VF lacks what the source's guest uses,
 * as its PF tells the target's migctl; the target kernel's profile
 * refuses at the handshake, with the reason. (Another LBA format cannot
 * be staged here: both VFs see the one namespace of the one subsystem;
 * selftests/unit/nvme_model covers it.)
 */

#define NVME_PF_DEV	"/dev/nvme0"
#define NVME_DST_CTRL	"2"	/* VF 2's secondary controller */
/* what guest-lib.sh provision_one_vf gives each VF */
#define NVME_VF_VQ	"4"
#define NVME_VF_VI	"3"

static bool nvme_pf_changed;

/* `nvme ARGS...` on the PF; true on success. */
#define NVME_CLI(...)	(CMD(&res, "nvme", __VA_ARGS__) == 0 && res.status == 0)

/* VF 2's controller offline, @vq queue resources, back online. */
static bool nvme_dst_vq(char *vq)
{
	nvme_pf_changed = true;
	return NVME_CLI("virt-mgmt", NVME_PF_DEV, "-c", NVME_DST_CTRL,
			"-a", "7") &&
	       NVME_CLI("virt-mgmt", NVME_PF_DEV, "-c", NVME_DST_CTRL,
			"-r", "0", "-a", "8", "-n", vq) &&
	       NVME_CLI("virt-mgmt", NVME_PF_DEV, "-c", NVME_DST_CTRL,
			"-r", "1", "-a", "8", "-n", NVME_VF_VI) &&
	       NVME_CLI("virt-mgmt", NVME_PF_DEV, "-c", NVME_DST_CTRL,
			"-a", "9");
}

/* The test bed's provisioning again: VF 2's resources, namespace 1. */
static bool nvme_pf_restore(void)
{
	bool ok = nvme_dst_vq(NVME_VF_VQ);

	if (!ok)
		fprintf(stderr, "# restoring VF 2's queues failed: %s%s\n",
			res.out, res.err);
	/* fails harmlessly when it is attached */
	CMD(&res, "nvme", "attach-ns", NVME_PF_DEV, "-n", "1", "-c",
	    NVME_DST_CTRL);
	nvme_pf_changed = false;
	return ok;
}

static void nvme_pf_undo(void)
{
	if (nvme_pf_changed)
		nvme_pf_restore();
}

/* The migration refused at the handshake for @why; the source went on. */
static void nvme_refused(struct __test_metadata *_metadata,
			 FIXTURE_DATA(live) *self, const char *why)
{
	char ev[4096] = "", reason[256] = "";

	start_source_vmm(_metadata, self, NULL);
	start_target_vmm(_metadata, self);
	start_listen(_metadata, self, NULL);
	start_migrate(_metadata, self, NULL);
	check_source_failed(_metadata, self, false);
	EXPECT_TRUE(refused_on("profile_compat", ev, sizeof(ev))) {
		show_logs(_metadata, self);
		TH_LOG("no \"refused\" event of the target's profile");
	}
	EXPECT_EQ(0, json_get_str(ev, "reason", reason, sizeof(reason)));
	EXPECT_STREQ(why, reason) TH_LOG("refused: %s", ev);
	TH_LOG("refused at the handshake: %s", reason);
	ASSERT_TRUE(proc_wait(&self->dst, 20000));
	EXPECT_EQ(1, self->dst.status);
	/* no phase was announced: the source guest ran on and checks */
	check_vmms_after_failure(_metadata, self, false);
	slurp(SRC_LOG, buf, sizeof(buf));
	EXPECT_FALSE(phase_event(buf, "source", "begin", NULL, 0))
		TH_LOG("a phase was announced before the refusal:\n%s", buf);
}

/* The guest uses I/O queues 1 and 2; the target VF gets one pair. */
TEST_F_TIMEOUT(live, nvme_refuse_target_fewer_queues, 120)
{
	use_nvme(_metadata, self);
	ASSERT_TRUE(nvme_dst_vq("2")) TH_LOG("nvme virt-mgmt: %s%s", res.out,
					     res.err);
	nvme_refused(_metadata, self,
		     "target VF has 1 I/O queue pairs, the guest uses 2");
	EXPECT_TRUE(nvme_pf_restore());
}

/* The guest's namespace 1 is not attached to the target VF. */
TEST_F_TIMEOUT(live, nvme_refuse_target_ns_detached, 120)
{
	use_nvme(_metadata, self);
	nvme_pf_changed = true;
	ASSERT_TRUE(NVME_CLI("detach-ns", NVME_PF_DEV, "-n", "1", "-c",
			     NVME_DST_CTRL))
		TH_LOG("nvme detach-ns: %s%s", res.out, res.err);
	nvme_refused(_metadata, self,
		     "namespace 1 is not attached to the target VF");
	EXPECT_TRUE(nvme_pf_restore());
	EXPECT_TRUE(NVME_CLI("list-ctrl", NVME_PF_DEV, "-n", "1"));
	EXPECT_NE(NULL, strstr(res.out, "0x2")) TH_LOG("%s", res.out);
}

TEST_HARNESS_MAIN
