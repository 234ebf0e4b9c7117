// SPDX-License-Identifier: GPL-2.0
/* Unit tests for migctl's pure logic: addresses, JSON output, usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "../migctl.h"
#include "../nl.h"

TEST(bdf_accepts_sysfs_names)
{
	EXPECT_TRUE(migctl_valid_bdf("0000:00:03.0"));
	EXPECT_TRUE(migctl_valid_bdf("abcd:ff:1f.7"));
	EXPECT_TRUE(migctl_valid_bdf("0000:3B:00.1"));
}

TEST(bdf_rejects_everything_else)
{
	static const char * const bad[] = {
		"", "00:03.0", "0000:00:03", "0000:00:03.8", "0000:00:20.0",
		"0000-00:03.0", "0000:00:03.0 ", "0000:00:03.00", "x000:00:03.0",
		"0000:0g:03.0", "../../../etc", "0000:00:03.0/../x",
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_FALSE(migctl_valid_bdf(bad[i])) TH_LOG("case %u", i);
}

static char *render(bool pretty, void (*fn)(struct json_out *))
{
	struct json_out j = { .enabled = true, .pretty = pretty };
	char *buf = NULL;
	size_t len = 0;

	j.out = open_memstream(&buf, &len);
	fn(&j);
	fclose(j.out);
	return buf;
}

static void doc(struct json_out *j)
{
	json_begin_array(j, NULL);
	json_begin_object(j, NULL);
	json_str(j, "dev", "0000:00:03.0");
	json_str(j, "esc", "a\"b\\c\nd\x01");
	json_u64(j, "n", 18446744073709551615ull);
	json_bool(j, "t", true);
	json_begin_array(j, "empty");
	json_end_array(j);
	json_end_object(j);
	json_begin_object(j, NULL);
	json_end_object(j);
	json_end_array(j);
}

TEST(json_compact)
{
	char *s = render(false, doc);

	EXPECT_STREQ("[{\"dev\":\"0000:00:03.0\",\"esc\":\"a\\\"b\\\\c\\nd\\u0001\","
		     "\"n\":18446744073709551615,\"t\":true,\"empty\":[]},{}]\n", s);
	free(s);
}

TEST(json_pretty)
{
	char *s = render(true, doc);

	EXPECT_NE(NULL, strstr(s, "[\n    {\n        \"dev\": \"0000:00:03.0\",\n"));
	EXPECT_NE(NULL, strstr(s, "\"empty\": []\n    },\n    {}\n]\n"));
	free(s);
}

TEST(json_disabled_writes_nothing)
{
	struct json_out j = { .enabled = false };
	char *buf = NULL;
	size_t len = 0;

	j.out = open_memstream(&buf, &len);
	doc(&j);
	fclose(j.out);
	EXPECT_EQ(0, len);
	free(buf);
}

/* migctl_main() on @args; what it writes to stderr in *@err, if asked. */
static int runv_err(const char *const *args, char **err)
{
	FILE *saved = stderr;
	char *argv[16];
	int argc = 0, ret;
	size_t len;

	/* getopt permutes argv: a writable copy, as main() gets */
	while (args[argc] && argc < 15) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;
	stderr = err ? open_memstream(err, &len) : fopen("/dev/null", "w");
	ret = migctl_main(argc, argv);
	fclose(stderr);
	stderr = saved;
	return ret;
}

static int runv(const char *const *args)
{
	return runv_err(args, NULL);
}

static int run(const char *a0, const char *a1, const char *a2, const char *a3)
{
	const char *const args[] = { a0, a1, a2, a3, NULL };

	return runv(args);
}

TEST(exit_codes_for_usage_errors)
{
	EXPECT_EQ(2, run("migctl", NULL, NULL, NULL));
	EXPECT_EQ(2, run("migctl", "frobnicate", NULL, NULL));
	EXPECT_EQ(2, run("migctl", "--bogus", NULL, NULL));
	EXPECT_EQ(2, run("migctl", "dev", "list", NULL));
	EXPECT_EQ(2, run("migctl", "bind", NULL, NULL));
	EXPECT_EQ(2, run("migctl", "dev", "show", "not-a-bdf"));
	EXPECT_EQ(2, run("migctl", "dev", "set", "0000:00:03.0"));
	EXPECT_EQ(2, run("migctl", "dev", "set", "bad"));
	EXPECT_EQ(2, run("migctl", "log", "0000:00:03.0", "--since"));
	EXPECT_EQ(2, run("migctl", "log", "nope", NULL));
	EXPECT_EQ(2, run("migctl", "dirty", NULL, NULL));
	EXPECT_EQ(2, run("migctl", "dirty", "stop", "x"));
	EXPECT_EQ(2, run("migctl", "monitor", "extra", NULL));
}

TEST(migrate_listen_usage_errors)
{
	static const char *const bad[][12] = {
		{ "migctl", "migrate", NULL },
		{ "migctl", "migrate", "0000:00:03.0", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--to", "h", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--target-dev",
		  "0000:00:05.0", NULL },
		{ "migctl", "migrate", "bad", "--to", "h", "--target-dev",
		  "0000:00:05.0", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--to", "h",
		  "--target-dev", "nope", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--to", "h:99999",
		  "--target-dev", "0000:00:05.0", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--to", "h:",
		  "--target-dev", "0000:00:05.0", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--to", "h",
		  "--target-dev", "0000:00:05.0", "--bandwidth", "fast", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--to", "h",
		  "--target-dev", "0000:00:05.0", "--max-rounds", "0", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--to", "h",
		  "--target-dev", "0000:00:05.0", "--on-max-rounds", "maybe",
		  NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--to", "h",
		  "--target-dev", "0000:00:05.0", "--timeout-ms", "5", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--to", "h",
		  "--target-dev", "0000:00:05.0", "--frobnicate", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "--to", "h",
		  "--target-dev", "0000:00:05.0", "--via-shadow=yes", NULL },
		{ "migctl", "listen", "--insecure", "--via-shadow", NULL },
		{ "migctl", "migrate", "0000:00:03.0", "0000:00:04.0", "--to",
		  "h", "--target-dev", "0000:00:05.0", NULL },
		{ "migctl", "listen", "extra", NULL },
		{ "migctl", "listen", "--port", "0", NULL },
		{ "migctl", "listen", "--port", "65536", NULL },
		{ "migctl", "listen", "--address", "not-an-ip", NULL },
		{ "migctl", "listen", "--once", "--bogus", NULL },
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_EQ(2, runv(bad[i])) TH_LOG("case %u", i);
}

TEST(help_per_command)
{
	FILE *saved = stdout;

	stdout = fopen("/dev/null", "w");
	EXPECT_EQ(0, run("migctl", "--help", NULL, NULL));
	EXPECT_EQ(0, run("migctl", "bind", "--help", NULL));
	EXPECT_EQ(0, run("migctl", "dev", "show", "--help"));
	EXPECT_EQ(0, run("migctl", "log", "--help", NULL));
	EXPECT_EQ(0, run("migctl", "dirty", "--help", NULL));
	EXPECT_EQ(0, run("migctl", "monitor", "--help", NULL));
	EXPECT_EQ(0, run("migctl", "shadow", "--help", NULL));
	EXPECT_EQ(0, run("migctl", "shadow", "engage", "--help"));
	EXPECT_EQ(0, run("migctl", "migrate", "--help", NULL));
	EXPECT_EQ(0, run("migctl", "listen", "--help", NULL));
	EXPECT_EQ(2, run("migctl", "nope", "--help", NULL));
	fclose(stdout);
	stdout = saved;
}

TEST(shadow_usage_errors)
{
	static const struct {
		const char *args[6];
		const char *err;
	} bad[] = {
		{ { "migctl", "shadow", "engage", NULL },
		  "migctl: shadow engage: expected one BDF\n" },
		{ { "migctl", "shadow", "release", NULL },
		  "migctl: shadow release: expected one BDF\n" },
		{ { "migctl", "shadow", "engage", "0000:00:05.0", "0000:00:06.0",
		    NULL }, "migctl: shadow engage: expected one BDF\n" },
		{ { "migctl", "shadow", "engage", "0000:00:05", NULL },
		  "migctl: '0000:00:05' is not a PCI address (DDDD:BB:DD.F)\n" },
		{ { "migctl", "-j", "shadow", "release", "../x", NULL },
		  "migctl: '../x' is not a PCI address (DDDD:BB:DD.F)\n" },
		{ { "migctl", "shadow", "show", "nope", NULL },
		  "migctl: 'nope' is not a PCI address (DDDD:BB:DD.F)\n" },
		{ { "migctl", "shadow", "show", "0000:00:05.0", "x", NULL },
		  "migctl: shadow show: too many arguments\n" },
		{ { "migctl", "shadow", "attach", "0000:00:05.0", NULL },
		  "migctl: shadow: unknown command 'attach' (engage, release, show)\n" },
		{ { "migctl", "shadow", "0000:00:05.0", NULL },
		  "migctl: shadow: unknown command '0000:00:05.0' (engage, release, show)\n" },
	};
	unsigned int i;
	char *err;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(2, runv_err(bad[i].args, &err)) TH_LOG("case %u", i);
		EXPECT_NE(NULL, strstr(err, bad[i].err)) TH_LOG("case %u: %s", i, err);
		EXPECT_NE(NULL, strstr(err, "Try 'migctl --help'.")) TH_LOG("case %u", i);
		free(err);
	}
}

/* A shadow-get reply as the kernel sends it. */
static struct nl_msg *shadow_reply(const char *bdf, const char *profile,
				   int avail, int engaged, uint64_t engage_ns,
				   uint64_t handback_ns)
{
	struct nl_msg *msg = nlmsg_alloc();

	genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, 0x20, 0, 0,
		    VFIO_MIG_CMD_SHADOW_GET, VFIO_MIG_FAMILY_VERSION);
	nla_put_string(msg, VFIO_MIG_A_SHADOW_BDF, bdf);
	nla_put_string(msg, VFIO_MIG_A_SHADOW_PROFILE, profile);
	nla_put_u8(msg, VFIO_MIG_A_SHADOW_AVAILABLE, avail);
	nla_put_u8(msg, VFIO_MIG_A_SHADOW_ENGAGED, engaged);
	nla_put(msg, 0, 0, NULL);	/* nla_put_u64_64bit()'s padding */
	nla_put_u64(msg, VFIO_MIG_A_SHADOW_READS, avail ? 120 : 0);
	nla_put_u64(msg, VFIO_MIG_A_SHADOW_WRITES, avail ? 88 : 0);
	nla_put_u64(msg, VFIO_MIG_A_SHADOW_DMAS, avail ? 30 : 0);
	nla_put_u64(msg, VFIO_MIG_A_SHADOW_IRQS, avail ? 4 : 0);
	nla_put_u64(msg, VFIO_MIG_A_SHADOW_ENGAGE_NS, engage_ns);
	nla_put_u64(msg, VFIO_MIG_A_SHADOW_HANDBACK_NS, handback_ns);
	return msg;
}

/* What migctl_show_shadow() prints for @msgs (freed), text or JSON. */
static char *show_shadow(bool json, struct nl_msg **msgs, int n, int *rets)
{
	struct json_out j = { .enabled = json };
	FILE *saved = stdout;
	char *buf = NULL;
	size_t len = 0;
	int i;

	stdout = j.out = open_memstream(&buf, &len);
	json_begin_array(&j, NULL);
	for (i = 0; i < n; i++) {
		rets[i] = migctl_show_shadow(msgs[i], &j);
		nlmsg_free(msgs[i]);
	}
	json_end_array(&j);
	fclose(stdout);
	stdout = saved;
	return buf;
}

TEST(shadow_show_text)
{
	struct nl_msg *m[] = {
		shadow_reply("0000:00:05.0", "edu", 1, 1, 812300, 1200000),
		shadow_reply("0000:00:06.0", "edu", 1, 0, 350, 999999),
		shadow_reply("0000:00:07.0", "generic", 0, 0, 0, 0),
		shadow_reply("0000:00:08.0", "nvme-vf", 1, 0, 2000000000, 0),
	};
	int rets[4];
	char *s = show_shadow(false, m, 4, rets);

	EXPECT_STREQ("0000:00:05.0: profile edu shadow available engaged reads 120 "
		     "writes 88 dmas 30 irqs 4 engage 812.3 us handback 1.2 ms\n"
		     "0000:00:06.0: profile edu shadow available released reads 120 "
		     "writes 88 dmas 30 irqs 4 engage 350 ns handback 1.0 ms\n"
		     "0000:00:07.0: profile generic shadow not available\n"
		     "0000:00:08.0: profile nvme-vf shadow available released reads 120 "
		     "writes 88 dmas 30 irqs 4 engage 2.0 s handback 0 ns\n", s);
	EXPECT_EQ(NL_OK, rets[0]);
	free(s);
}

TEST(shadow_show_json)
{
	struct nl_msg *m[] = {
		shadow_reply("0000:00:05.0", "edu", 1, 1, 812300, 1200000),
		shadow_reply("0000:00:07.0", "generic", 0, 0, 0, 0),
	};
	int rets[2];
	char *s = show_shadow(true, m, 2, rets);

	EXPECT_STREQ("[{\"dev\":\"0000:00:05.0\",\"profile\":\"edu\",\"available\":true,"
		     "\"engaged\":true,\"reads\":120,\"writes\":88,\"dmas\":30,"
		     "\"irqs\":4,\"engage_ns\":812300,\"handback_ns\":1200000},"
		     "{\"dev\":\"0000:00:07.0\",\"profile\":\"generic\","
		     "\"available\":false,\"engaged\":false,\"reads\":0,\"writes\":0,"
		     "\"dmas\":0,\"irqs\":0,\"engage_ns\":0,\"handback_ns\":0}]\n", s);
	free(s);
}

TEST(shadow_show_skips_malformed_reply)
{
	struct nl_msg *m[2];
	int rets[2];
	char *s;

	/* a counter of the wrong size, and a reply without a BDF */
	m[0] = nlmsg_alloc();
	genlmsg_put(m[0], NL_AUTO_PORT, NL_AUTO_SEQ, 0x20, 0, 0,
		    VFIO_MIG_CMD_SHADOW_GET, VFIO_MIG_FAMILY_VERSION);
	nla_put_string(m[0], VFIO_MIG_A_SHADOW_BDF, "0000:00:05.0");
	nla_put_u32(m[0], VFIO_MIG_A_SHADOW_READS, 1);
	m[1] = nlmsg_alloc();
	genlmsg_put(m[1], NL_AUTO_PORT, NL_AUTO_SEQ, 0x20, 0, 0,
		    VFIO_MIG_CMD_SHADOW_GET, VFIO_MIG_FAMILY_VERSION);
	nla_put_u8(m[1], VFIO_MIG_A_SHADOW_AVAILABLE, 1);
	s = show_shadow(false, m, 2, rets);
	EXPECT_STREQ("", s);
	EXPECT_EQ(NL_SKIP, rets[0]);
	EXPECT_EQ(NL_SKIP, rets[1]);
	free(s);
}

TEST(nl_fail_prints_extack)
{
	struct migctl_nl nl = {};
	FILE *saved = stderr;
	char *buf = NULL;
	size_t len = 0;

	snprintf(nl.extack, sizeof(nl.extack), "no shadow for profile generic");
	stderr = open_memstream(&buf, &len);
	EXPECT_EQ(1, migctl_nl_fail(&nl, "0000:00:05.0", -EOPNOTSUPP));
	fclose(stderr);
	stderr = saved;
	EXPECT_STREQ("migctl: 0000:00:05.0: Operation not supported: "
		     "no shadow for profile generic\n", buf);
	free(buf);
}

TEST_HARNESS_MAIN
