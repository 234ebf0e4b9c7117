/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small generic netlink client on a raw socket (no libnl: the test
 * binaries are static). Enough for the vfio_mig family: resolve a family,
 * build requests with (nested) attributes, run a "do" with its ack and
 * extack message, and walk the replies of a dump.
 */
#ifndef VMIG_TEST_GENL_H
#define VMIG_TEST_GENL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#define GENL_MSG_MAX	8192

struct genl {
	int fd;
	uint16_t family;
	uint32_t seq;
	char *rx;		/* receive buffer of GENL_RX_SIZE bytes */
	char err[256];		/* extack message of the last error, or "" */
};

struct genl_msg {
	size_t len;
	bool overflow;		/* an attribute did not fit: do not send */
	union {
		struct nlmsghdr hdr;
		char buf[GENL_MSG_MAX];
	};
};

/* Open a socket and resolve @family; returns 0 or -errno. */
int genl_open(struct genl *g, const char *family);
void genl_close(struct genl *g);

/* Start a request for @cmd of @g's family (NLM_F_REQUEST | @flags). */
void genl_msg_init(struct genl_msg *m, const struct genl *g, uint8_t cmd,
		   uint8_t version, uint16_t flags);
void genl_put(struct genl_msg *m, uint16_t type, const void *data,
	      size_t len);
void genl_put_u64(struct genl_msg *m, uint16_t type, uint64_t v);
void genl_put_str(struct genl_msg *m, uint16_t type, const char *s);
void genl_put_flag(struct genl_msg *m, uint16_t type);
struct nlattr *genl_nest_start(struct genl_msg *m, uint16_t type);
void genl_nest_end(struct genl_msg *m, struct nlattr *nest);

/* Send @m with NLM_F_ACK and wait for the ack; returns 0 or -errno. */
int genl_do(struct genl *g, struct genl_msg *m);
/*
 * Send @m as a dump and call @cb on each reply until NLMSG_DONE; a
 * non-zero return of @cb stops the walk (the rest is drained) and is
 * returned. Returns 0 or -errno.
 */
typedef int (*genl_cb)(const struct nlmsghdr *h, void *priv);
int genl_dump(struct genl *g, struct genl_msg *m, genl_cb cb, void *priv);
/*
 * A "do" with a reply: @cb sees the reply before the ack comes. Returns 0
 * or -errno (the ack's, else @cb's non-zero return).
 */
int genl_do_reply(struct genl *g, struct genl_msg *m, genl_cb cb,
		  void *priv);
/* The id of multicast group @group of @family (the controller's answer). */
int genl_mcast_group(struct genl *g, const char *family, const char *group,
		     uint32_t *id);

/*
 * The attributes of a genetlink message (after the genl header) or of a
 * nest, indexed by type up to @max; later duplicates win.
 */
void genl_parse(const struct nlmsghdr *h, const struct nlattr **tb, int max);
void genl_parse_nest(const struct nlattr *nest, const struct nlattr **tb,
		     int max);
static inline const void *genl_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

static inline size_t genl_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

uint64_t genl_get_u64(const struct nlattr *a);

#endif
