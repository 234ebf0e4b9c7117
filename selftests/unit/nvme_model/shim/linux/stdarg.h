/* SPDX-License-Identifier: GPL-2.0 */
/* User-space stand-in for <linux/stdarg.h>. */
#ifndef _SHIM_LINUX_STDARG_H
#define _SHIM_LINUX_STDARG_H
#include <stdarg.h>
#endif
