// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig profile "generic": for devices vfio-mig has no profile for.
 *
 * It knows no register: every written register is state, replayed with the
 * last value written, in the order of those last writes. Nothing is
 * captured by reading, no doorbell is recognised, and the sparse mode traps
 * whole BARs, because the profile cannot tell where the registers are.
 * Snapshots and reports name the profile, so a user sees that the
 * migration relied on these assumptions.
 */
#include "../profile.h"

const struct vmig_profile vmig_profile_generic = {
	.name = "generic",
	.version = 1,
	.default_class = VMIG_REG_STATE,
};
