/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VMM's side of a live migration between hosts
 * (Documentation/live-migration.rst), for the test VMM (vmm_host):
 *
 *  - lm_nl: the vfio_mig family's "mig" multicast group (phases announced
 *    by migctl or the kernel), acknowledgements, dirty-mark;
 *  - lm_guest: a guest as the VMM runs it: two vCPU threads over guest
 *    RAM, one driving an edu (the edu_wl workload: DMAs both ways and
 *    register activity, results checked against a model), one writing
 *    random RAM pages with patterns it can check later. Everything the
 *    guest knows (the workload's random state and device model, the
 *    generation of each page it wrote) lives in reserved pages of guest
 *    RAM, as a real guest's own memory would, so it migrates with RAM and
 *    the target goes on from it. Every vCPU write is recorded in a
 *    mig_cpu_log, which the VMM reports with dirty-mark.
 */
#ifndef VMIG_TEST_LMVMM_H
#define VMIG_TEST_LMVMM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edu.h"
#include "genl.h"
#include "mig.h"
#include "nvme.h"
#include "vmm.h"

/* ---- netlink: phases, acks, dirty-mark ---- */

struct lm_nl {
	struct genl ev;		/* member of the "mig" group: events only */
	struct genl req;	/* requests: acks, dirty-mark, dirty log */
	uint32_t mcgrp;		/* the group's id */
	size_t rx_len, rx_off;	/* unread messages of the last datagram */
	unsigned long overruns;	/* ENOBUFS: events were lost */
	char err[320];		/* why the last call failed */
};

/* A mig-phase-ntf or mig-ack-ntf event. */
struct lm_event {
	uint8_t cmd;		/* VFIO_MIG_CMD_MIG_PHASE_NTF / _ACK_NTF */
	char bdf[32];
	uint32_t phase, seq, result;
	bool has_result;
	uint32_t nr_ram;	/* ACK_NTF: the RAM ranges the VMM named */
	uint32_t state;		/* MIG_STATE_NTF: the device's new state */
};

/* A range of guest RAM, as a VMM names it in its ack of prepare. */
struct lm_ram {
	uint64_t iova, length;
};

/* Fill @e from one vfio_mig notification @h (mig phase/ack, mig-state). */
void lm_event_parse(const struct nlmsghdr *h, struct lm_event *e);

/* Resolve the family and its "mig" group, subscribe. 0 or -errno. */
int lm_nl_open(struct lm_nl *n);
void lm_nl_close(struct lm_nl *n);
/* The event socket's fd, to poll. */
static inline int lm_nl_fd(const struct lm_nl *n)
{
	return n->ev.fd;
}

/*
 * The next mig event, waiting up to @timeout_ms (0: do not wait).
 * Returns 1 (an event in @e), 0 (none), -ENOBUFS (events were lost: the
 * socket overran; counted in overruns) or another -errno.
 */
int lm_nl_next(struct lm_nl *n, struct lm_event *e, int timeout_ms);
/* mig-ack {bdf, phase, seq, result}: 0 or -errno (ESTALE: not pending). */
int lm_ack(struct lm_nl *n, const char *bdf, uint32_t phase, uint32_t seq,
	   uint32_t result);
/* The same, naming @nr ranges of guest RAM (the ack of prepare). */
int lm_ack_ram(struct lm_nl *n, const char *bdf, uint32_t phase,
	       uint32_t seq, uint32_t result, const struct lm_ram *ram,
	       unsigned int nr);
/* Put @nr RAM ranges into a mig-ack message. */
void lm_put_ram(struct genl_msg *m, const struct lm_ram *ram,
		unsigned int nr);
/*
 * dirty-mark the pages set in @bits (one bit a MIG_PAGE page from @iova,
 * @pages bits), as ranges of consecutive pages, several messages if
 * needed. *@ranges and *@marked (may be NULL) count what was sent.
 * 0 or -errno (then the marks of the failed message and after were not
 * made: the caller keeps them).
 */
int lm_dirty_mark(struct lm_nl *n, const char *bdf, uint64_t iova,
		  const uint64_t *bits, size_t pages, size_t *ranges,
		  size_t *marked);
/*
 * mig-phase {bdf, phase} (what migctl does; for tests): 0 or -errno. The
 * seq the kernel gave comes with the event.
 */
int lm_announce(struct lm_nl *n, const char *bdf, uint32_t phase);
const char *lm_phase_name(uint32_t phase);

/* ---- the guest ---- */

/*
 * Guest RAM layout, from its first IOVA:
 *   0       the edu vCPU's state (struct lm_dstate), 2 pages
 *   8 KiB   the memory vCPU's state (struct lm_mstate), 1 page
 *   12 KiB  a scratch page (reading the device buffer out by DMA)
 *   64 KiB  the pages the memory vCPU writes (lm_guest.npages of them)
 *   then    the edu workload's RAM (its DMAs and its vCPU writes)
 */
#define LM_DSTATE_OFF		0x0000
#define LM_MSTATE_OFF		0x2000
#define LM_SCRATCH_OFF		0x3000
#define LM_RESERVED		0x10000
#define LM_MAX_PAGES		512
#define LM_DMAGIC		0x31474d4c4d474956ull	/* "VIGMLMG1" */
#define LM_MMAGIC		0x314d4d4c4d474956ull	/* "VIGMLMM1" */

/*
 * A guest whose device is an NVMe function (lm_guest_boot_nvme) runs the
 * verified NVMe workload (nvme_wl: two polled I/O queue pairs, commands
 * in flight on both) on its device vCPU instead of edu's. Its driver's
 * image (nvme_image_save) is kept after every step in reserved RAM from
 * LM_NSTATE_OFF, behind this header; the edu state pages stay unused.
 */
#define LM_NSTATE_OFF		0x4000
#define LM_NSTATE_MAX		(LM_RESERVED - LM_NSTATE_OFF)
#define LM_NMAGIC		0x314e4d4c4d474956ull	/* "VIGMLMN1" */
#define LM_NVME_NSID		1
#define LM_NVME_QUEUES		2
#define LM_NVME_QDEPTH		16
#define LM_NVME_WL_DEPTH	8
#define LM_NVME_WL_BASE		16384	/* first LBA of the workload */
#define LM_NVME_WL_BLOCKS	512

struct lm_nstate {
	uint64_t magic;
	uint64_t seed;
	uint64_t steps;
	uint32_t len;		/* bytes of the image that follows */
	uint32_t pad;
};

struct lm_nvme {
	struct nvme_ctrl c;
	struct nvme_wl w;
	struct lm_nstate ns;
	uint8_t *img;		/* LM_NSTATE_MAX bytes: header and image */
	bool verified;		/* the last full read-back held */
};

/* The edu vCPU's state: what the guest knows of its device. */
struct lm_dstate {
	uint64_t magic;
	uint64_t seed;
	uint64_t rng;			/* the workload's random state */
	uint64_t steps, dmas_in, dmas_out, checks, errors;
	uint64_t regs_valid;
	/*
	 * The vCPU was paused in the middle of a step, polling the device
	 * (@regs as read then): the step is run again from its start, on
	 * whichever side resumes (a transfer it started may run twice,
	 * with the same result)
	 */
	uint64_t mid_step;
	struct edu_regs regs;		/* as read after the last step */
	uint8_t buf[EDU_BUF_SIZE];	/* what the device buffer holds */
};

/* The memory vCPU's state: the generation of each page it wrote. */
struct lm_mstate {
	uint64_t magic;
	uint64_t rng;
	uint64_t writes;
	uint32_t npages;
	uint32_t gen[LM_MAX_PAGES];
};

struct lm_guest;

struct lm_vcpu {
	struct lm_guest *g;
	pthread_t tid;
	bool started;
	int (*step)(struct lm_vcpu *v);
	unsigned long steps;
	int err;			/* a device error stopped it */
};

struct lm_guest {
	struct vmm_ram *ram;		/* all of guest RAM */
	struct vmm_ram wlram;		/* the device workload's part of it */
	struct edu *e;			/* the device: edu, or */
	struct lm_nvme *nv;		/* an NVMe function */
	struct edu_wl wl;
	struct mig_cpu_log cpu;		/* every vCPU write since taken */
	struct lm_dstate ds;		/* the vCPUs' copies, written to RAM */
	struct lm_mstate ms;
	uint32_t npages;
	unsigned int page_rate;		/* memory vCPU: pages a second */
	bool edu_only, mem_only;	/* run one vCPU only */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool pause_req, quit;
	/* a vCPU paused in its device poll is to finish that step */
	bool finish_step;
	int parked, running;
	struct lm_vcpu vcpu[2];
	char why[320];			/* the first failure, for the report */
};

/*
 * A new guest on @ram (zeroed by the caller or fresh) driving @e: the
 * workload seeded with @seed, the edu buffer loaded (edu_wl_fill), the
 * state pages written. With @fill, the workload's RAM is first filled with
 * pseudo-random bytes (a guest whose memory is not mostly zero pages).
 * 0 or -errno.
 */
int lm_guest_boot(struct lm_guest *g, struct vmm_ram *ram, struct edu *e,
		  uint64_t seed, unsigned int page_rate, bool fill);
/*
 * A guest whose RAM came from elsewhere (a migration): its state read
 * from the reserved pages, the workload to go on with @e. 0, -EBADMSG (no
 * guest state in RAM) or -errno.
 */
int lm_guest_adopt(struct lm_guest *g, struct vmm_ram *ram, struct edu *e,
		   unsigned int page_rate);
/*
 * The same for an NVMe guest on device @d: the controller brought up in
 * the workload's RAM, its queues created, the workload's blocks written
 * once; or adopted from RAM (the device must be the one the migration
 * restored: it is not reset). 0 or -errno, g->why says why.
 */
int lm_guest_boot_nvme(struct lm_guest *g, struct vmm_ram *ram,
		       struct vmm_dev *d, uint64_t seed,
		       unsigned int page_rate);
int lm_guest_adopt_nvme(struct lm_guest *g, struct vmm_ram *ram,
			struct vmm_dev *d, unsigned int page_rate);
void lm_guest_free(struct lm_guest *g);
/* The device vCPU's steps, results checked and wrong (edu or NVMe). */
uint64_t lm_guest_steps(const struct lm_guest *g);
unsigned long lm_guest_checks(const struct lm_guest *g);
unsigned long lm_guest_errors(const struct lm_guest *g);
/* Start both vCPUs; stop (park) them, waiting for a step in flight; go on. */
int lm_guest_start(struct lm_guest *g);
void lm_guest_pause(struct lm_guest *g);
void lm_guest_resume(struct lm_guest *g);
/* Stop and join the vCPUs. */
void lm_guest_stop(struct lm_guest *g);
/* A vCPU stopped on a device error: its -errno, else 0. */
int lm_guest_error(struct lm_guest *g);

/*
 * Checks of a stopped guest (false and g->why on a failure):
 *  - lm_guest_check_pages(): every page the memory vCPU wrote holds the
 *    pattern of its generation, the others are zero;
 *  - lm_guest_check_model(): the workload counted no wrong result;
 *  - lm_guest_check_regs(): the device's registers are those the guest
 *    read last (its state after a migration);
 *  - lm_guest_check_buffer(): the device buffer, read out by DMA through
 *    the scratch page, is the guest's model of it (it takes two DMAs).
 * For an NVMe guest, the registers are the controller's enable and its
 * admin queue (CC.EN, CSTS.RDY, AQA, ASQ, ACQ: @now is not filled), and
 * the buffer check waits for every command in flight and reads every
 * block of the workload back, each checked against the newest generation
 * written.
 */
bool lm_guest_check_pages(struct lm_guest *g);
bool lm_guest_check_model(struct lm_guest *g);
bool lm_guest_check_regs(struct lm_guest *g, struct edu_regs *now);
bool lm_guest_check_buffer(struct lm_guest *g);

/*
 * A digest of guest RAM (64-bit FNV-1a over 64-bit words), but the page
 * the VMM lends the device (LM_SCRATCH_OFF: a shadow's hand-back moves
 * edu's buffer through it while the guest runs; no guest state).
 */
uint64_t lm_ram_digest(const struct vmm_ram *ram);

#endif
