/* SPDX-License-Identifier: GPL-2.0 */
/*
 * migctl's hashes.
 *
 * mh_hash64(): 64-bit, non-cryptographic (include/vfio-mig/mh_hash.h, which
 * the kernel's page staging shares): the frame checksum of the wire
 * protocol (word at a time, four independent lanes of xor, rotate and
 * multiply, then an avalanche). It detects corruption; it is invertible,
 * so anyone can build two inputs with one value. TLS authenticates the
 * frames; the checksum only catches corruption on an --insecure link.
 *
 * mh_keyed64(): SipHash-2-4 (libsodium) under a random key drawn for each
 * migration: the page content hash that decides whether a dirty page
 * still holds what the target has. Without the key nobody, the guest
 * included, can make a changed page hash like the page it replaced.
 */
#ifndef MIGCTL_HASH_H
#define MIGCTL_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "../../include/vfio-mig/mh_hash.h"

#define MH_SEED_PAGE	VMIG_MH_SEED_PAGE	/* "vmigpage" */
#define MH_SEED_FRAME	0x7667696d6672616dull	/* "vmigfram" */

uint64_t mh_hash64(const void *p, size_t len, uint64_t seed);
/* The final avalanche (also used to combine block hashes). */
uint64_t mh_mix(uint64_t h);

#define MH_KEY_BYTES	16
struct mh_key {
	unsigned char k[MH_KEY_BYTES];
};

/* A fresh random key. 0, or -1 when no randomness is available. */
int mh_key_new(struct mh_key *key);
uint64_t mh_keyed64(const struct mh_key *key, const void *p, size_t len);

#endif
