// SPDX-License-Identifier: GPL-2.0
/*
 * tcp_bench: raw TCP throughput of one connection, the baseline that
 * page-streaming benchmarks compare against.
 *
 *   tcp_bench server PORT [CONNECTIONS] [--ktls CIPHER]
 *   tcp_bench client HOST PORT SECONDS [--ktls CIPHER]
 *
 * HOST is an IPv4 or IPv6 address (the guests have no resolver).
 * The server accepts CONNECTIONS (default 1, 0: no limit) connections one
 * after another, reads and discards what each sends and, at its end,
 * answers with the byte count it received. The client sends 128 KiB writes
 * for SECONDS, closes its side, waits for that count (the data has then
 * arrived, not merely been queued) and prints 'tcp_mib_per_s: N'. It
 * retries a refused or unreachable connection for up to 60 s, so it may be
 * started before the server.
 *
 * --ktls CIPHER (aes-128-gcm, aes-256-gcm, chacha20-poly1305; both ends
 * the same): the raw socket of kTLS's kind, the baseline of a migration
 * over kTLS. The client's data goes through the kernel's TLS 1.3 records
 * (TLS_TX), which the server's kernel decrypts and checks (TLS_RX); the
 * server's count comes back in the clear. The key is a fixed test
 * pattern, no handshake: it measures the record layer, nothing else.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK		(128u << 10)
#define RETRY_SECONDS	60

#ifndef SOL_TLS
#define SOL_TLS		282
#endif

static const char *ktls_cipher;	/* --ktls, or NULL */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: tcp_bench server PORT [CONNECTIONS] [--ktls CIPHER]\n"
			"       tcp_bench client HOST PORT SECONDS [--ktls CIPHER]\n"
			"CIPHER: aes-128-gcm, aes-256-gcm, chacha20-poly1305\n");
	return 2;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno || end == s || *end || *v > max ? -1 : 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Hand one direction of @fd to the kernel's TLS (TLS 1.3, ktls_cipher),
 * with a fixed key both ends share: 0, or -1 with the reason printed.
 */
static int ktls_on(int fd, bool rx)
{
	union {
		struct tls12_crypto_info_aes_gcm_128 g128;
		struct tls12_crypto_info_aes_gcm_256 g256;
		struct tls12_crypto_info_chacha20_poly1305 cc;
	} ci;
	unsigned char key[32];
	socklen_t len;
	unsigned int i;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(0xa5 ^ (i * 29));
	memset(&ci, 0, sizeof(ci));
	/* TLS 1.3's 12-byte nonce: AES-GCM's 4-byte salt, then its 8-byte iv */
#define GCM(c, type) do {						\
		(c).info.version = TLS_1_3_VERSION;			\
		(c).info.cipher_type = (type);				\
		memcpy((c).key, key, sizeof((c).key));			\
		memcpy((c).salt, key + 1, sizeof((c).salt));		\
		memcpy((c).iv, key + 5, sizeof((c).iv));		\
		len = sizeof(c);					\
	} while (0)
	if (!strcmp(ktls_cipher, "aes-128-gcm")) {
		GCM(ci.g128, TLS_CIPHER_AES_GCM_128);
	} else if (!strcmp(ktls_cipher, "aes-256-gcm")) {
		GCM(ci.g256, TLS_CIPHER_AES_GCM_256);
	} else {
		ci.cc.info.version = TLS_1_3_VERSION;
		ci.cc.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(ci.cc.key, key, sizeof(ci.cc.key));
		memcpy(ci.cc.iv, key + 5, sizeof(ci.cc.iv));
		len = sizeof(ci.cc);
	}
#undef GCM
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		perror("tcp_bench: TCP_ULP tls (no tls module?)");
		return -1;
	}
	if (setsockopt(fd, SOL_TLS, rx ? TLS_RX : TLS_TX, &ci, len)) {
		fprintf(stderr, "tcp_bench: %s %s: %s\n", rx ? "TLS_RX" : "TLS_TX",
			ktls_cipher, strerror(errno));
		return -1;
	}
	return 0;
}

static bool ktls_cipher_ok(const char *c)
{
	return !strcmp(c, "aes-128-gcm") || !strcmp(c, "aes-256-gcm") ||
	       !strcmp(c, "chacha20-poly1305");
}

/* Take "--ktls CIPHER" off the end of argv: the remaining argc, or -1. */
static int ktls_arg(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[argc - 2], "--ktls")) {
		if (!ktls_cipher_ok(argv[argc - 1]))
			return -1;
		ktls_cipher = argv[argc - 1];
		return argc - 2;
	}
	return argc;
}

static int serve_one(int lfd, char *buf)
{
	uint64_t total = 0, be;
	double t0 = 0, t1;
	ssize_t n;
	int fd;

	fd = accept(lfd, NULL, NULL);
	if (fd < 0) {
		perror("tcp_bench: accept");
		return -1;
	}
	if (ktls_cipher && ktls_on(fd, true)) {
		close(fd);
		return -1;
	}
	for (;;) {
		n = read(fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (!total)
			t0 = now();
		total += n;
	}
	t1 = now();
	if (n < 0) {
		perror("tcp_bench: read");
		close(fd);
		return -1;
	}
	be = htobe64(total);
	if (write_all(fd, &be, sizeof(be)))
		perror("tcp_bench: write");
	close(fd);
	fprintf(stderr, "tcp_bench: received %llu bytes in %.3f s\n",
		(unsigned long long)total, total ? t1 - t0 : 0.0);
	return 0;
}

static int server(int argc, char **argv)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6,
				  .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	unsigned long port, count = 1, i;
	int fd, one = 1, zero = 0;
	char *buf;

	argc = ktls_arg(argc, argv);
	if (argc < 3 || argc > 4 || parse_uint(argv[2], 65535, &port) ||
	    (argc == 4 && parse_uint(argv[3], ~0ul, &count)))
		return usage();
	buf = malloc(CHUNK);
	if (!buf)
		return 1;
	/* Dual-stack where IPv6 exists, IPv4 only where it does not. */
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd >= 0) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		a.sin6_port = htons(port);
		if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("tcp_bench: socket");
			return 1;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		a4.sin_port = htons(port);
		if (bind(fd, (struct sockaddr *)&a4, sizeof(a4))) {
			perror("tcp_bench: bind");
			return 1;
		}
	}
	if (listen(fd, 4)) {
		perror("tcp_bench: listen");
		return 1;
	}
	fprintf(stderr, "tcp_bench: listening on port %lu\n", port);
	for (i = 0; !count || i < count; i++)
		if (serve_one(fd, buf))
			return 1;
	close(fd);
	free(buf);
	return 0;
}

/* Connect to HOST:PORT, retrying while the peer is not there yet. */
static int dial(const char *host, unsigned short port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6,
				   .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET,
				  .sin_port = htons(port) };
	double deadline = now() + RETRY_SECONDS;
	struct sockaddr *sa;
	socklen_t len;
	int fd, err;

	if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
		sa = (struct sockaddr *)&a4;
		len = sizeof(a4);
	} else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
		sa = (struct sockaddr *)&a6;
		len = sizeof(a6);
	} else {
		fprintf(stderr, "tcp_bench: %s: not an IPv4 or IPv6 address\n",
			host);
		return -1;
	}
	for (;;) {
		fd = socket(sa->sa_family, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("tcp_bench: socket");
			return -1;
		}
		if (!connect(fd, sa, len))
			return fd;
		err = errno;
		close(fd);
		if ((err != ECONNREFUSED && err != EHOSTUNREACH &&
		     err != ENETUNREACH && err != ETIMEDOUT) ||
		    now() > deadline)
			break;
		usleep(200000);
	}
	fprintf(stderr, "tcp_bench: connect %s port %u: %s\n", host, port,
		strerror(err));
	return -1;
}

static int client(int argc, char **argv)
{
	unsigned long port, seconds;
	uint64_t sent = 0, got;
	double t0, t1, end;
	unsigned int i;
	char *buf;
	int fd;

	argc = ktls_arg(argc, argv);
	if (argc != 5 || parse_uint(argv[3], 65535, &port) || !port ||
	    parse_uint(argv[4], 3600, &seconds) || !seconds)
		return usage();
	buf = malloc(CHUNK);
	if (!buf)
		return 1;
	for (i = 0; i < CHUNK; i++)
		buf[i] = (char)(i * 7 + 1);
	fd = dial(argv[2], port);
	if (fd < 0 || (ktls_cipher && ktls_on(fd, false)))
		return 1;
	t0 = now();
	end = t0 + seconds;
	do {
		if (write_all(fd, buf, CHUNK)) {
			perror("tcp_bench: write");
			return 1;
		}
		sent += CHUNK;
	} while (now() < end);
	if (shutdown(fd, SHUT_WR) || read_all(fd, &got, sizeof(got))) {
		perror("tcp_bench: waiting for the server's count");
		return 1;
	}
	t1 = now();
	close(fd);
	free(buf);
	if (be64toh(got) != sent) {
		fprintf(stderr, "tcp_bench: sent %llu bytes, server got %llu\n",
			(unsigned long long)sent,
			(unsigned long long)be64toh(got));
		return 1;
	}
	fprintf(stderr, "tcp_bench: sent %llu bytes in %.3f s\n",
		(unsigned long long)sent, t1 - t0);
	printf("tcp_mib_per_s: %.1f\n", sent / (1024.0 * 1024.0) / (t1 - t0));
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && !strcmp(argv[1], "server"))
		return server(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return client(argc, argv);
	return usage();
}
