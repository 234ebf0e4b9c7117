// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the shadow adapter's generic netlink operations: shadow-attach
 * (engage), shadow-detach (hand back), shadow-get.
 */
#include <linux/file.h>
#include <net/genetlink.h>
#include <uapi/linux/vfio_mig.h>

#include "ctl.h"
#include "netlink.h"
#include "profile.h"
#include "shadow.h"
#include "vfio_mig.h"

static int shadow_do(struct genl_info *info, bool engage)
{
	/* only shadow-attach's attribute array reaches that far */
	struct nlattr *fd_attr = engage ?
		info->attrs[VFIO_MIG_A_SHADOW_CTL_FD] : NULL;
	struct vmig_ctl *ctl = NULL;
	struct file *ctl_file = NULL;
	const char *why = NULL;
	struct vmig_device *mdev;
	int ret;

	/*
	 * The engage's controller: an fd of the caller (a doit runs in the
	 * sender's context), kept open for the call. The engage checks that
	 * it is attached to this device.
	 */
	if (fd_attr) {
		ctl_file = fget(nla_get_u32(fd_attr));
		if (ctl_file)
			ctl = vmig_ctl_of_file(ctl_file);
		if (!ctl) {
			if (ctl_file)
				NL_SET_ERR_MSG_ATTR(info->extack, fd_attr,
						    "ctl-fd is not a /dev/vfio-mig fd");
			else
				NL_SET_ERR_MSG_ATTR(info->extack, fd_attr,
						    "ctl-fd is not an open fd of the caller");
			ret = -EBADF;
			goto out_fd;
		}
	}
	/*
	 * Not under vmig_devices_lock: both move the device's state by its
	 * own DMA (edu: hundreds of milliseconds), which no other device's
	 * operation should wait for. A use keeps the device bound.
	 */
	mdev = vmig_nl_use_dev(info->attrs, VFIO_MIG_A_SHADOW_BDF,
			       info->extack);
	if (IS_ERR(mdev)) {
		ret = PTR_ERR(mdev);
		goto out_fd;
	}
	ret = engage ? vmig_shadow_engage(mdev, ctl, &why) :
		       vmig_shadow_handback(mdev, &why);
	/* static strings, as NL_SET_ERR_MSG() keeps */
	if (ret && why && info->extack)
		info->extack->_msg = why;
	vmig_dev_unuse(mdev);
out_fd:
	if (ctl_file)
		fput(ctl_file);
	return ret;
}

int vfio_mig_nl_shadow_attach_doit(struct sk_buff *skb, struct genl_info *info)
{
	return shadow_do(info, true);
}

int vfio_mig_nl_shadow_detach_doit(struct sk_buff *skb, struct genl_info *info)
{
	return shadow_do(info, false);
}

/* One device's shadow; under vmig_devices_lock. */
static int fill_shadow(struct sk_buff *skb, struct vmig_device *mdev,
		       u32 portid, u32 seq, int flags)
{
	struct vmig_shadow_stats st;
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &vfio_mig_nl_family, flags,
			  VFIO_MIG_CMD_SHADOW_GET);
	if (!hdr)
		return -EMSGSIZE;
	vmig_shadow_stats(mdev, &st);
	if (nla_put_string(skb, VFIO_MIG_A_SHADOW_BDF,
			   pci_name(mdev->core.pdev)) ||
	    nla_put_string(skb, VFIO_MIG_A_SHADOW_PROFILE,
			   mdev->profile->name) ||
	    nla_put_u8(skb, VFIO_MIG_A_SHADOW_AVAILABLE,
		       vmig_shadow_available(mdev->profile->name)) ||
	    nla_put_u8(skb, VFIO_MIG_A_SHADOW_ENGAGED, st.engaged) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_SHADOW_READS, st.reads, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_SHADOW_WRITES, st.writes, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_SHADOW_DMAS, st.dmas, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_SHADOW_IRQS, st.irqs, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_SHADOW_ENGAGE_NS, st.engage_ns,
			      0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_SHADOW_HANDBACK_NS,
			      st.handback_ns, 0)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

int vfio_mig_nl_shadow_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	return vmig_nl_get_one(info, VFIO_MIG_A_SHADOW_BDF, fill_shadow);
}

int vfio_mig_nl_shadow_get_dumpit(struct sk_buff *skb,
				  struct netlink_callback *cb)
{
	return vmig_nl_dump_all(skb, cb, fill_shadow);
}
