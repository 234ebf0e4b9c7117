/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The wire protocol's block hash (Documentation/live-migration.rst, "Wire
 * protocol"): 64-bit, non-cryptographic, a word at a time in four
 * independent lanes of xor, rotate and multiply, then an avalanche. The
 * frame checksum of an --insecure link is made of one such hash per 4 KiB
 * block. migctl (tools/migctl/hash.c) and the kernel's staging of pages
 * (drivers/vfio-mig/stage.c) take it from this one definition, so that a
 * block hashed by either side is the same number.
 */
#ifndef _VFIO_MIG_MH_HASH_H
#define _VFIO_MIG_MH_HASH_H

#include <linux/types.h>
#include <asm/byteorder.h>

#define VMIG_MH_K1	0x9e3779b97f4a7c15ull
#define VMIG_MH_K2	0xbf58476d1ce4e5b9ull
#define VMIG_MH_K3	0x94d049bb133111ebull
#define VMIG_MH_K4	0xd6e8feb86659fd93ull

static inline __u64 mh_rotl(__u64 x, int r)
{
	return x << r | x >> (64 - r);
}

static inline __u64 mh_load64(const unsigned char *p)
{
	__le64 w;

	__builtin_memcpy(&w, p, sizeof(w));
	return __le64_to_cpu(w);
}

static inline __u64 mh_lane(__u64 h, __u64 w)
{
	return mh_rotl(h ^ w, 29) * VMIG_MH_K3;
}

/* The final avalanche (also what combines block hashes into a checksum). */
static inline __u64 vmig_mh_mix(__u64 h)
{
	h ^= h >> 31;
	h *= VMIG_MH_K2;
	h ^= h >> 29;
	h *= VMIG_MH_K4;
	h ^= h >> 32;
	return h;
}

static inline __u64 vmig_mh_hash64(const void *p, __kernel_size_t len, __u64 seed)
{
	const unsigned char *s = p;
	__u64 a = seed ^ VMIG_MH_K1, b = seed + VMIG_MH_K2, c = mh_rotl(seed, 17) ^ VMIG_MH_K3,
	      d = seed - VMIG_MH_K4, h, tail = 0;
	__kernel_size_t n = len;

	for (; n >= 32; s += 32, n -= 32) {
		a = mh_lane(a, mh_load64(s));
		b = mh_lane(b, mh_load64(s + 8));
		c = mh_lane(c, mh_load64(s + 16));
		d = mh_lane(d, mh_load64(s + 24));
	}
	for (; n >= 8; s += 8, n -= 8)
		a = mh_lane(a, mh_load64(s));
	if (n) {
		unsigned char last[8] = { 0 };

		__builtin_memcpy(last, s, n);
		tail = mh_load64(last);
		b = mh_lane(b, tail ^ (__u64)n << 56);
	}
	h = mh_rotl(a, 1) + mh_rotl(b, 7) + mh_rotl(c, 12) + mh_rotl(d, 18);
	h ^= (__u64)len * VMIG_MH_K1;
	return vmig_mh_mix(h);
}

/*
 * The same hash over bytes that come in pieces (the target's kernel takes
 * a page's hash as its bytes pass through a pipe): init, then update with
 * the pieces in order, then final; equal to vmig_mh_hash64() over the
 * whole.
 */
struct vmig_mh_stream {
	__u64 a, b, c, d;
	__u64 len;
	unsigned char carry[32];
	__u32 nc;
};

static inline void vmig_mh_stream_init(struct vmig_mh_stream *st, __u64 seed)
{
	st->a = seed ^ VMIG_MH_K1;
	st->b = seed + VMIG_MH_K2;
	st->c = mh_rotl(seed, 17) ^ VMIG_MH_K3;
	st->d = seed - VMIG_MH_K4;
	st->len = 0;
	st->nc = 0;
}

static inline void vmig_mh_stream_block(struct vmig_mh_stream *st,
					const unsigned char *s)
{
	st->a = mh_lane(st->a, mh_load64(s));
	st->b = mh_lane(st->b, mh_load64(s + 8));
	st->c = mh_lane(st->c, mh_load64(s + 16));
	st->d = mh_lane(st->d, mh_load64(s + 24));
}

static inline void vmig_mh_stream_update(struct vmig_mh_stream *st,
					 const void *p, __kernel_size_t n)
{
	const unsigned char *s = p;
	__kernel_size_t k;

	st->len += n;
	if (st->nc) {
		k = 32 - st->nc < n ? 32 - st->nc : n;
		__builtin_memcpy(st->carry + st->nc, s, k);
		st->nc += k;
		s += k;
		n -= k;
		if (st->nc < 32)
			return;
		vmig_mh_stream_block(st, st->carry);
		st->nc = 0;
	}
	for (; n >= 32; s += 32, n -= 32)
		vmig_mh_stream_block(st, s);
	__builtin_memcpy(st->carry, s, n);
	st->nc = n;
}

static inline __u64 vmig_mh_stream_final(struct vmig_mh_stream *st)
{
	const unsigned char *s = st->carry;
	__u64 a = st->a, b = st->b, h;
	__u32 n = st->nc;

	for (; n >= 8; s += 8, n -= 8)
		a = mh_lane(a, mh_load64(s));
	if (n) {
		unsigned char last[8] = { 0 };

		__builtin_memcpy(last, s, n);
		b = mh_lane(b, mh_load64(last) ^ (__u64)n << 56);
	}
	h = mh_rotl(a, 1) + mh_rotl(b, 7) + mh_rotl(st->c, 12) +
	    mh_rotl(st->d, 18);
	h ^= st->len * VMIG_MH_K1;
	return vmig_mh_mix(h);
}

/* The seed of a page's block hash (a frame payload's 4 KiB blocks). */
#define VMIG_MH_SEED_PAGE	0x7667696d70616765ull	/* "vmigpage" */

#endif /* _VFIO_MIG_MH_HASH_H */
