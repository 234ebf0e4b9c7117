// SPDX-License-Identifier: GPL-2.0
/*
 * Cost of one 4-byte BAR access through vfio-mig's trapped path (trap mode
 * all, edu profile, every write logged) against vfio-pci's own read/write
 * path, in the same guest and run: one edu bound to each driver, both open,
 * short batches alternating between them so that both see the same host
 * load; then the roles of the two edus are swapped. The ratio is the
 * median over the batch pairs of (vfio-mig batch time / vfio-pci batch
 * time). Also the log's memory per recorded write.
 *
 *   trap_read_ratio: <mig/pci>   trap_write_ratio: <mig/pci>
 *   log_bytes_per_write: <bytes>
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edu.h"
#include "regsync.h"
#include "testbed.h"

#define BATCH	25
#define PAIRS	1000	/* per phase and direction */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static uint64_t batch(struct vmm_dev *d, bool write)
{
	uint64_t t0 = vmm_now_us();
	int i;

	for (i = 0; i < BATCH; i++) {
		if (write)
			vmm_write32(d, 0, EDU_REG_LIVENESS, i);
		else
			vmm_read32(d, 0, EDU_REG_LIVENESS);
	}
	return vmm_now_us() - t0;
}

struct acc {
	double ratio[2][2 * PAIRS];	/* [read/write][pair] */
	double tp[2][2 * PAIRS], tm[2][2 * PAIRS];	/* batch times */
	uint64_t pci[2], mig[2];	/* total us */
	int n[2];
};

static int phase(const char *pci_bdf, const char *mig_bdf, struct acc *a)
{
	struct vmm_dev p, m;
	int i, w, ret;

	ret = vmm_bind(pci_bdf, "vfio-pci");
	if (!ret)
		ret = vmm_bind(mig_bdf, TB_DRIVER);
	if (!ret)
		ret = rs_set_trap_mode(mig_bdf, "all");
	if (!ret)
		ret = vmm_open(&p, pci_bdf);
	if (ret)
		return ret;
	ret = vmm_open(&m, mig_bdf);
	if (ret) {
		vmm_close(&p);
		return ret;
	}
	batch(&p, false);	/* warm up */
	batch(&m, false);
	for (w = 0; w < 2; w++) {
		for (i = 0; i < PAIRS; i++) {
			uint64_t tp, tm;

			if (i % 2) {
				tp = batch(&p, w);
				tm = batch(&m, w);
			} else {
				tm = batch(&m, w);
				tp = batch(&p, w);
			}
			a->pci[w] += tp;
			a->mig[w] += tm;
			a->tp[w][a->n[w]] = tp;
			a->tm[w][a->n[w]] = tm;
			a->ratio[w][a->n[w]++] = (double)tm / (tp ? tp : 1);
		}
	}
	vmm_close(&p);
	vmm_close(&m);
	rs_set_trap_mode(mig_bdf, "none");
	return 0;
}

int main(void)
{
	static struct acc a;
	long long w0, w1, per;
	struct tb_devs t;
	struct vmm_dev m;
	int w;

	if (tb_devices(&t) || t.nr_edu < 2) {
		fprintf(stderr, "regsync_bench: needs two edus\n");
		return 1;
	}
	if (phase(t.edu[0], t.edu[1], &a) || phase(t.edu[1], t.edu[0], &a))
		return 1;
	for (w = 0; w < 2; w++) {
		qsort(a.ratio[w], a.n[w], sizeof(double), cmp_d);
		qsort(a.tp[w], a.n[w], sizeof(double), cmp_d);
		qsort(a.tm[w], a.n[w], sizeof(double), cmp_d);
	}
	printf("# ratio of the 10th-percentile batches: read %.3f write %.3f\n",
	       a.tm[0][a.n[0] / 10] / a.tp[0][a.n[0] / 10],
	       a.tm[1][a.n[1] / 10] / a.tp[1][a.n[1] / 10]);
	printf("# mean ns per 4-byte access: vfio-pci read %.0f write %.0f, vfio-mig trapped read %.0f write %.0f\n",
	       a.pci[0] * 1000.0 / (a.n[0] * BATCH),
	       a.pci[1] * 1000.0 / (a.n[1] * BATCH),
	       a.mig[0] * 1000.0 / (a.n[0] * BATCH),
	       a.mig[1] * 1000.0 / (a.n[1] * BATCH));
	printf("# batch-pair ratios (quartiles) read %.3f %.3f %.3f write %.3f %.3f %.3f\n",
	       a.ratio[0][a.n[0] / 4], a.ratio[0][a.n[0] / 2],
	       a.ratio[0][3 * a.n[0] / 4], a.ratio[1][a.n[1] / 4],
	       a.ratio[1][a.n[1] / 2], a.ratio[1][3 * a.n[1] / 4]);
	printf("trap_read_ratio: %.3f\n", a.ratio[0][a.n[0] / 2]);
	printf("trap_write_ratio: %.3f\n", a.ratio[1][a.n[1] / 2]);

	/* memory per write: the ring entry, once every write is recorded */
	if (vmm_bind(t.edu[0], TB_DRIVER) || rs_set_trap_mode(t.edu[0], "all") ||
	    vmm_open(&m, t.edu[0]))
		return 1;
	w0 = rs_counter(t.edu[0], "trapped_writes");
	batch(&m, true);
	w1 = rs_counter(t.edu[0], "trapped_writes");
	per = rs_counter(t.edu[0], "log_bytes_per_entry");
	vmm_close(&m);
	rs_set_trap_mode(t.edu[0], "none");
	printf("# %lld of %d writes recorded\n", w1 - w0, BATCH);
	printf("log_bytes_per_write: %lld\n", w1 - w0 == BATCH ? per : -1);
	return 0;
}
