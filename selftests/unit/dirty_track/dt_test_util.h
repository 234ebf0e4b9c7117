/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the dirty_track unit tests. */
#ifndef _DT_TEST_UTIL_H
#define _DT_TEST_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Deterministic PRNG (xorshift64*). */
static inline uint64_t tu_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/*
 * Sink that records pages of a "universe" [base, base + npages * ps) into a
 * byte map, and checks that runs are page aligned, ascending and inside it.
 */
struct tu_sink {
	uint64_t base;
	uint64_t ps;
	uint64_t npages;
	uint8_t *map;		/* count of deliveries per page */
	uint64_t last_end;	/* for the ascending check */
	int bad;		/* set on any violation */
	uint64_t runs;
};

static inline void tu_sink_init(struct tu_sink *s, uint64_t base, uint64_t ps,
				uint64_t npages)
{
	memset(s, 0, sizeof(*s));
	s->base = base;
	s->ps = ps;
	s->npages = npages;
	s->map = calloc(npages ? npages : 1, 1);
}

static inline void tu_sink_reset(struct tu_sink *s)
{
	memset(s->map, 0, s->npages);
	s->last_end = 0;
	s->bad = 0;
	s->runs = 0;
}

static inline void tu_sink_fn(void *priv, uint64_t iova, uint64_t len)
{
	struct tu_sink *s = priv;
	uint64_t i, n;

	s->runs++;
	if (!len || iova % s->ps || len % s->ps || iova < s->base ||
	    (s->runs > 1 && iova < s->last_end)) {
		s->bad = 1;
		return;
	}
	n = len / s->ps;
	if ((iova - s->base) / s->ps + n > s->npages) {
		s->bad = 2;
		return;
	}
	for (i = 0; i < n; i++)
		s->map[(iova - s->base) / s->ps + i]++;
	s->last_end = iova + len;
}

#endif
