// SPDX-License-Identifier: GPL-2.0
/* The VMM's side of a live migration between hosts; see lmvmm.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/vfio_mig.h>

#include "lmvmm.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK	270
#endif

#define LM_RX_SIZE	(64 << 10)
/* Ranges per dirty-mark message (the family takes at most 256). */
#define LM_MARK_RANGES	128

/* ---- netlink ---- */

const char *lm_phase_name(uint32_t phase)
{
	switch (phase) {
	case VFIO_MIG_MIG_PHASE_BEGIN:
		return "begin";
	case VFIO_MIG_MIG_PHASE_PAUSE:
		return "pause";
	case VFIO_MIG_MIG_PHASE_ABORT:
		return "abort";
	case VFIO_MIG_MIG_PHASE_COMMIT:
		return "commit";
	case VFIO_MIG_MIG_PHASE_PREPARE:
		return "prepare";
	case VFIO_MIG_MIG_PHASE_START:
		return "start";
	default:
		return "(unknown)";
	}
}

int lm_nl_open(struct lm_nl *n)
{
	int ret, rcvbuf = 1 << 20;

	memset(n, 0, sizeof(*n));
	n->ev.fd = n->req.fd = -1;
	ret = genl_open(&n->ev, VFIO_MIG_FAMILY_NAME);
	if (ret) {
		snprintf(n->err, sizeof(n->err), "netlink family %s: %s",
			 VFIO_MIG_FAMILY_NAME, strerror(-ret));
		return ret;
	}
	ret = genl_open(&n->req, VFIO_MIG_FAMILY_NAME);
	if (ret) {
		snprintf(n->err, sizeof(n->err), "netlink family %s: %s",
			 VFIO_MIG_FAMILY_NAME, strerror(-ret));
		goto fail;
	}
	ret = genl_mcast_group(&n->ev, VFIO_MIG_FAMILY_NAME,
			       VFIO_MIG_MCGRP_MIG, &n->mcgrp);
	if (ret) {
		snprintf(n->err, sizeof(n->err),
			 "multicast group \"%s\" of %s: %s", VFIO_MIG_MCGRP_MIG,
			 VFIO_MIG_FAMILY_NAME, strerror(-ret));
		goto fail;
	}
	setsockopt(n->ev.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (setsockopt(n->ev.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
		       &n->mcgrp, sizeof(n->mcgrp))) {
		ret = -errno;
		snprintf(n->err, sizeof(n->err),
			 "joining multicast group %u: %s", n->mcgrp,
			 strerror(errno));
		goto fail;
	}
	return 0;
fail:
	lm_nl_close(n);
	return ret;
}

void lm_nl_close(struct lm_nl *n)
{
	genl_close(&n->ev);
	genl_close(&n->req);
}

/* Attributes of the two sets a notification may carry (mig, dev). */
#define EV_ATTR_MAX ((int)VFIO_MIG_A_MIG_MAX > (int)VFIO_MIG_A_DEV_MAX ? \
		     (int)VFIO_MIG_A_MIG_MAX : (int)VFIO_MIG_A_DEV_MAX)

/* How many "ram" attributes a mig message carries. */
static uint32_t count_ram(const struct nlmsghdr *h)
{
	const struct nlattr *a = (const void *)((const char *)NLMSG_DATA(h) +
						GENL_HDRLEN);
	int left = (int)h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	uint32_t n = 0;

	while (left >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) &&
	       a->nla_len <= left) {
		if ((a->nla_type & NLA_TYPE_MASK) == VFIO_MIG_A_MIG_RAM)
			n++;
		left -= NLA_ALIGN(a->nla_len);
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
	return n;
}

void lm_event_parse(const struct nlmsghdr *h, struct lm_event *e)
{
	/* the mig set and the dev set both have bdf = 1 */
	const struct nlattr *tb[EV_ATTR_MAX + 1];
	const struct genlmsghdr *gh = NLMSG_DATA(h);

	memset(e, 0, sizeof(*e));
	e->cmd = gh->cmd;
	genl_parse(h, tb, EV_ATTR_MAX);
	if (tb[VFIO_MIG_A_MIG_BDF])
		snprintf(e->bdf, sizeof(e->bdf), "%.*s",
			 (int)genl_len(tb[VFIO_MIG_A_MIG_BDF]),
			 (const char *)genl_data(tb[VFIO_MIG_A_MIG_BDF]));
	if (e->cmd == VFIO_MIG_CMD_MIG_STATE_NTF) {
		if (tb[VFIO_MIG_A_DEV_MIG_STATE])
			e->state = genl_get_u64(tb[VFIO_MIG_A_DEV_MIG_STATE]);
		return;
	}
	if (tb[VFIO_MIG_A_MIG_PHASE])
		e->phase = genl_get_u64(tb[VFIO_MIG_A_MIG_PHASE]);
	if (tb[VFIO_MIG_A_MIG_SEQ])
		e->seq = genl_get_u64(tb[VFIO_MIG_A_MIG_SEQ]);
	if (tb[VFIO_MIG_A_MIG_RESULT]) {
		e->result = genl_get_u64(tb[VFIO_MIG_A_MIG_RESULT]);
		e->has_result = true;
	}
	e->nr_ram = count_ram(h);
}

/* Parse one message of the event socket's buffer; 1 if it is a mig event. */
static int parse_event(struct lm_nl *n, const struct nlmsghdr *h,
		       struct lm_event *e)
{
	const struct genlmsghdr *gh = NLMSG_DATA(h);

	if (h->nlmsg_type != n->ev.family ||
	    h->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
		return 0;
	if (gh->cmd != VFIO_MIG_CMD_MIG_PHASE_NTF &&
	    gh->cmd != VFIO_MIG_CMD_MIG_ACK_NTF)
		return 0;
	lm_event_parse(h, e);
	return 1;
}

int lm_nl_next(struct lm_nl *n, struct lm_event *e, int timeout_ms)
{
	for (;;) {
		struct pollfd p = { .fd = n->ev.fd, .events = POLLIN };
		ssize_t len;
		int ret;

		while (n->rx_off < n->rx_len) {
			struct nlmsghdr *h = (struct nlmsghdr *)(n->ev.rx +
								 n->rx_off);
			int rem = n->rx_len - n->rx_off;

			if (!NLMSG_OK(h, rem)) {
				n->rx_off = n->rx_len;
				break;
			}
			n->rx_off += NLMSG_ALIGN(h->nlmsg_len);
			if (parse_event(n, h, e))
				return 1;
		}
		ret = poll(&p, 1, timeout_ms);
		if (ret < 0)
			return errno == EINTR ? 0 : -errno;
		if (!ret)
			return 0;
		len = recv(n->ev.fd, n->ev.rx, LM_RX_SIZE, MSG_DONTWAIT);
		if (len < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				n->overruns++;
				return -ENOBUFS;
			}
			return -errno;
		}
		n->rx_len = len;
		n->rx_off = 0;
		timeout_ms = 0;
	}
}

static void put_u32(struct genl_msg *m, uint16_t type, uint32_t v)
{
	genl_put(m, type, &v, sizeof(v));
}

int lm_ack(struct lm_nl *n, const char *bdf, uint32_t phase, uint32_t seq,
	   uint32_t result)
{
	return lm_ack_ram(n, bdf, phase, seq, result, NULL, 0);
}

void lm_put_ram(struct genl_msg *m, const struct lm_ram *ram,
		unsigned int nr)
{
	struct nlattr *nest;
	unsigned int i;

	for (i = 0; i < nr; i++) {
		nest = genl_nest_start(m, VFIO_MIG_A_MIG_RAM);
		genl_put_u64(m, VFIO_MIG_A_DIRTY_RANGE_IOVA, ram[i].iova);
		genl_put_u64(m, VFIO_MIG_A_DIRTY_RANGE_LENGTH, ram[i].length);
		genl_nest_end(m, nest);
	}
}

int lm_ack_ram(struct lm_nl *n, const char *bdf, uint32_t phase,
	       uint32_t seq, uint32_t result, const struct lm_ram *ram,
	       unsigned int nr)
{
	struct genl_msg *m = malloc(sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	genl_msg_init(m, &n->req, VFIO_MIG_CMD_MIG_ACK,
		      VFIO_MIG_FAMILY_VERSION, 0);
	genl_put_str(m, VFIO_MIG_A_MIG_BDF, bdf);
	put_u32(m, VFIO_MIG_A_MIG_PHASE, phase);
	put_u32(m, VFIO_MIG_A_MIG_SEQ, seq);
	put_u32(m, VFIO_MIG_A_MIG_RESULT, result);
	lm_put_ram(m, ram, nr);
	ret = genl_do(&n->req, m);
	free(m);
	if (ret)
		snprintf(n->err, sizeof(n->err), "mig-ack %s seq %u: %s (%s)",
			 lm_phase_name(phase), seq, strerror(-ret), n->req.err);
	return ret;
}

int lm_announce(struct lm_nl *n, const char *bdf, uint32_t phase)
{
	struct genl_msg *m = malloc(sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	genl_msg_init(m, &n->req, VFIO_MIG_CMD_MIG_PHASE,
		      VFIO_MIG_FAMILY_VERSION, 0);
	genl_put_str(m, VFIO_MIG_A_MIG_BDF, bdf);
	put_u32(m, VFIO_MIG_A_MIG_PHASE, phase);
	ret = genl_do(&n->req, m);
	free(m);
	if (ret)
		snprintf(n->err, sizeof(n->err), "mig-phase %s: %s (%s)",
			 lm_phase_name(phase), strerror(-ret), n->req.err);
	return ret;
}

static int send_marks(struct lm_nl *n, struct genl_msg *m)
{
	int ret = genl_do(&n->req, m);

	if (ret)
		snprintf(n->err, sizeof(n->err), "dirty-mark: %s (%s)",
			 strerror(-ret), n->req.err);
	return ret;
}

int lm_dirty_mark(struct lm_nl *n, const char *bdf, uint64_t iova,
		  const uint64_t *bits, size_t pages, size_t *ranges,
		  size_t *marked)
{
	struct genl_msg *m = malloc(sizeof(*m));
	size_t i = 0, nr = 0, r = 0, pg = 0;
	int ret = 0;

	if (ranges)
		*ranges = 0;
	if (marked)
		*marked = 0;
	if (!m)
		return -ENOMEM;
	while (i < pages) {
		size_t start;
		struct nlattr *nest;

		if (!mig_test_bit(bits, i)) {
			i++;
			continue;
		}
		for (start = i; i < pages && mig_test_bit(bits, i); i++)
			;
		if (!nr) {
			genl_msg_init(m, &n->req, VFIO_MIG_CMD_DIRTY_MARK,
				      VFIO_MIG_FAMILY_VERSION, 0);
			genl_put_str(m, VFIO_MIG_A_DIRTY_BDF, bdf);
		}
		nest = genl_nest_start(m, VFIO_MIG_A_DIRTY_RANGE);
		genl_put_u64(m, VFIO_MIG_A_DIRTY_RANGE_IOVA,
			     iova + start * MIG_PAGE);
		genl_put_u64(m, VFIO_MIG_A_DIRTY_RANGE_LENGTH,
			     (i - start) * MIG_PAGE);
		genl_nest_end(m, nest);
		nr++;
		pg += i - start;
		if (nr == LM_MARK_RANGES) {
			ret = send_marks(n, m);
			if (ret)
				goto out;
			r += nr;
			if (marked)
				*marked = pg;
			nr = 0;
		}
	}
	if (nr) {
		ret = send_marks(n, m);
		if (!ret)
			r += nr;
	}
	if (!ret && marked)
		*marked = pg;
out:
	if (ranges)
		*ranges = r;
	free(m);
	return ret;
}

/* ---- the guest ---- */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Word @k of page @i written in generation @gen (never 0). */
static uint64_t page_word(uint32_t i, uint32_t gen, uint32_t k)
{
	return mix64(((uint64_t)i << 44) ^ ((uint64_t)gen << 12) ^ k) | 1;
}

static uint64_t gpa(struct lm_guest *g, uint64_t off)
{
	return g->ram->iova + off;
}

static uint8_t *ghost(struct lm_guest *g, uint64_t off)
{
	return (uint8_t *)g->ram->host + off;
}

static uint64_t page_off(uint32_t i)
{
	return LM_RESERVED + (uint64_t)i * MIG_PAGE;
}

static void gwrite(struct lm_guest *g, uint64_t off, const void *src,
		   size_t len)
{
	mig_vcpu_write(&g->cpu, g->ram, gpa(g, off), src, len);
}

static void wl_vcpu_write(void *priv, uint64_t iova, const void *src,
			  size_t len)
{
	struct lm_guest *g = priv;

	mig_vcpu_write(&g->cpu, g->ram, iova, src, len);
}

static void gfail(struct lm_guest *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void gfail(struct lm_guest *g, const char *fmt, ...)
{
	va_list ap;

	if (g->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(g->why, sizeof(g->why), fmt, ap);
	va_end(ap);
}

/* The edu vCPU's state, from the workload, written to guest RAM. */
static void save_dstate(struct lm_guest *g)
{
	g->ds.rng = g->wl.rng;
	g->ds.dmas_in = g->wl.dmas_in;
	g->ds.dmas_out = g->wl.dmas_out;
	g->ds.checks = g->wl.checks;
	g->ds.errors = g->wl.errors;
	memcpy(g->ds.buf, g->wl.buf, sizeof(g->ds.buf));
	edu_regs_read(g->e, &g->ds.regs);
	g->ds.regs_valid = 1;
	g->ds.mid_step = 0;
	gwrite(g, LM_DSTATE_OFF, &g->ds, sizeof(g->ds));
}

/*
 * The edu vCPU polls its device: a pause parks it right there, its state
 * in RAM that of the step's start with the registers as they are now
 * (mid_step). True: the guest quits, the step ends unfinished.
 */
static bool edu_poll_pause(void *arg)
{
	struct lm_guest *g = arg;
	bool quit;

	pthread_mutex_lock(&g->lock);
	if (g->pause_req && !g->quit && !g->finish_step) {
		edu_regs_read(g->e, &g->ds.regs);
		g->ds.mid_step = 1;
		gwrite(g, LM_DSTATE_OFF, &g->ds, sizeof(g->ds));
		g->parked++;
		pthread_cond_broadcast(&g->cond);
		while (g->pause_req && !g->quit && !g->finish_step)
			pthread_cond_wait(&g->cond, &g->lock);
		g->parked--;
	}
	quit = g->quit;
	pthread_mutex_unlock(&g->lock);
	return quit;
}

static int edu_step(struct lm_vcpu *v)
{
	struct lm_guest *g = v->g;
	unsigned long errors = g->wl.errors;
	int ret;

	g->e->poll_hook = edu_poll_pause;
	g->e->poll_arg = g;
	ret = edu_wl_step(&g->wl);
	g->e->poll_hook = NULL;
	if (ret == -ECANCELED && g->quit)
		return 0;	/* paused mid-step, then stopped: not an error */
	if (ret) {
		gfail(g, "edu vCPU: device error after %llu steps: %s",
		      (unsigned long long)g->ds.steps, strerror(-ret));
		return ret;
	}
	if (g->wl.errors != errors)
		gfail(g, "edu vCPU: wrong result at step %llu: %s",
		      (unsigned long long)g->ds.steps, g->wl.why);
	g->ds.steps++;
	save_dstate(g);
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static int mem_step(struct lm_vcpu *v)
{
	struct lm_guest *g = v->g;
	uint64_t page[MIG_PAGE / 8];
	uint32_t i = xorshift(&g->ms.rng) % g->npages, k, gen;

	gen = ++g->ms.gen[i];
	for (k = 0; k < MIG_PAGE / 8; k++)
		page[k] = page_word(i, gen, k);
	gwrite(g, page_off(i), page, sizeof(page));
	g->ms.writes++;
	gwrite(g, LM_MSTATE_OFF, &g->ms, sizeof(g->ms));
	if (g->page_rate)
		usleep(1000000 / g->page_rate);
	return 0;
}

/* ---- an NVMe guest ---- */

static void nvme_cpu_write(void *arg, uint64_t iova, uint64_t len)
{
	struct lm_guest *g = arg;

	mig_cpu_mark(&g->cpu, iova, len);
}

/* The NVMe driver's image, written to guest RAM. */
static int save_nstate(struct lm_guest *g)
{
	struct lm_nvme *nv = g->nv;
	int len;

	len = nvme_image_save(&nv->c, &nv->w, nv->img + sizeof(nv->ns),
			      LM_NSTATE_MAX - sizeof(nv->ns));
	if (len < 0) {
		gfail(g, "the NVMe driver's image does not fit %zu bytes",
		      (size_t)LM_NSTATE_MAX);
		return len;
	}
	nv->ns.len = len;
	memcpy(nv->img, &nv->ns, sizeof(nv->ns));
	gwrite(g, LM_NSTATE_OFF, nv->img, sizeof(nv->ns) + len);
	return 0;
}

static int nvme_step(struct lm_vcpu *v)
{
	struct lm_guest *g = v->g;
	struct lm_nvme *nv = g->nv;
	unsigned long errors = nv->w.errors;
	int reaped, ret;

	reaped = nvme_wl_step(&nv->w);
	if (reaped < 0) {
		gfail(g, "NVMe vCPU: device error after %llu steps: %s",
		      (unsigned long long)nv->ns.steps, nv->w.why);
		return reaped;
	}
	if (nv->w.errors != errors)
		gfail(g, "NVMe vCPU: wrong result at step %llu: %s",
		      (unsigned long long)nv->ns.steps, nv->w.why);
	nv->ns.steps++;
	ret = save_nstate(g);
	if (ret)
		return ret;
	if (!reaped)		/* nothing completed: let the device run */
		usleep(200);
	return 0;
}

static struct lm_nvme *nvme_new(void)
{
	struct lm_nvme *nv = calloc(1, sizeof(*nv));

	if (!nv)
		return NULL;
	nv->img = calloc(1, LM_NSTATE_MAX);
	if (!nv->img) {
		free(nv);
		return NULL;
	}
	return nv;
}

static void nvme_release(struct lm_guest *g)
{
	if (!g->nv)
		return;
	nvme_image_free(&g->nv->c, &g->nv->w);
	free(g->nv->img);
	free(g->nv);
	g->nv = NULL;
}

static int layout(struct lm_guest *g, struct vmm_ram *ram, struct edu *e,
		  uint32_t npages)
{
	uint64_t wl_off;

	g->ram = ram;
	g->e = e;
	if (!npages || npages > LM_MAX_PAGES)
		return -EINVAL;
	g->npages = npages;
	wl_off = page_off(npages);
	if (ram->size < wl_off + 2 * EDU_DMA_MAX)
		return -ENOSPC;
	g->wlram.memfd = -1;
	g->wlram.host = ghost(g, wl_off);
	g->wlram.iova = gpa(g, wl_off);
	g->wlram.size = ram->size - wl_off;
	g->wlram.mapped = ram->mapped;	/* a part of the mapped RAM */
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	return mig_cpu_log_init(&g->cpu, ram);
}

/* A new guest's RAM layout and its memory vCPU (a quarter of the RAM). */
static int boot_layout(struct lm_guest *g, struct vmm_ram *ram, struct edu *e,
		       uint64_t seed, unsigned int page_rate)
{
	uint64_t avail;
	int ret;

	memset(g, 0, sizeof(*g));
	if (ram->size <= LM_RESERVED)
		return -ENOSPC;
	avail = (ram->size - LM_RESERVED) / MIG_PAGE / 4;
	ret = layout(g, ram, e, avail > LM_MAX_PAGES ? LM_MAX_PAGES : avail);
	if (ret)
		return ret;
	g->page_rate = page_rate;
	g->ms.magic = LM_MMAGIC;
	g->ms.rng = mix64(seed) | 1;
	g->ms.npages = g->npages;
	gwrite(g, LM_MSTATE_OFF, &g->ms, sizeof(g->ms));
	return 0;
}

int lm_guest_boot(struct lm_guest *g, struct vmm_ram *ram, struct edu *e,
		  uint64_t seed, unsigned int page_rate, bool fill)
{
	int ret;

	ret = boot_layout(g, ram, e, seed, page_rate);
	if (ret)
		return ret;
	edu_wl_init(&g->wl, e, &g->wlram, seed);
	g->wl.vcpu_write = wl_vcpu_write;
	g->wl.priv = g;
	g->ds.magic = LM_DMAGIC;
	g->ds.seed = seed;
	if (fill) {
		uint64_t *p = g->wlram.host, i;

		for (i = 0; i < g->wlram.size / 8; i++)
			p[i] = mix64(seed ^ (i * 0x9e3779b97f4a7c15ull));
		mig_cpu_mark(&g->cpu, g->wlram.iova, g->wlram.size);
	}
	ret = edu_wl_fill(&g->wl);
	if (ret) {
		gfail(g, "loading the edu buffer: %s", strerror(-ret));
		return ret;
	}
	save_dstate(g);
	return 0;
}

int lm_guest_adopt(struct lm_guest *g, struct vmm_ram *ram, struct edu *e,
		   unsigned int page_rate)
{
	struct lm_dstate ds;
	struct lm_mstate ms;
	int ret;

	memset(g, 0, sizeof(*g));
	memcpy(&ds, (uint8_t *)ram->host + LM_DSTATE_OFF, sizeof(ds));
	memcpy(&ms, (uint8_t *)ram->host + LM_MSTATE_OFF, sizeof(ms));
	if (ds.magic != LM_DMAGIC || ms.magic != LM_MMAGIC) {
		snprintf(g->why, sizeof(g->why),
			 "no guest state in RAM (magic %#llx/%#llx): RAM was not migrated",
			 (unsigned long long)ds.magic,
			 (unsigned long long)ms.magic);
		return -EBADMSG;
	}
	ret = layout(g, ram, e, ms.npages);
	if (ret) {
		snprintf(g->why, sizeof(g->why),
			 "guest state names %u pages: does not fit %zu bytes of RAM",
			 ms.npages, ram->size);
		return ret;
	}
	g->page_rate = page_rate;
	g->ds = ds;
	g->ms = ms;
	edu_wl_init(&g->wl, e, &g->wlram, ds.seed);
	g->wl.vcpu_write = wl_vcpu_write;
	g->wl.priv = g;
	g->wl.rng = ds.rng;
	g->wl.dmas_in = ds.dmas_in;
	g->wl.dmas_out = ds.dmas_out;
	g->wl.checks = ds.checks;
	g->wl.errors = ds.errors;
	memcpy(g->wl.buf, ds.buf, sizeof(g->wl.buf));
	return 0;
}

int lm_guest_boot_nvme(struct lm_guest *g, struct vmm_ram *ram,
		       struct vmm_dev *d, uint64_t seed,
		       unsigned int page_rate)
{
	struct lm_nvme *nv;
	int ret;

	ret = boot_layout(g, ram, NULL, seed, page_rate);
	if (ret)
		return ret;
	nv = nvme_new();
	if (!nv)
		return -ENOMEM;
	g->nv = nv;
	nv->ns.magic = LM_NMAGIC;
	nv->ns.seed = seed;
	ret = nvme_ctrl_init(&nv->c, d, &g->wlram, LM_NVME_NSID, false);
	nv->c.on_write = nvme_cpu_write;
	nv->c.on_write_arg = g;
	/* what the bring-up wrote before the hook was set */
	mig_cpu_mark(&g->cpu, g->wlram.iova, g->wlram.size);
	if (!ret)
		ret = nvme_create_io_queues(&nv->c, LM_NVME_QUEUES,
					    LM_NVME_QDEPTH, false);
	if (ret) {
		gfail(g, "NVMe bring-up: %s", nv->c.why);
		return ret;
	}
	ret = nvme_wl_init(&nv->w, &nv->c, LM_NVME_WL_BASE, LM_NVME_WL_BLOCKS,
			   LM_NVME_WL_DEPTH, (uint32_t)seed);
	if (!ret)
		ret = nvme_wl_fill(&nv->w, 20000);
	if (ret) {
		gfail(g, "NVMe workload: %s", nv->w.why);
		return ret;
	}
	return save_nstate(g);
}

int lm_guest_adopt_nvme(struct lm_guest *g, struct vmm_ram *ram,
			struct vmm_dev *d, unsigned int page_rate)
{
	struct lm_nstate ns;
	struct lm_mstate ms;
	struct lm_nvme *nv;
	int ret;

	memset(g, 0, sizeof(*g));
	memcpy(&ns, (uint8_t *)ram->host + LM_NSTATE_OFF, sizeof(ns));
	memcpy(&ms, (uint8_t *)ram->host + LM_MSTATE_OFF, sizeof(ms));
	if (ns.magic != LM_NMAGIC || ms.magic != LM_MMAGIC ||
	    ns.len > LM_NSTATE_MAX - sizeof(ns)) {
		snprintf(g->why, sizeof(g->why),
			 "no NVMe guest state in RAM (magic %#llx/%#llx, %u bytes): RAM was not migrated",
			 (unsigned long long)ns.magic,
			 (unsigned long long)ms.magic, ns.len);
		return -EBADMSG;
	}
	ret = layout(g, ram, NULL, ms.npages);
	if (ret) {
		snprintf(g->why, sizeof(g->why),
			 "guest state names %u pages: does not fit %zu bytes of RAM",
			 ms.npages, ram->size);
		return ret;
	}
	nv = nvme_new();
	if (!nv)
		return -ENOMEM;
	g->nv = nv;
	g->page_rate = page_rate;
	g->ms = ms;
	nv->ns = ns;
	ret = nvme_image_load(&nv->c, &nv->w, d, &g->wlram,
			      (uint8_t *)ram->host + LM_NSTATE_OFF + sizeof(ns),
			      ns.len);
	if (ret) {
		snprintf(g->why, sizeof(g->why), "the NVMe driver's image: %s",
			 nv->c.why);
		return ret;
	}
	nv->c.on_write = nvme_cpu_write;
	nv->c.on_write_arg = g;
	return 0;
}

uint64_t lm_guest_steps(const struct lm_guest *g)
{
	return g->nv ? g->nv->ns.steps : g->ds.steps;
}

unsigned long lm_guest_checks(const struct lm_guest *g)
{
	return g->nv ? g->nv->w.blocks_checked : g->wl.checks;
}

unsigned long lm_guest_errors(const struct lm_guest *g)
{
	return g->nv ? g->nv->w.errors : g->wl.errors;
}

void lm_guest_free(struct lm_guest *g)
{
	lm_guest_stop(g);
	nvme_release(g);
	mig_cpu_log_free(&g->cpu);
}

static void *vcpu_main(void *arg)
{
	struct lm_vcpu *v = arg;
	struct lm_guest *g = v->g;
	int ret;

	for (;;) {
		pthread_mutex_lock(&g->lock);
		if (g->pause_req && !g->quit) {
			g->parked++;
			pthread_cond_broadcast(&g->cond);
			while (g->pause_req && !g->quit)
				pthread_cond_wait(&g->cond, &g->lock);
			g->parked--;
		}
		if (g->quit) {
			pthread_mutex_unlock(&g->lock);
			break;
		}
		pthread_mutex_unlock(&g->lock);
		ret = v->step(v);
		if (ret) {
			v->err = ret;
			break;
		}
		v->steps++;
	}
	pthread_mutex_lock(&g->lock);
	g->running--;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int lm_guest_start(struct lm_guest *g)
{
	int i, ret;

	g->vcpu[0].step = g->nv ? nvme_step : edu_step;
	g->vcpu[1].step = mem_step;
	for (i = 0; i < 2; i++) {
		struct lm_vcpu *v = &g->vcpu[i];

		if ((i == 0 && g->mem_only) || (i == 1 && g->edu_only) ||
		    (i == 1 && !g->page_rate))
			continue;
		v->g = g;
		pthread_mutex_lock(&g->lock);
		g->running++;
		pthread_mutex_unlock(&g->lock);
		ret = pthread_create(&v->tid, NULL, vcpu_main, v);
		if (ret) {
			pthread_mutex_lock(&g->lock);
			g->running--;
			pthread_mutex_unlock(&g->lock);
			return -ret;
		}
		v->started = true;
	}
	return 0;
}

void lm_guest_pause(struct lm_guest *g)
{
	pthread_mutex_lock(&g->lock);
	g->pause_req = true;
	while (g->parked < g->running)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

void lm_guest_resume(struct lm_guest *g)
{
	pthread_mutex_lock(&g->lock);
	g->pause_req = false;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

void lm_guest_stop(struct lm_guest *g)
{
	int i;

	if (!g->ram)
		return;
	pthread_mutex_lock(&g->lock);
	g->quit = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	for (i = 0; i < 2; i++) {
		if (!g->vcpu[i].started)
			continue;
		pthread_join(g->vcpu[i].tid, NULL);
		g->vcpu[i].started = false;
	}
}

int lm_guest_error(struct lm_guest *g)
{
	return g->vcpu[0].err ?: g->vcpu[1].err;
}

bool lm_guest_check_pages(struct lm_guest *g)
{
	uint32_t i, k;

	for (i = 0; i < g->npages; i++) {
		const uint64_t *p = (const uint64_t *)ghost(g, page_off(i));
		uint32_t gen = g->ms.gen[i], old;

		for (k = 0; k < MIG_PAGE / 8; k++) {
			uint64_t want = gen ? page_word(i, gen, k) : 0;

			if (p[k] == want)
				continue;
			/* a stale page holds an older generation */
			for (old = gen ? gen - 1 : 0; old && gen - old <= 4096; old--)
				if (p[0] == page_word(i, old, 0))
					break;
			if (old && gen - old <= 4096)
				gfail(g, "RAM page %u (IOVA %#llx) holds generation %u of the vCPU's writes, the guest wrote generation %u: a vCPU write was lost",
				      i, (unsigned long long)gpa(g, page_off(i)),
				      old, gen);
			else
				gfail(g, "RAM page %u (IOVA %#llx) generation %u: word %u is %#llx, want %#llx",
				      i, (unsigned long long)gpa(g, page_off(i)),
				      gen, k, (unsigned long long)p[k],
				      (unsigned long long)want);
			return false;
		}
	}
	return true;
}

bool lm_guest_check_model(struct lm_guest *g)
{
	if (g->nv) {
		if (!g->nv->w.errors)
			return true;
		gfail(g, "NVMe workload: %lu wrong results: %s",
		      g->nv->w.errors, g->nv->w.why);
		return false;
	}
	if (!g->wl.errors)
		return true;
	gfail(g, "workload: %lu wrong results: %s", g->wl.errors, g->wl.why);
	return false;
}

static bool nvme_check_regs(struct lm_guest *g)
{
	struct nvme_ctrl *c = &g->nv->c;
	uint32_t cc = nvme_rd32(c, NVME_REG_CC);
	uint32_t csts = nvme_rd32(c, NVME_REG_CSTS);
	uint32_t aqa = nvme_rd32(c, NVME_REG_AQA);
	uint64_t asq = nvme_rd64(c, NVME_REG_ASQ);
	uint64_t acq = nvme_rd64(c, NVME_REG_ACQ);
	uint32_t want_aqa = (uint32_t)(c->admin.depth - 1) << 16 |
			    (c->admin.depth - 1);

	if ((cc & NVME_CC_EN) && (csts & (NVME_CSTS_RDY | NVME_CSTS_CFS)) ==
	    NVME_CSTS_RDY && aqa == want_aqa && asq == c->admin.sq_iova &&
	    acq == c->admin.cq_iova)
		return true;
	gfail(g, "NVMe controller is not the guest's: CC %#x CSTS %#x AQA %#x/%#x ASQ %#llx/%#llx ACQ %#llx/%#llx (device/guest)",
	      cc, csts, aqa, want_aqa, (unsigned long long)asq,
	      (unsigned long long)c->admin.sq_iova, (unsigned long long)acq,
	      (unsigned long long)c->admin.cq_iova);
	return false;
}

/* Everything in flight completed, every block read back and checked. */
static bool nvme_check_data(struct lm_guest *g)
{
	struct nvme_wl *w = &g->nv->w;
	unsigned long before = w->blocks_checked;
	int ret;

	ret = nvme_wl_drain(w, 20000);
	if (!ret)
		ret = nvme_wl_verify_all(w, 20000);
	save_nstate(g);
	if (ret || w->errors) {
		gfail(g, "NVMe read-back: %s", w->why);
		return false;
	}
	if (w->blocks_checked - before < w->nr) {
		gfail(g, "NVMe read-back checked %lu of %u blocks",
		      w->blocks_checked - before, w->nr);
		return false;
	}
	g->nv->verified = true;
	return true;
}

bool lm_guest_check_regs(struct lm_guest *g, struct edu_regs *now)
{
	const struct edu_regs *w = &g->ds.regs;

	if (g->nv)
		return nvme_check_regs(g);
	edu_regs_read(g->e, now);
	if (!g->ds.regs_valid)
		return true;
	/*
	 * Paused in a step: a transfer it started was carried over and
	 * may have run since (the start bit), its other bits unchanged.
	 */
	if (now->liveness == w->liveness && now->factorial == w->factorial &&
	    now->status == w->status && now->irq_status == w->irq_status &&
	    now->dma_src == w->dma_src && now->dma_dst == w->dma_dst &&
	    now->dma_count == w->dma_count &&
	    (now->dma_cmd == w->dma_cmd ||
	     (g->ds.mid_step && (now->dma_cmd | EDU_DMA_START) ==
				(w->dma_cmd | EDU_DMA_START))))
		return true;
	gfail(g, "edu registers are not the guest's: liveness %#x/%#x factorial %#x/%#x status %#x/%#x irq %#x/%#x dma src %#llx/%#llx dst %#llx/%#llx count %llu/%llu cmd %#llx/%#llx (device/guest)",
	      now->liveness, w->liveness, now->factorial, w->factorial,
	      now->status, w->status, now->irq_status, w->irq_status,
	      (unsigned long long)now->dma_src, (unsigned long long)w->dma_src,
	      (unsigned long long)now->dma_dst, (unsigned long long)w->dma_dst,
	      (unsigned long long)now->dma_count,
	      (unsigned long long)w->dma_count,
	      (unsigned long long)now->dma_cmd, (unsigned long long)w->dma_cmd);
	return false;
}

bool lm_guest_check_buffer(struct lm_guest *g)
{
	static const uint8_t zero[MIG_PAGE];
	uint8_t *scratch = ghost(g, LM_SCRATCH_OFF);
	struct lm_vcpu v = { .g = g };
	uint32_t off, n, i;
	int ret = 0;

	if (g->nv)
		return nvme_check_data(g);
	/*
	 * Paused in a step: the guest finishes it first, as its vCPU would
	 * (its transfer may still run: reading the buffer out now would be
	 * ignored by the busy engine). Here, by the vCPU parked in it; after
	 * a migration, on this thread before the vCPUs start.
	 */
	if (g->ds.mid_step && g->vcpu[0].started) {
		pthread_mutex_lock(&g->lock);
		g->finish_step = true;
		pthread_cond_broadcast(&g->cond);
		/* (a vCPU that failed stops: its error is the report) */
		while (!g->quit && !g->vcpu[0].err &&
		       (g->ds.mid_step || g->parked < g->running))
			pthread_cond_wait(&g->cond, &g->lock);
		g->finish_step = false;
		pthread_mutex_unlock(&g->lock);
		if (g->wl.errors || g->vcpu[0].err)
			return false;
	} else if (g->ds.mid_step && (edu_step(&v) || g->wl.errors)) {
		return false;
	}
	gwrite(g, LM_SCRATCH_OFF, zero, sizeof(zero));
	for (off = 0; off < EDU_BUF_SIZE - 1 && !ret; off += n) {
		n = EDU_BUF_SIZE - 1 - off;
		if (n > EDU_DMA_MAX)
			n = EDU_DMA_MAX;
		ret = edu_dma(g->e, true, gpa(g, LM_SCRATCH_OFF) + off, off, n,
			      false, 5000);
	}
	/* the guest's view of its registers moves with those DMAs */
	save_dstate(g);
	if (ret) {
		gfail(g, "reading the edu buffer out by DMA: %s",
		      strerror(-ret));
		return false;
	}
	for (i = 0; i < EDU_BUF_SIZE - 1; i++) {
		if (scratch[i] == g->wl.buf[i])
			continue;
		gfail(g, "edu buffer byte %u is %#x, the guest's model says %#x",
		      i, scratch[i], g->wl.buf[i]);
		return false;
	}
	return true;
}

/* FNV-1a style over words [@a, @z), four independent lanes. */
static void digest_span(const uint64_t *p, size_t a, size_t z, uint64_t h[4])
{
	size_t i;

	for (i = a; i + 4 <= z; i += 4) {
		h[0] = (h[0] ^ p[i]) * 0x100000001b3ull;
		h[1] = (h[1] ^ p[i + 1]) * 0x100000001b3ull;
		h[2] = (h[2] ^ p[i + 2]) * 0x100000001b3ull;
		h[3] = (h[3] ^ p[i + 3]) * 0x100000001b3ull;
	}
	for (; i < z; i++)
		h[0] = (h[0] ^ p[i]) * 0x100000001b3ull;
}

/* Words [@a, @z) of the guest's RAM but those of the page it lends. */
struct digest_part {
	const uint64_t *p;
	size_t a, z;
	uint64_t h[4];
};

static void *digest_part(void *arg)
{
	const size_t lent = LM_SCRATCH_OFF / 8, lent_end = lent + 4096 / 8;
	struct digest_part *d = arg;
	size_t cut = lent < d->a ? d->a : lent;

	d->h[0] = 0xcbf29ce484222325ull;
	d->h[1] = 0x84222325cbf29ce4ull;
	d->h[2] = 0x9ce484222325cbf2ull;
	d->h[3] = 0x2325cbf29ce48422ull;
	digest_span(d->p, d->a, cut < d->z ? cut : d->z, d->h);
	cut = lent_end > d->a ? lent_end : d->a;
	if (cut < d->z)
		digest_span(d->p, cut, d->z, d->h);
	return NULL;
}

/*
 * The guest's RAM but the page it lends the device: the target's start
 * computes it before its vCPUs run, inside the downtime, so it runs on
 * two threads (the machine's other vCPU), four lanes each.
 */
uint64_t lm_ram_digest(const struct vmm_ram *ram)
{
	const size_t n = ram->size / 8, half = n / 2 / 512 * 512;
	struct digest_part part[2] = {
		{ .p = ram->host, .a = 0, .z = half },
		{ .p = ram->host, .a = half, .z = n },
	};
	uint64_t d = 0xcbf29ce484222325ull;
	pthread_t th;
	int i, k, threaded;

	threaded = !pthread_create(&th, NULL, digest_part, &part[1]);
	digest_part(&part[0]);
	if (threaded)
		pthread_join(th, NULL);
	else
		digest_part(&part[1]);
	for (i = 0; i < 2; i++)
		for (k = 0; k < 4; k++)
			d = (d ^ part[i].h[k]) * 0x100000001b3ull;
	return d;
}
