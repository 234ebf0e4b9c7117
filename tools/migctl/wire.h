/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The migctl wire protocol, version 1 (minor: WIRE_MINOR): framed
 * messages between `migctl migrate` (source) and `migctl listen` (target)
 * over TCP; payloads checksummed (inside TLS, only to peers before 1.3).
 * Documentation/live-migration.rst, "Wire protocol", is the reference.
 *
 * Frame header, 32 bytes, little-endian:
 *   0  u32 magic       WIRE_MAGIC ("VMGW")
 *   4  u8  major       WIRE_MAJOR; any other is refused
 *   5  u8  minor       the sender's minor; any is accepted
 *   6  u16 type        enum wire_type (bit 15: optional, skip if unknown)
 *   8  u32 length      payload bytes, <= the type's bound
 *  12  u32 seq         frames sent before this one on this connection
 *  16  u64 sum         payload checksum (wire_sum)
 *  24  u64 hdr_sum     mh_hash64 of bytes 0..23, MH_SEED_FRAME
 */
#ifndef MIGCTL_WIRE_H
#define MIGCTL_WIRE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define WIRE_MAGIC	0x57474d56u	/* "VMGW" in memory order */
#define WIRE_MAJOR	1
/*
 * 1.1: HELLO may carry the profile's needs; 1.2: ACCEPT says whether the
 * target's device loads early device state (struct mig_ident.early_load);
 * 1.3: inside TLS, whose records are authenticated, a receiver does not
 * check payload checksums, and after the handshake each side sends 0 when
 * the other is 1.3 (struct wire_conn.sum_off: the source from the
 * target's ACCEPT on, the target after its ACCEPT to a 1.3 HELLO);
 * 1.4: one migration may take several devices of a VM (HELLO and ACCEPT
 * name each, a STREAM frame says whose state it carries);
 * 1.5: READY carries the target's u64 drain and load times, DONE after its
 * u64 code the target's u64 start time (devices run and VMM start acks)
 * and the acks' alone (us): the source's downtime breakdown (a peer
 * before sends and reads none).
 */
#define WIRE_MINOR	5
#define WIRE_HDR_LEN	32
#define WIRE_PORT	4797

#define WIRE_PAGE	4096u
#define WIRE_BATCH	256u		/* pages in one PAGES frame (VFIO_MIG_CTL_PAGES_MAX) */
#define WIRE_STREAM_MAX	(1u << 20)	/* device stream bytes in one STREAM frame */
#define WIRE_RANGES_MAX	256u
#define WIRE_DEVS_MAX	4u		/* devices in one migration (1.4) */
/* The largest payload of any type: a PAGES frame full of data pages. */
#define WIRE_MAX_PAYLOAD (WIRE_PAGE + WIRE_BATCH * WIRE_PAGE)

enum wire_type {
	WIRE_HELLO = 1,		/* src: protocol, source identity, target BDF */
	WIRE_ACCEPT,		/* dst: target identity; the migration goes on */
	WIRE_REFUSE,		/* dst: the first mismatch, both values */
	WIRE_RANGES,		/* src: guest RAM IOVA ranges */
	WIRE_RANGES_OK,		/* dst: all of them are mapped for the device */
	WIRE_PAGES,		/* src: up to 256 pages (data or zero) */
	WIRE_STREAM,		/* src: device migration stream bytes */
	WIRE_ROUND_END,		/* src: the round's last frame */
	WIRE_ROUND_ACK,		/* dst: the round is written */
	WIRE_SWITCHOVER,	/* src: vCPUs paused, device stopping */
	WIRE_FINAL,		/* src: all data sent (totals to check) */
	WIRE_READY,		/* dst: stream loaded (RESUMING -> STOP ok); 1.5: times */
	WIRE_COMMIT,		/* src: passed the commit point; run it */
	WIRE_DONE,		/* dst: running and committed: u64 code; 1.5: times */
	WIRE_ABORT,		/* either: giving up before the commit, why */
	WIRE_TYPE_NR,
};
#define WIRE_T_OPTIONAL	0x8000

const char *wire_type_name(unsigned int type);

/* PAGES descriptors: the page's IOVA, kind in the low 12 bits. */
#define WIRE_PG_DATA	0
#define WIRE_PG_ZERO	1
#define WIRE_PG_KIND_MASK (WIRE_PAGE - 1)

/*
 * STREAM payload: u32 kind, u32 device (1.4: its index in HELLO's list;
 * 0 before), the device's migration stream bytes.
 */
#define WIRE_STREAM_PRECOPY	0
#define WIRE_STREAM_STOPCOPY	1

/* A decoded frame header. */
struct wire_hdr {
	uint8_t major, minor;
	uint16_t type;
	uint32_t length;
	uint32_t seq;
	uint64_t sum;
};

/* Little-endian field access. */
void wire_put16(uint8_t *p, uint16_t v);
void wire_put32(uint8_t *p, uint32_t v);
void wire_put64(uint8_t *p, uint64_t v);
uint16_t wire_get16(const uint8_t *p);
uint32_t wire_get32(const uint8_t *p);
uint64_t wire_get64(const uint8_t *p);

/*
 * The payload checksum: mh_hash64 of each 4096-byte block of the payload
 * (the last one may be shorter) with MH_SEED_PAGE, folded in order.
 */
uint64_t wire_sum_begin(uint32_t length);
uint64_t wire_sum_add(uint64_t sum, uint64_t block_hash);
uint64_t wire_sum(const void *p, size_t len);

void wire_hdr_encode(uint8_t out[WIRE_HDR_LEN], uint16_t type, uint32_t len,
		     uint32_t seq, uint64_t sum);
/*
 * Check a received header: magic, major, header checksum, type, length
 * bound, sequence. 0, or -EPROTO (malformed; @err says what),
 * -EPROTONOSUPPORT (another major), -EMSGSIZE (length over the bound).
 * An unknown optional type is accepted with out->type as received.
 */
int wire_hdr_decode(const uint8_t in[WIRE_HDR_LEN], uint32_t expect_seq,
		    struct wire_hdr *out, char *err, size_t errlen);
/* The bound on a type's payload length (0 for unknown types). */
uint32_t wire_max_len(unsigned int type);
/*
 * Check a payload against its checksum and its type's layout (PAGES: the
 * descriptor block; fixed messages: minimum sizes). 0 or -EPROTO.
 */
int wire_payload_check(const struct wire_hdr *h, const uint8_t *p,
		       char *err, size_t errlen);
/* wire_payload_check() without the checksum: the layout only. */
int wire_payload_layout(const struct wire_hdr *h, const uint8_t *p,
			char *err, size_t errlen);

/* ---- message bodies ---- */

#define WIRE_STR	16
#define WIRE_KERNEL	64
#define WIRE_PROFILE	32

/* What each side says about itself and its device (HELLO, ACCEPT). */
struct mig_ident {
	uint16_t proto_major, proto_minor;
	char bdf[WIRE_STR];
	uint16_t vendor, device, subvendor, subdevice;
	uint32_t class_code;
	uint8_t revision, trap_mode;
	uint64_t bar_size[6];
	uint32_t bar_flags[6];		/* MIG_BAR_* */
	char profile[WIRE_PROFILE];
	uint16_t stream_major, stream_minor;
	uint32_t page_size;
	bool precopy;			/* the device offers PRE_COPY */
	/*
	 * ACCEPT, to a source of 1.2 or later: the target's device loads
	 * early device state now (netlink dev attribute early-load). HELLO
	 * never carries it (wire_enc_hello() writes 0, as a target before
	 * 1.2 refuses anything else, and wire_dec_hello() refuses it).
	 */
	bool early_load;
	char kernel[WIRE_KERNEL];	/* uname release */
	char version[WIRE_STR];		/* migctl version */
};
#define MIG_BAR_IO	(1u << 0)
#define MIG_BAR_MEM64	(1u << 1)
#define MIG_BAR_PREFETCH (1u << 2)

/* The largest profile needs record (the kernel's VMIG_NEEDS_MAX). */
#define WIRE_NEEDS_MAX	512

/* 1.4: a device of the migration after the first (HELLO). */
struct wire_hello_dev {
	struct mig_ident src;
	char target_bdf[WIRE_STR];
	uint32_t needs_len;
	uint8_t needs[WIRE_NEEDS_MAX];
};

struct wire_hello {
	/* the first device (the only one before 1.4) */
	struct mig_ident src;
	char target_bdf[WIRE_STR];
	uint32_t timeout_ms, vmm_timeout_ms;
	/*
	 * 1.1: what the source's guest uses of its device, as the source
	 * kernel's profile says it (netlink dev-needs): opaque here, for the
	 * target kernel's profile. 0 bytes: none (or a 1.0 source).
	 */
	uint32_t needs_len;
	uint8_t needs[WIRE_NEEDS_MAX];
	/* 1.4: the VM's devices, 1 to WIRE_DEVS_MAX; the others in more[] */
	uint32_t ndev;
	struct wire_hello_dev more[WIRE_DEVS_MAX - 1];
};

/* Size of an encoded ident, HELLO and ACCEPT in 1.0 (a newer minor may append). */
#define WIRE_IDENT_LEN	240
#define WIRE_HELLO_LEN	(WIRE_IDENT_LEN + WIRE_STR + 8)
/*
 * 1.1 appends to HELLO, when the source has a needs record: its length
 * (u32, <= WIRE_NEEDS_MAX), 0 (u32), the record. The largest HELLO sent.
 */
#define WIRE_HELLO_MAX_LEN (WIRE_HELLO_LEN + 8 + WIRE_NEEDS_MAX + \
			    WIRE_HELLO_DEVS_LEN)
/*
 * 1.4 appends to HELLO, when the migration takes more than one device
 * (the 1.1 part then always present): the number of devices (u32), 0
 * (u32), the first device's target BDF, then for each further device its
 * ident, its target BDF, its needs length (u32), 0 (u32), its needs. The
 * 1.0 part's target BDF is then WIRE_DEVS_BDF, which a target before 1.4
 * refuses as no PCI address, rather than take the first device alone.
 */
#define WIRE_HELLO_DEV_LEN	(WIRE_IDENT_LEN + WIRE_STR + 8)
#define WIRE_HELLO_DEVS_LEN	(8 + WIRE_STR + (WIRE_DEVS_MAX - 1) * \
				 (WIRE_HELLO_DEV_LEN + WIRE_NEEDS_MAX))
#define WIRE_DEVS_BDF		"(devices: 1.4)"
#define WIRE_ACCEPT_LEN	WIRE_IDENT_LEN
/* 1.4, to a HELLO of n devices: u32 n, u32 0, the idents of the others. */
#define WIRE_ACCEPT_MAX_LEN (WIRE_ACCEPT_LEN + 8 + \
			     (WIRE_DEVS_MAX - 1) * WIRE_IDENT_LEN)

struct wire_refuse {
	char field[32];
	char source[64];
	char target[64];
	char reason[160];
};
#define WIRE_REFUSE_LEN	(32 + 64 + 64 + 160)

struct wire_abort {
	uint32_t code;			/* errno-like, 0 if none */
	char reason[200];
};
#define WIRE_ABORT_LEN	(4 + 200)

struct wire_range {
	uint64_t iova, length;
};

/* Encoders return the payload length; buffers must hold the *_LEN bytes. */
size_t wire_enc_hello(uint8_t *p, const struct wire_hello *h);
int wire_dec_hello(const uint8_t *p, size_t len, struct wire_hello *h);
/* ACCEPT of @n devices (1.4 when @n > 1): their idents, in HELLO's order. */
size_t wire_enc_accept(uint8_t *p, const struct mig_ident *id, uint32_t n);
/* Exactly @n idents, or -EPROTO. */
int wire_dec_accept(const uint8_t *p, size_t len, struct mig_ident *id,
		    uint32_t n);
size_t wire_enc_refuse(uint8_t *p, const struct wire_refuse *r);
int wire_dec_refuse(const uint8_t *p, size_t len, struct wire_refuse *r);
size_t wire_enc_abort(uint8_t *p, const struct wire_abort *a);
int wire_dec_abort(const uint8_t *p, size_t len, struct wire_abort *a);
/* RANGES: u32 count, u32 0, count x (u64 iova, u64 length). */
size_t wire_enc_ranges(uint8_t *p, const struct wire_range *r, uint32_t n);
int wire_dec_ranges(const uint8_t *p, size_t len, struct wire_range *r,
		    uint32_t *n);
/* Fixed small messages: a list of u64 (ROUND_END, ROUND_ACK, FINAL, DONE...). */
size_t wire_enc_u64s(uint8_t *p, const uint64_t *v, unsigned int n);
int wire_dec_u64s(const uint8_t *p, size_t len, uint64_t *v, unsigned int n);

/*
 * PAGES payload: a 4096-byte descriptor block (u32 round, u32 count,
 * u32 ndata, u32 0, count u64 descriptors, zeros), then ndata pages of
 * data in descriptor order. wire_pages_meta() fills the block.
 */
#define WIRE_PAGES_META	16
void wire_pages_meta(uint8_t *block, uint32_t round, const uint64_t *desc,
		     uint32_t count);
struct wire_pages {
	uint32_t round, count, ndata;
	const uint8_t *desc;		/* count little-endian u64 */
	const uint8_t *data;		/* ndata pages */
};
/* After wire_payload_check(): the decoded view. */
void wire_pages_view(const uint8_t *p, struct wire_pages *v);

/* ---- a connection ---- */

struct wire_conn {
	int fd;
	uint32_t tx_seq, rx_seq;
	int timeout_ms;			/* every wait; 0: none */
	uint64_t tx_bytes, rx_bytes;
	uint8_t *rx;			/* WIRE_MAX_PAYLOAD bytes */
	volatile sig_atomic_t *stop;	/* set by a signal: give up waiting */
	char err[256];			/* why the last call failed */
	bool broken;			/* the stream is unusable (error seen) */
	/*
	 * TLS authenticates every record, so the payload checksum adds
	 * nothing but a pass over the data: @sum_unchecked, on a TLS link,
	 * receives without checking it; @sum_off (a 1.3 peer that does not
	 * check it either) sends 0 (wire_send(); a caller of wire_sendv()
	 * passes 0 itself). Layouts are checked all the same.
	 */
	bool sum_unchecked, sum_off;
	unsigned int skipped;		/* unknown optional frames skipped */
	/* TLS (tls.c); tls is NULL on an --insecure link */
	void *tls;			/* gnutls_session_t */
	bool tls_psk;
	bool ktls_tx, ktls_rx;		/* records through the kernel */
	size_t tls_pending;		/* a record GnuTLS is still sending */
	uint64_t tx_records;		/* records sent (an upper bound) */
	uint64_t tx_record_limit;	/* under this key; 0: none */
	uint8_t *tls_stage;		/* one record being sent */
	void *tls_verify;		/* what the handshake checks (tls.c) */
	uint8_t tls_rhdr[5];		/* the record GnuTLS is reading */
	unsigned int tls_rhdr_got;
	size_t tls_rbody;
	char peer_id[256];		/* the authenticated peer */
	char tls_info[96];		/* protocol and cipher */
	char ktls_why[96];		/* why a direction stayed in GnuTLS */
};

/* Unknown optional frames a connection may skip, in all. */
#define WIRE_SKIP_MAX	64

struct wire_msg {
	struct wire_hdr h;
	const uint8_t *p;		/* into conn->rx */
	/* wire_recv_head(): the payload bytes still on the socket, and by when */
	uint32_t rest;
	long long deadline;
	int timeout_ms;
};

/* CLOCK_MONOTONIC in ms: the clock of every deadline here. */
long long wire_now_ms(void);

/* A buffer in huge pages where the kernel has them (free() it). */
void *wire_huge_alloc(size_t len);

int wire_conn_init(struct wire_conn *c, int fd, int timeout_ms,
		   volatile sig_atomic_t *stop);
void wire_conn_free(struct wire_conn *c);
/*
 * Send one frame; payload from @iov. @sum: the payload checksum (0 with
 * c->sum_off). The whole
 * frame must leave within the connection's timeout. 0 or -errno.
 */
int wire_sendv(struct wire_conn *c, uint16_t type, const struct iovec *iov,
	       int niov, uint64_t sum);
/*
 * The same, the payload's last @fd_len bytes read from @fd at offsets 0
 * to @fd_len by sendfile() (a staging fd): not on a GnuTLS link without
 * kTLS (-EOPNOTSUPP).
 */
int wire_sendv_fd(struct wire_conn *c, uint16_t type, const struct iovec *iov,
		  int niov, uint64_t sum, int fd, size_t fd_len);
int wire_send(struct wire_conn *c, uint16_t type, const void *p, size_t len);
/*
 * Receive one frame, skipping unknown optional types (WIRE_SKIP_MAX in
 * all). Its header must arrive within @timeout_ms (<= 0: the connection's)
 * of the call, skipped frames included, and its payload within as long
 * again after the header: deadlines, not idle timeouts, so a peer
 * dripping bytes or sending skipped frames cannot hold the call open.
 * 0, or -ETIMEDOUT, -ECONNRESET (peer closed),
 * -EINTR (stop set), -EPROTO/-EPROTONOSUPPORT/-EMSGSIZE (bad frame), or
 * another -errno from the socket; c->err says what.
 */
int wire_recv(struct wire_conn *c, struct wire_msg *m, int timeout_ms);
/*
 * As wire_recv() on a link whose records the kernel reads (plain TCP, or
 * kTLS receive), but of a PAGES frame only the descriptor block is read
 * (its layout checked, not the checksum, which covers the data pages still
 * to come): m->rest bytes follow, for wire_splice_rest(). -EOPNOTSUPP on
 * a TLS link that GnuTLS decrypts in migctl.
 */
int wire_recv_head(struct wire_conn *c, struct wire_msg *m, int timeout_ms);
/*
 * The m->rest bytes of the frame wire_recv_head() returned, from the
 * socket through the pipe @pfd (read end non-blocking or not; empty) into
 * @sink (a staging fd armed by VFIO_MIG_CTL_LAND) without a copy through
 * migctl, within the frame's deadline. On kTLS the kernel decrypts each
 * record as it splices it: a record that fails authentication, or an
 * alert or other control record, is -EPROTO. 0, or -errno: c->err says
 * why for the socket's errors, @err for the sink's.
 */
int wire_splice_rest(struct wire_conn *c, struct wire_msg *m,
		     const int pfd[2], int sink, char *err, size_t errlen);
/* Is a frame (or EOF) waiting? Does not block. */
bool wire_readable(struct wire_conn *c);

/* Parse frames from a memory buffer (tests, fuzzing): the frames found. */
int wire_parse_buffer(const uint8_t *buf, size_t len, char *err,
		      size_t errlen);

#endif
