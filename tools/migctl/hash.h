/* SPDX-License-Identifier: GPL-2.0 */
/*
 * migctl's 64-bit non-cryptographic hash: the frame checksum of the
 * migration wire protocol and the per-page content hash (what the target
 * holds). Word at a time, four independent lanes of xor, rotate and
 * multiply, then an avalanche. It detects corruption and tells pages
 * apart; it is no defence against someone forging data (the link is
 * trusted: run it over a private network, or a tunnel).
 */
#ifndef MIGCTL_HASH_H
#define MIGCTL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MH_SEED_PAGE	0x7667696d70616765ull	/* "vmigpage" */
#define MH_SEED_FRAME	0x7667696d6672616dull	/* "vmigfram" */

uint64_t mh_hash64(const void *p, size_t len, uint64_t seed);
/* The final avalanche (also used to combine block hashes). */
uint64_t mh_mix(uint64_t h);
/* mh_hash64() of a 4096-byte page of zeros with MH_SEED_PAGE. */
uint64_t mh_zero_page_hash(void);

#endif
