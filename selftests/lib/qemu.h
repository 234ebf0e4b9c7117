/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A real VMM in the test bed: Debian 13's QEMU 10 (/usr/bin/qemu10 in the
 * guest, see selftests/vm/mkinitramfs.sh) running a nested VM (L2) whose
 * device is passed through with vfio-pci, driven over QMP as libvirt
 * drives it.
 */
#ifndef VMIG_TEST_QEMU_H
#define VMIG_TEST_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QEMU_BIN	"/usr/bin/qemu10"

struct qmp {
	int fd;
	size_t len;
	char buf[65536];
};

/* Connect to a QMP socket and leave capabilities negotiation. */
int qmp_connect(struct qmp *q, const char *path, int timeout_ms);
/*
 * Run one command (a JSON object) and put its answer (the "return" or
 * "error" line; events are skipped) in @reply. Returns 0 for "return",
 * -EREMOTEIO for "error", or -errno.
 */
int qmp_exec(struct qmp *q, const char *cmd, char *reply, size_t len,
	     int timeout_ms);
void qmp_close(struct qmp *q);

/* One L2 VM: a QEMU 10 process, its QMP socket, serial and log files. */
struct l2vm {
	pid_t pid;
	struct qmp qmp;
	char name[16];
	char qmp_path[64];
	char serial_path[64];
	char log_path[64];
};

struct l2vm_opts {
	const char *name;	/* "src", "dst": names the files in /tmp */
	const char *host;	/* BDF of the device given to vfio-pci */
	const char *vfio_opts;	/* appended to -device vfio-pci,host=... */
	const char *kernel;	/* the multiboot program */
	const char *incoming;	/* -incoming URI, or NULL */
	int mem_mb;
};

int l2vm_start(struct l2vm *vm, const struct l2vm_opts *o);
/* Whether the VM's QEMU still runs. */
bool l2vm_alive(struct l2vm *vm);
/* SIGKILL, reaped; the files stay for the log. */
void l2vm_kill(struct l2vm *vm);
/* "quit" over QMP, then SIGKILL if it has not ended within 5 s. */
void l2vm_stop(struct l2vm *vm);
/*
 * SIGKILL by pid and wait until the process is gone (or a zombie: its
 * files are closed then), from any process: the kselftest harness's
 * parent-side teardown, where neither the QMP fd nor waitpid() is ours.
 */
void l2vm_reap(struct l2vm *vm);
/* The last lines (up to @len bytes) of the VM's QEMU log. */
void l2vm_log_tail(struct l2vm *vm, char *buf, size_t len);

/*
 * The L2 program's progress on its serial port ("edu-guest: iter N ok"):
 * the highest N so far (0 if none); *@failed says whether it printed
 * "FAIL" (the line in @why).
 */
unsigned int l2vm_iter(struct l2vm *vm, bool *failed, char *why, size_t len);
/* Wait until the program's iteration reaches @n; 0, -ETIMEDOUT or -EIO. */
int l2vm_wait_iter(struct l2vm *vm, unsigned int n, int timeout_ms);

/* query-migrate's figures. */
struct qemu_mig_info {
	char status[32];
	uint64_t total_ms, downtime_ms, setup_ms;
	uint64_t ram_bytes, vfio_bytes;
	bool has_vfio;
	char error[256];
	char raw[2048];		/* the reply, for a log */
};

int qemu_query_migrate(struct l2vm *vm, struct qemu_mig_info *mi);
/*
 * Poll query-migrate until the status is completed, failed or cancelled
 * (or @timeout_ms passes: -ETIMEDOUT).
 */
int qemu_wait_migration(struct l2vm *vm, struct qemu_mig_info *mi,
			int timeout_ms);
/*
 * After an L2 VM on edu @bdf ended: wait until the edu's DMA engine is
 * idle. A VM killed mid-transfer leaves the engine running for up to
 * 100 ms, and a running engine ignores writes to its DMA registers (the
 * next user's); the device is opened with bus mastering off, so the
 * transfer lands nowhere. 0, or -errno.
 */
int l2vm_edu_settle(const char *bdf);
/*
 * Whether the kernel lets a VMM start VFIO DMA logging on @bdf (device
 * dirty tracking, what QEMU's enable-migration=auto requires): 1 or 0, or
 * -errno if the device cannot be opened for the probe.
 */
int vfio_dma_logging(const char *bdf);
/* query-status: "running", "postmigrate", "inmigrate", ... */
int qemu_run_state(struct l2vm *vm, char *state, size_t len);

#endif
