// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: debugfs TEST INTERFACE to the snapshot and replay API, until
 * the netlink family and the VFIO migration uAPI carry it. Not a stable
 * interface; root only. /sys/kernel/debug/vfio-mig/BDF/:
 *
 *   ctl       write a command:
 *               take            snapshot of registers, log and register file
 *               take full       ... and the profile's device state (the
 *                               device must be stopped)
 *               replay BDF      replay the stored snapshot onto BDF
 *               scratch IOVA    guest page the profile may borrow (0: none)
 *               stall-early     (test builds, edu) the next early save
 *                               ends as if its transfer never did
 *               stall-quiesce   (test builds, edu) the next DMA hold's
 *                               wait for the engine times out
 *               reset-done      (test builds) the PCI core's notification
 *                               of a reset of the function, alone
 *   snapshot  the stored snapshot in its byte form; writing one (in a
 *             single write) replaces it after validation
 *   result    outcome of the last command, "key: value" lines
 *   counters  trap and log counters, then the profile's own (edu:
 *             edu_own_transfers), "key: value" lines
 *   reglog    the retained register write log, one write per line
 *
 * /sys/kernel/debug/vfio-mig/worker_delay_ms: each vmig_run_in_worker()
 * call waits this long in its queue before it runs (0, the default: not
 * at all); for tests of a caller killed while it waits.
 *
 * /sys/kernel/debug/vfio-mig/reset_delay_ms: the work that applies a
 * device reset the PCI core made outside VFIO_DEVICE_RESET (lm.c) waits
 * this long before it runs (0, the default: not at all); for tests of a
 * guest that writes the device before it runs.
 *
 * /sys/kernel/debug/vfio-mig/unmap_grace_ms: how long a DMA start into IOVA
 * the VMM just unmapped waits before its pages are pinned (lm_pin.c; 20,
 * the default; at most 5000 is used); for tests that it waits.
 *
 * /sys/kernel/debug/vfio-mig/queue_doorbells: Y (the default) lets the
 * doorbells of a profile's queues run concurrently (lm_dma.c); N sends
 * them through the device-wide path, for measurements.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "debugfs.h"
#include "lm.h"
#include "profile.h"
#include "reglog.h"
#include "regstate.h"
#include "replay.h"
#include "snapshot.h"
#include "trap.h"
#include "vfio_mig.h"

static struct dentry *vmig_dbg_root;

static void set_blob(struct vmig_device *mdev, void *blob, size_t len)
{
	kvfree(mdev->dbg.blob);
	mdev->dbg.blob = blob;
	mdev->dbg.blob_len = len;
}

static int dbg_take(struct vmig_device *mdev, unsigned int flags)
{
	struct vmig_snapshot *snap;
	size_t len;
	void *blob;

	snap = vmig_snapshot_take(mdev, flags);
	if (IS_ERR(snap)) {
		scnprintf(mdev->dbg.result, sizeof(mdev->dbg.result),
			  "ret: %ld\n", PTR_ERR(snap));
		return PTR_ERR(snap);
	}
	blob = vmig_snapshot_serialise(snap, &len);
	if (!IS_ERR(blob)) {
		set_blob(mdev, blob, len);
		scnprintf(mdev->dbg.result, sizeof(mdev->dbg.result),
			  "ret: 0\nbytes: %zu\nflags: %#x\nregfile: %u\nreads: %u\ntail: %u\ndevstate: %u\n",
			  len, snap->flags, snap->nr_regfile, snap->nr_reads,
			  snap->nr_tail, snap->devstate_len);
	}
	vmig_snapshot_free(snap);
	return PTR_ERR_OR_ZERO(blob);
}

static void format_report(struct vmig_device *mdev, int ret,
			  const struct vmig_replay_report *r)
{
	char *p = mdev->dbg.result;
	size_t n = sizeof(mdev->dbg.result), k;
	u32 i;

	k = scnprintf(p, n,
		      "ret: %d\napplied: %u\nskipped: %u\nerrors: %u\nregfile_only: %d\nregfile_incomplete: %d\nid_tolerated: %d\nmsg: %s\n",
		      ret, r->applied, r->skipped, r->nr_errors, r->regfile_only,
		      r->regfile_incomplete, r->id_tolerated, r->msg);
	for (i = 0; i < min_t(u32, r->nr_errors, VMIG_REPLAY_MAX_ERRORS); i++)
		k += scnprintf(p + k, n - k,
			       "error: bar %#x offset %#x width %u err %d\n",
			       r->errors[i].bar, r->errors[i].offset,
			       r->errors[i].width, r->errors[i].err);
}

static int dbg_replay(struct vmig_device *mdev, const char *bdf)
{
	struct vmig_replay_report *rep;
	struct vmig_snapshot *snap;
	struct vmig_device *dst;
	const char *why = "";
	int ret;

	if (!mdev->dbg.blob)
		return -ENODATA;
	snap = vmig_snapshot_parse(mdev->dbg.blob, mdev->dbg.blob_len, &why);
	if (IS_ERR(snap)) {
		scnprintf(mdev->dbg.result, sizeof(mdev->dbg.result),
			  "ret: %ld\nmsg: %s\n", PTR_ERR(snap), why);
		return PTR_ERR(snap);
	}
	rep = kzalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep) {
		vmig_snapshot_free(snap);
		return -ENOMEM;
	}
	/* a use, not the lock, while the replay holds dst's dev_set->lock */
	mutex_lock(&vmig_devices_lock);
	dst = vmig_find_locked(bdf);
	if (dst)
		vmig_dev_use_locked(dst);
	mutex_unlock(&vmig_devices_lock);
	if (dst) {
		ret = vmig_snapshot_replay(dst, snap, rep);
		vmig_dev_unuse(dst);
	} else {
		ret = -ENODEV;
		scnprintf(rep->msg, sizeof(rep->msg),
			  "no device %s bound to vfio-mig", bdf);
	}
	format_report(mdev, ret, rep);
	kfree(rep);
	vmig_snapshot_free(snap);
	return ret;
}

static ssize_t ctl_write(struct file *f, const char __user *ubuf, size_t len,
			 loff_t *ppos)
{
	struct vmig_device *mdev = f->private_data;
	const struct vmig_profile *p;
	char buf[64], *cmd;
	int ret;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	cmd = strim(buf);

	mutex_lock(&mdev->dbg.lock);
	if (!strcmp(cmd, "take")) {
		ret = dbg_take(mdev, 0);
	} else if (!strcmp(cmd, "take full")) {
		ret = dbg_take(mdev, VMIG_SNAP_DEVSTATE);
	} else if (str_has_prefix(cmd, "replay ")) {
		ret = dbg_replay(mdev, skip_spaces(cmd + 7));
	} else if (IS_ENABLED(CONFIG_VFIO_MIG_TESTS) && !strcmp(cmd, "reset-done")) {
		/* what the PCI core calls around a reset of the function */
		vmig_err_handlers.reset_prepare(mdev->core.pdev);
		vmig_err_handlers.reset_done(mdev->core.pdev);
		ret = 0;
	} else {
		/* the profile's own commands (edu: "scratch IOVA") */
		mutex_lock(vmig_dev_set_lock(mdev));
		p = mdev->profile;
		ret = p->ops && p->ops->ctl ? p->ops->ctl(mdev, cmd) : -EINVAL;
		vmig_profile_early_update(mdev);
		mutex_unlock(vmig_dev_set_lock(mdev));
	}
	mutex_unlock(&mdev->dbg.lock);
	return ret ? ret : len;
}

static const struct file_operations ctl_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = ctl_write,
};

static ssize_t snapshot_read(struct file *f, char __user *ubuf, size_t len,
			     loff_t *ppos)
{
	struct vmig_device *mdev = f->private_data;
	ssize_t ret;

	mutex_lock(&mdev->dbg.lock);
	ret = simple_read_from_buffer(ubuf, len, ppos, mdev->dbg.blob,
				      mdev->dbg.blob ? mdev->dbg.blob_len : 0);
	mutex_unlock(&mdev->dbg.lock);
	return ret;
}

static ssize_t snapshot_write(struct file *f, const char __user *ubuf,
			      size_t len, loff_t *ppos)
{
	struct vmig_device *mdev = f->private_data;
	struct vmig_snapshot *snap;
	const char *why;
	void *blob;

	if (*ppos || !len || len > VMIG_SNAP_MAX_BYTES)
		return -EINVAL;
	blob = vmemdup_user(ubuf, len);
	if (IS_ERR(blob))
		return PTR_ERR(blob);
	snap = vmig_snapshot_parse(blob, len, &why);
	mutex_lock(&mdev->dbg.lock);
	if (IS_ERR(snap)) {
		scnprintf(mdev->dbg.result, sizeof(mdev->dbg.result),
			  "ret: %ld\nmsg: %s\n", PTR_ERR(snap), why);
		kvfree(blob);
	} else {
		scnprintf(mdev->dbg.result, sizeof(mdev->dbg.result),
			  "ret: 0\nbytes: %zu\n", len);
		set_blob(mdev, blob, len);
	}
	mutex_unlock(&mdev->dbg.lock);
	if (IS_ERR(snap))
		return PTR_ERR(snap);
	vmig_snapshot_free(snap);
	*ppos = len;
	return len;
}

static const struct file_operations snapshot_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = snapshot_read,
	.write = snapshot_write,
	.llseek = default_llseek,
};

static int result_show(struct seq_file *m, void *v)
{
	struct vmig_device *mdev = m->private;

	mutex_lock(&mdev->dbg.lock);
	seq_puts(m, mdev->dbg.result);
	mutex_unlock(&mdev->dbg.lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(result);

static int counters_show(struct seq_file *m, void *v)
{
	struct vmig_device *mdev = m->private;
	const struct vmig_profile *p;
	struct vmig_counters c;
	const char *why;

	vmig_get_counters(mdev, &c);
	seq_printf(m, "trap_mode: %s\nprofile: %s\n",
		   vmig_trap_mode_name(READ_ONCE(mdev->trap_mode)),
		   vmig_profile_name(mdev));
	why = vmig_mig_unsupported_dev(mdev);
	seq_printf(m, "migration: %s\n", why ? why : "offered");
	seq_printf(m, "trapped_reads: %llu\ntrapped_writes: %llu\n",
		   c.trapped_reads, c.trapped_writes);
	seq_printf(m, "log_entries: %llu\nlog_overflows: %llu\nlog_next_seq: %llu\nlog_lossy: %d\n",
		   c.log_entries, c.log_overflows, c.log_next_seq, c.log_lossy);
	seq_printf(m, "regfile_entries: %llu\nregfile_overflows: %llu\n",
		   c.regfile_entries, c.regfile_overflows);
	seq_printf(m, "log_bytes_per_entry: %zu\n", VMIG_REGLOG_BYTES_PER_ENTRY);
	mutex_lock(vmig_dev_set_lock(mdev));
	p = mdev->profile;
	if (p->ops && p->ops->counters_show)
		p->ops->counters_show(mdev, m);
	mutex_unlock(vmig_dev_set_lock(mdev));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(counters);

#define LOG_CHUNK	64

static int reglog_show(struct seq_file *m, void *v)
{
	struct vmig_device *mdev = m->private;
	struct vmig_reglog_entry *e;
	u64 seq = 0, next;
	int n, i;

	e = kmalloc_array(LOG_CHUNK, sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	do {
		n = vmig_reglog_read(mdev, seq, e, LOG_CHUNK, &next);
		for (i = 0; i < n; i++)
			seq_printf(m, "%llu %llu %u %#x %u %#llx\n", e[i].seq,
				   e[i].ts_ns, e[i].bar, e[i].offset,
				   e[i].width, e[i].value);
		seq = next;
	} while (n == LOG_CHUNK);
	kfree(e);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(reglog);

void vmig_debugfs_add(struct vmig_device *mdev)
{
	struct dentry *d;

	mutex_init(&mdev->dbg.lock);
	if (IS_ERR_OR_NULL(vmig_dbg_root))
		return;
	d = debugfs_create_dir(pci_name(mdev->core.pdev), vmig_dbg_root);
	mdev->dbg.dir = d;
	debugfs_create_file("ctl", 0200, d, mdev, &ctl_fops);
	debugfs_create_file("snapshot", 0600, d, mdev, &snapshot_fops);
	debugfs_create_file("result", 0400, d, mdev, &result_fops);
	debugfs_create_file("counters", 0400, d, mdev, &counters_fops);
	debugfs_create_file("reglog", 0400, d, mdev, &reglog_fops);
}

void vmig_debugfs_remove(struct vmig_device *mdev)
{
	debugfs_remove_recursive(mdev->dbg.dir);
	mdev->dbg.dir = NULL;
	set_blob(mdev, NULL, 0);
	mutex_destroy(&mdev->dbg.lock);
}

void vmig_debugfs_init(void)
{
	vmig_dbg_root = debugfs_create_dir("vfio-mig", NULL);
	debugfs_create_u32("worker_delay_ms", 0600, vmig_dbg_root,
			   &vmig_worker_delay_ms);
	debugfs_create_bool("queue_doorbells", 0600, vmig_dbg_root,
			    &vmig_queue_doorbells);
	debugfs_create_u32("reset_delay_ms", 0600, vmig_dbg_root,
			   &vmig_reset_delay_ms);
	debugfs_create_u32("unmap_grace_ms", 0600, vmig_dbg_root,
			   &vmig_unmap_grace_ms);
}

void vmig_debugfs_exit(void)
{
	debugfs_remove_recursive(vmig_dbg_root);
}
