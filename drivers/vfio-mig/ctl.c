// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the migration control device, /dev/vfio-mig
 * (include/uapi/linux/vfio_mig_ctl.h, Documentation/live-migration.rst).
 *
 * A controller that is not the VMM (migctl) attaches an fd to a device
 * that a VMM has open, drives its VFIO migration state through the same
 * code as the VMM's VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE (lm.c), and reads
 * and writes guest pages by IOVA through the device's IOMMU mapping.
 *
 * Lifetime: the fd holds a reference on the device's vfio_device from
 * ATTACH to release, so the vmig_device stays in memory even after the
 * device is unbound; the attachment itself lives only while the VMM has
 * the device open. close_device ends it (vmig_ctl_detach()) under the
 * device's ctl.rwsem held for write, which waits for the ioctls in flight
 * (they hold it for read); every later ioctl fails with ENODEV. Releasing
 * an attached fd that did not commit rolls the device back to RUNNING and,
 * if it announced a phase, announces "abort" (ctl.h has the lock rules).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <uapi/linux/vfio_mig.h>
#include <uapi/linux/vfio_mig_ctl.h>

#include "vfio_mig.h"

#define CTL_PAGE_SIZE	SZ_4K

void vmig_ctl_dev_init(struct vmig_device *mdev)
{
	init_rwsem(&mdev->ctl.rwsem);
	mutex_init(&mdev->ctl.phase_lock);
}

void vmig_ctl_detach(struct vmig_device *mdev)
{
	down_write(&mdev->ctl.rwsem);
	mdev->ctl.ctl = NULL;
	up_write(&mdev->ctl.rwsem);
}

static int ctl_open(struct inode *inode, struct file *filp)
{
	struct vmig_ctl *c;

	/* an attached fd reads and writes the VM's memory */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	mutex_init(&c->attach_lock);
	filp->private_data = c;
	return nonseekable_open(inode, filp);
}

static int ctl_release(struct inode *inode, struct file *filp)
{
	struct vmig_ctl *c = filp->private_data;
	struct vmig_device *mdev = c->mdev;	/* no ioctl runs any more */
	bool alive;

	if (mdev) {
		down_write(&mdev->ctl.rwsem);
		alive = mdev->ctl.ctl == c;
		if (alive && !c->committed)
			vmig_mig_rollback(mdev);
		if (alive)
			mdev->ctl.ctl = NULL;
		/*
		 * The VMM was told a phase and the migration did not reach
		 * its commit point here: it must resume (or discard). Not
		 * after the VMM closed the device and another controller
		 * took it: that one's VMM has nothing to abort.
		 */
		if (!c->committed && (alive || !mdev->ctl.ctl) &&
		    c->last_phase && c->last_phase != VFIO_MIG_MIG_PHASE_ABORT)
			vmig_phase_announce(mdev, NULL, c->bdf,
					    VFIO_MIG_MIG_PHASE_ABORT);
		up_write(&mdev->ctl.rwsem);
		vfio_put_device(&mdev->core.vdev);
	}
	mutex_destroy(&c->attach_lock);
	kfree(c);
	return 0;
}

/* Is @c still attached to its device? */
static bool ctl_alive(struct vmig_ctl *c, struct vmig_device *mdev)
{
	bool alive;

	down_read(&mdev->ctl.rwsem);
	alive = mdev->ctl.ctl == c;
	up_read(&mdev->ctl.rwsem);
	return alive;
}

static long ctl_attach(struct vmig_ctl *c, void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_attach, bdf);
	struct vfio_mig_ctl_attach at;
	struct vmig_device *mdev;
	long ret;

	if (copy_from_user(&at, uarg, minsz))
		return -EFAULT;
	if (at.argsz < minsz || at.flags ||
	    strnlen(at.bdf, sizeof(at.bdf)) == sizeof(at.bdf))
		return -EINVAL;

	mutex_lock(&c->attach_lock);
	if (c->mdev) {
		ret = ctl_alive(c, c->mdev) ? -EALREADY : -ENODEV;
		goto out;
	}
	mutex_lock(&vmig_devices_lock);
	mdev = vmig_find_locked(at.bdf);
	/* keeps the vmig_device in memory until release, bound or not */
	if (mdev)
		get_device(&mdev->core.vdev.device);
	mutex_unlock(&vmig_devices_lock);
	if (!mdev) {
		ret = -ENODEV;
		goto out;
	}

	down_write(&mdev->ctl.rwsem);
	/*
	 * close_device clears @open before it detaches under this lock: a
	 * device seen open here is detached by its close_device later.
	 */
	if (!READ_ONCE(mdev->open)) {
		ret = -ENOTCONN;
	} else if (mdev->ctl.ctl) {
		ret = -EBUSY;
	} else {
		strscpy(c->bdf, at.bdf, sizeof(c->bdf));
		mdev->ctl.ctl = c;
		/* pairs with ctl_ioctl(): @bdf is set before @mdev is seen */
		smp_store_release(&c->mdev, mdev);
		ret = 0;
	}
	up_write(&mdev->ctl.rwsem);
	if (ret)
		vfio_put_device(&mdev->core.vdev);
out:
	mutex_unlock(&c->attach_lock);
	return ret;
}

/* Under ctl.rwsem held for read, attached. */
static long ctl_state(struct vmig_device *mdev, void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_state, data_fd);
	struct vfio_mig_ctl_state st;
	struct file *filp;
	int fd;

	if (copy_from_user(&st, uarg, minsz))
		return -EFAULT;
	if (st.argsz < minsz || st.flags & ~VFIO_MIG_CTL_STATE_SET)
		return -EINVAL;
	st.data_fd = -1;
	if (!(st.flags & VFIO_MIG_CTL_STATE_SET)) {
		st.device_state = vmig_mig_get_state(mdev);
		return copy_to_user(uarg, &st, minsz) ? -EFAULT : 0;
	}

	filp = vmig_mig_set_state(mdev, st.device_state);
	if (IS_ERR(filp))
		return PTR_ERR(filp);
	if (!filp)
		return copy_to_user(uarg, &st, minsz) ? -EFAULT : 0;
	/* as the VFIO feature: the state has changed, the fd may fail */
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		fput(filp);
		return fd;
	}
	st.data_fd = fd;
	if (copy_to_user(uarg, &st, minsz)) {
		put_unused_fd(fd);
		fput(filp);
		return -EFAULT;
	}
	fd_install(fd, filp);
	return 0;
}

/**
 * struct ctl_pages - one VFIO_MIG_CTL_PAGES call, as its worker sees it
 * @mdev: the device (attached: the VMM keeps it open meanwhile)
 * @iovas: page-aligned IOVAs, @count of them
 * @buf: bounce buffer, @count pages
 * @count: pages to move
 * @done: pages moved so far
 * @write: into guest memory (else out of it)
 */
struct ctl_pages {
	struct vmig_device *mdev;
	const u64 *iovas;
	u8 *buf;
	u32 count;
	u32 done;
	bool write;
};

/* How many pages from @p->done on are contiguous in IOVA. */
static u32 ctl_pages_run(const struct ctl_pages *p)
{
	u64 first = p->iovas[p->done];
	u32 n = 1;

	while (p->done + n < p->count &&
	       p->iovas[p->done + n] == first + (u64)n * CTL_PAGE_SIZE)
		n++;
	return n;
}

static int ctl_pages_one(struct ctl_pages *p, u32 i, u32 n)
{
	int ret = vfio_dma_rw(&p->mdev->core.vdev, p->iovas[i],
			      p->buf + (size_t)i * CTL_PAGE_SIZE,
			      (size_t)n * CTL_PAGE_SIZE, p->write);

	/* type1 says EINVAL for an IOVA it has no mapping for */
	return ret == -EINVAL ? -EFAULT : ret;
}

/*
 * In a kernel worker: vfio_dma_rw() borrows the mm that mapped the IOVA
 * (the VMM's), which only a thread without an mm of its own may do. Each
 * run of contiguous IOVAs is one call (one borrowing of the mm); a run
 * that fails is redone page by page, so that @done is exact.
 */
static int ctl_pages_rw(void *arg)
{
	struct ctl_pages *p = arg;
	u32 n;
	int ret;

	while (p->done < p->count) {
		n = ctl_pages_run(p);
		if (!ctl_pages_one(p, p->done, n)) {
			p->done += n;
			continue;
		}
		for (; n; n--, p->done++) {
			ret = ctl_pages_one(p, p->done, 1);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Under ctl.rwsem held for read, attached. */
static long ctl_pages(struct vmig_device *mdev, void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_pages, data);
	struct vfio_mig_ctl_pages __user *up = uarg;
	struct vfio_mig_ctl_pages pg;
	struct ctl_pages p = { .mdev = mdev };
	void __user *data;
	u64 *iovas;
	size_t len;
	long ret;
	u32 i;

	if (copy_from_user(&pg, uarg, minsz))
		return -EFAULT;
	if (pg.argsz < minsz || pg.flags & ~VFIO_MIG_CTL_PAGES_WRITE ||
	    pg.page_size != CTL_PAGE_SIZE)
		return -EINVAL;
	if (pg.count > VFIO_MIG_CTL_PAGES_MAX)
		return -E2BIG;
	if (!pg.count)
		return 0;

	iovas = memdup_user(u64_to_user_ptr(pg.iovas),
			    pg.count * sizeof(*iovas));
	if (IS_ERR(iovas))
		return PTR_ERR(iovas);
	/* nothing is moved if any IOVA is misaligned */
	for (i = 0; i < pg.count; i++) {
		if (!IS_ALIGNED(iovas[i], CTL_PAGE_SIZE)) {
			ret = -EINVAL;
			goto out_count;
		}
	}
	len = (size_t)pg.count * CTL_PAGE_SIZE;	/* at most 1 MiB */
	p.buf = kvmalloc(len, GFP_KERNEL);
	if (!p.buf) {
		ret = -ENOMEM;
		goto out_count;
	}
	p.iovas = iovas;
	p.count = pg.count;
	p.write = pg.flags & VFIO_MIG_CTL_PAGES_WRITE;
	data = u64_to_user_ptr(pg.data);

	if (p.write && copy_from_user(p.buf, data, len)) {
		ret = -EFAULT;
		goto out_free;
	}
	ret = vmig_run_in_worker(ctl_pages_rw, &p);
	if (!p.write &&
	    copy_to_user(data, p.buf, (size_t)p.done * CTL_PAGE_SIZE)) {
		p.done = 0;
		ret = -EFAULT;
	}
out_free:
	kvfree(p.buf);
out_count:
	kfree(iovas);
	if (ret && put_user(p.done, &up->count))
		ret = -EFAULT;
	return ret;
}

static long ctl_commit(struct vmig_ctl *c, struct vmig_device *mdev,
		       void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_commit, flags);
	struct vfio_mig_ctl_commit cm;
	long ret = 0;

	if (copy_from_user(&cm, uarg, minsz))
		return -EFAULT;
	if (cm.argsz < minsz || cm.flags & ~VFIO_MIG_CTL_COMMIT_STOPPED)
		return -EINVAL;

	down_write(&mdev->ctl.rwsem);
	if (mdev->ctl.ctl != c)
		ret = -ENODEV;
	else if (cm.flags & VFIO_MIG_CTL_COMMIT_STOPPED)
		ret = vmig_mig_commit_stopped(mdev);
	if (!ret)
		c->committed = true;
	up_write(&mdev->ctl.rwsem);
	return ret;
}

static long ctl_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct vmig_ctl *c = filp->private_data;
	void __user *uarg = (void __user *)arg;
	struct vmig_device *mdev;
	long ret;

	switch (cmd) {
	case VFIO_MIG_CTL_ATTACH:
		return ctl_attach(c, uarg);
	case VFIO_MIG_CTL_STATE:
	case VFIO_MIG_CTL_PAGES:
	case VFIO_MIG_CTL_COMMIT:
		break;
	default:
		return -ENOTTY;
	}
	/* pairs with ctl_attach(); set once, kept until release */
	mdev = smp_load_acquire(&c->mdev);
	if (!mdev)
		return -ENOTCONN;
	if (cmd == VFIO_MIG_CTL_COMMIT)
		return ctl_commit(c, mdev, uarg);

	down_read(&mdev->ctl.rwsem);
	if (mdev->ctl.ctl != c)
		ret = -ENODEV;
	else if (cmd == VFIO_MIG_CTL_STATE)
		ret = ctl_state(mdev, uarg);
	else
		ret = ctl_pages(mdev, uarg);
	up_read(&mdev->ctl.rwsem);
	return ret;
}

static const struct file_operations ctl_fops = {
	.owner		= THIS_MODULE,
	.open		= ctl_open,
	.release	= ctl_release,
	.unlocked_ioctl	= ctl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice ctl_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "vfio-mig",
	.fops	= &ctl_fops,
	.mode	= 0600,
};

int vmig_ctl_init(void)
{
	return misc_register(&ctl_misc);
}

void vmig_ctl_exit(void)
{
	misc_deregister(&ctl_misc);
}
