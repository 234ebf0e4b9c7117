/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vfio-mig: the migration control device, /dev/vfio-mig.
 *
 * A migration controller (migctl) that is not the VMM drives the VFIO
 * migration of a device the VMM has open, and moves guest pages by IOVA
 * through the device's own IOMMU mapping, as vfio_dma_rw() does for
 * mediated drivers. See Documentation/live-migration.rst.
 *
 * Opening the device needs CAP_SYS_ADMIN: an attached fd reads and writes
 * the VM's memory. Each ioctl takes a structure that starts with argsz
 * (the size the caller filled) and flags; unknown flags are refused with
 * EINVAL.
 */
#ifndef _UAPI_LINUX_VFIO_MIG_CTL_H
#define _UAPI_LINUX_VFIO_MIG_CTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VFIO_MIG_CTL_DEVICE	"/dev/vfio-mig"
#define VFIO_MIG_CTL_TYPE	0xB7

/**
 * VFIO_MIG_CTL_ATTACH - bind this fd to one vfio-mig device
 *
 * The device must be open by a VMM (its VFIO device fd). One fd controls a
 * device at a time. The attachment ends when this fd is closed or when the
 * VMM closes the device; after the latter every ioctl fails with ENODEV.
 *
 * Errors: ENODEV no vfio-mig device at @bdf; ENOTCONN the device is not
 * open; EBUSY another fd controls it; EALREADY this fd is attached.
 */
struct vfio_mig_ctl_attach {
	__u32 argsz;
	__u32 flags;
	char bdf[16];		/* "DDDD:BB:DD.F", NUL-terminated */
};

#define VFIO_MIG_CTL_ATTACH	_IO(VFIO_MIG_CTL_TYPE, 0)

/**
 * VFIO_MIG_CTL_STATE - get or set the device's VFIO migration state
 *
 * With VFIO_MIG_CTL_STATE_SET, moves the device to @device_state (enum
 * vfio_device_mig_state) exactly as VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE
 * does on the VMM's device fd, one arc at a time, and returns the new
 * state's data fd (O_CLOEXEC) in @data_fd, or -1. Without the flag,
 * returns the current state in @device_state and -1 in @data_fd.
 *
 * Errors: as the VFIO feature (EINVAL for an illegal arc, the state
 * unchanged); EPERM after a VFIO_MIG_CTL_COMMIT_STOPPED commit for any
 * state but STOP.
 */
struct vfio_mig_ctl_state {
	__u32 argsz;
	__u32 flags;
#define VFIO_MIG_CTL_STATE_SET		(1 << 0)
	__u32 device_state;
	__s32 data_fd;
};

#define VFIO_MIG_CTL_STATE	_IO(VFIO_MIG_CTL_TYPE, 1)

/**
 * VFIO_MIG_CTL_PAGES - read or write guest pages by IOVA
 *
 * @count pages of @page_size bytes (4096 only), at the page-aligned IOVAs
 * of the array @iovas (__u64[@count]), are read into, or with
 * VFIO_MIG_CTL_PAGES_WRITE written from, the buffer @data
 * (@count * @page_size bytes), through the device's IOMMU mapping.
 * At most VFIO_MIG_CTL_PAGES_MAX pages per call. Any @data works; a
 * page-aligned one (best: in huge pages) is copied straight to or from the
 * guest's pages, without a bounce through the kernel. Once the device's
 * VMM named its RAM (netlink mig-ack of prepare, attribute "ram"), a write
 * reaches that RAM only, until the next phase is announced.
 *
 * On an error the pages before the failing one were done and @count says
 * how many. Errors: EINVAL misaligned IOVA or bad size; E2BIG too many
 * pages; EFAULT an IOVA not mapped for the device, or a bad user pointer;
 * EACCES a write outside the RAM the VMM named (nothing written);
 * EOPNOTSUPP the device is bound through iommufd (the pages are reached
 * through a type1 container only).
 */
struct vfio_mig_ctl_pages {
	__u32 argsz;
	__u32 flags;
#define VFIO_MIG_CTL_PAGES_WRITE	(1 << 0)
	__u32 count;
	__u32 page_size;
	__aligned_u64 iovas;
	__aligned_u64 data;
};

#define VFIO_MIG_CTL_PAGES_MAX	256
#define VFIO_MIG_CTL_PAGES	_IO(VFIO_MIG_CTL_TYPE, 2)

/**
 * VFIO_MIG_CTL_COMMIT - this side passed the migration's commit point
 *
 * Until it is called, closing this fd rolls the device back: to RUNNING
 * from any state the controller left it in (a partly written RESUMING
 * stream is dropped unapplied), and the VMM gets the "abort" phase if a
 * phase was announced (Documentation/live-migration.rst). A controller
 * that never moved the device (no VFIO_MIG_CTL_STATE set or
 * VFIO_MIG_CTL_PREPARE that succeeded or changed its state) leaves it in
 * the state the VMM set, a paused VM's STOP say.
 *
 * After it, closing this fd leaves the device as it is. With
 * VFIO_MIG_CTL_COMMIT_STOPPED (the source) the device must be in STOP and
 * stays there until the VMM closes it: no arc out of STOP is taken, from
 * this fd or from the VMM's.
 *
 * Errors: EINVAL STOPPED given and the device is not in STOP.
 */
struct vfio_mig_ctl_commit {
	__u32 argsz;
	__u32 flags;
#define VFIO_MIG_CTL_COMMIT_STOPPED	(1 << 0)
};

#define VFIO_MIG_CTL_COMMIT	_IO(VFIO_MIG_CTL_TYPE, 3)

/**
 * VFIO_MIG_CTL_PREPARE - move the device's slow state before the stop
 *
 * In PRE_COPY, with the guest running: hold the device's DMA (new starts
 * are kept, as in the P2P states, and read as running), wait for the
 * transfer in flight, and queue on the saving data fd the device state
 * that only a slow device operation reaches (edu: its buffer), as a
 * PROFILE_EARLY record (<linux/vfio_mig_stream.h>). The target loads it
 * as it arrives; the stop-copy data then refers to it, and neither side
 * runs that operation in the stop. The controller reads the data fd until
 * ENOMSG, sends it, and stops the guest only once the target has written
 * it (a switchover acknowledgment).
 *
 * DMA stays held until the device leaves PRE_COPY: to PRE_COPY_P2P (the
 * stop) or back to RUNNING (a rollback, which issues the kept starts); a
 * device reset drops the kept starts with the rest of its state. edu
 * borrows the guest page named by its debugfs "scratch" command, which
 * the VMM keeps unused: on the source for the save, and on the target,
 * named there too, for the load (the data fd's write() that carries the
 * record fails with ENXIO without one).
 *
 * The VMM's config space writes and VFIO_DEVICE_RESET wait while the
 * call runs.
 *
 * A kernel without PRE_COPY (6.1): the call is made in RUNNING, opens
 * the device's saving stream (its header, the register write log so far
 * and the record) and returns its fd in @data_fd (argsz must cover it,
 * else EOPNOTSUPP; set it to -1: a kernel before this field leaves it);
 * read it until ENOMSG as above. A second prepare (after a stop whose
 * DMA hold failed left the device in RUNNING, the stream open) queues on
 * the same stream and returns another fd for it, which reads on from
 * where the last read ended. DMA stays held until the device leaves
 * RUNNING: to RUNNING_P2P (the stop), or a "RUNNING" set in RUNNING (the
 * rollback: the kept starts go, the stream is dropped). The arc into
 * STOP_COPY gives the same stream's fd again, for the rest of it. After
 * ETIMEDOUT that stream is open too, without the record, and no fd is
 * returned: the STOP_COPY fd carries all of it. With PRE_COPY, @data_fd
 * is -1.
 *
 * A stop whose DMA hold failed leaves the device in its state (PRE_COPY,
 * or RUNNING without it) with DMA released and its stream open, as does
 * PRE_COPY_P2P -> PRE_COPY; a new prepare queues another early state on
 * that stream. A stream carries at most VMIG_STREAM_MAX_EARLY (4,
 * <linux/vfio_mig_stream.h>; a target refuses more): a prepare past them
 * fails with ENOSPC before anything is held, and the stop moves what
 * changed.
 *
 * Errors: EINVAL the device is not in PRE_COPY (without PRE_COPY: not
 * in RUNNING), or unknown flags; EALREADY prepared already; EOPNOTSUPP
 * the profile has no such state, or the device offers no migration (trap
 * mode none: no DMA start can be held), or (without PRE_COPY) argsz is
 * short of @data_fd; EMFILE no fd for the stream (before anything is held);
 * ENOSPC the stream carries VMIG_STREAM_MAX_EARLY early states already
 * (before anything is held);
 * ENXIO no guest page named to borrow;
 * EAGAIN the guest has the device's bus mastering off (these, before
 * anything is held); EBUSY a shadow serves the guest, or the guest's
 * transfer in flight did not end (DMA released); ETIMEDOUT the
 * device did not end the profile's own operation: DMA stays held until
 * the device leaves PRE_COPY, as if prepared, so that no kept start
 * meets it; the profile's error otherwise. After any error but EALREADY,
 * ETIMEDOUT and EFAULT, DMA is as before the call; after any error but
 * EFAULT nothing was queued: the stop moves the state. EFAULT (the
 * result not written back) leaves the device prepared, as VFIO's state
 * feature leaves a state it changed; without PRE_COPY the STOP_COPY fd
 * then carries the whole stream.
 */
struct vfio_mig_ctl_prepare {
	__u32 argsz;
	__u32 flags;
	__s32 data_fd;	/* out: without PRE_COPY, the saving data fd; else -1 */
};

#define VFIO_MIG_CTL_PREPARE	_IO(VFIO_MIG_CTL_TYPE, 4)

/**
 * VFIO_MIG_CTL_STAGE_FD - a staging fd: guest pages copied once, into pages
 * the kernel holds, and sent from there without a copy through the caller;
 * or received into guest pages straight from a pipe (VFIO_MIG_CTL_LAND)
 *
 * Returns a new fd (O_CLOEXEC) in @fd. VFIO_MIG_CTL_STAGE on it reads
 * guest pages, hashes and classifies them; the pages it found to be data
 * are then read from the fd in order: by splice() or sendfile() to a
 * socket without a copy (the socket's buffers hold the staged pages, which
 * the guest cannot change), or by read(). The fd reads as a file of the
 * staged pages' bytes, at the offset given (pread(), sendfile() with an
 * offset) or at the file position, which a stage leaves where it was
 * (lseek() it to 0 first). The fd holds a reference on
 * this control fd: closing the control fd rolls the device back only once
 * its staging fds are closed too. Each holds at most
 * VFIO_MIG_CTL_PAGES_MAX pages, and a control fd has at most
 * VFIO_MIG_CTL_STAGE_FDS_MAX staging fds open at a time.
 *
 * Errors: ENOTCONN this control fd is not attached; EINVAL flags or
 * @reserved; EOPNOTSUPP the kernel's page size is not 4096, or it has
 * HIGHMEM; ENOSPC VFIO_MIG_CTL_STAGE_FDS_MAX staging fds of this control
 * fd are open; EMFILE, ENOMEM.
 */
struct vfio_mig_ctl_stage_fd {
	__u32 argsz;
	__u32 flags;
	__s32 fd;	/* out */
	__u32 reserved;	/* 0 */
};

#define VFIO_MIG_CTL_STAGE_FD	_IO(VFIO_MIG_CTL_TYPE, 5)
#define VFIO_MIG_CTL_STAGE_FDS_MAX	32

/**
 * VFIO_MIG_CTL_STAGE - on a staging fd: read, hash and classify guest pages
 *
 * @count pages of 4096 bytes at the page-aligned IOVAs of @iovas
 * (__u64[@count], at most VFIO_MIG_CTL_PAGES_MAX) are copied from the
 * guest, as VFIO_MIG_CTL_PAGES reads them, into pages the kernel
 * allocates. For each, its SipHash-2-4 under @key (the 16 key bytes as
 * libsodium's crypto_shorthash_siphash24() takes them; a hash of 0 is
 * taken as 1) is compared with @hashes[i] (__u64[@count]; in: the hash
 * of what the stream's reader holds for the page, 0 for unknown) and the
 * page gets a kind in @kinds[i] (__u8[@count]):
 * VFIO_MIG_CTL_STAGE_UNCHANGED (equal), else VFIO_MIG_CTL_STAGE_ZERO (all
 * zero bytes), else VFIO_MIG_CTL_STAGE_DATA. @hashes[i] is set to the
 * page's hash (out). The data pages replace what the fd held, in order;
 * @ndata says how many, and reading the fd starts at the first. With
 * VFIO_MIG_CTL_STAGE_SUMS, @sums[k] (__u64[@count]) gets the block hash
 * of the k-th data page (the wire checksum's, <vfio-mig/mh_hash.h>).
 *
 * Errors: those of VFIO_MIG_CTL_PAGES, and ENOMEM. After any error the
 * fd holds no staged pages, and @hashes is as it was unless the error is
 * EFAULT.
 */
struct vfio_mig_ctl_stage {
	__u32 argsz;
	__u32 flags;
#define VFIO_MIG_CTL_STAGE_SUMS		(1 << 0)
	__u32 count;
	__u32 ndata;	/* out */
	__aligned_u64 iovas;
	__aligned_u64 hashes;
	__aligned_u64 kinds;
	__aligned_u64 sums;
	__u8 key[16];
};

#define VFIO_MIG_CTL_STAGE_UNCHANGED	0
#define VFIO_MIG_CTL_STAGE_ZERO		1
#define VFIO_MIG_CTL_STAGE_DATA		2

#define VFIO_MIG_CTL_STAGE	_IO(VFIO_MIG_CTL_TYPE, 6)

/**
 * VFIO_MIG_CTL_LAND - on a staging fd: where the bytes written next land
 *
 * Arms the fd to write @count pages of 4096 bytes at the page-aligned
 * IOVAs of @iovas (__u64[@count], at most VFIO_MIG_CTL_PAGES_MAX), in
 * order: the bytes then written to the fd, by write() or, without a copy
 * through the caller, by splice() from a pipe (a socket's data spliced
 * into it), land in those guest pages, byte k at @iovas[k / 4096] +
 * k % 4096, as VFIO_MIG_CTL_PAGES writes them (only into the RAM the VMM
 * named, once it did: EACCES). A write beyond the @count pages fails with
 * ENOSPC; a write to an fd not armed, with EINVAL. Whatever the fd staged
 * or armed before is dropped, whether or not the call succeeds. With
 * VFIO_MIG_CTL_LAND_SUMS the kernel takes each page's block hash
 * (<vfio-mig/mh_hash.h>) from the bytes as they pass: VFIO_MIG_CTL_LANDED
 * returns them.
 *
 * Errors: EINVAL a misaligned IOVA, unknown flags; E2BIG too many pages;
 * EFAULT.
 */
struct vfio_mig_ctl_land {
	__u32 argsz;
	__u32 flags;
#define VFIO_MIG_CTL_LAND_SUMS		(1 << 0)
	__u32 count;
	__u32 reserved;	/* 0 */
	__aligned_u64 iovas;
};

#define VFIO_MIG_CTL_LAND	_IO(VFIO_MIG_CTL_TYPE, 7)

/**
 * VFIO_MIG_CTL_LANDED - on a staging fd: what landed since the last
 * VFIO_MIG_CTL_LAND
 *
 * @bytes (out): the bytes written into guest pages; with
 * VFIO_MIG_CTL_LAND_SUMS and a non-zero @sums, @sums[i] (__u64, one per
 * page wholly landed: @bytes / 4096 of them) gets page i's block hash.
 *
 * Errors: EINVAL flags, or the fd is not armed; EFAULT.
 */
struct vfio_mig_ctl_landed {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 bytes;
	__aligned_u64 sums;
};

#define VFIO_MIG_CTL_LANDED	_IO(VFIO_MIG_CTL_TYPE, 8)

#endif /* _UAPI_LINUX_VFIO_MIG_CTL_H */
