// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: staging fds (VFIO_MIG_CTL_STAGE_FD, VFIO_MIG_CTL_STAGE in
 * include/uapi/linux/vfio_mig_ctl.h): guest pages copied once into pages
 * the kernel allocates, hashed and classified there, and handed to a
 * socket by splice() or sendfile() without another copy
 * (Documentation/live-migration.rst, "Page streaming throughput").
 *
 * The other way (VFIO_MIG_CTL_LAND): the fd is armed with IOVAs, and the
 * bytes written to it (splice() from a socket, through a pipe:
 * iter_file_splice_write() hands the pipe's pages over as one bvec
 * iterator) are copied once, from those pages into the guest's.
 *
 * The staged pages are the kernel's own, not the guest's: what a socket
 * sends is what was hashed, whatever the guest writes meanwhile, and no
 * guest page is pinned or referenced past the copy (type1's dirty scope
 * stays as it is, lm_pin.c). A page handed to a pipe gets a reference of
 * its own, which the pipe or the socket drops once it is sent.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/pipe_fs_i.h>
#include <linux/siphash.h>
#include <linux/slab.h>
#include <linux/splice.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <vfio-mig/compat.h>
#include <vfio-mig/mh_hash.h>
#include <uapi/linux/vfio_mig_ctl.h>

#include "ctl.h"
#include "profile.h"
#include "stage.h"
#include "vfio_mig.h"

#define STAGE_PAGE		SZ_4K
#define STAGE_MAX		VFIO_MIG_CTL_PAGES_MAX
/* The largest block allocated at once: a full staging (1 MiB). */
#define STAGE_MAX_ORDER		ilog2(STAGE_MAX)
/* Pages handed to a pipe per splice_to_pipe() call. */
#define STAGE_SPD		16
/* A write() from user memory lands through this much kernel memory. */
#define STAGE_BOUNCE		SZ_64K

/**
 * struct vmig_stage - one staging fd
 * @ctl_filp: the control fd it came from, referenced: its attachment is
 *	what a stage checks, and it stays allocated while this fd is open
 * @c: @ctl_filp's control state
 * @mdev: the device @c attached (set before this fd existed)
 * @lock: serialises every call on this fd (VFIO_MIG_CTL_STAGE, _LAND,
 *	_LANDED, read(), write() and splice() both ways), and protects
 *	everything below. Taken with no driver lock held, but under the
 *	pipe's mutex in a splice(); under it, the device's ctl.rwsem (then
 *	ctl.phase_lock), which a call holds for read only while it copies
 *	from or to the guest (in a worker it waits for, which holds type1's
 *	iommu->lock), never while it touches the caller's memory. No arc,
 *	close or detach takes it (vfio_mig.h, level 0).
 * @iovas: a stage's IOVAs (STAGE_MAX); allocated with the fd
 * @hashes: a stage's hashes, in and out (STAGE_MAX)
 * @sums: the block hashes of its data pages (STAGE_MAX)
 * @kinds: a stage's kinds (STAGE_MAX)
 * @buf: a stage's pages, STAGE_MAX slots; the first @nr are the staged
 *	data pages, one reference each
 * @pool: pages of earlier stages, one reference each (some also held by
 *	a socket still)
 * @npool: pages in @pool; @nr + @npool <= STAGE_MAX
 * @nr: data pages staged: the fd reads as a file of @nr * 4096 bytes,
 *	at the offset read() or splice() is given (sendfile() then resumes
 *	where a socket took less than it was offered)
 * @landing: armed by VFIO_MIG_CTL_LAND: writes land at @iovas
 * @land_sums: the landed pages' block hashes are taken, into @sums
 * @land_count: pages armed
 * @landed: bytes landed since
 * @hs: the block hash of the page being landed
 * @bounce: for writes from the caller's memory (write(), not splice()),
 *	which the worker cannot reach; STAGE_BOUNCE bytes, allocated by the
 *	first such write
 */
struct vmig_stage {
	struct file *ctl_filp;
	struct vmig_ctl *c;
	struct vmig_device *mdev;
	struct mutex lock;	/* see above */
	u64 *iovas;
	u64 *hashes;
	u64 *sums;
	u8 *kinds;
	struct page **buf;
	u32 nr;
	struct page **pool;
	u32 npool;
	bool landing;
	bool land_sums;
	u32 land_count;
	u64 landed;
	struct vmig_mh_stream hs;
	void *bounce;
};

/* What a stage's worker copies: @count guest pages into @pages. */
struct stage_copy {
	struct vmig_device *mdev;
	const u64 *iovas;
	struct page **pages;
	u32 count;
};

static void stage_put(struct page **pages, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++)
		put_page(pages[i]);
}

/*
 * @n pages into @pages, in blocks as large as the allocator gives without
 * effort (each split into pages of their own), so that a run of IOVAs is
 * copied by a few vfio_dma_rw() calls. 0 or -ENOMEM (none kept).
 */
static int stage_alloc(struct page **pages, u32 n)
{
	struct page *pg;
	u32 i, k, order;

	for (i = 0; i < n; i += 1U << order) {
		order = min_t(u32, ilog2(n - i), STAGE_MAX_ORDER);
		pg = NULL;
		while (order && !pg) {
			/*
			 * no reclaim nor compaction for a block, direct or
			 * woken (kswapd, kcompactd), nor reserves: pages
			 * will do
			 */
			pg = alloc_pages((GFP_KERNEL_ACCOUNT | __GFP_NOWARN |
					  __GFP_NOMEMALLOC) & ~__GFP_RECLAIM,
					 order);
			if (!pg)
				order--;
		}
		/*
		 * a page with reclaim, but ENOMEM rather than the OOM killer
		 * (the caller can send the batch another way)
		 */
		if (!pg)
			pg = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL |
					__GFP_NOWARN);
		if (!pg) {
			stage_put(pages, i);
			return -ENOMEM;
		}
		if (order)
			split_page(pg, order);
		for (k = 0; k < 1U << order; k++)
			pages[i + k] = pg + k;
	}
	return 0;
}

/*
 * In a kernel worker, as VFIO_MIG_CTL_PAGES's copies: each run of pages
 * contiguous both in IOVA and in memory is one vfio_dma_rw().
 */
static int stage_copy_rw(void *arg)
{
	struct stage_copy *sc = arg;
	u8 *first;
	u32 i, n;
	int ret;

	for (i = 0; i < sc->count; i += n) {
		first = page_address(sc->pages[i]);
		for (n = 1; i + n < sc->count; n++)
			if (sc->iovas[i + n] != sc->iovas[i] + (u64)n * STAGE_PAGE ||
			    page_address(sc->pages[i + n]) !=
			    first + (size_t)n * STAGE_PAGE)
				break;
		ret = vfio_dma_rw(&sc->mdev->core.vdev, sc->iovas[i], first,
				  (size_t)n * STAGE_PAGE, false);
		/* type1 says EINVAL for an IOVA it has no mapping for */
		if (ret)
			return ret == -EINVAL ? -EFAULT : ret;
	}
	return 0;
}

/* The guest's part of a stage: under the device's ctl.rwsem, attached. */
static int stage_copy(struct vmig_stage *st, struct stage_copy *sc)
{
	struct vmig_device *mdev = st->mdev;
	int ret;

	down_read(&mdev->ctl.rwsem);
	if (mdev->ctl.ctl != st->c) {
		ret = -ENODEV;
	} else if (vmig_iommufd_bound(&mdev->core.vdev)) {
		dev_warn_ratelimited(&mdev->core.pdev->dev,
				     "guest pages cannot be reached: the device is bound through iommufd, vfio-mig needs a type1 container\n");
		ret = -EOPNOTSUPP;
	} else {
		ret = vmig_run_in_worker(stage_copy_rw, sc);
	}
	up_read(&mdev->ctl.rwsem);
	return ret;
}

/*
 * Hash and classify the @count copied pages in @st->buf; keep the data
 * pages at the front, in order, and drop the others. Returns how many
 * were data.
 */
static u32 stage_classify(struct vmig_stage *st, u32 count,
			  const siphash_key_t *key, bool sums)
{
	u32 i, nd = 0;
	u64 h;

	for (i = 0; i < count; i++) {
		struct page *pg = st->buf[i];
		const void *p = page_address(pg);

		h = siphash(p, STAGE_PAGE, key) ?: 1;
		if (h == st->hashes[i]) {
			st->kinds[i] = VFIO_MIG_CTL_STAGE_UNCHANGED;
			st->pool[st->npool++] = pg;
		} else if (!memchr_inv(p, 0, STAGE_PAGE)) {
			st->kinds[i] = VFIO_MIG_CTL_STAGE_ZERO;
			st->pool[st->npool++] = pg;
		} else {
			st->kinds[i] = VFIO_MIG_CTL_STAGE_DATA;
			if (sums)
				st->sums[nd] = vmig_mh_hash64(p, STAGE_PAGE,
							      VMIG_MH_SEED_PAGE);
			st->buf[nd++] = pg;
		}
		st->hashes[i] = h;
		cond_resched();
	}
	return nd;
}

/*
 * Drop what @st staged or is armed for; under @st->lock. The staged pages
 * go back to the pool: the next stage writes those a socket no longer
 * holds, without a new allocation (which the kernel zeroes first where
 * init_on_alloc is on, Debian's default: a second pass over each page).
 */
static void stage_drop(struct vmig_stage *st)
{
	memcpy(st->pool + st->npool, st->buf, st->nr * sizeof(*st->buf));
	st->npool += st->nr;
	st->nr = 0;
	st->landing = false;
}

/* A call refused for its arguments leaves the fd empty too, as the uAPI says. */
static long stage_refuse(struct vmig_stage *st, long err)
{
	mutex_lock(&st->lock);
	stage_drop(st);
	mutex_unlock(&st->lock);
	return err;
}

/*
 * @n pages into @st->buf for a stage: first the pool's that nothing but
 * @st holds any more (in the pool's order, which keeps blocks together),
 * then new ones. Under @st->lock, after stage_drop(). 0 or -ENOMEM (the
 * pages taken are back in the pool).
 */
static int stage_get(struct vmig_stage *st, u32 n)
{
	struct page *pg;
	u32 k, got = 0;
	int ret;

	for (k = 0; k < st->npool && got < n; k++) {
		pg = st->pool[k];
		if (page_ref_count(pg) == 1)
			st->buf[got++] = pg;
		else
			put_page(pg);	/* the socket's reference frees it */
	}
	st->npool -= k;
	memmove(st->pool, st->pool + k, st->npool * sizeof(*st->pool));
	if (got == n)
		return 0;
	ret = stage_alloc(st->buf + got, n - got);
	if (ret) {
		memcpy(st->pool + st->npool, st->buf, got * sizeof(*st->buf));
		st->npool += got;
	}
	return ret;
}

/*
 * A call's @n IOVAs from the caller into @st->iovas; under @st->lock. 0,
 * -EFAULT, or -EINVAL if any is misaligned (then nothing moves).
 */
static int stage_iovas(struct vmig_stage *st, u64 uptr, u32 n)
{
	u32 i;

	if (copy_from_user(st->iovas, u64_to_user_ptr(uptr),
			   n * sizeof(*st->iovas)))
		return -EFAULT;
	for (i = 0; i < n; i++)
		if (!IS_ALIGNED(st->iovas[i], STAGE_PAGE))
			return -EINVAL;
	return 0;
}

static long stage_stage(struct file *filp, void __user *uarg)
{
	struct vmig_stage *st = filp->private_data;
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_stage, key);
	struct vfio_mig_ctl_stage sa;
	struct stage_copy sc = { .mdev = st->mdev };
	siphash_key_t key;
	__le64 kb[2];
	long ret;
	u32 nd;

	if (copy_from_user(&sa, uarg, minsz))
		return stage_refuse(st, -EFAULT);
	if (sa.argsz < minsz || sa.flags & ~VFIO_MIG_CTL_STAGE_SUMS)
		return stage_refuse(st, -EINVAL);
	if (sa.count > STAGE_MAX)
		return stage_refuse(st, -E2BIG);
	memcpy(kb, sa.key, sizeof(kb));
	key.key[0] = le64_to_cpu(kb[0]);
	key.key[1] = le64_to_cpu(kb[1]);

	mutex_lock(&st->lock);
	stage_drop(st);
	ret = stage_iovas(st, sa.iovas, sa.count);
	if (ret)
		goto out;
	ret = -EFAULT;
	if (copy_from_user(st->hashes, u64_to_user_ptr(sa.hashes),
			   sa.count * sizeof(*st->hashes)))
		goto out;
	ret = stage_get(st, sa.count);
	if (ret)
		goto out;
	sc.iovas = st->iovas;
	sc.pages = st->buf;
	sc.count = sa.count;
	ret = stage_copy(st, &sc);
	if (ret) {
		st->nr = sa.count;	/* back to the pool, none staged */
		stage_drop(st);
		goto out;
	}
	nd = stage_classify(st, sa.count, &key,
			    sa.flags & VFIO_MIG_CTL_STAGE_SUMS);
	st->nr = nd;
	sa.ndata = nd;
	if (copy_to_user(u64_to_user_ptr(sa.hashes), st->hashes,
			 sa.count * sizeof(*st->hashes)) ||
	    copy_to_user(u64_to_user_ptr(sa.kinds), st->kinds, sa.count) ||
	    (sa.flags & VFIO_MIG_CTL_STAGE_SUMS &&
	     copy_to_user(u64_to_user_ptr(sa.sums), st->sums,
			  nd * sizeof(*st->sums))) ||
	    copy_to_user(uarg, &sa, minsz)) {
		stage_drop(st);
		ret = -EFAULT;
	}
out:
	mutex_unlock(&st->lock);
	return ret;
}

/* ---- landing: bytes written to the fd go into guest pages ---- */

static long stage_land(struct vmig_stage *st, void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_land, iovas);
	struct vfio_mig_ctl_land la;
	long ret;

	if (copy_from_user(&la, uarg, minsz))
		return stage_refuse(st, -EFAULT);
	if (la.argsz < minsz || la.flags & ~VFIO_MIG_CTL_LAND_SUMS ||
	    la.reserved)
		return stage_refuse(st, -EINVAL);
	if (la.count > STAGE_MAX)
		return stage_refuse(st, -E2BIG);
	mutex_lock(&st->lock);
	stage_drop(st);
	ret = stage_iovas(st, la.iovas, la.count);
	if (ret)
		goto out;
	st->land_count = la.count;
	st->landed = 0;
	st->land_sums = la.flags & VFIO_MIG_CTL_LAND_SUMS;
	vmig_mh_stream_init(&st->hs, VMIG_MH_SEED_PAGE);
	st->landing = true;
out:
	mutex_unlock(&st->lock);
	return ret;
}

static long stage_landed(struct vmig_stage *st, void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_landed, sums);
	struct vfio_mig_ctl_landed ld;
	long ret = 0;

	if (copy_from_user(&ld, uarg, minsz))
		return -EFAULT;
	if (ld.argsz < minsz || ld.flags)
		return -EINVAL;
	mutex_lock(&st->lock);
	if (!st->landing) {
		ret = -EINVAL;
		goto out;
	}
	ld.bytes = st->landed;
	if (st->land_sums && ld.sums &&
	    copy_to_user(u64_to_user_ptr(ld.sums), st->sums,
			 st->landed / STAGE_PAGE * sizeof(*st->sums))) {
		ret = -EFAULT;
		goto out;
	}
	if (copy_to_user(uarg, &ld, minsz))
		ret = -EFAULT;
out:
	mutex_unlock(&st->lock);
	return ret;
}

/* The bytes at the iterator's position, contiguous in memory: how many. */
static const u8 *stage_iter_run(const struct iov_iter *it, size_t max,
				size_t *len)
{
	const struct bio_vec *bv;
	const u8 *p, *end;
	size_t n;

	if (!iov_iter_is_bvec(it)) {
		n = it->kvec->iov_len - it->iov_offset;
		*len = min(n, max);
		return (const u8 *)it->kvec->iov_base + it->iov_offset;
	}
	/* no HIGHMEM (vmig_stage_fd()): a bvec's bytes are in the direct map */
	bv = it->bvec;
	p = (const u8 *)page_address(bv->bv_page) + bv->bv_offset +
	    it->iov_offset;
	end = p + min_t(size_t, bv->bv_len - it->iov_offset, max);
	/* the next pieces may go on where this one ends (pages of a block) */
	while ((size_t)(end - p) < max && ++bv < it->bvec + it->nr_segs &&
	       (const u8 *)page_address(bv->bv_page) + bv->bv_offset == end)
		end += min_t(size_t, bv->bv_len, max - (end - p));
	*len = end - p;
	return p;
}

/* What a landing's worker writes: @len bytes of @from at @st->landed on. */
struct stage_landing {
	struct vmig_stage *st;
	struct iov_iter *from;
	size_t len;
	size_t done;
};

static void stage_land_hash(struct vmig_stage *st, const u8 *p, size_t n)
{
	size_t k;

	while (n) {
		k = min_t(size_t, n, STAGE_PAGE - st->landed % STAGE_PAGE);
		vmig_mh_stream_update(&st->hs, p, k);
		p += k;
		n -= k;
		st->landed += k;
		if (!(st->landed % STAGE_PAGE)) {
			st->sums[st->landed / STAGE_PAGE - 1] =
				vmig_mh_stream_final(&st->hs);
			vmig_mh_stream_init(&st->hs, VMIG_MH_SEED_PAGE);
		}
	}
}

/*
 * In a kernel worker, as VFIO_MIG_CTL_PAGES's writes: each piece that is
 * contiguous both in the source and in IOVA is one vfio_dma_rw().
 */
static int stage_land_rw(void *arg)
{
	struct stage_landing *l = arg;
	struct vmig_stage *st = l->st;
	size_t n, run, off;
	const u8 *src;
	u64 iova;
	u32 pg;
	int ret;

	while (l->done < l->len) {
		pg = st->landed / STAGE_PAGE;
		off = st->landed % STAGE_PAGE;
		iova = st->iovas[pg] + off;
		/* guest bytes contiguous from here */
		for (run = STAGE_PAGE - off; pg + 1 < st->land_count &&
		     st->iovas[pg + 1] == st->iovas[pg] + STAGE_PAGE; pg++)
			run += STAGE_PAGE;
		src = stage_iter_run(l->from, min(run, l->len - l->done), &n);
		ret = vfio_dma_rw(&st->mdev->core.vdev, iova, (void *)src, n,
				  true);
		if (ret)
			return ret == -EINVAL ? -EFAULT : ret;
		if (st->land_sums)
			stage_land_hash(st, src, n);
		else
			st->landed += n;
		iov_iter_advance(l->from, n);
		l->done += n;
		cond_resched();
	}
	return 0;
}

/*
 * The guest's part of a landing, under the device's ctl.rwsem, attached:
 * @len bytes of @from (kernel memory: a bvec or a kvec). The bytes
 * landed, or -errno when none did.
 */
static ssize_t stage_land_device(struct vmig_stage *st, struct iov_iter *from,
				 size_t len)
{
	struct vmig_device *mdev = st->mdev;
	struct stage_landing l = { .st = st, .from = from, .len = len };
	u32 first = st->landed / STAGE_PAGE;
	u32 last = (st->landed + len - 1) / STAGE_PAGE;
	u64 bad;
	int ret;

	down_read(&mdev->ctl.rwsem);
	if (mdev->ctl.ctl != st->c) {
		ret = -ENODEV;
	} else if (vmig_iommufd_bound(&mdev->core.vdev)) {
		ret = -EOPNOTSUPP;
	} else if (!vmig_ram_contains(mdev, st->iovas + first,
				      last - first + 1, &bad)) {
		dev_warn_ratelimited(&mdev->core.pdev->dev,
				     "page write at IOVA %#llx refused: outside the RAM the VMM named\n",
				     bad);
		ret = -EACCES;
	} else {
		ret = vmig_run_in_worker(stage_land_rw, &l);
	}
	up_read(&mdev->ctl.rwsem);
	return l.done ? l.done : ret;
}

static ssize_t stage_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct vmig_stage *st = iocb->ki_filp->private_data;
	struct iov_iter kit;
	struct kvec kv;
	size_t len, n;
	ssize_t ret, done = 0;

	mutex_lock(&st->lock);
	if (!st->landing) {
		ret = -EINVAL;
		goto out;
	}
	len = min_t(u64, iov_iter_count(from),
		    (u64)st->land_count * STAGE_PAGE - st->landed);
	if (!len) {
		ret = iov_iter_count(from) ? -ENOSPC : 0;
		goto out;
	}
	if (iov_iter_is_bvec(from) || iov_iter_is_kvec(from)) {
		ret = stage_land_device(st, from, len);
		goto out;
	}
	/* the caller's memory: through the bounce buffer, piece by piece */
	if (!st->bounce)
		st->bounce = kvmalloc(STAGE_BOUNCE, GFP_KERNEL_ACCOUNT);
	ret = -ENOMEM;
	while (st->bounce && done < len) {
		n = min_t(size_t, len - done, STAGE_BOUNCE);
		if (copy_from_iter(st->bounce, n, from) != n) {
			ret = -EFAULT;
			break;
		}
		kv.iov_base = st->bounce;
		kv.iov_len = n;
		iov_iter_kvec(&kit, ITER_SOURCE, &kv, 1, n);
		ret = stage_land_device(st, &kit, n);
		if (ret > 0)
			done += ret;
		if (ret != n) {
			/* what did not land goes back to the caller */
			iov_iter_revert(from, n - max_t(ssize_t, ret, 0));
			break;
		}
	}
	ret = done ? done : ret;
out:
	mutex_unlock(&st->lock);
	return ret;
}

static long stage_ioctl(struct file *filp, unsigned int cmd,
			unsigned long arg)
{
	switch (cmd) {
	case VFIO_MIG_CTL_STAGE:
		return stage_stage(filp, (void __user *)arg);
	case VFIO_MIG_CTL_LAND:
		return stage_land(filp->private_data, (void __user *)arg);
	case VFIO_MIG_CTL_LANDED:
		return stage_landed(filp->private_data, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

/* Bytes staged; under @st->lock. */
static u64 stage_size(const struct vmig_stage *st)
{
	return (u64)st->nr * STAGE_PAGE;
}

static ssize_t stage_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct vmig_stage *st = iocb->ki_filp->private_data;
	size_t off, n, got;
	ssize_t done = 0;
	loff_t pos = iocb->ki_pos;

	if (pos < 0)
		return -EINVAL;
	mutex_lock(&st->lock);
	while (iov_iter_count(to) && pos < stage_size(st)) {
		off = pos % STAGE_PAGE;
		n = min_t(u64, STAGE_PAGE - off, iov_iter_count(to));
		got = copy_page_to_iter(st->buf[pos / STAGE_PAGE], off, n, to);
		pos += got;
		done += got;
		if (got < n) {
			if (!done)
				done = -EFAULT;
			break;
		}
	}
	mutex_unlock(&st->lock);
	if (done > 0)
		iocb->ki_pos = pos;
	return done;
}

static void stage_spd_release(struct splice_pipe_desc *spd, unsigned int i)
{
	put_page(spd->pages[i]);
}

/*
 * The staged pages from *@ppos on into @pipe, each with a reference of
 * its own that the pipe (or the socket it is spliced to) drops: nothing
 * is copied.
 */
static ssize_t stage_splice_read(struct file *in, loff_t *ppos,
				 struct pipe_inode_info *pipe, size_t len,
				 unsigned int flags)
{
	struct vmig_stage *st = in->private_data;
	struct page *pages[STAGE_SPD];
	struct partial_page partial[STAGE_SPD];
	struct splice_pipe_desc spd = {
		.pages = pages,
		.partial = partial,
		.nr_pages_max = STAGE_SPD,
		.ops = &nosteal_pipe_buf_ops,
		.spd_release = stage_spd_release,
	};
	loff_t pos = *ppos, at;
	size_t want, off, n;
	ssize_t ret, done = 0;

	if (pos < 0)
		return -EINVAL;
	mutex_lock(&st->lock);
	while (len && pos < stage_size(st)) {
		want = 0;
		at = pos;
		for (spd.nr_pages = 0; spd.nr_pages < STAGE_SPD && want < len &&
		     at < stage_size(st); spd.nr_pages++) {
			off = at % STAGE_PAGE;
			n = min_t(size_t, STAGE_PAGE - off, len - want);
			pages[spd.nr_pages] = st->buf[at / STAGE_PAGE];
			get_page(pages[spd.nr_pages]);
			partial[spd.nr_pages].offset = off;
			partial[spd.nr_pages].len = n;
			partial[spd.nr_pages].private = 0;
			want += n;
			at += n;
		}
		ret = splice_to_pipe(pipe, &spd);
		if (ret <= 0) {
			if (!done)
				done = ret;
			break;
		}
		pos += ret;
		done += ret;
		len -= ret;
		if (ret < want)
			break;
	}
	mutex_unlock(&st->lock);
	if (done > 0)
		*ppos = pos;
	return done;
}

static void stage_free_arrays(struct vmig_stage *st)
{
	kfree(st->pool);
	kfree(st->buf);
	kfree(st->kinds);
	kfree(st->sums);
	kfree(st->hashes);
	kfree(st->iovas);
}

static int stage_release(struct inode *inode, struct file *filp)
{
	struct vmig_stage *st = filp->private_data;

	stage_drop(st);
	stage_put(st->pool, st->npool);
	mutex_destroy(&st->lock);
	kvfree(st->bounce);
	stage_free_arrays(st);
	atomic_dec(&st->c->nr_stage);
	fput(st->ctl_filp);
	kfree(st);
	return 0;
}

/* Positions are bytes of the current stage; there is no end to seek to. */
static loff_t stage_llseek(struct file *filp, loff_t off, int whence)
{
	return no_seek_end_llseek_size(filp, off, whence,
				       (loff_t)STAGE_MAX * STAGE_PAGE);
}

static const struct file_operations stage_fops = {
	.owner		= THIS_MODULE,
	.release	= stage_release,
	.read_iter	= stage_read_iter,
	.splice_read	= stage_splice_read,
	.write_iter	= stage_write_iter,
	.splice_write	= iter_file_splice_write,
	.unlocked_ioctl	= stage_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= stage_llseek,
};

/* VFIO_MIG_CTL_STAGE_FD on the attached control fd @ctl_filp. */
long vmig_stage_fd(struct file *ctl_filp, struct vmig_ctl *c,
		   struct vmig_device *mdev, void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_mig_ctl_stage_fd,
					  reserved);
	struct vfio_mig_ctl_stage_fd sf;
	struct vmig_stage *st;
	struct file *filp;
	int fd;

	if (copy_from_user(&sf, uarg, minsz))
		return -EFAULT;
	if (sf.argsz < minsz || sf.flags || sf.reserved)
		return -EINVAL;
	if (IS_ENABLED(CONFIG_HIGHMEM) || PAGE_SIZE != STAGE_PAGE)
		return -EOPNOTSUPP;
	/* each holds up to 1 MiB of pages: a bounded number per control fd */
	if (!atomic_add_unless(&c->nr_stage, 1, VFIO_MIG_CTL_STAGE_FDS_MAX))
		return -ENOSPC;
	st = kzalloc(sizeof(*st), GFP_KERNEL_ACCOUNT);
	if (!st) {
		atomic_dec(&c->nr_stage);
		return -ENOMEM;
	}
	st->iovas = kcalloc(STAGE_MAX, sizeof(*st->iovas), GFP_KERNEL_ACCOUNT);
	st->hashes = kcalloc(STAGE_MAX, sizeof(*st->hashes), GFP_KERNEL_ACCOUNT);
	st->sums = kcalloc(STAGE_MAX, sizeof(*st->sums), GFP_KERNEL_ACCOUNT);
	st->kinds = kcalloc(STAGE_MAX, sizeof(*st->kinds), GFP_KERNEL_ACCOUNT);
	st->buf = kcalloc(STAGE_MAX, sizeof(*st->buf), GFP_KERNEL_ACCOUNT);
	st->pool = kcalloc(STAGE_MAX, sizeof(*st->pool), GFP_KERNEL_ACCOUNT);
	fd = -ENOMEM;
	if (!st->iovas || !st->hashes || !st->sums || !st->kinds ||
	    !st->buf || !st->pool)
		goto fail;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		goto fail;
	mutex_init(&st->lock);
	st->ctl_filp = get_file(ctl_filp);
	st->c = c;
	st->mdev = mdev;
	filp = anon_inode_getfile("[vfio-mig-stage]", &stage_fops, st,
				  O_RDWR);
	if (IS_ERR(filp)) {
		fput(st->ctl_filp);
		mutex_destroy(&st->lock);
		put_unused_fd(fd);
		fd = PTR_ERR(filp);
		goto fail;
	}
	/* read at an offset: pread(), and sendfile() given one */
	filp->f_mode |= FMODE_PREAD;
	sf.fd = fd;
	if (copy_to_user(uarg, &sf, minsz)) {
		put_unused_fd(fd);
		fput(filp);	/* stage_release() frees @st */
		return -EFAULT;
	}
	fd_install(fd, filp);
	return 0;
fail:
	stage_free_arrays(st);
	kfree(st);
	atomic_dec(&c->nr_stage);
	return fd;
}
