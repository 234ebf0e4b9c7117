/* SPDX-License-Identifier: GPL-2.0 */
/*
 * QEMU's educational device (1234:11e8): its registers and the edu
 * profile's device state blob, shared by the profile (edu.c) and the edu
 * shadow (drivers/sriov-shadow/edu.c). Register map: QEMU's
 * docs/specs/edu.rst.
 */
#ifndef _VFIO_MIG_PROFILE_EDU_H
#define _VFIO_MIG_PROFILE_EDU_H

#include <linux/types.h>

#define EDU_ID			0x00
#define EDU_LIVENESS		0x04
#define EDU_FACTORIAL		0x08
#define EDU_STATUS		0x20
#define EDU_IRQ_STATUS		0x24
#define EDU_IRQ_RAISE		0x60
#define EDU_IRQ_ACK		0x64
#define EDU_DMA_SRC		0x80
#define EDU_DMA_DST		0x88
#define EDU_DMA_COUNT		0x90
#define EDU_DMA_CMD		0x98

#define EDU_STATUS_COMPUTING	0x01
#define EDU_STATUS_IRQFACT	0x80
#define EDU_CMD_RUN		0x1
#define EDU_CMD_TO_RAM		0x2
#define EDU_CMD_IRQ		0x4
#define EDU_IRQ_FACT		0x1
#define EDU_IRQ_DMA		0x100

#define EDU_BUF_ADDR		0x40000
#define EDU_BUF_SIZE		4096
/*
 * The buffer's last byte is beyond the device's DMA reach (QEMU 7.2 stops
 * the VM on a transfer that touches it): transfers end before it.
 */
#define EDU_BUF_DMA		(EDU_BUF_SIZE - 1)
#define EDU_DMA_MASK		((1ULL << 28) - 1)
#define EDU_FACT_MAX		34	/* n! mod 2^32 is 0 from here on */

/*
 * Whether the device makes a transfer of @cnt bytes at buffer address
 * @dev (its source to RAM, its destination from RAM). QEMU 7.2 aborts
 * itself, the whole VM, on one it does not (hw_error()): outside the
 * buffer, touching its last byte, or of no bytes. So the profile does not
 * pass such a start to the device, and the shadow's model does not make it.
 */
static inline bool edu_dma_fits(u64 dev, u64 cnt)
{
	return cnt && cnt <= EDU_BUF_DMA && dev >= EDU_BUF_ADDR &&
	       dev - EDU_BUF_ADDR <= EDU_BUF_DMA - cnt;
}

/*
 * The device state blob; the profile's version follows it. 2: the
 * borrowed page travels in it (1 had it in the stream's record header).
 * 3: @cmd and @early_id.
 */
#define EDU_STATE_VERSION	3
#define EDU_STATE_BUF		0x1	/* @buf holds the device buffer */
#define EDU_STATE_CMD		0x2	/* @cmd holds the command's bits */
/*
 * The device buffer and command bits are those of the early state
 * (PROFILE_EARLY record) @early_id, which the target loaded already.
 */
#define EDU_STATE_EARLY		0x4

/*
 * @scratch: guest IOVA of the page the source borrowed (0: none); in a
 * migration the target borrows the same page if its VMM mapped it
 * @cmd: with EDU_STATE_CMD, the DMA command register's direction and
 * interrupt bits as the guest sees them (the device's own may be those of
 * the profile's last transfer); else the captured register gives them
 * @early_id: an early state's (non-zero) id: in the early blob, and in
 * the final one with EDU_STATE_EARLY
 */
struct edu_state {
	__le32 version;
	__le32 flags;
	__le64 scratch;
	__le32 cmd;
	__le32 reserved;
	__le64 early_id;
	u8 buf[EDU_BUF_SIZE];
};

/*
 * Version 2, from a source with a module before early state: restored
 * as version 3 without @cmd and @early_id (edu_restore()).
 */
#define EDU_STATE_VERSION_V2	2
struct edu_state_v2 {
	__le32 version;
	__le32 flags;
	__le64 scratch;
	u8 buf[EDU_BUF_SIZE];
};

/* n! as the device computes it: modulo 2^32. */
static inline u32 edu_fact32(u32 n)
{
	u32 r = 1;

	if (n >= EDU_FACT_MAX)
		return 0;
	while (n > 1)
		r *= n--;
	return r;
}

#endif /* _VFIO_MIG_PROFILE_EDU_H */
