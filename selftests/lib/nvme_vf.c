// SPDX-License-Identifier: GPL-2.0
/* An NVMe VF as the test VMM holds it (nvme_vf.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nvme_vf.h"
#include "testbed.h"

int nvme_vf_trap(const char *bdf, char *err, size_t len)
{
	char path[128], prof[32] = "";
	FILE *f;
	int ret;

	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/trap_mode", bdf);
	ret = vmm_sysfs_write(path, "sparse");
	if (ret) {
		snprintf(err, len, "%s: trap mode sparse: %s", bdf,
			 strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/vfio_mig/profile", bdf);
	ret = vmm_sysfs_write(path, "nvme");
	if (ret) {
		snprintf(err, len, "%s: profile nvme: %s", bdf, strerror(-ret));
		return ret;
	}
	f = fopen(path, "r");
	if (!f || !fgets(prof, sizeof(prof), f) || strcmp(prof, "nvme\n")) {
		snprintf(err, len, "%s: profile '%s', not nvme", bdf, prof);
		ret = -EINVAL;
	}
	if (f)
		fclose(f);
	return ret;
}

int nvme_vf_up(struct nvme_vf *v, const char *bdf, const char *driver,
	       size_t ram_size, uint64_t iova, uint32_t nsid, char *err,
	       size_t len)
{
	int ret;

	memset(v, 0, sizeof(*v));
	v->ram.memfd = -1;
	ret = vmm_bind(bdf, driver);
	if (ret) {
		snprintf(err, len, "bind %s to %s: %s", bdf, driver,
			 strerror(-ret));
		return ret;
	}
	if (!strcmp(driver, TB_DRIVER)) {
		ret = nvme_vf_trap(bdf, err, len);
		if (ret)
			return ret;
	}
	ret = vmm_open(&v->d, bdf);
	if (ret) {
		snprintf(err, len, "open %s: %s", bdf, strerror(-ret));
		return ret;
	}
	v->open = true;
	ret = vmm_ram_alloc(&v->ram, ram_size, iova);
	if (!ret)
		ret = vmm_dma_map(&v->d, &v->ram);
	if (ret) {
		snprintf(err, len, "RAM for %s: %s", bdf, strerror(-ret));
		return ret;
	}
	ret = nvme_ctrl_init(&v->c, &v->d, &v->ram, nsid, false);
	if (ret)
		snprintf(err, len, "%s: %s (%s)", bdf, v->c.why,
			 strerror(-ret));
	return ret;
}

void nvme_vf_down(struct nvme_vf *v)
{
	if (!v->open)
		return;
	nvme_ctrl_fini(&v->c);
	vmm_ram_release(&v->d, &v->ram);
	vmm_close(&v->d);
	v->open = false;
}
