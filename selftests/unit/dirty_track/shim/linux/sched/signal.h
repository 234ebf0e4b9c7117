/* SPDX-License-Identifier: GPL-2.0 */
/* user-space shim, see ../../shim.h */
#include "../../shim.h"
