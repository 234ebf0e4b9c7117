// SPDX-License-Identifier: GPL-2.0
/* migctl's 64-bit hash (hash.h). */
#include <endian.h>
#include <string.h>

#include <sodium.h>

#include "hash.h"

#define K1 0x9e3779b97f4a7c15ull
#define K2 0xbf58476d1ce4e5b9ull
#define K3 0x94d049bb133111ebull
#define K4 0xd6e8feb86659fd93ull

static inline uint64_t rotl(uint64_t x, int r)
{
	return x << r | x >> (64 - r);
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return le64toh(w);
}

static inline uint64_t lane(uint64_t h, uint64_t w)
{
	return rotl(h ^ w, 29) * K3;
}

uint64_t mh_mix(uint64_t h)
{
	h ^= h >> 31;
	h *= K2;
	h ^= h >> 29;
	h *= K4;
	h ^= h >> 32;
	return h;
}

uint64_t mh_hash64(const void *p, size_t len, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t a = seed ^ K1, b = seed + K2, c = rotl(seed, 17) ^ K3,
		 d = seed - K4, h, tail = 0;
	size_t n = len;

	for (; n >= 32; s += 32, n -= 32) {
		a = lane(a, load64(s));
		b = lane(b, load64(s + 8));
		c = lane(c, load64(s + 16));
		d = lane(d, load64(s + 24));
	}
	for (; n >= 8; s += 8, n -= 8)
		a = lane(a, load64(s));
	if (n) {
		unsigned char last[8] = { 0 };

		memcpy(last, s, n);
		tail = load64(last);
		b = lane(b, tail ^ (uint64_t)n << 56);
	}
	h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18);
	h ^= (uint64_t)len * K1;
	return mh_mix(h);
}

int mh_key_new(struct mh_key *key)
{
	if (sodium_init() < 0)
		return -1;
	randombytes_buf(key->k, sizeof(key->k));
	return 0;
}

uint64_t mh_keyed64(const struct mh_key *key, const void *p, size_t len)
{
	unsigned char out[crypto_shorthash_siphash24_BYTES];
	uint64_t h;

	crypto_shorthash_siphash24(out, p, len, key->k);
	memcpy(&h, out, sizeof(h));
	return h;
}
