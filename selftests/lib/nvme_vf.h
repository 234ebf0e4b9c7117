/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An NVMe VF as the test VMM holds it: the device fd, guest RAM mapped for
 * DMA, the user-space driver (nvme.h) enabled on it. Shared by the nvme
 * suite's tests and benchmark.
 */
#ifndef VMIG_NVME_VF_H
#define VMIG_NVME_VF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvme.h"
#include "vmm.h"

struct nvme_vf {
	struct vmm_dev d;
	struct vmm_ram ram;
	struct nvme_ctrl c;
	bool open;
};

/*
 * Put @bdf (bound to vfio-mig) in trap mode sparse under the nvme profile,
 * whatever an earlier suite set. 0 or -errno, @err says why.
 */
int nvme_vf_trap(const char *bdf, char *err, size_t len);
/*
 * Bind @bdf to @driver (vfio-mig: nvme_vf_trap() too), open it, map
 * @ram_size bytes of RAM at @iova and enable the controller on namespace
 * @nsid (admin queue, Identify). 0 or -errno, @err says why; call
 * nvme_vf_down() either way.
 */
int nvme_vf_up(struct nvme_vf *v, const char *bdf, const char *driver,
	       size_t ram_size, uint64_t iova, uint32_t nsid, char *err,
	       size_t len);
void nvme_vf_down(struct nvme_vf *v);

#endif
