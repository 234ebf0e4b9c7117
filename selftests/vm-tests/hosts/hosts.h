/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the "hosts" suite: a TCP echo with a known pattern, and
 * running selftests/tools/tcp_bench (or anything) in the background.
 */
#ifndef VMIG_TEST_HOSTS_H
#define VMIG_TEST_HOSTS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ECHO_LEN	(16u << 10)
#define IO_TIMEOUT_S	30

static inline uint8_t pattern_byte(size_t i, unsigned int seed)
{
	return (uint8_t)(i * 31 + seed) ^ (uint8_t)(i >> 8);
}

static inline void io_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static inline int io_all(int fd, void *buf, size_t len, int wr)
{
	char *p = buf;

	while (len) {
		ssize_t n = wr ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

/* A listening TCP socket on ip:port (ip NULL: any). */
static inline int tcp_listen_on(const char *ip, unsigned short port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	int fd, one = 1;

	if (ip && inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static inline int tcp_connect_fd(int fd, const char *ip, unsigned short port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };

	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		return -EINVAL;
	return connect(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0;
}

/*
 * Accept one connection on @lfd within @timeout_s, read ECHO_LEN bytes of
 * pattern @seed, check them and send them back. The peer's address goes
 * to @peer (INET_ADDRSTRLEN). Returns 0, -ETIMEDOUT, -EBADMSG (the bytes
 * differ) or another -errno.
 */
static inline int echo_serve(int lfd, unsigned int seed, int timeout_s,
			     char *peer)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	uint8_t *buf;
	size_t i;
	int fd, ret;

	ret = poll(&p, 1, timeout_s * 1000);
	if (ret <= 0)
		return ret ? -errno : -ETIMEDOUT;
	fd = accept4(lfd, (struct sockaddr *)&a, &alen, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (peer)
		inet_ntop(AF_INET, &a.sin_addr, peer, INET_ADDRSTRLEN);
	io_timeouts(fd);
	buf = malloc(ECHO_LEN);
	ret = buf ? io_all(fd, buf, ECHO_LEN, 0) : -ENOMEM;
	for (i = 0; !ret && i < ECHO_LEN; i++)
		if (buf[i] != pattern_byte(i, seed))
			ret = -EBADMSG;
	if (!ret)
		ret = io_all(fd, buf, ECHO_LEN, 1);
	free(buf);
	close(fd);
	return ret;
}

/* Send ECHO_LEN bytes of pattern @seed on @fd and check what comes back. */
static inline int echo_client(int fd, unsigned int seed)
{
	uint8_t *buf = malloc(ECHO_LEN);
	size_t i;
	int ret;

	if (!buf)
		return -ENOMEM;
	io_timeouts(fd);
	for (i = 0; i < ECHO_LEN; i++)
		buf[i] = pattern_byte(i, seed);
	ret = io_all(fd, buf, ECHO_LEN, 1);
	if (!ret) {
		memset(buf, 0, ECHO_LEN);
		ret = io_all(fd, buf, ECHO_LEN, 0);
	}
	for (i = 0; !ret && i < ECHO_LEN; i++)
		if (buf[i] != pattern_byte(i, seed))
			ret = -EBADMSG;
	free(buf);
	return ret;
}

/* selftests/tools/tcp_bench, next to the suites in the test tree. */
static inline char *tcp_bench_path(void)
{
	static char path[PATH_MAX] = "/tests/tools/tcp_bench";
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return path;
	self[n] = 0;
	snprintf(path, sizeof(path), "%s/tools/tcp_bench",
		 dirname(dirname(self)));
	return path;
}

/* The N of tcp_bench's 'tcp_mib_per_s: N', or a negative value. */
static inline double tcp_mib_per_s(const char *out)
{
	const char *p = strstr(out, "tcp_mib_per_s: ");

	return p ? strtod(p + strlen("tcp_mib_per_s: "), NULL) : -1;
}

/*
 * Start argv (NULL-terminated, argv[0] a path) with stdout and stderr
 * to the file @log; its pid or -errno. (Not busybox's timeout: it leaves
 * a watcher holding our pipes until its time is up.)
 */
static inline pid_t spawn_logged(char *const argv[], const char *log)
{
	/*
	 * The log is emptied before the fork: a caller that waits for a
	 * line in it must not find the line a previous run left there
	 * before the child got to truncate it.
	 */
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	pid_t pid;

	if (fd < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		pid = -errno;
		close(fd);
		return pid;
	}
	if (!pid) {
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd);
	return pid;
}

/* Wait up to @timeout_s for @pid, then SIGKILL it; its wait status. */
static inline int wait_or_kill(pid_t pid, int timeout_s)
{
	int status = 0, i;

	for (i = 0; i < timeout_s * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return status;
}

/* What file @path holds (at most @len - 1 bytes), NUL-terminated. */
static inline char *read_log(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = 0;
	if (f)
		fclose(f);
	return buf;
}

static inline double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
