// SPDX-License-Identifier: GPL-2.0
/* A small raw generic netlink client; see genl.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "genl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK	270
#endif

#define GENL_RX_SIZE	(64 << 10)

static struct nlattr *tail(struct genl_msg *m)
{
	return (struct nlattr *)(m->buf + NLMSG_ALIGN(m->len));
}

void genl_msg_init(struct genl_msg *m, const struct genl *g, uint8_t cmd,
		   uint8_t version, uint16_t flags)
{
	struct genlmsghdr *gh;

	memset(m->buf, 0, NLMSG_HDRLEN + GENL_HDRLEN);
	m->overflow = false;
	m->len = NLMSG_HDRLEN + GENL_HDRLEN;
	m->hdr.nlmsg_type = g->family;
	m->hdr.nlmsg_flags = NLM_F_REQUEST | flags;
	gh = NLMSG_DATA(&m->hdr);
	gh->cmd = cmd;
	gh->version = version;
}

void genl_put(struct genl_msg *m, uint16_t type, const void *data,
	      size_t len)
{
	struct nlattr *a = tail(m);
	size_t room = sizeof(m->buf) - NLMSG_ALIGN(m->len);

	if (NLA_HDRLEN + NLA_ALIGN(len) > room || len > 0xffff - NLA_HDRLEN) {
		m->overflow = true;
		return;
	}
	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy((char *)a + NLA_HDRLEN, data, len);
	memset((char *)a + NLA_HDRLEN + len, 0, NLA_ALIGN(len) - len);
	m->len = NLMSG_ALIGN(m->len) + NLA_ALIGN(a->nla_len);
}

void genl_put_u64(struct genl_msg *m, uint16_t type, uint64_t v)
{
	genl_put(m, type, &v, sizeof(v));
}

void genl_put_str(struct genl_msg *m, uint16_t type, const char *s)
{
	genl_put(m, type, s, strlen(s) + 1);
}

void genl_put_flag(struct genl_msg *m, uint16_t type)
{
	genl_put(m, type, NULL, 0);
}

struct nlattr *genl_nest_start(struct genl_msg *m, uint16_t type)
{
	struct nlattr *a = tail(m);

	genl_put(m, type | NLA_F_NESTED, NULL, 0);
	return m->overflow ? NULL : a;
}

void genl_nest_end(struct genl_msg *m, struct nlattr *nest)
{
	if (nest)
		nest->nla_len = (char *)tail(m) - (char *)nest;
}

static void attrs_parse(const struct nlattr *a, int rem,
			const struct nlattr **tb, int max)
{
	memset(tb, 0, sizeof(*tb) * (max + 1));
	while (rem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&
	       a->nla_len <= rem) {
		int type = a->nla_type & NLA_TYPE_MASK;

		if (type <= max)
			tb[type] = a;
		rem -= NLA_ALIGN(a->nla_len);
		a = (const struct nlattr *)((const char *)a +
					    NLA_ALIGN(a->nla_len));
	}
}

void genl_parse(const struct nlmsghdr *h, const struct nlattr **tb, int max)
{
	const char *p = (const char *)NLMSG_DATA(h) + GENL_HDRLEN;
	int rem = (int)h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;

	attrs_parse((const struct nlattr *)p, rem, tb, max);
}

void genl_parse_nest(const struct nlattr *nest, const struct nlattr **tb,
		     int max)
{
	attrs_parse(genl_data(nest), genl_len(nest), tb, max);
}

uint64_t genl_get_u64(const struct nlattr *a)
{
	uint64_t v = 0;

	memcpy(&v, genl_data(a), genl_len(a) < 8 ? genl_len(a) : 8);
	return v;
}

static int send_msg(struct genl *g, struct genl_msg *m)
{
	if (m->overflow)
		return -EMSGSIZE;
	m->hdr.nlmsg_len = m->len;
	m->hdr.nlmsg_seq = ++g->seq;
	if (send(g->fd, m->buf, m->len, 0) != (ssize_t)m->len)
		return -errno;
	return 0;
}

/* An NLMSG_ERROR: its errno (0 for an ack), its extack message kept. */
static int error_of(struct genl *g, const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = sizeof(*e);

	if (h->nlmsg_len < NLMSG_HDRLEN + sizeof(*e))
		return -EPROTO;
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	if ((h->nlmsg_flags & NLM_F_ACK_TLVS) &&
	    NLMSG_HDRLEN + off < h->nlmsg_len) {
		attrs_parse((const struct nlattr *)((const char *)e + off),
			    h->nlmsg_len - NLMSG_HDRLEN - off, tb,
			    NLMSGERR_ATTR_MAX);
		if (tb[NLMSGERR_ATTR_MSG])
			snprintf(g->err, sizeof(g->err), "%.*s",
				 (int)genl_len(tb[NLMSGERR_ATTR_MSG]),
				 (const char *)genl_data(tb[NLMSGERR_ATTR_MSG]));
	}
	return e->error;
}

/* An NLMSG_DONE: the dump's errno, its extack message kept. */
static int done_of(struct genl *g, const struct nlmsghdr *h)
{
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = NLMSG_ALIGN(sizeof(int));
	int err = 0;

	if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(int))
		memcpy(&err, NLMSG_DATA(h), sizeof(int));
	if (err && (h->nlmsg_flags & NLM_F_ACK_TLVS) &&
	    NLMSG_HDRLEN + off < h->nlmsg_len) {
		attrs_parse((const struct nlattr *)((const char *)NLMSG_DATA(h) +
						    off),
			    h->nlmsg_len - NLMSG_HDRLEN - off, tb,
			    NLMSGERR_ATTR_MAX);
		if (tb[NLMSGERR_ATTR_MSG])
			snprintf(g->err, sizeof(g->err), "%.*s",
				 (int)genl_len(tb[NLMSGERR_ATTR_MSG]),
				 (const char *)genl_data(tb[NLMSGERR_ATTR_MSG]));
	}
	return err;
}

/*
 * Receive until the answer to the last request ends: an ack or error for
 * a do, NLMSG_DONE for a dump. @cb sees each data message.
 */
static int recv_until_done(struct genl *g, genl_cb cb, void *priv)
{
	int ret = 0;

	for (;;) {
		ssize_t n = recv(g->fd, g->rx, GENL_RX_SIZE, MSG_TRUNC);
		struct nlmsghdr *h;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n > GENL_RX_SIZE)
			return -EMSGSIZE;
		for (h = (struct nlmsghdr *)g->rx; NLMSG_OK(h, n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != g->seq)
				continue;	/* a stale answer */
			if (h->nlmsg_type == NLMSG_ERROR) {
				int err = error_of(g, h);

				return ret ?: err;
			}
			if (h->nlmsg_type == NLMSG_DONE) {
				int err = done_of(g, h);

				return ret ?: err;
			}
			if (cb && !ret)
				ret = cb(h, priv);
		}
	}
}

int genl_do(struct genl *g, struct genl_msg *m)
{
	int ret;

	g->err[0] = 0;
	m->hdr.nlmsg_flags |= NLM_F_ACK;
	ret = send_msg(g, m);
	return ret ?: recv_until_done(g, NULL, NULL);
}

int genl_do_reply(struct genl *g, struct genl_msg *m, genl_cb cb,
		  void *priv)
{
	int ret;

	g->err[0] = 0;
	m->hdr.nlmsg_flags |= NLM_F_ACK;
	ret = send_msg(g, m);
	return ret ?: recv_until_done(g, cb, priv);
}

int genl_dump(struct genl *g, struct genl_msg *m, genl_cb cb, void *priv)
{
	int ret;

	g->err[0] = 0;
	m->hdr.nlmsg_flags |= NLM_F_DUMP;
	ret = send_msg(g, m);
	return ret ?: recv_until_done(g, cb, priv);
}

static int family_cb(const struct nlmsghdr *h, void *priv)
{
	const struct nlattr *tb[CTRL_ATTR_MAX + 1];
	uint16_t *id = priv;

	genl_parse(h, tb, CTRL_ATTR_MAX);
	if (tb[CTRL_ATTR_FAMILY_ID])
		memcpy(id, genl_data(tb[CTRL_ATTR_FAMILY_ID]), sizeof(*id));
	return 0;
}

int genl_open(struct genl *g, const char *family)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct genl_msg *m;
	int one = 1, ret;

	memset(g, 0, sizeof(*g));
	g->fd = -1;
	m = malloc(sizeof(*m));
	g->rx = malloc(GENL_RX_SIZE);
	if (!g->rx || !m) {
		ret = -ENOMEM;
		goto fail;
	}
	g->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (g->fd < 0 || bind(g->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		goto fail;
	}
	setsockopt(g->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(g->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	g->family = GENL_ID_CTRL;
	genl_msg_init(m, g, CTRL_CMD_GETFAMILY, 1, NLM_F_ACK);
	genl_put_str(m, CTRL_ATTR_FAMILY_NAME, family);
	g->family = 0;
	/* A do with NLM_F_ACK: the reply comes first, then the ack. */
	ret = send_msg(g, m);
	if (!ret)
		ret = recv_until_done(g, family_cb, &g->family);
	if (!ret && !g->family)
		ret = -ENOENT;
	if (ret)
		goto fail;
	free(m);
	return 0;
fail:
	free(m);
	genl_close(g);
	return ret;
}

void genl_close(struct genl *g)
{
	if (g->fd >= 0)
		close(g->fd);
	free(g->rx);
	g->rx = NULL;
	g->fd = -1;
}

struct grp_find {
	const char *group;
	uint32_t id;
	bool found;
};

static int grp_cb(const struct nlmsghdr *h, void *priv)
{
	const struct nlattr *tb[CTRL_ATTR_MAX + 1], *grps[65];
	struct grp_find *f = priv;
	int i;

	genl_parse(h, tb, CTRL_ATTR_MAX);
	if (!tb[CTRL_ATTR_MCAST_GROUPS])
		return 0;
	genl_parse_nest(tb[CTRL_ATTR_MCAST_GROUPS], grps, 64);
	for (i = 0; i <= 64; i++) {
		const struct nlattr *g[CTRL_ATTR_MCAST_GRP_MAX + 1];

		if (!grps[i])
			continue;
		genl_parse_nest(grps[i], g, CTRL_ATTR_MCAST_GRP_MAX);
		if (!g[CTRL_ATTR_MCAST_GRP_NAME] || !g[CTRL_ATTR_MCAST_GRP_ID] ||
		    strncmp(genl_data(g[CTRL_ATTR_MCAST_GRP_NAME]), f->group,
			    genl_len(g[CTRL_ATTR_MCAST_GRP_NAME])))
			continue;
		memcpy(&f->id, genl_data(g[CTRL_ATTR_MCAST_GRP_ID]),
		       sizeof(f->id));
		f->found = true;
	}
	return 0;
}

int genl_mcast_group(struct genl *g, const char *family, const char *group,
		     uint32_t *id)
{
	struct grp_find f = { .group = group };
	struct genl ctrl = *g;
	struct genl_msg *m = malloc(sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	ctrl.family = GENL_ID_CTRL;
	genl_msg_init(m, &ctrl, CTRL_CMD_GETFAMILY, 1, 0);
	genl_put_str(m, CTRL_ATTR_FAMILY_NAME, family);
	ret = genl_do_reply(&ctrl, m, grp_cb, &f);
	g->seq = ctrl.seq;
	free(m);
	if (ret)
		return ret;
	if (!f.found)
		return -ENOENT;
	*id = f.id;
	return 0;
}
