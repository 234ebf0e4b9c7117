// SPDX-License-Identifier: GPL-2.0
/*
 * `migctl migrate`, the source side of a live migration: handshake, RAM
 * ranges, pre-copy rounds from the DMA dirty log, convergence, switchover
 * and the commit point, rollback on any failure before it.
 * Documentation/live-migration.rst.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio_mig.h>
#include <linux/vfio_mig_ctl.h>

#include "hash.h"
#include "lm.h"
#include "migctl.h"

/* One device of the migration; a VM's devices migrate together. */
struct sdev {
	struct lm_dev *d;
	const char *bdf, *target_bdf;
	struct mig_ident me, peer;
	bool attached, announced;
	bool precopy;		/* in PRE_COPY: the rounds carry its stream */
	bool early_stream;	/* or a prepare's stream, without PRE_COPY */
	int ret;		/* its stop's, in a worker of its own */
};

struct src {
	const struct lm_opts *o;
	struct lm_dev *d;			/* the first device's: pages, RAM */
	struct sdev dv[LM_DEVS_MAX];
	unsigned int ndev;
	struct wire_conn c;
	struct lm_out *out;
	volatile sig_atomic_t *stop;
	struct mig_ident me, peer;
	struct wire_range r[WIRE_RANGES_MAX];
	uint32_t nr;
	uint64_t base[WIRE_RANGES_MAX + 1];	/* first page index of each range */
	uint64_t npages;
	uint64_t *pending;			/* bitmap of pages to send */
	uint64_t *held;				/* hash of what the target holds, 0: unknown */
	struct mh_key hkey;			/* this migration's page hash key */
	uint8_t *buf;				/* device stream bytes */
	uint64_t *list;				/* a round's page indices */
	struct pipe *pipe;
	/*
	 * Pages go from copies the kernel staged (VFIO_MIG_CTL_STAGE) to the
	 * socket, not through migctl's buffers; @staged_why: why not, when
	 * staging was tried and failed
	 */
	bool pages_staged;
	char staged_why[384];
	/*
	 * batches the kernel could not stage for want of memory (ENOMEM),
	 * read through migctl's buffers instead (the reader thread's)
	 */
	uint64_t stage_enomem;
	bool precopy;				/* some device in PRE_COPY */
	bool attached, committed, peer_aborted;
	uint32_t round;
	struct lm_stats st;
	struct lm_conv conv;
	uint64_t rtt_us, last_clear_us, vmm_ack_us;
	/* this round */
	uint64_t r_pages, r_sent, r_zero, r_unch, r_bytes, r_stream, r_us;
	/* --bandwidth */
	uint64_t rl_t0, rl_bytes;
	/* where the time goes (us): page reads, hashing, sends, acks, dirty-get */
	uint64_t t_read, t_hash, t_send, t_ack, t_dirty;
	/* the switchover's steps (us): pause ack, device stop, transfer, load, commit */
	uint64_t sw_pause, sw_stop, sw_dirty, sw_xfer, sw_load, sw_commit;
	/*
	 * The target's own account (1.5; a target before sends none): of
	 * sw_load, its drain of queued pages and its devices' load; of
	 * sw_commit, its start (the devices' RUNNING arcs and its VMMs'
	 * start acks) and those acks alone (us). Each bounded by the
	 * window this side saw it in.
	 */
	bool tgt_load_known, tgt_run_known;
	uint64_t tgt_drain, tgt_load, tgt_run, tgt_vmm;
	/*
	 * The device's early state: prepared, then sent and acknowledged by
	 * the target (us): prepare (the source's own save), then the round
	 * that carries it, until the target's ack (its load)
	 */
	bool early;
	uint64_t early_prepare_us, early_ack_us, early_bytes;
	/* when a prepare first held a device's DMA starts (0: none did) */
	uint64_t t_hold_us;
	/* --via-shadow: engaged; the engage as migctl and the kernel timed it */
	bool engaged;
	uint64_t shadow_us, shadow_ns;
	char err[512];
	const char *stage;
	int exit_code;
};

static void failf(struct src *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void failf(struct src *s, const char *fmt, ...)
{
	va_list ap;

	if (s->err[0])
		return;		/* the first cause is the one to name */
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

static bool stopped(struct src *s)
{
	if (s->stop && *s->stop) {
		failf(s, "interrupted by a signal");
		return true;
	}
	return false;
}

/* ---- pages and ranges ---- */

static int64_t page_index(struct src *s, uint64_t iova)
{
	uint32_t lo = 0, hi = s->nr;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (iova < s->r[mid].iova)
			hi = mid;
		else if (iova >= s->r[mid].iova + s->r[mid].length)
			lo = mid + 1;
		else
			return s->base[mid] + (iova - s->r[mid].iova) / WIRE_PAGE;
	}
	return -1;
}

static uint64_t index_iova(struct src *s, uint64_t idx)
{
	uint32_t lo = 0, hi = s->nr;

	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;

		if (idx >= s->base[mid])
			lo = mid;
		else
			hi = mid;
	}
	return s->r[lo].iova + (idx - s->base[lo]) * WIRE_PAGE;
}

static void mark(struct src *s, uint64_t iova, uint64_t len)
{
	uint64_t a = iova & ~(uint64_t)(WIRE_PAGE - 1), end = iova + len;
	int64_t i;

	for (; a < end; a += WIRE_PAGE) {
		i = page_index(s, a);
		if (i >= 0)
			s->pending[i / 64] |= 1ull << (i % 64);
	}
}

static void on_dirty(void *arg, uint64_t iova, uint64_t len, uint64_t ps,
		     const uint64_t *bits, size_t nbits)
{
	struct src *s = arg;
	size_t i;

	(void)len;
	for (i = 0; i < nbits; i++) {
		if (!(i % 64) && !bits[i / 64]) {
			i += 63;
			continue;
		}
		if (bits[i / 64] >> (i % 64) & 1)
			mark(s, iova + i * ps, ps);
	}
}

struct range_acc {
	struct wire_range r[WIRE_RANGES_MAX * 4];
	uint32_t n;
	bool overflow;
};

static void on_range(void *arg, uint64_t iova, uint64_t len, uint64_t ps,
		     const uint64_t *bits, size_t nbits)
{
	struct range_acc *a = arg;

	(void)ps;
	(void)bits;
	(void)nbits;
	if (a->n && a->r[a->n - 1].iova + a->r[a->n - 1].length == iova) {
		a->r[a->n - 1].length += len;
		return;
	}
	if (a->n == sizeof(a->r) / sizeof(a->r[0])) {
		a->overflow = true;
		return;
	}
	a->r[a->n].iova = iova;
	a->r[a->n++].length = len;
}

static int cmp_range(const void *x, const void *y)
{
	const struct wire_range *a = x, *b = y;

	return a->iova < b->iova ? -1 : a->iova > b->iova;
}

static uint64_t pending_count(struct src *s)
{
	uint64_t n = 0, w;

	for (w = 0; w < (s->npages + 63) / 64; w++)
		n += __builtin_popcountll(s->pending[w]);
	return n;
}

/* The RAM @v's dirty log covers (whole-log dirty-get), page aligned, merged. */
static int dev_ranges(struct src *s, struct sdev *v, struct wire_range *r,
		      uint32_t *nr)
{
	struct range_acc *a = calloc(1, sizeof(*a));
	uint64_t end;
	uint32_t i, n = 0;
	int ret;

	if (!a) {
		failf(s, "out of memory");
		return -ENOMEM;
	}
	ret = v->d->ops->dirty(v->d, false, on_range, a);
	if (ret) {
		failf(s, "reading the RAM ranges from the dirty log: %s", v->d->err);
		goto out;
	}
	qsort(a->r, a->n, sizeof(a->r[0]), cmp_range);
	for (i = 0; i < a->n; i++) {
		uint64_t lo = a->r[i].iova & ~(uint64_t)(WIRE_PAGE - 1);
		uint64_t hi = (a->r[i].iova + a->r[i].length + WIRE_PAGE - 1) &
			      ~(uint64_t)(WIRE_PAGE - 1);

		if (n && lo <= r[n - 1].iova + r[n - 1].length) {
			end = r[n - 1].iova + r[n - 1].length;
			if (hi > end)
				r[n - 1].length = hi - r[n - 1].iova;
			continue;
		}
		if (n == WIRE_RANGES_MAX || a->overflow) {
			failf(s, "the dirty log covers more than %u RAM ranges",
			      WIRE_RANGES_MAX);
			ret = -E2BIG;
			goto out;
		}
		r[n].iova = lo;
		r[n++].length = hi - lo;
	}
	if (!n) {
		failf(s, "the dirty log of %s covers no RAM: the VMM started none",
		      v->bdf);
		ret = -ENODATA;
	}
	*nr = n;
out:
	free(a);
	return ret;
}

/*
 * The guest RAM: the ranges the dirty logs cover. A VM's devices share
 * its RAM and the pages are read through the first one's mapping, so
 * every device's log must cover the same.
 */
static int take_ranges(struct src *s)
{
	struct wire_range *r = NULL;
	uint32_t i, n;
	int ret;

	ret = dev_ranges(s, &s->dv[0], s->r, &s->nr);
	if (!ret && s->ndev > 1) {
		r = calloc(WIRE_RANGES_MAX, sizeof(*r));
		if (!r) {
			failf(s, "out of memory");
			return -ENOMEM;
		}
	}
	for (i = 1; !ret && i < s->ndev; i++) {
		ret = dev_ranges(s, &s->dv[i], r, &n);
		if (!ret && (n != s->nr || memcmp(r, s->r, n * sizeof(*r)))) {
			failf(s, "the dirty logs of %s and %s cover different RAM: the devices of one migration must be one VM's, mapped alike",
			      s->dv[0].bdf, s->dv[i].bdf);
			ret = -EINVAL;
		}
	}
	free(r);
	if (ret)
		return ret;
	s->npages = 0;
	for (i = 0; i < s->nr; i++) {
		s->base[i] = s->npages;
		s->npages += s->r[i].length / WIRE_PAGE;
	}
	s->base[s->nr] = s->npages;
	s->pending = calloc((s->npages + 63) / 64, 8);
	s->held = calloc(s->npages, 8);
	s->list = calloc(s->npages, 8);
	if (!s->pending || !s->held || !s->list) {
		failf(s, "out of memory for %" PRIu64 " pages", s->npages);
		return -ENOMEM;
	}
	return 0;
}

/* ---- sending ---- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static int send_failed(struct src *s, const char *what)
{
	failf(s, "%s: %s", what, s->c.err);
	return -EIO;
}

static void rate_limit(struct src *s, uint64_t bytes)
{
	uint64_t due, now;

	if (!s->o->bandwidth)
		return;
	s->rl_bytes += bytes;
	due = s->rl_t0 + s->rl_bytes * 1000000 / s->o->bandwidth;
	now = lm_now_us();
	if (due > now)
		usleep(due - now);
}

/*
 * The page pipeline of a round: a reader thread reads batches of 256
 * pages through the kernel, hashes and classifies them into one of
 * LM_SLOTS frame buffers; the main thread sends the frames in order. The
 * kernel's page copies thus overlap the network, and on the target the
 * writes (lm_dst.c does the same the other way).
 */
#define LM_SLOTS	3
#define SLOT_BYTES	((size_t)WIRE_BATCH * WIRE_PAGE)
/*
 * Staging fds, used in turn by the batches: a batch's pages stay with the
 * socket until the peer has them, and a fd's pages are reused without a
 * new allocation (which the kernel zeroes first, init_on_alloc) only once
 * the socket let go of them. LM_STAGE_FDS MiB of pages in turn outlast the
 * 4 MiB socket buffers at each end. At most LM_SLOTS batches are in
 * the pipeline, so a fd is never staged while its pages are being sent.
 */
#define LM_STAGE_FDS	12

struct slot {
	uint8_t *buf;			/* WIRE_BATCH pages */
	uint8_t meta[WIRE_PAGE];
	struct iovec iov[WIRE_BATCH + 1];
	uint32_t niov, nd;
	uint64_t len, sum;
	int sfd;			/* its batch's staging fd, -1: none */
	uint64_t tail;			/* data bytes staged there */
	bool ready;
};

struct pipe {
	struct src *s;
	uint8_t *mem;			/* the slots' buffers */
	struct slot slot[LM_SLOTS];
	const uint64_t *list;		/* page indices, in order */
	uint64_t n;			/* of them */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool quit;			/* the sender gave up */
	int err;			/* the reader's error */
	uint64_t done;			/* batches the reader produced */
	int sfd[LM_STAGE_FDS];		/* staging fds */
	unsigned int nsfd;
	bool stage_off;			/* the round's staging met ENOMEM */
	uint64_t turn;			/* the reader's: batches staged */
};

/* All zeros? Stops at the first word that is not (most pages: the first). */
static bool page_is_zero(const uint8_t *pg)
{
	const uint64_t *w = (const uint64_t *)pg;
	size_t i;

	for (i = 0; i < WIRE_PAGE / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

/*
 * @sl's descriptor block and checksum, its @nd descriptors in @desc and
 * the block hashes of its @ndata data pages in @h (none with the link's
 * sum_off).
 */
static void slot_meta(struct src *s, struct slot *sl, const uint64_t *desc,
		      uint32_t nd, const uint64_t *h, uint32_t ndata)
{
	uint64_t sum = 0;
	uint32_t i;

	s->r_sent += ndata;
	sl->nd = nd;
	if (!nd)
		return;
	wire_pages_meta(sl->meta, s->round, desc, nd);
	sl->iov[0].iov_base = sl->meta;
	sl->iov[0].iov_len = WIRE_PAGE;
	sl->len = WIRE_PAGE + (uint64_t)ndata * WIRE_PAGE;
	if (!s->c.sum_off) {
		sum = wire_sum_begin(sl->len);
		sum = wire_sum_add(sum, mh_hash64(sl->meta, WIRE_PAGE,
						  MH_SEED_PAGE));
		for (i = 0; i < ndata; i++)
			sum = wire_sum_add(sum, h[i]);
	}
	sl->sum = sum;
}

/*
 * Read, hash and classify one batch into @sl. The content hash (keyed)
 * says whether the target holds the page; the checksum's block hash is
 * not taken when the link makes no checksum (wire_conn.sum_off). 0 or
 * -errno.
 */
static int fill_slot(struct src *s, struct slot *sl, const uint64_t *idx,
		     uint32_t n)
{
	uint64_t iovas[WIRE_BATCH], desc[WIRE_BATCH], h[WIRE_BATCH];
	uint64_t t0 = lm_now_us(), t1;
	bool no_sum = s->c.sum_off;
	uint32_t i, nd = 0, ndata = 0;
	int ret;

	for (i = 0; i < n; i++)
		iovas[i] = index_iova(s, idx[i]);
	ret = s->d->ops->pages(s->d, false, iovas, n, sl->buf);
	if (ret)
		return ret;
	t1 = lm_now_us();
	s->t_read += t1 - t0;
	sl->niov = 1;
	sl->tail = 0;
	for (i = 0; i < n; i++) {
		uint8_t *pg = sl->buf + (size_t)i * WIRE_PAGE;
		uint64_t hv = no_sum ? 0 : mh_hash64(pg, WIRE_PAGE, MH_SEED_PAGE);
		bool is_zero = page_is_zero(pg);
		uint64_t hk;

		/* what the target holds: keyed, so the guest cannot forge it */
		hk = mh_keyed64(&s->hkey, pg, WIRE_PAGE);
		hk = hk ? hk : 1;	/* 0 means "unknown" in held[] */
		if (s->held[idx[i]] == hk) {
			s->r_unch++;
			continue;
		}
		s->held[idx[i]] = hk;
		if (is_zero) {
			desc[nd++] = iovas[i] | WIRE_PG_ZERO;
			s->r_zero++;
			continue;
		}
		desc[nd++] = iovas[i] | WIRE_PG_DATA;
		h[ndata++] = hv;
		sl->iov[sl->niov].iov_base = pg;
		sl->iov[sl->niov++].iov_len = WIRE_PAGE;
	}
	slot_meta(s, sl, desc, nd, h, ndata);
	s->t_hash += lm_now_us() - t1;
	return 0;
}

/*
 * The same through the kernel (VFIO_MIG_CTL_STAGE): it copies the pages
 * into pages of its own, hashes and classifies them as fill_slot() does;
 * the data pages go from there to the socket (wire_sendv_fd()). The
 * kernel's copy and hashes are one step: read_ms holds both.
 */
static int stage_slot(struct src *s, struct slot *sl, const uint64_t *idx,
		      uint32_t n)
{
	uint64_t iovas[WIRE_BATCH], desc[WIRE_BATCH], h[WIRE_BATCH];
	uint64_t hashes[WIRE_BATCH];
	uint8_t kinds[WIRE_BATCH];
	struct lm_stage st = {
		.iovas = iovas, .hashes = hashes, .kinds = kinds,
		.sums = s->c.sum_off ? NULL : h, .key = s->hkey.k, .count = n,
	};
	uint64_t t0 = lm_now_us();
	uint32_t i, nd = 0;
	int ret;

	for (i = 0; i < n; i++) {
		iovas[i] = index_iova(s, idx[i]);
		hashes[i] = s->held[idx[i]];
	}
	ret = s->d->ops->stage(s->d, sl->sfd, &st);
	if (ret)
		return ret;
	s->t_read += lm_now_us() - t0;
	for (i = 0, nd = 0; i < n; i++)
		nd += kinds[i] == VFIO_MIG_CTL_STAGE_DATA;
	if (st.ndata != nd) {
		snprintf(s->d->err, sizeof(s->d->err),
			 "staging: the kernel staged %u data pages, its kinds say %u",
			 st.ndata, nd);
		return -EIO;
	}
	for (i = 0, nd = 0; i < n; i++) {
		switch (kinds[i]) {
		case VFIO_MIG_CTL_STAGE_UNCHANGED:
			s->r_unch++;
			continue;
		case VFIO_MIG_CTL_STAGE_ZERO:
			desc[nd++] = iovas[i] | WIRE_PG_ZERO;
			s->r_zero++;
			break;
		default:
			desc[nd++] = iovas[i] | WIRE_PG_DATA;
			break;
		}
		s->held[idx[i]] = hashes[i];
	}
	sl->niov = 1;
	sl->tail = (uint64_t)st.ndata * WIRE_PAGE;
	slot_meta(s, sl, desc, nd, h, st.ndata);
	return 0;
}

static void *reader(void *arg)
{
	struct pipe *p = arg;
	uint64_t b, nb = (p->n + WIRE_BATCH - 1) / WIRE_BATCH;
	int ret = 0;

	for (b = 0; b < nb && !ret; b++) {
		struct slot *sl = &p->slot[b % LM_SLOTS];
		uint64_t first = b * WIRE_BATCH;
		uint32_t n = p->n - first < WIRE_BATCH ? p->n - first : WIRE_BATCH;

		bool quit;

		pthread_mutex_lock(&p->lock);
		while (sl->ready && !p->quit)
			pthread_cond_wait(&p->cond, &p->lock);
		quit = p->quit;
		pthread_mutex_unlock(&p->lock);
		if (quit)
			break;
		sl->sfd = p->nsfd && !p->stage_off ?
			  p->sfd[p->turn++ % p->nsfd] : -1;
		ret = sl->sfd >= 0 ? stage_slot(p->s, sl, p->list + first, n) :
				     fill_slot(p->s, sl, p->list + first, n);
		/*
		 * The kernel short of memory for a batch's copies: the fd holds
		 * nothing and the held hashes are as they were, so the batch
		 * goes the old way, through migctl's buffers, and so does the
		 * rest of the round (staging is tried again the next).
		 */
		if (ret == -ENOMEM && sl->sfd >= 0) {
			p->s->stage_enomem++;
			p->stage_off = true;
			sl->sfd = -1;
			ret = fill_slot(p->s, sl, p->list + first, n);
		}
		pthread_mutex_lock(&p->lock);
		if (ret)
			p->err = ret;
		else
			sl->ready = true;
		p->done = b + 1;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
	return NULL;
}

/*
 * Close the staging fds: before the control fd goes (their reference on
 * it would hold up the kernel's rollback) and at the end.
 */
static void close_stage_fds(struct src *s)
{
	struct pipe *p = s->pipe;

	while (p && p->nsfd)
		close(p->sfd[--p->nsfd]);
}

/*
 * The staging fds, once, when pages go through the kernel's staging (the
 * first time decides: a module without it sends every round's pages
 * through migctl's buffers, and says why).
 */
static void open_stage_fds(struct src *s)
{
	struct pipe *p = s->pipe;
	int fd;

	while (s->pages_staged && p->nsfd < LM_STAGE_FDS) {
		fd = s->d->ops->stage_fd(s->d);
		if (fd < 0) {
			snprintf(s->staged_why, sizeof(s->staged_why), "%s",
				 s->d->err);
			s->pages_staged = false;
			close_stage_fds(s);
			return;
		}
		p->sfd[p->nsfd++] = fd;
	}
}

/* Send every pending page, clearing the bitmap. */
static int send_pending(struct src *s)
{
	struct pipe *p = s->pipe;
	uint64_t w, bits, b, nb, n = 0;
	pthread_t th;
	int ret = 0;

	for (w = 0; w < (s->npages + 63) / 64; w++) {
		bits = s->pending[w];
		s->pending[w] = 0;
		while (bits) {
			s->list[n++] = w * 64 + __builtin_ctzll(bits);
			bits &= bits - 1;
		}
	}
	s->r_pages += n;
	if (!n)
		return 0;
	p->s = s;
	p->list = s->list;
	p->n = n;
	open_stage_fds(s);
	p->stage_off = false;
	p->quit = false;
	p->err = 0;
	p->done = 0;
	for (b = 0; b < LM_SLOTS; b++)
		p->slot[b].ready = false;
	if (pthread_create(&th, NULL, reader, p)) {
		failf(s, "cannot start the page reader thread");
		return -ENOMEM;
	}
	nb = (n + WIRE_BATCH - 1) / WIRE_BATCH;
	for (b = 0; b < nb; b++) {
		struct slot *sl = &p->slot[b % LM_SLOTS];

		pthread_mutex_lock(&p->lock);
		while (!sl->ready && !p->err)
			pthread_cond_wait(&p->cond, &p->lock);
		ret = sl->ready ? 0 : p->err;
		pthread_mutex_unlock(&p->lock);
		if (ret) {
			failf(s, "%s", s->d->err);
			break;
		}
		if (sl->nd) {
			uint64_t t0 = lm_now_us();

			ret = wire_sendv_fd(&s->c, WIRE_PAGES, sl->iov,
					    sl->niov, sl->sum, sl->sfd,
					    sl->tail);
			s->t_send += lm_now_us() - t0;
			if (ret) {
				send_failed(s, "sending pages");
				break;
			}
			s->r_bytes += sl->len + WIRE_HDR_LEN;
			rate_limit(s, sl->len + WIRE_HDR_LEN);
		}
		pthread_mutex_lock(&p->lock);
		sl->ready = false;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		if (stopped(s)) {
			ret = -EINTR;
			break;
		}
	}
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(th, NULL);
	return ret;
}

/* What @v's data fd has now (@final: to its end), to the target. */
static int forward_stream(struct src *s, struct sdev *v, bool final)
{
	uint8_t *b = s->buf;	/* between batches, free */
	uint64_t t0 = lm_now_us();
	ssize_t n;
	int ret;

	for (;;) {
		wire_put32(b, final ? WIRE_STREAM_STOPCOPY : WIRE_STREAM_PRECOPY);
		wire_put32(b + 4, v - s->dv);
		n = v->d->ops->stream_read(v->d, b + 8, WIRE_STREAM_MAX);
		if (n == -ENOMSG || n == -EAGAIN) {
			if (!final)
				return 0;	/* the temporary end of pre-copy */
			if (lm_now_us() - t0 > (uint64_t)s->o->timeout_ms * 1000) {
				failf(s, "%s: the device's stop-copy data did not end within %u ms",
				      v->bdf, s->o->timeout_ms);
				return -ETIMEDOUT;
			}
			usleep(1000);
			continue;
		}
		if (n < 0) {
			failf(s, "%s", v->d->err);
			return n;
		}
		if (!n)
			return 0;
		ret = wire_send(&s->c, WIRE_STREAM, b, n + 8);
		if (ret)
			return send_failed(s, "sending device state");
		s->r_stream += n;
		s->st.stream_bytes += n;
	}
}

/* ---- the peer ---- */

/* Wait for @type; an ABORT or anything else fails with the reason. */
static int expect(struct src *s, uint16_t type, int timeout_ms,
		  struct wire_msg *m)
{
	struct wire_abort a;
	int ret;

	ret = wire_recv(&s->c, m, timeout_ms);
	if (ret) {
		failf(s, "waiting for %s from the target: %s",
		      wire_type_name(type), s->c.err);
		return ret;
	}
	if (m->h.type == type)
		return 0;
	if (m->h.type == WIRE_ABORT && !wire_dec_abort(m->p, m->h.length, &a)) {
		s->peer_aborted = true;
		failf(s, "the target aborted: %s", a.reason);
		return -ECONNABORTED;
	}
	failf(s, "protocol error: got %s from the target, expected %s",
	      wire_type_name(m->h.type), wire_type_name(type));
	return -EPROTO;
}

static void refused_event(struct src *s, const struct wire_refuse *r)
{
	lm_ev_begin(s->out, "refused");
	json_str(s->out->js, "field", r->field);
	json_str(s->out->js, "source", r->source);
	json_str(s->out->js, "target", r->target);
	json_str(s->out->js, "reason", r->reason);
	lm_ev_end(s->out);
}

/*
 * After a failed send, the target may have said why before closing: an
 * ABORT, or a REFUSE (one that refused this peer at once, --allow-peer,
 * may close before HELLO has gone).
 */
static void peek_abort(struct src *s)
{
	struct wire_refuse r;
	struct wire_abort a;
	struct wire_msg m;
	char saved[sizeof(s->err)];

	if (!wire_readable(&s->c))
		return;
	s->c.broken = false;
	if (wire_recv(&s->c, &m, 200))
		return;
	snprintf(saved, sizeof(saved), "%s", s->err);
	if (m.h.type == WIRE_REFUSE && !wire_dec_refuse(m.p, m.h.length, &r)) {
		refused_event(s, &r);
		s->peer_aborted = true;
		snprintf(s->err, sizeof(s->err),
			 "the target refused: %.30s: %.160s (source %.60s, target %.60s) (%.150s)",
			 r.field, r.reason, r.source, r.target, saved);
		return;
	}
	if (m.h.type != WIRE_ABORT || wire_dec_abort(m.p, m.h.length, &a))
		return;
	s->peer_aborted = true;
	snprintf(s->err, sizeof(s->err), "the target aborted: %.200s (%.280s)",
		 a.reason, saved);
}

/*
 * Announce @ph for each device in turn: the VMM acks each. The first
 * failure ends it, but for commit, which every device's VMM must hear:
 * then the first failure is returned after all.
 */
static int phase(struct src *s, uint32_t ph)
{
	bool all = ph == VFIO_MIG_MIG_PHASE_COMMIT;
	uint64_t t0 = lm_now_us(), t1;
	uint32_t result = 0;
	struct sdev *v;
	int ret, first = 0;

	for (v = s->dv; v < s->dv + s->ndev; v++) {
		t1 = lm_now_us();
		ret = v->d->ops->phase(v->d, ph, s->o->vmm_timeout_ms, &result);
		if (ret) {
			failf(s, "%s", v->d->err);
			if (!all)
				return ret;
			first = first ? first : ret;
			continue;
		}
		v->announced = true;
		lm_ev_begin(s->out, "phase");
		json_str(s->out->js, "phase", lm_phase_name(ph));
		if (s->ndev > 1)
			json_str(s->out->js, "dev", v->bdf);
		json_u64(s->out->js, "seq", v->d->seq);
		json_u64(s->out->js, "result", result);
		json_u64(s->out->js, "ms", (lm_now_us() - t1) / 1000);
		lm_ev_end(s->out);
		if (result) {
			failf(s, "the source VMM refused phase %s%s%s: %s",
			      lm_phase_name(ph), s->ndev > 1 ? " of " : "",
			      s->ndev > 1 ? v->bdf : "", strerror(result));
			if (!all)
				return -(int)result;
			first = first ? first : -(int)result;
		}
	}
	if (ph == VFIO_MIG_MIG_PHASE_BEGIN)
		s->vmm_ack_us = lm_now_us() - t0;
	return first;
}

static int set_state(struct src *s, struct sdev *v, uint32_t st)
{
	int ret = v->d->ops->set_state(v->d, st);

	if (ret)
		failf(s, "%s", v->d->err);
	return ret;
}

/* ---- --via-shadow ---- */

static int shadow_op(struct src *s, uint8_t cmd, struct lm_shadow *sh)
{
	return s->d->ops->shadow(s->d, s->o->dev, cmd, sh);
}

static void shadow_event(struct src *s, const char *action, bool ok,
			 const char *message)
{
	lm_ev_begin(s->out, "shadow");
	json_str(s->out->js, "action", action);
	json_bool(s->out->js, "ok", ok);
	json_u64(s->out->js, "engage_us", s->shadow_us);
	json_u64(s->out->js, "engage_ns", s->shadow_ns);
	json_str(s->out->js, "message", message);
	lm_ev_end(s->out);
}

/* At the handshake: what the engage would refuse after all the rounds. */
static int shadow_check(struct src *s)
{
	struct lm_shadow sh = {};
	int ret = shadow_op(s, VFIO_MIG_CMD_SHADOW_GET, &sh);

	if (ret)
		failf(s, "--via-shadow: shadow-get: %s", s->d->err);
	else if (!sh.available)
		failf(s, "--via-shadow: no shadow adapter for %s's profile %s (is sriov_shadow loaded?)",
		      s->o->dev, s->dv[0].me.profile);
	else if (s->dv[0].me.trap_mode == VFIO_MIG_TRAP_MODE_NONE)
		failf(s, "--via-shadow: %s is in trap mode none, the shadow needs sparse or all (migctl dev set %s trap sparse, before the VMM opens it)",
		      s->o->dev, s->o->dev);
	else
		return 0;
	return ret ? ret : -EOPNOTSUPP;
}

/*
 * Before the pause: the shadow serves the guest's accesses, and the
 * device's stop-copy data is the shadow's state.
 */
static int shadow_engage(struct src *s)
{
	struct lm_shadow sh = {};
	uint64_t t0 = lm_now_us();
	int ret = shadow_op(s, VFIO_MIG_CMD_SHADOW_ATTACH, NULL);

	if (ret) {
		failf(s, "--via-shadow: shadow engage refused: %s", s->d->err);
		/*
		 * An engage the kernel could not undo leaves the shadow
		 * engaged: the rollback hands it back.
		 */
		if (!shadow_op(s, VFIO_MIG_CMD_SHADOW_GET, &sh) && sh.engaged)
			s->engaged = true;
		return ret;
	}
	s->shadow_us = lm_now_us() - t0;
	s->engaged = true;
	/* the kernel's measure: how long the guest's accesses were held */
	if (!shadow_op(s, VFIO_MIG_CMD_SHADOW_GET, &sh))
		s->shadow_ns = sh.engage_ns;
	shadow_event(s, "engage", true, "");
	if (!s->out->js->enabled)
		fprintf(s->out->text,
			"shadow engaged in %.1f ms (guest accesses held %.1f us): the device state goes through the shadow adapter\n",
			s->shadow_us / 1e3, s->shadow_ns / 1e3);
	return 0;
}

/*
 * After a rollback (@left: what it left undone): the device serves again.
 * A rollback that closed the control fd made the kernel hand the device
 * back itself (the engage was this migration's): a detach that finds no
 * shadow, or none left engaged, is that.
 */
static void shadow_release(struct src *s, const char *left)
{
	char why[sizeof(s->d->err) + 32];
	struct lm_shadow sh = {};
	int ret = -EAGAIN;

	if (left[0]) {
		snprintf(why, sizeof(why), "not handed back: the rollback is incomplete");
		if (!shadow_op(s, VFIO_MIG_CMD_SHADOW_GET, &sh) && !sh.engaged)
			ret = 0;
	} else {
		ret = shadow_op(s, VFIO_MIG_CMD_SHADOW_DETACH, NULL);
		snprintf(why, sizeof(why), "hand-back refused: %s", s->d->err);
		if (ret == -ENOENT)
			ret = 0;
	}
	shadow_event(s, "release", !ret, ret ? why : "");
	if (ret)
		fprintf(stderr,
			"migctl: warning: migrate %s: the shadow adapter keeps serving the guest (%s); 'migctl shadow release %s' hands the device back\n",
			s->o->dev, why, s->o->dev);
	else if (!s->out->js->enabled)
		fprintf(s->out->text, "shadow released: %s serves the guest again\n",
			s->o->dev);
}

/* ---- stages ---- */

/* What the source kernel says of device @v; the guest's needs into @needs. */
static int dev_ident(struct src *s, struct sdev *v, uint8_t *needs,
		     uint32_t *needs_len)
{
	bool open;
	int ret;

	ret = v->d->ops->ident(v->d, v->bdf, &v->me, &open);
	if (ret) {
		failf(s, "%s", v->d->err);
		return ret;
	}
	if (!open) {
		failf(s, "%s: no VMM has the device open", v->bdf);
		return -ENOTCONN;
	}
	*needs_len = 0;
	/* what the guest uses: the target's profile checks its VF offers it */
	if (v->d->ops->needs) {
		ret = v->d->ops->needs(v->d, v->bdf, needs, WIRE_NEEDS_MAX);
		if (ret < 0) {
			failf(s, "%s", v->d->err);
			return ret;
		}
		*needs_len = ret;
	}
	return 0;
}

/* The target's answer to HELLO: ACCEPT, else why not (-errno). */
/*
 * How long to wait for a target step that waits for its VMM's acks: the
 * target asks them one device after the other, each for up to
 * --vmm-timeout-ms (ours, which HELLO tells it, or its own if shorter).
 */
static int vmm_wait_ms(const struct src *s)
{
	return s->o->timeout_ms + s->ndev * s->o->vmm_timeout_ms;
}

static int hello_answer(struct src *s)
{
	struct mig_ident peer[LM_DEVS_MAX];
	struct wire_refuse r;
	struct wire_msg m;
	unsigned int i;
	int ret;

	/* the target attaches and waits for its VMM's prepare acks */
	ret = wire_recv(&s->c, &m, vmm_wait_ms(s));
	if (ret) {
		failf(s, "waiting for the target's answer to HELLO: %s", s->c.err);
		return ret;
	}
	if (m.h.type == WIRE_REFUSE) {
		if (wire_dec_refuse(m.p, m.h.length, &r)) {
			failf(s, "the target refused with a malformed REFUSE");
			return -EPROTO;
		}
		refused_event(s, &r);
		s->peer_aborted = true;
		failf(s, "the target refused: %s: %s (source %s, target %s)%s",
		      r.field, r.reason, r.source, r.target,
		      !strcmp(r.source, WIRE_DEVS_BDF) ?
		      "; its migctl takes one device per migration (wire before 1.4)" :
		      "");
		return -ECONNREFUSED;
	}
	if (m.h.type == WIRE_ABORT) {
		struct wire_abort a;

		s->peer_aborted = true;
		failf(s, "the target aborted: %s",
		      wire_dec_abort(m.p, m.h.length, &a) ? "?" : a.reason);
		return -ECONNABORTED;
	}
	if (m.h.type != WIRE_ACCEPT) {
		failf(s, "protocol error: got %s in answer to HELLO",
		      wire_type_name(m.h.type));
		return -EPROTO;
	}
	if (wire_dec_accept(m.p, m.h.length, peer, s->ndev)) {
		failf(s, "protocol error: a malformed ACCEPT, or not one of %u devices",
		      s->ndev);
		return -EPROTO;
	}
	for (i = 0; i < s->ndev; i++)
		s->dv[i].peer = peer[i];
	return 0;
}

static int handshake(struct src *s)
{
	uint8_t p[WIRE_HELLO_MAX_LEN];
	struct wire_hello h = {};
	struct wire_refuse r;
	char notes[1024];
	struct sdev *v;
	unsigned int i;
	int ret;

	s->stage = "handshake";
	for (i = 0; i < s->ndev; i++) {
		struct wire_hello_dev *hd = i ? &h.more[i - 1] : NULL;

		v = &s->dv[i];
		ret = dev_ident(s, v, hd ? hd->needs : h.needs,
				hd ? &hd->needs_len : &h.needs_len);
		if (ret)
			return ret;
		if (hd) {
			hd->src = v->me;
			snprintf(hd->target_bdf, sizeof(hd->target_bdf), "%s",
				 v->target_bdf);
		}
	}
	if (s->o->via_shadow) {
		ret = shadow_check(s);
		if (ret)
			return ret;
	}
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		ret = v->d->ops->attach(v->d, v->bdf);
		if (ret) {
			failf(s, "%s", v->d->err);
			return ret;
		}
		v->attached = true;
		s->attached = true;
	}
	h.src = s->dv[0].me;
	snprintf(h.target_bdf, sizeof(h.target_bdf), "%s", s->dv[0].target_bdf);
	h.ndev = s->ndev;
	h.timeout_ms = s->o->timeout_ms;
	h.vmm_timeout_ms = s->o->vmm_timeout_ms;
	ret = wire_send(&s->c, WIRE_HELLO, p, wire_enc_hello(p, &h));
	if (ret)
		return send_failed(s, "sending HELLO");
	ret = hello_answer(s);
	if (ret)
		return ret;
	/* a 1.3 target inside TLS checks no payload checksum: none made */
	s->c.sum_off = s->c.sum_unchecked && s->dv[0].peer.proto_minor >= 3;
	/* the target checked; the source checks too (both name the same field) */
	notes[0] = 0;
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		size_t l = strlen(notes);
		char one[256];

		if (!lm_compat_check(&v->me, &v->peer, &r, one, sizeof(one))) {
			if (one[0])
				snprintf(notes + l, sizeof(notes) - l, "%s%s",
					 l ? "; " : "", one);
		} else {
			failf(s, "incompatible target%s%s: %s: %s (source %s, target %s)",
			      s->ndev > 1 ? " device " : "",
			      s->ndev > 1 ? v->target_bdf : "", r.field,
			      r.reason, r.source, r.target);
			return -EPROTO;
		}
	}
	lm_ev_begin(s->out, "accepted");
	json_str(s->out->js, "dev", s->o->dev);
	json_str(s->out->js, "target_dev", s->o->target_dev);
	json_str(s->out->js, "peer_kernel", s->dv[0].peer.kernel);
	json_str(s->out->js, "tolerated", notes);
	json_bool(s->out->js, "payload_checksums", !s->c.sum_off);
	lm_ev_end(s->out);
	if (!s->out->js->enabled)
		fprintf(s->out->text, "accepted by the target (%s)%s%s\n",
			s->dv[0].peer.kernel, notes[0] ? ", tolerated: " : "",
			notes);
	return 0;
}

static int send_ranges(struct src *s)
{
	uint8_t p[8 + 16 * WIRE_RANGES_MAX];
	struct wire_msg m;
	int ret;

	s->stage = "ranges";
	ret = phase(s, VFIO_MIG_MIG_PHASE_BEGIN);
	if (ret)
		return ret;
	ret = take_ranges(s);
	if (ret)
		return ret;
	lm_ev_begin(s->out, "ranges");
	json_u64(s->out->js, "count", s->nr);
	json_u64(s->out->js, "bytes", s->npages * WIRE_PAGE);
	lm_ev_end(s->out);
	ret = wire_send(&s->c, WIRE_RANGES, p, wire_enc_ranges(p, s->r, s->nr));
	if (ret)
		return send_failed(s, "sending RAM ranges");
	return expect(s, WIRE_RANGES_OK, 0, &m);
}

static void round_event(struct src *s, uint64_t pending, uint64_t est,
			uint64_t dirty_rate, bool final)
{
	double mibs = s->r_us ? (double)s->r_bytes / (1 << 20) /
				(s->r_us / 1e6) : 0;

	/* the switchover's transfer is "final", not a pre-copy round */
	lm_ev_begin(s->out, final ? "final" : "round");
	json_u64(s->out->js, "round", s->round);
	json_u64(s->out->js, "pages", s->r_pages);
	json_u64(s->out->js, "pages_sent", s->r_sent);
	json_u64(s->out->js, "zero_pages", s->r_zero);
	json_u64(s->out->js, "unchanged_pages", s->r_unch);
	json_u64(s->out->js, "bytes", s->r_bytes);
	json_u64(s->out->js, "stream_bytes", s->r_stream);
	json_u64(s->out->js, "ms", s->r_us / 1000);
	lm_ev_double(s->out, "mib_per_s", mibs);
	json_u64(s->out->js, "dirty_pages_per_s", dirty_rate);
	json_u64(s->out->js, "pending_pages", pending);
	json_u64(s->out->js, "est_downtime_ms", est == UINT64_MAX ? 0 : est);
	lm_ev_end(s->out);
	if (!s->out->js->enabled)
		fprintf(s->out->text,
			"%s %u: %" PRIu64 " pages (%" PRIu64 " sent, %" PRIu64
			" zero, %" PRIu64 " unchanged) %.1f MiB in %" PRIu64
			" ms, %.1f MiB/s, dirty %" PRIu64
			" pages/s, est. downtime %" PRIu64 " ms\n",
			final ? "final" : "round", s->round, s->r_pages,
			s->r_sent, s->r_zero, s->r_unch,
			(double)s->r_bytes / (1 << 20), s->r_us / 1000, mibs,
			dirty_rate, est == UINT64_MAX ? 0 : est);
	fflush(s->out->text);
}

/* One round: pre-copy bytes, the pending pages, ROUND_END, ROUND_ACK. */
static int do_round(struct src *s)
{
	uint8_t p[32];
	uint64_t u[3], t0, t_end;
	struct wire_msg m;
	struct sdev *v;
	int ret;

	s->round++;
	s->r_pages = s->r_sent = s->r_zero = s->r_unch = 0;
	s->r_bytes = s->r_stream = 0;
	t0 = s->rl_t0 = lm_now_us();
	s->rl_bytes = 0;
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		if (!v->precopy && !v->early_stream)
			continue;
		ret = forward_stream(s, v, false);
		if (ret)
			return ret;
	}
	ret = send_pending(s);
	if (ret)
		return ret;
	u[0] = s->round;
	u[1] = s->r_sent + s->r_zero;
	u[2] = s->r_stream;
	ret = wire_send(&s->c, WIRE_ROUND_END, p, wire_enc_u64s(p, u, 3));
	if (ret)
		return send_failed(s, "sending ROUND_END");
	t_end = lm_now_us();
	ret = expect(s, WIRE_ROUND_ACK, 0, &m);
	if (ret)
		return ret;
	/* an ack of another round would pass for this one's (the early state's) */
	if (wire_dec_u64s(m.p, m.h.length, u, 1) || u[0] != s->round) {
		failf(s, "protocol error: the target acknowledged %s, not round %u",
		      m.h.length < 8 ? "a malformed round" : "another round",
		      s->round);
		return -EPROTO;
	}
	s->t_ack += lm_now_us() - t_end;
	s->r_us = lm_now_us() - t0;
	if (!s->rtt_us || lm_now_us() - t_end < s->rtt_us)
		s->rtt_us = lm_now_us() - t_end;
	lm_conv_measure(&s->conv, s->r_bytes, s->r_us);
	s->st.rounds = s->round;
	s->st.pages_seen += s->r_pages;
	s->st.pages_sent += s->r_sent;
	s->st.zero_pages += s->r_zero;
	s->st.unchanged_pages += s->r_unch;
	s->st.page_bytes += s->r_bytes;
	s->st.page_us += s->r_us;
	return 0;
}

/* Every device's log read and cleared into the pending pages. */
static int dirty_clear(struct src *s)
{
	uint64_t t0 = lm_now_us();
	struct sdev *v;
	int ret = 0;

	for (v = s->dv; v < s->dv + s->ndev && !ret; v++) {
		ret = v->d->ops->dirty(v->d, true, on_dirty, s);
		if (ret)
			failf(s, "%s", v->d->err);
	}
	s->t_dirty += lm_now_us() - t0;
	s->last_clear_us = lm_now_us();
	return ret;
}

/*
 * One round: the pending pages sent, then the log read (and cleared) into
 * the next round's pending set; @pending and @rate (pages dirtied per
 * second since the previous read) say what it left.
 */
static int round_and_read(struct src *s, uint64_t *pending, uint64_t *rate)
{
	uint64_t since;
	int ret;

	ret = do_round(s);
	if (ret)
		return ret;
	since = lm_now_us() - s->last_clear_us;
	ret = dirty_clear(s);
	if (ret)
		return ret;
	*pending = pending_count(s);
	*rate = since ? *pending * 1000000 / since : 0;
	/* the fixed cost: two VMM acks (pause, start) and 3 round trips */
	s->conv.overhead_ms = (2 * s->vmm_ack_us + 3 * s->rtt_us) / 1000;
	return 0;
}

static int rounds(struct src *s)
{
	enum lm_decision dec;
	uint64_t pending, est, rate;
	struct sdev *v;
	int ret;

	s->stage = "rounds";
	s->pages_staged = !s->o->copy_pages && s->d->ops->stage_fd &&
			  s->d->ops->stage && (!s->c.tls || s->c.ktls_tx);
	if (!s->o->copy_pages && !s->pages_staged)
		snprintf(s->staged_why, sizeof(s->staged_why), "%s",
			 s->c.tls && !s->c.ktls_tx ?
			 "TLS records are made by GnuTLS here, not by the kernel (no kTLS)" :
			 "the backend stages no pages");
	/*
	 * 6.2+: PRE_COPY streams the register log while the device runs
	 * (with --via-shadow too: the engage comes in PRE_COPY, and the
	 * stop-copy data is then the shadow's state, a few KiB).
	 */
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		if (!v->me.precopy || !v->peer.precopy)
			continue;
		ret = v->d->ops->set_state(v->d, LM_ST_PRE_COPY);
		if (!ret)
			v->precopy = s->precopy = true;
		else if (ret != -EINVAL && ret != -ENOTTY) {
			failf(s, "%s", v->d->err);
			return ret;
		}
	}
	/* round 1: everything (the log cleared first: later writes show up) */
	ret = dirty_clear(s);
	if (ret)
		return ret;
	memset(s->pending, 0xff, (s->npages + 63) / 64 * 8);
	if (s->npages % 64)
		s->pending[s->npages / 64] = (1ull << (s->npages % 64)) - 1;
	s->conv.overhead_ms = 0;
	for (;;) {
		ret = round_and_read(s, &pending, &rate);
		if (ret)
			return ret;
		dec = lm_conv_decide(&s->conv, s->round, pending, &est);
		round_event(s, pending, est, rate, false);
		if (stopped(s))
			return -EINTR;
		if (dec == LM_CONTINUE)
			continue;
		lm_ev_begin(s->out, "switchover");
		json_str(s->out->js, "reason",
			 dec == LM_SWITCH ? "converged" : "max-rounds");
		json_u64(s->out->js, "est_downtime_ms", est);
		json_u64(s->out->js, "pending_pages", pending);
		json_bool(s->out->js, "forced", dec == LM_SWITCH_FORCED);
		lm_ev_end(s->out);
		if (dec == LM_GIVE_UP) {
			failf(s, "did not converge in %u rounds: estimated downtime %" PRIu64
			      " ms > --downtime-ms %u (%" PRIu64
			      " pages dirty); use --on-max-rounds switchover to switch over anyway",
			      s->round, est, s->o->downtime_ms, pending);
			return -ETIMEDOUT;
		}
		if (!s->out->js->enabled)
			fprintf(s->out->text,
				"switchover (%s): est. downtime %" PRIu64
				" ms, %" PRIu64 " pages pending\n",
				dec == LM_SWITCH ? "converged" :
				"max-rounds reached, forced", est, pending);
		return 0;
	}
}

/*
 * The engage held the guest's device accesses (edu: some 200 ms), not its
 * vCPUs: one more round sends what they dirtied meanwhile, with the rest of
 * the last round's pages, while the guest still runs; the pause then carries
 * only what this round leaves.
 */
static int round_after_engage(struct src *s)
{
	uint64_t pending, rate;
	int ret;

	ret = dirty_clear(s);
	if (ret)
		return ret;
	ret = round_and_read(s, &pending, &rate);
	if (ret)
		return ret;
	round_event(s, pending, lm_conv_estimate(&s->conv, pending), rate,
		    false);
	return stopped(s) ? -EINTR : 0;
}

/*
 * The device's slow state moves before the stop: the kernel holds its DMA
 * and queues that state (VFIO_MIG_CTL_PREPARE: on PRE_COPY's saving fd, or
 * without PRE_COPY on a stream the call opens, whose fd the rounds then
 * forward as PRE_COPY's and the stop reads to its end); one more round carries it
 * with the pages dirtied meanwhile, and the target's ack of that round
 * says it is loaded (the target writes the stream as it arrives): the
 * switchover acknowledgement. Nothing to move, or no page to borrow: the
 * stop-copy moves it, as without this step.
 */
/*
 * Prepare device @v: 1 when its state is queued (the rounds then carry
 * it), 0 when the stop moves it, or -errno when the migration ends.
 */
static int prepare_dev(struct src *s, struct sdev *v)
{
	uint64_t t0 = lm_now_us();
	int ret;

	/*
	 * In PRE_COPY; or in RUNNING on a kernel without PRE_COPY, where the
	 * prepare opens the stream (a kernel with it prepares only in
	 * PRE_COPY: not when the peer has none).
	 */
	if (!v->d->ops->prepare || (!v->precopy && v->me.precopy))
		return 0;
	/*
	 * The target would refuse a PROFILE_EARLY record, and the whole
	 * migration with it: its stream is before 1.3, or its device cannot
	 * load one now (no page named to borrow; a module or migctl that
	 * does not say).
	 */
	if (v->peer.stream_minor < 3) {
		snprintf(v->d->err, sizeof(v->d->err),
			 "the target's migration stream is 1.%u: no early device state before 1.3",
			 v->peer.stream_minor);
		ret = -EPROTONOSUPPORT;
	} else if (!v->peer.early_load) {
		snprintf(v->d->err, sizeof(v->d->err),
			 "the target's device cannot load early device state now (%s)",
			 v->peer.proto_minor < 2 ?
			 "its migctl does not say whether it can" :
			 "no page named to borrow there, or its vfio_mig does not say");
		ret = -EPROTONOSUPPORT;
	} else {
		ret = v->d->ops->prepare(v->d);
		/*
		 * The kernel holds the DMA starts from the call on; one that
		 * timed out holds them too, until the stop (below).
		 */
		if ((!ret || ret == -ETIMEDOUT) && !s->t_hold_us)
			s->t_hold_us = t0;
	}
	s->early_prepare_us += lm_now_us() - t0;
	lm_ev_begin(s->out, "prepare");
	if (s->ndev > 1)
		json_str(s->out->js, "dev", v->bdf);
	json_bool(s->out->js, "early", !ret);
	if (ret)
		json_str(s->out->js, "why", v->d->err);
	json_u64(s->out->js, "ms", (lm_now_us() - t0) / 1000);
	lm_ev_end(s->out);
	/*
	 * A refused prepare queued nothing: the stop moves the state, as
	 * without this step (one that timed out, ETIMEDOUT, still holds
	 * the device's DMA until the stop). Only a device gone (or a
	 * signal) ends the migration.
	 */
	if (ret == -ENODEV || ret == -EINTR) {
		failf(s, "%s", v->d->err);
		return ret;
	}
	if (ret) {
		if (!s->out->js->enabled)
			fprintf(s->out->text,
				"%s%sdevice state moves in the stop: %s\n",
				s->ndev > 1 ? v->bdf : "",
				s->ndev > 1 ? ": " : "", v->d->err);
		return 0;
	}
	v->early_stream = true;
	return 1;
}

/*
 * The devices' slow state moves before the stop: the kernel holds each
 * one's DMA and queues that state (VFIO_MIG_CTL_PREPARE: on PRE_COPY's
 * saving fd, or without PRE_COPY on a stream the call opens, whose fd the
 * rounds then forward as PRE_COPY's and the stop reads to its end); one
 * more round carries it with the pages dirtied meanwhile, and the
 * target's ack of that round says it is loaded (the target writes the
 * stream as it arrives): the switchover acknowledgement. Nothing to move,
 * or no page to borrow: the stop-copy moves it, as without this step.
 */
static int prepare_switchover(struct src *s)
{
	uint64_t t0, bytes = s->st.stream_bytes;
	unsigned int i, early = 0;
	int ret;

	for (i = 0; i < s->ndev; i++) {
		ret = prepare_dev(s, &s->dv[i]);
		if (ret < 0)
			return ret;
		early += ret;
	}
	if (!early)
		return 0;
	t0 = lm_now_us();
	ret = round_after_engage(s);
	if (ret)
		return ret;
	s->early = true;
	s->early_ack_us = lm_now_us() - t0;
	s->early_bytes = s->st.stream_bytes - bytes;
	if (!s->out->js->enabled) {
		fprintf(s->out->text,
			"device state moved before the stop: prepared in %.1f ms, loaded by the target %.1f ms later (%" PRIu64 " stream bytes)\n",
			s->early_prepare_us / 1e3, s->early_ack_us / 1e3,
			s->early_bytes);
		fflush(s->out->text);
	}
	return 0;
}

/* A device's stop from its quiesced state: STOP (from RUNNING_P2P), STOP_COPY. */
static void *stop_dev(void *arg)
{
	struct sdev *v = arg;

	v->ret = 0;
	if (!v->precopy)
		v->ret = v->d->ops->set_state(v->d, LM_ST_STOP);
	if (!v->ret)
		v->ret = v->d->ops->set_state(v->d, LM_ST_STOP_COPY);
	return NULL;
}

/*
 * Every device quiesced first (no new DMA, none in flight: P2P, so that
 * none stops while another may still reach it), then each stopped and its
 * state saved, in parallel, a worker each, when there are several.
 */
static int stop_devices(struct src *s)
{
	struct sdev *v;
	int ret = 0;

	for (v = s->dv; v < s->dv + s->ndev; v++) {
		ret = set_state(s, v, v->precopy ? LM_ST_PRE_COPY_P2P :
						   LM_ST_RUNNING_P2P);
		if (ret)
			return ret;
	}
	lm_each(stop_dev, s->dv, sizeof(s->dv[0]), s->ndev);
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		if (v->ret) {
			failf(s, "%s", v->d->err);	/* it names the device */
			ret = v->ret;
		}
	}
	return ret;
}

static int switchover(struct src *s)
{
	uint64_t u[3], t0;
	uint8_t p[32];
	struct wire_msg m;
	struct sdev *v;
	int ret;

	s->stage = "switchover";
	if (!s->o->via_shadow) {
		ret = prepare_switchover(s);
		if (ret)
			return ret;
	}
	if (s->o->via_shadow) {
		ret = shadow_engage(s);
		if (ret)
			return ret;
		ret = round_after_engage(s);
		if (ret)
			return ret;
	}
	s->st.t_pause_us = lm_now_us();
	ret = phase(s, VFIO_MIG_MIG_PHASE_PAUSE);
	if (ret)
		return ret;
	t0 = lm_now_us();
	s->sw_pause = t0 - s->st.t_pause_us;
	ret = wire_send(&s->c, WIRE_SWITCHOVER, NULL, 0);
	if (ret)
		return send_failed(s, "sending SWITCHOVER");
	ret = stop_devices(s);
	if (ret)
		return ret;
	s->sw_stop = lm_now_us() - t0;
	/* the final pages: the VMM's marks and the device's last writes */
	s->round++;
	s->r_pages = s->r_sent = s->r_zero = s->r_unch = 0;
	s->r_bytes = s->r_stream = 0;
	t0 = lm_now_us();
	ret = dirty_clear(s);
	if (ret)
		return ret;
	s->sw_dirty = lm_now_us() - t0;
	t0 = s->rl_t0 = lm_now_us();
	s->rl_bytes = 0;
	ret = send_pending(s);
	if (ret)
		return ret;
	s->r_us = lm_now_us() - t0;
	s->st.pages_seen += s->r_pages;
	s->st.pages_sent += s->r_sent;
	s->st.zero_pages += s->r_zero;
	s->st.unchanged_pages += s->r_unch;
	s->st.page_bytes += s->r_bytes;
	s->st.page_us += s->r_us;
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		ret = forward_stream(s, v, true);
		if (ret)
			return ret;
	}
	round_event(s, 0, 0, 0, true);
	u[0] = s->round;
	u[1] = s->st.stream_bytes;
	u[2] = s->st.pages_sent + s->st.zero_pages;
	ret = wire_send(&s->c, WIRE_FINAL, p, wire_enc_u64s(p, u, 3));
	if (ret)
		return send_failed(s, "sending FINAL");
	t0 = lm_now_us();
	s->sw_xfer = t0 - s->st.t_pause_us - s->sw_pause - s->sw_stop;
	/* the target loads the state (RESUMING -> STOP) */
	ret = expect(s, WIRE_READY, s->o->timeout_ms, &m);
	s->sw_load = lm_now_us() - t0;
	if (!ret && !wire_dec_u64s(m.p, m.h.length, u, 2)) {
		s->tgt_load_known = true;
		s->tgt_drain = min_u64(u[0], s->sw_load);
		s->tgt_load = min_u64(u[1], s->sw_load - s->tgt_drain);
	}
	return ret;
}

/*
 * Between READY and COMMIT the target sends nothing: a frame now, or the
 * end of the link, says it gave up (an ABORT: a signal, its VMM) or is
 * gone. The devices are stopped but not committed: 0 to go on, or -errno
 * to roll back rather than commit a VM the target no longer holds. What
 * is left of the window is the commit call and COMMIT's flight.
 */
static int target_still_ready(struct src *s)
{
	struct wire_abort a;
	struct wire_msg m;

	if (stopped(s))
		return -EINTR;
	if (!wire_readable(&s->c))
		return 0;
	if (wire_recv(&s->c, &m, 200)) {
		failf(s, "the target sent no whole frame after READY (it sends none there): %s",
		      s->c.err);
		return -ECONNRESET;
	}
	if (m.h.type == WIRE_ABORT && !wire_dec_abort(m.p, m.h.length, &a)) {
		s->peer_aborted = true;
		failf(s, "the target aborted after READY: %s", a.reason);
		return -ECONNABORTED;
	}
	failf(s, "protocol error: got %s from the target after READY",
	      wire_type_name(m.h.type));
	return -EPROTO;
}

/* The commit point and after. Returns the exit code. */
static int commit(struct src *s)
{
	char late[300] = "";
	struct wire_msg m;
	struct sdev *v;
	uint64_t t0, u[3], status = 0;
	int ret;

	s->stage = "commit";
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		ret = set_state(s, v, LM_ST_STOP);
		if (ret)
			return -1;
	}
	if (target_still_ready(s))
		return -1;
	/*
	 * The commit point is the first device's commit. The target holds
	 * every device's state, loaded, and runs the VM: a later device
	 * whose commit fails (its VMM closed or reset it since its stop)
	 * does not hold the VM back, but this side could not keep it
	 * stopped: the migration ends unconfirmed, naming it.
	 */
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		ret = v->d->ops->commit(v->d, true);
		if (ret && !s->committed) {
			failf(s, "%s", v->d->err);
			return -1;
		}
		if (ret && !late[0])
			snprintf(late, sizeof(late),
				 "%s was not committed here (%.200s): the kernel may run it again and tell its VMM abort",
				 v->bdf, v->d->err);
		s->committed = true;
	}
	t0 = lm_now_us();
	ret = wire_send(&s->c, WIRE_COMMIT, NULL, 0);
	if (!ret)
		ret = expect(s, WIRE_DONE, vmm_wait_ms(s), &m);
	else
		failf(s, "sending COMMIT: %s", s->c.err);
	s->st.t_end_us = lm_now_us();
	s->sw_commit = s->st.t_end_us - t0;
	/* DONE's status (any version; a DONE too short to hold one says 0) */
	if (!ret && !wire_dec_u64s(m.p, m.h.length, u, 1))
		status = u[0];
	if (!ret && !wire_dec_u64s(m.p, m.h.length, u, 3)) {
		s->tgt_run_known = true;
		s->tgt_run = min_u64(u[1], s->sw_commit);
		s->tgt_vmm = min_u64(u[2], s->tgt_run);
	}
	/* whatever the target said: the VM must not run here again */
	{
		char saved[sizeof(s->err)];

		snprintf(saved, sizeof(saved), "%s", s->err);
		s->err[0] = 0;
		if (phase(s, VFIO_MIG_MIG_PHASE_COMMIT))
			fprintf(stderr, "migctl: warning: %s\n", s->err);
		snprintf(s->err, sizeof(s->err), "%s", saved);
	}
	if (ret) {
		char why[sizeof(s->err)];

		snprintf(why, sizeof(why), "%s", s->err);
		snprintf(s->err, sizeof(s->err),
			 "committed but unconfirmed: the target did not confirm (%.380s); the device stays stopped here, check the target",
			 why);
		return LM_EXIT_UNCONFIRMED;
	}
	if (status) {
		/* the target's DONE says its start was not confirmed */
		snprintf(s->err, sizeof(s->err),
			 "committed but unconfirmed: the target's start was not confirmed (its status %" PRIu64 ": the device did not run or its VMM did not acknowledge the start; see the target's log); the device stays stopped here%s%.200s",
			 status, late[0] ? "; also " : "", late);
		return LM_EXIT_UNCONFIRMED;
	}
	if (late[0]) {
		snprintf(s->err, sizeof(s->err),
			 "committed, the VM runs on the target, but %s", late);
		return LM_EXIT_UNCONFIRMED;
	}
	return LM_EXIT_OK;
}

/*
 * Before the commit point: every device back to RUNNING, the VM resumed.
 * A VMM resumes its guest at abort, so no VMM is told before every device
 * that can run again does: first each device is set RUNNING; then a
 * device with no arc back is left to the kernel's rollback (its control
 * fd closed: the kernel runs it again and announces abort itself, waited
 * for here); then the others' VMMs are told abort. (Two devices with no
 * arc back, both in ERROR, say: the second is closed after the first's
 * abort.)
 */
static int rollback(struct src *s)
{
	struct wire_abort a = { .code = EIO };
	uint8_t p[WIRE_ABORT_LEN];
	bool back[LM_DEVS_MAX] = {};
	char left[256] = "";
	uint32_t result, st;
	struct sdev *v;
	int ret;

	/* no signal may cut the rollback short */
	s->c.stop = NULL;
	if (!s->c.broken && !s->peer_aborted) {
		snprintf(a.reason, sizeof(a.reason), "source: %.190s", s->err);
		s->c.timeout_ms = 1000;
		wire_send(&s->c, WIRE_ABORT, p, wire_enc_abort(p, &a));
	}
	close_stage_fds(s);
	if (!s->attached)
		return LM_EXIT_FAILED;
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		v->d->stop = NULL;
		if (v->attached)
			back[v - s->dv] = !v->d->ops->set_state(v->d,
								 LM_ST_RUNNING);
	}
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		if (!v->attached || back[v - s->dv])
			continue;
		result = 0;
		if (!v->announced) {
			v->d->ops->detach(v->d);	/* the kernel rolls back */
			continue;
		}
		/* no arc back: the kernel's rollback (closing the fd) it is */
		ret = v->d->ops->release(v->d, s->o->vmm_timeout_ms, &result);
		if ((ret || result) && !left[0])
			snprintf(left, sizeof(left), "%.250s",
				 ret ? v->d->err : "the source VMM failed to resume");
	}
	for (v = s->dv; v < s->dv + s->ndev; v++) {
		if (!back[v - s->dv])
			continue;
		result = 0;
		if (v->announced) {
			ret = v->d->ops->phase(v->d, VFIO_MIG_MIG_PHASE_ABORT,
					       s->o->vmm_timeout_ms, &result);
			if ((ret || result) && !left[0])
				snprintf(left, sizeof(left), "%.250s",
					 ret ? v->d->err :
					 "the source VMM failed to resume");
		}
		if (!v->d->ops->get_state(v->d, &st) && st != LM_ST_RUNNING &&
		    !left[0])
			snprintf(left, sizeof(left), "%s is in %s", v->bdf,
				 lm_state_name(st));
	}
	lm_ev_begin(s->out, "rollback");
	json_bool(s->out->js, "ok", !left[0]);
	json_str(s->out->js, "message", left);
	lm_ev_end(s->out);
	if (left[0])
		fprintf(stderr, "migctl: rollback incomplete: %s\n", left);
	else if (!s->out->js->enabled)
		fprintf(s->out->text,
			"rolled back: %s %s running on the source, the VM resumed\n",
			s->o->dev, s->ndev > 1 ? "are" : "is");
	if (s->engaged)
		shadow_release(s, left);
	return left[0] ? LM_EXIT_ROLLBACK_FAILED : LM_EXIT_FAILED;
}

/* What the target said its part of the downtime was (1.5 targets). */
static void target_account(struct src *s)
{
	if (s->tgt_load_known)
		fprintf(s->out->text,
			"  of it on the target: its devices' load %.1f (after writing queued pages %.1f)",
			s->tgt_load / 1e3, s->tgt_drain / 1e3);
	if (s->tgt_run_known)
		fprintf(s->out->text,
			"%s its devices' run %.1f and its VMM's start ack %.1f",
			s->tgt_load_known ? ";" : "  of it on the target:",
			(s->tgt_run - s->tgt_vmm) / 1e3, s->tgt_vmm / 1e3);
	if (s->tgt_load_known || s->tgt_run_known)
		fputc('\n', s->out->text);
}

static void summary(struct src *s, const char *result, int code)
{
	uint64_t total = (s->st.t_end_us ? s->st.t_end_us : lm_now_us()) -
			 s->st.t_start_us;
	uint64_t down = s->st.t_pause_us && s->st.t_end_us ?
			s->st.t_end_us - s->st.t_pause_us : 0;
	/*
	 * How long the guest's device could not start DMA: from a prepare
	 * that held it (edu's DMA starts wait from then), else from the
	 * pause, to DONE (the target's start acknowledged).
	 */
	uint64_t held = down && s->t_hold_us ? s->st.t_end_us - s->t_hold_us :
					      down;
	double mibs = s->st.page_us ? (double)s->st.page_bytes / (1 << 20) /
				      (s->st.page_us / 1e6) : 0;

	lm_ev_begin(s->out, "summary");
	json_str(s->out->js, "result", result);
	json_str(s->out->js, "dev", s->o->dev);
	json_str(s->out->js, "target_dev", s->o->target_dev);
	json_u64(s->out->js, "devices", s->ndev);
	json_u64(s->out->js, "rounds", s->st.rounds);
	json_u64(s->out->js, "total_ms", total / 1000);
	json_u64(s->out->js, "downtime_ms", down / 1000);
	json_u64(s->out->js, "device_held_ms", held / 1000);
	json_u64(s->out->js, "bytes", s->c.tx_bytes);
	json_u64(s->out->js, "page_bytes", s->st.page_bytes);
	json_u64(s->out->js, "pages", s->st.pages_seen);
	json_u64(s->out->js, "pages_sent", s->st.pages_sent);
	json_u64(s->out->js, "zero_pages", s->st.zero_pages);
	json_u64(s->out->js, "unchanged_pages", s->st.unchanged_pages);
	json_u64(s->out->js, "stream_bytes", s->st.stream_bytes);
	lm_ev_double(s->out, "page_stream_mib_per_s", mibs);
	json_bool(s->out->js, "precopy", s->precopy);
	json_bool(s->out->js, "via_shadow", s->engaged);
	json_u64(s->out->js, "shadow_engage_us", s->shadow_us);
	json_u64(s->out->js, "shadow_engage_ns", s->shadow_ns);
	json_bool(s->out->js, "pages_staged", s->pages_staged);
	if (s->staged_why[0])
		json_str(s->out->js, "pages_staged_why", s->staged_why);
	json_u64(s->out->js, "stage_enomem_batches", s->stage_enomem);
	json_u64(s->out->js, "read_ms", s->t_read / 1000);
	json_u64(s->out->js, "hash_ms", s->t_hash / 1000);
	json_u64(s->out->js, "send_ms", s->t_send / 1000);
	json_u64(s->out->js, "ack_wait_ms", s->t_ack / 1000);
	json_u64(s->out->js, "dirty_get_ms", s->t_dirty / 1000);
	json_u64(s->out->js, "pause_ms", s->sw_pause / 1000);
	json_u64(s->out->js, "stop_copy_ms", s->sw_stop / 1000);
	json_u64(s->out->js, "stop_copy_us", s->sw_stop);
	json_u64(s->out->js, "final_dirty_ms", s->sw_dirty / 1000);
	json_u64(s->out->js, "final_transfer_ms", s->sw_xfer / 1000);
	json_u64(s->out->js, "target_load_ms", s->sw_load / 1000);
	json_u64(s->out->js, "commit_ms", s->sw_commit / 1000);
	if (s->tgt_load_known) {
		lm_ev_double(s->out, "target_drain_ms", s->tgt_drain / 1e3);
		lm_ev_double(s->out, "target_device_load_ms", s->tgt_load / 1e3);
	}
	if (s->tgt_run_known) {
		lm_ev_double(s->out, "target_start_ms", s->tgt_run / 1e3);
		lm_ev_double(s->out, "target_vmm_start_ms", s->tgt_vmm / 1e3);
	}
	json_bool(s->out->js, "early", s->early);
	json_u64(s->out->js, "early_prepare_ms", s->early_prepare_us / 1000);
	json_u64(s->out->js, "early_ack_ms", s->early_ack_us / 1000);
	json_u64(s->out->js, "early_bytes", s->early_bytes);
	if (s->err[0])
		json_str(s->out->js, "error", s->err);
	json_u64(s->out->js, "exit", code);
	lm_ev_end(s->out);
	if (!s->out->js->enabled && (code == LM_EXIT_OK ||
				     code == LM_EXIT_UNCONFIRMED))
		fprintf(s->out->text,
			"%s %s -> %s:%u %s: %u rounds, %" PRIu64
			" ms, downtime %" PRIu64 " ms, %.1f MiB, page stream %.1f MiB/s\n",
			code ? "committed (unconfirmed)" : "migrated", s->o->dev,
			s->o->host, s->o->port, s->o->target_dev, s->st.rounds,
			total / 1000, down / 1000,
			(double)s->c.tx_bytes / (1 << 20), mibs);
	if (!s->out->js->enabled && down && (code == LM_EXIT_OK ||
					     code == LM_EXIT_UNCONFIRMED))
		fprintf(s->out->text,
			"  downtime %.1f ms: vCPU pause ack %.1f, device stop-copy %.1f, final pages and device state %.1f (final dirty read %.1f of it), target load %.1f, commit to resume ack %.1f\n",
			down / 1e3, s->sw_pause / 1e3, s->sw_stop / 1e3,
			s->sw_xfer / 1e3, s->sw_dirty / 1e3, s->sw_load / 1e3,
			s->sw_commit / 1e3);
	if (!s->out->js->enabled && down && (code == LM_EXIT_OK ||
					     code == LM_EXIT_UNCONFIRMED))
		target_account(s);
	if (!s->out->js->enabled && held > down && (code == LM_EXIT_OK ||
						    code == LM_EXIT_UNCONFIRMED))
		fprintf(s->out->text,
			"  the guest's device DMA starts were held %.1f ms, from the prepare to the target's start acknowledged\n",
			held / 1e3);
	fflush(s->out->text);
}

static void free_src(struct src *s)
{
	explicit_bzero(&s->hkey, sizeof(s->hkey));
	if (s->pipe)
		free(s->pipe->mem);
	free(s->pipe);
	free(s->pending);
	free(s->held);
	free(s->list);
	free(s->buf);
	free(s);
}

int lm_source_run(const struct lm_opts *o, struct lm_dev *d, int fd,
		  struct lm_out *out, volatile sig_atomic_t *stop)
{
	struct src *s = calloc(1, sizeof(*s));
	int code, ret, i;

	if (!s || o->ndev > LM_DEVS_MAX || (o->ndev > 1 && o->via_shadow)) {
		close(fd);
		free(s);
		return migctl_fail(!s ? "out of memory" :
				   o->ndev > LM_DEVS_MAX ?
				   "migrate: more devices than one migration takes" :
				   "migrate: --via-shadow takes one device");
	}
	s->o = o;
	s->d = d;
	s->ndev = o->ndev ? o->ndev : 1;
	for (i = 0; i < (int)s->ndev; i++) {
		s->dv[i].d = &d[i];
		s->dv[i].bdf = o->ndev ? o->devs[i] : o->dev;
		s->dv[i].target_bdf = o->ndev ? o->target_devs[i] : o->target_dev;
	}
	s->out = out;
	s->stop = stop;
	s->st.t_start_us = lm_now_us();
	s->conv.bw_limit = o->bandwidth;
	s->conv.downtime_ms = o->downtime_ms;
	s->conv.max_rounds = o->max_rounds;
	s->conv.force = o->force_switchover;
	s->conv.state_bytes = 64 << 10;
	s->buf = malloc(WIRE_STREAM_MAX + 8);
	s->pipe = calloc(1, sizeof(*s->pipe));
	if (s->pipe)
		s->pipe->mem = wire_huge_alloc((size_t)LM_SLOTS * SLOT_BYTES);
	for (i = 0; s->pipe && s->pipe->mem && i < LM_SLOTS; i++) {
		s->pipe->slot[i].buf = s->pipe->mem + (size_t)i * SLOT_BYTES;
		s->pipe->slot[i].sfd = -1;
	}
	if (!s->buf || !s->pipe || !s->pipe->mem ||
	    wire_conn_init(&s->c, fd, o->timeout_ms, stop)) {
		close(fd);
		free_src(s);
		return migctl_fail("out of memory");
	}
	pthread_mutex_init(&s->pipe->lock, NULL);
	pthread_cond_init(&s->pipe->cond, NULL);
	s->stage = "tls";
	ret = mh_key_new(&s->hkey);
	if (ret)
		failf(s, "no randomness for the page hash key");
	else
		ret = lm_secure(&s->c, o, false, out);
	if (ret)
		failf(s, "%s", s->c.err);
	else
		ret = handshake(s);
	if (!ret)
		ret = send_ranges(s);
	if (!ret)
		ret = rounds(s);
	if (!ret)
		ret = switchover(s);
	if (ret) {
		stopped(s);
		if (s->c.broken)
			peek_abort(s);
		lm_ev_begin(out, "error");
		json_str(out->js, "stage", s->stage);
		json_str(out->js, "message", s->err);
		lm_ev_end(out);
		fprintf(stderr, "migctl: migrate %s: %s failed: %s\n", o->dev,
			s->stage, s->err);
		code = rollback(s);
		summary(s, code == LM_EXIT_FAILED ? "failed" : "rollback-failed",
			code);
	} else {
		code = commit(s);
		if (code < 0) {
			/* STOP or the commit ioctl failed: still before the point */
			fprintf(stderr, "migctl: migrate %s: commit failed: %s\n",
				o->dev, s->err);
			code = rollback(s);
			summary(s, code == LM_EXIT_FAILED ? "failed" :
				"rollback-failed", code);
		} else {
			if (code == LM_EXIT_UNCONFIRMED)
				fprintf(stderr, "migctl: migrate %s: %s\n",
					o->dev, s->err);
			summary(s, code ? "committed-unconfirmed" : "migrated",
				code);
		}
	}
	close_stage_fds(s);
	for (i = 0; i < (int)s->ndev; i++)
		d[i].ops->detach(&d[i]);
	wire_conn_free(&s->c);
	pthread_mutex_destroy(&s->pipe->lock);
	pthread_cond_destroy(&s->pipe->cond);
	free_src(s);
	return code;
}
