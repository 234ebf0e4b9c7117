// SPDX-License-Identifier: GPL-2.0
/*
 * A real VMM: Debian 13's QEMU 10 migrates a nested VM whose edu is bound
 * to vfio-mig, as an operator's libvirt would drive it (QMP). Both QEMUs
 * run in this guest: the source with -device vfio-pci,host=<edu A>, the
 * destination with <edu B> and -incoming. The nested VM runs
 * edu_guest.elf (guest/), which checks every liveness, factorial and DMA
 * result and counts its rounds on its serial port; the count lives in
 * guest RAM, so the destination's first round follows the source's last.
 *
 *  - migrate: migration completes, the program goes on on the destination
 *    with every result right (and the device buffer it wrote on the
 *    source), the source stays in postmigrate; QEMU's figures printed;
 *  - migrate_auto: without enable-migration=on QEMU needs device dirty
 *    tracking (VFIO DMA logging): where the kernel offers it (6.1) the
 *    migration completes, where it does not (Debian's 6.12) QEMU refuses
 *    to migrate and the VM keeps running;
 *  - cancel, target_killed: migrate_cancel mid-way and a destination that
 *    dies mid-way leave the source running with a working device;
 *  - modules_alias: modules.alias names the profiles' devices only.
 *
 * Each case runs in trap modes sparse and all (FIXTURE_VARIANT). The
 * migration runs with QEMU's default parameters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "qemu.h"
#include "testbed.h"

#define L2_PROGRAM	"/tests/qemu/edu_guest.elf"
#define MIG_SOCK	"/tmp/l2-mig.sock"
#define MIG_URI		"unix:" MIG_SOCK
#define ROUNDS_BEFORE	3	/* rounds the source runs before migrating */
#define ROUNDS_AFTER	3	/* rounds each side must run afterwards */
#define BOOT_MS		90000
#define ROUNDS_MS	60000
#define MIGRATE_MS	240000

FIXTURE(qemu) {
	struct tb_devs t;
	struct l2vm src, dst;
	bool logging;	/* the kernel offers VFIO DMA logging */
};

FIXTURE_VARIANT(qemu) {
	const char *trap;
};

FIXTURE_VARIANT_ADD(qemu, sparse) {
	.trap = "sparse",
};

FIXTURE_VARIANT_ADD(qemu, all) {
	.trap = "all",
};

/* Trap mode @mode, once the previous case's QEMU has let go (EBUSY). */
static int set_trap(const char *bdf, const char *mode)
{
	char path[128];
	int i, ret;

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/trap_mode", bdf);
	for (i = 0; i < 100; i++) {
		ret = vmm_sysfs_write(path, mode);
		if (ret != -EBUSY)
			break;
		usleep(100000);
	}
	return ret;
}

FIXTURE_SETUP(qemu)
{
	int i;

	if (access(QEMU_BIN, X_OK))
		SKIP(return, "no %s in this test bed", QEMU_BIN);
	ASSERT_EQ(0, tb_devices(&self->t));
	ASSERT_EQ(2, self->t.nr_edu);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vmm_bind(self->t.edu[i], TB_DRIVER));
		ASSERT_EQ(0, set_trap(self->t.edu[i], variant->trap));
	}
	self->src.pid = self->dst.pid = 0;
	self->src.qmp.fd = self->dst.qmp.fd = -1;
	i = vfio_dma_logging(self->t.edu[0]);
	ASSERT_LE(0, i);
	self->logging = i;
}

static void show_log(struct __test_metadata *_metadata, struct l2vm *vm)
{
	char tail[2048];

	if (!vm->name[0])
		return;
	l2vm_log_tail(vm, tail, sizeof(tail));
	if (tail[0])
		TH_LOG("%s QEMU log:\n%s", vm->name, tail);
}

/*
 * In the harness's parent process, so that it runs whatever the test did
 * (an ASSERT in the test process may skip a teardown there); the fixture
 * is shared memory, the QEMUs are the test process's children.
 */
FIXTURE_TEARDOWN_PARENT(qemu)
{
	if (!__test_passed(_metadata)) {
		show_log(_metadata, &self->src);
		show_log(_metadata, &self->dst);
	}
	l2vm_reap(&self->src);
	l2vm_reap(&self->dst);
	unlink(MIG_SOCK);
	/* the next case (or suite) finds the edus idle */
	if (self->t.nr_edu == 2) {
		EXPECT_EQ(0, l2vm_edu_settle(self->t.edu[0]));
		EXPECT_EQ(0, l2vm_edu_settle(self->t.edu[1]));
	}
}

static int start_vm(struct l2vm *vm, const char *name, const char *host,
		    const char *vfio_opts, const char *incoming)
{
	struct l2vm_opts o = {
		.name = name, .host = host, .vfio_opts = vfio_opts,
		.kernel = L2_PROGRAM, .incoming = incoming, .mem_mb = 32,
	};

	return l2vm_start(vm, &o);
}

static int qmp(struct l2vm *vm, const char *cmd, char *reply, size_t len)
{
	return qmp_exec(&vm->qmp, cmd, reply, len, 30000);
}

/* The source runs its program for ROUNDS_BEFORE rounds; the target waits. */
static void start_pair(struct __test_metadata *_metadata,
		       FIXTURE_DATA(qemu) *self, const char *vfio_opts)
{
	ASSERT_EQ(0, start_vm(&self->src, "src", self->t.edu[0], vfio_opts,
			      NULL));
	ASSERT_EQ(0, l2vm_wait_iter(&self->src, ROUNDS_BEFORE, BOOT_MS));
	ASSERT_EQ(0, start_vm(&self->dst, "dst", self->t.edu[1], vfio_opts,
			      MIG_URI));
}

static void migrate(struct __test_metadata *_metadata, struct l2vm *src)
{
	char reply[4096];

	ASSERT_EQ(0, qmp(src, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"" MIG_URI "\"}}",
			 reply, sizeof(reply))) TH_LOG("%s", reply);
}

/* The program on @vm goes on past round @after, every result right. */
static void runs_on(struct __test_metadata *_metadata, struct l2vm *vm,
		    unsigned int after)
{
	char why[256] = "";
	bool failed;
	int ret;

	ret = l2vm_wait_iter(vm, after + ROUNDS_AFTER, ROUNDS_MS);
	l2vm_iter(vm, &failed, why, sizeof(why));
	ASSERT_FALSE(failed) TH_LOG("%s: %s", vm->name, why);
	ASSERT_EQ(0, ret) TH_LOG("%s: stuck at round %u", vm->name,
				 l2vm_iter(vm, &failed, NULL, 0));
}

/*
 * The run state becomes @want within a second: QEMU reports the migration
 * "completed" while the source may still be in finish-migrate.
 */
static void state_is(struct __test_metadata *_metadata, struct l2vm *vm,
		     const char *want)
{
	char state[64] = "";
	int i;

	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, qemu_run_state(vm, state, sizeof(state)));
		if (!strcmp(want, state))
			return;
		usleep(10000);
	}
	ASSERT_STREQ(want, state);
}

/* Migrate and check both sides; returns QEMU's figures in @mi. */
static void migrate_ok(struct __test_metadata *_metadata,
		       FIXTURE_DATA(qemu) *self, struct qemu_mig_info *mi)
{
	unsigned int last;
	bool failed;

	migrate(_metadata, &self->src);
	ASSERT_EQ(0, qemu_wait_migration(&self->src, mi, MIGRATE_MS))
		TH_LOG("%s", mi->raw);
	ASSERT_STREQ("completed", mi->status) TH_LOG("%s", mi->error);
	ASSERT_TRUE(mi->has_vfio);
	ASSERT_LT(0, mi->vfio_bytes);
	state_is(_metadata, &self->src, "postmigrate");
	last = l2vm_iter(&self->src, &failed, NULL, 0);
	ASSERT_FALSE(failed);
	runs_on(_metadata, &self->dst, last);
	state_is(_metadata, &self->dst, "running");
	TH_LOG("source stopped after round %u, target at round %u; total %llu ms, downtime %llu ms, setup %llu ms, RAM %llu bytes, VFIO %llu bytes",
	       last, l2vm_iter(&self->dst, &failed, NULL, 0),
	       (unsigned long long)mi->total_ms,
	       (unsigned long long)mi->downtime_ms,
	       (unsigned long long)mi->setup_ms,
	       (unsigned long long)mi->ram_bytes,
	       (unsigned long long)mi->vfio_bytes);
}

TEST_F_TIMEOUT(qemu, migrate, 400)
{
	struct qemu_mig_info mi;

	start_pair(_metadata, self, "enable-migration=on");
	migrate_ok(_metadata, self, &mi);
}

TEST_F_TIMEOUT(qemu, migrate_auto, 400)
{
	bool logging = self->logging;
	struct qemu_mig_info mi;
	char reply[4096];
	unsigned int at;
	bool failed;

	TH_LOG("device dirty tracking (VFIO DMA logging): %s",
	       logging ? "yes" : "no");
	start_pair(_metadata, self, NULL);
	if (logging) {
		migrate_ok(_metadata, self, &mi);
		return;
	}
	/* QEMU puts a migration blocker on a device it cannot track */
	ASSERT_EQ(-EREMOTEIO, qmp(&self->src, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"" MIG_URI "\"}}",
				  reply, sizeof(reply)));
	ASSERT_NE(NULL, strstr(reply, "dirty tracking")) TH_LOG("%s", reply);
	TH_LOG("QEMU refuses: %s", reply);
	state_is(_metadata, &self->src, "running");
	at = l2vm_iter(&self->src, &failed, NULL, 0);
	runs_on(_metadata, &self->src, at);
}

/*
 * Start a migration that cannot finish (4 KiB/s, and a downtime limit of
 * 1 ms that the pages the program dirties never fit), and wait until it
 * moves data.
 */
static void migrate_slowly(struct __test_metadata *_metadata,
			   FIXTURE_DATA(qemu) *self)
{
	struct qemu_mig_info mi;
	char reply[4096];
	int i;

	ASSERT_EQ(0, qmp(&self->src,
			 "{\"execute\": \"migrate-set-parameters\", \"arguments\": {\"max-bandwidth\": 4096, \"downtime-limit\": 1}}",
			 reply, sizeof(reply))) TH_LOG("%s", reply);
	migrate(_metadata, &self->src);
	for (i = 0; i < 300; i++) {
		ASSERT_EQ(0, qemu_query_migrate(&self->src, &mi));
		if (!strcmp(mi.status, "active") && mi.ram_bytes)
			break;
		ASSERT_STRNE("completed", mi.status);
		ASSERT_STRNE("failed", mi.status);
		usleep(100000);
	}
	ASSERT_STREQ("active", mi.status);
	usleep(500000);
}

/* After a migration that did not complete: the source goes on. */
static void source_goes_on(struct __test_metadata *_metadata,
			   FIXTURE_DATA(qemu) *self, const char *status)
{
	struct qemu_mig_info mi;
	unsigned int at;
	bool failed;

	ASSERT_EQ(0, qemu_wait_migration(&self->src, &mi, MIGRATE_MS));
	ASSERT_STREQ(status, mi.status) TH_LOG("%s", mi.error);
	state_is(_metadata, &self->src, "running");
	at = l2vm_iter(&self->src, &failed, NULL, 0);
	runs_on(_metadata, &self->src, at);
	TH_LOG("migration %s; the source went on from round %u to %u", status,
	       at, l2vm_iter(&self->src, &failed, NULL, 0));
}

TEST_F_TIMEOUT(qemu, cancel, 400)
{
	char reply[4096];

	start_pair(_metadata, self, "enable-migration=on");
	migrate_slowly(_metadata, self);
	ASSERT_EQ(0, qmp(&self->src, "{\"execute\": \"migrate_cancel\"}",
			 reply, sizeof(reply))) TH_LOG("%s", reply);
	source_goes_on(_metadata, self, "cancelled");
}

TEST_F_TIMEOUT(qemu, target_killed, 400)
{
	start_pair(_metadata, self, "enable-migration=on");
	migrate_slowly(_metadata, self);
	l2vm_kill(&self->dst);
	source_goes_on(_metadata, self, "failed");
}

/*
 * modules.alias: vfio_pci: entries for the devices a profile serves (edu,
 * QEMU's NVMe controller),
 * none that matches every device (libvirt would then pick vfio-mig for
 * all of them).
 */
TEST(modules_alias)
{
	char path[256], line[512];
	bool edu = false, nvme = false;
	struct utsname u;
	FILE *f;

	uname(&u);
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.alias",
		 u.release);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, " vfio_mig"))
			continue;
		if (strstr(line, "alias vfio_pci:v00001234d000011E8sv*sd*bc*sc*i* vfio_mig"))
			edu = true;
		if (strstr(line, "alias vfio_pci:v00001B36d00000010sv*sd*bc*sc*i* vfio_mig"))
			nvme = true;
		EXPECT_EQ(NULL, strstr(line, "vfio_pci:v*d*")) TH_LOG("%s", line);
	}
	fclose(f);
	EXPECT_TRUE(edu);
	EXPECT_TRUE(nvme);
}

TEST_HARNESS_MAIN
