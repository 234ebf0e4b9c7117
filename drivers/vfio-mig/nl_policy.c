// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-mig: the vfio_mig genetlink family's policies and operations.
 *
 * Written to match Documentation/netlink/specs/vfio-mig.yaml; make check
 * compares every policy and operation here with the kernel's ynl-gen
 * output for that spec (scripts/ynl.sh check). Plain genl_ops rather than
 * ynl-gen's split ops, which 6.1 does not have.
 *
 * The family answers in every network namespace and its events reach
 * listeners in every one the initial user namespace owns
 * (vmig_nl_multicast()): the devices are the host's, and a "host" of the
 * test bed may be a namespace. Every
 * operation, reads included (device use and migration phases tell about
 * guest activity), needs CAP_NET_ADMIN in the initial user namespace;
 * joining a group needs CAP_NET_ADMIN over the socket's network namespace
 * (GENL_MCAST_CAP_NET_ADMIN: Debian's 6.1 has it, as does 6.12).
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

static const struct nla_policy vfio_mig_mig_phase_nl_policy[VFIO_MIG_A_MIG_PHASE + 1] = {
	[VFIO_MIG_A_MIG_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_MIG_PHASE] = NLA_POLICY_RANGE(NLA_U32, 1, 6),
};

static const struct nla_policy vfio_mig_mig_ack_nl_policy[VFIO_MIG_A_MIG_RAM + 1] = {
	[VFIO_MIG_A_MIG_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_MIG_PHASE] = NLA_POLICY_RANGE(NLA_U32, 1, 6),
	[VFIO_MIG_A_MIG_SEQ] = { .type = NLA_U32, },
	[VFIO_MIG_A_MIG_RESULT] = NLA_POLICY_MAX(NLA_U32, 4095),
	[VFIO_MIG_A_MIG_RAM] = NLA_POLICY_NESTED(vfio_mig_dirty_range_nl_policy),
};

static const struct nla_policy vfio_mig_dirty_mark_nl_policy[VFIO_MIG_A_DIRTY_RANGE + 1] = {
	[VFIO_MIG_A_DIRTY_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_DIRTY_RANGE] = NLA_POLICY_NESTED(vfio_mig_dirty_range_nl_policy),
};

static const struct nla_policy vfio_mig_dev_compat_nl_policy[VFIO_MIG_A_DEV_PROFILE_FACTS + 1] = {
	[VFIO_MIG_A_DEV_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_DEV_VENDOR] = { .type = NLA_U16, },
	[VFIO_MIG_A_DEV_DEVICE] = { .type = NLA_U16, },
	[VFIO_MIG_A_DEV_SUBSYSTEM_VENDOR] = { .type = NLA_U16, },
	[VFIO_MIG_A_DEV_SUBSYSTEM_DEVICE] = { .type = NLA_U16, },
	[VFIO_MIG_A_DEV_REVISION] = { .type = NLA_U8, },
	[VFIO_MIG_A_DEV_CLASS] = { .type = NLA_U32, },
	[VFIO_MIG_A_DEV_BAR_LEN] = { .type = NLA_U64, },
	[VFIO_MIG_A_DEV_PROFILE] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_DEV_PROFILE_NEEDS] = { .type = NLA_BINARY, },
	[VFIO_MIG_A_DEV_PROFILE_FACTS] = { .type = NLA_BINARY, },
};

static const struct nla_policy vfio_mig_dev_needs_nl_policy[VFIO_MIG_A_DEV_BDF + 1] = {
	[VFIO_MIG_A_DEV_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
};

static const struct nla_policy vfio_mig_shadow_attach_nl_policy[VFIO_MIG_A_SHADOW_CTL_FD + 1] = {
	[VFIO_MIG_A_SHADOW_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
	[VFIO_MIG_A_SHADOW_CTL_FD] = { .type = NLA_U32, },
};

static const struct nla_policy vfio_mig_shadow_detach_nl_policy[VFIO_MIG_A_SHADOW_BDF + 1] = {
	[VFIO_MIG_A_SHADOW_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
};

static const struct nla_policy vfio_mig_shadow_get_nl_policy[VFIO_MIG_A_SHADOW_BDF + 1] = {
	[VFIO_MIG_A_SHADOW_BDF] = { .type = NLA_NUL_STRING, .len = 31, },
};

static const struct genl_ops vfio_mig_nl_ops[] = {
	{
		.cmd		= VFIO_MIG_CMD_DEV_GET,
		.doit		= vfio_mig_nl_dev_get_doit,
		.dumpit		= vfio_mig_nl_dev_get_dumpit,
		.policy		= vfio_mig_dev_get_nl_policy,
		.maxattr	= VFIO_MIG_A_DEV_BDF,
		.flags		= GENL_ADMIN_PERM,
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
	{
		.cmd		= VFIO_MIG_CMD_MIG_PHASE,
		.doit		= vfio_mig_nl_mig_phase_doit,
		.policy		= vfio_mig_mig_phase_nl_policy,
		.maxattr	= VFIO_MIG_A_MIG_PHASE,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_MIG_ACK,
		.doit		= vfio_mig_nl_mig_ack_doit,
		.policy		= vfio_mig_mig_ack_nl_policy,
		.maxattr	= VFIO_MIG_A_MIG_RAM,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_DIRTY_MARK,
		.doit		= vfio_mig_nl_dirty_mark_doit,
		.policy		= vfio_mig_dirty_mark_nl_policy,
		.maxattr	= VFIO_MIG_A_DIRTY_RANGE,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_DEV_COMPAT,
		.doit		= vfio_mig_nl_dev_compat_doit,
		.policy		= vfio_mig_dev_compat_nl_policy,
		.maxattr	= VFIO_MIG_A_DEV_PROFILE_FACTS,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_DEV_NEEDS,
		.doit		= vfio_mig_nl_dev_needs_doit,
		.policy		= vfio_mig_dev_needs_nl_policy,
		.maxattr	= VFIO_MIG_A_DEV_BDF,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_SHADOW_ATTACH,
		.doit		= vfio_mig_nl_shadow_attach_doit,
		.policy		= vfio_mig_shadow_attach_nl_policy,
		.maxattr	= VFIO_MIG_A_SHADOW_CTL_FD,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_SHADOW_DETACH,
		.doit		= vfio_mig_nl_shadow_detach_doit,
		.policy		= vfio_mig_shadow_detach_nl_policy,
		.maxattr	= VFIO_MIG_A_SHADOW_BDF,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= VFIO_MIG_CMD_SHADOW_GET,
		.doit		= vfio_mig_nl_shadow_get_doit,
		.dumpit		= vfio_mig_nl_shadow_get_dumpit,
		.policy		= vfio_mig_shadow_get_nl_policy,
		.maxattr	= VFIO_MIG_A_SHADOW_BDF,
		.flags		= GENL_ADMIN_PERM,
	},
};

static const struct genl_multicast_group vfio_mig_nl_mcgrps[] = {
	[VFIO_MIG_NLGRP_EVENTS] = {
		.name = VFIO_MIG_MCGRP_EVENTS,
		.flags = GENL_MCAST_CAP_NET_ADMIN,
	},
	[VFIO_MIG_NLGRP_MIG] = {
		.name = VFIO_MIG_MCGRP_MIG,
		.flags = GENL_MCAST_CAP_NET_ADMIN,
	},
};

struct genl_family vfio_mig_nl_family __ro_after_init = {
	.name		= VFIO_MIG_FAMILY_NAME,
	.version	= VFIO_MIG_FAMILY_VERSION,
	/* every namespace: the test bed's "hosts" are namespaces */
	.netnsok	= true,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= vfio_mig_nl_ops,
	.n_ops		= ARRAY_SIZE(vfio_mig_nl_ops),
	.mcgrps		= vfio_mig_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(vfio_mig_nl_mcgrps),
};
