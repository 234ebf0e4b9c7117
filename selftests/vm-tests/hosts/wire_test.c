// SPDX-License-Identifier: GPL-2.0
/*
 * migctl's wire code (tools/migctl/wire.c, linked in) on the guest's kTLS,
 * which the build machine's kernel may lack: a PAGES frame whose data
 * pages the kernel decrypts as splice() takes them from the socket, and
 * the records it must refuse on the way.
 *
 * The link's two ends get fixed AES-128-GCM keys (TLS 1.3 records) by
 * setsockopt(), without a handshake: what is tested is what happens after
 * one. The records a test sends are made by kTLS itself on a second
 * connection and read there as ciphertext, so that a test can tamper with
 * them, or put an alert between them, before they reach the receiving end.
 *
 * Dynamically linked, against GnuTLS and libsodium as migctl is (the
 * guest's image holds migctl's libraries).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "testbed.h"
#include "wire.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* One direction of a test link's kTLS, under a fixed key: 0, or -errno. */
static int ktls_set(int fd, int dir)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info = { .version = TLS_1_3_VERSION,
			  .cipher_type = TLS_CIPHER_AES_GCM_128 },
	};

	memset(ci.key, 0x5a, sizeof(ci.key));
	memset(ci.iv, 0x11, sizeof(ci.iv));
	memset(ci.salt, 0x22, sizeof(ci.salt));
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) ||
	    setsockopt(fd, SOL_TLS, dir, &ci, sizeof(ci)))
		return -errno;
	return 0;
}

/* What one record carries: @len bytes of @p, or an alert (@p NULL). */
struct piece {
	const uint8_t *p;
	size_t len;
};

/*
 * The TLS records kTLS makes of @pc (one record each: one sendmsg()
 * without MSG_MORE each), as ciphertext in @out: its length, or -1 with
 * @why set.
 */
static ssize_t ktls_records(const struct piece *pc, unsigned int n,
			    uint8_t *out, size_t cap, char why[128])
{
	static const uint8_t alert[2] = { 2, 10 };	/* fatal, unexpected */
	char cbuf[CMSG_SPACE(1)] = { 0 };
	struct msghdr mh = { 0 };
	struct cmsghdr *cm;
	struct iovec iov;
	unsigned int i;
	size_t got = 0;
	int e[2];
	ssize_t r = -1;

	if (tb_tcp_pair(e)) {
		snprintf(why, 128, "no TCP over loopback: %m");
		return -1;
	}
	r = ktls_set(e[0], TLS_TX);
	if (r) {
		snprintf(why, 128, "TLS_TX: %s", strerror(-r));
		r = -1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		iov.iov_base = (void *)(pc[i].p ? pc[i].p : alert);
		iov.iov_len = pc[i].p ? pc[i].len : sizeof(alert);
		mh = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1 };
		if (!pc[i].p) {
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_TLS;
			cm->cmsg_type = TLS_SET_RECORD_TYPE;
			cm->cmsg_len = CMSG_LEN(1);
			*CMSG_DATA(cm) = 21;	/* alert */
		}
		r = sendmsg(e[0], &mh, 0);
		if (r != (ssize_t)iov.iov_len) {
			snprintf(why, 128, "record %u: sendmsg %zd: %m", i, r);
			r = -1;
			goto out;
		}
	}
	shutdown(e[0], SHUT_WR);
	while (got < cap && (r = read(e[1], out + got, cap - got)) > 0)
		got += r;
	if (!r) {
		r = got;
	} else {
		snprintf(why, 128, "reading the records: %zd: %m", r);
		r = -1;
	}
out:
	close(e[0]);
	close(e[1]);
	return r;
}

#define HEAD	(WIRE_HDR_LEN + WIRE_PAGE)	/* a PAGES frame's header, descriptors */
#define FRAME	(HEAD + 2 * WIRE_PAGE)		/* ... and its two data pages */

/* Frame @k (0, 1) at @f: two data pages and a zero page, its data @k's own. */
static void make_frame(uint8_t *f, unsigned int k)
{
	const uint64_t desc[3] = { 0x100000 | WIRE_PG_DATA,
				   0x200000 | WIRE_PG_ZERO,
				   0x300000 | WIRE_PG_DATA };
	unsigned int i;

	wire_pages_meta(f + WIRE_HDR_LEN, 1, desc, 3);
	for (i = 0; i < 2 * WIRE_PAGE; i++)
		f[HEAD + i] = i * (13 + 2 * k) + 5;
	wire_hdr_encode(f, WIRE_PAGES, 3 * WIRE_PAGE, k,
			wire_sum(f + WIRE_HDR_LEN, 3 * WIRE_PAGE));
}

/*
 * PAGES frames on a kTLS link land as on plain TCP: each head by recv(),
 * the data pages spliced from the socket into the sink, the kernel
 * decrypting each record as splice() takes it. As a source sends them
 * (the head with MSG_MORE, the data after it), records do not end where
 * frames do: the first record holds the first head and some of its data
 * (splice() takes the rest of a record recv() began), the second the rest
 * of that data, the next frame's head and the start of its data (recv()
 * then reads on in a record splice() began).
 *
 * A record that fails authentication, and an alert between a frame's
 * records, are refused (-EPROTO, c->err says which, the link broken), and
 * nothing from them or after them reaches the sink. A TLS link that
 * GnuTLS decrypts in migctl does not splice at all.
 */
TEST(ktls_pages_spliced_in_and_bad_records_refused)
{
	static uint8_t stream[2 * FRAME], got[2 * WIRE_PAGE];
	static uint8_t ct[8 * WIRE_PAGE];
	const char *const why[3] = { NULL, "failed authentication",
				     "TLS alert" };
	const struct piece good[3] = {
		{ stream, HEAD + 1000 },
		{ stream + HEAD + 1000, FRAME - 900 },
		{ stream + FRAME + HEAD + 100, 2 * WIRE_PAGE - 100 },
	};
	struct piece bad[4] = {
		{ stream, HEAD + 1000 },
		{ stream + HEAD + 1000, 4000 },
		{ stream + HEAD + 5000, 2 * WIRE_PAGE - 5000 },
	};
	int sv[2], pfd[2], sink, c, k, gnutls_session;
	struct wire_conn b;
	struct wire_msg m;
	struct stat st;
	char err[256];
	ssize_t n;

	make_frame(stream, 0);
	make_frame(stream + FRAME, 1);
	for (c = 0; c < 3; c++) {
		if (c == 2) {
			/* an alert between the data's last two records */
			bad[3] = bad[2];
			bad[2] = (struct piece){ NULL, 0 };
		}
		n = ktls_records(c ? bad : good, c == 2 ? 4 : 3, ct,
				 sizeof(ct), err);
		ASSERT_LT(0, n) TH_LOG("kTLS made no records: %s", err);
		if (c == 1)
			ct[n - 20] ^= 0x40;	/* inside the last record */
		ASSERT_EQ(0, tb_tcp_pair(sv));
		ASSERT_EQ(0, ktls_set(sv[1], TLS_RX));
		ASSERT_EQ(n, write(sv[0], ct, n));
		ASSERT_EQ(0, wire_conn_init(&b, sv[1], 2000, NULL));
		/* a TLS link (no GnuTLS call is made on it here) */
		b.tls = &gnutls_session;
		b.sum_unchecked = true;
		EXPECT_EQ(-EOPNOTSUPP, wire_recv_head(&b, &m, 0));
		b.ktls_rx = true;
		ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
		sink = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		ASSERT_LE(0, sink);
		for (k = 0; k < (c ? 1 : 2); k++) {
			const uint8_t *f = stream + k * FRAME;

			ASSERT_EQ(0, wire_recv_head(&b, &m, 0))
				TH_LOG("frame %d: %s", k, b.err);
			EXPECT_EQ(WIRE_PAGES, m.h.type);
			EXPECT_EQ(2 * WIRE_PAGE, m.rest);
			EXPECT_EQ(0, memcmp(m.p, f + WIRE_HDR_LEN, WIRE_PAGE));
			err[0] = 0;
			if (c)
				break;
			ASSERT_EQ(0, wire_splice_rest(&b, &m, pfd, sink, err,
						      sizeof(err)))
				TH_LOG("frame %d: %s / %s", k, b.err, err);
			EXPECT_EQ(0, m.rest);
			ASSERT_EQ((ssize_t)sizeof(got),
				  pread(sink, got, sizeof(got), k * sizeof(got)));
			EXPECT_EQ(0, memcmp(got, f + HEAD, sizeof(got)))
				TH_LOG("frame %d's data", k);
		}
		if (c) {
			EXPECT_EQ(-EPROTO, wire_splice_rest(&b, &m, pfd, sink,
							    err, sizeof(err)))
				TH_LOG("%s / %s", b.err, err);
			EXPECT_NE(NULL, strstr(b.err, why[c])) TH_LOG("%s", b.err);
			EXPECT_TRUE(b.broken);
			/* the data's first two records landed, nothing after */
			ASSERT_EQ(0, fstat(sink, &st));
			EXPECT_EQ(5000, st.st_size);
			ASSERT_EQ(5000, pread(sink, got, sizeof(got), 0));
			EXPECT_EQ(0, memcmp(got, stream + HEAD, 5000));
		}
		TH_LOG("case %d: %s", c, c ? b.err : "two frames landed");
		b.tls = NULL;
		close(sink);
		close(pfd[0]);
		close(pfd[1]);
		close(sv[0]);
		wire_conn_free(&b);
	}
}

static double thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct later {
	int fd;
	const uint8_t *p;
	size_t len;
	unsigned int ms;
};

static void *write_later(void *arg)
{
	struct later *l = arg;

	usleep(l->ms * 1000);
	if (write(l->fd, l->p, l->len) != (ssize_t)l->len)
		return (void *)1;
	return NULL;
}

/*
 * Half a record in the socket: the receiver waits for the rest without
 * spinning (6.1's kTLS polls readable while a record is still arriving,
 * and the read then finds nothing): a 300 ms wait that times out costs
 * the waiting thread well under 300 ms of CPU. And the rest, written
 * 150 ms later, is read as soon as it comes.
 */
TEST(ktls_partial_record_waited_for_without_spinning)
{
	static uint8_t frame[FRAME], ct[4 * WIRE_PAGE];
	const struct piece head[1] = { { frame, HEAD } };
	struct later l;
	struct wire_conn b;
	struct wire_msg m;
	double cpu, wall;
	int sv[2], round, gnutls_session;
	pthread_t th;
	char err[128];
	ssize_t n;
	void *thr;

	make_frame(frame, 0);
	n = ktls_records(head, 1, ct, sizeof(ct), err);
	ASSERT_LT(0, n) TH_LOG("kTLS made no records: %s", err);
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, tb_tcp_pair(sv));
		ASSERT_EQ(0, ktls_set(sv[1], TLS_RX));
		ASSERT_EQ(n / 2, write(sv[0], ct, n / 2));
		ASSERT_EQ(0, wire_conn_init(&b, sv[1], 2000, NULL));
		b.tls = &gnutls_session;
		b.ktls_rx = true;
		b.sum_unchecked = true;
		wall = wire_now_ms();
		cpu = thread_cpu_ms();
		if (!round) {
			EXPECT_EQ(-ETIMEDOUT, wire_recv_head(&b, &m, 300));
			cpu = thread_cpu_ms() - cpu;
			wall = wire_now_ms() - wall;
			TH_LOG("a 300 ms wait on half a record: %.0f ms, %.1f ms of CPU",
			       wall, cpu);
			EXPECT_LE(280, wall);
			EXPECT_GT(100, cpu);
		} else {
			l = (struct later){ sv[0], ct + n / 2, n - n / 2, 150 };
			ASSERT_EQ(0, pthread_create(&th, NULL, write_later, &l));
			EXPECT_EQ(0, wire_recv_head(&b, &m, 0)) TH_LOG("%s", b.err);
			wall = wire_now_ms() - wall;
			ASSERT_EQ(0, pthread_join(th, &thr));
			EXPECT_EQ(NULL, thr);
			EXPECT_EQ(0, memcmp(m.p, frame + WIRE_HDR_LEN, WIRE_PAGE));
			TH_LOG("the rest written after 150 ms: read after %.0f ms",
			       wall);
			EXPECT_GT(400, wall);
		}
		b.tls = NULL;
		close(sv[0]);
		wire_conn_free(&b);
	}
}

TEST_HARNESS_MAIN
