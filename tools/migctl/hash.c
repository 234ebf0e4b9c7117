// SPDX-License-Identifier: GPL-2.0
/* migctl's 64-bit hash (hash.h). */
#include <endian.h>
#include <string.h>

#include <sodium.h>

#include "hash.h"
#include "../../include/vfio-mig/mh_hash.h"

uint64_t mh_hash64(const void *p, size_t len, uint64_t seed)
{
	return vmig_mh_hash64(p, len, seed);
}

uint64_t mh_mix(uint64_t h)
{
	return vmig_mh_mix(h);
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
	return le64toh(h);
}
