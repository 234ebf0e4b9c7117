// SPDX-License-Identifier: GPL-2.0
/*
 * Two guests on one network (selftests/vm/run-pair.sh): guest a
 * (vmig.host=a, eth0 10.98.0.1/24) serves, guest b (10.98.0.2/24) is the
 * client: a TCP echo with a known pattern, then tcp_bench from b to a (its
 * figure is logged on b). Both guests run this same binary, each its own
 * side; the waits are long, as the guests boot and reach this test at
 * different times. Skipped outside a pair (no vmig.host=).
 */
#define _GNU_SOURCE
#include <ifaddrs.h>
#include <net/if.h>

#include "kselftest_harness.h"
#include "cmd.h"
#include "hosts.h"

#define A_IP		"10.98.0.1"
#define B_IP		"10.98.0.2"
#define ECHO_PORT	5201
#define BENCH_PORT	"5202"
#define WAIT_S		300
#define BENCH_S		"3"
#define SERVER_LOG	"/tmp/pair_test-server.log"

static struct cmd_result res;

/* 'a' or 'b' from vmig.host= on the kernel command line, 0 if none. */
static char pair_host(void)
{
	char line[4096], *p;
	FILE *f = fopen("/proc/cmdline", "r");

	if (!f)
		return 0;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	for (p = p ? strtok(line, " \n") : NULL; p; p = strtok(NULL, " \n"))
		if (!strncmp(p, "vmig.host=", 10) &&
		    (p[10] == 'a' || p[10] == 'b') && !p[11])
			return p[10];
	return 0;
}

FIXTURE(pair) {
	char host;
};

FIXTURE_SETUP(pair)
{
	self->host = pair_host();
	if (!self->host)
		SKIP(return,
		     "not a guest of a pair (no vmig.host=; selftests/vm/run-pair.sh)");
}

FIXTURE_TEARDOWN(pair)
{
}

TEST_F(pair, eth0_configured)
{
	const char *want = self->host == 'a' ? A_IP : B_IP;
	char ip[INET_ADDRSTRLEN];
	struct ifaddrs *ifa, *i;
	bool found = false, up = false;

	ASSERT_EQ(0, getifaddrs(&ifa));
	for (i = ifa; i; i = i->ifa_next) {
		if (strcmp(i->ifa_name, "eth0"))
			continue;
		up |= (i->ifa_flags & (IFF_UP | IFF_RUNNING)) ==
		      (IFF_UP | IFF_RUNNING);
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		inet_ntop(AF_INET,
			  &((struct sockaddr_in *)i->ifa_addr)->sin_addr, ip,
			  sizeof(ip));
		found |= !strcmp(ip, want);
	}
	freeifaddrs(ifa);
	EXPECT_TRUE(found) TH_LOG("eth0 has no %s", want);
	EXPECT_TRUE(up) TH_LOG("eth0 is not up and running");
}

/* b connects (retrying until a listens), sends the pattern, a echoes it. */
TEST_F_TIMEOUT(pair, tcp_echo_b_to_a, WAIT_S + 60)
{
	double deadline = mono_s() + WAIT_S;
	char peer[INET_ADDRSTRLEN] = "";
	int fd, ret;

	if (self->host == 'a') {
		fd = tcp_listen_on(A_IP, ECHO_PORT);
		ASSERT_LE(0, fd) TH_LOG("listen: %s", strerror(-fd));
		ret = echo_serve(fd, 0x5a, WAIT_S, peer);
		close(fd);
		EXPECT_EQ(0, ret) TH_LOG("echo server: %s", strerror(-ret));
		EXPECT_STREQ(B_IP, peer);
		return;
	}
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, fd);
		ret = tcp_connect_fd(fd, A_IP, ECHO_PORT);
		if (!ret || mono_s() > deadline)
			break;
		close(fd);
		usleep(200000);
	}
	ASSERT_EQ(0, ret) TH_LOG("connect to %s:%d: %s", A_IP, ECHO_PORT,
				 strerror(-ret));
	ret = echo_client(fd, 0x5a);
	close(fd);
	EXPECT_EQ(0, ret) TH_LOG("echo: %s", strerror(-ret));
}

/* tcp_bench server on a, client on b; b logs the throughput. */
TEST_F_TIMEOUT(pair, tcp_bench_b_to_a, WAIT_S + 60)
{
	char *bench = tcp_bench_path();
	double deadline = mono_s() + WAIT_S, mib;
	int status;
	pid_t srv;

	ASSERT_EQ(0, access(bench, X_OK)) TH_LOG("%s: %s", bench,
						 strerror(errno));
	if (self->host == 'a') {
		srv = spawn_logged((char *[]){ bench, "server", BENCH_PORT,
					       NULL }, SERVER_LOG);
		ASSERT_LT(0, srv);
		status = wait_or_kill(srv, WAIT_S);
		EXPECT_EQ(0, status) TH_LOG("server: %s",
					    read_log(SERVER_LOG, res.out,
						     sizeof(res.out)));
		unlink(SERVER_LOG);
		return;
	}
	/* The client retries for 60 s itself; a may be later than that. */
	do {
		ASSERT_EQ(0, CMD(&res, bench, "client", A_IP, BENCH_PORT,
				 BENCH_S));
	} while (res.status && strstr(res.err, "connect") &&
		 mono_s() < deadline);
	EXPECT_EQ(0, res.status) TH_LOG("client: %s%s", res.out, res.err);
	mib = tcp_mib_per_s(res.out);
	EXPECT_LT(0, mib) TH_LOG("client printed: %s", res.out);
	TH_LOG("tcp_mib_per_s across the guests (b -> a): %.1f", mib);
}

TEST_HARNESS_MAIN
