/* SPDX-License-Identifier: GPL-2.0 */
#ifndef BIT
#define BIT(n)	(1ul << (n))
#endif
