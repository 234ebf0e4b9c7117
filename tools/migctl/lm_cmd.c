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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <linux/vfio_mig.h>

#include "lm.h"
#include "migctl.h"

void lm_each(void *(*fn)(void *), void *items, size_t size, unsigned int n)
{
	pthread_t th[LM_DEVS_MAX];
	unsigned int i, started = 0;

	while (n > 1 && started < n && started < LM_DEVS_MAX &&
	       !pthread_create(&th[started], NULL, fn,
			       (char *)items + started * size))
		started++;
	for (i = started; i < n; i++)
		fn((char *)items + i * size);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
}

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
	if (o->conn)
		json_u64(o->js, "conn", o->conn);
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
	unsigned int shift = 0;
	unsigned long long n;
	char *end;

	/* a digit first: strtoull() would take spaces and a sign */
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 0:
		break;
	case 'K': case 'k':
		shift = 10;
		end++;
		break;
	case 'M': case 'm':
		shift = 20;
		end++;
		break;
	case 'G': case 'g':
		shift = 30;
		end++;
		break;
	default:
		return -1;
	}
	if (*end || !n || n > UINT64_MAX >> shift)
		return -1;
	n <<= shift;
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

/* A timeout option: 100 ms to LM_TIMEOUT_MAX. */
static int parse_timeout(const char *s, uint32_t *v)
{
	return parse_u32(s, v, 100) || *v > LM_TIMEOUT_MAX ? -1 : 0;
}

enum {
	O_TO = 256, O_TARGET_DEV, O_DOWNTIME, O_MAX_ROUNDS, O_BANDWIDTH,
	O_ON_MAX, O_TIMEOUT, O_VMM_TIMEOUT, O_PORT, O_ADDRESS, O_ONCE,
	O_TLS_CREDS, O_PSK_FILE, O_PSK_ID, O_TLS_NAME, O_INSECURE,
	O_ALLOW_PEER, O_ALLOW_DEV, O_TLS_CIPHER, O_VIA_SHADOW, O_COPY_PAGES,
};

/* Options both commands take, and what they lead to. */
struct sec_args {
	struct tls_opts t;
	bool insecure;
};

/* A security option? 1 taken, 0 not one, -1 bad (printed). */
static int sec_option(const char *cmd, int c, struct sec_args *a)
{
	switch (c) {
	case O_TLS_CREDS:
		a->t.creds_dir = optarg;
		return 1;
	case O_PSK_FILE:
		a->t.psk_file = optarg;
		return 1;
	case O_INSECURE:
		a->insecure = true;
		return 1;
	case O_TLS_CIPHER:
		a->t.cipher = optarg;
		return 1;
	default:
		(void)cmd;
		return 0;
	}
}

/*
 * Load the credentials the options name into o->tls, or say loudly that
 * there are none. 0, 1 (failed, printed) or 2 (usage, printed).
 */
static int sec_setup(const char *cmd, struct sec_args *a, struct lm_opts *o,
		     struct lm_out *out)
{
	char err[512];
	int n = !!a->t.creds_dir + !!a->t.psk_file + a->insecure;

	if (n > 1)
		return migctl_usage_err("%s: --tls-creds, --psk-file and --insecure exclude each other",
					cmd);
	if (!n)
		return migctl_usage_err("%s: no credentials: pass --tls-creds DIR (X.509) or --psk-file FILE,\n"
					"or --insecure for plain TCP on a link you trust entirely",
					cmd);
	if (a->insecure && a->t.cipher)
		return migctl_usage_err("%s: --tls-cipher needs TLS (not --insecure)",
					cmd);
	if (a->insecure) {
		fprintf(stderr,
			"migctl: %s: WARNING: --insecure: no authentication and no encryption.\n"
			"migctl: %s: WARNING: guest RAM and device state cross the network in clear text,\n"
			"migctl: %s: WARNING: and %s.\n", cmd, cmd, cmd,
			a->t.server ?
			"anyone who reaches this port can write into a VM that waits for a migration" :
			"whoever answers at the target address receives them");
		return 0;
	}
	if (a->t.cipher && strcmp(a->t.cipher, "aes-gcm") &&
	    strcmp(a->t.cipher, "chacha20"))
		return migctl_usage_err("%s: bad --tls-cipher '%s' (aes-gcm or chacha20)",
					cmd, a->t.cipher);
	if (a->t.psk_identity && !a->t.psk_file)
		return migctl_usage_err("%s: --psk-identity needs --psk-file", cmd);
	if (tls_ctx_new(&o->tls, &a->t, err, sizeof(err)))
		return migctl_fail("%s: credentials: %s", cmd, err);
	(void)out;
	return 0;
}

static void defaults(struct lm_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->port = WIRE_PORT;
	o->downtime_ms = 300;
	o->max_rounds = 30;
	o->timeout_ms = 10000;
	o->vmm_timeout_ms = 10000;
	o->address = "0.0.0.0";
	o->begun_fd = -1;
	/* a peer before wire 1.3, for tests (live-migration.rst) */
	o->check_sums = getenv("MIGCTL_TLS_CHECK_SUMS") != NULL;
}

/*
 * --to: HOST, HOST:PORT, an IPv6 address, or [IPv6]:PORT. 0 or -1.
 */
int lm_parse_to(const char *arg, char *host, size_t len, uint16_t *port)
{
	const char *p = NULL, *end;
	uint32_t v;

	if (arg[0] == '[') {
		end = strchr(arg, ']');
		if (!end || end == arg + 1 || (end[1] && end[1] != ':'))
			return -1;
		if ((size_t)(end - arg - 1) >= len)
			return -1;
		memcpy(host, arg + 1, end - arg - 1);
		host[end - arg - 1] = 0;
		if (end[1] == ':')
			p = end + 2;
	} else {
		end = strchr(arg, ':');
		if (end && strchr(end + 1, ':'))
			end = NULL;	/* a bare IPv6 address */
		else if (end)
			p = end + 1;
		if (!end)
			end = arg + strlen(arg);
		if (end == arg || (size_t)(end - arg) >= len)
			return -1;
		memcpy(host, arg, end - arg);
		host[end - arg] = 0;
	}
	if (p) {
		if (parse_u32(p, &v, 1) || v > 65535)
			return -1;
		*port = v;
	}
	return host[0] ? 0 : -1;
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

/*
 * BDF[,BDF...] (the devices of one VM) into @out, each checked and named
 * once. 0, or the usage error's exit code.
 */
static int bdf_list(const char *arg, char buf[][WIRE_STR], const char **out,
		    unsigned int *n)
{
	const char *p = arg, *e;
	unsigned int i, j;
	size_t l;

	for (i = 0; ; i++) {
		e = strchr(p, ',');
		l = e ? (size_t)(e - p) : strlen(p);
		if (i == LM_DEVS_MAX)
			return migctl_usage_err("'%s': one migration takes at most %u devices",
						arg, LM_DEVS_MAX);
		if (l >= WIRE_STR)
			return migctl_usage_err("'%.*s' is not a PCI address (DDDD:BB:DD.F)",
						(int)l, p);
		memcpy(buf[i], p, l);
		buf[i][l] = 0;
		if (!migctl_valid_bdf(buf[i]))
			return migctl_usage_err("'%s' is not a PCI address (DDDD:BB:DD.F)",
						buf[i]);
		for (j = 0; j < i; j++)
			if (!strcasecmp(buf[j], buf[i]))
				return migctl_usage_err("'%s' names %s twice",
							arg, buf[i]);
		out[i] = buf[i];
		if (!e)
			break;
		p = e + 1;
	}
	*n = i + 1;
	return 0;
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
		{ "tls-creds", required_argument, NULL, O_TLS_CREDS },
		{ "psk-file", required_argument, NULL, O_PSK_FILE },
		{ "psk-identity", required_argument, NULL, O_PSK_ID },
		{ "tls-name", required_argument, NULL, O_TLS_NAME },
		{ "insecure", no_argument, NULL, O_INSECURE },
		{ "tls-cipher", required_argument, NULL, O_TLS_CIPHER },
		{ "via-shadow", no_argument, NULL, O_VIA_SHADOW },
		{ "copy-pages", no_argument, NULL, O_COPY_PAGES },
		{}
	};
	struct lm_out out = { .js = js, .role = "source", .text = stdout };
	static char srcs[LM_DEVS_MAX][WIRE_STR], dsts[LM_DEVS_MAX][WIRE_STR];
	struct lm_dev d[LM_DEVS_MAX];
	struct sec_args sec = {};
	static char host[256];
	unsigned int i, n;
	struct lm_opts o;
	int c, fd, code;

	defaults(&o);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (sec_option("migrate", c, &sec))
			continue;
		switch (c) {
		case O_PSK_ID:
			sec.t.psk_identity = optarg;
			break;
		case O_TLS_NAME:
			o.tls_name = optarg;
			break;
		case O_TO:
			if (lm_parse_to(optarg, host, sizeof(host), &o.port))
				return migctl_usage_err("migrate: bad --to '%s' (HOST, HOST:PORT, IPv6 or [IPv6]:PORT)",
							optarg);
			o.host = host;
			break;
		case O_TARGET_DEV:
			o.target_dev = optarg;
			break;
		case O_VIA_SHADOW:
			o.via_shadow = true;
			break;
		case O_COPY_PAGES:
			o.copy_pages = true;
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
			if (parse_timeout(optarg, &o.timeout_ms))
				return migctl_usage_err("migrate: bad --timeout-ms '%s' (100 to %u)",
							optarg, LM_TIMEOUT_MAX);
			break;
		case O_VMM_TIMEOUT:
			if (parse_timeout(optarg, &o.vmm_timeout_ms))
				return migctl_usage_err("migrate: bad --vmm-timeout-ms '%s' (100 to %u)",
							optarg, LM_TIMEOUT_MAX);
			break;
		default:
			return migctl_usage_err("migrate: unknown option '%s'",
						argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return migctl_usage_err("migrate: expected the source BDF (or BDF,BDF... for a VM's devices)");
	o.dev = argv[optind];
	if (!o.host)
		return migctl_usage_err("migrate: --to HOST[:PORT] is required");
	if (!o.target_dev)
		return migctl_usage_err("migrate: --target-dev BDF is required");
	code = bdf_list(o.dev, srcs, o.devs, &o.ndev);
	if (!code)
		code = bdf_list(o.target_dev, dsts, o.target_devs, &n);
	if (code)
		return code;
	if (n != o.ndev)
		return migctl_usage_err("migrate: %u source devices but %u target devices: --target-dev names one for each, in order",
					o.ndev, n);
	if (o.ndev > 1 && o.via_shadow)
		return migctl_usage_err("migrate: --via-shadow takes one device");
	if (o.tls_name && !sec.t.creds_dir)
		return migctl_usage_err("migrate: --tls-name needs --tls-creds");
	if (!o.tls_name)
		o.tls_name = o.host;	/* the target's certificate names it */
	code = sec_setup("migrate", &sec, &o, &out);
	if (code)
		return code;
	js->pretty = false;	/* events: one object per line */
	signals();
	for (i = 0; i < o.ndev; i++) {
		if (lm_kernel_open(&d[i], &stop)) {
			while (i--)
				lm_kernel_close(&d[i]);
			tls_ctx_free(o.tls);
			return 1;
		}
	}
	fd = dial(&o);
	if (fd < 0) {
		for (i = 0; i < o.ndev; i++)
			lm_kernel_close(&d[i]);
		tls_ctx_free(o.tls);
		return 1;
	}
	lm_ev_begin(&out, "connected");
	{
		char peer[300];

		snprintf(peer, sizeof(peer), "%s:%u", o.host, o.port);
		json_str(js, "peer", peer);
	}
	lm_ev_end(&out);
	code = lm_source_run(&o, d, fd, &out, &stop);
	for (i = 0; i < o.ndev; i++)
		lm_kernel_close(&d[i]);
	tls_ctx_free(o.tls);
	return code;
}

/*
 * Connections served at once. When all are taken, a newcomer evicts the
 * oldest one that has not yet begun a migration (no HELLO accepted yet:
 * nothing touched); when all have begun, the newcomer is closed.
 */
#define LISTEN_MAX_CHILDREN	4
/* The TLS handshake of a connection: at most this long (ms). */
#define LISTEN_HANDSHAKE_MS	5000

struct child {
	pid_t pid;
	unsigned int conn;
	int rfd;		/* its "migration begun" pipe, -1 once read */
	bool begun;
};

/*
 * One connection, in its own process: the TLS handshake and the
 * authorization, then the migration. Its exit status is the migration's
 * exit code, or LM_EXIT_NOT_SERVED when the peer never got that far.
 */
static int serve(struct lm_opts *o, struct lm_out *out, int fd)
{
	struct lm_dev d[LM_DEVS_MAX] = {};

	if (lm_kernel_open(&d[0], &stop)) {
		close(fd);
		return 1;
	}
	unsigned int i;
	int code;

	/* a migration of several devices opens a backend for each */
	o->dev_open = lm_kernel_open;
	code = lm_target_run(o, d, LM_DEVS_MAX, fd, out, &stop);
	for (i = 0; i < LM_DEVS_MAX; i++)
		if (d[i].ops)
			lm_kernel_close(&d[i]);
	return code;
}

static int bind_listen(const struct lm_opts *o)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST }, *ai;
	int lfd, one = 1, zero = 0, ret;
	char port[8];

	snprintf(port, sizeof(port), "%u", o->port);
	ret = getaddrinfo(o->address, port, &hints, &ai);
	if (ret) {
		migctl_usage_err("listen: --address '%s' is not an IPv4 or IPv6 address",
				 o->address);
		return -2;
	}
	lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		migctl_fail("listen: socket: %s", strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)	/* "::" takes IPv4 as well */
		setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(lfd, ai->ai_addr, ai->ai_addrlen) || listen(lfd, 8)) {
		migctl_fail("listen: %s port %u: %s", o->address, o->port,
			    strerror(errno));
		close(lfd);
		lfd = -1;
	}
	freeaddrinfo(ai);
	return lfd;
}

/* Which children have begun a migration (their byte on the pipe)? */
static void note_begun(struct child *ch, int nch)
{
	char b;
	int i;

	for (i = 0; i < nch; i++) {
		if (ch[i].rfd < 0)
			continue;
		if (read(ch[i].rfd, &b, 1) == 1)
			ch[i].begun = true;
		else if (errno == EAGAIN)
			continue;
		close(ch[i].rfd);
		ch[i].rfd = -1;
	}
}

/*
 * Reap ended children; the code of one whose migration began in *@code;
 * the number of those returned.
 */
static int reap(struct child *ch, int *nch, int *code, bool block)
{
	int i, st, served = 0;
	pid_t pid;

	while (*nch) {
		pid = waitpid(-1, &st, block ? 0 : WNOHANG);
		if (pid <= 0)
			break;
		for (i = 0; i < *nch && ch[i].pid != pid; i++)
			;
		if (i == *nch)
			continue;
		note_begun(&ch[i], 1);	/* its byte outlives it */
		st = WIFEXITED(st) ? WEXITSTATUS(st) : LM_EXIT_ROLLBACK_FAILED;
		/* only a migration that began counts (and --once ends) */
		if (ch[i].begun && st != LM_EXIT_NOT_SERVED) {
			*code = st;
			served++;
		}
		if (ch[i].rfd >= 0)
			close(ch[i].rfd);
		ch[i] = ch[--*nch];
	}
	return served;
}

/* All places taken: evict the oldest child not yet begun. Did it? */
static bool evict(struct child *ch, int nch)
{
	int i, old = -1;

	for (i = 0; i < nch; i++)
		if (!ch[i].begun && (old < 0 || ch[i].conn < ch[old].conn))
			old = i;
	if (old < 0)
		return false;
	kill(ch[old].pid, SIGKILL);
	waitpid(ch[old].pid, NULL, 0);
	if (ch[old].rfd >= 0)
		close(ch[old].rfd);
	ch[old] = ch[nch - 1];
	return true;
}

int migctl_listen(struct json_out *js, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "address", required_argument, NULL, O_ADDRESS },
		{ "once", no_argument, NULL, O_ONCE },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "vmm-timeout-ms", required_argument, NULL, O_VMM_TIMEOUT },
		{ "tls-creds", required_argument, NULL, O_TLS_CREDS },
		{ "psk-file", required_argument, NULL, O_PSK_FILE },
		{ "insecure", no_argument, NULL, O_INSECURE },
		{ "allow-peer", required_argument, NULL, O_ALLOW_PEER },
		{ "allow-dev", required_argument, NULL, O_ALLOW_DEV },
		{ "copy-pages", no_argument, NULL, O_COPY_PAGES },
		{ "tls-cipher", required_argument, NULL, O_TLS_CIPHER },
		{}
	};
	static const char *allow_peer[32], *allow_dev[32];
	struct lm_out out = { .js = js, .role = "target", .text = stdout };
	struct sec_args sec = { .t.server = true };
	struct child ch[LISTEN_MAX_CHILDREN];
	struct sockaddr_storage peer;
	pid_t parent;
	int c, lfd, fd, nch = 0, code = 0;
	unsigned int conn = 0;
	bool served = false;
	socklen_t plen;
	struct lm_opts o;
	uint32_t port;

	defaults(&o);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (sec_option("listen", c, &sec))
			continue;
		switch (c) {
		case O_PORT:
			if (parse_u32(optarg, &port, 1) || port > 65535)
				return migctl_usage_err("listen: bad --port '%s'", optarg);
			o.port = port;
			break;
		case O_ADDRESS:
			o.address = optarg;
			break;
		case O_COPY_PAGES:
			o.copy_pages = true;
			break;
		case O_ONCE:
			o.once = true;
			break;
		case O_TIMEOUT:
			if (parse_timeout(optarg, &o.timeout_ms))
				return migctl_usage_err("listen: bad --timeout-ms '%s' (100 to %u)",
							optarg, LM_TIMEOUT_MAX);
			break;
		case O_VMM_TIMEOUT:
			if (parse_timeout(optarg, &o.vmm_timeout_ms))
				return migctl_usage_err("listen: bad --vmm-timeout-ms '%s' (100 to %u)",
							optarg, LM_TIMEOUT_MAX);
			break;
		case O_ALLOW_PEER:
			if (o.n_allow_peer == 32 || !*optarg)
				return migctl_usage_err("listen: --allow-peer: 1 to 32 non-empty names");
			allow_peer[o.n_allow_peer++] = optarg;
			break;
		case O_ALLOW_DEV:
			if (o.n_allow_dev == 32 || !migctl_valid_bdf(optarg))
				return migctl_usage_err("listen: --allow-dev '%s': up to 32 PCI addresses (DDDD:BB:DD.F)",
							optarg);
			allow_dev[o.n_allow_dev++] = optarg;
			break;
		default:
			return migctl_usage_err("listen: unknown option '%s'",
						argv[optind - 1]);
		}
	}
	if (optind != argc)
		return migctl_usage_err("listen: unexpected argument '%s'",
					argv[optind]);
	o.allow_peer = allow_peer;
	o.allow_dev = allow_dev;
	if (o.n_allow_peer && sec.insecure)
		return migctl_usage_err("listen: --allow-peer needs authenticated peers (--tls-creds or --psk-file)");
	code = sec_setup("listen", &sec, &o, &out);
	if (code)
		return code;
	o.handshake_ms = LISTEN_HANDSHAKE_MS;
	if (o.tls && !sec.t.psk_file && !o.n_allow_peer)
		fprintf(stderr, "migctl: listen: note: any client certificate the CA signed may migrate here; --allow-peer narrows that\n");
	js->pretty = false;
	signals();
	lfd = bind_listen(&o);
	if (lfd < 0) {
		tls_ctx_free(o.tls);
		return lfd == -2 ? 2 : 1;
	}
	lm_ev_begin(&out, "listening");
	json_str(js, "address", o.address);
	json_u64(js, "port", o.port);
	json_str(js, "security", o.tls ? tls_ctx_kind(o.tls) : "insecure");
	lm_ev_end(&out);
	if (!js->enabled)
		printf("listening on %s port %u (%s)\n", o.address, o.port,
		       o.tls ? tls_ctx_kind(o.tls) : "INSECURE: plain TCP");
	fflush(stdout);
	code = 0;
	while (!stop && !(o.once && served)) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		char host[NI_MAXHOST], serv[NI_MAXSERV], who[NI_MAXHOST + 16];
		bool busy, evicted = false, begun = false;
		int pfd[2];
		pid_t pid;

		if (reap(ch, &nch, &code, false))
			served = true;
		note_begun(ch, nch);
		for (c = 0; c < nch; c++)
			begun |= ch[c].begun;
		if (o.once && served)
			break;
		/* --once: one migration; once it has begun, no other peer */
		if (poll(&p, o.once && begun ? 0 : 1, 200) <= 0)
			continue;
		plen = sizeof(peer);
		fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (getnameinfo((struct sockaddr *)&peer, plen, host, sizeof(host),
				serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV))
			snprintf(host, sizeof(host), "?");
		snprintf(who, sizeof(who), strchr(host, ':') ? "[%s]:%s" : "%s:%s",
			 host, serv);
		conn++;
		if (nch == LISTEN_MAX_CHILDREN) {
			note_begun(ch, nch);
			evicted = evict(ch, nch);
			if (evicted)
				nch--;
		}
		busy = nch == LISTEN_MAX_CHILDREN;
		lm_ev_begin(&out, "connected");
		json_u64(js, "conn", conn);
		json_str(js, "peer", who);
		json_bool(js, "busy", busy);
		json_bool(js, "evicted", evicted);
		lm_ev_end(&out);
		if (!js->enabled)
			printf("connection %u from %s%s%s\n", conn, who,
			       evicted ? " (the oldest connection still in its handshake closed)" : "",
			       busy ? ": busy, closed" : "");
		fflush(stdout);
		if (busy || pipe2(pfd, O_CLOEXEC)) {
			close(fd);
			continue;
		}
		parent = getpid();
		pid = fork();
		if (pid < 0) {
			close(fd);
			close(pfd[0]);
			close(pfd[1]);
			continue;
		}
		if (!pid) {
			/*
			 * The migration is listen's: if listen dies, so does
			 * the child, and the kernel releases the device.
			 */
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) ||
			    getppid() != parent)
				_exit(LM_EXIT_FAILED);
			close(lfd);
			close(pfd[0]);
			for (c = 0; c < nch; c++)
				if (ch[c].rfd >= 0)
					close(ch[c].rfd);
			out.conn = conn;
			o.begun_fd = pfd[1];
			c = serve(&o, &out, fd);
			fflush(NULL);
			_exit(c);
		}
		close(fd);
		close(pfd[1]);
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
		ch[nch].pid = pid;
		ch[nch].rfd = pfd[0];
		ch[nch].begun = false;
		ch[nch++].conn = conn;
	}
	close(lfd);
	/* interrupted, or --once done: the others roll back and end */
	for (c = 0; c < nch; c++)
		kill(ch[c].pid, SIGTERM);
	if (reap(ch, &nch, &code, true))
		served = true;
	tls_ctx_free(o.tls);
	/*
	 * --once: the migration's status, 1 when there was none; otherwise
	 * (SIGINT, SIGTERM) a clean stop.
	 */
	if (o.once)
		return served ? code : LM_EXIT_FAILED;
	return 0;
}
