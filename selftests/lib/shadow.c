// SPDX-License-Identifier: GPL-2.0
/* The shadow adapter through vfio_mig's netlink family (shadow.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <linux/vfio_mig.h>

#include "shadow.h"

static int shadow_cb(const struct nlmsghdr *h, void *priv)
{
	const struct nlattr *tb[VFIO_MIG_A_SHADOW_MAX + 1];
	struct lm_shadow *s = priv;

	genl_parse(h, tb, VFIO_MIG_A_SHADOW_MAX);
	if (!tb[VFIO_MIG_A_SHADOW_ENGAGED] || !tb[VFIO_MIG_A_SHADOW_AVAILABLE] ||
	    !tb[VFIO_MIG_A_SHADOW_READS] || !tb[VFIO_MIG_A_SHADOW_WRITES] ||
	    !tb[VFIO_MIG_A_SHADOW_DMAS] || !tb[VFIO_MIG_A_SHADOW_IRQS] ||
	    !tb[VFIO_MIG_A_SHADOW_ENGAGE_NS] ||
	    !tb[VFIO_MIG_A_SHADOW_HANDBACK_NS])
		return -EBADMSG;
	s->engaged = *(const uint8_t *)genl_data(tb[VFIO_MIG_A_SHADOW_ENGAGED]);
	s->available =
		*(const uint8_t *)genl_data(tb[VFIO_MIG_A_SHADOW_AVAILABLE]);
	s->reads = genl_get_u64(tb[VFIO_MIG_A_SHADOW_READS]);
	s->writes = genl_get_u64(tb[VFIO_MIG_A_SHADOW_WRITES]);
	s->dmas = genl_get_u64(tb[VFIO_MIG_A_SHADOW_DMAS]);
	s->irqs = genl_get_u64(tb[VFIO_MIG_A_SHADOW_IRQS]);
	s->engage_ns = genl_get_u64(tb[VFIO_MIG_A_SHADOW_ENGAGE_NS]);
	s->handback_ns = genl_get_u64(tb[VFIO_MIG_A_SHADOW_HANDBACK_NS]);
	return 0;
}

int lm_shadow_cmd(struct genl *g, uint8_t cmd, const char *bdf)
{
	struct genl_msg m;

	genl_msg_init(&m, g, cmd, 1, 0);
	genl_put_str(&m, VFIO_MIG_A_SHADOW_BDF, bdf);
	return genl_do(g, &m);
}

int lm_shadow_attach_ctl(struct genl *g, const char *bdf, int ctl_fd)
{
	struct genl_msg m;
	uint32_t fd = (uint32_t)ctl_fd;

	genl_msg_init(&m, g, VFIO_MIG_CMD_SHADOW_ATTACH, 1, 0);
	genl_put_str(&m, VFIO_MIG_A_SHADOW_BDF, bdf);
	genl_put(&m, VFIO_MIG_A_SHADOW_CTL_FD, &fd, sizeof(fd));
	return genl_do(g, &m);
}

int lm_shadow_get(struct genl *g, const char *bdf, struct lm_shadow *s)
{
	struct genl_msg m;

	memset(s, 0, sizeof(*s));
	genl_msg_init(&m, g, VFIO_MIG_CMD_SHADOW_GET, 1, 0);
	genl_put_str(&m, VFIO_MIG_A_SHADOW_BDF, bdf);
	return genl_do_reply(g, &m, shadow_cb, s);
}

int lm_shadow_wait_released(struct genl *g, const char *bdf,
			    struct lm_shadow *s, int ms)
{
	int ret;

	for (;;) {
		ret = lm_shadow_get(g, bdf, s);
		if (ret || !s->engaged)
			return ret;
		if (ms <= 0)
			return -ETIMEDOUT;
		usleep(50000);
		ms -= 50;
	}
}
