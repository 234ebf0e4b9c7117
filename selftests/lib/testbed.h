/* SPDX-License-Identifier: GPL-2.0 */
/* What the VM test bed provides: its devices and the project's modules. */
#ifndef VMIG_TESTBED_H
#define VMIG_TESTBED_H

#include "vmm.h"

#define TB_NVME_VENDOR	0x1b36
#define TB_NVME_DEVICE	0x0010
#define TB_DRIVER	"vfio-mig"
/* VFs of the NVMe PF (guest-lib.sh provisions both, one namespace shared) */
#define TB_NR_VF	2

struct tb_devs {
	char edu[2][32];
	int nr_edu;
	char vf[TB_NR_VF][32];
	int nr_vf;
};

/* Discover the test bed's two edus and its NVMe VFs; returns 0 or -errno. */
int tb_devices(struct tb_devs *t);
/* Load (finit_module) or unload (delete_module) one of our modules. */
int tb_module_load(const char *name);
int tb_module_unload(const char *name);
bool tb_module_loaded(const char *name);
/* Module reference count from /sys/module/NAME/refcnt, or -errno. */
int tb_module_refcnt(const char *name);
/* The loopback interface up (the guest's init leaves it down): 0 or -errno. */
int tb_lo_up(void);
/*
 * A connected TCP pair over loopback (brought up first), close-on-exec:
 * @fds[0] connected, @fds[1] accepted. 0, or -errno (nothing left open).
 */
int tb_tcp_pair(int fds[2]);
/*
 * @len bytes of anonymous memory at *@mem whose pages fault until the
 * caller resolves them (a userfaultfd in missing mode, non-blocking):
 * returns the userfaultfd, or -errno (nothing left open).
 */
int tb_uffd_region(size_t len, void **mem);
/* The next page fault on @uffd within @ms, consumed: 0 or -errno. */
int tb_uffd_next_fault(int uffd, int ms);

#endif
