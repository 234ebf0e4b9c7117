/* SPDX-License-Identifier: GPL-2.0 */
/* The model uses the kernel's errno values: the system's uapi ones. */
#include_next <linux/errno.h>
