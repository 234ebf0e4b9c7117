// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the migration channel's security, against a scripted
 * hostile peer: mutual TLS with X.509 and PSK (honest migrations, no
 * credentials, the wrong PSK, an impostor's server and client
 * certificates, the wrong server name), the target's allow-lists, frames
 * dripped a byte at a time, endless optional frames, 10,000 fuzzed
 * sessions, and pages whose old (unkeyed) hashes collide. After every
 * attack on the target: no byte written to guest memory, the device
 * untouched. After every attack on the source (an impostor target): no
 * page read, the device untouched.
 *
 * Credentials: scripts/tls-creds.sh makes them ($MIGCTL_TEST_CREDS, else
 * ./creds; the Makefile's run target does it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/stat.h>

#include "kselftest_harness.h"

#include "../tls.h"
#include "lm_fake.h"

static const char *creds(void)
{
	const char *d = getenv("MIGCTL_TEST_CREDS");

	return d ? d : "creds";
}

/* Credentials for one side, or abort (the test bed is broken). */
static struct tls_ctx *ctx_cipher(const char *x509, const char *psk,
				  bool server, const char *cipher)
{
	struct tls_opts o = { .server = server, .cipher = cipher };
	struct tls_ctx *x;
	static char a[512], b[512];
	char err[512];

	if (x509) {
		snprintf(a, sizeof(a), "%s/%s", creds(), x509);
		o.creds_dir = a;
	} else {
		snprintf(b, sizeof(b), "%s/%s", creds(), psk);
		o.psk_file = b;
	}
	if (tls_ctx_new(&x, &o, err, sizeof(err))) {
		fprintf(stderr, "credentials: %s\n", err);
		abort();
	}
	return x;
}

static struct tls_ctx *ctx(const char *x509, const char *psk, bool server)
{
	return ctx_cipher(x509, psk, server, NULL);
}

static void secure(struct side *s, struct side *t, const char *sx,
		   const char *tx, const char *spsk, const char *tpsk)
{
	s->o.tls = ctx(sx, spsk, false);
	t->o.tls = ctx(tx, tpsk, true);
	s->o.tls_name = "vmig-target";
}

static void insecure_free(struct side *s)
{
	tls_ctx_free(s->o.tls);
	s->o.tls = NULL;
	side_free(s);
}

/* Nothing reached the target's kernel: no page, no device operation. */
#define EXPECT_TARGET_UNTOUCHED(t) do {					\
	EXPECT_EQ(0u, (t).f.pages_written);				\
	EXPECT_EQ(0, (t).f.device_ops);					\
	EXPECT_FALSE((t).f.attached);					\
} while (0)

/* Nothing left the source's kernel: no page read, device untouched. */
#define EXPECT_SOURCE_UNTOUCHED(s) do {					\
	EXPECT_EQ(0u, (s).f.pages_read);				\
	EXPECT_EQ(0, (s).f.device_ops);					\
	EXPECT_EQ(LM_ST_RUNNING, (s).f.state);				\
} while (0)

TEST(tls_x509_migrates)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	secure(&s, &t, "x509", "x509", NULL, NULL);
	migrate(&s, &t);
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	EXPECT_TRUE(has(&s, "\"event\":\"secured\""));
	EXPECT_TRUE(has(&s, "TLS1.3"));
	/* the target knows who the source is: its certificate's subject */
	EXPECT_TRUE(has(&t, "CN=vmig-source")) TH_LOG("%s", t.log);
	EXPECT_FALSE(has(&s, "\"event\":\"insecure\""));
	insecure_free(&s);
	insecure_free(&t);
}

TEST(tls_psk_migrates)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	secure(&s, &t, NULL, NULL, "keys.psk", "keys.psk");
	t.o.allow_peer = (const char *const[]){ "vmig-source" };
	t.o.n_allow_peer = 1;
	migrate(&s, &t);
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	EXPECT_TRUE(has(&t, "\"peer\":\"vmig-source\""));
	insecure_free(&s);
	insecure_free(&t);
}

/*
 * Inside TLS (1.3) neither side makes or checks payload checksums, and the
 * source finds zero pages without them (every third page of the fake's RAM
 * is zero, the target's starts as 0xaa). A peer before 1.3 (its ident says
 * 1.2, and check_sums: it checks them inside TLS) gets them, from a 1.3
 * source (pass 1) and a 1.3 target (pass 2), and checks them. --insecure
 * (pass 3) keeps them on both sides.
 */
TEST(tls_payload_checksums_only_where_checked)
{
	static const char *const want_s[] = { "false", "true", "true", "true" };
	static const char *const want_t[] = { "false", "true", "false", "true" };
	static struct side s, t;
	char pat[64];
	int pass;

	for (pass = 0; pass < 4; pass++) {
		side_init(&s, "0000:00:03.0", false);
		side_init(&t, "0000:00:05.0", true);
		if (pass < 3)
			secure(&s, &t, "x509", "x509", NULL, NULL);
		if (pass == 1) {
			t.f.id.proto_minor = 2;
			t.o.check_sums = true;
		}
		if (pass == 2) {
			s.f.id.proto_minor = 2;
			s.o.check_sums = true;
		}
		migrate(&s, &t);
		EXPECT_EQ(0, s.code) TH_LOG("pass %d: %s", pass, s.log);
		EXPECT_EQ(0, t.code) TH_LOG("pass %d: %s", pass, t.log);
		EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
		snprintf(pat, sizeof(pat), "\"payload_checksums\":%s",
			 want_s[pass]);
		EXPECT_TRUE(has(&s, pat)) TH_LOG("pass %d: %s", pass, s.log);
		snprintf(pat, sizeof(pat), "\"payload_checksums\":%s",
			 want_t[pass]);
		EXPECT_TRUE(has(&t, pat)) TH_LOG("pass %d: %s", pass, t.log);
		/* the first round found the zero pages */
		{
			const char *z = has(&s, "\"zero_pages\":") ?
				strstr(s.log, "\"zero_pages\":") : NULL;

			ASSERT_NE(NULL, z);
			EXPECT_EQ((FAKE_PAGES + 2) / 3,
				  strtoul(z + strlen("\"zero_pages\":"), NULL, 10))
				TH_LOG("pass %d: %s", pass, s.log);
		}
		insecure_free(&s);
		insecure_free(&t);
	}
}

TEST(tls_target_refuses_a_plain_source)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	t.o.tls = ctx("x509", NULL, true);
	t.o.timeout_ms = 500;
	s.o.timeout_ms = 500;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_NOT_SERVED, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_TARGET_UNTOUCHED(t);
	EXPECT_TRUE(has(&t, "\"stage\":\"tls\""));
	insecure_free(&s);
	insecure_free(&t);
}

/*
 * Handshakes that must fail, whichever side sees it first: the source
 * reads nothing and touches nothing, the target the same.
 */
FIXTURE(refused) {
	struct side *s, *t;
};

FIXTURE_VARIANT(refused) {
	const char *src_x509, *dst_x509, *src_psk, *dst_psk;
	const char *tls_name;	/* NULL: the target's real name */
	const char *src_says;	/* in the source's log */
	/*
	 * TLS 1.3: the client's handshake ends before the server has checked
	 * the client's certificate; a source refused for its own certificate
	 * learns it at its first frame (its own device, its own business).
	 */
	bool src_finishes;
};

/* PSK: a key the target does not have */
FIXTURE_VARIANT_ADD(refused, wrong_psk) {
	.src_psk = "wrong.psk", .dst_psk = "keys.psk",
	.src_says = "TLS handshake failed",
};

/* a man in the middle: a server certificate from another CA */
FIXTURE_VARIANT_ADD(refused, impostor_target) {
	.src_x509 = "x509", .dst_x509 = "rogue",
	.src_says = "certificate is not trusted",
};

/* the right CA, but the certificate names another host */
FIXTURE_VARIANT_ADD(refused, wrong_target_name) {
	.src_x509 = "x509", .dst_x509 = "x509", .tls_name = "other-host",
	.src_says = "not trusted",
};

/* the source's own certificate is from another CA (it trusts that one) */
FIXTURE_VARIANT_ADD(refused, impostor_source) {
	.src_x509 = "rogue", .dst_x509 = "x509",
	.src_says = "TLS",
};

/* a certificate of the right CA, but for the server's role, as a client's */
FIXTURE_VARIANT_ADD(refused, server_cert_as_client) {
	.src_x509 = "swapped", .dst_x509 = "x509",
	.src_says = "TLS", .src_finishes = true,
};

/* a client certificate as the target's: it names the host, wrong purpose */
FIXTURE_VARIANT_ADD(refused, client_cert_as_server) {
	.src_x509 = "x509", .dst_x509 = "swapped", .tls_name = "vmig-source",
	.src_says = "not trusted",
};

/* X.509 against PSK */
FIXTURE_VARIANT_ADD(refused, psk_against_x509) {
	.src_psk = "keys.psk", .dst_x509 = "x509",
	.src_says = "TLS handshake failed",
};

FIXTURE_SETUP(refused)
{
	static struct side s, t;

	self->s = &s;
	self->t = &t;
	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.o.tls = ctx(variant->src_x509, variant->src_psk, false);
	t.o.tls = ctx(variant->dst_x509, variant->dst_psk, true);
	s.o.tls_name = variant->tls_name ? variant->tls_name : "vmig-target";
}

FIXTURE_TEARDOWN(refused)
{
	insecure_free(self->s);
	insecure_free(self->t);
}

TEST_F(refused, nothing_touched)
{
	struct side *s = self->s, *t = self->t;

	migrate(s, t);
	EXPECT_EQ(LM_EXIT_FAILED, s->code);
	EXPECT_EQ(LM_EXIT_NOT_SERVED, t->code) TH_LOG("%s", t->log);
	EXPECT_TRUE(has(s, variant->src_says)) TH_LOG("%s", s->log);
	EXPECT_TRUE(has(t, "\"result\":\"rejected\"")) TH_LOG("%s", t->log);
	EXPECT_TARGET_UNTOUCHED(*t);
	EXPECT_EQ(0u, s->f.pages_read);
	EXPECT_EQ(LM_ST_RUNNING, s->f.state);
	if (!variant->src_finishes) {
		EXPECT_TRUE(has(s, "\"stage\":\"tls\"")) TH_LOG("%s", s->log);
		EXPECT_SOURCE_UNTOUCHED(*s);
	}
}

TEST(tls_allow_peer_refuses_others)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	secure(&s, &t, "x509", "x509", NULL, NULL);
	t.o.allow_peer = (const char *const[]){ "someone-else", "vmig-target" };
	t.o.n_allow_peer = 2;
	migrate(&s, &t);
	EXPECT_EQ(LM_EXIT_NOT_SERVED, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(LM_EXIT_FAILED, s.code);
	EXPECT_TRUE(has(&s, "\"field\":\"peer\"")) TH_LOG("%s", s.log);
	EXPECT_TARGET_UNTOUCHED(t);
	/* the source had attached; it rolled back, no page read */
	EXPECT_EQ(0u, s.f.pages_read);
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	insecure_free(&s);
	insecure_free(&t);
}

TEST(tls_allow_peer_by_certificate_name)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	secure(&s, &t, "x509", "x509", NULL, NULL);
	t.o.allow_peer = (const char *const[]){ "vmig-source" };
	t.o.n_allow_peer = 1;
	migrate(&s, &t);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(0, s.code);
	insecure_free(&s);
	insecure_free(&t);
}

/*
 * --allow-peer against client certificates named in other ways
 * (scripts/tls-creds.sh, DIR/peer-*): a CN counts only when the
 * certificate has no DNS or IP name of its own, and only as a host name.
 */
TEST(tls_allow_peer_names)
{
	static struct side s, t;
	static const struct {
		const char *creds, *allow;
		bool ok;
	} c[] = {
		/* CN vmig-source-cn, no subjectAltName */
		{ "peer-cn", "vmig-source-cn", true },
		{ "peer-cn", "VMIG-SOURCE-CN", true },
		{ "peer-cn", "vmig-source-c", false },
		{ "peer-cn", "vmig-source", false },
		/* CN vmig-cn-other, DNS vmig-san: the CN does not count */
		{ "peer-san", "vmig-san", true },
		{ "peer-san", "vmig-cn-other", false },
		{ "peer-san", "CN=vmig-cn-other", true },	/* the whole DN */
		/* CN 10.0.0.5, IP 10.0.0.9: an address matches the IP only */
		{ "peer-ip", "10.0.0.9", true },
		{ "peer-ip", "10.0.0.5", false },
		/* CN *.vmig-test: no wildcard, nor the literal */
		{ "peer-wild", "a.vmig-test", false },
		{ "peer-wild", "*.vmig-test", false },
		/* CN "vmig,a": not a host name, escaped or not */
		{ "peer-comma", "vmig,a", false },
		{ "peer-comma", "vmig\\,a", false },
	};
	unsigned int i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		side_init(&s, "0000:00:03.0", false);
		side_init(&t, "0000:00:05.0", true);
		secure(&s, &t, c[i].creds, "x509", NULL, NULL);
		t.o.allow_peer = &c[i].allow;
		t.o.n_allow_peer = 1;
		migrate(&s, &t);
		EXPECT_EQ(c[i].ok ? 0 : LM_EXIT_NOT_SERVED, t.code)
			TH_LOG("%s, --allow-peer %s: %s", c[i].creds,
			       c[i].allow, t.log);
		EXPECT_EQ(c[i].ok ? 0 : LM_EXIT_FAILED, s.code)
			TH_LOG("%s", s.log);
		if (!c[i].ok)
			EXPECT_TARGET_UNTOUCHED(t);
		insecure_free(&s);
		insecure_free(&t);
	}
}

TEST(allow_dev_refuses_other_devices)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	secure(&s, &t, NULL, NULL, "keys.psk", "keys.psk");
	t.o.allow_dev = (const char *const[]){ "0000:00:06.0" };
	t.o.n_allow_dev = 1;
	migrate(&s, &t);
	/* not a migration of this host's: listen --once goes on waiting */
	EXPECT_EQ(LM_EXIT_NOT_SERVED, t.code) TH_LOG("%s", t.log);
	EXPECT_TRUE(has(&s, "--allow-dev")) TH_LOG("%s", s.log);
	EXPECT_TARGET_UNTOUCHED(t);
	insecure_free(&s);
	insecure_free(&t);
}

/* ---- scripted hostile sources against lm_target_run() ---- */

struct script {
	int fd;
	const uint8_t *buf;
	size_t len;
	int drip_us;		/* a byte at a time, this far apart */
	bool optional_forever;	/* unknown optional frames until refused */
	int hold_us;		/* then keep the link open this long */
};

static void *script_peer(void *arg)
{
	struct script *p = arg;
	size_t i;

	if (p->optional_forever) {
		uint8_t f[WIRE_HDR_LEN + 8] = { 0 };
		uint32_t seq;

		for (seq = 0; seq < 100000; seq++) {
			wire_hdr_encode(f, WIRE_T_OPTIONAL | 0x123, 8, seq,
					wire_sum(f + WIRE_HDR_LEN, 8));
			if (send(p->fd, f, sizeof(f), MSG_NOSIGNAL) !=
			    sizeof(f))
				break;
		}
	} else if (p->drip_us) {
		for (i = 0; i < p->len; i++) {
			if (send(p->fd, p->buf + i, 1, MSG_NOSIGNAL) != 1)
				break;
			usleep(p->drip_us);
		}
	} else if (p->len && send(p->fd, p->buf, p->len, MSG_NOSIGNAL) < 0) {
		/* the target closed early: fine (no SIGPIPE: migctl ignores it) */
	}
	if (p->hold_us) {
		struct pollfd pf = { .fd = p->fd, .events = POLLRDHUP };

		/* until the target hangs up, or the hold ends */
		poll(&pf, 1, p->hold_us / 1000);
	}
	shutdown(p->fd, SHUT_WR);
	return NULL;
}

/* The source whose device stream the scripts send (side_init's pattern). */
static struct fake script_src;

static void __attribute__((constructor)) script_src_init(void)
{
	unsigned int i;

	for (i = 0; i < FAKE_STREAM; i++)
		script_src.stream[i] = i * 31 + 7;
}

/* Run the target against @p; returns the time it took (us). */
static uint64_t against(struct side *t, struct script *p)
{
	pthread_t th;
	int sv[2];
	uint64_t t0;
	FILE *saved = stderr;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		abort();
	p->fd = sv[0];
	t->f.src = &script_src;
	stderr = fopen("/dev/null", "w");
	pthread_create(&th, NULL, script_peer, p);
	t0 = lm_now_us();
	t->code = lm_target_run(&t->o, &t->d, 1, sv[1], &t->out, &t->stop);
	t0 = lm_now_us() - t0;
	close(sv[0]);		/* the peer's write fails now, if it writes */
	pthread_join(th, NULL);
	fclose(stderr);
	stderr = saved;
	return t0;
}

/* The device index honest_session()'s STREAM frame names (1.4). */
static uint32_t script_stream_dev;

/* How honest_session() orders its end (SCRIPT_HONEST: as a source does). */
enum {
	SCRIPT_HONEST,
	SCRIPT_NO_SWITCHOVER,		/* FINAL without SWITCHOVER */
	SCRIPT_STATE_BEFORE_SWITCHOVER,	/* the stop-copy state, then SWITCHOVER */
	SCRIPT_STREAM_KIND_7,		/* a STREAM of no known kind */
	SCRIPT_ROUND_AFTER_SWITCHOVER,	/* a ROUND_END after SWITCHOVER */
	SCRIPT_TWO_SWITCHOVERS,		/* SWITCHOVER twice */
	SCRIPT_PRECOPY_AFTER_SWITCHOVER, /* pre-copy state after SWITCHOVER */
};
static int script_order;

/* An honest plain session's source frames, up to COMMIT. */
static size_t honest_session(uint8_t *out, size_t *hello_end,
			     size_t *ranges_end)
{
	static uint8_t pl[WIRE_PAGE * 5 + FAKE_STREAM];
	struct wire_hello h = {};
	struct wire_range r = { FAKE_IOVA, 16 * WIRE_PAGE };
	uint64_t desc[5], v[3];
	uint32_t seq = 0, i;
	size_t n = 0, len;

#define FRAME(type, p, l) do {						\
		wire_hdr_encode(out + n, type, l, seq++, wire_sum(p, l)); \
		memcpy(out + n + WIRE_HDR_LEN, p, l);			\
		n += WIRE_HDR_LEN + (l);				\
	} while (0)
	edu_ident(&h.src, "0000:00:03.0");
	snprintf(h.target_bdf, sizeof(h.target_bdf), "0000:00:05.0");
	h.timeout_ms = 1000;
	h.vmm_timeout_ms = 1000;
	len = wire_enc_hello(pl, &h);
	FRAME(WIRE_HELLO, pl, len);
	*hello_end = n;
	len = wire_enc_ranges(pl, &r, 1);
	FRAME(WIRE_RANGES, pl, len);
	*ranges_end = n;
	for (i = 0; i < 4; i++) {
		desc[i] = FAKE_IOVA + i * WIRE_PAGE;
		memset(pl + WIRE_PAGE * (i + 1), 0x40 + i, WIRE_PAGE);
	}
	desc[4] = (FAKE_IOVA + 8 * WIRE_PAGE) | WIRE_PG_ZERO;
	wire_pages_meta(pl, 1, desc, 5);
	FRAME(WIRE_PAGES, pl, WIRE_PAGE * 5);
	v[0] = 1;
	v[1] = 0;
	v[2] = 5;
	len = wire_enc_u64s(pl, v, 3);
	FRAME(WIRE_ROUND_END, pl, len);
	if (script_order == SCRIPT_HONEST ||
	    script_order == SCRIPT_STREAM_KIND_7 ||
	    script_order == SCRIPT_PRECOPY_AFTER_SWITCHOVER)
		FRAME(WIRE_SWITCHOVER, pl, 0);
	if (script_order == SCRIPT_TWO_SWITCHOVERS) {
		FRAME(WIRE_SWITCHOVER, pl, 0);
		FRAME(WIRE_SWITCHOVER, pl, 0);
	}
	if (script_order == SCRIPT_ROUND_AFTER_SWITCHOVER) {
		FRAME(WIRE_SWITCHOVER, pl, 0);
		v[0] = 2;
		v[2] = 0;
		len = wire_enc_u64s(pl, v, 3);
		FRAME(WIRE_ROUND_END, pl, len);
	}
	/* the device state: what script_src's stream holds */
	wire_put32(pl, script_order == SCRIPT_STREAM_KIND_7 ? 7 :
		   script_order == SCRIPT_PRECOPY_AFTER_SWITCHOVER ?
		   WIRE_STREAM_PRECOPY : WIRE_STREAM_STOPCOPY);
	wire_put32(pl + 4, script_stream_dev);
	for (i = 0; i < FAKE_STREAM; i++)
		pl[8 + i] = i * 31 + 7;
	if (script_order != SCRIPT_NO_SWITCHOVER)
		FRAME(WIRE_STREAM, pl, 8 + FAKE_STREAM);
	if (script_order == SCRIPT_STATE_BEFORE_SWITCHOVER)
		FRAME(WIRE_SWITCHOVER, pl, 0);
	v[0] = 1;
	v[2] = 5;
	v[1] = FAKE_STREAM;
	len = wire_enc_u64s(pl, v, 3);
	FRAME(WIRE_FINAL, pl, len);
	FRAME(WIRE_COMMIT, pl, 0);
#undef FRAME
	return n;
}

TEST(hostile_honest_script_migrates)
{
	static uint8_t buf[WIRE_PAGE * 10];
	static struct side t;
	struct script p = { .buf = buf };
	size_t he, re;

	side_init(&t, "0000:00:05.0", true);
	p.len = honest_session(buf, &he, &re);
	against(&t, &p);
	/* the script is right: unmodified, it migrates */
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_TRUE(t.f.committed);
	side_free(&t);
}

/*
 * A STREAM frame for a device the migration does not have (wire 1.4's
 * device index past HELLO's list): refused, nothing of it written.
 */
TEST(hostile_stream_for_another_device)
{
	static uint8_t buf[WIRE_PAGE * 10];
	static struct side t;
	struct script p = { .buf = buf };
	size_t he, re;

	side_init(&t, "0000:00:05.0", true);
	script_stream_dev = 1;
	p.len = honest_session(buf, &he, &re);
	script_stream_dev = 0;
	against(&t, &p);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&t, "STREAM for device 1 of a migration of 1"))
		TH_LOG("%s", t.log);
	EXPECT_EQ(0u, t.f.rx_len);
	EXPECT_FALSE(t.f.committed);
	EXPECT_EQ(LM_ST_RUNNING, t.f.state);
	side_free(&t);
}

/*
 * Frames out of the protocol's order, each refused before the target
 * loads or commits anything: FINAL without SWITCHOVER (the source never
 * said its VM was paused; no state either), the stop-copy state before
 * it, a STREAM of no known kind, a round, a second SWITCHOVER or
 * pre-copy state after it.
 */
static void out_of_order(struct __test_metadata *_metadata, int order,
			 const char *why)
{
	static uint8_t buf[WIRE_PAGE * 10];
	static struct side t;
	struct script p = { .buf = buf };
	size_t he, re;

	side_init(&t, "0000:00:05.0", true);
	script_order = order;
	p.len = honest_session(buf, &he, &re);
	script_order = SCRIPT_HONEST;
	against(&t, &p);
	EXPECT_EQ(LM_EXIT_FAILED, t.code) TH_LOG("%s", t.log);
	EXPECT_TRUE(has(&t, why)) TH_LOG("%s", t.log);
	EXPECT_FALSE(t.f.committed);
	side_free(&t);
}

TEST(hostile_final_without_switchover)
{
	out_of_order(_metadata, SCRIPT_NO_SWITCHOVER,
		     "FINAL before SWITCHOVER");
}

TEST(hostile_state_before_switchover)
{
	out_of_order(_metadata, SCRIPT_STATE_BEFORE_SWITCHOVER,
		     "stop-copy state before SWITCHOVER");
}

TEST(hostile_stream_of_unknown_kind)
{
	out_of_order(_metadata, SCRIPT_STREAM_KIND_7,
		     "STREAM of unknown kind 7");
}

TEST(hostile_round_after_switchover)
{
	out_of_order(_metadata, SCRIPT_ROUND_AFTER_SWITCHOVER,
		     "ROUND_END after SWITCHOVER");
}

TEST(hostile_two_switchovers)
{
	out_of_order(_metadata, SCRIPT_TWO_SWITCHOVERS,
		     "SWITCHOVER after SWITCHOVER");
}

TEST(hostile_precopy_state_after_switchover)
{
	out_of_order(_metadata, SCRIPT_PRECOPY_AFTER_SWITCHOVER,
		     "pre-copy state after SWITCHOVER");
}

/*
 * RANGES the target's VMM mapped but did not name as RAM (a P2P window,
 * say): refused before any page is written.
 */
TEST(hostile_ranges_outside_vmm_ram)
{
	static uint8_t buf[WIRE_PAGE * 10];
	static struct side t;
	struct script p = { .buf = buf };
	size_t he, re;

	side_init(&t, "0000:00:05.0", true);
	t.f.ram_named_pages = 8;	/* the honest script's range is 16 */
	p.len = honest_session(buf, &he, &re);
	against(&t, &p);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&t, "is not in the RAM the target's VMM named"))
		TH_LOG("%s", t.log);
	EXPECT_EQ(0u, t.f.pages_written);
	EXPECT_FALSE(t.f.committed);
	side_free(&t);
}

/* A target VMM that names no RAM: nothing can be checked, refused. */
TEST(vmm_without_ram_refused)
{
	static uint8_t buf[WIRE_PAGE * 10];
	static struct side t;
	struct script p = { .buf = buf };
	size_t he, re;

	side_init(&t, "0000:00:05.0", true);
	t.f.ram_unnamed = true;
	p.len = honest_session(buf, &he, &re);
	against(&t, &p);
	EXPECT_NE(0, t.code);
	EXPECT_TRUE(has(&t, "named no RAM in its prepare ack")) TH_LOG("%s", t.log);
	EXPECT_EQ(0u, t.f.pages_written);
	EXPECT_FALSE(t.f.committed);
	side_free(&t);
}

/* One byte every 20 ms: before, each byte renewed the frame's timeout. */
TEST(hostile_slow_drip_is_bounded)
{
	static uint8_t buf[WIRE_PAGE * 10];
	static struct side t;
	struct script p = { .buf = buf, .drip_us = 20000 };
	uint64_t us;
	size_t he, re;

	side_init(&t, "0000:00:05.0", true);
	t.o.timeout_ms = 300;
	p.len = honest_session(buf, &he, &re);
	us = against(&t, &p);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&t, "did not send the frame within 300 ms")) TH_LOG("%s", t.log);
	/* header within 300 ms, then the payload within 300 ms more */
	EXPECT_LT(us, 1000000u);
	EXPECT_TARGET_UNTOUCHED(t);
	side_free(&t);
}

TEST(hostile_endless_optional_frames)
{
	static struct side t;
	struct script p = { .optional_forever = true };
	uint64_t us;

	side_init(&t, "0000:00:05.0", true);
	us = against(&t, &p);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&t, "more than 64 frames of unknown optional types")) TH_LOG("%s", t.log);
	EXPECT_LT(us, 1000000u);
	EXPECT_TARGET_UNTOUCHED(t);
	side_free(&t);
}

/*
 * A HELLO asking the target to wait 24 days for the source's VMM: the
 * target waits no longer than its own --vmm-timeout-ms.
 */
TEST(hostile_huge_peer_timeout_is_clamped)
{
	static uint8_t buf[WIRE_PAGE * 10];
	static struct side t;
	struct script p = { .buf = buf };
	struct wire_hello h = {};
	uint8_t pl[WIRE_HELLO_LEN];
	uint64_t us;
	size_t len;

	side_init(&t, "0000:00:05.0", true);
	t.o.timeout_ms = 300;
	t.o.vmm_timeout_ms = 300;
	edu_ident(&h.src, "0000:00:03.0");
	snprintf(h.target_bdf, sizeof(h.target_bdf), "0000:00:05.0");
	h.timeout_ms = 0x7fff0000u;
	h.vmm_timeout_ms = 0x7fff0000u;
	len = wire_enc_hello(pl, &h);
	wire_hdr_encode(buf, WIRE_HELLO, len, 0, wire_sum(pl, len));
	memcpy(buf + WIRE_HDR_LEN, pl, len);
	p.len = WIRE_HDR_LEN + len;
	p.hold_us = 4000000;	/* then silence, the link open */
	us = against(&t, &p);
	EXPECT_EQ(LM_EXIT_FAILED, t.code);
	EXPECT_TRUE(has(&t, "waiting for RANGES")) TH_LOG("%s", t.log);
	EXPECT_TRUE(has(&t, "within 600 ms")) TH_LOG("%s", t.log);
	EXPECT_LT(us, 2000000u);
	side_free(&t);
}

static unsigned int fuzz_n(void)
{
	const char *n = getenv("MIGCTL_FUZZ_N");

	return n ? atoi(n) : 10000;
}

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/*
 * 10,000 sessions, each an honest one with a few bytes changed and perhaps
 * cut short. None may commit; none may take long; a change in HELLO must
 * leave the device untouched, one in RANGES guest memory.
 */
FIXTURE(fuzz) {
};

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

/* about 12 ms a session under ASan: more than the default 30 s */
TEST_F_TIMEOUT(fuzz, hostile_fuzzed_sessions, 600)
{
	static uint8_t ref[WIRE_PAGE * 10], buf[WIRE_PAGE * 10];
	static struct side t;
	unsigned int i, k, bad = 0, early = 0, slow = 0;
	size_t len, he, re, first;

	side_init(&t, "0000:00:05.0", true);
	t.o.timeout_ms = 200;
	t.o.vmm_timeout_ms = 200;
	len = honest_session(ref, &he, &re);
	for (i = 0; i < fuzz_n(); i++) {
		struct script p = { .buf = buf, .len = len };
		unsigned int nmut = 1 + rnd() % 4;
		uint64_t us;

		memcpy(buf, ref, len);
		/* half the sessions are hit in HELLO or RANGES */
		first = len;
		for (k = 0; k < nmut; k++) {
			size_t pos = i % 2 ? rnd() % re : rnd() % len;

			buf[pos] ^= 1 + rnd() % 255;
			if (pos < first)
				first = pos;
		}
		if (rnd() % 4 == 0)
			p.len = rnd() % len;
		memset(&t.f.pages_written, 0, sizeof(t.f.pages_written));
		t.f.device_ops = 0;
		t.f.attached = false;
		t.f.committed = false;
		t.f.state = LM_ST_RUNNING;
		t.f.rx_len = 0;
		fflush(t.js.out);
		us = against(&t, &p);
		if (t.code == 0 || t.f.committed)
			bad++;
		/* HELLO hit: nothing touched; RANGES hit: no page written */
		if ((first < he && (t.f.attached || t.f.device_ops)) ||
		    (first < re && t.f.pages_written))
			early++;
		if (us > 2000000)
			slow++;
		if (getenv("MIGCTL_FUZZ_SHOW") && us > 50000) {
			fflush(t.js.out);
			printf("# session %u: %llu us first %zu len %zu\n%s", i,
			       (unsigned long long)us, first, p.len, t.log);
		}
		/* the log would grow to megabytes: start it afresh */
		fclose(t.js.out);
		free(t.log);
		t.log = NULL;
		t.js.out = open_memstream(&t.log, &t.log_len);
		t.out.text = t.js.out;
	}
	EXPECT_EQ(0u, bad);
	EXPECT_EQ(0u, early);
	EXPECT_EQ(0u, slow);
	side_free(&t);
}

/*
 * Two different pages with one mh_hash64(): its first lane takes words
 * 0, 4, 8, ...; change word 0, and word 4 so that the lane's state after
 * it is what it was. A guest can do this to a page between two rounds.
 */
static void collide(const uint8_t *page, uint8_t *out)
{
	const uint64_t k1 = 0x9e3779b97f4a7c15ull, k3 = 0x94d049bb133111ebull;
	uint64_t w0, w4, a0 = MH_SEED_PAGE ^ k1, a1, b1;

	memcpy(out, page, WIRE_PAGE);
	memcpy(&w0, page, 8);
	memcpy(&w4, page + 32, 8);
	a1 = ((a0 ^ w0) << 29 | (a0 ^ w0) >> 35) * k3;
	w0 ^= 0x5a5a;
	b1 = ((a0 ^ w0) << 29 | (a0 ^ w0) >> 35) * k3;
	w4 ^= a1 ^ b1;
	memcpy(out, &w0, 8);
	memcpy(out + 32, &w4, 8);
}

#define VICTIM	5u	/* a data page of the fake's RAM */

static void write_collision(struct fake *f)
{
	uint8_t twin[WIRE_PAGE];

	/* the first clearing read starts the log; the second ends round 1 */
	if (f->clears != 2)
		return;
	collide(f->ram + VICTIM * WIRE_PAGE, twin);
	memcpy(f->ram + VICTIM * WIRE_PAGE, twin, WIRE_PAGE);
	f->dirty_bits[VICTIM / 64] |= 1ull << (VICTIM % 64);
}

TEST(colliding_old_hashes_are_both_sent)
{
	static struct side s, t;
	uint8_t twin[WIRE_PAGE];

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	/* the construction works: two pages, one old hash */
	collide(s.f.ram + VICTIM * WIRE_PAGE, twin);
	ASSERT_NE(0, memcmp(twin, s.f.ram + VICTIM * WIRE_PAGE, WIRE_PAGE));
	ASSERT_EQ(mh_hash64(twin, WIRE_PAGE, MH_SEED_PAGE),
		  mh_hash64(s.f.ram + VICTIM * WIRE_PAGE, WIRE_PAGE,
			    MH_SEED_PAGE));
	s.f.on_clear = write_collision;
	s.f.precopy_ok = false;
	s.o.max_rounds = 3;
	s.o.downtime_ms = 100000;
	migrate(&s, &t);
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	/* the twin reached the target: it was not taken as unchanged */
	EXPECT_EQ(0, memcmp(s.f.ram + VICTIM * WIRE_PAGE,
			    t.f.ram + VICTIM * WIRE_PAGE, WIRE_PAGE));
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	side_free(&s);
	side_free(&t);
}

/* ---- kTLS over TCP loopback, where the kernel has it ---- */

/* A connected TCP pair over loopback. 0, or -1 (no loopback here). */
static int tcp_pair(int sv[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	sv[0] = sv[1] = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len))
		goto fail;
	sv[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof(a)))
		goto fail;
	sv[1] = accept(l, NULL, NULL);
	if (sv[1] < 0)
		goto fail;
	close(l);
	return 0;
fail:
	if (l >= 0)
		close(l);
	if (sv[0] >= 0)
		close(sv[0]);
	return -1;
}

/* 1: kTLS works here; 0: no TLS ULP; -1: no loopback TCP. */
static int have_ktls(void)
{
	int sv[2], ok;

	if (tcp_pair(sv))
		return -1;
	ok = !setsockopt(sv[0], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
	close(sv[0]);
	close(sv[1]);
	return ok;
}

TEST(ktls_migrates_over_tcp)
{
	static struct side s, t;
	pthread_t th;
	int sv[2];
	FILE *saved = stderr;

	switch (have_ktls()) {
	case -1:
		SKIP(return, "no TCP over loopback here");
	case 0:
		SKIP(return, "this kernel has no TLS ULP (CONFIG_TLS, module tls)");
	}
	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	secure(&s, &t, "x509", "x509", NULL, NULL);
	ASSERT_EQ(0, tcp_pair(sv));
	s.fd = sv[0];
	t.fd = sv[1];
	t.f.src = &s.f;
	stderr = fopen("/dev/null", "w");
	pthread_create(&th, NULL, target_thread, &t);
	s.code = lm_source_run(&s.o, &s.d, s.fd, &s.out, &s.stop);
	fflush(s.js.out);
	pthread_join(th, NULL);
	fclose(stderr);
	stderr = saved;
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	EXPECT_TRUE(has(&s, "\"ktls\":\"tx+rx\"")) TH_LOG("%s", s.log);
	EXPECT_TRUE(has(&t, "\"ktls\":\"tx+rx\"")) TH_LOG("%s", t.log);
	insecure_free(&s);
	insecure_free(&t);
}

/*
 * An AES-GCM key encrypts at most TLS_GCM_RECORD_LIMIT records (RFC 8446
 * 5.5); lowered here through the environment so that a small migration
 * reaches it: the source stops sending, says why, and rolls back.
 */
TEST(tls_aes_gcm_record_limit_rolls_back)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.o.tls = ctx_cipher("x509", NULL, false, "aes-gcm");
	t.o.tls = ctx_cipher("x509", NULL, true, NULL);
	s.o.tls_name = "vmig-target";
	setenv("MIGCTL_TLS_RECORD_LIMIT", "40", 1);
	migrate(&s, &t);
	unsetenv("MIGCTL_TLS_RECORD_LIMIT");
	EXPECT_EQ(1, s.code) TH_LOG("%s", s.log);
	EXPECT_NE(0, t.code) TH_LOG("%s", t.log);
	EXPECT_TRUE(has(&s, "records sent under one AES-GCM key"))
		TH_LOG("%s", s.log);
	EXPECT_TRUE(has(&s, "--tls-cipher chacha20"));
	/* the source runs on, the target let the device go uncommitted */
	EXPECT_EQ(LM_ST_RUNNING, s.f.state);
	EXPECT_FALSE(s.f.committed);
	EXPECT_FALSE(t.f.committed);
	EXPECT_TRUE(t.f.detached);
	insecure_free(&s);
	insecure_free(&t);
}

TEST(tls_chacha20_has_no_record_limit)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.o.tls = ctx_cipher("x509", NULL, false, "chacha20");
	t.o.tls = ctx_cipher("x509", NULL, true, "chacha20");
	s.o.tls_name = "vmig-target";
	setenv("MIGCTL_TLS_RECORD_LIMIT", "40", 1);
	migrate(&s, &t);
	unsetenv("MIGCTL_TLS_RECORD_LIMIT");
	EXPECT_EQ(0, s.code) TH_LOG("%s", s.log);
	EXPECT_EQ(0, t.code) TH_LOG("%s", t.log);
	EXPECT_TRUE(has(&s, "CHACHA20")) TH_LOG("%s", s.log);
	EXPECT_EQ(0, memcmp(s.f.ram, t.f.ram, FAKE_PAGES * WIRE_PAGE));
	insecure_free(&s);
	insecure_free(&t);
}

TEST(tls_cipher_mismatch_refused)
{
	static struct side s, t;

	side_init(&s, "0000:00:03.0", false);
	side_init(&t, "0000:00:05.0", true);
	s.o.tls = ctx_cipher("x509", NULL, false, "chacha20");
	t.o.tls = ctx_cipher("x509", NULL, true, "aes-gcm");
	s.o.tls_name = "vmig-target";
	migrate(&s, &t);
	EXPECT_EQ(1, s.code) TH_LOG("%s", s.log);
	EXPECT_NE(0, t.code);
	EXPECT_TRUE(has(&s, "TLS handshake failed")) TH_LOG("%s", s.log);
	EXPECT_SOURCE_UNTOUCHED(s);
	EXPECT_TARGET_UNTOUCHED(t);
	insecure_free(&s);
	insecure_free(&t);
}

TEST(credentials_errors_are_clear)
{
	struct tls_opts o = { .server = true };
	struct tls_ctx *x;
	char err[512], path[512];
	FILE *f;

	o.creds_dir = "/nonexistent";
	EXPECT_NE(0, tls_ctx_new(&x, &o, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "/nonexistent")) TH_LOG("%s", err);
	/* a PSK file others can read is refused */
	snprintf(path, sizeof(path), "/tmp/migctl-psk-%d", getpid());
	f = fopen(path, "w");
	ASSERT_NE(NULL, f);
	fprintf(f, "me:00112233445566778899aabbccddeeff\n");
	fclose(f);
	chmod(path, 0644);
	o.creds_dir = NULL;
	o.psk_file = path;
	EXPECT_EQ(-EPERM, tls_ctx_new(&x, &o, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "chmod 600"));
	/* a short key is refused */
	chmod(path, 0600);
	f = fopen(path, "w");
	fprintf(f, "me:0011\n");
	fclose(f);
	EXPECT_EQ(-EINVAL, tls_ctx_new(&x, &o, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "16 to 64 bytes")) TH_LOG("%s", err);
	unlink(path);
}

/*
 * The CA whose owner is another user (mode 0644 notwithstanding) is
 * refused: its owner could choose whom migctl trusts.
 */
TEST(ca_owned_by_another_user_refused)
{
	struct tls_opts o = { .server = true };
	char dir[64], cmd[256], err[512], ca[128];
	struct tls_ctx *x;

	if (geteuid())
		SKIP(return, "needs root to give the CA to another user");
	snprintf(dir, sizeof(dir), "/tmp/migctl-creds-%d", getpid());
	snprintf(cmd, sizeof(cmd), "rm -rf %s && cp -a creds/x509 %s", dir, dir);
	ASSERT_EQ(0, system(cmd));
	o.creds_dir = dir;
	ASSERT_EQ(0, tls_ctx_new(&x, &o, err, sizeof(err))) TH_LOG("%s", err);
	tls_ctx_free(x);
	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", dir);
	ASSERT_EQ(0, chown(ca, 65534, 65534));
	EXPECT_EQ(-EPERM, tls_ctx_new(&x, &o, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "owned by uid 65534")) TH_LOG("%s", err);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	system(cmd);
}

/* A peer's name reaches the operator without its control bytes. */
TEST(peer_name_printable)
{
	char s[] = "CN=evil\x1b[2J\x1b]0;pwned\x07x,O=\x7fok \xc3\xa9";

	tls_printable(s);
	EXPECT_STREQ("CN=evil?[2J?]0;pwned?x,O=?ok \xc3\xa9", s);
}

TEST_HARNESS_MAIN
