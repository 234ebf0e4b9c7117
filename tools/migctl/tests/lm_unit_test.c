// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of migctl's live migration: the hash, the frame parser
 * against hostile input, the compatibility check, the convergence
 * estimator, and whole migrations source <-> target over a socketpair
 * with the kernel replaced by a fake (struct lm_dev): success on a
 * "6.12" (pre-copy) and a "6.1" device, refusal, a target that fails to
 * load, no convergence (abort and forced), a peer that goes away, a
 * signal, the link dying after COMMIT, and --via-shadow (the engage
 * before the pause, its refusal, the hand-back after a rollback).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "../hash.h"
#include "../lm.h"
#include "../migctl.h"
#include "../wire.h"
#include "lm_fake.h"

#include <linux/vfio_mig.h>

/* ---- the hash ---- */

TEST(hash_known_properties)
{
	static uint8_t a[8192], b[8192];
	uint64_t h, seen[64];
	int i, j;

	for (i = 0; i < (int)sizeof(a); i++)
		a[i] = i * 7 + 3;
	memcpy(b, a, sizeof(a));
	/* deterministic, length and seed matter */
	EXPECT_EQ(mh_hash64(a, 4096, 1), mh_hash64(b, 4096, 1));
	EXPECT_NE(mh_hash64(a, 4096, 1), mh_hash64(a, 4096, 2));
	EXPECT_NE(mh_hash64(a, 4095, 1), mh_hash64(a, 4096, 1));
	EXPECT_NE(mh_hash64(a, 0, 1), mh_hash64(a, 1, 1));
	/* every single-bit flip in a page changes the hash */
	h = mh_hash64(a, 4096, MH_SEED_PAGE);
	for (i = 0; i < 4096 * 8; i += 97) {
		b[i / 8] ^= 1 << (i % 8);
		EXPECT_NE(h, mh_hash64(b, 4096, MH_SEED_PAGE));
		b[i / 8] ^= 1 << (i % 8);
	}
	/* tails of every length and unaligned starts are hashed */
	for (i = 0; i < 64; i++) {
		seen[i] = mh_hash64(a + 1, i, 0);
		for (j = 0; j < i; j++)
			EXPECT_NE(seen[i], seen[j]);
	}
	/* swapped words differ (lanes are not simply xor-ed) */
	memcpy(b, a, 64);
	memcpy(b, a + 32, 32);
	memcpy(b + 32, a, 32);
	EXPECT_NE(mh_hash64(a, 64, 0), mh_hash64(b, 64, 0));
}

TEST(hash_distribution)
{
	/* 4096 pages differing in one counter: no collision, bits balanced */
	static uint64_t hs[4096];
	uint8_t page[4096] = { 0 };
	unsigned int i, j, ones = 0;

	for (i = 0; i < 4096; i++) {
		memcpy(page + 100, &i, sizeof(i));
		hs[i] = mh_hash64(page, sizeof(page), MH_SEED_PAGE);
		for (j = 0; j < i; j++)
			ASSERT_NE(hs[i], hs[j]);
		ones += __builtin_popcountll(hs[i]);
	}
	/* 4096 * 64 bits: half set, within 1% */
	EXPECT_LT(ones > 131072 ? ones - 131072 : 131072 - ones, 2622u);
}

/*
 * The kernel's streaming form (include/vfio-mig/mh_hash.h), fed in random
 * pieces as a pipe hands them over, equals the one-shot hash for every
 * length, pages included.
 */
TEST(hash_stream_equals_one_shot)
{
	static uint8_t buf[8192];
	unsigned int i, len, off, n, trial;
	struct vmig_mh_stream st;

	srandom(7);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = random();
	for (trial = 0; trial < 2000; trial++) {
		len = trial < 100 ? trial : trial % 3 ? 4096 :
		      random() % sizeof(buf);
		vmig_mh_stream_init(&st, MH_SEED_PAGE);
		for (off = 0; off < len; off += n) {
			n = random() % (trial % 5 ? 700 : 40) + 1;
			if (n > len - off)
				n = len - off;
			vmig_mh_stream_update(&st, buf + off, n);
		}
		ASSERT_EQ(mh_hash64(buf, len, MH_SEED_PAGE),
			  vmig_mh_stream_final(&st))
			TH_LOG("length %u, trial %u", len, trial);
	}
}

/* ---- frames ---- */

/* A connected TCP pair over loopback (TCP's splice waits as its file says). */
static int tcp_pair(int sv[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ret = -1;

	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l >= 0 && sv[0] >= 0 && !bind(l, (struct sockaddr *)&a, len) &&
	    !listen(l, 1) && !getsockname(l, (struct sockaddr *)&a, &len) &&
	    !connect(sv[0], (struct sockaddr *)&a, len)) {
		sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		ret = sv[1] < 0 ? -1 : 0;
	}
	if (l >= 0)
		close(l);
	return ret;
}

/*
 * A PAGES frame's data spliced from the socket into a sink, as the target
 * lands pages: whole, then from a peer that stalls in the middle of the
 * data, which must end at the frame's deadline, not hang (TCP's splice
 * blocks unless the socket itself is non-blocking).
 */
TEST(pages_spliced_in_and_a_stall_mid_frame_times_out)
{
	static uint8_t frame_buf[WIRE_HDR_LEN + 3 * WIRE_PAGE], got[2 * WIRE_PAGE];
	uint8_t *meta = frame_buf + WIRE_HDR_LEN, *data = meta + WIRE_PAGE;
	uint64_t desc[3] = { 0x100000 | WIRE_PG_DATA, 0x200000 | WIRE_PG_ZERO,
			     0x300000 | WIRE_PG_DATA };
	struct wire_conn a, b;
	struct wire_msg m;
	long long t0;
	char err[256];
	int sv[2], pfd[2], sink;
	unsigned int i;

	ASSERT_EQ(0, tcp_pair(sv));
	ASSERT_EQ(0, wire_conn_init(&a, sv[0], 2000, NULL));
	ASSERT_EQ(0, wire_conn_init(&b, sv[1], 300, NULL));
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	sink = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	ASSERT_LE(0, sink);
	wire_pages_meta(meta, 1, desc, 3);
	for (i = 0; i < 2 * WIRE_PAGE; i++)
		data[i] = i * 7 + 3;
	for (i = 0; i < 2; i++) {
		wire_hdr_encode(frame_buf, WIRE_PAGES, 3 * WIRE_PAGE, i,
				wire_sum(meta, 3 * WIRE_PAGE));
		/* all of it, then all but the last 100 bytes */
		ASSERT_EQ((ssize_t)(sizeof(frame_buf) - (i ? 100 : 0)),
			  write(sv[0], frame_buf, sizeof(frame_buf) - (i ? 100 : 0)));
		ASSERT_EQ(0, wire_recv_head(&b, &m, 0)) TH_LOG("%s", b.err);
		EXPECT_EQ(WIRE_PAGES, m.h.type);
		EXPECT_EQ(2 * WIRE_PAGE, m.rest);
		EXPECT_EQ(0, memcmp(m.p, meta, WIRE_PAGE));
		t0 = wire_now_ms();
		if (!i) {
			ASSERT_EQ(0, wire_splice_rest(&b, &m, pfd, sink, err,
						      sizeof(err)))
				TH_LOG("%s / %s", b.err, err);
			EXPECT_EQ(0, m.rest);
			ASSERT_EQ((ssize_t)sizeof(got),
				  pread(sink, got, sizeof(got), 0));
			EXPECT_EQ(0, memcmp(got, data, sizeof(got)));
			ASSERT_EQ(0, ftruncate(sink, 0));
			lseek(sink, 0, SEEK_SET);
			continue;
		}
		EXPECT_EQ(-ETIMEDOUT, wire_splice_rest(&b, &m, pfd, sink, err,
						       sizeof(err)))
			TH_LOG("%s / %s", b.err, err);
		EXPECT_GT(wire_now_ms() - t0, 250);
		EXPECT_LT(wire_now_ms() - t0, 1500);
		EXPECT_EQ(100, m.rest);
	}
	close(sink);
	close(pfd[0]);
	close(pfd[1]);
	wire_conn_free(&a);
	wire_conn_free(&b);
}

static size_t frame(uint8_t *out, uint16_t type, const void *p, uint32_t len,
		    uint32_t seq)
{
	if (len)
		memmove(out + WIRE_HDR_LEN, p, len);
	wire_hdr_encode(out, type, len, seq, wire_sum(out + WIRE_HDR_LEN, len));
	return WIRE_HDR_LEN + len;
}

static int parse(const uint8_t *b, size_t len)
{
	char err[256];

	return wire_parse_buffer(b, len, err, sizeof(err));
}

TEST(frame_roundtrip_and_truncation)
{
	uint8_t buf[4096], p[WIRE_HELLO_LEN];
	struct wire_hello h = {}, h2;
	size_t n = 0, i;

	snprintf(h.src.bdf, sizeof(h.src.bdf), "0000:00:03.0");
	snprintf(h.src.profile, sizeof(h.src.profile), "edu");
	snprintf(h.target_bdf, sizeof(h.target_bdf), "0000:00:05.0");
	h.src.vendor = 0x1234;
	h.src.bar_size[0] = 1 << 20;
	h.timeout_ms = 777;
	n += frame(buf, WIRE_HELLO, p, wire_enc_hello(p, &h), 0);
	n += frame(buf + n, WIRE_SWITCHOVER, NULL, 0, 1);
	EXPECT_EQ(2, parse(buf, n));
	ASSERT_EQ(0, wire_dec_hello(buf + WIRE_HDR_LEN, WIRE_HELLO_LEN, &h2));
	EXPECT_STREQ("0000:00:05.0", h2.target_bdf);
	EXPECT_STREQ("edu", h2.src.profile);
	EXPECT_EQ(0x1234, h2.src.vendor);
	EXPECT_EQ(1u << 20, h2.src.bar_size[0]);
	EXPECT_EQ(777u, h2.timeout_ms);
	/* every truncation is an error, never a crash or a read past the end */
	for (i = 1; i < n; i++) {
		uint8_t *copy = malloc(i);

		memcpy(copy, buf, i);
		if (i != n - WIRE_HDR_LEN)	/* the first frame alone is whole */
			EXPECT_EQ(-EPROTO, parse(copy, i)) TH_LOG("len %zu", i);
		free(copy);
	}
}

TEST(frame_header_rejections)
{
	uint8_t f[WIRE_HDR_LEN + 8] = { 0 }, g[sizeof(f)];
	struct wire_hdr h;
	char err[256];
	unsigned int i;

	frame(f, WIRE_COMMIT, NULL, 0, 0);
	EXPECT_EQ(0, wire_hdr_decode(f, 0, &h, err, sizeof(err)));
	/* wrong sequence */
	EXPECT_EQ(-EPROTO, wire_hdr_decode(f, 1, &h, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "sequence"));
	/* bad magic */
	memcpy(g, f, sizeof(f));
	g[0] ^= 1;
	EXPECT_EQ(-EPROTO, wire_hdr_decode(g, 0, &h, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "magic"));
	/* another major */
	memcpy(g, f, sizeof(f));
	g[4] = 2;
	EXPECT_EQ(-EPROTONOSUPPORT, wire_hdr_decode(g, 0, &h, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "major"));
	/* any other header bit flipped: the header checksum */
	for (i = 5 * 8; i < 24 * 8; i++) {
		memcpy(g, f, sizeof(f));
		g[i / 8] ^= 1 << (i % 8);
		EXPECT_EQ(-EPROTO, wire_hdr_decode(g, 0, &h, err, sizeof(err)));
	}
	/* unknown mandatory type; oversize lengths, with a valid checksum */
	wire_hdr_encode(g, 99, 0, 0, wire_sum(NULL, 0));
	EXPECT_EQ(-EPROTO, wire_hdr_decode(g, 0, &h, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "unknown frame type"));
	wire_hdr_encode(g, WIRE_PAGES, WIRE_MAX_PAYLOAD + 1, 0, 0);
	EXPECT_EQ(-EMSGSIZE, wire_hdr_decode(g, 0, &h, err, sizeof(err)));
	wire_hdr_encode(g, WIRE_HELLO, 0xffffffffu, 0, 0);
	EXPECT_EQ(-EMSGSIZE, wire_hdr_decode(g, 0, &h, err, sizeof(err)));
	wire_hdr_encode(g, WIRE_COMMIT, 257, 0, 0);
	EXPECT_EQ(-EMSGSIZE, wire_hdr_decode(g, 0, &h, err, sizeof(err)));
	/* unknown optional types are accepted (bounded) and skipped */
	wire_hdr_encode(g, WIRE_T_OPTIONAL | 77, 10, 0, 0);
	EXPECT_EQ(0, wire_hdr_decode(g, 0, &h, err, sizeof(err)));
	wire_hdr_encode(g, WIRE_T_OPTIONAL | 77, 1 << 20, 0, 0);
	EXPECT_EQ(-EMSGSIZE, wire_hdr_decode(g, 0, &h, err, sizeof(err)));
}

TEST(frame_payload_rejections)
{
	static uint8_t buf[WIRE_HDR_LEN + WIRE_MAX_PAYLOAD];
	uint8_t *p = buf + WIRE_HDR_LEN;
	uint64_t desc[3];
	struct wire_hdr h;
	char err[256];
	size_t n;

	/* payload checksum */
	memset(p, 0x5a, 100);
	n = frame(buf, WIRE_STREAM, p, 100, 0);
	EXPECT_EQ(1, parse(buf, n));
	p[50] ^= 0x80;
	EXPECT_EQ(-EPROTO, parse(buf, n));
	/* STREAM shorter than its kind field */
	n = frame(buf, WIRE_STREAM, p, 4, 0);
	EXPECT_EQ(-EPROTO, parse(buf, n));
	/* PAGES: descriptors, kinds, counts and length must agree */
	desc[0] = 0x100000 | WIRE_PG_DATA;
	desc[1] = 0x101000 | WIRE_PG_ZERO;
	desc[2] = 0x102000 | WIRE_PG_DATA;
	wire_pages_meta(p, 1, desc, 3);
	memset(p + WIRE_PAGE, 1, 2 * WIRE_PAGE);
	n = frame(buf, WIRE_PAGES, p, 3 * WIRE_PAGE, 0);
	EXPECT_EQ(1, parse(buf, n));
	n = frame(buf, WIRE_PAGES, p, 2 * WIRE_PAGE, 0);	/* a page short */
	EXPECT_EQ(-EPROTO, parse(buf, n));
	n = frame(buf, WIRE_PAGES, p, 100, 0);			/* no block */
	EXPECT_EQ(-EPROTO, parse(buf, n));
	desc[1] = 0x101000 | 7;					/* bad kind */
	wire_pages_meta(p, 1, desc, 3);
	n = frame(buf, WIRE_PAGES, p, 3 * WIRE_PAGE, 0);
	EXPECT_EQ(-EPROTO, parse(buf, n));
	wire_pages_meta(p, 1, desc, 0);
	wire_put32(p + 4, 100000);				/* count */
	n = frame(buf, WIRE_PAGES, p, WIRE_PAGE, 0);
	EXPECT_EQ(-EPROTO, parse(buf, n));
	wire_pages_meta(p, 1, desc, 0);
	p[WIRE_PAGE - 1] = 1;					/* padding */
	n = frame(buf, WIRE_PAGES, p, WIRE_PAGE, 0);
	EXPECT_EQ(-EPROTO, parse(buf, n));
	/* RANGES: count against length; decoder: alignment, order */
	{
		struct wire_range r[2] = { { 0x200000, 0x1000 }, { 0x100000, 0x1000 } };
		struct wire_range out[WIRE_RANGES_MAX];
		uint32_t cnt;

		n = wire_enc_ranges(p, r, 2);
		EXPECT_EQ(-EPROTO, wire_dec_ranges(p, n, out, &cnt));	/* unsorted */
		r[1].iova = 0x300000;
		n = wire_enc_ranges(p, r, 2);
		EXPECT_EQ(0, wire_dec_ranges(p, n, out, &cnt));
		EXPECT_EQ(2u, cnt);
		r[1].length = 0x1001;
		n = wire_enc_ranges(p, r, 2);
		EXPECT_EQ(-EPROTO, wire_dec_ranges(p, n, out, &cnt));
		wire_put32(p, 0xffffffff);
		EXPECT_EQ(-EPROTO, wire_dec_ranges(p, n, out, &cnt));
		h.type = WIRE_RANGES;
		h.length = 8 + 16;
		h.sum = wire_sum(p, h.length);
		EXPECT_EQ(-EPROTO, wire_payload_check(&h, p, err, sizeof(err)));
	}
	/* strings: unterminated or non-printable are refused */
	{
		struct wire_refuse r = {}, r2;
		uint8_t q[WIRE_REFUSE_LEN];

		snprintf(r.field, sizeof(r.field), "device");
		wire_enc_refuse(q, &r);
		EXPECT_EQ(0, wire_dec_refuse(q, sizeof(q), &r2));
		EXPECT_STREQ("device", r2.field);
		memset(q, 'A', 32);
		EXPECT_EQ(-EPROTO, wire_dec_refuse(q, sizeof(q), &r2));
		wire_enc_refuse(q, &r);
		q[2] = 0x1b;
		EXPECT_EQ(-EPROTO, wire_dec_refuse(q, sizeof(q), &r2));
		EXPECT_EQ(-EPROTO, wire_dec_refuse(q, 10, &r2));
		/*
		 * what is sent is always taken: a peer's UTF-8 name (a TLS
		 * identity) or a control character goes as '?'
		 */
		snprintf(r.source, sizeof(r.source), "h\xc3\xb4te\x1b");
		wire_enc_refuse(q, &r);
		EXPECT_EQ(0, wire_dec_refuse(q, sizeof(q), &r2));
		EXPECT_STREQ("h??te?", r2.source);
	}
}

/*
 * wire_conn.sum_off sends 0 for the checksum; only a receiver that does
 * not check it (sum_unchecked: a TLS link) takes such a frame, and that
 * receiver still checks the layout.
 */
TEST(frame_checksum_off_only_where_unchecked)
{
	static uint8_t meta[WIRE_PAGE], page[WIRE_PAGE] = { 7 };
	struct wire_conn tx, r;
	uint64_t desc[2] = { 0x100000 | WIRE_PG_DATA, 0x101000 | WIRE_PG_ZERO };
	struct wire_msg m;
	uint8_t q[40] = "round end";
	int sv[2], pass;

	for (pass = 0; pass < 3; pass++) {
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
		ASSERT_EQ(0, wire_conn_init(&tx, sv[0], 2000, NULL));
		ASSERT_EQ(0, wire_conn_init(&r, sv[1], 2000, NULL));
		tx.sum_off = true;
		/* pass 0: a plain receiver; 1: a TLS one; 2: bad layout */
		r.sum_unchecked = pass > 0;
		wire_pages_meta(meta, 1, desc, 2);
		if (pass == 2)
			meta[WIRE_PAGE - 1] = 1;	/* padding not zero */
		{
			struct iovec v[2] = {
				{ meta, WIRE_PAGE }, { page, WIRE_PAGE },
			};

			ASSERT_EQ(0, wire_sendv(&tx, WIRE_PAGES, v, 2, 0));
		}
		ASSERT_EQ(0, wire_send(&tx, WIRE_ROUND_END, q, 24));
		if (pass == 0) {
			EXPECT_EQ(-EPROTO, wire_recv(&r, &m, 0));
			EXPECT_NE(NULL, strstr(r.err, "checksum mismatch"))
				TH_LOG("%s", r.err);
		} else if (pass == 1) {
			ASSERT_EQ(0, wire_recv(&r, &m, 0)) TH_LOG("%s", r.err);
			EXPECT_EQ(WIRE_PAGES, m.h.type);
			EXPECT_EQ(0u, m.h.sum);
			EXPECT_EQ(7, m.p[WIRE_PAGE]);
			ASSERT_EQ(0, wire_recv(&r, &m, 0)) TH_LOG("%s", r.err);
			EXPECT_EQ(WIRE_ROUND_END, m.h.type);
			EXPECT_EQ(0u, m.h.sum);
		} else {
			EXPECT_EQ(-EPROTO, wire_recv(&r, &m, 0));
			EXPECT_EQ(NULL, strstr(r.err, "checksum"))
				TH_LOG("%s", r.err);
		}
		wire_conn_free(&tx);	/* closes sv[0] */
		wire_conn_free(&r);
	}
}

TEST(frame_random_garbage)
{
	static uint8_t buf[65536];
	unsigned int seed = 1, i, j;
	char err[256];

	/* random bytes, and valid frames with random corruption: no crash */
	for (i = 0; i < 2000; i++) {
		size_t len = rand_r(&seed) % sizeof(buf);

		for (j = 0; j < len; j++)
			buf[j] = rand_r(&seed);
		if (i % 2) {
			size_t n = frame(buf, WIRE_STREAM, buf + 64, 8 + len % 4096, 0);

			buf[rand_r(&seed) % n] ^= 1 << (rand_r(&seed) % 8);
			len = n;
		}
		EXPECT_GT(0, wire_parse_buffer(buf, len, err, sizeof(err)));
	}
}

/* ---- compatibility ---- */

TEST(compat_each_mismatch_named)
{
	struct mig_ident s, t;
	struct wire_refuse r;
	char notes[256];
	int i;

	edu_ident(&s, "0000:00:03.0");
	edu_ident(&t, "0000:00:05.0");
	EXPECT_EQ(0, lm_compat_check(&s, &t, &r, notes, sizeof(notes)));
	EXPECT_STREQ("", notes);
#define MISMATCH(fld, stmt, sv, tv) do {				\
	edu_ident(&t, "0000:00:05.0");					\
	stmt;								\
	EXPECT_EQ(1, lm_compat_check(&s, &t, &r, notes, sizeof(notes)));	\
	EXPECT_STREQ(fld, r.field);					\
	EXPECT_STREQ(sv, r.source);					\
	EXPECT_STREQ(tv, r.target);					\
	EXPECT_NE(0, strlen(r.reason));					\
	} while (0)
	MISMATCH("proto_major", t.proto_major = 2, "1", "2");
	MISMATCH("stream_major", t.stream_major = 9, "1", "9");
	MISMATCH("page_size", t.page_size = 65536, "4096", "65536");
	MISMATCH("vendor", t.vendor = 0x8086, "1234", "8086");
	MISMATCH("device", t.device = 0x11e9, "11e8", "11e9");
	MISMATCH("class", t.class_code = 0x020000, "00ff00", "020000");
	MISMATCH("bar0", t.bar_size[0] = 2 << 20, "mem 0x100000", "mem 0x200000");
	MISMATCH("bar0", t.bar_flags[0] = MIG_BAR_MEM64, "mem 0x100000",
		 "mem64 0x100000");
	MISMATCH("bar2", t.bar_size[2] = 4096, "absent", "mem 0x1000");
	MISMATCH("profile", snprintf(t.profile, sizeof(t.profile), "generic"),
		 "edu", "generic");
	/* the first mismatch is named, not a later one */
	edu_ident(&t, "0000:00:05.0");
	t.device = 1;
	snprintf(t.profile, sizeof(t.profile), "generic");
	EXPECT_EQ(1, lm_compat_check(&s, &t, &r, notes, sizeof(notes)));
	EXPECT_STREQ("device", r.field);
	/* the allow-list: tolerated, and listed */
	edu_ident(&t, "0000:00:05.0");
	t.revision = 0x11;
	t.subvendor = 0x1b36;
	t.trap_mode = 2;
	t.proto_minor = WIRE_MINOR + 1;
	snprintf(t.kernel, sizeof(t.kernel), "6.1.0-56-amd64-other");
	EXPECT_EQ(0, lm_compat_check(&s, &t, &r, notes, sizeof(notes)));
	EXPECT_NE(NULL, strstr(notes, "revision 0x10/0x11"));
	EXPECT_NE(NULL, strstr(notes, "subsystem_vendor 1af4/1b36"));
	EXPECT_NE(NULL, strstr(notes, "trap_mode"));
	EXPECT_NE(NULL, strstr(notes, "proto_minor"));
	EXPECT_NE(NULL, strstr(notes, "kernel"));
	for (i = 0; i < 6; i++)
		EXPECT_EQ(s.bar_size[i], t.bar_size[i]);
}

/* ---- convergence ---- */

TEST(convergence_estimator)
{
	struct lm_conv c = { .downtime_ms = 300, .max_rounds = 5,
			     .state_bytes = 0 };
	uint64_t est;

	/* nothing measured: never "converged" */
	EXPECT_EQ(UINT64_MAX, lm_conv_estimate(&c, 10));
	EXPECT_EQ(LM_CONTINUE, lm_conv_decide(&c, 1, 10, &est));
	/* 100 MiB/s measured: 2560 pages = 10 MiB = 100 ms */
	lm_conv_measure(&c, 100 << 20, 1000000);
	EXPECT_EQ(100u << 20, c.bw);
	EXPECT_EQ(100u, lm_conv_estimate(&c, 2560));
	c.overhead_ms = 50;
	EXPECT_EQ(150u, lm_conv_estimate(&c, 2560));
	EXPECT_EQ(LM_SWITCH, lm_conv_decide(&c, 1, 2560, &est));
	EXPECT_EQ(150u, est);
	/* 10000 pages = 390 ms + 50: no; at max rounds: abort or forced */
	EXPECT_EQ(LM_CONTINUE, lm_conv_decide(&c, 2, 10000, &est));
	EXPECT_EQ(LM_GIVE_UP, lm_conv_decide(&c, 5, 10000, &est));
	c.force = true;
	EXPECT_EQ(LM_SWITCH_FORCED, lm_conv_decide(&c, 5, 10000, &est));
	EXPECT_EQ(441u, est);	/* 390.625 ms rounded up, + 50 */
	/* the state bytes count */
	c.overhead_ms = 0;
	c.state_bytes = 10 << 20;
	EXPECT_EQ(100u, lm_conv_estimate(&c, 0));
	/* --bandwidth caps the measured rate */
	c.bw_limit = 10 << 20;
	EXPECT_EQ(1000u, lm_conv_estimate(&c, 0));
	/* a tiny round does not replace a measurement; later ones weigh 3/4 */
	c.bw_limit = 0;
	lm_conv_measure(&c, 4096, 1000000);
	EXPECT_EQ(100u << 20, c.bw);
	lm_conv_measure(&c, 20 << 20, 1000000);
	EXPECT_EQ((100u << 20) / 4 + 3 * (20u << 20) / 4, c.bw);
	/* zero pending at round 1 fits at once */
	c.state_bytes = 0;
	EXPECT_EQ(LM_SWITCH, lm_conv_decide(&c, 1, 0, &est));
}

TEST(to_parse)
{
	char h[64];
	uint16_t port = 4797;

	EXPECT_EQ(0, lm_parse_to("host", h, sizeof(h), &port));
	EXPECT_STREQ("host", h);
	EXPECT_EQ(4797, port);
	EXPECT_EQ(0, lm_parse_to("10.0.0.2:5000", h, sizeof(h), &port));
	EXPECT_STREQ("10.0.0.2", h);
	EXPECT_EQ(5000, port);
	EXPECT_EQ(0, lm_parse_to("fd99::2", h, sizeof(h), &port));
	EXPECT_STREQ("fd99::2", h);
	EXPECT_EQ(5000, port);
	EXPECT_EQ(0, lm_parse_to("[fd99::2]:6000", h, sizeof(h), &port));
	EXPECT_STREQ("fd99::2", h);
	EXPECT_EQ(6000, port);
	EXPECT_EQ(0, lm_parse_to("[::1]", h, sizeof(h), &port));
	EXPECT_STREQ("::1", h);
	EXPECT_EQ(-1, lm_parse_to("[::1", h, sizeof(h), &port));
	EXPECT_EQ(-1, lm_parse_to("[]:5", h, sizeof(h), &port));
	EXPECT_EQ(-1, lm_parse_to("[::1]x", h, sizeof(h), &port));
	EXPECT_EQ(-1, lm_parse_to("host:0", h, sizeof(h), &port));
	EXPECT_EQ(-1, lm_parse_to("host:70000", h, sizeof(h), &port));
	EXPECT_EQ(-1, lm_parse_to(":5", h, sizeof(h), &port));
	EXPECT_EQ(-1, lm_parse_to("", h, sizeof(h), &port));
}

TEST(rates_parse)
{
	uint64_t v;

	EXPECT_EQ(0, lm_parse_rate("20M", &v));
	EXPECT_EQ(20u << 20, v);
	EXPECT_EQ(0, lm_parse_rate("512k", &v));
	EXPECT_EQ(512u << 10, v);
	EXPECT_EQ(0, lm_parse_rate("1G", &v));
	EXPECT_EQ(0, lm_parse_rate("1000", &v));
	EXPECT_EQ(1000u, v);
	EXPECT_EQ(-1, lm_parse_rate("0", &v));
	EXPECT_EQ(-1, lm_parse_rate("-5M", &v));
	EXPECT_EQ(-1, lm_parse_rate("5X", &v));
	EXPECT_EQ(-1, lm_parse_rate("5MB", &v));
	EXPECT_EQ(-1, lm_parse_rate("", &v));
	/* no sign or space strtoull() would skip, no wrap in the suffix */
	EXPECT_EQ(-1, lm_parse_rate(" -5", &v));
	EXPECT_EQ(-1, lm_parse_rate(" 5", &v));
	EXPECT_EQ(-1, lm_parse_rate("+5", &v));
	EXPECT_EQ(-1, lm_parse_rate("17179869185G", &v));
	EXPECT_EQ(0, lm_parse_rate("17179869183G", &v));
	EXPECT_EQ(17179869183ull << 30, v);
	EXPECT_EQ(-1, migctl_parse_u64(" -1", &v));
	EXPECT_EQ(-1, migctl_parse_u64("+1", &v));
	EXPECT_EQ(0, migctl_parse_u64("0x1000", &v));
	EXPECT_EQ(0x1000u, v);
}

TEST(migrate_precopy_ok)
{
	static struct side s, t;
	static const uint32_t sp[] = { VFIO_MIG_MIG_PHASE_BEGIN,
				       VFIO_MIG_MIG_PHASE_PAUSE,
				       VFIO_MIG_MIG_PHASE_COMMIT };
	static const uint32_t tp[] = { VFIO_MIG_MIG_PHASE_PREPARE,
				       VFIO_MIG_MIG_PHASE_START };

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.f.dirty_start = 300;
	s.f.dirty_step = 100;
	s.o.downtime_ms = 1;	/* rounds until nothing is dirty */
	migrate(&s, &t);
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	EXPECT_EQ(sizeof(s.f.stream), t.f.rx_len);
	EXPECT_TRUE(phases_are(&s.f, sp, 3));
	EXPECT_TRUE(phases_are(&t.f, tp, 2));
	EXPECT_EQ(LM_ST_STOP, s.f.state);
	EXPECT_TRUE(s.f.committed_stopped);
	EXPECT_EQ(LM_ST_RUNNING, t.f.state);
	EXPECT_TRUE(t.f.committed && !t.f.committed_stopped);
	EXPECT_TRUE(has(&s, "\"event\":\"summary\",\"role\":\"source\",\"result\":\"migrated\""));
	EXPECT_TRUE(has(&t, "\"event\":\"summary\",\"role\":\"target\",\"result\":\"migrated\""));
	EXPECT_TRUE(has(&s, "\"precopy\":true"));
	/* the summary counts the pre-copy rounds, one "round" event each */
	{
		char want[64];

		snprintf(want, sizeof(want), "\"rounds\":%d,",
			 count(&s, "\"event\":\"round\""));
		EXPECT_TRUE(has(&s, want));
		EXPECT_EQ(1, count(&s, "\"event\":\"final\""));
		EXPECT_EQ(1, count(&t, "\"event\":\"final\""));
	}
	EXPECT_TRUE(has(&s, "\"page_stream_mib_per_s\":"));
	EXPECT_TRUE(has(&s, "\"reason\":\"converged\""));
	side_free(&s);
	side_free(&t);
}

/* Without -j the summary says where the downtime went, parts that add up. */
TEST(migrate_text_summary_breaks_down_the_downtime)
{
	static struct side s, t;
	double down, pause, stop, xfer, dirty, load, commit;
	double t_load, t_drain, t_run, t_vmm;
	const char *l;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.js.enabled = false;
	t.js.enabled = false;
	migrate(&s, &t);
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	fflush(s.js.out);
	EXPECT_TRUE(has(&s, "migrated 0000:00:03.0 -> peer:"));
	l = strstr(s.log, "\n  downtime ");
	ASSERT_NE(NULL, l) TH_LOG("%s", s.log);
	ASSERT_EQ(7, sscanf(l, "\n  downtime %lf ms: vCPU pause ack %lf, device stop-copy %lf, final pages and device state %lf (final dirty read %lf of it), target load %lf, commit to resume ack %lf",
			    &down, &pause, &stop, &xfer, &dirty, &load, &commit))
		TH_LOG("%s", l);
	EXPECT_LE(dirty, xfer);
	/* each part is rounded to 0.1 ms, the parts cover the downtime */
	EXPECT_GE(down + 0.35, pause + stop + xfer + load + commit);
	EXPECT_LE(down - 0.35, pause + stop + xfer + load + commit);
	/* and the target's own account of its two */
	l = strstr(s.log, "\n  of it on the target: ");
	ASSERT_NE(NULL, l) TH_LOG("%s", s.log);
	ASSERT_EQ(4, sscanf(l, "\n  of it on the target: its devices' load %lf (after writing queued pages %lf); its devices' run %lf and its VMM's start ack %lf",
			    &t_load, &t_drain, &t_run, &t_vmm))
		TH_LOG("%s", l);
	EXPECT_GE(load + 0.25, t_load + t_drain);
	EXPECT_GE(commit + 0.25, t_run + t_vmm);
	EXPECT_FALSE(has(&s, "\"event\""));
	side_free(&s);
	side_free(&t);
}

/* A number of @s's summary, or -1 when it has no such key. */
static double summary_num(struct side *s, const char *key)
{
	char pat[64];
	const char *p;

	fflush(s->js.out);
	p = s->log ? strstr(s->log, "\"event\":\"summary\"") : NULL;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = p ? strstr(p, pat) : NULL;
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

/*
 * The target's own account of its part: its devices' load within FINAL
 * to READY, its VMM's start ack within COMMIT to DONE, as it measured
 * them (the fake's load and start ack take 30 and 40 ms).
 */
TEST(migrate_target_accounts_for_its_part)
{
	static struct side s, t;
	double load, dev_load, drain, commit, run, vmm;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.load_delay_ms = 30;
	t.f.start_delay_ms = 40;
	migrate(&s, &t);
	ASSERT_EQ(0, s.code) TH_LOG("%s", s.log);
	load = summary_num(&s, "target_load_ms");
	dev_load = summary_num(&s, "target_device_load_ms");
	drain = summary_num(&s, "target_drain_ms");
	commit = summary_num(&s, "commit_ms");
	run = summary_num(&s, "target_start_ms");
	vmm = summary_num(&s, "target_vmm_start_ms");
	EXPECT_LE(30, dev_load) TH_LOG("%s", s.log);
	EXPECT_LE(0, drain);
	/* target_load_ms is whole ms, the target's parts tenths */
	EXPECT_GE(load + 1, dev_load + drain);
	EXPECT_LE(40, vmm) TH_LOG("%s", s.log);
	EXPECT_LE(vmm, run);
	EXPECT_GE(commit + 1, run);
	/* its own summary says the same, in whole ms */
	EXPECT_LE(40, summary_num(&t, "vmm_start_ms")) TH_LOG("%s", t.log);
	EXPECT_GE(vmm + 1, summary_num(&t, "vmm_start_ms"));
	side_free(&s);
	side_free(&t);
}

static void strip_times(uint16_t type, uint8_t *p, uint32_t *len)
{
	(void)p;
	*len = type == WIRE_DONE ? 8 : 0;	/* a target before 1.5 */
}

static void huge_times(uint16_t type, uint8_t *p, uint32_t *len)
{
	unsigned int i;

	for (i = type == WIRE_DONE ? 1 : 0; i < *len / 8; i++)
		wire_put64(p + 8 * i, UINT64_MAX);
}

/*
 * A target before 1.5 says nothing of its part: the summary has none of
 * it. A target that claims more than the window the source saw is held
 * to that window.
 */
TEST(migrate_target_account_missing_or_too_large)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	migrate_relayed(&s, &t, strip_times);
	ASSERT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(-1, summary_num(&s, "target_device_load_ms"));
	EXPECT_EQ(-1, summary_num(&s, "target_vmm_start_ms"));
	EXPECT_LE(0, summary_num(&s, "target_load_ms"));
	side_free(&s);
	side_free(&t);

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.load_delay_ms = 5;
	migrate_relayed(&s, &t, huge_times);
	ASSERT_EQ(0, s.code) TH_LOG("%s", s.log);
	/* the drain takes the whole window, the load what is left: none */
	ASSERT_LE(5, summary_num(&s, "target_drain_ms")) TH_LOG("%s", s.log);
	EXPECT_GE(summary_num(&s, "target_load_ms") + 1,
		  summary_num(&s, "target_drain_ms")) TH_LOG("%s", s.log);
	EXPECT_LE(summary_num(&s, "target_load_ms"),
		  summary_num(&s, "target_drain_ms")) TH_LOG("%s", s.log);
	EXPECT_EQ(0, summary_num(&s, "target_device_load_ms")) TH_LOG("%s", s.log);
	/* the start takes COMMIT to DONE, the ack all of the start */
	ASSERT_LE(0, summary_num(&s, "target_start_ms")) TH_LOG("%s", s.log);
	EXPECT_GE(summary_num(&s, "commit_ms") + 1,
		  summary_num(&s, "target_start_ms")) TH_LOG("%s", s.log);
	EXPECT_LE(summary_num(&s, "commit_ms"),
		  summary_num(&s, "target_start_ms")) TH_LOG("%s", s.log);
	EXPECT_EQ(summary_num(&s, "target_start_ms"),
		  summary_num(&s, "target_vmm_start_ms"));
	side_free(&s);
	side_free(&t);
}

/*
 * The target's DONE says its start was not confirmed (its VMM refused
 * start): the source ends committed but unconfirmed, not migrated. The
 * same from a target before 1.5, whose DONE holds the status alone.
 */
static void status_only(uint16_t type, uint8_t *p, uint32_t *len)
{
	(void)p;
	if (type == WIRE_DONE)
		*len = 8;
}

TEST(migrate_target_start_unconfirmed)
{
	static struct side s, t;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		side_init(&s, "0000:00:03.0", false);
		side_init(&t, "0000:00:05.0", true);
		t.f.refuse_phase = VFIO_MIG_MIG_PHASE_START;
		t.f.refuse_result = EIO;
		if (pass)
			migrate_relayed(&s, &t, status_only);
		else
			migrate(&s, &t);
		EXPECT_EQ(LM_EXIT_UNCONFIRMED, t.code) TH_LOG("%s", t.log);
		EXPECT_EQ(LM_EXIT_UNCONFIRMED, s.code) TH_LOG("%s", s.log);
		EXPECT_TRUE(has(&s, "\"result\":\"committed-unconfirmed\""));
		EXPECT_TRUE(has(&s, "start was not confirmed (its status 3"))
			TH_LOG("%s", s.log);
		/* committed all the same: the source never runs it again */
		EXPECT_TRUE(s.f.committed);
		side_free(&s);
		side_free(&t);
	}
}

/*
 * A target that sends frames of unknown optional types before READY, one
 * every 100 ms, each well within the source's 300 ms timeout, does not
 * keep the source waiting (with its VM paused) past twice the timeout:
 * the skipped frames do not restart the wait.
 */
#define DRIP_FRAMES	20
#define DRIP_GAP_MS	100
static uint32_t drip_sent;

static uint32_t drip_before_ready(uint16_t type, int to, uint32_t seq)
{
	uint8_t f[WIRE_HDR_LEN + 8] = { 0 };
	uint32_t i;

	if (type != WIRE_READY)
		return 0;
	for (i = 0; i < DRIP_FRAMES; i++) {
		usleep(DRIP_GAP_MS * 1000);
		wire_hdr_encode(f, WIRE_T_OPTIONAL | 0x777, 8, seq + i,
				wire_sum(f + WIRE_HDR_LEN, 8));
		if (!relay_write(to, f, sizeof(f)))
			break;
		drip_sent++;
	}
	return i;
}

TEST(migrate_skipped_frames_do_not_extend_a_wait)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.o.timeout_ms = 300;
	drip_sent = 0;
	migrate_relayed_inject(&s, &t, NULL, drip_before_ready);
	EXPECT_EQ(LM_EXIT_FAILED, s.code) TH_LOG("%s", s.log);
	EXPECT_TRUE(has(&s, "did not send the frame within 300 ms"))
		TH_LOG("%s", s.log);
	/* rolled back: the source device runs again, the VM resumed */
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	/* it gave up within 2 x 300 ms, give or take a frame or two */
	EXPECT_GT(9, drip_sent);
	EXPECT_NE(0, t.code);
	side_free(&s);
	side_free(&t);
}

/*
 * Two devices whose target VMM takes 700 ms to ack each start, with
 * --vmm-timeout-ms 1000: the target asks them in turn (1.4 s), and the
 * source waits for DONE once per device, so it confirms the migration.
 */
TEST(migrate_two_devices_slow_start_acks_confirmed)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	side_add_dev(&s, "0000:00:04.0", "0000:00:06.0");
	side_add_dev(&t, "0000:00:06.0", "0000:00:06.0");
	s.o.timeout_ms = t.o.timeout_ms = 300;
	s.o.vmm_timeout_ms = t.o.vmm_timeout_ms = 1000;
	t.f.start_delay_ms = 700;
	t.fx[0].start_delay_ms = 700;
	migrate(&s, &t);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_LE(1400, summary_num(&s, "target_vmm_start_ms"))
		TH_LOG("%s", s.log);
	side_free(&s);
	side_free(&t);
}

/*
 * A prepare holds the device's DMA starts, one that timed out too: the
 * text output says for how long, beyond the downtime.
 */
TEST(migrate_text_says_how_long_device_dma_was_held)
{
	static struct side s, t;
	double held, down;
	const char *l;
	int i;

	for (i = 0; i < 2; i++) {
		side_init(&s, "0000:00:03.0", false);
		side_init(&t, "0000:00:05.0", true);
		s.f.id.early_load = true;
		t.f.id.early_load = true;
		s.f.prepare_delay_ms = 40;
		s.f.prepare_ret = i ? -ETIMEDOUT : 0;
		s.o.downtime_ms = 1;
		s.js.enabled = false;
		t.js.enabled = false;
		migrate(&s, &t);
		ASSERT_EQ(0, s.code) TH_LOG("%s", s.log);
		fflush(s.js.out);
		l = strstr(s.log, "\n  downtime ");
		ASSERT_NE(NULL, l) TH_LOG("%s", s.log);
		ASSERT_EQ(1, sscanf(l, "\n  downtime %lf ms", &down));
		l = strstr(s.log, "\n  the guest's device DMA starts were held ");
		ASSERT_NE(NULL, l) TH_LOG("%s", s.log);
		ASSERT_EQ(1, sscanf(l, "\n  the guest's device DMA starts were held %lf ms", &held));
		EXPECT_LE(down + 40, held) TH_LOG("%s", s.log);
		side_free(&s);
		side_free(&t);
	}
}

TEST(migrate_no_precopy_and_unchanged_pages)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.f.precopy_ok = false;		/* a 6.1 kernel */
	s.f.dirty_start = 200;		/* the same pages, written again */
	s.f.dirty_constant = true;
	s.o.downtime_ms = 100000;
	migrate(&s, &t);
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	EXPECT_EQ(sizeof(s.f.stream), t.f.rx_len);
	EXPECT_TRUE(has(&s, "\"precopy\":false"));
	/* a third of the RAM is zero: sent as records, not pages */
	EXPECT_TRUE(has(&s, "\"zero_pages\":"));
	EXPECT_FALSE(has(&s, "\"round\":1,\"pages\":1024,\"pages_sent\":1024"));
	side_free(&s);
	side_free(&t);
}

/*
 * A migration of rounds (300 pages dirty, then 100 fewer each round) with
 * "the kernel" staging the source's pages and landing the target's (the
 * fake's staging on memfds), every @enomem_every-th stage short of memory
 * (0: none): both sides succeed and the target's RAM is the source's.
 */
static void staged_migration(struct __test_metadata *_metadata,
			     struct side *s, struct side *t, int enomem_every)
{
	side_init(s, "0000:00:03.0", false);
	side_init(t, "0000:00:05.0", true);
	s->d.ops = &fake_ops_staging;
	t->d.ops = &fake_ops_staging;
	s->f.stage_enomem_every = enomem_every;
	s->f.dirty_start = 300;
	s->f.dirty_step = 100;
	s->o.downtime_ms = 1;	/* rounds until nothing is dirty */
	migrate(s, t);
	EXPECT_EQ(0, s->code) TH_LOG("%s", s->log);
	EXPECT_EQ(0, t->code) TH_LOG("%s", t->log);
	EXPECT_EQ(0, memcmp(s->f.ram, t->f.ram, FAKE_PAGES * WIRE_PAGE));
	EXPECT_EQ(sizeof(s->f.stream), t->f.rx_len);
	EXPECT_TRUE(has(s, "\"pages_staged\":true"));
	EXPECT_TRUE(has(t, "\"pages_landed\":true"));
}

/*
 * Pages staged and sent from the staging fds by sendfile(), and landed
 * from the socket through a pipe: every page staged as data landed once,
 * and both summaries say which way the pages went.
 */
TEST(migrate_staged_and_landed)
{
	static struct side s, t;

	staged_migration(_metadata, &s, &t, 0);
	EXPECT_LT(0, s.f.stages);
	EXPECT_LT(0u, s.f.pages_staged);
	EXPECT_EQ(s.f.pages_staged, t.f.pages_landed);
	EXPECT_TRUE(has(&s, "\"stage_enomem_batches\":0,"));
	side_free(&s);
	side_free(&t);
}

/*
 * The kernel short of memory for some batches' copies (ENOMEM, every
 * second stage): those batches, and the rest of their round, go through
 * migctl's buffers; the next round stages again; the migration goes on
 * and is exact, and the summary counts the batches that failed.
 */
TEST(migrate_staging_short_of_memory_falls_back)
{
	static struct side s, t;
	char want[64];

	staged_migration(_metadata, &s, &t, 2);
	/* one stage failed in the first round, a later round staged again */
	EXPECT_LE(3, s.f.stages);
	snprintf(want, sizeof(want), "\"stage_enomem_batches\":%d,",
		 s.f.stages / 2);
	EXPECT_TRUE(has(&s, want)) TH_LOG("want %s: %s", want, s.log);
	side_free(&s);
	side_free(&t);
}

/*
 * Any other staging error fails the migration: the source rolls back and
 * runs on, the target never starts.
 */
TEST(migrate_staging_error_rolls_back)
{
	static struct side s, t;
	int i;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.d.ops = &fake_ops_staging;
	t.d.ops = &fake_ops_staging;
	s.f.stage_eio_at = 2;
	migrate(&s, &t);
	EXPECT_NE(0, s.code);
	EXPECT_NE(0, t.code);
	EXPECT_TRUE(has(&s, "Input/output error")) TH_LOG("%s", s.log);
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_FALSE(s.f.committed);
	EXPECT_FALSE(t.f.committed);
	for (i = 0; i < t.f.nphases; i++)
		EXPECT_NE(VFIO_MIG_MIG_PHASE_START, t.f.phases[i]);
	side_free(&s);
	side_free(&t);
}

TEST(migrate_bandwidth_paces_pages)
{
	static struct side s, t;
	uint64_t t0;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.o.bandwidth = 8 << 20;	/* ~2.8 MiB of round 1: >= 340 ms */
	t0 = lm_now_us();
	migrate(&s, &t);
	t0 = lm_now_us() - t0;
	EXPECT_EQ(0, s.code);
	EXPECT_EQ(0, t.code);
	EXPECT_GT(t0, 300000u);
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	side_free(&s);
	side_free(&t);
}

TEST(migrate_refused_names_field_on_both_sides)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.id.device = 0x11e9;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&s, "\"event\":\"refused\",\"role\":\"source\",\"field\":\"device\",\"source\":\"11e8\",\"target\":\"11e9\""));
	EXPECT_TRUE(has(&t, "\"event\":\"refused\",\"role\":\"target\",\"field\":\"device\",\"source\":\"11e8\",\"target\":\"11e9\""));
	/* nothing announced to either VMM; both devices running */
	EXPECT_EQ(0, s.f.nphases);
	EXPECT_EQ(0, t.f.nphases);
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_EQ(LM_ST_RUNNING, t.f.state);
	side_free(&s);
	side_free(&t);
}

/*
 * Which identity differences a profile tolerates is the target kernel's
 * decision (the profile's compat op, which also checks the stream): the
 * target asks it with the source's identity before it accepts. Here the
 * subsystem ids differ, which migctl's own check lets through and the
 * kernel's edu profile refuses: the migration is refused with the
 * kernel's reason before either VMM hears of it.
 */
TEST(migrate_refused_by_target_kernel_compat)
{
	static const char why[] =
		"identity mismatch: subsystem 1af4:1100, target 1af4:1101 (profile edu does not allow it)";
	static struct side s, t;
	struct wire_refuse r;
	char notes[256];

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.id.subdevice = 0x1101;
	/* migctl alone would not refuse it */
	EXPECT_EQ(0, lm_compat_check(&s.f.id, &t.f.id, &r, notes,
				     sizeof(notes)));
	t.f.compat_refused = why;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	/* the kernel was asked about the source as the source described it */
	EXPECT_EQ(1, t.f.compat_asked);
	EXPECT_EQ(0x1100, t.f.compat_src.subdevice);
	EXPECT_EQ(0x11e8, t.f.compat_src.device);
	EXPECT_EQ(1u << 20, t.f.compat_src.bar_size[0]);
	EXPECT_STREQ("edu", t.f.compat_src.profile);
	EXPECT_TRUE(has(&t, "\"field\":\"profile_compat\""));
	EXPECT_TRUE(has(&t, why));
	EXPECT_TRUE(has(&s, "\"field\":\"profile_compat\""));
	EXPECT_TRUE(has(&s, why));
	EXPECT_EQ(0, s.f.nphases);
	EXPECT_EQ(0, t.f.nphases);
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_EQ(LM_ST_RUNNING, t.f.state);
	side_free(&s);
	side_free(&t);
}

/* A difference the target's profile tolerates: asked, then migrated. */
TEST(migrate_tolerated_by_target_kernel_compat)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.id.revision = 0x11;
	t.f.compat_tolerated = true;
	migrate(&s, &t);
	EXPECT_EQ(0, s.code);
	EXPECT_EQ(0, t.code);
	EXPECT_EQ(1, t.f.compat_asked);
	EXPECT_EQ(0x10, t.f.compat_src.revision);
	side_free(&s);
	side_free(&t);
}

/*
 * HELLO 1.1 carries the source profile's needs record after the 1.0
 * fields: a 1.0 receiver reads the same first WIRE_HELLO_LEN bytes and
 * ignores the rest; a 1.0 HELLO has none; a malformed tail is refused.
 */
TEST(wire_hello_needs)
{
	uint8_t p[WIRE_HELLO_MAX_LEN + 64], p0[WIRE_HELLO_LEN];
	struct wire_hello h = {}, h2;
	size_t n, i;

	snprintf(h.src.bdf, sizeof(h.src.bdf), "0000:00:04.1");
	snprintf(h.src.profile, sizeof(h.src.profile), "nvme");
	snprintf(h.target_bdf, sizeof(h.target_bdf), "0000:00:04.2");
	EXPECT_EQ(WIRE_HELLO_LEN, wire_enc_hello(p0, &h));
	ASSERT_EQ(0, wire_dec_hello(p0, WIRE_HELLO_LEN, &h2));
	EXPECT_EQ(0, h2.needs_len);
	for (i = 0; i < 280; i++)
		h.needs[i] = i * 7 + 1;
	h.needs_len = 280;
	n = wire_enc_hello(p, &h);
	ASSERT_EQ(WIRE_HELLO_LEN + 8 + 280, n);
	EXPECT_EQ(0, memcmp(p, p0, WIRE_HELLO_LEN));
	ASSERT_EQ(0, wire_dec_hello(p, n, &h2));
	EXPECT_STREQ("0000:00:04.2", h2.target_bdf);
	ASSERT_EQ(280, h2.needs_len);
	EXPECT_EQ(0, memcmp(h.needs, h2.needs, 280));
	/* what a newer minor appends after the record is skipped */
	memset(p + n, 0xa5, 64);
	ASSERT_EQ(0, wire_dec_hello(p, n + 64, &h2));
	EXPECT_EQ(280, h2.needs_len);
	/* a tail shorter than its header, a length past the payload or the bound */
	EXPECT_EQ(-EPROTO, wire_dec_hello(p, WIRE_HELLO_LEN + 4, &h2));
	EXPECT_EQ(-EPROTO, wire_dec_hello(p, n - 1, &h2));
	wire_put32(p + WIRE_HELLO_LEN, WIRE_NEEDS_MAX + 1);
	EXPECT_EQ(-EPROTO, wire_dec_hello(p, sizeof(p), &h2));
	EXPECT_EQ(0, h2.needs_len);
	/* a record larger than the bound is not sent at all */
	h.needs_len = WIRE_NEEDS_MAX + 1;
	EXPECT_EQ(WIRE_HELLO_LEN, wire_enc_hello(p, &h));
}

/*
 * 1.2: ACCEPT's early-load byte (only 0 and 1); HELLO never carries it,
 * since a 1.1 target refuses the byte set.
 */
TEST(wire_ident_early_load)
{
	uint8_t p[WIRE_HELLO_MAX_LEN];
	struct wire_hello h = {}, h2;
	struct mig_ident id = {}, id2;
	size_t n;

	snprintf(id.bdf, sizeof(id.bdf), "0000:00:05.0");
	id.early_load = true;
	n = wire_enc_accept(p, &id, 1);
	ASSERT_EQ(0, wire_dec_accept(p, n, &id2, 1));
	EXPECT_TRUE(id2.early_load);
	id.early_load = false;
	n = wire_enc_accept(p, &id, 1);
	ASSERT_EQ(0, wire_dec_accept(p, n, &id2, 1));
	EXPECT_FALSE(id2.early_load);
	p[35] = 2;
	EXPECT_EQ(-EPROTO, wire_dec_accept(p, n, &id2, 1));
	/* a source's own early-load never reaches the wire */
	snprintf(h.src.bdf, sizeof(h.src.bdf), "0000:00:03.0");
	h.src.early_load = true;
	n = wire_enc_hello(p, &h);
	EXPECT_EQ(0, p[35]);
	ASSERT_EQ(0, wire_dec_hello(p, n, &h2));
	EXPECT_FALSE(h2.src.early_load);
	p[35] = 1;
	EXPECT_EQ(-EPROTO, wire_dec_hello(p, n, &h2));
}

/*
 * The switchover's prepare step runs only when the target says its device
 * loads early state (ACCEPT 1.2): a target that cannot would refuse the
 * record and fail the migration. The source's own early-load never
 * reaches the wire.
 */
TEST(migrate_prepares_only_for_a_target_that_loads_early_state)
{
	static struct side s, t;
	int i;

	/* 0: the target cannot; 1: it can; 2: it can, but the source is 1.1 */
	for (i = 0; i < 3; i++) {
		side_init(&s, "0000:00:03.0", false);
		side_init(&t, "0000:00:05.0", true);
		s.f.id.early_load = true;
		t.f.id.early_load = i > 0;
		if (i == 2)
			s.f.id.proto_minor = 1;
		s.f.prepare_delay_ms = 40;
		s.o.downtime_ms = 1;
		migrate(&s, &t);
		EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
		EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
		EXPECT_EQ(i == 1, s.f.prepares);
		/*
		 * the device's DMA starts wait from the prepare (40 ms) to
		 * the target's start; without one, the downtime
		 */
		if (i == 1) {
			EXPECT_LE(summary_num(&s, "downtime_ms") + 40,
				  summary_num(&s, "device_held_ms"))
				TH_LOG("%s", s.log);
		} else {
			EXPECT_EQ(summary_num(&s, "downtime_ms"),
				  summary_num(&s, "device_held_ms"))
				TH_LOG("%s", s.log);
		}
		EXPECT_TRUE(has(&s, i == 1 ? "\"event\":\"prepare\",\"role\":\"source\",\"early\":true" :
				   "\"early\":false,\"why\":\"the target's device cannot load early device state now"))
			TH_LOG("%s", s.log);
		EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
		side_free(&s);
		side_free(&t);
	}
}

/*
 * The source's kernel says what its guest uses (dev-needs); HELLO carries
 * it; the target's kernel judges it with what the target's PF says and
 * refuses: both sides name the reason, neither VMM hears of a phase.
 */
TEST(migrate_needs_refused_by_target_kernel)
{
	static const char why[] =
		"target VF has 1 I/O queue pairs, the guest uses 2";
	static struct side s, t;
	unsigned int i;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	for (i = 0; i < 280; i++)
		s.f.needs[i] = 255 - i;
	s.f.needs_len = 280;
	t.f.compat_refused = why;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_EQ(1, s.f.needs_asked);
	EXPECT_EQ(1, t.f.compat_asked);
	ASSERT_EQ(280, t.f.compat_needs_len);
	EXPECT_EQ(0, memcmp(s.f.needs, t.f.compat_needs, 280));
	EXPECT_TRUE(has(&s, "\"field\":\"profile_compat\""));
	EXPECT_TRUE(has(&s, why));
	EXPECT_TRUE(has(&t, why));
	EXPECT_EQ(0, s.f.nphases);
	EXPECT_EQ(0, t.f.nphases);
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_EQ(LM_ST_RUNNING, t.f.state);
	side_free(&s);
	side_free(&t);
}

/* Accepted: what the profile could not check is on the target's event. */
TEST(migrate_profile_notes_on_accept)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.f.needs[0] = 1;
	s.f.needs_len = 1;
	t.f.compat_notes = "the target VF's namespaces are unknown (x): not checked";
	migrate(&s, &t);
	EXPECT_EQ(0, s.code);
	EXPECT_EQ(0, t.code);
	EXPECT_EQ(1, t.f.compat_needs_len);
	EXPECT_TRUE(has(&t, "\"profile_notes\":\"the target VF's namespaces are unknown (x): not checked\""));
	side_free(&s);
	side_free(&t);
}

TEST(migrate_target_dev_not_open)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.open = false;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_TRUE(has(&s, "\"field\":\"target_dev\""));
	EXPECT_TRUE(has(&s, "no VMM has the target device open"));
	side_free(&s);
	side_free(&t);
}

TEST(migrate_target_vmm_refuses_prepare)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.refuse_phase = VFIO_MIG_MIG_PHASE_PREPARE;
	t.f.refuse_result = ENOMEM;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&s, "\"field\":\"vmm\""));
	EXPECT_TRUE(has(&s, "refused prepare"));
	/* the target told its VMM abort, and detached (kernel rollback) */
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_ABORT, t.f.phases[t.f.nphases - 1]);
	EXPECT_TRUE(t.f.detached);
	side_free(&s);
	side_free(&t);
}

TEST(migrate_load_fails_rolls_back)
{
	static struct side s, t;
	static const uint32_t sp[] = { VFIO_MIG_MIG_PHASE_BEGIN,
				       VFIO_MIG_MIG_PHASE_PAUSE,
				       VFIO_MIG_MIG_PHASE_ABORT };

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.fail_load = true;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(phases_are(&s.f, sp, 3));
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_FALSE(s.f.committed);
	EXPECT_FALSE(t.f.committed);
	EXPECT_EQ(LM_ST_RUNNING, t.f.state);	/* the kernel's rollback on close */
	EXPECT_TRUE(has(&s, "the target aborted: target: loading the device state failed"));
	EXPECT_TRUE(has(&s, "\"event\":\"rollback\",\"role\":\"source\",\"ok\":true"));
	side_free(&s);
	side_free(&t);
}

TEST(migrate_target_page_write_fails)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.bad_iova = FAKE_IOVA + 700 * WIRE_PAGE;	/* a data page */
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&s, "the target aborted: target: IOVA 0x3bc000 not mapped"));
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_EQ(LM_ST_RUNNING, t.f.state);
	EXPECT_FALSE(t.f.committed);
	side_free(&s);
	side_free(&t);
}

TEST(migrate_target_range_not_writable)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.bad_iova = FAKE_IOVA;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&s, "RAM range 0x100000+0x400000 is not mapped writable"));
	EXPECT_TRUE(has(&t, "\"stage\":\"ranges\""));
	/* nothing was sent: the source rolled back after begin */
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_ABORT, s.f.phases[s.f.nphases - 1]);
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	side_free(&s);
	side_free(&t);
}

TEST(migrate_no_convergence_aborts_by_default)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.f.dirty_start = 800;
	s.f.dirty_constant = true;
	s.o.downtime_ms = 1;
	s.o.max_rounds = 3;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&s, "did not converge in 3 rounds"));
	EXPECT_TRUE(has(&s, "\"reason\":\"max-rounds\""));
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_ABORT, s.f.phases[s.f.nphases - 1]);
	EXPECT_TRUE(has(&t, "the source aborted"));
	side_free(&s);
	side_free(&t);
}

TEST(migrate_no_convergence_forced_switchover)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.f.dirty_start = 800;
	s.f.dirty_constant = true;
	s.o.downtime_ms = 1;
	s.o.max_rounds = 2;
	s.o.force_switchover = true;
	migrate(&s, &t);
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code);
	EXPECT_TRUE(has(&s, "\"forced\":true"));
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	side_free(&s);
	side_free(&t);
}

TEST(migrate_source_vmm_pause_timeout_rolls_back)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.f.ack_delay_phase = 1;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&s, "did not acknowledge phase pause"));
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_ABORT, s.f.phases[s.f.nphases - 1]);
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_ABORT, t.f.phases[t.f.nphases - 1]);
	side_free(&s);
	side_free(&t);
}

/* Where @needle first is in @s's events (-1: nowhere). */
static long at(struct side *s, const char *needle)
{
	const char *p;

	fflush(s->js.out);
	p = s->log ? strstr(s->log, needle) : NULL;
	return p ? p - s->log : -1;
}

/* Where @needle last is in @s's events (-1: nowhere). */
static long last_at(struct side *s, const char *needle)
{
	const char *p, *q = NULL;

	fflush(s->js.out);
	for (p = s->log; p && (p = strstr(p, needle)); p++)
		q = p;
	return q ? q - s->log : -1;
}

/*
 * --via-shadow: once the rounds converged, before the pause, the source's
 * shadow is engaged, with the device in PRE_COPY (6.2+; RUNNING on 6.1,
 * without PRE_COPY: the variant below); one more round then sends what
 * the guest dirtied during the engage, while it runs; the rest runs as
 * ever, and the summary says the migration went through the shadow and
 * how long the engage took.
 */
static void via_shadow(struct __test_metadata *_metadata, bool precopy)
{
	static struct side s, t;
	static const uint32_t sp[] = { VFIO_MIG_MIG_PHASE_BEGIN,
				       VFIO_MIG_MIG_PHASE_PAUSE,
				       VFIO_MIG_MIG_PHASE_COMMIT };

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.f.precopy_ok = precopy;
	t.f.precopy_ok = precopy;
	s.f.dirty_start = 300;
	s.f.dirty_step = 100;
	s.o.downtime_ms = 1;	/* several rounds, until nothing is dirty */
	s.o.via_shadow = true;
	migrate(&s, &t);
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	EXPECT_EQ(sizeof(s.f.stream), t.f.rx_len);
	EXPECT_TRUE(phases_are(&s.f, sp, 3));
	EXPECT_LE(2, count(&s, "\"event\":\"round\""));
	/* once; after begin, before pause; the device running */
	EXPECT_EQ(1, s.f.engages);
	EXPECT_EQ(1, s.f.engage_nphases);
	EXPECT_EQ(precopy ? LM_ST_PRE_COPY : LM_ST_RUNNING, s.f.engage_state);
	/*
	 * after the read that closed the last round; then a read of what the
	 * engage's time dirtied, the round after the engage and its read,
	 * and the final read
	 */
	EXPECT_EQ(s.f.clears - 3, s.f.engage_clears);
	EXPECT_LT(at(&s, "\"event\":\"shadow\""),
		  last_at(&s, "\"event\":\"round\""));
	EXPECT_LT(last_at(&s, "\"event\":\"round\""),
		  at(&s, "\"phase\":\"pause\""));
	EXPECT_LT(0, at(&s, "\"reason\":\"converged\""));
	EXPECT_LT(at(&s, "\"event\":\"switchover\""),
		  at(&s, "\"event\":\"shadow\""));
	EXPECT_LT(at(&s, "\"event\":\"shadow\""),
		  at(&s, "\"phase\":\"pause\""));
	/* committed: not handed back (the kernel drops it with the device) */
	EXPECT_EQ(0, s.f.releases);
	EXPECT_TRUE(s.f.committed_stopped);
	EXPECT_TRUE(has(&s, "\"event\":\"shadow\",\"role\":\"source\",\"action\":\"engage\",\"ok\":true,\"engage_us\":"));
	EXPECT_TRUE(has(&s, ",\"engage_ns\":42000,\"message\":\"\"}"));
	EXPECT_TRUE(has(&s, "\"result\":\"migrated\""));
	EXPECT_TRUE(has(&s, precopy ?
			"\"precopy\":true,\"via_shadow\":true,\"shadow_engage_us\":" :
			"\"precopy\":false,\"via_shadow\":true,\"shadow_engage_us\":"));
	EXPECT_TRUE(has(&s, ",\"shadow_engage_ns\":42000,"));
	side_free(&s);
	side_free(&t);
}

TEST(migrate_via_shadow_engages_after_convergence_before_pause)
{
	via_shadow(_metadata, true);
}

TEST(migrate_via_shadow_without_precopy)
{
	via_shadow(_metadata, false);
}

/* Without -j: a line says the device state went through the shadow. */
TEST(migrate_via_shadow_text)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.js.enabled = false;
	t.js.enabled = false;
	s.o.via_shadow = true;
	migrate(&s, &t);
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_TRUE(has(&s, " us): the device state goes through the shadow adapter\n"))
		TH_LOG("%s", s.log);
	EXPECT_TRUE(has(&s, "shadow engaged in "));
	EXPECT_TRUE(has(&s, "(guest accesses held 42.0 us)"));
	EXPECT_LT(at(&s, "switchover (converged)"), at(&s, "shadow engaged"));
	EXPECT_TRUE(has(&s, "migrated 0000:00:03.0 -> peer:"));
	EXPECT_FALSE(has(&s, "\"event\""));
	side_free(&s);
	side_free(&t);
}

/*
 * The engage refused: the migration aborts with the kernel's reason,
 * before the VMM hears of a pause, and rolls back as any failure does.
 */
TEST(migrate_via_shadow_engage_refused_rolls_back)
{
	static struct side s, t;
	static const uint32_t sp[] = { VFIO_MIG_MIG_PHASE_BEGIN,
				       VFIO_MIG_MIG_PHASE_ABORT };

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.o.via_shadow = true;
	s.f.engage_refused = "the device's DMA did not end";
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_EQ(1, s.f.engages);
	EXPECT_TRUE(phases_are(&s.f, sp, 2));
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_FALSE(s.f.committed);
	EXPECT_FALSE(t.f.committed);
	EXPECT_EQ(LM_ST_RUNNING, t.f.state);
	EXPECT_EQ(0, s.f.releases);	/* nothing to hand back */
	EXPECT_TRUE(has(&s, "\"stage\":\"switchover\",\"message\":\"--via-shadow: shadow engage refused: the device's DMA did not end: Device or resource busy\""));
	EXPECT_TRUE(has(&s, "\"event\":\"rollback\",\"role\":\"source\",\"ok\":true"));
	EXPECT_TRUE(has(&s, "\"result\":\"failed\""));
	EXPECT_TRUE(has(&s, "\"via_shadow\":false"));
	EXPECT_FALSE(has(&s, "\"event\":\"shadow\""));
	EXPECT_NE(NULL, strstr(s.err, "migctl: migrate 0000:00:03.0: switchover failed: --via-shadow: shadow engage refused: the device's DMA did not end"))
		TH_LOG("%s", s.err);
	EXPECT_TRUE(has(&t, "the source aborted"));
	side_free(&s);
	side_free(&t);
}

/*
 * An engage the kernel could neither finish nor undo fails with the
 * shadow still engaged: the rollback hands the device back all the same.
 */
TEST(migrate_via_shadow_engage_stuck_hands_back)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.o.via_shadow = true;
	s.f.engage_stuck = true;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(1, s.f.engages);
	EXPECT_EQ(1, s.f.releases);
	EXPECT_FALSE(s.f.engaged);
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_FALSE(s.f.committed);
	EXPECT_TRUE(has(&s, "shadow engage refused: the state could not be read nor the engage undone: still engaged"));
	EXPECT_TRUE(has(&s, "\"action\":\"release\",\"ok\":true"));
	side_free(&s);
	side_free(&t);
}

/* A failure after the engage: rolled back, then the device handed back. */
TEST(migrate_via_shadow_failure_hands_back)
{
	static struct side s, t;
	static const uint32_t sp[] = { VFIO_MIG_MIG_PHASE_BEGIN,
				       VFIO_MIG_MIG_PHASE_PAUSE,
				       VFIO_MIG_MIG_PHASE_ABORT };

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.o.via_shadow = true;
	t.f.fail_load = true;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(phases_are(&s.f, sp, 3));
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_EQ(1, s.f.engages);
	EXPECT_EQ(1, s.f.releases);
	EXPECT_EQ(LM_ST_RUNNING, s.f.release_state);
	EXPECT_FALSE(s.f.engaged);
	EXPECT_LT(at(&s, "\"event\":\"rollback\",\"role\":\"source\",\"ok\":true"),
		  at(&s, "\"action\":\"release\",\"ok\":true"));
	EXPECT_LT(0, at(&s, "\"action\":\"release\",\"ok\":true"));
	EXPECT_TRUE(has(&s, "\"via_shadow\":true"));
	EXPECT_EQ(NULL, strstr(s.err, "keeps serving"));
	side_free(&s);
	side_free(&t);
}

/* The hand-back refused: a warning with the reason; the exit status stays. */
TEST(migrate_via_shadow_handback_refused_warns)
{
	static const char why[] =
		"the device refused the shadow's state (the kernel log says where); the shadow stays engaged";
	static struct side s, t;
	char want[512];

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.o.via_shadow = true;
	s.f.handback_refused = why;
	t.f.fail_load = true;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_EQ(1, s.f.releases);
	EXPECT_TRUE(s.f.engaged);
	snprintf(want, sizeof(want),
		 "\"action\":\"release\",\"ok\":false,\"engage_us\":");
	EXPECT_TRUE(has(&s, want));
	snprintf(want, sizeof(want),
		 "\"message\":\"hand-back refused: %s: Input/output error\"", why);
	EXPECT_TRUE(has(&s, want)) TH_LOG("%s", s.log);
	EXPECT_TRUE(has(&s, "\"result\":\"failed\""));
	EXPECT_TRUE(has(&s, "\"exit\":1}"));
	snprintf(want, sizeof(want),
		 "migctl: warning: migrate 0000:00:03.0: the shadow adapter keeps serving the guest (hand-back refused: %s: Input/output error); 'migctl shadow release 0000:00:03.0' hands the device back\n",
		 why);
	EXPECT_NE(NULL, strstr(s.err, want)) TH_LOG("%s", s.err);
	side_free(&s);
	side_free(&t);
}

/*
 * What the engage would refuse after all the rounds is refused at the
 * handshake, before the device is touched: no shadow for the profile
 * (sriov_shadow not loaded), or trap mode none.
 */
TEST(migrate_via_shadow_refused_at_handshake)
{
	static const char *const why[] = {
		"--via-shadow: no shadow adapter for 0000:00:03.0's profile edu (is sriov_shadow loaded?)",
		"--via-shadow: 0000:00:03.0 is in trap mode none, the shadow needs sparse or all (migctl dev set 0000:00:03.0 trap sparse, before the VMM opens it)",
	};
	static struct side s, t;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		side_init(&s, "0000:00:03.0", false);
		side_init(&t, "0000:00:05.0", true);
		s.o.via_shadow = true;
		s.f.shadow_unavailable = i == 0;
		s.f.id.trap_mode = i == 0;
		migrate(&s, &t);
		EXPECT_EQ(LM_EXIT_FAILED, s.code) TH_LOG("case %u", i);
		EXPECT_TRUE(has(&s, why[i])) TH_LOG("%s", s.log);
		EXPECT_TRUE(has(&s, "\"stage\":\"handshake\""));
		EXPECT_FALSE(s.f.attached);
		EXPECT_EQ(0, s.f.device_ops);
		EXPECT_EQ(0, s.f.engages);
		EXPECT_EQ(0, t.f.nphases);
		EXPECT_EQ(LM_ST_RUNNING, s.f.state);
		side_free(&s);
		side_free(&t);
	}
}

TEST(migrate_signal_rolls_back)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.stop = 1;		/* Ctrl-C before anything moved */
	s.f.dirty_start = 10;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&s, "interrupted by a signal"));
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_FALSE(t.f.committed);
	side_free(&s);
	side_free(&t);
}

TEST(migrate_link_dies_after_commit)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.f.cut_fd = -2;	/* the target's socket dies before DONE */
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_UNCONFIRMED, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	/* the source never runs the device again; the target runs it */
	EXPECT_TRUE(s.f.committed_stopped);
	EXPECT_EQ(LM_ST_STOP, s.f.state);
	EXPECT_EQ(LM_ST_RUNNING, t.f.state);
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_COMMIT, s.f.phases[s.f.nphases - 1]);
	EXPECT_TRUE(has(&s, "\"result\":\"committed-unconfirmed\""));
	side_free(&s);
	side_free(&t);
}

static void *garbage_peer(void *arg)
{
	int fd = *(int *)arg;
	char junk[64];

	memset(junk, 'G', sizeof(junk));
	if (write(fd, junk, sizeof(junk)) < 0)
		return NULL;
	usleep(100000);
	close(fd);
	return NULL;
}

static void *silent_peer(void *arg)
{
	int fd = *(int *)arg;
	char buf[4096];

	/* reads the HELLO, says nothing, closes late */
	if (read(fd, buf, sizeof(buf)) < 0)
		return NULL;
	usleep(2500000);
	close(fd);
	return NULL;
}

TEST(migrate_silent_peer_times_out)
{
	static struct side s;
	pthread_t th;
	int sv[2];
	FILE *saved = stderr;
	uint64_t t0;

	side_init(&s, "0000:00:03.0", false);
	s.o.timeout_ms = 300;
	s.o.vmm_timeout_ms = 300;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pthread_create(&th, NULL, silent_peer, &sv[1]);
	stderr = fopen("/dev/null", "w");
	t0 = lm_now_us();
	s.code = lm_source_run(&s.o, &s.d, sv[0], &s.out, &s.stop);
	t0 = lm_now_us() - t0;
	fclose(stderr);
	stderr = saved;
	pthread_join(th, NULL);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_TRUE(has(&s, "the peer did not send the frame within 600 ms"));
	EXPECT_LT(t0, 2000000u);	/* gave up on time, not at the close */
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	side_free(&s);
}

TEST(migrate_garbage_peer)
{
	static struct side s;
	pthread_t th;
	int sv[2];
	FILE *saved = stderr;

	side_init(&s, "0000:00:03.0", false);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pthread_create(&th, NULL, garbage_peer, &sv[1]);
	stderr = fopen("/dev/null", "w");
	s.code = lm_source_run(&s.o, &s.d, sv[0], &s.out, &s.stop);
	fclose(stderr);
	stderr = saved;
	pthread_join(th, NULL);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_TRUE(has(&s, "bad frame magic"));
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	side_free(&s);
}

/*
 * A target that answers every frame as a target does, but whose READY is
 * followed at once by an ABORT (its migctl interrupted while it waited for
 * COMMIT), both in one write: the source finds the ABORT before its commit
 * point and rolls back instead of committing a VM the target let go.
 */
static void *abort_after_ready_peer(void *arg)
{
	static uint8_t p[WIRE_ACCEPT_MAX_LEN], f[2 * WIRE_HDR_LEN + 512];
	struct wire_abort a = { .code = EINTR };
	uint64_t v[2] = { 0, 0 };
	int fd = *(int *)arg;
	struct mig_ident id;
	struct wire_conn c;
	struct wire_msg m;
	size_t n, k;

	if (wire_conn_init(&c, fd, 3000, NULL))
		return NULL;
	while (!wire_recv(&c, &m, 0)) {
		if (m.h.type == WIRE_HELLO) {
			edu_ident(&id, "0000:00:05.0");
			id.precopy = false;
			wire_send(&c, WIRE_ACCEPT, p, wire_enc_accept(p, &id, 1));
		} else if (m.h.type == WIRE_RANGES) {
			wire_send(&c, WIRE_RANGES_OK, NULL, 0);
		} else if (m.h.type == WIRE_ROUND_END) {
			wire_send(&c, WIRE_ROUND_ACK, m.p, 8);
		} else if (m.h.type == WIRE_FINAL) {
			n = wire_enc_u64s(f + WIRE_HDR_LEN, v, 2);
			wire_hdr_encode(f, WIRE_READY, n, c.tx_seq,
					wire_sum(f + WIRE_HDR_LEN, n));
			n += WIRE_HDR_LEN;
			snprintf(a.reason, sizeof(a.reason),
				 "target: interrupted by a signal");
			k = wire_enc_abort(f + n + WIRE_HDR_LEN, &a);
			wire_hdr_encode(f + n, WIRE_ABORT, k, c.tx_seq + 1,
					wire_sum(f + n + WIRE_HDR_LEN, k));
			relay_write(fd, f, n + WIRE_HDR_LEN + k);
			break;
		}
	}
	wire_conn_free(&c);
	return NULL;
}

TEST(migrate_target_aborts_after_ready)
{
	static struct side s;
	pthread_t th;
	int sv[2];

	side_init(&s, "0000:00:03.0", false);
	s.f.precopy_ok = false;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pthread_create(&th, NULL, abort_after_ready_peer, &sv[1]);
	s.code = lm_source_run(&s.o, &s.d, sv[0], &s.out, &s.stop);
	pthread_join(th, NULL);
	EXPECT_EQ(LM_EXIT_FAILED, s.code) TH_LOG("%s", s.log);
	EXPECT_TRUE(has(&s, "the target aborted after READY: target: interrupted by a signal"))
		TH_LOG("%s", s.log);
	/* not committed: the source device runs again, its VM resumed */
	EXPECT_FALSE(s.f.committed_stopped);
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	side_free(&s);
}

/*
 * An ack of round 7 before the target's ack of round 1: the source takes
 * no ack of another round for the one it waits on (the early state's ack
 * is the switchover acknowledgement), and rolls back.
 */
static uint32_t stale_ack(uint16_t type, int to, uint32_t seq)
{
	uint8_t f[WIRE_HDR_LEN + 8];

	if (type != WIRE_ROUND_ACK || seq > 2)
		return 0;
	wire_put64(f + WIRE_HDR_LEN, 7);
	wire_hdr_encode(f, WIRE_ROUND_ACK, 8, seq, wire_sum(f + WIRE_HDR_LEN, 8));
	return relay_write(to, f, sizeof(f));
}

TEST(migrate_ack_of_another_round_refused)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	migrate_relayed_inject(&s, &t, NULL, stale_ack);
	EXPECT_EQ(LM_EXIT_FAILED, s.code) TH_LOG("%s", s.log);
	EXPECT_TRUE(has(&s, "the target acknowledged another round, not round 1"))
		TH_LOG("%s", s.log);
	EXPECT_FALSE(s.f.committed_stopped);
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_FALSE(t.f.committed);
	side_free(&s);
	side_free(&t);
}

/* ---- a VM's devices in one migration (wire 1.4) ---- */

TEST(wire_hello_and_accept_of_several_devices)
{
	static uint8_t p[WIRE_HELLO_MAX_LEN + 64];
	static struct wire_hello h, h2;
	struct mig_ident id[3], id2[3];
	uint32_t i;
	size_t n;

	edu_ident(&h.src, "0000:00:03.0");
	snprintf(h.target_bdf, sizeof(h.target_bdf), "0000:00:05.0");
	h.ndev = 3;
	for (i = 0; i < 2; i++) {
		edu_ident(&h.more[i].src, i ? "0000:00:07.0" : "0000:00:04.0");
		snprintf(h.more[i].target_bdf, WIRE_STR, "0000:00:0%u.0", 8 + i);
		h.more[i].needs_len = 3 + i * 500;
		memset(h.more[i].needs, 0x61 + i, h.more[i].needs_len);
	}
	h.more[1].needs_len = WIRE_NEEDS_MAX;
	n = wire_enc_hello(p, &h);
	ASSERT_LE(n, WIRE_HELLO_MAX_LEN);
	ASSERT_EQ(0, wire_dec_hello(p, n, &h2));
	EXPECT_EQ(3u, h2.ndev);
	EXPECT_STREQ("0000:00:05.0", h2.target_bdf);
	EXPECT_STREQ("0000:00:07.0", h2.more[1].src.bdf);
	EXPECT_STREQ("0000:00:09.0", h2.more[1].target_bdf);
	EXPECT_EQ(3u, h2.more[0].needs_len);
	EXPECT_EQ(WIRE_NEEDS_MAX, h2.more[1].needs_len);
	EXPECT_EQ(0, memcmp(h.more[1].needs, h2.more[1].needs, WIRE_NEEDS_MAX));
	/* a target before 1.4 reads no PCI address, and refuses */
	EXPECT_FALSE(migctl_valid_bdf((const char *)p + WIRE_IDENT_LEN));
	/* every cut of the device records, and one record's ident broken */
	for (i = WIRE_HELLO_LEN + 9; i < n; i += 97)
		EXPECT_EQ(-EPROTO, wire_dec_hello(p, i, &h2)) TH_LOG("at %u", i);
	EXPECT_EQ(-EPROTO, wire_dec_hello(p, n - 1, &h2));
	p[WIRE_HELLO_LEN + 8 + 24 + 34] = 7;	/* the second's precopy byte */
	EXPECT_EQ(-EPROTO, wire_dec_hello(p, n, &h2));
	/* more devices than a migration takes */
	n = wire_enc_hello(p, &h);
	wire_put32(p + WIRE_HELLO_LEN + 8, WIRE_DEVS_MAX + 1);
	EXPECT_EQ(-EPROTO, wire_dec_hello(p, n, &h2));
	/* a count below 2 (a newer minor's zeros): one device */
	wire_put32(p + WIRE_HELLO_LEN + 8, 1);
	ASSERT_EQ(0, wire_dec_hello(p, n, &h2));
	EXPECT_EQ(1u, h2.ndev);
	/* ACCEPT: each ident, exactly as many as asked */
	for (i = 0; i < 3; i++)
		edu_ident(&id[i], i == 2 ? "0000:00:09.0" : "0000:00:05.0");
	id[2].early_load = true;
	n = wire_enc_accept(p, id, 3);
	ASSERT_EQ(0, wire_dec_accept(p, n, id2, 3));
	EXPECT_STREQ("0000:00:09.0", id2[2].bdf);
	EXPECT_TRUE(id2[2].early_load);
	EXPECT_EQ(-EPROTO, wire_dec_accept(p, n, id2, 2));
	EXPECT_EQ(-EPROTO, wire_dec_accept(p, n - 1, id2, 3));
	EXPECT_EQ(-EPROTO, wire_dec_accept(p, WIRE_ACCEPT_LEN, id2, 3));
	EXPECT_EQ(-EPROTO, wire_dec_accept(p, n, id2, WIRE_DEVS_MAX + 1));
	ASSERT_EQ(0, wire_dec_accept(p, n, id2, 1));	/* a 1.3 source reads one */
}

static void two_devices(struct side *s, struct side *t)
{
	side_init(s, "0000:00:03.0", false);
	side_init(t, "0000:00:05.0", true);
	side_add_dev(s, "0000:00:04.0", "0000:00:06.0");
	side_add_dev(t, "0000:00:06.0", "0000:00:06.0");
}

TEST(migrate_two_devices_of_one_vm)
{
	static struct side s, t;
	static const uint32_t sp[] = { VFIO_MIG_MIG_PHASE_BEGIN,
				       VFIO_MIG_MIG_PHASE_PAUSE,
				       VFIO_MIG_MIG_PHASE_COMMIT };
	static const uint32_t tp[] = { VFIO_MIG_MIG_PHASE_PREPARE,
				       VFIO_MIG_MIG_PHASE_START };
	struct fake *sf[2] = { &s.f, &s.fx[0] }, *tf[2] = { &t.f, &t.fx[0] };
	int i;

	two_devices(&s, &t);
	s.f.dirty_start = 300;
	s.f.dirty_step = 100;
	s.fx[0].dirty_start = 200;
	s.fx[0].dirty_step = 100;
	s.fx[0].precopy_ok = false;	/* one in PRE_COPY, one not */
	s.o.downtime_ms = 1;
	migrate(&s, &t);
	ASSERT_EQ(0, s.code) TH_LOG("%s", s.log);
	ASSERT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	for (i = 0; i < 2; i++) {
		/* each loaded its own device's stream (the fake checks) */
		EXPECT_EQ(sizeof(sf[i]->stream), tf[i]->rx_len);
		EXPECT_TRUE(phases_are(sf[i], sp, 3)) TH_LOG("source %d", i);
		EXPECT_TRUE(phases_are(tf[i], tp, 2)) TH_LOG("target %d", i);
		EXPECT_EQ(LM_ST_STOP, sf[i]->state);
		EXPECT_TRUE(sf[i]->committed_stopped);
		EXPECT_EQ(LM_ST_RUNNING, tf[i]->state);
		EXPECT_TRUE(tf[i]->committed && !tf[i]->committed_stopped);
	}
	/* pages go through the first device's mapping only */
	EXPECT_EQ(0u, s.fx[0].pages_read);
	EXPECT_EQ(0u, t.fx[0].pages_written);
	EXPECT_TRUE(has(&s, "\"dev\":\"0000:00:03.0,0000:00:04.0\",\"target_dev\":\"0000:00:05.0,0000:00:06.0\",\"devices\":2"))
		TH_LOG("%s", s.log);
	EXPECT_TRUE(has(&t, "\"dev\":\"0000:00:03.0,0000:00:04.0\",\"target_dev\":\"0000:00:05.0,0000:00:06.0\",\"devices\":2"))
		TH_LOG("%s", t.log);
	EXPECT_EQ(2, count(&s, "\"phase\":\"pause\""));
	EXPECT_EQ(1, count(&s, "\"event\":\"final\""));
	side_free(&s);
	side_free(&t);
}

/*
 * A failure of either device, at each step, rolls both back: the source's
 * devices run again, the target's are released.
 */
TEST(migrate_two_devices_fail_together)
{
	static struct side s, t;
	static const struct {
		const char *what, *msg;
	} cases[] = {
		{ "target device not open", "no VMM has the target device open" },
		{ "target VMM refuses prepare", "the target VMM refused prepare" },
		{ "source VMM pause times out", "did not acknowledge phase pause" },
		{ "target load fails", "loading the device state of 0000:00:06.0 failed" },
		{ "source stop fails", "0000:00:04.0: state stop-copy: Input/output error" },
		{ "RAM differs", "cover different RAM" },
		{ "target takes one", "more devices than this host takes in one migration" },
		{ "target device twice", "named twice in one migration" },
		{ "no arc back for one", "loading the device state of 0000:00:06.0 failed" },
	};
	unsigned int c, i, nt;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct fake *sf[2], *tf[2];

		two_devices(&s, &t);
		sf[0] = &s.f;
		sf[1] = &s.fx[0];
		tf[0] = &t.f;
		tf[1] = &t.fx[0];
		nt = 2;
		switch (c) {
		case 0:
			t.fx[0].open = false;
			break;
		case 1:
			t.fx[0].refuse_phase = VFIO_MIG_MIG_PHASE_PREPARE;
			t.fx[0].refuse_result = ENOMEM;
			break;
		case 2:
			s.fx[0].ack_delay_phase = 1;
			break;
		case 3:
			t.fx[0].fail_load = true;
			break;
		case 4:
			s.fx[0].fail_to = LM_ST_STOP_COPY;
			break;
		case 5:
			s.fx[0].log_half = true;
			break;
		case 6:
			t.ndev = 0;	/* the target has one backend */
			nt = 1;
			break;
		case 7:
			s.o.target_devs[1] = "0000:00:05.0";
			break;
		case 8:
			/* its fd closed: the kernel's abort, after the other runs */
			s.f.fail_to = LM_ST_RUNNING;
			t.fx[0].fail_load = true;
			break;
		}
		migrate(&s, &t);
		EXPECT_EQ(LM_EXIT_FAILED, s.code) TH_LOG("%s: %s", cases[c].what, s.log);
		EXPECT_EQ(LM_EXIT_FAILED, t.code) TH_LOG("%s: %s", cases[c].what, t.log);
		EXPECT_TRUE(has(&s, cases[c].msg) || has(&t, cases[c].msg))
			TH_LOG("%s: %s\n%s", cases[c].what, s.log, t.log);
		for (i = 0; i < 2; i++) {
			EXPECT_EQ(LM_ST_RUNNING, sf[i]->state) TH_LOG("%s", cases[c].what);
			EXPECT_FALSE(sf[i]->committed);
		}
		for (i = 0; i < nt; i++) {
			EXPECT_EQ(LM_ST_RUNNING, tf[i]->state) TH_LOG("%s", cases[c].what);
			EXPECT_FALSE(tf[i]->committed);
			/* a target device the VMM prepared got its abort */
			if (tf[i]->nphases)
				EXPECT_EQ(VFIO_MIG_MIG_PHASE_ABORT,
					  tf[i]->phases[tf[i]->nphases - 1]);
		}
		/* a source device that began ends with its VMM's abort */
		for (i = 0; i < 2; i++)
			if (sf[i]->nphases)
				EXPECT_EQ(VFIO_MIG_MIG_PHASE_ABORT,
					  sf[i]->phases[sf[i]->nphases - 1])
					TH_LOG("%s: source %u", cases[c].what, i);
		EXPECT_TRUE(has(&s, "\"event\":\"rollback\",\"role\":\"source\",\"ok\":true"))
			TH_LOG("%s", cases[c].what);
		/* no VMM resumes its guest onto the other device still stopped */
		for (i = 0; i < 2; i++)
			if (sf[i]->nphases &&
			    sf[i]->phases[sf[i]->nphases - 1] == VFIO_MIG_MIG_PHASE_ABORT)
				EXPECT_EQ(LM_ST_RUNNING, sf[i]->sibling_at_abort)
					TH_LOG("%s: source %u", cases[c].what, i);
		side_free(&s);
		side_free(&t);
	}
}

/*
 * Past the commit point: a later device whose commit fails ends the
 * migration unconfirmed, naming it; every device's VMM hears commit, even
 * when the first does not acknowledge it.
 */
TEST(migrate_two_devices_after_the_commit_point)
{
	static struct side s, t;

	two_devices(&s, &t);
	s.fx[0].fail_commit = true;
	s.f.refuse_phase = VFIO_MIG_MIG_PHASE_COMMIT;
	s.f.refuse_result = EIO;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_UNCONFIRMED, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_TRUE(has(&s, "0000:00:04.0 was not committed here"))
		TH_LOG("%s", s.log);
	EXPECT_TRUE(has(&s, "\"result\":\"committed-unconfirmed\""));
	EXPECT_TRUE(s.f.committed_stopped);
	EXPECT_FALSE(s.fx[0].committed);
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_COMMIT, s.f.phases[s.f.nphases - 1]);
	EXPECT_EQ(VFIO_MIG_MIG_PHASE_COMMIT,
		  s.fx[0].phases[s.fx[0].nphases - 1]);
	EXPECT_TRUE(t.f.committed && t.fx[0].committed);
	side_free(&s);
	side_free(&t);
}

TEST_HARNESS_MAIN
