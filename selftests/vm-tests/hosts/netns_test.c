// SPDX-License-Identifier: GPL-2.0
/*
 * "Two hosts in one guest" (selftests/vm/netns.sh): network namespaces
 * hosta (10.99.0.1/24) and hostb (10.99.0.2/24) joined by a veth pair,
 * loopback up in both. TCP between them in both directions, each one's
 * loopback, isolation from the guest's own namespace, tcp_bench over the
 * veth pair (its figure is logged), and a clean guest after tear-down.
 *
 * Sockets are made inside a namespace by a short-lived thread that
 * setns()es there: a socket stays in the namespace it was created in, so
 * the test itself never leaves the guest's namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "cmd.h"
#include "hosts.h"

#define NETNS_SH	"/bin/netns.sh"
/* iproute2's, put there by mkinitramfs.sh (busybox's ip has no netns). */
#define IP		"/usr/sbin/ip"
#define SERVER_LOG	"/tmp/netns_test-server.log"

static struct cmd_result res;

struct ns_call {
	const char *ns;
	int (*fn)(void *arg);
	void *arg;
	int ret;
};

static void *ns_thread(void *p)
{
	struct ns_call *c = p;
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", c->ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		c->ret = -errno;
		return NULL;
	}
	if (setns(fd, CLONE_NEWNET)) {
		c->ret = -errno;
		close(fd);
		return NULL;
	}
	close(fd);
	c->ret = c->fn(c->arg);
	return NULL;
}

/* Run fn(arg) in a thread inside network namespace @ns; its result. */
static int in_ns(const char *ns, int (*fn)(void *), void *arg)
{
	struct ns_call c = { .ns = ns, .fn = fn, .arg = arg };
	pthread_t t;
	int ret;

	ret = pthread_create(&t, NULL, ns_thread, &c);
	if (ret)
		return -ret;
	pthread_join(t, NULL);
	return c.ret;
}

static int new_tcp_socket(void *arg)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)arg;
	return fd < 0 ? -errno : fd;
}

/* A TCP socket that lives in namespace @ns (or -errno). */
static int ns_socket(const char *ns)
{
	return in_ns(ns, new_tcp_socket, NULL);
}

struct ns_listen_arg {
	const char *ip;
	unsigned short port;
};

static int ns_listen_fn(void *p)
{
	struct ns_listen_arg *a = p;

	return tcp_listen_on(a->ip, a->port);
}

struct iface_check {
	const char *ifname;	/* the veth end */
	const char *ip;		/* its address */
	int found_ip, veth_up, lo_up, lo_ip;
};

static int iface_fn(void *p)
{
	struct iface_check *c = p;
	struct ifaddrs *ifa, *i;
	char ip[INET_ADDRSTRLEN];

	if (getifaddrs(&ifa))
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		bool v4 = i->ifa_addr && i->ifa_addr->sa_family == AF_INET;

		if (v4)
			inet_ntop(AF_INET,
				  &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
				  ip, sizeof(ip));
		if (!strcmp(i->ifa_name, c->ifname)) {
			c->veth_up |= !!(i->ifa_flags & IFF_UP);
			c->found_ip |= v4 && !strcmp(ip, c->ip);
		} else if (!strcmp(i->ifa_name, "lo")) {
			c->lo_up |= !!(i->ifa_flags & IFF_UP);
			c->lo_ip |= v4 && !strcmp(ip, "127.0.0.1");
		}
	}
	freeifaddrs(ifa);
	return 0;
}

struct server {
	pthread_t t;
	int lfd;
	unsigned int seed;
	char peer[INET_ADDRSTRLEN];
	int ret;
};

static void *server_thread(void *p)
{
	struct server *s = p;

	s->ret = echo_serve(s->lfd, s->seed, 10, s->peer);
	return NULL;
}

FIXTURE(hosts) {
	int unused;
};

FIXTURE_SETUP(hosts)
{
	ASSERT_EQ(0, CMD(&res, NETNS_SH, "up"));
	ASSERT_EQ(0, res.status) TH_LOG("netns.sh up: %s%s", res.out, res.err);
}

FIXTURE_TEARDOWN(hosts)
{
	EXPECT_EQ(0, CMD(&res, NETNS_SH, "down"));
	EXPECT_EQ(0, res.status) TH_LOG("netns.sh down: %s%s", res.out,
					res.err);
}

TEST_F(hosts, addresses_and_loopback)
{
	struct iface_check a = { .ifname = "veth-a", .ip = "10.99.0.1" };
	struct iface_check b = { .ifname = "veth-b", .ip = "10.99.0.2" };
	struct iface_check *c[] = { &a, &b };
	const char *ns[] = { "hosta", "hostb" };
	int i;

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, in_ns(ns[i], iface_fn, c[i]));
		EXPECT_TRUE(c[i]->found_ip) TH_LOG("%s: no %s on %s", ns[i],
						   c[i]->ip, c[i]->ifname);
		EXPECT_TRUE(c[i]->veth_up) TH_LOG("%s: %s down", ns[i],
						  c[i]->ifname);
		EXPECT_TRUE(c[i]->lo_up) TH_LOG("%s: lo down", ns[i]);
		EXPECT_TRUE(c[i]->lo_ip) TH_LOG("%s: lo has no 127.0.0.1",
						ns[i]);
	}
}

/*
 * An echo of ECHO_LEN pattern bytes from a client in @cns to a server in
 * @sns listening on @sip; the server must see @cip as its peer.
 */
static void echo_between(struct __test_metadata *_metadata, const char *cns,
			 const char *cip, const char *sns, const char *sip,
			 unsigned short port, unsigned int seed)
{
	struct ns_listen_arg la = { .ip = sip, .port = port };
	struct server s = { .seed = seed };
	int cfd, ret;

	s.lfd = in_ns(sns, ns_listen_fn, &la);
	ASSERT_LE(0, s.lfd) TH_LOG("listen in %s on %s:%u: %s", sns, sip,
				   port, strerror(-s.lfd));
	ASSERT_EQ(0, pthread_create(&s.t, NULL, server_thread, &s));
	cfd = ns_socket(cns);
	ASSERT_LE(0, cfd) TH_LOG("socket in %s: %s", cns, strerror(-cfd));
	ret = tcp_connect_fd(cfd, sip, port);
	EXPECT_EQ(0, ret) TH_LOG("connect from %s to %s:%u: %s", cns, sip,
				 port, strerror(-ret));
	if (!ret) {
		ret = echo_client(cfd, seed);
		EXPECT_EQ(0, ret) TH_LOG("echo: %s", strerror(-ret));
	}
	close(cfd);
	pthread_join(s.t, NULL);
	close(s.lfd);
	EXPECT_EQ(0, s.ret) TH_LOG("server in %s: %s", sns, strerror(-s.ret));
	EXPECT_STREQ(cip, s.peer);
}

TEST_F(hosts, tcp_echo_a_to_b)
{
	echo_between(_metadata, "hosta", "10.99.0.1", "hostb", "10.99.0.2",
		     7001, 1);
}

TEST_F(hosts, tcp_echo_b_to_a)
{
	echo_between(_metadata, "hostb", "10.99.0.2", "hosta", "10.99.0.1",
		     7001, 2);
}

TEST_F(hosts, tcp_echo_loopback_each)
{
	echo_between(_metadata, "hosta", "127.0.0.1", "hosta", "127.0.0.1",
		     7002, 3);
	echo_between(_metadata, "hostb", "127.0.0.1", "hostb", "127.0.0.1",
		     7002, 4);
}

/* The guest's own namespace sees neither the veth pair nor its subnet. */
TEST_F(hosts, isolated_from_guest_namespace)
{
	struct ns_listen_arg la = { .ip = "10.99.0.2", .port = 7004 };
	struct stat st;
	int lfd, fd, ret;

	EXPECT_NE(0, stat("/sys/class/net/veth-a", &st));
	EXPECT_NE(0, stat("/sys/class/net/veth-b", &st));
	lfd = in_ns("hostb", ns_listen_fn, &la);
	ASSERT_LE(0, lfd);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, fd);
	ret = tcp_connect_fd(fd, "10.99.0.2", 7004);
	EXPECT_EQ(-ENETUNREACH, ret) TH_LOG("connect: %s", strerror(-ret));
	close(fd);
	close(lfd);
}

/*
 * tcp_bench over the veth pair, each side under 'ip netns exec' (which
 * this exercises too); the figure is logged for the record.
 */
TEST_F_TIMEOUT(hosts, tcp_bench_over_veth, 120)
{
	char *bench = tcp_bench_path();
	int status;
	double mib;
	pid_t srv;

	ASSERT_EQ(0, access(bench, X_OK)) TH_LOG("%s: %s", bench,
						 strerror(errno));
	srv = spawn_logged((char *[]){ IP, "netns", "exec", "hostb", bench,
				       "server", "7003", NULL }, SERVER_LOG);
	ASSERT_LT(0, srv);
	EXPECT_EQ(0, CMD(&res, IP, "netns", "exec", "hosta", bench, "client",
			 "10.99.0.2", "7003", "2"));
	EXPECT_EQ(0, res.status) TH_LOG("client: %s%s", res.out, res.err);
	mib = tcp_mib_per_s(res.out);
	EXPECT_LT(0, mib) TH_LOG("client printed: %s", res.out);
	status = wait_or_kill(srv, 10);
	EXPECT_EQ(0, status) TH_LOG("server: %s",
				    read_log(SERVER_LOG, res.out,
					     sizeof(res.out)));
	unlink(SERVER_LOG);
	TH_LOG("tcp_mib_per_s over veth (hosta -> hostb): %.1f", mib);
}

static bool netns_listed(const char *name)
{
	if (CMD(&res, IP, "netns", "list") || res.status)
		return true;	/* cannot tell: count as left behind */
	return strstr(res.out, name) != NULL;
}

/* up twice (idempotent), down twice; nothing left behind. */
TEST(teardown_leaves_guest_clean)
{
	struct stat st;

	ASSERT_EQ(0, CMD(&res, NETNS_SH, "up"));
	ASSERT_EQ(0, res.status) TH_LOG("up: %s%s", res.out, res.err);
	ASSERT_EQ(0, CMD(&res, NETNS_SH, "up"));
	EXPECT_EQ(0, res.status) TH_LOG("up again: %s%s", res.out, res.err);
	EXPECT_TRUE(netns_listed("hosta"));
	EXPECT_TRUE(netns_listed("hostb"));
	ASSERT_EQ(0, CMD(&res, NETNS_SH, "down"));
	EXPECT_EQ(0, res.status) TH_LOG("down: %s%s", res.out, res.err);
	ASSERT_EQ(0, CMD(&res, NETNS_SH, "down"));
	EXPECT_EQ(0, res.status) TH_LOG("down again: %s%s", res.out, res.err);
	EXPECT_FALSE(netns_listed("hosta"));
	EXPECT_FALSE(netns_listed("hostb"));
	EXPECT_NE(0, stat("/run/netns/hosta", &st));
	EXPECT_NE(0, stat("/run/netns/hostb", &st));
	EXPECT_NE(0, stat("/sys/class/net/veth-a", &st));
	EXPECT_NE(0, stat("/sys/class/net/veth-b", &st));
}

TEST_HARNESS_MAIN
