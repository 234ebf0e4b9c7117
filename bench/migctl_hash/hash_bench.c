// SPDX-License-Identifier: GPL-2.0
/*
 * The cost of migctl's keyed page hash (mh_keyed64: SipHash-2-4 under a
 * per-migration key) against the unkeyed mh_hash64 it replaced for the
 * "unchanged page" decision, over 64 MiB of random pages, median of 7
 * passes each, both measured in this run:
 *
 *   page_hash_ms_per_gib: N          (mh_hash64, the baseline)
 *   keyed_page_hash_ms_per_gib: N    (mh_keyed64)
 *   keyed_hash_cost_ratio: N         (keyed / baseline)
 *   source_hash_cost_ratio: N        (what the source now does per page,
 *                                     both hashes, / what it did, one)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hash.h"

#define PAGE	4096u
#define MIB	64u
#define PASSES	7

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static volatile uint64_t sink;

/* ms per GiB of one pass over @buf with @keyed, the median of PASSES */
static double measure(const uint8_t *buf, size_t len, const struct mh_key *k,
		      int keyed)
{
	double t[PASSES];
	uint64_t acc = 0;
	size_t off;
	int p;

	for (p = 0; p < PASSES; p++) {
		double t0 = now();

		for (off = 0; off < len; off += PAGE)
			acc += keyed ? mh_keyed64(k, buf + off, PAGE) :
			       mh_hash64(buf + off, PAGE, MH_SEED_PAGE);
		t[p] = (now() - t0) * 1000.0 * (1024.0 / MIB);
	}
	sink = acc;
	qsort(t, PASSES, sizeof(t[0]), cmp);
	return t[PASSES / 2];
}

int main(void)
{
	size_t len = (size_t)MIB << 20, i;
	uint8_t *buf = malloc(len);
	struct mh_key k;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	double plain, keyed;

	if (!buf || mh_key_new(&k)) {
		fprintf(stderr, "hash_bench: no memory or no randomness\n");
		return 1;
	}
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = x;
	}
	plain = measure(buf, len, &k, 0);
	keyed = measure(buf, len, &k, 1);
	printf("page_hash_ms_per_gib: %.1f\n", plain);
	printf("keyed_page_hash_ms_per_gib: %.1f\n", keyed);
	printf("keyed_hash_cost_ratio: %.2f\n", keyed / plain);
	printf("source_hash_cost_ratio: %.2f\n", (plain + keyed) / plain);
	free(buf);
	return 0;
}
