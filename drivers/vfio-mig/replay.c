// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the replay engine, which brings a second device (the target,
 * bound to vfio-mig and open by its VMM) to a snapshot's register state.
 *
 * It refuses a target whose identity differs from the source's beyond the
 * profile's allow-list, or whose profile differs. It then lets the profile
 * restore in its own order, or replays the register file and the compacted
 * log tail in (profile order, sequence) order: registers of class state
 * get their last value; triggers only if the profile says so; read-only
 * and volatile registers never. With a lossy log, only the register file is
 * replayed and the report says so. Every failing register is reported.
 * The source device is never touched: replay works from the snapshot.
 */
#include <linux/slab.h>
#include <linux/sort.h>

#include "profile.h"
#include "reglog.h"
#include "replay.h"
#include "snapshot.h"
#include "trap.h"
#include "vfio_mig.h"

void vmig_report_error(struct vmig_replay_report *r, u8 bar, u32 offset,
		       u8 width, int err)
{
	if (r->nr_errors < VMIG_REPLAY_MAX_ERRORS) {
		struct vmig_replay_error *e = &r->errors[r->nr_errors];

		e->bar = bar;
		e->offset = offset;
		e->width = width;
		e->err = err;
	}
	r->nr_errors++;
}

int vmig_check_compat(struct vmig_device *dst,
		      const struct vmig_identity *src_id,
		      const char *src_profile, struct vmig_replay_report *rep)
{
	const struct vmig_profile *p = dst->profile;
	struct vmig_identity id;

	if (strcmp(src_profile, p->name)) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "profile mismatch: source %s, target %s",
			 src_profile, p->name);
		return -EINVAL;
	}
	vmig_identity_of(dst->core.pdev, &id);
	return vmig_profile_compat(p, src_id, &id, rep);
}

struct step {
	u64 seq;
	u64 value;
	u32 offset;
	u8 bar;
	u8 width;
	u8 order;
	u8 verify;
};

static int cmp_step(const void *a, const void *b)
{
	const struct step *x = a, *y = b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Should @e be replayed onto @dst? Fills @st if so. */
static bool plan_one(struct vmig_device *dst, const struct vmig_profile *p,
		     const struct vmig_reglog_entry *e, struct step *st)
{
	const struct vmig_reg_desc *r = vmig_profile_reg(p, e->bar, e->offset,
							 e->width);
	u8 class = r ? r->class : p->default_class;

	if (vmig_bar_excluded(dst, e->bar, e->offset, e->width))
		return false;
	if (class == VMIG_REG_TRIGGER &&
	    !(p->ops && p->ops->replay_trigger &&
	      p->ops->replay_trigger(dst, e)))
		return false;
	if (class != VMIG_REG_STATE && class != VMIG_REG_TRIGGER)
		return false;
	st->seq = e->seq;
	st->value = e->value;
	st->offset = e->offset;
	st->bar = e->bar;
	st->width = e->width;
	st->order = r ? r->order : 0;
	st->verify = r && (r->flags & VMIG_REGF_VERIFY);
	return true;
}

/* Process context (the caller holds the state mutex): may sleep. */
static int replay_registers(struct vmig_device *dst,
			    const struct vmig_profile *p,
			    const struct vmig_snapshot *s,
			    struct vmig_replay_report *rep)
{
	bool use_tail = !rep->regfile_only;
	struct vmig_reglog_entry e = {};
	struct step *plan;
	u32 i, n = 0;

	lockdep_assert_held(&dst->mig.state_mutex);
	plan = kvcalloc((size_t)s->nr_regfile + s->nr_tail + 1, sizeof(*plan),
			GFP_KERNEL_ACCOUNT);
	if (!plan)
		return -ENOMEM;
	/* the register file up to the tail's window, then the tail */
	for (i = 0; i < s->nr_regfile; i++) {
		if (use_tail && s->regfile[i].seq >= s->since_seq)
			continue;
		e.seq = s->regfile[i].seq;
		e.value = s->regfile[i].value;
		e.offset = s->regfile[i].offset;
		e.bar = s->regfile[i].bar;
		e.width = s->regfile[i].width;
		if (plan_one(dst, p, &e, &plan[n]))
			n++;
		else
			rep->skipped++;
	}
	for (i = 0; use_tail && i < s->nr_tail; i++) {
		if (plan_one(dst, p, &s->tail[i], &plan[n]))
			n++;
		else
			rep->skipped++;
	}
	sort(plan, n, sizeof(*plan), cmp_step, NULL);

	for (i = 0; i < n; i++) {
		const struct step *st = &plan[i];
		u64 back;
		int ret;

		ret = vmig_bar_write(dst, st->bar, st->offset, st->width,
				     st->value);
		if (!ret && st->verify) {
			ret = vmig_bar_read(dst, st->bar, st->offset,
					    st->width, &back);
			if (!ret && back != st->value)
				ret = -EIO;
		}
		if (ret)
			vmig_report_error(rep, st->bar, st->offset, st->width,
					  ret);
		else
			rep->applied++;
		/*
		 * Process context under the state mutex: a long log (up to
		 * VMIG_REGLOG_MAX entries, plus a tail of at most
		 * VMIG_SNAP_MAX_BYTES) must not hold the CPU.
		 */
		cond_resched();
	}
	kvfree(plan);
	return 0;
}

int __vmig_snapshot_replay(struct vmig_device *dst,
			   const struct vmig_snapshot *snap,
			   struct vmig_replay_report *rep, unsigned int flags)
{
	const struct vmig_profile *p = dst->profile;
	u16 window;
	int ret;

	lockdep_assert_held(&dst->mig.state_mutex);
	memset(rep, 0, sizeof(*rep));
	ret = vmig_check_compat(dst, &snap->id, snap->profile, rep);
	if (ret)
		return ret;
	rep->regfile_only = snap->flags & VMIG_SNAPF_LOG_LOSSY;
	rep->regfile_incomplete = snap->flags & VMIG_SNAPF_REGFILE_INCOMPLETE;
	if (rep->regfile_only)
		snprintf(rep->msg, sizeof(rep->msg),
			 "log lossy (%llu overflows): replayed the register file alone",
			 snap->log_overflows);
	/* the device's registers whether or not its VMM enabled decoding */
	window = vmig_decode_open(dst);
	if (p->ops && p->ops->restore) {
		struct vmig_profile_ctx ctx = {
			.mdev = dst, .src = snap, .report = rep,
			.flags = flags,
		};

		if (snap->flags & VMIG_SNAPF_DEVSTATE) {
			ctx.state = snap->devstate;
			ctx.state_len = snap->devstate_len;
			ctx.state_version = vmig_snap_state_version(snap, p);
		}
		ret = p->ops->restore(&ctx);
	} else {
		ret = replay_registers(dst, p, snap, rep);
	}
	vmig_decode_close(dst, window);
	return ret;
}

int vmig_snapshot_replay(struct vmig_device *dst,
			 const struct vmig_snapshot *snap,
			 struct vmig_replay_report *rep)
{
	int ret;

	mutex_lock(vmig_dev_set_lock(dst));
	mutex_lock(&dst->mig.state_mutex);
	if (dst->open) {
		ret = __vmig_snapshot_replay(dst, snap, rep, 0);
	} else {
		memset(rep, 0, sizeof(*rep));
		snprintf(rep->msg, sizeof(rep->msg),
			 "target %s is not open by a VMM",
			 pci_name(dst->core.pdev));
		ret = -ENODEV;
	}
	mutex_unlock(&dst->mig.state_mutex);
	mutex_unlock(vmig_dev_set_lock(dst));
	return ret;
}
