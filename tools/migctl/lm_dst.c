// SPDX-License-Identifier: GPL-2.0
/*
 * `migctl listen`, the target side of one live migration: check HELLO
 * against --target-dev, prepare the device and the VMM, write the pages
 * and the device stream as they come, load the state, and run the device
 * on COMMIT. Before COMMIT any failure releases everything: the abort
 * phase to the VMM, and the control fd closed uncommitted (the kernel
 * rolls the device back). Documentation/live-migration.rst.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/vfio_mig.h>

#include "hash.h"
#include "lm.h"
#include "migctl.h"

/* One device of the migration, as HELLO pairs it with a source device. */
struct tdev {
	struct lm_dev *d;
	const char *bdf;		/* this host's */
	const struct mig_ident *src;	/* the source's, from HELLO */
	const uint8_t *needs;		/* what its guest uses, from HELLO */
	uint32_t needs_len;
	struct mig_ident me;
	bool announced;
	int ret;			/* its load's, in a worker of its own */
};

struct dst {
	const struct lm_opts *o;
	struct lm_dev *d;		/* the first device's: pages, RAM */
	unsigned int nbackends;		/* lm_target_run()'s @nd */
	struct tdev dv[LM_DEVS_MAX];
	unsigned int ndev;
	char src_devs[LM_DEVS_MAX * WIRE_STR];	/* the BDFs, comma separated */
	char dst_devs[LM_DEVS_MAX * WIRE_STR];
	struct wire_conn c;
	struct lm_out *out;
	volatile sig_atomic_t *stop;
	struct wire_hello hello;
	struct wire_range r[WIRE_RANGES_MAX];
	uint32_t nr;
	bool attached, announced, committed, peer_aborted, refused;
	bool unauthorized;	/* TLS failed, or the peer is not allowed */
	int recv_timeout;
	/* statistics */
	uint32_t rounds;
	uint64_t pages, zero_pages, stream_bytes, round_pages, round_bytes;
	uint64_t t_start, t_round, t_switch, t_end;
	uint64_t t_write, t_recv;	/* page writes, waiting for frames (us) */
	uint64_t t_load, t_run;	/* RESUMING -> STOP, RUNNING + start ack */
	uint64_t t_vmm;		/* of t_run: the VMMs' start acks */
	uint64_t t_drain;	/* FINAL: the pages still queued, written */
	uint8_t *zeros;		/* WIRE_BATCH zero pages, the zero records' source */
	/*
	 * PAGES frames' data pages land straight from the socket in guest
	 * pages: spliced through @land_pipe into the staging fd @land_fd
	 * (VFIO_MIG_CTL_LAND); @landed_why: why not, when that was not
	 * possible
	 */
	bool pages_landed;
	int land_fd, land_pipe[2];
	char landed_why[384];
	/*
	 * The page writer thread and the main thread both write through
	 * d (pages, stream): dev_lock serializes those calls and the reading
	 * of d->err that follows each.
	 */
	pthread_mutex_t dev_lock;
	char err[512];
	const char *stage;
};

static void failf(struct dst *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void failf(struct dst *t, const char *fmt, ...)
{
	va_list ap;

	if (t->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

static int refuse(struct dst *t, const char *field, const char *src,
		  const char *dst, const char *reason)
{
	struct wire_refuse r = {};
	uint8_t p[WIRE_REFUSE_LEN];

	snprintf(r.field, sizeof(r.field), "%s", field);
	snprintf(r.source, sizeof(r.source), "%s", src);
	snprintf(r.target, sizeof(r.target), "%s", dst);
	snprintf(r.reason, sizeof(r.reason), "%s", reason);
	lm_ev_begin(t->out, "refused");
	json_str(t->out->js, "field", r.field);
	json_str(t->out->js, "source", r.source);
	json_str(t->out->js, "target", r.target);
	json_str(t->out->js, "reason", r.reason);
	lm_ev_end(t->out);
	failf(t, "refused the migration: %s: %s (source %s, target %s)",
	      r.field, r.reason, r.source, r.target);
	t->refused = true;
	wire_send(&t->c, WIRE_REFUSE, p, wire_enc_refuse(p, &r));
	return -ECONNREFUSED;
}

static int phase(struct dst *t, struct tdev *v, uint32_t ph, uint32_t *result)
{
	uint64_t t0 = lm_now_us();
	int ret;

	*result = 0;
	ret = v->d->ops->phase(v->d, ph, t->o->vmm_timeout_ms, result);
	if (ret) {
		failf(t, "%s", v->d->err);
		return ret;
	}
	t->announced = v->announced = true;
	lm_ev_begin(t->out, "phase");
	json_str(t->out->js, "phase", lm_phase_name(ph));
	if (t->ndev > 1)
		json_str(t->out->js, "dev", v->bdf);
	json_u64(t->out->js, "seq", v->d->seq);
	json_u64(t->out->js, "result", *result);
	json_u64(t->out->js, "ms", (lm_now_us() - t0) / 1000);
	lm_ev_end(t->out);
	return 0;
}

static bool dev_allowed(const struct lm_opts *o, const char *bdf)
{
	unsigned int i;

	for (i = 0; i < o->n_allow_dev; i++)
		if (!strcasecmp(o->allow_dev[i], bdf))
			return true;
	return false;
}

/* The devices HELLO names, paired; their BDFs joined for messages. */
static int take_devices(struct dst *t)
{
	struct tdev *v;
	unsigned int i, j;
	size_t ls = 0, ld = 0;

	t->ndev = t->hello.ndev ? t->hello.ndev : 1;
	for (i = 0; i < t->ndev; i++) {
		const struct wire_hello_dev *hd = i ? &t->hello.more[i - 1] : NULL;

		v = &t->dv[i];
		v->bdf = hd ? hd->target_bdf : t->hello.target_bdf;
		v->src = hd ? &hd->src : &t->hello.src;
		v->needs = hd ? hd->needs : t->hello.needs;
		v->needs_len = hd ? hd->needs_len : t->hello.needs_len;
		ls += snprintf(t->src_devs + ls, sizeof(t->src_devs) - ls,
			       "%s%s", i ? "," : "", v->src->bdf);
		ld += snprintf(t->dst_devs + ld, sizeof(t->dst_devs) - ld,
			       "%s%s", i ? "," : "", v->bdf);
	}
	for (i = 0; i < t->ndev; i++) {
		v = &t->dv[i];
		if (!migctl_valid_bdf(v->bdf))
			return refuse(t, "target_dev", v->bdf, "-",
				      "not a PCI address (DDDD:BB:DD.F)");
		if (t->o->n_allow_dev && !dev_allowed(t->o, v->bdf)) {
			t->unauthorized = true;
			return refuse(t, "target_dev", v->bdf, "-",
				      "not in this host's --allow-dev list");
		}
		for (j = 0; j < i; j++)
			if (!strcasecmp(t->dv[j].bdf, v->bdf))
				return refuse(t, "target_dev", v->bdf, "-",
					      "named twice in one migration");
	}
	/* after the allow-list: a peer it refuses learns no more */
	if (t->ndev > t->nbackends) {
		char n[16], max[16];

		snprintf(n, sizeof(n), "%u", t->ndev);
		snprintf(max, sizeof(max), "%u", t->nbackends);
		return refuse(t, "devices", n, max,
			      "more devices than this host takes in one migration");
	}
	return 0;
}

/* Is device @v one the source's may migrate onto? 0, or refused. */
static int check_dev(struct dst *t, struct tdev *v, char *notes,
		     size_t notes_len, char *pnotes, size_t pnotes_len)
{
	struct wire_refuse r;
	size_t l = strlen(notes), pl = strlen(pnotes);
	char one[256], pone[320];
	bool open;
	int ret;

	if (!v->d->ops) {
		ret = t->o->dev_open ? t->o->dev_open(v->d, t->stop) : -ENODEV;
		if (ret) {
			v->d->ops = NULL;
			return refuse(t, "target_dev", v->bdf, "-",
				      "cannot reach this host's vfio_mig for a further device");
		}
		v->d->timeout_ms = t->o->timeout_ms;
	}
	ret = v->d->ops->ident(v->d, v->bdf, &v->me, &open);
	if (ret)
		return refuse(t, "target_dev", v->bdf, "-", v->d->err);
	if (!open)
		return refuse(t, "target_dev", v->bdf, "not open",
			      "no VMM has the target device open");
	if (lm_compat_check(v->src, &v->me, &r, one, sizeof(one)))
		return refuse(t, r.field, r.source, r.target, r.reason);
	if (one[0])
		snprintf(notes + l, notes_len - l, "%s%s", l ? "; " : "", one);
	/*
	 * The rest is the target profile's to decide, as on the stream, and
	 * whether the VF offers what the source's guest uses (its needs).
	 */
	if (v->d->ops->compat) {
		char why[sizeof(((struct wire_refuse *)0)->reason)];
		bool tolerated;

		pone[0] = 0;
		ret = v->d->ops->compat(v->d, v->bdf, v->src, v->needs,
					v->needs_len, &tolerated, why,
					sizeof(why), pone, sizeof(pone));
		if (ret < 0)
			return refuse(t, "target_dev", v->bdf, "-", v->d->err);
		if (ret)
			return refuse(t, "profile_compat", v->src->profile,
				      v->me.profile, why);
		if (pone[0])
			snprintf(pnotes + pl, pnotes_len - pl, "%s%s",
				 pl ? "; " : "", pone);
	}
	return 0;
}

/* Attached, the VMM prepared (its RAM named), RESUMING. 0, or refused. */
static int prepare_dev(struct dst *t, struct tdev *v)
{
	uint32_t result;
	bool open;
	int ret;

	ret = v->d->ops->attach(v->d, v->bdf);
	if (ret)
		return refuse(t, "target_dev", v->bdf, "-", v->d->err);
	t->attached = true;
	ret = phase(t, v, VFIO_MIG_MIG_PHASE_PREPARE, &result);
	if (ret)
		return refuse(t, "vmm", "-", "-", v->d->err);
	if (result) {
		char why[160];

		snprintf(why, sizeof(why), "the target VMM refused prepare: %s",
			 strerror(result));
		return refuse(t, "vmm", "-", "-", why);
	}
	if (!v->d->nr_ram)
		return refuse(t, "vmm", "-", "-",
			      "the target VMM named no RAM in its prepare ack (mig-ack ram): no page could be checked against it");
	/* one VM: the pages go through the first device's mapping */
	if (v != t->dv && (v->d->nr_ram != t->d->nr_ram ||
			   memcmp(v->d->ram, t->d->ram,
				  t->d->nr_ram * sizeof(t->d->ram[0]))))
		return refuse(t, "vmm", v->bdf, t->dv[0].bdf,
			      "the target VMM named other RAM for this device than for the first: the devices of one migration must be one VM's");
	ret = v->d->ops->set_state(v->d, LM_ST_STOP);
	if (!ret)
		ret = v->d->ops->set_state(v->d, LM_ST_RESUMING);
	if (ret)
		return refuse(t, "target_dev", "-", "-", v->d->err);
	/*
	 * Whether the device loads early state now, after the VMM's
	 * prepare (it may name its page then); a source before 1.2 would
	 * refuse the byte.
	 */
	v->me.early_load = false;
	if (t->hello.src.proto_minor >= 2) {
		struct mig_ident now;

		if (!v->d->ops->ident(v->d, v->bdf, &now, &open))
			v->me.early_load = now.early_load;
	}
	return 0;
}

static int handshake(struct dst *t)
{
	uint8_t p[WIRE_ACCEPT_MAX_LEN];
	struct mig_ident me[LM_DEVS_MAX];
	struct wire_msg m;
	char notes[1024] = "", pnotes[1280] = "";
	unsigned int i;
	size_t l;
	int ret;

	t->stage = "handshake";
	/* who may migrate here: before any frame of the peer's is read */
	if (t->o->tls && t->o->n_allow_peer &&
	    !tls_peer_allowed(&t->c, t->o->allow_peer, t->o->n_allow_peer)) {
		t->unauthorized = true;
		return refuse(t, "peer", t->c.peer_id, "-",
			      "not in this host's --allow-peer list");
	}
	ret = wire_recv(&t->c, &m, 0);
	if (ret) {
		failf(t, "waiting for HELLO: %s", t->c.err);
		return ret;
	}
	if (m.h.type != WIRE_HELLO ||
	    wire_dec_hello(m.p, m.h.length, &t->hello)) {
		failf(t, "protocol error: the first frame is %s, not a valid HELLO",
		      wire_type_name(m.h.type));
		return -EPROTO;
	}
	t->c.timeout_ms = t->o->timeout_ms;
	ret = take_devices(t);
	if (ret)
		return ret;
	/*
	 * The source's waits on us include its VMM's acks, one device after
	 * the other: wait as long for each device, but never longer than
	 * this host's own --vmm-timeout-ms (the peer's number is the peer's
	 * word).
	 */
	t->recv_timeout = t->o->timeout_ms + t->ndev *
		(t->hello.vmm_timeout_ms < t->o->vmm_timeout_ms ?
		 t->hello.vmm_timeout_ms : t->o->vmm_timeout_ms);
	/* the migration begins: listen no longer evicts this connection */
	if (t->o->begun_fd > 0 && write(t->o->begun_fd, "b", 1) != 1) {
		failf(t, "cannot tell listen the migration began: %s",
		      strerror(errno));
		return -EIO;
	}
	for (i = 0; i < t->ndev; i++) {
		ret = check_dev(t, &t->dv[i], notes, sizeof(notes), pnotes,
				sizeof(pnotes));
		if (ret)
			return ret;
	}
	for (i = 0; i < t->ndev; i++) {
		ret = prepare_dev(t, &t->dv[i]);
		if (ret)
			return ret;
		me[i] = t->dv[i].me;
	}
	ret = wire_send(&t->c, WIRE_ACCEPT, p,
			wire_enc_accept(p, me, t->ndev));
	if (ret) {
		failf(t, "sending ACCEPT: %s", t->c.err);
		return ret;
	}
	/* from here, to a 1.3 source inside TLS: no payload checksums */
	t->c.sum_off = t->c.sum_unchecked && t->hello.src.proto_minor >= 3;
	l = strlen(notes);
	lm_ev_begin(t->out, "accepted");
	json_str(t->out->js, "dev", t->src_devs);
	json_str(t->out->js, "target_dev", t->dst_devs);
	json_str(t->out->js, "peer_kernel", t->hello.src.kernel);
	json_str(t->out->js, "tolerated", notes);
	json_str(t->out->js, "profile_notes", pnotes);
	json_bool(t->out->js, "payload_checksums", !t->c.sum_unchecked);
	lm_ev_end(t->out);
	if (!t->out->js->enabled)
		fprintf(t->out->text, "accepted %s from the source as %s%s%s%s%s\n",
			t->src_devs, t->dst_devs, l ? ", tolerated: " : "",
			notes, pnotes[0] ? "; profile: " : "", pnotes);
	return 0;
}

static int abort_peer(struct dst *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Fail, and tell the source why. */
static int abort_peer(struct dst *t, const char *fmt, ...)
{
	struct wire_abort a = { .code = EIO };
	uint8_t p[WIRE_ABORT_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a.reason, sizeof(a.reason), fmt, ap);
	va_end(ap);
	failf(t, "%s", a.reason);
	if (!t->c.broken) {
		wire_send(&t->c, WIRE_ABORT, p, wire_enc_abort(p, &a));
		t->peer_aborted = true;	/* told */
	}
	return -ECONNABORTED;
}

/*
 * Whether [@iova, @iova + @len) lies in the RAM the target's VMM named
 * (ranges may abut). The peer's ranges are its word; the VMM's are ours.
 */
static bool in_vmm_ram(const struct lm_dev *d, uint64_t iova, uint64_t len)
{
	uint64_t at = iova, end = iova + len;
	uint32_t i;

	while (at < end) {
		for (i = 0; i < d->nr_ram; i++)
			if (at - d->ram[i].iova < d->ram[i].length)
				break;
		if (i == d->nr_ram)
			return false;
		at = d->ram[i].iova + d->ram[i].length;
	}
	return true;
}

static int take_ranges(struct dst *t, struct wire_msg *m)
{
	uint64_t iova[2];
	static uint8_t buf[2 * WIRE_PAGE];
	uint32_t i;
	int ret;

	t->stage = "ranges";
	if (m->h.type != WIRE_RANGES ||
	    wire_dec_ranges(m->p, m->h.length, t->r, &t->nr))
		return abort_peer(t, "target: protocol error: expected valid RANGES, got %s",
				  wire_type_name(m->h.type));
	/*
	 * Each range inside the RAM the target's VMM named, and mapped for
	 * the device and writable: its first and last page read and written
	 * back unchanged (the VMM's vCPUs are idle since it acked prepare).
	 * The kernel refuses page writes outside that RAM as well.
	 */
	for (i = 0; i < t->nr; i++)
		if (!in_vmm_ram(t->d, t->r[i].iova, t->r[i].length))
			return abort_peer(t, "target: RAM range 0x%" PRIx64
					  "+0x%" PRIx64 " is not in the RAM the target's VMM named",
					  t->r[i].iova, t->r[i].length);
	for (i = 0; i < t->nr; i++) {
		iova[0] = t->r[i].iova;
		iova[1] = t->r[i].iova + t->r[i].length - WIRE_PAGE;
		ret = t->d->ops->pages(t->d, false, iova, 2, buf);
		if (!ret)
			ret = t->d->ops->pages(t->d, true, iova, 2, buf);
		if (ret)
			return abort_peer(t, "target: RAM range 0x%" PRIx64
					  "+0x%" PRIx64 " is not mapped writable: %s",
					  t->r[i].iova, t->r[i].length,
					  t->d->err);
	}
	lm_ev_begin(t->out, "ranges");
	json_u64(t->out->js, "count", t->nr);
	lm_ev_end(t->out);
	ret = wire_send(&t->c, WIRE_RANGES_OK, NULL, 0);
	if (ret)
		failf(t, "sending RANGES_OK: %s", t->c.err);
	return ret;
}

static bool in_ranges(struct dst *t, uint64_t iova)
{
	uint32_t i;

	for (i = 0; i < t->nr; i++)
		if (iova >= t->r[i].iova && iova - t->r[i].iova < t->r[i].length)
			return true;
	return false;
}

/* Write one PAGES frame's pages. 0, or -errno with @err set. */
static int write_pages(struct dst *t, const uint8_t *payload, uint32_t length,
		       char *err, size_t errlen)
{
	uint64_t data[WIRE_BATCH], zero[WIRE_BATCH], dsc, t0 = lm_now_us();
	struct wire_pages v;
	uint32_t i, nd = 0, nz = 0;
	int ret;

	wire_pages_view(payload, &v);
	for (i = 0; i < v.count; i++) {
		dsc = wire_get64(v.desc + 8 * i);
		if (!in_ranges(t, dsc & ~(uint64_t)WIRE_PG_KIND_MASK)) {
			snprintf(err, errlen, "target: page 0x%" PRIx64
				 " outside the announced RAM ranges",
				 dsc & ~(uint64_t)WIRE_PG_KIND_MASK);
			return -EPROTO;
		}
		if ((dsc & WIRE_PG_KIND_MASK) == WIRE_PG_ZERO)
			zero[nz++] = dsc & ~(uint64_t)WIRE_PG_KIND_MASK;
		else
			data[nd++] = dsc;
	}
	pthread_mutex_lock(&t->dev_lock);
	ret = nd ? t->d->ops->pages(t->d, true, data, nd, (void *)v.data) : 0;
	if (!ret && nz)
		ret = t->d->ops->pages(t->d, true, zero, nz, t->zeros);
	if (ret)
		snprintf(err, errlen, "target: %.300s", t->d->err);
	pthread_mutex_unlock(&t->dev_lock);
	if (ret)
		return ret;
	t->t_write += lm_now_us() - t0;
	t->pages += nd;
	t->zero_pages += nz;
	t->round_pages += nd + nz;
	t->round_bytes += length + WIRE_HDR_LEN;
	return 0;
}

/*
 * One PAGES frame whose data pages are still on the socket (wire_recv_head):
 * its descriptors checked, the staging fd armed with the data pages' IOVAs,
 * the data spliced into it, the checksum taken from the kernel's block
 * hashes, then the zero pages written. 0, or -errno (the peer told, or
 * the link failed).
 */
static int land_pages(struct dst *t, struct wire_msg *m)
{
	uint64_t data[WIRE_BATCH], zero[WIRE_BATCH], sums[WIRE_BATCH];
	uint64_t dsc, sum, bytes = 0, t0 = lm_now_us();
	bool check = !t->c.sum_unchecked;
	uint32_t i, nd = 0, nz = 0;
	struct wire_pages v;
	char err[400] = "";
	int ret;

	wire_pages_view(m->p, &v);
	for (i = 0; i < v.count; i++) {
		dsc = wire_get64(v.desc + 8 * i);
		if (!in_ranges(t, dsc & ~(uint64_t)WIRE_PG_KIND_MASK))
			return abort_peer(t, "target: page 0x%" PRIx64
					  " outside the announced RAM ranges",
					  dsc & ~(uint64_t)WIRE_PG_KIND_MASK);
		if ((dsc & WIRE_PG_KIND_MASK) == WIRE_PG_ZERO)
			zero[nz++] = dsc & ~(uint64_t)WIRE_PG_KIND_MASK;
		else
			data[nd++] = dsc & ~(uint64_t)WIRE_PG_KIND_MASK;
	}
	pthread_mutex_lock(&t->dev_lock);
	ret = t->d->ops->land(t->d, t->land_fd, data, nd, check);
	if (ret) {
		snprintf(err, sizeof(err), "target: %.300s", t->d->err);
		goto out;
	}
	ret = wire_splice_rest(&t->c, m, t->land_pipe, t->land_fd, err,
			       sizeof(err));
	if (ret) {
		if (err[0]) {
			snprintf(t->err, sizeof(t->err), "%s", err);
			snprintf(err, sizeof(err),
				 "target: writing guest pages: %.300s", t->err);
		}
		goto out;
	}
	ret = t->d->ops->landed(t->d, t->land_fd, &bytes, check ? sums : NULL);
	if (!ret && bytes != (uint64_t)nd * WIRE_PAGE)
		ret = -EIO;
	if (ret) {
		snprintf(err, sizeof(err),
			 "target: %" PRIu64 " of %u data pages' bytes landed: %.300s",
			 bytes, nd * WIRE_PAGE, t->d->err);
		goto out;
	}
	if (check) {
		sum = wire_sum_begin(m->h.length);
		sum = wire_sum_add(sum, mh_hash64(m->p, WIRE_PAGE,
						  MH_SEED_PAGE));
		for (i = 0; i < nd; i++)
			sum = wire_sum_add(sum, sums[i]);
		if (sum != m->h.sum) {
			t->c.broken = true;
			snprintf(t->c.err, sizeof(t->c.err),
				 "PAGES frame payload checksum mismatch (corrupted stream)");
			ret = -EPROTO;
			goto out;
		}
	}
	if (nz) {
		ret = t->d->ops->pages(t->d, true, zero, nz, t->zeros);
		if (ret)
			snprintf(err, sizeof(err), "target: %.300s", t->d->err);
	}
out:
	pthread_mutex_unlock(&t->dev_lock);
	if (ret && !err[0]) {
		/* the link's: as a failed receive */
		failf(t, "receiving: %s", t->c.err);
		return ret;
	}
	if (ret) {
		ret = abort_peer(t, "%s", err);
		/* the frame's rest may still be on the socket: nothing follows */
		t->c.broken = true;
		return ret;
	}
	t->t_write += lm_now_us() - t0;
	t->pages += nd;
	t->zero_pages += nz;
	t->round_pages += nd + nz;
	t->round_bytes += m->h.length + WIRE_HDR_LEN;
	return 0;
}

/*
 * Land PAGES frames when the link and the kernel allow it: a plain TCP
 * link, or a TLS link whose records the kernel decrypts (kTLS receive:
 * splice() takes each record's plaintext), a module with staging fds, and
 * not --copy-pages. Otherwise (GnuTLS decrypting in migctl, above all)
 * the frames are received into migctl's buffers and written with PAGES,
 * as always.
 */
static void land_setup(struct dst *t)
{
	int sz = WIRE_BATCH * WIRE_PAGE;

	t->land_fd = t->land_pipe[0] = t->land_pipe[1] = -1;
	if (t->o->copy_pages)
		return;
	if (t->c.tls && !t->c.ktls_rx) {
		snprintf(t->landed_why, sizeof(t->landed_why),
			 "TLS records decrypted by GnuTLS in migctl (kTLS receive: %s)",
			 t->c.ktls_why[0] ? t->c.ktls_why : "off");
		return;
	}
	if (!t->d->ops->stage_fd || !t->d->ops->land || !t->d->ops->landed) {
		snprintf(t->landed_why, sizeof(t->landed_why), "%s",
			 "the backend lands no pages");
		return;
	}
	t->land_fd = t->d->ops->stage_fd(t->d);
	if (t->land_fd < 0) {
		snprintf(t->landed_why, sizeof(t->landed_why), "%s",
			 t->d->err);
		return;
	}
	if (pipe2(t->land_pipe, O_CLOEXEC)) {
		snprintf(t->landed_why, sizeof(t->landed_why), "pipe: %s",
			 strerror(errno));
		close(t->land_fd);
		t->land_fd = -1;
		return;
	}
	/* a frame's data in one go where the pipe may grow so far */
	fcntl(t->land_pipe[1], F_SETPIPE_SZ, sz);
	t->pages_landed = true;
}

static void land_close(struct dst *t)
{
	int i;

	if (t->land_fd >= 0)
		close(t->land_fd);
	for (i = 0; i < 2; i++)
		if (t->land_pipe[i] >= 0)
			close(t->land_pipe[i]);
	t->land_fd = t->land_pipe[0] = t->land_pipe[1] = -1;
}

/*
 * The writer thread: PAGES payloads are written through the kernel while
 * the main thread receives the next frames. The connection's receive
 * buffer is swapped with a free one of the pool, so nothing is copied.
 */
#define LM_WSLOTS	3
struct wq {
	struct dst *t;
	uint8_t *pool[LM_WSLOTS + 1];	/* free buffers */
	int nfree;
	uint8_t *q[LM_WSLOTS + 1];	/* queued payloads, FIFO */
	uint32_t qlen[LM_WSLOTS + 1];
	int head, count;
	bool busy, quit;
	int err;
	char msg[400];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t th;
	bool running;
};

static void *writer(void *arg)
{
	struct wq *w = arg;
	uint8_t *buf;
	uint32_t len;
	char msg[400] = "";
	int ret;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->count && !w->quit)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->count)
			break;
		buf = w->q[w->head];
		len = w->qlen[w->head];
		w->head = (w->head + 1) % (LM_WSLOTS + 1);
		w->count--;
		w->busy = true;
		ret = w->err;		/* after an error, only drain */
		pthread_mutex_unlock(&w->lock);
		ret = ret ? 0 : write_pages(w->t, buf, len, msg, sizeof(msg));
		pthread_mutex_lock(&w->lock);
		if (ret && !w->err) {
			w->err = ret;
			snprintf(w->msg, sizeof(w->msg), "%s", msg);
		}
		w->pool[w->nfree++] = buf;
		w->busy = false;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Queue the frame just received (its payload is c->rx). */
static int queue_pages(struct dst *t, struct wq *w, struct wire_msg *m)
{
	int ret;

	pthread_mutex_lock(&w->lock);
	while (!w->nfree && !w->err)
		pthread_cond_wait(&w->cond, &w->lock);
	ret = w->err;
	if (!ret) {
		int tail = (w->head + w->count) % (LM_WSLOTS + 1);

		w->q[tail] = t->c.rx;
		w->qlen[tail] = m->h.length;
		w->count++;
		t->c.rx = w->pool[--w->nfree];
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return ret ? abort_peer(t, "%s", w->msg) : 0;
}

/* Wait until everything queued is written. */
static int drain(struct dst *t, struct wq *w)
{
	int ret;

	pthread_mutex_lock(&w->lock);
	while ((w->count || w->busy) && !w->err)
		pthread_cond_wait(&w->cond, &w->lock);
	ret = w->err;
	pthread_mutex_unlock(&w->lock);
	return ret ? abort_peer(t, "%s", w->msg) : 0;
}

static int wq_start(struct wq *w, struct dst *t)
{
	int i;

	memset(w, 0, sizeof(*w));
	w->t = t;
	if (!t->zeros) {
		t->zeros = wire_huge_alloc((size_t)WIRE_BATCH * WIRE_PAGE);
		if (!t->zeros)
			return -ENOMEM;
		memset(t->zeros, 0, (size_t)WIRE_BATCH * WIRE_PAGE);
	}
	for (i = 0; i < LM_WSLOTS; i++) {
		w->pool[i] = wire_huge_alloc(WIRE_MAX_PAYLOAD);
		if (!w->pool[i])
			goto fail;
		w->nfree++;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->th, NULL, writer, w)) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		goto fail;
	}
	w->running = true;
	return 0;
fail:
	while (w->nfree)
		free(w->pool[--w->nfree]);
	return -ENOMEM;
}

static void wq_stop(struct wq *w)
{
	if (!w->running)
		return;
	pthread_mutex_lock(&w->lock);
	w->quit = true;
	w->err = w->err ? w->err : -ECANCELED;	/* nothing more is written */
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->th, NULL);
	/* queued payloads that were not written go back to the pool */
	while (w->count) {
		w->pool[w->nfree++] = w->q[w->head];
		w->head = (w->head + 1) % (LM_WSLOTS + 1);
		w->count--;
	}
	while (w->nfree)
		free(w->pool[--w->nfree]);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	w->running = false;
}

/* A STREAM frame's bytes, to the device whose index it names. */
static int write_stream(struct dst *t, struct wire_msg *m)
{
	char why[sizeof(t->d->err) + WIRE_STR + 2];
	uint32_t i = wire_get32(m->p + 4);
	struct lm_dev *d;
	int ret;

	if (i >= t->ndev)
		return abort_peer(t, "target: protocol error: STREAM for device %u of a migration of %u",
				  i, t->ndev);
	d = t->dv[i].d;
	pthread_mutex_lock(&t->dev_lock);
	ret = d->ops->stream_write(d, m->p + 8, m->h.length - 8);
	if (ret)
		snprintf(why, sizeof(why), "%s%s%s", t->ndev > 1 ? t->dv[i].bdf : "",
			 t->ndev > 1 ? ": " : "", d->err);
	pthread_mutex_unlock(&t->dev_lock);
	if (ret)
		return abort_peer(t, "target: %s", why);
	t->stream_bytes += m->h.length - 8;
	return 0;
}

static void round_event(struct dst *t, uint64_t round, bool final)
{
	lm_ev_begin(t->out, final ? "final" : "round");
	json_u64(t->out->js, "round", round);
	json_u64(t->out->js, "pages", t->round_pages);
	json_u64(t->out->js, "bytes", t->round_bytes);
	json_u64(t->out->js, "ms", (lm_now_us() - t->t_round) / 1000);
	lm_ev_end(t->out);
	if (!t->out->js->enabled)
		fprintf(t->out->text, "%s %" PRIu64 ": %" PRIu64
			" pages written, %.1f MiB\n", final ? "final" : "round",
			round, t->round_pages,
			(double)t->round_bytes / (1 << 20));
	fflush(t->out->text);
	t->round_pages = t->round_bytes = 0;
	t->t_round = lm_now_us();
}

static int receive_frames(struct dst *t, struct wq *w);

/* A device's load: RESUMING -> STOP, where the kernel applies the stream. */
static void *load_dev(void *arg)
{
	struct tdev *v = arg;

	v->ret = v->d->ops->set_state(v->d, LM_ST_STOP);
	return NULL;
}

/* Every device loaded, in parallel, a worker each, when there are several. */
static int load_devices(struct dst *t)
{
	unsigned int i;

	lm_each(load_dev, t->dv, sizeof(t->dv[0]), t->ndev);
	for (i = 0; i < t->ndev; i++)
		if (t->dv[i].ret)
			return abort_peer(t, "target: loading the device state%s%s failed: %s",
					  t->ndev > 1 ? " of " : "",
					  t->ndev > 1 ? t->dv[i].bdf : "",
					  t->dv[i].d->err);
	return 0;
}

/* Rounds up to FINAL; then load the state and say READY. */
static int receive(struct dst *t)
{
	struct wq *w = calloc(1, sizeof(*w));
	int ret;

	if (!w || wq_start(w, t)) {
		free(w);
		failf(t, "out of memory for the page writer");
		return -ENOMEM;
	}
	land_setup(t);
	ret = receive_frames(t, w);
	wq_stop(w);
	free(w);
	land_close(t);
	return ret;
}

/*
 * The frames' order (live-migration.rst, "Order"): rounds until the
 * source's SWITCHOVER, which comes once; then pages, the stop-copy state
 * and FINAL. A STREAM's kind says which side of it the source is on.
 * 0, or the abort's code for a frame out of place.
 */
static int in_order(struct dst *t, const struct wire_msg *m, bool switched)
{
	uint32_t kind;

	switch (m->h.type) {
	case WIRE_STREAM:
		kind = wire_get32(m->p);
		if (kind != WIRE_STREAM_PRECOPY && kind != WIRE_STREAM_STOPCOPY)
			return abort_peer(t, "target: protocol error: STREAM of unknown kind %u",
					  kind);
		if ((kind == WIRE_STREAM_STOPCOPY) != switched)
			return abort_peer(t, "target: protocol error: %s state %s SWITCHOVER",
					  switched ? "pre-copy" : "stop-copy",
					  switched ? "after" : "before");
		return 0;
	case WIRE_ROUND_END:
	case WIRE_SWITCHOVER:
		if (switched)
			return abort_peer(t, "target: protocol error: %s after SWITCHOVER",
					  wire_type_name(m->h.type));
		return 0;
	case WIRE_FINAL:
		if (!switched)
			return abort_peer(t, "target: protocol error: FINAL before SWITCHOVER");
		return 0;
	}
	return 0;
}

static int receive_frames(struct dst *t, struct wq *w)
{
	bool switched = false;
	struct wire_abort a;
	struct wire_msg m;
	uint64_t v[3];
	uint8_t p[32];
	int ret;

	ret = wire_recv(&t->c, &m, t->recv_timeout);
	if (ret) {
		failf(t, "waiting for RANGES: %s", t->c.err);
		return ret;
	}
	ret = take_ranges(t, &m);
	if (ret)
		return ret;
	t->stage = "rounds";
	t->t_round = lm_now_us();
	for (;;) {
		uint64_t t0 = lm_now_us();

		ret = t->pages_landed ?
		      wire_recv_head(&t->c, &m, t->recv_timeout) :
		      wire_recv(&t->c, &m, t->recv_timeout);
		t->t_recv += lm_now_us() - t0;
		if (ret) {
			failf(t, "receiving: %s", t->c.err);
			return ret;
		}
		if (t->stop && *t->stop) {
			failf(t, "interrupted by a signal");
			return -EINTR;
		}
		ret = in_order(t, &m, switched);
		if (ret)
			return ret;
		switch (m.h.type) {
		case WIRE_PAGES:
			/* in order: what the writer holds goes first */
			ret = !m.rest ? queue_pages(t, w, &m) : drain(t, w);
			if (m.rest && !ret)
				ret = land_pages(t, &m);
			break;
		case WIRE_STREAM:
			/*
			 * A write may load state through a guest page the
			 * device borrows (PROFILE_EARLY): no page write
			 * may run meanwhile.
			 */
			ret = drain(t, w);
			if (!ret)
				ret = write_stream(t, &m);
			break;
		case WIRE_ROUND_END:
			if (wire_dec_u64s(m.p, m.h.length, v, 3))
				return abort_peer(t, "target: malformed ROUND_END");
			ret = drain(t, w);
			if (ret)
				return ret;
			t->rounds = v[0];
			round_event(t, v[0], false);
			wire_put64(p, v[0]);
			ret = wire_send(&t->c, WIRE_ROUND_ACK, p, 8);
			if (ret)
				failf(t, "sending ROUND_ACK: %s", t->c.err);
			break;
		case WIRE_SWITCHOVER:
			switched = true;
			t->stage = "switchover";
			t->t_switch = lm_now_us();
			break;
		case WIRE_FINAL:
			if (wire_dec_u64s(m.p, m.h.length, v, 3))
				return abort_peer(t, "target: malformed FINAL");
			t->t_drain = lm_now_us();
			ret = drain(t, w);
			t->t_drain = lm_now_us() - t->t_drain;
			if (ret)
				return ret;
			round_event(t, v[0], true);
			if (v[1] != t->stream_bytes || v[2] != t->pages + t->zero_pages)
				return abort_peer(t, "target: totals differ: stream %"
						  PRIu64 "/%" PRIu64 " bytes, pages %"
						  PRIu64 "/%" PRIu64 " (source/target)",
						  v[1], t->stream_bytes, v[2],
						  t->pages + t->zero_pages);
			/* load: the kernel checks and applies the stream */
			t->t_load = lm_now_us();
			ret = load_devices(t);
			t->t_load = lm_now_us() - t->t_load;
			if (ret)
				return ret;
			/* 1.5: what the load took here (a source before ignores it) */
			v[0] = t->t_drain;
			v[1] = t->t_load;
			ret = wire_send(&t->c, WIRE_READY, p,
					wire_enc_u64s(p, v, 2));
			if (ret)
				failf(t, "sending READY: %s", t->c.err);
			return ret;
		case WIRE_ABORT:
			t->peer_aborted = true;
			failf(t, "the source aborted: %s",
			      wire_dec_abort(m.p, m.h.length, &a) ? "?" : a.reason);
			return -ECONNABORTED;
		default:
			return abort_peer(t, "target: protocol error: unexpected %s",
					  wire_type_name(m.h.type));
		}
		if (ret)
			return ret;
	}
}

/* READY sent: COMMIT, or nothing (roll back). Returns an exit code or -errno. */
static int await_commit(struct dst *t)
{
	struct wire_abort a;
	struct wire_msg m;
	struct tdev *v;
	uint32_t result;
	uint8_t p[24];
	int ret, code = LM_EXIT_OK;

	t->stage = "commit";
	ret = wire_recv(&t->c, &m, t->o->timeout_ms);
	if (ret) {
		failf(t, "waiting for COMMIT: %s", t->c.err);
		return ret;
	}
	if (m.h.type == WIRE_ABORT) {
		t->peer_aborted = true;
		failf(t, "the source aborted: %s",
		      wire_dec_abort(m.p, m.h.length, &a) ? "?" : a.reason);
		return -ECONNABORTED;
	}
	if (m.h.type != WIRE_COMMIT)
		return abort_peer(t, "target: protocol error: %s instead of COMMIT",
				  wire_type_name(m.h.type));
	/*
	 * The source has committed: from here on the VM runs here, whatever
	 * happens to the link. No rollback.
	 */
	t->committed = true;
	t->c.stop = NULL;
	t->t_run = lm_now_us();
	/* every device runs before the VMM starts its vCPUs */
	for (v = t->dv; v < t->dv + t->ndev; v++) {
		v->d->stop = NULL;
		ret = v->d->ops->set_state(v->d, LM_ST_RUNNING);
		if (ret) {
			failf(t, "COMMIT received but the device does not run: %s",
			      v->d->err);
			code = LM_EXIT_UNCONFIRMED;
		}
	}
	t->t_vmm = lm_now_us();
	for (v = t->dv; v < t->dv + t->ndev; v++) {
		ret = phase(t, v, VFIO_MIG_MIG_PHASE_START, &result);
		if (ret || result) {
			if (!ret)
				failf(t, "the target VMM failed to start: %s",
				      strerror(result));
			code = LM_EXIT_UNCONFIRMED;
		}
	}
	t->t_end = lm_now_us();
	t->t_vmm = t->t_end - t->t_vmm;
	t->t_run = t->t_end - t->t_run;
	for (v = t->dv; v < t->dv + t->ndev; v++) {
		ret = v->d->ops->commit(v->d, false);
		if (ret) {
			failf(t, "%s", v->d->err);
			code = LM_EXIT_UNCONFIRMED;
		}
	}
	/* 1.5: the start and its VMMs' acks of it (a source before reads none) */
	wire_put64(p, code);
	wire_put64(p + 8, t->t_run);
	wire_put64(p + 16, t->t_vmm);
	if (wire_send(&t->c, WIRE_DONE, p, 24))
		fprintf(stderr, "migctl: listen: warning: DONE not sent (%s); the VM runs here\n",
			t->c.err);
	return code;
}

static int release(struct dst *t)
{
	uint32_t result;
	char left[256] = "";
	struct tdev *v;
	int ret;

	t->c.stop = NULL;
	if (!t->peer_aborted && !t->refused && !t->c.broken) {
		struct wire_abort a = { .code = EIO };
		uint8_t p[WIRE_ABORT_LEN];

		snprintf(a.reason, sizeof(a.reason), "target: %.190s", t->err);
		t->c.timeout_ms = 1000;
		wire_send(&t->c, WIRE_ABORT, p, wire_enc_abort(p, &a));
	}
	for (v = t->dv; v < t->dv + t->ndev; v++) {
		if (!v->d || !v->d->ops)
			continue;
		v->d->stop = NULL;
		result = 0;
		if (v->announced) {
			/*
			 * Close the control fd uncommitted: the kernel rolls
			 * the device back to RUNNING (there is no arc out of
			 * RESUMING but to STOP) and announces abort to the
			 * VMM; wait for the VMM's ack.
			 */
			ret = v->d->ops->release(v->d, t->o->vmm_timeout_ms,
						 &result);
			if (ret && !left[0])
				snprintf(left, sizeof(left), "%.250s", v->d->err);
			else if (result && !left[0])
				snprintf(left, sizeof(left), "the target VMM answered abort with %s",
					 strerror(result));
		}
		/* not announced: closing is all there is to it */
		v->d->ops->detach(v->d);
	}
	if (t->attached) {
		lm_ev_begin(t->out, "rollback");
		json_bool(t->out->js, "ok", !left[0]);
		json_str(t->out->js, "message", left);
		lm_ev_end(t->out);
	}
	if (left[0]) {
		fprintf(stderr, "migctl: listen: release incomplete: %s\n", left);
		return LM_EXIT_ROLLBACK_FAILED;
	}
	return LM_EXIT_FAILED;
}

static void summary(struct dst *t, const char *result, int code)
{
	uint64_t end = t->t_end ? t->t_end : lm_now_us();

	lm_ev_begin(t->out, "summary");
	json_str(t->out->js, "result", result);
	json_str(t->out->js, "dev", t->src_devs);
	json_str(t->out->js, "target_dev", t->dst_devs);
	json_u64(t->out->js, "devices", t->ndev);
	json_u64(t->out->js, "rounds", t->rounds);
	json_u64(t->out->js, "total_ms", (end - t->t_start) / 1000);
	json_u64(t->out->js, "downtime_ms",
		 t->t_switch && t->t_end ? (t->t_end - t->t_switch) / 1000 : 0);
	json_u64(t->out->js, "bytes", t->c.rx_bytes);
	json_u64(t->out->js, "pages_written", t->pages);
	json_u64(t->out->js, "zero_pages", t->zero_pages);
	json_u64(t->out->js, "stream_bytes", t->stream_bytes);
	json_bool(t->out->js, "pages_landed", t->pages_landed);
	if (t->landed_why[0])
		json_str(t->out->js, "pages_landed_why", t->landed_why);
	json_u64(t->out->js, "write_ms", t->t_write / 1000);
	json_u64(t->out->js, "recv_ms", t->t_recv / 1000);
	json_u64(t->out->js, "drain_ms", t->t_drain / 1000);
	json_u64(t->out->js, "load_ms", t->t_load / 1000);
	json_u64(t->out->js, "start_ms", t->t_run / 1000);
	json_u64(t->out->js, "vmm_start_ms", t->t_vmm / 1000);
	if (t->err[0])
		json_str(t->out->js, "error", t->err);
	json_u64(t->out->js, "exit", code);
	lm_ev_end(t->out);
	if (!t->out->js->enabled && code != LM_EXIT_FAILED &&
	    code != LM_EXIT_ROLLBACK_FAILED)
		fprintf(t->out->text, "%s %s as %s: %u rounds, %" PRIu64
			" pages, %" PRIu64 " zero, %.1f MiB received\n",
			code ? "running (unconfirmed)" : "migrated",
			t->src_devs, t->dst_devs, t->rounds,
			t->pages, t->zero_pages,
			(double)t->c.rx_bytes / (1 << 20));
	fflush(t->out->text);
}

int lm_target_run(const struct lm_opts *o, struct lm_dev *d, unsigned int nd,
		  int fd, struct lm_out *out, volatile sig_atomic_t *stop)
{
	struct dst *t = calloc(1, sizeof(*t));
	unsigned int i;
	int code, ret;

	if (!t) {
		close(fd);
		return migctl_fail("out of memory");
	}
	t->o = o;
	t->d = d;
	t->nbackends = nd < LM_DEVS_MAX ? nd : LM_DEVS_MAX;
	for (i = 0; i < t->nbackends; i++)
		t->dv[i].d = &d[i];
	t->ndev = 1;
	t->out = out;
	t->stop = stop;
	t->t_start = lm_now_us();
	t->recv_timeout = o->timeout_ms;
	d->timeout_ms = o->timeout_ms;
	pthread_mutex_init(&t->dev_lock, NULL);
	if (wire_conn_init(&t->c, fd, o->timeout_ms, stop)) {
		close(fd);
		free(t);
		return migctl_fail("out of memory");
	}
	t->stage = "tls";
	ret = lm_secure(&t->c, o, true, out);
	if (ret) {
		failf(t, "%s", t->c.err);
		t->unauthorized = true;
	} else
		ret = handshake(t);
	if (!ret)
		ret = receive(t);
	if (!ret)
		ret = await_commit(t);
	if (ret < 0) {
		lm_ev_begin(out, "error");
		json_str(out->js, "stage", t->stage);
		json_str(out->js, "message", t->err);
		lm_ev_end(out);
		fprintf(stderr, "migctl: listen: %s failed: %s\n", t->stage,
			t->err);
		code = release(t);
		if (t->unauthorized && code == LM_EXIT_FAILED)
			code = LM_EXIT_NOT_SERVED;
		summary(t, code == LM_EXIT_NOT_SERVED ? "rejected" :
			code == LM_EXIT_FAILED ? "failed" : "rollback-failed",
			code);
	} else {
		code = ret;
		if (code)
			fprintf(stderr, "migctl: listen: %s\n", t->err);
		for (i = 0; i < t->ndev; i++)
			t->dv[i].d->ops->detach(t->dv[i].d);
		summary(t, code ? "committed-unconfirmed" : "migrated", code);
	}
	wire_conn_free(&t->c);
	pthread_mutex_destroy(&t->dev_lock);
	free(t->zeros);
	free(t);
	return code;
}
