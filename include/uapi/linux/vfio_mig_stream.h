/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The migration stream of vfio-mig, version 1: the bytes a VMM reads from
 * the migration data fd of the source device and writes, unchanged, to the
 * data fd of the target device (Documentation/migration.rst).
 *
 * VMMs treat the stream as opaque; this header is for tools and tests.
 * Everything is little-endian. A stream is one header followed by records;
 * the last record is VMIG_REC_END.
 */
#ifndef _UAPI_LINUX_VFIO_MIG_STREAM_H
#define _UAPI_LINUX_VFIO_MIG_STREAM_H

#include <linux/types.h>

#define VMIG_STREAM_MAGIC	"VMIGSTRM"
#define VMIG_STREAM_MAJOR	1
#define VMIG_STREAM_MINOR	3

/* Features a stream uses; a target refuses bits it does not know. */
#define VMIG_STREAM_F_PRECOPY	(1U << 0)	/* REG_LOG records precede the state */
#define VMIG_STREAM_F_ALL	VMIG_STREAM_F_PRECOPY

/**
 * struct vmig_stream_hdr - the first bytes of a stream
 * @magic: VMIG_STREAM_MAGIC, no terminating zero
 * @major: VMIG_STREAM_MAJOR; a target refuses any other
 * @minor: compatible additions; a target accepts any
 * @hdr_len: bytes in the header, crc included (>= sizeof, <= 4096); a
 *	newer minor may append fields, which an older target skips
 * @features: VMIG_STREAM_F_*
 * @reserved0: zero
 * @vendor: PCI identity of the source device...
 * @device: ...
 * @subvendor: ...
 * @subdevice: ...
 * @class: class code (24 bits)
 * @revision: revision id
 * @trap_mode: the source's trap mode (0 none, 1 sparse, 2 all)
 * @reserved1: zero
 * @bar_len: length of each standard BAR (0: absent)
 * @profile: name of the source's device profile, zero padded
 * @profile_version: version of that profile's state
 * @reserved2: zero
 * @reserved3: zero
 * @crc: CRC-32 (as zlib's crc32()) of the @hdr_len - 4 bytes before it;
 *	the last 4 bytes of the header whatever its length
 */
struct vmig_stream_hdr {
	__u8 magic[8];
	__le16 major;
	__le16 minor;
	__le32 hdr_len;
	__le32 features;
	__le32 reserved0;
	__le16 vendor;
	__le16 device;
	__le16 subvendor;
	__le16 subdevice;
	__le32 class;
	__u8 revision;
	__u8 trap_mode;
	__u8 reserved1[2];
	__le64 bar_len[6];
	char profile[32];
	__le32 profile_version;
	__le32 reserved2;
	__le32 reserved3[3];
	__le32 crc;
};

/* Record types */
enum vmig_stream_rec_type {
	/*
	 * Write log entries, pre-copy: struct vmig_stream_log then entries.
	 * Consecutive REG_LOG records must be contiguous in sequence numbers
	 * (the target refuses the stream otherwise); if the last one and the
	 * REG_STATE tail are not, the target replays the register
	 * file alone.
	 */
	VMIG_REC_REG_LOG = 1,
	/* The register state: a snapshot in Documentation/register-sync.rst form. */
	VMIG_REC_REG_STATE = 2,
	/*
	 * The profile's device state: struct vmig_stream_profile, then the
	 * profile's blob, opaque to everyone but that profile (edu: the guest
	 * page it borrowed and its 4 KiB buffer). Since 1.1; in 1.0 the
	 * payload was a borrowed page's IOVA and the blob, sent only by edu
	 * profile version 1, whose streams a 1.1 target refuses at the
	 * header (profile version).
	 */
	VMIG_REC_PROFILE_STATE = 3,
	/*
	 * Work the source's profile held in a P2P state, in the profile's
	 * form (edu: struct vmig_stream_held[], its DMA start commands).
	 */
	VMIG_REC_HELD_WRITES = 4,
	/*
	 * The source's guest was served by its shadow adapter (since 1.2):
	 * struct vmig_stream_shadow, after REG_STATE. REG_STATE and
	 * PROFILE_STATE then hold the shadow's state. A target with a shadow
	 * for the profile serves the guest with its own from that state and
	 * brings its device to it in the background; one without restores
	 * the device from them as from any stream.
	 */
	VMIG_REC_SHADOW = 5,
	/*
	 * Device state that moves before the stop (since 1.3): a
	 * PROFILE_STATE payload (struct vmig_stream_profile, then the
	 * profile's blob), sent in pre-copy after the controller prepared
	 * the switchover (VFIO_MIG_CTL_PREPARE), before REG_STATE; a later
	 * one replaces an earlier one. The target's profile loads it onto
	 * the device as the record arrives, inside the write() that
	 * completes it, and refuses the stream if it cannot: once that
	 * write() returns, the slow part of the device's restore is done.
	 * The PROFILE_STATE blob at the end names the early state it builds
	 * on (edu: EDU_STATE_EARLY and its id).
	 */
	VMIG_REC_PROFILE_EARLY = 6,
	/* End of stream, no payload. */
	VMIG_REC_END = 0x7fffffff,
};

/*
 * PROFILE_EARLY records a stream may carry (each costs the target a slow
 * device operation): a target refuses more, and a source queues no more.
 */
#define VMIG_STREAM_MAX_EARLY	4

/**
 * struct vmig_stream_rec - record header
 * @type: enum vmig_stream_rec_type
 * @len: payload bytes that follow (bounded per type)
 * @crc: CRC-32 of the payload
 * @reserved: zero
 */
struct vmig_stream_rec {
	__le32 type;
	__le32 len;
	__le32 crc;
	__le32 reserved;
};

/**
 * struct vmig_stream_profile - PROFILE_STATE payload header (1.1)
 * @name: the profile that wrote the blob, zero padded; must be the
 *	target's
 * @version: that profile's state version; must be the target's
 * @len: bytes of blob that follow: the rest of the payload, at most the
 *	target profile's state size
 * @reserved: zero
 */
struct vmig_stream_profile {
	char name[32];
	__le32 version;
	__le32 len;
	__le32 reserved[2];
};

/**
 * struct vmig_stream_shadow - SHADOW payload (1.2)
 * @version: VMIG_STREAM_SHADOW_VERSION; a target refuses any other
 * @flags: zero (none defined)
 * @reserved: zero
 */
struct vmig_stream_shadow {
	__le32 version;
	__le32 flags;
	__le32 reserved[2];
};

#define VMIG_STREAM_SHADOW_VERSION	1

/* REG_LOG payload: @count entries with sequence numbers @first_seq... */
struct vmig_stream_log {
	__le64 first_seq;
	__le32 count;
	__le32 reserved;
};

struct vmig_stream_log_entry {
	__le64 value;
	__le32 offset;
	__u8 bar;
	__u8 width;
	__le16 reserved;
};

struct vmig_stream_held {
	__le64 value;
	__le32 offset;
	__u8 bar;
	__u8 width;
	__le16 reserved;
};

#endif /* _UAPI_LINUX_VFIO_MIG_STREAM_H */
