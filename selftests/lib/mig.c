// SPDX-License-Identifier: GPL-2.0
/* The VMM side of VFIO migration uAPI v2; see mig.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/vfio_mig.h>
#include <linux/vfio_mig_ctl.h>

#include "mig.h"

size_t mig_read_chunk = 1 << 20;

/* VFIO_DEVICE_FEATURE with @len bytes of payload in and out. */
int mig_feature(struct vmm_dev *d, uint32_t flags, void *data, size_t len)
{
	struct {
		struct vfio_device_feature f;
		uint64_t data[8];
	} buf;
	int ret;

	if (len > sizeof(buf.data))
		return -EINVAL;
	memset(&buf, 0, sizeof(buf));
	buf.f.argsz = sizeof(buf.f) + len;
	buf.f.flags = flags;
	if (len)
		memcpy(buf.f.data, data, len);
	ret = ioctl(d->fd, VFIO_DEVICE_FEATURE, &buf) ? -errno : 0;
	if (!ret && len)
		memcpy(data, buf.f.data, len);
	return ret;
}

int mig_features(struct vmm_dev *d, uint64_t *flags)
{
	struct vfio_device_feature_migration m = {};
	int ret;

	ret = mig_feature(d, VFIO_DEVICE_FEATURE_GET |
		      VFIO_DEVICE_FEATURE_MIGRATION, &m, sizeof(m));
	*flags = ret ? 0 : m.flags;
	return ret;
}

int mig_set_state(struct vmm_dev *d, uint32_t state, int *data_fd)
{
	struct vfio_device_feature_mig_state s = {
		.device_state = state,
		.data_fd = -1,
	};
	int ret;

	ret = mig_feature(d, VFIO_DEVICE_FEATURE_SET |
		      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &s, sizeof(s));
	if (ret)
		s.data_fd = -1;
	if (data_fd)
		*data_fd = s.data_fd;
	else if (s.data_fd >= 0)
		close(s.data_fd);
	return ret;
}

int mig_get_state(struct vmm_dev *d, uint32_t *state)
{
	struct vfio_device_feature_mig_state s = { .data_fd = -1 };
	int ret;

	ret = mig_feature(d, VFIO_DEVICE_FEATURE_GET |
		      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &s, sizeof(s));
	*state = ret ? VFIO_DEVICE_STATE_ERROR : s.device_state;
	return ret;
}

const char *mig_state_name(uint32_t state)
{
	static const char *const names[MIG_STATE_NR] = {
		"ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING",
		"RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P",
	};

	return state < MIG_STATE_NR ? names[state] : "(invalid)";
}

int mig_data_size(struct vmm_dev *d, uint64_t *bytes)
{
	struct vfio_device_feature_mig_data_size s = {};
	int ret;

	ret = mig_feature(d, VFIO_DEVICE_FEATURE_GET |
		      VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &s, sizeof(s));
	*bytes = ret ? 0 : s.stop_copy_length;
	return ret;
}

static int buf_reserve(struct mig_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *p;

	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int mig_buf_append(struct mig_buf *b, const void *p, size_t len)
{
	int ret = buf_reserve(b, len);

	if (ret)
		return ret;
	memcpy(b->data + b->len, p, len);
	b->len += len;
	return 0;
}

void mig_buf_free(struct mig_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int mig_precopy_info(int data_fd, uint64_t *initial, uint64_t *dirty)
{
	struct vfio_precopy_info info = { .argsz = sizeof(info) };

	*initial = *dirty = 0;
	if (ioctl(data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info))
		return -errno;
	*initial = info.initial_bytes;
	*dirty = info.dirty_bytes;
	return 0;
}

/* One read() into @b: bytes read, 0 at end of stream, or -errno. */
static ssize_t read_once(int fd, struct mig_buf *b, size_t want)
{
	ssize_t n;

	if (buf_reserve(b, want))
		return -ENOMEM;
	do {
		n = read(fd, b->data + b->len, want);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	b->len += n;
	return n;
}

ssize_t mig_read_precopy(int data_fd, struct mig_buf *b)
{
	uint64_t initial = 0, dirty = 0;
	ssize_t total = 0, n;
	int ret;

	for (;;) {
		ret = mig_precopy_info(data_fd, &initial, &dirty);
		if (ret)
			return ret;
		if (!initial && !dirty)
			return total;
		n = read_once(data_fd, b, mig_read_chunk);
		if (n == -ENOMSG || n == 0)
			return total;
		if (n < 0)
			return n;
		total += n;
	}
}

ssize_t mig_read_stop_copy(int data_fd, struct mig_buf *b)
{
	ssize_t total = 0, n;

	while ((n = read_once(data_fd, b, mig_read_chunk)) > 0)
		total += n;
	return n < 0 ? n : total;
}

int mig_write_stream(int data_fd, const void *p, size_t len, size_t chunk)
{
	const uint8_t *q = p;

	if (!chunk)
		return -EINVAL;
	while (len) {
		size_t want = len < chunk ? len : chunk;
		ssize_t n = write(data_fd, q, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		q += n;
		len -= n;
	}
	return 0;
}

/* ---- DMA dirty logging ---- */

const char *mig_dirty_via_name(enum mig_dirty_via via)
{
	switch (via) {
	case MIG_DIRTY_VFIO:
		return "VFIO DMA logging";
	case MIG_DIRTY_NETLINK:
		return "vfio_mig netlink";
	default:
		return "off";
	}
}

static int vfio_log_start(struct mig_dirty *l)
{
	struct vfio_device_feature_dma_logging_range range = {
		.iova = l->iova, .length = l->length,
	};
	struct vfio_device_feature_dma_logging_control ctl = {
		.page_size = MIG_PAGE,
		.num_ranges = 1,
		.ranges = (uintptr_t)&range,
	};
	int ret;

	ret = mig_feature(l->d, VFIO_DEVICE_FEATURE_SET |
		      VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &ctl, sizeof(ctl));
	if (!ret)
		l->page_size = ctl.page_size;
	return ret;
}

static int nl_log_start(struct mig_dirty *l)
{
	struct genl_msg *m = malloc(sizeof(*m));
	struct nlattr *nest;
	int ret;

	if (!m)
		return -ENOMEM;
	ret = genl_open(&l->nl, VFIO_MIG_FAMILY_NAME);
	if (ret) {
		snprintf(l->err, sizeof(l->err), "netlink family %s: %s",
			 VFIO_MIG_FAMILY_NAME, strerror(-ret));
		free(m);
		return ret;
	}
	genl_msg_init(m, &l->nl, VFIO_MIG_CMD_DIRTY_START,
		      VFIO_MIG_FAMILY_VERSION, 0);
	genl_put_str(m, VFIO_MIG_A_DIRTY_BDF, l->d->bdf);
	genl_put_u64(m, VFIO_MIG_A_DIRTY_PAGE_SIZE, MIG_PAGE);
	nest = genl_nest_start(m, VFIO_MIG_A_DIRTY_RANGE);
	genl_put_u64(m, VFIO_MIG_A_DIRTY_RANGE_IOVA, l->iova);
	genl_put_u64(m, VFIO_MIG_A_DIRTY_RANGE_LENGTH, l->length);
	genl_nest_end(m, nest);
	ret = genl_do(&l->nl, m);
	free(m);
	if (ret) {
		snprintf(l->err, sizeof(l->err), "dirty-start: %s (%s)",
			 strerror(-ret), l->nl.err);
		genl_close(&l->nl);
		return ret;
	}
	l->page_size = MIG_PAGE;
	return 0;
}

int mig_dirty_start(struct mig_dirty *l, struct vmm_dev *d, uint64_t iova,
		    uint64_t length, bool force_netlink)
{
	int ret = -ENOTTY;

	memset(l, 0, sizeof(*l));
	l->nl.fd = -1;
	l->d = d;
	l->iova = iova;
	l->length = length;
	if (iova % MIG_PAGE || length % MIG_PAGE || !length)
		return -EINVAL;
	if (!force_netlink)
		ret = vfio_log_start(l);
	if (!ret) {
		l->via = MIG_DIRTY_VFIO;
		return 0;
	}
	/*
	 * No VFIO DMA logging on this kernel (Debian's 6.12 has no
	 * iova_bitmap): vfio core answers ENOTTY without log_ops.
	 */
	if (ret != -ENOTTY && ret != -EOPNOTSUPP) {
		snprintf(l->err, sizeof(l->err), "DMA_LOGGING_START: %s",
			 strerror(-ret));
		return ret;
	}
	ret = nl_log_start(l);
	if (!ret)
		l->via = MIG_DIRTY_NETLINK;
	return ret;
}

static int vfio_log_report(struct mig_dirty *l, uint64_t *bits)
{
	struct vfio_device_feature_dma_logging_report rep = {
		.iova = l->iova,
		.length = l->length,
		.page_size = MIG_PAGE,
		.bitmap = (uintptr_t)bits,
	};
	int ret;

	/* The kernel only sets bits: OR semantics, as wanted. */
	ret = mig_feature(l->d, VFIO_DEVICE_FEATURE_GET |
		      VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &rep, sizeof(rep));
	if (ret)
		snprintf(l->err, sizeof(l->err), "DMA_LOGGING_REPORT: %s",
			 strerror(-ret));
	return ret;
}

struct nl_report {
	struct mig_dirty *l;
	uint64_t *bits;
	int err;
};

/* Mark the MIG_PAGE pages of [iova, iova + len) that lie in the log. */
static void mark_range(struct mig_dirty *l, uint64_t *bits, uint64_t iova,
		       uint64_t len)
{
	uint64_t first = iova, end = iova + len;
	uint64_t p;

	if (first < l->iova)
		first = l->iova;
	if (end > l->iova + l->length)
		end = l->iova + l->length;
	for (p = first & ~(MIG_PAGE - 1); p < end; p += MIG_PAGE)
		mig_set_bit(bits, (p - l->iova) / MIG_PAGE);
}

static int nl_report_cb(const struct nlmsghdr *h, void *priv)
{
	const struct nlattr *tb[VFIO_MIG_A_DIRTY_MAX + 1];
	struct nl_report *r = priv;
	const uint8_t *bm;
	uint64_t iova, ps, nbits, i;

	genl_parse(h, tb, VFIO_MIG_A_DIRTY_MAX);
	if (!tb[VFIO_MIG_A_DIRTY_IOVA] || !tb[VFIO_MIG_A_DIRTY_PAGE_SIZE] ||
	    !tb[VFIO_MIG_A_DIRTY_BITMAP] || !tb[VFIO_MIG_A_DIRTY_LENGTH])
		return r->err = -EPROTO;
	iova = genl_get_u64(tb[VFIO_MIG_A_DIRTY_IOVA]);
	ps = genl_get_u64(tb[VFIO_MIG_A_DIRTY_PAGE_SIZE]);
	if (ps < MIG_PAGE || ps & (ps - 1))
		return r->err = -EPROTO;
	bm = genl_data(tb[VFIO_MIG_A_DIRTY_BITMAP]);
	nbits = genl_len(tb[VFIO_MIG_A_DIRTY_BITMAP]) * 8;
	/* Bit k of little-endian u64 words = byte k / 8, bit k % 8. */
	for (i = 0; i < nbits; i++)
		if (bm[i / 8] >> (i % 8) & 1)
			mark_range(r->l, r->bits, iova + i * ps, ps);
	return 0;
}

static int nl_log_report(struct mig_dirty *l, uint64_t *bits)
{
	struct nl_report r = { l, bits, 0 };
	struct genl_msg *m = malloc(sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	genl_msg_init(m, &l->nl, VFIO_MIG_CMD_DIRTY_GET,
		      VFIO_MIG_FAMILY_VERSION, 0);
	genl_put_str(m, VFIO_MIG_A_DIRTY_BDF, l->d->bdf);
	genl_put_u64(m, VFIO_MIG_A_DIRTY_IOVA, l->iova);
	genl_put_u64(m, VFIO_MIG_A_DIRTY_LENGTH, l->length);
	genl_put_flag(m, VFIO_MIG_A_DIRTY_CLEAR);
	ret = genl_dump(&l->nl, m, nl_report_cb, &r);
	free(m);
	if (ret)
		snprintf(l->err, sizeof(l->err), "dirty-get: %s (%s)",
			 strerror(-ret), l->nl.err);
	return ret;
}

int mig_dirty_report(struct mig_dirty *l, uint64_t *bits)
{
	switch (l->via) {
	case MIG_DIRTY_VFIO:
		return vfio_log_report(l, bits);
	case MIG_DIRTY_NETLINK:
		return nl_log_report(l, bits);
	default:
		return -ENOENT;
	}
}

static int nl_stop(struct genl *g, const char *bdf)
{
	struct genl_msg *m = malloc(sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	genl_msg_init(m, g, VFIO_MIG_CMD_DIRTY_STOP, VFIO_MIG_FAMILY_VERSION,
		      0);
	genl_put_str(m, VFIO_MIG_A_DIRTY_BDF, bdf);
	ret = genl_do(g, m);
	free(m);
	return ret;
}

int mig_dirty_stop(struct mig_dirty *l)
{
	int ret = 0;

	switch (l->via) {
	case MIG_DIRTY_VFIO:
		ret = mig_feature(l->d, VFIO_DEVICE_FEATURE_SET |
			      VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);
		break;
	case MIG_DIRTY_NETLINK:
		ret = nl_stop(&l->nl, l->d->bdf);
		genl_close(&l->nl);
		break;
	default:
		return 0;
	}
	l->via = MIG_DIRTY_OFF;
	return ret;
}

int mig_dirty_kill(const char *bdf)
{
	struct genl g;
	int ret;

	ret = genl_open(&g, VFIO_MIG_FAMILY_NAME);
	if (ret)
		return ret;
	ret = nl_stop(&g, bdf);
	genl_close(&g);
	return ret == -ENOENT ? 0 : ret;
}

size_t mig_bitmap_weight(const uint64_t *b, size_t nbits)
{
	size_t i, n = 0;

	for (i = 0; i < nbits; i++)
		n += mig_test_bit(b, i);
	return n;
}

/* ---- the VMM's own dirty record and the RAM rounds ---- */

int mig_cpu_log_init(struct mig_cpu_log *c, const struct vmm_ram *ram)
{
	c->iova = ram->iova;
	c->pages = ram->size / MIG_PAGE;
	c->bits = calloc(mig_bitmap_words(ram->size), sizeof(uint64_t));
	return c->bits ? 0 : -ENOMEM;
}

void mig_cpu_log_free(struct mig_cpu_log *c)
{
	free(c->bits);
	c->bits = NULL;
}

void mig_cpu_mark(struct mig_cpu_log *c, uint64_t iova, size_t len)
{
	uint64_t p, end = iova + len;

	if (!len || iova < c->iova || end > c->iova + c->pages * MIG_PAGE)
		return;
	for (p = (iova - c->iova) / MIG_PAGE;
	     p <= (end - 1 - c->iova) / MIG_PAGE; p++)
		__atomic_fetch_or(&c->bits[p / 64], 1ull << (p % 64),
				  __ATOMIC_SEQ_CST);
}

void mig_cpu_mark_all(struct mig_cpu_log *c)
{
	mig_cpu_mark(c, c->iova, c->pages * MIG_PAGE);
}

void mig_vcpu_write(struct mig_cpu_log *c, struct vmm_ram *ram,
		    uint64_t iova, const void *src, size_t len)
{
	memcpy((uint8_t *)ram->host + (iova - ram->iova), src, len);
	/* Data first, then the mark: a round that takes it sees the data. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mig_cpu_mark(c, iova, len);
}

void mig_cpu_take(struct mig_cpu_log *c, uint64_t *bits)
{
	size_t i;

	for (i = 0; i < (c->pages + 63) / 64; i++)
		bits[i] |= __atomic_exchange_n(&c->bits[i], 0,
					       __ATOMIC_SEQ_CST);
}

long mig_ram_round(struct mig_dirty *l, struct mig_cpu_log *c,
		   const struct vmm_ram *src, struct vmm_ram *dst,
		   uint64_t *merged)
{
	size_t words = mig_bitmap_words(src->size), pages = src->size / MIG_PAGE;
	uint64_t *bits;
	long copied = 0;
	size_t i;
	int ret;

	if (src->iova != dst->iova || src->size != dst->size)
		return -EINVAL;
	bits = calloc(words, sizeof(*bits));
	if (!bits)
		return -ENOMEM;
	if (l) {
		ret = mig_dirty_report(l, bits);
		if (ret) {
			free(bits);
			return ret;
		}
	}
	if (c)
		mig_cpu_take(c, bits);
	for (i = 0; i < pages; i++) {
		if (!mig_test_bit(bits, i))
			continue;
		memcpy((uint8_t *)dst->host + i * MIG_PAGE,
		       (const uint8_t *)src->host + i * MIG_PAGE, MIG_PAGE);
		copied++;
	}
	if (merged)
		for (i = 0; i < words; i++)
			merged[i] |= bits[i];
	free(bits);
	return copied;
}

/* ---- one end of a migration ---- */

int mig_side_open(struct mig_side *s, const char *bdf, const char *trap_mode,
		  uint64_t iova, size_t size)
{
	char path[256];
	int ret;

	memset(s, 0, sizeof(*s));
	s->d.fd = s->d.group = s->d.container = s->d.irq_fd = -1;
	s->ram.memfd = -1;
	ret = vmm_bind(bdf, "vfio-mig");
	if (ret)
		return ret;
	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/trap_mode", bdf);
	ret = vmm_sysfs_write(path, trap_mode);
	if (ret)
		return ret;
	ret = vmm_open(&s->d, bdf);
	if (ret)
		return ret;
	s->open = true;
	ret = vmm_ram_alloc(&s->ram, size, iova);
	if (!ret)
		ret = vmm_dma_map(&s->d, &s->ram);
	return ret;
}

void mig_side_close(struct mig_side *s)
{
	if (!s->open)
		return;
	vmm_ram_release(&s->d, &s->ram);
	vmm_close(&s->d);
	s->open = false;
}

/* reflected 0xedb88320, as zlib */
uint32_t mig_crc32(const void *p, size_t len)
{
	static uint32_t table[256];
	const uint8_t *b = p;
	uint32_t crc = ~0u;
	size_t i;

	if (!table[1]) {
		for (i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	for (i = 0; i < len; i++)
		crc = table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t mig_get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

void mig_put32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

int mig_ctl_rollback(const char *bdf)
{
	struct vfio_mig_ctl_attach a = { .argsz = sizeof(a) };
	struct vfio_mig_ctl_state st = { .argsz = sizeof(st), .data_fd = -1 };
	int fd = open(VFIO_MIG_CTL_DEVICE, O_RDWR | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	snprintf(a.bdf, sizeof(a.bdf), "%.15s", bdf);
	if (ioctl(fd, VFIO_MIG_CTL_ATTACH, &a) ||
	    ioctl(fd, VFIO_MIG_CTL_STATE, &st)) {
		ret = -errno;
	} else {
		/* the state it is in: this controller has moved the device */
		st.flags = VFIO_MIG_CTL_STATE_SET;
		if (ioctl(fd, VFIO_MIG_CTL_STATE, &st))
			ret = -errno;
		else if (st.data_fd >= 0)
			close(st.data_fd);
	}
	close(fd);
	return ret;
}
