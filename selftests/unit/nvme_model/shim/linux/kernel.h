/* SPDX-License-Identifier: GPL-2.0 */
/* User-space stand-in for the bits of <linux/kernel.h> the model uses. */
#ifndef _SHIM_LINUX_KERNEL_H
#define _SHIM_LINUX_KERNEL_H
#include <linux/types.h>
#include <stdio.h>

#define __printf(a, b)	__attribute__((format(printf, a, b)))

#define U16_MAX		0xffff
#define U64_MAX		(~0ULL)
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define min_t(t, a, b)	((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b)	((t)(a) > (t)(b) ? (t)(a) : (t)(b))
#endif
