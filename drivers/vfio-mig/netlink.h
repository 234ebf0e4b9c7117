/* SPDX-License-Identifier: GPL-2.0 */
/* vfio-mig: the vfio_mig genetlink family (nl_policy.c, netlink.c). */
#ifndef _VFIO_MIG_NETLINK_H
#define _VFIO_MIG_NETLINK_H

#include <net/genetlink.h>
#include <uapi/linux/vfio_mig.h>

struct vmig_device;

enum {
	VFIO_MIG_NLGRP_EVENTS,
};

extern struct genl_family vfio_mig_nl_family;
extern const struct nla_policy vfio_mig_dirty_range_nl_policy[];

int vfio_mig_nl_dev_get_doit(struct sk_buff *skb, struct genl_info *info);
int vfio_mig_nl_dev_get_dumpit(struct sk_buff *skb,
			       struct netlink_callback *cb);
int vfio_mig_nl_dev_set_doit(struct sk_buff *skb, struct genl_info *info);
int vfio_mig_nl_reglog_get_dumpit(struct sk_buff *skb,
				  struct netlink_callback *cb);
int vfio_mig_nl_dirty_start_doit(struct sk_buff *skb, struct genl_info *info);
int vfio_mig_nl_dirty_stop_doit(struct sk_buff *skb, struct genl_info *info);
int vfio_mig_nl_dirty_get_dumpit(struct sk_buff *skb,
				 struct netlink_callback *cb);

int vmig_nl_init(void);
void vmig_nl_exit(void);
/* Per-device set-up and tear-down (the overflow event's work item). */
void vmig_nl_dev_init(struct vmig_device *mdev);
void vmig_nl_dev_exit(struct vmig_device *mdev);
/*
 * Tell the events group about @mdev: @cmd is one of the *_NTF commands.
 * Sleeping context; vmig_nl_notify_overflow() may be called from any.
 */
void vmig_nl_notify(struct vmig_device *mdev, u8 cmd);
void vmig_nl_notify_overflow(struct vmig_device *mdev);

#endif /* _VFIO_MIG_NETLINK_H */
