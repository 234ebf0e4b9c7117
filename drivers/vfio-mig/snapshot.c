// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: snapshots of a device's register state, and their byte form.
 *
 * A snapshot is a consistent cut of the register file and the write
 * log (both copied under one hold of rs.lock, then the tail in bounded
 * batches), the registers the profile captures by reading, and the
 * profile's device state. Taking one reads the source and, only with
 * VMIG_SNAP_DEVSTATE, lets the profile touch the stopped device.
 *
 * Byte form (Documentation/register-sync.rst): a header, then typed,
 * length-prefixed records, little-endian, each padded to 8 bytes. Parsing
 * checks every length, count, width, BAR and offset before use.
 */
#include <linux/ctype.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "profile.h"
#include "regfile.h"
#include "reglog.h"
#include "regstate.h"
#include "snapshot.h"
#include "trap.h"
#include "vfio_mig.h"

#define SNAP_MAGIC		0x53524d56	/* "VMRS" */
#define SNAP_MAJOR		1
#define SNAP_MINOR		0

enum {
	REC_IDENTITY = 1,
	REC_PROFILE = 2,
	REC_META = 3,
	REC_REGFILE = 4,
	REC_READS = 5,
	REC_TAIL = 6,
	REC_DEVSTATE = 7,
	REC_MAX_KNOWN = REC_DEVSTATE,
};

struct snap_hdr {
	__le32 magic;
	__le16 major;
	__le16 minor;
	__le32 total_len;
	__le32 nr_records;
};

struct snap_rec {
	__le16 type;
	__le16 reserved;
	__le32 len;
};

struct snap_identity {
	__le16 vendor;
	__le16 device;
	__le16 subvendor;
	__le16 subdevice;
	u8 revision;
	u8 pad[3];
	__le32 class;
	__le64 bar_len[PCI_STD_NUM_BARS];
};

struct snap_meta {
	__le32 flags;
	__le32 reserved;
	__le64 since_seq;
	__le64 cut_seq;
	__le64 log_overflows;
};

struct snap_reg {
	__le64 seq;
	__le64 value;
	__le32 offset;
	u8 bar;
	u8 width;
	__le16 reserved;
};

struct snap_log {
	__le64 seq;
	__le64 ts_ns;
	__le64 value;
	__le32 offset;
	u8 bar;
	u8 width;
	__le16 reserved;
};

void vmig_identity_of(struct pci_dev *pdev, struct vmig_identity *id)
{
	int i;

	memset(id, 0, sizeof(*id));
	id->vendor = pdev->vendor;
	id->device = pdev->device;
	id->subvendor = pdev->subsystem_vendor;
	id->subdevice = pdev->subsystem_device;
	id->revision = pdev->revision;
	id->class = pdev->class;
	for (i = 0; i < PCI_STD_NUM_BARS; i++)
		id->bar_len[i] = pci_resource_len(pdev, i);
}

void vmig_snapshot_free(struct vmig_snapshot *snap)
{
	if (IS_ERR_OR_NULL(snap))
		return;
	kvfree(snap->regfile);
	kvfree(snap->reads);
	kvfree(snap->tail);
	kvfree(snap->devstate);
	kfree(snap);
}

const struct vmig_reg_value *vmig_snap_read(const struct vmig_snapshot *s,
					    u8 bar, u32 offset, u8 width)
{
	u32 i;

	for (i = 0; i < s->nr_reads; i++)
		if (s->reads[i].bar == bar && s->reads[i].offset == offset &&
		    s->reads[i].width == width)
			return &s->reads[i];
	return NULL;
}

const struct vmig_reg_value *vmig_snap_regfile(const struct vmig_snapshot *s,
					       u8 bar, u32 offset, u8 width)
{
	u32 i;

	for (i = 0; i < s->nr_regfile; i++)
		if (s->regfile[i].bar == bar && s->regfile[i].offset == offset &&
		    s->regfile[i].width == width)
			return &s->regfile[i];
	return NULL;
}

static int cmp_reg_seq(const void *a, const void *b)
{
	const struct vmig_reg_value *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Keep what replay needs of the tail: see Documentation/register-sync.rst */
static u32 compact_tail(const struct vmig_profile *p,
			const struct vmig_regfile_slot *slots, u32 nr_slots,
			struct vmig_reglog_entry *t, u32 n)
{
	u32 i, start = 0, out = 0;

	for (i = 0; i < n; i++)
		if (t[i].bar == VMIG_REGLOG_BAR_RESET)
			start = i + 1;	/* the reset wiped what came before */
	for (i = start; i < n; i++) {
		const struct vmig_regfile_slot *s;

		switch (vmig_profile_class(p, t[i].bar, t[i].offset,
					   t[i].width)) {
		case VMIG_REG_STATE:
			/* superseded by a later write to the same register? */
			s = vmig_regfile_lookup(slots, nr_slots, t[i].bar,
						t[i].offset, t[i].width);
			if (s && s->seq != t[i].seq)
				continue;
			break;
		case VMIG_REG_TRIGGER:
			break;
		default:
			continue;
		}
		t[out++] = t[i];
	}
	return out;
}

/*
 * The register file and the log tail from @since (or from the last reset of
 * the log if @since is older), as one consistent cut.
 */
static int copy_regstate(struct vmig_device *mdev,
			 const struct vmig_profile *p,
			 struct vmig_snapshot *snap, u64 since)
{
	struct vmig_regstate *rs = &mdev->rs;
	u32 nr_slots = rs->nr_slots;	/* changes only at open: we hold it */
	struct vmig_regfile_slot *slots;
	u64 n, next;
	u32 i, k;
	int ret = -ENOMEM;

	slots = kvmalloc_array(nr_slots, sizeof(*slots), GFP_KERNEL);
	if (!slots)
		return -ENOMEM;
	vmig_rs_lock(rs);
	memcpy(slots, rs->slots, nr_slots * sizeof(*slots));
	snap->since_seq = clamp(since, rs->base_seq, rs->next_seq);
	snap->cut_seq = rs->next_seq;
	snap->log_overflows = rs->overflows;
	/* lossy: entries of the window were overwritten before being read */
	if (rs->overflows && __vmig_reglog_oldest(rs) > snap->since_seq)
		snap->flags |= VMIG_SNAPF_LOG_LOSSY;
	if (rs->regfile_overflows)
		snap->flags |= VMIG_SNAPF_REGFILE_INCOMPLETE;
	snap->nr_regfile = rs->regfile_used;
	vmig_rs_unlock(rs);

	snap->regfile = kvcalloc(max(snap->nr_regfile, 1U),
				 sizeof(*snap->regfile), GFP_KERNEL);
	if (!snap->regfile)
		goto out;
	for (i = 0, k = 0; i < nr_slots && k < snap->nr_regfile; i++) {
		if (!slots[i].used)
			continue;
		snap->regfile[k].seq = slots[i].seq;
		snap->regfile[k].value = slots[i].value;
		snap->regfile[k].offset = slots[i].offset;
		snap->regfile[k].bar = slots[i].bar;
		snap->regfile[k++].width = slots[i].width;
	}
	snap->nr_regfile = k;
	sort(snap->regfile, k, sizeof(*snap->regfile), cmp_reg_seq, NULL);

	ret = 0;
	n = snap->cut_seq - snap->since_seq;
	if (snap->flags & VMIG_SNAPF_LOG_LOSSY || !n)
		goto out;
	snap->tail = kvmalloc_array(n, sizeof(*snap->tail), GFP_KERNEL);
	if (!snap->tail) {
		ret = -ENOMEM;
		goto out;
	}
	k = vmig_reglog_read(mdev, snap->since_seq, snap->tail, n, &next);
	if (k != n || snap->tail[0].seq != snap->since_seq ||
	    snap->tail[n - 1].seq != snap->cut_seq - 1) {
		/* the ring wrapped while we copied */
		snap->flags |= VMIG_SNAPF_LOG_LOSSY;
		k = 0;
	}
	snap->nr_tail = compact_tail(p, slots, nr_slots, snap->tail, k);
out:
	kvfree(slots);
	return ret;
}

static int capture_reads(struct vmig_device *mdev,
			 const struct vmig_profile *p,
			 struct vmig_snapshot *snap)
{
	unsigned int i, j, n = 0;
	unsigned int slots = min_t(unsigned int, vmig_profile_nr_slots(p),
				   VMIG_SNAP_MAX_READS);

	snap->reads = kvcalloc(max(slots, 1U), sizeof(*snap->reads),
			       GFP_KERNEL);
	if (!snap->reads)
		return -ENOMEM;
	for (i = 0; i < p->nr_regs && n < slots; i++) {
		const struct vmig_reg_desc *r = &p->regs[i];
		u32 count = r->count ? r->count : 1;

		if (!(r->flags & VMIG_REGF_CAPTURE))
			continue;
		for (j = 0; j < count && n < slots; j++) {
			u32 off = r->offset + j * r->stride;
			u64 v;

			/* restore reports what is missing */
			if (vmig_bar_read(mdev, r->bar, off, r->width, &v))
				continue;
			snap->reads[n].value = v;
			snap->reads[n].offset = off;
			snap->reads[n].bar = r->bar;
			snap->reads[n++].width = r->width;
		}
	}
	snap->nr_reads = n;
	return 0;
}

/* The profile's save op; the snapshot gets the blob it fills. */
static int profile_save(struct vmig_device *mdev, const struct vmig_profile *p,
			struct vmig_snapshot *snap, unsigned int flags)
{
	struct vmig_profile_ctx ctx = { .mdev = mdev, .flags = flags };
	u32 size = vmig_profile_state_size(p);
	int ret;

	if (flags & VMIG_SNAP_DEVSTATE && size) {
		if (WARN_ON_ONCE(size > VMIG_SNAP_MAX_DEVSTATE))
			return -EOVERFLOW;
		ctx.state = kvzalloc(size, GFP_KERNEL);
		if (!ctx.state)
			return -ENOMEM;
	}
	ret = p->ops->save(&ctx);
	if (ctx.state && ctx.state_len) {
		if (WARN_ON_ONCE(ctx.state_len > size)) {
			ret = -EOVERFLOW;
		} else {
			snap->devstate = ctx.state;
			snap->devstate_len = ctx.state_len;
			snap->flags |= VMIG_SNAPF_DEVSTATE;
			ctx.state = NULL;
		}
	}
	kvfree(ctx.state);
	return ret;
}

struct vmig_snapshot *__vmig_snapshot_take(struct vmig_device *mdev,
					   unsigned int flags, u64 since)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_snapshot *snap;
	u16 window;
	int ret;

	lockdep_assert_held(&mdev->mig.state_mutex);
	snap = kzalloc(sizeof(*snap), GFP_KERNEL);
	if (!snap)
		return ERR_PTR(-ENOMEM);
	vmig_identity_of(mdev->core.pdev, &snap->id);
	strscpy(snap->profile, p->name, sizeof(snap->profile));
	ret = copy_regstate(mdev, p, snap, since);
	/* the device's registers whether or not its VMM enabled decoding */
	window = vmig_decode_open(mdev);
	if (!ret && p->ops && p->ops->save)
		ret = profile_save(mdev, p, snap, flags);
	if (!ret)
		ret = capture_reads(mdev, p, snap);
	vmig_decode_close(mdev, window);
	if (ret) {
		vmig_snapshot_free(snap);
		return ERR_PTR(ret);
	}
	return snap;
}

struct vmig_snapshot *vmig_snapshot_take(struct vmig_device *mdev,
					 unsigned int flags)
{
	struct vmig_snapshot *snap;

	mutex_lock(vmig_dev_set_lock(mdev));
	/* not while a migration arc drives the device (the order of close) */
	mutex_lock(&mdev->mig.state_mutex);
	if (mdev->open)
		snap = __vmig_snapshot_take(mdev, flags, 0);
	else
		snap = ERR_PTR(-ENODEV);
	mutex_unlock(&mdev->mig.state_mutex);
	mutex_unlock(vmig_dev_set_lock(mdev));
	return snap;
}

/* ---- byte form ---- */

static size_t rec_size(size_t payload)
{
	return sizeof(struct snap_rec) + ALIGN(payload, 8);
}

static u8 *put_rec(u8 *p, u16 type, const void *data, size_t len)
{
	struct snap_rec *r = (struct snap_rec *)p;

	r->type = cpu_to_le16(type);
	r->reserved = 0;
	r->len = cpu_to_le32(len);
	p += sizeof(*r);
	if (data)
		memcpy(p, data, len);
	memset(p + len, 0, ALIGN(len, 8) - len);
	return p;
}

static void put_regs(u8 *p, const struct vmig_reg_value *v, u32 n)
{
	struct snap_reg *r = (struct snap_reg *)p;
	u32 i;

	for (i = 0; i < n; i++) {
		r[i].seq = cpu_to_le64(v[i].seq);
		r[i].value = cpu_to_le64(v[i].value);
		r[i].offset = cpu_to_le32(v[i].offset);
		r[i].bar = v[i].bar;
		r[i].width = v[i].width;
		r[i].reserved = 0;
	}
}

void *vmig_snapshot_serialise(const struct vmig_snapshot *snap, size_t *len)
{
	size_t plen = strnlen(snap->profile, sizeof(snap->profile));
	struct snap_identity id = {};
	struct snap_meta meta = {};
	struct snap_hdr *hdr;
	u32 nrec = 6, i;
	size_t total;
	u8 *buf, *p;

	total = sizeof(*hdr) + rec_size(sizeof(id)) + rec_size(plen) +
		rec_size(sizeof(meta)) +
		rec_size(snap->nr_regfile * sizeof(struct snap_reg)) +
		rec_size(snap->nr_reads * sizeof(struct snap_reg)) +
		rec_size(snap->nr_tail * sizeof(struct snap_log));
	if (snap->flags & VMIG_SNAPF_DEVSTATE) {
		total += rec_size(snap->devstate_len);
		nrec++;
	}
	if (total > VMIG_SNAP_MAX_BYTES)
		return ERR_PTR(-E2BIG);
	buf = kvzalloc(total, GFP_KERNEL);
	if (!buf)
		return ERR_PTR(-ENOMEM);

	hdr = (struct snap_hdr *)buf;
	hdr->magic = cpu_to_le32(SNAP_MAGIC);
	hdr->major = cpu_to_le16(SNAP_MAJOR);
	hdr->minor = cpu_to_le16(SNAP_MINOR);
	hdr->total_len = cpu_to_le32(total);
	hdr->nr_records = cpu_to_le32(nrec);
	p = buf + sizeof(*hdr);

	id.vendor = cpu_to_le16(snap->id.vendor);
	id.device = cpu_to_le16(snap->id.device);
	id.subvendor = cpu_to_le16(snap->id.subvendor);
	id.subdevice = cpu_to_le16(snap->id.subdevice);
	id.revision = snap->id.revision;
	id.class = cpu_to_le32(snap->id.class);
	for (i = 0; i < PCI_STD_NUM_BARS; i++)
		id.bar_len[i] = cpu_to_le64(snap->id.bar_len[i]);
	put_rec(p, REC_IDENTITY, &id, sizeof(id));
	p += rec_size(sizeof(id));
	put_rec(p, REC_PROFILE, snap->profile, plen);
	p += rec_size(plen);

	meta.flags = cpu_to_le32(snap->flags);
	meta.since_seq = cpu_to_le64(snap->since_seq);
	meta.cut_seq = cpu_to_le64(snap->cut_seq);
	meta.log_overflows = cpu_to_le64(snap->log_overflows);
	put_rec(p, REC_META, &meta, sizeof(meta));
	p += rec_size(sizeof(meta));

	put_regs(put_rec(p, REC_REGFILE, NULL,
			 snap->nr_regfile * sizeof(struct snap_reg)),
		 snap->regfile, snap->nr_regfile);
	p += rec_size(snap->nr_regfile * sizeof(struct snap_reg));
	put_regs(put_rec(p, REC_READS, NULL,
			 snap->nr_reads * sizeof(struct snap_reg)),
		 snap->reads, snap->nr_reads);
	p += rec_size(snap->nr_reads * sizeof(struct snap_reg));

	{
		struct snap_log *l = (struct snap_log *)
			put_rec(p, REC_TAIL, NULL,
				snap->nr_tail * sizeof(struct snap_log));

		for (i = 0; i < snap->nr_tail; i++) {
			l[i].seq = cpu_to_le64(snap->tail[i].seq);
			l[i].ts_ns = cpu_to_le64(snap->tail[i].ts_ns);
			l[i].value = cpu_to_le64(snap->tail[i].value);
			l[i].offset = cpu_to_le32(snap->tail[i].offset);
			l[i].bar = snap->tail[i].bar;
			l[i].width = snap->tail[i].width;
		}
		p += rec_size(snap->nr_tail * sizeof(struct snap_log));
	}
	if (snap->flags & VMIG_SNAPF_DEVSTATE)
		put_rec(p, REC_DEVSTATE, snap->devstate, snap->devstate_len);
	*len = total;
	return buf;
}

static bool width_ok(u8 w)
{
	return w == 1 || w == 2 || w == 4 || w == 8;
}

/* A register of the source device: valid BAR, width and offset. */
bool vmig_snap_reg_ok(const struct vmig_snapshot *s, u8 bar, u32 off, u8 w)
{
	return bar < PCI_STD_NUM_BARS && width_ok(w) && IS_ALIGNED(off, w) &&
	       (u64)off + w <= s->id.bar_len[bar];
}

static int get_regs(const u8 *p, u32 len, struct vmig_reg_value **out,
		    u32 *nr, u32 max)
{
	const struct snap_reg *r = (const struct snap_reg *)p;
	u32 n = len / sizeof(*r), i;

	if (len % sizeof(*r) || n > max)
		return -EINVAL;
	*out = kvcalloc(max(n, 1U), sizeof(**out), GFP_KERNEL_ACCOUNT);
	if (!*out)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (r[i].reserved)
			return -EINVAL;
		(*out)[i].seq = le64_to_cpu(r[i].seq);
		(*out)[i].value = le64_to_cpu(r[i].value);
		(*out)[i].offset = le32_to_cpu(r[i].offset);
		(*out)[i].bar = r[i].bar;
		(*out)[i].width = r[i].width;
	}
	*nr = n;
	return 0;
}

static int get_tail(const u8 *p, u32 len, struct vmig_snapshot *s)
{
	const struct snap_log *l = (const struct snap_log *)p;
	u32 n = len / sizeof(*l), i;

	if (len % sizeof(*l) || n > VMIG_REGLOG_MAX)
		return -EINVAL;
	s->tail = kvcalloc(max(n, 1U), sizeof(*s->tail),
			   GFP_KERNEL_ACCOUNT);
	if (!s->tail)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (l[i].reserved)
			return -EINVAL;
		s->tail[i].seq = le64_to_cpu(l[i].seq);
		s->tail[i].ts_ns = le64_to_cpu(l[i].ts_ns);
		s->tail[i].value = le64_to_cpu(l[i].value);
		s->tail[i].offset = le32_to_cpu(l[i].offset);
		s->tail[i].bar = l[i].bar;
		s->tail[i].width = l[i].width;
	}
	s->nr_tail = n;
	return 0;
}

static int get_identity(const u8 *p, u32 len, struct vmig_snapshot *s)
{
	const struct snap_identity *id = (const struct snap_identity *)p;
	int i;

	if (len != sizeof(*id) || id->pad[0] || id->pad[1] || id->pad[2])
		return -EINVAL;
	s->id.vendor = le16_to_cpu(id->vendor);
	s->id.device = le16_to_cpu(id->device);
	s->id.subvendor = le16_to_cpu(id->subvendor);
	s->id.subdevice = le16_to_cpu(id->subdevice);
	s->id.revision = id->revision;
	s->id.class = le32_to_cpu(id->class);
	for (i = 0; i < PCI_STD_NUM_BARS; i++)
		s->id.bar_len[i] = le64_to_cpu(id->bar_len[i]);
	return 0;
}

static int get_profile(const u8 *p, u32 len, struct vmig_snapshot *s)
{
	u32 i;

	if (!len || len >= sizeof(s->profile))
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!(isalnum(p[i]) || p[i] == '-' || p[i] == '_'))
			return -EINVAL;
	memcpy(s->profile, p, len);
	s->profile[len] = 0;
	return 0;
}

static int get_meta(const u8 *p, u32 len, struct vmig_snapshot *s)
{
	const struct snap_meta *m = (const struct snap_meta *)p;

	if (len != sizeof(*m) || m->reserved)
		return -EINVAL;
	s->flags = le32_to_cpu(m->flags);
	s->since_seq = le64_to_cpu(m->since_seq);
	s->cut_seq = le64_to_cpu(m->cut_seq);
	s->log_overflows = le64_to_cpu(m->log_overflows);
	if (s->flags & ~VMIG_SNAPF_ALL || s->since_seq > s->cut_seq)
		return -EINVAL;
	return 0;
}

static int get_devstate(const u8 *p, u32 len, struct vmig_snapshot *s)
{
	if (len > VMIG_SNAP_MAX_DEVSTATE)
		return -EINVAL;
	s->devstate = kvmalloc(max(len, 1U), GFP_KERNEL_ACCOUNT);
	if (!s->devstate)
		return -ENOMEM;
	memcpy(s->devstate, p, len);
	s->devstate_len = len;
	return 0;
}

/* Cross-record checks, once every record is in. */
static const char *check_snapshot(const struct vmig_snapshot *s)
{
	u64 prev = 0;
	u32 i;

	for (i = 0; i < s->nr_regfile; i++) {
		const struct vmig_reg_value *v = &s->regfile[i];

		if (!vmig_snap_reg_ok(s, v->bar, v->offset, v->width))
			return "register file entry outside the device's BARs";
		if (v->seq >= s->cut_seq || (i && v->seq <= prev))
			return "register file entries out of order";
		prev = v->seq;
	}
	for (i = 0; i < s->nr_reads; i++)
		if (!vmig_snap_reg_ok(s, s->reads[i].bar,
				      s->reads[i].offset, s->reads[i].width))
			return "captured read outside the device's BARs";
	for (i = 0; i < s->nr_tail; i++) {
		const struct vmig_reglog_entry *e = &s->tail[i];

		if (e->seq < s->since_seq || e->seq >= s->cut_seq ||
		    (i && e->seq <= s->tail[i - 1].seq))
			return "log tail out of order";
		if (!vmig_snap_reg_ok(s, e->bar, e->offset, e->width))
			return "log entry outside the device's BARs";
	}
	if (!(s->flags & VMIG_SNAPF_DEVSTATE) != !s->devstate)
		return "device state flag and record disagree";
	return NULL;
}

struct vmig_snapshot *vmig_snapshot_parse(const void *buf, size_t len,
					  const char **why)
{
	const struct snap_hdr *hdr = buf;
	struct vmig_snapshot *s;
	u32 nrec, seen = 0, i;
	size_t pos;
	int ret = -EINVAL;

	*why = "truncated header";
	if (len < sizeof(*hdr) || len > VMIG_SNAP_MAX_BYTES)
		return ERR_PTR(-EINVAL);
	*why = "not a vfio-mig register snapshot (bad magic)";
	if (le32_to_cpu(hdr->magic) != SNAP_MAGIC)
		return ERR_PTR(-EINVAL);
	*why = "unsupported major version";
	if (le16_to_cpu(hdr->major) != SNAP_MAJOR)
		return ERR_PTR(-EINVAL);
	*why = "length in header differs from the data";
	if (le32_to_cpu(hdr->total_len) != len)
		return ERR_PTR(-EINVAL);
	nrec = le32_to_cpu(hdr->nr_records);

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return ERR_PTR(-ENOMEM);
	pos = sizeof(*hdr);
	for (i = 0; i < nrec; i++) {
		const struct snap_rec *r;
		const u8 *payload;
		u32 rlen;
		u16 type;

		/* Each record's parser sets ret; every failure below is -EINVAL. */
		ret = -EINVAL;
		*why = "truncated record";
		if (len - pos < sizeof(*r))
			goto fail;
		r = (const struct snap_rec *)((const u8 *)buf + pos);
		rlen = le32_to_cpu(r->len);
		type = le16_to_cpu(r->type);
		pos += sizeof(*r);
		if (r->reserved || rlen > len - pos ||
		    ALIGN((u64)rlen, 8) > len - pos)
			goto fail;
		payload = (const u8 *)buf + pos;
		pos += ALIGN(rlen, 8);
		if (type > REC_MAX_KNOWN || !type)
			continue;	/* a newer minor version's record */
		*why = "duplicate record";
		if (seen & BIT(type))
			goto fail;
		seen |= BIT(type);
		*why = "malformed record";
		switch (type) {
		case REC_IDENTITY:
			ret = get_identity(payload, rlen, s);
			break;
		case REC_PROFILE:
			ret = get_profile(payload, rlen, s);
			break;
		case REC_META:
			ret = get_meta(payload, rlen, s);
			break;
		case REC_REGFILE:
			ret = get_regs(payload, rlen, &s->regfile, &s->nr_regfile,
				       VMIG_REGFILE_MAX);
			break;
		case REC_READS:
			ret = get_regs(payload, rlen, &s->reads, &s->nr_reads,
				       VMIG_SNAP_MAX_READS);
			break;
		case REC_TAIL:
			ret = get_tail(payload, rlen, s);
			break;
		case REC_DEVSTATE:
			ret = get_devstate(payload, rlen, s);
			break;
		}
		if (ret)
			goto fail;
	}
	ret = -EINVAL;
	*why = "trailing bytes after the last record";
	if (pos != len)
		goto fail;
	ret = -EINVAL;
	*why = "identity, profile or meta record missing";
	if (!(seen & BIT(REC_IDENTITY)) || !(seen & BIT(REC_PROFILE)) ||
	    !(seen & BIT(REC_META)))
		goto fail;
	*why = check_snapshot(s);
	if (*why)
		goto fail;
	return s;
fail:
	vmig_snapshot_free(s);
	if (WARN_ON_ONCE(!ret))
		ret = -EINVAL;
	return ERR_PTR(ret);
}
