// SPDX-License-Identifier: GPL-2.0
/*
 * What a real VMM's migration of a vfio-mig device costs: Debian 13's
 * QEMU 10 migrates the nested VM of qemu_test (edu_guest.elf, its edu
 * bound to vfio-mig in trap mode sparse) from edu A to edu B, RUNS times,
 * and prints the medians of query-migrate's figures as key: value lines:
 *
 *   qemu_downtime_ms   QEMU's downtime (VM stopped to VM running)
 *   qemu_total_ms      QEMU's total migration time
 *   qemu_vfio_bytes    VFIO device state QEMU moved
 *
 * Compare qemu_downtime_ms with live_bench's downtime_ms (our own VMM and
 * migctl) in the same run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qemu.h"
#include "testbed.h"

#define L2_PROGRAM	"/tests/qemu/edu_guest.elf"
#define MIG_SOCK	"/tmp/l2-mig.sock"
#define RUNS		3

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/* One migration A -> B; 0 with @mi filled, or -errno. */
static int one(const struct tb_devs *t, struct qemu_mig_info *mi)
{
	struct l2vm_opts so = {
		.name = "src", .host = t->edu[0], .mem_mb = 32,
		.vfio_opts = "enable-migration=on", .kernel = L2_PROGRAM,
	};
	struct l2vm_opts doo = so;
	struct l2vm src, dst;
	char reply[4096];
	bool failed;
	int ret;

	doo.name = "dst";
	doo.host = t->edu[1];
	doo.incoming = "unix:" MIG_SOCK;
	unlink(MIG_SOCK);
	ret = l2vm_start(&src, &so);
	if (ret)
		return ret;
	ret = l2vm_wait_iter(&src, 3, 90000);
	if (!ret)
		ret = l2vm_start(&dst, &doo);
	if (ret) {
		l2vm_stop(&src);
		return ret;
	}
	ret = qmp_exec(&src.qmp, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"unix:" MIG_SOCK "\"}}",
			       reply, sizeof(reply), 30000);
	if (!ret)
		ret = qemu_wait_migration(&src, mi, 240000);
	if (!ret && strcmp(mi->status, "completed")) {
		fprintf(stderr, "qemu_bench: migration %s: %s\n", mi->status,
			mi->error);
		ret = -EIO;
	}
	/* the program must go on on the target, every result right */
	if (!ret)
		ret = l2vm_wait_iter(&dst, l2vm_iter(&src, &failed, NULL, 0) + 2,
				     60000);
	l2vm_stop(&src);
	l2vm_stop(&dst);
	if (l2vm_edu_settle(t->edu[0]) || l2vm_edu_settle(t->edu[1]))
		fprintf(stderr, "qemu_bench: an edu stayed busy\n");
	return ret;
}

int main(void)
{
	uint64_t down[RUNS], total[RUNS], vfio[RUNS];
	struct qemu_mig_info mi;
	struct tb_devs t;
	int i, ret;

	if (access(QEMU_BIN, X_OK)) {
		fprintf(stderr, "qemu_bench: no %s\n", QEMU_BIN);
		return 1;
	}
	if (tb_devices(&t) || t.nr_edu < 2) {
		fprintf(stderr, "qemu_bench: no two edus\n");
		return 1;
	}
	for (i = 0; i < 2; i++) {
		char path[128];

		snprintf(path, sizeof(path),
			 "/sys/bus/pci/devices/%s/vfio_mig/trap_mode",
			 t.edu[i]);
		if (vmm_bind(t.edu[i], TB_DRIVER) ||
		    vmm_sysfs_write(path, "sparse")) {
			fprintf(stderr, "qemu_bench: cannot bind %s\n",
				t.edu[i]);
			return 1;
		}
	}
	for (i = 0; i < RUNS; i++) {
		ret = one(&t, &mi);
		if (ret) {
			fprintf(stderr, "qemu_bench: run %d: %s\n", i,
				strerror(-ret));
			return 1;
		}
		down[i] = mi.downtime_ms;
		total[i] = mi.total_ms;
		vfio[i] = mi.vfio_bytes;
	}
	printf("qemu_downtime_ms: %llu\n", (unsigned long long)median(down, RUNS));
	printf("qemu_total_ms: %llu\n", (unsigned long long)median(total, RUNS));
	printf("qemu_vfio_bytes: %llu\n", (unsigned long long)median(vfio, RUNS));
	return 0;
}
