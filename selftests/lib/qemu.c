// SPDX-License-Identifier: GPL-2.0
/* Driving Debian 13's QEMU 10 over QMP: see qemu.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "cmd.h"
#include "edu.h"
#include "qemu.h"
#include "vmm.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The next line from the socket into @line; -ETIMEDOUT at @deadline. */
static int qmp_line(struct qmp *q, char *line, size_t len, long long deadline)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		long long left;
		ssize_t n;

		if (nl) {
			size_t l = nl - q->buf;

			if (l >= len)
				l = len - 1;
			memcpy(line, q->buf, l);
			line[l] = 0;
			q->len -= nl + 1 - q->buf;
			memmove(q->buf, nl + 1, q->len);
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return -EMSGSIZE;
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (n > 0)
			q->len += n;
	}
}

int qmp_connect(struct qmp *q, const char *path, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[4096];
	int ret;

	q->len = 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (;;) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0)
			return -errno;
		if (!connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		ret = -errno;
		close(q->fd);
		q->fd = -1;
		if (now_ms() > deadline)
			return ret;
		usleep(50000);
	}
	ret = qmp_line(q, line, sizeof(line), deadline);	/* greeting */
	if (!ret && !strstr(line, "\"QMP\""))
		ret = -EPROTO;
	if (!ret)
		ret = qmp_exec(q, "{\"execute\": \"qmp_capabilities\"}", line,
			       sizeof(line), timeout_ms);
	if (ret)
		qmp_close(q);
	return ret;
}

int qmp_exec(struct qmp *q, const char *cmd, char *reply, size_t len,
	     int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	size_t n = strlen(cmd), done = 0;
	int ret;

	if (q->fd < 0)
		return -ENOTCONN;
	while (done <= n) {	/* the command, then a newline */
		/* a QEMU that is gone gives EPIPE, not SIGPIPE */
		ssize_t w = done < n ?
			send(q->fd, cmd + done, n - done, MSG_NOSIGNAL) :
			send(q->fd, "\n", 1, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += w;
	}
	for (;;) {
		ret = qmp_line(q, reply, len, deadline);
		if (ret)
			return ret;
		if (strstr(reply, "\"return\""))
			return 0;
		if (strstr(reply, "\"error\""))
			return -EREMOTEIO;
		/* an event: skip it */
	}
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}

int l2vm_start(struct l2vm *vm, const struct l2vm_opts *o)
{
	char dev[256], mem[16], qmp[96], serial[96];
	const char *argv[40];
	int i = 0, fd, ret;
	pid_t pid;

	memset(vm, 0, sizeof(*vm));
	vm->qmp.fd = -1;
	snprintf(vm->name, sizeof(vm->name), "%s", o->name);
	snprintf(vm->qmp_path, sizeof(vm->qmp_path), "/tmp/l2-%s.qmp", o->name);
	snprintf(vm->serial_path, sizeof(vm->serial_path),
		 "/tmp/l2-%s.serial", o->name);
	snprintf(vm->log_path, sizeof(vm->log_path), "/tmp/l2-%s.log",
		 o->name);
	unlink(vm->qmp_path);
	unlink(vm->serial_path);
	unlink(vm->log_path);
	snprintf(dev, sizeof(dev), "vfio-pci,host=%s%s%s", o->host,
		 o->vfio_opts && *o->vfio_opts ? "," : "",
		 o->vfio_opts ? o->vfio_opts : "");
	snprintf(mem, sizeof(mem), "%d", o->mem_mb ? o->mem_mb : 32);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off",
		 vm->qmp_path);
	snprintf(serial, sizeof(serial), "file:%s", vm->serial_path);

	argv[i++] = QEMU_BIN;
	argv[i++] = "-nodefaults";
	argv[i++] = "-display";
	argv[i++] = "none";
	argv[i++] = "-vga";
	argv[i++] = "none";
	argv[i++] = "-M";
	argv[i++] = "pc";
	argv[i++] = "-accel";
	argv[i++] = "tcg,tb-size=32";
	argv[i++] = "-m";
	argv[i++] = mem;
	argv[i++] = "-kernel";
	argv[i++] = o->kernel;
	argv[i++] = "-device";
	argv[i++] = dev;
	argv[i++] = "-serial";
	argv[i++] = serial;
	argv[i++] = "-qmp";
	argv[i++] = qmp;
	if (o->incoming) {
		argv[i++] = "-incoming";
		argv[i++] = o->incoming;
	}
	argv[i] = NULL;

	/*
	 * @vm may be shared memory (the harness's parent-side teardown):
	 * only the parent writes the pid.
	 */
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		fd = open(vm->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	vm->pid = pid;
	ret = qmp_connect(&vm->qmp, vm->qmp_path, 30000);
	if (ret)
		l2vm_kill(vm);
	return ret;
}

bool l2vm_alive(struct l2vm *vm)
{
	int status;

	if (vm->pid <= 0)
		return false;
	if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
		vm->pid = 0;
		return false;
	}
	return true;
}

void l2vm_kill(struct l2vm *vm)
{
	qmp_close(&vm->qmp);
	if (vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		waitpid(vm->pid, NULL, 0);
	}
	vm->pid = 0;
}

void l2vm_stop(struct l2vm *vm)
{
	char reply[1024];
	int i;

	if (vm->pid <= 0)
		return;
	qmp_exec(&vm->qmp, "{\"execute\": \"quit\"}", reply, sizeof(reply),
		 5000);
	for (i = 0; i < 100 && l2vm_alive(vm); i++)
		usleep(50000);
	l2vm_kill(vm);
}

/* Whether @pid has ended (gone, or a zombie that closed its files). */
static bool pid_ended(pid_t pid)
{
	char path[64], stat[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return true;
	stat[n] = 0;
	p = strrchr(stat, ')');
	return p && (p[2] == 'Z' || p[2] == 'X');
}

void l2vm_reap(struct l2vm *vm)
{
	int i;

	if (vm->pid <= 0)
		return;
	kill(vm->pid, SIGKILL);
	for (i = 0; i < 200 && !pid_ended(vm->pid); i++)
		usleep(50000);
	waitpid(vm->pid, NULL, WNOHANG);
	vm->pid = 0;
}

/* The whole of a small file into @buf (NUL-terminated); bytes or -errno. */
static ssize_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, done = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)done < len - 1) {
		n = read(fd, buf + done, len - 1 - done);
		if (n <= 0)
			break;
		done += n;
	}
	close(fd);
	buf[done] = 0;
	return done;
}

void l2vm_log_tail(struct l2vm *vm, char *buf, size_t len)
{
	static char all[65536];
	ssize_t n = read_file(vm->log_path, all, sizeof(all));

	buf[0] = 0;
	if (n > 0)
		snprintf(buf, len, "%s",
			 all + ((size_t)n > len - 1 ? n - (len - 1) : 0));
}

#define ITER_TAG	"edu-guest: iter "
#define FAIL_TAG	"edu-guest: FAIL"

unsigned int l2vm_iter(struct l2vm *vm, bool *failed, char *why, size_t len)
{
	static char log[1 << 20];
	unsigned int best = 0, n;
	const char *p;
	char *nl;

	*failed = false;
	if (read_file(vm->serial_path, log, sizeof(log)) <= 0)
		return 0;
	for (p = log; (p = strstr(p, ITER_TAG)); p++)
		if (sscanf(p + strlen(ITER_TAG), "%u ok", &n) == 1 && n > best)
			best = n;
	p = strstr(log, FAIL_TAG);
	if (p) {
		*failed = true;
		if (why && len) {
			snprintf(why, len, "%s", p);
			nl = strpbrk(why, "\r\n");
			if (nl)
				*nl = 0;
		}
	}
	return best;
}

int l2vm_wait_iter(struct l2vm *vm, unsigned int n, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	bool failed;

	for (;;) {
		if (l2vm_iter(vm, &failed, NULL, 0) >= n)
			return 0;
		if (failed)
			return -EIO;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(100000);
	}
}

/* "key": value inside the object that follows "@obj": in @reply. */
static int sub_u64(const char *reply, const char *obj, const char *key,
		   uint64_t *v)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", obj);
	p = strstr(reply, pat);
	return p ? json_get_u64(p + strlen(pat), key, v) : -ENOENT;
}

int qemu_query_migrate(struct l2vm *vm, struct qemu_mig_info *mi)
{
	static char reply[65536];
	int ret;

	memset(mi, 0, sizeof(*mi));
	ret = qmp_exec(&vm->qmp, "{\"execute\": \"query-migrate\"}", reply,
		       sizeof(reply), 10000);
	if (ret)
		return ret;
	json_get_str(reply, "status", mi->status, sizeof(mi->status));
	json_get_u64(reply, "total-time", &mi->total_ms);
	json_get_u64(reply, "downtime", &mi->downtime_ms);
	json_get_u64(reply, "setup-time", &mi->setup_ms);
	sub_u64(reply, "ram", "transferred", &mi->ram_bytes);
	mi->has_vfio = !sub_u64(reply, "vfio", "transferred", &mi->vfio_bytes);
	json_get_str(reply, "error-desc", mi->error, sizeof(mi->error));
	strncpy(mi->raw, reply, sizeof(mi->raw) - 1);
	mi->raw[sizeof(mi->raw) - 1] = 0;
	return 0;
}

int qemu_wait_migration(struct l2vm *vm, struct qemu_mig_info *mi,
			int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int ret;

	for (;;) {
		ret = qemu_query_migrate(vm, mi);
		if (ret)
			return ret;
		if (!strcmp(mi->status, "completed") ||
		    !strcmp(mi->status, "failed") ||
		    !strcmp(mi->status, "cancelled"))
			return 0;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(200000);
	}
}

int qemu_run_state(struct l2vm *vm, char *state, size_t len)
{
	char reply[4096];
	int ret;

	ret = qmp_exec(&vm->qmp, "{\"execute\": \"query-status\"}", reply,
		       sizeof(reply), 10000);
	if (!ret)
		ret = json_get_str(reply, "status", state, len);
	return ret;
}

/* vmm_open(), waiting out a QEMU that was just killed (EBUSY). */
static int open_settled(struct vmm_dev *d, const char *bdf)
{
	int i, ret;

	for (i = 0; i < 100; i++) {
		ret = vmm_open(d, bdf);
		if (ret != -EBUSY)
			break;
		usleep(100000);
	}
	return ret;
}

int l2vm_edu_settle(const char *bdf)
{
	struct vmm_dev d;
	struct edu e = { .dev = &d };
	int ret;

	ret = open_settled(&d, bdf);
	if (ret)
		return ret;
	/* bus mastering stays off: the transfer lands nowhere */
	ret = edu_dma_wait(&e, 3000);
	vmm_close(&d);
	return ret;
}

int vfio_dma_logging(const char *bdf)
{
	struct {
		struct vfio_device_feature f;
		struct vfio_device_feature_dma_logging_control c;
	} arg = {
		.f.argsz = sizeof(arg),
		.f.flags = VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
			   VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
	};
	struct vmm_dev d;
	int ret;

	ret = open_settled(&d, bdf);
	if (ret)
		return ret;
	ret = !ioctl(d.fd, VFIO_DEVICE_FEATURE, &arg);
	vmm_close(&d);
	return ret;
}
