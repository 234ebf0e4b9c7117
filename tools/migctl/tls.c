// SPDX-License-Identifier: GPL-2.0
/*
 * The migration channel's TLS (tls.h): GnuTLS for the handshake and the
 * credentials, kTLS for the records where the kernel has it.
 *
 * Only TLS 1.3, no session tickets and no resumption: every connection
 * authenticates afresh, and nothing follows the handshake but application
 * records, which the kernel can then take over. GnuTLS reads the socket
 * through pull(), which never reads past the end of the record GnuTLS asked
 * for, so no byte of the first application record is left in GnuTLS's
 * buffers when the kernel takes the receive side.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/tls.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tls.h"
#include "wire.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define PSK_MAX		64		/* identities in a PSK file */
#define PSK_KEY_MAX	64		/* bytes of one key */
#define REC_HDR		5
#define REC_MAX		TLS_REC_MAX

/* TLS 1.3 only; the PSK modes with (EC)DHE for forward secrecy first. */
#define PRIO_X509	"NORMAL:-VERS-ALL:+VERS-TLS1.3"
#define PRIO_PSK	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+ECDHE-PSK:+DHE-PSK:+PSK"

struct psk_entry {
	char id[TLS_NAME_MAX];
	unsigned char key[PSK_KEY_MAX];
	unsigned int len;
};

struct tls_ctx {
	bool server, psk;
	gnutls_priority_t prio;
	gnutls_certificate_credentials_t x509;
	gnutls_psk_server_credentials_t psk_srv;
	gnutls_psk_client_credentials_t psk_cli;
	struct psk_entry *keys;		/* the PSK file */
	unsigned int nkeys;
	char client_id[TLS_NAME_MAX];	/* migrate: the identity it uses */
};

static int global_ok;

#define ERR(...) snprintf(err, errlen, __VA_ARGS__)

static int global_init(char *err, size_t errlen)
{
	int ret;

	if (global_ok)
		return 0;
	ret = gnutls_global_init();
	if (ret < 0) {
		ERR("GnuTLS: %s", gnutls_strerror(ret));
		return -EIO;
	}
	global_ok = 1;
	return 0;
}

/*
 * Read a secret: a regular file (no symlink followed) of this user's (or
 * root's), that no one else can read or write, read from the descriptor
 * that was checked. 0 with @out (gnutls_free() it, after zeroing), or
 * -errno with @err set.
 */
static int read_private(const char *path, gnutls_datum_t *out, char *err,
			size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	out->data = NULL;
	out->size = 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		ERR("%s: %s%s", path, strerror(errno),
		    errno == ELOOP ? " (a symbolic link: give the file itself)" : "");
		return ret;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		ERR("%s: not a regular file", path);
		ret = -EINVAL;
	} else if (st.st_uid != geteuid() && st.st_uid != 0) {
		ERR("%s: owned by uid %u, not by this user or root", path,
		    (unsigned int)st.st_uid);
		ret = -EPERM;
	} else if (st.st_mode & 077) {
		ERR("%s: readable or writable by others (mode %04o): chmod 600 it",
		    path, (unsigned int)(st.st_mode & 07777));
		ret = -EPERM;
	} else if (st.st_size > 65536) {
		ERR("%s: larger than 64 KiB", path);
		ret = -EFBIG;
	}
	if (!ret) {
		out->data = gnutls_malloc(st.st_size + 1);
		if (!out->data)
			ret = -ENOMEM;
	}
	if (!ret) {
		n = read(fd, out->data, st.st_size);
		if (n != st.st_size) {
			ERR("%s: short read", path);
			ret = -EIO;
		} else {
			out->data[n] = 0;
			out->size = n;
		}
	}
	close(fd);
	if (ret && out->data) {
		gnutls_free(out->data);
		out->data = NULL;
	}
	return ret;
}

static void free_private(gnutls_datum_t *d)
{
	if (d->data) {
		explicit_bzero(d->data, d->size);
		gnutls_free(d->data);
	}
	d->data = NULL;
}

/* What decides whom we trust must not be writable by others. */
static int trusted_file(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st)) {
		ERR("%s: %s", path, strerror(errno));
		return -errno;
	}
	if (st.st_mode & 022) {
		ERR("%s: writable by others (mode %04o): whoever can change it chooses whom migctl trusts",
		    path, (unsigned int)(st.st_mode & 07777));
		return -EPERM;
	}
	/* its owner can change it too, whatever its mode */
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		ERR("%s: owned by uid %u, not by this user or root: whoever owns it chooses whom migctl trusts",
		    path, (unsigned int)st.st_uid);
		return -EPERM;
	}
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The PSK file, as GnuTLS and QEMU write it: one "identity:hexkey" a line.
 * Blank lines and lines starting with '#' are skipped.
 */
static int load_psk(struct tls_ctx *x, const char *path, char *err,
		    size_t errlen)
{
	char line[512];
	unsigned int lineno = 0;
	gnutls_datum_t d;
	FILE *f;
	int ret;

	ret = read_private(path, &d, err, errlen);
	if (ret)
		return ret;
	f = fmemopen(d.data, d.size ? d.size : 1, "r");
	x->keys = calloc(PSK_MAX, sizeof(*x->keys));
	if (!f || !x->keys) {
		if (f)
			fclose(f);
		free_private(&d);
		ERR("out of memory");
		return -ENOMEM;
	}
	ret = 0;
	while (!ret && fgets(line, sizeof(line), f)) {
		struct psk_entry *e;
		char *colon, *hex;
		size_t n, i;

		lineno++;
		n = strcspn(line, "\r\n");
		if (line[n] == 0 && !feof(f)) {
			ERR("%s:%u: line too long", path, lineno);
			ret = -EINVAL;
			break;
		}
		line[n] = 0;
		if (!line[0] || line[0] == '#')
			continue;
		colon = strchr(line, ':');
		if (!colon || colon == line || colon - line >= TLS_NAME_MAX) {
			ERR("%s:%u: expected identity:hexkey", path, lineno);
			ret = -EINVAL;
			break;
		}
		if (x->nkeys == PSK_MAX) {
			ERR("%s: more than %u keys", path, PSK_MAX);
			ret = -E2BIG;
			break;
		}
		e = &x->keys[x->nkeys];
		*colon = 0;
		hex = colon + 1;
		n = strlen(hex);
		if (n % 2 || n / 2 > PSK_KEY_MAX || n / 2 < TLS_PSK_MIN) {
			ERR("%s:%u: the key of '%s' must be %u to %u bytes in hex",
			    path, lineno, line, TLS_PSK_MIN, PSK_KEY_MAX);
			ret = -EINVAL;
			break;
		}
		for (i = 0; i < n / 2; i++) {
			int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				ERR("%s:%u: the key of '%s' is not hex", path,
				    lineno, line);
				ret = -EINVAL;
				break;
			}
			e->key[i] = hi << 4 | lo;
		}
		e->len = n / 2;
		memcpy(e->id, line, colon - line + 1);
		x->nkeys++;
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	free_private(&d);
	if (!ret && !x->nkeys) {
		ERR("%s: no keys", path);
		ret = -EINVAL;
	}
	return ret;
}

static const struct psk_entry *find_psk(const struct tls_ctx *x,
					const char *id)
{
	unsigned int i;

	for (i = 0; i < x->nkeys; i++)
		if (!strcmp(x->keys[i].id, id))
			return &x->keys[i];
	return NULL;
}

/* The server's key lookup: an unknown identity fails the handshake. */
static int psk_lookup(gnutls_session_t s, const char *id, gnutls_datum_t *key)
{
	const struct tls_ctx *x = gnutls_session_get_ptr(s);
	const struct psk_entry *e = find_psk(x, id);

	if (!e)
		return -1;
	key->data = gnutls_malloc(e->len);
	if (!key->data)
		return -1;
	memcpy(key->data, e->key, e->len);
	key->size = e->len;
	return 0;
}

static int load_x509(struct tls_ctx *x, const char *dir, char *err,
		     size_t errlen)
{
	const char *who = x->server ? "server" : "client";
	char ca[4096], crl[4096], cert[4096], key[4096];
	gnutls_datum_t kd = {}, cd = {};
	int ret;

	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", dir);
	snprintf(crl, sizeof(crl), "%s/ca-crl.pem", dir);
	snprintf(cert, sizeof(cert), "%s/%s-cert.pem", dir, who);
	snprintf(key, sizeof(key), "%s/%s-key.pem", dir, who);
	ret = trusted_file(dir, err, errlen);
	if (!ret)
		ret = trusted_file(ca, err, errlen);
	if (!ret && !access(crl, F_OK))
		ret = trusted_file(crl, err, errlen);
	if (!ret)
		ret = read_private(key, &kd, err, errlen);
	if (ret)
		return ret;
	ret = gnutls_certificate_allocate_credentials(&x->x509);
	if (ret < 0)
		goto fail;
	ret = gnutls_certificate_set_x509_trust_file(x->x509, ca,
						     GNUTLS_X509_FMT_PEM);
	if (ret <= 0) {
		ERR("%s: %s", ca, ret ? gnutls_strerror(ret) :
		    "no CA certificate in it");
		free_private(&kd);
		return -EINVAL;
	}
	if (!access(crl, F_OK)) {
		ret = gnutls_certificate_set_x509_crl_file(x->x509, crl,
							   GNUTLS_X509_FMT_PEM);
		if (ret < 0) {
			ERR("%s: %s", crl, gnutls_strerror(ret));
			free_private(&kd);
			return -EINVAL;
		}
	}
	ret = gnutls_load_file(cert, &cd);
	if (ret >= 0)
		ret = gnutls_certificate_set_x509_key_mem(x->x509, &cd, &kd,
							  GNUTLS_X509_FMT_PEM);
	gnutls_free(cd.data);
	free_private(&kd);
	if (ret < 0) {
		ERR("%s, %s: %s", cert, key, gnutls_strerror(ret));
		return -EINVAL;
	}
	return 0;
fail:
	free_private(&kd);
	ERR("GnuTLS: %s", gnutls_strerror(ret));
	return -EIO;
}

int tls_ctx_new(struct tls_ctx **out, const struct tls_opts *o, char *err,
		size_t errlen)
{
	char prio[160];
	struct tls_ctx *x;
	int ret;

	*out = NULL;
	ret = global_init(err, errlen);
	if (ret)
		return ret;
	x = calloc(1, sizeof(*x));
	if (!x) {
		ERR("out of memory");
		return -ENOMEM;
	}
	x->server = o->server;
	x->psk = !!o->psk_file;
	if (x->psk) {
		const struct psk_entry *e;
		gnutls_datum_t k;

		ret = load_psk(x, o->psk_file, err, errlen);
		if (ret)
			goto fail;
		if (x->server) {
			ret = gnutls_psk_allocate_server_credentials(&x->psk_srv);
			if (ret < 0)
				goto gfail;
			gnutls_psk_set_server_credentials_function(x->psk_srv,
								   psk_lookup);
		} else {
			e = o->psk_identity ? find_psk(x, o->psk_identity) :
			    &x->keys[0];
			if (!e) {
				ERR("%s: no key for identity '%s'", o->psk_file,
				    o->psk_identity);
				ret = -ENOENT;
				goto fail;
			}
			snprintf(x->client_id, sizeof(x->client_id), "%s", e->id);
			ret = gnutls_psk_allocate_client_credentials(&x->psk_cli);
			if (ret < 0)
				goto gfail;
			k.data = (unsigned char *)e->key;
			k.size = e->len;
			ret = gnutls_psk_set_client_credentials(x->psk_cli, e->id,
								&k, GNUTLS_PSK_KEY_RAW);
			if (ret < 0)
				goto gfail;
		}
	} else {
		ret = load_x509(x, o->creds_dir, err, errlen);
		if (ret)
			goto fail;
	}
	if (o->cipher && strcmp(o->cipher, "aes-gcm") &&
	    strcmp(o->cipher, "chacha20")) {
		ERR("unknown TLS cipher '%s' (aes-gcm or chacha20)", o->cipher);
		ret = -EINVAL;
		goto fail;
	}
	snprintf(prio, sizeof(prio), "%s%s", x->psk ? PRIO_PSK : PRIO_X509,
		 !o->cipher ? "" : !strcmp(o->cipher, "chacha20") ?
		 ":-CIPHER-ALL:+CHACHA20-POLY1305" :
		 ":-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM");
	ret = gnutls_priority_init(&x->prio, prio, NULL);
	if (ret < 0)
		goto gfail;
	*out = x;
	return 0;
gfail:
	ERR("GnuTLS: %s", gnutls_strerror(ret));
	ret = -EIO;
fail:
	tls_ctx_free(x);
	return ret;
}

void tls_ctx_free(struct tls_ctx *x)
{
	if (!x)
		return;
	if (x->prio)
		gnutls_priority_deinit(x->prio);
	if (x->x509)
		gnutls_certificate_free_credentials(x->x509);
	if (x->psk_srv)
		gnutls_psk_free_server_credentials(x->psk_srv);
	if (x->psk_cli)
		gnutls_psk_free_client_credentials(x->psk_cli);
	if (x->keys) {
		explicit_bzero(x->keys, PSK_MAX * sizeof(*x->keys));
		free(x->keys);
	}
	free(x);
}

const char *tls_ctx_kind(const struct tls_ctx *x)
{
	return x->psk ? "psk" : "x509";
}

/*
 * GnuTLS's reads: the 5-byte record header, then at most the record's
 * body, so the socket keeps whatever follows the record GnuTLS is reading.
 */
static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t size)
{
	struct wire_conn *c = p;
	size_t want;
	ssize_t r;

	if (c->tls_rbody)
		want = c->tls_rbody;
	else
		want = REC_HDR - c->tls_rhdr_got;
	if (size < want)
		want = size;
	r = recv(c->fd, buf, want, MSG_DONTWAIT);
	if (r <= 0)
		return r;
	if (c->tls_rbody) {
		c->tls_rbody -= r;
	} else {
		memcpy(c->tls_rhdr + c->tls_rhdr_got, buf, r);
		c->tls_rhdr_got += r;
		if (c->tls_rhdr_got == REC_HDR) {
			c->tls_rhdr_got = 0;
			c->tls_rbody = (size_t)c->tls_rhdr[3] << 8 | c->tls_rhdr[4];
		}
	}
	return r;
}

static ssize_t push(gnutls_transport_ptr_t p, const void *buf, size_t size)
{
	struct wire_conn *c = p;

	return send(c->fd, buf, size, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int wait_io(struct wire_conn *c, bool out, long long deadline)
{
	struct pollfd p = { .fd = c->fd, .events = out ? POLLOUT : POLLIN };
	long long left;

	for (;;) {
		if (c->stop && *c->stop) {
			snprintf(c->err, sizeof(c->err), "interrupted by a signal");
			return -EINTR;
		}
		left = deadline - wire_now_ms();
		if (left <= 0) {
			snprintf(c->err, sizeof(c->err),
				 "TLS handshake: no answer in time (is the peer a migctl with TLS?)");
			return -ETIMEDOUT;
		}
		if (poll(&p, 1, left < 200 ? left : 200) > 0)
			return 0;
	}
}

/*
 * Hand the record keys to the kernel, one direction. The kernel then
 * encrypts sendmsg() and decrypts recv() itself. 0, or -errno (nothing
 * changed for that direction).
 */
static int ktls_dir(struct wire_conn *c, gnutls_session_t s, bool rx)
{
	gnutls_datum_t mac, iv, key;
	unsigned char seq[8];
	union {
		struct tls12_crypto_info_aes_gcm_128 g128;
		struct tls12_crypto_info_aes_gcm_256 g256;
		struct tls12_crypto_info_chacha20_poly1305 cc;
	} ci;
	size_t len;
	int ret;

	ret = gnutls_record_get_state(s, rx ? 1 : 0, &mac, &iv, &key, seq);
	if (ret < 0)
		return -EIO;
	memset(&ci, 0, sizeof(ci));
	/* TLS 1.3's 12-byte IV: the kernel's salt, then its iv */
#define GCM(c, type, klen) do {						\
		if (iv.size != 12 || key.size != (klen))		\
			return -EINVAL;					\
		(c).info.version = TLS_1_3_VERSION;			\
		(c).info.cipher_type = (type);				\
		memcpy((c).salt, iv.data, 4);				\
		memcpy((c).iv, iv.data + 4, 8);				\
		memcpy((c).key, key.data, (klen));			\
		memcpy((c).rec_seq, seq, 8);				\
		len = sizeof(c);					\
	} while (0)
	switch (gnutls_cipher_get(s)) {
	case GNUTLS_CIPHER_AES_128_GCM:
		GCM(ci.g128, TLS_CIPHER_AES_GCM_128, 16);
		break;
	case GNUTLS_CIPHER_AES_256_GCM:
		GCM(ci.g256, TLS_CIPHER_AES_GCM_256, 32);
		break;
#undef GCM
	case GNUTLS_CIPHER_CHACHA20_POLY1305:
		if (iv.size != 12 || key.size != 32)
			return -EINVAL;
		ci.cc.info.version = TLS_1_3_VERSION;
		ci.cc.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(ci.cc.iv, iv.data, 12);
		memcpy(ci.cc.key, key.data, 32);
		memcpy(ci.cc.rec_seq, seq, 8);
		len = sizeof(ci.cc);
		break;
	default:
		return -EOPNOTSUPP;
	}
	ret = setsockopt(c->fd, SOL_TLS, rx ? TLS_RX : TLS_TX, &ci, len);
	explicit_bzero(&ci, sizeof(ci));
	return ret ? -errno : 0;
}

/* Move the records to the kernel where it can; the rest stays in GnuTLS. */
static void ktls_enable(struct wire_conn *c, gnutls_session_t s)
{
	int ret;

	if (getenv("MIGCTL_NO_KTLS")) {
		snprintf(c->ktls_why, sizeof(c->ktls_why), "MIGCTL_NO_KTLS");
		return;
	}
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		/* no kTLS here (not TCP, no tls module) */
		snprintf(c->ktls_why, sizeof(c->ktls_why), "TCP_ULP tls: %s",
			 strerror(errno));
		return;
	}
	ret = ktls_dir(c, s, false);
	c->ktls_tx = !ret;
	if (ret)
		snprintf(c->ktls_why, sizeof(c->ktls_why), "TLS_TX: %s",
			 strerror(-ret));
	/*
	 * The receive side only at a record boundary, with nothing GnuTLS
	 * read but has not given us.
	 */
	if (c->tls_rhdr_got || c->tls_rbody || gnutls_record_check_pending(s)) {
		snprintf(c->ktls_why, sizeof(c->ktls_why),
			 "TLS_RX: GnuTLS holds part of a record");
		return;
	}
	ret = ktls_dir(c, s, true);
	c->ktls_rx = !ret;
	if (ret) {
		size_t n = strlen(c->ktls_why);

		snprintf(c->ktls_why + n, sizeof(c->ktls_why) - n, "%sTLS_RX: %s",
			 n ? "; " : "", strerror(-ret));
	}
}

/*
 * The peer's name as the operator reads it, in a terminal or a log: its
 * certificate's DN (GnuTLS escapes RFC 4514's specials, not control
 * bytes) or PSK identity may hold escape sequences; those bytes become
 * '?'.
 */
void tls_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/*
 * Records a connection may send under its key (0: no limit). The
 * environment may lower it (MIGCTL_TLS_RECORD_LIMIT, for the tests).
 */
static uint64_t record_limit(gnutls_cipher_algorithm_t ci)
{
	const char *e = getenv("MIGCTL_TLS_RECORD_LIMIT");
	uint64_t lim = TLS_GCM_RECORD_LIMIT, v;
	char *end;

	if (ci != GNUTLS_CIPHER_AES_128_GCM && ci != GNUTLS_CIPHER_AES_256_GCM)
		return 0;
	if (e) {
		errno = 0;
		v = strtoull(e, &end, 10);
		if (!errno && !*end && v && v < lim)
			lim = v;
	}
	return lim;
}

static void peer_identity(struct wire_conn *c, gnutls_session_t s, bool psk)
{
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt;
	unsigned int n = 0;
	size_t len = sizeof(c->peer_id);

	c->peer_id[0] = 0;
	if (psk) {
		const char *id = gnutls_psk_server_get_username(s);

		snprintf(c->peer_id, sizeof(c->peer_id), "%s", id ? id : "");
		tls_printable(c->peer_id);
		return;
	}
	certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || !n || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_dn(crt, c->peer_id, &len) < 0)
		c->peer_id[0] = 0;
	gnutls_x509_crt_deinit(crt);
	tls_printable(c->peer_id);
}

/*
 * What a session's handshake checks in the peer's certificate. GnuTLS
 * keeps a pointer to it (gnutls_session_set_verify_cert2(): "must remain
 * valid for the lifetime of the session"): allocated with the session,
 * freed with it in tls_end(), never on a stack.
 */
struct tls_verify {
	gnutls_typed_vdata_st v[2];
	char name[256];		/* the server's name the client expects */
};

int tls_start(struct wire_conn *c, struct tls_ctx *x, const char *peer_name,
	      long long deadline)
{
	struct tls_verify *vd;
	gnutls_session_t s;
	int ret;

	ret = gnutls_init(&s, (x->server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
			  GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS);
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "TLS: %s", gnutls_strerror(ret));
		return -EIO;
	}
	c->tls = s;
	c->tls_psk = x->psk;
	gnutls_session_set_ptr(s, x);
	gnutls_priority_set(s, x->prio);
	if (x->psk) {
		ret = gnutls_credentials_set(s, GNUTLS_CRD_PSK, x->server ?
					     (void *)x->psk_srv : (void *)x->psk_cli);
	} else {
		ret = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, x->x509);
		/*
		 * Each side's certificate for its role only (QEMU checks key
		 * purposes too): a server certificate of the shared CA does not
		 * make a source, nor a client certificate a target.
		 */
		if (peer_name && strlen(peer_name) >= sizeof(vd->name)) {
			snprintf(c->err, sizeof(c->err),
				 "TLS: the peer's name is too long");
			return -EINVAL;
		}
		vd = calloc(1, sizeof(*vd));
		if (!vd) {
			snprintf(c->err, sizeof(c->err), "TLS: out of memory");
			return -ENOMEM;
		}
		free(c->tls_verify);
		c->tls_verify = vd;
		if (x->server) {
			vd->v[0].type = GNUTLS_DT_KEY_PURPOSE_OID;
			vd->v[0].data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT;
			gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
			gnutls_session_set_verify_cert2(s, vd->v, 1, 0);
		} else {
			/* the server must be @peer_name, as its certificate says */
			unsigned int n = 0;

			if (peer_name) {
				strcpy(vd->name, peer_name);
				vd->v[n].type = GNUTLS_DT_DNS_HOSTNAME;
				vd->v[n++].data = (unsigned char *)vd->name;
			}
			vd->v[n].type = GNUTLS_DT_KEY_PURPOSE_OID;
			vd->v[n++].data = (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER;
			gnutls_session_set_verify_cert2(s, vd->v, n, 0);
			if (peer_name && !strchr(peer_name, ':') &&
			    strspn(peer_name, "0123456789.") != strlen(peer_name))
				gnutls_server_name_set(s, GNUTLS_NAME_DNS, peer_name,
						       strlen(peer_name));
		}
	}
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "TLS: %s", gnutls_strerror(ret));
		return -EIO;
	}
	gnutls_transport_set_ptr(s, c);
	gnutls_transport_set_pull_function(s, pull);
	gnutls_transport_set_push_function(s, push);
	for (;;) {
		ret = gnutls_handshake(s);
		if (ret == GNUTLS_E_SUCCESS)
			break;
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
			ret = wait_io(c, gnutls_record_get_direction(s), deadline);
			if (ret)
				return ret;
			continue;
		}
		if (!gnutls_error_is_fatal(ret)) {
			/* a warning alert: go on, but not past the deadline */
			if (wire_now_ms() < deadline)
				continue;
			snprintf(c->err, sizeof(c->err),
				 "TLS handshake: no answer in time (%s)",
				 gnutls_strerror(ret));
			c->broken = true;
			return -ETIMEDOUT;
		}
		if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
			gnutls_datum_t out = {};
			unsigned int st = gnutls_session_get_verify_cert_status(s);

			gnutls_certificate_verification_status_print(st,
				GNUTLS_CRT_X509, &out, 0);
			snprintf(c->err, sizeof(c->err),
				 "TLS: the peer's certificate is not trusted: %s",
				 out.data ? (char *)out.data : "?");
			gnutls_free(out.data);
		} else {
			snprintf(c->err, sizeof(c->err), "TLS handshake failed: %s%s",
				 gnutls_strerror(ret),
				 ret == GNUTLS_E_PREMATURE_TERMINATION ||
				 ret == GNUTLS_E_PULL_ERROR ||
				 ret == GNUTLS_E_PUSH_ERROR ||
				 ret == GNUTLS_E_UNEXPECTED_PACKET_LENGTH ?
				 " (the peer hung up: wrong credentials, or no TLS there?)" :
				 ret == GNUTLS_E_UNEXPECTED_PACKET ?
				 " (the peer does not speak TLS: --insecure there?)" : "");
		}
		c->broken = true;
		return ret == GNUTLS_E_PREMATURE_TERMINATION ? -ECONNRESET :
		       -EACCES;
	}
	if (x->server)
		peer_identity(c, s, x->psk);
	else if (x->psk)
		/* a PSK proves the group, not which host of it answered */
		snprintf(c->peer_id, sizeof(c->peer_id), "psk:%s",
			 x->client_id);
	else
		snprintf(c->peer_id, sizeof(c->peer_id), "%s",
			 peer_name ? peer_name : "");
	ktls_enable(c, s);
	/* records are authenticated: the payload checksum adds nothing */
	c->sum_unchecked = true;
	c->tx_records = 0;
	c->tx_record_limit = record_limit(gnutls_cipher_get(s));
	snprintf(c->tls_info, sizeof(c->tls_info), "%s %s", gnutls_protocol_get_name(
		 gnutls_protocol_get_version(s)),
		 gnutls_cipher_get_name(gnutls_cipher_get(s)));
	return 0;
}

/* A DNS host name as written: ASCII letters, digits, hyphens and dots. */
static bool dns_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
			return false;
	return true;
}

/*
 * Does certificate @crt name host @name: a dNSName or IP address in its
 * subjectAltName or, when it has neither, its one CN (RFC 6125 6.4.4)?
 * GnuTLS's check leaves the CN out for a certificate whose key purposes
 * do not include a server's, which a source's client certificate need
 * not have: the CN is compared here, as GnuTLS would for a server. Only a
 * host name is taken from it: not an IP address (those match the
 * iPAddress SAN alone), not a wildcard, not a name with characters that
 * the DN's string form escapes.
 */
static bool crt_names(gnutls_x509_crt_t crt, const char *name)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char buf[256];
	size_t sz;
	int i, ret;

	if (gnutls_x509_crt_check_hostname2(crt, name,
					    GNUTLS_VERIFY_DO_NOT_ALLOW_WILDCARDS))
		return true;
	if (!dns_name(name) || inet_pton(AF_INET, name, addr) == 1 ||
	    inet_pton(AF_INET6, name, addr) == 1)
		return false;
	for (i = 0;; i++) {
		sz = sizeof(buf);
		ret = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &sz,
							   NULL);
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		/* names of its own, or one this cannot read: no CN */
		if (ret == GNUTLS_SAN_DNSNAME || ret == GNUTLS_SAN_IPADDRESS ||
		    ret < 0)
			return false;
	}
	sz = sizeof(buf);
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
					  0, buf, &sz) < 0 ||
	    sz != strlen(buf) || !dns_name(buf))
		return false;
	/* two CNs: which one names the host is not clear */
	sz = 0;
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1,
					  0, NULL, &sz) !=
	    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return false;
	return !strcasecmp(buf, name);
}

bool tls_peer_allowed(struct wire_conn *c, const char *const *allow,
		      unsigned int n)
{
	gnutls_session_t s = c->tls;
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt;
	unsigned int i, nc = 0;
	bool ok = false;

	if (!s)
		return false;
	if (c->tls_psk) {
		for (i = 0; i < n; i++)
			if (!strcmp(allow[i], c->peer_id))
				return true;
		return false;
	}
	certs = gnutls_certificate_get_peers(s, &nc);
	if (!certs || !nc || gnutls_x509_crt_init(&crt) < 0)
		return false;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0)
		for (i = 0; i < n && !ok; i++)
			ok = !strcmp(allow[i], c->peer_id) ||
			     crt_names(crt, allow[i]);
	gnutls_x509_crt_deinit(crt);
	return ok;
}

void tls_end(struct wire_conn *c)
{
	if (c->tls)
		gnutls_deinit(c->tls);
	c->tls = NULL;
	free(c->tls_verify);	/* after the session that points into it */
	c->tls_verify = NULL;
	free(c->tls_stage);
	c->tls_stage = NULL;
}

static ssize_t tls_fail(struct wire_conn *c, const char *what, ssize_t r)
{
	c->broken = true;
	snprintf(c->err, sizeof(c->err), "TLS %s: %s", what,
		 gnutls_strerror((int)r));
	return -EPROTO;
}

ssize_t tls_send(struct wire_conn *c, const struct iovec *iov, int niov)
{
	gnutls_session_t s = c->tls;
	size_t n = 0;
	ssize_t r;
	int i;

	if (!c->tls_pending) {
		if (!c->tls_stage) {
			c->tls_stage = malloc(REC_MAX);
			if (!c->tls_stage)
				return -ENOMEM;
		}
		/* one full record from the front of @iov */
		for (i = 0; i < niov && n < REC_MAX; i++) {
			size_t k = iov[i].iov_len < REC_MAX - n ?
				   iov[i].iov_len : REC_MAX - n;

			memcpy(c->tls_stage + n, iov[i].iov_base, k);
			n += k;
		}
		if (!n)
			return 0;
		r = gnutls_record_send(s, c->tls_stage, n);
	} else {
		/* GnuTLS holds the record: let it finish sending */
		r = gnutls_record_send(s, NULL, 0);
		n = c->tls_pending;
	}
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
		c->tls_pending = n;
		return -EAGAIN;
	}
	c->tls_pending = 0;
	if (r < 0)
		return tls_fail(c, "send", r);
	return r;
}

ssize_t tls_recv(struct wire_conn *c, void *p, size_t len)
{
	ssize_t r = gnutls_record_recv(c->tls, p, len);

	if (r >= 0)
		return r;
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	if (r == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;	/* closed without close_notify: as a close */
	return tls_fail(c, "receive", r);
}

bool tls_readable(struct wire_conn *c)
{
	return c->tls && gnutls_record_check_pending(c->tls) > 0;
}
