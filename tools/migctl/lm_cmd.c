// SPDX-License-Identifier: GPL-2.0
/*
 * `migctl migrate` and `migctl listen`: options, sockets, signals and the
 * progress output; the protocol is in lm_src.c and lm_dst.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <linux/vfio_mig.h>

#include "lm.h"
#include "migctl.h"

uint64_t lm_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

const char *lm_state_name(uint32_t s)
{
	static const char *const n[] = {
		"error", "stop", "running", "stop-copy", "resuming",
		"running-p2p", "pre-copy", "pre-copy-p2p",
	};

	return s < sizeof(n) / sizeof(n[0]) ? n[s] : "unknown";
}

const char *lm_phase_name(uint32_t p)
{
	static const char *const n[] = {
		[VFIO_MIG_MIG_PHASE_BEGIN] = "begin",
		[VFIO_MIG_MIG_PHASE_PAUSE] = "pause",
		[VFIO_MIG_MIG_PHASE_ABORT] = "abort",
		[VFIO_MIG_MIG_PHASE_COMMIT] = "commit",
		[VFIO_MIG_MIG_PHASE_PREPARE] = "prepare",
		[VFIO_MIG_MIG_PHASE_START] = "start",
	};

	return p < sizeof(n) / sizeof(n[0]) && n[p] ? n[p] : "unknown";
}

void lm_ev_begin(struct lm_out *o, const char *event)
{
	json_begin_object(o->js, NULL);
	json_str(o->js, "event", event);
	json_str(o->js, "role", o->role);
}

void lm_ev_end(struct lm_out *o)
{
	json_end_object(o->js);
	json_flush(o->js);
}

void lm_ev_double(struct lm_out *o, const char *key, double v)
{
	char buf[32];

	if (!o->js->enabled)
		return;
	/* a number: the writer's string form would quote it */
	snprintf(buf, sizeof(buf), "%.1f", v);
	json_raw(o->js, key, buf);
}

int lm_parse_rate(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long n;

	if (!*s || *s == '-')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 0:
		break;
	case 'K': case 'k':
		n <<= 10;
		end++;
		break;
	case 'M': case 'm':
		n <<= 20;
		end++;
		break;
	case 'G': case 'g':
		n <<= 30;
		end++;
		break;
	default:
		return -1;
	}
	if (*end || !n)
		return -1;
	*v = n;
	return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */

	stop = 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int parse_u32(const char *s, uint32_t *v, uint32_t min)
{
	uint64_t x;

	if (migctl_parse_u64(s, &x) || x > UINT32_MAX || x < min)
		return -1;
	*v = x;
	return 0;
}

enum {
	O_TO = 256, O_TARGET_DEV, O_DOWNTIME, O_MAX_ROUNDS, O_BANDWIDTH,
	O_ON_MAX, O_TIMEOUT, O_VMM_TIMEOUT, O_PORT, O_ADDRESS, O_ONCE,
};

static void defaults(struct lm_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->port = WIRE_PORT;
	o->downtime_ms = 300;
	o->max_rounds = 30;
	o->timeout_ms = 10000;
	o->vmm_timeout_ms = 10000;
	o->address = "0.0.0.0";
}

/* Connect within the timeout. The fd, or -1 (printed). */
static int dial(const struct lm_opts *o)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM }, *res, *ai;
	char port[8];
	int fd = -1, ret, err = 0;
	socklen_t len = sizeof(err);
	struct pollfd p;

	snprintf(port, sizeof(port), "%u", o->port);
	ret = getaddrinfo(o->host, port, &hints, &res);
	if (ret) {
		migctl_fail("migrate: cannot resolve '%s': %s", o->host,
			    gai_strerror(ret));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
			    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		err = errno;
		if (err == EINPROGRESS) {
			p.fd = fd;
			p.events = POLLOUT;
			ret = poll(&p, 1, o->timeout_ms);
			if (ret == 1 && !getsockopt(fd, SOL_SOCKET, SO_ERROR,
						    &err, &len) && !err)
				break;
			if (!ret)
				err = ETIMEDOUT;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		migctl_fail("migrate: cannot connect to %s:%u: %s%s", o->host,
			    o->port, strerror(err),
			    err == ECONNREFUSED ? " (is 'migctl listen' running there?)" : "");
	return fd;
}

int migctl_migrate(struct json_out *js, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, O_TO },
		{ "target-dev", required_argument, NULL, O_TARGET_DEV },
		{ "downtime-ms", required_argument, NULL, O_DOWNTIME },
		{ "max-rounds", required_argument, NULL, O_MAX_ROUNDS },
		{ "bandwidth", required_argument, NULL, O_BANDWIDTH },
		{ "on-max-rounds", required_argument, NULL, O_ON_MAX },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "vmm-timeout-ms", required_argument, NULL, O_VMM_TIMEOUT },
		{}
	};
	struct lm_out out = { .js = js, .role = "source", .text = stdout };
	static char host[256];
	struct lm_opts o;
	struct lm_dev d;
	int c, fd, code;
	char *colon;

	defaults(&o);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_TO:
			snprintf(host, sizeof(host), "%s", optarg);
			colon = strrchr(host, ':');
			if (colon && !strchr(colon + 1, ']') && strchr(host, ':') == colon) {
				uint32_t port;

				*colon = 0;
				if (parse_u32(colon + 1, &port, 1) || port > 65535)
					return migctl_usage_err("migrate: bad port in --to '%s'",
								optarg);
				o.port = port;
			}
			if (!host[0])
				return migctl_usage_err("migrate: --to needs a host");
			o.host = host;
			break;
		case O_TARGET_DEV:
			o.target_dev = optarg;
			break;
		case O_DOWNTIME:
			if (parse_u32(optarg, &o.downtime_ms, 1))
				return migctl_usage_err("migrate: bad --downtime-ms '%s'", optarg);
			break;
		case O_MAX_ROUNDS:
			if (parse_u32(optarg, &o.max_rounds, 1))
				return migctl_usage_err("migrate: bad --max-rounds '%s' (at least 1)",
							optarg);
			break;
		case O_BANDWIDTH:
			if (lm_parse_rate(optarg, &o.bandwidth))
				return migctl_usage_err("migrate: bad --bandwidth '%s' (bytes/s, suffix K, M or G)",
							optarg);
			break;
		case O_ON_MAX:
			if (!strcmp(optarg, "abort"))
				o.force_switchover = false;
			else if (!strcmp(optarg, "switchover"))
				o.force_switchover = true;
			else
				return migctl_usage_err("migrate: --on-max-rounds takes abort or switchover");
			break;
		case O_TIMEOUT:
			if (parse_u32(optarg, &o.timeout_ms, 100))
				return migctl_usage_err("migrate: bad --timeout-ms '%s' (at least 100)",
							optarg);
			break;
		case O_VMM_TIMEOUT:
			if (parse_u32(optarg, &o.vmm_timeout_ms, 100))
				return migctl_usage_err("migrate: bad --vmm-timeout-ms '%s' (at least 100)",
							optarg);
			break;
		default:
			return migctl_usage_err("migrate: unknown option '%s'",
						argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return migctl_usage_err("migrate: expected one source BDF");
	o.dev = argv[optind];
	if (!migctl_valid_bdf(o.dev))
		return migctl_usage_err("'%s' is not a PCI address (DDDD:BB:DD.F)",
					o.dev);
	if (!o.host)
		return migctl_usage_err("migrate: --to HOST[:PORT] is required");
	if (!o.target_dev)
		return migctl_usage_err("migrate: --target-dev BDF is required");
	if (!migctl_valid_bdf(o.target_dev))
		return migctl_usage_err("'%s' is not a PCI address (DDDD:BB:DD.F)",
					o.target_dev);
	js->pretty = false;	/* events: one object per line */
	signals();
	if (lm_kernel_open(&d, &stop))
		return 1;
	fd = dial(&o);
	if (fd < 0) {
		lm_kernel_close(&d);
		return 1;
	}
	lm_ev_begin(&out, "connected");
	{
		char peer[300];

		snprintf(peer, sizeof(peer), "%s:%u", o.host, o.port);
		json_str(js, "peer", peer);
	}
	lm_ev_end(&out);
	code = lm_source_run(&o, &d, fd, &out, &stop);
	lm_kernel_close(&d);
	return code;
}

int migctl_listen(struct json_out *js, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "address", required_argument, NULL, O_ADDRESS },
		{ "once", no_argument, NULL, O_ONCE },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "vmm-timeout-ms", required_argument, NULL, O_VMM_TIMEOUT },
		{}
	};
	struct lm_out out = { .js = js, .role = "target", .text = stdout };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in peer;
	socklen_t plen;
	struct lm_opts o;
	int c, lfd, fd, one = 1, code = 0;
	uint32_t port;

	defaults(&o);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_PORT:
			if (parse_u32(optarg, &port, 1) || port > 65535)
				return migctl_usage_err("listen: bad --port '%s'", optarg);
			o.port = port;
			break;
		case O_ADDRESS:
			o.address = optarg;
			break;
		case O_ONCE:
			o.once = true;
			break;
		case O_TIMEOUT:
			if (parse_u32(optarg, &o.timeout_ms, 100))
				return migctl_usage_err("listen: bad --timeout-ms '%s' (at least 100)",
							optarg);
			break;
		case O_VMM_TIMEOUT:
			if (parse_u32(optarg, &o.vmm_timeout_ms, 100))
				return migctl_usage_err("listen: bad --vmm-timeout-ms '%s' (at least 100)",
							optarg);
			break;
		default:
			return migctl_usage_err("listen: unknown option '%s'",
						argv[optind - 1]);
		}
	}
	if (optind != argc)
		return migctl_usage_err("listen: unexpected argument '%s'",
					argv[optind]);
	if (inet_pton(AF_INET, o.address, &sin.sin_addr) != 1)
		return migctl_usage_err("listen: --address '%s' is not an IPv4 address",
					o.address);
	sin.sin_port = htons(o.port);
	js->pretty = false;
	signals();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return migctl_fail("listen: socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 4)) {
		code = migctl_fail("listen: %s:%u: %s", o.address, o.port,
				   strerror(errno));
		close(lfd);
		return code;
	}
	lm_ev_begin(&out, "listening");
	json_str(js, "address", o.address);
	json_u64(js, "port", o.port);
	lm_ev_end(&out);
	if (!js->enabled)
		printf("listening on %s:%u\n", o.address, o.port);
	fflush(stdout);
	while (!stop) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		struct lm_dev d;
		char who[64];

		if (poll(&p, 1, 200) <= 0)
			continue;
		plen = sizeof(peer);
		fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		snprintf(who, sizeof(who), "%s:%u", inet_ntoa(peer.sin_addr),
			 ntohs(peer.sin_port));
		lm_ev_begin(&out, "connected");
		json_str(js, "peer", who);
		lm_ev_end(&out);
		if (!js->enabled)
			printf("connection from %s\n", who);
		if (lm_kernel_open(&d, &stop)) {
			close(fd);
			code = 1;
		} else {
			code = lm_target_run(&o, &d, fd, &out, &stop);
			lm_kernel_close(&d);
		}
		/* --once, or interrupted during a migration: its status */
		if (o.once || stop)
			break;
		code = 0;
	}
	close(lfd);
	return code;
}
