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
 * an attached fd that moved the device and did not commit rolls the device
 * back to RUNNING and, if it announced a phase, announces "abort" (ctl.h
 * has the lock rules).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <vfio-mig/compat.h>
#include <uapi/linux/vfio_mig.h>
#include <uapi/linux/vfio_mig_ctl.h>

#include "ctl.h"
#include "lm.h"
#include "profile.h"
#include "shadow.h"
#include "stage.h"
#include "vfio_mig.h"

#define CTL_PAGE_SIZE	SZ_4K

/**
 * struct ctl_file - an open /dev/vfio-mig: its &struct vmig_ctl and what
 *	VFIO_MIG_CTL_PAGES keeps from one call to the next
 * @c: the control fd (ctl.h)
 * @pages_lock: serialises the VFIO_MIG_CTL_PAGES calls on this fd and
 *	protects @iovas, @pages and @bounce. Taken before the device's
 *	ctl.rwsem (the order: @pages_lock, then ctl.rwsem), which a call
 *	holds for read only while it uses the device: the caller's memory is
 *	read and pinned before, and written and unpinned after, so a caller
 *	whose memory faults for ever (userfaultfd) holds up its own fd, never
 *	the VMM's close. Under it: ctl.rwsem, ctl.phase_lock
 *	(vmig_ram_contains()), the allocations and page pinning of the call
 *	and the IOMMU type1 locks of vfio_dma_rw() (in a worker that the call
 *	waits for)
 * @iovas: a call's IOVAs, VFIO_MIG_CTL_PAGES_MAX of them; allocated by
 *	the first call, freed at release
 * @pages: the caller's buffer pages a call pinned, VFIO_MIG_CTL_PAGES_MAX
 *	of them; allocated with @iovas
 * @bounce: VFIO_MIG_CTL_PAGES_MAX pages of kernel memory, for the calls
 *	that cannot copy straight between the guest and the caller's pages;
 *	allocated by the first call that needs it (in the ioctl or in its
 *	worker, which runs while the ioctl waits with @pages_lock held),
 *	freed at release
 *
 * One allocation of each per fd, of a fixed size: nothing is allocated
 * per call.
 */
struct ctl_file {
	struct vmig_ctl c;
	struct mutex pages_lock;	/* see above */
	u64 *iovas;
	struct page **pages;
	u8 *bounce;
};

static struct ctl_file *ctl_file(struct vmig_ctl *c)
{
	return container_of(c, struct ctl_file, c);
}

static void ctl_file_free(struct ctl_file *cf)
{
	mutex_destroy(&cf->pages_lock);
	kvfree(cf->bounce);
	kfree(cf->pages);
	kfree(cf->iovas);
	kfree(cf);
}

void vmig_ctl_dev_init(struct vmig_device *mdev)
{
	init_rwsem(&mdev->ctl.rwsem);
	mutex_init(&mdev->ctl.phase_lock);
}

void vmig_ctl_detach(struct vmig_device *mdev)
{
	down_write(&mdev->ctl.rwsem);
	mdev->ctl.ctl = NULL;
	vmig_ram_forget(mdev);
	up_write(&mdev->ctl.rwsem);
}

static int ctl_open(struct inode *inode, struct file *filp)
{
	struct ctl_file *cf;

	/* an attached fd reads and writes the VM's memory */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	cf = kzalloc(sizeof(*cf), GFP_KERNEL);
	if (!cf)
		return -ENOMEM;
	mutex_init(&cf->c.attach_lock);
	mutex_init(&cf->pages_lock);
	filp->private_data = &cf->c;
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
		if (alive && c->moved && !c->committed)
			vmig_mig_rollback(mdev);
		if (alive) {
			mdev->ctl.ctl = NULL;
			vmig_ram_forget(mdev);
		}
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
		/* a shadow this controller engaged goes with its migration */
		vmig_shadow_ctl_gone(mdev, c, alive && !c->committed);
		up_write(&mdev->ctl.rwsem);
		vfio_put_device(&mdev->core.vdev);
	}
	mutex_destroy(&c->attach_lock);
	ctl_file_free(ctl_file(c));
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

/*
 * Give the data fd @filp of a state change or a prepare to the caller: in
 * fd @fd (reserved already, or -1: one is reserved here), written to
 * *@data_fd, a field of @st_out, whose first @len bytes go to @uarg. The
 * device has moved; the fd may fail, as with VFIO's state feature (@filp
 * is then dropped). Outside ctl.rwsem (the caller's memory). 0 or -errno.
 */
static int ctl_give_fd(struct file *filp, void __user *uarg, void *st_out,
		       size_t len, s32 *data_fd, int fd)
{
	if (fd < 0)
		fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		fput(filp);
		return fd;
	}
	*data_fd = fd;
	if (copy_to_user(uarg, st_out, len)) {
		put_unused_fd(fd);
		fput(filp);
		return -EFAULT;
	}
	fd_install(fd, filp);
	return 0;
}

/*
 * Not under ctl.rwsem: it is held only while the device is used, not
 * while the caller's memory is (ctl.h).
 */
static long ctl_state(struct vmig_ctl *c, struct vmig_device *mdev,
		      void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_state, data_fd);
	enum vfio_device_mig_state before;
	struct vfio_mig_ctl_state st;
	struct file *filp = NULL;
	long ret = 0;

	if (copy_from_user(&st, uarg, minsz))
		return -EFAULT;
	if (st.argsz < minsz || st.flags & ~VFIO_MIG_CTL_STATE_SET)
		return -EINVAL;
	st.data_fd = -1;

	down_read(&mdev->ctl.rwsem);
	if (mdev->ctl.ctl != c) {
		ret = -ENODEV;
	} else if (!(st.flags & VFIO_MIG_CTL_STATE_SET)) {
		st.device_state = vmig_mig_get_state(mdev);
	} else {
		before = vmig_mig_get_state(mdev);
		filp = vmig_mig_set_state(mdev, st.device_state);
		/* a failed arc on the way may have moved it all the same */
		if (!IS_ERR(filp) || vmig_mig_get_state(mdev) != before)
			WRITE_ONCE(c->moved, true);
		if (IS_ERR(filp)) {
			ret = PTR_ERR(filp);
			filp = NULL;
		}
	}
	up_read(&mdev->ctl.rwsem);
	if (ret)
		return ret;
	if (!filp)
		return copy_to_user(uarg, &st, minsz) ? -EFAULT : 0;
	return ctl_give_fd(filp, uarg, &st, minsz, &st.data_fd, -1);
}

/**
 * struct ctl_pages - one VFIO_MIG_CTL_PAGES call, as its worker sees it
 * @mdev: the device (attached: the VMM keeps it open meanwhile)
 * @cf: the fd, its @pages_lock held by the call
 * @iovas: page-aligned IOVAs, @count of them
 * @pages: the caller's buffer, @count pinned pages (one per IOVA), or NULL:
 *	then @bounce holds the data, copied from and to the caller's buffer
 *	in the ioctl's context (a buffer that is not page aligned, or that
 *	could not be pinned)
 * @bounce: @cf's bounce buffer, or NULL while it has none
 * @count: pages to move
 * @done: pages moved so far
 * @write: into guest memory (else out of it)
 */
struct ctl_pages {
	struct vmig_device *mdev;
	struct ctl_file *cf;
	const u64 *iovas;
	struct page **pages;
	u8 *bounce;
	u32 count;
	u32 done;
	bool write;
};

/*
 * Each vfio_dma_rw() borrows the VMM's mm: a run of IOVAs whose pinned
 * pages are this scattered (fewer pages per piece contiguous in memory on
 * average) goes through the bounce buffer in one call instead.
 */
#define CTL_DIRECT_MIN	16

/* How many pages from @i on are contiguous in IOVA. */
static u32 ctl_pages_run(const struct ctl_pages *p, u32 i)
{
	u64 first = p->iovas[i];
	u32 n = 1;

	while (i + n < p->count &&
	       p->iovas[i + n] == first + (u64)n * CTL_PAGE_SIZE)
		n++;
	return n;
}

/* How many of the @n pinned pages from @i on are contiguous in memory. */
static u32 ctl_pages_contig(const struct ctl_pages *p, u32 i, u32 n)
{
	u8 *first = page_address(p->pages[i]);
	u32 k = 1;

	while (k < n &&
	       page_address(p->pages[i + k]) == first + (size_t)k * PAGE_SIZE)
		k++;
	return k;
}

/* One vfio_dma_rw() of @n pages from IOVA @p->iovas[@i], to or from @buf. */
static int ctl_dma_rw(struct ctl_pages *p, u32 i, u32 n, void *buf)
{
	int ret = vfio_dma_rw(&p->mdev->core.vdev, p->iovas[i], buf,
			      (size_t)n * CTL_PAGE_SIZE, p->write);

	/* type1 says EINVAL for an IOVA it has no mapping for */
	return ret == -EINVAL ? -EFAULT : ret;
}

/* Straight between the guest and the @n pinned pages from @i on. */
static int ctl_pages_direct(struct ctl_pages *p, u32 i, u32 n)
{
	u32 k, m;
	int ret;

	for (k = 0; k < n; k += m) {
		m = ctl_pages_contig(p, i + k, n - k);
		ret = ctl_dma_rw(p, i + k, m, page_address(p->pages[i + k]));
		if (ret)
			return ret;
	}
	return 0;
}

/* Through the bounce buffer, to or from the @n pinned pages from @i on. */
static int ctl_pages_bounced(struct ctl_pages *p, u32 i, u32 n)
{
	u8 *buf = p->bounce + (size_t)i * CTL_PAGE_SIZE;
	u32 k;
	int ret;

	for (k = 0; p->write && k < n; k++)
		memcpy(buf + (size_t)k * CTL_PAGE_SIZE,
		       page_address(p->pages[i + k]), CTL_PAGE_SIZE);
	ret = ctl_dma_rw(p, i, n, buf);
	for (k = 0; !ret && !p->write && k < n; k++)
		memcpy(page_address(p->pages[i + k]),
		       buf + (size_t)k * CTL_PAGE_SIZE, CTL_PAGE_SIZE);
	return ret;
}

/* Pages @i to @i + @n - 1, contiguous in IOVA. */
static int ctl_pages_span(struct ctl_pages *p, u32 i, u32 n)
{
	u32 k, pieces = 0;

	if (!p->pages)
		return ctl_dma_rw(p, i, n, p->bounce + (size_t)i * CTL_PAGE_SIZE);
	for (k = 0; k < n; k += ctl_pages_contig(p, i + k, n - k))
		pieces++;
	if (pieces == 1 || n / pieces >= CTL_DIRECT_MIN)
		return ctl_pages_direct(p, i, n);
	if (!p->bounce) {
		/* the fd's first scattered run; without one: direct it is */
		p->cf->bounce = kvmalloc(VFIO_MIG_CTL_PAGES_MAX * CTL_PAGE_SIZE,
					 GFP_KERNEL);
		p->bounce = p->cf->bounce;
		if (!p->bounce)
			return ctl_pages_direct(p, i, n);
	}
	return ctl_pages_bounced(p, i, n);
}

/*
 * In a kernel worker: vfio_dma_rw() borrows the mm that mapped the IOVA
 * (the VMM's), which only a thread without an mm of its own may do. Each
 * run of contiguous IOVAs is done at once; a run that fails is redone page
 * by page, so that @done is exact.
 */
static int ctl_pages_rw(void *arg)
{
	struct ctl_pages *p = arg;
	u32 n;
	int ret;

	while (p->done < p->count) {
		n = ctl_pages_run(p, p->done);
		if (!ctl_pages_span(p, p->done, n)) {
			p->done += n;
			continue;
		}
		for (; n; n--, p->done++) {
			ret = ctl_pages_span(p, p->done, 1);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/*
 * Pin the caller's buffer, one page per guest page, so that the worker
 * copies straight between the guest's pages and the caller's through the
 * direct map: a page-aligned buffer of ordinary memory only. 0 or -errno
 * (then the call goes through the bounce buffer).
 */
static int ctl_pin(struct ctl_pages *p, unsigned long data)
{
	struct page **pages = p->cf->pages;
	int ret;

	if (IS_ENABLED(CONFIG_HIGHMEM) || PAGE_SIZE != CTL_PAGE_SIZE ||
	    !PAGE_ALIGNED(data))
		return -EINVAL;
	/* reading guest pages writes the caller's */
	ret = pin_user_pages_fast(data, p->count, p->write ? 0 : FOLL_WRITE,
				  pages);
	if (ret == p->count) {
		p->pages = pages;
		return 0;
	}
	if (ret > 0)
		unpin_user_pages(pages, ret);
	return ret < 0 ? ret : -EFAULT;
}

/*
 * Under @cf->pages_lock, without the device's ctl.rwsem: everything that
 * touches the caller's memory (which may fault for as long as the caller
 * likes: userfaultfd) happens here, before and after the device is used,
 * so that the VMM's close never waits for it. 0 or -errno.
 */
static long ctl_pages_user_in(struct ctl_file *cf, struct ctl_pages *p,
			      const struct vfio_mig_ctl_pages *pg)
{
	void __user *data = u64_to_user_ptr(pg->data);
	u32 i;

	lockdep_assert_held(&cf->pages_lock);
	if (!cf->iovas) {
		cf->iovas = kmalloc_array(VFIO_MIG_CTL_PAGES_MAX,
					  sizeof(*cf->iovas), GFP_KERNEL);
		cf->pages = kmalloc_array(VFIO_MIG_CTL_PAGES_MAX,
					  sizeof(*cf->pages), GFP_KERNEL);
		if (!cf->iovas || !cf->pages) {
			kfree(cf->iovas);
			kfree(cf->pages);
			cf->iovas = NULL;
			cf->pages = NULL;
			return -ENOMEM;
		}
	}
	if (copy_from_user(cf->iovas, u64_to_user_ptr(pg->iovas),
			   pg->count * sizeof(*cf->iovas)))
		return -EFAULT;
	/* nothing is moved if any IOVA is misaligned */
	for (i = 0; i < pg->count; i++)
		if (!IS_ALIGNED(cf->iovas[i], CTL_PAGE_SIZE))
			return -EINVAL;
	p->iovas = cf->iovas;
	p->bounce = cf->bounce;
	if (!ctl_pin(p, pg->data))
		return 0;
	if (!cf->bounce)
		cf->bounce = kvmalloc(VFIO_MIG_CTL_PAGES_MAX * CTL_PAGE_SIZE,
				      GFP_KERNEL);
	p->bounce = cf->bounce;
	if (!p->bounce)
		return -ENOMEM;
	if (p->write && copy_from_user(p->bounce, data,
				       (size_t)p->count * CTL_PAGE_SIZE))
		return -EFAULT;
	return 0;
}

/* Under @cf->pages_lock: the pages back to the caller, or unpinned. */
static long ctl_pages_user_out(struct ctl_pages *p,
			       const struct vfio_mig_ctl_pages *pg, u32 *done)
{
	u32 i;

	if (p->pages) {
		for (i = 0; !p->write && i < p->done; i++)
			flush_dcache_page(p->pages[i]);
		unpin_user_pages_dirty_lock(p->pages, p->count, !p->write);
		return 0;
	}
	if (!p->write && p->done &&
	    copy_to_user(u64_to_user_ptr(pg->data), p->bounce,
			 (size_t)p->done * CTL_PAGE_SIZE)) {
		*done = 0;
		return -EFAULT;
	}
	return 0;
}

/* Under ctl.rwsem held for read, attached, and @p's fd's pages_lock. */
static long ctl_pages_device(struct vmig_device *mdev, struct ctl_pages *p)
{
	u64 bad;

	lockdep_assert_held(&mdev->ctl.rwsem);
	if (vmig_iommufd_bound(&mdev->core.vdev)) {
		/* vfio_dma_rw() would say EINVAL: not a missing mapping */
		dev_warn_ratelimited(&mdev->core.pdev->dev,
				     "guest pages cannot be reached: the device is bound through iommufd, vfio-mig needs a type1 container\n");
		return -EOPNOTSUPP;
	}
	/* nothing is moved outside the RAM the VMM named, once it did */
	if (p->write && !vmig_ram_contains(mdev, p->iovas, p->count, &bad)) {
		dev_warn_ratelimited(&mdev->core.pdev->dev,
				     "page write at IOVA %#llx refused: outside the RAM the VMM named\n",
				     bad);
		return -EACCES;
	}
	return vmig_run_in_worker(ctl_pages_rw, p);
}

/*
 * Not under ctl.rwsem: it is taken only around the device's part, after
 * the caller's memory is read and pinned, and dropped before the results
 * go back; see ctl_pages_user_in().
 */
static long ctl_pages(struct ctl_file *cf, struct vmig_device *mdev,
		      void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_pages, data);
	struct vfio_mig_ctl_pages __user *up = uarg;
	struct vfio_mig_ctl_pages pg;
	struct ctl_pages p = { .mdev = mdev, .cf = cf };
	u32 done = 0;
	long ret, out;

	if (copy_from_user(&pg, uarg, minsz))
		return -EFAULT;
	if (pg.argsz < minsz || pg.flags & ~VFIO_MIG_CTL_PAGES_WRITE ||
	    pg.page_size != CTL_PAGE_SIZE)
		return -EINVAL;
	if (pg.count > VFIO_MIG_CTL_PAGES_MAX)
		return -E2BIG;
	if (!pg.count)
		return 0;
	p.count = pg.count;
	p.write = pg.flags & VFIO_MIG_CTL_PAGES_WRITE;

	mutex_lock(&cf->pages_lock);
	ret = ctl_pages_user_in(cf, &p, &pg);
	if (!ret) {
		down_read(&mdev->ctl.rwsem);
		if (mdev->ctl.ctl != &cf->c)
			ret = -ENODEV;
		else
			ret = ctl_pages_device(mdev, &p);
		up_read(&mdev->ctl.rwsem);
		done = p.done;
		out = ctl_pages_user_out(&p, &pg, &done);
		ret = ret ? ret : out;
	}
	mutex_unlock(&cf->pages_lock);
	if (ret && put_user(done, &up->count))
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

/* Not under ctl.rwsem, as ctl_state(). */
static long ctl_prepare(struct vmig_ctl *c, struct vmig_device *mdev,
			void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_prepare, flags);
	unsigned long fdsz = offsetofend(struct vfio_mig_ctl_prepare, data_fd);
	struct vfio_mig_ctl_prepare pr = {};
	struct file *filp = NULL;
	int fd = -1, ret;

	if (copy_from_user(&pr, uarg, minsz))
		return -EFAULT;
	if (pr.argsz < minsz || pr.flags)
		return -EINVAL;
	/*
	 * Without PRE_COPY the call gives the stream's fd: a caller with no
	 * room for it cannot use the call; its fd is reserved first, so that
	 * a prepared device comes with its fd.
	 */
	if (!VMIG_MIGRATION_PRE_COPY) {
		if (pr.argsz < fdsz)
			return -EOPNOTSUPP;
		fd = get_unused_fd_flags(O_CLOEXEC);
		if (fd < 0)
			return fd;
	}
	down_read(&mdev->ctl.rwsem);
	if (mdev->ctl.ctl != c) {
		ret = -ENODEV;
	} else {
		ret = vmig_mig_prepare(mdev, &filp);
		/* ETIMEDOUT leaves DMA held: for the rollback to release */
		if (!ret || ret == -ETIMEDOUT)
			WRITE_ONCE(c->moved, true);
	}
	up_read(&mdev->ctl.rwsem);
	if (ret || !filp) {
		if (fd >= 0)
			put_unused_fd(fd);
		if (ret || pr.argsz < fdsz)
			return ret;
		pr.data_fd = -1;
		return copy_to_user(uarg, &pr, fdsz) ? -EFAULT : 0;
	}
	/* as VFIO_MIG_CTL_STATE: prepared, the fd may fail */
	return ctl_give_fd(filp, uarg, &pr, fdsz, &pr.data_fd, fd);
}

static long ctl_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct vmig_ctl *c = filp->private_data;
	void __user *uarg = (void __user *)arg;
	struct vmig_device *mdev;

	switch (cmd) {
	case VFIO_MIG_CTL_ATTACH:
		return ctl_attach(c, uarg);
	case VFIO_MIG_CTL_STATE:
	case VFIO_MIG_CTL_PAGES:
	case VFIO_MIG_CTL_COMMIT:
	case VFIO_MIG_CTL_PREPARE:
	case VFIO_MIG_CTL_STAGE_FD:
		break;
	default:
		return -ENOTTY;
	}
	/* pairs with ctl_attach(); set once, kept until release */
	mdev = smp_load_acquire(&c->mdev);
	if (!mdev)
		return -ENOTCONN;
	/* each takes the device's ctl.rwsem around its use of the device */
	switch (cmd) {
	case VFIO_MIG_CTL_COMMIT:
		return ctl_commit(c, mdev, uarg);
	case VFIO_MIG_CTL_PAGES:
		return ctl_pages(ctl_file(c), mdev, uarg);
	case VFIO_MIG_CTL_STATE:
		return ctl_state(c, mdev, uarg);
	case VFIO_MIG_CTL_STAGE_FD:
		return vmig_stage_fd(filp, c, mdev, uarg);
	default:
		return ctl_prepare(c, mdev, uarg);
	}
}

static const struct file_operations ctl_fops = {
	.owner		= THIS_MODULE,
	.open		= ctl_open,
	.release	= ctl_release,
	.unlocked_ioctl	= ctl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

struct vmig_ctl *vmig_ctl_of_file(struct file *f)
{
	return f->f_op == &ctl_fops ? f->private_data : NULL;
}

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
