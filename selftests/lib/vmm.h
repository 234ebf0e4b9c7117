/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The test VMM: the smallest VFIO user space that behaves like a real VMM
 * (legacy container + type1, as QEMU does on kernels without iommufd).
 * Every vfio-mig selftest drives devices through it.
 */
#ifndef VMIG_TEST_VMM_H
#define VMIG_TEST_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vfio.h>

#define VMM_MAX_REGIONS	16
#define VMM_MAX_IRQS	8

/* Guest RAM: a memfd mapped into this process and into the IOMMU. */
struct vmm_ram {
	int memfd;
	void *host;
	size_t size;
	uint64_t iova;
	bool mapped;
};

struct vmm_dev {
	char bdf[32];
	int container;
	int group;
	int groupid;
	int fd;
	struct vfio_device_info info;
	struct vfio_region_info regions[VMM_MAX_REGIONS];
	void *bar_map[VFIO_PCI_ROM_REGION_INDEX];
	int irq_fd;		/* eventfd for the enabled MSI/INTx vector, or -1 */
	unsigned int irq_index;
};

/* sysfs helpers (return 0 or -errno) */
int vmm_sysfs_write(const char *path, const char *val);
int vmm_sysfs_read(const char *path, char *buf, size_t len);
int vmm_driver_of(const char *bdf, char *drv, size_t len);
int vmm_bind(const char *bdf, const char *driver);
int vmm_unbind(const char *bdf);
int vmm_find(uint16_t vendor, uint16_t device, bool want_vf,
	     char bdfs[][32], int max);
int vmm_iommu_group(const char *bdf);

/*
 * Wait up to @ms for @bdf's IOMMU group to be free (its /dev/vfio node
 * opens). Returns 0, or -EBUSY after printing, as TAP comments, who holds
 * the group's node: each process, its state and each thread's kernel
 * stack. The other errors as vmm_iommu_group() and open() give them.
 */
int vmm_wait_released(const char *bdf, int ms);

/* device lifecycle */
int vmm_open(struct vmm_dev *d, const char *bdf);
void vmm_close(struct vmm_dev *d);
/*
 * The device fd alone, keeping container, group and DMA mappings:
 * vmm_fd_close() drops it (and the IRQ and BAR mmaps that hang on it),
 * vmm_fd_open() gets it again from the group (GET_DEVICE_FD: the device
 * is opened anew, as after a VMM restart), vmm_reopen() does both.
 */
int vmm_fd_close(struct vmm_dev *d);
int vmm_fd_open(struct vmm_dev *d);
int vmm_reopen(struct vmm_dev *d);

/* guest RAM and DMA mappings */
int vmm_ram_alloc(struct vmm_ram *ram, size_t size, uint64_t iova);
int vmm_dma_map(struct vmm_dev *d, struct vmm_ram *ram);
int vmm_dma_unmap(struct vmm_dev *d, struct vmm_ram *ram);
void vmm_ram_free(struct vmm_ram *ram);
void vmm_ram_release(struct vmm_dev *d, struct vmm_ram *ram);

/* BAR and config access through the device fd (the trapped path) */
int vmm_region_read(struct vmm_dev *d, int index, uint64_t off, void *buf,
		    size_t len);
int vmm_region_write(struct vmm_dev *d, int index, uint64_t off,
		     const void *buf, size_t len);
uint32_t vmm_read32(struct vmm_dev *d, int bar, uint64_t off);
void vmm_write32(struct vmm_dev *d, int bar, uint64_t off, uint32_t val);
uint64_t vmm_read64(struct vmm_dev *d, int bar, uint64_t off);
void vmm_write64(struct vmm_dev *d, int bar, uint64_t off, uint64_t val);

/* BAR access through mmap (the direct path) */
void *vmm_bar_mmap(struct vmm_dev *d, int bar);
uint32_t vmm_mmio_read32(struct vmm_dev *d, int bar, uint64_t off);
void vmm_mmio_write32(struct vmm_dev *d, int bar, uint64_t off, uint32_t val);

/* interrupts: one vector of MSI (preferred) or INTx, signalled on an eventfd */
int vmm_irq_enable(struct vmm_dev *d);
int vmm_irq_disable(struct vmm_dev *d);
/* Wait up to timeout_ms for the vector; returns the count or -errno. */
int vmm_irq_wait(struct vmm_dev *d, int timeout_ms);
int vmm_irq_unmask(struct vmm_dev *d);

int vmm_reset(struct vmm_dev *d);
/* Set memory decoding and bus mastering in the command register. */
int vmm_enable_bus_master(struct vmm_dev *d);
/* Set then clear bits of the command register through the config region. */
int vmm_command_update(struct vmm_dev *d, uint16_t set, uint16_t clear);

/* time in microseconds (CLOCK_MONOTONIC) */
uint64_t vmm_now_us(void);

#endif
