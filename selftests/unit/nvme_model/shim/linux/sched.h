/* SPDX-License-Identifier: GPL-2.0 */
/* User-space stand-in for the bits of <linux/sched.h> the model uses. */
#ifndef _SHIM_LINUX_SCHED_H
#define _SHIM_LINUX_SCHED_H

static inline void cond_resched(void)
{
}
#endif
