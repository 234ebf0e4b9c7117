// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the vfio_mig genetlink family's policies and operations.
 *
 * Written to match Documentation/netlink/specs/vfio-mig.yaml; make check
 * compares every policy and operation here with the kernel's ynl-gen
 * output for that spec (scripts/ynl.sh check). Plain genl_ops rather than
 * ynl-gen's split ops, which 6.1 does not have.
 */
#include <net/genetlink.h>
#include <net/netlink.h>
#include <uapi/linux/vfio_mig.h>

#include "netlink.h"

const struct nla_policy vfio_mig_dirty_range_nl_policy[VFIO_MIG_A_DIRTY_RANGE_LENGTH + 1] = {
	[VFIO_MIG_A_DIRTY_RANGE_IOVA] = { .type = NLA_U64, },
	[VFIO_MIG_A_DIRTY_RANGE_LENGTH] = { .type = NLA_U64, },
};

static const struct nla_policy vfio_mig_dev_get_nl_policy[VFIO_MIG_A_DEV_BDF + 1] = {
	[VFIO_MIG_A_DEV_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
};

static const struct nla_policy vfio_mig_dev_set_nl_policy[VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE + 1] = {
	[VFIO_MIG_A_DEV_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_DEV_TRAP_MODE] = NLA_POLICY_MAX(NLA_U32, 2),
	[VFIO_MIG_A_DEV_PROFILE] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE] = { .type = NLA_U64, },
};

static const struct nla_policy vfio_mig_reglog_get_nl_policy[VFIO_MIG_A_REGLOG_SINCE + 1] = {
	[VFIO_MIG_A_REGLOG_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_REGLOG_SINCE] = { .type = NLA_U64, },
};

static const struct nla_policy vfio_mig_dirty_start_nl_policy[VFIO_MIG_A_DIRTY_RANGE + 1] = {
	[VFIO_MIG_A_DIRTY_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_DIRTY_PAGE_SIZE] = { .type = NLA_U64, },
	[VFIO_MIG_A_DIRTY_RANGE] = NLA_POLICY_NESTED(vfio_mig_dirty_range_nl_policy),
};

static const struct nla_policy vfio_mig_dirty_stop_nl_policy[VFIO_MIG_A_DIRTY_BDF + 1] = {
	[VFIO_MIG_A_DIRTY_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
};

static const struct nla_policy vfio_mig_dirty_get_nl_policy[VFIO_MIG_A_DIRTY_CLEAR + 1] = {
	[VFIO_MIG_A_DIRTY_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_DIRTY_IOVA] = { .type = NLA_U64, },
	[VFIO_MIG_A_DIRTY_LENGTH] = { .type = NLA_U64, },
	[VFIO_MIG_A_DIRTY_CLEAR] = { .type = NLA_FLAG, },
};

static const struct genl_ops vfio_mig_nl_ops[] = {
	{
		.cmd		= VFIO_MIG_CMD_DEV_GET,
		.doit		= vfio_mig_nl_dev_get_doit,
		.dumpit		= vfio_mig_nl_dev_get_dumpit,
		.policy		= vfio_mig_dev_get_nl_policy,
		.maxattr	= VFIO_MIG_A_DEV_BDF,
	},
	{
		.cmd		= VFIO_MIG_CMD_DEV_SET,
		.doit		= vfio_mig_nl_dev_set_doit,
		.policy		= vfio_mig_dev_set_nl_policy,
		.maxattr	= VFIO_MIG_A_DEV_DIRTY_PAGE_SIZE,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_REGLOG_GET,
		.dumpit		= vfio_mig_nl_reglog_get_dumpit,
		.policy		= vfio_mig_reglog_get_nl_policy,
		.maxattr	= VFIO_MIG_A_REGLOG_SINCE,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_DIRTY_START,
		.doit		= vfio_mig_nl_dirty_start_doit,
		.policy		= vfio_mig_dirty_start_nl_policy,
		.maxattr	= VFIO_MIG_A_DIRTY_RANGE,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_DIRTY_STOP,
		.doit		= vfio_mig_nl_dirty_stop_doit,
		.policy		= vfio_mig_dirty_stop_nl_policy,
		.maxattr	= VFIO_MIG_A_DIRTY_BDF,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_DIRTY_GET,
		.dumpit		= vfio_mig_nl_dirty_get_dumpit,
		.policy		= vfio_mig_dirty_get_nl_policy,
		.maxattr	= VFIO_MIG_A_DIRTY_CLEAR,
		.flags		= GENL_ADMIN_PERM,
	},
};

static const struct genl_multicast_group vfio_mig_nl_mcgrps[] = {
	[VFIO_MIG_NLGRP_EVENTS] = { .name = VFIO_MIG_MCGRP_EVENTS, },
};

struct genl_family vfio_mig_nl_family __ro_after_init = {
	.name		= VFIO_MIG_FAMILY_NAME,
	.version	= VFIO_MIG_FAMILY_VERSION,
	.netnsok	= false,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= vfio_mig_nl_ops,
	.n_ops		= ARRAY_SIZE(vfio_mig_nl_ops),
	.mcgrps		= vfio_mig_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(vfio_mig_nl_mcgrps),
};
