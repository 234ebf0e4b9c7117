// SPDX-License-Identifier: GPL-2.0
/*
 * A netlink fuzzer for the vfio_mig family: 100,000 messages with random
 * commands, flags, attributes, lengths and nesting, sent as root (so the
 * admin-only handlers run too). The family must still answer correctly
 * afterwards; the test bed fails the run on any WARN or oops in dmesg.
 * The seed is printed; VMIG_FUZZ_SEED and VMIG_FUZZ_COUNT override.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/vfio_mig.h>

#include "kselftest_harness.h"
#include "cmd.h"
#include "testbed.h"

#define BUF	16384

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int nl_socket(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1, fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
				  NETLINK_GENERIC);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	return fd;
}

static void put_attr(char *buf, size_t *len, uint16_t type, const void *d,
		     uint16_t dlen)
{
	struct nlattr *a = (struct nlattr *)(buf + *len);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + dlen;
	memcpy(a + 1, d, dlen);
	*len += NLA_ALIGN(a->nla_len);
}

/* Resolve the family id through nlctrl (raw, no libnl). */
static int family_id(int fd)
{
	char buf[BUF];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	struct genlmsghdr *g = NLMSG_DATA(h);
	size_t len = NLMSG_HDRLEN + GENL_HDRLEN;
	struct nlattr *a;
	ssize_t n;
	int rem;

	memset(buf, 0, sizeof(buf));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	put_attr(buf, &len, CTRL_ATTR_FAMILY_NAME, VFIO_MIG_FAMILY_NAME,
		 sizeof(VFIO_MIG_FAMILY_NAME));
	h->nlmsg_len = len;
	h->nlmsg_type = GENL_ID_CTRL;
	h->nlmsg_flags = NLM_F_REQUEST;
	if (send(fd, buf, len, 0) < 0)
		return -1;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < (ssize_t)NLMSG_HDRLEN || h->nlmsg_type != GENL_ID_CTRL)
		return -1;
	a = (struct nlattr *)((char *)NLMSG_DATA(h) + GENL_HDRLEN);
	rem = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	while (rem >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&
	       a->nla_len <= rem) {
		if (a->nla_type == CTRL_ATTR_FAMILY_ID)
			return *(uint16_t *)(a + 1);
		rem -= NLA_ALIGN(a->nla_len);
		a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
	}
	return -1;
}

/* Random attributes, some nested, some with lying lengths. */
static void random_attrs(char *buf, size_t *len, size_t max, int depth,
			 char bdfs[][32], int nbdf)
{
	int i, n = rnd() % 6;

	for (i = 0; i < n && *len + 256 < max; i++) {
		uint16_t type = rnd() % 16;
		char data[128];
		uint16_t dlen;
		struct nlattr *a;
		size_t at = *len;

		switch (rnd() % 8) {
		case 0:		/* a real device address */
			dlen = snprintf(data, sizeof(data), "%s",
					bdfs[rnd() % nbdf]) + 1;
			type = 1;
			break;
		case 1:		/* nested */
			if (depth < 3) {
				a = (struct nlattr *)(buf + *len);
				*len += NLA_HDRLEN;
				random_attrs(buf, len, max, depth + 1, bdfs,
					     nbdf);
				a->nla_type = type | (rnd() % 2 ? NLA_F_NESTED : 0);
				a->nla_len = *len - at;
				continue;
			}
			/* fall through */
		case 2:		/* u64 */
			dlen = 8;
			*(uint64_t *)data = rnd() % 3 ? rnd() >> (rnd() % 64) :
					    ~0ull;
			break;
		case 3:		/* u32 */
			dlen = 4;
			*(uint32_t *)data = rnd() % 5;
			break;
		case 4:		/* zero length */
			dlen = 0;
			break;
		default:	/* junk */
			dlen = rnd() % sizeof(data);
			for (int k = 0; k < dlen; k++)
				data[k] = rnd();
		}
		put_attr(buf, len, type, data, dlen);
		if (!(rnd() % 50))	/* lie about the length */
			((struct nlattr *)(buf + at))->nla_len += rnd() % 64;
	}
}

static void drain(int fd)
{
	char buf[BUF];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* A fixture for its timeout: 100k messages take minutes on a debug kernel */
FIXTURE(fuzz) {};
FIXTURE_SETUP(fuzz) {}
FIXTURE_TEARDOWN(fuzz) {}

TEST_F_TIMEOUT(fuzz, fuzz_100k_messages, 900)
{
	const char *env_seed = getenv("VMIG_FUZZ_SEED");
	const char *env_count = getenv("VMIG_FUZZ_COUNT");
	long count = env_count ? atol(env_count) : 100000;
	static struct cmd_result r;
	char bdfs[2 + TB_NR_VF + 1][32];
	struct tb_devs t;
	int fd, fam, nbdf = 0, i;
	char *buf;

	ASSERT_EQ(0, tb_devices(&t));
	for (i = 0; i < t.nr_edu; i++) {
		ASSERT_EQ(0, vmm_bind(t.edu[i], TB_DRIVER));
		strcpy(bdfs[nbdf++], t.edu[i]);
	}
	for (i = 0; i < t.nr_vf; i++) {
		ASSERT_EQ(0, vmm_bind(t.vf[i], TB_DRIVER));
		strcpy(bdfs[nbdf++], t.vf[i]);
	}
	strcpy(bdfs[nbdf++], "0000:00:1f.7");
	rng = env_seed ? strtoull(env_seed, NULL, 0) :
		(uint64_t)time(NULL) * 2654435761u + getpid();
	if (!rng)
		rng = 1;
	TH_LOG("seed 0x%llx, %ld messages", (unsigned long long)rng, count);

	fd = nl_socket();
	ASSERT_GE(fd, 0);
	fam = family_id(fd);
	ASSERT_GT(fam, 0);
	buf = malloc(BUF);
	ASSERT_NE(NULL, buf);
	for (long m = 0; m < count; m++) {
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		struct genlmsghdr *g = NLMSG_DATA(h);
		size_t len = NLMSG_HDRLEN + GENL_HDRLEN;

		memset(buf, 0, NLMSG_HDRLEN + GENL_HDRLEN);
		g->cmd = rnd() % 13;
		g->version = rnd() % 8 ? 1 : rnd();
		g->reserved = rnd() % 16 ? 0 : rnd();
		random_attrs(buf, &len, BUF, 0, bdfs, nbdf);
		h->nlmsg_len = len;
		if (!(rnd() % 40))	/* truncated or overlong header */
			h->nlmsg_len = rnd() % (len + 16);
		h->nlmsg_type = fam;
		h->nlmsg_flags = NLM_F_REQUEST | (rnd() % 3 ? 0 : NLM_F_DUMP) |
				 (rnd() % 2 ? NLM_F_ACK : 0);
		h->nlmsg_seq = m;
		send(fd, buf, len, MSG_DONTWAIT);
		drain(fd);
	}
	drain(fd);
	free(buf);
	close(fd);

	/* Put the devices back as they were, then ask the family again. */
	for (i = 0; i < nbdf - 1; i++) {
		CMD(&r, "migctl", "dirty", "stop", bdfs[i]);
		ASSERT_EQ(0, CMD(&r, "migctl", "dev", "set", bdfs[i], "trap",
				 "none", "dirty-page-size", "4096"));
		EXPECT_EQ(0, r.status) TH_LOG("%s: %s", bdfs[i], r.err);
	}
	for (i = 0; i < t.nr_edu; i++)
		CMD(&r, "migctl", "dev", "set", t.edu[i], "profile", "edu");
	for (i = 0; i < t.nr_vf; i++)
		CMD(&r, "migctl", "dev", "set", t.vf[i], "profile", "generic");
	ASSERT_EQ(0, CMD(&r, "migctl", "-j", "dev", "show"));
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	for (i = 0; i < nbdf - 1; i++)
		EXPECT_EQ(1, json_count(r.out, "dev", bdfs[i])) TH_LOG("%s", bdfs[i]);
}

TEST_HARNESS_MAIN
