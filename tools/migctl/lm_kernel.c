// SPDX-License-Identifier: GPL-2.0
/*
 * struct lm_dev on the real kernel: the control device /dev/vfio-mig
 * (include/uapi/linux/vfio_mig_ctl.h) for states, data fds, pages and the
 * commit; the vfio_mig netlink family for identity, phases and acks
 * (multicast group "mig") and the dirty log; sysfs for the class code and
 * the BAR layout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <netlink/genl/ctrl.h>

#include <linux/vfio_mig_ctl.h>
#include <linux/vfio_mig_stream.h>

#include "lm.h"
#include "migctl.h"
#include "nl.h"
#include "nvme_pf.h"

#ifndef MIGCTL_VERSION
#define MIGCTL_VERSION "0.0.0"
#endif

struct kdev {
	int ctl;			/* /dev/vfio-mig, -1 until attached */
	int data;			/* the current data fd, or -1 */
	char bdf[WIRE_STR];
	struct migctl_nl nl;		/* requests */
	struct nl_sock *ev;		/* the "mig" multicast group */
	/* the ack being waited for */
	uint32_t want_phase, want_seq, got_result;
	bool got;
	/* the RAM ranges of that ack (-1: malformed) */
	struct wire_range ram[LM_RAM_MAX];
	int nr_ram;
	bool want_ntf;			/* the seq comes from a phase-ntf */
	/* the dirty log's generation at the last dirty-get */
	uint32_t dirty_gen;
	bool dirty_gen_known;
};

#define ERRF(d, ...) snprintf((d)->err, sizeof((d)->err), __VA_ARGS__)

static struct kdev *K(struct lm_dev *d)
{
	return d->priv;
}

void lm_local_ident(struct mig_ident *id)
{
	struct utsname u;
	unsigned int maj = 0, min = 0;

	id->proto_major = WIRE_MAJOR;
	id->proto_minor = WIRE_MINOR;
	id->stream_major = VMIG_STREAM_MAJOR;
	id->stream_minor = VMIG_STREAM_MINOR;
	id->page_size = WIRE_PAGE;
	snprintf(id->version, sizeof(id->version), "%s", MIGCTL_VERSION);
	if (!uname(&u)) {
		snprintf(id->kernel, sizeof(id->kernel), "%.63s", u.release);
		sscanf(u.release, "%u.%u", &maj, &min);
	}
	/*
	 * PRE_COPY came with 6.2; the device's own flags (dev-get mig-flags)
	 * replace this guess where the module gives them.
	 */
	id->precopy = maj > 6 || (maj == 6 && min >= 2);
}

/* ---- identity ---- */

struct ident_arg {
	struct mig_ident *id;
	bool *open;
	bool found;
};

static int take_dev(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_DEV_MAX + 1];
	struct ident_arg *a = arg;
	struct mig_ident *id = a->id;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_DEV_MAX, NULL) ||
	    !tb[VFIO_MIG_A_DEV_BDF])
		return NL_SKIP;
	a->found = true;
	if (tb[VFIO_MIG_A_DEV_VENDOR])
		id->vendor = nla_get_u16(tb[VFIO_MIG_A_DEV_VENDOR]);
	if (tb[VFIO_MIG_A_DEV_DEVICE])
		id->device = nla_get_u16(tb[VFIO_MIG_A_DEV_DEVICE]);
	if (tb[VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR])
		id->subvendor = nla_get_u16(tb[VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR]);
	if (tb[VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE])
		id->subdevice = nla_get_u16(tb[VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE]);
	if (tb[VFIO_MIG_A_DEV_REVISION])
		id->revision = nla_get_u8(tb[VFIO_MIG_A_DEV_REVISION]);
	if (tb[VFIO_MIG_A_DEV_TRAP_MODE])
		id->trap_mode = nla_get_u32(tb[VFIO_MIG_A_DEV_TRAP_MODE]);
	if (tb[VFIO_MIG_A_DEV_PROFILE])
		snprintf(id->profile, sizeof(id->profile), "%s",
			 nla_get_string(tb[VFIO_MIG_A_DEV_PROFILE]));
	*a->open = tb[VFIO_MIG_A_DEV_OPEN] && nla_get_u8(tb[VFIO_MIG_A_DEV_OPEN]);
	/* absent from an older module: it loads no early state we know of */
	id->early_load = tb[VFIO_MIG_A_DEV_EARLY_LOAD] &&
			 nla_get_u8(tb[VFIO_MIG_A_DEV_EARLY_LOAD]);
	/* what the device offers (an older module: the kernel release says) */
	if (tb[VFIO_MIG_A_DEV_MIG_FLAGS])
		id->precopy = nla_get_u64(tb[VFIO_MIG_A_DEV_MIG_FLAGS]) &
			      LM_MIGRATION_PRE_COPY;
	return NL_OK;
}

/* Class code and the six BARs from sysfs. */
static int sysfs_ident(struct lm_dev *d, const char *bdf, struct mig_ident *id)
{
	char path[128], line[256];
	unsigned long long start, end, flags;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/class", bdf);
	f = fopen(path, "r");
	if (!f || !fgets(line, sizeof(line), f)) {
		ERRF(d, "%s: cannot read %s: %s", bdf, path, strerror(errno));
		if (f)
			fclose(f);
		return -ENODEV;
	}
	fclose(f);
	id->class_code = strtoul(line, NULL, 16) & 0xffffff;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", bdf);
	f = fopen(path, "r");
	if (!f) {
		ERRF(d, "%s: cannot read %s: %s", bdf, path, strerror(errno));
		return -ENODEV;
	}
	for (i = 0; i < 6 && fgets(line, sizeof(line), f); i++) {
		if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3)
			break;
		id->bar_size[i] = end > start || start ? end - start + 1 : 0;
		id->bar_flags[i] = 0;
		if (!id->bar_size[i])
			continue;
		if (flags & 0x100)			/* IORESOURCE_IO */
			id->bar_flags[i] |= MIG_BAR_IO;
		if (flags & 0x00100000)			/* IORESOURCE_MEM_64 */
			id->bar_flags[i] |= MIG_BAR_MEM64;
		if (flags & 0x2000)			/* IORESOURCE_PREFETCH */
			id->bar_flags[i] |= MIG_BAR_PREFETCH;
	}
	fclose(f);
	if (i < 6) {
		ERRF(d, "%s: %s has an unexpected format", bdf, path);
		return -EINVAL;
	}
	return 0;
}

static int k_ident(struct lm_dev *d, const char *bdf, struct mig_ident *id,
		   bool *open)
{
	struct kdev *k = K(d);
	struct ident_arg a = { .id = id, .open = open };
	struct nl_msg *msg;
	int ret;

	memset(id, 0, sizeof(*id));
	*open = false;
	lm_local_ident(id);
	snprintf(id->bdf, sizeof(id->bdf), "%s", bdf);
	msg = migctl_nl_msg(&k->nl, VFIO_MIG_CMD_DEV_GET, false);
	if (msg)
		nla_put_string(msg, VFIO_MIG_A_DEV_BDF, bdf);
	ret = migctl_nl_run(&k->nl, msg, take_dev, &a);
	if (ret == -ENODEV || (!ret && !a.found)) {
		ERRF(d, "%s is not bound to vfio-mig (migctl bind %s)", bdf, bdf);
		return -ENODEV;
	}
	if (ret) {
		ERRF(d, "%s: dev-get: %s%s%s", bdf, strerror(-ret),
		     k->nl.extack[0] ? ": " : "", k->nl.extack);
		return ret;
	}
	return sysfs_ident(d, bdf, id);
}

struct compat_arg {
	bool *tolerated;
	char *why;
	size_t why_len;
	char *notes;
	size_t notes_len;
	bool answered;
};

static int take_compat(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_DEV_MAX + 1];
	struct compat_arg *a = arg;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_DEV_MAX, NULL) ||
	    !tb[VFIO_MIG_A_DEV_COMPAT_TOLERATED])
		return NL_SKIP;
	a->answered = true;
	*a->tolerated = nla_get_u8(tb[VFIO_MIG_A_DEV_COMPAT_TOLERATED]);
	if (tb[VFIO_MIG_A_DEV_COMPAT_REFUSED])
		snprintf(a->why, a->why_len, "%s",
			 nla_get_string(tb[VFIO_MIG_A_DEV_COMPAT_REFUSED]));
	if (tb[VFIO_MIG_A_DEV_COMPAT_NOTES])
		snprintf(a->notes, a->notes_len, "%s",
			 nla_get_string(tb[VFIO_MIG_A_DEV_COMPAT_NOTES]));
	return NL_OK;
}

static int k_compat(struct lm_dev *d, const char *bdf,
		    const struct mig_ident *src, const uint8_t *needs,
		    size_t needs_len, bool *tolerated, char *why,
		    size_t why_len, char *notes, size_t notes_len)
{
	struct compat_arg a = { .tolerated = tolerated, .why = why,
				.why_len = why_len, .notes = notes,
				.notes_len = notes_len };
	struct vfio_mig_nvme_facts facts;
	struct kdev *k = K(d);
	struct nl_msg *msg;
	bool pf = false;
	int i, ret;

	*tolerated = false;
	why[0] = 0;
	notes[0] = 0;
	/* an NVMe VF: what only its PF knows, for the profile to judge */
	if (needs_len && !strcmp(src->profile, "nvme")) {
		nvme_pf_facts(bdf, needs, needs_len, &facts);
		pf = true;
	}
	msg = migctl_nl_msg(&k->nl, VFIO_MIG_CMD_DEV_COMPAT, false);
	if (msg) {
		nla_put_string(msg, VFIO_MIG_A_DEV_BDF, bdf);
		nla_put_u16(msg, VFIO_MIG_A_DEV_VENDOR, src->vendor);
		nla_put_u16(msg, VFIO_MIG_A_DEV_DEVICE, src->device);
		nla_put_u16(msg, VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR,
			    src->subvendor);
		nla_put_u16(msg, VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE,
			    src->subdevice);
		nla_put_u8(msg, VFIO_MIG_A_DEV_REVISION, src->revision);
		nla_put_u32(msg, VFIO_MIG_A_DEV_CLASS, src->class_code);
		for (i = 0; i < 6; i++)
			nla_put_u64(msg, VFIO_MIG_A_DEV_BAR_LEN,
				    src->bar_size[i]);
		nla_put_string(msg, VFIO_MIG_A_DEV_PROFILE, src->profile);
		if (needs_len)
			nla_put(msg, VFIO_MIG_A_DEV_PROFILE_NEEDS, needs_len,
				needs);
		if (pf)
			nla_put(msg, VFIO_MIG_A_DEV_PROFILE_FACTS,
				sizeof(facts), &facts);
	}
	ret = migctl_nl_run(&k->nl, msg, take_compat, &a);
	if (!ret && !a.answered)
		ret = -EPROTO;
	if (ret) {
		ERRF(d, "%s: dev-compat: %s%s%s", bdf, strerror(-ret),
		     k->nl.extack[0] ? ": " : "", k->nl.extack);
		return ret;
	}
	return why[0] ? 1 : 0;
}

struct needs_arg {
	uint8_t *buf;
	size_t len;
	int got;
};

static int take_needs(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_DEV_MAX + 1];
	struct needs_arg *a = arg;
	struct nlattr *n;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_DEV_MAX, NULL) ||
	    !tb[VFIO_MIG_A_DEV_BDF])
		return NL_SKIP;
	a->got = 0;
	n = tb[VFIO_MIG_A_DEV_PROFILE_NEEDS];
	if (n) {
		if ((size_t)nla_len(n) > a->len) {
			a->got = -EMSGSIZE;
			return NL_OK;
		}
		memcpy(a->buf, nla_data(n), nla_len(n));
		a->got = nla_len(n);
	}
	return NL_OK;
}

static int k_needs(struct lm_dev *d, const char *bdf, uint8_t *buf,
		   size_t len)
{
	struct needs_arg a = { .buf = buf, .len = len, .got = -EPROTO };
	struct kdev *k = K(d);
	struct nl_msg *msg;
	int ret;

	msg = migctl_nl_msg(&k->nl, VFIO_MIG_CMD_DEV_NEEDS, false);
	if (msg)
		nla_put_string(msg, VFIO_MIG_A_DEV_BDF, bdf);
	ret = migctl_nl_run(&k->nl, msg, take_needs, &a);
	/* a kernel before dev-needs: no needs, the restore checks */
	if (ret == -EOPNOTSUPP)
		return 0;
	if (!ret && a.got < 0)
		ret = a.got;
	if (ret) {
		ERRF(d, "%s: dev-needs: %s%s%s", bdf, strerror(-ret),
		     k->nl.extack[0] ? ": " : "", k->nl.extack);
		return ret;
	}
	return a.got;
}

static int take_shadow(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_SHADOW_MAX + 1];
	struct lm_shadow *sh = arg;

	if (migctl_shadow_parse(msg, tb))
		return NL_SKIP;
	sh->available = tb[VFIO_MIG_A_SHADOW_AVAILABLE] &&
			nla_get_u8(tb[VFIO_MIG_A_SHADOW_AVAILABLE]);
	sh->engaged = tb[VFIO_MIG_A_SHADOW_ENGAGED] &&
		      nla_get_u8(tb[VFIO_MIG_A_SHADOW_ENGAGED]);
	if (tb[VFIO_MIG_A_SHADOW_ENGAGE_NS])
		sh->engage_ns = nla_get_u64(tb[VFIO_MIG_A_SHADOW_ENGAGE_NS]);
	return NL_OK;
}

static int k_shadow(struct lm_dev *d, const char *bdf, uint8_t cmd,
		    struct lm_shadow *sh)
{
	struct kdev *k = K(d);
	/*
	 * The engage is this migration's: if migctl dies before the
	 * commit, the kernel rolls the device back and hands it back.
	 */
	bool tie = cmd == VFIO_MIG_CMD_SHADOW_ATTACH && k->ctl >= 0;
	struct nl_msg *msg;
	int ret;

again:
	msg = migctl_nl_msg(&k->nl, cmd, false);
	if (msg && (nla_put_string(msg, VFIO_MIG_A_SHADOW_BDF, bdf) ||
		    (tie && nla_put_u32(msg, VFIO_MIG_A_SHADOW_CTL_FD,
					(uint32_t)k->ctl)))) {
		nlmsg_free(msg);
		msg = NULL;
	}
	ret = migctl_nl_run(&k->nl, msg, sh ? take_shadow : NULL, sh);
	if (ret == -EINVAL && tie && strstr(k->nl.extack, "Unknown attribute")) {
		/* a vfio_mig module older than this migctl */
		fprintf(stderr,
			"migctl: warning: %s: the loaded vfio_mig cannot tie the shadow's engage to this migration; if migctl dies, 'migctl shadow release %s' hands the device back\n",
			bdf, bdf);
		tie = false;
		goto again;
	}
	if (ret)
		ERRF(d, "%s%s%s", k->nl.extack, k->nl.extack[0] ? ": " : "",
		     strerror(-ret));
	return ret;
}

/* ---- the control device ---- */

/* Why @bdf offers no migration (its vfio_mig/migration attribute). */
static void offer_why(const char *bdf, char *buf, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio_mig/migration",
		 bdf);
	f = fopen(path, "r");
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	if (!strcmp(buf, "offered"))
		buf[0] = 0;
}


static int k_attach(struct lm_dev *d, const char *bdf)
{
	struct kdev *k = K(d);
	struct vfio_mig_ctl_attach a = { .argsz = sizeof(a) };
	char why[256] = "";

	/* a device that offers no migration: say why before anything moves */
	offer_why(bdf, why, sizeof(why));
	if (why[0]) {
		ERRF(d, "%s offers no VFIO migration: %s", bdf, why);
		return -EOPNOTSUPP;
	}
	k->ctl = open(VFIO_MIG_CTL_DEVICE, O_RDWR | O_CLOEXEC);
	if (k->ctl < 0) {
		int e = errno;

		ERRF(d, "cannot open %s: %s%s", VFIO_MIG_CTL_DEVICE, strerror(e),
		     e == ENOENT ? " (vfio_mig too old or not loaded?)" :
		     e == EACCES || e == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
		return -e;
	}
	snprintf(a.bdf, sizeof(a.bdf), "%s", bdf);
	if (ioctl(k->ctl, VFIO_MIG_CTL_ATTACH, &a)) {
		int e = errno;

		ERRF(d, "%s: attach: %s%s", bdf, strerror(e),
		     e == ENOTCONN ? " (no VMM has the device open)" :
		     e == EBUSY ? " (another migration controls it)" :
		     e == ENODEV ? " (not bound to vfio-mig)" : "");
		close(k->ctl);
		k->ctl = -1;
		return -e;
	}
	snprintf(k->bdf, sizeof(k->bdf), "%s", bdf);
	return 0;
}

/* A new data fd from the kernel replaces the one before (read without blocking). */
static void take_data_fd(struct kdev *k, int fd)
{
	if (k->data >= 0)
		close(k->data);
	k->data = fd;
	fcntl(k->data, F_SETFL, fcntl(k->data, F_GETFL) | O_NONBLOCK);
}

static int k_set_state(struct lm_dev *d, uint32_t state)
{
	struct kdev *k = K(d);
	struct vfio_mig_ctl_state s = {
		.argsz = sizeof(s), .flags = VFIO_MIG_CTL_STATE_SET,
		.device_state = state, .data_fd = -1,
	};
	uint32_t cur = 0;

	if (ioctl(k->ctl, VFIO_MIG_CTL_STATE, &s)) {
		int e = errno;
		char why[256] = "";

		d->ops->get_state(d, &cur);
		/* no migration offered: the device says why (sysfs) */
		if (e == EOPNOTSUPP)
			offer_why(k->bdf, why, sizeof(why));
		ERRF(d, "%s: state %s -> %s: %s%s%s", k->bdf, lm_state_name(cur),
		     lm_state_name(state), strerror(e), why[0] ? ": " : "",
		     why);
		return -e;
	}
	if (s.data_fd >= 0)
		take_data_fd(k, s.data_fd);
	return 0;
}

static int k_get_state(struct lm_dev *d, uint32_t *state)
{
	struct kdev *k = K(d);
	struct vfio_mig_ctl_state s = { .argsz = sizeof(s), .data_fd = -1 };

	if (ioctl(k->ctl, VFIO_MIG_CTL_STATE, &s))
		return -errno;
	*state = s.device_state;
	return 0;
}

static ssize_t k_stream_read(struct lm_dev *d, void *buf, size_t len)
{
	struct kdev *k = K(d);
	ssize_t n;

	if (k->data < 0) {
		ERRF(d, "%s: no data fd", k->bdf);
		return -EBADF;
	}
	do {
		n = read(k->data, buf, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != ENOMSG && errno != EAGAIN)
			ERRF(d, "%s: reading the migration data fd: %s", k->bdf,
			     strerror(errno));
		return -errno;
	}
	return n;
}

static int k_stream_write(struct lm_dev *d, const void *buf, size_t len)
{
	struct kdev *k = K(d);
	const char *p = buf;
	uint64_t deadline = lm_now_us() +
		(uint64_t)(d->timeout_ms > 0 ? d->timeout_ms : 10000) * 1000;
	struct pollfd pf;
	ssize_t n;

	if (k->data < 0) {
		ERRF(d, "%s: no data fd", k->bdf);
		return -EBADF;
	}
	while (len) {
		n = write(k->data, p, len);
		if (n < 0 && errno == EAGAIN) {
			/* the kernel takes no more now: not forever */
			if (d->stop && *d->stop) {
				ERRF(d, "%s: interrupted writing the migration stream",
				     k->bdf);
				return -EINTR;
			}
			if (lm_now_us() > deadline) {
				ERRF(d, "%s: the kernel took no stream data for %d ms",
				     k->bdf, d->timeout_ms > 0 ? d->timeout_ms : 10000);
				return -ETIMEDOUT;
			}
			pf.fd = k->data;
			pf.events = POLLOUT;
			poll(&pf, 1, 100);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			ERRF(d, "%s: the kernel refused the migration stream: %s%s",
			     k->bdf, strerror(e),
			     e == ENXIO ? " (the stream is from a device this one cannot take; the kernel log names the field)" :
			     e == EPROTONOSUPPORT ? " (stream major version, feature bits or profile state version; see the kernel log)" :
			     e == EINVAL ? " (malformed stream; see the kernel log)" : "");
			return -e;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int k_pages(struct lm_dev *d, bool write, const uint64_t *iovas,
		   uint32_t count, void *buf)
{
	struct kdev *k = K(d);
	struct vfio_mig_ctl_pages p = {
		.argsz = sizeof(p),
		.flags = write ? VFIO_MIG_CTL_PAGES_WRITE : 0,
		.count = count, .page_size = WIRE_PAGE,
		.iovas = (uintptr_t)iovas, .data = (uintptr_t)buf,
	};

	if (ioctl(k->ctl, VFIO_MIG_CTL_PAGES, &p)) {
		int e = errno;
		uint64_t bad = p.count < count ? iovas[p.count] : iovas[0];

		ERRF(d, "%s: %s guest page at IOVA 0x%" PRIx64 ": %s%s", k->bdf,
		     write ? "writing" : "reading", bad, strerror(e),
		     e == EFAULT ? " (not mapped for the device, or a bad buffer)" :
		     e == EOPNOTSUPP ? " (the device is bound through iommufd: vfio-mig reaches guest pages through a type1 container only)" : "");
		return -e;
	}
	return 0;
}

static int k_stage_fd(struct lm_dev *d)
{
	struct kdev *k = K(d);
	struct vfio_mig_ctl_stage_fd sf = { .argsz = sizeof(sf) };

	if (ioctl(k->ctl, VFIO_MIG_CTL_STAGE_FD, &sf)) {
		int e = errno;

		ERRF(d, "%s: staging fd: %s%s", k->bdf, strerror(e),
		     e == ENOTTY ? " (a vfio-mig module without page staging)" : "");
		return -e;
	}
	return sf.fd;
}

static int k_stage(struct lm_dev *d, int fd, struct lm_stage *st)
{
	struct kdev *k = K(d);
	struct vfio_mig_ctl_stage sa = {
		.argsz = sizeof(sa),
		.flags = st->sums ? VFIO_MIG_CTL_STAGE_SUMS : 0,
		.count = st->count,
		.iovas = (uintptr_t)st->iovas, .hashes = (uintptr_t)st->hashes,
		.kinds = (uintptr_t)st->kinds, .sums = (uintptr_t)st->sums,
	};

	memcpy(sa.key, st->key, sizeof(sa.key));
	if (ioctl(fd, VFIO_MIG_CTL_STAGE, &sa)) {
		int e = errno;

		ERRF(d, "%s: staging %u guest pages from IOVA 0x%" PRIx64 ": %s%s",
		     k->bdf, st->count, st->iovas[0], strerror(e),
		     e == EFAULT ? " (a page not mapped for the device)" :
		     e == EOPNOTSUPP ? " (the device is bound through iommufd: vfio-mig reaches guest pages through a type1 container only)" : "");
		return -e;
	}
	st->ndata = sa.ndata;
	return 0;
}

static int k_land(struct lm_dev *d, int fd, const uint64_t *iovas,
		  uint32_t count, bool sums)
{
	struct kdev *k = K(d);
	struct vfio_mig_ctl_land la = {
		.argsz = sizeof(la),
		.flags = sums ? VFIO_MIG_CTL_LAND_SUMS : 0,
		.count = count, .iovas = (uintptr_t)iovas,
	};

	if (ioctl(fd, VFIO_MIG_CTL_LAND, &la)) {
		int e = errno;

		ERRF(d, "%s: arming the staging fd for %u guest pages: %s",
		     k->bdf, count, strerror(e));
		return -e;
	}
	return 0;
}

static int k_landed(struct lm_dev *d, int fd, uint64_t *bytes, uint64_t *sums)
{
	struct kdev *k = K(d);
	struct vfio_mig_ctl_landed ld = {
		.argsz = sizeof(ld), .sums = (uintptr_t)sums,
	};

	if (ioctl(fd, VFIO_MIG_CTL_LANDED, &ld)) {
		int e = errno;

		ERRF(d, "%s: the pages landed: %s", k->bdf, strerror(e));
		return -e;
	}
	*bytes = ld.bytes;
	return 0;
}

static int k_commit(struct lm_dev *d, bool stopped)
{
	struct kdev *k = K(d);
	struct vfio_mig_ctl_commit c = {
		.argsz = sizeof(c),
		.flags = stopped ? VFIO_MIG_CTL_COMMIT_STOPPED : 0,
	};

	if (ioctl(k->ctl, VFIO_MIG_CTL_COMMIT, &c)) {
		int e = errno;

		ERRF(d, "%s: commit: %s", k->bdf, strerror(e));
		return -e;
	}
	return 0;
}

static int k_prepare(struct lm_dev *d)
{
	struct kdev *k = K(d);
	struct vfio_mig_ctl_prepare p = { .argsz = sizeof(p), .data_fd = -1 };

	if (ioctl(k->ctl, VFIO_MIG_CTL_PREPARE, &p)) {
		int e = errno;

		/* a vfio_mig without the ioctl: nothing moves early */
		if (e == ENOTTY)
			e = EOPNOTSUPP;
		ERRF(d, "%s: prepare: %s", k->bdf,
		     e == EOPNOTSUPP ? "the device's profile has no early state" :
		     e == ENXIO ? "no guest page named to borrow (debugfs scratch)" :
		     strerror(e));
		return -e;
	}
	/* a kernel without PRE_COPY opened the saving stream for it */
	if (p.data_fd >= 0)
		take_data_fd(k, p.data_fd);
	return 0;
}

static void k_detach(struct lm_dev *d)
{
	struct kdev *k = K(d);

	if (k->data >= 0)
		close(k->data);
	if (k->ctl >= 0)
		close(k->ctl);
	k->data = k->ctl = -1;
}

/* ---- phases and acks ---- */

static int take_phase_reply(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_MIG_MAX + 1];
	struct kdev *k = arg;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_MIG_MAX, NULL) ||
	    !tb[VFIO_MIG_A_MIG_SEQ])
		return NL_SKIP;
	k->want_seq = nla_get_u32(tb[VFIO_MIG_A_MIG_SEQ]);
	k->got = true;		/* reply seen */
	return NL_OK;
}

/* The "ram" ranges of an ack: how many, or -1 if malformed or too many. */
static int take_ram(struct nl_msg *msg, struct wire_range *ram)
{
	struct nlattr *tb[VFIO_MIG_A_DIRTY_RANGE_MAX + 1], *a;
	int rem, n = 0;

	nla_for_each_attr(a, genlmsg_attrdata(nlmsg_data(nlmsg_hdr(msg)), 0),
			  genlmsg_attrlen(nlmsg_data(nlmsg_hdr(msg)), 0), rem) {
		if (nla_type(a) != VFIO_MIG_A_MIG_RAM)
			continue;
		if (n == LM_RAM_MAX ||
		    nla_parse_nested(tb, VFIO_MIG_A_DIRTY_RANGE_MAX, a, NULL) ||
		    !tb[VFIO_MIG_A_DIRTY_RANGE_IOVA] ||
		    !tb[VFIO_MIG_A_DIRTY_RANGE_LENGTH])
			return -1;
		ram[n].iova = nla_get_u64(tb[VFIO_MIG_A_DIRTY_RANGE_IOVA]);
		ram[n].length = nla_get_u64(tb[VFIO_MIG_A_DIRTY_RANGE_LENGTH]);
		/* the kernel checked them; so does its reader */
		if (!ram[n].length ||
		    ram[n].iova + ram[n].length < ram[n].iova)
			return -1;
		n++;
	}
	return n;
}

static int take_ack(struct nl_msg *msg, void *arg)
{
	struct genlmsghdr *g = nlmsg_data(nlmsg_hdr(msg));
	struct nlattr *tb[VFIO_MIG_A_MIG_MAX + 1];
	struct kdev *k = arg;

	if (g->cmd != VFIO_MIG_CMD_MIG_ACK_NTF &&
	    g->cmd != VFIO_MIG_CMD_MIG_PHASE_NTF)
		return NL_SKIP;
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_MIG_MAX, NULL) ||
	    !tb[VFIO_MIG_A_MIG_BDF] || !tb[VFIO_MIG_A_MIG_PHASE] ||
	    !tb[VFIO_MIG_A_MIG_SEQ])
		return NL_SKIP;
	if (g->cmd == VFIO_MIG_CMD_MIG_PHASE_NTF) {
		/* the kernel's own announcement (release): learn its seq */
		if (k->want_ntf &&
		    !strcmp(nla_get_string(tb[VFIO_MIG_A_MIG_BDF]), k->bdf) &&
		    nla_get_u32(tb[VFIO_MIG_A_MIG_PHASE]) == k->want_phase) {
			k->want_seq = nla_get_u32(tb[VFIO_MIG_A_MIG_SEQ]);
			k->want_ntf = false;
		}
		return NL_OK;
	}
	if (k->want_ntf)
		return NL_SKIP;
	if (strcmp(nla_get_string(tb[VFIO_MIG_A_MIG_BDF]), k->bdf) ||
	    nla_get_u32(tb[VFIO_MIG_A_MIG_PHASE]) != k->want_phase ||
	    nla_get_u32(tb[VFIO_MIG_A_MIG_SEQ]) != k->want_seq)
		return NL_SKIP;
	k->got_result = tb[VFIO_MIG_A_MIG_RESULT] ?
			nla_get_u32(tb[VFIO_MIG_A_MIG_RESULT]) : 0;
	k->nr_ram = take_ram(msg, k->ram);
	k->got = true;
	return NL_OK;
}

static int wait_ack(struct lm_dev *d, uint32_t phase, int timeout_ms,
		    uint32_t *result);

static int k_phase(struct lm_dev *d, uint32_t phase, int timeout_ms,
		   uint32_t *result)
{
	struct kdev *k = K(d);
	struct nl_msg *msg;
	int ret;

	msg = migctl_nl_msg(&k->nl, VFIO_MIG_CMD_MIG_PHASE, false);
	if (msg) {
		nla_put_string(msg, VFIO_MIG_A_MIG_BDF, k->bdf);
		nla_put_u32(msg, VFIO_MIG_A_MIG_PHASE, phase);
	}
	k->got = false;
	k->want_ntf = false;
	k->want_phase = phase;
	ret = migctl_nl_run(&k->nl, msg, take_phase_reply, k);
	if (ret) {
		ERRF(d, "%s: announcing phase %s: %s%s%s", k->bdf,
		     lm_phase_name(phase), strerror(-ret),
		     k->nl.extack[0] ? ": " : "", k->nl.extack);
		return ret;
	}
	if (!k->got) {
		ERRF(d, "%s: announcing phase %s: the kernel's reply has no seq",
		     k->bdf, lm_phase_name(phase));
		return -EPROTO;
	}
	k->got = false;
	d->seq = k->want_seq;
	k->nr_ram = 0;
	ret = wait_ack(d, phase, timeout_ms, result);
	if (ret)
		return ret;
	if (k->nr_ram < 0) {
		ERRF(d, "%s: the VMM's %s ack names malformed RAM ranges",
		     k->bdf, lm_phase_name(phase));
		return -EPROTO;
	}
	/* the RAM of prepare's ack holds for the rest of the migration */
	if (phase == VFIO_MIG_MIG_PHASE_PREPARE) {
		d->nr_ram = k->nr_ram;
		memcpy(d->ram, k->ram, k->nr_ram * sizeof(*d->ram));
	}
	return 0;
}

/* Wait for the ack of k->want_phase / k->want_seq. */
static int wait_ack(struct lm_dev *d, uint32_t phase, int timeout_ms,
		    uint32_t *result)
{
	struct kdev *k = K(d);
	struct timespec t0, t;
	struct pollfd p;
	int ret, left;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	p.fd = nl_socket_get_fd(k->ev);
	p.events = POLLIN;
	while (!k->got) {
		if (d->stop && *d->stop) {
			ERRF(d, "%s: interrupted waiting for the VMM's %s ack",
			     k->bdf, lm_phase_name(phase));
			return -EINTR;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 +
				     (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0) {
			if (k->want_ntf)
				ERRF(d, "%s: no %s announced by the kernel within %d ms",
				     k->bdf, lm_phase_name(phase), timeout_ms);
			else
				ERRF(d, "%s: the VMM did not acknowledge phase %s (seq %u) within %d ms",
				     k->bdf, lm_phase_name(phase), k->want_seq,
				     timeout_ms);
			return -ETIMEDOUT;
		}
		if (left > 200)
			left = 200;
		ret = poll(&p, 1, left);
		if (ret > 0) {
			ret = nl_recvmsgs_default(k->ev);
			if (ret < 0 && ret != -NLE_AGAIN && ret != -NLE_NOMEM) {
				ERRF(d, "%s: reading netlink events: %s", k->bdf,
				     nl_geterror(ret));
				return -EIO;
			}
		}
	}
	*result = k->got_result;
	return 0;
}

static int k_release(struct lm_dev *d, int timeout_ms, uint32_t *result)
{
	struct kdev *k = K(d);

	k->got = false;
	k->want_ntf = true;
	k->want_phase = VFIO_MIG_MIG_PHASE_ABORT;
	k_detach(d);
	return wait_ack(d, VFIO_MIG_MIG_PHASE_ABORT, timeout_ms, result);
}

/* ---- the dirty log ---- */

struct dirty_arg {
	lm_dirty_fn fn;
	void *arg;
	struct kdev *k;
	bool restarted;			/* a reply of another generation */
	bool no_gen;			/* a reply without one */
	uint32_t gen;			/* its generation */
};

static int take_dirty(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_DIRTY_MAX + 1];
	struct dirty_arg *a = arg;
	uint64_t iova, len, ps;
	size_t nbits;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_DIRTY_MAX, NULL) ||
	    !tb[VFIO_MIG_A_DIRTY_BITMAP] || !tb[VFIO_MIG_A_DIRTY_PAGE_SIZE] ||
	    !tb[VFIO_MIG_A_DIRTY_IOVA] || !tb[VFIO_MIG_A_DIRTY_LENGTH])
		return NL_SKIP;
	/* a restarted log lost the marks not yet read: none of it counts */
	if (a->restarted || a->no_gen)
		return NL_SKIP;
	if (!tb[VFIO_MIG_A_DIRTY_GENERATION]) {
		a->no_gen = true;	/* a kernel that cannot tell */
		return NL_SKIP;
	}
	a->gen = nla_get_u32(tb[VFIO_MIG_A_DIRTY_GENERATION]);
	if (a->k->dirty_gen_known && a->gen != a->k->dirty_gen) {
		a->restarted = true;
		return NL_SKIP;
	}
	a->k->dirty_gen = a->gen;
	a->k->dirty_gen_known = true;
	iova = nla_get_u64(tb[VFIO_MIG_A_DIRTY_IOVA]);
	len = nla_get_u64(tb[VFIO_MIG_A_DIRTY_LENGTH]);
	ps = nla_get_u64(tb[VFIO_MIG_A_DIRTY_PAGE_SIZE]);
	if (!ps || (ps & (ps - 1)))
		return NL_SKIP;
	nbits = (size_t)nla_len(tb[VFIO_MIG_A_DIRTY_BITMAP]) / 8 * 64;
	if (nbits > (len + ps - 1) / ps)
		nbits = (len + ps - 1) / ps;
	a->fn(a->arg, iova, len, ps, nla_data(tb[VFIO_MIG_A_DIRTY_BITMAP]),
	      nbits);
	return NL_OK;
}

static int k_dirty(struct lm_dev *d, bool clear, lm_dirty_fn fn, void *arg)
{
	struct kdev *k = K(d);
	struct dirty_arg a = { .fn = fn, .arg = arg, .k = k };
	struct nl_msg *msg;
	int ret;

	msg = migctl_nl_msg(&k->nl, VFIO_MIG_CMD_DIRTY_GET, true);
	if (msg) {
		nla_put_string(msg, VFIO_MIG_A_DIRTY_BDF, k->bdf);
		if (clear)
			nla_put_flag(msg, VFIO_MIG_A_DIRTY_CLEAR);
	}
	ret = migctl_nl_run(&k->nl, msg, take_dirty, &a);
	if (ret)
		ERRF(d, "%s: dirty-get: %s%s%s%s", k->bdf, strerror(-ret),
		     k->nl.extack[0] ? ": " : "", k->nl.extack,
		     ret == -ENOENT || ret == -ENODATA ?
		     " (no dirty log running: did the VMM start it?)" :
		     ret == -EAGAIN ?
		     " (the dirty log was restarted while it was read)" : "");
	else if (a.no_gen)
		ERRF(d, "%s: dirty-get: the kernel does not report the dirty log's generation; a restart between reads would go unnoticed",
		     k->bdf);
	else if (a.restarted)
		ERRF(d, "%s: dirty-get: the dirty log was restarted since the last read (generation %" PRIu32 ", now %" PRIu32 "): the pages dirtied before the restart are lost",
		     k->bdf, k->dirty_gen, a.gen);
	if (!ret && (a.restarted || a.no_gen))
		ret = a.no_gen ? -EPROTO : -ESTALE;
	return ret;
}

static const struct lm_dev_ops kernel_ops = {
	.ident = k_ident,
	.attach = k_attach,
	.set_state = k_set_state,
	.get_state = k_get_state,
	.stream_read = k_stream_read,
	.stream_write = k_stream_write,
	.pages = k_pages,
	.stage_fd = k_stage_fd,
	.stage = k_stage,
	.land = k_land,
	.landed = k_landed,
	.commit = k_commit,
	.prepare = k_prepare,
	.phase = k_phase,
	.dirty = k_dirty,
	.detach = k_detach,
	.release = k_release,
	.compat = k_compat,
	.needs = k_needs,
	.shadow = k_shadow,
};

int lm_kernel_open(struct lm_dev *d, volatile sig_atomic_t *stop)
{
	struct kdev *k = calloc(1, sizeof(*k));
	int grp;

	memset(d, 0, sizeof(*d));
	if (!k)
		return migctl_fail("out of memory");
	k->ctl = k->data = -1;
	d->ops = &kernel_ops;
	d->priv = k;
	d->stop = stop;
	if (migctl_nl_open(&k->nl)) {
		free(k);
		d->priv = NULL;
		return 1;
	}
	k->ev = nl_socket_alloc();
	if (!k->ev || genl_connect(k->ev)) {
		lm_kernel_close(d);
		return migctl_fail("cannot open a generic netlink socket for events");
	}
	grp = genl_ctrl_resolve_grp(k->nl.sk, VFIO_MIG_FAMILY_NAME,
				    VFIO_MIG_MCGRP_MIG);
	if (grp < 0) {
		lm_kernel_close(d);
		return migctl_fail("the vfio_mig family has no '%s' multicast group: the loaded vfio_mig module predates live migration",
				   VFIO_MIG_MCGRP_MIG);
	}
	nl_socket_disable_seq_check(k->ev);
	nl_socket_set_nonblocking(k->ev);
	nl_socket_set_buffer_size(k->ev, 1 << 20, 0);
	if (nl_socket_add_membership(k->ev, grp)) {
		lm_kernel_close(d);
		return migctl_fail("cannot join the vfio_mig '%s' multicast group",
				   VFIO_MIG_MCGRP_MIG);
	}
	nl_socket_modify_cb(k->ev, NL_CB_VALID, NL_CB_CUSTOM, take_ack, k);
	return 0;
}

void lm_kernel_close(struct lm_dev *d)
{
	struct kdev *k = d->priv;

	if (!k)
		return;
	k_detach(d);
	if (k->ev)
		nl_socket_free(k->ev);
	migctl_nl_close(&k->nl);
	free(k);
	d->priv = NULL;
}
