// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: device profiles, what the driver knows about a kind of device:
 * register classes, the pages sparse mode traps, the identity differences
 * it tolerates, and callbacks for state that registers do not reach. One
 * file per profile under profiles/; "generic" serves any other device.
 */
#include <linux/completion.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "profile.h"
#include "trap.h"
#include "vfio_mig.h"

static const struct vmig_profile * const vmig_profiles[] = {
	&vmig_profile_edu,
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

int vmig_set_profile(struct vmig_device *mdev, const char *name)
{
	const struct vmig_profile *p = vmig_profile_find(name);
	int ret;

	if (!p)
		return -ENOENT;
	if (!vmig_profile_fits(p, mdev->core.pdev))
		return -EINVAL;
	ret = vmig_settings_lock(mdev);
	if (!ret) {
		WRITE_ONCE(mdev->profile, p);
		vmig_settings_unlock(mdev);
	}
	return ret;
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

		/* A piece of a wider register belongs to that register. */
		if (r->bar == bar && offset >= r->offset &&
		    offset + width <= r->offset + r->width)
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
