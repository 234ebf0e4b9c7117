/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VMM side of VFIO migration uAPI v2, as QEMU 8.1+ drives it: the
 * migration feature and device state, the data fd (PRE_COPY, STOP_COPY,
 * RESUMING), MIG_DATA_SIZE, DMA dirty logging (VFIO's DMA_LOGGING_* or,
 * where the kernel has no iova_bitmap, vfio_mig's netlink dirty log), and
 * the VMM's own RAM copy: device-dirty pages merged with the pages the
 * VMM's vCPU wrote, copied from source RAM to destination RAM.
 */
#ifndef VMIG_TEST_MIG_H
#define VMIG_TEST_MIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/vfio.h>

#include "genl.h"
#include "vmm.h"

/*
 * What 6.2 added to the uAPI; the build machine's headers are 6.1's.
 * Values as upstream's include/uapi/linux/vfio.h.
 */
#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY		(1 << 2)
#endif
#ifndef VFIO_MIG_GET_PRECOPY_INFO
#define VFIO_DEVICE_STATE_PRE_COPY	6
#define VFIO_DEVICE_STATE_PRE_COPY_P2P	7
struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};
#define VFIO_MIG_GET_PRECOPY_INFO	_IO(VFIO_TYPE, VFIO_BASE + 21)
#endif
#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
struct vfio_device_feature_mig_data_size {
	__aligned_u64 stop_copy_length;
};
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif
/* States of the newest uAPI this library knows: ERROR..PRE_COPY_P2P. */
#define MIG_STATE_NR	8

#define MIG_PAGE	4096ull

/* VFIO_DEVICE_FEATURE_MIGRATION: the migration flags, or -errno (ENOTTY). */
/*
 * VFIO_DEVICE_FEATURE with @flags and @len bytes of @data (at most 64),
 * copied back on success. 0 or -errno.
 */
int mig_feature(struct vmm_dev *d, uint32_t flags, void *data, size_t len);
int mig_features(struct vmm_dev *d, uint64_t *flags);
/*
 * VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET: 0 or -errno. *@data_fd gets
 * the data fd the arc opened, or -1 (it may be NULL when no fd is wanted:
 * one that comes anyway is closed).
 */
int mig_set_state(struct vmm_dev *d, uint32_t state, int *data_fd);
int mig_get_state(struct vmm_dev *d, uint32_t *state);
const char *mig_state_name(uint32_t state);
/* VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: 0 or -errno. */
int mig_data_size(struct vmm_dev *d, uint64_t *bytes);

/* A growing byte buffer for migration streams. */
struct mig_buf {
	uint8_t *data;
	size_t len, cap;
};
int mig_buf_append(struct mig_buf *b, const void *p, size_t len);
void mig_buf_free(struct mig_buf *b);

/* Bytes asked of one read() of the data fd (QEMU reads 1 MiB). */
extern size_t mig_read_chunk;

/* VFIO_MIG_GET_PRECOPY_INFO on a data fd: 0 or -errno. */
int mig_precopy_info(int data_fd, uint64_t *initial, uint64_t *dirty);
/*
 * PRE_COPY: read what the device has now, until PRECOPY_INFO says both
 * initial and dirty bytes are 0 or read() says ENOMSG (nothing now).
 * Appends to @b; returns the bytes read or -errno.
 */
ssize_t mig_read_precopy(int data_fd, struct mig_buf *b);
/* STOP_COPY: read to end of stream (read() == 0). Bytes read or -errno. */
ssize_t mig_read_stop_copy(int data_fd, struct mig_buf *b);
/* RESUMING: write @len bytes in writes of at most @chunk. 0 or -errno. */
int mig_write_stream(int data_fd, const void *p, size_t len, size_t chunk);

/*
 * DMA dirty log over one IOVA range of guest RAM, at MIG_PAGE granularity
 * for the VMM. Through VFIO_DEVICE_FEATURE_DMA_LOGGING_* where the kernel
 * has it, else through vfio_mig's netlink family (dirty-start/get/stop).
 */
enum mig_dirty_via {
	MIG_DIRTY_OFF,
	MIG_DIRTY_VFIO,
	MIG_DIRTY_NETLINK,
};

struct mig_dirty {
	struct vmm_dev *d;
	enum mig_dirty_via via;
	uint64_t iova, length;
	uint64_t page_size;	/* the device's logging page size */
	struct genl nl;		/* open while via == MIG_DIRTY_NETLINK */
	char err[384];		/* why the last call failed */
};

/* @force_netlink skips VFIO DMA logging (to test the fallback). */
int mig_dirty_start(struct mig_dirty *l, struct vmm_dev *d, uint64_t iova,
		    uint64_t length, bool force_netlink);
/*
 * Read and clear the log: the dirty pages are OR-ed into @bits, one bit a
 * MIG_PAGE from l->iova (little-endian 64-bit words). 0 or -errno.
 */
int mig_dirty_report(struct mig_dirty *l, uint64_t *bits);
int mig_dirty_stop(struct mig_dirty *l);
const char *mig_dirty_via_name(enum mig_dirty_via via);
/*
 * Roll @bdf back to RUNNING (a RESUMING stream dropped unapplied) as the
 * kernel does when a migration controller that moved the device goes
 * away: attach /dev/vfio-mig, set the state the device is in, close. 0 or
 * -errno.
 */
int mig_ctl_rollback(const char *bdf);
/* Stop whatever dirty log runs on @bdf, through netlink (for clean-up). */
int mig_dirty_kill(const char *bdf);

/* Bitmaps of MIG_PAGE pages. */
static inline size_t mig_bitmap_words(size_t bytes)
{
	return (bytes / MIG_PAGE + 63) / 64;
}

static inline bool mig_test_bit(const uint64_t *b, size_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}

static inline void mig_set_bit(uint64_t *b, size_t i)
{
	b[i / 64] |= 1ull << (i % 64);
}

size_t mig_bitmap_weight(const uint64_t *b, size_t nbits);

/*
 * The test VMM's own record of the guest RAM pages its vCPU wrote (the
 * part of guest RAM dirtying no device log sees). Thread-safe marks: a
 * vCPU thread writes, the migration thread takes.
 */
struct mig_cpu_log {
	uint64_t *bits;
	uint64_t iova;
	size_t pages;
};

int mig_cpu_log_init(struct mig_cpu_log *c, const struct vmm_ram *ram);
void mig_cpu_log_free(struct mig_cpu_log *c);
void mig_cpu_mark(struct mig_cpu_log *c, uint64_t iova, size_t len);
void mig_cpu_mark_all(struct mig_cpu_log *c);
/* The vCPU writes guest RAM: copy @len bytes to @iova, then mark. */
void mig_vcpu_write(struct mig_cpu_log *c, struct vmm_ram *ram,
		    uint64_t iova, const void *src, size_t len);
/* Move the marks into @bits (OR), clearing them. */
void mig_cpu_take(struct mig_cpu_log *c, uint64_t *bits);

/*
 * One RAM round of a migration: the device's dirty report (@l may be
 * NULL) merged with the vCPU's marks (@c may be NULL), and exactly those
 * pages copied from @src to @dst (same IOVA and size). The merged bitmap
 * is OR-ed into @merged when not NULL. Returns the pages copied or -errno.
 */
long mig_ram_round(struct mig_dirty *l, struct mig_cpu_log *c,
		   const struct vmm_ram *src, struct vmm_ram *dst,
		   uint64_t *merged);

/*
 * One end of a migration as the test VMM holds it: a device bound to
 * vfio-mig with a trap mode (set before the open, as the device needs),
 * and guest RAM mapped at @iova. Both ends of a migration map their RAM at
 * the same IOVA, as a VMM's guest physical layout is the same on both.
 */
struct mig_side {
	struct vmm_dev d;
	struct vmm_ram ram;
	bool open;
};

int mig_side_open(struct mig_side *s, const char *bdf, const char *trap_mode,
		  uint64_t iova, size_t size);
void mig_side_close(struct mig_side *s);
static inline uint8_t *mig_host(struct mig_side *s, uint64_t iova)
{
	return (uint8_t *)s->ram.host + (iova - s->ram.iova);
}

/* Stream bytes: CRC-32 as the stream's (zlib's crc32(0, p, len)), LE words */
uint32_t mig_crc32(const void *p, size_t len);
uint32_t mig_get32(const uint8_t *p);
void mig_put32(uint8_t *p, uint32_t v);

#endif
