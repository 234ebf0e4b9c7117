// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig profile "nvme": the compatibility check before any state moves
 * (Documentation/nvme-profile.rst, "Compatibility").
 *
 * The source's model says what its guest uses (nvmp_needs(): struct
 * vfio_mig_nvme_needs); the target compares that with what its VF offers:
 * what the target kernel reads itself (CAP.MQES, CAP.MPSMIN/MPSMAX, the
 * MSI-X table size: struct nvmp_limits) and what the target's migration
 * controller learned from the PF (struct vfio_mig_nvme_facts: the VF's
 * queue and interrupt resources, its namespaces and their formats). Both
 * records come from user space and the network: every field is checked
 * before it is used. Plain C, built unchanged in user space by
 * selftests/unit/nvme_model.
 */
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/stdarg.h>
#include <linux/string.h>
#include <linux/types.h>
#include <asm/byteorder.h>

#include "model.h"
#include "state.h"

void nvmp_needs(const struct nvmp_ctrl *c, struct vfio_mig_nvme_needs *n)
{
	unsigned int q, i;
	u16 qsize = 0, max_qid = 0, nr_vec = 0;

	memset(n, 0, sizeof(*n));
	n->version = cpu_to_le16(VFIO_MIG_NVME_NEEDS_VERSION);
	n->size = cpu_to_le16(sizeof(*n));
	n->mps = NVMP_CC_MPS(c->cc);
	if (!c->enabled)
		return;
	n->enabled = 1;
	for (q = 0; q < NVMP_MAX_QID; q++) {
		const struct nvmp_sq *sq = &c->sq[q];
		const struct nvmp_cq *cq = &c->cq[q];

		if (cq->live && cq->ien && cq->iv + 1 > nr_vec)
			nr_vec = cq->iv + 1;
		if (!q || !(sq->live || cq->live))
			continue;
		max_qid = q;
		if (sq->live && sq->size > qsize)
			qsize = sq->size;
		if (cq->live && cq->size > qsize)
			qsize = cq->size;
	}
	for (i = 0; i < NVMP_MAX_VEC; i++)
		if ((c->iv_cfg_set & (1u << i)) && i + 1 > nr_vec)
			nr_vec = i + 1;
	n->max_qid = cpu_to_le16(max_qid);
	n->max_qsize = cpu_to_le16(qsize);
	n->nr_vec = cpu_to_le16(nr_vec);
	if (c->feat_set & (1u << NVMP_FEAT_NQ)) {
		n->granted_sq = cpu_to_le16((c->feat[NVMP_FEAT_NQ] & 0xffff) + 1);
		n->granted_cq = cpu_to_le16((c->feat[NVMP_FEAT_NQ] >> 16) + 1);
	}
	n->nr_ns = cpu_to_le32(min_t(u32, c->nr_ns, VFIO_MIG_NVME_MAX_NS));
	for (i = 0; i < c->nr_ns && i < VFIO_MIG_NVME_MAX_NS; i++) {
		n->ns[i].nsid = cpu_to_le32(c->ns[i].nsid);
		/* the uAPI's ms: a separate buffer's (0: none or extended) */
		n->ns[i].ms = cpu_to_le16(c->ns[i].ext ? 0 : c->ns[i].ms);
		n->ns[i].lbads = c->ns[i].lba_shift;
		n->ns[i].nsze = cpu_to_le64(c->ns[i].nsze);
	}
}

static bool all_zero(const void *p, size_t n)
{
	const u8 *b = p;

	while (n--)
		if (*b++)
			return false;
	return true;
}

/* A printable, NUL-terminated, zero-padded string of @n bytes. */
static bool good_str(const char *s, size_t n)
{
	size_t l = strnlen(s, n), i;

	if (l == n)
		return false;
	for (i = 0; i < l; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return all_zero(s + l, n - l);
}

/* Append "; " and @fmt to @buf (@len bytes), truncating. */
static __printf(3, 4) void note(char *buf, size_t len, const char *fmt, ...)
{
	size_t l = strnlen(buf, len);
	va_list ap;

	if (!len || l + 1 >= len)
		return;
	if (l) {
		snprintf(buf + l, len - l, "; ");
		l = strnlen(buf, len);
	}
	va_start(ap, fmt);
	vsnprintf(buf + l, len - l, fmt, ap);
	va_end(ap);
}

/* The reason of a refusal into @why: -EINVAL. */
static __printf(3, 4) int refuse_(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

#define refuse(...)	refuse_(why, why_len, __VA_ARGS__)

int nvmp_needs_valid(const struct vfio_mig_nvme_needs *n, u32 len,
		     char *why, size_t why_len)
{
	u32 nr_ns, i, j;

	if (len < 4 || le16_to_cpu(n->version) != VFIO_MIG_NVME_NEEDS_VERSION)
		return refuse("the source's needs record has version %u, this kernel knows %u",
			      len < 4 ? 0 : le16_to_cpu(n->version),
			      VFIO_MIG_NVME_NEEDS_VERSION);
	if (len != sizeof(*n) || le16_to_cpu(n->size) != sizeof(*n))
		return refuse("the source's needs record has %u bytes, not %zu",
			      len, sizeof(*n));
	nr_ns = le32_to_cpu(n->nr_ns);
	if (n->enabled > 1 || n->mps > 15 || n->rsvd ||
	    le16_to_cpu(n->max_qid) >= NVMP_MAX_QID ||
	    le16_to_cpu(n->max_qsize) > NVMP_MAX_QSIZE ||
	    le16_to_cpu(n->nr_vec) > NVMP_MAX_VEC ||
	    nr_ns > VFIO_MIG_NVME_MAX_NS)
		return refuse("the source's needs record is malformed");
	if (!n->enabled && (n->max_qid || n->max_qsize || n->nr_vec ||
			    n->granted_sq || n->granted_cq || nr_ns))
		return refuse_(why, why_len,
			       "the source's needs record is malformed (a disabled controller with queues)");
	for (i = 0; i < VFIO_MIG_NVME_MAX_NS; i++) {
		const struct vfio_mig_nvme_needs_ns *s = &n->ns[i];
		u32 nsid = le32_to_cpu(s->nsid);

		if (i >= nr_ns) {
			if (!all_zero(s, sizeof(*s)))
				return refuse_(why, why_len,
					       "the source's needs record is malformed (namespace %u)",
					       i);
			continue;
		}
		if (!nsid || nsid == 0xffffffff || s->lbads < 9 ||
		    s->lbads > 16 || s->rsvd)
			return refuse("the source's needs record is malformed (namespace %u)",
				      i);
		for (j = 0; j < i; j++)
			if (n->ns[j].nsid == s->nsid)
				return refuse("the source's needs record names namespace %u twice",
					      nsid);
	}
	return 0;
}

int nvmp_facts_valid(const struct vfio_mig_nvme_facts *f, u32 len,
		     char *why, size_t why_len)
{
	u32 nr_ns, i;

	if (len < 4 || le16_to_cpu(f->version) != VFIO_MIG_NVME_FACTS_VERSION)
		return refuse("the target's facts record has version %u, this kernel knows %u",
			      len < 4 ? 0 : le16_to_cpu(f->version),
			      VFIO_MIG_NVME_FACTS_VERSION);
	if (len != sizeof(*f) || le16_to_cpu(f->size) != sizeof(*f))
		return refuse("the target's facts record has %u bytes, not %zu",
			      len, sizeof(*f));
	nr_ns = le32_to_cpu(f->nr_ns);
	if (le32_to_cpu(f->flags) & ~(VFIO_MIG_NVME_F_CTRL |
				      VFIO_MIG_NVME_F_NS) ||
	    f->online > 1 || !all_zero(f->rsvd, sizeof(f->rsvd)) ||
	    nr_ns > VFIO_MIG_NVME_MAX_NS || !good_str(f->why, sizeof(f->why)))
		return refuse("the target's facts record is malformed");
	if (!(le32_to_cpu(f->flags) & VFIO_MIG_NVME_F_NS) && nr_ns)
		return refuse("the target's facts record is malformed (namespaces without F_NS)");
	for (i = 0; i < VFIO_MIG_NVME_MAX_NS; i++) {
		const struct vfio_mig_nvme_facts_ns *s = &f->ns[i];

		if (i >= nr_ns) {
			if (!all_zero(s, sizeof(*s)))
				return refuse_(why, why_len,
					       "the target's facts record is malformed (namespace %u)",
					       i);
			continue;
		}
		if (s->state < VFIO_MIG_NVME_NS_ATTACHED ||
		    s->state > VFIO_MIG_NVME_NS_ABSENT ||
		    (s->state == VFIO_MIG_NVME_NS_ATTACHED &&
		     (s->lbads < 9 || s->lbads > 16)))
			return refuse("the target's facts record is malformed (namespace %u)",
				      i);
	}
	return 0;
}

static const struct vfio_mig_nvme_facts_ns *
facts_ns(const struct vfio_mig_nvme_facts *f, __le32 nsid)
{
	u32 i;

	for (i = 0; i < le32_to_cpu(f->nr_ns); i++)
		if (f->ns[i].nsid == nsid)
			return &f->ns[i];
	return NULL;
}

/* The namespaces against the PF's facts (@f has F_NS). */
static int check_ns(const struct vfio_mig_nvme_needs *n,
		    const struct vfio_mig_nvme_facts *f, char *why,
		    size_t why_len, char *notes, size_t notes_len)
{
	u32 i;

	for (i = 0; i < le32_to_cpu(n->nr_ns); i++) {
		const struct vfio_mig_nvme_needs_ns *s = &n->ns[i];
		const struct vfio_mig_nvme_facts_ns *t = facts_ns(f, s->nsid);
		u32 nsid = le32_to_cpu(s->nsid);

		if (!t)
			return refuse("namespace %u: the target's facts do not say",
				      nsid);
		if (t->state == VFIO_MIG_NVME_NS_ABSENT)
			return refuse("namespace %u does not exist on the target",
				      nsid);
		if (t->state == VFIO_MIG_NVME_NS_DETACHED)
			return refuse("namespace %u is not attached to the target VF",
				      nsid);
		if (t->lbads != s->lbads)
			return refuse_(why, why_len,
				       "namespace %u: LBA data size %u on the target, %u on the source",
				       nsid, 1u << t->lbads, 1u << s->lbads);
		if (t->ms != s->ms)
			return refuse_(why, why_len,
				       "namespace %u: metadata size %u on the target, %u on the source",
				       nsid, le16_to_cpu(t->ms),
				       le16_to_cpu(s->ms));
		if (le64_to_cpu(t->nsze) < le64_to_cpu(s->nsze))
			return refuse("namespace %u: %llu blocks on the target, %llu on the source",
				      nsid,
				      (unsigned long long)le64_to_cpu(t->nsze),
				      (unsigned long long)le64_to_cpu(s->nsze));
		if (le64_to_cpu(t->nsze) > le64_to_cpu(s->nsze))
			note(notes, notes_len,
			     "namespace %u larger on the target (%llu blocks, the guest knows %llu)",
			     nsid, (unsigned long long)le64_to_cpu(t->nsze),
			     (unsigned long long)le64_to_cpu(s->nsze));
	}
	return 0;
}

int nvmp_needs_check(const struct vfio_mig_nvme_needs *n,
		     const struct vfio_mig_nvme_facts *f,
		     const struct nvmp_limits *lim, char *why, size_t why_len,
		     char *notes, size_t notes_len)
{
	u16 max_qid = le16_to_cpu(n->max_qid);
	u16 nr_vec = le16_to_cpu(n->nr_vec);
	u16 gsq = le16_to_cpu(n->granted_sq), gcq = le16_to_cpu(n->granted_cq);
	u16 granted = gsq > gcq ? gsq : gcq;
	u16 qsize = le16_to_cpu(n->max_qsize);

	why[0] = 0;
	if (!n->enabled) {
		note(notes, notes_len,
		     "the source's controller is disabled: nothing to check");
		return 0;
	}
	if (lim) {
		if (n->mps < lim->mps_min || n->mps > lim->mps_max)
			return refuse_(why, why_len,
				       "memory page size %u on the source, the target takes %u to %u (CAP.MPSMIN, MPSMAX)",
				       4096u << n->mps, 4096u << lim->mps_min,
				       4096u << lim->mps_max);
		if (qsize > lim->mqes)
			return refuse_(why, why_len,
				       "the guest has an I/O queue of %u entries, the target takes at most %u (CAP.MQES)",
				       qsize, lim->mqes);
		if (nr_vec > lim->nr_vec)
			return refuse_(why, why_len,
				       "the guest uses %u interrupt vectors, the target VF has %u MSI-X vectors",
				       nr_vec, lim->nr_vec);
	} else {
		note(notes, notes_len,
		     "the target VF's registers were not readable: CAP.MQES, MPS and MSI-X checked at restore");
	}
	if (f && (le32_to_cpu(f->flags) & VFIO_MIG_NVME_F_CTRL)) {
		/* the admin queue takes one of the VQ resources */
		u16 pairs = f->nvq ? le16_to_cpu(f->nvq) - 1 : 0;

		if (!f->online)
			return refuse("the target VF (secondary controller %u) is offline",
				      le16_to_cpu(f->scid));
		if (max_qid > pairs)
			return refuse("target VF has %u I/O queue pairs, the guest uses %u",
				      pairs, max_qid);
		if (granted > pairs)
			return refuse("target VF has %u I/O queue pairs, the guest was granted %u",
				      pairs, granted);
		if (nr_vec > le16_to_cpu(f->nvi))
			return refuse_(why, why_len,
				       "target VF has %u interrupt resources, the guest uses %u vectors",
				       le16_to_cpu(f->nvi), nr_vec);
	} else {
		note(notes, notes_len,
		     "the target VF's queue and interrupt resources are unknown (%s): checked at restore",
		     f && f->why[0] ? f->why : "no facts from its PF");
	}
	if (!le32_to_cpu(n->nr_ns))
		return 0;
	if (f && (le32_to_cpu(f->flags) & VFIO_MIG_NVME_F_NS))
		return check_ns(n, f, why, why_len, notes, notes_len);
	note(notes, notes_len,
	     "the target VF's namespaces are unknown (%s): not checked",
	     f && f->why[0] ? f->why : "no facts from its PF");
	return 0;
}
