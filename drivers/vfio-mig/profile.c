// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: device profiles, what the driver knows about a kind of device:
 * register classes, the pages sparse mode traps, the identity differences
 * it tolerates, and callbacks for state that registers do not reach. One
 * file per profile under profiles/; "generic" serves any other device.
 */
#include <linux/completion.h>
#include <linux/workqueue.h>

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

struct worker_call {
	struct work_struct work;
	int (*fn)(void *arg);
	void *arg;
	int ret;
};

static void worker_call_fn(struct work_struct *work)
{
	struct worker_call *c = container_of(work, struct worker_call, work);

	c->ret = c->fn(c->arg);
}

/*
 * vfio_dma_rw() reaches the VMM's memory through the mm that mapped it: a
 * kernel worker (no mm of its own) may borrow it, a foreign process (say
 * migctl) may not. Profiles that move device memory through a guest page
 * therefore run their save and restore here.
 */
int vmig_run_in_worker(int (*fn)(void *arg), void *arg)
{
	struct worker_call c = { .fn = fn, .arg = arg };

	INIT_WORK_ONSTACK(&c.work, worker_call_fn);
	queue_work(system_unbound_wq, &c.work);
	flush_work(&c.work);
	destroy_work_on_stack(&c.work);
	return c.ret;
}
