/* SPDX-License-Identifier: GPL-2.0 */
/* The shadow adapter through vfio_mig's netlink family (shadow-*). */
#ifndef VMIG_TEST_SHADOW_H
#define VMIG_TEST_SHADOW_H

#include <stdbool.h>
#include <stdint.h>

#include "genl.h"

struct lm_shadow {
	bool engaged, available;
	uint64_t reads, writes, dmas, irqs, engage_ns, handback_ns;
};

/* shadow-attach or shadow-detach (@cmd) of @bdf: 0 or -errno, g->err. */
int lm_shadow_cmd(struct genl *g, uint8_t cmd, const char *bdf);
/* shadow-attach of @bdf for the control fd @ctl_fd (ctl-fd): 0 or -errno. */
int lm_shadow_attach_ctl(struct genl *g, const char *bdf, int ctl_fd);
/* shadow-get of @bdf into @s: 0 or -errno. */
int lm_shadow_get(struct genl *g, const char *bdf, struct lm_shadow *s);
/* Wait up to @ms for @bdf's shadow to be handed back: 0 or -ETIMEDOUT. */
int lm_shadow_wait_released(struct genl *g, const char *bdf,
			    struct lm_shadow *s, int ms);

#endif
