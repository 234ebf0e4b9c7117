// SPDX-License-Identifier: GPL-2.0
/* The migctl wire protocol (wire.h; Documentation/live-migration.rst). */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "tls.h"
#include "wire.h"

static const char *const type_names[WIRE_TYPE_NR] = {
	[WIRE_HELLO] = "HELLO", [WIRE_ACCEPT] = "ACCEPT",
	[WIRE_REFUSE] = "REFUSE", [WIRE_RANGES] = "RANGES",
	[WIRE_RANGES_OK] = "RANGES_OK", [WIRE_PAGES] = "PAGES",
	[WIRE_STREAM] = "STREAM", [WIRE_ROUND_END] = "ROUND_END",
	[WIRE_ROUND_ACK] = "ROUND_ACK", [WIRE_SWITCHOVER] = "SWITCHOVER",
	[WIRE_FINAL] = "FINAL", [WIRE_READY] = "READY",
	[WIRE_COMMIT] = "COMMIT", [WIRE_DONE] = "DONE", [WIRE_ABORT] = "ABORT",
};

const char *wire_type_name(unsigned int type)
{
	if (type < WIRE_TYPE_NR && type_names[type])
		return type_names[type];
	return "unknown";
}

void wire_put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

void wire_put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

void wire_put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

uint16_t wire_get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

uint32_t wire_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

uint64_t wire_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

/* ---- checksums and headers ---- */

uint64_t wire_sum_begin(uint32_t length)
{
	return mh_mix(MH_SEED_FRAME ^ length);
}

uint64_t wire_sum_add(uint64_t sum, uint64_t block_hash)
{
	return mh_mix((sum ^ block_hash) + 0x9e3779b97f4a7c15ull);
}

uint64_t wire_sum(const void *p, size_t len)
{
	const uint8_t *s = p;
	uint64_t sum = wire_sum_begin(len);
	size_t off, n;

	for (off = 0; off < len; off += n) {
		n = len - off < WIRE_PAGE ? len - off : WIRE_PAGE;
		sum = wire_sum_add(sum, mh_hash64(s + off, n, MH_SEED_PAGE));
	}
	return sum;
}

void wire_hdr_encode(uint8_t out[WIRE_HDR_LEN], uint16_t type, uint32_t len,
		     uint32_t seq, uint64_t sum)
{
	wire_put32(out, WIRE_MAGIC);
	out[4] = WIRE_MAJOR;
	out[5] = WIRE_MINOR;
	wire_put16(out + 6, type);
	wire_put32(out + 8, len);
	wire_put32(out + 12, seq);
	wire_put64(out + 16, sum);
	wire_put64(out + 24, mh_hash64(out, 24, MH_SEED_FRAME));
}

uint32_t wire_max_len(unsigned int type)
{
	switch (type & ~WIRE_T_OPTIONAL) {
	case WIRE_HELLO:
	case WIRE_ACCEPT:
	case WIRE_REFUSE:
	case WIRE_ABORT:
		return 4096;	/* room for a newer minor's fields */
	case WIRE_RANGES:
		return 8 + WIRE_RANGES_MAX * 16;
	case WIRE_PAGES:
		return WIRE_MAX_PAYLOAD;
	case WIRE_STREAM:
		return 8 + WIRE_STREAM_MAX;
	case WIRE_RANGES_OK:
	case WIRE_ROUND_END:
	case WIRE_ROUND_ACK:
	case WIRE_SWITCHOVER:
	case WIRE_FINAL:
	case WIRE_READY:
	case WIRE_COMMIT:
	case WIRE_DONE:
		return 256;
	}
	/* unknown optional types: skipped, but bounded all the same */
	return type & WIRE_T_OPTIONAL ? 65536 : 0;
}

#define ERR(...) do { if (err) snprintf(err, errlen, __VA_ARGS__); } while (0)

int wire_hdr_decode(const uint8_t in[WIRE_HDR_LEN], uint32_t expect_seq,
		    struct wire_hdr *out, char *err, size_t errlen)
{
	uint32_t max;

	if (wire_get32(in) != WIRE_MAGIC) {
		ERR("bad frame magic 0x%08x (not a migctl peer?)",
		    wire_get32(in));
		return -EPROTO;
	}
	out->major = in[4];
	out->minor = in[5];
	if (out->major != WIRE_MAJOR) {
		ERR("wire protocol major version %u, this migctl speaks %u",
		    out->major, WIRE_MAJOR);
		return -EPROTONOSUPPORT;
	}
	if (wire_get64(in + 24) != mh_hash64(in, 24, MH_SEED_FRAME)) {
		ERR("frame header checksum mismatch (corrupted stream)");
		return -EPROTO;
	}
	out->type = wire_get16(in + 6);
	out->length = wire_get32(in + 8);
	out->seq = wire_get32(in + 12);
	out->sum = wire_get64(in + 16);
	max = wire_max_len(out->type);
	if (!max) {
		ERR("unknown frame type %u", out->type);
		return -EPROTO;
	}
	if (out->length > max) {
		ERR("%s frame of %u bytes, more than its bound %u",
		    wire_type_name(out->type), out->length, max);
		return -EMSGSIZE;
	}
	if (out->seq != expect_seq) {
		ERR("frame sequence %u, expected %u (lost or reordered frames)",
		    out->seq, expect_seq);
		return -EPROTO;
	}
	return 0;
}

static int check_pages(const struct wire_hdr *h, const uint8_t *p,
		       char *err, size_t errlen)
{
	uint32_t count, ndata = 0, i;
	uint64_t d;

	if (h->length < WIRE_PAGE) {
		ERR("PAGES frame of %u bytes, shorter than its descriptor block",
		    h->length);
		return -EPROTO;
	}
	count = wire_get32(p + 4);
	if (count > WIRE_BATCH || wire_get32(p + 12)) {
		ERR("PAGES frame: bad page count %u or reserved field", count);
		return -EPROTO;
	}
	for (i = 0; i < count; i++) {
		d = wire_get64(p + WIRE_PAGES_META + 8 * i);
		switch (d & WIRE_PG_KIND_MASK) {
		case WIRE_PG_DATA:
			ndata++;
			break;
		case WIRE_PG_ZERO:
			break;
		default:
			ERR("PAGES frame: page %u has unknown kind %u", i,
			    (unsigned int)(d & WIRE_PG_KIND_MASK));
			return -EPROTO;
		}
	}
	for (i = WIRE_PAGES_META + 8 * count; i < WIRE_PAGE; i++) {
		if (p[i]) {
			ERR("PAGES frame: descriptor block padding not zero");
			return -EPROTO;
		}
	}
	if (ndata != wire_get32(p + 8) ||
	    h->length != WIRE_PAGE + (uint64_t)ndata * WIRE_PAGE) {
		ERR("PAGES frame: %u data pages described, %u announced, %u bytes",
		    ndata, wire_get32(p + 8), h->length);
		return -EPROTO;
	}
	return 0;
}

int wire_payload_check(const struct wire_hdr *h, const uint8_t *p,
		       char *err, size_t errlen)
{
	if (wire_sum(p, h->length) != h->sum) {
		ERR("%s frame payload checksum mismatch (corrupted stream)",
		    wire_type_name(h->type));
		return -EPROTO;
	}
	return wire_payload_layout(h, p, err, errlen);
}

int wire_payload_layout(const struct wire_hdr *h, const uint8_t *p,
			char *err, size_t errlen)
{
	uint32_t min = 0;

	switch (h->type) {
	case WIRE_HELLO:
		min = WIRE_HELLO_LEN;
		break;
	case WIRE_ACCEPT:
		min = WIRE_ACCEPT_LEN;
		break;
	case WIRE_REFUSE:
		min = WIRE_REFUSE_LEN;
		break;
	case WIRE_ABORT:
		min = WIRE_ABORT_LEN;
		break;
	case WIRE_RANGES:
		if (h->length < 8 || h->length != 8 + 16ull * wire_get32(p)) {
			ERR("RANGES frame: length %u does not match its count",
			    h->length);
			return -EPROTO;
		}
		break;
	case WIRE_PAGES:
		return check_pages(h, p, err, errlen);
	case WIRE_STREAM:
		min = 8;
		break;
	}
	if (h->length < min) {
		ERR("%s frame of %u bytes, shorter than %u",
		    wire_type_name(h->type), h->length, min);
		return -EPROTO;
	}
	return 0;
}

/* ---- message bodies ---- */

/*
 * @s in @n bytes as get_str() takes it: cut to fit, zero padded, each byte
 * that is not printable ASCII (a peer's UTF-8 name, a control character
 * in a message) sent as '?'.
 */
static void put_str(uint8_t *p, const char *s, size_t n)
{
	size_t l = strnlen(s, n - 1), i;

	memset(p, 0, n);
	for (i = 0; i < l; i++) {
		uint8_t b = s[i];

		p[i] = b < 0x20 || b > 0x7e ? '?' : b;
	}
}

/* A NUL-terminated printable string in @n bytes, zero padded. */
static int get_str(const uint8_t *p, size_t n, char *out)
{
	size_t l = strnlen((const char *)p, n), i;

	if (l == n)
		return -EPROTO;
	for (i = 0; i < l; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return -EPROTO;
	for (i = l; i < n; i++)
		if (p[i])
			return -EPROTO;
	memcpy(out, p, l + 1);
	return 0;
}

static void enc_ident(uint8_t *p, const struct mig_ident *id)
{
	int i;

	memset(p, 0, WIRE_IDENT_LEN);
	wire_put16(p, id->proto_major);
	wire_put16(p + 2, id->proto_minor);
	put_str(p + 4, id->bdf, WIRE_STR);
	wire_put16(p + 20, id->vendor);
	wire_put16(p + 22, id->device);
	wire_put16(p + 24, id->subvendor);
	wire_put16(p + 26, id->subdevice);
	wire_put32(p + 28, id->class_code);
	p[32] = id->revision;
	p[33] = id->trap_mode;
	p[34] = id->precopy;
	p[35] = id->early_load;
	for (i = 0; i < 6; i++) {
		wire_put64(p + 36 + 8 * i, id->bar_size[i]);
		wire_put32(p + 84 + 4 * i, id->bar_flags[i]);
	}
	put_str(p + 108, id->profile, WIRE_PROFILE);
	wire_put16(p + 140, id->stream_major);
	wire_put16(p + 142, id->stream_minor);
	wire_put32(p + 144, id->page_size);
	put_str(p + 148, id->kernel, WIRE_KERNEL);
	put_str(p + 212, id->version, WIRE_STR);
}

static int dec_ident(const uint8_t *p, struct mig_ident *id)
{
	int i;

	memset(id, 0, sizeof(*id));
	id->proto_major = wire_get16(p);
	id->proto_minor = wire_get16(p + 2);
	id->vendor = wire_get16(p + 20);
	id->device = wire_get16(p + 22);
	id->subvendor = wire_get16(p + 24);
	id->subdevice = wire_get16(p + 26);
	id->class_code = wire_get32(p + 28);
	id->revision = p[32];
	id->trap_mode = p[33];
	if (p[34] > 1 || p[35] > 1)
		return -EPROTO;
	id->precopy = p[34];
	id->early_load = p[35];
	for (i = 0; i < 6; i++) {
		id->bar_size[i] = wire_get64(p + 36 + 8 * i);
		id->bar_flags[i] = wire_get32(p + 84 + 4 * i);
	}
	id->stream_major = wire_get16(p + 140);
	id->stream_minor = wire_get16(p + 142);
	id->page_size = wire_get32(p + 144);
	if (get_str(p + 4, WIRE_STR, id->bdf) ||
	    get_str(p + 108, WIRE_PROFILE, id->profile) ||
	    get_str(p + 148, WIRE_KERNEL, id->kernel) ||
	    get_str(p + 212, WIRE_STR, id->version))
		return -EPROTO;
	return 0;
}

/* The 1.4 part of a HELLO of more than one device, at @p. */
static size_t enc_hello_devs(uint8_t *p, const struct wire_hello *h)
{
	const struct wire_hello_dev *v;
	size_t off = 8 + WIRE_STR;
	uint32_t i, n;

	wire_put32(p, h->ndev);
	wire_put32(p + 4, 0);
	put_str(p + 8, h->target_bdf, WIRE_STR);
	for (i = 0; i + 1 < h->ndev; i++) {
		v = &h->more[i];
		n = v->needs_len <= WIRE_NEEDS_MAX ? v->needs_len : 0;
		enc_ident(p + off, &v->src);
		p[off + 35] = 0;
		put_str(p + off + WIRE_IDENT_LEN, v->target_bdf, WIRE_STR);
		wire_put32(p + off + WIRE_IDENT_LEN + WIRE_STR, n);
		wire_put32(p + off + WIRE_IDENT_LEN + WIRE_STR + 4, 0);
		memcpy(p + off + WIRE_HELLO_DEV_LEN, v->needs, n);
		off += WIRE_HELLO_DEV_LEN + n;
	}
	return off;
}

size_t wire_enc_hello(uint8_t *p, const struct wire_hello *h)
{
	uint32_t n = h->needs_len;
	bool devs = h->ndev > 1 && h->ndev <= WIRE_DEVS_MAX;

	enc_ident(p, &h->src);
	p[35] = 0;	/* early load: a target's word (a 1.1 one refuses it) */
	put_str(p + WIRE_IDENT_LEN, devs ? WIRE_DEVS_BDF : h->target_bdf,
		WIRE_STR);
	wire_put32(p + WIRE_IDENT_LEN + WIRE_STR, h->timeout_ms);
	wire_put32(p + WIRE_IDENT_LEN + WIRE_STR + 4, h->vmm_timeout_ms);
	if (n > WIRE_NEEDS_MAX)
		n = 0;
	if (!n && !devs)	/* none: a 1.0 HELLO */
		return WIRE_HELLO_LEN;
	wire_put32(p + WIRE_HELLO_LEN, n);
	wire_put32(p + WIRE_HELLO_LEN + 4, 0);
	memcpy(p + WIRE_HELLO_LEN + 8, h->needs, n);
	if (!devs)
		return WIRE_HELLO_LEN + 8 + n;
	return WIRE_HELLO_LEN + 8 + n +
	       enc_hello_devs(p + WIRE_HELLO_LEN + 8 + n, h);
}

/*
 * The 1.4 part of HELLO, @len bytes at @p: a device count below 2 says
 * one device (zeros a newer minor leaves); each further device's
 * record whole, its ident valid, its needs within bounds.
 */
static int dec_hello_devs(const uint8_t *p, size_t len, struct wire_hello *h)
{
	struct wire_hello_dev *v;
	size_t off = 8 + WIRE_STR;
	uint32_t i, n;

	if (len < 8)
		return -EPROTO;
	n = wire_get32(p);
	if (n < 2)
		return 0;
	if (n > WIRE_DEVS_MAX || len < off ||
	    get_str(p + 8, WIRE_STR, h->target_bdf))
		return -EPROTO;
	for (i = 0; i + 1 < n; i++) {
		v = &h->more[i];
		if (len - off < WIRE_HELLO_DEV_LEN ||
		    dec_ident(p + off, &v->src) || v->src.early_load ||
		    get_str(p + off + WIRE_IDENT_LEN, WIRE_STR, v->target_bdf))
			return -EPROTO;
		v->needs_len = wire_get32(p + off + WIRE_IDENT_LEN + WIRE_STR);
		off += WIRE_HELLO_DEV_LEN;
		if (v->needs_len > WIRE_NEEDS_MAX || v->needs_len > len - off)
			return -EPROTO;
		memcpy(v->needs, p + off, v->needs_len);
		off += v->needs_len;
	}
	h->ndev = n;
	return 0;
}

int wire_dec_hello(const uint8_t *p, size_t len, struct wire_hello *h)
{
	uint32_t n;

	memset(h, 0, sizeof(*h));
	h->ndev = 1;
	if (len < WIRE_HELLO_LEN || dec_ident(p, &h->src) ||
	    h->src.early_load ||
	    get_str(p + WIRE_IDENT_LEN, WIRE_STR, h->target_bdf))
		return -EPROTO;
	h->timeout_ms = wire_get32(p + WIRE_IDENT_LEN + WIRE_STR);
	h->vmm_timeout_ms = wire_get32(p + WIRE_IDENT_LEN + WIRE_STR + 4);
	if (len == WIRE_HELLO_LEN)
		return 0;
	/* 1.1: the needs record */
	if (len < WIRE_HELLO_LEN + 8)
		return -EPROTO;
	n = wire_get32(p + WIRE_HELLO_LEN);
	if (n > WIRE_NEEDS_MAX || n > len - WIRE_HELLO_LEN - 8)
		return -EPROTO;
	h->needs_len = n;
	memcpy(h->needs, p + WIRE_HELLO_LEN + 8, n);
	len -= WIRE_HELLO_LEN + 8 + n;
	/* 1.4: the other devices; anything after them is a newer minor's */
	if (!len || h->src.proto_minor < 4)
		return 0;
	return dec_hello_devs(p + WIRE_HELLO_LEN + 8 + n, len, h);
}

size_t wire_enc_accept(uint8_t *p, const struct mig_ident *id, uint32_t n)
{
	uint32_t i;

	enc_ident(p, &id[0]);
	if (n < 2 || n > WIRE_DEVS_MAX)
		return WIRE_ACCEPT_LEN;
	wire_put32(p + WIRE_ACCEPT_LEN, n);
	wire_put32(p + WIRE_ACCEPT_LEN + 4, 0);
	for (i = 1; i < n; i++)
		enc_ident(p + WIRE_ACCEPT_LEN + 8 + (i - 1) * WIRE_IDENT_LEN,
			  &id[i]);
	return WIRE_ACCEPT_LEN + 8 + (n - 1) * WIRE_IDENT_LEN;
}

int wire_dec_accept(const uint8_t *p, size_t len, struct mig_ident *id,
		    uint32_t n)
{
	uint32_t i;

	if (len < WIRE_ACCEPT_LEN || !n || n > WIRE_DEVS_MAX ||
	    dec_ident(p, &id[0]))
		return -EPROTO;
	if (n == 1)
		return 0;
	if (len < WIRE_ACCEPT_LEN + 8 + (size_t)(n - 1) * WIRE_IDENT_LEN ||
	    wire_get32(p + WIRE_ACCEPT_LEN) != n)
		return -EPROTO;
	for (i = 1; i < n; i++)
		if (dec_ident(p + WIRE_ACCEPT_LEN + 8 +
			      (i - 1) * WIRE_IDENT_LEN, &id[i]))
			return -EPROTO;
	return 0;
}

size_t wire_enc_refuse(uint8_t *p, const struct wire_refuse *r)
{
	put_str(p, r->field, 32);
	put_str(p + 32, r->source, 64);
	put_str(p + 96, r->target, 64);
	put_str(p + 160, r->reason, 160);
	return WIRE_REFUSE_LEN;
}

int wire_dec_refuse(const uint8_t *p, size_t len, struct wire_refuse *r)
{
	memset(r, 0, sizeof(*r));
	if (len < WIRE_REFUSE_LEN || get_str(p, 32, r->field) ||
	    get_str(p + 32, 64, r->source) || get_str(p + 96, 64, r->target) ||
	    get_str(p + 160, 160, r->reason))
		return -EPROTO;
	return 0;
}

size_t wire_enc_abort(uint8_t *p, const struct wire_abort *a)
{
	wire_put32(p, a->code);
	put_str(p + 4, a->reason, 200);
	return WIRE_ABORT_LEN;
}

int wire_dec_abort(const uint8_t *p, size_t len, struct wire_abort *a)
{
	memset(a, 0, sizeof(*a));
	if (len < WIRE_ABORT_LEN || get_str(p + 4, 200, a->reason))
		return -EPROTO;
	a->code = wire_get32(p);
	return 0;
}

size_t wire_enc_ranges(uint8_t *p, const struct wire_range *r, uint32_t n)
{
	uint32_t i;

	wire_put32(p, n);
	wire_put32(p + 4, 0);
	for (i = 0; i < n; i++) {
		wire_put64(p + 8 + 16 * i, r[i].iova);
		wire_put64(p + 16 + 16 * i, r[i].length);
	}
	return 8 + 16 * n;
}

int wire_dec_ranges(const uint8_t *p, size_t len, struct wire_range *r,
		    uint32_t *n)
{
	uint32_t i, count;

	if (len < 8)
		return -EPROTO;
	count = wire_get32(p);
	if (count > WIRE_RANGES_MAX || len != 8 + 16ull * count || wire_get32(p + 4))
		return -EPROTO;
	for (i = 0; i < count; i++) {
		r[i].iova = wire_get64(p + 8 + 16 * i);
		r[i].length = wire_get64(p + 16 + 16 * i);
		if (!r[i].length || r[i].iova % WIRE_PAGE ||
		    r[i].length % WIRE_PAGE ||
		    r[i].iova + r[i].length < r[i].iova)
			return -EPROTO;
		/* sorted, not overlapping */
		if (i && r[i].iova < r[i - 1].iova + r[i - 1].length)
			return -EPROTO;
	}
	*n = count;
	return 0;
}

size_t wire_enc_u64s(uint8_t *p, const uint64_t *v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		wire_put64(p + 8 * i, v[i]);
	return 8 * n;
}

int wire_dec_u64s(const uint8_t *p, size_t len, uint64_t *v, unsigned int n)
{
	unsigned int i;

	if (len < 8ull * n)
		return -EPROTO;
	for (i = 0; i < n; i++)
		v[i] = wire_get64(p + 8 * i);
	return 0;
}

void wire_pages_meta(uint8_t *block, uint32_t round, const uint64_t *desc,
		     uint32_t count)
{
	uint32_t i, ndata = 0;

	memset(block, 0, WIRE_PAGE);
	for (i = 0; i < count; i++) {
		wire_put64(block + WIRE_PAGES_META + 8 * i, desc[i]);
		if ((desc[i] & WIRE_PG_KIND_MASK) == WIRE_PG_DATA)
			ndata++;
	}
	wire_put32(block, round);
	wire_put32(block + 4, count);
	wire_put32(block + 8, ndata);
}

void wire_pages_view(const uint8_t *p, struct wire_pages *v)
{
	v->round = wire_get32(p);
	v->count = wire_get32(p + 4);
	v->ndata = wire_get32(p + 8);
	v->desc = p + WIRE_PAGES_META;
	v->data = p + WIRE_PAGE;
}

/* ---- a connection ---- */

#define HUGE_ALIGN	(2u << 20)

/*
 * A buffer the kernel can pin as huge pages: /dev/vfio-mig's PAGES then
 * copies straight between guest memory and it, one copy per run of pages
 * contiguous in memory (free() it).
 */
void *wire_huge_alloc(size_t len)
{
	size_t sz = (len + HUGE_ALIGN - 1) & ~(size_t)(HUGE_ALIGN - 1);
	void *p = aligned_alloc(HUGE_ALIGN, sz);

	if (p)
		madvise(p, sz, MADV_HUGEPAGE);
	return p;
}

int wire_conn_init(struct wire_conn *c, int fd, int timeout_ms,
		   volatile sig_atomic_t *stop)
{
	int sz = 4 << 20, one = 1, fl;

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->stop = stop;
	c->rx = wire_huge_alloc(WIRE_MAX_PAYLOAD);
	if (!c->rx)
		return -ENOMEM;
	/*
	 * Big buffers for the bulk; Nagle off. Every frame goes out in one
	 * sendmsg (header and payload together), so Nagle merges nothing,
	 * but it held a frame's last partial segment, and a small control
	 * frame behind it (FINAL, READY, COMMIT, DONE), until the peer's
	 * delayed ACK: up to 40 ms more of downtime at each of them.
	 */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/*
	 * Non-blocking: every send and receive here waits in poll() with its
	 * deadline; sendfile() and splice() take the socket's flag, not a
	 * per-call one, for the socket's side of their transfer.
	 */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK)) {
		fl = errno;
		free(c->rx);	/* the caller closes @fd */
		c->rx = NULL;
		return -fl;
	}
	return 0;
}

void wire_conn_free(struct wire_conn *c)
{
	tls_end(c);
	free(c->rx);
	c->rx = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

long long wire_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Wait for @events until @deadline (ms, 0: none; @tmo: its length). 0 or -errno. */
static int wait_fd(struct wire_conn *c, short events, long long deadline,
		   int tmo)
{
	struct pollfd p = { .fd = c->fd, .events = events };
	int left, ret;

	for (;;) {
		if (c->stop && *c->stop) {
			snprintf(c->err, sizeof(c->err), "interrupted by a signal");
			return -EINTR;
		}
		left = 200;
		if (deadline) {
			long long l = deadline - wire_now_ms();

			if (l <= 0) {
				snprintf(c->err, sizeof(c->err), events & POLLOUT ?
					 "the peer did not take the frame within %d ms (timeout: link or peer gone?)" :
					 "the peer did not send the frame within %d ms (timeout: link or peer gone?)",
					 tmo);
				return -ETIMEDOUT;
			}
			if (l < left)
				left = l;
		}
		ret = poll(&p, 1, left);
		if (ret > 0)
			return 0;
		if (ret < 0 && errno != EINTR) {
			snprintf(c->err, sizeof(c->err), "poll: %s",
				 strerror(errno));
			return -errno;
		}
	}
}

/*
 * Wait to receive. 6.1's kTLS has no poll of its own: its socket polls
 * readable as soon as part of a record is in, and a read then finds
 * nothing (EAGAIN) until the rest has come; so does GnuTLS's record layer
 * with part of a record read. @woke_us: 0, or the last wait returned and
 * the read after it found nothing: the record is on its way, and this
 * wait lets it come first (50 us, twice as long each time again, at most
 * 1 ms) rather than spinning on a CPU the sender may need. The caller
 * sets @woke_us to 0 when a read gets bytes.
 */
static int wait_rx(struct wire_conn *c, unsigned int *woke_us,
		   long long deadline, int tmo)
{
	struct timespec ts = { 0, 1000L * *woke_us };
	int ret;

	if (*woke_us)
		nanosleep(&ts, NULL);
	ret = wait_fd(c, POLLIN, deadline, tmo);
	if (ret)
		return ret;
	*woke_us = !*woke_us ? 50 : *woke_us < 1000 ? 2 * *woke_us : 1000;
	return 0;
}

/*
 * Would sending @mh pass the records the connection's key may encrypt?
 * A send makes at most one record per TLS_REC_MAX bytes (kTLS closes its
 * record at the end of each sendmsg without MSG_MORE; GnuTLS sends one).
 */
static bool past_record_limit(struct wire_conn *c, const struct msghdr *mh)
{
	uint64_t len = 0;
	size_t i;

	if (!c->tx_record_limit)
		return false;
	for (i = 0; i < mh->msg_iovlen; i++)
		len += mh->msg_iov[i].iov_len;
	if (c->tx_records + (len + TLS_REC_MAX - 1) / TLS_REC_MAX <=
	    c->tx_record_limit)
		return false;
	c->broken = true;
	snprintf(c->err, sizeof(c->err),
		 "TLS: %llu records sent under one AES-GCM key, the most this link sends (RFC 8446 5.5; kTLS cannot update keys here): migrate with --tls-cipher chacha20 on both hosts",
		 (unsigned long long)c->tx_records);
	return true;
}

/* One non-blocking send: bytes sent, or -errno (-EAGAIN: wait). */
static ssize_t io_send(struct wire_conn *c, struct msghdr *mh, int more)
{
	ssize_t w;

	if (past_record_limit(c, mh))
		return -EKEYEXPIRED;
	if (c->tls && !c->ktls_tx) {
		w = tls_send(c, mh->msg_iov, mh->msg_iovlen);
		if (w > 0)
			c->tx_records++;
		return w;
	}
	w = sendmsg(c->fd, mh, MSG_NOSIGNAL | MSG_DONTWAIT | more);
	if (w > 0)
		c->tx_records += ((uint64_t)w + TLS_REC_MAX - 1) / TLS_REC_MAX;
	return w < 0 ? -errno : w;
}

/*
 * A kTLS receive failed with @e: a record the kernel could not decrypt or
 * whose header is too short (EBADMSG), an alert or other control record,
 * which recv() without a control buffer refuses with EIO and splice()
 * (@splice) with EINVAL, as it does a record header of another version.
 * -EPROTO with c->err set, or 0: another error, the caller's to report.
 */
static int ktls_rx_refused(struct wire_conn *c, int e, bool splice)
{
	if (!c->ktls_rx || (e != EBADMSG && e != (splice ? EINVAL : EIO)))
		return 0;
	c->broken = true;
	snprintf(c->err, sizeof(c->err), "%s", e == EBADMSG ?
		 "TLS receive: a record failed authentication or was malformed (tampering?)" :
		 "TLS receive: the peer sent a TLS alert, another control record or a malformed one");
	return -EPROTO;
}

/* One non-blocking receive: bytes, 0 at the end, or -errno (-EAGAIN: wait). */
static ssize_t io_recv(struct wire_conn *c, void *p, size_t len)
{
	ssize_t r;

	if (c->tls && !c->ktls_rx)
		return tls_recv(c, p, len);
	r = recv(c->fd, p, len, MSG_DONTWAIT);
	if (r < 0 && ktls_rx_refused(c, errno, false))
		return -EPROTO;
	return r < 0 ? -errno : r;
}

static int sock_err(struct wire_conn *c, const char *what, int e)
{
	c->broken = true;
	if (e == EPIPE || e == ECONNRESET)
		snprintf(c->err, sizeof(c->err),
			 "%s: connection reset by the peer", what);
	else
		snprintf(c->err, sizeof(c->err), "%s: %s", what, strerror(e));
	return -e;
}

/*
 * The tail of a frame: @len bytes of @fd from offset 0, by sendfile(), so
 * that pages the kernel staged go to the socket without a copy through
 * migctl (kTLS encrypts them on their way).
 */
static int send_file_tail(struct wire_conn *c, int fd, size_t len,
			  long long deadline)
{
	off_t off = 0;
	ssize_t w;
	int ret = 0;

	while ((size_t)off < len) {
		struct iovec v = { .iov_len = len - off };
		struct msghdr mh = { .msg_iov = &v, .msg_iovlen = 1 };

		if (past_record_limit(c, &mh)) {
			ret = -EKEYEXPIRED;
			break;
		}
		w = sendfile(c->fd, fd, &off, len - off);
		if (w > 0) {
			c->tx_bytes += w;
			c->tx_records += ((uint64_t)w + TLS_REC_MAX - 1) /
					 TLS_REC_MAX;
			continue;
		}
		if (!w) {
			/* the staged pages ended early: a bug, not the peer */
			c->broken = true;
			snprintf(c->err, sizeof(c->err),
				 "send: the staged pages ended %zu bytes early",
				 len - (size_t)off);
			ret = -EIO;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			ret = sock_err(c, "send", errno);
			break;
		}
		ret = wait_fd(c, POLLOUT, deadline, c->timeout_ms);
		if (ret) {
			c->broken = true;
			break;
		}
	}
	return ret;
}

int wire_sendv_fd(struct wire_conn *c, uint16_t type, const struct iovec *iov,
		  int niov, uint64_t sum, int fd, size_t fd_len)
{
	struct iovec v[WIRE_BATCH + 4];
	uint8_t hdr[WIRE_HDR_LEN];
	long long deadline;
	size_t len = fd_len, total;
	struct msghdr mh = {};
	int i, n = 0, ret;
	ssize_t w;

	if (c->broken)
		return -EPIPE;
	if (niov > (int)WIRE_BATCH + 3)
		return -E2BIG;
	if (fd_len && c->tls && !c->ktls_tx)
		return -EOPNOTSUPP;	/* GnuTLS encrypts what migctl holds */
	for (i = 0; i < niov; i++)
		len += iov[i].iov_len;
	wire_hdr_encode(hdr, type, len, c->tx_seq, sum);
	v[n].iov_base = hdr;
	v[n++].iov_len = sizeof(hdr);
	for (i = 0; i < niov; i++)
		if (iov[i].iov_len)
			v[n++] = iov[i];
	total = len - fd_len + sizeof(hdr);
	mh.msg_iov = v;
	mh.msg_iovlen = n;
	/* the whole frame within the timeout, however the peer reads it */
	deadline = c->timeout_ms > 0 ? wire_now_ms() + c->timeout_ms : 0;
	while (total) {
		w = io_send(c, &mh, fd_len ? MSG_MORE : 0);
		if (w < 0) {
			if (w == -EINTR)
				continue;
			if (w == -EPROTO || w == -EKEYEXPIRED)
				return w;
			if (w != -EAGAIN)
				return sock_err(c, "send", -w);
			ret = wait_fd(c, POLLOUT, deadline, c->timeout_ms);
			if (ret) {
				c->broken = true;
				return ret;
			}
			continue;
		}
		total -= w;
		c->tx_bytes += w;
		while (w > 0 && mh.msg_iovlen) {
			if ((size_t)w >= mh.msg_iov->iov_len) {
				w -= mh.msg_iov->iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			} else {
				mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + w;
				mh.msg_iov->iov_len -= w;
				w = 0;
			}
		}
	}
	if (fd_len) {
		ret = send_file_tail(c, fd, fd_len, deadline);
		if (ret)
			return ret;
	}
	c->tx_seq++;
	return 0;
}

int wire_sendv(struct wire_conn *c, uint16_t type, const struct iovec *iov,
	       int niov, uint64_t sum)
{
	return wire_sendv_fd(c, type, iov, niov, sum, -1, 0);
}

int wire_send(struct wire_conn *c, uint16_t type, const void *p, size_t len)
{
	struct iovec v = { .iov_base = (void *)p, .iov_len = len };

	return wire_sendv(c, type, &v, len ? 1 : 0,
			  c->sum_off ? 0 : wire_sum(p, len));
}

/* Read @len bytes before @deadline (ms; 0: none; @tmo: its length). */
static int read_full(struct wire_conn *c, uint8_t *p, size_t len,
		     long long deadline, int tmo, bool frame_start)
{
	unsigned int woke_us = 0;
	size_t got = 0;
	ssize_t r;
	int ret;

	while (got < len) {
		r = io_recv(c, p + got, len - got);
		if (r > 0) {
			got += r;
			c->rx_bytes += r;
			woke_us = 0;
			continue;
		}
		if (!r) {
			c->broken = true;
			snprintf(c->err, sizeof(c->err), "%s",
				 frame_start && !got ?
				 "the peer closed the connection" :
				 "the peer closed the connection in the middle of a frame");
			return -ECONNRESET;
		}
		if (r == -EINTR)
			continue;
		if (r == -EPROTO)
			return r;
		if (r != -EAGAIN)
			return sock_err(c, "receive", -r);
		ret = wait_rx(c, &woke_us, deadline, tmo);
		if (ret) {
			if (ret != -EINTR)
				c->broken = true;
			return ret;
		}
	}
	return 0;
}

static int recv_frame(struct wire_conn *c, struct wire_msg *m, int timeout_ms,
		      bool pages_head)
{
	uint8_t hdr[WIRE_HDR_LEN];
	long long deadline, hdr_deadline;
	int ret;

	if (c->broken)
		return -EPIPE;
	if (timeout_ms <= 0)
		timeout_ms = c->timeout_ms;
	/*
	 * One deadline for the header, skipped frames included: frames of
	 * unknown optional types do not restart the wait, so a peer sending
	 * them cannot hold this call open past twice @timeout_ms (the last
	 * payload's time included).
	 */
	hdr_deadline = timeout_ms > 0 ? wire_now_ms() + timeout_ms : 0;
	for (;;) {
		ret = read_full(c, hdr, sizeof(hdr), hdr_deadline, timeout_ms,
				true);
		if (ret)
			return ret;
		ret = wire_hdr_decode(hdr, c->rx_seq, &m->h, c->err,
				      sizeof(c->err));
		if (ret) {
			c->broken = true;
			return ret;
		}
		/*
		 * The payload: as long again, from the header on, at most,
		 * and never past the header's deadline plus that.
		 */
		deadline = 0;
		if (timeout_ms > 0) {
			deadline = wire_now_ms() + timeout_ms;
			if (deadline > hdr_deadline + timeout_ms)
				deadline = hdr_deadline + timeout_ms;
		}
		/* a PAGES frame's data pages stay on the socket: m->rest */
		m->rest = 0;
		if (pages_head && m->h.type == WIRE_PAGES &&
		    m->h.length >= WIRE_PAGE)
			m->rest = m->h.length - WIRE_PAGE;
		m->deadline = deadline;
		m->timeout_ms = timeout_ms;
		ret = read_full(c, c->rx, m->h.length - m->rest, deadline,
				timeout_ms, false);
		if (ret)
			return ret;
		c->rx_seq++;
		ret = c->sum_unchecked || m->rest ?
		      wire_payload_layout(&m->h, c->rx, c->err, sizeof(c->err)) :
		      wire_payload_check(&m->h, c->rx, c->err, sizeof(c->err));
		if (ret) {
			c->broken = true;
			return ret;
		}
		m->p = c->rx;
		if (m->h.type < WIRE_TYPE_NR)
			return 0;
		/* an optional type of a newer minor: skipped, a bounded number */
		if (++c->skipped > WIRE_SKIP_MAX) {
			c->broken = true;
			snprintf(c->err, sizeof(c->err),
				 "the peer sent more than %u frames of unknown optional types",
				 WIRE_SKIP_MAX);
			return -EPROTO;
		}
	}
}

int wire_recv(struct wire_conn *c, struct wire_msg *m, int timeout_ms)
{
	return recv_frame(c, m, timeout_ms, false);
}

int wire_recv_head(struct wire_conn *c, struct wire_msg *m, int timeout_ms)
{
	if (c->tls && !c->ktls_rx)
		return -EOPNOTSUPP;
	return recv_frame(c, m, timeout_ms, true);
}

int wire_splice_rest(struct wire_conn *c, struct wire_msg *m,
		     const int pfd[2], int sink, char *err, size_t errlen)
{
	unsigned int woke_us = 0;
	size_t inpipe = 0;
	ssize_t r;
	int ret;

	while (m->rest || inpipe) {
		if (m->rest) {
			r = splice(c->fd, NULL, pfd[1], NULL, m->rest,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (r > 0) {
				m->rest -= r;
				inpipe += r;
				c->rx_bytes += r;
				woke_us = 0;
			} else if (!r) {
				c->broken = true;
				snprintf(c->err, sizeof(c->err),
					 "the peer closed the connection in the middle of a frame");
				return -ECONNRESET;
			} else if (errno == EINTR) {
				continue;
			} else if (ktls_rx_refused(c, errno, true)) {
				return -EPROTO;
			} else if (errno != EAGAIN) {
				return sock_err(c, "receive", errno);
			} else if (!inpipe) {
				ret = wait_rx(c, &woke_us, m->deadline,
					      m->timeout_ms);
				if (ret) {
					if (ret != -EINTR)
						c->broken = true;
					return ret;
				}
				continue;
			}
		}
		while (inpipe) {
			r = splice(pfd[0], NULL, sink, NULL, inpipe,
				   SPLICE_F_MOVE);
			if (r > 0) {
				inpipe -= r;
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			/* the caller gives up (and may still send ABORT) */
			snprintf(err, errlen, "%s",
				 r ? strerror(errno) : "the sink took nothing");
			return r ? -errno : -EIO;
		}
	}
	return 0;
}

bool wire_readable(struct wire_conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	if (c->tls && !c->ktls_rx && tls_readable(c))
		return true;

	return poll(&p, 1, 0) > 0;
}

int wire_parse_buffer(const uint8_t *buf, size_t len, char *err,
		      size_t errlen)
{
	struct wire_hdr h;
	size_t off = 0;
	int frames = 0, ret;

	while (off < len) {
		if (len - off < WIRE_HDR_LEN) {
			ERR("truncated frame header (%zu bytes)", len - off);
			return -EPROTO;
		}
		ret = wire_hdr_decode(buf + off, frames, &h, err, errlen);
		if (ret)
			return ret;
		off += WIRE_HDR_LEN;
		if (len - off < h.length) {
			ERR("truncated %s payload: %zu of %u bytes",
			    wire_type_name(h.type), len - off, h.length);
			return -EPROTO;
		}
		ret = wire_payload_check(&h, buf + off, err, errlen);
		if (ret)
			return ret;
		off += h.length;
		frames++;
	}
	return frames;
}
