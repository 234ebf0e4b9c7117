// SPDX-License-Identifier: GPL-2.0
/*
 * Convergence (Documentation/live-migration.rst, "Rounds and
 * convergence"): the downtime a switchover would take now is estimated as
 * the fixed cost measured (VMM acks, round trips) plus the pending pages
 * (4 KiB each, as if none were zero or unchanged) and the device state at
 * the measured bandwidth. The rounds stop when it fits --downtime-ms.
 */
#include "lm.h"

void lm_conv_measure(struct lm_conv *c, uint64_t bytes, uint64_t us)
{
	uint64_t bw;

	/* Too little data times the latency, not the link: keep the old. */
	if (!us || (bytes < (256u << 10) && c->bw))
		return;
	bw = bytes * 1000000 / us;
	if (!bw)
		bw = 1;
	/* Weighted towards the newest round (the link may change). */
	c->bw = c->bw ? (c->bw + 3 * bw) / 4 : bw;
}

uint64_t lm_conv_estimate(const struct lm_conv *c, uint64_t pending)
{
	uint64_t bw = c->bw, bytes;

	if (c->bw_limit && (!bw || bw > c->bw_limit))
		bw = c->bw_limit;
	bytes = pending * WIRE_PAGE + c->state_bytes;
	if (!bw)
		return UINT64_MAX;	/* nothing measured yet */
	if (bytes > UINT64_MAX / 1000)
		return UINT64_MAX;
	return c->overhead_ms + (bytes * 1000 + bw - 1) / bw;
}

enum lm_decision lm_conv_decide(const struct lm_conv *c, uint32_t rounds,
				uint64_t pending, uint64_t *est_ms)
{
	*est_ms = lm_conv_estimate(c, pending);
	if (rounds >= 1 && *est_ms <= c->downtime_ms)
		return LM_SWITCH;
	/* nothing dirty: another round cannot shorten the switchover */
	if (rounds >= 1 && !pending)
		return LM_SWITCH;
	if (rounds >= c->max_rounds)
		return c->force ? LM_SWITCH_FORCED : LM_GIVE_UP;
	return LM_CONTINUE;
}
