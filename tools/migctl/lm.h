/* SPDX-License-Identifier: GPL-2.0 */
/*
 * migctl live migration between hosts: `migctl migrate` (source, lm_src.c)
 * and `migctl listen` (target, lm_dst.c). The kernel is reached only
 * through struct lm_dev (lm_kernel.c: /dev/vfio-mig and the vfio_mig
 * netlink family), so the protocol runs against a fake in the unit tests.
 * Documentation/live-migration.rst describes the whole.
 */
#ifndef MIGCTL_LM_H
#define MIGCTL_LM_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "json.h"
#include "tls.h"
#include "wire.h"

/* Exit codes of migrate and listen (besides 2, usage). */
#define LM_EXIT_OK		0
#define LM_EXIT_FAILED		1	/* rolled back */
#define LM_EXIT_UNCONFIRMED	3	/* committed, outcome not confirmed */
#define LM_EXIT_ROLLBACK_FAILED	4	/* failed, rollback incomplete */
/*
 * lm_target_run() only, never a process's exit code: the peer failed the
 * TLS handshake or is not allowed here; nothing was touched, and `listen
 * --once` goes on waiting for a migration.
 */
#define LM_EXIT_NOT_SERVED	10

/* VFIO migration states (enum vfio_device_mig_state). */
enum {
	LM_ST_ERROR, LM_ST_STOP, LM_ST_RUNNING, LM_ST_STOP_COPY, LM_ST_RESUMING,
	LM_ST_RUNNING_P2P, LM_ST_PRE_COPY, LM_ST_PRE_COPY_P2P,
};
/* VFIO_MIGRATION_PRE_COPY, which headers before 6.2 lack */
#define LM_MIGRATION_PRE_COPY	(1u << 2)
const char *lm_state_name(uint32_t s);
const char *lm_phase_name(uint32_t phase);

/* ---- the kernel, behind an interface ---- */

struct lm_dev;

/* A shadow-get's answer (lm_dev_ops.shadow). */
struct lm_shadow {
	bool available;			/* a shadow for the device's profile */
	bool engaged;			/* one serves the device's guest */
	uint64_t engage_ns;		/* the last engage held the guest this long */
};

/* One dirty-get reply: a bitmap of @len bytes of IOVA from @iova. */
typedef void (*lm_dirty_fn)(void *arg, uint64_t iova, uint64_t len,
			    uint64_t page_size, const uint64_t *bits,
			    size_t nbits);

/* One VFIO_MIG_CTL_STAGE: @count <= WIRE_BATCH pages. */
struct lm_stage {
	const uint64_t *iovas;
	uint64_t *hashes;		/* in: what the target holds (0: unknown); out */
	uint8_t *kinds;			/* out: VFIO_MIG_CTL_STAGE_* */
	uint64_t *sums;			/* out: the data pages' block hashes; NULL: none */
	const unsigned char *key;	/* MH_KEY_BYTES */
	uint32_t count;
	uint32_t ndata;			/* out */
};

struct lm_dev_ops {
	/* Identity of @bdf (netlink dev-get, sysfs); @open: a VMM has it. */
	int (*ident)(struct lm_dev *d, const char *bdf, struct mig_ident *id,
		     bool *open);
	int (*attach)(struct lm_dev *d, const char *bdf);
	/* STATE_SET; a data fd the arc opens replaces the one held. */
	int (*set_state)(struct lm_dev *d, uint32_t state);
	int (*get_state)(struct lm_dev *d, uint32_t *state);
	/* The held data fd: bytes read, 0 at the end, -ENOMSG/-EAGAIN: none now. */
	ssize_t (*stream_read)(struct lm_dev *d, void *buf, size_t len);
	int (*stream_write)(struct lm_dev *d, const void *buf, size_t len);
	/* VFIO_MIG_CTL_PAGES, @count <= WIRE_BATCH. */
	int (*pages)(struct lm_dev *d, bool write, const uint64_t *iovas,
		     uint32_t count, void *buf);
	/*
	 * VFIO_MIG_CTL_STAGE_FD: a staging fd, or -errno (the pages then go
	 * through @pages). NULL: the backend has none.
	 */
	int (*stage_fd)(struct lm_dev *d);
	/* VFIO_MIG_CTL_STAGE on the staging fd @fd. */
	int (*stage)(struct lm_dev *d, int fd, struct lm_stage *st);
	/*
	 * VFIO_MIG_CTL_LAND on the staging fd @fd: the next @count pages
	 * written to it land at @iovas (@sums: their block hashes taken);
	 * then VFIO_MIG_CTL_LANDED: the bytes landed and, with @sums, their
	 * hashes. NULL: the backend has none (pages go through @pages).
	 */
	int (*land)(struct lm_dev *d, int fd, const uint64_t *iovas,
		    uint32_t count, bool sums);
	int (*landed)(struct lm_dev *d, int fd, uint64_t *bytes,
		      uint64_t *sums);
	int (*commit)(struct lm_dev *d, bool stopped);
	/*
	 * VFIO_MIG_CTL_PREPARE, in PRE_COPY: DMA held, the device's slow
	 * state queued on the data fd. -EOPNOTSUPP, -ENXIO: the device has
	 * none to move or no page to borrow (the stop then moves it). NULL:
	 * the backend has no such step.
	 */
	int (*prepare)(struct lm_dev *d);
	/* Announce @phase and wait for the VMM's ack: its result in *@result. */
	int (*phase)(struct lm_dev *d, uint32_t phase, int timeout_ms,
		     uint32_t *result);
	/* Whole-log dirty-get, optionally clearing. */
	int (*dirty)(struct lm_dev *d, bool clear, lm_dirty_fn fn, void *arg);
	/* Close the control fd (uncommitted: the kernel rolls back). */
	void (*detach)(struct lm_dev *d);
	/*
	 * Close the control fd uncommitted: the kernel rolls the device back
	 * to RUNNING and announces abort itself; wait for the VMM's ack of
	 * that abort. (The target's way out of RESUMING, which has no arc
	 * back to RUNNING.)
	 */
	int (*release)(struct lm_dev *d, int timeout_ms, uint32_t *result);
	/*
	 * May a source device @src, whose guest uses @needs (@needs_len
	 * bytes, the source's needs op; 0: none), migrate onto @bdf? The
	 * device's profile in the kernel decides (netlink dev-compat), as it
	 * will check the stream's header; for an nvme VF the backend first
	 * learns from the VF's PF what the kernel cannot (nvme_pf.c). 0: yes
	 * (*@tolerated: a difference was tolerated; what was not checked in
	 * @notes); 1: no, why in @why; -errno: could not ask (d->err). NULL:
	 * the backend has no kernel to ask.
	 */
	int (*compat)(struct lm_dev *d, const char *bdf,
		      const struct mig_ident *src, const uint8_t *needs,
		      size_t needs_len, bool *tolerated, char *why,
		      size_t why_len, char *notes, size_t notes_len);
	/*
	 * What the guest uses of @bdf, as its profile in the kernel says
	 * (netlink dev-needs): bytes written to @buf (at most @len; 0: the
	 * profile keeps no such record), or -errno (d->err). NULL: none.
	 */
	int (*needs)(struct lm_dev *d, const char *bdf, uint8_t *buf,
		     size_t len);
	/*
	 * The shadow adapter of @bdf (netlink shadow-attach, shadow-detach,
	 * shadow-get: @cmd VFIO_MIG_CMD_SHADOW_*); a get's answer in *@sh.
	 * 0 or -errno, the kernel's reason in d->err.
	 */
	int (*shadow)(struct lm_dev *d, const char *bdf, uint8_t cmd,
		      struct lm_shadow *sh);
};

/* The most RAM ranges a VMM names (the kernel's VMIG_RAM_RANGES_MAX). */
#define LM_RAM_MAX	64

struct lm_dev {
	const struct lm_dev_ops *ops;
	void *priv;
	volatile sig_atomic_t *stop;
	int timeout_ms;			/* a stream write's wait (0: 10 s) */
	uint32_t seq;			/* the kernel's seq of the last phase */
	/* the guest RAM the VMM named in its ack of prepare (mig-ack ram) */
	struct wire_range ram[LM_RAM_MAX];
	uint32_t nr_ram;
	char err[384];			/* why the last op failed */
};

/* The real one: /dev/vfio-mig and netlink. 0 or exit code 1 (printed). */
int lm_kernel_open(struct lm_dev *d, volatile sig_atomic_t *stop);
void lm_kernel_close(struct lm_dev *d);
/* This machine's identity fields that are not the device's. */
void lm_local_ident(struct mig_ident *id);

/* ---- compatibility (compat.c) ---- */

/*
 * Compare the source's and the target's identity: the wire's own fields
 * (protocol and stream major versions, page size), and the identity
 * fields every profile needs equal, named with both values. Returns 0
 * when those allow a migration (other differences listed in @notes),
 * else fills @r with the first mismatch (field, both values, reason) and
 * returns 1. Whether the remaining differences (revision, subsystem ids)
 * are tolerated is the target profile's decision: the target asks its
 * kernel (lm_dev_ops.compat) before it accepts.
 */
int lm_compat_check(const struct mig_ident *src, const struct mig_ident *dst,
		    struct wire_refuse *r, char *notes, size_t notes_len);

/* ---- convergence (conv.c) ---- */

struct lm_conv {
	uint64_t bw;			/* bytes/s measured (0: unknown) */
	uint64_t bw_limit;		/* --bandwidth (0: none) */
	uint64_t overhead_ms;		/* fixed switchover cost measured */
	uint64_t state_bytes;		/* device state estimate */
	uint64_t downtime_ms;		/* --downtime-ms */
	uint32_t max_rounds;		/* --max-rounds */
	bool force;			/* --on-max-rounds switchover */
};

enum lm_decision {
	LM_CONTINUE,			/* another round */
	LM_SWITCH,			/* converged */
	LM_SWITCH_FORCED,		/* max rounds, switch over anyway */
	LM_GIVE_UP,			/* max rounds, abort */
};

/* Fold one round's streaming: @bytes in @us microseconds. */
void lm_conv_measure(struct lm_conv *c, uint64_t bytes, uint64_t us);
/* Downtime estimate (ms) with @pending dirty pages left. */
uint64_t lm_conv_estimate(const struct lm_conv *c, uint64_t pending);
/* After @rounds rounds, with @pending pages pending. */
enum lm_decision lm_conv_decide(const struct lm_conv *c, uint32_t rounds,
				uint64_t pending, uint64_t *est_ms);

/* ---- options, output ---- */

/* The devices of one VM one migration takes (wire 1.4). */
#define LM_DEVS_MAX	WIRE_DEVS_MAX

struct lm_opts {
	/*
	 * migrate: the devices as given (BDF[,BDF...]), for messages, and
	 * one by one: devs[i] goes to target_devs[i]. ndev 0: dev and
	 * target_dev are one BDF each.
	 */
	const char *dev, *target_dev;
	const char *devs[LM_DEVS_MAX], *target_devs[LM_DEVS_MAX];
	unsigned int ndev;
	const char *host;		/* migrate --to */
	uint16_t port;
	const char *address;		/* listen --address */
	bool once;
	uint32_t downtime_ms, max_rounds;
	uint64_t bandwidth;		/* bytes/s, 0: unlimited */
	bool force_switchover;
	bool via_shadow;		/* migrate --via-shadow */
	bool copy_pages;		/* migrate --copy-pages: not staged */
	uint32_t timeout_ms, vmm_timeout_ms;
	/* the channel's security (tls.h) */
	struct tls_ctx *tls;		/* NULL: --insecure, plain TCP */
	const char *tls_name;		/* migrate: the target's certificate name */
	const char *const *allow_peer;	/* listen: peer identities (none: any) */
	unsigned int n_allow_peer;
	const char *const *allow_dev;	/* listen: devices a migration may take */
	unsigned int n_allow_dev;
	/*
	 * listen's child: a byte goes to this pipe when the migration begins
	 * (HELLO accepted by the allow-lists, before the device is touched);
	 * until then listen may evict the connection. <= 0: none.
	 */
	int begun_fd;
	int handshake_ms;		/* the TLS handshake's deadline (0: timeout_ms) */
	/*
	 * Inside TLS, check and make payload checksums all the same, as a
	 * peer before wire 1.3 (MIGCTL_TLS_CHECK_SUMS=1; tests).
	 */
	bool check_sums;
	/*
	 * listen: opens the backend of a migration's second and later
	 * devices (lm_kernel_open); NULL: lm_target_run() has only the
	 * backends it was given.
	 */
	int (*dev_open)(struct lm_dev *d, volatile sig_atomic_t *stop);
};



struct lm_out {
	struct json_out *js;		/* enabled: one event per line */
	const char *role;		/* "source" / "target" */
	FILE *text;			/* progress lines (stdout) */
	unsigned int conn;		/* listen: the connection's number */
};

/* Timeouts: the largest an option or a peer's HELLO may ask for. */
#define LM_TIMEOUT_MAX	3600000u

/*
 * Secure the connection before anything else crosses it: the TLS
 * handshake within o->timeout_ms (both sides) and an event saying how the
 * link is protected ("secured", or "insecure" without TLS). 0 or -errno,
 * c->err says why.
 */
int lm_secure(struct wire_conn *c, const struct lm_opts *o, bool server,
	      struct lm_out *out);

/* Begin an event object ("event", "role"); end with lm_ev_end(). */
void lm_ev_begin(struct lm_out *o, const char *event);
void lm_ev_end(struct lm_out *o);
void lm_ev_double(struct lm_out *o, const char *key, double v);

/* Statistics of one migration (the summary). */
struct lm_stats {
	uint32_t rounds;
	uint64_t pages_sent, zero_pages, unchanged_pages, pages_seen;
	uint64_t page_bytes, page_us;	/* PAGES frames, time streaming them */
	uint64_t stream_bytes;
	uint64_t t_start_us, t_pause_us, t_end_us;
};

/*
 * The source: migrate over connected @fd the devices of @o, through the
 * backends @d[0] to @d[ndev - 1] (one per device; @d[0] reads the
 * guest's pages). Returns an LM_EXIT_* code.
 */
int lm_source_run(const struct lm_opts *o, struct lm_dev *d, int fd,
		  struct lm_out *out, volatile sig_atomic_t *stop);
/*
 * The target: one migration on accepted @fd, of as many devices as its
 * HELLO names: @d[0] to @d[@nd - 1] are backends (@d[0] open; one whose
 * ops are NULL is opened with o->dev_open when a device needs it, and
 * left open for the caller to close). Returns an LM_EXIT_* code.
 */
int lm_target_run(const struct lm_opts *o, struct lm_dev *d, unsigned int nd,
		  int fd, struct lm_out *out, volatile sig_atomic_t *stop);

/* CLI (lm_cmd.c) */
int migctl_migrate(struct json_out *js, int argc, char **argv);
int migctl_listen(struct json_out *js, int argc, char **argv);
/* --to: HOST, HOST:PORT, IPv6, or [IPv6]:PORT (port kept if none). 0 or -1. */
int lm_parse_to(const char *arg, char *host, size_t len, uint16_t *port);
/* "20M" -> bytes/s; 0 or -1. */
int lm_parse_rate(const char *s, uint64_t *v);

uint64_t lm_now_us(void);
/*
 * @fn on each of the @n items of @size bytes at @items: in a thread each
 * when there are several (an item whose thread does not start runs here),
 * all done on return. The devices' stops and loads.
 */
void lm_each(void *(*fn)(void *), void *items, size_t size, unsigned int n);

#endif
