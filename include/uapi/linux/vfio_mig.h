/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-3-Clause) */
/* Do not edit directly, auto-generated from: */
/*	Documentation/netlink/specs/vfio-mig.yaml */
/* YNL-GEN uapi header */

#ifndef _UAPI_LINUX_VFIO_MIG_H
#define _UAPI_LINUX_VFIO_MIG_H

#define VFIO_MIG_FAMILY_NAME	"vfio_mig"
#define VFIO_MIG_FAMILY_VERSION	1

/**
 * enum vfio_mig_trap_mode - Which BAR accesses vfio-mig traps (see
 *   Documentation/register-sync.rst).
 * @VFIO_MIG_TRAP_MODE_NONE: Full passthrough, as vfio-pci.
 * @VFIO_MIG_TRAP_MODE_SPARSE: Only the pages the device profile names are
 *   trapped.
 * @VFIO_MIG_TRAP_MODE_ALL: No BAR mmap; every access goes through the driver.
 */
enum vfio_mig_trap_mode {
	VFIO_MIG_TRAP_MODE_NONE,
	VFIO_MIG_TRAP_MODE_SPARSE,
	VFIO_MIG_TRAP_MODE_ALL,
};

/**
 * enum vfio_mig_mig_state - VFIO migration state of the device (enum
 *   vfio_device_mig_state, same values); pre-copy states exist on kernels 6.2
 *   and later.
 */
enum vfio_mig_mig_state {
	VFIO_MIG_MIG_STATE_ERROR,
	VFIO_MIG_MIG_STATE_STOP,
	VFIO_MIG_MIG_STATE_RUNNING,
	VFIO_MIG_MIG_STATE_STOP_COPY,
	VFIO_MIG_MIG_STATE_RESUMING,
	VFIO_MIG_MIG_STATE_RUNNING_P2P,
	VFIO_MIG_MIG_STATE_PRE_COPY,
	VFIO_MIG_MIG_STATE_PRE_COPY_P2P,
};

/**
 * enum vfio_mig_mig_phase - A step of a live migration between hosts,
 *   announced by the migration controller to the device's VMM
 *   (Documentation/live-migration.rst).
 * @VFIO_MIG_MIG_PHASE_BEGIN: Source. Start the dirty log over your RAM; track
 *   vCPU writes.
 * @VFIO_MIG_MIG_PHASE_PAUSE: Source. Stop the vCPUs; dirty-mark every page
 *   they wrote.
 * @VFIO_MIG_MIG_PHASE_ABORT: Both. Not migrated: the source resumes its vCPUs,
 *   the target discards what it received. Also sent by the kernel when a
 *   controller goes away before its commit point.
 * @VFIO_MIG_MIG_PHASE_COMMIT: Source. The VM runs on the target now; never run
 *   it here.
 * @VFIO_MIG_MIG_PHASE_PREPARE: Target. Ack when the device is open and RAM
 *   mapped, vCPUs idle.
 * @VFIO_MIG_MIG_PHASE_START: Target. The device runs with the source's state;
 *   start vCPUs.
 */
enum vfio_mig_mig_phase {
	VFIO_MIG_MIG_PHASE_BEGIN = 1,
	VFIO_MIG_MIG_PHASE_PAUSE,
	VFIO_MIG_MIG_PHASE_ABORT,
	VFIO_MIG_MIG_PHASE_COMMIT,
	VFIO_MIG_MIG_PHASE_PREPARE,
	VFIO_MIG_MIG_PHASE_START,
};

enum {
	VFIO_MIG_A_DEV_BDF = 1,
	VFIO_MIG_A_DEV_VENDOR,
	VFIO_MIG_A_DEV_DEVICE,
	VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR,
	VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE,
	VFIO_MIG_A_DEV_REVISION,
	VFIO_MIG_A_DEV_IOMMU_GROUP,
	VFIO_MIG_A_DEV_PROFILE,
	VFIO_MIG_A_DEV_TRAP_MODE,
	VFIO_MIG_A_DEV_OPEN,
	VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE,
	VFIO_MIG_A_DEV_COUNTERS,
	VFIO_MIG_A_DEV_MIG_STATE,

	__VFIO_MIG_A_DEV_MAX,
	VFIO_MIG_A_DEV_MAX = (__VFIO_MIG_A_DEV_MAX - 1)
};

enum {
	VFIO_MIG_A_COUNTERS_TRAPPED_READS = 1,
	VFIO_MIG_A_COUNTERS_TRAPPED_WRITES,
	VFIO_MIG_A_COUNTERS_LOG_ENTRIES,
	VFIO_MIG_A_COUNTERS_LOG_OVERFLOWS,
	VFIO_MIG_A_COUNTERS_LOG_NEXT_SEQ,
	VFIO_MIG_A_COUNTERS_LOG_LOSSY,
	VFIO_MIG_A_COUNTERS_DIRTY_LOGGING,
	VFIO_MIG_A_COUNTERS_DIRTY_MARKS,
	VFIO_MIG_A_COUNTERS_DIRTY_PAGES,
	VFIO_MIG_A_COUNTERS_DIRTY_REPORTS,
	VFIO_MIG_A_COUNTERS_DIRTY_OOR_MARKS,
	VFIO_MIG_A_COUNTERS_DIRTY_LAST_REPORT_PAGES,

	__VFIO_MIG_A_COUNTERS_MAX,
	VFIO_MIG_A_COUNTERS_MAX = (__VFIO_MIG_A_COUNTERS_MAX - 1)
};

enum {
	VFIO_MIG_A_REGLOG_BDF = 1,
	VFIO_MIG_A_REGLOG_SINCE,
	VFIO_MIG_A_REGLOG_SEQ,
	VFIO_MIG_A_REGLOG_TS_NS,
	VFIO_MIG_A_REGLOG_BAR,
	VFIO_MIG_A_REGLOG_OFFSET,
	VFIO_MIG_A_REGLOG_WIDTH,
	VFIO_MIG_A_REGLOG_VALUE,

	__VFIO_MIG_A_REGLOG_MAX,
	VFIO_MIG_A_REGLOG_MAX = (__VFIO_MIG_A_REGLOG_MAX - 1)
};

enum {
	VFIO_MIG_A_DIRTY_RANGE_IOVA = 1,
	VFIO_MIG_A_DIRTY_RANGE_LENGTH,

	__VFIO_MIG_A_DIRTY_RANGE_MAX,
	VFIO_MIG_A_DIRTY_RANGE_MAX = (__VFIO_MIG_A_DIRTY_RANGE_MAX - 1)
};

enum {
	VFIO_MIG_A_DIRTY_BDF = 1,
	VFIO_MIG_A_DIRTY_PAGE_SIZE,
	VFIO_MIG_A_DIRTY_RANGE,
	VFIO_MIG_A_DIRTY_IOVA,
	VFIO_MIG_A_DIRTY_LENGTH,
	VFIO_MIG_A_DIRTY_CLEAR,
	VFIO_MIG_A_DIRTY_BITMAP,
	VFIO_MIG_A_DIRTY_GENERATION,

	__VFIO_MIG_A_DIRTY_MAX,
	VFIO_MIG_A_DIRTY_MAX = (__VFIO_MIG_A_DIRTY_MAX - 1)
};

enum {
	VFIO_MIG_A_MIG_BDF = 1,
	VFIO_MIG_A_MIG_PHASE,
	VFIO_MIG_A_MIG_SEQ,
	VFIO_MIG_A_MIG_RESULT,
	VFIO_MIG_A_MIG_RAM,

	__VFIO_MIG_A_MIG_MAX,
	VFIO_MIG_A_MIG_MAX = (__VFIO_MIG_A_MIG_MAX - 1)
};

enum {
	VFIO_MIG_CMD_DEV_GET = 1,
	VFIO_MIG_CMD_DEV_SET,
	VFIO_MIG_CMD_REGLOG_GET,
	VFIO_MIG_CMD_DIRTY_START,
	VFIO_MIG_CMD_DIRTY_STOP,
	VFIO_MIG_CMD_DIRTY_GET,
	VFIO_MIG_CMD_DEV_BIND_NTF,
	VFIO_MIG_CMD_DEV_UNBIND_NTF,
	VFIO_MIG_CMD_DEV_CHANGE_NTF,
	VFIO_MIG_CMD_LOG_OVERFLOW_NTF,
	VFIO_MIG_CMD_MIG_STATE_NTF,
	VFIO_MIG_CMD_MIG_PHASE,
	VFIO_MIG_CMD_MIG_ACK,
	VFIO_MIG_CMD_MIG_PHASE_NTF,
	VFIO_MIG_CMD_MIG_ACK_NTF,
	VFIO_MIG_CMD_DIRTY_MARK,

	__VFIO_MIG_CMD_MAX,
	VFIO_MIG_CMD_MAX = (__VFIO_MIG_CMD_MAX - 1)
};

#define VFIO_MIG_MCGRP_EVENTS	"events"
#define VFIO_MIG_MCGRP_MIG	"mig"

#endif /* _UAPI_LINUX_VFIO_MIG_H */
