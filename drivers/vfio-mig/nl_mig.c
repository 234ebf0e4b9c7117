// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the live migration operations of the vfio_mig genetlink family
 * (Documentation/live-migration.rst): the phases the controller announces
 * to the device's VMM (mig-phase), the VMM's acknowledgments (mig-ack),
 * their events on the "mig" group, and the VMM's own dirty pages
 * (dirty-mark).
 *
 * A device has at most one pending phase, numbered per device (ctl.h has
 * the lock rules). An announcement needs a control fd attached to the
 * device; an acknowledgment does not, so that the VMM can acknowledge
 * the "abort" the kernel announces when that fd goes away.
 */
#include <linux/sizes.h>
#include <linux/slab.h>
#include <net/genetlink.h>
#include <uapi/linux/vfio_mig.h>

#include "ctl.h"
#include "dirty.h"
#include "netlink.h"
#include "vfio_mig.h"

static int put_ram(struct sk_buff *skb, const struct dt_range *ram, u32 n)
{
	struct nlattr *nest;
	u32 i;

	for (i = 0; i < n; i++) {
		nest = nla_nest_start(skb, VFIO_MIG_A_MIG_RAM);
		if (!nest ||
		    nla_put_u64_64bit(skb, VFIO_MIG_A_DIRTY_RANGE_IOVA,
				      ram[i].iova, 0) ||
		    nla_put_u64_64bit(skb, VFIO_MIG_A_DIRTY_RANGE_LENGTH,
				      ram[i].length, 0))
			return -EMSGSIZE;
		nla_nest_end(skb, nest);
	}
	return 0;
}

/*
 * {bdf, phase, seq[, result][, ram...]}: @result < 0 leaves it out, and
 * @n_ram 0 the RAM ranges.
 */
static int fill_mig(struct sk_buff *skb, u32 portid, u32 nlseq, u8 cmd,
		    const char *bdf, u32 phase, u32 seq, int result,
		    const struct dt_range *ram, u32 n_ram)
{
	void *hdr;

	hdr = genlmsg_put(skb, portid, nlseq, &vfio_mig_nl_family, 0, cmd);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_string(skb, VFIO_MIG_A_MIG_BDF, bdf) ||
	    nla_put_u32(skb, VFIO_MIG_A_MIG_PHASE, phase) ||
	    nla_put_u32(skb, VFIO_MIG_A_MIG_SEQ, seq) ||
	    (result >= 0 && nla_put_u32(skb, VFIO_MIG_A_MIG_RESULT, result)) ||
	    put_ram(skb, ram, n_ram)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* Under ctl.phase_lock: events leave in seq order. */
static void mig_event(u8 cmd, const char *bdf, u32 phase, u32 seq,
		      int result, const struct dt_range *ram, u32 n_ram)
{
	struct sk_buff *msg;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return;
	if (fill_mig(msg, 0, 0, cmd, bdf, phase, seq, result, ram, n_ram)) {
		nlmsg_free(msg);
		return;
	}
	vmig_nl_multicast(msg, VFIO_MIG_NLGRP_MIG);
}

u32 vmig_phase_announce(struct vmig_device *mdev, struct vmig_ctl *ctl,
			const char *bdf, u32 phase)
{
	struct vmig_ctl_dev *cd = &mdev->ctl;
	u32 seq;

	lockdep_assert_held(&cd->rwsem);
	mutex_lock(&cd->phase_lock);
	seq = ++cd->next_seq;
	cd->phase = phase;
	cd->seq = seq;
	/* the RAM named for the last phase holds until this one */
	kfree(cd->ram);
	cd->ram = NULL;
	cd->nr_ram = 0;
	if (ctl)
		ctl->last_phase = phase;
	mig_event(VFIO_MIG_CMD_MIG_PHASE_NTF, bdf, phase, seq, -1, NULL, 0);
	mutex_unlock(&cd->phase_lock);
	return seq;
}

void vmig_ram_forget(struct vmig_device *mdev)
{
	struct vmig_ctl_dev *cd = &mdev->ctl;

	mutex_lock(&cd->phase_lock);
	kfree(cd->ram);
	cd->ram = NULL;
	cd->nr_ram = 0;
	mutex_unlock(&cd->phase_lock);
}

bool vmig_ram_contains(struct vmig_device *mdev, const u64 *iovas, u32 n,
		       u64 *bad)
{
	struct vmig_ctl_dev *cd = &mdev->ctl;
	bool ok = true;
	u32 i, r;

	lockdep_assert_held(&mdev->ctl.rwsem);
	mutex_lock(&cd->phase_lock);
	for (i = 0; ok && cd->ram && i < n; i++) {
		for (r = 0; r < cd->nr_ram; r++)
			if (iovas[i] - cd->ram[r].iova < cd->ram[r].length)
				break;
		if (r == cd->nr_ram) {
			*bad = iovas[i];
			ok = false;
		}
	}
	mutex_unlock(&cd->phase_lock);
	return ok;
}

/*
 * The RAM ranges of a mig-ack (*@ram NULL if none): page aligned, not
 * empty, not wrapping, at most VMIG_RAM_RANGES_MAX, only for prepare.
 */
static int get_ram(struct genl_info *info, u32 phase, struct dt_range **ram,
		   u32 *n)
{
	struct nlattr *nla, *first = NULL;
	int rem, ret;
	u32 i;

	*ram = NULL;
	*n = 0;
	nlmsg_for_each_attr(nla, info->nlhdr, GENL_HDRLEN, rem)
		if (!first && nla_type(nla) == VFIO_MIG_A_MIG_RAM)
			first = nla;
	if (!first)
		return 0;
	if (phase != VFIO_MIG_MIG_PHASE_PREPARE) {
		NL_SET_ERR_MSG_ATTR(info->extack, first,
				    "RAM ranges belong to the ack of prepare");
		return -EINVAL;
	}
	ret = vmig_nl_get_ranges_of(info, VFIO_MIG_A_MIG_RAM,
				    VMIG_RAM_RANGES_MAX, ram, n);
	if (ret)
		return ret;
	for (i = 0; i < *n; i++) {
		const struct dt_range *r = &(*ram)[i];

		/* the control fd's page size, whatever the host's */
		if (!r->length || !IS_ALIGNED(r->iova, SZ_4K) ||
		    !IS_ALIGNED(r->length, SZ_4K) ||
		    r->iova + r->length < r->iova) {
			NL_SET_ERR_MSG(info->extack,
				       "a RAM range is empty, not page aligned or wraps");
			kfree(*ram);
			*ram = NULL;
			return -EINVAL;
		}
	}
	return 0;
}

int vfio_mig_nl_mig_phase_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	struct vmig_device *mdev;
	char bdf[16] = "";
	struct sk_buff *msg;
	u32 phase, seq = 0;
	int ret = 0;

	if (GENL_REQ_ATTR_CHECK(info, VFIO_MIG_A_MIG_BDF) ||
	    GENL_REQ_ATTR_CHECK(info, VFIO_MIG_A_MIG_PHASE))
		return -EINVAL;
	phase = nla_get_u32(a[VFIO_MIG_A_MIG_PHASE]);
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(a, VFIO_MIG_A_MIG_BDF, info->extack);
	if (IS_ERR(mdev)) {
		ret = PTR_ERR(mdev);
		goto unlock;
	}
	strscpy(bdf, pci_name(mdev->core.pdev), sizeof(bdf));
	down_read(&mdev->ctl.rwsem);
	if (mdev->ctl.ctl) {
		seq = vmig_phase_announce(mdev, mdev->ctl.ctl, bdf, phase);
	} else {
		NL_SET_ERR_MSG(info->extack,
			       "no migration controller is attached to this device (/dev/vfio-mig)");
		ret = -ENOTCONN;
	}
	up_read(&mdev->ctl.rwsem);
unlock:
	mutex_unlock(&vmig_devices_lock);
	if (!ret)
		ret = fill_mig(msg, info->snd_portid, info->snd_seq,
			       VFIO_MIG_CMD_MIG_PHASE, bdf, phase, seq, -1,
			       NULL, 0);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);
}

int vfio_mig_nl_mig_ack_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	struct vmig_device *mdev;
	struct vmig_ctl_dev *cd;
	u32 phase, seq, result, n_ram;
	struct dt_range *ram;
	int ret = 0;

	if (GENL_REQ_ATTR_CHECK(info, VFIO_MIG_A_MIG_BDF) ||
	    GENL_REQ_ATTR_CHECK(info, VFIO_MIG_A_MIG_PHASE) ||
	    GENL_REQ_ATTR_CHECK(info, VFIO_MIG_A_MIG_SEQ))
		return -EINVAL;
	phase = nla_get_u32(a[VFIO_MIG_A_MIG_PHASE]);
	seq = nla_get_u32(a[VFIO_MIG_A_MIG_SEQ]);
	result = a[VFIO_MIG_A_MIG_RESULT] ?
		 nla_get_u32(a[VFIO_MIG_A_MIG_RESULT]) : 0;
	ret = get_ram(info, phase, &ram, &n_ram);
	if (ret)
		return ret;

	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(a, VFIO_MIG_A_MIG_BDF, info->extack);
	if (IS_ERR(mdev)) {
		ret = PTR_ERR(mdev);
		goto unlock;
	}
	cd = &mdev->ctl;
	/* RAM is kept for an attached controller only (ctl.h) */
	down_read(&cd->rwsem);
	mutex_lock(&cd->phase_lock);
	if (!cd->phase) {
		NL_SET_ERR_MSG(info->extack,
			       "no migration phase is pending on this device");
		ret = -ESTALE;
	} else if (cd->phase != phase || cd->seq != seq) {
		NL_SET_ERR_MSG(info->extack,
			       "phase and seq are not those of the device's pending phase");
		ret = -ESTALE;
	} else {
		cd->phase = 0;
		mig_event(VFIO_MIG_CMD_MIG_ACK_NTF, pci_name(mdev->core.pdev),
			  phase, seq, result, ram, n_ram);
		if (cd->ctl && ram) {
			kfree(cd->ram);
			cd->ram = ram;
			cd->nr_ram = n_ram;
			ram = NULL;
		}
	}
	mutex_unlock(&cd->phase_lock);
	up_read(&cd->rwsem);
unlock:
	mutex_unlock(&vmig_devices_lock);
	kfree(ram);
	return ret;
}

int vfio_mig_nl_dirty_mark_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct vmig_device *mdev;
	struct dt_range *ranges;
	u32 n, bad = 0;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, VFIO_MIG_A_DIRTY_BDF))
		return -EINVAL;
	ret = vmig_nl_get_ranges(info, &ranges, &n);
	if (ret)
		return ret;
	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(info->attrs, VFIO_MIG_A_DIRTY_BDF,
				info->extack);
	if (IS_ERR(mdev))
		ret = PTR_ERR(mdev);
	else
		ret = vmig_dirty_mark_ranges(mdev, ranges, n, &bad);
	mutex_unlock(&vmig_devices_lock);
	kfree(ranges);

	if (ret == -ENOENT)
		NL_SET_ERR_MSG(info->extack,
			       "no dirty log is running on this device");
	else if (ret == -EINVAL)
		NL_SET_ERR_MSG_ATTR(info->extack, vmig_nl_range_attr(info, bad),
				    "empty or wrapping IOVA range");
	else if (ret == -ERANGE)
		NL_SET_ERR_MSG_ATTR(info->extack, vmig_nl_range_attr(info, bad),
				    "range outside the IOVA ranges the dirty log covers");
	else if (ret == -E2BIG)
		NL_SET_ERR_MSG(info->extack,
			       "the ranges add up to more than the dirty log covers");
	return ret;
}
