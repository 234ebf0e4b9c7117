// SPDX-License-Identifier: GPL-2.0
/*
 * migctl commands over the vfio_mig netlink family: dev, log, dirty, shadow,
 * monitor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"
#include "nl.h"

static const char *const trap_names[] = { "none", "sparse", "all" };

static const char *trap_name(uint32_t m)
{
	return m < 3 ? trap_names[m] : "?";
}

static const char *const mig_state_names[] = {
	"error", "stop", "running", "stop-copy", "resuming", "running-p2p",
	"pre-copy", "pre-copy-p2p",
};

/* The VFIO migration state; a kernel without the attribute: running. */
static const char *mig_state_name(struct nlattr **tb)
{
	uint32_t s;

	if (!tb[VFIO_MIG_A_DEV_MIG_STATE])
		return "running";
	s = nla_get_u32(tb[VFIO_MIG_A_DEV_MIG_STATE]);
	return s < sizeof(mig_state_names) / sizeof(mig_state_names[0]) ?
	       mig_state_names[s] : "?";
}

static int parse_trap(const char *s)
{
	int i;

	for (i = 0; i < 3; i++)
		if (!strcmp(s, trap_names[i]))
			return i;
	return -1;
}

int migctl_parse_u64(const char *s, uint64_t *v)
{
	char *end;

	/* a digit first: strtoull() would take spaces and a sign */
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || *end ? -1 : 0;
}

/* ---- dev show / dev set ---- */

static uint64_t get_u64(struct nlattr **tb, int i)
{
	return tb[i] ? nla_get_u64(tb[i]) : 0;
}

/* The counters nest, in the order and with the JSON names migctl uses. */
static const struct counter {
	const char *name;
	int attr;
	bool flag;		/* a u8 shown as true/false */
} counters[] = {
	{ "trapped_reads", VFIO_MIG_A_COUNTERS_TRAPPED_READS, false },
	{ "trapped_writes", VFIO_MIG_A_COUNTERS_TRAPPED_WRITES, false },
	{ "log_entries", VFIO_MIG_A_COUNTERS_LOG_ENTRIES, false },
	{ "log_overflows", VFIO_MIG_A_COUNTERS_LOG_OVERFLOWS, false },
	{ "log_next_seq", VFIO_MIG_A_COUNTERS_LOG_NEXT_SEQ, false },
	{ "log_lossy", VFIO_MIG_A_COUNTERS_LOG_LOSSY, true },
	{ "dirty_logging", VFIO_MIG_A_COUNTERS_DIRTY_LOGGING, true },
	{ "dirty_marks", VFIO_MIG_A_COUNTERS_DIRTY_MARKS, false },
	{ "dirty_pages", VFIO_MIG_A_COUNTERS_DIRTY_PAGES, false },
	{ "dirty_reports", VFIO_MIG_A_COUNTERS_DIRTY_REPORTS, false },
	{ "dirty_oor_marks", VFIO_MIG_A_COUNTERS_DIRTY_OOR_MARKS, false },
	{ "dirty_last_report_pages",
	  VFIO_MIG_A_COUNTERS_DIRTY_LAST_REPORT_PAGES, false },
};

/*
 * The migration flags a device offers its VMM (dev-get mig-flags), as
 * "stop-copy,p2p,pre-copy" (a bit we have no name for in hex), "none", or
 * "?" from a module without them.
 */
static const char *mig_flags_name(struct nlattr **tb, char *buf, size_t len)
{
	static const char *const name[] = { "stop-copy", "p2p", "pre-copy" };
	uint64_t f;
	size_t n = 0;
	unsigned int i;

	if (!tb[VFIO_MIG_A_DEV_MIG_FLAGS])
		return "?";
	f = nla_get_u64(tb[VFIO_MIG_A_DEV_MIG_FLAGS]);
	buf[0] = 0;
	for (i = 0; i < 3; i++)
		if (f & (1ull << i))
			n += snprintf(buf + n, len - n, "%s%s", n ? "," : "",
				      name[i]);
	if (f >> 3)
		n += snprintf(buf + n, len - n, "%s%#llx", n ? "," : "",
			      (unsigned long long)(f & ~7ull));
	return n ? buf : "none";
}

static int show_dev(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_DEV_MAX + 1];
	struct nlattr *c[VFIO_MIG_A_COUNTERS_MAX + 1] = {};
	struct json_out *js = arg;
	bool early_load;
	unsigned int i;
	char bdf[32], flags[48];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_DEV_MAX, NULL) ||
	    !tb[VFIO_MIG_A_DEV_BDF])
		return NL_SKIP;
	early_load = tb[VFIO_MIG_A_DEV_EARLY_LOAD] &&
		     nla_get_u8(tb[VFIO_MIG_A_DEV_EARLY_LOAD]);
	snprintf(bdf, sizeof(bdf), "%s", nla_get_string(tb[VFIO_MIG_A_DEV_BDF]));
	if (tb[VFIO_MIG_A_DEV_COUNTERS])
		nla_parse_nested(c, VFIO_MIG_A_COUNTERS_MAX,
				 tb[VFIO_MIG_A_DEV_COUNTERS], NULL);
	if (js->enabled) {
		char id[8];

		json_begin_object(js, NULL);
		json_str(js, "dev", bdf);
#define HEX16(key, attr) do { \
		snprintf(id, sizeof(id), "%04x", \
			 tb[attr] ? nla_get_u16(tb[attr]) : 0); \
		json_str(js, key, id); } while (0)
		HEX16("vendor", VFIO_MIG_A_DEV_VENDOR);
		HEX16("device", VFIO_MIG_A_DEV_DEVICE);
		HEX16("subsystem_vendor", VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR);
		HEX16("subsystem_device", VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE);
#undef HEX16
		json_u64(js, "revision", tb[VFIO_MIG_A_DEV_REVISION] ?
			 nla_get_u8(tb[VFIO_MIG_A_DEV_REVISION]) : 0);
		if (tb[VFIO_MIG_A_DEV_IOMMU_GROUP])
			json_u64(js, "iommu_group",
				 nla_get_u32(tb[VFIO_MIG_A_DEV_IOMMU_GROUP]));
		json_str(js, "profile", tb[VFIO_MIG_A_DEV_PROFILE] ?
			 nla_get_string(tb[VFIO_MIG_A_DEV_PROFILE]) : "");
		json_str(js, "trap_mode",
			 trap_name(nla_get_u32(tb[VFIO_MIG_A_DEV_TRAP_MODE])));
		json_bool(js, "open", tb[VFIO_MIG_A_DEV_OPEN] &&
			  nla_get_u8(tb[VFIO_MIG_A_DEV_OPEN]));
		json_str(js, "mig_state", mig_state_name(tb));
		json_u64(js, "dirty_page_size",
			 get_u64(tb, VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE));
		json_bool(js, "early_load", early_load);
		json_str(js, "migration", mig_flags_name(tb, flags,
							 sizeof(flags)));
		json_begin_object(js, "counters");
		for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
			const struct counter *k = &counters[i];

			if (k->flag)
				json_bool(js, k->name, c[k->attr] &&
					  nla_get_u8(c[k->attr]));
			else
				json_u64(js, k->name, get_u64(c, k->attr));
		}
		json_end_object(js);
		json_end_object(js);
		return NL_OK;
	}
	printf("%s: %04x:%04x subsystem %04x:%04x rev 0x%02x",
	       bdf, nla_get_u16(tb[VFIO_MIG_A_DEV_VENDOR]),
	       nla_get_u16(tb[VFIO_MIG_A_DEV_DEVICE]),
	       nla_get_u16(tb[VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR]),
	       nla_get_u16(tb[VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE]),
	       nla_get_u8(tb[VFIO_MIG_A_DEV_REVISION]));
	if (tb[VFIO_MIG_A_DEV_IOMMU_GROUP])
		printf(" iommu_group %u",
		       nla_get_u32(tb[VFIO_MIG_A_DEV_IOMMU_GROUP]));
	printf("\n  profile %s trap %s open %s mig_state %s dirty_page_size %"
	       PRIu64 " early_load %s migration %s\n",
	       nla_get_string(tb[VFIO_MIG_A_DEV_PROFILE]),
	       trap_name(nla_get_u32(tb[VFIO_MIG_A_DEV_TRAP_MODE])),
	       nla_get_u8(tb[VFIO_MIG_A_DEV_OPEN]) ? "yes" : "no",
	       mig_state_name(tb),
	       get_u64(tb, VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE),
	       early_load ? "yes" : "no",
	       mig_flags_name(tb, flags, sizeof(flags)));
	printf("  trapped reads %" PRIu64 " writes %" PRIu64
	       "  log entries %" PRIu64 " overflows %" PRIu64
	       " next_seq %" PRIu64 "%s\n",
	       get_u64(c, VFIO_MIG_A_COUNTERS_TRAPPED_READS),
	       get_u64(c, VFIO_MIG_A_COUNTERS_TRAPPED_WRITES),
	       get_u64(c, VFIO_MIG_A_COUNTERS_LOG_ENTRIES),
	       get_u64(c, VFIO_MIG_A_COUNTERS_LOG_OVERFLOWS),
	       get_u64(c, VFIO_MIG_A_COUNTERS_LOG_NEXT_SEQ),
	       c[VFIO_MIG_A_COUNTERS_LOG_LOSSY] &&
	       nla_get_u8(c[VFIO_MIG_A_COUNTERS_LOG_LOSSY]) ? " lossy" : "");
	printf("  dirty logging %s marks %" PRIu64 " pages %" PRIu64
	       " reports %" PRIu64 " out-of-range %" PRIu64
	       " last_report %" PRIu64 "\n",
	       c[VFIO_MIG_A_COUNTERS_DIRTY_LOGGING] &&
	       nla_get_u8(c[VFIO_MIG_A_COUNTERS_DIRTY_LOGGING]) ? "on" : "off",
	       get_u64(c, VFIO_MIG_A_COUNTERS_DIRTY_MARKS),
	       get_u64(c, VFIO_MIG_A_COUNTERS_DIRTY_PAGES),
	       get_u64(c, VFIO_MIG_A_COUNTERS_DIRTY_REPORTS),
	       get_u64(c, VFIO_MIG_A_COUNTERS_DIRTY_OOR_MARKS),
	       get_u64(c, VFIO_MIG_A_COUNTERS_DIRTY_LAST_REPORT_PAGES));
	return NL_OK;
}

/*
 * A request about one device (@bdf, as attribute @attr), or with @bdf NULL
 * a dump of all. With @fn, the replies go to it inside a JSON array;
 * @what names a dump's failure.
 */
static int dev_request(struct json_out *js, uint8_t cmd, int attr,
		       const char *bdf, int (*fn)(struct nl_msg *, void *),
		       const char *what)
{
	struct migctl_nl nl;
	int ret;

	if (bdf && !migctl_valid_bdf(bdf))
		return migctl_usage_err("'%s' is not a PCI address (DDDD:BB:DD.F)",
					bdf);
	if (migctl_nl_open(&nl))
		return 1;
	if (fn)
		json_begin_array(js, NULL);
	ret = migctl_nl_request(&nl, cmd, attr, bdf, fn, js);
	if (fn)
		json_end_array(js);
	if (ret)
		ret = migctl_nl_fail(&nl, bdf ? bdf : what, ret);
	migctl_nl_close(&nl);
	return ret;
}

int migctl_dev_show(struct json_out *js, const char *bdf)
{
	return dev_request(js, VFIO_MIG_CMD_DEV_GET, VFIO_MIG_A_DEV_BDF, bdf,
			   show_dev, "dev show");
}

int migctl_dev_set(int argc, char **argv)
{
	const char *bdf = argv[0];
	struct migctl_nl nl;
	struct nl_msg *msg;
	int i, ret, trap;
	uint64_t v;

	if (!migctl_valid_bdf(bdf))
		return migctl_usage_err("'%s' is not a PCI address (DDDD:BB:DD.F)",
					bdf);
	if (argc < 3 || !(argc % 2))
		return migctl_usage_err("dev set: expected BDF KEY VALUE [KEY VALUE]...");
	if (migctl_nl_open(&nl))
		return 1;
	msg = migctl_nl_msg(&nl, VFIO_MIG_CMD_DEV_SET, false);
	if (!msg)
		return 1;
	nla_put_string(msg, VFIO_MIG_A_DEV_BDF, bdf);
	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "trap")) {
			trap = parse_trap(argv[i + 1]);
			if (trap < 0)
				goto bad;
			nla_put_u32(msg, VFIO_MIG_A_DEV_TRAP_MODE, trap);
		} else if (!strcmp(argv[i], "profile")) {
			nla_put_string(msg, VFIO_MIG_A_DEV_PROFILE, argv[i + 1]);
		} else if (!strcmp(argv[i], "dirty-page-size")) {
			if (migctl_parse_u64(argv[i + 1], &v))
				goto bad;
			nla_put_u64(msg, VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE, v);
		} else {
			nlmsg_free(msg);
			migctl_nl_close(&nl);
			return migctl_usage_err("dev set: unknown setting '%s' (trap, profile, dirty-page-size)",
						argv[i]);
		}
	}
	ret = migctl_nl_run(&nl, msg, NULL, NULL);
	if (ret)
		ret = migctl_nl_fail(&nl, bdf, ret);
	migctl_nl_close(&nl);
	return ret;
bad:
	nlmsg_free(msg);
	migctl_nl_close(&nl);
	return migctl_usage_err("dev set: bad value '%s' for %s", argv[i + 1],
				argv[i]);
}

/* ---- log ---- */

static int show_entry(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_REGLOG_MAX + 1];
	struct json_out *js = arg;
	uint64_t seq, ts, val;
	unsigned int bar, width;
	uint32_t off;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_REGLOG_MAX, NULL) ||
	    !tb[VFIO_MIG_A_REGLOG_SEQ])
		return NL_SKIP;
	seq = nla_get_u64(tb[VFIO_MIG_A_REGLOG_SEQ]);
	ts = get_u64(tb, VFIO_MIG_A_REGLOG_TS_NS);
	val = get_u64(tb, VFIO_MIG_A_REGLOG_VALUE);
	bar = tb[VFIO_MIG_A_REGLOG_BAR] ? nla_get_u8(tb[VFIO_MIG_A_REGLOG_BAR]) : 0;
	width = tb[VFIO_MIG_A_REGLOG_WIDTH] ?
		nla_get_u8(tb[VFIO_MIG_A_REGLOG_WIDTH]) : 0;
	off = tb[VFIO_MIG_A_REGLOG_OFFSET] ?
	      nla_get_u32(tb[VFIO_MIG_A_REGLOG_OFFSET]) : 0;
	if (js->enabled) {
		json_begin_object(js, NULL);
		json_u64(js, "seq", seq);
		json_u64(js, "ts_ns", ts);
		json_u64(js, "bar", bar);
		json_u64(js, "offset", off);
		json_u64(js, "width", width);
		json_u64(js, "value", val);
		json_end_object(js);
	} else {
		printf("%8" PRIu64 " %14.6f  bar%u+0x%05x w%u = 0x%0*" PRIx64 "\n",
		       seq, ts / 1e9, bar, off, width, (int)width * 2, val);
	}
	return NL_OK;
}

int migctl_log(struct json_out *js, const char *bdf, uint64_t since)
{
	struct migctl_nl nl;
	struct nl_msg *msg;
	int ret;

	if (!migctl_valid_bdf(bdf))
		return migctl_usage_err("'%s' is not a PCI address (DDDD:BB:DD.F)",
					bdf);
	if (migctl_nl_open(&nl))
		return 1;
	msg = migctl_nl_msg(&nl, VFIO_MIG_CMD_REGLOG_GET, true);
	if (msg) {
		nla_put_string(msg, VFIO_MIG_A_REGLOG_BDF, bdf);
		nla_put_u64(msg, VFIO_MIG_A_REGLOG_SINCE, since);
	}
	json_begin_array(js, NULL);
	ret = migctl_nl_run(&nl, msg, show_entry, js);
	json_end_array(js);
	if (ret)
		ret = migctl_nl_fail(&nl, bdf, ret);
	migctl_nl_close(&nl);
	return ret;
}

/* ---- dirty ---- */

struct dirty_acc {
	struct json_out *js;
	uint64_t page_size;
	uint64_t pages;
	uint64_t run_start, run_len;	/* current run of dirty pages */
	bool in_run;
};

static void flush_run(struct dirty_acc *d)
{
	if (!d->in_run)
		return;
	if (d->js->enabled) {
		json_begin_object(d->js, NULL);
		json_u64(d->js, "iova", d->run_start);
		json_u64(d->js, "length", d->run_len);
		json_end_object(d->js);
	} else {
		printf("  0x%016" PRIx64 "-0x%016" PRIx64 " (%" PRIu64 " pages)\n",
		       d->run_start, d->run_start + d->run_len - 1,
		       d->run_len / d->page_size);
	}
	d->in_run = false;
}

static int take_bitmap(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_DIRTY_MAX + 1];
	struct dirty_acc *d = arg;
	const uint64_t *w;
	uint64_t iova, len, ps, i, nbits, addr;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_DIRTY_MAX, NULL) ||
	    !tb[VFIO_MIG_A_DIRTY_BITMAP] || !tb[VFIO_MIG_A_DIRTY_PAGE_SIZE])
		return NL_SKIP;
	iova = get_u64(tb, VFIO_MIG_A_DIRTY_IOVA);
	len = get_u64(tb, VFIO_MIG_A_DIRTY_LENGTH);
	ps = nla_get_u64(tb[VFIO_MIG_A_DIRTY_PAGE_SIZE]);
	if (!ps)
		return NL_SKIP;
	d->page_size = ps;
	w = nla_data(tb[VFIO_MIG_A_DIRTY_BITMAP]);
	nbits = (uint64_t)nla_len(tb[VFIO_MIG_A_DIRTY_BITMAP]) * 8;
	if (nbits > (len + ps - 1) / ps)
		nbits = (len + ps - 1) / ps;
	for (i = 0; i < nbits; i++) {
		if (!(i % 64) && !w[i / 64]) {
			i += 63;
			continue;
		}
		if (!(w[i / 64] & (1ull << (i % 64))))
			continue;
		addr = iova + i * ps;
		d->pages++;
		if (d->in_run && d->run_start + d->run_len == addr) {
			d->run_len += ps;
			continue;
		}
		flush_run(d);
		d->run_start = addr;
		d->run_len = ps;
		d->in_run = true;
	}
	return NL_OK;
}

int migctl_dirty(struct json_out *js, int argc, char **argv)
{
	struct dirty_acc acc = { .js = js };
	const char *sub = "show", *bdf;
	uint64_t iova = 0, len = 0, ps = 0, a, b;
	bool clear = false, have_range = false;
	struct nlattr *nest;
	struct migctl_nl nl;
	struct nl_msg *msg;
	int i, ret, nr = 0;

	if (argc && (!strcmp(argv[0], "show") || !strcmp(argv[0], "start") ||
		     !strcmp(argv[0], "stop"))) {
		sub = argv[0];
		argc--;
		argv++;
	}
	if (argc < 1)
		return migctl_usage_err("dirty: expected a BDF");
	bdf = argv[0];
	if (!migctl_valid_bdf(bdf))
		return migctl_usage_err("'%s' is not a PCI address (DDDD:BB:DD.F)",
					bdf);
	if (migctl_nl_open(&nl))
		return 1;
	if (!strcmp(sub, "stop")) {
		if (argc != 1)
			goto usage;
		msg = migctl_nl_msg(&nl, VFIO_MIG_CMD_DIRTY_STOP, false);
		if (msg)
			nla_put_string(msg, VFIO_MIG_A_DIRTY_BDF, bdf);
		ret = migctl_nl_run(&nl, msg, NULL, NULL);
		goto done;
	}
	if (!strcmp(sub, "start")) {
		msg = migctl_nl_msg(&nl, VFIO_MIG_CMD_DIRTY_START, false);
		if (!msg)
			goto usage;
		nla_put_string(msg, VFIO_MIG_A_DIRTY_BDF, bdf);
		for (i = 1; i < argc; i++) {
			char *colon;

			if (!strcmp(argv[i], "--page-size") && i + 1 < argc &&
			    !migctl_parse_u64(argv[++i], &ps)) {
				nla_put_u64(msg, VFIO_MIG_A_DIRTY_PAGE_SIZE, ps);
				continue;
			}
			colon = strchr(argv[i], ':');
			if (!colon)
				goto bad_start;
			*colon = 0;
			if (migctl_parse_u64(argv[i], &a) ||
			    migctl_parse_u64(colon + 1, &b))
				goto bad_start;
			nest = nla_nest_start(msg, VFIO_MIG_A_DIRTY_RANGE);
			nla_put_u64(msg, VFIO_MIG_A_DIRTY_RANGE_IOVA, a);
			nla_put_u64(msg, VFIO_MIG_A_DIRTY_RANGE_LENGTH, b);
			nla_nest_end(msg, nest);
			nr++;
		}
		if (!nr)
			goto bad_start;
		ret = migctl_nl_run(&nl, msg, NULL, NULL);
		goto done;
bad_start:
		nlmsg_free(msg);
		goto usage;
	}
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--clear")) {
			clear = true;
		} else if (!strcmp(argv[i], "--iova") && i + 1 < argc &&
			   !migctl_parse_u64(argv[i + 1], &iova)) {
			have_range = true;
			i++;
		} else if (!strcmp(argv[i], "--length") && i + 1 < argc &&
			   !migctl_parse_u64(argv[i + 1], &len)) {
			have_range = true;
			i++;
		} else {
			goto usage;
		}
	}
	if (have_range && !len)
		goto usage;
	msg = migctl_nl_msg(&nl, VFIO_MIG_CMD_DIRTY_GET, true);
	if (msg) {
		nla_put_string(msg, VFIO_MIG_A_DIRTY_BDF, bdf);
		if (have_range) {
			nla_put_u64(msg, VFIO_MIG_A_DIRTY_IOVA, iova);
			nla_put_u64(msg, VFIO_MIG_A_DIRTY_LENGTH, len);
		}
		if (clear)
			nla_put_flag(msg, VFIO_MIG_A_DIRTY_CLEAR);
	}
	json_begin_object(js, NULL);
	json_str(js, "dev", bdf);
	json_begin_array(js, "dirty");
	ret = migctl_nl_run(&nl, msg, take_bitmap, &acc);
	flush_run(&acc);
	json_end_array(js);
	json_u64(js, "page_size", acc.page_size);
	json_u64(js, "dirty_pages", acc.pages);
	json_end_object(js);
	if (!ret && !js->enabled)
		printf("%s: %" PRIu64 " dirty pages of %" PRIu64 " bytes%s\n",
		       bdf, acc.pages, acc.page_size,
		       clear ? " (cleared)" : "");
done:
	if (ret)
		ret = migctl_nl_fail(&nl, bdf, ret);
	migctl_nl_close(&nl);
	return ret;
usage:
	migctl_nl_close(&nl);
	return migctl_usage_err("dirty: see 'migctl dirty --help'");
}

/* ---- shadow ---- */

/* A duration for people: 350 ns, 812.3 us, 1.2 ms, 2.0 s. */
static void fmt_ns(char *buf, size_t len, uint64_t ns)
{
	static const char *const units[] = { "us", "ms", "s" };
	double v = ns / 1e3;
	unsigned int u = 0;

	if (ns < 1000) {
		snprintf(buf, len, "%" PRIu64 " ns", ns);
		return;
	}
	while (v >= 999.95 && u < 2) {	/* what %.1f would round to 1000.0 */
		v /= 1e3;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
}

/* The shadow's numbers, in the order and with the JSON names migctl uses. */
static const struct shadow_field {
	const char *key;	/* JSON; a duration in ns */
	const char *label;	/* text; a duration in us, ms or s */
	int attr;
	bool ns;
} shadow_fields[] = {
	{ "reads", "reads", VFIO_MIG_A_SHADOW_READS, false },
	{ "writes", "writes", VFIO_MIG_A_SHADOW_WRITES, false },
	{ "dmas", "dmas", VFIO_MIG_A_SHADOW_DMAS, false },
	{ "irqs", "irqs", VFIO_MIG_A_SHADOW_IRQS, false },
	{ "engage_ns", "engage", VFIO_MIG_A_SHADOW_ENGAGE_NS, true },
	{ "handback_ns", "handback", VFIO_MIG_A_SHADOW_HANDBACK_NS, true },
};

static const struct nla_policy shadow_policy[VFIO_MIG_A_SHADOW_MAX + 1] = {
	[VFIO_MIG_A_SHADOW_BDF] = { .type = NLA_STRING },
	[VFIO_MIG_A_SHADOW_PROFILE] = { .type = NLA_STRING },
	[VFIO_MIG_A_SHADOW_AVAILABLE] = { .type = NLA_U8 },
	[VFIO_MIG_A_SHADOW_ENGAGED] = { .type = NLA_U8 },
	[VFIO_MIG_A_SHADOW_READS] = { .type = NLA_U64 },
	[VFIO_MIG_A_SHADOW_WRITES] = { .type = NLA_U64 },
	[VFIO_MIG_A_SHADOW_DMAS] = { .type = NLA_U64 },
	[VFIO_MIG_A_SHADOW_IRQS] = { .type = NLA_U64 },
	[VFIO_MIG_A_SHADOW_ENGAGE_NS] = { .type = NLA_U64 },
	[VFIO_MIG_A_SHADOW_HANDBACK_NS] = { .type = NLA_U64 },
};

int migctl_shadow_parse(struct nl_msg *msg, struct nlattr **tb)
{
	return genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_SHADOW_MAX,
			     shadow_policy) || !tb[VFIO_MIG_A_SHADOW_BDF] ? -1 : 0;
}

/* One shadow-get reply: a JSON object, or one line of text. */
int migctl_show_shadow(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_SHADOW_MAX + 1];
	const struct shadow_field *f;
	struct json_out *js = arg;
	const char *profile;
	bool avail, engaged;
	char t[32];

	if (migctl_shadow_parse(msg, tb))
		return NL_SKIP;
	profile = tb[VFIO_MIG_A_SHADOW_PROFILE] ?
		  nla_get_string(tb[VFIO_MIG_A_SHADOW_PROFILE]) : "";
	avail = tb[VFIO_MIG_A_SHADOW_AVAILABLE] &&
		nla_get_u8(tb[VFIO_MIG_A_SHADOW_AVAILABLE]);
	engaged = tb[VFIO_MIG_A_SHADOW_ENGAGED] &&
		  nla_get_u8(tb[VFIO_MIG_A_SHADOW_ENGAGED]);
	json_begin_object(js, NULL);
	json_str(js, "dev", nla_get_string(tb[VFIO_MIG_A_SHADOW_BDF]));
	json_str(js, "profile", profile);
	json_bool(js, "available", avail);
	json_bool(js, "engaged", engaged);
	if (!js->enabled)
		printf("%s: profile %s shadow %s",
		       nla_get_string(tb[VFIO_MIG_A_SHADOW_BDF]),
		       *profile ? profile : "?",
		       !avail ? "not available" :
		       engaged ? "available engaged" : "available released");
	for (f = shadow_fields; f < shadow_fields + sizeof(shadow_fields) /
	     sizeof(shadow_fields[0]); f++) {
		uint64_t v = get_u64(tb, f->attr);

		json_u64(js, f->key, v);
		if (js->enabled || !avail)
			continue;
		if (f->ns)
			fmt_ns(t, sizeof(t), v);
		else
			snprintf(t, sizeof(t), "%" PRIu64, v);
		printf(" %s %s", f->label, t);
	}
	json_end_object(js);
	if (!js->enabled)
		putchar('\n');
	return NL_OK;
}

int migctl_shadow(struct json_out *js, int argc, char **argv)
{
	const char *verb = argc ? argv[0] : "show";

	if (!strcmp(verb, "show")) {
		if (argc > 2)
			return migctl_usage_err("shadow show: too many arguments");
		return dev_request(js, VFIO_MIG_CMD_SHADOW_GET,
				   VFIO_MIG_A_SHADOW_BDF,
				   argc == 2 ? argv[1] : NULL,
				   migctl_show_shadow, "shadow show");
	}
	if (strcmp(verb, "engage") && strcmp(verb, "release"))
		return migctl_usage_err("shadow: unknown command '%s' (engage, release, show)",
					verb);
	if (argc != 2)
		return migctl_usage_err("shadow %s: expected one BDF", verb);
	return dev_request(js, verb[0] == 'e' ? VFIO_MIG_CMD_SHADOW_ATTACH :
			   VFIO_MIG_CMD_SHADOW_DETACH, VFIO_MIG_A_SHADOW_BDF,
			   argv[1], NULL, NULL);
}

/* ---- monitor ---- */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int show_event(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_MIG_A_DEV_MAX + 1];
	struct genlmsghdr *g = nlmsg_data(nlmsg_hdr(msg));
	struct json_out *js = arg;
	const char *what;

	switch (g->cmd) {
	case VFIO_MIG_CMD_DEV_BIND_NTF:
		what = "bind";
		break;
	case VFIO_MIG_CMD_DEV_UNBIND_NTF:
		what = "unbind";
		break;
	case VFIO_MIG_CMD_DEV_CHANGE_NTF:
		what = "change";
		break;
	case VFIO_MIG_CMD_LOG_OVERFLOW_NTF:
		what = "log-overflow";
		break;
	case VFIO_MIG_CMD_MIG_STATE_NTF:
		what = "mig-state";
		break;
	default:
		return NL_SKIP;
	}
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_MIG_A_DEV_MAX, NULL) ||
	    !tb[VFIO_MIG_A_DEV_BDF])
		return NL_SKIP;
	if (js->enabled) {
		json_begin_object(js, NULL);
		json_str(js, "event", what);
		json_str(js, "dev", nla_get_string(tb[VFIO_MIG_A_DEV_BDF]));
		if (tb[VFIO_MIG_A_DEV_TRAP_MODE])
			json_str(js, "trap_mode",
				 trap_name(nla_get_u32(tb[VFIO_MIG_A_DEV_TRAP_MODE])));
		if (tb[VFIO_MIG_A_DEV_PROFILE])
			json_str(js, "profile",
				 nla_get_string(tb[VFIO_MIG_A_DEV_PROFILE]));
		json_str(js, "mig_state", mig_state_name(tb));
		json_end_object(js);
	} else {
		printf("%s %s", what, nla_get_string(tb[VFIO_MIG_A_DEV_BDF]));
		if (tb[VFIO_MIG_A_DEV_TRAP_MODE])
			printf(" trap %s",
			       trap_name(nla_get_u32(tb[VFIO_MIG_A_DEV_TRAP_MODE])));
		if (tb[VFIO_MIG_A_DEV_PROFILE])
			printf(" profile %s",
			       nla_get_string(tb[VFIO_MIG_A_DEV_PROFILE]));
		printf(" mig_state %s\n", mig_state_name(tb));
	}
	fflush(stdout);
	return NL_OK;
}

int migctl_monitor(struct json_out *js)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct migctl_nl nl;
	struct pollfd p;
	int ret;

	if (migctl_nl_open(&nl))
		return 1;
	ret = migctl_nl_subscribe(&nl);
	if (ret) {
		migctl_nl_close(&nl);
		return migctl_nl_fail(&nl, "monitor", ret);
	}
	nl_socket_modify_cb(nl.sk, NL_CB_VALID, NL_CB_CUSTOM, show_event, js);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* One JSON object per line, so a reader can follow the stream. */
	js->pretty = false;
	p.fd = nl_socket_get_fd(nl.sk);
	p.events = POLLIN;
	while (!stop) {
		ret = poll(&p, 1, 500);
		if (ret > 0)
			nl_recvmsgs_default(nl.sk);
	}
	migctl_nl_close(&nl);
	return 0;
}
