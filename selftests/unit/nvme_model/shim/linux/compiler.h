/* SPDX-License-Identifier: GPL-2.0 */
/* User-space stand-in for the bits of <linux/compiler.h> the model uses. */
#ifndef _SHIM_LINUX_COMPILER_H
#define _SHIM_LINUX_COMPILER_H

/* relaxed atomics: what the kernel's single-copy accesses give */
#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#endif
