// SPDX-License-Identifier: GPL-2.0
/* migctl's generic netlink transport (libnl-3 genl) to the vfio_mig family. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include <netlink/genl/ctrl.h>

#include "nl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

int migctl_nl_open(struct migctl_nl *nl)
{
	int one = 1;

	memset(nl, 0, sizeof(*nl));
	nl->sk = nl_socket_alloc();
	if (!nl->sk || genl_connect(nl->sk)) {
		fprintf(stderr, "migctl: cannot open a generic netlink socket\n");
		return 1;
	}
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_CAP_ACK,
		   &one, sizeof(one));
	nl->family = genl_ctrl_resolve(nl->sk, VFIO_MIG_FAMILY_NAME);
	if (nl->family < 0) {
		fprintf(stderr,
			"migctl: no '%s' netlink family: is the vfio_mig module loaded? (modprobe vfio_mig)\n",
			VFIO_MIG_FAMILY_NAME);
		migctl_nl_close(nl);
		return 1;
	}
	return 0;
}

void migctl_nl_close(struct migctl_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}

struct nl_msg *migctl_nl_msg(struct migctl_nl *nl, uint8_t cmd, bool dump)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
			 dump ? NLM_F_DUMP : 0, cmd, VFIO_MIG_FAMILY_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/* The extack message among the TLVs that follow an error or done. */
static void take_extack(struct migctl_nl *nl, struct nlmsghdr *h,
			const void *tlvs)
{
	const char *end = (const char *)h + h->nlmsg_len;
	const struct nlattr *a = tlvs;

	while ((const char *)a + sizeof(*a) <= end && a->nla_len >= sizeof(*a) &&
	       (const char *)a + a->nla_len <= end) {
		if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
			snprintf(nl->extack, sizeof(nl->extack), "%.*s",
				 (int)(a->nla_len - sizeof(*a)),
				 (const char *)(a + 1));
			return;
		}
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
}

struct run {
	struct migctl_nl *nl;
	int (*fn)(struct nl_msg *msg, void *arg);
	void *arg;
	int done;
	int err;
};

static int on_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct run *r = arg;
	struct nlmsghdr *h = (struct nlmsghdr *)e - 1;
	size_t off = sizeof(*e);

	(void)who;
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	if (h->nlmsg_flags & NLM_F_ACK_TLVS)
		take_extack(r->nl, h, (const char *)e + off);
	r->err = e->error;
	r->done = 1;
	return NL_STOP;
}

static int on_finish(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct run *r = arg;
	int *err = nlmsg_data(h);

	/* A dump that failed part-way carries the errno in its DONE. */
	if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(int) && *err < 0) {
		r->err = *err;
		if (h->nlmsg_flags & NLM_F_ACK_TLVS)
			take_extack(r->nl, h, err + 1);
	}
	r->done = 1;
	return NL_STOP;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
	struct run *r = arg;

	(void)msg;
	r->done = 1;
	return NL_STOP;
}

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct run *r = arg;

	return r->fn ? r->fn(msg, r->arg) : NL_OK;
}

int migctl_nl_run(struct migctl_nl *nl, struct nl_msg *msg,
		  int (*fn)(struct nl_msg *msg, void *arg), void *arg)
{
	struct run r = { .nl = nl, .fn = fn, .arg = arg };
	struct nl_cb *cb;
	int ret;

	nl->extack[0] = 0;
	nl->err = 0;
	if (!msg)
		return -ENOMEM;
	nlmsg_hdr(msg)->nlmsg_flags |= NLM_F_ACK;
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, &r);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, &r);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, &r);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &r);
	ret = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	if (ret < 0) {
		nl_cb_put(cb);
		return -EIO;
	}
	while (!r.done) {
		ret = nl_recvmsgs(nl->sk, cb);
		if (ret < 0 && !r.err) {
			r.err = ret == -NLE_PERM ? -EPERM : -EIO;
			break;
		}
	}
	nl_cb_put(cb);
	nl->err = -r.err;
	return r.err;
}

int migctl_nl_request(struct migctl_nl *nl, uint8_t cmd, int attr,
		      const char *bdf, int (*fn)(struct nl_msg *msg, void *arg),
		      void *arg)
{
	struct nl_msg *msg = migctl_nl_msg(nl, cmd, !bdf);

	if (msg && bdf)
		nla_put_string(msg, attr, bdf);
	return migctl_nl_run(nl, msg, fn, arg);
}

int migctl_nl_fail(struct migctl_nl *nl, const char *what, int err)
{
	fprintf(stderr, "migctl: %s: %s%s%s\n", what, strerror(-err),
		nl->extack[0] ? ": " : "", nl->extack);
	return 1;
}

int migctl_nl_subscribe(struct migctl_nl *nl)
{
	int grp = genl_ctrl_resolve_grp(nl->sk, VFIO_MIG_FAMILY_NAME,
					VFIO_MIG_MCGRP_EVENTS);

	if (grp < 0)
		return -ENOENT;
	nl_socket_disable_seq_check(nl->sk);
	return nl_socket_add_membership(nl->sk, grp) ? -EIO : 0;
}
