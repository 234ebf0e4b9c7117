// SPDX-License-Identifier: GPL-2.0
/*
 * The migration stream as hostile input. A real stream is taken from edu
 * A (STOP_COPY) and checked against the documented format; unchanged it
 * must resume edu B. Then MIG_STREAM_ITERS (default 10000) mutations of
 * it (truncations, bit flips, wrong record lengths, wrong magic, wrong
 * major version, unknown feature bits, trailing bytes) are written to B in
 * RESUMING, in random chunk sizes: each must be refused, by write() or by
 * RESUMING -> STOP. A refused B is rolled back to RUNNING by a migration
 * controller (/dev/vfio-mig) that attaches and goes away uncommitted, and
 * must work at the end.
 *
 * The profile's own record (PROFILE_STATE) is checked by its header as it
 * arrives: truncated, oversized and foreign records are refused at
 * write() with the reason in the kernel log. So is a SHADOW record (the
 * source's state was its shadow's): another version, reserved bits, a
 * wrong length, out of place or repeated; a well-formed one makes B serve
 * A's state with its own shadow and hand its device the state.
 *
 * MIG_SEED=<n> repeats a run's mutations (the test prints its seed).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/vfio_mig_ctl.h>
#include <linux/vfio_mig_stream.h>

#include "kselftest_harness.h"
#include "edu.h"
#include "mig.h"
#include "regsync.h"
#include "shadow.h"
#include "testbed.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(1u << 20)
#define PEEK_IOVA	(RAM_IOVA + 0x80000)
#define HDR_MIN		sizeof(struct vmig_stream_hdr)
#define REC_HDR		sizeof(struct vmig_stream_rec)
#define MAX_RECS	64

/* Where the records of a well-formed stream start. */
struct layout {
	uint32_t hdr_len;
	int nr;
	size_t off[MAX_RECS];
};

/* Parse @s; returns NULL or what is wrong with it. */
static const char *parse(const uint8_t *s, size_t len, struct layout *l)
{
	size_t pos;

	if (len < HDR_MIN)
		return "shorter than a header";
	if (memcmp(s, VMIG_STREAM_MAGIC, 8))
		return "bad magic";
	if ((s[8] | s[9] << 8) != VMIG_STREAM_MAJOR)
		return "bad major version";
	l->hdr_len = mig_get32(s + 12);
	if (l->hdr_len < HDR_MIN || l->hdr_len > len)
		return "bad header length";
	if (mig_get32(s + 16) & ~VMIG_STREAM_F_ALL)
		return "unknown feature bits";
	if (mig_crc32(s, l->hdr_len - 4) != mig_get32(s + l->hdr_len - 4))
		return "bad header CRC";
	l->nr = 0;
	for (pos = l->hdr_len; pos + REC_HDR <= len && l->nr < MAX_RECS;) {
		uint32_t type = mig_get32(s + pos), rlen = mig_get32(s + pos + 4);

		if (rlen > len - pos - REC_HDR)
			return "record longer than the stream";
		if (mig_crc32(s + pos + REC_HDR, rlen) != mig_get32(s + pos + 8))
			return "bad record CRC";
		if (mig_get32(s + pos + 12))
			return "record reserved field not zero";
		l->off[l->nr++] = pos;
		pos += REC_HDR + rlen;
		if (type == VMIG_REC_END)
			return rlen ? "END with a payload" :
			       pos != len ? "bytes after END" : NULL;
		if (type < VMIG_REC_REG_LOG || type > VMIG_REC_HELD_WRITES)
			return "unknown record type";
	}
	return "no END record";
}

FIXTURE(stream) {
	struct tb_devs t;
	struct mig_side a, b;
	struct edu ea, eb;
	struct mig_dirty log;
	struct edu_wl wl;
	struct mig_buf s;
	struct layout l;
	uint64_t seed, rng;
	int fd_b;
};

static uint64_t rnd(FIXTURE_DATA(stream) *self)
{
	self->rng ^= self->rng >> 12;
	self->rng ^= self->rng << 25;
	self->rng ^= self->rng >> 27;
	return self->rng * 0x2545f4914f6cdd1dull;
}

FIXTURE_SETUP(stream)
{
	const char *env = getenv("MIG_SEED");
	uint64_t flags;
	int fd, i, ret;

	self->fd_b = -1;
	self->log.nl.fd = -1;
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(2, self->t.nr_edu);
	mig_dirty_kill(self->t.edu[0]);
	mig_dirty_kill(self->t.edu[1]);
	ASSERT_EQ(0, mig_side_open(&self->a, self->t.edu[0], "sparse",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, mig_side_open(&self->b, self->t.edu[1], "sparse",
				   RAM_IOVA, RAM_SIZE));
	ASSERT_EQ(0, edu_probe(&self->ea, &self->a.d, false));
	ASSERT_EQ(0, edu_probe(&self->eb, &self->b.d, false));
	ret = mig_features(&self->a.d, &flags);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION: %s",
				 strerror(-ret));
	self->seed = env ? strtoull(env, NULL, 0) : vmm_now_us() ^ getpid();
	self->rng = self->seed | 1;
	TH_LOG("seed %#llx (MIG_SEED=%#llx repeats this run)",
	       (unsigned long long)self->seed,
	       (unsigned long long)self->seed);

	/* A with some state, then its stream */
	edu_wl_init(&self->wl, &self->ea, &self->a.ram, self->seed);
	ASSERT_EQ(0, edu_wl_fill(&self->wl));
	for (i = 0; i < 6; i++)
		ASSERT_EQ(0, edu_wl_step(&self->wl));
	ASSERT_EQ(0, mig_dirty_start(&self->log, &self->a.d, RAM_IOVA,
				     RAM_SIZE, false))
		TH_LOG("%s", self->log.err);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_STOP_COPY,
				   &fd));
	ASSERT_LT(0, mig_read_stop_copy(fd, &self->s));
	close(fd);
	ASSERT_EQ(0, mig_set_state(&self->a.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	ASSERT_EQ(0, mig_dirty_stop(&self->log));
}

FIXTURE_TEARDOWN(stream)
{
	if (self->fd_b >= 0)
		close(self->fd_b);
	mig_dirty_stop(&self->log);
	mig_buf_free(&self->s);
	mig_side_close(&self->a);
	mig_side_close(&self->b);
	rs_set_trap_mode(self->t.edu[0], "none");
	rs_set_trap_mode(self->t.edu[1], "none");
}

/* Write @p to B in random chunk sizes; 0 or write()'s -errno. */
static int write_random_chunks(FIXTURE_DATA(stream) *self, const uint8_t *p,
			       size_t len)
{
	static const size_t max[] = { 16, 512, 4096, 1 << 20 };

	while (len) {
		size_t chunk = 1 + rnd(self) % max[rnd(self) % 4];
		int ret;

		if (chunk > len)
			chunk = len;
		ret = mig_write_stream(self->fd_b, p, chunk, chunk);
		if (ret)
			return ret;
		p += chunk;
		len -= chunk;
	}
	return 0;
}

enum verdict { AT_WRITE, AT_STOP, ACCEPTED, BROKEN };

/*
 * One stream into B: RUNNING -> RESUMING, the bytes, RESUMING -> STOP.
 * *@err gets the errno of the refusal. On ACCEPTED B is left in STOP.
 */
static enum verdict resume(FIXTURE_DATA(stream) *self, const uint8_t *p,
			   size_t len, int *err)
{
	enum verdict v = ACCEPTED;
	int ret;

	ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RESUMING,
			    &self->fd_b);
	if (ret) {
		*err = -ret;
		return BROKEN;
	}
	ret = write_random_chunks(self, p, len);
	if (ret) {
		v = AT_WRITE;
	} else {
		ret = mig_set_state(&self->b.d, VFIO_DEVICE_STATE_STOP, NULL);
		if (ret)
			v = AT_STOP;
	}
	*err = -ret;
	close(self->fd_b);
	self->fd_b = -1;
	return v;
}

/*
 * A refused stream leaves B in RESUMING, which the VFIO uAPI ends only by
 * a reset (edu has none) or by closing the device. A migration controller
 * that goes away uncommitted rolls it back instead: attach one to B
 * through /dev/vfio-mig and close it, and B is RUNNING again, the refused
 * stream dropped unapplied. 0 or -errno.
 */
static int rollback_by_controller(FIXTURE_DATA(stream) *self)
{
	return mig_ctl_rollback(self->b.d.bdf);
}

/*
 * Back to RUNNING after a refusal: through a controller's rollback, else
 * (B in ERROR) a new device fd with bus mastering (a VMM restores config
 * space before the device state). Each reopen enables the PCI device
 * again; the guests' timers have been seen to stall after about 10,000 of
 * those (Documentation/testbed.rst), so the rollback is the usual way.
 */
static int recover(FIXTURE_DATA(stream) *self, int *reopens)
{
	uint32_t st;
	int ret;

	ret = mig_get_state(&self->b.d, &st);
	if (!ret && st == VFIO_DEVICE_STATE_RESUMING) {
		ret = rollback_by_controller(self);
		if (!ret)
			ret = mig_get_state(&self->b.d, &st);
		if (!ret && st != VFIO_DEVICE_STATE_RUNNING)
			ret = -EPROTO;
		return ret;
	}
	if (!ret && st != VFIO_DEVICE_STATE_ERROR)
		return mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				     NULL);
	(*reopens)++;
	ret = vmm_reopen(&self->b.d);
	return ret ?: vmm_enable_bus_master(&self->b.d);
}

static void check_b_has_a_state(struct __test_metadata *_metadata,
				FIXTURE_DATA(stream) *self)
{
	static uint8_t buf[EDU_BUF_SIZE];
	struct edu_regs ra, rb;

	ASSERT_EQ(0, edu_probe(&self->eb, &self->b.d, false));
	edu_regs_read(&self->ea, &ra);
	edu_regs_read(&self->eb, &rb);
	EXPECT_EQ(ra.liveness, rb.liveness);
	EXPECT_EQ(ra.factorial, rb.factorial);
	EXPECT_EQ(ra.dma_src, rb.dma_src);
	EXPECT_EQ(ra.dma_dst, rb.dma_dst);
	EXPECT_EQ(ra.dma_count, rb.dma_count);
	ASSERT_EQ(0, rs_edu_read_buffer(&self->eb, PEEK_IOVA,
					mig_host(&self->b, PEEK_IOVA), buf));
	EXPECT_EQ(0, memcmp(buf, self->wl.buf, EDU_BUF_SIZE - 1))
		TH_LOG("B's buffer differs from A's");
	/* and a DMA round trip: RAM -> buffer -> RAM */
	edu_wl_init(&self->wl, &self->eb, &self->b.ram, self->seed);
	ASSERT_EQ(0, edu_wl_to_device(&self->wl, RAM_IOVA + 0x1000, 10, 1500));
	ASSERT_EQ(0, edu_wl_to_ram(&self->wl, PEEK_IOVA, 10, 1500));
	EXPECT_EQ(0, self->wl.errors) TH_LOG("%s", self->wl.why);
}

TEST_F(stream, source_stream_is_well_formed)
{
	const uint8_t *s = self->s.data;
	const char *why = parse(s, self->s.len, &self->l);
	int i;

	ASSERT_EQ(NULL, why) TH_LOG("A's stream (%zu bytes): %s", self->s.len,
				    why);
	TH_LOG("%zu bytes: header %u, features %#x, %d records",
	       self->s.len, self->l.hdr_len, mig_get32(s + 16), self->l.nr);
	for (i = 0; i < self->l.nr; i++)
		TH_LOG("  record type %#x, %u bytes", mig_get32(s + self->l.off[i]),
		       mig_get32(s + self->l.off[i] + 4));
	EXPECT_EQ(VMIG_REC_END, mig_get32(s + self->l.off[self->l.nr - 1]));
}

TEST_F_TIMEOUT(stream, unmutated_stream_accepted, 60)
{
	int err = 0;

	ASSERT_EQ(ACCEPTED, resume(self, self->s.data, self->s.len, &err))
		TH_LOG("refused: %s", strerror(err));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	check_b_has_a_state(_metadata, self);
}

/* ---- mutations ---- */

enum kind { TRUNCATE, BIT_FLIP, RECORD_LENGTH, MAGIC, MAJOR, FEATURES,
	    TRAILING, NR_KINDS };

static const char *const kind_names[NR_KINDS] = {
	"truncation", "bit flips", "record length", "magic", "major version",
	"unknown feature bits", "trailing bytes",
};

/* Which part of the stream byte @off is in, for messages. */
static void where(FIXTURE_DATA(stream) *self, size_t off, char *buf,
		  size_t len)
{
	static const char *const field[] = { "type", "len", "crc",
					     "reserved" };
	const uint8_t *s = self->s.data;
	int i;

	if (off < self->l.hdr_len) {
		snprintf(buf, len, "header byte %zu", off);
		return;
	}
	for (i = self->l.nr - 1; i > 0 && self->l.off[i] > off; i--)
		;
	off -= self->l.off[i];
	if (off < REC_HDR)
		snprintf(buf, len, "record %d (type %#x) %s byte %zu", i,
			 mig_get32(s + self->l.off[i]), field[off / 4], off % 4);
	else
		snprintf(buf, len, "record %d (type %#x) payload byte %zu", i,
			 mig_get32(s + self->l.off[i]), off - REC_HDR);
}

static void fix_hdr_crc(uint8_t *m, uint32_t hdr_len)
{
	mig_put32(m + hdr_len - 4, mig_crc32(m, hdr_len - 4));
}

/* Mutate self->s into @m; returns the new length; @what says how. */
static size_t mutate(FIXTURE_DATA(stream) *self, enum kind k, uint8_t *m,
		     char *what, size_t wlen)
{
	size_t len = self->s.len, pos;
	uint32_t v, old;
	int i, n;

	memcpy(m, self->s.data, len);
	switch (k) {
	case TRUNCATE:
		pos = rnd(self) % len;
		snprintf(what, wlen, "cut at %zu of %zu", pos, len);
		return pos;
	case BIT_FLIP:
		n = 1 + rnd(self) % 3;
		snprintf(what, wlen, "of %zu bytes:", len);
		for (i = 0; i < n; i++) {
			size_t bit = rnd(self) % (len * 8);
			char at[64];

			m[bit / 8] ^= 1 << (bit % 8);
			where(self, bit / 8, at, sizeof(at));
			snprintf(what + strlen(what), wlen - strlen(what),
				 " bit %zu of %s;", bit % 8, at);
		}
		/* two flips of one bit cancel: make sure something changed */
		if (!memcmp(m, self->s.data, len))
			m[len - 1] ^= 0x80;
		return len;
	case RECORD_LENGTH: {
		static const uint32_t odd[] = { 0, 1, 0xffffffff, 0x80000000,
						0x7fffffff };

		pos = self->l.off[rnd(self) % self->l.nr];
		old = mig_get32(m + pos + 4);
		do {
			switch (rnd(self) % 4) {
			case 0:
				v = old + 1 + rnd(self) % 64;
				break;
			case 1:
				v = old - 1 - rnd(self) % 64;
				break;
			case 2:
				v = odd[rnd(self) % 5];
				break;
			default:
				v = rnd(self);
			}
		} while (v == old);
		mig_put32(m + pos + 4, v);
		where(self, pos, what, wlen);
		snprintf(what + strlen(what), wlen - strlen(what),
			 ": length %u -> %u", old, v);
		return len;
	}
	case MAGIC:
		i = rnd(self) % 8;
		m[i] ^= 1 + rnd(self) % 255;
		if (rnd(self) % 2)
			fix_hdr_crc(m, self->l.hdr_len);
		snprintf(what, wlen, "magic byte %d", i);
		return len;
	case MAJOR:
		do {
			v = rnd(self) % 4 ? rnd(self) % 4 : rnd(self) & 0xffff;
		} while (v == VMIG_STREAM_MAJOR);
		m[8] = v;
		m[9] = v >> 8;
		fix_hdr_crc(m, self->l.hdr_len);
		snprintf(what, wlen, "major %u", v);
		return len;
	case FEATURES:
		do {
			v = 1u << (rnd(self) % 32);
		} while (v & VMIG_STREAM_F_ALL);
		mig_put32(m + 16, mig_get32(m + 16) | v);
		fix_hdr_crc(m, self->l.hdr_len);
		snprintf(what, wlen, "feature bit %#x", v);
		return len;
	case TRAILING:
	default:
		n = 1 + rnd(self) % 64;
		if (rnd(self) % 4 == 0) {
			/* a second, well-formed END record */
			memset(m + len, 0, REC_HDR);
			mig_put32(m + len, VMIG_REC_END);
			mig_put32(m + len + 8, mig_crc32(m, 0));
			n = REC_HDR;
		} else {
			for (i = 0; i < n; i++)
				m[len + i] = rnd(self);
		}
		snprintf(what, wlen, "%d bytes after END", n);
		return len + n;
	}
}

#ifndef STREAM_ITERS
#define STREAM_ITERS	10000
#endif

static unsigned long iterations(void)
{
	const char *env = getenv("MIG_STREAM_ITERS");

	return env ? strtoul(env, NULL, 0) : STREAM_ITERS;
}

TEST_F_TIMEOUT(stream, mutations_refused, 590)
{
	unsigned long iters = iterations(), i, accepted = 0;
	unsigned long by_kind[NR_KINDS][BROKEN + 1] = {}, by_errno[256] = {};
	int reopens = 0, err, ret;
	uint64_t t0 = vmm_now_us();
	char what[160];
	uint8_t *m;

	ASSERT_EQ(NULL, parse(self->s.data, self->s.len, &self->l));
	m = malloc(self->s.len + 64);
	ASSERT_NE(NULL, m);
	for (i = 0; i < iters; i++) {
		enum kind k = rnd(self) % NR_KINDS;
		size_t len = mutate(self, k, m, what, sizeof(what));
		enum verdict v = resume(self, m, len, &err);

		by_kind[k][v]++;
		ASSERT_NE(BROKEN, v) TH_LOG("iteration %lu: B refused RESUMING: %s",
					    i, strerror(err));
		if (v != ACCEPTED)
			by_errno[err > 0 && err < 256 ? err : 0]++;
		/* the first few of each kind */
		if (v == ACCEPTED && by_kind[k][ACCEPTED] <= 3)
			TH_LOG("iteration %lu: %s stream accepted (%s)", i,
			       kind_names[k], what);
		accepted += v == ACCEPTED;
		ret = recover(self, &reopens);
		ASSERT_EQ(0, ret) TH_LOG("iteration %lu: recovering B: %s", i,
					 strerror(-ret));
	}
	free(m);
	TH_LOG("%lu mutated streams in %.1f s, %d device fd reopens",
	       iters, (vmm_now_us() - t0) / 1e6, reopens);
	for (i = 0; i < NR_KINDS; i++)
		TH_LOG("  %-22s refused at write %5lu, at STOP %5lu, accepted %lu",
		       kind_names[i], by_kind[i][AT_WRITE], by_kind[i][AT_STOP],
		       by_kind[i][ACCEPTED]);
	for (i = 0; i < 256; i++)
		if (by_errno[i])
			TH_LOG("  refused with %s: %lu",
			       i ? strerror(i) : "a bad errno", by_errno[i]);
	EXPECT_EQ(0, accepted);

	/* B still takes the real stream and works */
	ASSERT_EQ(ACCEPTED, resume(self, self->s.data, self->s.len, &err))
		TH_LOG("the unmutated stream refused at the end: %s",
		       strerror(err));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	check_b_has_a_state(_metadata, self);
}

/* ---- targeted mutations, each case once ---- */

struct tally {
	unsigned long cases, accepted;
	int reopens;
};

/* One case: must be refused. */
static void expect_refused(struct __test_metadata *_metadata,
			   FIXTURE_DATA(stream) *self, struct tally *t,
			   const uint8_t *m, size_t len, const char *what)
{
	enum verdict v;
	int err, ret;

	v = resume(self, m, len, &err);
	ASSERT_NE(BROKEN, v) TH_LOG("B refused RESUMING: %s", strerror(err));
	t->cases++;
	if (v == ACCEPTED && t->accepted++ < 40)
		TH_LOG("accepted: %s", what);
	ret = recover(self, &t->reopens);
	ASSERT_EQ(0, ret) TH_LOG("recovering B: %s", strerror(-ret));
}

/* Record @i of the stream, header and payload. */
static const uint8_t *rec_at(FIXTURE_DATA(stream) *self, int i,
			     size_t *len)
{
	const uint8_t *p = self->s.data + self->l.off[i];

	*len = REC_HDR + mig_get32(p + 4);
	return p;
}

/* The stream with its records in the order @order (indexes, -1 ends). */
static size_t reorder(FIXTURE_DATA(stream) *self, const int *order,
		      uint8_t *m)
{
	size_t len = self->l.hdr_len, n;
	const uint8_t *r;

	memcpy(m, self->s.data, len);
	for (; *order >= 0; order++) {
		r = rec_at(self, *order, &n);
		memcpy(m + len, r, n);
		len += n;
	}
	return len;
}

TEST_F_TIMEOUT(stream, targeted_mutations_refused, 300)
{
	static const uint32_t odd_types[] = { 0, 6, 0x7ffffffe, 0x80000000 };
	size_t len = self->s.len, end, at, n, cuts[9];
	int nr, i, j, order[MAX_RECS * 2];
	struct tally t = {};
	char what[128], pos[64];
	uint8_t *m;

	ASSERT_EQ(NULL, parse(self->s.data, len, &self->l));
	nr = self->l.nr;
	end = self->l.off[nr - 1];
	m = malloc(2 * len + 64);
	ASSERT_NE(NULL, m);

	/* cut at every unit boundary, and inside the END record */
	cuts[0] = 0;
	cuts[1] = 8;
	cuts[2] = 16;
	cuts[3] = self->l.hdr_len - 4;
	cuts[4] = self->l.hdr_len;
	for (i = 5; i < 9; i++)
		cuts[i] = end + 4 * (i - 4) - (i == 8);
	for (i = 0; i < 9; i++) {
		snprintf(what, sizeof(what), "cut at %zu of %zu", cuts[i], len);
		expect_refused(_metadata, self, &t, self->s.data, cuts[i], what);
	}
	for (i = 0; i < nr; i++) {
		for (at = self->l.off[i];
		     at <= self->l.off[i] + REC_HDR && at < len; at += REC_HDR) {
			snprintf(what, sizeof(what), "cut at %zu of %zu", at, len);
			expect_refused(_metadata, self, &t, self->s.data, at,
				       what);
		}
	}

	/* every bit of every record header */
	for (i = 0; i < nr; i++) {
		for (at = self->l.off[i]; at < self->l.off[i] + REC_HDR; at++) {
			for (j = 0; j < 8; j++) {
				memcpy(m, self->s.data, len);
				m[at] ^= 1 << j;
				where(self, at, pos, sizeof(pos));
				snprintf(what, sizeof(what), "bit %d of %s", j,
					 pos);
				expect_refused(_metadata, self, &t, m, len,
					       what);
			}
		}
	}

	/* 1 to 17 bytes after END; a second END */
	for (n = 1; n <= REC_HDR + 1; n++) {
		memcpy(m, self->s.data, len);
		memset(m + len, 0, n);
		snprintf(what, sizeof(what), "%zu zero bytes after END", n);
		expect_refused(_metadata, self, &t, m, len + n, what);
	}
	memcpy(m, self->s.data, len);
	memcpy(m + len, self->s.data + end, REC_HDR);
	expect_refused(_metadata, self, &t, m, len + REC_HDR,
		       "a second END record");

	/* a well-formed record of an unknown type before END */
	for (i = 0; i < 4; i++) {
		memcpy(m, self->s.data, end);
		memset(m + end, 0, REC_HDR);
		mig_put32(m + end, odd_types[i]);
		memcpy(m + end + REC_HDR, self->s.data + end, REC_HDR);
		snprintf(what, sizeof(what), "a record of type %#x before END",
			 odd_types[i]);
		expect_refused(_metadata, self, &t, m, end + 2 * REC_HDR, what);
	}

	/* records out of order, repeated, missing (CRCs all valid) */
	for (i = 0; i + 1 < nr - 1; i++) {
		for (j = 0; j < nr; j++)
			order[j] = j;
		order[i] = i + 1;
		order[i + 1] = i;
		order[nr] = -1;
		snprintf(what, sizeof(what), "records %d and %d swapped", i,
			 i + 1);
		expect_refused(_metadata, self, &t, m, reorder(self, order, m),
			       what);
	}
	for (i = 0; i < nr - 1; i++) {
		uint32_t type = mig_get32(self->s.data + self->l.off[i]);

		for (j = 0; j <= nr; j++)
			order[j] = j < nr ? j : -1;
		/* the record again, just before END */
		order[nr - 1] = i;
		order[nr] = nr - 1;
		order[nr + 1] = -1;
		snprintf(what, sizeof(what), "record %d (type %#x) twice", i,
			 type);
		if (type != VMIG_REC_REG_LOG)
			expect_refused(_metadata, self, &t, m,
				       reorder(self, order, m), what);
		for (j = 0, n = 0; j < nr; j++)
			if (j != i)
				order[n++] = j;
		order[n] = -1;
		snprintf(what, sizeof(what), "record %d (type %#x) left out", i,
			 type);
		if (type == VMIG_REC_REG_STATE ||
		    type == VMIG_REC_PROFILE_STATE)
			expect_refused(_metadata, self, &t, m,
				       reorder(self, order, m), what);
	}
	free(m);
	TH_LOG("%lu targeted mutations, %lu accepted, %d device fd reopens",
	       t.cases, t.accepted, t.reopens);
	EXPECT_EQ(0, t.accepted);

	ASSERT_EQ(ACCEPTED, resume(self, self->s.data, self->s.len, &i))
		TH_LOG("the unmutated stream refused at the end: %s",
		       strerror(i));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	check_b_has_a_state(_metadata, self);
}

/* A REG_LOG record of one write (edu's liveness register) numbered @seq. */
static size_t log_record(uint8_t *m, uint64_t seq)
{
	struct vmig_stream_log l = { .first_seq = htole64(seq),
				     .count = htole32(1) };
	struct vmig_stream_log_entry e = { .value = htole64(0x1234),
					   .offset = htole32(0x4),
					   .width = 4 };

	memset(m, 0, REC_HDR);
	mig_put32(m, VMIG_REC_REG_LOG);
	mig_put32(m + 4, sizeof(l) + sizeof(e));
	memcpy(m + REC_HDR, &l, sizeof(l));
	memcpy(m + REC_HDR + sizeof(l), &e, sizeof(e));
	mig_put32(m + 8, mig_crc32(m + REC_HDR, sizeof(l) + sizeof(e)));
	return REC_HDR + sizeof(l) + sizeof(e);
}

/*
 * A's stream with two REG_LOG records after the header, numbered @first
 * and @second.
 */
static size_t with_logs(FIXTURE_DATA(stream) *self, uint8_t *m,
			uint64_t first, uint64_t second)
{
	size_t len = self->l.hdr_len;

	memcpy(m, self->s.data, len);
	len += log_record(m + len, first);
	len += log_record(m + len, second);
	memcpy(m + len, self->s.data + self->l.hdr_len,
	       self->s.len - self->l.hdr_len);
	return len + self->s.len - self->l.hdr_len;
}

/*
 * REG_LOG records must follow each other without a hole in their sequence
 * numbers: a hole would replay the writes on each side of it as adjacent.
 */
TEST_F_TIMEOUT(stream, write_log_hole_refused, 120)
{
	struct tally t = {};
	enum verdict v;
	uint8_t *m;
	size_t len;
	int err;

	ASSERT_EQ(NULL, parse(self->s.data, self->s.len, &self->l));
	m = malloc(self->s.len + 256);
	ASSERT_NE(NULL, m);
	/* contiguous: accepted (the tail does not follow: register file replay) */
	len = with_logs(self, m, 1000, 1001);
	v = resume(self, m, len, &err);
	EXPECT_EQ(ACCEPTED, v) TH_LOG("contiguous log records refused: %s",
				      strerror(err));
	ASSERT_EQ(0, recover(self, &t.reopens));
	/* a hole of 4, a step back, a repeat: refused at the write */
	len = with_logs(self, m, 1000, 1005);
	v = resume(self, m, len, &err);
	EXPECT_EQ(AT_WRITE, v);
	EXPECT_EQ(EINVAL, err);
	ASSERT_EQ(0, recover(self, &t.reopens));
	len = with_logs(self, m, 1000, 999);
	expect_refused(_metadata, self, &t, m, len, "log records step back");
	len = with_logs(self, m, 1000, 1000);
	expect_refused(_metadata, self, &t, m, len, "log record repeated");
	EXPECT_EQ(0, t.accepted);
	free(m);
}

/* ---- the profile's record ---- */

/* Index of A's PROFILE_STATE record, or -1. */
static int profile_rec(FIXTURE_DATA(stream) *self)
{
	int i;

	for (i = 0; i < self->l.nr; i++)
		if (mig_get32(self->s.data + self->l.off[i]) ==
		    VMIG_REC_PROFILE_STATE)
			return i;
	return -1;
}

/*
 * A's stream with record @idx's payload replaced by @len bytes of @p (CRC
 * recomputed, so that only the profile record's own checks can refuse it).
 */
static size_t with_payload(FIXTURE_DATA(stream) *self, uint8_t *m, int idx,
			   const uint8_t *p, uint32_t len)
{
	size_t at = self->l.off[idx], n, rest;
	const uint8_t *r = rec_at(self, idx, &n);

	memcpy(m, self->s.data, at);
	memcpy(m + at, r, REC_HDR);
	mig_put32(m + at + 4, len);
	mig_put32(m + at + 8, mig_crc32(p, len));
	memcpy(m + at + REC_HDR, p, len);
	rest = self->s.len - at - n;
	memcpy(m + at + REC_HDR + len, r + n, rest);
	return at + REC_HDR + len + rest;
}

/* Kernel log lines from now on: a /dev/kmsg fd at its end. */
static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* Did a kernel log line since kmsg_open() contain @what? */
static bool kmsg_has(int fd, const char *what)
{
	char rec[2048];
	ssize_t n;
	bool found = false;

	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)	/* overwritten: read on */
			continue;
		if (n <= 0)
			break;
		rec[n] = 0;
		if (strstr(rec, what))
			found = true;
	}
	return found;
}

/*
 * The PROFILE_STATE record is the source profile's opaque blob behind a
 * header naming the profile, its version and the blob's length. The
 * target checks that header as soon as the record arrives, before its
 * profile sees a byte: a truncated, oversized or foreign record is refused
 * at write() with the reason in the kernel log, and the source is
 * unaffected (still RUNNING, registers unchanged; its stream, unmutated,
 * still resumes B).
 */
/*
 * @m (@len bytes) must be refused as it is written, with errno @err and
 * @why in the kernel log (@kfd); B is recovered after.
 */
static void refused_at_write(struct __test_metadata *_metadata,
			     FIXTURE_DATA(stream) *self, struct tally *t,
			     int kfd, const uint8_t *m, size_t len,
			     const char *what, const char *why, int err)
{
	enum verdict v;
	int got;

	kmsg_has(kfd, "");	/* skip what came before */
	v = resume(self, m, len, &got);
	t->cases++;
	EXPECT_EQ(AT_WRITE, v) TH_LOG("%s: verdict %d", what, v);
	EXPECT_EQ(err, got) TH_LOG("%s: %s", what, strerror(got));
	EXPECT_TRUE(kmsg_has(kfd, why))
		TH_LOG("%s: no \"%s\" in the kernel log", what, why);
	ASSERT_EQ(0, recover(self, &t->reopens));
}

TEST_F_TIMEOUT(stream, profile_record_refused, 180)
{
	static const struct {
		const char *what, *why;
		int err;
	} cases[] = {
		{ "blob cut short", "profile state length does not match", EINVAL },
		{ "header cut short", "short profile state record", EINVAL },
		{ "blob longer than the profile's state",
		  "record too long for its type", EINVAL },
		{ "length field past the record",
		  "profile state length does not match", EINVAL },
		{ "another profile's record",
		  "profile state record of another profile", EINVAL },
		{ "another profile version's record",
		  "profile state record of another profile version",
		  EPROTONOSUPPORT },
		{ "reserved field set", "reserved profile state field set",
		  EINVAL },
	};
	struct vmig_stream_profile hdr;
	struct edu_regs before, after;
	uint32_t plen, blen, st, n;
	const uint8_t *payload;
	struct tally t = {};
	uint8_t *m, *p;
	unsigned int i;
	size_t len;
	int idx, err, kfd;

	ASSERT_EQ(NULL, parse(self->s.data, self->s.len, &self->l));
	idx = profile_rec(self);
	ASSERT_LE(0, idx) TH_LOG("A's stream has no PROFILE_STATE record");
	payload = rec_at(self, idx, &len) + REC_HDR;
	plen = len - REC_HDR;
	ASSERT_LE(sizeof(hdr), plen);
	memcpy(&hdr, payload, sizeof(hdr));
	blen = le32toh(hdr.len);
	/* the well-formed header: edu's name and version, the blob's length */
	EXPECT_STREQ("edu", hdr.name);
	EXPECT_EQ(plen - sizeof(hdr), blen);
	EXPECT_EQ(0, hdr.reserved[0] | hdr.reserved[1]);

	m = malloc(self->s.len + 2 * plen + 64);
	p = malloc(plen + 64);
	ASSERT_NE(NULL, m);
	ASSERT_NE(NULL, p);
	edu_regs_read(&self->ea, &before);
	/* a fresh kernel log rate-limit window for the reasons */
	sleep(6);
	kfd = kmsg_open();
	ASSERT_LE(0, kfd) TH_LOG("/dev/kmsg: %s", strerror(errno));

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmig_stream_profile *h = (void *)p;

		memcpy(p, payload, plen);
		n = plen;
		switch (i) {
		case 0:		/* the record ends a byte early */
			n = plen - 1;
			break;
		case 1:
			n = sizeof(hdr) - 8;
			break;
		case 2:		/* one byte more than edu's state, consistently */
			p[plen] = 0;
			n = plen + 1;
			h->len = htole32(blen + 1);
			break;
		case 3:
			h->len = htole32(blen + 1);
			break;
		case 4:
			memset(h->name, 0, sizeof(h->name));
			strcpy(h->name, "generic");
			break;
		case 5:
			h->version = htole32(le32toh(hdr.version) + 1);
			break;
		case 6:
			h->reserved[1] = htole32(1);
			break;
		}
		len = with_payload(self, m, idx, p, n);
		refused_at_write(_metadata, self, &t, kfd, m, len,
				 cases[i].what, cases[i].why, cases[i].err);
	}
	close(kfd);
	free(p);
	free(m);

	/* the source is untouched by the target's refusals */
	ASSERT_EQ(0, mig_get_state(&self->a.d, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, st);
	edu_regs_read(&self->ea, &after);
	EXPECT_EQ(0, memcmp(&before, &after, sizeof(before)));
	ASSERT_EQ(ACCEPTED, resume(self, self->s.data, self->s.len, &err))
		TH_LOG("the unmutated stream refused after them: %s",
		       strerror(err));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	check_b_has_a_state(_metadata, self);
}

/*
 * A source with a module before early device state writes edu's blob
 * version 2: {version, flags (BUF), scratch, buffer}, with version 2 in
 * the stream header and the record. B takes it (the profile's
 * min_version) and ends with A's state. The same blob under version 3 is
 * refused (a blob is read at its stream's version, not by its own first
 * word); version 1, never a blob's that B knows, is still refused.
 */
TEST_F_TIMEOUT(stream, older_profile_version_taken, 120)
{
	const size_t v3_len = 32 + EDU_BUF_SIZE, v2_len = 16 + EDU_BUF_SIZE;
	const size_t ver_off = offsetof(struct vmig_stream_hdr,
					profile_version);
	struct vmig_stream_profile *h;
	const uint8_t *payload, *b3;
	uint8_t *m, *p, *b2;
	uint32_t plen, st;
	int idx, err, ret, reopens = 0;
	size_t len;

	ASSERT_EQ(NULL, parse(self->s.data, self->s.len, &self->l));
	idx = profile_rec(self);
	ASSERT_LE(0, idx) TH_LOG("A's stream has no PROFILE_STATE record");
	payload = rec_at(self, idx, &len) + REC_HDR;
	plen = len - REC_HDR;
	ASSERT_EQ(sizeof(*h) + v3_len, plen) TH_LOG("not edu's version 3 blob");
	b3 = payload + sizeof(*h);
	ASSERT_EQ(3u, mig_get32(b3));
	ASSERT_TRUE(mig_get32(b3 + 4) & 1) TH_LOG("the blob has no buffer");
	p = calloc(1, plen);
	m = malloc(self->s.len + 64);
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, m);
	memcpy(p, payload, sizeof(*h));
	h = (void *)p;
	h->version = htole32(2);
	h->len = htole32(v2_len);
	b2 = p + sizeof(*h);
	mig_put32(b2, 2);
	mig_put32(b2 + 4, 1);			/* BUF */
	memcpy(b2 + 8, b3 + 8, 8);		/* scratch */
	memcpy(b2 + 16, b3 + 32, EDU_BUF_SIZE);
	len = with_payload(self, m, idx, p, sizeof(*h) + v2_len);
	mig_put32(m + ver_off, 2);
	fix_hdr_crc(m, self->l.hdr_len);
	ret = resume(self, m, len, &err);
	ASSERT_EQ(ACCEPTED, ret) TH_LOG("a version 2 stream: %s",
					strerror(err));
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	check_b_has_a_state(_metadata, self);

	/*
	 * The same version 2 blob in a version 3 stream: the blob is read
	 * as the stream's version says, so it is no blob B knows.
	 */
	h->version = htole32(3);
	len = with_payload(self, m, idx, p, sizeof(*h) + v2_len);
	ret = resume(self, m, len, &err);
	EXPECT_EQ(AT_STOP, ret) TH_LOG("a version 2 blob under version 3: %s",
				       strerror(err));
	ASSERT_EQ(0, recover(self, &reopens));

	/* version 1 in the header: refused before any state */
	memcpy(m, self->s.data, self->s.len);
	mig_put32(m + ver_off, 1);
	fix_hdr_crc(m, self->l.hdr_len);
	ret = resume(self, m, self->s.len, &err);
	EXPECT_EQ(AT_WRITE, ret);
	EXPECT_EQ(EPROTONOSUPPORT, err);
	ASSERT_EQ(0, rollback_by_controller(self));
	ASSERT_EQ(0, mig_get_state(&self->b.d, &st));
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, st);
	free(p);
	free(m);
}

/* A's stream with a SHADOW record of @n bytes of @sw at record @at. */
static size_t with_shadow(FIXTURE_DATA(stream) *self, uint8_t *m, int at,
			  const struct vmig_stream_shadow *sw, uint32_t n,
			  int copies)
{
	size_t off = self->l.off[at], len = off;
	uint8_t rec[REC_HDR] = {};

	memcpy(m, self->s.data, off);
	mig_put32(rec, VMIG_REC_SHADOW);
	mig_put32(rec + 4, n);
	mig_put32(rec + 8, mig_crc32(sw, n));
	while (copies--) {
		memcpy(m + len, rec, REC_HDR);
		memcpy(m + len + REC_HDR, sw, n);
		len += REC_HDR + n;
	}
	memcpy(m + len, self->s.data + off, self->s.len - off);
	return len + self->s.len - off;
}

TEST_F_TIMEOUT(stream, shadow_record_refused, 180)
{
	static const struct {
		const char *what, *why;
		int err;
	} cases[] = {
		{ "short record", "bad shadow record length", EINVAL },
		{ "another version", "shadow record of another version",
		  EPROTONOSUPPORT },
		{ "a flag set", "reserved shadow record field set", EINVAL },
		{ "reserved field set", "reserved shadow record field set",
		  EINVAL },
		{ "before the register state", "record before the register state",
		  EINVAL },
		{ "twice", "record repeated", EINVAL },
	};
	struct vmig_stream_shadow sw;
	int state = -1, end, i, err, kfd;
	struct lm_shadow sh;
	struct tally t = {};
	struct genl nl;
	size_t len;
	uint32_t n;
	uint8_t *m;

	ASSERT_EQ(NULL, parse(self->s.data, self->s.len, &self->l));
	end = self->l.nr - 1;
	for (i = 0; i < self->l.nr; i++)
		if (mig_get32(self->s.data + self->l.off[i]) ==
		    VMIG_REC_REG_STATE)
			state = i;
	ASSERT_LE(0, state);
	m = malloc(self->s.len + 4 * (REC_HDR + sizeof(sw)));
	ASSERT_NE(NULL, m);
	sleep(6);	/* a fresh kernel log rate-limit window */
	kfd = kmsg_open();
	ASSERT_LE(0, kfd) TH_LOG("/dev/kmsg: %s", strerror(errno));
	for (i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
		memset(&sw, 0, sizeof(sw));
		sw.version = htole32(VMIG_STREAM_SHADOW_VERSION);
		n = sizeof(sw);
		if (i == 0)
			n = 8;
		else if (i == 1)
			sw.version = htole32(VMIG_STREAM_SHADOW_VERSION + 1);
		else if (i == 2)
			sw.flags = htole32(1);
		else if (i == 3)
			sw.reserved[1] = htole32(1);
		len = with_shadow(self, m, i == 4 ? state : end, &sw, n,
				  i == 5 ? 2 : 1);
		refused_at_write(_metadata, self, &t, kfd, m, len,
				 cases[i].what, cases[i].why, cases[i].err);
	}
	close(kfd);

	/*
	 * The register state naming another profile than the header and
	 * the device ("edu" made "xdu", its record's CRC made anew): B's
	 * shadow does not take it, the load refuses it.
	 */
	memset(&sw, 0, sizeof(sw));
	sw.version = htole32(VMIG_STREAM_SHADOW_VERSION);
	len = with_shadow(self, m, end, &sw, sizeof(sw), 1);
	{
		uint8_t *rec = m + self->l.off[state], *pl = rec + REC_HDR;
		uint32_t plen = mig_get32(rec + 4), k;

		for (k = 0; k + 3 <= plen && memcmp(pl + k, "edu", 3); k++)
			;
		ASSERT_GT(plen, k + 2) TH_LOG("no profile name in REG_STATE");
		pl[k] = 'x';
		mig_put32(rec + 8, mig_crc32(pl, plen));
	}
	ASSERT_EQ(AT_STOP, resume(self, m, len, &err))
		TH_LOG("a register state of another profile: %s",
		       strerror(err));
	ASSERT_EQ(0, genl_open(&nl, "vfio_mig"));
	ASSERT_EQ(0, lm_shadow_get(&nl, self->b.d.bdf, &sh));
	EXPECT_FALSE(sh.engaged) TH_LOG("B's shadow took another profile's state");
	genl_close(&nl);
	ASSERT_EQ(0, recover(self, &i));

	/* well-formed: B's shadow serves A's state, then B's device has it */
	memset(&sw, 0, sizeof(sw));
	sw.version = htole32(VMIG_STREAM_SHADOW_VERSION);
	len = with_shadow(self, m, end, &sw, sizeof(sw), 1);
	ASSERT_EQ(ACCEPTED, resume(self, m, len, &err))
		TH_LOG("a well-formed shadow record refused: %s",
		       strerror(err));
	free(m);
	ASSERT_EQ(0, genl_open(&nl, "vfio_mig"));
	ASSERT_EQ(0, lm_shadow_get(&nl, self->b.d.bdf, &sh));
	EXPECT_TRUE(sh.engaged) TH_LOG("B's shadow did not take the state");
	ASSERT_EQ(0, mig_set_state(&self->b.d, VFIO_DEVICE_STATE_RUNNING,
				   NULL));
	EXPECT_EQ(0, lm_shadow_wait_released(&nl, self->b.d.bdf, &sh, 10000))
		TH_LOG("B's shadow still serves after 10 s");
	genl_close(&nl);
	check_b_has_a_state(_metadata, self);
}

TEST_HARNESS_MAIN
