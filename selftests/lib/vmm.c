// SPDX-License-Identifier: GPL-2.0
/* The test VMM: VFIO container/group/device setup, RAM, DMA, BARs, IRQs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm.h"

#define PCI_DEVS "/sys/bus/pci/devices"

uint64_t vmm_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int vmm_sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

int vmm_sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

int vmm_driver_of(const char *bdf, char *drv, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), PCI_DEVS "/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		drv[0] = 0;
		return errno == ENOENT ? 0 : -errno;
	}
	link[n] = 0;
	snprintf(drv, len, "%s", basename(link));
	return 0;
}

int vmm_unbind(const char *bdf)
{
	char path[PATH_MAX], drv[64];
	int ret = vmm_driver_of(bdf, drv, sizeof(drv));

	if (ret || !drv[0])
		return ret;
	snprintf(path, sizeof(path), PCI_DEVS "/%s/driver/unbind", bdf);
	return vmm_sysfs_write(path, bdf);
}

/* Bind @bdf to @driver through driver_override, as an operator would. */
int vmm_bind(const char *bdf, const char *driver)
{
	char path[PATH_MAX], drv[64];
	int ret;

	ret = vmm_driver_of(bdf, drv, sizeof(drv));
	if (ret)
		return ret;
	if (!strcmp(drv, driver))
		return 0;
	ret = vmm_unbind(bdf);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), PCI_DEVS "/%s/driver_override", bdf);
	ret = vmm_sysfs_write(path, driver);
	if (ret)
		return ret;
	ret = vmm_sysfs_write("/sys/bus/pci/drivers_probe", bdf);
	if (ret)
		return ret;
	ret = vmm_driver_of(bdf, drv, sizeof(drv));
	if (ret)
		return ret;
	return strcmp(drv, driver) ? -ENODEV : 0;
}

static int read_hex(const char *bdf, const char *attr, unsigned long *val)
{
	char path[PATH_MAX], buf[64];
	int ret;

	snprintf(path, sizeof(path), PCI_DEVS "/%s/%s", bdf, attr);
	ret = vmm_sysfs_read(path, buf, sizeof(buf));
	if (ret)
		return ret;
	*val = strtoul(buf, NULL, 16);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Find devices by id, sorted by BDF; want_vf selects SR-IOV VFs only. */
int vmm_find(uint16_t vendor, uint16_t device, bool want_vf,
	     char bdfs[][32], int max)
{
	DIR *dir = opendir(PCI_DEVS);
	struct dirent *de;
	int n = 0;

	if (!dir)
		return -errno;
	while ((de = readdir(dir)) && n < max) {
		unsigned long v, d;
		char path[PATH_MAX];
		bool is_vf;

		if (de->d_name[0] == '.')
			continue;
		if (read_hex(de->d_name, "vendor", &v) ||
		    read_hex(de->d_name, "device", &d))
			continue;
		if (v != vendor || d != device)
			continue;
		snprintf(path, sizeof(path), PCI_DEVS "/%s/physfn", de->d_name);
		is_vf = access(path, F_OK) == 0;
		if (is_vf != want_vf)
			continue;
		if (strlen(de->d_name) >= 32)
			continue;
		memcpy(bdfs[n++], de->d_name, strlen(de->d_name) + 1);
	}
	closedir(dir);
	qsort(bdfs, n, 32, cmp_str);
	return n;
}

int vmm_iommu_group(const char *bdf)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), PCI_DEVS "/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	return atoi(basename(link));
}

/* The device fd from the group, with the device and region info. */
static int get_device_fd(struct vmm_dev *d)
{
	unsigned int i;

	d->fd = ioctl(d->group, VFIO_GROUP_GET_DEVICE_FD, d->bdf);
	if (d->fd < 0)
		return -1;
	d->info.argsz = sizeof(d->info);
	if (ioctl(d->fd, VFIO_DEVICE_GET_INFO, &d->info))
		return -1;
	for (i = 0; i < d->info.num_regions && i < VMM_MAX_REGIONS; i++) {
		d->regions[i].argsz = sizeof(d->regions[i]);
		d->regions[i].index = i;
		/* Regions a device lacks (VGA, ROM) answer EINVAL: size 0. */
		if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &d->regions[i]))
			d->regions[i].size = 0;
	}
	return 0;
}

static void print_file(const char *path, const char *prefix)
{
	char line[512];
	FILE *f = fopen(path, "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "# %s%s", prefix, line);
	fclose(f);
}

/*
 * Every process with an fd on @node or on a VFIO device: its state, its
 * threads' stacks.
 */
static void print_holders(const char *node)
{
	char path[PATH_MAX], link[PATH_MAX];
	struct dirent *p, *f, *t;
	DIR *pd, *fd, *td;
	ssize_t n;

	pd = opendir("/proc");
	if (!pd)
		return;
	while ((p = readdir(pd))) {
		bool holds = false;

		if (p->d_name[0] < '1' || p->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
		fd = opendir(path);
		if (!fd)
			continue;
		while (!holds && (f = readdir(fd))) {
			snprintf(path, sizeof(path), "/proc/%s/fd/%s",
				 p->d_name, f->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n > 0) {
				link[n] = 0;
				holds = !strcmp(link, node) ||
					!strcmp(link, "anon_inode:[vfio-device]");
			}
		}
		closedir(fd);
		if (!holds)
			continue;
		fprintf(stderr, "# pid %s holds %s or a VFIO device:\n",
			p->d_name, node);
		snprintf(path, sizeof(path), "/proc/%s/status", p->d_name);
		print_file(path, "  ");
		snprintf(path, sizeof(path), "/proc/%s/task", p->d_name);
		td = opendir(path);
		while (td && (t = readdir(td))) {
			if (t->d_name[0] == '.')
				continue;
			fprintf(stderr, "#   thread %s:\n", t->d_name);
			snprintf(path, sizeof(path), "/proc/%s/task/%s/stack",
				 p->d_name, t->d_name);
			print_file(path, "    ");
		}
		if (td)
			closedir(td);
	}
	closedir(pd);
}

int vmm_wait_released(const char *bdf, int ms)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int group = vmm_iommu_group(bdf);
	char node[64];
	int fd, i;

	if (group < 0)
		return group;
	snprintf(node, sizeof(node), "/dev/vfio/%d", group);
	for (i = 0; i <= ms / 20; i++) {
		fd = open(node, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (errno != EBUSY)
			return -errno;
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "# %s (%s) still busy after %d ms\n", node, bdf, ms);
	print_holders(node);
	return -EBUSY;
}

int vmm_open(struct vmm_dev *d, const char *bdf)
{
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	char path[64];
	int ret;

	memset(d, 0, sizeof(*d));
	d->container = d->group = d->fd = d->irq_fd = -1;
	snprintf(d->bdf, sizeof(d->bdf), "%s", bdf);

	d->groupid = vmm_iommu_group(bdf);
	if (d->groupid < 0)
		return d->groupid;
	d->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (d->container < 0)
		goto fail;
	if (ioctl(d->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		errno = EPROTO;
		goto fail;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%d", d->groupid);
	d->group = open(path, O_RDWR | O_CLOEXEC);
	if (d->group < 0)
		goto fail;
	if (ioctl(d->group, VFIO_GROUP_GET_STATUS, &gs))
		goto fail;
	if (!(gs.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		errno = EBUSY;
		goto fail;
	}
	if (ioctl(d->group, VFIO_GROUP_SET_CONTAINER, &d->container))
		goto fail;
	if (ioctl(d->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		goto fail;
	if (get_device_fd(d))
		goto fail;
	return 0;
fail:
	ret = -errno;
	vmm_close(d);
	return ret;
}

int vmm_fd_close(struct vmm_dev *d)
{
	int i, ret = 0;

	if (d->irq_fd >= 0)
		vmm_irq_disable(d);
	for (i = 0; i < VFIO_PCI_ROM_REGION_INDEX; i++) {
		if (d->bar_map[i])
			munmap(d->bar_map[i], d->regions[i].size);
		d->bar_map[i] = NULL;
	}
	if (d->fd >= 0 && close(d->fd))
		ret = -errno;
	d->fd = -1;
	return ret;
}

int vmm_fd_open(struct vmm_dev *d)
{
	if (d->group < 0 || d->fd >= 0)
		return -EINVAL;
	if (get_device_fd(d)) {
		int ret = -errno;

		if (d->fd >= 0)
			close(d->fd);
		d->fd = -1;
		return ret;
	}
	return 0;
}

int vmm_reopen(struct vmm_dev *d)
{
	int ret = vmm_fd_close(d);

	return vmm_fd_open(d) ?: ret;
}

void vmm_close(struct vmm_dev *d)
{
	int i;

	if (d->irq_fd >= 0)
		vmm_irq_disable(d);
	for (i = 0; i < VFIO_PCI_ROM_REGION_INDEX; i++) {
		if (d->bar_map[i])
			munmap(d->bar_map[i], d->regions[i].size);
		d->bar_map[i] = NULL;
	}
	if (d->fd >= 0)
		close(d->fd);
	if (d->group >= 0)
		close(d->group);
	if (d->container >= 0)
		close(d->container);
	d->fd = d->group = d->container = -1;
}

int vmm_ram_alloc(struct vmm_ram *ram, size_t size, uint64_t iova)
{
	memset(ram, 0, sizeof(*ram));
	ram->memfd = memfd_create("vmm-ram", MFD_CLOEXEC);
	if (ram->memfd < 0)
		return -errno;
	if (ftruncate(ram->memfd, size))
		goto fail;
	ram->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 ram->memfd, 0);
	if (ram->host == MAP_FAILED)
		goto fail;
	ram->size = size;
	ram->iova = iova;
	return 0;
fail:
	close(ram->memfd);
	ram->memfd = -1;
	ram->host = NULL;
	return -errno;
}

int vmm_dma_map(struct vmm_dev *d, struct vmm_ram *ram)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)ram->host,
		.iova = ram->iova,
		.size = ram->size,
	};

	if (ioctl(d->container, VFIO_IOMMU_MAP_DMA, &map))
		return -errno;
	ram->mapped = true;
	return 0;
}

int vmm_dma_unmap(struct vmm_dev *d, struct vmm_ram *ram)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = ram->iova,
		.size = ram->size,
	};

	if (ioctl(d->container, VFIO_IOMMU_UNMAP_DMA, &unmap))
		return -errno;
	ram->mapped = false;
	return 0;
}

/* Unmap @ram from @d's IOMMU if mapped, free it if allocated. */
void vmm_ram_release(struct vmm_dev *d, struct vmm_ram *ram)
{
	if (ram->mapped)
		vmm_dma_unmap(d, ram);
	if (ram->host)
		vmm_ram_free(ram);
}

void vmm_ram_free(struct vmm_ram *ram)
{
	if (ram->host)
		munmap(ram->host, ram->size);
	if (ram->memfd >= 0)
		close(ram->memfd);
	ram->host = NULL;
	ram->memfd = -1;
}

int vmm_region_read(struct vmm_dev *d, int index, uint64_t off, void *buf,
		    size_t len)
{
	ssize_t n = pread(d->fd, buf, len, d->regions[index].offset + off);

	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

int vmm_region_write(struct vmm_dev *d, int index, uint64_t off,
		     const void *buf, size_t len)
{
	ssize_t n = pwrite(d->fd, buf, len, d->regions[index].offset + off);

	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

uint32_t vmm_read32(struct vmm_dev *d, int bar, uint64_t off)
{
	uint32_t v = ~0u;

	vmm_region_read(d, bar, off, &v, sizeof(v));
	return v;
}

void vmm_write32(struct vmm_dev *d, int bar, uint64_t off, uint32_t val)
{
	vmm_region_write(d, bar, off, &val, sizeof(val));
}

uint64_t vmm_read64(struct vmm_dev *d, int bar, uint64_t off)
{
	uint64_t v = ~0ull;

	vmm_region_read(d, bar, off, &v, sizeof(v));
	return v;
}

void vmm_write64(struct vmm_dev *d, int bar, uint64_t off, uint64_t val)
{
	vmm_region_write(d, bar, off, &val, sizeof(val));
}

void *vmm_bar_mmap(struct vmm_dev *d, int bar)
{
	struct vfio_region_info *r = &d->regions[bar];
	void *p;

	if (d->bar_map[bar])
		return d->bar_map[bar];
	if (!(r->flags & VFIO_REGION_INFO_FLAG_MMAP)) {
		errno = EPERM;
		return NULL;
	}
	p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
		 r->offset);
	if (p == MAP_FAILED)
		return NULL;
	d->bar_map[bar] = p;
	return p;
}

uint32_t vmm_mmio_read32(struct vmm_dev *d, int bar, uint64_t off)
{
	volatile uint32_t *p = vmm_bar_mmap(d, bar);

	return p ? p[off / 4] : ~0u;
}

void vmm_mmio_write32(struct vmm_dev *d, int bar, uint64_t off, uint32_t val)
{
	volatile uint32_t *p = vmm_bar_mmap(d, bar);

	if (p)
		p[off / 4] = val;
}

static int irq_set(struct vmm_dev *d, unsigned int index, uint32_t flags,
		   int fd)
{
	struct {
		struct vfio_irq_set set;
		int32_t fd;
	} s = {
		.set = {
			.argsz = sizeof(s.set) + (fd >= 0 ? sizeof(int32_t) : 0),
			.flags = flags,
			.index = index,
			.start = 0,
			.count = (flags & VFIO_IRQ_SET_DATA_NONE) &&
				 (flags & VFIO_IRQ_SET_ACTION_TRIGGER) ? 0 : 1,
		},
		.fd = fd,
	};

	return ioctl(d->fd, VFIO_DEVICE_SET_IRQS, &s) ? -errno : 0;
}

int vmm_irq_enable(struct vmm_dev *d)
{
	static const unsigned int order[] = { VFIO_PCI_MSI_IRQ_INDEX,
					      VFIO_PCI_INTX_IRQ_INDEX };
	unsigned int i;
	int efd, ret = -ENODEV;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return -errno;
	for (i = 0; i < 2; i++) {
		struct vfio_irq_info info = { .argsz = sizeof(info),
					      .index = order[i] };

		if (ioctl(d->fd, VFIO_DEVICE_GET_IRQ_INFO, &info) ||
		    !info.count)
			continue;
		ret = irq_set(d, order[i], VFIO_IRQ_SET_DATA_EVENTFD |
			      VFIO_IRQ_SET_ACTION_TRIGGER, efd);
		if (!ret) {
			d->irq_fd = efd;
			d->irq_index = order[i];
			return 0;
		}
	}
	close(efd);
	return ret;
}

int vmm_irq_disable(struct vmm_dev *d)
{
	int ret;

	if (d->irq_fd < 0)
		return 0;
	ret = irq_set(d, d->irq_index, VFIO_IRQ_SET_DATA_NONE |
		      VFIO_IRQ_SET_ACTION_TRIGGER, -1);
	close(d->irq_fd);
	d->irq_fd = -1;
	return ret;
}

int vmm_irq_unmask(struct vmm_dev *d)
{
	if (d->irq_index != VFIO_PCI_INTX_IRQ_INDEX)
		return 0;
	return irq_set(d, d->irq_index, VFIO_IRQ_SET_DATA_NONE |
		       VFIO_IRQ_SET_ACTION_UNMASK, -1);
}

int vmm_irq_wait(struct vmm_dev *d, int timeout_ms)
{
	struct pollfd p = { .fd = d->irq_fd, .events = POLLIN };
	uint64_t cnt;
	int ret;

	if (d->irq_fd < 0)
		return -EINVAL;
	ret = poll(&p, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	if (!ret)
		return -ETIMEDOUT;
	if (read(d->irq_fd, &cnt, sizeof(cnt)) != sizeof(cnt))
		return -errno;
	return (int)cnt;
}

int vmm_reset(struct vmm_dev *d)
{
	return ioctl(d->fd, VFIO_DEVICE_RESET) ? -errno : 0;
}

int vmm_command_update(struct vmm_dev *d, uint16_t set, uint16_t clear)
{
	uint16_t cmd;
	int ret;

	ret = vmm_region_read(d, VFIO_PCI_CONFIG_REGION_INDEX, 0x04, &cmd,
			      sizeof(cmd));
	if (ret)
		return ret;
	cmd = (cmd & ~clear) | set;
	return vmm_region_write(d, VFIO_PCI_CONFIG_REGION_INDEX, 0x04, &cmd,
				sizeof(cmd));
}

int vmm_enable_bus_master(struct vmm_dev *d)
{
	return vmm_command_update(d, 0x6, 0);	/* MEMORY | MASTER */
}
