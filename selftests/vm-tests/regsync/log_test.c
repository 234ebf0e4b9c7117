// SPDX-License-Identifier: GPL-2.0
/*
 * The write log and register file with the generic profile: what the log
 * records, compaction, replay of last values, the log overflow path
 * (lossy log: replay from the register file alone, and says so); replay
 * onto a mismatched or closed device refused; snapshots that fail
 * validation rejected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "regsync.h"
#include "testbed.h"

#define SNAP_MAX	(1 << 22)

FIXTURE(generic) {
	struct tb_devs t;
	struct rs_side a, b;
	uint8_t *snap;
};

FIXTURE_SETUP(generic)
{
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(2, self->t.nr_edu);
	self->snap = malloc(SNAP_MAX);
	ASSERT_NE(NULL, self->snap);
}

FIXTURE_TEARDOWN(generic)
{
	rs_side_close(&self->a);
	rs_side_close(&self->b);
	rs_set_param("log_entries", "4096");
	free(self->snap);
}

static void open_pair(struct __test_metadata *_metadata,
		      FIXTURE_DATA(generic) *self, const char *profile)
{
	ASSERT_EQ(0, rs_side_open(&self->a, self->t.edu[0], "all", profile,
				  false));
	ASSERT_EQ(0, rs_side_open(&self->b, self->t.edu[1], "all", profile,
				  false));
}

/* Only state-like registers: the generic profile replays every write. */
static void writes(struct rs_side *s, unsigned int n, uint32_t base)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		edu_wr(&s->e, EDU_REG_LIVENESS, base + i);
		if (i % 3 == 0)
			edu_wr(&s->e, EDU_REG_DMA_SRC, base + 0x100 * i);
	}
}

TEST_F(generic, log_records_and_replay_compacts)
{
	struct rs_side *a = &self->a, *b = &self->b;
	long long seq0;
	char res[1024], path[256], line[256];
	unsigned int n = 0, nl = 0;
	FILE *f;

	open_pair(_metadata, self, "generic");
	seq0 = rs_counter(a->bdf, "log_next_seq");
	writes(a, 10, 0x5000);		/* 10 liveness + 4 src writes */
	EXPECT_EQ(seq0 + 14, rs_counter(a->bdf, "log_next_seq"));
	EXPECT_EQ(2, rs_counter(a->bdf, "regfile_entries"));
	EXPECT_EQ(0, rs_counter(a->bdf, "log_lossy"));

	/* the log holds the writes, in order, with their values */
	snprintf(path, sizeof(path), "/sys/kernel/debug/vfio-mig/%s/reglog",
		 a->bdf);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long seq, ts, val;
		unsigned int bar, off, w;

		ASSERT_EQ(6, sscanf(line, "%llu %llu %u %x %u %llx", &seq, &ts,
				    &bar, &off, &w, &val));
		if (seq < (unsigned long long)seq0)
			continue;
		EXPECT_EQ(seq0 + n, (long long)seq);
		EXPECT_EQ(0, bar);
		EXPECT_EQ(4, w);
		if (off == EDU_REG_LIVENESS)
			EXPECT_EQ(0x5000u + nl++, val);
		n++;
	}
	fclose(f);
	EXPECT_EQ(14, n);

	ASSERT_EQ(0, rs_ctl(a->bdf, "take"));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	EXPECT_EQ(2, rs_key(res, "regfile", -1));
	EXPECT_EQ(2, rs_key(res, "tail", -1)) TH_LOG("%s", res);	/* compacted */

	edu_liveness(&b->e, 1);
	ASSERT_EQ(0, rs_ctl(a->bdf, "replay %s", b->bdf));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	EXPECT_EQ(0, rs_key(res, "regfile_only", -1)) TH_LOG("%s", res);
	EXPECT_EQ(2, rs_key(res, "applied", -1)) TH_LOG("%s", res);
	EXPECT_EQ(0, rs_key(res, "errors", -1));
	EXPECT_EQ(edu_rd(&a->e, EDU_REG_LIVENESS),
		  edu_rd(&b->e, EDU_REG_LIVENESS));
	EXPECT_EQ(edu_rd(&a->e, EDU_REG_DMA_SRC),
		  edu_rd(&b->e, EDU_REG_DMA_SRC));
	EXPECT_EQ(10, nl);
}

/*
 * Any reset of the device clears the register file and logs a marker,
 * not only VFIO_DEVICE_RESET: here the PCI core's calls around a reset
 * (the debugfs test command "reset-done"), as a hot reset, an FLR through
 * config space or sysfs make them. A snapshot taken after it carries
 * nothing from before, so a replay writes none of it.
 */
TEST_F(generic, any_reset_clears_the_register_file)
{
	struct rs_side *a = &self->a;
	char res[1024], path[256], line[256];
	unsigned long long seq = 0, ts, val;
	unsigned int bar = 0, off, w = 1;
	long long seq0;
	FILE *f;

	open_pair(_metadata, self, "generic");
	writes(a, 4, 0x7000);
	EXPECT_EQ(2, rs_counter(a->bdf, "regfile_entries"));
	seq0 = rs_counter(a->bdf, "log_next_seq");
	ASSERT_EQ(0, rs_ctl(a->bdf, "reset-done"));
	EXPECT_EQ(0, rs_counter(a->bdf, "regfile_entries"))
		TH_LOG("the register file kept what the reset wiped");
	EXPECT_EQ(seq0 + 1, rs_counter(a->bdf, "log_next_seq"));
	/* the last entry is the marker: BAR 0xff, width 0 */
	snprintf(path, sizeof(path), "/sys/kernel/debug/vfio-mig/%s/reglog",
		 a->bdf);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		sscanf(line, "%llu %llu %u %x %u %llx", &seq, &ts, &bar, &off,
		       &w, &val);
	fclose(f);
	EXPECT_EQ(seq0, (long long)seq);
	EXPECT_EQ(0xff, bar);
	EXPECT_EQ(0, w);
	ASSERT_EQ(0, rs_ctl(a->bdf, "take"));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	EXPECT_EQ(0, rs_key(res, "regfile", -1)) TH_LOG("%s", res);
	EXPECT_EQ(0, rs_key(res, "tail", -1)) TH_LOG("%s", res);
}

TEST_F(generic, log_overflow_replays_regfile_alone)
{
	struct rs_side *a = &self->a, *b = &self->b;
	long long seq0;
	char res[1024];

	ASSERT_EQ(0, rs_set_param("log_entries", "64"));
	open_pair(_metadata, self, "generic");
	EXPECT_EQ(0, rs_counter(a->bdf, "log_overflows"));
	seq0 = rs_counter(a->bdf, "log_next_seq");
	writes(a, 150, 0x9000);		/* 150 + 50 writes */
	EXPECT_EQ(seq0 + 200, rs_counter(a->bdf, "log_next_seq"));
	EXPECT_EQ(64, rs_counter(a->bdf, "log_entries"));
	EXPECT_EQ(200 - 64, rs_counter(a->bdf, "log_overflows"));
	EXPECT_EQ(1, rs_counter(a->bdf, "log_lossy"));

	ASSERT_EQ(0, rs_ctl(a->bdf, "take"));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	EXPECT_EQ(1, rs_key(res, "flags", 0) & 1) TH_LOG("%s", res);

	edu_liveness(&b->e, 3);
	ASSERT_EQ(0, rs_ctl(a->bdf, "replay %s", b->bdf));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	TH_LOG("%s", res);
	EXPECT_EQ(1, rs_key(res, "regfile_only", -1));
	EXPECT_EQ(2, rs_key(res, "applied", -1));
	EXPECT_EQ(0, rs_key(res, "errors", -1));
	EXPECT_NE(NULL, strstr(res, "register file alone"));
	EXPECT_EQ(edu_rd(&a->e, EDU_REG_LIVENESS),
		  edu_rd(&b->e, EDU_REG_LIVENESS));
	EXPECT_EQ(edu_rd(&a->e, EDU_REG_DMA_SRC),
		  edu_rd(&b->e, EDU_REG_DMA_SRC));

	/* the next open starts a fresh, lossless log */
	rs_side_close(a);
	ASSERT_EQ(0, rs_side_open(a, self->t.edu[0], "all", "generic", false));
	EXPECT_EQ(0, rs_counter(a->bdf, "log_lossy"));
	EXPECT_EQ(0, rs_counter(a->bdf, "log_entries"));
}

/* Replace the u64 at @off of the identity record of the stored snapshot. */
static int tamper(const char *bdf, uint8_t *snap, size_t off, size_t size,
		  uint64_t val)
{
	ssize_t n = rs_snapshot_read(bdf, snap, SNAP_MAX);
	uint32_t len;
	uint8_t *id;

	if (n <= 0)
		return -EIO;
	id = (uint8_t *)rs_snapshot_record(snap, n, RS_REC_IDENTITY, &len);
	if (!id || len != 64)
		return -EIO;
	memcpy(id + off, &val, size);
	return rs_snapshot_write(bdf, snap, n);
}

TEST_F(generic, replay_refused_on_mismatch)
{
	struct rs_side *a = &self->a, *b = &self->b;
	struct tb_devs *t = &self->t;
	struct vmm_dev vf;
	char res[1024];

	ASSERT_EQ(TB_NR_VF, t->nr_vf);
	ASSERT_EQ(0, vmm_bind(t->vf[0], TB_DRIVER));
	/* the VF under the generic profile (its own is nvme) */
	snprintf(res, sizeof(res), "/sys/bus/pci/devices/%s/vfio_mig/profile",
		 t->vf[0]);
	ASSERT_EQ(0, vmm_sysfs_write(res, "generic"));
	ASSERT_EQ(0, vmm_open(&vf, t->vf[0]));
	open_pair(_metadata, self, "edu");
	edu_liveness(&a->e, 42);

	/* an edu snapshot onto the NVMe VF: the profiles differ */
	ASSERT_EQ(0, rs_ctl(a->bdf, "take"));
	EXPECT_EQ(-EINVAL, rs_ctl(a->bdf, "replay %s", t->vf[0]));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	EXPECT_NE(NULL, strstr(res, "profile mismatch")) TH_LOG("%s", res);

	/* a BAR size that differs: refused */
	ASSERT_EQ(0, tamper(a->bdf, self->snap, 16, 8, 0x200000));
	EXPECT_EQ(-EINVAL, rs_ctl(a->bdf, "replay %s", b->bdf));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	EXPECT_NE(NULL, strstr(res, "identity mismatch: BAR0 size"))
		TH_LOG("%s", res);

	/* another revision: on the edu profile's allow-list */
	ASSERT_EQ(0, rs_ctl(a->bdf, "take"));
	ASSERT_EQ(0, tamper(a->bdf, self->snap, 8, 1, 0x42));
	EXPECT_EQ(0, rs_ctl(a->bdf, "replay %s", b->bdf));
	EXPECT_EQ(1, rs_result_num(a->bdf, "id_tolerated"));
	EXPECT_EQ(~42u, edu_rd(&b->e, EDU_REG_LIVENESS));

	/* ... but not on the generic profile's */
	rs_side_close(a);
	rs_side_close(b);
	open_pair(_metadata, self, "generic");
	edu_liveness(&a->e, 43);
	ASSERT_EQ(0, rs_ctl(a->bdf, "take"));
	ASSERT_EQ(0, tamper(a->bdf, self->snap, 8, 1, 0x42));
	EXPECT_EQ(-EINVAL, rs_ctl(a->bdf, "replay %s", b->bdf));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	EXPECT_NE(NULL, strstr(res, "revision")) TH_LOG("%s", res);

	/* another device under the same profile: vendor and device differ */
	ASSERT_EQ(0, rs_ctl(a->bdf, "take"));
	EXPECT_EQ(-EINVAL, rs_ctl(a->bdf, "replay %s", t->vf[0]));
	ASSERT_EQ(0, rs_result(a->bdf, res, sizeof(res)));
	EXPECT_NE(NULL, strstr(res, "identity mismatch: source 1234:11e8, target 1b36:0010"))
		TH_LOG("%s", res);
	vmm_close(&vf);
	snprintf(res, sizeof(res), "/sys/bus/pci/devices/%s/vfio_mig/profile",
		 t->vf[0]);
	EXPECT_EQ(0, vmm_sysfs_write(res, "nvme"));

	/* a target nobody has open, and one that is not ours */
	rs_side_close(b);
	EXPECT_EQ(-ENODEV, rs_ctl(a->bdf, "replay %s", b->bdf));
	EXPECT_EQ(-ENODEV, rs_ctl(a->bdf, "replay 0000:00:1f.7"));
	EXPECT_NE(0, rs_ctl(a->bdf, "bogus command"));
}

TEST_F(generic, corrupt_snapshots_rejected)
{
	struct rs_side *a = &self->a;
	unsigned int i, seed = 12345, accepted = 0;
	uint8_t *orig, *m;
	ssize_t n;
	int ret;

	open_pair(_metadata, self, "edu");
	writes(a, 20, 0x100);
	ASSERT_EQ(0, rs_ctl(a->bdf, "take full"));
	n = rs_snapshot_read(a->bdf, self->snap, SNAP_MAX);
	ASSERT_GT(n, 4096);
	orig = malloc(n);
	m = malloc(n + 64);
	ASSERT_NE(NULL, orig);
	ASSERT_NE(NULL, m);
	memcpy(orig, self->snap, n);

	EXPECT_EQ(-EINVAL, rs_snapshot_write(a->bdf, orig, 10));
	memcpy(m, orig, n);
	m[0] ^= 1;
	EXPECT_EQ(-EINVAL, rs_snapshot_write(a->bdf, m, n));
	memcpy(m, orig, n);
	EXPECT_EQ(-EINVAL, rs_snapshot_write(a->bdf, m, n - 8));
	memset(m + n, 0, 64);
	EXPECT_EQ(-EINVAL, rs_snapshot_write(a->bdf, m, n + 64));

	for (i = 0; i < 2000; i++) {
		size_t len = n;
		unsigned int k, flips = 1 + (seed >> 8) % 4;

		memcpy(m, orig, n);
		for (k = 0; k < flips; k++) {
			seed = seed * 1103515245u + 12345u;
			/* mostly the header and the small records */
			m[(seed >> 8) % (i % 2 ? 200 : n)] ^= 1 << (seed % 8);
		}
		if (i % 7 == 0)
			len = (seed >> 4) % n + 1;
		ret = rs_snapshot_write(a->bdf, m, len);
		EXPECT_TRUE(ret == 0 || ret == -EINVAL) TH_LOG("ret %d", ret);
		accepted += !ret;
	}
	TH_LOG("%u of 2000 mutated snapshots passed validation", accepted);
	EXPECT_EQ(0, rs_snapshot_write(a->bdf, orig, n));
	free(orig);
	free(m);
}

TEST_HARNESS_MAIN
