/* SPDX-License-Identifier: GPL-2.0 */
/* migctl's generic netlink transport (libnl-3 genl) to the vfio_mig family. */
#ifndef MIGCTL_NL_H
#define MIGCTL_NL_H

#include <stdbool.h>

#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include <linux/vfio_mig.h>

struct migctl_nl {
	struct nl_sock *sk;
	int family;
	int err;		/* errno of the last failed request */
	char extack[256];	/* the kernel's message for it, if any */
};

/* Connect and resolve the family; prints why on failure (exit code 1). */
int migctl_nl_open(struct migctl_nl *nl);
void migctl_nl_close(struct migctl_nl *nl);
/* A request for @cmd; @dump adds NLM_F_DUMP. */
struct nl_msg *migctl_nl_msg(struct migctl_nl *nl, uint8_t cmd, bool dump);
/*
 * Send @msg (consumed) and call @fn for every reply message, until the
 * ack or the end of the dump. Returns 0 or a negative errno, with
 * nl->extack holding the kernel's explanation.
 */
int migctl_nl_run(struct migctl_nl *nl, struct nl_msg *msg,
		  int (*fn)(struct nl_msg *msg, void *arg), void *arg);
/*
 * A request @cmd about the device @bdf (attribute @attr), or with @bdf
 * NULL a dump of every device; run as migctl_nl_run() with @fn, @arg.
 */
int migctl_nl_request(struct migctl_nl *nl, uint8_t cmd, int attr,
		      const char *bdf, int (*fn)(struct nl_msg *msg, void *arg),
		      void *arg);
/* Print "migctl: WHAT: strerror: extack" and return exit code 1. */
int migctl_nl_fail(struct migctl_nl *nl, const char *what, int err);
/* Join the events multicast group. */
int migctl_nl_subscribe(struct migctl_nl *nl);

#endif
