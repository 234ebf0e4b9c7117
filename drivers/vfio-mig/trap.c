// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: BAR trapping.
 *
 * In trap modes sparse and all, BAR accesses through the device fd take
 * vfio-mig's own path (the VMM's bytes copied in and out outside the
 * device's locks, then vfio-pci's checks and pieces, trapped_rw()), and
 * every completed write is recorded (reglog.c, regfile.c). Mode all
 * hides the BAR mmap; mode sparse carves the profile's trapped pages out
 * of it with the sparse-mmap capability and refuses to mmap them (and
 * refuses ioeventfds on them, which would bypass the log). Mode none is
 * vfio-pci.
 *
 * The mode is chosen while no VMM has the device open: the hot paths read
 * it without a lock because it cannot change while they run.
 */
#include <linux/io.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/percpu.h>
#include <linux/percpu-rwsem.h>
#include <linux/pm_runtime.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "dirty.h"
#include "lm.h"
#include "netlink.h"
#include "profile.h"
#include "reglog.h"
#include "regstate.h"
#include "shadow.h"
#include "trap.h"
#include "vfio_mig.h"

static const char * const trap_mode_names[] = {
	[VMIG_TRAP_NONE] = "none",
	[VMIG_TRAP_SPARSE] = "sparse",
	[VMIG_TRAP_ALL] = "all",
};

const char *vmig_trap_mode_name(enum vmig_trap_mode mode)
{
	if (mode > VMIG_TRAP_ALL)
		return "?";
	return trap_mode_names[mode];
}

int vmig_trap_mode_parse(const char *s)
{
	int i = sysfs_match_string(trap_mode_names, s);

	return i < 0 ? -EINVAL : i;
}

static int default_trap_mode = VMIG_TRAP_NONE;

static int trap_mode_param_set(const char *val, const struct kernel_param *kp)
{
	int mode = vmig_trap_mode_parse(val);

	if (mode < 0)
		return mode;
	WRITE_ONCE(default_trap_mode, mode);
	return 0;
}

static int trap_mode_param_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n",
			  vmig_trap_mode_name(READ_ONCE(default_trap_mode)));
}

static const struct kernel_param_ops trap_mode_param_ops = {
	.set = trap_mode_param_set,
	.get = trap_mode_param_get,
};

module_param_cb(trap_mode, &trap_mode_param_ops, NULL, 0644);
MODULE_PARM_DESC(trap_mode,
		 "Trap mode of newly bound devices: none, sparse or all (default: none)");

enum vmig_trap_mode vmig_default_trap_mode(void)
{
	return READ_ONCE(default_trap_mode);
}

int vmig_settings_lock(struct vmig_device *mdev)
{
	int ret = -EBUSY;

	mutex_lock(vmig_dev_set_lock(mdev));
	/* a running dirty log's feeder was chosen for the current settings */
	if (!mdev->open)
		ret = vmig_dirty_freeze(mdev);
	if (ret)
		mutex_unlock(vmig_dev_set_lock(mdev));
	return ret;
}

void vmig_settings_unlock(struct vmig_device *mdev)
{
	vmig_dirty_thaw(mdev);
	mutex_unlock(vmig_dev_set_lock(mdev));
}

int vmig_set_trap_mode(struct vmig_device *mdev, enum vmig_trap_mode mode)
{
	int ret;

	if (mode > VMIG_TRAP_ALL)
		return -EINVAL;
	ret = vmig_settings_lock(mdev);
	if (!ret) {
		WRITE_ONCE(mdev->trap_mode, mode);
		vmig_settings_unlock(mdev);
	}
	return ret;
}

static bool is_bar(unsigned int index)
{
	return index <= VFIO_PCI_BAR5_REGION_INDEX;
}

/*
 * May the VMM access a memory BAR now? vfio-pci's own test: the command
 * register as the VMM wrote it, and the power state.
 */
static bool vmm_memory_enabled(struct vfio_pci_core_device *core)
{
	u16 cmd = le16_to_cpup((__le16 *)&core->vconfig[PCI_COMMAND]);

	return (__force int)core->pdev->current_state <
	       (__force int)PCI_D3hot &&
	       (core->pdev->no_command_memory || (cmd & PCI_COMMAND_MEMORY));
}

/* vfio-pci's test for an access to BAR @pos, for the shadow's accesses. */
static bool vmm_may_access(struct vmig_device *mdev, loff_t pos)
{
	unsigned int bar = VFIO_PCI_OFFSET_TO_INDEX(pos);

	return !(pci_resource_flags(mdev->core.pdev, bar) & IORESOURCE_MEM) ||
	       vmm_memory_enabled(&mdev->core);
}

/* One piece of a VMM's access, as vfio-pci would issue it. */
/*
 * One piece of the VMM's access; a write is recorded before memory_lock
 * goes, so that a reset (which takes it for write and records its marker
 * under it, vmig_reset_done()) never falls between the write and its
 * record. *@overflow: the record overflowed the log.
 */
static int vmm_piece(struct vmig_device *mdev, bool mem, u8 bar, u64 at,
		     u8 w, u64 *v, bool write, bool *overflow)
{
	struct vfio_pci_core_device *core = &mdev->core;
	void __iomem *io = mdev->bar_va[bar] + at;

	if (mem) {
		down_read(&core->memory_lock);
		if (!vmm_memory_enabled(core)) {
			up_read(&core->memory_lock);
			return -EIO;
		}
	}
	if (write && w == 4)
		iowrite32(*v, io);
	else if (write && w == 2)
		iowrite16(*v, io);
	else if (write)
		iowrite8(*v, io);
	else if (w == 4)
		*v = ioread32(io);
	else if (w == 2)
		*v = ioread16(io);
	else
		*v = ioread8(io);
	if (write)
		*overflow = vmig_record_write(&mdev->rs, bar, at, w, *v);
	if (mem)
		up_read(&core->memory_lock);
	return 0;
}

/*
 * A trapped BAR access that reaches the device, from or into the trap
 * path's copy of the VMM's bytes: a write is written and recorded from
 * that one copy (vfio_pci_core_write() would fetch the user's buffer
 * again, and a VMM thread changing it in between would make the log lie).
 * Otherwise as vfio-pci: the access is clipped to the BAR, split into
 * naturally aligned pieces of at most 4 bytes, refused (-EIO) while the
 * VMM has memory decoding off; in the MSI-X table writes are dropped and
 * reads return all ones. A write that fails part way returns what it
 * wrote (those pieces reached the device); a read fails whole, as
 * vfio-pci's does.
 */
static ssize_t trapped_rw(struct vmig_device *mdev, u8 *buf, size_t count,
			  loff_t fpos, bool write)
{
	struct vfio_pci_core_device *core = &mdev->core;
	struct pci_dev *pdev = core->pdev;
	u8 bar = VFIO_PCI_OFFSET_TO_INDEX(fpos);
	u64 off = fpos & VFIO_PCI_OFFSET_MASK;
	u64 xs = U64_MAX, xe = U64_MAX, end, at, v;
	void __iomem *io = mdev->bar_va[bar];
	bool mem, overflow = false;
	size_t pos, fill, w;
	int ret = 0;

	end = pci_resource_len(pdev, bar);
	if (!pci_resource_start(pdev, bar) || !io || off >= end)
		return -EINVAL;
	count = min_t(u64, count, end - off);
	mem = pci_resource_flags(pdev, bar) & IORESOURCE_MEM;
	if (bar == core->msix_bar) {
		xs = core->msix_offset;
		xe = xs + core->msix_size;
	}
	if (pm_runtime_resume_and_get(&pdev->dev))
		return -EIO;
	for (pos = 0; pos < count; pos += w) {
		at = off + pos;
		fill = count - pos;
		if (at >= xs && at < xe) {	/* vfio-pci's behaviour */
			w = min_t(u64, fill, xe - at);
			if (!write)
				memset(buf + pos, 0xff, w);
			continue;
		}
		if (at < xs)
			fill = min_t(u64, fill, xs - at);
		w = vmig_piece_width(at, fill);
		v = write ? vmig_piece_value(buf + pos, w) : 0;
		ret = vmm_piece(mdev, mem, bar, at, w, &v, write, &overflow);
		if (ret)
			break;
		if (!write) {
			__le64 le = cpu_to_le64(v);

			memcpy(buf + pos, &le, w);
		} else if (overflow) {
			vmig_nl_notify_overflow(mdev);
			overflow = false;
		}
	}
	pm_runtime_put(&pdev->dev);
	return pos && (write || !ret) ? pos : ret;
}

ssize_t vmig_trapped_read(struct vmig_device *mdev, u8 *buf, size_t count,
			  loff_t pos)
{
	return trapped_rw(mdev, buf, count, pos, false);
}

/*
 * One chunk of a trapped access, under the device's access lock; @first:
 * the access's first (a read the device serves is counted once).
 */
static ssize_t trap_chunk(struct vmig_device *mdev, u8 *buf, size_t n,
			  loff_t pos, bool write, bool first)
{
	const struct vmig_profile *p = mdev->profile;
	unsigned int index = VFIO_PCI_OFFSET_TO_INDEX(pos);
	u64 off = pos & VFIO_PCI_OFFSET_MASK;

	if (unlikely(mdev->shadow.sh)) {
		if (!vmm_may_access(mdev, pos))
			return -EIO;
		return write ? vmig_shadow_write(mdev, buf, n, pos) :
			       vmig_shadow_read(mdev, buf, n, pos);
	}
	if (!write && first)
		this_cpu_inc(*mdev->trapped_reads);
	if (!vmig_doorbell_hit(p->doorbell, index, off, n))
		return trapped_rw(mdev, buf, n, pos, write);
	/* The DMA engine's registers: held in P2P, fed to the dirty log. */
	if (write)
		return vmig_doorbell_write(mdev, buf, n, pos);
	/* a start held while the guest runs reads as running */
	if ((READ_ONCE(mdev->mig.dma.held) ||
	     READ_ONCE(mdev->mig.dma.answers)) && vmm_may_access(mdev, pos))
		return vmig_doorbell_read(mdev, buf, n, pos);
	return trapped_rw(mdev, buf, n, pos, false);
}

/*
 * The VMM's bytes for a write, outside any lock: a copy of constant size
 * for a single register (a doorbell write comes several times per command,
 * and a copy of variable size pays the hardened usercopy checks).
 */
static int vmm_bytes_in(u8 *kbuf, const char __user *buf, size_t n)
{
	switch (n) {
	case 1:
		return copy_from_user(kbuf, buf, 1) ? -EFAULT : 0;
	case 2:
		return copy_from_user(kbuf, buf, 2) ? -EFAULT : 0;
	case 4:
		return copy_from_user(kbuf, buf, 4) ? -EFAULT : 0;
	case 8:
		return copy_from_user(kbuf, buf, 8) ? -EFAULT : 0;
	}
	return copy_from_user(kbuf, buf, n) ? -EFAULT : 0;
}

/* The same for a read's bytes, after the lock. */
static int vmm_bytes_out(char __user *buf, const u8 *kbuf, size_t n)
{
	switch (n) {
	case 1:
		return copy_to_user(buf, kbuf, 1) ? -EFAULT : 0;
	case 2:
		return copy_to_user(buf, kbuf, 2) ? -EFAULT : 0;
	case 4:
		return copy_to_user(buf, kbuf, 4) ? -EFAULT : 0;
	case 8:
		return copy_to_user(buf, kbuf, 8) ? -EFAULT : 0;
	}
	return copy_to_user(buf, kbuf, n) ? -EFAULT : 0;
}

/*
 * In trap modes sparse and all every BAR access holds the device's access
 * lock for read, so that engaging or handing back a shadow (shadow.c)
 * finds none in flight; while a shadow is engaged, it serves them. The
 * VMM's buffer is copied in before the lock and out after it, in chunks
 * (VMIG_TRAP_CHUNK): a VMM whose buffer faults slowly (userfaultfd, FUSE)
 * holds nothing while it does, as vfio-pci copies outside its
 * memory_lock.
 */
static ssize_t trap_rw(struct vmig_device *mdev, char __user *rbuf,
		       const char __user *wbuf, size_t count, loff_t *ppos)
{
	bool write = wbuf;
	u8 kbuf[VMIG_TRAP_CHUNK];
	loff_t pos = *ppos;
	size_t done = 0, n;
	ssize_t ret = 0;

	while (done < count) {
		if (done && fatal_signal_pending(current))
			break;
		/* chunks end 4-byte aligned: pieces split as the whole's */
		n = min_t(size_t, count - done,
			  sizeof(kbuf) - (pos & 3));
		if (write && vmm_bytes_in(kbuf, wbuf + done, n)) {
			ret = -EFAULT;
			break;
		}
		percpu_down_read(&mdev->shadow.sem);
		ret = trap_chunk(mdev, kbuf, n, pos, write, !done);
		percpu_up_read(&mdev->shadow.sem);
		if (ret <= 0)
			break;
		if (!write && vmm_bytes_out(rbuf + done, kbuf, ret)) {
			ret = -EFAULT;
			break;
		}
		done += ret;
		pos += ret;
		if (ret < n)	/* the end of the BAR */
			break;
	}
	if (!done || (!write && ret < 0))
		return ret;
	*ppos = pos;
	return done;
}

ssize_t vmig_read(struct vfio_device *vdev, char __user *buf, size_t count,
		  loff_t *ppos)
{
	struct vmig_device *mdev = to_vmig(vdev);

	if (!is_bar(VFIO_PCI_OFFSET_TO_INDEX(*ppos)) ||
	    READ_ONCE(mdev->trap_mode) == VMIG_TRAP_NONE)
		return vfio_pci_core_read(vdev, buf, count, ppos);
	return trap_rw(mdev, buf, NULL, count, ppos);
}

ssize_t vmig_write(struct vfio_device *vdev, const char __user *buf,
		   size_t count, loff_t *ppos)
{
	struct vmig_device *mdev = to_vmig(vdev);
	unsigned int index = VFIO_PCI_OFFSET_TO_INDEX(*ppos);
	ssize_t ret;

	if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
		/*
		 * An FLR or command register write of the VMM's does not
		 * land amid a shadow's engage or hand-back.
		 */
		down_read(&mdev->shadow.move_lock);
		ret = vfio_pci_core_write(vdev, buf, count, ppos);
		up_read(&mdev->shadow.move_lock);
		return ret;
	}
	if (!is_bar(index) || READ_ONCE(mdev->trap_mode) == VMIG_TRAP_NONE)
		return vfio_pci_core_write(vdev, buf, count, ppos);
	return trap_rw(mdev, NULL, buf, count, ppos);
}

int vmig_mmap(struct vfio_device *vdev, struct vm_area_struct *vma)
{
	struct vmig_device *mdev = to_vmig(vdev);
	unsigned int index = vma->vm_pgoff >>
			     (VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT);
	enum vmig_trap_mode mode = READ_ONCE(mdev->trap_mode);
	u64 start;

	if (is_bar(index) && mode != VMIG_TRAP_NONE) {
		if (mode == VMIG_TRAP_ALL || vma->vm_end < vma->vm_start)
			return -EINVAL;
		start = (u64)(vma->vm_pgoff &
			      ((1UL << (VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT)) - 1))
			<< PAGE_SHIFT;
		if (vmig_profile_traps(mdev, index, start,
				       vma->vm_end - vma->vm_start))
			return -EINVAL;
	}
	return vfio_pci_core_mmap(vdev, vma);
}

/* The parts of BAR @index (of @len bytes) that sparse mode leaves mmapped. */
static int sparse_areas(struct vmig_device *mdev, unsigned int index, u64 len,
			struct vfio_region_sparse_mmap_area *areas,
			unsigned int max)
{
	const struct vmig_profile *p = mdev->profile;
	unsigned int i, n = 0;
	u64 cur = 0;

	for (i = 0; i < p->nr_trap; i++) {
		const struct vmig_trap_range *t = &p->trap[i];
		u64 ts = ALIGN_DOWN((u64)t->offset, PAGE_SIZE);
		u64 te = ALIGN((u64)t->offset + t->size, PAGE_SIZE);

		if (t->bar != index || ts >= len)
			continue;
		if (ts > cur) {
			if (n == max)
				return -E2BIG;
			areas[n].offset = cur;
			areas[n++].size = ts - cur;
		}
		cur = max(cur, te);
	}
	if (cur < len) {
		if (n == max)
			return -E2BIG;
		areas[n].offset = cur;
		areas[n++].size = len - cur;
	}
	return n;
}

#define MAX_SPARSE_AREAS	16

static int add_sparse_caps(struct vmig_device *mdev, unsigned int index,
			   u64 len, struct vfio_info_cap *caps, bool *mmap)
{
	struct vfio_region_info_cap_sparse_mmap *sparse;
	struct vfio_info_cap_header msix = {
		.id = VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
		.version = 1,
	};
	size_t size = struct_size(sparse, areas, MAX_SPARSE_AREAS);
	int n, ret;

	*mmap = false;
	if (!mdev->profile->nr_trap || !mdev->core.bar_mmap_supported[index])
		return 0;
	sparse = kzalloc(size, GFP_KERNEL);
	if (!sparse)
		return -ENOMEM;
	n = sparse_areas(mdev, index, len, sparse->areas, MAX_SPARSE_AREAS);
	ret = n;
	if (n <= 0)
		goto out;
	sparse->header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
	sparse->header.version = 1;
	sparse->nr_areas = n;
	ret = vfio_info_add_capability(caps, &sparse->header,
				       struct_size(sparse, areas, n));
	if (!ret && index == mdev->core.msix_bar)
		ret = vfio_info_add_capability(caps, &msix, sizeof(msix));
	*mmap = !ret;
out:
	kfree(sparse);
	return ret < 0 ? ret : 0;
}

/* VFIO_DEVICE_GET_REGION_INFO of a BAR in a trap mode. */
static int bar_region_info(struct vmig_device *mdev,
			   struct vfio_region_info __user *arg,
			   struct vfio_region_info *info)
{
	unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_info_cap caps = { .buf = NULL, .size = 0 };
	struct pci_dev *pdev = mdev->core.pdev;
	bool mmap = false;
	int ret = 0;

	info->offset = VFIO_PCI_INDEX_TO_OFFSET(info->index);
	info->size = pci_resource_len(pdev, info->index);
	info->flags = 0;
	if (info->size) {
		info->flags = VFIO_REGION_INFO_FLAG_READ |
			      VFIO_REGION_INFO_FLAG_WRITE;
		if (mdev->trap_mode == VMIG_TRAP_SPARSE)
			ret = add_sparse_caps(mdev, info->index, info->size,
					      &caps, &mmap);
		if (ret)
			return ret;
		if (mmap)
			info->flags |= VFIO_REGION_INFO_FLAG_MMAP;
	}
	if (caps.size) {
		info->flags |= VFIO_REGION_INFO_FLAG_CAPS;
		if (info->argsz < sizeof(*info) + caps.size) {
			info->argsz = sizeof(*info) + caps.size;
			info->cap_offset = 0;
		} else {
			vfio_info_cap_shift(&caps, sizeof(*info));
			if (copy_to_user(arg + 1, caps.buf, caps.size))
				ret = -EFAULT;
			info->cap_offset = sizeof(*info);
		}
		kfree(caps.buf);
	}
	if (!ret && copy_to_user(arg, info, minsz))
		ret = -EFAULT;
	return ret;
}

/* A positive return: not ours, let vfio_pci_core handle the ioctl. */
static int trap_ioctl(struct vmig_device *mdev, unsigned int cmd,
		      void __user *uarg)
{
	if (cmd == VFIO_DEVICE_GET_REGION_INFO) {
		unsigned long minsz = offsetofend(struct vfio_region_info,
						  offset);
		struct vfio_region_info info;

		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz || !is_bar(info.index))
			return 1;
		return bar_region_info(mdev, uarg, &info);
	}
	if (cmd == VFIO_DEVICE_IOEVENTFD) {
		unsigned long minsz = offsetofend(struct vfio_device_ioeventfd,
						  fd);
		struct vfio_device_ioeventfd ev;
		unsigned int index;
		u64 off;

		if (copy_from_user(&ev, uarg, minsz))
			return -EFAULT;
		index = VFIO_PCI_OFFSET_TO_INDEX(ev.offset);
		off = ev.offset & VFIO_PCI_OFFSET_MASK;
		/* An ioeventfd writes the BAR behind the log's back. */
		if (ev.fd >= 0 && is_bar(index) &&
		    (mdev->trap_mode == VMIG_TRAP_ALL ||
		     vmig_profile_traps(mdev, index, off, 8)))
			return -EINVAL;
	}
	return 1;
}

long vmig_ioctl(struct vfio_device *vdev, unsigned int cmd,
		unsigned long arg)
{
	struct vmig_device *mdev = to_vmig(vdev);
	long ret;

	/* A source committed in STOP never runs again, a reset would run it. */
	if ((cmd == VFIO_DEVICE_RESET || cmd == VFIO_DEVICE_PCI_HOT_RESET) &&
	    vmig_mig_stay_stopped(mdev))
		return -EPERM;
	if (READ_ONCE(mdev->trap_mode) != VMIG_TRAP_NONE) {
		ret = trap_ioctl(mdev, cmd, (void __user *)arg);
		if (ret <= 0)
			return ret;
	}
	if (cmd == VFIO_DEVICE_RESET) {
		/*
		 * No hand-back in the middle of the device's reset; an
		 * engaged shadow's model follows it (vmig_shadow_device_reset()
		 * from the PCI core's reset_done).
		 */
		down_read(&mdev->shadow.move_lock);
		ret = vfio_pci_core_ioctl(vdev, cmd, arg);
		up_read(&mdev->shadow.move_lock);
	} else {
		ret = vfio_pci_core_ioctl(vdev, cmd, arg);
	}
	/* the reset's marker is in the log already (reset_done) */
	if (!ret && cmd == VFIO_DEVICE_RESET)
		vmig_mig_reset_sync(mdev);
	/* the eventfds a shadow signals */
	if (!ret && cmd == VFIO_DEVICE_SET_IRQS)
		vmig_shadow_set_irqs(mdev, (void __user *)arg);
	return ret;
}

/* ---- in-kernel BAR access ---- */

void vmig_bars_map(struct vmig_device *mdev)
{
	struct pci_dev *pdev = mdev->core.pdev;
	int i;

	lockdep_assert_held(vmig_dev_set_lock(mdev));
	for (i = 0; i < PCI_STD_NUM_BARS; i++)
		if (pci_resource_len(pdev, i) &&
		    (pci_resource_flags(pdev, i) & (IORESOURCE_MEM | IORESOURCE_IO)))
			mdev->bar_va[i] = pci_iomap(pdev, i, 0);
}

void vmig_bars_unmap(struct vmig_device *mdev)
{
	int i;

	lockdep_assert_held(vmig_dev_set_lock(mdev));
	for (i = 0; i < PCI_STD_NUM_BARS; i++) {
		if (mdev->bar_va[i])
			pci_iounmap(mdev->core.pdev, mdev->bar_va[i]);
		mdev->bar_va[i] = NULL;
	}
}

/*
 * Does the function decode its BAR's space? Caller holds core->memory_lock.
 * The VMM's view first (vmm_memory_enabled(), as vfio-pci's own BAR path:
 * a trapped access does not pay a config read, and a VF, which has no
 * memory enable of its own, decodes). Otherwise the device's register
 * decides, for the accesses the module makes while it opened decode
 * itself (vmig_decode_open()) with the VMM's decode off.
 */
static bool decode_on(struct vfio_pci_core_device *core, bool mem)
{
	struct pci_dev *pdev = core->pdev;
	u16 cmd;

	lockdep_assert_held(&core->memory_lock);
	if (pdev->current_state != PCI_D0)
		return false;
	if (mem && vmm_memory_enabled(core))
		return true;
	pci_read_config_word(pdev, PCI_COMMAND, &cmd);
	return cmd & (mem ? PCI_COMMAND_MEMORY : PCI_COMMAND_IO);
}

static int bar_access(struct vmig_device *mdev, u8 bar, u32 off, u8 width,
		      u64 *val, bool write, bool record)
{
	bool overflow = false;
	struct vfio_pci_core_device *core = &mdev->core;
	struct pci_dev *pdev = core->pdev;
	void __iomem *io;
	int ret = 0;
	bool mem;

	if (bar >= PCI_STD_NUM_BARS || !mdev->bar_va[bar])
		return -ENODEV;
	mem = pci_resource_flags(pdev, bar) & IORESOURCE_MEM;
	if ((u64)off + width > pci_resource_len(pdev, bar) ||
	    !IS_ALIGNED(off, width))
		return -ERANGE;
	if (vmig_bar_excluded(mdev, bar, off, width))
		return -EPERM;
	io = mdev->bar_va[bar] + off;

	down_read(&core->memory_lock);
	if (!decode_on(core, mem)) {
		ret = -EIO;
		goto out;
	}
	switch (width) {
	case 1:
		if (write)
			iowrite8(*val, io);
		else
			*val = ioread8(io);
		break;
	case 2:
		if (write)
			iowrite16(*val, io);
		else
			*val = ioread16(io);
		break;
	case 4:
		if (write)
			iowrite32(*val, io);
		else
			*val = ioread32(io);
		break;
#ifdef readq
	case 8:
		if (!mem)
			ret = -EINVAL;
		else if (write)
			writeq(*val, io);
		else
			*val = readq(io);
		break;
#endif
	default:
		ret = -EINVAL;
	}
	/* under memory_lock, as vmm_piece() records the VMM's own writes */
	if (!ret && record)
		overflow = vmig_record_write(&mdev->rs, bar, off, width, *val);
out:
	up_read(&core->memory_lock);
	if (overflow)
		vmig_nl_notify_overflow(mdev);
	return ret;
}

/*
 * A VMM may leave the device's decoding off while it drives the migration
 * states: QEMU opens the device with PCI_COMMAND clear and moves it to
 * RUNNING_P2P (and, as a target, to RESUMING) before the guest's firmware
 * has enabled it. The driver's own accesses (capture on save, restore on
 * load, the P2P quiesce) then open a decode window: the physical enable
 * bits for the BAR types the function has are set for the window, with a
 * runtime PM reference, and put back on close to what the VMM last wrote
 * (vconfig, which is also what vfio-pci's mmap faults and the VMM's config
 * reads see, so the VMM notices nothing). Both toggles take memory_lock
 * for writing, as vfio-pci's own PCI_COMMAND writes do; the accesses in
 * between take it for reading, so a VMM's PCI_COMMAND write during the
 * window takes effect at once and the window's close keeps it. A
 * trapped doorbell write of the VMM's that arrives during the window
 * reaches the device although the VMM turned decoding off (the window is
 * open only during migration arcs, with the vCPUs stopped or held). No
 * BAR access of the caller's may be in progress. Returns the bits the
 * window set (0: none), for vmig_decode_close().
 */
u16 vmig_decode_open(struct vmig_device *mdev)
{
	struct vfio_pci_core_device *core = &mdev->core;
	struct pci_dev *pdev = core->pdev;
	u16 cmd, want = 0;
	int i;

	for (i = 0; i < PCI_STD_NUM_BARS; i++) {
		if (!mdev->bar_va[i])
			continue;
		if (pci_resource_flags(pdev, i) & IORESOURCE_MEM)
			want |= PCI_COMMAND_MEMORY;
		else if (pci_resource_flags(pdev, i) & IORESOURCE_IO)
			want |= PCI_COMMAND_IO;
	}
	if (!want || pm_runtime_resume_and_get(&pdev->dev))
		return 0;
	down_write(&core->memory_lock);
	pci_read_config_word(pdev, PCI_COMMAND, &cmd);
	want &= ~cmd;
	if (want)
		pci_write_config_word(pdev, PCI_COMMAND, cmd | want);
	up_write(&core->memory_lock);
	if (!want)
		pm_runtime_put(&pdev->dev);
	return want;
}

void vmig_decode_close(struct vmig_device *mdev, u16 opened)
{
	struct vfio_pci_core_device *core = &mdev->core;
	u16 cmd, vmm;

	if (!opened)
		return;
	down_write(&core->memory_lock);
	vmm = le16_to_cpup((__le16 *)&core->vconfig[PCI_COMMAND]);
	pci_read_config_word(core->pdev, PCI_COMMAND, &cmd);
	pci_write_config_word(core->pdev, PCI_COMMAND,
			      (cmd & ~opened) | (vmm & opened));
	up_write(&core->memory_lock);
	pm_runtime_put(&core->pdev->dev);
}

int vmig_bar_read(struct vmig_device *mdev, u8 bar, u32 off, u8 width,
		  u64 *val)
{
	return bar_access(mdev, bar, off, width, val, false, false);
}

int vmig_bar_write(struct vmig_device *mdev, u8 bar, u32 off, u8 width,
		   u64 val)
{
	return bar_access(mdev, bar, off, width, &val, true, false);
}

int vmig_bar_write_recorded(struct vmig_device *mdev, u8 bar, u32 off,
			    u8 width, u64 val)
{
	return bar_access(mdev, bar, off, width, &val, true, true);
}

/* ---- sysfs: /sys/bus/pci/devices/BDF/vfio_mig/{trap_mode,profile,migration} ---- */

static struct vmig_device *dev_to_vmig(struct device *dev)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(dev);

	return to_vmig(&core->vdev);
}

static ssize_t trap_mode_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  vmig_trap_mode_name(READ_ONCE(dev_to_vmig(dev)->trap_mode)));
}

static ssize_t trap_mode_store(struct device *dev,
			       struct device_attribute *attr, const char *buf,
			       size_t count)
{
	int mode = vmig_trap_mode_parse(buf);
	int ret;

	if (mode < 0)
		return mode;
	ret = vmig_set_trap_mode(dev_to_vmig(dev), mode);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(trap_mode);

static ssize_t profile_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%s\n", vmig_profile_name(dev_to_vmig(dev)));
}

static ssize_t profile_store(struct device *dev, struct device_attribute *attr,
			     const char *buf, size_t count)
{
	char name[VMIG_PROFILE_NAME_MAX];
	int ret;

	if (count >= sizeof(name))
		return -EINVAL;
	memcpy(name, buf, count);
	name[count] = 0;
	name[strcspn(name, "\n")] = 0;
	ret = vmig_set_profile(dev_to_vmig(dev), name);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(profile);

/* "offered", or why the device offers no VFIO migration (lm.c). */
static ssize_t migration_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	const char *why;

	why = vmig_mig_unsupported_dev(dev_to_vmig(dev));
	return sysfs_emit(buf, "%s\n", why ? why : "offered");
}
static DEVICE_ATTR_RO(migration);

static struct attribute *vmig_attrs[] = {
	&dev_attr_trap_mode.attr,
	&dev_attr_profile.attr,
	&dev_attr_migration.attr,
	NULL,
};

static const struct attribute_group vmig_attr_group = {
	.name = "vfio_mig",
	.attrs = vmig_attrs,
};

const struct attribute_group *vmig_dev_groups[] = {
	&vmig_attr_group,
	NULL,
};
