/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Register state sync from user space: vfio-mig's per-device sysfs
 * attributes (trap mode, profile), module parameters, and its debugfs
 * test interface to snapshots and replay (Documentation/register-sync.rst).
 */
#ifndef VMIG_TEST_REGSYNC_H
#define VMIG_TEST_REGSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edu.h"

/* sysfs: /sys/bus/pci/devices/BDF/vfio_mig/{trap_mode,profile} */
int rs_set_trap_mode(const char *bdf, const char *mode);
int rs_get_trap_mode(const char *bdf, char *buf, size_t len);
int rs_set_profile(const char *bdf, const char *name);
/* /sys/module/vfio_mig/parameters/NAME */
int rs_set_param(const char *name, const char *val);

/* debugfs: /sys/kernel/debug/vfio-mig/BDF/ctl; returns 0 or -errno */
int rs_ctl(const char *bdf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The value of "key: value" in the device's result or counters file. */
int rs_result(const char *bdf, char *buf, size_t len);
long long rs_result_num(const char *bdf, const char *key);
long long rs_counter(const char *bdf, const char *key);
/* Find "key: value" in @text; returns the value or @dflt. */
long long rs_key(const char *text, const char *key, long long dflt);

/* The stored snapshot's bytes (read) or a replacement (one write). */
ssize_t rs_snapshot_read(const char *bdf, void *buf, size_t len);
int rs_snapshot_write(const char *bdf, const void *buf, size_t len);
/* The payload of record @type in a snapshot, or NULL; sets *@len. */
const uint8_t *rs_snapshot_record(const void *snap, size_t snap_len,
				  uint16_t type, uint32_t *len);
#define RS_REC_IDENTITY	1
#define RS_REC_DEVSTATE	7

/* Every 4-byte register of the edu register page, read through the fd. */
#define RS_EDU_REGS	(0x100 / 4)
void rs_edu_dump(struct edu *e, uint32_t regs[RS_EDU_REGS]);
/* The device buffer (all but its last byte) by DMA into @iova. */
int rs_edu_read_buffer(struct edu *e, uint64_t iova, void *host,
		       uint8_t out[EDU_BUF_SIZE]);

/*
 * One edu as a test VMM drives it: vfio-mig with a trap mode and the edu
 * profile, 1 MiB of guest RAM at RS_RAM_IOVA, the last page of which is
 * reserved as the profile's DMA scratch page, and optionally an interrupt.
 */
#define RS_RAM_IOVA	0x100000ull
#define RS_RAM_SIZE	(1u << 20)
#define RS_SCRATCH	(RS_RAM_IOVA + RS_RAM_SIZE - 4096)

struct rs_side {
	char bdf[32];
	struct vmm_dev d;
	struct vmm_ram ram;
	struct edu e;
	bool is_open;
};

int rs_side_open(struct rs_side *s, const char *bdf, const char *mode,
		 const char *profile, bool irq);
void rs_side_close(struct rs_side *s);
static inline uint8_t *rs_host(struct rs_side *s, uint64_t iova)
{
	return (uint8_t *)s->ram.host + (iova - RS_RAM_IOVA);
}

#endif
