// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the migration data fds.
 *
 * A saving fd holds a queue of stream pieces (stream.c). In PRE_COPY it
 * starts with the initial bytes (the header and the write log so far);
 * each time the queue runs dry, a read or VFIO_MIG_GET_PRECOPY_INFO adds
 * what the log gained since, as one record; with nothing new, read()
 * answers ENOMSG (the temporary end of stream of the uAPI) and poll()
 * waits for the log to grow. The arc into STOP_COPY queues the rest,
 * after which read() ends with 0.
 *
 * A resuming fd feeds its bytes to the stream parser, which rejects a bad
 * stream at the first wrong byte it can know is wrong; RESUMING -> STOP
 * applies it.
 *
 * The device holds a reference to its current fd; vmig_migf_put() drops
 * it when the session ends and disables the fd, so that the fd never
 * reaches a device that is gone: read and write then fail with ENODEV.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>
#include <uapi/linux/vfio_mig_stream.h>
#include <vfio-mig/compat.h>

#include "dirty.h"
#include "lm.h"
#include "profile.h"
#include "reglog.h"
#include "regstate.h"
#include "replay.h"
#include "snapshot.h"
#include "stream.h"
#include "vfio_mig.h"

static void free_chunks(struct vmig_migf *migf)
{
	struct vmig_chunk *c, *tmp;

	list_for_each_entry_safe(c, tmp, &migf->chunks, node) {
		list_del(&c->node);
		kvfree(c);
	}
	migf->queued = 0;
	migf->initial = 0;
}

static void queue(struct vmig_migf *migf, struct vmig_chunk *c)
{
	list_add_tail(&c->node, &migf->chunks);
	migf->queued += c->len;
}

static void disable(struct vmig_migf *migf)
{
	mutex_lock(&migf->lock);
	migf->disabled = true;
	migf->mdev = NULL;
	free_chunks(migf);
	vmig_stream_rx_free(migf->rx);
	migf->rx = NULL;
	mutex_unlock(&migf->lock);
	wake_up_interruptible(&migf->poll_wait);
}

void vmig_migf_put(struct vmig_migf *migf)
{
	disable(migf);
	fput(migf->filp);
}

static int vmig_migf_release(struct inode *inode, struct file *filp)
{
	struct vmig_migf *migf = filp->private_data;

	disable(migf);
	cancel_delayed_work_sync(&migf->poll_work);
	mutex_destroy(&migf->lock);
	mutex_destroy(&migf->io_lock);
	kvfree(migf->bounce);
	kfree(migf);
	return 0;
}

/* PRE_COPY: when the queue is dry, queue what the write log gained. */
static int refill(struct vmig_migf *migf)
{
	struct vmig_chunk *c;

	if (migf->queued || !migf->precopy || migf->log_lost)
		return 0;
	c = vmig_stream_log_record(migf->mdev, &migf->sent_seq,
				   &migf->log_lost);
	if (IS_ERR(c))
		return PTR_ERR(c);
	if (c)
		queue(migf, c);
	return 0;
}

static ssize_t save_read(struct file *filp, char __user *buf, size_t len,
			 loff_t *pos)
{
	struct vmig_migf *migf = filp->private_data;
	ssize_t done = 0;
	int ret;

	if (pos)
		return -ESPIPE;
	if (mutex_lock_killable(&migf->io_lock))
		return -EINTR;
	mutex_lock(&migf->lock);
	if (migf->disabled) {
		done = -ENODEV;
		goto out;
	}
	ret = refill(migf);
	if (ret) {
		done = ret;
		goto out;
	}
	while (len && !list_empty(&migf->chunks)) {
		struct vmig_chunk *c = list_first_entry(&migf->chunks,
							struct vmig_chunk,
							node);
		size_t n = min(len, c->len - c->pos);
		bool fault;

		/* ours while the caller's memory is touched without @lock */
		list_del(&c->node);
		mutex_unlock(&migf->lock);
		fault = copy_to_user(buf + done, c->data + c->pos, n);
		mutex_lock(&migf->lock);
		if (migf->disabled) {	/* the queue went while we copied */
			kvfree(c);
			done = done ?: -ENODEV;
			goto out;
		}
		if (fault) {
			list_add(&c->node, &migf->chunks);
			done = done ?: -EFAULT;
			goto out;
		}
		c->pos += n;
		done += n;
		len -= n;
		migf->queued -= n;
		migf->initial -= min(migf->initial, n);
		migf->bytes += n;
		if (c->pos == c->len)
			kvfree(c);
		else
			list_add(&c->node, &migf->chunks);
	}
	/* nothing now, more may come: the PRE_COPY end of stream */
	if (!done && !migf->final)
		done = -ENOMSG;
out:
	mutex_unlock(&migf->lock);
	mutex_unlock(&migf->io_lock);
	return done;
}

/* PRE_COPY: has the write log grown since the last record? */
static bool log_grew(struct vmig_migf *migf)
{
	struct vmig_counters c;

	if (!migf->precopy || migf->log_lost)
		return false;
	vmig_get_counters(migf->mdev, &c);
	return c.log_next_seq > migf->sent_seq;
}

/*
 * The trap path does not wake pre-copy pollers (a wake-up per register
 * write would cost every write); while someone polls an empty PRE_COPY fd,
 * this looks for new log entries every VMIG_POLL_MS.
 */
#define VMIG_POLL_MS	50

static void poll_work(struct work_struct *work)
{
	struct vmig_migf *migf = container_of(to_delayed_work(work),
					      struct vmig_migf, poll_work);
	bool wake = false, again = false;

	mutex_lock(&migf->lock);
	if (!migf->disabled) {
		wake = migf->queued || migf->final || log_grew(migf);
		again = !wake && wq_has_sleeper(&migf->poll_wait);
	}
	mutex_unlock(&migf->lock);
	if (wake)
		wake_up_interruptible(&migf->poll_wait);
	else if (again)
		schedule_delayed_work(&migf->poll_work,
				      msecs_to_jiffies(VMIG_POLL_MS));
}

static __poll_t save_poll(struct file *filp, struct poll_table_struct *wait)
{
	struct vmig_migf *migf = filp->private_data;
	__poll_t mask = 0;

	poll_wait(filp, &migf->poll_wait, wait);
	mutex_lock(&migf->lock);
	if (migf->disabled)
		mask = EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;
	else if (migf->queued || migf->final || log_grew(migf))
		mask = EPOLLIN | EPOLLRDNORM;
	else if (migf->precopy)
		schedule_delayed_work(&migf->poll_work,
				      msecs_to_jiffies(VMIG_POLL_MS));
	mutex_unlock(&migf->lock);
	return mask;
}

static long save_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	unsigned long minsz = offsetofend(struct vmig_precopy_info, dirty_bytes);
	struct vmig_migf *migf = filp->private_data;
	struct vmig_precopy_info info;
	int ret;

	if (cmd != VMIG_GET_PRECOPY_INFO)
		return -ENOTTY;
	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	mutex_lock(&migf->lock);
	if (migf->disabled) {
		ret = -ENODEV;
	} else if (!migf->precopy) {
		ret = -EINVAL;	/* valid only in the PRE_COPY states */
	} else {
		ret = refill(migf);
		info.initial_bytes = migf->initial;
		info.dirty_bytes = migf->queued - migf->initial;
	}
	mutex_unlock(&migf->lock);
	if (ret)
		return ret;
	info.flags = 0;
	return copy_to_user((void __user *)arg, &info, minsz) ? -EFAULT : 0;
}

static const struct file_operations save_fops = {
	.owner = THIS_MODULE,
	.read = save_read,
	.poll = save_poll,
	.unlocked_ioctl = save_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = vmig_migf_release,
};

/* Parse @n bytes of @migf->bounce (under @io_lock): as many, or -errno. */
static ssize_t resume_take(struct vmig_migf *migf, size_t n)
{
	ssize_t ret;

	mutex_lock(&migf->lock);
	if (migf->disabled) {
		ret = -ENODEV;
	} else {
		ret = vmig_stream_rx_write(migf->rx, migf->mdev, migf->bounce,
					   n);
		if (ret > 0)
			migf->bytes += ret;
	}
	mutex_unlock(&migf->lock);
	return ret;
}

/*
 * The caller's bytes are copied in with only @io_lock held, a piece of at
 * most VMIG_MIGF_BOUNCE at a time, then parsed under @lock.
 */
static ssize_t resume_write(struct file *filp, const char __user *buf,
			    size_t len, loff_t *pos)
{
	struct vmig_migf *migf = filp->private_data;
	ssize_t ret = 0, done = 0;
	size_t n;

	if (pos)
		return -ESPIPE;
	if (mutex_lock_killable(&migf->io_lock))
		return -EINTR;
	/* a dropped fd, a stream already refused, an empty write: as before */
	if (!len || READ_ONCE(migf->disabled)) {
		ret = resume_take(migf, 0);
		mutex_unlock(&migf->io_lock);
		return ret;
	}
	if (!migf->bounce)
		migf->bounce = kvmalloc(VMIG_MIGF_BOUNCE, GFP_KERNEL_ACCOUNT);
	if (!migf->bounce)
		ret = -ENOMEM;
	while (!ret && done < len) {
		if (done && fatal_signal_pending(current))
			break;
		n = min_t(size_t, len - done, VMIG_MIGF_BOUNCE);
		if (copy_from_user(migf->bounce, buf + done, n)) {
			ret = -EFAULT;
			break;
		}
		ret = resume_take(migf, n);
		if (ret > 0) {
			done += ret;
			ret = 0;
		}
	}
	mutex_unlock(&migf->io_lock);
	return done ?: ret;
}

static const struct file_operations resume_fops = {
	.owner = THIS_MODULE,
	.write = resume_write,
	.release = vmig_migf_release,
};

static struct vmig_migf *migf_open(struct vmig_device *mdev,
				   const struct file_operations *fops,
				   int flags)
{
	struct vmig_migf *migf;
	struct file *filp;

	migf = kzalloc(sizeof(*migf), GFP_KERNEL_ACCOUNT);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	mutex_init(&migf->lock);
	mutex_init(&migf->io_lock);
	INIT_LIST_HEAD(&migf->chunks);
	init_waitqueue_head(&migf->poll_wait);
	INIT_DELAYED_WORK(&migf->poll_work, poll_work);
	migf->mdev = mdev;
	filp = anon_inode_getfile("vfio_mig", fops, migf, flags);
	if (IS_ERR(filp)) {
		mutex_destroy(&migf->lock);
		mutex_destroy(&migf->io_lock);
		kfree(migf);
		return ERR_CAST(filp);
	}
	stream_open(filp->f_inode, filp);
	migf->filp = filp;
	return migf;
}

static u64 log_base(struct vmig_device *mdev)
{
	u64 base;

	vmig_rs_lock(&mdev->rs);
	base = mdev->rs.base_seq;
	vmig_rs_unlock(&mdev->rs);
	return base;
}

struct vmig_migf *vmig_migf_save_open(struct vmig_device *mdev, bool precopy)
{
	struct vmig_migf *migf = migf_open(mdev, &save_fops, O_RDONLY);
	struct vmig_chunk *c;

	if (IS_ERR(migf))
		return migf;
	migf->saving = true;
	migf->sent_seq = log_base(mdev);
	if (!precopy)
		return migf;
	/* the initial bytes: the header, then the write log so far */
	c = vmig_stream_header(mdev, VMIG_STREAM_F_PRECOPY);
	if (!c) {
		fput(migf->filp);
		return ERR_PTR(-ENOMEM);
	}
	queue(migf, c);
	migf->hdr_sent = true;
	migf->precopy = true;
	c = vmig_stream_log_record(mdev, &migf->sent_seq, &migf->log_lost);
	if (IS_ERR(c)) {
		fput(migf->filp);
		return ERR_CAST(c);
	}
	if (c)
		queue(migf, c);
	migf->initial = migf->queued;
	return migf;
}

struct vmig_migf *vmig_migf_resume_open(struct vmig_device *mdev)
{
	struct vmig_migf *migf = migf_open(mdev, &resume_fops, O_WRONLY);

	if (IS_ERR(migf))
		return migf;
	migf->rx = vmig_stream_rx_alloc();
	if (!migf->rx) {
		fput(migf->filp);
		return ERR_PTR(-ENOMEM);
	}
	return migf;
}

static void free_list(struct list_head *l)
{
	struct vmig_chunk *c, *tmp;

	list_for_each_entry_safe(c, tmp, l, node) {
		list_del(&c->node);
		kvfree(c);
	}
}

static int add(struct list_head *l, struct vmig_chunk *c)
{
	if (IS_ERR_OR_NULL(c))
		return c ? PTR_ERR(c) : -ENOMEM;
	list_add_tail(&c->node, l);
	return 0;
}

/* The stopped device's state, as the pieces that end the stream. */
static int build_final(struct vmig_migf *migf, struct list_head *l)
{
	struct vmig_device *mdev = migf->mdev;
	bool shadow = vmig_shadow_engaged(mdev);
	struct vmig_snapshot *snap;
	u32 nr = 0, ds_len;
	void *blob;
	void *held;
	size_t len;
	u8 *ds;
	int ret = 0;

	held = kzalloc(vmig_dma_held_max(mdev) + 1, GFP_KERNEL);
	if (!held)
		return -ENOMEM;
	/* an engaged shadow holds the state and work; the device is idle */
	if (shadow)
		snap = vmig_shadow_snapshot(mdev, held, &nr);
	else
		snap = __vmig_snapshot_take(mdev, VMIG_SNAP_DEVSTATE |
					    VMIG_SNAP_COMPLETE |
					    (migf->nr_early ?
					     VMIG_SNAP_EARLY : 0),
					    migf->sent_seq);
	if (IS_ERR(snap)) {
		kfree(held);
		return PTR_ERR(snap);
	}
	/* the profile's blob goes in its own record, after the registers */
	ds = snap->devstate;
	ds_len = snap->devstate_len;
	snap->devstate = NULL;
	snap->devstate_len = 0;
	snap->flags &= ~VMIG_SNAPF_DEVSTATE;
	if (!migf->hdr_sent)
		ret = add(l, vmig_stream_header(mdev, 0));
	if (!ret) {
		blob = vmig_snapshot_serialise(snap, &len);
		if (IS_ERR(blob)) {
			ret = PTR_ERR(blob);
		} else {
			ret = add(l, vmig_stream_record(VMIG_REC_REG_STATE,
							blob, len));
			kvfree(blob);
		}
	}
	if (!ret && ds)
		ret = add(l, vmig_stream_profile_record(mdev->profile,
							VMIG_REC_PROFILE_STATE,
							ds, ds_len));
	if (!ret && shadow) {
		struct vmig_stream_shadow sw = {
			.version = cpu_to_le32(VMIG_STREAM_SHADOW_VERSION),
		};

		ret = add(l, vmig_stream_record(VMIG_REC_SHADOW, &sw,
						sizeof(sw)));
	}
	if (!shadow)
		nr = vmig_dma_held_save(mdev, held);
	if (!ret && nr)
		ret = add(l, vmig_stream_record(VMIG_REC_HELD_WRITES, held, nr));
	if (!ret)
		ret = add(l, vmig_stream_record(VMIG_REC_END, NULL, 0));
	kfree(held);
	kvfree(ds);
	vmig_snapshot_free(snap);
	return ret;
}

int vmig_migf_queue_early(struct vmig_migf *migf, const void *blob, u32 len)
{
	struct vmig_chunk *c;
	int ret = 0;

	mutex_lock(&migf->lock);
	if (migf->disabled || !migf->precopy) {
		ret = -EINVAL;
		goto out;
	}
	if (migf->nr_early >= VMIG_STREAM_MAX_EARLY) {
		ret = -ENOSPC;
		goto out;
	}
	/* the log so far first: the target reads the early state after it */
	ret = refill(migf);
	if (ret)
		goto out;
	c = vmig_stream_profile_record(migf->mdev->profile,
				       VMIG_REC_PROFILE_EARLY, blob, len);
	if (!c) {
		ret = -ENOMEM;
		goto out;
	}
	queue(migf, c);
	migf->nr_early++;
out:
	mutex_unlock(&migf->lock);
	wake_up_interruptible(&migf->poll_wait);
	return ret;
}

bool vmig_migf_early_room(struct vmig_migf *migf)
{
	bool room;

	mutex_lock(&migf->lock);
	room = migf->nr_early < VMIG_STREAM_MAX_EARLY;
	mutex_unlock(&migf->lock);
	return room;
}

int vmig_migf_save_final(struct vmig_migf *migf)
{
	struct vmig_chunk *c, *tmp;
	LIST_HEAD(l);
	int ret;

	mutex_lock(&migf->lock);
	ret = migf->disabled ? -ENODEV : build_final(migf, &l);
	if (ret) {
		free_list(&l);
	} else {
		list_for_each_entry_safe(c, tmp, &l, node) {
			list_del(&c->node);
			queue(migf, c);
		}
		migf->precopy = false;
		migf->initial = 0;
		migf->final = true;
	}
	mutex_unlock(&migf->lock);
	wake_up_interruptible(&migf->poll_wait);
	return ret;
}

int vmig_migf_load(struct vmig_migf *migf)
{
	struct vmig_stream_result res = {};
	struct vmig_replay_report *rep;
	struct vmig_device *mdev;
	int ret;

	/* before the stream is handed over: a failure here can be retried */
	rep = kzalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep)
		return -ENOMEM;
	mutex_lock(&migf->lock);
	/* valid after unlocking too: the caller holds state_mutex */
	mdev = migf->mdev;
	lockdep_assert_held(&mdev->mig.state_mutex);
	ret = migf->disabled ? -ENODEV :
			       vmig_stream_rx_finish(migf->rx, mdev, &res);
	mutex_unlock(&migf->lock);
	if (ret)
		goto out;
	/* the register state's own identity and profile, before any use */
	ret = vmig_check_compat(mdev, &res.snap->id, res.snap->profile, rep);
	/* the source's shadow's state: served by ours, if we have one */
	if (!ret && res.shadow &&
	    !vmig_shadow_engage_stream(mdev, res.snap, res.held, res.held_len))
		goto out;
	/* early state a profile loaded counts for this stream only */
	if (!ret)
		ret = __vmig_snapshot_replay(mdev, res.snap, rep,
					     VMIG_SNAP_COMPLETE |
					     (res.early ? VMIG_SNAP_EARLY : 0));
	if (!ret && rep->nr_errors)
		ret = -EIO;
	if (ret && rep->nr_errors)
		pci_warn(mdev->core.pdev,
			 "migration state not applied: %s%s%u register errors, the first at BAR %u offset %#x: %d\n",
			 rep->msg, rep->msg[0] ? "; " : "", rep->nr_errors,
			 rep->errors[0].bar, rep->errors[0].offset,
			 rep->errors[0].err);
	else if (ret)
		pci_warn(mdev->core.pdev, "migration state not applied (%d)%s%s\n",
			 ret, rep->msg[0] ? ": " : "", rep->msg);
	if (!ret)
		vmig_dma_held_load(mdev, res.held, res.held_len);
out:
	kvfree(res.held);
	kfree(rep);
	vmig_snapshot_free(res.snap);
	return ret;
}

unsigned long vmig_migf_stop_copy_estimate(struct vmig_device *mdev,
					   struct vmig_migf *saving)
{
	const struct vmig_profile *p = mdev->profile;
	struct vmig_counters c;
	u64 since = log_base(mdev);
	bool hdr = true;

	if (saving) {
		mutex_lock(&saving->lock);
		since = max(since, saving->sent_seq);
		hdr = !saving->hdr_sent;
		mutex_unlock(&saving->lock);
	}
	vmig_get_counters(mdev, &c);
	/* a snapshot: about 256 bytes of framing, 32 per register, 48 per entry */
	/* and a SHADOW record: a header and 16 bytes */
	return vmig_stream_fixed_bytes(hdr) + 256 +
	       (c.regfile_entries + vmig_profile_nr_slots(p)) * 32 +
	       (c.log_next_seq - min(since, c.log_next_seq)) * 48 +
	       vmig_profile_state_size(p) + 8 +
	       (vmig_shadow_engaged(mdev) ? 32 : 0);
}
