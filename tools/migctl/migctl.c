// SPDX-License-Identifier: GPL-2.0
/*
 * migctl: operator CLI for vfio-mig.
 *
 * Commands that need only sysfs live here; the netlink commands (device
 * counters, trap mode, logs) arrive with the vfio_mig netlink family.
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

#include "json.h"

#ifndef MIGCTL_VERSION
#define MIGCTL_VERSION "0.0.0"
#endif

#define DRIVER		"vfio-mig"
#define PCI_DEVS	"/sys/bus/pci/devices"
#define STATE_DIR	"/run/vfio-mig"

static struct json_out js;

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("migctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int usage_err(const char *fmt, ...)
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

static void attr(const char *bdf, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), PCI_DEVS "/%s/%s", bdf, name);
	if (sysfs_read(path, buf, len))
		buf[0] = 0;
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
		return usage_err("'%s' is not a PCI address (DDDD:BB:DD.F)",
				 bdf);
	snprintf(path, sizeof(path), PCI_DEVS "/%s", bdf);
	if (access(path, F_OK))
		return fail("%s: no such PCI device", bdf);
	return 0;
}

static int driver_loaded(void)
{
	if (access("/sys/bus/pci/drivers/" DRIVER, F_OK))
		return fail("the vfio_mig module is not loaded (modprobe vfio_mig)");
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
			return fail("%s: cannot record the current driver in %s: %s",
				    bdf, path, strerror(errno));
		fprintf(f, "%s\n", drv);
		fclose(f);
		ret = unbind_current(bdf);
		if (ret)
			return fail("%s: unbinding %s: %s", bdf, drv,
				    strerror(-ret));
		ret = probe_with(bdf, DRIVER);
		if (ret)
			return fail("%s: setting driver_override: %s", bdf,
				    strerror(-ret));
	}
	link_name(bdf, "driver", path, sizeof(path));
	if (strcmp(path, DRIVER))
		return fail("%s: vfio-mig did not bind (see dmesg)", bdf);
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
		return fail("%s: not bound to %s (driver: %s)", bdf, DRIVER,
			    drv[0] ? drv : "none");
	prev_path(bdf, path, sizeof(path));
	sysfs_read(path, prev, sizeof(prev));
	ret = unbind_current(bdf);
	if (ret)
		return fail("%s: unbind: %s", bdf, strerror(-ret));
	ret = probe_with(bdf, prev);
	if (ret)
		return fail("%s: setting driver_override: %s", bdf,
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
		return fail("%s: could not give it back to %s", bdf, prev);
	return 0;
}

static void show_one(const char *bdf)
{
	char v[16], d[16], sv[16], sd[16], group[16], drv[64], phys[32];

	attr(bdf, "vendor", v, sizeof(v));
	attr(bdf, "device", d, sizeof(d));
	attr(bdf, "subsystem_vendor", sv, sizeof(sv));
	attr(bdf, "subsystem_device", sd, sizeof(sd));
	link_name(bdf, "iommu_group", group, sizeof(group));
	link_name(bdf, "driver", drv, sizeof(drv));
	link_name(bdf, "physfn", phys, sizeof(phys));
	if (js.enabled) {
		json_begin_object(&js, NULL);
		json_str(&js, "dev", bdf);
		json_str(&js, "vendor", v);
		json_str(&js, "device", d);
		json_str(&js, "subsystem_vendor", sv);
		json_str(&js, "subsystem_device", sd);
		json_str(&js, "iommu_group", group);
		json_str(&js, "driver", drv);
		json_str(&js, "physfn", phys);
		json_end_object(&js);
		return;
	}
	printf("%s: %s:%s subsystem %s:%s iommu_group %s driver %s%s%s\n",
	       bdf, v + 2, d + 2, sv + 2, sd + 2, group[0] ? group : "none",
	       drv, phys[0] ? " vf-of " : "", phys);
}

static int cmd_dev_show(const char *bdf)
{
	struct dirent **names;
	char drv[64];
	int n, i, ret;

	if (bdf) {
		ret = check_dev(bdf);
		if (ret)
			return ret;
		link_name(bdf, "driver", drv, sizeof(drv));
		if (strcmp(drv, DRIVER))
			return fail("%s: not bound to %s", bdf, DRIVER);
		json_begin_array(&js, NULL);
		show_one(bdf);
		json_end_array(&js);
		return 0;
	}
	ret = driver_loaded();
	if (ret)
		return ret;
	n = scandir("/sys/bus/pci/drivers/" DRIVER, &names, NULL, alphasort);
	if (n < 0)
		return fail("reading the vfio-mig driver: %s", strerror(errno));
	json_begin_array(&js, NULL);
	for (i = 0; i < n; i++) {
		if (migctl_valid_bdf(names[i]->d_name))
			show_one(names[i]->d_name);
		free(names[i]);
	}
	free(names);
	json_end_array(&js);
	return 0;
}

static const char *const usage_text =
"Usage: migctl [OPTIONS] COMMAND [ARGS]\n"
"\n"
"Commands:\n"
"  dev show [BDF]   devices bound to vfio-mig (or one of them)\n"
"  bind BDF         bind a PCI device to vfio-mig (driver_override),\n"
"                   remembering its current driver\n"
"  unbind BDF       unbind it from vfio-mig and give it back to the\n"
"                   driver it had before 'migctl bind'\n"
"\n"
"Options:\n"
"  -j, --json       JSON output\n"
"  -p, --pretty     indented JSON (with -j)\n"
"  -V, --version    print the version\n"
"  -h, --help       this text; 'migctl COMMAND --help' for one command\n"
"\n"
"Exit status: 0 success, 1 the operation failed, 2 usage error.\n";

static const char *const cmd_help[][2] = {
	{ "dev", "Usage: migctl [-j [-p]] dev show [BDF]\n"
		 "List the PCI devices bound to vfio-mig: address, vendor,\n"
		 "device, subsystem ids, IOMMU group, driver, parent PF.\n" },
	{ "bind", "Usage: migctl [-j [-p]] bind BDF\n"
		  "Unbind BDF from its driver and bind it to vfio-mig through\n"
		  "driver_override; the previous driver is recorded in\n"
		  STATE_DIR "/BDF.driver for 'migctl unbind'.\n" },
	{ "unbind", "Usage: migctl [-j [-p]] unbind BDF\n"
		    "Unbind BDF from vfio-mig and probe it with the driver it\n"
		    "had before 'migctl bind' (or none), clearing the override.\n" },
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
	return usage_err("unknown command '%s'", cmd);
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
			return usage_err("bad option");
		}
	}
	js.pretty = pretty;
	js.out = stdout;
	if (optind >= argc)
		return usage_err("no command given");
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (wants_help(argc, argv))
		return help_for(cmd);

	if (!strcmp(cmd, "dev")) {
		if (argc < 2 || strcmp(argv[1], "show"))
			return usage_err("dev: expected 'show'");
		if (argc > 3)
			return usage_err("dev show: too many arguments");
		ret = cmd_dev_show(argc == 3 ? argv[2] : NULL);
	} else if (!strcmp(cmd, "bind") || !strcmp(cmd, "unbind")) {
		if (argc != 2)
			return usage_err("%s: expected one BDF", cmd);
		if (geteuid() != 0)
			return fail("%s: needs root (it writes sysfs)", cmd);
		ret = cmd[0] == 'b' ? cmd_bind(argv[1]) : cmd_unbind(argv[1]);
	} else {
		return usage_err("unknown command '%s'", cmd);
	}
	json_flush(&js);
	return ret;
}
