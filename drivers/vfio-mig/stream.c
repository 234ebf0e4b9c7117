// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the migration stream, version 1 (Documentation/migration.rst,
 * include/uapi/linux/vfio_mig_stream.h): building its pieces on the source
 * and parsing it, as it arrives, on the target.
 *
 * The parser trusts nothing: the header is checked (magic, version, crc,
 * features, then the source's identity and profile against this device)
 * as soon as its last byte arrives, and every record header before its
 * payload is allocated; every length is bounded per record type, every
 * payload checked against its crc before use. The first error sticks:
 * every later write and the RESUMING -> STOP arc fail with it.
 */
#include <linux/crc32.h>
#include <linux/ctype.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <uapi/linux/vfio_mig_stream.h>

#include "lm.h"
#include "reglog.h"
#include "regstate.h"
#include "replay.h"
#include "snapshot.h"
#include "stream.h"
#include "vfio_mig.h"

#define HDR_MAX		4096
#define REC_LOG_MAX	(sizeof(struct vmig_stream_log) + \
			 VMIG_REGLOG_MAX * sizeof(struct vmig_stream_log_entry))

static u32 vmig_crc(const void *p, size_t len)
{
	return ~crc32_le(~0U, p, len);
}

/* ---- source side ---- */

static struct vmig_chunk *chunk_alloc(size_t len)
{
	struct vmig_chunk *c = kvmalloc(struct_size(c, data, len),
					 GFP_KERNEL_ACCOUNT);

	if (c) {
		c->len = len;
		c->pos = 0;
	}
	return c;
}

struct vmig_chunk *vmig_stream_header(struct vmig_device *mdev, u32 features)
{
	struct pci_dev *pdev = mdev->core.pdev;
	struct vmig_stream_hdr *h;
	struct vmig_identity id;
	struct vmig_chunk *c;
	int i;

	c = chunk_alloc(sizeof(*h));
	if (!c)
		return NULL;
	h = (struct vmig_stream_hdr *)c->data;
	memset(h, 0, sizeof(*h));
	vmig_identity_of(pdev, &id);
	memcpy(h->magic, VMIG_STREAM_MAGIC, sizeof(h->magic));
	h->major = cpu_to_le16(VMIG_STREAM_MAJOR);
	h->minor = cpu_to_le16(VMIG_STREAM_MINOR);
	h->hdr_len = cpu_to_le32(sizeof(*h));
	h->features = cpu_to_le32(features);
	h->vendor = cpu_to_le16(id.vendor);
	h->device = cpu_to_le16(id.device);
	h->subvendor = cpu_to_le16(id.subvendor);
	h->subdevice = cpu_to_le16(id.subdevice);
	h->class = cpu_to_le32(id.class);
	h->revision = id.revision;
	h->trap_mode = mdev->trap_mode;
	for (i = 0; i < PCI_STD_NUM_BARS; i++)
		h->bar_len[i] = cpu_to_le64(id.bar_len[i]);
	strscpy_pad(h->profile, mdev->profile->name, sizeof(h->profile));
	h->profile_version = cpu_to_le32(mdev->profile->version);
	h->crc = cpu_to_le32(vmig_crc(h, sizeof(*h) - sizeof(h->crc)));
	return c;
}

/* A record of @len payload bytes; fill the payload, then seal it. */
static struct vmig_chunk *rec_alloc(u32 type, size_t len, void **payload)
{
	struct vmig_stream_rec *r;
	struct vmig_chunk *c;

	c = chunk_alloc(sizeof(*r) + len);
	if (!c)
		return NULL;
	r = (struct vmig_stream_rec *)c->data;
	r->type = cpu_to_le32(type);
	r->len = cpu_to_le32(len);
	r->reserved = 0;
	*payload = r + 1;
	return c;
}

static void rec_seal(struct vmig_chunk *c)
{
	struct vmig_stream_rec *r = (struct vmig_stream_rec *)c->data;

	r->crc = cpu_to_le32(vmig_crc(r + 1, le32_to_cpu(r->len)));
}

struct vmig_chunk *vmig_stream_record(u32 type, const void *data, size_t len)
{
	struct vmig_chunk *c;
	void *p;

	c = rec_alloc(type, len, &p);
	if (c) {
		if (len)
			memcpy(p, data, len);
		rec_seal(c);
	}
	return c;
}

#define LOG_BATCH	256

struct vmig_chunk *vmig_stream_log_record(struct vmig_device *mdev, u64 *from,
					  bool *lost)
{
	struct vmig_stream_log_entry *out;
	struct vmig_stream_log *l;
	struct vmig_reglog_entry *e;
	struct vmig_counters cnt;
	struct vmig_chunk *c;
	u64 next, want, seq;
	u32 n = 0;
	int k, i;

	vmig_get_counters(mdev, &cnt);
	want = min_t(u64, cnt.log_next_seq - *from, VMIG_REGLOG_MAX);
	if (!want)
		return NULL;
	e = kmalloc_array(LOG_BATCH, sizeof(*e), GFP_KERNEL);
	c = rec_alloc(VMIG_REC_REG_LOG, sizeof(*l) + want * sizeof(*out),
		      (void **)&l);
	if (!e || !c)
		goto nomem;
	out = (struct vmig_stream_log_entry *)(l + 1);
	seq = *from;
	while (n < want) {
		k = vmig_reglog_read(mdev, seq, e, min_t(u64, LOG_BATCH, want - n),
				     &next);
		if (k <= 0 || e[0].seq != seq) {
			/* overwritten before we got here (or a reset) */
			*lost = true;
			break;
		}
		for (i = 0; i < k && e[i].seq == seq + i; i++, n++) {
			out[n].value = cpu_to_le64(e[i].value);
			out[n].offset = cpu_to_le32(e[i].offset);
			out[n].bar = e[i].bar;
			out[n].width = e[i].width;
			out[n].reserved = 0;
		}
		seq += i;
		if (i < k) {
			/*
			 * The ring wrapped between two batches of the read:
			 * what we have ends at the hole, and no record goes
			 * beyond it (the target replays the register file).
			 */
			*lost = true;
			break;
		}
	}
	kfree(e);
	if (*lost)
		dev_warn_ratelimited(&mdev->core.pdev->dev,
				     "write log overwritten before it was sent; the target will replay the register file\n");
	if (!n) {
		kvfree(c);
		return NULL;
	}
	l->first_seq = cpu_to_le64(*from);
	l->count = cpu_to_le32(n);
	l->reserved = 0;
	((struct vmig_stream_rec *)c->data)->len =
		cpu_to_le32(sizeof(*l) + n * sizeof(*out));
	c->len = sizeof(struct vmig_stream_rec) + sizeof(*l) + n * sizeof(*out);
	rec_seal(c);
	*from = seq;
	return c;
nomem:
	kfree(e);
	kvfree(c);
	return ERR_PTR(-ENOMEM);
}

size_t vmig_stream_log_bytes(u64 entries)
{
	return sizeof(struct vmig_stream_rec) + sizeof(struct vmig_stream_log) +
	       entries * sizeof(struct vmig_stream_log_entry);
}

size_t vmig_stream_fixed_bytes(bool with_hdr)
{
	/* REG_STATE, PROFILE_STATE, HELD_WRITES and END record headers */
	return (with_hdr ? sizeof(struct vmig_stream_hdr) : 0) +
	       4 * sizeof(struct vmig_stream_rec);
}

struct vmig_chunk *vmig_stream_profile_record(const struct vmig_profile *p,
					      u32 type, const void *blob,
					      u32 len)
{
	struct vmig_stream_profile *ps;
	struct vmig_chunk *c;

	c = rec_alloc(type, sizeof(*ps) + len, (void **)&ps);
	if (!c)
		return NULL;
	strscpy_pad(ps->name, p->name, sizeof(ps->name));
	ps->version = cpu_to_le32(p->version);
	ps->len = cpu_to_le32(len);
	ps->reserved[0] = 0;
	ps->reserved[1] = 0;
	memcpy(ps + 1, blob, len);
	rec_seal(c);
	return c;
}

/* ---- target side ---- */

/* Record types in the order a stream may carry them. */
#define SEEN(t)		(1U << (t))

/**
 * struct vmig_stream_rx - a stream being received
 * @hdr: the header's bytes
 * @hdr_len: its declared length, once known
 * @have: bytes of the current unit (header, record header or payload)
 * @hdr_done: the header has been checked
 * @rec: the current record's header
 * @payload: the current record's payload, being received
 * @seen: SEEN() of each record type received
 * @ended: END received
 * @err: the first error; sticks
 * @log: REG_LOG entries received, @nr_log of them from @log_first
 * @nr_log: count
 * @log_cap: entries @log has room for
 * @log_first: sequence number of @log[0]
 * @log_seen: a REG_LOG record was received
 * @log_next: the sequence number the next REG_LOG record must start at
 * @log_gap: REG_LOG records were too many to keep
 * @snap: the REG_STATE snapshot
 * @devstate: the PROFILE_STATE blob, @devstate_len bytes
 * @devstate_len: its length
 * @held: the HELD_WRITES payload, checked by the profile
 * @held_len: its length
 * @shadow: a SHADOW record was received
 * @nr_early: PROFILE_EARLY records received (each one a device load)
 * @profile_version: the header's profile version (one the profile takes);
 *	every profile record is of it
 */
struct vmig_stream_rx {
	u8 hdr[HDR_MAX];
	u32 hdr_len;
	u32 have;
	bool hdr_done;
	struct vmig_stream_rec rec;
	u8 *payload;
	u32 seen;
	bool ended;
	int err;
	struct vmig_reglog_entry *log;
	u32 nr_log;
	u32 log_cap;
	u64 log_first;
	bool log_seen;
	u64 log_next;
	bool log_gap;
	struct vmig_snapshot *snap;
	u8 *devstate;
	u32 devstate_len;
	u8 *held;
	u32 held_len;
	bool shadow;
	u32 nr_early;
	u32 profile_version;
};

struct vmig_stream_rx *vmig_stream_rx_alloc(void)
{
	return kvzalloc(sizeof(struct vmig_stream_rx), GFP_KERNEL_ACCOUNT);
}

void vmig_stream_rx_free(struct vmig_stream_rx *rx)
{
	if (!rx)
		return;
	kvfree(rx->payload);
	kvfree(rx->log);
	kvfree(rx->devstate);
	kvfree(rx->held);
	if (rx->snap)
		vmig_snapshot_free(rx->snap);
	kvfree(rx);
}

static int reject(struct vmig_stream_rx *rx, struct vmig_device *mdev,
		  int err, const char *why)
{
	dev_warn_ratelimited(&mdev->core.pdev->dev,
			     "migration stream rejected: %s\n", why);
	rx->err = err;
	return err;
}

static int check_header(struct vmig_stream_rx *rx, struct vmig_device *mdev)
{
	const struct vmig_stream_hdr *h = (const void *)rx->hdr;
	struct vmig_replay_report *rep;
	char profile[sizeof(h->profile) + 1];
	struct vmig_identity id = {};
	u32 features;
	__le32 crc;
	int i, ret;

	memcpy(&crc, rx->hdr + rx->hdr_len - sizeof(crc), sizeof(crc));
	if (le32_to_cpu(crc) != vmig_crc(rx->hdr, rx->hdr_len - sizeof(crc)))
		return reject(rx, mdev, -EINVAL, "header checksum mismatch");
	features = le32_to_cpu(h->features);
	if (features & ~VMIG_STREAM_F_ALL)
		return reject(rx, mdev, -EPROTONOSUPPORT,
			      "unknown stream feature flags");
	if (h->reserved0 || h->reserved1[0] || h->reserved1[1] ||
	    h->reserved2 || memchr_inv(h->reserved3, 0, sizeof(h->reserved3)))
		return reject(rx, mdev, -EINVAL, "reserved header field set");
	memcpy(profile, h->profile, sizeof(h->profile));
	profile[sizeof(h->profile)] = 0;
	/* it goes into the kernel log: letters, digits, '-' and '_' only */
	for (i = 0; profile[i]; i++)
		if (!isalnum(profile[i]) && profile[i] != '-' &&
		    profile[i] != '_')
			return reject(rx, mdev, -EINVAL, "bad profile name");
	if (!i || memchr_inv(h->profile + i, 0, sizeof(h->profile) - i))
		return reject(rx, mdev, -EINVAL, "bad profile name");
	id.vendor = le16_to_cpu(h->vendor);
	id.device = le16_to_cpu(h->device);
	id.subvendor = le16_to_cpu(h->subvendor);
	id.subdevice = le16_to_cpu(h->subdevice);
	id.class = le32_to_cpu(h->class);
	id.revision = h->revision;
	for (i = 0; i < PCI_STD_NUM_BARS; i++)
		id.bar_len[i] = le64_to_cpu(h->bar_len[i]);
	rep = kzalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep)
		return -ENOMEM;
	ret = vmig_check_compat(mdev, &id, profile, rep);
	if (ret)
		ret = reject(rx, mdev, -ENXIO, rep->msg);
	else if (!vmig_profile_takes_version(mdev->profile,
					     le32_to_cpu(h->profile_version)))
		ret = reject(rx, mdev, -EPROTONOSUPPORT,
			     "profile state version differs");
	kfree(rep);
	if (ret)
		return ret;
	rx->profile_version = le32_to_cpu(h->profile_version);
	rx->hdr_done = true;
	rx->have = 0;
	return 0;
}

/* The first 16 bytes name the version and the header's length. */
static int check_prefix(struct vmig_stream_rx *rx, struct vmig_device *mdev)
{
	const struct vmig_stream_hdr *h = (const void *)rx->hdr;

	if (memcmp(h->magic, VMIG_STREAM_MAGIC, sizeof(h->magic)))
		return reject(rx, mdev, -EINVAL,
			      "not a vfio-mig stream (bad magic)");
	if (le16_to_cpu(h->major) != VMIG_STREAM_MAJOR)
		return reject(rx, mdev, -EPROTONOSUPPORT,
			      "unsupported stream major version");
	rx->hdr_len = le32_to_cpu(h->hdr_len);
	if (rx->hdr_len < sizeof(*h) || rx->hdr_len > HDR_MAX)
		return reject(rx, mdev, -EINVAL, "bad header length");
	return 0;
}

static u32 max_len(struct vmig_device *mdev, u32 type)
{
	switch (type) {
	case VMIG_REC_REG_LOG:
		return REC_LOG_MAX;
	case VMIG_REC_REG_STATE:
		return VMIG_SNAP_MAX_BYTES;
	case VMIG_REC_PROFILE_STATE:
	case VMIG_REC_PROFILE_EARLY: {
		u32 size = vmig_profile_state_size(mdev->profile);

		/* the target's profile bounds it, before any allocation */
		if (!size || size > VMIG_SNAP_MAX_DEVSTATE)
			return 0;
		return sizeof(struct vmig_stream_profile) + size;
	}
	case VMIG_REC_HELD_WRITES:
		return vmig_dma_held_max(mdev);
	case VMIG_REC_SHADOW:
		return sizeof(struct vmig_stream_shadow);
	default:
		return 0;
	}
}

/* A record header arrived: is this record allowed here? */
static int check_rec(struct vmig_stream_rx *rx, struct vmig_device *mdev)
{
	u32 type = le32_to_cpu(rx->rec.type), len = le32_to_cpu(rx->rec.len);

	if (rx->ended)
		return reject(rx, mdev, -EINVAL, "bytes after the end record");
	if (rx->rec.reserved)
		return reject(rx, mdev, -EINVAL, "reserved record field set");
	if (type == VMIG_REC_END) {
		if (len || rx->rec.crc)
			return reject(rx, mdev, -EINVAL, "bad end record");
		if (!(rx->seen & SEEN(VMIG_REC_REG_STATE)))
			return reject(rx, mdev, -EINVAL,
				      "stream ends without the register state");
		return 0;
	}
	if (type < VMIG_REC_REG_LOG || type > VMIG_REC_PROFILE_EARLY)
		return reject(rx, mdev, -EINVAL, "unknown record type");
	if (len > max_len(mdev, type))
		return reject(rx, mdev, -EINVAL, "record too long for its type");
	/* pre-copy records: REG_LOG (any number) and PROFILE_EARLY (take_early) */
	if (type != VMIG_REC_REG_LOG && type != VMIG_REC_PROFILE_EARLY &&
	    rx->seen & SEEN(type))
		return reject(rx, mdev, -EINVAL, "record repeated");
	if ((type == VMIG_REC_REG_LOG || type == VMIG_REC_PROFILE_EARLY) &&
	    rx->seen & ~(SEEN(VMIG_REC_REG_LOG) | SEEN(VMIG_REC_PROFILE_EARLY)))
		return reject(rx, mdev, -EINVAL,
			      "pre-copy record after the register state");
	if (type != VMIG_REC_REG_STATE && type != VMIG_REC_REG_LOG &&
	    type != VMIG_REC_PROFILE_EARLY &&
	    !(rx->seen & SEEN(VMIG_REC_REG_STATE)))
		return reject(rx, mdev, -EINVAL,
			      "record before the register state");
	return 0;
}

static int take_log(struct vmig_stream_rx *rx, struct vmig_device *mdev,
		    const u8 *p, u32 len)
{
	const struct vmig_stream_log *l = (const void *)p;
	const struct vmig_stream_log_entry *e = (const void *)(l + 1);
	struct vmig_reglog_entry *grown;
	u32 n, i, cap;
	u64 first;

	if (len < sizeof(*l))
		return reject(rx, mdev, -EINVAL, "short write log record");
	n = le32_to_cpu(l->count);
	first = le64_to_cpu(l->first_seq);
	if (l->reserved || len != sizeof(*l) + (u64)n * sizeof(*e) || !n ||
	    first > U64_MAX - n)
		return reject(rx, mdev, -EINVAL, "bad write log record");
	for (i = 0; i < n; i++)
		if (e[i].reserved || (e[i].bar >= PCI_STD_NUM_BARS &&
				      e[i].bar != VMIG_REGLOG_BAR_RESET))
			return reject(rx, mdev, -EINVAL,
				      "bad write log entry");
	/* a hole would replay the writes around it as if adjacent */
	if (rx->log_seen && first != rx->log_next)
		return reject(rx, mdev, -EINVAL,
			      "write log records not contiguous");
	rx->log_seen = true;
	rx->log_next = first + n;
	if (rx->log_gap)
		return 0;
	if (n > VMIG_REGLOG_MAX - rx->nr_log) {
		rx->log_gap = true;
		return 0;
	}
	if (!rx->nr_log)
		rx->log_first = first;
	if (rx->nr_log + n > rx->log_cap) {
		cap = min_t(u32, VMIG_REGLOG_MAX,
			    max(rx->nr_log + n, 2 * rx->log_cap));
		grown = kvmalloc_array(cap, sizeof(*grown),
				       GFP_KERNEL_ACCOUNT);
		if (!grown)
			return -ENOMEM;
		if (rx->nr_log)
			memcpy(grown, rx->log, rx->nr_log * sizeof(*grown));
		kvfree(rx->log);
		rx->log = grown;
		rx->log_cap = cap;
	}
	for (i = 0; i < n; i++) {
		struct vmig_reglog_entry *o = &rx->log[rx->nr_log + i];

		o->seq = first + i;
		o->ts_ns = 0;
		o->value = le64_to_cpu(e[i].value);
		o->offset = le32_to_cpu(e[i].offset);
		o->bar = e[i].bar;
		o->width = e[i].width;
	}
	rx->nr_log += n;
	return 0;
}

/* The profile checks it: only what its trap path could have held. */
static int take_held(struct vmig_stream_rx *rx, struct vmig_device *mdev,
		     u8 **p, u32 len)
{
	if (vmig_dma_held_check(mdev, *p, len))
		return reject(rx, mdev, -EINVAL, "bad held writes record");
	rx->held = *p;
	rx->held_len = len;
	*p = NULL;
	return 0;
}

/* A PROFILE_STATE or PROFILE_EARLY payload's header, for this device. */
static int check_profile(struct vmig_stream_rx *rx, struct vmig_device *mdev,
			 const u8 *p, u32 len)
{
	const struct vmig_profile *prof = mdev->profile;
	const struct vmig_stream_profile *ps = (const void *)p;
	char name[sizeof(ps->name)];

	if (len < sizeof(*ps))
		return reject(rx, mdev, -EINVAL, "short profile state record");
	strscpy_pad(name, prof->name, sizeof(name));
	if (memcmp(name, ps->name, sizeof(name)))
		return reject(rx, mdev, -EINVAL,
			      "profile state record of another profile");
	/* the header's version, which check_header() found the profile takes */
	if (le32_to_cpu(ps->version) != rx->profile_version)
		return reject(rx, mdev, -EPROTONOSUPPORT,
			      "profile state record of another profile version");
	if (ps->reserved[0] || ps->reserved[1])
		return reject(rx, mdev, -EINVAL,
			      "reserved profile state field set");
	if (le32_to_cpu(ps->len) != len - sizeof(*ps))
		return reject(rx, mdev, -EINVAL,
			      "profile state length does not match its record");
	return 0;
}

/* The header is the core's; the blob is the profile's (its restore op). */
static int take_profile(struct vmig_stream_rx *rx, struct vmig_device *mdev,
			const u8 *p, u32 len)
{
	const struct vmig_stream_profile *ps = (const void *)p;
	int ret = check_profile(rx, mdev, p, len);

	if (ret)
		return ret;
	rx->devstate_len = len - sizeof(*ps);
	rx->devstate = kvmalloc(rx->devstate_len + 1, GFP_KERNEL_ACCOUNT);
	if (!rx->devstate)
		return -ENOMEM;
	memcpy(rx->devstate, ps + 1, rx->devstate_len);
	return 0;
}

/*
 * Early state: the profile loads it onto the device now, in this write();
 * it checks the blob itself and refuses what its save could not produce.
 */
static int take_early(struct vmig_stream_rx *rx, struct vmig_device *mdev,
		      const u8 *p, u32 len)
{
	const struct vmig_profile_dev_ops *ops = mdev->profile->ops;
	const struct vmig_stream_profile *ps = (const void *)p;
	int ret = check_profile(rx, mdev, p, len);

	if (ret)
		return ret;
	/* early state came with the current version: none older has it */
	if (le32_to_cpu(ps->version) != mdev->profile->version)
		return reject(rx, mdev, -EPROTONOSUPPORT,
			      "early device state of an older profile version");
	/* each costs the device's slow operation: a stream has few */
	if (++rx->nr_early > VMIG_STREAM_MAX_EARLY)
		return reject(rx, mdev, -EINVAL,
			      "too many early device state records");
	if (!ops || !ops->early_load)
		return reject(rx, mdev, -EPROTONOSUPPORT,
			      "early device state for a profile without it");
	ret = ops->early_load(mdev, ps + 1, len - sizeof(*ps));
	if (ret == -EINVAL)
		return reject(rx, mdev, ret, "bad early device state");
	if (ret) {
		pci_warn(mdev->core.pdev,
			 "migration stream refused: early device state not loaded (%d)\n",
			 ret);
	}
	return ret;
}

/* The version is checked here; the state itself by the shadow's engage. */
static int take_shadow(struct vmig_stream_rx *rx, struct vmig_device *mdev,
		       const u8 *p, u32 len)
{
	const struct vmig_stream_shadow *sw = (const void *)p;

	if (len != sizeof(*sw))
		return reject(rx, mdev, -EINVAL, "bad shadow record length");
	if (le32_to_cpu(sw->version) != VMIG_STREAM_SHADOW_VERSION)
		return reject(rx, mdev, -EPROTONOSUPPORT,
			      "shadow record of another version");
	if (sw->flags || sw->reserved[0] || sw->reserved[1])
		return reject(rx, mdev, -EINVAL,
			      "reserved shadow record field set");
	rx->shadow = true;
	return 0;
}

static int take_payload(struct vmig_stream_rx *rx, struct vmig_device *mdev)
{
	u32 type = le32_to_cpu(rx->rec.type), len = le32_to_cpu(rx->rec.len);
	const char *why = NULL;
	int ret = 0;

	if (le32_to_cpu(rx->rec.crc) != vmig_crc(rx->payload, len))
		return reject(rx, mdev, -EINVAL, "record checksum mismatch");
	switch (type) {
	case VMIG_REC_REG_LOG:
		ret = take_log(rx, mdev, rx->payload, len);
		break;
	case VMIG_REC_REG_STATE:
		rx->snap = vmig_snapshot_parse(rx->payload, len, &why);
		if (IS_ERR(rx->snap)) {
			ret = PTR_ERR(rx->snap);
			rx->snap = NULL;
			if (ret != -ENOMEM)
				ret = reject(rx, mdev, -EINVAL,
					     why ?: "bad register state");
		} else if (rx->snap->flags & VMIG_SNAPF_DEVSTATE) {
			ret = reject(rx, mdev, -EINVAL,
				     "device state inside the register state");
		}
		break;
	case VMIG_REC_PROFILE_STATE:
		ret = take_profile(rx, mdev, rx->payload, len);
		break;
	case VMIG_REC_HELD_WRITES:
		ret = take_held(rx, mdev, &rx->payload, len);
		break;
	case VMIG_REC_SHADOW:
		ret = take_shadow(rx, mdev, rx->payload, len);
		break;
	case VMIG_REC_PROFILE_EARLY:
		ret = take_early(rx, mdev, rx->payload, len);
		break;
	}
	if (!ret)
		rx->seen |= SEEN(type);
	return ret;
}

/* Copy up to what the current unit still needs; returns bytes taken. */
static size_t fill(u8 *dst, u32 *have, u32 need, const u8 *buf, size_t len)
{
	size_t n = min_t(size_t, need - *have, len);

	memcpy(dst + *have, buf, n);
	*have += n;
	return n;
}

static ssize_t rx_write(struct vmig_stream_rx *rx, struct vmig_device *mdev,
			const u8 *buf, size_t len)
{
	size_t done = 0, n;
	u32 need;
	int ret;

	if (rx->err)
		return rx->err;
	while (done < len) {
		if (!rx->hdr_done) {
			need = rx->have < 16 ? 16 : rx->hdr_len;
			n = fill(rx->hdr, &rx->have, need, buf + done,
				 len - done);
			done += n;
			if (rx->have < need)
				break;
			ret = need == 16 ? check_prefix(rx, mdev) :
					   check_header(rx, mdev);
			if (ret)
				return ret;
			continue;
		}
		if (!rx->payload) {
			need = sizeof(rx->rec);
			n = fill((u8 *)&rx->rec, &rx->have, need, buf + done,
				 len - done);
			done += n;
			if (rx->have < need)
				break;
			ret = check_rec(rx, mdev);
			if (ret)
				return ret;
			rx->have = 0;
			if (le32_to_cpu(rx->rec.type) == VMIG_REC_END) {
				rx->ended = true;
				continue;
			}
			/* bounded by max_len(); +1: a zero-length payload */
			rx->payload = kvmalloc(le32_to_cpu(rx->rec.len) + 1,
					       GFP_KERNEL_ACCOUNT);
			if (!rx->payload)
				return -ENOMEM;
		}
		need = le32_to_cpu(rx->rec.len);
		n = fill(rx->payload, &rx->have, need, buf + done, len - done);
		done += n;
		if (rx->have < need)
			break;
		ret = take_payload(rx, mdev);
		kvfree(rx->payload);
		rx->payload = NULL;
		rx->have = 0;
		if (ret)
			return ret;
	}
	return done;
}

ssize_t vmig_stream_rx_write(struct vmig_stream_rx *rx,
			     struct vmig_device *mdev, const u8 *buf,
			     size_t len)
{
	ssize_t ret;

	if (rx->err)
		return rx->err;
	ret = rx_write(rx, mdev, buf, len);
	/* the parser may have moved on: no retry can resume it */
	if (ret < 0)
		rx->err = ret;
	return ret;
}

/*
 * Put the REG_LOG entries in front of the snapshot's tail: what follows
 * the last device reset they hold (which wiped what came before), each
 * entry a register of the source device.
 */
static int merge_log(struct vmig_stream_rx *rx, struct vmig_device *mdev)
{
	struct vmig_snapshot *s = rx->snap;
	struct vmig_reglog_entry *t;
	u32 i, from = 0, n;

	if (!rx->nr_log && !rx->log_gap)
		return 0;
	if (s->flags & VMIG_SNAPF_LOG_LOSSY)
		return 0;
	if (rx->log_gap || rx->log_first + rx->nr_log != s->since_seq) {
		s->flags |= VMIG_SNAPF_LOG_LOSSY;
		return 0;
	}
	for (i = 0; i < rx->nr_log; i++) {
		const struct vmig_reglog_entry *e = &rx->log[i];

		if (e->bar == VMIG_REGLOG_BAR_RESET)
			from = i + 1;
		else if (!vmig_snap_reg_ok(s, e->bar, e->offset, e->width))
			return reject(rx, mdev, -EINVAL,
				      "write log entry outside the device's BARs");
	}
	n = rx->nr_log - from;
	t = kvmalloc_array(n + s->nr_tail + 1, sizeof(*t), GFP_KERNEL_ACCOUNT);
	if (!t)
		return -ENOMEM;
	memcpy(t, rx->log + from, n * sizeof(*t));
	if (s->nr_tail)
		memcpy(t + n, s->tail, s->nr_tail * sizeof(*t));
	kvfree(s->tail);
	s->tail = t;
	s->nr_tail += n;
	s->since_seq = rx->log_first + from;
	return 0;
}

int vmig_stream_rx_finish(struct vmig_stream_rx *rx, struct vmig_device *mdev,
			  struct vmig_stream_result *res)
{
	int ret;

	if (rx->err)
		return rx->err;
	if (!rx->ended)
		return reject(rx, mdev, -EINVAL,
			      rx->hdr_done ? "stream incomplete (no end record)" :
					     "stream incomplete (no header)");
	if (rx->have)
		return reject(rx, mdev, -EINVAL, "bytes after the end record");
	/* a shadow's state is whole: pre-copy writes predate it */
	ret = rx->shadow ? 0 : merge_log(rx, mdev);
	if (ret)
		return ret;
	if (rx->devstate) {
		rx->snap->devstate = rx->devstate;
		rx->snap->devstate_len = rx->devstate_len;
		rx->snap->devstate_version = rx->profile_version;
		rx->snap->flags |= VMIG_SNAPF_DEVSTATE;
		rx->devstate = NULL;
	}
	res->snap = rx->snap;
	rx->snap = NULL;
	/* handed over: applying it twice is not a thing */
	rx->err = -EINVAL;
	res->held = rx->held;
	res->held_len = rx->held_len;
	res->shadow = rx->shadow;
	res->early = rx->nr_early;
	rx->held = NULL;
	return 0;
}
