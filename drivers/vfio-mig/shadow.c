// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the shadow adapter, the vfio_mig half (Documentation/shadow.rst).
 *
 * A module registers a shadow per profile (vmig_shadow_register()). Engage
 * takes the device's access lock for write, so that no guest access is in
 * flight, quiesces the device's DMA, captures its state with the profile's
 * save op (a snapshot) and starts the shadow's model from it; from then on
 * the access paths (trap.c) send every BAR access of the VMM to the model.
 * The hand-back takes the lock again, asks the model for its state and
 * brings the device to it with the profile's restore op; if the device
 * refuses, the shadow stays engaged. The VMM's interrupt eventfds are
 * remembered as it sets them, so that the model can signal them.
 *
 * Only accesses through the device fd reach the model: engage needs trap
 * mode sparse or all, where the profile's registers are never mmapped.
 */
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <uapi/linux/vfio_mig_stream.h>
#include <vfio-mig/compat.h>

#include "dirty.h"
#include "lm.h"
#include "netlink.h"
#include "profile.h"
#include "reglog.h"
#include "replay.h"
#include "shadow.h"
#include "snapshot.h"
#include "trap.h"
#include "vfio_mig.h"

/**
 * struct vmig_shadow - one engaged shadow
 * @mdev: its device
 * @ops: its implementation (its module held)
 * @lock: serialises the ops; protects @held
 * @reads: BAR reads served
 * @writes: BAR writes served
 * @dmas: transfers to or from guest memory
 * @irqs: interrupts signalled
 * @held: the device's DMA is held (P2P states, STOP, STOP_COPY,
 *	RESUMING): vmig_shadow_dma() refuses, the model keeps the transfer
 *	and starts it from its @unhold op
 * @from_stream: engaged from a migration stream (the target): handed back
 *	in the background once the device runs
 * @ctl: the migration controller whose engage this is (shadow-attach with
 *	ctl-fd), or NULL; cleared when that controller goes
 *	(vmig_shadow_ctl_gone()), so it never points to a freed one. Under
 *	mig.state_mutex
 * @orphan: its controller went before its commit point: handed back in
 *	the background, as @from_stream. Under mig.state_mutex
 * @resets: the device's resets (vmig_shadow_dev.resets) the model has
 *	followed; under @lock
 * @peer_stopped: the profile's peer_quiesce op stopped the device's link
 *	peer for this engage; it is asked to resume when the shadow is
 *	freed. Set before the shadow is published, read at its free
 * @rcu: frees it after a grace period
 * @priv: the implementation's data, @ops->priv_size bytes
 *
 * The counters are atomic (read without @lock); @from_stream and @ctl are
 * set before the shadow is published. Freed after an RCU grace period, so
 * that vmig_shadow_stats() reads it without a lock engage may hold.
 */
struct vmig_shadow {
	struct vmig_device *mdev;
	const struct vmig_shadow_ops *ops;
	struct mutex lock;	/* see above */
	atomic64_t reads, writes, dmas, irqs;
	bool held;
	bool from_stream;
	const struct vmig_ctl *ctl;
	bool orphan;
	int resets;
	bool peer_stopped;
	struct rcu_head rcu;
	u8 priv[] __aligned(8);
};

/* Registered shadows, at most one per profile; under shadow_ops_lock. */
#define VMIG_SHADOW_MAX_OPS	8
static const struct vmig_shadow_ops *shadow_ops[VMIG_SHADOW_MAX_OPS];
static DEFINE_MUTEX(shadow_ops_lock);

static int ops_slot(const char *profile)
{
	int i;

	for (i = 0; i < VMIG_SHADOW_MAX_OPS; i++)
		if (shadow_ops[i] && !strcmp(shadow_ops[i]->profile, profile))
			return i;
	return -1;
}

int vmig_shadow_register(const struct vmig_shadow_ops *ops)
{
	int i, ret = -ENOSPC;

	if (!ops->profile || !ops->read || !ops->write || !ops->engage ||
	    !ops->save || !vmig_profile_find(ops->profile) ||
	    (ops->devstate && ops->handback_writes))
		return -EINVAL;
	mutex_lock(&shadow_ops_lock);
	if (ops_slot(ops->profile) >= 0) {
		ret = -EEXIST;
		goto out;
	}
	for (i = 0; i < VMIG_SHADOW_MAX_OPS; i++) {
		if (!shadow_ops[i]) {
			shadow_ops[i] = ops;
			ret = 0;
			break;
		}
	}
out:
	mutex_unlock(&shadow_ops_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(vmig_shadow_register);

/* An engaged shadow holds its module: none is engaged here. */
void vmig_shadow_unregister(const struct vmig_shadow_ops *ops)
{
	int i;

	mutex_lock(&shadow_ops_lock);
	for (i = 0; i < VMIG_SHADOW_MAX_OPS; i++)
		if (shadow_ops[i] == ops)
			shadow_ops[i] = NULL;
	mutex_unlock(&shadow_ops_lock);
}
EXPORT_SYMBOL_GPL(vmig_shadow_unregister);

bool vmig_shadow_available(const char *profile)
{
	bool found;

	mutex_lock(&shadow_ops_lock);
	found = ops_slot(profile) >= 0;
	mutex_unlock(&shadow_ops_lock);
	return found;
}

/* The shadow of @profile with its module held, or NULL. */
static const struct vmig_shadow_ops *ops_get(const char *profile)
{
	const struct vmig_shadow_ops *ops = NULL;
	int i;

	mutex_lock(&shadow_ops_lock);
	i = ops_slot(profile);
	/*
	 * Not a module still in its init, which may yet fail and be freed
	 * whatever its count (module_is_live() is true while COMING too).
	 */
	if (i >= 0 && (!shadow_ops[i]->owner ||
		       READ_ONCE(shadow_ops[i]->owner->state) ==
		       MODULE_STATE_LIVE) &&
	    try_module_get(shadow_ops[i]->owner))
		ops = shadow_ops[i];
	mutex_unlock(&shadow_ops_lock);
	return ops;
}

void *vmig_shadow_priv(struct vmig_shadow *sh)
{
	return sh->priv;
}
EXPORT_SYMBOL_GPL(vmig_shadow_priv);

struct device *vmig_shadow_device(struct vmig_shadow *sh)
{
	return &sh->mdev->core.pdev->dev;
}
EXPORT_SYMBOL_GPL(vmig_shadow_device);

/*
 * The device was reset since the model last looked (any reset: the
 * VMM's VFIO_DEVICE_RESET, an FLR through config space, a hot reset):
 * the model is reset before it serves another access or gives its state,
 * so that what the guest writes after the reset stays. Under @sh->lock.
 */
static void sync_reset(struct vmig_shadow *sh)
{
	int now = atomic_read(&sh->mdev->shadow.resets);

	lockdep_assert_held(&sh->lock);
	if (now == sh->resets)
		return;
	sh->resets = now;
	if (sh->ops->reset)
		sh->ops->reset(sh);
}

void vmig_shadow_device_reset(struct vmig_device *mdev)
{
	atomic_inc(&mdev->shadow.resets);
}

void vmig_shadow_device_reset_begins(struct vmig_device *mdev)
{
	atomic_inc(&mdev->shadow.resets_begun);
}

/*
 * Resets begun and done so far, in one number that any reset changes from
 * its start on: a staged restore holds only while it stays the same. Done
 * is read first: a reset under way then shows as begun != done (the PCI
 * core pairs reset_prepare and reset_done, under the device lock).
 */
static u64 reset_mark(struct vmig_device *mdev, bool *under_way)
{
	u32 done = atomic_read(&mdev->shadow.resets), begun;

	smp_rmb();	/* prepare's increment comes before done's */
	begun = atomic_read(&mdev->shadow.resets_begun);
	if (under_way)
		*under_way = begun != done;
	return (u64)begun << 32 | done;
}

/* ---- images ---- */

static struct vmig_reg_value *image_find(struct vmig_reg_value *v, u32 n,
					 u8 bar, u32 off, u8 width)
{
	u32 i;

	for (i = 0; i < n; i++)
		if (v[i].bar == bar && v[i].offset == off &&
		    v[i].width == width)
			return &v[i];
	return NULL;
}

int vmig_shadow_image_get(const struct vmig_shadow_image *img, bool written,
			  u8 bar, u32 off, u8 width, u64 *val)
{
	struct vmig_reg_value *r;

	if (written)
		r = image_find(img->written, img->nr_written, bar, off, width);
	else
		r = image_find(img->reads, img->nr_reads, bar, off, width);
	if (!r)
		return -ENODATA;
	*val = r->value;
	return 0;
}
EXPORT_SYMBOL_GPL(vmig_shadow_image_get);

int vmig_shadow_image_put(struct vmig_shadow_image *img, bool written, u8 bar,
			  u32 off, u8 width, u64 val)
{
	struct vmig_reg_value *v = written ? img->written : img->reads;
	u32 *nr = written ? &img->nr_written : &img->nr_reads;
	u32 max = written ? img->max_written : img->max_reads;
	struct vmig_reg_value *r = image_find(v, *nr, bar, off, width);

	if (!r) {
		if (*nr >= max)
			return -ENOSPC;
		r = &v[(*nr)++];
		r->bar = bar;
		r->offset = off;
		r->width = width;
		r->seq = *nr;	/* the register file's order */
	}
	r->value = val;
	return 0;
}
EXPORT_SYMBOL_GPL(vmig_shadow_image_put);

int vmig_shadow_image_hold(struct vmig_shadow_image *img, u8 bar, u32 off,
			   u8 width, u64 val)
{
	struct vmig_held_write *w;

	if (img->nr_held >= img->max_held)
		return -ENOSPC;
	w = &img->held[img->nr_held++];
	w->bar = bar;
	w->offset = off;
	w->width = width;
	w->value = val;
	return 0;
}
EXPORT_SYMBOL_GPL(vmig_shadow_image_hold);

/* ---- guest memory and interrupts ---- */

struct shadow_dma {
	struct vmig_device *mdev;
	u64 iova;
	void *buf;
	size_t len;
	bool to_ram;
};

static int shadow_dma_fn(void *arg)
{
	struct shadow_dma *d = arg;

	return vfio_dma_rw(&d->mdev->core.vdev, d->iova, d->buf, d->len,
			   d->to_ram);
}

/*
 * Does the guest let its device master the bus? The bit is not
 * virtualized by vfio-pci: the device's own command register has it.
 * Without it the device's DMA and its MSI (a memory write) go nowhere,
 * and neither may the model's.
 */
static bool guest_masters(struct vmig_device *mdev)
{
	u16 cmd;

	if (pci_read_config_word(mdev->core.pdev, PCI_COMMAND, &cmd))
		return false;
	return cmd & PCI_COMMAND_MASTER;
}

/*
 * From a worker: vfio_dma_rw() reaches the VMM's memory from a kernel
 * thread, whoever (the VMM, a controller) made the access. The log is
 * marked after the write, so a report that cleared the pages before it
 * cannot hide it; a write that failed part way may have changed some of
 * them, so it is marked too. EIO: the guest turned bus mastering off.
 */
int vmig_shadow_dma(struct vmig_shadow *sh, u64 iova, void *buf, size_t len,
		    bool to_ram)
{
	struct shadow_dma d = {
		.mdev = sh->mdev, .iova = iova, .buf = buf, .len = len,
		.to_ram = to_ram,
	};
	int ret;

	lockdep_assert_held(&sh->lock);
	if (sh->held)
		return -EAGAIN;
	if (!len)
		return 0;
	if (!guest_masters(sh->mdev))
		return -EIO;
	ret = vmig_run_in_worker(shadow_dma_fn, &d);
	if (to_ram)
		vmig_dirty_mark(sh->mdev, iova, len);
	if (ret)
		return ret;
	atomic64_inc(&sh->dmas);
	return 0;
}
EXPORT_SYMBOL_GPL(vmig_shadow_dma);

int vmig_shadow_peek(struct vmig_shadow *sh, u64 iova, void *buf,
		     size_t len)
{
	struct shadow_dma d = {
		.mdev = sh->mdev, .iova = iova, .buf = buf, .len = len,
	};

	lockdep_assert_held(&sh->lock);
	return len ? vmig_run_in_worker(shadow_dma_fn, &d) : 0;
}
EXPORT_SYMBOL_GPL(vmig_shadow_peek);

bool vmig_shadow_irq(struct vmig_shadow *sh, unsigned int vector)
{
	struct vmig_shadow_dev *sd = &sh->mdev->shadow;
	int type = READ_ONCE(sh->mdev->core.irq_type);
	struct eventfd_ctx *ctx = NULL;

	lockdep_assert_held(&sh->lock);
	if (type < 0 || type >= VMIG_SHADOW_IRQ_TYPES)
		return false;		/* no interrupt enabled */
	/* INTx: an edge per call, none while the guest disabled it */
	if (type == VFIO_PCI_INTX_IRQ_INDEX) {
		if (READ_ONCE(sh->mdev->core.virq_disabled))
			return false;
		vector = 0;
	}
	if (vector >= VMIG_SHADOW_VECTORS)
		return false;
	/* an MSI is a memory write of the device's: none without mastering */
	if (type != VFIO_PCI_INTX_IRQ_INDEX && !guest_masters(sh->mdev))
		return false;
	mutex_lock(&sd->irq_lock);
	ctx = sd->trigger[type][vector];
	if (ctx)
		vmig_eventfd_signal(ctx);
	mutex_unlock(&sd->irq_lock);
	if (!ctx)
		return false;
	atomic64_inc(&sh->irqs);
	return true;
}
EXPORT_SYMBOL_GPL(vmig_shadow_irq);

static void drop_triggers(struct vmig_shadow_dev *sd, unsigned int type)
{
	unsigned int i;

	for (i = 0; i < VMIG_SHADOW_VECTORS; i++) {
		if (sd->trigger[type][i])
			eventfd_ctx_put(sd->trigger[type][i]);
		sd->trigger[type][i] = NULL;
	}
}

/*
 * After vfio-pci took the request: read its eventfds again from the
 * caller's memory. A VMM that changes them in between only misdirects
 * its own interrupts.
 */
void vmig_shadow_set_irqs(struct vmig_device *mdev, void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_irq_set, count);
	struct vmig_shadow_dev *sd = &mdev->shadow;
	s32 __user *fds = uarg + minsz;
	struct eventfd_ctx *ctx, *old;
	struct vfio_irq_set hdr;
	u32 i, type;
	s32 fd;

	if (copy_from_user(&hdr, uarg, minsz) ||
	    !(hdr.flags & VFIO_IRQ_SET_ACTION_TRIGGER) ||
	    hdr.index >= VMIG_SHADOW_IRQ_TYPES)
		return;
	type = hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
	if (type == VFIO_IRQ_SET_DATA_NONE && !hdr.count) {
		mutex_lock(&sd->irq_lock);
		drop_triggers(sd, hdr.index);
		mutex_unlock(&sd->irq_lock);
		return;
	}
	if (type != VFIO_IRQ_SET_DATA_EVENTFD ||
	    hdr.start >= VMIG_SHADOW_VECTORS)
		return;
	hdr.count = min(hdr.count, VMIG_SHADOW_VECTORS - hdr.start);
	for (i = 0; i < hdr.count; i++) {
		if (get_user(fd, fds + i))
			return;
		ctx = fd >= 0 ? eventfd_ctx_fdget(fd) : NULL;
		if (IS_ERR(ctx))
			ctx = NULL;
		mutex_lock(&sd->irq_lock);
		old = sd->trigger[hdr.index][hdr.start + i];
		sd->trigger[hdr.index][hdr.start + i] = ctx;
		mutex_unlock(&sd->irq_lock);
		if (old)
			eventfd_ctx_put(old);
	}
}

/* ---- the access path ---- */

/*
 * One piece: the model's, or for the MSI-X table nobody's (reads all
 * ones and writes dropped, as vfio-pci's own BAR access does). Writes the model
 * serves are recorded as the trap path records what reaches the device,
 * so that the register file and log stay the guest's.
 */
static void shadow_piece(struct vmig_shadow *sh, u8 bar, u64 at, u8 w,
			 const u8 *in, u8 *out)
{
	bool write = in;
	struct vmig_device *mdev = sh->mdev;
	u64 v = 0;

	if (vmig_bar_excluded(mdev, bar, at, w)) {
		if (!write && vmig_bar_read(mdev, bar, at, w, &v))
			v = ~0ULL;
	} else if (write) {
		v = vmig_piece_value(in, w);
		sh->ops->write(sh, bar, at, w, v);
		atomic64_inc(&sh->writes);
		if (vmig_record_write(&mdev->rs, bar, at, w, v))
			vmig_nl_notify_overflow(mdev);
	} else {
		v = sh->ops->read(sh, bar, at, w);
		atomic64_inc(&sh->reads);
	}
	if (!write) {
		v = (__force u64)cpu_to_le64(v);
		memcpy(out, &v, w);
	}
}

/*
 * Split as the trap paths split: naturally aligned pieces of at most 4
 * bytes. (An aligned 8-byte read that 6.12's vfio-pci takes in one goes
 * out on x86 as two 4-byte reads, low half first: ioread64_lo_hi.) @p is
 * the trap path's copy of the VMM's bytes (at most VMIG_TRAP_CHUNK).
 */
static ssize_t shadow_rw(struct vmig_device *mdev, const u8 *in, u8 *out,
			 size_t count, loff_t fpos)
{
	struct vmig_shadow *sh = mdev->shadow.sh;
	struct pci_dev *pdev = mdev->core.pdev;
	u8 bar = VFIO_PCI_OFFSET_TO_INDEX(fpos);
	u64 off = fpos & VFIO_PCI_OFFSET_MASK, end;
	size_t pos, w;

	end = pci_resource_len(pdev, bar);
	if (!pci_resource_start(pdev, bar) || off >= end)
		return -EINVAL;
	count = min_t(u64, count, end - off);
	mutex_lock(&sh->lock);
	sync_reset(sh);
	for (pos = 0; pos < count; pos += w) {
		w = vmig_piece_width(off + pos, count - pos);
		shadow_piece(sh, bar, off + pos, w, in ? in + pos : NULL,
			     out ? out + pos : NULL);
	}
	mutex_unlock(&sh->lock);
	return count;
}

ssize_t vmig_shadow_read(struct vmig_device *mdev, u8 *buf, size_t count,
			 loff_t pos)
{
	return shadow_rw(mdev, NULL, buf, count, pos);
}

ssize_t vmig_shadow_write(struct vmig_device *mdev, const u8 *buf,
			  size_t count, loff_t pos)
{
	return shadow_rw(mdev, buf, NULL, count, pos);
}

/* ---- engage and hand-back ---- */

bool vmig_shadow_engaged(struct vmig_device *mdev)
{
	return READ_ONCE(mdev->shadow.sh);
}

void vmig_shadow_stats(struct vmig_device *mdev, struct vmig_shadow_stats *s)
{
	struct vmig_shadow *sh;

	memset(s, 0, sizeof(*s));
	s->engage_ns = READ_ONCE(mdev->shadow.engage_ns);
	s->handback_ns = READ_ONCE(mdev->shadow.handback_ns);
	rcu_read_lock();
	sh = READ_ONCE(mdev->shadow.sh);
	if (sh) {
		s->engaged = true;
		s->from_stream = sh->from_stream;
		s->reads = atomic64_read(&sh->reads);
		s->writes = atomic64_read(&sh->writes);
		s->dmas = atomic64_read(&sh->dmas);
		s->irqs = atomic64_read(&sh->irqs);
	}
	rcu_read_unlock();
}

/* The most a link peer's stop may take (profile's peer_quiesce op). */
#define SHADOW_PEER_STOP_MS	1000

/* The device's link peer may send again (peer_quiesce op). */
static void peer_resume(struct vmig_device *mdev)
{
	int ret = mdev->profile->ops->peer_quiesce(mdev, false, 0);

	if (ret)
		pci_warn(mdev->core.pdev,
			 "the device's link peer was not told to resume (%d)\n",
			 ret);
}

/*
 * Before an engage on a device the guest uses: its link peer stops sending
 * (a network adapter's profile), so that nothing arrives while the device
 * is away. Under dev_set->lock and state_mutex, the guest's accesses going
 * on. A stop that failed is undone too, as the op asks.
 */
static int peer_stop(struct vmig_device *mdev, struct vmig_shadow *sh,
		     const char **why)
{
	const struct vmig_profile *p = mdev->profile;
	int ret;

	lockdep_assert_held(&mdev->mig.state_mutex);
	if (!p->ops || !p->ops->peer_quiesce)
		return 0;
	ret = p->ops->peer_quiesce(mdev, true, SHADOW_PEER_STOP_MS);
	if (ret) {
		*why = "the device's link peer did not stop sending";
		peer_resume(mdev);
		return ret;
	}
	sh->peer_stopped = true;
	return 0;
}

static void shadow_free(struct vmig_shadow *sh)
{
	const struct vmig_shadow_ops *ops = sh->ops;

	if (sh->peer_stopped)
		peer_resume(sh->mdev);
	if (ops->release) {
		mutex_lock(&sh->lock);
		ops->release(sh);
		mutex_unlock(&sh->lock);
	}
	mutex_destroy(&sh->lock);
	kfree_rcu(sh, rcu);
	module_put(ops->owner);
}

static struct vmig_shadow *shadow_alloc(struct vmig_device *mdev,
					const struct vmig_shadow_ops *ops)
{
	struct vmig_shadow *sh;

	sh = kzalloc(struct_size(sh, priv, ops->priv_size), GFP_KERNEL);
	if (!sh) {
		module_put(ops->owner);
		return NULL;
	}
	sh->mdev = mdev;
	sh->ops = ops;
	/* before the state is taken: a reset from here on is followed */
	sh->resets = atomic_read(&mdev->shadow.resets);
	mutex_init(&sh->lock);
	return sh;
}

/* What a shadow starts from: a snapshot's registers and blob. */
static int start_model(struct vmig_shadow *sh,
		       const struct vmig_snapshot *snap,
		       struct vmig_held_write *held, u32 nr_held,
		       bool devstate_later, const char **why)
{
	struct vmig_shadow_image img = {
		.reads = snap->reads,
		.nr_reads = snap->nr_reads,
		.written = snap->regfile,
		.nr_written = snap->nr_regfile,
		.held = held,
		.nr_held = nr_held,
		.max_held = nr_held,
		.devstate_later = devstate_later,
	};
	const char *model_why = "";
	int ret;

	if (snap->flags & VMIG_SNAPF_DEVSTATE) {
		img.devstate = snap->devstate;
		img.devstate_len = snap->devstate_len;
	}

	mutex_lock(&sh->lock);
	ret = sh->ops->engage(sh, &img, &model_why);
	mutex_unlock(&sh->lock);
	/* the model's string goes with its module: the kernel log has it */
	if (ret) {
		pci_warn(sh->mdev->core.pdev, "shadow refused the state: %s\n",
			 model_why);
		*why = "the shadow refused the device's state (the kernel log says why)";
	}
	return ret;
}

/* The device's interrupts are the shadow's now (profile's park op). */
static void park(struct vmig_device *mdev)
{
	const struct vmig_profile *p = mdev->profile;
	u16 window;

	if (!p->ops || !p->ops->park)
		return;
	window = vmig_decode_open(mdev);
	p->ops->park(mdev);
	vmig_decode_close(mdev, window);
}

/* Can a shadow serve this device's guest at all? */
static int shadow_usable(struct vmig_device *mdev, const char **why)
{
	if (mdev->trap_mode == VMIG_TRAP_NONE) {
		*why = "trap mode none: guest accesses bypass the driver";
		return -EOPNOTSUPP;
	}
	if (vmig_iommufd_bound(&mdev->core.vdev)) {
		*why = "bound through iommufd: no access to guest memory";
		return -EOPNOTSUPP;
	}
	return 0;
}

/*
 * Engage and hand-back move state with the guest's accesses held: only
 * on a device a VMM has open and running, outside a migration's stop.
 * An engage may also come in PRE_COPY (@engage): the stream goes on, its
 * final part is then the shadow's state; a hand-back waits for RUNNING.
 * Under state_mutex.
 */
static int device_running(struct vmig_device *mdev, bool engage,
			  const char **why)
{
	if (!mdev->open) {
		*why = "no VMM has the device open";
		return -ENODEV;
	}
	if (mdev->mig.state != VFIO_DEVICE_STATE_RUNNING &&
	    (!engage || mdev->mig.state != VMIG_STATE_PRE_COPY)) {
		*why = "the device is migrating";
		return -EBUSY;
	}
	if (mdev->mig.prepared) {
		*why = "the migration prepared its switchover without the shadow";
		return -EBUSY;
	}
	/* the registers a capture reads are not yet all the guest's own */
	if (engage && READ_ONCE(mdev->mig.dma.answers)) {
		*why = "command bits of a prepared switchover shown: retry after a DMA";
		return -EBUSY;
	}
	return 0;
}

/* Held work a model may take or give (edu: DMA starts). */
#define SHADOW_MAX_HELD		8

/* Held DMA starts in their stream form (@in, @nr of them) as writes. */
static void held_writes_of(struct vmig_held_write *hw,
			   const struct vmig_stream_held *in, u32 nr)
{
	u32 i;

	for (i = 0; i < nr; i++) {
		hw[i].value = le64_to_cpu(in[i].value);
		hw[i].offset = le32_to_cpu(in[i].offset);
		hw[i].bar = in[i].bar;
		hw[i].width = in[i].width;
	}
}

/*
 * Under the access lock held for write, state_mutex and dev_set->lock:
 * the device idle, its state captured, the model started. A model that
 * takes its device state later (@later) starts from the registers alone,
 * with the DMA starts the device's DMA hold kept (the caller held it
 * before the access lock, so that the transfer in flight ended with the
 * guest's accesses going on; @resets: the device's reset count then).
 */
static int engage_locked(struct vmig_device *mdev, struct vmig_shadow *sh,
			 bool later, int resets, const char **why)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_stream_held in[SHADOW_MAX_HELD];
	struct vmig_held_write hw[SHADOW_MAX_HELD];
	struct vmig_snapshot *snap;
	u32 nr = 0;
	int ret;

	if (p->ops && p->ops->quiesce) {
		ret = p->ops->quiesce(mdev, 1000);
		if (ret) {
			*why = "the device's DMA did not end";
			return ret;
		}
	}
	if (later) {
		if (WARN_ON_ONCE(vmig_dma_held_max(mdev) > sizeof(in))) {
			*why = "the profile holds more DMA starts than a shadow takes";
			return -E2BIG;
		}
		nr = vmig_dma_held_save(mdev, in) / sizeof(in[0]);
		held_writes_of(hw, in, nr);
	}
	/*
	 * A reset from here on reaches the model; one before, the state. A
	 * reset since the DMA hold began (@resets) reaches the model too:
	 * the starts held since are dropped, as the profile drops them.
	 */
	sh->resets = later ? resets : atomic_read(&mdev->shadow.resets);
	snap = __vmig_snapshot_take(mdev, later ? 0 : VMIG_SNAP_DEVSTATE, 0);
	if (IS_ERR(snap)) {
		*why = "the device's state could not be read";
		return PTR_ERR(snap);
	}
	ret = start_model(sh, snap, hw, nr, later, why);
	vmig_snapshot_free(snap);
	if (!ret)
		park(mdev);
	return ret;
}

/*
 * The device state blob of a model that engaged from the registers alone
 * (its devstate op), read while the model serves the guest: under
 * state_mutex and the move lock, no migration arc, reset or config write
 * meanwhile. The device was quiesced and parked; nothing else drives it.
 */
static int engage_devstate(struct vmig_device *mdev, struct vmig_shadow *sh,
			   const char **why)
{
	struct vmig_shadow_image img = {};
	const char *model_why = "";
	struct vmig_snapshot *snap;
	int ret;

	snap = __vmig_snapshot_take(mdev, VMIG_SNAP_DEVSTATE, 0);
	if (IS_ERR(snap)) {
		*why = "the device's state could not be read";
		return PTR_ERR(snap);
	}
	if (snap->flags & VMIG_SNAPF_DEVSTATE) {
		img.devstate = snap->devstate;
		img.devstate_len = snap->devstate_len;
	}
	mutex_lock(&sh->lock);
	sync_reset(sh);
	ret = sh->ops->devstate(sh, &img, &model_why);
	mutex_unlock(&sh->lock);
	vmig_snapshot_free(snap);
	if (ret) {
		pci_warn(mdev->core.pdev, "shadow refused the state: %s\n",
			 model_why);
		*why = "the shadow refused the device's state (the kernel log says why)";
	}
	return ret;
}

static int handback_move(struct vmig_device *mdev, struct vmig_shadow *sh,
			 const char **why);

/*
 * The blob could not be read: the device keeps it, the model hands back
 * what the guest did meanwhile. False if that failed too (the shadow
 * serves on, with the reason in the kernel log).
 */
static bool engage_undo(struct vmig_device *mdev, struct vmig_shadow *sh)
{
	const char *why = "";
	int ret;

	mutex_lock(&sh->lock);
	sync_reset(sh);
	ret = sh->ops->devstate(sh, NULL, &why);
	mutex_unlock(&sh->lock);
	WARN_ON_ONCE(ret);
	if (!handback_move(mdev, sh, &why))
		return true;
	pci_warn(mdev->core.pdev,
		 "shadow engage failed and the hand-back that undoes it too (%s): the shadow stays engaged\n",
		 why);
	return false;
}

/*
 * Under dev_set->lock, state_mutex and the move lock held for write: the
 * guest moves to the model; one that takes the device's state later gets
 * it then. @keep: the engage failed, but the shadow could not hand back
 * what the guest did meanwhile and stays engaged.
 */
static int engage_move(struct vmig_device *mdev, struct vmig_shadow *sh,
		       bool *keep, const char **why)
{
	const struct vmig_profile_dma_ops *dma = mdev->profile->dma;
	struct vmig_shadow_dev *sd = &mdev->shadow;
	bool later = !!sh->ops->devstate;
	bool hold = later && dma && dma->held_read;
	int resets = atomic_read(&sd->resets);
	u64 t0;
	int ret;

	/*
	 * Such a model also takes the device's held DMA starts: new ones
	 * are held (and read as running: the profile's held_read, without
	 * which the guest would see a start it made end unmade), and the
	 * transfer in flight ends before the accesses are held.
	 */
	if (hold) {
		ret = vmig_dma_hold(mdev);
		if (ret) {
			*why = "the device's DMA did not end";
			return ret;
		}
	}
	percpu_down_write(&sd->sem);
	t0 = ktime_get_ns();
	ret = engage_locked(mdev, sh, later, resets, why);
	if (!ret) {
		/* the model set up before readers find it (RCU) */
		smp_store_release(&sd->sh, sh);
	}
	WRITE_ONCE(sd->engage_ns, ktime_get_ns() - t0);
	percpu_up_write(&sd->sem);
	/*
	 * Engaged: the model took the held starts; else the device does,
	 * unless it was reset since they were held (the profile drops them).
	 */
	if (hold)
		vmig_dma_release(mdev, ret &&
				 atomic_read(&sd->resets) == resets);
	if (!later || ret)
		return ret;
	ret = engage_devstate(mdev, sh, why);
	if (ret)
		*keep = !engage_undo(mdev, sh);
	return ret;
}

/*
 * An engage for controller @ctl: it must be this device's, before its
 * commit. The caller holds a reference on @ctl's file, so its release (and
 * vmig_shadow_ctl_gone()) comes after the engage is published; a COMMIT
 * after this check is seen there. Under dev_set->lock, which keeps
 * close_device from detaching it meanwhile.
 */
static int ctl_usable(struct vmig_device *mdev, const struct vmig_ctl *ctl,
		      const char **why)
{
	int ret = -EINVAL;

	down_read(&mdev->ctl.rwsem);
	/* set once by ATTACH (another device's fd may be attaching now) */
	if (READ_ONCE(ctl->mdev) != mdev)
		*why = "ctl-fd is not attached to this device";
	else if (mdev->ctl.ctl != ctl)
		*why = "ctl-fd is no longer attached to the device";
	else if (ctl->committed)
		*why = "ctl-fd's migration is past its commit point";
	else
		ret = 0;
	up_read(&mdev->ctl.rwsem);
	return ret;
}

int vmig_shadow_engage(struct vmig_device *mdev, const struct vmig_ctl *ctl,
		       const char **why)
{
	struct vmig_shadow_dev *sd = &mdev->shadow;
	const struct vmig_shadow_ops *ops;
	struct vmig_shadow *sh;
	bool keep = false;
	int ret;

	mutex_lock(vmig_dev_set_lock(mdev));
	ret = shadow_usable(mdev, why);
	if (ret)
		goto out;
	if (ctl) {
		ret = ctl_usable(mdev, ctl, why);
		if (ret)
			goto out;
	}
	ops = ops_get(mdev->profile->name);
	if (!ops) {
		*why = "no shadow for the device's profile (is sriov_shadow loaded?)";
		ret = -EOPNOTSUPP;
		goto out;
	}
	sh = shadow_alloc(mdev, ops);
	if (!sh) {
		ret = -ENOMEM;
		goto out;
	}
	sh->ctl = ctl;
	vmig_mig_lock(mdev);
	if (sd->sh) {
		*why = "the shadow is engaged already";
		ret = -EBUSY;
	} else {
		ret = device_running(mdev, true, why);
	}
	if (!ret)
		ret = peer_stop(mdev, sh, why);
	if (!ret) {
		down_write(&sd->move_lock);
		ret = engage_move(mdev, sh, &keep, why);
		up_write(&sd->move_lock);
	}
	vmig_mig_unlock(mdev);
	if (keep) {
		*why = "the state could not be read nor the engage undone: still engaged";
		ret = -EIO;
	} else if (ret) {	/* the model serves no access any more */
		shadow_free(sh);
	}
out:
	mutex_unlock(vmig_dev_set_lock(mdev));
	return ret;
}

/*
 * The model's state as a snapshot of this device, for its restore op, and
 * its held work (@img->held, SHADOW_MAX_HELD entries, the caller's).
 */
static struct vmig_snapshot *model_snapshot(struct vmig_device *mdev,
					    struct vmig_shadow *sh,
					    struct vmig_shadow_image *img)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_snapshot *snap;
	int ret = -ENOMEM;

	snap = kzalloc(sizeof(*snap), GFP_KERNEL);
	if (!snap)
		return ERR_PTR(-ENOMEM);
	vmig_identity_of(mdev->core.pdev, &snap->id);
	strscpy(snap->profile, p->name, sizeof(snap->profile));
	img->max_reads = min_t(u32, vmig_profile_nr_slots(p),
			       VMIG_SNAP_MAX_READS);
	img->max_written = img->max_reads;
	img->devstate_max = vmig_profile_state_size(p);
	img->max_held = SHADOW_MAX_HELD;
	img->reads = kcalloc(img->max_reads, sizeof(*img->reads), GFP_KERNEL);
	img->written = kcalloc(img->max_written, sizeof(*img->written),
			       GFP_KERNEL);
	if (img->devstate_max)
		img->devstate = kzalloc(img->devstate_max, GFP_KERNEL);
	snap->reads = img->reads;
	snap->regfile = img->written;
	snap->devstate = img->devstate;
	if (!img->reads || !img->written ||
	    (img->devstate_max && !img->devstate))
		goto err;
	mutex_lock(&sh->lock);
	sync_reset(sh);
	ret = sh->ops->save(sh, img);
	mutex_unlock(&sh->lock);
	if (ret)
		goto err;
	snap->nr_reads = img->nr_reads;
	snap->nr_regfile = img->nr_written;
	snap->cut_seq = img->nr_written + 1;
	snap->since_seq = snap->cut_seq;
	snap->devstate_len = min(img->devstate_len, img->devstate_max);
	if (snap->devstate_len)
		snap->flags |= VMIG_SNAPF_DEVSTATE;
	return snap;
err:
	vmig_snapshot_free(snap);
	return ERR_PTR(ret);
}

/* The first error of a restore: in the kernel log, the cause in @why. */
static void report_refusal(struct vmig_device *mdev,
			   const struct vmig_replay_report *rep, int ret,
			   const char **why)
{
	const struct vmig_replay_error *e = rep->errors;
	struct pci_dev *pdev = mdev->core.pdev;

	*why = "the device refused the shadow's state: the shadow stays engaged";
	if (rep->nr_errors && e->bar == VMIG_BAR_DEVSTATE)
		pci_warn(pdev, "shadow hand-back: device state item %u: %d %s\n",
			 e->offset, e->err, rep->msg);
	else if (rep->nr_errors)
		pci_warn(pdev, "shadow hand-back: BAR%u %#x (%u bytes): %d %s\n",
			 e->bar, e->offset, e->width, e->err, rep->msg);
	else
		pci_warn(pdev, "shadow hand-back: %d %s\n", ret, rep->msg);
}

/* Writes a model may hand back (handback_writes op). */
#define SHADOW_MAX_WRITES	128

/*
 * A model whose device kept its state: the guest's writes since the
 * engage reach the device now, in order, as if just made.
 */
static int handback_by_writes(struct vmig_device *mdev,
			      struct vmig_shadow *sh, const char **why)
{
	struct vmig_held_write *w;
	const char *model_why = "";
	u32 done;
	int nr, ret;

	w = kcalloc(SHADOW_MAX_WRITES, sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	mutex_lock(&sh->lock);
	sync_reset(sh);
	nr = sh->ops->handback_writes(sh, w, SHADOW_MAX_WRITES, &model_why);
	mutex_unlock(&sh->lock);
	if (nr < 0) {
		pci_warn(mdev->core.pdev, "shadow hand-back refused: %s\n",
			 model_why);
		*why = "the shadow cannot hand back (the kernel log says why)";
		ret = nr;
	} else if (WARN_ON_ONCE(nr > SHADOW_MAX_WRITES)) {
		*why = "the shadow gave more writes than it had room for";
		ret = -EINVAL;
	} else {
		ret = vmig_dma_replay(mdev, w, nr, &done);
		if (ret) {
			pci_warn(mdev->core.pdev,
				 "shadow hand-back: the device took %u of %d writes: %d\n",
				 done, nr, ret);
			*why = "the device refused the guest's writes: still engaged";
			if (sh->ops->handback_failed) {
				mutex_lock(&sh->lock);
				sh->ops->handback_failed(sh, w, done);
				mutex_unlock(&sh->lock);
			}
		}
	}
	kfree(w);
	return ret;
}

/* Restore flags for a hand-back of @sh. */
static unsigned int handback_flags(const struct vmig_shadow *sh)
{
	return sh->from_stream ? VMIG_SNAP_RESERVED : 0;
}

/* Hold or release the model's own DMA (its unhold op starts what waited). */
static void model_dma_hold(struct vmig_shadow *sh, bool hold)
{
	mutex_lock(&sh->lock);
	sync_reset(sh);
	sh->held = hold;
	if (!hold && sh->ops->unhold)
		sh->ops->unhold(sh);
	mutex_unlock(&sh->lock);
}

/*
 * What a staged restore left on the device: the model's blob then, and the
 * device's resets (reset_mark()) before it began.
 */
struct stage_mark {
	u64 gen;
	u64 resets;
};

/*
 * Before the accesses are held: a model with a devstate op has the
 * profile restore the slow part of its state (VMIG_SNAP_STAGE) while it
 * serves on, its DMA held so that the part does not change meanwhile (a
 * transfer the guest starts waits, and reaches the device after the
 * hand-back as held work). True, with what it left in @mark, if the
 * device took it: the hand-back then restores the rest only (unless the
 * blob changed after all, or the device was reset). The model's DMA stays
 * held until the hand-back ends. A failure here costs the hand-back its
 * speed only: all of the state then moves with the accesses held.
 */
static bool stage(struct vmig_device *mdev, struct vmig_shadow *sh,
		  struct vmig_replay_report *rep, struct stage_mark *mark)
{
	struct vmig_held_write held[SHADOW_MAX_HELD];
	struct vmig_shadow_image img = { .held = held };
	struct vmig_snapshot *snap;
	bool under_way;
	u64 resets;
	int ret;

	if (!sh->ops->devstate)
		return false;
	/* a reset under way would undo what is staged before it is used */
	resets = reset_mark(mdev, &under_way);
	if (under_way)
		return false;
	model_dma_hold(sh, true);
	snap = model_snapshot(mdev, sh, &img);
	if (IS_ERR(snap)) {
		ret = PTR_ERR(snap);
	} else {
		ret = __vmig_snapshot_replay(mdev, snap, rep,
					     handback_flags(sh) |
					     VMIG_SNAP_STAGE);
		vmig_snapshot_free(snap);
	}
	if (!ret && rep->nr_errors)
		ret = -EIO;
	/* a reset the PCI core began meanwhile (sysfs, a hot reset) undid it */
	if (!ret && reset_mark(mdev, NULL) != resets)
		ret = -EAGAIN;
	if (ret) {
		model_dma_hold(sh, false);
		pci_info(mdev->core.pdev,
			 "shadow hand-back: the state could not be moved ahead (%d): it all moves with the accesses held\n",
			 ret);
		return false;
	}
	mark->gen = img.devstate_gen;
	mark->resets = resets;
	return true;
}

/*
 * Under the access lock held for write and state_mutex: the device takes
 * the model's state (the rest of it if @mark, what a staged restore left
 * on it, still holds), then what the model held, as the guest's writes
 * reach the device. Only while it runs (not in a migration's states).
 */
static int handback_locked(struct vmig_device *mdev, struct vmig_shadow *sh,
			   struct vmig_replay_report *rep,
			   const struct stage_mark *mark, const char **why)
{
	struct vmig_held_write held[SHADOW_MAX_HELD];
	struct vmig_shadow_image img = { .held = held };
	unsigned int flags = handback_flags(sh);
	struct vmig_snapshot *snap;
	u32 done;
	int ret;

	if (sh->ops->handback_writes && !sh->from_stream)
		return handback_by_writes(mdev, sh, why);
	snap = model_snapshot(mdev, sh, &img);
	if (IS_ERR(snap)) {
		*why = "the shadow's state could not be taken";
		return PTR_ERR(snap);
	}
	/* the device has the blob: staged and unchanged since, or its own */
	if ((mark && img.devstate_gen == mark->gen &&
	     reset_mark(mdev, NULL) == mark->resets) ||
	    img.devstate_kept)
		flags |= VMIG_SNAP_STAGED;
	ret = __vmig_snapshot_replay(mdev, snap, rep, flags);
	if (!ret && rep->nr_errors)
		ret = -EIO;
	if (ret) {
		report_refusal(mdev, rep, ret, why);
		park(mdev);	/* what the restore raised */
	} else if (img.nr_held) {
		ret = vmig_dma_replay(mdev, held, img.nr_held, &done);
		if (ret) {
			pci_warn(mdev->core.pdev,
				 "shadow hand-back: the device took %u of %u held writes: %d\n",
				 done, img.nr_held, ret);
			/*
			 * The model keeps all of its held work and runs it
			 * when it serves on: one start (edu), so the device
			 * took none of it.
			 */
			WARN_ON_ONCE(done);
			*why = "the device refused the held work: the shadow stays engaged";
			park(mdev);
		}
	}
	vmig_snapshot_free(snap);
	return ret;
}

/*
 * The hand-back proper, under dev_set->lock, state_mutex and the move
 * lock held for write: the model's state to the device (its slow part
 * first, with the guest still served, for a model with a devstate op),
 * then the guest's accesses to the device.
 */
static int handback_move(struct vmig_device *mdev, struct vmig_shadow *sh,
			 const char **why)
{
	struct vmig_shadow_dev *sd = &mdev->shadow;
	struct vmig_replay_report *rep;
	struct stage_mark mark;
	bool staged;
	u64 t0;
	int ret;

	lockdep_assert_held_write(&sd->move_lock);
	rep = kzalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep) {
		*why = "out of memory";
		return -ENOMEM;
	}
	staged = stage(mdev, sh, rep, &mark);
	percpu_down_write(&sd->sem);
	t0 = ktime_get_ns();
	ret = handback_locked(mdev, sh, rep, staged ? &mark : NULL, why);
	if (!ret)
		WRITE_ONCE(sd->sh, NULL);
	WRITE_ONCE(sd->handback_ns, ktime_get_ns() - t0);
	percpu_up_write(&sd->sem);
	if (ret && staged)	/* it serves on */
		model_dma_hold(sh, false);
	kfree(rep);
	return ret;
}

/*
 * @background: the background work's, for a shadow a stream engaged or
 * whose controller went.
 */
static int handback(struct vmig_device *mdev, bool background,
		    const char **why)
{
	struct vmig_shadow_dev *sd = &mdev->shadow;
	struct vmig_shadow *sh;
	int ret;

	mutex_lock(vmig_dev_set_lock(mdev));
	vmig_mig_lock(mdev);
	sh = sd->sh;
	if (!sh || (background && !sh->from_stream && !sh->orphan)) {
		*why = "no shadow is engaged";
		ret = -ENOENT;
	} else {
		ret = device_running(mdev, false, why);
	}
	if (!ret) {
		down_write(&sd->move_lock);
		ret = handback_move(mdev, sh, why);
		up_write(&sd->move_lock);
	}
	vmig_mig_unlock(mdev);
	if (!ret) {
		cancel_delayed_work(&sd->handback_work);
		shadow_free(sh);
	}
	mutex_unlock(vmig_dev_set_lock(mdev));
	return ret;
}

int vmig_shadow_handback(struct vmig_device *mdev, const char **why)
{
	return handback(mdev, false, why);
}

/* ---- migration ---- */

struct vmig_snapshot *vmig_shadow_snapshot(struct vmig_device *mdev,
					   void *held, u32 *held_len)
{
	struct vmig_held_write hw[SHADOW_MAX_HELD];
	struct vmig_shadow_image img = { .held = hw };
	struct vmig_stream_held *out = held;
	struct vmig_snapshot *snap;
	u32 i, max;

	lockdep_assert_held(&mdev->mig.state_mutex);
	*held_len = 0;
	if (!mdev->shadow.sh)
		return ERR_PTR(-ENOENT);
	snap = model_snapshot(mdev, mdev->shadow.sh, &img);
	if (IS_ERR(snap))
		return snap;
	if (img.devstate_kept) {
		pci_warn(mdev->core.pdev,
			 "the shadow never had the device's state (its engage was not undone): hand the device back before migrating it\n");
		vmig_snapshot_free(snap);
		return ERR_PTR(-EBUSY);
	}
	/* held work in HELD_WRITES form, as the profile's trap path keeps it */
	max = vmig_dma_held_max(mdev) / sizeof(*out);
	if (img.nr_held > max) {
		vmig_snapshot_free(snap);
		return ERR_PTR(-E2BIG);
	}
	for (i = 0; i < img.nr_held; i++) {
		out[i].value = cpu_to_le64(hw[i].value);
		out[i].offset = cpu_to_le32(hw[i].offset);
		out[i].bar = hw[i].bar;
		out[i].width = hw[i].width;
		out[i].reserved = 0;
	}
	*held_len = img.nr_held * sizeof(*out);
	return snap;
}

int vmig_shadow_engage_stream(struct vmig_device *mdev,
			      const struct vmig_snapshot *snap,
			      const void *held, u32 held_len)
{
	struct vmig_held_write hw[SHADOW_MAX_HELD];
	const struct vmig_stream_held *in = held;
	struct vmig_shadow_dev *sd = &mdev->shadow;
	const struct vmig_shadow_ops *ops;
	const char *why = NULL;
	struct vmig_shadow *sh;
	u32 nr = held_len / sizeof(*in);
	u64 t0;
	int ret;

	lockdep_assert_held(&mdev->mig.state_mutex);
	if (sd->sh)
		return -EBUSY;
	if (shadow_usable(mdev, &why) || nr > SHADOW_MAX_HELD) {
		pci_info(mdev->core.pdev,
			 "the stream carries a shadow's state; no shadow here (%s): the device takes it\n",
			 why ?: "held work");
		return -EOPNOTSUPP;
	}
	/* a model reads only the blob its profile's version writes */
	if (vmig_snap_state_version(snap, mdev->profile) !=
	    mdev->profile->version) {
		pci_info(mdev->core.pdev,
			 "the stream carries a shadow's state of profile version %u; the shadow here reads %u: the device takes it\n",
			 snap->devstate_version, mdev->profile->version);
		return -EOPNOTSUPP;
	}
	ops = ops_get(mdev->profile->name);
	if (!ops || !ops->serves_stream) {
		pci_info(mdev->core.pdev,
			 "the stream carries a shadow's state; no shadow for profile %s serves a stream here: the device takes it\n",
			 mdev->profile->name);
		if (ops)
			module_put(ops->owner);
		return -EOPNOTSUPP;
	}
	/* checked as they arrived (the profile's held_load) */
	held_writes_of(hw, in, nr);
	sh = shadow_alloc(mdev, ops);
	if (!sh)
		return -ENOMEM;
	sh->held = true;		/* RESUMING -> STOP */
	sh->from_stream = true;
	down_write(&sd->move_lock);
	percpu_down_write(&sd->sem);
	t0 = ktime_get_ns();
	ret = start_model(sh, snap, hw, nr, false, &why);
	if (!ret) {
		park(mdev);
		/* the model set up before readers find it (RCU) */
		smp_store_release(&sd->sh, sh);
		sd->handback_tries = 0;
	}
	WRITE_ONCE(sd->engage_ns, ktime_get_ns() - t0);
	percpu_up_write(&sd->sem);
	up_write(&sd->move_lock);
	if (ret) {
		pci_warn(mdev->core.pdev,
			 "the stream's shadow state was refused (%s): the device takes it\n",
			 why);
		shadow_free(sh);
	}
	return ret;
}

/* Tries of the background hand-back on a target, HZ / 2 apart. */
#define HANDBACK_TRIES	10

static void queue_handback(struct vmig_device *mdev, unsigned long delay)
{
	if (!READ_ONCE(mdev->shadow.dying))
		queue_delayed_work(system_long_wq, &mdev->shadow.handback_work,
				   delay);
}

void vmig_shadow_hold(struct vmig_device *mdev, bool hold)
{
	struct vmig_shadow *sh = mdev->shadow.sh;
	bool open = READ_ONCE(mdev->open);

	lockdep_assert_held(&mdev->mig.state_mutex);
	if (!sh)
		return;
	mutex_lock(&sh->lock);
	sync_reset(sh);
	sh->held = hold;
	/* no transfer into a VMM that is going away */
	if (!hold && open && sh->ops->unhold)
		sh->ops->unhold(sh);
	mutex_unlock(&sh->lock);
	if (!hold && open && (sh->from_stream || sh->orphan))
		queue_handback(mdev, 0);
}

void vmig_shadow_mig_reset(struct vmig_device *mdev, bool stay_stopped)
{
	struct vmig_shadow *sh = mdev->shadow.sh;

	lockdep_assert_held(&mdev->mig.state_mutex);
	if (sh) {
		mutex_lock(&sh->lock);
		sync_reset(sh);
		mutex_unlock(&sh->lock);
	}
	vmig_shadow_hold(mdev, stay_stopped);
}

void vmig_shadow_ctl_gone(struct vmig_device *mdev, const struct vmig_ctl *ctl,
			  bool rolled_back)
{
	struct vmig_shadow *sh;

	lockdep_assert_held_write(&mdev->ctl.rwsem);
	mutex_lock(&mdev->mig.state_mutex);
	sh = mdev->shadow.sh;
	if (sh && sh->ctl == ctl) {
		sh->ctl = NULL;
		if (rolled_back) {
			pci_info(mdev->core.pdev,
				 "the migration controller that engaged the shadow went before its commit: the device is handed back once it runs\n");
			sh->orphan = true;
			mdev->shadow.handback_tries = 0;
			queue_handback(mdev, 0);
		}
	}
	mutex_unlock(&mdev->mig.state_mutex);
}

/*
 * A target's shadow engaged from the stream goes as soon as the device
 * takes its state, and so does a source's whose controller went before its
 * commit; until then it serves the guest, and the tries go on.
 * A device not running (a new migration) is tried again at its next
 * unhold, without counting.
 */
static void handback_work(struct work_struct *work)
{
	struct vmig_shadow_dev *sd = container_of(to_delayed_work(work),
						  struct vmig_shadow_dev,
						  handback_work);
	struct vmig_device *mdev = container_of(sd, struct vmig_device,
						shadow);
	const char *why = NULL;
	int ret;

	ret = handback(mdev, true, &why);
	if (!ret || ret == -ENOENT || ret == -ENODEV || ret == -EBUSY)
		return;
	if (++sd->handback_tries < HANDBACK_TRIES)
		queue_handback(mdev, HZ / 2);
	else
		pci_warn(mdev->core.pdev,
			 "the shadow keeps serving the guest: the device did not take its state (%d: %s); hand it back with shadow-detach\n",
			 ret, why ?: "");
}

/* ---- device life ---- */

int vmig_shadow_dev_init(struct vmig_device *mdev)
{
	mutex_init(&mdev->shadow.irq_lock);
	init_rwsem(&mdev->shadow.move_lock);
	INIT_DELAYED_WORK(&mdev->shadow.handback_work, handback_work);
	return percpu_init_rwsem(&mdev->shadow.sem);
}

void vmig_shadow_remove(struct vmig_device *mdev)
{
	/* every queuer holds state_mutex: none queues after this */
	mutex_lock(&mdev->mig.state_mutex);
	WRITE_ONCE(mdev->shadow.dying, true);
	mutex_unlock(&mdev->mig.state_mutex);
	/* it may queue itself again: cancel_delayed_work_sync() handles that */
	cancel_delayed_work_sync(&mdev->shadow.handback_work);
}

void vmig_shadow_dev_exit(struct vmig_device *mdev)
{
	cancel_delayed_work_sync(&mdev->shadow.handback_work);
	percpu_free_rwsem(&mdev->shadow.sem);
	mutex_destroy(&mdev->shadow.irq_lock);
}

/*
 * Under dev_set->lock; no access of the VMM is left (its fds are gone). A
 * hand-back work item that runs later finds the device closed.
 */
void vmig_shadow_close(struct vmig_device *mdev)
{
	struct vmig_shadow_dev *sd = &mdev->shadow;
	struct vmig_shadow *sh;
	unsigned int t;

	cancel_delayed_work(&sd->handback_work);
	mutex_lock(&mdev->mig.state_mutex);
	sh = sd->sh;
	if (sh) {
		percpu_down_write(&sd->sem);
		WRITE_ONCE(sd->sh, NULL);
		percpu_up_write(&sd->sem);
	}
	mutex_unlock(&mdev->mig.state_mutex);
	if (sh) {
		pci_info(mdev->core.pdev,
			 "closed while its shadow was engaged: the shadow's state is dropped\n");
		shadow_free(sh);
	}
	mutex_lock(&sd->irq_lock);
	for (t = 0; t < VMIG_SHADOW_IRQ_TYPES; t++)
		drop_triggers(sd, t);
	mutex_unlock(&sd->irq_lock);
}
