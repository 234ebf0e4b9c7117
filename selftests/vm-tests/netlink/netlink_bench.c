// SPDX-License-Identifier: GPL-2.0
/*
 * How fast a dirty bitmap leaves the kernel: netlink dirty-get against
 * VFIO's DMA_LOGGING_REPORT, on the same log (the NVMe VF's, fed all-mapped
 * so every page is dirty on every report), in the same guest and run.
 * Prints key: value lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/vfio_mig.h>

#include "testbed.h"

#define LOG_BYTES	(16ull << 30)		/* 16 GiB: 512 KiB of bitmap */
#define PAGE		4096ull
#define ROUNDS		20

static int nl_fd, fam;

static int nl_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int rcv = 4 << 20;

	nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl_fd < 0 || bind(nl_fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	setsockopt(nl_fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	return 0;
}

static size_t put_attr(char *p, uint16_t type, const void *d, uint16_t len)
{
	struct nlattr *a = (struct nlattr *)p;

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy(a + 1, d, len);
	return NLA_ALIGN(a->nla_len);
}

static int resolve(void)
{
	char buf[8192];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	struct genlmsghdr *g = NLMSG_DATA(h);
	size_t len = NLMSG_HDRLEN + GENL_HDRLEN;
	struct nlattr *a;
	int rem;

	memset(buf, 0, sizeof(buf));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	len += put_attr(buf + len, CTRL_ATTR_FAMILY_NAME, VFIO_MIG_FAMILY_NAME,
			sizeof(VFIO_MIG_FAMILY_NAME));
	h->nlmsg_len = len;
	h->nlmsg_type = GENL_ID_CTRL;
	h->nlmsg_flags = NLM_F_REQUEST;
	if (send(nl_fd, buf, len, 0) < 0 || recv(nl_fd, buf, sizeof(buf), 0) < 0)
		return -1;
	a = (struct nlattr *)((char *)NLMSG_DATA(h) + GENL_HDRLEN);
	rem = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	for (; rem >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN;
	     rem -= NLA_ALIGN(a->nla_len),
	     a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len)))
		if (a->nla_type == CTRL_ATTR_FAMILY_ID)
			return fam = *(uint16_t *)(a + 1);
	return -1;
}

/* One dirty-get dump of the whole log; returns the bitmap bytes seen. */
static long long dirty_get(const char *bdf, uint64_t *pages)
{
	static char buf[1 << 17];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	struct genlmsghdr *g = NLMSG_DATA(h);
	size_t len = NLMSG_HDRLEN + GENL_HDRLEN;
	long long bytes = 0;
	ssize_t n;

	memset(buf, 0, len);
	g->cmd = VFIO_MIG_CMD_DIRTY_GET;
	g->version = VFIO_MIG_FAMILY_VERSION;
	len += put_attr(buf + len, VFIO_MIG_A_DIRTY_BDF, bdf, strlen(bdf) + 1);
	len += put_attr(buf + len, VFIO_MIG_A_DIRTY_CLEAR, NULL, 0);
	h->nlmsg_len = len;
	h->nlmsg_type = fam;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	if (send(nl_fd, buf, len, 0) < 0)
		return -1;
	for (;;) {
		n = recv(nl_fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return -1;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, n);
		     h = NLMSG_NEXT(h, n)) {
			struct nlattr *a;
			int rem;

			if (h->nlmsg_type == NLMSG_DONE)
				return bytes;
			if (h->nlmsg_type == NLMSG_ERROR)
				return -1;
			a = (struct nlattr *)((char *)NLMSG_DATA(h) + GENL_HDRLEN);
			rem = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
			for (; rem >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN;
			     rem -= NLA_ALIGN(a->nla_len),
			     a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len))) {
				if (a->nla_type != VFIO_MIG_A_DIRTY_BITMAP)
					continue;
				bytes += a->nla_len - NLA_HDRLEN;
				for (int i = 0; i < (a->nla_len - NLA_HDRLEN) / 8; i++)
					*pages += __builtin_popcountll(((uint64_t *)(a + 1))[i]);
			}
		}
	}
}

static int log_feature(struct vmm_dev *d, uint32_t flags, void *data,
		       size_t len)
{
	struct vfio_device_feature *f = calloc(1, sizeof(*f) + len);
	int ret;

	f->argsz = sizeof(*f) + len;
	f->flags = flags;
	memcpy(f->data, data, len);
	ret = ioctl(d->fd, VFIO_DEVICE_FEATURE, f) ? -errno : 0;
	memcpy(data, f->data, len);
	free(f);
	return ret;
}

int main(void)
{
	struct vfio_device_feature_dma_logging_range range = {
		.iova = 0, .length = LOG_BYTES,
	};
	struct vfio_device_feature_dma_logging_control ctl = {
		.page_size = PAGE, .num_ranges = 1,
		.ranges = (uintptr_t)&range,
	};
	struct vfio_device_feature_dma_logging_report rep = {
		.iova = 0, .length = LOG_BYTES, .page_size = PAGE,
	};
	size_t bm_bytes = LOG_BYTES / PAGE / 8;
	uint64_t t0, nl_us = 0, io_us = 0, pages_nl = 0, pages_io = 0;
	struct tb_devs t;
	struct vmm_dev d;
	uint64_t *bitmap;
	bool ioctl_ok = true;
	char cmd[128];
	int i, ret;

	if (tb_devices(&t) || t.nr_vf < 1 || vmm_bind(t.vf[0], TB_DRIVER) ||
	    vmm_open(&d, t.vf[0])) {
		fprintf(stderr, "netlink_bench: no VF to measure on\n");
		return 1;
	}
	bitmap = malloc(bm_bytes);
	rep.bitmap = (uintptr_t)bitmap;
	ret = log_feature(&d, VFIO_DEVICE_FEATURE_SET |
			  VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &ctl,
			  sizeof(ctl));
	if (ret == -ENOTTY) {
		/* No VFIO DMA logging on this kernel (see compat.h). */
		ioctl_ok = false;
		snprintf(cmd, sizeof(cmd), "migctl dirty start %s 0:%llu",
			 t.vf[0], LOG_BYTES);
		if (system(cmd))
			return 1;
	} else if (ret) {
		fprintf(stderr, "netlink_bench: DMA logging start: %s\n",
			strerror(-ret));
		return 1;
	}
	if (nl_open() || resolve() < 0)
		return 1;
	for (i = 0; i < ROUNDS; i++) {
		long long got;

		t0 = vmm_now_us();
		ret = !ioctl_ok ? 0 : log_feature(&d, VFIO_DEVICE_FEATURE_GET |
				  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &rep,
				  sizeof(rep));
		if (ret) {
			fprintf(stderr, "netlink_bench: DMA logging report: %s\n",
				strerror(-ret));
			return 1;
		}
		io_us += vmm_now_us() - t0;
		for (size_t k = 0; k < bm_bytes / 8; k++)
			pages_io += __builtin_popcountll(bitmap[k]);
		t0 = vmm_now_us();
		got = dirty_get(t.vf[0], &pages_nl);
		nl_us += vmm_now_us() - t0;
		if (got != (long long)bm_bytes) {
			fprintf(stderr, "netlink_bench: dirty-get gave %lld of %zu bytes\n",
				got, bm_bytes);
			return 1;
		}
	}
	if (ioctl_ok)
		log_feature(&d, VFIO_DEVICE_FEATURE_SET |
			    VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);
	else if (snprintf(cmd, sizeof(cmd), "migctl dirty stop %s", t.vf[0]),
		 system(cmd))
		return 1;
	vmm_close(&d);
	printf("bitmap_bytes_per_report: %zu\n", bm_bytes);
	printf("dirty_get_mib_per_s: %.1f\n",
	       (double)bm_bytes * ROUNDS / (1 << 20) / (nl_us / 1e6));
	if (!ioctl_ok) {
		printf("dirty_report_ioctl_mib_per_s: unavailable (no VFIO DMA logging on this kernel: iova_bitmap is built only with CONFIG_IOMMUFD_DRIVER)\n");
		return pages_nl == (LOG_BYTES / PAGE) * ROUNDS ? 0 : 1;
	}
	printf("dirty_pages_per_report: %llu (netlink) %llu (ioctl)\n",
	       (unsigned long long)(pages_nl / ROUNDS),
	       (unsigned long long)(pages_io / ROUNDS));
	printf("dirty_report_ioctl_mib_per_s: %.1f\n",
	       (double)bm_bytes * ROUNDS / (1 << 20) / (io_us / 1e6));
	printf("dirty_get_vs_ioctl_ratio: %.2f\n", (double)io_us / nl_us);
	return pages_nl == pages_io ? 0 : 1;
}
