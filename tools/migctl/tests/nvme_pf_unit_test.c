// SPDX-License-Identifier: GPL-2.0
/*
 * migctl's reading of an NVMe VF's facts from its PF (nvme_pf.c): the
 * sysfs walk from the VF to the PF's controller, and the Identify data
 * (Secondary Controller List, Namespace, attached controllers) against a
 * fake PF, honest and hostile.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "../nvme_pf.h"

struct fns {
	uint32_t nsid;
	uint64_t nsze;
	uint8_t flbas, nlbaf, lbads[4];
	uint16_t ms[4];
	uint16_t ctrls[8];
	unsigned int nr_ctrls;
};

struct fpf {
	/* secondary controllers: scid, vfn, nvq, nvi, online */
	uint16_t sc[4][5];
	unsigned int nr_sc;
	struct fns ns[2];
	unsigned int nr_ns;
	int sc_status;		/* CNS 15h fails with it */
	bool no_alloc;		/* CNS 11h unsupported */
	int sc_numid;		/* NUMID to claim (0: the true count) */
	unsigned int ctrl_count; /* count to claim (0: the true one) */
	unsigned int calls;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static int f_identify(void *ctx, uint8_t cns, uint16_t cntid, uint32_t nsid,
		      uint8_t *buf)
{
	struct fpf *f = ctx;
	unsigned int i, n = 0;

	f->calls++;
	memset(buf, 0, NVME_PF_ID_LEN);
	if (cns == 0x15) {
		if (f->sc_status)
			return f->sc_status;
		for (i = 0; i < f->nr_sc; i++) {
			uint8_t *e = buf + 32 + 32 * n;

			if (f->sc[i][0] < cntid)
				continue;
			put16(e, f->sc[i][0]);
			e[4] = f->sc[i][4];
			put16(e + 8, f->sc[i][1]);
			put16(e + 10, f->sc[i][2]);
			put16(e + 12, f->sc[i][3]);
			n++;
		}
		buf[0] = f->sc_numid ? f->sc_numid : (int)n;
		return 0;
	}
	for (i = 0; i < f->nr_ns; i++) {
		struct fns *s = &f->ns[i];

		if (s->nsid != nsid)
			continue;
		if (cns == 0x11 && f->no_alloc)
			return 0x4002;
		if (cns == 0x11 || cns == 0x00) {
			memcpy(buf, &s->nsze, 8);
			buf[25] = s->nlbaf;
			buf[26] = s->flbas;
			for (n = 0; n < 4; n++) {
				put16(buf + 128 + 4 * n, s->ms[n]);
				buf[128 + 4 * n + 2] = s->lbads[n];
			}
			return 0;
		}
		if (cns == 0x12) {
			for (n = 0; n < s->nr_ctrls; n++)
				put16(buf + 2 + 2 * n, s->ctrls[n]);
			put16(buf, f->ctrl_count ? f->ctrl_count : s->nr_ctrls);
			return 0;
		}
	}
	/* no such namespace: an invalid NSID status for the ns commands */
	return cns == 0x11 || cns == 0x00 || cns == 0x12 ? 0x400b : 0x4002;
}

/* The test bed: VF 1 and 2 (controllers 1, 2), namespace 1 on both. */
static void bed(struct fpf *f)
{
	memset(f, 0, sizeof(*f));
	f->nr_sc = 2;
	memcpy(f->sc[0], (uint16_t[]){ 1, 1, 4, 3, 1 }, sizeof(f->sc[0]));
	memcpy(f->sc[1], (uint16_t[]){ 2, 2, 4, 3, 1 }, sizeof(f->sc[1]));
	f->nr_ns = 1;
	f->ns[0] = (struct fns){ .nsid = 1, .nsze = 131072, .nlbaf = 1,
				 .flbas = 0, .lbads = { 9, 12 },
				 .ms = { 0, 8 }, .ctrls = { 1, 2 },
				 .nr_ctrls = 2 };
}

static size_t needs_of(struct vfio_mig_nvme_needs *n, const uint32_t *ids,
		       unsigned int nr)
{
	unsigned int i;

	memset(n, 0, sizeof(*n));
	n->version = VFIO_MIG_NVME_NEEDS_VERSION;
	n->size = sizeof(*n);
	n->enabled = 1;
	n->nr_ns = nr;
	for (i = 0; i < nr; i++)
		n->ns[i].nsid = ids[i];
	return sizeof(*n);
}

/* f->why as the kernel takes it: printable, terminated, zero padded */
static bool why_ok(const struct vfio_mig_nvme_facts *f)
{
	size_t l = strnlen(f->why, sizeof(f->why)), i;

	if (l == sizeof(f->why))
		return false;
	for (i = 0; i < l; i++)
		if (f->why[i] < 0x20 || f->why[i] > 0x7e)
			return false;
	for (; i < sizeof(f->why); i++)
		if (f->why[i])
			return false;
	return true;
}

TEST(facts_of_the_test_bed)
{
	struct vfio_mig_nvme_needs n;
	struct vfio_mig_nvme_facts f;
	struct fpf pf;
	size_t len = needs_of(&n, (uint32_t[]){ 1 }, 1);

	bed(&pf);
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	EXPECT_EQ(VFIO_MIG_NVME_FACTS_VERSION, f.version);
	EXPECT_EQ(sizeof(f), f.size);
	EXPECT_EQ(VFIO_MIG_NVME_F_CTRL | VFIO_MIG_NVME_F_NS, f.flags)
		TH_LOG("%s", f.why);
	EXPECT_EQ(2, f.vfn);
	EXPECT_EQ(2, f.scid);
	EXPECT_EQ(4, f.nvq);
	EXPECT_EQ(3, f.nvi);
	EXPECT_EQ(1, f.online);
	ASSERT_EQ(1, f.nr_ns);
	EXPECT_EQ(1, f.ns[0].nsid);
	EXPECT_EQ(VFIO_MIG_NVME_NS_ATTACHED, f.ns[0].state);
	EXPECT_EQ(9, f.ns[0].lbads);
	EXPECT_EQ(0, f.ns[0].ms);
	EXPECT_EQ(131072, f.ns[0].nsze);
	EXPECT_STREQ("", f.why);
	EXPECT_TRUE(why_ok(&f));
}

TEST(fewer_resources_offline_detached_absent_other_format)
{
	struct vfio_mig_nvme_needs n;
	struct vfio_mig_nvme_facts f;
	struct fpf pf;
	size_t len = needs_of(&n, (uint32_t[]){ 1, 7 }, 2);

	bed(&pf);
	pf.sc[1][2] = 2;	/* nvq */
	pf.sc[1][4] = 0;	/* offline */
	pf.ns[0].nr_ctrls = 1;	/* detached from controller 2 */
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	ASSERT_EQ(VFIO_MIG_NVME_F_CTRL | VFIO_MIG_NVME_F_NS, f.flags)
		TH_LOG("%s", f.why);
	EXPECT_EQ(2, f.nvq);
	EXPECT_EQ(0, f.online);
	ASSERT_EQ(2, f.nr_ns);
	EXPECT_EQ(VFIO_MIG_NVME_NS_DETACHED, f.ns[0].state);
	EXPECT_EQ(0, f.ns[0].lbads);
	EXPECT_EQ(7, f.ns[1].nsid);
	EXPECT_EQ(VFIO_MIG_NVME_NS_ABSENT, f.ns[1].state);
	/* format 1 (4096 + 8 bytes metadata), without CNS 11h */
	bed(&pf);
	pf.no_alloc = true;
	pf.ns[0].flbas = 1;
	len = needs_of(&n, (uint32_t[]){ 1 }, 1);
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	ASSERT_EQ(VFIO_MIG_NVME_F_CTRL | VFIO_MIG_NVME_F_NS, f.flags);
	EXPECT_EQ(12, f.ns[0].lbads);
	EXPECT_EQ(8, f.ns[0].ms);
	/* extended metadata: none in a separate buffer */
	pf.ns[0].flbas = 0x11;
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	EXPECT_EQ(0, f.ns[0].ms);
}

TEST(unknown_facts_say_why)
{
	struct vfio_mig_nvme_needs n;
	struct vfio_mig_nvme_facts f;
	struct fpf pf;
	size_t len = needs_of(&n, (uint32_t[]){ 1 }, 1);

	bed(&pf);
	pf.sc_status = 0x4002;	/* no SR-IOV management */
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	EXPECT_EQ(0, f.flags);
	EXPECT_STREQ("Identify Secondary Controller List failed (status 16386)",
		     f.why);
	bed(&pf);
	nvme_pf_facts_from(f_identify, &pf, 3, (uint8_t *)&n, len, &f);
	EXPECT_EQ(0, f.flags);
	EXPECT_STREQ("VF 3 is not in its PF's Secondary Controller List", f.why);
	/* a needs record of another layout: the controller only */
	bed(&pf);
	n.version = 9;
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	EXPECT_EQ(VFIO_MIG_NVME_F_CTRL, f.flags);
	EXPECT_EQ(0, f.nr_ns);
	EXPECT_NE(NULL, strstr(f.why, "needs record"));
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, 3, &f);
	EXPECT_EQ(VFIO_MIG_NVME_F_CTRL, f.flags);
	EXPECT_TRUE(why_ok(&f));
}

/* A PF answering nonsense: facts unknown or judged, never a wrong read. */
TEST(hostile_pf)
{
	struct vfio_mig_nvme_needs n;
	struct vfio_mig_nvme_facts f;
	struct fpf pf;
	size_t len = needs_of(&n, (uint32_t[]){ 1 }, 1);

	bed(&pf);
	pf.sc_numid = 200;	/* more than a page holds */
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	EXPECT_EQ(0, f.flags);
	bed(&pf);
	pf.sc_numid = 127;	/* a full page, repeated: bounded */
	nvme_pf_facts_from(f_identify, &pf, 9, (uint8_t *)&n, len, &f);
	EXPECT_EQ(0, f.flags);
	EXPECT_GT(20, pf.calls);
	bed(&pf);
	pf.ns[0].flbas = 3;	/* format beyond NLBAF */
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	EXPECT_EQ(VFIO_MIG_NVME_F_CTRL, f.flags);
	EXPECT_EQ(0, f.nr_ns);
	EXPECT_NE(NULL, strstr(f.why, "format 3")) TH_LOG("%s", f.why);
	bed(&pf);
	pf.ns[0].lbads[0] = 3;
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	EXPECT_EQ(VFIO_MIG_NVME_F_CTRL, f.flags);
	bed(&pf);
	pf.ctrl_count = 5000;	/* more ids than a page holds */
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	EXPECT_EQ(VFIO_MIG_NVME_F_CTRL, f.flags);
	EXPECT_TRUE(why_ok(&f));
	/* a needs record naming a namespace the PF cannot have */
	bed(&pf);
	len = needs_of(&n, (uint32_t[]){ 0xffffffff }, 1);
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	EXPECT_EQ(VFIO_MIG_NVME_F_CTRL, f.flags);
	n.nr_ns = 17;
	nvme_pf_facts_from(f_identify, &pf, 2, (uint8_t *)&n, len, &f);
	EXPECT_EQ(VFIO_MIG_NVME_F_CTRL, f.flags);
}

/* The sysfs walk: VF -> physfn -> virtfnN -> nvme/nvmeN. */
TEST(sysfs_walk)
{
	char root[] = "/tmp/nvme_pf_test.XXXXXX", p[600], q[512];
	char pf[64], dev[64], why[128];
	uint16_t vfn;

	ASSERT_NE(NULL, mkdtemp(root));
	snprintf(p, sizeof(p), "%s/bus", root);
	ASSERT_EQ(0, mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/bus/pci", root);
	ASSERT_EQ(0, mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/bus/pci/devices", root);
	ASSERT_EQ(0, mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:00:04.0", root);
	ASSERT_EQ(0, mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:00:04.2", root);
	ASSERT_EQ(0, mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:00:04.2/physfn", root);
	ASSERT_EQ(0, symlink("../0000:00:04.0", p));
	snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:00:04.0/virtfn0", root);
	ASSERT_EQ(0, symlink("../0000:00:04.1", p));
	snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:00:04.0/virtfn1", root);
	ASSERT_EQ(0, symlink("../0000:00:04.2", p));
	/* not an SR-IOV VF */
	EXPECT_EQ(-ENOENT, nvme_pf_find(root, "0000:00:04.0", pf, sizeof(pf),
					&vfn, dev, sizeof(dev), why,
					sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "not an SR-IOV VF"));
	/* the PF without its NVMe driver (passed through elsewhere) */
	EXPECT_EQ(-ENODEV, nvme_pf_find(root, "0000:00:04.2", pf, sizeof(pf),
					&vfn, dev, sizeof(dev), why,
					sizeof(why)));
	EXPECT_STREQ("its PF 0000:00:04.0 has no NVMe driver on this host", why);
	snprintf(q, sizeof(q), "%s/bus/pci/devices/0000:00:04.0/nvme", root);
	ASSERT_EQ(0, mkdir(q, 0755));
	snprintf(p, sizeof(p), "%s/nvme3", q);
	ASSERT_EQ(0, mkdir(p, 0755));
	ASSERT_EQ(0, nvme_pf_find(root, "0000:00:04.2", pf, sizeof(pf), &vfn,
				  dev, sizeof(dev), why, sizeof(why)))
		TH_LOG("%s", why);
	EXPECT_STREQ("0000:00:04.0", pf);
	EXPECT_EQ(2, vfn);
	EXPECT_STREQ("/dev/nvme3", dev);
	EXPECT_EQ(-EINVAL, nvme_pf_find(root, "../../etc", pf, sizeof(pf),
					&vfn, dev, sizeof(dev), why,
					sizeof(why)));
	rmdir(p);
	rmdir(q);
	snprintf(p, sizeof(p), "rm -rf %s", root);
	EXPECT_EQ(0, system(p));
}

TEST_HARNESS_MAIN
