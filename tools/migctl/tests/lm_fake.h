/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The unit tests' stand-in for the kernel (struct lm_dev backed by memory)
 * and the harness around two migctl sides on a socket pair.
 */
#ifndef LM_FAKE_H
#define LM_FAKE_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../hash.h"
#include "../lm.h"
#include "../migctl.h"
#include "../wire.h"

#include <linux/vfio_mig.h>
#include <linux/vfio_mig_ctl.h>

static inline void edu_ident(struct mig_ident *id, const char *bdf)
{
	memset(id, 0, sizeof(*id));
	lm_local_ident(id);
	snprintf(id->bdf, sizeof(id->bdf), "%s", bdf);
	id->vendor = 0x1234;
	id->device = 0x11e8;
	id->subvendor = 0x1af4;
	id->subdevice = 0x1100;
	id->class_code = 0x00ff00;
	id->revision = 0x10;
	id->trap_mode = 1;
	id->bar_size[0] = 1 << 20;
	snprintf(id->profile, sizeof(id->profile), "edu");
}

/* ---- whole migrations against a fake kernel ---- */

#define FAKE_IOVA	0x100000ull
#define FAKE_PAGES	1024u		/* 4 MiB of "guest RAM" */
#define FAKE_STREAM	6000u

struct fake {
	struct mig_ident id;
	bool open, attached, precopy_ok, target;
	uint8_t *ram;
	uint32_t state;
	/* source: the device stream, pre-copy part first */
	uint8_t stream[FAKE_STREAM];
	size_t pos, precopy_len;
	/* target */
	uint8_t rx[FAKE_STREAM * 2];
	size_t rx_len;
	const struct fake *src;
	bool fail_load;
	uint32_t fail_to;		/* set_state to this state fails (0: none) */
	bool fail_commit;		/* COMMIT fails (the VMM closed it) */
	/* the VM's other device (side_add_dev), and its state at our abort */
	const struct fake *sibling;
	uint32_t sibling_at_abort;
	bool log_half;			/* the dirty log covers half the RAM */
	/* phases announced, and what the VMM answers */
	uint32_t phases[32];
	int nphases;
	uint32_t refuse_phase, refuse_result;
	bool committed, committed_stopped, detached;
	/* source guest: pages written per dirty report (clear) */
	uint64_t dirty_bits[FAKE_PAGES / 64];
	int clears;
	unsigned int dirty_start, dirty_step;	/* pages per round: start - k*step */
	bool dirty_constant;
	/* faults */
	int cut_fd;			/* close this socket at phase start */
	uint64_t bad_iova;		/* page writes there fail (EFAULT) */
	/* the RAM the VMM names at prepare: pages from FAKE_IOVA (0: all) */
	uint32_t ram_named_pages;
	bool ram_unnamed;		/* its prepare ack names none */
	/* what reached "the kernel" */
	uint64_t pages_written, pages_read;
	int device_ops;			/* attach, state changes, phases */
	void (*on_clear)(struct fake *f);	/* more guest writes, after them */
	/* the kernel's dev-compat answer: refused with this reason, if set */
	const char *compat_refused;
	bool compat_tolerated;
	int compat_asked;		/* dev-compat requests */
	struct mig_ident compat_src;	/* the last one's source identity */
	const char *compat_notes;	/* what its profile did not check */
	uint8_t compat_needs[WIRE_NEEDS_MAX];	/* the last one's needs */
	size_t compat_needs_len;
	/* dev-needs: what the source's guest uses */
	uint8_t needs[WIRE_NEEDS_MAX];
	size_t needs_len;
	int needs_asked;
	int ack_delay_phase;
	/* the target's devices' load and its VMM's start ack take this long */
	unsigned int load_delay_ms, start_delay_ms;
	unsigned int prepare_delay_ms;	/* the source's prepare, as long */
	int prepare_ret;		/* and its result */
	/* the shadow adapter: refusals, and what it saw */
	bool shadow_unavailable;
	const char *engage_refused, *handback_refused;	/* extack */
	bool engage_stuck;	/* the engage fails, the shadow stays engaged */
	bool engaged;
	int engages, releases;
	int engage_nphases, engage_clears;	/* phases, dirty clears before */
	uint32_t engage_state, release_state;	/* the device's, then */
	int prepares;			/* f_prepare() calls */
	/*
	 * staging (fake_ops_staging): stages made, every Nth of them short of
	 * memory (ENOMEM), the Nth failing with EIO (0: never); the target's
	 * armed landing fd (one at a time, as migctl uses one)
	 */
	int stages, stage_enomem_every, stage_eio_at;
	int land_fd;
	uint64_t land_iovas[WIRE_BATCH];
	uint32_t land_count;
	bool land_sums;
	uint64_t pages_staged, pages_landed;
};

static inline struct fake *F(struct lm_dev *d)
{
	return d->priv;
}

static inline int f_ident(struct lm_dev *d, const char *bdf, struct mig_ident *id,
		   bool *open)
{
	struct fake *f = F(d);

	if (strcmp(bdf, f->id.bdf)) {
		snprintf(d->err, sizeof(d->err), "%s is not bound to vfio-mig", bdf);
		return -ENODEV;
	}
	*id = f->id;
	*open = f->open;
	return 0;
}

static inline int f_attach(struct lm_dev *d, const char *bdf)
{
	(void)bdf;
	F(d)->attached = true;
	F(d)->device_ops++;
	return 0;
}

static inline int f_set_state(struct lm_dev *d, uint32_t st)
{
	struct fake *f = F(d);

	f->device_ops++;
	if (f->fail_to && st == f->fail_to) {
		snprintf(d->err, sizeof(d->err), "%s: state %s: Input/output error",
			 f->id.bdf, lm_state_name(st));
		return -EIO;
	}
	if ((st == LM_ST_PRE_COPY || st == LM_ST_PRE_COPY_P2P) && !f->precopy_ok) {
		snprintf(d->err, sizeof(d->err), "no pre-copy");
		return -EINVAL;
	}
	if (f->committed_stopped && st != LM_ST_STOP) {
		snprintf(d->err, sizeof(d->err), "committed stopped");
		return -EPERM;
	}
	if (f->state == LM_ST_RESUMING && st == LM_ST_STOP) {
		if (f->load_delay_ms)
			usleep(f->load_delay_ms * 1000);
		if (f->fail_load || f->rx_len != sizeof(f->src->stream) ||
		    memcmp(f->rx, f->src->stream, f->rx_len)) {
			snprintf(d->err, sizeof(d->err),
				 "state resuming -> stop: Invalid argument");
			return -EINVAL;
		}
	}
	if (st == LM_ST_STOP_COPY && f->state != LM_ST_PRE_COPY_P2P)
		f->pos = 0;		/* a new fd: the whole stream */
	if (st == LM_ST_PRE_COPY)
		f->pos = 0;
	f->state = st;
	return 0;
}

static inline int f_get_state(struct lm_dev *d, uint32_t *st)
{
	*st = F(d)->state;
	return 0;
}

static inline ssize_t f_stream_read(struct lm_dev *d, void *buf, size_t len)
{
	struct fake *f = F(d);
	size_t end = f->state == LM_ST_PRE_COPY ? f->precopy_len :
		     f->state == LM_ST_STOP_COPY ? sizeof(f->stream) : 0;

	if (f->pos >= end)
		return f->state == LM_ST_PRE_COPY ? -ENOMSG : 0;
	if (len > end - f->pos)
		len = end - f->pos;
	if (len > 1000)
		len = 1000;	/* several reads, several frames */
	memcpy(buf, f->stream + f->pos, len);
	f->pos += len;
	return len;
}

static inline int f_stream_write(struct lm_dev *d, const void *buf, size_t len)
{
	struct fake *f = F(d);

	if (f->state != LM_ST_RESUMING || f->rx_len + len > sizeof(f->rx)) {
		snprintf(d->err, sizeof(d->err), "stream refused");
		return -EINVAL;
	}
	memcpy(f->rx + f->rx_len, buf, len);
	f->rx_len += len;
	return 0;
}

static inline int f_pages(struct lm_dev *d, bool write, const uint64_t *iovas,
		   uint32_t count, void *buf)
{
	struct fake *f = F(d);
	uint32_t i;

	if (count > WIRE_BATCH)
		return -E2BIG;
	for (i = 0; i < count; i++) {
		uint64_t a = iovas[i];

		if (a % WIRE_PAGE || a < FAKE_IOVA ||
		    a >= FAKE_IOVA + FAKE_PAGES * WIRE_PAGE ||
		    (write && a == f->bad_iova)) {
			snprintf(d->err, sizeof(d->err), "IOVA 0x%llx not mapped",
				 (unsigned long long)a);
			return -EFAULT;
		}
		if (write)
			f->pages_written++;
		else
			f->pages_read++;
		if (write)
			memcpy(f->ram + (a - FAKE_IOVA),
			       (uint8_t *)buf + i * WIRE_PAGE, WIRE_PAGE);
		else
			memcpy((uint8_t *)buf + i * WIRE_PAGE,
			       f->ram + (a - FAKE_IOVA), WIRE_PAGE);
	}
	return 0;
}

/*
 * Staging as the kernel does it (VFIO_MIG_CTL_STAGE_FD and friends), on a
 * memfd: a stage writes its data pages at the start of the fd, a landing
 * takes what was written to the fd since it was armed into guest RAM when
 * LANDED asks (the kernel lands as the bytes come; nothing here tells the
 * difference).
 */
static inline int f_stage_fd(struct lm_dev *d)
{
	int fd = memfd_create("fake-stage", MFD_CLOEXEC);

	if (fd < 0) {
		snprintf(d->err, sizeof(d->err), "memfd: %s", strerror(errno));
		return -errno;
	}
	return fd;
}

static inline bool f_iova_ok(uint64_t a)
{
	return !(a % WIRE_PAGE) && a >= FAKE_IOVA &&
	       a < FAKE_IOVA + FAKE_PAGES * WIRE_PAGE;
}

static inline int f_stage(struct lm_dev *d, int fd, struct lm_stage *st)
{
	struct fake *f = F(d);
	struct mh_key key;
	uint32_t i, nd = 0;
	int n = ++f->stages;

	if ((f->stage_enomem_every && !(n % f->stage_enomem_every)) ||
	    f->stage_eio_at == n) {
		snprintf(d->err, sizeof(d->err), "staging %u guest pages: %s",
			 st->count, strerror(f->stage_eio_at == n ? EIO : ENOMEM));
		ftruncate(fd, 0);
		return f->stage_eio_at == n ? -EIO : -ENOMEM;
	}
	if (st->count > WIRE_BATCH)
		return -E2BIG;
	memcpy(key.k, st->key, sizeof(key.k));
	/* new pages: a socket may still hold the last stage's (as the kernel) */
	if (ftruncate(fd, 0))
		return -errno;
	for (i = 0; i < st->count; i++) {
		const uint8_t *pg;
		uint64_t h;
		size_t k;

		if (!f_iova_ok(st->iovas[i])) {
			snprintf(d->err, sizeof(d->err), "IOVA 0x%llx not mapped",
				 (unsigned long long)st->iovas[i]);
			ftruncate(fd, 0);
			return -EFAULT;
		}
		pg = f->ram + (st->iovas[i] - FAKE_IOVA);
		f->pages_read++;
		h = mh_keyed64(&key, pg, WIRE_PAGE);
		h = h ? h : 1;
		for (k = 0; k < WIRE_PAGE && !pg[k]; k++)
			;
		if (h == st->hashes[i]) {
			st->kinds[i] = VFIO_MIG_CTL_STAGE_UNCHANGED;
		} else if (k == WIRE_PAGE) {
			st->kinds[i] = VFIO_MIG_CTL_STAGE_ZERO;
		} else {
			st->kinds[i] = VFIO_MIG_CTL_STAGE_DATA;
			if (pwrite(fd, pg, WIRE_PAGE, (off_t)nd * WIRE_PAGE) !=
			    WIRE_PAGE)
				return -EIO;
			if (st->sums)
				st->sums[nd] = mh_hash64(pg, WIRE_PAGE,
							 MH_SEED_PAGE);
			nd++;
		}
		st->hashes[i] = h;
	}
	st->ndata = nd;
	f->pages_staged += nd;
	return ftruncate(fd, (off_t)nd * WIRE_PAGE) ? -errno : 0;
}

static inline int f_land(struct lm_dev *d, int fd, const uint64_t *iovas,
			 uint32_t count, bool sums)
{
	struct fake *f = F(d);
	uint32_t i;

	for (i = 0; i < count; i++)
		if (!f_iova_ok(iovas[i]) || iovas[i] == f->bad_iova) {
			snprintf(d->err, sizeof(d->err), "landing at IOVA 0x%llx: outside the named RAM",
				 (unsigned long long)iovas[i]);
			return -EACCES;
		}
	if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET))
		return -errno;
	f->land_fd = fd;
	memcpy(f->land_iovas, iovas, count * sizeof(*iovas));
	f->land_count = count;
	f->land_sums = sums;
	return 0;
}

static inline int f_landed(struct lm_dev *d, int fd, uint64_t *bytes,
			   uint64_t *sums)
{
	struct fake *f = F(d);
	struct stat sb;
	uint32_t i;

	if (fd != f->land_fd || fstat(fd, &sb))
		return -EINVAL;
	*bytes = sb.st_size;
	for (i = 0; i < f->land_count && (i + 1) * WIRE_PAGE <= (uint64_t)sb.st_size; i++) {
		uint8_t *pg = f->ram + (f->land_iovas[i] - FAKE_IOVA);

		if (pread(fd, pg, WIRE_PAGE, (off_t)i * WIRE_PAGE) != WIRE_PAGE)
			return -EIO;
		if (sums && f->land_sums)
			sums[i] = mh_hash64(pg, WIRE_PAGE, MH_SEED_PAGE);
		f->pages_written++;
		f->pages_landed++;
	}
	f->land_count = 0;
	return 0;
}

static inline int f_commit(struct lm_dev *d, bool stopped)
{
	struct fake *f = F(d);

	if (stopped && f->state != LM_ST_STOP)
		return -EINVAL;
	if (f->fail_commit) {
		snprintf(d->err, sizeof(d->err), "%s: commit: No such device",
			 f->id.bdf);
		return -ENODEV;
	}
	f->committed = true;
	f->committed_stopped = stopped;
	return 0;
}

static inline int f_phase(struct lm_dev *d, uint32_t ph, int timeout_ms,
		   uint32_t *result)
{
	struct fake *f = F(d);

	f->device_ops++;
	(void)timeout_ms;
	d->seq++;
	if (f->nphases < 32)
		f->phases[f->nphases++] = ph;
	if (ph == VFIO_MIG_MIG_PHASE_ABORT && f->sibling)
		f->sibling_at_abort = f->sibling->state;
	*result = ph == f->refuse_phase ? f->refuse_result : 0;
	if (ph == VFIO_MIG_MIG_PHASE_PREPARE) {
		d->nr_ram = f->ram_unnamed ? 0 : 1;
		d->ram[0].iova = FAKE_IOVA;
		d->ram[0].length = (uint64_t)(f->ram_named_pages ?: FAKE_PAGES) *
				   WIRE_PAGE;
	}
	if (ph == VFIO_MIG_MIG_PHASE_START && f->start_delay_ms)
		usleep(f->start_delay_ms * 1000);
	if (ph == VFIO_MIG_MIG_PHASE_START && f->cut_fd >= 0)
		shutdown(f->cut_fd, SHUT_RDWR);
	if (ph == VFIO_MIG_MIG_PHASE_PAUSE && f->ack_delay_phase) {
		snprintf(d->err, sizeof(d->err),
			 "the VMM did not acknowledge phase pause within %d ms",
			 timeout_ms);
		return -ETIMEDOUT;
	}
	return 0;
}

/* The "guest": some pages written since the last clearing report. */
static inline void guest_writes(struct fake *f)
{
	unsigned int n, i, pg;

	f->clears++;
	if (f->dirty_constant)
		n = f->dirty_start;
	else
		n = f->dirty_start > f->clears * f->dirty_step ?
		    f->dirty_start - f->clears * f->dirty_step : 0;
	for (i = 0; i < n; i++) {
		pg = (i * 37 + f->clears * 11) % FAKE_PAGES;
		/* a zero page stays zero half the time */
		if (pg % 4 == 0)
			memset(f->ram + pg * WIRE_PAGE, 0, WIRE_PAGE);
		else
			f->ram[pg * WIRE_PAGE + f->clears % WIRE_PAGE] += 1;
		f->dirty_bits[pg / 64] |= 1ull << (pg % 64);
	}
	if (f->on_clear)
		f->on_clear(f);
}

static inline int f_dirty(struct lm_dev *d, bool clear, lm_dirty_fn fn, void *arg)
{
	struct fake *f = F(d);
	uint64_t bits[FAKE_PAGES / 64];

	if (clear)
		guest_writes(f);
	memcpy(bits, f->dirty_bits, sizeof(bits));
	if (clear)
		memset(f->dirty_bits, 0, sizeof(f->dirty_bits));
	/* two replies, as the kernel splits a range */
	fn(arg, FAKE_IOVA, FAKE_PAGES / 2 * WIRE_PAGE, WIRE_PAGE, bits,
	   FAKE_PAGES / 2);
	if (f->log_half)
		return 0;
	fn(arg, FAKE_IOVA + FAKE_PAGES / 2 * WIRE_PAGE,
	   FAKE_PAGES / 2 * WIRE_PAGE, WIRE_PAGE, bits + FAKE_PAGES / 128,
	   FAKE_PAGES / 2);
	return 0;
}

static inline void f_detach(struct lm_dev *d)
{
	struct fake *f = F(d);

	f->detached = true;
	/* the kernel's rollback of an uncommitted fd */
	if (f->attached && !f->committed)
		f->state = LM_ST_RUNNING;
}

static inline int f_release(struct lm_dev *d, int timeout_ms, uint32_t *result)
{
	struct fake *f = F(d);

	(void)timeout_ms;
	f_detach(d);
	/* the kernel announces abort, the VMM acks */
	if (f->nphases < 32)
		f->phases[f->nphases++] = VFIO_MIG_MIG_PHASE_ABORT;
	if (f->sibling)
		f->sibling_at_abort = f->sibling->state;
	*result = 0;
	return 0;
}

static inline int f_compat(struct lm_dev *d, const char *bdf,
			   const struct mig_ident *src, const uint8_t *needs,
			   size_t needs_len, bool *tolerated, char *why,
			   size_t why_len, char *notes, size_t notes_len)
{
	struct fake *f = F(d);

	(void)bdf;
	f->compat_asked++;
	f->compat_src = *src;
	f->compat_needs_len = needs_len;
	if (needs_len <= sizeof(f->compat_needs))
		memcpy(f->compat_needs, needs, needs_len);
	*tolerated = f->compat_tolerated;
	snprintf(why, why_len, "%s", f->compat_refused ? f->compat_refused : "");
	snprintf(notes, notes_len, "%s", f->compat_notes ? f->compat_notes : "");
	return f->compat_refused ? 1 : 0;
}

/* The source kernel's dev-needs answer: f->needs, f->needs_len bytes. */
static inline int f_needs(struct lm_dev *d, const char *bdf, uint8_t *buf,
			  size_t len)
{
	struct fake *f = F(d);

	(void)bdf;
	f->needs_asked++;
	if (f->needs_len > len)
		return -EMSGSIZE;
	memcpy(buf, f->needs, f->needs_len);
	return f->needs_len;
}

/* The shadow as the kernel has it: engage needs RUNNING (no migration state). */
static inline int f_shadow(struct lm_dev *d, const char *bdf, uint8_t cmd,
			   struct lm_shadow *sh)
{
	struct fake *f = F(d);
	const char *why = NULL;
	int ret = 0;

	(void)bdf;
	switch (cmd) {
	case VFIO_MIG_CMD_SHADOW_GET:
		sh->available = !f->shadow_unavailable;
		sh->engaged = f->engaged;
		sh->engage_ns = f->engages ? 42000 : 0;
		return 0;
	case VFIO_MIG_CMD_SHADOW_ATTACH:
		f->engages++;
		f->engage_nphases = f->nphases;
		f->engage_clears = f->clears;
		f->engage_state = f->state;
		why = f->engage_refused ? f->engage_refused :
		      f->engaged ? "the shadow is engaged already" :
		      f->state != LM_ST_RUNNING &&
		      f->state != LM_ST_PRE_COPY ? "the device is migrating" :
		      NULL;
		ret = why ? -EBUSY : 0;
		f->engaged |= !ret;
		if (!why && f->engage_stuck) {
			why = "the state could not be read nor the engage undone: still engaged";
			ret = -EIO;
		}
		break;
	case VFIO_MIG_CMD_SHADOW_DETACH:
		f->releases++;
		f->release_state = f->state;
		why = f->handback_refused ? f->handback_refused :
		      !f->engaged ? "no shadow is engaged" : NULL;
		ret = why ? -EIO : 0;
		f->engaged &= !!ret;
		break;
	default:
		return -EINVAL;
	}
	if (ret)
		snprintf(d->err, sizeof(d->err), "%s: %s", why, strerror(-ret));
	return ret;
}

/* VFIO_MIG_CTL_PREPARE: counted; the early record is in the stream already */
static inline int f_prepare(struct lm_dev *d)
{
	F(d)->prepares++;
	if (F(d)->prepare_delay_ms)
		usleep(F(d)->prepare_delay_ms * 1000);
	if (F(d)->prepare_ret)
		snprintf(d->err, sizeof(d->err), "prepare: %s",
			 strerror(-F(d)->prepare_ret));
	return F(d)->prepare_ret;
}

#define FAKE_OPS							\
	.ident = f_ident, .attach = f_attach, .set_state = f_set_state,	\
	.get_state = f_get_state, .stream_read = f_stream_read,		\
	.stream_write = f_stream_write, .pages = f_pages, .commit = f_commit, \
	.phase = f_phase, .dirty = f_dirty, .detach = f_detach,		\
	.release = f_release, .compat = f_compat, .needs = f_needs,	\
	.shadow = f_shadow, .prepare = f_prepare

static const struct lm_dev_ops __attribute__((unused)) fake_ops = {
	FAKE_OPS,
};

/* The same with the kernel's page staging and landing. */
static const struct lm_dev_ops __attribute__((unused)) fake_ops_staging = {
	FAKE_OPS,
	.stage_fd = f_stage_fd, .stage = f_stage, .land = f_land,
	.landed = f_landed,
};

struct side {
	struct fake f;
	struct lm_dev d;
	/* a VM's further devices (side_add_dev()): fx[0] is the second */
	struct fake fx[LM_DEVS_MAX - 1];
	struct lm_dev dx[LM_DEVS_MAX - 1];
	unsigned int ndev;		/* 0: one, f */
	char bdfs[2][LM_DEVS_MAX * WIRE_STR];	/* the lists o.dev, o.target_dev name */
	struct json_out js;
	struct lm_out out;
	char *log;
	size_t log_len;
	char *err;			/* stderr of the migration, both sides */
	size_t err_len;
	struct lm_opts o;
	int fd, code;
	volatile sig_atomic_t stop;
};

static inline void side_init(struct side *s, const char *bdf, bool target)
{
	unsigned int i;

	memset(s, 0, sizeof(*s));
	edu_ident(&s->f.id, bdf);
	s->f.open = true;
	s->f.precopy_ok = true;
	s->f.target = target;
	s->f.state = LM_ST_RUNNING;
	s->f.cut_fd = -1;
	s->f.ram = malloc(FAKE_PAGES * WIRE_PAGE);
	for (i = 0; i < FAKE_PAGES * WIRE_PAGE; i++)
		s->f.ram[i] = target ? 0xaa : (i / WIRE_PAGE % 3 ? i * 13 : 0);
	for (i = 0; i < FAKE_STREAM; i++)
		s->f.stream[i] = i * 31 + 7;
	s->f.precopy_len = 2500;
	s->d.ops = &fake_ops;
	s->d.priv = &s->f;
	s->d.stop = &s->stop;
	s->js.enabled = true;
	s->js.out = open_memstream(&s->log, &s->log_len);
	s->out.js = &s->js;
	s->out.role = target ? "target" : "source";
	s->out.text = s->js.out;
	s->o.dev = "0000:00:03.0";
	s->o.target_dev = "0000:00:05.0";
	s->o.host = "peer";
	s->o.port = WIRE_PORT;
	s->o.downtime_ms = 100000;	/* converge at once unless a test says */
	s->o.max_rounds = 10;
	s->o.timeout_ms = 3000;
	s->o.vmm_timeout_ms = 1000;
}

/*
 * A further device of the same VM: its own fake kernel device, the same
 * guest RAM. On the source, @bdf migrates to @target_bdf; on the target,
 * @bdf is the device.
 */
static inline void side_add_dev(struct side *s, const char *bdf,
				const char *target_bdf)
{
	unsigned int k = s->ndev ? s->ndev - 1 : 0, i;
	struct fake *f = &s->fx[k];

	if (!s->ndev) {
		s->ndev = 1;
		s->o.devs[0] = s->o.dev;
		s->o.target_devs[0] = s->o.target_dev;
	}
	*f = s->f;
	f->nphases = 0;
	edu_ident(&f->id, s->f.target ? target_bdf : bdf);
	/* a stream of its own: one delivered to the wrong device fails */
	for (i = 0; i < FAKE_STREAM; i++)
		f->stream[i] = i * 29 + 3 + 17 * (k + 1);
	s->dx[k] = s->d;
	s->dx[k].priv = f;
	f->sibling = &s->f;
	s->f.sibling = f;
	s->o.devs[s->ndev] = bdf;
	s->o.target_devs[s->ndev] = target_bdf;
	s->ndev++;
	s->o.ndev = s->ndev;
	snprintf(s->bdfs[0], sizeof(s->bdfs[0]), "%s", s->o.devs[0]);
	snprintf(s->bdfs[1], sizeof(s->bdfs[1]), "%s", s->o.target_devs[0]);
	for (i = 1; i < s->ndev; i++) {
		size_t l0 = strlen(s->bdfs[0]), l1 = strlen(s->bdfs[1]);

		snprintf(s->bdfs[0] + l0, sizeof(s->bdfs[0]) - l0, ",%s",
			 s->o.devs[i]);
		snprintf(s->bdfs[1] + l1, sizeof(s->bdfs[1]) - l1, ",%s",
			 s->o.target_devs[i]);
	}
	s->o.dev = s->bdfs[0];
	s->o.target_dev = s->bdfs[1];
}

/* The backends of a run: d, then dx[]; copied back by side_unpack(). */
static inline unsigned int side_pack(struct side *s, struct lm_dev *dv)
{
	unsigned int i, n = s->ndev ? s->ndev : 1;

	dv[0] = s->d;
	for (i = 1; i < n; i++)
		dv[i] = s->dx[i - 1];
	return n;
}

static inline void side_unpack(struct side *s, const struct lm_dev *dv)
{
	unsigned int i, n = s->ndev ? s->ndev : 1;

	s->d = dv[0];
	for (i = 1; i < n; i++)
		s->dx[i - 1] = dv[i];
}

static inline void side_free(struct side *s)
{
	fflush(s->js.out);
	/* LM_SHOW=1: print both sides' events */
	if (getenv("LM_SHOW") && s->log)
		printf("%s", s->log);
	fclose(s->js.out);
	free(s->log);
	free(s->err);
	free(s->f.ram);
}

static inline void *target_thread(void *arg)
{
	struct side *t = arg;
	struct lm_dev dv[LM_DEVS_MAX];
	unsigned int n = side_pack(t, dv);

	t->code = lm_target_run(&t->o, dv, n, t->fd, &t->out, &t->stop);
	side_unpack(t, dv);
	fflush(t->js.out);
	return NULL;
}

/* kselftest's ASSERT needs _metadata; a plain check for the helper */
#define ASSERT_EQ_RAW(a, b) do { if ((a) != (b)) abort(); } while (0)

/*
 * Run a migration between the source's end @sfd and the target's @tfd;
 * returns with both codes set.
 */
static inline void migrate_fds(struct side *s, struct side *t, int sfd,
			       int tfd)
{
	struct lm_dev dv[LM_DEVS_MAX];
	unsigned int i;
	pthread_t th;
	FILE *saved = stderr;

	s->fd = sfd;
	t->fd = tfd;
	t->f.src = &s->f;
	for (i = 0; i + 1 < t->ndev && i + 1 < s->ndev; i++)
		t->fx[i].src = &s->fx[i];
	if (t->f.cut_fd == -2)
		t->f.cut_fd = tfd;
	free(s->err);
	stderr = open_memstream(&s->err, &s->err_len);
	pthread_create(&th, NULL, target_thread, t);
	side_pack(s, dv);
	s->code = lm_source_run(&s->o, dv, s->fd, &s->out, &s->stop);
	side_unpack(s, dv);
	fflush(s->js.out);
	pthread_join(th, NULL);
	fclose(stderr);
	stderr = saved;
}

/* ... over a socket pair. */
static inline void migrate(struct side *s, struct side *t)
{
	int sv[2];

	ASSERT_EQ_RAW(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	migrate_fds(s, t, sv[0], sv[1]);
}

/*
 * A relay between the two: the source's bytes go through as they are;
 * each frame of the target's is read whole and the payload of its READY
 * and DONE handed to @rewrite (which may shorten or change it) before the
 * frame goes on, its header and checksum made anew.
 */
typedef void (*relay_fn)(uint16_t type, uint8_t *p, uint32_t *len);
/*
 * Called before each frame of the target's goes on, with the sequence
 * number it would have: may write frames of its own to @to, numbered from
 * @seq on; returns how many (the frames after them are renumbered).
 */
typedef uint32_t (*relay_inject_fn)(uint16_t type, int to, uint32_t seq);

struct relay_dir {
	int from, to;
	relay_fn rewrite;		/* NULL: bytes as they come */
	relay_inject_fn inject;		/* NULL: none */
};

static inline bool relay_read(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			return false;
		p += r;
		n -= r;
	}
	return true;
}

static inline bool relay_write(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

		if (r <= 0)
			return false;
		p += r;
		n -= r;
	}
	return true;
}

/* One relay pair at a time: a test runs one migrate_relayed() at once. */
static inline void *relay_thread(void *arg)
{
	static uint8_t buf[2][WIRE_MAX_PAYLOAD + WIRE_HDR_LEN];
	struct relay_dir *r = arg;
	bool framed = r->rewrite || r->inject;
	uint8_t *b = buf[framed], *p = b + WIRE_HDR_LEN;
	uint32_t extra = 0;

	for (;;) {
		uint32_t len, seq;
		uint16_t type;
		uint64_t sum;
		ssize_t n;

		if (!framed) {
			n = read(r->from, b, sizeof(buf[0]));
			if (n <= 0 || !relay_write(r->to, b, n))
				break;
			continue;
		}
		if (!relay_read(r->from, b, WIRE_HDR_LEN))
			break;
		type = wire_get16(b + 6);
		len = wire_get32(b + 8);
		seq = wire_get32(b + 12);
		sum = wire_get64(b + 16);
		if (len > WIRE_MAX_PAYLOAD || !relay_read(r->from, p, len))
			break;
		if (r->inject)
			extra += r->inject(type, r->to, seq + extra);
		if (r->rewrite && (type == WIRE_READY || type == WIRE_DONE)) {
			bool summed = sum == wire_sum(p, len);

			r->rewrite(type, p, &len);
			wire_hdr_encode(b, type, len, seq + extra,
					summed ? wire_sum(p, len) : sum);
		} else if (extra) {
			wire_hdr_encode(b, type, len, seq + extra, sum);
		}
		if (!relay_write(r->to, b, WIRE_HDR_LEN + len))
			break;
	}
	shutdown(r->to, SHUT_WR);
	return NULL;
}

/*
 * migrate() with the target's READY and DONE payloads through @rewrite
 * and frames of @inject's before the target's (either may be NULL).
 */
static inline void migrate_relayed_inject(struct side *s, struct side *t,
					  relay_fn rewrite,
					  relay_inject_fn inject)
{
	struct relay_dir up, down;
	pthread_t ru, rd;
	int a[2], b[2];

	ASSERT_EQ_RAW(0, socketpair(AF_UNIX, SOCK_STREAM, 0, a));
	ASSERT_EQ_RAW(0, socketpair(AF_UNIX, SOCK_STREAM, 0, b));
	up = (struct relay_dir){ .from = a[1], .to = b[0] };
	down = (struct relay_dir){ .from = b[0], .to = a[1], .rewrite = rewrite,
				   .inject = inject };
	pthread_create(&ru, NULL, relay_thread, &up);
	pthread_create(&rd, NULL, relay_thread, &down);
	migrate_fds(s, t, a[0], b[1]);
	/* both ends have closed theirs: the relays see EOF and end */
	pthread_join(ru, NULL);
	pthread_join(rd, NULL);
	close(a[1]);
	close(b[0]);
}

static inline void migrate_relayed(struct side *s, struct side *t,
				   relay_fn rewrite)
{
	migrate_relayed_inject(s, t, rewrite, NULL);
}

static inline bool has(struct side *s, const char *needle)
{
	fflush(s->js.out);
	return s->log && strstr(s->log, needle);
}

static inline int count(struct side *s, const char *needle)
{
	const char *p;
	int n = 0;

	fflush(s->js.out);
	for (p = s->log; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static inline bool phases_are(struct fake *f, const uint32_t *want, int n)
{
	return f->nphases == n && !memcmp(f->phases, want, n * sizeof(*want));
}


#endif
