// SPDX-License-Identifier: GPL-2.0
/* Unit tests for migctl's pure logic: addresses, JSON output, usage. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "../migctl.h"

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

static int run(const char *a0, const char *a1, const char *a2, const char *a3)
{
	char *argv[] = { (char *)a0, (char *)a1, (char *)a2, (char *)a3, NULL };
	int argc = 0;
	FILE *saved = stderr;
	int ret;

	while (argv[argc])
		argc++;
	stderr = fopen("/dev/null", "w");
	ret = migctl_main(argc, argv);
	fclose(stderr);
	stderr = saved;
	return ret;
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

static int runv(const char *const *args)
{
	FILE *saved = stderr;
	char *argv[16];
	int argc = 0, ret;

	/* getopt permutes argv: a writable copy, as main() gets */
	while (args[argc] && argc < 15) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;
	stderr = fopen("/dev/null", "w");
	ret = migctl_main(argc, argv);
	fclose(stderr);
	stderr = saved;
	return ret;
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
	EXPECT_EQ(0, run("migctl", "migrate", "--help", NULL));
	EXPECT_EQ(0, run("migctl", "listen", "--help", NULL));
	EXPECT_EQ(2, run("migctl", "nope", "--help", NULL));
	fclose(stdout);
	stdout = saved;
}

TEST_HARNESS_MAIN
