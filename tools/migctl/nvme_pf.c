// SPDX-License-Identifier: GPL-2.0
/*
 * The target VF's facts from its PF (nvme_pf.h). Everything read from
 * sysfs and from the device is bounded and checked: a PF that answers
 * nonsense yields "unknown", never a wrong fact or a read past a buffer.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/nvme_ioctl.h>

#include "migctl.h"
#include "nvme_pf.h"

#define CNS_NS		0x00	/* Identify Namespace (active) */
#define CNS_NS_ALLOC	0x11	/* Identify Namespace, allocated NSID */
#define CNS_NS_CTRLS	0x12	/* controllers attached to a namespace */
#define CNS_SEC_CTRLS	0x15	/* Secondary Controller List */
#define VF_MAX		256	/* virtfnN links looked at */
#define SC_PAGES	16	/* Secondary Controller List pages read */
#define CTRL_PAGES	16	/* attached controller list pages read */

static void whyf(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void whyf(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

static uint16_t get16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The basename of the link @dir/@name into @out; -errno. */
static int link_base(const char *dir, const char *name, char *out, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	if (snprintf(out, len, "%s", basename(target)) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

int nvme_pf_find(const char *sysfs, const char *vf_bdf, char *pf,
		 size_t pf_len, uint16_t *vfn, char *dev, size_t dev_len,
		 char *why, size_t why_len)
{
	char vfdir[PATH_MAX], pfdir[PATH_MAX], name[64], base[64];
	struct dirent *e;
	unsigned int i;
	DIR *d;
	int ret;

	*vfn = 0;
	dev[0] = 0;
	if (!migctl_valid_bdf(vf_bdf)) {
		whyf(why, why_len, "%s is not a PCI address", vf_bdf);
		return -EINVAL;
	}
	snprintf(vfdir, sizeof(vfdir), "%s/bus/pci/devices/%s", sysfs, vf_bdf);
	ret = link_base(vfdir, "physfn", pf, pf_len);
	if (ret) {
		whyf(why, why_len, "%s is not an SR-IOV VF (no physfn)",
		     vf_bdf);
		return ret;
	}
	if (!migctl_valid_bdf(pf)) {
		whyf(why, why_len, "the PF of %s has no PCI address", vf_bdf);
		return -EINVAL;
	}
	snprintf(pfdir, sizeof(pfdir), "%s/bus/pci/devices/%s", sysfs, pf);
	for (i = 0; i < VF_MAX; i++) {
		snprintf(name, sizeof(name), "virtfn%u", i);
		if (link_base(pfdir, name, base, sizeof(base)))
			continue;
		if (!strcmp(base, vf_bdf)) {
			*vfn = i + 1;
			break;
		}
	}
	if (!*vfn) {
		whyf(why, why_len, "%s is not among the VFs of its PF %s",
		     vf_bdf, pf);
		return -ENOENT;
	}
	snprintf(pfdir, sizeof(pfdir), "%s/bus/pci/devices/%s/nvme", sysfs,
		 pf);
	d = opendir(pfdir);
	if (!d) {
		whyf(why, why_len, "its PF %s has no NVMe driver on this host",
		     pf);
		return -ENODEV;
	}
	/* the one controller of the PF: nvmeN */
	for (i = 0; i < 64 && (e = readdir(d)); i++) {
		unsigned int n;
		char c;

		if (sscanf(e->d_name, "nvme%u%c", &n, &c) == 1) {
			snprintf(dev, dev_len, "/dev/nvme%u", n);
			break;
		}
	}
	closedir(d);
	if (!dev[0]) {
		whyf(why, why_len, "its PF %s has no NVMe controller", pf);
		return -ENODEV;
	}
	return 0;
}

/* The secondary controller of VF @vfn: its entry in @f; 0 or -ENOENT. */
static int sec_ctrl(nvme_pf_identify_fn identify, void *ctx, uint16_t vfn,
		    uint8_t *buf, struct vfio_mig_nvme_facts *f)
{
	unsigned int page, i, n;
	uint32_t cntid = 0;
	int ret;

	for (page = 0; page < SC_PAGES && cntid <= 0xffff; page++) {
		ret = identify(ctx, CNS_SEC_CTRLS, cntid, 0, buf);
		if (ret) {
			whyf(f->why, sizeof(f->why),
			     "Identify Secondary Controller List failed (%s%d)",
			     ret < 0 ? "errno " : "status ",
			     ret < 0 ? -ret : ret);
			return -EIO;
		}
		n = buf[0];
		if (n > 127)
			break;
		for (i = 0; i < n; i++) {
			const uint8_t *e = buf + 32 + 32 * i;
			uint16_t scid = get16(e);

			if (scid < cntid)
				break;	/* not the ascending list asked */
			cntid = scid + 1;
			if (get16(e + 8) != vfn)
				continue;
			f->scid = htole16(scid);
			f->online = e[4] & 1;
			f->nvq = htole16(get16(e + 10));
			f->nvi = htole16(get16(e + 12));
			f->vfn = htole16(vfn);
			f->flags |= htole32(VFIO_MIG_NVME_F_CTRL);
			return 0;
		}
		if (n < 127 || i < n)
			break;
	}
	whyf(f->why, sizeof(f->why),
	     "VF %u is not in its PF's Secondary Controller List", vfn);
	return -ENOENT;
}

/* Is controller @scid attached to namespace @nsid? 1, 0, or -EIO. */
static int attached(nvme_pf_identify_fn identify, void *ctx, uint32_t nsid,
		    uint16_t scid, uint8_t *buf)
{
	unsigned int page, i, n;
	uint32_t cntid = 0;

	for (page = 0; page < CTRL_PAGES && cntid <= 0xffff; page++) {
		if (identify(ctx, CNS_NS_CTRLS, cntid, nsid, buf))
			return -EIO;
		n = get16(buf);
		if (n > 2047)
			return -EIO;
		for (i = 0; i < n; i++) {
			uint16_t id = get16(buf + 2 + 2 * i);

			if (id == scid)
				return 1;
			if (id < cntid)
				return 0;
			cntid = id + 1;
		}
		if (n < 2047)
			return 0;
	}
	return 0;
}

/* Namespace @nsid's format and size into @t; @t->state. */
static int ns_facts(nvme_pf_identify_fn identify, void *ctx, uint32_t nsid,
		    uint16_t scid, uint8_t *buf, struct vfio_mig_nvme_facts_ns *t,
		    char *why, size_t why_len)
{
	unsigned int fmt;
	uint8_t flbas;
	int ret;

	t->nsid = htole32(nsid);
	/* allocated, whether attached to the PF or not; else the active one */
	ret = identify(ctx, CNS_NS_ALLOC, 0, nsid, buf);
	if (ret)
		ret = identify(ctx, CNS_NS, 0, nsid, buf);
	if (ret > 0 || (!ret && !get64(buf))) {
		/* an invalid namespace, or an empty structure: none */
		t->state = VFIO_MIG_NVME_NS_ABSENT;
		return 0;
	}
	if (ret) {
		whyf(why, why_len, "Identify Namespace %u failed (errno %d)",
		     nsid, -ret);
		return -EIO;
	}
	flbas = buf[26];
	fmt = (flbas & 0xf) | ((flbas >> 1) & 0x30);
	if (fmt > buf[25] || fmt >= 64) {	/* NLBAF, 0-based */
		whyf(why, why_len, "namespace %u: format %u beyond its %u",
		     nsid, fmt, buf[25] + 1);
		return -EIO;
	}
	t->lbads = buf[128 + 4 * fmt + 2];
	if (t->lbads < 9 || t->lbads > 16) {
		whyf(why, why_len, "namespace %u: LBA data size 2^%u unusable",
		     nsid, t->lbads);
		return -EIO;
	}
	/* metadata in a separate buffer unless extended (FLBAS bit 4) */
	t->ms = htole16(flbas & 0x10 ? 0 : get16(buf + 128 + 4 * fmt));
	t->nsze = htole64(get64(buf));
	ret = attached(identify, ctx, nsid, scid, buf);
	if (ret < 0) {
		whyf(why, why_len,
		     "the controllers of namespace %u could not be listed",
		     nsid);
		return -EIO;
	}
	t->state = ret ? VFIO_MIG_NVME_NS_ATTACHED : VFIO_MIG_NVME_NS_DETACHED;
	if (!ret) {
		t->lbads = 0;
		t->ms = 0;
		t->nsze = 0;
	}
	return 0;
}

/* f->why as the kernel takes it: printable, NUL terminated, zero padded. */
static void why_clean(struct vfio_mig_nvme_facts *f)
{
	size_t l = strnlen(f->why, sizeof(f->why) - 1), i;

	for (i = 0; i < l; i++)
		if (f->why[i] < 0x20 || f->why[i] > 0x7e)
			f->why[i] = '?';
	memset(f->why + l, 0, sizeof(f->why) - l);
}

void nvme_pf_facts_from(nvme_pf_identify_fn identify, void *ctx,
			uint16_t vfn, const uint8_t *needs, size_t needs_len,
			struct vfio_mig_nvme_facts *f)
{
	const struct vfio_mig_nvme_needs *n = (const void *)needs;
	uint8_t *buf = calloc(1, NVME_PF_ID_LEN);
	uint32_t nr, i, nsid;

	memset(f, 0, sizeof(*f));
	f->version = htole16(VFIO_MIG_NVME_FACTS_VERSION);
	f->size = htole16(sizeof(*f));
	f->vfn = htole16(vfn);
	if (!buf) {
		whyf(f->why, sizeof(f->why), "out of memory");
		return;
	}
	if (sec_ctrl(identify, ctx, vfn, buf, f))
		goto out;
	/* only the namespace ids of a record of the known layout */
	if (needs_len != sizeof(*n) ||
	    le16toh(n->version) != VFIO_MIG_NVME_NEEDS_VERSION) {
		whyf(f->why, sizeof(f->why),
		     "the source's needs record is not one this migctl reads");
		goto out;
	}
	nr = le32toh(n->nr_ns);
	if (nr > VFIO_MIG_NVME_MAX_NS) {
		whyf(f->why, sizeof(f->why),
		     "the source's needs record names %u namespaces", nr);
		goto out;
	}
	for (i = 0; i < nr; i++) {
		nsid = le32toh(n->ns[i].nsid);
		if (!nsid || nsid == 0xffffffff ||
		    ns_facts(identify, ctx, nsid, le16toh(f->scid), buf,
			     &f->ns[i], f->why, sizeof(f->why)))
			break;
	}
	if (i < nr) {
		if (!f->why[0])
			whyf(f->why, sizeof(f->why),
			     "the source's needs record names namespace %u",
			     nsid);
		memset(f->ns, 0, sizeof(f->ns));
		goto out;
	}
	f->nr_ns = htole32(nr);
	f->flags |= htole32(VFIO_MIG_NVME_F_NS);
out:
	free(buf);
	why_clean(f);
}

/* The PF's character device, its admin passthrough. */
static int pf_identify(void *ctx, uint8_t cns, uint16_t cntid, uint32_t nsid,
		       uint8_t *buf)
{
	struct nvme_admin_cmd c = {
		.opcode = 0x06,
		.nsid = nsid,
		.addr = (uintptr_t)buf,
		.data_len = NVME_PF_ID_LEN,
		.cdw10 = (uint32_t)cntid << 16 | cns,
		.timeout_ms = 5000,
	};
	int ret;

	memset(buf, 0, NVME_PF_ID_LEN);
	ret = ioctl(*(int *)ctx, NVME_IOCTL_ADMIN_CMD, &c);
	return ret < 0 ? -errno : ret;
}

void nvme_pf_facts(const char *vf_bdf, const uint8_t *needs,
		   size_t needs_len, struct vfio_mig_nvme_facts *f)
{
	char pf[64], dev[64], why[sizeof(f->why)];
	uint16_t vfn;
	int fd;

	if (nvme_pf_find("/sys", vf_bdf, pf, sizeof(pf), &vfn, dev,
			 sizeof(dev), why, sizeof(why))) {
		memset(f, 0, sizeof(*f));
		f->version = htole16(VFIO_MIG_NVME_FACTS_VERSION);
		f->size = htole16(sizeof(*f));
		whyf(f->why, sizeof(f->why), "%s", why);
		why_clean(f);
		return;
	}
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		memset(f, 0, sizeof(*f));
		f->version = htole16(VFIO_MIG_NVME_FACTS_VERSION);
		f->size = htole16(sizeof(*f));
		whyf(f->why, sizeof(f->why), "cannot open %s of PF %s: %s",
		     dev, pf, strerror(err));
		why_clean(f);
		return;
	}
	nvme_pf_facts_from(pf_identify, &fd, vfn, needs, needs_len, f);
	close(fd);
}
