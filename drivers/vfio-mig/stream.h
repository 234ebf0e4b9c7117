/* SPDX-License-Identifier: GPL-2.0 */
/* vfio-mig: the migration stream, version 1 (stream.c). */
#ifndef _VFIO_MIG_STREAM_H
#define _VFIO_MIG_STREAM_H

#include "lm.h"

/* Source side: each returns a chunk holding one complete piece. */
struct vmig_chunk *vmig_stream_header(struct vmig_device *mdev, u32 features);
struct vmig_chunk *vmig_stream_record(u32 type, const void *data, size_t len);
/*
 * The write log from *@from to now as one REG_LOG record, advancing *@from;
 * NULL when there is nothing new. Sets *@lost if entries were overwritten
 * before being read.
 */
struct vmig_chunk *vmig_stream_log_record(struct vmig_device *mdev, u64 *from,
					  bool *lost);
/*
 * The device state blob of profile @p, opaque to the stream, as a
 * PROFILE_STATE or PROFILE_EARLY record (@type).
 */
struct vmig_chunk *vmig_stream_profile_record(const struct vmig_profile *p,
					      u32 type, const void *blob,
					      u32 len);
/* Sizes, for estimates. */
size_t vmig_stream_log_bytes(u64 entries);
size_t vmig_stream_fixed_bytes(bool with_hdr);

/* Target side. */
struct vmig_stream_rx;

/* What a complete stream carries, once checked; @snap and @held are ours. */
struct vmig_stream_result {
	struct vmig_snapshot *snap;
	void *held;
	u32 held_len;
	bool shadow;	/* a SHADOW record: the source's shadow's state */
	bool early;	/* PROFILE_EARLY records were loaded */
};

struct vmig_stream_rx *vmig_stream_rx_alloc(void);
void vmig_stream_rx_free(struct vmig_stream_rx *rx);
/*
 * Bytes consumed (all of them) or the stream's first error, which sticks;
 * @buf is the kernel's copy of the writer's bytes.
 */
ssize_t vmig_stream_rx_write(struct vmig_stream_rx *rx,
			     struct vmig_device *mdev, const u8 *buf,
			     size_t len);
/* The stream is complete: hand over what it carries (res->snap is ours). */
int vmig_stream_rx_finish(struct vmig_stream_rx *rx, struct vmig_device *mdev,
			  struct vmig_stream_result *res);

#endif /* _VFIO_MIG_STREAM_H */
