// SPDX-License-Identifier: GPL-2.0
/* Test bed discovery and module handling shared by the VM selftests. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "edu.h"
#include "testbed.h"

int tb_devices(struct tb_devs *t)
{
	memset(t, 0, sizeof(*t));
	t->nr_edu = vmm_find(EDU_VENDOR, EDU_DEVICE, false, t->edu, 2);
	if (t->nr_edu < 0)
		return t->nr_edu;
	t->nr_vf = vmm_find(TB_NVME_VENDOR, TB_NVME_DEVICE, true, t->vf,
			     TB_NR_VF);
	if (t->nr_vf < 0)
		return t->nr_vf;
	return 0;
}

int tb_module_load(const char *name)
{
	struct utsname u;
	char path[512];
	int fd, ret = 0;

	uname(&u);
	snprintf(path, sizeof(path), "/lib/modules/%s/extra/%s.ko", u.release,
		 name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, "", 0))
		ret = -errno;
	close(fd);
	return ret;
}

int tb_module_unload(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

bool tb_module_loaded(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/module/%s/initstate", name);
	return access(path, F_OK) == 0;
}

int tb_module_refcnt(const char *name)
{
	char path[256], buf[32];
	int ret;

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", name);
	ret = vmm_sysfs_read(path, buf, sizeof(buf));
	return ret ? ret : atoi(buf);
}

int tb_lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr)) {
		ret = -errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr))
			ret = -errno;
	}
	close(fd);
	return ret;
}

int tb_tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l, ret = tb_lo_up();

	fds[0] = fds[1] = -1;
	if (ret)
		return ret;
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || fds[0] < 0 || bind(l, (struct sockaddr *)&a, len) ||
	    listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len) ||
	    connect(fds[0], (struct sockaddr *)&a, len) ||
	    (fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		ret = -errno;
		if (fds[0] >= 0)
			close(fds[0]);
		fds[0] = -1;
	}
	if (l >= 0)
		close(l);
	return ret;
}

int tb_uffd_region(size_t len, void **mem)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffdio_api api = { .api = UFFD_API };
	int uffd, ret;

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		return -errno;
	*mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*mem == MAP_FAILED) {
		ret = -errno;
		close(uffd);
		return ret;
	}
	reg.range.start = (uintptr_t)*mem;
	reg.range.len = len;
	if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		ret = -errno;
		munmap(*mem, len);
		close(uffd);
		return ret;
	}
	return uffd;
}

int tb_uffd_next_fault(int uffd, int ms)
{
	struct pollfd p = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msg;
	int n = poll(&p, 1, ms);

	if (n < 0)
		return -errno;
	if (!n || read(uffd, &msg, sizeof(msg)) != sizeof(msg))
		return -ETIMEDOUT;
	return msg.event == UFFD_EVENT_PAGEFAULT ? 0 : -EINVAL;
}
