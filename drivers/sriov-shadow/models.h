/* SPDX-License-Identifier: GPL-2.0 */
/* sriov-shadow: the device models this module registers, one per profile. */
#ifndef _SRIOV_SHADOW_MODELS_H
#define _SRIOV_SHADOW_MODELS_H

#include "shadow.h"	/* vfio_mig's registration API */

extern const struct vmig_shadow_ops sriov_shadow_edu;
extern const struct vmig_shadow_ops sriov_shadow_nvme;

#endif /* _SRIOV_SHADOW_MODELS_H */
