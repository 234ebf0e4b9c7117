// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: handlers of the vfio_mig genetlink family.
 *
 * Every handler finds its device under vmig_devices_lock, which keeps the
 * device bound while the handler runs; one that takes the device's
 * dev_set->lock (dev-set, dev-compat, dev-needs, shadow-attach and -detach)
 * holds a use of the device instead and runs without the lock (see
 * vfio_mig.h). Dumps resume from the state they keep in cb->ctx and retake
 * the lock for every message.
 */
#include <linux/iommu.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include <uapi/linux/vfio_mig.h>

#include <vfio-mig/compat.h>

#include "dirty.h"
#include "lm.h"
#include "netlink.h"
#include "profile.h"
#include "reglog.h"
#include "regstate.h"
#include "replay.h"
#include "snapshot.h"
#include "trap.h"
#include "vfio_mig.h"

static_assert((int)VMIG_TRAP_NONE == (int)VFIO_MIG_TRAP_MODE_NONE);
static_assert((int)VMIG_TRAP_SPARSE == (int)VFIO_MIG_TRAP_MODE_SPARSE);
static_assert((int)VMIG_TRAP_ALL == (int)VFIO_MIG_TRAP_MODE_ALL);
static_assert((int)VFIO_DEVICE_STATE_RUNNING_P2P ==
	      (int)VFIO_MIG_MIG_STATE_RUNNING_P2P);
static_assert((int)VMIG_STATE_PRE_COPY_P2P ==
	      (int)VFIO_MIG_MIG_STATE_PRE_COPY_P2P);

/* The most bitmap bytes one dirty-get message carries (262144 pages). */
#define VMIG_NL_BITMAP_MAX	SZ_32K

static int put_counters(struct sk_buff *skb, struct vmig_device *mdev)
{
	struct vmig_dirty_stats ds;
	struct vmig_counters c;
	struct nlattr *nest;

	vmig_get_counters(mdev, &c);
	vmig_dirty_stats(mdev, &ds);
	nest = nla_nest_start(skb, VFIO_MIG_A_DEV_COUNTERS);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, VFIO_MIG_A_COUNTERS_TRAPPED_READS,
			      c.trapped_reads, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_COUNTERS_TRAPPED_WRITES,
			      c.trapped_writes, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_COUNTERS_LOG_ENTRIES,
			      c.log_entries, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_COUNTERS_LOG_OVERFLOWS,
			      c.log_overflows, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_COUNTERS_LOG_NEXT_SEQ,
			      c.log_next_seq, 0) ||
	    nla_put_u8(skb, VFIO_MIG_A_COUNTERS_LOG_LOSSY, c.log_lossy) ||
	    nla_put_u8(skb, VFIO_MIG_A_COUNTERS_DIRTY_LOGGING, ds.running) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_COUNTERS_DIRTY_MARKS,
			      ds.marks, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_COUNTERS_DIRTY_PAGES,
			      ds.pages_dirty, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_COUNTERS_DIRTY_REPORTS,
			      ds.reports, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_COUNTERS_DIRTY_OOR_MARKS,
			      ds.oor_marks, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_COUNTERS_DIRTY_LAST_REPORT_PAGES,
			      ds.last_report_pages, 0)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int fill_dev(struct sk_buff *skb, struct vmig_device *mdev, u32 portid,
		    u32 seq, int flags, u8 cmd)
{
	struct pci_dev *pdev = mdev->core.pdev;
	struct iommu_group *group;
	void *hdr;
	int gid = -1;

	hdr = genlmsg_put(skb, portid, seq, &vfio_mig_nl_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;
	group = iommu_group_get(&pdev->dev);
	if (group) {
		gid = iommu_group_id(group);
		iommu_group_put(group);
	}
	if (nla_put_string(skb, VFIO_MIG_A_DEV_BDF, pci_name(pdev)) ||
	    nla_put_u16(skb, VFIO_MIG_A_DEV_VENDOR, pdev->vendor) ||
	    nla_put_u16(skb, VFIO_MIG_A_DEV_DEVICE, pdev->device) ||
	    nla_put_u16(skb, VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR,
			pdev->subsystem_vendor) ||
	    nla_put_u16(skb, VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE,
			pdev->subsystem_device) ||
	    nla_put_u8(skb, VFIO_MIG_A_DEV_REVISION, pdev->revision) ||
	    (gid >= 0 && nla_put_u32(skb, VFIO_MIG_A_DEV_IOMMU_GROUP, gid)) ||
	    nla_put_string(skb, VFIO_MIG_A_DEV_PROFILE,
			   vmig_profile_name(mdev)) ||
	    nla_put_u32(skb, VFIO_MIG_A_DEV_TRAP_MODE,
			READ_ONCE(mdev->trap_mode)) ||
	    nla_put_u8(skb, VFIO_MIG_A_DEV_OPEN, READ_ONCE(mdev->open)) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE,
			      READ_ONCE(mdev->dirty.page_size), 0) ||
	    put_counters(skb, mdev) ||
	    nla_put_u32(skb, VFIO_MIG_A_DEV_MIG_STATE,
			READ_ONCE(mdev->mig.state)) ||
	    nla_put_u8(skb, VFIO_MIG_A_DEV_EARLY_LOAD,
		       READ_ONCE(mdev->early_load)) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_DEV_MIG_FLAGS,
			      vmig_mig_flags(mdev), 0)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

struct vmig_device *vmig_nl_find_dev(struct nlattr **attrs, int type,
				     struct netlink_ext_ack *extack)
{
	struct vmig_device *mdev;

	if (!attrs[type]) {
		NL_SET_ERR_MSG(extack, "missing device address (bdf)");
		return ERR_PTR(-EINVAL);
	}
	mdev = vmig_find_locked(nla_data(attrs[type]));
	if (!mdev) {
		NL_SET_ERR_MSG_ATTR(extack, attrs[type],
				    "no such device bound to vfio-mig");
		return ERR_PTR(-ENODEV);
	}
	return mdev;
}

struct vmig_device *vmig_nl_use_dev(struct nlattr **attrs, int type,
				    struct netlink_ext_ack *extack)
{
	struct vmig_device *mdev;

	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(attrs, type, extack);
	if (!IS_ERR(mdev))
		vmig_dev_use_locked(mdev);
	mutex_unlock(&vmig_devices_lock);
	return mdev;
}

int vmig_nl_get_one(struct genl_info *info, int attr, vmig_nl_fill_fn fill)
{
	struct vmig_device *mdev;
	struct sk_buff *msg;
	int ret;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(info->attrs, attr, info->extack);
	if (IS_ERR(mdev))
		ret = PTR_ERR(mdev);
	else
		ret = fill(msg, mdev, info->snd_portid, info->snd_seq, 0);
	mutex_unlock(&vmig_devices_lock);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);
}

int vmig_nl_dump_all(struct sk_buff *skb, struct netlink_callback *cb,
		     vmig_nl_fill_fn fill)
{
	unsigned long *done = (unsigned long *)cb->ctx;
	struct vmig_device *mdev;
	unsigned long idx = 0;
	int ret = 0;

	mutex_lock(&vmig_devices_lock);
	list_for_each_entry(mdev, &vmig_devices, node) {
		if (idx++ < *done)
			continue;
		ret = fill(skb, mdev, NETLINK_CB(cb->skb).portid,
			   cb->nlh->nlmsg_seq, NLM_F_MULTI);
		if (ret)
			break;
		(*done)++;
	}
	mutex_unlock(&vmig_devices_lock);
	/* A full skb ends this round; the dump goes on from *done. */
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;
	return ret ?: skb->len;
}

static int fill_dev_get(struct sk_buff *skb, struct vmig_device *mdev,
			u32 portid, u32 seq, int flags)
{
	return fill_dev(skb, mdev, portid, seq, flags, VFIO_MIG_CMD_DEV_GET);
}

int vfio_mig_nl_dev_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	return vmig_nl_get_one(info, VFIO_MIG_A_DEV_BDF, fill_dev_get);
}

int vfio_mig_nl_dev_get_dumpit(struct sk_buff *skb,
			       struct netlink_callback *cb)
{
	return vmig_nl_dump_all(skb, cb, fill_dev_get);
}

/*
 * Every setting or none: whatever can fail is checked first, under the
 * dev_set lock that open_device takes and the dirty log's lock that
 * dirty-start takes.
 */
static int dev_set_locked(struct vmig_device *mdev, struct nlattr **a,
			  struct netlink_ext_ack *extack)
{
	const struct vmig_profile *p = NULL;
	int ret = 0;

	mutex_lock(vmig_dev_set_lock(mdev));
	if (mdev->open) {
		NL_SET_ERR_MSG(extack,
			       "a VMM has the device open: settings change only while it is closed");
		ret = -EBUSY;
		goto out;
	}
	if (a[VFIO_MIG_A_DEV_PROFILE]) {
		p = vmig_profile_find(nla_data(a[VFIO_MIG_A_DEV_PROFILE]));
		if (!vmig_profile_fits(p, mdev->core.pdev)) {
			NL_SET_ERR_MSG_ATTR(extack, a[VFIO_MIG_A_DEV_PROFILE],
					    "the profile does not fit this device");
			ret = -EINVAL;
			goto out;
		}
	}
	if (a[VFIO_MIG_A_DEV_TRAP_MODE] &&
	    nla_get_u32(a[VFIO_MIG_A_DEV_TRAP_MODE]) > VMIG_TRAP_ALL) {
		NL_SET_ERR_MSG_ATTR(extack, a[VFIO_MIG_A_DEV_TRAP_MODE],
				    "unknown trap mode");
		ret = -EINVAL;
		goto out;
	}
	/*
	 * state_mutex and the DMA hold lock: the profile's private data
	 * changes with it (as in vmig_set_profile()).
	 */
	mutex_lock(&mdev->mig.state_mutex);
	/* a running log's feeder depends on all three */
	ret = vmig_dirty_freeze(mdev);
	if (ret) {
		NL_SET_ERR_MSG(extack,
			       "a dirty log is running: stop it before changing the profile, trap mode or dirty page size");
		goto out_state;
	}
	if (p) {
		down_write(&mdev->mig.dma.lock);
		ret = vmig_profile_bind(mdev, p);
		up_write(&mdev->mig.dma.lock);
		if (ret)
			goto out_thaw;
	}
	if (a[VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE])
		mdev->dirty.page_size =
			nla_get_u64(a[VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE]);
	if (a[VFIO_MIG_A_DEV_TRAP_MODE])
		WRITE_ONCE(mdev->trap_mode,
			   nla_get_u32(a[VFIO_MIG_A_DEV_TRAP_MODE]));
out_thaw:
	vmig_dirty_thaw(mdev);
out_state:
	mutex_unlock(&mdev->mig.state_mutex);
out:
	mutex_unlock(vmig_dev_set_lock(mdev));
	return ret;
}

int vfio_mig_nl_dev_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	struct vmig_device *mdev;
	int ret = 0;

	if (!a[VFIO_MIG_A_DEV_TRAP_MODE] && !a[VFIO_MIG_A_DEV_PROFILE] &&
	    !a[VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE]) {
		NL_SET_ERR_MSG(info->extack,
			       "nothing to set: give trap-mode, profile or dirty-page-size");
		return -EINVAL;
	}
	if (a[VFIO_MIG_A_DEV_PROFILE] &&
	    !vmig_profile_find(nla_data(a[VFIO_MIG_A_DEV_PROFILE]))) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[VFIO_MIG_A_DEV_PROFILE],
				    "unknown profile");
		return -ENOENT;
	}
	if (a[VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE]) {
		u64 ps = nla_get_u64(a[VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE]);

		if (ps < SZ_4K || !is_power_of_2(ps)) {
			NL_SET_ERR_MSG_ATTR(info->extack,
					    a[VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE],
					    "dirty page size must be a power of two >= 4096");
			return -EINVAL;
		}
	}

	mdev = vmig_nl_use_dev(a, VFIO_MIG_A_DEV_BDF, info->extack);
	if (IS_ERR(mdev))
		return PTR_ERR(mdev);
	ret = dev_set_locked(mdev, a, info->extack);
	/* under the use: before remove's UNBIND notification */
	if (!ret)
		vmig_nl_notify(mdev, VFIO_MIG_CMD_DEV_CHANGE_NTF);
	vmig_dev_unuse(mdev);
	return ret;
}

/* The source's identity from a dev-compat request; -EINVAL if incomplete. */
static int compat_identity(struct genl_info *info, struct vmig_identity *id)
{
	static const int need[] = {
		VFIO_MIG_A_DEV_VENDOR, VFIO_MIG_A_DEV_DEVICE,
		VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR, VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE,
		VFIO_MIG_A_DEV_REVISION, VFIO_MIG_A_DEV_CLASS,
		VFIO_MIG_A_DEV_PROFILE,
	};
	struct nlattr **a = info->attrs;
	const struct nlattr *pos;
	unsigned int i, n = 0;
	int rem;

	for (i = 0; i < ARRAY_SIZE(need); i++) {
		if (!a[need[i]]) {
			NL_SET_ERR_MSG(info->extack,
				       "the source's identity is incomplete: give vendor, device, subsystem ids, revision, class, six bar-len and profile");
			return -EINVAL;
		}
	}
	id->vendor = nla_get_u16(a[VFIO_MIG_A_DEV_VENDOR]);
	id->device = nla_get_u16(a[VFIO_MIG_A_DEV_DEVICE]);
	id->subvendor = nla_get_u16(a[VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR]);
	id->subdevice = nla_get_u16(a[VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE]);
	id->revision = nla_get_u8(a[VFIO_MIG_A_DEV_REVISION]);
	id->class = nla_get_u32(a[VFIO_MIG_A_DEV_CLASS]);
	nlmsg_for_each_attr(pos, info->nlhdr, GENL_HDRLEN, rem) {
		if (nla_type(pos) != VFIO_MIG_A_DEV_BAR_LEN)
			continue;
		if (n == PCI_STD_NUM_BARS) {
			n++;
			break;
		}
		id->bar_len[n++] = nla_get_u64(pos);
	}
	if (n != PCI_STD_NUM_BARS) {
		NL_SET_ERR_MSG(info->extack, "give exactly six bar-len");
		return -EINVAL;
	}
	return 0;
}

/* A profile needs or facts blob: NULL if absent, -EINVAL if too long. */
static const void *profile_blob(struct genl_info *info, int type, u32 *len)
{
	const struct nlattr *a = info->attrs[type];

	*len = 0;
	if (!a)
		return NULL;
	static_assert(VMIG_NEEDS_MAX == 512);

	if (nla_len(a) > VMIG_NEEDS_MAX) {
		NL_SET_ERR_MSG_ATTR(info->extack, a,
				    "a profile record has at most 512 bytes");
		return ERR_PTR(-EINVAL);
	}
	*len = nla_len(a);
	return nla_data(a);
}

/*
 * The profile's compat op, as a migration stream's header gets it on
 * this device, and with the source's needs its compat_needs op: the
 * migration controller asks before the migration starts.
 */
int vfio_mig_nl_dev_compat_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct vmig_replay_report *rep;
	struct vmig_identity id = {};
	const void *needs, *facts;
	u32 needs_len, facts_len;
	struct vmig_device *mdev;
	struct sk_buff *msg;
	char *notes = NULL;
	void *hdr;
	int ret;

	ret = compat_identity(info, &id);
	if (ret)
		return ret;
	needs = profile_blob(info, VFIO_MIG_A_DEV_PROFILE_NEEDS, &needs_len);
	if (IS_ERR(needs))
		return PTR_ERR(needs);
	facts = profile_blob(info, VFIO_MIG_A_DEV_PROFILE_FACTS, &facts_len);
	if (IS_ERR(facts))
		return PTR_ERR(facts);
	rep = kzalloc(sizeof(*rep), GFP_KERNEL);
	notes = kzalloc(VMIG_REPLAY_MSG_LEN * 2, GFP_KERNEL);
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!rep || !notes || !msg) {
		ret = -ENOMEM;
		goto out_free;
	}
	mdev = vmig_nl_use_dev(info->attrs, VFIO_MIG_A_DEV_BDF, info->extack);
	if (IS_ERR(mdev)) {
		ret = PTR_ERR(mdev);
		goto out_free;
	}
	/* the profile stays put under dev_set->lock */
	mutex_lock(vmig_dev_set_lock(mdev));
	ret = vmig_check_compat(mdev, &id,
				nla_data(info->attrs[VFIO_MIG_A_DEV_PROFILE]),
				rep);
	/* the same profile on both sides: the source's needs are its own */
	if (!ret && mdev->profile->ops && mdev->profile->ops->compat_needs)
		ret = mdev->profile->ops->compat_needs(mdev, needs, needs_len,
						       facts, facts_len, rep,
						       notes,
						       VMIG_REPLAY_MSG_LEN * 2);
	mutex_unlock(vmig_dev_set_lock(mdev));
	/* a refusal is the answer, not an error of the request */
	if (ret) {
		if (!rep->msg[0])
			strscpy(rep->msg, "refused", sizeof(rep->msg));
	} else {
		rep->msg[0] = 0;
	}
	ret = 0;
	hdr = genlmsg_put_reply(msg, info, &vfio_mig_nl_family, 0,
				VFIO_MIG_CMD_DEV_COMPAT);
	if (!hdr ||
	    nla_put_string(msg, VFIO_MIG_A_DEV_BDF, pci_name(mdev->core.pdev)) ||
	    nla_put_u8(msg, VFIO_MIG_A_DEV_COMPAT_TOLERATED,
		       rep->id_tolerated) ||
	    (rep->msg[0] &&
	     nla_put_string(msg, VFIO_MIG_A_DEV_COMPAT_REFUSED, rep->msg)) ||
	    (notes[0] &&
	     nla_put_string(msg, VFIO_MIG_A_DEV_COMPAT_NOTES, notes)))
		ret = -EMSGSIZE;
	else
		genlmsg_end(msg, hdr);
	vmig_dev_unuse(mdev);
	if (!ret) {
		kfree(rep);
		kfree(notes);
		return genlmsg_reply(msg, info);
	}
out_free:
	nlmsg_free(msg);
	kfree(rep);
	kfree(notes);
	return ret;
}

/* What the guest uses of the device, as its profile's needs op says. */
int vfio_mig_nl_dev_needs_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct vmig_device *mdev;
	struct sk_buff *msg;
	void *hdr, *buf;
	int ret, len = 0;

	buf = kzalloc(VMIG_NEEDS_MAX, GFP_KERNEL);
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!buf || !msg) {
		ret = -ENOMEM;
		goto out_free;
	}
	mdev = vmig_nl_use_dev(info->attrs, VFIO_MIG_A_DEV_BDF, info->extack);
	if (IS_ERR(mdev)) {
		ret = PTR_ERR(mdev);
		goto out_free;
	}
	/* the profile and its private data stay put under dev_set->lock */
	mutex_lock(vmig_dev_set_lock(mdev));
	if (mdev->profile->ops && mdev->profile->ops->needs)
		len = mdev->profile->ops->needs(mdev, buf);
	ret = len < 0 ? len : 0;
	hdr = ret ? NULL : genlmsg_put_reply(msg, info, &vfio_mig_nl_family, 0,
					     VFIO_MIG_CMD_DEV_NEEDS);
	if (!ret &&
	    (!hdr ||
	     nla_put_string(msg, VFIO_MIG_A_DEV_BDF, pci_name(mdev->core.pdev)) ||
	     nla_put_string(msg, VFIO_MIG_A_DEV_PROFILE, mdev->profile->name) ||
	     (len > 0 && nla_put(msg, VFIO_MIG_A_DEV_PROFILE_NEEDS,
				 min(len, VMIG_NEEDS_MAX), buf))))
		ret = -EMSGSIZE;
	else if (!ret)
		genlmsg_end(msg, hdr);
	mutex_unlock(vmig_dev_set_lock(mdev));
	vmig_dev_unuse(mdev);
	if (!ret) {
		kfree(buf);
		return genlmsg_reply(msg, info);
	}
out_free:
	nlmsg_free(msg);
	kfree(buf);
	return ret;
}

/* reglog-get dump state, in cb->ctx */
struct reglog_ctx {
	u64 next_seq;
	bool started;
};

#define REGLOG_BATCH	32

/*
 * Does the controller attached to @mdev still read its dirty log? Not once
 * it committed, nor after it announced COMMIT or ABORT: that migration is
 * over, and the VMM that started the log may stop it. Under ctl.rwsem.
 */
static bool ctl_reads_dirty_log(struct vmig_device *mdev)
{
	struct vmig_ctl *c = mdev->ctl.ctl;
	u32 phase;

	if (!c || c->committed)
		return false;
	mutex_lock(&mdev->ctl.phase_lock);
	phase = c->last_phase;
	mutex_unlock(&mdev->ctl.phase_lock);
	return phase != VFIO_MIG_MIG_PHASE_COMMIT &&
	       phase != VFIO_MIG_MIG_PHASE_ABORT;
}

static int put_entry(struct sk_buff *skb, struct netlink_callback *cb,
		     const struct vmig_reglog_entry *e)
{
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &vfio_mig_nl_family, NLM_F_MULTI,
			  VFIO_MIG_CMD_REGLOG_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, VFIO_MIG_A_REGLOG_SEQ, e->seq, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_REGLOG_TS_NS, e->ts_ns, 0) ||
	    nla_put_u8(skb, VFIO_MIG_A_REGLOG_BAR, e->bar) ||
	    nla_put_u32(skb, VFIO_MIG_A_REGLOG_OFFSET, e->offset) ||
	    nla_put_u8(skb, VFIO_MIG_A_REGLOG_WIDTH, e->width) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_REGLOG_VALUE, e->value, 0)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

int vfio_mig_nl_reglog_get_dumpit(struct sk_buff *skb,
				  struct netlink_callback *cb)
{
	struct reglog_ctx *ctx = (struct reglog_ctx *)cb->ctx;
	struct nlattr **a = vmig_genl_dump_attrs(cb);
	struct vmig_reglog_entry *batch;
	struct vmig_device *mdev;
	int n, i, ret = 0;
	u64 next;

	BUILD_BUG_ON(sizeof(*ctx) > sizeof(cb->ctx));
	if (!ctx->started) {
		ctx->next_seq = a[VFIO_MIG_A_REGLOG_SINCE] ?
				nla_get_u64(a[VFIO_MIG_A_REGLOG_SINCE]) : 0;
		ctx->started = true;
	}
	batch = kmalloc_array(REGLOG_BATCH, sizeof(*batch), GFP_KERNEL);
	if (!batch)
		return -ENOMEM;
	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(a, VFIO_MIG_A_REGLOG_BDF, cb->extack);
	if (IS_ERR(mdev)) {
		ret = PTR_ERR(mdev);
		goto out;
	}
	for (;;) {
		n = vmig_reglog_read(mdev, ctx->next_seq, batch, REGLOG_BATCH,
				     &next);
		if (n <= 0) {
			ret = n;
			break;
		}
		for (i = 0; i < n; i++) {
			ret = put_entry(skb, cb, &batch[i]);
			if (ret)
				goto out;
			ctx->next_seq = batch[i].seq + 1;
		}
		/* Entries still arriving: stop at what this call saw. */
		if (n < REGLOG_BATCH)
			break;
	}
out:
	mutex_unlock(&vmig_devices_lock);
	kfree(batch);
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;
	return ret ?: skb->len;
}

int vmig_nl_get_ranges(struct genl_info *info, struct dt_range **out,
		       u32 *nr)
{
	return vmig_nl_get_ranges_of(info, VFIO_MIG_A_DIRTY_RANGE,
				     DT_MAX_RANGES, out, nr);
}

int vmig_nl_get_ranges_of(struct genl_info *info, int type, u32 max,
			  struct dt_range **out, u32 *nr)
{
	struct nlattr *tb[VFIO_MIG_A_DIRTY_RANGE_MAX + 1];
	struct dt_range *ranges;
	struct nlattr *nla;
	u32 n = 0;
	int rem, ret;

	ranges = kcalloc(max, sizeof(*ranges), GFP_KERNEL);
	if (!ranges)
		return -ENOMEM;
	nlmsg_for_each_attr(nla, info->nlhdr, GENL_HDRLEN, rem) {
		if (nla_type(nla) != type)
			continue;
		if (n == max) {
			NL_SET_ERR_MSG_ATTR(info->extack, nla,
					    "too many ranges");
			ret = -E2BIG;
			goto free;
		}
		ret = nla_parse_nested(tb, VFIO_MIG_A_DIRTY_RANGE_MAX, nla,
				       vfio_mig_dirty_range_nl_policy,
				       info->extack);
		if (ret)
			goto free;
		if (!tb[VFIO_MIG_A_DIRTY_RANGE_IOVA] ||
		    !tb[VFIO_MIG_A_DIRTY_RANGE_LENGTH]) {
			NL_SET_ERR_MSG_ATTR(info->extack, nla,
					    "a range needs iova and length");
			ret = -EINVAL;
			goto free;
		}
		ranges[n].iova = nla_get_u64(tb[VFIO_MIG_A_DIRTY_RANGE_IOVA]);
		ranges[n].length = nla_get_u64(tb[VFIO_MIG_A_DIRTY_RANGE_LENGTH]);
		n++;
	}
	if (!n) {
		NL_SET_ERR_MSG(info->extack, "no IOVA range given");
		ret = -EINVAL;
		goto free;
	}
	*out = ranges;
	*nr = n;
	return 0;
free:
	kfree(ranges);
	return ret;
}

struct nlattr *vmig_nl_range_attr(struct genl_info *info, u32 idx)
{
	struct nlattr *nla;
	int rem;

	nlmsg_for_each_attr(nla, info->nlhdr, GENL_HDRLEN, rem)
		if (nla_type(nla) == VFIO_MIG_A_DIRTY_RANGE && !idx--)
			return nla;
	return NULL;
}

int vfio_mig_nl_dirty_start_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	struct vmig_device *mdev;
	struct dt_range *ranges;
	const char *why = NULL;
	u64 ps = 0;
	u32 n;
	int ret;

	if (a[VFIO_MIG_A_DIRTY_PAGE_SIZE]) {
		ps = nla_get_u64(a[VFIO_MIG_A_DIRTY_PAGE_SIZE]);
		if (ps < SZ_4K || !is_power_of_2(ps)) {
			NL_SET_ERR_MSG_ATTR(info->extack,
					    a[VFIO_MIG_A_DIRTY_PAGE_SIZE],
					    "page size must be a power of two >= 4096");
			return -EINVAL;
		}
	}
	ret = vmig_nl_get_ranges(info, &ranges, &n);
	if (ret)
		return ret;
	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(a, VFIO_MIG_A_DIRTY_BDF, info->extack);
	if (IS_ERR(mdev)) {
		ret = PTR_ERR(mdev);
	} else {
		down_read(&mdev->ctl.rwsem);
		if (mdev->ctl.ctl && vmig_dirty_running(mdev)) {
			why = "a migration controller is attached: its dirty log cannot change";
			ret = -EBUSY;
		} else {
			ret = vmig_dirty_start(mdev, ranges, n, ps, false,
					       &why);
		}
		up_read(&mdev->ctl.rwsem);
		/* @why is a string literal: it outlives the reply. */
		if (ret && why && info->extack)
			info->extack->_msg = why;
	}
	mutex_unlock(&vmig_devices_lock);
	kfree(ranges);
	return ret;
}

int vfio_mig_nl_dirty_stop_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct vmig_device *mdev;
	int ret;

	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(info->attrs, VFIO_MIG_A_DIRTY_BDF,
				info->extack);
	if (IS_ERR(mdev)) {
		ret = PTR_ERR(mdev);
	} else {
		down_read(&mdev->ctl.rwsem);
		if (ctl_reads_dirty_log(mdev)) {
			/* its reader would miss every mark made until a restart */
			NL_SET_ERR_MSG(info->extack,
				       "a migration controller is attached to this device: its dirty log cannot stop");
			ret = -EBUSY;
		} else {
			ret = vmig_dirty_stop(mdev, false);
			if (ret == -ENOENT)
				NL_SET_ERR_MSG(info->extack,
					       "no dirty log is running on this device");
		}
		up_read(&mdev->ctl.rwsem);
	}
	mutex_unlock(&vmig_devices_lock);
	return ret;
}

/* dirty-get dump state, in cb->ctx */
struct dirty_ctx {
	u64 pos;	/* next IOVA to report */
	u64 end;	/* last IOVA of the current range */
	u32 range;	/* index of the logged range (whole-log reports) */
	u32 gen;	/* the log's generation, at the first message */
	u64 ps;		/* its page size, likewise */
	bool whole_log;	/* no iova/length given: every logged range */
	bool started;
	bool gen_known;	/* @gen and @ps are set */
	bool done;
};

/* Move to the next logged range of a whole-log report; false at the end. */
static bool next_range(struct vmig_device *mdev, struct dirty_ctx *ctx)
{
	struct dt_range r;

	do {
		if (vmig_dirty_range(mdev, ctx->range++, &r))
			return false;
	} while (!r.length);
	ctx->pos = r.iova;
	ctx->end = r.iova + r.length - 1;
	return true;
}

struct bitmap_sink {
	u64 start;	/* IOVA of bit 0 */
	u64 page_shift;
	u64 nbits;
	unsigned long *bits;
};

/* Runs are whole pages of the log; clip them to the message's window. */
static void bitmap_sink(void *priv, u64 iova, u64 len)
{
	struct bitmap_sink *b = priv;
	u64 first, last;

	if (iova + len - 1 < b->start)
		return;
	first = (max(iova, b->start) - b->start) >> b->page_shift;
	last = (iova + len - 1 - b->start) >> b->page_shift;
	if (first >= b->nbits)
		return;
	last = min(last, b->nbits - 1);
	bitmap_set(b->bits, first, last - first + 1);
}

int vfio_mig_nl_dirty_get_dumpit(struct sk_buff *skb,
				 struct netlink_callback *cb)
{
	struct dirty_ctx *ctx = (struct dirty_ctx *)cb->ctx;
	struct nlattr **a = vmig_genl_dump_attrs(cb);
	struct bitmap_sink bs = {};
	struct vmig_device *mdev;
	u64 ps, len, room, cover, bytes;
	u32 gen;
	struct nlattr *bm;
	void *hdr;
	int ret;

	BUILD_BUG_ON(sizeof(*ctx) > sizeof(cb->ctx));
	if (ctx->done)
		return 0;
	if (!ctx->started && !a[VFIO_MIG_A_DIRTY_IOVA] &&
	    !a[VFIO_MIG_A_DIRTY_LENGTH]) {
		ctx->whole_log = true;
	} else if (!ctx->started) {
		if (!a[VFIO_MIG_A_DIRTY_IOVA] || !a[VFIO_MIG_A_DIRTY_LENGTH]) {
			NL_SET_ERR_MSG(cb->extack,
				       "give both iova and length, or neither (the whole log)");
			return -EINVAL;
		}
		ctx->pos = nla_get_u64(a[VFIO_MIG_A_DIRTY_IOVA]);
		len = nla_get_u64(a[VFIO_MIG_A_DIRTY_LENGTH]);
		if (!len || ctx->pos + len - 1 < ctx->pos) {
			NL_SET_ERR_MSG(cb->extack,
				       "empty or wrapping IOVA range");
			return -EINVAL;
		}
		ctx->end = ctx->pos + len - 1;
		ctx->started = true;
	}

	/* One message per call, with as much bitmap as the skb has room for. */
	room = skb_tailroom(skb);
	if (room < NLMSG_HDRLEN + GENL_HDRLEN + 128 + sizeof(u64))
		return skb->len;
	room -= NLMSG_HDRLEN + GENL_HDRLEN + 128;
	room = min_t(u64, rounddown(room, sizeof(u64)), VMIG_NL_BITMAP_MAX);

	mutex_lock(&vmig_devices_lock);
	mdev = vmig_nl_find_dev(a, VFIO_MIG_A_DIRTY_BDF, cb->extack);
	if (IS_ERR(mdev)) {
		ret = PTR_ERR(mdev);
		goto unlock;
	}
	ret = vmig_dirty_page_size(mdev, false, &ps, &gen);
	if (ret)
		goto unlock;
	if (!ctx->gen_known) {
		ctx->gen_known = true;
		ctx->gen = gen;
		ctx->ps = ps;
	} else if (gen != ctx->gen || ps != ctx->ps) {
		ret = -EAGAIN;
		goto unlock;
	}
	if (ctx->whole_log && !ctx->started) {
		ctx->started = true;
		if (!next_range(mdev, ctx)) {
			ctx->done = true;
			goto unlock;
		}
	}
	bs.page_shift = ilog2(ps);
	bs.start = ctx->pos & ~(ps - 1);
	/* IOVA the bitmap can cover, saturating at the top of the space. */
	if (check_shl_overflow(room * BITS_PER_BYTE, bs.page_shift, &cover))
		cover = U64_MAX;
	len = min_t(u64, ctx->end - bs.start, cover - 1) + 1;
	/* @bs.start is page aligned; @len may be U64_MAX: no rounding up */
	bs.nbits = ((len - 1) >> bs.page_shift) + 1;
	bytes = round_up(DIV_ROUND_UP_ULL(bs.nbits, BITS_PER_BYTE),
			 sizeof(u64));

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &vfio_mig_nl_family, NLM_F_MULTI,
			  VFIO_MIG_CMD_DIRTY_GET);
	if (!hdr) {
		ret = -EMSGSIZE;
		goto unlock;
	}
	if (nla_put_u64_64bit(skb, VFIO_MIG_A_DIRTY_IOVA, bs.start, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_DIRTY_LENGTH, len, 0) ||
	    nla_put_u64_64bit(skb, VFIO_MIG_A_DIRTY_PAGE_SIZE, ps, 0) ||
	    nla_put_u32(skb, VFIO_MIG_A_DIRTY_GENERATION, gen)) {
		ret = -EMSGSIZE;
		goto cancel;
	}
	bm = nla_reserve_64bit(skb, VFIO_MIG_A_DIRTY_BITMAP, bytes, 0);
	if (!bm) {
		ret = -EMSGSIZE;
		goto cancel;
	}
	memset(nla_data(bm), 0, bytes);
	bs.bits = nla_data(bm);
	ret = vmig_dirty_report(mdev, bs.start, len,
				!!a[VFIO_MIG_A_DIRTY_CLEAR], ps, gen,
				bitmap_sink, &bs);
	if (ret)
		goto cancel;
	genlmsg_end(skb, hdr);
	if (bs.start + (len - 1) < ctx->end)
		ctx->pos = bs.start + len;
	else if (!ctx->whole_log || !next_range(mdev, ctx))
		ctx->done = true;
	mutex_unlock(&vmig_devices_lock);
	return skb->len;
cancel:
	genlmsg_cancel(skb, hdr);
unlock:
	mutex_unlock(&vmig_devices_lock);
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;
	if (ret == -ENOENT)
		NL_SET_ERR_MSG(cb->extack,
			       "no dirty log is running on this device");
	if (ret == -EAGAIN)
		NL_SET_ERR_MSG(cb->extack,
			       "the dirty log was restarted during the dump");
	return ret;
}

/*
 * To the listeners of every network namespace the initial user namespace
 * owns: a "host" of the test bed may be one. Not to those of a namespace
 * an unprivileged user created (with a user namespace of its own): its
 * CAP_NET_ADMIN there, all GENL_MCAST_CAP_NET_ADMIN asks, would let it
 * watch the host's devices.
 */
void vmig_nl_multicast(struct sk_buff *msg, unsigned int group)
{
	struct net *net, *prev = NULL;
	struct sk_buff *tmp;

	rcu_read_lock();
	for_each_net_rcu(net) {
		if (net->user_ns != &init_user_ns)
			continue;
		if (prev) {
			tmp = skb_clone(msg, GFP_ATOMIC);
			if (!tmp)
				break;
			genlmsg_multicast_netns(&vfio_mig_nl_family, prev, tmp,
						0, group, GFP_ATOMIC);
		}
		prev = net;
	}
	if (prev)
		genlmsg_multicast_netns(&vfio_mig_nl_family, prev, msg, 0,
					group, GFP_ATOMIC);
	else
		nlmsg_free(msg);
	rcu_read_unlock();
}

void vmig_nl_notify(struct vmig_device *mdev, u8 cmd)
{
	struct sk_buff *msg;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return;
	if (fill_dev(msg, mdev, 0, 0, 0, cmd)) {
		nlmsg_free(msg);
		return;
	}
	vmig_nl_multicast(msg, VFIO_MIG_NLGRP_EVENTS);
}

static void overflow_work(struct work_struct *work)
{
	struct vmig_device *mdev = container_of(work, struct vmig_device,
						overflow_work);

	vmig_nl_notify(mdev, VFIO_MIG_CMD_LOG_OVERFLOW_NTF);
}

void vmig_nl_dev_init(struct vmig_device *mdev)
{
	INIT_WORK(&mdev->overflow_work, overflow_work);
}

void vmig_nl_dev_exit(struct vmig_device *mdev)
{
	cancel_work_sync(&mdev->overflow_work);
}

void vmig_nl_notify_overflow(struct vmig_device *mdev)
{
	schedule_work(&mdev->overflow_work);
}

int vmig_nl_init(void)
{
	return genl_register_family(&vfio_mig_nl_family);
}

void vmig_nl_exit(void)
{
	genl_unregister_family(&vfio_mig_nl_family);
}
