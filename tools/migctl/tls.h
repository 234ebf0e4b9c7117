/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The migration channel's security: mutual TLS 1.3 with GnuTLS, X.509
 * certificates (QEMU's file layout) or pre-shared keys, and the kernel's
 * TLS (kTLS) for the records once the handshake is done, where the kernel
 * offers it. Documentation/live-migration.rst, "Security".
 */
#ifndef MIGCTL_TLS_H
#define MIGCTL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct wire_conn;
struct tls_ctx;

/* Credentials, as the options name them. */
struct tls_opts {
	const char *creds_dir;		/* --tls-creds: X.509 */
	const char *psk_file;		/* --psk-file: "identity:hexkey" lines */
	const char *psk_identity;	/* migrate --psk-identity (default: the first) */
	const char *cipher;		/* --tls-cipher: NULL, "aes-gcm", "chacha20" */
	bool server;			/* listen */
};

#define TLS_PSK_MIN	16		/* bytes of key, at least */
/*
 * Records one AES-GCM key may encrypt: RFC 8446 5.5 allows 2^24.5 full-size
 * records per key with a 2^-57 margin; kTLS on the kernels we support
 * cannot update keys, so a connection stops sending at 2^24 (256 GiB of
 * full records). ChaCha20-Poly1305 has no such limit.
 */
#define TLS_GCM_RECORD_LIMIT	(1ULL << 24)
#define TLS_REC_MAX		16384	/* plaintext bytes per record */
#define TLS_NAME_MAX	128

/*
 * Load the credentials once (errors show at start, not at the first
 * peer). 0, or -errno with @err set.
 */
int tls_ctx_new(struct tls_ctx **x, const struct tls_opts *o, char *err,
		size_t errlen);
void tls_ctx_free(struct tls_ctx *x);
/* "x509" or "psk" */
const char *tls_ctx_kind(const struct tls_ctx *x);

/*
 * Handshake on @c's connected socket before @deadline_ms (CLOCK_MONOTONIC
 * ms). The client checks the server's certificate against the CA and
 * @peer_name (X.509), or proves the PSK; the server requires the client's
 * certificate (signed by the CA) or PSK. On success the peer's identity
 * (certificate subject DN, or PSK identity) is in c->peer_id, and the
 * records go through kTLS when the kernel took the keys. 0 or -errno,
 * c->err says why.
 */
int tls_start(struct wire_conn *c, struct tls_ctx *x, const char *peer_name,
	      long long deadline_ms);
/*
 * Is the authenticated peer one of @allow (@n names)? A certificate
 * matches a name it is valid for (subject alternative name or common
 * name, as for a host name) or its full subject DN; a PSK its identity.
 */
bool tls_peer_allowed(struct wire_conn *c, const char *const *allow,
		      unsigned int n);
void tls_end(struct wire_conn *c);

/* Userspace records (no kTLS): bytes moved, or -EAGAIN (wait), -errno. */
ssize_t tls_send(struct wire_conn *c, const struct iovec *iov, int niov);
ssize_t tls_recv(struct wire_conn *c, void *p, size_t len);
/* Does GnuTLS hold decrypted bytes not yet received? */
bool tls_readable(struct wire_conn *c);

/* Control bytes of a peer's name made '?' (in place). */
void tls_printable(char *s);

#endif
