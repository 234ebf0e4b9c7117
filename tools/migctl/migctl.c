// SPDX-License-Identifier: GPL-2.0
/*
 * migctl: operator CLI for vfio-mig.
 *
 * Argument parsing, help, and the sysfs commands (bind, unbind) live here;
 * the netlink commands in cmd_nl.c.
 * Exit codes follow iproute2: 0 success, 1 the operation failed, 2 usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lm.h"
#include "migctl.h"

#ifndef MIGCTL_VERSION
#define MIGCTL_VERSION "0.0.0"
#endif

#define DRIVER		"vfio-mig"
#define PCI_DEVS	"/sys/bus/pci/devices"
#define STATE_DIR	"/run/vfio-mig"

static struct json_out js;

int migctl_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("migctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int migctl_usage_err(const char *fmt, ...)
{
	va_list ap;

	fputs("migctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'migctl --help'.\n", stderr);
	return 2;
}

/* A full PCI address: DDDD:BB:DD.F, hexadecimal, as sysfs names it. */
bool migctl_valid_bdf(const char *s)
{
	unsigned int dom, bus, dev, fn;
	char tail;

	if (strlen(s) != 12)
		return false;
	if (sscanf(s, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) != 4)
		return false;
	return s[4] == ':' && s[7] == ':' && s[10] == '.' && dev < 32 &&
	       fn < 8;
}

static int sysfs_read(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	if (!fgets(buf, len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static void link_name(const char *bdf, const char *name, char *buf,
		      size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), PCI_DEVS "/%s/%s", bdf, name);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		buf[0] = 0;
		return;
	}
	target[n] = 0;
	snprintf(buf, len, "%s", basename(target));
}

static int check_dev(const char *bdf)
{
	char path[PATH_MAX];

	if (!migctl_valid_bdf(bdf))
		return migctl_usage_err("'%s' is not a PCI address (DDDD:BB:DD.F)",
				 bdf);
	snprintf(path, sizeof(path), PCI_DEVS "/%s", bdf);
	if (access(path, F_OK))
		return migctl_fail("%s: no such PCI device", bdf);
	return 0;
}

static int driver_loaded(void)
{
	if (access("/sys/bus/pci/drivers/" DRIVER, F_OK))
		return migctl_fail("the vfio_mig module is not loaded (modprobe vfio_mig)");
	return 0;
}

static void prev_path(const char *bdf, char *buf, size_t len)
{
	snprintf(buf, len, STATE_DIR "/%s.driver", bdf);
}

static int unbind_current(const char *bdf)
{
	char path[PATH_MAX], drv[64];

	link_name(bdf, "driver", drv, sizeof(drv));
	if (!drv[0])
		return 0;
	snprintf(path, sizeof(path), PCI_DEVS "/%s/driver/unbind", bdf);
	return sysfs_write(path, bdf);
}

static int probe_with(const char *bdf, const char *drv)
{
	char path[PATH_MAX];
	int ret;

	snprintf(path, sizeof(path), PCI_DEVS "/%s/driver_override", bdf);
	ret = sysfs_write(path, drv[0] ? drv : "\n");
	if (ret)
		return ret;
	/* drivers_probe fails when no driver wants the device: not an error */
	sysfs_write("/sys/bus/pci/drivers_probe", bdf);
	return 0;
}

static int cmd_bind(const char *bdf)
{
	char drv[64], path[PATH_MAX];
	FILE *f;
	int ret;

	ret = check_dev(bdf);
	if (ret)
		return ret;
	ret = driver_loaded();
	if (ret)
		return ret;
	link_name(bdf, "driver", drv, sizeof(drv));
	if (strcmp(drv, DRIVER)) {
		mkdir(STATE_DIR, 0755);
		prev_path(bdf, path, sizeof(path));
		f = fopen(path, "w");
		if (!f)
			return migctl_fail("%s: cannot record the current driver in %s: %s",
				    bdf, path, strerror(errno));
		fprintf(f, "%s\n", drv);
		fclose(f);
		ret = unbind_current(bdf);
		if (ret)
			return migctl_fail("%s: unbinding %s: %s", bdf, drv,
				    strerror(-ret));
		ret = probe_with(bdf, DRIVER);
		if (ret)
			return migctl_fail("%s: setting driver_override: %s", bdf,
				    strerror(-ret));
	}
	link_name(bdf, "driver", path, sizeof(path));
	if (strcmp(path, DRIVER))
		return migctl_fail("%s: vfio-mig did not bind (see dmesg)", bdf);
	json_begin_object(&js, NULL);
	json_str(&js, "dev", bdf);
	json_str(&js, "driver", DRIVER);
	json_str(&js, "previous_driver", strcmp(drv, DRIVER) ? drv : "");
	json_end_object(&js);
	if (!js.enabled)
		printf("%s: bound to %s%s%s\n", bdf, DRIVER,
		       strcmp(drv, DRIVER) && drv[0] ? ", was " : "",
		       strcmp(drv, DRIVER) ? drv : "");
	return 0;
}

static int cmd_unbind(const char *bdf)
{
	char drv[64], prev[64] = "", path[PATH_MAX];
	int ret;

	ret = check_dev(bdf);
	if (ret)
		return ret;
	link_name(bdf, "driver", drv, sizeof(drv));
	if (strcmp(drv, DRIVER))
		return migctl_fail("%s: not bound to %s (driver: %s)", bdf, DRIVER,
			    drv[0] ? drv : "none");
	prev_path(bdf, path, sizeof(path));
	sysfs_read(path, prev, sizeof(prev));
	ret = unbind_current(bdf);
	if (ret)
		return migctl_fail("%s: unbind: %s", bdf, strerror(-ret));
	ret = probe_with(bdf, prev);
	if (ret)
		return migctl_fail("%s: setting driver_override: %s", bdf,
			    strerror(-ret));
	/* Bound (or not) now: the override must not outlive us. */
	snprintf(path, sizeof(path), PCI_DEVS "/%s/driver_override", bdf);
	sysfs_write(path, "\n");
	prev_path(bdf, path, sizeof(path));
	unlink(path);
	link_name(bdf, "driver", drv, sizeof(drv));
	json_begin_object(&js, NULL);
	json_str(&js, "dev", bdf);
	json_str(&js, "driver", drv);
	json_end_object(&js);
	if (!js.enabled)
		printf("%s: unbound from %s, now %s\n", bdf, DRIVER,
		       drv[0] ? drv : "without a driver");
	if (prev[0] && strcmp(prev, drv))
		return migctl_fail("%s: could not give it back to %s", bdf, prev);
	return 0;
}

static const char *const usage_text =
"Usage: migctl [OPTIONS] COMMAND [ARGS]\n"
"\n"
"Commands:\n"
"  dev show [BDF]                  devices bound to vfio-mig, with counters\n"
"  dev set BDF trap none|sparse|all | profile NAME | dirty-page-size N\n"
"                                  change settings (device not open)\n"
"  bind BDF                        bind a PCI device to vfio-mig\n"
"  unbind BDF                      give it back to its previous driver\n"
"  log BDF [--since SEQ]           the trapped register write log\n"
"  dirty [show] BDF [--iova A --length L] [--clear]\n"
"  dirty start BDF IOVA:LEN... [--page-size N]\n"
"  dirty stop BDF                  the DMA dirty log\n"
"  shadow engage|release BDF       the shadow adapter takes over, or hands back\n"
"  shadow show [BDF]               shadow adapters: state, counters, timings\n"
"  monitor                         print events until interrupted\n"
"  migrate BDF[,BDF...] --to HOST[:PORT] --target-dev BDF[,BDF...] CREDENTIALS\n"
"          [--downtime-ms N] [--max-rounds N] [--bandwidth RATE]\n"
"          [--on-max-rounds abort|switchover] [--timeout-ms N]\n"
"          [--vmm-timeout-ms N] [--via-shadow]\n"
"                                  live-migrate a VM's devices to a target host\n"
"  listen CREDENTIALS [--allow-peer NAME]... [--allow-dev BDF]... [--port P]\n"
"          [--address A] [--once] [--timeout-ms N] [--vmm-timeout-ms N]\n"
"                                  receive live migrations (the target host)\n"
"  CREDENTIALS: --tls-creds DIR (X.509) | --psk-file FILE | --insecure,\n"
"               and --tls-cipher aes-gcm|chacha20 with TLS\n"
"\n"
"Options:\n"
"  -j, --json       JSON output\n"
"  -p, --pretty     indented JSON (with -j)\n"
"  -V, --version    print the version\n"
"  -h, --help       this text; 'migctl COMMAND --help' for one command\n"
"\n"
"Exit status: 0 success, 1 the operation failed, 2 usage error;\n"
"migrate and listen: 1 failed and rolled back, 3 committed but unconfirmed,\n"
"4 failed and the rollback did not complete.\n";

static const char *const cmd_help[][2] = {
	{ "dev", "Usage: migctl [-j [-p]] dev show [BDF]\n"
		 "       migctl dev set BDF [trap none|sparse|all] [profile NAME]\n"
		 "                          [dirty-page-size BYTES]\n"
		 "show: identity, profile, trap mode, whether a VMM has the device\n"
		 "open, and its counters (trapped accesses, register log, dirty log).\n"
		 "set: change settings; refused (EBUSY) while a VMM has the device\n"
		 "open, or for dirty-page-size while a dirty log runs. Needs\n"
		 "CAP_NET_ADMIN.\n" },
	{ "bind", "Usage: migctl [-j [-p]] bind BDF\n"
		  "Unbind BDF from its driver and bind it to vfio-mig through\n"
		  "driver_override; the previous driver is recorded in\n"
		  STATE_DIR "/BDF.driver for 'migctl unbind'. Needs root.\n" },
	{ "unbind", "Usage: migctl [-j [-p]] unbind BDF\n"
		    "Unbind BDF from vfio-mig and probe it with the driver it\n"
		    "had before 'migctl bind' (or none), clearing the override.\n" },
	{ "log", "Usage: migctl [-j [-p]] log BDF [--since SEQ]\n"
		 "The trapped BAR writes still in the device's log, from sequence\n"
		 "number SEQ on: seq, time, BAR, offset, width, value. Needs\n"
		 "CAP_NET_ADMIN (guest data).\n" },
	{ "dirty", "Usage: migctl [-j [-p]] dirty [show] BDF [--iova A --length L] [--clear]\n"
		   "       migctl dirty start BDF IOVA:LEN [IOVA:LEN]... [--page-size N]\n"
		   "       migctl dirty stop BDF\n"
		   "show: the dirty pages of the running DMA dirty log as IOVA runs\n"
		   "(the whole log, or one range); --clear clears what it reports.\n"
		   "start/stop: a dirty log over IOVA ranges. Needs CAP_NET_ADMIN.\n" },
	{ "shadow", "Usage: migctl shadow engage BDF\n"
		    "       migctl shadow release BDF\n"
		    "       migctl [-j [-p]] shadow [show [BDF]]\n"
		    "engage: the device's DMA is quiesced, its state captured into the\n"
		    "shadow adapter of its profile, and the guest's BAR accesses served\n"
		    "by the shadow. Needs a VMM with the device open in trap mode sparse\n"
		    "or all, outside a migration.\n"
		    "release: the device is brought to the shadow's state and serves\n"
		    "the guest again; if it refuses, the shadow stays engaged.\n"
		    "show: per device: profile, whether a shadow is available for it,\n"
		    "engaged or released, the reads, writes, DMA transfers and\n"
		    "interrupts it served, and how long the last engage and hand-back\n"
		    "held the guest. Needs CAP_NET_ADMIN.\n" },
	{ "migrate", "Usage: migctl [-j] migrate BDF[,BDF...] --to HOST[:PORT]\n"
		     "               --target-dev BDF[,BDF...]\n"
		     "               {--tls-creds DIR [--tls-name NAME] |\n"
		     "                --psk-file FILE [--psk-identity ID] | --insecure}\n"
		     "               [--downtime-ms N] [--max-rounds N] [--bandwidth RATE]\n"
		     "               [--on-max-rounds abort|switchover]\n"
		     "               [--timeout-ms N] [--vmm-timeout-ms N] [--via-shadow]\n"
		     "Live-migrate the VM state of BDF (bound to vfio-mig, open by a VMM\n"
		     "that answers the mig phases) to device --target-dev on the host\n"
		     "where 'migctl listen' runs (port 4797 by default): the device's\n"
		     "DMA-dirty guest pages in rounds while the VM runs, then the\n"
		     "switchover with the VM paused. Defaults: --downtime-ms 300,\n"
		     "--max-rounds 30, --on-max-rounds abort, unlimited bandwidth\n"
		     "(RATE in bytes/s, suffix K, M or G), --timeout-ms 10000 for the\n"
		     "peer, --vmm-timeout-ms 10000 for VMM acks. Any failure before the\n"
		     "commit point rolls back: the device runs here, the VM resumes.\n"
		     "A VM's devices (up to 4, comma-separated, paired in order with\n"
		     "--target-dev's) migrate together: one set of rounds over the RAM\n"
		     "they share, one switchover, and a failure of any rolls all back.\n"
		     "--via-shadow: once the rounds converged, the device's shadow\n"
		     "adapter takes over (as 'shadow engage'), one more round sends what\n"
		     "the guest dirtied meanwhile, then the pause; the state that moves\n"
		     "is the shadow's: for a device whose own stop-copy\n"
		     "is slow, or a target device not ready yet. Needs sriov_shadow and\n"
		     "trap mode sparse or all; no PRE_COPY then. A failure before the\n"
		     "commit point hands the device back after the rollback.\n"
		     "The link is mutual TLS 1.3: --tls-creds DIR holds ca-cert.pem,\n"
		     "client-cert.pem, client-key.pem (QEMU's layout), and the target's\n"
		     "certificate must name HOST (or --tls-name); --psk-file FILE holds\n"
		     "identity:hexkey lines. --insecure: plain TCP, unauthenticated.\n"
		     "--tls-cipher aes-gcm|chacha20 limits the cipher (both hosts must\n"
		     "allow it); an AES-GCM connection stops at 2^24 records (about\n"
		     "256 GiB) as RFC 8446 asks, ChaCha20-Poly1305 has no such limit.\n"
		     "Exit: 0 migrated, 1 failed and rolled back, 2 usage, 3 committed\n"
		     "but not confirmed by the target, 4 rollback incomplete.\n"
		     "With -j: one JSON event per line (see migctl(8)).\n" },
	{ "listen", "Usage: migctl [-j] listen {--tls-creds DIR | --psk-file FILE | --insecure}\n"
		    "               [--allow-peer NAME]... [--allow-dev BDF]...\n"
		    "               [--port P] [--address A] [--once]\n"
		    "               [--timeout-ms N] [--vmm-timeout-ms N]\n"
		    "Receive live migrations from 'migctl migrate' (port 4797 of\n"
		    "0.0.0.0 by default; IPv6 too, '::' for both), each connection in\n"
		    "a process of its own, until SIGINT or SIGTERM; with --once exit\n"
		    "after one migration with its status (0 the VM runs here, 1 failed\n"
		    "and released, 3 running but unconfirmed, 4 release incomplete).\n"
		    "The source must present a certificate the CA of DIR signed (or a\n"
		    "key of FILE); --allow-peer names the sources allowed, --allow-dev\n"
		    "the devices a migration may take. The target device is named by\n"
		    "the source. --tls-cipher aes-gcm|chacha20 as for migrate.\n" },
	{ "monitor", "Usage: migctl [-j] monitor\n"
		     "Print vfio-mig events (bind, unbind, change, log-overflow,\n"
		     "mig-state)\n"
		     "until interrupted; with -j one JSON object per line.\n" },
};

static int help_for(const char *cmd)
{
	unsigned int i;

	for (i = 0; i < sizeof(cmd_help) / sizeof(cmd_help[0]); i++) {
		if (!strcmp(cmd, cmd_help[i][0])) {
			fputs(cmd_help[i][1], stdout);
			return 0;
		}
	}
	return migctl_usage_err("unknown command '%s'", cmd);
}

static bool wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

int migctl_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	bool pretty = false;
	const char *cmd;
	int c, ret;

	optind = 0;	/* full getopt re-initialisation (glibc) */
	memset(&js, 0, sizeof(js));
	while ((c = getopt_long(argc, argv, "+jpVh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			js.enabled = true;
			break;
		case 'p':
			pretty = true;
			break;
		case 'V':
			printf("migctl %s\n", MIGCTL_VERSION);
			return 0;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return migctl_usage_err("bad option");
		}
	}
	js.pretty = pretty;
	js.out = stdout;
	if (optind >= argc)
		return migctl_usage_err("no command given");
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (wants_help(argc, argv))
		return help_for(cmd);

	if (!strcmp(cmd, "dev")) {
		if (argc >= 2 && !strcmp(argv[1], "show")) {
			if (argc > 3)
				return migctl_usage_err("dev show: too many arguments");
			ret = migctl_dev_show(&js, argc == 3 ? argv[2] : NULL);
		} else if (argc >= 2 && !strcmp(argv[1], "set")) {
			if (argc < 3)
				return migctl_usage_err("dev set: expected a BDF");
			ret = migctl_dev_set(argc - 2, argv + 2);
		} else {
			return migctl_usage_err("dev: expected 'show' or 'set'");
		}
	} else if (!strcmp(cmd, "bind") || !strcmp(cmd, "unbind")) {
		if (argc != 2)
			return migctl_usage_err("%s: expected one BDF", cmd);
		if (geteuid() != 0)
			return migctl_fail("%s: needs root (it writes sysfs)", cmd);
		ret = cmd[0] == 'b' ? cmd_bind(argv[1]) : cmd_unbind(argv[1]);
	} else if (!strcmp(cmd, "log")) {
		uint64_t since = 0;

		if (argc != 2 && !(argc == 4 && !strcmp(argv[2], "--since") &&
				   !migctl_parse_u64(argv[3], &since)))
			return migctl_usage_err("log: expected BDF [--since SEQ]");
		ret = migctl_log(&js, argv[1], since);
	} else if (!strcmp(cmd, "dirty")) {
		ret = migctl_dirty(&js, argc - 1, argv + 1);
	} else if (!strcmp(cmd, "shadow")) {
		ret = migctl_shadow(&js, argc - 1, argv + 1);
	} else if (!strcmp(cmd, "migrate")) {
		ret = migctl_migrate(&js, argc, argv);
	} else if (!strcmp(cmd, "listen")) {
		ret = migctl_listen(&js, argc, argv);
	} else if (!strcmp(cmd, "monitor")) {
		if (argc != 1)
			return migctl_usage_err("monitor: no arguments");
		ret = migctl_monitor(&js);
	} else {
		return migctl_usage_err("unknown command '%s'", cmd);
	}
	json_flush(&js);
	return ret;
}
