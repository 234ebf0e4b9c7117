// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: device profiles, what the driver knows about a kind of device:
 * register classes, the pages sparse mode traps, the identity differences
 * it tolerates, and callbacks for state that registers do not reach. One
 * file per profile under profiles/; "generic" serves any other device.
 */
#include <linux/completion.h>
#include <linux/mm.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "dirty.h"
#include "lm.h"
#include "profile.h"
#include "replay.h"
#include "snapshot.h"
#include "trap.h"
#include "vfio_mig.h"

static const struct vmig_profile * const vmig_profiles[] = {
	&vmig_profile_edu,
	&vmig_profile_nvme,
	&vmig_profile_generic,	/* last: matches anything */
};

bool vmig_profile_fits(const struct vmig_profile *p, struct pci_dev *pdev)
{
	return !p->ids || pci_match_id(p->ids, pdev);
}

const struct vmig_profile *vmig_profile_for(struct pci_dev *pdev)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vmig_profiles); i++)
		if (vmig_profile_fits(vmig_profiles[i], pdev))
			return vmig_profiles[i];
	return &vmig_profile_generic;
}

const struct vmig_profile *vmig_profile_find(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vmig_profiles); i++)
		if (!strcmp(vmig_profiles[i]->name, name))
			return vmig_profiles[i];
	return NULL;
}

int vmig_profile_bind(struct vmig_device *mdev, const struct vmig_profile *p)
{
	void *priv = NULL;

	if (mdev->profile == p)		/* bound already: keep its state */
		return 0;
	if (p->priv_size) {
		priv = kvzalloc(p->priv_size, GFP_KERNEL_ACCOUNT);
		if (!priv)
			return -ENOMEM;
	}
	kvfree(mdev->profile_priv);
	mdev->profile_priv = priv;
	WRITE_ONCE(mdev->profile, p);
	vmig_profile_early_update(mdev);
	return 0;
}

void vmig_profile_unbind(struct vmig_device *mdev)
{
	WRITE_ONCE(mdev->early_load, false);
	kvfree(mdev->profile_priv);
	mdev->profile_priv = NULL;
}

void vmig_profile_early_update(struct vmig_device *mdev)
{
	const struct vmig_profile_dev_ops *ops = mdev->profile->ops;

	WRITE_ONCE(mdev->early_load, ops && ops->early_load &&
		   ops->early_ready && !ops->early_ready(mdev, true));
}

void *vmig_profile_priv(struct vmig_device *mdev)
{
	return mdev->profile_priv;
}

int vmig_set_profile(struct vmig_device *mdev, const char *name)
{
	const struct vmig_profile *p = vmig_profile_find(name);
	int ret;

	if (!p)
		return -ENOENT;
	if (!vmig_profile_fits(p, mdev->core.pdev))
		return -EINVAL;
	/*
	 * As vmig_settings_lock(), and state_mutex and the DMA hold lock
	 * (in their order): a deferred reset may reach the profile's reset
	 * op, and a dirty report its inflight op, while the device is closed.
	 */
	mutex_lock(vmig_dev_set_lock(mdev));
	ret = -EBUSY;
	if (!mdev->open) {
		mutex_lock(&mdev->mig.state_mutex);
		ret = vmig_dirty_freeze(mdev);
		if (!ret) {
			down_write(&mdev->mig.dma.lock);
			ret = vmig_profile_bind(mdev, p);
			up_write(&mdev->mig.dma.lock);
			vmig_dirty_thaw(mdev);
		}
		mutex_unlock(&mdev->mig.state_mutex);
	}
	mutex_unlock(vmig_dev_set_lock(mdev));
	return ret;
}

/*
 * The default compat op. vendor, device, class and BAR sizes must always
 * match; a profile may tolerate a different revision (VMIG_ID_REVISION) or
 * subsystem ids (VMIG_ID_SUBSYSTEM) when its register interface does not
 * depend on them.
 */
int vmig_profile_compat_ids(const struct vmig_profile *p,
			    const struct vmig_identity *s,
			    const struct vmig_identity *t,
			    struct vmig_replay_report *rep)
{
	int i;

	if (s->vendor != t->vendor || s->device != t->device) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "identity mismatch: source %04x:%04x, target %04x:%04x",
			 s->vendor, s->device, t->vendor, t->device);
		return -EINVAL;
	}
	if (s->class != t->class) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "identity mismatch: class %06x, target %06x",
			 s->class, t->class);
		return -EINVAL;
	}
	for (i = 0; i < PCI_STD_NUM_BARS; i++) {
		if (s->bar_len[i] != t->bar_len[i]) {
			snprintf(rep->msg, sizeof(rep->msg),
				 "identity mismatch: BAR%d size %#llx, target %#llx",
				 i, s->bar_len[i], t->bar_len[i]);
			return -EINVAL;
		}
	}
	if (s->revision != t->revision) {
		if (!(p->tolerate & VMIG_ID_REVISION)) {
			snprintf(rep->msg, sizeof(rep->msg),
				 "identity mismatch: revision %#x, target %#x (profile %s does not allow it)",
				 s->revision, t->revision, p->name);
			return -EINVAL;
		}
		rep->id_tolerated = true;
	}
	if (s->subvendor != t->subvendor || s->subdevice != t->subdevice) {
		if (!(p->tolerate & VMIG_ID_SUBSYSTEM)) {
			snprintf(rep->msg, sizeof(rep->msg),
				 "identity mismatch: subsystem %04x:%04x, target %04x:%04x (profile %s does not allow it)",
				 s->subvendor, s->subdevice, t->subvendor,
				 t->subdevice, p->name);
			return -EINVAL;
		}
		rep->id_tolerated = true;
	}
	return 0;
}

int vmig_profile_compat(const struct vmig_profile *p,
			const struct vmig_identity *src,
			const struct vmig_identity *dst,
			struct vmig_replay_report *rep)
{
	if (p->ops && p->ops->compat)
		return p->ops->compat(p, src, dst, rep);
	return vmig_profile_compat_ids(p, src, dst, rep);
}

u32 vmig_profile_state_size(const struct vmig_profile *p)
{
	return p->ops && p->ops->state_size ? p->ops->state_size(p) : 0;
}

static u32 reg_count(const struct vmig_reg_desc *r)
{
	return r->count ? r->count : 1;
}

unsigned int vmig_profile_nr_slots(const struct vmig_profile *p)
{
	unsigned int i, n = 0;

	for (i = 0; i < p->nr_regs; i++)
		n += reg_count(&p->regs[i]);
	return n;
}

const char *vmig_profile_name(struct vmig_device *mdev)
{
	return READ_ONCE(mdev->profile)->name;
}

const struct vmig_reg_desc *vmig_profile_reg(const struct vmig_profile *p,
					     u8 bar, u32 offset, u8 width)
{
	unsigned int i;

	for (i = 0; i < p->nr_regs; i++) {
		const struct vmig_reg_desc *r = &p->regs[i];
		u32 rel, at;

		if (r->bar != bar || offset < r->offset)
			continue;
		rel = offset - r->offset;
		at = 0;
		if (reg_count(r) > 1) {
			if (rel / r->stride >= r->count)
				continue;
			at = rel % r->stride;
		} else {
			at = rel;
		}
		/* A piece of a wider register belongs to that register. */
		if (at < r->width && width <= r->width - at)
			return r;
	}
	return NULL;
}

u8 vmig_profile_class(const struct vmig_profile *p, u8 bar, u32 offset,
		      u8 width)
{
	const struct vmig_reg_desc *r = vmig_profile_reg(p, bar, offset, width);

	return r ? r->class : p->default_class;
}

bool vmig_profile_traps(struct vmig_device *mdev, u8 bar, u64 off, u64 len)
{
	const struct vmig_profile *p = mdev->profile;
	unsigned int i;

	if (!p->nr_trap)
		return true;	/* the profile does not know: trap it all */
	for (i = 0; i < p->nr_trap; i++) {
		const struct vmig_trap_range *t = &p->trap[i];
		u64 ts = ALIGN_DOWN((u64)t->offset, PAGE_SIZE);
		u64 te = ALIGN((u64)t->offset + t->size, PAGE_SIZE);

		if (t->bar == bar && off < te && off + len > ts)
			return true;
	}
	return false;
}

/* debugfs TEST INTERFACE: hold each worker call this long before it runs */
unsigned int vmig_worker_delay_ms;

/**
 * struct worker_call - one vmig_run_in_worker() call
 * @work: the work item
 * @done: completed by the worker once @fn returned
 * @ref: two at first, the waiter's and the worker's; whoever drops the
 *	last frees the call, so a waiter that leaves early never leaves the
 *	worker with freed memory
 * @fn: what to run, on @arg
 * @arg: the caller's; used by the worker only while the caller waits
 * @ret: @fn's result, valid once @done
 */
struct worker_call {
	struct delayed_work work;
	struct completion done;
	refcount_t ref;
	int (*fn)(void *arg);
	void *arg;
	int ret;
};

static void worker_call_put(struct worker_call *c)
{
	if (refcount_dec_and_test(&c->ref))
		kfree(c);
}

static void worker_call_fn(struct work_struct *work)
{
	struct worker_call *c = container_of(to_delayed_work(work),
					     struct worker_call, work);

	c->ret = c->fn(c->arg);
	complete(&c->done);
	worker_call_put(c);
}

/*
 * vfio_dma_rw() reaches the VMM's memory through the mm that mapped it: a
 * kernel worker (no mm of its own) may borrow it, a foreign process (say
 * migctl) may not. Profiles that move device memory through a guest page
 * therefore run their save and restore here.
 *
 * The wait is killable. A call still queued is then cancelled and the
 * caller gets -EINTR; one already running works on the caller's @arg (and
 * on state the caller's locks protect), so the caller waits for it: every
 * @fn is bounded (at most VFIO_MIG_CTL_PAGES_MAX pages, or the profile's
 * own timeouts).
 */
int vmig_run_in_worker(int (*fn)(void *arg), void *arg)
{
	struct worker_call *c = kzalloc(sizeof(*c), GFP_KERNEL);
	int ret;

	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->arg = arg;
	init_completion(&c->done);
	refcount_set(&c->ref, 2);
	INIT_DELAYED_WORK(&c->work, worker_call_fn);
	queue_delayed_work(system_unbound_wq, &c->work,
			   msecs_to_jiffies(READ_ONCE(vmig_worker_delay_ms)));
	if (wait_for_completion_killable(&c->done)) {
		if (cancel_delayed_work(&c->work)) {
			/* never ran, never will: the worker's reference too */
			worker_call_put(c);
			worker_call_put(c);
			return -EINTR;
		}
		wait_for_completion(&c->done);
	}
	ret = c->ret;
	worker_call_put(c);
	return ret;
}
