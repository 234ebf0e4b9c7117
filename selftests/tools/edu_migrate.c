// SPDX-License-Identifier: GPL-2.0
/*
 * edu_migrate SRC_BDF DST_BDF [--rounds N] [--seconds S] [--seed N]
 *
 * A live migration in one guest, shown as it happens: the test VMM runs
 * a random edu workload (DMAs both ways, register activity, vCPU writes
 * to guest RAM) on edu SRC, and migrates it to edu DST through the VFIO
 * migration uAPI only, with RAM copied in rounds from the device's DMA
 * dirty log merged with the vCPU's own record. It then checks that the
 * target's RAM, registers and buffer are the source's, and goes on with
 * the workload on DST, checking every result against its model.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edu.h"
#include "mig.h"

#define RAM_IOVA	0x100000ull
#define RAM_SIZE	(8ull << 20)

static struct mig_side src, dst;
static struct edu esrc, edst;
static struct edu_wl wl;
static struct mig_cpu_log cpu;
static atomic_int pause_req, paused;
static int wl_err;

static void vcpu_write(void *priv, uint64_t iova, const void *p, size_t len)
{
	(void)priv;
	mig_vcpu_write(&cpu, wl.ram, iova, p, len);
}

/* The "vCPU": the workload, until asked to pause. */
static void *vcpu(void *arg)
{
	(void)arg;
	while (!atomic_load(&pause_req)) {
		int ret = edu_wl_step(&wl);

		if (ret) {
			wl_err = ret;
			break;
		}
	}
	atomic_store(&paused, 1);
	return NULL;
}

static double ms_since(uint64_t t0)
{
	return (vmm_now_us() - t0) / 1000.0;
}

static int fail(const char *what, int err)
{
	printf("FAILED: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

/* The device's buffer, read out by DMA through the first page of RAM. */
static int buffer_of(struct edu *e, struct mig_side *s, uint8_t *out)
{
	uint32_t off, n;
	int ret = 0;

	for (off = 0; off < EDU_BUF_SIZE - 1 && !ret; off += n) {
		n = EDU_BUF_SIZE - 1 - off;
		if (n > EDU_DMA_MAX)
			n = EDU_DMA_MAX;
		ret = edu_dma(e, true, RAM_IOVA + off, off, n, false, 5000);
	}
	memcpy(out, mig_host(s, RAM_IOVA), EDU_BUF_SIZE - 1);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned int max_rounds = 6, seconds = 3, i;
	uint64_t seed = 1, t0, t_pause, flags = 0, dsize = 0;
	size_t words = mig_bitmap_words(RAM_SIZE);
	struct mig_buf stream = {};
	struct edu_regs ra, rb;
	struct mig_dirty log;
	bool precopy;
	pthread_t th;
	uint64_t *merged;
	long pages;
	int fd = -1, ret;

	if (argc < 3) {
		fprintf(stderr, "usage: %s SRC_BDF DST_BDF [--rounds N] [--seconds S] [--seed N]\n",
			argv[0]);
		return 2;
	}
	for (i = 3; i + 1 < (unsigned int)argc; i += 2) {
		if (!strcmp(argv[i], "--rounds"))
			max_rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[i + 1], NULL, 0);
	}
	merged = calloc(words, sizeof(*merged));
	if (!merged)
		return 1;

	ret = mig_side_open(&src, argv[1], "sparse", RAM_IOVA, RAM_SIZE);
	if (!ret)
		ret = mig_side_open(&dst, argv[2], "sparse", RAM_IOVA, RAM_SIZE);
	if (!ret)
		ret = edu_probe(&esrc, &src.d, false);
	if (!ret)
		ret = edu_probe(&edst, &dst.d, false);
	if (ret)
		return fail("opening the two edus", ret);
	ret = mig_features(&src.d, &flags);
	if (ret)
		return fail("VFIO_DEVICE_FEATURE_MIGRATION", ret);
	precopy = flags & VFIO_MIGRATION_PRE_COPY;
	printf("source %s -> target %s; migration flags:%s%s%s\n", argv[1],
	       argv[2], flags & VFIO_MIGRATION_STOP_COPY ? " STOP_COPY" : "",
	       flags & VFIO_MIGRATION_P2P ? " P2P" : "",
	       precopy ? " PRE_COPY" : "");

	/* the guest: RAM the vCPU fills, then the workload */
	mig_cpu_log_init(&cpu, &src.ram);
	edu_wl_init(&wl, &esrc, &src.ram, seed);
	wl.vcpu_write = vcpu_write;
	ret = edu_wl_fill(&wl);
	if (ret)
		return fail("loading the edu buffer", ret);
	ret = mig_dirty_start(&log, &src.d, RAM_IOVA, RAM_SIZE, false);
	if (ret)
		return fail(log.err, ret);
	printf("dirty log on the source: %s, page size %" PRIu64 "\n",
	       mig_dirty_via_name(log.via), log.page_size);
	pthread_create(&th, NULL, vcpu, NULL);

	/* round 1 copies everything; later rounds what changed meanwhile */
	t0 = vmm_now_us();
	mig_cpu_mark_all(&cpu);
	for (i = 1; i <= max_rounds; i++) {
		uint64_t tr;

		if (i > 1)
			usleep(seconds * 1000000 / max_rounds);
		tr = vmm_now_us();
		pages = mig_ram_round(&log, &cpu, &src.ram, &dst.ram, NULL);
		if (pages < 0)
			return fail("RAM round", pages);
		printf("round %u: %ld pages (%ld KiB) in %.1f ms; workload %lu DMAs in, %lu out\n",
		       i, pages, pages * 4, ms_since(tr), wl.dmas_in,
		       wl.dmas_out);
		fflush(stdout);
		if (i == 1 && precopy) {
			ret = mig_set_state(&src.d, VFIO_DEVICE_STATE_PRE_COPY,
					    &fd);
			if (ret)
				return fail("RUNNING -> PRE_COPY", ret);
		}
		if (precopy) {
			ssize_t n = mig_read_precopy(fd, &stream);

			if (n < 0)
				return fail("reading PRE_COPY data", n);
			printf("         device pre-copy data: %zd bytes\n", n);
		}
	}
	if (!mig_data_size(&src.d, &dsize))
		printf("estimated stop-copy data: %" PRIu64 " bytes\n", dsize);

	/* switchover: pause the vCPU, stop the device, move the rest */
	printf("switchover\n");
	t_pause = vmm_now_us();
	atomic_store(&pause_req, 1);
	pthread_join(th, NULL);
	if (wl_err)
		return fail("workload", wl_err);
	ret = mig_set_state(&src.d, VFIO_DEVICE_STATE_STOP_COPY,
			    precopy ? NULL : &fd);
	if (ret)
		return fail("-> STOP_COPY", ret);
	{
		size_t before = stream.len;
		ssize_t n = mig_read_stop_copy(fd, &stream);

		if (n < 0)
			return fail("reading STOP_COPY data", n);
		printf("  device stopped, %zu bytes of state read (%zu in pre-copy)\n",
		       stream.len - before, before);
	}
	close(fd);
	pages = mig_ram_round(&log, &cpu, &src.ram, &dst.ram, merged);
	if (pages < 0)
		return fail("final RAM round", pages);
	printf("  final round: %ld pages\n", pages);
	ret = mig_set_state(&dst.d, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (!ret)
		ret = mig_write_stream(fd, stream.data, stream.len, 64 * 1024);
	if (ret)
		return fail("writing the stream to the target", ret);
	ret = mig_set_state(&dst.d, VFIO_DEVICE_STATE_RUNNING, NULL);
	close(fd);
	if (ret)
		return fail("target RESUMING -> RUNNING", ret);
	printf("  target running; downtime %.1f ms, total %.1f ms\n",
	       ms_since(t_pause), ms_since(t0));
	mig_dirty_stop(&log);

	/* what the target got */
	ret = memcmp(src.ram.host, dst.ram.host, RAM_SIZE);
	printf("check: target RAM %s source RAM (%llu MiB)\n",
	       ret ? "DIFFERS FROM" : "equals", RAM_SIZE >> 20);
	edu_regs_read(&esrc, &ra);
	edu_regs_read(&edst, &rb);
	if (ret || ra.liveness != rb.liveness || ra.factorial != rb.factorial ||
	    ra.dma_src != rb.dma_src || ra.dma_dst != rb.dma_dst ||
	    ra.dma_count != rb.dma_count) {
		printf("FAILED: registers: liveness %#x/%#x factorial %u/%u dma %#" PRIx64 "/%#" PRIx64 "\n",
		       ra.liveness, rb.liveness, ra.factorial, rb.factorial,
		       ra.dma_dst, rb.dma_dst);
		return 1;
	}
	printf("check: target registers equal the source's (liveness %#x, factorial %u)\n",
	       rb.liveness, rb.factorial);
	/* the buffer, against the workload's model */
	{
		static uint8_t b[EDU_BUF_SIZE];

		ret = buffer_of(&edst, &dst, b);
		if (ret || memcmp(b, wl.buf, EDU_BUF_SIZE - 1))
			return fail("target buffer differs from the model", EIO);
		/* put the page back as the guest had it */
		memcpy(mig_host(&dst, RAM_IOVA), mig_host(&src, RAM_IOVA),
		       EDU_BUF_SIZE - 1);
	}
	printf("check: target buffer holds what the workload wrote (4095 bytes)\n");

	/* the guest goes on, on the target */
	wl.e = &edst;
	wl.ram = &dst.ram;
	wl.vcpu_write = NULL;
	for (i = 0; i < 8; i++) {
		ret = edu_wl_step(&wl);
		if (ret)
			return fail("workload on the target", ret);
	}
	if (wl.errors) {
		printf("FAILED: workload: %lu wrong results: %s\n", wl.errors,
		       wl.why);
		return 1;
	}
	printf("check: workload continues on the target: %lu results checked, all right\n",
	       wl.checks);
	mig_side_close(&src);
	mig_side_close(&dst);
	printf("migration finished: data intact\n");
	return 0;
}
