// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the VFIO migration state machine (uAPI v2).
 *
 * States: RUNNING, STOP, STOP_COPY, RESUMING and RUNNING_P2P; PRE_COPY and
 * PRE_COPY_P2P where the kernel has them (6.2 and later). The core's
 * vfio_mig_get_next_state() breaks every request into single arcs, which
 * step() performs one at a time under mig.state_mutex:
 *
 *   RUNNING -> RUNNING_P2P, PRE_COPY -> PRE_COPY_P2P
 *	DMA is held and the transfer in flight waited for (lm_dma.c)
 *   RUNNING_P2P -> RUNNING, PRE_COPY_P2P -> PRE_COPY
 *	held DMA starts are issued, DMA released
 *   RUNNING_P2P <-> STOP
 *	nothing: DMA is already held, and the VMM has stopped the vCPUs
 *   RUNNING -> PRE_COPY, RUNNING_P2P -> PRE_COPY_P2P
 *	a saving data fd; its initial bytes: the stream header and the
 *	write log so far
 *   PRE_COPY* -> RUNNING*
 *	the saving fd is dropped
 *   STOP -> STOP_COPY, PRE_COPY_P2P -> STOP_COPY
 *	the profile saves the stopped device and the rest of the stream is
 *	queued on the saving fd (a new one from STOP, unless a prepare
 *	opened it in RUNNING, which a kernel without PRE_COPY does: then
 *	that one, which RUNNING_P2P -> RUNNING and STOP -> RESUMING drop)
 *   STOP_COPY -> STOP
 *	the saving fd is dropped
 *   STOP -> RESUMING
 *	a resuming data fd, which checks the stream as it arrives
 *   RESUMING -> STOP
 *	the stream must be complete; it is applied to the device; held DMA
 *	starts it carries wait for RUNNING. On failure the device stays in
 *	RESUMING and the VMM resets it (or closes it) to abort.
 *
 * The same arcs serve the VMM's VFIO feature and a controller's
 * /dev/vfio-mig (ctl.c), through vmig_mig_set_state(). A controller that
 * goes away before its commit point rolls the device back
 * (vmig_mig_rollback()): RESUMING first drops its fd unapplied and goes to
 * STOP, then legal arcs lead to RUNNING. After a controller's
 * COMMIT_STOPPED no arc leaves STOP until close_device.
 *
 * A device reset (VFIO_DEVICE_RESET, hot reset, sysfs) and close_device
 * return the device to RUNNING with its data fds dropped and nothing held.
 * After COMMIT_STOPPED, VFIO_DEVICE_RESET and VFIO_DEVICE_PCI_HOT_RESET on
 * the device's fd are refused, but other resets cannot be: a hot reset
 * through another device of the slot or bus (vfio-pci asks no variant
 * driver), an FLR the VMM writes in config space (PCIe or AF capability),
 * sysfs "reset". They all end in reset_done, and a reset of a committed
 * source leaves it in STOP with DMA held, so it never runs. An AER
 * recovery's bus or slot reset (pci_bus_error_reset()) calls neither
 * reset_prepare nor reset_done, so it is not seen here (not handled).
 * A reset arrives with the core's memory_lock held, which the trap path
 * takes under the DMA hold lock, and an arc may hold state_mutex while it
 * waits for memory_lock; so reset_done only marks the reset, and it is
 * applied by a work item or by whoever takes state_mutex first (the
 * deferred reset of mlx5-vfio-pci, without its trylock). VFIO_DEVICE_RESET
 * waits for the work, so the VMM sees RUNNING when the ioctl returns.
 */
#include <linux/file.h>
#include <linux/uaccess.h>
#include <vfio-mig/compat.h>

#include "lm.h"
#include "netlink.h"
#include "profile.h"
#include "vfio_mig.h"

static const char * const state_names[] = {
	[VFIO_DEVICE_STATE_ERROR] = "error",
	[VFIO_DEVICE_STATE_STOP] = "stop",
	[VFIO_DEVICE_STATE_RUNNING] = "running",
	[VFIO_DEVICE_STATE_STOP_COPY] = "stop-copy",
	[VFIO_DEVICE_STATE_RESUMING] = "resuming",
	[VFIO_DEVICE_STATE_RUNNING_P2P] = "running-p2p",
	[VMIG_STATE_PRE_COPY] = "pre-copy",
	[VMIG_STATE_PRE_COPY_P2P] = "pre-copy-p2p",
};

const char *vmig_mig_state_name(enum vfio_device_mig_state state)
{
	if ((unsigned int)state >= ARRAY_SIZE(state_names))
		return "?";
	return state_names[state];
}

/*
 * Reset the profile's model, if @all (close) or a reset it has not seen
 * says so. Pages pinned for transfers stay pinned through a reset (a
 * stale pin only reports its page again) until the engine is seen idle,
 * or the close: a reset's flag may be consumed after a transfer that
 * started since (reset_done cannot take the hold lock), whose pages must
 * stay pinned.
 */
static void dma_reset(struct vmig_device *mdev, bool all)
{
	struct vmig_mig *m = &mdev->mig;
	bool pending;

	lockdep_assert_held_write(&m->dma.lock);
	/* the trap path's common case: nothing to apply, no lock */
	if (!all && !READ_ONCE(m->dma_reset))
		return;
	spin_lock(&m->reset_lock);
	pending = m->dma_reset;
	WRITE_ONCE(m->dma_reset, false);
	spin_unlock(&m->reset_lock);
	if (!pending && !all)
		return;
	if (mdev->profile->ops && mdev->profile->ops->reset)
		mdev->profile->ops->reset(mdev);
	if (all)
		vmig_pin_drop(mdev, 0, 0);
}

void vmig_mig_dma_reset(struct vmig_device *mdev)
{
	/* held writes wait for the reset's work, which drops what was held */
	if (!mdev->mig.dma.held)
		dma_reset(mdev, false);
}

void vmig_mig_dma_reset_release(struct vmig_device *mdev)
{
	dma_reset(mdev, false);
}

/*
 * Back to RUNNING, nothing held, no data fd; under state_mutex. Returns
 * whether the state changed. A source committed in STOP stays in STOP
 * with DMA held: whatever reset the device, it must not run again. The
 * profile's model is reset if @close, else only if the reset that brought
 * us here has not reached it yet (a trapped write may have applied it
 * first, and the guest may have configured the device again since).
 */
static bool reset_locked(struct vmig_device *mdev, bool close)
{
	struct vmig_mig *m = &mdev->mig;
	struct vmig_dma_hold *h = &m->dma;

	lockdep_assert_held(&m->state_mutex);
	if (m->saving)
		vmig_migf_put(m->saving);
	if (m->resuming)
		vmig_migf_put(m->resuming);
	m->saving = NULL;
	m->resuming = NULL;
	down_write(&h->lock);
	h->held = m->stay_stopped;
	m->prepared = false;
	dma_reset(mdev, close);
	up_write(&h->lock);
	vmig_shadow_mig_reset(mdev, m->stay_stopped);
	if (m->stay_stopped || m->state == VFIO_DEVICE_STATE_RUNNING)
		return false;
	m->state = VFIO_DEVICE_STATE_RUNNING;
	return true;
}

/* A reset arrived: apply it now that state_mutex is ours. */
static void apply_reset(struct vmig_device *mdev)
{
	struct vmig_mig *m = &mdev->mig;
	bool pending;

	spin_lock(&m->reset_lock);
	pending = m->deferred_reset;
	m->deferred_reset = false;
	spin_unlock(&m->reset_lock);
	if (pending && reset_locked(mdev, false))
		vmig_nl_notify(mdev, VFIO_MIG_CMD_MIG_STATE_NTF);
}

static void state_lock(struct vmig_device *mdev)
{
	mutex_lock(&mdev->mig.state_mutex);
	apply_reset(mdev);
}

/* A reset that arrives until the mutex is free is applied by its holder. */
static void state_unlock(struct vmig_device *mdev)
{
	struct vmig_mig *m = &mdev->mig;

again:
	spin_lock(&m->reset_lock);
	if (m->deferred_reset) {
		spin_unlock(&m->reset_lock);
		apply_reset(mdev);
		goto again;
	}
	mutex_unlock(&m->state_mutex);
	spin_unlock(&m->reset_lock);
}

void vmig_mig_lock(struct vmig_device *mdev)
{
	state_lock(mdev);
}

void vmig_mig_unlock(struct vmig_device *mdev)
{
	state_unlock(mdev);
}

void vmig_mig_close(struct vmig_device *mdev)
{
	state_lock(mdev);
	mdev->mig.stay_stopped = false;
	if (reset_locked(mdev, true))
		vmig_nl_notify(mdev, VFIO_MIG_CMD_MIG_STATE_NTF);
	state_unlock(mdev);
}

/* debugfs TEST INTERFACE (vfio-mig/reset_delay_ms): delay @reset_work */
unsigned int vmig_reset_delay_ms;

static void reset_work(struct work_struct *work)
{
	struct vmig_device *mdev = container_of(to_delayed_work(work),
						struct vmig_device,
						mig.reset_work);

	state_lock(mdev);
	state_unlock(mdev);
}

#define VMIG_MIGRATION_FLAGS	(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | \
				 VMIG_MIGRATION_PRE_COPY)

/*
 * STOP_COPY promises that the device writes no guest memory once it is
 * stopped, and P2P that it starts no DMA once in RUNNING_P2P: the last
 * dirty report must be the last word. Only a profile that names its DMA
 * engine (the doorbell, where its doorbell op holds starts) and can wait
 * for the transfer in flight (its quiesce op) can keep that promise.
 */
const char *vmig_mig_unsupported(const struct vmig_profile *p)
{
	if (!vmig_profile_has_dma(p))
		return "the profile cannot quiesce the device's DMA";
	return NULL;
}

void vmig_mig_init(struct vmig_device *mdev)
{
	struct vmig_mig *m = &mdev->mig;

	mutex_init(&m->state_mutex);
	spin_lock_init(&m->reset_lock);
	init_rwsem(&m->dma.lock);
	vmig_pin_init(&m->dma);
	INIT_DELAYED_WORK(&m->reset_work, reset_work);
	m->state = VFIO_DEVICE_STATE_RUNNING;
	/*
	 * The profile at probe is the most specific one that fits the device
	 * (profile.c): if it cannot quiesce DMA, no profile the device can
	 * get can, and the device has no migration at all. Otherwise
	 * vmig_mig_open() withdraws the flags while a profile that cannot is
	 * set.
	 */
	if (vmig_mig_unsupported(mdev->profile))
		return;
	mdev->core.vdev.migration_flags = VMIG_MIGRATION_FLAGS;
	mdev->core.vdev.mig_ops = &vmig_mig_ops;
}

/*
 * The same, for the device as it is set now: with trap mode none the
 * doorbell op never sees a start, so nothing holds the device's DMA.
 */
const char *vmig_mig_unsupported_dev(struct vmig_device *mdev)
{
	const char *why = vmig_mig_unsupported(READ_ONCE(mdev->profile));

	if (!why && READ_ONCE(mdev->trap_mode) == VMIG_TRAP_NONE)
		why = "trap mode none: the profile sees no doorbell to hold";
	return why;
}

u32 vmig_mig_flags(struct vmig_device *mdev)
{
	if (!mdev->core.vdev.mig_ops || vmig_mig_unsupported_dev(mdev))
		return 0;
	return VMIG_MIGRATION_FLAGS;
}

void vmig_mig_open(struct vmig_device *mdev)
{
	struct vfio_device *vdev = &mdev->core.vdev;

	if (vdev->mig_ops)
		vdev->migration_flags = vmig_mig_unsupported_dev(mdev) ?
					0 : VMIG_MIGRATION_FLAGS;
}

static bool mig_offered(struct vmig_device *mdev)
{
	return mdev->core.vdev.migration_flags & VFIO_MIGRATION_STOP_COPY;
}

void vmig_mig_reset_sync(struct vmig_device *mdev)
{
	flush_delayed_work(&mdev->mig.reset_work);
}

void vmig_mig_exit(struct vmig_device *mdev)
{
	cancel_delayed_work_sync(&mdev->mig.reset_work);
}

/*
 * The PCI core reset the function (VFIO_DEVICE_RESET, a hot reset, AER).
 * The caller may hold the core's memory_lock, which the trap path takes
 * under our DMA hold lock: take no sleeping lock here. Mark the reset and
 * let a work item (or whoever holds state_mutex first) apply it.
 */
static void vmig_reset_done(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(&pdev->dev);
	struct vmig_mig *m;

	if (!core)
		return;
	m = &to_vmig(&core->vdev)->mig;
	/*
	 * Whichever reset it was (VFIO_DEVICE_RESET, a hot reset, an FLR
	 * through config space, sysfs): the registers written before it are
	 * gone. Recorded here, under the core's memory_lock where vfio-pci
	 * resets, so no trapped write falls between the reset and its marker.
	 */
	vmig_record_reset(&to_vmig(&core->vdev)->rs);
	vmig_shadow_device_reset(to_vmig(&core->vdev));
	spin_lock(&m->reset_lock);
	m->deferred_reset = true;
	WRITE_ONCE(m->dma_reset, true);
	spin_unlock(&m->reset_lock);
	schedule_delayed_work(&m->reset_work,
			      msecs_to_jiffies(READ_ONCE(vmig_reset_delay_ms)));
}

/*
 * The PCI core is about to reset the function: a hand-back that staged the
 * shadow's slow state on it must not count on it (shadow.c). Same context
 * as reset_done.
 */
static void vmig_reset_prepare(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(&pdev->dev);

	if (core)
		vmig_shadow_device_reset_begins(to_vmig(&core->vdev));
}

const struct pci_error_handlers vmig_err_handlers = {
	.reset_prepare = vmig_reset_prepare,
	.reset_done = vmig_reset_done,
	.error_detected = vfio_pci_core_aer_err_detected,
};

static struct file *new_fd(struct vmig_migf *migf, struct vmig_migf **slot)
{
	if (IS_ERR(migf))
		return ERR_CAST(migf);
	/* the device keeps a reference until the session ends */
	get_file(migf->filp);
	*slot = migf;
	return migf->filp;
}

static void drop_fd(struct vmig_migf **slot)
{
	vmig_migf_put(*slot);
	*slot = NULL;
}

/* Without PRE_COPY: the stream a prepare opened in RUNNING ends here. */
static void drop_early_stream(struct vmig_mig *m)
{
	if (!VMIG_MIGRATION_PRE_COPY && m->saving)
		drop_fd(&m->saving);
}

static bool arc(enum vfio_device_mig_state cur, enum vfio_device_mig_state next,
		enum vfio_device_mig_state from, enum vfio_device_mig_state to)
{
	return cur == from && next == to;
}

static struct file *step(struct vmig_device *mdev,
			 enum vfio_device_mig_state next)
{
	enum vfio_device_mig_state cur = mdev->mig.state;
	struct vmig_mig *m = &mdev->mig;
	struct vmig_migf *migf;
	struct file *res;
	int ret;

	/*
	 * A prepared PRE_COPY (RUNNING without PRE_COPY) leaves with its DMA
	 * hold: P2P's, or released.
	 */
	if (cur == VMIG_STATE_PRE_COPY || cur == VFIO_DEVICE_STATE_RUNNING)
		m->prepared = false;
	if (arc(cur, next, VFIO_DEVICE_STATE_RUNNING,
		VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    arc(cur, next, VMIG_STATE_PRE_COPY, VMIG_STATE_PRE_COPY_P2P)) {
		ret = vmig_dma_hold(mdev);
		if (!ret)
			vmig_shadow_hold(mdev, true);
		return ret ? ERR_PTR(ret) : NULL;
	}
	if (arc(cur, next, VFIO_DEVICE_STATE_RUNNING_P2P,
		VFIO_DEVICE_STATE_RUNNING) ||
	    arc(cur, next, VMIG_STATE_PRE_COPY_P2P, VMIG_STATE_PRE_COPY)) {
		vmig_dma_release(mdev, true);
		vmig_shadow_hold(mdev, false);
		drop_early_stream(m);
		return NULL;
	}
	if (arc(cur, next, VFIO_DEVICE_STATE_RUNNING_P2P,
		VFIO_DEVICE_STATE_STOP) ||
	    arc(cur, next, VFIO_DEVICE_STATE_STOP,
		VFIO_DEVICE_STATE_RUNNING_P2P))
		return NULL;
	if (arc(cur, next, VFIO_DEVICE_STATE_RUNNING, VMIG_STATE_PRE_COPY) ||
	    arc(cur, next, VFIO_DEVICE_STATE_RUNNING_P2P,
		VMIG_STATE_PRE_COPY_P2P))
		return new_fd(vmig_migf_save_open(mdev, true), &m->saving);
	if (arc(cur, next, VMIG_STATE_PRE_COPY, VFIO_DEVICE_STATE_RUNNING) &&
	    mdev->mig.dma.held)	/* prepared: the kept starts go now */
		vmig_dma_release(mdev, true);
	if (arc(cur, next, VMIG_STATE_PRE_COPY, VFIO_DEVICE_STATE_RUNNING) ||
	    arc(cur, next, VMIG_STATE_PRE_COPY_P2P,
		VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    arc(cur, next, VFIO_DEVICE_STATE_STOP_COPY,
		VFIO_DEVICE_STATE_STOP)) {
		drop_fd(&m->saving);
		return NULL;
	}
	if (arc(cur, next, VMIG_STATE_PRE_COPY_P2P,
		VFIO_DEVICE_STATE_STOP_COPY)) {
		ret = vmig_migf_save_final(m->saving);
		return ret ? ERR_PTR(ret) : NULL;
	}
	if (arc(cur, next, VFIO_DEVICE_STATE_STOP,
		VFIO_DEVICE_STATE_STOP_COPY) &&
	    !VMIG_MIGRATION_PRE_COPY && m->saving) {
		/* without PRE_COPY, prepared: the rest of its stream */
		ret = vmig_migf_save_final(m->saving);
		if (ret)
			return ERR_PTR(ret);
		get_file(m->saving->filp);
		return m->saving->filp;
	}
	if (arc(cur, next, VFIO_DEVICE_STATE_STOP,
		VFIO_DEVICE_STATE_STOP_COPY)) {
		migf = vmig_migf_save_open(mdev, false);
		if (IS_ERR(migf))
			return ERR_CAST(migf);
		ret = vmig_migf_save_final(migf);
		if (ret) {
			vmig_migf_put(migf);	/* the only reference */
			return ERR_PTR(ret);
		}
		return new_fd(migf, &m->saving);
	}
	if (arc(cur, next, VFIO_DEVICE_STATE_STOP,
		VFIO_DEVICE_STATE_RESUMING)) {
		/* a shadow serves the guest: no state is taken over it */
		if (vmig_shadow_engaged(mdev))
			return ERR_PTR(-EBUSY);
		res = new_fd(vmig_migf_resume_open(mdev), &m->resuming);
		if (!IS_ERR(res))
			drop_early_stream(m);
		return res;
	}
	if (arc(cur, next, VFIO_DEVICE_STATE_RESUMING,
		VFIO_DEVICE_STATE_STOP)) {
		ret = vmig_migf_load(m->resuming);
		if (ret)
			return ERR_PTR(ret);
		drop_fd(&m->resuming);
		return NULL;
	}
	/* vfio_mig_get_next_state() only gives the arcs above */
	WARN_ON_ONCE(1);
	return ERR_PTR(-EINVAL);
}

/* Under state_mutex; the caller sends the state event. */
static struct file *set_state_locked(struct vmig_device *mdev,
				     enum vfio_device_mig_state new_state)
{
	struct vfio_device *vdev = &mdev->core.vdev;
	enum vfio_device_mig_state next;
	struct vmig_mig *m = &mdev->mig;
	struct file *res = NULL;
	int ret;

	lockdep_assert_held(&m->state_mutex);
	if (m->stay_stopped && new_state != VFIO_DEVICE_STATE_STOP)
		return ERR_PTR(-EPERM);
	/* without PRE_COPY: RUNNING asked of a prepared RUNNING releases it */
	if (!VMIG_MIGRATION_PRE_COPY && m->saving &&
	    new_state == VFIO_DEVICE_STATE_RUNNING &&
	    m->state == VFIO_DEVICE_STATE_RUNNING) {
		m->prepared = false;
		if (m->dma.held)	/* the kept starts go now */
			vmig_dma_release(mdev, true);
		drop_early_stream(m);
	}
	while (new_state != m->state) {
		ret = vfio_mig_get_next_state(vdev, m->state, new_state, &next);
		if (ret)
			return ERR_PTR(ret);
		res = step(mdev, next);
		if (IS_ERR(res))
			return res;
		m->state = next;
		if (WARN_ON(res && new_state != next)) {
			fput(res);
			return ERR_PTR(-EINVAL);
		}
	}
	return res;
}

struct file *vmig_mig_set_state(struct vmig_device *mdev,
				enum vfio_device_mig_state new_state)
{
	struct vmig_mig *m = &mdev->mig;
	enum vfio_device_mig_state old;
	struct file *res;

	if (!mig_offered(mdev))
		return ERR_PTR(-EOPNOTSUPP);
	state_lock(mdev);
	old = m->state;
	res = set_state_locked(mdev, new_state);
	if (m->state != old)
		vmig_nl_notify(mdev, VFIO_MIG_CMD_MIG_STATE_NTF);
	state_unlock(mdev);
	return res;
}

enum vfio_device_mig_state vmig_mig_get_state(struct vmig_device *mdev)
{
	enum vfio_device_mig_state state;

	state_lock(mdev);
	state = mdev->mig.state;
	state_unlock(mdev);
	return state;
}

void vmig_mig_rollback(struct vmig_device *mdev)
{
	struct vmig_mig *m = &mdev->mig;
	enum vfio_device_mig_state old;
	struct file *res;

	state_lock(mdev);
	old = m->state;
	/*
	 * The stream is applied on RESUMING -> STOP (vmig_migf_load()), but
	 * for the early state a profile loads as its record arrives (edu:
	 * its buffer, through its own transfer): dropping the fd aborts the
	 * resume, and leaves the device as STOP left it plus that early
	 * state, which no later stream can use (each early load forgets the
	 * last). Its writer then gets ENODEV.
	 */
	if (m->state == VFIO_DEVICE_STATE_RESUMING) {
		drop_fd(&m->resuming);
		m->state = VFIO_DEVICE_STATE_STOP;
	}
	if (m->state != VFIO_DEVICE_STATE_ERROR) {
		res = set_state_locked(mdev, VFIO_DEVICE_STATE_RUNNING);
		if (IS_ERR(res))
			pci_warn(mdev->core.pdev,
				 "migration rollback stopped in state %s: %ld\n",
				 vmig_mig_state_name(m->state), PTR_ERR(res));
	}
	if (m->state != old)
		vmig_nl_notify(mdev, VFIO_MIG_CMD_MIG_STATE_NTF);
	state_unlock(mdev);
}

/*
 * Without PRE_COPY (6.1) the saving stream opens here, in RUNNING: its
 * header and write log so far, as a PRE_COPY one begins; the arc into
 * STOP_COPY carries on with it. One still open (a stop whose DMA hold
 * failed left it, as PRE_COPY keeps its fd) is carried on with: true
 * when this call opened it.
 */
static int open_early_stream(struct vmig_device *mdev, bool *opened)
{
	struct vmig_migf *migf;

	*opened = false;
	if (VMIG_MIGRATION_PRE_COPY || mdev->mig.saving)
		return 0;
	migf = vmig_migf_save_open(mdev, true);
	if (IS_ERR(migf))
		return PTR_ERR(migf);
	mdev->mig.saving = migf;	/* the device's reference */
	*opened = true;
	return 0;
}

int vmig_mig_prepare(struct vmig_device *mdev, struct file **data)
{
	const struct vmig_profile_dev_ops *ops = mdev->profile->ops;
	enum vfio_device_mig_state want = VMIG_MIGRATION_PRE_COPY ?
		VMIG_STATE_PRE_COPY : VFIO_DEVICE_STATE_RUNNING;
	struct vmig_shadow_dev *sd = &mdev->shadow;
	struct vmig_mig *m = &mdev->mig;
	u32 len = vmig_profile_state_size(mdev->profile);
	bool opened = false;
	void *blob;
	int ret;

	*data = NULL;
	if (!ops || !ops->early_save || !len)
		return -EOPNOTSUPP;
	blob = kvzalloc(len, GFP_KERNEL);
	if (!blob)
		return -ENOMEM;
	state_lock(mdev);
	/* as a state change: trap mode none holds no DMA start */
	if (!mig_offered(mdev)) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (m->prepared) {
		ret = -EALREADY;
		goto out;
	}
	/* PRE_COPY has its saving fd; without PRE_COPY, this call opens it */
	if (m->state != want || (VMIG_MIGRATION_PRE_COPY && !m->saving)) {
		ret = -EINVAL;
		goto out;
	}
	if (vmig_shadow_engaged(mdev)) {
		ret = -EBUSY;
		goto out;
	}
	/*
	 * A stream kept through failed stops carries one early state per
	 * prepare, up to what a target takes: refused before anything is
	 * held or saved (the profile's save would name a state never sent).
	 */
	if (m->saving && !vmig_migf_early_room(m->saving)) {
		ret = -ENOSPC;
		goto out;
	}
	/*
	 * No config write of the VMM's (bus mastering, decoding, an FLR)
	 * lands between the profile's checks and the end of its save, as
	 * during a shadow's engage; and what the profile needs is there
	 * before the guest's DMA waits for it.
	 */
	down_write(&sd->move_lock);
	ret = ops->early_ready ? ops->early_ready(mdev, false) : 0;
	if (ret)
		goto out_move;
	/* the guest's transfer in flight did not end: DMA is released */
	if (vmig_dma_hold(mdev)) {
		ret = -EBUSY;
		goto out_move;
	}
	/*
	 * A trapped read of the engine that began before the hold may not
	 * have seen it: let it end before the profile's own transfer.
	 */
	percpu_down_write(&sd->sem);
	percpu_up_write(&sd->sem);
	ret = open_early_stream(mdev, &opened);
	if (!ret)
		ret = ops->early_save(mdev, blob, &len);
	if (!ret)
		ret = vmig_migf_queue_early(m->saving, blob, len);
	if (!ret) {
		m->prepared = true;
		if (!VMIG_MIGRATION_PRE_COPY) {
			get_file(m->saving->filp);
			*data = m->saving->filp;
		}
	} else if (ret == -ETIMEDOUT) {
		/*
		 * The device may still run the profile's transfer: a kept
		 * start would meet it and be lost. DMA stays held as if
		 * prepared (a second prepare gets EALREADY, a shadow is not
		 * engaged over it); leaving PRE_COPY ends the hold (the stop
		 * carries the kept starts, a return to RUNNING issues them
		 * once the engine reads idle).
		 */
		m->prepared = true;
		pci_warn(mdev->core.pdev,
			 "early device state not saved: the device is busy; DMA stays held until the device leaves %s\n",
			 vmig_mig_state_name(want));
	} else {
		/* the guest's kept starts go now, as on the way back */
		vmig_dma_release(mdev, true);
		if (opened)
			drop_fd(&m->saving);
	}
out_move:
	up_write(&sd->move_lock);
out:
	state_unlock(mdev);
	kvfree(blob);
	return ret;
}

int vmig_mig_commit_stopped(struct vmig_device *mdev)
{
	struct vmig_mig *m = &mdev->mig;
	int ret = 0;

	state_lock(mdev);
	if (m->state == VFIO_DEVICE_STATE_STOP)
		m->stay_stopped = true;
	else
		ret = -EINVAL;
	state_unlock(mdev);
	return ret;
}

bool vmig_mig_stay_stopped(struct vmig_device *mdev)
{
	bool ret;

	state_lock(mdev);
	ret = mdev->mig.stay_stopped;
	state_unlock(mdev);
	return ret;
}

static struct file *vmig_set_state(struct vfio_device *vdev,
				   enum vfio_device_mig_state new_state)
{
	return vmig_mig_set_state(to_vmig(vdev), new_state);
}

static int vmig_get_state(struct vfio_device *vdev,
			  enum vfio_device_mig_state *state)
{
	*state = vmig_mig_get_state(to_vmig(vdev));
	return 0;
}

static int vmig_get_data_size(struct vfio_device *vdev, unsigned long *len)
{
	struct vmig_device *mdev = to_vmig(vdev);

	state_lock(mdev);
	*len = vmig_migf_stop_copy_estimate(mdev, mdev->mig.saving);
	state_unlock(mdev);
	return 0;
}

/*
 * The device_feature op: vfio-pci's features, and MIG_DATA_SIZE on
 * kernels whose core does not answer it (compat.h).
 */
int vmig_device_feature(struct vfio_device *vdev, u32 flags,
			void __user *arg, size_t argsz)
{
	struct vfio_device_feature_mig_data_size size = {};
	unsigned long len;
	int ret;

	if (VMIG_CORE_DATA_SIZE || (flags & VFIO_DEVICE_FEATURE_MASK) !=
				   VFIO_DEVICE_FEATURE_MIG_DATA_SIZE)
		return vfio_pci_core_ioctl_feature(vdev, flags, arg, argsz);
	if (!mig_offered(to_vmig(vdev)))
		return -ENOTTY;
	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET,
				 sizeof(size));
	if (ret != 1)
		return ret;
	ret = vmig_get_data_size(vdev, &len);
	if (ret)
		return ret;
	size.stop_copy_length = len;
	return copy_to_user(arg, &size, sizeof(size)) ? -EFAULT : 0;
}

const struct vfio_migration_ops vmig_mig_ops = {
	.migration_set_state = vmig_set_state,
	.migration_get_state = vmig_get_state,
	VMIG_MIG_OPS_DATA_SIZE(vmig_get_data_size)
};
