// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile input to the nvme profile (issue 14, "Hostile input").
 *
 * mutated_streams_refused: a real stop-copy stream of VF 1 under the nvme
 * profile, taken with two I/O queue pairs created and the verified
 * workload's commands in flight (as migrate_to_vf2_with_io), then
 * MIG_STREAM_ITERS (default 10000) mutations of it written to VF 2 in
 * RESUMING: truncations, bit flips, record lengths, stream header fields
 * (header CRC fixed), the PROFILE_STATE record's header and the nvme
 * record body (struct nvmp_state; record CRC fixed, so that only the
 * profile's own checks can refuse them). Each must be refused (by write()
 * or by RESUMING -> STOP), or be one of the tolerated kinds (below), be
 * accepted with VF 2 left in the state the record describes. At the end the
 * unmutated stream resumes VF 2 and the workload goes on there, every block
 * checked; the kernel is not tainted (no WARN, no oops).
 *
 * MIG_SEED=<n> repeats a run's mutations (the test prints its seed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/vfio_mig_ctl.h>
#include <linux/vfio_mig_stream.h>

#include "kselftest_harness.h"
#include "mig.h"
#include "nvme.h"
#include "nvme_vf.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(4u << 20)
#define NSID		1
#define QDEPTH		16
#define WL_DEPTH	8
#define TMO		5000
#define WL_TMO		40000
#define REC_HDR		sizeof(struct vmig_stream_rec)
#define PROF_HDR	sizeof(struct vmig_stream_profile)
#define MAX_RECS	16

/*
 * The leading fields of the nvme profile's record (struct nvmp_state in
 * drivers/vfio-mig/profiles/nvme/state.h, little-endian), as far as the
 * checks below read them.
 */
struct nvmp_state_hdr_view {
	uint32_t version, cc, aqa, intms;
	uint64_t asq, acq;
	uint64_t admin_issued;
};

#ifndef STREAM_ITERS
#define STREAM_ITERS	10000
#endif

static unsigned long tainted(void)
{
	char buf[32] = "";

	vmm_sysfs_read("/proc/sys/kernel/tainted", buf, sizeof(buf));
	return strtoul(buf, NULL, 0);
}

/* TAINT_DIE (oops) and TAINT_WARN */
#define TAINT_BAD	((1ul << 7) | (1ul << 9))

FIXTURE(hostile) {
	struct tb_devs t;
	struct vmm_dev a, b;
	bool a_open, b_open;
	struct vmm_ram ram;
	struct nvme_ctrl c;
	bool c_up;
	struct nvme_wl w;
	bool w_up;
	struct mig_buf s;
	void *ram_copy;		/* guest RAM as the stream was taken */
	/* layout of the stream */
	uint32_t hdr_len;
	int nr;
	size_t off[MAX_RECS];
	int prof;		/* index of the PROFILE_STATE record */
	uint64_t seed, rng;
	int fd_b;
	unsigned long taint0;
};

static uint64_t rnd(FIXTURE_DATA(hostile) *self)
{
	self->rng ^= self->rng >> 12;
	self->rng ^= self->rng << 25;
	self->rng ^= self->rng >> 27;
	return self->rng * 0x2545f4914f6cdd1dull;
}

/* Where the records are; NULL or what is wrong. */
static const char *parse(FIXTURE_DATA(hostile) *self)
{
	const uint8_t *s = self->s.data;
	size_t len = self->s.len, pos;

	if (len < sizeof(struct vmig_stream_hdr))
		return "short";
	self->hdr_len = mig_get32(s + 12);
	self->nr = 0;
	self->prof = -1;
	for (pos = self->hdr_len; pos + REC_HDR <= len && self->nr < MAX_RECS;) {
		uint32_t type = mig_get32(s + pos), rlen = mig_get32(s + pos + 4);

		if (rlen > len - pos - REC_HDR)
			return "record longer than the stream";
		if (type == VMIG_REC_PROFILE_STATE)
			self->prof = self->nr;
		self->off[self->nr++] = pos;
		pos += REC_HDR + rlen;
		if (type == VMIG_REC_END)
			return pos == len ? NULL : "bytes after END";
	}
	return "no END record";
}

static uint64_t get64(const uint8_t *p)
{
	return mig_get32(p) | (uint64_t)mig_get32(p + 4) << 32;
}

/*
 * Do two nvme records describe one state? Every field equal but the admin
 * commands issued since enable, which the restore pads by whole periods
 * of the admin queues' positions (lcm(SQ size, 2 x CQ size): the
 * restore's Flush pump, nvmp_admin_period()); it must agree modulo that.
 * 0 when they agree.
 */
static int same_record(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t at = offsetof(struct nvmp_state_hdr_view, admin_issued);
	uint32_t aqa = mig_get32(a + offsetof(struct nvmp_state_hdr_view, aqa));
	uint64_t x = (aqa & 0xfff) + 1, y = 2 * (((aqa >> 16) & 0xfff) + 1);
	uint64_t g = x, h = y, period;

	if (n < at + 8)
		return memcmp(a, b, n);
	while (h) {
		uint64_t t = g % h;

		g = h;
		h = t;
	}
	period = x / g * y;
	if (get64(a + at) % period != get64(b + at) % period)
		return 1;
	if (memcmp(a, b, at))
		return 1;
	return memcmp(a + at + 8, b + at + 8, n - at - 8);
}

/* Where two records differ first, for the log. */
static const char *first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	static char buf[96];
	size_t i;

	/* admin_issued: same_record() compares it modulo the period */
	for (i = 0; i < n && (a[i] == b[i] || (i >= 32 && i < 40)); i++)
		;
	if (i == n)
		return "nowhere";
	snprintf(buf, sizeof(buf), "byte %zu: %#x taken, %#x saved (of %zu)",
		 i, a[i], b[i], n);
	return buf;
}

/* Offset of the PROFILE_STATE record in a well-formed stream, or -1. */
static long find_profile_record(const uint8_t *s, size_t len)
{
	size_t pos;

	if (len < sizeof(struct vmig_stream_hdr))
		return -1;
	for (pos = mig_get32(s + 12); pos + REC_HDR <= len;) {
		uint32_t type = mig_get32(s + pos), rlen = mig_get32(s + pos + 4);

		if (rlen > len - pos - REC_HDR)
			return -1;
		if (type == VMIG_REC_PROFILE_STATE)
			return pos;
		if (type == VMIG_REC_END)
			return -1;
		pos += REC_HDR + rlen;
	}
	return -1;
}

FIXTURE_SETUP(hostile)
{
	const char *env = getenv("MIG_SEED");
	struct nvme_ctrl *c = &self->c;
	uint64_t flags = 0;
	const char *why;
	char err[256];
	int fd, ret;

	self->fd_b = -1;
	self->ram.memfd = -1;
	self->taint0 = tainted();
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(TB_NR_VF, self->t.nr_vf);
	ASSERT_EQ(0, vmm_bind(self->t.vf[0], TB_DRIVER));
	ASSERT_EQ(0, vmm_bind(self->t.vf[1], TB_DRIVER));
	ASSERT_EQ(0, nvme_vf_trap(self->t.vf[0], err, sizeof(err)))
		TH_LOG("%s", err);
	ASSERT_EQ(0, nvme_vf_trap(self->t.vf[1], err, sizeof(err)))
		TH_LOG("%s", err);
	ASSERT_EQ(0, vmm_open(&self->a, self->t.vf[0]));
	self->a_open = true;
	ASSERT_EQ(0, vmm_open(&self->b, self->t.vf[1]));
	self->b_open = true;
	ASSERT_EQ(0, vmm_ram_alloc(&self->ram, RAM_SIZE, RAM_IOVA));
	ASSERT_EQ(0, vmm_dma_map(&self->a, &self->ram));
	ASSERT_EQ(0, vmm_dma_map(&self->b, &self->ram));
	ASSERT_EQ(0, vmm_enable_bus_master(&self->b));
	ASSERT_EQ(0, mig_features(&self->a, &flags));
	ASSERT_TRUE(flags & VFIO_MIGRATION_STOP_COPY);

	ASSERT_EQ(0, nvme_ctrl_init(c, &self->a, &self->ram, NSID, false))
		TH_LOG("%s", c->why);
	self->c_up = true;
	ASSERT_EQ(0, nvme_create_io_queues(c, 2, QDEPTH, false))
		TH_LOG("%s", c->why);
	ASSERT_EQ(0, nvme_wl_init(&self->w, c, 24576, 512, WL_DEPTH, 0x4057));
	self->w_up = true;
	ASSERT_EQ(0, nvme_wl_fill(&self->w, TMO)) TH_LOG("%s", self->w.why);
	ASSERT_EQ(0, nvme_wl_run(&self->w, 200, WL_TMO))
		TH_LOG("%s", self->w.why);
	ASSERT_LE(0, nvme_wl_step(&self->w)) TH_LOG("%s", self->w.why);
	/* commands in flight at the hold, more queued while it holds */
	ASSERT_EQ(0, mig_set_state(&self->a, VFIO_DEVICE_STATE_RUNNING_P2P,
				   NULL));
	ASSERT_LE(0, nvme_wl_step(&self->w)) TH_LOG("%s", self->w.why);
	ASSERT_EQ(0, mig_set_state(&self->a, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, mig_set_state(&self->a, VFIO_DEVICE_STATE_STOP_COPY,
				   &fd));
	ret = mig_read_stop_copy(fd, &self->s);
	close(fd);
	ASSERT_LT(0, ret);
	self->ram_copy = malloc(RAM_SIZE);
	ASSERT_NE(NULL, self->ram_copy);
	memcpy(self->ram_copy, self->ram.host, RAM_SIZE);
	why = parse(self);
	ASSERT_EQ(NULL, why) TH_LOG("VF 1's stream: %s", why);
	ASSERT_LE(0, self->prof) TH_LOG("no PROFILE_STATE record");

	self->seed = env ? strtoull(env, NULL, 0) : vmm_now_us() ^ getpid();
	self->rng = self->seed | 1;
	TH_LOG("seed %#llx (MIG_SEED=%#llx repeats this run); stream %zu bytes, %d records, %lu commands in flight",
	       (unsigned long long)self->seed,
	       (unsigned long long)self->seed, self->s.len, self->nr,
	       nvme_wl_inflight(&self->w));
}

FIXTURE_TEARDOWN(hostile)
{
	if (self->fd_b >= 0)
		close(self->fd_b);
	if (self->w_up)
		nvme_wl_free(&self->w);
	if (self->c_up)
		nvme_ctrl_fini(&self->c);
	free(self->ram_copy);
	mig_buf_free(&self->s);
	if (self->b_open) {
		vmm_dma_unmap(&self->b, &self->ram);
		vmm_close(&self->b);
	}
	if (self->a_open) {
		vmm_ram_release(&self->a, &self->ram);
		vmm_close(&self->a);
	}
}

enum verdict { AT_WRITE, AT_STOP, ACCEPTED, BROKEN };

/* One stream into VF 2, in random chunk sizes; on ACCEPTED it is in STOP. */
static enum verdict resume(FIXTURE_DATA(hostile) *self, const uint8_t *p,
			   size_t len, int *err)
{
	static const size_t max[] = { 16, 512, 4096, 1 << 20 };
	enum verdict v = ACCEPTED;
	int ret;

	ret = mig_set_state(&self->b, VFIO_DEVICE_STATE_RESUMING, &self->fd_b);
	if (ret) {
		*err = -ret;
		return BROKEN;
	}
	while (len) {
		size_t chunk = 1 + rnd(self) % max[rnd(self) % 4];

		if (chunk > len)
			chunk = len;
		ret = mig_write_stream(self->fd_b, p, chunk, chunk);
		if (ret)
			break;
		p += chunk;
		len -= chunk;
	}
	if (ret) {
		v = AT_WRITE;
	} else {
		ret = mig_set_state(&self->b, VFIO_DEVICE_STATE_STOP, NULL);
		if (ret)
			v = AT_STOP;
	}
	*err = -ret;
	close(self->fd_b);
	self->fd_b = -1;
	return v;
}

/* A migration controller that moves VF 2 and goes away rolls it back. */
static int rollback(FIXTURE_DATA(hostile) *self)
{
	uint32_t st;
	int ret = mig_ctl_rollback(self->b.bdf);

	if (!ret)
		ret = mig_get_state(&self->b, &st);
	if (!ret && st != VFIO_DEVICE_STATE_RUNNING)
		ret = -EPROTO;
	return ret;
}

/* ---- mutations ---- */

enum kind { TRUNCATE, BIT_FLIP, RECORD_LENGTH, STREAM_HEADER, PROFILE_HEADER,
	    NVME_BODY, NR_KINDS };

static const char *const kind_names[NR_KINDS] = {
	"truncation", "bit flips", "record length", "stream header field",
	"profile record header", "nvme record field",
};

/*
 * Stream header fields a target takes whatever their value: the minor
 * version (additive by definition), the source's trap mode (the target
 * runs its own), the PCI revision (the nvme profile's tolerated
 * difference, VMIG_ID_REVISION); and the features when only known flags
 * are left (@m's header): PRECOPY says REG_LOG records may precede the
 * state, which a stream without any is too. A mutation there is accepted
 * and the record behind it restored as usual.
 */
static bool tolerated_header_byte(const uint8_t *m, size_t off)
{
	size_t feat = offsetof(struct vmig_stream_hdr, features);

	if (off >= feat && off < feat + 4)
		return !(mig_get32(m + feat) & ~VMIG_STREAM_F_ALL);
	return (off >= offsetof(struct vmig_stream_hdr, minor) &&
		off < offsetof(struct vmig_stream_hdr, hdr_len)) ||
	       off == offsetof(struct vmig_stream_hdr, revision) ||
	       off == offsetof(struct vmig_stream_hdr, trap_mode);
}

/* Record @i's payload CRC, recomputed in @m. */
static void fix_rec_crc(FIXTURE_DATA(hostile) *self, uint8_t *m, int i)
{
	size_t at = self->off[i];

	mig_put32(m + at + 8, mig_crc32(m + at + REC_HDR, mig_get32(m + at + 4)));
}

/*
 * Mutate the stream into @m; returns its length. *@body_off gets the
 * offset in struct nvmp_state changed (NVME_BODY), *@hdr_off the stream
 * header byte (STREAM_HEADER), else -1.
 */
static size_t mutate(FIXTURE_DATA(hostile) *self, enum kind k, uint8_t *m,
		     long *body_off, long *hdr_off)
{
	size_t len = self->s.len, pos, at = self->off[self->prof];
	uint32_t plen = mig_get32(self->s.data + at + 4), v, old;
	uint8_t *blob = m + at + REC_HDR + PROF_HDR;
	uint32_t blen = plen - PROF_HDR;
	int i, n;

	*body_off = -1;
	*hdr_off = -1;
	memcpy(m, self->s.data, len);
	switch (k) {
	case TRUNCATE:
		return rnd(self) % len;
	case BIT_FLIP:
		n = 1 + rnd(self) % 3;
		for (i = 0; i < n; i++) {
			size_t bit = rnd(self) % (len * 8);

			m[bit / 8] ^= 1 << (bit % 8);
		}
		if (!memcmp(m, self->s.data, len))
			m[len - 1] ^= 0x80;
		return len;
	case RECORD_LENGTH:
		pos = self->off[rnd(self) % self->nr];
		old = mig_get32(m + pos + 4);
		do {
			switch (rnd(self) % 3) {
			case 0:
				v = old + 1 + rnd(self) % 64;
				break;
			case 1:
				v = old - 1 - rnd(self) % 64;
				break;
			default:
				v = rnd(self);
			}
		} while (v == old);
		mig_put32(m + pos + 4, v);
		return len;
	case STREAM_HEADER:
		/* any byte but the CRC, which is then fixed */
		pos = rnd(self) % (self->hdr_len - 4);
		m[pos] ^= 1 + rnd(self) % 255;
		mig_put32(m + self->hdr_len - 4, mig_crc32(m, self->hdr_len - 4));
		*hdr_off = pos;
		return len;
	case PROFILE_HEADER:
		pos = at + REC_HDR + rnd(self) % PROF_HDR;
		m[pos] ^= 1 + rnd(self) % 255;
		fix_rec_crc(self, m, self->prof);
		return len;
	case NVME_BODY:
	default:
		/* a byte, a 16-bit or a 32-bit field; CRC fixed */
		switch (rnd(self) % 3) {
		case 0:
			pos = rnd(self) % blen;
			blob[pos] ^= 1 + rnd(self) % 255;
			break;
		case 1:
			pos = (rnd(self) % blen) & ~1ul;
			old = blob[pos] | blob[pos + 1] << 8;
			do {
				static const uint16_t odd[] = { 0, 1, 2, 15, 16,
								0x7fff, 0xffff };

				v = rnd(self) % 2 ? odd[rnd(self) % 7] :
						    (uint16_t)rnd(self);
			} while (v == old);
			blob[pos] = v;
			blob[pos + 1] = v >> 8;
			break;
		default:
			pos = (rnd(self) % blen) & ~3ul;
			old = mig_get32(blob + pos);
			do {
				v = rnd(self) % 2 ? old + 1 + rnd(self) % 8 :
						    (uint32_t)rnd(self);
			} while (v == old);
			mig_put32(blob + pos, v);
			break;
		}
		*body_off = pos;
		fix_rec_crc(self, m, self->prof);
		return len;
	}
}

static unsigned long iterations(void)
{
	const char *env = getenv("MIG_STREAM_ITERS");

	return env ? strtoul(env, NULL, 0) : STREAM_ITERS;
}

/*
 * An accepted record: VF 2 stopped in the state it describes. The
 * controller is ready exactly when the record's CC.EN says so, not failed;
 * and its stop-copy stream carries the same record (the model holds what
 * was restored, every field of it).
 */
static void check_accepted(struct __test_metadata *_metadata,
			   FIXTURE_DATA(hostile) *self, const uint8_t *m)
{
	size_t at = self->off[self->prof];
	const uint8_t *blob = m + at + REC_HDR + PROF_HDR;
	uint32_t blen = mig_get32(m + at + 4) - PROF_HDR;
	uint32_t csts = vmm_read32(&self->b, 0, NVME_REG_CSTS);
	struct mig_buf s = {};
	long at2;
	int fd, ret;

	EXPECT_EQ(mig_get32(blob + 4) & NVME_CC_EN, csts & NVME_CSTS_RDY)
		TH_LOG("CSTS %#x", csts);
	EXPECT_EQ(0, csts & NVME_CSTS_CFS);
	ret = mig_set_state(&self->b, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	ASSERT_EQ(0, ret) TH_LOG("VF 2 does not save the record it took: %s",
				 strerror(-ret));
	ret = mig_read_stop_copy(fd, &s);
	close(fd);
	ASSERT_LT(0, ret);
	/* VF 2's own stream: its PROFILE_STATE record, wherever it sits */
	at2 = find_profile_record(s.data, s.len);
	ASSERT_LT(0, at2) TH_LOG("VF 2's stream has no PROFILE_STATE record");
	ASSERT_EQ(blen + PROF_HDR, mig_get32((uint8_t *)s.data + at2 + 4));
	EXPECT_EQ(0, same_record(blob, (uint8_t *)s.data + at2 + REC_HDR +
				 PROF_HDR, blen))
		TH_LOG("VF 2 saves another record than it took: %s",
		       first_diff(blob, (uint8_t *)s.data + at2 + REC_HDR +
				  PROF_HDR, blen));
	mig_buf_free(&s);
	ASSERT_EQ(0, mig_set_state(&self->b, VFIO_DEVICE_STATE_STOP, NULL));
}

TEST_F_TIMEOUT(hostile, mutated_streams_refused, 590)
{
	unsigned long iters = iterations(), i, tolerated = 0, bad = 0;
	unsigned long by_kind[NR_KINDS][BROKEN + 1] = {}, resets = 0;
	struct nvme_ctrl *c = &self->c;
	uint64_t t0 = vmm_now_us();
	bool ram_touched = false;
	long body_off, hdr_off;
	int err, ret;
	uint8_t *m;

	m = malloc(self->s.len + 64);
	ASSERT_NE(NULL, m);
	for (i = 0; i < iters; i++) {
		enum kind k = rnd(self) % NR_KINDS;
		size_t len = mutate(self, k, m, &body_off, &hdr_off);
		enum verdict v;

		/*
		 * A record that reaches the restore drives VF 2 through the
		 * queues it names, in guest RAM; a refused one may leave its
		 * entries there (the target VM of a failed migration is
		 * dropped). Give each record the source's RAM.
		 */
		if (ram_touched && (k == NVME_BODY || k == STREAM_HEADER ||
				    k == PROFILE_HEADER)) {
			memcpy(self->ram.host, self->ram_copy, RAM_SIZE);
			ram_touched = false;
		}
		v = resume(self, m, len, &err);
		by_kind[k][v]++;
		ASSERT_NE(BROKEN, v) TH_LOG("iteration %lu: RESUMING refused: %s",
					    i, strerror(err));
		if (v == AT_STOP || v == ACCEPTED)
			ram_touched = true;
		if (v == ACCEPTED) {
			/*
			 * Tolerated: a header field the target takes as is
			 * (tolerated_header_byte()), or a record field a
			 * guest could have set that way itself: a queue
			 * position, base, vector or priority within the
			 * bounds nvmp_state_check() enforces, a feature's
			 * value, INTMS, an AER's command id. The record is
			 * then a state the source could have had, and VF 2
			 * must hold exactly it.
			 */
			if (k == NVME_BODY ||
			    (k == STREAM_HEADER && tolerated_header_byte(m, hdr_off))) {
				tolerated++;
				TH_LOG("iteration %lu: %s, record byte %ld, header byte %ld: accepted",
				       i, kind_names[k], body_off, hdr_off);
				check_accepted(_metadata, self, m);
			} else {
				bad++;
				TH_LOG("iteration %lu: %s mutation accepted (header byte %ld)",
				       i, kind_names[k], hdr_off);
			}
			/*
			 * VF 2 holds that state, held tails included: reset it
			 * rather than let it run them.
			 */
			resets++;
			ret = vmm_reset(&self->b);
			ASSERT_EQ(0, ret) TH_LOG("iteration %lu: reset: %s", i,
						 strerror(-ret));
			continue;
		}
		ret = rollback(self);
		ASSERT_EQ(0, ret) TH_LOG("iteration %lu (%s): rollback: %s", i,
					 kind_names[k], strerror(-ret));
	}
	free(m);
	TH_LOG("%lu mutated streams in %.1f s: %lu accepted as tolerated, %lu accepted wrongly; %lu resets",
	       iters, (vmm_now_us() - t0) / 1e6, tolerated, bad, resets);
	for (i = 0; i < NR_KINDS; i++)
		TH_LOG("  %-22s refused at write %5lu, at STOP %5lu, accepted %lu",
		       kind_names[i], by_kind[i][AT_WRITE], by_kind[i][AT_STOP],
		       by_kind[i][ACCEPTED]);
	EXPECT_EQ(0, bad);

	/* the real stream still resumes VF 2, and the workload goes on */
	memcpy(self->ram.host, self->ram_copy, RAM_SIZE);
	ASSERT_EQ(ACCEPTED, resume(self, self->s.data, self->s.len, &err))
		TH_LOG("the unmutated stream refused at the end: %s",
		       strerror(err));
	ASSERT_EQ(0, mig_set_state(&self->b, VFIO_DEVICE_STATE_RUNNING_P2P,
				   NULL));
	ASSERT_EQ(0, mig_set_state(&self->b, VFIO_DEVICE_STATE_RUNNING, NULL));
	c->dev = &self->b;
	ASSERT_EQ(0, nvme_wl_drain(&self->w, TMO)) TH_LOG("%s", self->w.why);
	ASSERT_EQ(0, nvme_wl_run(&self->w, 300, WL_TMO))
		TH_LOG("%s", self->w.why);
	self->w.blocks_checked = 0;
	EXPECT_EQ(0, nvme_wl_verify_all(&self->w, TMO))
		TH_LOG("%s", self->w.why);
	EXPECT_EQ(self->w.nr, self->w.blocks_checked);
	EXPECT_EQ(0, self->w.errors) TH_LOG("%s", self->w.why);
	EXPECT_EQ(self->taint0 & TAINT_BAD, tainted() & TAINT_BAD)
		TH_LOG("kernel tainted %#lx (was %#lx)", tainted(),
		       self->taint0);
}

TEST_HARNESS_MAIN
