// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the shadow adapter's generic netlink operations: shadow-attach
 * (engage), shadow-detach (hand back), shadow-get.
 */
#include <net/genetlink.h>
#include <uapi/linux/vfio_mig.h>

#include "netlink.h"
#include "profile.h"
#include "shadow.h"
#include "vfio_mig.h"

static int shadow_do(struct genl_info *info, bool engage)
{
	const char *why = NULL;
	struct vmig_device *mdev;
	int ret;

	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(info->attrs, VFIO_MIG_A_SHADOW_BDF,
				info->extack);
	if (IS_ERR(mdev)) {
		ret = PTR_ERR(mdev);
	} else {
		ret = engage ? vmig_shadow_engage(mdev, &why) :
			       vmig_shadow_handback(mdev, &why);
		/* static strings, as NL_SET_ERR_MSG() keeps */
		if (ret && why && info->extack)
			info->extack->_msg = why;
	}
	mutex_unlock(&vmig_devices_lock);
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
	struct vmig_device *mdev;
	struct sk_buff *msg;
	int ret;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(info->attrs, VFIO_MIG_A_SHADOW_BDF,
				info->extack);
	ret = IS_ERR(mdev) ? PTR_ERR(mdev) :
	      fill_shadow(msg, mdev, info->snd_portid, info->snd_seq, 0);
	mutex_unlock(&vmig_devices_lock);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);
}

int vfio_mig_nl_shadow_get_dumpit(struct sk_buff *skb,
				  struct netlink_callback *cb)
{
	unsigned long *done = (unsigned long *)cb->ctx;
	struct vmig_device *mdev;
	unsigned long idx = 0;
	int ret = 0;

	mutex_lock(&vmig_devices_lock);
	list_for_each_entry(mdev, &vmig_devices, node) {
		if (idx++ < *done)
			continue;
		ret = fill_shadow(skb, mdev, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, NLM_F_MULTI);
		if (ret)
			break;
		(*done)++;
	}
	mutex_unlock(&vmig_devices_lock);
	return ret == -EMSGSIZE && skb->len ? skb->len : ret ?: skb->len;
}
