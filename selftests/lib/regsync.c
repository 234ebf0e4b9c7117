// SPDX-License-Identifier: GPL-2.0
/* Register state sync helpers for the VM selftests; see regsync.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regsync.h"

#define DBG "/sys/kernel/debug/vfio-mig"

int rs_set_trap_mode(const char *bdf, const char *mode)
{
	char path[256];

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/trap_mode", bdf);
	return vmm_sysfs_write(path, mode);
}

int rs_get_trap_mode(const char *bdf, char *buf, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/trap_mode", bdf);
	return vmm_sysfs_read(path, buf, len);
}

int rs_set_profile(const char *bdf, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/profile", bdf);
	return vmm_sysfs_write(path, name);
}

int rs_set_param(const char *name, const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/module/vfio_mig/parameters/%s",
		 name);
	return vmm_sysfs_write(path, val);
}

int rs_ctl(const char *bdf, const char *fmt, ...)
{
	char path[256], cmd[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), DBG "/%s/ctl", bdf);
	return vmm_sysfs_write(path, cmd);
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	size_t n = 0;
	ssize_t r;

	if (fd < 0)
		return -errno;
	while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += r;
	buf[n] = 0;
	close(fd);
	return 0;
}

int rs_result(const char *bdf, char *buf, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), DBG "/%s/result", bdf);
	return read_file(path, buf, len);
}

long long rs_key(const char *text, const char *key, long long dflt)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, kl) && p[kl] == ':')
			return strtoll(p + kl + 1, NULL, 0);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return dflt;
}

long long rs_result_num(const char *bdf, const char *key)
{
	char buf[1024];

	if (rs_result(bdf, buf, sizeof(buf)))
		return -1;
	return rs_key(buf, key, -1);
}

long long rs_counter(const char *bdf, const char *key)
{
	char path[256], buf[1024];

	snprintf(path, sizeof(path), DBG "/%s/counters", bdf);
	if (read_file(path, buf, sizeof(buf)))
		return -1;
	return rs_key(buf, key, -1);
}

ssize_t rs_snapshot_read(const char *bdf, void *buf, size_t len)
{
	char path[256];
	size_t n = 0;
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), DBG "/%s/snapshot", bdf);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	while (n < len && (r = read(fd, (char *)buf + n, len - n)) > 0)
		n += r;
	close(fd);
	return n;
}

int rs_snapshot_write(const char *bdf, const void *buf, size_t len)
{
	char path[256];
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), DBG "/%s/snapshot", bdf);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	r = write(fd, buf, len);
	r = r < 0 ? -errno : r == (ssize_t)len ? 0 : -EIO;
	close(fd);
	return r;
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

const uint8_t *rs_snapshot_record(const void *snap, size_t snap_len,
				  uint16_t type, uint32_t *len)
{
	const uint8_t *p = snap;
	size_t pos = 16;
	uint32_t n, i;

	if (snap_len < 16)
		return NULL;
	n = le32(p + 12);
	for (i = 0; i < n && pos + 8 <= snap_len; i++) {
		uint16_t t = p[pos] | p[pos + 1] << 8;
		uint32_t l = le32(p + pos + 4);

		if (l > snap_len - pos - 8)
			return NULL;
		if (t == type) {
			*len = l;
			return p + pos + 8;
		}
		pos += 8 + ((l + 7) & ~7u);
	}
	return NULL;
}

void rs_edu_dump(struct edu *e, uint32_t regs[RS_EDU_REGS])
{
	unsigned int i;

	for (i = 0; i < RS_EDU_REGS; i++)
		regs[i] = vmm_read32(e->dev, 0, i * 4);
}

int rs_edu_read_buffer(struct edu *e, uint64_t iova, void *host,
		       uint8_t out[EDU_BUF_SIZE])
{
	int ret;

	ret = edu_dma(e, true, iova, 0, EDU_DMA_MAX, false, 5000);
	if (ret)
		return ret;
	memcpy(out, host, EDU_DMA_MAX);
	ret = edu_dma(e, true, iova, EDU_DMA_MAX, EDU_BUF_SIZE - 1 - EDU_DMA_MAX,
		      false, 5000);
	if (ret)
		return ret;
	memcpy(out + EDU_DMA_MAX, host, EDU_BUF_SIZE - 1 - EDU_DMA_MAX);
	out[EDU_BUF_SIZE - 1] = 0;
	return 0;
}

int rs_side_open(struct rs_side *s, const char *bdf, const char *mode,
		 const char *profile, bool irq)
{
	int ret;

	memset(s, 0, sizeof(*s));
	snprintf(s->bdf, sizeof(s->bdf), "%s", bdf);
	ret = vmm_bind(bdf, "vfio-mig");
	if (!ret)
		ret = rs_set_trap_mode(bdf, mode);
	if (!ret && profile)
		ret = rs_set_profile(bdf, profile);
	/* the borrowed page is edu's (its own debugfs command) */
	if (!ret && (!profile || !strcmp(profile, "edu")))
		ret = rs_ctl(bdf, "scratch %#llx", RS_SCRATCH);
	if (ret)
		return ret;
	ret = vmm_open(&s->d, bdf);
	if (ret)
		return ret;
	s->is_open = true;
	ret = vmm_ram_alloc(&s->ram, RS_RAM_SIZE, RS_RAM_IOVA);
	if (!ret)
		ret = vmm_dma_map(&s->d, &s->ram);
	if (!ret)
		ret = edu_probe(&s->e, &s->d, false);
	if (!ret && irq)
		ret = vmm_irq_enable(&s->d);
	return ret;
}

void rs_side_close(struct rs_side *s)
{
	if (!s->is_open)
		return;
	vmm_ram_release(&s->d, &s->ram);
	vmm_close(&s->d);
	s->is_open = false;
	rs_set_trap_mode(s->bdf, "none");
	rs_set_profile(s->bdf, "edu");
}
