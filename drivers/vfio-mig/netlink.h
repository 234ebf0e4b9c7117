/* SPDX-License-Identifier: GPL-2.0 */
/* vfio-mig: the vfio_mig genetlink family (nl_policy.c, netlink.c). */
#ifndef _VFIO_MIG_NETLINK_H
#define _VFIO_MIG_NETLINK_H

#include <net/genetlink.h>
#include <uapi/linux/vfio_mig.h>

struct dt_range;
struct vmig_device;

enum {
	VFIO_MIG_NLGRP_EVENTS,
	VFIO_MIG_NLGRP_MIG,
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
int vfio_mig_nl_mig_phase_doit(struct sk_buff *skb, struct genl_info *info);
int vfio_mig_nl_mig_ack_doit(struct sk_buff *skb, struct genl_info *info);
int vfio_mig_nl_dirty_mark_doit(struct sk_buff *skb, struct genl_info *info);
int vfio_mig_nl_dev_compat_doit(struct sk_buff *skb, struct genl_info *info);
int vfio_mig_nl_dev_needs_doit(struct sk_buff *skb, struct genl_info *info);
int vfio_mig_nl_shadow_attach_doit(struct sk_buff *skb,
				   struct genl_info *info);
int vfio_mig_nl_shadow_detach_doit(struct sk_buff *skb,
				   struct genl_info *info);
int vfio_mig_nl_shadow_get_doit(struct sk_buff *skb, struct genl_info *info);
int vfio_mig_nl_shadow_get_dumpit(struct sk_buff *skb,
				  struct netlink_callback *cb);

/*
 * A message about one device into @skb (genlmsg_put() with @portid, @seq
 * and @flags, then its attributes): 0 or -EMSGSIZE, nothing left behind.
 * Under vmig_devices_lock.
 */
typedef int (*vmig_nl_fill_fn)(struct sk_buff *skb, struct vmig_device *mdev,
			       u32 portid, u32 seq, int flags);
/* A "do" reply about the device named by attribute @attr. */
int vmig_nl_get_one(struct genl_info *info, int attr, vmig_nl_fill_fn fill);
/* A dump of every bound device, resumed from cb->ctx. */
int vmig_nl_dump_all(struct sk_buff *skb, struct netlink_callback *cb,
		     vmig_nl_fill_fn fill);

/* The device named by attribute @type; under vmig_devices_lock. */
struct vmig_device *vmig_nl_find_dev(struct nlattr **attrs, int type,
				     struct netlink_ext_ack *extack);
/*
 * The same with a use of it taken (see vmig_devices_lock): the device stays
 * bound until vmig_dev_unuse(). Takes and drops the lock.
 */
struct vmig_device *vmig_nl_use_dev(struct nlattr **attrs, int type,
				    struct netlink_ext_ack *extack);
/* The range attributes of a dirty request (kfree() *@out); extack set. */
int vmig_nl_get_ranges(struct genl_info *info, struct dt_range **out,
		       u32 *nr);
/* The same for the (dirty-range shaped) attributes @type, at most @max. */
int vmig_nl_get_ranges_of(struct genl_info *info, int type, u32 max,
			  struct dt_range **out, u32 *nr);
/* The @idx-th range attribute of the request, for an extack. */
struct nlattr *vmig_nl_range_attr(struct genl_info *info, u32 idx);
/* Send @msg to @group's listeners in every network namespace. */
void vmig_nl_multicast(struct sk_buff *msg, unsigned int group);

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
